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
 * - `secretfs status` on a stopped daemon answers (exit 1,
 *   "unresponsive") instead of hanging; `secretfs umount` refuses a busy
 *   hung mount with a pointer to --lazy and --force, --force aborts the
 *   connection (waiting callers get ECONNABORTED) and detaches it, --lazy
 *   detaches it at once.
 *
 * Only pids started here are signalled; fusectl is mounted if missing
 * (root), else the abort tests print SKIP.
 */
#include "rel_util.h"
#include "lib/proc.h"

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
	ru_stop(h_daemon);
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

/* --- secretfs status / umount on a hung daemon (issue 14 item 3) ------ */

static struct tu_proc run;

/* secretfs ARGS... (no store needed), stdout and stderr captured. */
static int sfs_cmd4(const char *a, const char *b, const char *c, const char *d)
{
	const char *argv[] = {h_bin(), a, b, c, d, NULL};

	tu_proc_release(&run);
	memset(&run, 0, sizeof(run));
	run.argv = argv;
	ck_assert_int_eq(tu_proc_run(&run), 0);
	return run.status;
}

static int sfs_cmd(const char *a, const char *b, const char *c)
{
	return sfs_cmd4(a, b, c, NULL);
}

static void assert_stderr(const char *want)
{
	ck_assert_msg(!strcmp(run.err, want), "stderr: [%s], want [%s]",
		      run.err, want);
}

/* 1 when pid waits in the kernel for a FUSE answer. */
static int waits_on_fuse(pid_t pid)
{
	char path[64], w[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, w, sizeof(w) - 1);
	close(fd);
	w[n > 0 ? n : 0] = '\0';
	return strstr(w, "request_wait_answer") != NULL;
}

/* Print where pid is (state, wait channel, kernel stack): what a reader
 * that never reached the daemon waits on instead. */
static void where_is(pid_t pid)
{
	static const char *const files[] = {"stat", "wchan", "stack",
					    "syscall"};
	char path[64], *text;
	size_t i;
	int st;

	if (waitpid(pid, &st, WNOHANG) == pid) {
		fprintf(stderr, "reader %d ended: status %d\n", (int)pid, st);
		return;
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[i]);
		text = tu_read_file(path, NULL);
		fprintf(stderr, "reader %d %s: %s\n", (int)pid, files[i],
			text ? text : "(unreadable)");
		free(text);
	}
}

/* A child blocked on the stopped daemon: open(secrets/s/default),
 * returned once it waits for the daemon's answer (readiness, not a
 * timed assertion: the bound is only there to fail rather than hang). */
static pid_t blocked_reader(void)
{
	pid_t child;
	int i;

	fflush(NULL);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0)
		_exit(open_default(NULL));
	for (i = 0; i < 15000 && !waits_on_fuse(child); i++)
		ru_msleep(2);
	if (!waits_on_fuse(child))
		where_is(child);
	ck_assert_msg(waits_on_fuse(child), "the reader never reached the "
					    "daemon");
	return child;
}

static pid_t guard = -1;
static pid_t guarded;

static void guard_fire(int sig)
{
	(void)sig;
	kill(guarded, SIGKILL);
	kill(guarded, SIGCONT);
	_exit(0);
}

/*
 * SIGSTOP the daemon (our own pid). A failed assertion ends the test
 * process without the teardown, and the daemon's PR_SET_PDEATHSIG
 * SIGTERM waits while it is stopped: a guard in its own process group
 * (Check's timeout kills the test's group) kills the daemon when the test
 * process dies.
 */
static void stop_daemon(void)
{
	pid_t parent = getpid();

	guarded = h_daemon;
	fflush(NULL);
	guard = fork();
	ck_assert_int_ge(guard, 0);
	if (guard == 0) {
		setpgid(0, 0);
		signal(SIGHUP, guard_fire);
		prctl(PR_SET_PDEATHSIG, SIGHUP);
		if (getppid() != parent)
			guard_fire(0);
		for (;;)
			pause();
	}
	ru_stop(h_daemon);
}

