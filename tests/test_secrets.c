/*
 * Secrets through the services (secret.h): create (with and without a
 * first value), look up with the full or partial view, list, update,
 * change key, activate, deactivate, delete; every SPEC §2 row for
 * secrets with its exact code, for the administrator and for filesystem
 * callers with and without roles; store failures through the failing
 * store hook leave nothing changed. A fresh store per test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fault_store.h"
#include "lib/harness.h"
#include "lib/testutil.h"
#include "secretfs/ctx.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/store.h"
#include "secretfs/version.h"

static char *tmp;
static char store[512];
static struct sfs_ctx *ctx;
static struct sfs_caller admin;
static struct sfs_error err;

static void setup(void)
{
	ctx = tu_store_open("secrets", &tmp, store, sizeof(store));
	sfs_caller_self(&admin);
}

static void teardown(void)
{
	sfs_ctx_close(ctx);
	tu_rmrf(tmp);
	free(tmp);
}

static int create_as(const struct sfs_caller *c, const char *name,
		     const char *key, const char *value)
{
	return tu_secret_create(ctx, c, name, key, value, &err);
}

static int create(const char *name, const char *value)
{
	return create_as(&admin, name, NULL, value);
}

static struct sfs_secret_rec get(const char *name)
{
	return tu_secret_get(ctx, name);
}

static struct sfs_key_rec key(const char *name)
{
	return tu_key_get(ctx, name);
}

/* ---- create ------------------------------------------------------------- */

START_TEST(create_defaults)
{
	struct sfs_secret_rec out, s;
	struct sfs_secret_new n;
	char who[SFS_PRINCIPAL_MAX + 1];

	memset(&n, 0, sizeof(n));
	n.name = "db-password";
	n.description = "the database";
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, &out, &err), 0);
	s = get("db-password");
	ck_assert_str_eq(s.id, out.id);
	ck_assert_uint_eq(strlen(s.id), 36);
	ck_assert_int_eq(s.id[14], '4');
	ck_assert_str_eq(s.description, "the database");
	ck_assert_int_eq(s.status, SFS_STATE_ACTIVE);
	ck_assert_int_eq(s.access_control, 0);
	ck_assert_str_eq(s.allowed, "");
	ck_assert_uint_eq(s.owner, admin.uid);
	ck_assert_uint_eq(s.group, admin.gid);
	ck_assert_uint_eq(s.mode, 0440);
	ck_assert_uint_eq(s.default_version, 0);
	ck_assert_uint_eq(s.latest_version, 0);
	ck_assert_str_eq(s.kms_key_id, key("service").id);
	sfs_principal_describe(admin.uid, who, sizeof(who));
	ck_assert_str_eq(s.created_by, who);
	ck_assert(s.created_at > 0);
	/* by id as well as by name */
	ck_assert_str_eq(get(out.id).name, "db-password");
}
END_TEST

START_TEST(create_with_value_and_fields)
{
	struct sfs_secret_new n;
	struct sfs_secret_rec s;
	struct sfs_value v;

	memset(&n, 0, sizeof(n));
	n.name = "api";
	n.value = "token";
	n.value_len = 5;
	n.access_control = 1;
	n.has_owner = n.has_group = n.has_mode = 1;
	n.owner = 1000;
	n.group = 2000;
	n.mode = 0400;
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err), 0);
	s = get("api");
	ck_assert_uint_eq(s.latest_version, 1);
	ck_assert_uint_eq(s.default_version, 1);
	ck_assert_int_eq(s.access_control, 1);
	ck_assert_uint_eq(s.owner, 1000);
	ck_assert_uint_eq(s.group, 2000);
	ck_assert_uint_eq(s.mode, 0400);
	ck_assert_int_eq(sfs_version_read(ctx, &admin, "api", 0, &v, NULL,
					  &err),
			 SFS_OK);
	ck_assert_uint_eq(v.len, 5);
	ck_assert(memcmp(v.data, "token", 5) == 0);
	sfs_value_release(&v);
}
END_TEST

