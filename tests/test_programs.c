/*
 * Real programs no one here wrote, pointed at the mount with their
 * default settings (issue 14): sed -i, vim in ex mode, Python's tempfile
 * + os.replace and install + mv replace a value; cp -a, tar and rsync -a
 * copy secrets/ byte for byte into directories the copier can use; rm -r
 * destroys nothing in use on a live secret and deletes a deactivated one;
 * `make run` (scripts/run) starts again after its daemon died. Each runs
 * as root and, where it matters, as the secret's owner (a plain uid with
 * the manager role).
 *
 * A program the machine lacks makes its test print a SKIP line and stay
 * out of the suite (scripts/deps installs them), so it is never counted
 * as passed. Children run with stdin from /dev/null and a HOME of their
 * own; only pids started here are signalled.
 */
#include <limits.h>
#include <sys/stat.h>

#include "lib/pgcluster.h"
#include "mount_harness.h"

#define OWNER 4321

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

/* Give name to OWNER (owner and group) and the manager role. */
static void own(const char *name)
{
	ck_assert_int_eq(cli("secret", "update", name, "--owner", "4321",
			     "--group", "4321", NULL),
			 0);
	cli("role", "grant", "manager", "uid:4321", NULL);
}

/* A directory under the test's base for uid (0: as is), made its own. */
static const char *dir_for(const char *name, uid_t uid)
{
	static char path[4][600];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", h_base, name);
	ck_assert_int_eq(mkdir(path[i], 0755), 0);
	if (uid)
		ck_assert_int_eq(chown(path[i], uid, uid), 0);
	return path[i];
}

static void child_exec(uid_t uid, int out, const char *cmd, const char *home)
{
	int null = open("/dev/null", O_RDONLY);

	setpgid(0, 0);
	dup2(null, 0);
	dup2(out, 1);
	dup2(out, 2);
	if (uid && (setgroups(0, NULL) || setgid(uid) || setuid(uid)))
		_exit(126);
	setenv("HOME", home, 1);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

/*
 * sh -c CMD as uid (0: as is) with HOME its own directory; stdout and
 * stderr into *out (malloc'd, NUL-terminated). The exit status, or -1.
 */
static int sh_as(uid_t uid, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sh_as(uid_t uid, char **out, const char *fmt, ...)
{
	char cmd[4096], home[600], buf[4096];
	size_t len = 0;
	va_list ap;
	ssize_t n;
	int fds[2], st;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(home, sizeof(home), "%s/home-%u", h_base, (unsigned)uid);
	if (mkdir(home, 0700) == 0 && uid)
		ck_assert_int_eq(chown(home, uid, uid), 0);
	*out = calloc(1, 1);
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		child_exec(uid, fds[1], cmd, home);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf, sizeof(buf))) > 0) {
		*out = realloc(*out, len + (size_t)n + 1);
		ck_assert_ptr_nonnull(*out);
		memcpy(*out + len, buf, (size_t)n);
		len += (size_t)n;
		(*out)[len] = '\0';
	}
	close(fds[0]);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Assert sh_as(uid, fmt...) exits with want, showing its output if not. */
#define RUN_AS(want, uid, ...)                                                 \
	do {                                                                   \
		char *o_;                                                      \
		int rc_ = sh_as(uid, &o_, __VA_ARGS__);                        \
		ck_assert_msg(rc_ == (want), "exit %d, not %d: %s", rc_,       \
			      (want), o_);                                     \
		free(o_);                                                      \
	} while (0)

static const char *vim_bin(void)
{
	return access("/usr/bin/vim", X_OK) == 0 ? "/usr/bin/vim"
						 : "/usr/bin/vim.tiny";
}

/* --- replacing a value ---------------------------------------------------- */

/* sed -i writes a temporary file beside default and renames it over. */
START_TEST(sed_in_place_commits)
{
	mk("db", "hello world\n");
	own("db");
	up("allow_other");
	RUN_AS(0, 0, "sed -i s/hello/HELLO/ '%s'", P("secrets/db/default"));
	assert_reads("secrets/db/default", "HELLO world\n");
	if (geteuid() == 0) {
		RUN_AS(0, OWNER, "sed -i s/world/WORLD/ '%s'",
		       P("secrets/db/default"));
		assert_reads("secrets/db/default", "HELLO WORLD\n");
		assert_xattr("secrets/db", "user.secret.latest_version", "3");
	}
	/* nothing staged is left behind */
	RUN_AS(0, 0,
	       "test \"$(ls -A '%s')\" = \"$(printf 'default\\nversions')\"",
	       P("secrets/db"));
}
END_TEST

