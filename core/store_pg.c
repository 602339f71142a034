/*
 * PostgreSQL storage backend: one shared store for many hosts (SPEC §6);
 * with store_pg_*.c, the only files in the tree that include <libpq-fe.h>.
 * It stores what the core hands it and decides nothing (see store.h);
 * the rules stay in the core, and they stay correct across hosts because
 * every write transaction is serialised store-wide:
 *
 *  - begin(write) runs BEGIN (READ COMMITTED) and then
 *    `UPDATE sfs_state SET generation = generation + 1 RETURNING ...`:
 *    the row lock on the one sfs_state row is the store's write lock
 *    (the SQLite backend's DIR/write.lock), held until COMMIT or
 *    ROLLBACK, so a read-modify-write in the core (compare-and-set, the
 *    next version number, lifecycle checks) is atomic across hosts. The
 *    same transaction queues pg_notify(): delivered at COMMIT only, so a
 *    listener hears of committed changes and of nothing else. A writer
 *    waits for the lock at most LOCK_WAIT (lock_timeout), then SFS_EIO.
 *  - begin(read) is one REPEATABLE READ snapshot: every read of one core
 *    call sees one committed state.
 *
 * No statement can fail on a conflict the core expects (a name taken, a
 * version number taken): inserts use ON CONFLICT DO NOTHING and a rename
 * checks the name first, so the transaction stays usable, as SQLite's
 * does, and the core decides what to do with SFS_EEXIST.
 *
 * Generation: the sfs_state counter, one query outside any transaction.
 * A trigger on every table moves it too, so a change made outside
 * secretfs (psql) is seen like any other.
 * When the connection is lost, generation() returns a value never seen
 * before (high bit set), so that no cache is trusted while the store
 * cannot be asked; begin() then reconnects once (PQreset) and fails with
 * SFS_EIO if the server is still away.
 *
 * Statements: each is prepared on the connection at its first run and
 * run by name after that (pg_run), so the server parses and plans it once
 * per connection instead of at every run (about 1 ms of the server's time
 * per new version, measured); a reset connection forgets them. Through a
 * pooler, this needs one that keeps prepared statements (PgBouncer 1.21+
 * with max_prepared_statements, or session pooling).
 *
 * Blobs are bytea, sent in binary (never through SQL text); names and ids
 * are text COLLATE "C", compared bytewise as in SQLite. Times are bigint
 * nanoseconds. Destroying a version clears its blobs; the old row version
 * stays in the table as a dead tuple until VACUUM, which runs on the
 * versions table after each commit that destroyed or deleted blobs (see
 * README, threat model, for what WAL, replicas and backups keep).
 *
 * Schema: sfs_state.schema_version and the migrations array below, applied
 * under the write lock by a read-write open with create set (init) and by
 * every read-write open; a newer schema than this program knows is
 * refused. The tables live in the connection's search_path, so several
 * stores can share one database through `options=-csearch_path=NAME`.
 *
 * Connection deadlines: connect_timeout, TCP keepalives and
 * tcp_user_timeout are set before the user's conninfo (which may override
 * them), so a dead server costs a bounded wait, never a hung thread.
 * Passwords come from ~/.pgpass, PGPASSFILE or a service file: a conninfo
 * with a password is refused (store.c).
 *
 * A connection does not survive fork(): open the store in the process
 * that uses it.
 *
 * Files: this one opens, migrates and closes, and holds the statement
 * helpers store_pg.h declares; store_pg_conn.c the connection,
 * transactions and outcome-unknown resolution; store_pg_listen.c
 * generation() and the listener; store_pg_rec.c the records and the
 * operations table; store_cols.c the record tables' columns, shared with
 * the SQLite backend. Only these files include <libpq-fe.h>.
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

#include <libpq-fe.h>

#include "secretfs/store.h"
#include "store_pg.h"

/*
 * Each migration takes the schema from version i to i + 1. Never edit one
 * that has shipped: add another. The first one also makes sfs_state.
 */
