/*
 * Power-loss suite: the store keeps every commit it reported and never
 * shows half a transaction, whatever point power is lost at.
 *
 * A reference run replays a fixed workload of write transactions (secrets
 * created with a first version, versions added, deactivated, destroyed,
 * key rotations, roles, meta, a secret deleted: each several store
 * operations in one transaction, blobs from 40 bytes to 64 KiB) and
 * records a canonical dump of the whole store after each one: states
 * S0..Sn. Then, for hundreds of crash points k spread over the run, a
 * forked child replays the workload under crashvfs (tests/lib/crashvfs.c:
 * unsynced writes dropped, kept, or torn sector by sector) until power is
 * lost at its k-th write, truncate or sync, telling the parent through a
 * pipe each time commit() returned 0. The parent reopens the files with
 * the plain unix VFS, as a reboot would, and requires: the store's check
 * (PRAGMA integrity_check and foreign_key_check) passes; the dump equals
 * S_c or S_c+1 exactly, where c transactions were reported committed (the
 * one in flight may have reached the disk before its commit() could
 * return); and a new write transaction commits.
 *
 * Two workloads run this way: raw store operations (360 crash points),
 * and the services on a store made by sfs_ctx_init, whose dump decrypts
 * every version (180 points); see "the services workload" below. Crash
 * points and coin tosses are seeded deterministically, so a failure names
 * a point that reproduces. $POWERLOSS_POINTS=N runs N points per mode
 * instead (a quick look, or a run under valgrind).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/crashvfs.h"
#include "lib/harness.h"
#include "lib/svcdump.h"
#include "lib/testutil.h"
#include "secretfs/ctx.h"
#include "secretfs/keys.h"
#include "secretfs/role.h"
#include "secretfs/secret.h"
#include "secretfs/store.h"
#include "secretfs/version.h"

#define NSTEPS 60
#define NSEC   10
#define KEY_ID "00000000-0000-4000-8000-00000000000a"

/* Crash points per keep mode and workload (three modes each). */
#define STORE_POINTS 120
#define SVC_POINTS   60

#define OK(x, e) ck_assert_msg((x) == 0, "%s: %s", #x, (e).msg)

/* ---- the workload ---------------------------------------------------- */

/* What the workload generator knows of the store it drives. */
struct wl {
	int made; /* secrets created so far */
	int alive[NSEC];
	uint32_t latest[NSEC];
	int state[NSEC][NSTEPS + 2]; /* by version number */
	uint32_t key_version;
	unsigned char *buf; /* blob scratch */
};

static const size_t sizes[] = {40, 700, 3000, 9000, 20000, 65536 + 40};

static void sec_id(char *out, int j)
{
	snprintf(out, SFS_ID_MAX + 1, "00000000-0000-4000-8000-%012d", 100 + j);
}

/* Deterministic bytes that differ per (tag, offset). */
static void fill(unsigned char *b, size_t n, unsigned tag)
{
	uint32_t x = 2166136261u ^ tag;
	size_t i;

	for (i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (unsigned char)(x >> 16);
	}
}

static void secret_fill(struct sfs_secret_rec *r, const struct wl *w, int j,
			int step)
{
	memset(r, 0, sizeof(*r));
	sec_id(r->id, j);
	snprintf(r->name, sizeof(r->name), "secret-%d", j);
	snprintf(r->description, sizeof(r->description), "made at %d", step);
	r->status = SFS_STATE_ACTIVE;
	snprintf(r->allowed, sizeof(r->allowed), "uid:%d", 1000 + j);
	r->owner = 1000 + (uint32_t)j;
	r->group = 100;
	r->mode = 0440;
	r->default_version = w->latest[j];
	r->latest_version = w->latest[j];
	snprintf(r->kms_key_id, sizeof(r->kms_key_id), "%s", KEY_ID);
	r->created_at = 1700000000000000000LL + j;
	snprintf(r->created_by, sizeof(r->created_by), "uid:0(root)");
	r->changed_at = 1700000000000000000LL + step;
}

static int add_version(struct sfs_store *s, struct wl *w, int j, int step,
		       struct sfs_error *e)
{
	struct sfs_version_rec v;
	struct sfs_secret_rec r;
	unsigned char dek[72];
	size_t n = sizes[step % 6];
	int rc;

	memset(&v, 0, sizeof(v));
	sec_id(v.secret_id, j);
	v.version = w->latest[j] + 1;
	v.created_at = 1700000000000000000LL + step;
	snprintf(v.created_by, sizeof(v.created_by), "uid:0(root)");
	snprintf(v.kms_key_id, sizeof(v.kms_key_id), "%s", KEY_ID);
	v.kms_key_version = w->key_version;
	v.size = (uint32_t)n;
	fill(dek, sizeof(dek), (unsigned)(step * 2));
	fill(w->buf, n, (unsigned)(step * 2 + 1));
	v.wrapped_dek.data = dek;
	v.wrapped_dek.len = sizeof(dek);
	v.ciphertext.data = w->buf;
	v.ciphertext.len = n;
	rc = sfs_store_version_insert(s, &v, e);
	if (rc)
		return rc;
	w->latest[j]++;
	w->state[j][v.version] = SFS_STATE_ACTIVE;
	secret_fill(&r, w, j, step);
	return sfs_store_secret_update(s, &r, e);
}

