/*
 * crashvfs: a test-only SQLite VFS that simulates power loss. It wraps
 * the default (unix) VFS, tracks what each file would hold on a disk
 * that keeps only synced data, and at a chosen call "loses power":
 * the files are rewritten to what the disk would hold, and every later
 * call fails with SQLITE_IOERR. The model is described in crashvfs.c.
 *
 * Use: crashvfs_install() before the store opens (it becomes the default
 * VFS of this process), crashvfs_arm() to choose the crash point, run
 * the workload, then let the process end (a forked child) or
 * crashvfs_uninstall() and reopen with the plain unix VFS.
 * Not thread-safe: one connection, one thread.
 */
#ifndef SECRETFS_CRASHVFS_H
#define SECRETFS_CRASHVFS_H

#include <stdint.h>

/* What survives of the writes and truncations not yet synced. */
enum crashvfs_keep {
	CRASHVFS_DROP_ALL = 0, /* the disk had written nothing unsynced */
	CRASHVFS_KEEP_ALL = 1, /* everything reached the disk (a process
				* crash, or a lucky power cut) */
	CRASHVFS_KEEP_SOME = 2 /* each 512-byte sector of each write, and
				* each truncation, survives on a coin toss */
};

/* Register the shim as this process's default VFS. 0 or an SQLite
 * error code. Idempotent. */
int crashvfs_install(void);

/* Make the unix VFS the default again and forget every file. Files the
 * shim opened must be closed first. */
void crashvfs_uninstall(void);

/*
 * Start counting from now: the files already known take their current
 * contents as synced. The crash_at-th write, truncate or sync from now
 * (1 = the next one) loses power instead of running; 0 never crashes.
 * seed drives the coin tosses of CRASHVFS_KEEP_SOME.
 */
void crashvfs_arm(long crash_at, uint64_t seed, enum crashvfs_keep keep);

/* Lose power now, as if the next counted call were the crash point. */
void crashvfs_crash_now(void);

/* Write, truncate and sync calls seen since crashvfs_arm (the crashing
 * call included). */
long crashvfs_points(void);

/* 1 once power was lost. */
int crashvfs_crashed(void);

/*
 * Make syncs fail: counting from this call the syncs of tracked files
 * (database, journal, WAL), the first-th (1 = the next) and the n - 1
 * after it return SQLITE_IOERR_FSYNC and make nothing durable. With lose
 * = 0 the changes they should have made durable stay pending (a power
 * cut keeps what the keep mode keeps; a later sync that succeeds makes
 * them durable); with lose = 1 they never reach the disk (the process
 * still reads them back), as when Linux drops the dirty pages of a
 * failed writeback. first = 0 or n = 0: no sync fails. crashvfs_arm()
 * clears it.
 */
void crashvfs_fail_sync(long first, long n, int lose);

/* Syncs of tracked files since crashvfs_fail_sync() or crashvfs_arm(),
 * failed ones included. */
long crashvfs_syncs(void);

#endif
