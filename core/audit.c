/*
 * Audit log: one JSON line per value read and per change (SPEC §5).
 *
 * Each line is built whole in memory and appended with a single write(2) on
 * an O_APPEND descriptor, so lines from the CLI, the daemon and its threads
 * never interleave and need no lock. A line that cannot be written whole is
 * SFS_EIO, and the caller fails the read rather than let it go unaudited.
 * Nothing secret is ever handed to this module.
 *
 * So that no user can fill the disk (SPEC §5):
 * - Refused lines (any result but ok, from a known caller) are limited to
 *   REFUSED_PER_SEC per uid and second; the rest are counted, and the
 *   count is written as one "audit.suppressed" line once that second is
 *   over (at the next line of anyone, or at close). A uid's slot is
 *   never taken over within its second (two uids alternating would each
 *   get a fresh budget): one that finds none free shares a last slot,
 *   whose summary names no uid. The limiter's table has its own mutex,
 *   taken for refused lines only.
 * - The log rotates itself: once it reaches max bytes, audit.log.3 moves
 *   to .4 (the oldest is dropped), ... audit.log to .1, and a new
 *   audit.log is made. A process rotates under flock() of the log, so
 *   two processes never both rotate the same file, and each process
 *   looks at the path once a second to follow a rotation made by another
 *   (or by logrotate); sfs_audit_reopen() (SIGHUP) makes it look at the
 *   next line. The descriptor is replaced in place with dup2(): a write
 *   racing with it lands whole in one file or the other, so writers take
 *   no lock; the switch takes the turn mutex. (The look is a stat() of
 *   the path: once a second, not per line, since a stat marks the file's
 *   times as seen; see sfs_audit_size.)
 *
 * Field order: time, op, secret, secret_id, version, result, then key (key
 * operations only), then uid (every caller) and, for filesystem callers,
 * gid, pid and comm. Absent secret, secret_id and version are null, so that
 * every line has the same shape.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secretfs/audit.h"
#include "secretfs/store.h"
#include "secretfs/value.h"

#define NS_PER_SEC     1000000000LL
#define FOLLOW_POLL_NS 200000000L
#define READ_CHUNK     65536

#define REFUSED_PER_SEC 32 /* refused lines of one uid per second */
#define LIMIT_SLOTS	1024 /* by hash of the uid, then LIMIT_PROBE on */
#define LIMIT_PROBE	8
#define LIMIT_FLUSH	16 /* summaries written per call, at most */

/* Refused lines of one uid in the current second. */
struct limit_slot {
	int used;
	uint32_t uid;
	int64_t second;	     /* monotonic */
	unsigned lines;	     /* written in that second */
	uint64_t suppressed; /* left out since the last summary */
	int result;	     /* of the last line left out */
};

struct sfs_audit {
	int fd; /* O_WRONLY | O_APPEND; replaced in place by a turn */
	char *path;
	int64_t max;	      /* rotate at this size; 0: never */
	int64_t size;	      /* atomic: the log's size as this process knows */
	int64_t checked;      /* atomic: the second path was last looked at */
	int reopen;	      /* atomic: look at path at the next line */
	pthread_mutex_t turn; /* rotation and reopen; guards dev, ino */
	dev_t dev;
	ino_t ino;
	pthread_mutex_t limit; /* guards slots */
	unsigned pending;      /* atomic: slots with lines left out */
	/* the last one is shared by uids that find no slot free in this
	 * second (its summary names no uid): never a fresh budget for a
	 * uid that takes another's slot over */
	struct limit_slot slots[LIMIT_SLOTS + 1];
};

static int errno_code(int e)
{
	switch (e) {
	case ENOENT:
		return SFS_ENOENT;
	case EACCES:
	case EPERM:
	case ELOOP: /* O_NOFOLLOW met a symlink */
		return SFS_EACCES;
	case EROFS:
		return SFS_EROFS;
	case ENOSPC:
		return SFS_ENOSPC;
	default:
		return SFS_EIO;
	}
}

