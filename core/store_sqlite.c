/*
 * SQLite storage backend: DIR/secretfs.db (mode 0600); with
 * store_sqlite_*.c, the only files in the tree that include <sqlite3.h>.
 * It stores what the core hands it and decides nothing (see store.h).
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
 *
 * Files: this one opens, migrates and closes, and holds the statement
 * table and the helpers store_sqlite.h declares; store_sqlite_txn.c the
 * write lock, transactions, checkpoints and generation();
 * store_sqlite_rec.c the records and the operations table;
 * store_sqlite_backup.c backup and restore; store_cols.c the record
 * tables' columns, shared with the PostgreSQL backend. Only these files include <sqlite3.h>.
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
#include "store_cols.h"
#include "store_sqlite.h"
#include "secretfs/storedir.h"

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
/* Map an SQLite result to a core code (store.h's rule). */
int sq_map_rc(int rc)
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
int sq_fail(struct sq *q, int rc, struct sfs_error *err,
		   const char *fmt, ...)
{
	char what[200];
	int code = sq_map_rc(rc);
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

int sq_not_found(struct sfs_error *err, const char *what, const char *id)
{
	return sfs_error_set(err, SFS_ENOENT, "%s '%s': not found", what, id);
}

/* Back to a clean statement: no pointers to the caller's data kept. */
void sq_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int sq_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

int sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (!p)
		return sqlite3_bind_zeroblob(st, i, 0);
	return sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

/* Copy a text column into a fixed field; -1 when it does not fit. */
int sq_col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
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

/* A heap copy of a blob column; NULL or empty gives an empty blob. */
int sq_col_blob(sqlite3_stmt *st, int col, struct sfs_blob *out,
		    struct sfs_error *err)
{
	const void *p = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	struct sfs_object store;

	out->data = NULL;
	out->len = 0;
	if (!p || n == 0)
		return 0;
	out->data = malloc(n);
	if (!out->data) {
		store = sfs_object_whole(SFS_OBJ_STORE);
		return sfs_error_about(err, SFS_ENOMEM, &store,
				       "out of memory");
	}
	memcpy(out->data, p, n);
	out->len = n;
	return 0;
}

int sq_corrupt(struct sfs_error *err, const char *table)
{
	return sfs_error_set(err, SFS_EIO, "%s: stored row is malformed",
			     table);
}

/* Step st (bound with bind_rc) to its one row: 0 with the row ready to
 * read, or the mapped error ("<what>: <why>"). The caller resets st. */
int sq_step_row(struct sq *q, sqlite3_stmt *st, int bind_rc,
		struct sfs_error *err, const char *what)
{
	int rc = bind_rc;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	return rc == SQLITE_ROW ? 0 : sq_fail(q, rc, err, "%s", what);
}

/*
 * Step a statement that changes rows. 0, SFS_ENOENT when must_change and
 * no row changed (the caller words the message), or the mapped error.
 */
int sq_step_change(struct sq *q, sqlite3_stmt *st, int bind_rc,
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
	sq_done(st);
	return rc;
}


/* ---- open, close ----------------------------------------------------- */

void sq_close(struct sfs_store *s)
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
	if (q->db && q->scrub && sq_lock_take(q, NULL) == 0) {
		sq_scrub_now(q, 0);
		sq_lock_drop(q);
	}
	/* no checkpoint here: SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE */
	sqlite3_close(q->db);
	if (q->lock_fd >= 0)
		close(q->lock_fd);
	free(q);
}


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

	rc = sq_step_row(q, st, rc, err, "read store schema version");
	if (rc == 0)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc;
}

/* Bring the schema to SCHEMA_VERSION under the write lock, so that two
 * processes opening a new store at once migrate it once. */
static int migrate(struct sq *q, struct sfs_error *err)
{
	int v = 0, rc = sq_lock_take(q, err);

	if (rc)
		return rc;
	rc = exec(q, "BEGIN IMMEDIATE", err, "migrate store");
	if (rc) {
		sq_lock_drop(q);
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
	sq_lock_drop(q);
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
int sq_journal_mode(struct sq *q, int set, struct sfs_error *err)
{
	struct sfs_object store = sfs_object_whole(SFS_OBJ_STORE);
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
		rc = (set && !q->wal) ? sfs_error_about(err, SFS_EIO, &store,
							"cannot switch to WAL")
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
	int rc = sq_journal_mode(q, 0, err);

	if (rc || q->wal || q->readonly)
		return rc;
	rc = sq_lock_take(q, err);
	if (rc == 0)
		rc = sq_journal_mode(q, 1, err);
	sq_lock_drop(q);
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
	sq_shm_find(q);
	sq_generation(&q->pub);
	*out = &q->pub;
	return 0;
}
