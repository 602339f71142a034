/*
 * PostgreSQL backend, connection and transactions: reconnecting, begin
 * (the sfs_state row lock for a write), sent in one pipeline with the
 * transaction's first statement, rollback (not waited for after a read),
 * and COMMIT (with the generation read under the lock), whose outcome,
 * when the connection is lost on the way, is resolved by looking the
 * transaction's request id up (see store_pg.c).
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

/* A fresh connection: its backend (whose notifications are our own) and
 * its settings. */
int pg_conn_setup(struct pg *p, struct sfs_error *err)
{
	p->rb_pending = 0;
	__atomic_store_n(&p->own_pid, PQbackendPID(p->conn), __ATOMIC_RELAXED);
	return pg_run_count(
	    p, "SELECT set_config('lock_timeout', '" LOCK_WAIT "', false)",
	    NULL, NULL, err, "connection setup");
}

/* Read what is left of a read transaction's ROLLBACK (pg_rollback sends
 * it without waiting): by now it has mostly arrived. */
void pg_settle(struct pg *p)
{
	PGresult *r;

	if (!p->rb_pending)
		return;
	p->rb_pending = 0;
	while ((r = PQgetResult(p->conn)))
		PQclear(r);
}

/* Before a transaction: a lost connection (or one left in a transaction
 * or in pipeline mode by a failure) is reset once. */
static int conn_ensure(struct pg *p, struct sfs_error *err)
{
	pg_settle(p);
	if (PQstatus(p->conn) == CONNECTION_OK &&
	    PQtransactionStatus(p->conn) == PQTRANS_IDLE &&
	    PQpipelineStatus(p->conn) == PQ_PIPELINE_OFF)
		return SFS_OK;
	PQreset(p->conn);
	if (PQstatus(p->conn) != CONNECTION_OK)
		return pg_fail(p, NULL, err, "connect to the store's server");
	return pg_conn_setup(p, err);
}

/*
 * BEGIN waits for the transaction's first statement and goes with it, in
 * one pipeline (one round trip): for a write, with the store-wide lock,
 * the notification and the request id (random, not secret). A read
 * transaction's ROLLBACK is sent without waiting for its answer
 * (pg_settle reads it). So a read costs one round trip per statement,
 * and one that the core's caches answer costs none.
 */
#define PIPE_MAX 8

struct stmt {
	const char *sql;
	const struct args *a;
};

/* The begin statements of a transaction of kind write (0 or 1) into st;
 * their number. */
static int begin_stmts(struct pg *p, int write, struct args *req,
		       struct stmt *st)
{
	int n = 0;

	if (!write) {
		st[n++].sql = "BEGIN ISOLATION LEVEL REPEATABLE READ";
		return n;
	}
	req->n = 0;
	pg_a_blob(req, p->req, sizeof(p->req));
	st[n++].sql = "BEGIN ISOLATION LEVEL READ COMMITTED";
	st[n++].sql = "SELECT pg_notify('secretfs', '')";
	st[n++].sql = "UPDATE sfs_state SET generation = generation + 1";
	st[n].a = req;
	st[n++].sql = "INSERT INTO sfs_requests(id) VALUES ($1)";
	if (++p->writes % 256 == 0)
		st[n++].sql = "DELETE FROM sfs_requests WHERE at < "
			      "now() - interval '1 day'";
	st[n++].sql = "SELECT pg_backend_pid()";
	return n;
}

static int pipe_send(struct pg *p, const struct stmt *st, int n)
{
	const struct args *a;
	int i;

	if (!PQenterPipelineMode(p->conn))
		return -1;
	for (i = 0; i < n; i++) {
		a = st[i].a;
		if (!PQsendQueryParams(p->conn, st[i].sql, a ? a->n : 0, NULL,
				       a ? a->v : NULL, a ? a->len : NULL,
				       a ? a->fmt : NULL, 0))
			return -1;
	}
	return PQpipelineSync(p->conn) ? 0 : -1;
}

/* One result per statement into res (NULL: none came, the link died),
 * up to the pipeline's end; then out of pipeline mode. 0, or -1 when the
 * connection is not usable. */
