/*
 * Many hosts on one PostgreSQL store (SPEC §6), through the real program:
 * init --backend postgresql writes DIR/store.conf and makes the shared
 * store; a second init is refused; init --join proves the master key
 * before writing anything; store.conf is trusted only when it is the
 * caller's private regular file with the two known settings; and two
 * "hosts" (two store directories, two daemons, two mountpoints, one
 * server) see each other's changes within 1 s, race O_EXCL versions/N
 * without gaps or duplicates, and ride out a server restart (EIO while it
 * is away, never a hang; service resumes by itself) and a kill during
 * writes (no acknowledged version lost). An access-control
 * change on A refuses B's reader within 1 s; a third host joins to see
 * rotations. Network partitions are in test_pg_net.c.
 *
 * Each test case starts a throwaway cluster (lib/pgcluster.h) in the
 * suite's process and removes it afterwards, host directories included;
 * each test gets a store of its own (a schema), and its daemons unmount
 * at its end (teardown, or their parent-death signal).
 */
#include <dirent.h>
#include <poll.h>

#include "mount_harness.h"

#include "lib/pgcluster.h"
#include "lib/proc.h"
#include "secretfs/ctx.h"
#include "secretfs/secret.h"
#include "secretfs/store.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

static struct pgcluster pgc;

struct host {
	char dir[512], mp[512], log[512];
	pid_t pid;
};

static struct host hosts[3]; /* [2]: only the tests that join a third */
static char *base;
static char ci[PATH_MAX + 128]; /* this test's store */
static char key[600];		/* both hosts' master key */

/* Point the harness (cli, up, P) at host i. */
static void on(int i)
{
	snprintf(h_store, sizeof(h_store), "%s", hosts[i].dir);
	snprintf(h_mp, sizeof(h_mp), "%s", hosts[i].mp);
	snprintf(h_log, sizeof(h_log), "%s", hosts[i].log);
}

static void cluster_up(void)
{
	if (pgc_start(&pgc) != 0)
		ck_abort_msg("cannot start a PostgreSQL cluster");
}

static void cluster_down(void)
{
	pgc_stop(&pgc);
}

/* Host A makes the store, host B joins it; both read the master key from
 * one file outside their (otherwise empty) store directories, as with a
 * systemd credential: $SECRETFS_MASTER_KEY. */
static void setup(void)
{
	int i;

	ck_assert_msg(pgc.running, "no cluster");
	/* inside the cluster's directory: removed with it even when a
	 * failed test (Check's fork mode) skips this teardown */
	ck_assert_int_ge(asprintf(&base, "%s/hosts-XXXXXX", pgc.dir), 0);
	ck_assert_ptr_nonnull(mkdtemp(base));
	ck_assert_int_eq(chmod(base, 0755), 0);
	ck_assert_int_eq(pgc_new_store(pgc.conninfo, ci, sizeof(ci)), 0);
	for (i = 0; i < 2; i++) {
		snprintf(hosts[i].dir, sizeof(hosts[i].dir), "%s/%c", base,
			 'a' + i);
		snprintf(hosts[i].mp, sizeof(hosts[i].mp), "%s/m%c", base,
			 'a' + i);
		snprintf(hosts[i].log, sizeof(hosts[i].log), "%s/%c.log", base,
			 'a' + i);
		hosts[i].pid = -1;
		ck_assert_int_eq(mkdir(hosts[i].mp, 0755), 0);
	}
	snprintf(key, sizeof(key), "%s/master.key", base);
	setenv("SECRETFS_MASTER_KEY", key, 1);
	on(0);
	ck_assert_int_eq(
	    cli("init", "--backend", "postgresql", "--conninfo", ci, NULL), 0);
	on(1);
	ck_assert_int_eq(cli("init", "--join", "--conninfo", ci, NULL), 0);
	on(0);
}

static void teardown(void)
{
	int i;

	for (i = 0; i < 2; i++)
		h_umount_at(hosts[i].mp, &hosts[i].pid);
	tu_rmrf(base);
	free(base);
	base = NULL;
}

static void mount_host(int i)
{
	int rc;
	char *log;

	on(i);
	rc = h_mount_at(hosts[i].mp, NULL, &hosts[i].pid);
	log = rc ? tu_read_file(hosts[i].log, NULL) : NULL;
	ck_assert_msg(rc == 0, "mount %d failed (%d): %s", i, rc,
		      log ? log : "");
	free(log);
}

/* secretfs --store DIR args... (NULL-terminated): exit status, stderr
 * into *err. */
static int run_err(const char *dir, char **err, ...)
{
	const char *argv[16] = {h_bin(), "--store", dir};
	struct tu_proc p;
	va_list ap;
	int n = 3, st;

	va_start(ap, err);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	memset(&p, 0, sizeof(p));
	p.argv = argv;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	st = p.status;
	*err = p.err;
	p.err = NULL;
	tu_proc_release(&p);
	return st;
}

