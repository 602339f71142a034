/*
 * Deployment: what an operator relies on to put secretfs on a host.
 * `make install` lays out the program, both man pages, the mount(8) helper
 * and the systemd unit, and `make uninstall` removes exactly those; the
 * helper passes on only the options secretfs knows; an fstab line of type
 * fuse.secretfs mounts through mount(8), once however often `mount -a`
 * runs (its source is the store) (`mount -T FILE -a`, in a private
 * mount namespace whose /sbin holds only our helper, so the host's /sbin
 * and /etc/fstab are never touched); a podman container reads a read-only
 * `only=` view through its parent directory bind-mounted rslave, and keeps
 * reading after the daemon is killed and started again.
 *
 * Mount tests never leave a mount or a container behind: their steps
 * record the first failure instead of asserting, the one cleanup path
 * runs, and only then does the test assert. Tests that need what the
 * machine lacks (root, podman, runc, busybox-static) print a SKIP line and
 * are left out of the suite, so they are never counted as passed.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/harness.h"
#include "lib/testutil.h"

#define IMAGE	  "secretfs-busybox"
#define VALUE	  "s3cret-db"
#define VIEW_OPTS "ro,allow_other,only=app-*"

/* The first failure of a mount test; "" while all is well. */
static char fail_msg[1024];

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
	va_list ap;

	if (fail_msg[0])
		return;
	va_start(ap, fmt);
	vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
	va_end(ap);
}

/* Record a failure and leave the steps for the cleanup path. */
#define STEP(cond, ...)                                                        \
	do {                                                                   \
		if (!(cond)) {                                                 \
			failf(__VA_ARGS__);                                    \
			goto out;                                              \
		}                                                              \
	} while (0)

/* snprintf that aborts rather than truncate a path or a command. */
static void xsnprintf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void xsnprintf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		abort();
}

static const char *srcdir(void)
{
	static char cwd[PATH_MAX];
	const char *s = getenv("SECRETFS_SRCDIR");

	if (s && *s)
		return s;
	if (!getcwd(cwd, sizeof(cwd)))
		abort();
	return cwd;
}

static const char *program(void)
{
	static char path[PATH_MAX];
	const char *s = getenv("SECRETFS_BIN");

	if (s && *s)
		return s;
	xsnprintf(path, sizeof(path), "%s/build/secretfs", srcdir());
	return path;
}

/*
 * Run a shell command; its stdout and stderr go to *out (malloc'd,
 * NUL-terminated) when out is not NULL. Output goes through a temporary
 * file, not a pipe: a daemon the command starts may keep it open. Returns
 * the exit status, or 128 + the signal number.
 */
static int run(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...)
{
	char cmd[4096], file[PATH_MAX], *buf;
	const char *tmp = getenv("TMPDIR");
	va_list ap;
	int st, fd, n;

	xsnprintf(file, sizeof(file), "%s/sfs-deploy-out-XXXXXX",
		  tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(file);
	if (fd < 0)
		abort();
	close(fd);
	/* { ...; }: the redirection covers every command of a list. */
	cmd[0] = '{';
	cmd[1] = ' ';
	va_start(ap, fmt);
	n = vsnprintf(cmd + 2, sizeof(cmd) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 2 + strlen(file) + 16 >= sizeof(cmd))
		abort();
	n += 2;
	/* length checked above; the copy cannot be cut */
	memcpy(cmd + n, "; } >'", 6);
	strcpy(cmd + n + 6, file);
	strcat(cmd + n, "' 2>&1");
	fflush(NULL);
	st = system(cmd);
	buf = tu_read_file(file, NULL);
	unlink(file);
	if (!buf)
		abort();
	if (out)
		*out = buf;
	else
		free(buf);
	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int have_command(const char *name)
{
	return run(NULL, "command -v %s >/dev/null", name) == 0;
}

/* ---- make install / make uninstall ---- */

static int nfiles;

static int count_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)path;
	(void)st;
	(void)ftw;
	if (flag != FTW_D && flag != FTW_DP)
		nfiles++;
	return 0;
}

