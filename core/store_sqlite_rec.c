/*
 * SQLite backend, records: meta, KMS keys and their versions, secrets,
 * versions, roles, the health check and counts, pending audit lines.
 * Every statement is one of store_sqlite.c's prepared statements, reset
 * and cleared before the operation returns. The three record tables are
 * bound and read through their column tables (store_cols.h): bind_rec,
 * rec_row, get_one and list_recs. The operations are static; the
 * backend's operations table sq_ops, at the end, is what store_sqlite.c's
 * open hands out.
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
#include "secretfs/storedir.h"
#include "store_cols.h"
#include "store_sqlite.h"

/* ---- the record tables ---------------------------------------------- */

/* Bind every column of rec, a record of t, from parameter 1 in the order
 * of its *_COLS; the OR of the bind results. */
static int bind_rec(sqlite3_stmt *st, const struct store_table *t,
		    const void *rec)
{
	const struct store_col *c;
	int i = 1, rc = SQLITE_OK;

	for (c = t->cols; c < t->cols + t->n; c++, i++) {
		if (c->type == COL_TEXT)
			rc |= sq_bind_text(st, i, (const char *)rec + c->off);
		else if (c->type == COL_INT)
			rc |=
			    sqlite3_bind_int(st, i, (int)store_col_get(c, rec));
		else
			rc |= sqlite3_bind_int64(st, i, store_col_get(c, rec));
	}
	return rc;
}

/* Read the row st is on, whose first columns are t's *_COLS, into rec. */
static int rec_row(sqlite3_stmt *st, const struct store_table *t, void *rec,
		   struct sfs_error *err)
{
	const struct store_col *c;
	int col = 0;

	memset(rec, 0, t->size);
	for (c = t->cols; c < t->cols + t->n; c++, col++) {
		if (c->type != COL_TEXT)
			store_col_set(c, rec, sqlite3_column_int64(st, col));
		else if (sq_col_text(st, col, store_col_text(c, rec), c->cap))
			return sq_corrupt(err, t->name);
	}
	store_rec_loaded(t, rec);
	return 0;
}

/* One-row lookup of a record of t by a text key: 1 found, 0 not, or an
 * error code. */
static int get_one(struct sq *q, enum stmt_id id, const char *key,
		   const struct store_table *t, void *out,
		   struct sfs_error *err)
{
	sqlite3_stmt *st = q->st[id];
	int rc = sq_bind_text(st, 1, key);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = rec_row(st, t, out, err);
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

/*
 * A record of t by id or name. Ids are UUIDs, 36 characters; names may
 * look like one too, so an id match wins. Anything else can only be a
 * name: skip the id probe. what names the record in "not found".
 */
static int get_id_or_name(struct sq *q, enum stmt_id by_id,
			  enum stmt_id by_name, const struct store_table *t,
			  const char *what, const char *id_or_name, void *out,
			  struct sfs_error *err)
{
	int rc = 0;

	if (strlen(id_or_name) == SFS_ID_MAX)
		rc = get_one(q, by_id, id_or_name, t, out, err);
	if (rc == 0)
		rc = get_one(q, by_name, id_or_name, t, out, err);
	if (rc == 0)
		return sq_not_found(err, what, id_or_name);
	return rc < 0 ? rc : 0;
}

/* Step st (bound with rc) and hand each row, a record of t, to cb; what
 * (and id, when not NULL: "WHAT of 'ID'") names a failed step. */
static int list_recs(struct sq *q, sqlite3_stmt *st, int rc,
		     const struct store_table *t, union store_cb cb, void *arg,
		     const char *what, const char *id, struct sfs_error *err)
{
	union store_rec rec;
	int ret = 0;

	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = rec_row(st, t, &rec, err);
		if (ret == 0)
			ret = t->call(cb, arg, &rec);
		if (ret)
			break;
		rc = SQLITE_OK; /* step again */
	}
	if (!ret && rc != SQLITE_DONE)
		ret = id ? sq_fail(q, rc, err, "%s of '%s'", what, id)
			 : sq_fail(q, rc, err, "%s", what);
	sq_done(st);
	return ret;
}

/*
 * sq_step_change for a change of one row whose failure is code, worded
 * fmt: SFS_ENOENT when it changed no row, SFS_EEXIST when its row exists.
 */
