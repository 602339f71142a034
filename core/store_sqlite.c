/*
 * SQLite storage backend: DIR/secretfs.db (mode 0600), the only file in
 * the tree that includes <sqlite3.h>. It stores what the core hands it and
 * decides nothing (see store.h).
 *
 * Journal: WAL, synchronous=FULL. A commit writes its pages to
 * DIR/secretfs.db-wal and syncs that one file: one fdatasync on the
 * caller's path (strace of the daemon), where the rollback journal
 * (TRUNCATE) took four or more (journal, database, journal header) and
 * the audit log one more. Measured with scripts/bench --quick on the
 * 2-CPU dev VM, three pairs of runs, old and new build alternated (load
 * average 1.6 to 4.3 from other work): a new version through the mount
 * (O_TRUNC write + close, cache=strict) took 3126, 2820 and 4303 us
 * before (5.2x, 6.7x, 7.9x the minimal FUSE create + write + close plus
 * one write + fsync of the same run) and 590, 1496 and 1436 us after
 * (1.43x, 2.31x, 1.55x; best run: 590 us against 153 + 259 us).
 * That fdatasync also writes the WAL's inode whenever the WAL's mtime
 * moved since the last commit. With multigrain timestamps (Linux 6.13+)
 * it moves whenever any file whose times were read by stat since its
 * last change is changed again, so nothing on the commit path stats a
 * file that each commit changes (the audit log's size comes from lseek,
 * ctx_watch.c keeps DIR/generation mapped): on the dev VM (ext4 without
 * a journal) the stat of the audit log made every commit write the
 * inode, one more disk write (block trace: 103 and 107 inode writes per
 * 100 commits before, 37 to 89 after, depending on what else runs: any
 * process's stat-then-change moves the clock too); a plain write +
 * fsync in a loop writes it one time in four or five.
 *
 * The WAL-reset bug. Debian 12's SQLite 3.40.1 can corrupt a WAL database
 * when two connections write, or checkpoint, at the same moment while one
 * of them resets the WAL (fixed in 3.51.3). We design that race out
 * rather than bet on it:
 *  - every write transaction and every checkpoint runs while its process
 *    holds flock(LOCK_EX) on DIR/write.lock, a file used for nothing else
 *    (not DIR/lock, which a read-write mount holds for its whole life);
 *    each struct sfs_store has its own descriptor, so two stores in one
 *    process exclude each other too;
 *  - every connection sets SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, so closing
 *    never checkpoints (and never deletes the WAL) outside the lock;
 *  - automatic checkpoints (wal_autocheckpoint, at 1000 pages) run only
 *    inside COMMIT, which runs under the lock; read-only connections never
 *    commit, so never checkpoint.
 * So at most one connection of any secretfs process writes or checkpoints
 * at a time. Readers never take the lock: in WAL mode they neither block
 * writers nor wait for them. A writer waits for the flock as long as the
 * holder's transaction lasts, up to the busy timeout (a stopped holder
 * then costs SFS_EIO, as SQLITE_BUSY did, not a hung daemon); the core
 * never holds a transaction across a prompt or a FUSE reply, and the
 * kernel drops the lock of a process that dies.
 * Other programs (the sqlite3 tool) are outside this promise.
 *
 * Write transactions take SQLite's write lock up front (BEGIN IMMEDIATE),
 * so a read-modify-write in the core is atomic across processes and a
 * reader never has to upgrade; read transactions are deferred.
 * busy_timeout is generous (10 s) so that a reader that finds the
 * wal-index being rebuilt, or a checkpoint that waits for readers, waits
 * instead of failing with SQLITE_BUSY.
 *
 * Switching. A store made with the rollback journal is switched to WAL by
 * the first read-write open (under the lock). WAL is recorded in the
 * database header, so every later connection uses it. Read-only opens
 * (a read-only directory, `ro` mounts, `secretfs audit`): SQLite opens a
 * WAL database read-only as long as DIR/secretfs.db-wal and -shm exist
 * (or can be created); since no connection deletes them at close (no
 * checkpoint on close), they exist from the first write on, with the
 * database's mode (0600). A read-only open of a store still in rollback
 * mode reads it in rollback mode.
 *
 * Erasure. secure_delete=ON: freed cells and pages, among them a
 * destroyed version's blobs, are overwritten with zeros. In WAL mode the
 * zeroed page is a new frame; the older frames in the WAL and the page in
 * the database file still hold the old bytes until a checkpoint. So a
 * commit that destroyed blobs (a version destroyed, a secret or key
 * deleted) is followed, still under the lock, by a TRUNCATE checkpoint:
 * the zeroed pages overwrite the database file and the WAL is cut to
 * zero bytes. Should readers keep it from completing (busy past the
 * timeout), the commit still stands and the checkpoint is retried after
 * the next commit and at close. A connection that wrote also checkpoints
 * at close (under the lock, TRUNCATE): a closed store's database file is
 * then whole on its own and the WAL empty. What no checkpoint reaches are the freed
 * disk blocks, which the device keeps until reuse as for any rewritten
 * file; recovering a value from them would still need the KMS key,
 * itself wrapped by the master key. temp_store=MEMORY: no temporary
 * files.
 *
 * Generation. In WAL mode a commit need not touch the database file, so
 * the file change counter no longer moves. The wal-index header (the
 * first 48 bytes of the -shm mapping every connection shares) changes at
 * every commit by any connection (its frame count and running checksum
 * move); generation() compares it with the last copy seen: a memory read,
 * no system call. A database in WAL mode cannot leave it while this
 * connection is open (that needs an exclusive lock on the file, which
 * every WAL connection's shared lock prevents).
 *
 * Speed. Every statement is prepared once at open and reused (reset,
 * clear_bindings); no SQL text is built per call and nothing is allocated
 * per call beyond the blob copies handed to the caller. Parameters are
 * bound SQLITE_STATIC: they are cleared before the operation returns.
 *
 * Schema: PRAGMA user_version and the migrations array below; a database
 * newer than this program is refused, an older one migrated at open (only
 * by a read-write open: a read-only one reports it).
 *
 * Connections do not survive fork(): open the store in the process that
 * uses it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "secretfs/backup.h"
#include "secretfs/store.h"
#include "secretfs/storedir.h"

#define DB_NAME "secretfs.db"
#define LOCK_NAME "write.lock"
#define SHM_HDR_BYTES 48 /* one copy of the wal-index header */
/* The WAL's working size, allocated once a connection has committed
 * WAL_BUSY times (a daemon, not a one-shot CLI command); the automatic
 * checkpoint restarts the WAL at about that size. */
#define WAL_BUSY 8
#define WAL_PAGES 512
#define WAL_BYTES ((sqlite3_int64)WAL_PAGES * (4096 + 24) + 32)
#define BUSY_TIMEOUT_MS 10000

/*
 * Each migration takes the schema from version i to i + 1 and ends by
 * recording that number. Never edit one that has shipped: add another.
 * versions.kms_key_id has no foreign key on purpose: a key may be deleted
 * once only destroyed versions name it.
 */
