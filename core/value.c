/*
 * Values and JSON: format detection (SPEC §1), Key/Value values, and the
 * small JSON builder the rest of the tree prints with. The only file that
 * includes <jansson.h>.
 *
 * Secret values pass through jansson when their format is detected and
 * when Key/Value entries are built or read back, so jansson's heap is
 * plaintext too. We give jansson an allocator (json_set_alloc_funcs, once,
 * before any other jansson call) that remembers each block's size and
 * wipes it on free: every string, key, parser buffer and object jansson
 * makes is zeroed when it goes. What cannot be wiped is the few bytes
 * jansson formats on its own stack (number conversion, \u escapes, error
 * text); json_error_t, which quotes input near a syntax error, is ours and
 * is wiped. Serialisations we hand out are written by json_dumpb into
 * buffers from the C library's malloc (so callers free them with free or
 * sfs_crypto_free_secret) and we wipe every temporary one.
 *
 * Parsing rules, the same everywhere a value is read: JSON_DECODE_ANY (any
 * JSON value), JSON_REJECT_DUPLICATES, no JSON_ALLOW_NUL (a string with
 * \u0000 is refused), and at most 64 levels of nesting, checked here with
 * a bounded recursion. Anything refused is `text`. Integers beyond 64 bits
 * are refused by jansson, so such a value is `text` as well.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "secretfs/crypto.h"
#include "secretfs/policy.h"
#include "secretfs/value.h"

#define DEPTH_MAX  64
#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)
#define COMPACT	   (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)
#define PRETTY	   (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)

#define J(x)  ((json_t *)(x))
#define CJ(x) ((const json_t *)(x))
#define S(x)  ((struct sfs_json *)(x))

/* --- wiping allocator ------------------------------------------------- */

union block_hdr {
	size_t size;
	max_align_t align;
};

static void *wipe_malloc(size_t n)
{
	union block_hdr *h;

	if (n > SIZE_MAX - sizeof(*h))
		return NULL;
	h = malloc(sizeof(*h) + n);
	if (!h)
		return NULL;
	h->size = n;
	return h + 1;
}

static void wipe_free(void *p)
{
	union block_hdr *h;

	if (!p)
		return;
	h = (union block_hdr *)p - 1;
	sfs_crypto_wipe(p, h->size);
	free(h);
}

static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void set_alloc(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}

/* Every public entry calls this before touching jansson. */
static void jansson_init(void)
{
	pthread_once(&alloc_once, set_alloc);
}

/* --- helpers ------------------------------------------------------------ */

/*
 * Serialise j into a NUL-terminated buffer from malloc; *len gets its
 * length. NULL on failure. json_dumpb writes straight into our buffer, so
 * no other copy of the text exists.
 */
static char *dump(const json_t *j, size_t flags, size_t *len)
{
	size_t n, m;
	char *buf;

	n = json_dumpb(j, NULL, 0, flags);
	if (n == 0)
		return NULL;
	buf = malloc(n + 1);
	if (!buf)
		return NULL;
	m = json_dumpb(j, buf, n, flags);
	if (m != n) {
		sfs_crypto_free_secret(buf, n + 1);
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* 1 when j nests at most DEPTH_MAX containers deep (parent at level). */
static int depth_ok(json_t *j, int level)
{
	const char *key;
	json_t *v;
	size_t i;

	if (!json_is_object(j) && !json_is_array(j))
		return 1;
	if (level + 1 > DEPTH_MAX)
		return 0;
	if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			if (!depth_ok(v, level + 1))
				return 0;
		}
		return 1;
	}
	json_object_foreach(j, key, v) {
		if (!depth_ok(v, level + 1))
			return 0;
	}
	return 1;
}

static int all_strings(json_t *obj)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		if (!json_is_string(v))
			return 0;
	}
	return 1;
}