static int change_one(struct sq *q, sqlite3_stmt *st, int bind_rc, int code,
		      struct sfs_error *err, const char *what, const char *fmt,
		      ...) __attribute__((format(printf, 7, 8)));

static int change_one(struct sq *q, sqlite3_stmt *st, int bind_rc, int code,
		      struct sfs_error *err, const char *what, const char *fmt,
		      ...)
{
	va_list ap;
	int rc = sq_step_change(q, st, bind_rc, code == SFS_ENOENT, err, what);

	if (rc == code) {
		va_start(ap, fmt);
		store_error_v(err, code, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/*
 * Step st (bound with rc) for its one blob, column 0, into out (empty
 * first). fmt names the row ("meta 'NAME'") in the errors; no row is
 * SFS_ENOENT, "<row>: not found".
 */
static int get_blob(struct sq *q, sqlite3_stmt *st, int rc,
		    struct sfs_blob *out, struct sfs_error *err,
		    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int get_blob(struct sq *q, sqlite3_stmt *st, int rc,
		    struct sfs_blob *out, struct sfs_error *err,
		    const char *fmt, ...)
{
	char what[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	out->data = NULL;
	out->len = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = sq_col_blob(st, 0, out, err);
	else if (rc == SQLITE_DONE)
		rc = sfs_error_set(err, SFS_ENOENT, "%s: not found", what);
	else
		rc = sq_fail(q, rc, err, "%s", what);
	sq_done(st);
	return rc;
}

/* Delete a record by id: first its versions (statement versions), then
 * the record (statement record); what names it ("kms key"). The commit
 * then scrubs the freed cells. */
static int delete_by_id(struct sq *q, enum stmt_id versions,
			enum stmt_id record, const char *what, const char *id,
			struct sfs_error *err)
{
	char op[64];
	sqlite3_stmt *st = q->st[versions];
	int rc;

	snprintf(op, sizeof(op), "delete %s versions", what);
	rc = sq_step_change(q, st, sq_bind_text(st, 1, id), 0, err, op);
	if (rc)
		return rc;
	st = q->st[record];
	snprintf(op, sizeof(op), "delete %s", what);
	rc = sq_step_change(q, st, sq_bind_text(st, 1, id), 1, err, op);
	if (rc == 0)
		q->scrub_txn = 1;
	return rc == SFS_ENOENT ? sq_not_found(err, what, id) : rc;
}

/* ---- meta ------------------------------------------------------------ */

static int sq_meta_get(struct sfs_store *s, const char *name,
		       struct sfs_blob *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_META_GET];

	return get_blob(q, st, sq_bind_text(st, 1, name), out, err, "meta '%s'",
			name);
}

static int sq_meta_set(struct sfs_store *s, const char *name, const void *v,
		       size_t len, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_META_SET];
	int rc = sq_bind_text(st, 1, name) | sq_bind_blob(st, 2, v, len);

	return sq_step_change(q, st, rc, 0, err, "set meta");
}

/* ---- KMS keys -------------------------------------------------------- */

static int sq_key_get(struct sfs_store *s, const char *id_or_name,
		      struct sfs_key_rec *out, struct sfs_error *err)
{
	return get_id_or_name(SQ(s), ST_KEY_BY_ID, ST_KEY_BY_NAME, &store_keys,
			      "kms key", id_or_name, out, err);
}

static int sq_key_list(struct sfs_store *s, sfs_key_cb cb, void *arg,
		       struct sfs_error *err)
{
	struct sq *q = SQ(s);
	union store_cb c = {.key = cb};

	return list_recs(q, q->st[ST_KEY_LIST], SQLITE_OK, &store_keys, c, arg,
			 "list kms keys", NULL, err);
}

static int sq_key_insert(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_INSERT];
	int rc = bind_rec(st, &store_keys, k);

	return change_one(q, st, rc, SFS_EEXIST, err, "insert kms key",
			  "kms key '%s': already exists", k->name);
}

static int sq_key_update(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_UPDATE];
	int rc = sq_bind_text(st, 1, k->id) |
		 sqlite3_bind_int(st, 2, k->state) |
		 sq_bind_text(st, 3, k->description) |
		 sqlite3_bind_int64(st, 4, k->current_version);

	return change_one(q, st, rc, SFS_ENOENT, err, "update kms key",
			  "kms key '%s': not found", k->id);
}

/* Its versions (wrapped key material) go first, then the key itself. */
static int sq_key_delete(struct sfs_store *s, const char *id,
			 struct sfs_error *err)
{
	return delete_by_id(SQ(s), ST_KEY_DELETE_VERSIONS, ST_KEY_DELETE,
			    "kms key", id, err);
}

static int sq_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_IN_USE];
	char what[200]; /* sq_fail's room */
	int rc;

	snprintf(what, sizeof(what), "kms key '%s' in use", id);
	rc = sq_step_row(q, st,
			 sq_bind_text(st, 1, id) |
			     sqlite3_bind_int(st, 2, SFS_STATE_DESTROYED),
			 err, what);
	if (rc == 0)
		*in_use = sqlite3_column_int(st, 0) != 0;
	sq_done(st);
	return rc;
}

