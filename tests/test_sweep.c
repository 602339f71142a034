/*
 * Store-failure sweep (issue 11): for every service call that changes the
 * store, and for every n, the nth store call fails. The caller gets the
 * error, and the store, read back through the core (tests/lib/svcdump.h),
 * is then exactly as before the call or exactly as after a successful
 * one, never in between; a retry without faults then succeeds.
 *
 * Each test case is one call on a seeded store (keys, secrets in several
 * states, a role). A reference run on a copy of the seed counts the call's
 * store calls N (tests/lib/fault_store.h) and records the state after it;
 * then for n = 1..N, twice (the nth call and every later one fail with
 * SFS_EIO; only the nth fails, with SFS_ENOSPC), a fresh copy of the seed
 * runs the call under the fault store and is compared with both states.
 * The services' view leaves out ids and times, which differ between
 * runs; when it shows the state before, the store's own records (ids,
 * times, blobs) must equal the seed's too.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fault_store.h"
#include "lib/harness.h"
#include "lib/svcdump.h"
#include "lib/testutil.h"
#include "secretfs/ctx.h"
#include "secretfs/keys.h"
#include "secretfs/role.h"
#include "secretfs/secret.h"
#include "secretfs/version.h"

static char *tmp;
static char seed[512];
static struct sfs_caller admin;

#define OK(call) ck_assert_int_eq((call), SFS_OK)

static int add(struct sfs_ctx *ctx, const char *name, const char *value,
	       struct sfs_error *e)
{
	return sfs_version_add(ctx, &admin, name, value, strlen(value), 0, NULL,
			       e);
}

static int create(struct sfs_ctx *ctx, const char *name, const char *key,
		  const char *value, struct sfs_error *e)
{
	return tu_secret_create(ctx, &admin, name, key, value, e);
}

/*
 * The seed: keys k1 (used by s), k2 (unused) and kd (deactivated);
 * secret s with versions 1 (deactivated), 2 and 3 (the default); secret t
 * deactivated with an active version; secret gone deactivated with its
 * only version destroyed; kms-user granted to gid:50.
 */
static void seed_store(struct sfs_ctx *ctx)
{
	struct sfs_error e;

	OK(sfs_key_create(ctx, &admin, "k1", "first", NULL, &e));
	OK(sfs_key_create(ctx, &admin, "k2", "second", NULL, &e));
	OK(sfs_key_create(ctx, &admin, "kd", "off", NULL, &e));
	OK(sfs_key_set_state(ctx, &admin, "kd", 0, &e));
	OK(create(ctx, "s", "k1", "one", &e));
	OK(add(ctx, "s", "two", &e));
	OK(add(ctx, "s", "three", &e));
	OK(sfs_version_set_state(ctx, &admin, "s", 1, 0, &e));
	OK(create(ctx, "t", NULL, "tee", &e));
	OK(sfs_secret_set_status(ctx, &admin, "t", 0, &e));
	OK(create(ctx, "gone", NULL, "bye", &e));
	OK(sfs_version_set_state(ctx, &admin, "gone", 1, 0, &e));
	OK(sfs_version_destroy(ctx, &admin, "gone", 1, &e));
	OK(sfs_role_grant(ctx, &admin, "kms-user", "gid:50", &e));
}

static void setup(void)
{
	struct sfs_ctx *ctx = tu_store_open("sweep", &tmp, seed, sizeof(seed));

	sfs_caller_self(&admin);
	seed_store(ctx);
	sfs_ctx_close(ctx);
}

static void teardown(void)
{
	tu_rmrf(tmp);
	free(tmp);
}

/* ---- the calls ---------------------------------------------------------- */

static int secret_create(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return create(ctx, "new", "k1", "fresh", e);
}

