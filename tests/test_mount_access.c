/*
 * Mount tests for identity and options: other uids through allow_other
 * (mode bits, roles, access control and its partial view, root without
 * exemption), and the ro, only= and cache= mounts. Switching uid needs
 * root; without it those tests say SKIPPED rather than pass.
 */
#include <dirent.h>

#include "mount_harness.h"

#define OTHER 4321

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

/* Child bodies: return 0 or the errno that stopped them. */
static int stat_default(void *arg)
{
	char rel[300];
	struct stat st;

	snprintf(rel, sizeof(rel), "secrets/%s/default", (const char *)arg);
	return ERR(stat(P(rel), &st));
}

static int make_secret(void *arg)
{
	char rel[300];

	snprintf(rel, sizeof(rel), "secrets/%s", (const char *)arg);
	return ERR(mkdir(P(rel), 0755));
}

static int write_default(void *arg)
{
	char rel[300];

	snprintf(rel, sizeof(rel), "secrets/%s/default", (const char *)arg);
	return put_s(rel, O_WRONLY | O_TRUNC, "by other");
}

static int read_key(void *arg)
{
	char *got;
	size_t len;
	int e = slurp("keys/service", &got, &len);

	(void)arg;
	free(got);
	return e;
}

/* The partial view: the five public attributes, EACCES for the rest. */
static int partial_view(void *arg)
{
	const char *v;
	size_t n;

	(void)arg;
	if (!(v = xget("secrets/acl", "user.secret.name")) || strcmp(v, "acl"))
		return 1;
	if (!(v = xget("secrets/acl", "user.secret.description")) ||
	    strcmp(v, "locked"))
		return 2;
	if (!(v = xget("secrets/acl", "user.secret.access_control")) ||
	    strcmp(v, "enabled"))
		return 3;
	if (!xget("secrets/acl", "user.secret.created_at") ||
	    !xget("secrets/acl", "user.secret.created_by"))
		return 4;
	v = xget("secrets/acl", "user.secret.id");
	n = v ? strlen(v) : 0;
	if (n != 13 || strcmp(v + 8, "-****"))
		return 5;
	if (xget("secrets/acl", "user.secret.status") || errno != EACCES)
		return 6;
	if (xget("secrets/acl", "user.secret.default_version") ||
	    errno != EACCES)
		return 7;
	if (xget("secrets/acl", "user.kms.key_id") || errno != EACCES)
		return 8;
	if (xget("secrets/acl/default", "user.secret.version") ||
	    errno != EACCES)
		return 9;
	if (opendir(P("secrets/acl/versions")) || errno != EACCES)
		return 11;
	if (opendir(P("secrets/acl/kv")) || errno != EACCES)
		return 12;
	return read_default("acl") == EACCES ? 0 : 10;
}

/*
 * One process, two reads: in group 777, then after dropping it. The
 * daemon keeps the caller's /proc status file open between requests
 * (fs/daemon/fuse_caller.c): the second read must still see the new groups.
 */
static int groups_change_between_reads(void *arg)
{
	gid_t g = 777;
	int first, second;

	(void)arg;
	if (setgroups(1, &g) || setgid(OTHER) || setresuid(OTHER, OTHER, 0))
		return 100;
	first = read_default((void *)"grp");
	if (seteuid(0) || setgroups(0, NULL) || seteuid(OTHER))
		return 101;
	second = read_default((void *)"grp");
	if (first)
		return 1; /* in group 777: must read */
	return second == EACCES ? 0 : 2;
}

START_TEST(groups_reread_per_request)
{
	NEED_ROOT();
	mk("grp", "v");
	up("allow_other");
	ck_assert_int_eq(chown(P("secrets/grp"), 0, 777), 0);
	ck_assert_int_eq(chmod(P("secrets/grp"), 0440), 0);
	ck_assert_int_eq(as_user(0, 0, groups_change_between_reads, NULL), 0);
}
END_TEST

