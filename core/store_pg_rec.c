/*
 * PostgreSQL backend, records: meta, KMS keys and their versions,
 * secrets, versions, roles, the health check and counts, and the audit
 * lines of changes. Parameters travel apart from the SQL text; blobs are
 * bytea in binary.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "secretfs/principal.h"
#include "secretfs/store.h"
#include "store_pg.h"

/* ---- meta ------------------------------------------------------------- */

int pg_meta_get(struct sfs_store *s, const char *name,
		       struct sfs_blob *out, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	out->data = NULL;
	out->len = 0;
	pg_a_text(&a, name);
	rc = pg_run(p, "SELECT value FROM meta WHERE name = $1", &a, &r, err,
		 "meta");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = pg_not_found(err, "meta", name);
	else if (rc == SFS_OK)
		rc = pg_col_blob(r, 0, 0, out, err);
	PQclear(r);
	return rc;
}

int pg_meta_set(struct sfs_store *s, const char *name, const void *v,
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

/* ---- KMS keys ----------------------------------------------------------- */

static int key_row(const PGresult *r, int i, struct sfs_key_rec *k,
		   struct sfs_error *err)
{
	memset(k, 0, sizeof(*k));
	if (pg_col_text(r, i, 0, k->id, sizeof(k->id)) ||
	    pg_col_text(r, i, 1, k->name, sizeof(k->name)) ||
	    pg_col_text(r, i, 4, k->description, sizeof(k->description)) ||
	    pg_col_text(r, i, 6, k->created_by, sizeof(k->created_by)))
		return pg_corrupt(err, "kms_keys");
	k->type = (int)pg_col_i64(r, i, 2);
	k->state = (int)pg_col_i64(r, i, 3);
	k->created_at = pg_col_i64(r, i, 5);
	k->current_version = pg_col_u32(r, i, 7);
	return SFS_OK;
}

/* Ids are UUIDs; a name may look like one, so an id match wins. */
int pg_key_get(struct sfs_store *s, const char *id_or_name,
		      struct sfs_key_rec *out, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	pg_a_text(&a, id_or_name);
	rc = pg_run(PG(s),
		 "SELECT " KEY_COLS " FROM kms_keys WHERE id = $1 OR name = $1 "
		 "ORDER BY id = $1 DESC LIMIT 1",
		 &a, &r, err, "look up kms key");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = pg_not_found(err, "kms key", id_or_name);
	else if (rc == SFS_OK)
		rc = key_row(r, 0, out, err);
	PQclear(r);
	return rc;
}

int pg_key_list(struct sfs_store *s, sfs_key_cb cb, void *arg,
		       struct sfs_error *err)
{
	struct sfs_key_rec k;
	PGresult *r;
	int i, rc;

	rc = pg_run(PG(s), "SELECT " KEY_COLS " FROM kms_keys ORDER BY name", NULL,
		 &r, err, "list kms keys");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = key_row(r, i, &k, err);
		if (rc == SFS_OK)
			rc = cb(arg, &k);
	}
	PQclear(r);
	return rc;
}

int pg_key_insert(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, k->id);
	pg_a_text(&a, k->name);
	pg_a_i64(&a, k->type);
	pg_a_i64(&a, k->state);
	pg_a_text(&a, k->description);
	pg_a_i64(&a, k->created_at);
	pg_a_text(&a, k->created_by);
	pg_a_i64(&a, k->current_version);
	rc =
	    pg_run_count(PG(s),
		      "INSERT INTO kms_keys(" KEY_COLS ") VALUES "
		      "($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
		      &a, &n, err, "insert kms key");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_EEXIST,
				   "kms key '%s': already exists", k->name);
	return rc;
}

