/*
 * The filesystem's read side and tree operations (SPEC §3): lookup,
 * getattr, access, readdir, open/read/release of value files, mkdir, rmdir,
 * unlink, setattr, and the poller that drops the kernel's caches when the
 * store changes. Writes, staged files and rename are in fuse_write.c,
 * extended attributes in fuse_xattr.c.
 *
 * Every handler maps one request onto the core and the core's error onto
 * an errno (fs_errno: sfs_err_errno); a refusal is logged with the core's
 * reason under -f or -o debug (fs_refused). Metadata for stat (owner,
 * mode, sizes, times) is read with the daemon's own caller: names are
 * public and attributes are cached per inode by the kernel. Values, kv/
 * and keys/ are read with the requesting process's caller. Where the
 * answer depends on who asks (kv/ entries, keys/, .status, and stat of an
 * access-controlled secret's values, EACCES outside its partial view) the
 * kernel gets a zero entry timeout, and mostly a zero attribute timeout,
 * so it never shows one caller's answer to another (node_attr). kv/
 * exists only for a JSON object default, which only a reader may learn
 * (kv_present); a process holding a read handle sees its snapshot's size,
 * answered uncached (rd_snapshot).
 *
 * A read handle holds the plaintext decrypted at open (a snapshot),
 * shared with the other handles of the same version (sfs_version_open)
 * and wiped by the core when the last one lets go; each handle charges
 * its opener's uid (FS_HELD_MAX, EMFILE past it). With cache=strict the
 * kernel never keeps it (direct I/O); cache=open pushes it into the page
 * cache at open and overwrites it at the last release (cached_open);
 * cache=kernel has no handles at all (kernel_open, read_nohandle).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "fuse_int.h"
#include "render.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/keys.h"
#include "secretfs/policy.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

struct fs_daemon fs_d;

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

/* Handles open on ino: 0 none; 1 some; 2 one of them the requesting
 * process's, whose size goes to *size. */
static int rd_snapshot(fuse_req_t req, uint64_t ino, off_t *size)
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

void fs_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (fs_d.opts.foreground || fs_d.opts.debug) {
		fputs("secretfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(LOG_ERR, fmt, ap);
	}
	va_end(ap);
}

void fs_refused(uint32_t uid, const char *op, const char *secret,
		const char *name, int code, const char *why)
{
	if (!code || !(fs_d.opts.foreground || fs_d.opts.debug))
		return;
	fs_log("%s secrets/%s%s%s refused (%s) for uid %u: %s", op, secret,
	       name ? "/" : "", name ? name : "", sfs_err_name(code),
	       (unsigned)uid, why && *why ? why : sfs_strerror(code));
}

void fs_refused_err(uint32_t uid, const char *op, const char *secret,
		    const char *name, const struct sfs_error *err)
{
	fs_refused(uid, op, secret, name, err->code, err->msg);
}

int fs_errno(int code)
{
	const char *why;

	/* "EIO: the store failed; details in the daemon's log" */
	if (code == SFS_EIO || code == SFS_ENOSPC) {
		why = sfs_ctx_last_error(fs_d.ctx);
		fs_log("store error: %s", why ? why : sfs_strerror(code));
	}
	return sfs_err_errno(code);
}

void fs_reply_core(fuse_req_t req, int code)
{
	fuse_reply_err(req, fs_errno(code));
}

int fs_visible(const char *name)
{
	char glob[SFS_NAME_MAX * 4 + 1];
	const char *p = fs_d.opts.only, *end;
	size_t n;

	if (!p)
		return 1;
	for (;; p = end + 1) {
		end = strchr(p, ':');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n < sizeof(glob)) {
			memcpy(glob, p, n);
			glob[n] = '\0';
			if (n && fnmatch(glob, name, 0) == 0)
				return 1;
		}
		if (!end)
			return 0;
	}
}

static void ts_set(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
}

static void attr_dir(struct stat *st, mode_t mode)
{
	st->st_mode = S_IFDIR | mode;
	st->st_nlink = 2;
}

/*
 * cache=kernel: the kernel checks permissions (default_permissions), so
 * the modes it sees must say what the daemon would. Value files never
 * show write bits (they are read-only in this mode); an access-controlled
 * secret's show 0440 and carry a POSIX ACL from the allow list (the group
 * bits are the ACL's mask: the kernel reads the ACL only when they are
 * set). Directories where the core checks roles (secrets/, a secret's
 * directory and versions/) are writable by all, as the core decides.
 */
static mode_t value_mode(const struct sfs_secret_rec *r)
{
	if (fs_d.opts.cache != FS_CACHE_KERNEL)
		return r->mode & 07777;
	return r->access_control ? 0440 : r->mode & 0555;
}

static mode_t dir_mode(mode_t m)
{
	return fs_d.opts.cache == FS_CACHE_KERNEL && (m & 0200) ? 0777 : m;
}

/* A secret's directory: its mode with x wherever r is (SPEC §3), so that
 * copies made by cp -a, tar or rsync can be entered. */
static mode_t secret_dir_mode(mode_t m)
{
	m &= 07777;
	return m | ((m & 0444) >> 2);
}

/* Owner, group, mode and times of the secret's entries. */
static void attr_secret(struct stat *st, const struct sfs_secret_rec *r,
			int64_t mtime)
{
	st->st_uid = r->owner;
	st->st_gid = r->group;
	st->st_mode = S_IFREG | value_mode(r);
	st->st_nlink = 1;
	ts_set(&st->st_atim, mtime);
	ts_set(&st->st_mtim, mtime);
	ts_set(&st->st_ctim, r->changed_at);
}

/* Through a view with uid=, gid=, mode=: value files show the view's
 * identity (sfs_policy_view_attrs). An access-controlled secret keeps
 * its own: its allow list decides (and cache=kernel's ACL is built on
 * its owner). cache=kernel shows no write bits (value_mode). */