START_TEST(create_name_rules)
{
	char long_name[SFS_NAME_MAX + 2];
	struct sfs_secret_new n;

	memset(long_name, 'a', sizeof(long_name));
	long_name[SFS_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(create(long_name, NULL), SFS_ENAMETOOLONG);
	long_name[SFS_NAME_MAX] = '\0';
	ck_assert_int_eq(create(long_name, NULL), SFS_OK);
	ck_assert_int_eq(create("", NULL), SFS_EINVAL);
	ck_assert_int_eq(create("-x", NULL), SFS_EINVAL);
	ck_assert_int_eq(create(".hidden", NULL), SFS_EINVAL);
	ck_assert_int_eq(create("a/b", NULL), SFS_EINVAL);
	ck_assert_int_eq(create("ok.name_1-2", NULL), SFS_OK);
	memset(&n, 0, sizeof(n));
	n.name = "d";
	n.description = "tab\there";
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err),
			 SFS_EINVAL);
	n.description = NULL;
	n.has_mode = 1;
	n.mode = 01440;
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err),
			 SFS_EINVAL);
}
END_TEST

START_TEST(create_name_taken)
{
	ck_assert_int_eq(create("dup", "one"), SFS_OK);
	ck_assert_int_eq(create("dup", "two"), SFS_EEXIST);
	ck_assert_ptr_nonnull(strstr(err.msg, "dup"));
	ck_assert_uint_eq(get("dup").latest_version, 1);
}
END_TEST

START_TEST(create_key_must_be_active)
{
	ck_assert_int_eq(sfs_key_create(ctx, &admin, "k1", NULL, NULL, &err),
			 0);
	ck_assert_int_eq(create_as(&admin, "a", "nosuchkey", NULL),
			 SFS_ENOKEY);
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "k1", 0, &err), 0);
	ck_assert_int_eq(create_as(&admin, "a", "k1", NULL), SFS_ENOKEY);
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "k1", 1, &err), 0);
	ck_assert_int_eq(create_as(&admin, "a", "k1", NULL), SFS_OK);
	ck_assert_str_eq(get("a").kms_key_id, key("k1").id);
	ck_assert_int_eq(create_as(&admin, "b", key("k1").id, NULL), SFS_OK);
}
END_TEST

START_TEST(create_bad_value_leaves_nothing)
{
	char *big = calloc(1, SFS_VALUE_MAX + 1);
	struct sfs_secret_new n;
	struct sfs_secret_rec s;
	int full;

	memset(&n, 0, sizeof(n));
	n.name = "big";
	n.value = big;
	n.value_len = SFS_VALUE_MAX + 1;
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err),
			 SFS_EFBIG);
	n.value_len = 0;
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_secret_get(ctx, &admin, "big", &s, &full, &err),
			 SFS_ENOENT);
	free(big);
}
END_TEST

START_TEST(fs_create_needs_roles)
{
	struct sfs_caller none = tu_fs_caller(1000, 1000, 0);
	struct sfs_caller mgr = tu_fs_caller(1000, 1000, SFS_ROLE_MANAGER);
	struct sfs_caller kms =
		tu_fs_caller(1000, 1000, SFS_ROLE_MANAGER | SFS_ROLE_KMS_USER);
	struct sfs_secret_rec s;

	ck_assert_int_eq(sfs_key_create(ctx, &admin, "uk", NULL, NULL, &err),
			 0);
	ck_assert_int_eq(create_as(&none, "a", NULL, NULL), SFS_EACCES);
	ck_assert_int_eq(create_as(&mgr, "a", "uk", NULL), SFS_EACCES);
	/* without kms-user, a missing key is EACCES too: names not probed */
	ck_assert_int_eq(create_as(&mgr, "a", "nokey", NULL), SFS_EACCES);
	ck_assert_int_eq(create_as(&kms, "a", "nokey", NULL), SFS_ENOKEY);
	ck_assert_int_eq(create_as(&mgr, "a", NULL, NULL), SFS_OK);
	ck_assert_int_eq(create_as(&kms, "b", "uk", NULL), SFS_OK);
	s = get("a");
	ck_assert_uint_eq(s.owner, 1000);
	ck_assert_uint_eq(s.group, 1000);
}
END_TEST

