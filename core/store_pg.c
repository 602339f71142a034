/*
 * PostgreSQL storage backend: one shared store for many hosts (SPEC §6),
 * the only file in the tree that includes <libpq-fe.h>. It stores what the
 * core hands it and decides nothing (see store.h); the rules stay in the
 * core, and they stay correct across hosts because every write
 * transaction is serialised store-wide:
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

#define MAX_ARGS   16
#define LOCK_WAIT  "10s"
#define GEN_LOST   (UINT64_C(1) << 63)
#define REQ_BYTES  16
#define RESOLVE_MS 10000 /* how long a lost COMMIT is chased */

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

#define KEY_COLS                                                               \
	"id, name, type, state, description, created_at, created_by, "         \
	"current_version"
#define SECRET_COLS                                                            \
	"id, name, description, status, access_control, allowed, "             \
	"owner_uid, group_gid, mode, default_version, latest_version, "        \
	"kms_key_id, created_at, created_by, changed_at"
#define VERSION_COLS                                                           \
	"secret_id, version, state, created_at, created_by, kms_key_id, "      \
	"kms_key_version, size, format"

struct pg {
	struct sfs_store pub;
	PGconn *conn;
	int readonly;
	int in_txn;	/* a transaction is open: 1 read, 2 write */
	int scrub_txn;	/* this transaction freed blobs */
	uint64_t lost;	/* generations handed out while disconnected */
	char host[320]; /* "hostname:DIR": whose audit log a line is for */
	char *conninfo;
	/* the listener (remote_poll): its own connection, one thread */
	PGconn *listen;
	int64_t next_try_ms;  /* no reconnect before (while lost) */
	int64_t next_poll_ms; /* the safety-net generation poll */
	uint64_t remote_gen;
	int listening; /* atomic: the listener is up (remote_state) */
	/* lmu guards the listener and the fields below: the poller and the
	 * store's user (generation) both read notifications */
	pthread_mutex_t lmu;
	uint64_t notes;	    /* notifications read so far */
	uint64_t poll_seen; /* notes the poller has reported */
	uint64_t gen_seen;  /* notes when fast_gen was read */
	uint64_t fast_gen;  /* the generation, known without asking */
	int64_t fast_at_ms; /* when fast_gen was read from the server */
	int fast_ok;	    /* atomic: fast_gen may be used */
	unsigned char req[REQ_BYTES]; /* this write transaction's request */
	int backend_pid;	      /* the server process that runs it */
	unsigned writes;	      /* old request ids go every 256th */
};

/* Parameters of one statement: text, or binary for bytea. */
struct args {
	const char *v[MAX_ARGS];
	int len[MAX_ARGS];
	int fmt[MAX_ARGS];
	char num[MAX_ARGS][24];
	int n;
};

static struct pg *PG(struct sfs_store *s)
{
	return s->backend;
}

static void a_text(struct args *a, const char *v)
{
	a->v[a->n] = v;
	a->len[a->n] = 0;
	a->fmt[a->n++] = 0;
}

static void a_i64(struct args *a, int64_t v)
{
	snprintf(a->num[a->n], sizeof(a->num[0]), "%" PRId64, v);
	a_text(a, a->num[a->n]);
}

static void a_blob(struct args *a, const void *p, size_t n)
{
	static const char empty;

	a->v[a->n] = p ? p : &empty;
	a->len[a->n] = (int)n;
	a->fmt[a->n++] = 1;
}

/* Map a failed result to a core code (store.h's rule) by SQLSTATE. */
static int map_state(const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (!st)
		return SFS_EIO;
	if (strcmp(st, "23505") == 0)
		return SFS_EEXIST;
	if (strcmp(st, "25006") == 0)
		return SFS_EROFS;
	if (strcmp(st, "53100") == 0)
		return SFS_ENOSPC;
	if (strcmp(st, "53200") == 0)
		return SFS_ENOMEM;
	return SFS_EIO;
}

/* "<what>: <why>": the server's primary message only (the detail may
 * quote a key's value), or the connection's error. */