static int exists(const char *dir, const char *name)
{
	char path[700];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- init, join, store.conf --------------------------------------------- */

START_TEST(init_writes_store_conf_0600)
{
	char path[600], want[PATH_MAX + 200], *got;
	struct stat st;

	snprintf(path, sizeof(path), "%s/store.conf", hosts[0].dir);
	got = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(got);
	snprintf(want, sizeof(want), "backend = postgresql\nconninfo = %s\n",
		 ci);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	free(got);
}
END_TEST

START_TEST(second_init_on_one_server_is_refused)
{
	char dir[600], *err = NULL;

	snprintf(dir, sizeof(dir), "%s/c", base);
	ck_assert_int_ne(run_err(dir, &err, "init", "--backend", "postgresql",
				 "--conninfo", ci, NULL),
			 0);
	ck_assert_ptr_nonnull(strstr(err, "attach with init --join"));
	ck_assert(!exists(dir, "store.conf"));
	free(err);
}
END_TEST

START_TEST(join_with_another_key_is_refused_and_writes_nothing)
{
	unsigned char other[32];
	char dir[600], path[700], *err = NULL;
	size_t i;

	for (i = 0; i < sizeof(other); i++)
		other[i] = (unsigned char)(i * 7 + 1);
	snprintf(dir, sizeof(dir), "%s/c", base);
	snprintf(path, sizeof(path), "%s/other.key", base);
	tu_write_file(path, other, sizeof(other), 0400);
	ck_assert_int_ne(run_err(dir, &err, "--master-key", path, "init",
				 "--join", "--conninfo", ci, NULL),
			 0);
	ck_assert_ptr_nonnull(strstr(err, "wrong master key"));
	ck_assert(!exists(dir, "store.conf"));
	ck_assert(!exists(dir, "audit.log"));
	ck_assert(!exists(dir, "generation"));
	free(err);
}
END_TEST

START_TEST(join_without_a_key_file_is_refused)
{
	char dir[600], *err = NULL;

	snprintf(dir, sizeof(dir), "%s/c", base);
	unsetenv("SECRETFS_MASTER_KEY"); /* DIR/master.key, absent */
	ck_assert_int_ne(
	    run_err(dir, &err, "init", "--join", "--conninfo", ci, NULL), 0);
	ck_assert_ptr_nonnull(strstr(err, "needs the store's master key"));
	ck_assert(!exists(dir, "master.key"));
	ck_assert(!exists(dir, "store.conf"));
	free(err);
}
END_TEST

START_TEST(conninfo_with_a_password_is_refused)
{
	char dir[600], bad[PATH_MAX + 160], *err = NULL;

	snprintf(dir, sizeof(dir), "%s/c", base);
	snprintf(bad, sizeof(bad), "%s password=hunter2", ci);
	ck_assert_int_ne(run_err(dir, &err, "init", "--backend", "postgresql",
				 "--conninfo", bad, NULL),
			 0);
	ck_assert_ptr_nonnull(strstr(err, "must not hold a password"));
	ck_assert_ptr_null(strstr(err, "hunter2"));
	ck_assert(!exists(dir, "store.conf"));
	free(err);
}
END_TEST

static void conf_append(const char *line)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/store.conf", hosts[0].dir);
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	fputs(line, f);
	fclose(f);
}

