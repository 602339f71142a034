/*
 * Versions through the services (version.h): add with compare-and-set,
 * read, default fallback and automatic deactivation, set default,
 * activate/deactivate/destroy, copy; envelope encryption seen from
 * outside (tampered, moved or swapped blobs give SFS_EBADMSG; no
 * plaintext in the database); the audit line of every read and change.
 * A fresh store per test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <signal.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/fault_store.h"
#include "lib/harness.h"
#include "lib/pgcluster.h"
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
	ctx = tu_store_open("versions", &tmp, store, sizeof(store));
	sfs_caller_self(&admin);
}

static void teardown(void)
{
	sfs_ctx_close(ctx);
	ctx = NULL;
	tu_rmrf(tmp);
	free(tmp);
}

static void mk(const char *name, const char *value)
{
	struct sfs_secret_new n;

	memset(&n, 0, sizeof(n));
	n.name = name;
	n.value = value;
	n.value_len = value ? strlen(value) : 0;
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err),
			 SFS_OK);
}

static int add(const char *name, const char *value)
{
	return sfs_version_add(ctx, &admin, name, value, strlen(value), 0,
			       NULL, &err);
}

/* Read version n as admin; on success compare with want. */
static int rd_as(const struct sfs_caller *c, const char *name, uint32_t n,
		 const char *want)
{
	struct sfs_value v = { NULL, 0 };
	int rc = sfs_version_read(ctx, c, name, n, &v, NULL, &err);

	if (rc == SFS_OK && want) {
		ck_assert_uint_eq(v.len, strlen(want));
		ck_assert(memcmp(v.data, want, v.len) == 0);
	}
	if (rc != SFS_OK)
		ck_assert_ptr_null(v.data);
	sfs_value_release(&v);
	return rc;
}

static int rd(const char *name, uint32_t n, const char *want)
{
	return rd_as(&admin, name, n, want);
}

static struct sfs_secret_rec get(const char *name)
{
	return tu_secret_get(ctx, name);
}

static int vstate(const char *name, uint32_t n)
{
	struct sfs_version_rec v;

	ck_assert_int_eq(sfs_version_info(ctx, &admin, name, n, &v, &err),
			 SFS_OK);
	return v.state;
}

/* ---- add ---------------------------------------------------------------- */

START_TEST(add_becomes_default)
{
	struct sfs_version_rec v;

	mk("db", NULL);
	ck_assert_uint_eq(get("db").default_version, 0);
	ck_assert_int_eq(rd("db", 0, NULL), SFS_ENOENT);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "db", "one", 3, 0, &v,
					 &err),
			 SFS_OK);
	ck_assert_uint_eq(v.version, 1);
	ck_assert_uint_eq(v.size, 3);
	ck_assert_int_eq(v.state, SFS_STATE_ACTIVE);
	ck_assert_ptr_null(v.ciphertext.data);
	ck_assert_int_eq(add("db", "two"), SFS_OK);
	ck_assert_uint_eq(get("db").default_version, 2);
	ck_assert_uint_eq(get("db").latest_version, 2);
	ck_assert_int_eq(rd("db", 0, "two"), SFS_OK);
	ck_assert_int_eq(rd("db", 1, "one"), SFS_OK);
	ck_assert_int_eq(rd("db", 2, "two"), SFS_OK);
}
END_TEST

START_TEST(add_records_format_and_creator)
{
	struct sfs_version_rec v;
	char who[SFS_PRINCIPAL_MAX + 1];

	mk("f", NULL);
	ck_assert_int_eq(add("f", "plain"), SFS_OK);
	ck_assert_int_eq(add("f", "[1,2]"), SFS_OK);
	ck_assert_int_eq(add("f", "{\"a\":\"b\"}"), SFS_OK);
	ck_assert_int_eq(sfs_version_info(ctx, &admin, "f", 1, &v, &err), 0);
	ck_assert_int_eq(v.format, SFS_FMT_TEXT);
	ck_assert_int_eq(sfs_version_info(ctx, &admin, "f", 2, &v, &err), 0);
	ck_assert_int_eq(v.format, SFS_FMT_JSON);
	ck_assert_int_eq(sfs_version_info(ctx, &admin, "f", 0, &v, &err), 0);
	ck_assert_int_eq(v.format, SFS_FMT_KV);
	ck_assert_uint_eq(v.version, 3);
	ck_assert_uint_eq(v.size, 9);
	sfs_principal_describe(admin.uid, who, sizeof(who));
	ck_assert_str_eq(v.created_by, who);
	ck_assert(v.created_at > 0);
}
END_TEST

START_TEST(add_value_length_limits)
{
	char *big = malloc(SFS_VALUE_MAX + 1);

	memset(big, 'x', SFS_VALUE_MAX + 1);
	mk("s", NULL);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "s", "", 0, 0, NULL,
					 &err),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "s", big,
					 SFS_VALUE_MAX + 1, 0, NULL, &err),
			 SFS_EFBIG);
	ck_assert_uint_eq(get("s").latest_version, 0);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "s", big, SFS_VALUE_MAX,
					 0, NULL, &err),
			 SFS_OK);
	ck_assert_uint_eq(get("s").latest_version, 1);
	free(big);
}
END_TEST

START_TEST(add_binary_value_round_trips)
{
	static const unsigned char bin[] = { 0, 1, 2, 0xff, 0, 0x80, '\n' };
	struct sfs_value v;

	mk("bin", NULL);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "bin", bin, sizeof(bin),
					 0, NULL, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_read(ctx, &admin, "bin", 1, &v, NULL,
					  &err),
			 SFS_OK);
	ck_assert_uint_eq(v.len, sizeof(bin));
	ck_assert(memcmp(v.data, bin, sizeof(bin)) == 0);
	sfs_value_release(&v);
	ck_assert_ptr_null(v.data);
}
END_TEST

