/*
 * Harness for the mount suites (tests/test_mount*.c): each test gets a
 * fresh store and an empty mountpoint under a temporary directory, runs
 * the real daemon ($SECRETFS_BIN mount -f) in a child, and always
 * unmounts. The daemon runs in its own process group (Check SIGKILLs
 * the test's group) with PR_SET_PDEATHSIG = SIGTERM, so
 * even when an assertion ends the test process early (Check's fork mode
 * exits without running the teardown) the daemon unmounts itself; the
 * checked teardown unmounts with fusermount3 and reaps it on every
 * normal path. Only pids started here are ever signalled.
 *
 * Files are opened O_CLOEXEC: a write handle inherited by a CLI child
 * would commit (at the child's close) before the test's own close.
 *
 * Static functions in a header: each suite is its own program.
 */
#ifndef SECRETFS_MOUNT_HARNESS_H
#define SECRETFS_MOUNT_HARNESS_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "lib/harness.h"
#include "lib/testutil.h"

static char *h_base;
static char h_store[512], h_mp[512], h_log[512];
static pid_t h_daemon = -1;

static const char *h_bin(void)
{
	const char *b = getenv("SECRETFS_BIN");

	return b && *b ? b : "build/secretfs";
}

/* A path under the mountpoint (8 rotating buffers). */
__attribute__((unused)) static const char *P(const char *rel)
{
	static char buf[8][1024];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", h_mp, rel);
	return buf[i];
}

/* Run argv; stdout into *out (malloc'd) when out is set. Exit status,
 * or -1 when it did not exit normally. */
