/*
 * PostgreSQL backend, change detection: generation() (the sfs_state
 * counter, known without a round trip while the listener is up and
 * quiet) and the listener, a connection of its own that LISTENs for the
 * notifications every write transaction queues (remote_poll,
 * remote_state).
 */
#include <inttypes.h>
#include <poll.h>
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


/*
 * The generation: known without a round trip while the daemon's listener
 * is up and quiet (gen_fast), else one query; when it cannot be answered,
 * a value never returned before, so that every cache keyed on it is
 * dropped. Inside a write transaction
 * the counter holds this transaction's own, uncommitted bump, which a
 * rollback would hand to the next writer's different change: a fresh
 * value then too.
 *
 * fast_gen is trusted for TRUST_MS after it was last confirmed: read on
 * the main connection, read under the write lock by this store's own
 * commit (pg_fast_after_commit), or seen unchanged by the listener's
 * generation poll, which runs more often than that, so a quiet store is
 * never asked at an open. A notification from any other connection ends
 * the trust at once; the store's own ones do not (the core knows of its
 * own commits). The listener lost, or no confirmation for TRUST_MS (a
 * link that died without a word): a query, which fails closed.
 */
#define TRUST_MS 1000

/* lmu held: read what the listener has; 0, or -1 when it is gone. */
static int listen_drain(struct pg *p)
{
	int own = __atomic_load_n(&p->own_pid, __ATOMIC_RELAXED);
	PGnotify *n;

	if (!p->listen || PQstatus(p->listen) != CONNECTION_OK ||
	    !PQconsumeInput(p->listen))
		return -1;
	while ((n = PQnotifies(p->listen))) {
		if (n->be_pid != own)
			__atomic_add_fetch(&p->notes, 1, __ATOMIC_RELEASE);
		PQfreemem(n);
	}
	return 0;
}

/* Is fast_gen still trusted? The fields are read atomically: the poller
 * may hold lmu (and move them) meanwhile. */
static int fast_trusted(struct pg *p, uint64_t *g)
{
	int64_t at = __atomic_load_n(&p->fast_at_ms, __ATOMIC_ACQUIRE);

	*g = __atomic_load_n(&p->fast_gen, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&p->fast_ok, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&p->notes, __ATOMIC_ACQUIRE) ==
		   __atomic_load_n(&p->gen_seen, __ATOMIC_ACQUIRE) &&
	       pg_mono_ms() - at < TRUST_MS;
}

/*
 * Without a round trip: fast_gen, while it is trusted. What the listener
 * holds is read first; when the poller holds lmu it is reading it right
 * now, and what it has counted so far is as good as what this call would
 * have read a moment earlier.
 */
static int gen_fast(struct pg *p, uint64_t *g)
{
	int up = 1;

	if (pthread_mutex_trylock(&p->lmu) == 0) {
		up = listen_drain(p) == 0;
		pthread_mutex_unlock(&p->lmu);
	}
	return up && fast_trusted(p, g);
}

/*
 * fast_gen is g as of at_ms, with seen notifications counted before g
 * was read. Without lmu (a commit must not wait for the poller's answer):
 * the listener lost meanwhile stores listening = 0 and then fast_ok = 0,
 * so reading listening after storing fast_ok = 1 (both sequentially
 * consistent) never leaves trust behind a lost listener.
 */
static void fast_set(struct pg *p, uint64_t g, uint64_t seen, int64_t at_ms)
{
	__atomic_store_n(&p->fast_gen, g, __ATOMIC_RELEASE);
	__atomic_store_n(&p->gen_seen, seen, __ATOMIC_RELEASE);
	__atomic_store_n(&p->fast_at_ms, at_ms, __ATOMIC_RELEASE);
	__atomic_store_n(&p->fast_ok, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&p->listening, __ATOMIC_SEQ_CST))
		__atomic_store_n(&p->fast_ok, 0, __ATOMIC_SEQ_CST);
}

/* After this store's own COMMIT: g was read under the write lock, so no
 * other change lies between it and the commit; notes0 was the count of
 * notifications before COMMIT was sent (any later one ends the trust). */
void pg_fast_after_commit(struct pg *p, uint64_t g, uint64_t notes0,
			  int64_t at_ms)
{
	__atomic_store_n(&p->own_gen, g, __ATOMIC_RELEASE);
	if (g)
		fast_set(p, g, notes0, at_ms);
	else
		__atomic_store_n(&p->fast_ok, 0, __ATOMIC_RELEASE);
}

static uint64_t gen_query(struct pg *p)
{
	uint64_t g = 0;
	PGresult *r;

	pg_settle(p);
	if (PQstatus(p->conn) != CONNECTION_OK) {
		PQreset(p->conn);
		if (PQstatus(p->conn) != CONNECTION_OK ||
		    pg_conn_setup(p, NULL) != SFS_OK)
			return 0;
	}
	r = PQexec(p->conn, "SELECT generation FROM sfs_state");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		g = (uint64_t)pg_col_i64(r, 0, 0);
	PQclear(r);
	return g;
}