static void attr_view(struct stat *st, const struct sfs_secret_rec *r)
{
	uint32_t owner, group, mode;

	if (!fs_d.opts.view.set || r->access_control)
		return;
	sfs_policy_view_attrs(&fs_d.opts.view, r, &owner, &group, &mode);
	st->st_uid = owner;
	st->st_gid = group;
	st->st_mode =
	    S_IFREG |
	    (fs_d.opts.cache == FS_CACHE_KERNEL ? mode & 0555 : mode & 07777);
}

static int secret_rec(const char *name, struct sfs_secret_rec *r)
{
	int full;

	if (!fs_visible(name))
		return SFS_ENOENT;
	return sfs_secret_get(fs_d.ctx, &fs_d.meta, name, r, &full, NULL);
}

/*
 * The partial view (SPEC §3): a caller who may not read an
 * access-controlled secret learns nothing of its versions, so stat of
 * default, versions/N and kv/K is EACCES for them, whether the version
 * exists or not. Managers may add versions without being on the list
 * (and may put themselves on it): they pass. SFS_OK or SFS_EACCES.
 */
static int view_check(fuse_req_t req, const struct sfs_secret_rec *r)
{
	struct sfs_caller c;

	if (!r->access_control)
		return SFS_OK;
	if (fs_caller(req, FS_CALLER_GROUPS, &c))
		return SFS_EIO;
	if (sfs_policy_may_view(&c, r))
		return SFS_OK;
	if (fs_caller(req, FS_CALLER_FULL, &c))
		return SFS_EIO;
	return sfs_policy_may_manage(&c) ? SFS_OK : SFS_EACCES;
}

enum { MINE_ENTRY = 1, MINE_ATTR = 2 }; /* see node_attr */

/* Attributes of default or versions/N; a pending file (created, not yet
 * committed) shows as empty. *mine: the answer depends on the caller. */
static int attr_value(fuse_req_t req, const struct fs_node_info *n,
		      struct stat *st, int *mine)
{
	struct sfs_secret_rec r;
	struct sfs_version_rec v;
	uint32_t num = n->kind == FK_VERSION ? n->version : 0;
	int rc = secret_rec(n->secret, &r);

	memset(&v, 0, sizeof(v));

	if (rc == SFS_OK && r.access_control) {
		*mine = MINE_ENTRY;
		rc = view_check(req, &r);
	}
	if (rc)
		return rc;
	if (num == 0 && r.default_version == 0)
		rc = SFS_ENOENT;
	else
		rc = sfs_version_info(fs_d.ctx, &fs_d.meta, n->secret, num, &v,
				      NULL);
	if (rc == SFS_OK && v.state == SFS_STATE_DESTROYED)
		rc = SFS_ENOENT;
	if (rc == SFS_OK) {
		attr_secret(st, &r, v.created_at);
		attr_view(st, &r);
		st->st_size = v.size;
		sfs_version_rec_release(&v);
	} else if (rc == SFS_ENOENT && n->writers > 0) {
		attr_secret(st, &r, r.changed_at);
		rc = SFS_OK;
	}
	return rc;
}

/* Read the value a kv/ request needs, with the caller's permission. */
static int kv_value(fuse_req_t req, const char *secret, struct sfs_value *v)
{
	struct sfs_caller c;
	int e = fs_caller(req, FS_CALLER_GROUPS | FS_CALLER_COMM, &c);

	memset(v, 0, sizeof(*v));
	if (e)
		return SFS_EIO;
	if (!fs_visible(secret))
		return SFS_ENOENT;
	return sfs_version_read(fs_d.ctx, &c, secret, 0, v, NULL, NULL);
}

/* A kv/ entry name that can be a file name. */
static int kv_name_ok(const char *k)
{
	size_t n = strlen(k);

	return n && n <= 255 && strcmp(k, ".") && strcmp(k, "..") &&
	       !strchr(k, '/');
}

static int kv_entry(fuse_req_t req, const char *secret, const char *key,
		    char **out, size_t *len)
{
	struct sfs_value v;
	int rc;

	*out = NULL;
	if (!kv_name_ok(key))
		return SFS_ENOENT;
	rc = kv_value(req, secret, &v);
	if (rc == SFS_OK) {
		rc = sfs_value_kv_get(v.data, v.len, key, out, len);
		if (rc == SFS_EINVAL)
			rc = SFS_ENOENT;
	}
	sfs_value_release(&v);
	return rc;
}

/* keys/NAME as JSON (malloc'd, trailing newline). */
static int key_json(fuse_req_t req, const char *name, char **out, size_t *len)
{
	struct sfs_caller c;
	struct sfs_key_rec k;
	int rc = fs_caller(req, FS_CALLER_FULL, &c);

	*out = NULL;
	if (rc)
		return SFS_EIO;
	rc = sfs_key_get(fs_d.ctx, &c, name, &k, NULL);
	if (rc)
		return rc;
	if (strcmp(k.name, name))
		return SFS_ENOENT; /* keys/ names keys by name only */
	*out = fs_render_json_file(fs_render_key_json(&k), len);
	if (!*out)
		return SFS_ENOMEM;
	return SFS_OK;
}

static int kv_none_cb(void *arg, const char *key, const char *val, size_t len)
{
	(void)arg;
	(void)key;
	(void)val;
	(void)len;
	return 0;
}

/* Is the default value (format json: decrypted, an audited read) an
 * object? */
static int kv_is_object(fuse_req_t req, const char *secret)
{
	struct sfs_value v;
	int rc = kv_value(req, secret, &v);

	if (rc == SFS_OK)
		rc =
		    sfs_value_kv_each(v.data, v.len, 0, kv_none_cb, NULL, NULL);
	sfs_value_release(&v);
	return rc == SFS_OK;
}

/*
 * Does kv/ exist for this caller? Only while the default version is a
 * JSON object (SPEC §3): the secret and its default active, format kv
 * (known without decrypting), or json and an object. A caller who may
 * not read the value must not learn its format, its state or whether it
 * has a version: for it kv/ always exists, and opening it gives the
 * read's refusal (EACCES).
 */
