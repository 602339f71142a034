/*
 * PostgreSQL backend, records: meta, KMS keys and their versions,
 * secrets, versions, roles, counts, and the audit lines of changes; and
 * the backend's operations table (pg_ops), so that these stay static.
 * Parameters travel apart from the SQL text; blobs are bytea in binary.
 * The three record tables are bound and read through their column
 * tables (store_cols.h): rec_args, rec_row, get_rec, get_id_or_name and
 * list_recs; the get, list and insert that KMS keys and secrets share are
 * one definition (PG_RECORDS).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secretfs/store.h"
#include "store_cols.h"
#include "store_pg.h"

/* What get_rec and get_blob return when there is no row: not an error
 * code (those are negative); the caller words the error. */
#define NO_ROW 1

/* Every column of rec, a record of t, in the order of its *_COLS; for an
 * update (all 0) without the fixed columns. */
static void rec_args(struct args *a, const struct store_table *t,
		     const void *rec, int all)
{
	const struct store_col *c;

	for (c = t->cols; c < t->cols + t->n; c++) {
		if (c->fixed && !all)
			continue;
		if (c->type == COL_TEXT)
			pg_a_text(a, (const char *)rec + c->off);
		else
			pg_a_i64(a, store_col_get(c, rec));
	}
}

/* Read row i of r, whose first columns are t's *_COLS, into rec. */
static int rec_row(const PGresult *r, int i, const struct store_table *t,
		   void *rec, struct sfs_error *err)
{
	const struct store_col *c;
	int col = 0;

	memset(rec, 0, t->size);
	for (c = t->cols; c < t->cols + t->n; c++, col++) {
		if (c->type != COL_TEXT)
			store_col_set(c, rec, pg_col_i64(r, i, col));
		else if (pg_col_text(r, i, col, store_col_text(c, rec), c->cap))
			return pg_corrupt(err, t->name);
	}
	store_rec_loaded(t, rec);
	return SFS_OK;
}

/* Run sql, which selects t's columns, and read its first row into out:
 * SFS_OK, NO_ROW, or an error code. */
static int get_rec(struct pg *p, const char *sql, const struct args *a,
		   const struct store_table *t, void *out,
		   struct sfs_error *err, const char *what)
{
	PGresult *r;
	int rc = pg_run(p, sql, a, &r, err, what);

	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = NO_ROW;
	else if (rc == SFS_OK)
		rc = rec_row(r, 0, t, out, err);
	PQclear(r);
	return rc;
}

/* The record of table TABLE (columns COLS) whose id or name is $1. Ids
 * are UUIDs; a name may look like one, so an id match wins. */
#define BY_ID_OR_NAME(COLS, TABLE)                                             \
	"SELECT " COLS " FROM " TABLE " WHERE id = $1 OR name = $1 "           \
	"ORDER BY id = $1 DESC LIMIT 1"

/* Run sql (a BY_ID_OR_NAME of t) for id_or_name into out; what names the
 * record ("kms key") in the errors. */
static int get_id_or_name(struct pg *p, const char *sql,
			  const struct store_table *t, const char *what,
			  const char *id_or_name, void *out,
			  struct sfs_error *err)
{
	struct args a = {.n = 0};
	char op[64];
	int rc;

	snprintf(op, sizeof(op), "look up %s", what);
	pg_a_text(&a, id_or_name);
	rc = get_rec(p, sql, &a, t, out, err, op);
	return rc == NO_ROW ? pg_not_found(err, what, id_or_name) : rc;
}

/* Run sql, which selects t's columns, and hand each row to cb. */
static int list_recs(struct pg *p, const char *sql, const struct args *a,
		     const struct store_table *t, union store_cb cb, void *arg,
		     struct sfs_error *err, const char *what)
{
	union store_rec rec;
	PGresult *r;
	int i, rc = pg_run(p, sql, a, &r, err, what);

	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = rec_row(r, i, t, &rec, err);
		if (rc == SFS_OK)
			rc = t->call(cb, arg, &rec);
	}
	PQclear(r);
	return rc;
}

