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
 */
#include <sys/mount.h>

#include "lib/fault_store.h"
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

int main(void)
{
	const TTest *const tests[] = {
	    store_on_full_disk, injected_commit_eio, injected_commit_enospc,
	};

	return ru_main("diskfull", tests, sizeof(tests) / sizeof(tests[0]),
		       120);
}