static const char *const migrations[] = {
	/* v1 */
	"CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
	"CREATE TABLE kms_keys("
	" id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" type INTEGER NOT NULL, state INTEGER NOT NULL,"
	" description TEXT NOT NULL, created_at INTEGER NOT NULL,"
	" created_by TEXT NOT NULL, current_version INTEGER NOT NULL);"
	"CREATE TABLE kms_key_versions("
	" key_id TEXT NOT NULL REFERENCES kms_keys(id),"
	" version INTEGER NOT NULL, wrapped BLOB NOT NULL,"
	" created_at INTEGER NOT NULL, PRIMARY KEY(key_id, version));"
	"CREATE TABLE secrets("
	" id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" description TEXT NOT NULL, status INTEGER NOT NULL,"
	" access_control INTEGER NOT NULL, allowed TEXT NOT NULL,"
	" owner_uid INTEGER NOT NULL, group_gid INTEGER NOT NULL,"
	" mode INTEGER NOT NULL, default_version INTEGER NOT NULL,"
	" latest_version INTEGER NOT NULL,"
	" kms_key_id TEXT NOT NULL REFERENCES kms_keys(id),"
	" created_at INTEGER NOT NULL, created_by TEXT NOT NULL,"
	" changed_at INTEGER NOT NULL);"
	"CREATE INDEX secrets_by_key ON secrets(kms_key_id);"
	/* blobs last: reading the other columns skips their overflow pages */
	"CREATE TABLE versions("
	" secret_id TEXT NOT NULL REFERENCES secrets(id),"
	" version INTEGER NOT NULL, state INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL, created_by TEXT NOT NULL,"
	" kms_key_id TEXT NOT NULL, kms_key_version INTEGER NOT NULL,"
	" size INTEGER NOT NULL, format INTEGER NOT NULL,"
	" wrapped_dek BLOB, ciphertext BLOB,"
	" PRIMARY KEY(secret_id, version));"
	"CREATE INDEX versions_by_key ON versions(kms_key_id, state);"
	"CREATE TABLE roles(role TEXT NOT NULL, principal TEXT NOT NULL,"
	" PRIMARY KEY(role, principal));"
	"PRAGMA user_version = 1;",
	/* v2: audit lines of committed changes not yet known durable in
	 * DIR/audit.log (see audit_add in store.h); hint: the log's size
	 * when the line was added, where a search for it may start */
	"CREATE TABLE audit_pending(seq INTEGER PRIMARY KEY,"
	" hint INTEGER NOT NULL, line BLOB NOT NULL);"
	"PRAGMA user_version = 2;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define KEY_COLS                                                         \
	"id, name, type, state, description, created_at, created_by, " \
	"current_version"
#define SECRET_COLS                                                      \
	"id, name, description, status, access_control, allowed, "       \
	"owner_uid, group_gid, mode, default_version, latest_version, "  \
	"kms_key_id, created_at, created_by, changed_at"
#define VERSION_COLS                                                     \
	"secret_id, version, state, created_at, created_by, kms_key_id, " \
	"kms_key_version, size, format"

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

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN_READ] = "BEGIN",
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_META_GET] = "SELECT value FROM meta WHERE name = ?1",
	[ST_META_SET] = "INSERT INTO meta(name, value) VALUES (?1, ?2) "
			"ON CONFLICT(name) DO UPDATE SET value = excluded.value",
	[ST_KEY_BY_ID] = "SELECT " KEY_COLS " FROM kms_keys WHERE id = ?1",
	[ST_KEY_BY_NAME] = "SELECT " KEY_COLS " FROM kms_keys WHERE name = ?1",
	[ST_KEY_LIST] = "SELECT " KEY_COLS " FROM kms_keys ORDER BY name",
	[ST_KEY_INSERT] = "INSERT INTO kms_keys(" KEY_COLS ") "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_KEY_UPDATE] = "UPDATE kms_keys SET state = ?2, description = ?3, "
			  "current_version = ?4 WHERE id = ?1",
	[ST_KEY_DELETE_VERSIONS] = "DELETE FROM kms_key_versions "
				   "WHERE key_id = ?1",
	[ST_KEY_DELETE] = "DELETE FROM kms_keys WHERE id = ?1",
	[ST_KEY_IN_USE] = "SELECT EXISTS(SELECT 1 FROM versions "
			  "WHERE kms_key_id = ?1 AND state <> ?2) "
			  "OR EXISTS(SELECT 1 FROM secrets "
			  "WHERE kms_key_id = ?1)",
	[ST_KEYVER_GET] = "SELECT wrapped FROM kms_key_versions "
			  "WHERE key_id = ?1 AND version = ?2",
	[ST_KEYVER_SET] = "UPDATE kms_key_versions SET wrapped = ?3 "
			  "WHERE key_id = ?1 AND version = ?2",
	[ST_KEYVER_INSERT] = "INSERT INTO kms_key_versions"
			     "(key_id, version, wrapped, created_at) "
			     "VALUES (?1, ?2, ?3, ?4)",
	[ST_SECRET_BY_ID] = "SELECT " SECRET_COLS " FROM secrets WHERE id = ?1",
	[ST_SECRET_BY_NAME] = "SELECT " SECRET_COLS
			      " FROM secrets WHERE name = ?1",
	[ST_SECRET_LIST] = "SELECT " SECRET_COLS " FROM secrets ORDER BY name",
	[ST_SECRET_LIST_AFTER] = "SELECT " SECRET_COLS " FROM secrets "
				 "WHERE name > ?1 ORDER BY name LIMIT ?2",
	[ST_SECRET_INSERT] = "INSERT INTO secrets(" SECRET_COLS ") VALUES "
			     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
			     "?12, ?13, ?14, ?15)",
	/* the indexed columns apart: SQLite rewrites an index whose column
	 * is SET even to the same value, two more pages to sync per new
	 * version; they change only on rename and change of key */
	[ST_SECRET_UPDATE] = "UPDATE secrets SET description = ?3, "
			     "status = ?4, access_control = ?5, allowed = ?6, "
			     "owner_uid = ?7, group_gid = ?8, mode = ?9, "
			     "default_version = ?10, latest_version = ?11, "
			     "changed_at = ?15 WHERE id = ?1",
	[ST_SECRET_REKEY] = "UPDATE secrets SET name = ?2, kms_key_id = ?3 "
			    "WHERE id = ?1 AND (name IS NOT ?2 "
			    "OR kms_key_id IS NOT ?3)",
	[ST_SECRET_DELETE_VERSIONS] = "DELETE FROM versions "
				      "WHERE secret_id = ?1",
	[ST_SECRET_DELETE] = "DELETE FROM secrets WHERE id = ?1",
	[ST_VERSION_GET] = "SELECT " VERSION_COLS " FROM versions "
			   "WHERE secret_id = ?1 AND version = ?2",
	[ST_VERSION_GET_BLOBS] = "SELECT " VERSION_COLS ", wrapped_dek, "
				 "ciphertext FROM versions "
				 "WHERE secret_id = ?1 AND version = ?2",
	[ST_VERSION_LIST] = "SELECT " VERSION_COLS " FROM versions "
			    "WHERE secret_id = ?1 ORDER BY version",
	[ST_VERSION_INSERT] = "INSERT INTO versions(" VERSION_COLS
			      ", wrapped_dek, ciphertext) VALUES "
			      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[ST_VERSION_STATE] = "UPDATE versions SET state = ?3 "
			     "WHERE secret_id = ?1 AND version = ?2",
	[ST_VERSION_DESTROY] = "UPDATE versions SET state = ?3, "
			       "wrapped_dek = NULL, ciphertext = NULL "
			       "WHERE secret_id = ?1 AND version = ?2",
	[ST_ROLE_GRANT] = "INSERT INTO roles(role, principal) VALUES (?1, ?2)",
	[ST_ROLE_REVOKE] = "DELETE FROM roles WHERE role = ?1 "
			   "AND principal = ?2",
	[ST_ROLE_LIST] = "SELECT role, principal FROM roles "
			 "ORDER BY role, principal",
	[ST_CHECK] = "PRAGMA integrity_check",
	[ST_FK_CHECK] = "PRAGMA foreign_key_check",
	[ST_COUNTS] = "SELECT (SELECT count(*) FROM secrets), "
		      "(SELECT count(*) FROM versions WHERE state <> ?1), "
		      "(SELECT count(*) FROM kms_keys)",
	[ST_AUDIT_ADD] = "INSERT INTO audit_pending(hint, line) VALUES (?1, ?2)",
	[ST_AUDIT_LIST] = "SELECT seq, hint, line FROM audit_pending "
			  "ORDER BY seq",
	[ST_AUDIT_DEL] = "DELETE FROM audit_pending WHERE seq = ?1",
	[ST_AUDIT_ANY] = "SELECT EXISTS(SELECT 1 FROM audit_pending)",
};

