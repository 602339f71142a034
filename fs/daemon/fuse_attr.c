/*
 * Attributes (SPEC §3): stat of every node (fs_node_attr_mine), getattr,
 * setattr (chmod/chown of secrets/NAME, truncation of a staged or open file)
 * and access(2), and the only= view (fs_visible).
 *
 * Metadata for stat (owner, mode, sizes, times) is read with the daemon's
 * own caller: names are public and attributes are cached per inode by
 * the kernel. Where the answer depends on who asks (kv/ entries, keys/,
 * .status, and stat of an access-controlled secret's values, EACCES
 * outside its partial view) the kernel gets a zero entry timeout, and
 * mostly a zero attribute timeout, so it never shows one caller's answer
 * to another (fs_node_attr_mine). kv/ exists only for a JSON object default,
 * which only a reader may learn (fs_kv_present); a process holding a read
 * handle sees its snapshot's size, answered uncached (fs_rd_snapshot).
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuse_int.h"
#include "render.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

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
 * identity (sfs_secret_view_attrs). An access-controlled secret keeps
 * its own: its allow list decides (and cache=kernel's ACL is built on
 * its owner). cache=kernel shows no write bits (value_mode). */
static void attr_view(struct stat *st, const struct sfs_secret_rec *r)
{
	uint32_t owner, group, mode;

	if (!fs_d.opts.view.set || r->access_control)
		return;
	sfs_secret_view_attrs(&fs_d.opts.view, r, &owner, &group, &mode);
	st->st_uid = owner;
	st->st_gid = group;
	st->st_mode =
	    S_IFREG |
	    (fs_d.opts.cache == FS_CACHE_KERNEL ? mode & 0555 : mode & 07777);
}

int fs_secret_rec(const char *name, struct sfs_secret_rec *r)
{
	struct sfs_error err = {0};
	int full, rc;

	if (!fs_visible(name))
		return SFS_ENOENT;
	rc = fs_noted(sfs_secret_get(fs_d.ctx, &fs_d.meta, name, r, &full, &err),
		      &err);
	if (rc == SFS_OK)
		fs_notify_served(name, r->changed_at);
	return rc;
}

/*
 * The partial view (SPEC §3): a caller who may not read an
 * access-controlled secret learns nothing of its versions, so stat of
 * default, versions/N and kv/K is EACCES for them, whether the version
 * exists or not. Managers may add versions without being on the list
 * (and may put themselves on it): they pass. SFS_OK or SFS_EACCES.
 */
int fs_view_check(fuse_req_t req, const struct sfs_secret_rec *r)
{
	struct sfs_caller c;

	if (!r->access_control)
		return SFS_OK;
	/* roles are resolved only when the groups do not answer */
	if (fs_caller(req, FS_CALLER_GROUPS, &c))
		return SFS_EIO;
	if (sfs_secret_may_see(&c, r) == SFS_OK)
		return SFS_OK;
	if (fs_caller(req, FS_CALLER_FULL, &c))
		return SFS_EIO;
	return sfs_secret_may_see(&c, r);
}

/* Attributes of default or versions/N; a pending file (created, not yet
 * committed) shows as empty. *mine: the answer depends on the caller. */
static int attr_value(fuse_req_t req, const struct fs_node_info *n,
		      struct stat *st, int *mine)
{
	struct sfs_error err = {0};
	struct sfs_secret_rec r;
	struct sfs_version_rec v;
	uint32_t num = n->kind == FK_VERSION ? n->version : 0;
	int rc = fs_secret_rec(n->secret, &r);

	memset(&v, 0, sizeof(v));

