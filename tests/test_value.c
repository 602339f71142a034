/*
 * Value suite: format detection (text / json / kv) under the exact parse
 * rules (duplicates, NUL escapes, depth 64, UTF-8), Key/Value values built
 * from KEY=VALUE arguments and read back entry by entry, and the JSON
 * builder and reader the rest of the tree prints with. Outputs are
 * compared byte for byte.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"
#include "secretfs/value.h"

/* --- format detection --------------------------------------------------- */

struct fmt_row {
	const char *in;
	size_t len; /* 0: strlen(in) */
	int want;
};

static const struct fmt_row fmt_rows[] = {
	/* text */
	{ "", 0, SFS_FMT_TEXT },
	{ "hunter2", 0, SFS_FMT_TEXT },
	{ "hello world\n", 0, SFS_FMT_TEXT },
	{ "\x00\x01\xff\xfe", 4, SFS_FMT_TEXT },
	{ "{", 0, SFS_FMT_TEXT },
	{ "{\"a\":1", 0, SFS_FMT_TEXT },
	{ "[1,2,]", 0, SFS_FMT_TEXT },
	{ "{'a':'b'}", 0, SFS_FMT_TEXT },
	{ "NaN", 0, SFS_FMT_TEXT },
	{ "{\"a\":\"b\"} x", 0, SFS_FMT_TEXT },
	{ "[1][2]", 0, SFS_FMT_TEXT },
	{ "\"unterminated", 0, SFS_FMT_TEXT },
	/* json: any JSON value that is not an object of strings */
	{ "42", 0, SFS_FMT_JSON },
	{ "-1.5e3", 0, SFS_FMT_JSON },
	{ "true", 0, SFS_FMT_JSON },
	{ "null", 0, SFS_FMT_JSON },
	{ "\"just a string\"", 0, SFS_FMT_JSON },
	{ " [1, \"two\", null] \n", 0, SFS_FMT_JSON },
	{ "[]", 0, SFS_FMT_JSON },
	{ "[\"a\",\"b\"]", 0, SFS_FMT_JSON },
	{ "{\"a\":1}", 0, SFS_FMT_JSON },
	{ "{\"a\":\"x\",\"b\":2}", 0, SFS_FMT_JSON },
	{ "{\"a\":{\"b\":\"c\"}}", 0, SFS_FMT_JSON },
	{ "{\"a\":null}", 0, SFS_FMT_JSON },
	/* kv: an object whose values are all strings */
	{ "{}", 0, SFS_FMT_KV },
	{ "{\"user\":\"admin\",\"pass\":\"s3cr=t\"}", 0, SFS_FMT_KV },
	{ " {\n  \"a\": \"\"\n}\n", 0, SFS_FMT_KV },
	{ "{\"k\":\"caf\xc3\xa9\"}", 0, SFS_FMT_KV },
	{ "{\"k\":\"\\u00e9\\n\"}", 0, SFS_FMT_KV },
	/* duplicate keys, at any level: text */
	{ "{\"a\":\"1\",\"a\":\"2\"}", 0, SFS_FMT_TEXT },
	{ "[{\"a\":1,\"a\":2}]", 0, SFS_FMT_TEXT },
	/* NUL, escaped or raw: text */
	{ "\"a\\u0000b\"", 0, SFS_FMT_TEXT },
	{ "{\"k\":\"a\\u0000\"}", 0, SFS_FMT_TEXT },
	{ "{\"a\\u0000\":\"x\"}", 0, SFS_FMT_TEXT },
	{ "{\"a\":\"b\"}\0", 10, SFS_FMT_TEXT },
	{ "{\"a\":\"b\0c\"}", 11, SFS_FMT_TEXT },
	/* invalid UTF-8 inside JSON: text */
	{ "\"\xff\"", 0, SFS_FMT_TEXT },
	{ "{\"k\":\"\xc0\xaf\"}", 0, SFS_FMT_TEXT },
	{ "{\"k\":\"\xed\xa0\x80\"}", 0, SFS_FMT_TEXT },
	{ "[\"\\ud800\"]", 0, SFS_FMT_TEXT },
};

