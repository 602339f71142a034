/*
 * The context: one opened store with its master key proven.
 *
 * open checks the directory and every name in it first (ctx_dir.c,
 * storedir.c), then proves the master key (ctx_master.c) against the
 * canary before anything else is touched, so a wrong key or an untrusted
 * store changes nothing. Every copy of the master key is wiped once the
 * KEK is derived; only struct sfs_crypto holds key material for long,
 * besides the small KMS cache (ctx_cache.c). This file keeps open,
 * close and the accessors; init is ctx_init.c, transactions txn.c, the
 * audit lines of changes audit_stage.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_stage.h"
#include "ctx_cache.h"
#include "ctx_dir.h"
#include "ctx_master.h"
#include "ctx_watch.h"
#include "internal.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/ctx.h"
#include "secretfs/store.h"
#include "secretfs/storedir.h"

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
		rc = ctx_master_open(ctx, o, &kdf, err);
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
	ctx_gen_map(ctx, writable);
	rc = ctx_kms_new(ctx, err);
	if (rc == SFS_OK)
		rc = ctx_cache_new(ctx, err);
	if (rc == SFS_OK && !o->audit_off) {
		rc = ctx_path_join(path, sizeof(path), ctx->dir, AUDIT_NAME,
				   err);
		if (rc == SFS_OK)
			rc = sfs_audit_open(&ctx->audit, path, err);
		if (rc == SFS_OK && o->audit_max)
			sfs_audit_set_max(ctx->audit, o->audit_max);
	}
	if (rc == SFS_OK)
		ctx_audit_reconcile(ctx);
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
		rc = ctx_dir_resolve(o, dir, sizeof(dir), err);
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
	ctx->reg_fd = -1;
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

void sfs_ctx_close(struct sfs_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->audit)
		ctx_audit_flush(ctx);
	ctx_staged_clear(ctx);
	sfs_store_close(ctx->store);
	sfs_crypto_free(ctx->crypto);
	sfs_audit_close(ctx->audit);
	ctx_kms_free(ctx);
	ctx_cache_free(ctx);
	ctx_watch_close(ctx);
	if (ctx->gen_mapped)
		munmap(ctx->gen, sizeof(uint64_t));
	ctx_roles_free(ctx);
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
	ctx_cache_free(ctx);
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
	ctx_cache_reset(ctx, 0);
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
	/* the real store: its generation is trusted */
	ctx_cache_reset(ctx, 1);
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

int sfs_ctx_listener(struct sfs_ctx *ctx)
{
	return sfs_store_remote_state(ctx->store, NULL, 0);
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
