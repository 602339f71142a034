/*
 * KMS keys through the services (keys.h): create, look up by id or name,
 * list, activate/deactivate (and what that does to the versions a key
 * protects), rotate (old versions stay readable, new ones use the new key
 * version), delete (EBUSY while in use); the service key's exemptions;
 * who may do what; one audit line per change. A fresh store per test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fault_store.h"
#include "lib/harness.h"
#include "lib/testutil.h"
#include "secretfs/ctx.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/store.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

static char *tmp;
static char store[512];
static struct sfs_ctx *ctx;
static struct sfs_caller admin;
static struct sfs_error err;

static void setup(void)
{
	ctx = tu_store_open("keys", &tmp, store, sizeof(store));
	sfs_caller_self(&admin);
}

static void teardown(void)
{
	sfs_ctx_close(ctx);
	tu_rmrf(tmp);
	free(tmp);
}

static struct sfs_key_rec key(const char *name)
{
	return tu_key_get(ctx, name);
}

static void mk_key(const char *name)
{
	ck_assert_int_eq(sfs_key_create(ctx, &admin, name, NULL, NULL, &err),
			 SFS_OK);
}

static void mk_secret(const char *name, const char *k, const char *value)
{
	ck_assert_int_eq(tu_secret_create(ctx, &admin, name, k, value, &err),
			 SFS_OK);
}

static int rd(const char *name, uint32_t n, const char *want)
{
	struct sfs_value v = { NULL, 0 };
	int rc = sfs_version_read(ctx, &admin, name, n, &v, NULL, &err);

	if (rc == SFS_OK) {
		ck_assert_uint_eq(v.len, strlen(want));
		ck_assert(memcmp(v.data, want, v.len) == 0);
	}
	sfs_value_release(&v);
	return rc;
}

static int add(const char *name, const char *value,
	       struct sfs_version_rec *out)
{
	return sfs_version_add(ctx, &admin, name, value, strlen(value), 0,
			       out, &err);
}

START_TEST(service_key_made_at_init)
{
	struct sfs_key_rec k = key("service");

	ck_assert_str_eq(k.name, "service");
	ck_assert_int_eq(k.type, SFS_KEY_SERVICE);
	ck_assert_int_eq(k.state, SFS_STATE_ACTIVE);
	ck_assert_uint_eq(k.current_version, 1);
	ck_assert_uint_eq(strlen(k.id), 36);
	ck_assert_str_eq(key(k.id).name, "service");
	ck_assert_str_eq(sfs_key_type_name(k.type), "service");
	ck_assert_str_eq(sfs_state_name(k.state), "active");
	ck_assert_str_eq(sfs_state_name(SFS_STATE_DESTROYED), "destroyed");
}
END_TEST

START_TEST(create_user_key)
{
	struct sfs_key_rec out, k;
	char who[SFS_PRINCIPAL_MAX + 1];

	ck_assert_int_eq(sfs_key_create(ctx, &admin, "payments", "pay keys",
					&out, &err),
			 SFS_OK);
	k = key("payments");
	ck_assert_str_eq(k.id, out.id);
	ck_assert_int_eq(k.type, SFS_KEY_USER);
	ck_assert_str_eq(sfs_key_type_name(k.type), "user");
	ck_assert_int_eq(k.state, SFS_STATE_ACTIVE);
	ck_assert_str_eq(k.description, "pay keys");
	ck_assert_uint_eq(k.current_version, 1);
	sfs_principal_describe(admin.uid, who, sizeof(who));
	ck_assert_str_eq(k.created_by, who);
	ck_assert_str_eq(key(k.id).name, "payments");
}
END_TEST

START_TEST(create_name_rules)
{
	char long_name[SFS_NAME_MAX + 2];

	memset(long_name, 'k', sizeof(long_name));
	long_name[SFS_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(sfs_key_create(ctx, &admin, long_name, NULL, NULL,
					&err),
			 SFS_ENAMETOOLONG);
	ck_assert_int_eq(sfs_key_create(ctx, &admin, "_k", NULL, NULL, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_key_create(ctx, &admin, "k", "\x01", NULL, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_key_create(ctx, &admin, "service", NULL, NULL,
					&err),
			 SFS_EEXIST);
	mk_key("k");
	ck_assert_int_eq(sfs_key_create(ctx, &admin, "k", NULL, NULL, &err),
			 SFS_EEXIST);
}
END_TEST

START_TEST(unknown_key_is_enoent)
{
	struct sfs_key_rec k;

	ck_assert_int_eq(sfs_key_get(ctx, &admin, "none", &k, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "none", 1, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "none", 0, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_key_rotate(ctx, &admin, "none", NULL, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "none", &err),
			 SFS_ENOENT);
}
END_TEST

static int list_cb(void *arg, const struct sfs_key_rec *k)
{
	strcat(arg, k->name);
	strcat(arg, ",");
	return 0;
}

START_TEST(list_keys)
{
	char names[128] = "";

	mk_key("b-key");
	mk_key("a-key");
	ck_assert_int_eq(sfs_key_list(ctx, &admin, list_cb, names, &err), 0);
	ck_assert_ptr_nonnull(strstr(names, "service,"));
	ck_assert_ptr_nonnull(strstr(names, "a-key,"));
	ck_assert_ptr_nonnull(strstr(names, "b-key,"));
	ck_assert_uint_eq(strlen(names), strlen("service,a-key,b-key,"));
}
END_TEST

START_TEST(service_key_cannot_be_turned_off)
{
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "service", 0, &err),
			 SFS_EPERM);
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "service", &err),
			 SFS_EPERM);
	ck_assert_int_eq(key("service").state, SFS_STATE_ACTIVE);
}
END_TEST

START_TEST(deactivated_key_blocks_read_and_add)
{
	mk_key("uk");
	mk_secret("s", "uk", "v1");
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "uk", 0, &err), 0);
	ck_assert_int_eq(key("uk").state, SFS_STATE_DEACTIVATED);
	ck_assert_int_eq(rd("s", 1, NULL), SFS_ENOKEY);
	ck_assert_int_eq(add("s", "v2", NULL), SFS_ENOKEY);
	ck_assert_int_eq(sfs_version_copy(ctx, &admin, "s", 1, NULL, &err),
			 SFS_ENOKEY);
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "uk", 1, &err), 0);
	ck_assert_int_eq(rd("s", 1, "v1"), SFS_OK);
	ck_assert_int_eq(add("s", "v2", NULL), SFS_OK);
}
END_TEST

START_TEST(deactivated_key_keeps_other_keys_usable)
{
	mk_key("uk");
	mk_secret("s", "uk", "v1");
	ck_assert_int_eq(sfs_secret_change_key(ctx, &admin, "s", "service",
					       &err),
			 0);
	ck_assert_int_eq(add("s", "v2", NULL), SFS_OK);
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "uk", 0, &err), 0);
	/* v1 was wrapped by uk, v2 by the service key */
	ck_assert_int_eq(rd("s", 1, NULL), SFS_ENOKEY);
	ck_assert_int_eq(rd("s", 2, "v2"), SFS_OK);
}
END_TEST

