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
 */
/* The listener's connection (struct pg's lstate): none, being made,
 * LISTEN sent, listening. */
enum listen_state { L_NONE, L_CONNECTING, L_ASKED, L_UP };

/* lmu held: read what the listener has; 0, or -1 when it is gone. */
static int listen_drain(struct pg *p)
{
	PGnotify *n;

	if (p->lstate != L_UP || PQstatus(p->listen) != CONNECTION_OK ||
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
		       pg_mono_ms() - p->fast_at_ms < 1000;
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

	/* a lost connection is not remade here: begin() does that, once
	 * (remade here too, a dead link cost each read two connect_timeouts);
	 * until then the generation is unknown, so no cache answers */
	if (PQstatus(p->conn) != CONNECTION_OK)
		return 0;
	r = PQexec(p->conn, "SELECT generation FROM sfs_state");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		g = (uint64_t)pg_col_i64(r, 0, 0);
	PQclear(r);
	return g;
}

uint64_t pg_generation(struct sfs_store *s)
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
		p->fast_at_ms = pg_mono_ms();
		__atomic_store_n(&p->fast_ok, 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&p->lmu);
	}
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

/*
 * The listener's connection is made without ever blocking the poller
 * (which must keep dropping the kernel's caches while it is down): it is
 * started at most once a second, carried on at each poll for at most
 * LISTEN_STEP_MS, and dropped when it is not listening CONNECT_MS after
 * its start. A blocking connect held the poller for connect_timeout,
 * while cache=kernel went on serving what the kernel held.
 */
#define LISTEN_STEP_MS 20

static int listen_drop(struct pg *p)
{
	PQfinish(p->listen);
	p->listen = NULL;
	p->lstate = L_NONE;
	return -1;
}

/* Wait at most ms (>= 0) for the listener's socket to be ready for
 * events: 1 ready (or failed: the next libpq call says), 0 not yet. */
static int listen_ready(struct pg *p, short events, int64_t ms)
{
	struct pollfd pfd = {.fd = PQsocket(p->listen), .events = events};

	return pfd.fd >= 0 && poll(&pfd, 1, (int)ms) == 1;
}

/* One step of PQconnectPoll's protocol: 1 connected, 0 not yet, -1
 * failed. */
static int listen_connect_step(struct pg *p, int64_t end)
{
	int64_t left = end - pg_mono_ms();

	if (!listen_ready(p, p->lwant, left > 0 ? left : 0))
		return 0;
	switch (PQconnectPoll(p->listen)) {
	case PGRES_POLLING_OK:
		return 1;
	case PGRES_POLLING_READING:
		p->lwant = POLLIN;
		return 0;
	case PGRES_POLLING_WRITING:
		p->lwant = POLLOUT;
		return 0;
	default:
		return -1;
	}
}