START_TEST(add_compare_and_set)
{
	mk("cas", "v1");
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "cas", "x", 1, 1, NULL,
					 &err),
			 SFS_EEXIST);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "cas", "x", 1, 3, NULL,
					 &err),
			 SFS_EEXIST);
	ck_assert_uint_eq(get("cas").latest_version, 1);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "cas", "x", 1, 2, NULL,
					 &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "cas", "y", 1, 2, NULL,
					 &err),
			 SFS_EEXIST);
	ck_assert_int_eq(rd("cas", 0, "x"), SFS_OK);
}
END_TEST

START_TEST(add_to_deactivated_secret_refused)
{
	mk("d", "v1");
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "d", 0, &err),
			 SFS_OK);
	ck_assert_int_eq(add("d", "v2"), SFS_EKEYREVOKED);
	ck_assert_int_eq(sfs_version_can_add(ctx, &admin, "d", 0, &err),
			 SFS_EKEYREVOKED);
	ck_assert_uint_eq(get("d").latest_version, 1);
}
END_TEST

START_TEST(add_unknown_secret)
{
	ck_assert_int_eq(add("nope", "v"), SFS_ENOENT);
	ck_assert_int_eq(rd("nope", 0, NULL), SFS_ENOENT);
	ck_assert_int_eq(sfs_version_can_add(ctx, &admin, "nope", 0, &err),
			 SFS_ENOENT);
}
END_TEST

START_TEST(can_add_checks_without_change)
{
	struct sfs_caller c;
	uint64_t g;

	mk("c", "v1");
	g = sfs_ctx_generation(ctx);
	ck_assert_int_eq(sfs_version_can_add(ctx, &admin, "c", 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_can_add(ctx, &admin, "c", 2, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_can_add(ctx, &admin, "c", 5, &err),
			 SFS_EEXIST);
	memset(&c, 0, sizeof(c));
	c.uid = 1000;
	c.gid = 1000;
	c.via_fs = 1;
	ck_assert_int_eq(sfs_version_can_add(ctx, &c, "c", 0, &err),
			 SFS_EACCES);
	c.roles = SFS_ROLE_MANAGER;
	ck_assert_int_eq(sfs_version_can_add(ctx, &c, "c", 0, &err), SFS_OK);
	ck_assert_uint_eq(sfs_ctx_generation(ctx), g);
	ck_assert_uint_eq(get("c").latest_version, 1);
}
END_TEST

/* ---- read --------------------------------------------------------------- */

START_TEST(read_missing_versions)
{
	mk("r", "v1");
	ck_assert_int_eq(rd("r", 2, NULL), SFS_ENOENT);
	ck_assert_int_eq(rd("r", 99, NULL), SFS_ENOENT);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "r", 1, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "r", 1, &err), 0);
	ck_assert_int_eq(rd("r", 1, NULL), SFS_EKEYREVOKED); /* secret off */
}
END_TEST

START_TEST(read_info_without_blobs)
{
	struct sfs_value v;
	struct sfs_version_rec info;

	mk("i", "hello");
	ck_assert_int_eq(sfs_version_read(ctx, &admin, "i", 0, &v, &info,
					  &err),
			 SFS_OK);
	ck_assert_uint_eq(info.version, 1);
	ck_assert_uint_eq(info.size, 5);
	ck_assert_ptr_null(info.ciphertext.data);
	ck_assert_ptr_null(info.wrapped_dek.data);
	ck_assert_str_eq(info.secret_id, get("i").id);
	sfs_value_release(&v);
}
END_TEST

START_TEST(read_deactivated_version_refused)
{
	mk("rv", "v1");
	ck_assert_int_eq(add("rv", "v2"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "rv", 1, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(rd("rv", 1, NULL), SFS_EKEYREVOKED);
	ck_assert_int_eq(rd("rv", 2, "v2"), SFS_OK);
}
END_TEST

START_TEST(read_deactivated_secret_refused)
{
	mk("rs", "v1");
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "rs", 0, &err),
			 SFS_OK);
	ck_assert_int_eq(rd("rs", 1, NULL), SFS_EKEYREVOKED);
	ck_assert_int_eq(rd("rs", 0, NULL), SFS_EKEYREVOKED);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "rs", 1, &err),
			 SFS_OK);
	ck_assert_int_eq(rd("rs", 0, "v1"), SFS_OK);
}
END_TEST

/* ---- default and states ------------------------------------------------ */

START_TEST(default_falls_back_to_newest_active)
{
	mk("fb", "v1");
	ck_assert_int_eq(add("fb", "v2"), SFS_OK);
	ck_assert_int_eq(add("fb", "v3"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "fb", 3, 0, &err),
			 SFS_OK);
	ck_assert_uint_eq(get("fb").default_version, 2);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "fb", 2, 0, &err),
			 SFS_OK);
	ck_assert_uint_eq(get("fb").default_version, 1);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "fb", 2, &err),
			 SFS_OK);
	ck_assert_uint_eq(get("fb").default_version, 1);
	ck_assert_int_eq(get("fb").status, SFS_STATE_ACTIVE);
	ck_assert_int_eq(rd("fb", 0, "v1"), SFS_OK);
}
END_TEST

START_TEST(non_default_leaving_keeps_default)
{
	mk("nd", "v1");
	ck_assert_int_eq(add("nd", "v2"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "nd", 1, 0, &err),
			 SFS_OK);
	ck_assert_uint_eq(get("nd").default_version, 2);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "nd", 1, &err),
			 SFS_OK);
	ck_assert_uint_eq(get("nd").default_version, 2);
}
END_TEST

