/*
 * Private to core/ (ctx_cache.c): the context's caches, all guarded by
 * its mutex: the read cache of records and ciphertext, the KMS key
 * material, the role grants.
 */
#ifndef SECRETFS_CTX_CACHE_H
#define SECRETFS_CTX_CACHE_H

#include "ctx_layout.h"

/*
 * Reads served from the cache (see ctx.c). The pattern:
 *
 *	rc = ctx_read_lock(ctx, err);
 *	if (rc == SFS_OK)
 *		rc = gather(...);
 *	if (rc == CTX_MISS && (rc = ctx_read_fill(ctx, err)) == SFS_OK)
 *		rc = gather(...);
 *	rc = ctx_read_unlock(ctx, rc, err);
 *
 * ctx_read_lock() locks and validates the cache against the store's
 * generation, with no store transaction: the loaders below (secret,
 * version, key, KMS material) then answer from the cache only and
 * return CTX_MISS for anything not there. ctx_read_fill() opens a read
 * transaction, after which the loaders read the store and fill the
 * cache; gather runs again from the start, so that what it returns comes
 * from one snapshot. Without a cache, ctx_read_lock() opens the
 * transaction at once and CTX_MISS never happens. Only records and
 * ciphertext are cached: every rule is still asked of the policy.
 */
int ctx_read_lock(struct sfs_ctx *ctx, struct sfs_error *err);
int ctx_read_fill(struct sfs_ctx *ctx, struct sfs_error *err);
int ctx_read_unlock(struct sfs_ctx *ctx, int rc, struct sfs_error *err);

/* A version's blobs, shared between the cache and the readers that
 * decrypt them after the lock is released. */
struct ctx_blobs {
	int refs; /* atomic */
	size_t dek_len, ct_len;
	unsigned char *dek, *ct; /* into data */
	unsigned char data[];
};
void ctx_blobs_put(struct ctx_blobs *b);

/*
 * Lock held: version n of secret secret_id without blobs in *v; with
 * blobs != NULL also a reference to its blobs (drop it with
 * ctx_blobs_put). SFS_ENOENT as the store's version_get.
 */
int ctx_version_load(struct sfs_ctx *ctx, const char *secret_id, uint32_t n,
		     struct sfs_version_rec *v, struct ctx_blobs **blobs,
		     struct sfs_error *err);

/* Lock held, transaction open: the secret named name (a name or an id),
 * or SFS_ENOENT with a message. */
int ctx_secret_load(struct sfs_ctx *ctx, const char *name,
		    struct sfs_secret_rec *s, struct sfs_error *err);

/* Fill the key fields of a policy state from a lookup of key (id or
 * name): key_exists 0 when there is no such key. *k gets the record. */
int ctx_key_state(struct sfs_ctx *ctx, const char *key,
		  struct sfs_policy_state *st, struct sfs_key_rec *k,
		  struct sfs_error *err);
/* The key fields of a policy state from k (an existing key); SFS_OK. */
int ctx_key_state_fill(struct sfs_policy_state *st,
		       const struct sfs_key_rec *k);

/*
 * The material of KMS key key_id at key version kv, unwrapped with the
 * KEK (cached). Call with the lock held inside a transaction. SFS_EBADMSG
 * when the wrapped material fails authentication or is missing.
 */
int ctx_kms_material(struct sfs_ctx *ctx, const char *key_id, uint32_t kv,
		     unsigned char out[SFS_KEY_BYTES], struct sfs_error *err);

/* A heap array that grows by one element at a time: what a store's list
 * callback collects while the lock is held, for use after it is let go. */
struct ctx_array {
	void *v; /* free() it */
	size_t n;
};

/* The new last element (size bytes, not cleared) of a, or NULL when out
 * of memory (a is then as it was). */
void *ctx_array_push(struct ctx_array *a, size_t size);

/* A role grant as the store holds it: the role's name and bit. */
struct role_pair {
	unsigned role;	/* enum sfs_role; 0 for a name it does not know */
	char name[16];
	char principal[SFS_PRINCIPAL_MAX + 1];
};

/* Transaction open: every grant in the store into *v (free() it), *n of
 * them; on failure *v NULL, the store's code, err set by the store. */
int ctx_grants_read(struct sfs_ctx *ctx, struct role_pair **v, size_t *n,
		    struct sfs_error *err);

/* Open and close: the KMS region, the read cache, the grants. */
int ctx_kms_new(struct sfs_ctx *ctx, struct sfs_error *err);
void ctx_kms_free(struct sfs_ctx *ctx);
int ctx_cache_new(struct sfs_ctx *ctx, struct sfs_error *err);
void ctx_cache_free(struct sfs_ctx *ctx);
/* Lock held: drop every record (regen: keyed on the store's generation
 * now, the store being trusted). */
void ctx_cache_reset(struct sfs_ctx *ctx, int regen);
void ctx_roles_free(struct sfs_ctx *ctx);

#endif