/* The alive secret at or after start, cyclically; -1 when none. */
static int pick(const struct wl *w, int start)
{
	int i, j;

	for (i = 0; i < w->made; i++) {
		j = (start + i) % w->made;
		if (w->alive[j])
			return j;
	}
	return -1;
}

static int create_secret(struct sfs_store *s, struct wl *w, int step,
			 struct sfs_error *e)
{
	struct sfs_secret_rec r;
	int j = w->made, rc;

	w->latest[j] = 0;
	secret_fill(&r, w, j, step);
	rc = sfs_store_secret_insert(s, &r, e);
	if (rc)
		return rc;
	w->made++;
	w->alive[j] = 1;
	return add_version(s, w, j, step, e);
}

static int rotate_key(struct sfs_store *s, struct wl *w, int step,
		      struct sfs_error *e)
{
	struct sfs_key_rec k;
	struct sfs_blob b;
	unsigned char wrapped[72];
	int rc;

	fill(wrapped, sizeof(wrapped), (unsigned)step + 7777u);
	b.data = wrapped;
	b.len = sizeof(wrapped);
	rc = sfs_store_keyver_insert(s, KEY_ID, w->key_version + 1, &b,
				   1700000000000000000LL + step, e);
	if (rc == 0)
		rc = sfs_store_key_get(s, KEY_ID, &k, e);
	if (rc)
		return rc;
	k.current_version = ++w->key_version;
	return sfs_store_key_update(s, &k, e);
}

static int role_step(struct sfs_store *s, int step, struct sfs_error *e)
{
	char who[32];

	if (step % 20 == 16) { /* revoke the grant of 10 steps ago */
		snprintf(who, sizeof(who), "uid:%d", 2000 + step - 10);
		return sfs_store_role_revoke(s, "manager", who, e);
	}
	snprintf(who, sizeof(who), "uid:%d", 2000 + step);
	return sfs_store_role_grant(s, "manager", who, e);
}

/* Move a version of an alive secret to a state it is not in yet and
 * can reach (destroyed is final); else add a version. */
static int version_step(struct sfs_store *s, struct wl *w, int step, int state,
			struct sfs_error *e)
{
	char id[SFS_ID_MAX + 1];
	int j = pick(w, step), rc;
	uint32_t i, n;

	for (i = 0; j >= 0 && i < w->latest[j]; i++) {
		n = 1 + ((uint32_t)step + i) % w->latest[j];
		if (w->state[j][n] == state ||
		    w->state[j][n] == SFS_STATE_DESTROYED)
			continue;
		sec_id(id, j);
		rc = sfs_store_version_set_state(s, id, n, state, e);
		if (rc == 0)
			w->state[j][n] = state;
		return rc;
	}
	if (j < 0)
		return sfs_store_meta_set(s, "noop", &step, sizeof(step), e);
	return add_version(s, w, j, step, e);
}

/* Delete an alive secret with its version rows (the store does not
 * enforce SPEC's rules: the services do). */
static int delete_step(struct sfs_store *s, struct wl *w, int step,
		       struct sfs_error *e)
{
	char id[SFS_ID_MAX + 1];
	int j = pick(w, step), rc;

	if (j < 0)
		return sfs_store_meta_set(s, "noop", &step, sizeof(step), e);
	sec_id(id, j);
	rc = sfs_store_secret_delete(s, id, e);
	if (rc == 0)
		w->alive[j] = 0;
	return rc;
}

static int step_body(struct sfs_store *s, struct wl *w, int step,
		     struct sfs_error *e)
{
	uint64_t n = (uint64_t)step * 0x0101010101010101ULL;
	int j = pick(w, step * 7);

	switch (step % 10) {
	case 0:
	case 5:
		if (w->made < NSEC)
			return create_secret(s, w, step, e);
		break;
	case 3:
		return version_step(s, w, step, SFS_STATE_DEACTIVATED, e);
	case 4:
		return version_step(s, w, step, SFS_STATE_DESTROYED, e);
	case 6:
		return rotate_key(s, w, step, e);
	case 7:
		return sfs_store_meta_set(s, "counter", &n, sizeof(n), e);
	case 9:
		if (step % 20 == 19)
			return delete_step(s, w, step, e);
		/* fall through */
	case 8:
		return role_step(s, step, e);
	}
	if (j < 0)
		return create_secret(s, w, step, e);
	return add_version(s, w, j, step, e);
}

