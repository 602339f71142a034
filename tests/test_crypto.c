/*
 * Check suite for core/crypto.c: envelopes and their bindings, key files,
 * passphrases, UUIDs, and the known-answer vectors that freeze the on-disk
 * format (tests/vectors/envelope.exp). Every test gets a fresh temporary
 * directory and a struct sfs_crypto made from a fixed master key.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/harness.h"
#include "lib/testutil.h"
#include "secretfs/crypto.h"

static char *dir;
static struct sfs_crypto *crypto;

static const unsigned char master[SFS_KEY_BYTES] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
    0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
    0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20};
static const unsigned char store_a[SFS_STORE_ID_BYTES] = "store-id-aaaaaa";
static const unsigned char store_b[SFS_STORE_ID_BYTES] = "store-id-bbbbbb";
static const unsigned char key_a[SFS_KEY_BYTES] =
    "data key a, thirty-two bytes...";
static const unsigned char key_b[SFS_KEY_BYTES] =
    "data key b, thirty-two bytes...";
static const char secret_a[] = "0b6f3c1e-7f51-4b0c-9d55-6f0ad3a3f3a1";
static const char secret_b[] = "0b6f3c1e-7f51-4b0c-9d55-6f0ad3a3f3a2";
static const char kid_a[] = "7c1d0a52-3e4b-4f7e-8a41-2b9e5c7d1f00";
static const char kid_b[] = "7c1d0a52-3e4b-4f7e-8a41-2b9e5c7d1f01";

static void setup(void)
{
	struct sfs_error err;

	ck_assert_int_eq(sfs_crypto_global_init(), SFS_OK);
	dir = tu_tmpdir("crypto");
	ck_assert_int_eq(sfs_crypto_new(&crypto, master, &err), SFS_OK);
}

static void teardown(void)
{
	sfs_crypto_free(crypto);
	crypto = NULL;
	tu_rmrf(dir);
	free(dir);
	dir = NULL;
}

/* The binding of a value or data key: every field set. */
static struct sfs_binding full_binding(void)
{
	struct sfs_binding b = {
	    .store_id = store_a,
	    .secret_id = secret_a,
	    .version = 3,
	    .key_id = kid_a,
	    .key_version = 2,
	};
	return b;
}

static struct sfs_binding kms_binding(void)
{
	struct sfs_binding b = {
	    .store_id = store_a,
	    .key_id = kid_a,
	    .key_version = 2,
	};
	return b;
}

static char *path_in_dir(const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static int all_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* --- round trips ------------------------------------------------------ */

START_TEST(value_round_trip)
{
	static const size_t lens[] = {0, 1, 31, 32, 100, 65536};
	struct sfs_binding b = full_binding();
	unsigned char *plain, *blob, *out;
	size_t i, n, got;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		n = lens[i];
		plain = malloc(n + 1);
		blob = malloc(sfs_crypto_sealed_len(n));
		out = malloc(n + 1);
		ck_assert_ptr_nonnull(plain);
		ck_assert_ptr_nonnull(blob);
		ck_assert_ptr_nonnull(out);
		sfs_crypto_random(plain, n + 1);
		ck_assert_uint_eq(sfs_crypto_sealed_len(n),
				  n + SFS_ENVELOPE_OVERHEAD);
		ck_assert_int_eq(
		    sfs_crypto_value_seal(key_a, &b, plain, n, blob), SFS_OK);
		ck_assert_uint_eq(blob[0], SFS_ENVELOPE_V1);
		ck_assert_int_eq(
		    sfs_crypto_value_open(key_a, &b, blob,
					  n + SFS_ENVELOPE_OVERHEAD, out, &got),
		    SFS_OK);
		ck_assert_uint_eq(got, n);
		ck_assert_mem_eq(out, plain, n);
		free(plain);
		free(blob);
		free(out);
	}
}
END_TEST

START_TEST(value_seal_uses_fresh_nonce)
{
	struct sfs_binding b = full_binding();
	unsigned char b1[sizeof("same") - 1 + SFS_ENVELOPE_OVERHEAD];
	unsigned char b2[sizeof(b1)];

	ck_assert_int_eq(sfs_crypto_value_seal(key_a, &b, "same", 4, b1),
			 SFS_OK);
	ck_assert_int_eq(sfs_crypto_value_seal(key_a, &b, "same", 4, b2),
			 SFS_OK);
	ck_assert_int_ne(memcmp(b1 + 1, b2 + 1, SFS_NONCE_BYTES), 0);
	ck_assert_int_ne(memcmp(b1, b2, sizeof(b1)), 0);
}
END_TEST

START_TEST(dek_round_trip)
{
	struct sfs_binding b = full_binding();
	unsigned char blob[SFS_WRAPPED_KEY_BYTES], out[SFS_KEY_BYTES];

	ck_assert_int_eq(sfs_crypto_dek_wrap(key_a, &b, key_b, blob), SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_dek_unwrap(key_a, &b, blob, sizeof(blob), out), SFS_OK);
	ck_assert_mem_eq(out, key_b, SFS_KEY_BYTES);
}
END_TEST

