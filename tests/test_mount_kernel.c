/*
 * Mount tests for the cached modes (SPEC §3 cache=kernel and cache=open):
 * a change made by the CLI is seen at the very next open, every time; in
 * cache=kernel the kernel enforces the access-control allow list (POSIX
 * ACLs built by the daemon) and value files are read-only (EROFS); a
 * deleted secret leaves the mount at once; secrets/'s listing, cached
 * by the kernel, follows creations and deletions. Switching uid needs
 * root; without it those tests say SKIPPED rather than pass.
 */
#include <dirent.h>

#include "mount_harness.h"

#define ALLOWED	 4321
#define STRANGER 4322
#define GROUPED	 4323
#define GROUP	 4400

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

static int read_db(void *arg)
{
	char *got;
	size_t len;
	int e = slurp("secrets/db/default", &got, &len);

	if (!e && strcmp(got, (const char *)arg))
		e = 200; /* wrong bytes */
	free(got);
	return e;
}

static int write_db(void *arg)
{
	(void)arg;
	return put_s("secrets/db/default", O_WRONLY | O_TRUNC, "x");
}

/* Is name listed in secrets/? */
static int listed(const char *name)
{
	DIR *d = opendir(P("secrets"));
	struct dirent *e;
	int found = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		found |= !strcmp(e->d_name, name);
	closedir(d);
	return found;
}

/* 200 times: the CLI adds a version, the next open through the mount
 * reads it (the writer waits for the daemon to drop the cached pages). */
static void versions_seen(const char *opts)
{
	char val[32];
	int i;

	mk("db", "v0");
	up(opts);
	assert_reads("secrets/db/default", "v0");
	for (i = 1; i <= 200; i++) {
		snprintf(val, sizeof(val), i % 2 ? "v%d" : "value %d", i);
		ck_assert_int_eq(
		    cli("version", "add", "db", "--value", val, NULL), 0);
		assert_reads("secrets/db/default", val);
	}
}

START_TEST(kernel_new_version_at_next_open)
{
	versions_seen("cache=kernel");
}
END_TEST

START_TEST(open_new_version_at_next_open)
{
	versions_seen("cache=open");
}
END_TEST

/* The default version moved through the mount's own xattr. */
START_TEST(kernel_default_moved_here)
{
	mk("db", "one");
	ck_assert_int_eq(cli("version", "add", "db", "--value", "two", NULL),
			 0);
	up("cache=kernel");
	assert_reads("secrets/db/default", "two");
	ck_assert_int_eq(
	    setxattr(P("secrets/db"), "user.secret.default_version", "1", 1, 0),
	    0);
	assert_reads("secrets/db/default", "one");
}
END_TEST

