/* clang-format off */
/*
 * libFuzzer target: a stateful sequence of core operations checked
 * against a reference model. Each input is decoded as up to 48
 * operations (secret create, version add/read/deactivate/activate/
 * destroy/set-default, secret activate/deactivate/delete, key create/
 * deactivate/activate/rotate, change-key) run by the administrator on a
 * fresh store, and at the same time on the tiny model of SPEC §2 below,
 * written from the SPEC's table rather than from core/. Every result code
 * must match the model's, every value read must be the bytes the model
 * holds, and at the end every secret's status, default, latest version
 * and version states, and every key's state and version, must match.
 *
 * Where the SPEC lists several codes without an order, the model follows
 * policy.h's documented order: name, then key, then value, then taken
 * names (create); secret status, version, key (read).
 *
 * Built and run by scripts/fuzz; by hand, from the top of the tree:
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore/include tests/fuzz/fuzz_ops.c core/[a-z]*.c $(pkg-config --cflags --libs libsodium jansson sqlite3) -lpthread -o build/fuzz_ops
 * The store lives in $TMPDIR (default /dev/shm, where fsync is cheap).
 */
/* clang-format on */
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secretfs/ctx.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSEC	4 /* secrets s0..s3 */
#define NKEY	3 /* service, k1, k2 */
#define MAXOPS	48
#define MAXV	(MAXOPS + 2)
#define VAL_MAX 24 /* value bytes taken from the input */

/* ---- the model ------------------------------------------------------- */

struct m_version {
	int state; /* enum sfs_state */
	int key;   /* index of the key that wrapped it */
	size_t len;
	unsigned char val[VAL_MAX];
};

struct m_secret {
	int exists, status, key;
	uint32_t dflt, latest;
	struct m_version v[MAXV + 1]; /* by number */
};

struct m_key {
	int exists, state;
	uint32_t version;
	char id[SFS_ID_MAX + 1];
};

struct model {
	struct m_secret s[NSEC];
	struct m_key k[NKEY];
};

static const char *const key_names[NKEY] = {"service", "k1", "k2"};

static uint32_t m_newest_active(const struct m_secret *s)
{
	uint32_t n;

	for (n = s->latest; n >= 1; n--)
		if (s->v[n].state == SFS_STATE_ACTIVE)
			return n;
	return 0;
}

/* The version numbered n exists and is not destroyed. */
static int m_live(const struct m_secret *s, uint32_t n)
{
	return n >= 1 && n <= s->latest && s->v[n].state != SFS_STATE_DESTROYED;
}

static int m_key_usable(const struct model *m, int k)
{
	return m->k[k].exists && m->k[k].state == SFS_STATE_ACTIVE;
}

static int m_value_rule(size_t len)
{
	if (len == 0)
		return SFS_EINVAL;
	return len > SFS_VALUE_MAX ? SFS_EFBIG : SFS_OK;
}

static void m_add(struct m_secret *s, const unsigned char *v, size_t len)
{
	struct m_version *nv = &s->v[++s->latest];

	nv->state = SFS_STATE_ACTIVE;
	nv->key = s->key;
	nv->len = len < VAL_MAX ? len : VAL_MAX; /* long values: a prefix */
	memcpy(nv->val, v, nv->len);
	s->dflt = s->latest;
}

/* name_ok: SFS_OK or the name rule's code. */
static int m_create(struct model *m, int j, int name_ok, int k,
		    const unsigned char *v, size_t len, int has_value)
{
	struct m_secret *s;

	if (name_ok != SFS_OK)
		return name_ok;
	if (!m_key_usable(m, k))
		return SFS_ENOKEY;
	if (has_value && m_value_rule(len) != SFS_OK)
		return m_value_rule(len);
	s = &m->s[j];
	if (s->exists)
		return SFS_EEXIST;
	memset(s, 0, sizeof(*s));
	s->exists = 1;
	s->status = SFS_STATE_ACTIVE;
	s->key = k;
	if (has_value)
		m_add(s, v, len);
	return SFS_OK;
}

static int m_version_add(struct model *m, int j, const unsigned char *v,
			 size_t len, uint32_t expect)
{
	struct m_secret *s = &m->s[j];

	if (!s->exists)
		return SFS_ENOENT;
	if (s->status != SFS_STATE_ACTIVE)
		return SFS_EKEYREVOKED;
	if (!m_key_usable(m, s->key))
		return SFS_ENOKEY;
	if (m_value_rule(len) != SFS_OK)
		return m_value_rule(len);
	if (expect && expect != s->latest + 1)
		return SFS_EEXIST;
	if (s->latest == MAXV)
		abort(); /* MAXOPS keeps us below */
	m_add(s, v, len);
	return SFS_OK;
}