static int pg_fail(struct pg *p, const PGresult *r, struct sfs_error *err,
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

/*
 * Run sql with args (may be NULL). *out gets the result when it is
 * PGRES_TUPLES_OK or PGRES_COMMAND_OK (the caller clears it); otherwise
 * the mapped error. A failed statement inside a transaction leaves it
 * aborted: the core then rolls back, as it does after any store error.
 */
static int run(struct pg *p, const char *sql, const struct args *a,
	       PGresult **out, struct sfs_error *err, const char *what)
{
	PGresult *r;
	ExecStatusType st;

	*out = NULL;
	r = PQexecParams(p->conn, sql, a ? a->n : 0, NULL, a ? a->v : NULL,
			 a ? a->len : NULL, a ? a->fmt : NULL, 0);
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
static int run_count(struct pg *p, const char *sql, const struct args *a,
		     long *changed, struct sfs_error *err, const char *what)
{
	PGresult *r;
	int rc = run(p, sql, a, &r, err, what);

	if (rc == SFS_OK && changed)
		*changed = PQresultStatus(r) == PGRES_TUPLES_OK
			       ? PQntuples(r)
			       : atol(PQcmdTuples(r));
	PQclear(r);
	return rc;
}

static int not_found(struct sfs_error *err, const char *what, const char *id)
{
	return sfs_error_set(err, SFS_ENOENT, "%s '%s': not found", what, id);
}

static int corrupt(struct sfs_error *err, const char *table)
{
	return sfs_error_set(err, SFS_EIO, "%s: stored row is malformed",
			     table);
}

static int col_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
	const char *v = PQgetvalue(r, row, col);
	size_t n = (size_t)PQgetlength(r, row, col);

	if (n >= cap)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static uint32_t col_u32(const PGresult *r, int row, int col)
{
	return (uint32_t)col_i64(r, row, col);
}

/* A heap copy of a bytea column (text form); NULL or empty gives an empty
 * blob. libpq's own copy is wiped before it is freed. */
static int col_blob(const PGresult *r, int row, int col, struct sfs_blob *out,
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

/* ---- connection and transactions ---------------------------------------- */

static int conn_setup(struct pg *p, struct sfs_error *err)
{
	return run_count(
	    p, "SELECT set_config('lock_timeout', '" LOCK_WAIT "', false)",
	    NULL, NULL, err, "connection setup");
}

/* Before a transaction: a lost connection is reset once. */
static int conn_ensure(struct pg *p, struct sfs_error *err)
{
	if (PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) == PQTRANS_IDLE)
		return SFS_OK;
	PQreset(p->conn);
	if (PQstatus(p->conn) != CONNECTION_OK)
		return pg_fail(p, NULL, err, "connect to the store's server");
	return conn_setup(p, err);
}

static const char begin_read[] = "BEGIN ISOLATION LEVEL REPEATABLE READ";
/* The write transaction's request id goes in with the lock taken: the
 * id is random, not secret, so it travels as a literal. */
static int begin_write_sql(struct pg *p, char *out, size_t cap)
{
	char hex[2 * REQ_BYTES + 1];
	size_t i;

	if (getrandom(p->req, sizeof(p->req), 0) != (ssize_t)sizeof(p->req))
		return -1;
	for (i = 0; i < sizeof(p->req); i++)
		snprintf(hex + 2 * i, 3, "%02x", p->req[i]);
	snprintf(out, cap,
		 "BEGIN ISOLATION LEVEL READ COMMITTED;"
		 "SELECT pg_notify('secretfs', '');"
		 "UPDATE sfs_state SET generation = generation + 1;"
		 "INSERT INTO sfs_requests(id) VALUES ('\\x%s');%s"
		 "SELECT pg_backend_pid()",
		 hex,
		 ++p->writes % 256 ? ""
				   : "DELETE FROM sfs_requests WHERE at < "
				     "now() - interval '1 day';");
	return 0;
}

static int begin_once(struct pg *p, int write, struct sfs_error *err)
{
	char sql[512];
	PGresult *r;
	int rc = SFS_OK;

	if (write && begin_write_sql(p, sql, sizeof(sql)) != 0)
		return sfs_error_set(err, SFS_EIO, "begin: no random bytes");
	r = PQexec(p->conn, write ? sql : begin_read);
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = pg_fail(p, r, err, "begin");
	else if (write && PQntuples(r) != 1)
		rc = corrupt(err, "sfs_state");
	else if (write)
		p->backend_pid = (int)col_i64(r, 0, 0);
	PQclear(r);
	if (rc != SFS_OK && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	return rc;
}

static int pg_begin(struct sfs_store *s, int write, struct sfs_error *err)
{
	struct pg *p = PG(s);
	int rc;

	if (write && p->readonly)
		return sfs_error_set(err, SFS_EROFS,
				     "begin: store opened read-only");
	rc = conn_ensure(p, err);
	if (rc == SFS_OK)
		rc = begin_once(p, write, err);
	/* the server restarted since the last call: one fresh connection */
	if (rc != SFS_OK && PQstatus(p->conn) != CONNECTION_OK &&
	    conn_ensure(p, NULL) == SFS_OK) {
		sfs_error_clear(err);
		rc = begin_once(p, write, err);
	}
	p->in_txn = rc == SFS_OK ? 1 + !!write : 0;
	p->scrub_txn = 0;
	return rc;
}

static void pg_rollback(struct sfs_store *s)
{
	struct pg *p = PG(s);

	if (PQtransactionStatus(p->conn) != PQTRANS_IDLE &&
	    PQstatus(p->conn) == CONNECTION_OK)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	p->in_txn = 0;
	p->scrub_txn = 0;
}

static int64_t mono_ms(void);

/* ---- outcome unknown ----------------------------------------------------- */

static struct {
	int cut; /* 1: after COMMIT is sent, 2: before */
	void (*hook)(void *arg);
	void *arg;
	int deadline_ms;
} test_cut;

void sfs_store_pg_test_cut(int when, void (*hook)(void *arg), void *arg,
			   int deadline_ms)
{
	test_cut.cut = when;
	test_cut.hook = hook;
	test_cut.arg = arg;
	test_cut.deadline_ms = deadline_ms;
}

/* COMMIT, or (tests) COMMIT with its connection cut. */
static PGresult *commit_send(struct pg *p)
{
	int cut = test_cut.cut;

	if (!cut)
		return PQexec(p->conn, "COMMIT");
	test_cut.cut = 0;
	if (cut == 1 && PQsendQuery(p->conn, "COMMIT"))
		while (PQflush(p->conn) > 0)
			;
	shutdown(PQsocket(p->conn), SHUT_RDWR);
	if (test_cut.hook)
		test_cut.hook(test_cut.arg);
	return cut == 1 ? PQgetResult(p->conn) : PQexec(p->conn, "COMMIT");
}

/* On a fresh connection: end the old backend if it still lives (its
 * transaction then ends one way or the other), then look the request
 * up. 1 committed, 0 not, -1 no answer. */
static int request_lookup(struct pg *p)
{
	struct args a = {.n = 0};
	char pid[24];
	PGresult *r;
	int found = -1, i;

	snprintf(pid, sizeof(pid), "%d", p->backend_pid);
	a_text(&a, pid);
	for (i = 0; i < 50; i++) {
		if (run(p,
			"SELECT count(pg_terminate_backend(pid)) FROM "
			"pg_stat_activity WHERE pid = $1::int",
			&a, &r, NULL, "end the old backend") != SFS_OK)
			return -1;
		found = (int)col_i64(r, 0, 0);
		PQclear(r);
		if (!found)
			break;
		usleep(20000);
	}
	a.n = 0;
	a_blob(&a, p->req, sizeof(p->req));
	if (run(p, "SELECT count(*) FROM sfs_requests WHERE id = $1", &a, &r,
		NULL, "look up the request") != SFS_OK)
		return -1;
	found = col_i64(r, 0, 0) > 0;
	PQclear(r);
	return found;
}

/*
 * The connection died during COMMIT: reconnect (as long as the deadline
 * allows) and learn from the request id whether the change committed.
 */
static int commit_resolve(struct pg *p, struct sfs_error *err)
{
	int64_t end =
	    mono_ms() +
	    (test_cut.deadline_ms > 0 ? test_cut.deadline_ms : RESOLVE_MS);
	int found = -1;

	while (found < 0) {
		PQreset(p->conn);
		if (PQstatus(p->conn) == CONNECTION_OK &&
		    conn_setup(p, NULL) == SFS_OK)
			found = request_lookup(p);
		if (found < 0 && mono_ms() >= end)
			return sfs_error_set(err, SFS_EIO,
					     "commit: outcome unknown (the "
					     "server did not answer in time; "
					     "see user.secret.latest_version)");
		if (found < 0)
			usleep(200000);
	}
	return found ? SFS_OK
		     : sfs_error_set(err, SFS_EIO,
				     "commit: the connection was lost and the "
				     "change was not made");
}

static int pg_commit(struct sfs_store *s, struct sfs_error *err)
{
	struct pg *p = PG(s);
	PGresult *r = commit_send(p);
	int rc = SFS_OK;

	/* COMMIT of an aborted transaction "succeeds" as ROLLBACK */
	if (PQresultStatus(r) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus(r), "COMMIT") != 0)
		rc = sfs_error_set(err, SFS_EIO,
				   "commit: the transaction was rolled back");
	else if (PQresultStatus(r) != PGRES_COMMAND_OK &&
		 PQstatus(p->conn) == CONNECTION_BAD && p->in_txn == 2)
		rc = commit_resolve(p, err);
	else if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = pg_fail(p, r, err, "commit");
	PQclear(r);
	if (rc != SFS_OK) {
		pg_rollback(s);
		return rc;
	}
	p->in_txn = 0;
	__atomic_store_n(&p->fast_ok, 0, __ATOMIC_RELEASE);
	if (p->scrub_txn)
		PQclear(PQexec(p->conn, "VACUUM versions, kms_key_versions"));
	p->scrub_txn = 0;
	return SFS_OK;
}

/* ---- meta ------------------------------------------------------------- */

static int pg_meta_get(struct sfs_store *s, const char *name,
		       struct sfs_blob *out, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	out->data = NULL;
	out->len = 0;
	a_text(&a, name);
	rc = run(p, "SELECT value FROM meta WHERE name = $1", &a, &r, err,
		 "meta");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = not_found(err, "meta", name);
	else if (rc == SFS_OK)
		rc = col_blob(r, 0, 0, out, err);
	PQclear(r);
	return rc;
}

static int pg_meta_set(struct sfs_store *s, const char *name, const void *v,
		       size_t len, struct sfs_error *err)
{
	struct args a = {.n = 0};

	a_text(&a, name);
	a_blob(&a, v, len);
	return run_count(PG(s),
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
	if (col_text(r, i, 0, k->id, sizeof(k->id)) ||
	    col_text(r, i, 1, k->name, sizeof(k->name)) ||
	    col_text(r, i, 4, k->description, sizeof(k->description)) ||
	    col_text(r, i, 6, k->created_by, sizeof(k->created_by)))
		return corrupt(err, "kms_keys");
	k->type = (int)col_i64(r, i, 2);
	k->state = (int)col_i64(r, i, 3);
	k->created_at = col_i64(r, i, 5);
	k->current_version = col_u32(r, i, 7);
	return SFS_OK;
}

/* Ids are UUIDs; a name may look like one, so an id match wins. */
static int pg_key_get(struct sfs_store *s, const char *id_or_name,
		      struct sfs_key_rec *out, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	a_text(&a, id_or_name);
	rc = run(PG(s),
		 "SELECT " KEY_COLS " FROM kms_keys WHERE id = $1 OR name = $1 "
		 "ORDER BY id = $1 DESC LIMIT 1",
		 &a, &r, err, "look up kms key");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = not_found(err, "kms key", id_or_name);
	else if (rc == SFS_OK)
		rc = key_row(r, 0, out, err);
	PQclear(r);
	return rc;
}

static int pg_key_list(struct sfs_store *s, sfs_key_cb cb, void *arg,
		       struct sfs_error *err)
{
	struct sfs_key_rec k;
	PGresult *r;
	int i, rc;

	rc = run(PG(s), "SELECT " KEY_COLS " FROM kms_keys ORDER BY name", NULL,
		 &r, err, "list kms keys");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = key_row(r, i, &k, err);
		if (rc == SFS_OK)
			rc = cb(arg, &k);
	}
	PQclear(r);
	return rc;
}

static int pg_key_insert(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, k->id);
	a_text(&a, k->name);
	a_i64(&a, k->type);
	a_i64(&a, k->state);
	a_text(&a, k->description);
	a_i64(&a, k->created_at);
	a_text(&a, k->created_by);
	a_i64(&a, k->current_version);
	rc =
	    run_count(PG(s),
		      "INSERT INTO kms_keys(" KEY_COLS ") VALUES "
		      "($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
		      &a, &n, err, "insert kms key");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_EEXIST,
				   "kms key '%s': already exists", k->name);
	return rc;
}

