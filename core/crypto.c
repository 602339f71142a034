/*
 * Crypto: keys, envelopes and associated data; the only file that includes
 * <sodium.h>.
 *
 * Every blob is crypto_aead_xchacha20poly1305_ietf with a fresh random
 * nonce, laid out as the envelope described in crypto.h:
 *
 *   0x01 | nonce (24) | ciphertext | tag (16)
 *
 * The associated data binds each blob to its place. It is built by ad_build()
 * alone, and is part of the on-disk format (frozen by
 * tests/vectors/envelope.exp):
 *
 *   u8    0x01                     AD layout version
 *   field purpose                  "canary", "kms", "dek" or "value"
 *   field store id                 16 bytes
 *   field secret id                UUID text
 *   u32   version                  big-endian
 *   field key id                   UUID text
 *   u32   key version              big-endian
 *
 * where a field is a u16 big-endian length followed by that many bytes, or
 * the u16 0xffff alone when the field is absent (NULL), so that an absent
 * field and an empty one differ. Every field is self-delimiting and comes in
 * a fixed order, so no two bindings serialise alike: changing any binding
 * field or the purpose fails authentication (SFS_EBADMSG). Fields longer
 * than 256 bytes are refused (SFS_EINVAL when sealing, SFS_EBADMSG when
 * opening).
 *
 * Keys: the KEK is crypto_kdf_derive_from_key(master, id 1, "sfs-kek1"),
 * kept in sodium_malloc memory made read-only once derived. Temporary keys
 * and plaintext copies are wiped on every path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "secretfs/crypto.h"

#define KEK_SUBKEY_ID 1
#define KEK_CONTEXT   "sfs-kek1"
#define AD_VERSION    0x01
#define AD_ABSENT     0xffff
#define AD_FIELD_MAX  256 /* longest purpose or id accepted */
#define AD_MAX	      (1 + 4 * (2 + AD_FIELD_MAX) + 4 + 4)
#define PASS_MAX      4096 /* longest passphrase file accepted */

/* The canary's plaintext: a fixed 32-byte string. */
static const unsigned char canary_plain[32] = "secretfs master key canary v1";

