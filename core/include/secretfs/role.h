/*
 * Role grants (SPEC §1): manager, kms-user, kms-viewer, granted to
 * principals. Only the administrator (CLI) grants and revokes.
 */
#ifndef SECRETFS_ROLE_H
#define SECRETFS_ROLE_H

#include "secretfs/ctx.h"
#include "secretfs/store.h"

/* SFS_EINVAL for an unknown role or a bad principal. */
int sfs_role_grant(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *role, const char *principal,
		   struct sfs_error *err);
/* SFS_ENOENT when the principal did not hold the role. */
int sfs_role_revoke(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    const char *role, const char *principal,
		    struct sfs_error *err);
int sfs_role_list(struct sfs_ctx *ctx, const struct sfs_caller *c,
		  sfs_role_cb cb, void *arg, struct sfs_error *err);

#endif
