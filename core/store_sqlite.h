/*
 * Private to the SQLite backend (store_sqlite.c: open, close, schema and
 * migration, statement table, the helpers below; store_sqlite_txn.c: the
 * write lock, transactions, checkpoints and generation();
 * store_sqlite_rec.c: record reads and writes, kept static, and the
 * operations table sq_ops that the open hands out; store_sqlite_backup.c:
 * backup and restore). These five files are the only ones that include
 * <sqlite3.h>. See store_sqlite.c for the design.
 */
#ifndef SECRETFS_STORE_SQLITE_H
#define SECRETFS_STORE_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "secretfs/store.h"
#include "store_backend.h"

#define DB_NAME	      "secretfs.db"
#define LOCK_NAME     "write.lock"
#define SHM_HDR_BYTES 48 /* one copy of the wal-index header */
/* The WAL's working size, allocated once a connection has committed
 * WAL_BUSY times (a daemon, not a one-shot CLI command); the automatic
 * checkpoint restarts the WAL at about that size. */
#define WAL_BUSY	8
#define WAL_PAGES	512
#define WAL_BYTES	((sqlite3_int64)WAL_PAGES * (4096 + 24) + 32)
#define BUSY_TIMEOUT_MS 10000

enum stmt_id {
	ST_BEGIN_READ,
	ST_BEGIN_WRITE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_META_GET,
	ST_META_SET,
	ST_KEY_BY_ID,
	ST_KEY_BY_NAME,
	ST_KEY_LIST,
	ST_KEY_INSERT,
	ST_KEY_UPDATE,
	ST_KEY_DELETE_VERSIONS,
	ST_KEY_DELETE,
	ST_KEY_IN_USE,
	ST_KEYVER_GET,
	ST_KEYVER_INSERT,
	ST_KEYVER_SET,
	ST_SECRET_BY_ID,
	ST_SECRET_BY_NAME,
	ST_SECRET_LIST,
	ST_SECRET_LIST_AFTER,
	ST_SECRET_INSERT,
	ST_SECRET_UPDATE,
	ST_SECRET_REKEY,
	ST_SECRET_DELETE_VERSIONS,
	ST_SECRET_DELETE,
	ST_VERSION_GET,
	ST_VERSION_GET_BLOBS,
	ST_VERSION_LIST,
	ST_VERSION_INSERT,
	ST_VERSION_STATE,
	ST_VERSION_DESTROY,
	ST_ROLE_GRANT,
	ST_ROLE_REVOKE,
	ST_ROLE_LIST,
	ST_CHECK,
	ST_FK_CHECK,
	ST_COUNTS,
	ST_AUDIT_ADD,
	ST_AUDIT_LIST,
	ST_AUDIT_DEL,
	ST_AUDIT_ANY,
	ST_COUNT
};

struct sq {
	struct sfs_store pub;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	sqlite3_file *file; /* the database file, for generation() */
	uint64_t gen;	    /* last generation returned */
	int readonly;
	int lock_fd;	  /* DIR/write.lock, or -1 (read-only) */
	int locked;	  /* lock_fd held (a write transaction) */
	int wal;	  /* the database is in WAL mode */
	int scrub;	  /* blobs freed: TRUNCATE checkpoint owed */
	int scrub_txn;	  /* blobs freed by the open transaction */
	int wrote;	  /* this connection committed a change */
	unsigned commits; /* ... how many (up to WAL_BUSY) */
	const volatile unsigned char *shm; /* wal-index, or NULL */
	unsigned char shm_seen[SHM_HDR_BYTES];
};

static inline struct sq *SQ(struct sfs_store *s)
{
	return s->backend;
}

int sq_map_rc(int rc);
int sq_fail(struct sq *q, int rc, struct sfs_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int sq_not_found(struct sfs_error *err, const char *what, const char *id);
void sq_done(sqlite3_stmt *st);
int sq_bind_text(sqlite3_stmt *st, int i, const char *v);
int sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n);
int sq_col_text(sqlite3_stmt *st, int col, char *dst, size_t cap);
int sq_col_blob(sqlite3_stmt *st, int col, struct sfs_blob *out,
		struct sfs_error *err);
int sq_corrupt(struct sfs_error *err, const char *table);
int sq_step_row(struct sq *q, sqlite3_stmt *st, int bind_rc,
		struct sfs_error *err, const char *what);
int sq_step_change(struct sq *q, sqlite3_stmt *st, int bind_rc, int must_change,
		   struct sfs_error *err, const char *what);
int sq_journal_mode(struct sq *q, int set, struct sfs_error *err);
int sq_lock_take(struct sq *q, struct sfs_error *err);
void sq_lock_drop(struct sq *q);
void sq_scrub_now(struct sq *q, int grow);
int sq_begin(struct sfs_store *s, int write, struct sfs_error *err);
void sq_rollback(struct sfs_store *s);
int sq_commit_then(struct sfs_store *s, void (*after)(void *arg), void *arg,
		   struct sfs_error *err);
int sq_commit(struct sfs_store *s, struct sfs_error *err);
void sq_shm_find(struct sq *q);
uint64_t sq_generation(struct sfs_store *s);
void sq_close(struct sfs_store *s);

/* The backend's operations (store_sqlite_rec.c). */
extern const struct sfs_store_ops sq_ops;

#endif