static const char *const migrations[] = {
    /* v1 */
    "CREATE TABLE sfs_state(id integer PRIMARY KEY CHECK (id = 1),"
    " generation bigint NOT NULL, schema_version integer NOT NULL);"
    "INSERT INTO sfs_state VALUES (1, 1, 0);"
    "CREATE TABLE meta(name text COLLATE \"C\" PRIMARY KEY,"
    " value bytea NOT NULL);"
    "CREATE TABLE kms_keys("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " name text COLLATE \"C\" NOT NULL UNIQUE,"
    " type integer NOT NULL, state integer NOT NULL,"
    " description text NOT NULL, created_at bigint NOT NULL,"
    " created_by text NOT NULL, current_version bigint NOT NULL);"
    "CREATE TABLE kms_key_versions("
    " key_id text COLLATE \"C\" NOT NULL"
    "  REFERENCES kms_keys(id) ON DELETE CASCADE,"
    " version bigint NOT NULL, wrapped bytea NOT NULL,"
    " created_at bigint NOT NULL, PRIMARY KEY(key_id, version));"
    "CREATE TABLE secrets("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " name text COLLATE \"C\" NOT NULL UNIQUE,"
    " description text NOT NULL, status integer NOT NULL,"
    " access_control integer NOT NULL, allowed text NOT NULL,"
    " owner_uid bigint NOT NULL, group_gid bigint NOT NULL,"
    " mode bigint NOT NULL, default_version bigint NOT NULL,"
    " latest_version bigint NOT NULL,"
    " kms_key_id text COLLATE \"C\" NOT NULL REFERENCES kms_keys(id),"
    " created_at bigint NOT NULL, created_by text NOT NULL,"
    " changed_at bigint NOT NULL);"
    "CREATE INDEX secrets_by_key ON secrets(kms_key_id);"
    "CREATE TABLE versions("
    " secret_id text COLLATE \"C\" NOT NULL"
    "  REFERENCES secrets(id) ON DELETE CASCADE,"
    " version bigint NOT NULL, state integer NOT NULL,"
    " created_at bigint NOT NULL, created_by text NOT NULL,"
    " kms_key_id text COLLATE \"C\" NOT NULL,"
    " kms_key_version bigint NOT NULL,"
    " size bigint NOT NULL, format integer NOT NULL,"
    " wrapped_dek bytea, ciphertext bytea,"
    " PRIMARY KEY(secret_id, version));"
    "CREATE INDEX versions_by_key ON versions(kms_key_id, state);"
    "CREATE TABLE roles(role text COLLATE \"C\" NOT NULL,"
    " principal text COLLATE \"C\" NOT NULL,"
    " PRIMARY KEY(role, principal));"
    /* every change's audit line, kept (secretfs audit --all-hosts);
     * pending: not yet known durable in its host's DIR/audit.log */
    "CREATE TABLE audit_changes(seq bigserial PRIMARY KEY,"
    " host text COLLATE \"C\" NOT NULL, hint bigint NOT NULL,"
    " pending boolean NOT NULL, line bytea NOT NULL);"
    "CREATE INDEX audit_pending_by_host ON audit_changes(host, seq)"
    " WHERE pending;"
    /* the request ids of committed write transactions (outcome
     * unknown: a lost COMMIT is looked up by its id) */
    "CREATE TABLE sfs_requests(id bytea PRIMARY KEY,"
    " at timestamptz NOT NULL DEFAULT now());"
    /* any change, also one made outside secretfs (psql), moves the
     * generation and wakes the listeners */
    "CREATE FUNCTION sfs_changed() RETURNS trigger LANGUAGE plpgsql"
    " SET search_path FROM CURRENT AS $$ BEGIN"
    " UPDATE sfs_state SET generation = generation + 1;"
    " PERFORM pg_notify('secretfs', ''); RETURN NULL; END $$;"
    "CREATE TRIGGER meta_changed AFTER INSERT OR UPDATE OR DELETE"
    " ON meta FOR EACH STATEMENT EXECUTE FUNCTION sfs_changed();"
    "CREATE TRIGGER kms_keys_changed AFTER INSERT OR UPDATE OR DELETE"
    " ON kms_keys FOR EACH STATEMENT EXECUTE FUNCTION sfs_changed();"
    "CREATE TRIGGER kms_key_versions_changed AFTER INSERT OR UPDATE OR"
    " DELETE ON kms_key_versions FOR EACH STATEMENT"
    " EXECUTE FUNCTION sfs_changed();"
    "CREATE TRIGGER secrets_changed AFTER INSERT OR UPDATE OR DELETE"
    " ON secrets FOR EACH STATEMENT EXECUTE FUNCTION sfs_changed();"
    "CREATE TRIGGER versions_changed AFTER INSERT OR UPDATE OR DELETE"
    " ON versions FOR EACH STATEMENT EXECUTE FUNCTION sfs_changed();"
    "CREATE TRIGGER roles_changed AFTER INSERT OR UPDATE OR DELETE"
    " ON roles FOR EACH STATEMENT EXECUTE FUNCTION sfs_changed();",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

void pg_a_text(struct args *a, const char *v)
{
	a->v[a->n] = v;
	a->len[a->n] = 0;
	a->fmt[a->n++] = 0;
}

void pg_a_i64(struct args *a, int64_t v)
{
	snprintf(a->num[a->n], sizeof(a->num[0]), "%" PRId64, v);
	pg_a_text(a, a->num[a->n]);
}

void pg_a_blob(struct args *a, const void *p, size_t n)
{
	static const char empty;

	a->v[a->n] = p ? p : &empty;
	a->len[a->n] = (int)n;
	a->fmt[a->n++] = 1;
}

/* Map a failed result to a core code (store.h's rule) by SQLSTATE;
 * any other state is SFS_EIO. */
static const struct {
	const char *state;
	int code;
} state_codes[] = {
    {"23505", SFS_EEXIST}, /* unique_violation */
    {"25006", SFS_EROFS},  /* read_only_sql_transaction */
    {"53100", SFS_ENOSPC}, /* disk_full */
    {"53200", SFS_ENOMEM}, /* out_of_memory */
};

static int map_state(const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	size_t i;

	for (i = 0; st && i < sizeof(state_codes) / sizeof(state_codes[0]); i++)
		if (strcmp(st, state_codes[i].state) == 0)
			return state_codes[i].code;
	return SFS_EIO;
}

/* "<what>: <why>": the server's primary message only (the detail may
 * quote a key's value), or the connection's error. */
int pg_fail(struct pg *p, const PGresult *r, struct sfs_error *err,
		   const char *what)
{
	const char *why = NULL;
	char buf[160];
	size_t n;

	if (r)
		why = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	if (!why) {
		snprintf(buf, sizeof(buf), "%s",
			 p->conn ? PQerrorMessage(p->conn) : "no connection");
		n = strcspn(buf, "\n");
		buf[n] = '\0';
		why = buf[0] ? buf : "no answer from the server";
	}
	return sfs_error_set(err, map_state(r), "%s: %s", what, why);
}

/* ---- prepared statements ------------------------------------------------ */

/* The server forgot them: the connection was reset, or is closing. */
void pg_prep_forget(struct pg *p)
{
	int i;

	for (i = 0; i < p->nprep; i++)
		free(p->prep[i]);
	p->nprep = 0;
}

/* PQreset, and the statements prepared on the old backend forgotten:
 * every reconnect of the main connection goes through here (libpq never
 * reconnects by itself). */
void pg_reset(struct pg *p)
{
	PQreset(p->conn);
	pg_prep_forget(p);
}

static void prep_name(char *out, size_t cap, int i)
{
	snprintf(out, cap, "sfs%d", i);
}

/*
 * sql's prepared statement on this connection, prepared at its first
 * use: its index, or -1 to run it unnamed (the table is full, or out of
 * memory). A Parse the server refused puts its result in *fail: the
 * statement's own error, as an unnamed run would have given it.
 */
static int prep_find(struct pg *p, const char *sql, PGresult **fail)
{
	char name[16];
	PGresult *r;
	int i;

	*fail = NULL;
	for (i = 0; i < p->nprep; i++)
		if (strcmp(p->prep[i], sql) == 0)
			return i;
	if (i == PREP_MAX || !(p->prep[i] = strdup(sql)))
		return -1;
	prep_name(name, sizeof(name), i);
	r = PQprepare(p->conn, name, sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		free(p->prep[i]);
		*fail = r;
		return -1;
	}
	PQclear(r);
	return p->nprep++;
}

/* Run sql with args (may be NULL) as a prepared statement. */
static PGresult *pg_exec(struct pg *p, const char *sql, const struct args *a)
{
	static const struct args none = {.n = 0};
	PGresult *fail;
	char name[16];
	int i = prep_find(p, sql, &fail);

	if (!a)
		a = &none;
	if (fail)
		return fail;
	if (i < 0)
		return PQexecParams(p->conn, sql, a->n, NULL, a->v, a->len,
				    a->fmt, 0);
	prep_name(name, sizeof(name), i);
	return PQexecPrepared(p->conn, name, a->n, a->v, a->len, a->fmt, 0);
}

/*
 * Run sql with args (may be NULL). *out gets the result when it is
 * PGRES_TUPLES_OK or PGRES_COMMAND_OK (the caller clears it); otherwise
 * the mapped error. A failed statement inside a transaction leaves it
 * aborted: the core then rolls back, as it does after any store error.
 * Statements are prepared once per connection (pg_exec): the server
 * parses and plans each one once, not at every run.
 */
int pg_run(struct pg *p, const char *sql, const struct args *a,
	       PGresult **out, struct sfs_error *err, const char *what)
{
	PGresult *r;
	ExecStatusType st;

	*out = NULL;
	r = pg_exec(p, sql, a);
	st = PQresultStatus(r);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		*out = r;
		return SFS_OK;
	}
	st = pg_fail(p, r, err, what);
	PQclear(r);
	return (int)st;
}