/* One write transaction: 0 once commit() returned 0. */
static int step_run(struct sfs_store *s, struct wl *w, int step,
		    struct sfs_error *e)
{
	int rc = sfs_store_begin(s, 1, e);

	if (rc == 0)
		rc = step_body(s, w, step, e);
	if (rc == 0)
		rc = sfs_store_commit(s, e);
	else
		sfs_store_rollback(s);
	return rc;
}

static void wl_init(struct wl *w)
{
	memset(w, 0, sizeof(*w));
	w->key_version = 1;
	w->buf = malloc(sizes[5]);
	ck_assert_ptr_nonnull(w->buf);
}

/* ---- the store workload's adapters ------------------------------------ */

/* A store with the service key, one key version and a store id. */
static void store_template(const char *dir)
{
	struct sfs_store *s = NULL;
	struct sfs_error e;
	struct sfs_key_rec k;
	struct sfs_blob b;
	unsigned char bytes[72];

	OK(sfs_store_open(dir, 1, 0, &s, &e), e);
	memset(&k, 0, sizeof(k));
	snprintf(k.id, sizeof(k.id), "%s", KEY_ID);
	snprintf(k.name, sizeof(k.name), "service");
	k.type = SFS_KEY_SERVICE;
	snprintf(k.created_by, sizeof(k.created_by), "uid:0(root)");
	k.current_version = 1;
	fill(bytes, sizeof(bytes), 4242);
	b.data = bytes;
	b.len = sizeof(bytes);
	OK(sfs_store_begin(s, 1, &e), e);
	OK(sfs_store_key_insert(s, &k, &e), e);
	OK(sfs_store_keyver_insert(s, KEY_ID, 1, &b, 1, &e), e);
	OK(sfs_store_meta_set(s, "store_id", bytes, 16, &e), e);
	OK(sfs_store_commit(s, &e), e);
	sfs_store_close(s);
}

static void *store_open(const char *dir, struct sfs_error *e)
{
	struct sfs_store *s = NULL;

	return sfs_store_open(dir, 0, 0, &s, e) ? NULL : s;
}

static void store_close(void *h)
{
	sfs_store_close(h);
}

static void *store_state_new(void)
{
	struct wl *w = malloc(sizeof(*w));

	ck_assert_ptr_nonnull(w);
	wl_init(w);
	return w;
}

static void store_state_free(void *st)
{
	struct wl *w = st;

	free(w->buf);
	free(w);
}

static int store_step(void *h, void *st, int i, struct sfs_error *e)
{
	return step_run(h, st, i, e);
}

static char *store_dump(void *h, struct sfs_error *e)
{
	return sd_store_dump(h, e);
}

static int store_probe(void *h, struct sfs_error *e)
{
	struct sfs_store *s = h;
	int rc = sfs_store_begin(s, 1, e);

	if (rc == 0)
		rc = sfs_store_meta_set(s, "after", "1", 1, e);
	if (rc == 0)
		rc = sfs_store_commit(s, e);
	return rc;
}

/* ---- the services workload ------------------------------------------- */

/*
 * The same test one level up: the services (keys.c, secret.c, version.c,
 * role.c) on a store made by sfs_ctx_init, so that every rule of SPEC §2
 * that writes several rows (a new version moves the default; the last
 * active version leaving deactivates the secret; a copy reads and adds)
 * is a transaction that power may cut. The dump reads every version back
 * through sfs_version_read: after a crash each one must decrypt to the
 * complete value written, or fail exactly as it did in the reference.
 * Names stand in for ids, which are random per run; times are left out.
 */
enum svc_op {
	S_CREATE,
	S_ADD,
	S_KEY_CREATE,
	S_ROTATE,
	S_KEY_OFF,
	S_KEY_ON,
	S_V_OFF,
	S_V_ON,
	S_DESTROY,
	S_DEFAULT,
	S_CHANGE_KEY,
	S_SEC_OFF,
	S_SEC_ON,
	S_DELETE,
	S_GRANT,
	S_COPY,
	S_DESC
};

struct svc_step {
	enum svc_op op;
	const char *name; /* secret, key or role */
	const char *arg;  /* key, principal or description */
	uint32_t n;	  /* version */
	size_t size;	  /* value bytes; 0: create without a value */
};