/*
 * Run a change of one row whose failure is code, worded fmt: SFS_ENOENT
 * when it changed no row (an update or delete that found none),
 * SFS_EEXIST when its row exists (an insert ON CONFLICT DO NOTHING that
 * met it). SFS_OK or an error code.
 */
static int change_one(struct pg *p, const char *sql, const struct args *a,
		      int code, struct sfs_error *err, const char *what,
		      const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int change_one(struct pg *p, const char *sql, const struct args *a,
		      int code, struct sfs_error *err, const char *what,
		      const char *fmt, ...)
{
	va_list ap;
	long n = 0;
	int rc = pg_run_count(p, sql, a, &n, err, what);

	if (rc == SFS_OK && n == 0) {
		va_start(ap, fmt);
		rc = store_error_v(err, code, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Run sql, whose one row's first column is a boolean, into *out. */
static int get_bool(struct pg *p, const char *sql, const struct args *a,
		    int *out, struct sfs_error *err, const char *what)
{
	PGresult *r;
	int rc = pg_run(p, sql, a, &r, err, what);

	if (rc == SFS_OK)
		*out = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return rc;
}

/* Run sql, whose first row's first column is a blob, into out (empty
 * first): SFS_OK, NO_ROW, or an error code. */
static int get_blob(struct pg *p, const char *sql, const struct args *a,
		    struct sfs_blob *out, struct sfs_error *err,
		    const char *what)
{
	PGresult *r;
	int rc;

	out->data = NULL;
	out->len = 0;
	rc = pg_run(p, sql, a, &r, err, what);
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = NO_ROW;
	else if (rc == SFS_OK)
		rc = pg_col_blob(r, 0, 0, out, err);
	PQclear(r);
	return rc;
}

/* ---- meta ------------------------------------------------------------- */

static int pg_meta_get(struct sfs_store *s, const char *name,
		       struct sfs_blob *out, struct sfs_error *err)
{
	struct args a = {.n = 0};
	int rc;

	pg_a_text(&a, name);
	rc = get_blob(PG(s), "SELECT value FROM meta WHERE name = $1", &a, out,
		      err, "meta");
	return rc == NO_ROW ? pg_not_found(err, "meta", name) : rc;
}

static int pg_meta_set(struct sfs_store *s, const char *name, const void *v,
		       size_t len, struct sfs_error *err)
{
	struct args a = {.n = 0};

	pg_a_text(&a, name);
	pg_a_blob(&a, v, len);
	return pg_run_count(PG(s),
			    "INSERT INTO meta(name, value) VALUES ($1, $2) "
			    "ON CONFLICT(name) DO UPDATE SET value = "
			    "excluded.value",
			    &a, NULL, err, "set meta");
}

/* ---- what KMS keys and secrets share ------------------------------------- */

/*
 * The same three operations for KMS keys and secrets, from their columns
 * (COLS), SQL table, insert placeholders (VALUES), column table (t) and
 * word (what): get by id or name, list in name order, insert (a taken id
 * or name: SFS_EEXIST).
 */
#define PG_RECORDS(kind, rec_t, COLS, TABLE, VALUES, t, what)                  \
	static int pg_##kind##_get(struct sfs_store *s,                        \
				   const char *id_or_name, rec_t *out,         \
				   struct sfs_error *err)                      \
	{                                                                      \
		return get_id_or_name(PG(s), BY_ID_OR_NAME(COLS, TABLE), t,    \
				      what, id_or_name, out, err);             \
	}                                                                      \
	static int pg_##kind##_list(struct sfs_store *s, sfs_##kind##_cb cb,   \
				    void *arg, struct sfs_error *err)          \
	{                                                                      \
		union store_cb c = {.kind = cb};                               \
                                                                               \
		return list_recs(                                              \
		    PG(s), "SELECT " COLS " FROM " TABLE " ORDER BY name",     \
		    NULL, t, c, arg, err, "list " what "s");                   \
	}                                                                      \
	static int pg_##kind##_insert(struct sfs_store *s, const rec_t *r,     \
				      struct sfs_error *err)                   \
	{                                                                      \
		struct args a = {.n = 0};                                      \
                                                                               \
		rec_args(&a, t, r, 1);                                         \
		return change_one(PG(s),                                       \
				  "INSERT INTO " TABLE "(" COLS                \
				  ") VALUES (" VALUES                          \
				  ") ON CONFLICT DO NOTHING",                  \
				  &a, SFS_EEXIST, err, "insert " what,         \
				  what " '%s': already exists", r->name);      \
	}

PG_RECORDS(key, struct sfs_key_rec, KEY_COLS, "kms_keys",
	   "$1, $2, $3, $4, $5, $6, $7, $8", &store_keys, "kms key")
PG_RECORDS(secret, struct sfs_secret_rec, SECRET_COLS, "secrets",
	   "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15",
	   &store_secrets, "secret")

/* ---- KMS keys ----------------------------------------------------------- */

static int pg_key_update(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};

	pg_a_text(&a, k->id);
	pg_a_i64(&a, k->state);
	pg_a_text(&a, k->description);
	pg_a_i64(&a, k->current_version);
	return change_one(PG(s),
			  "UPDATE kms_keys SET state = $2, description = $3, "
			  "current_version = $4 WHERE id = $1",
			  &a, SFS_ENOENT, err, "update kms key",
			  "kms key '%s': not found", k->id);
}