static int kv_present(fuse_req_t req, const char *secret,
		      const struct sfs_secret_rec *r)
{
	struct sfs_version_rec v;
	struct sfs_caller c;
	int fmt;

	if (fs_caller(req, FS_CALLER_GROUPS, &c))
		return 0;
	if (!sfs_policy_may_read(&c, r))
		return 1;
	if (r->status != SFS_STATE_ACTIVE || !r->default_version)
		return 0;
	if (sfs_version_info(fs_d.ctx, &fs_d.meta, secret, 0, &v, NULL))
		return 0;
	fmt = v.state == SFS_STATE_ACTIVE ? v.format : SFS_FMT_TEXT;
	sfs_version_rec_release(&v);
	if (fmt == SFS_FMT_JSON)
		return kv_is_object(req, secret);
	return fmt == SFS_FMT_KV;
}

/* Attributes of kv/K: its size needs the value, so this is an audited
 * read (the core has no read without an audit line). */
static int attr_kv(fuse_req_t req, const struct fs_node_info *n,
		   struct stat *st)
{
	struct sfs_secret_rec r;
	char *val;
	size_t len = 0;
	int rc = secret_rec(n->secret, &r);

	if (rc == SFS_OK && !kv_present(req, n->secret, &r))
		rc = SFS_ENOENT;
	if (rc == SFS_OK)
		rc = kv_entry(req, n->secret, n->name, &val, &len);
	if (rc == SFS_OK) {
		attr_secret(st, &r, r.changed_at);
		attr_view(st, &r);
		st->st_size = (off_t)len;
		sfs_crypto_free_secret(val, len);
	}
	return rc;
}

static int attr_fixed_file(fuse_req_t req, const struct fs_node_info *n,
			   struct stat *st)
{
	char *s;
	size_t len = 0;
	int rc = SFS_OK;

	if (n->kind == FK_STATUS) {
		s = fs_status_json(req, &len);
		if (!s)
			return SFS_ENOMEM;
	} else {
		rc = key_json(req, n->name, &s, &len);
		if (rc)
			return rc;
	}
	free(s);
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)len;
	st->st_uid = fs_d.owner_uid;
	return rc;
}

/*
 * Attributes of a node. *mine is set when the answer depends on who asks
 * (kv/ entries, keys/, .status, the values of an access-controlled
 * secret): the kernel must not keep those, or it would show one caller's
 * answer to the next. MINE_ENTRY: a zero entry timeout, so every path
 * walk revalidates with a LOOKUP for its own caller (which refreshes the
 * attributes too); MINE_ATTR: a zero attribute timeout as well, for
 * keys/ and .status only. No caller reaches a value's cached attributes
 * without a path walk (that LOOKUP refuses them) or an open descriptor,
 * so values keep theirs: a GETATTR at each cache=kernel read would cost
 * a policy check (and for kv/ a decryption) every time.
 */
static int node_attr(fuse_req_t req, const struct fs_node_info *n,
		     struct stat *st, int *mine)
{
	struct sfs_secret_rec r;
	int rc = SFS_OK;

	*mine = 0;
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = fs_d.owner_uid;
	ts_set(&st->st_atim, fs_d.started);
	st->st_mtim = st->st_ctim = st->st_atim;
	switch (n->kind) {
	case FK_ROOT:
	case FK_KEYS:
		attr_dir(st, 0555);
		break;
	case FK_SECRETS:
		attr_dir(st, dir_mode(0755));
		break;
	case FK_STATUS:
	case FK_KEY:
		*mine = MINE_ENTRY | MINE_ATTR;
		rc = attr_fixed_file(req, n, st);
		break;
	case FK_SECRET:
	case FK_VERSIONS:
	case FK_KVDIR:
		rc = secret_rec(n->secret, &r);
		if (n->kind == FK_KVDIR)
			*mine = MINE_ENTRY; /* kv_present: per caller */
		if (rc == SFS_OK && n->kind == FK_KVDIR &&
		    !kv_present(req, n->secret, &r))
			rc = SFS_ENOENT;
		if (rc)
			break;
		attr_secret(st, &r, r.changed_at);
		if (n->kind == FK_SECRET)
			attr_dir(st, fs_d.opts.cache == FS_CACHE_KERNEL
					 ? 0777
					 : secret_dir_mode(r.mode));
		else
			attr_dir(st, n->kind == FK_KVDIR ? 0555
							 : dir_mode(0755));
		break;
	case FK_DEFAULT:
	case FK_VERSION:
		rc = attr_value(req, n, st, mine);
		break;
	case FK_KV:
		*mine = MINE_ENTRY;
		rc = attr_kv(req, n, st);
		break;
	case FK_STAGED:
		if (fuse_req_ctx(req)->uid != n->version)
			return ENOENT;
		return fs_staged_stat(n->secret, n->name, n->version, st);
	default:
		rc = SFS_ENOENT;
	}
	st->st_ino = n->ino;
	return rc ? fs_errno(rc) : 0;
}

int fs_node_attr(fuse_req_t req, const struct fs_node_info *n, struct stat *st)
{
	int mine;

	return node_attr(req, n, st, &mine);
}

void fs_fill_entry(struct fuse_entry_param *e, uint64_t ino,
		   const struct stat *st, int pending)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr = *st;
	e->attr.st_ino = ino;
	e->attr_timeout = pending ? 0 : fs_d.attr_timeout;
	e->entry_timeout = pending ? 0 : fs_d.entry_timeout;
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

