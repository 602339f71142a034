/*
 * Reads of value files, kv/ entries, keys/ and .status (SPEC §3): open,
 * read and release.
 *
 * A read handle holds the plaintext decrypted at open (a snapshot),
 * shared with the other handles of the same version (sfs_version_open)
 * and wiped by the core when the last one lets go; each handle charges
 * its opener's uid (FS_HELD_MAX, EMFILE past it). With cache=strict the
 * kernel never keeps it (direct I/O); cache=open pushes it into the page
 * cache at open and overwrites it at the last release (cached_open);
 * cache=kernel has no handles at all (kernel_open, read_nohandle).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

#include "fuse_int.h"
#include "secretfs/crypto.h"
#include "secretfs/version.h"

/*
 * A read handle: bytes to serve, wiped when the last user lets go. A read
 * holds a reference while it replies: the kernel may hand our reply to
 * the reader and get its RELEASE on another thread before fuse_reply_buf
 * has returned here.
 */
struct rfh {
	int write;		   /* 0: always (fuse_write.c's start with 1) */
	int refs;		   /* atomic */
	uint64_t gen;		   /* store generation before the read */
	struct sfs_value_ref *val; /* value plaintext, shared (core-owned) */
	char *buf;		   /* kv entry, .status or key JSON */
	size_t len;
	uint32_t uid;	/* charged for the handle (held_reserve) */
	size_t charged; /* bytes charged; 0: none */
	/* on rd_list (cache=strict default and kv/ files): */
	uint64_t ino;
	int32_t pid, tgid; /* the opener's thread; its process (rd_lock,
			    * 0 until needed) */
	struct rfh *next;  /* rd_lock */
	int tracked;
	int direct; /* opened with direct I/O (see fs_release) */
};

/*
 * fstat(2) on a read handle answers with that handle's snapshot (SPEC
 * §3). FUSE sends fstat as a GETATTR without the handle, so with
 * cache=strict (direct I/O: reads do not depend on the kernel's size)
 * the open handles of files whose value can change are kept here, and a
 * GETATTR from a process that holds one answers with its size. While
 * any is open, GETATTR answers are not cached, so that each process's
 * fstat reaches the daemon. (cache=open shares one page cache per file:
 * there the size is the file's.)
 */
static pthread_mutex_t rd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rfh *rd_list; /* rd_lock */

static size_t rfh_len(const struct rfh *h)
{
	if (h->buf)
		return h->len;
	return h->val ? sfs_value_of(h->val)->len : 0;
}

static void rd_track(struct rfh *h, fuse_req_t req, uint64_t ino, int kind)
{
	if (fs_d.opts.cache != FS_CACHE_STRICT ||
	    (kind != FK_DEFAULT && kind != FK_KV))
		return;
	h->ino = ino;
	h->pid = fuse_req_ctx(req)->pid;
	pthread_mutex_lock(&rd_lock);
	h->next = rd_list;
	rd_list = h;
	h->tracked = 1;
	pthread_mutex_unlock(&rd_lock);
}

static void rd_untrack(struct rfh *h)
{
	struct rfh **p;

	if (!h->tracked)
		return;
	pthread_mutex_lock(&rd_lock);
	for (p = &rd_list; *p && *p != h; p = &(*p)->next)
		;
	if (*p)
		*p = h->next;
	h->tracked = 0;
	pthread_mutex_unlock(&rd_lock);
}

int fs_fh_is_write(const struct fuse_file_info *fi)
{
	return fi && fi->fh && ((const struct rfh *)(uintptr_t)fi->fh)->write;
}

int fs_rd_size(const struct fuse_file_info *fi, off_t *size)
{
	if (!fi || !fi->fh || fs_fh_is_write(fi))
		return 0;
	*size = (off_t)rfh_len((const struct rfh *)(uintptr_t)fi->fh);
	return 1;
}

/* Handles open on ino: 0 none; 1 some; 2 one of them the requesting
 * process's, whose size goes to *size. */
