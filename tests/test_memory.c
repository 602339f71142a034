/*
 * Memory suite (issue 5, item 5): the daemon keeps plaintext out of core
 * files, swap and other processes, and drops it once it is no longer
 * needed.
 *
 * - hardened: no core dumps (RLIMIT_CORE 0), memory locked (VmLck, and
 *   its program's pages marked locked), and not dumpable: run as uid
 *   65534, mounting through the setuid fusermount3, its /proc files
 *   belong to root (the kernel's sign of a non-dumpable process), and it
 *   locks all its memory exactly when RLIMIT_MEMLOCK lets a non-root
 *   uid do so (else it says so; libsodium's key pages stay locked).
 * - a destroyed value's plaintext is absent from the daemon's memory
 *   after 1,000 other operations: every readable mapping is scanned
 *   through /proc/PID/mem (root). The same scan finds the value while a
 *   reader holds it open, so the scan can fail.
 * - cache=strict: an fd opened before the daemon was killed reads
 *   ENOTCONN, never the value from a cache.
 */
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>

#include "rel_util.h"

/* Count occurrences of needle in the readable memory of pid. */
static long scan_mem(pid_t pid, const char *needle)
{
	char path[64], line[512], perm[8];
	size_t nl = strlen(needle), cap = 1 << 20;
	unsigned long lo, hi, a;
	char *buf = malloc(cap + nl);
	long found = 0;
	FILE *maps;
	int mem;
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "r");
	ck_assert_ptr_nonnull(maps);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(mem, 0);
	while (fgets(line, sizeof(line), maps)) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) != 3 ||
		    perm[0] != 'r' || strstr(line, "[vvar"))
			continue;
		for (a = lo; a < hi; a += cap) {
			size_t want = hi - a < cap ? hi - a : cap;
			char *p, *end;

			n = pread(mem, buf, want, (off_t)a);
			if (n <= 0)
				break;
			end = buf + n;
			for (p = buf; (p = memmem(p, (size_t)(end - p), needle,
						  nl));
			     p++)
				found++;
		}
	}
	close(mem);
	fclose(maps);
	free(buf);
	return found;
}

/* A sanitizer build of the daemon: its shadow memory cannot be locked
 * and its allocator's reserved regions cannot be scanned. */
static int sanitized(pid_t pid)
{
	char path[64], *m;
	int yes;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	m = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(m);
	yes = strstr(m, "libasan") != NULL || strstr(m, "libtsan") != NULL;
	free(m);
	return yes;
}

static long status_kb(pid_t pid, const char *field)
{
	char path[64], *s, *p;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(s);
	p = strstr(s, field);
	if (p)
		v = strtol(p + strlen(field), NULL, 10);
	free(s);
	return v;
}

/* 1 when the first mapping of pid (its program's first segment) is
 * locked (VmFlags "lo"): mlockall() ran, not only libsodium's mlock() of
 * its own pages. */
static int text_locked(pid_t pid)
{
	char path[64], *s, *f, *eol;
	int lo;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	s = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(s);
	f = strstr(s, "\nVmFlags:");
	ck_assert_ptr_nonnull(f);
	eol = strchr(f + 1, '\n');
	if (eol)
		*eol = '\0';
	lo = strstr(f, " lo") != NULL;
	free(s);
	return lo;
}

/* pid's core file size limit is 0, soft and hard. */
static void assert_no_core(pid_t pid)
{
	char path[64], *lim, *p;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	lim = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(lim);
	p = strstr(lim, "Max core file size");
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(!strncmp(p + 26, "0                    0 ", 23),
		      "core dumps: %.60s", p);
	free(lim);
}

START_TEST(daemon_hardened)
{
	NEED_ROOT();
	up(NULL);
	assert_no_core(h_daemon);
	if (sanitized(h_daemon)) {
		printf("daemon_hardened: SKIP: memory lock not checked under "
		       "a sanitizer (its shadow memory cannot be locked)\n");
		return;
	}
	ck_assert_int_gt(status_kb(h_daemon, "VmLck:"), 0);
	ck_assert_int_eq(text_locked(h_daemon), 1);
}
END_TEST

static int open_fuse(void *arg)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	(void)arg;
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* As the daemon's uid: 0 once its mount serves .status. */
static int status_up(void *arg)
{
	struct stat st;

	(void)arg;
	return stat(P(".status"), &st) ? errno : 0;
}