START_TEST(other_mode_bits)
{
	NEED_ROOT();
	mk("db", "v");
	up("allow_other");
	/* 0440 root:root: others may not read */
	ck_assert_int_eq(as_user(OTHER, OTHER, read_default, "db"), EACCES);
	/* names and stat are public */
	ck_assert_int_eq(as_user(OTHER, OTHER, stat_default, "db"), 0);
	ck_assert_int_eq(chmod(P("secrets/db"), 0444), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_default, "db"), 0);
	ck_assert_int_eq(chmod(P("secrets/db"), 0440), 0);
	ck_assert_int_eq(chown(P("secrets/db"), 0, OTHER), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_default, "db"), 0);
	ck_assert_int_eq(chown(P("secrets/db"), OTHER, 0), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_default, "db"), 0);
}
END_TEST

START_TEST(other_roles)
{
	NEED_ROOT();
	mk("db", "v");
	up("allow_other");
	ck_assert_int_eq(as_user(OTHER, OTHER, make_secret, "mine"), EACCES);
	ck_assert_int_eq(as_user(OTHER, OTHER, write_default, "db"), EACCES);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_key, NULL), EACCES);
	ck_assert_int_eq(cli("role", "grant", "manager", "uid:4321", NULL), 0);
	ck_assert_int_eq(cli("role", "grant", "kms-viewer", "uid:4321", NULL),
			 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, make_secret, "mine"), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, write_default, "db"), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_key, NULL), 0);
	assert_reads("secrets/db/default", "by other");
}
END_TEST

static int change_key(void *arg)
{
	return ERR(
	    setxattr(P("secrets/db"), "user.kms.key_id", arg, strlen(arg), 0));
}

START_TEST(other_kms_user)
{
	NEED_ROOT();
	mk("db", "v");
	ck_assert_int_eq(cli("key", "create", "k1", NULL), 0);
	ck_assert_int_eq(cli("role", "grant", "manager", "uid:4321", NULL), 0);
	up("allow_other");
	ck_assert_int_eq(as_user(OTHER, OTHER, change_key, "k1"), EACCES);
	ck_assert_int_eq(cli("role", "grant", "kms-user", "uid:4321", NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, change_key, "k1"), 0);
	assert_xattr("secrets/db", "user.kms.key_name", "k1");
}
END_TEST

/* Finding 12: moving a secret off a user key (onto the service key, to
 * add versions past a deactivated user key) needs kms-user too. */
START_TEST(finding12_change_key_away_from_user_key)
{
	NEED_ROOT();
	mk("db", "v");
	ck_assert_int_eq(cli("key", "create", "k1", NULL), 0);
	ck_assert_int_eq(cli("secret", "change-key", "db", "k1", NULL), 0);
	ck_assert_int_eq(cli("role", "grant", "manager", "uid:4321", NULL), 0);
	up("allow_other");
	ck_assert_int_eq(as_user(OTHER, OTHER, change_key, "service"), EACCES);
	assert_xattr("secrets/db", "user.kms.key_name", "k1");
	ck_assert_int_eq(cli("role", "grant", "kms-user", "uid:4321", NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, change_key, "service"), 0);
	assert_xattr("secrets/db", "user.kms.key_name", "service");
}
END_TEST

START_TEST(other_role_through_group)
{
	NEED_ROOT();
	up("allow_other");
	ck_assert_int_eq(cli("role", "grant", "manager", "gid:777", NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, make_secret, "a"), EACCES);
	ck_assert_int_eq(as_user_in(OTHER, OTHER, 777, make_secret, "b"), 0);
}
END_TEST

static int stage(void *arg)
{
	(void)arg;
	return put_s("secrets/db/.mine", O_WRONLY | O_CREAT, "staged");
}

static int see_staged(void *arg)
{
	struct stat st;

	(void)arg;
	return ERR(stat(P("secrets/db/.mine"), &st));
}

/* The staged file is its creator's: uid and gid, as ls -l shows. */
static int staged_owner(void *arg)
{
	struct stat st;

	(void)arg;
	if (put_s("secrets/db/.mine", O_WRONLY | O_CREAT, "staged"))
		return 1;
	if (stat(P("secrets/db/.mine"), &st))
		return 2;
	if (st.st_uid != OTHER)
		return 3;
	return st.st_gid == OTHER + 1 ? 0 : 4;
}

