/*
 * Disk full and I/O errors (issue 5, item 7).
 *
 * - The store on a small ext4 filesystem (a loop-mounted file; root
 *   only: otherwise the test prints SKIP), filled up while the daemon
 *   runs: every write's close() returns 0 or exactly ENOSPC/EIO; once
 *   space returns the same daemon accepts writes again; after a restart
 *   every version whose close() returned 0 is there, exact, and the
 *   store's integrity check passes.
 * - Injected store failures (tests/lib/fault_store.h) at commit: the
 *   caller gets SFS_EIO / SFS_ENOSPC (EIO / ENOSPC through the mount's
 *   errno table), the failed change is absent after reopening, every
 *   reported one present, and the next change succeeds.
 * - Injected fsync failures under SQLite (tests/lib/crashvfs.h), for a
 *   secret create, a version add and a destroy, failing each sync of
 *   its commit in turn, whatever journal the store uses: the caller gets
 *   SFS_EIO with the store's message. Power lost right after: the store
 *   reopened with the plain unix VFS passes its integrity check and
 *   shows exactly the state before the change or exactly the state with
 *   it (never part of it). Syncs working again: the same context reads
 *   and commits, and after power loss every change it reported is
 *   there.
 */
#include <inttypes.h>
#include <sys/mount.h>

#include "lib/crashvfs.h"
#include "lib/fault_store.h"
#include "lib/svcdump.h"
#include "rel_util.h"

#define VCAP 16384

static char loop_dir[400];

static void loop_cleanup(void)
{
	if (loop_dir[0] && ru_mounted(loop_dir))
		umount2(loop_dir, MNT_DETACH);
}

/* A 6 MiB ext4 mounted at h_base/fs; 0, or -1 (SKIP) when impossible. */
static int loop_fs(void)
{
	char img[600];
	char *mkfs[] = {"mkfs.ext4", "-q", "-F", img, NULL};
	char *mnt[] = {"mount", "-o", "loop", img, loop_dir, NULL};
	int fd;

	if (geteuid() != 0)
		return -1;
	snprintf(img, sizeof(img), "%s/fs.img", h_base);
	snprintf(loop_dir, sizeof(loop_dir), "%s/fs", h_base);
	fd = open(img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, 6 << 20))
		return -1;
	close(fd);
	if (mkdir(loop_dir, 0700) || h_run(mkfs, NULL) != 0 ||
	    h_run(mnt, NULL) != 0)
		return -1;
	atexit(loop_cleanup);
	return 0;
}

/* Fill the filesystem of dir; leave `room` bytes of the filler off. */
static void fill(const char *path, off_t room)
{
	static char chunk[65536];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	off_t total = 0;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	memset(chunk, 'F', sizeof(chunk));
	while ((n = write(fd, chunk, sizeof(chunk))) > 0)
		total += n;
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(ftruncate(fd, total > room ? total - room : 0), 0);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
}

