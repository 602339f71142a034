/*
 * The one main of every Check suite: see harness.h.
 */
#include <stdio.h>

#include "lib/harness.h"

void harness_add(Suite *s, const char *name, const TTest *test, SFun setup,
		 SFun teardown, double timeout)
{
	TCase *tc = tcase_create(name);

	if (setup || teardown)
		tcase_add_checked_fixture(tc, setup, teardown);
	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

void harness_add_tests(Suite *s, const TTest *const *tests, size_t n,
		       SFun setup, SFun teardown, double timeout)
{
	size_t i;

	for (i = 0; i < n; i++)
		harness_add(s, tests[i]->name, tests[i], setup, teardown,
			    timeout);
}

Suite *harness_suite(const char *name, const TTest *const *tests, size_t n,
		     SFun setup, SFun teardown, double timeout)
{
	Suite *s = suite_create(name);

	harness_add_tests(s, tests, n, setup, teardown, timeout);
	return s;
}

__attribute__((weak)) int main(void)
{
	SRunner *sr;
	int failed;

	if (!&harness) {
		fprintf(stderr, "harness: this test file defines no struct "
				"harness\n");
		return 1;
	}
	if (harness.setup)
		harness.setup();
	sr = srunner_create(harness.suite());
	if (harness.fork != CK_FORK_GETENV)
		srunner_set_fork_status(sr, harness.fork);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (harness.cleanup)
		harness.cleanup();
	return failed != 0;
}
