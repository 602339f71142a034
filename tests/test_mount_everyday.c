/*
 * Mount tests for everyday use (issue 14): what real programs and new
 * users rely on, checked through system calls. A secret's directory mode
 * (x wherever r is), kv/ only while the default is a JSON object, fstat
 * on an open handle after a rotation, any new name in a secret's
 * directory staged, rm of versions in use and rmdir of an emptied
 * versions/, the mount's source and type, the messages of a refused
 * mount, and the rule behind a refusal in the daemon's log (the harness
 * runs the daemon with -f: its stderr is h_log). Real programs (sed,
 * vim, Python, install, cp, tar, rsync) are in test_programs.c.
 */
#include <dirent.h>
#include <limits.h>

#include "mount_harness.h"
#include "secretfs/ctx.h"
#include "secretfs/principal.h"
#include "secretfs/secret.h"

#define OTHER 4321

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

/* Is name an entry of the directory rel under the mount? */
static int listed(const char *rel, const char *name)
{
	struct dirent *e;
	DIR *d = opendir(P(rel));
	int found = 0;

	ck_assert_msg(d != NULL, "%s: %s", rel, strerror(errno));
	while ((e = readdir(d)))
		found |= !strcmp(e->d_name, name);
	closedir(d);
	return found;
}

static mode_t mode_of(const char *rel)
{
	struct stat st;

	ck_assert_msg(stat(P(rel), &st) == 0, "%s: %s", rel, strerror(errno));
	return st.st_mode;
}

/* Does the daemon's log (its stderr under -f) hold s? */
static int log_has(const char *s)
{
	char *log = tu_read_file(h_log, NULL);
	int has = log && strstr(log, s);

	free(log);
	return has;
}

/* --- a secret's directory ------------------------------------------------- */

/* SPEC §3: the directory shows the mode with x added wherever r is set. */
START_TEST(secret_dir_mode_adds_x_where_r)
{
	static const struct {
		const char *mode;
		mode_t dir;
	} rows[] = {
	    {"0440", 0550}, {"0640", 0750}, {"0400", 0500},
	    {"0604", 0705}, {"0200", 0200}, {"0000", 0000},
	};
	size_t i;

	mk("db", "v");
	up(NULL);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ck_assert_int_eq(
		    cli("secret", "update", "db", "--mode", rows[i].mode, NULL),
		    0);
		ck_assert_int_eq(mode_of("secrets/db"), S_IFDIR | rows[i].dir);
		/* the value files keep the mode itself */
		ck_assert_int_eq(mode_of("secrets/db/default") & 07777,
				 strtol(rows[i].mode, NULL, 8));
	}
}
END_TEST

/* A change is visible on its own host before the writer returns: a
 * stat made the moment a mode change returns shows the new mode, on a
 * cache=strict and a cache=open mount alike (the writer waits for each
 * daemon to drop what its kernel caches; 300 changes, no pause). */
static void mode_seen_when_writer_returns(const char *opts)
{
	struct sfs_secret_update u = {.fields = SFS_SF_MODE};
	struct sfs_ctx_options o = {.store_dir = h_store};
	struct sfs_ctx *ctx = NULL;
	struct sfs_error err = {0};
	struct sfs_caller c;
	int i;

	mk("db", "v");
	up(opts);
	ck_assert_int_eq(mode_of("secrets/db/default") & 07777, 0440);
	ck_assert_int_eq(sfs_ctx_open(&ctx, &o, &err), SFS_OK);
	sfs_caller_self(&c);
	for (i = 0; i < 300; i++) {
		u.mode = i % 2 ? 0440 : 0400;
		ck_assert_int_eq(sfs_secret_update(ctx, &c, "db", &u, &err),
				 SFS_OK);
		ck_assert_int_eq(mode_of("secrets/db/default") & 07777,
				 (int)u.mode);
	}
	sfs_ctx_close(ctx);
}

START_TEST(strict_mode_change_seen_when_writer_returns)
{
	mode_seen_when_writer_returns(NULL);
}
END_TEST

START_TEST(open_mode_change_seen_when_writer_returns)
{
	mode_seen_when_writer_returns("cache=open");
}
END_TEST

/* --- kv ------------------------------------------------------------------- */

