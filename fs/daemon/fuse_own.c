/*
 * The notifier's own requests (fuse_notify.c has them made by its helper
 * process): recognised by the helper's pid (what fuse_req_ctx reports is
 * the calling thread's id) and answered here, before any core call: no
 * audit line, no version, no staged data. Lookups that would contradict
 * the operation (the new name exists, the deleted one does not) are
 * answered for the helper alone, from what the notifier thread says it
 * is making (fs_own_pending); an entry that depends on the caller is not
 * kept for the next one (own_entry).
 *
 * fs_notify_ops() wraps fs_ops: these own requests, poll (fuse_poll.c),
 * and for `ro` mounts every user change refused with EROFS (the kernel
 * mount itself is read-write so that the helper's operations pass).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuse_int.h"

/* What the notifier thread is making now (fs_own_pending). */
static struct {
	int kind;	 /* enum fs_pend */
	uint64_t parent; /* the directory's ino */
	char name[256];
} pend;

static pthread_mutex_t pend_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t own_tid; /* atomic: the helper's pid, 0 before it runs */
static struct fuse_lowlevel_ops ops;

void fs_own_helper(pid_t pid)
{
	__atomic_store_n(&own_tid, pid, __ATOMIC_RELEASE);
}

int fs_notify_own(fuse_req_t req)
{
	pid_t t = __atomic_load_n(&own_tid, __ATOMIC_ACQUIRE);

	return t && fuse_req_ctx(req)->pid == t;
}

void fs_own_pending(int kind, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&pend_lock);
	pend.kind = kind;
	pend.parent = parent;
	snprintf(pend.name, sizeof(pend.name), "%s", name);
	pthread_mutex_unlock(&pend_lock);
}

/* FS_PEND_STAGE: the secret whose staging file this is (flat views). */
static int pending_stage(char *secret, size_t cap)
{
	int r;

	pthread_mutex_lock(&pend_lock);
	r = pend.kind == FS_PEND_STAGE;
	if (r)
		snprintf(secret, cap, "%.*s", SFS_NAME_MAX, pend.name);
	pthread_mutex_unlock(&pend_lock);
	return r;
}

/* Is parent/name what the thread is making (kind)? */
static int pending(uint64_t parent, const char *name, int kind)
{
	int r;

	pthread_mutex_lock(&pend_lock);
	r = pend.kind == kind && pend.parent == parent &&
	    !strcmp(pend.name, name);
	pthread_mutex_unlock(&pend_lock);
	return r;
}

/* Reply an entry for a node of the thread's own making: real attributes
 * when the node has them, else st as given. An answer that depends on
 * the caller (FS_MINE_ENTRY, and kv/K whose st says size 0: its size
 * needs a decryption, an audited read) gets a zero entry timeout, as
 * fs_lookup gives it: a user's next path walk asks for itself, and a
 * sendfile(2) right after the event, bounded by the kernel's cached
 * size, reads the whole value. */
static void own_entry(fuse_req_t req, uint64_t parent, int kind,
		      const char *secret, uint32_t version, const char *name,
		      struct stat *st, struct fuse_file_info *fi)
{
	struct fs_node_info n;
	struct fuse_entry_param e;
	struct stat real;
	uint64_t ino = fs_node_ref(parent, kind, secret, version, name);
	int mine = 0, per_caller = kind == FK_KV;

	if (!ino) {
		fs_reply_err(req, FS_ENOMEM);
		return;
	}
	if (kind != FK_STAGED && kind != FK_KV && !fs_node_get(ino, &n) &&
	    !fs_node_attr_mine(req, &n, &real, &mine)) {
		*st = real;
		per_caller = mine & FS_MINE_ENTRY;
	}
	st->st_ino = ino;
	fs_fill_entry(&e, ino, st, 0);
	e.attr_timeout = 0; /* the next stat asks again */
	if (per_caller)
		e.entry_timeout = 0;
	if (fi) {
		fi->fh = 0;
		fi->direct_io = 1;
		if (fuse_reply_create(req, &e, fi))
			fs_node_forget(ino, 1);
	} else if (fuse_reply_entry(req, &e)) {
		fs_node_forget(ino, 1);
	}
}

static void stat_init(struct stat *st, mode_t mode)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_uid = fs_d.owner_uid;
}