START_TEST(rotate_keeps_old_versions_readable)
{
	struct sfs_version_rec v1, v2;
	struct sfs_key_rec k;

	mk_key("rk");
	mk_secret("s", "rk", "before");
	ck_assert_int_eq(sfs_version_info(ctx, &admin, "s", 1, &v1, &err), 0);
	ck_assert_uint_eq(v1.kms_key_version, 1);
	ck_assert_int_eq(sfs_key_rotate(ctx, &admin, "rk", &k, &err), SFS_OK);
	ck_assert_uint_eq(k.current_version, 2);
	ck_assert_uint_eq(key("rk").current_version, 2);
	ck_assert_int_eq(add("s", "after", &v2), SFS_OK);
	ck_assert_uint_eq(v2.kms_key_version, 2);
	ck_assert_str_eq(v2.kms_key_id, k.id);
	ck_assert_int_eq(rd("s", 1, "before"), SFS_OK);
	ck_assert_int_eq(rd("s", 2, "after"), SFS_OK);
	ck_assert_int_eq(sfs_key_rotate(ctx, &admin, "service", &k, &err), 0);
	ck_assert_uint_eq(k.current_version, 2);
}
END_TEST

START_TEST(delete_key_in_use_is_ebusy)
{
	struct sfs_key_rec k;

	mk_key("dk");
	mk_secret("s", "dk", "v1");
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "dk", &err), SFS_EBUSY);
	/* the secret moves away but version 1 is still wrapped by dk */
	ck_assert_int_eq(sfs_secret_change_key(ctx, &admin, "s", "service",
					       &err),
			 0);
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "dk", &err), SFS_EBUSY);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "s", 1, 0, &err),
			 0);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "s", 1, &err), 0);
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "dk", &err), SFS_OK);
	ck_assert_int_eq(sfs_key_get(ctx, &admin, "dk", &k, &err), SFS_ENOENT);
}
END_TEST