/* kv/ is listed and found exactly while the default is a JSON object:
 * string values (format kv) or not (format json). */
START_TEST(kv_present_for_json_objects)
{
	mk("s", "{\"a\":\"1\"}");
	mk("o", "{\"n\":1,\"o\":{\"x\":[1]}}");
	up(NULL);
	ck_assert(listed("secrets/s", "kv"));
	ck_assert(listed("secrets/o", "kv"));
	assert_reads("secrets/s/kv/a", "1");
	assert_reads("secrets/o/kv/o", "{\"x\":[1]}");
}
END_TEST

/* Otherwise it is absent from the listing and ENOENT on lookup: text,
 * a JSON value that is no object, no version yet, a deactivated secret,
 * and an object secret whose new default is text. */
START_TEST(kv_absent_unless_json_object)
{
	static const char *const names[] = {"t",    "arr", "num",
					    "none", "off", "was"};
	struct stat st;
	char rel[64];
	size_t i;

	mk("t", "plain");
	mk("arr", "[1,2]");
	mk("num", "42");
	ck_assert_int_eq(cli("secret", "create", "none", NULL), 0);
	mk("off", "{\"a\":\"1\"}");
	ck_assert_int_eq(cli("secret", "deactivate", "off", NULL), 0);
	mk("was", "{\"a\":\"1\"}");
	up(NULL);
	ck_assert(listed("secrets/was", "kv"));
	ck_assert_int_eq(cli("version", "add", "was", "--value", "text", NULL),
			 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(rel, sizeof(rel), "secrets/%s", names[i]);
		ck_assert_msg(!listed(rel, "kv"), "%s lists kv", names[i]);
		snprintf(rel, sizeof(rel), "secrets/%s/kv", names[i]);
		ck_assert_int_eq(ERR(stat(P(rel), &st)), ENOENT);
		ck_assert_int_eq(ERR(opendir(P(rel)) ? 0 : -1), ENOENT);
	}
}
END_TEST

/* --- fstat on a handle ---------------------------------------------------- */

static int stat_size(void *arg)
{
	struct stat st;

	if (stat(P("secrets/db/default"), &st))
		return errno;
	return st.st_size == (off_t)(uintptr_t)arg ? 0 : 1;
}

/* SPEC §3: fstat on an open handle gives that handle's size, even after a
 * rotation; another process's stat sees the new value. */
START_TEST(fstat_after_rotation_gives_handle_size)
{
	const char *newer = "a longer value after the rotation";
	struct stat st;
	char buf[64];
	pid_t pid;
	int fd, status, i;

	mk("db", "short");
	up(NULL);
	fd = open(P("secrets/db/default"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(cli("version", "add", "db", "--value", newer, NULL),
			 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 5);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 5);
	ck_assert_int_eq(memcmp(buf, "short", 5), 0);
	/* another process: the new value's size */
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(stat_size((void *)(uintptr_t)strlen(newer)));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(close(fd), 0);
	/* the kernel sends RELEASE after close(2) returns: until the daemon
	 * has it, this process still holds the old handle */
	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(stat(P("secrets/db/default"), &st), 0);
		if (st.st_size == (off_t)strlen(newer))
			break;
		usleep(10000);
	}
	ck_assert_int_eq(st.st_size, (off_t)strlen(newer));
}
END_TEST

/* --- staging -------------------------------------------------------------- */

static int see_staged(void *arg)
{
	struct stat st;

	(void)arg;
	if (stat(P("secrets/db/sedAb12Z"), &st) == 0)
		return 1;
	return errno == ENOENT && !listed("secrets/db", "sedAb12Z") ? 0 : 2;
}

/* SPEC §3: any new name but default, versions and kv is staged: in
 * memory, mode 0600, the creator's alone, committed by a rename onto
 * default. */
