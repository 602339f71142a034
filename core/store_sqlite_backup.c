/*
 * SQLite backend, backup and restore (backup.h): SQLite's online backup
 * API copies a live store's database, and a new store directory is made
 * from such a copy.
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
	struct sfs_object to_file = sfs_object_file(dst);
	sqlite3 *from = NULL, *to = NULL;
	sqlite3_backup *b;
	int rc, fd;

	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return sfs_error_about(err,
				       errno == EEXIST ? SFS_EEXIST : SFS_EIO,
				       &to_file, "%s", sfs_strerrno(errno));
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
		sfs_error_set(err, sq_map_rc(rc), "copy '%s' to '%s': %s", src,
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