int fs_rd_snapshot(fuse_req_t req, uint64_t ino, off_t *size)
{
	int32_t pid = fuse_req_ctx(req)->pid, tgid = 0;
	struct rfh *h;
	int found = 0;

	pthread_mutex_lock(&rd_lock);
	for (h = rd_list; h && found < 2; h = h->next) {
		if (h->ino != ino)
			continue;
		found = 1;
		if (h->pid != pid && !tgid)
			tgid = fs_caller_tgid(pid);
		if (h->pid != pid && !h->tgid)
			h->tgid = fs_caller_tgid(h->pid);
		if (h->pid == pid || (tgid > 0 && h->tgid == tgid)) {
			*size = (off_t)rfh_len(h);
			found = 2;
		}
	}
	pthread_mutex_unlock(&rd_lock);
	return found;
}

/* --- reads ------------------------------------------------------------- */

static int open_value(fuse_req_t req, const struct fs_node_info *n,
		      struct rfh *h)
{
	struct sfs_error err;
	struct sfs_caller c;
	uint32_t num = n->kind == FK_VERSION ? n->version : 0;
	int rc;

	if (fs_caller(req, FS_CALLER_GROUPS | FS_CALLER_COMM, &c))
		return SFS_EIO;
	if (!fs_visible(n->secret))
		return SFS_ENOENT;
	rc = fs_noted(
	    sfs_version_open(fs_d.ctx, &c, n->secret, num, &h->val, &err),
	    &err);
	if (rc)
		fs_refused_err(c.uid, "open", n->secret, n->name, &err);
	return rc;
}

static int open_read(fuse_req_t req, const struct fs_node_info *n,
		     struct rfh *h)
{
	switch (n->kind) {
	case FK_DEFAULT:
	case FK_VERSION:
		return open_value(req, n, h);
	case FK_KV:
		return fs_kv_entry(req, n->secret, n->name, &h->buf, &h->len);
	case FK_STATUS:
		h->buf = fs_status_json(req, &h->len);
		return h->buf ? SFS_OK : SFS_ENOMEM;
	case FK_KEY:
		return fs_key_json(req, n->name, &h->buf, &h->len);
	}
	return SFS_EPERM;
}

/* The bytes a handle serves. */
static const char *rfh_data(const struct rfh *h, size_t *len)
{
	const struct sfs_value *v = h->val ? sfs_value_of(h->val) : NULL;

	*len = v ? v->len : h->len;
	return v ? (const char *)v->data : h->buf;
}

/*
 * Plaintext held per uid: each read handle charges its opener's uid with
 * the bytes it serves plus its own size. Handles of one version share one
 * buffer (sfs_version_open) but each counts, so that a uid's handles are
 * bounded too. An open first reserves room for the largest value and
 * fails with EMFILE, before reading or auditing anything, when the uid
 * lacks it; other uids are not affected. The core refuses past
 * SFS_SHARED_MAX in all (ENOMEM).
 */
#define FS_HELD_MAX ((size_t)64 << 20)

struct held {
	struct held *next;
	uint32_t uid;
	size_t bytes;
};

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held *held_list;

static struct held **held_find(uint32_t uid)
{
	struct held **p;

	for (p = &held_list; *p && (*p)->uid != uid; p = &(*p)->next)
		;
	return p;
}

/* Before the read: charge h's opener for the largest handle, so that an
 * open past the cap reads (and audits) nothing. 0, EMFILE or ENOMEM. */
static int held_reserve(struct rfh *h, uint32_t uid)
{
	size_t n = SFS_VALUE_MAX + sizeof(*h);
	struct held **p;
	int e = 0;

	pthread_mutex_lock(&held_lock);
	p = held_find(uid);
	if (!*p && (*p = calloc(1, sizeof(**p))))
		(*p)->uid = uid;
	if (!*p)
		e = FS_ENOMEM;
	else if (n > FS_HELD_MAX - (*p)->bytes)
		e = FS_EMFILE;
	else
		(*p)->bytes += n;
	pthread_mutex_unlock(&held_lock);
	if (!e) {
		h->uid = uid;
		h->charged = n;
	}
	return e;
}

/* After the read: charge what h really holds. */
static void held_settle(struct rfh *h)
{
	size_t len, n;
	struct held *e;

	(void)rfh_data(h, &len);
	n = len + sizeof(*h);
	pthread_mutex_lock(&held_lock);
	e = *held_find(h->uid);
	if (e) /* reserved: there */
		e->bytes = e->bytes - h->charged + n;
	pthread_mutex_unlock(&held_lock);
	h->charged = n;
}