static int secret_update(struct sfs_ctx *ctx, struct sfs_error *e)
{
	struct sfs_secret_update u;

	memset(&u, 0, sizeof(u));
	u.fields = SFS_SF_DESCRIPTION | SFS_SF_ALLOWED | SFS_SF_MODE;
	u.description = "changed";
	u.allowed = "uid:1234,gid:50";
	u.mode = 0400;
	return sfs_secret_update(ctx, &admin, "s", &u, e);
}

static int secret_change_key(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_secret_change_key(ctx, &admin, "s", "k2", e);
}

static int secret_activate(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_secret_set_status(ctx, &admin, "t", 1, e);
}

static int secret_deactivate(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_secret_set_status(ctx, &admin, "s", 0, e);
}

static int secret_delete(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_secret_delete(ctx, &admin, "gone", e);
}

static int version_add(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return add(ctx, "s", "four", e);
}

static int version_set_default(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_version_set_default(ctx, &admin, "s", 2, e);
}

static int version_activate(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_version_set_state(ctx, &admin, "s", 1, 1, e);
}

/* The default: the default moves to version 2. */
static int version_deactivate(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_version_set_state(ctx, &admin, "s", 3, 0, e);
}

static int version_destroy(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_version_destroy(ctx, &admin, "s", 1, e);
}

static int version_copy(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_version_copy(ctx, &admin, "s", 2, NULL, e);
}

static int key_create(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_key_create(ctx, &admin, "k3", "third", NULL, e);
}

static int key_activate(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_key_set_state(ctx, &admin, "kd", 1, e);
}

static int key_deactivate(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_key_set_state(ctx, &admin, "k1", 0, e);
}

static int key_rotate(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_key_rotate(ctx, &admin, "k1", NULL, e);
}

static int key_delete(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_key_delete(ctx, &admin, "k2", e);
}

static int role_grant(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_role_grant(ctx, &admin, "manager", "uid:1234", e);
}

static int role_revoke(struct sfs_ctx *ctx, struct sfs_error *e)
{
	return sfs_role_revoke(ctx, &admin, "kms-user", "gid:50", e);
}

typedef int call_fn(struct sfs_ctx *ctx, struct sfs_error *e);

static const struct {
	const char *name;
	call_fn *fn;
} calls[] = {
/* clang-format off */
#define C(x) {#x, x}
    C(secret_create), C(secret_update), C(secret_change_key),
    C(secret_activate), C(secret_deactivate), C(secret_delete),
    C(version_add), C(version_set_default), C(version_activate),
    C(version_deactivate), C(version_destroy), C(version_copy),
    C(key_create), C(key_activate), C(key_deactivate), C(key_rotate),
    C(key_delete), C(role_grant), C(role_revoke),
#undef C
    /* clang-format on */
};

#define NCALLS (sizeof(calls) / sizeof(calls[0]))

/* ---- the sweep ---------------------------------------------------------- */

/* The seed as the services and as the store show it, and the services'
 * view after the call succeeded. */
struct want {
	char *before, *raw_before, *after;
};

/* One run of a call on a fresh copy of the seed. */
struct run {
	call_fn *fn;
	int nth;     /* 0: no fault */
	int once;    /* only the nth store call fails */
	int rc;	     /* what the call returned */
	int ncalls;  /* store calls it made */
	char *raw;   /* the store's records right after it (faults off) */
	char *state; /* the services' view then */
	char *retry; /* the view after a retry without faults, or NULL */
};

static int nothing(struct sfs_ctx *ctx, struct sfs_error *e)
{
	(void)ctx;
	(void)e;
	return SFS_OK;
}

/* Run r->fn on a copy of the seed; when w is given and the call changed
 * nothing the services show, retry it without faults and dump again. */
