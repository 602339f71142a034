/*
 * Shared by the reliability suites (test_crash, test_tamper, test_memory,
 * test_badinput, test_diskfull, test_concurrency, test_hung), on top of
 * mount_harness.h: self-checking values (a value names itself, so any
 * stored or read value can be proven complete and exact), the store read
 * back through the core (no daemon, no audit lines), a daemon SIGKILLed
 * and its mount gone, and a suite with a per-suite timeout.
 *
 * Static functions in a header: each suite is its own program.
 */
#ifndef SECRETFS_REL_UTIL_H
#define SECRETFS_REL_UTIL_H

#include <dirent.h>

#include "mount_harness.h"
#include "secretfs/ctx.h"
#include "secretfs/secret.h"
#include "secretfs/version.h"

/* ---- self-checking values -------------------------------------------- */

#define RU_TAG_MAX 64

/* The value named tag: "tag:" then bytes derived from tag; its length
 * (40..len_cap) is derived from tag too. buf holds len_cap bytes. */
__attribute__((unused)) static size_t ru_value(const char *tag,
					       unsigned char *buf,
					       size_t len_cap)
{
	uint32_t x = 2166136261u;
	size_t i, n, t = strlen(tag);

	for (i = 0; i < t; i++)
		x = (x ^ (unsigned char)tag[i]) * 16777619u;
	n = 40 + x % (len_cap > 40 ? len_cap - 39 : 1);
	if (n > len_cap)
		n = len_cap;
	memcpy(buf, tag, t);
	buf[t] = ':';
	for (i = t + 1; i < n; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)('a' + (x >> 16) % 26);
	}
	return n;
}

/* 1 when data is exactly the value its own tag names (tag copied out),
 * else 0. */
__attribute__((unused)) static int ru_value_ok(const unsigned char *data,
					       size_t len, size_t len_cap,
					       char tag[RU_TAG_MAX])
{
	static unsigned char want[SFS_VALUE_MAX];
	const unsigned char *colon = memchr(data, ':', len);
	size_t t, n;

	if (!colon || (size_t)(colon - data) >= RU_TAG_MAX)
		return 0;
	t = (size_t)(colon - data);
	memcpy(tag, data, t);
	tag[t] = '\0';
	n = ru_value(tag, want, len_cap);
	return n == len && memcmp(want, data, len) == 0;
}

/* ---- the store read back through the core ----------------------------- */

__attribute__((unused)) static struct sfs_ctx *ru_ctx(void)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *ctx = NULL;
	struct sfs_error e;

	memset(&o, 0, sizeof(o));
	o.store_dir = h_store;
	o.audit_off = 1;
	sfs_error_clear(&e);
	ck_assert_msg(sfs_ctx_open(&ctx, &o, &e) == 0, "open store: %s",
		      e.msg);
	return ctx;
}

/* The store's own consistency check (PRAGMA integrity_check). */
__attribute__((unused)) static void ru_assert_integrity(struct sfs_ctx *ctx)
{
	struct sfs_store *s = sfs_ctx_store(ctx);
	struct sfs_error e;

	sfs_error_clear(&e);
	ck_assert_msg(sfs_store_check(s, &e) == 0, "integrity: %s", e.msg);
}

struct ru_nums {
	uint32_t n[8192];
	int count;
};

static int ru_nums_cb(void *arg, const struct sfs_version_rec *v)
{
	struct ru_nums *l = arg;

	if (l->count < 8192)
		l->n[l->count++] = v->version;
	return 0;
}

/* Numbers of the versions of name that are not destroyed. */
__attribute__((unused)) static void ru_versions(struct sfs_ctx *ctx,
						const char *name,
						struct ru_nums *out)
{
	struct sfs_caller c;
	struct sfs_error e;

	sfs_caller_self(&c);
	sfs_error_clear(&e);
	out->count = 0;
	ck_assert_msg(sfs_version_list(ctx, &c, name, 0, ru_nums_cb, out,
				       &e) == 0,
		      "list %s: %s", name, e.msg);
}

/* ---- the daemon -------------------------------------------------------- */

/* 1 when mp is a mount point in this namespace. */
static int ru_mounted(const char *mp)
{
	char line[4096], f[5][1024];
	FILE *m = fopen("/proc/self/mountinfo", "r");
	int found = 0;

	if (!m)
		return 0;
	while (!found && fgets(line, sizeof(line), m))
		if (sscanf(line, "%1023s %1023s %1023s %1023s %1023s", f[0],
			   f[1], f[2], f[3], f[4]) == 5 &&
		    !strcmp(f[4], mp))
			found = 1;
	fclose(m);
	return found;
}

__attribute__((unused)) static void ru_msleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* 1 when every thread of pid is stopped (state T or t). */
static int ru_all_stopped(pid_t pid)
{
	char path[64], line[512], *p;
	struct dirent *e;
	DIR *d;
	FILE *f;
	int all = 1, any = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return 0;
	while (all && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/stat",
			 (int)pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* a thread that just ended */
		/* "tid (comm) S ...": the state follows the last ')' */
		p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
		all = p && (p[2] == 'T' || p[2] == 't');
		any = 1;
		fclose(f);
	}
	closedir(d);
	return all && any;
}