int pg_key_update(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, k->id);
	pg_a_i64(&a, k->state);
	pg_a_text(&a, k->description);
	pg_a_i64(&a, k->current_version);
	rc = pg_run_count(PG(s),
		       "UPDATE kms_keys SET state = $2, description = $3, "
		       "current_version = $4 WHERE id = $1",
		       &a, &n, err, "update kms key");
	if (rc == SFS_OK && n == 0)
		rc = pg_not_found(err, "kms key", k->id);
	return rc;
}

/* Run sql (a DELETE of the row with id $1; what is "delete THING"); the
 * commit then vacuums, so the deleted blobs leave the tables' pages. */
static int delete_by_id(struct sfs_store *s, const char *sql,
			const char *what, const char *id,
			struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, id);
	rc = pg_run_count(p, sql, &a, &n, err, what);
	if (rc == SFS_OK && n == 0)
		rc = pg_not_found(err, what + strlen("delete "), id);
	if (rc == SFS_OK)
		p->scrub_txn = 1;
	return rc;
}

/* Its versions (wrapped key material) go with it (ON DELETE CASCADE). */
int pg_key_delete(struct sfs_store *s, const char *id,
			 struct sfs_error *err)
{
	return delete_by_id(s, "DELETE FROM kms_keys WHERE id = $1",
			    "delete kms key", id, err);
}

int pg_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	pg_a_text(&a, id);
	pg_a_i64(&a, SFS_STATE_DESTROYED);
	rc = pg_run(PG(s),
		 "SELECT EXISTS(SELECT 1 FROM versions WHERE kms_key_id = $1 "
		 "AND state <> $2) OR EXISTS(SELECT 1 FROM secrets "
		 "WHERE kms_key_id = $1)",
		 &a, &r, err, "kms key in use");
	if (rc == SFS_OK)
		*in_use = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return rc;
}

int pg_keyver_get(struct sfs_store *s, const char *key_id,
			 uint32_t version, struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	wrapped->data = NULL;
	wrapped->len = 0;
	pg_a_text(&a, key_id);
	pg_a_i64(&a, version);
	rc = pg_run(PG(s),
		 "SELECT wrapped FROM kms_key_versions "
		 "WHERE key_id = $1 AND version = $2",
		 &a, &r, err, "kms key version");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "kms key '%s' version %u: not found", key_id,
				   (unsigned)version);
	else if (rc == SFS_OK)
		rc = pg_col_blob(r, 0, 0, wrapped, err);
	PQclear(r);
	return rc;
}

int pg_keyver_insert(struct sfs_store *s, const char *key_id,
			    uint32_t version, const struct sfs_blob *wrapped,
			    int64_t created_at, struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, key_id);
	pg_a_i64(&a, version);
	pg_a_blob(&a, wrapped->data, wrapped->len);
	pg_a_i64(&a, created_at);
	rc = pg_run_count(PG(s),
		       "INSERT INTO kms_key_versions(key_id, version, wrapped, "
		       "created_at) VALUES ($1, $2, $3, $4) "
		       "ON CONFLICT DO NOTHING",
		       &a, &n, err, "insert kms key version");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_EEXIST,
				   "insert kms key version: already exists");
	return rc;
}

int pg_keyver_set(struct sfs_store *s, const char *key_id,
			 uint32_t version, const struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, key_id);
	pg_a_i64(&a, version);
	pg_a_blob(&a, wrapped->data, wrapped->len);
	rc = pg_run_count(PG(s),
		       "UPDATE kms_key_versions SET wrapped = $3 "
		       "WHERE key_id = $1 AND version = $2",
		       &a, &n, err, "replace kms key version");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "kms key '%s' version %u: not found", key_id,
				   (unsigned)version);
	return rc;
}

/* ---- secrets ------------------------------------------------------------ */

