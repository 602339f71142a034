/*
 * Who is asking: the caller of a FUSE request as the core sees it (uid,
 * gid, supplementary groups, pid, process name, roles).
 *
 * The kernel passes uid, gid and pid; nothing else is read unless a
 * decision needs it, and nothing read is kept past the request: a process
 * may call setgroups() or rename itself between two requests and is seen
 * as it is now.
 *
 * - The process name (audit lines only) comes from /proc/PID/comm, which
 *   the kernel renders from the task name alone; /proc/PID/status renders
 *   the whole file (sigsets, cpusets, memory counters) for it.
 * - The supplementary groups are read on first need (c->more, asked by
 *   sfs_caller_in_group): root, the owner, a mode whose group and other
 *   bits agree and an allow list that names the uid never read them. They
 *   come from the "Groups:" line of /proc/PID/status, all of them (up to
 *   65,536: the buffer grows until the file fits); when they cannot be
 *   read the answer is "cannot tell" and the caller is refused.
 *
 * The groups read on first need live in this thread's state until the
 * thread's next request: a caller that outlives its request (a write
 * handle's) is copied with fs_caller_keep, with the groups its request's
 * checks read; groups they did not read count as unreadable in the copy.
 *
 * Each FUSE worker thread keeps the descriptors of the last few callers'
 * files and pread()s them again (the kernel regenerates the text on every
 * read at offset 0): one system call instead of three. A descriptor stays
 * bound to the task it was opened for, not to the number: once that task
 * has exited its reads fail (ESRCH) and the slot is reopened, so a reused
 * pid never reads another process's file. The descriptors are closed when
 * the thread exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"
#include "fuse_int.h"
#include "secretfs/ctx.h"

#define PROC_SLOTS  8
#define GROUPS_MAX  65536     /* the kernel's NGROUPS_MAX */
#define STATUS_MIN  4096      /* first size of the status buffer */
#define STATUS_MAX  (2 << 20) /* 65,536 groups of 10 digits fit */
#define STATUS_KEEP 16384     /* a larger buffer is freed after use */
#define GROUPS_KEEP 1024      /* so is a larger list of groups */

enum { PF_COMM, PF_STATUS, PF_KINDS };

/* The groups of this thread's current request, read on first need. */
struct lazy_groups {
	struct sfs_caller_groups base;
	int32_t pid;
	int state; /* 0: not read; 1: read; -1: cannot be read */
	uint32_t *g;
	size_t n, cap;
};

/* Groups copied for a caller that outlives its request. */
struct kept_groups {
	struct sfs_caller_groups base;
	size_t n;
	uint32_t g[];
};

struct caller_tls {
	unsigned next[PF_KINDS];
	int32_t pid[PF_KINDS][PROC_SLOTS];
	int fd[PF_KINDS][PROC_SLOTS]; /* -1: free */
	char *buf;		      /* status text */
	size_t cap;
	struct lazy_groups lazy;
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
	struct caller_tls *t = p;
	unsigned k, i;

	for (k = 0; k < PF_KINDS; k++)
		for (i = 0; i < PROC_SLOTS; i++)
			if (t->fd[k][i] >= 0)
				close(t->fd[k][i]);
	free(t->buf);
	free(t->lazy.g);
	free(t);
}

static void tls_key_make(void)
{
	(void)pthread_key_create(&tls_key, tls_free);
}

static struct caller_tls *caller_tls(void)
{
	struct caller_tls *t;
	unsigned k, i;

	(void)pthread_once(&tls_once, tls_key_make);
	t = pthread_getspecific(tls_key);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	for (k = 0; k < PF_KINDS; k++)
		for (i = 0; i < PROC_SLOTS; i++)
			t->fd[k][i] = -1;
	if (pthread_setspecific(tls_key, t)) {
		free(t);
		return NULL;
	}
	return t;
}