static int pg_key_update(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, k->id);
	a_i64(&a, k->state);
	a_text(&a, k->description);
	a_i64(&a, k->current_version);
	rc = run_count(PG(s),
		       "UPDATE kms_keys SET state = $2, description = $3, "
		       "current_version = $4 WHERE id = $1",
		       &a, &n, err, "update kms key");
	if (rc == SFS_OK && n == 0)
		rc = not_found(err, "kms key", k->id);
	return rc;
}

/* Its versions (wrapped key material) go with it (ON DELETE CASCADE). */
static int pg_key_delete(struct sfs_store *s, const char *id,
			 struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, id);
	rc = run_count(p, "DELETE FROM kms_keys WHERE id = $1", &a, &n, err,
		       "delete kms key");
	if (rc == SFS_OK && n == 0)
		rc = not_found(err, "kms key", id);
	if (rc == SFS_OK)
		p->scrub_txn = 1;
	return rc;
}

static int pg_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	a_text(&a, id);
	a_i64(&a, SFS_STATE_DESTROYED);
	rc = run(PG(s),
		 "SELECT EXISTS(SELECT 1 FROM versions WHERE kms_key_id = $1 "
		 "AND state <> $2) OR EXISTS(SELECT 1 FROM secrets "
		 "WHERE kms_key_id = $1)",
		 &a, &r, err, "kms key in use");
	if (rc == SFS_OK)
		*in_use = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return rc;
}