/* Run sql (a DELETE of the row with id $1; what is "delete THING"); the
 * commit then vacuums, so the deleted blobs leave the tables' pages. */
static int delete_by_id(struct sfs_store *s, const char *sql, const char *what,
			const char *id, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	int rc;

	pg_a_text(&a, id);
	rc = change_one(p, sql, &a, SFS_ENOENT, err, what, "%s '%s': not found",
			what + strlen("delete "), id);
	if (rc == SFS_OK)
		p->scrub_txn = 1;
	return rc;
}

/* Its versions (wrapped key material) go with it (ON DELETE CASCADE). */
static int pg_key_delete(struct sfs_store *s, const char *id,
			 struct sfs_error *err)
{
	return delete_by_id(s, "DELETE FROM kms_keys WHERE id = $1",
			    "delete kms key", id, err);
}

static int pg_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};

	pg_a_text(&a, id);
	pg_a_i64(&a, SFS_STATE_DESTROYED);
	return get_bool(PG(s),
			"SELECT EXISTS(SELECT 1 FROM versions WHERE "
			"kms_key_id = $1 AND state <> $2) OR EXISTS(SELECT 1 "
			"FROM secrets WHERE kms_key_id = $1)",
			&a, in_use, err, "kms key in use");
}

static int pg_keyver_get(struct sfs_store *s, const char *key_id,
			 uint32_t version, struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	int rc;

	pg_a_text(&a, key_id);
	pg_a_i64(&a, version);
	rc = get_blob(PG(s),
		      "SELECT wrapped FROM kms_key_versions "
		      "WHERE key_id = $1 AND version = $2",
		      &a, wrapped, err, "kms key version");
	if (rc == NO_ROW)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "kms key '%s' version %u: not found", key_id,
				   (unsigned)version);
	return rc;
}

static int pg_keyver_insert(struct sfs_store *s, const char *key_id,
			    uint32_t version, const struct sfs_blob *wrapped,
			    int64_t created_at, struct sfs_error *err)
{
	struct args a = {.n = 0};
	int rc;

	pg_a_text(&a, key_id);
	pg_a_i64(&a, version);
	pg_a_blob(&a, wrapped->data, wrapped->len);
	pg_a_i64(&a, created_at);
	rc =
	    change_one(PG(s),
		       "INSERT INTO kms_key_versions(key_id, version, wrapped, "
		       "created_at) VALUES ($1, $2, $3, $4) "
		       "ON CONFLICT DO NOTHING",
		       &a, SFS_EEXIST, err, "insert kms key version",
		       "insert kms key version: already exists");
	return rc;
}

static int pg_keyver_set(struct sfs_store *s, const char *key_id,
			 uint32_t version, const struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};

	pg_a_text(&a, key_id);
	pg_a_i64(&a, version);
	pg_a_blob(&a, wrapped->data, wrapped->len);
	return change_one(PG(s),
			  "UPDATE kms_key_versions SET wrapped = $3 "
			  "WHERE key_id = $1 AND version = $2",
			  &a, SFS_ENOENT, err, "replace kms key version",
			  "kms key '%s' version %u: not found", key_id,
			  (unsigned)version);
}