START_TEST(kms_round_trip)
{
	struct sfs_binding b = kms_binding();
	unsigned char blob[SFS_WRAPPED_KEY_BYTES], out[SFS_KEY_BYTES];
	struct sfs_crypto *again;
	struct sfs_error err;

	ck_assert_int_eq(sfs_crypto_kms_wrap(crypto, &b, key_a, blob), SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_kms_unwrap(crypto, &b, blob, sizeof(blob), out), SFS_OK);
	ck_assert_mem_eq(out, key_a, SFS_KEY_BYTES);
	/* The same master key later derives the same KEK. */
	ck_assert_int_eq(sfs_crypto_new(&again, master, &err), SFS_OK);
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(
	    sfs_crypto_kms_unwrap(again, &b, blob, sizeof(blob), out), SFS_OK);
	ck_assert_mem_eq(out, key_a, SFS_KEY_BYTES);
	sfs_crypto_free(again);
}
END_TEST

START_TEST(kms_wrong_master_fails)
{
	struct sfs_binding b = kms_binding();
	unsigned char blob[SFS_WRAPPED_KEY_BYTES], out[SFS_KEY_BYTES];
	unsigned char other[SFS_KEY_BYTES];
	struct sfs_crypto *c2;
	struct sfs_error err;

	memcpy(other, master, sizeof(other));
	other[31] ^= 1;
	ck_assert_int_eq(sfs_crypto_new(&c2, other, &err), SFS_OK);
	ck_assert_int_eq(sfs_crypto_kms_wrap(crypto, &b, key_a, blob), SFS_OK);
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(sfs_crypto_kms_unwrap(c2, &b, blob, sizeof(blob), out),
			 SFS_EBADMSG);
	ck_assert(all_zero(out, sizeof(out)));
	sfs_crypto_free(c2);
}
END_TEST

START_TEST(value_wrong_key_fails)
{
	struct sfs_binding b = full_binding();
	unsigned char blob[5 + SFS_ENVELOPE_OVERHEAD], out[5];
	size_t got = 99;

	ck_assert_int_eq(sfs_crypto_value_seal(key_a, &b, "hello", 5, blob),
			 SFS_OK);
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(
	    sfs_crypto_value_open(key_b, &b, blob, sizeof(blob), out, &got),
	    SFS_EBADMSG);
	ck_assert(all_zero(out, sizeof(out)));
	ck_assert_uint_eq(got, 0);
}
END_TEST

START_TEST(canary_right_and_wrong_key)
{
	unsigned char blob[SFS_CANARY_BYTES], other[SFS_KEY_BYTES];
	struct sfs_crypto *c2;
	struct sfs_error err;

	ck_assert_int_eq(sfs_crypto_canary_make(crypto, store_a, blob), SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_canary_check(crypto, store_a, blob, sizeof(blob)),
	    SFS_OK);
	memcpy(other, master, sizeof(other));
	other[0] ^= 0x80;
	ck_assert_int_eq(sfs_crypto_new(&c2, other, &err), SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_canary_check(c2, store_a, blob, sizeof(blob)),
	    SFS_EMASTER);
	/* A canary from another store does not prove this one's key. */
	ck_assert_int_eq(
	    sfs_crypto_canary_check(crypto, store_b, blob, sizeof(blob)),
	    SFS_EMASTER);
	sfs_crypto_free(c2);
}
END_TEST

START_TEST(canary_malformed_is_ebadmsg)
{
	unsigned char blob[SFS_CANARY_BYTES];

	ck_assert_int_eq(sfs_crypto_canary_make(crypto, store_a, blob), SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_canary_check(crypto, store_a, blob, sizeof(blob) - 1),
	    SFS_EBADMSG);
	ck_assert_int_eq(sfs_crypto_canary_check(crypto, store_a, NULL, 0),
			 SFS_EBADMSG);
	blob[0] = 0x02;
	ck_assert_int_eq(
	    sfs_crypto_canary_check(crypto, store_a, blob, sizeof(blob)),
	    SFS_EBADMSG);
}
END_TEST

/* --- tampering -------------------------------------------------------- */

/* Flip every bit of a value blob: each must fail and leak nothing. */
START_TEST(value_every_bit_flip_fails)
{
	static const char plain[] = "the quick brown fox";
	struct sfs_binding b = full_binding();
	unsigned char blob[sizeof(plain) + SFS_ENVELOPE_OVERHEAD];
	unsigned char out[sizeof(plain)];
	size_t i, got;
	int bit;

	ck_assert_int_eq(
	    sfs_crypto_value_seal(key_a, &b, plain, sizeof(plain), blob),
	    SFS_OK);
	for (i = 0; i < sizeof(blob); i++) {
		for (bit = 0; bit < 8; bit++) {
			blob[i] ^= (unsigned char)(1u << bit);
			memset(out, 0xaa, sizeof(out));
			got = 99;
			ck_assert_int_eq(sfs_crypto_value_open(key_a, &b, blob,
							       sizeof(blob),
							       out, &got),
					 SFS_EBADMSG);
			ck_assert(all_zero(out, sizeof(out)));
			ck_assert_uint_eq(got, 0);
			blob[i] ^= (unsigned char)(1u << bit);
		}
	}
	ck_assert_int_eq(
	    sfs_crypto_value_open(key_a, &b, blob, sizeof(blob), out, &got),
	    SFS_OK);
	ck_assert_mem_eq(out, plain, sizeof(plain));
}
END_TEST