struct sq {
	struct sfs_store pub;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	sqlite3_file *file; /* the database file, for generation() */
	uint64_t gen;       /* last generation returned */
	int readonly;
	int lock_fd;        /* DIR/write.lock, or -1 (read-only) */
	int locked;         /* lock_fd held (a write transaction) */
	int wal;            /* the database is in WAL mode */
	int scrub;          /* blobs freed: TRUNCATE checkpoint owed */
	int scrub_txn;      /* blobs freed by the open transaction */
	int wrote;          /* this connection committed a change */
	unsigned commits;   /* ... how many (up to WAL_BUSY) */
	const volatile unsigned char *shm; /* wal-index, or NULL */
	unsigned char shm_seen[SHM_HDR_BYTES];
};

static struct sq *SQ(struct sfs_store *s)
{
	return s->backend;
}

/* Map an SQLite result to a core code (store.h's rule). */
static int map_rc(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return SFS_EEXIST;
	case SQLITE_READONLY:
		return SFS_EROFS;
	case SQLITE_NOMEM:
		return SFS_ENOMEM;
	}
	if ((rc & 0xff) == SQLITE_FULL)
		return SFS_ENOSPC;
	return SFS_EIO;
}

/* Record a failed SQLite call: "<what>: <why>". Never called with blob
 * contents; SQLite's messages name tables and columns, not values. */
static int sq_fail(struct sq *q, int rc, struct sfs_error *err,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int sq_fail(struct sq *q, int rc, struct sfs_error *err,
		   const char *fmt, ...)
{
	char what[200];
	int code = map_rc(rc);
	const char *why;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (code == SFS_EEXIST)
		why = "already exists";
	else if (code == SFS_EROFS)
		why = "store is read-only";
	else
		why = q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc);
	return sfs_error_set(err, code, "%s: %s", what, why);
}

static int not_found(struct sfs_error *err, const char *what, const char *id)
{
	return sfs_error_set(err, SFS_ENOENT, "%s '%s': not found", what, id);
}

/* Back to a clean statement: no pointers to the caller's data kept. */
static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (!p)
		return sqlite3_bind_zeroblob(st, i, 0);
	return sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

/* Copy a text column into a fixed field; -1 when it does not fit. */
static int col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *p = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	if (!p)
		n = 0;
	if (n >= cap)
		return -1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

static uint32_t col_u32(sqlite3_stmt *st, int col)
{
	return (uint32_t)sqlite3_column_int64(st, col);
}

/* A heap copy of a blob column; NULL or empty gives an empty blob. */
static int col_blob(sqlite3_stmt *st, int col, struct sfs_blob *out,
		    struct sfs_error *err)
{
	const void *p = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	out->data = NULL;
	out->len = 0;
	if (!p || n == 0)
		return 0;
	out->data = malloc(n);
	if (!out->data)
		return sfs_error_set(err, SFS_ENOMEM, "store: out of memory");
	memcpy(out->data, p, n);
	out->len = n;
	return 0;
}

static int corrupt(struct sfs_error *err, const char *table)
{
	return sfs_error_set(err, SFS_EIO, "%s: stored row is malformed",
			     table);
}

/*
 * Step a statement that changes rows. 0, SFS_ENOENT when must_change and
 * no row changed (the caller words the message), or the mapped error.
 */
static int step_change(struct sq *q, sqlite3_stmt *st, int bind_rc,
		       int must_change, struct sfs_error *err, const char *what)
{
	int rc = bind_rc;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		rc = (must_change && sqlite3_changes(q->db) == 0) ? SFS_ENOENT
								  : 0;
	else
		rc = sq_fail(q, rc, err, "%s", what);
	done(st);
	return rc;
}

/* ---- transactions ---------------------------------------------------- */

static int run_plain(struct sq *q, enum stmt_id id, struct sfs_error *err,
		     const char *what)
{
	return step_change(q, q->st[id], SQLITE_OK, 0, err, what);
}

/* How long a writer waits for DIR/write.lock, in ms: BUSY_TIMEOUT_MS
 * unless a test shortened it (sfs_store_sqlite_lock_wait). */
static int lock_wait_ms = BUSY_TIMEOUT_MS;