struct sfs_crypto {
	unsigned char *kek; /* sodium_malloc'd, read-only */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void init_sodium(void)
{
	init_rc = sodium_init() < 0 ? SFS_EIO : SFS_OK;
}

int sfs_crypto_global_init(void)
{
	pthread_once(&init_once, init_sodium);
	return init_rc;
}

/* For functions that cannot fail: no sodium means no safe randomness. */
static void need_sodium(void)
{
	if (sfs_crypto_global_init() != SFS_OK)
		abort();
}

void sfs_crypto_random(void *buf, size_t n)
{
	need_sodium();
	randombytes_buf(buf, n);
}

void sfs_crypto_uuid(char out[SFS_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t i, o = 0;

	sfs_crypto_random(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	for (i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
}

void sfs_crypto_wipe(void *p, size_t n)
{
	if (p)
		sodium_memzero(p, n);
}

void sfs_crypto_free_secret(void *p, size_t n)
{
	if (!p)
		return;
	sodium_memzero(p, n);
	free(p);
}

int sfs_crypto_memcmp(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0 ? 0 : -1;
}

/* --- master key files ------------------------------------------------- */

static int open_error(struct sfs_error *err, const char *what, const char *path,
		      int e)
{
	int code = e == ENOENT	 ? SFS_ENOENT
		   : e == EACCES ? SFS_EACCES
				 : SFS_EIO;

	return sfs_error_set(err, code, "cannot open %s '%s': %s", what, path,
			     sfs_strerrno(e));
}

/*
 * Read at most cap bytes of fd into buf; *n gets the count. A file longer
 * than cap gives *n = cap + 1 (buf must hold cap + 1 bytes).
 */
static int read_all(int fd, unsigned char *buf, size_t cap, size_t *n)
{
	ssize_t r;

	*n = 0;
	while (*n <= cap) {
		r = read(fd, buf + *n, cap + 1 - *n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	return 0;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 32 raw bytes, or 64 hex digits with an optional newline; 0 or -1. */
static int key_decode(const unsigned char *buf, size_t n,
		      unsigned char out[SFS_KEY_BYTES])
{
	size_t i;
	int hi, lo;

	if (n == SFS_KEY_BYTES) {
		memcpy(out, buf, SFS_KEY_BYTES);
		return 0;
	}
	if (n == 2 * SFS_KEY_BYTES + 1 && buf[n - 1] == '\n')
		n--;
	if (n != 2 * SFS_KEY_BYTES)
		return -1;
	for (i = 0; i < SFS_KEY_BYTES; i++) {
		hi = hex_value(buf[2 * i]);
		lo = hex_value(buf[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			sodium_memzero(out, SFS_KEY_BYTES);
			return -1;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/*
 * SPEC §1, as ssh does for its keys: a key or passphrase file must be
 * owned by the caller (or root) and neither readable nor writable by
 * group or others; a key file must also be a regular file. what names it
 * in the message ("key file", "passphrase file").
 */
static int key_file_check(int fd, const char *what, const char *path,
			  int regular, struct sfs_error *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return sfs_error_set(err, SFS_EIO, "cannot stat %s '%s': %s",
				     what, path, sfs_strerrno(errno));
	if (regular && !S_ISREG(st.st_mode))
		return sfs_error_set(err, SFS_EINVAL,
				     "%s '%s' is not a regular file", what,
				     path);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return sfs_error_set(err, SFS_EKEYFILE,
				     "%s '%s' is owned by uid %u, not by you "
				     "or root",
				     what, path, (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return sfs_error_set(err, SFS_EKEYFILE,
				     "%s '%s' is readable by group or "
				     "others (mode %04o)",
				     what, path,
				     (unsigned)(st.st_mode & 07777));
	return SFS_OK;
}

int sfs_crypto_master_load(const char *path, unsigned char out[SFS_KEY_BYTES],
			   struct sfs_error *err)
{
	unsigned char buf[2 * SFS_KEY_BYTES + 2];
	size_t n = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return open_error(err, "key file", path, errno);
	rc = key_file_check(fd, "key file", path, 1, err);
	if (rc)
		goto out;
	if (read_all(fd, buf, sizeof(buf) - 1, &n) < 0) {
		rc =
		    sfs_error_set(err, SFS_EIO, "cannot read key file '%s': %s",
				  path, sfs_strerrno(errno));
		goto out;
	}
	if (key_decode(buf, n, out) < 0)
		rc = sfs_error_set(err, SFS_EINVAL,
				   "key file '%s' holds neither 32 bytes nor "
				   "64 hex digits",
				   path);
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

/* Make the new directory entry durable; best effort. */
static void sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;
	int fd;

	if (!slash) {
		strcpy(dir, ".");
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= sizeof(dir))
			return;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	fsync(fd);
	close(fd);
}

static int write_key(int fd, const unsigned char key[SFS_KEY_BYTES])
{
	size_t done = 0;
	ssize_t w;

	while (done < SFS_KEY_BYTES) {
		w = write(fd, key + done, SFS_KEY_BYTES - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return fchmod(fd, 0400) < 0 || fsync(fd) < 0 ? -1 : 0;
}

int sfs_crypto_master_generate(const char *path,
			       unsigned char out[SFS_KEY_BYTES],
			       struct sfs_error *err)
{
	int fd, rc = SFS_OK;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0400);
	if (fd < 0 && errno == EEXIST)
		return sfs_error_set(err, SFS_EEXIST,
				     "cannot create key file '%s': it exists",
				     path);
	if (fd < 0)
		return open_error(err, "key file", path, errno);
	sfs_crypto_random(out, SFS_KEY_BYTES);
	if (write_key(fd, out) < 0) {
		rc = sfs_error_set(err, errno == ENOSPC ? SFS_ENOSPC : SFS_EIO,
				   "cannot write key file '%s': %s", path,
				   sfs_strerrno(errno));
		sodium_memzero(out, SFS_KEY_BYTES);
		unlink(path);
	}
	close(fd);
	if (rc == SFS_OK)
		sync_parent(path);
	return rc;
}

/* --- passphrases ------------------------------------------------------ */

void sfs_crypto_kdf_params_new(struct sfs_kdf_params *p)
{
	const char *min = getenv("SECRETFS_KDF_MIN");

	sfs_crypto_random(p->salt, sizeof(p->salt));
	if (min && strcmp(min, "1") == 0) {
		p->opslimit = crypto_pwhash_OPSLIMIT_MIN;
		p->memlimit = crypto_pwhash_MEMLIMIT_MIN;
	} else {
		p->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		p->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	}
}

int sfs_crypto_passphrase_derive(const char *pass, size_t len,
				 const struct sfs_kdf_params *p,
				 unsigned char out[SFS_KEY_BYTES],
				 struct sfs_error *err)
{
	if (sfs_crypto_global_init() != SFS_OK)
		return sfs_error_set(err, SFS_EIO,
				     "cannot initialise libsodium");
	if (len == 0)
		return sfs_error_set(err, SFS_EINVAL, "empty passphrase");
	if (len > crypto_pwhash_PASSWD_MAX)
		return sfs_error_set(err, SFS_EINVAL, "passphrase too long");
	/* The parameters come from the store: do not trust them blindly. */
	if (p->opslimit < crypto_pwhash_OPSLIMIT_MIN ||
	    p->opslimit > crypto_pwhash_OPSLIMIT_MAX ||
	    p->memlimit < crypto_pwhash_MEMLIMIT_MIN ||
	    p->memlimit > crypto_pwhash_MEMLIMIT_MAX)
		return sfs_error_set(err, SFS_EINVAL,
				     "invalid argon2id parameters (ops %llu, "
				     "mem %llu)",
				     (unsigned long long)p->opslimit,
				     (unsigned long long)p->memlimit);
	if (crypto_pwhash(out, SFS_KEY_BYTES, pass, len, p->salt, p->opslimit,
			  (size_t)p->memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sodium_memzero(out, SFS_KEY_BYTES);
		return sfs_error_set(err, SFS_ENOMEM,
				     "argon2id failed: out of memory");
	}
	return SFS_OK;
}

int sfs_crypto_passphrase_read(const char *path, char **out, size_t *len,
			       struct sfs_error *err)
{
	unsigned char buf[PASS_MAX + 1];
	size_t n = 0;
	int fd, rc = SFS_OK;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return open_error(err, "passphrase file", path, errno);
	rc = key_file_check(fd, "passphrase file", path, 0, err);
	if (rc != SFS_OK)
		goto out;
	if (read_all(fd, buf, PASS_MAX, &n) < 0) {
		rc = sfs_error_set(err, SFS_EIO,
				   "cannot read passphrase file '%s': %s", path,
				   sfs_strerrno(errno));
		goto out;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n == 0 || n > PASS_MAX) {
		rc =
		    sfs_error_set(err, SFS_EINVAL, "passphrase file '%s' is %s",
				  path, n ? "too long" : "empty");
		goto out;
	}
	*out = malloc(n + 1);
	if (!*out) {
		rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(*out, buf, n);
	(*out)[n] = '\0';
	*len = n;
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

/* --- the KEK ---------------------------------------------------------- */

int sfs_crypto_new(struct sfs_crypto **out,
		   const unsigned char master[SFS_KEY_BYTES],
		   struct sfs_error *err)
{
	struct sfs_crypto *c;

	*out = NULL;
	if (sfs_crypto_global_init() != SFS_OK)
		return sfs_error_set(err, SFS_EIO,
				     "cannot initialise libsodium");
	c = calloc(1, sizeof(*c));
	if (!c)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	c->kek = sodium_malloc(SFS_KEY_BYTES);
	if (!c->kek) {
		free(c);
		return sfs_error_set(err, SFS_ENOMEM,
				     "cannot allocate locked memory for keys");
	}
	crypto_kdf_derive_from_key(c->kek, SFS_KEY_BYTES, KEK_SUBKEY_ID,
				   KEK_CONTEXT, master);
	sodium_mprotect_readonly(c->kek);
	*out = c;
	return SFS_OK;
}

void sfs_crypto_free(struct sfs_crypto *c)
{
	if (!c)
		return;
	sodium_free(c->kek); /* zeroes, and lifts the read-only protection */
	free(c);
}

/* --- envelopes -------------------------------------------------------- */

size_t sfs_crypto_sealed_len(size_t n)
{
	return n + SFS_ENVELOPE_OVERHEAD;
}

int sfs_crypto_envelope_parse(const unsigned char *blob, size_t len,
			      struct sfs_envelope *env)
{
	if (!blob || len < SFS_ENVELOPE_OVERHEAD || blob[0] != SFS_ENVELOPE_V1)
		return SFS_EBADMSG;
	env->format = blob[0];
	env->nonce = blob + 1;
	env->ct = blob + 1 + SFS_NONCE_BYTES;
	env->ct_len = len - 1 - SFS_NONCE_BYTES;
	return SFS_OK;
}

struct ad {
	unsigned char buf[AD_MAX];
	size_t len;
	int bad; /* a field was too long */
};

static void ad_u16(struct ad *a, unsigned v)
{
	a->buf[a->len++] = (unsigned char)(v >> 8);
	a->buf[a->len++] = (unsigned char)v;
}

static void ad_u32(struct ad *a, uint32_t v)
{
	ad_u16(a, v >> 16);
	ad_u16(a, v & 0xffff);
}

static void ad_field(struct ad *a, const void *p, size_t n)
{
	if (!p) {
		ad_u16(a, AD_ABSENT);
		return;
	}
	if (n > AD_FIELD_MAX) {
		a->bad = 1;
		n = 0;
	}
	ad_u16(a, (unsigned)n);
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static const char *str_or_null(const char *s, size_t *n)
{
	*n = s ? strlen(s) : 0;
	return s;
}

/* The associated data of a blob: see the layout in the file comment. */
static int ad_build(struct ad *a, const char *purpose,
		    const struct sfs_binding *b)
{
	const char *s;
	size_t n;

	a->len = 0;
	a->bad = 0;
	a->buf[a->len++] = AD_VERSION;
	ad_field(a, purpose, strlen(purpose));
	ad_field(a, b->store_id, SFS_STORE_ID_BYTES);
	s = str_or_null(b->secret_id, &n);
	ad_field(a, s, n);
	ad_u32(a, b->version);
	s = str_or_null(b->key_id, &n);
	ad_field(a, s, n);
	ad_u32(a, b->key_version);
	return a->bad ? SFS_EINVAL : SFS_OK;
}

/* Seal under key; a NULL nonce means a fresh random one. */
static int seal(const unsigned char key[SFS_KEY_BYTES], const char *purpose,
		const struct sfs_binding *b, const unsigned char *nonce,
		const void *plain, size_t len, unsigned char *out)
{
	static const unsigned char empty[1];
	struct ad ad;
	int rc;

	need_sodium();
	rc = ad_build(&ad, purpose, b);
	if (rc)
		return rc;
	out[0] = SFS_ENVELOPE_V1;
	if (nonce)
		memcpy(out + 1, nonce, SFS_NONCE_BYTES);
	else
		randombytes_buf(out + 1, SFS_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + 1 + SFS_NONCE_BYTES, NULL, len ? plain : empty, len, ad.buf,
	    ad.len, NULL, out + 1, key);
	return SFS_OK;
}

/*
 * Open blob under key into out. want is the exact plaintext length (the
 * size of out), or SIZE_MAX for any (out then holds len -
 * SFS_ENVELOPE_OVERHEAD bytes). out is zeroed on failure.
 */
static int open_blob(const unsigned char key[SFS_KEY_BYTES],
		     const char *purpose, const struct sfs_binding *b,
		     const unsigned char *blob, size_t len, size_t want,
		     unsigned char *out, size_t *out_len)
{
	struct sfs_envelope env;
	struct ad ad;
	unsigned long long n = 0;
	int rc;

	need_sodium();
	rc = sfs_crypto_envelope_parse(blob, len, &env);
	if (rc == SFS_OK && want != SIZE_MAX &&
	    len != want + SFS_ENVELOPE_OVERHEAD)
		rc = SFS_EBADMSG;
	if (rc == SFS_OK && ad_build(&ad, purpose, b) != SFS_OK)
		rc = SFS_EBADMSG;
	if (rc == SFS_OK && crypto_aead_xchacha20poly1305_ietf_decrypt(
				out, &n, NULL, env.ct, env.ct_len, ad.buf,
				ad.len, env.nonce, key) != 0)
		rc = SFS_EBADMSG;
	if (rc != SFS_OK && want != SIZE_MAX)
		sodium_memzero(out, want);
	else if (rc != SFS_OK && len > SFS_ENVELOPE_OVERHEAD)
		sodium_memzero(out, len - SFS_ENVELOPE_OVERHEAD);
	if (out_len)
		*out_len = rc == SFS_OK ? (size_t)n : 0;
	return rc;
}

int sfs_crypto_seal_with_nonce(const unsigned char key[SFS_KEY_BYTES],
			       const char *purpose, const struct sfs_binding *b,
			       const unsigned char nonce[SFS_NONCE_BYTES],
			       const void *plain, size_t len,
			       unsigned char *out)
{
	return seal(key, purpose, b, nonce, plain, len, out);
}

/* --- canary, KMS material, data keys, values -------------------------- */

int sfs_crypto_canary_make(const struct sfs_crypto *c,
			   const unsigned char store_id[SFS_STORE_ID_BYTES],
			   unsigned char out[SFS_CANARY_BYTES])
{
	struct sfs_binding b = {.store_id = store_id};

	return seal(c->kek, "canary", &b, NULL, canary_plain,
		    sizeof(canary_plain), out);
}

/* Bad format: SFS_EBADMSG; fails to open or wrong content: SFS_EMASTER. */
int sfs_crypto_canary_check(const struct sfs_crypto *c,
			    const unsigned char store_id[SFS_STORE_ID_BYTES],
			    const unsigned char *blob, size_t len)
{
	struct sfs_binding b = {.store_id = store_id};
	struct sfs_envelope env;
	unsigned char plain[sizeof(canary_plain)];
	int rc;

	if (len != SFS_CANARY_BYTES ||
	    sfs_crypto_envelope_parse(blob, len, &env) != SFS_OK)
		return SFS_EBADMSG;
	rc = open_blob(c->kek, "canary", &b, blob, len, sizeof(plain), plain,
		       NULL);
	if (rc == SFS_OK &&
	    sodium_memcmp(plain, canary_plain, sizeof(plain)) != 0)
		rc = SFS_EMASTER;
	sodium_memzero(plain, sizeof(plain));
	return rc == SFS_OK ? SFS_OK : SFS_EMASTER;
}

int sfs_crypto_kms_wrap(const struct sfs_crypto *c, const struct sfs_binding *b,
			const unsigned char material[SFS_KEY_BYTES],
			unsigned char out[SFS_WRAPPED_KEY_BYTES])
{
	return seal(c->kek, "kms", b, NULL, material, SFS_KEY_BYTES, out);
}

int sfs_crypto_kms_unwrap(const struct sfs_crypto *c,
			  const struct sfs_binding *b,
			  const unsigned char *blob, size_t len,
			  unsigned char material[SFS_KEY_BYTES])
{
	return open_blob(c->kek, "kms", b, blob, len, SFS_KEY_BYTES, material,
			 NULL);
}

int sfs_crypto_dek_wrap(const unsigned char kms[SFS_KEY_BYTES],
			const struct sfs_binding *b,
			const unsigned char dek[SFS_KEY_BYTES],
			unsigned char out[SFS_WRAPPED_KEY_BYTES])
{
	return seal(kms, "dek", b, NULL, dek, SFS_KEY_BYTES, out);
}

int sfs_crypto_dek_unwrap(const unsigned char kms[SFS_KEY_BYTES],
			  const struct sfs_binding *b,
			  const unsigned char *blob, size_t len,
			  unsigned char dek[SFS_KEY_BYTES])
{
	return open_blob(kms, "dek", b, blob, len, SFS_KEY_BYTES, dek, NULL);
}

int sfs_crypto_value_seal(const unsigned char dek[SFS_KEY_BYTES],
			  const struct sfs_binding *b, const void *plain,
			  size_t len, unsigned char *out)
{
	return seal(dek, "value", b, NULL, plain, len, out);
}

int sfs_crypto_value_open(const unsigned char dek[SFS_KEY_BYTES],
			  const struct sfs_binding *b,
			  const unsigned char *blob, size_t len, void *out,
			  size_t *out_len)
{
	return open_blob(dek, "value", b, blob, len, SIZE_MAX, out, out_len);
}
