/*
 * Extended attributes, exactly SPEC §3's table: plain text values with no
 * trailing newline, on secret directories, value files and keys/NAME.
 *
 * kv/ entries are value files of the default version and carry its
 * attributes, as `default` does.
 *
 * One table names every attribute, where it lives and whether it is in
 * the partial view of an access-controlled secret. Getting or listing asks
 * the core with the requesting caller, so the core decides what the
 * caller may see (sfs_secret_get's partial view, sfs_version_info's and
 * sfs_key_get's EACCES). listxattr lists what getxattr would return.
 * Setting maps the writable ones onto one core call each; any other
 * attribute is EPERM to set, unknown ones ENODATA to get. XATTR_CREATE
 * and XATTR_REPLACE are checked against what getxattr would answer the
 * caller (EEXIST, ENODATA) before anything changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fuse_int.h"
#include "render.h"
#include "secretfs/audit.h"
#include "secretfs/keys.h"
#include "secretfs/policy.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

enum { ON_DIR = 1, ON_VALUE = 2, ON_KEY = 4 };

enum xid {
	X_ID,
	X_NAME,
	X_DESC,
	X_STATUS,
	X_AC,
	X_ALLOWED,
	X_DEFAULT,
	X_LATEST,
	X_CREATED_AT,
	X_CREATED_BY,
	X_KEY_ID,
	X_KEY_NAME,
	X_KEY_TYPE,
	X_KEY_STATE,
	X_VERSION,
	X_VSTATE,
	X_FORMAT
};

static const struct xattr {
	const char *name;
	int on;
} xattrs[] = {
    [X_ID] = {"user.secret.id", ON_DIR},
    [X_NAME] = {"user.secret.name", ON_DIR},
    [X_DESC] = {"user.secret.description", ON_DIR},
    [X_STATUS] = {"user.secret.status", ON_DIR},
    [X_AC] = {"user.secret.access_control", ON_DIR},
    [X_ALLOWED] = {"user.secret.allowed_principals", ON_DIR},
    [X_DEFAULT] = {"user.secret.default_version", ON_DIR},
    [X_LATEST] = {"user.secret.latest_version", ON_DIR},
    [X_CREATED_AT] = {"user.secret.created_at", ON_DIR | ON_VALUE},
    [X_CREATED_BY] = {"user.secret.created_by", ON_DIR | ON_VALUE},
    [X_KEY_ID] = {"user.kms.key_id", ON_DIR | ON_VALUE | ON_KEY},
    [X_KEY_NAME] = {"user.kms.key_name", ON_DIR | ON_VALUE | ON_KEY},
    [X_KEY_TYPE] = {"user.kms.key_type", ON_DIR | ON_VALUE | ON_KEY},
    [X_KEY_STATE] = {"user.kms.key_state", ON_DIR | ON_VALUE | ON_KEY},
    [X_VERSION] = {"user.secret.version", ON_VALUE},
    [X_VSTATE] = {"user.secret.version_state", ON_VALUE},
    [X_FORMAT] = {"user.secret.format", ON_VALUE},
};
#define NXATTRS (sizeof(xattrs) / sizeof(xattrs[0]))

/* Is attribute id in the partial view of a secret dir? The core's list
 * (sfs_secret_partial_field) of user.secret.FIELD. */
static int xattr_partial(int id)
{
	static const char pfx[] = "user.secret.";
	const char *name = xattrs[id].name;

	return !strncmp(name, pfx, sizeof(pfx) - 1) &&
	       sfs_secret_partial_field(name + sizeof(pfx) - 1);
}

/* What one request has fetched so far (each record at most once). */
struct xq {
	fuse_req_t req;
	struct fs_node_info n;
	int where;
	struct sfs_caller c;
	int have_c, c_rc;
	struct sfs_secret_rec s;
	int have_s, s_rc, full;
	struct sfs_version_rec v;
	int have_v, v_rc;
	struct sfs_key_rec k;
	int have_k, k_rc;
};