/* A regular log must be the caller's (SPEC §1) and private: umask or an
 * older file may have left other bits. Devices (tests use /dev/full; a
 * store's own log is a regular file, storedir.h) are left as they are. */
static int log_private(int fd, const char *path, struct sfs_error *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return sfs_error_set(err, errno_code(errno),
				     "cannot stat audit log '%s': %s", path,
				     sfs_strerrno(errno));
	if (!S_ISREG(st.st_mode))
		return SFS_OK;
	if (st.st_uid != geteuid())
		return sfs_error_set(err, SFS_EACCES,
				     "audit log '%s' is owned by uid %u, not "
				     "by you: refused",
				     path, (unsigned)st.st_uid);
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		return sfs_error_set(err, errno_code(errno),
				     "cannot make audit log '%s' private: %s",
				     path, sfs_strerrno(errno));
	return SFS_OK;
}

/* Open (creating) the log at path, never through a symlink: one to a
 * root file would have lines appended to it and its mode changed. The
 * descriptor, or a negative code. */
static int log_open(const char *path, struct sfs_error *err)
{
	int fd = open(path,
		      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
			  O_NOFOLLOW,
		      0600);
	int rc;

	if (fd < 0)
		return sfs_error_set(err, errno_code(errno),
				     "cannot open audit log '%s': %s", path,
				     errno == ELOOP ? "a symbolic link: refused"
						    : sfs_strerrno(errno));
	rc = log_private(fd, path, err);
	if (rc != SFS_OK) {
		close(fd);
		return rc;
	}
	return fd;
}

int sfs_audit_open(struct sfs_audit **out, const char *path,
		   struct sfs_error *err)
{
	struct sfs_audit *a;
	struct stat st;
	int fd;

	*out = NULL;
	fd = log_open(path, err);
	if (fd < 0)
		return fd;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->path = strdup(path)) || fstat(fd, &st) != 0) {
		if (a)
			free(a->path);
		free(a);
		close(fd);
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	}
	a->fd = fd;
	a->max = SFS_AUDIT_MAX_DEFAULT;
	a->size = (int64_t)st.st_size;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	pthread_mutex_init(&a->turn, NULL);
	pthread_mutex_init(&a->limit, NULL);
	*out = a;
	return SFS_OK;
}

void sfs_audit_set_max(struct sfs_audit *a, int64_t max)
{
	if (a)
		a->max = max;
}

void sfs_audit_reopen(struct sfs_audit *a)
{
	if (a)
		__atomic_store_n(&a->reopen, 1, __ATOMIC_RELAXED);
}

static int flush_summaries(struct sfs_audit *a, int64_t second, int all);

void sfs_audit_close(struct sfs_audit *a)
{
	if (!a)
		return;
	while (flush_summaries(a, 0, 1) == LIMIT_FLUSH)
		;
	close(a->fd);
	pthread_mutex_destroy(&a->turn);
	pthread_mutex_destroy(&a->limit);
	free(a->path);
	free(a);
}

/* ---- rotation and reopening -------------------------------------------- */

static int64_t mono_second(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec;
}

/* turn held: point the descriptor at the file now at path (made if
 * missing). Lines written before are synced first: a change's line must
 * be durable before the store drops its copy (ctx.c). */
static int reopen_locked(struct sfs_audit *a)
{
	struct stat st;
	int fd = log_open(a->path, NULL), rc = SFS_EIO;

	if (fd < 0)
		return fd;
	fdatasync(a->fd);
	if (fstat(fd, &st) == 0 && dup2(fd, a->fd) >= 0) {
		a->dev = st.st_dev;
		a->ino = st.st_ino;
		__atomic_store_n(&a->size, (int64_t)st.st_size,
				 __ATOMIC_RELAXED);
		rc = SFS_OK;
	}
	close(fd);
	return rc;
}

/* path.N (N > 0) or path itself (N == 0) into out. */
static void numbered(const struct sfs_audit *a, int n, char *out, size_t cap)
{
	if (n)
		snprintf(out, cap, "%s.%d", a->path, n);
	else
		snprintf(out, cap, "%s", a->path);
}

