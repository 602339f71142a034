/*
 * The context: one opened store with its master key proven.
 *
 * init makes a store in one go (directory, master key or Argon2id
 * parameters, database with store id, canary and service key, audit log,
 * generation file) in a new or empty, trusted directory (storedir.h), and
 * removes whatever it made if any step fails. open checks the directory
 * and every name in it first, then proves the master key against the
 * canary before anything else is touched, so a wrong key or an untrusted
 * store changes nothing. Every copy of the master key is
 * wiped once the KEK is derived; only struct sfs_crypto holds key material
 * for long, besides the small KMS cache below.
 *
 * The services (keys.c, secret.c, version.c, role.c) share the helpers at
 * the end of this file: lock + transaction, end + generation bump, audit,
 * policy state gathering. See internal.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/ctx.h"
#include "secretfs/principal.h"
#include "secretfs/store.h"
#include "secretfs/storedir.h"

#define KEY_NAME       "master.key"
#define AUDIT_NAME     "audit.log"
#define GEN_NAME       "generation"
#define KDF_BLOB_BYTES (SFS_SALT_BYTES + 16)

/* ---- small helpers ---------------------------------------------------- */

void ctx_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int ctx_fail(struct sfs_error *err, int code, const char *fmt, ...)
{
	char subject[200];
	va_list ap;

	if (!err)
		return code;
	if (err->code == code && err->msg[0])
		return code;
	va_start(ap, fmt);
	vsnprintf(subject, sizeof(subject), fmt, ap);
	va_end(ap);
	return sfs_error_set(err, code, "%s: %s", subject, sfs_strerror(code));
}

int ctx_refuse(struct sfs_error *err, enum sfs_action act, int rc,
	       const struct sfs_policy_state *st, const char *fmt, ...)
{
	char subject[200], buf[128];
	va_list ap;

	if (!err)
		return rc;
	va_start(ap, fmt);
	vsnprintf(subject, sizeof(subject), fmt, ap);
	va_end(ap);
	return sfs_error_set(err, rc, "%s: %s", subject,
			     sfs_policy_why(act, rc, st, buf, sizeof(buf)));
}

static int path_join(char *out, size_t cap, const char *dir, const char *name,
		     struct sfs_error *err)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap)
		return sfs_error_set(err, SFS_EINVAL, "path '%s/%s' too long",
				     dir, name);
	return SFS_OK;
}

/* Remember a failure for sfs_ctx_last_error(). Lock-free: the ring slot
 * is claimed atomically, then published. */
static void note_error(struct sfs_ctx *ctx, const char *msg)
{
	unsigned i = __atomic_fetch_add(&ctx->errpos, 1, __ATOMIC_RELAXED);
	char *slot = ctx->errbuf[i % CTX_ERRBUFS];

	ctx_strlcpy(slot, msg, sizeof(ctx->errbuf[0]));
	__atomic_store_n(&ctx->last_error, slot, __ATOMIC_RELEASE);
}

const char *sfs_ctx_last_error(struct sfs_ctx *ctx)
{
	return __atomic_load_n(&ctx->last_error, __ATOMIC_ACQUIRE);
}

/* ---- store directory ------------------------------------------------- */

int sfs_ctx_default_dir(char *out, size_t cap, struct sfs_error *err)
{
	const char *env = getenv("SECRETFS_STORE");
	const char *base;
	int n;

	if (env && *env)
		n = snprintf(out, cap, "%s", env);
	else if (getuid() == 0)
		n = snprintf(out, cap, "/var/lib/secretfs");
	else if ((base = getenv("XDG_DATA_HOME")) && *base)
		n = snprintf(out, cap, "%s/secretfs", base);
	else if ((base = getenv("HOME")) && *base)
		n = snprintf(out, cap, "%s/.local/share/secretfs", base);
	else
		return sfs_error_set(err, SFS_EINVAL,
				     "cannot find the store: set "
				     "SECRETFS_STORE or HOME");
	if (n < 0 || (size_t)n >= cap)
		return sfs_error_set(err, SFS_EINVAL,
				     "store directory name too long");
	return SFS_OK;
}

static int resolve_dir(const struct sfs_ctx_options *o, char *out, size_t cap,
		       struct sfs_error *err)
{
	if (!o->store_dir)
		return sfs_ctx_default_dir(out, cap, err);
	if (strlen(o->store_dir) >= cap || !*o->store_dir)
		return sfs_error_set(err, SFS_EINVAL,
				     "bad store directory name");
	ctx_strlcpy(out, o->store_dir, cap);
	return SFS_OK;
}

/* mkdir -p; the leaf gets 0700. *created is set when the leaf was made. */
static int mkdir_p(const char *dir, int *created, struct sfs_error *err)
{
	char path[PATH_MAX];
	char *p;

	*created = 0;
	ctx_strlcpy(path, dir, sizeof(path));
	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(path, 0700) == 0)
		*created = 1;
	else if (errno != EEXIST)
		goto fail;
	return SFS_OK;
fail:
	return sfs_error_set(err, SFS_EIO, "cannot create directory '%s': %s",
			     path, sfs_strerrno(errno));
}

/* ---- the names present in a directory, to undo a failed init --------- */

struct dir_snapshot {
	char **names;
	size_t n;
};

static void snapshot_free(struct dir_snapshot *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	s->names = NULL;
	s->n = 0;
}

static int snapshot_has(const struct dir_snapshot *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return 1;
	return 0;
}

/* Take a snapshot of dir's names (s == NULL: none), or with undo remove
 * every regular file not in it, then dir itself if it ends up empty and
 * remove_dir is set. */
static int snapshot_walk(const char *dir, struct dir_snapshot *s, int undo,
			 int remove_dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];
	char **grown;

	if (!d)
		return SFS_EIO;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (undo) {
			if (snapshot_has(s, e->d_name))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
			continue;
		}
		grown = realloc(s->names, (s->n + 1) * sizeof(*grown));
		if (!grown || !(grown[s->n] = strdup(e->d_name))) {
			if (grown)
				s->names = grown;
			closedir(d);
			return SFS_ENOMEM;
		}
		s->names = grown;
		s->n++;
	}
	closedir(d);
	if (undo && remove_dir)
		rmdir(dir);
	return SFS_OK;
}

/* ---- master key -------------------------------------------------------- */

static void kdf_encode(const struct sfs_kdf_params *p,
		       unsigned char out[KDF_BLOB_BYTES])
{
	int i;

	memcpy(out, p->salt, SFS_SALT_BYTES);
	for (i = 0; i < 8; i++) {
		out[SFS_SALT_BYTES + i] =
		    (unsigned char)(p->opslimit >> (8 * i));
		out[SFS_SALT_BYTES + 8 + i] =
		    (unsigned char)(p->memlimit >> (8 * i));
	}
}

static int kdf_decode(const struct sfs_blob *b, struct sfs_kdf_params *p,
		      struct sfs_error *err)
{
	int i;