/* The fusermount3 libfuse would run (its PATH lookup): setuid root? */
static int fusermount_setuid(void)
{
	const char *path = getenv("PATH");
	char dir[1024], file[1100];
	const char *p, *colon;
	struct stat st;
	size_t n;

	for (p = path ? path : "/usr/bin:/bin"; *p; p = colon + 1) {
		colon = strchr(p, ':');
		if (!colon)
			colon = p + strlen(p);
		n = (size_t)(colon - p) < sizeof(dir) ? (size_t)(colon - p)
						       : sizeof(dir) - 1;
		memcpy(dir, p, n);
		dir[n] = '\0';
		snprintf(file, sizeof(file), "%s/fusermount3", dir);
		if (stat(file, &st) == 0)
			return st.st_uid == 0 && (st.st_mode & S_ISUID);
		if (!*colon)
			break;
	}
	return 0;
}

/*
 * fusermount3 opens /dev/fuse as the calling user (its fsuid), so a
 * 0600 /dev/fuse (this machine) refuses every unprivileged mount, while
 * stock udev rules make it 0666. Give this test process a private mount
 * namespace in which /dev/fuse is a 0666 node of the same device: the
 * daemon and its fusermount3 run there, the host's /dev/fuse is
 * untouched, and every mount made here dies with the namespace. NULL,
 * or why it cannot be done.
 */
static const char *fuse_for_users(void)
{
	char node[600];

	if (as_user(65534, 65534, open_fuse, NULL) == 0)
		return NULL;
	snprintf(node, sizeof(node), "%s/fuse", h_base);
	if (unshare(CLONE_NEWNS))
		return "unshare(CLONE_NEWNS) refused";
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL))
		return "cannot make the mount namespace private";
	if (mknod(node, S_IFCHR | 0666, makedev(10, 229)) ||
	    chmod(node, 0666))
		return "cannot make a fuse device node";
	if (mount(node, "/dev/fuse", "none", MS_BIND, NULL))
		return "cannot bind a fuse device node over /dev/fuse";
	if (as_user(65534, 65534, open_fuse, NULL) != 0)
		return "uid 65534 still cannot open /dev/fuse";
	return NULL;
}

/* Start the daemon as uid 65534 (its output into h_log), the limits it
 * inherits set here; 0 once it serves, else its exit status. */
