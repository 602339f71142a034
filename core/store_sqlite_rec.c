/*
 * SQLite backend, records: meta, KMS keys and their versions, secrets,
 * versions, roles, the health check and counts, pending audit lines.
 * Every statement is one of store_sqlite.c's prepared statements, reset
 * and cleared before the operation returns.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "secretfs/backup.h"
#include "secretfs/principal.h"
#include "secretfs/store.h"
#include "store_sqlite.h"
#include "secretfs/storedir.h"

/* ---- meta ------------------------------------------------------------ */

int sq_meta_get(struct sfs_store *s, const char *name,
		       struct sfs_blob *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_META_GET];
	int rc = sq_bind_text(st, 1, name);

	out->data = NULL;
	out->len = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = sq_col_blob(st, 0, out, err);
	else if (rc == SQLITE_DONE)
		rc = sq_not_found(err, "meta", name);
	else
		rc = sq_fail(q, rc, err, "meta '%s'", name);
	sq_done(st);
	return rc;
}

int sq_meta_set(struct sfs_store *s, const char *name, const void *v,
		       size_t len, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_META_SET];
	int rc = sq_bind_text(st, 1, name) | sq_bind_blob(st, 2, v, len);

	return sq_step_change(q, st, rc, 0, err, "set meta");
}

/* ---- KMS keys -------------------------------------------------------- */

static int key_row(sqlite3_stmt *st, struct sfs_key_rec *k,
		   struct sfs_error *err)
{
	memset(k, 0, sizeof(*k));
	if (sq_col_text(st, 0, k->id, sizeof(k->id)) ||
	    sq_col_text(st, 1, k->name, sizeof(k->name)) ||
	    sq_col_text(st, 4, k->description, sizeof(k->description)) ||
	    sq_col_text(st, 6, k->created_by, sizeof(k->created_by)))
		return sq_corrupt(err, "kms_keys");
	k->type = sqlite3_column_int(st, 2);
	k->state = sqlite3_column_int(st, 3);
	k->created_at = sqlite3_column_int64(st, 5);
	k->current_version = sq_col_u32(st, 7);
	return 0;
}

/* One-row lookup by a text key: 1 found, 0 not, or an error code. */
static int get_one(struct sq *q, enum stmt_id id, const char *key,
		   int (*row)(sqlite3_stmt *, void *, struct sfs_error *),
		   void *out, struct sfs_error *err)
{
	sqlite3_stmt *st = q->st[id];
	int rc = sq_bind_text(st, 1, key);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = row(st, out, err);
		if (rc == 0)
			rc = 1;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "look up '%s'", key);
	}
	sq_done(st);
	return rc;
}

static int key_row_cb(sqlite3_stmt *st, void *out, struct sfs_error *err)
{
	return key_row(st, out, err);
}

/*
 * Ids are UUIDs, 36 characters; names may look like one too, so an id
 * match wins. Anything else can only be a name: skip the id probe.
 */
int sq_key_get(struct sfs_store *s, const char *id_or_name,
		      struct sfs_key_rec *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	int rc = 0;

	if (strlen(id_or_name) == SFS_ID_MAX)
		rc = get_one(q, ST_KEY_BY_ID, id_or_name, key_row_cb, out, err);
	if (rc == 0)
		rc = get_one(q, ST_KEY_BY_NAME, id_or_name, key_row_cb, out,
			     err);
	if (rc == 0)
		return sq_not_found(err, "kms key", id_or_name);
	return rc < 0 ? rc : 0;
}

int sq_key_list(struct sfs_store *s, sfs_key_cb cb, void *arg,
		       struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_LIST];
	struct sfs_key_rec k;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = key_row(st, &k, err);
		if (r == 0)
			r = cb(arg, &k);
		if (r)
			break;
	}
	if (!r && rc != SQLITE_DONE)
		r = sq_fail(q, rc, err, "list kms keys");
	sq_done(st);
	return r;
}

int sq_key_insert(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_INSERT];
	int rc = sq_bind_text(st, 1, k->id) | sq_bind_text(st, 2, k->name) |
		 sqlite3_bind_int(st, 3, k->type) |
		 sqlite3_bind_int(st, 4, k->state) |
		 sq_bind_text(st, 5, k->description) |
		 sqlite3_bind_int64(st, 6, k->created_at) |
		 sq_bind_text(st, 7, k->created_by) |
		 sqlite3_bind_int64(st, 8, k->current_version);

	rc = sq_step_change(q, st, rc, 0, err, "insert kms key");
	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "kms key '%s': already exists",
			      k->name);
	return rc;
}

