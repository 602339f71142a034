/*
 * Private to the core services (ctx.c, keys.c, secret.c, version.c,
 * role.c): the context's layout and the few helpers every service uses.
 *
 * Every service follows one pattern: ctx_begin() (lock the context's
 * mutex, open a store transaction), gather the state, ask
 * sfs_policy_check() (the only place a rule is decided), act, ctx_end()
 * (commit and bump the generation, or roll back; unlock), then one
 * ctx_audit() line outside the lock. The mutex serialises every use of
 * the one store connection a context owns; fields it guards are marked.
 */
#ifndef SECRETFS_INTERNAL_H
#define SECRETFS_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "secretfs/crypto.h"
#include "secretfs/ctx.h"
#include "secretfs/policy.h"
#include "secretfs/store.h"

struct sfs_audit;
struct ctx_cache;
struct kms_slot;
struct role_pair;

#define CTX_ERRBUFS 8
#define CTX_AUDIT_BATCH 32 /* own pending audit lines before a log sync */

/* The audit line of the change in progress, committed with it. */
struct ctx_staged {
	int used;
	char *line; /* result ok, with its newline; malloc'd */
	size_t len;
	int appended; /* written to the log after the commit */
};

struct sfs_ctx {
	char *dir;
	char *master_key_path;	   /* NULL for passphrase stores */
	struct sfs_crypto *crypto; /* read-only after open */
	unsigned char store_id[SFS_STORE_ID_BYTES];
	char host[256]; /* a shared store: this host's name for audit lines */
	struct sfs_audit *audit; /* NULL: audit off; thread-safe itself */
	int readonly;		 /* changes refused through the policy */
	int has_owner;
	uint32_t owner_uid;

	pthread_mutex_t mutex;
	struct sfs_store *store; /* mutex */

	/* DIR/generation mapped shared; see ctx.c */
	uint64_t *gen; /* the mapping, or &gen_local */
	uint64_t gen_local;
	int gen_mapped;
	/* The watcher table as a writer sees it (ctx_watch.c), set up under
	 * mutex at the end of a write transaction, read after it. */
	int watch_fd;	     /* DIR/generation, or -1 */
	uint32_t *watch_tab; /* its slots, or NULL: no table (yet) */

	/* Unwrapped KMS key material: one locked region of fixed slots. */
	struct kms_slot *kms; /* mutex */
	size_t kms_len;	      /* bytes of the region */
	unsigned kms_next;    /* mutex: next slot to evict */
	uint64_t kms_gen;     /* mutex: generation the slots belong to */

	/* Role grants as last read from the store. */
	struct role_pair *roles; /* mutex */
	size_t nroles;		 /* mutex */
	uint64_t roles_gen;	 /* mutex */
	int roles_valid;	 /* mutex */

	/* Records of the read path (ctx.c), valid while the store's
	 * generation holds; NULL once a store was swapped in. */
	struct ctx_cache *cache; /* mutex */
	int phase;		 /* mutex: enum ctx_phase */
	uint64_t read_gen;	 /* mutex: store generation, CTX_PH_CACHED */

	/* Audit lines committed with their changes (see ctx.c). */
	const void *writer;	 /* atomic: tag of the thread whose write
				  * transaction is open, or NULL */
	struct ctx_staged staged; /* mutex */
	int64_t audit_own[CTX_AUDIT_BATCH]; /* mutex: pending rows this
					     * context appended */
	unsigned audit_nown;		    /* mutex */

	/* Store failures for sfs_ctx_last_error(): a ring of messages so a
	 * reader's pointer stays readable while later failures land. */
	char errbuf[CTX_ERRBUFS][256];
	unsigned errpos;	/* atomic */
	const char *last_error; /* atomic */
};

/* Lock ctx and begin a store transaction (write: the write lock). On
 * failure nothing is held. */
int ctx_begin(struct sfs_ctx *ctx, int write, struct sfs_error *err);

