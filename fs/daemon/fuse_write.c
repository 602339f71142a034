/*
 * Writes (SPEC §3 "Writes"): `default` opened for writing (with O_TRUNC,
 * or without: the handle then starts with the current value), `versions/N`
 * created (a compare-and-set on N), and staged files (any other new name
 * in a secret's directory: `.NAME`, `sedXXXXXX`, `tmpXXXXXX`) renamed
 * onto `default`.
 *
 * A write handle captures its writer (struct sfs_caller) at open/create:
 * the kernel sends release, and on some paths flush, without the
 * caller's credentials. Bytes accumulate in a buffer the handle owns
 * (never past SFS_VALUE_MAX: such a write fails with EFBIG) and commit
 * once, at the writer process's first close (flush), so that close()
 * returns the commit's error; else at release. A handle that wrote
 * nothing commits nothing. Any failed write or truncate (too big, a
 * hole, a growing truncate) poisons the handle: its close commits
 * nothing and returns that errno. Buffers are wiped before they are
 * freed: their first len bytes, since no byte past len holds data (a
 * write lands at or before len, a truncate wipes what it cuts).
 *
 * Staged files live only in this process's memory, per secret and per
 * uid (visible to their creator only); nothing reaches the store unless
 * one is renamed onto `default`. staged_lock guards the list and every
 * staged file's bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse_int.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/secret.h"
#include "secretfs/version.h"

struct staged {
	struct staged *next;
	char secret[SFS_NAME_MAX + 1];
	char name[256];
	uint32_t uid, gid;  /* its creator's */
	unsigned char *buf; /* SFS_VALUE_MAX bytes once written */
	size_t len;
	int poison; /* errno that refuses a commit, or 0 */
	int refs;   /* open handles */
	int unlinked;
	int64_t mtime;
};

/* A write handle. `write` must stay first: fuse.c tells handles apart
 * by it. */
struct wfh {
	int write;
	pthread_mutex_t lock;
	struct sfs_caller caller;
	char secret[SFS_NAME_MAX + 1];
	uint32_t expect; /* versions/N: N; default: 0 */
	uint64_t ino;
	int32_t tgid;	    /* the writer's process (its threads share) */
	struct staged *st;  /* staged file, or NULL */
	unsigned char *buf; /* lock; SFS_VALUE_MAX bytes */
	size_t len;	    /* lock */
	int dirty, done;    /* lock: wrote something; committed/refused */
	int poison;	    /* lock: errno, or 0 */
};

static pthread_mutex_t staged_lock = PTHREAD_MUTEX_INITIALIZER;
static struct staged *staged_list; /* staged_lock */

static struct staged *staged_find(const char *secret, const char *name,
				  uint32_t uid)
{
	struct staged *s;

	for (s = staged_list; s; s = s->next)
		if (!s->unlinked && s->uid == uid &&
		    !strcmp(s->secret, secret) && !strcmp(s->name, name))
			return s;
	return NULL;
}

static void staged_free(struct staged *s)
{
	sfs_crypto_free_secret(s->buf, s->len);
	free(s);
}

/* Unlink s from the list and free it unless a handle holds it
 * (staged_lock held). */
static void staged_drop(struct staged *s)
{
	struct staged **pp = &staged_list;

	s->unlinked = 1;
	if (s->refs)
		return;
	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	staged_free(s);
}

void fs_staged_fini(void)
{
	struct staged *s, *next;

	pthread_mutex_lock(&staged_lock);
	for (s = staged_list; s; s = next) {
		next = s->next;
		staged_free(s);
	}
	staged_list = NULL;
	pthread_mutex_unlock(&staged_lock);
}

int fs_staged_name(const char *name)
{
	static const char *const fixed[] = {"default", "versions", "kv", ".",
					    ".."};
	size_t i;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!strcmp(name, fixed[i]))
			return 0;
	return name[0] != '\0';
}

