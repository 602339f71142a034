/*
 * The notifier's hands (fuse_notify.c): a helper process that makes the
 * file operations on the mount which give applications their inotify
 * events, so that the daemon itself never waits on its own mount.
 *
 * A thread of the daemon could make them too, but a request the kernel
 * has already handed to the daemon is waited out uninterruptibly: if the
 * daemon is killed (SIGKILL, the OOM killer) while its own thread waits
 * on such a request, that thread never ends, the process never exits, the
 * connection is never closed and every caller of the mount hangs. A
 * separate process waits instead; the daemon waits on a socket (killable),
 * its death closes /dev/fuse, which ends the helper's request, and
 * PR_SET_PDEATHSIG ends the helper.
 *
 * The helper is `secretfs` itself, run again (/proc/self/exe) with a
 * hidden first argument: a fresh image holding no key or value, that
 * never opens the store. It reads one command at a time from the
 * SOCK_SEQPACKET socket on its standard input, makes it relative to the
 * mountpoint and answers the errno (0: done). The daemon recognises its
 * requests by its pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "fuse_int.h"

extern char **environ;

/* Open, write one byte, close: IN_MODIFY + IN_CLOSE_WRITE. O_DIRECT keeps
 * the byte out of cache=kernel's page cache. */
static int touch(int root, const char *path, int refresh)
{
	struct stat st;
	int fd, e = 0;

	if (refresh)
		fstatat(root, path, &st, AT_SYMLINK_NOFOLLOW);
	fd = openat(root, path, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EINVAL)
		fd = openat(root, path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (pwrite(fd, "", 1, 0) != 1)
		e = errno ? errno : EIO;
	close(fd);
	return e;
}

/* Create read-only (IN_CREATE, no write close). */
static int create(int root, const char *path)
{
	int fd =
	    openat(root, path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int replace(int root, const char *from, const char *to)
{
	int e = create(root, from);

	if (!e && renameat(root, from, root, to)) {
		e = errno;
		unlinkat(root, from, 0);
	}
	return e;
}

static int run(int root, const struct fs_nh_cmd *c)
{
	switch (c->op) {
	case FS_NH_TOUCH:
	case FS_NH_TOUCH_FRESH:
		return touch(root, c->a, c->op == FS_NH_TOUCH_FRESH);
	case FS_NH_CREATE:
		return create(root, c->a);
	case FS_NH_MKDIR:
		return mkdirat(root, c->a, 0700) ? errno : 0;
	case FS_NH_UNLINK:
		return unlinkat(root, c->a, 0) ? errno : 0;
	case FS_NH_RMDIR:
		return unlinkat(root, c->a, AT_REMOVEDIR) ? errno : 0;
	case FS_NH_REPLACE:
		return replace(root, c->a, c->b);
	}
	return EINVAL;
}

int fs_notify_helper_main(const char *mountpoint)
{
	struct fs_nh_cmd c;
	ssize_t n;
	int root, e;

	/* Inherited descriptors (the fuse device received from fusermount3,
	 * auto_unmount's socket) would keep the connection or the mount
	 * alive after the daemon's death: only the command socket stays. */
	close_range(1, ~0U, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1; /* the daemon is gone already */
	while ((n = read(0, &c, sizeof(c))) == (ssize_t)sizeof(c)) {
		c.a[sizeof(c.a) - 1] = c.b[sizeof(c.b) - 1] = '\0';
		root = open(mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
		e = root < 0 ? errno : run(root, &c);
		if (root >= 0)
			close(root);
		if (write(0, &e, sizeof(e)) != (ssize_t)sizeof(e))
			return 1;
	}
	return 0;
}

/* Start the helper; its pid, or -1. *fd: the daemon's end. */
pid_t fs_notify_helper_spawn(const char *mountpoint, int *fd)
{
	char *argv[] = {"secretfs", FS_NH_ARG, (char *)mountpoint, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	pid_t pid = -1;
	int sv[2];

	*fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	/* its own session: signals to the daemon's terminal or process
	 * group (Ctrl-C, job control) are not its business */
	if (posix_spawnattr_init(&at) == 0 &&
	    posix_spawn_file_actions_init(&fa) == 0) {
		if (posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID) != 0 ||
		    posix_spawn_file_actions_adddup2(&fa, sv[1], 0) != 0 ||
		    posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv,
				environ) != 0)
			pid = -1;
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
	}
	close(sv[1]);
	if (pid < 0)
		close(sv[0]);
	else
		*fd = sv[0];
	return pid;
}