static const struct svc_step script[] = {
    {S_CREATE, "db", NULL, 0, 40},
    {S_ADD, "db", NULL, 0, 3000},
    {S_KEY_CREATE, "k1", NULL, 0, 0},
    {S_CREATE, "api", "k1", 0, 700},
    {S_ADD, "api", NULL, 0, 20000},
    {S_V_OFF, "db", NULL, 1, 0},
    {S_ADD, "db", NULL, 0, 65536},
    {S_ROTATE, "k1", NULL, 0, 0},
    {S_ADD, "api", NULL, 0, 9000},
    {S_DEFAULT, "api", NULL, 1, 0},
    {S_DESTROY, "db", NULL, 1, 0},
    {S_CHANGE_KEY, "db", "k1", 0, 0},
    {S_ADD, "db", NULL, 0, 100},
    {S_KEY_OFF, "k1", NULL, 0, 0},
    {S_KEY_ON, "k1", NULL, 0, 0},
    {S_CREATE, "tmp", NULL, 0, 0},
    {S_SEC_OFF, "tmp", NULL, 0, 0},
    {S_DELETE, "tmp", NULL, 0, 0},
    {S_GRANT, "manager", "uid:1234", 0, 0},
    {S_V_OFF, "api", NULL, 3, 0},
    {S_V_ON, "api", NULL, 3, 0},
    {S_SEC_OFF, "api", NULL, 0, 0},
    {S_SEC_ON, "api", NULL, 0, 0},
    {S_COPY, "db", NULL, 2, 0},
    {S_V_OFF, "api", NULL, 2, 0},
    {S_DESTROY, "api", NULL, 2, 0},
    {S_ADD, "api", NULL, 0, 40000},
    {S_DESC, "db", "rotated weekly", 0, 0},
    {S_KEY_CREATE, "k2", NULL, 0, 0},
    {S_CREATE, "big", "k2", 0, 65536},
    {S_ADD, "big", NULL, 0, 1},
    {S_V_OFF, "big", NULL, 1, 0},
    {S_V_OFF, "big", NULL, 2, 0}, /* none active: big deactivated */
    {S_V_ON, "big", NULL, 2, 0},
    {S_SEC_ON, "big", NULL, 0, 0},
    {S_DESTROY, "big", NULL, 1, 0},
    {S_ROTATE, "service", NULL, 0, 0},
    {S_ADD, "db", NULL, 0, 5000},
    {S_GRANT, "kms-user", "gid:50", 0, 0},
    {S_ADD, "api", NULL, 0, 300},
    {S_V_OFF, "db", NULL, 3, 0},
    {S_DESTROY, "db", NULL, 3, 0},
};

#define SVC_STEPS ((int)(sizeof(script) / sizeof(script[0])))

static struct sfs_caller admin;

static void svc_template(const char *dir)
{
	struct sfs_ctx_options o;
	struct sfs_error e;

	memset(&o, 0, sizeof(o));
	o.store_dir = dir;
	OK(sfs_ctx_init(&o, &e), e);
}

static void *svc_open(const char *dir, struct sfs_error *e)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *ctx = NULL;
	char key[4096];

	snprintf(key, sizeof(key), "%s/master.key", dir);
	memset(&o, 0, sizeof(o));
	o.store_dir = dir;
	o.master_key = key;
	return sfs_ctx_open(&ctx, &o, e) ? NULL : ctx;
}

static void svc_close(void *h)
{
	sfs_ctx_close(h);
}

/* The value buffer: the workload's only state. */
static void *svc_state_new(void)
{
	void *buf = malloc(SFS_VALUE_MAX);

	ck_assert_ptr_nonnull(buf);
	return buf;
}

static void svc_state_free(void *st)
{
	free(st);
}

static int svc_create(struct sfs_ctx *ctx, const struct svc_step *s,
		      unsigned char *buf, int i, struct sfs_error *e)
{
	struct sfs_secret_new n;

	memset(&n, 0, sizeof(n));
	n.name = s->name;
	n.key = s->arg;
	if (s->size) {
		fill(buf, s->size, (unsigned)i);
		n.value = buf;
		n.value_len = s->size;
	}
	return sfs_secret_create(ctx, &admin, &n, NULL, e);
}

static int svc_desc(struct sfs_ctx *ctx, const struct svc_step *s,
		    struct sfs_error *e)
{
	struct sfs_secret_update u;

	memset(&u, 0, sizeof(u));
	u.fields = SFS_SF_DESCRIPTION;
	u.description = s->arg;
	return sfs_secret_update(ctx, &admin, s->name, &u, e);
}