START_TEST(test_format)
{
	const struct fmt_row *r = &fmt_rows[_i];
	size_t len = r->len ? r->len : strlen(r->in);
	int got = sfs_value_format(r->in, len);

	ck_assert_msg(got == r->want, "row %d: got %s, want %s", _i,
		      sfs_value_format_name(got),
		      sfs_value_format_name(r->want));
}
END_TEST

/* n nested arrays, or objects {"k":...}, around inner. malloc'd. */
static char *nest(int n, int objects, const char *inner)
{
	size_t cap = (size_t)n * 6 + strlen(inner) + 1, o = 0;
	char *s = malloc(cap);
	int i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%s", objects ? "{\"k\":" : "[");
	o += (size_t)sprintf(s + o, "%s", inner);
	for (i = 0; i < n; i++)
		s[o++] = objects ? '}' : ']';
	s[o] = '\0';
	return s;
}

START_TEST(test_depth_arrays)
{
	char *ok = nest(64, 0, "1"), *deep = nest(65, 0, "1");

	ck_assert_int_eq(sfs_value_format(ok, strlen(ok)), SFS_FMT_JSON);
	ck_assert_int_eq(sfs_value_format(deep, strlen(deep)), SFS_FMT_TEXT);
	free(ok);
	free(deep);
}
END_TEST

START_TEST(test_depth_objects)
{
	/* 63 objects around {"a":"b"}: 64 levels; one more is too deep */
	char *ok = nest(63, 1, "{\"a\":\"b\"}");
	char *deep = nest(64, 1, "{\"a\":\"b\"}");

	ck_assert_int_eq(sfs_value_format(ok, strlen(ok)), SFS_FMT_JSON);
	ck_assert_int_eq(sfs_value_format(deep, strlen(deep)), SFS_FMT_TEXT);
	free(ok);
	free(deep);
}
END_TEST

START_TEST(test_depth_huge)
{
	/* far beyond any parser's limit: text, no crash */
	size_t n = 200000;
	char *s = malloc(n);

	ck_assert_ptr_nonnull(s);
	memset(s, '[', n);
	ck_assert_int_eq(sfs_value_format(s, n), SFS_FMT_TEXT);
	free(s);
}
END_TEST

START_TEST(test_format_names)
{
	ck_assert_str_eq(sfs_value_format_name(SFS_FMT_TEXT), "text");
	ck_assert_str_eq(sfs_value_format_name(SFS_FMT_JSON), "json");
	ck_assert_str_eq(sfs_value_format_name(SFS_FMT_KV), "kv");
}
END_TEST

/* --- kv_build ----------------------------------------------------------- */

static void build_ok(const char *const *pairs, size_t n, const char *want)
{
	struct sfs_error err;
	char *out = NULL;
	size_t len = 0;

	sfs_error_clear(&err);
	ck_assert_msg(sfs_value_kv_build(pairs, n, &out, &len, &err) == SFS_OK,
		      "%s", err.msg);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(out, want, len);
	ck_assert_int_eq(sfs_value_format(out, len), SFS_FMT_KV);
	free(out);
}

START_TEST(test_kv_build_exact)
{
	const char *p[] = { "user=admin", "pass=s3cr=t" };

	build_ok(p, 2, "{\"user\":\"admin\",\"pass\":\"s3cr=t\"}");
}
END_TEST

START_TEST(test_kv_build_order)
{
	const char *p[] = { "zeta=1", "alpha=2", "mid=3" };

	build_ok(p, 3, "{\"zeta\":\"1\",\"alpha\":\"2\",\"mid\":\"3\"}");
}
END_TEST

START_TEST(test_kv_build_escapes)
{
	const char *p[] = { "q=a\"b\\c", "nl=x\ny\tz\x01", "u=caf\xc3\xa9",
			    "empty=", "sp ace= v " };

	build_ok(p, 5,
		 "{\"q\":\"a\\\"b\\\\c\",\"nl\":\"x\\ny\\tz\\u0001\","
		 "\"u\":\"caf\xc3\xa9\",\"empty\":\"\",\"sp ace\":\" v \"}");
}
END_TEST