static int sq_keyver_get(struct sfs_store *s, const char *key_id,
			 uint32_t version, struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEYVER_GET];
	int rc =
	    sq_bind_text(st, 1, key_id) | sqlite3_bind_int64(st, 2, version);

	return get_blob(q, st, rc, wrapped, err, "kms key '%s' version %u",
			key_id, (unsigned)version);
}

static int sq_keyver_insert(struct sfs_store *s, const char *key_id,
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
static int sq_keyver_set(struct sfs_store *s, const char *key_id,
			 uint32_t version, const struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEYVER_SET];
	int rc = sq_bind_text(st, 1, key_id) |
		 sqlite3_bind_int64(st, 2, version) |
		 sq_bind_blob(st, 3, wrapped->data, wrapped->len);

	rc = change_one(q, st, rc, SFS_ENOENT, err, "replace kms key version",
			"kms key '%s' version %u: not found", key_id,
			(unsigned)version);
	if (rc == 0)
		q->scrub_txn = 1;
	return rc;
}

/* ---- secrets --------------------------------------------------------- */

static int sq_secret_get(struct sfs_store *s, const char *id_or_name,
			 struct sfs_secret_rec *out, struct sfs_error *err)
{
	return get_id_or_name(SQ(s), ST_SECRET_BY_ID, ST_SECRET_BY_NAME,
			      &store_secrets, "secret", id_or_name, out, err);
}

static int sq_secret_list_after(struct sfs_store *s, const char *after_name,
				unsigned limit, sfs_secret_cb cb, void *arg,
				struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_LIST_AFTER];
	union store_cb c = {.secret = cb};
	int rc =
	    sq_bind_text(st, 1, after_name) | sqlite3_bind_int64(st, 2, limit);

	return list_recs(q, st, rc, &store_secrets, c, arg, "list secrets",
			 NULL, err);
}

static int sq_secret_list(struct sfs_store *s, sfs_secret_cb cb, void *arg,
			  struct sfs_error *err)
{
	struct sq *q = SQ(s);
	union store_cb c = {.secret = cb};

	return list_recs(q, q->st[ST_SECRET_LIST], SQLITE_OK, &store_secrets, c,
			 arg, "list secrets", NULL, err);
}

static int sq_secret_insert(struct sfs_store *s, const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_INSERT];

	return change_one(q, st, bind_rec(st, &store_secrets, r), SFS_EEXIST,
			  err, "insert secret", "secret '%s': already exists",
			  r->name);
}

static int sq_secret_update(struct sfs_store *s, const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct sq *q = SQ(s);
	struct sfs_object o = sfs_object_secret(r->name);
	sqlite3_stmt *st = q->st[ST_SECRET_UPDATE];
	int rc = sq_step_change(q, st, bind_rec(st, &store_secrets, r), 1, err,
				"update secret");

	st = q->st[ST_SECRET_REKEY];
	if (rc == 0)
		rc = sq_step_change(q, st,
				    sq_bind_text(st, 1, r->id) |
					sq_bind_text(st, 2, r->name) |
					sq_bind_text(st, 3, r->kms_key_id),
				    0, err, "update secret");
	if (rc == SFS_EEXIST)
		sfs_error_about(err, rc, &o, "already exists");
	return rc == SFS_ENOENT ? sq_not_found(err, "secret", r->id) : rc;
}

static int sq_secret_delete(struct sfs_store *s, const char *id,
			    struct sfs_error *err)
{
	return delete_by_id(SQ(s), ST_SECRET_DELETE_VERSIONS, ST_SECRET_DELETE,
			    "secret", id, err);
}