/* *n becomes the version read (the default when 0). */
static int m_read(const struct model *m, int j, uint32_t *n)
{
	const struct m_secret *s = &m->s[j];

	if (!s->exists)
		return SFS_ENOENT;
	if (s->status != SFS_STATE_ACTIVE)
		return SFS_EKEYREVOKED;
	if (*n == 0)
		*n = s->dflt;
	if (!m_live(s, *n))
		return SFS_ENOENT;
	if (s->v[*n].state != SFS_STATE_ACTIVE)
		return SFS_EKEYREVOKED;
	return m_key_usable(m, s->v[*n].key) ? SFS_OK : SFS_ENOKEY;
}

/* Activate, deactivate or destroy version n; the default follows. */
static int m_set_state(struct model *m, int j, uint32_t n, int to)
{
	struct m_secret *s = &m->s[j];

	/* destroy: a destroyed version is a no-op; a version needs it or its
	 * secret deactivated (EBUSY: deactivate it first) */
	if (to == SFS_STATE_DESTROYED && s->exists && n >= 1 &&
	    n <= s->latest) {
		if (s->v[n].state == SFS_STATE_DESTROYED)
			return SFS_OK;
		if (s->v[n].state == SFS_STATE_ACTIVE &&
		    s->status == SFS_STATE_ACTIVE)
			return SFS_EBUSY;
	}
	if (!s->exists || !m_live(s, n))
		return SFS_ENOENT;
	s->v[n].state = to;
	if (to == SFS_STATE_ACTIVE) {
		if (!s->dflt)
			s->dflt = n;
		return SFS_OK;
	}
	if (s->dflt == n)
		s->dflt = m_newest_active(s);
	if (!m_newest_active(s)) {
		s->dflt = 0;
		s->status = SFS_STATE_DEACTIVATED;
	}
	return SFS_OK;
}

static int m_set_default(struct model *m, int j, uint32_t n)
{
	struct m_secret *s = &m->s[j];

	if (!s->exists || !m_live(s, n))
		return SFS_ENOENT;
	if (s->v[n].state != SFS_STATE_ACTIVE)
		return SFS_EINVAL;
	s->dflt = n;
	return SFS_OK;
}

static int m_secret_status(struct model *m, int j, int active)
{
	struct m_secret *s = &m->s[j];

	if (!s->exists)
		return SFS_ENOENT;
	if (active && !m_newest_active(s))
		return SFS_EINVAL;
	s->status = active ? SFS_STATE_ACTIVE : SFS_STATE_DEACTIVATED;
	return SFS_OK;
}

static int m_secret_delete(struct model *m, int j)
{
	struct m_secret *s = &m->s[j];
	uint32_t n;

	if (!s->exists)
		return SFS_ENOENT;
	if (s->status == SFS_STATE_ACTIVE)
		return SFS_EBUSY;
	for (n = 1; n <= s->latest; n++)
		if (m_live(s, n))
			return SFS_ENOTEMPTY;
	s->exists = 0;
	return SFS_OK;
}

static int m_change_key(struct model *m, int j, int k)
{
	if (!m->s[j].exists)
		return SFS_ENOENT;
	if (!m_key_usable(m, k))
		return SFS_ENOKEY;
	m->s[j].key = k;
	return SFS_OK;
}

static int m_key_create(struct model *m, int k)
{
	if (m->k[k].exists)
		return SFS_EEXIST;
	m->k[k].exists = 1;
	m->k[k].state = SFS_STATE_ACTIVE;
	m->k[k].version = 1;
	return SFS_OK;
}

/* The service key cannot be deactivated; activating it changes nothing. */
static int m_key_state(struct model *m, int k, int active)
{
	if (!m->k[k].exists)
		return SFS_ENOENT;
	if (!active && k == 0)
		return SFS_EPERM;
	m->k[k].state = active ? SFS_STATE_ACTIVE : SFS_STATE_DEACTIVATED;
	return SFS_OK;
}

static int m_key_rotate(struct model *m, int k)
{
	if (!m->k[k].exists)
		return SFS_ENOENT;
	m->k[k].version++;
	return SFS_OK;
}

/* ---- the input ------------------------------------------------------- */

struct in {
	const uint8_t *p;
	size_t n;
};