/* vim in ex mode: open default without O_TRUNC, truncate, write (:wq!,
 * the value files being read-only, as vim wants for any 0440 file). */
START_TEST(vim_ex_mode_commits)
{
	mk("db", "hello world");
	own("db");
	up("allow_other");
	RUN_AS(0, 0, "%s -es -c '%%s/hello/HELLO/' -c 'wq!' '%s'", vim_bin(),
	       P("secrets/db/default"));
	assert_reads("secrets/db/default", "HELLO world\n");
	if (geteuid() == 0) {
		RUN_AS(0, OWNER, "%s -es -c '%%s/world/WORLD/' -c 'wq!' '%s'",
		       vim_bin(), P("secrets/db/default"));
		assert_reads("secrets/db/default", "HELLO WORLD\n");
		assert_xattr("secrets/db", "user.secret.latest_version", "3");
	}
	/* a writable mode needs no '!' */
	ck_assert_int_eq(cli("secret", "update", "db", "--mode", "0640", NULL),
			 0);
	RUN_AS(0, 0, "%s -es -c '%%s/HELLO/hi/' -c 'wq' '%s'", vim_bin(),
	       P("secrets/db/default"));
	assert_reads("secrets/db/default", "hi WORLD\n");
}
END_TEST

static const char py_replace[] =
    "import os, sys, tempfile\n"
    "d = sys.argv[1]\n"
    "with tempfile.NamedTemporaryFile(dir=d, delete=False) as f:\n"
    "    f.write(sys.argv[2].encode())\n"
    "os.replace(f.name, os.path.join(d, 'default'))\n";

/* Python's tempfile in the secret's directory, then os.replace. */
START_TEST(python_tempfile_os_replace_commits)
{
	char script[600];

	snprintf(script, sizeof(script), "%s/replace.py", h_base);
	tu_write_file(script, py_replace, strlen(py_replace), 0644);
	mk("db", "v1");
	own("db");
	up("allow_other");
	RUN_AS(0, 0, "/usr/bin/python3 '%s' '%s' 'from python'", script,
	       P("secrets/db"));
	assert_reads("secrets/db/default", "from python");
	if (geteuid() == 0) {
		RUN_AS(0, OWNER, "/usr/bin/python3 '%s' '%s' 'as owner'",
		       script, P("secrets/db"));
		assert_reads("secrets/db/default", "as owner");
	}
}
END_TEST

/* install(1) onto a new name, then mv onto default (install cannot
 * replace default in place: it removes the target first, and `rm
 * default` is EPERM). */
START_TEST(install_then_mv_commits)
{
	char src[600];

	snprintf(src, sizeof(src), "%s/src", h_base);
	tu_write_file(src, "installed", 9, 0644);
	mk("db", "v1");
	own("db");
	up("allow_other");
	RUN_AS(0, 0, "install '%s' '%s' && mv '%s' '%s'", src,
	       P("secrets/db/new"), P("secrets/db/new"),
	       P("secrets/db/default"));
	assert_reads("secrets/db/default", "installed");
	if (geteuid() == 0) {
		tu_write_file(src, "by owner", 8, 0644);
		RUN_AS(0, OWNER, "install '%s' '%s' && mv '%s' '%s'", src,
		       P("secrets/db/new"), P("secrets/db/new"),
		       P("secrets/db/default"));
		assert_reads("secrets/db/default", "by owner");
	}
}
END_TEST

/* --- copying secrets ------------------------------------------------------ */

/* Text, binary, a kv object, another JSON object, an array, a secret
 * with no version yet and one with two versions, all OWNER's. */
