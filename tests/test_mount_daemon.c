/*
 * The daemonized mount (`secretfs mount` without -f), as an operator runs
 * it: the daemon holds its own SQLite locks (issue 10, finding 1: a store
 * opened before fork() left the daemon with none, and one read by any
 * other SQLite client deleted the WAL under it), so a foreign reader
 * beside it (the sqlite3 tool, a backup job) changes nothing: the CLI and
 * the mount keep seeing each other's changes and nothing is lost at
 * unmount.
 *
 * The daemon is not the test's child (it daemonized): each test gathers
 * its observations, unmounts and waits for the daemon to exit before any
 * assertion, so that a failure never leaves a mount behind.
 */
#include <sys/sysmacros.h>

#include "mount_harness.h"

/* `secretfs mount MP` (returns once the daemon serves); its pid, or -1. */
static pid_t daemon_up(void)
{
	if (cli("mount", h_mp, "-o", "auto_unmount", NULL) != 0)
		return -1;
	return h_daemon_of(h_mp);
}

/* Unmount and wait (bounded: readiness, not a timed assertion) for the
 * daemon to exit, since it writes the store until then. 0 once gone. */
static int daemon_down(pid_t pid)
{
	struct timespec tick = {0, 20 * 1000 * 1000};
	int um = cli("umount", h_mp, NULL), i;

	for (i = 0; pid > 0 && i < 3000 && kill(pid, 0) == 0; i++)
		nanosleep(&tick, NULL);
	return um != 0 || (pid > 0 && kill(pid, 0) == 0);
}

/* Does pid hold a POSIX (fcntl) lock on the store's file name? */
static int holds_posix_lock(pid_t pid, const char *name)
{
	char path[600], line[256], kind[16];
	unsigned maj, min;
	unsigned long ino;
	struct stat st;
	int lpid, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", h_store, name);
	if (stat(path, &st) || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", kind,
			       &lpid, &maj, &min, &ino) == 5 &&
			!strcmp(kind, "POSIX") && lpid == pid &&
			maj == major(st.st_dev) && min == minor(st.st_dev) &&
			ino == st.st_ino;
	fclose(f);
	return found;
}

/* A read by another SQLite client, as a backup job would do it. */
static int foreign_read(void)
{
	char db[600], *out = NULL;
	int rc;

	snprintf(db, sizeof(db), "%s/secretfs.db", h_store);
	char *argv[] = {"sqlite3", db, "SELECT count(*) FROM secrets;", NULL};
	rc = h_run(argv, &out);
	free(out);
	return rc;
}

/* The CLI's `version get NAME` (malloc'd), or NULL when it failed: no
 * assertion while the daemon runs. */
static char *value_of(const char *name)
{
	char *argv[] = {(char *)h_bin(), "--store",    h_store, "version",
			"get",		 (char *)name, NULL};
	char *out = NULL;

	if (h_run(argv, &out) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

START_TEST(daemonized_mount_holds_its_sqlite_locks)
{
	int db, shm, down;
	pid_t pid;

	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	pid = daemon_up();
	assert_reads("secrets/db/default", "v1");
	db = holds_posix_lock(pid, "secretfs.db");
	shm = holds_posix_lock(pid, "secretfs.db-shm");
	down = daemon_down(pid);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(down, 0);
	ck_assert_msg(db, "daemon %d holds no lock on secretfs.db", (int)pid);
	ck_assert_msg(shm, "daemon %d holds no lock on secretfs.db-shm",
		      (int)pid);
}
END_TEST

/* Both sides' changes, each made after a foreign read, as the reading
 * side sees them. */
struct seen {
	int foreign[3], cli_new, fs_new, cli_after;
	char *fs_read, *cli_read;
};

static void changes_beside_foreign_reads(struct seen *s)
{
	char name[32];
	int i;

	s->foreign[0] = foreign_read();
	s->cli_new = cli("secret", "create", "from-cli", "--value", "c1", NULL);
	s->foreign[1] = foreign_read();
	if (slurp("secrets/from-cli/default", &s->fs_read, NULL))
		s->fs_read = NULL;
	s->fs_new = put_s("secrets/db/default", O_WRONLY | O_TRUNC, "fs2");
	s->foreign[2] = foreign_read();
	s->cli_read = value_of("db");
	for (i = 0, s->cli_after = 0; i < 20 && !s->cli_after; i++) {
		snprintf(name, sizeof(name), "after-%02d", i);
		s->cli_after =
		    cli("secret", "create", name, "--value", "x", NULL) != 0 ||
		    foreign_read() != 0;
	}
}

START_TEST(foreign_sqlite_read_beside_daemon_loses_nothing)
{
	struct seen s;
	char *list, *v;
	pid_t pid;
	int down;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	pid = daemon_up();
	if (pid > 0)
		changes_beside_foreign_reads(&s);
	down = daemon_down(pid);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(down, 0);
	ck_assert_int_eq(s.foreign[0], 0);
	ck_assert_int_eq(s.foreign[1], 0);
	ck_assert_int_eq(s.foreign[2], 0);
	ck_assert_int_eq(s.cli_new, 0);
	ck_assert_msg(s.fs_read, "the mount does not see the CLI's secret");
	ck_assert_str_eq(s.fs_read, "c1");
	ck_assert_int_eq(s.fs_new, 0);
	ck_assert_msg(s.cli_read, "the CLI cannot read the mount's version");
	ck_assert_str_eq(s.cli_read, "fs2");
	ck_assert_int_eq(s.cli_after, 0);
	/* after the daemon exited: everything both sides made is there */
	list = cli_out("--json", "secret", "list", NULL);
	ck_assert_ptr_nonnull(strstr(list, "\"from-cli\""));
	ck_assert_ptr_nonnull(strstr(list, "\"after-19\""));
	v = cli_out("version", "get", "db", NULL);
	ck_assert_str_eq(v, "fs2");
	free(v);
	free(list);
	free(s.fs_read);
	free(s.cli_read);
}
END_TEST

static Suite *mount_daemon_suite(void)
{
	const TTest *const tests[] = {
	    daemonized_mount_holds_its_sqlite_locks,
	    foreign_sqlite_read_beside_daemon_loses_nothing,
	};

	return h_suite("mount_daemon", tests, sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_daemon_suite, .fork = CK_FORK};