static int where_of(int kind)
{
	switch (kind) {
	case FK_SECRET:
		return ON_DIR;
	case FK_DEFAULT:
	case FK_VERSION:
	case FK_KV: /* an entry of the default version's value */
		return ON_VALUE;
	case FK_KEY:
		return ON_KEY;
	}
	return 0;
}

static int q_caller(struct xq *q)
{
	if (!q->have_c) {
		q->have_c = 1;
		q->c_rc =
		    fs_caller(q->req, FS_CALLER_FULL, &q->c) ? SFS_EIO : SFS_OK;
	}
	return q->c_rc;
}

static int q_secret(struct xq *q)
{
	struct sfs_error err = {0};

	if (!q->have_s) {
		q->have_s = 1;
		q->s_rc = q_caller(q);
		if (!q->s_rc)
			q->s_rc = fs_noted(sfs_secret_get(fs_d.ctx, &q->c,
							  q->n.secret, &q->s,
							  &q->full, &err),
					   &err);
	}
	return q->s_rc;
}

static int q_version(struct xq *q)
{
	struct sfs_error err = {0};
	uint32_t num = q->n.kind == FK_VERSION ? q->n.version : 0;

	if (!q->have_v) {
		q->have_v = 1;
		q->v_rc = q_caller(q);
		if (!q->v_rc)
			q->v_rc = fs_noted(sfs_version_info(fs_d.ctx, &q->c,
							    q->n.secret, num,
							    &q->v, &err),
					   &err);
	}
	return q->v_rc;
}

/* The KMS key an attribute describes: the key itself, the secret's
 * current key or the key that wrapped the version. */
static int q_key(struct xq *q)
{
	struct sfs_error err = {0};
	const char *key = q->n.name;

	if (q->have_k)
		return q->k_rc;
	q->have_k = 1;
	q->k_rc = q_caller(q);
	if (!q->k_rc && q->where == ON_DIR) {
		q->k_rc = q_secret(q);
		if (!q->k_rc && !q->full)
			q->k_rc = SFS_EACCES;
		key = q->s.kms_key_id;
	} else if (!q->k_rc && q->where == ON_VALUE) {
		q->k_rc = q_version(q);
		key = q->v.kms_key_id;
	}
	if (!q->k_rc)
		q->k_rc = fs_noted(
		    sfs_key_get(fs_d.ctx, &q->c, key, &q->k, &err), &err);
	return q->k_rc;
}

/* The record field an attribute shows: its name after "user.secret."
 * (render.c names fields as the JSON does). */
static const char *field_of(enum xid id)
{
	return id == X_VSTATE ? "state" : xattrs[id].name + 12;
}

/* A field the record does not have is no attribute here: ENODATA. */
static int no_field(int rc)
{
	return rc == SFS_ENOENT ? SFS_ENODATA : rc;
}

static int get_dir(struct xq *q, enum xid id, char *out, size_t cap)
{
	int rc = q_secret(q);

	if (rc)
		return rc;
	if (!q->full && !xattr_partial(id))
		return SFS_EACCES;
	return no_field(fs_render_secret_field(&q->s, field_of(id), out, cap));
}

static int get_value(struct xq *q, enum xid id, char *out, size_t cap)
{
	int rc = q_version(q);

	if (rc)
		return rc;
	return no_field(fs_render_version_field(&q->v, field_of(id), out, cap));
}

static int get_key(struct xq *q, enum xid id, char *out, size_t cap)
{
	int rc = q_key(q);

	if (rc)
		return rc;
	switch (id) {
	case X_KEY_ID:
		snprintf(out, cap, "%s", q->k.id);
		break;
	case X_KEY_NAME:
		snprintf(out, cap, "%s", q->k.name);
		break;
	case X_KEY_TYPE:
		snprintf(out, cap, "%s", sfs_key_type_name(q->k.type));
		break;
	case X_KEY_STATE:
		snprintf(out, cap, "%s", sfs_state_name(q->k.state));
		break;
	default:
		return SFS_ENODATA;
	}
	return SFS_OK;
}

