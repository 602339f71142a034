/*
 * Trust in the store directory (SPEC §1): see secretfs/storedir.h.
 *
 * The directory check reads every name with lstat(), so a symlink is seen
 * as itself and never followed; a name that is not a regular file owned
 * by the caller (a symlink to a root file, a FIFO, another user's planted
 * master.key) makes the whole store refused rather than skipped: the
 * store's own names are few and fixed, and anything else there means that
 * someone else has had a hand in it. Subdirectories of the caller's or
 * root's are let be (lost+found, when the store is a filesystem of its
 * own): nothing in the store is ever opened through one. A root-owned
 * store directory is accepted for any caller, as the SPEC says; the files
 * in it must still be the caller's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretfs/storedir.h"

int sfs_storedir_errcode(int errnum)
{
	switch (errnum) {
	case ENOENT:
		return SFS_ENOENT;
	case EACCES:
	case EPERM:
	case ELOOP: /* O_NOFOLLOW met a symlink */
		return SFS_EACCES;
	case EROFS:
		return SFS_EROFS;
	case ENOSPC:
		return SFS_ENOSPC;
	default:
		return SFS_EIO;
	}
}

static const char *kind(mode_t m)
{
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a fifo";
	if (S_ISSOCK(m))
		return "a socket";
	return "a device";
}

/* One name of the store: a regular file owned by the caller. */
static int file_trusted(const char *dir, const char *name,
			const struct stat *st, struct sfs_error *err)
{
	if (!S_ISREG(st->st_mode))
		return sfs_error_set(err, SFS_EACCES,
				     "store '%s': '%s' is %s, not a regular "
				     "file: refused",
				     dir, name, kind(st->st_mode));
	if (st->st_uid != geteuid())
		return sfs_error_set(err, SFS_EACCES,
				     "store '%s': '%s' is owned by uid %u, "
				     "not by you: refused",
				     dir, name, (unsigned)st->st_uid);
	return SFS_OK;
}

/* Any name in the store: a file of the caller's, or a directory of the
 * caller's or root's (lost+found, when the store is a filesystem of its
 * own), which nothing is ever opened through. */
static int name_trusted(const char *dir, const char *name,
			const struct stat *st, struct sfs_error *err)
{
	if (S_ISDIR(st->st_mode) &&
	    (st->st_uid == geteuid() || st->st_uid == 0))
		return SFS_OK;
	return file_trusted(dir, name, st, err);
}

static int dir_trusted(const char *dir, const struct stat *st,
		       struct sfs_error *err)
{
	if (!S_ISDIR(st->st_mode))
		return sfs_error_set(err, SFS_ENOENT,
				     "store '%s' is not a directory", dir);
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return sfs_error_set(err, SFS_EACCES,
				     "store '%s' is owned by uid %u, not by "
				     "you or root: refused",
				     dir, (unsigned)st->st_uid);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return sfs_error_set(err, SFS_EACCES,
				     "store '%s' is writable by group or "
				     "others (mode %04o): refused",
				     dir, (unsigned)(st->st_mode & 07777));
	return SFS_OK;
}

/* Every name in the open directory d (of dir); with empty, refuse any. */
static int names_trusted(DIR *d, const char *dir, int empty,
			 struct sfs_error *err)
{
	struct dirent *e;
	struct stat st;
	int rc = SFS_OK;

	while (rc == SFS_OK && (errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (empty)
			rc = sfs_error_set(err, SFS_EEXIST,
					   "store directory '%s' is not empty "
					   "(it holds '%s'): init wants an "
					   "empty or new directory",
					   dir, e->d_name);
		else if (fstatat(dirfd(d), e->d_name, &st,
				 AT_SYMLINK_NOFOLLOW) != 0)
			rc = sfs_error_set(err, sfs_storedir_errcode(errno),
					   "store '%s': '%s': %s", dir,
					   e->d_name, sfs_strerrno(errno));
		else
			rc = name_trusted(dir, e->d_name, &st, err);
	}
	if (rc == SFS_OK && errno)
		rc = sfs_error_set(err, SFS_EIO, "cannot read store '%s': %s",
				   dir, sfs_strerrno(errno));
	return rc;
}

static int scan(const char *dir, int empty, struct sfs_error *err)
{
	struct stat st;
	DIR *d;
	int rc;

	if (stat(dir, &st) != 0)
		return sfs_error_set(err, sfs_storedir_errcode(errno), "store '%s': %s",
				     dir, sfs_strerrno(errno));
	rc = dir_trusted(dir, &st, err);
	if (rc != SFS_OK)
		return rc;
	d = opendir(dir);
	if (!d)
		return sfs_error_set(err, sfs_storedir_errcode(errno), "store '%s': %s",
				     dir, sfs_strerrno(errno));
	rc = names_trusted(d, dir, empty, err);
	closedir(d);
	return rc;
}

int sfs_storedir_check(const char *dir, struct sfs_error *err)
{
	return scan(dir, 0, err);
}

int sfs_storedir_empty(const char *dir, struct sfs_error *err)
{
	return scan(dir, 1, err);
}

int sfs_storedir_open(const char *dir, const char *name, int flags, mode_t mode,
		      struct sfs_error *err)
{
	char path[4096];
	struct stat st;
	int fd, n, rc;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return sfs_error_set(err, SFS_EINVAL, "path '%s/%s' too long",
				     dir, name);
	fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
	if (fd < 0)
		return sfs_error_set(err, sfs_storedir_errcode(errno),
				     "cannot open '%s': %s", path,
				     errno == ELOOP ? "a symbolic link: refused"
						    : sfs_strerrno(errno));
	if (fstat(fd, &st) != 0)
		rc = sfs_error_set(err, SFS_EIO, "cannot stat '%s': %s", path,
				   sfs_strerrno(errno));
	else
		rc = file_trusted(dir, name, &st, err);
	if (rc != SFS_OK) {
		close(fd);
		return rc;
	}
	return fd;
}