/* Files and symlinks (anything but directories) under dir. */
static int count_files(const char *dir)
{
	nfiles = 0;
	if (nftw(dir, count_one, 16, FTW_PHYS) != 0)
		return -1;
	return nfiles;
}

/* path exists as a regular file with this mode; returns its content. */
static char *installed(const char *dest, const char *rel, mode_t mode)
{
	char path[PATH_MAX];
	struct stat st;

	xsnprintf(path, sizeof(path), "%s%s", dest, rel);
	ck_assert_msg(lstat(path, &st) == 0, "%s not installed", rel);
	ck_assert_msg(S_ISREG(st.st_mode), "%s is not a regular file", rel);
	ck_assert_msg((st.st_mode & 07777) == mode, "%s has mode %o, not %o",
		      rel, (unsigned)(st.st_mode & 07777), (unsigned)mode);
	return tu_read_file(path, NULL);
}

static void same_as_source(const char *got, const char *src_rel)
{
	char path[PATH_MAX];
	char *want;

	xsnprintf(path, sizeof(path), "%s/%s", srcdir(), src_rel);
	want = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(want);
	ck_assert_str_eq(got, want);
	free(want);
}

/* ---- make test's output ---- */

/*
 * `make test` prints each suite's summary line and, for a failing suite,
 * its whole log; the lines a passing suite prints on purpose (expected
 * errors) stay in build/test-logs/SUITE.log. Two stand-in suites, run
 * through the Makefile's own run-tests rule (-o tests: nothing built).
 */
static const char pass_sh[] =
    "#!/bin/sh\necho 'secretfs: an expected error'\n"
    "echo '100%: Checks: 3, Failures: 0, Errors: 0'\n";
static const char fail_sh[] =
    "#!/bin/sh\necho 'the failing detail'\n"
    "echo '50%: Checks: 2, Failures: 1, Errors: 0'\nexit 1\n";

START_TEST(test_make_test_prints_summaries_and_failures)
{
	char *dir = tu_tmpdir("runtests"), *out = NULL, *log, path[PATH_MAX];
	int rc;

	xsnprintf(path, sizeof(path), "%s/pass", dir);
	tu_write_file(path, pass_sh, strlen(pass_sh), 0755);
	xsnprintf(path, sizeof(path), "%s/fail", dir);
	tu_write_file(path, fail_sh, strlen(fail_sh), 0755);
	rc = run(&out,
		 "make -s -C '%s' -o tests run-tests BUILD='%s' "
		 "TEST_BIN='%s/pass %s/fail'",
		 srcdir(), dir, dir, dir);
	ck_assert_msg(rc != 0, "a failing suite must fail the run: %s", out);
	ck_assert_msg(strstr(out, "pass: 100%: Checks: 3, Failures: 0, "
				  "Errors: 0\n"),
		      "%s", out);
	ck_assert_msg(!strstr(out, "an expected error"), "%s", out);
	ck_assert_msg(strstr(out, "== fail FAILED (log: ") &&
			  strstr(out, "the failing detail"),
		      "%s", out);
	free(out);
	xsnprintf(path, sizeof(path), "%s/test-logs/pass.log", dir);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_ptr_nonnull(strstr(log, "secretfs: an expected error"));
	free(log);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_install_layout_and_uninstall)
{
	char *dest = tu_tmpdir("install"), *out = NULL, *s, path[PATH_MAX];
	struct stat got, want;
	int rc;

	/* -o all: install what the suite tests, never rebuild it here. */
	rc = run(&out,
		 "make -s -C '%s' -o all install DESTDIR='%s' "
		 "PREFIX=/usr BIN='%s'",
		 srcdir(), dest, program());
	ck_assert_msg(rc == 0, "make install failed (%d): %s", rc, out);
	free(out);

	s = installed(dest, "/usr/bin/secretfs", 0755);
	free(s);
	xsnprintf(path, sizeof(path), "%s/usr/bin/secretfs", dest);
	ck_assert_int_eq(stat(path, &got), 0);
	ck_assert_int_eq(stat(program(), &want), 0);
	ck_assert_int_eq(got.st_size, want.st_size);

	s = installed(dest, "/usr/share/man/man1/secretfs.1", 0644);
	same_as_source(s, "fs/secretfs.1");
	free(s);
	s = installed(dest, "/usr/share/man/man5/secretfs.5", 0644);
	same_as_source(s, "fs/secretfs.5");
	free(s);

	/* mount(8) looks for helpers in /sbin only. */
	s = installed(dest, "/sbin/mount.fuse.secretfs", 0755);
	ck_assert_ptr_nonnull(strstr(s, "${SECRETFS_BIN:-/usr/bin/secretfs}"));
	ck_assert_ptr_null(strstr(s, "@BINDIR@"));
	free(s);

	s = installed(dest, "/usr/lib/systemd/system/secretfs@.service", 0644);
	ck_assert_ptr_nonnull(
	    strstr(s, "\nExecStart=/usr/bin/secretfs mount %f -f "));
	ck_assert_ptr_nonnull(strstr(s, "\nRestart=on-failure\n"));
	ck_assert_ptr_null(strstr(s, "@BINDIR@"));
	free(s);

	s = installed(dest, "/usr/lib/systemd/system/secretfs-volume.service",
		      0644);
	ck_assert_ptr_nonnull(
	    strstr(s, "\nExecStart=/usr/bin/secretfs volume-driver\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nKillMode=process\n"));
	free(s);
	s = installed(dest, "/usr/lib/systemd/system/secretfs-volume.socket",
		      0644);
	ck_assert_ptr_nonnull(strstr(
	    s, "\nListenStream=/run/docker/plugins/secretfs.sock\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nSocketMode=0600\n"));
	free(s);

	ck_assert_int_eq(count_files(dest), 7);

	rc = run(&out, "make -s -C '%s' uninstall DESTDIR='%s' PREFIX=/usr",
		 srcdir(), dest);
	ck_assert_msg(rc == 0, "make uninstall failed (%d): %s", rc, out);
	free(out);
	ck_assert_int_eq(count_files(dest), 0);
	tu_rmrf(dest);
	free(dest);
}
END_TEST