static int svc_step(void *h, void *st, int i, struct sfs_error *e)
{
	const struct svc_step *s = &script[i];
	struct sfs_ctx *ctx = h;
	unsigned char *buf = st;

	switch (s->op) {
	case S_CREATE:
		return svc_create(ctx, s, buf, i, e);
	case S_ADD:
		fill(buf, s->size, (unsigned)i);
		return sfs_version_add(ctx, &admin, s->name, buf, s->size, 0,
				       NULL, e);
	case S_KEY_CREATE:
		return sfs_key_create(ctx, &admin, s->name, NULL, NULL, e);
	case S_ROTATE:
		return sfs_key_rotate(ctx, &admin, s->name, NULL, e);
	case S_KEY_OFF:
	case S_KEY_ON:
		return sfs_key_set_state(ctx, &admin, s->name,
					 s->op == S_KEY_ON, e);
	case S_V_OFF:
	case S_V_ON:
		return sfs_version_set_state(ctx, &admin, s->name, s->n,
					     s->op == S_V_ON, e);
	case S_DESTROY:
		return sfs_version_destroy(ctx, &admin, s->name, s->n, e);
	case S_DEFAULT:
		return sfs_version_set_default(ctx, &admin, s->name, s->n, e);
	case S_CHANGE_KEY:
		return sfs_secret_change_key(ctx, &admin, s->name, s->arg, e);
	case S_SEC_OFF:
	case S_SEC_ON:
		return sfs_secret_set_status(ctx, &admin, s->name,
					     s->op == S_SEC_ON, e);
	case S_DELETE:
		return sfs_secret_delete(ctx, &admin, s->name, e);
	case S_GRANT:
		return sfs_role_grant(ctx, &admin, s->name, s->arg, e);
	case S_COPY:
		return sfs_version_copy(ctx, &admin, s->name, s->n, NULL, e);
	case S_DESC:
		return svc_desc(ctx, s, e);
	}
	return SFS_EINVAL;
}

static char *svc_dump_all(void *h, struct sfs_error *e)
{
	return sd_dump(h, e);
}

static int svc_probe(void *h, struct sfs_error *e)
{
	return sfs_key_create(h, &admin, "after-reboot", NULL, NULL, e);
}

/* ---- workloads ------------------------------------------------------- */

struct workload {
	const char *name;
	int nsteps;
	int points_per_mode;
	void (*make_template)(const char *dir);
	void *(*open)(const char *dir, struct sfs_error *e); /* NULL: fail */
	void (*close)(void *h);
	void *(*state_new)(void);
	void (*state_free)(void *st);
	int (*step)(void *h, void *st, int i, struct sfs_error *e);
	char *(*dump)(void *h, struct sfs_error *e);
	int (*probe)(void *h, struct sfs_error *e); /* a write after reboot */
	/* the reference run, made by the fixture */
	char *template;
	char **dumps; /* nsteps + 1 */
	long points;  /* write/truncate/sync calls of the whole run */
};

static struct workload store_wl = {"store",
				   NSTEPS,
				   STORE_POINTS,
				   store_template,
				   store_open,
				   store_close,
				   store_state_new,
				   store_state_free,
				   store_step,
				   store_dump,
				   store_probe,
				   NULL,
				   NULL,
				   0};

static struct workload svc_wl = {"services",	SVC_STEPS,
				 SVC_POINTS,	svc_template,
				 svc_open,	svc_close,
				 svc_state_new, svc_state_free,
				 svc_step,	svc_dump_all,
				 svc_probe,	NULL,
				 NULL,		0};

static struct workload *wl; /* the test case's, set by its fixture */

/* ---- template and reference run -------------------------------------- */

static void dump_into(void *h, int i)
{
	struct sfs_error e;

	sfs_error_clear(&e);
	wl->dumps[i] = wl->dump(h, &e);
	ck_assert_msg(wl->dumps[i] != NULL, "%s dump %d: %s", wl->name, i,
		      e.msg);
}

/* The workload without a crash, under the shim (to count its calls):
 * the dump after each transaction. */
static void reference_run(void)
{
	char *d = sd_copy_dir(wl->template, "powerloss");
	struct sfs_error e;
	void *h, *st = wl->state_new();
	int i;

	ck_assert_int_eq(crashvfs_install(), 0);
	crashvfs_arm(0, 0, CRASHVFS_DROP_ALL);
	h = wl->open(d, &e);
	ck_assert_msg(h != NULL, "open: %s", e.msg);
	dump_into(h, 0);
	for (i = 0; i < wl->nsteps; i++) {
		ck_assert_msg(wl->step(h, st, i, &e) == 0, "%s step %d: %s",
			      wl->name, i, e.msg);
		dump_into(h, i + 1);
	}
	wl->points = crashvfs_points();
	wl->close(h);
	crashvfs_uninstall();
	wl->state_free(st);
	tu_rmrf(d);
	free(d);
}

static void fixture_setup(struct workload *w)
{
	wl = w;
	sfs_caller_self(&admin);
	unsetenv("SECRETFS_MASTER_KEY");
	wl->template = tu_tmpdir("powerloss-template");
	wl->make_template(wl->template);
	wl->dumps = calloc((size_t)wl->nsteps + 1, sizeof(*wl->dumps));
	ck_assert_ptr_nonnull(wl->dumps);
	reference_run();
}