/* Next byte; zeros once the input runs out. */
static unsigned byte(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* A value: 1..VAL_MAX bytes of input, or the two sizes the SPEC
 * refuses (0 and 65,537). *big is the heap buffer of the latter. */
static size_t value(struct in *in, unsigned char *buf, unsigned char **big)
{
	unsigned b = byte(in);
	size_t len, i;

	if (b == 254)
		return 0;
	if (b == 255) {
		*big = calloc(SFS_VALUE_MAX + 1, 1);
		if (!*big)
			abort();
		return SFS_VALUE_MAX + 1;
	}
	len = 1 + b % VAL_MAX;
	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)byte(in);
	return len;
}

/* ---- the real core --------------------------------------------------- */

struct run {
	struct sfs_ctx *ctx;
	struct sfs_caller c;
	struct sfs_error err;
	struct model m;
	int op; /* index, for messages */
};

static void fail(const struct run *r, const char *what, int got, int want)
{
	fprintf(stderr,
		"fuzz_ops: op %d %s: core gave %d (%s: %s), model %d "
		"(%s)\n",
		r->op, what, got, sfs_err_name(got), r->err.msg, want,
		sfs_err_name(want));
	abort();
}

static void expect_rc(const struct run *r, const char *what, int got, int want)
{
	if (got != want)
		fail(r, what, got, want);
}

static const char *sec_name(int j)
{
	static const char *const names[NSEC] = {"s0", "s1", "s2", "s3"};

	return names[j];
}

/* Secret names for create: four valid ones, then one bad and one long. */
static const char *create_name(int j, int *rule)
{
	static char long_name[SFS_NAME_MAX + 2];

	*rule = SFS_OK;
	if (j < NSEC)
		return sec_name(j);
	if (j == NSEC) {
		*rule = SFS_EINVAL;
		return "-bad";
	}
	memset(long_name, 'x', SFS_NAME_MAX + 1);
	*rule = SFS_ENAMETOOLONG;
	return long_name;
}

static void op_create(struct run *r, struct in *in)
{
	unsigned char buf[VAL_MAX], *big = NULL;
	struct sfs_secret_new n;
	int j = (int)(byte(in) % (NSEC + 2)), k = (int)(byte(in) % NKEY);
	int has_value = (int)(byte(in) & 1), rule, want, got;
	size_t len = has_value ? value(in, buf, &big) : 0;

	memset(&n, 0, sizeof(n));
	n.name = create_name(j, &rule);
	n.key = key_names[k];
	n.value = has_value ? (big ? big : buf) : NULL;
	n.value_len = len;
	got = sfs_secret_create(r->ctx, &r->c, &n, NULL, &r->err);
	want =
	    m_create(&r->m, j < NSEC ? j : 0, rule, k, n.value, len, has_value);
	free(big);
	expect_rc(r, "secret create", got, want);
}

static void op_add(struct run *r, struct in *in)
{
	unsigned char buf[VAL_MAX], *big = NULL;
	int j = (int)(byte(in) % NSEC), want, got;
	unsigned how = byte(in);
	uint32_t latest = r->m.s[j].latest, expect;
	size_t len = value(in, buf, &big);

	expect = how % 4 == 0	? latest + 1
		 : how % 4 == 1 ? latest
		 : how % 4 == 2 ? 0
				: how / 4;
	got = sfs_version_add(r->ctx, &r->c, sec_name(j), big ? big : buf, len,
			      expect, NULL, &r->err);
	want = m_version_add(&r->m, j, big ? big : buf, len, expect);
	free(big);
	expect_rc(r, "version add", got, want);
}

static void check_read(struct run *r, int j, uint32_t n)
{
	struct sfs_value v = {NULL, 0};
	struct sfs_version_rec info;
	uint32_t mn = n;
	int want = m_read(&r->m, j, &mn);
	int got =
	    sfs_version_read(r->ctx, &r->c, sec_name(j), n, &v, &info, &r->err);
	const struct m_version *mv = &r->m.s[j].v[mn];

	expect_rc(r, "version read", got, want);
	if (got == SFS_OK && (info.version != mn || v.len != mv->len ||
			      memcmp(v.data, mv->val, v.len) != 0)) {
		fprintf(stderr,
			"fuzz_ops: op %d: secret s%d version %u: "
			"read the wrong value\n",
			r->op, j, (unsigned)mn);
		abort();
	}
	sfs_value_release(&v);
}

static void op_read(struct run *r, struct in *in)
{
	int j = (int)(byte(in) % NSEC);

	check_read(r, j, byte(in) % 6);
}

