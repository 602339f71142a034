/*
 * Private to the store: the entry points of the two backends, called only
 * by the facade (store.c), which chooses the backend, and defined in
 * store_sqlite*.c and store_pg*.c. No third-party header here: store.c
 * stays free of <sqlite3.h> and <libpq-fe.h>.
 */
#ifndef SECRETFS_STORE_BACKEND_H
#define SECRETFS_STORE_BACKEND_H

#include "secretfs/store.h"

/*
 * Open (creating and migrating if create is set) the SQLite store in
 * directory dir: DIR/secretfs.db, with its WAL (secretfs.db-wal and -shm)
 * and DIR/write.lock, which every write transaction holds (see
 * store_sqlite.c). readonly opens without write access (begin(write) then
 * fails with SFS_EROFS) and creates no file. SFS_ENOSTORE when the
 * database does not exist and create is 0.
 */
int sfs_store_sqlite_open(const char *dir, int create, int readonly,
			  struct sfs_store **out, struct sfs_error *err);

/* Tests only: how long a writer waits for DIR/write.lock before begin()
 * fails with SFS_EIO, in ms, for every SQLite store of the process
 * (default and ms <= 0: 10 s, SQLite's busy timeout). Not thread-safe:
 * call before opening stores. */
void sfs_store_sqlite_lock_wait(int ms);

/* Write the SQLite database path of store directory dir ("DIR/secretfs.db")
 * to out. 0, or SFS_EINVAL when it does not fit in cap bytes. */
int sfs_store_sqlite_path(const char *dir, char *out, size_t cap);

/*
 * Open (creating or migrating the schema if create is set) the PostgreSQL
 * store that conninfo names (libpq keywords, a URI or a service name; see
 * store_pg.c), for the host whose store directory is dir (its pending
 * audit lines are its own). A conninfo carrying a password is refused
 * (SFS_EINVAL): passwords come from ~/.pgpass, PGPASSFILE or a service file.
 * SFS_ENOSTORE when the server holds no store and create is 0; SFS_EIO
 * when the server cannot be reached.
 */
int sfs_store_pg_open(const char *conninfo, const char *dir, int create,
		      int readonly, struct sfs_store **out,
		      struct sfs_error *err);

/*
 * Tests only: at the next commit of any PostgreSQL store of the process,
 * cut its connection (when 1: just after COMMIT is sent, so the server
 * commits and the answer is lost; 2: before COMMIT, so nothing commits),
 * then call hook(arg) (may be NULL), then resolve the outcome giving up
 * after deadline_ms (<= 0: 10 s). One-shot; not thread-safe.
 */
void sfs_store_pg_test_cut(int when, void (*hook)(void *arg), void *arg,
			   int deadline_ms);

/* backup.h, for a SQLite store */
int sfs_store_sqlite_backup(const char *dir, const char *file,
			    struct sfs_error *err);
int sfs_store_sqlite_restore(const char *file, const char *dir,
			     struct sfs_error *err);

#endif