/* Decide what parent/name names; fills n (without ino). errno or 0. */
static int resolve(fuse_req_t req, const struct fs_node_info *p,
		   const char *name, struct fs_node_info *n)
{
	memset(n, 0, sizeof(*n));
	n->parent = p->ino;
	if (strlen(name) >= sizeof(n->name))
		return ENAMETOOLONG;
	strcpy(n->name, name);
	strcpy(n->secret, p->secret);
	switch (p->kind) {
	case FK_ROOT:
		if (fs_d.opts.flat)
			return resolve_flat(name, n);
		if (!strcmp(name, "secrets"))
			n->kind = FK_SECRETS;
		else if (!strcmp(name, "keys"))
			n->kind = FK_KEYS;
		else if (!strcmp(name, ".status"))
			n->kind = FK_STATUS;
		else
			return ENOENT;
		n->ino = (uint64_t)n->kind;
		return 0;
	case FK_SECRETS:
		if (strlen(name) > SFS_NAME_MAX)
			return fs_errno(SFS_ENAMETOOLONG);
		strcpy(n->secret, name);
		n->kind = FK_SECRET;
		return 0;
	case FK_SECRET:
		if (!strcmp(name, "default"))
			n->kind = FK_DEFAULT;
		else if (!strcmp(name, "versions"))
			n->kind = FK_VERSIONS;
		else if (!strcmp(name, "kv"))
			n->kind = FK_KVDIR;
		else if (fs_staged_name(name)) {
			n->kind = FK_STAGED;
			n->version = fuse_req_ctx(req)->uid;
		} else
			return ENOENT;
		return 0;
	case FK_VERSIONS:
		n->kind = FK_VERSION;
		return parse_version(name, &n->version) ? ENOENT : 0;
	case FK_KVDIR:
		n->kind = FK_KV;
		return 0;
	case FK_KEYS:
		n->kind = FK_KEY;
		return strlen(name) > SFS_NAME_MAX ? fs_errno(SFS_ENAMETOOLONG)
						   : 0;
	}
	return ENOTDIR;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node_info p, n;
	struct fuse_entry_param e;
	struct stat st;
	uint64_t ino;
	int mine = 0, rc = fs_node_get(parent, &p);

	memset(&n, 0, sizeof(n));
	if (!rc)
		rc = resolve(req, &p, name, &n);
	if (!rc) {
		n.ino = n.kind <= FK_STATUS ? (uint64_t)n.kind : 0;
		rc = node_attr(req, &n, &st, &mine);
	}
	if (rc) {
		fuse_reply_err(req, rc);
		return;
	}
	ino = fs_node_ref(parent, n.kind, n.secret, n.version, n.name);
	if (!ino) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fs_fill_entry(&e, ino, &st, n.kind == FK_STAGED || (mine & MINE_ATTR));
	if (mine & MINE_ENTRY)
		e.entry_timeout = 0;
	if (fuse_reply_entry(req, &e))
		fs_node_forget(ino, 1);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_node_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		fs_node_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	const struct rfh *h = fi ? (const struct rfh *)(uintptr_t)fi->fh : NULL;
	struct fs_node_info n;
	struct stat st;
	int mine = 0, snap = 0, rc = fs_node_get(ino, &n);

	if (!rc)
		rc = node_attr(req, &n, &st, &mine);
	if (rc) {
		fuse_reply_err(req, rc);
		return;
	}
	/* a handle's own snapshot: lseek(SEEK_END) sends it, fstat not */
	if (h && !h->write && (n.kind == FK_DEFAULT || n.kind == FK_KV)) {
		st.st_size = (off_t)rfh_len(h);
		snap = 1;
	} else if (n.kind == FK_DEFAULT || n.kind == FK_KV) {
		snap = rd_snapshot(req, ino, &st.st_size);
	}
	if (n.kind == FK_STAGED || n.writers || snap || (mine & MINE_ATTR))
		fuse_reply_attr(req, &st, 0);
	else
		fuse_reply_attr(req, &st, fs_d.attr_timeout);
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
	if (!kv_name_ok(key))
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
	int rc = db_add(b, ".status", 0);

	if (rc)
		return rc;
	return sfs_secret_list(fs_d.ctx, &fs_d.meta, list_flat_cb, b, NULL);
}

