/*
 * Reading the audit log back (`secretfs audit`, SPEC §5): its lines,
 * filtered by secret and time, to a callback, and followed as it grows
 * and rotates; every host's change lines from a shared store; and the
 * RFC 3339 times every line starts with. Writing the log is audit.c.
 *
 * The log is read in chunks with no limit on a line's length; a line
 * that is not a JSON object passes only when there is no filter. Times
 * are parsed strictly: a date, or a date and a time with seconds, an
 * optional fraction and a zone (Z or +HH:MM/-HH:MM).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secretfs/audit.h"
#include "secretfs/store.h"
#include "secretfs/storedir.h"
#include "secretfs/value.h"

#define NS_PER_SEC     1000000000LL
#define FOLLOW_POLL_NS 200000000L
#define READ_CHUNK     65536

struct reader {
	const char *secret;
	int64_t since_ns;
	sfs_audit_cb cb;
	void *arg;
	char *buf; /* unconsumed bytes */
	size_t len, cap;
};

/* 1 when the line passes the filters. Lines that are not JSON objects
 * pass only when there is no filter. */
static int wanted(const struct reader *r, const char *line, size_t len)
{
	struct sfs_json *j;
	const char *v;
	int64_t t;
	int ok;

	if (!r->secret && !r->since_ns)
		return 1;
	j = sfs_json_parse(line, len);
	if (!j)
		return 0;
	ok = 1;
	if (r->secret) {
		v = sfs_json_get_str(j, "secret");
		ok = v && strcmp(v, r->secret) == 0;
	}
	if (ok && r->since_ns) {
		v = sfs_json_get_str(j, "time");
		ok = v && sfs_time_parse(v, &t) == SFS_OK && t >= r->since_ns;
	}
	sfs_json_free(j);
	return ok;
}

/*
 * Hand each complete line in the buffer to the callback (all of it, the
 * last line even without its newline, when flush). Returns the callback's
 * first non-zero result, else 0.
 */
static int drain(struct reader *r, int flush)
{
	size_t start = 0, end;
	char *nl;
	int rc = 0;

	while (!rc && start < r->len) {
		nl = memchr(r->buf + start, '\n', r->len - start);
		if (!nl && !flush)
			break;
		end = nl ? (size_t)(nl - r->buf) : r->len;
		r->buf[end] = '\0'; /* cap keeps a spare byte */
		if (end > start && wanted(r, r->buf + start, end - start))
			rc = r->cb(r->arg, r->buf + start);
		start = nl ? end + 1 : end;
	}
	memmove(r->buf, r->buf + start, r->len - start);
	r->len -= start;
	return rc;
}