/* End the stopped daemon and its guard, reap both. */
static void end_stopped_daemon(void)
{
	int st;

	kill(h_daemon, SIGKILL);
	kill(h_daemon, SIGCONT);
	waitpid(h_daemon, &st, 0);
	h_daemon = -1;
	kill(guard, SIGKILL);
	waitpid(guard, &st, 0);
	guard = -1;
	ru_wait_unmounted(h_mp);
}

START_TEST(status_reports_unresponsive_daemon)
{
	char want[1200];

	ck_assert_int_eq(cli("secret", "create", "s", "--value", "v", NULL), 0);
	up(NULL);
	ck_assert_int_eq(sfs_cmd("status", h_mp, NULL), 0);
	ck_assert_ptr_nonnull(strstr(run.out, "\"health\": \"ok\""));
	stop_daemon();
	/* Check's timeout is the bound: status must come back at all */
	ck_assert_int_eq(sfs_cmd("status", h_mp, NULL), 1);
	snprintf(want, sizeof(want),
		 "secretfs: status: %s: the daemon does not answer "
		 "(unresponsive)\n",
		 h_mp);
	assert_stderr(want);
	ck_assert_uint_eq(run.out_len, 0);
	end_stopped_daemon();
	ck_assert_int_eq(sfs_cmd("status", h_mp, NULL), 1);
	snprintf(want, sizeof(want),
		 "secretfs: status: %s: not a secretfs mount\n", h_mp);
	assert_stderr(want);
}
END_TEST

START_TEST(umount_force_aborts_hung_daemon)
{
	char want[1200];
	pid_t child;
	int st;

	if (ru_fusectl()) {
		printf("umount_force_aborts_hung_daemon: SKIP: no fusectl\n");
		return;
	}
	ck_assert_int_eq(cli("secret", "create", "s", "--value", "v", NULL), 0);
	up(NULL);
	stop_daemon();
	child = blocked_reader();
	/* a caller waits inside: a plain umount is refused, and says what
	 * to do */
	ck_assert_int_eq(sfs_cmd("umount", h_mp, NULL), 1);
	snprintf(want, sizeof(want),
		 "secretfs: umount: %s: failed to unmount %s: Device or "
		 "resource busy (--lazy detaches it anyway, --force also "
		 "aborts its connection)\n",
		 h_mp, h_mp);
	assert_stderr(want);
	ck_assert_int_eq(sfs_cmd("umount", "--force", h_mp), 0);
	ck_assert_uint_eq(run.err_len, 0);
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), ECONNABORTED);
	ck_assert(!ru_mounted(h_mp));
	end_stopped_daemon();
	ck_assert_int_eq(sfs_cmd("umount", h_mp, NULL), 1);
	snprintf(want, sizeof(want), "secretfs: umount: %s: not mounted\n",
		 h_mp);
	assert_stderr(want);
}
END_TEST

START_TEST(umount_lazy_detaches_hung_mount)
{
	pid_t child;
	int st;

	ck_assert_int_eq(cli("secret", "create", "s", "--value", "v", NULL), 0);
	up(NULL);
	stop_daemon();
	child = blocked_reader();
	ck_assert_int_eq(sfs_cmd("umount", h_mp, "--lazy"), 0);
	ck_assert_uint_eq(run.err_len, 0);
	ck_assert(!ru_mounted(h_mp));
	/* the waiting caller is freed when the daemon goes */
	end_stopped_daemon();
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert(WIFEXITED(st));
	ck_assert_int_ne(WEXITSTATUS(st), 0);
	ck_assert_int_eq(sfs_cmd("umount", h_mp, "--lazy"), 1);
	ck_assert_int_eq(sfs_cmd4("umount", h_mp, "--lazy", "--force"), 2);
	assert_stderr("secretfs: umount: give --lazy or --force, not both "
		      "(see 'secretfs umount --help')\n");
}
END_TEST

static Suite *hung_suite(void)
{
	const TTest *const tests[] = {
	    abort_connection_frees_callers,
	    auto_unmount_after_kill,
	    stale_mount_replaced_by_next_mount,
	    status_reports_unresponsive_daemon,
	    umount_force_aborts_hung_daemon,
	    umount_lazy_detaches_hung_mount,
	};

	return ru_suite("hung", tests, sizeof(tests) / sizeof(tests[0]), 60);
}

const struct harness harness = {.suite = hung_suite, .fork = CK_FORK};