/* ---- secrets ------------------------------------------------------------ */

static int pg_secret_list_after(struct sfs_store *s, const char *after_name,
				unsigned limit, sfs_secret_cb cb, void *arg,
				struct sfs_error *err)
{
	union store_cb c = {.secret = cb};
	struct args a = {.n = 0};

	pg_a_text(&a, after_name);
	pg_a_i64(&a, limit);
	return list_recs(PG(s),
			 "SELECT " SECRET_COLS " FROM secrets WHERE name > $1 "
			 "ORDER BY name LIMIT $2",
			 &a, &store_secrets, c, arg, err, "list secrets");
}

/* One round trip: whether the name is taken by another secret, and the
 * update only when it is not. The parameters are SECRET_COLS' but
 * created_at and created_by: changed_at is $13. */
static int pg_secret_update(struct sfs_store *s, const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *res;
	int rc;

	rec_args(&a, &store_secrets, r, 0);
	rc = pg_run(
	    PG(s),
	    "WITH c AS (SELECT EXISTS(SELECT 1 FROM secrets WHERE "
	    "name = $2 AND id <> $1) AS taken), u AS (UPDATE secrets SET "
	    "name = $2, description = $3, status = $4, "
	    "access_control = $5, allowed = $6, owner_uid = $7, "
	    "group_gid = $8, mode = $9, default_version = $10, "
	    "latest_version = $11, kms_key_id = $12, changed_at = $13 "
	    "WHERE id = $1 AND NOT (SELECT taken FROM c) RETURNING 1) "
	    "SELECT (SELECT taken FROM c), "
	    "(SELECT count(*) FROM u)",
	    &a, &res, err, "update secret");
	if (rc == SFS_OK && PQgetvalue(res, 0, 0)[0] == 't')
		rc = sfs_error_set(err, SFS_EEXIST,
				   "secret '%s': already exists", r->name);
	else if (rc == SFS_OK && pg_col_i64(res, 0, 1) == 0)
		rc = pg_not_found(err, "secret", r->id);
	PQclear(res);
	return rc;
}

/* Its (destroyed) versions go with it (ON DELETE CASCADE). */
static int pg_secret_delete(struct sfs_store *s, const char *id,
			    struct sfs_error *err)
{
	return delete_by_id(s, "DELETE FROM secrets WHERE id = $1",
			    "delete secret", id, err);
}

/* ---- versions ----------------------------------------------------------- */

static int pg_version_get(struct sfs_store *s, const char *secret_id,
			  uint32_t version, int with_blobs,
			  struct sfs_version_rec *out, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	memset(out, 0, sizeof(*out));
	pg_a_text(&a, secret_id);
	pg_a_i64(&a, version);
	rc = pg_run(PG(s),
		    with_blobs ? "SELECT " VERSION_COLS ", wrapped_dek, "
				 "ciphertext FROM versions WHERE "
				 "secret_id = $1 AND version = $2"
			       : "SELECT " VERSION_COLS " FROM versions WHERE "
				 "secret_id = $1 AND version = $2",
		    &a, &r, err, "look up version");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "secret '%s' version %u: not found",
				   secret_id, (unsigned)version);
	else if (rc == SFS_OK)
		rc = rec_row(r, 0, &store_versions, out, err);
	if (rc == SFS_OK && with_blobs)
		rc = pg_col_blob(r, 0, 9, &out->wrapped_dek, err);
	if (rc == SFS_OK && with_blobs)
		rc = pg_col_blob(r, 0, 10, &out->ciphertext, err);
	if (rc != SFS_OK)
		sfs_version_rec_release(out);
	PQclear(r);
	return rc;
}

static int pg_version_list(struct sfs_store *s, const char *secret_id,
			   sfs_version_cb cb, void *arg, struct sfs_error *err)
{
	union store_cb c = {.version = cb};
	struct args a = {.n = 0};

	pg_a_text(&a, secret_id);
	return list_recs(PG(s),
			 "SELECT " VERSION_COLS " FROM versions WHERE "
			 "secret_id = $1 ORDER BY version",
			 &a, &store_versions, c, arg, err, "list versions");
}