/* Run a statement whose rows are not needed; *changed (may be NULL) gets
 * the number of rows it changed or returned. */
int pg_run_count(struct pg *p, const char *sql, const struct args *a,
		     long *changed, struct sfs_error *err, const char *what)
{
	PGresult *r;
	int rc = pg_run(p, sql, a, &r, err, what);

	if (rc == SFS_OK && changed)
		*changed = PQresultStatus(r) == PGRES_TUPLES_OK
			       ? PQntuples(r)
			       : atol(PQcmdTuples(r));
	PQclear(r);
	return rc;
}

int pg_not_found(struct sfs_error *err, const char *what, const char *id)
{
	return sfs_error_set(err, SFS_ENOENT, "%s '%s': not found", what, id);
}

int pg_corrupt(struct sfs_error *err, const char *table)
{
	return sfs_error_set(err, SFS_EIO, "%s: stored row is malformed",
			     table);
}

int pg_col_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
	const char *v = PQgetvalue(r, row, col);
	size_t n = (size_t)PQgetlength(r, row, col);

	if (n >= cap)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

int64_t pg_col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* A heap copy of a bytea column (text form); NULL or empty gives an empty
 * blob. libpq's own copy is wiped before it is freed. */
int pg_col_blob(const PGresult *r, int row, int col, struct sfs_blob *out,
		    struct sfs_error *err)
{
	unsigned char *raw;
	size_t n = 0;