static void fixture_teardown(void)
{
	int i;

	for (i = 0; i <= wl->nsteps; i++)
		free(wl->dumps[i]);
	free(wl->dumps);
	wl->dumps = NULL;
	tu_rmrf(wl->template);
	free(wl->template);
	wl->template = NULL;
}

static void store_setup(void)
{
	fixture_setup(&store_wl);
}

static void svc_setup(void)
{
	fixture_setup(&svc_wl);
}

/* ---- crash runs ------------------------------------------------------ */

/*
 * The child: the workload under the shim until power goes, writing each
 * step's number to fd once it returned 0 (committed). Exit status 0 when
 * it stopped at the crash or ran to the end; otherwise a failure that
 * power loss does not explain.
 */
static int child_run(const char *d, long k, enum crashvfs_keep keep, int fd)
{
	struct sfs_error e;
	void *h, *st;
	int i, rc = 0;

	if (crashvfs_install())
		return 10;
	crashvfs_arm(k, 0x5eed0000ULL + (uint64_t)k * 3 + keep, keep);
	h = wl->open(d, &e);
	if (!h)
		return crashvfs_crashed() ? 0 : 11;
	st = wl->state_new();
	for (i = 0; rc == 0 && i < wl->nsteps; i++) {
		if (wl->step(h, st, i, &e))
			rc = crashvfs_crashed() ? -1 : 12;
		else if (write(fd, &i, sizeof(i)) != (ssize_t)sizeof(i))
			rc = 13;
	}
	/* Closing cannot touch the disk once power is gone: every call
	 * fails. It frees what leak checkers would report. */
	wl->state_free(st);
	wl->close(h);
	return rc < 0 ? 0 : rc;
}

/* Committed steps the child reported, in order. */
static int read_committed(int fd)
{
	int i, n = 0;

	while (read(fd, &i, sizeof(i)) == (ssize_t)sizeof(i)) {
		ck_assert_int_eq(i, n);
		n++;
	}
	return n;
}

static void check_integrity(const char *d, long k)
{
	struct sfs_store *s = NULL;
	struct sfs_error e;

	sfs_error_clear(&e);
	OK(sfs_store_open(d, 0, 0, &s, &e), e);
	ck_assert_msg(sfs_store_check(s, &e) == 0, "%s crash point %ld: %s",
		      wl->name, k, e.msg);
	sfs_store_close(s);
}

/* After the reboot: intact, S_c or S_c+1, and writable. 1 when the
 * in-flight transaction turned out durable. */
static int check_after(const char *d, int c, long k)
{
	struct sfs_error e;
	char *now;
	void *h;
	int in_flight;

	check_integrity(d, k);
	sfs_error_clear(&e);
	h = wl->open(d, &e);
	ck_assert_msg(h != NULL, "crash point %ld: reopen: %s", k, e.msg);
	now = wl->dump(h, &e);
	ck_assert_msg(now != NULL, "crash point %ld: dump: %s", k, e.msg);
	in_flight = c < wl->nsteps && strcmp(now, wl->dumps[c + 1]) == 0;
	ck_assert_msg(in_flight || strcmp(now, wl->dumps[c]) == 0,
		      "%s crash point %ld: %d transactions reported committed, "
		      "but the store holds neither their state nor the next "
		      "one's:\n%s\nexpected:\n%s",
		      wl->name, k, c, now, wl->dumps[c]);
	free(now);
	OK(wl->probe(h, &e), e);
	wl->close(h);
	return in_flight;
}

/* Crash at point k in a child, then check: 1 when the in-flight step
 * turned out durable. */
static int crash_at(long k, enum crashvfs_keep keep)
{
	char *d = sd_copy_dir(wl->template, "powerloss");
	int p[2], status = 0, c, in_flight;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char path[4096];

		snprintf(path, sizeof(path), "%s", d);
		free(d); /* the parent's: nothing left for a leak checker */
		close(p[0]);
		_exit(child_run(path, k, keep, p[1]));
	}
	close(p[1]);
	c = read_committed(p[0]);
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "%s crash point %ld: child status %d", wl->name, k,
		      status);
	in_flight = check_after(d, c, k);
	tu_rmrf(d);
	free(d);
	return in_flight;
}

/* Crash points per mode: the workload's, or $POWERLOSS_POINTS (a quick
 * run, or one under valgrind). */
static long points_per_mode(void)
{
	const char *env = getenv("POWERLOSS_POINTS");
	long n = env ? strtol(env, NULL, 10) : 0;

	return n > 0 ? n : wl->points_per_mode;
}

static void crash_points(enum crashvfs_keep keep, const char *what)
{
	long j, k, per = points_per_mode(), total = 3 * per;
	int durable = 0;

	ck_assert_int_gt(wl->points, total);
	for (j = 0; j < per; j++) {
		k = 1 + (j * 3 + keep) * wl->points / total;
		durable += crash_at(k, keep);
	}
	printf("powerloss: %s: %s: %ld crash points of %ld, %d with the "
	       "transaction in flight durable\n",
	       wl->name, what, per, wl->points, durable);
}

