/*
 * Private to core/ (ctx_master.c): the master key, from its file or
 * derived from a passphrase with the store's Argon2id parameters.
 */
#ifndef SECRETFS_CTX_MASTER_H
#define SECRETFS_CTX_MASTER_H

#include <stddef.h>

#include "ctx_layout.h"

#define KDF_BLOB_BYTES (SFS_SALT_BYTES + 16)

/* The KDF parameters as the store's meta "kdf" holds them. */
void ctx_kdf_encode(const struct sfs_kdf_params *p,
		    unsigned char out[KDF_BLOB_BYTES]);

/* The master key of passphrase pass (wiped and freed here). */
int ctx_kdf_derive(char *pass, size_t len, const struct sfs_kdf_params *p,
		   unsigned char master[SFS_KEY_BYTES], struct sfs_error *err);

/* The master key file of o for a store in dir. */
int ctx_key_path(const struct sfs_ctx_options *o, const char *dir, char *out,
		 size_t cap, struct sfs_error *err);

/* Open: load or derive the master key (kdf: the store's parameters, or
 * none) and make ctx->crypto from it; every copy is wiped. */
int ctx_master_open(struct sfs_ctx *ctx, const struct sfs_ctx_options *o,
		    const struct sfs_blob *kdf, struct sfs_error *err);

#endif
