/*
 * KMS keys: create, look up, list, activate, deactivate, rotate, delete.
 *
 * Each key version's 32 bytes of material are drawn here, wrapped by the
 * KEK at once (ctx_keyver_make) and never leave the core; only the
 * details in struct sfs_key_rec do. Which caller may do what, and which
 * state allows it, is sfs_policy_check()'s alone: these functions gather
 * the key's state, ask, act, and write one audit line per change or
 * refused change.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "secretfs/audit.h"
#include "secretfs/keys.h"
#include "secretfs/policy.h"

const char *sfs_key_type_name(int type)
{
	return type == SFS_KEY_SERVICE ? "service" : "user";
}

const char *sfs_state_name(int state)
{
	switch (state) {
	case SFS_STATE_ACTIVE:
		return "active";
	case SFS_STATE_DEACTIVATED:
		return "deactivated";
	default:
		return "destroyed";
	}
}

/* The audit line names the key by name when it was found. */
static void key_audit(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *op, const struct sfs_key_rec *k,
		      const char *key, int rc)
{
	struct ctx_audit_line l = {op, NULL, NULL, k->name[0] ? k->name : key,
				   0,  rc,   1};

	ctx_audit(ctx, c, &l);
}

/*
 * Look a key up for a key-management action and ask the policy. A key
 * that does not exist is SFS_ENOENT here ("no such key"), once the
 * caller's permission is known: ENOKEY is for the key a secret needs.
 */
static int key_check(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     enum sfs_action act, const char *key,
		     struct sfs_key_rec *k, struct sfs_error *err)
{
	struct sfs_policy_state st;
	int rc;

	ctx_state_init(ctx, &st);
	rc = ctx_key_state(ctx, key, &st, k, err);
	if (rc != SFS_OK)
		return rc;
	if (act == SFS_ACT_KEY_DELETE && st.key_exists) {
		rc = sfs_store_key_in_use(ctx->store, k->id,
						 &st.key_in_use, err);
		if (rc != SFS_OK)
			return rc;
	}
	rc = sfs_policy_check(act, c, &st);
	/* No such key: the policy's refusals of the caller (read-only,
	 * permission) stand; its rules about a key's type or state have
	 * nothing to apply to. */
	if (!st.key_exists && rc != SFS_EROFS && rc != SFS_EACCES)
		return sfs_error_set(err, SFS_ENOENT, "key '%.128s': no such "
				     "key", key);
	if (rc != SFS_OK)
		return ctx_refuse(err, act, rc, &st, "key '%s'", key);
	return SFS_OK;
}

static int key_insert(struct sfs_ctx *ctx, struct sfs_key_rec *k,
		      struct sfs_error *err)
{
	int rc = sfs_store_key_insert(ctx->store, k, err);

	if (rc == SFS_OK)
		rc = ctx_keyver_make(ctx->store, ctx->crypto, ctx->store_id, k,
				     1, err);
	if (rc == SFS_EEXIST)
		rc = sfs_error_set(err, rc, "key '%s': already exists",
				   k->name);
	return rc;
}

static int key_new_rec(const struct sfs_caller *c, const char *name,
		       const char *desc, struct sfs_key_rec *k,
		       struct sfs_error *err)
{
	int rc;

	rc = sfs_policy_name_check(name, strlen(name));
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "key '%.128s': %s", name,
				     sfs_policy_name_why(rc));
	rc = sfs_policy_desc_check(desc, strlen(desc));
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "key '%s': %s", name,
				     sfs_policy_desc_why(desc, strlen(desc)));
	memset(k, 0, sizeof(*k));
	sfs_crypto_uuid(k->id);
	ctx_strlcpy(k->name, name, sizeof(k->name));
	ctx_strlcpy(k->description, desc, sizeof(k->description));
	k->type = SFS_KEY_USER;
	k->state = SFS_STATE_ACTIVE;
	k->created_at = sfs_time_now();
	sfs_principal_describe(c->uid, k->created_by, sizeof(k->created_by));
	k->current_version = 1;
	return SFS_OK;
}

int sfs_key_create(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *name, const char *description,
		   struct sfs_key_rec *out, struct sfs_error *err)
{
	struct sfs_policy_state st;
	struct sfs_key_rec k;
	int rc;

	sfs_error_clear(err);
	memset(&k, 0, sizeof(k));
	rc = key_new_rec(c, name, description ? description : "", &k, err);
	if (rc != SFS_OK)
		goto audit;
	rc = ctx_begin(ctx, 1, err);
	if (rc != SFS_OK)
		goto audit;
	ctx_state_init(ctx, &st);
	rc = sfs_policy_check(SFS_ACT_KEY_CREATE, c, &st);
	if (rc != SFS_OK)
		ctx_refuse(err, SFS_ACT_KEY_CREATE, rc, &st, "key '%s'", name);
	else
		rc = key_insert(ctx, &k, err);
	if (rc == SFS_OK) /* staged: committed with the change */
		key_audit(ctx, c, "key.create", &k, name, rc);
	rc = ctx_end(ctx, 1, rc, err);
	if (rc == SFS_OK && out)
		*out = k;
audit:
	key_audit(ctx, c, "key.create", &k, name, rc);
	return rc;
}