	if (b->len != KDF_BLOB_BYTES)
		return sfs_error_set(err, SFS_EBADMSG,
				     "store's passphrase parameters are "
				     "corrupt");
	memcpy(p->salt, b->data, SFS_SALT_BYTES);
	p->opslimit = p->memlimit = 0;
	for (i = 0; i < 8; i++) {
		p->opslimit |= (uint64_t)b->data[SFS_SALT_BYTES + i] << (8 * i);
		p->memlimit |= (uint64_t)b->data[SFS_SALT_BYTES + 8 + i]
			       << (8 * i);
	}
	return SFS_OK;
}

static int derive_from(char *pass, size_t len, const struct sfs_kdf_params *p,
		       unsigned char master[SFS_KEY_BYTES],
		       struct sfs_error *err)
{
	int rc = sfs_crypto_passphrase_derive(pass, len, p, master, err);

	sfs_crypto_free_secret(pass, len + 1);
	return rc;
}

/* The passphrase for an existing store: file option, environment, then
 * the prompt. */
static int passphrase_master(const struct sfs_ctx_options *o,
			     const struct sfs_kdf_params *p,
			     unsigned char master[SFS_KEY_BYTES],
			     struct sfs_error *err)
{
	const char *file = o->passphrase_file;
	char *pass = NULL;
	size_t len = 0;
	int rc;

	if (!file)
		file = getenv("SECRETFS_PASSPHRASE_FILE");
	if (file && !*file)
		file = NULL; /* set but empty: as unset */
	if (file)
		rc = sfs_crypto_passphrase_read(file, &pass, &len, err);
	else if (o->ask_passphrase)
		rc = o->ask_passphrase(o->ask_arg, &pass, &len);
	else
		rc = SFS_EMASTER;
	if (rc != SFS_OK && !file)
		/* no file, and no terminal to ask on (or nothing typed) */
		rc = sfs_error_set(err, SFS_EMASTER,
				   "the store needs its passphrase: set "
				   "SECRETFS_PASSPHRASE_FILE or run on a "
				   "terminal");
	if (rc != SFS_OK) {
		if (pass)
			sfs_crypto_free_secret(pass, len + 1);
		return ctx_fail(err, rc, "cannot read the passphrase");
	}
	return derive_from(pass, len, p, master, err);
}

/* The key file: option, environment, else DIR/master.key. */
static int key_path(const struct sfs_ctx_options *o, const char *dir, char *out,
		    size_t cap, struct sfs_error *err)
{
	const char *p = o->master_key;

	if (!p || !*p)
		p = getenv("SECRETFS_MASTER_KEY");
	if (p && *p) {
		if (strlen(p) >= cap)
			return sfs_error_set(err, SFS_EINVAL,
					     "master key path too long");
		ctx_strlcpy(out, p, cap);
		return SFS_OK;
	}
	return path_join(out, cap, dir, KEY_NAME, err);
}

/* ---- generation -------------------------------------------------------- */

/*
 * The generation is an 8-byte counter in DIR/generation, mapped shared:
 * every committed change (from any process: every writer goes through
 * the core) bumps it with one atomic add, and sfs_ctx_generation() is one
 * atomic load. The daemon validates its caches on every request this
 * way in nanoseconds, with no database access and no syscall.
 */
static int gen_create(const char *dir, struct sfs_error *err)
{
	int fd, rc = SFS_OK;

	fd = sfs_storedir_open(dir, GEN_NAME, O_RDWR | O_CREAT, 0600, err);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, sizeof(uint64_t)) != 0)
		rc = sfs_error_set(err, SFS_EIO, "cannot create '%s/%s': %s",
				   dir, GEN_NAME, sfs_strerrno(errno));
	close(fd);
	return rc;
}

static void gen_map(struct sfs_ctx *ctx, int writable)
{
	struct stat st;
	void *m;
	int fd;

	ctx->gen = &ctx->gen_local;
	fd = sfs_storedir_open(ctx->dir, GEN_NAME,
			       writable ? O_RDWR | O_CREAT : O_RDONLY, 0600,
			       NULL);
	if (fd < 0)
		return; /* a read-only store never changes: local is fine */
	if (fstat(fd, &st) == 0 && st.st_size < (off_t)sizeof(uint64_t) &&
	    writable && ftruncate(fd, sizeof(uint64_t)) == 0)
		st.st_size = sizeof(uint64_t);
	if (st.st_size >= (off_t)sizeof(uint64_t)) {
		m = mmap(NULL, sizeof(uint64_t),
			 PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
			 fd, 0);
		if (m != MAP_FAILED) {
			ctx->gen = m;
			ctx->gen_mapped = 1;
		}
	}
	close(fd);
}

uint64_t sfs_ctx_generation(struct sfs_ctx *ctx)
{
	return __atomic_load_n(ctx->gen, __ATOMIC_ACQUIRE);
}

/*
 * What the caches are keyed on: the store's generation mixed with this
 * host's DIR/generation, compared for equality only. A writer of this
 * host moves the latter before it returns, so a store that learns of
 * changes late (a shared one, through its listener) is still exact for
 * its own host's writers.
 */
uint64_t ctx_store_gen(struct sfs_ctx *ctx)
{
	return sfs_store_generation(ctx->store) ^
	       (sfs_ctx_generation(ctx) * UINT64_C(0x9E3779B97F4A7C15));
}

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

static int kms_region_new(struct sfs_ctx *ctx, struct sfs_error *err)
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

static void kms_region_free(struct sfs_ctx *ctx)
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

struct cache_secret {
	int used;
	char key[SFS_NAME_MAX + 1]; /* the name or id looked up */
	struct sfs_secret_rec rec;
};

struct cache_version {
	int used;
	struct sfs_version_rec rec; /* without blobs */
	struct ctx_blobs *blobs;    /* or NULL */
};

struct cache_key {
	int used;
	char key[SFS_NAME_MAX + 1];
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
		c->secrets[i].used = 0;
	for (i = 0; i < CACHE_KEYS; i++)
		c->keys[i].used = 0;
	c->blob_bytes = 0;
}

static void cache_free(struct sfs_ctx *ctx)
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

static int begin_locked(struct sfs_ctx *ctx, int write, struct sfs_error *err);

