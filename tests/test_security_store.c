/*
 * Issue 10, finding 2: the store directory is not trusted as it is
 * (SPEC §1). Each test is one attack of the finding, tried as a local
 * attacker would: a store directory made beforehand by another user (or
 * left writable by group or others) with a master key and database
 * planted in it; audit.log, generation and the lock files pointed at a
 * file that is not the store's through a symlink; store files, key files
 * and passphrase files of another owner or readable by others. Every one
 * is refused with a clear error, and the files involved keep their bytes
 * and modes. Tests that need another uid need root: they say SKIPPED
 * instead of passing.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/harness.h"
#include "lib/proc.h"
#include "lib/testutil.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/ctx.h"
#include "secretfs/storedir.h"

#define OTHER 4321 /* a uid that is neither the caller nor root */

static char *tmp;
static char store[512];
static struct sfs_ctx_options opts;
static struct sfs_error err;

static void setup(void)
{
	tu_env_isolate();
	tmp = tu_tmpdir("secstore");
	snprintf(store, sizeof(store), "%s/store", tmp);
	memset(&opts, 0, sizeof(opts));
	opts.store_dir = store;
	memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
	tu_rmrf(tmp);
	free(tmp);
}

static const char *in(const char *dir, const char *name)
{
	static char path[4][800];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	return path[i];
}

#define NEED_ROOT()                                                            \
	do {                                                                   \
		if (geteuid() != 0) {                                          \
			printf("%s: SKIPPED: needs root to act as another "    \
			       "user\n",                                       \
			       __func__);                                      \
			return;                                                \
		}                                                              \
	} while (0)

/* A file's bytes, mode and owner, to show that nothing touched it. */
struct print {
	char *bytes;
	size_t len;
	struct stat st;
};

static void take(struct print *p, const char *path)
{
	p->bytes = tu_read_file(path, &p->len);
	ck_assert_ptr_nonnull(p->bytes);
	ck_assert_int_eq(lstat(path, &p->st), 0);
}

static void same(struct print *p, const char *path)
{
	struct print now;

	take(&now, path);
	ck_assert_uint_eq(now.len, p->len);
	ck_assert(memcmp(now.bytes, p->bytes, p->len) == 0);
	ck_assert_uint_eq(now.st.st_mode, p->st.st_mode);
	ck_assert_uint_eq(now.st.st_uid, p->st.st_uid);
	ck_assert_int_eq(now.st.st_mtim.tv_sec, p->st.st_mtim.tv_sec);
	ck_assert_int_eq(now.st.st_mtim.tv_nsec, p->st.st_mtim.tv_nsec);
	free(now.bytes);
	free(p->bytes);
}

/* A file standing for one of root's (a cron script, /etc/shadow). */
static const char *victim(void)
{
	const char *v = in(tmp, "victim");

	tu_write_file(v, "#!/bin/sh\necho root's\n", 22, 0644);
	return v;
}

static void assert_msg_has(const char *needle)
{
	ck_assert_msg(strstr(err.msg, needle), "'%s' not in '%s'", needle,
		      err.msg);
}

/* ---- the directory ----------------------------------------------------- */

/* Another user made the directory world-writable beforehand and planted
 * a master key and a database in it: init adopts neither. */
START_TEST(planted_key_and_db_in_premade_0777_dir_refused)
{
	char other[600];
	struct print key, db;
	struct sfs_ctx *ctx = NULL;

	NEED_ROOT();
	snprintf(other, sizeof(other), "%s/other", tmp);
	opts.store_dir = other; /* the attacker's own store, to copy from */
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_OK);
	opts.store_dir = store;
	ck_assert_int_eq(mkdir(store, 0777), 0);
	ck_assert_int_eq(chmod(store, 0777), 0);
	ck_assert_int_eq(
	    rename(in(other, "master.key"), in(store, "master.key")), 0);
	ck_assert_int_eq(
	    rename(in(other, "secretfs.db"), in(store, "secretfs.db")), 0);
	ck_assert_int_eq(chown(store, OTHER, OTHER), 0);
	ck_assert_int_eq(chown(in(store, "master.key"), OTHER, OTHER), 0);
	ck_assert_int_eq(chown(in(store, "secretfs.db"), OTHER, OTHER), 0);
	take(&key, in(store, "master.key"));
	take(&db, in(store, "secretfs.db"));
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_EACCES);
	assert_msg_has("is owned by uid 4321, not by you or root");
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_EACCES);
	ck_assert_ptr_null(ctx);
	/* even when the attacker chowns it to the caller: writable by all */
	ck_assert_int_eq(chown(store, 0, 0), 0);
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_EACCES);
	assert_msg_has("writable by group or others (mode 0777)");
	same(&key, in(store, "master.key"));
	same(&db, in(store, "secretfs.db"));
	ck_assert_int_eq(access(in(store, "audit.log"), F_OK), -1);
	ck_assert_int_eq(access(in(store, "generation"), F_OK), -1);
}
END_TEST

