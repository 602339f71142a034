/*
 * Mount tests: the real daemon on a fresh store and mountpoint per test
 * (tests/mount_harness.h), checked through the filesystem as a user
 * would: the tree, reads and snapshots, every write path, the errno
 * values of SPEC §3, kv/, keys/, .status, and CLI changes seen through
 * the mount. Extended attributes, other uids and mount options are in
 * test_mount_xattr.c and test_mount_access.c.
 */
#include <dirent.h>
#include <sys/file.h>

#include "mount_harness.h"
#include "secretfs/value.h"

/* Sorted names of a directory under the mount, joined by ' '. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *list(const char *rel)
{
	static char out[4096];
	char *names[256];
	struct dirent *e;
	DIR *d = opendir(P(rel));
	int n = 0, i;

	out[0] = '\0';
	if (!d)
		return NULL;
	while ((e = readdir(d)) && n < 256)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	for (i = 0; i < n; i++) {
		if (i)
			strcat(out, " ");
		strncat(out, names[i], sizeof(out) - strlen(out) - 2);
		free(names[i]);
	}
	return out;
}

#define assert_list(rel, s)                                                    \
	do {                                                                   \
		const char *l_ = list(rel);                                    \
		ck_assert_msg(l_, "%s: %s", rel, strerror(errno));             \
		ck_assert_str_eq(l_, s);                                       \
	} while (0)

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

static void add(const char *name, const char *value)
{
	ck_assert_int_eq(cli("version", "add", name, "--value", value, NULL),
			 0);
}

static const char *latest(const char *name)
{
	static char rel[300];

	snprintf(rel, sizeof(rel), "secrets/%s", name);
	return xget(rel, "user.secret.latest_version");
}

/* --- layout ------------------------------------------------------------ */