int ctx_read_lock(struct sfs_ctx *ctx, struct sfs_error *err)
{
	struct ctx_cache *c;
	uint64_t g;

	pthread_mutex_lock(&ctx->mutex);
	c = ctx->cache;
	if (!c)
		return begin_locked(ctx, 0, err);
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
	int rc = sfs_store_version_get(ctx->store, secret_id, n,
					      blobs != NULL, v, err);

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

static struct cache_secret *secret_slot(struct ctx_cache *c, const char *key)
{
	return &c->secrets[hash_str(key, 2166136261u) % CACHE_SECRETS];
}

static struct cache_key *key_slot(struct ctx_cache *c, const char *key)
{
	return &c->keys[hash_str(key, 2166136261u) % CACHE_KEYS];
}

/* ---- init ------------------------------------------------------------- */

int ctx_keyver_make(struct sfs_store *s, const struct sfs_crypto *crypto,
		    const unsigned char *store_id, const struct sfs_key_rec *k,
		    uint32_t kv, struct sfs_error *err)
{
	struct sfs_binding b = {store_id, NULL, 0, k->id, kv};
	unsigned char material[SFS_KEY_BYTES];
	unsigned char wrapped[SFS_WRAPPED_KEY_BYTES];
	struct sfs_blob blob = {wrapped, sizeof(wrapped)};
	int rc;

	sfs_crypto_random(material, sizeof(material));
	rc = sfs_crypto_kms_wrap(crypto, &b, material, wrapped);
	sfs_crypto_wipe(material, sizeof(material));
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "cannot wrap key material");
	return sfs_store_keyver_insert(s, k->id, kv, &blob, sfs_time_now(), err);
}

struct init_state {
	const struct sfs_ctx_options *o;
	char dir[PATH_MAX];
	char keyfile[PATH_MAX];
	int dir_created, key_created, snapped, existed;
	struct dir_snapshot snap;
	unsigned char master[SFS_KEY_BYTES];
	unsigned char kdf[KDF_BLOB_BYTES];
	int has_kdf;
	struct sfs_crypto *crypto;
	struct sfs_store *store;
};

static int init_master(struct init_state *is, struct sfs_error *err)
{
	struct sfs_kdf_params p;
	char *pass = NULL;
	size_t len = 0;
	int rc;

	if (is->o->passphrase_file) {
		rc = sfs_crypto_passphrase_read(is->o->passphrase_file, &pass,
						&len, err);
		if (rc != SFS_OK)
			return rc;
		sfs_crypto_kdf_params_new(&p);
		kdf_encode(&p, is->kdf);
		is->has_kdf = 1;
		return derive_from(pass, len, &p, is->master, err);
	}
	rc = key_path(is->o, is->dir, is->keyfile, sizeof(is->keyfile), err);
	if (rc != SFS_OK)
		return rc;
	/* An existing key file (e.g. a systemd credential) is used as is. */
	if (access(is->keyfile, F_OK) == 0)
		return sfs_crypto_master_load(is->keyfile, is->master, err);
	rc = sfs_crypto_master_generate(is->keyfile, is->master, err);
	if (rc == SFS_OK)
		is->key_created = 1;
	return rc;
}

static int init_service_key(struct init_state *is, const unsigned char *id,
			    struct sfs_error *err)
{
	struct sfs_key_rec k;
	int rc;

	memset(&k, 0, sizeof(k));
	sfs_crypto_uuid(k.id);
	ctx_strlcpy(k.name, "service", sizeof(k.name));
	k.type = SFS_KEY_SERVICE;
	k.state = SFS_STATE_ACTIVE;
	ctx_strlcpy(k.description, "the store's service key",
		    sizeof(k.description));
	k.created_at = sfs_time_now();
	sfs_principal_describe(getuid(), k.created_by, sizeof(k.created_by));
	k.current_version = 1;
	rc = sfs_store_key_insert(is->store, &k, err);
	if (rc != SFS_OK)
		return rc;
	return ctx_keyver_make(is->store, is->crypto, id, &k, 1, err);
}

/* In init's write transaction: a shared server may already hold a store
 * (another host made it), which only `init --join` attaches to. */
static int init_fresh(struct init_state *is, struct sfs_error *err)
{
	struct sfs_blob id = {NULL, 0};
	int rc = sfs_store_meta_get(is->store, "store_id", &id, err);

	sfs_blob_release(&id);
	if (rc == SFS_ENOENT) {
		sfs_error_clear(err);
		return SFS_OK;
	}
	return rc == SFS_OK ? sfs_error_set(err, SFS_EEXIST,
					    "the server already holds a "
					    "store: attach with init --join")
			    : rc;
}

/* init --join: prove the master key against the shared store's canary
 * before anything is written. */
static int init_join(struct init_state *is, struct sfs_error *err)
{
	struct sfs_blob id = {NULL, 0}, canary = {NULL, 0};
	int rc = sfs_store_begin(is->store, 0, err);

	if (rc == SFS_OK)
		rc = sfs_store_meta_get(is->store, "store_id", &id, err);
	if (rc == SFS_OK)
		rc = sfs_store_meta_get(is->store, "canary", &canary, err);
	sfs_store_rollback(is->store);
	if (rc == SFS_OK &&
	    (id.len != SFS_STORE_ID_BYTES ||
	     sfs_crypto_canary_check(is->crypto, id.data, canary.data,
				     canary.len) != SFS_OK))
		rc = sfs_error_set(err, SFS_EMASTER,
				   "wrong master key for the shared store");
	sfs_blob_release(&id);
	sfs_blob_release(&canary);
	return rc;
}

/* init --conninfo: DIR/store.conf names the PostgreSQL server. A join
 * uses the store's key, never a new one. */
static int init_conf(struct init_state *is, struct sfs_error *err)
{
	struct sfs_store_conf c;

	if (is->o->join &&
	    (is->o->passphrase_file || access(is->keyfile, F_OK) != 0))
		return sfs_error_set(err, SFS_EINVAL,
				     "init --join needs the store's master "
				     "key file (--master-key FILE)");
	memset(&c, 0, sizeof(c));
	c.backend = SFS_BACKEND_POSTGRESQL;
	if (strlen(is->o->conninfo) > SFS_CONNINFO_MAX)
		return sfs_error_set(err, SFS_EINVAL, "conninfo too long");
	memcpy(c.conninfo, is->o->conninfo, strlen(is->o->conninfo) + 1);
	return sfs_store_conf_write(is->dir, &c, err);
}

/* The database's contents, in one transaction. */
static int init_db(struct init_state *is, struct sfs_error *err)
{
	unsigned char id[SFS_STORE_ID_BYTES];
	unsigned char canary[SFS_CANARY_BYTES];
	int rc;

	sfs_crypto_random(id, sizeof(id));
	rc = sfs_crypto_canary_make(is->crypto, id, canary);
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "cannot make the canary");
	rc = sfs_store_begin(is->store, 1, err);
	if (rc != SFS_OK)
		return rc;
	rc = init_fresh(is, err);
	if (rc == SFS_OK)
		rc = sfs_store_meta_set(is->store, "store_id", id, sizeof(id),
					err);
	if (rc == SFS_OK)
		rc = sfs_store_meta_set(is->store, "canary", canary, sizeof(canary),
				   err);
	if (rc == SFS_OK && is->has_kdf)
		rc = sfs_store_meta_set(is->store, "kdf", is->kdf, sizeof(is->kdf),
				   err);
	if (rc == SFS_OK)
		rc = init_service_key(is, id, err);
	if (rc == SFS_OK)
		return sfs_store_commit(is->store, err);
	sfs_store_rollback(is->store);
	return rc;
}