void sfs_store_sqlite_lock_wait(int ms)
{
	lock_wait_ms = ms > 0 ? ms : BUSY_TIMEOUT_MS;
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Take DIR/write.lock: see the comment at the top. A holder that is
 * stopped or hung must not hang every writer (and the daemon's FUSE
 * threads) for ever, so the wait is bounded like SQLite's busy timeout:
 * try without blocking, sleep 50 us doubling up to 2 ms, and give up
 * with SFS_EIO (what SQLITE_BUSY maps to) after lock_wait_ms. The
 * uncontended case is one system call.
 */
static int lock_take(struct sq *q, struct sfs_error *err)
{
	struct timespec nap = { 0, 50000 };
	int64_t end = 0;

	if (q->lock_fd < 0)
		return sfs_error_set(err, SFS_EROFS,
				     "begin: store opened read-only");
	while (flock(q->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return sfs_error_set(err, SFS_EIO, "lock store: %s",
					     sfs_strerrno(errno));
		if (!end)
			end = now_ms() + lock_wait_ms;
		else if (now_ms() >= end)
			return sfs_error_set(err, SFS_EIO,
					     "lock store: database is locked "
					     "(another process holds %s)",
					     LOCK_NAME);
		nanosleep(&nap, NULL);
		if (nap.tv_nsec < 2000000)
			nap.tv_nsec *= 2;
	}
	q->locked = 1;
	return 0;
}

static void lock_drop(struct sq *q)
{
	if (!q->locked)
		return;
	flock(q->lock_fd, LOCK_UN);
	q->locked = 0;
}

/*
 * Lock held, no transaction open: copy every WAL frame into the database
 * file and cut the WAL to zero bytes, so that the pages a destroy freed
 * (zeroed by secure_delete) overwrite their old images everywhere. Busy
 * (a reader still on an old snapshot past the timeout) leaves the debt
 * for the next commit or close.
 */
/*
 * Lock held, no transaction open (just committed): grow the WAL file
 * with zeros to its working size and sync it, once per busy connection
 * (and again after a TRUNCATE checkpoint). A commit then overwrites blocks that
 * are already there and its fdatasync has no file size to record: on the
 * dev VM a commit that appends to the WAL took 868 us through the mount,
 * one that overwrites 512 us. Zeros past the last frame are no frame
 * (wrong magic and checksums), so SQLite's recovery stops there. The
 * writes go through SQLite's own handle on the WAL (crashvfs sees them).
 */
static void wal_grow(struct sq *q)
{
	static const unsigned char zero[65536];
	sqlite3_file *f = NULL;
	sqlite3_int64 size = 0, n;

	if (!q->wal || q->readonly ||
	    sqlite3_file_control(q->db, "main", SQLITE_FCNTL_JOURNAL_POINTER,
				 &f) != SQLITE_OK ||
	    !f || !f->pMethods ||
	    f->pMethods->xFileSize(f, &size) != SQLITE_OK || size >= WAL_BYTES)
		return;
	for (; size < WAL_BYTES; size += n) {
		n = WAL_BYTES - size < (sqlite3_int64)sizeof(zero)
			    ? WAL_BYTES - size
			    : (sqlite3_int64)sizeof(zero);
		if (f->pMethods->xWrite(f, zero, (int)n, size) != SQLITE_OK)
			return;
	}
	f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
}

static void scrub_now(struct sq *q, int grow)
{
	int rc;

	if (!q->scrub || !q->wal)
		return;
	rc = sqlite3_wal_checkpoint_v2(q->db, "main",
				       SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (rc == SQLITE_OK) {
		q->scrub = 0;
		if (grow && q->commits >= WAL_BUSY)
			wal_grow(q);
	}
}

static int sq_begin(struct sfs_store *s, int write, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	int rc;

	if (write && q->readonly)
		return sfs_error_set(err, SFS_EROFS,
				     "begin: store opened read-only");
	if (!write)
		return run_plain(q, ST_BEGIN_READ, err, "begin");
	rc = lock_take(q, err);
	if (rc == 0)
		rc = run_plain(q, ST_BEGIN_WRITE, err, "begin");
	if (rc)
		lock_drop(q);
	return rc;
}

static void sq_rollback(struct sfs_store *s)
{
	struct sq *q = SQ(s);

	if (!sqlite3_get_autocommit(q->db))
		run_plain(q, ST_ROLLBACK, NULL, "rollback");
	q->scrub_txn = 0;
	lock_drop(q);
}

/* COMMIT (an automatic checkpoint may run inside it, under the lock),
 * then the caller's after(), the checkpoint a destroy owes, unlock. */
static int sq_commit_then(struct sfs_store *s, void (*after)(void *arg),
			  void *arg, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	int rc = run_plain(q, ST_COMMIT, err, "commit");

	/* A failed COMMIT (disk full, I/O error) may leave the transaction
	 * open; end it so the caller starts clean. */
	if (rc) {
		sq_rollback(s);
		return rc;
	}
	if (after)
		after(arg);
	q->scrub |= q->scrub_txn;
	q->scrub_txn = 0;
	q->wrote = 1;
	if (q->commits < WAL_BUSY && ++q->commits == WAL_BUSY)
		wal_grow(q);
	scrub_now(q, 1);
	lock_drop(q);
	return 0;
}

static int sq_commit(struct sfs_store *s, struct sfs_error *err)
{
	return sq_commit_then(s, NULL, NULL, err);
}

/* ---- meta ------------------------------------------------------------ */

static int sq_meta_get(struct sfs_store *s, const char *name,
		       struct sfs_blob *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_META_GET];
	int rc = bind_text(st, 1, name);

	out->data = NULL;
	out->len = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = col_blob(st, 0, out, err);
	else if (rc == SQLITE_DONE)
		rc = not_found(err, "meta", name);
	else
		rc = sq_fail(q, rc, err, "meta '%s'", name);
	done(st);
	return rc;
}

static int sq_meta_set(struct sfs_store *s, const char *name, const void *v,
		       size_t len, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_META_SET];
	int rc = bind_text(st, 1, name) | bind_blob(st, 2, v, len);

	return step_change(q, st, rc, 0, err, "set meta");
}

/* ---- KMS keys -------------------------------------------------------- */

static int key_row(sqlite3_stmt *st, struct sfs_key_rec *k,
		   struct sfs_error *err)
{
	memset(k, 0, sizeof(*k));
	if (col_text(st, 0, k->id, sizeof(k->id)) ||
	    col_text(st, 1, k->name, sizeof(k->name)) ||
	    col_text(st, 4, k->description, sizeof(k->description)) ||
	    col_text(st, 6, k->created_by, sizeof(k->created_by)))
		return corrupt(err, "kms_keys");
	k->type = sqlite3_column_int(st, 2);
	k->state = sqlite3_column_int(st, 3);
	k->created_at = sqlite3_column_int64(st, 5);
	k->current_version = col_u32(st, 7);
	return 0;
}

/* One-row lookup by a text key: 1 found, 0 not, or an error code. */
static int get_one(struct sq *q, enum stmt_id id, const char *key,
		   int (*row)(sqlite3_stmt *, void *, struct sfs_error *),
		   void *out, struct sfs_error *err)
{
	sqlite3_stmt *st = q->st[id];
	int rc = bind_text(st, 1, key);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = row(st, out, err);
		if (rc == 0)
			rc = 1;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "look up '%s'", key);
	}
	done(st);
	return rc;
}

static int key_row_cb(sqlite3_stmt *st, void *out, struct sfs_error *err)
{
	return key_row(st, out, err);
}

/*
 * Ids are UUIDs, 36 characters; names may look like one too, so an id
 * match wins. Anything else can only be a name: skip the id probe.
 */
static int sq_key_get(struct sfs_store *s, const char *id_or_name,
		      struct sfs_key_rec *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	int rc = 0;

	if (strlen(id_or_name) == SFS_ID_MAX)
		rc = get_one(q, ST_KEY_BY_ID, id_or_name, key_row_cb, out, err);
	if (rc == 0)
		rc = get_one(q, ST_KEY_BY_NAME, id_or_name, key_row_cb, out,
			     err);
	if (rc == 0)
		return not_found(err, "kms key", id_or_name);
	return rc < 0 ? rc : 0;
}

static int sq_key_list(struct sfs_store *s, sfs_key_cb cb, void *arg,
		       struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_LIST];
	struct sfs_key_rec k;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = key_row(st, &k, err);
		if (r == 0)
			r = cb(arg, &k);
		if (r)
			break;
	}
	if (!r && rc != SQLITE_DONE)
		r = sq_fail(q, rc, err, "list kms keys");
	done(st);
	return r;
}

static int sq_key_insert(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_INSERT];
	int rc = bind_text(st, 1, k->id) | bind_text(st, 2, k->name) |
		 sqlite3_bind_int(st, 3, k->type) |
		 sqlite3_bind_int(st, 4, k->state) |
		 bind_text(st, 5, k->description) |
		 sqlite3_bind_int64(st, 6, k->created_at) |
		 bind_text(st, 7, k->created_by) |
		 sqlite3_bind_int64(st, 8, k->current_version);

	rc = step_change(q, st, rc, 0, err, "insert kms key");
	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "kms key '%s': already exists",
			      k->name);
	return rc;
}

static int sq_key_update(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_UPDATE];
	int rc = bind_text(st, 1, k->id) | sqlite3_bind_int(st, 2, k->state) |
		 bind_text(st, 3, k->description) |
		 sqlite3_bind_int64(st, 4, k->current_version);

	rc = step_change(q, st, rc, 1, err, "update kms key");
	return rc == SFS_ENOENT ? not_found(err, "kms key", k->id) : rc;
}

/* Its versions (wrapped key material) go first, then the key itself. */
static int sq_key_delete(struct sfs_store *s, const char *id,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_DELETE_VERSIONS];
	int rc = step_change(q, st, bind_text(st, 1, id), 0, err,
			     "delete kms key versions");

	if (rc)
		return rc;
	st = q->st[ST_KEY_DELETE];
	rc = step_change(q, st, bind_text(st, 1, id), 1, err,
			 "delete kms key");
	if (rc == 0)
		q->scrub_txn = 1; /* its wrapped material */
	return rc == SFS_ENOENT ? not_found(err, "kms key", id) : rc;
}

static int sq_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEY_IN_USE];
	int rc = bind_text(st, 1, id) |
		 sqlite3_bind_int(st, 2, SFS_STATE_DESTROYED);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*in_use = sqlite3_column_int(st, 0) != 0;
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "kms key '%s' in use", id);
	}
	done(st);
	return rc;
}

static int sq_keyver_get(struct sfs_store *s, const char *key_id,
			 uint32_t version, struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEYVER_GET];
	int rc = bind_text(st, 1, key_id) |
		 sqlite3_bind_int64(st, 2, version);

	wrapped->data = NULL;
	wrapped->len = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = col_blob(st, 0, wrapped, err);
	else if (rc == SQLITE_DONE)
		rc = sfs_error_set(err, SFS_ENOENT,
				   "kms key '%s' version %u: not found",
				   key_id, (unsigned)version);
	else
		rc = sq_fail(q, rc, err, "kms key '%s' version %u", key_id,
			     (unsigned)version);
	done(st);
	return rc;
}