static int pg_keyver_get(struct sfs_store *s, const char *key_id,
			 uint32_t version, struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	wrapped->data = NULL;
	wrapped->len = 0;
	a_text(&a, key_id);
	a_i64(&a, version);
	rc = run(PG(s),
		 "SELECT wrapped FROM kms_key_versions "
		 "WHERE key_id = $1 AND version = $2",
		 &a, &r, err, "kms key version");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "kms key '%s' version %u: not found", key_id,
				   (unsigned)version);
	else if (rc == SFS_OK)
		rc = col_blob(r, 0, 0, wrapped, err);
	PQclear(r);
	return rc;
}

static int pg_keyver_insert(struct sfs_store *s, const char *key_id,
			    uint32_t version, const struct sfs_blob *wrapped,
			    int64_t created_at, struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, key_id);
	a_i64(&a, version);
	a_blob(&a, wrapped->data, wrapped->len);
	a_i64(&a, created_at);
	rc = run_count(PG(s),
		       "INSERT INTO kms_key_versions(key_id, version, wrapped, "
		       "created_at) VALUES ($1, $2, $3, $4) "
		       "ON CONFLICT DO NOTHING",
		       &a, &n, err, "insert kms key version");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_EEXIST,
				   "insert kms key version: already exists");
	return rc;
}