int sq_key_update(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_UPDATE];
	int rc = sq_bind_text(st, 1, k->id) | sqlite3_bind_int(st, 2, k->state) |
		 sq_bind_text(st, 3, k->description) |
		 sqlite3_bind_int64(st, 4, k->current_version);

	rc = sq_step_change(q, st, rc, 1, err, "update kms key");
	return rc == SFS_ENOENT ? sq_not_found(err, "kms key", k->id) : rc;
}

/* Its versions (wrapped key material) go first, then the key itself. */
int sq_key_delete(struct sfs_store *s, const char *id,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_DELETE_VERSIONS];
	int rc = sq_step_change(q, st, sq_bind_text(st, 1, id), 0, err,
			     "delete kms key versions");

	if (rc)
		return rc;
	st = q->st[ST_KEY_DELETE];
	rc = sq_step_change(q, st, sq_bind_text(st, 1, id), 1, err,
			 "delete kms key");
	if (rc == 0)
		q->scrub_txn = 1; /* its wrapped material */
	return rc == SFS_ENOENT ? sq_not_found(err, "kms key", id) : rc;
}

int sq_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_IN_USE];
	int rc = sq_bind_text(st, 1, id) |
		 sqlite3_bind_int(st, 2, SFS_STATE_DESTROYED);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*in_use = sqlite3_column_int(st, 0) != 0;
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "kms key '%s' in use", id);
	}
	sq_done(st);
	return rc;
}

int sq_keyver_get(struct sfs_store *s, const char *key_id,
			 uint32_t version, struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEYVER_GET];
	int rc = sq_bind_text(st, 1, key_id) |
		 sqlite3_bind_int64(st, 2, version);

	wrapped->data = NULL;
	wrapped->len = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = sq_col_blob(st, 0, wrapped, err);
	else if (rc == SQLITE_DONE)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "kms key '%s' version %u: not found",
				   key_id, (unsigned)version);
	else
		rc = sq_fail(q, rc, err, "kms key '%s' version %u", key_id,
			     (unsigned)version);
	sq_done(st);
	return rc;
}

int sq_keyver_insert(struct sfs_store *s, const char *key_id,
			    uint32_t version, const struct sfs_blob *wrapped,
			    int64_t created_at, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEYVER_INSERT];
	int rc = sq_bind_text(st, 1, key_id) |
		 sqlite3_bind_int64(st, 2, version) |
		 sq_bind_blob(st, 3, wrapped->data, wrapped->len) |
		 sqlite3_bind_int64(st, 4, created_at);

	return sq_step_change(q, st, rc, 0, err, "insert kms key version");
}

/* rekey: the old material's cells are freed, so scrub them */
int sq_keyver_set(struct sfs_store *s, const char *key_id,
			 uint32_t version, const struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEYVER_SET];
	int rc = sq_bind_text(st, 1, key_id) |
		 sqlite3_bind_int64(st, 2, version) |
		 sq_bind_blob(st, 3, wrapped->data, wrapped->len);

	rc = sq_step_change(q, st, rc, 1, err, "replace kms key version");
	if (rc == 0)
		q->scrub_txn = 1;
	if (rc == SFS_ENOENT)
		sfs_error_set(err, rc, "kms key '%s' version %u: not found",
			      key_id, (unsigned)version);
	return rc;
}

/* ---- secrets --------------------------------------------------------- */

static int secret_row(sqlite3_stmt *st, struct sfs_secret_rec *r,
		      struct sfs_error *err)
{
	memset(r, 0, sizeof(*r));
	if (sq_col_text(st, 0, r->id, sizeof(r->id)) ||
	    sq_col_text(st, 1, r->name, sizeof(r->name)) ||
	    sq_col_text(st, 2, r->description, sizeof(r->description)) ||
	    sq_col_text(st, 5, r->allowed, sizeof(r->allowed)) ||
	    sq_col_text(st, 11, r->kms_key_id, sizeof(r->kms_key_id)) ||
	    sq_col_text(st, 13, r->created_by, sizeof(r->created_by)))
		return sq_corrupt(err, "secrets");
	r->status = sqlite3_column_int(st, 3);
	r->access_control = sqlite3_column_int(st, 4);
	r->owner = sq_col_u32(st, 6);
	r->group = sq_col_u32(st, 7);
	r->mode = sq_col_u32(st, 8);
	r->default_version = sq_col_u32(st, 9);
	r->latest_version = sq_col_u32(st, 10);
	r->created_at = sqlite3_column_int64(st, 12);
	r->changed_at = sqlite3_column_int64(st, 14);
	sfs_principal_rec_load(r);
	return 0;
}