START_TEST(store_on_full_disk)
{
	static unsigned char v[VCAP];
	char filler[700], tag[RU_TAG_MAX], rel[64];
	int acked[200], nacked = 0, fails = 0, i, e;
	struct sfs_ctx *ctx;
	struct sfs_caller c;
	struct sfs_value val;
	struct sfs_error err;
	size_t len;

	if (loop_fs()) {
		printf("store_on_full_disk: SKIP: needs root and a loop "
		       "device (mkfs.ext4 + mount -o loop)\n");
		return;
	}
	snprintf(h_store, sizeof(h_store), "%s/store", loop_dir);
	ck_assert_int_eq(cli("init", NULL), 0);
	ck_assert_int_eq(cli("secret", "create", "d", "--value", "seed",
			     NULL), 0);
	up(NULL);
	snprintf(filler, sizeof(filler), "%s/filler", loop_dir);
	fill(filler, 96 * 1024);
	for (i = 2; i < 200 && fails < 5; i++) {
		snprintf(tag, sizeof(tag), "d-v%d", i);
		len = ru_value(tag, v, VCAP);
		e = put("secrets/d/default", O_WRONLY | O_TRUNC, v, len);
		ck_assert_msg(e == 0 || e == ENOSPC || e == EIO,
			      "write %d: %s", i, strerror(e));
		if (e)
			fails++;
		else
			acked[nacked++] = i;
	}
	ck_assert_msg(fails > 0, "the disk never filled up");
	/* space returns: the same daemon serves and commits again */
	ck_assert_int_eq(unlink(filler), 0);
	sync();
	len = ru_value("d-after", v, VCAP);
	ck_assert_int_eq(put("secrets/d/default", O_WRONLY | O_TRUNC, v, len),
			 0);
	assert_reads("secrets/d/versions/1", "seed");
	down();
	/* after a restart: every acknowledged value is there, exact */
	ctx = ru_ctx();
	ru_assert_integrity(ctx);
	sfs_caller_self(&c);
	sfs_error_clear(&err);
	ck_assert_int_eq(sfs_version_read(ctx, &c, "d", 0, &val, NULL, &err),
			 0);
	ck_assert(ru_value_ok(val.data, val.len, VCAP, tag));
	ck_assert_str_eq(tag, "d-after");
	sfs_value_release(&val);
	sfs_ctx_close(ctx);
	up(NULL);
	for (i = 0; i < nacked; i++) {
		char *got;
		size_t n;
		int found = 0, k;

		/* acked value i is some version: find it by its tag */
		for (k = 2; k < 2 + nacked + fails + 2 && !found; k++) {
			snprintf(rel, sizeof(rel), "secrets/d/versions/%d", k);
			if (slurp(rel, &got, &n))
				continue;
			snprintf(tag, sizeof(tag), "d-v%d", acked[i]);
			len = ru_value(tag, v, VCAP);
			found = n == len && !memcmp(got, v, len);
			free(got);
		}
		ck_assert_msg(found, "acknowledged d-v%d is lost", acked[i]);
	}
	down();
	loop_cleanup();
	printf("store_on_full_disk: %d writes committed, %d refused with "
	       "ENOSPC/EIO, all committed ones present\n", nacked, fails);
}
END_TEST

/* Injected failures at commit, through the core's services. */
static void injected(int code)
{
	struct sfs_ctx *ctx = ru_ctx();
	struct sfs_store *fs;
	struct sfs_caller c;
	struct sfs_value val;
	struct sfs_error e;
	struct ru_nums nums;

	sfs_caller_self(&c);
	sfs_error_clear(&e);
	ck_assert_int_eq(cli("secret", "create", "s", "--value", "one", NULL),
			 0);
	/* the wrapper takes the real store over: the context closes it */
	fs = fault_store_wrap(sfs_ctx_store(ctx));
	(void)sfs_ctx_swap_store(ctx, fs);
	ck_assert_int_eq(sfs_version_add(ctx, &c, "s", "two", 3, 0, NULL, &e),
			 0);
	fault_store_fail_op(fs, "commit", code);
	ck_assert_int_eq(sfs_version_add(ctx, &c, "s", "lost", 4, 0, NULL, &e),
			 code);
	ck_assert_int_eq(sfs_err_errno(code), code == SFS_EIO ? EIO : ENOSPC);
	fault_store_reset(fs);
	ck_assert_int_eq(sfs_version_add(ctx, &c, "s", "three", 5, 0, NULL,
					 &e), 0);
	sfs_ctx_close(ctx);
	/* reopened: one, two, three; the failed one absent */
	ctx = ru_ctx();
	ru_assert_integrity(ctx);
	ru_versions(ctx, "s", &nums);
	ck_assert_int_eq(nums.count, 3);
	ck_assert_int_eq(sfs_version_read(ctx, &c, "s", 0, &val, NULL, &e), 0);
	ck_assert_uint_eq(val.len, 5);
	ck_assert_int_eq(memcmp(val.data, "three", 5), 0);
	sfs_value_release(&val);
	sfs_ctx_close(ctx);
}

START_TEST(injected_commit_eio)
{
	injected(SFS_EIO);
}
END_TEST

START_TEST(injected_commit_enospc)
{
	injected(SFS_ENOSPC);
}
END_TEST

/* ---- injected fsync failures ------------------------------------------ */

