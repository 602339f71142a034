/*
 * Principal suite: parsing and normalising principals and allow lists,
 * matching callers, the CLI's own caller, descriptions and role names.
 * Name resolution is checked with the one account every system has
 * (root, uid 0, group root, gid 0) and with names no system has.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/harness.h"
#include "secretfs/policy.h"
#include "secretfs/principal.h"
#include "secretfs/store.h"

#define NO_USER "no-such-user-sfs-test"
#define NO_GROUP "no-such-group-sfs-test"

struct parse_row {
	const char *in;
	const char *want; /* NULL: SFS_EINVAL */
};

static const struct parse_row parse_rows[] = {
	{ "uid:0", "uid:0" },
	{ "uid:1000", "uid:1000" },
	{ "gid:100", "gid:100" },
	{ "uid:4294967294", "uid:4294967294" },
	{ "gid:007", "gid:7" },
	{ "user:root", "uid:0" },
	{ "group:root", "gid:0" },
	{ "uid:4294967295", NULL },
	{ "uid:99999999999999999999", NULL },
	{ "uid:", NULL },
	{ "uid:-1", NULL },
	{ "uid:+1", NULL },
	{ "uid: 1", NULL },
	{ "uid:1 ", NULL },
	{ "uid:1x", NULL },
	{ "uid:0x10", NULL },
	{ "UID:1", NULL },
	{ "uid=1", NULL },
	{ "1000", NULL },
	{ "root", "uid:0" },
	{ NO_USER, NULL },
	{ "root:", NULL },
	{ "", NULL },
	{ "user:", NULL },
	{ "group:", NULL },
	{ "pid:1", NULL },
	{ "user:" NO_USER, NULL },
	{ "group:" NO_GROUP, NULL },
};

START_TEST(test_parse)
{
	const struct parse_row *r = &parse_rows[_i];
	struct sfs_error err;
	char out[64] = "junk";
	int rc;

	sfs_error_clear(&err);
	rc = sfs_principal_parse(r->in, out, sizeof(out), &err);
	if (r->want) {
		ck_assert_msg(rc == SFS_OK, "'%s': %s", r->in, err.msg);
		ck_assert_str_eq(out, r->want);
	} else {
		ck_assert_msg(rc == SFS_EINVAL, "'%s' accepted as '%s'", r->in,
			      out);
		ck_assert_int_eq(err.code, SFS_EINVAL);
		ck_assert_msg(err.msg[0] != '\0', "'%s': no message", r->in);
	}
}
END_TEST

START_TEST(test_parse_unknown_messages)
{
	struct sfs_error err;
	char out[64];

	sfs_error_clear(&err);
	ck_assert_int_eq(sfs_principal_parse("user:" NO_USER, out, sizeof(out),
					     &err),
			 SFS_EINVAL);
	ck_assert_str_eq(err.msg, "unknown user '" NO_USER "'");
	ck_assert_int_eq(sfs_principal_parse("group:" NO_GROUP, out,
					     sizeof(out), &err),
			 SFS_EINVAL);
	ck_assert_str_eq(err.msg, "unknown group '" NO_GROUP "'");
}
END_TEST

START_TEST(test_parse_small_buffer)
{
	char out[8];

	ck_assert_int_eq(sfs_principal_parse("uid:1000000", out, sizeof(out),
					     NULL),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_principal_parse("uid:100", out, sizeof(out),
					     NULL),
			 SFS_OK);
	ck_assert_str_eq(out, "uid:100");
}
END_TEST

struct list_row {
	const char *in;
	const char *want; /* NULL: SFS_EINVAL */
};

