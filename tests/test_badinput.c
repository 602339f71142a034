/*
 * Bad input suite (issue 5, item 6), through the mount and the CLI: bad
 * names (empty, ".", "..", 129 and 255 bytes, invalid UTF-8, control
 * characters), bad attribute names and values (oversized, NUL, unknown
 * words), JSON that is not a Key/Value object (duplicate keys, deep
 * nesting, NUL), writes at offsets that leave holes or pass the limit.
 * Each gives its exact errno (or, through the CLI, exit 1 with one line
 * on stderr and nothing on stdout), and nothing is created or changed:
 * the store is compared whole before and after.
 */
#include <dirent.h>

#include "lib/proc.h"
#include "rel_util.h"

/* Names of the secrets and each one's latest version, as one string. */
static char *snapshot(void)
{
	return cli_out("secret", "list", NULL);
}

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- names --------------------------------------------------------- */

START_TEST(bad_names_through_mount)
{
	char *n129 = repeat('a', 129), *n255 = repeat('b', 255);
	char *n128 = repeat('c', 128), *before, *after, rel[400];
	const struct {
		const char *name;
		int err;
	} bad[] = {
	    {".", EEXIST},	   {"..", EEXIST},	   {n129, ENAMETOOLONG},
	    {n255, ENAMETOOLONG}, {"\xff\xfe", EINVAL},  {"caf\xc3", EINVAL},
	    {"a\x01z", EINVAL},	   {"a\nb", EINVAL},	   {"a\x7f", EINVAL},
	    {"a b", EINVAL},	   {"-lead", EINVAL},	   {".hidden", EINVAL},
	    {"_lead", EINVAL},	   {"a:b", EINVAL},
	};
	size_t i;

	mk("keep", "v");
	up(NULL);
	before = snapshot();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rel, sizeof(rel), "secrets/%s", bad[i].name);
		ck_assert_msg(ERR(mkdir(P(rel), 0755)) == bad[i].err,
			      "mkdir #%zu: %s, want %s", i, strerror(errno),
			      strerror(bad[i].err));
	}
	after = snapshot();
	ck_assert_str_eq(after, before);
	/* 128 bytes is fine */
	snprintf(rel, sizeof(rel), "secrets/%s", n128);
	ck_assert_int_eq(mkdir(P(rel), 0755), 0);
	free(before);
	free(after);
	free(n128);
	free(n129);
	free(n255);
}
END_TEST

/* Run the CLI; exit status, stdout and stderr (malloc'd). */
static int cli_full(char **out, char **err, const char *const *args)
{
	const char *argv[24];
	struct tu_proc p;
	int n = 0;

	argv[n++] = h_bin();
	argv[n++] = "--store";
	argv[n++] = h_store;
	while (*args && n < 23)
		argv[n++] = *args++;
	argv[n] = NULL;
	memset(&p, 0, sizeof(p));
	p.argv = argv;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	*out = p.out;
	*err = p.err;
	p.out = p.err = NULL;
	tu_proc_release(&p);
	return p.status;
}

/* exit want, nothing on stdout, exactly one line on stderr. */
static void cli_refuses(int want, const char *const *args)
{
	char *out, *err;
	int rc = cli_full(&out, &err, args);
	size_t n = strlen(err);

	ck_assert_msg(rc == want, "%s %s: exit %d, want %d", args[0], args[1],
		      rc, want);
	ck_assert_str_eq(out, "");
	ck_assert_msg(n > 0 && err[n - 1] == '\n', "no error line");
	/* a newline or invalid UTF-8 in a name never breaks the line */
	ck_assert_msg(memchr(err, '\n', n - 1) == NULL,
		      "error is not one line: %s", err);
	free(out);
	free(err);
}

START_TEST(bad_names_through_cli)
{
	char *n129 = repeat('a', 129), *n255 = repeat('b', 255), *before;
	char *after;
	const char *names[] = {"", ".", "..", n129, n255, "\xff\xfe",
			       "a\x01z", "a\nb", "a b", ".hidden", "a/b"};
	size_t i;

	mk("keep", "v");
	before = snapshot();
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *a[] = {"secret", "create", names[i], "--value",
				   "x", NULL};
		const char *k[] = {"key", "create", names[i], NULL};

		cli_refuses(1, a);
		cli_refuses(1, k);
	}
	after = snapshot();
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
	free(n129);
	free(n255);
}
END_TEST

/* ---- attributes ------------------------------------------------------ */

static int xset(const char *name, const void *v, size_t len)
{
	return ERR(setxattr(P("secrets/s"), name, v, len, 0));
}

#define XS(name, s) xset(name, s, sizeof(s) - 1)