START_TEST(wrapped_keys_every_byte_flip_fails)
{
	struct sfs_binding b = full_binding(), kb = kms_binding();
	unsigned char dblob[SFS_WRAPPED_KEY_BYTES],
	    kblob[SFS_WRAPPED_KEY_BYTES];
	unsigned char out[SFS_KEY_BYTES];
	size_t i;

	ck_assert_int_eq(sfs_crypto_dek_wrap(key_a, &b, key_b, dblob), SFS_OK);
	ck_assert_int_eq(sfs_crypto_kms_wrap(crypto, &kb, key_b, kblob),
			 SFS_OK);
	for (i = 0; i < SFS_WRAPPED_KEY_BYTES; i++) {
		dblob[i] ^= 0xff;
		kblob[i] ^= 0x01;
		memset(out, 0xaa, sizeof(out));
		ck_assert_int_eq(
		    sfs_crypto_dek_unwrap(key_a, &b, dblob, sizeof(dblob), out),
		    SFS_EBADMSG);
		ck_assert(all_zero(out, sizeof(out)));
		memset(out, 0xaa, sizeof(out));
		ck_assert_int_eq(sfs_crypto_kms_unwrap(crypto, &kb, kblob,
						       sizeof(kblob), out),
				 SFS_EBADMSG);
		ck_assert(all_zero(out, sizeof(out)));
		dblob[i] ^= 0xff;
		kblob[i] ^= 0x01;
	}
}
END_TEST

START_TEST(canary_every_byte_flip_fails)
{
	unsigned char blob[SFS_CANARY_BYTES];
	size_t i;

	ck_assert_int_eq(sfs_crypto_canary_make(crypto, store_a, blob), SFS_OK);
	for (i = 0; i < sizeof(blob); i++) {
		blob[i] ^= 0x40;
		/* Byte 0 is the format: unknown format, not a wrong key. */
		ck_assert_int_eq(sfs_crypto_canary_check(crypto, store_a, blob,
							 sizeof(blob)),
				 i == 0 ? SFS_EBADMSG : SFS_EMASTER);
		blob[i] ^= 0x40;
	}
}
END_TEST

/*
 * Seal a 32-byte value under b, then open it under each binding that
 * differs from b in one field: all must fail. The 32-byte plaintext makes
 * value and data-key blobs the same size, so only the purpose tells them
 * apart.
 */
static void expect_binding_fails(const struct sfs_binding *sealed,
				 const struct sfs_binding *opened)
{
	unsigned char vblob[SFS_WRAPPED_KEY_BYTES],
	    dblob[SFS_WRAPPED_KEY_BYTES];
	unsigned char out[SFS_KEY_BYTES];
	size_t got;

	ck_assert_int_eq(
	    sfs_crypto_value_seal(key_a, sealed, key_b, SFS_KEY_BYTES, vblob),
	    SFS_OK);
	ck_assert_int_eq(sfs_crypto_dek_wrap(key_a, sealed, key_b, dblob),
			 SFS_OK);
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(sfs_crypto_value_open(key_a, opened, vblob,
					       sizeof(vblob), out, &got),
			 SFS_EBADMSG);
	ck_assert(all_zero(out, sizeof(out)));
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(
	    sfs_crypto_dek_unwrap(key_a, opened, dblob, sizeof(dblob), out),
	    SFS_EBADMSG);
	ck_assert(all_zero(out, sizeof(out)));
}

START_TEST(binding_store_id)
{
	struct sfs_binding b = full_binding(), o = b;

	o.store_id = store_b;
	expect_binding_fails(&b, &o);
	o.store_id = NULL;
	expect_binding_fails(&b, &o);
}
END_TEST

START_TEST(binding_secret_id)
{
	struct sfs_binding b = full_binding(), o = b;

	o.secret_id = secret_b;
	expect_binding_fails(&b, &o);
	o.secret_id = NULL;
	expect_binding_fails(&b, &o);
	/* An empty id is not an absent one. */
	b.secret_id = NULL;
	o.secret_id = "";
	expect_binding_fails(&b, &o);
}
END_TEST

START_TEST(binding_version)
{
	struct sfs_binding b = full_binding(), o = b;

	o.version = 4;
	expect_binding_fails(&b, &o);
	o.version = 3u << 24; /* byte order matters */
	expect_binding_fails(&b, &o);
}
END_TEST

START_TEST(binding_key_id)
{
	struct sfs_binding b = full_binding(), o = b;

	o.key_id = kid_b;
	expect_binding_fails(&b, &o);
	o.key_id = NULL;
	expect_binding_fails(&b, &o);
}
END_TEST

START_TEST(binding_key_version)
{
	struct sfs_binding b = full_binding(), o = b;
	struct sfs_binding kb = kms_binding(), ko = kb;
	unsigned char blob[SFS_WRAPPED_KEY_BYTES], out[SFS_KEY_BYTES];

	o.key_version = 1;
	expect_binding_fails(&b, &o);
	/* KMS material of key version 2 cannot pass as version 1. */
	ko.key_version = 1;
	ck_assert_int_eq(sfs_crypto_kms_wrap(crypto, &kb, key_a, blob), SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_kms_unwrap(crypto, &ko, blob, sizeof(blob), out),
	    SFS_EBADMSG);
	ko = kb;
	ko.key_id = kid_b;
	ck_assert_int_eq(
	    sfs_crypto_kms_unwrap(crypto, &ko, blob, sizeof(blob), out),
	    SFS_EBADMSG);
	ko = kb;
	ko.store_id = store_b;
	ck_assert_int_eq(
	    sfs_crypto_kms_unwrap(crypto, &ko, blob, sizeof(blob), out),
	    SFS_EBADMSG);
}
END_TEST

/* The same strings in other fields must not authenticate either. */
START_TEST(binding_fields_not_interchangeable)
{
	struct sfs_binding b = full_binding(), o = b;

	o.secret_id = b.key_id;
	o.key_id = b.secret_id;
	expect_binding_fails(&b, &o);
	o = b;
	o.version = b.key_version;
	o.key_version = b.version;
	expect_binding_fails(&b, &o);
}
END_TEST

