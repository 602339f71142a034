/*
 * Error details (core/err.c) and the questions fs/ asks the core instead
 * of the policy's predicates: where the reason starts in a "<subject>:
 * <reason>" message (struct sfs_error's why, which the CLI prints from
 * without reading the text), an error line made printable, and a name
 * checked by the rules of secret names. Pure: no store.
 */
#include <check.h>
#include <string.h>

#include "lib/harness.h"
#include "secretfs/err.h"
#include "secretfs/secret.h"

/* The subject is what the format puts before its first ": ", however
 * many ": " or quotes a name in an argument holds. */
START_TEST(why_follows_the_formats_subject_not_the_names)
{
	struct sfs_error e;

	sfs_error_clear(&e);
	ck_assert_int_eq(sfs_error_set(&e, SFS_ENOENT, "secret '%s': %s",
				       "a': b", "no such secret"),
			 SFS_ENOENT);
	ck_assert_str_eq(e.msg, "secret 'a': b': no such secret");
	ck_assert_uint_eq(e.why, strlen("secret 'a': b': "));
	ck_assert_str_eq(e.msg + e.why, "no such secret");
}
END_TEST

/* No subject: a format without ": " (a message passed whole as "%s"),
 * nothing after the ": ", or a cleared error. */
START_TEST(why_is_zero_without_a_subject)
{
	struct sfs_error e;

	sfs_error_set(&e, SFS_EIO, "%s", "cannot open 'x': no such file");
	ck_assert_uint_eq(e.why, 0);
	sfs_error_set(&e, SFS_EIO, "store i/o error");
	ck_assert_uint_eq(e.why, 0);
	sfs_error_set(&e, SFS_EIO, "secret '%s': %s", "x", "");
	ck_assert_str_eq(e.msg, "secret 'x': ");
	ck_assert_uint_eq(e.why, 0);
	sfs_error_set(&e, SFS_EIO, "secret '%s': %s", "x", "gone");
	ck_assert_uint_eq(e.why, strlen("secret 'x': "));
	sfs_error_clear(&e);
	ck_assert_int_eq(e.code, SFS_OK);
	ck_assert_str_eq(e.msg, "");
	ck_assert_uint_eq(e.why, 0);
}
END_TEST

/* Control bytes, DEL and invalid or truncated UTF-8 become '?'; valid
 * UTF-8 stays. */
START_TEST(printable_replaces_control_and_invalid_bytes)
{
	char text[] = "a\nb\x7f"
		      "c\xff"
		      "d\xc3\xa9"
		      "e\xc3";

	sfs_error_printable(text);
	ck_assert_str_eq(text, "a?b?c?d\xc3\xa9"
			       "e?");
}
END_TEST

START_TEST(name_valid_gives_the_rule_as_the_message)
{
	char long_name[130];
	struct sfs_error e;

	ck_assert_int_eq(sfs_secret_name_valid("db-password", &e), SFS_OK);
	ck_assert_int_eq(e.code, SFS_OK);
	ck_assert_str_eq(e.msg, "");
	ck_assert_int_eq(sfs_secret_name_valid("../x", &e), SFS_EINVAL);
	ck_assert_int_eq(e.code, SFS_EINVAL);
	ck_assert_str_eq(e.msg, "invalid name: use 1-128 bytes of A-Z a-z 0-9 "
				". _ -, starting with a letter or digit");
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert_int_eq(sfs_secret_name_valid(long_name, &e),
			 SFS_ENAMETOOLONG);
	ck_assert_str_eq(e.msg, "name longer than 128 bytes");
	ck_assert_int_eq(sfs_secret_name_valid("", NULL), SFS_EINVAL);
}
END_TEST

static Suite *err_suite(void)
{
	const TTest *const cases[] = {
	    why_follows_the_formats_subject_not_the_names,
	    why_is_zero_without_a_subject,
	    printable_replaces_control_and_invalid_bytes,
	    name_valid_gives_the_rule_as_the_message,
	};

	return harness_suite("err", cases, sizeof(cases) / sizeof(cases[0]),
			     NULL, NULL, 0);
}

const struct harness harness = {.suite = err_suite};