/* LISTEN's answer, once it is in: 1 listening, 0 not yet, -1 failed. */
static int listen_answer(struct pg *p, int64_t end)
{
	int64_t left = end - pg_mono_ms();
	PGresult *r;
	int ok = 0;

	if (!PQconsumeInput(p->listen))
		return -1;
	if (PQisBusy(p->listen) &&
	    (!listen_ready(p, POLLIN, left > 0 ? left : 0) ||
	     !PQconsumeInput(p->listen) || PQisBusy(p->listen)))
		return PQstatus(p->listen) == CONNECTION_OK ? 0 : -1;
	while ((r = PQgetResult(p->listen))) {
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	return ok ? 1 : -1;
}

/* Carry the listener's connection on: 0 once it LISTENs, -1 not (yet). */
static int listen_up(struct pg *p, int64_t now)
{
	int64_t end = now + LISTEN_STEP_MS;
	int rc = 0;

	if (p->lstate == L_NONE) {
		if (now < p->next_try_ms)
			return -1;
		p->next_try_ms = now + 1000;
		p->listen = pg_connect_with_deadlines(p->conninfo, 1);
		if (!p->listen || PQstatus(p->listen) == CONNECTION_BAD)
			return listen_drop(p);
		p->lstate = L_CONNECTING;
		p->lwant = POLLOUT;
		p->ldeadline_ms = now + CONNECT_MS;
	}
	if (now >= p->ldeadline_ms)
		return listen_drop(p);
	while (p->lstate == L_CONNECTING &&
	       (rc = listen_connect_step(p, end)) == 0 && pg_mono_ms() < end)
		;
	if (rc < 0)
		return listen_drop(p);
	if (p->lstate == L_CONNECTING) {
		if (rc == 0)
			return -1;
		if (!PQsendQuery(p->listen, "LISTEN secretfs"))
			return listen_drop(p);
		p->lstate = L_ASKED;
	}
	rc = listen_answer(p, end);
	if (rc < 0)
		return listen_drop(p);
	if (rc == 0)
		return -1;
	p->lstate = L_UP;
	return 0;
}

/* How long the generation poll waits for its answer: past it the
 * listener counts as lost. It runs every POLL_EVERY_MS, so a link that
 * died without a word is found within 0.8 s, inside the 1-second bound
 * (once a second plus the wait was 1.3 s). */
#define POLL_ANSWER_MS 300
#define POLL_EVERY_MS  500

/*
 * The safety net: the generation read on the listener's connection. It
 * never waits on a dead link longer than POLL_ANSWER_MS (a blocking
 * PQexec waited the whole tcp_user_timeout while cache=kernel went on
 * serving what the kernel held). 1 changed, 0 not, -1 the listener is
 * lost (no answer in time, or an error).
 */
static int listen_poll(struct pg *p)
{
	struct pollfd pfd = {.fd = PQsocket(p->listen), .events = POLLIN};
	int64_t end = pg_mono_ms() + POLL_ANSWER_MS, left;
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
	if (g == p->remote_gen)
		return 0;
	p->remote_gen = g;
	return 1;
}

/* Fail closed until a new listener is up: nothing the kernel or the
 * read cache holds is trusted. */
static int listener_lost(struct pg *p, int64_t now)
{
	__atomic_store_n(&p->listening, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->fast_ok, 0, __ATOMIC_RELEASE);
	listen_drop(p);
	p->down_at_ms = now;
	return 1;
}

/* While there is no listener: "changed" every DOWN_EVERY_MS, so that the
 * poller drops the kernel's caches that often (nothing cached is older
 * than that) and sleeps in between instead of spinning. */
#define DOWN_EVERY_MS 100

static int down_changed(struct pg *p, int64_t now)
{
	if (now - p->down_at_ms < DOWN_EVERY_MS)
		return 0;
	p->down_at_ms = now;
	return 1;
}

/*
 * 1 when another connection (any host) may have committed a change since
 * the last call: a notification came, the generation poll (once a second)
 * saw the counter move, or there is no listener (lost, or just back, so
 * notifications may have been missed): fail closed, every
 * DOWN_EVERY_MS. 0 when nothing changed. Never blocks on a live
 * connection; a reconnect is started once a second and carried on for
 * at most LISTEN_STEP_MS per call.
 */
static int remote_poll_locked(struct pg *p)
{
	int64_t now = pg_mono_ms();
	int changed = 0, rc;

	if (p->lstate != L_UP || PQstatus(p->listen) != CONNECTION_OK) {
		if (p->lstate == L_UP)
			listen_drop(p);
		__atomic_store_n(&p->listening, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&p->fast_ok, 0, __ATOMIC_RELEASE);
		if (listen_up(p, now) != 0)
			return down_changed(p, now);
		__atomic_store_n(&p->listening, 1, __ATOMIC_RELAXED);
		changed = 1;
	}
	if (listen_drain(p) != 0)
		return listener_lost(p, now);
	changed |= p->notes != p->poll_seen;
	p->poll_seen = p->notes;
	if (now >= p->next_poll_ms) {
		p->next_poll_ms = now + POLL_EVERY_MS;
		rc = listen_poll(p);
		if (rc < 0)
			return listener_lost(p, now);
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

/* Called under the caller's lock on the store (the main connection's
 * host and port), or with cap 0 from any thread: the flag the poller
 * thread sets. */
int pg_remote_state(struct sfs_store *s, char *out, size_t cap)
{
	struct pg *p = PG(s);
	int up = __atomic_load_n(&p->listening, __ATOMIC_RELAXED);

	if (!cap)
		return up;
	snprintf(out, cap, "postgresql %s:%s listener %s",
		 PQhost(p->conn) ? PQhost(p->conn) : "?",
		 PQport(p->conn) ? PQport(p->conn) : "?", up ? "up" : "down");
	return up;
}
