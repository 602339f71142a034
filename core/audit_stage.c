/*
 * The audit lines of changes, beside audit.c: a change's line staged in
 * its write transaction, stored with it and appended after the commit;
 * the pending lines a crash left reconciled at the next read-write open;
 * this context's own pending rows trimmed in batches and at close.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_stage.h"
#include "secretfs/audit.h"
#include "secretfs/store.h"

/* ---- pending audit lines (see "Audit lines of changes" below) --------- */

static int can_stage(const struct sfs_ctx *ctx);

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
 * perhaps never appended) reach the log, once. On a failure the rows are
 * kept for the next open; it does not fail the open.
 */
void ctx_audit_reconcile(struct sfs_ctx *ctx)
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
	if (rc == SFS_OK && any &&
	    (rc = sfs_store_begin(ctx->store, 1, &e)) == SFS_OK) {
		rc =
		    sfs_store_audit_list(ctx->store, pending_collect, &acc, &e);
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
}

/* Close: sync the log and drop this context's own pending rows. */
void ctx_audit_flush(struct sfs_ctx *ctx)
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

void ctx_staged_clear(struct sfs_ctx *ctx)
{
	free(ctx->staged.line);
	memset(&ctx->staged, 0, sizeof(ctx->staged));
}

static int can_stage(const struct sfs_ctx *ctx)
{

	return ctx->audit && !ctx->readonly && sfs_store_can_stage(ctx->store);
}

static void event_of(const struct sfs_ctx *ctx, struct sfs_audit_event *ev,
		     const struct sfs_caller *c, const struct ctx_audit_line *l)
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
	ctx_staged_clear(ctx);
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

int ctx_staged_commit(struct sfs_ctx *ctx, struct sfs_error *err)
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
	return rc;
}

int ctx_audit(struct sfs_ctx *ctx, const struct sfs_caller *c,
	      const struct ctx_audit_line *l)
{
	struct sfs_audit_event ev;

	event_of(ctx, &ev, c, l);
	return sfs_audit_write(ctx->audit, &ev);
}

int ctx_staged(const struct sfs_ctx *ctx)
{
	return ctx->staged.used;
}

int ctx_audit_stage(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    const struct ctx_audit_line *l)
{
	if (!l->change || l->result != SFS_OK || !can_stage(ctx) ||
	    stage(ctx, c, l) != SFS_OK)
		return 0;
	return 1;
}