START_TEST(store_conf_unknown_setting_is_refused)
{
	char *err = NULL;

	conf_append("cache = 1\n");
	ck_assert_int_ne(
	    run_err(hosts[0].dir, &err, "secret", "list", NULL, NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(err, "line 3: 'cache' is not a setting"));
	free(err);
}
END_TEST

START_TEST(store_conf_second_backend_line_is_refused)
{
	char *err = NULL;

	conf_append("backend = sqlite\n");
	ck_assert_int_ne(
	    run_err(hosts[0].dir, &err, "secret", "list", NULL, NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(err, "line 3: 'backend'"));
	free(err);
}
END_TEST

START_TEST(store_conf_comments_and_blank_lines_are_allowed)
{
	char *err = NULL;

	conf_append("\n# the team's shared store\n   \n");
	ck_assert_int_eq(run_err(hosts[0].dir, &err, "secret", "list", NULL),
			 0);
	free(err);
}
END_TEST

START_TEST(audit_all_hosts_on_an_sqlite_store_is_refused)
{
	char dir[600], *err = NULL;

	snprintf(dir, sizeof(dir), "%s/c", base);
	unsetenv("SECRETFS_MASTER_KEY");
	ck_assert_int_eq(run_err(dir, &err, "init", NULL), 0);
	free(err);
	ck_assert_int_ne(run_err(dir, &err, "audit", "--all-hosts", NULL), 0);
	ck_assert_ptr_nonnull(strstr(err, "it is not shared"));
	free(err);
}
END_TEST

START_TEST(store_conf_group_readable_is_refused)
{
	char path[600], *err = NULL;

	snprintf(path, sizeof(path), "%s/store.conf", hosts[0].dir);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_ne(
	    run_err(hosts[0].dir, &err, "secret", "list", NULL, NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(err, "with mode 0600"));
	free(err);
}
END_TEST

START_TEST(store_conf_symlink_is_refused)
{
	char path[600], real[600], *err = NULL;

	snprintf(path, sizeof(path), "%s/store.conf", hosts[0].dir);
	snprintf(real, sizeof(real), "%s/real.conf", base);
	ck_assert_int_eq(rename(path, real), 0);
	ck_assert_int_eq(symlink(real, path), 0);
	ck_assert_int_ne(
	    run_err(hosts[0].dir, &err, "secret", "list", NULL, NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(err, "a symbolic link"));
	free(err);
}
END_TEST

START_TEST(joined_hosts_share_one_store)
{
	char *out;

	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	on(1);
	out = cli_out("version", "get", "db", NULL);
	ck_assert_str_eq(out, "v1");
	free(out);
	ck_assert_int_eq(
	    cli("version", "add", "db", "--value", "v2", "--expect", "2", NULL),
	    0);
	/* compare-and-set across hosts: A's view of "latest" is stale */
	on(0);
	ck_assert_int_ne(
	    cli("version", "add", "db", "--value", "v3", "--expect", "2", NULL),
	    0);
	out = cli_out("version", "get", "db", NULL);
	ck_assert_str_eq(out, "v2");
	free(out);
}
END_TEST

START_TEST(audit_all_hosts_shows_every_hosts_changes)
{
	char *out, *a, *b, *err = NULL;
	char host_a[600], host_b[600], name[256] = "";

	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	on(1);
	ck_assert_int_eq(cli("version", "add", "db", "--value", "v2", NULL), 0);
	out = cli_out("audit", "--all-hosts", "--secret", "db", NULL);
	snprintf(host_a, sizeof(host_a), ":%s\"", hosts[0].dir);
	snprintf(host_b, sizeof(host_b), ":%s\"", hosts[1].dir);
	a = strstr(out, "\"op\":\"secret.create\"");
	b = strstr(out, "\"op\":\"version.add\"");
	ck_assert_msg(a && b && a < b, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, host_a));
	ck_assert_ptr_nonnull(strstr(out, host_b));
	ck_assert_ptr_null(strstr(out, "v1"));
	ck_assert_ptr_null(strstr(out, "v2\""));
	/* each host's own log has its own change only, with a host field */
	on(0);
	free(out);
	out = cli_out("audit", NULL);
	ck_assert_ptr_nonnull(strstr(out, "secret.create"));
	ck_assert_ptr_null(strstr(out, "version.add"));
	gethostname(name, sizeof(name) - 1);
	snprintf(host_a, sizeof(host_a), "\"host\":\"%s\"", name);
	ck_assert_ptr_nonnull(strstr(out, host_a));
	free(out);
	ck_assert_int_ne(run_err(hosts[0].dir, &err, "audit", "--all-hosts",
				 "--follow", NULL, NULL),
			 0);
	free(err);
}
END_TEST

/* ---- propagation between mounted hosts ---------------------------------- */

/* Wait up to 1 s (SPEC §6) for cond on host B; the time it took. */
#define within_1s(cond)                                                        \
	do {                                                                   \
		int64_t t0_ = now_ms(), t_;                                    \
		while (!(cond) && now_ms() - t0_ < 1000)                       \
			usleep(5000);                                          \
		t_ = now_ms() - t0_;                                           \
		ck_assert_msg((cond), "not seen within 1 s: %s", #cond);       \
		printf("%s: seen after %lld ms\n", __func__, (long long)t_);   \
	} while (0)

static int reads_on(int i, const char *rel, const char *want)
{
	char *got = NULL;
	int e, same;

	on(i);
	e = slurp(rel, &got, NULL);
	same = e == 0 && strcmp(got, want) == 0;
	free(got);
	return same;
}

static int read_errno_on(int i, const char *rel)
{
	char *got = NULL;
	int e;

	on(i);
	e = slurp(rel, &got, NULL);
	free(got);
	return e;
}

/* Does host i's secrets/ list name? */
static int lists(int i, const char *name)
{
	struct dirent *e;
	DIR *d;
	int found = 0;

	on(i);
	d = opendir(P("secrets"));
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		found |= strcmp(e->d_name, name) == 0;
	closedir(d);
	return found;
}

START_TEST(create_on_a_is_seen_on_b_within_1s)
{
	struct stat st;

	mount_host(1);
	on(1);
	ck_assert_int_eq(ERR(stat(P("secrets/later"), &st)), ENOENT);
	ck_assert(!lists(1, "later")); /* the listing is cached on B now */
	on(0);
	ck_assert_int_eq(
	    cli("secret", "create", "later", "--value", "v1", NULL), 0);
	within_1s(lists(1, "later"));
	within_1s(reads_on(1, "secrets/later/default", "v1"));
}
END_TEST

START_TEST(rotate_on_a_is_seen_on_b_within_1s)
{
	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	mount_host(0);
	mount_host(1);
	ck_assert(reads_on(1, "secrets/db/default", "v1"));
	ck_assert(reads_on(1, "secrets/db/default", "v1")); /* cached */
	on(0);
	ck_assert_int_eq(put_s("secrets/db/default", O_WRONLY | O_TRUNC, "v2"),
			 0);
	within_1s(reads_on(1, "secrets/db/default", "v2"));
}
END_TEST

/* SPEC §6: visible on its own host before the writer returns. */
START_TEST(cli_change_on_the_same_host_is_seen_at_once)
{
	char val[32];
	int i;

	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v0", NULL),
			 0);
	mount_host(0);
	for (i = 1; i <= 5; i++) {
		ck_assert(
		    reads_on(0, "secrets/db/default", i == 1 ? "v0" : val));
		ck_assert(
		    reads_on(0, "secrets/db/default", i == 1 ? "v0" : val));
		snprintf(val, sizeof(val), "v%d", i);
		on(0);
		ck_assert_int_eq(
		    cli("version", "add", "db", "--value", val, NULL), 0);
		ck_assert(reads_on(0, "secrets/db/default", val));
	}
}
END_TEST

START_TEST(deactivate_on_a_is_refused_on_b_within_1s)
{
	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	mount_host(1);
	ck_assert(reads_on(1, "secrets/db/default", "v1"));
	on(0);
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	within_1s(read_errno_on(1, "secrets/db/default") == EKEYREVOKED);
}
END_TEST

/* Each writer adds versions by O_EXCL create of versions/(latest + 1),
 * retrying on EEXIST, until it has made `want` of them. */
static int writer(int host, int want, int id)
{
	char rel[64], val[32];
	const char *l;
	int made = 0, tries = 0, e;

	on(host);
	while (made < want && tries++ < 2000) {
		l = xget("secrets/race", "user.secret.latest_version");
		if (!l)
			return 10;
		snprintf(rel, sizeof(rel), "secrets/race/versions/%d",
			 atoi(l) + 1);
		snprintf(val, sizeof(val), "w%d-%d", id, made);
		e = put_s(rel, O_WRONLY | O_CREAT | O_EXCL, val);
		if (e == 0)
			made++;
		else if (e != EEXIST && e != EBUSY && e != EINVAL)
			return 20 + (e & 0x3f);
	}
	return made == want ? 0 : 11;
}

START_TEST(two_hosts_four_writers_each_end_gap_free)
{
	enum { WRITERS = 8, EACH = 4 };
	pid_t pids[WRITERS];
	char *out, *p, want[32];
	int i, st, n;

	on(0);
	ck_assert_int_eq(cli("secret", "create", "race", "--value", "v0", NULL),
			 0);
	mount_host(0);
	mount_host(1);
	fflush(NULL);
	for (i = 0; i < WRITERS; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			_exit(writer(i % 2, EACH, i));
	}
	for (i = 0; i < WRITERS; i++) {
		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "writer %d: status %d", i, st);
	}
	on(1);
	out = cli_out("version", "list", "race", NULL);
	/* versions 1 .. 1 + WRITERS * EACH, each once, in order */
	for (n = 1, p = out; n <= 1 + WRITERS * EACH; n++) {
		snprintf(want, sizeof(want), "%d", n);
		p = strstr(p, want);
		ck_assert_msg(p, "version %d missing:\n%s", n, out);
		p += strlen(want);
	}
	assert_xattr("secrets/race", "user.secret.latest_version", "33");
	free(out);
}
END_TEST

/* ---- outcome unknown ------------------------------------------------------
 */

static struct sfs_ctx *ctx_on(int i)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *c = NULL;
	struct sfs_error e;

	memset(&o, 0, sizeof(o));
	o.store_dir = hosts[i].dir;
	sfs_error_clear(&e);
	ck_assert_msg(sfs_ctx_open(&c, &o, &e) == SFS_OK, "%s", e.msg);
	return c;
}

static uint32_t latest_of(const char *name)
{
	struct sfs_ctx *c = ctx_on(1);
	struct sfs_secret_rec r;
	struct sfs_caller me;
	struct sfs_error e;
	int full = 0;

	sfs_caller_self(&me);
	ck_assert_int_eq(sfs_secret_get(c, &me, name, &r, &full, &e), SFS_OK);
	sfs_ctx_close(c);
	return r.latest_version;
}

/* Make secret name ("v1") and add "v2" to it from host A with the
 * connection cut at COMMIT. */
static int add_cut_to(const char *name, int when, void (*hook)(void *),
		      int deadline_ms, struct sfs_error *e)
{
	struct sfs_ctx *c;
	struct sfs_caller me;
	int rc;

	on(0);
	ck_assert_int_eq(cli("secret", "create", name, "--value", "v1", NULL),
			 0);
	c = ctx_on(0);
	sfs_caller_self(&me);
	sfs_error_clear(e);
	sfs_store_test_cut(when, hook, NULL, deadline_ms);
	rc = sfs_version_add(c, &me, name, "v2", 2, 0, NULL, e);
	sfs_store_test_cut(0, NULL, NULL, 0);
	sfs_ctx_close(c);
	return rc;
}

static int add_cut(int when, void (*hook)(void *), int deadline_ms,
		   struct sfs_error *e)
{
	return add_cut_to("db", when, hook, deadline_ms, e);
}

START_TEST(commit_answer_lost_but_committed_is_success)
{
	struct sfs_error e;

	ck_assert_int_eq(add_cut(1, NULL, 0, &e), SFS_OK);
	ck_assert_uint_eq(latest_of("db"), 2);
	on(1);
	ck_assert_int_eq(cli("version", "get", "db", NULL), 0);
}
END_TEST

START_TEST(connection_lost_before_commit_is_eio_not_made)
{
	struct sfs_error e;

	ck_assert_int_eq(add_cut(2, NULL, 0, &e), SFS_EIO);
	ck_assert_ptr_nonnull(strstr(e.msg, "the change was not made"));
	ck_assert_uint_eq(latest_of("db"), 1);
}
END_TEST

static int stop_rc;

static void server_stop(void *arg)
{
	(void)arg;
	stop_rc = pgc_ctl(&pgc, "stop -m immediate");
}

START_TEST(commit_with_server_gone_is_outcome_unknown)
{
	struct sfs_error e;
	char name[16], *out;
	uint32_t l;
	int rc, i;

	/* COMMIT's answer may beat the cut on a busy machine: then the
	 * write succeeded, and it must be there; cut again on a new secret */
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "db%d", i);
		rc = add_cut_to(name, 1, server_stop, 1000, &e);
		ck_assert_int_eq(stop_rc, 0);
		ck_assert_int_eq(pgc_ctl(&pgc, "start"), 0);
		if (rc != SFS_OK)
			break;
		ck_assert_uint_eq(latest_of(name), 2);
	}
	ck_assert_int_eq(rc, SFS_EIO);
	ck_assert_ptr_nonnull(strstr(e.msg, "outcome unknown"));
	/* whichever way it went, the change is whole or absent */
	l = latest_of(name);
	ck_assert(l == 1 || l == 2);
	on(1);
	out = cli_out("version", "get", name, NULL);
	ck_assert_str_eq(out, l == 2 ? "v2" : "v1");
	free(out);
}
END_TEST