START_TEST(staged_owned_by_creator)
{
	NEED_ROOT();
	mk("db", "v");
	ck_assert_int_eq(cli("role", "grant", "manager", "uid:4321", NULL), 0);
	up("allow_other");
	ck_assert_int_eq(as_user(OTHER, OTHER + 1, staged_owner, NULL), 0);
}
END_TEST

START_TEST(staged_private_to_uid)
{
	struct stat st;

	NEED_ROOT();
	mk("db", "v");
	ck_assert_int_eq(cli("role", "grant", "manager", "uid:4321", NULL), 0);
	up("allow_other");
	ck_assert_int_eq(as_user(OTHER, OTHER, stage, NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, see_staged, NULL), 0);
	/* not even root sees another uid's staged file */
	ck_assert_int_eq(ERR(stat(P("secrets/db/.mine"), &st)), ENOENT);
	ck_assert_int_eq(
	    ERR(rename(P("secrets/db/.mine"), P("secrets/db/default"))),
	    ENOENT);
	assert_reads("secrets/db/default", "v");
}
END_TEST

/* Staging is writing default: without the manager role the create is
 * refused with the errno opening default for writing gives, and nothing
 * is left staged. */
START_TEST(staged_needs_role)
{
	NEED_ROOT();
	mk("db", "v");
	up("allow_other");
	ck_assert_int_eq(as_user(OTHER, OTHER, write_default, "db"), EACCES);
	ck_assert_int_eq(as_user(OTHER, OTHER, stage, NULL), EACCES);
	ck_assert_int_eq(as_user(OTHER, OTHER, see_staged, NULL), ENOENT);
	ck_assert_int_eq(cli("role", "grant", "manager", "uid:4321", NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, stage, NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, see_staged, NULL), 0);
}
END_TEST

START_TEST(access_control_partial_view)
{
	NEED_ROOT();
	ck_assert_int_eq(cli("secret", "create", "acl", "--description",
			     "locked", "--access-control", "--value", "s",
			     NULL),
			 0);
	ck_assert_int_eq(cli("secret", "update", "acl", "--mode", "0444", NULL),
			 0);
	up("allow_other");
	ck_assert_int_eq(as_user(OTHER, OTHER, partial_view, NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, stat_default, "acl"), EACCES);
	ck_assert_int_eq(
	    cli("secret", "update", "acl", "--allow", "uid:4321", NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_default, "acl"), 0);
}
END_TEST

START_TEST(access_control_root_no_exemption)
{
	NEED_ROOT();
	ck_assert_int_eq(cli("secret", "create", "acl", "--access-control",
			     "--value", "s", NULL),
			 0);
	ck_assert_int_eq(
	    cli("secret", "update", "acl", "--owner", "4321", NULL), 0);
	up("allow_other");
	ck_assert_int_eq(ERR(open(P("secrets/acl/default"), O_RDONLY)), EACCES);
	assert_xattr_err("secrets/acl", "user.secret.status", EACCES);
	/* the owner is always on the list */
	ck_assert_int_eq(as_user(OTHER, OTHER, read_default, "acl"), 0);
}
END_TEST

static int stat_rel(void *arg)
{
	struct stat st;

	return ERR(stat(P(arg), &st));
}

static int read_dbpass(void *arg)
{
	char *got;
	size_t len;
	int e = slurp("secrets/db/kv/dbpass", &got, &len);

	(void)arg;
	if (!e && strcmp(got, "hunter2"))
		e = 200; /* wrong bytes */
	free(got);
	return e;
}

/* An access-controlled JSON secret that OTHER may read and OTHER + 1 not;
 * OTHER reads kv/dbpass, then OTHER + 1 asks for it and for default:
 * the kernel must not answer from what it kept of OTHER's lookups. */