START_TEST(delete_key_after_secret_deleted)
{
	mk_key("dk");
	mk_secret("s", "dk", "v1");
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "s", 1, 0, &err),
			 0);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "s", 1, &err), 0);
	/* destroyed, but the secret still names dk as its key */
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "dk", &err), SFS_EBUSY);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "s", &err), SFS_OK);
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "dk", &err), SFS_OK);
	/* a deactivated unused key can go as well */
	mk_key("dk2");
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "dk2", 0, &err), 0);
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "dk2", &err), SFS_OK);
}
END_TEST

START_TEST(fs_callers_and_keys)
{
	struct sfs_caller none = tu_fs_caller(1000, 1000, 0);
	struct sfs_caller viewer = tu_fs_caller(1000, 1000, SFS_ROLE_KMS_VIEWER);
	struct sfs_caller all = tu_fs_caller(1000, 1000, SFS_ROLE_ALL);
	struct sfs_key_rec k;
	char names[64] = "";

	ck_assert_int_eq(sfs_key_get(ctx, &none, "service", &k, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_key_list(ctx, &none, list_cb, names, &err),
			 SFS_EACCES);
	ck_assert_str_eq(names, "");
	ck_assert_int_eq(sfs_key_get(ctx, &viewer, "service", &k, &err), 0);
	ck_assert_int_eq(sfs_key_get(ctx, &viewer, "none", &k, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_key_list(ctx, &viewer, list_cb, names, &err), 0);
	ck_assert_str_eq(names, "service,");
	/* key management is the administrator's, whatever the roles */
	ck_assert_int_eq(sfs_key_create(ctx, &all, "k", NULL, NULL, &err),
			 SFS_EACCES);
	mk_key("k");
	ck_assert_int_eq(sfs_key_set_state(ctx, &all, "k", 0, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_key_rotate(ctx, &all, "k", NULL, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_key_delete(ctx, &all, "k", &err), SFS_EACCES);
	ck_assert_int_eq(sfs_key_delete(ctx, &all, "none", &err), SFS_EACCES);
	ck_assert_int_eq(key("k").state, SFS_STATE_ACTIVE);
}
END_TEST

START_TEST(audit_lines_for_key_changes)
{
	const char *const ops[] = {"key.create", "key.rotate",
				   "key.deactivate", "key.delete", "key.delete"};
	const char *const res[] = {"ok", "ok", "ok", "EPERM", "ok"};
	const char *const keys[] = {"ak", "ak", "ak", "service", "ak"};

	mk_key("ak");                                               /* 1 */
	ck_assert_int_eq(sfs_key_rotate(ctx, &admin, "ak", NULL, &err), 0); /* 2 */
	ck_assert_int_eq(sfs_key_set_state(ctx, &admin, "ak", 0, &err), 0); /* 3 */
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, "service", &err),
			 SFS_EPERM);                                /* 4 */
	ck_assert_int_eq(sfs_key_delete(ctx, &admin, key("ak").id, &err),
			 0);                                        /* 5 */
	tu_assert_audit_field(store, "op", ops, 5);
	tu_assert_audit_field(store, "result", res, 5);
	tu_assert_audit_field(store, "key", keys, 5);
}
END_TEST

START_TEST(store_failure_on_rotate_changes_nothing)
{
	struct sfs_store *f;

	mk_key("fk");
	mk_secret("s", "fk", "v1");
	f = fault_store_wrap(sfs_ctx_store(ctx));
	sfs_ctx_swap_store(ctx, f);
	fault_store_fail_op(f, "keyver_insert", SFS_ENOSPC);
	ck_assert_int_eq(sfs_key_rotate(ctx, &admin, "fk", NULL, &err),
			 SFS_ENOSPC);
	fault_store_reset(f);
	ck_assert_uint_eq(key("fk").current_version, 1);
	ck_assert_int_eq(sfs_key_rotate(ctx, &admin, "fk", NULL, &err), 0);
	ck_assert_uint_eq(key("fk").current_version, 2);
	ck_assert_int_eq(rd("s", 1, "v1"), SFS_OK);
}
END_TEST

/* ---- rekey --------------------------------------------------------------- */

/* A new key file in the test's directory: 32 bytes, 0400. */
static void new_key_file(char *path, size_t cap, unsigned char seed)
{
	unsigned char k[32];
	size_t i;

	for (i = 0; i < sizeof(k); i++)
		k[i] = (unsigned char)(seed + 13 * i);
	snprintf(path, cap, "%s/new.key", tmp);
	tu_write_file(path, k, sizeof(k), 0400);
}

/* Reopen the store with key (NULL: DIR/master.key, the old one). */
static int reopen(const char *key)
{
	struct sfs_ctx_options o;

	sfs_ctx_close(ctx);
	ctx = NULL;
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	o.master_key = key;
	return sfs_ctx_open(&ctx, &o, &err);
}

START_TEST(rekey_rewraps_every_key_version_and_the_canary)
{
	char path[600];

	mk_key("k1");
	mk_secret("a", "k1", "one");
	ck_assert_int_eq(sfs_key_rotate(ctx, &admin, "k1", NULL, &err),
			 SFS_OK);
	ck_assert_int_eq(add("a", "two", NULL), SFS_OK);
	mk_secret("s", NULL, "svc");
	new_key_file(path, sizeof(path), 7);
	ck_assert_int_eq(sfs_ctx_rekey(ctx, path, &err), SFS_OK);
	ck_assert_int_eq(reopen(NULL), SFS_EMASTER);
	ck_assert_int_eq(reopen(path), SFS_OK);
	ck_assert_int_eq(rd("a", 1, "one"), SFS_OK);
	ck_assert_int_eq(rd("a", 2, "two"), SFS_OK);
	ck_assert_int_eq(rd("s", 0, "svc"), SFS_OK);
	ck_assert_int_eq(add("a", "three", NULL), SFS_OK);
	ck_assert_int_eq(rd("a", 3, "three"), SFS_OK);
}
END_TEST

/* A daemon that opened the store before the rekey holds the old key: it
 * fails closed, ENOKEY, at its next read of key material. */
START_TEST(rekey_leaves_an_old_key_holder_failing_enokey)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *old = NULL;
	struct sfs_value v = {NULL, 0};
	char path[600];

	mk_key("k1");
	mk_secret("a", "k1", "one");
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	ck_assert_int_eq(sfs_ctx_open(&old, &o, &err), SFS_OK);
	ck_assert_int_eq(sfs_version_read(old, &admin, "a", 1, &v, NULL, &err),
			 SFS_OK);
	sfs_value_release(&v);
	new_key_file(path, sizeof(path), 5);
	ck_assert_int_eq(sfs_ctx_rekey(ctx, path, &err), SFS_OK);
	ck_assert_int_eq(sfs_version_read(old, &admin, "a", 1, &v, NULL, &err),
			 SFS_ENOKEY);
	sfs_value_release(&v);
	sfs_ctx_close(old);
}
END_TEST

START_TEST(rekey_with_an_unsafe_key_file_changes_nothing)
{
	char path[600];

	mk_secret("a", NULL, "one");
	new_key_file(path, sizeof(path), 9);
	ck_assert_int_eq(chmod(path, 0444), 0);
	ck_assert_int_eq(sfs_ctx_rekey(ctx, path, &err), SFS_EKEYFILE);
	ck_assert_int_eq(reopen(NULL), SFS_OK);
	ck_assert_int_eq(rd("a", 1, "one"), SFS_OK);
}
END_TEST

/* After a failed rekey: the store opens under the old key only, its
 * value reads, and the log holds exactly the n lines ops / res. */
static void assert_rekey_undone(const char *path, const char *const *ops,
				const char *const *res, size_t n)
{
	ck_assert_int_eq(reopen(path), SFS_EMASTER);
	ck_assert_int_eq(reopen(NULL), SFS_OK);
	ck_assert_int_eq(rd("a", 1, "one"), SFS_OK);
	tu_assert_audit_field(store, "op", ops, n);
	tu_assert_audit_field(store, "result", res, n);
}

/* A read-only context cannot rekey: EROFS, the store stays under its
 * key, and the refusal is audited. */
START_TEST(rekey_on_a_read_only_context_is_erofs)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *ro = NULL;
	const char *const ops[] = {"secret.create", "store.rekey",
				   "version.read"};
	const char *const res[] = {"ok", "EROFS", "ok"};
	char path[600];

	mk_secret("a", NULL, "one");
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	o.readonly = 1;
	ck_assert_int_eq(sfs_ctx_open(&ro, &o, &err), SFS_OK);
	new_key_file(path, sizeof(path), 3);
	ck_assert_int_eq(sfs_ctx_rekey(ro, path, &err), SFS_EROFS);
	ck_assert_int_eq(err.code, SFS_EROFS);
	ck_assert_str_eq(err.msg, "store: the store is read-only");
	sfs_ctx_close(ro);
	assert_rekey_undone(path, ops, res, 3);
}
END_TEST