/* turn held: is the file at path still the one the descriptor writes? */
static int current(const struct sfs_audit *a, struct stat *st)
{
	return stat(a->path, st) == 0 && st->st_dev == a->dev &&
	       st->st_ino == a->ino;
}

/* turn held: rotate the log when it is still ours and full (another
 * process may just have done it), then write to the new one. */
static int rotate_locked(struct sfs_audit *a)
{
	char from[4096], to[4096];
	struct stat st;
	int lk = dup(a->fd), i, rc;

	if (lk < 0)
		return SFS_EIO;
	flock(lk, LOCK_EX); /* against another process rotating it */
	if (current(a, &st) && st.st_size >= a->max) {
		for (i = SFS_AUDIT_KEEP; i > 0; i--) {
			numbered(a, i - 1, from, sizeof(from));
			numbered(a, i, to, sizeof(to));
			rename(from, to); /* a missing .N is fine */
		}
	}
	rc = reopen_locked(a);
	close(lk); /* and its lock */
	return rc;
}

/* Before a line: rotate when full, reopen when asked (SIGHUP) or when
 * the file at path is another (rotated by another process, logrotate).
 * A failure leaves the line to the file in use: it is still written. */
static void maybe_turn(struct sfs_audit *a)
{
	int64_t sec = mono_second();
	struct stat st;
	int full =
	    a->max > 0 && __atomic_load_n(&a->size, __ATOMIC_RELAXED) >= a->max;
	/* loads first: no shared cache line is written per line */
	int asked = __atomic_load_n(&a->reopen, __ATOMIC_RELAXED) &&
		    __atomic_exchange_n(&a->reopen, 0, __ATOMIC_RELAXED);

	if (!full && !asked &&
	    (__atomic_load_n(&a->checked, __ATOMIC_RELAXED) == sec ||
	     __atomic_exchange_n(&a->checked, sec, __ATOMIC_RELAXED) == sec))
		return;
	pthread_mutex_lock(&a->turn);
	if (full && rotate_locked(a) != SFS_OK)
		/* try again after as many bytes, not at every line */
		__atomic_store_n(&a->size, 0, __ATOMIC_RELAXED);
	else if (!full && (asked || !current(a, &st)))
		reopen_locked(a);
	pthread_mutex_unlock(&a->turn);
}

/* One write(2) of a whole line, counted towards the size. */
static int write_line(struct sfs_audit *a, const char *line, size_t len)
{
	ssize_t w;

	/* One write: a retry after a short write could interleave. */
	do {
		w = write(a->fd, line, len);
	} while (w < 0 && errno == EINTR);
	if (w > 0)
		__atomic_add_fetch(&a->size, (int64_t)w, __ATOMIC_RELAXED);
	return (w < 0 || (size_t)w != len) ? SFS_EIO : SFS_OK;
}

/* Length of the valid UTF-8 sequence at s, or 0 when invalid; its code
 * point in *out. */