/* Parse a value under the rules above; NULL when it is not JSON. */
static json_t *load(const void *data, size_t len)
{
	json_error_t e;
	json_t *j;

	if (len == 0)
		return NULL;
	j = json_loadb(data, len, LOAD_FLAGS, &e);
	sfs_crypto_wipe(&e, sizeof(e)); /* e.text may quote the value */
	if (j && !depth_ok(j, 0)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Parse a value that must be a JSON object (of strings only, strict). */
static int load_object(const void *data, size_t len, int strict, json_t **out,
		       struct sfs_error *err)
{
	json_t *j = load(data, len);

	*out = NULL;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return sfs_error_set(err, SFS_EINVAL,
				     "value is not a json object");
	}
	if (strict && !all_strings(j)) {
		json_decref(j);
		return sfs_error_set(err, SFS_EINVAL,
				     "value is not a key/value object of "
				     "strings");
	}
	*out = j;
	return SFS_OK;
}

/* --- formats ------------------------------------------------------------ */

int sfs_value_format(const void *data, size_t len)
{
	int fmt = SFS_FMT_TEXT;
	json_t *j;

	jansson_init();
	j = load(data, len);
	if (j)
		fmt = json_is_object(j) && all_strings(j) ? SFS_FMT_KV
							  : SFS_FMT_JSON;
	json_decref(j);
	return fmt;
}

const char *sfs_value_format_name(int format)
{
	static const char *const names[] = {[SFS_FMT_TEXT] = "text",
					    [SFS_FMT_JSON] = "json",
					    [SFS_FMT_KV] = "kv"};

	return format >= 0 && format < (int)(sizeof(names) / sizeof(names[0]))
		   ? names[format]
		   : "unknown";
}

/* --- Key/Value values --------------------------------------------------- */

/*
 * Add argument number i ("KEY=VALUE") to obj. The value is never quoted
 * in a message; the key is (keys are names, not secrets).
 */
static int kv_add(json_t *obj, const char *pair, size_t i,
		  struct sfs_error *err)
{
	const char *eq = strchr(pair, '=');
	size_t klen, vlen;
	json_t *v;

	if (!eq || eq == pair)
		return sfs_error_set(err, SFS_EINVAL,
				     "argument %zu: expected KEY=VALUE with a "
				     "non-empty KEY",
				     i + 1);
	klen = (size_t)(eq - pair);
	vlen = strlen(eq + 1);
	if (sfs_policy_utf8_check(pair, klen) != SFS_OK)
		return sfs_error_set(err, SFS_EINVAL,
				     "argument %zu: key is not valid utf-8",
				     i + 1);
	if (sfs_policy_utf8_check(eq + 1, vlen) != SFS_OK)
		return sfs_error_set(err, SFS_EINVAL,
				     "argument %zu: value is not valid utf-8",
				     i + 1);
	if (json_object_getn(obj, pair, klen))
		return sfs_error_set(err, SFS_EINVAL, "repeated key '%.*s'",
				     (int)(klen > 64 ? 64 : klen), pair);
	v = json_stringn_nocheck(eq + 1, vlen);
	if (!v || json_object_setn_new_nocheck(obj, pair, klen, v) != 0)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	return SFS_OK;
}

int sfs_value_kv_build(const char *const *pairs, size_t n, char **out,
		       size_t *len, struct sfs_error *err)
{
	json_t *obj;
	size_t i;
	int rc = SFS_OK;

	*out = NULL;
	*len = 0;
	jansson_init();
	obj = json_object();
	if (!obj)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	for (i = 0; i < n && rc == SFS_OK; i++)
		rc = kv_add(obj, pairs[i], i, err);
	if (rc == SFS_OK) {
		*out = dump(obj, COMPACT, len);
		if (!*out)
			rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
	}
	json_decref(obj);
	return rc;
}

/*
 * One entry as sfs_value_kv_each gives it: a string's raw bytes (jansson
 * keeps its length, so any byte but NUL survives), anything else as
 * compact JSON in a temporary buffer wiped after use.
 */
static int kv_emit(const char *key, json_t *v, sfs_kv_cb cb, void *arg,
		   struct sfs_error *err)
{
	size_t n = 0;
	char *buf;
	int rc;

	if (json_is_string(v))
		return cb(arg, key, json_string_value(v),
			  json_string_length(v));
	buf = dump(v, COMPACT, &n);
	if (!buf)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	rc = cb(arg, key, buf, n);
	sfs_crypto_free_secret(buf, n + 1);
	return rc;
}

/* A callback's non-zero return stops the walk and is returned as is. */
int sfs_value_kv_each(const void *data, size_t len, int strict, sfs_kv_cb cb,
		      void *arg, struct sfs_error *err)
{
	const char *key;
	json_t *obj, *v;
	int rc;

	jansson_init();
	rc = load_object(data, len, strict, &obj, err);
	if (rc != SFS_OK)
		return rc;
	json_object_foreach(obj, key, v) {
		rc = kv_emit(key, v, cb, arg, err);
		if (rc != 0)
			break;
	}
	json_decref(obj); /* the wiping allocator zeroes the strings */
	return rc;
}

/* A malloc'd NUL-terminated copy of n bytes at s. */
static char *copy_bytes(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

int sfs_value_kv_get(const void *data, size_t len, const char *key, char **out,
		     size_t *outlen)
{
	json_t *obj, *v;
	int rc;

	*out = NULL;
	*outlen = 0;
	jansson_init();
	rc = load_object(data, len, 0, &obj, NULL);
	if (rc != SFS_OK)
		return rc;
	v = json_object_get(obj, key);
	if (!v) {
		rc = SFS_ENOENT;
	} else if (json_is_string(v)) {
		*outlen = json_string_length(v);
		*out = copy_bytes(json_string_value(v), *outlen);
	} else {
		*out = dump(v, COMPACT, outlen);
	}
	if (v && !*out) {
		*outlen = 0;
		rc = SFS_ENOMEM;
	}
	json_decref(obj);
	return rc;
}

/* --- JSON builder and reader ------------------------------------------- */

struct sfs_json *sfs_json_object(void)
{
	jansson_init();
	return S(json_object());
}

struct sfs_json *sfs_json_array(void)
{
	jansson_init();
	return S(json_array());
}

struct sfs_json *sfs_json_string_n(const char *v, size_t len)
{
	jansson_init();
	return S(json_stringn(v, len));
}

/*
 * A copy of s with each byte that does not start a valid UTF-8 sequence
 * replaced by U+FFFD, so that text from outside (a process name, a file
 * name) can always be printed. malloc'd; NULL when out of memory.
 */
static char *utf8_sanitize(const char *s)
{
	size_t len = strlen(s), i = 0, o = 0, k;
	char *out = malloc(len * 3 + 1);

	if (!out)
		return NULL;
	while (i < len) {
		for (k = 1; k <= 4 && i + k <= len; k++)
			if (sfs_policy_utf8_check(s + i, k) == SFS_OK)
				break;
		if (k <= 4 && i + k <= len) {
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

/* Set obj[key] = v (stealing v), printable keys guaranteed. */
static int set_new(struct sfs_json *obj, const char *key, json_t *v)
{
	char *clean = NULL;
	int rc;

	if (!v)
		return SFS_ENOMEM;
	if (sfs_policy_utf8_check(key, strlen(key)) != SFS_OK) {
		clean = utf8_sanitize(key);
		if (!clean) {
			json_decref(v);
			return SFS_ENOMEM;
		}
		key = clean;
	}
	rc = json_object_set_new(J(obj), key, v) == 0 ? SFS_OK : SFS_ENOMEM;
	free(clean);
	return rc;
}

/* A JSON string of s (NULL: JSON null), invalid UTF-8 made printable. */
static json_t *str_new(const char *s)
{
	char *clean;
	json_t *v;

	if (!s)
		return json_null();
	if (sfs_policy_utf8_check(s, strlen(s)) == SFS_OK)
		return json_string_nocheck(s);
	clean = utf8_sanitize(s);
	if (!clean)
		return NULL;
	v = json_string_nocheck(clean);
	free(clean);
	return v;
}

int sfs_json_set_str(struct sfs_json *obj, const char *key, const char *v)
{
	return set_new(obj, key, str_new(v));
}

int sfs_json_set_int(struct sfs_json *obj, const char *key, int64_t v)
{
	return set_new(obj, key, json_integer((json_int_t)v));
}

int sfs_json_set_bool(struct sfs_json *obj, const char *key, int v)
{
	return set_new(obj, key, json_boolean(v));
}

int sfs_json_set_null(struct sfs_json *obj, const char *key)
{
	return set_new(obj, key, json_null());
}

int sfs_json_set(struct sfs_json *obj, const char *key, struct sfs_json *child)
{
	return set_new(obj, key, J(child));
}

int sfs_json_append(struct sfs_json *arr, struct sfs_json *child)
{
	/* json_array_append_new drops child on failure too */
	if (!child)
		return SFS_ENOMEM;
	return json_array_append_new(J(arr), J(child)) == 0 ? SFS_OK
							    : SFS_ENOMEM;
}

char *sfs_json_dump(const struct sfs_json *j, int pretty)
{
	jansson_init();
	return dump(CJ(j), pretty ? PRETTY : COMPACT, NULL);
}

void sfs_json_free(struct sfs_json *j)
{
	json_decref(J(j));
}

struct sfs_json *sfs_json_parse(const char *text, size_t len)
{
	json_error_t e;
	json_t *j;

	jansson_init();
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	sfs_crypto_wipe(&e, sizeof(e));
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return S(j);
}

const char *sfs_json_get_str(const struct sfs_json *obj, const char *key)
{
	if (!obj)
		return NULL;
	return json_string_value(json_object_get(CJ(obj), key));
}

int64_t sfs_json_get_int(const struct sfs_json *obj, const char *key,
			 int64_t def)
{
	json_t *v;

	if (!obj)
		return def;
	v = json_object_get(CJ(obj), key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

const struct sfs_json *sfs_json_get(const struct sfs_json *obj,
				    const char *key)
{
	return obj ? (const struct sfs_json *)json_object_get(CJ(obj), key)
		   : NULL;
}

const char *sfs_json_str(const struct sfs_json *j)
{
	return json_string_value(CJ(j));
}

int sfs_json_each(const struct sfs_json *j, sfs_json_each_fn cb, void *arg)
{
	const char *key;
	json_t *v;
	size_t i;
	int rc = 0;

	if (json_is_object(CJ(j))) {
		json_object_foreach (J(j), key, v)
			if ((rc = cb(arg, key, S(v))))
				break;
	} else if (json_is_array(CJ(j))) {
		json_array_foreach (CJ(j), i, v)
			if ((rc = cb(arg, NULL, S(v))))
				break;
	} else {
		rc = SFS_EINVAL;
	}
	return rc;
}
