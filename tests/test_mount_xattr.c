/*
 * Mount tests for extended attributes (SPEC §3's table): every attribute
 * read with its exact text, every writable one set, and the errno of each
 * refusal (ENODATA, EINVAL, EPERM, ERANGE).
 */
#include <regex.h>

#include "mount_harness.h"

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

static int matches(const char *s, const char *re)
{
	regex_t r;
	int ok;

	ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

#define assert_xattr_re(rel, name, re)                                         \
	do {                                                                   \
		const char *v_ = xget(rel, name);                              \
		ck_assert_msg(v_, "%s %s: %s", rel, name, strerror(errno));    \
		ck_assert_msg(matches(v_, re), "%s: '%s' !~ %s", name, v_,     \
			      re);                                             \
	} while (0)

#define UUID_RE "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#define TIME_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"

static int xset(const char *rel, const char *name, const char *v)
{
	return ERR(setxattr(P(rel), name, v, strlen(v), 0));
}

START_TEST(get_secret_dir)
{
	char by[64];

	ck_assert_int_eq(cli("secret", "create", "db", "--description",
			     "the db", "--value", "v1", NULL),
			 0);
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v2", NULL), 0);
	up(NULL);
	assert_xattr_re("secrets/db", "user.secret.id", UUID_RE);
	assert_xattr("secrets/db", "user.secret.name", "db");
	assert_xattr("secrets/db", "user.secret.description", "the db");
	assert_xattr("secrets/db", "user.secret.status", "active");
	assert_xattr("secrets/db", "user.secret.access_control", "disabled");
	assert_xattr("secrets/db", "user.secret.allowed_principals", "");
	assert_xattr("secrets/db", "user.secret.default_version", "2");
	assert_xattr("secrets/db", "user.secret.latest_version", "2");
	assert_xattr_re("secrets/db", "user.secret.created_at", TIME_RE);
	snprintf(by, sizeof(by), "^uid:%u(\\(.*\\))?$", (unsigned)getuid());
	assert_xattr_re("secrets/db", "user.secret.created_by", by);
	assert_xattr_re("secrets/db", "user.kms.key_id", UUID_RE);
	assert_xattr("secrets/db", "user.kms.key_name", "service");
	assert_xattr("secrets/db", "user.kms.key_type", "service");
	assert_xattr("secrets/db", "user.kms.key_state", "active");
	/* value-file attributes are not on the directory */
	assert_xattr_err("secrets/db", "user.secret.version", ENODATA);
	assert_xattr_err("secrets/db", "user.secret.nonsense", ENODATA);
	assert_xattr_err("secrets/db", "trusted.x", ENODATA);
}
END_TEST

START_TEST(get_value_files)
{
	mk("db", "text value");
	ck_assert_int_eq(
	    cli("version", "add", "db", "--value", "{\"a\":1}", NULL), 0);
	ck_assert_int_eq(cli("version", "add", "db", "--kv", "k=v", NULL), 0);
	up(NULL);
	assert_xattr("secrets/db/default", "user.secret.version", "3");
	assert_xattr("secrets/db/default", "user.secret.format", "kv");
	assert_xattr("secrets/db/versions/1", "user.secret.version", "1");
	assert_xattr("secrets/db/versions/1", "user.secret.format", "text");
	assert_xattr("secrets/db/versions/2", "user.secret.format", "json");
	assert_xattr("secrets/db/versions/1", "user.secret.version_state",
		     "active");
	assert_xattr_re("secrets/db/versions/1", "user.secret.created_at",
			TIME_RE);
	assert_xattr_re("secrets/db/versions/1", "user.secret.created_by",
			"^uid:");
	assert_xattr("secrets/db/versions/1", "user.kms.key_name", "service");
	assert_xattr("secrets/db/versions/1", "user.kms.key_type", "service");
	assert_xattr_err("secrets/db/versions/1", "user.secret.name", ENODATA);
	assert_xattr_err("secrets/db/versions/1", "user.secret.status",
			 ENODATA);
}
END_TEST

/* A kv/ entry is a value file: the default version's attributes. */
START_TEST(get_kv_entry)
{
	mk("db", "text value");
	ck_assert_int_eq(cli("version", "add", "db", "--kv", "k=v", NULL), 0);
	up(NULL);
	assert_xattr("secrets/db/kv/k", "user.secret.version", "2");
	assert_xattr("secrets/db/kv/k", "user.secret.format", "kv");
	assert_xattr("secrets/db/kv/k", "user.secret.version_state", "active");
	assert_xattr("secrets/db/kv/k", "user.kms.key_name", "service");
	assert_xattr_re("secrets/db/kv/k", "user.secret.created_by", "^uid:");
	assert_xattr_err("secrets/db/kv/k", "user.secret.name", ENODATA);
	ck_assert_int_eq(
	    xset("secrets/db/kv/k", "user.secret.version_state", "active"),
	    EPERM);
}
END_TEST

START_TEST(get_no_default)
{
	up(NULL);
	ck_assert_int_eq(mkdir(P("secrets/e"), 0755), 0);
	assert_xattr_err("secrets/e", "user.secret.default_version", ENODATA);
}
END_TEST

START_TEST(size_probe_and_erange)
{
	char small[2];

	mk("db", "v");
	up(NULL);
	ck_assert_int_eq(getxattr(P("secrets/db"), "user.secret.name", NULL, 0),
			 2);
	ck_assert_int_eq(ERR(getxattr(P("secrets/db"), "user.secret.status",
				      small, sizeof(small))),
			 ERANGE);
	ck_assert_int_gt(listxattr(P("secrets/db"), NULL, 0), 0);
	ck_assert_int_eq(ERR(listxattr(P("secrets/db"), small, sizeof(small))),
			 ERANGE);
}
END_TEST

static int has_name(const char *list, ssize_t n, const char *name)
{
	ssize_t i = 0;

	while (i < n) {
		if (!strcmp(list + i, name))
			return 1;
		i += (ssize_t)strlen(list + i) + 1;
	}
	return 0;
}

START_TEST(list_names)
{
	char list[4096];
	ssize_t n;

	mk("db", "v");
	up(NULL);
	n = listxattr(P("secrets/db"), list, sizeof(list));
	ck_assert_int_gt(n, 0);
	ck_assert(has_name(list, n, "user.secret.id"));
	ck_assert(has_name(list, n, "user.secret.status"));
	ck_assert(has_name(list, n, "user.secret.default_version"));
	ck_assert(has_name(list, n, "user.kms.key_state"));
	ck_assert(!has_name(list, n, "user.secret.version"));
	n = listxattr(P("secrets/db/default"), list, sizeof(list));
	ck_assert(has_name(list, n, "user.secret.version"));
	ck_assert(has_name(list, n, "user.secret.format"));
	ck_assert(!has_name(list, n, "user.secret.name"));
}
END_TEST

START_TEST(set_description_status)
{
	mk("db", "v");
	up(NULL);
	ck_assert_int_eq(xset("secrets/db", "user.secret.description", "new"),
			 0);
	assert_xattr("secrets/db", "user.secret.description", "new");
	ck_assert_int_eq(
	    xset("secrets/db", "user.secret.status", "deactivated"), 0);
	assert_xattr("secrets/db", "user.secret.status", "deactivated");
	ck_assert_int_eq(ERR(open(P("secrets/db/default"), O_RDONLY)),
			 EKEYREVOKED);
	ck_assert_int_eq(xset("secrets/db", "user.secret.status", "active"), 0);
	assert_xattr("secrets/db", "user.secret.status", "active");
	ck_assert_int_eq(xset("secrets/db", "user.secret.status", "on"),
			 EINVAL);
	ck_assert_int_eq(xset("secrets/db", "user.secret.status", "active\n"),
			 EINVAL);
}
END_TEST

START_TEST(set_access_control)
{
	mk("db", "v");
	up(NULL);
	ck_assert_int_eq(
	    xset("secrets/db", "user.secret.access_control", "enabled"), 0);
	assert_xattr("secrets/db", "user.secret.access_control", "enabled");
	ck_assert_int_eq(
	    xset("secrets/db", "user.secret.access_control", "yes"), EINVAL);
	ck_assert_int_eq(xset("secrets/db", "user.secret.allowed_principals",
			      "uid:1234,gid:55"),
			 0);
	assert_xattr("secrets/db", "user.secret.allowed_principals",
		     "uid:1234,gid:55");
	ck_assert_int_eq(
	    xset("secrets/db", "user.secret.allowed_principals", "bogus:1"),
	    EINVAL);
	/* a bare name is user:NAME, as on the command line */
	ck_assert_int_eq(xset("secrets/db", "user.secret.allowed_principals",
			      "root,group:root"),
			 0);
	assert_xattr("secrets/db", "user.secret.allowed_principals",
		     "uid:0,gid:0");
}
END_TEST

/* version_state takes each state it shows; destroyed is rm versions/N:
 * refused while the version and its secret are active (EBUSY); once
 * deactivated (the default moves to the newest active one) it vanishes. */
START_TEST(set_version_state_destroyed)
{
	struct stat st;

	mk("db", "one");
	ck_assert_int_eq(cli("version", "add", "db", "--value", "two", NULL),
			 0);
	up(NULL);
	ck_assert_int_eq(
	    xset("secrets/db/versions/2", "user.secret.version_state", "gone"),
	    EINVAL);
	ck_assert_int_eq(xset("secrets/db/versions/2",
			      "user.secret.version_state", "destroyed"),
			 EBUSY);
	assert_reads("secrets/db/versions/2", "two");
	ck_assert_int_eq(xset("secrets/db/versions/2",
			      "user.secret.version_state", "deactivated"),
			 0);
	ck_assert_int_eq(xset("secrets/db/versions/2",
			      "user.secret.version_state", "destroyed"),
			 0);
	ck_assert_int_eq(ERR(stat(P("secrets/db/versions/2"), &st)), ENOENT);
	assert_xattr("secrets/db", "user.secret.default_version", "1");
	assert_reads("secrets/db/default", "one");
}
END_TEST

START_TEST(set_default_version)
{
	mk("db", "v1");
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v2", NULL), 0);
	up(NULL);
	ck_assert_int_eq(xset("secrets/db", "user.secret.default_version", "1"),
			 0);
	assert_xattr("secrets/db", "user.secret.default_version", "1");
	assert_reads("secrets/db/default", "v1");
	ck_assert_int_eq(xset("secrets/db", "user.secret.default_version", "x"),
			 EINVAL);
	ck_assert_int_eq(xset("secrets/db/versions/2",
			      "user.secret.version_state", "deactivated"),
			 0);
	assert_xattr("secrets/db/versions/2", "user.secret.version_state",
		     "deactivated");
	/* an inactive version cannot be the default */
	ck_assert_int_eq(xset("secrets/db", "user.secret.default_version", "2"),
			 EINVAL);
	ck_assert_int_eq(
	    xset("secrets/db/versions/2", "user.secret.version_state", "gone"),
	    EINVAL);
	ck_assert_int_eq(xset("secrets/db/versions/2",
			      "user.secret.version_state", "active"),
			 0);
}
END_TEST

START_TEST(set_kms_key)
{
	mk("db", "v");
	ck_assert_int_eq(cli("key", "create", "k1", NULL), 0);
	up(NULL);
	ck_assert_int_eq(xset("secrets/db", "user.kms.key_id", "k1"), 0);
	assert_xattr("secrets/db", "user.kms.key_name", "k1");
	assert_xattr("secrets/db", "user.kms.key_type", "user");
	/* the old version keeps the key that wrapped it */
	assert_xattr("secrets/db/versions/1", "user.kms.key_name", "service");
	ck_assert_int_eq(put_s("secrets/db/default", O_WRONLY | O_TRUNC, "w"),
			 0);
	assert_xattr("secrets/db/versions/2", "user.kms.key_name", "k1");
	ck_assert_int_eq(cli("key", "deactivate", "k1", NULL), 0);
	ck_assert_int_eq(xset("secrets/db", "user.kms.key_id", "service"), 0);
	ck_assert_int_eq(cli("key", "create", "k2", NULL), 0);
	ck_assert_int_eq(cli("key", "deactivate", "k2", NULL), 0);
	ck_assert_int_eq(xset("secrets/db", "user.kms.key_id", "k2"), ENOKEY);
}
END_TEST

START_TEST(set_refused)
{
	mk("db", "v");
	up(NULL);
	ck_assert_int_eq(xset("secrets/db", "user.secret.id", "x"), EPERM);
	ck_assert_int_eq(xset("secrets/db", "user.secret.name", "x"), EPERM);
	ck_assert_int_eq(xset("secrets/db", "user.secret.latest_version", "1"),
			 EPERM);
	ck_assert_int_eq(xset("secrets/db", "user.kms.key_name", "x"), EPERM);
	ck_assert_int_eq(xset("secrets/db", "user.other", "x"), EPERM);
	ck_assert_int_eq(
	    xset("secrets/db/default", "user.secret.version_state", "active"),
	    EPERM);
	ck_assert_int_eq(
	    xset("secrets/db/versions/1", "user.secret.format", "text"), EPERM);
	ck_assert_int_eq(
	    xset("keys/service", "user.kms.key_state", "deactivated"), EPERM);
	ck_assert_int_eq(
	    ERR(removexattr(P("secrets/db"), "user.secret.description")),
	    EPERM);
	ck_assert_int_eq(ERR(removexattr(P("secrets/db"), "user.other")),
			 EPERM);
}
END_TEST

static int xset_flags(const char *rel, const char *name, const char *v,
		      int flags)
{
	return ERR(setxattr(P(rel), name, v, strlen(v), flags));
}

/* Finding 13: XATTR_CREATE on an attribute that has a value is EEXIST,
 * XATTR_REPLACE on one that has none ENODATA; neither changes anything. */
START_TEST(finding13_xattr_create_replace_flags)
{
	mk("db", "v");
	up(NULL);
	ck_assert_int_eq(mkdir(P("secrets/empty"), 0755), 0);
	ck_assert_int_eq(xset_flags("secrets/db", "user.secret.description",
				    "new", XATTR_CREATE),
			 EEXIST);
	assert_xattr("secrets/db", "user.secret.description", "");
	ck_assert_int_eq(xset_flags("secrets/empty",
				    "user.secret.default_version", "1",
				    XATTR_REPLACE),
			 ENODATA);
	ck_assert_int_eq(xset_flags("secrets/db", "user.other", "x",
				    XATTR_REPLACE),
			 ENODATA);
	assert_xattr_err("secrets/empty", "user.secret.default_version",
			 ENODATA);
	ck_assert_int_eq(xset_flags("secrets/db", "user.secret.description",
				    "new", XATTR_REPLACE),
			 0);
	assert_xattr("secrets/db", "user.secret.description", "new");
}
END_TEST

static Suite *mount_xattr_suite(void)
{
	const TTest *const tests[] = {
	    get_secret_dir,	   get_value_files,	get_no_default,
	    size_probe_and_erange, list_names,		set_description_status,
	    set_access_control,	   set_default_version, set_kms_key,
	    set_refused,	   get_kv_entry,	set_version_state_destroyed,
	    finding13_xattr_create_replace_flags,
	};

	return h_suite("mount_xattr", tests, sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_xattr_suite, .fork = CK_FORK};
