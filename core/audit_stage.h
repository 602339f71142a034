/*
 * Private to core/ (audit_stage.c): a change's audit line staged in its
 * transaction and appended after the commit; pending lines reconciled at
 * open and trimmed at close.
 */
#ifndef SECRETFS_AUDIT_STAGE_H
#define SECRETFS_AUDIT_STAGE_H

#include "ctx_layout.h"

/*
 * One audit line, written now. Returns sfs_audit_write()'s result.
 *
 * A change's line is staged instead by the change runner
 * (ctx_change_run, internal.h) with ctx_audit_stage(): ctx_end() stores
 * it in the change's transaction, so that a committed change cannot lose
 * its line to a crash, and appends it to the log right after the
 * commit. When the commit fails, the staged line is dropped and the
 * runner writes the line with the failure as result here, as for any
 * refused change. A store that cannot stage (no audit, a read-only
 * context, a store without the audit rows) gets the line written and
 * synced after the commit (a crash in between can then lose it).
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

/* Lock held, write transaction open: stage the line of a change that
 * succeeded, to be committed with it. 1 when staged; 0 when it cannot be
 * (no audit, a read-only context, a store that cannot hold it): the
 * caller then writes the line after the commit with ctx_audit(). */
int ctx_audit_stage(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    const struct ctx_audit_line *l);

/* txn.c's ctx_end(): ctx_staged() says whether a line waits,
 * ctx_staged_commit() commits with it, ctx_staged_clear() drops it. */
int ctx_staged(const struct sfs_ctx *ctx);
int ctx_staged_commit(struct sfs_ctx *ctx, struct sfs_error *err);
void ctx_staged_clear(struct sfs_ctx *ctx);

/* Open: lines a crash left pending reach the log, once. Close: sync the
 * log and drop this context's own pending rows. */
void ctx_audit_reconcile(struct sfs_ctx *ctx);
void ctx_audit_flush(struct sfs_ctx *ctx);

#endif