int sfs_key_get(struct sfs_ctx *ctx, const struct sfs_caller *c,
		const char *key, struct sfs_key_rec *out, struct sfs_error *err)
{
	int rc;

	sfs_error_clear(err);
	rc = ctx_begin(ctx, 0, err);
	if (rc != SFS_OK)
		return rc;
	rc = key_check(ctx, c, SFS_ACT_KEY_VIEW, key, out, err);
	return ctx_end(ctx, 0, rc, err);
}

struct keys_acc {
	struct sfs_key_rec *v;
	size_t n;
};

static int keys_collect(void *arg, const struct sfs_key_rec *k)
{
	struct keys_acc *acc = arg;
	struct sfs_key_rec *grown;

	grown = realloc(acc->v, (acc->n + 1) * sizeof(*grown));
	if (!grown)
		return SFS_ENOMEM;
	acc->v = grown;
	grown[acc->n++] = *k;
	return 0;
}

/* Every key is checked with its own state: a caller who may view none
 * gets the policy's refusal instead of a list. */
static int keys_allowed(struct sfs_ctx *ctx, const struct sfs_caller *c,
			const struct keys_acc *acc, struct sfs_error *err)
{
	struct sfs_policy_state st;
	size_t i;
	int rc;

	for (i = 0; i < acc->n; i++) {
		ctx_state_init(ctx, &st);
		st.key_exists = 1;
		st.key_type = acc->v[i].type;
		st.key_state = acc->v[i].state;
		rc = sfs_policy_check(SFS_ACT_KEY_VIEW, c, &st);
		if (rc != SFS_OK)
			return ctx_refuse(err, SFS_ACT_KEY_VIEW, rc, &st,
					  "keys");
	}
	return SFS_OK;
}

/* The callback runs after the lock is released, so it may call back
 * into the context. */
int sfs_key_list(struct sfs_ctx *ctx, const struct sfs_caller *c, sfs_key_cb cb,
		 void *arg, struct sfs_error *err)
{
	struct keys_acc acc = {NULL, 0};
	size_t i;
	int rc;

	sfs_error_clear(err);
	rc = ctx_begin(ctx, 0, err);
	if (rc != SFS_OK)
		return rc;
	rc = sfs_store_key_list(ctx->store, keys_collect, &acc, err);
	if (rc == SFS_ENOMEM)
		sfs_error_set(err, rc, "out of memory");
	if (rc == SFS_OK)
		rc = keys_allowed(ctx, c, &acc, err);
	rc = ctx_end(ctx, 0, rc, err);
	for (i = 0; rc == SFS_OK && i < acc.n; i++)
		rc = cb(arg, &acc.v[i]);
	free(acc.v);
	return rc;
}

int sfs_key_set_state(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *key, int active, struct sfs_error *err)
{
	enum sfs_action act =
	    active ? SFS_ACT_KEY_ACTIVATE : SFS_ACT_KEY_DEACTIVATE;
	struct sfs_key_rec k;
	int rc;

	sfs_error_clear(err);
	memset(&k, 0, sizeof(k));
	rc = ctx_begin(ctx, 1, err);
	if (rc != SFS_OK)
		goto audit;
	rc = key_check(ctx, c, act, key, &k, err);
	if (rc == SFS_OK) {
		k.state = active ? SFS_STATE_ACTIVE : SFS_STATE_DEACTIVATED;
		rc = sfs_store_key_update(ctx->store, &k, err);
	}
	if (rc == SFS_OK) /* staged: committed with the change */
		key_audit(ctx, c, active ? "key.activate" : "key.deactivate",
			  &k, key, rc);
	rc = ctx_end(ctx, 1, rc, err);
audit:
	key_audit(ctx, c, active ? "key.activate" : "key.deactivate", &k, key,
		  rc);
	return rc;
}

int sfs_key_rotate(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *key, struct sfs_key_rec *out,
		   struct sfs_error *err)
{
	struct sfs_key_rec k;
	int rc;

	sfs_error_clear(err);
	memset(&k, 0, sizeof(k));
	rc = ctx_begin(ctx, 1, err);
	if (rc != SFS_OK)
		goto audit;
	rc = key_check(ctx, c, SFS_ACT_KEY_ROTATE, key, &k, err);
	if (rc == SFS_OK) {
		k.current_version++;
		rc = ctx_keyver_make(ctx->store, ctx->crypto, ctx->store_id, &k,
				     k.current_version, err);
	}
	if (rc == SFS_OK)
		rc = sfs_store_key_update(ctx->store, &k, err);
	if (rc == SFS_OK) /* staged: committed with the change */
		key_audit(ctx, c, "key.rotate", &k, key, rc);
	rc = ctx_end(ctx, 1, rc, err);
	if (rc == SFS_OK && out)
		*out = k;
audit:
	key_audit(ctx, c, "key.rotate", &k, key, rc);
	return rc;
}

int sfs_key_delete(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *key, struct sfs_error *err)
{
	struct sfs_key_rec k;
	int rc;

	sfs_error_clear(err);
	memset(&k, 0, sizeof(k));
	rc = ctx_begin(ctx, 1, err);
	if (rc != SFS_OK)
		goto audit;
	rc = key_check(ctx, c, SFS_ACT_KEY_DELETE, key, &k, err);
	if (rc == SFS_OK)
		rc = sfs_store_key_delete(ctx->store, k.id, err);
	if (rc == SFS_OK) /* staged: committed with the change */
		key_audit(ctx, c, "key.delete", &k, key, rc);
	rc = ctx_end(ctx, 1, rc, err);
audit:
	key_audit(ctx, c, "key.delete", &k, key, rc);
	return rc;
}