/* ---- man pages: every command, option, errno and attribute ---- */

/* A man page's text with roff's escapes for '-' and fonts removed. */
static char *man_text(const char *rel)
{
	static const char *const esc[] = {"\\fB", "\\fI", "\\fR", "\\fP",
					  "\\&"};
	char path[PATH_MAX], *t, *r, *w;
	size_t i;

	xsnprintf(path, sizeof(path), "%s/%s", srcdir(), rel);
	t = tu_read_file(path, NULL);
	ck_assert_msg(t != NULL, "cannot read %s", rel);
	for (r = w = t; *r;) {
		for (i = 0; i < sizeof(esc) / sizeof(esc[0]); i++)
			if (!strncmp(r, esc[i], strlen(esc[i])))
				break;
		if (i < sizeof(esc) / sizeof(esc[0]))
			r += strlen(esc[i]);
		else if (r[0] == '\\' && r[1] == '-')
			r++;
		else
			*w++ = *r++;
	}
	*w = '\0';
	return t;
}

static void man_has_all(const char *rel, const char *const *words)
{
	char *t = man_text(rel);

	for (; *words; words++)
		ck_assert_msg(strstr(t, *words), "%s does not mention '%s'",
			      rel, *words);
	free(t);
}

START_TEST(test_man1_covers_the_command_line)
{
	static const char *const words[] = {
	    /* SPEC §4: every command */
	    "init", "mount", "umount", "status", "key create", "key list",
	    "key show", "key activate", "key deactivate", "key rotate",
	    "key delete", "secret create", "secret list", "secret show",
	    "secret update", "secret change-key", "secret activate",
	    "secret deactivate", "secret delete", "version add", "version list",
	    "version get", "version set-default", "version activate",
	    "version deactivate", "version destroy", "version copy",
	    "role grant", "role revoke", "role list", "audit", "volume-driver",
	    /* every option */
	    "--store", "--master-key", "--json", "--help", "--passphrase-file",
	    "--description", "--key", "--access-control", "--allow", "--owner",
	    "--group", "--mode", "--confirm", "--expect", "--kv", "--secret",
	    "--since", "--follow", "--value", "--file", "--socket",
	    "--mount-dir",
	    /* environment, files, exit status */
	    "SECRETFS_STORE", "SECRETFS_MASTER_KEY", "SECRETFS_PASSPHRASE_FILE",
	    "XDG_DATA_HOME", "/var/lib/secretfs", "master.key", "audit.log",
	    "mount.fuse.secretfs", "secretfs@.service",
	    "secretfs-volume.service", "secretfs-volume.socket", "volumes.json",
	    "EXIT STATUS",
	    "EXAMPLES", NULL};

	man_has_all("fs/secretfs.1", words);
}
END_TEST

