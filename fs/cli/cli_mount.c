/*
 * `secretfs umount` and `secretfs status`: the commands that talk to a
 * running mount, and answer within seconds even when its daemon does not
 * (stopped with SIGSTOP, stuck in a debugger).
 *
 * Nothing here touches the mount in this process: whether MOUNTPOINT is
 * a mount is read from /proc/self/mountinfo (its path made absolute from
 * the parent directory, which is outside the mount), and every call that
 * reaches the daemon (reading .status, fusermount3) runs in a child that
 * is killed at a deadline. A caller waiting on a stopped daemon's queued
 * request dies with SIGKILL; one whose request the daemon had already
 * taken cannot be killed until the connection is aborted, so the child is
 * never waited for past the deadline.
 *
 * umount: fusermount3 -u; --lazy detaches the mount at once
 * (fusermount3 -uz, umount2 MNT_DETACH); --force first aborts the FUSE
 * connection through /sys/fs/fuse/connections/N/abort (N: the mount's
 * minor device number; fusectl is mounted there when missing and we are
 * root), which fails every waiting caller, then detaches the mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* How long a daemon may take to answer before it is called unresponsive:
 * generous for a loaded machine, short for a person waiting. */
#define ANSWER_MS 5000
/* How long a killed child is waited for once the deadline passed. */
#define REAP_MS 500
#define FUSECTL "/sys/fs/fuse/connections"

/* --- a child with a deadline ------------------------------------------- */

struct bounded {
	char out[16384]; /* what the child wrote (truncated) */
	size_t len;
	int status;    /* exit status; -1 when it did not exit */
	int timed_out; /* killed at the deadline */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the child's output until EOF or the deadline (0 at EOF); what
 * does not fit in b->out is read and dropped. */
static int collect(int fd, int64_t deadline, struct bounded *b)
{
	struct pollfd p = {fd, POLLIN, 0};
	char chunk[4096];
	size_t room;
	ssize_t n;
	int left;

	for (;;) {
		left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&p, 1, left) == 0)
			return -1;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		room = sizeof(b->out) - 1 - b->len;
		room = (size_t)n < room ? (size_t)n : room;
		memcpy(b->out + b->len, chunk, room);
		b->len += room;
	}
}

/* Wait for pid until deadline; kill it past it (and wait REAP_MS more). */
static void reap(pid_t pid, int64_t deadline, struct bounded *b)
{
	int st;
	pid_t got;

	while ((got = waitpid(pid, &st, WNOHANG)) == 0 && now_ms() < deadline)
		usleep(10000);
	if (got == 0) {
		b->timed_out = 1;
		kill(pid, SIGKILL);
		deadline = now_ms() + REAP_MS;
		while ((got = waitpid(pid, &st, WNOHANG)) == 0 &&
		       now_ms() < deadline)
			usleep(10000);
	}
	b->status = got == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Run fn(arg) in a child whose file descriptor fd (1 or 2) goes to b->out;
 * its return value is the child's exit status. Returns within about
 * ANSWER_MS + REAP_MS whatever the child does.
 */
static void bounded_run(int (*fn)(void *arg), void *arg, int fd,
			struct bounded *b)
{
	int64_t deadline = now_ms() + ANSWER_MS;
	int fds[2];
	pid_t pid;

	memset(b, 0, sizeof(*b));
	b->status = -1;
	if (pipe2(fds, O_CLOEXEC))
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], fd);
		_exit(fn(arg));
	}
	close(fds[1]);
	if (pid > 0 && collect(fds[0], deadline, b) != 0)
		deadline = now_ms();
	close(fds[0]);
	b->out[b->len] = '\0';
	if (pid > 0)
		reap(pid, deadline, b);
}

/* --- where the mount is ------------------------------------------------ */

/* mountinfo's octal escapes (\040 for a space) undone in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++, o++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				    (s[3] - '0'));
			s += 3;
		} else {
			*o = *s;
		}
	}
	*o = '\0';
}

/* path made absolute without touching it: its parent resolved, its last
 * name kept. 0 or -1 (errno set). */