/* kind: 0 deactivate, 1 activate, 2 destroy, 3 set default */
static void op_version(struct run *r, struct in *in, int kind)
{
	static const char *const what[] = {
	    "version deactivate", "version activate", "version destroy",
	    "version set-default"};
	static const int to[] = {SFS_STATE_DEACTIVATED, SFS_STATE_ACTIVE,
				 SFS_STATE_DESTROYED};
	int j = (int)(byte(in) % NSEC), got, want;
	uint32_t n = byte(in) % 6;
	const char *name = sec_name(j);

	if (kind == 3)
		got = sfs_version_set_default(r->ctx, &r->c, name, n, &r->err);
	else if (kind == 2)
		got = sfs_version_destroy(r->ctx, &r->c, name, n, &r->err);
	else
		got = sfs_version_set_state(r->ctx, &r->c, name, n, kind,
					    &r->err);
	want = kind == 3 ? m_set_default(&r->m, j, n)
			 : m_set_state(&r->m, j, n, to[kind]);
	expect_rc(r, what[kind], got, want);
}

/* kind: 0 deactivate, 1 activate, 2 delete, 3 change key */
static void op_secret(struct run *r, struct in *in, int kind)
{
	static const char *const what[] = {"secret deactivate",
					   "secret activate", "secret delete",
					   "secret change-key"};
	int j = (int)(byte(in) % NSEC), k = (int)(byte(in) % NKEY), got, want;
	const char *name = sec_name(j);

	if (kind == 3) {
		got = sfs_secret_change_key(r->ctx, &r->c, name, key_names[k],
					    &r->err);
		want = m_change_key(&r->m, j, k);
	} else if (kind == 2) {
		got = sfs_secret_delete(r->ctx, &r->c, name, &r->err);
		want = m_secret_delete(&r->m, j);
	} else {
		got = sfs_secret_set_status(r->ctx, &r->c, name, kind, &r->err);
		want = m_secret_status(&r->m, j, kind);
	}
	expect_rc(r, what[kind], got, want);
}

/* kind: 0 deactivate, 1 activate, 2 create, 3 rotate */
static void op_key(struct run *r, struct in *in, int kind)
{
	static const char *const what[] = {"key deactivate", "key activate",
					   "key create", "key rotate"};
	struct sfs_key_rec rec;
	int k = (int)(byte(in) % NKEY), got, want;

	if (kind == 2) {
		got = sfs_key_create(r->ctx, &r->c, key_names[k], NULL, &rec,
				     &r->err);
		want = m_key_create(&r->m, k);
		if (got == SFS_OK)
			memcpy(r->m.k[k].id, rec.id, sizeof(rec.id));
	} else if (kind == 3) {
		got =
		    sfs_key_rotate(r->ctx, &r->c, key_names[k], NULL, &r->err);
		want = m_key_rotate(&r->m, k);
	} else {
		got = sfs_key_set_state(r->ctx, &r->c, key_names[k], kind,
					&r->err);
		want = m_key_state(&r->m, k, kind);
	}
	expect_rc(r, what[kind], got, want);
}

static void one_op(struct run *r, struct in *in)
{
	unsigned op = byte(in) % 16;

	switch (op) {
	case 0:
		op_create(r, in);
		break;
	case 1:
	case 2:
		op_add(r, in);
		break;
	case 3:
		op_read(r, in);
		break;
	case 4:
	case 5:
	case 6:
	case 7:
		op_version(r, in, (int)op - 4);
		break;
	case 8:
	case 9:
	case 10:
	case 11:
		op_secret(r, in, (int)op - 8);
		break;
	default:
		op_key(r, in, (int)op - 12);
		break;
	}
}

/* ---- the final comparison -------------------------------------------- */

struct states {
	const struct m_secret *s;
	uint32_t seen;
	int bad;
};

static int version_cb(void *arg, const struct sfs_version_rec *v)
{
	struct states *st = arg;

	st->seen++;
	if (v->version != st->seen || v->version > st->s->latest ||
	    v->state != st->s->v[v->version].state)
		st->bad = 1;
	return 0;
}

