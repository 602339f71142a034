/*
 * The context: one opened store with its master key proven, the handle
 * every service (keys.h, secret.h, version.h, role.h) takes first.
 *
 * Opening resolves the store directory, loads the master key (file or
 * passphrase), checks the canary (a wrong key is SFS_EMASTER and changes
 * nothing), opens the audit log and the storage backend. One struct
 * sfs_ctx owns one store connection; the services serialise on the
 * context's mutex, so a context may be shared by many threads.
 *
 * Concurrency across processes (the CLI beside a running daemon) and
 * across hosts is the storage backend's: see store_sqlite.c and
 * store_pg.c.
 */
#ifndef SECRETFS_CTX_H
#define SECRETFS_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "secretfs/err.h"
#include "secretfs/principal.h"

struct sfs_ctx;

/* Asked for a passphrase when the store was made with one and no
 * passphrase file was named. *out malloc'd, NUL-terminated; the core
 * wipes and frees it. Return SFS_OK or an error code. */
typedef int (*sfs_passphrase_fn)(void *arg, char **out, size_t *len);

struct sfs_ctx_options {
	const char *store_dir;       /* NULL: sfs_ctx_default_dir() */
	const char *master_key;      /* NULL: $SECRETFS_MASTER_KEY, else
				      * DIR/master.key */
	const char *passphrase_file; /* NULL: $SECRETFS_PASSPHRASE_FILE */
	sfs_passphrase_fn ask_passphrase; /* NULL: no prompt */
	void *ask_arg;
	int readonly;                /* refuse every change with SFS_EROFS */
	int audit_off;               /* no audit lines (mount -o audit=off) */
	int64_t audit_max;           /* rotate the log at this size (mount -o
				      * audit_max); 0: SFS_AUDIT_MAX_DEFAULT */
	int has_owner;               /* owner_uid is set */
	uint32_t owner_uid;          /* the mount's owner: holds every role */
	const char *conninfo;	     /* init: the store lives in PostgreSQL
				      * (DIR/store.conf names it) */
	int join;		     /* init: attach to the store conninfo
				      * names, proving the master key */
};

/*
 * The default store directory: $SECRETFS_STORE, else /var/lib/secretfs
 * for root, else $XDG_DATA_HOME/secretfs (default
 * ~/.local/share/secretfs).
 */
int sfs_ctx_default_dir(char *out, size_t cap, struct sfs_error *err);

/*
 * `secretfs init`: create the store directory (0700) if needed, the
 * master key file DIR/master.key (0400) unless o->passphrase_file is
 * set (then Argon2id parameters are stored instead), the database, the
 * service key and the canary. SFS_EEXIST when the store already exists
 * or the directory is not empty; SFS_EACCES when the directory is not to
 * be trusted (secretfs/storedir.h). Nothing is touched then.
 */
int sfs_ctx_init(const struct sfs_ctx_options *o, struct sfs_error *err);

/* Open an initialised store (SFS_ENOSTORE if none; SFS_EACCES, with
 * nothing touched, when its directory or a file in it is not to be
 * trusted: secretfs/storedir.h). */
int sfs_ctx_open(struct sfs_ctx **out, const struct sfs_ctx_options *o,
		 struct sfs_error *err);
void sfs_ctx_close(struct sfs_ctx *ctx);

/* Reopen the audit log at its next line (SIGHUP, after logrotate moved
 * it). Async-signal-safe. */
void sfs_ctx_audit_reopen(struct sfs_ctx *ctx);

/* The store directory and its database, key and audit paths. */
const char *sfs_ctx_dir(const struct sfs_ctx *ctx);
const char *sfs_ctx_master_key_path(const struct sfs_ctx *ctx); /* or NULL */
int sfs_ctx_readonly(const struct sfs_ctx *ctx);

/*
 * A number that changes whenever any process commits a change to the
 * store. Cheap (no database access): the daemon compares it to drop its
 * caches. Monotonic within a store's life.
 */
uint64_t sfs_ctx_generation(struct sfs_ctx *ctx);