START_TEST(last_active_version_deactivates_secret)
{
	struct sfs_secret_rec s;

	mk("la", "v1");
	ck_assert_int_eq(add("la", "v2"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "la", 2, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(get("la").status, SFS_STATE_ACTIVE);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "la", 1, 0, &err),
			 SFS_OK);
	s = get("la");
	ck_assert_uint_eq(s.default_version, 0);
	ck_assert_int_eq(s.status, SFS_STATE_DEACTIVATED);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "la", 1, &err),
			 SFS_OK);
	s = get("la");
	ck_assert_uint_eq(s.default_version, 0);
	ck_assert_int_eq(s.status, SFS_STATE_DEACTIVATED);
	ck_assert_int_eq(rd("la", 0, NULL), SFS_EKEYREVOKED);
}
END_TEST

START_TEST(activate_version_without_default_makes_default)
{
	struct sfs_secret_rec s;

	mk("ad", "v1");
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "ad", 1, 0, &err),
			 SFS_OK);
	ck_assert_uint_eq(get("ad").default_version, 0);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "ad", 1, 1, &err),
			 SFS_OK);
	s = get("ad");
	ck_assert_uint_eq(s.default_version, 1);
	/* the secret stays deactivated until activated explicitly */
	ck_assert_int_eq(s.status, SFS_STATE_DEACTIVATED);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "ad", 1, &err),
			 SFS_OK);
	ck_assert_int_eq(rd("ad", 0, "v1"), SFS_OK);
}
END_TEST

START_TEST(activate_version_keeps_existing_default)
{
	mk("ak", "v1");
	ck_assert_int_eq(add("ak", "v2"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "ak", 1, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "ak", 1, 1, &err),
			 SFS_OK);
	ck_assert_uint_eq(get("ak").default_version, 2);
	ck_assert_int_eq(vstate("ak", 1), SFS_STATE_ACTIVE);
	ck_assert_int_eq(rd("ak", 1, "v1"), SFS_OK);
}
END_TEST

START_TEST(set_default_rules)
{
	mk("sd", "v1");
	ck_assert_int_eq(add("sd", "v2"), SFS_OK);
	ck_assert_int_eq(add("sd", "v3"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_default(ctx, &admin, "sd", 1, &err),
			 SFS_OK);
	ck_assert_int_eq(rd("sd", 0, "v1"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "sd", 2, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_set_default(ctx, &admin, "sd", 2, &err),
			 SFS_EINVAL);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "sd", 3, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "sd", 3, &err), 0);
	ck_assert_int_eq(sfs_version_set_default(ctx, &admin, "sd", 3, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_version_set_default(ctx, &admin, "sd", 9, &err),
			 SFS_ENOENT);
	ck_assert_uint_eq(get("sd").default_version, 1);
}
END_TEST

START_TEST(destroy_erases_and_hides)
{
	struct sfs_store *st = sfs_ctx_store(ctx);
	struct sfs_secret_rec s;
	struct sfs_version_rec v;

	mk("de", "v1");
	ck_assert_int_eq(add("de", "v2"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "de", 1, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "de", 1, &err),
			 SFS_OK);
	ck_assert_int_eq(vstate("de", 1), SFS_STATE_DESTROYED);
	ck_assert_int_eq(rd("de", 1, NULL), SFS_ENOENT);
	/* again: a no-op */
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "de", 1, &err),
			 SFS_OK);
	ck_assert_int_eq(vstate("de", 1), SFS_STATE_DESTROYED);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "de", 1, 1, &err),
			 SFS_ENOENT);
	s = get("de");
	ck_assert_int_eq(sfs_store_begin(st, 0, &err), SFS_OK);
	ck_assert_int_eq(sfs_store_version_get(st, s.id, 1, 1, &v, &err),
			 SFS_OK);
	sfs_store_rollback(st);
	ck_assert_uint_eq(v.ciphertext.len, 0);
	ck_assert_uint_eq(v.wrapped_dek.len, 0);
	sfs_version_rec_release(&v);
}
END_TEST

static int count_cb(void *arg, const struct sfs_version_rec *v)
{
	int *n = arg;

	*n = *n * 10 + (int)v->version;
	return 0;
}

/* SPEC §2: an active version of an active secret is in use: EBUSY, and
 * the message says what to do. Nothing changes. */
START_TEST(destroy_in_use_refused)
{
	mk("iu", "v1");
	ck_assert_int_eq(add("iu", "v2"), SFS_OK);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "iu", 1, &err),
			 SFS_EBUSY);
	ck_assert_str_eq(err.msg, "version 1 of 'iu': the version and its "
				  "secret are active: deactivate it first");
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "iu", 2, &err),
			 SFS_EBUSY);
	ck_assert_int_eq(vstate("iu", 1), SFS_STATE_ACTIVE);
	ck_assert_int_eq(vstate("iu", 2), SFS_STATE_ACTIVE);
	ck_assert_int_eq(rd("iu", 1, "v1"), SFS_OK);
	ck_assert_int_eq(rd("iu", 0, "v2"), SFS_OK);
}
END_TEST

/* A deactivated secret's versions, active ones included, can all be
 * destroyed, and then the secret deleted. */
START_TEST(destroy_all_of_deactivated_secret)
{
	mk("ds", "v1");
	ck_assert_int_eq(add("ds", "v2"), SFS_OK);
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "ds", 0, &err),
			 SFS_OK);
	ck_assert_int_eq(vstate("ds", 2), SFS_STATE_ACTIVE);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "ds", 2, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "ds", 1, &err),
			 SFS_OK);
	ck_assert_int_eq(vstate("ds", 1), SFS_STATE_DESTROYED);
	ck_assert_int_eq(vstate("ds", 2), SFS_STATE_DESTROYED);
	ck_assert_int_eq(sfs_secret_delete(ctx, &admin, "ds", &err), SFS_OK);
}
END_TEST

START_TEST(list_skips_destroyed_unless_all)
{
	int n = 0;

	mk("ls", "v1");
	ck_assert_int_eq(add("ls", "v2"), SFS_OK);
	ck_assert_int_eq(add("ls", "v3"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "ls", 2, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "ls", 2, &err), 0);
	ck_assert_int_eq(sfs_version_list(ctx, &admin, "ls", 0, count_cb, &n,
					  &err),
			 SFS_OK);
	ck_assert_int_eq(n, 13);
	n = 0;
	ck_assert_int_eq(sfs_version_list(ctx, &admin, "ls", 1, count_cb, &n,
					  &err),
			 SFS_OK);
	ck_assert_int_eq(n, 123);
}
END_TEST

