/*
 * SQLite backend, transactions: DIR/write.lock, which every write
 * transaction and every checkpoint holds; begin, commit, rollback; the
 * TRUNCATE checkpoint that scrubs freed blobs; generation() from the
 * wal-index header. The reasons are in store_sqlite.c's header.
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


#include "secretfs/backup.h"
#include "secretfs/store.h"
#include "store_sqlite.h"
#include "secretfs/storedir.h"

/* ---- transactions ---------------------------------------------------- */

static int run_plain(struct sq *q, enum stmt_id id, struct sfs_error *err,
		     const char *what)
{
	return sq_step_change(q, q->st[id], SQLITE_OK, 0, err, what);
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
int sq_lock_take(struct sq *q, struct sfs_error *err)
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

void sq_lock_drop(struct sq *q)
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

void sq_scrub_now(struct sq *q, int grow)
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

int sq_begin(struct sfs_store *s, int write, struct sfs_error *err)
{
	struct sq *q = SQ(s);
	int rc;

	if (write && q->readonly)
		return sfs_error_set(err, SFS_EROFS,
				     "begin: store opened read-only");
	if (!write)
		return run_plain(q, ST_BEGIN_READ, err, "begin");
	rc = sq_lock_take(q, err);
	if (rc == 0)
		rc = run_plain(q, ST_BEGIN_WRITE, err, "begin");
	if (rc)
		sq_lock_drop(q);
	return rc;
}

void sq_rollback(struct sfs_store *s)
{
	struct sq *q = SQ(s);

	if (!sqlite3_get_autocommit(q->db))
		run_plain(q, ST_ROLLBACK, NULL, "rollback");
	q->scrub_txn = 0;
	sq_lock_drop(q);
}

/* COMMIT (an automatic checkpoint may run inside it, under the lock),
 * then the caller's after(), the checkpoint a destroy owes, unlock. */
int sq_commit_then(struct sfs_store *s, void (*after)(void *arg),
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
	sq_scrub_now(q, 1);
	sq_lock_drop(q);
	return 0;
}

int sq_commit(struct sfs_store *s, struct sfs_error *err)
{
	return sq_commit_then(s, NULL, NULL, err);
}


/* ---- generation ------------------------------------------------------ */

/*
 * The wal-index header as this connection maps it (see the comment at
 * the top), or NULL: not in WAL mode, or no shared memory (a read-only
 * open that SQLite serves from heap memory).
 */
void sq_shm_find(struct sq *q)
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
uint64_t sq_generation(struct sfs_store *s)
{
	struct sq *q = SQ(s);
	unsigned char now[SHM_HDR_BYTES];
	int i;

	if (!q->wal)
		return counter_generation(q);
	if (!q->shm)
		sq_shm_find(q); /* mapped by the first read transaction */
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