int fs_staged_stat(const char *secret, const char *name, uint32_t uid,
		   struct stat *st)
{
	struct staged *s;
	int rc = FS_ENOENT;

	pthread_mutex_lock(&staged_lock);
	s = staged_find(secret, name, uid);
	if (s) {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_uid = uid;
		st->st_gid = s->gid;
		st->st_size = (off_t)s->len;
		st->st_mtim.tv_sec = (time_t)(s->mtime / 1000000000);
		st->st_ctim = st->st_atim = st->st_mtim;
		rc = 0;
	}
	pthread_mutex_unlock(&staged_lock);
	return rc;
}

int fs_staged_unlink(const char *secret, const char *name, uint32_t uid)
{
	struct staged *s;

	pthread_mutex_lock(&staged_lock);
	s = staged_find(secret, name, uid);
	if (s)
		staged_drop(s);
	pthread_mutex_unlock(&staged_lock);
	return s ? 0 : FS_ENOENT;
}

void fs_staged_each(const char *secret, uint32_t uid, fs_staged_cb cb,
		    void *arg)
{
	struct staged *s;

	pthread_mutex_lock(&staged_lock);
	for (s = staged_list; s; s = s->next)
		if (!s->unlinked && s->uid == uid &&
		    !strcmp(s->secret, secret) && cb(arg, s->name))
			break;
	pthread_mutex_unlock(&staged_lock);
}

/* Shrink to size (never grow: that would leave a hole). */
static int cut(size_t *len, unsigned char *buf, off_t size)
{
	if (size < 0 || (size_t)size > *len)
		return FS_EINVAL;
	if (buf)
		sfs_crypto_wipe(buf + size, *len - (size_t)size);
	*len = (size_t)size;
	return 0;
}

int fs_staged_truncate(const char *secret, const char *name, uint32_t uid,
		       off_t size)
{
	struct staged *s;
	int rc = FS_ENOENT;

	pthread_mutex_lock(&staged_lock);
	s = staged_find(secret, name, uid);
	if (s)
		rc = cut(&s->len, s->buf, size);
	pthread_mutex_unlock(&staged_lock);
	return rc;
}

/*
 * Put size bytes at off into buf (SFS_VALUE_MAX bytes, allocated here on
 * first use). A hole or a value past the limit poisons: the errno sticks.
 */
static int put(unsigned char **buf, size_t *len, int *poison, const char *data,
	       size_t size, off_t off)
{
	int was = *poison;

	if (was)
		return was;
	if (off < 0 || (size_t)off > *len)
		return *poison = FS_EINVAL;
	if (size > SFS_VALUE_MAX || (size_t)off > SFS_VALUE_MAX - size)
		return *poison = fs_errno(SFS_EFBIG);
	if (!*buf) {
		*buf = malloc(SFS_VALUE_MAX);
		if (!*buf)
			return *poison = FS_ENOMEM;
	}
	memcpy(*buf + off, data, size);
	if ((size_t)off + size > *len)
		*len = (size_t)off + size;
	return 0;
}

static void staged_unref(struct staged *s)
{
	pthread_mutex_lock(&staged_lock);
	if (--s->refs == 0 && s->unlinked)
		staged_drop(s);
	pthread_mutex_unlock(&staged_lock);
}

static struct wfh *wfh_new(const struct sfs_caller *c, const char *secret,
			   uint32_t expect, uint64_t ino)
{
	struct wfh *h = calloc(1, sizeof(*h));

	if (!h || fs_caller_keep(&h->caller, c)) {
		free(h);
		return NULL;
	}
	h->write = 1;
	pthread_mutex_init(&h->lock, NULL);
	snprintf(h->secret, sizeof(h->secret), "%s", secret);
	h->expect = expect;
	h->ino = ino;
	h->tgid = fs_caller_tgid(c->pid);
	return h;
}

static void wfh_free(struct wfh *h)
{
	sfs_crypto_free_secret(h->buf, h->len);
	pthread_mutex_destroy(&h->lock);
	fs_caller_drop(&h->caller);
	free(h);
}