/* ---- get and list ------------------------------------------------------- */

START_TEST(partial_view_exact)
{
	struct sfs_caller other = tu_fs_caller(1002, 1002, 0);
	struct sfs_secret_rec full_rec, s;
	struct sfs_secret_new n;
	int full = -1;

	memset(&n, 0, sizeof(n));
	n.name = "hidden";
	n.description = "visible text";
	n.value = "v";
	n.value_len = 1;
	n.access_control = 1;
	n.has_owner = 1;
	n.owner = 1000;
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err), 0);
	full_rec = get("hidden");
	ck_assert_int_eq(sfs_secret_get(ctx, &other, "hidden", &s, &full,
					&err),
			 SFS_OK);
	ck_assert_int_eq(full, 0);
	ck_assert_uint_eq(strlen(s.id), 13);
	ck_assert(strncmp(s.id, full_rec.id, 8) == 0);
	ck_assert_str_eq(s.id + 8, "-****");
	ck_assert_str_eq(s.name, "hidden");
	ck_assert_str_eq(s.description, "visible text");
	ck_assert_int_eq(s.access_control, 1);
	ck_assert(s.created_at == full_rec.created_at);
	ck_assert_str_eq(s.created_by, full_rec.created_by);
	ck_assert_int_eq(s.status, 0);
	ck_assert_uint_eq(s.owner, 0);
	ck_assert_uint_eq(s.mode, 0);
	ck_assert_uint_eq(s.default_version, 0);
	ck_assert_uint_eq(s.latest_version, 0);
	ck_assert_str_eq(s.kms_key_id, "");
	ck_assert_str_eq(s.allowed, "");
	ck_assert(s.changed_at == 0);
	/* the owner sees everything */
	other.uid = 1000;
	ck_assert_int_eq(sfs_secret_get(ctx, &other, "hidden", &s, &full,
					&err),
			 SFS_OK);
	ck_assert_int_eq(full, 1);
	ck_assert_str_eq(s.id, full_rec.id);
}
END_TEST

/* The fields the partial view keeps, by name, for the fronts (the
 * daemon's xattrs): exactly those sfs_secret_get keeps above. */