/* SIGSTOP pid and wait (readiness, not a timed assertion) until each of
 * its threads has stopped: kill() returns before they do, and a thread
 * still running would answer the request the test means to leave
 * waiting. */
__attribute__((unused)) static void ru_stop(pid_t pid)
{
	int i;

	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	for (i = 0; i < 15000 && !ru_all_stopped(pid); i++)
		ru_msleep(2);
	ck_assert_msg(ru_all_stopped(pid), "pid %d never stopped", (int)pid);
}

/* Wait (readiness, not a timed assertion) until mp is no mount; detach
 * it lazily if auto_unmount did not. */
static void ru_wait_unmounted(const char *mp)
{
	char *lazy[] = {"fusermount3", "-u", "-z", (char *)mp, NULL};
	int i;

	for (i = 0; i < 2000 && ru_mounted(mp); i++)
		ru_msleep(2);
	if (ru_mounted(mp))
		h_run(lazy, NULL);
}

/* The fuse connection number of the mount at mp (its minor device
 * number), or -1. */
static long ru_conn_of(const char *mp)
{
	char line[4096], f[5][1024];
	FILE *m = fopen("/proc/self/mountinfo", "r");
	unsigned maj, min;
	long conn = -1;

	if (!m)
		return -1;
	while (conn < 0 && fgets(line, sizeof(line), m))
		if (sscanf(line, "%1023s %1023s %1023s %1023s %1023s", f[0],
			   f[1], f[2], f[3], f[4]) == 5 &&
		    !strcmp(f[4], mp) && sscanf(f[2], "%u:%u", &maj, &min) == 2)
			conn = (long)min;
	fclose(m);
	return conn;
}

/* Make sure the fuse control filesystem is mounted (root only); 0 when
 * /sys/fs/fuse/connections is usable. */
__attribute__((unused)) static int ru_fusectl(void)
{
	char *argv[] = {"mount", "-t", "fusectl", "fusectl",
			"/sys/fs/fuse/connections", NULL};
	struct stat st;

	if (ru_mounted("/sys/fs/fuse/connections"))
		return 0;
	if (geteuid() != 0 || stat("/sys/fs/fuse/connections", &st))
		return -1;
	return h_run(argv, NULL) == 0 ? 0 : -1;
}

/*
 * Abort the fuse connection of the mount at mp through fusectl (the
 * recovery for a hung daemon): every request waiting on it ends with
 * ENOTCONN. 0 when aborted, -1 when not possible.
 */
__attribute__((unused)) static int ru_abort_conn(const char *mp)
{
	char path[128];
	long conn = ru_conn_of(mp);
	int fd, ok;

	if (conn < 0 || ru_fusectl())
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%ld/abort",
		 conn);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, "1", 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

/* 1 when a thread of pid waits in the kernel to invalidate a name
 * (fuse_reverse_inval_entry), where SIGKILL cannot reach it. */
static int ru_stuck_in_inval(pid_t pid)
{
	char path[300], w[128];
	struct dirent *t;
	DIR *d;
	int fd, stuck = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while (!stuck && (t = readdir(d))) {
		if (t->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/wchan",
			 (int)pid, t->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, w, sizeof(w) - 1);
		close(fd);
		w[n > 0 ? n : 0] = '\0';
		stuck = strstr(w, "fuse_reverse_inval") != NULL;
	}
	closedir(d);
	return stuck;
}

/*
 * SIGKILL the test's daemon (our own pid), reap it and wait for its mount
 * to go (auto_unmount). 1 when it died of the signal alone; 0 when it
 * could not die (a thread stuck in the kernel, see test_crash.c) and its
 * connection had to be aborted through fusectl to free it and every
 * caller waiting on it.
 */
__attribute__((unused)) static int ru_kill_daemon(void)
{
	int st, i, died = 1;

	if (h_daemon <= 0)
		return 1;
	kill(h_daemon, SIGKILL);
	/* readiness, not a timed assertion: a killed process is gone in
	 * microseconds unless something holds it in the kernel */
	for (i = 0; i < 1000 && waitpid(h_daemon, &st, WNOHANG) == 0; i++) {
		if (i == 50 && ru_stuck_in_inval(h_daemon))
			i = 999;
		ru_msleep(2);
	}
	if (i >= 1000) {
		died = 0;
		ru_abort_conn(h_mp);
		waitpid(h_daemon, &st, 0);
	}
	h_daemon = -1;
	ru_wait_unmounted(h_mp);
	return died;
}

/* Like h_suite, with the suite's own per-test timeout (seconds). */
__attribute__((unused)) static Suite *
ru_suite(const char *name, const TTest *const *tests, size_t n, double timeout)
{
	return harness_suite(name, tests, n, h_setup, h_teardown, timeout);
}

#endif