START_TEST(test_unsynced_dropped)
{
	crash_points(CRASHVFS_DROP_ALL, "unsynced writes dropped");
}
END_TEST

START_TEST(test_unsynced_kept)
{
	crash_points(CRASHVFS_KEEP_ALL, "unsynced writes kept");
}
END_TEST

START_TEST(test_unsynced_torn)
{
	crash_points(CRASHVFS_KEEP_SOME, "unsynced sectors torn");
}
END_TEST

/* The harness itself: the workload changes the store at every step, and
 * it runs to the end when no crash is asked for. */
START_TEST(test_reference_distinct)
{
	int i;

	for (i = 0; i < wl->nsteps; i++)
		ck_assert_msg(strcmp(wl->dumps[i], wl->dumps[i + 1]) != 0,
			      "%s step %d changed nothing", wl->name, i);
	ck_assert_int_eq(crash_at(wl->points + 1, CRASHVFS_DROP_ALL), 0);
}
END_TEST

/*
 * The shim has teeth: a row committed with synchronous=OFF (never
 * synced) is gone after power loss, while with synchronous=FULL it
 * stays. Raw SQLite, so that the pragma can be chosen.
 */
static int rows_after_crash(const char *journal, const char *sync_pragma)
{
	char sql[200];
	char *d = tu_tmpdir("powerloss-shim"), path[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rows = -1;

	snprintf(path, sizeof(path), "%s/t.db", d);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s;"
		 "CREATE TABLE t(x)", journal);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(crashvfs_install(), 0);
	crashvfs_arm(0, 1, CRASHVFS_DROP_ALL);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sync_pragma, NULL, NULL, NULL),
			 SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s;"
		 "INSERT INTO t VALUES (42)", journal);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_gt(crashvfs_points(), 0);
	crashvfs_crash_now();
	ck_assert_int_eq(crashvfs_crashed(), 1);
	sqlite3_close(db);
	crashvfs_uninstall();
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		rows = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	tu_rmrf(d);
	free(d);
	return rows;
}

START_TEST(test_shim_drops_unsynced)
{
	ck_assert_int_eq(rows_after_crash("TRUNCATE", "PRAGMA synchronous=OFF"),
			 0);
	/* and in WAL mode, the store's: the WAL file is modelled too */
	ck_assert_int_eq(rows_after_crash("WAL", "PRAGMA synchronous=OFF"), 0);
}
END_TEST

START_TEST(test_shim_keeps_synced)
{
	ck_assert_int_eq(rows_after_crash("TRUNCATE",
					  "PRAGMA synchronous=FULL"), 1);
	ck_assert_int_eq(rows_after_crash("WAL", "PRAGMA synchronous=FULL"), 1);
}
END_TEST

/*
 * Failed syncs (crashvfs_fail_sync), raw SQLite under each journal mode
 * the store may use: a row committed, then an INSERT whose k-th sync
 * fails. The failure is reported (SQLITE_IOERR_FSYNC); after power loss
 * right after it the database is intact, the row committed before is
 * there, the failed row is absent or present (never half), and a new
 * row commits. WAL runs with locking_mode=EXCLUSIVE, which needs no
 * shared memory from the VFS.
 */
struct sync_run {
	const char *journal; /* journal_mode */
	long fail_at;	     /* the sync that fails; 0: none */
	int lose;	     /* crashvfs_fail_sync's lose */
	enum crashvfs_keep keep;
	int rc;		     /* the INSERT's extended result code */
	long syncs;	     /* syncs the INSERT made */
};

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
		      "%s: %s", sql, msg ? msg : "?");
}

static int count_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int n = -1;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
			 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* After the reboot, through the unix VFS: intact, row 1 there, a new
 * row commits. The number of failed rows (x = 2) found. */
static int rows_after_reboot(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int failed;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
					    &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	ck_assert_int_eq(count_rows(db, "SELECT count(*) FROM t WHERE x = 1"),
			 1);
	failed = count_rows(db, "SELECT count(*) FROM t WHERE x = 2");
	ck_assert_int_eq(count_rows(db, "SELECT count(*) FROM t"), 1 + failed);
	exec_ok(db, "INSERT INTO t VALUES (3)");
	sqlite3_close(db);
	return failed;
}