static const struct list_row list_rows[] = {
	{ "", "" },
	{ "   ", "" },
	{ "uid:1", "uid:1" },
	{ "uid:1,gid:2", "uid:1,gid:2" },
	{ " uid:1 , gid:2 ", "uid:1,gid:2" },
	{ "\tuid:1,\tgid:2\t", "uid:1,gid:2" },
	{ "gid:2,uid:1", "gid:2,uid:1" },
	{ "uid:1,uid:1", "uid:1" },
	{ "uid:5,gid:5,uid:05", "uid:5,gid:5" },
	{ "user:root,uid:0,group:root", "uid:0,gid:0" },
	{ "uid:1,,gid:2", NULL },
	{ "uid:1,", NULL },
	{ ",uid:1", NULL },
	{ ",", NULL },
	{ "uid:1, ,gid:2", NULL },
	{ "uid:1;gid:2", NULL },
	{ "uid:1 gid:2", NULL },
	{ "uid:1,user:" NO_USER, NULL },
};

START_TEST(test_list)
{
	const struct list_row *r = &list_rows[_i];
	char out[SFS_ALLOWED_MAX + 1] = "junk";
	struct sfs_error err;
	int rc;

	sfs_error_clear(&err);
	rc = sfs_principal_list_normalize(r->in, out, sizeof(out), &err);
	if (r->want) {
		ck_assert_msg(rc == SFS_OK, "'%s': %s", r->in, err.msg);
		ck_assert_str_eq(out, r->want);
	} else {
		ck_assert_msg(rc == SFS_EINVAL, "'%s' accepted as '%s'", r->in,
			      out);
		ck_assert_int_eq(err.code, SFS_EINVAL);
		ck_assert_str_eq(out, "");
	}
}
END_TEST

/* n distinct 14-byte entries: "uid:1000000000,uid:1000000001,..." */
static char *many(int n)
{
	char *s = malloc((size_t)n * 16 + 1);
	size_t o = 0;
	int i;

	ck_assert_ptr_nonnull(s);
	s[0] = '\0';
	for (i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%suid:%d", i ? "," : "",
				     1000000000 + i);
	return s;
}

START_TEST(test_list_limit_exact)
{
	char *in = many(20);
	size_t len = strlen(in);
	char out[SFS_ALLOWED_MAX + 1];

	ck_assert_uint_eq(len, 20 * 15 - 1);
	/* the result must fit in cap - 1 bytes, no more */
	ck_assert_int_eq(sfs_principal_list_normalize(in, out, len + 1, NULL),
			 SFS_OK);
	ck_assert_str_eq(out, in);
	ck_assert_int_eq(sfs_principal_list_normalize(in, out, len, NULL),
			 SFS_EINVAL);
	free(in);
}
END_TEST

START_TEST(test_list_limit_store)
{
	/* 136 entries = 2039 bytes fit the store's 2047; 137 (2054) not */
	char out[SFS_ALLOWED_MAX + 1];
	char *ok = many(136), *big = many(137);
	struct sfs_error err;

	ck_assert_int_eq(sfs_principal_list_normalize(ok, out, sizeof(out),
						      NULL),
			 SFS_OK);
	ck_assert_uint_eq(strlen(out), 2039);
	ck_assert_int_eq(sfs_principal_list_normalize(big, out, sizeof(out),
						      &err),
			 SFS_EINVAL);
	ck_assert_str_eq(err.msg, "principal list longer than 2047 bytes");
	free(ok);
	free(big);
}
END_TEST

START_TEST(test_list_duplicates_do_not_count)
{
	/* 400 copies of one entry normalise to one */
	char in[400 * 6 + 1], out[32];
	size_t o = 0;
	int i;

	for (i = 0; i < 400; i++)
		o += (size_t)sprintf(in + o, "%suid:1", i ? "," : "");
	ck_assert_int_eq(sfs_principal_list_normalize(in, out, sizeof(out),
						      NULL),
			 SFS_OK);
	ck_assert_str_eq(out, "uid:1");
}
END_TEST

START_TEST(test_list_entry_too_long)
{
	char in[400], out[64];

	memset(in, '0', sizeof(in));
	memcpy(in, "uid:", 4);
	in[sizeof(in) - 1] = '\0';
	ck_assert_int_eq(sfs_principal_list_normalize(in, out, sizeof(out),
						      NULL),
			 SFS_EINVAL);
}
END_TEST