static void kv_cache_leak(const char *opts)
{
	ck_assert_int_eq(cli("secret", "create", "db", "--access-control",
			     "--value", "{\"dbpass\":\"hunter2\"}", NULL),
			 0);
	ck_assert_int_eq(cli("secret", "update", "db", "--allow", "uid:4321",
			     "--mode", "0444", NULL),
			 0);
	up(opts);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_dbpass, NULL), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, stat_rel, "secrets/db/default"),
			 0);
	ck_assert_int_eq(
	    as_user(OTHER + 1, OTHER + 1, stat_rel, "secrets/db/kv/dbpass"),
	    EACCES);
	ck_assert_int_eq(
	    as_user(OTHER + 1, OTHER + 1, stat_rel, "secrets/db/default"),
	    EACCES);
	ck_assert_int_eq(as_user(OTHER + 1, OTHER + 1, read_dbpass, NULL),
			 EACCES);
	/* and the allowed user still reads */
	ck_assert_int_eq(as_user(OTHER, OTHER, read_dbpass, NULL), 0);
}

/* Finding 4: kv/ names and sizes leaked through the kernel's entry
 * cache (10 s; 60 s with cache=kernel). */
START_TEST(finding4_kv_entry_cache_leak)
{
	NEED_ROOT();
	kv_cache_leak("allow_other");
}
END_TEST

START_TEST(finding4_kv_entry_cache_leak_kernel)
{
	NEED_ROOT();
	kv_cache_leak("allow_other,cache=kernel");
}
END_TEST

/* Finding 6: stat versions/N told a caller outside the partial view which
 * versions exist, their sizes and times; default's told the default. */
START_TEST(finding6_version_probing)
{
	static const char *const probes[] = {
	    "secrets/acl/default",     "secrets/acl/versions/1",
	    "secrets/acl/versions/2",  "secrets/acl/versions/3",
	    "secrets/acl/versions/99", "secrets/acl/kv/k"};
	size_t i;

	NEED_ROOT();
	ck_assert_int_eq(cli("secret", "create", "acl", "--access-control",
			     "--value", "one", NULL),
			 0);
	ck_assert_int_eq(
	    cli("version", "add", "acl", "--value", "second", NULL), 0);
	ck_assert_int_eq(
	    cli("version", "add", "acl", "--value", "{\"k\":1}", NULL), 0);
	ck_assert_int_eq(cli("secret", "update", "acl", "--mode", "0444", NULL),
			 0);
	up("allow_other");
	/* the owner (root) is on the list: it sees them, and the kernel
	 * has them cached now */
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(stat_rel((void *)probes[i]), 0);
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		ck_assert_msg(as_user(OTHER, OTHER, stat_rel,
				      (void *)probes[i]) == EACCES,
			      "%s", probes[i]);
	ck_assert_int_eq(
	    as_user(OTHER, OTHER, stat_rel, "secrets/acl/versions/x"), ENOENT);
	ck_assert_int_eq(
	    cli("secret", "update", "acl", "--allow", "uid:4321", NULL), 0);
	ck_assert_int_eq(
	    as_user(OTHER, OTHER, stat_rel, "secrets/acl/versions/2"), 0);
	ck_assert_int_eq(
	    as_user(OTHER, OTHER, stat_rel, "secrets/acl/versions/99"), ENOENT);
}
END_TEST

/* access(2) in a child: the path and the mode to ask. */
struct acc {
	const char *rel;
	int mode;
};

static int do_access(void *arg)
{
	const struct acc *a = arg;

	return ERR(access(P(a->rel), a->mode));
}

static int acc_as(uid_t uid, const char *rel, int mode)
{
	struct acc a = {rel, mode};

	return as_user(uid, uid, do_access, &a);
}

