/*
 * Private to core/ (ctx_watch.c): the writer's side of the watcher table.
 */
#ifndef SECRETFS_CTX_WATCH_H
#define SECRETFS_CTX_WATCH_H

#include "ctx_layout.h"

/* ctx_watch.c: under ctx->mutex after a commit, map the watcher table
 * if it exists and return the slots to wait for (those locked at the
 * last full scan, made again when a daemon has registered since); after
 * the mutex is let go, sync wakes the watchers and waits for those
 * slots. At close, drop it all. */
uint64_t ctx_watch_prepare(struct sfs_ctx *ctx);
void ctx_watch_sync(struct sfs_ctx *ctx, uint64_t slots);
void ctx_watch_close(struct sfs_ctx *ctx);

#endif