/* ---- no plaintext on the server ------------------------------------------ */

/* grep -r for needle under dir (as root): 1 when found. */
static int tree_holds(const char *dir, const char *needle)
{
	const char *argv[] = {"/bin/grep", "-r",   "-a", "-q",
			      "-F",	   needle, dir,	 NULL};
	struct tu_proc p;
	int st;

	memset(&p, 0, sizeof(p));
	p.argv = argv;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	st = p.status;
	tu_proc_release(&p);
	ck_assert_msg(st == 0 || st == 1, "grep: status %d", st);
	return st == 0;
}

START_TEST(no_plaintext_in_pg_dump_or_data_directory)
{
	const char canary[] = "CANARY-7f3a9c2e-plaintext";
	const char *argv[] = {"/usr/bin/pg_dump", "-d", ci, NULL};
	struct tu_proc p;

	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--description", "desc",
			     "--value", canary, NULL),
			 0);
	ck_assert_int_eq(cli("version", "add", "db", "--value", canary, NULL),
			 0);
	ck_assert_int_eq(cli("version", "deactivate", "db", "1", NULL), 0);
	ck_assert_int_eq(cli("version", "destroy", "db", "1", NULL), 0);
	memset(&p, 0, sizeof(p));
	p.argv = argv;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	ck_assert_int_eq(p.status, 0);
	/* the dump is real: it holds the store's tables */
	ck_assert_ptr_nonnull(strstr(p.out, "CREATE TABLE"));
	ck_assert_ptr_nonnull(strstr(p.out, "versions"));
	ck_assert_ptr_null(memmem(p.out, p.out_len, canary, strlen(canary)));
	tu_proc_release(&p);
	ck_assert_int_eq(pgc_sql(ci, "CHECKPOINT", NULL), 0);
	ck_assert(tree_holds(pgc.data, "versions")); /* the scan can see */
	ck_assert(!tree_holds(pgc.data, canary));
}
END_TEST