static int pg_version_insert(struct sfs_store *s,
			     const struct sfs_version_rec *v,
			     struct sfs_error *err)
{
	struct args a = {.n = 0};

	rec_args(&a, &store_versions, v, 1);
	pg_a_blob(&a, v->wrapped_dek.data, v->wrapped_dek.len);
	pg_a_blob(&a, v->ciphertext.data, v->ciphertext.len);
	return change_one(PG(s),
			  "INSERT INTO versions(" VERSION_COLS ", wrapped_dek, "
			  "ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
			  "$9, $10, $11) ON CONFLICT DO NOTHING",
			  &a, SFS_EEXIST, err, "insert version",
			  "secret '%s' version %u: already exists",
			  v->secret_id, (unsigned)v->version);
}

static int pg_version_set_state(struct sfs_store *s, const char *secret_id,
				uint32_t version, int state,
				struct sfs_error *err)
{
	struct pg *p = PG(s);
	int destroy = state == SFS_STATE_DESTROYED;
	struct args a = {.n = 0};
	int rc;

	pg_a_text(&a, secret_id);
	pg_a_i64(&a, version);
	pg_a_i64(&a, state);
	rc = change_one(
	    p,
	    destroy ? "UPDATE versions SET state = $3, wrapped_dek = "
		      "NULL, ciphertext = NULL WHERE secret_id = $1 "
		      "AND version = $2"
		    : "UPDATE versions SET state = $3 WHERE "
		      "secret_id = $1 AND version = $2",
	    &a, SFS_ENOENT, err, "set version state",
	    "secret '%s' version %u: not found", secret_id, (unsigned)version);
	if (rc == SFS_OK && destroy)
		p->scrub_txn = 1;
	return rc;
}

/* ---- roles -------------------------------------------------------------- */

/* Grant (code SFS_EEXIST: already granted) or revoke (SFS_ENOENT: not
 * granted) role for principal with sql. */
static int role_change(struct sfs_store *s, const char *sql, int code,
		       const char *what, const char *role,
		       const char *principal, struct sfs_error *err)
{
	struct args a = {.n = 0};

	pg_a_text(&a, role);
	pg_a_text(&a, principal);
	return change_one(
	    PG(s), sql, &a, code, err, what, "role '%s' for '%s': %s", role,
	    principal, code == SFS_EEXIST ? "already granted" : "not granted");
}

static int pg_role_grant(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err)
{
	return role_change(s,
			   "INSERT INTO roles(role, principal) VALUES ($1, $2) "
			   "ON CONFLICT DO NOTHING",
			   SFS_EEXIST, "grant role", role, principal, err);
}

static int pg_role_revoke(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err)
{
	return role_change(
	    s, "DELETE FROM roles WHERE role = $1 AND principal = $2",
	    SFS_ENOENT, "revoke role", role, principal, err);
}

static int pg_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
			struct sfs_error *err)
{
	PGresult *r;
	int i, rc;

	rc = pg_run(
	    PG(s), "SELECT role, principal FROM roles ORDER BY role, principal",
	    NULL, &r, err, "list roles");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++)
		rc = cb(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	PQclear(r);
	return rc;
}

/* ---- counts ------------------------------------------------------------- */

static int pg_counts(struct sfs_store *s, uint64_t *secrets, uint64_t *versions,
		     uint64_t *keys, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	pg_a_i64(&a, SFS_STATE_DESTROYED);
	rc = pg_run(PG(s),
		    "SELECT (SELECT count(*) FROM secrets), (SELECT count(*) "
		    "FROM versions WHERE state <> $1), (SELECT count(*) FROM "
		    "kms_keys)",
		    &a, &r, err, "count store rows");
	if (rc == SFS_OK) {
		*secrets = (uint64_t)pg_col_i64(r, 0, 0);
		*versions = (uint64_t)pg_col_i64(r, 0, 1);
		*keys = (uint64_t)pg_col_i64(r, 0, 2);
	}
	PQclear(r);
	return rc;
}

/* ---- audit lines of changes ---------------------------------------------- */

