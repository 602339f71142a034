/*
 * The context's caches, each guarded by its mutex and each keyed on the
 * store's generation (ctx_store_gen): the KMS key material, unwrapped,
 * in one locked region; the read cache of records and ciphertext; the
 * role grants. Nothing here decides a rule: the policy is asked on every
 * use.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ctx_cache.h"
#include "ctx_dir.h"
#include "internal.h"
#include "secretfs/crypto.h"
#include "secretfs/principal.h"
#include "secretfs/store.h"

/* ---- KMS key material cache ------------------------------------------ */

/*
 * Unwrapped KMS material, keyed by (key id, key version). Material never
 * changes for a given pair and ids are never reused, so an entry cannot
 * go stale; the slots are still dropped whenever the generation moves so
 * that a key another process deactivated or deleted does not linger in
 * memory. Key state is checked by the policy on every use from the
 * current record, never from here.
 *
 * The slots are one anonymous mapping made at open, mlock'ed (best
 * effort: RLIMIT_MEMLOCK may refuse) and excluded from core dumps, and
 * wiped at close. crypto.h offers no allocator, and sodium_malloc is
 * only reachable through it; a single region made once gives the same
 * protections that matter here (no swap, no core) without a page-guarded
 * allocation per entry.
 */
#define KMS_SLOTS 32

struct kms_slot {
	int used;
	uint32_t kv;
	char key_id[SFS_ID_MAX + 1];
	unsigned char material[SFS_KEY_BYTES];
};