/* Read what is there into the buffer: bytes read, 0 at EOF, -1. */
static ssize_t fill(struct reader *r, int fd)
{
	char *p;
	ssize_t n;

	if (r->cap - r->len < READ_CHUNK + 1) {
		p = realloc(r->buf, r->len + READ_CHUNK + 1);
		if (!p) {
			errno = ENOMEM;
			return -1;
		}
		r->buf = p;
		r->cap = r->len + READ_CHUNK + 1;
	}
	do {
		n = read(fd, r->buf + r->len, READ_CHUNK);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

/* At EOF while following: wait, and start over if the log was truncated,
 * or from the start of the new log once it rotated (the old one was read
 * to its end: this is called at EOF). */
static void follow_wait(struct reader *r, const char *path, int *fd)
{
	struct timespec ts = {0, FOLLOW_POLL_NS};
	struct stat st, now;
	off_t pos = lseek(*fd, 0, SEEK_CUR);
	int nfd;

	nanosleep(&ts, NULL);
	if (fstat(*fd, &st) != 0)
		return;
	if (stat(path, &now) == 0 &&
	    (now.st_ino != st.st_ino || now.st_dev != st.st_dev) &&
	    (nfd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW)) >= 0) {
		dup2(nfd, *fd);
		close(nfd);
		r->len = 0;
	} else if (pos >= 0 && st.st_size < pos) {
		lseek(*fd, 0, SEEK_SET);
		r->len = 0;
	}
}

/*
 * The callback's result ends the read: a negative one (an enum sfs_err
 * code) is returned, a positive one gives SFS_OK.
 */
int sfs_audit_read(const char *path, const char *secret, int64_t since_ns,
		   int follow, sfs_audit_cb cb, void *arg,
		   struct sfs_error *err)
{
	struct reader r = {secret, since_ns, cb, arg, NULL, 0, 0};
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return sfs_error_set(err, sfs_storedir_errcode(errno),
				     "cannot open audit log '%s': %s", path,
				     sfs_strerrno(errno));
	while (!rc) {
		n = fill(&r, fd);
		if (n < 0) {
			rc = sfs_error_set(
			    err, errno == ENOMEM ? SFS_ENOMEM : SFS_EIO,
			    "cannot read audit log '%s': %s", path,
			    sfs_strerrno(errno));
			break;
		}
		rc = drain(&r, n == 0 && !follow);
		if (n == 0 && !follow)
			break;
		if (n == 0 && !rc)
			follow_wait(&r, path, &fd);
	}
	free(r.buf);
	close(fd);
	return rc < 0 ? rc : SFS_OK;
}

/* --- time -------------------------------------------------------------- */

int64_t sfs_time_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

void sfs_time_format(int64_t ns, char out[32])
{
	time_t s = (time_t)(ns / NS_PER_SEC);
	struct tm tm;

	if (ns < 0 && ns % NS_PER_SEC)
		s--; /* round towards the past */
	if (!gmtime_r(&s, &tm) ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(out, "1970-01-01T00:00:00Z");
}

/* Exactly n decimal digits at s; -1 otherwise. */
static int digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return days[m - 1] + (m == 2 && leap);
}

/* "HH:MM" at s into seconds, or -1. */
static int hhmm(const char *s, int hmax)
{
	int h = digits(s, 2), m = digits(s + 3, 2);

	if (h < 0 || h > hmax || s[2] != ':' || m < 0 || m > 59)
		return -1;
	return h * 3600 + m * 60;
}

/* "[.frac](Z|+HH:MM|-HH:MM)" ending the text; 0 or -1. */
static int parse_zone(const char *p, long *frac, int *off)
{
	long scale = NS_PER_SEC / 10;

	*frac = 0;
	*off = 0;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			*frac += (*p - '0') * scale; /* digits past ns: 0 */
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return 0;
	if ((*p != '+' && *p != '-') || strlen(p) != 6)
		return -1;
	*off = hhmm(p + 1, 23);
	if (*off < 0)
		return -1;
	if (*p == '-')
		*off = -*off;
	return 0;
}

int sfs_time_parse(const char *text, int64_t *ns)
{
	struct tm tm = {0};
	int y, mo, d, sec = 0, off = 0;
	long frac = 0;
	time_t t;

	if (!text || strnlen(text, 11) < 10)
		return SFS_EINVAL;
	y = digits(text, 4);
	mo = digits(text + 5, 2);
	d = digits(text + 8, 2);
	if (y < 0 || text[4] != '-' || text[7] != '-' || mo < 1 || mo > 12 ||
	    d < 1 || d > days_in_month(y, mo))
		return SFS_EINVAL;
	if (text[10] != '\0') {
		if ((text[10] != 'T' && text[10] != 't') ||
		    strnlen(text + 11, 8) < 8 || text[16] != ':')
			return SFS_EINVAL;
		sec = hhmm(text + 11, 23);
		if (sec < 0 || digits(text + 17, 2) < 0 ||
		    digits(text + 17, 2) > 60 ||
		    parse_zone(text + 19, &frac, &off) < 0)
			return SFS_EINVAL;
		sec += digits(text + 17, 2);
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	t = timegm(&tm); /* midnight: never the error value -1 */
	if (t == (time_t)-1)
		return SFS_EINVAL;
	t += sec - off;
	if (t > INT64_MAX / NS_PER_SEC - 1 || t < INT64_MIN / NS_PER_SEC + 1)
		return SFS_EINVAL;
	*ns = (int64_t)t * NS_PER_SEC + frac;
	return SFS_OK;
}

/* ---- every host's changes (a shared store) ------------------------------ */

/* One stored line, filtered, with its host added. */
static int history_line(void *arg, const char *host, const void *line,
			size_t len)
{
	struct reader *r = arg;
	struct sfs_json *j;
	char *out;
	int rc;

	if (!wanted(r, line, len))
		return 0;
	j = sfs_json_parse(line, len);
	if (!j || sfs_json_set_str(j, "host", host) ||
	    !(out = sfs_json_dump(j, 0))) {
		sfs_json_free(j);
		return SFS_ENOMEM;
	}
	sfs_json_free(j);
	rc = r->cb(r->arg, out);
	free(out);
	return rc;
}

int sfs_audit_read_all_hosts(const char *dir, const char *secret,
			     int64_t since_ns, sfs_audit_cb cb, void *arg,
			     struct sfs_error *err)
{
	struct reader r = {secret, since_ns, cb, arg, NULL, 0, 0};
	struct sfs_store *s = NULL;
	int rc;

	rc = sfs_store_open(dir, 0, 1, &s, err);
	if (rc == SFS_OK)
		rc = sfs_store_begin(s, 0, err);
	if (rc == SFS_OK) {
		rc = sfs_store_audit_history(s, history_line, &r, err);
		sfs_store_rollback(s);
	}
	sfs_store_close(s);
	return rc == SFS_ENOMEM
		   ? sfs_error_set(err, rc, "a stored audit line is not JSON")
		   : rc;
}