static void n_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node_info p;
	struct stat st;

	if (!fs_notify_own(req) || fs_node_get(parent, &p)) {
		fs_ops.lookup(req, parent, name);
	} else if (pending(parent, name, FS_PEND_ABSENT)) {
		fs_reply_err(req, FS_ENOENT);
	} else if (pending(parent, name, FS_PEND_PRESENT)) {
		stat_init(&st,
			  fs_d.opts.flat ? S_IFREG | 0400 : S_IFDIR | 0700);
		own_entry(req, parent, fs_d.opts.flat ? FK_DEFAULT : FK_SECRET,
			  name, 0, name, &st, NULL);
	} else if (p.kind == FK_KVDIR) {
		/* a kv/ file the kernel held: no decrypt (no audit line) */
		stat_init(&st, S_IFREG | 0400);
		if (fs_node_find(FK_KV, p.secret, 0, name))
			own_entry(req, parent, FK_KV, p.secret, 0, name, &st,
				  NULL);
		else
			fs_reply_err(req, FS_ENOENT);
	} else {
		fs_ops.lookup(req, parent, name);
	}
}

static int ro(fuse_req_t req)
{
	return fs_d.opts.readonly && !fs_notify_own(req);
}

static void n_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fs_notify_own(req)) {
		fi->fh = 0;
		fi->direct_io = 1;
		fuse_reply_open(req, fi);
	} else if (ro(req) && ((fi->flags & O_ACCMODE) != O_RDONLY ||
			       (fi->flags & O_TRUNC))) {
		fs_reply_err(req, FS_EROFS);
	} else {
		fs_ops.open(req, ino, fi);
	}
}

static void n_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		    size_t size, off_t off, struct fuse_file_info *fi)
{
	if (fs_notify_own(req) && !fi->fh)
		fuse_reply_write(req, size); /* the byte is ignored */
	else if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.write(req, ino, buf, size, off, fi);
}

static void n_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fs_notify_own(req) && !fi->fh)
		fs_reply_err(req, 0);
	else
		fs_ops.flush(req, ino, fi);
}

static void n_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh)
		fs_poll_drop(fi->fh);
	fs_ops.release(req, ino, fi);
}

/* The staging file of notify=replace shows default's attributes: after
 * the rename it is default, and the kernel keeps what the create said. */
static void default_attr(fuse_req_t req, const struct fs_node_info *secret,
			 struct stat *st)
{
	struct fs_node_info n = *secret;

	n.ino = 0;
	n.parent = secret->ino;
	n.kind = FK_DEFAULT;
	strcpy(n.name, "default");
	stat_init(st, S_IFREG | 0400);
	if (fs_node_attr(req, &n, st))
		stat_init(st, S_IFREG | 0400);
}

/* A flat view's root: a new secret's file, or the staging file. */
static void own_create_flat(fuse_req_t req, struct fs_node_info *root,
			    const char *name, struct fuse_file_info *fi)
{
	struct stat st;

	if (pending(root->ino, name, FS_PEND_ABSENT)) {
		stat_init(&st, S_IFREG | 0400);
		own_entry(req, root->ino, FK_DEFAULT, name, 0, name, &st, fi);
	} else if (!strcmp(name, FS_NOTIFY_STAGE) &&
		   pending_stage(root->secret, sizeof(root->secret))) {
		default_attr(req, root, &st);
		own_entry(req, root->ino, FK_STAGED, root->secret,
			  fs_d.owner_uid, name, &st, fi);
	} else {
		fs_reply_err(req, FS_EPERM);
	}
}

static void n_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, struct fuse_file_info *fi)
{
	struct fs_node_info p;
	struct stat st;
	uint32_t v;

	if (!fs_notify_own(req) || fs_node_get(parent, &p)) {
		if (ro(req))
			fs_reply_err(req, FS_EROFS);
		else
			fs_ops.create(req, parent, name, mode, fi);
	} else if (p.kind == FK_VERSIONS &&
		   pending(parent, name, FS_PEND_ABSENT)) {
		v = (uint32_t)strtoul(name, NULL, 10);
		stat_init(&st, S_IFREG | 0400);
		own_entry(req, parent, FK_VERSION, p.secret, v, name, &st, fi);
	} else if (p.kind == FK_ROOT && fs_d.opts.flat) {
		own_create_flat(req, &p, name, fi);
	} else if (p.kind == FK_SECRET && !strcmp(name, FS_NOTIFY_STAGE)) {
		default_attr(req, &p, &st);
		own_entry(req, parent, FK_STAGED, p.secret, fs_d.owner_uid,
			  name, &st, fi);
	} else {
		fs_reply_err(req, FS_EPERM);
	}
}