static int abs_path(const char *path, char *out, size_t cap)
{
	char dir[PATH_MAX], parent[PATH_MAX];
	const char *base, *up;
	size_t n = strlen(path);
	int w;

	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	base = strrchr(dir, '/');
	base = base ? base + 1 : dir;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return realpath(dir, out) ? 0 : -1; /* "/", "x/.", ".." */
	/* "mnt": its parent is "."; "/mnt": "/"; "a/mnt": "a" */
	up = base == dir ? "." : base == dir + 1 ? "/" : dir;
	if (base > dir + 1)
		dir[base - dir - 1] = '\0';
	if (!realpath(up, parent))
		return -1;
	w = snprintf(out, cap, "%s/%s", strcmp(parent, "/") ? parent : "",
		     base);
	return w < 0 || (size_t)w >= cap ? (errno = ENAMETOOLONG, -1) : 0;
}

/*
 * The FUSE connection number (minor device) of the FUSE mount at the
 * absolute path mp, or -1 when nothing FUSE is mounted there.
 */
static long fuse_conn(const char *mp)
{
	char line[8192], point[4096], type[256];
	unsigned maj, min;
	const char *sep;
	long conn = -1;
	FILE *m = fopen("/proc/self/mountinfo", "re");

	while (m && fgets(line, sizeof(line), m)) {
		sep = strstr(line, " - ");
		if (!sep ||
		    sscanf(line, "%*s %*s %u:%u %*s %4095s", &maj, &min,
			   point) != 3 ||
		    sscanf(sep + 3, "%255s", type) != 1)
			continue;
		unescape(point);
		if (!strcmp(point, mp) && !strncmp(type, "fuse", 4))
			conn = (long)min; /* the last one is on top */
	}
	if (m)
		fclose(m);
	return conn;
}

/* --- umount ------------------------------------------------------------ */

static const char umount_usage[] =
    "Usage: secretfs umount MOUNTPOINT [--lazy|--force]\n"
    "\n"
    "Unmount a secretfs mount (fusermount3 -u); the daemon exits.\n"
    "Answers within seconds even if the daemon hangs; then:\n"
    "\n"
    "  --lazy       detach the mount at once (umount -l); callers already\n"
    "               waiting on a hung daemon keep waiting\n"
    "  --force      abort the mount's FUSE connection (every waiting\n"
    "               caller fails with ECONNABORTED) and detach it\n"
    "  -h, --help   print this help\n";

static const struct cli_cmd umount_cmd = {"umount", umount_usage, NULL};

struct fusermount {
	const char *flag;
	const char *mp;
};

static int fusermount_child(void *arg)
{
	const struct fusermount *f = arg;

	execlp("fusermount3", "fusermount3", f->flag, "--", f->mp,
	       (char *)NULL);
	fprintf(stderr, "fusermount3: %s\n", sfs_strerrno(errno));
	return EXIT_FAIL;
}

/* Write 1 to the connection's abort file (mounting fusectl first when
 * it is missing and we may). */
static int abort_conn(long conn, char *why, size_t cap)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), FUSECTL "/%ld/abort", conn);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && geteuid() == 0 &&
	    mount("fusectl", FUSECTL, "fusectl", 0, NULL) == 0)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	ok = fd >= 0 && write(fd, "1", 1) == 1;
	if (!ok)
		snprintf(why, cap, "cannot abort the connection (%s: %s)", path,
			 sfs_strerrno(errno));
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* fusermount3's complaint, without its "fusermount3: " prefix; a busy
 * mount gets the way out. */
static int fusermount_fail(const char *what, struct bounded *b, int detach)
{
	char *why = b->out;

	while (b->len && b->out[b->len - 1] == '\n')
		b->out[--b->len] = '\0';
	if (!strncmp(why, "fusermount3: ", 13))
		why += 13;
	fprintf(stderr, "secretfs: %s: %s%s\n", what,
		*why ? why : "fusermount3 failed",
		!detach && strstr(why, "busy")
		    ? " (--lazy detaches it anyway, --force also aborts "
		      "its connection)"
		    : "");
	return EXIT_FAIL;
}

static int umount_parse(int argc, char **argv, int *lazy, int *force)
{
	const struct cli_opt opts[] = {
	    {.name = "lazy", .flag = lazy},
	    {.name = "force", .flag = force},
	    {.name = NULL},
	};
	int rc = cli_parse(&umount_cmd, argc, argv, opts, NULL, 1, 1);

	if (rc != CLI_GO)
		return rc;
	if (*lazy && *force)
		return cli_bad_usage(&umount_cmd, "give --lazy or --force, not "
						  "both");
	return CLI_GO;
}

