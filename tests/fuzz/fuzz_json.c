/*
 * libFuzzer target: JSON values. sfs_value_format, sfs_value_kv_each
 * (strict and not), sfs_value_kv_get and sfs_json_parse must never crash
 * or leak on any bytes, and must agree with each other: a value is `kv`
 * exactly when a strict walk succeeds, and a value that a walk accepts
 * is never `text`. The callback reads every byte it is given so that
 * AddressSanitizer checks the lengths. Not built by the Makefile; from
 * the top of the tree, after `make build/libsecretfs.a` (for the crypto
 * module's wipe):
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore/include tests/fuzz/fuzz_json.c core/value.c core/policy.c build/libsecretfs.a $(pkg-config --libs jansson libsodium sqlite3) -lpthread -o build/fuzz_json
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secretfs/crypto.h"
#include "secretfs/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int touch(void *arg, const char *key, const char *val, size_t len)
{
	unsigned *sum = arg;
	size_t i;

	*sum += (unsigned)strlen(key);
	for (i = 0; i < len; i++)
		*sum += (unsigned char)val[i];
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sum = 0;
	int fmt, strict, loose;
	struct sfs_json *j;
	char *out = NULL;
	size_t outlen = 0;

	fmt = sfs_value_format(data, size);
	strict = sfs_value_kv_each(data, size, 1, touch, &sum, NULL);
	loose = sfs_value_kv_each(data, size, 0, touch, &sum, NULL);
	if ((fmt == SFS_FMT_KV) != (strict == SFS_OK))
		abort();
	if (loose == SFS_OK && fmt == SFS_FMT_TEXT)
		abort();
	if (strict == SFS_OK && loose != SFS_OK)
		abort();
	if (sfs_value_kv_get(data, size, "a", &out, &outlen) == SFS_OK) {
		if (loose != SFS_OK || out[outlen] != '\0')
			abort();
		sfs_crypto_free_secret(out, outlen + 1);
	}
	j = sfs_json_parse((const char *)data, size);
	sfs_json_free(j);
	return 0;
}