START_TEST(test_kv_build_empty)
{
	build_ok(NULL, 0, "{}");
}
END_TEST

struct bad_build {
	const char *pairs[3];
	size_t n;
};

static const struct bad_build bad_builds[] = {
	{ { "s3cr3t-without-equals" }, 1 },
	{ { "=value" }, 1 },
	{ { "a=1", "b=2", "a=3" }, 3 },
	{ { "k=\xff\xfe" }, 1 },
	{ { "k=\xed\xa0\x80" }, 1 },
	{ { "\xc0\xaf=v" }, 1 },
	{ { "a=1", "" }, 2 },
};

START_TEST(test_kv_build_errors)
{
	const struct bad_build *b = &bad_builds[_i];
	struct sfs_error err;
	char *out = (char *)"unchanged";
	size_t len = 99;

	sfs_error_clear(&err);
	ck_assert_int_eq(sfs_value_kv_build(b->pairs, b->n, &out, &len, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(err.code, SFS_EINVAL);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);
	/* no value bytes in the message */
	ck_assert_ptr_null(strstr(err.msg, "s3cr3t"));
	ck_assert_ptr_null(strstr(err.msg, "\xff"));
}
END_TEST

START_TEST(test_kv_build_repeat_message)
{
	const char *p[] = { "a=1", "b=2", "a=3" };
	struct sfs_error err;
	char *out;
	size_t len;

	ck_assert_int_eq(sfs_value_kv_build(p, 3, &out, &len, &err),
			 SFS_EINVAL);
	ck_assert_str_eq(err.msg, "repeated key 'a'");
}
END_TEST

/* --- kv_each / kv_get --------------------------------------------------- */

struct seen {
	int n;
	int stop_at; /* return 7 from this call (1-based), 0: never */
	char keys[8][16];
	char vals[8][64];
	size_t lens[8];
};

static int collect(void *arg, const char *key, const char *val, size_t len)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, 8);
	ck_assert_uint_lt(len, sizeof(s->vals[0]));
	snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	memcpy(s->vals[s->n], val, len);
	s->lens[s->n] = len;
	s->n++;
	return s->n == s->stop_at ? 7 : 0;
}

static int each(const char *v, int strict, struct seen *s)
{
	memset(s->keys, 0, sizeof(s->keys));
	s->n = 0;
	return sfs_value_kv_each(v, strlen(v), strict, collect, s, NULL);
}

#define ck_entry(s, i, k, v)                                       \
	do {                                                       \
		ck_assert_str_eq((s)->keys[i], k);                 \
		ck_assert_uint_eq((s)->lens[i], sizeof(v) - 1);    \
		ck_assert_mem_eq((s)->vals[i], v, sizeof(v) - 1);  \
	} while (0)

START_TEST(test_kv_each_order_raw)
{
	struct seen s = { 0 };

	ck_assert_int_eq(each("{\"b\":\"2\",\"a\":\"line1\\nline2\","
			      "\"q\":\"x\\\"y\\\\\",\"e\":\"\\u00e9\"}",
			      1, &s),
			 SFS_OK);
	ck_assert_int_eq(s.n, 4);
	ck_entry(&s, 0, "b", "2");
	ck_entry(&s, 1, "a", "line1\nline2");
	ck_entry(&s, 2, "q", "x\"y\\");
	ck_entry(&s, 3, "e", "\xc3\xa9");
}
END_TEST

START_TEST(test_kv_each_non_strings)
{
	struct seen s = { 0 };

	ck_assert_int_eq(each("{\"n\": 1, \"arr\": [1, \"x\"], \"o\": "
			      "{\"t\" : true}, \"z\": null, \"f\": 1.5, "
			      "\"s\": \"str\"}",
			      0, &s),
			 SFS_OK);
	ck_assert_int_eq(s.n, 6);
	ck_entry(&s, 0, "n", "1");
	ck_entry(&s, 1, "arr", "[1,\"x\"]");
	ck_entry(&s, 2, "o", "{\"t\":true}");
	ck_entry(&s, 3, "z", "null");
	ck_entry(&s, 4, "f", "1.5");
	ck_entry(&s, 5, "s", "str");
}
END_TEST