static int sq_keyver_insert(struct sfs_store *s, const char *key_id,
			    uint32_t version, const struct sfs_blob *wrapped,
			    int64_t created_at, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEYVER_INSERT];
	int rc = bind_text(st, 1, key_id) |
		 sqlite3_bind_int64(st, 2, version) |
		 bind_blob(st, 3, wrapped->data, wrapped->len) |
		 sqlite3_bind_int64(st, 4, created_at);

	return step_change(q, st, rc, 0, err, "insert kms key version");
}

/* rekey: the old material's cells are freed, so scrub them */
static int sq_keyver_set(struct sfs_store *s, const char *key_id,
			 uint32_t version, const struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_KEYVER_SET];
	int rc = bind_text(st, 1, key_id) |
		 sqlite3_bind_int64(st, 2, version) |
		 bind_blob(st, 3, wrapped->data, wrapped->len);

	rc = step_change(q, st, rc, 1, err, "replace kms key version");
	if (rc == 0)
		q->scrub_txn = 1;
	if (rc == SFS_ENOENT)
		sfs_error_set(err, rc, "kms key '%s' version %u: not found",
			      key_id, (unsigned)version);
	return rc;
}

/* ---- secrets --------------------------------------------------------- */

static int secret_row(sqlite3_stmt *st, struct sfs_secret_rec *r,
		      struct sfs_error *err)
{
	memset(r, 0, sizeof(*r));
	if (col_text(st, 0, r->id, sizeof(r->id)) ||
	    col_text(st, 1, r->name, sizeof(r->name)) ||
	    col_text(st, 2, r->description, sizeof(r->description)) ||
	    col_text(st, 5, r->allowed, sizeof(r->allowed)) ||
	    col_text(st, 11, r->kms_key_id, sizeof(r->kms_key_id)) ||
	    col_text(st, 13, r->created_by, sizeof(r->created_by)))
		return corrupt(err, "secrets");
	r->status = sqlite3_column_int(st, 3);
	r->access_control = sqlite3_column_int(st, 4);
	r->owner = col_u32(st, 6);
	r->group = col_u32(st, 7);
	r->mode = col_u32(st, 8);
	r->default_version = col_u32(st, 9);
	r->latest_version = col_u32(st, 10);
	r->created_at = sqlite3_column_int64(st, 12);
	r->changed_at = sqlite3_column_int64(st, 14);
	return 0;
}

static int secret_row_cb(sqlite3_stmt *st, void *out, struct sfs_error *err)
{
	return secret_row(st, out, err);
}

/* Bind every column of a secret, numbered as in SECRET_COLS. */
static int bind_secret(sqlite3_stmt *st, const struct sfs_secret_rec *r)
{
	return bind_text(st, 1, r->id) | bind_text(st, 2, r->name) |
	       bind_text(st, 3, r->description) |
	       sqlite3_bind_int(st, 4, r->status) |
	       sqlite3_bind_int(st, 5, r->access_control) |
	       bind_text(st, 6, r->allowed) |
	       sqlite3_bind_int64(st, 7, r->owner) |
	       sqlite3_bind_int64(st, 8, r->group) |
	       sqlite3_bind_int64(st, 9, r->mode) |
	       sqlite3_bind_int64(st, 10, r->default_version) |
	       sqlite3_bind_int64(st, 11, r->latest_version) |
	       bind_text(st, 12, r->kms_key_id) |
	       sqlite3_bind_int64(st, 13, r->created_at) |
	       bind_text(st, 14, r->created_by) |
	       sqlite3_bind_int64(st, 15, r->changed_at);
}

static int sq_secret_get(struct sfs_store *s, const char *id_or_name,
			 struct sfs_secret_rec *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	int rc = 0;

	if (strlen(id_or_name) == SFS_ID_MAX)
		rc = get_one(q, ST_SECRET_BY_ID, id_or_name, secret_row_cb,
			     out, err);
	if (rc == 0)
		rc = get_one(q, ST_SECRET_BY_NAME, id_or_name, secret_row_cb,
			     out, err);
	if (rc == 0)
		return not_found(err, "secret", id_or_name);
	return rc < 0 ? rc : 0;
}

/* Step st (bound) and hand each secret row to cb. */
static int secret_rows(struct sq *q, sqlite3_stmt *st, int rc,
		       sfs_secret_cb cb, void *arg, struct sfs_error *err)
{
	struct sfs_secret_rec r;
	int ret = 0;

	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = secret_row(st, &r, err);
		if (ret == 0)
			ret = cb(arg, &r);
		if (ret)
			break;
		rc = SQLITE_OK; /* step again */
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "list secrets");
	done(st);
	return ret;
}

static int sq_secret_list_after(struct sfs_store *s, const char *after_name,
				unsigned limit, sfs_secret_cb cb, void *arg,
				struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_LIST_AFTER];
	int rc = bind_text(st, 1, after_name) |
		 sqlite3_bind_int64(st, 2, limit);

	return secret_rows(q, st, rc, cb, arg, err);
}

static int sq_secret_list(struct sfs_store *s, sfs_secret_cb cb, void *arg,
			  struct sfs_error *err)
{
	struct sq *q = SQ(s);

	return secret_rows(q, q->st[ST_SECRET_LIST], SQLITE_OK, cb, arg, err);
}

static int sq_secret_insert(struct sfs_store *s,
			    const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_INSERT];
	int rc = step_change(q, st, bind_secret(st, r), 0, err,
			     "insert secret");

	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "secret '%s': already exists",
			      r->name);
	return rc;
}

static int sq_secret_update(struct sfs_store *s,
			    const struct sfs_secret_rec *r,
			    struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_UPDATE];
	int rc = step_change(q, st, bind_secret(st, r), 1, err,
			     "update secret");

	st = q->st[ST_SECRET_REKEY];
	if (rc == 0)
		rc = step_change(q, st,
				 bind_text(st, 1, r->id) |
					 bind_text(st, 2, r->name) |
					 bind_text(st, 3, r->kms_key_id),
				 0, err, "update secret");
	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "secret '%s': already exists",
			      r->name);
	return rc == SFS_ENOENT ? not_found(err, "secret", r->id) : rc;
}

static int sq_secret_delete(struct sfs_store *s, const char *id,
			    struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_SECRET_DELETE_VERSIONS];
	int rc = step_change(q, st, bind_text(st, 1, id), 0, err,
			     "delete secret versions");

	if (rc)
		return rc;
	st = q->st[ST_SECRET_DELETE];
	rc = step_change(q, st, bind_text(st, 1, id), 1, err,
			 "delete secret");
	if (rc == 0)
		q->scrub_txn = 1;
	return rc == SFS_ENOENT ? not_found(err, "secret", id) : rc;
}

/* ---- versions -------------------------------------------------------- */

static int version_row(sqlite3_stmt *st, struct sfs_version_rec *v,
		       struct sfs_error *err)
{
	memset(v, 0, sizeof(*v));
	if (col_text(st, 0, v->secret_id, sizeof(v->secret_id)) ||
	    col_text(st, 4, v->created_by, sizeof(v->created_by)) ||
	    col_text(st, 5, v->kms_key_id, sizeof(v->kms_key_id)))
		return corrupt(err, "versions");
	v->version = col_u32(st, 1);
	v->state = sqlite3_column_int(st, 2);
	v->created_at = sqlite3_column_int64(st, 3);
	v->kms_key_version = col_u32(st, 6);
	v->size = col_u32(st, 7);
	v->format = sqlite3_column_int(st, 8);
	return 0;
}