START_TEST(test_man5_covers_the_filesystem)
{
	static const char *const words[] = {
	    /* SPEC §3: tree */
	    "secrets/", "default", "versions/", "kv/", "keys/", ".status",
	    /* attributes */
	    "user.secret.id", "user.secret.name", "user.secret.description",
	    "user.secret.status", "user.secret.access_control",
	    "user.secret.allowed_principals", "user.secret.default_version",
	    "user.secret.latest_version", "user.secret.created_at",
	    "user.secret.created_by", "user.kms.key_id", "user.kms.key_name",
	    "user.kms.key_type", "user.kms.key_state", "user.secret.version",
	    "user.secret.version_state", "user.secret.format",
	    /* mount options */
	    "allow_other", "only=", "cache=strict", "open", "kernel",
	    "layout=flat", "uid=", "gid=", "mode=",
	    "audit=on", "debug", "auto_unmount", "fuse.secretfs",
	    /* errno table */
	    "ENOENT", "ENODATA", "EACCES", "EKEYREVOKED", "ENOKEY", "EBADMSG",
	    "EEXIST", "EINVAL", "ENAMETOOLONG", "EFBIG", "EBUSY", "ENOTEMPTY",
	    "EPERM", "EROFS", "EIO", "ENOTCONN",
	    /* permissions */
	    "PERMISSIONS", "allow list", "-****", NULL};

	man_has_all("fs/secretfs.5", words);
}
END_TEST

/* ---- the mount(8) helper, run as mount(8) runs it, with -f (fake) ---- */

static int helper(char **out, const char *args)
{
	return run(out,
		   "SECRETFS_BIN=/opt/sfs/secretfs sh '%s/scripts/"
		   "mount.fuse.secretfs' %s",
		   srcdir(), args);
}

START_TEST(test_helper_keeps_only_secretfs_options)
{
	char *out;
	int rc;

	rc = helper(&out, "/var/lib/secretfs /run/secretfs -f -v -o "
			  "rw,nosuid,nodev,noexec,allow_other,only=app-*,"
			  "nofail,_netdev,x-systemd.requires=a.service,"
			  "defaults,user,users,noauto,cache=open,ro");
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(out, "mount.fuse.secretfs: running: /opt/sfs/secretfs "
			      "--store /var/lib/secretfs mount /run/secretfs "
			      "-o ro,allow_other,only=app-*,cache=open\n");
	free(out);
}
END_TEST

START_TEST(test_helper_refuses_unknown_option)
{
	char *out;
	int rc;

	/* A typo must not mount the whole store instead of a view. */
	rc = helper(&out, "/var/lib/secretfs /run/secretfs -f -o "
			  "ro,onyl=app-*");
	ck_assert_int_eq(rc, 1);
	ck_assert_ptr_nonnull(strstr(out, "unknown mount option 'onyl=app-*'"));
	free(out);
}
END_TEST

START_TEST(test_helper_sloppy_drops_unknown_option)
{
	char *out;
	int rc;

	rc = helper(&out, "/s /m -s -f -v -o uid=5,ro");
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(out, "mount.fuse.secretfs: ignoring unknown option "
			      "'uid=5'\nmount.fuse.secretfs: running: "
			      "/opt/sfs/secretfs --store /s mount /m -o ro\n");
	free(out);
}
END_TEST

START_TEST(test_helper_default_store_and_no_options)
{
	char *out;
	int rc;

	rc = helper(&out, "secretfs /run/secretfs -n -f -v -o defaults,rw");
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(out, "mount.fuse.secretfs: running: /opt/sfs/secretfs "
			      "mount /run/secretfs\n");
	free(out);
}
END_TEST