START_TEST(version_ops_on_missing_version)
{
	mk("mv", "v1");
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "mv", 7, 0, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "mv", 0, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(sfs_version_copy(ctx, &admin, "mv", 4, NULL, &err),
			 SFS_ENOENT);
	ck_assert_uint_eq(get("mv").latest_version, 1);
}
END_TEST

/* ---- copy --------------------------------------------------------------- */

START_TEST(copy_makes_new_default)
{
	struct sfs_version_rec v;

	mk("cp", "old");
	ck_assert_int_eq(add("cp", "new"), SFS_OK);
	ck_assert_int_eq(sfs_version_copy(ctx, &admin, "cp", 1, &v, &err),
			 SFS_OK);
	ck_assert_uint_eq(v.version, 3);
	ck_assert_uint_eq(v.size, 3);
	ck_assert_uint_eq(get("cp").default_version, 3);
	ck_assert_int_eq(rd("cp", 0, "old"), SFS_OK);
	ck_assert_int_eq(rd("cp", 2, "new"), SFS_OK);
}
END_TEST

START_TEST(copy_of_inactive_version_refused)
{
	mk("ci", "v1");
	ck_assert_int_eq(add("ci", "v2"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "ci", 1, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_copy(ctx, &admin, "ci", 1, NULL, &err),
			 SFS_EKEYREVOKED);
	ck_assert_uint_eq(get("ci").latest_version, 2);
}
END_TEST

/* ---- access through the filesystem -------------------------------------- */

START_TEST(fs_changes_need_manager)
{
	struct sfs_caller c = tu_fs_caller(1000, 1000, 0);

	mk("m", "v1");
	ck_assert_int_eq(sfs_version_add(ctx, &c, "m", "x", 1, 0, NULL, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_version_set_default(ctx, &c, "m", 1, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_version_set_state(ctx, &c, "m", 1, 0, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_version_destroy(ctx, &c, "m", 1, &err),
			 SFS_EACCES);
	ck_assert_int_eq(vstate("m", 1), SFS_STATE_ACTIVE);
	c.roles = SFS_ROLE_MANAGER;
	ck_assert_int_eq(sfs_version_add(ctx, &c, "m", "x", 1, 0, NULL, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(ctx, &c, "m", 1, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_destroy(ctx, &c, "m", 1, &err), SFS_OK);
}
END_TEST

START_TEST(fs_read_follows_mode_bits)
{
	struct sfs_caller owner = tu_fs_caller(1000, 1000, 0);
	struct sfs_caller grp = tu_fs_caller(1001, 1000, 0);
	struct sfs_caller other = tu_fs_caller(1002, 1002, 0);
	struct sfs_caller root = tu_fs_caller(0, 0, 0);
	struct sfs_secret_new n;

	memset(&n, 0, sizeof(n));
	n.name = "mb";
	n.value = "v";
	n.value_len = 1;
	n.has_owner = n.has_group = 1;
	n.owner = 1000;
	n.group = 1000;
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err), 0);
	ck_assert_int_eq(rd_as(&owner, "mb", 0, "v"), SFS_OK);
	ck_assert_int_eq(rd_as(&grp, "mb", 0, "v"), SFS_OK);
	ck_assert_int_eq(rd_as(&other, "mb", 0, NULL), SFS_EACCES);
	ck_assert_int_eq(rd_as(&root, "mb", 0, "v"), SFS_OK);
}
END_TEST

START_TEST(fs_read_with_access_control)
{
	struct sfs_caller owner = tu_fs_caller(1000, 1000, 0);
	struct sfs_caller listed = tu_fs_caller(1005, 1005, 0);
	struct sfs_caller grp = tu_fs_caller(1001, 1000, 0);
	struct sfs_caller root = tu_fs_caller(0, 0, 0);
	struct sfs_secret_update u;
	struct sfs_secret_new n;
	struct sfs_version_rec v;

	memset(&n, 0, sizeof(n));
	n.name = "ac";
	n.value = "v";
	n.value_len = 1;
	n.access_control = 1;
	n.has_owner = n.has_group = 1;
	n.owner = 1000;
	n.group = 1000;
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err), 0);
	memset(&u, 0, sizeof(u));
	u.fields = SFS_SF_ALLOWED;
	u.allowed = "uid:1005";
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "ac", &u, &err), 0);
	ck_assert_int_eq(rd_as(&owner, "ac", 0, "v"), SFS_OK);
	ck_assert_int_eq(rd_as(&listed, "ac", 0, "v"), SFS_OK);
	ck_assert_int_eq(rd_as(&grp, "ac", 0, NULL), SFS_EACCES);
	ck_assert_int_eq(rd_as(&root, "ac", 0, NULL), SFS_EACCES);
	ck_assert_int_eq(sfs_version_info(ctx, &grp, "ac", 1, &v, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_version_list(ctx, &root, "ac", 0, count_cb,
					  &(int){ 0 }, &err),
			 SFS_EACCES);
	ck_assert_int_eq(sfs_version_info(ctx, &listed, "ac", 1, &v, &err),
			 SFS_OK);
	/* refused before its state is told */
	ck_assert_int_eq(sfs_secret_set_status(ctx, &admin, "ac", 0, &err), 0);
	ck_assert_int_eq(rd_as(&grp, "ac", 0, NULL), SFS_EACCES);
	ck_assert_int_eq(rd_as(&listed, "ac", 0, NULL), SFS_EKEYREVOKED);
}
END_TEST

START_TEST(fs_add_under_user_key_needs_kms_user)
{
	struct sfs_caller c = tu_fs_caller(1000, 1000, SFS_ROLE_MANAGER);
	struct sfs_secret_new n;

	ck_assert_int_eq(sfs_key_create(ctx, &admin, "uk", NULL, NULL, &err),
			 0);
	memset(&n, 0, sizeof(n));
	n.name = "uk-secret";
	n.key = "uk";
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &n, NULL, &err), 0);
	ck_assert_int_eq(sfs_version_add(ctx, &c, "uk-secret", "x", 1, 0,
					 NULL, &err),
			 SFS_EACCES);
	c.roles |= SFS_ROLE_KMS_USER;
	ck_assert_int_eq(sfs_version_add(ctx, &c, "uk-secret", "x", 1, 0,
					 NULL, &err),
			 SFS_OK);
}
END_TEST

