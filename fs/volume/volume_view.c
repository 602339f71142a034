/*
 * The volume driver's views: each volume's read-only `secretfs mount`
 * child, mounted on STAGE/NAME then moved onto MOUNTDIR/NAME (see
 * volume.c's invariants), and the driver's own mounts of MOUNTDIR and
 * STAGE.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "volume.h"

/* --- views -------------------------------------------------------------- */

/* 1: path is the root of a mount; 0: not; -1: its mount is dead (a
 * view whose daemon is gone: ENOTCONN) or it cannot be asked. */
static int mount_root(const char *path)
{
	struct statx sx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx))
		return errno == ENOTCONN ? -1 : 0;
	if (!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		return -1;
	return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

/* Is the view of v serving? Asked of the daemon (AT_STATX_FORCE_SYNC):
 * the kernel keeps a dead view's attributes until they time out. */
int vol_view_alive(const struct driver *d, const struct vol *v)
{
	char p[VPATH_MAX];
	struct statx sx;

	snprintf(p, sizeof(p), "%s/%s/.status", d->mountdir, v->name);
	return statx(AT_FDCWD, p, AT_STATX_FORCE_SYNC, STATX_BASIC_STATS,
		     &sx) == 0;
}

void vol_path(const struct driver *d, const struct vol *v, char *out,
	      size_t cap)
{
	snprintf(out, cap, "%s/%s", d->mountdir, v->name);
}

/* Fork and exec `secretfs mount STAGE/NAME -f -o ro,allow_other,OPTS`:
 * stdin closed, its messages on our stderr, a session of its own. The
 * arguments are built before the fork: the driver has threads, and the
 * child only calls what is safe after fork(). The child's pid, or -1. */
static pid_t view_spawn(const struct driver *d, const struct vol *v,
			const char *at)
{
	char o[OPTS_MAX + 32];
	const char *argv[12];
	int n = 0, fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid;

	snprintf(o, sizeof(o), "ro,allow_other,%s", v->opts);
	argv[n++] = "secretfs";
	argv[n++] = "--store";
	argv[n++] = d->store;
	if (d->key[0]) {
		argv[n++] = "--master-key";
		argv[n++] = d->key;
	}
	argv[n++] = "mount";
	argv[n++] = at;
	argv[n++] = "-f";
	argv[n++] = "-o";
	argv[n++] = o;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (fd >= 0)
			dup2(fd, 0);
		setsid();
		execv(d->self, (char *const *)argv);
		_exit(127);
	}
	if (fd >= 0)
		close(fd);
	return pid;
}

/* Wait until the child serves at dir (its .status answers) or exits.
 * Readiness, not a deadline on a quiet machine: up to a minute. */
static int view_wait(pid_t pid, const char *dir)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	char p[VPATH_MAX + 16];
	struct stat st;
	int i, status;

	snprintf(p, sizeof(p), "%s/.status", dir);
	for (i = 0; i < 6000; i++) {
		if (stat(p, &st) == 0)
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		nanosleep(&tick, NULL);
	}
	kill(pid, SIGTERM);
	return -1;
}

/* Start v's view on STAGE/NAME and move it onto MOUNTDIR/NAME, over
 * whatever is mounted there (a dead view). 0, or -1 with why in err. */
int vol_view_start(struct driver *d, struct vol *v, char *err, size_t cap)
{
	char at[VPATH_MAX], to[VPATH_MAX];
	pid_t pid;

	snprintf(at, sizeof(at), "%s/%s", d->stage, v->name);
	vol_path(d, v, to, sizeof(to));
	if ((mkdir(at, 0755) && errno != EEXIST) ||
	    (mkdir(to, 0755) && errno != EEXIST)) {
		snprintf(err, cap, "cannot make '%.300s': %s", at,
			 strerror(errno));
		return -1;
	}
	if (mount_root(at) != 0)
		umount2(at, MNT_DETACH); /* a half-started view */
	pid = view_spawn(d, v, at);
	if (pid < 0 || view_wait(pid, at)) {
		snprintf(err, cap,
			 "the view of '%s' did not start (see the "
			 "driver's log)",
			 v->name);
		return -1;
	}
	if (mount(at, to, NULL, MS_MOVE, NULL)) {
		snprintf(err, cap, "cannot move the view onto '%.300s': %s", to,
			 strerror(errno));
		umount2(at, MNT_DETACH);
		return -1;
	}
	v->pid = pid;
	return 0;
}

/* Detach every mount stacked on MOUNTDIR/NAME: the view exits when its
 * connection goes (no container holds it any more). */
void vol_view_stop(struct driver *d, struct vol *v)
{
	char to[VPATH_MAX];
	int i;

	vol_path(d, v, to, sizeof(to));
	for (i = 0; i < 64 && mount_root(to) != 0; i++)
		if (umount2(to, MNT_DETACH))
			break;
	v->pid = 0;
}

/* Reap views that exited (they are our children until we restart). */
void vol_reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* mkdir -p (0755). */
static int mkdirs(const char *path)
{
	char p[PATH_MAX], *s;

	snprintf(p, sizeof(p), "%s", path);
	for (s = p + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

/* The directory a socket path lives in (/run/docker/plugins). */
void vol_mkdirs_parent(const char *path)
{
	char p[PATH_MAX], *s;

	snprintf(p, sizeof(p), "%s", path);
	if ((s = strrchr(p, '/')) && s != p) {
		*s = '\0';
		mkdirs(p);
	}
}

/* dir as a mount of its own: shared in a peer group of its own (flag
 * MS_SHARED), or private (MS_PRIVATE). An existing mount there is kept
 * as it is (a restarted driver: views may be mounted under it). */
int vol_own_mount(const char *dir, unsigned long flag)
{
	if (mkdirs(dir))
		return -1;
	if (mount_root(dir) == 1)
		return mount(NULL, dir, NULL, flag, NULL);
	if (mount(dir, dir, NULL, MS_BIND, NULL) ||
	    mount(NULL, dir, NULL, MS_PRIVATE, NULL))
		return -1;
	return flag == MS_PRIVATE ? 0 : mount(NULL, dir, NULL, flag, NULL);
}