/* ---- shared set-up of the mount tests ---- */

/* A fresh store with app-db (VALUE) and other-db, owned by owner. */
static int make_store(const char *store, const char *owner)
{
	char *out = NULL;
	int rc;

	rc = run(&out, "'%s' --store '%s' init", program(), store);
	STEP(rc == 0, "init: %s", out);
	free(out);
	rc = run(&out,
		 "'%s' --store '%s' secret create app-db --value "
		 "'" VALUE "'",
		 program(), store);
	STEP(rc == 0, "secret create app-db: %s", out);
	free(out);
	rc = run(&out,
		 "'%s' --store '%s' secret create other-db --value "
		 "other",
		 program(), store);
	STEP(rc == 0, "secret create other-db: %s", out);
	free(out);
	out = NULL;
	if (owner) {
		rc = run(&out,
			 "'%s' --store '%s' secret update app-db "
			 "--owner %s --group %s && '%s' --store '%s' "
			 "secret update other-db --owner %s --group %s",
			 program(), store, owner, owner, program(), store,
			 owner, owner);
		STEP(rc == 0, "secret update --owner: %s", out);
	}
out:
	free(out);
	return fail_msg[0] ? -1 : 0;
}

/* ---- fstab: mount -T FILE -a, through the helper ---- */

/*
 * In a private mount namespace: /sbin becomes a tmpfs holding only our
 * helper, then mount(8) mounts the fstab line. Runs in a child process;
 * writes the first failure to fd and exits 0 or 1. The daemon (a
 * grandchild) lives in that namespace and exits when unmounted.
 */
