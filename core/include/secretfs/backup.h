/*
 * Backup and restore of a SQLite store (implemented in
 * store_sqlite_backup.c): a copy of a live store's database made with
 * SQLite's online backup API, and a new store directory made from one. The copy is as encrypted as the store: values
 * stay sealed under their data keys and KMS keys, and the master key is
 * not in it. The audit log and the lock files are not copied.
 */
#ifndef SECRETFS_BACKUP_H
#define SECRETFS_BACKUP_H

#include "secretfs/err.h"

/*
 * Copy store directory dir's database into file (a new file, mode 0600;
 * SFS_EEXIST when it exists): one backup step under one read transaction,
 * so the copy is consistent while mounts and commands write. The source
 * is opened read-only and never checkpoints. SFS_ENOSTORE when dir has no
 * database.
 */
int sfs_store_backup(const char *dir, const char *file,
		     struct sfs_error *err);

/* Make the store directory dir (created 0700 when missing; SFS_ENOTEMPTY
 * when it holds anything) from a backup file. */
int sfs_store_restore(const char *file, const char *dir,
		      struct sfs_error *err);

#endif
