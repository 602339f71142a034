/*
 * Directories (SPEC §3): lookup of a name in its parent (fs_resolve),
 * forget, and opendir/readdir/releasedir. A listing is built at opendir
 * and served by offset; secrets/'s is the same for every caller and kept
 * in the kernel's cache until the store changes (secrets_cached).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuse_int.h"
#include "secretfs/crypto.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

/* Directory listing built at opendir, served by offset; referenced
 * like struct rfh across a reply. */
struct dirbuf {
	char *p;
	size_t len, cap;
	fuse_req_t req;
	int refs;  /* atomic */
	int built; /* 0: secrets/ served from the kernel's cache (lazy) */
};

/*
 * secrets/'s listing is the same for every caller, so the kernel caches
 * it (cache_readdir): an opendir while the store's generation is still
 * the one the last listing was built at keeps the kernel's pages
 * (keep_cache) and builds nothing; the poller drops them (inval_inode) at
 * every change, and an opendir after a change builds afresh with
 * keep_cache = 0. If the kernel's copy is gone anyway, a READDIR arrives
 * and the listing is built then (dir_lock orders lazy builds).
 */
static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t secrets_gen; /* atomic: generation of the last listing */
static int secrets_listed;   /* atomic: secrets_gen is set */

static void dirbuf_put(struct dirbuf *b)
{
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		sfs_crypto_free_secret(b->p, b->cap);
		free(b);
	}
}

/* Parse a version number: decimal, no sign or leading zero. */
static int parse_version(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (s[0] < '1' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* layout=flat: the root's NAME is secrets/NAME/default; .status stays. */
static int resolve_flat(const char *name, struct fs_node_info *n)
{
	if (!strcmp(name, ".status")) {
		n->kind = FK_STATUS;
		n->ino = FS_INO_STATUS;
		return 0;
	}
	if (strlen(name) > SFS_NAME_MAX)
		return fs_errno(SFS_ENAMETOOLONG);
	strcpy(n->secret, name);
	n->kind = FK_DEFAULT;
	return 0;
}

/* The fixed names of the tree, in the root and in secrets/NAME. */
static const struct fixed_name {
	int parent; /* enum fs_kind */
	const char *name;
	int kind;
} fixed_names[] = {
    {FK_ROOT, "secrets", FK_SECRETS},	  {FK_ROOT, "keys", FK_KEYS},
    {FK_ROOT, ".status", FK_STATUS},	  {FK_SECRET, "default", FK_DEFAULT},
    {FK_SECRET, "versions", FK_VERSIONS}, {FK_SECRET, "kv", FK_KVDIR},
};

/* The kind of parent's fixed child name, or 0 (not one). */
static int fixed_kind(int parent, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(fixed_names) / sizeof(fixed_names[0]); i++)
		if (fixed_names[i].parent == parent &&
		    !strcmp(fixed_names[i].name, name))
			return fixed_names[i].kind;
	return 0;
}

/* Decide what parent/name names; fills n (without ino). errno or 0. */
int fs_resolve(fuse_req_t req, const struct fs_node_info *p, const char *name,
	       struct fs_node_info *n)
{
	memset(n, 0, sizeof(*n));
	n->parent = p->ino;
	if (strlen(name) >= sizeof(n->name))
		return FS_ENAMETOOLONG;
	strcpy(n->name, name);
	strcpy(n->secret, p->secret);
	switch (p->kind) {
	case FK_ROOT:
		if (fs_d.opts.flat)
			return resolve_flat(name, n);
		if (!(n->kind = fixed_kind(FK_ROOT, name)))
			return FS_ENOENT;
		n->ino = (uint64_t)n->kind;
		return 0;
	case FK_SECRETS:
		if (strlen(name) > SFS_NAME_MAX)
			return fs_errno(SFS_ENAMETOOLONG);
		strcpy(n->secret, name);
		n->kind = FK_SECRET;
		return 0;
	case FK_SECRET:
		if ((n->kind = fixed_kind(FK_SECRET, name)))
			return 0;
		if (!fs_staged_name(name))
			return FS_ENOENT;
		n->kind = FK_STAGED;
		n->version = fuse_req_ctx(req)->uid;
		return 0;
	case FK_VERSIONS:
		n->kind = FK_VERSION;
		return parse_version(name, &n->version) ? FS_ENOENT : 0;
	case FK_KVDIR:
		n->kind = FK_KV;
		return 0;
	case FK_KEYS:
		n->kind = FK_KEY;
		return strlen(name) > SFS_NAME_MAX ? fs_errno(SFS_ENAMETOOLONG)
						   : 0;
	}
	return FS_ENOTDIR;
}

void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node_info p, n;
	struct fuse_entry_param e;
	struct stat st;
	uint64_t ino;
	int mine = 0, rc = fs_node_get(parent, &p);

	memset(&n, 0, sizeof(n));
	if (!rc)
		rc = fs_resolve(req, &p, name, &n);
	if (!rc) {
		n.ino = n.kind <= FK_STATUS ? (uint64_t)n.kind : 0;
		rc = fs_node_attr_mine(req, &n, &st, &mine);
	}
	if (rc) {
		fs_reply_err(req, rc);
		return;
	}
	ino = fs_node_ref(parent, n.kind, n.secret, n.version, n.name);
	if (!ino) {
		fs_reply_err(req, FS_ENOMEM);
		return;
	}
	fs_fill_entry(&e, ino, &st,
		      n.kind == FK_STAGED || (mine & FS_MINE_ATTR));
	if (mine & FS_MINE_ENTRY)
		e.entry_timeout = 0;
	if (fuse_reply_entry(req, &e))
		fs_node_forget(ino, 1);
}

