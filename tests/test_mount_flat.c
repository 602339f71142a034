/*
 * Mount tests for the container-shaped view (SPEC §3): layout=flat (the
 * root lists one file per visible secret holding its default value,
 * .status stays) and the per-view identity uid=, gid=, mode= (value
 * files show it and reads of secrets without access control follow it;
 * an allow list still decides alone). Both are for read-only mounts
 * only. Tests that switch uid need root; without it they say SKIPPED.
 */
#include <dirent.h>

#include "mount_harness.h"

#define CONSUMER 4321
#define STRANGER 4322

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

/* The root's names, sorted, joined by spaces (. and .. left out). */
static char *root_names(void)
{
	struct dirent **list;
	char *out = calloc(1, 4096);
	int i, n = scandir(h_mp, &list, NULL, alphasort);

	ck_assert_int_ge(n, 0);
	for (i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, ".") &&
		    strcmp(list[i]->d_name, "..")) {
			if (*out)
				strcat(out, " ");
			strcat(out, list[i]->d_name);
		}
		free(list[i]);
	}
	free(list);
	return out;
}

/* A mount with these options is refused: exit 2, the log says why. */
static void assert_refused(const char *opts, const char *why)
{
	pid_t pid = -1;
	char *log;

	ck_assert_int_eq(h_mount_at(h_mp, opts, &pid), 2);
	log = tu_read_file(h_log, NULL);
	ck_assert_msg(log && strstr(log, why), "log: %s", log ? log : "");
	free(log);
	ck_assert_int_eq(truncate(h_log, 0), 0);
}

START_TEST(flat_lists_visible_secrets_and_status)
{
	mk("app-db", "pw1");
	mk("app-key", "k1");
	mk("other", "o1");
	ck_assert_int_eq(cli("secret", "create", "app-empty", NULL), 0);
	up("ro,layout=flat,only=app-*");
	char *names = root_names();

	/* app-empty has no default value: no file */
	ck_assert_str_eq(names, ".status app-db app-key");
	free(names);
}
END_TEST

