/*
 * `secretfs rekey --new-master-key FILE`: move a store to a new master
 * key. Every KMS key version's material is unwrapped with the current KEK
 * and wrapped again under the new one, and the canary is remade, all in
 * one change on the change runner (ctx_change_run: its audit line is
 * committed with it): the store is wholly under one key or the other,
 * never half. Value ciphertext and data keys are untouched (they hang off
 * KMS material, which does not change). On a shared store every host then
 * needs the new key file; a daemon still holding the old key finds its
 * key material no longer authenticates and fails closed until restarted
 * with the new one.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "secretfs/ctx.h"
#include "secretfs/principal.h"

struct key_list {
	struct sfs_key_rec *v;
	size_t n, cap;
};

static int keys_collect(void *arg, const struct sfs_key_rec *k)
{
	struct key_list *l = arg;
	struct sfs_key_rec *nv;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		nv = realloc(l->v, l->cap * sizeof(*nv));
		if (!nv)
			return SFS_ENOMEM;
		l->v = nv;
	}
	l->v[l->n++] = *k;
	return 0;
}

/* One key version: old KEK -> material -> new KEK, stored in place. */
static int rewrap_one(struct sfs_ctx *ctx, const struct sfs_crypto *to,
		      const char *key_id, uint32_t kv, struct sfs_error *err)
{
	struct sfs_binding b = {ctx->store_id, NULL, 0, key_id, kv};
	unsigned char material[SFS_KEY_BYTES];
	unsigned char wrapped[SFS_WRAPPED_KEY_BYTES];
	struct sfs_blob old = {NULL, 0}, nb = {wrapped, sizeof(wrapped)};
	int rc;

	rc = sfs_store_keyver_get(ctx->store, key_id, kv, &old, err);
	if (rc == SFS_OK &&
	    sfs_crypto_kms_unwrap(ctx->crypto, &b, old.data, old.len,
				  material) != SFS_OK)
		rc = sfs_error_set(err, SFS_EBADMSG,
				   "kms key '%s' version %u does not "
				   "authenticate: nothing changed",
				   key_id, (unsigned)kv);
	if (rc == SFS_OK)
		rc = sfs_crypto_kms_wrap(to, &b, material, wrapped);
	if (rc == SFS_OK)
		rc = sfs_store_keyver_set(ctx->store, key_id, kv, &nb, err);
	sfs_crypto_wipe(material, sizeof(material));
	sfs_blob_release(&old);
	return rc;
}

/* In the write transaction: every key version, then the canary. */
static int rewrap_all(struct sfs_ctx *ctx, const struct sfs_crypto *to,
		      struct sfs_error *err)
{
	unsigned char canary[SFS_CANARY_BYTES];
	struct key_list l = {NULL, 0, 0};
	size_t i;
	uint32_t kv;
	int rc;

	rc = sfs_store_key_list(ctx->store, keys_collect, &l, err);
	if (rc == SFS_ENOMEM)
		rc = sfs_error_set(err, rc, "out of memory");
	for (i = 0; rc == SFS_OK && i < l.n; i++)
		for (kv = 1; rc == SFS_OK && kv <= l.v[i].current_version;
		     kv++)
			rc = rewrap_one(ctx, to, l.v[i].id, kv, err);
	free(l.v);
	if (rc == SFS_OK)
		rc = sfs_crypto_canary_make(to, ctx->store_id, canary);
	if (rc == SFS_OK)
		rc = sfs_store_meta_set(ctx->store, "canary", canary,
					sizeof(canary), err);
	return rc;
}

static int rekey_apply(struct sfs_ctx *ctx, struct ctx_change *ch,
		       const struct sfs_policy_state *st, struct sfs_error *err)
{
	(void)st;
	return rewrap_all(ctx, ch->arg, err);
}

static void rekey_line(struct sfs_ctx *ctx, struct ctx_change *ch, int rc,
		       struct ctx_audit_line *l)
{
	const struct ctx_audit_line line = {
	    "store.rekey", NULL, NULL, NULL, 0, rc, 1};

	(void)ctx;
	(void)ch;
	*l = line;
}

/* The new KEK from the key file at path, into *to. */
static int new_kek(const char *path, struct sfs_crypto **to,
		   struct sfs_error *err)
{
	unsigned char master[SFS_KEY_BYTES];
	int rc;

	rc = sfs_crypto_master_load(path, master, err);
	if (rc == SFS_OK)
		rc = sfs_crypto_new(to, master, err);
	sfs_crypto_wipe(master, sizeof(master));
	return rc;
}

/*
 * On the change runner, as every change: the policy's administrator-only
 * question (it has no row of its own for a rekey; the one roles ask, on a
 * writable store), the rewrap, and the line committed with it.
 */
int sfs_ctx_rekey(struct sfs_ctx *ctx, const char *new_key_path,
		  struct sfs_error *err)
{
	struct sfs_crypto *to = NULL;
	struct sfs_caller admin;
	static const struct ctx_change_ops ops = {
	    .apply = rekey_apply, .line = rekey_line};
	struct ctx_change ch = {.act = SFS_ACT_ROLE_CHANGE,
				.c = &admin,
				.ops = &ops,
				.about = sfs_object_whole(SFS_OBJ_STORE)};
	int rc;

	sfs_error_clear(err);
	if (!sfs_ctx_master_key_path(ctx))
		return sfs_error_set(err, SFS_EINVAL,
				     "rekey: the store's key comes from a "
				     "passphrase, not a key file");
	rc = new_kek(new_key_path, &to, err);
	if (rc != SFS_OK)
		return rc;
	sfs_caller_self(&admin);
	ch.arg = to;
	rc = ctx_change_run(ctx, &ch, err);
	sfs_crypto_free(to);
	return rc;
}