START_TEST(readonly_context_refuses_changes)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *ro;

	mk("ro", "v1");
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	o.readonly = 1;
	ck_assert_int_eq(sfs_ctx_open(&ro, &o, &err), SFS_OK);
	ck_assert_int_eq(sfs_version_add(ro, &admin, "ro", "x", 1, 0, NULL,
					 &err),
			 SFS_EROFS);
	ck_assert_int_eq(sfs_version_can_add(ro, &admin, "ro", 0, &err),
			 SFS_EROFS);
	ck_assert_int_eq(sfs_version_destroy(ro, &admin, "ro", 1, &err),
			 SFS_EROFS);
	ck_assert_int_eq(sfs_version_copy(ro, &admin, "ro", 1, NULL, &err),
			 SFS_EROFS);
	{
		struct sfs_value v;

		ck_assert_int_eq(sfs_version_read(ro, &admin, "ro", 0, &v,
						  NULL, &err),
				 SFS_OK);
		sfs_value_release(&v);
	}
	sfs_ctx_close(ro);
	ck_assert_uint_eq(get("ro").latest_version, 1);
}
END_TEST

/* ---- tampering --------------------------------------------------------- */

/*
 * A store that forwards to the real one but alters what version_get and
 * keyver_get hand back: the core must authenticate whatever it is given.
 * It shares the real store's backend, so every other operation is the
 * real one.
 */
enum { T_NONE, T_CT, T_DEK, T_SWAP, T_SIZE, T_KMS };
static struct sfs_store *t_inner;
static const struct sfs_store_ops *t_real; /* the inner store's table */
static struct sfs_store_ops t_ops;
static int t_mode;

static int t_version_get(struct sfs_store *s, const char *sid, uint32_t n,
			 int with_blobs, struct sfs_version_rec *out,
			 struct sfs_error *e)
{
	struct sfs_version_rec other;
	int rc;

	(void)s;
	rc = t_real->version_get(t_inner, sid, n, with_blobs, out, e);
	if (rc != SFS_OK || !with_blobs)
		return rc;
	if (t_mode == T_CT)
		out->ciphertext.data[out->ciphertext.len - 20] ^= 0x01;
	if (t_mode == T_DEK)
		out->wrapped_dek.data[30] ^= 0x80;
	if (t_mode == T_SIZE)
		out->size++;
	if (t_mode == T_SWAP && n == 1) {
		rc = t_real->version_get(t_inner, sid, 2, 1, &other, e);
		ck_assert_int_eq(rc, SFS_OK);
		sfs_blob_release(&out->ciphertext);
		sfs_blob_release(&out->wrapped_dek);
		out->ciphertext = other.ciphertext;
		out->wrapped_dek = other.wrapped_dek;
	}
	return rc;
}

static int t_keyver_get(struct sfs_store *s, const char *key_id, uint32_t v,
			struct sfs_blob *out, struct sfs_error *e)
{
	int rc;

	(void)s;
	rc = t_real->keyver_get(t_inner, key_id, v, out, e);
	if (rc == SFS_OK && t_mode == T_KMS)
		out->data[out->len - 1] ^= 0x01;
	return rc;
}

static void t_close(struct sfs_store *s)
{
	sfs_store_close(t_inner);
	free(s);
}

static void tamper(int mode)
{
	struct sfs_store *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	t_inner = sfs_ctx_store(ctx);
	t_real = t_inner->ops;
	t_ops = *t_real;
	t_ops.version_get = t_version_get;
	t_ops.keyver_get = t_keyver_get;
	t_ops.close = t_close;
	w->ops = &t_ops;
	w->backend = t_inner->backend;
	t_mode = mode;
	ck_assert_ptr_eq(sfs_ctx_swap_store(ctx, w), t_inner);
}

START_TEST(tampered_ciphertext_is_ebadmsg)
{
	mk("t", "secret-value");
	tamper(T_CT);
	ck_assert_int_eq(rd("t", 1, NULL), SFS_EBADMSG);
	ck_assert_int_eq(sfs_version_copy(ctx, &admin, "t", 1, NULL, &err),
			 SFS_EBADMSG);
	t_mode = T_NONE;
	ck_assert_int_eq(rd("t", 1, "secret-value"), SFS_OK);
	ck_assert_uint_eq(get("t").latest_version, 1);
}
END_TEST

START_TEST(tampered_wrapped_key_is_ebadmsg)
{
	mk("t", "secret-value");
	tamper(T_DEK);
	ck_assert_int_eq(rd("t", 0, NULL), SFS_EBADMSG);
	ck_assert_str_eq(err.msg, "version 1 of 't': stored data failed "
				  "authentication (tampered or corrupt)");
}
END_TEST

START_TEST(swapped_blobs_are_ebadmsg)
{
	mk("t", "first");
	ck_assert_int_eq(add("t", "second"), SFS_OK);
	tamper(T_SWAP);
	ck_assert_int_eq(rd("t", 1, NULL), SFS_EBADMSG);
	ck_assert_int_eq(rd("t", 2, "second"), SFS_OK);
}
END_TEST

