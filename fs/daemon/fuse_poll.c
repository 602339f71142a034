/*
 * poll(2) on the mount's files (SPEC §3): a file is always readable, and
 * POLLPRI once its secret changed after the handle's first poll. The
 * notifier thread (fuse_notify.c) wakes the waiters of a changed secret;
 * a handle's registrations go with its release.
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_int.h"

/* poll(2) registrations: per open handle (fh 0: per ino). */
struct pollent {
	uint64_t fh, ino;
	struct fuse_pollhandle *ph;
	int changed;
	struct pollent *next;
};

static pthread_mutex_t poll_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pollent *polls; /* poll_lock */
static int poll_stop;	      /* poll_lock: the session is going */

/* Wake poll(2) waiters on the open files of secret's value nodes. */
void fs_poll_wake(const char *secret)
{
	struct pollent *p;
	struct fs_node_info n;

	pthread_mutex_lock(&poll_lock);
	for (p = polls; p && !poll_stop; p = p->next) {
		if (fs_node_get(p->ino, &n) || strcmp(n.secret, secret))
			continue;
		p->changed = 1;
		if (p->ph) {
			fuse_lowlevel_notify_poll(p->ph);
			fuse_pollhandle_destroy(p->ph);
			p->ph = NULL;
		}
	}
	pthread_mutex_unlock(&poll_lock);
}

void fs_poll_drop(uint64_t fh)
{
	struct pollent **pp, *p;

	pthread_mutex_lock(&poll_lock);
	for (pp = &polls; (p = *pp);) {
		if (p->fh != fh) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		if (p->ph)
			fuse_pollhandle_destroy(p->ph);
		free(p);
	}
	pthread_mutex_unlock(&poll_lock);
}

static struct pollent *poll_find(uint64_t fh, uint64_t ino)
{
	struct pollent *p;

	for (p = polls; p; p = p->next)
		if (p->fh == fh && p->ino == ino)
			return p;
	p = calloc(1, sizeof(*p));
	if (p) {
		p->fh = fh;
		p->ino = ino;
		p->next = polls;
		polls = p;
	}
	return p;
}

/* Files are always readable; POLLPRI once the secret changed after the
 * handle's first poll. Never ENOSYS: the kernel would answer "ready"
 * for good and apps spin. */
void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph)
{
	unsigned rev = POLLIN | POLLRDNORM;
	struct pollent *p;

	pthread_mutex_lock(&poll_lock);
	p = poll_stop ? NULL : poll_find(fi->fh, ino);
	if (p) {
		if (p->ph)
			fuse_pollhandle_destroy(p->ph);
		p->ph = ph;
		ph = NULL;
		rev |= p->changed ? POLLPRI : 0;
	}
	pthread_mutex_unlock(&poll_lock);
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, rev);
}

void fs_poll_stop(void)
{
	pthread_mutex_lock(&poll_lock);
	poll_stop = 1;
	pthread_mutex_unlock(&poll_lock);
}

void fs_poll_fini(void)
{
	struct pollent *p;

	while ((p = polls)) {
		polls = p->next;
		if (p->ph)
			fuse_pollhandle_destroy(p->ph);
		free(p);
	}
}