/* The attribute's text in out (cap >= SFS_ALLOWED_MAX + 1): a core
 * code, SFS_ENODATA when it has no value here. */
static int get_one(struct xq *q, enum xid id, char *out, size_t cap)
{
	if (!(xattrs[id].on & q->where))
		return SFS_ENODATA;
	if (id >= X_KEY_ID && id <= X_KEY_STATE)
		return get_key(q, id, out, cap);
	if (q->where == ON_DIR)
		return get_dir(q, id, out, cap);
	return get_value(q, id, out, cap);
}

static int find_xattr(const char *name)
{
	size_t i;

	for (i = 0; i < NXATTRS; i++)
		if (!strcmp(xattrs[i].name, name))
			return (int)i;
	return -1;
}

static int q_init(struct xq *q, fuse_req_t req, fuse_ino_t ino)
{
	memset(q, 0, sizeof(*q));
	q->req = req;
	if (fs_node_get(ino, &q->n))
		return FS_ENOENT;
	q->where = where_of(q->n.kind);
	return 0;
}

static void q_fini(struct xq *q)
{
	if (q->have_v && !q->v_rc)
		sfs_version_rec_release(&q->v);
}

/* Reply with data: its length for a size probe, ERANGE if too small. */
static void reply_data(fuse_req_t req, const char *data, size_t len,
		       size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fs_reply_err(req, FS_ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

/* --- POSIX ACLs (cache=kernel) ----------------------------------------- */

/*
 * cache=kernel: the kernel decides who may read a value (default_permissions,
 * FUSE_CAP_POSIX_ACL), since no open reaches the daemon. An access-controlled
 * secret's value files show mode 0440 and carry an ACL built from its allow
 * list: the owner (user_obj), each uid:N (user), each gid:N (group, or
 * group_obj for the file's own group), mask r, other nothing. The kernel
 * then refuses exactly the callers the policy refuses (root aside: see
 * README, cache modes). Other files have no ACL (ENODATA).
 */
#define ACL_XATTR     "system.posix_acl_access"
#define ACL_VERSION   2
#define ACL_USER_OBJ  0x01
#define ACL_USER      0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_GROUP     0x08
#define ACL_MASK      0x10
#define ACL_OTHER     0x20
#define ACL_UNDEF     0xffffffffu
#define ACL_MAX	      (4 + SFS_ALLOWED_MAX / 5) /* "uid:N," >= 5 bytes */

struct acl_ent {
	uint16_t tag, perm;
	uint32_t id;
};

static int acl_cmp(const void *a, const void *b)
{
	const struct acl_ent *x = a, *y = b;

	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Entries of the allow list; returns how many (duplicates dropped). */
/* The POSIX ACL of an access-controlled value file: read for exactly
 * the principals the core's rule names (sfs_secret_readers), nobody
 * else; the kernel wants it sorted by tag and id. */
static size_t acl_entries(const struct sfs_secret_rec *r, struct acl_ent *e)
{
	struct sfs_reader who[ACL_MAX];
	size_t n = 0, i, k, m = sfs_secret_readers(r, who, ACL_MAX - 3);

	e[n++] = (struct acl_ent){ACL_USER_OBJ, 0, ACL_UNDEF};
	e[n++] = (struct acl_ent){ACL_GROUP_OBJ, 0, ACL_UNDEF};
	e[n++] = (struct acl_ent){ACL_MASK, 4, ACL_UNDEF};
	e[n++] = (struct acl_ent){ACL_OTHER, 0, ACL_UNDEF};
	for (i = 0; i < m; i++) {
		if (!who[i].group && who[i].id == r->owner)
			e[0].perm = 4;
		else if (who[i].group && who[i].id == r->group)
			e[1].perm = 4;
		else
			e[n++] = (struct acl_ent){
			    who[i].group ? ACL_GROUP : ACL_USER, 4, who[i].id};
	}
	qsort(e, n, sizeof(*e), acl_cmp);
	for (i = k = 0; i < n; i++)
		if (!k || acl_cmp(&e[k - 1], &e[i]))
			e[k++] = e[i];
	return k;
}

static void put_le(unsigned char *p, uint32_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void acl_get(fuse_req_t req, const struct fs_node_info *n, size_t size)
{
	struct sfs_error err = {0};
	struct acl_ent e[ACL_MAX];
	unsigned char out[4 + ACL_MAX * 8];
	struct sfs_secret_rec r;
	size_t i, k;
	int full, rc;

	memset(&r, 0, sizeof(r));
	if (fs_d.opts.cache != FS_CACHE_KERNEL || where_of(n->kind) != ON_VALUE)
		rc = SFS_ENODATA;
	else
		rc = fs_noted(sfs_secret_get(fs_d.ctx, &fs_d.meta, n->secret,
					     &r, &full, &err),
			      &err);
	if (rc == SFS_OK && !r.access_control)
		rc = SFS_ENODATA;
	if (rc) {
		fs_reply_core(req, rc);
		return;
	}
	k = acl_entries(&r, e);
	put_le(out, ACL_VERSION, 4);
	for (i = 0; i < k; i++) {
		put_le(out + 4 + i * 8, e[i].tag, 2);
		put_le(out + 6 + i * 8, e[i].perm, 2);
		put_le(out + 8 + i * 8, e[i].id, 4);
	}
	reply_data(req, (const char *)out, 4 + k * 8, size);
}

void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char out[SFS_ALLOWED_MAX + SFS_DESC_MAX + 1];
	struct xq q;
	int id = find_xattr(name), rc;

	out[0] = '\0';
	if ((rc = q_init(&q, req, ino))) {
		fs_reply_err(req, rc);
		return;
	}
	if (!strcmp(name, ACL_XATTR)) {
		acl_get(req, &q.n, size);
		return;
	}
	rc = id < 0 ? SFS_ENODATA : get_one(&q, (enum xid)id, out, sizeof(out));
	q_fini(&q);
	if (rc)
		fs_reply_core(req, rc);
	else
		reply_data(req, out, strlen(out), size);
}

void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char out[SFS_ALLOWED_MAX + SFS_DESC_MAX + 1];
	char list[1024];
	size_t i, len = 0;
	struct xq q;
	int rc;

	if ((rc = q_init(&q, req, ino))) {
		fs_reply_err(req, rc);
		return;
	}
	for (i = 0; i < NXATTRS; i++) {
		if (!(xattrs[i].on & q.where) ||
		    get_one(&q, (enum xid)i, out, sizeof(out)) != SFS_OK)
			continue;
		memcpy(list + len, xattrs[i].name, strlen(xattrs[i].name) + 1);
		len += strlen(xattrs[i].name) + 1;
	}
	q_fini(&q);
	reply_data(req, list, len, size);
}

/* "active"/"deactivated" or "enabled"/"disabled": 1, 0, or -1. */
static int word(const char *v, const char *yes, const char *no)
{
	if (!strcmp(v, yes))
		return 1;
	if (!strcmp(v, no))
		return 0;
	return -1;
}

/* description, access_control, allowed_principals: the change as an
 * update of one field into u. SFS_OK, SFS_EINVAL (a bad value), or
 * SFS_ENOENT (id is none of them). */
static int update_field(enum xid id, const char *v, struct sfs_secret_update *u)
{
	int on;

	memset(u, 0, sizeof(*u));
	if (id == X_DESC) {
		u->fields = SFS_SF_DESCRIPTION;
		u->description = v;
	} else if (id == X_ALLOWED) {
		u->fields = SFS_SF_ALLOWED;
		u->allowed = v;
	} else if (id != X_AC) {
		return SFS_ENOENT;
	} else if ((on = word(v, "enabled", "disabled")) < 0) {
		return SFS_EINVAL;
	} else {
		u->fields = SFS_SF_ACCESS_CONTROL;
		u->access_control = on;
	}
	return SFS_OK;
}

static int set_dir(struct xq *q, enum xid id, const char *v)
{
	struct sfs_error err = {0};
	struct sfs_secret_update u;
	const char *s = q->n.secret;
	int on, rc = update_field(id, v, &u);
	char *end;
	unsigned long n;

	if (rc == SFS_OK)
		return fs_noted(sfs_secret_update(fs_d.ctx, &q->c, s, &u, &err),
				&err);
	if (rc == SFS_EINVAL)
		return rc;
	switch (id) {
	case X_STATUS:
		if ((on = word(v, "active", "deactivated")) < 0)
			return SFS_EINVAL;
		return fs_noted(
		    sfs_secret_set_status(fs_d.ctx, &q->c, s, on, &err), &err);
	case X_DEFAULT:
		errno = 0;
		n = strtoul(v, &end, 10);
		if (v[0] < '0' || v[0] > '9' || *end || errno || n > UINT32_MAX)
			return SFS_EINVAL;
		return fs_noted(sfs_version_set_default(fs_d.ctx, &q->c, s,
							(uint32_t)n, &err),
				&err);
	case X_KEY_ID:
		return fs_noted(
		    sfs_secret_change_key(fs_d.ctx, &q->c, s, v, &err), &err);
	default:
		return SFS_EPERM;
	}
}

static int set_one(struct xq *q, int id, const char *v)
{
	struct sfs_error err = {0};
	int on;

	if (id < 0 || !(xattrs[id].on & q->where))
		return SFS_EPERM;
	if (q->where == ON_DIR)
		return set_dir(q, (enum xid)id, v);
	if (q->n.kind != FK_VERSION || id != X_VSTATE)
		return SFS_EPERM;
	/* The third state the attribute shows: the same as rm versions/N. */
	if (!strcmp(v, "destroyed"))
		return fs_noted(sfs_version_destroy(fs_d.ctx, &q->c,
						    q->n.secret, q->n.version,
						    &err),
				&err);
	if ((on = word(v, "active", "deactivated")) < 0)
		return SFS_EINVAL;
	return fs_noted(sfs_version_set_state(fs_d.ctx, &q->c, q->n.secret,
					      q->n.version, on, &err),
			&err);
}

/* setxattr's XATTR_CREATE (EEXIST when the attribute has a value) and
 * XATTR_REPLACE (ENODATA when it has none), asked as getxattr would be
 * by the caller, before any change. */
static int set_flags(struct xq *q, int id, int flags)
{
	char out[SFS_ALLOWED_MAX + SFS_DESC_MAX + 1];
	int rc;

	if (!(flags & (XATTR_CREATE | XATTR_REPLACE)))
		return SFS_OK;
	rc = id < 0 ? SFS_ENODATA : get_one(q, (enum xid)id, out, sizeof(out));
	if (rc == SFS_OK)
		return (flags & XATTR_CREATE) ? SFS_EEXIST : SFS_OK;
	if (rc == SFS_ENODATA)
		return (flags & XATTR_REPLACE) ? SFS_ENODATA : SFS_OK;
	return rc;
}

void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	struct xq q;
	char *v = NULL;
	int rc;

	if ((rc = q_init(&q, req, ino))) {
		fs_reply_err(req, rc);
		return;
	}
	if (!fs_visible(q.n.secret) && q.n.secret[0])
		rc = SFS_ENOENT;
	else if (memchr(value, '\0', size))
		rc = SFS_EINVAL;
	else if (!(v = malloc(size + 1)))
		rc = SFS_ENOMEM;
	else if (!(rc = q_caller(&q)) &&
		 !(rc = set_flags(&q, find_xattr(name), flags))) {
		memcpy(v, value, size);
		v[size] = '\0';
		rc = set_one(&q, find_xattr(name), v);
		if (!rc)
			fs_secret_changed(q.n.secret, 0);
	}
	q_fini(&q);
	free(v);
	fs_reply_core(req, rc);
}

void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	(void)name;
	fs_reply_err(req, FS_EPERM);
}