int ctx_kms_new(struct sfs_ctx *ctx, struct sfs_error *err)
{
	void *m;

	ctx->kms_len = KMS_SLOTS * sizeof(struct kms_slot);
	m = mmap(NULL, ctx->kms_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return sfs_error_set(err, SFS_ENOMEM,
				     "cannot allocate key cache");
	(void)mlock(m, ctx->kms_len);
	(void)madvise(m, ctx->kms_len, MADV_DONTDUMP);
	ctx->kms = m;
	return SFS_OK;
}

void ctx_kms_free(struct sfs_ctx *ctx)
{
	if (!ctx->kms)
		return;
	sfs_crypto_wipe(ctx->kms, ctx->kms_len);
	munlock(ctx->kms, ctx->kms_len);
	munmap(ctx->kms, ctx->kms_len);
	ctx->kms = NULL;
}

static struct kms_slot *kms_lookup(struct sfs_ctx *ctx, const char *key_id,
				   uint32_t kv)
{
	/* the store's generation: it also moves when another program edits
	 * the database (a tampered key blob must not be served from here) */
	uint64_t gen;
	unsigned i;

	/* ctx_read_lock() has just read it for a cached read: once is
	 * enough (it is a pread of the database header) */
	if (ctx->phase == CTX_PH_CACHED)
		gen = ctx->read_gen;
	else
		gen = ctx_store_gen(ctx);

	if (gen != ctx->kms_gen) {
		sfs_crypto_wipe(ctx->kms, ctx->kms_len);
		ctx->kms_gen = gen;
		return NULL;
	}
	for (i = 0; i < KMS_SLOTS; i++)
		if (ctx->kms[i].used && ctx->kms[i].kv == kv &&
		    strcmp(ctx->kms[i].key_id, key_id) == 0)
			return &ctx->kms[i];
	return NULL;
}

int ctx_kms_material(struct sfs_ctx *ctx, const char *key_id, uint32_t kv,
		     unsigned char out[SFS_KEY_BYTES], struct sfs_error *err)
{
	struct sfs_binding b = {ctx->store_id, NULL, 0, key_id, kv};
	struct kms_slot *slot = kms_lookup(ctx, key_id, kv);
	struct sfs_blob wrapped = {NULL, 0};
	int rc;

	if (slot) {
		memcpy(out, slot->material, SFS_KEY_BYTES);
		return SFS_OK;
	}
	if (ctx->phase == CTX_PH_CACHED)
		return CTX_MISS;
	rc = sfs_store_keyver_get(ctx->store, key_id, kv, &wrapped, err);
	/* a KMS key version that is gone or fails authentication leaves
	 * the key unusable: ENOKEY, as issue 5 asks for a hit key blob */
	if (rc == SFS_ENOENT)
		rc = sfs_error_set(err, SFS_ENOKEY,
				   "material of key version %u is missing",
				   (unsigned)kv);
	if (rc != SFS_OK)
		goto out;
	rc = sfs_crypto_kms_unwrap(ctx->crypto, &b, wrapped.data, wrapped.len,
				   out);
	if (rc != SFS_OK) {
		rc = sfs_error_set(err, SFS_ENOKEY,
				   "kms key material failed authentication");
		goto out;
	}
	slot = &ctx->kms[ctx->kms_next++ % KMS_SLOTS];
	slot->used = 1;
	slot->kv = kv;
	ctx_strlcpy(slot->key_id, key_id, sizeof(slot->key_id));
	memcpy(slot->material, out, SFS_KEY_BYTES);
out:
	sfs_blob_release(&wrapped);
	return rc;
}

/* ---- read cache -------------------------------------------------------- */

/*
 * Why: every FUSE lookup, getattr and open asks for the same few records
 * (secret, version, key, KMS material). Read from SQLite, each request
 * cost a transaction: ~8 system calls for SQLite's locks and its
 * hot-journal and header checks, then the statements, and a heap copy
 * of the ciphertext. With the cache a request costs one look at the
 * store's generation (a memory read in WAL mode) and the lookups below.
 *
 * Measured on the 2-CPU dev VM (load ~2, syscalls ~2 us each), one store
 * with a 100 B value, old and new builds side by side. In process, 20k
 * calls: sfs_version_read with its audit line 24-37 us -> 6 us;
 * sfs_secret_get + sfs_version_info (a getattr) 30-43 us -> 3 us.
 * Through the mount, cache=strict, open + read to EOF + close, medians
 * of 61 interleaved rounds of 150: minimal direct_io libfuse file 93 us,
 * before 156 us, after 129 us (daemon CPU per op 60 / 120 / 98 us); the
 * rest is fs/ reading /proc per open (without it: 95 us, 1.03x).
 *
 * Validity: the store's generation (store_sqlite.c: the shared WAL index
 * header, or the file change counter in rollback mode; every commit by
 * any connection of any program moves it: the CLI, another daemon, the
 * sqlite3 tool) is read under the lock before anything is
 * served; when it moved, everything is dropped. A fill is tagged with
 * the generation read before its transaction began, so a commit landing
 * in between only costs one more refill. Fills happen only in read
 * transactions (CTX_PH_FILL), never in a write transaction whose changes
 * might still be rolled back. The ctx's own generation file would not
 * do: it counts only secretfs's writers, and a blob edited by another
 * program must fail authentication at the next read, never be served
 * from here. (SQLite's own page cache trusts the same header.)
 *
 * Slots are direct-mapped by a hash of the lookup string; a collision
 * evicts. Ciphertext is kept up to a byte budget, in refcounted buffers,
 * so that a flush never frees a buffer a reader is decrypting. Nothing
 * secret is cached here: records, wrapped keys and ciphertext only.
 */
#define CACHE_SECRETS	  64
#define CACHE_VERSIONS	  128
#define CACHE_KEYS	  16
#define CACHE_BLOB_BUDGET (1u << 20)

/* What a secret's and a key's slots share: the name or id looked up. */
struct cache_name {
	int used;
	char key[SFS_NAME_MAX + 1];
};

struct cache_secret {
	struct cache_name n;
	struct sfs_secret_rec rec;
};

struct cache_version {
	int used;
	struct sfs_version_rec rec; /* without blobs */
	struct ctx_blobs *blobs;    /* or NULL */
};

struct cache_key {
	struct cache_name n;
	struct sfs_key_rec rec;
};

struct ctx_cache {
	uint64_t gen;
	size_t blob_bytes;
	struct cache_secret secrets[CACHE_SECRETS];
	struct cache_version versions[CACHE_VERSIONS];
	struct cache_key keys[CACHE_KEYS];
};

void ctx_blobs_put(struct ctx_blobs *b)
{
	if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(b);
}

static struct ctx_blobs *blobs_new(const struct sfs_version_rec *v)
{
	size_t dl = v->wrapped_dek.len, cl = v->ciphertext.len;
	struct ctx_blobs *b = malloc(sizeof(*b) + dl + cl + 1);

	if (!b)
		return NULL;
	b->refs = 1;
	b->dek_len = dl;
	b->ct_len = cl;
	b->dek = b->data;
	b->ct = b->data + dl;
	if (dl)
		memcpy(b->dek, v->wrapped_dek.data, dl);
	if (cl)
		memcpy(b->ct, v->ciphertext.data, cl);
	return b;
}

static uint32_t hash_str(const char *p, uint32_t h)
{
	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static void cache_flush(struct ctx_cache *c)
{
	unsigned i;

	for (i = 0; i < CACHE_VERSIONS; i++) {
		ctx_blobs_put(c->versions[i].blobs);
		c->versions[i].blobs = NULL;
		c->versions[i].used = 0;
	}
	for (i = 0; i < CACHE_SECRETS; i++)
		c->secrets[i].n.used = 0;
	for (i = 0; i < CACHE_KEYS; i++)
		c->keys[i].n.used = 0;
	c->blob_bytes = 0;
}

void ctx_cache_free(struct sfs_ctx *ctx)
{
	if (!ctx->cache)
		return;
	cache_flush(ctx->cache);
	free(ctx->cache);
	ctx->cache = NULL;
}

/* Fill only in a read transaction of a context that caches. */
static struct ctx_cache *cache_filling(struct sfs_ctx *ctx)
{
	return ctx->phase == CTX_PH_FILL ? ctx->cache : NULL;
}

int ctx_read_lock(struct sfs_ctx *ctx, struct sfs_error *err)
{
	struct ctx_cache *c;
	uint64_t g;

	pthread_mutex_lock(&ctx->mutex);
	c = ctx->cache;
	if (!c)
		return ctx_begin_locked(ctx, 0, err);
	g = ctx_store_gen(ctx);
	if (g != c->gen) {
		cache_flush(c);
		c->gen = g;
	}
	ctx->read_gen = g;
	ctx->phase = CTX_PH_CACHED;
	return SFS_OK;
}

int ctx_read_fill(struct sfs_ctx *ctx, struct sfs_error *err)
{
	int rc;

	sfs_error_clear(err);
	ctx->phase = CTX_PH_STORE;
	rc = sfs_store_begin(ctx->store, 0, err);
	if (rc == SFS_OK && ctx->cache)
		ctx->phase = CTX_PH_FILL;
	return rc;
}

int ctx_read_unlock(struct sfs_ctx *ctx, int rc, struct sfs_error *err)
{
	if (ctx->phase == CTX_PH_CACHED) {
		ctx->phase = CTX_PH_STORE;
		pthread_mutex_unlock(&ctx->mutex);
		return rc;
	}
	/* after a failed ctx_read_fill() no transaction is open: the
	 * rollback is then a no-op */
	ctx->phase = CTX_PH_STORE;
	return ctx_end(ctx, 0, rc, err);
}

static struct cache_version *version_slot(struct ctx_cache *c,
					  const char *secret_id, uint32_t n)
{
	return &c->versions[hash_str(secret_id, 2166136261u ^ n) %
			    CACHE_VERSIONS];
}

/* Lock held, read transaction: keep v (and its blobs, within budget). */
static void version_put(struct ctx_cache *c, const struct sfs_version_rec *v,
			struct ctx_blobs *b)
{
	struct cache_version *e = version_slot(c, v->secret_id, v->version);
	size_t bytes = b ? b->dek_len + b->ct_len : 0;

	if (e->used && e->rec.version == v->version &&
	    strcmp(e->rec.secret_id, v->secret_id) == 0 && e->blobs && !b)
		return; /* already there, with its blobs */
	if (e->blobs) {
		c->blob_bytes -= e->blobs->dek_len + e->blobs->ct_len;
		ctx_blobs_put(e->blobs);
		e->blobs = NULL;
	}
	e->rec = *v;
	memset(&e->rec.wrapped_dek, 0, sizeof(e->rec.wrapped_dek));
	memset(&e->rec.ciphertext, 0, sizeof(e->rec.ciphertext));
	e->used = 1;
	if (b && c->blob_bytes + bytes <= CACHE_BLOB_BUDGET) {
		__atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
		e->blobs = b;
		c->blob_bytes += bytes;
	}
}

/* The store's version n, its blobs copied into a shared buffer. */
static int version_from_store(struct sfs_ctx *ctx, const char *secret_id,
			      uint32_t n, struct sfs_version_rec *v,
			      struct ctx_blobs **blobs, struct sfs_error *err)
{
	int rc = sfs_store_version_get(ctx->store, secret_id, n, blobs != NULL,
				       v, err);

	if (rc == SFS_OK && blobs && !(*blobs = blobs_new(v)))
		rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
	sfs_version_rec_release(v);
	if (rc == SFS_OK && cache_filling(ctx))
		version_put(ctx->cache, v, blobs ? *blobs : NULL);
	return rc;
}

int ctx_version_load(struct sfs_ctx *ctx, const char *secret_id, uint32_t n,
		     struct sfs_version_rec *v, struct ctx_blobs **blobs,
		     struct sfs_error *err)
{
	struct cache_version *e;

	if (blobs)
		*blobs = NULL;
	if (ctx->phase != CTX_PH_CACHED)
		return version_from_store(ctx, secret_id, n, v, blobs, err);
	e = version_slot(ctx->cache, secret_id, n);
	if (!e->used || e->rec.version != n ||
	    strcmp(e->rec.secret_id, secret_id) != 0 || (blobs && !e->blobs))
		return CTX_MISS;
	*v = e->rec;
	if (blobs) {
		__atomic_add_fetch(&e->blobs->refs, 1, __ATOMIC_ACQ_REL);
		*blobs = e->blobs;
	}
	return SFS_OK;
}

/* May the read cache serve name's record (a secret's or a key's)? Not
 * in the store phase, nor without a cache, nor for a name too long to
 * keep. */
static int name_cacheable(const struct sfs_ctx *ctx, const char *name)
{
	return ctx->phase != CTX_PH_STORE && ctx->cache &&
	       strlen(name) <= SFS_NAME_MAX;
}

/* The cached phase's answer from slot e (NULL: none): SFS_OK when it
 * holds name's record, else CTX_MISS. */
static int name_hit(const struct cache_name *e, const char *name)
{
	return e && e->used && strcmp(e->key, name) == 0 ? SFS_OK : CTX_MISS;
}

static void name_keep(struct cache_name *e, const char *name)
{
	ctx_strlcpy(e->key, name, sizeof(e->key));
	e->used = 1;
}

static struct cache_secret *secret_slot(struct sfs_ctx *ctx, const char *name)
{
	if (!name_cacheable(ctx, name))
		return NULL;
	return &ctx->cache
		    ->secrets[hash_str(name, 2166136261u) % CACHE_SECRETS];
}

static struct cache_key *key_slot(struct sfs_ctx *ctx, const char *name)
{
	if (!name_cacheable(ctx, name))
		return NULL;
	return &ctx->cache->keys[hash_str(name, 2166136261u) % CACHE_KEYS];
}

int ctx_secret_load(struct sfs_ctx *ctx, const char *name,
		    struct sfs_secret_rec *s, struct sfs_error *err)
{
	struct cache_secret *e = secret_slot(ctx, name);
	struct sfs_object o;
	int rc;

	if (ctx->phase == CTX_PH_CACHED) {
		rc = name_hit(e ? &e->n : NULL, name);
		if (rc == SFS_OK)
			*s = e->rec;
		return rc;
	}
	rc = sfs_store_secret_get(ctx->store, name, s, err);
	if (rc == SFS_ENOENT) {
		memset(s, 0, sizeof(*s));
		o = sfs_object_secret(name);
		return sfs_error_about(err, rc, &o, "no such secret");
	}
	if (rc == SFS_OK && e) {
		name_keep(&e->n, name);
		e->rec = *s;
	}
	return rc;
}

int ctx_key_state_fill(struct sfs_policy_state *st, const struct sfs_key_rec *k)
{
	st->key_exists = 1;
	st->key_type = k->type;
	st->key_state = k->state;
	return SFS_OK;
}

int ctx_key_state(struct sfs_ctx *ctx, const char *key,
		  struct sfs_policy_state *st, struct sfs_key_rec *k,
		  struct sfs_error *err)
{
	struct cache_key *e = key_slot(ctx, key);
	int rc;

	if (ctx->phase == CTX_PH_CACHED) {
		rc = name_hit(e ? &e->n : NULL, key);
		if (rc != SFS_OK)
			return rc;
		*k = e->rec;
		return ctx_key_state_fill(st, k);
	}
	rc = sfs_store_key_get(ctx->store, key, k, err);
	if (rc == SFS_ENOENT) {
		sfs_error_clear(err);
		memset(k, 0, sizeof(*k));
		st->key_exists = 0;
		return SFS_OK;
	}
	if (rc != SFS_OK)
		return rc;
	if (e) {
		name_keep(&e->n, key);
		e->rec = *k;
	}
	return ctx_key_state_fill(st, k);
}

void ctx_roles_free(struct sfs_ctx *ctx)
{
	free(ctx->roles);
	ctx->roles = NULL;
	ctx->nroles = 0;
	ctx->roles_valid = 0;
}

void *ctx_array_push(struct ctx_array *a, size_t size)
{
	char *grown = realloc(a->v, (a->n + 1) * size);

	if (!grown)
		return NULL;
	a->v = grown;
	return grown + size * a->n++;
}

static int roles_collect(void *arg, const char *role, const char *principal)
{
	struct role_pair *p = ctx_array_push(arg, sizeof(*p));

	if (!p)
		return SFS_ENOMEM;
	p->role = (unsigned)sfs_role_parse(role);
	ctx_strlcpy(p->name, role, sizeof(p->name));
	ctx_strlcpy(p->principal, principal, sizeof(p->principal));
	return 0;
}

int ctx_grants_read(struct sfs_ctx *ctx, struct role_pair **v, size_t *n,
		    struct sfs_error *err)
{
	struct ctx_array acc = {NULL, 0};
	int rc = sfs_store_role_list(ctx->store, roles_collect, &acc, err);

	if (rc != SFS_OK) {
		free(acc.v);
		acc.v = NULL;
		acc.n = 0;
	}
	*v = acc.v;
	*n = acc.n;
	return rc;
}

/* Lock held. Re-read the grants when another change landed. */
static int roles_refresh(struct sfs_ctx *ctx, struct sfs_error *err)
{
	/* the store's generation: it also sees grants edited by another
	 * program */
	uint64_t gen = ctx_store_gen(ctx);
	struct role_pair *v;
	size_t n;
	int rc;

	if (ctx->roles_valid && ctx->roles_gen == gen)
		return SFS_OK;
	rc = sfs_store_begin(ctx->store, 0, err);
	if (rc != SFS_OK)
		return rc;
	rc = ctx_grants_read(ctx, &v, &n, err);
	sfs_store_rollback(ctx->store);
	if (rc != SFS_OK)
		return ctx_fail(err, rc, "cannot read role grants");
	ctx_roles_free(ctx);
	ctx->roles = v;
	ctx->nroles = n;
	ctx->roles_gen = gen;
	ctx->roles_valid = 1;
	return SFS_OK;
}

int sfs_ctx_resolve_roles(struct sfs_ctx *ctx, struct sfs_caller *c,
			  struct sfs_error *err)
{
	size_t i;
	int rc;

	sfs_error_clear(err);
	if (c->admin || c->uid == 0 ||
	    (ctx->has_owner && c->uid == ctx->owner_uid)) {
		c->roles = SFS_ROLE_ALL;
		return SFS_OK;
	}
	pthread_mutex_lock(&ctx->mutex);
	rc = roles_refresh(ctx, err);
	c->roles = 0;
	for (i = 0; rc == SFS_OK && i < ctx->nroles; i++)
		if (sfs_principal_matches(ctx->roles[i].principal, c))
			c->roles |= ctx->roles[i].role;
	pthread_mutex_unlock(&ctx->mutex);
	return rc;
}

int ctx_cache_new(struct sfs_ctx *ctx, struct sfs_error *err)
{
	ctx->cache = calloc(1, sizeof(*ctx->cache));
	if (!ctx->cache)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	ctx->cache->gen = ctx_store_gen(ctx);
	return SFS_OK;
}

void ctx_cache_reset(struct sfs_ctx *ctx, int regen)
{
	if (!ctx->cache)
		return;
	cache_flush(ctx->cache);
	if (regen)
		ctx->cache->gen = ctx_store_gen(ctx);
}