uint64_t pg_generation(struct sfs_store *s)
{
	struct pg *p = PG(s);
	uint64_t g = 0, seen;
	int64_t at;

	if (p->in_txn == 2)
		return GEN_LOST | ++p->lost;
	if (gen_fast(p, &g))
		return g;
	seen = __atomic_load_n(&p->notes, __ATOMIC_ACQUIRE);
	at = pg_mono_ms();
	g = gen_query(p);
	if (!g)
		return GEN_LOST | ++p->lost;
	fast_set(p, g, seen, at);
	return g;
}


/* ---- the listener ----------------------------------------------------------
 */


int64_t pg_mono_ms(void)
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
	p->listen = pg_connect_with_deadlines(p->conninfo);
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

/* How long the generation poll waits for its answer: past it the
 * listener counts as lost (well inside the 1-second bound). It runs every
 * POLL_EVERY_MS, under TRUST_MS, so that it keeps a quiet store's
 * fast_gen trusted. */
#define POLL_ANSWER_MS 300
#define POLL_EVERY_MS  500

/*
 * The safety net: the generation read on the listener's connection. It
 * never waits on a dead link longer than POLL_ANSWER_MS (a blocking
 * PQexec waited the whole tcp_user_timeout while cache=kernel went on
 * serving what the kernel held). 1 changed, 0 not, -1 the listener is
 * lost (no answer in time, or an error). A generation equal to fast_gen
 * confirms it as of the time the poll was sent; another one ends its
 * trust. The generation of this store's own last commit is no change.
 */
static int listen_poll(struct pg *p)
{
	struct pollfd pfd = {.fd = PQsocket(p->listen), .events = POLLIN};
	int64_t sent = pg_mono_ms(), end = sent + POLL_ANSWER_MS, left;
	uint64_t g = 0;
	PGresult *r;

	if (!PQsendQuery(p->listen, "SELECT generation FROM sfs_state"))
		return -1;
	while (PQconsumeInput(p->listen) && PQisBusy(p->listen)) {
		left = end - pg_mono_ms();
		if (left <= 0)
			return -1;
		poll(&pfd, 1, (int)left);
	}
	if (PQisBusy(p->listen))
		return -1; /* PQconsumeInput failed: the link is gone */
	while ((r = PQgetResult(p->listen))) {
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			g = (uint64_t)pg_col_i64(r, 0, 0);
		PQclear(r);
	}
	if (!g)
		return -1;
	if (g == __atomic_load_n(&p->fast_gen, __ATOMIC_ACQUIRE))
		__atomic_store_n(&p->fast_at_ms, sent, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&p->fast_ok, 0, __ATOMIC_RELEASE);
	if (g == p->remote_gen ||
	    g == __atomic_load_n(&p->own_gen, __ATOMIC_ACQUIRE)) {
		p->remote_gen = g;
		return 0;
	}
	p->remote_gen = g;
	return 1;
}

/* Fail closed until a new listener is up: nothing the kernel or the
 * read cache holds is trusted. */
static void listener_lost(struct pg *p)
{
	__atomic_store_n(&p->listening, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&p->fast_ok, 0, __ATOMIC_SEQ_CST);
	PQfinish(p->listen);
	p->listen = NULL;
}

/*
 * 1 when another connection (any host) may have committed a change since
 * the last call: a notification came (this store's own connection's do
 * not count: the core knows of its own commits), the generation poll
 * (twice a second) saw the counter move, or there is no listener (lost,
 * or just back, so notifications may have been missed): fail closed. 0
 * when nothing changed. Never blocks on a live connection; reconnecting is tried once
 * a second and waits at most connect_timeout.
 */
static int remote_poll_locked(struct pg *p)
{
	int64_t now = pg_mono_ms();
	int changed = 0, rc;

	if (!p->listen || PQstatus(p->listen) != CONNECTION_OK) {
		__atomic_store_n(&p->listening, 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(&p->fast_ok, 0, __ATOMIC_SEQ_CST);
		if (listen_up(p, now) != 0)
			return 1;
		__atomic_store_n(&p->listening, 1, __ATOMIC_SEQ_CST);
		changed = 1;
	}
	if (listen_drain(p) != 0) {
		listener_lost(p);
		return 1;
	}
	changed |= p->notes != p->poll_seen;
	p->poll_seen = p->notes;
	if (now >= p->next_poll_ms) {
		p->next_poll_ms = now + POLL_EVERY_MS;
		rc = listen_poll(p);
		if (rc < 0) {
			listener_lost(p);
			return 1;
		}
		changed |= rc;
	}
	return changed;
}

int pg_remote_poll(struct sfs_store *s)
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
int pg_remote_state(struct sfs_store *s, char *out, size_t cap)
{
	struct pg *p = PG(s);
	int up = __atomic_load_n(&p->listening, __ATOMIC_RELAXED);

	snprintf(out, cap, "postgresql %s:%s listener %s",
		 PQhost(p->conn) ? PQhost(p->conn) : "?",
		 PQport(p->conn) ? PQport(p->conn) : "?", up ? "up" : "down");
	return up;
}
