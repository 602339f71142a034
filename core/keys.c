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
#include <stdio.h>
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
	return state == SFS_STATE_ACTIVE	? "active"
	       : state == SFS_STATE_DEACTIVATED ? "deactivated"
						: "destroyed";
}

/* A key-management change as the runner carries it. */
struct key_change {
	const char *op;
	const char *key; /* as the caller named it */
	struct sfs_key_rec k;
};

/* The audit line names the key by name when it was found. */
static void key_line(struct sfs_ctx *ctx, struct ctx_change *ch, int rc,
		     struct ctx_audit_line *l)
{
	const struct key_change *kc = ch->arg;
	struct ctx_audit_line line = {
	    kc->op, NULL, NULL, kc->k.name[0] ? kc->k.name : kc->key, 0, rc, 1};

	(void)ctx;
	*l = line;
}

/* The state of key for act: its record, and whether it is in use. */
static int key_state(struct sfs_ctx *ctx, enum sfs_action act, const char *key,
		     struct sfs_policy_state *st, struct sfs_key_rec *k,
		     struct sfs_error *err)
{
	int rc = ctx_key_state(ctx, key, st, k, err);

	if (rc == SFS_OK && act == SFS_ACT_KEY_DELETE && st->key_exists)
		rc = sfs_store_key_in_use(ctx->store, k->id, &st->key_in_use,
					  err);
	return rc;
}

/*
 * The policy's answer rc about key. A key that does not exist is
 * SFS_ENOENT here ("no such key"), once the caller's permission is known:
 * ENOKEY is for the key a secret needs. The policy's refusals of the
 * caller (read-only, permission) stand; its rules about a key's type or
 * state have nothing to apply to.
 */
static int key_judge(enum sfs_action act, const char *key,
		     const struct sfs_policy_state *st, int rc,
		     struct sfs_error *err)
{
	struct sfs_object o = sfs_object_key(key);

	if (!st->key_exists && rc != SFS_EROFS && rc != SFS_EACCES)
		return sfs_error_about(err, SFS_ENOENT, &o, "no such key");
	if (rc != SFS_OK)
		return ctx_refuse_on(err, act, rc, st, &o);
	return SFS_OK;
}

/* Look a key up for a key-management action and ask the policy. */
static int key_check(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     enum sfs_action act, const char *key,
		     struct sfs_key_rec *k, struct sfs_error *err)
{
	struct sfs_policy_state st;
	int rc;

	ctx_state_init(ctx, &st);
	rc = key_state(ctx, act, key, &st, k, err);
	if (rc != SFS_OK)
		return rc;
	return key_judge(act, key, &st, sfs_policy_check(act, c, &st), err);
}

static int key_gather(struct sfs_ctx *ctx, struct ctx_change *ch,
		      struct sfs_policy_state *st, struct sfs_error *err)
{
	struct key_change *kc = ch->arg;

	return key_state(ctx, ch->act, kc->key, st, &kc->k, err);
}

static int key_settle(struct ctx_change *ch, const struct sfs_policy_state *st,
		      int rc, struct sfs_error *err)
{
	const struct key_change *kc = ch->arg;

	return key_judge(ch->act, kc->key, st, rc, err);
}

static int key_insert(struct sfs_ctx *ctx, struct sfs_key_rec *k,
		      struct sfs_error *err)
{
	struct sfs_object o = sfs_object_key(k->name);
	int rc = sfs_store_key_insert(ctx->store, k, err);

	if (rc == SFS_OK)
		rc = ctx_keyver_make(ctx->store, ctx->crypto, ctx->store_id, k,
				     1, err);
	if (rc == SFS_EEXIST)
		rc = sfs_error_about(err, rc, &o, "already exists");
	return rc;
}

/* Apply act to the key, the policy having allowed it. */
static int key_apply(struct sfs_ctx *ctx, struct ctx_change *ch,
		     const struct sfs_policy_state *st, struct sfs_error *err)
{
	struct key_change *kc = ch->arg;
	int rc = SFS_OK;

	(void)st;
	switch (ch->act) {
	case SFS_ACT_KEY_CREATE:
		return key_insert(ctx, &kc->k, err);
	case SFS_ACT_KEY_DELETE:
		return sfs_store_key_delete(ctx->store, kc->k.id, err);
	case SFS_ACT_KEY_ROTATE:
		kc->k.current_version++;
		rc = ctx_keyver_make(ctx->store, ctx->crypto, ctx->store_id,
				     &kc->k, kc->k.current_version, err);
		break;
	default: /* activate, deactivate */
		kc->k.state = ch->act == SFS_ACT_KEY_ACTIVATE
				  ? SFS_STATE_ACTIVE
				  : SFS_STATE_DEACTIVATED;
		break;
	}
	return rc == SFS_OK ? sfs_store_key_update(ctx->store, &kc->k, err)
			    : rc;
}