START_TEST(partial_fields_are_the_partial_views)
{
	static const char *const in[] = {"id", "name", "description",
					 "access_control", "created_at",
					 "created_by"};
	static const char *const out[] = {
	    "status", "default_version", "latest_version", "allowed",
	    "allowed_principals", "owner", "mode", "kms_key_id",
	    "changed_at", "", "ID"};
	size_t i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		ck_assert_int_eq(sfs_secret_partial_field(in[i]), 1);
	for (i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		ck_assert_int_eq(sfs_secret_partial_field(out[i]), 0);
}
END_TEST

/* The questions a front asks before opening (access(2), stat): the
 * owner reads and sees, a manager off the list sees but may not read,
 * anyone else neither; an open secret is everyone's to see. */
START_TEST(may_read_see_manage_answer_as_policy)
{
	struct sfs_caller owner = tu_fs_caller(1000, 1000, 0);
	struct sfs_caller other = tu_fs_caller(1002, 1002, 0);
	struct sfs_caller mgr = tu_fs_caller(1003, 1003, SFS_ROLE_MANAGER);
	struct sfs_secret_rec r;

	memset(&r, 0, sizeof(r));
	r.access_control = 1;
	r.owner = 1000;
	r.mode = 0440;
	ck_assert_int_eq(sfs_secret_may_read(&owner, &r), SFS_OK);
	ck_assert_int_eq(sfs_secret_may_see(&owner, &r), SFS_OK);
	ck_assert_int_eq(sfs_secret_may_read(&other, &r), SFS_EACCES);
	ck_assert_int_eq(sfs_secret_may_see(&other, &r), SFS_EACCES);
	ck_assert_int_eq(sfs_secret_may_read(&mgr, &r), SFS_EACCES);
	ck_assert_int_eq(sfs_secret_may_see(&mgr, &r), SFS_OK);
	ck_assert_int_eq(sfs_secret_may_manage(&mgr), SFS_OK);
	ck_assert_int_eq(sfs_secret_may_manage(&owner), SFS_EACCES);
	r.access_control = 0;
	ck_assert_int_eq(sfs_secret_may_see(&other, &r), SFS_OK);
}
END_TEST

START_TEST(get_without_access_control_is_full)
{
	struct sfs_caller other = tu_fs_caller(1002, 1002, 0);
	struct sfs_secret_rec s;
	int full = -1;

	ck_assert_int_eq(create("open", "v"), SFS_OK);
	ck_assert_int_eq(sfs_secret_get(ctx, &other, "open", &s, &full, &err),
			 SFS_OK);
	ck_assert_int_eq(full, 1);
	ck_assert_uint_eq(s.latest_version, 1);
	ck_assert_int_eq(sfs_secret_get(ctx, &other, "none", &s, &full, &err),
			 SFS_ENOENT);
}
END_TEST

static int names_cb(void *arg, const struct sfs_secret_rec *s)
{
	strcat(arg, s->name);
	strcat(arg, ",");
	return 0;
}

static int stop_cb(void *arg, const struct sfs_secret_rec *s)
{
	(void)arg;
	(void)s;
	return 7;
}

START_TEST(list_in_name_order)
{
	struct sfs_caller other = tu_fs_caller(1002, 1002, 0);
	char names[256] = "";

	ck_assert_int_eq(create("zeta", NULL), SFS_OK);
	ck_assert_int_eq(create("alpha", NULL), SFS_OK);
	ck_assert_int_eq(create("mid", NULL), SFS_OK);
	ck_assert_int_eq(sfs_secret_list(ctx, &other, names_cb, names, &err),
			 SFS_OK);
	ck_assert_str_eq(names, "alpha,mid,zeta,");
	ck_assert_int_eq(sfs_secret_list(ctx, &admin, stop_cb, NULL, &err), 7);
}
END_TEST

/* Many secrets in one store transaction (a commit per secret would take
 * a disk flush each), inserted out of name order. */
#define MANY 700

static void insert_many(void)
{
	struct sfs_store *st = sfs_ctx_store(ctx);
	struct sfs_secret_rec r;
	struct sfs_key_rec k;
	unsigned i;

	ck_assert_int_eq(sfs_store_begin(st, 1, &err), SFS_OK);
	ck_assert_int_eq(sfs_store_key_get(st, "service", &k, &err), SFS_OK);
	for (i = 0; i < MANY; i++) {
		memset(&r, 0, sizeof(r));
		/* 3 is prime to 700: every number once, out of order */
		snprintf(r.name, sizeof(r.name), "s%04u", (i * 3) % MANY);
		snprintf(r.id, sizeof(r.id),
			 "00000000-0000-4000-8000-%012u", i);
		strcpy(r.kms_key_id, k.id);
		strcpy(r.created_by, "uid:0(root)");
		r.mode = 0440;
		ck_assert_msg(sfs_store_secret_insert(st, &r, &err) == SFS_OK,
			      "%s", err.msg);
	}
	ck_assert_int_eq(sfs_store_commit(st, &err), SFS_OK);
}

struct walk {
	unsigned n, stop_at;
	char last[SFS_NAME_MAX + 1];
};

/* Checks the order, and calls back into the context (the lock must not
 * be held while the callback runs). */
static int walk_cb(void *arg, const struct sfs_secret_rec *s)
{
	struct walk *w = arg;
	struct sfs_secret_rec again;
	struct sfs_error e2;
	int full;

	ck_assert_msg(strcmp(w->last, s->name) < 0, "'%s' after '%s'",
		      s->name, w->last);
	strcpy(w->last, s->name);
	ck_assert_int_eq(sfs_secret_get(ctx, &admin, s->name, &again, &full,
					&e2), SFS_OK);
	ck_assert_str_eq(again.id, s->id);
	if (++w->n == w->stop_at)
		return 9;
	return 0;
}

START_TEST(list_pages_through_many_in_order)
{
	struct walk w = {0, 0, ""};

	insert_many();
	ck_assert_int_eq(sfs_secret_list(ctx, &admin, walk_cb, &w, &err),
			 SFS_OK);
	ck_assert_uint_eq(w.n, MANY);
	ck_assert_str_eq(w.last, "s0699");
}
END_TEST

START_TEST(list_stop_value_stops_mid_page)
{
	struct walk w = {0, 300, ""}; /* in the second page */

	insert_many();
	ck_assert_int_eq(sfs_secret_list(ctx, &admin, walk_cb, &w, &err), 9);
	ck_assert_uint_eq(w.n, 300);
	ck_assert_str_eq(w.last, "s0299");
}
END_TEST

/* A backend without secret_list_after (the failing-store hook has none)
 * lists the same way. */
START_TEST(list_pages_without_the_paging_op)
{
	struct walk w = {0, 0, ""};
	struct sfs_store *f;

	insert_many();
	f = fault_store_wrap(sfs_ctx_store(ctx));
	ck_assert(!sfs_store_can_list_after(f));
	sfs_ctx_swap_store(ctx, f);
	ck_assert_int_eq(sfs_secret_list(ctx, &admin, walk_cb, &w, &err),
			 SFS_OK);
	ck_assert_uint_eq(w.n, MANY);
	w.n = 0;
	w.stop_at = 257;
	w.last[0] = '\0';
	ck_assert_int_eq(sfs_secret_list(ctx, &admin, walk_cb, &w, &err), 9);
	ck_assert_str_eq(w.last, "s0256");
}
END_TEST

/* ---- update ------------------------------------------------------------- */

START_TEST(update_fields)
{
	struct sfs_secret_update u;
	struct sfs_secret_rec s;

	ck_assert_int_eq(create("u", NULL), SFS_OK);
	memset(&u, 0, sizeof(u));
	u.fields = SFS_SF_DESCRIPTION | SFS_SF_ACCESS_CONTROL |
		   SFS_SF_ALLOWED | SFS_SF_OWNER | SFS_SF_GROUP | SFS_SF_MODE;
	u.description = "new";
	u.access_control = 1;
	u.allowed = " uid:5 , gid:7,uid:5";
	u.owner = 11;
	u.group = 12;
	u.mode = 0600;
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "u", &u, &err), 0);
	s = get("u");
	ck_assert_str_eq(s.description, "new");
	ck_assert_int_eq(s.access_control, 1);
	ck_assert_str_eq(s.allowed, "uid:5,gid:7");
	ck_assert_uint_eq(s.owner, 11);
	ck_assert_uint_eq(s.group, 12);
	ck_assert_uint_eq(s.mode, 0600);
	/* only the named fields change */
	u.fields = SFS_SF_MODE;
	u.mode = 0440;
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "u", &u, &err), 0);
	s = get("u");
	ck_assert_uint_eq(s.mode, 0440);
	ck_assert_str_eq(s.description, "new");
}
END_TEST