static int version_blobs(sqlite3_stmt *st, struct sfs_version_rec *v,
			 struct sfs_error *err)
{
	int rc = col_blob(st, 9, &v->wrapped_dek, err);

	if (rc == 0)
		rc = col_blob(st, 10, &v->ciphertext, err);
	if (rc)
		sfs_version_rec_release(v);
	return rc;
}

static int sq_version_get(struct sfs_store *s, const char *secret_id,
			  uint32_t version, int with_blobs,
			  struct sfs_version_rec *out, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st =
		q->st[with_blobs ? ST_VERSION_GET_BLOBS : ST_VERSION_GET];
	int rc = bind_text(st, 1, secret_id) |
		 sqlite3_bind_int64(st, 2, version);

	memset(out, 0, sizeof(*out));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = version_row(st, out, err);
		if (rc == 0 && with_blobs)
			rc = version_blobs(st, out, err);
	} else if (rc == SQLITE_DONE) {
		rc = sfs_error_set(err, SFS_ENOENT,
				   "secret '%s' version %u: not found",
				   secret_id, (unsigned)version);
	} else {
		rc = sq_fail(q, rc, err, "secret '%s' version %u",
			     secret_id, (unsigned)version);
	}
	done(st);
	return rc;
}

static int sq_version_list(struct sfs_store *s, const char *secret_id,
			   sfs_version_cb cb, void *arg, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_VERSION_LIST];
	struct sfs_version_rec v;
	int rc = bind_text(st, 1, secret_id), ret = 0;

	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = version_row(st, &v, err);
		if (ret == 0)
			ret = cb(arg, &v);
		if (ret)
			break;
		rc = SQLITE_OK; /* step again */
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "list versions of '%s'",
			      secret_id);
	done(st);
	return ret;
}

static int sq_version_insert(struct sfs_store *s,
			     const struct sfs_version_rec *v,
			     struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_VERSION_INSERT];
	int rc = bind_text(st, 1, v->secret_id) |
		 sqlite3_bind_int64(st, 2, v->version) |
		 sqlite3_bind_int(st, 3, v->state) |
		 sqlite3_bind_int64(st, 4, v->created_at) |
		 bind_text(st, 5, v->created_by) |
		 bind_text(st, 6, v->kms_key_id) |
		 sqlite3_bind_int64(st, 7, v->kms_key_version) |
		 sqlite3_bind_int64(st, 8, v->size) |
		 sqlite3_bind_int(st, 9, v->format) |
		 sqlite3_bind_blob64(st, 10, v->wrapped_dek.data,
				     v->wrapped_dek.len, SQLITE_STATIC) |
		 sqlite3_bind_blob64(st, 11, v->ciphertext.data,
				     v->ciphertext.len, SQLITE_STATIC);

	rc = step_change(q, st, rc, 0, err, "insert version");
	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "secret '%s' version %u: already "
			      "exists", v->secret_id, (unsigned)v->version);
	return rc;
}

/* Destroying sets both blobs NULL; secure_delete zeroes the old bytes, and
 * the checkpoint after commit carries that over the database file and cuts
 * the WAL (see the comment at the top). */
static int sq_version_set_state(struct sfs_store *s, const char *secret_id,
				uint32_t version, int state,
				struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[state == SFS_STATE_DESTROYED ?
				 ST_VERSION_DESTROY : ST_VERSION_STATE];
	int rc = bind_text(st, 1, secret_id) |
		 sqlite3_bind_int64(st, 2, version) |
		 sqlite3_bind_int(st, 3, state);

	rc = step_change(q, st, rc, 1, err, "set version state");
	if (rc == 0 && state == SFS_STATE_DESTROYED)
		q->scrub_txn = 1;
	if (rc == SFS_ENOENT)
		sfs_error_set(err, rc, "secret '%s' version %u: not found",
			      secret_id, (unsigned)version);
	return rc;
}

/* ---- roles ----------------------------------------------------------- */

static int sq_role_grant(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_ROLE_GRANT];
	int rc = bind_text(st, 1, role) | bind_text(st, 2, principal);

	rc = step_change(q, st, rc, 0, err, "grant role");
	if (rc == SFS_EEXIST)
		sfs_error_set(err, rc, "role '%s' for '%s': already "
			      "granted", role, principal);
	return rc;
}

static int sq_role_revoke(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_ROLE_REVOKE];
	int rc = bind_text(st, 1, role) | bind_text(st, 2, principal);

	rc = step_change(q, st, rc, 1, err, "revoke role");
	if (rc == SFS_ENOENT)
		sfs_error_set(err, rc, "role '%s' for '%s': not granted",
			      role, principal);
	return rc;
}

static int sq_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
			struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_ROLE_LIST];
	int rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *role = (const char *)sqlite3_column_text(st, 0);
		const char *who = (const char *)sqlite3_column_text(st, 1);

		ret = (role && who) ? cb(arg, role, who)
				    : corrupt(err, "roles");
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "list roles");
	done(st);
	return ret;
}

/* ---- health, counts, generation -------------------------------------- */

static int sq_check(struct sfs_store *s, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_CHECK];
	const char *res;
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		res = (const char *)sqlite3_column_text(st, 0);
		rc = (res && strcmp(res, "ok") == 0)
			     ? 0
			     : sfs_error_set(err, SFS_EIO,
					     "store integrity check: %s",
					     res ? res : "no answer");
	} else {
		rc = sq_fail(q, rc, err, "store integrity check");
	}
	done(st);
	if (rc)
		return rc;
	st = q->st[ST_FK_CHECK];
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		res = (const char *)sqlite3_column_text(st, 0);
		rc = sfs_error_set(err, SFS_EIO, "store integrity check: "
				   "a row of '%s' refers to a missing row",
				   res ? res : "?");
	} else if (rc != SQLITE_DONE) {
		rc = sq_fail(q, rc, err, "store foreign key check");
	} else {
		rc = 0;
	}
	done(st);
	return rc;
}

static int sq_counts(struct sfs_store *s, uint64_t *secrets,
		     uint64_t *versions, uint64_t *keys, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_COUNTS];
	int rc = sqlite3_bind_int(st, 1, SFS_STATE_DESTROYED);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*secrets = (uint64_t)sqlite3_column_int64(st, 0);
		*versions = (uint64_t)sqlite3_column_int64(st, 1);
		*keys = (uint64_t)sqlite3_column_int64(st, 2);
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "count store rows");
	}
	done(st);
	return rc;
}

/*
 * The wal-index header as this connection maps it (see the comment at
 * the top), or NULL: not in WAL mode, or no shared memory (a read-only
 * open that SQLite serves from heap memory).
 */
static void shm_find(struct sq *q)
{
	volatile void *p = NULL;

	if (!q->wal || q->shm || !q->file || !q->file->pMethods ||
	    q->file->pMethods->iVersion < 2 || !q->file->pMethods->xShmMap)
		return;
	if (q->file->pMethods->xShmMap(q->file, 0, 32768, 0, &p) ==
		SQLITE_OK &&
	    p)
		q->shm = p;
}

/* Rollback mode: the 4-byte big-endian file change counter at offset 24
 * of the database header, which every commit increments, read through
 * SQLite's own file handle (a second descriptor's close would drop
 * SQLite's POSIX locks) and widened across wrap-around. */