static int secret_row(const PGresult *r, int i, struct sfs_secret_rec *s,
		      struct sfs_error *err)
{
	memset(s, 0, sizeof(*s));
	if (pg_col_text(r, i, 0, s->id, sizeof(s->id)) ||
	    pg_col_text(r, i, 1, s->name, sizeof(s->name)) ||
	    pg_col_text(r, i, 2, s->description, sizeof(s->description)) ||
	    pg_col_text(r, i, 5, s->allowed, sizeof(s->allowed)) ||
	    pg_col_text(r, i, 11, s->kms_key_id, sizeof(s->kms_key_id)) ||
	    pg_col_text(r, i, 13, s->created_by, sizeof(s->created_by)))
		return pg_corrupt(err, "secrets");
	s->status = (int)pg_col_i64(r, i, 3);
	s->access_control = (int)pg_col_i64(r, i, 4);
	s->owner = pg_col_u32(r, i, 6);
	s->group = pg_col_u32(r, i, 7);
	s->mode = pg_col_u32(r, i, 8);
	s->default_version = pg_col_u32(r, i, 9);
	s->latest_version = pg_col_u32(r, i, 10);
	s->created_at = pg_col_i64(r, i, 12);
	s->changed_at = pg_col_i64(r, i, 14);
	sfs_principal_rec_load(s);
	return SFS_OK;
}

/* Every column of a secret, numbered as in SECRET_COLS; for an update
 * (all 0) without created_at and created_by, changed_at then $13. */
static void secret_args(struct args *a, const struct sfs_secret_rec *s, int all)
{
	pg_a_text(a, s->id);
	pg_a_text(a, s->name);
	pg_a_text(a, s->description);
	pg_a_i64(a, s->status);
	pg_a_i64(a, s->access_control);
	pg_a_text(a, s->allowed);
	pg_a_i64(a, s->owner);
	pg_a_i64(a, s->group);
	pg_a_i64(a, s->mode);
	pg_a_i64(a, s->default_version);
	pg_a_i64(a, s->latest_version);
	pg_a_text(a, s->kms_key_id);
	if (all) {
		pg_a_i64(a, s->created_at);
		pg_a_text(a, s->created_by);
	}
	pg_a_i64(a, s->changed_at);
}

int pg_secret_get(struct sfs_store *s, const char *id_or_name,
			 struct sfs_secret_rec *out, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	pg_a_text(&a, id_or_name);
	rc = pg_run(PG(s),
		 "SELECT " SECRET_COLS " FROM secrets WHERE id = $1 OR "
		 "name = $1 ORDER BY id = $1 DESC LIMIT 1",
		 &a, &r, err, "look up secret");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = pg_not_found(err, "secret", id_or_name);
	else if (rc == SFS_OK)
		rc = secret_row(r, 0, out, err);
	PQclear(r);
	return rc;
}

static int secret_rows(struct pg *p, const char *sql, const struct args *a,
		       sfs_secret_cb cb, void *arg, struct sfs_error *err)
{
	struct sfs_secret_rec s;
	PGresult *r;
	int i, rc;

	rc = pg_run(p, sql, a, &r, err, "list secrets");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = secret_row(r, i, &s, err);
		if (rc == SFS_OK)
			rc = cb(arg, &s);
	}
	PQclear(r);
	return rc;
}

int pg_secret_list(struct sfs_store *s, sfs_secret_cb cb, void *arg,
			  struct sfs_error *err)
{
	return secret_rows(PG(s),
			   "SELECT " SECRET_COLS " FROM secrets ORDER BY name",
			   NULL, cb, arg, err);
}

int pg_secret_list_after(struct sfs_store *s, const char *after_name,
				unsigned limit, sfs_secret_cb cb, void *arg,
				struct sfs_error *err)
{
	struct args a = {.n = 0};

	pg_a_text(&a, after_name);
	pg_a_i64(&a, limit);
	return secret_rows(PG(s),
			   "SELECT " SECRET_COLS
			   " FROM secrets WHERE name > $1 "
			   "ORDER BY name LIMIT $2",
			   &a, cb, arg, err);
}