/*
 * End what ctx_begin() began: with write and rc == SFS_OK commit (and
 * bump the generation once durable), else roll back; then unlock.
 * Returns rc, or the commit's error.
 */
int ctx_end(struct sfs_ctx *ctx, int write, int rc, struct sfs_error *err);

/*
 * Reads served from the cache (see ctx.c). The pattern:
 *
 *	rc = ctx_read_lock(ctx, err);
 *	if (rc == SFS_OK)
 *		rc = gather(...);
 *	if (rc == CTX_MISS && (rc = ctx_read_fill(ctx, err)) == SFS_OK)
 *		rc = gather(...);
 *	rc = ctx_read_unlock(ctx, rc, err);
 *
 * ctx_read_lock() locks and validates the cache against the store's
 * generation, with no store transaction: the loaders below (secret,
 * version, key, KMS material) then answer from the cache only and
 * return CTX_MISS for anything not there. ctx_read_fill() opens a read
 * transaction, after which the loaders read the store and fill the
 * cache; gather runs again from the start, so that what it returns comes
 * from one snapshot. Without a cache, ctx_read_lock() opens the
 * transaction at once and CTX_MISS never happens. Only records and
 * ciphertext are cached: every rule is still asked of the policy.
 */
enum ctx_phase {
	CTX_PH_STORE = 0, /* ctx_begin(): the store only, no filling */
	CTX_PH_CACHED,	  /* ctx_read_lock(): the cache only */
	CTX_PH_FILL,	  /* ctx_read_fill(): the store, filling the cache */
};
#define CTX_MISS 1 /* not an enum sfs_err: never leaves the core */

int ctx_read_lock(struct sfs_ctx *ctx, struct sfs_error *err);
int ctx_read_fill(struct sfs_ctx *ctx, struct sfs_error *err);
int ctx_read_unlock(struct sfs_ctx *ctx, int rc, struct sfs_error *err);

/* A version's blobs, shared between the cache and the readers that
 * decrypt them after the lock is released. */
struct ctx_blobs {
	int refs; /* atomic */
	size_t dek_len, ct_len;
	unsigned char *dek, *ct; /* into data */
	unsigned char data[];
};
void ctx_blobs_put(struct ctx_blobs *b);

/*
 * Lock held: version n of secret secret_id without blobs in *v; with
 * blobs != NULL also a reference to its blobs (drop it with
 * ctx_blobs_put). SFS_ENOENT as the store's version_get.
 */
int ctx_version_load(struct sfs_ctx *ctx, const char *secret_id, uint32_t n,
		     struct sfs_version_rec *v, struct ctx_blobs **blobs,
		     struct sfs_error *err);

/* A policy state with the context's facts (read-only) filled in. */
void ctx_state_init(const struct sfs_ctx *ctx, struct sfs_policy_state *st);

/*
 * Record a refusal or failure in err and return code: keeps a message
 * already written for the same code (the store's details), else
 * "<subject>: <why>" with subject formatted from fmt.
 */