START_TEST(update_rejects_bad_values)
{
	char allowed[3000];
	struct sfs_secret_update u;
	size_t i;

	ck_assert_int_eq(create("u", NULL), SFS_OK);
	memset(&u, 0, sizeof(u));
	u.fields = SFS_SF_MODE;
	u.mode = 01000;
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "u", &u, &err),
			 SFS_EINVAL);
	u.fields = SFS_SF_ALLOWED;
	u.allowed = "uid:1,bogus:2";
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "u", &u, &err),
			 SFS_EINVAL);
	allowed[0] = '\0';
	for (i = 0; i < 250; i++)
		sprintf(allowed + strlen(allowed), "uid:%zu,", 100000 + i);
	u.allowed = allowed;
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "u", &u, &err),
			 SFS_EINVAL);
	u.fields = SFS_SF_DESCRIPTION;
	u.description = "bell\a";
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "u", &u, &err),
			 SFS_EINVAL);
	ck_assert_uint_eq(get("u").mode, 0440);
	ck_assert_str_eq(get("u").allowed, "");
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "none", &u, &err),
			 SFS_EINVAL);
	u.description = "fine";
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "none", &u, &err),
			 SFS_ENOENT);
}
END_TEST

START_TEST(fs_update_needs_manager)
{
	struct sfs_caller c = tu_fs_caller(1000, 1000, 0);
	struct sfs_secret_update u;

	ck_assert_int_eq(create("u", NULL), SFS_OK);
	memset(&u, 0, sizeof(u));
	u.fields = SFS_SF_DESCRIPTION;
	u.description = "x";
	ck_assert_int_eq(sfs_secret_update(ctx, &c, "u", &u, &err),
			 SFS_EACCES);
	ck_assert_str_eq(get("u").description, "");
	c.roles = SFS_ROLE_MANAGER;
	ck_assert_int_eq(sfs_secret_update(ctx, &c, "u", &u, &err), SFS_OK);
	ck_assert_str_eq(get("u").description, "x");
}
END_TEST