/* Staged files one uid may hold at once (each up to SFS_VALUE_MAX). */
#define FS_STAGED_MAX 64

static int staged_count(uint32_t uid)
{
	struct staged *s;
	int n = 0;

	for (s = staged_list; s; s = s->next)
		n += !s->unlinked && s->uid == uid;
	return n;
}

/* A staged handle: find or make the file (staged_lock not held). */
static int staged_open(struct wfh *h, const char *name, int flags, int create)
{
	struct staged *s;
	int rc = 0;

	pthread_mutex_lock(&staged_lock);
	s = staged_find(h->secret, name, h->caller.uid);
	if (s && create && (flags & O_EXCL)) {
		rc = FS_EEXIST;
	} else if (!s && !create) {
		rc = FS_ENOENT;
	} else if (!s && staged_count(h->caller.uid) >= FS_STAGED_MAX) {
		rc = sfs_err_errno(SFS_ENOSPC); /* memory, not the store */
	} else if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			rc = FS_ENOMEM;
		} else {
			snprintf(s->secret, sizeof(s->secret), "%s", h->secret);
			snprintf(s->name, sizeof(s->name), "%s", name);
			s->uid = h->caller.uid;
			s->gid = h->caller.gid;
			s->mtime = sfs_time_now();
			s->next = staged_list;
			staged_list = s;
		}
	}
	if (!rc) {
		if (flags & O_TRUNC) {
			cut(&s->len, s->buf, 0);
			s->poison = 0;
		}
		s->refs++;
		h->st = s;
	}
	pthread_mutex_unlock(&staged_lock);
	return rc;
}

/* Reply to an open/create with the handle; undo it if the reply fails. */
static void reply_open(fuse_req_t req, struct wfh *h, struct fuse_file_info *fi,
		       const struct fuse_entry_param *e)
{
	int bad;

	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	/* A staged file's close has nothing to commit or report (its bytes
	 * are in place once write() returns): no FLUSH round trip. */
	fi->noflush = h->st != NULL;
	fs_node_writers(h->ino, 1);
	bad = e ? fuse_reply_create(req, e, fi) : fuse_reply_open(req, fi);
	if (bad) {
		fs_write_release(fi);
		if (e)
			fs_node_forget(e->ino, 1);
	}
}

int fs_writer_check(fuse_req_t req, const char *secret, uint32_t expect,
		    struct sfs_caller *c)
{
	struct sfs_error err;
	int e = fs_caller(req, FS_CALLER_FULL, c);

	if (e)
		return e;
	if (!fs_visible(secret))
		return FS_ENOENT;
	e = fs_noted(sfs_version_can_add(fs_d.ctx, c, secret, expect, &err),
		     &err);
	if (e)
		fs_refused_err(c->uid, "write", secret, NULL, &err);
	return fs_errno(e);
}

/*
 * default opened for writing without O_TRUNC (vim: open, ftruncate,
 * write): the handle starts with the value it replaces, read (and
 * audited) as the writer, as a file's bytes are there until overwritten.
 * It commits only if something is written or truncated.
 */
static int wfh_load(struct wfh *h)
{
	struct sfs_error err = {0};
	struct sfs_value v = {NULL, 0};
	int e =
	    fs_errno(fs_noted(sfs_version_read(fs_d.ctx, &h->caller, h->secret,
					       0, &v, NULL, &err),
			      &err));

	if (!e)
		e = put(&h->buf, &h->len, &h->poison, (const char *)v.data,
			v.len, 0);
	sfs_value_release(&v);
	return e;
}

void fs_write_open(fuse_req_t req, const struct fs_node_info *n,
		   struct fuse_file_info *fi)
{
	struct sfs_caller c;
	struct wfh *h = NULL;
	int e = 0;

