/*
 * The store as the services show it, for suites that compare a store's
 * state before and after something happened (power loss, a failed disk,
 * a failing store call): a canonical text dump through the core API, and
 * a copy of a store directory to run something against.
 *
 * The dump names keys by name and leaves out ids and times (which differ
 * between two stores made the same way), so the same changes on two
 * copies give the same text. Each version's value is read as the process
 * itself and written as its length and its bytes in hex (a long one as
 * its length and FNV-1a 64 hash).
 *
 * The store's own dump is the other view: every record the backend holds
 * (ids, times, key material and blobs as length and hash, meta, roles,
 * counts), read in one read transaction through its operations.
 */
#ifndef SECRETFS_SVCDUMP_H
#define SECRETFS_SVCDUMP_H

struct sfs_ctx;
struct sfs_error;
struct sfs_store;

/* Keys, secrets with every version and its value, roles and counts, as
 * text (malloc'd); NULL with err set when a listing fails. Reading a
 * version that fails is written as its error name, not a failure. */
char *sd_dump(struct sfs_ctx *ctx, struct sfs_error *err);

/* Every record the store s holds, as text (malloc'd); NULL with err set
 * when a read fails. */
char *sd_store_dump(struct sfs_store *s, struct sfs_error *err);

/* sd_dump(), or with raw sd_store_dump() of the context's store; a
 * failure fails the test with its message. */
char *sd_dump_checked(struct sfs_ctx *ctx, int raw);

/* A new temporary directory (malloc'd, tagged tag) holding a copy of
 * every regular file of dir, modes kept. */
char *sd_copy_dir(const char *dir, const char *tag);

/* Open the store in dir (its own master.key, audit as configured);
 * aborts the test with the core's message on failure. */
struct sfs_ctx *sd_open(const char *dir, int audit_off);

#endif