/* Run the change act of key (the key's own changes; not create). */
static int key_run(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   enum sfs_action act, struct key_change *kc,
		   struct sfs_error *err)
{
	static const struct ctx_change_ops ops = {.gather = key_gather,
						  .settle = key_settle,
						  .apply = key_apply,
						  .line = key_line};

	return ctx_change_go(ctx, act, c, &ops, kc, err);
}

static int key_new_rec(const struct sfs_caller *c, const char *name,
		       const char *desc, struct sfs_key_rec *k,
		       struct sfs_error *err)
{
	struct sfs_object o = sfs_object_key(name);
	int rc = ctx_name_desc_check(&o, name, desc, err);

	if (rc != SFS_OK)
		return rc;
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
	struct key_change kc = {.op = "key.create", .key = name};
	static const struct ctx_change_ops ops = {
	    .apply = key_apply, .line = key_line};
	struct ctx_change ch = {
	    .act = SFS_ACT_KEY_CREATE, .c = c, .ops = &ops, .arg = &kc};
	int rc;

	sfs_error_clear(err);
	ch.pre =
	    key_new_rec(c, name, description ? description : "", &kc.k, err);
	ch.about = sfs_object_key(name);
	rc = ctx_change_run(ctx, &ch, err);
	if (rc == SFS_OK && out)
		*out = kc.k;
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

static int keys_collect(void *arg, const struct sfs_key_rec *k)
{
	struct sfs_key_rec *slot = ctx_array_push(arg, sizeof(*slot));

	if (!slot)
		return SFS_ENOMEM;
	*slot = *k;
	return 0;
}

/* Every key is checked with its own state: a caller who may view none
 * gets the policy's refusal instead of a list. */
static int keys_allowed(struct sfs_ctx *ctx, const struct sfs_caller *c,
			const struct sfs_key_rec *v, size_t n,
			struct sfs_error *err)
{
	struct sfs_object keys = sfs_object_whole(SFS_OBJ_KEYS);
	struct sfs_policy_state st;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		ctx_state_init(ctx, &st);
		ctx_key_state_fill(&st, &v[i]);
		rc = sfs_policy_check(SFS_ACT_KEY_VIEW, c, &st);
		if (rc != SFS_OK)
			return ctx_refuse_on(err, SFS_ACT_KEY_VIEW, rc, &st,
					     &keys);
	}
	return SFS_OK;
}

/* Lock held: every key, each checked (keys_allowed). */
static int keys_gather(struct sfs_ctx *ctx, const struct sfs_caller *c,
		       void *arg, struct sfs_error *err)
{
	struct ctx_array *acc = arg;
	int rc = sfs_store_key_list(ctx->store, keys_collect, acc, err);

	if (rc == SFS_OK)
		rc = keys_allowed(ctx, c, acc->v, acc->n, err);
	return rc;
}

/* The callback runs after the lock is released, so it may call back
 * into the context. */
int sfs_key_list(struct sfs_ctx *ctx, const struct sfs_caller *c, sfs_key_cb cb,
		 void *arg, struct sfs_error *err)
{
	struct ctx_array acc = {NULL, 0};
	const struct sfs_key_rec *v;
	size_t i;
	int rc = ctx_read_run(ctx, c, keys_gather, &acc, err);

	for (i = 0, v = acc.v; rc == SFS_OK && i < acc.n; i++)
		rc = cb(arg, &v[i]);
	free(acc.v);
	return rc;
}

int sfs_key_set_state(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *key, int active, struct sfs_error *err)
{
	struct key_change kc = {
	    .op = active ? "key.activate" : "key.deactivate", .key = key};

	return key_run(ctx, c,
		       active ? SFS_ACT_KEY_ACTIVATE : SFS_ACT_KEY_DEACTIVATE,
		       &kc, err);
}

int sfs_key_rotate(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *key, struct sfs_key_rec *out,
		   struct sfs_error *err)
{
	struct key_change kc = {.op = "key.rotate", .key = key};
	int rc;

	rc = key_run(ctx, c, SFS_ACT_KEY_ROTATE, &kc, err);
	if (rc == SFS_OK && out)
		*out = kc.k;
	return rc;
}

int sfs_key_delete(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *key, struct sfs_error *err)
{
	struct key_change kc = {.op = "key.delete", .key = key};

	return key_run(ctx, c, SFS_ACT_KEY_DELETE, &kc, err);
}