/* ---- failover to a synchronous standby ------------------------------------
 */

/* Add "vN" to db until it is acknowledged (the primary may be failing
 * over): the version number, or 0 after about 30 s of refusals. */
static uint32_t add_acked(struct sfs_ctx **c, int n)
{
	struct sfs_version_rec v;
	struct sfs_caller me;
	struct sfs_error e;
	char val[16];
	int tries;

	sfs_caller_self(&me);
	snprintf(val, sizeof(val), "v%d", n);
	for (tries = 0; tries < 150; tries++) {
		if (!*c) {
			struct sfs_ctx_options o;

			memset(&o, 0, sizeof(o));
			o.store_dir = hosts[0].dir;
			if (sfs_ctx_open(c, &o, &e) != SFS_OK)
				*c = NULL;
		}
		if (*c && sfs_version_add(*c, &me, "db", val, strlen(val), 0,
					  &v, &e) == SFS_OK)
			return v.version;
		usleep(200000);
	}
	return 0;
}

START_TEST(failover_to_a_sync_standby_keeps_every_acked_version)
{
	struct pgcluster standby;
	struct sfs_ctx *c = NULL;
	struct sfs_value val;
	struct sfs_caller me;
	struct sfs_error e;
	char multi[2 * PATH_MAX + 300], want[16];
	const char *schema = strstr(ci, "options=");
	uint32_t acked[12];
	int i;

	ck_assert_int_eq(pgc_start_standby(&pgc, &standby), 0);
	snprintf(multi, sizeof(multi),
		 "host=%s,%s port=5432,5432 user=postgres dbname=postgres "
		 "target_session_attrs=read-write %s",
		 pgc.dir, standby.dir, schema);
	/* host A re-made on the multi-host conninfo (a fresh schema) */
	tu_rmrf(hosts[0].dir);
	on(0);
	ck_assert_int_eq(pgc_new_store(pgc.conninfo, ci, sizeof(ci)), 0);
	snprintf(multi + strlen(multi) - strlen(schema),
		 sizeof(multi) - (strlen(multi) - strlen(schema)), "%s",
		 strstr(ci, "options="));
	ck_assert_int_eq(
	    cli("init", "--backend", "postgresql", "--conninfo", multi, NULL),
	    0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v0", NULL),
			 0);
	for (i = 0; i < 6; i++)
		ck_assert_uint_ne(acked[i] = add_acked(&c, i + 1), 0);
	ck_assert_int_eq(pgc_ctl(&pgc, "stop -m immediate"), 0);
	ck_assert_int_eq(pgc_ctl(&standby, "promote"), 0);
	for (i = 6; i < 12; i++)
		ck_assert_uint_ne(acked[i] = add_acked(&c, i + 1), 0);
	sfs_ctx_close(c);
	c = NULL;
	ck_assert_uint_ne(add_acked(&c, 99), 0); /* a fresh context too */
	sfs_caller_self(&me);
	for (i = 0; i < 12; i++) {
		memset(&val, 0, sizeof(val));
		ck_assert_int_eq(
		    sfs_version_read(c, &me, "db", acked[i], &val, NULL, &e),
		    SFS_OK);
		snprintf(want, sizeof(want), "v%d", i + 1);
		ck_assert_uint_eq(val.len, strlen(want));
		ck_assert(memcmp(val.data, want, val.len) == 0);
		sfs_value_release(&val);
	}
	sfs_ctx_close(c);
}
END_TEST