	out->data = NULL;
	out->len = 0;
	if (PQgetisnull(r, row, col))
		return SFS_OK;
	raw =
	    PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
	if (!raw)
		return sfs_error_set(err, SFS_ENOMEM, "store: out of memory");
	if (n && !(out->data = malloc(n))) {
		explicit_bzero(raw, n);
		PQfreemem(raw);
		return sfs_error_set(err, SFS_ENOMEM, "store: out of memory");
	}
	if (n)
		memcpy(out->data, raw, n);
	out->len = n;
	explicit_bzero(raw, n);
	PQfreemem(raw);
	return SFS_OK;
}


/* The foreign keys keep the rows consistent; what is left to check is
 * the schema version and the state row. */
int pg_check(struct sfs_store *s, struct sfs_error *err)
{
	PGresult *r;
	int rc;

	rc = pg_run(PG(s), "SELECT schema_version FROM sfs_state", NULL, &r, err,
		 "store check");
	if (rc == SFS_OK &&
	    (PQntuples(r) != 1 || pg_col_i64(r, 0, 0) != SCHEMA_VERSION))
		rc = sfs_error_set(err, SFS_EIO,
				   "store integrity check: sfs_state is not "
				   "one row of schema version %d",
				   SCHEMA_VERSION);
	PQclear(r);
	return rc;
}

void pg_close(struct sfs_store *s)
{
	struct pg *p = PG(s);

	PQfinish(p->listen);
	pg_prep_forget(p);
	PQfinish(p->conn);
	pthread_mutex_destroy(&p->lmu);
	free(p->conninfo);
	free(p);
}


/* ---- open and schema ---------------------------------------------------- */

/* Deadlines first: the user's conninfo (expanded from dbname) may
 * override them. */
/* Server notices (a shutdown warning, say) are not the user's business:
 * errors reach them through struct sfs_error. */
static void notice_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

PGconn *pg_connect_with_deadlines(const char *conninfo, int listener)
{
	static const char *const keys[] = {
	    "connect_timeout",	   "keepalives",       "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "tcp_user_timeout",
	    "application_name",	   "dbname",	       NULL};
	const char *vals[] = {CONNECT_S,
			      "1",
			      "5",
			      "2",
			      "3",
			      "10000",
			      listener ? "secretfs-listener" : "secretfs",
			      conninfo,
			      NULL};
	PGconn *c = listener ? PQconnectStartParams(keys, vals, 1)
			     : PQconnectdbParams(keys, vals, 1);

	if (c)
		PQsetNoticeProcessor(c, notice_quiet, NULL);
	return c;
}

/* The schema version, 0 when the store has no sfs_state table yet. */
static int schema_version(struct pg *p, int *out, struct sfs_error *err)
{
	PGresult *r;
	int rc;

	*out = 0;
	rc = pg_run(p,
		 "SELECT CASE WHEN to_regclass('sfs_state') IS NULL THEN 0 "
		 "ELSE 1 END",
		 NULL, &r, err, "read the store's schema");
	if (rc == SFS_OK && PQgetvalue(r, 0, 0)[0] == '1') {
		PQclear(r);
		rc = pg_run(p, "SELECT schema_version FROM sfs_state", NULL, &r,
			 err, "read the store's schema");
		if (rc == SFS_OK && PQntuples(r) == 1)
			*out = (int)pg_col_i64(r, 0, 0);
	}
	PQclear(r);
	return rc;
}

