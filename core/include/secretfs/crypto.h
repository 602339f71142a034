/*
 * Crypto: the only module that includes <sodium.h>.
 *
 * Key hierarchy: master key (32 bytes, file or Argon2id passphrase)
 *   -> KEK (derived from the master key, held in sodium_malloc memory)
 *   -> KMS key material (32 bytes per key version, stored wrapped by the KEK)
 *   -> data key (32 random bytes per secret version, stored wrapped by the
 *      KMS key version) -> the value's ciphertext.
 *
 * Every sealed blob is an envelope (see sfs_crypto_envelope_parse):
 *   byte 0      format version (SFS_ENVELOPE_V1 = 0x01)
 *   bytes 1-24  XChaCha20-Poly1305-IETF nonce (random)
 *   bytes 25-   ciphertext followed by the 16-byte tag
 * and is authenticated with associated data that binds it to its place:
 * purpose, store id, secret id, version, KMS key id and key version
 * (struct sfs_binding). Editing, moving or swapping any blob therefore
 * fails authentication with SFS_EBADMSG and never yields other data. The
 * exact AD layout is frozen by the known-answer vectors in tests/.
 *
 * Thread-safety: all functions are safe to call from many threads once
 * sfs_crypto_global_init() has returned; a struct sfs_crypto is read-only
 * after sfs_crypto_new().
 */
#ifndef SECRETFS_CRYPTO_H
#define SECRETFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "secretfs/err.h"

#define SFS_KEY_BYTES 32
#define SFS_STORE_ID_BYTES 16
#define SFS_SALT_BYTES 16
#define SFS_ENVELOPE_V1 0x01
#define SFS_NONCE_BYTES 24
#define SFS_TAG_BYTES 16
#define SFS_ENVELOPE_OVERHEAD (1 + SFS_NONCE_BYTES + SFS_TAG_BYTES)
#define SFS_UUID_LEN 36 /* text form, without the NUL */

struct sfs_crypto;

/* Where a blob lives. Unused fields are NULL / 0. */
struct sfs_binding {
	const unsigned char *store_id; /* SFS_STORE_ID_BYTES */
	const char *secret_id;         /* UUID text or NULL */
	uint32_t version;              /* secret version, or 0 */
	const char *key_id;            /* KMS key UUID text or NULL */
	uint32_t key_version;          /* KMS key version, or 0 */
};

/* A parsed envelope; pointers point into the parsed blob. */
struct sfs_envelope {
	unsigned char format;
	const unsigned char *nonce;
	const unsigned char *ct; /* ciphertext + tag */
	size_t ct_len;
};

/* sodium_init(); 0 or SFS_EIO. Idempotent, thread-safe. */
int sfs_crypto_global_init(void);

/* Fill buf with n random bytes. */
void sfs_crypto_random(void *buf, size_t n);

/* Write a random (version 4) UUID in text form plus NUL to out[37]. */
void sfs_crypto_uuid(char out[SFS_UUID_LEN + 1]);

/* Zero n bytes at p in a way the compiler cannot drop. */
void sfs_crypto_wipe(void *p, size_t n);

/* Zero n bytes at p, then free(p). p may be NULL. */
void sfs_crypto_free_secret(void *p, size_t n);

/* Constant-time comparison: 0 when equal. */
int sfs_crypto_memcmp(const void *a, const void *b, size_t n);

/*
 * Load a master key file: exactly 32 raw bytes, or 64 hex digits with an
 * optional trailing newline (handy for systemd credentials). A file
 * readable or writable by group or others, or owned by another user than
 * the caller or root, gives SFS_EKEYFILE (as ssh refuses such keys); a
 * missing or malformed file SFS_ENOENT / SFS_EINVAL.
 */
int sfs_crypto_master_load(const char *path, unsigned char out[SFS_KEY_BYTES],
			   struct sfs_error *err);

/* Create path (O_EXCL, mode 0400) holding 32 fresh random bytes, and
 * return them in out. SFS_EEXIST if the file exists. */
int sfs_crypto_master_generate(const char *path,
			       unsigned char out[SFS_KEY_BYTES],
			       struct sfs_error *err);

/* Argon2id cost parameters; stored in the store's meta table by init. */
struct sfs_kdf_params {
	unsigned char salt[SFS_SALT_BYTES];
	uint64_t opslimit;
	uint64_t memlimit;
};

/* Fresh salt with the interactive cost, or the minimum cost when the
 * environment variable SECRETFS_KDF_MIN=1 is set (tests only). */
void sfs_crypto_kdf_params_new(struct sfs_kdf_params *p);