/*
 * The store keeps every change's line (all hosts); the ones this host
 * (hostname and store directory) has not yet synced to its own audit
 * log are pending. audit_del clears the flag instead of deleting: the
 * line stays for `secretfs audit --all-hosts`.
 */
static int pg_audit_add(struct sfs_store *s, const char *line, size_t len,
			int64_t hint, int64_t *seq, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	pg_a_text(&a, p->host);
	pg_a_i64(&a, hint);
	pg_a_blob(&a, line, len);
	rc = pg_run(p,
		    "INSERT INTO audit_changes(host, hint, pending, line) "
		    "VALUES ($1, $2, true, $3) RETURNING seq",
		    &a, &r, err, "add audit line");
	if (rc == SFS_OK && seq)
		*seq = pg_col_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

static int pg_audit_list(struct sfs_store *s, sfs_audit_pending_cb cb,
			 void *arg, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	struct sfs_blob line;
	PGresult *r;
	int i, rc;

	pg_a_text(&a, p->host);
	rc = pg_run(p,
		    "SELECT seq, hint, line FROM audit_changes WHERE host = $1 "
		    "AND pending ORDER BY seq",
		    &a, &r, err, "list audit lines");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = pg_col_blob(r, i, 2, &line, err);
		if (rc == SFS_OK)
			rc = cb(arg, pg_col_i64(r, i, 0), pg_col_i64(r, i, 1),
				line.data, line.len);
		sfs_blob_release(&line);
	}
	PQclear(r);
	return rc;
}

static int pg_audit_del(struct sfs_store *s, int64_t seq, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};

	pg_a_i64(&a, seq);
	pg_a_text(&a, p->host);
	return pg_run_count(p,
			    "UPDATE audit_changes SET pending = false WHERE "
			    "seq = $1 AND host = $2",
			    &a, NULL, err, "settle audit line");
}

static int pg_audit_any(struct sfs_store *s, int *any, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};

	pg_a_text(&a, p->host);
	return get_bool(p,
			"SELECT EXISTS(SELECT 1 FROM audit_changes WHERE "
			"host = $1 AND pending)",
			&a, any, err, "audit lines pending");
}

static int pg_audit_history(struct sfs_store *s, sfs_audit_history_cb cb,
			    void *arg, struct sfs_error *err)
{
	struct sfs_blob line;
	PGresult *r;
	int i, rc;

	rc = pg_run(PG(s), "SELECT host, line FROM audit_changes ORDER BY seq",
		    NULL, &r, err, "list audit lines");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = pg_col_blob(r, i, 1, &line, err);
		if (rc == SFS_OK)
			rc = cb(arg, PQgetvalue(r, i, 0), line.data, line.len);
		sfs_blob_release(&line);
	}
	PQclear(r);
	return rc;
}

/* ---- the operations table ------------------------------------------------ */

const struct sfs_store_ops pg_ops = {
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .meta_get = pg_meta_get,
    .meta_set = pg_meta_set,
    .key_get = pg_key_get,
    .key_list = pg_key_list,
    .key_insert = pg_key_insert,
    .key_update = pg_key_update,
    .key_delete = pg_key_delete,
    .key_in_use = pg_key_in_use,
    .keyver_get = pg_keyver_get,
    .keyver_set = pg_keyver_set,
    .keyver_insert = pg_keyver_insert,
    .secret_get = pg_secret_get,
    .secret_list = pg_secret_list,
    .secret_insert = pg_secret_insert,
    .secret_update = pg_secret_update,
    .secret_delete = pg_secret_delete,
    .version_get = pg_version_get,
    .version_list = pg_version_list,
    .version_insert = pg_version_insert,
    .version_set_state = pg_version_set_state,
    .role_grant = pg_role_grant,
    .role_revoke = pg_role_revoke,
    .role_list = pg_role_list,
    .check = pg_check,
    .counts = pg_counts,
    .generation = pg_generation,
    .secret_list_after = pg_secret_list_after,
    .commit_then = pg_commit_then,
    .audit_add = pg_audit_add,
    .audit_list = pg_audit_list,
    .audit_del = pg_audit_del,
    .audit_any = pg_audit_any,
    .remote_poll = pg_remote_poll,
    .audit_history = pg_audit_history,
    .remote_state = pg_remote_state,
};
