/*
 * Trust in the store directory (SPEC §1). A store is only as safe as the
 * directory that holds it: whoever can add, remove or rename names in it
 * can plant a master key and database for `init` to adopt, or point
 * audit.log, generation or a lock file at a file of theirs (or root's)
 * through a symlink. So a store directory must be owned by the caller (or
 * root) and not writable by group or others, and every name in it must
 * be a regular file owned by the caller; `init` wants an empty one.
 *
 * These checks run before anything in the directory is opened, so a
 * refused store is left untouched. Every file of the store is then
 * opened through sfs_storedir_open() (no symlink followed, a regular file
 * owned by the caller, checked on the descriptor), so that nothing can be
 * swapped between the check and the open by anyone but root.
 *
 * "The caller" is the effective uid. Thread-safe: no state.
 */
#ifndef SECRETFS_STOREDIR_H
#define SECRETFS_STOREDIR_H

#include <sys/types.h>

#include "secretfs/err.h"

/*
 * Check dir and every name in it. SFS_OK; SFS_ENOENT when dir does not
 * exist; SFS_EACCES when dir cannot be read (another user's 0700 store)
 * or is not to be trusted (the message says why: its owner, its mode, or
 * the offending name); SFS_EIO on another error.
 */
int sfs_storedir_check(const char *dir, struct sfs_error *err);

/* SFS_OK when dir holds no name at all, else SFS_EEXIST ("not empty"). */
int sfs_storedir_empty(const char *dir, struct sfs_error *err);

/*
 * open(dir/name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode) that
 * accepts only a regular file owned by the caller. The descriptor (>= 0),
 * or a negative code with err set: SFS_ENOENT (missing, without
 * O_CREAT), SFS_EACCES
 * (a symlink, not a regular file, another owner, or the open was denied),
 * SFS_EROFS, SFS_ENOSPC, SFS_EIO.
 */
int sfs_storedir_open(const char *dir, const char *name, int flags, mode_t mode,
		      struct sfs_error *err);

/*
 * The code for the errno of a failed call on a store's file or one of
 * its kind (the audit log): ENOENT, EACCES/EPERM/ELOOP (ELOOP: O_NOFOLLOW
 * met a symlink) as SFS_EACCES, EROFS, ENOSPC, anything else SFS_EIO.
 */
int sfs_storedir_errcode(int errnum);

#endif