START_TEST(group_writable_store_dir_refused)
{
	struct print db;
	struct sfs_ctx *ctx = NULL;
	char want[700];

	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_OK);
	ck_assert_int_eq(chmod(store, 0770), 0);
	take(&db, in(store, "secretfs.db"));
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_EACCES);
	ck_assert_ptr_null(ctx);
	snprintf(want, sizeof(want),
		 "store '%s' is writable by group or others (mode 0770): "
		 "refused",
		 store);
	ck_assert_str_eq(err.msg, want);
	same(&db, in(store, "secretfs.db"));
	ck_assert_int_eq(chmod(store, 0702), 0);
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_EACCES);
	/* readable by group is fine: it is a read-only member's business */
	ck_assert_int_eq(chmod(store, 0750), 0);
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_OK);
	sfs_ctx_close(ctx);
}
END_TEST

START_TEST(init_refuses_non_empty_dir)
{
	struct print notes;
	char want[800];

	ck_assert_int_eq(mkdir(store, 0700), 0);
	tu_write_file(in(store, "notes.txt"), "mine", 4, 0600);
	take(&notes, in(store, "notes.txt"));
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_EEXIST);
	snprintf(want, sizeof(want),
		 "store directory '%s' is not empty (it holds 'notes.txt'): "
		 "init wants an empty or new directory",
		 store);
	ck_assert_str_eq(err.msg, want);
	same(&notes, in(store, "notes.txt"));
	ck_assert_int_eq(access(in(store, "master.key"), F_OK), -1);
	ck_assert_int_eq(access(in(store, "secretfs.db"), F_OK), -1);
	/* an empty existing directory is fine */
	ck_assert_int_eq(unlink(in(store, "notes.txt")), 0);
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_OK);
}
END_TEST

/* ---- symlinks and foreign files in a store ----------------------------- */

/* name in the store becomes a symlink to the victim: open refuses, the
 * victim keeps its bytes and mode. */
static void symlink_refused(const char *name)
{
	struct sfs_ctx *ctx = NULL;
	struct print v;
	const char *target = victim();
	char want[700];

	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_OK);
	unlink(in(store, name));
	ck_assert_int_eq(symlink(target, in(store, name)), 0);
	take(&v, target);
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_EACCES);
	ck_assert_ptr_null(ctx);
	snprintf(want, sizeof(want),
		 "store '%s': '%s' is a symbolic link, not a regular file: "
		 "refused",
		 store, name);
	ck_assert_str_eq(err.msg, want);
	same(&v, target);
}

START_TEST(symlinked_audit_log_to_root_file_refused)
{
	symlink_refused("audit.log");
}
END_TEST

START_TEST(symlinked_generation_to_root_file_refused)
{
	symlink_refused("generation");
}
END_TEST

START_TEST(symlinked_lock_to_root_file_refused)
{
	symlink_refused("lock");
}
END_TEST

START_TEST(symlinked_write_lock_to_root_file_refused)
{
	symlink_refused("write.lock");
}
END_TEST

START_TEST(symlinked_db_wal_to_root_file_refused)
{
	symlink_refused("secretfs.db-wal");
}
END_TEST

START_TEST(store_file_of_another_owner_refused)
{
	struct sfs_ctx *ctx = NULL;
	char want[700];

	NEED_ROOT();
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_OK);
	ck_assert_int_eq(chown(in(store, "audit.log"), OTHER, OTHER), 0);
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_EACCES);
	snprintf(want, sizeof(want),
		 "store '%s': 'audit.log' is owned by uid 4321, not by you: "
		 "refused",
		 store);
	ck_assert_str_eq(err.msg, want);
	ck_assert_int_eq(chown(in(store, "audit.log"), 0, 0), 0);
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_OK);
	sfs_ctx_close(ctx);
}
END_TEST

/* lost+found (a store that is a filesystem of its own) is let be; a
 * directory of another user is not. */