START_TEST(staged_any_new_name)
{
	struct stat st;

	mk("db", "v1");
	up("allow_other");
	ck_assert_int_eq(put_s("secrets/db/sedAb12Z",
			       O_WRONLY | O_CREAT | O_EXCL, "from sed"),
			 0);
	ck_assert_int_eq(stat(P("secrets/db/sedAb12Z"), &st), 0);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0600);
	ck_assert_uint_eq(st.st_uid, getuid());
	ck_assert_int_eq(st.st_size, 8);
	ck_assert(listed("secrets/db", "sedAb12Z"));
	assert_reads("secrets/db/default", "v1");
	assert_xattr("secrets/db", "user.secret.latest_version", "1");
	if (geteuid() == 0)
		ck_assert_int_eq(as_user(OTHER, OTHER, see_staged, NULL), 0);
	ck_assert_int_eq(
	    rename(P("secrets/db/sedAb12Z"), P("secrets/db/default")), 0);
	assert_reads("secrets/db/default", "from sed");
	assert_xattr("secrets/db", "user.secret.latest_version", "2");
	ck_assert_int_eq(ERR(stat(P("secrets/db/sedAb12Z"), &st)), ENOENT);
	/* the fixed names are not staging names */
	ck_assert_int_eq(
	    ERR(open(P("secrets/db/kv"), O_WRONLY | O_CREAT, 0600)), EPERM);
}
END_TEST

/* A staged name renamed onto another staged name stays staged. */
START_TEST(staged_rename_between_names)
{
	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(put_s("secrets/db/tmpx", O_WRONLY | O_CREAT, "t"), 0);
	ck_assert_int_eq(rename(P("secrets/db/tmpx"), P("secrets/db/next")), 0);
	assert_reads("secrets/db/next", "t");
	assert_xattr("secrets/db", "user.secret.latest_version", "1");
	ck_assert_int_eq(unlink(P("secrets/db/next")), 0);
	ck_assert(!listed("secrets/db", "next"));
}
END_TEST

/* --- destroy and delete through the tree ---------------------------------- */

/* SPEC §2/§3: rm of a version in use is EBUSY (the version and its
 * secret active); a deactivated version goes. */
START_TEST(rm_version_in_use_ebusy)
{
	mk("db", "v1");
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v2", NULL), 0);
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v3", NULL), 0);
	ck_assert_int_eq(cli("version", "deactivate", "db", "1", NULL), 0);
	up(NULL);
	ck_assert_int_eq(ERR(unlink(P("secrets/db/versions/3"))), EBUSY);
	ck_assert_int_eq(ERR(unlink(P("secrets/db/versions/2"))), EBUSY);
	ck_assert_int_eq(unlink(P("secrets/db/versions/1")), 0);
	assert_reads("secrets/db/versions/2", "v2");
	assert_reads("secrets/db/default", "v3");
	ck_assert(!listed("secrets/db/versions", "1"));
	/* the rule behind the refusal is in the daemon's log */
	ck_assert(log_has("rm secrets/db/versions/3 refused (EBUSY)"));
	ck_assert(log_has("version 3 of 'db': the version and its secret are "
			  "active: deactivate it first"));
}
END_TEST

/* A deactivated secret: every version can go, its directory lists no
 * default (open still says EKEYREVOKED), an emptied versions/ can be
 * "removed" (rm -r does), and then the secret itself. */
START_TEST(deactivated_secret_deleted_through_tree)
{
	struct stat st;

	mk("db", "v1");
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v2", NULL), 0);
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	up(NULL);
	ck_assert(!listed("secrets/db", "default"));
	ck_assert_int_eq(ERR(open(P("secrets/db/default"), O_RDONLY)),
			 EKEYREVOKED);
	ck_assert_int_eq(ERR(rmdir(P("secrets/db/versions"))), ENOTEMPTY);
	ck_assert_int_eq(unlink(P("secrets/db/versions/2")), 0);
	ck_assert_int_eq(unlink(P("secrets/db/versions/1")), 0);
	ck_assert_int_eq(rmdir(P("secrets/db/versions")), 0);
	ck_assert_int_eq(rmdir(P("secrets/db")), 0);
	ck_assert_int_eq(ERR(stat(P("secrets/db"), &st)), ENOENT);
}
END_TEST

/* The rule that refused an rmdir is in the daemon's log. */
START_TEST(rmdir_refusal_logged_with_rule)
{
	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(ERR(rmdir(P("secrets/db"))), EBUSY);
	ck_assert(log_has("rmdir secrets/db refused (EBUSY) for uid "));
	ck_assert(log_has("secret 'db': the secret is active: deactivate it "
			  "first"));
	ck_assert_int_eq(ERR(unlink(P("secrets/db/default"))), EPERM);
	ck_assert(log_has("rm secrets/db/default refused (EPERM)"));
}
END_TEST