static uint64_t counter_generation(struct sq *q)
{
	unsigned char b[10]; /* header bytes 18..27 */
	uint32_t now;

	if (!q->file || !q->file->pMethods ||
	    q->file->pMethods->xRead(q->file, b, sizeof(b), 18) != SQLITE_OK)
		return q->gen;
	if (b[0] == 2 || b[1] == 2) { /* switched to WAL by another */
		q->gen += (uint64_t)1 << 32;
		return q->gen;
	}
	now = (uint32_t)b[6] << 24 | (uint32_t)b[7] << 16 |
	      (uint32_t)b[8] << 8 | b[9];
	if (now < (uint32_t)q->gen)
		q->gen += (uint64_t)1 << 32;
	q->gen = (q->gen & ~(uint64_t)0xffffffff) | now;
	return q->gen;
}

/*
 * WAL mode: one more whenever the wal-index header differs from the
 * copy seen last. A torn read (a writer updating it right now) only
 * makes the caller drop its caches once more; the header is written
 * after the commit's frames, so a header seen new means a snapshot that
 * holds the commit. With no mapping every call reports a change: the
 * caller then caches nothing rather than serve what may be stale.
 */
static uint64_t sq_generation(struct sfs_store *s)
{
	struct sq *q = SQ(s);
	unsigned char now[SHM_HDR_BYTES];
	int i;

	if (!q->wal)
		return counter_generation(q);
	if (!q->shm)
		shm_find(q); /* mapped by the first read transaction */
	if (!q->shm)
		return ++q->gen;
	for (i = 0; i < SHM_HDR_BYTES; i++)
		now[i] = q->shm[i];
	if (memcmp(now, q->shm_seen, sizeof(now)) != 0) {
		memcpy(q->shm_seen, now, sizeof(now));
		q->gen++;
	}
	return q->gen;
}

/* ---- pending audit lines ------------------------------------------- */

static int sq_audit_add(struct sfs_store *s, const char *line, size_t len,
			int64_t hint, int64_t *seq, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_ADD];
	int rc = sqlite3_bind_int64(st, 1, hint) |
		 sqlite3_bind_blob64(st, 2, line, len, SQLITE_STATIC);

	rc = step_change(q, st, rc, 0, err, "add pending audit line");
	if (rc == 0 && seq)
		*seq = sqlite3_last_insert_rowid(q->db);
	return rc;
}

static int sq_audit_list(struct sfs_store *s, sfs_audit_pending_cb cb,
			 void *arg, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_LIST];
	int rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 2);
		size_t n = (size_t)sqlite3_column_bytes(st, 2);

		ret = cb(arg, sqlite3_column_int64(st, 0),
			 sqlite3_column_int64(st, 1), p ? p : "", n);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, err, "list pending audit lines");
	done(st);
	return ret;
}

static int sq_audit_del(struct sfs_store *s, int64_t seq,
			struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_DEL];

	return step_change(q, st, sqlite3_bind_int64(st, 1, seq), 0, err,
			   "drop pending audit line");
}

static int sq_audit_any(struct sfs_store *s, int *any, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st = q->st[ST_AUDIT_ANY];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*any = sqlite3_column_int(st, 0);
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "look for pending audit lines");
	}
	done(st);
	return rc;
}

/* ---- open, close ----------------------------------------------------- */

static void sq_close(struct sfs_store *s)
{
	struct sq *q = SQ(s);
	int i;

	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	if (q->db)
		sq_rollback(s);
	/* A checkpoint a destroy still owes, or one after this connection's
	 * writes, so that a closed store's database file holds everything
	 * (a copy of secretfs.db alone is whole) and the WAL empty; under
	 * the lock. */
	q->scrub |= q->wrote;
	if (q->db && q->scrub && lock_take(q, NULL) == 0) {
		scrub_now(q, 0);
		lock_drop(q);
	}
	/* no checkpoint here: SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE */
	sqlite3_close(q->db);
	if (q->lock_fd >= 0)
		close(q->lock_fd);
	free(q);
}

static const struct sfs_store_ops sq_ops = {
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.meta_get = sq_meta_get,
	.meta_set = sq_meta_set,
	.key_get = sq_key_get,
	.key_list = sq_key_list,
	.key_insert = sq_key_insert,
	.key_update = sq_key_update,
	.key_delete = sq_key_delete,
	.key_in_use = sq_key_in_use,
	.keyver_get = sq_keyver_get,
	.keyver_insert = sq_keyver_insert,
	.keyver_set = sq_keyver_set,
	.secret_get = sq_secret_get,
	.secret_list = sq_secret_list,
	.secret_insert = sq_secret_insert,
	.secret_update = sq_secret_update,
	.secret_delete = sq_secret_delete,
	.version_get = sq_version_get,
	.version_list = sq_version_list,
	.version_insert = sq_version_insert,
	.version_set_state = sq_version_set_state,
	.role_grant = sq_role_grant,
	.role_revoke = sq_role_revoke,
	.role_list = sq_role_list,
	.check = sq_check,
	.counts = sq_counts,
	.generation = sq_generation,
	.secret_list_after = sq_secret_list_after,
	.commit_then = sq_commit_then,
	.audit_add = sq_audit_add,
	.audit_list = sq_audit_list,
	.audit_del = sq_audit_del,
	.audit_any = sq_audit_any,
};

int sfs_store_sqlite_path(const char *dir, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", dir, DB_NAME);

	return (n < 0 || (size_t)n >= cap) ? SFS_EINVAL : 0;
}

/* Connection settings; they are per connection, so every open sets them
 * (see the comment at the top). The journal mode is the database's. */
static const char setup_sql[] = "PRAGMA synchronous = FULL;"
				"PRAGMA wal_autocheckpoint = 512;"
				"PRAGMA secure_delete = ON;"
				"PRAGMA foreign_keys = ON;"
				"PRAGMA temp_store = MEMORY;";

static int exec(struct sq *q, const char *sql, struct sfs_error *err,
		const char *what)
{
	int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail(q, rc, err, "%s", what);
}