/* ---- change key --------------------------------------------------------- */

START_TEST(change_key_rules)
{
	struct sfs_caller mgr = tu_fs_caller(1000, 1000, SFS_ROLE_MANAGER);
	struct sfs_version_rec v;

	ck_assert_int_eq(create("ck", "v1"), SFS_OK);
	ck_assert_int_eq(sfs_key_create(ctx, &admin, "k2", NULL, NULL, &err),
			 0);
	ck_assert_int_eq(sfs_secret_change_key(ctx, &admin, "ck", "missing",
					       &err),
			 SFS_ENOKEY);
	ck_assert_int_eq(sfs_secret_change_key(ctx, &mgr, "ck", "k2", &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "k2", 0, &err), 0);
	ck_assert_int_eq(sfs_secret_change_key(ctx, &admin, "ck", "k2", &err),
			 SFS_ENOKEY);
	ck_assert_str_eq(get("ck").kms_key_id, key("service").id);
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "k2", 1, &err), 0);
	ck_assert_int_eq(sfs_secret_change_key(ctx, &admin, "ck", "k2", &err),
			 SFS_OK);
	ck_assert_str_eq(get("ck").kms_key_id, key("k2").id);
	/* only new versions use it */
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "ck", "v2", 2, 0, &v,
					 &err),
			 SFS_OK);
	ck_assert_str_eq(v.kms_key_id, key("k2").id);
	ck_assert_int_eq(sfs_version_info(ctx, &admin, "ck", 1, &v, &err), 0);
	ck_assert_str_eq(v.kms_key_id, key("service").id);
	/* moving away from a user key needs kms-user too (issue 10, 12) */
	ck_assert_int_eq(sfs_secret_change_key(ctx, &mgr, "ck", "service",
					       &err),
			 SFS_EACCES);
	ck_assert_str_eq(get("ck").kms_key_id, key("k2").id);
	mgr.roles |= SFS_ROLE_KMS_USER;
	ck_assert_int_eq(sfs_secret_change_key(ctx, &mgr, "ck", "service",
					       &err),
			 SFS_OK);
	/* the service key itself needs no kms-user */
	mgr.roles &= ~SFS_ROLE_KMS_USER;
	ck_assert_int_eq(sfs_secret_change_key(ctx, &mgr, "ck", "service",
					       &err),
			 SFS_OK);
}
END_TEST

/* ---- status and delete -------------------------------------------------- */