static int up_as_nobody(const struct rlimit *memlock)
{
	pid_t pid;
	int i, w, fd;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setpgid(0, 0);
		fd = open(h_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(125);
		if (setrlimit(RLIMIT_MEMLOCK, memlock) || setgroups(0, NULL) ||
		    setgid(65534) || setuid(65534))
			_exit(126);
		/* after setuid, which clears it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execl(h_bin(), h_bin(), "--store", h_store, "mount", h_mp,
		      "-f", "-o", "auto_unmount", (char *)NULL);
		_exit(127);
	}
	h_daemon = pid;
	/* readiness, not a timed assertion */
	for (i = 0; i < 4000 && as_user(65534, 65534, status_up, NULL); i++) {
		if (waitpid(pid, &w, WNOHANG) == pid) {
			h_daemon = -1;
			return WIFEXITED(w) ? WEXITSTATUS(w) : -1;
		}
		ru_msleep(5);
	}
	return i < 4000 ? 0 : -1;
}

/*
 * The daemon run as uid 65534 (mounting through the setuid fusermount3,
 * no allow_other) hardens itself as it does as root: its /proc files
 * belong to root (not dumpable), no core dumps (RLIMIT_CORE 0, soft and
 * hard), and memory locked exactly when fs/daemon/mount.c promises to lock it
 * for a non-root uid: with an unlimited RLIMIT_MEMLOCK. Under a finite
 * one it locks nothing and says so on stderr. The test asks for an
 * unlimited limit (root may raise it only with CAP_SYS_RESOURCE) and
 * checks the branch the daemon got.
 */
START_TEST(daemon_not_dumpable)
{
	char path[600], *argv[] = {"chown", "-R", "65534:65534", h_base, NULL};
	struct rlimit ml = {RLIM_INFINITY, RLIM_INFINITY};
	const char *why;
	char *log;
	struct stat st;
	long lck;
	int rc, san;

	NEED_ROOT();
	if (!fusermount_setuid()) {
		printf("daemon_not_dumpable: SKIP: fusermount3 is not setuid "
		       "root here: uid 65534 cannot mount\n");
		return;
	}
	if ((why = fuse_for_users())) {
		printf("daemon_not_dumpable: SKIP: uid 65534 cannot open "
		       "/dev/fuse and %s\n", why);
		return;
	}
	ck_assert_int_eq(h_run(argv, NULL), 0);
	if (setrlimit(RLIMIT_MEMLOCK, &ml))
		ck_assert_int_eq(getrlimit(RLIMIT_MEMLOCK, &ml), 0);
	rc = up_as_nobody(&ml);
	log = tu_read_file(h_log, NULL);
	ck_assert_msg(rc == 0, "the daemon did not come up as uid 65534 "
		      "(%d): %s", rc, log ? log : "");
	snprintf(path, sizeof(path), "/proc/%d/status", (int)h_daemon);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg(st.st_uid == 0,
		      "/proc/PID of the daemon belongs to uid %u: dumpable",
		      (unsigned)st.st_uid);
	ck_assert_int_eq(status_kb(h_daemon, "Uid:"), 65534);
	assert_no_core(h_daemon);
	/* libsodium keeps the key material in locked pages either way (a
	 * sanitizer's runtime turns mlock into a no-op) */
	lck = status_kb(h_daemon, "VmLck:");
	san = sanitized(h_daemon);
	ck_assert(san || lck > 0);
	if (ml.rlim_cur != RLIM_INFINITY) {
		ck_assert_int_eq(text_locked(h_daemon), 0);
		ck_assert_ptr_nonnull(strstr(log, "secretfs: mount: memory not "
					     "locked: RLIMIT_MEMLOCK is "
					     "limited\n"));
	} else {
		ck_assert(san || text_locked(h_daemon));
	}
	printf("daemon_not_dumpable: uid 65534, RLIMIT_MEMLOCK %s: VmLck "
	       "%ld kB%s\n", ml.rlim_cur == RLIM_INFINITY ? "unlimited"
							 : "limited",
	       lck, san ? " (sanitizer: VmLck not checked)" : "");
	free(log);
}
END_TEST

START_TEST(destroyed_value_leaves_memory)
{
	char needle[64], other[200], rel[64];
	unsigned char rnd[20];
	int fd, i, f;
	struct stat st;

	NEED_ROOT();
	f = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(read(f, rnd, sizeof(rnd)), (ssize_t)sizeof(rnd));
	close(f);
	strcpy(needle, "NEEDLE-");
	for (i = 0; i < 20; i++)
		sprintf(needle + 7 + 2 * i, "%02x", rnd[i]);
	ck_assert_int_eq(cli("secret", "create", "other", "--value", "o",
			     NULL), 0);
	up(NULL);
	if (sanitized(h_daemon)) {
		printf("destroyed_value_leaves_memory: SKIP: memory not "
		       "scanned under a sanitizer\n");
		return;
	}
	ck_assert_int_eq(mkdir(P("secrets/p"), 0755), 0);
	ck_assert_int_eq(put_s("secrets/p/default", O_WRONLY | O_CREAT |
			       O_TRUNC, needle), 0);
	ck_assert_int_eq(put_s("secrets/p/default", O_WRONLY | O_TRUNC,
			       "second version"), 0);
	/* the scan sees it while a reader holds it open */
	fd = open(P("secrets/p/versions/1"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(scan_mem(h_daemon, needle), 0);
	close(fd);
	ck_assert_int_eq(cli("version", "deactivate", "p", "1", NULL), 0);
	ck_assert_int_eq(unlink(P("secrets/p/versions/1")), 0);
	for (i = 0; i < 1000; i++) {
		switch (i % 4) {
		case 0:
			memset(other, 'a' + i % 26, sizeof(other));
			ck_assert_int_eq(put("secrets/other/default",
					     O_WRONLY | O_TRUNC, other,
					     sizeof(other)), 0);
			break;
		case 1:
			assert_reads("secrets/p/default", "second version");
			break;
		case 2:
			snprintf(rel, sizeof(rel), "secrets/other/versions/%d",
				 i / 4 + 1);
			ck_assert_int_eq(stat(P(rel), &st), 0);
			break;
		default:
			ck_assert_ptr_nonnull(
			    xget("secrets/p", "user.secret.latest_version"));
		}
	}
	ck_assert_int_eq(scan_mem(h_daemon, needle), 0);
}
END_TEST

START_TEST(strict_fd_after_kill_gives_enotconn)
{
	char c;
	int fd;

	ck_assert_int_eq(cli("secret", "create", "s", "--value",
			     "plaintext here", NULL), 0);
	up("cache=strict");
	fd = open(P("secrets/s/default"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, &c, 1), 1);
	ck_assert_int_eq(ru_kill_daemon(), 1);
	errno = 0;
	ck_assert_int_eq(pread(fd, &c, 1, 0), -1);
	ck_assert_int_eq(errno, ENOTCONN);
	ck_assert_int_eq(ERR(read(fd, &c, 1)), ENOTCONN);
	close(fd);
}
END_TEST

static Suite *memory_suite(void)
{
	const TTest *const tests[] = {
	    daemon_hardened, daemon_not_dumpable, destroyed_value_leaves_memory,
	    strict_fd_after_kill_gives_enotconn,
	};

	return ru_suite("memory", tests, sizeof(tests) / sizeof(tests[0]), 120);
}

const struct harness harness = {.suite = memory_suite, .fork = CK_FORK};
