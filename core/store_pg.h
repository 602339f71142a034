/*
 * Private to the PostgreSQL backend (store_pg.c: open, schema and
 * migration, close, the statement helpers below; store_pg_conn.c: the
 * connection, transactions and the resolution of a COMMIT whose outcome
 * is unknown; store_pg_listen.c: generation() and the listener;
 * store_pg_rec.c: record reads and writes, kept static, and the
 * operations table pg_ops that store_pg.c's open hands out). These four
 * files are the only ones that include <libpq-fe.h>. See store_pg.c for
 * the design; the record tables' columns are in store_cols.h.
 */
#ifndef SECRETFS_STORE_PG_H
#define SECRETFS_STORE_PG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "secretfs/store.h"
#include "store_backend.h"

#define MAX_ARGS   16
#define LOCK_WAIT  "10s"
#define GEN_LOST   (UINT64_C(1) << 63)
#define REQ_BYTES  16
#define RESOLVE_MS 10000 /* how long a lost COMMIT is chased */
#define PREP_MAX   64	 /* prepared statements per connection */
#define CONNECT_S  "5"	 /* connect_timeout, and the listener's own: */
#define CONNECT_MS 5000

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
	int lstate;	      /* enum listen_state (store_pg_listen.c) */
	short lwant;	      /* POLLIN or POLLOUT: what connecting awaits */
	int64_t ldeadline_ms; /* a connection still unmade then is dropped */
	int64_t down_at_ms;   /* the last "changed" while it is down */
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
	/* statements prepared on the main connection since its last
	 * (re)connect: statement i is named "sfs<i>" (pg_run, pg_reset) */
	char *prep[PREP_MAX];
	int nprep;
};

/* Parameters of one statement: text, or binary for bytea. */
struct args {
	const char *v[MAX_ARGS];
	int len[MAX_ARGS];
	int fmt[MAX_ARGS];
	char num[MAX_ARGS][24];
	int n;
};

static inline struct pg *PG(struct sfs_store *s)
{
	return s->backend;
}

void pg_a_text(struct args *a, const char *v);
void pg_a_i64(struct args *a, int64_t v);
void pg_a_blob(struct args *a, const void *p, size_t n);
int pg_fail(struct pg *p, const PGresult *r, struct sfs_error *err,
	    const char *what);
int pg_run(struct pg *p, const char *sql, const struct args *a, PGresult **out,
	   struct sfs_error *err, const char *what);
int pg_run_count(struct pg *p, const char *sql, const struct args *a,
		 long *changed, struct sfs_error *err, const char *what);
int pg_not_found(struct sfs_error *err, const char *what, const char *id);
int pg_corrupt(struct sfs_error *err, const char *table);
int pg_col_text(const PGresult *r, int row, int col, char *dst, size_t cap);
int64_t pg_col_i64(const PGresult *r, int row, int col);
int pg_col_blob(const PGresult *r, int row, int col, struct sfs_blob *out,
		struct sfs_error *err);
/* listener 1: the listener's connection, started without waiting
 * (PQconnectStartParams: the caller drives PQconnectPoll and enforces
 * CONNECT_MS) and named "secretfs-listener" in pg_stat_activity. */
PGconn *pg_connect_with_deadlines(const char *conninfo, int listener);
void pg_prep_forget(struct pg *p);
void pg_reset(struct pg *p);
int pg_conn_setup(struct pg *p, struct sfs_error *err);
void pg_close(struct sfs_store *s);
int pg_check(struct sfs_store *s, struct sfs_error *err);
int pg_begin(struct sfs_store *s, int write, struct sfs_error *err);
void pg_rollback(struct sfs_store *s);
int pg_commit(struct sfs_store *s, struct sfs_error *err);
int pg_commit_then(struct sfs_store *s, void (*after)(void *arg), void *arg,
		   struct sfs_error *err);
uint64_t pg_generation(struct sfs_store *s);
int64_t pg_mono_ms(void);
int pg_remote_poll(struct sfs_store *s);
int pg_remote_state(struct sfs_store *s, char *out, size_t cap);

/* The backend's operations (store_pg_rec.c). */
extern const struct sfs_store_ops pg_ops;

#endif