/* ---- the server goes away ------------------------------------------------ */

/* Does host i's .status hold needle? */
static int status_has(int i, const char *needle)
{
	char *got = NULL;
	int found;

	on(i);
	found = slurp(".status", &got, NULL) == 0 && strstr(got, needle);
	free(got);
	return found;
}

START_TEST(server_restart_reads_eio_then_resume)
{
	int e = 0, i;

	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	mount_host(1);
	ck_assert(reads_on(1, "secrets/db/default", "v1"));
	ck_assert_int_eq(pgc_ctl(&pgc, "stop -m immediate"), 0);
	/* a read in the moment before the daemon learns that its listener
	 * died is served (the value has not changed); then reads fail */
	for (i = 0; i < 50; i++) {
		e = read_errno_on(1, "secrets/db/default");
		if (e)
			break;
		usleep(100 * 1000);
	}
	ck_assert_int_eq(e, EIO);
	ck_assert_int_eq(pgc_ctl(&pgc, "start"), 0);
	/* the daemon reconnects by itself at the next request */
	ck_assert(reads_on(1, "secrets/db/default", "v1"));
	within_1s(status_has(1, "listener up"));
}
END_TEST

START_TEST(status_names_backend_and_listener)
{
	mount_host(1);
	within_1s(status_has(1, "\"backend\": \"postgresql ") &&
		  status_has(1, "listener up"));
}
END_TEST

/* ---- access control and a third host ------------------------------------ */

#define OTHER 4321

static void mount_host_with(int i, const char *opts)
{
	int rc;

	on(i);
	rc = h_mount_at(hosts[i].mp, opts, &hosts[i].pid);
	ck_assert_msg(rc == 0, "mount %d failed (%d)", i, rc);
}

static int read_db(void *arg)
{
	char *got = NULL;
	int e;

	(void)arg;
	e = slurp("secrets/db/default", &got, NULL);
	free(got);
	return e;
}

