/*
 * Error details (core/err.c) and the questions fs/ asks the core instead
 * of the policy's predicates: where the reason starts in a "<subject>:
 * <reason>" message (struct sfs_error's why, which the CLI prints from
 * without reading the text), the object the subject names and the CLI's
 * comparison of it with its command's, an error line made printable, and
 * a name checked by the rules of secret names. Pure: no store.
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

/* sfs_error_about writes the subject from the object it carries: the
 * words and the data come from one constructor; sfs_error_set clears the
 * object. */
START_TEST(about_writes_the_objects_words_and_carries_it)
{
	struct sfs_object v = sfs_object_version("db", 2);
	struct sfs_object p = sfs_object_principal("x:1");
	struct sfs_error e;

	ck_assert_int_eq(
	    sfs_error_about(&e, SFS_ENOENT, &v, "no such %s", "version"),
	    SFS_ENOENT);
	ck_assert_str_eq(e.msg, "version 2 of 'db': no such version");
	ck_assert_str_eq(e.msg + e.why, "no such version");
	ck_assert_int_eq(e.obj.kind, SFS_OBJ_VERSION);
	ck_assert_str_eq(e.obj.name, "db");
	ck_assert_uint_eq(e.obj.number, 2);
	sfs_error_about_after(&e, SFS_EINVAL, "bad ", &p, "expected uid:N");
	ck_assert_str_eq(e.msg, "bad principal 'x:1': expected uid:N");
	ck_assert_str_eq(e.msg + e.why, "expected uid:N");
	ck_assert_int_eq(e.obj.kind, SFS_OBJ_PRINCIPAL);
	sfs_error_set(&e, SFS_EIO, "secret '%s': %s", "db", "gone");
	ck_assert_int_eq(e.obj.kind, SFS_OBJ_NONE);
	ck_assert_uint_eq(e.why, strlen("secret 'db': "));
	sfs_error_about(&e, SFS_EIO, &v, "%s", "");
	ck_assert_uint_eq(e.why, 0); /* no reason: nothing to print alone */
}
END_TEST

/* A name longer than the subject shows is cut as the text is, and a cut
 * object names nothing for certain. */
START_TEST(cut_name_shown_as_the_text_and_covers_nothing)
{
	char name[201], text[300];
	struct sfs_object a, b;

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	a = sfs_object_secret(name);
	ck_assert_int_eq(a.cut, 1);
	ck_assert_uint_eq(strlen(a.name), 128);
	sfs_object_text(&a, text, sizeof(text));
	ck_assert_uint_eq(strlen(text), strlen("secret ''") + 128);
	b = sfs_object_secret(name);
	ck_assert_int_eq(sfs_object_covers(&a, &b), 0);
	a = sfs_object_role("manager");
	ck_assert_int_eq(a.cut, 0);
	name[33] = '\0';
	a = sfs_object_role(name);
	ck_assert_int_eq(a.cut, 1);
	ck_assert_uint_eq(strlen(a.name), 32);
}
END_TEST

/* The comparison the CLI makes, on fields: the same object, or the
 * secret of the command's version, is covered; another kind, name or
 * number is not, however alike the words ('k1' the key and 'k1' the
 * secret; "store" in a secret's name). */
START_TEST(covers_compares_fields_not_words)
{
	const struct sfs_object store = sfs_object_whole(SFS_OBJ_STORE);
	const struct sfs_object keys = sfs_object_whole(SFS_OBJ_KEYS);
	const struct sfs_object sdb = sfs_object_secret("db");
	const struct sfs_object v2 = sfs_object_version("db", 2);
	const struct sfs_object v3 = sfs_object_version("db", 3);
	const struct sfs_object vdef = sfs_object_version("db", 0);
	const struct sfs_object k1 = sfs_object_key("k1");
	const struct sfs_object sk1 = sfs_object_secret("k1");
	const struct sfs_object sstore = sfs_object_secret("store");
	const struct sfs_object none = sfs_object_whole(SFS_OBJ_NONE);

	ck_assert_int_eq(sfs_object_covers(&sdb, &sdb), 1);
	ck_assert_int_eq(sfs_object_covers(&v2, &v2), 1);
	ck_assert_int_eq(sfs_object_covers(&v2, &sdb), 1);   /* its secret */
	ck_assert_int_eq(sfs_object_covers(&vdef, &sdb), 1); /* 'db' */
	ck_assert_int_eq(sfs_object_covers(&sdb, &v2), 0);   /* says more */
	ck_assert_int_eq(sfs_object_covers(&v3, &v2), 0);
	ck_assert_int_eq(sfs_object_covers(&vdef, &v2), 0);
	ck_assert_int_eq(sfs_object_covers(&vdef, &vdef), 0); /* "version 0" */
	ck_assert_int_eq(sfs_object_covers(&sk1, &k1), 0);
	ck_assert_int_eq(sfs_object_covers(&k1, &k1), 1);
	ck_assert_int_eq(sfs_object_covers(&store, &store), 1);
	ck_assert_int_eq(sfs_object_covers(&sstore, &store), 0);
	ck_assert_int_eq(sfs_object_covers(&store, &keys), 0);
	ck_assert_int_eq(sfs_object_covers(&keys, &keys), 1);
	ck_assert_int_eq(sfs_object_covers(&none, &none), 0);
}
END_TEST

/* A name holding a quote is matched only where the line names the object
 * in the subject's own words: bare ('a'b') it could be misread. */
START_TEST(quoted_name_covered_only_in_the_same_words)
{
	const struct sfs_object s = sfs_object_secret("a'b");
	const struct sfs_object v = sfs_object_version("a'b", 1);
	const struct sfs_object p = sfs_object_principal("uid:1'");
	const struct sfs_object f = sfs_object_file("/tmp/it's");

	ck_assert_int_eq(sfs_object_covers(&s, &s), 1);
	ck_assert_int_eq(sfs_object_covers(&v, &s), 0);
	ck_assert_int_eq(sfs_object_covers(&p, &p), 0);
	ck_assert_int_eq(sfs_object_covers(&f, &f), 1);
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
	    about_writes_the_objects_words_and_carries_it,
	    cut_name_shown_as_the_text_and_covers_nothing,
	    covers_compares_fields_not_words,
	    quoted_name_covered_only_in_the_same_words,
	    printable_replaces_control_and_invalid_bytes,
	    name_valid_gives_the_rule_as_the_message,
	};

	return harness_suite("err", cases, sizeof(cases) / sizeof(cases[0]),
			     NULL, NULL, 0);
}

const struct harness harness = {.suite = err_suite};