/*
 * Watchers of the generation (ctx_watch.c): a daemon must drop what its
 * kernel caches (pages with cache=kernel, which sends no request per
 * open; names and attributes in every mode) before a writer returns.
 * register claims a slot in DIR/generation's table for this context
 * until it closes (0, or -1: no slot; the daemon then only polls). wait
 * sleeps until the generation differs from seen or ms pass and returns
 * it; ack tells writers everything up to gen is invalidated. After each
 * commit the core itself (ctx_end) wakes the watchers and waits, at most
 * 200 ms in all, for every live one to ack. A dead watcher's slot is
 * free at once (its lock died with it).
 */
int sfs_ctx_watch_register(struct sfs_ctx *ctx);
/* After register: this context's own commits do not wait for its own
 * slot (a daemon that invalidates what it changed itself). */
void sfs_ctx_watch_exempt_self(struct sfs_ctx *ctx);
uint64_t sfs_ctx_watch_wait(struct sfs_ctx *ctx, uint64_t seen, int ms);
void sfs_ctx_watch_ack(struct sfs_ctx *ctx, uint64_t gen);

/* The backend for health reports: "sqlite", or for a shared store
 * "postgresql HOST:PORT listener up|down" (the listener is the daemon's,
 * polled by sfs_ctx_watch_wait). Thread-safe. */
void sfs_ctx_backend(struct sfs_ctx *ctx, char *out, size_t cap);

/* A shared store's listener: 1 up, 0 down (every open re-reads the
 * store's generation), -1 for a store of one host. Takes no lock: for
 * the thread that polls (sfs_ctx_watch_wait). */
int sfs_ctx_listener(struct sfs_ctx *ctx);

/*
 * Re-wrap every KMS key version and remake the canary under the master
 * key in the file new_key_path, in one write transaction (core/rekey.c).
 * SFS_EINVAL for a passphrase store; SFS_EBADMSG (nothing changed) when
 * some stored material does not authenticate under the current key. The
 * context keeps the old key: close it and open with the new one.
 */
int sfs_ctx_rekey(struct sfs_ctx *ctx, const char *new_key_path,
		  struct sfs_error *err);

struct sfs_counts {
	uint64_t secrets, versions, keys;
};
int sfs_ctx_counts(struct sfs_ctx *ctx, struct sfs_counts *out,
		   struct sfs_error *err);

/*
 * Fill c->roles: SFS_ROLE_ALL for admin callers, root and the mount's
 * owner; otherwise the roles granted to the caller's uid, gid or groups.
 */
int sfs_ctx_resolve_roles(struct sfs_ctx *ctx, struct sfs_caller *c,
			  struct sfs_error *err);

/*
 * The context's storage backend. For tests and diagnostics: using it
 * bypasses the rules and the audit log. sfs_ctx_swap_store() installs s
 * (e.g. tests/lib/fault_store.h wrapping the real store, so I/O failure
 * paths are reachable) and returns the previous store, which the caller
 * then owns; the context closes whatever store it holds at close.
 */
struct sfs_store *sfs_ctx_store(struct sfs_ctx *ctx);

/*
 * A database connection must not cross fork(): SQLite's POSIX locks
 * belong to the process that took them, and a child that inherits a
 * connection (or SQLite's per-file state of one) believes it holds locks
 * the kernel never gave it, so another program's read may then delete
 * the WAL under it. A process that will fork after sfs_ctx_open() (the
 * daemon) closes the connection first with sfs_ctx_close_store(), which
 * leaves no SQLite state behind, and the child opens its own with
 * sfs_ctx_reopen_store(). Between the two, nothing may use the context.
 * reopen also replaces a connection still open. The key material stays;
 * the read cache is dropped.
 */
void sfs_ctx_close_store(struct sfs_ctx *ctx);
int sfs_ctx_reopen_store(struct sfs_ctx *ctx, struct sfs_error *err);
struct sfs_store *sfs_ctx_swap_store(struct sfs_ctx *ctx,
				     struct sfs_store *s);

#endif