static int pg_keyver_set(struct sfs_store *s, const char *key_id,
			 uint32_t version, const struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, key_id);
	a_i64(&a, version);
	a_blob(&a, wrapped->data, wrapped->len);
	rc = run_count(PG(s),
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
	if (col_text(r, i, 0, s->id, sizeof(s->id)) ||
	    col_text(r, i, 1, s->name, sizeof(s->name)) ||
	    col_text(r, i, 2, s->description, sizeof(s->description)) ||
	    col_text(r, i, 5, s->allowed, sizeof(s->allowed)) ||
	    col_text(r, i, 11, s->kms_key_id, sizeof(s->kms_key_id)) ||
	    col_text(r, i, 13, s->created_by, sizeof(s->created_by)))
		return corrupt(err, "secrets");
	s->status = (int)col_i64(r, i, 3);
	s->access_control = (int)col_i64(r, i, 4);
	s->owner = col_u32(r, i, 6);
	s->group = col_u32(r, i, 7);
	s->mode = col_u32(r, i, 8);
	s->default_version = col_u32(r, i, 9);
	s->latest_version = col_u32(r, i, 10);
	s->created_at = col_i64(r, i, 12);
	s->changed_at = col_i64(r, i, 14);
	return SFS_OK;
}

/* Every column of a secret, numbered as in SECRET_COLS; for an update
 * (all 0) without created_at and created_by, changed_at then $13. */
static void secret_args(struct args *a, const struct sfs_secret_rec *s, int all)
{
	a_text(a, s->id);
	a_text(a, s->name);
	a_text(a, s->description);
	a_i64(a, s->status);
	a_i64(a, s->access_control);
	a_text(a, s->allowed);
	a_i64(a, s->owner);
	a_i64(a, s->group);
	a_i64(a, s->mode);
	a_i64(a, s->default_version);
	a_i64(a, s->latest_version);
	a_text(a, s->kms_key_id);
	if (all) {
		a_i64(a, s->created_at);
		a_text(a, s->created_by);
	}
	a_i64(a, s->changed_at);
}

static int pg_secret_get(struct sfs_store *s, const char *id_or_name,
			 struct sfs_secret_rec *out, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	a_text(&a, id_or_name);
	rc = run(PG(s),
		 "SELECT " SECRET_COLS " FROM secrets WHERE id = $1 OR "
		 "name = $1 ORDER BY id = $1 DESC LIMIT 1",
		 &a, &r, err, "look up secret");
	if (rc == SFS_OK && PQntuples(r) == 0)
		rc = not_found(err, "secret", id_or_name);
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

	rc = run(p, sql, a, &r, err, "list secrets");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = secret_row(r, i, &s, err);
		if (rc == SFS_OK)
			rc = cb(arg, &s);
	}
	PQclear(r);
	return rc;
}

static int pg_secret_list(struct sfs_store *s, sfs_secret_cb cb, void *arg,
			  struct sfs_error *err)
{
	return secret_rows(PG(s),
			   "SELECT " SECRET_COLS " FROM secrets ORDER BY name",
			   NULL, cb, arg, err);
}

static int pg_secret_list_after(struct sfs_store *s, const char *after_name,
				unsigned limit, sfs_secret_cb cb, void *arg,
				struct sfs_error *err)
{
	struct args a = {.n = 0};

	a_text(&a, after_name);
	a_i64(&a, limit);
	return secret_rows(PG(s),
			   "SELECT " SECRET_COLS
			   " FROM secrets WHERE name > $1 "
			   "ORDER BY name LIMIT $2",
			   &a, cb, arg, err);
}