static int init_files(struct init_state *is, struct sfs_error *err)
{
	char path[PATH_MAX];
	struct sfs_audit *a = NULL;
	int rc;

	rc = gen_create(is->dir, err);
	if (rc == SFS_OK)
		rc = path_join(path, sizeof(path), is->dir, AUDIT_NAME, err);
	if (rc == SFS_OK)
		rc = sfs_audit_open(&a, path, err);
	sfs_audit_close(a);
	return rc;
}

static int init_check_new(const char *dir, struct sfs_error *err)
{
	struct sfs_store *s = NULL;
	struct sfs_error e2;
	int rc;

	sfs_error_clear(&e2);
	rc = sfs_store_open(dir, 0, 1, &s, &e2);
	sfs_store_close(s);
	if (rc == SFS_ENOSTORE)
		return SFS_OK;
	if (rc == SFS_OK)
		return sfs_error_set(err, SFS_EEXIST,
				     "store '%s' is already initialised", dir);
	return sfs_error_set(err, rc, "%s", e2.msg);
}

/* Make the new files' names durable: a file's fsync does not persist its
 * directory entry on every filesystem. */
static int dir_sync(const char *dir, struct sfs_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ok = fd >= 0 && fsync(fd) == 0;

	if (fd >= 0)
		close(fd);
	return ok ? SFS_OK
		  : sfs_error_set(err, SFS_EIO, "cannot sync directory '%s'",
				  dir);
}

static int init_run(struct init_state *is, struct sfs_error *err)
{
	int rc;

	rc = mkdir_p(is->dir, &is->dir_created, err);
	if (rc != SFS_OK)
		return rc;
	rc = snapshot_walk(is->dir, &is->snap, 0, 0);
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "cannot read directory '%s'",
				     is->dir);
	is->snapped = 1;
	/* an untrusted directory is refused before anything in it is read */
	rc = sfs_storedir_check(is->dir, err);
	if (rc == SFS_OK)
		rc = init_check_new(is->dir, err);
	if (rc == SFS_OK)
		rc = sfs_storedir_empty(is->dir, err);
	/* refused as it was found (an existing store, a non-empty or an
	 * untrusted directory): nothing in it is ours to undo */
	is->existed = rc == SFS_EEXIST || rc == SFS_EACCES;
	if (rc == SFS_OK && is->o->conninfo)
		rc = key_path(is->o, is->dir, is->keyfile, sizeof(is->keyfile),
			      err);
	if (rc == SFS_OK && is->o->conninfo)
		rc = init_conf(is, err);
	if (rc == SFS_OK)
		rc = init_master(is, err);
	if (rc == SFS_OK)
		rc = sfs_crypto_new(&is->crypto, is->master, err);
	sfs_crypto_wipe(is->master, sizeof(is->master));
	if (rc == SFS_OK)
		rc = sfs_store_open(is->dir, !is->o->join, 0, &is->store, err);
	if (rc == SFS_OK)
		rc = is->o->join ? init_join(is, err) : init_db(is, err);
	if (rc == SFS_OK)
		rc = init_files(is, err);
	if (rc == SFS_OK)
		rc = dir_sync(is->dir, err);
	return rc;
}

int sfs_ctx_init(const struct sfs_ctx_options *o, struct sfs_error *err)
{
	struct init_state is;
	int rc;

	sfs_error_clear(err);
	memset(&is, 0, sizeof(is));
	is.o = o;
	rc = sfs_crypto_global_init();
	if (rc == SFS_OK)
		rc = resolve_dir(o, is.dir, sizeof(is.dir), err);
	if (rc != SFS_OK)
		return rc;
	rc = init_run(&is, err);
	sfs_store_close(is.store);
	sfs_crypto_free(is.crypto);
	sfs_crypto_wipe(is.master, sizeof(is.master));
	if (rc != SFS_OK && !is.existed) {
		/* leave nothing half-made: remove only what this call made */
		if (is.key_created)
			unlink(is.keyfile);
		if (is.snapped)
			snapshot_walk(is.dir, &is.snap, 1, is.dir_created);
		else if (is.dir_created)
			rmdir(is.dir);
	}
	snapshot_free(&is.snap);
	return rc;
}

/* ---- pending audit lines (see "Audit lines of changes" below) --------- */

static int can_stage(const struct sfs_ctx *ctx);
static void staged_clear(struct sfs_ctx *ctx);

struct pending {
	int64_t seq, hint;
	char *line;
	size_t len;
};

struct pending_acc {
	struct pending *v;
	size_t n;
	int64_t from; /* the smallest hint */
};

static int pending_collect(void *arg, int64_t seq, int64_t hint,
			   const void *line, size_t len)
{
	struct pending_acc *acc = arg;
	struct pending *grown = realloc(acc->v, (acc->n + 1) * sizeof(*grown));
	struct pending *p;

	if (!grown)
		return SFS_ENOMEM;
	acc->v = grown;
	p = &grown[acc->n];
	p->line = malloc(len ? len : 1);
	if (!p->line)
		return SFS_ENOMEM;
	memcpy(p->line, line, len);
	p->len = len;
	p->seq = seq;
	p->hint = hint;
	if (acc->n == 0 || hint < acc->from)
		acc->from = hint;
	acc->n++;
	return 0;
}

/* 1 when line (with its newline) starts a line of buf at or after at. */
static int log_has(const char *buf, size_t len, size_t at, const char *line,
		   size_t n)
{
	const char *p;

	while (at < len && (p = memmem(buf + at, len - at, line, n))) {
		if (p == buf || p[-1] == '\n')
			return 1;
		at = (size_t)(p - buf) + 1;
	}
	return 0;
}

/* Write lock held: append what the log lacks, sync it, drop the rows. */
static int pending_settle(struct sfs_ctx *ctx, struct pending_acc *acc,
			  struct sfs_error *err)
{
	int64_t base = acc->from, at;
	char *tail = NULL;
	size_t len = 0, i;
	int rc;

	if (base > sfs_audit_size(ctx->audit))
		base = 0; /* the log was cut: sfs_audit_tail reads it all */
	rc = sfs_audit_tail(ctx->audit, base, &tail, &len);
	for (i = 0; rc == SFS_OK && i < acc->n; i++) {
		at = acc->v[i].hint - base;
		if (at < 0 || (size_t)at > len)
			at = 0;
		if (!log_has(tail, len, (size_t)at, acc->v[i].line,
			     acc->v[i].len))
			rc = sfs_audit_append(ctx->audit, acc->v[i].line,
					      acc->v[i].len);
	}
	free(tail);
	if (rc == SFS_OK)
		rc = sfs_audit_sync(ctx->audit);
	for (i = 0; rc == SFS_OK && i < acc->n; i++)
		rc = sfs_store_audit_del(ctx->store, acc->v[i].seq, err);
	return rc;
}

/*
 * A read-write open: lines a crash left pending in the store (committed,
 * perhaps never appended) reach the log, once. A failure is remembered
 * (sfs_ctx_last_error) and the rows kept for the next open; it does not
 * fail the open.
 */