static int proc_open(int kind, int32_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid,
		 kind == PF_COMM ? "comm" : "status");
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Up to cap bytes of /proc/PID/<kind> from offset 0, or -1. */
static ssize_t proc_read(struct caller_tls *t, int kind, int32_t pid, char *buf,
			 size_t cap)
{
	ssize_t n;
	unsigned i;
	int *fd;

	for (i = 0; i < PROC_SLOTS; i++)
		if (t->fd[kind][i] >= 0 && t->pid[kind][i] == pid)
			break;
	if (i < PROC_SLOTS && (n = pread(t->fd[kind][i], buf, cap, 0)) > 0)
		return n;
	if (i == PROC_SLOTS) /* not cached: take the oldest slot */
		i = t->next[kind]++ % PROC_SLOTS;
	fd = &t->fd[kind][i];
	if (*fd >= 0)
		close(*fd);
	t->pid[kind][i] = pid;
	*fd = proc_open(kind, pid);
	return *fd < 0 ? -1 : pread(*fd, buf, cap, 0);
}

/* The whole of /proc/PID/status in t->buf, NUL-terminated; -1 if not. */
static ssize_t status_read(struct caller_tls *t, int32_t pid)
{
	ssize_t n = -1;
	char *nb;

	for (;;) {
		if (t->cap == 0 || (n >= 0 && (size_t)n + 1 >= t->cap)) {
			size_t cap = t->cap ? t->cap * 2 : STATUS_MIN;

			if (cap > STATUS_MAX || !(nb = realloc(t->buf, cap)))
				return -1;
			t->buf = nb;
			t->cap = cap;
		}
		n = proc_read(t, PF_STATUS, pid, t->buf, t->cap - 1);
		if (n < 0 || (size_t)n + 1 < t->cap)
			break; /* failed, or the whole file fits */
	}
	if (n >= 0)
		t->buf[n] = '\0';
	return n;
}

/* Append one group; 0 or -1 (too many, no memory). */
static int lazy_add(struct lazy_groups *l, uint32_t gid)
{
	uint32_t *ng;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;

		if (l->n >= GROUPS_MAX ||
		    !(ng = realloc(l->g, cap * sizeof(*ng))))
			return -1;
		l->g = ng;
		l->cap = cap;
	}
	l->g[l->n++] = gid;
	return 0;
}

/* Parse status text's "Groups:" line: 1 or -1. */
static int groups_parse(struct lazy_groups *l, const char *text)
{
	const char *p = strstr(text, "\nGroups:");
	char *end;

	if (!p)
		return -1;
	for (p += 8;; p = end) {
		unsigned long g;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\0')
			return 1;
		errno = 0;
		g = strtoul(p, &end, 10);
		if (end == p || errno || g > UINT32_MAX ||
		    lazy_add(l, (uint32_t)g))
			return -1;
	}
}

/* Read the request's groups once: state 1 or -1. */
static int lazy_load(struct caller_tls *t)
{
	struct lazy_groups *l = &t->lazy;

	if (l->state)
		return l->state;
	l->n = 0;
	l->state = status_read(t, l->pid) > 0 ? groups_parse(l, t->buf) : -1;
	if (t->cap > STATUS_KEEP) { /* do not keep a large buffer locked */
		free(t->buf);
		t->buf = NULL;
		t->cap = 0;
	}
	return l->state;
}

static int lazy_has(struct sfs_caller_groups *g, const struct sfs_caller *c,
		    uint32_t gid)
{
	struct caller_tls *t =
	    (struct caller_tls *)((char *)g -
				  offsetof(struct caller_tls, lazy.base));
	size_t i;

	(void)c;
	if (lazy_load(t) < 0)
		return -1;
	for (i = 0; i < t->lazy.n; i++)
		if (t->lazy.g[i] == gid)
			return 1;
	return 0;
}

static int kept_has(struct sfs_caller_groups *g, const struct sfs_caller *c,
		    uint32_t gid)
{
	const struct kept_groups *k = (const struct kept_groups *)g;
	size_t i;

	(void)c;
	for (i = 0; i < k->n; i++)
		if (k->g[i] == gid)
			return 1;
	return 0;
}

static int unknown_has(struct sfs_caller_groups *g, const struct sfs_caller *c,
		       uint32_t gid)
{
	(void)g;
	(void)c;
	(void)gid;
	return -1;
}

static struct sfs_caller_groups groups_unknown = {unknown_has};

/* A new request's groups: not read yet. A large list of the last one is
 * freed rather than kept (locked) for the thread's life. */
