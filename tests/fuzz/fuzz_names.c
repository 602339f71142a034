/*
 * libFuzzer target: names and descriptions. sfs_policy_name_check,
 * sfs_policy_desc_check and sfs_policy_utf8_check must never crash and
 * must agree with the simple reference checkers below, written another
 * way (UTF-8 by decoding, then re-encoding to prove the shortest form)
 * so that one cannot share the other's mistakes. Not built by the
 * Makefile; from the top of the tree:
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore/include tests/fuzz/fuzz_names.c core/policy.c core/principal.c core/err.c -o build/fuzz_names
 */
#include <stdint.h>
#include <stdlib.h>

#include "secretfs/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ref_alnum(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

static int ref_name(const uint8_t *d, size_t n)
{
	size_t i;

	if (n == 0)
		return SFS_EINVAL;
	if (n > 128)
		return SFS_ENAMETOOLONG;
	if (!ref_alnum(d[0]))
		return SFS_EINVAL;
	for (i = 1; i < n; i++)
		if (!ref_alnum(d[i]) && d[i] != '.' && d[i] != '_' &&
		    d[i] != '-')
			return SFS_EINVAL;
	return SFS_OK;
}

/* Length of the shortest UTF-8 encoding of cp. */
static size_t ref_enc_len(uint32_t cp)
{
	if (cp < 0x80)
		return 1;
	if (cp < 0x800)
		return 2;
	if (cp < 0x10000)
		return 3;
	return 4;
}

/* Strict UTF-8; with desc, also no C0, DEL or C1 control characters. */
static int ref_utf8(const uint8_t *d, size_t n, int desc)
{
	size_t i = 0, k, j;
	uint32_t cp;

	while (i < n) {
		if (d[i] < 0x80)
			k = 1, cp = d[i];
		else if ((d[i] & 0xe0) == 0xc0)
			k = 2, cp = d[i] & 0x1f;
		else if ((d[i] & 0xf0) == 0xe0)
			k = 3, cp = d[i] & 0x0f;
		else if ((d[i] & 0xf8) == 0xf0)
			k = 4, cp = d[i] & 0x07;
		else
			return SFS_EINVAL;
		if (i + k > n)
			return SFS_EINVAL;
		for (j = 1; j < k; j++) {
			if ((d[i + j] & 0xc0) != 0x80)
				return SFS_EINVAL;
			cp = (cp << 6) | (d[i + j] & 0x3f);
		}
		if (ref_enc_len(cp) != k || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return SFS_EINVAL;
		if (desc && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)))
			return SFS_EINVAL;
		i += k;
	}
	return SFS_OK;
}

static int ref_desc(const uint8_t *d, size_t n)
{
	if (n > 1024)
		return SFS_EINVAL;
	return ref_utf8(d, n, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	if (sfs_policy_name_check(s, size) != ref_name(data, size))
		abort();
	if (sfs_policy_desc_check(s, size) != ref_desc(data, size))
		abort();
	if (sfs_policy_utf8_check(s, size) != ref_utf8(data, size, 0))
		abort();
	return 0;
}