int cmd_umount(const struct cli_global *g, int argc, char **argv)
{
	char mp[PATH_MAX], what[PATH_MAX + 16], why[PATH_MAX + 64];
	struct fusermount f = {"-u", mp};
	struct bounded b;
	int lazy = 0, force = 0, tries;
	long conn;
	int rc = umount_parse(argc, argv, &lazy, &force);

	(void)g;
	if (rc != CLI_GO)
		return rc;
	snprintf(what, sizeof(what), "umount: %s", argv[optind]);
	if (abs_path(argv[optind], mp, sizeof(mp)) ||
	    (conn = fuse_conn(mp)) < 0) {
		fprintf(stderr, "secretfs: %s: not mounted\n", what);
		return EXIT_FAIL;
	}
	if (force && abort_conn(conn, why, sizeof(why))) {
		fprintf(stderr, "secretfs: %s: %s\n", what, why);
		return EXIT_FAIL;
	}
	f.flag = lazy || force ? "-uz" : "-u";
	/* The daemon's notifier opens a file on the mount for a moment at
	 * each change (its inotify events): a mount busy for that reason
	 * only is unmounted at the next try, within a second. */
	for (tries = 0; tries < 10; tries++) {
		bounded_run(fusermount_child, &f, 2, &b);
		if (b.timed_out || b.status == 0 || lazy || force ||
		    !memmem(b.out, b.len, "busy", 4))
			break;
		usleep(100 * 1000);
	}
	if (b.timed_out) {
		fprintf(stderr,
			"secretfs: %s: the daemon does not answer; "
			"'secretfs umount --lazy' detaches the mount, "
			"--force also aborts its connection\n",
			what);
		return EXIT_FAIL;
	}
	return b.status == 0 ? EXIT_OK
			     : fusermount_fail(what, &b, lazy || force);
}

/* --- status ------------------------------------------------------------ */

static const char status_usage[] =
    "Usage: secretfs status MOUNTPOINT\n"
    "\n"
    "Print the mount's MOUNTPOINT/.status: program version, store,\n"
    "options, counts and health, as JSON. Exit 1 when the daemon does\n"
    "not answer within seconds.\n"
    "\n"
    "  -h, --help   print this help\n";

static const struct cli_cmd status_cmd = {"status", status_usage, NULL};

/* In the child: copy .status to stdout; the exit status is 0 or the
 * errno of what failed (so that the parent can say why). */
static int status_child(void *arg)
{
	char buf[4096];
	ssize_t n;
	int fd = open(arg, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno & 0xff;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(1, buf, (size_t)n) != n)
			return EIO;
	return n < 0 ? errno & 0xff : 0;
}

int cmd_status(const struct cli_global *g, int argc, char **argv)
{
	char mp[PATH_MAX], path[PATH_MAX + 16], what[PATH_MAX + 16];
	struct bounded b;
	int rc = cli_parse_plain(&status_cmd, argc, argv, 1, 1);

	(void)g;
	if (rc != CLI_GO)
		return rc;
	snprintf(what, sizeof(what), "status: %s", argv[optind]);
	if (abs_path(argv[optind], mp, sizeof(mp)) || fuse_conn(mp) < 0) {
		fprintf(stderr, "secretfs: %s: not a secretfs mount\n", what);
		return EXIT_FAIL;
	}
	snprintf(path, sizeof(path), "%s/.status", mp);
	bounded_run(status_child, path, 1, &b);
	if (b.timed_out || b.status < 0) {
		fprintf(stderr,
			"secretfs: %s: the daemon does not answer "
			"(unresponsive)\n",
			what);
		return EXIT_FAIL;
	}
	if (b.status) {
		fprintf(stderr, "secretfs: %s: %s\n", what,
			b.status == ENOENT ? "not a secretfs mount"
					   : sfs_strerrno(b.status));
		return EXIT_FAIL;
	}
	fwrite(b.out, 1, b.len, stdout);
	return EXIT_OK;
}