int pg_secret_insert(struct sfs_store *s, const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	secret_args(&a, r, 1);
	rc = pg_run_count(PG(s),
		       "INSERT INTO secrets(" SECRET_COLS ") VALUES ($1, $2, "
		       "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
		       "$15) ON CONFLICT DO NOTHING",
		       &a, &n, err, "insert secret");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_EEXIST,
				   "secret '%s': already exists", r->name);
	return rc;
}

/* One round trip: whether the name is taken by another secret, and the
 * update only when it is not. */
int pg_secret_update(struct sfs_store *s, const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *res;
	int rc;

	secret_args(&a, r, 0);
	rc = pg_run(PG(s),
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
int pg_secret_delete(struct sfs_store *s, const char *id,
			    struct sfs_error *err)
{
	return delete_by_id(s, "DELETE FROM secrets WHERE id = $1",
			    "delete secret", id, err);
}

/* ---- versions ----------------------------------------------------------- */

static int version_row(const PGresult *r, int i, struct sfs_version_rec *v,
		       struct sfs_error *err)
{
	memset(v, 0, sizeof(*v));
	if (pg_col_text(r, i, 0, v->secret_id, sizeof(v->secret_id)) ||
	    pg_col_text(r, i, 4, v->created_by, sizeof(v->created_by)) ||
	    pg_col_text(r, i, 5, v->kms_key_id, sizeof(v->kms_key_id)))
		return pg_corrupt(err, "versions");
	v->version = pg_col_u32(r, i, 1);
	v->state = (int)pg_col_i64(r, i, 2);
	v->created_at = pg_col_i64(r, i, 3);
	v->kms_key_version = pg_col_u32(r, i, 6);
	v->size = pg_col_u32(r, i, 7);
	v->format = (int)pg_col_i64(r, i, 8);
	return SFS_OK;
}

int pg_version_get(struct sfs_store *s, const char *secret_id,
			  uint32_t version, int with_blobs,
			  struct sfs_version_rec *out, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	memset(out, 0, sizeof(*out));
	pg_a_text(&a, secret_id);
	pg_a_i64(&a, version);
	rc =
	    pg_run(PG(s),
		with_blobs ? "SELECT " VERSION_COLS ", wrapped_dek, ciphertext "
			     "FROM versions WHERE secret_id = $1 AND "
			     "version = $2"
			   : "SELECT " VERSION_COLS " FROM versions WHERE "
			     "secret_id = $1 AND version = $2",
		&a, &r, err, "look up version");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "secret '%s' version %u: not found",
				   secret_id, (unsigned)version);
	else if (rc == SFS_OK)
		rc = version_row(r, 0, out, err);
	if (rc == SFS_OK && with_blobs)
		rc = pg_col_blob(r, 0, 9, &out->wrapped_dek, err);
	if (rc == SFS_OK && with_blobs)
		rc = pg_col_blob(r, 0, 10, &out->ciphertext, err);
	if (rc != SFS_OK)
		sfs_version_rec_release(out);
	PQclear(r);
	return rc;
}

int pg_version_list(struct sfs_store *s, const char *secret_id,
			   sfs_version_cb cb, void *arg, struct sfs_error *err)
{
	struct sfs_version_rec v;
	struct args a = {.n = 0};
	PGresult *r;
	int i, rc;

	pg_a_text(&a, secret_id);
	rc = pg_run(PG(s),
		 "SELECT " VERSION_COLS " FROM versions WHERE secret_id = $1 "
		 "ORDER BY version",
		 &a, &r, err, "list versions");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = version_row(r, i, &v, err);
		if (rc == SFS_OK)
			rc = cb(arg, &v);
	}
	PQclear(r);
	return rc;
}