static void n_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode)
{
	struct stat st;

	if (fs_notify_own(req) && pending(parent, name, FS_PEND_ABSENT)) {
		stat_init(&st, S_IFDIR | 0700);
		own_entry(req, parent, FK_SECRET, name, 0, name, &st, NULL);
	} else if (ro(req)) {
		fs_reply_err(req, FS_EROFS);
	} else {
		fs_ops.mkdir(req, parent, name, mode);
	}
}

static void n_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (fs_notify_own(req))
		fs_reply_err(
		    req, pending(parent, name, FS_PEND_PRESENT) ? 0 : FS_EPERM);
	else if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.rmdir(req, parent, name);
}

/* notify=replace: the staging node becomes default; nothing commits. */
static void own_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		       fuse_ino_t newparent, const char *newname)
{
	struct fs_node_info p;
	uint64_t ino;
	int flat = fs_d.opts.flat;

	if (parent != newparent || strcmp(name, FS_NOTIFY_STAGE) ||
	    fs_node_get(parent, &p) ||
	    (flat && !pending_stage(p.secret, sizeof(p.secret))) ||
	    strcmp(newname, flat ? p.secret : "default")) {
		fs_reply_err(req, FS_EPERM);
		return;
	}
	ino = fs_node_find(FK_STAGED, p.secret, fs_d.owner_uid, name);
	if (ino)
		fs_node_retarget(ino, FK_DEFAULT, 0, newname);
	fs_reply_err(req, 0);
}

static void n_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		     fuse_ino_t newparent, const char *newname,
		     unsigned int flags)
{
	if (fs_notify_own(req))
		own_rename(req, parent, name, newparent, newname);
	else if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.rename(req, parent, name, newparent, newname, flags);
}

static void n_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node_info p;
	uint64_t ino;

	if (fs_notify_own(req)) {
		/* a staging name left by a failed rename */
		if (!fs_node_get(parent, &p) &&
		    (ino = fs_node_find(FK_STAGED, p.secret, fs_d.owner_uid,
					name)))
			fuse_lowlevel_notify_inval_inode(fs_d.se, ino, 0, 0);
		fs_reply_err(req, 0);
	} else if (ro(req)) {
		fs_reply_err(req, FS_EROFS);
	} else {
		fs_ops.unlink(req, parent, name);
	}
}

static void n_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		      int to_set, struct fuse_file_info *fi)
{
	if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.setattr(req, ino, attr, to_set, fi);
}

static void n_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       const char *value, size_t size, int flags)
{
	if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.setxattr(req, ino, name, value, size, flags);
}

static void n_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.removexattr(req, ino, name);
}

static void n_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode, dev_t rdev)
{
	if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.mknod(req, parent, name, mode, rdev);
}

static void n_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		      const char *name)
{
	if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.symlink(req, link, parent, name);
}

static void n_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		   const char *newname)
{
	if (ro(req))
		fs_reply_err(req, FS_EROFS);
	else
		fs_ops.link(req, ino, newparent, newname);
}

const struct fuse_lowlevel_ops *fs_notify_ops(void)
{
	ops = fs_ops;
	ops.lookup = n_lookup;
	ops.open = n_open;
	ops.write = n_write;
	ops.flush = n_flush;
	ops.release = n_release;
	ops.poll = fs_poll;
	ops.create = n_create;
	ops.mkdir = n_mkdir;
	ops.rmdir = n_rmdir;
	ops.rename = n_rename;
	ops.unlink = n_unlink;
	ops.setattr = n_setattr;
	ops.setxattr = n_setxattr;
	ops.removexattr = n_removexattr;
	ops.mknod = n_mknod;
	ops.symlink = n_symlink;
	ops.link = n_link;
	return &ops;
}