static size_t utf8_cp(const unsigned char *s, unsigned *out)
{
	size_t n, i;
	unsigned cp;

	*out = s[0];
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	cp = s[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	*out = cp;
	return n;
}

static size_t utf8_seq(const unsigned char *s)
{
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	return utf8_cp(s, &cp);
}

/*
 * Code points that a line never holds raw (SPEC §5: control characters
 * of any kind; issue 10, finding 11), since a terminal or a log viewer
 * acts on them: C0, DEL, C1 (U+0085 NEL among them), the line and
 * paragraph separators U+2028/U+2029, and the bidirectional controls
 * that reorder what a terminal shows (U+061C, U+200E/F, U+202A-E,
 * U+2066-9). They are written as \uXXXX.
 */
static int escaped_cp(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
	       cp == 0x2029 || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Set key to text, null when text is NULL. JSON strings must be UTF-8, and
 * a name or a process's comm may not be: invalid bytes become '?', so that
 * a strange name can never make the audit line (and so the read) fail.
 */
static int set_text(struct sfs_json *j, const char *key, const char *text)
{
	char *copy;
	size_t i, n;
	int rc;

	if (!text)
		return sfs_json_set_null(j, key);
	for (i = 0; text[i]; i += n)
		if ((n = utf8_seq((const unsigned char *)text + i)) == 0)
			break;
	if (!text[i])
		return sfs_json_set_str(j, key, text);
	copy = strdup(text);
	if (!copy)
		return SFS_ENOMEM;
	for (i = 0; copy[i]; i += n) {
		n = utf8_seq((const unsigned char *)copy + i);
		if (n == 0) {
			copy[i] = '?';
			n = 1;
		}
	}
	rc = sfs_json_set_str(j, key, copy);
	free(copy);
	return rc;
}

static int set_caller(struct sfs_json *j, const struct sfs_caller *c)
{
	char comm[sizeof(c->comm)];
	int bad = 0;

	if (!c)
		return SFS_OK;
	bad |= sfs_json_set_int(j, "uid", c->uid);
	if (!c->via_fs)
		return bad ? SFS_ENOMEM : SFS_OK;
	memcpy(comm, c->comm, sizeof(comm));
	comm[sizeof(comm) - 1] = '\0';
	bad |= sfs_json_set_int(j, "gid", c->gid);
	bad |= sfs_json_set_int(j, "pid", c->pid);
	bad |= set_text(j, "comm", comm);
	return bad ? SFS_ENOMEM : SFS_OK;
}

/* The event as one JSON line with its newline; *line malloc'd. */
static int build_line(const struct sfs_audit_event *ev, char **line,
		      size_t *len)
{
	struct sfs_json *j = sfs_json_object();
	char now[32], *text = NULL;
	int bad = 0;

	*line = NULL;
	if (!j)
		return SFS_ENOMEM;
	sfs_time_format(sfs_time_now(), now);
	bad |= sfs_json_set_str(j, "time", now);
	bad |= set_text(j, "op", ev->op);
	bad |= set_text(j, "secret", ev->secret);
	bad |= set_text(j, "secret_id", ev->secret_id);
	bad |= ev->version ? sfs_json_set_int(j, "version", ev->version)
			   : sfs_json_set_null(j, "version");
	bad |= sfs_json_set_str(j, "result", sfs_err_name(ev->result));
	if (ev->key)
		bad |= set_text(j, "key", ev->key);
	if (ev->host)
		bad |= set_text(j, "host", ev->host);
	bad |= set_caller(j, ev->caller);
	if (ev->suppressed)
		bad |=
		    sfs_json_set_int(j, "suppressed", (int64_t)ev->suppressed);
	if (!bad)
		text = sfs_json_dump(j, 0);
	sfs_json_free(j);
	if (text) { /* jansson leaves DEL, C1, U+2028 ... raw */
		char *safe = sfs_audit_printable(text);

		free(text);
		text = safe;
	}
	if (!text)
		return SFS_ENOMEM;
	*len = strlen(text);
	*line = realloc(text, *len + 2);
	if (!*line) {
		free(text);
		return SFS_ENOMEM;
	}
	(*line)[(*len)++] = '\n';
	(*line)[*len] = '\0';
	return SFS_OK;
}

/*
 * The same line as build_line() gives, byte for byte (jansson's compact
 * form: quote, backslash and control characters escaped, \u00XX in
 * upper case, everything else as is), written into a caller's buffer
 * with no allocation: one is built for every value read. 0, or -1 when
 * it does not fit (then build_line() makes it).
 */
struct lbuf {
	char *p;
	size_t len, cap;
	int over;
};

static void put(struct lbuf *b, const char *s, size_t n)
{
	if (b->over || n > b->cap - b->len) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* \uXXXX of a code point below U+10000, upper-case hex as jansson's. */
static void put_u(struct lbuf *b, unsigned cp)
{
	char esc[8];

	snprintf(esc, sizeof(esc), "\\u%04X", cp & 0xffff);
	put(b, esc, 6);
}

/* Length of the run of printable ASCII at s that needs no escape. */
static size_t plain_run(const unsigned char *s)
{
	size_t n = 0;

	while (s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"' && s[n] != '\\')
		n++;
	return n;
}

static void put_quoted(struct lbuf *b, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)text;
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};
	size_t n;

	put(b, "\"", 1);
	unsigned cp;

	for (; *s && !b->over; s += n) {
		n = plain_run(s);
		if (n) { /* copied as is, a run at a time */
			put(b, (const char *)s, n);
			continue;
		}
		n = utf8_cp(s, &cp);
		if (n == 0) { /* as set_text(): an invalid byte is '?' */
			put(b, "?", 1);
			n = 1;
		} else if (*s == '"' || *s == '\\') {
			esc[1] = (char)*s;
			put(b, esc, 2);
		} else if (*s < 0x20) {
			esc[1] = *s == '\b' ? 'b' : *s == '\f' ? 'f'
			       : *s == '\n' ? 'n' : *s == '\r' ? 'r'
			       : *s == '\t' ? 't' : 'u';
			esc[4] = hex[*s >> 4];
			esc[5] = hex[*s & 15];
			put(b, esc, esc[1] == 'u' ? 6 : 2);
		} else if (escaped_cp(cp)) {
			put_u(b, cp);
		} else {
			put(b, (const char *)s, n);
		}
	}
	put(b, "\"", 1);
}

static void put_field(struct lbuf *b, const char *key, const char *text)
{
	put(b, ",\"", 2);
	put(b, key, strlen(key));
	put(b, "\":", 2);
	if (text)
		put_quoted(b, text);
	else
		put(b, "null", 4);
}

/* The decimal digits of v, as "%lld" prints them, without stdio. */
static void put_num(struct lbuf *b, const char *key, int64_t v)
{
	char num[24], *p = num + sizeof(num);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	put(b, ",\"", 2);
	put(b, key, strlen(key));
	put(b, "\":", 2);
	put(b, p, (size_t)(num + sizeof(num) - p));
}

/* The line's time, formatted once a second per thread rather than at
 * every line (every open of a value writes one). */
static void line_time(char out[32])
{
	static _Thread_local int64_t second = -1;
	static _Thread_local char text[32];
	int64_t ns = sfs_time_now();

	if (ns < 0 || ns / NS_PER_SEC != second) {
		sfs_time_format(ns, text);
		second = ns < 0 ? -1 : ns / NS_PER_SEC;
	}
	memcpy(out, text, sizeof(text));
}

static int fast_line(const struct sfs_audit_event *ev, struct lbuf *b)
{
	const struct sfs_caller *c = ev->caller;
	char now[32], comm[sizeof(c->comm)];

	line_time(now);
	put(b, "{\"time\":\"", 9);
	put(b, now, strlen(now));
	put(b, "\"", 1);
	put_field(b, "op", ev->op);
	put_field(b, "secret", ev->secret);
	put_field(b, "secret_id", ev->secret_id);
	if (ev->version)
		put_num(b, "version", ev->version);
	else
		put_field(b, "version", NULL);
	put_field(b, "result", sfs_err_name(ev->result));
	if (ev->key)
		put_field(b, "key", ev->key);
	if (ev->host)
		put_field(b, "host", ev->host);
	if (c) {
		put_num(b, "uid", c->uid);
		if (c->via_fs) {
			memcpy(comm, c->comm, sizeof(comm));
			comm[sizeof(comm) - 1] = '\0';
			put_num(b, "gid", c->gid);
			put_num(b, "pid", c->pid);
			put_field(b, "comm", comm);
		}
	}
	if (ev->suppressed)
		put_num(b, "suppressed", (int64_t)ev->suppressed);
	put(b, "}\n", 2);
	return b->over ? -1 : 0;
}

char *sfs_audit_printable(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), n;
	struct lbuf b = {NULL, 0, 6 * len + 1, 0};
	unsigned cp;

	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	for (; *s; s += n) {
		n = utf8_cp(s, &cp);
		if (n == 0) { /* an invalid byte (0x9b is CSI to some) */
			put(&b, "?", 1);
			n = 1;
		} else if (escaped_cp(cp)) {
			put_u(&b, cp);
		} else {
			put(&b, (const char *)s, n);
		}
	}
	b.p[b.len] = '\0';
	return b.p;
}

int sfs_audit_line(const struct sfs_audit_event *ev, char **line,
		   size_t *len)
{
	char stack[1024];
	struct lbuf b = {stack, 0, sizeof(stack), 0};

	if (fast_line(ev, &b) != 0)
		return build_line(ev, line, len);
	*line = malloc(b.len + 1);
	if (!*line)
		return SFS_ENOMEM;
	memcpy(*line, stack, b.len);
	(*line)[b.len] = '\0';
	*len = b.len;
	return SFS_OK;
}

int sfs_audit_append(struct sfs_audit *a, const char *line, size_t len)
{
	if (!a)
		return SFS_OK;
	maybe_turn(a);
	return write_line(a, line, len);
}

int sfs_audit_sync(struct sfs_audit *a)
{
	if (!a)
		return SFS_OK;
	return fdatasync(a->fd) < 0 ? SFS_EIO : SFS_OK;
}

/*
 * The end of the log by lseek, not fstat: a stat marks the file's times
 * as seen, so with multigrain timestamps (Linux 6.13+) the next append
 * takes a fine-grained time and moves the clock every file's next
 * change reads; the store's WAL, written right after this call, then
 * gets a new mtime at every commit, and its fdatasync writes the inode
 * too (one more disk write per commit on ext4). The position of an
 * O_APPEND descriptor does not matter to its writes.
 */
int64_t sfs_audit_size(struct sfs_audit *a)
{
	off_t end;

	if (!a || (end = lseek(a->fd, 0, SEEK_END)) < 0)
		return 0;
	return (int64_t)end;
}

int sfs_audit_tail(struct sfs_audit *a, int64_t from, char **buf,
		   size_t *len)
{
	struct stat st;
	ssize_t n = 0;
	size_t got = 0;
	int fd, rc = SFS_OK;

	*buf = NULL;
	*len = 0;
	fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = errno_code(errno);
		goto out;
	}
	if (from < 0 || from > (int64_t)st.st_size)
		from = 0; /* truncated or replaced: look at all of it */
	*buf = malloc((size_t)(st.st_size - from) + 1);
	if (!*buf) {
		rc = SFS_ENOMEM;
		goto out;
	}
	while (got < (size_t)(st.st_size - from)) {
		n = pread(fd, *buf + got, (size_t)(st.st_size - from) - got,
			  from + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (n < 0)
		rc = SFS_EIO;
	(*buf)[got] = '\0';
	*len = got;
out:
	if (fd >= 0)
		close(fd);
	if (rc) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return rc;
}

/* ---- refused lines: a limit per uid ------------------------------------ */

/* The summary of a slot's left-out lines, into ev (with its caller c);
 * limit held. */
static void summary_take(struct sfs_audit *a, struct limit_slot *l,
			 struct sfs_audit_event *ev, struct sfs_caller *c)
{
	memset(ev, 0, sizeof(*ev));
	memset(c, 0, sizeof(*c));
	c->uid = l->uid;
	ev->op = "audit.suppressed";
	ev->result = l->result;
	ev->caller = l == &a->slots[LIMIT_SLOTS] ? NULL : c;
	ev->suppressed = l->suppressed;
	l->suppressed = 0;
}

static int write_event(struct sfs_audit *a, const struct sfs_audit_event *ev);

/* Write the summaries of slots whose second is over (all: every one),
 * LIMIT_FLUSH at most per call; how many. */
static int flush_summaries(struct sfs_audit *a, int64_t second, int all)
{
	struct sfs_audit_event ev[LIMIT_FLUSH];
	struct sfs_caller c[LIMIT_FLUSH];
	int i, n = 0;

	pthread_mutex_lock(&a->limit);
	for (i = 0; i <= LIMIT_SLOTS && n < LIMIT_FLUSH; i++) {
		struct limit_slot *l = &a->slots[i];

		if (!l->used || !l->suppressed || (!all && l->second >= second))
			continue;
		summary_take(a, l, &ev[n], &c[n]);
		n++;
		__atomic_sub_fetch(&a->pending, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&a->limit);
	for (i = 0; i < n; i++)
		write_event(a, &ev[i]);
	return n;
}

/*
 * limit held: uid's slot, found among LIMIT_PROBE from its hash, else one
 * that is free or whose second is over (its summary, if any, handed back
 * in *evicted: ev->suppressed non-zero), else the shared last one.
 */
static struct limit_slot *limit_find(struct sfs_audit *a, uint32_t uid,
				     int64_t second,
				     struct sfs_audit_event *evicted,
				     struct sfs_caller *c)
{
	unsigned h = (uid * 2654435761u) % LIMIT_SLOTS, i;
	struct limit_slot *l, *take = NULL;

	for (i = 0; i < LIMIT_PROBE; i++) {
		l = &a->slots[(h + i) % LIMIT_SLOTS];
		if (l->used && l->uid == uid)
			return l;
		if (!take && (!l->used || l->second < second))
			take = l;
	}
	if (!take)
		return &a->slots[LIMIT_SLOTS];
	if (take->used && take->suppressed) {
		summary_take(a, take, evicted, c);
		__atomic_sub_fetch(&a->pending, 1, __ATOMIC_RELAXED);
	}
	memset(take, 0, sizeof(*take));
	take->used = 1;
	take->uid = uid;
	take->second = second;
	return take;
}

/* Does this refused line of uid go to the log (1) or is it left out and
 * counted (0)? */
static int limit_pass(struct sfs_audit *a, uint32_t uid, int result,
		      int64_t second, struct sfs_audit_event *evicted,
		      struct sfs_caller *c)
{
	struct limit_slot *l;
	int pass;

	pthread_mutex_lock(&a->limit);
	l = limit_find(a, uid, second, evicted, c);
	l->used = 1;
	if (l->second != second) {
		l->second = second;
		l->lines = 0;
	}
	pass = l->lines < REFUSED_PER_SEC;
	if (pass) {
		l->lines++;
	} else {
		if (!l->suppressed)
			__atomic_add_fetch(&a->pending, 1, __ATOMIC_RELAXED);
		l->suppressed++;
		l->result = result;
	}
	pthread_mutex_unlock(&a->limit);
	return pass;
}

/* ---- writing ------------------------------------------------------------ */

static int write_event(struct sfs_audit *a, const struct sfs_audit_event *ev)
{
	char stack[1024], *line = NULL;
	struct lbuf b = {stack, 0, sizeof(stack), 0};
	size_t len;
	int rc;

	if (fast_line(ev, &b) == 0) {
		len = b.len;
	} else {
		rc = build_line(ev, &line, &len);
		if (rc)
			return rc;
	}
	maybe_turn(a);
	rc = write_line(a, line ? line : stack, len);
	if (rc == SFS_OK && ev->sync && fdatasync(a->fd) < 0)
		rc = SFS_EIO;
	free(line);
	return rc;
}

int sfs_audit_write(struct sfs_audit *a, const struct sfs_audit_event *ev)
{
	struct sfs_audit_event evicted = {.suppressed = 0};
	struct sfs_caller c;
	int64_t second;
	int pass = 1;

	if (!a)
		return SFS_OK;
	second = mono_second();
	if (__atomic_load_n(&a->pending, __ATOMIC_RELAXED))
		flush_summaries(a, second, 0);
	if (ev->result != SFS_OK && ev->caller)
		pass = limit_pass(a, ev->caller->uid, ev->result, second,
				  &evicted, &c);
	if (evicted.suppressed)
		write_event(a, &evicted);
	/* a refused line left out is counted, not lost: still audited */
	return pass ? write_event(a, ev) : SFS_OK;
}

/* --- reading back ------------------------------------------------------ */

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
		return sfs_error_set(err, errno_code(errno),
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
