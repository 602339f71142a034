/*
 * Private to the core services (keys.c, secret.c, version.c, role.c,
 * rekey.c, value.c): the transaction API (txn.c).
 *
 * Every service follows one pattern: ctx_begin() (lock the context's
 * mutex, open a store transaction), gather the state, ask
 * sfs_policy_check() (the only place a rule is decided), act, ctx_end()
 * (commit and bump the generation, or roll back; unlock), then one
 * ctx_audit() line outside the lock (audit_stage.h). Reads go through
 * the caches (ctx_cache.h).
 */
#ifndef SECRETFS_INTERNAL_H
#define SECRETFS_INTERNAL_H

#include "audit_stage.h"
#include "ctx_cache.h"
#include "ctx_layout.h"

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
 * The one change path, after git's ref transactions (begin, queue,
 * commit, with a caller-owned error). ctx_change_run():
 *
 *	begin a write transaction (unless pre already failed: a bad
 *	argument refused before anything is read);
 *	gather the state the policy asks about (with about: what a
 *	refusal names);
 *	ask sfs_policy_check(act) once; settle turns its answer into the
 *	change's (NULL: ctx_settle, a refusal naming about);
 *	apply the change;
 *	stage the change's audit line (line with SFS_OK) in the same
 *	transaction, and commit;
 *
 * and when anything failed, write the line with the failure instead.
 * Returns the change's result, err holding its message.
 */
struct ctx_change;

/* What a kind of change does at each step: one constant table per
 * service (gather and settle may be NULL; so may done). */
struct ctx_change_ops {
	int (*gather)(struct sfs_ctx *ctx, struct ctx_change *ch,
		      struct sfs_policy_state *st, struct sfs_error *err);
	int (*settle)(struct ctx_change *ch, const struct sfs_policy_state *st,
		      int rc, struct sfs_error *err);
	int (*apply)(struct sfs_ctx *ctx, struct ctx_change *ch,
		     const struct sfs_policy_state *st, struct sfs_error *err);
	/* the change's audit line with result rc (lock not held when rc
	 * is a failure) */
	void (*line)(struct sfs_ctx *ctx, struct ctx_change *ch, int rc,
		     struct ctx_audit_line *l);
	/* lock held, after apply or a failure: release what gather took */
	void (*done)(struct ctx_change *ch);
};

struct ctx_change {
	enum sfs_action act;
	const struct sfs_caller *c;
	const struct ctx_change_ops *ops;
	void *arg; /* the service's own record of the change */
	int pre;   /* SFS_OK, or a refusal found before the transaction */
	/* what a refusal names (ctx_settle, the default settle) */
	struct sfs_object about;
};
int ctx_change_run(struct sfs_ctx *ctx, struct ctx_change *ch,
		   struct sfs_error *err);

/* A settle for a change whose refusal names ch->about: rc, with a
 * refusal written by ctx_refuse_on(). */
int ctx_settle(struct ctx_change *ch, const struct sfs_policy_state *st, int rc,
	       struct sfs_error *err);

/* ctx_change_run for a change made of act, caller, ops and arg alone:
 * err cleared first. */
int ctx_change_go(struct sfs_ctx *ctx, enum sfs_action act,
		  const struct sfs_caller *c, const struct ctx_change_ops *ops,
		  void *arg, struct sfs_error *err);

/* Only ask: gather and the policy's answer for ch, in a read
 * transaction; nothing is applied and no line written. */
int ctx_change_ask(struct sfs_ctx *ctx, struct ctx_change *ch,
		   struct sfs_error *err);

/*
 * A listing's read transaction: err cleared, begin, gather(ctx, c, arg,
 * err) collects into arg what the caller hands on once the lock is let
 * go (SFS_ENOMEM gets its message), end. gather's result, or ctx_end's.
 */
typedef int (*ctx_gather_fn)(struct sfs_ctx *ctx, const struct sfs_caller *c,
			     void *arg, struct sfs_error *err);
int ctx_read_run(struct sfs_ctx *ctx, const struct sfs_caller *c,
		 ctx_gather_fn gather, void *arg, struct sfs_error *err);

/* Mutex held: begin, or unlock on failure. */
int ctx_begin_locked(struct sfs_ctx *ctx, int write, struct sfs_error *err);

/* A policy state with the context's facts (read-only) filled in. */
void ctx_state_init(const struct sfs_ctx *ctx, struct sfs_policy_state *st);

/*
 * Lock not held: the id of the secret named name into id ("" when there
 * is none), for the line of a change refused before the secret was read
 * (a read-only store, a bad argument), so that it names the real
 * secret_id as every other line does (issue 10, finding 14).
 */
void ctx_secret_id(struct sfs_ctx *ctx, const char *name,
		   char id[SFS_ID_MAX + 1]);

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

/*
 * Fresh random KMS material for key version kv of key k, stored wrapped
 * by the KEK in s (inside an open write transaction).
 */
int ctx_keyver_make(struct sfs_store *s, const struct sfs_crypto *crypto,
		    const unsigned char *store_id, const struct sfs_key_rec *k,
		    uint32_t kv, struct sfs_error *err);

#endif