START_TEST(activate_needs_an_active_version)
{
	ck_assert_int_eq(create("st", NULL), SFS_OK);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "st", 0, &err), 0);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "st", 1, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(get("st").status, SFS_STATE_DEACTIVATED);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "nope", 1, &err),
			 SFS_ENOENT);
}
END_TEST

START_TEST(deactivate_and_activate)
{
	ck_assert_int_eq(create("st", "v1"), SFS_OK);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "st", 0, &err), 0);
	ck_assert_int_eq(get("st").status, SFS_STATE_DEACTIVATED);
	ck_assert_uint_eq(get("st").default_version, 1);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "st", 1, &err), 0);
	ck_assert_int_eq(get("st").status, SFS_STATE_ACTIVE);
}
END_TEST

START_TEST(delete_rules)
{
	struct sfs_secret_rec s;
	int full;

	ck_assert_int_eq(create("del", "v1"), SFS_OK);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "del", "v2", 2, 0, NULL,
					 &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "del", &err),
			 SFS_EBUSY);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "del", 0, &err),
			 0);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "del", &err),
			 SFS_ENOTEMPTY);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "del", 1, &err), 0);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "del", &err),
			 SFS_ENOTEMPTY);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "del", 2, 0, &err),
			 0);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "del", &err),
			 SFS_ENOTEMPTY);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "del", 2, &err), 0);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "del", &err), SFS_OK);
	ck_assert_int_eq(sfs_secret_get(ctx, &admin, "del", &s, &full, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "del", &err),
			 SFS_ENOENT);
	/* the name is free again */
	ck_assert_int_eq(create("del", NULL), SFS_OK);
}
END_TEST

START_TEST(delete_empty_deactivated_secret)
{
	ck_assert_int_eq(create("e", NULL), SFS_OK);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "e", &err), SFS_EBUSY);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "e", 0, &err), 0);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "e", &err), SFS_OK);
}
END_TEST

START_TEST(fs_status_and_delete_need_manager)
{
	struct sfs_caller c = tu_fs_caller(1000, 1000, SFS_ROLE_KMS_USER);

	ck_assert_int_eq(create("m", NULL), SFS_OK);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &c, "m", 0, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_secret_delete(ctx, &c, "m", &err), SFS_EACCES);
	c.roles = SFS_ROLE_MANAGER;
	ck_assert_int_eq(sfs_secret_set_status(ctx, &c, "m", 0, &err), 0);
	ck_assert_int_eq(sfs_secret_delete(ctx, &c, "m", &err), SFS_OK);
}
END_TEST

START_TEST(readonly_refuses_every_change)
{
	struct sfs_ctx_options o;
	struct sfs_secret_update u;
	struct sfs_secret_rec s;
	struct sfs_secret_new n;
	struct sfs_ctx *ro;
	int full;

	ck_assert_int_eq(create("r", NULL), SFS_OK);
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	o.readonly = 1;
	ck_assert_int_eq(sfs_ctx_open(&ro, &o, &err), SFS_OK);
	ck_assert_int_eq(sfs_ctx_readonly(ro), 1);
	memset(&n, 0, sizeof(n));
	n.name = "x";
	ck_assert_int_eq(sfs_secret_create(ro, &admin, &n, NULL, &err),
			 SFS_EROFS);
	memset(&u, 0, sizeof(u));
	ck_assert_int_eq(sfs_secret_update(ro, &admin, "r", &u, &err),
			 SFS_EROFS);
	ck_assert_int_eq(sfs_secret_set_status(ro, &admin, "r", 0, &err),
			 SFS_EROFS);
	ck_assert_int_eq(sfs_secret_change_key(ro, &admin, "r", "service",
					       &err),
			 SFS_EROFS);
	ck_assert_int_eq(sfs_secret_delete(ro, &admin, "r", &err), SFS_EROFS);
	ck_assert_int_eq(sfs_secret_get(ro, &admin, "r", &s, &full, &err), 0);
	sfs_ctx_close(ro);
}
END_TEST