static void audit_reconcile(struct sfs_ctx *ctx)
{
	struct pending_acc acc = {NULL, 0, 0};
	struct sfs_error e;
	size_t i;
	int any = 0, rc;

	if (!can_stage(ctx))
		return;
	sfs_error_clear(&e);
	rc = sfs_store_begin(ctx->store, 0, &e);
	if (rc == SFS_OK) {
		rc = sfs_store_audit_any(ctx->store, &any, &e);
		sfs_store_rollback(ctx->store);
	}
	if (rc == SFS_OK && any && (rc = sfs_store_begin(ctx->store, 1, &e)) ==
	    SFS_OK) {
		rc = sfs_store_audit_list(ctx->store, pending_collect, &acc, &e);
		if (rc == SFS_OK)
			rc = pending_settle(ctx, &acc, &e);
		if (rc == SFS_OK)
			rc = sfs_store_commit(ctx->store, &e);
		else
			sfs_store_rollback(ctx->store);
	}
	for (i = 0; i < acc.n; i++)
		free(acc.v[i].line);
	free(acc.v);
	if (rc != SFS_OK)
		note_error(ctx, "cannot reconcile the audit log");
}

/* Close: sync the log and drop this context's own pending rows. */
static void own_flush(struct sfs_ctx *ctx)
{
	unsigned i;
	int rc;

	if (!ctx->store || !ctx->audit_nown || !can_stage(ctx) ||
	    sfs_audit_sync(ctx->audit) != SFS_OK)
		return;
	if (sfs_store_begin(ctx->store, 1, NULL) != SFS_OK)
		return;
	for (i = 0, rc = SFS_OK; i < ctx->audit_nown && rc == SFS_OK; i++)
		rc = sfs_store_audit_del(ctx->store, ctx->audit_own[i], NULL);
	if (rc == SFS_OK)
		rc = sfs_store_commit(ctx->store, NULL);
	else
		sfs_store_rollback(ctx->store);
	ctx->audit_nown = 0;
}

/* ---- open and close ---------------------------------------------------- */

static int no_store(const char *dir, struct sfs_error *err)
{
	return sfs_error_set(err, SFS_ENOSTORE,
			     "no store in '%s': run `secretfs init` first",
			     dir);
}

/* The store is there but not ours to read (another user's 0700 dir):
 * say so, rather than "no store". */
static int no_access(const char *dir, struct sfs_error *err)
{
	return sfs_error_set(err, SFS_EACCES, "store '%s': %s", dir,
			     sfs_strerrno(errno));
}

/* Open the database read-write when its files are writable; otherwise
 * read-only, and the context refuses changes. */
static int open_store(struct sfs_ctx *ctx, int *writable, struct sfs_error *err)
{
	struct sfs_store_conf conf;
	char db[PATH_MAX];
	struct stat st;
	int rc;

	if (stat(ctx->dir, &st) != 0 && errno != ENOENT && errno != ENOTDIR)
		return no_access(ctx->dir, err);
	if (stat(ctx->dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return no_store(ctx->dir, err);
	/* SPEC §1: before any file of the store is opened */
	rc = sfs_storedir_check(ctx->dir, err);
	if (rc == SFS_OK)
		rc = sfs_store_conf_read(ctx->dir, &conf, err);
	if (rc == SFS_OK && conf.backend != SFS_BACKEND_SQLITE) {
		if (gethostname(ctx->host, sizeof(ctx->host)) != 0)
			snprintf(ctx->host, sizeof(ctx->host), "unknown");
		ctx->host[sizeof(ctx->host) - 1] = '\0';
		*writable = access(ctx->dir, W_OK) == 0;
		rc = sfs_store_open(ctx->dir, 0, !*writable, &ctx->store, err);
		if (!*writable)
			ctx->readonly = 1;
		return rc;
	}
	if (rc != SFS_OK)
		return rc;
	if (sfs_store_db_path(ctx->dir, db, sizeof(db)) != SFS_OK)
		return sfs_error_set(err, SFS_EINVAL, "store path too long");
	if (access(db, F_OK) != 0 && errno != ENOENT)
		return no_access(ctx->dir, err);
	if (access(db, F_OK) != 0)
		return no_store(ctx->dir, err);
	*writable = access(ctx->dir, W_OK) == 0 && access(db, W_OK) == 0;
	rc = sfs_store_open(ctx->dir, 0, !*writable, &ctx->store, err);
	if (rc == SFS_ENOSTORE)
		return no_store(ctx->dir, err);
	if (!*writable)
		ctx->readonly = 1;
	return rc;
}

static int meta_read(struct sfs_ctx *ctx, struct sfs_blob *canary,
		     struct sfs_blob *kdf, struct sfs_error *err)
{
	struct sfs_blob id = {NULL, 0};
	int rc;

	rc = sfs_store_begin(ctx->store, 0, err);
	if (rc != SFS_OK)
		return rc;
	rc = sfs_store_meta_get(ctx->store, "store_id", &id, err);
	if (rc == SFS_OK && id.len != SFS_STORE_ID_BYTES)
		rc = SFS_EBADMSG;
	if (rc == SFS_OK)
		rc = sfs_store_meta_get(ctx->store, "canary", canary, err);
	if (rc == SFS_OK) {
		memcpy(ctx->store_id, id.data, SFS_STORE_ID_BYTES);
		rc = sfs_store_meta_get(ctx->store, "kdf", kdf, err);
		if (rc == SFS_ENOENT) {
			sfs_error_clear(err);
			rc = SFS_OK;
		}
	}
	sfs_store_rollback(ctx->store);
	sfs_blob_release(&id);
	if (rc == SFS_ENOENT || rc == SFS_EBADMSG)
		rc =
		    sfs_error_set(err, SFS_EBADMSG,
				  "store '%s' has no valid identity", ctx->dir);
	return rc;
}

static int open_master(struct sfs_ctx *ctx, const struct sfs_ctx_options *o,
		       const struct sfs_blob *kdf, struct sfs_error *err)
{
	unsigned char master[SFS_KEY_BYTES];
	struct sfs_kdf_params p;
	char path[PATH_MAX];
	int rc;

	if (kdf->data) {
		rc = kdf_decode(kdf, &p, err);
		if (rc == SFS_OK)
			rc = passphrase_master(o, &p, master, err);
	} else {
		rc = key_path(o, ctx->dir, path, sizeof(path), err);
		if (rc == SFS_OK)
			rc = sfs_crypto_master_load(path, master, err);
		if (rc == SFS_OK && !(ctx->master_key_path = strdup(path)))
			rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
	}
	if (rc == SFS_OK)
		rc = sfs_crypto_new(&ctx->crypto, master, err);
	sfs_crypto_wipe(master, sizeof(master));
	return rc;
}

static int open_run(struct sfs_ctx *ctx, const struct sfs_ctx_options *o,
		    struct sfs_error *err)
{
	struct sfs_blob canary = {NULL, 0}, kdf = {NULL, 0};
	char path[PATH_MAX];
	int writable = 0;
	int rc;

	rc = open_store(ctx, &writable, err);
	if (rc == SFS_OK)
		rc = meta_read(ctx, &canary, &kdf, err);
	if (rc == SFS_OK)
		rc = open_master(ctx, o, &kdf, err);
	if (rc == SFS_OK &&
	    sfs_crypto_canary_check(ctx->crypto, ctx->store_id, canary.data,
				    canary.len) != SFS_OK)
		rc = sfs_error_set(err, SFS_EMASTER, "wrong %s for store '%s'",
				   kdf.data ? "passphrase" : "master key",
				   ctx->dir);
	sfs_blob_release(&canary);
	sfs_blob_release(&kdf);
	if (rc != SFS_OK)
		return rc;
	/* The key is proven: only now touch anything in the store. */
	gen_map(ctx, writable);
	rc = kms_region_new(ctx, err);
	if (rc == SFS_OK && !(ctx->cache = calloc(1, sizeof(*ctx->cache))))
		rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
	if (rc == SFS_OK)
		ctx->cache->gen = ctx_store_gen(ctx);
	if (rc == SFS_OK && !o->audit_off) {
		rc = path_join(path, sizeof(path), ctx->dir, AUDIT_NAME, err);
		if (rc == SFS_OK)
			rc = sfs_audit_open(&ctx->audit, path, err);
		if (rc == SFS_OK && o->audit_max)
			sfs_audit_set_max(ctx->audit, o->audit_max);
	}
	if (rc == SFS_OK)
		audit_reconcile(ctx);
	return rc;
}

int sfs_ctx_open(struct sfs_ctx **out, const struct sfs_ctx_options *o,
		 struct sfs_error *err)
{
	char dir[PATH_MAX];
	struct sfs_ctx *ctx;
	int rc;

	sfs_error_clear(err);
	*out = NULL;
	rc = sfs_crypto_global_init();
	if (rc == SFS_OK)
		rc = resolve_dir(o, dir, sizeof(dir), err);
	if (rc != SFS_OK)
		return rc;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx || !(ctx->dir = strdup(dir))) {
		free(ctx);
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&ctx->mutex, NULL);
	ctx->gen = &ctx->gen_local;
	ctx->watch_fd = -1;
	ctx->readonly = o->readonly;
	ctx->has_owner = o->has_owner;
	ctx->owner_uid = o->owner_uid;
	rc = open_run(ctx, o, err);
	if (rc != SFS_OK) {
		sfs_ctx_close(ctx);
		return rc;
	}
	*out = ctx;
	return SFS_OK;
}

static void roles_free(struct sfs_ctx *ctx)
{
	free(ctx->roles);
	ctx->roles = NULL;
	ctx->nroles = 0;
	ctx->roles_valid = 0;
}

void sfs_ctx_close(struct sfs_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->audit)
		own_flush(ctx);
	staged_clear(ctx);
	sfs_store_close(ctx->store);
	sfs_crypto_free(ctx->crypto);
	sfs_audit_close(ctx->audit);
	kms_region_free(ctx);
	cache_free(ctx);
	ctx_watch_close(ctx);
	if (ctx->gen_mapped)
		munmap(ctx->gen, sizeof(uint64_t));
	roles_free(ctx);
	pthread_mutex_destroy(&ctx->mutex);
	free(ctx->master_key_path);
	free(ctx->dir);
	free(ctx);
}