static off_t audit_size(void)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof(path), "%s/audit.log", h_store);
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/* test -r answers what open() would, and is not itself an audited read. */
START_TEST(access_read_follows_open)
{
	off_t before;

	NEED_ROOT();
	mk("db", "v");
	ck_assert_int_eq(cli("secret", "create", "acl", "--access-control",
			     "--value", "{\"k\":\"s\"}", NULL),
			 0);
	up("allow_other");
	before = audit_size();
	/* 0440 root:root: open() gives EACCES, so does access() */
	ck_assert_int_eq(as_user(OTHER, OTHER, read_default, "db"), EACCES);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/default", R_OK), EACCES);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/versions/1", R_OK), EACCES);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/default", F_OK), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/default", X_OK), EACCES);
	/* names are public */
	ck_assert_int_eq(acc_as(OTHER, "secrets", R_OK | X_OK), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db", R_OK | X_OK), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/versions", R_OK), 0);
	/* an access-controlled secret: its listings are refused as well */
	ck_assert_int_eq(acc_as(OTHER, "secrets/acl/default", R_OK), EACCES);
	ck_assert_int_eq(acc_as(OTHER, "secrets/acl/versions", R_OK), EACCES);
	ck_assert_int_eq(acc_as(OTHER, "secrets/acl/kv", R_OK), EACCES);
	ck_assert_int_eq(ERR(access(P("secrets/db/default"), R_OK)), 0);
	/* the owner (root, its creator) is on the list */
	ck_assert_int_eq(ERR(access(P("secrets/acl/kv/k"), R_OK)), 0);
	/* audited: the open and the lookup of kv/k; access() adds none */
	ck_assert_int_eq(audit_size() > before, 1);
	before = audit_size();
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/default", R_OK), EACCES);
	ck_assert_int_eq(ERR(access(P("secrets/db/default"), R_OK)), 0);
	ck_assert_int_eq(audit_size(), before);
	ck_assert_int_eq(chmod(P("secrets/db"), 0444), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/default", R_OK), 0);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_default, "db"), 0);
}
END_TEST

/* test -w answers what open() for writing (or mkdir) would. */
START_TEST(access_write_follows_open)
{
	NEED_ROOT();
	mk("db", "v");
	mk("j", "{\"k\":\"v\"}");
	mk("off", "v");
	ck_assert_int_eq(cli("secret", "deactivate", "off", NULL), 0);
	up("allow_other");
	ck_assert_int_eq(as_user(OTHER, OTHER, write_default, "db"), EACCES);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/default", W_OK), EACCES);
	ck_assert_int_eq(acc_as(OTHER, "secrets", W_OK), EACCES);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db", W_OK), EACCES);
	ck_assert_int_eq(cli("role", "grant", "manager", "uid:4321", NULL), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/default", W_OK), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets", W_OK), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db", W_OK), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/versions", W_OK), 0);
	/* an existing version never changes; kv/ and keys/ take nothing */
	ck_assert_int_eq(ERR(access(P("secrets/db/versions/1"), W_OK)), EPERM);
	ck_assert_int_eq(ERR(access(P("secrets/j/kv"), W_OK)), EACCES);
	ck_assert_int_eq(ERR(access(P("secrets/db/kv"), W_OK)), ENOENT);
	ck_assert_int_eq(ERR(access(P("keys"), W_OK)), EACCES);
	/* a deactivated secret: the errno opening default would give */
	ck_assert_int_eq(
	    ERR(open(P("secrets/off/default"), O_WRONLY | O_TRUNC)),
	    EKEYREVOKED);
	ck_assert_int_eq(ERR(access(P("secrets/off/default"), W_OK)),
			 EKEYREVOKED);
	ck_assert_int_eq(ERR(access(P("secrets/db/default"), R_OK | W_OK)), 0);
}
END_TEST

START_TEST(access_ro_mount)
{
	NEED_ROOT();
	mk("db", "v");
	up("ro,allow_other");
	ck_assert_int_eq(ERR(access(P("secrets/db/default"), W_OK)), EROFS);
	ck_assert_int_eq(ERR(access(P("secrets"), W_OK)), EROFS);
	ck_assert_int_eq(ERR(access(P("secrets/db/default"), R_OK)), 0);
	ck_assert_int_eq(acc_as(OTHER, "secrets/db/default", R_OK), EACCES);
}
END_TEST

