/*
 * The master key: loaded from its file, or derived from a passphrase
 * with the Argon2id parameters the store keeps in its meta table. Every
 * copy is wiped once struct sfs_crypto holds the KEK.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctx_dir.h"
#include "ctx_master.h"
#include "secretfs/crypto.h"

/* ---- master key -------------------------------------------------------- */

void ctx_kdf_encode(const struct sfs_kdf_params *p,
		    unsigned char out[KDF_BLOB_BYTES])
{
	int i;

	memcpy(out, p->salt, SFS_SALT_BYTES);
	for (i = 0; i < 8; i++) {
		out[SFS_SALT_BYTES + i] =
		    (unsigned char)(p->opslimit >> (8 * i));
		out[SFS_SALT_BYTES + 8 + i] =
		    (unsigned char)(p->memlimit >> (8 * i));
	}
}

static int kdf_decode(const struct sfs_blob *b, struct sfs_kdf_params *p,
		      struct sfs_error *err)
{
	int i;

	if (b->len != KDF_BLOB_BYTES)
		return sfs_error_set(err, SFS_EBADMSG,
				     "store's passphrase parameters are "
				     "corrupt");
	memcpy(p->salt, b->data, SFS_SALT_BYTES);
	p->opslimit = p->memlimit = 0;
	for (i = 0; i < 8; i++) {
		p->opslimit |= (uint64_t)b->data[SFS_SALT_BYTES + i] << (8 * i);
		p->memlimit |= (uint64_t)b->data[SFS_SALT_BYTES + 8 + i]
			       << (8 * i);
	}
	return SFS_OK;
}

int ctx_kdf_derive(char *pass, size_t len, const struct sfs_kdf_params *p,
		   unsigned char master[SFS_KEY_BYTES], struct sfs_error *err)
{
	int rc = sfs_crypto_passphrase_derive(pass, len, p, master, err);

	sfs_crypto_free_secret(pass, len + 1);
	return rc;
}

/* The passphrase for an existing store: file option, environment, then
 * the prompt. */
static int passphrase_master(const struct sfs_ctx_options *o,
			     const struct sfs_kdf_params *p,
			     unsigned char master[SFS_KEY_BYTES],
			     struct sfs_error *err)
{
	const char *file = o->passphrase_file;
	char *pass = NULL;
	size_t len = 0;
	int rc;

	if (!file)
		file = getenv("SECRETFS_PASSPHRASE_FILE");
	if (file && !*file)
		file = NULL; /* set but empty: as unset */
	if (file)
		rc = sfs_crypto_passphrase_read(file, &pass, &len, err);
	else if (o->ask_passphrase)
		rc = o->ask_passphrase(o->ask_arg, &pass, &len);
	else
		rc = SFS_EMASTER;
	if (rc != SFS_OK && !file)
		/* no file, and no terminal to ask on (or nothing typed) */
		rc = sfs_error_set(err, SFS_EMASTER,
				   "the store needs its passphrase: set "
				   "SECRETFS_PASSPHRASE_FILE or run on a "
				   "terminal");
	if (rc != SFS_OK) {
		if (pass)
			sfs_crypto_free_secret(pass, len + 1);
		return ctx_fail(err, rc, "cannot read the passphrase");
	}
	return ctx_kdf_derive(pass, len, p, master, err);
}

/* The key file: option, environment, else DIR/master.key. */
int ctx_key_path(const struct sfs_ctx_options *o, const char *dir, char *out,
		 size_t cap, struct sfs_error *err)
{
	const char *p = o->master_key;

	if (!p || !*p)
		p = getenv("SECRETFS_MASTER_KEY");
	if (p && *p) {
		if (strlen(p) >= cap)
			return sfs_error_set(err, SFS_EINVAL,
					     "master key path too long");
		ctx_strlcpy(out, p, cap);
		return SFS_OK;
	}
	return ctx_path_join(out, cap, dir, KEY_NAME, err);
}

int ctx_master_open(struct sfs_ctx *ctx, const struct sfs_ctx_options *o,
		    const struct sfs_blob *kdf, struct sfs_error *err)
{
	unsigned char master[SFS_KEY_BYTES];
	struct sfs_kdf_params p;
	char path[PATH_MAX];
	int rc;

	if (kdf->data) {
		rc = kdf_decode(kdf, &p, err);
		if (rc == SFS_OK)
			rc = passphrase_master(o, &p, master, err);
	} else {
		rc = ctx_key_path(o, ctx->dir, path, sizeof(path), err);
		if (rc == SFS_OK)
			rc = sfs_crypto_master_load(path, master, err);
		if (rc == SFS_OK && !(ctx->master_key_path = strdup(path)))
			rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
	}
	if (rc == SFS_OK)
		rc = sfs_crypto_new(&ctx->crypto, master, err);
	sfs_crypto_wipe(master, sizeof(master));
	return rc;
}