START_TEST(access_control_on_a_refuses_reader_on_b_within_1s)
{
	char *mp;

	NEED_ROOT();
	/* the cluster's directory is postgres' own: B's mountpoint goes
	 * where OTHER can reach it (teardown unmounts it) */
	mp = tu_tmpdir("pgmp");
	ck_assert_int_eq(chmod(mp, 0755), 0);
	snprintf(hosts[1].mp, sizeof(hosts[1].mp), "%s", mp);
	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	ck_assert_int_eq(cli("secret", "update", "db", "--mode", "0444", NULL),
			 0);
	mount_host_with(1, "allow_other");
	on(1);
	ck_assert_int_eq(as_user(OTHER, OTHER, read_db, NULL), 0);
	on(0);
	ck_assert_int_eq(
	    cli("secret", "update", "db", "--access-control", "on", NULL), 0);
	on(1);
	within_1s(as_user(OTHER, OTHER, read_db, NULL) == EACCES);
	/* the allow list, changed on A, lets the reader back in on B */
	on(0);
	ck_assert_int_eq(
	    cli("secret", "update", "db", "--allow", "uid:4321", NULL), 0);
	on(1);
	within_1s(as_user(OTHER, OTHER, read_db, NULL) == 0);
	ck_assert_int_eq(h_umount_at(hosts[1].mp, &hosts[1].pid), 0);
	ck_assert_int_eq(rmdir(mp), 0);
	free(mp);
}
END_TEST

/* A third host joins the store; the test unmounts it (a failed test's
 * daemon ends at its parent-death signal). */
static void join_third(void)
{
	snprintf(hosts[2].dir, sizeof(hosts[2].dir), "%s/c3", base);
	snprintf(hosts[2].mp, sizeof(hosts[2].mp), "%s/mc3", base);
	snprintf(hosts[2].log, sizeof(hosts[2].log), "%s/c3.log", base);
	hosts[2].pid = -1;
	ck_assert_int_eq(mkdir(hosts[2].mp, 0755), 0);
	on(2);
	ck_assert_int_eq(cli("init", "--join", "--conninfo", ci, NULL), 0);
}

START_TEST(rotate_on_a_is_seen_on_b_and_c_within_1s)
{
	join_third();
	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	mount_host(0);
	mount_host(1);
	mount_host(2);
	ck_assert(reads_on(1, "secrets/db/default", "v1"));
	ck_assert(reads_on(2, "secrets/db/default", "v1"));
	on(0);
	ck_assert_int_eq(put_s("secrets/db/default", O_WRONLY | O_TRUNC, "v2"),
			 0);
	within_1s(reads_on(1, "secrets/db/default", "v2"));
	within_1s(reads_on(2, "secrets/db/default", "v2"));
	/* and a rotation made on C reaches A and B */
	on(2);
	ck_assert_int_eq(put_s("secrets/db/default", O_WRONLY | O_TRUNC, "v3"),
			 0);
	within_1s(reads_on(0, "secrets/db/default", "v3"));
	within_1s(reads_on(1, "secrets/db/default", "v3"));
	ck_assert_int_eq(h_umount_at(hosts[2].mp, &hosts[2].pid), 0);
}
END_TEST

/* ---- the server killed during writes ------------------------------------ */

/* What the writer reports: each version acknowledged, then the errno of
 * the write that failed. */
struct ack {
	int version, err;
};

static int ack_writer(int fd)
{
	struct ack a;
	char rel[64], val[32];
	int n;

	on(1);
	for (n = 2; n < 100000; n++) {
		snprintf(rel, sizeof(rel), "secrets/db/versions/%d", n);
		snprintf(val, sizeof(val), "w%d", n);
		a.version = n;
		a.err = put_s(rel, O_WRONLY | O_CREAT | O_EXCL, val);
		if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a) || a.err)
			return 0;
	}
	return 1;
}

static struct ack next_ack(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct ack a;

	ck_assert_msg(poll(&p, 1, 60000) == 1, "the writer hangs");
	ck_assert_int_eq(read(fd, &a, sizeof(a)), sizeof(a));
	return a;
}

/* B's latest version once the server answers again. */
static int latest_on_b(void)
{
	const char *l;
	int64_t t0 = now_ms();

	on(1);
	while (!(l = xget("secrets/db", "user.secret.latest_version"))) {
		ck_assert_int_eq(errno, EIO);
		ck_assert_msg(now_ms() - t0 < 60000, "B never came back");
		usleep(200000);
	}
	return atoi(l);
}