static void held_release(const struct rfh *h)
{
	struct held **p, *e;

	if (!h->charged)
		return;
	pthread_mutex_lock(&held_lock);
	p = held_find(h->uid);
	e = *p;
	if (e && (e->bytes -= h->charged) == 0) {
		*p = e->next;
		free(e);
	}
	pthread_mutex_unlock(&held_lock);
}

static void rfh_free(struct rfh *h)
{
	held_release(h);
	sfs_value_unref(h->val);
	sfs_crypto_free_secret(h->buf, h->len);
	free(h);
}

static void rfh_put(struct rfh *h)
{
	if (__atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) == 0)
		rfh_free(h);
}

/*
 * cache=open: the value goes into the page cache at open and leaves it at
 * release. The daemon pushes the plaintext it just decrypted into the
 * inode's pages (notify_store) before it replies with keep_cache, so the
 * reads that follow need no READ request. At the inode's last release the
 * plaintext leaves the page cache: the daemon overwrites the pages with
 * zeros (same length, so the cached size stays right and the next open
 * needs no GETATTR: an open costs OPEN and RELEASE, as a bare FUSE file
 * with kernel_cache does). When the store changed since (the length may
 * differ), it drops pages and attributes instead (inval_inode). If the
 * kernel refuses the pages, keep_cache = 0 and reads come as READ requests
 * on the handle. One lock orders the pushes of opens and releases.
 */
struct open_pages {
	uint64_t ino, gen;
	int opens;
	size_t len; /* bytes of the last push */
	struct open_pages *next;
};

static pthread_mutex_t op_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_pages *op_list;
static const char op_zeros[SFS_VALUE_MAX];

static struct open_pages **op_find(uint64_t ino)
{
	struct open_pages **p;

	for (p = &op_list; *p && (*p)->ino != ino; p = &(*p)->next)
		;
	return p;
}

static int op_push(uint64_t ino, const void *data, size_t len)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);

	bv.buf[0].mem = (void *)data;
	return fuse_lowlevel_notify_store(fs_d.se, ino, 0, &bv, 0);
}

static void cached_open(fuse_ino_t ino, const struct rfh *h,
			struct fuse_file_info *fi)
{
	struct open_pages **p, *e;
	size_t len;
	const void *data = rfh_data(h, &len);

	pthread_mutex_lock(&op_lock);
	if (h->gen != __atomic_load_n(&fs_d.generation, __ATOMIC_ACQUIRE))
		fuse_lowlevel_notify_inval_inode(fs_d.se, ino, 0, 0);
	p = op_find(ino);
	if (!*p && (*p = calloc(1, sizeof(**p))))
		(*p)->ino = ino;
	e = *p;
	if (e && len > 0 && len <= sizeof(op_zeros) &&
	    op_push(ino, data, len) == 0) {
		fi->keep_cache = 1;
		e->len = len;
		e->gen = h->gen;
	}
	if (e)
		e->opens++;
	pthread_mutex_unlock(&op_lock);
}

static void cached_release(fuse_ino_t ino)
{
	struct open_pages **p, *e;

	pthread_mutex_lock(&op_lock);
	p = op_find(ino);
	e = *p;
	if (e && --e->opens == 0) {
		*p = e->next;
		if (!e->len || e->gen != sfs_ctx_generation(fs_d.ctx) ||
		    op_push(ino, op_zeros, e->len))
			fuse_lowlevel_notify_inval_inode(fs_d.se, ino, 0, 0);
		free(e);
	} else if (!e) {
		fuse_lowlevel_notify_inval_inode(fs_d.se, ino, 0, 0);
	}
	pthread_mutex_unlock(&op_lock);
}

/*
 * cache=kernel: OPEN is answered ENOSYS. With FUSE_CAP_NO_OPEN_SUPPORT the
 * kernel takes it as success for good: no OPEN, FLUSH or RELEASE is sent
 * for any file on this connection again, and reads are served from the
 * page cache. That is per connection, so no write could commit at close()
 * or report the commit's error (SPEC §3): value files are read-only in this
 * mode (EROFS; they show no write bits, so the kernel answers EACCES to
 * anyone but root first). The first read of a value after it changed
 * reaches fs_read with no handle (fh 0): read_nohandle() checks the policy
 * for the caller and audits it.
 */