static void copy_tree(void)
{
	static const char *const names[] = {"text", "kv",   "obj",
					    "arr",  "none", "two"};
	size_t i;

	mk("text", "hunter2\n");
	mk("kv", "{\"user\":\"app\",\"pass\":\"s3cret\"}");
	mk("obj", "{\"port\":5432,\"tls\":{\"on\":true}}");
	mk("arr", "[1,2,3]");
	ck_assert_int_eq(cli("secret", "create", "none", NULL), 0);
	mk("two", "first");
	ck_assert_int_eq(
	    cli("version", "add", "two", "--value", "second", NULL), 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		own(names[i]);
}

/* cp -a, tar c + x and rsync -a of secrets/ exit 0; every copy equals
 * the mount byte for byte (diff -r), and its directories can be entered. */
static void copy_as(uid_t uid)
{
	const char *d = dir_for(uid ? "copy-owner" : "copy-root", uid);
	const char *s = P("secrets");
	struct stat st;
	char path[700];

	RUN_AS(0, uid, "cp -a '%s' '%s/cp'", s, d);
	RUN_AS(0, uid, "tar -C '%s' -cf '%s/s.tar' secrets", h_mp, d);
	RUN_AS(0, uid, "mkdir '%s/tar' && tar -C '%s/tar' -xf '%s/s.tar'", d, d,
	       d);
	RUN_AS(0, uid, "rsync -a '%s/' '%s/rsync/'", s, d);
	RUN_AS(0, uid, "diff -r '%s' '%s/cp'", s, d);
	RUN_AS(0, uid, "diff -r '%s' '%s/tar/secrets'", s, d);
	RUN_AS(0, uid, "diff -r '%s' '%s/rsync'", s, d);
	RUN_AS(0, uid, "cat '%s/cp/kv/kv/pass' '%s/rsync/two/versions/1'", d,
	       d);
	snprintf(path, sizeof(path), "%s/tar/secrets/text", d);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0550);
	ck_assert_uint_eq(st.st_uid, uid ? uid : OWNER);
}

START_TEST(copies_by_owner_are_exact)
{
	NEED_ROOT();
	copy_tree();
	up("allow_other");
	copy_as(OWNER);
}
END_TEST

START_TEST(copies_by_root_are_exact)
{
	copy_tree();
	up("allow_other");
	copy_as(0);
}
END_TEST

/* --- rm -r ---------------------------------------------------------------- */

/* On a live secret rm -r fails and destroys only what is out of use (a
 * deactivated version); after `secret deactivate` it deletes the secret
 * in one go. */
START_TEST(rm_r_live_destroys_nothing_in_use)
{
	struct stat st;

	mk("db", "v1");
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v2", NULL), 0);
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v3", NULL), 0);
	ck_assert_int_eq(cli("version", "deactivate", "db", "1", NULL), 0);
	up(NULL);
	RUN_AS(1, 0, "rm -r '%s'", P("secrets/db"));
	assert_reads("secrets/db/default", "v3");
	assert_reads("secrets/db/versions/2", "v2");
	ck_assert_int_eq(ERR(stat(P("secrets/db/versions/1"), &st)), ENOENT);
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	RUN_AS(0, 0, "rm -r '%s'", P("secrets/db"));
	ck_assert_int_eq(ERR(stat(P("secrets/db"), &st)), ENOENT);
	ck_assert_int_ne(cli("secret", "show", "db", NULL), 0);
}
END_TEST

/* --- make run ------------------------------------------------------------- */

static const char *srcdir(void)
{
	static char cwd[PATH_MAX];
	const char *s = getenv("SECRETFS_SRCDIR");

	if (s && *s)
		return s;
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	return cwd;
}

/* Can path be opened and read? (A stat may be answered from the
 * kernel's caches of a dead daemon's mount; an open reaches the daemon.) */
static int readable(const char *path)
{
	char c;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return 0;
	ok = read(fd, &c, 1) == 1;
	close(fd);
	return ok;
}

/* Start argv (a daemon in the foreground) in its own process group,
 * output to log; its pid once path can be read (0: it never could). */
static pid_t start_until(char *const argv[], const char *log, const char *path)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	pid_t pid;
	int i, fd;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setpgid(0, 0);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	for (i = 0; i < 4000; i++) { /* readiness, not a timed assertion */
		if (readable(path))
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return 0;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return 0;
}

/* scripts/run in a copy of the tree's layout (scripts/run, build/secretfs)
 * whose ./mnt is the stale mount of a daemon killed with SIGKILL. */