static void run(struct run *r, const struct want *w)
{
	char *dir = sd_copy_dir(seed, "sweep-run");
	struct sfs_ctx *ctx = sd_open(dir, 0);
	struct sfs_store *f = fault_store_wrap(sfs_ctx_store(ctx));
	struct sfs_error e;

	sfs_ctx_swap_store(ctx, f);
	if (r->nth && r->once)
		fault_store_fail_once(f, r->nth, SFS_ENOSPC);
	else if (r->nth)
		fault_store_fail(f, r->nth, SFS_EIO);
	sfs_error_clear(&e);
	r->rc = r->fn(ctx, &e);
	r->ncalls = fault_store_calls(f);
	fault_store_reset(f);
	r->raw = sd_dump_checked(ctx, 1);
	r->state = sd_dump_checked(ctx, 0);
	r->retry = NULL;
	if (w && strcmp(r->state, w->before) == 0) {
		sfs_error_clear(&e);
		ck_assert_msg(r->fn(ctx, &e) == SFS_OK, "retry: %s", e.msg);
		r->retry = sd_dump_checked(ctx, 0);
	}
	sfs_ctx_close(ctx);
	tu_rmrf(dir);
	free(dir);
}

static void run_free(struct run *r)
{
	free(r->raw);
	free(r->state);
	free(r->retry);
}

/* The nth store call of the call fails (once or from then on). */
static void sweep_one(int i, int nth, int once, const struct want *w)
{
	struct run r = {calls[i].fn, nth, once, 0, 0, NULL, NULL, NULL};
	const char *how = once ? " once" : "";
	int code = once ? SFS_ENOSPC : SFS_EIO;

	run(&r, w);
	ck_assert_msg(r.rc == code,
		      "%s, store call %d of %d failing%s: returned %s, not %s",
		      calls[i].name, nth, r.ncalls, how, sfs_err_name(r.rc),
		      sfs_err_name(code));
	ck_assert_msg(strcmp(r.state, w->before) == 0 ||
			  strcmp(r.state, w->after) == 0,
		      "%s, store call %d failing%s: partial change:\n%s\n"
		      "before:\n%s\nafter:\n%s",
		      calls[i].name, nth, how, r.state, w->before, w->after);
	if (r.retry) {
		ck_assert_msg(strcmp(r.raw, w->raw_before) == 0,
			      "%s, store call %d failing%s: records changed:"
			      "\n%s\nbefore:\n%s",
			      calls[i].name, nth, how, r.raw, w->raw_before);
		ck_assert_msg(strcmp(r.retry, w->after) == 0,
			      "%s, store call %d failing%s: retry gave\n%s",
			      calls[i].name, nth, how, r.retry);
	}
	run_free(&r);
}

START_TEST(store_failure_sweep)
{
	struct run base = {nothing, 0, 0, 0, 0, NULL, NULL, NULL};
	struct run ref = {calls[_i].fn, 0, 0, 0, 0, NULL, NULL, NULL};
	struct want w;
	int nth;

	run(&base, NULL);
	run(&ref, NULL);
	ck_assert_msg(ref.rc == SFS_OK, "%s: %s", calls[_i].name,
		      sfs_err_name(ref.rc));
	ck_assert_msg(strcmp(ref.state, base.state) != 0, "%s changed nothing",
		      calls[_i].name);
	ck_assert_int_gt(ref.ncalls, 0);
	w.before = base.state;
	w.raw_before = base.raw;
	w.after = ref.state;
	for (nth = 1; nth <= ref.ncalls; nth++) {
		sweep_one(_i, nth, 0, &w);
		sweep_one(_i, nth, 1, &w);
	}
	run_free(&base);
	run_free(&ref);
}
END_TEST

static Suite *sweep_suite(void)
{
	Suite *s = suite_create("sweep");
	TCase *tc;
	size_t i;

	for (i = 0; i < NCALLS; i++) {
		tc = tcase_create(calls[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 120);
		tcase_add_loop_test(tc, store_failure_sweep, (int)i,
				    (int)i + 1);
		suite_add_tcase(s, tc);
	}
	return s;
}

/* fsync waits would be most of its time: keep the stores in memory. */
const struct harness harness = {.suite = sweep_suite,
				.setup = tu_tmpdir_in_memory};