void sfs_ctx_audit_reopen(struct sfs_ctx *ctx)
{
	sfs_audit_reopen(ctx->audit);
}

const char *sfs_ctx_dir(const struct sfs_ctx *ctx)
{
	return ctx->dir;
}

const char *sfs_ctx_master_key_path(const struct sfs_ctx *ctx)
{
	return ctx->master_key_path;
}

int sfs_ctx_readonly(const struct sfs_ctx *ctx)
{
	return ctx->readonly;
}

struct sfs_store *sfs_ctx_store(struct sfs_ctx *ctx)
{
	return ctx->store;
}

struct sfs_store *sfs_ctx_swap_store(struct sfs_ctx *ctx, struct sfs_store *s)
{
	struct sfs_store *old;

	pthread_mutex_lock(&ctx->mutex);
	old = ctx->store;
	ctx->store = s;
	ctx->roles_valid = 0;
	sfs_crypto_wipe(ctx->kms, ctx->kms_len);
	/* A stand-in store (a test's failing or tampering wrapper) is asked
	 * every time: its generation need not follow what it returns. */
	cache_free(ctx);
	pthread_mutex_unlock(&ctx->mutex);
	return old;
}

void sfs_ctx_close_store(struct sfs_ctx *ctx)
{
	pthread_mutex_lock(&ctx->mutex);
	sfs_store_close(ctx->store);
	ctx->store = NULL;
	ctx->roles_valid = 0;
	sfs_crypto_wipe(ctx->kms, ctx->kms_len);
	if (ctx->cache)
		cache_flush(ctx->cache);
	pthread_mutex_unlock(&ctx->mutex);
}

int sfs_ctx_reopen_store(struct sfs_ctx *ctx, struct sfs_error *err)
{
	struct sfs_store *s = NULL, *old;
	int rc;

	sfs_error_clear(err);
	rc = sfs_store_open(ctx->dir, 0, ctx->readonly, &s, err);
	if (rc != SFS_OK)
		return rc;
	pthread_mutex_lock(&ctx->mutex);
	old = ctx->store;
	ctx->store = s;
	ctx->roles_valid = 0;
	sfs_crypto_wipe(ctx->kms, ctx->kms_len);
	if (ctx->cache) { /* the real store: its generation is trusted */
		cache_flush(ctx->cache);
		ctx->cache->gen = ctx_store_gen(ctx);
	}
	pthread_mutex_unlock(&ctx->mutex);
	sfs_store_close(old);
	return SFS_OK;
}

/* The backend as .status shows it: "sqlite", or the shared store's
 * server and listener state. */
void sfs_ctx_backend(struct sfs_ctx *ctx, char *out, size_t cap)
{
	pthread_mutex_lock(&ctx->mutex);
	sfs_store_remote_state(ctx->store, out, cap);
	pthread_mutex_unlock(&ctx->mutex);
	if (cap && !out[0])
		snprintf(out, cap, "sqlite");
}

/* ---- counts and roles ------------------------------------------------- */

int sfs_ctx_counts(struct sfs_ctx *ctx, struct sfs_counts *out,
		   struct sfs_error *err)
{
	int rc;

	sfs_error_clear(err);
	memset(out, 0, sizeof(*out));
	rc = ctx_begin(ctx, 0, err);
	if (rc != SFS_OK)
		return rc;
	rc = sfs_store_counts(ctx->store, &out->secrets, &out->versions,
				     &out->keys, err);
	return ctx_end(ctx, 0, rc, err);
}

