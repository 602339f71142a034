/*
 * Who is asking: the caller of a FUSE request as the core sees it (uid,
 * gid, supplementary groups, pid, process name, roles).
 *
 * The kernel passes uid, gid and pid; the groups and the process name
 * (for audit lines) come from /proc/PID/status, read once per request:
 * fuse_req_getgroups() reads the same file twice (its first buffer is too
 * short) and comm would be a third open. Nothing read from it is cached:
 * a process may call setgroups() or rename itself between two requests.
 *
 * What is cached is the open file: each FUSE worker thread keeps the
 * descriptors of the last few callers' status files and pread()s them
 * again (the kernel regenerates the text on every read at offset 0). An
 * application that opens secrets in a loop then costs one system call
 * here instead of three (measured on the 2-CPU dev VM: open+read+close
 * of /proc/PID/status 8.4-9.0 us, pread 3.9 us). A descriptor stays bound
 * to the task it was opened for, not to the number: once that task has
 * exited its reads fail (ESRCH) and the slot is reopened, so a reused pid
 * never reads another process's file. The descriptors are closed when the
 * thread exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "fuse_int.h"
#include "secretfs/ctx.h"

#define STATUS_SLOTS 8

struct status_fds {
	unsigned next;
	int32_t pid[STATUS_SLOTS];
	int fd[STATUS_SLOTS]; /* -1: free */
};

static pthread_key_t status_key;
static pthread_once_t status_once = PTHREAD_ONCE_INIT;

static void status_fds_free(void *p)
{
	struct status_fds *t = p;
	unsigned i;

	for (i = 0; i < STATUS_SLOTS; i++)
		if (t->fd[i] >= 0)
			close(t->fd[i]);
	free(t);
}

static void status_key_make(void)
{
	(void)pthread_key_create(&status_key, status_fds_free);
}

static struct status_fds *status_fds(void)
{
	struct status_fds *t;
	unsigned i;

	(void)pthread_once(&status_once, status_key_make);
	t = pthread_getspecific(status_key);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	for (i = 0; i < STATUS_SLOTS; i++)
		t->fd[i] = -1;
	if (pthread_setspecific(status_key, t)) {
		free(t);
		return NULL;
	}
	return t;
}

static ssize_t status_open_read(int32_t pid, char *buf, size_t cap, int *fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	return *fd < 0 ? -1 : pread(*fd, buf, cap, 0);
}

/* The text of /proc/PID/status into buf (NUL-terminated), or -1. */
static ssize_t status_read(int32_t pid, char *buf, size_t cap)
{
	struct status_fds *t = status_fds();
	ssize_t n = -1;
	unsigned i;
	int fd;

	if (!t) { /* no slot: read it the plain way */
		n = status_open_read(pid, buf, cap - 1, &fd);
		if (fd >= 0)
			close(fd);
		goto out;
	}
	for (i = 0; i < STATUS_SLOTS; i++)
		if (t->fd[i] >= 0 && t->pid[i] == pid)
			break;
	if (i < STATUS_SLOTS && (n = pread(t->fd[i], buf, cap - 1, 0)) > 0)
		goto out;
	if (i == STATUS_SLOTS) /* not cached: take the oldest slot */
		i = t->next++ % STATUS_SLOTS;
	if (t->fd[i] >= 0)
		close(t->fd[i]);
	t->pid[i] = pid;
	n = status_open_read(pid, buf, cap - 1, &t->fd[i]);
out:
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static void parse_status(char *buf, int need, struct sfs_caller *c)
{
	char *p, *end;
	size_t len;

	if ((need & FS_CALLER_COMM) && strncmp(buf, "Name:\t", 6) == 0) {
		len = strcspn(buf + 6, "\n");
		if (len >= sizeof(c->comm))
			len = sizeof(c->comm) - 1;
		memcpy(c->comm, buf + 6, len);
		c->comm[len] = '\0';
	}
	p = (need & FS_CALLER_GROUPS) ? strstr(buf, "\nGroups:") : NULL;
	if (!p)
		return;
	p += 8;
	if ((end = strchr(p, '\n')))
		*end = '\0'; /* parse this line only */
	while (c->ngroups < SFS_CALLER_GROUPS_MAX) {
		unsigned long g = strtoul(p, &end, 10);

		if (end == p)
			break;
		c->groups[c->ngroups++] = (uint32_t)g;
		p = end;
	}
}

int fs_caller(fuse_req_t req, int need, struct sfs_caller *c)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct sfs_error err;
	char buf[8192];

	memset(c, 0, sizeof(*c));
	c->uid = fc->uid;
	c->gid = fc->gid;
	c->pid = fc->pid;
	c->via_fs = 1;
	c->view = fs_d.opts.view;
	if (fs_d.opts.audit_off) /* comm is for audit lines only */
		need &= ~FS_CALLER_COMM;
	if ((need & (FS_CALLER_GROUPS | FS_CALLER_COMM)) &&
	    status_read(c->pid, buf, sizeof(buf)) > 0)
		parse_status(buf, need, c);
	if (need & FS_CALLER_ROLES) {
		sfs_error_clear(&err);
		if (sfs_ctx_resolve_roles(fs_d.ctx, c, &err) != SFS_OK)
			return fs_errno(err.code ? err.code : SFS_EIO);
	}
	return 0;
}