/* A store call of a rekey fails: the caller gets the store's error,
 * the store is still wholly under the old key, and the line says so. */
START_TEST(rekey_store_failure_changes_nothing)
{
	struct sfs_store *f;
	const char *const ops[] = {"key.create", "secret.create",
				   "store.rekey", "version.read"};
	const char *const res[] = {"ok", "ok", "EIO", "ok"};
	char path[600];

	mk_key("k1");
	mk_secret("a", "k1", "one");
	new_key_file(path, sizeof(path), 4);
	f = fault_store_wrap(sfs_ctx_store(ctx));
	sfs_ctx_swap_store(ctx, f);
	fault_store_fail_op(f, "keyver_set", SFS_EIO);
	ck_assert_int_eq(sfs_ctx_rekey(ctx, path, &err), SFS_EIO);
	ck_assert_int_eq(err.code, SFS_EIO);
	ck_assert_str_eq(err.msg, "fault store: injected failure in keyver_set");
	fault_store_reset(f);
	assert_rekey_undone(path, ops, res, 4);
}
END_TEST

/*
 * A stand-in for the real store whose commit_then (the commit of a change
 * with its staged audit line) rolls back and fails, as a commit that did
 * not happen.
 */
static struct sfs_store_ops hook_ops;
static struct sfs_store hook;
static const struct sfs_store_ops *real_ops;