static int kernel_open(fuse_req_t req)
{
	if (fs_d.opts.cache != FS_CACHE_KERNEL)
		return 0;
	fs_reply_err(req, FS_ENOSYS);
	return 1;
}

void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_node_info n;
	struct rfh *h;
	int rc, e;

	if (kernel_open(req))
		return;
	if (fs_node_get(ino, &n)) {
		fs_reply_err(req, FS_ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || n.kind == FK_STAGED ||
	    (fi->flags & O_TRUNC)) {
		fs_write_open(req, &n, fi);
		return;
	}
	if (!(h = calloc(1, sizeof(*h)))) {
		fs_reply_err(req, FS_ENOMEM);
		return;
	}
	h->gen = sfs_ctx_generation(fs_d.ctx);
	e = held_reserve(h, fuse_req_ctx(req)->uid);
	if (!e && (rc = open_read(req, &n, h)))
		e = fs_errno(rc);
	if (e) {
		rfh_free(h);
		fs_reply_err(req, e);
		return;
	}
	held_settle(h);
	h->refs = 1;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->noflush = 1;
	if (fs_d.opts.cache == FS_CACHE_STRICT || n.kind == FK_STATUS ||
	    n.kind == FK_KEY)
		fi->direct_io = h->direct = 1;
	else
		cached_open(ino, h, fi);
	rd_track(h, req, ino, n.kind);
	if (fuse_reply_open(req, fi)) {
		rd_untrack(h);
		rfh_free(h);
	}
}

static void reply_slice(fuse_req_t req, const char *data, size_t len,
			size_t size, off_t off)
{
	if (off < 0 || (size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, data + off,
			       size < len - (size_t)off ? size
							: len - (size_t)off);
}

/* cache=kernel: a READ with no handle fills the page cache. The value is
 * read for the requesting process (policy and audit line as at an open)
 * and wiped once replied. keys/ and .status answer per caller (roles) or
 * change without a new generation: their pages are dropped at once, so
 * each read of them reaches the daemon. */
static void read_nohandle(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off)
{
	struct fs_node_info n;
	struct rfh *h = calloc(1, sizeof(*h));
	int rc = h ? SFS_OK : SFS_ENOMEM;
	size_t len;

	if (!rc && fs_node_get(ino, &n))
		rc = SFS_ENOENT;
	if (!rc)
		rc = open_read(req, &n, h);
	if (rc) {
		fs_reply_core(req, rc);
	} else {
		const char *data = rfh_data(h, &len);

		reply_slice(req, data, len, size, off);
	}
	if (h)
		rfh_free(h);
	if (!rc && (n.kind == FK_KEY || n.kind == FK_STATUS))
		fuse_lowlevel_notify_inval_inode(fs_d.se, ino, 0, 0);
}

void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct rfh *h = (struct rfh *)(uintptr_t)fi->fh;
	const char *data;
	size_t len;

	if (!h) {
		read_nohandle(req, ino, size, off);
		return;
	}
	if (h->write) {
		fs_write_read(req, size, off, fi);
		return;
	}
	__atomic_add_fetch(&h->refs, 1, __ATOMIC_ACQ_REL);
	data = rfh_data(h, &len);
	reply_slice(req, data, len, size, off);
	rfh_put(h);
}

void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfh *h = (struct rfh *)(uintptr_t)fi->fh;

	if (h && !fs_write_release(fi)) {
		/* cache=open: the plaintext leaves the page cache now. Direct
		 * I/O keeps read(2) out of it, but not sendfile(2), splice(2)
		 * or a private mmap(2): the kernel serves those from the page
		 * cache, so what they brought in goes at close too. */
		if (fs_d.opts.cache == FS_CACHE_OPEN && !h->direct)
			cached_release(ino);
		else if (h->direct)
			fuse_lowlevel_notify_inval_inode(fs_d.se, ino, 0, 0);
		rd_untrack(h);
		rfh_put(h);
	}
	fs_reply_err(req, 0);
}
