/*
 * Audit log: one JSON line per value read and per change (SPEC §5),
 * appended to the log file, which rotates itself.
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
 * The lines themselves are made by audit_line.c; reading the log back
 * (`secretfs audit`) is audit_read.c.
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

#include "audit_line.h"
#include "secretfs/audit.h"
#include "secretfs/storedir.h"

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

/* A regular log must be the caller's (SPEC §1) and private: umask or an
 * older file may have left other bits. Devices (tests use /dev/full; a
 * store's own log is a regular file, storedir.h) are left as they are. */
static int log_private(int fd, const char *path, struct sfs_error *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return sfs_error_set(err, sfs_storedir_errcode(errno),
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
		return sfs_error_set(err, sfs_storedir_errcode(errno),
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
		return sfs_error_set(err, sfs_storedir_errcode(errno),
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

int sfs_audit_tail(struct sfs_audit *a, int64_t from, char **buf, size_t *len)
{
	struct stat st;
	ssize_t n = 0;
	size_t got = 0;
	int fd, rc = SFS_OK;

	*buf = NULL;
	*len = 0;
	fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = sfs_storedir_errcode(errno);
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
	char stack[AUDIT_LINE_STACK], *line = NULL;
	size_t len = audit_line_fill(ev, stack, sizeof(stack));
	int rc;

	if (len == 0 && (rc = sfs_audit_line(ev, &line, &len)) != SFS_OK)
		return rc;
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