START_TEST(subdirectory_let_be_unless_foreign)
{
	struct sfs_ctx *ctx = NULL;

	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_OK);
	ck_assert_int_eq(mkdir(in(store, "lost+found"), 0700), 0);
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_OK);
	sfs_ctx_close(ctx);
	if (geteuid() != 0)
		return;
	ck_assert_int_eq(chown(in(store, "lost+found"), OTHER, OTHER), 0);
	ck_assert_int_eq(sfs_ctx_open(&ctx, &opts, &err), SFS_EACCES);
	assert_msg_has("'lost+found' is a directory, not a regular file");
}
END_TEST

/* The opens themselves never follow a symlink either (a name swapped
 * after the directory was checked: only root could, but still). */
START_TEST(store_files_opened_without_following_symlinks)
{
	struct sfs_audit *a = NULL;
	const char *target = victim();
	struct print v;

	ck_assert_int_eq(mkdir(store, 0700), 0);
	ck_assert_int_eq(symlink(target, in(store, "generation")), 0);
	ck_assert_int_eq(symlink(target, in(store, "audit.log")), 0);
	take(&v, target);
	ck_assert_int_eq(sfs_storedir_open(store, "generation",
					   O_RDWR | O_CREAT, 0600, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_audit_open(&a, in(store, "audit.log"), &err),
			 SFS_EACCES);
	ck_assert_ptr_null(a);
	assert_msg_has("a symbolic link: refused");
	same(&v, target);
	/* a regular file of another owner is refused on the descriptor */
	if (geteuid() == 0) {
		tu_write_file(in(store, "lock"), "", 0, 0600);
		ck_assert_int_eq(chown(in(store, "lock"), OTHER, OTHER), 0);
		ck_assert_int_eq(
		    sfs_storedir_open(store, "lock", O_RDWR, 0, &err),
		    SFS_EACCES);
		assert_msg_has("'lock' is owned by uid 4321, not by you");
	}
}
END_TEST

/* The one errno-to-code map of the store's files and the audit log: a
 * symlink met by O_NOFOLLOW (ELOOP) is a refusal, as EACCES is. */
START_TEST(storedir_errcode_maps_errno_for_store_files_and_audit_log)
{
	ck_assert_int_eq(sfs_storedir_errcode(ENOENT), SFS_ENOENT);
	ck_assert_int_eq(sfs_storedir_errcode(EACCES), SFS_EACCES);
	ck_assert_int_eq(sfs_storedir_errcode(EPERM), SFS_EACCES);
	ck_assert_int_eq(sfs_storedir_errcode(ELOOP), SFS_EACCES);
	ck_assert_int_eq(sfs_storedir_errcode(EROFS), SFS_EROFS);
	ck_assert_int_eq(sfs_storedir_errcode(ENOSPC), SFS_ENOSPC);
	ck_assert_int_eq(sfs_storedir_errcode(EIO), SFS_EIO);
	ck_assert_int_eq(sfs_storedir_errcode(EINVAL), SFS_EIO);
}
END_TEST

/* ---- key and passphrase files ------------------------------------------ */

START_TEST(master_key_of_another_owner_refused)
{
	unsigned char key[SFS_KEY_BYTES], out[SFS_KEY_BYTES];
	const char *path = in(tmp, "key");

	NEED_ROOT();
	memset(key, 0x5a, sizeof(key));
	tu_write_file(path, key, sizeof(key), 0400);
	ck_assert_int_eq(chown(path, OTHER, OTHER), 0);
	ck_assert_int_eq(sfs_crypto_master_load(path, out, &err), SFS_EKEYFILE);
	assert_msg_has("is owned by uid 4321, not by you or root");
	/* root's is accepted (a root-provisioned credential) */
	ck_assert_int_eq(chown(path, 0, 0), 0);
	ck_assert_int_eq(sfs_crypto_master_load(path, out, &err), SFS_OK);
	ck_assert(memcmp(out, key, sizeof(key)) == 0);
}
END_TEST

START_TEST(passphrase_file_readable_by_others_refused)
{
	const char *path = in(tmp, "pass");
	size_t len = 0;
	char *pass = NULL;

	tu_write_file(path, "correct horse\n", 14, 0644);
	ck_assert_int_eq(sfs_crypto_passphrase_read(path, &pass, &len, &err),
			 SFS_EKEYFILE);
	ck_assert_ptr_null(pass);
	assert_msg_has("is readable by group or others (mode 0644)");
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(sfs_crypto_passphrase_read(path, &pass, &len, &err),
			 SFS_EKEYFILE);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(sfs_crypto_passphrase_read(path, &pass, &len, &err),
			 SFS_OK);
	ck_assert_str_eq(pass, "correct horse");
	sfs_crypto_free_secret(pass, len + 1);
}
END_TEST

START_TEST(passphrase_file_of_another_owner_refused)
{
	const char *path = in(tmp, "pass");
	size_t len = 0;
	char *pass = NULL;

	NEED_ROOT();
	tu_write_file(path, "correct horse\n", 14, 0600);
	ck_assert_int_eq(chown(path, OTHER, OTHER), 0);
	opts.passphrase_file = path;
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_EKEYFILE);
	assert_msg_has("passphrase file");
	assert_msg_has("is owned by uid 4321, not by you or root");
	ck_assert_int_eq(access(store, F_OK), -1);
	ck_assert_int_eq(chown(path, 0, 0), 0);
	ck_assert_int_eq(sfs_crypto_passphrase_read(path, &pass, &len, &err),
			 SFS_OK);
	sfs_crypto_free_secret(pass, len + 1);
}
END_TEST