static int secret_row_cb(sqlite3_stmt *st, void *out, struct sfs_error *err)
{
	return secret_row(st, out, err);
}

/* Bind every column of a secret, numbered as in SECRET_COLS. */
static int bind_secret(sqlite3_stmt *st, const struct sfs_secret_rec *r)
{
	return sq_bind_text(st, 1, r->id) | sq_bind_text(st, 2, r->name) |
	       sq_bind_text(st, 3, r->description) |
	       sqlite3_bind_int(st, 4, r->status) |
	       sqlite3_bind_int(st, 5, r->access_control) |
	       sq_bind_text(st, 6, r->allowed) |
	       sqlite3_bind_int64(st, 7, r->owner) |
	       sqlite3_bind_int64(st, 8, r->group) |
	       sqlite3_bind_int64(st, 9, r->mode) |
	       sqlite3_bind_int64(st, 10, r->default_version) |
	       sqlite3_bind_int64(st, 11, r->latest_version) |
	       sq_bind_text(st, 12, r->kms_key_id) |
	       sqlite3_bind_int64(st, 13, r->created_at) |
	       sq_bind_text(st, 14, r->created_by) |
	       sqlite3_bind_int64(st, 15, r->changed_at);
}

int sq_secret_get(struct sfs_store *s, const char *id_or_name,
			 struct sfs_secret_rec *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	int rc = 0;

	if (strlen(id_or_name) == SFS_ID_MAX)
		rc = get_one(q, ST_SECRET_BY_ID, id_or_name, secret_row_cb,
			     out, err);
	if (rc == 0)
		rc = get_one(q, ST_SECRET_BY_NAME, id_or_name, secret_row_cb,
			     out, err);
	if (rc == 0)
		return sq_not_found(err, "secret", id_or_name);
	return rc < 0 ? rc : 0;
}

/* Step st (bound) and hand each secret row to cb. */
static int secret_rows(struct sq *q, sqlite3_stmt *st, int rc,
		       sfs_secret_cb cb, void *arg, struct sfs_error *err)
{
	struct sfs_secret_rec r;
	int ret = 0;

	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = secret_row(st, &r, err);
		if (ret == 0)
			ret = cb(arg, &r);
		if (ret)
			break;
		rc = SQLITE_OK; /* step again */
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "list secrets");
	sq_done(st);
	return ret;
}

int sq_secret_list_after(struct sfs_store *s, const char *after_name,
				unsigned limit, sfs_secret_cb cb, void *arg,
				struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_LIST_AFTER];
	int rc = sq_bind_text(st, 1, after_name) |
		 sqlite3_bind_int64(st, 2, limit);

	return secret_rows(q, st, rc, cb, arg, err);
}

int sq_secret_list(struct sfs_store *s, sfs_secret_cb cb, void *arg,
			  struct sfs_error *err)
{
	struct sq *q = SQ(s);

	return secret_rows(q, q->st[ST_SECRET_LIST], SQLITE_OK, cb, arg, err);
}

int sq_secret_insert(struct sfs_store *s,
			    const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_INSERT];
	int rc = sq_step_change(q, st, bind_secret(st, r), 0, err,
			     "insert secret");

	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "secret '%s': already exists",
			      r->name);
	return rc;
}

int sq_secret_update(struct sfs_store *s,
			    const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_UPDATE];
	int rc = sq_step_change(q, st, bind_secret(st, r), 1, err,
			     "update secret");

	st = q->st[ST_SECRET_REKEY];
	if (rc == 0)
		rc = sq_step_change(q, st,
				 sq_bind_text(st, 1, r->id) |
					 sq_bind_text(st, 2, r->name) |
					 sq_bind_text(st, 3, r->kms_key_id),
				 0, err, "update secret");
	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "secret '%s': already exists",
			      r->name);
	return rc == SFS_ENOENT ? sq_not_found(err, "secret", r->id) : rc;
}

int sq_secret_delete(struct sfs_store *s, const char *id,
			    struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_DELETE_VERSIONS];
	int rc = sq_step_change(q, st, sq_bind_text(st, 1, id), 0, err,
			     "delete secret versions");

	if (rc)
		return rc;
	st = q->st[ST_SECRET_DELETE];
	rc = sq_step_change(q, st, sq_bind_text(st, 1, id), 1, err,
			 "delete secret");
	if (rc == 0)
		q->scrub_txn = 1;
	return rc == SFS_ENOENT ? sq_not_found(err, "secret", id) : rc;
}