START_TEST(make_run_restarts_after_daemon_died)
{
	char root[600], path[700], mnt[700], status[720], log[700];
	char bin[PATH_MAX];
	char *dead[] = {bin, "--store", NULL, "mount", mnt, "-f", NULL};
	char *run[] = {"/bin/sh", path, NULL};
	char *text, *out = NULL;
	pid_t pid, runner = 0;
	struct stat st, rs;
	int stale = 0, i;

	snprintf(root, sizeof(root), "%s/tree", h_base);
	snprintf(mnt, sizeof(mnt), "%s/mnt", root);
	snprintf(status, sizeof(status), "%s/.status", mnt);
	snprintf(log, sizeof(log), "%s/run.log", h_base);
	ck_assert_ptr_nonnull(realpath(h_bin(), bin));
	/* a copy, not a symlink: tu_rmrf chmods what it removes */
	RUN_AS(0, 0,
	       "mkdir -p '%s/scripts' '%s/build' '%s' && cp '%s' "
	       "'%s/build/secretfs' && cp '%s/scripts/run' '%s/scripts/' "
	       "&& '%s' --store '%s/.secretfs' init",
	       root, root, mnt, bin, root, srcdir(), root, bin, root);
	snprintf(path, sizeof(path), "%s/.secretfs", root);
	dead[2] = path;
	pid = start_until(dead, log, status);
	ck_assert_int_gt(pid, 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* the kernel may answer from its attribute cache for a moment */
	for (i = 0; i < 100; i++) {
		stale = stat(mnt, &st) == -1 && errno == ENOTCONN;
		if (stale)
			break;
		usleep(100 * 1000);
	}
	snprintf(path, sizeof(path), "%s/scripts/run", root);
	if (stale)
		runner = start_until(run, log, status);
	/* the runner is the daemon (scripts/run execs it): SIGTERM
	 * unmounts; a lazy detach covers a daemon that did not */
	if (runner > 0) {
		kill(runner, SIGTERM);
		waitpid(runner, NULL, 0);
	}
	if (stat(mnt, &st) == -1 || stat(root, &rs) == -1 ||
	    st.st_dev != rs.st_dev)
		sh_as(0, &out, "fusermount3 -uz '%s' 2>/dev/null", mnt);
	free(out);
	text = tu_read_file(log, NULL);
	ck_assert_msg(stale, "the killed daemon left no stale mount");
	ck_assert_msg(runner > 0, "scripts/run did not serve: %s", text);
	free(text);
}
END_TEST

/* --- programs that check a key file's mode ------------------------------- */

/*
 * ssh refuses a private key that group or others may read: the README's
 * recipe (--mode 0400 on the secret) gives the owner a key ssh-keygen -y
 * accepts, and the default 0440 is refused, as ssh would refuse it on disk.
 * ssh-keygen wants a passwd entry for its user: the owner is nobody.
 */
#define NOBODY 65534
START_TEST(ssh_keygen_reads_0400_key)
{
	char key[600];

	snprintf(key, sizeof(key), "%s/id", h_base);
	RUN_AS(0, 0, "ssh-keygen -q -t ed25519 -N '' -C t -f '%s'", key);
	ck_assert_int_eq(cli("secret", "create", "ssh-key", "--file", key,
			     "--owner", "65534", "--group", "65534",
			     "--mode", "0400", NULL),
			 0);
	ck_assert_int_eq(cli("secret", "create", "ssh-key-0440", "--file", key,
			     "--owner", "65534", "--group", "65534", NULL),
			 0);
	up("allow_other");
	/* the public key derived through the mount is the one made above */
	RUN_AS(0, NOBODY,
	       "test \"$(ssh-keygen -y -f '%s' | cut -d' ' -f1,2)\" = "
	       "\"$(cut -d' ' -f1,2 '%s.pub')\"",
	       P("secrets/ssh-key/default"), key);
	RUN_AS(255, NOBODY, "ssh-keygen -y -f '%s'",
	       P("secrets/ssh-key-0440/default"));
}
END_TEST

/*
 * libpq reads a password file named by PGPASSFILE only when group and
 * others have no access to it: a 0400 secret works as one, a 0440 one is
 * ignored (and the login then fails).
 */
static struct pgcluster pg;

/* Unchecked fixtures run in the runner, so the cluster goes even when
 * the test fails. */
static void pg_up(void)
{
	if (pgc_start(&pg) != 0)
		ck_abort_msg("cannot start a PostgreSQL cluster");
}

static void pg_down(void)
{
	pgc_stop(&pg);
}

START_TEST(psql_reads_pgpassfile_secret)
{
	char hba[PATH_MAX + 32], line[PATH_MAX + 64], *old;
	size_t n;

	ck_assert_int_eq(pgc_sql(pg.conninfo,
				 "CREATE ROLE app LOGIN PASSWORD 's3cret-pw'",
				 NULL),
			 0);
	/* the role app must give its password on the cluster's socket */
	snprintf(hba, sizeof(hba), "%s/pg_hba.conf", pg.data);
	old = tu_read_file(hba, &n);
	ck_assert_ptr_nonnull(old);
	{
		FILE *f = fopen(hba, "w");

		ck_assert_ptr_nonnull(f);
		fprintf(f, "local all app scram-sha-256\n%s", old);
		ck_assert_int_eq(fclose(f), 0);
	}
	free(old);
	ck_assert_int_eq(pgc_sql(pg.conninfo, "SELECT pg_reload_conf()", NULL),
			 0);
	snprintf(line, sizeof(line), "%s:5432:postgres:app:s3cret-pw", pg.dir);
	ck_assert_int_eq(cli("secret", "create", "pgpass", "--value", line,
			     "--mode", "0400", NULL),
			 0);
	ck_assert_int_eq(cli("secret", "create", "pgpass-0440", "--value",
			     line, NULL),
			 0);
	up(NULL);
	RUN_AS(0, 0,
	       "test \"$(PGPASSFILE='%s' psql -w -At -h '%s' -U app -d postgres "
	       "-c 'SELECT current_user')\" = app",
	       P("secrets/pgpass/default"), pg.dir);
	RUN_AS(2, 0,
	       "PGPASSFILE='%s' psql -w -At -h '%s' -U app -d postgres "
	       "-c 'SELECT 1'",
	       P("secrets/pgpass-0440/default"), pg.dir);
}
END_TEST

/* --- suite ---------------------------------------------------------------- */

/* Are these programs all there? Else say which is missing. */
static int have(const char *what, const char *progs)
{
	char *out = NULL;
	char cmd[512];
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "for p in %s; do command -v $p >/dev/null "
		 "|| { echo $p; exit 1; }; done",
		 progs);
	{
		char *argv[] = {"/bin/sh", "-c", cmd, NULL};

		rc = h_run(argv, &out);
	}
	if (rc != 0)
		printf("SKIP: test_programs %s: %s is missing (scripts/deps "
		       "installs it)\n",
		       what, out && *out ? strtok(out, "\n") : "a program");
	free(out);
	return rc == 0;
}