START_TEST(test_kv_each_strict)
{
	const char *v = "{\"a\":\"x\",\"n\":1}";
	struct seen s = { 0 };
	struct sfs_error err;

	sfs_error_clear(&err);
	ck_assert_int_eq(sfs_value_kv_each(v, strlen(v), 1, collect, &s, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(err.code, SFS_EINVAL);
	ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(test_kv_each_not_object)
{
	static const char *const bad[] = { "[1]", "\"s\"", "42", "text",
					   "", "{\"a\":\"1\",\"a\":\"2\"}" };
	struct seen s = { 0 };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(each(bad[i], 0, &s), SFS_EINVAL);
		ck_assert_int_eq(s.n, 0);
	}
}
END_TEST

START_TEST(test_kv_each_stop)
{
	struct seen s = { 0 };

	s.stop_at = 2;
	ck_assert_int_eq(each("{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}", 1, &s),
			 7);
	ck_assert_int_eq(s.n, 2);
}
END_TEST

START_TEST(test_kv_get)
{
	const char *v = "{\"user\":\"admin\",\"n\":42,\"o\":{\"a\": [1]},"
			"\"nl\":\"a\\nb\"}";
	char *out = (char *)"x";
	size_t len = 9;

	ck_assert_int_eq(sfs_value_kv_get(v, strlen(v), "user", &out, &len),
			 SFS_OK);
	ck_assert_uint_eq(len, 5);
	ck_assert_str_eq(out, "admin");
	free(out);
	ck_assert_int_eq(sfs_value_kv_get(v, strlen(v), "n", &out, &len),
			 SFS_OK);
	ck_assert_str_eq(out, "42");
	ck_assert_uint_eq(len, 2);
	free(out);
	ck_assert_int_eq(sfs_value_kv_get(v, strlen(v), "o", &out, &len),
			 SFS_OK);
	ck_assert_str_eq(out, "{\"a\":[1]}");
	free(out);
	ck_assert_int_eq(sfs_value_kv_get(v, strlen(v), "nl", &out, &len),
			 SFS_OK);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(out, "a\nb", 3);
	free(out);
}
END_TEST

START_TEST(test_kv_get_errors)
{
	char *out = (char *)"x";
	size_t len = 9;

	ck_assert_int_eq(sfs_value_kv_get("{\"a\":\"1\"}", 9, "b", &out, &len),
			 SFS_ENOENT);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(sfs_value_kv_get("[\"a\"]", 5, "a", &out, &len),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_value_kv_get("a=1", 3, "a", &out, &len),
			 SFS_EINVAL);
	ck_assert_ptr_null(out);
}
END_TEST

/* --- JSON builder and reader ------------------------------------------- */

static struct sfs_json *sample(void)
{
	struct sfs_json *o = sfs_json_object(), *arr = sfs_json_array();
	struct sfs_json *e = sfs_json_object();

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(sfs_json_set_str(o, "name", "db \"main\""), SFS_OK);
	ck_assert_int_eq(sfs_json_set_int(o, "version", -5), SFS_OK);
	ck_assert_int_eq(sfs_json_set_int(o, "big", INT64_MAX), SFS_OK);
	ck_assert_int_eq(sfs_json_set_bool(o, "active", 1), SFS_OK);
	ck_assert_int_eq(sfs_json_set_bool(o, "gone", 0), SFS_OK);
	ck_assert_int_eq(sfs_json_set_null(o, "default"), SFS_OK);
	ck_assert_int_eq(sfs_json_set_str(e, "k", "v"), SFS_OK);
	ck_assert_int_eq(sfs_json_append(arr, e), SFS_OK);
	ck_assert_int_eq(sfs_json_append(arr, sfs_json_array()), SFS_OK);
	ck_assert_int_eq(sfs_json_set(o, "list", arr), SFS_OK);
	ck_assert_int_eq(sfs_json_set(o, "empty", sfs_json_object()), SFS_OK);
	return o;
}

START_TEST(test_json_dump_compact)
{
	struct sfs_json *o = sample();
	char *s = sfs_json_dump(o, 0);

	ck_assert_str_eq(s, "{\"name\":\"db \\\"main\\\"\",\"version\":-5,"
			    "\"big\":9223372036854775807,\"active\":true,"
			    "\"gone\":false,\"default\":null,"
			    "\"list\":[{\"k\":\"v\"},[]],\"empty\":{}}");
	free(s);
	sfs_json_free(o);
}
END_TEST

START_TEST(test_json_dump_pretty)
{
	struct sfs_json *o = sfs_json_object(), *arr = sfs_json_array();
	char *s;

	sfs_json_set_str(o, "z", "last");
	sfs_json_set_int(o, "a", 1);
	sfs_json_append(arr, sfs_json_object());
	sfs_json_set(o, "l", arr);
	s = sfs_json_dump(o, 1);
	ck_assert_str_eq(s, "{\n  \"z\": \"last\",\n  \"a\": 1,\n"
			    "  \"l\": [\n    {}\n  ]\n}");
	free(s);
	sfs_json_free(o);
}
END_TEST

START_TEST(test_json_str_utf8)
{
	struct sfs_json *o = sfs_json_object();
	char *s;

	/* valid UTF-8 passes through; invalid bytes become U+FFFD */
	sfs_json_set_str(o, "ok", "caf\xc3\xa9");
	sfs_json_set_str(o, "comm", "a\xff" "b\xe2\x82");
	sfs_json_set_str(o, "k\xc0", "x");
	sfs_json_set_str(o, "nul", NULL);
	sfs_json_set_str(o, "ctl", "\x1b\n");
	s = sfs_json_dump(o, 0);
	ck_assert_str_eq(s, "{\"ok\":\"caf\xc3\xa9\","
			    "\"comm\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\","
			    "\"k\xef\xbf\xbd\":\"x\",\"nul\":null,"
			    "\"ctl\":\"\\u001B\\n\"}");
	free(s);
	sfs_json_free(o);
}
END_TEST

START_TEST(test_json_null_child)
{
	struct sfs_json *o = sfs_json_object(), *a = sfs_json_array();
	char *s;

	ck_assert_int_eq(sfs_json_set(o, "x", NULL), SFS_ENOMEM);
	ck_assert_int_eq(sfs_json_append(a, NULL), SFS_ENOMEM);
	s = sfs_json_dump(o, 0);
	ck_assert_str_eq(s, "{}");
	free(s);
	sfs_json_free(o);
	sfs_json_free(a);
	sfs_json_free(NULL);
}
END_TEST

START_TEST(test_json_parse)
{
	const char *line = "{\"time\":\"2026-11-28T18:00:00Z\",\"op\":\"read\","
			   "\"version\":3,\"pid\":1099511627776,"
			   "\"uid\":\"1000\",\"ok\":true}";
	struct sfs_json *j = sfs_json_parse(line, strlen(line));

	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(sfs_json_get_str(j, "op"), "read");
	ck_assert_str_eq(sfs_json_get_str(j, "time"), "2026-11-28T18:00:00Z");
	ck_assert_int_eq(sfs_json_get_int(j, "version", -1), 3);
	ck_assert_int_eq(sfs_json_get_int(j, "pid", -1), 1099511627776LL);
	/* absent or of another type */
	ck_assert_ptr_null(sfs_json_get_str(j, "secret"));
	ck_assert_ptr_null(sfs_json_get_str(j, "version"));
	ck_assert_int_eq(sfs_json_get_int(j, "uid", -1), -1);
	ck_assert_int_eq(sfs_json_get_int(j, "ok", -2), -2);
	ck_assert_int_eq(sfs_json_get_int(j, "nothing", 77), 77);
	sfs_json_free(j);
}
END_TEST

START_TEST(test_json_parse_not_object)
{
	static const char *const bad[] = { "[1,2]", "42", "\"s\"", "",
					   "{\"a\":", "not json", "{} {}" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sfs_json_parse(bad[i], strlen(bad[i])) == NULL,
			      "'%s' parsed", bad[i]);
	ck_assert_ptr_null(sfs_json_get_str(NULL, "a"));
	ck_assert_int_eq(sfs_json_get_int(NULL, "a", 5), 5);
}
END_TEST

START_TEST(test_json_round_trip)
{
	struct sfs_json *o = sample(), *back;
	char *s = sfs_json_dump(o, 1);

	back = sfs_json_parse(s, strlen(s));
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(sfs_json_get_str(back, "name"), "db \"main\"");
	ck_assert_int_eq(sfs_json_get_int(back, "big", 0), INT64_MAX);
	ck_assert_int_eq(sfs_json_get_int(back, "version", 0), -5);
	free(s);
	sfs_json_free(o);
	sfs_json_free(back);
}
END_TEST

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* sfs_json_each: members in order with their keys, elements with
 * none; stops at the first non-zero answer; EINVAL on a scalar. */
static int each_cb(void *arg, const char *key, const struct sfs_json *v)
{
	char *out = arg;
	const char *s = sfs_json_str(v);

	strcat(out, key ? key : "-");
	strcat(out, "=");
	strcat(out, s ? s : "?");
	strcat(out, ";");
	return s && !strcmp(s, "stop") ? 7 : 0;
}

START_TEST(test_json_each_get)
{
	const char *t = "{\"o\":{\"a\":\"1\",\"b\":2},\"l\":[\"x\",\"stop\","
			"\"y\"],\"s\":\"t\"}";
	struct sfs_json *j = sfs_json_parse(t, strlen(t));
	char out[128] = "";

	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(sfs_json_each(sfs_json_get(j, "o"), each_cb, out), 0);
	ck_assert_str_eq(out, "a=1;b=?;");
	out[0] = '\0';
	ck_assert_int_eq(sfs_json_each(sfs_json_get(j, "l"), each_cb, out), 7);
	ck_assert_str_eq(out, "-=x;-=stop;");
	ck_assert_int_eq(sfs_json_each(sfs_json_get(j, "s"), each_cb, out),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_json_each(NULL, each_cb, out), SFS_EINVAL);
	ck_assert_str_eq(sfs_json_str(sfs_json_get(j, "s")), "t");
	ck_assert_ptr_null(sfs_json_str(sfs_json_get(j, "o")));
	ck_assert_ptr_null(sfs_json_get(j, "missing"));
	ck_assert_ptr_null(sfs_json_get(NULL, "s"));
	sfs_json_free(j);
}
END_TEST

static Suite *value_suite(void)
{
	Suite *s = suite_create("value");
	TCase *tc;

	tc = tcase_create("format");
	tcase_add_loop_test(tc, test_format, 0, NELEM(fmt_rows));
	tcase_add_test(tc, test_depth_arrays);
	tcase_add_test(tc, test_depth_objects);
	tcase_add_test(tc, test_depth_huge);
	tcase_add_test(tc, test_format_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("kv_build");
	tcase_add_test(tc, test_kv_build_exact);
	tcase_add_test(tc, test_kv_build_order);
	tcase_add_test(tc, test_kv_build_escapes);
	tcase_add_test(tc, test_kv_build_empty);
	tcase_add_loop_test(tc, test_kv_build_errors, 0, NELEM(bad_builds));
	tcase_add_test(tc, test_kv_build_repeat_message);
	suite_add_tcase(s, tc);

	tc = tcase_create("kv_read");
	tcase_add_test(tc, test_kv_each_order_raw);
	tcase_add_test(tc, test_kv_each_non_strings);
	tcase_add_test(tc, test_kv_each_strict);
	tcase_add_test(tc, test_kv_each_not_object);
	tcase_add_test(tc, test_kv_each_stop);
	tcase_add_test(tc, test_kv_get);
	tcase_add_test(tc, test_kv_get_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_dump_compact);
	tcase_add_test(tc, test_json_dump_pretty);
	tcase_add_test(tc, test_json_str_utf8);
	tcase_add_test(tc, test_json_null_child);
	tcase_add_test(tc, test_json_parse);
	tcase_add_test(tc, test_json_parse_not_object);
	tcase_add_test(tc, test_json_round_trip);
	tcase_add_test(tc, test_json_each_get);
	suite_add_tcase(s, tc);
	return s;
}

const struct harness harness = {.suite = value_suite};
