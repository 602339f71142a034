/*
 * Values and JSON: the only module that includes <jansson.h>.
 *
 * Formats (SPEC §1): `kv` when a value is a JSON object whose values are
 * all strings, `json` for any other JSON value, `text` otherwise. Key/Value
 * values are built from KEY=VALUE arguments and read back entry by entry.
 *
 * The small JSON builder below is how the rest of the tree prints JSON
 * (CLI --json, audit lines, keys/<name>, .status) without touching
 * jansson. Plaintext handed to these functions is never copied into error
 * messages.
 */
#ifndef SECRETFS_VALUE_H
#define SECRETFS_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "secretfs/err.h"
#include "secretfs/store.h"

/* Format of a value: enum sfs_format. Rejects JSON with NUL bytes in
 * strings, duplicate keys or nesting over 64 levels as `text`. */
int sfs_value_format(const void *data, size_t len);

/* "text", "json", "kv". */
const char *sfs_value_format_name(int format);

/*
 * Build a compact JSON object of strings from n "KEY=VALUE" arguments
 * (split at the first '='; KEY non-empty; a repeated KEY is SFS_EINVAL).
 * *out is malloc'd; free it with sfs_crypto_free_secret(*out, *len).
 */
int sfs_value_kv_build(const char *const *pairs, size_t n, char **out,
		       size_t *len, struct sfs_error *err);

/*
 * Call cb for each entry of a JSON object value, in key order as stored:
 * a string entry as its raw bytes, any other as compact JSON. SFS_EINVAL
 * when the value is not a JSON object, or (strict) not all strings.
 * The bytes passed to cb are wiped after the call. A non-zero return
 * from cb stops the walk and is returned as is.
 */
typedef int (*sfs_kv_cb)(void *arg, const char *key, const char *val,
			 size_t len);
int sfs_value_kv_each(const void *data, size_t len, int strict, sfs_kv_cb cb,
		      void *arg, struct sfs_error *err);

/*
 * Look up one entry of a JSON object value (as sfs_value_kv_each gives
 * it). *out malloc'd, free with sfs_crypto_free_secret(*out, *outlen).
 * SFS_ENOENT when absent, SFS_EINVAL when the value is not an object.
 */
int sfs_value_kv_get(const void *data, size_t len, const char *key,
		     char **out, size_t *outlen);

/* --- JSON builder and reader ------------------------------------------ */

struct sfs_json;

struct sfs_json *sfs_json_object(void);
struct sfs_json *sfs_json_array(void);
/* A JSON string of len bytes of UTF-8 (an array element); NULL when
 * they are not UTF-8 or out of memory. */
struct sfs_json *sfs_json_string_n(const char *v, size_t len);
/* Setters return 0 or SFS_ENOMEM; set/append take ownership of child. */
int sfs_json_set_str(struct sfs_json *obj, const char *key, const char *v);
int sfs_json_set_int(struct sfs_json *obj, const char *key, int64_t v);
int sfs_json_set_bool(struct sfs_json *obj, const char *key, int v);
int sfs_json_set_null(struct sfs_json *obj, const char *key);
int sfs_json_set(struct sfs_json *obj, const char *key,
		 struct sfs_json *child);
int sfs_json_append(struct sfs_json *arr, struct sfs_json *child);
/* Serialise: compact on one line, or indented (pretty). malloc'd; NULL on
 * failure. Keys keep insertion order. */
char *sfs_json_dump(const struct sfs_json *j, int pretty);
void sfs_json_free(struct sfs_json *j);

/* Parse a JSON object (e.g. an audit line); NULL when not an object. */
struct sfs_json *sfs_json_parse(const char *text, size_t len);
/* A string member, or NULL when absent or not a string. */
const char *sfs_json_get_str(const struct sfs_json *obj, const char *key);
/* An integer member; def when absent or not an integer. */
int64_t sfs_json_get_int(const struct sfs_json *obj, const char *key,
			 int64_t def);
/* A member of any type (borrowed: it lives as long as obj), or NULL. */
const struct sfs_json *sfs_json_get(const struct sfs_json *obj,
				    const char *key);
/* A string's text, or NULL when j is not a string. */
const char *sfs_json_str(const struct sfs_json *j);
/* Call cb for each member of an object (key, value) or element of an
 * array (key NULL), in order, until cb returns non-zero (returned).
 * SFS_EINVAL when j is neither. */
typedef int (*sfs_json_each_fn)(void *arg, const char *key,
				const struct sfs_json *val);
int sfs_json_each(const struct sfs_json *j, sfs_json_each_fn cb, void *arg);

#endif