START_TEST(binding_purpose)
{
	struct sfs_binding b = full_binding();
	unsigned char vblob[SFS_WRAPPED_KEY_BYTES],
	    dblob[SFS_WRAPPED_KEY_BYTES];
	unsigned char out[SFS_KEY_BYTES];
	size_t got;

	/* Same key, same binding, same size: only the purpose differs. */
	ck_assert_int_eq(
	    sfs_crypto_value_seal(key_a, &b, key_b, SFS_KEY_BYTES, vblob),
	    SFS_OK);
	ck_assert_int_eq(sfs_crypto_dek_wrap(key_a, &b, key_b, dblob), SFS_OK);
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(
	    sfs_crypto_dek_unwrap(key_a, &b, vblob, sizeof(vblob), out),
	    SFS_EBADMSG);
	ck_assert(all_zero(out, sizeof(out)));
	ck_assert_int_eq(
	    sfs_crypto_value_open(key_a, &b, dblob, sizeof(dblob), out, &got),
	    SFS_EBADMSG);
	ck_assert(all_zero(out, sizeof(out)));
}
END_TEST

START_TEST(binding_purpose_kms_and_canary)
{
	struct sfs_binding b = {.store_id = store_a};
	unsigned char kblob[SFS_WRAPPED_KEY_BYTES], out[SFS_KEY_BYTES];
	unsigned char cblob[SFS_CANARY_BYTES];

	/* A KMS blob bound only to the store is not a canary, and back. */
	ck_assert_int_eq(sfs_crypto_kms_wrap(crypto, &b, key_a, kblob), SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_canary_check(crypto, store_a, kblob, sizeof(kblob)),
	    SFS_EMASTER);
	ck_assert_int_eq(sfs_crypto_canary_make(crypto, store_a, cblob),
			 SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_kms_unwrap(crypto, &b, cblob, sizeof(cblob), out),
	    SFS_EBADMSG);
}
END_TEST

/* --- envelope format -------------------------------------------------- */

START_TEST(envelope_truncated)
{
	struct sfs_binding b = full_binding();
	unsigned char blob[SFS_WRAPPED_KEY_BYTES], out[SFS_WRAPPED_KEY_BYTES];
	size_t len, got;

	ck_assert_int_eq(
	    sfs_crypto_value_seal(key_a, &b, key_b, SFS_KEY_BYTES, blob),
	    SFS_OK);
	for (len = 0; len < sizeof(blob); len++) {
		memset(out, 0xaa, sizeof(out));
		ck_assert_int_eq(
		    sfs_crypto_value_open(key_a, &b, blob, len, out, &got),
		    SFS_EBADMSG);
		if (len >= SFS_ENVELOPE_OVERHEAD)
			ck_assert(all_zero(out, len - SFS_ENVELOPE_OVERHEAD));
		ck_assert_int_eq(
		    sfs_crypto_dek_unwrap(key_a, &b, blob, len, out),
		    SFS_EBADMSG);
	}
	ck_assert_int_eq(sfs_crypto_value_open(key_a, &b, NULL, 0, out, &got),
			 SFS_EBADMSG);
}
END_TEST

START_TEST(envelope_wrong_length_wrapped_key)
{
	struct sfs_binding b = full_binding();
	unsigned char blob[SFS_WRAPPED_KEY_BYTES + 1], out[SFS_KEY_BYTES];

	/* A sealed 33-byte value is no data key, even with the right AD. */
	ck_assert_int_eq(sfs_crypto_seal_with_nonce(
			     key_a, "dek", &b,
			     (const unsigned char *)"nonce nonce nonce nonce",
			     "thirty-three bytes of data"
			     " here..",
			     33, blob),
			 SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_dek_unwrap(key_a, &b, blob, sizeof(blob), out),
	    SFS_EBADMSG);
	ck_assert(all_zero(out, sizeof(out)));
}
END_TEST

START_TEST(envelope_unknown_format)
{
	struct sfs_binding b = full_binding();
	unsigned char blob[4 + SFS_ENVELOPE_OVERHEAD], out[4];
	struct sfs_envelope env;
	size_t got;

	ck_assert_int_eq(sfs_crypto_value_seal(key_a, &b, "abcd", 4, blob),
			 SFS_OK);
	blob[0] = 0x00;
	ck_assert_int_eq(sfs_crypto_envelope_parse(blob, sizeof(blob), &env),
			 SFS_EBADMSG);
	ck_assert_int_eq(
	    sfs_crypto_value_open(key_a, &b, blob, sizeof(blob), out, &got),
	    SFS_EBADMSG);
	blob[0] = 0x02;
	ck_assert_int_eq(sfs_crypto_envelope_parse(blob, sizeof(blob), &env),
			 SFS_EBADMSG);
}
END_TEST