/* ---- versions -------------------------------------------------------- */

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

static int sq_version_get(struct sfs_store *s, const char *secret_id,
			  uint32_t version, int with_blobs,
			  struct sfs_version_rec *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st =
	    q->st[with_blobs ? ST_VERSION_GET_BLOBS : ST_VERSION_GET];
	int rc =
	    sq_bind_text(st, 1, secret_id) | sqlite3_bind_int64(st, 2, version);

	memset(out, 0, sizeof(*out));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = rec_row(st, &store_versions, out, err);
		if (rc == 0 && with_blobs)
			rc = version_blobs(st, out, err);
	} else if (rc == SQLITE_DONE) {
		rc = sfs_error_set(err, SFS_ENOENT,
				   "secret '%s' version %u: not found",
				   secret_id, (unsigned)version);
	} else {
		rc = sq_fail(q, rc, err, "secret '%s' version %u", secret_id,
			     (unsigned)version);
	}
	sq_done(st);
	return rc;
}

static int sq_version_list(struct sfs_store *s, const char *secret_id,
			   sfs_version_cb cb, void *arg, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_VERSION_LIST];
	union store_cb c = {.version = cb};

	return list_recs(q, st, sq_bind_text(st, 1, secret_id), &store_versions,
			 c, arg, "list versions", secret_id, err);
}

static int sq_version_insert(struct sfs_store *s,
			     const struct sfs_version_rec *v,
			     struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_VERSION_INSERT];
	int rc = bind_rec(st, &store_versions, v) |
		 sqlite3_bind_blob64(st, 10, v->wrapped_dek.data,
				     v->wrapped_dek.len, SQLITE_STATIC) |
		 sqlite3_bind_blob64(st, 11, v->ciphertext.data,
				     v->ciphertext.len, SQLITE_STATIC);

	return change_one(q, st, rc, SFS_EEXIST, err, "insert version",
			  "secret '%s' version %u: already exists",
			  v->secret_id, (unsigned)v->version);
}

/* Destroying sets both blobs NULL; secure_delete zeroes the old bytes, and
 * the checkpoint after commit carries that over the database file and cuts
 * the WAL (see the comment at the top). */
static int sq_version_set_state(struct sfs_store *s, const char *secret_id,
				uint32_t version, int state,
				struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st =
	    q->st[state == SFS_STATE_DESTROYED ? ST_VERSION_DESTROY
					       : ST_VERSION_STATE];
	int rc = sq_bind_text(st, 1, secret_id) |
		 sqlite3_bind_int64(st, 2, version) |
		 sqlite3_bind_int(st, 3, state);

	rc = change_one(q, st, rc, SFS_ENOENT, err, "set version state",
			"secret '%s' version %u: not found", secret_id,
			(unsigned)version);
	if (rc == 0 && state == SFS_STATE_DESTROYED)
		q->scrub_txn = 1;
	return rc;
}

/* ---- roles ----------------------------------------------------------- */

/* Grant (code SFS_EEXIST: already granted) or revoke (SFS_ENOENT: not
 * granted) role for principal with statement id. */
static int role_change(struct sfs_store *s, enum stmt_id id, int code,
		       const char *what, const char *role,
		       const char *principal, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[id];
	int rc = sq_bind_text(st, 1, role) | sq_bind_text(st, 2, principal);

	return change_one(
	    q, st, rc, code, err, what, "role '%s' for '%s': %s", role,
	    principal, code == SFS_EEXIST ? "already granted" : "not granted");
}

static int sq_role_grant(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err)
{
	return role_change(s, ST_ROLE_GRANT, SFS_EEXIST, "grant role", role,
			   principal, err);
}

static int sq_role_revoke(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err)
{
	return role_change(s, ST_ROLE_REVOKE, SFS_ENOENT, "revoke role", role,
			   principal, err);
}

/*
 * Step st to its end, handing each row to row(arg, st, err) until one
 * returns non-zero (that is the result); a failed step is worded with
 * what. st is reset after.
 */
static int sq_each(struct sq *q, sqlite3_stmt *st,
		   int (*row)(void *arg, sqlite3_stmt *st, struct sfs_error *err),
		   void *arg, const char *what, struct sfs_error *err)
{
	int rc = SQLITE_DONE, ret = 0;

	while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ret = row(arg, st, err);
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "%s", what);
	sq_done(st);
	return ret;
}