int ctx_fail(struct sfs_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Record sfs_policy_check()'s refusal rc of act in err as "<subject>:
 * <why>", the why from sfs_policy_why() ("the secret is active"), and
 * return rc.
 */
int ctx_refuse(struct sfs_error *err, enum sfs_action act, int rc,
	       const struct sfs_policy_state *st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * One audit line. Returns sfs_audit_write()'s result; a failure is also
 * remembered for sfs_ctx_last_error().
 *
 * A change's line (change set, result SFS_OK) given while this thread's
 * write transaction is open (between ctx_begin(write) and ctx_end()) is
 * staged instead: ctx_end() stores it in the same transaction, so that a
 * committed change cannot lose its line to a crash, and appends it to
 * the log right after the commit. The service's usual call after
 * ctx_end() is then skipped: it would write the same line. When the
 * commit fails, the staged line is dropped and that call writes the line
 * with the failure as result, as for any refused change. The pattern for
 * a change:
 *
 *	rc = ctx_begin(ctx, 1, err);
 *	... rc = the change ...
 *	if (rc == SFS_OK)
 *		ctx_audit(ctx, c, &line);	(staged)
 *	rc = ctx_end(ctx, 1, rc, err);
 *	ctx_audit(ctx, c, &line with rc);	(skipped when staged)
 *
 * A service that does not stage still gets its line, written and synced
 * after the commit as before (a crash in between can then lose it).
 */
struct ctx_audit_line {
	const char *op;
	const char *secret;
	const char *secret_id;
	const char *key;
	uint32_t version;
	int result;
	int change; /* fsync'd like the change it records */
};
int ctx_audit(struct sfs_ctx *ctx, const struct sfs_caller *c,
	      const struct ctx_audit_line *l);

/* The store's generation mixed with the host's (ctx.c): the caches' key.
 * Lock held. */
uint64_t ctx_store_gen(struct sfs_ctx *ctx);

/*
 * Lock not held: the id of the secret named name into id ("" when there
 * is none), for the line of a change refused before the secret was read
 * (a read-only store, a bad argument), so that it names the real
 * secret_id as every other line does (issue 10, finding 14).
 */
void ctx_secret_id(struct sfs_ctx *ctx, const char *name,
		   char id[SFS_ID_MAX + 1]);

/*
 * The material of KMS key key_id at key version kv, unwrapped with the
 * KEK (cached). Call with the lock held inside a transaction. SFS_EBADMSG
 * when the wrapped material fails authentication or is missing.
 */
int ctx_kms_material(struct sfs_ctx *ctx, const char *key_id, uint32_t kv,
		     unsigned char out[SFS_KEY_BYTES], struct sfs_error *err);

/*
 * Fresh random KMS material for key version kv of key k, stored wrapped
 * by the KEK in s (inside an open write transaction).
 */
int ctx_keyver_make(struct sfs_store *s, const struct sfs_crypto *crypto,
		    const unsigned char *store_id, const struct sfs_key_rec *k,
		    uint32_t kv, struct sfs_error *err);

/* Copy src into dst[cap], truncating; always NUL-terminated. */
void ctx_strlcpy(char *dst, const char *src, size_t cap);

/* Lock held, transaction open: the secret named name (a name or an id),
 * or SFS_ENOENT with a message. */
int ctx_secret_load(struct sfs_ctx *ctx, const char *name,
		    struct sfs_secret_rec *s, struct sfs_error *err);

/* Fill the key fields of a policy state from a lookup of key (id or
 * name): key_exists 0 when there is no such key. *k gets the record. */
int ctx_key_state(struct sfs_ctx *ctx, const char *key,
		  struct sfs_policy_state *st, struct sfs_key_rec *k,
		  struct sfs_error *err);

/* Version states of a secret: states[1..n] (states[0] unused; numbers
 * with no row count as destroyed), and how many are active / live. */
struct ctx_versions {
	int *states;
	uint32_t n;
	unsigned active, live;
};
int ctx_versions_gather(struct sfs_ctx *ctx, const struct sfs_secret_rec *s,
			struct ctx_versions *vs, struct sfs_error *err);
void ctx_versions_release(struct ctx_versions *vs);

/*
 * Add a version holding value to secret s (whose record is updated: new
 * latest and default) under key k's current key version. The policy has
 * already allowed it; lock held, write transaction open. out may be
 * NULL.
 */
int ctx_version_insert(struct sfs_ctx *ctx, const struct sfs_caller *c,
		       struct sfs_secret_rec *s, const struct sfs_key_rec *k,
		       const void *value, size_t len,
		       struct sfs_version_rec *out, struct sfs_error *err);

/* ctx_watch.c: under ctx->mutex after a commit, map the watcher table
 * if it exists (once it does, no more system calls); at close, drop it. */
void ctx_watch_prepare(struct sfs_ctx *ctx);
void ctx_watch_close(struct sfs_ctx *ctx);

#endif