START_TEST(envelope_parse_parts)
{
	unsigned char blob[SFS_ENVELOPE_OVERHEAD + 3];
	struct sfs_envelope env;

	memset(blob, 0x5a, sizeof(blob));
	blob[0] = SFS_ENVELOPE_V1;
	ck_assert_int_eq(sfs_crypto_envelope_parse(blob, sizeof(blob), &env),
			 SFS_OK);
	ck_assert_uint_eq(env.format, SFS_ENVELOPE_V1);
	ck_assert_ptr_eq(env.nonce, blob + 1);
	ck_assert_ptr_eq(env.ct, blob + 1 + SFS_NONCE_BYTES);
	ck_assert_uint_eq(env.ct_len, 3 + SFS_TAG_BYTES);
	/* The smallest envelope: an empty plaintext. */
	ck_assert_int_eq(
	    sfs_crypto_envelope_parse(blob, SFS_ENVELOPE_OVERHEAD, &env),
	    SFS_OK);
	ck_assert_uint_eq(env.ct_len, SFS_TAG_BYTES);
	ck_assert_int_eq(
	    sfs_crypto_envelope_parse(blob, SFS_ENVELOPE_OVERHEAD - 1, &env),
	    SFS_EBADMSG);
	ck_assert_int_eq(sfs_crypto_envelope_parse(blob, 0, &env), SFS_EBADMSG);
}
END_TEST

/* --- master key files ------------------------------------------------- */

static int load_with_mode(const void *data, size_t len, int mode,
			  unsigned char out[SFS_KEY_BYTES],
			  struct sfs_error *err)
{
	char *p = path_in_dir("master.key");
	int rc;

	tu_write_file(p, data, len, mode);
	rc = sfs_crypto_master_load(p, out, err);
	free(p);
	return rc;
}

START_TEST(master_load_private_modes)
{
	unsigned char out[SFS_KEY_BYTES];
	struct sfs_error err;

	ck_assert_int_eq(load_with_mode(master, 32, 0400, out, &err), SFS_OK);
	ck_assert_mem_eq(out, master, SFS_KEY_BYTES);
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(load_with_mode(master, 32, 0600, out, &err), SFS_OK);
	ck_assert_mem_eq(out, master, SFS_KEY_BYTES);
}
END_TEST

START_TEST(master_load_shared_modes_refused)
{
	static const int modes[] = {0440, 0404, 0640, 0604, 0420, 0402};
	unsigned char out[SFS_KEY_BYTES];
	struct sfs_error err;
	char want[300], *p = path_in_dir("master.key");
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		ck_assert_int_eq(
		    load_with_mode(master, 32, modes[i], out, &err),
		    SFS_EKEYFILE);
		ck_assert_int_eq(err.code, SFS_EKEYFILE);
		snprintf(want, sizeof(want),
			 "key file '%s' is readable by group or others "
			 "(mode %04o)",
			 p, modes[i]);
		ck_assert_str_eq(err.msg, want);
	}
	free(p);
}
END_TEST

START_TEST(master_load_hex)
{
	static const char hex[] = "0102030405060708090a0b0c0d0e0f10"
				  "1112131415161718191A1B1C1D1E1F20\n";
	unsigned char out[SFS_KEY_BYTES];
	struct sfs_error err;

	ck_assert_int_eq(load_with_mode(hex, 65, 0400, out, &err), SFS_OK);
	ck_assert_mem_eq(out, master, SFS_KEY_BYTES);
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(load_with_mode(hex, 64, 0400, out, &err), SFS_OK);
	ck_assert_mem_eq(out, master, SFS_KEY_BYTES);
}
END_TEST