START_TEST(layout_root)
{
	struct stat st;

	up(NULL);
	assert_list("", ".status keys secrets");
	ck_assert_int_eq(stat(P("secrets"), &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(stat(P("keys"), &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(stat(P(".status"), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(ERR(stat(P("nothing"), &st)), ENOENT);
}
END_TEST

START_TEST(layout_secret)
{
	struct stat st;

	mk("db", "hunter2");
	mk("api", "k");
	up(NULL);
	assert_list("secrets", "api db");
	assert_list("secrets/db", "default versions"); /* text: no kv/ */
	assert_list("secrets/db/versions", "1");
	ck_assert_int_eq(stat(P("secrets/db/default"), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0440);
	ck_assert_int_eq(st.st_size, 7);
	ck_assert_uint_eq(st.st_uid, getuid());
	ck_assert_uint_eq(st.st_gid, getgid());
	ck_assert_int_gt(st.st_mtime, 0);
	ck_assert_int_eq(stat(P("secrets/db/versions/1"), &st), 0);
	ck_assert_int_eq(st.st_size, 7);
	ck_assert_int_eq(stat(P("secrets/db"), &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0550); /* 0440, x where r */
	ck_assert_int_eq(ERR(stat(P("secrets/nope"), &st)), ENOENT);
	ck_assert_int_eq(ERR(stat(P("secrets/db/versions/2"), &st)), ENOENT);
	ck_assert_int_eq(ERR(stat(P("secrets/db/other"), &st)), ENOENT);
}
END_TEST

START_TEST(layout_no_default)
{
	struct stat st;

	up(NULL);
	ck_assert_int_eq(mkdir(P("secrets/empty"), 0755), 0);
	assert_list("secrets/empty", "versions");
	assert_list("secrets/empty/versions", "");
	ck_assert_int_eq(ERR(stat(P("secrets/empty/default"), &st)), ENOENT);
	ck_assert_int_eq(ERR(open(P("secrets/empty/default"), O_RDONLY)),
			 ENOENT);
}
END_TEST

/* --- reads ------------------------------------------------------------- */

START_TEST(read_default_and_versions)
{
	char *got;
	size_t len;

	mk("db", "one");
	add("db", "second value");
	up(NULL);
	assert_reads("secrets/db/default", "second value");
	assert_reads("secrets/db/versions/1", "one");
	assert_reads("secrets/db/versions/2", "second value");
	ck_assert_int_eq(slurp("secrets/db/versions/3", &got, &len), ENOENT);
}
END_TEST

START_TEST(read_binary_exact)
{
	unsigned char v[300];
	char *got;
	size_t len, i;
	char path[600];

	for (i = 0; i < sizeof(v); i++)
		v[i] = (unsigned char)(i * 7);
	snprintf(path, sizeof(path), "%s/bin", h_base);
	tu_write_file(path, v, sizeof(v), 0600);
	ck_assert_int_eq(cli("secret", "create", "b", "--file", path, NULL), 0);
	up(NULL);
	ck_assert_int_eq(slurp("secrets/b/default", &got, &len), 0);
	ck_assert_uint_eq(len, sizeof(v));
	ck_assert_int_eq(memcmp(got, v, sizeof(v)), 0);
	free(got);
}
END_TEST

START_TEST(read_snapshot)
{
	char buf[64];
	int fd;
	ssize_t n;

	mk("db", "old bytes");
	up(NULL);
	fd = open(P("secrets/db/default"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	add("db", "new bytes, longer");
	n = read(fd, buf, sizeof(buf));
	ck_assert_int_eq(n, 9);
	ck_assert_int_eq(memcmp(buf, "old bytes", 9), 0);
	close(fd);
	/* the CLI's change is seen at the next open */
	assert_reads("secrets/db/default", "new bytes, longer");
}
END_TEST

START_TEST(read_deactivated)
{
	mk("db", "v");
	add("db", "w");
	ck_assert_int_eq(cli("version", "deactivate", "db", "1", NULL), 0);
	up(NULL);
	ck_assert_int_eq(ERR(open(P("secrets/db/versions/1"), O_RDONLY)),
			 EKEYREVOKED);
	assert_reads("secrets/db/default", "w");
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_eq(ERR(open(P("secrets/db/default"), O_RDONLY)),
			 EKEYREVOKED);
}
END_TEST

START_TEST(read_key_deactivated)
{
	ck_assert_int_eq(cli("key", "create", "k1", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "create", "db", "--key", "k1", "--value", "v", NULL),
	    0);
	ck_assert_int_eq(cli("key", "deactivate", "k1", NULL), 0);
	up(NULL);
	ck_assert_int_eq(ERR(open(P("secrets/db/default"), O_RDONLY)), ENOKEY);
}
END_TEST

START_TEST(read_tampered_ebadmsg)
{
	char db[600];
	char *argv[] = {"sqlite3", db,
			"UPDATE versions SET ciphertext = (SELECT ciphertext "
			"FROM versions WHERE version = 2) WHERE version = 1;",
			NULL};

	if (access("/usr/bin/sqlite3", X_OK)) {
		printf("read_tampered_ebadmsg: SKIPPED: no sqlite3 program\n");
		return;
	}
	mk("db", "aaaa");
	add("db", "bbbb");
	snprintf(db, sizeof(db), "%s/secretfs.db", h_store);
	up(NULL);
	/* one version's ciphertext moved onto another: never returned */
	ck_assert_int_eq(h_run(argv, NULL), 0);
	ck_assert_int_eq(ERR(open(P("secrets/db/versions/1"), O_RDONLY)),
			 EBADMSG);
	assert_reads("secrets/db/versions/2", "bbbb");
}
END_TEST

/* --- writes ------------------------------------------------------------ */

START_TEST(write_default_trunc)
{
	struct stat st;

	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(
	    put_s("secrets/db/default", O_WRONLY | O_TRUNC, "written"), 0);
	assert_reads("secrets/db/default", "written");
	assert_reads("secrets/db/versions/2", "written");
	assert_reads("secrets/db/versions/1", "v1");
	ck_assert_int_eq(stat(P("secrets/db/default"), &st), 0);
	ck_assert_int_eq(st.st_size, 7);
	ck_assert_str_eq(latest("db"), "2");
}
END_TEST

/* A new version through the mount leaves the kernel's cached versions/N
 * files to the poller (their content never changes; only their ctime,
 * the secret's last change, moves): the ctime shown still follows. */
START_TEST(write_default_version_ctime_follows)
{
	struct stat v1, d;
	int i;

	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(stat(P("secrets/db/versions/1"), &v1), 0);
	ck_assert_int_eq(
	    put_s("secrets/db/default", O_WRONLY | O_TRUNC, "written"), 0);
	ck_assert_int_eq(stat(P("secrets/db/default"), &d), 0);
	ck_assert(d.st_ctim.tv_sec != v1.st_ctim.tv_sec ||
		  d.st_ctim.tv_nsec != v1.st_ctim.tv_nsec);
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(stat(P("secrets/db/versions/1"), &v1), 0);
		if (v1.st_ctim.tv_sec == d.st_ctim.tv_sec &&
		    v1.st_ctim.tv_nsec == d.st_ctim.tv_nsec)
			break;
		usleep(10 * 1000);
	}
	ck_assert_int_eq(v1.st_ctim.tv_sec, d.st_ctim.tv_sec);
	ck_assert_int_eq(v1.st_ctim.tv_nsec, d.st_ctim.tv_nsec);
	ck_assert_int_eq(v1.st_size, 2);
	assert_reads("secrets/db/versions/1", "v1");
}
END_TEST

START_TEST(write_default_creates_first)
{
	up(NULL);
	ck_assert_int_eq(mkdir(P("secrets/new"), 0755), 0);
	ck_assert_int_eq(
	    put_s("secrets/new/default", O_WRONLY | O_CREAT | O_TRUNC, "first"),
	    0);
	assert_reads("secrets/new/default", "first");
	assert_list("secrets/new/versions", "1");
}
END_TEST

/* default opened for writing without O_TRUNC starts with the value it
 * replaces (vim opens, truncates, then writes); nothing written, nothing
 * committed. */
START_TEST(write_default_without_trunc)
{
	int fd;

	mk("db", "v1");
	up(NULL);
	fd = open(P("secrets/db/default"), O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_str_eq(latest("db"), "1");
	ck_assert_int_eq(put_s("secrets/db/default", O_WRONLY | O_APPEND, "+a"),
			 0);
	assert_reads("secrets/db/default", "v1+a");
	ck_assert_int_eq(put_s("secrets/db/default", O_WRONLY, "V"), 0);
	assert_reads("secrets/db/default", "V1+a");
	fd = open(P("secrets/db/default"), O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(write(fd, "new", 3), 3);
	ck_assert_int_eq(close(fd), 0);
	assert_reads("secrets/db/default", "new");
	ck_assert_str_eq(latest("db"), "4");
}
END_TEST

START_TEST(write_nothing_commits_nothing)
{
	int fd;

	mk("db", "v1");
	up(NULL);
	fd = open(P("secrets/db/default"), O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_str_eq(latest("db"), "1");
	assert_reads("secrets/db/default", "v1");
}
END_TEST

START_TEST(write_version_excl)
{
	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(
	    put_s("secrets/db/versions/2", O_WRONLY | O_CREAT | O_EXCL, "two"),
	    0);
	assert_reads("secrets/db/versions/2", "two");
	assert_reads("secrets/db/default", "two");
	/* compare-and-set: only latest+1 */
	ck_assert_int_eq(ERR(open(P("secrets/db/versions/5"),
				  O_WRONLY | O_CREAT | O_EXCL, 0600)),
			 EEXIST);
	ck_assert_int_eq(ERR(open(P("secrets/db/versions/2"),
				  O_WRONLY | O_CREAT | O_EXCL, 0600)),
			 EEXIST);
	ck_assert_str_eq(latest("db"), "2");
}
END_TEST

START_TEST(write_version_race_lost)
{
	int fd;

	mk("db", "v1");
	up(NULL);
	fd = open(P("secrets/db/versions/2"),
		  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "mine", 4), 4);
	add("db", "theirs"); /* another writer took 2 */
	ck_assert_int_eq(ERR(close(fd)), EEXIST);
	assert_reads("secrets/db/versions/2", "theirs");
}
END_TEST

START_TEST(write_existing_version_eperm)
{
	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(ERR(open(P("secrets/db/versions/1"), O_WRONLY)),
			 EPERM);
	ck_assert_int_eq(
	    ERR(open(P("secrets/db/versions/1"), O_WRONLY | O_TRUNC)), EPERM);
	ck_assert_int_eq(ERR(open(P("secrets/db/versions/1"), O_RDWR)), EPERM);
}
END_TEST

START_TEST(write_staged_rename)
{
	struct stat st;

	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(put_s("secrets/db/.tmp", O_WRONLY | O_CREAT | O_TRUNC,
			       "staged value"),
			 0);
	/* staged, not committed */
	ck_assert_str_eq(latest("db"), "1");
	assert_reads("secrets/db/default", "v1");
	assert_reads("secrets/db/.tmp", "staged value");
	assert_list("secrets/db", ".tmp default versions");
	ck_assert_int_eq(stat(P("secrets/db/.tmp"), &st), 0);
	ck_assert_int_eq(st.st_size, 12);
	ck_assert_int_eq(rename(P("secrets/db/.tmp"), P("secrets/db/default")),
			 0);
	assert_reads("secrets/db/default", "staged value");
	ck_assert_str_eq(latest("db"), "2");
	ck_assert_int_eq(ERR(stat(P("secrets/db/.tmp"), &st)), ENOENT);
	assert_list("secrets/db", "default versions");
}
END_TEST

START_TEST(write_staged_unlink)
{
	struct stat st;

	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(put_s("secrets/db/.x", O_WRONLY | O_CREAT, "abc"), 0);
	ck_assert_int_eq(unlink(P("secrets/db/.x")), 0);
	ck_assert_int_eq(ERR(stat(P("secrets/db/.x"), &st)), ENOENT);
	ck_assert_str_eq(latest("db"), "1");
}
END_TEST

START_TEST(write_efbig)
{
	static char big[65536];
	int fd;

	memset(big, 'x', sizeof(big));
	mk("db", "v1");
	up(NULL);
	fd = open(P("secrets/db/default"), O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	ck_assert_int_eq(ERR(write(fd, "y", 1)), EFBIG);
	close(fd);
	ck_assert_str_eq(latest("db"), "1");
	assert_reads("secrets/db/default", "v1");
}
END_TEST

START_TEST(write_max_size_ok)
{
	static char big[65536];
	struct stat st;

	memset(big, 'z', sizeof(big));
	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(
	    put("secrets/db/default", O_WRONLY | O_TRUNC, big, sizeof(big)), 0);
	ck_assert_int_eq(stat(P("secrets/db/versions/2"), &st), 0);
	ck_assert_int_eq(st.st_size, 65536);
}
END_TEST

START_TEST(write_staged_efbig)
{
	static char big[65537];

	memset(big, 'x', sizeof(big));
	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(
	    put("secrets/db/.big", O_WRONLY | O_CREAT, big, sizeof(big)),
	    EFBIG);
	ck_assert_int_eq(
	    ERR(rename(P("secrets/db/.big"), P("secrets/db/default"))), EFBIG);
	ck_assert_str_eq(latest("db"), "1");
}
END_TEST

START_TEST(write_close_returns_commit_error)
{
	int fd;

	mk("db", "v1");
	up(NULL);
	fd = open(P("secrets/db/default"), O_WRONLY | O_TRUNC | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "late", 4), 4);
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_eq(ERR(close(fd)), EKEYREVOKED);
	ck_assert_str_eq(latest("db"), "1");
	/* refused at open once the secret is deactivated */
	ck_assert_int_eq(ERR(open(P("secrets/db/default"), O_WRONLY | O_TRUNC)),
			 EKEYREVOKED);
}
END_TEST

START_TEST(write_child_close_does_not_commit)
{
	pid_t pid;
	int fd, st;

	mk("db", "v1");
	up(NULL);
	fd = open(P("secrets/db/default"), O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "half", 4), 4);
	pid = fork(); /* the child lets go of its copy of fd */
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_str_eq(latest("db"), "1");
	ck_assert_int_eq(write(fd, " and half", 9), 9);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_str_eq(latest("db"), "2");
	assert_reads("secrets/db/default", "half and half");
}
END_TEST

START_TEST(write_rm_default_eperm)
{
	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(ERR(unlink(P("secrets/db/default"))), EPERM);
	ck_assert_int_eq(ERR(rename(P("secrets/db"), P("secrets/db2"))), EPERM);
	ck_assert_int_eq(
	    ERR(rename(P("secrets/db/versions/1"), P("secrets/db/default"))),
	    EPERM);
	assert_reads("secrets/db/default", "v1");
	ck_assert_int_eq(ERR(symlink("x", P("secrets/db/.link"))), EPERM);
	ck_assert_int_eq(
	    ERR(link(P("secrets/db/default"), P("secrets/db/.hard"))), EPERM);
	ck_assert_int_eq(ERR(mknod(P("secrets/db/.fifo"), S_IFIFO | 0600, 0)),
			 EPERM);
}
END_TEST

/* --- directories and versions ------------------------------------------ */

START_TEST(mkdir_creates_secret)
{
	struct stat st;

	up(NULL);
	ck_assert_int_eq(mkdir(P("secrets/fresh"), 0755), 0);
	ck_assert_int_eq(stat(P("secrets/fresh"), &st), 0);
	assert_list("secrets", "fresh");
	assert_xattr("secrets/fresh", "user.kms.key_name", "service");
	ck_assert_int_eq(ERR(mkdir(P("secrets/fresh"), 0755)), EEXIST);
	ck_assert_int_eq(ERR(mkdir(P("secrets/bad name"), 0755)), EINVAL);
	ck_assert_int_eq(ERR(mkdir(P("secrets/fresh/sub"), 0755)), EPERM);
	ck_assert_int_eq(ERR(mkdir(P("elsewhere"), 0755)), EPERM);
}
END_TEST

/* A listing longer than one READDIR reply (the kernel asks for up to
 * 128 KiB at a time: here 1000 names of 120 bytes, about 150 KiB) is
 * complete and exact, every entry stats as a directory, and a secret made
 * with the CLI is in the next listing. */
#define MANY_SECRETS 1000
#define MANY_FMT     "m%04d%0115d"

/* secrets/: how often each of m0000.. and "late" is listed; -1 when any
 * other name is, or an entry does not stat as a directory. */
static int list_many(int *seen, int *late)
{
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(P("secrets"));
	char want[160];
	int i, bad = 0;

	memset(seen, 0, MANY_SECRETS * sizeof(*seen));
	*late = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) ||
		    !S_ISDIR(st.st_mode))
			bad = 1;
		if (sscanf(e->d_name, "m%4d", &i) != 1 || i < 0)
			i = MANY_SECRETS;
		snprintf(want, sizeof(want), MANY_FMT, i, 0);
		if (!strcmp(e->d_name, "late"))
			(*late)++;
		else if (i < MANY_SECRETS && !strcmp(e->d_name, want))
			seen[i]++;
		else
			bad = 1;
	}
	closedir(d);
	return bad ? -1 : 0;
}

START_TEST(listing_many_pages)
{
	int seen[MANY_SECRETS], late, i;
	char rel[160];

	up(NULL);
	for (i = 0; i < MANY_SECRETS; i++) {
		snprintf(rel, sizeof(rel), "secrets/" MANY_FMT, i, 0);
		ck_assert_int_eq(mkdir(P(rel), 0755), 0);
	}
	ck_assert_int_eq(list_many(seen, &late), 0);
	for (i = 0; i < MANY_SECRETS; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert_int_eq(late, 0);
	ck_assert_int_eq(cli("secret", "create", "late", NULL), 0);
	ck_assert_int_eq(list_many(seen, &late), 0);
	for (i = 0; i < MANY_SECRETS; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert_int_eq(late, 1);
}
END_TEST

START_TEST(mkdir_name_too_long)
{
	char name[140], rel[200];

	memset(name, 'a', 129);
	name[129] = '\0';
	snprintf(rel, sizeof(rel), "secrets/%s", name);
	up(NULL);
	ck_assert_int_eq(ERR(mkdir(P(rel), 0755)), ENAMETOOLONG);
	ck_assert_int_eq(ERR(access(P(rel), F_OK)), ENAMETOOLONG);
	name[128] = '\0';
	snprintf(rel, sizeof(rel), "secrets/%s", name);
	ck_assert_int_eq(mkdir(P(rel), 0755), 0);
}
END_TEST

START_TEST(rmdir_rules)
{
	struct stat st;

	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(ERR(rmdir(P("secrets/db"))), EBUSY);
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_eq(ERR(rmdir(P("secrets/db"))), ENOTEMPTY);
	ck_assert_int_eq(unlink(P("secrets/db/versions/1")), 0);
	ck_assert_int_eq(rmdir(P("secrets/db")), 0);
	ck_assert_int_eq(ERR(stat(P("secrets/db"), &st)), ENOENT);
	ck_assert_int_eq(ERR(rmdir(P("secrets/db"))), ENOENT);
}
END_TEST

START_TEST(rm_version)
{
	struct stat st;

	mk("db", "v1");
	add("db", "v2");
	up(NULL);
	/* in use: the version and its secret are active */
	ck_assert_int_eq(ERR(unlink(P("secrets/db/versions/2"))), EBUSY);
	ck_assert_int_eq(ERR(unlink(P("secrets/db/versions/1"))), EBUSY);
	assert_list("secrets/db/versions", "1 2");
	ck_assert_int_eq(setxattr(P("secrets/db/versions/2"),
				  "user.secret.version_state", "deactivated",
				  11, 0),
			 0);
	/* the default moved to the newest remaining active version */
	assert_reads("secrets/db/default", "v1");
	ck_assert_int_eq(unlink(P("secrets/db/versions/2")), 0);
	ck_assert_int_eq(ERR(stat(P("secrets/db/versions/2"), &st)), ENOENT);
	assert_list("secrets/db/versions", "1");
	assert_xattr("secrets/db", "user.secret.default_version", "1");
	ck_assert_int_eq(ERR(unlink(P("secrets/db/versions/9"))), ENOENT);
	/* versions left: not empty */
	ck_assert_int_eq(ERR(rmdir(P("secrets/db/versions"))), ENOTEMPTY);
}
END_TEST

START_TEST(chmod_chown_reflected)
{
	struct stat st;

	mk("db", "v1");
	up(NULL);
	ck_assert_int_eq(chmod(P("secrets/db"), 0400), 0);
	ck_assert_int_eq(stat(P("secrets/db/default"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0400);
	ck_assert_int_eq(stat(P("secrets/db/versions/1"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0400);
	ck_assert_int_eq(chown(P("secrets/db"), 1234, 5678), 0);
	ck_assert_int_eq(stat(P("secrets/db/default"), &st), 0);
	ck_assert_uint_eq(st.st_uid, 1234);
	ck_assert_uint_eq(st.st_gid, 5678);
	ck_assert_int_eq(ERR(chmod(P("secrets/db/default"), 0444)), EPERM);
	ck_assert_int_eq(ERR(truncate(P("secrets/db/default"), 0)), EPERM);
}
END_TEST

/* --- kv/, keys/, .status ----------------------------------------------- */

START_TEST(kv_entries)
{
	ck_assert_int_eq(cli("secret", "create", "app", "--kv", "user=admin",
			     "--kv", "pass=pw 1", NULL),
			 0);
	up(NULL);
	assert_list("secrets/app/kv", "pass user");
	assert_reads("secrets/app/kv/user", "admin");
	assert_reads("secrets/app/kv/pass", "pw 1");
	ck_assert_int_eq(ERR(open(P("secrets/app/kv/none"), O_RDONLY)), ENOENT);
}
END_TEST

START_TEST(kv_json_values)
{
	mk("j", "{\"n\": 1, \"o\": {\"a\": [1, 2]}, \"s\": \"x\", "
		"\"bad/name\": \"1\", \"..\": \"2\"}");
	up(NULL);
	assert_list("secrets/j/kv", "n o s");
	assert_reads("secrets/j/kv/n", "1");
	assert_reads("secrets/j/kv/o", "{\"a\":[1,2]}");
	assert_reads("secrets/j/kv/s", "x");
}
END_TEST

/* kv/ exists only while the default is a JSON object (SPEC §3). */
START_TEST(kv_absent_for_text)
{
	struct stat st;

	mk("t", "plain text");
	up(NULL);
	assert_list("secrets/t", "default versions");
	ck_assert_int_eq(ERR(stat(P("secrets/t/kv"), &st)), ENOENT);
	ck_assert_int_eq(ERR(stat(P("secrets/t/kv/a"), &st)), ENOENT);
}
END_TEST

START_TEST(keys_dir)
{
	char *got;
	size_t len;

	ck_assert_int_eq(cli("key", "create", "k1", NULL), 0);
	up(NULL);
	assert_list("keys", "k1 service");
	ck_assert_int_eq(slurp("keys/service", &got, &len), 0);
	ck_assert_ptr_nonnull(strstr(got, "\"name\": \"service\""));
	ck_assert_ptr_nonnull(strstr(got, "\"type\": \"service\""));
	ck_assert_ptr_nonnull(strstr(got, "\"state\": \"active\""));
	free(got);
	ck_assert_int_eq(slurp("keys/k1", &got, &len), 0);
	ck_assert_ptr_nonnull(strstr(got, "\"type\": \"user\""));
	ck_assert_ptr_nonnull(strstr(got, "\"version\": 1"));
	ck_assert_ptr_null(strstr(got, "current_version")); /* CLI's names */
	free(got);
	assert_xattr("keys/k1", "user.kms.key_type", "user");
	assert_xattr("keys/k1", "user.kms.key_state", "active");
	ck_assert_int_eq(ERR(open(P("keys/nokey"), O_RDONLY)), ENOENT);
}
END_TEST

/* keys/NAME and `key show --json` render a key with one function: the
 * same members with the same values (issue 11: keys/NAME said
 * "current_version" where the CLI says "version"). */
START_TEST(keys_file_same_fields_as_key_show)
{
	struct sfs_json *file, *shown;
	char *got, *out, *a, *b;
	size_t len;

	ck_assert_int_eq(cli("key", "create", "k1", NULL), 0);
	up(NULL);
	ck_assert_int_eq(slurp("keys/k1", &got, &len), 0);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(got[len - 1], '\n');
	out = cli_out("--json", "key", "show", "k1", NULL);
	file = sfs_json_parse(got, len);
	shown = sfs_json_parse(out, strlen(out));
	ck_assert_ptr_nonnull(file);
	ck_assert_ptr_nonnull(shown);
	a = sfs_json_dump(file, 0);
	b = sfs_json_dump(shown, 0);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	sfs_json_free(file);
	sfs_json_free(shown);
	free(out);
	free(got);
}
END_TEST

START_TEST(status_file)
{
	char *got, *out;
	size_t len;

	mk("db", "v");
	up(NULL);
	ck_assert_int_eq(slurp(".status", &got, &len), 0);
	ck_assert_ptr_nonnull(strstr(got, "\"health\": \"ok\""));
	ck_assert_ptr_nonnull(strstr(got, "\"backend\": \"sqlite\""));
	ck_assert_ptr_nonnull(strstr(got, "\"secrets\": 1"));
	ck_assert_ptr_nonnull(strstr(got, "\"cache\": \"strict\""));
	/* every option is reported (the harness mounts with auto_unmount) */
	ck_assert_ptr_nonnull(strstr(got, "\"auto_unmount\": true"));
	ck_assert_ptr_nonnull(strstr(got, "\"debug\": false"));
	ck_assert_ptr_nonnull(strstr(got, h_store));
	out = cli_out("status", h_mp, NULL);
	ck_assert_str_eq(out, got);
	free(out);
	free(got);
}
END_TEST

/* --- the CLI beside the mount ------------------------------------------ */

START_TEST(cli_changes_seen)
{
	struct stat st;

	up(NULL);
	ck_assert_int_eq(ERR(stat(P("secrets/later"), &st)), ENOENT);
	mk("later", "v1");
	ck_assert_int_eq(stat(P("secrets/later"), &st), 0);
	assert_reads("secrets/later/default", "v1");
	add("later", "v2");
	assert_reads("secrets/later/default", "v2");
	ck_assert_int_eq(cli("version", "deactivate", "later", "1", NULL), 0);
	ck_assert_int_eq(cli("version", "destroy", "later", "1", NULL), 0);
	ck_assert_int_eq(ERR(open(P("secrets/later/versions/1"), O_RDONLY)),
			 ENOENT);
}
END_TEST

START_TEST(audit_fs_read)
{
	char path[600], *log;

	mk("db", "v");
	up(NULL);
	assert_reads("secrets/db/default", "v");
	snprintf(path, sizeof(path), "%s/audit.log", h_store);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_ptr_nonnull(strstr(log, "\"comm\""));
	ck_assert_ptr_nonnull(strstr(log, "\"pid\""));
	ck_assert_ptr_nonnull(strstr(log, "test_mount"));
	free(log);
}
END_TEST

/* Lines of the store's audit log that contain s. */
static int audit_lines(const char *s)
{
	char path[600], *log, *p;
	int n = 0;

	snprintf(path, sizeof(path), "%s/audit.log", h_store);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(log);
	for (p = log; (p = strstr(p, s)); p++)
		n++;
	free(log);
	return n;
}

/* kv/ of a text value is empty: looking a name up there decrypts
 * nothing and writes no version.read line. */
START_TEST(audit_kv_text_lookup)
{
	struct stat st;
	int before;

	mk("db", "plain text");
	up(NULL);
	before = audit_lines("\"version.read\"");
	ck_assert_int_eq(ERR(stat(P("secrets/db/kv/user"), &st)), ENOENT);
	ck_assert_int_eq(ERR(open(P("secrets/db/kv/user"), O_RDONLY)), ENOENT);
	ck_assert_int_eq(audit_lines("\"version.read\""), before);
	assert_reads("secrets/db/default", "plain text");
	ck_assert_int_eq(audit_lines("\"version.read\""), before + 1);
}
END_TEST

/* --- the mount command ------------------------------------------------- */

START_TEST(mount_second_rw_refused)
{
	char mp2[600];
	pid_t pid = -1;
	char *log;

	up(NULL);
	snprintf(mp2, sizeof(mp2), "%s/mnt2", h_base);
	ck_assert_int_eq(mkdir(mp2, 0755), 0);
	ck_assert_int_eq(h_mount_at(mp2, NULL, &pid), 1);
	log = tu_read_file(h_log, NULL);
	ck_assert_ptr_nonnull(strstr(log, "secretfs: mount: "));
	ck_assert_ptr_nonnull(strstr(log, "read-write"));
	free(log);
	/* a read-only mount beside it is fine */
	ck_assert_int_eq(h_mount_at(mp2, "ro", &pid), 0);
	ck_assert_int_eq(h_umount_at(mp2, &pid), 0);
}
END_TEST

/*
 * A daemon just unmounted still holds the store's lock while it exits:
 * mounting again right after `fusermount3 -u` must wait for it, not
 * call the store busy. A child holds the lock for a moment to stand in
 * for the exiting daemon.
 */
START_TEST(mount_rw_waits_for_exiting_daemon)
{
	char path[600], c;
	int fds[2], fd, st;
	pid_t holder;
	struct timespec ts = {0, 200 * 1000 * 1000};

	snprintf(path, sizeof(path), "%s/lock", h_store);
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	holder = fork();
	ck_assert_int_ge(holder, 0);
	if (holder == 0) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || flock(fd, LOCK_EX))
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		nanosleep(&ts, NULL);
		_exit(0); /* the lock goes with the process */
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	up(NULL);
	ck_assert_int_eq(waitpid(holder, &st, 0), holder);
	ck_assert_int_eq(mkdir(P("secrets/after"), 0700), 0);
}
END_TEST

START_TEST(mount_nonempty_refused)
{
	char path[600], *log;
	pid_t pid = -1;

	snprintf(path, sizeof(path), "%s/file", h_mp);
	tu_write_file(path, "x", 1, 0600);
	ck_assert_int_eq(h_mount_at(h_mp, NULL, &pid), 1);
	log = tu_read_file(h_log, NULL);
	ck_assert_ptr_nonnull(strstr(log, "not an empty directory"));
	free(log);
}
END_TEST

START_TEST(mount_store_inside_refused)
{
	char *log;
	pid_t pid = -1;

	/* the store's own directory as the mountpoint */
	ck_assert_int_eq(h_mount_at(h_store, NULL, &pid), 1);
	log = tu_read_file(h_log, NULL);
	ck_assert_ptr_nonnull(strstr(log, "inside the mountpoint"));
	free(log);
}
END_TEST

/* Run the program through sh with stderr into the output; exit status. */
static int run_sh(char **out, const char *fmt, ...)
{
	char cmd[2048];
	char *argv[] = {"sh", "-c", cmd, NULL};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return h_run(argv, out);
}

START_TEST(mount_key_inside_refused)
{
	char key[600], inkey[600], *out, *data;
	size_t len;

	snprintf(key, sizeof(key), "%s/master.key", h_store);
	snprintf(inkey, sizeof(inkey), "%s/master.key", h_mp);
	data = tu_read_file(key, &len);
	ck_assert_ptr_nonnull(data);
	tu_write_file(inkey, data, len, 0400);
	free(data);
	ck_assert_int_eq(run_sh(&out,
				"'%s' --store '%s' --master-key '%s' "
				"mount '%s' -f 2>&1",
				h_bin(), h_store, inkey, h_mp),
			 1);
	ck_assert_ptr_nonnull(strstr(out, "master key is inside"));
	free(out);
}
END_TEST

START_TEST(mount_wrong_key_refused)
{
	char other[600], *out;
	unsigned char k[32];
	struct stat st;

	memset(k, 7, sizeof(k));
	snprintf(other, sizeof(other), "%s/other.key", h_base);
	tu_write_file(other, k, sizeof(k), 0400);
	ck_assert_int_eq(run_sh(&out,
				"'%s' --store '%s' --master-key '%s' "
				"mount '%s' -f 2>&1",
				h_bin(), h_store, other, h_mp),
			 1);
	ck_assert_ptr_nonnull(strstr(out, "secretfs: "));
	free(out);
	ck_assert_int_eq(ERR(stat(P(".status"), &st)), ENOENT);
}
END_TEST

START_TEST(mount_bad_option)
{
	pid_t pid = -1;

	ck_assert_int_eq(h_mount_at(h_mp, "nosuchoption", &pid), 2);
	ck_assert_int_eq(h_mount_at(h_mp, "cache=sometimes", &pid), 2);
}
END_TEST

static long status_field(pid_t pid, const char *field)
{
	char path[64], *s, *p;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s = tu_read_file(path, NULL);
	p = s ? strstr(s, field) : NULL;
	if (p)
		v = strtol(p + strlen(field), NULL, 10);
	free(s);
	return v;
}

/* Is the program under test built with AddressSanitizer? */
static int sanitized(void)
{
	size_t len;
	char *bin = tu_read_file(h_bin(), &len);
	int yes = bin && memmem(bin, len, "__asan_init", 11) != NULL;

	free(bin);
	return yes;
}

START_TEST(daemon_mode_hardened)
{
	char path[64], *limits, *got = NULL;
	size_t len;
	pid_t pid;
	long locked;
	int rd, um;

	mk("db", "value");
	/* without -f: returns once the daemon serves */
	ck_assert_int_eq(cli("mount", h_mp, NULL), 0);
	rd = slurp("secrets/db/default", &got, &len);
	pid = h_daemon_of(h_mp);
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	limits = tu_read_file(path, NULL);
	locked = status_field(pid, "VmLck:");
	um = cli("umount", h_mp, NULL); /* before any assertion */
	ck_assert_int_eq(um, 0);
	ck_assert_int_eq(rd, 0);
	ck_assert_str_eq(got, "value");
	ck_assert_int_gt(pid, 0);
	ck_assert_ptr_nonnull(limits);
	ck_assert_msg(strstr(limits, "Max core file size        0"), "%s",
		      limits);
	/* root may lock; a sanitizer's shadow memory is too big to */
	if (geteuid() == 0 && !sanitized())
		ck_assert_int_gt(locked, 0);
	free(limits);
	free(got);
}
END_TEST

START_TEST(umount_command)
{
	struct stat st;
	int status;

	up(NULL);
	ck_assert_int_eq(cli("umount", h_mp, NULL), 0);
	ck_assert_int_eq(waitpid(h_daemon, &status, 0), h_daemon);
	h_daemon = -1;
	ck_assert_int_eq(ERR(stat(P(".status"), &st)), ENOENT);
	ck_assert_int_eq(cli("umount", h_mp, NULL), 1);
}
END_TEST

static Suite *mount_suite(void)
{
	const TTest *const tests[] = {
	    layout_root,
	    layout_secret,
	    layout_no_default,
	    read_default_and_versions,
	    read_binary_exact,
	    read_snapshot,
	    read_deactivated,
	    read_key_deactivated,
	    read_tampered_ebadmsg,
	    write_default_trunc,
	    write_default_version_ctime_follows,
	    write_default_creates_first,
	    write_default_without_trunc,
	    write_nothing_commits_nothing,
	    write_version_excl,
	    write_version_race_lost,
	    write_existing_version_eperm,
	    write_staged_rename,
	    write_staged_unlink,
	    write_efbig,
	    write_max_size_ok,
	    write_staged_efbig,
	    write_close_returns_commit_error,
	    write_child_close_does_not_commit,
	    write_rm_default_eperm,
	    mkdir_creates_secret,
	    listing_many_pages,
	    mkdir_name_too_long,
	    rmdir_rules,
	    rm_version,
	    chmod_chown_reflected,
	    kv_entries,
	    kv_json_values,
	    kv_absent_for_text,
	    keys_dir,
	    keys_file_same_fields_as_key_show,
	    status_file,
	    cli_changes_seen,
	    audit_fs_read,
	    audit_kv_text_lookup,
	    mount_second_rw_refused,
	    mount_rw_waits_for_exiting_daemon,
	    mount_nonempty_refused,
	    mount_store_inside_refused,
	    mount_key_inside_refused,
	    mount_wrong_key_refused,
	    mount_bad_option,
	    umount_command,
	    daemon_mode_hardened,
	};

	return h_suite("mount", tests, sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_suite, .fork = CK_FORK};