	if (rc == SFS_OK && r.access_control) {
		*mine = FS_MINE_ENTRY;
		rc = fs_view_check(req, &r);
	}
	if (rc)
		return rc;
	if (num == 0 && r.default_version == 0)
		rc = SFS_ENOENT;
	else
		rc = fs_noted(sfs_version_info(fs_d.ctx, &fs_d.meta, n->secret,
					       num, &v, &err),
			      &err);
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
int fs_kv_value(fuse_req_t req, const char *secret, struct sfs_value *v)
{
	struct sfs_error err = {0};
	struct sfs_caller c;
	int e = fs_caller(req, FS_CALLER_GROUPS | FS_CALLER_COMM, &c);

	memset(v, 0, sizeof(*v));
	if (e)
		return SFS_EIO;
	if (!fs_visible(secret))
		return SFS_ENOENT;
	return fs_noted(
	    sfs_version_read(fs_d.ctx, &c, secret, 0, v, NULL, &err), &err);
}

/* A kv/ entry name that can be a file name. */
int fs_kv_name_ok(const char *k)
{
	size_t n = strlen(k);

	return n && n <= 255 && strcmp(k, ".") && strcmp(k, "..") &&
	       !strchr(k, '/');
}

int fs_kv_entry(fuse_req_t req, const char *secret, const char *key, char **out,
		size_t *len)
{
	struct sfs_value v;
	int rc;

	*out = NULL;
	if (!fs_kv_name_ok(key))
		return SFS_ENOENT;
	rc = fs_kv_value(req, secret, &v);
	if (rc == SFS_OK) {
		rc = sfs_value_kv_get(v.data, v.len, key, out, len);
		if (rc == SFS_EINVAL)
			rc = SFS_ENOENT;
	}
	sfs_value_release(&v);
	return rc;
}

/* keys/NAME as JSON (malloc'd, trailing newline). */
int fs_key_json(fuse_req_t req, const char *name, char **out, size_t *len)
{
	struct sfs_error err = {0};
	struct sfs_caller c;
	struct sfs_key_rec k;
	int rc = fs_caller(req, FS_CALLER_FULL, &c);

	*out = NULL;
	if (rc)
		return SFS_EIO;
	rc = fs_noted(sfs_key_get(fs_d.ctx, &c, name, &k, &err), &err);
	if (rc)
		return rc;
	if (strcmp(k.name, name))
		return SFS_ENOENT; /* keys/ names keys by name only */
	*out = fs_render_json_file(fs_render_key_json(&k), len);
	return *out ? SFS_OK : SFS_ENOMEM;
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
	struct sfs_error err = {0};
	struct sfs_value v;
	int rc = fs_kv_value(req, secret, &v);

	if (rc == SFS_OK)
		rc = fs_noted(
		    sfs_value_kv_each(v.data, v.len, 0, kv_none_cb, NULL, &err),
		    &err);
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
int fs_kv_present(fuse_req_t req, const char *secret,
		  const struct sfs_secret_rec *r)
{
	struct sfs_error err = {0};
	struct sfs_version_rec v;
	struct sfs_caller c;
	int fmt;

	if (fs_caller(req, FS_CALLER_GROUPS, &c))
		return 0;
	if (sfs_secret_may_read(&c, r) != SFS_OK)
		return 1;
	if (r->status != SFS_STATE_ACTIVE || !r->default_version)
		return 0;
	if (fs_noted(
		sfs_version_info(fs_d.ctx, &fs_d.meta, secret, 0, &v, &err),
		&err))
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
	int rc = fs_secret_rec(n->secret, &r);

	if (rc == SFS_OK && !fs_kv_present(req, n->secret, &r))
		rc = SFS_ENOENT;
	if (rc == SFS_OK)
		rc = fs_kv_entry(req, n->secret, n->name, &val, &len);
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
		rc = fs_key_json(req, n->name, &s, &len);
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
 * answer to the next. FS_MINE_ENTRY: a zero entry timeout, so every path
 * walk revalidates with a LOOKUP for its own caller (which refreshes the
 * attributes too); FS_MINE_ATTR: a zero attribute timeout as well, for
 * keys/ and .status only. No caller reaches a value's cached attributes
 * without a path walk (that LOOKUP refuses them) or an open descriptor,
 * so values keep theirs: a GETATTR at each cache=kernel read would cost
 * a policy check (and for kv/ a decryption) every time.
 */
int fs_node_attr_mine(fuse_req_t req, const struct fs_node_info *n,
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
		*mine = FS_MINE_ENTRY | FS_MINE_ATTR;
		rc = attr_fixed_file(req, n, st);
		break;
	case FK_SECRET:
	case FK_VERSIONS:
	case FK_KVDIR:
		rc = fs_secret_rec(n->secret, &r);
		if (n->kind == FK_KVDIR)
			*mine = FS_MINE_ENTRY; /* fs_kv_present: per caller */
		if (rc == SFS_OK && n->kind == FK_KVDIR &&
		    !fs_kv_present(req, n->secret, &r))
			rc = SFS_ENOENT;
		if (rc)
			break;
		attr_secret(st, &r, r.changed_at);
		if (n->kind == FK_SECRET)
			attr_dir(st, fs_d.opts.cache == FS_CACHE_KERNEL
					 ? 0777
					 : secret_dir_mode(r.mode));
		else
			attr_dir(st,
				 n->kind == FK_KVDIR ? 0555 : dir_mode(0755));
		break;
	case FK_DEFAULT:
	case FK_VERSION:
		rc = attr_value(req, n, st, mine);
		break;
	case FK_KV:
		*mine = FS_MINE_ENTRY;
		rc = attr_kv(req, n, st);
		break;
	case FK_STAGED:
		if (fuse_req_ctx(req)->uid != n->version)
			return FS_ENOENT;
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

	return fs_node_attr_mine(req, n, st, &mine);
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

void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_node_info n;
	struct stat st;
	int mine = 0, snap = 0, rc = fs_node_get(ino, &n);
	off_t size = 0;

	if (!rc)
		rc = fs_node_attr_mine(req, &n, &st, &mine);
	if (rc) {
		fs_reply_err(req, rc);
		return;
	}
	/* a handle's own snapshot: lseek(SEEK_END) sends it, fstat not */
	if ((n.kind == FK_DEFAULT || n.kind == FK_KV) &&
	    fs_rd_size(fi, &st.st_size)) {
		snap = 1;
	} else if (n.kind == FK_DEFAULT || n.kind == FK_KV) {
		size = st.st_size;
		snap = fs_rd_snapshot(req, ino, &st.st_size);
		/* fstat: a handle's size, not the file's. Kept as the
		 * inode's, it would cut a sendfile(2) of a fresh open (which
		 * trusts the cached size) of the new value. Invalidated
		 * first, the kernel drops this reply's attributes; fstat
		 * still returns them. (lseek's size is the inode's: kept.) */
		if (st.st_size != size)
			fuse_lowlevel_notify_inval_inode(fs_d.se, ino, -1, 0);
	}
	if (n.kind == FK_STAGED || n.writers || snap || (mine & FS_MINE_ATTR))
		fuse_reply_attr(req, &st, 0);
	else
		fuse_reply_attr(req, &st, fs_d.attr_timeout);
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
		return FS_EPERM;
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
	e = fs_noted(sfs_secret_update(fs_d.ctx, &c, n->secret, &u, &err),
		     &err);
	if (e)
		fs_refused_err(c.uid, "chmod/chown", n->secret, NULL, &err);
	else
		fs_secret_changed(n->secret, 0);
	return fs_errno(e);
}

void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
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
		e = FS_EROFS; /* value files are read-only (kernel_open) */
	} else if (to_set & FUSE_SET_ATTR_SIZE) {
		if (fs_fh_is_write(fi))
			e = fs_write_truncate(fi, attr->st_size);
		else if (n.kind == FK_STAGED)
			e = fs_staged_truncate(n.secret, n.name,
					       fuse_req_ctx(req)->uid,
					       attr->st_size);
		else
			e = FS_EPERM;
	} else if (n.kind == FK_STAGED) {
		e = 0; /* times of a staged file: nothing to keep */
	} else {
		e = FS_EPERM;
	}
	if (!e)
		e = fs_node_attr(req, &n, &st);
out:
	if (e)
		fs_reply_err(req, e);
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
	int e = fs_errno(fs_secret_rec(n->secret, &r));

	if (!e)
		e = fs_caller(req, FS_CALLER_GROUPS, &c);
	if (e)
		return e;
	/* roles unresolved: may_see answers for the details alone */
	return fs_errno(kv ? sfs_secret_may_read(&c, &r)
			   : sfs_secret_may_see(&c, &r));
}

/* Changes in secrets/, a secret's directory and versions/: the core's
 * answer for a caller with its roles resolved. */
static int access_manager(fuse_req_t req)
{
	struct sfs_caller c;
	int e = fs_caller(req, FS_CALLER_GROUPS | FS_CALLER_ROLES, &c);

	if (e)
		return e;
	return fs_errno(sfs_secret_may_manage(&c));
}

static int access_write(fuse_req_t req, const struct fs_node_info *n)
{
	struct sfs_caller c;

	if (fs_d.opts.readonly || sfs_ctx_readonly(fs_d.ctx))
		return FS_EROFS;
	switch (n->kind) {
	case FK_DEFAULT:
		return fs_writer_check(req, n->secret, 0, &c);
	case FK_VERSION:
		return FS_EPERM; /* an existing version never changes */
	case FK_STAGED:
		return 0;
	case FK_SECRETS:
	case FK_SECRET:
	case FK_VERSIONS:
		return access_manager(req);
	}
	return FS_EACCES; /* the root, keys/, kv/ and read-only files */
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

void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
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
			e = FS_EACCES;
		else
			e = access_read(req, &n);
	}
	fs_reply_err(req, e);
}
