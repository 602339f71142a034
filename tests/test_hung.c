/*
 * Hung daemon suite (issue 5, item 9): what an administrator does when
 * the daemon stops answering, and that it works.
 *
 * - A stopped daemon hangs every caller. Writing 1 to
 *   /sys/fs/fuse/connections/N/abort (N: the mount's minor device
 *   number, see /proc/self/mountinfo) aborts our own connection: every
 *   waiting caller gets ENOTCONN at once; the daemon, killed, leaves no
 *   mount (auto_unmount) and a new mount serves again.
 * - With auto_unmount, a killed daemon's mount disappears: the
 *   mountpoint is an empty directory again.
 * - Without it, the dead mount stays (ENOTCONN) until the next
 *   `secretfs mount` on that path detaches it and mounts afresh.
 *
 * Only pids started here are signalled; fusectl is mounted if missing
 * (root), else the abort test prints SKIP.
 */
#include "rel_util.h"

static int open_default(void *arg)
{
	int fd = open(P("secrets/s/default"), O_RDONLY | O_CLOEXEC);

	(void)arg;
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

START_TEST(abort_connection_frees_callers)
{
	pid_t child;
	int st;

	if (ru_fusectl()) {
		printf("abort_connection_frees_callers: SKIP: no fusectl "
		       "(/sys/fs/fuse/connections) and cannot mount it\n");
		return;
	}
	ck_assert_int_eq(cli("secret", "create", "s", "--value", "v", NULL), 0);
	up(NULL);
	ck_assert_int_eq(kill(h_daemon, SIGSTOP), 0);
	fflush(NULL);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0)
		_exit(open_default(NULL));
	/* it waits on the stopped daemon (no timed assertion: it is
	 * only required to end with ENOTCONN once aborted) */
	ru_msleep(100);
	ck_assert_int_eq(ru_abort_conn(h_mp), 0);
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert(WIFEXITED(st));
	/* the kernel ends requests in flight at the abort with
	 * ECONNABORTED, later ones with ENOTCONN */
	ck_assert_int_eq(WEXITSTATUS(st), ECONNABORTED);
	ck_assert_int_eq(open_default(NULL), ENOTCONN);
	kill(h_daemon, SIGKILL);
	kill(h_daemon, SIGCONT);
	waitpid(h_daemon, &st, 0);
	h_daemon = -1;
	ru_wait_unmounted(h_mp);
	ck_assert(!ru_mounted(h_mp));
	up(NULL);
	assert_reads("secrets/s/default", "v");
	ck_assert_int_eq(open_default(NULL), 0);
}
END_TEST

START_TEST(auto_unmount_after_kill)
{
	struct stat st;

	up(NULL); /* the harness mounts with auto_unmount */
	ck_assert_int_eq(ru_kill_daemon(), 1);
	ck_assert(!ru_mounted(h_mp));
	ck_assert_int_eq(stat(h_mp, &st), 0);
	ck_assert_int_eq(ERR(stat(P("secrets"), &st)), ENOENT);
}
END_TEST

START_TEST(stale_mount_replaced_by_next_mount)
{
	char path[600];
	struct stat st;
	pid_t pid;
	int i, w;

	ck_assert_int_eq(cli("secret", "create", "s", "--value", "v", NULL), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setpgid(0, 0);
		execl(h_bin(), h_bin(), "--store", h_store, "mount", h_mp,
		      "-f", (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/.status", h_mp);
	for (i = 0; i < 4000 && stat(path, &st); i++)
		ru_msleep(5);
	ck_assert_int_lt(i, 4000);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &w, 0), pid);
	/* the dead mount stays: ENOTCONN */
	ck_assert(ru_mounted(h_mp));
	ck_assert_int_eq(ERR(stat(P("secrets"), &st)), ENOTCONN);
	/* until the kernel's cached attributes of .status expire too (the
	 * harness's readiness check stats it) */
	for (i = 0; i < 4000 && stat(path, &st) == 0; i++)
		ru_msleep(5);
	ck_assert_int_eq(ERR(stat(path, &st)), ENOTCONN);
	/* the next mount detaches it and serves */
	up(NULL);
	assert_reads("secrets/s/default", "v");
}
END_TEST

static Suite *hung_suite(void)
{
	const TTest *const tests[] = {
	    abort_connection_frees_callers, auto_unmount_after_kill,
	    stale_mount_replaced_by_next_mount,
	};

	return ru_suite("hung", tests, sizeof(tests) / sizeof(tests[0]), 60);
}

const struct harness harness = {.suite = hung_suite, .fork = CK_FORK};