	if (n->kind == FK_STAGED) {
		if ((e = fs_caller(req, 0, &c)))
			goto out;
		h = wfh_new(&c, n->secret, 0, n->ino);
		e = h ? staged_open(h, n->name, fi->flags, 0) : FS_ENOMEM;
	} else if (n->kind != FK_DEFAULT) {
		e = FS_EPERM;
	} else if (!(e = fs_writer_check(req, n->secret, 0, &c))) {
		h = wfh_new(&c, n->secret, 0, n->ino);
		e = !h ? FS_ENOMEM : (fi->flags & O_TRUNC) ? 0 : wfh_load(h);
	}
out:
	if (e) {
		if (h)
			wfh_free(h);
		fs_reply_err(req, e);
		return;
	}
	reply_open(req, h, fi, NULL);
}

/* What a create in parent/name means: default, versions/N or staged. */
static int create_target(fuse_req_t req, const struct fs_node_info *p,
			 const char *name, int *kind, uint32_t *num)
{
	unsigned long v;
	char *end;

	*num = 0;
	if (p->kind == FK_SECRET && !strcmp(name, "default")) {
		*kind = FK_DEFAULT;
	} else if (p->kind == FK_SECRET && fs_staged_name(name)) {
		*kind = FK_STAGED;
		*num = fuse_req_ctx(req)->uid;
	} else if (p->kind == FK_VERSIONS) {
		*kind = FK_VERSION;
		if (name[0] < '1' || name[0] > '9')
			return FS_EPERM;
		errno = 0;
		v = strtoul(name, &end, 10);
		if (errno || *end || v > UINT32_MAX)
			return FS_EPERM;
		*num = (uint32_t)v;
	} else {
		return FS_EPERM;
	}
	return strlen(name) > 255 ? FS_ENAMETOOLONG : 0;
}

void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct fs_node_info p, n;
	struct fuse_entry_param ep;
	struct sfs_caller c;
	struct stat st;
	struct wfh *h = NULL;
	int kind = 0, e = fs_node_get(parent, &p);
	uint32_t num = 0;

	(void)mode;
	if (!e)
		e = create_target(req, &p, name, &kind, &num);
	/* A staged file is a pending write of default: the same check,
	 * so a writer without the role is refused here, not at rename. */
	if (!e)
		e = fs_writer_check(req, p.secret, kind == FK_VERSION ? num : 0,
				    &c);
	if (!e) {
		h = wfh_new(&c, p.secret, kind == FK_VERSION ? num : 0, 0);
		if (!h)
			e = FS_ENOMEM;
		else if (kind == FK_STAGED)
			e = staged_open(h, name, fi->flags | O_CREAT, 1);
	}
	if (!e) {
		h->ino = fs_node_ref(parent, kind, p.secret, num, name);
		e = h->ino ? 0 : FS_ENOMEM;
	}
	if (!e) {
		fs_node_writers(h->ino, 1);
		e = fs_node_get(h->ino, &n);
		if (!e)
			e = fs_node_attr(req, &n, &st);
		fs_node_writers(h->ino, -1);
		if (e)
			fs_node_forget(h->ino, 1);
	}
	if (e) {
		if (h && h->st)
			staged_unref(h->st);
		if (h)
			wfh_free(h);
		fs_reply_err(req, e);
		return;
	}
	fs_fill_entry(&ep, h->ino, &st, 1);
	reply_open(req, h, fi, &ep);
}

void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi)
{
	struct wfh *h = (struct wfh *)(uintptr_t)fi->fh;
	int e;

	(void)ino;
	if (!h->write) {
		fs_reply_err(req, FS_EBADF);
		return;
	}
	if (h->st) {
		pthread_mutex_lock(&staged_lock);
		e = put(&h->st->buf, &h->st->len, &h->st->poison, buf, size,
			off);
		h->st->mtime = sfs_time_now();
		pthread_mutex_unlock(&staged_lock);
	} else {
		pthread_mutex_lock(&h->lock);
		e = h->done ? FS_EPERM
			    : put(&h->buf, &h->len, &h->poison, buf, size, off);
		if (!e)
			h->dirty = 1;
		pthread_mutex_unlock(&h->lock);
	}
	if (e)
		fs_reply_err(req, e);
	else
		fuse_reply_write(req, size);
}

