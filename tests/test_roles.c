/*
 * Roles through the services (role.h, sfs_ctx_resolve_roles): grant,
 * revoke and list by the administrator only; principals normalised;
 * filesystem callers get the roles granted to their uid, gid or groups,
 * root and the mount's owner every role; a grant made by another
 * process is seen at once. A fresh store per test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"
#include "lib/testutil.h"
#include "secretfs/ctx.h"
#include "secretfs/role.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"

static char *tmp;
static char store[512];
static struct sfs_ctx *ctx;
static struct sfs_caller admin;
static struct sfs_error err;

static void setup(void)
{
	ctx = tu_store_open("roles", &tmp, store, sizeof(store));
	sfs_caller_self(&admin);
}

static void teardown(void)
{
	sfs_ctx_close(ctx);
	tu_rmrf(tmp);
	free(tmp);
}

static unsigned roles_of(struct sfs_ctx *x, struct sfs_caller c)
{
	ck_assert_int_eq(sfs_ctx_resolve_roles(x, &c, &err), SFS_OK);
	return c.roles;
}

static int grant(const char *role, const char *principal)
{
	return sfs_role_grant(ctx, &admin, role, principal, &err);
}

static int list_cb(void *arg, const char *role, const char *principal)
{
	char *out = arg;

	strcat(out, role);
	strcat(out, "=");
	strcat(out, principal);
	strcat(out, ";");
	return 0;
}

START_TEST(grant_list_revoke)
{
	char out[256] = "";

	ck_assert_int_eq(grant("manager", "uid:1000"), SFS_OK);
	ck_assert_int_eq(grant("kms-viewer", "gid:50"), SFS_OK);
	ck_assert_int_eq(grant("manager", "uid:1000"), SFS_OK); /* twice */
	ck_assert_int_eq(sfs_role_list(ctx, &admin, list_cb, out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "manager=uid:1000;"));
	ck_assert_ptr_nonnull(strstr(out, "kms-viewer=gid:50;"));
	ck_assert_uint_eq(strlen(out),
			  strlen("manager=uid:1000;kms-viewer=gid:50;"));
	ck_assert_int_eq(sfs_role_revoke(ctx, &admin, "manager", "uid:1000",
					 &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_role_revoke(ctx, &admin, "manager", "uid:1000",
					 &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_role_revoke(ctx, &admin, "kms-user", "gid:50",
					 &err),
			 SFS_ENOENT);
	out[0] = '\0';
	ck_assert_int_eq(sfs_role_list(ctx, &admin, list_cb, out, &err), 0);
	ck_assert_str_eq(out, "kms-viewer=gid:50;");
}
END_TEST

START_TEST(names_are_normalised)
{
	char out[256] = "";

	ck_assert_int_eq(grant("kms-user", "user:root"), SFS_OK);
	ck_assert_int_eq(grant("manager", "group:root"), SFS_OK);
	ck_assert_int_eq(sfs_role_list(ctx, &admin, list_cb, out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "kms-user=uid:0;"));
	ck_assert_ptr_nonnull(strstr(out, "manager=gid:0;"));
	ck_assert_int_eq(sfs_role_revoke(ctx, &admin, "kms-user", "uid:0",
					 &err),
			 SFS_OK);
}
END_TEST

START_TEST(bad_role_or_principal)
{
	char out[64] = "";

	ck_assert_int_eq(grant("admin", "uid:1"), SFS_EINVAL);
	ck_assert_int_eq(grant("", "uid:1"), SFS_EINVAL);
	ck_assert_int_eq(grant("manager", "uid:x"), SFS_EINVAL);
	ck_assert_int_eq(grant("manager", "nobody-like-this"), SFS_EINVAL);
	ck_assert_int_eq(grant("manager", "user:no-such-user-here-xyz"),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_role_revoke(ctx, &admin, "boss", "uid:1", &err),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_role_list(ctx, &admin, list_cb, out, &err), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(only_the_administrator_changes_roles)
{
	struct sfs_caller c = tu_fs_caller(1000, 1000, 0);
	char out[64] = "";

	c.roles = SFS_ROLE_ALL;
	ck_assert_int_eq(sfs_role_grant(ctx, &c, "manager", "uid:1000", &err),
			 SFS_EACCES);
	ck_assert_int_eq(grant("manager", "uid:1000"), SFS_OK);
	ck_assert_int_eq(sfs_role_revoke(ctx, &c, "manager", "uid:1000",
					 &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_role_list(ctx, &c, list_cb, out, &err),
			 SFS_EACCES);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(resolve_by_uid_gid_and_groups)
{
	struct sfs_caller c = tu_fs_caller(1000, 1000, 0);

	ck_assert_uint_eq(roles_of(ctx, c), 0);
	ck_assert_int_eq(grant("manager", "uid:1000"), SFS_OK);
	ck_assert_int_eq(grant("kms-user", "gid:1000"), SFS_OK);
	ck_assert_int_eq(grant("kms-viewer", "gid:77"), SFS_OK);
	ck_assert_uint_eq(roles_of(ctx, c),
			  SFS_ROLE_MANAGER | SFS_ROLE_KMS_USER);
	c.groups[0] = 5;
	c.groups[1] = 77;
	c.ngroups = 2;
	ck_assert_uint_eq(roles_of(ctx, c), SFS_ROLE_ALL);
	c = tu_fs_caller(1001, 1001, 0);
	ck_assert_uint_eq(roles_of(ctx, c), 0);
	ck_assert_int_eq(sfs_role_revoke(ctx, &admin, "manager", "uid:1000",
					 &err),
			 0);
	ck_assert_uint_eq(roles_of(ctx, tu_fs_caller(1000, 1000, 0)),
			  SFS_ROLE_KMS_USER);
}
END_TEST

START_TEST(root_owner_and_admin_hold_every_role)
{
	struct sfs_ctx_options o;
	struct sfs_caller c = tu_fs_caller(0, 0, 0);
	struct sfs_ctx *mnt;

	ck_assert_uint_eq(roles_of(ctx, c), SFS_ROLE_ALL);
	ck_assert_uint_eq(roles_of(ctx, admin), SFS_ROLE_ALL);
	ck_assert_uint_eq(roles_of(ctx, tu_fs_caller(1500, 1500, 0)), 0);
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	o.has_owner = 1;
	o.owner_uid = 1500;
	ck_assert_int_eq(sfs_ctx_open(&mnt, &o, &err), SFS_OK);
	ck_assert_uint_eq(roles_of(mnt, tu_fs_caller(1500, 1500, 0)), SFS_ROLE_ALL);
	ck_assert_uint_eq(roles_of(mnt, tu_fs_caller(1501, 1500, 0)), 0);
	sfs_ctx_close(mnt);
}
END_TEST

START_TEST(grant_from_another_context_is_seen)
{
	struct sfs_ctx_options o;
	struct sfs_caller c = tu_fs_caller(1000, 1000, 0);
	struct sfs_ctx *other;

	ck_assert_uint_eq(roles_of(ctx, c), 0); /* cached */
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	ck_assert_int_eq(sfs_ctx_open(&other, &o, &err), SFS_OK);
	ck_assert_int_eq(sfs_role_grant(other, &admin, "manager", "uid:1000",
					&err),
			 SFS_OK);
	sfs_ctx_close(other);
	ck_assert_uint_eq(roles_of(ctx, c), SFS_ROLE_MANAGER);
}
END_TEST

START_TEST(roles_open_changes_through_the_fs)
{
	struct sfs_caller c = tu_fs_caller(1000, 1000, 0);
	struct sfs_secret_new n;

	memset(&n, 0, sizeof(n));
	n.name = "made-by-fs";
	ck_assert_int_eq(sfs_ctx_resolve_roles(ctx, &c, &err), 0);
	ck_assert_int_eq(sfs_secret_create(ctx, &c, &n, NULL, &err),
			 SFS_EACCES);
	ck_assert_int_eq(grant("manager", "gid:1000"), SFS_OK);
	ck_assert_int_eq(sfs_ctx_resolve_roles(ctx, &c, &err), 0);
	ck_assert_int_eq(sfs_secret_create(ctx, &c, &n, NULL, &err), SFS_OK);
}
END_TEST

START_TEST(readonly_context_refuses_grants_but_lists)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *ro;
	char out[64] = "";

	ck_assert_int_eq(grant("manager", "uid:7"), SFS_OK);
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	o.readonly = 1;
	ck_assert_int_eq(sfs_ctx_open(&ro, &o, &err), SFS_OK);
	ck_assert_int_eq(sfs_role_grant(ro, &admin, "manager", "uid:8", &err),
			 SFS_EROFS);
	ck_assert_int_eq(sfs_role_revoke(ro, &admin, "manager", "uid:7",
					 &err),
			 SFS_EROFS);
	ck_assert_int_eq(sfs_role_list(ro, &admin, list_cb, out, &err), 0);
	ck_assert_str_eq(out, "manager=uid:7;");
	sfs_ctx_close(ro);
}
END_TEST

START_TEST(audit_lines_for_role_changes)
{
	const char *const ops[] = {"role.grant", "role.grant", "role.revoke"};
	const char *const res[] = {"ok", "EINVAL", "ENOENT"};

	ck_assert_int_eq(grant("manager", "uid:3"), SFS_OK);
	ck_assert_int_eq(grant("root", "uid:3"), SFS_EINVAL);
	ck_assert_int_eq(sfs_role_revoke(ctx, &admin, "kms-user", "uid:3",
					 &err),
			 SFS_ENOENT);
	tu_assert_audit_field(store, "op", ops, 3);
	tu_assert_audit_field(store, "result", res, 3);
}
END_TEST

static Suite *roles_suite(void)
{
	const TTest *const cases[] = {
	    grant_list_revoke,
	    names_are_normalised,
	    bad_role_or_principal,
	    only_the_administrator_changes_roles,
	    resolve_by_uid_gid_and_groups,
	    root_owner_and_admin_hold_every_role,
	    grant_from_another_context_is_seen,
	    roles_open_changes_through_the_fs,
	    readonly_context_refuses_grants_but_lists,
	    audit_lines_for_role_changes,
	};

	return harness_suite("roles", cases, sizeof(cases) / sizeof(cases[0]),
			     setup, teardown, 0);
}

const struct harness harness = {.suite = roles_suite};