/* One run (see struct sync_run); the rows x = 2 after the reboot. */
static int sync_fail_run(struct sync_run *r)
{
	char *d = tu_tmpdir("powerloss-sync"), path[4096], sql[128];
	sqlite3 *db = NULL;
	int wal = strcmp(r->journal, "WAL") == 0, failed;

	snprintf(path, sizeof(path), "%s/t.db", d);
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s", r->journal);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	exec_ok(db, sql);
	exec_ok(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
	sqlite3_close(db);
	ck_assert_int_eq(crashvfs_install(), 0);
	crashvfs_arm(0, 0x5eedULL + (uint64_t)r->fail_at, r->keep);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	if (wal)
		exec_ok(db, "PRAGMA locking_mode=EXCLUSIVE");
	exec_ok(db, "PRAGMA synchronous=FULL");
	exec_ok(db, sql);
	ck_assert_int_eq(count_rows(db, "SELECT count(*) FROM t"), 1);
	crashvfs_fail_sync(r->fail_at, 1, r->lose);
	sqlite3_exec(db, "INSERT INTO t VALUES (2)", NULL, NULL, NULL);
	r->rc = sqlite3_extended_errcode(db);
	r->syncs = crashvfs_syncs();
	crashvfs_crash_now();
	sqlite3_close(db);
	crashvfs_uninstall();
	failed = rows_after_reboot(path);
	tu_rmrf(d);
	free(d);
	return failed;
}

/* Every sync of the INSERT's commit in turn, every keep mode, lost or
 * pending. */
static void sync_failures(const char *journal)
{
	struct sync_run r = {journal, 0, 0, CRASHVFS_KEEP_ALL, 0, 0};
	long k, n;
	int keep, lose, kept = 0, runs = 0;

	ck_assert_int_eq(sync_fail_run(&r), 1);
	ck_assert_int_eq(r.rc, SQLITE_OK);
	n = r.syncs;
	ck_assert_int_ge(n, 1);
	for (k = 1; k <= n; k++)
		for (keep = 0; keep < 3; keep++)
			for (lose = 0; lose < 2; lose++) {
				r.fail_at = k;
				r.keep = (enum crashvfs_keep)keep;
				r.lose = lose;
				kept += sync_fail_run(&r);
				runs++;
				ck_assert_msg(r.rc == SQLITE_IOERR_FSYNC,
					      "%s: sync %ld of %ld failed: "
					      "INSERT gave %d (%s)", journal, k,
					      n, r.rc, sqlite3_errstr(r.rc));
			}
	printf("powerloss: journal_mode=%s: each of the %ld syncs of a commit "
	       "failed: %d runs, the failed row durable in %d\n",
	       journal, n, runs, kept);
}

START_TEST(test_sync_fail_truncate)
{
	sync_failures("TRUNCATE");
}
END_TEST

START_TEST(test_sync_fail_delete)
{
	sync_failures("DELETE");
}
END_TEST

START_TEST(test_sync_fail_wal)
{
	sync_failures("WAL");
}
END_TEST

/*
 * The knob has teeth. In TRUNCATE mode a commit's last sync makes the
 * journal's truncation (its commit point) durable; when it fails, the
 * truncation is not durable: dropped at the power cut, the row is gone;
 * kept pending and kept at the cut, the row is there; lost, it is gone
 * even though everything unsynced was kept.
 */
START_TEST(test_sync_fail_makes_nothing_durable)
{
	struct sync_run r = {"TRUNCATE", 0, 0, CRASHVFS_KEEP_ALL, 0, 0};

	ck_assert_int_eq(sync_fail_run(&r), 1);
	r.fail_at = r.syncs;
	r.keep = CRASHVFS_DROP_ALL;
	ck_assert_int_eq(sync_fail_run(&r), 0);
	r.keep = CRASHVFS_KEEP_ALL;
	ck_assert_int_eq(sync_fail_run(&r), 1);
	r.lose = 1;
	ck_assert_int_eq(sync_fail_run(&r), 0);
	ck_assert_int_eq(r.rc, SQLITE_IOERR_FSYNC);
}
END_TEST

static TCase *workload_tcase(const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, setup, fixture_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reference_distinct);
	tcase_add_test(tc, test_unsynced_dropped);
	tcase_add_test(tc, test_unsynced_kept);
	tcase_add_test(tc, test_unsynced_torn);
	return tc;
}

static Suite *powerloss_suite(void)
{
	Suite *s = suite_create("powerloss");
	TCase *tc = tcase_create("shim");

	tcase_add_test(tc, test_shim_drops_unsynced);
	tcase_add_test(tc, test_shim_keeps_synced);
	tcase_add_test(tc, test_sync_fail_truncate);
	tcase_add_test(tc, test_sync_fail_delete);
	tcase_add_test(tc, test_sync_fail_wal);
	tcase_add_test(tc, test_sync_fail_makes_nothing_durable);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, workload_tcase("store", store_setup));
	suite_add_tcase(s, workload_tcase("services", svc_setup));
	return s;
}

/* The disk is crashvfs's model, so the real one only adds fsync waits (the
 * audit log's, the reopen's): keep the stores in memory. */
const struct harness harness = {.suite = powerloss_suite,
				.setup = tu_tmpdir_in_memory};