static void caller(struct sfs_caller *c, uint32_t uid, uint32_t gid,
		   uint32_t g1, uint32_t g2)
{
	memset(c, 0, sizeof(*c));
	c->uid = uid;
	c->gid = gid;
	c->groups[0] = g1;
	c->groups[1] = g2;
	c->ngroups = 2;
}

START_TEST(test_matches)
{
	struct sfs_caller c;

	caller(&c, 1000, 100, 27, 44);
	ck_assert_int_eq(sfs_principal_matches("uid:1000", &c), 1);
	ck_assert_int_eq(sfs_principal_matches("gid:100", &c), 1);
	ck_assert_int_eq(sfs_principal_matches("gid:27", &c), 1);
	ck_assert_int_eq(sfs_principal_matches("gid:44", &c), 1);
	/* a uid is not a gid and vice versa */
	ck_assert_int_eq(sfs_principal_matches("gid:1000", &c), 0);
	ck_assert_int_eq(sfs_principal_matches("uid:100", &c), 0);
	/* no prefix or suffix matching */
	ck_assert_int_eq(sfs_principal_matches("uid:100", &c), 0);
	ck_assert_int_eq(sfs_principal_matches("uid:10000", &c), 0);
	ck_assert_int_eq(sfs_principal_matches("gid:4", &c), 0);
	/* malformed principals match nobody */
	ck_assert_int_eq(sfs_principal_matches("uid:", &c), 0);
	ck_assert_int_eq(sfs_principal_matches("uid:1000x", &c), 0);
	ck_assert_int_eq(sfs_principal_matches("user:root", &c), 0);
	ck_assert_int_eq(sfs_principal_matches("", &c), 0);
}
END_TEST

START_TEST(test_matches_ngroups_bound)
{
	struct sfs_caller c;

	/* only the first ngroups entries count */
	caller(&c, 1000, 100, 27, 44);
	c.ngroups = 1;
	ck_assert_int_eq(sfs_principal_matches("gid:27", &c), 1);
	ck_assert_int_eq(sfs_principal_matches("gid:44", &c), 0);
}
END_TEST

/* A normalised list, parsed once, matched against a caller. */
static int list_matches(const char *list, const struct sfs_caller *c)
{
	struct sfs_principal_id e[SFS_ALLOW_ENTRIES_MAX];
	size_t n = sfs_principal_list_parse(list, e, SFS_ALLOW_ENTRIES_MAX);

	return sfs_principal_list_matches(e, n, c);
}

/* The one parser: typed entries in order; an entry outside uid:/gid:
 * 0..4294967294 names nobody and is skipped; cap is respected. */
START_TEST(test_list_parse_typed)
{
	struct sfs_principal_id e[4];
	size_t n;

	n = sfs_principal_list_parse("uid:7,gid:4294967294,uid:0", e, 4);
	ck_assert_uint_eq(n, 3);
	ck_assert(e[0].kind == SFS_PRINCIPAL_UID && e[0].id == 7);
	ck_assert(e[1].kind == SFS_PRINCIPAL_GID && e[1].id == 4294967294u);
	ck_assert(e[2].kind == SFS_PRINCIPAL_UID && e[2].id == 0);
	n = sfs_principal_list_parse("uid:4294967295,user:x,gid:,uid:1x,gid:5",
				     e, 4);
	ck_assert_uint_eq(n, 1);
	ck_assert(e[0].kind == SFS_PRINCIPAL_GID && e[0].id == 5);
	ck_assert_uint_eq(sfs_principal_list_parse("", e, 4), 0);
	ck_assert_uint_eq(sfs_principal_list_parse("uid:1,uid:2,uid:3", e, 2),
			  2);
	ck_assert(e[1].id == 2);
}
END_TEST

/* What is stored is what is matched: setting a record's list parses it,
 * and the longest list that fits is parsed whole. */