static int list_kv(fuse_req_t req, const char *secret, struct dirbuf *b)
{
	struct sfs_value v;
	int rc = kv_value(req, secret, &v);

	if (rc == SFS_OK) {
		rc = sfs_value_kv_each(v.data, v.len, 0, list_kv_cb, b, NULL);
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
	int rc = secret_rec(n->secret, &r);

	/* A caller refused the partial view sees default either way: its
	 * presence would tell whether a version exists. To anyone else a
	 * deactivated secret lists no default: nothing there can be read (a
	 * lookup still answers, and open gives EKEYREVOKED), and rm -r then
	 * meets only what it may remove (SPEC §3). */
	if (rc == SFS_OK &&
	    ((r.default_version && r.status == SFS_STATE_ACTIVE) ||
	     view_check(req, &r) != SFS_OK))
		rc = db_add(b, "default", 0);
	if (rc == SFS_OK)
		rc = db_add(b, "versions", 1);
	if (rc == SFS_OK && kv_present(req, n->secret, &r))
		rc = db_add(b, "kv", 1);
	if (rc == SFS_OK)
		fs_staged_each(n->secret, fuse_req_ctx(req)->uid,
			       list_staged_cb, b);
	return rc;
}

static int list_dir(fuse_req_t req, const struct fs_node_info *n,
		    struct dirbuf *b)
{
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
		return sfs_secret_list(fs_d.ctx, &fs_d.meta, list_secret_cb, b,
				       NULL);
	case FK_SECRET:
		return list_secret_dir(req, n, b);
	case FK_VERSIONS:
		/* the partial view shows no version numbers: the core's
		 * view check decides, with the caller */
		if (!fs_visible(n->secret))
			return SFS_ENOENT;
		if (fs_caller(req, FS_CALLER_GROUPS, &c))
			return SFS_EIO;
		return sfs_version_list(fs_d.ctx, &c, n->secret, 0,
					list_version_cb, b, NULL);
	case FK_KVDIR:
		return list_kv(req, n->secret, b);
	case FK_KEYS:
		if (fs_caller(req, FS_CALLER_FULL, &c))
			return SFS_EIO;
		return sfs_key_list(fs_d.ctx, &c, list_key_cb, b, NULL);
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

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_node_info n;
	struct dirbuf *b = calloc(1, sizeof(*b));
	int rc;

	if (!b) {
		fuse_reply_err(req, ENOMEM);
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

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	dirbuf_put((struct dirbuf *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
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
	rc = sfs_version_open(fs_d.ctx, &c, n->secret, num, &h->val, &err);
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
		return kv_entry(req, n->secret, n->name, &h->buf, &h->len);
	case FK_STATUS:
		h->buf = fs_status_json(req, &h->len);
		return h->buf ? SFS_OK : SFS_ENOMEM;
	case FK_KEY:
		return key_json(req, n->name, &h->buf, &h->len);
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
		e = ENOMEM;
	else if (n > FS_HELD_MAX - (*p)->bytes)
		e = EMFILE;
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
	fuse_reply_err(req, ENOSYS);
	return 1;
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_node_info n;
	struct rfh *h;
	int rc, e;

	if (kernel_open(req))
		return;
	if (fs_node_get(ino, &n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || n.kind == FK_STAGED ||
	    (fi->flags & O_TRUNC)) {
		fs_write_open(req, &n, fi);
		return;
	}
	if (!(h = calloc(1, sizeof(*h)))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->gen = sfs_ctx_generation(fs_d.ctx);
	e = held_reserve(h, fuse_req_ctx(req)->uid);
	if (!e && (rc = open_read(req, &n, h)))
		e = fs_errno(rc);
	if (e) {
		rfh_free(h);
		fuse_reply_err(req, e);
		return;
	}
	held_settle(h);
	h->refs = 1;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->noflush = 1;
	if (fs_d.opts.cache == FS_CACHE_STRICT || n.kind == FK_STATUS ||
	    n.kind == FK_KEY)
		fi->direct_io = 1;
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

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct rfh *h = (struct rfh *)(uintptr_t)fi->fh;

	if (h && !fs_write_release(fi)) {
		/* cache=open: the plaintext leaves the page cache now. */
		if (fs_d.opts.cache == FS_CACHE_OPEN)
			cached_release(ino);
		rd_untrack(h);
		rfh_put(h);
	}
	fuse_reply_err(req, 0);
}

/* --- changes ----------------------------------------------------------- */

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct sfs_secret_new nw;
	struct sfs_error err;
	struct sfs_caller c;
	int e;

	(void)mode; /* the secret's mode is the core's default (0440) */
	if (parent != FS_INO_SECRETS || !fs_visible(name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if ((e = fs_caller(req, FS_CALLER_FULL, &c))) {
		fuse_reply_err(req, e);
		return;
	}
	memset(&nw, 0, sizeof(nw));
	nw.name = name;
	e = sfs_secret_create(fs_d.ctx, &c, &nw, NULL, &err);
	if (e) {
		fs_refused_err(c.uid, "mkdir", name, NULL, &err);
		fs_reply_core(req, e);
		return;
	}
	fs_lookup(req, parent, name);
}

static int count_cb(void *arg, const struct sfs_version_rec *v)
{
	(void)v;
	++*(unsigned *)arg;
	return 0;
}

/*
 * rmdir secrets/NAME/versions, as rm -r does after destroying what is in
 * it: with no version left it succeeds and changes nothing (the directory
 * goes with the secret), else ENOTEMPTY.
 */
static int rmdir_versions(fuse_req_t req, const char *secret)
{
	struct sfs_caller c;
	unsigned n = 0;
	int e = fs_caller(req, FS_CALLER_GROUPS, &c);

	if (e)
		return e;
	if (!fs_visible(secret))
		return ENOENT;
	if (fs_d.opts.readonly || sfs_ctx_readonly(fs_d.ctx))
		return EROFS;
	e = fs_errno(
	    sfs_version_list(fs_d.ctx, &c, secret, 0, count_cb, &n, NULL));
	return e ? e : n ? ENOTEMPTY : 0;
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node_info p;
	struct sfs_error err;
	struct sfs_caller c;
	int e;

	if (parent != FS_INO_SECRETS && !fs_node_get(parent, &p) &&
	    p.kind == FK_SECRET && !strcmp(name, "versions")) {
		fuse_reply_err(req, rmdir_versions(req, p.secret));
		return;
	}
	if (parent != FS_INO_SECRETS) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (!fs_visible(name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((e = fs_caller(req, FS_CALLER_FULL, &c))) {
		fuse_reply_err(req, e);
		return;
	}
	e = sfs_secret_delete(fs_d.ctx, &c, name, &err);
	if (e)
		fs_refused_err(c.uid, "rmdir", name, NULL, &err);
	fs_reply_core(req, e);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node_info p, n;
	struct sfs_error err;
	struct sfs_caller c;
	char rel[300];
	int e = fs_node_get(parent, &p);

	if (!e)
		e = resolve(req, &p, name, &n);
	if (e) {
		fuse_reply_err(req, e);
		return;
	}
	/* the path in the secret's directory, for the log */
	snprintf(rel, sizeof(rel), "%s%s",
		 p.kind == FK_VERSIONS ? "versions/"
		 : p.kind == FK_KVDIR  ? "kv/"
				       : "",
		 name);
	if (n.kind == FK_STAGED) {
		fuse_reply_err(req,
			       fs_staged_unlink(n.secret, n.name, n.version));
		return;
	}
	if (n.kind != FK_VERSION) {
		fs_refused(fuse_req_ctx(req)->uid, "rm", n.secret, rel,
			   SFS_EPERM,
			   "only versions/N can be removed (destroyed)");
		fuse_reply_err(req, EPERM);
		return;
	}
	if (!fs_visible(n.secret)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((e = fs_caller(req, FS_CALLER_FULL, &c))) {
		fuse_reply_err(req, e);
		return;
	}
	e = sfs_version_destroy(fs_d.ctx, &c, n.secret, n.version, &err);
	if (!e)
		fs_secret_changed(n.secret);
	else
		fs_refused_err(c.uid, "rm", n.secret, rel, &err);
	fs_reply_core(req, e);
}

/* chmod / chown of secrets/NAME. */
static int setattr_secret(fuse_req_t req, const struct fs_node_info *n,
			  const struct stat *st, int to_set)
{
	struct sfs_secret_update u;
	struct sfs_error err;
	struct sfs_caller c;
	int e;

	if (to_set & ~(FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
		       FUSE_SET_ATTR_GID | FUSE_SET_ATTR_CTIME |
		       FUSE_SET_ATTR_FORCE | FUSE_SET_ATTR_KILL_SUID |
		       FUSE_SET_ATTR_KILL_SGID | FUSE_SET_ATTR_KILL_PRIV))
		return EPERM;
	memset(&u, 0, sizeof(u));
	if (to_set & FUSE_SET_ATTR_MODE) {
		u.fields |= SFS_SF_MODE;
		u.mode = st->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		u.fields |= SFS_SF_OWNER;
		u.owner = st->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		u.fields |= SFS_SF_GROUP;
		u.group = st->st_gid;
	}
	if (!u.fields)
		return 0;
	if ((e = fs_caller(req, FS_CALLER_FULL, &c)))
		return e;
	e = sfs_secret_update(fs_d.ctx, &c, n->secret, &u, &err);
	if (e)
		fs_refused_err(c.uid, "chmod/chown", n->secret, NULL, &err);
	else
		fs_secret_changed(n->secret);
	return fs_errno(e);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs_node_info n;
	struct stat st;
	int e = fs_node_get(ino, &n);

	if (e)
		goto out;
	if (n.kind == FK_SECRET) {
		e = setattr_secret(req, &n, attr, to_set);
	} else if ((to_set & FUSE_SET_ATTR_SIZE) &&
		   fs_d.opts.cache == FS_CACHE_KERNEL) {
		e = EROFS; /* value files are read-only (kernel_open) */
	} else if (to_set & FUSE_SET_ATTR_SIZE) {
		if (fi && fi->fh && ((struct rfh *)(uintptr_t)fi->fh)->write)
			e = fs_write_truncate(fi, attr->st_size);
		else if (n.kind == FK_STAGED)
			e = fs_staged_truncate(n.secret, n.name,
					       fuse_req_ctx(req)->uid,
					       attr->st_size);
		else
			e = EPERM;
	} else if (n.kind == FK_STAGED) {
		e = 0; /* times of a staged file: nothing to keep */
	} else {
		e = EPERM;
	}
	if (!e)
		e = fs_node_attr(req, &n, &st);
out:
	if (e)
		fuse_reply_err(req, e);
	else
		fuse_reply_attr(req, &st, 0);
}

/* --- access(2) --------------------------------------------------------- */

/*
 * access(2), test -r / -w, os.access(): the answer open() would give,
 * asked of the core without opening. No value is decrypted and no audit
 * line written: the open that follows is the audited read.
 */

/* May the caller read this secret's values (kv: 1) or see its
 * versions (kv: 0)? Permission only; the record is the daemon's. */
static int access_secret(fuse_req_t req, const struct fs_node_info *n, int kv)
{
	struct sfs_secret_rec r;
	struct sfs_caller c;
	int e = fs_errno(secret_rec(n->secret, &r));

	if (!e)
		e = fs_caller(req, FS_CALLER_GROUPS, &c);
	if (e)
		return e;
	if (kv ? sfs_policy_may_read(&c, &r) : sfs_policy_may_view(&c, &r))
		return 0;
	return EACCES;
}

/* Changes in secrets/, a secret's directory and versions/: the core's
 * answer for a caller with its roles resolved. */
static int access_manager(fuse_req_t req)
{
	struct sfs_caller c;
	int e = fs_caller(req, FS_CALLER_GROUPS | FS_CALLER_ROLES, &c);

	if (e)
		return e;
	return sfs_policy_may_manage(&c) ? 0 : EACCES;
}

static int access_write(fuse_req_t req, const struct fs_node_info *n)
{
	struct sfs_caller c;

	if (fs_d.opts.readonly || sfs_ctx_readonly(fs_d.ctx))
		return EROFS;
	switch (n->kind) {
	case FK_DEFAULT:
		return fs_writer_check(req, n->secret, 0, &c);
	case FK_VERSION:
		return EPERM; /* an existing version never changes */
	case FK_STAGED:
		return 0;
	case FK_SECRETS:
	case FK_SECRET:
	case FK_VERSIONS:
		return access_manager(req);
	}
	return EACCES; /* the root, keys/, kv/ and read-only files */
}

static int access_read(fuse_req_t req, const struct fs_node_info *n)
{
	switch (n->kind) {
	case FK_DEFAULT:
	case FK_VERSION:
	case FK_KV:
	case FK_KVDIR:
		return access_secret(req, n, 1);
	case FK_VERSIONS:
		return access_secret(req, n, 0);
	}
	return 0; /* names are public; keys/ and .status: their getattr */
}

static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs_node_info n;
	struct stat st;
	int e = fs_node_get(ino, &n);

	/* F_OK: it exists. kv/K was found at lookup: asking again would
	 * decrypt (an audited read) for nothing. */
	if (!e && n.kind != FK_KV)
		e = fs_node_attr(req, &n, &st);
	else if (!e)
		st.st_mode = S_IFREG | 0444;
	if (!e && (mask & W_OK))
		e = access_write(req, &n);
	if (!e && (mask & R_OK))
		e = access_read(req, &n);
	/* X_OK: search in any directory; a file only with an x bit */
	if (!e && (mask & X_OK) && !S_ISDIR(st.st_mode)) {
		if (!(st.st_mode & 0111))
			e = EACCES;
		else
			e = access_read(req, &n);
	}
	fuse_reply_err(req, e);
}

/* Special files and links have no meaning in the tree. */
static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)rdev;
	fuse_reply_err(req, EPERM);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* cache=kernel: value files are read-only (kernel_open); a write on an
 * fd opened without OPEN has no handle. */
static void fs_write_any(fuse_req_t req, fuse_ino_t ino, const char *buf,
			 size_t size, off_t off, struct fuse_file_info *fi)
{
	if (!fi->fh)
		fuse_reply_err(req, EROFS);
	else
		fs_write(req, ino, buf, size, off, fi);
}

/* cache=kernel: ENOSYS makes the kernel stop sending FLUSH (no_flush). */
static void fs_flush_any(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	if (!fi->fh)
		fuse_reply_err(req, ENOSYS);
	else
		fs_flush(req, ino, fi);
}

static void fs_create_any(fuse_req_t req, fuse_ino_t parent, const char *name,
			  mode_t mode, struct fuse_file_info *fi)
{
	if (fs_d.opts.cache == FS_CACHE_KERNEL)
		fuse_reply_err(req, EROFS);
	else
		fs_create(req, parent, name, mode, fi);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* cache=kernel: no OPEN carries O_TRUNC, so the kernel must send
	 * the truncation as SETATTR (answered EROFS); with atomic_o_trunc
	 * it would instead empty its cached copy on its own (libfuse wants
	 * the flag by default) */
	if ((conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) &&
	    fs_d.opts.cache != FS_CACHE_KERNEL)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	else
		conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (fs_d.opts.cache == FS_CACHE_STRICT)
		conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	if (fs_d.opts.cache == FS_CACHE_KERNEL) {
		if (conn->capable & FUSE_CAP_POSIX_ACL)
			conn->want |= FUSE_CAP_POSIX_ACL;
		else
			fs_log("cache=kernel: the kernel has no POSIX ACLs");
		if (!(conn->capable & FUSE_CAP_NO_OPEN_SUPPORT))
			fs_log("cache=kernel: the kernel sends every open");
	}
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_init,
    .lookup = fs_lookup,
    .forget = fs_forget,
    .forget_multi = fs_forget_multi,
    .getattr = fs_getattr,
    .access = fs_access,
    .setattr = fs_setattr,
    .mknod = fs_mknod,
    .symlink = fs_symlink,
    .link = fs_link,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .rename = fs_rename,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write_any,
    .flush = fs_flush_any,
    .release = fs_release,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .statfs = fs_statfs,
    .setxattr = fs_setxattr,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
    .removexattr = fs_removexattr,
    .create = fs_create_any,
};

/* --- .status ----------------------------------------------------------- */

/* uid, gid and mode of the view's override: a number, or null. */
static int status_view(struct sfs_json *o)
{
	const struct sfs_view_id *v = &fs_d.opts.view;
	char mode[8];

	snprintf(mode, sizeof(mode), "%04o", (unsigned)v->mode);
	return ((v->set & SFS_VIEW_UID) ? sfs_json_set_int(o, "uid", v->uid)
					: sfs_json_set_null(o, "uid")) ||
	       ((v->set & SFS_VIEW_GID) ? sfs_json_set_int(o, "gid", v->gid)
					: sfs_json_set_null(o, "gid")) ||
	       ((v->set & SFS_VIEW_MODE) ? sfs_json_set_str(o, "mode", mode)
					 : sfs_json_set_null(o, "mode"));
}

static struct sfs_json *status_options(void)
{
	static const char *const caches[] = {"strict", "open", "kernel"};
	static const char *const notifies[] = {"modify", "replace", "none"};
	struct sfs_json *o = sfs_json_object();

	if (!o || sfs_json_set_bool(o, "ro", fs_d.opts.readonly) ||
	    sfs_json_set_bool(o, "allow_other", fs_d.opts.allow_other) ||
	    sfs_json_set_str(o, "cache", caches[fs_d.opts.cache]) ||
	    sfs_json_set_str(o, "notify", notifies[fs_d.opts.notify]) ||
	    sfs_json_set_str(o, "audit", fs_d.opts.audit_off ? "off" : "on") ||
	    sfs_json_set_bool(o, "debug", fs_d.opts.debug) ||
	    sfs_json_set_bool(o, "auto_unmount", fs_d.opts.auto_unmount) ||
	    sfs_json_set_str(o, "layout", fs_d.opts.flat ? "flat" : "tree") ||
	    status_view(o) ||
	    (fs_d.opts.only ? sfs_json_set_str(o, "only", fs_d.opts.only)
			    : sfs_json_set_null(o, "only"))) {
		sfs_json_free(o);
		return NULL;
	}
	return o;
}

/* The names an only= view shows, collected before their versions are
 * counted (no store call inside a listing's callback). */
struct view_names {
	char (*v)[SFS_NAME_MAX + 1];
	size_t n, cap;
};

static int view_name_cb(void *arg, const struct sfs_secret_rec *s)
{
	struct view_names *vn = arg;
	size_t cap;
	void *p;

	if (!fs_visible(s->name))
		return 0;
	if (vn->n == vn->cap) {
		cap = vn->cap ? vn->cap * 2 : 16;
		p = realloc(vn->v, cap * sizeof(*vn->v));
		if (!p)
			return SFS_ENOMEM;
		vn->v = p;
		vn->cap = cap;
	}
	snprintf(vn->v[vn->n++], sizeof(*vn->v), "%s", s->name);
	return 0;
}

static int view_version_cb(void *arg, const struct sfs_version_rec *v)
{
	(void)v;
	++*(uint64_t *)arg;
	return 0;
}

/* only=: count the secrets the view shows and their versions, not the
 * store's (keys/ is the same in every view). */
static int view_counts(struct sfs_counts *k)
{
	struct view_names vn;
	size_t i;
	int rc;

	memset(&vn, 0, sizeof(vn));
	rc = sfs_secret_list(fs_d.ctx, &fs_d.meta, view_name_cb, &vn, NULL);
	k->secrets = vn.n;
	k->versions = 0;
	for (i = 0; rc == SFS_OK && i < vn.n; i++) {
		rc = sfs_version_list(fs_d.ctx, &fs_d.meta, vn.v[i], 0,
				      view_version_cb, &k->versions, NULL);
		if (rc == SFS_ENOENT)
			rc = SFS_OK; /* deleted since the listing */
	}
	free(vn.v);
	return rc;
}

static struct sfs_json *status_counts(const char **health)
{
	struct sfs_counts k;
	struct sfs_error err;
	struct sfs_json *o = sfs_json_object();
	int rc;

	sfs_error_clear(&err);
	memset(&k, 0, sizeof(k));
	rc = sfs_ctx_counts(fs_d.ctx, &k, &err);
	if (rc == SFS_OK && fs_d.opts.only)
		rc = view_counts(&k);
	if (rc != SFS_OK)
		*health = "store error";
	if (!o || sfs_json_set_int(o, "secrets", (int64_t)k.secrets) ||
	    sfs_json_set_int(o, "versions", (int64_t)k.versions) ||
	    sfs_json_set_int(o, "keys", (int64_t)k.keys)) {
		sfs_json_free(o);
		return NULL;
	}
	return o;
}

/* May the request's caller see the store's path and its last error?
 * Root and the mount's owner; anyone else gets null and "error". */
static int status_private(fuse_req_t req)
{
	uid_t uid = fuse_req_ctx(req)->uid;

	return uid == 0 || uid == fs_d.owner_uid;
}

char *fs_status_json(fuse_req_t req, size_t *len)
{
	struct sfs_json *j = sfs_json_object();
	const char *health = NULL, *last = sfs_ctx_last_error(fs_d.ctx);
	int mine = status_private(req);
	char backend[256];

	/* the server's address, like the store's path, for its owner only */
	sfs_ctx_backend(fs_d.ctx, backend, sizeof(backend));
	if (!mine)
		backend[strcspn(backend, " ")] = '\0';
	if (!j || sfs_json_set_str(j, "program", "secretfs") ||
	    sfs_json_set_str(j, "backend", backend) ||
	    sfs_json_set_str(j, "version", SFS_PROGRAM_VERSION) ||
	    (mine ? sfs_json_set_str(j, "store", sfs_ctx_dir(fs_d.ctx))
		  : sfs_json_set_null(j, "store")) ||
	    sfs_json_set_str(j, "mountpoint", fs_d.opts.mountpoint) ||
	    sfs_json_set(j, "options", status_options()) ||
	    sfs_json_set(j, "counts", status_counts(&health)))
		goto out;
	if (!health && last && *last)
		health = mine ? last : "error";
	if (!health)
		health = "ok";
	if (sfs_json_set_str(j, "health", health))
		goto out;
	return fs_render_json_file(j, len);
out:
	sfs_json_free(j);
	return NULL;
}

/* --- cache invalidation ------------------------------------------------ */

/*
 * At a change the poller drops what the kernel caches: attributes and
 * pages (fuse_inval.c decides which nodes). Names are not invalidated:
 * fuse_lowlevel_notify_inval_entry() takes the parent directory's lock in
 * the kernel, which a writer's create or rename holds while it waits for
 * this daemon; if the daemon is killed then, the poller stays stuck in the
 * kernel and the dead daemon never releases the mount. A name whose
 * secret, version or kv/ key is gone stays in the kernel until its entry
 * timeout (mount.c), but its attributes are invalidated, so stat gets
 * ENOENT from GETATTR at once and an open fails at the daemon.
 */
void fs_secret_changed(const char *secret)
{
	struct fs_node_ent *v;
	size_t i, n = fs_node_snapshot_secret(secret, &v);

	/* Attributes and pages only: no directory lock is taken, so this
	 * is safe inside any handler. */
	for (i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_inode(fs_d.se, v[i].ino, 0, 0);
	free(v);
}

/*
 * The poller sleeps on the generation counter (a futex in the shared
 * mapping: writers wake it after their commit) and, at worst, wakes every
 * 50 ms. cache=kernel daemons register as watchers and ack each
 * generation once invalidated: the writer waits for that ack (bounded,
 * ctx_watch.c), so the next open after a change sees it, with no request
 * per open. A generation is acked only after every inode is invalidated.
 */
static void *poller(void *arg)
{
	uint64_t g, seen;

	(void)arg;
	seen = __atomic_load_n(&fs_d.generation, __ATOMIC_ACQUIRE);
	while (!fs_d.stopping) {
		g = sfs_ctx_watch_wait(fs_d.ctx, seen, 50);
		if (g != seen) {
			fs_inval_changed();
			/* Only now: opens compare against it (cached_open). */
			__atomic_store_n(&fs_d.generation, g, __ATOMIC_RELEASE);
			sfs_ctx_watch_ack(fs_d.ctx, g);
			fs_notify_kick(g);
			seen = g;
		}
	}
	return NULL;
}

int fs_poller_start(void)
{
	uint64_t g = sfs_ctx_generation(fs_d.ctx);

	__atomic_store_n(&fs_d.generation, g, __ATOMIC_RELEASE);
	if (fs_d.opts.cache == FS_CACHE_KERNEL &&
	    sfs_ctx_watch_register(fs_d.ctx))
		fs_log("cache=kernel: not registered as a watcher: a change "
		       "shows within 50 ms, not before its writer returns");
	if (pthread_create(&fs_d.poller, NULL, poller, NULL))
		return -1;
	fs_d.poller_started = 1;
	return 0;
}

void fs_poller_stop(void)
{
	fs_d.stopping = 1;
	if (fs_d.poller_started)
		pthread_join(fs_d.poller, NULL);
	fs_d.poller_started = 0;
}
