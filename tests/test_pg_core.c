/*
 * The core suites on PostgreSQL: one throwaway cluster (lib/pgcluster.h)
 * for the whole run, and each core suite's binary run against it with
 * SECRETFS_TEST_BACKEND=postgresql, where tu_store_open() gives every test
 * a store of its own on the server. A suite passes here exactly as on
 * SQLite: the same lifecycle, compare-and-set and error results. The
 * cluster is started before the first case and removed after the last,
 * also when a case fails.
 */
#include <check.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/harness.h"
#include "lib/pgcluster.h"
#include "lib/proc.h"

static struct pgcluster pgc;
static char bindir[PATH_MAX];

static void cluster_up(void)
{
	if (pgc_start(&pgc) != 0)
		ck_abort_msg("cannot start a PostgreSQL cluster");
}

static void cluster_down(void)
{
	pgc_stop(&pgc);
}

/* Run build/tests/NAME on the cluster; its output is shown on failure. */
static void run_suite(const char *name)
{
	char path[PATH_MAX + 64], ci[PATH_MAX + 96];
	const char *argv[] = {path, NULL};
	const char *env[] = {"SECRETFS_TEST_BACKEND=postgresql", ci,
			     "CK_RUN_CASE", NULL};
	struct tu_proc p;

	ck_assert_msg(pgc.running, "no cluster");
	snprintf(path, sizeof(path), "%s/%s", bindir, name);
	snprintf(ci, sizeof(ci), "SECRETFS_TEST_PG_CONNINFO=%s", pgc.conninfo);
	memset(&p, 0, sizeof(p));
	p.argv = argv;
	p.env = env;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	if (p.status != 0)
		fprintf(stderr, "%s on postgresql:\n%s%s\n", name,
			p.out ? p.out : "", p.err ? p.err : "");
	ck_assert_int_eq(p.status, 0);
	tu_proc_release(&p);
}

START_TEST(secrets_suite_on_postgresql)
{
	run_suite("test_secrets");
}
END_TEST

START_TEST(versions_suite_on_postgresql)
{
	run_suite("test_versions");
}
END_TEST

START_TEST(keys_suite_on_postgresql)
{
	run_suite("test_keys");
}
END_TEST

START_TEST(roles_suite_on_postgresql)
{
	run_suite("test_roles");
}
END_TEST

static Suite *pg_core_suite(void)
{
	Suite *s = suite_create("pg_core");
	TCase *tc = tcase_create("core_suites");

	tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, secrets_suite_on_postgresql);
	tcase_add_test(tc, versions_suite_on_postgresql);
	tcase_add_test(tc, keys_suite_on_postgresql);
	tcase_add_test(tc, roles_suite_on_postgresql);
	suite_add_tcase(s, tc);
	return s;
}

/* The suites' binaries sit beside this one. */
static void find_bindir(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0) {
		perror("test_pg_core: /proc/self/exe");
		exit(1);
	}
	self[n] = '\0';
	snprintf(bindir, sizeof(bindir), "%s", dirname(self));
}

const struct harness harness = {.suite = pg_core_suite, .setup = find_bindir};