START_TEST(size_mismatch_is_ebadmsg)
{
	mk("t", "value");
	tamper(T_SIZE);
	ck_assert_int_eq(rd("t", 1, NULL), SFS_EBADMSG);
}
END_TEST

/* a hit KMS key blob makes the key unusable: ENOKEY (issue 5) */
START_TEST(tampered_kms_material_is_enokey)
{
	mk("t", "value");
	ck_assert_int_eq(add("t", "value2"), SFS_OK); /* new generation */
	tamper(T_KMS);
	ck_assert_int_eq(rd("t", 1, NULL), SFS_ENOKEY);
	ck_assert_int_eq(add("t", "value3"), SFS_ENOKEY);
	ck_assert_uint_eq(get("t").latest_version, 2);
}
END_TEST

/* Blobs moved to another version number, in the real store. */
START_TEST(moved_blobs_are_ebadmsg)
{
	struct sfs_store *st = sfs_ctx_store(ctx);
	struct sfs_secret_rec s;
	struct sfs_version_rec v;

	mk("mo", "moved");
	s = get("mo");
	ck_assert_int_eq(sfs_store_begin(st, 1, &err), SFS_OK);
	ck_assert_int_eq(sfs_store_version_get(st, s.id, 1, 1, &v, &err), 0);
	v.version = 2;
	ck_assert_int_eq(sfs_store_version_insert(st, &v, &err), SFS_OK);
	s.latest_version = s.default_version = 2;
	ck_assert_int_eq(sfs_store_secret_update(st, &s, &err), SFS_OK);
	ck_assert_int_eq(sfs_store_commit(st, &err), SFS_OK);
	sfs_version_rec_release(&v);
	ck_assert_int_eq(rd("mo", 2, NULL), SFS_EBADMSG);
	ck_assert_int_eq(rd("mo", 1, "moved"), SFS_OK);
}
END_TEST

/* ---- the read cache: any change is seen at the next read ---------------- */

/* Another program (the sqlite3 tool or psql, an attacker) edits the
 * database behind the context's back. */
static void foreign_sql(const char *sql)
{
	char path[600];
	sqlite3 *db = NULL;

	if (tu_store_conninfo()) {
		ck_assert_int_eq(pgc_sql(tu_store_conninfo(), sql, NULL), 0);
		return;
	}
	snprintf(path, sizeof(path), "%s/secretfs.db", store);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

START_TEST(foreign_blob_edit_is_ebadmsg_at_next_read)
{
	mk("t", "first");
	ck_assert_int_eq(add("t", "second"), SFS_OK);
	ck_assert_int_eq(rd("t", 1, "first"), SFS_OK);
	ck_assert_int_eq(rd("t", 1, "first"), SFS_OK); /* now cached */
	foreign_sql("UPDATE versions SET ciphertext = (SELECT ciphertext "
		    "FROM versions WHERE version = 2) WHERE version = 1;");
	ck_assert_int_eq(rd("t", 1, NULL), SFS_EBADMSG);
	ck_assert_int_eq(rd("t", 2, "second"), SFS_OK);
}
END_TEST

START_TEST(foreign_state_change_is_seen_at_next_read)
{
	struct sfs_version_rec v;

	mk("t", "value");
	ck_assert_int_eq(rd("t", 0, "value"), SFS_OK);
	ck_assert_int_eq(vstate("t", 1), SFS_STATE_ACTIVE);
	foreign_sql("UPDATE versions SET state = 1;");
	ck_assert_int_eq(rd("t", 1, NULL), SFS_EKEYREVOKED);
	ck_assert_int_eq(sfs_version_info(ctx, &admin, "t", 1, &v, &err),
			 SFS_OK);
	ck_assert_int_eq(v.state, SFS_STATE_DEACTIVATED);
	foreign_sql("UPDATE versions SET state = 0;"
		    "UPDATE secrets SET status = 1;");
	ck_assert_int_eq(rd("t", 1, NULL), SFS_EKEYREVOKED);
	ck_assert_int_eq(get("t").status, SFS_STATE_DEACTIVATED);
}
END_TEST

/* A change through another context (the CLI beside the daemon). */
START_TEST(other_context_change_is_seen_at_next_read)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *cli;

	mk("t", "old");
	ck_assert_int_eq(rd("t", 0, "old"), SFS_OK);
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	ck_assert_int_eq(sfs_ctx_open(&cli, &o, &err), SFS_OK);
	ck_assert_int_eq(sfs_version_add(cli, &admin, "t", "new", 3, 0, NULL,
					 &err), SFS_OK);
	ck_assert_int_eq(rd("t", 0, "new"), SFS_OK);
	ck_assert_int_eq(sfs_version_set_state(cli, &admin, "t", 2, 0, &err),
			 SFS_OK);
	ck_assert_int_eq(rd("t", 2, NULL), SFS_EKEYREVOKED);
	ck_assert_int_eq(rd("t", 0, "old"), SFS_OK);
	sfs_ctx_close(cli);
}
END_TEST

/* Records come from the cache; the decision is the policy's each time. */
START_TEST(cached_records_still_ask_the_policy)
{
	struct sfs_caller owner = tu_fs_caller(1001, 1001, 0);
	struct sfs_caller other = tu_fs_caller(1002, 1002, 0);
	struct sfs_secret_update u;

	mk("t", "value");
	memset(&u, 0, sizeof(u));
	u.fields = SFS_SF_OWNER | SFS_SF_GROUP;
	u.owner = u.group = 1001;
	ck_assert_int_eq(sfs_secret_update(ctx, &admin, "t", &u, &err),
			 SFS_OK);
	ck_assert_int_eq(rd_as(&owner, "t", 0, "value"), SFS_OK);
	ck_assert_int_eq(rd_as(&owner, "t", 0, "value"), SFS_OK);
	ck_assert_int_eq(rd_as(&other, "t", 0, NULL), SFS_EACCES);
	ck_assert_int_eq(rd_as(&owner, "t", 0, "value"), SFS_OK);
}
END_TEST