/* A write past the value limit kept no bytes: the core still refuses and
 * audits it, with every field of the writer (issue 10, finding 14). */
static void audit_too_big(const struct sfs_caller *c, const char *secret,
			  uint32_t expect)
{
	struct sfs_error err = {0};

	fs_noted(sfs_version_add(fs_d.ctx, c, secret, NULL, SFS_VALUE_MAX + 1,
				 expect, NULL, &err),
		 &err);
}

/* Commit once (h->lock held); the errno of the commit, or 0. */
static int commit(struct wfh *h)
{
	struct sfs_error err;
	int rc;

	if (h->done || (!h->dirty && !h->poison))
		return 0;
	h->done = 1;
	if (h->poison == fs_errno(SFS_EFBIG))
		audit_too_big(&h->caller, h->secret, h->expect);
	if (h->poison)
		return h->poison;
	sfs_error_clear(&err);
	rc = fs_noted(sfs_version_add(fs_d.ctx, &h->caller, h->secret, h->buf,
				      h->len, h->expect, NULL, &err),
		      &err);
	if (rc)
		fs_refused_err(h->caller.uid, "close", h->secret, NULL, &err);
	return fs_errno(rc);
}

static int writer_flush(const struct wfh *h, int32_t pid)
{
	int32_t g;

	if (pid == h->caller.pid)
		return 1;
	g = fs_caller_tgid(pid);
	return g >= 0 && g == h->tgid;
}

void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct wfh *h = (struct wfh *)(uintptr_t)fi->fh;
	int e = 0;

	(void)ino;
	/*
	 * Commit at the writer's own close. A child that inherited the fd
	 * (fork, or close-on-exec in a spawned command) also flushes when it
	 * lets go of its copy: that must not commit half a value early or
	 * take the error away from the writer's close().
	 */
	if (h->write && !h->st && !writer_flush(h, fuse_req_ctx(req)->pid)) {
		fs_reply_err(req, 0);
		return;
	}
	if (h->write && !h->st) {
		pthread_mutex_lock(&h->lock);
		e = commit(h);
		pthread_mutex_unlock(&h->lock);
		/* New size and times at the next stat (flush holds no inode
		 * lock, so this notify cannot deadlock). */
		if (!e)
			fs_secret_changed(h->secret, 1);
	}
	fs_reply_err(req, e);
}

int fs_write_release(struct fuse_file_info *fi)
{
	struct wfh *h = (struct wfh *)(uintptr_t)fi->fh;

	if (!h->write)
		return 0;
	if (h->st) {
		staged_unref(h->st);
	} else {
		pthread_mutex_lock(&h->lock);
		commit(h); /* no flush came: nobody to tell the error to */
		pthread_mutex_unlock(&h->lock);
	}
	fs_node_writers(h->ino, -1);
	wfh_free(h);
	return 1;
}

int fs_write_read(fuse_req_t req, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	struct wfh *h = (struct wfh *)(uintptr_t)fi->fh;
	pthread_mutex_t *lk = h->st ? &staged_lock : &h->lock;
	const unsigned char *buf;
	size_t len;

	pthread_mutex_lock(lk);
	buf = h->st ? h->st->buf : h->buf;
	len = h->st ? h->st->len : h->len;
	if (off < 0 || (size_t)off >= len || !buf)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, (const char *)buf + off,
			       size < len - (size_t)off ? size
							: len - (size_t)off);
	pthread_mutex_unlock(lk);
	return 0;
}

/* A failed truncate poisons as a failed write does: the close that
 * follows commits nothing and returns its errno. */