/* One migration in one transaction: the lock on sfs_state (when it
 * exists) keeps two hosts from migrating at once. */
static int migrate_one(struct pg *p, int from, struct sfs_error *err)
{
	char sql[96];
	int rc;

	rc = pg_run_count(p, "BEGIN", NULL, NULL, err, "migrate");
	if (rc == SFS_OK && from > 0)
		rc = pg_run_count(p, "SELECT 1 FROM sfs_state FOR UPDATE", NULL,
			       NULL, err, "migrate");
	if (rc == SFS_OK) {
		PGresult *r = PQexec(p->conn, migrations[from]);

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = pg_fail(p, r, err, "migrate the store's schema");
		PQclear(r);
	}
	snprintf(sql, sizeof(sql), "UPDATE sfs_state SET schema_version = %d",
		 from + 1);
	if (rc == SFS_OK)
		rc = pg_run_count(p, sql, NULL, NULL, err, "migrate");
	if (rc == SFS_OK)
		return pg_run_count(p, "COMMIT", NULL, NULL, err, "migrate");
	PQclear(PQexec(p->conn, "ROLLBACK"));
	return rc;
}

static int schema(struct pg *p, int create, struct sfs_error *err)
{
	int v, rc;

	rc = schema_version(p, &v, err);
	if (rc == SFS_OK && v == 0 && !create)
		return sfs_error_set(err, SFS_ENOSTORE,
				     "no secretfs store on the server");
	if (rc == SFS_OK && v > SCHEMA_VERSION)
		return sfs_error_set(err, SFS_EIO,
				     "store schema version %d is newer than "
				     "this program's (%d)",
				     v, SCHEMA_VERSION);
	if (rc == SFS_OK && v < SCHEMA_VERSION && p->readonly)
		return sfs_error_set(err, SFS_EIO,
				     "store schema version %d needs a "
				     "read-write open to migrate",
				     v);
	while (rc == SFS_OK && v < SCHEMA_VERSION)
		rc = migrate_one(p, v++, err);
	return rc;
}

static void host_label(struct pg *p, const char *dir)
{
	char name[256];

	if (gethostname(name, sizeof(name)) != 0)
		snprintf(name, sizeof(name), "unknown");
	name[sizeof(name) - 1] = '\0';
	snprintf(p->host, sizeof(p->host), "%s:%.60s", name, dir);
}

/* A conninfo must not carry a password (it would sit in store.conf and in
 * the process's memory for anyone who reads either). */
static int conninfo_check(const char *conninfo, struct sfs_error *err)
{
	PQconninfoOption *opts, *o;
	char *msg = NULL;
	int rc = SFS_OK;

	opts = PQconninfoParse(conninfo, &msg);
	if (!opts)
		rc = sfs_error_set(err, SFS_EINVAL, "bad conninfo: %.*s",
				   (int)strcspn(msg ? msg : "", "\n"),
				   msg ? msg : "out of memory");
	for (o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
			rc = sfs_error_set(err, SFS_EINVAL,
					   "conninfo must not hold a password: "
					   "use ~/.pgpass, PGPASSFILE or a "
					   "service file");
	PQfreemem(msg);
	if (opts)
		PQconninfoFree(opts);
	return rc;
}

int sfs_store_pg_open(const char *conninfo, const char *dir, int create,
		      int readonly, struct sfs_store **out,
		      struct sfs_error *err)
{
	struct pg *p;
	int rc;

	*out = NULL;
	rc = conninfo_check(conninfo, err);
	if (rc != SFS_OK)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	p->pub.ops = &pg_ops;
	p->pub.backend = p;
	pthread_mutex_init(&p->lmu, NULL);
	p->readonly = readonly;
	host_label(p, dir);
	p->conninfo = strdup(conninfo);
	p->conn = pg_connect_with_deadlines(conninfo, 0);
	if (!p->conninfo)
		rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
	else if (!p->conn || PQstatus(p->conn) != CONNECTION_OK)
		rc = pg_fail(p, NULL, err, "connect to the store's server");
	else
		rc = pg_conn_setup(p, err);
	if (rc == SFS_OK)
		rc = schema(p, create && !readonly, err);
	if (rc != SFS_OK) {
		pg_close(&p->pub);
		return rc;
	}
	*out = &p->pub;
	return SFS_OK;
}