START_TEST(master_load_malformed)
{
	static const char bad_hex[] = "0102030405060708090a0b0c0d0e0f10"
				      "1112131415161718191a1b1c1d1e1fxx";
	static const char two_nl[] = "0102030405060708090a0b0c0d0e0f10"
				     "1112131415161718191a1b1c1d1e1f20\n\n";
	unsigned char raw[33], out[SFS_KEY_BYTES];
	struct sfs_error err;

	memset(raw, 0x11, sizeof(raw));
	ck_assert_int_eq(load_with_mode(raw, 31, 0400, out, &err), SFS_EINVAL);
	ck_assert_int_eq(load_with_mode(raw, 33, 0400, out, &err), SFS_EINVAL);
	ck_assert_int_eq(load_with_mode(raw, 0, 0400, out, &err), SFS_EINVAL);
	ck_assert_int_eq(load_with_mode(bad_hex, 64, 0400, out, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(load_with_mode(two_nl, 66, 0400, out, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(load_with_mode(bad_hex, 64, 0400, out, &err),
			 SFS_EINVAL);
	ck_assert_str_eq(err.msg + strlen(err.msg) - strlen("64 hex digits"),
			 "64 hex digits");
}
END_TEST

START_TEST(master_load_missing)
{
	unsigned char out[SFS_KEY_BYTES];
	struct sfs_error err;
	char *p = path_in_dir("nope.key");

	ck_assert_int_eq(sfs_crypto_master_load(p, out, &err), SFS_ENOENT);
	ck_assert_int_eq(err.code, SFS_ENOENT);
	free(p);
}
END_TEST

START_TEST(master_load_directory)
{
	unsigned char out[SFS_KEY_BYTES];
	struct sfs_error err;
	char *p = path_in_dir("d");

	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_int_eq(sfs_crypto_master_load(p, out, &err), SFS_EINVAL);
	free(p);
}
END_TEST

START_TEST(master_generate_creates_0400)
{
	unsigned char out[SFS_KEY_BYTES], back[SFS_KEY_BYTES];
	struct sfs_error err;
	struct stat st;
	char *p = path_in_dir("master.key");
	char *data;
	size_t len;

	ck_assert_int_eq(sfs_crypto_master_generate(p, out, &err), SFS_OK);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0400);
	ck_assert_int_eq(st.st_size, SFS_KEY_BYTES);
	data = tu_read_file(p, &len);
	ck_assert_uint_eq(len, SFS_KEY_BYTES);
	ck_assert_mem_eq(data, out, SFS_KEY_BYTES);
	ck_assert_int_eq(sfs_crypto_master_load(p, back, &err), SFS_OK);
	ck_assert_mem_eq(back, out, SFS_KEY_BYTES);
	free(data);
	free(p);
}
END_TEST

START_TEST(master_generate_refuses_existing)
{
	unsigned char out[SFS_KEY_BYTES];
	struct sfs_error err;
	char *p = path_in_dir("master.key");
	char *data;
	size_t len;

	tu_write_file(p, "keep", 4, 0600);
	ck_assert_int_eq(sfs_crypto_master_generate(p, out, &err), SFS_EEXIST);
	ck_assert_int_eq(err.code, SFS_EEXIST);
	data = tu_read_file(p, &len);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(data, "keep", 4);
	free(data);
	free(p);
}
END_TEST

START_TEST(master_generate_differs)
{
	unsigned char a[SFS_KEY_BYTES], b[SFS_KEY_BYTES];
	struct sfs_error err;
	char *pa = path_in_dir("a.key"), *pb = path_in_dir("b.key");

	ck_assert_int_eq(sfs_crypto_master_generate(pa, a, &err), SFS_OK);
	ck_assert_int_eq(sfs_crypto_master_generate(pb, b, &err), SFS_OK);
	ck_assert_int_ne(memcmp(a, b, SFS_KEY_BYTES), 0);
	free(pa);
	free(pb);
}
END_TEST

/* --- passphrases ------------------------------------------------------ */

static void min_params(struct sfs_kdf_params *p, unsigned char salt_byte)
{
	ck_assert_int_eq(setenv("SECRETFS_KDF_MIN", "1", 1), 0);
	sfs_crypto_kdf_params_new(p);
	memset(p->salt, salt_byte, sizeof(p->salt));
}

START_TEST(passphrase_derive_deterministic)
{
	struct sfs_kdf_params p;
	unsigned char a[SFS_KEY_BYTES], b[SFS_KEY_BYTES];
	struct sfs_error err;

	min_params(&p, 0x33);
	ck_assert_int_eq(
	    sfs_crypto_passphrase_derive("correct horse", 13, &p, a, &err),
	    SFS_OK);
	ck_assert_int_eq(
	    sfs_crypto_passphrase_derive("correct horse", 13, &p, b, &err),
	    SFS_OK);
	ck_assert_mem_eq(a, b, SFS_KEY_BYTES);
}
END_TEST

START_TEST(passphrase_derive_varies)
{
	struct sfs_kdf_params p, q;
	unsigned char a[SFS_KEY_BYTES], b[SFS_KEY_BYTES], c[SFS_KEY_BYTES];
	struct sfs_error err;

	min_params(&p, 0x33);
	min_params(&q, 0x34);
	ck_assert_int_eq(sfs_crypto_passphrase_derive("pass", 4, &p, a, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_crypto_passphrase_derive("pass", 4, &q, b, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_crypto_passphrase_derive("Pass", 4, &p, c, &err),
			 SFS_OK);
	ck_assert_int_ne(memcmp(a, b, SFS_KEY_BYTES), 0);
	ck_assert_int_ne(memcmp(a, c, SFS_KEY_BYTES), 0);
}
END_TEST

START_TEST(passphrase_derive_rejects_bad_input)
{
	struct sfs_kdf_params p;
	unsigned char a[SFS_KEY_BYTES];
	struct sfs_error err;

	min_params(&p, 0x33);
	ck_assert_int_eq(sfs_crypto_passphrase_derive("", 0, &p, a, &err),
			 SFS_EINVAL);
	p.opslimit = 0;
	ck_assert_int_eq(sfs_crypto_passphrase_derive("x", 1, &p, a, &err),
			 SFS_EINVAL);
	min_params(&p, 0x33);
	p.memlimit = 1024;
	ck_assert_int_eq(sfs_crypto_passphrase_derive("x", 1, &p, a, &err),
			 SFS_EINVAL);
}
END_TEST

START_TEST(kdf_params_cost)
{
	struct sfs_kdf_params p, q;

	ck_assert_int_eq(setenv("SECRETFS_KDF_MIN", "1", 1), 0);
	sfs_crypto_kdf_params_new(&p);
	ck_assert_uint_eq(p.opslimit, 1);
	ck_assert_uint_eq(p.memlimit, 8192);
	ck_assert_int_eq(unsetenv("SECRETFS_KDF_MIN"), 0);
	sfs_crypto_kdf_params_new(&q);
	ck_assert_uint_eq(q.opslimit, 2);
	ck_assert_uint_eq(q.memlimit, 64u << 20);
	ck_assert_int_ne(memcmp(p.salt, q.salt, SFS_SALT_BYTES), 0);
	ck_assert_int_eq(setenv("SECRETFS_KDF_MIN", "0", 1), 0);
	sfs_crypto_kdf_params_new(&q);
	ck_assert_uint_eq(q.opslimit, 2);
}
END_TEST

static int read_pass(const char *content, size_t n, char **out, size_t *len)
{
	char *p = path_in_dir("pass");
	struct sfs_error err;
	int rc;

	tu_write_file(p, content, n, 0600);
	rc = sfs_crypto_passphrase_read(p, out, len, &err);
	free(p);
	return rc;
}

START_TEST(passphrase_read_strips_one_newline)
{
	char *s;
	size_t len;

	ck_assert_int_eq(read_pass("hunter2\n", 8, &s, &len), SFS_OK);
	ck_assert_uint_eq(len, 7);
	ck_assert_str_eq(s, "hunter2");
	sfs_crypto_free_secret(s, len + 1);
	ck_assert_int_eq(read_pass("two\n\n", 5, &s, &len), SFS_OK);
	ck_assert_uint_eq(len, 4);
	ck_assert_str_eq(s, "two\n");
	sfs_crypto_free_secret(s, len + 1);
	ck_assert_int_eq(read_pass(" sp ", 4, &s, &len), SFS_OK);
	ck_assert_str_eq(s, " sp ");
	sfs_crypto_free_secret(s, len + 1);
}
END_TEST

START_TEST(passphrase_read_empty)
{
	char *s = (char *)"x";
	size_t len = 9;

	ck_assert_int_eq(read_pass("", 0, &s, &len), SFS_EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(read_pass("\n", 1, &s, &len), SFS_EINVAL);
}
END_TEST

START_TEST(passphrase_read_missing)
{
	char *p = path_in_dir("none"), *s;
	struct sfs_error err;
	size_t len;

	ck_assert_int_eq(sfs_crypto_passphrase_read(p, &s, &len, &err),
			 SFS_ENOENT);
	free(p);
}
END_TEST

/* --- misc ------------------------------------------------------------- */

START_TEST(uuid_format)
{
	char a[SFS_UUID_LEN + 1], b[SFS_UUID_LEN + 1];
	int i;

	sfs_crypto_uuid(a);
	sfs_crypto_uuid(b);
	ck_assert_uint_eq(strlen(a), SFS_UUID_LEN);
	for (i = 0; i < SFS_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			ck_assert_int_eq(a[i], '-');
		else
			ck_assert_ptr_nonnull(strchr("0123456789abcdef", a[i]));
	}
	ck_assert_int_eq(a[14], '4');
	ck_assert_ptr_nonnull(strchr("89ab", a[19]));
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(memcmp_and_wipe)
{
	unsigned char a[8] = "abcdefg", b[8] = "abcdefg";
	char *heap = malloc(16);

	ck_assert_int_eq(sfs_crypto_memcmp(a, b, 8), 0);
	b[7] = 1;
	ck_assert_int_ne(sfs_crypto_memcmp(a, b, 8), 0);
	sfs_crypto_wipe(a, sizeof(a));
	ck_assert(all_zero(a, sizeof(a)));
	ck_assert_ptr_nonnull(heap);
	memcpy(heap, "secret", 7);
	sfs_crypto_free_secret(heap, 16);
	sfs_crypto_free_secret(NULL, 16);
}
END_TEST

/* --- known answers ---------------------------------------------------- */

struct kat {
	char purpose[16];
	unsigned char key[SFS_KEY_BYTES], master[SFS_KEY_BYTES];
	int has_master;
	unsigned char store[SFS_STORE_ID_BYTES];
	char secret[64], keyid[64];
	struct sfs_binding b;
	unsigned char nonce[SFS_NONCE_BYTES];
	unsigned char plain[256], blob[256 + SFS_ENVELOPE_OVERHEAD];
	size_t plain_len, blob_len;
};

/* Decode hex into out (cap bytes); the byte count, or -1. */
static long unhex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s), i;
	unsigned v;

	if (n % 2 || n / 2 > cap)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return (long)(n / 2);
}

static void kat_hex(const char *v, unsigned char *out, size_t cap, size_t want,
		    size_t *got, int line)
{
	long n = unhex(v, out, cap);

	ck_assert_msg(n >= 0 && (want == 0 || (size_t)n == want),
		      "envelope.exp:%d: bad hex '%s'", line, v);
	if (got)
		*got = (size_t)n;
}

static void kat_str(const char *v, char *out, size_t cap, const char **field)
{
	if (strcmp(v, "-") == 0) {
		*field = NULL;
		return;
	}
	ck_assert_uint_lt(strlen(v), cap);
	strcpy(out, v);
	*field = out;
}

static void kat_field(struct kat *k, const char *name, const char *v, int line)
{
	if (strcmp(name, "purpose") == 0) {
		ck_assert_uint_lt(strlen(v), sizeof(k->purpose));
		strcpy(k->purpose, v);
	} else if (strcmp(name, "key") == 0) {
		kat_hex(v, k->key, SFS_KEY_BYTES, SFS_KEY_BYTES, NULL, line);
	} else if (strcmp(name, "master") == 0) {
		kat_hex(v, k->master, SFS_KEY_BYTES, SFS_KEY_BYTES, NULL, line);
		k->has_master = 1;
	} else if (strcmp(name, "store") == 0) {
		k->b.store_id = NULL;
		if (strcmp(v, "-") != 0) {
			kat_hex(v, k->store, SFS_STORE_ID_BYTES,
				SFS_STORE_ID_BYTES, NULL, line);
			k->b.store_id = k->store;
		}
	} else if (strcmp(name, "secret") == 0) {
		kat_str(v, k->secret, sizeof(k->secret), &k->b.secret_id);
	} else if (strcmp(name, "keyid") == 0) {
		kat_str(v, k->keyid, sizeof(k->keyid), &k->b.key_id);
	} else if (strcmp(name, "version") == 0) {
		k->b.version = (uint32_t)strtoul(v, NULL, 10);
	} else if (strcmp(name, "keyversion") == 0) {
		k->b.key_version = (uint32_t)strtoul(v, NULL, 10);
	} else if (strcmp(name, "nonce") == 0) {
		kat_hex(v, k->nonce, SFS_NONCE_BYTES, SFS_NONCE_BYTES, NULL,
			line);
	} else if (strcmp(name, "plain") == 0) {
		kat_hex(v, k->plain, sizeof(k->plain), 0, &k->plain_len, line);
	} else if (strcmp(name, "blob") == 0) {
		kat_hex(v, k->blob, sizeof(k->blob), 0, &k->blob_len, line);
	} else {
		ck_abort_msg("envelope.exp:%d: unknown field '%s'", line, name);
	}
}

/* Parse "name=value name=value ..." (the line is modified). */
static void kat_parse(char *text, struct kat *k, int line)
{
	char *save = NULL, *tok, *eq;

	memset(k, 0, sizeof(*k));
	for (tok = strtok_r(text, " \t\n", &save); tok;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		eq = strchr(tok, '=');
		ck_assert_msg(eq != NULL, "envelope.exp:%d: bad token", line);
		*eq = '\0';
		kat_field(k, tok, eq + 1, line);
	}
	ck_assert_msg(k->purpose[0] && k->blob_len,
		      "envelope.exp:%d: "
		      "incomplete case",
		      line);
}

/* Open the expected blob with the public function for its purpose. */
static void kat_open(const struct kat *k, int line)
{
	unsigned char out[sizeof(k->plain)];
	struct sfs_crypto *c = NULL;
	struct sfs_error err;
	size_t got = 0;
	int rc;

	if (k->has_master)
		ck_assert_int_eq(sfs_crypto_new(&c, k->master, &err), SFS_OK);
	if (strcmp(k->purpose, "value") == 0) {
		rc = sfs_crypto_value_open(k->key, &k->b, k->blob, k->blob_len,
					   out, &got);
	} else if (strcmp(k->purpose, "dek") == 0) {
		rc = sfs_crypto_dek_unwrap(k->key, &k->b, k->blob, k->blob_len,
					   out);
		got = SFS_KEY_BYTES;
	} else if (strcmp(k->purpose, "kms") == 0) {
		ck_assert_ptr_nonnull(c);
		rc = sfs_crypto_kms_unwrap(c, &k->b, k->blob, k->blob_len, out);
		got = SFS_KEY_BYTES;
	} else {
		ck_assert_str_eq(k->purpose, "canary");
		ck_assert_ptr_nonnull(c);
		rc = sfs_crypto_canary_check(c, k->b.store_id, k->blob,
					     k->blob_len);
		memcpy(out, k->plain, k->plain_len);
		got = k->plain_len;
	}
	ck_assert_msg(rc == SFS_OK, "envelope.exp:%d: open gave %d", line, rc);
	ck_assert_uint_eq(got, k->plain_len);
	ck_assert_mem_eq(out, k->plain, got);
	sfs_crypto_free(c);
}

static FILE *open_vectors(void)
{
	const char *src = getenv("SECRETFS_SRCDIR");
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/vectors/envelope.exp",
		 src && *src ? src : ".");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
	return f;
}

START_TEST(known_answers)
{
	unsigned char sealed[sizeof(((struct kat *)0)->blob)];
	char text[2048];
	struct kat k;
	FILE *f = open_vectors();
	int line = 0, cases = 0;

	while (fgets(text, sizeof(text), f)) {
		line++;
		if (text[0] == '#' || text[0] == '\n')
			continue;
		kat_parse(text, &k, line);
		ck_assert_uint_eq(k.blob_len,
				  sfs_crypto_sealed_len(k.plain_len));
		ck_assert_int_eq(
		    sfs_crypto_seal_with_nonce(k.key, k.purpose, &k.b, k.nonce,
					       k.plain, k.plain_len, sealed),
		    SFS_OK);
		ck_assert_msg(memcmp(sealed, k.blob, k.blob_len) == 0,
			      "envelope.exp:%d: sealed blob differs", line);
		kat_open(&k, line);
		cases++;
	}
	fclose(f);
	/* One case per purpose at least: the file cannot silently vanish. */
	ck_assert_int_ge(cases, 4);
}
END_TEST

static Suite *crypto_suite(void)
{
	const TTest *const tests[] = {
	    value_round_trip,
	    value_seal_uses_fresh_nonce,
	    dek_round_trip,
	    kms_round_trip,
	    kms_wrong_master_fails,
	    value_wrong_key_fails,
	    canary_right_and_wrong_key,
	    canary_malformed_is_ebadmsg,
	    value_every_bit_flip_fails,
	    wrapped_keys_every_byte_flip_fails,
	    canary_every_byte_flip_fails,
	    binding_store_id,
	    binding_secret_id,
	    binding_version,
	    binding_key_id,
	    binding_key_version,
	    binding_fields_not_interchangeable,
	    binding_purpose,
	    binding_purpose_kms_and_canary,
	    envelope_truncated,
	    envelope_wrong_length_wrapped_key,
	    envelope_unknown_format,
	    envelope_parse_parts,
	    master_load_private_modes,
	    master_load_shared_modes_refused,
	    master_load_hex,
	    master_load_malformed,
	    master_load_missing,
	    master_load_directory,
	    master_generate_creates_0400,
	    master_generate_refuses_existing,
	    master_generate_differs,
	    passphrase_derive_deterministic,
	    passphrase_derive_varies,
	    passphrase_derive_rejects_bad_input,
	    kdf_params_cost,
	    passphrase_read_strips_one_newline,
	    passphrase_read_empty,
	    passphrase_read_missing,
	    uuid_format,
	    memcmp_and_wipe,
	    known_answers,
	};

	return harness_suite("crypto", tests, sizeof(tests) / sizeof(tests[0]),
			     setup, teardown, 0);
}

const struct harness harness = {.suite = crypto_suite};
