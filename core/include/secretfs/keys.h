/*
 * KMS keys: the service key (made at init, always usable) and user keys.
 *
 * Every function checks the caller with sfs_policy_check(), writes the
 * change in one store transaction and one audit line. Key material never
 * leaves the core: only the details in struct sfs_key_rec do.
 */
#ifndef SECRETFS_KEYS_H
#define SECRETFS_KEYS_H

#include "secretfs/ctx.h"
#include "secretfs/store.h"

/* Create user key name (SFS_EEXIST, SFS_EINVAL, SFS_ENAMETOOLONG). */
int sfs_key_create(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *name, const char *description,
		   struct sfs_key_rec *out, struct sfs_error *err);
/* Look up by id or name; "service" is the service key. */
int sfs_key_get(struct sfs_ctx *ctx, const struct sfs_caller *c,
		const char *key, struct sfs_key_rec *out,
		struct sfs_error *err);
int sfs_key_list(struct sfs_ctx *ctx, const struct sfs_caller *c,
		 sfs_key_cb cb, void *arg, struct sfs_error *err);
/* Activate (active = 1) or deactivate a user key; the service key is
 * always active (SFS_EPERM). */
int sfs_key_set_state(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *key, int active, struct sfs_error *err);
/* New key version: new data keys use it; older versions stay readable. */
int sfs_key_rotate(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *key, struct sfs_key_rec *out,
		   struct sfs_error *err);
/* SFS_EBUSY while anything not destroyed uses it; SFS_EPERM for service. */
int sfs_key_delete(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *key, struct sfs_error *err);

/* "service" / "user", "active" / "deactivated". */
const char *sfs_key_type_name(int type);
const char *sfs_state_name(int state);

#endif
