/*
 * Private to core/ (ctx_watch.c): the writer's side of the watcher table.
 */
#ifndef SECRETFS_CTX_WATCH_H
#define SECRETFS_CTX_WATCH_H

#include "ctx_layout.h"

/* ctx_watch.c: under ctx->mutex after a commit, map the watcher table
 * if it exists (once it does, no more system calls); at close, drop it. */
void ctx_watch_prepare(struct sfs_ctx *ctx);
void ctx_watch_close(struct sfs_ctx *ctx);

#endif
