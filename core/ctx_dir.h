/*
 * Private to core/ (ctx_dir.c): the store directory as the context sees
 * it: its names, its creation and the undo of a failed init, and the
 * generation file.
 */
#ifndef SECRETFS_CTX_DIR_H
#define SECRETFS_CTX_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "ctx_layout.h"

#define KEY_NAME   "master.key"
#define AUDIT_NAME "audit.log"
#define GEN_NAME   "generation"

/* "dir/name" into out[cap], or SFS_EINVAL when too long. */
int ctx_path_join(char *out, size_t cap, const char *dir, const char *name,
		  struct sfs_error *err);

/* The store directory of o (its own, or sfs_ctx_default_dir()). */
int ctx_dir_resolve(const struct sfs_ctx_options *o, char *out, size_t cap,
		    struct sfs_error *err);

/* mkdir -p dir, 0700; *created when the last component was made. */
int ctx_dir_make(const char *dir, int *created, struct sfs_error *err);

/* The names present in a directory, to undo a failed init: walk with
 * undo 0 records them, with undo 1 removes every other name (and the
 * directory itself with rmdir_too). */
struct dir_snapshot {
	char **names;
	size_t n;
};
int ctx_snapshot_walk(const char *dir, struct dir_snapshot *s, int undo,
		      int remove_dir);
void ctx_snapshot_free(struct dir_snapshot *s);

/* DIR/generation: made at init, mapped shared at open (local when the
 * file cannot be mapped: a read-only store never changes). */
int ctx_gen_create(const char *dir, struct sfs_error *err);
void ctx_gen_map(struct sfs_ctx *ctx, int writable);

/* The store's generation mixed with the host's (ctx.c): the caches' key.
 * Lock held. */
uint64_t ctx_store_gen(struct sfs_ctx *ctx);

#endif
