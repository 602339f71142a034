/*
 * PostgreSQL backend, connection and transactions: reconnecting, begin
 * (the sfs_state row lock for a write), rollback, and COMMIT, whose
 * outcome, when the connection is lost on the way, is resolved by
 * looking the transaction's request id up (see store_pg.c).
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

#include "secretfs/store.h"
#include "store_pg.h"

/* ---- connection and transactions ---------------------------------------- */

int pg_conn_setup(struct pg *p, struct sfs_error *err)
{
	return pg_run_count(
	    p, "SELECT set_config('lock_timeout', '" LOCK_WAIT "', false)",
	    NULL, NULL, err, "connection setup");
}

/* Before a transaction: a lost connection is reset once. */
static int conn_ensure(struct pg *p, struct sfs_error *err)
{
	if (PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) == PQTRANS_IDLE)
		return SFS_OK;
	pg_reset(p);
	if (PQstatus(p->conn) != CONNECTION_OK)
		return pg_fail(p, NULL, err, "connect to the store's server");
	return pg_conn_setup(p, err);
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
		rc = pg_corrupt(err, "sfs_state");
	else if (write)
		p->backend_pid = (int)pg_col_i64(r, 0, 0);
	PQclear(r);
	if (rc != SFS_OK && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	return rc;
}

int pg_begin(struct sfs_store *s, int write, struct sfs_error *err)
{
	struct pg *p = PG(s);
	int rc;

	if (write && p->readonly)
		return sfs_error_set(err, SFS_EROFS,
				     "begin: store opened read-only");
	rc = conn_ensure(p, err);
	if (rc == SFS_OK) {
		rc = begin_once(p, write, err);
		/* the server restarted since the last call: one fresh
		 * connection (a reconnect that has just failed is not tried
		 * again: behind a dead link the caller would wait out
		 * connect_timeout twice) */
		if (rc != SFS_OK && PQstatus(p->conn) != CONNECTION_OK &&
		    conn_ensure(p, NULL) == SFS_OK) {
			sfs_error_clear(err);
			rc = begin_once(p, write, err);
		}
	}
	p->in_txn = rc == SFS_OK ? 1 + !!write : 0;
	p->scrub_txn = 0;
	return rc;
}

void pg_rollback(struct sfs_store *s)
{
	struct pg *p = PG(s);

	if (PQtransactionStatus(p->conn) != PQTRANS_IDLE &&
	    PQstatus(p->conn) == CONNECTION_OK)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	p->in_txn = 0;
	p->scrub_txn = 0;
}


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
	pg_a_text(&a, pid);
	for (i = 0; i < 50; i++) {
		if (pg_run(p,
			"SELECT count(pg_terminate_backend(pid)) FROM "
			"pg_stat_activity WHERE pid = $1::int",
			&a, &r, NULL, "end the old backend") != SFS_OK)
			return -1;
		found = (int)pg_col_i64(r, 0, 0);
		PQclear(r);
		if (!found)
			break;
		usleep(20000);
	}
	a.n = 0;
	pg_a_blob(&a, p->req, sizeof(p->req));
	if (pg_run(p, "SELECT count(*) FROM sfs_requests WHERE id = $1", &a, &r,
		NULL, "look up the request") != SFS_OK)
		return -1;
	found = pg_col_i64(r, 0, 0) > 0;
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
	    pg_mono_ms() +
	    (test_cut.deadline_ms > 0 ? test_cut.deadline_ms : RESOLVE_MS);
	int found = -1;

	while (found < 0) {
		pg_reset(p);
		if (PQstatus(p->conn) == CONNECTION_OK &&
		    pg_conn_setup(p, NULL) == SFS_OK)
			found = request_lookup(p);
		if (found < 0 && pg_mono_ms() >= end)
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

int pg_commit(struct sfs_store *s, struct sfs_error *err)
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


/* The store-wide lock ends with COMMIT: after() runs just past it. Two
 * writers of one host may then append their lines in either order; each
 * line carries its time. */
int pg_commit_then(struct sfs_store *s, void (*after)(void *arg),
			  void *arg, struct sfs_error *err)
{
	int rc = pg_commit(s, err);

	if (rc == SFS_OK && after)
		after(arg);
	return rc;
}