/* --- the mount ------------------------------------------------------------ */

/* Source and type in /proc/self/mountinfo: the store and fuse.secretfs
 * (what mount(8) matches an fstab line against). */
START_TEST(mount_source_is_store)
{
	char store[PATH_MAX], mp[PATH_MAX], want[2 * PATH_MAX + 32];
	char *info;

	up(NULL);
	ck_assert_ptr_nonnull(realpath(h_store, store));
	ck_assert_ptr_nonnull(realpath(h_mp, mp));
	info = tu_read_file("/proc/self/mountinfo", NULL);
	ck_assert_ptr_nonnull(info);
	snprintf(want, sizeof(want), " %s ", mp);
	ck_assert_ptr_nonnull(strstr(info, want));
	snprintf(want, sizeof(want), " - fuse.secretfs %s ", store);
	ck_assert_msg(strstr(strstr(info, mp), want) != NULL, "no '%s' in %s",
		      want, info);
	free(info);
}
END_TEST

/* `secretfs mount h_mp [-o opts]` (daemonizing), its stderr into h_log;
 * its exit status. A mount that wrongly succeeded is taken off again. */
static int mount_again(const char *opts)
{
	char *argv[] = {(char *)h_bin(), "--store", h_store,
			"mount",	 h_mp,	    "-o",
			(char *)opts,	 NULL};
	char *umount[] = {"fusermount3", "-u", h_mp, NULL};
	int fd, saved, rc;

	fflush(NULL);
	fd = open(h_log, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	saved = dup(2);
	dup2(fd, 2);
	close(fd);
	rc = h_run(argv, NULL);
	dup2(saved, 2);
	close(saved);
	if (rc == 0)
		h_run(umount, NULL);
	return rc;
}

/* A live mount is "already mounted", not "not an empty directory". */
START_TEST(mount_on_live_mount_already_mounted)
{
	up(NULL);
	ck_assert_int_eq(mount_again("rw"), 1);
	ck_assert_int_eq(mount_again("ro"), 1);
	ck_assert(log_has(": already mounted\n"));
	ck_assert(!log_has("not an empty directory"));
}
END_TEST

/* A bad option value names the option, the values allowed and where the
 * options are described. */
START_TEST(mount_bad_value_names_option)
{
	pid_t pid = -1;

	ck_assert_int_eq(h_mount_at(h_mp, "cache=sometimes", &pid), 2);
	ck_assert(log_has("secretfs: mount: bad value 'sometimes' for option "
			  "'cache': use strict, open or kernel (see "
			  "'secretfs mount --help')\n"));
	ck_assert_int_eq(h_mount_at(h_mp, "audit=maybe", &pid), 2);
	ck_assert(log_has("bad value 'maybe' for option 'audit': use on or "
			  "off (see 'secretfs mount --help')\n"));
	ck_assert_int_eq(h_mount_at(h_mp, "ro,layout=round", &pid), 2);
	ck_assert(log_has("bad value 'round' for option 'layout': use flat or "
			  "tree (see 'secretfs mount --help')\n"));
	ck_assert_int_eq(h_mount_at(h_mp, "frobnicate", &pid), 2);
	ck_assert(log_has("unknown option 'frobnicate' (see 'secretfs mount "
			  "--help')\n"));
}
END_TEST

static Suite *mount_everyday_suite(void)
{
	const TTest *const tests[] = {
	    secret_dir_mode_adds_x_where_r,
	    strict_mode_change_seen_when_writer_returns,
	    open_mode_change_seen_when_writer_returns,
	    kv_present_for_json_objects,
	    kv_absent_unless_json_object,
	    fstat_after_rotation_gives_handle_size,
	    staged_any_new_name,
	    staged_rename_between_names,
	    rm_version_in_use_ebusy,
	    deactivated_secret_deleted_through_tree,
	    rmdir_refusal_logged_with_rule,
	    mount_source_is_store,
	    mount_on_live_mount_already_mounted,
	    mount_bad_value_names_option,
	};

	return h_suite("mount_everyday", tests,
		      sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_everyday_suite, .fork = CK_FORK};