/* Derive the master key from a passphrase with Argon2id. */
int sfs_crypto_passphrase_derive(const char *pass, size_t len,
				 const struct sfs_kdf_params *p,
				 unsigned char out[SFS_KEY_BYTES],
				 struct sfs_error *err);

/* Read a passphrase file (trailing newline stripped) into a malloc'd,
 * NUL-terminated buffer; free with sfs_crypto_free_secret(p, *len + 1).
 * The file is checked as a key file is (SFS_EKEYFILE), but may be a pipe
 * or a terminal. */
int sfs_crypto_passphrase_read(const char *path, char **out, size_t *len,
			       struct sfs_error *err);

/* Hold a master key: derives the KEK into sodium_malloc memory (locked,
 * guard-paged). The caller wipes its own copy of master afterwards. */
int sfs_crypto_new(struct sfs_crypto **out,
		   const unsigned char master[SFS_KEY_BYTES],
		   struct sfs_error *err);
void sfs_crypto_free(struct sfs_crypto *c);

/* Sealed size of a plaintext of n bytes: n + SFS_ENVELOPE_OVERHEAD. */
size_t sfs_crypto_sealed_len(size_t n);

/* Split blob into its parts without decrypting; SFS_EBADMSG when it is
 * too short or of an unknown format. Fuzzed. */
int sfs_crypto_envelope_parse(const unsigned char *blob, size_t len,
			      struct sfs_envelope *env);

/*
 * Canary: a blob sealed under the KEK that proves a master key at start.
 * out must hold SFS_CANARY_BYTES; check gives SFS_EMASTER on mismatch.
 */
#define SFS_CANARY_BYTES (32 + SFS_ENVELOPE_OVERHEAD)
int sfs_crypto_canary_make(const struct sfs_crypto *c,
			   const unsigned char store_id[SFS_STORE_ID_BYTES],
			   unsigned char out[SFS_CANARY_BYTES]);
int sfs_crypto_canary_check(const struct sfs_crypto *c,
			    const unsigned char store_id[SFS_STORE_ID_BYTES],
			    const unsigned char *blob, size_t len);

/*
 * KMS key material: wrap 32 bytes under the KEK, bound to (store id,
 * key id, key version). out holds SFS_WRAPPED_KEY_BYTES.
 */
#define SFS_WRAPPED_KEY_BYTES (SFS_KEY_BYTES + SFS_ENVELOPE_OVERHEAD)
int sfs_crypto_kms_wrap(const struct sfs_crypto *c,
			const struct sfs_binding *b,
			const unsigned char material[SFS_KEY_BYTES],
			unsigned char out[SFS_WRAPPED_KEY_BYTES]);
int sfs_crypto_kms_unwrap(const struct sfs_crypto *c,
			  const struct sfs_binding *b,
			  const unsigned char *blob, size_t len,
			  unsigned char material[SFS_KEY_BYTES]);

/*
 * Data keys: wrap a version's 32-byte data key under KMS key material,
 * bound to (store id, secret id, version, key id, key version).
 */
int sfs_crypto_dek_wrap(const unsigned char kms[SFS_KEY_BYTES],
			const struct sfs_binding *b,
			const unsigned char dek[SFS_KEY_BYTES],
			unsigned char out[SFS_WRAPPED_KEY_BYTES]);
int sfs_crypto_dek_unwrap(const unsigned char kms[SFS_KEY_BYTES],
			  const struct sfs_binding *b,
			  const unsigned char *blob, size_t len,
			  unsigned char dek[SFS_KEY_BYTES]);

/*
 * Values: seal len bytes under a data key, bound like the data key.
 * out holds sfs_crypto_sealed_len(len). open writes at most
 * len - SFS_ENVELOPE_OVERHEAD bytes to out and sets *out_len; on failure
 * out is zeroed and SFS_EBADMSG returned.
 */
int sfs_crypto_value_seal(const unsigned char dek[SFS_KEY_BYTES],
			  const struct sfs_binding *b, const void *plain,
			  size_t len, unsigned char *out);
int sfs_crypto_value_open(const unsigned char dek[SFS_KEY_BYTES],
			  const struct sfs_binding *b,
			  const unsigned char *blob, size_t len, void *out,
			  size_t *out_len);

/*
 * Deterministic variants for the known-answer tests only: the nonce is
 * given instead of drawn. Never use outside tests.
 */
int sfs_crypto_seal_with_nonce(const unsigned char key[SFS_KEY_BYTES],
			       const char *purpose, const struct sfs_binding *b,
			       const unsigned char nonce[SFS_NONCE_BYTES],
			       const void *plain, size_t len,
			       unsigned char *out);

#endif