START_TEST(bad_attributes_through_mount)
{
	char *big = repeat('d', 1025), *huge = repeat('d', 4000);

	mk("s", "value");
	ck_assert_int_eq(cli("secret", "update", "s", "--description", "d0",
			     NULL), 0);
	up(NULL);
	ck_assert_int_eq(xset("user.secret.description", big, 1025), EINVAL);
	ck_assert_int_eq(xset("user.secret.description", huge, 4000), EINVAL);
	ck_assert_int_eq(XS("user.secret.description", "a\x01z"), EINVAL);
	ck_assert_int_eq(XS("user.secret.description", "bad \xff utf8"),
			 EINVAL);
	ck_assert_int_eq(XS("user.secret.description", "nul\0inside"), EINVAL);
	ck_assert_int_eq(XS("user.secret.status", "bogus"), EINVAL);
	ck_assert_int_eq(XS("user.secret.status", "Active"), EINVAL);
	ck_assert_int_eq(XS("user.secret.status", "deactivated\n"), EINVAL);
	ck_assert_int_eq(XS("user.secret.status", "deactivated\0"), EINVAL);
	ck_assert_int_eq(XS("user.secret.status", ""), EINVAL);
	ck_assert_int_eq(XS("user.secret.access_control", "yes"), EINVAL);
	ck_assert_int_eq(XS("user.secret.access_control", "enabled\0x"),
			 EINVAL);
	ck_assert_int_eq(XS("user.secret.allowed_principals", "uid:abc"),
			 EINVAL);
	ck_assert_int_eq(XS("user.secret.allowed_principals",
				    "no-such-user-sfs-test"),
			 EINVAL);
	ck_assert_int_eq(XS("user.secret.default_version", "abc"), EINVAL);
	ck_assert_int_eq(XS("user.secret.default_version", "-1"), EINVAL);
	ck_assert_int_eq(XS("user.secret.default_version", "1x"), EINVAL);
	ck_assert_int_eq(XS("user.secret.default_version", ""), EINVAL);
	ck_assert_int_eq(XS("user.secret.default_version", "99"), ENOENT);
	ck_assert_int_eq(XS("user.secret.bogus", "x"), EPERM);
	ck_assert_int_eq(XS("user.secret.id", "x"), EPERM);
	ck_assert_int_eq(XS("user.secret.latest_version", "5"), EPERM);
	assert_xattr_err("secrets/s", "user.secret.bogus", ENODATA);
	/* nothing changed */
	assert_xattr("secrets/s", "user.secret.description", "d0");
	assert_xattr("secrets/s", "user.secret.status", "active");
	assert_xattr("secrets/s", "user.secret.access_control", "disabled");
	assert_xattr("secrets/s", "user.secret.allowed_principals", "");
	assert_xattr("secrets/s", "user.secret.default_version", "1");
	assert_xattr("secrets/s", "user.secret.latest_version", "1");
	assert_reads("secrets/s/default", "value");
	free(big);
	free(huge);
}
END_TEST

START_TEST(bad_values_through_cli)
{
	char *before, *after, path[600];
	static char big[SFS_VALUE_MAX + 1];
	const char *empty[] = {"version", "add", "s", "--value", "", NULL};
	const char *file[] = {"version", "add", "s", "--file", path, NULL};
	const char *desc[] = {"secret", "update", "s", "--description",
			      "a\x01z", NULL};
	const char *kvget[] = {"version", "get", "s", "--kv", NULL};

	mk("s", "plain text");
	snprintf(path, sizeof(path), "%s/big", h_base);
	memset(big, 'z', sizeof(big));
	tu_write_file(path, big, sizeof(big), 0600);
	before = cli_out("version", "list", "s", NULL);
	cli_refuses(1, empty);
	cli_refuses(1, file);
	cli_refuses(1, desc);
	cli_refuses(1, kvget); /* not a Key/Value value */
	after = cli_out("version", "list", "s", NULL);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}
END_TEST

/* ---- JSON that is not a Key/Value object ------------------------------- */

static void json_case(const char *name, const void *v, size_t len)
{
	char rel[300], *got;
	size_t n;
	DIR *d;

	snprintf(rel, sizeof(rel), "secrets/%s", name);
	ck_assert_int_eq(mkdir(P(rel), 0755), 0);
	snprintf(rel, sizeof(rel), "secrets/%s/default", name);
	ck_assert_int_eq(put(rel, O_WRONLY | O_CREAT | O_TRUNC, v, len), 0);
	ck_assert_int_eq(slurp(rel, &got, &n), 0);
	ck_assert_uint_eq(n, len);
	ck_assert_int_eq(memcmp(got, v, len), 0); /* stored as it is */
	free(got);
	assert_xattr(rel, "user.secret.format", "text");
	snprintf(rel, sizeof(rel), "secrets/%s/kv", name);
	/* kv/ exists only while the default is a JSON object (SPEC §3) */
	errno = 0;
	d = opendir(P(rel));
	ck_assert_ptr_null(d);
	ck_assert_int_eq(errno, ENOENT);
	snprintf(rel, sizeof(rel), "secrets/%s/kv/a", name);
	ck_assert_int_eq(slurp(rel, &got, &n), ENOENT);
}