START_TEST(server_killed_during_writes_loses_no_acked_version)
{
	struct ack a;
	char rel[64], want[32];
	int fds[2], acked = 1, latest, st, n;
	pid_t pid;

	on(0);
	ck_assert_int_eq(cli("secret", "create", "db", "--value", "v1", NULL),
			 0);
	mount_host(1);
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(ack_writer(fds[1]));
	}
	close(fds[1]);
	while (acked < 4) {
		a = next_ack(fds[0]);
		ck_assert_msg(a.err == 0, "write %d: errno %d", a.version,
			      a.err);
		acked = a.version;
	}
	ck_assert_int_eq(pgc_ctl(&pgc, "stop -m immediate"), 0);
	while ((a = next_ack(fds[0])).err == 0)
		acked = a.version;
	ck_assert_int_eq(a.err, EIO);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	close(fds[0]);
	ck_assert_int_eq(pgc_ctl(&pgc, "start"), 0);
	latest = latest_on_b();
	ck_assert_msg(latest == acked || latest == acked + 1,
		      "acked %d, latest %d", acked, latest);
	on(1);
	for (n = 2; n <= latest; n++) {
		snprintf(rel, sizeof(rel), "secrets/db/versions/%d", n);
		snprintf(want, sizeof(want), "w%d", n);
		assert_reads(rel, want);
	}
	snprintf(rel, sizeof(rel), "secrets/db/versions/%d", latest + 1);
	ck_assert_int_eq(ERR(access(P(rel), F_OK)), ENOENT);
	/* service resumed: B writes again */
	snprintf(rel, sizeof(rel), "secrets/db/versions/%d", latest + 1);
	ck_assert_int_eq(put_s(rel, O_WRONLY | O_CREAT | O_EXCL, "again"), 0);
}
END_TEST

/* ---- statements prepared once ---------------------------------------------
 * The server logs every statement (log_statement = all, set for the
 * database before the store's connection opens): an unnamed one is
 * parsed and planned at each run, a named one was prepared once.
 */

static int occurrences(const char *hay, const char *needle)
{
	int n = 0;

	for (; (hay = strstr(hay, needle)); hay += strlen(needle))
		n++;
	return n;
}

START_TEST(a_repeated_statement_is_prepared_once_per_connection)
{
	struct sfs_caller me;
	struct sfs_error e;
	struct sfs_ctx *c;
	char path[PATH_MAX + 8], *log, *from;
	size_t skip = 0;

	on(0);
	ck_assert_int_eq(cli("secret", "create", "prep", "--value", "v1", NULL),
			 0);
	snprintf(path, sizeof(path), "%s/log", pgc.dir);
	free(tu_read_file(path, &skip));
	ck_assert_int_eq(
	    pgc_sql(pgc.conninfo,
		    "ALTER DATABASE postgres SET log_statement = 'all'", NULL),
	    0);
	c = ctx_on(0);
	sfs_caller_self(&me);
	sfs_error_clear(&e);
	ck_assert_msg(sfs_version_add(c, &me, "prep", "v2", 2, 0, NULL, &e) ==
			  SFS_OK,
		      "%s", e.msg);
	ck_assert_msg(sfs_version_add(c, &me, "prep", "v3", 2, 0, NULL, &e) ==
			  SFS_OK,
		      "%s", e.msg);
	sfs_ctx_close(c);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(log);
	from = log + skip;
	ck_assert_int_eq(occurrences(from, "execute <unnamed>:"), 0);
	/* both adds' statements, each run by a prepared statement's name */
	ck_assert_int_ge(occurrences(from, "execute sfs"), 10);
	free(log);
}
END_TEST

static Suite *pg_suite(void)
{
	Suite *s = suite_create("pg");
	const TTest *tests[] = {
	    init_writes_store_conf_0600,
	    second_init_on_one_server_is_refused,
	    join_with_another_key_is_refused_and_writes_nothing,
	    join_without_a_key_file_is_refused,
	    conninfo_with_a_password_is_refused,
	    store_conf_unknown_setting_is_refused,
	    store_conf_second_backend_line_is_refused,
	    store_conf_comments_and_blank_lines_are_allowed,
	    audit_all_hosts_on_an_sqlite_store_is_refused,
	    store_conf_group_readable_is_refused,
	    store_conf_symlink_is_refused,
	    joined_hosts_share_one_store,
	    audit_all_hosts_shows_every_hosts_changes,
	    create_on_a_is_seen_on_b_within_1s,
	    rotate_on_a_is_seen_on_b_within_1s,
	    deactivate_on_a_is_refused_on_b_within_1s,
	    cli_change_on_the_same_host_is_seen_at_once,
	    two_hosts_four_writers_each_end_gap_free,
	    server_restart_reads_eio_then_resume,
	    commit_answer_lost_but_committed_is_success,
	    connection_lost_before_commit_is_eio_not_made,
	    commit_with_server_gone_is_outcome_unknown,
	    no_plaintext_in_pg_dump_or_data_directory,
	    failover_to_a_sync_standby_keeps_every_acked_version,
	    status_names_backend_and_listener,
	    access_control_on_a_refuses_reader_on_b_within_1s,
	    rotate_on_a_is_seen_on_b_and_c_within_1s,
	    server_killed_during_writes_loses_no_acked_version,
	    a_repeated_statement_is_prepared_once_per_connection,
	};
	TCase *tc;
	size_t i;

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		tc = tcase_create(tests[i]->name);
		tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, tests[i]);
		suite_add_tcase(s, tc);
	}
	return s;
}

const struct harness harness = {.suite = pg_suite, .fork = CK_FORK};