/* What SQLite's failed sync reads as, through the store's commit. */
#define SYNC_MSG "commit: disk I/O error"

enum sync_op { SO_CREATE, SO_ADD, SO_DESTROY };

static const char *const sync_op_name[] = {"secret create", "version add",
					   "version destroy"};

static int sync_op_run(struct sfs_ctx *ctx, enum sync_op op,
		       struct sfs_error *e)
{
	struct sfs_secret_new n;
	struct sfs_caller c;

	sfs_caller_self(&c);
	sfs_error_clear(e);
	switch (op) {
	case SO_CREATE:
		memset(&n, 0, sizeof(n));
		n.name = "n";
		n.value = "new";
		n.value_len = 3;
		return sfs_secret_create(ctx, &c, &n, NULL, e);
	case SO_ADD:
		return sfs_version_add(ctx, &c, "s", "three", 5, 0, NULL, e);
	case SO_DESTROY:
		return sfs_version_destroy(ctx, &c, "s", 1, e);
	}
	return SFS_EINVAL;
}

/* The store the failures start from, at h_store, made through the plain
 * unix VFS: s with "one" (deactivated, so destroyable) and "two" (the
 * changes reported done before). */
static void sync_template(void)
{
	struct sfs_ctx *ctx;
	struct sfs_caller c;
	struct sfs_error e;

	unsetenv("SECRETFS_MASTER_KEY");
	ctx = sd_open(h_store, 1);
	sfs_caller_self(&c);
	sfs_error_clear(&e);
	ck_assert_int_eq(cli("secret", "create", "s", "--value", "one", NULL),
			 0);
	ck_assert_int_eq(sfs_version_add(ctx, &c, "s", "two", 3, 0, NULL, &e),
			 0);
	ck_assert_int_eq(sfs_version_set_state(ctx, &c, "s", 1, 0, &e), 0);
	sfs_ctx_close(ctx);
}

/* The store's state through the unix VFS, its integrity checked. */
static char *dump_at(const char *dir)
{
	struct sfs_ctx *ctx = sd_open(dir, 1);
	char *text;

	ru_assert_integrity(ctx);
	text = sd_dump_checked(ctx, 0);
	sfs_ctx_close(ctx);
	return text;
}

/* Open a copy of the template under crashvfs (keep: what a power cut
 * keeps); *dir the copy. */
static struct sfs_ctx *shim_open(char **dir, enum crashvfs_keep keep,
				 uint64_t seed)
{
	*dir = sd_copy_dir(h_store, "diskfull-sync");
	ck_assert_int_eq(crashvfs_install(), 0);
	crashvfs_arm(0, seed, keep);
	return sd_open(*dir, 1);
}

/* Power lost now: the context closes (every call fails), the shim goes;
 * what the disk holds is read back through the unix VFS. */
static char *power_loss(struct sfs_ctx *ctx, const char *dir)
{
	crashvfs_crash_now();
	sfs_ctx_close(ctx);
	crashvfs_uninstall();
	return dump_at(dir);
}

struct sync_ref {
	char *before, *after; /* the state without and with the change */
	char *before_resumed, *after_resumed; /* the same, "after" added */
	long syncs; /* syncs of the change's commit */
};

/* The state the template reaches through op (-1: none), then the
 * version "after" if add; *syncs (may be NULL) the syncs of op. */
static char *ref_state(int op, int add, long *syncs)
{
	struct sfs_caller c;
	struct sfs_error e;
	struct sfs_ctx *ctx;
	char *dir, *text;

	sfs_caller_self(&c);
	ctx = shim_open(&dir, CRASHVFS_DROP_ALL, 1);
	if (op >= 0)
		ck_assert_msg(sync_op_run(ctx, (enum sync_op)op, &e) == 0,
			      "%s: %s", sync_op_name[op], e.msg);
	if (syncs)
		*syncs = crashvfs_syncs();
	if (add)
		ck_assert_msg(sfs_version_add(ctx, &c, "s", "after", 5, 0,
					      NULL, &e) == 0,
			      "add: %s", e.msg);
	sfs_ctx_close(ctx);
	crashvfs_uninstall();
	text = dump_at(dir);
	tu_rmrf(dir);
	free(dir);
	return text;
}