START_TEST(ro_mount)
{
	int fd;

	mk("db", "v");
	up("ro");
	assert_reads("secrets/db/default", "v");
	ck_assert_int_eq(ERR(mkdir(P("secrets/x"), 0755)), EROFS);
	ck_assert_int_eq(ERR(open(P("secrets/db/default"), O_WRONLY | O_TRUNC)),
			 EROFS);
	ck_assert_int_eq(ERR(setxattr(P("secrets/db"), "user.secret.status",
				      "deactivated", 11, 0)),
			 EROFS);
	ck_assert_int_eq(ERR(unlink(P("secrets/db/versions/1"))), EROFS);
	ck_assert_int_eq(ERR(rmdir(P("secrets/db"))), EROFS);
	ck_assert_int_eq(ERR(chmod(P("secrets/db"), 0400)), EROFS);
	fd = open(P("secrets/db/.tmp"), O_WRONLY | O_CREAT, 0600);
	ck_assert_int_eq(fd < 0 ? errno : 0, EROFS);
	assert_xattr("secrets/db", "user.secret.status", "active");
}
END_TEST

START_TEST(only_hides)
{
	struct stat st;
	char *got;
	size_t len;

	mk("app-one", "1");
	mk("app-two", "2");
	mk("db", "3");
	up("ro,only=app-*:nothing");
	ck_assert_int_eq(stat(P("secrets/app-one/default"), &st), 0);
	assert_reads("secrets/app-two/default", "2");
	ck_assert_int_eq(ERR(stat(P("secrets/db"), &st)), ENOENT);
	ck_assert_int_eq(slurp("secrets/db/default", &got, &len), ENOENT);
	ck_assert_ptr_null(xget("secrets/db", "user.secret.name"));
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(only_listing)
{
	char *s;
	size_t len;

	mk("app-one", "1");
	mk("db", "3");
	up("only=app-*");
	ck_assert_int_eq(slurp(".status", &s, &len), 0);
	ck_assert_ptr_nonnull(strstr(s, "\"only\": \"app-*\""));
	free(s);
	ck_assert_int_eq(ERR(mkdir(P("secrets/hidden"), 0755)), EPERM);
}
END_TEST

static void cache_mode(const char *opts)
{
	char buf[64];
	int fd;

	mk("db", "first");
	up(opts);
	assert_reads("secrets/db/default", "first");
	assert_reads("secrets/db/default", "first");
	fd = open(P("secrets/db/default"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	    cli("version", "add", "db", "--value", "second, longer", NULL), 0);
	/* a new version is seen at the next open, in every mode */
	assert_reads("secrets/db/default", "second, longer");
	if (strcmp(opts, "cache=kernel")) {
		ck_assert_int_eq(
		    put_s("secrets/db/default", O_WRONLY | O_TRUNC, "3"), 0);
		assert_reads("secrets/db/default", "3");
	} else { /* value files are read-only there */
		ck_assert_int_eq(
		    put_s("secrets/db/default", O_WRONLY | O_TRUNC, "3"),
		    EROFS);
	}
	ck_assert_int_ge(read(fd, buf, sizeof(buf)), 0);
	close(fd);
}

START_TEST(cache_open)
{
	cache_mode("cache=open");
}
END_TEST

START_TEST(cache_kernel)
{
	cache_mode("cache=kernel");
}
END_TEST

START_TEST(audit_off)
{
	char path[600];
	struct stat st;
	off_t before;

	mk("db", "v");
	snprintf(path, sizeof(path), "%s/audit.log", h_store);
	ck_assert_int_eq(stat(path, &st), 0);
	before = st.st_size;
	up("audit=off");
	assert_reads("secrets/db/default", "v");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, before);
}
END_TEST

static Suite *mount_access_suite(void)
{
	const TTest *const tests[] = {
	    other_mode_bits,
	    groups_reread_per_request,
	    other_roles,
	    other_kms_user,
	    finding12_change_key_away_from_user_key,
	    other_role_through_group,
	    staged_private_to_uid,
	    staged_owned_by_creator,
	    staged_needs_role,
	    access_control_partial_view,
	    access_control_root_no_exemption,
	    finding4_kv_entry_cache_leak,
	    finding4_kv_entry_cache_leak_kernel,
	    finding6_version_probing,
	    access_read_follows_open,
	    access_write_follows_open,
	    access_ro_mount,
	    ro_mount,
	    only_hides,
	    only_listing,
	    cache_open,
	    cache_kernel,
	    audit_off,
	};

	return h_suite("mount_access", tests, sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_access_suite, .fork = CK_FORK};