static void check_secret(struct run *r, int j)
{
	const struct m_secret *s = &r->m.s[j];
	struct states st = {s, 0, 0};
	struct sfs_secret_rec rec;
	uint32_t n;
	int full = 0, got;

	got = sfs_secret_get(r->ctx, &r->c, sec_name(j), &rec, &full, &r->err);
	expect_rc(r, "final secret get", got, s->exists ? SFS_OK : SFS_ENOENT);
	if (!s->exists)
		return;
	got = sfs_version_list(r->ctx, &r->c, sec_name(j), 1, version_cb, &st,
			       &r->err);
	expect_rc(r, "final version list", got, SFS_OK);
	if (!full || rec.status != s->status ||
	    rec.default_version != s->dflt || rec.latest_version != s->latest ||
	    st.bad || st.seen != s->latest ||
	    strcmp(rec.kms_key_id, r->m.k[s->key].id) != 0) {
		fprintf(stderr,
			"fuzz_ops: end: secret s%d: status %d default "
			"%u latest %u, model %d %u %u%s\n",
			j, rec.status, (unsigned)rec.default_version,
			(unsigned)rec.latest_version, s->status,
			(unsigned)s->dflt, (unsigned)s->latest,
			st.bad || st.seen != s->latest ? "; version states "
							 "differ"
						       : "");
		abort();
	}
	for (n = 0; n <= s->latest; n++)
		check_read(r, j, n);
}

static void check_key(struct run *r, int k)
{
	const struct m_key *m = &r->m.k[k];
	struct sfs_key_rec rec;
	int got = sfs_key_get(r->ctx, &r->c, key_names[k], &rec, &r->err);

	expect_rc(r, "final key get", got, m->exists ? SFS_OK : SFS_ENOENT);
	if (m->exists &&
	    (rec.state != m->state || rec.current_version != m->version)) {
		fprintf(stderr,
			"fuzz_ops: end: key %s: state %d version %u, "
			"model %d %u\n",
			key_names[k], rec.state, (unsigned)rec.current_version,
			m->state, (unsigned)m->version);
		abort();
	}
}

/* ---- one input ------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static char *tmp_dir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	if (asprintf(&dir, "%s/sfs-fuzz-ops-XXXXXX",
		     base && *base ? base : "/dev/shm") < 0 ||
	    !mkdtemp(dir))
		abort();
	return dir;
}

static const char *copy_to; /* copy_one's destination directory */

/* Copy one file of the template store, mode kept (the master key must
 * stay 0400). */
static int copy_one(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	char to[4096], buf[65536];
	int in, out;
	ssize_t n;

	if (flag != FTW_F)
		return 0;
	snprintf(to, sizeof(to), "%s/%s", copy_to, path + ftw->base);
	in = open(path, O_RDONLY | O_CLOEXEC);
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		   sb->st_mode & 0777);
	if (in < 0 || out < 0)
		abort();
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			abort();
	close(in);
	close(out);
	return n < 0;
}

static char *template; /* the store every input starts from */

static void template_remove(void)
{
	nftw(template, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(template);
}

/* A fresh store: a copy of one made by sfs_ctx_init at the first call
 * (init costs more than the operations of a typical input). */
static char *store_new(struct run *r)
{
	struct sfs_ctx_options o;
	struct sfs_key_rec svc;
	char *dir = tmp_dir();

	memset(&o, 0, sizeof(o));
	if (!template) {
		template = tmp_dir();
		o.store_dir = template;
		if (sfs_ctx_init(&o, &r->err) != SFS_OK)
			goto fail;
		atexit(template_remove);
	}
	copy_to = dir;
	if (nftw(template, copy_one, 8, FTW_PHYS))
		abort();
	o.store_dir = dir;
	if (sfs_ctx_open(&r->ctx, &o, &r->err) != SFS_OK ||
	    sfs_key_get(r->ctx, &r->c, "service", &svc, &r->err) != SFS_OK)
		goto fail;
	r->m.k[0].exists = 1;
	r->m.k[0].state = SFS_STATE_ACTIVE;
	r->m.k[0].version = svc.current_version;
	memcpy(r->m.k[0].id, svc.id, sizeof(svc.id));
	return dir;
fail:
	fprintf(stderr, "fuzz_ops: store: %s\n", r->err.msg);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run r;
	struct in in = {data, size};
	char *dir;
	int j;

	memset(&r, 0, sizeof(r));
	unsetenv("SECRETFS_MASTER_KEY");
	unsetenv("SECRETFS_PASSPHRASE_FILE");
	sfs_caller_self(&r.c);
	dir = store_new(&r);
	for (r.op = 0; r.op < MAXOPS && in.n; r.op++)
		one_op(&r, &in);
	for (j = 0; j < NSEC; j++)
		check_secret(&r, j);
	for (j = 0; j < NKEY; j++)
		check_key(&r, j);
	sfs_ctx_close(r.ctx);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}
