/*
 * Transactions of the services: lock + begin, end (commit, generation
 * bump, watcher wake-up, or rollback) + unlock, and the state gathering
 * every change shares (policy state, secret id, version states).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_stage.h"
#include "ctx_cache.h"
#include "ctx_dir.h"
#include "ctx_watch.h"
#include "internal.h"
#include "secretfs/store.h"

/* ---- helpers for the services ----------------------------------------- */

/* Mutex held: begin, or unlock on failure. */
int ctx_begin_locked(struct sfs_ctx *ctx, int write, struct sfs_error *err)
{
	int rc;

	/* A read-only context never writes: the policy refuses, and a
	 * read transaction does not contend for the store's write lock. */
	rc = sfs_store_begin(ctx->store, write && !ctx->readonly, err);
	if (rc != SFS_OK)
		pthread_mutex_unlock(&ctx->mutex);
	return rc;
}

int ctx_begin(struct sfs_ctx *ctx, int write, struct sfs_error *err)
{
	int rc;

	pthread_mutex_lock(&ctx->mutex);
	rc = ctx_begin_locked(ctx, write, err);
	return rc;
}

int ctx_end(struct sfs_ctx *ctx, int write, int rc, struct sfs_error *err)
{
	uint64_t slots = 0;
	int bumped = 0;

	if (write && rc == SFS_OK && !ctx->readonly) {
		if (ctx_staged(ctx))
			rc = ctx_staged_commit(ctx, err);
		else
			rc = sfs_store_commit(ctx->store, err);
		if (rc == SFS_OK) {
			__atomic_add_fetch(ctx->gen, 1, __ATOMIC_RELEASE);
			slots = ctx_watch_prepare(ctx);
			bumped = 1;
		}
	} else {
		sfs_store_rollback(ctx->store);
		if (write && rc == SFS_OK)
			rc =
			    sfs_error_set(err, SFS_EROFS, "store is read-only");
	}
	ctx_staged_clear(ctx); /* committed with it, or dropped */
	pthread_mutex_unlock(&ctx->mutex);
	if (bumped) /* cache=kernel mounts drop stale pages first */
		ctx_watch_sync(ctx, slots);
	return rc;
}

void ctx_state_init(const struct sfs_ctx *ctx, struct sfs_policy_state *st)
{
	memset(st, 0, sizeof(*st));
	st->readonly = ctx->readonly;
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
	rc = sfs_store_version_list(ctx->store, s->id, versions_collect, vs,
				    err);
	if (rc != SFS_OK)
		ctx_versions_release(vs);
	return rc;
}

void ctx_versions_release(struct ctx_versions *vs)
{
	free(vs->states);
	vs->states = NULL;
}

/* Transaction open: gather, then the policy's answer, settled. */
static int change_check(struct sfs_ctx *ctx, struct ctx_change *ch,
			struct sfs_policy_state *st, struct sfs_error *err)
{
	int rc;

	ctx_state_init(ctx, st);
	rc = ch->ops->gather ? ch->ops->gather(ctx, ch, st, err) : SFS_OK;
	if (rc != SFS_OK)
		return rc;
	rc = sfs_policy_check(ch->act, ch->c, st);
	return (ch->ops->settle ? ch->ops->settle : ctx_settle)(ch, st, rc,
								 err);
}

int ctx_change_ask(struct sfs_ctx *ctx, struct ctx_change *ch,
		   struct sfs_error *err)
{
	struct sfs_policy_state st;
	int rc = ctx_begin(ctx, 0, err);

	if (rc != SFS_OK)
		return rc;
	rc = change_check(ctx, ch, &st, err);
	if (ch->ops->done)
		ch->ops->done(ch);
	return ctx_end(ctx, 0, rc, err);
}

int ctx_read_run(struct sfs_ctx *ctx, const struct sfs_caller *c,
		 ctx_gather_fn gather, void *arg, struct sfs_error *err)
{
	int rc;

	sfs_error_clear(err);
	rc = ctx_begin(ctx, 0, err);
	if (rc != SFS_OK)
		return rc;
	rc = gather(ctx, c, arg, err);
	if (rc == SFS_ENOMEM)
		sfs_error_set(err, rc, "out of memory");
	return ctx_end(ctx, 0, rc, err);
}

/* Lock held, write transaction open: gather, ask, apply. */
static int change_locked(struct sfs_ctx *ctx, struct ctx_change *ch,
			 struct sfs_error *err)
{
	struct sfs_policy_state st;
	int rc;

	rc = change_check(ctx, ch, &st, err);
	if (rc == SFS_OK)
		rc = ch->ops->apply(ctx, ch, &st, err);
	return rc;
}

int ctx_change_run(struct sfs_ctx *ctx, struct ctx_change *ch,
		   struct sfs_error *err)
{
	struct ctx_audit_line l;
	int rc = ch->pre, staged = 0;

	if (rc == SFS_OK)
		rc = ctx_begin(ctx, 1, err);
	if (rc == SFS_OK) {
		rc = change_locked(ctx, ch, err);
		if (ch->ops->done)
			ch->ops->done(ch);
		if (rc == SFS_OK) {
			ch->ops->line(ctx, ch, rc, &l);
			staged = ctx_audit_stage(ctx, ch->c, &l);
		}
		rc = ctx_end(ctx, 1, rc, err);
	}
	if (staged && rc == SFS_OK)
		return rc; /* its line was committed with it */
	ch->ops->line(ctx, ch, rc, &l);
	ctx_audit(ctx, ch->c, &l);
	return rc;
}

int ctx_change_go(struct sfs_ctx *ctx, enum sfs_action act,
		  const struct sfs_caller *c, const struct ctx_change_ops *ops,
		  void *arg, struct sfs_error *err)
{
	struct ctx_change ch = {.act = act, .c = c, .ops = ops, .arg = arg};

	sfs_error_clear(err);
	return ctx_change_run(ctx, &ch, err);
}
