/*
 * Mount tests for findings of the security review (issue 10) that have no
 * suite of their own: .status shows only what the caller's view shows
 * (finding 10), and a write handle whose write or truncate failed commits
 * nothing (finding 13). Each test is named after its finding. Switching
 * uid needs root; without it those tests say SKIPPED rather than pass.
 */
#include <sys/mman.h>
#include <sys/sendfile.h>

#include "mount_harness.h"

#define OTHER 4321

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

/* Finding 13: a growing ftruncate fails (it would leave a hole); the
 * close that follows returns that error and commits nothing. */
START_TEST(finding13_failed_truncate_commits_nothing)
{
	int fd;

	mk("db", "seed");
	up(NULL);
	fd = open(P("secrets/db/default"), O_WRONLY | O_TRUNC | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "abc", 3, 0), 3);
	ck_assert_int_eq(ERR(ftruncate(fd, 100)), EINVAL);
	ck_assert_int_eq(ERR(ftruncate(fd, 1)), EINVAL); /* poisoned */
	ck_assert_int_eq(ERR(close(fd)), EINVAL);
	assert_reads("secrets/db/default", "seed");
	assert_xattr("secrets/db", "user.secret.latest_version", "1");
}
END_TEST

/* The same for a staged file: after a failed truncate its rename onto
 * default refuses with that error and commits nothing. */
START_TEST(finding13_staged_failed_truncate_commits_nothing)
{
	int fd;

	mk("db", "seed");
	up(NULL);
	fd = open(P("secrets/db/.tmp"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		  0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "abc", 3, 0), 3);
	ck_assert_int_eq(ERR(ftruncate(fd, 100)), EINVAL);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(
	    ERR(rename(P("secrets/db/.tmp"), P("secrets/db/default"))), EINVAL);
	assert_reads("secrets/db/default", "seed");
	assert_xattr("secrets/db", "user.secret.latest_version", "1");
}
END_TEST

/* Finding 10: inside an only= view, .status counted the whole store. */
START_TEST(finding10_status_counts_within_view)
{
	char *got;

	mk("app-db", "one");
	mk("other", "one");
	ck_assert_int_eq(cli("version", "add", "other", "--value", "two", NULL),
			 0);
	up("only=app-*");
	ck_assert_int_eq(slurp(".status", &got, NULL), 0);
	ck_assert_msg(strstr(got, "\"secrets\": 1,\n") &&
			  strstr(got, "\"versions\": 1,\n"),
		      "%s", got);
	free(got);
}
END_TEST

/* .status as a child sees it: no store path, its stat size its own. */
static int status_as_other(void *arg)
{
	struct stat st;
	char *got;
	size_t len;
	int e = slurp(".status", &got, &len);

	(void)arg;
	if (e)
		return e;
	if (strstr(got, h_store) || !strstr(got, "\"store\": null,\n"))
		e = 200;
	else if (stat(P(".status"), &st) || st.st_size != (off_t)len)
		e = 201;
	free(got);
	return e;
}

/* Finding 10: .status showed the store's path to anyone; only root and
 * the mount's owner see it (and the store's last error). */
START_TEST(finding10_status_store_path_private)
{
	char *got, want[600];
	struct stat st;
	size_t len;

	NEED_ROOT();
	up("allow_other");
	ck_assert_int_eq(slurp(".status", &got, &len), 0);
	snprintf(want, sizeof(want), "\"store\": \"%s\",\n", h_store);
	ck_assert_msg(strstr(got, want), "%s", got);
	ck_assert_int_eq(stat(P(".status"), &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)len);
	free(got);
	ck_assert_int_eq(as_user(OTHER, OTHER, status_as_other, NULL), 0);
}
END_TEST


/* Is the first page of the file that map shows in the page cache? */
static int page_cached(void *map)
{
	unsigned char v = 0;

	ck_assert_int_eq(mincore(map, 4096, &v), 0);
	return v & 1;
}

/* The release that drops the pages reaches the daemon after close(2)
 * returns: wait for it, at most 5 s. */
static int page_dropped(void *map)
{
	int i;

	for (i = 0; i < 500 && page_cached(map); i++)
		usleep(10000);
	return !page_cached(map);
}

/* cache=strict keeps plaintext out of the page cache. read(2) never
 * goes there (direct I/O), but sendfile(2) and a private mmap(2) are
 * served from it; what they brought in is dropped when their handle
 * closes. (A private mapping made first, never touched, shows the
 * file's page cache through mincore.) */
START_TEST(strict_sendfile_and_mmap_pages_dropped_at_close)
{
	char value[3001];
	int fd, in, out;
	void *map, *m2;

	memset(value, 'x', 3000);
	value[3000] = '\0';
	mk("db", value);
	up(NULL);
	fd = open(P("secrets/db/default"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	map = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(page_cached(map), 0);
	in = open(P("secrets/db/default"), O_RDONLY);
	out = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(in, 0);
	ck_assert_int_eq(sendfile(out, in, NULL, 65536), 3000);
	ck_assert_int_eq(page_cached(map), 1); /* while it is open */
	ck_assert_int_eq(close(in), 0);
	ck_assert(page_dropped(map));
	in = open(P("secrets/db/default"), O_RDONLY);
	m2 = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, in, 0);
	ck_assert_ptr_ne(m2, MAP_FAILED);
	ck_assert_int_eq(memcmp(m2, value, 3000), 0);
	ck_assert_int_eq(munmap(m2, 4096), 0);
	ck_assert_int_eq(close(in), 0);
	ck_assert(page_dropped(map));
	munmap(map, 4096);
	close(out);
	close(fd);
}
END_TEST

static Suite *mount_review_suite(void)
{
	const TTest *const tests[] = {
	    strict_sendfile_and_mmap_pages_dropped_at_close,
	    finding13_failed_truncate_commits_nothing,
	    finding13_staged_failed_truncate_commits_nothing,
	    finding10_status_counts_within_view,
	    finding10_status_store_path_private,
	};

	return h_suite("mount_review", tests, sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_review_suite, .fork = CK_FORK};