int pg_version_insert(struct sfs_store *s,
			     const struct sfs_version_rec *v,
			     struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, v->secret_id);
	pg_a_i64(&a, v->version);
	pg_a_i64(&a, v->state);
	pg_a_i64(&a, v->created_at);
	pg_a_text(&a, v->created_by);
	pg_a_text(&a, v->kms_key_id);
	pg_a_i64(&a, v->kms_key_version);
	pg_a_i64(&a, v->size);
	pg_a_i64(&a, v->format);
	pg_a_blob(&a, v->wrapped_dek.data, v->wrapped_dek.len);
	pg_a_blob(&a, v->ciphertext.data, v->ciphertext.len);
	rc = pg_run_count(PG(s),
		       "INSERT INTO versions(" VERSION_COLS ", wrapped_dek, "
		       "ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
		       "$9, $10, $11) ON CONFLICT DO NOTHING",
		       &a, &n, err, "insert version");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_EEXIST,
				   "secret '%s' version %u: already exists",
				   v->secret_id, (unsigned)v->version);
	return rc;
}

int pg_version_set_state(struct sfs_store *s, const char *secret_id,
				uint32_t version, int state,
				struct sfs_error *err)
{
	struct pg *p = PG(s);
	int destroy = state == SFS_STATE_DESTROYED;
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, secret_id);
	pg_a_i64(&a, version);
	pg_a_i64(&a, state);
	rc =
	    pg_run_count(p,
		      destroy ? "UPDATE versions SET state = $3, wrapped_dek = "
				"NULL, ciphertext = NULL WHERE secret_id = $1 "
				"AND version = $2"
			      : "UPDATE versions SET state = $3 WHERE "
				"secret_id = $1 AND version = $2",
		      &a, &n, err, "set version state");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "secret '%s' version %u: not found",
				   secret_id, (unsigned)version);
	if (rc == SFS_OK && destroy)
		p->scrub_txn = 1;
	return rc;
}

/* ---- roles -------------------------------------------------------------- */

int pg_role_grant(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, role);
	pg_a_text(&a, principal);
	rc = pg_run_count(PG(s),
		       "INSERT INTO roles(role, principal) VALUES ($1, $2) "
		       "ON CONFLICT DO NOTHING",
		       &a, &n, err, "grant role");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_EEXIST,
				   "role '%s' for '%s': already granted", role,
				   principal);
	return rc;
}

int pg_role_revoke(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	pg_a_text(&a, role);
	pg_a_text(&a, principal);
	rc = pg_run_count(PG(s),
		       "DELETE FROM roles WHERE role = $1 AND principal = $2",
		       &a, &n, err, "revoke role");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "role '%s' for '%s': not granted", role,
				   principal);
	return rc;
}

int pg_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
			struct sfs_error *err)
{
	PGresult *r;
	int i, rc;

	rc = pg_run(PG(s),
		 "SELECT role, principal FROM roles ORDER BY role, principal",
		 NULL, &r, err, "list roles");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++)
		rc = cb(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	PQclear(r);
	return rc;
}

/* ---- health, counts, generation ----------------------------------------- */

int pg_counts(struct sfs_store *s, uint64_t *secrets, uint64_t *versions,
		     uint64_t *keys, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	pg_a_i64(&a, SFS_STATE_DESTROYED);
	rc = pg_run(PG(s),
		 "SELECT (SELECT count(*) FROM secrets), (SELECT count(*) FROM "
		 "versions WHERE state <> $1), (SELECT count(*) FROM kms_keys)",
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
int pg_audit_add(struct sfs_store *s, const char *line, size_t len,
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

int pg_audit_list(struct sfs_store *s, sfs_audit_pending_cb cb,
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

int pg_audit_del(struct sfs_store *s, int64_t seq, struct sfs_error *err)
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

int pg_audit_any(struct sfs_store *s, int *any, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	pg_a_text(&a, p->host);
	rc = pg_run(p,
		 "SELECT EXISTS(SELECT 1 FROM audit_changes WHERE host = $1 "
		 "AND pending)",
		 &a, &r, err, "audit lines pending");
	if (rc == SFS_OK)
		*any = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return rc;
}

int pg_audit_history(struct sfs_store *s, sfs_audit_history_cb cb,
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