static void fstab_child(const char *dir, int fd)
{
	char sbin[PATH_MAX], path[PATH_MAX], mp[PATH_MAX], *out = NULL;
	char *val = NULL, *helper_text = NULL;
	int mounted = 0, rc, wfd = -1;
	struct stat st;

	xsnprintf(mp, sizeof(mp), "%s/mnt", dir);
	STEP(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
	STEP(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
	     "make / private: %s", strerror(errno));
	/* mount(8) notes userspace options (x-*, _netdev) in
	 * /run/mount/utab: keep those notes inside the namespace too. */
	mkdir("/run/mount", 0755);
	STEP(mount("tmpfs", "/run/mount", "tmpfs", 0, "size=1m,mode=0755") == 0,
	     "tmpfs on /run/mount: %s", strerror(errno));
	STEP(realpath("/sbin", sbin) != NULL, "/sbin: %s", strerror(errno));
	xsnprintf(path, sizeof(path), "%s/scripts/mount.fuse.secretfs",
		  srcdir());
	helper_text = tu_read_file(path, NULL);
	STEP(helper_text != NULL, "cannot read %s", path);
	STEP(mount("tmpfs", sbin, "tmpfs", 0, "size=1m,mode=0755") == 0,
	     "tmpfs on %s: %s", sbin, strerror(errno));
	xsnprintf(path, sizeof(path), "%s/mount.fuse.secretfs", sbin);
	tu_write_file(path, helper_text, strlen(helper_text), 0755);
	setenv("SECRETFS_BIN", program(), 1);

	rc = run(&out, "mount -T '%s/fstab' -a", dir);
	mounted = rc == 0;
	STEP(rc == 0, "mount -T fstab -a failed (%d): %s", rc, out);
	xsnprintf(path, sizeof(path), "%s/secrets/app-db/default", mp);
	val = tu_read_file(path, NULL);
	STEP(val && strcmp(val, VALUE) == 0, "app-db reads '%s'",
	     val ? val : strerror(errno));
	/* The options reached the daemon: only=app-* and ro. */
	xsnprintf(path, sizeof(path), "%s/secrets/other-db", mp);
	STEP(stat(path, &st) == -1 && errno == ENOENT,
	     "other-db is not absent: %s", strerror(errno));
	xsnprintf(path, sizeof(path), "%s/secrets/app-db/default", mp);
	wfd = open(path, O_WRONLY | O_TRUNC);
	STEP(wfd == -1 && errno == EROFS, "write gives %s, not EROFS",
	     wfd == -1 ? strerror(errno) : "success");
	/* The source is the store: mount -a again sees the line mounted. */
	free(out);
	rc = run(&out, "mount -T '%s/fstab' -a", dir);
	STEP(rc == 0, "second mount -T fstab -a failed (%d): %s", rc, out);
	free(out);
	rc = run(&out, "grep -c ' %s ' /proc/self/mountinfo", mp);
	STEP(rc == 0 && !strcmp(out, "1\n"), "%s mounted %s times", mp, out);
	free(out);
	rc = run(&out, "findmnt -n -o SOURCE,FSTYPE '%s'", mp);
	xsnprintf(path, sizeof(path), "%s/store fuse.secretfs\n", dir);
	STEP(rc == 0 && !strcmp(out, path), "findmnt: %s, not %s", out, path);
out:
	if (wfd >= 0)
		close(wfd);
	free(out);
	out = NULL;
	if (mounted && run(&out, "umount '%s'", mp) != 0) {
		failf("umount: %s", out);
		umount2(mp, MNT_DETACH);
	}
	free(out);
	free(val);
	free(helper_text);
	if (write(fd, fail_msg, strlen(fail_msg)) < 0)
		_exit(2);
	_exit(fail_msg[0] ? 1 : 0);
}

START_TEST(test_fstab_mounts_through_helper)
{
	char *dir = tu_tmpdir("fstab"), path[PATH_MAX], line[2 * PATH_MAX];
	char msg[1024] = "";
	int fds[2], st = 0;
	ssize_t n;
	pid_t pid;

	fail_msg[0] = '\0';
	xsnprintf(path, sizeof(path), "%s/mnt", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	xsnprintf(path, sizeof(path), "%s/store", dir);
	if (make_store(path, NULL) == 0) {
		/* mount(8)'s own options must not reach the daemon. */
		xsnprintf(line, sizeof(line),
			  "%s %s/mnt fuse.secretfs %s,nofail,_netdev,defaults,"
			  "x-systemd.requires=local-fs.target 0 0\n",
			  path, dir, VIEW_OPTS);
		xsnprintf(path, sizeof(path), "%s/fstab", dir);
		tu_write_file(path, line, strlen(line), 0644);

		ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			fstab_child(dir, fds[1]);
		}
		close(fds[1]);
		n = read(fds[0], msg, sizeof(msg) - 1);
		msg[n > 0 ? n : 0] = '\0';
		close(fds[0]);
		waitpid(pid, &st, 0);
		if (!msg[0] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			xsnprintf(msg, sizeof(msg), "child status %d", st);
	}
	tu_rmrf(dir);
	free(dir);
	ck_assert_msg(!fail_msg[0], "%s", fail_msg);
	ck_assert_msg(!msg[0], "%s", msg);
}
END_TEST

/* ---- container: a ro view through an rslave bind of its parent ---- */

/* pids of secretfs daemons serving mp (argv has "mount" and mp). */
static int daemons_of(const char *mp, pid_t *pids, int max)
{
	char path[64], buf[4096];
	struct dirent *de;
	int n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while (n < max && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);
		int has_mount = 0, has_mp = 0, fd;
		ssize_t len;

		if (pid <= 0 || pid == getpid())
			continue;
		xsnprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		const char *base = strrchr(buf, '/');
		if (strcmp(base ? base + 1 : buf, "secretfs") != 0)
			continue;
		for (char *a = buf; a < buf + len; a += strlen(a) + 1) {
			has_mount |= strcmp(a, "mount") == 0;
			has_mp |= strcmp(a, mp) == 0;
		}
		if (has_mount && has_mp)
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

/* SIGKILL every daemon serving mp and wait (bounded) for them to go. */
static int kill_daemons(const char *mp)
{
	pid_t pids[8];
	int n = daemons_of(mp, pids, 8), i, tries;
	char path[64];

	for (i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (i = 0; i < n; i++) {
		xsnprintf(path, sizeof(path), "/proc/%d", (int)pids[i]);
		for (tries = 0; tries < 300 && access(path, F_OK) == 0; tries++)
			usleep(100 * 1000);
	}
	return n;
}

struct view {
	char *dir;
	char store[PATH_MAX], views[PATH_MAX], mp[PATH_MAX], name[64];
	int bound, started;
};

/* `podman exec` in the running container; output in *out. */
static int in_container(const struct view *v, char **out, const char *sh)
{
	return run(out, "podman exec %s sh -c '%s'", v->name, sh);
}

static int container_pid(const struct view *v)
{
	char *out = NULL;
	int pid = -1;

	if (run(&out, "podman inspect --format '{{.State.Pid}}' %s", v->name) ==
	    0)
		pid = atoi(out);
	free(out);
	return pid;
}

static int mount_view(const struct view *v, char **out)
{
	return run(out, "'%s' --store '%s' mount '%s' -o " VIEW_OPTS, program(),
		   v->store, v->mp);
}

static void view_cleanup(struct view *v)
{
	if (v->started)
		run(NULL, "podman rm -f -t 0 %s", v->name);
	if (run(NULL, "fusermount3 -u '%s'", v->mp) != 0)
		run(NULL, "fusermount3 -uz '%s'", v->mp);
	kill_daemons(v->mp);
	if (v->bound && umount2(v->views, 0) != 0)
		umount2(v->views, MNT_DETACH);
	tu_rmrf(v->dir);
	free(v->dir);
}

/* Set up the host side: store, shared parent, mounted view, container. */
static int view_start(struct view *v)
{
	char *out = NULL;
	int rc;

	rc = run(&out, "'%s/scripts/container-image' " IMAGE, srcdir());
	STEP(rc == 0, "scripts/container-image failed: %s", out);
	STEP(make_store(v->store, "1000") == 0, "store");
	STEP(mkdir(v->views, 0755) == 0 && mkdir(v->mp, 0755) == 0, "mkdir: %s",
	     strerror(errno));
	/* rslave needs a shared source; hosts under systemd have one. */
	STEP(mount(v->views, v->views, NULL, MS_BIND, NULL) == 0, "bind %s: %s",
	     v->views, strerror(errno));
	v->bound = 1;
	STEP(mount(NULL, v->views, NULL, MS_SHARED, NULL) == 0,
	     "make-shared: %s", strerror(errno));
	free(out);
	rc = mount_view(v, &out);
	STEP(rc == 0, "secretfs mount -o " VIEW_OPTS ": %s", out);
	free(out);
	rc = run(&out,
		 "podman run -d --name %s --runtime runc --network none "
		 "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "
		 "--user 1000:1000 -v '%s:/run/secretfs:ro,rslave' " IMAGE
		 " sleep 3600",
		 v->name, v->views);
	v->started = rc == 0;
	STEP(rc == 0, "podman run: %s", out);
out:
	free(out);
	return fail_msg[0] ? -1 : 0;
}

#define CT_APP "/run/secretfs/app/secrets/app-db/default"

/* Inside the container: app-db reads right, other-db is absent, a write
 * gives EROFS. */
static int view_checks(const struct view *v)
{
	char *out = NULL;
	int rc;

	rc = in_container(v, &out, "cat " CT_APP);
	STEP(rc == 0 && strcmp(out, VALUE) == 0, "app-db reads '%s'", out);
	free(out);
	rc = in_container(v, &out, "ls /run/secretfs/app/secrets");
	STEP(rc == 0 && strcmp(out, "app-db\n") == 0,
	     "secrets/ lists '%s', not only app-db", out);
	free(out);
	rc = in_container(v, &out,
			  "cat /run/secretfs/app/secrets/other-db/"
			  "default; echo rc=$?");
	STEP(strstr(out, "No such file or directory") && strstr(out, "rc=1\n"),
	     "other-db is not absent: '%s'", out);
	free(out);
	rc = in_container(v, &out, "echo x > " CT_APP "; echo rc=$?");
	STEP(strstr(out, "Read-only file system") && !strstr(out, "rc=0\n"),
	     "write does not give EROFS: '%s'", out);
out:
	free(out);
	return fail_msg[0] ? -1 : 0;
}

/* Kill the daemon, check the gap, start a new one on the same path. */
static int view_restart(struct view *v)
{
	char *out = NULL;
	int rc;

	STEP(kill_daemons(v->mp) == 1, "no single daemon serves %s", v->mp);
	rc = in_container(v, &out, "cat " CT_APP "; echo rc=$?");
	STEP(strstr(out, "Transport endpoint is not connected") != NULL,
	     "during the gap the container sees '%s', not ENOTCONN", out);
	free(out);
	/* secretfs mount detaches the dead daemon's mount itself */
	rc = mount_view(v, &out);
	STEP(rc == 0, "remount on the stale mountpoint: %s", out);
out:
	free(out);
	return fail_msg[0] ? -1 : 0;
}

START_TEST(test_container_view_survives_daemon_restart)
{
	struct view v = {0};
	int pid_before;

	fail_msg[0] = '\0';
	v.dir = tu_tmpdir("container");
	xsnprintf(v.store, sizeof(v.store), "%s/store", v.dir);
	xsnprintf(v.views, sizeof(v.views), "%s/views", v.dir);
	xsnprintf(v.mp, sizeof(v.mp), "%s/views/app", v.dir);
	xsnprintf(v.name, sizeof(v.name), "secretfs-test-%d", (int)getpid());

	if (view_start(&v) != 0 || view_checks(&v) != 0)
		goto out;
	pid_before = container_pid(&v);
	if (view_restart(&v) != 0 || view_checks(&v) != 0)
		goto out;
	STEP(pid_before > 0 && container_pid(&v) == pid_before,
	     "the container was restarted");
out:
	view_cleanup(&v);
	ck_assert_msg(!fail_msg[0], "%s", fail_msg);
}
END_TEST

/* ---- suite ---- */

static int can_mount(const char *what)
{
	if (geteuid() != 0) {
		printf("SKIP: test_deploy %s: needs root\n", what);
		return 0;
	}
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		printf("SKIP: test_deploy %s: no /dev/fuse\n", what);
		return 0;
	}
	return 1;
}

static int can_run_containers(void)
{
	const char *missing = NULL;

	if (!have_command("podman"))
		missing = "podman";
	else if (!have_command("runc"))
		missing = "runc";
	else if (access("/bin/busybox", X_OK) != 0 ||
		 run(NULL, "dpkg-query -W -f='${Status}' busybox-static "
			   "| grep -q 'install ok installed'") != 0)
		missing = "busybox-static";
	if (missing) {
		printf("SKIP: test_deploy container view: %s is missing "
		       "(apt-get install podman runc busybox-static)\n",
		       missing);
		return 0;
	}
	return 1;
}

static Suite *deploy_suite(void)
{
	Suite *s = suite_create("deploy");
	TCase *tc;

	tc = tcase_create("install");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_install_layout_and_uninstall);
	suite_add_tcase(s, tc);

	tc = tcase_create("make_test");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_make_test_prints_summaries_and_failures);
	suite_add_tcase(s, tc);

	tc = tcase_create("man");
	tcase_add_test(tc, test_man1_covers_the_command_line);
	tcase_add_test(tc, test_man5_covers_the_filesystem);
	suite_add_tcase(s, tc);

	tc = tcase_create("helper");
	tcase_add_test(tc, test_helper_keeps_only_secretfs_options);
	tcase_add_test(tc, test_helper_refuses_unknown_option);
	tcase_add_test(tc, test_helper_sloppy_drops_unknown_option);
	tcase_add_test(tc, test_helper_default_store_and_no_options);
	suite_add_tcase(s, tc);

	if (can_mount("fstab")) {
		tc = tcase_create("fstab");
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, test_fstab_mounts_through_helper);
		suite_add_tcase(s, tc);
	}
	if (can_mount("container view") && can_run_containers()) {
		tc = tcase_create("container");
		tcase_set_timeout(tc, 300);
		tcase_add_test(tc, test_container_view_survives_daemon_restart);
		suite_add_tcase(s, tc);
	}
	return s;
}

const struct harness harness = {.suite = deploy_suite};