struct role_pair {
	unsigned role;
	char principal[SFS_PRINCIPAL_MAX + 1];
};

struct roles_acc {
	struct role_pair *v;
	size_t n;
};

static int roles_collect(void *arg, const char *role, const char *principal)
{
	struct roles_acc *acc = arg;
	struct role_pair *grown;

	grown = realloc(acc->v, (acc->n + 1) * sizeof(*grown));
	if (!grown)
		return SFS_ENOMEM;
	acc->v = grown;
	grown[acc->n].role = (unsigned)sfs_role_parse(role);
	ctx_strlcpy(grown[acc->n].principal, principal,
		    sizeof(grown[0].principal));
	acc->n++;
	return 0;
}

/* Lock held. Re-read the grants when another change landed. */
static int roles_refresh(struct sfs_ctx *ctx, struct sfs_error *err)
{
	/* the store's generation: it also sees grants edited by another
	 * program */
	uint64_t gen = ctx_store_gen(ctx);
	struct roles_acc acc = {NULL, 0};
	int rc;

	if (ctx->roles_valid && ctx->roles_gen == gen)
		return SFS_OK;
	rc = sfs_store_begin(ctx->store, 0, err);
	if (rc != SFS_OK)
		return rc;
	rc = sfs_store_role_list(ctx->store, roles_collect, &acc, err);
	sfs_store_rollback(ctx->store);
	if (rc != SFS_OK) {
		free(acc.v);
		return ctx_fail(err, rc, "cannot read role grants");
	}
	roles_free(ctx);
	ctx->roles = acc.v;
	ctx->nroles = acc.n;
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

/* ---- helpers for the services ----------------------------------------- */

static void note_store_failure(struct sfs_ctx *ctx, int rc,
			       const struct sfs_error *err)
{
	if (rc != SFS_EIO && rc != SFS_ENOSPC)
		return;
	note_error(ctx, err && err->msg[0] ? err->msg : sfs_strerror(rc));
}

/* Mutex held: begin, or unlock on failure. */
static int begin_locked(struct sfs_ctx *ctx, int write, struct sfs_error *err)
{
	int rc;

	/* A read-only context never writes: the policy refuses, and a
	 * read transaction does not contend for the store's write lock. */
	rc = sfs_store_begin(ctx->store, write && !ctx->readonly, err);
	if (rc != SFS_OK) {
		note_store_failure(ctx, rc, err);
		pthread_mutex_unlock(&ctx->mutex);
	}
	return rc;
}

/*
 * Audit lines of changes. A change's line is staged while its write
 * transaction is open (ctx_audit, see internal.h), stored in the store's
 * pending table in that transaction, and appended to the log by one
 * write(2) after COMMIT while the store's write lock is still held
 * (commit_then): no fsync of the log on the caller's path, and no crash
 * between commit and append can lose the line, which stays pending in
 * the store. Appending under the write lock means that whoever holds
 * the lock sees every pending line either appended or orphaned by a
 * process that died, never half-way: the reconciliation below runs under
 * that lock too, so it cannot append a line that its owner is about to
 * append.
 *
 * Pending rows a context appended itself are dropped in batches: after
 * CTX_AUDIT_BATCH of them, the next change syncs the log once and
 * deletes them inside its own transaction (so one fdatasync per batch,
 * not per change); the rest at close. Rows left by a process that died
 * are reconciled by the next read-write open: each line not found in the
 * log at or after its hint (the log's size when it was stored) is
 * appended, the log synced, the rows deleted, all in one write
 * transaction. Two byte-identical lines (same second, op, secret,
 * version, caller and pid) would count as one: at worst a line is
 * missed, never doubled.
 *
 * Measured (scripts/bench --quick, the 2-CPU dev VM): see the store's
 * header comment for the new-version figures with and without the
 * per-change fdatasync of the log this replaces.
 */
static __thread char tls_tag;			 /* this thread's address */
static __thread const struct sfs_ctx *tls_handled; /* line written */

static void staged_clear(struct sfs_ctx *ctx)
{
	free(ctx->staged.line);
	memset(&ctx->staged, 0, sizeof(ctx->staged));
}

static int can_stage(const struct sfs_ctx *ctx)
{

	return ctx->audit && !ctx->readonly && sfs_store_can_stage(ctx->store);
}

static void event_of(const struct sfs_ctx *ctx, struct sfs_audit_event *ev,
		     const struct sfs_caller *c,
		     const struct ctx_audit_line *l)
{
	memset(ev, 0, sizeof(*ev));
	ev->host = ctx->host[0] ? ctx->host : NULL;
	ev->op = l->op;
	ev->secret = l->secret;
	ev->secret_id = l->secret_id && *l->secret_id ? l->secret_id : NULL;
	ev->key = l->key;
	ev->version = l->version;
	ev->result = l->result;
	ev->caller = c;
	ev->sync = l->change;
}

/* Lock held, write transaction open: keep the line for ctx_end(). */
static int stage(struct sfs_ctx *ctx, const struct sfs_caller *c,
		 const struct ctx_audit_line *l)
{
	struct sfs_audit_event ev;
	char *line;
	size_t len;
	int rc;

	event_of(ctx, &ev, c, l);
	rc = sfs_audit_line(&ev, &line, &len);
	if (rc != SFS_OK)
		return rc; /* not staged: written after the commit instead */
	staged_clear(ctx);
	ctx->staged.used = 1;
	ctx->staged.line = line;
	ctx->staged.len = len;
	return SFS_OK;
}

/* Lock held, in the change's transaction: once a batch of own lines is
 * appended, sync the log and drop their rows. */
static int own_trim(struct sfs_ctx *ctx, struct sfs_error *err)
{
	struct sfs_store *s = ctx->store;
	unsigned i;
	int rc = SFS_OK;

	if (ctx->audit_nown < CTX_AUDIT_BATCH ||
	    sfs_audit_sync(ctx->audit) != SFS_OK)
		return SFS_OK; /* unsynced: the rows stay, reconciled later */
	for (i = 0; i < ctx->audit_nown && rc == SFS_OK; i++)
		rc = sfs_store_audit_del(s, ctx->audit_own[i], err);
	if (rc == SFS_OK)
		ctx->audit_nown = 0;
	return rc;
}

/* After COMMIT, under the store's write lock. */
static void staged_append(void *arg)
{
	struct sfs_ctx *ctx = arg;

	ctx->staged.appended = sfs_audit_append(ctx->audit, ctx->staged.line,
						ctx->staged.len) == SFS_OK;
}

static int commit_staged(struct sfs_ctx *ctx, struct sfs_error *err)
{
	int64_t seq = 0;
	int rc;

	rc = own_trim(ctx, err);
	if (rc == SFS_OK)
		rc = sfs_store_audit_add(ctx->store, ctx->staged.line,
				    ctx->staged.len,
				    sfs_audit_size(ctx->audit), &seq, err);
	if (rc != SFS_OK) {
		sfs_store_rollback(ctx->store);
		return rc;
	}
	rc = sfs_store_commit_then(ctx->store, staged_append, ctx, err);
	if (rc == SFS_OK && ctx->staged.appended &&
	    ctx->audit_nown < CTX_AUDIT_BATCH)
		ctx->audit_own[ctx->audit_nown++] = seq;
	if (rc == SFS_OK && !ctx->staged.appended)
		note_error(ctx, "cannot write the audit log");
	return rc;
}

int ctx_begin(struct sfs_ctx *ctx, int write, struct sfs_error *err)
{
	int rc;

	pthread_mutex_lock(&ctx->mutex);
	tls_handled = NULL;
	rc = begin_locked(ctx, write, err);
	if (rc == SFS_OK && write)
		__atomic_store_n(&ctx->writer, &tls_tag, __ATOMIC_RELAXED);
	return rc;
}

int ctx_end(struct sfs_ctx *ctx, int write, int rc, struct sfs_error *err)
{
	int bumped = 0;

	if (write && rc == SFS_OK && !ctx->readonly) {
		if (ctx->staged.used)
			rc = commit_staged(ctx, err);
		else
			rc = sfs_store_commit(ctx->store, err);
		if (rc == SFS_OK) {
			__atomic_add_fetch(ctx->gen, 1, __ATOMIC_RELEASE);
			ctx_watch_prepare(ctx);
			bumped = 1;
		}
	} else {
		sfs_store_rollback(ctx->store);
		if (write && rc == SFS_OK)
			rc =
			    sfs_error_set(err, SFS_EROFS, "store is read-only");
	}
	/* Committed: its line is written. Failed: the service's call after
	 * ctx_end() writes the line with the failure, as for any refusal. */
	if (ctx->staged.used && rc == SFS_OK)
		tls_handled = ctx;
	staged_clear(ctx);
	if (write)
		__atomic_store_n(&ctx->writer, NULL, __ATOMIC_RELAXED);
	note_store_failure(ctx, rc, err);
	pthread_mutex_unlock(&ctx->mutex);
	if (bumped) /* cache=kernel mounts drop stale pages first */
		sfs_ctx_watch_sync(ctx);
	return rc;
}

void ctx_state_init(const struct sfs_ctx *ctx, struct sfs_policy_state *st)
{
	memset(st, 0, sizeof(*st));
	st->readonly = ctx->readonly;
}

int ctx_audit(struct sfs_ctx *ctx, const struct sfs_caller *c,
	      const struct ctx_audit_line *l)
{
	struct sfs_audit_event ev;
	int rc;

	if (l->change && tls_handled == ctx) {
		tls_handled = NULL; /* ctx_end() wrote this change's line */
		return SFS_OK;
	}
	if (l->change && l->result == SFS_OK && can_stage(ctx) &&
	    __atomic_load_n(&ctx->writer, __ATOMIC_RELAXED) == &tls_tag &&
	    stage(ctx, c, l) == SFS_OK)
		return SFS_OK;
	event_of(ctx, &ev, c, l);
	rc = sfs_audit_write(ctx->audit, &ev);
	if (rc != SFS_OK)
		note_error(ctx, "cannot write the audit log");
	return rc;
}

void ctx_secret_id(struct sfs_ctx *ctx, const char *name,
		   char id[SFS_ID_MAX + 1])
{
	struct sfs_secret_rec s;
	struct sfs_error e;
	int rc;

	id[0] = '\0';
	if (!name || !ctx->store)
		return;
	sfs_error_clear(&e);
	rc = ctx_read_lock(ctx, &e);
	if (rc == SFS_OK)
		rc = ctx_secret_load(ctx, name, &s, &e);
	if (rc == CTX_MISS && (rc = ctx_read_fill(ctx, &e)) == SFS_OK)
		rc = ctx_secret_load(ctx, name, &s, &e);
	if (ctx_read_unlock(ctx, rc, &e) == SFS_OK)
		ctx_strlcpy(id, s.id, SFS_ID_MAX + 1);
}

int ctx_secret_load(struct sfs_ctx *ctx, const char *name,
		    struct sfs_secret_rec *s, struct sfs_error *err)
{
	struct cache_secret *e = NULL;
	int rc;

	if (ctx->phase != CTX_PH_STORE && ctx->cache &&
	    strlen(name) <= SFS_NAME_MAX)
		e = secret_slot(ctx->cache, name);
	if (ctx->phase == CTX_PH_CACHED) {
		if (!e || !e->used || strcmp(e->key, name) != 0)
			return CTX_MISS;
		*s = e->rec;
		return SFS_OK;
	}
	rc = sfs_store_secret_get(ctx->store, name, s, err);
	if (rc == SFS_ENOENT) {
		memset(s, 0, sizeof(*s));
		sfs_error_clear(err);
		return sfs_error_set(err, rc, "secret '%.128s': no such "
				     "secret", name);
	}
	if (rc == SFS_OK && e) {
		ctx_strlcpy(e->key, name, sizeof(e->key));
		e->rec = *s;
		e->used = 1;
	}
	return rc;
}

static int key_state_fill(struct sfs_policy_state *st,
			  const struct sfs_key_rec *k)
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
	struct cache_key *e = NULL;
	int rc;

	if (ctx->phase != CTX_PH_STORE && ctx->cache &&
	    strlen(key) <= SFS_NAME_MAX)
		e = key_slot(ctx->cache, key);
	if (ctx->phase == CTX_PH_CACHED) {
		if (!e || !e->used || strcmp(e->key, key) != 0)
			return CTX_MISS;
		*k = e->rec;
		return key_state_fill(st, k);
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
		ctx_strlcpy(e->key, key, sizeof(e->key));
		e->rec = *k;
		e->used = 1;
	}
	return key_state_fill(st, k);
}

static int versions_collect(void *arg, const struct sfs_version_rec *v)
{
	struct ctx_versions *vs = arg;

	if (v->version == 0 || v->version > vs->n)
		return 0; /* beyond latest: cannot happen in a sane store */
	vs->states[v->version] = v->state;
	if (v->state == SFS_STATE_ACTIVE)
		vs->active++;
	if (v->state != SFS_STATE_DESTROYED)
		vs->live++;
	return 0;
}

int ctx_versions_gather(struct sfs_ctx *ctx, const struct sfs_secret_rec *s,
			struct ctx_versions *vs, struct sfs_error *err)
{
	uint32_t i;
	int rc;

	memset(vs, 0, sizeof(*vs));
	vs->n = s->latest_version;
	vs->states = malloc(((size_t)vs->n + 1) * sizeof(int));
	if (!vs->states)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	for (i = 0; i <= vs->n; i++)
		vs->states[i] = SFS_STATE_DESTROYED;
	rc = sfs_store_version_list(ctx->store, s->id, versions_collect,
					   vs, err);
	if (rc != SFS_OK)
		ctx_versions_release(vs);
	return rc;
}

void ctx_versions_release(struct ctx_versions *vs)
{
	free(vs->states);
	vs->states = NULL;
}