/* ---- versions -------------------------------------------------------- */

static int version_row(sqlite3_stmt *st, struct sfs_version_rec *v,
		       struct sfs_error *err)
{
	memset(v, 0, sizeof(*v));
	if (sq_col_text(st, 0, v->secret_id, sizeof(v->secret_id)) ||
	    sq_col_text(st, 4, v->created_by, sizeof(v->created_by)) ||
	    sq_col_text(st, 5, v->kms_key_id, sizeof(v->kms_key_id)))
		return sq_corrupt(err, "versions");
	v->version = sq_col_u32(st, 1);
	v->state = sqlite3_column_int(st, 2);
	v->created_at = sqlite3_column_int64(st, 3);
	v->kms_key_version = sq_col_u32(st, 6);
	v->size = sq_col_u32(st, 7);
	v->format = sqlite3_column_int(st, 8);
	return 0;
}

static int version_blobs(sqlite3_stmt *st, struct sfs_version_rec *v,
			 struct sfs_error *err)
{
	int rc = sq_col_blob(st, 9, &v->wrapped_dek, err);

	if (rc == 0)
		rc = sq_col_blob(st, 10, &v->ciphertext, err);
	if (rc)
		sfs_version_rec_release(v);
	return rc;
}

int sq_version_get(struct sfs_store *s, const char *secret_id,
			  uint32_t version, int with_blobs,
			  struct sfs_version_rec *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st =
		q->st[with_blobs ? ST_VERSION_GET_BLOBS : ST_VERSION_GET];
	int rc = sq_bind_text(st, 1, secret_id) |
		 sqlite3_bind_int64(st, 2, version);

	memset(out, 0, sizeof(*out));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = version_row(st, out, err);
		if (rc == 0 && with_blobs)
			rc = version_blobs(st, out, err);
	} else if (rc == SQLITE_DONE) {
		rc = sfs_error_set(err, SFS_ENOENT,
				   "secret '%s' version %u: not found",
				   secret_id, (unsigned)version);
	} else {
		rc = sq_fail(q, rc, err, "secret '%s' version %u",
			     secret_id, (unsigned)version);
	}
	sq_done(st);
	return rc;
}

int sq_version_list(struct sfs_store *s, const char *secret_id,
			   sfs_version_cb cb, void *arg, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_VERSION_LIST];
	struct sfs_version_rec v;
	int rc = sq_bind_text(st, 1, secret_id), ret = 0;

	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = version_row(st, &v, err);
		if (ret == 0)
			ret = cb(arg, &v);
		if (ret)
			break;
		rc = SQLITE_OK; /* step again */
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "list versions of '%s'",
			      secret_id);
	sq_done(st);
	return ret;
}

int sq_version_insert(struct sfs_store *s,
			     const struct sfs_version_rec *v,
			     struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_VERSION_INSERT];
	int rc = sq_bind_text(st, 1, v->secret_id) |
		 sqlite3_bind_int64(st, 2, v->version) |
		 sqlite3_bind_int(st, 3, v->state) |
		 sqlite3_bind_int64(st, 4, v->created_at) |
		 sq_bind_text(st, 5, v->created_by) |
		 sq_bind_text(st, 6, v->kms_key_id) |
		 sqlite3_bind_int64(st, 7, v->kms_key_version) |
		 sqlite3_bind_int64(st, 8, v->size) |
		 sqlite3_bind_int(st, 9, v->format) |
		 sqlite3_bind_blob64(st, 10, v->wrapped_dek.data,
				     v->wrapped_dek.len, SQLITE_STATIC) |
		 sqlite3_bind_blob64(st, 11, v->ciphertext.data,
				     v->ciphertext.len, SQLITE_STATIC);

	rc = sq_step_change(q, st, rc, 0, err, "insert version");
	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "secret '%s' version %u: already "
			      "exists", v->secret_id, (unsigned)v->version);
	return rc;
}

/* Destroying sets both blobs NULL; secure_delete zeroes the old bytes, and
 * the checkpoint after commit carries that over the database file and cuts
 * the WAL (see the comment at the top). */
