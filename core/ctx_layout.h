/*
 * Private to core/: the layout of struct sfs_ctx, shared by the files
 * that make up the context (ctx.c open/close, ctx_dir.c, ctx_master.c,
 * ctx_cache.c, txn.c, audit_stage.c, ctx_watch.c), and the helpers that
 * write a refusal or failure into a struct sfs_error. The mutex
 * serialises every use of the one store connection a context owns;
 * fields it guards are marked.
 */
#ifndef SECRETFS_CTX_LAYOUT_H
#define SECRETFS_CTX_LAYOUT_H

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
	int watch_fd;	      /* DIR/generation, or -1 */
	uint32_t *watch_tab;  /* its slots, or NULL: no table (yet) */
	uint64_t watch_alive; /* mutex: slots locked at the last scan */
	uint32_t watch_epoch; /* mutex: the epoch read before that scan */
	int watch_scanned;    /* mutex: 0 until the first scan */
	/* The context's own registration as a watcher (a daemon's). */
	int reg_fd;	   /* DIR/generation holding our slot's lock, or -1 */
	uint32_t *reg_tab; /* the table mapped, or NULL */
	uint32_t *reg_ack; /* our slot in it, or NULL */
	int reg_self;	   /* our own commits skip our slot (watch_exempt) */

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
	struct ctx_staged staged; /* mutex */
	int64_t audit_own[CTX_AUDIT_BATCH]; /* mutex: pending rows this
					     * context appended */
	unsigned audit_nown;		    /* mutex */
};

enum ctx_phase {
	CTX_PH_STORE = 0, /* ctx_begin(): the store only, no filling */
	CTX_PH_CACHED,	  /* ctx_read_lock(): the cache only */
	CTX_PH_FILL,	  /* ctx_read_fill(): the store, filling the cache */
};
#define CTX_MISS 1 /* not an enum sfs_err: never leaves the core */

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

/* ctx_fail and ctx_refuse with a subject that names obj (err->obj). */
int ctx_fail_on(struct sfs_error *err, int code, const struct sfs_object *obj);
int ctx_refuse_on(struct sfs_error *err, enum sfs_action act, int rc,
		  const struct sfs_policy_state *st,
		  const struct sfs_object *obj);

/* A new secret's or key's name and description by the policy's rules:
 * SFS_OK, or the rule's refusal as "<o's words>: <why>". */
int ctx_name_desc_check(const struct sfs_object *o, const char *name,
			const char *desc, struct sfs_error *err);

/* Copy src into dst[cap], truncating; always NUL-terminated. */
void ctx_strlcpy(char *dst, const char *src, size_t cap);

#endif