static void add(Suite *s, const TTest *t, int ok)
{
	if (ok)
		harness_add(s, t->name, t, h_setup, h_teardown, 120);
}

static Suite *programs_suite(void)
{
	Suite *s = suite_create("programs");

	add(s, sed_in_place_commits, have("sed", "sed"));
	add(s, vim_ex_mode_commits,
	    access("/usr/bin/vim", X_OK) == 0 || have("vim", "vim.tiny"));
	add(s, python_tempfile_os_replace_commits,
	    have("python", "/usr/bin/python3"));
	add(s, install_then_mv_commits, have("install", "install mv"));
	add(s, copies_by_owner_are_exact, have("copies", "cp tar rsync diff"));
	add(s, copies_by_root_are_exact, have("copies", "cp tar rsync diff"));
	add(s, rm_r_live_destroys_nothing_in_use, have("rm", "rm"));
	add(s, ssh_keygen_reads_0400_key, have("ssh", "ssh-keygen cut"));
	if (have("psql", "psql")) {
		TCase *tc = tcase_create("psql_reads_pgpassfile_secret");

		tcase_add_unchecked_fixture(tc, pg_up, pg_down);
		tcase_add_checked_fixture(tc, h_setup, h_teardown);
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, psql_reads_pgpassfile_secret);
		suite_add_tcase(s, tc);
	}
	add(s, make_run_restarts_after_daemon_died,
	    have("make run", "fusermount3"));
	return s;
}

const struct harness harness = {.suite = programs_suite, .fork = CK_FORK};