int sq_version_set_state(struct sfs_store *s, const char *secret_id,
				uint32_t version, int state,
				struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[state == SFS_STATE_DESTROYED ?
				 ST_VERSION_DESTROY : ST_VERSION_STATE];
	int rc = sq_bind_text(st, 1, secret_id) |
		 sqlite3_bind_int64(st, 2, version) |
		 sqlite3_bind_int(st, 3, state);

	rc = sq_step_change(q, st, rc, 1, err, "set version state");
	if (rc == 0 && state == SFS_STATE_DESTROYED)
		q->scrub_txn = 1;
	if (rc == SFS_ENOENT)
		sfs_error_set(err, rc, "secret '%s' version %u: not found",
			      secret_id, (unsigned)version);
	return rc;
}

/* ---- roles ----------------------------------------------------------- */

int sq_role_grant(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_ROLE_GRANT];
	int rc = sq_bind_text(st, 1, role) | sq_bind_text(st, 2, principal);

	rc = sq_step_change(q, st, rc, 0, err, "grant role");
	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "role '%s' for '%s': already "
			      "granted", role, principal);
	return rc;
}

int sq_role_revoke(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_ROLE_REVOKE];
	int rc = sq_bind_text(st, 1, role) | sq_bind_text(st, 2, principal);

	rc = sq_step_change(q, st, rc, 1, err, "revoke role");
	if (rc == SFS_ENOENT)
		sfs_error_set(err, rc, "role '%s' for '%s': not granted",
			      role, principal);
	return rc;
}

int sq_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
			struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_ROLE_LIST];
	int rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *role = (const char *)sqlite3_column_text(st, 0);
		const char *who = (const char *)sqlite3_column_text(st, 1);

		ret = (role && who) ? cb(arg, role, who)
				    : sq_corrupt(err, "roles");
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "list roles");
	sq_done(st);
	return ret;
}

/* ---- health, counts, generation -------------------------------------- */

int sq_check(struct sfs_store *s, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_CHECK];
	const char *res;
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		res = (const char *)sqlite3_column_text(st, 0);
		rc = (res && strcmp(res, "ok") == 0)
			     ? 0
			     : sfs_error_set(err, SFS_EIO,
					     "store integrity check: %s",
					     res ? res : "no answer");
	} else {
		rc = sq_fail(q, rc, err, "store integrity check");
	}
	sq_done(st);
	if (rc)
		return rc;
	st = q->st[ST_FK_CHECK];
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		res = (const char *)sqlite3_column_text(st, 0);
		rc = sfs_error_set(err, SFS_EIO, "store integrity check: "
				   "a row of '%s' refers to a missing row",
				   res ? res : "?");
	} else if (rc != SQLITE_DONE) {
		rc = sq_fail(q, rc, err, "store foreign key check");
	} else {
		rc = 0;
	}
	sq_done(st);
	return rc;
}

int sq_counts(struct sfs_store *s, uint64_t *secrets,
		     uint64_t *versions, uint64_t *keys, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_COUNTS];
	int rc = sqlite3_bind_int(st, 1, SFS_STATE_DESTROYED);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*secrets = (uint64_t)sqlite3_column_int64(st, 0);
		*versions = (uint64_t)sqlite3_column_int64(st, 1);
		*keys = (uint64_t)sqlite3_column_int64(st, 2);
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "count store rows");
	}
	sq_done(st);
	return rc;
}

/* ---- pending audit lines ------------------------------------------- */

int sq_audit_add(struct sfs_store *s, const char *line, size_t len,
			int64_t hint, int64_t *seq, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_ADD];
	int rc = sqlite3_bind_int64(st, 1, hint) |
		 sqlite3_bind_blob64(st, 2, line, len, SQLITE_STATIC);

	rc = sq_step_change(q, st, rc, 0, err, "add pending audit line");
	if (rc == 0 && seq)
		*seq = sqlite3_last_insert_rowid(q->db);
	return rc;
}

int sq_audit_list(struct sfs_store *s, sfs_audit_pending_cb cb,
			 void *arg, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_LIST];
	int rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 2);
		size_t n = (size_t)sqlite3_column_bytes(st, 2);

		ret = cb(arg, sqlite3_column_int64(st, 0),
			 sqlite3_column_int64(st, 1), p ? p : "", n);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "list pending audit lines");
	sq_done(st);
	return ret;
}

int sq_audit_del(struct sfs_store *s, int64_t seq,
			struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_DEL];

	return sq_step_change(q, st, sqlite3_bind_int64(st, 1, seq), 0, err,
			   "drop pending audit line");
}

int sq_audit_any(struct sfs_store *s, int *any, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_ANY];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*any = sqlite3_column_int(st, 0);
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "look for pending audit lines");
	}
	sq_done(st);
	return rc;
}