static int pipe_read(struct pg *p, PGresult **res, int n)
{
	PGresult *r;
	int i = 0;

	memset(res, 0, sizeof(*res) * (size_t)n);
	while (i <= n) {
		r = PQgetResult(p->conn);
		if (!r && PQstatus(p->conn) == CONNECTION_BAD)
			break;
		if (!r) {
			i++; /* the end of statement i */
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (i < n && !res[i])
			res[i] = r;
		else
			PQclear(r);
	}
	return PQexitPipelineMode(p->conn) ? 0 : -1;
}

/* The first failed result of n, or NULL. */
static const PGresult *pipe_failed(PGresult **res, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (PQresultStatus(res[i]) != PGRES_TUPLES_OK &&
		    PQresultStatus(res[i]) != PGRES_COMMAND_OK)
			return res[i];
	return NULL;
}

/* The pending BEGIN and then sql (NULL: none) in one round trip; *out,
 * as pg_run's, gets sql's result. */
static int begin_with(struct pg *p, const char *sql, const struct args *a,
		      PGresult **out, struct sfs_error *err, const char *what)
{
	int write = p->pending_begin == 2, n, i, rc = SFS_OK;
	PGresult *res[PIPE_MAX];
	struct stmt st[PIPE_MAX] = {{NULL, NULL}};
	struct args req;
	const PGresult *bad;

	n = begin_stmts(p, write, &req, st);
	if (sql) {
		st[n].sql = sql;
		st[n++].a = a;
	}
	if (pipe_send(p, st, n) != 0) {
		PQexitPipelineMode(p->conn);
		return pg_fail(p, NULL, err, "begin");
	}
	if (pipe_read(p, res, n) != 0)
		rc = pg_fail(p, NULL, err, "begin");
	else if ((bad = pipe_failed(res, n)))
		rc = pg_fail(p, bad, err,
			     bad == res[n - 1] && sql ? what : "begin");
	else if (write && PQntuples(res[n - 1 - !!sql]) != 1)
		rc = pg_corrupt(err, "sfs_state");
	if (rc == SFS_OK && write)
		p->backend_pid = (int)pg_col_i64(res[n - 1 - !!sql], 0, 0);
	for (i = 0; i < n - !!sql; i++)
		PQclear(res[i]);
	if (sql && rc == SFS_OK)
		*out = res[n - 1];
	else if (sql)
		PQclear(res[n - 1]);
	return rc;
}

/*
 * pg_run's first statement of a transaction: with its BEGIN. When the
 * connection turns out to be dead (the server restarted since the last
 * call), one fresh connection and once more: nothing was committed.
 */
int pg_run_first(struct pg *p, const char *sql, const struct args *a,
		 PGresult **out, struct sfs_error *err, const char *what)
{
	int rc;

	*out = NULL;
	rc = begin_with(p, sql, a, out, err, what);
	if (rc != SFS_OK && PQstatus(p->conn) != CONNECTION_OK &&
	    conn_ensure(p, NULL) == SFS_OK) {
		sfs_error_clear(err);
		rc = begin_with(p, sql, a, out, err, what);
	}
	p->pending_begin = 0;
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
	if (rc == SFS_OK && write &&
	    getrandom(p->req, sizeof(p->req), 0) != (ssize_t)sizeof(p->req))
		rc = sfs_error_set(err, SFS_EIO, "begin: no random bytes");
	p->pending_begin = rc == SFS_OK ? 1 + !!write : 0;
	p->in_txn = p->pending_begin;
	p->scrub_txn = 0;
	return rc;
}

void pg_rollback(struct sfs_store *s)
{
	struct pg *p = PG(s);

	if (!p->pending_begin && PQtransactionStatus(p->conn) != PQTRANS_IDLE &&
	    PQstatus(p->conn) == CONNECTION_OK) {
		if (p->in_txn == 1 && PQsendQuery(p->conn, "ROLLBACK"))
			p->rb_pending = 1;
		else
			PQclear(PQexec(p->conn, "ROLLBACK"));
	}
	p->pending_begin = 0;
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

/* The generation is read under the write lock, with COMMIT in one round
 * trip: no other change lies between the two (pg_fast_after_commit). */
static const char commit_sql[] = "SELECT generation FROM sfs_state;COMMIT";

/* The last result of what was sent (COMMIT's, or the error that ended
 * it); *g gets the generation, 0 when it did not come. */
static PGresult *commit_results(struct pg *p, uint64_t *g)
{
	PGresult *r, *last = NULL;

	*g = 0;
	while ((r = PQgetResult(p->conn))) {
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			*g = (uint64_t)pg_col_i64(r, 0, 0);
		PQclear(last);
		last = r;
	}
	return last;
}

/* COMMIT, or (tests) COMMIT with its connection cut. */
static PGresult *commit_send(struct pg *p, uint64_t *g)
{
	int cut = test_cut.cut;

	*g = 0;
	if (!cut)
		return PQsendQuery(p->conn, commit_sql) ? commit_results(p, g)
							: NULL;
	test_cut.cut = 0;
	if (cut == 1 && PQsendQuery(p->conn, commit_sql))
		while (PQflush(p->conn) > 0)
			;
	shutdown(PQsocket(p->conn), SHUT_RDWR);
	if (test_cut.hook)
		test_cut.hook(test_cut.arg);
	if (cut == 1)
		return commit_results(p, g);
	return PQsendQuery(p->conn, commit_sql) ? commit_results(p, g) : NULL;
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
		PQreset(p->conn);
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
	uint64_t notes0 = __atomic_load_n(&p->notes, __ATOMIC_ACQUIRE), g;
	int64_t at = pg_mono_ms();
	PGresult *r;
	int rc = SFS_OK, resolved = 0;

	/* no statement ran: a read transaction ends here, a write one takes
	 * its lock and bumps the generation all the same */
	if (p->pending_begin == 1) {
		pg_rollback(s);
		return SFS_OK;
	}
	if (p->pending_begin &&
	    (rc = pg_run_first(p, NULL, NULL, &r, err, "begin")) != SFS_OK) {
		pg_rollback(s);
		return rc;
	}
	r = commit_send(p, &g);

	/* COMMIT of an aborted transaction "succeeds" as ROLLBACK */
	if (PQresultStatus(r) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus(r), "COMMIT") != 0)
		rc = sfs_error_set(err, SFS_EIO,
				   "commit: the transaction was rolled back");
	else if (PQresultStatus(r) != PGRES_COMMAND_OK &&
		 PQstatus(p->conn) == CONNECTION_BAD && p->in_txn == 2) {
		rc = commit_resolve(p, err);
		resolved = 1;
	} else if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = pg_fail(p, r, err, "commit");
	PQclear(r);
	if (rc != SFS_OK) {
		__atomic_store_n(&p->fast_ok, 0, __ATOMIC_RELEASE);
		pg_rollback(s);
		return rc;
	}
	/* read under the lock only by a write transaction; not known
	 * when the answer was lost */
	pg_fast_after_commit(p, p->in_txn == 2 && !resolved ? g : 0, notes0,
			     at);
	p->in_txn = 0;
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