/* ---- store failures ----------------------------------------------------- */

static struct sfs_store *fault(void)
{
	struct sfs_store *f = fault_store_wrap(sfs_ctx_store(ctx));

	sfs_ctx_swap_store(ctx, f);
	return f;
}

START_TEST(store_failure_changes_nothing)
{
	struct sfs_store *f;
	struct sfs_secret_rec s;
	uint64_t g;
	int full;

	ck_assert_int_eq(create("keep", "v1"), SFS_OK);
	f = fault();
	g = sfs_ctx_generation(ctx);
	fault_store_fail_op(f, "commit", SFS_ENOSPC);
	ck_assert_int_eq(create("new", "v"), SFS_ENOSPC);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "keep", 0, &err),
			 SFS_ENOSPC);
	ck_assert_int_eq(err.code, SFS_ENOSPC);
	ck_assert_str_eq(err.msg, "fault store: injected failure in commit");
	fault_store_reset(f);
	fault_store_fail_op(f, "secret_update", SFS_EIO);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "keep", 0, &err),
			 SFS_EIO);
	fault_store_reset(f);
	ck_assert_uint_eq(sfs_ctx_generation(ctx), g);
	ck_assert_int_eq(sfs_secret_get(ctx, &admin, "new", &s, &full, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(get("keep").status, SFS_STATE_ACTIVE);
}
END_TEST

START_TEST(store_failure_mid_create_with_value)
{
	struct sfs_store *f = fault();
	struct sfs_secret_rec s;
	int full;

	fault_store_fail_op(f, "version_insert", SFS_EIO);
	ck_assert_int_eq(create("half", "value"), SFS_EIO);
	fault_store_reset(f);
	ck_assert_int_eq(sfs_secret_get(ctx, &admin, "half", &s, &full, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(create("half", "value"), SFS_OK);
}
END_TEST

START_TEST(store_failure_on_lookup_is_eio)
{
	struct sfs_store *f;
	struct sfs_secret_rec s;
	int full;

	ck_assert_int_eq(create("x", NULL), SFS_OK);
	f = fault();
	fault_store_fail_op(f, "secret_get", SFS_EIO);
	ck_assert_int_eq(sfs_secret_get(ctx, &admin, "x", &s, &full, &err),
			 SFS_EIO);
	fault_store_fail_op(f, "begin", SFS_EIO);
	ck_assert_int_eq(sfs_secret_list(ctx, &admin, names_cb, NULL, &err),
			 SFS_EIO);
	ck_assert_int_eq(err.code, SFS_EIO);
	ck_assert_str_eq(err.msg, "fault store: injected failure in begin");
}
END_TEST

static Suite *secrets_suite(void)
{
	const TTest *const cases[] = {
	    create_defaults,
	    create_with_value_and_fields,
	    create_name_rules,
	    create_name_taken,
	    create_key_must_be_active,
	    create_bad_value_leaves_nothing,
	    fs_create_needs_roles,
	    partial_view_exact,
	    partial_fields_are_the_partial_views,
	    may_read_see_manage_answer_as_policy,
	    get_without_access_control_is_full,
	    list_in_name_order,
	    list_pages_through_many_in_order,
	    list_stop_value_stops_mid_page,
	    list_pages_without_the_paging_op,
	    update_fields,
	    update_rejects_bad_values,
	    fs_update_needs_manager,
	    change_key_rules,
	    activate_needs_an_active_version,
	    deactivate_and_activate,
	    delete_rules,
	    delete_empty_deactivated_secret,
	    fs_status_and_delete_need_manager,
	    readonly_refuses_every_change,
	    store_failure_changes_nothing,
	    store_failure_mid_create_with_value,
	    store_failure_on_lookup_is_eio,
	};

	return harness_suite("secrets", cases, sizeof(cases) / sizeof(cases[0]),
			     setup, teardown, 0);
}

const struct harness harness = {.suite = secrets_suite};