START_TEST(test_rec_set_parses)
{
	static struct sfs_secret_rec r;
	char list[SFS_ALLOWED_MAX + 1];
	size_t i, len = 0;

	sfs_principal_rec_set(&r, "uid:10,gid:20");
	ck_assert_str_eq(r.allowed, "uid:10,gid:20");
	ck_assert_uint_eq(r.nallow, 2);
	ck_assert(r.allow[1].kind == SFS_PRINCIPAL_GID && r.allow[1].id == 20);
	for (i = 0; len + 6 <= SFS_ALLOWED_MAX; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len,
					"%suid:%zu", i ? "," : "", i % 10);
	sfs_principal_rec_set(&r, list);
	ck_assert_uint_eq(r.nallow, i);
	ck_assert_uint_eq(r.nallow, SFS_ALLOW_ENTRIES_MAX);
	sfs_principal_rec_set(&r, "");
	ck_assert_uint_eq(r.nallow, 0);
}
END_TEST

START_TEST(test_list_matches)
{
	struct sfs_caller c;

	caller(&c, 10, 20, 30, 40);
	ck_assert_int_eq(list_matches("", &c), 0);
	ck_assert_int_eq(list_matches("uid:1,uid:100", &c), 0);
	ck_assert_int_eq(list_matches("uid:1,uid:10", &c), 1);
	ck_assert_int_eq(list_matches("uid:10,uid:1", &c), 1);
	ck_assert_int_eq(list_matches("uid:1,gid:40,uid:2", &c),
			 1);
	ck_assert_int_eq(list_matches("gid:20", &c), 1);
	ck_assert_int_eq(list_matches("gid:10,uid:20", &c), 0);
}
END_TEST

/* A groups source that counts how often it is asked and answers with
 * one group (answer 1 for it, 0 for others), or always -1. */
struct counted {
	struct sfs_caller_groups base;
	int asked;
	int unreadable;
	uint32_t gid;
};

static int counted_has(struct sfs_caller_groups *g, const struct sfs_caller *c,
		       uint32_t gid)
{
	struct counted *k = (struct counted *)g;

	(void)c;
	k->asked++;
	if (k->unreadable)
		return -1;
	return gid == k->gid;
}

static void lazy_caller(struct sfs_caller *c, struct counted *k, uint32_t uid,
			uint32_t late_gid, int unreadable)
{
	memset(k, 0, sizeof(*k));
	k->base.has = counted_has;
	k->gid = late_gid;
	k->unreadable = unreadable;
	caller(c, uid, uid, 1, 2);
	c->via_fs = 1;
	c->more = &k->base;
}

static void plain_secret(struct sfs_secret_rec *s, uint32_t mode)
{
	memset(s, 0, sizeof(*s));
	s->owner = 0;
	s->group = 500;
	s->mode = mode;
}

START_TEST(unreadable_groups_refuse_not_other)
{
	struct sfs_secret_rec s;
	struct sfs_caller c;
	struct counted k;

	plain_secret(&s, 0404); /* group: none, other: read */
	lazy_caller(&c, &k, 1000, 500, 1);
	ck_assert_int_eq(sfs_caller_in_group(&c, 500), -1);
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 0);
	lazy_caller(&c, &k, 1000, 600, 0); /* not in 500: other bits */
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 1);
	lazy_caller(&c, &k, 1000, 500, 0); /* in 500 past groups[] */
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 0);
	plain_secret(&s, 0040);
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 1);
}
END_TEST

START_TEST(groups_read_only_when_they_decide)
{
	struct sfs_secret_rec s;
	struct sfs_caller c;
	struct counted k;

	plain_secret(&s, 0444); /* group and other agree */
	lazy_caller(&c, &k, 1000, 500, 0);
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 1);
	plain_secret(&s, 0400); /* agree again: both deny */
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 0);
	ck_assert_int_eq(k.asked, 0);
	lazy_caller(&c, &k, 0, 500, 0); /* root */
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 1);
	ck_assert_int_eq(k.asked, 0);
	plain_secret(&s, 0440);
	s.owner = 1000; /* the owner's bits decide */
	lazy_caller(&c, &k, 1000, 500, 0);
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 1);
	ck_assert_int_eq(k.asked, 0);
	/* an allow list naming the uid after a gid entry */
	ck_assert_int_eq(list_matches("gid:700,uid:1000", &c),
			 1);
	ck_assert_int_eq(k.asked, 0);
	ck_assert_int_eq(list_matches("gid:700,uid:1", &c), 0);
	ck_assert_int_eq(k.asked, 1);
}
END_TEST