START_TEST(flat_file_holds_default_value)
{
	struct stat st;

	mk("db-password", "s3cret");
	up("ro,layout=flat");
	assert_reads("db-password", "s3cret");
	ck_assert_int_eq(stat(P("db-password"), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 6);
	ck_assert_int_eq(
	    cli("version", "add", "db-password", "--value", "rotated!", NULL),
	    0);
	assert_reads("db-password", "rotated!");
}
END_TEST

START_TEST(flat_has_no_tree)
{
	struct stat st;

	mk("db", "v");
	mk("nope", "v");
	up("ro,layout=flat,only=db");
	ck_assert_int_eq(ERR(stat(P("secrets"), &st)), ENOENT);
	ck_assert_int_eq(ERR(stat(P("keys"), &st)), ENOENT);
	ck_assert_int_eq(ERR(stat(P("nope"), &st)), ENOENT);
	ck_assert_int_eq(ERR(stat(P("missing"), &st)), ENOENT);
	ck_assert_int_eq(ERR(stat(P(".status"), &st)), 0);
}
END_TEST

START_TEST(flat_cannot_write)
{
	mk("db", "v");
	up("ro,layout=flat");
	ck_assert_int_eq(put_s("db", O_WRONLY | O_TRUNC, "x"), EROFS);
	ck_assert_int_eq(put_s("new", O_WRONLY | O_CREAT, "x"), EROFS);
	ck_assert_int_eq(ERR(unlink(P("db"))), EROFS);
	assert_reads("db", "v");
}
END_TEST

START_TEST(flat_and_identity_need_ro)
{
	assert_refused("layout=flat", "need a read-only mount");
	assert_refused("uid=1000", "need a read-only mount");
	assert_refused("gid=1000", "need a read-only mount");
	assert_refused("mode=0400", "need a read-only mount");
	assert_refused("ro,mode=0999", "bad value in 'mode=0999'");
	assert_refused("ro,mode=01777", "bad value in 'mode=01777'");
	assert_refused("ro,uid=alice", "bad value in 'uid=alice'");
	assert_refused("ro,gid=", "bad value in 'gid='");
	assert_refused(
	    "ro,layout=deep",
	    "bad value 'deep' for option 'layout': use flat or tree");
}
END_TEST

START_TEST(identity_shown_on_value_files)
{
	struct stat st;

	mk("db", "v");
	up("ro,layout=flat,uid=4321,gid=4400,mode=0400");
	ck_assert_int_eq(stat(P("db"), &st), 0);
	ck_assert_uint_eq(st.st_uid, 4321);
	ck_assert_uint_eq(st.st_gid, 4400);
	ck_assert_uint_eq(st.st_mode, S_IFREG | 0400);
	down();
	/* only mode given: owner and group stay the secret's (root) */
	up("ro,mode=0444");
	ck_assert_int_eq(stat(P("secrets/db/default"), &st), 0);
	ck_assert_uint_eq(st.st_uid, 0);
	ck_assert_uint_eq(st.st_gid, 0);
	ck_assert_uint_eq(st.st_mode, S_IFREG | 0444);
}
END_TEST

static int read_flat(void *arg)
{
	char *got;
	size_t len;
	int e = slurp(arg, &got, &len);

	if (!e && strcmp(got, "v"))
		e = 200;
	free(got);
	return e;
}

START_TEST(identity_decides_reads)
{
	NEED_ROOT();
	mk("db", "v"); /* root:root 0440: the consumer may not read */
	up("ro,allow_other,layout=flat");
	ck_assert_int_eq(as_user(CONSUMER, CONSUMER, read_flat, "db"), EACCES);
	down();
	up("ro,allow_other,layout=flat,uid=4321,mode=0400");
	ck_assert_int_eq(as_user(CONSUMER, CONSUMER, read_flat, "db"), 0);
	ck_assert_int_eq(as_user(STRANGER, STRANGER, read_flat, "db"), EACCES);
	down();
	/* the view's mode can also close a secret to its own group */
	ck_assert_int_eq(cli("secret", "update", "db", "--group", "4322", NULL),
			 0);
	up("ro,allow_other,layout=flat,mode=0400");
	ck_assert_int_eq(as_user(STRANGER, STRANGER, read_flat, "db"), EACCES);
}
END_TEST

START_TEST(identity_never_opens_access_controlled_secret)
{
	struct stat st;

	NEED_ROOT();
	mk("acl", "v");
	mk("listed", "v");
	ck_assert_int_eq(
	    cli("secret", "update", "acl", "--access-control", "on", NULL), 0);
	ck_assert_int_eq(cli("secret", "update", "listed", "--access-control",
			     "on", "--allow", "uid:4321", NULL),
			 0);
	up("ro,allow_other,layout=flat,uid=4321,gid=4321,mode=0444");
	ck_assert_int_eq(as_user(CONSUMER, CONSUMER, read_flat, "acl"), EACCES);
	ck_assert_int_eq(as_user(STRANGER, STRANGER, read_flat, "listed"),
			 EACCES);
	ck_assert_int_eq(as_user(CONSUMER, CONSUMER, read_flat, "listed"), 0);
	/* its file shows the secret's own owner and mode */
	ck_assert_int_eq(stat(P("acl"), &st), 0);
	ck_assert_uint_eq(st.st_uid, 0);
	ck_assert_uint_eq(st.st_mode, S_IFREG | 0440);
}
END_TEST

START_TEST(status_shows_layout_and_identity)
{
	char *s;
	size_t len;

	up("ro,layout=flat,uid=1000,mode=0400");
	ck_assert_int_eq(slurp(".status", &s, &len), 0);
	ck_assert_ptr_nonnull(strstr(s, "\"layout\": \"flat\""));
	ck_assert_ptr_nonnull(strstr(s, "\"uid\": 1000"));
	ck_assert_ptr_nonnull(strstr(s, "\"gid\": null"));
	ck_assert_ptr_nonnull(strstr(s, "\"mode\": \"0400\""));
	free(s);
}
END_TEST

static Suite *mount_flat_suite(void)
{
	const TTest *const tests[] = {
	    flat_lists_visible_secrets_and_status,
	    flat_file_holds_default_value,
	    flat_has_no_tree,
	    flat_cannot_write,
	    flat_and_identity_need_ro,
	    identity_shown_on_value_files,
	    identity_decides_reads,
	    identity_never_opens_access_controlled_secret,
	    status_shows_layout_and_identity,
	};

	return h_suite("mount_flat", tests, sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_flat_suite, .fork = CK_FORK};
