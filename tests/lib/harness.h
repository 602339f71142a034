/*
 * The one main of every Check suite (tests/lib/harness.c). A test file
 * defines its suite and names it in a struct harness called harness; the
 * harness runs it, prints Check's summary line, honours CK_FORK and
 * CK_RUN_CASE (Check reads them) unless the file forces a fork mode, and
 * exits non-zero when a test failed. Setup a suite needs before it runs
 * (environment, a temporary directory's place, a skip when the machine
 * lacks something) goes in the setup hook, what it leaves in the cleanup
 * hook.
 */
#ifndef SECRETFS_HARNESS_H
#define SECRETFS_HARNESS_H

#include <check.h>
#include <stddef.h>

struct harness {
	Suite *(*suite)(void); /* the file's suite */
	/* NULL, or run once before suite(); a suite that cannot run here
	 * prints "SKIP: ..." and exits 0 from it */
	void (*setup)(void);
	enum fork_status fork; /* CK_FORK_GETENV (0): as $CK_FORK says */
	void (*cleanup)(void); /* NULL, or run once after the suite */
};

/* Defined by each test file. Weak, as is the harness's main: a test file
 * written before the harness, with its own main, still links and runs
 * as it did (convert it). */
extern const struct harness harness __attribute__((weak));

/* Add one test case named name holding test, with the checked fixture
 * setup/teardown (either may be NULL) and a timeout in seconds (0: Check's
 * default). */
void harness_add(Suite *s, const char *name, const TTest *test, SFun setup,
		 SFun teardown, double timeout);

/* Add one test case per test, named after the test, as harness_add. */
void harness_add_tests(Suite *s, const TTest *const *tests, size_t n,
		       SFun setup, SFun teardown, double timeout);

/* A suite named name of one test case per test, as harness_add_tests. */
Suite *harness_suite(const char *name, const TTest *const *tests, size_t n,
		     SFun setup, SFun teardown, double timeout);

#endif