START_TEST(test_caller_self)
{
	struct sfs_caller c;
	gid_t g[SFS_CALLER_GROUPS_MAX];
	char comm[32] = "";
	FILE *f;
	int n;

	memset(&c, 0xa5, sizeof(c));
	sfs_caller_self(&c);
	ck_assert_uint_eq(c.uid, getuid());
	ck_assert_uint_eq(c.gid, getgid());
	ck_assert_int_eq(c.pid, getpid());
	ck_assert_int_eq(c.admin, 1);
	ck_assert_int_eq(c.via_fs, 0);
	ck_assert_uint_eq(c.roles, SFS_ROLE_ALL);
	n = getgroups(SFS_CALLER_GROUPS_MAX, g);
	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(c.ngroups, n);
	if (n > 0)
		ck_assert_uint_eq(c.groups[0], g[0]);
	f = fopen("/proc/self/comm", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	ck_assert_str_eq(c.comm, comm);
}
END_TEST

START_TEST(test_describe)
{
	char out[SFS_PRINCIPAL_MAX + 1], small[8];

	sfs_principal_describe(0, out, sizeof(out));
	ck_assert_str_eq(out, "uid:0(root)");
	sfs_principal_describe(4000000000u, out, sizeof(out));
	ck_assert_str_eq(out, "uid:4000000000");
	sfs_principal_describe(0, small, sizeof(small));
	ck_assert_str_eq(small, "uid:0(r");
}
END_TEST

START_TEST(test_roles)
{
	ck_assert_str_eq(sfs_role_name(SFS_ROLE_MANAGER), "manager");
	ck_assert_str_eq(sfs_role_name(SFS_ROLE_KMS_USER), "kms-user");
	ck_assert_str_eq(sfs_role_name(SFS_ROLE_KMS_VIEWER), "kms-viewer");
	ck_assert_ptr_null(sfs_role_name(SFS_ROLE_ALL));
	ck_assert_int_eq(sfs_role_parse("manager"), SFS_ROLE_MANAGER);
	ck_assert_int_eq(sfs_role_parse("kms-user"), SFS_ROLE_KMS_USER);
	ck_assert_int_eq(sfs_role_parse("kms-viewer"), SFS_ROLE_KMS_VIEWER);
	ck_assert_int_eq(sfs_role_parse("Manager"), 0);
	ck_assert_int_eq(sfs_role_parse("admin"), 0);
	ck_assert_int_eq(sfs_role_parse("kms_user"), 0);
	ck_assert_int_eq(sfs_role_parse(""), 0);
}
END_TEST

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *principal_suite(void)
{
	Suite *s = suite_create("principal");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_parse, 0, NELEM(parse_rows));
	tcase_add_test(tc, test_parse_unknown_messages);
	tcase_add_test(tc, test_parse_small_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("lists");
	tcase_add_loop_test(tc, test_list, 0, NELEM(list_rows));
	tcase_add_test(tc, test_list_limit_exact);
	tcase_add_test(tc, test_list_limit_store);
	tcase_add_test(tc, test_list_duplicates_do_not_count);
	tcase_add_test(tc, test_list_entry_too_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("matching");
	tcase_add_test(tc, test_matches);
	tcase_add_test(tc, test_matches_ngroups_bound);
	tcase_add_test(tc, test_list_matches);
	tcase_add_test(tc, test_list_parse_typed);
	tcase_add_test(tc, test_rec_set_parses);
	tcase_add_test(tc, unreadable_groups_refuse_not_other);
	tcase_add_test(tc, groups_read_only_when_they_decide);
	suite_add_tcase(s, tc);

	tc = tcase_create("callers");
	tcase_add_test(tc, test_caller_self);
	tcase_add_test(tc, test_describe);
	tcase_add_test(tc, test_roles);
	suite_add_tcase(s, tc);
	return s;
}

const struct harness harness = {.suite = principal_suite};
