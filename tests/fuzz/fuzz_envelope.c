/* clang-format off */
/*
 * libFuzzer target: arbitrary bytes as a sealed blob. Parsing must never
 * read outside the input, and no open function may accept a blob that was
 * not sealed under its key and binding (an accepted random blob would be a
 * forgery), nor leave anything but zeros in its output on failure.
 *
 * Build and run from the repository root (not built by the Makefile):
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore/include tests/fuzz/fuzz_envelope.c core/crypto.c core/err.c $(pkg-config --cflags --libs libsodium) -lpthread -o build/fuzz_envelope && build/fuzz_envelope -max_total_time=60
 */
/* clang-format on */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secretfs/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[SFS_KEY_BYTES] =
    "fuzz key, exactly 32 bytes long";
static const unsigned char store[SFS_STORE_ID_BYTES] = "fuzz store id 16";

static struct sfs_crypto *crypto_once(void)
{
	static struct sfs_crypto *c;

	if (!c && sfs_crypto_new(&c, key, NULL) != SFS_OK)
		abort();
	return c;
}

static void must_be_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			abort();
}

static void check_parse(const uint8_t *data, size_t size)
{
	struct sfs_envelope env;

	if (sfs_crypto_envelope_parse(data, size, &env) != SFS_OK)
		return;
	if (env.format != SFS_ENVELOPE_V1 || env.nonce != data + 1 ||
	    env.ct != data + 1 + SFS_NONCE_BYTES ||
	    env.ct_len + 1 + SFS_NONCE_BYTES != size)
		abort();
}

static void check_keys(const struct sfs_binding *b, const uint8_t *data,
		       size_t size)
{
	unsigned char out[SFS_KEY_BYTES];

	if (sfs_crypto_dek_unwrap(key, b, data, size, out) == SFS_OK)
		abort();
	must_be_zero(out, sizeof(out));
	if (sfs_crypto_kms_unwrap(crypto_once(), b, data, size, out) == SFS_OK)
		abort();
	must_be_zero(out, sizeof(out));
	if (sfs_crypto_canary_check(crypto_once(), store, data, size) == SFS_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sfs_binding b = {
	    .store_id = store,
	    .secret_id = "00000000-0000-4000-8000-000000000000",
	    .version = 1,
	    .key_id = "00000000-0000-4000-8000-000000000001",
	    .key_version = 1,
	};
	unsigned char *out;
	size_t cap, got = 1;

	check_parse(data, size);
	check_keys(&b, data, size);
	/* value_open writes up to size - overhead bytes. */
	cap = size > SFS_ENVELOPE_OVERHEAD ? size - SFS_ENVELOPE_OVERHEAD : 1;
	out = malloc(cap);
	if (!out)
		abort();
	memset(out, 0xa5, cap);
	if (sfs_crypto_value_open(key, &b, data, size, out, &got) == SFS_OK ||
	    got != 0)
		abort();
	if (size >= SFS_ENVELOPE_OVERHEAD)
		must_be_zero(out, size - SFS_ENVELOPE_OVERHEAD);
	free(out);
	return 0;
}