static int commit_then_fail(struct sfs_store *s, void (*after)(void *),
			    void *arg, struct sfs_error *e)
{
	(void)after;
	(void)arg;
	real_ops->rollback(s);
	return sfs_error_set(e, SFS_EIO, "test: commit failed");
}

/* The rekey's audit line is committed with it: when that commit fails,
 * the rekey fails whole and its line says so. */
START_TEST(rekey_commits_its_audit_line_with_it)
{
	struct sfs_store *real = sfs_ctx_store(ctx);
	const char *const ops[] = {"secret.create", "store.rekey",
				   "version.read"};
	const char *const res[] = {"ok", "EIO", "ok"};
	char path[600];

	mk_secret("a", NULL, "one");
	new_key_file(path, sizeof(path), 6);
	real_ops = real->ops;
	hook_ops = *real->ops;
	hook_ops.commit_then = commit_then_fail;
	hook.ops = &hook_ops;
	hook.backend = real->backend;
	ck_assert_ptr_eq(sfs_ctx_swap_store(ctx, &hook), real);
	ck_assert_int_eq(sfs_ctx_rekey(ctx, path, &err), SFS_EIO);
	ck_assert_int_eq(err.code, SFS_EIO);
	ck_assert_str_eq(err.msg, "test: commit failed");
	ck_assert_ptr_eq(sfs_ctx_swap_store(ctx, real), &hook);
	assert_rekey_undone(path, ops, res, 3);
}
END_TEST

static Suite *keys_suite(void)
{
	const TTest *const cases[] = {
	    service_key_made_at_init,
	    rekey_rewraps_every_key_version_and_the_canary,
	    rekey_leaves_an_old_key_holder_failing_enokey,
	    rekey_with_an_unsafe_key_file_changes_nothing,
	    rekey_on_a_read_only_context_is_erofs,
	    rekey_store_failure_changes_nothing,
	    rekey_commits_its_audit_line_with_it,
	    create_user_key,
	    create_name_rules,
	    unknown_key_is_enoent,
	    list_keys,
	    service_key_cannot_be_turned_off,
	    deactivated_key_blocks_read_and_add,
	    deactivated_key_keeps_other_keys_usable,
	    rotate_keeps_old_versions_readable,
	    delete_key_in_use_is_ebusy,
	    delete_key_after_secret_deleted,
	    fs_callers_and_keys,
	    audit_lines_for_key_changes,
	    store_failure_on_rotate_changes_nothing,
	};

	return harness_suite("keys", cases, sizeof(cases) / sizeof(cases[0]),
			     setup, teardown, 0);
}

const struct harness harness = {.suite = keys_suite};