static int user_version(struct sq *q, int *out, struct sfs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st,
				    NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = 0;
	} else {
		rc = sq_fail(q, rc, err, "read store schema version");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Bring the schema to SCHEMA_VERSION under the write lock, so that two
 * processes opening a new store at once migrate it once. */
static int migrate(struct sq *q, struct sfs_error *err)
{
	int v = 0, rc = lock_take(q, err);

	if (rc)
		return rc;
	rc = exec(q, "BEGIN IMMEDIATE", err, "migrate store");
	if (rc) {
		lock_drop(q);
		return rc;
	}
	rc = user_version(q, &v, err);
	while (rc == 0 && v < SCHEMA_VERSION) {
		rc = exec(q, migrations[v], err, "migrate store schema");
		v++;
	}
	if (rc == 0)
		rc = exec(q, "COMMIT", err, "migrate store");
	if (rc)
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	else
		q->wrote = 1;
	lock_drop(q);
	return rc;
}

/* Check the schema version; migrate when allowed and needed. */
static int schema(struct sq *q, int create, struct sfs_error *err)
{
	int v = 0, rc = user_version(q, &v, err);

	if (rc)
		return rc;
	if (v > SCHEMA_VERSION)
		return sfs_error_set(err, SFS_EIO, "store schema version %d is "
				     "newer than this program's (%d)",
				     v, SCHEMA_VERSION);
	if (v == 0 && (!create || q->readonly))
		return sfs_error_set(err, SFS_ENOSTORE,
				     "store database is empty");
	if (v < SCHEMA_VERSION && q->readonly)
		return sfs_error_set(err, SFS_EIO, "store schema version %d "
				     "needs an upgrade: open it read-write "
				     "once", v);
	return v < SCHEMA_VERSION ? migrate(q, err) : 0;
}

static int prepare_all(struct sq *q, struct sfs_error *err)
{
	int i, rc;

	for (i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(q->db, stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT, &q->st[i],
					NULL);
		if (rc != SQLITE_OK)
			return sq_fail(q, rc, err, "prepare store statement");
	}
	return 0;
}

/* Make sure the database file exists with mode 0600 (SQLite would
 * create it 0644 less the umask), or report that there is no store. Never
 * through a symlink; a regular file owned by the caller (storedir.h). */
static int ensure_file(const char *dir, int create, int readonly,
		       struct sfs_error *err)
{
	int fd = sfs_storedir_open(
	    dir, DB_NAME, create && !readonly ? O_RDWR | O_CREAT : O_RDONLY,
	    0600, err);

	if (fd == SFS_ENOENT)
		return sfs_error_set(err, SFS_ENOSTORE,
				     "store '%s': no such database", dir);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/* The journal mode in *wal (1: WAL); with set, switch to WAL first. */
static int journal_mode(struct sq *q, int set, struct sfs_error *err)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc = sqlite3_prepare_v2(q->db,
				    set ? "PRAGMA journal_mode = WAL"
					: "PRAGMA journal_mode",
				    -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		mode = (const char *)sqlite3_column_text(st, 0);
		q->wal = mode && strcmp(mode, "wal") == 0;
		rc = (set && !q->wal)
			     ? sfs_error_set(err, SFS_EIO,
					     "store: cannot switch to WAL")
			     : 0;
	} else {
		rc = sq_fail(q, rc, err, "read store journal mode");
	}
	sqlite3_finalize(st);
	return rc;
}

/* WAL from now on; a read-write open switches a rollback-journal store
 * (under the lock: the switch is a write). */
static int use_wal(struct sq *q, struct sfs_error *err)
{
	int rc = journal_mode(q, 0, err);

	if (rc || q->wal || q->readonly)
		return rc;
	rc = lock_take(q, err);
	if (rc == 0)
		rc = journal_mode(q, 1, err);
	lock_drop(q);
	return rc;
}

static int open_lock(struct sq *q, const char *dir, struct sfs_error *err)
{
	if (q->readonly)
		return 0;
	q->lock_fd =
	    sfs_storedir_open(dir, LOCK_NAME, O_RDWR | O_CREAT, 0600, err);
	return q->lock_fd < 0 ? q->lock_fd : 0;
}

static int sq_open_db(struct sq *q, const char *path, struct sfs_error *err)
{
	int flags =
	    (q->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
	    SQLITE_OPEN_NOMUTEX | /* the caller serialises (store.h) */
	    SQLITE_OPEN_NOFOLLOW;
	int rc = sqlite3_open_v2(path, &q->db, flags, NULL);

	if (rc != SQLITE_OK)
		return sq_fail(q, rc, err, "open store '%s'", path);
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
	rc = sqlite3_db_config(q->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
			       NULL);
	if (rc != SQLITE_OK)
		return sq_fail(q, rc, err, "configure store");
	if (sqlite3_file_control(q->db, "main", SQLITE_FCNTL_FILE_POINTER,
				 &q->file) != SQLITE_OK)
		q->file = NULL;
	rc = exec(q, setup_sql, err, "configure store");
	return rc ? rc : use_wal(q, err);
}

int sfs_store_sqlite_open(const char *dir, int create, int readonly,
			  struct sfs_store **out, struct sfs_error *err)
{
	char path[4096];
	struct sq *q;
	int rc;

	*out = NULL;
	if (sfs_store_sqlite_path(dir, path, sizeof(path)))
		return sfs_error_set(err, SFS_EINVAL, "store path too long");
	rc = ensure_file(dir, create, readonly, err);
	if (rc)
		return rc;
	q = calloc(1, sizeof(*q));
	if (!q)
		return sfs_error_set(err, SFS_ENOMEM, "store: out of memory");
	q->pub.ops = &sq_ops;
	q->pub.backend = q;
	q->readonly = readonly;
	q->lock_fd = -1;
	rc = open_lock(q, dir, err);
	if (rc == 0)
		rc = sq_open_db(q, path, err);
	if (rc == 0)
		rc = schema(q, create, err);
	if (rc == 0)
		rc = prepare_all(q, err);
	if (rc) {
		sq_close(&q->pub);
		return rc;
	}
	shm_find(q);
	sq_generation(&q->pub);
	*out = &q->pub;
	return 0;
}

/* --- backup and restore ------------------------------------------------ */

/*
 * Copy the database at src into a new file dst (created 0600, O_EXCL: an
 * existing file is SFS_EEXIST) with SQLite's online backup API: one step
 * that copies every page under one read transaction, so the copy is
 * consistent even while a daemon or the CLI writes. The source opens
 * read-only and never checkpoints. The copy gets a rollback journal, so
 * that it is one self-contained file; a store opened on it switches it
 * back to WAL.
 */
static int db_copy(const char *src, const char *dst, struct sfs_error *err)
{
	sqlite3 *from = NULL, *to = NULL;
	sqlite3_backup *b;
	int rc, fd;

	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return sfs_error_set(err,
				     errno == EEXIST ? SFS_EEXIST : SFS_EIO,
				     "'%s': %s", dst, sfs_strerrno(errno));
	close(fd);
	rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_db_config(from, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
				       1, NULL);
	if (rc == SQLITE_OK)
		sqlite3_busy_timeout(from, BUSY_TIMEOUT_MS);
	if (rc == SQLITE_OK)
		rc = sqlite3_open_v2(dst, &to, SQLITE_OPEN_READWRITE, NULL);
	b = rc == SQLITE_OK ? sqlite3_backup_init(to, "main", from, "main")
			    : NULL;
	if (b) {
		rc = sqlite3_backup_step(b, -1);
		rc = sqlite3_backup_finish(b) == SQLITE_OK && rc == SQLITE_DONE
			 ? SQLITE_OK
			 : (rc == SQLITE_DONE ? SQLITE_ERROR : rc);
	} else if (rc == SQLITE_OK) {
		rc = sqlite3_errcode(to);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(to, "PRAGMA journal_mode = DELETE;", NULL,
				  NULL, NULL);
	if (rc != SQLITE_OK) {
		sfs_error_set(err, map_rc(rc), "copy '%s' to '%s': %s", src,
			      dst, sqlite3_errstr(rc));
		unlink(dst);
	}
	sqlite3_close(to);
	sqlite3_close(from);
	return rc == SQLITE_OK ? 0 : err->code;
}

int sfs_store_sqlite_backup(const char *dir, const char *file,
			    struct sfs_error *err)
{
	char path[4096];

	if (sfs_store_sqlite_path(dir, path, sizeof(path)))
		return sfs_error_set(err, SFS_EINVAL, "store path too long");
	if (access(path, F_OK))
		return sfs_error_set(err, SFS_ENOSTORE,
				     "store '%s': no such "
				     "database",
				     path);
	return db_copy(path, file, err);
}

/* Is dir missing (made here, 0700) or an empty directory? */
static int empty_or_new(const char *dir, struct sfs_error *err)
{
	struct dirent *e;
	DIR *d;
	int used = 0;

	if (mkdir(dir, 0700) == 0)
		return 0;
	d = errno == EEXIST ? opendir(dir) : NULL;
	if (!d)
		return sfs_error_set(err, SFS_EINVAL, "'%s': %s", dir,
				     sfs_strerrno(errno));
	while (!used && (e = readdir(d)) != NULL)
		used = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return used ? sfs_error_set(err, SFS_ENOTEMPTY,
				    "'%s': not an empty directory", dir)
		    : 0;
}

int sfs_store_sqlite_restore(const char *file, const char *dir,
			     struct sfs_error *err)
{
	char path[4096];
	int rc;

	if (sfs_store_sqlite_path(dir, path, sizeof(path)))
		return sfs_error_set(err, SFS_EINVAL, "store path too long");
	if (access(file, R_OK))
		return sfs_error_set(err, SFS_EIO, "'%s': %s", file,
				     sfs_strerrno(errno));
	rc = empty_or_new(dir, err);
	return rc ? rc : db_copy(file, path, err);
}