static int pg_secret_insert(struct sfs_store *s, const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	secret_args(&a, r, 1);
	rc = run_count(PG(s),
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
static int pg_secret_update(struct sfs_store *s, const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *res;
	int rc;

	secret_args(&a, r, 0);
	rc = run(PG(s),
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
	else if (rc == SFS_OK && col_i64(res, 0, 1) == 0)
		rc = not_found(err, "secret", r->id);
	PQclear(res);
	return rc;
}

/* Its (destroyed) versions go with it (ON DELETE CASCADE). */
static int pg_secret_delete(struct sfs_store *s, const char *id,
			    struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, id);
	rc = run_count(p, "DELETE FROM secrets WHERE id = $1", &a, &n, err,
		       "delete secret");
	if (rc == SFS_OK && n == 0)
		rc = not_found(err, "secret", id);
	if (rc == SFS_OK)
		p->scrub_txn = 1;
	return rc;
}

/* ---- versions ----------------------------------------------------------- */

static int version_row(const PGresult *r, int i, struct sfs_version_rec *v,
		       struct sfs_error *err)
{
	memset(v, 0, sizeof(*v));
	if (col_text(r, i, 0, v->secret_id, sizeof(v->secret_id)) ||
	    col_text(r, i, 4, v->created_by, sizeof(v->created_by)) ||
	    col_text(r, i, 5, v->kms_key_id, sizeof(v->kms_key_id)))
		return corrupt(err, "versions");
	v->version = col_u32(r, i, 1);
	v->state = (int)col_i64(r, i, 2);
	v->created_at = col_i64(r, i, 3);
	v->kms_key_version = col_u32(r, i, 6);
	v->size = col_u32(r, i, 7);
	v->format = (int)col_i64(r, i, 8);
	return SFS_OK;
}

static int pg_version_get(struct sfs_store *s, const char *secret_id,
			  uint32_t version, int with_blobs,
			  struct sfs_version_rec *out, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	memset(out, 0, sizeof(*out));
	a_text(&a, secret_id);
	a_i64(&a, version);
	rc =
	    run(PG(s),
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
		rc = col_blob(r, 0, 9, &out->wrapped_dek, err);
	if (rc == SFS_OK && with_blobs)
		rc = col_blob(r, 0, 10, &out->ciphertext, err);
	if (rc != SFS_OK)
		sfs_version_rec_release(out);
	PQclear(r);
	return rc;
}

static int pg_version_list(struct sfs_store *s, const char *secret_id,
			   sfs_version_cb cb, void *arg, struct sfs_error *err)
{
	struct sfs_version_rec v;
	struct args a = {.n = 0};
	PGresult *r;
	int i, rc;

	a_text(&a, secret_id);
	rc = run(PG(s),
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

static int pg_version_insert(struct sfs_store *s,
			     const struct sfs_version_rec *v,
			     struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, v->secret_id);
	a_i64(&a, v->version);
	a_i64(&a, v->state);
	a_i64(&a, v->created_at);
	a_text(&a, v->created_by);
	a_text(&a, v->kms_key_id);
	a_i64(&a, v->kms_key_version);
	a_i64(&a, v->size);
	a_i64(&a, v->format);
	a_blob(&a, v->wrapped_dek.data, v->wrapped_dek.len);
	a_blob(&a, v->ciphertext.data, v->ciphertext.len);
	rc = run_count(PG(s),
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

static int pg_version_set_state(struct sfs_store *s, const char *secret_id,
				uint32_t version, int state,
				struct sfs_error *err)
{
	struct pg *p = PG(s);
	int destroy = state == SFS_STATE_DESTROYED;
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, secret_id);
	a_i64(&a, version);
	a_i64(&a, state);
	rc =
	    run_count(p,
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

static int pg_role_grant(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, role);
	a_text(&a, principal);
	rc = run_count(PG(s),
		       "INSERT INTO roles(role, principal) VALUES ($1, $2) "
		       "ON CONFLICT DO NOTHING",
		       &a, &n, err, "grant role");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_EEXIST,
				   "role '%s' for '%s': already granted", role,
				   principal);
	return rc;
}

static int pg_role_revoke(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err)
{
	struct args a = {.n = 0};
	long n = 0;
	int rc;

	a_text(&a, role);
	a_text(&a, principal);
	rc = run_count(PG(s),
		       "DELETE FROM roles WHERE role = $1 AND principal = $2",
		       &a, &n, err, "revoke role");
	if (rc == SFS_OK && n == 0)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "role '%s' for '%s': not granted", role,
				   principal);
	return rc;
}

static int pg_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
			struct sfs_error *err)
{
	PGresult *r;
	int i, rc;

	rc = run(PG(s),
		 "SELECT role, principal FROM roles ORDER BY role, principal",
		 NULL, &r, err, "list roles");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++)
		rc = cb(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	PQclear(r);
	return rc;
}

/* ---- health, counts, generation ----------------------------------------- */

/* The foreign keys keep the rows consistent; what is left to check is
 * the schema version and the state row. */
static int pg_check(struct sfs_store *s, struct sfs_error *err)
{
	PGresult *r;
	int rc;

	rc = run(PG(s), "SELECT schema_version FROM sfs_state", NULL, &r, err,
		 "store check");
	if (rc == SFS_OK &&
	    (PQntuples(r) != 1 || col_i64(r, 0, 0) != SCHEMA_VERSION))
		rc = sfs_error_set(err, SFS_EIO,
				   "store integrity check: sfs_state is not "
				   "one row of schema version %d",
				   SCHEMA_VERSION);
	PQclear(r);
	return rc;
}

static int pg_counts(struct sfs_store *s, uint64_t *secrets, uint64_t *versions,
		     uint64_t *keys, struct sfs_error *err)
{
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	a_i64(&a, SFS_STATE_DESTROYED);
	rc = run(PG(s),
		 "SELECT (SELECT count(*) FROM secrets), (SELECT count(*) FROM "
		 "versions WHERE state <> $1), (SELECT count(*) FROM kms_keys)",
		 &a, &r, err, "count store rows");
	if (rc == SFS_OK) {
		*secrets = (uint64_t)col_i64(r, 0, 0);
		*versions = (uint64_t)col_i64(r, 0, 1);
		*keys = (uint64_t)col_i64(r, 0, 2);
	}
	PQclear(r);
	return rc;
}

/*
 * The generation: known without a round trip while the daemon's listener
 * is up and quiet (gen_fast), else one query; when it cannot be answered,
 * a value never returned before, so that every cache keyed on it is
 * dropped. Inside a write transaction
 * the counter holds this transaction's own, uncommitted bump, which a
 * rollback would hand to the next writer's different change: a fresh
 * value then too.
 */
/* lmu held: read what the listener has; 0, or -1 when it is gone. */
static int listen_drain(struct pg *p)
{
	PGnotify *n;

	if (!p->listen || PQstatus(p->listen) != CONNECTION_OK ||
	    !PQconsumeInput(p->listen))
		return -1;
	while ((n = PQnotifies(p->listen))) {
		p->notes++;
		PQfreemem(n);
	}
	return 0;
}

/* Without a round trip: the last generation read, while the listener is
 * up, has heard of no change since, and that read is under 1 s old. */
static int gen_fast(struct pg *p, uint64_t *g, int *listening)
{
	int fast = 0;

	*listening = 0;
	if (pthread_mutex_trylock(&p->lmu) != 0)
		return 0;
	if (listen_drain(p) == 0) {
		*listening = 1;
		fast = __atomic_load_n(&p->fast_ok, __ATOMIC_ACQUIRE) &&
		       p->notes == p->gen_seen &&
		       mono_ms() - p->fast_at_ms < 1000;
		*g = p->fast_gen;
		p->gen_seen = p->notes;
	}
	pthread_mutex_unlock(&p->lmu);
	return fast;
}

static uint64_t gen_query(struct pg *p)
{
	uint64_t g = 0;
	PGresult *r;

	if (PQstatus(p->conn) != CONNECTION_OK)
		PQreset(p->conn);
	r = PQexec(p->conn, "SELECT generation FROM sfs_state");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		g = (uint64_t)col_i64(r, 0, 0);
	PQclear(r);
	return g;
}

static uint64_t pg_generation(struct sfs_store *s)
{
	struct pg *p = PG(s);
	int listening;
	uint64_t g = 0;

	if (p->in_txn == 2)
		return GEN_LOST | ++p->lost;
	if (gen_fast(p, &g, &listening))
		return g;
	g = gen_query(p);
	if (!g)
		return GEN_LOST | ++p->lost;
	if (listening) {
		pthread_mutex_lock(&p->lmu);
		p->fast_gen = g;
		p->fast_at_ms = mono_ms();
		__atomic_store_n(&p->fast_ok, 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&p->lmu);
	}
	return g;
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

	a_text(&a, p->host);
	a_i64(&a, hint);
	a_blob(&a, line, len);
	rc = run(p,
		 "INSERT INTO audit_changes(host, hint, pending, line) "
		 "VALUES ($1, $2, true, $3) RETURNING seq",
		 &a, &r, err, "add audit line");
	if (rc == SFS_OK && seq)
		*seq = col_i64(r, 0, 0);
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

	a_text(&a, p->host);
	rc = run(p,
		 "SELECT seq, hint, line FROM audit_changes WHERE host = $1 "
		 "AND pending ORDER BY seq",
		 &a, &r, err, "list audit lines");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = col_blob(r, i, 2, &line, err);
		if (rc == SFS_OK)
			rc = cb(arg, col_i64(r, i, 0), col_i64(r, i, 1),
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

	a_i64(&a, seq);
	a_text(&a, p->host);
	return run_count(p,
			 "UPDATE audit_changes SET pending = false WHERE "
			 "seq = $1 AND host = $2",
			 &a, NULL, err, "settle audit line");
}

static int pg_audit_any(struct sfs_store *s, int *any, struct sfs_error *err)
{
	struct pg *p = PG(s);
	struct args a = {.n = 0};
	PGresult *r;
	int rc;

	a_text(&a, p->host);
	rc = run(p,
		 "SELECT EXISTS(SELECT 1 FROM audit_changes WHERE host = $1 "
		 "AND pending)",
		 &a, &r, err, "audit lines pending");
	if (rc == SFS_OK)
		*any = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return rc;
}

static int pg_audit_history(struct sfs_store *s, sfs_audit_history_cb cb,
			    void *arg, struct sfs_error *err)
{
	struct sfs_blob line;
	PGresult *r;
	int i, rc;

	rc = run(PG(s), "SELECT host, line FROM audit_changes ORDER BY seq",
		 NULL, &r, err, "list audit lines");
	for (i = 0; rc == SFS_OK && i < PQntuples(r); i++) {
		rc = col_blob(r, i, 1, &line, err);
		if (rc == SFS_OK)
			rc = cb(arg, PQgetvalue(r, i, 0), line.data, line.len);
		sfs_blob_release(&line);
	}
	PQclear(r);
	return rc;
}

/* The store-wide lock ends with COMMIT: after() runs just past it. Two
 * writers of one host may then append their lines in either order; each
 * line carries its time. */
static int pg_commit_then(struct sfs_store *s, void (*after)(void *arg),
			  void *arg, struct sfs_error *err)
{
	int rc = pg_commit(s, err);

	if (rc == SFS_OK && after)
		after(arg);
	return rc;
}

/* ---- the listener ----------------------------------------------------------
 */

static PGconn *connect_with_deadlines(const char *conninfo);

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* LISTEN on a fresh connection, at most once a second while the server
 * is away. 0, or -1: no listener. */
static int listen_up(struct pg *p, int64_t now)
{
	PGresult *r;

	if (now < p->next_try_ms)
		return -1;
	p->next_try_ms = now + 1000;
	PQfinish(p->listen);
	p->listen = connect_with_deadlines(p->conninfo);
	if (PQstatus(p->listen) == CONNECTION_OK) {
		r = PQexec(p->listen, "LISTEN secretfs");
		if (PQresultStatus(r) == PGRES_COMMAND_OK) {
			PQclear(r);
			return 0;
		}
		PQclear(r);
	}
	PQfinish(p->listen);
	p->listen = NULL;
	return -1;
}

/* The safety net: the generation read on the listener's connection. */
static int listen_poll(struct pg *p)
{
	PGresult *r = PQexec(p->listen, "SELECT generation FROM sfs_state");
	uint64_t g = 0;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		g = (uint64_t)col_i64(r, 0, 0);
	PQclear(r);
	if (!g)
		return -1;
	if (g == p->remote_gen)
		return 0;
	p->remote_gen = g;
	return 1;
}

/*
 * 1 when another connection (any host) may have committed a change since
 * the last call: a notification came, the generation poll (once a second)
 * saw the counter move, or there is no listener (lost, or just back, so
 * notifications may have been missed): fail closed. 0 when nothing
 * changed. Never blocks on a live connection; reconnecting is tried once
 * a second and waits at most connect_timeout.
 */
static int remote_poll_locked(struct pg *p)
{
	int64_t now = mono_ms();
	int changed = 0;

	if (!p->listen || PQstatus(p->listen) != CONNECTION_OK) {
		__atomic_store_n(&p->listening, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&p->fast_ok, 0, __ATOMIC_RELEASE);
		if (listen_up(p, now) != 0)
			return 1;
		__atomic_store_n(&p->listening, 1, __ATOMIC_RELAXED);
		changed = 1;
	}
	if (listen_drain(p) != 0) {
		__atomic_store_n(&p->listening, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&p->fast_ok, 0, __ATOMIC_RELEASE);
		PQfinish(p->listen);
		p->listen = NULL;
		return 1;
	}
	changed |= p->notes != p->poll_seen;
	p->poll_seen = p->notes;
	if (now >= p->next_poll_ms) {
		p->next_poll_ms = now + 1000;
		changed |= listen_poll(p) != 0;
	}
	return changed;
}

static int pg_remote_poll(struct sfs_store *s)
{
	struct pg *p = PG(s);
	int changed;

	pthread_mutex_lock(&p->lmu);
	changed = remote_poll_locked(p);
	pthread_mutex_unlock(&p->lmu);
	return changed;
}

/* Called under the caller's lock on the store (the main connection);
 * reads only the flag the poller thread sets. */
static int pg_remote_state(struct sfs_store *s, char *out, size_t cap)
{
	struct pg *p = PG(s);
	int up = __atomic_load_n(&p->listening, __ATOMIC_RELAXED);

	snprintf(out, cap, "postgresql %s:%s listener %s",
		 PQhost(p->conn) ? PQhost(p->conn) : "?",
		 PQport(p->conn) ? PQport(p->conn) : "?", up ? "up" : "down");
	return up;
}

static void pg_close(struct sfs_store *s)
{
	struct pg *p = PG(s);

	PQfinish(p->listen);
	PQfinish(p->conn);
	pthread_mutex_destroy(&p->lmu);
	free(p->conninfo);
	free(p);
}

static const struct sfs_store_ops pg_ops = {
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

static PGconn *connect_with_deadlines(const char *conninfo)
{
	static const char *const keys[] = {
	    "connect_timeout",	   "keepalives",       "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "tcp_user_timeout",
	    "application_name",	   "dbname",	       NULL};
	const char *vals[] = {"5",     "1",	   "5",	     "2", "3",
			      "10000", "secretfs", conninfo, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);

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
	rc = run(p,
		 "SELECT CASE WHEN to_regclass('sfs_state') IS NULL THEN 0 "
		 "ELSE 1 END",
		 NULL, &r, err, "read the store's schema");
	if (rc == SFS_OK && PQgetvalue(r, 0, 0)[0] == '1') {
		PQclear(r);
		rc = run(p, "SELECT schema_version FROM sfs_state", NULL, &r,
			 err, "read the store's schema");
		if (rc == SFS_OK && PQntuples(r) == 1)
			*out = (int)col_i64(r, 0, 0);
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

	rc = run_count(p, "BEGIN", NULL, NULL, err, "migrate");
	if (rc == SFS_OK && from > 0)
		rc = run_count(p, "SELECT 1 FROM sfs_state FOR UPDATE", NULL,
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
		rc = run_count(p, sql, NULL, NULL, err, "migrate");
	if (rc == SFS_OK)
		return run_count(p, "COMMIT", NULL, NULL, err, "migrate");
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
	p->conn = connect_with_deadlines(conninfo);
	if (!p->conninfo)
		rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
	else if (!p->conn || PQstatus(p->conn) != CONNECTION_OK)
		rc = pg_fail(p, NULL, err, "connect to the store's server");
	else
		rc = conn_setup(p, err);
	if (rc == SFS_OK)
		rc = schema(p, create && !readonly, err);
	if (rc != SFS_OK) {
		pg_close(&p->pub);
		return rc;
	}
	*out = &p->pub;
	return SFS_OK;
}