START_TEST(json_not_key_value)
{
	static const char dup[] = "{\"a\":\"1\",\"a\":\"2\"}";
	static const char nul_esc[] = "{\"a\":\"x\\u0000y\"}";
	static const char nul_raw[] = "{\"a\":\"x\0y\"}";
	char *deep = malloc(40002);
	size_t i;

	ck_assert_ptr_nonnull(deep);
	for (i = 0; i < 20000; i++) {
		deep[i] = '[';
		deep[40000 - 1 - i] = ']';
	}
	up(NULL);
	json_case("dup", dup, sizeof(dup) - 1);
	json_case("nulesc", nul_esc, sizeof(nul_esc) - 1);
	json_case("nulraw", nul_raw, sizeof(nul_raw) - 1);
	json_case("deep", deep, 40000);
	free(deep);
}
END_TEST

/* ---- writes with holes, past the limit ---------------------------------- */

START_TEST(writes_with_holes_or_too_big)
{
	static char big[SFS_VALUE_MAX + 1];
	int fd;

	mk("s", "seed");
	up(NULL);
	/* a write at a non-zero offset of an empty value leaves a hole */
	fd = open(P("secrets/s/default"), O_WRONLY | O_TRUNC | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ERR(pwrite(fd, "x", 1, 10)), EINVAL);
	ck_assert_int_eq(ERR(pwrite(fd, "y", 1, 0)), EINVAL); /* poisoned */
	ck_assert_int_eq(ERR(close(fd)), EINVAL);
	/* a hole after some bytes */
	fd = open(P("secrets/s/default"), O_WRONLY | O_TRUNC | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "abc", 3, 0), 3);
	ck_assert_int_eq(ERR(pwrite(fd, "x", 1, 4)), EINVAL);
	ck_assert_int_eq(ERR(close(fd)), EINVAL);
	/* past the limit, at once and by pieces */
	memset(big, 'q', sizeof(big));
	ck_assert_int_eq(put("secrets/s/versions/9", O_WRONLY | O_CREAT, big,
			     sizeof(big)),
			 EEXIST);
	fd = open(P("secrets/s/default"), O_WRONLY | O_TRUNC | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ERR(write(fd, big, sizeof(big))), EFBIG);
	ck_assert_int_eq(ERR(close(fd)), EFBIG);
	fd = open(P("secrets/s/default"), O_WRONLY | O_TRUNC | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, big, SFS_VALUE_MAX), SFS_VALUE_MAX);
	ck_assert_int_eq(ERR(write(fd, "x", 1)), EFBIG);
	ck_assert_int_eq(ERR(close(fd)), EFBIG);
	/* no O_TRUNC (editors): a handle that writes nothing commits nothing;
	 * bad version names */
	fd = open(P("secrets/s/default"), O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(put_s("secrets/s/versions/01",
			       O_WRONLY | O_CREAT | O_EXCL, "x"),
			 EPERM);
	ck_assert_int_eq(put_s("secrets/s/versions/abc",
			       O_WRONLY | O_CREAT | O_EXCL, "x"),
			 EPERM);
	ck_assert_int_eq(put_s("secrets/s/versions/0",
			       O_WRONLY | O_CREAT | O_EXCL, "x"),
			 EPERM);
	/* nothing committed by any of it */
	assert_reads("secrets/s/default", "seed");
	assert_xattr("secrets/s", "user.secret.latest_version", "1");
	/* growing by truncate would leave a hole: refused, and the handle
	 * then commits nothing (issue 10, finding 13) */
	fd = open(P("secrets/s/default"), O_WRONLY | O_TRUNC | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "abc", 3, 0), 3);
	ck_assert_int_eq(ERR(ftruncate(fd, 100)), EINVAL);
	ck_assert_int_eq(ERR(close(fd)), EINVAL);
	assert_reads("secrets/s/default", "seed");
}
END_TEST

static Suite *badinput_suite(void)
{
	const TTest *const tests[] = {
	    bad_names_through_mount,	  bad_names_through_cli,
	    bad_attributes_through_mount, bad_values_through_cli,
	    json_not_key_value,		  writes_with_holes_or_too_big,
	};

	return ru_suite("badinput", tests, sizeof(tests) / sizeof(tests[0]),
			120);
}

const struct harness harness = {.suite = badinput_suite, .fork = CK_FORK};