/* ---- plaintext never stored or logged ----------------------------------- */

static int file_has(const char *path, const char *needle)
{
	size_t len = 0;
	char *data = tu_read_file(path, &len);
	int found;

	if (!data)
		return 0;
	found = memmem(data, len, needle, strlen(needle)) != NULL;
	free(data);
	return found;
}

START_TEST(no_plaintext_in_store_or_audit)
{
	static const char *files[] = { "secretfs.db", "secretfs.db-wal",
				       "audit.log", "generation" };
	char path[600];
	size_t i;

	mk("pt", "PLAINTEXT-MARKER-0123456789");
	ck_assert_int_eq(add("pt", "SECOND-MARKER-abcdef"), SFS_OK);
	ck_assert_int_eq(rd("pt", 1, "PLAINTEXT-MARKER-0123456789"), SFS_OK);
	ck_assert_int_eq(sfs_version_copy(ctx, &admin, "pt", 1, NULL, &err),
			 SFS_OK);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", store, files[i]);
		ck_assert(!file_has(path, "PLAINTEXT-MARKER"));
		ck_assert(!file_has(path, "SECOND-MARKER"));
	}
	snprintf(path, sizeof(path), "%s/audit.log", store);
	ck_assert(file_has(path, "\"pt\""));
}
END_TEST

/* ---- audit -------------------------------------------------------------- */

/* The audit lines as parsed objects; returns their count. */
static int audit_lines(struct sfs_json **out, int cap)
{
	char path[600];
	char *data, *line, *save = NULL;
	int n = 0;

	snprintf(path, sizeof(path), "%s/audit.log", store);
	data = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(data);
	for (line = strtok_r(data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		ck_assert_int_lt(n, cap);
		out[n] = sfs_json_parse(line, strlen(line));
		ck_assert_ptr_nonnull(out[n]);
		n++;
	}
	free(data);
	return n;
}

static void audit_free(struct sfs_json **j, int n)
{
	while (n-- > 0)
		sfs_json_free(j[n]);
}

START_TEST(audit_one_line_per_change_and_read)
{
	struct sfs_caller c = tu_fs_caller(1002, 1002, 0);
	struct sfs_json *j[16];
	int n;

	mk("au", "v1");                                   /* 1 */
	ck_assert_int_eq(add("au", "v2"), SFS_OK);          /* 2 */
	ck_assert_int_eq(rd("au", 1, "v1"), SFS_OK);        /* 3 */
	ck_assert_int_eq(rd_as(&c, "au", 2, NULL), SFS_EACCES); /* 4 */
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "au", "x", 1, 9, NULL,
					 &err),
			 SFS_EEXIST);                       /* 5 */
	ck_assert_int_eq(sfs_version_destroy(ctx, &admin, "au", 1, &err),
			 SFS_EBUSY);                        /* 6 */
	ck_assert_int_eq(rd("au", 9, NULL), SFS_ENOENT);    /* 7 */
	ck_assert_int_eq(sfs_version_can_add(ctx, &admin, "au", 0, &err), 0);
	n = audit_lines(j, 16);
	ck_assert_int_eq(n, 7);
	ck_assert_str_eq(sfs_json_get_str(j[0], "op"), "secret.create");
	ck_assert_str_eq(sfs_json_get_str(j[1], "op"), "version.add");
	ck_assert_int_eq(sfs_json_get_int(j[1], "version", -1), 2);
	ck_assert_str_eq(sfs_json_get_str(j[2], "op"), "version.read");
	ck_assert_str_eq(sfs_json_get_str(j[2], "result"), "ok");
	ck_assert_str_eq(sfs_json_get_str(j[2], "secret"), "au");
	ck_assert_str_eq(sfs_json_get_str(j[2], "secret_id"), get("au").id);
	ck_assert_str_eq(sfs_json_get_str(j[3], "op"), "version.read");
	ck_assert_str_eq(sfs_json_get_str(j[3], "result"), "EACCES");
	ck_assert_int_eq(sfs_json_get_int(j[3], "uid", -1), 1002);
	ck_assert_str_eq(sfs_json_get_str(j[4], "result"), "EEXIST");
	ck_assert_str_eq(sfs_json_get_str(j[5], "op"), "version.destroy");
	ck_assert_str_eq(sfs_json_get_str(j[5], "result"), "EBUSY");
	ck_assert_str_eq(sfs_json_get_str(j[6], "result"), "ENOENT");
	audit_free(j, n);
}
END_TEST

START_TEST(audit_failure_fails_the_read)
{
	struct rlimit old, lim;
	struct sfs_value v = { NULL, 0 };
	char path[600];
	size_t len = 0;
	char *data;
	int rc = -1;

	mk("af", "value");
	snprintf(path, sizeof(path), "%s/audit.log", store);
	data = tu_read_file(path, &len);
	free(data);
	/* Nothing more may be appended: every write to the log fails. No
	 * check runs inside the window (Check writes files of its own). */
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = len;
	if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
		v.data = NULL;
		rc = sfs_version_read(ctx, &admin, "af", 0, &v, NULL, &err);
		setrlimit(RLIMIT_FSIZE, &old);
	}
	ck_assert_int_eq(rc, SFS_EIO);
	ck_assert_ptr_null(v.data);
	ck_assert_int_eq(err.code, SFS_EIO);
	ck_assert_str_eq(err.msg,
			 "cannot write the audit log: read refused");
	ck_assert_int_eq(rd("af", 0, "value"), SFS_OK);
}
END_TEST

/* ---- store failures ----------------------------------------------------- */

static struct sfs_store *fault(void)
{
	struct sfs_store *f = fault_store_wrap(sfs_ctx_store(ctx));

	ck_assert_ptr_nonnull(sfs_ctx_swap_store(ctx, f));
	return f;
}