/* ---- the command line: a clear message, exit 1 ------------------------- */

START_TEST(cli_mount_with_symlinked_lock_refused)
{
	const char *bin = getenv("SECRETFS_BIN");
	const char *target = victim();
	char mp[600];
	struct print v;
	struct tu_proc p;

	ck_assert_msg(bin && *bin, "SECRETFS_BIN is not set");
	snprintf(mp, sizeof(mp), "%s/mnt", tmp);
	ck_assert_int_eq(mkdir(mp, 0755), 0);
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_OK);
	ck_assert_int_eq(symlink(target, in(store, "lock")), 0);
	take(&v, target);
	const char *argv[] = {bin, "--store", store, "mount", mp, "-f", NULL};
	memset(&p, 0, sizeof(p));
	p.argv = argv;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	ck_assert_int_eq(p.status, 1);
	ck_assert_msg(strstr(p.err, "'lock' is a symbolic link, not a "
				    "regular file: refused"),
		      "%s", p.err);
	same(&v, target);
	tu_proc_release(&p);
}
END_TEST

/* `secretfs audit` reads no log through a symlink: the file it points
 * at (root's) is never printed. */
START_TEST(cli_audit_with_symlinked_log_refused)
{
	const char *bin = getenv("SECRETFS_BIN");
	const char *target = victim();
	struct tu_proc p;

	ck_assert_msg(bin && *bin, "SECRETFS_BIN is not set");
	ck_assert_int_eq(sfs_ctx_init(&opts, &err), SFS_OK);
	ck_assert_int_eq(unlink(in(store, "audit.log")), 0);
	ck_assert_int_eq(symlink(target, in(store, "audit.log")), 0);
	const char *argv[] = {bin, "--store", store, "audit", NULL};
	memset(&p, 0, sizeof(p));
	p.argv = argv;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	ck_assert_int_eq(p.status, 1);
	ck_assert_uint_eq(p.out_len, 0);
	ck_assert_msg(strstr(p.err, "'audit.log' is a symbolic link"), "%s",
		      p.err);
	tu_proc_release(&p);
}
END_TEST

static Suite *security_store_suite(void)
{
	const TTest *const tests[] = {
	    planted_key_and_db_in_premade_0777_dir_refused,
	    group_writable_store_dir_refused,
	    init_refuses_non_empty_dir,
	    symlinked_audit_log_to_root_file_refused,
	    symlinked_generation_to_root_file_refused,
	    symlinked_lock_to_root_file_refused,
	    symlinked_write_lock_to_root_file_refused,
	    symlinked_db_wal_to_root_file_refused,
	    store_file_of_another_owner_refused,
	    subdirectory_let_be_unless_foreign,
	    store_files_opened_without_following_symlinks,
	    storedir_errcode_maps_errno_for_store_files_and_audit_log,
	    master_key_of_another_owner_refused,
	    passphrase_file_readable_by_others_refused,
	    passphrase_file_of_another_owner_refused,
	    cli_mount_with_symlinked_lock_refused,
	    cli_audit_with_symlinked_log_refused,
	};

	return harness_suite("security_store", tests,
			     sizeof(tests) / sizeof(tests[0]), setup, teardown,
			     0);
}

const struct harness harness = {.suite = security_store_suite};