START_TEST(kernel_values_read_only)
{
	struct stat st;
	int fd;

	mk("db", "v");
	up("cache=kernel");
	ck_assert_int_eq(stat(P("secrets/db/default"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0222, 0);
	ck_assert_int_eq(put_s("secrets/db/default", O_WRONLY | O_TRUNC, "x"),
			 EROFS);
	/* root passes the kernel's check; the write itself is refused */
	fd = open(P("secrets/db/default"), O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ERR(write(fd, "x", 1)), EROFS);
	close(fd);
	ck_assert_int_eq(
	    put_s("secrets/db/versions/2", O_WRONLY | O_CREAT, "x"), EROFS);
	ck_assert_int_eq(put_s("secrets/db/.stage", O_WRONLY | O_CREAT, "x"),
			 EROFS);
	assert_reads("secrets/db/default", "v");
	/* the tree still changes */
	ck_assert_int_eq(mkdir(P("secrets/new"), 0755), 0);
	ck_assert_int_eq(
	    setxattr(P("secrets/db"), "user.secret.description", "d", 1, 0), 0);
	assert_xattr("secrets/db", "user.secret.description", "d");
}
END_TEST

START_TEST(kernel_write_by_other_refused)
{
	NEED_ROOT();
	mk("db", "v");
	ck_assert_int_eq(cli("secret", "update", "db", "--owner", "4321",
			     "--mode", "0600", NULL),
			 0);
	up("cache=kernel,allow_other");
	/* the owner reads, but may not write: no write bits in this mode */
	ck_assert_int_eq(as_user(ALLOWED, ALLOWED, read_db, "v"), 0);
	ck_assert_int_eq(as_user(ALLOWED, ALLOWED, write_db, NULL), EACCES);
}
END_TEST

START_TEST(kernel_allow_list)
{
	char allow[64];

	NEED_ROOT();
	mk("db", "top");
	snprintf(allow, sizeof(allow), "uid:%d,gid:%d", ALLOWED, GROUP);
	ck_assert_int_eq(cli("secret", "update", "db", "--access-control", "on",
			     "--allow", allow, "--mode", "0444", NULL),
			 0);
	up("cache=kernel,allow_other");
	ck_assert_int_eq(as_user(ALLOWED, ALLOWED, read_db, "top"), 0);
	/* once the value is in the page cache, too */
	ck_assert_int_eq(as_user(STRANGER, STRANGER, read_db, "top"), EACCES);
	ck_assert_int_eq(as_user_in(GROUPED, GROUPED, GROUP, read_db, "top"),
			 0);
	ck_assert_int_eq(as_user(GROUPED, GROUPED, read_db, "top"), EACCES);
	/* the list changes: the kernel's copy of the ACL follows */
	ck_assert_int_eq(
	    cli("secret", "update", "db", "--allow", "uid:4322", NULL), 0);
	ck_assert_int_eq(as_user(STRANGER, STRANGER, read_db, "top"), 0);
	ck_assert_int_eq(as_user(ALLOWED, ALLOWED, read_db, "top"), EACCES);
}
END_TEST

static int acl_of_db(void *arg)
{
	char buf[512];

	(void)arg;
	return ERR(getxattr(P("secrets/db/default"), "system.posix_acl_access",
			    buf, sizeof(buf)));
}

/* Finding 9: the ACL built from the allow list was readable by anyone;
 * a caller the list refuses now cannot look the value file up at all
 * (EACCES, the partial view), so it cannot read the ACL either. */
START_TEST(finding9_acl_hidden_from_refused)
{
	NEED_ROOT();
	mk("db", "top");
	ck_assert_int_eq(cli("secret", "update", "db", "--access-control", "on",
			     "--allow", "uid:4321", "--mode", "0444", NULL),
			 0);
	up("cache=kernel,allow_other");
	ck_assert_int_eq(as_user(ALLOWED, ALLOWED, read_db, "top"), 0);
	ck_assert_int_eq(as_user(ALLOWED, ALLOWED, acl_of_db, NULL), 0);
	ck_assert_int_eq(as_user(STRANGER, STRANGER, acl_of_db, NULL), EACCES);
}
END_TEST

/* A read that fills the page cache is checked and audited for its
 * reader, as an open is in the other modes. */
START_TEST(kernel_first_read_audited)
{
	char path[600], *log;

	NEED_ROOT();
	mk("db", "v");
	ck_assert_int_eq(cli("secret", "update", "db", "--mode", "0444", NULL),
			 0);
	up("cache=kernel,allow_other");
	ck_assert_int_eq(as_user(STRANGER, STRANGER, read_db, "v"), 0);
	snprintf(path, sizeof(path), "%s/audit.log", h_store);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_ptr_nonnull(strstr(log, "\"op\":\"version.read\""));
	ck_assert_ptr_nonnull(strstr(log, "\"uid\":4322"));
	free(log);
}
END_TEST

/* A deleted secret leaves the listing at once in every mode (an opendir
 * compares the store's generation); with cache=kernel, whose writers wait
 * for the daemon, its cached name also answers stat with ENOENT at once
 * (elsewhere the daemon's poller does it a moment later). */
static void deleted_leaves(const char *opts, int waited)
{
	struct stat st;

	mk("db", "v");
	ck_assert_int_eq(cli("secret", "create", "gone", NULL), 0);
	up(opts);
	ck_assert_int_eq(stat(P("secrets/gone"), &st), 0);
	ck_assert(listed("gone"));
	ck_assert_int_eq(cli("secret", "deactivate", "gone", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "delete", "gone", "--confirm", "gone", NULL), 0);
	if (waited)
		ck_assert_int_eq(ERR(stat(P("secrets/gone"), &st)), ENOENT);
	ck_assert(!listed("gone"));
	ck_assert(listed("db"));
	ck_assert_int_eq(cli("secret", "create", "born", NULL), 0);
	ck_assert(listed("born"));
	ck_assert_int_eq(stat(P("secrets/born"), &st), 0);
}

START_TEST(kernel_deleted_secret_leaves)
{
	deleted_leaves("cache=kernel", 1);
}
END_TEST

START_TEST(strict_listing_follows_changes)
{
	deleted_leaves(NULL, 0);
}
END_TEST

/* A change outside the secret's own record (its KMS key deactivated)
 * also drops the cached value: the next read asks the daemon. */
START_TEST(kernel_key_deactivated)
{
	char *got = NULL;

	ck_assert_int_eq(cli("key", "create", "k1", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "create", "db", "--key", "k1", "--value", "v", NULL),
	    0);
	ck_assert_int_eq(cli("secret", "create", "other", "--value", "o", NULL),
			 0);
	up("cache=kernel");
	assert_reads("secrets/db/default", "v");
	assert_reads("secrets/other/default", "o");
	ck_assert_int_eq(cli("key", "deactivate", "k1", NULL), 0);
	ck_assert_int_eq(slurp("secrets/db/default", &got, NULL), ENOKEY);
	free(got);
	assert_reads("secrets/other/default", "o");
}
END_TEST

/* With more nodes cached than the daemon drops wholesale (fuse_inval.c),
 * it drops only those of secrets that changed: every kind of change
 * still reaches the next open. */
#define MANY_KEYS 2100

START_TEST(kernel_many_nodes)
{
	char *json = malloc(MANY_KEYS * 16 + 8), *got = NULL, rel[64];
	char val[32];
	struct stat st;
	size_t len = 0;
	int i;

	ck_assert_ptr_nonnull(json);
	json[len++] = '{';
	for (i = 0; i < MANY_KEYS; i++)
		len += (size_t)sprintf(json + len, "%s\"k%04d\":\"1\"",
				       i ? "," : "", i);
	strcpy(json + len, "}");
	ck_assert_int_eq(cli("secret", "create", "big", "--value", json, NULL),
			 0);
	free(json);
	ck_assert_int_eq(cli("key", "create", "k1", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "create", "kd", "--key", "k1", "--value", "kv", NULL),
	    0);
	mk("db", "v0");
	ck_assert_int_eq(cli("secret", "create", "gone", NULL), 0);
	up("cache=kernel");
	for (i = 0; i < MANY_KEYS; i++) {
		snprintf(rel, sizeof(rel), "secrets/big/kv/k%04d", i);
		ck_assert_int_eq(stat(P(rel), &st), 0);
	}
	assert_reads("secrets/kd/default", "kv");
	ck_assert_int_eq(stat(P("secrets/gone"), &st), 0);
	for (i = 1; i <= 5; i++) {
		snprintf(val, sizeof(val), "v%d", i);
		assert_reads("secrets/big/kv/k0007", "1");
		ck_assert_int_eq(
		    cli("version", "add", "db", "--value", val, NULL), 0);
		assert_reads("secrets/db/default", val);
	}
	ck_assert_int_eq(cli("key", "deactivate", "k1", NULL), 0);
	ck_assert_int_eq(slurp("secrets/kd/default", &got, NULL), ENOKEY);
	free(got);
	ck_assert_int_eq(cli("secret", "deactivate", "gone", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "delete", "gone", "--confirm", "gone", NULL), 0);
	ck_assert_int_eq(ERR(stat(P("secrets/gone"), &st)), ENOENT);
	ck_assert(!listed("gone"));
}
END_TEST

/* A large store with a hundred-odd nodes cached: after its first
 * listing the poller drops every cached node rather than list the store
 * again at each change (fuse_inval.c); every change still reaches the
 * next open, through either path. */
#define BIG_STORE 600
#define CACHED	  40

START_TEST(kernel_few_nodes_in_large_store)
{
	char rel[64], val[32];
	struct stat st;
	int i;

	up(NULL);
	for (i = 0; i < BIG_STORE; i++) {
		snprintf(rel, sizeof(rel), "secrets/s%04d", i);
		ck_assert_int_eq(mkdir(P(rel), 0700), 0);
	}
	down();
	mk("db", "v0");
	up("cache=kernel");
	for (i = 0; i < CACHED; i++) {
		snprintf(rel, sizeof(rel), "secrets/s%04d/versions", i);
		ck_assert_int_eq(stat(P(rel), &st), 0);
	}
	for (i = 1; i <= 4; i++) {
		assert_reads("secrets/db/default", i == 1 ? "v0" : val);
		snprintf(val, sizeof(val), "v%d", i);
		ck_assert_int_eq(
		    cli("version", "add", "db", "--value", val, NULL), 0);
		assert_reads("secrets/db/default", val);
	}
	ck_assert_int_eq(stat(P("secrets/s0003"), &st), 0);
	ck_assert_int_eq(st.st_uid, 0);
	ck_assert_int_eq(cli("secret", "update", "s0003", "--owner", "4321",
			     NULL),
			 0);
	ck_assert_int_eq(stat(P("secrets/s0003"), &st), 0);
	ck_assert_int_eq(st.st_uid, 4321);
}
END_TEST

/* A writer never hangs on a cache=kernel daemon: a stopped one delays it
 * a moment (the wait is bounded), a dead one not at all (its slot's lock
 * died with it). */
/* Is the test's mountpoint still mounted? */
static int mounted(void)
{
	char *m = tu_read_file("/proc/self/mounts", NULL), pat[600];
	int yes;

	snprintf(pat, sizeof(pat), " %s ", h_mp);
	yes = m && strstr(m, pat);
	free(m);
	return yes;
}

START_TEST(kernel_writer_not_held)
{
	char *lazy[] = {"fusermount3", "-u", "-z", h_mp, NULL};
	int st;

	mk("db", "v0");
	up("cache=kernel");
	assert_reads("secrets/db/default", "v0");
	ck_assert_int_eq(kill(h_daemon, SIGSTOP), 0);
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v1", NULL), 0);
	ck_assert_int_eq(kill(h_daemon, SIGCONT), 0);
	ck_assert_int_eq(kill(h_daemon, SIGKILL), 0);
	ck_assert_int_eq(waitpid(h_daemon, &st, 0), h_daemon);
	h_daemon = -1;
	if (mounted()) /* auto_unmount may have done it already */
		h_run(lazy, NULL);
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v2", NULL), 0);
}
END_TEST

/* cache=open: a shorter value after a longer one reads exactly (the
 * pages pushed at open must not keep the old size or bytes). */
START_TEST(open_value_shrinks)
{
	mk("db", "a rather long first value");
	up("cache=open");
	assert_reads("secrets/db/default", "a rather long first value");
	ck_assert_int_eq(cli("version", "add", "db", "--value", "ab", NULL), 0);
	assert_reads("secrets/db/default", "ab");
	assert_reads("secrets/db/default", "ab");
}
END_TEST

static Suite *mount_kernel_suite(void)
{
	const TTest *const tests[] = {
	    kernel_new_version_at_next_open,
	    open_new_version_at_next_open,
	    kernel_default_moved_here,
	    kernel_values_read_only,
	    kernel_write_by_other_refused,
	    kernel_allow_list,
	    finding9_acl_hidden_from_refused,
	    kernel_first_read_audited,
	    kernel_key_deactivated,
	    kernel_many_nodes,
	    kernel_few_nodes_in_large_store,
	    kernel_writer_not_held,
	    kernel_deleted_secret_leaves,
	    strict_listing_follows_changes,
	    open_value_shrinks,
	};

	return h_suite("mount_kernel", tests, sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_kernel_suite, .fork = CK_FORK};