static int h_run(char *const argv[], char **out)
{
	int fds[2], st;
	pid_t pid;
	size_t len = 0, cap = 0;
	ssize_t n;
	char *buf = NULL, chunk[4096];

	if (out && pipe(fds))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (out) {
			dup2(fds[1], 1);
			close(fds[0]);
			close(fds[1]);
		} else {
			int null = open("/dev/null", O_WRONLY);

			dup2(null, 1); /* keep the suite's output readable */
			close(null);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (out) {
		close(fds[1]);
		while ((n = read(fds[0], chunk, sizeof(chunk))) > 0) {
			if (len + (size_t)n + 1 > cap) {
				cap = (len + (size_t)n + 1) * 2;
				buf = realloc(buf, cap);
				if (!buf)
					abort();
			}
			memcpy(buf + len, chunk, (size_t)n);
			len += (size_t)n;
		}
		close(fds[0]);
		if (!buf)
			buf = calloc(1, 1);
		buf[len] = '\0';
		*out = buf;
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* secretfs --store STORE args... (NULL-terminated); exit status. */
static int cli_v(char **out, const char *first, va_list ap)
{
	char *argv[32];
	const char *a;
	int n = 0;

	argv[n++] = (char *)h_bin();
	argv[n++] = "--store";
	argv[n++] = h_store;
	for (a = first; a && n < 31; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	argv[n] = NULL;
	return h_run(argv, out);
}

__attribute__((unused)) static int cli(const char *first, ...)
{
	va_list ap;
	int rc;

	va_start(ap, first);
	rc = cli_v(NULL, first, ap);
	va_end(ap);
	return rc;
}

__attribute__((unused)) static char *cli_out(const char *first, ...)
{
	va_list ap;
	char *out = NULL;
	int rc;

	va_start(ap, first);
	rc = cli_v(&out, first, ap);
	va_end(ap);
	ck_assert_msg(rc == 0, "secretfs %s: exit %d", first, rc);
	return out;
}

/* Start `secretfs mount MP -f [-o opts]` on mp; 0 once it serves, else
 * the daemon's exit status (it printed why to h_log). */
static int h_mount_at(const char *mp, const char *opts, pid_t *out)
{
	pid_t pid, self = getpid();
	int st, i, fd;
	char path[600];
	struct stat sb;
	struct timespec ts = {0, 5 * 1000 * 1000};

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Own process group: Check kills the test's group with
		 * SIGKILL after a test, which would leave the mount behind;
		 * SIGTERM at the test's death unmounts cleanly instead. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != self)
			_exit(1);
		fd = open(h_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		/* auto_unmount: a daemon that crashes leaves no mount. */
		snprintf(path, sizeof(path), "auto_unmount%s%s",
			 opts ? "," : "", opts ? opts : "");
		execl(h_bin(), h_bin(), "--store", h_store, "mount", mp, "-f",
		      "-o", path, (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/.status", mp);
	for (i = 0; i < 4000; i++) { /* readiness, not a timed assertion */
		if (stat(path, &sb) == 0) {
			*out = pid;
			return 0;
		}
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	return -1;
}

/* The pid of the daemon serving mp (its command line has " mount " and
 * mp), from /proc; -1 if none. For a daemonized mount (no -f), whose
 * daemon is not the test's child. */
__attribute__((unused)) static pid_t h_daemon_of(const char *mp)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300], cmd[4096];
	pid_t found = -1;
	ssize_t n, i;
	int fd;

	while (d && (e = readdir(d)) && found < 0) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		for (i = 0; i < n; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		cmd[n > 0 ? n : 0] = '\0';
		if (strstr(cmd, " mount ") && strstr(cmd, mp))
			found = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

/* Unmount and reap; the daemon's exit status (a sanitizer's report
 * makes it non-zero). */
static int h_umount_at(const char *mp, pid_t *pid)
{
	char *argv[] = {"fusermount3", "-u", (char *)mp, NULL};
	char *lazy[] = {"fusermount3", "-u", "-z", (char *)mp, NULL};
	int st;

	int tries = 0;

	if (*pid <= 0)
		return 0;
	/* busy for a moment while the notifier makes an inotify event */
	while (h_run(argv, NULL) != 0) {
		if (++tries == 20) {
			h_run(lazy, NULL);
			kill(*pid, SIGTERM);
			break;
		}
		usleep(100 * 1000);
	}
	waitpid(*pid, &st, 0);
	*pid = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Mount the test's store on its mountpoint; fails the test if not up. */
__attribute__((unused)) static void up(const char *opts)
{
	int rc = h_mount_at(h_mp, opts, &h_daemon);
	char *log = tu_read_file(h_log, NULL);

	ck_assert_msg(rc == 0, "mount failed (%d): %s", rc, log ? log : "");
	free(log);
}

/* Unmount; the daemon must have exited cleanly. */
__attribute__((unused)) static void down(void)
{
	int rc = h_umount_at(h_mp, &h_daemon);
	char *log = rc ? tu_read_file(h_log, NULL) : NULL;

	ck_assert_msg(rc == 0, "daemon exit %d: %s", rc, log ? log : "");
	free(log);
}

static void h_setup(void)
{
	h_base = tu_tmpdir("mount");
	snprintf(h_store, sizeof(h_store), "%s/store", h_base);
	snprintf(h_mp, sizeof(h_mp), "%s/mnt", h_base);
	snprintf(h_log, sizeof(h_log), "%s/daemon.log", h_base);
	ck_assert_int_eq(mkdir(h_mp, 0755), 0);
	ck_assert_int_eq(chmod(h_base, 0755), 0); /* other uids reach mnt */
	ck_assert_int_eq(cli("init", NULL), 0);
}

static void h_teardown(void)
{
	down();
	if (h_base)
		tu_rmrf(h_base);
	free(h_base);
	h_base = NULL;
}

/* --- file helpers: 0 or the errno of the first failing call ---------- */

/* Read a whole file under the mount; *out malloc'd, NUL-terminated. */
__attribute__((unused)) static int slurp(const char *rel, char **out,
					 size_t *len)
{
	char *buf = malloc(70000);
	size_t n = 0;
	ssize_t r;
	int fd = open(P(rel), O_RDONLY | O_CLOEXEC), e;

	*out = NULL;
	if (fd < 0 || !buf) {
		e = errno;
		free(buf);
		return e;
	}
	while ((r = read(fd, buf + n, 69999 - n)) > 0)
		n += (size_t)r;
	e = r < 0 ? errno : 0;
	close(fd);
	if (e) {
		free(buf);
		return e;
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

/* Assert a file under the mount reads exactly s. */
#define assert_reads(rel, s)                                                   \
	do {                                                                   \
		char *got_;                                                    \
		size_t len_;                                                   \
		int e_ = slurp(rel, &got_, &len_);                             \
		ck_assert_msg(e_ == 0, "%s: %s", rel, strerror(e_));           \
		ck_assert_uint_eq(len_, strlen(s));                            \
		ck_assert_str_eq(got_, s);                                     \
		free(got_);                                                    \
	} while (0)

/* open(rel, flags) + write + close; 0 or the first errno. */
__attribute__((unused)) static int put(const char *rel, int flags,
				       const void *data, size_t len)
{
	int fd = open(P(rel), flags | O_CLOEXEC, 0600), e = 0;

	if (fd < 0)
		return errno;
	if (len && write(fd, data, len) != (ssize_t)len)
		e = errno ? errno : EIO;
	if (close(fd) && !e)
		e = errno;
	return e;
}

#define put_s(rel, flags, s) put(rel, flags, s, strlen(s))

/* errno of a call returning -1, else 0. */
#define ERR(call) ((call) < 0 ? errno : 0)

/* getxattr into a static buffer; NULL (errno set) on failure. */
__attribute__((unused)) static const char *xget(const char *rel,
						const char *name)
{
	static char buf[4096];
	ssize_t n = getxattr(P(rel), name, buf, sizeof(buf) - 1);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

#define assert_xattr(rel, name, s)                                             \
	do {                                                                   \
		const char *v_ = xget(rel, name);                              \
		ck_assert_msg(v_, "%s %s: %s", rel, name, strerror(errno));    \
		ck_assert_str_eq(v_, s);                                       \
	} while (0)

#define assert_xattr_err(rel, name, e)                                         \
	do {                                                                   \
		errno = 0;                                                     \
		ck_assert_ptr_null(xget(rel, name));                           \
		ck_assert_int_eq(errno, e);                                    \
	} while (0)

/* An as_user() child body: read secrets/NAME/default (arg: NAME) whole;
 * 0 or the errno that stopped it. */
__attribute__((unused)) static int read_default(void *arg)
{
	char rel[300], *got;
	size_t len;
	int e;

	snprintf(rel, sizeof(rel), "secrets/%s/default", (const char *)arg);
	e = slurp(rel, &got, &len);
	free(got);
	return e;
}

/* Run fn(arg) in a child as uid/gid with the n supplementary groups
 * groups[] (set before the child touches the mount); its return value
 * (an errno or 0) is the child's exit status. */
__attribute__((unused)) static int as_user_groups(uid_t uid, gid_t gid,
						  const gid_t *groups, size_t n,
						  int (*fn)(void *), void *arg)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(n, groups) || setgid(gid) || setuid(uid))
			_exit(255);
		_exit(fn(arg) & 0xff);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* The same with one supplementary group (or none: group 0). */
__attribute__((unused)) static int as_user_in(uid_t uid, gid_t gid, gid_t group,
					      int (*fn)(void *), void *arg)
{
	return as_user_groups(uid, gid, &group, group ? 1 : 0, fn, arg);
}

/* Tests that switch uid need root: they say so instead of passing. */
#define as_user(uid, gid, fn, arg) as_user_in(uid, gid, 0, fn, arg)

#define NEED_ROOT()                                                            \
	do {                                                                   \
		if (geteuid() != 0) {                                          \
			printf("%s: SKIPPED: needs root to switch uid\n",      \
			       __func__);                                      \
			return;                                                \
		}                                                              \
	} while (0)

/* The suite of a mount test file: one test case per test, each with a
 * fresh store and mountpoint; the file's harness forces CK_FORK. */
__attribute__((unused)) static Suite *
h_suite(const char *name, const TTest *const *tests, size_t n)
{
	return harness_suite(name, tests, n, h_setup, h_teardown, 60);
}

#endif