START_TEST(add_store_failures_change_nothing)
{
	struct sfs_store *f;
	uint64_t g;

	mk("sf", "v1");
	f = fault();
	g = sfs_ctx_generation(ctx);
	fault_store_fail_op(f, "commit", SFS_ENOSPC);
	ck_assert_int_eq(add("sf", "v2"), SFS_ENOSPC);
	fault_store_reset(f);
	fault_store_fail_op(f, "version_insert", SFS_EIO);
	ck_assert_int_eq(add("sf", "v2"), SFS_EIO);
	fault_store_reset(f);
	fault_store_fail_op(f, "secret_update", SFS_EIO);
	ck_assert_int_eq(sfs_version_set_state(ctx, &admin, "sf", 1, 0, &err),
			 SFS_EIO);
	ck_assert_int_eq(sfs_version_copy(ctx, &admin, "sf", 1, NULL, &err),
			 SFS_EIO);
	fault_store_reset(f);
	ck_assert_uint_eq(sfs_ctx_generation(ctx), g);
	ck_assert_uint_eq(get("sf").latest_version, 1);
	ck_assert_int_eq(vstate("sf", 1), SFS_STATE_ACTIVE);
	ck_assert_int_eq(rd("sf", 0, "v1"), SFS_OK);
	/* the version number was not used up */
	ck_assert_int_eq(add("sf", "v2"), SFS_OK);
	ck_assert_uint_eq(get("sf").latest_version, 2);
}
END_TEST

START_TEST(read_store_failure_is_eio_and_audited)
{
	struct sfs_store *f;
	char path[600];
	char *log;

	mk("rf", "v1");
	f = fault();
	fault_store_fail_op(f, "version_get", SFS_EIO);
	ck_assert_int_eq(rd("rf", 0, NULL), SFS_EIO);
	ck_assert_int_eq(err.code, SFS_EIO);
	ck_assert_str_eq(err.msg,
			 "fault store: injected failure in version_get");
	fault_store_reset(f);
	ck_assert_int_eq(add("rf", "v2"), SFS_OK); /* drops cached material */
	fault_store_fail_op(f, "keyver_get", SFS_EIO);
	ck_assert_int_eq(rd("rf", 1, NULL), SFS_EIO);
	fault_store_reset(f);
	ck_assert_int_eq(rd("rf", 1, "v1"), SFS_OK);
	snprintf(path, sizeof(path), "%s/audit.log", store);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(strstr(log, "\"result\":\"EIO\""));
	free(log);
}
END_TEST

/* ---- shared plaintext of read handles ---------------------------------- */

static void assert_ref(const struct sfs_value_ref *r, const char *want)
{
	const struct sfs_value *v = sfs_value_of(r);

	ck_assert_uint_eq(v->len, strlen(want));
	ck_assert(memcmp(v->data, want, v->len) == 0);
}

START_TEST(open_shares_one_buffer_per_version)
{
	struct sfs_value_ref *r1, *r2, *r3;

	mk("a", "one");
	ck_assert_int_eq(sfs_version_open(ctx, &admin, "a", 0, &r1, &err),
			 SFS_OK);
	ck_assert_int_eq(sfs_version_open(ctx, &admin, "a", 1, &r2, &err),
			 SFS_OK);
	ck_assert_ptr_eq(r1, r2); /* decrypted once */
	assert_ref(r1, "one");
	ck_assert_int_eq(add("a", "two"), SFS_OK);
	ck_assert_int_eq(sfs_version_open(ctx, &admin, "a", 0, &r3, &err),
			 SFS_OK);
	ck_assert_ptr_ne(r3, r1);
	assert_ref(r3, "two");
	sfs_value_unref(r1);
	assert_ref(r2, "one"); /* the other handle's snapshot stays */
	sfs_value_unref(r2);
	sfs_value_unref(r3);
}
END_TEST

static Suite *versions_suite(void)
{
	const TTest *const cases[] = {
	    add_becomes_default,
	    add_records_format_and_creator,
	    add_value_length_limits,
	    add_binary_value_round_trips,
	    add_compare_and_set,
	    add_to_deactivated_secret_refused,
	    add_unknown_secret,
	    can_add_checks_without_change,
	    read_missing_versions,
	    read_info_without_blobs,
	    read_deactivated_version_refused,
	    read_deactivated_secret_refused,
	    default_falls_back_to_newest_active,
	    non_default_leaving_keeps_default,
	    last_active_version_deactivates_secret,
	    activate_version_without_default_makes_default,
	    activate_version_keeps_existing_default,
	    set_default_rules,
	    destroy_erases_and_hides,
	    destroy_in_use_refused,
	    destroy_all_of_deactivated_secret,
	    list_skips_destroyed_unless_all,
	    version_ops_on_missing_version,
	    copy_makes_new_default,
	    copy_of_inactive_version_refused,
	    fs_changes_need_manager,
	    fs_read_follows_mode_bits,
	    fs_read_with_access_control,
	    fs_add_under_user_key_needs_kms_user,
	    readonly_context_refuses_changes,
	    tampered_ciphertext_is_ebadmsg,
	    tampered_wrapped_key_is_ebadmsg,
	    swapped_blobs_are_ebadmsg,
	    size_mismatch_is_ebadmsg,
	    tampered_kms_material_is_enokey,
	    moved_blobs_are_ebadmsg,
	    foreign_blob_edit_is_ebadmsg_at_next_read,
	    foreign_state_change_is_seen_at_next_read,
	    other_context_change_is_seen_at_next_read,
	    cached_records_still_ask_the_policy,
	    no_plaintext_in_store_or_audit,
	    audit_one_line_per_change_and_read,
	    audit_failure_fails_the_read,
	    add_store_failures_change_nothing,
	    read_store_failure_is_eio_and_audited,
	    open_shares_one_buffer_per_version,
	};

	return harness_suite("versions", cases,
			     sizeof(cases) / sizeof(cases[0]), setup, teardown,
			     0);
}

const struct harness harness = {.suite = versions_suite};