/* The caller's callback of a listing that is not of records, and its
 * argument: what sq_each hands the row function. */
struct each_cb {
	union {
		sfs_role_cb role;
		sfs_audit_pending_cb audit;
	} cb;
	void *arg;
};

static int role_row(void *arg, sqlite3_stmt *st, struct sfs_error *err)
{
	const struct each_cb *e = arg;
	const char *role = (const char *)sqlite3_column_text(st, 0);
	const char *who = (const char *)sqlite3_column_text(st, 1);

	return (role && who) ? e->cb.role(e->arg, role, who)
			     : sq_corrupt(err, "roles");
}

static int sq_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
			struct sfs_error *err)
{
	struct sq *q = SQ(s);
	struct each_cb e = {.cb.role = cb, .arg = arg};

	return sq_each(q, q->st[ST_ROLE_LIST], role_row, &e, "list roles",
		       err);
}

/* ---- health, counts, generation -------------------------------------- */

static int sq_check(struct sfs_store *s, struct sfs_error *err)
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
		rc = sfs_error_set(err, SFS_EIO,
				   "store integrity check: "
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

static int sq_counts(struct sfs_store *s, uint64_t *secrets, uint64_t *versions,
		     uint64_t *keys, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_COUNTS];
	int rc =
	    sq_step_row(q, st, sqlite3_bind_int(st, 1, SFS_STATE_DESTROYED),
			err, "count store rows");

	if (rc == 0) {
		*secrets = (uint64_t)sqlite3_column_int64(st, 0);
		*versions = (uint64_t)sqlite3_column_int64(st, 1);
		*keys = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sq_done(st);
	return rc;
}

/* ---- pending audit lines ------------------------------------------- */

static int sq_audit_add(struct sfs_store *s, const char *line, size_t len,
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

static int audit_row(void *arg, sqlite3_stmt *st, struct sfs_error *err)
{
	const struct each_cb *e = arg;
	const void *p = sqlite3_column_blob(st, 2);
	size_t n = (size_t)sqlite3_column_bytes(st, 2);

	(void)err;
	return e->cb.audit(e->arg, sqlite3_column_int64(st, 0),
			   sqlite3_column_int64(st, 1), p ? p : "", n);
}

static int sq_audit_list(struct sfs_store *s, sfs_audit_pending_cb cb,
			 void *arg, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	struct each_cb e = {.cb.audit = cb, .arg = arg};

	return sq_each(q, q->st[ST_AUDIT_LIST], audit_row, &e,
		       "list pending audit lines", err);
}

static int sq_audit_del(struct sfs_store *s, int64_t seq, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_DEL];

	return sq_step_change(q, st, sqlite3_bind_int64(st, 1, seq), 0, err,
			      "drop pending audit line");
}

static int sq_audit_any(struct sfs_store *s, int *any, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_ANY];
	int rc =
	    sq_step_row(q, st, SQLITE_OK, err, "look for pending audit lines");

	if (rc == 0)
		*any = sqlite3_column_int(st, 0);
	sq_done(st);
	return rc;
}

/* ---- the operations table -------------------------------------------- */

const struct sfs_store_ops sq_ops = {
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .key_get = sq_key_get,
    .key_list = sq_key_list,
    .key_insert = sq_key_insert,
    .key_update = sq_key_update,
    .key_delete = sq_key_delete,
    .key_in_use = sq_key_in_use,
    .keyver_get = sq_keyver_get,
    .keyver_insert = sq_keyver_insert,
    .keyver_set = sq_keyver_set,
    .secret_get = sq_secret_get,
    .secret_list = sq_secret_list,
    .secret_insert = sq_secret_insert,
    .secret_update = sq_secret_update,
    .secret_delete = sq_secret_delete,
    .version_get = sq_version_get,
    .version_list = sq_version_list,
    .version_insert = sq_version_insert,
    .version_set_state = sq_version_set_state,
    .role_grant = sq_role_grant,
    .role_revoke = sq_role_revoke,
    .role_list = sq_role_list,
    .check = sq_check,
    .counts = sq_counts,
    .generation = sq_generation,
    .secret_list_after = sq_secret_list_after,
    .commit_then = sq_commit_then,
    .audit_add = sq_audit_add,
    .audit_list = sq_audit_list,
    .audit_del = sq_audit_del,
    .audit_any = sq_audit_any,
};