/* The change without a failure: its syncs and the states it leaves. */
static void sync_reference(enum sync_op op, struct sync_ref *r)
{
	r->before = ref_state(-1, 0, NULL);
	r->after = ref_state((int)op, 0, &r->syncs);
	ck_assert_int_ge(r->syncs, 1);
	ck_assert_str_ne(r->after, r->before);
	r->before_resumed = ref_state(-1, 1, NULL);
	r->after_resumed = ref_state((int)op, 1, NULL);
}

static void sync_ref_free(struct sync_ref *r)
{
	free(r->before);
	free(r->after);
	free(r->before_resumed);
	free(r->after_resumed);
}

/*
 * The change whose k-th sync fails: SFS_EIO and the store's message in
 * the caller's error; 1 then. A sync after the commit's own (the
 * checkpoint that follows a destroy, so destroyed bytes leave the WAL:
 * core/store_sqlite.c) may fail with the change already durable: the
 * change then reports done; 0 then, never for the first sync.
 */
static int assert_sync_failure(struct sfs_ctx *ctx, enum sync_op op, long k)
{
	struct sfs_error e;
	int rc = sync_op_run(ctx, op, &e);

	if (rc == SFS_OK && k > 1)
		return 0;
	ck_assert_msg(rc == SFS_EIO, "%s, sync %ld failing: %s (%s)",
		      sync_op_name[op], k, sfs_err_name(rc), e.msg);
	ck_assert_int_eq(e.code, SFS_EIO);
	ck_assert_str_eq(e.msg, SYNC_MSG);
	ck_assert_int_eq(sfs_err_errno(rc), EIO);
	return 1;
}

/* The k-th sync of op's commit fails (lose: crashvfs_fail_sync's), then
 * power goes (keep): 1 when the change turned out complete. */
static int fail_run(const struct sync_ref *r, enum sync_op op, long k,
		    int keep, int lose)
{
	struct sfs_ctx *ctx;
	char *dir, *now;
	int complete, failed;

	ctx = shim_open(&dir, (enum crashvfs_keep)keep,
			(uint64_t)(k * 6 + keep * 2 + lose));
	crashvfs_fail_sync(k, 1, lose);
	failed = assert_sync_failure(ctx, op, k);
	now = power_loss(ctx, dir);
	complete = !strcmp(now, r->after);
	ck_assert_msg(failed || complete,
		      "%s, sync %ld of %ld failed after the change reported "
		      "done, keep %d, lose %d: after power loss the store "
		      "holds\n%s\nnot\n%s",
		      sync_op_name[op], k, r->syncs, keep, lose, now, r->after);
	ck_assert_msg(complete || !strcmp(now, r->before),
		      "%s, sync %ld of %ld failed, keep %d, lose %d: after "
		      "power loss the store holds\n%s\nneither before\n%s\n"
		      "nor after\n%s",
		      sync_op_name[op], k, r->syncs, keep, lose, now,
		      r->before, r->after);
	free(now);
	tu_rmrf(dir);
	free(dir);
	return complete;
}

/*
 * Each sync of the change's commit fails in turn, the changes it covered
 * kept pending or lost, then power goes (unsynced writes dropped, kept
 * or torn): the store is intact and holds exactly the state before the
 * change or exactly the state with it.
 */
static void fail_then_power_loss(enum sync_op op)
{
	struct sync_ref r;
	int keep, lose, runs = 0, complete = 0;
	long k;

	sync_template();
	sync_reference(op, &r);
	for (k = 1; k <= r.syncs; k++)
		for (keep = 0; keep < 3; keep++)
			for (lose = 0; lose < 2; lose++, runs++)
				complete += fail_run(&r, op, k, keep, lose);
	printf("diskfull: %s: each of its %ld syncs failed in turn (SFS_EIO, "
	       "or done for a checkpoint after the commit), then power "
	       "lost: %d runs, intact, the change absent in %d and complete "
	       "in %d\n",
	       sync_op_name[op], r.syncs, runs, runs - complete, complete);
	sync_ref_free(&r);
}