int fs_write_truncate(struct fuse_file_info *fi, off_t size)
{
	struct wfh *h = (struct wfh *)(uintptr_t)fi->fh;
	int e;

	if (h->st) {
		pthread_mutex_lock(&staged_lock);
		e = h->st->poison ? h->st->poison
				  : cut(&h->st->len, h->st->buf, size);
		h->st->poison = e;
		pthread_mutex_unlock(&staged_lock);
		return e;
	}
	pthread_mutex_lock(&h->lock);
	if (h->done)
		e = FS_EPERM;
	else if (!(e = h->poison ? h->poison : cut(&h->len, h->buf, size)))
		h->dirty = 1;
	else
		h->poison = e;
	pthread_mutex_unlock(&h->lock);
	return e;
}

/* Commit staged file name onto default (the rename's errno, or 0). */
static int rename_commit(fuse_req_t req, const char *secret, const char *name,
			 unsigned int flags)
{
	struct sfs_secret_rec r;
	struct sfs_error err;
	struct sfs_caller c;
	struct staged *s;
	int full, rc, e = fs_caller(req, FS_CALLER_FULL, &c);

	if (e)
		return e;
	if ((flags & RENAME_NOREPLACE) &&
	    fs_noted(
		sfs_secret_get(fs_d.ctx, &fs_d.meta, secret, &r, &full, &err),
		&err) == SFS_OK &&
	    r.default_version)
		return FS_EEXIST;
	pthread_mutex_lock(&staged_lock);
	s = staged_find(secret, name, c.uid);
	if (!s)
		e = FS_ENOENT;
	else if (s->poison == fs_errno(SFS_EFBIG))
		audit_too_big(&c, secret, 0);
	if (s && s->poison)
		e = s->poison;
	else if (s &&
		 (rc = fs_noted(sfs_version_add(fs_d.ctx, &c, secret, s->buf,
						s->len, 0, NULL, &err),
				&err))) {
		fs_refused_err(c.uid, "rename", secret, name, &err);
		e = fs_errno(rc);
	}
	if (!e)
		staged_drop(s);
	pthread_mutex_unlock(&staged_lock);
	return e;
}

/* Rename one staged file onto another name (both the caller's). */
static int rename_staged(uint32_t uid, const char *secret, const char *from,
			 const char *to, unsigned int flags)
{
	struct staged *s, *t;
	int e = 0;

	pthread_mutex_lock(&staged_lock);
	s = staged_find(secret, from, uid);
	t = staged_find(secret, to, uid);
	if (!s)
		e = FS_ENOENT;
	else if (t && (flags & RENAME_NOREPLACE))
		e = FS_EEXIST;
	if (!e && t && t != s)
		staged_drop(t);
	if (!e)
		snprintf(s->name, sizeof(s->name), "%s", to);
	pthread_mutex_unlock(&staged_lock);
	return e;
}

void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs_node_info p;
	uint32_t uid = fuse_req_ctx(req)->uid;
	uint64_t ino;
	int e = fs_node_get(parent, &p);

	if (!e && (parent != newparent || p.kind != FK_SECRET ||
		   !fs_staged_name(name) || (flags & RENAME_EXCHANGE)))
		e = FS_EPERM;
	if (!e && !fs_visible(p.secret))
		e = FS_ENOENT;
	if (!e && !strcmp(newname, "default"))
		e = rename_commit(req, p.secret, name, flags);
	else if (!e && fs_staged_name(newname))
		e = rename_staged(uid, p.secret, name, newname, flags);
	else if (!e)
		e = FS_EPERM;
	if (!e && !strcmp(newname, "default"))
		fs_secret_changed(p.secret, 1);
	if (!e) {
		/* The kernel now shows the staged inode under the new name:
		 * make the node that name. */
		ino = fs_node_find(FK_STAGED, p.secret, uid, name);
		if (ino && !strcmp(newname, "default"))
			fs_node_retarget(ino, FK_DEFAULT, 0, newname);
		else if (ino)
			fs_node_retarget(ino, FK_STAGED, uid, newname);
	}
	fs_reply_err(req, e);
}