static void lazy_reset(struct lazy_groups *l, int32_t pid)
{
	if (l->cap > GROUPS_KEEP) {
		free(l->g);
		l->g = NULL;
		l->cap = 0;
	}
	l->base.has = lazy_has;
	l->pid = pid;
	l->state = 0;
	l->n = 0;
}

/* The process name, or "" when it cannot be read. */
static void comm_read(struct caller_tls *t, struct sfs_caller *c)
{
	ssize_t n = proc_read(t, PF_COMM, c->pid, c->comm, sizeof(c->comm));

	if (n <= 0 || n >= (ssize_t)sizeof(c->comm))
		n = 0;
	else if (c->comm[n - 1] == '\n')
		n--;
	c->comm[n] = '\0';
}

int fs_caller(fuse_req_t req, int need, struct sfs_caller *c)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct caller_tls *t = NULL;
	struct sfs_error err;

	memset(c, 0, sizeof(*c));
	c->uid = fc->uid;
	c->gid = fc->gid;
	c->pid = fc->pid;
	c->via_fs = 1;
	c->view = fs_d.opts.view;
	if (fs_d.opts.audit_off) /* comm is for audit lines only */
		need &= ~FS_CALLER_COMM;
	if ((need & (FS_CALLER_GROUPS | FS_CALLER_COMM)) && !(t = caller_tls()))
		return FS_ENOMEM;
	if (need & FS_CALLER_COMM)
		comm_read(t, c);
	if (need & FS_CALLER_GROUPS) {
		lazy_reset(&t->lazy, c->pid);
		c->more = &t->lazy.base;
	}
	if (need & FS_CALLER_ROLES) {
		sfs_error_clear(&err);
		if (fs_noted(sfs_ctx_resolve_roles(fs_d.ctx, c, &err), &err) !=
		    SFS_OK)
			return fs_errno(err.code ? err.code : SFS_EIO);
	}
	return 0;
}

/* Copy l's groups into dst: inline when they fit, else a kept copy. */
static int keep_groups(struct sfs_caller *dst, const struct lazy_groups *l)
{
	struct kept_groups *k;

	if (l->n <= SFS_CALLER_GROUPS_MAX) {
		memcpy(dst->groups, l->g, l->n * sizeof(*l->g));
		dst->ngroups = (int)l->n;
		return 0;
	}
	k = malloc(sizeof(*k) + l->n * sizeof(*l->g));
	if (!k)
		return FS_ENOMEM;
	k->base.has = kept_has;
	k->n = l->n;
	memcpy(k->g, l->g, l->n * sizeof(*l->g));
	dst->more = &k->base;
	return 0;
}

int fs_caller_keep(struct sfs_caller *dst, const struct sfs_caller *src)
{
	struct caller_tls *t;

	*dst = *src;
	dst->more = NULL;
	if (!src->more)
		return 0;
	if (src->more->has != lazy_has) /* only a request's own caller */
		return FS_EINVAL;
	t = (struct caller_tls *)((char *)src->more -
				  offsetof(struct caller_tls, lazy.base));
	/* Groups the request's checks never read are not read now either:
	 * should a rule come to depend on them before the copy is used,
	 * the copy is refused there, not judged on a later process. */
	if (t->lazy.state <= 0) {
		dst->more = &groups_unknown;
		return 0;
	}
	return keep_groups(dst, &t->lazy);
}

void fs_caller_drop(struct sfs_caller *c)
{
	if (c->more && c->more->has == kept_has)
		free(c->more);
	c->more = NULL;
}

/* "Tgid:" of the status text in buf, or -1. */
static int32_t tgid_parse(char *buf, ssize_t n)
{
	const char *p;

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\nTgid:");
	return p ? (int32_t)strtol(p + 6, NULL, 10) : -1;
}

int32_t fs_caller_tgid(int32_t pid)
{
	struct caller_tls *t;
	char buf[512];
	int fd;

	/* pidfd_open takes thread-group leaders only: no /proc text to
	 * render for the usual single-threaded writer. */
	fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0u);
	if (fd >= 0) {
		close(fd);
		return pid;
	}
	if (errno != EINVAL || !(t = caller_tls()))
		return -1; /* gone */
	return tgid_parse(buf,
			  proc_read(t, PF_STATUS, pid, buf, sizeof(buf) - 1));
}
