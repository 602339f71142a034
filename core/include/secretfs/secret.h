/*
 * Secrets: create, look up, list, update, change key, activate,
 * deactivate, delete. Every rule is sfs_policy_check()'s; each change is
 * one store transaction and one audit line.
 *
 * Secrets are addressed by name or id ("NAME" arguments below).
 */
#ifndef SECRETFS_SECRET_H
#define SECRETFS_SECRET_H

#include "secretfs/ctx.h"
#include "secretfs/policy.h"
#include "secretfs/store.h"

struct sfs_secret_new {
	const char *name;
	const char *description; /* NULL: "" */
	const char *key;         /* KMS key id or name; NULL: service */
	int access_control;
	/* owner/group default to the caller's uid/gid, mode to 0440 */
	int has_owner, has_group, has_mode;
	uint32_t owner, group, mode;
	/* optional first version */
	const void *value;
	size_t value_len;
};

int sfs_secret_create(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const struct sfs_secret_new *n,
		      struct sfs_secret_rec *out, struct sfs_error *err);

/*
 * Look up a secret. *full is set to 1 when the caller may see every
 * detail, 0 when only the partial view (SPEC §3): then out holds name,
 * description, access_control, created_at, created_by and an id cut to
 * its first 8 characters followed by "-****"; every other field zeroed.
 */
int sfs_secret_get(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *name, struct sfs_secret_rec *out, int *full,
		   struct sfs_error *err);

/* Every secret in name order, full records (no permission filtering:
 * anyone who reaches the store sees names; callers filter details with
 * sfs_policy_may_view()). */
int sfs_secret_list(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    sfs_secret_cb cb, void *arg, struct sfs_error *err);

/*
 * Questions a front asks before it opens anything (access(2), stat of a
 * value, kv/'s presence): the answer the change or read itself would
 * give, SFS_OK or SFS_EACCES. The rules are core/policy.c's
 * (sfs_policy_may_read, sfs_policy_may_view, sfs_policy_may_manage).
 * may_see: all of the secret's details, or a manager (who may add
 * versions without being on the allow list); may_manage needs c->roles.
 */
int sfs_secret_may_read(const struct sfs_caller *c,
			const struct sfs_secret_rec *s);
int sfs_secret_may_see(const struct sfs_caller *c,
		       const struct sfs_secret_rec *s);
int sfs_secret_may_manage(const struct sfs_caller *c);
/* Who may read an access-controlled secret's values, for a front that
 * lets the kernel enforce it; the owner, group and mode s's value files
 * show through a view: the policy's own pure functions under the names
 * fronts use (one definition, no forward). */
#define sfs_secret_readers    sfs_policy_readers
#define sfs_secret_view_attrs sfs_policy_view_attrs

/* Is field (a record field's name: "id", "name", "description",
 * "access_control", "created_at", "created_by") in the partial view
 * (sfs_secret_get)? The one list, for fronts that show fields by name. */
int sfs_secret_partial_field(const char *field);

enum sfs_secret_field {
	SFS_SF_DESCRIPTION = 1,
	SFS_SF_ACCESS_CONTROL = 2,
	SFS_SF_ALLOWED = 4,
	SFS_SF_OWNER = 8,
	SFS_SF_GROUP = 16,
	SFS_SF_MODE = 32,
};

struct sfs_secret_update {
	unsigned fields; /* enum sfs_secret_field bits */
	const char *description;
	int access_control;
	const char *allowed; /* comma-separated principals, normalised here */
	uint32_t owner, group, mode;
};

int sfs_secret_update(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *name, const struct sfs_secret_update *u,
		      struct sfs_error *err);
int sfs_secret_change_key(struct sfs_ctx *ctx, const struct sfs_caller *c,
			  const char *name, const char *key,
			  struct sfs_error *err);
int sfs_secret_set_status(struct sfs_ctx *ctx, const struct sfs_caller *c,
			  const char *name, int active,
			  struct sfs_error *err);
int sfs_secret_delete(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *name, struct sfs_error *err);

/*
 * May name be a secret's or a key's name (SPEC §1)? SFS_OK, or
 * SFS_EINVAL / SFS_ENAMETOOLONG with the reason alone as err's message
 * ("name longer than 128 bytes"). For fronts that name other things by the same
 * rules (the volume driver's volumes).
 */
int sfs_secret_name_valid(const char *name, struct sfs_error *err);

#endif