START_TEST(fsync_fail_create)
{
	fail_then_power_loss(SO_CREATE);
}
END_TEST

START_TEST(fsync_fail_add)
{
	fail_then_power_loss(SO_ADD);
}
END_TEST

START_TEST(fsync_fail_destroy)
{
	fail_then_power_loss(SO_DESTROY);
}
END_TEST

/* Version n of s (0: the default) reads exactly want. */
static void assert_value(struct sfs_ctx *ctx, uint32_t n, const char *want)
{
	struct sfs_value val = {NULL, 0};
	struct sfs_caller c;
	struct sfs_error e;

	sfs_caller_self(&c);
	ck_assert_msg(sfs_version_read(ctx, &c, "s", n, &val, NULL, &e) == 0,
		      "read s %u: %s", n, e.msg);
	ck_assert_uint_eq(val.len, strlen(want));
	ck_assert_int_eq(memcmp(val.data, want, val.len), 0);
	sfs_value_release(&val);
}

/*
 * After the failure syncs work again (the disk came back): the same
 * context reads "two" and adds "after" (now the default), its state is
 * exactly the state before the failed change or with it, plus "after";
 * power lost then, the store reopened holds exactly what that context
 * last showed.
 */
static int resume_one(const struct sync_ref *r, enum sync_op op, long k,
		      int lose)
{
	struct sfs_caller c;
	struct sfs_error e;
	struct sfs_ctx *ctx;
	char *dir, *live, *now;
	int with, failed;

	sfs_caller_self(&c);
	ctx = shim_open(&dir, CRASHVFS_KEEP_SOME, (uint64_t)(k * 2 + lose));
	crashvfs_fail_sync(k, 1, lose);
	failed = assert_sync_failure(ctx, op, k);
	crashvfs_fail_sync(0, 0, 0);
	assert_value(ctx, 2, "two");
	ck_assert_msg(sfs_version_add(ctx, &c, "s", "after", 5, 0, NULL, &e) ==
		      0, "%s, sync %ld failed: add after: %s",
		      sync_op_name[op], k, e.msg);
	assert_value(ctx, 0, "after");
	live = sd_dump_checked(ctx, 0);
	with = !strcmp(live, r->after_resumed);
	ck_assert_msg(failed || with, "%s, sync %ld failed after the change "
		      "reported done: resumed, the store shows\n%s",
		      sync_op_name[op], k, live);
	ck_assert_msg(with || !strcmp(live, r->before_resumed),
		      "%s, sync %ld failed, lose %d: resumed, the store "
		      "shows\n%s", sync_op_name[op], k, lose, live);
	now = power_loss(ctx, dir);
	ck_assert_msg(!strcmp(now, live), "%s, sync %ld failed, lose %d: "
		      "the context showed\n%s\nbut after power loss the store "
		      "holds\n%s", sync_op_name[op], k, lose, live, now);
	free(live);
	free(now);
	tu_rmrf(dir);
	free(dir);
	return with;
}

START_TEST(fsync_fail_service_resumes)
{
	struct sync_ref r;
	enum sync_op op;
	int lose, runs = 0, with = 0;
	long k;

	sync_template();
	for (op = SO_CREATE; op <= SO_DESTROY; op++) {
		sync_reference(op, &r);
		for (k = 1; k <= r.syncs; k++)
			for (lose = 0; lose < 2; lose++, runs++)
				with += resume_one(&r, op, k, lose);
		sync_ref_free(&r);
	}
	printf("diskfull: fsync failures: %d runs, each followed by a read "
	       "and a committed version in the same context, all there "
	       "after power loss; the change that failed was there after "
	       "all in %d\n", runs, with);
}
END_TEST

static Suite *diskfull_suite(void)
{
	const TTest *const tests[] = {
	    store_on_full_disk, injected_commit_eio, injected_commit_enospc,
	    fsync_fail_create, fsync_fail_add, fsync_fail_destroy,
	    fsync_fail_service_resumes,
	};

	return ru_suite("diskfull", tests, sizeof(tests) / sizeof(tests[0]),
			120);
}

const struct harness harness = {.suite = diskfull_suite, .fork = CK_FORK};