void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_node_forget(ino, nlookup);
	fuse_reply_none(req);
}

void fs_forget_multi(fuse_req_t req, size_t count,
		     struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		fs_node_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* --- directories ------------------------------------------------------- */

static int db_add(struct dirbuf *b, const char *name, int dir)
{
	struct stat st;
	size_t need = fuse_add_direntry(b->req, NULL, 0, name, NULL, 0);
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *c;

	if (b->len + need > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		char *p;

		while (cap < b->len + need)
			cap *= 2;
		/* kv/ names are part of a value: no stale copy left behind */
		p = malloc(cap);
		if (!p)
			return SFS_ENOMEM;
		if (b->len)
			memcpy(p, b->p, b->len);
		sfs_crypto_free_secret(b->p, b->cap);
		b->p = p;
		b->cap = cap;
	}
	for (c = name; *c; c++)
		h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
	memset(&st, 0, sizeof(st));
	st.st_ino = h | (1ULL << 63);
	st.st_mode = dir ? S_IFDIR : S_IFREG;
	fuse_add_direntry(b->req, b->p + b->len, need, name, &st,
			  (off_t)(b->len + need));
	b->len += need;
	return 0;
}

static int list_secret_cb(void *arg, const struct sfs_secret_rec *s)
{
	if (!fs_visible(s->name))
		return 0;
	return db_add(arg, s->name, 1);
}

static int list_version_cb(void *arg, const struct sfs_version_rec *v)
{
	char num[16];

	if (v->state == SFS_STATE_DESTROYED)
		return 0;
	snprintf(num, sizeof(num), "%u", v->version);
	return db_add(arg, num, 0);
}

static int list_kv_cb(void *arg, const char *key, const char *val, size_t len)
{
	(void)val;
	(void)len;
	if (!fs_kv_name_ok(key))
		return 0;
	return db_add(arg, key, 0);
}

static int list_key_cb(void *arg, const struct sfs_key_rec *k)
{
	return db_add(arg, k->name, 0);
}

static int list_staged_cb(void *arg, const char *name)
{
	return db_add(arg, name, 0);
}

/* layout=flat: a file for each visible secret with a default value. */
static int list_flat_cb(void *arg, const struct sfs_secret_rec *s)
{
	if (!fs_visible(s->name) || !s->default_version)
		return 0;
	return db_add(arg, s->name, 0);
}

static int list_flat(struct dirbuf *b)
{
	struct sfs_error err = {0};
	int rc = db_add(b, ".status", 0);

	if (rc)
		return rc;
	return fs_noted(
	    sfs_secret_list(fs_d.ctx, &fs_d.meta, list_flat_cb, b, &err), &err);
}

static int list_kv(fuse_req_t req, const char *secret, struct dirbuf *b)
{
	struct sfs_error err = {0};
	struct sfs_value v;
	int rc = fs_kv_value(req, secret, &v);

	if (rc == SFS_OK) {
		rc = fs_noted(
		    sfs_value_kv_each(v.data, v.len, 0, list_kv_cb, b, &err),
		    &err);
		if (rc == SFS_EINVAL)
			rc = SFS_OK; /* not a JSON object: an empty kv/ */
	}
	sfs_value_release(&v);
	return rc;
}

static int list_secret_dir(fuse_req_t req, const struct fs_node_info *n,
			   struct dirbuf *b)
{
	struct sfs_secret_rec r;
	int rc = fs_secret_rec(n->secret, &r);

	/* A caller refused the partial view sees default either way: its
	 * presence would tell whether a version exists. To anyone else a
	 * deactivated secret lists no default: nothing there can be read (a
	 * lookup still answers, and open gives EKEYREVOKED), and rm -r then
	 * meets only what it may remove (SPEC §3). */
	if (rc == SFS_OK &&
	    ((r.default_version && r.status == SFS_STATE_ACTIVE) ||
	     fs_view_check(req, &r) != SFS_OK))
		rc = db_add(b, "default", 0);
	if (rc == SFS_OK)
		rc = db_add(b, "versions", 1);
	if (rc == SFS_OK && fs_kv_present(req, n->secret, &r))
		rc = db_add(b, "kv", 1);
	if (rc == SFS_OK)
		fs_staged_each(n->secret, fuse_req_ctx(req)->uid,
			       list_staged_cb, b);
	return rc;
}

static int list_dir(fuse_req_t req, const struct fs_node_info *n,
		    struct dirbuf *b)
{
	struct sfs_error err = {0};
	struct sfs_caller c;
	int rc;

	if ((rc = db_add(b, ".", 1)) || (rc = db_add(b, "..", 1)))
		return rc;
	switch (n->kind) {
	case FK_ROOT:
		if (fs_d.opts.flat)
			return list_flat(b);
		if ((rc = db_add(b, "secrets", 1)) ||
		    (rc = db_add(b, "keys", 1)))
			return rc;
		return db_add(b, ".status", 0);
	case FK_SECRETS:
		return fs_noted(sfs_secret_list(fs_d.ctx, &fs_d.meta,
						list_secret_cb, b, &err),
				&err);
	case FK_SECRET:
		return list_secret_dir(req, n, b);
	case FK_VERSIONS:
		/* the partial view shows no version numbers: the core's
		 * view check decides, with the caller */
		if (!fs_visible(n->secret))
			return SFS_ENOENT;
		if (fs_caller(req, FS_CALLER_GROUPS, &c))
			return SFS_EIO;
		return fs_noted(sfs_version_list(fs_d.ctx, &c, n->secret, 0,
						 list_version_cb, b, &err),
				&err);
	case FK_KVDIR:
		return list_kv(req, n->secret, b);
	case FK_KEYS:
		if (fs_caller(req, FS_CALLER_FULL, &c))
			return SFS_EIO;
		return fs_noted(
		    sfs_key_list(fs_d.ctx, &c, list_key_cb, b, &err), &err);
	}
	return SFS_EINVAL;
}

/* secrets/: may the kernel's cached listing serve this opendir? */
static int secrets_cached(struct fuse_file_info *fi)
{
	uint64_t g = sfs_ctx_generation(fs_d.ctx);

	fi->cache_readdir = 1;
	if (__atomic_load_n(&secrets_listed, __ATOMIC_ACQUIRE) &&
	    __atomic_load_n(&secrets_gen, __ATOMIC_ACQUIRE) == g &&
	    __atomic_load_n(&fs_d.generation, __ATOMIC_ACQUIRE) == g) {
		fi->keep_cache = 1;
		return 1;
	}
	__atomic_store_n(&secrets_gen, g, __ATOMIC_RELEASE);
	__atomic_store_n(&secrets_listed, 1, __ATOMIC_RELEASE);
	return 0;
}

void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_node_info n;
	struct dirbuf *b = calloc(1, sizeof(*b));
	int rc;

	if (!b) {
		fs_reply_err(req, FS_ENOMEM);
		return;
	}
	b->req = req;
	b->refs = 1;
	b->built = 1;
	rc = fs_node_get(ino, &n) ? SFS_ENOENT : 0;
	if (!rc && n.kind == FK_SECRETS && secrets_cached(fi))
		b->built = 0;
	else if (!rc)
		rc = list_dir(req, &n, b);
	if (rc) {
		dirbuf_put(b);
		fs_reply_core(req, rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)b;
	if (fuse_reply_open(req, fi))
		dirbuf_put(b);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;
	struct fs_node_info n;
	int rc = 0;

	__atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_lock(&dir_lock);
	if (!__atomic_load_n(&b->built, __ATOMIC_ACQUIRE)) {
		b->req = req;
		rc = fs_node_get(ino, &n) ? SFS_ENOENT : list_dir(req, &n, b);
		if (rc)
			b->len = 0; /* a retry starts afresh */
		__atomic_store_n(&b->built, !rc, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&dir_lock);
	if (rc)
		fs_reply_core(req, rc);
	else if (off < 0 || (size_t)off >= b->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(
		    req, b->p + off,
		    size < b->len - (size_t)off ? size : b->len - (size_t)off);
	dirbuf_put(b);
}

void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dirbuf_put((struct dirbuf *)(uintptr_t)fi->fh);
	fs_reply_err(req, 0);
}
