/*
 * Storage interface: records in, records out; ciphertext only.
 *
 * A backend is a struct sfs_store whose ops table implements every
 * operation below. It stores what the core hands it and decides nothing:
 * the rules live in policy.c and the services (secret.c, version.c,
 * keys.c), the crypto above it. Blobs (wrapped keys, value ciphertext,
 * canary) are opaque bytes to the backend. SQLite (store_sqlite.c) is the
 * embedded default; PostgreSQL (store_pg.c) implements the same table for
 * a store shared by many hosts. Records and limits live in records.h; the
 * sfs_store_* facade below is the only caller of the table.
 *
 * Transactions: every operation except begin/commit/rollback/close/
 * generation/check runs inside a transaction opened by begin() (the
 * facade asserts it). A write
 * transaction takes the store's write lock up front (so that a
 * read-modify-write in the core is atomic across processes), and
 * commit() returns only once the change is durable. Operations on one
 * struct sfs_store are not thread-safe: the caller serialises them (the
 * core holds one store per struct sfs_ctx behind a mutex).
 *
 * Errors: SFS_ENOENT for a missing row, SFS_EEXIST for a unique or
 * primary-key conflict, SFS_ENOSPC for a full disk, SFS_EIO for anything
 * else, with details in err.
 */
#ifndef SECRETFS_STORE_H
#define SECRETFS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "secretfs/err.h"
#include "secretfs/records.h"

struct sfs_store;

typedef int (*sfs_key_cb)(void *arg, const struct sfs_key_rec *k);
typedef int (*sfs_secret_cb)(void *arg, const struct sfs_secret_rec *s);
typedef int (*sfs_version_cb)(void *arg, const struct sfs_version_rec *v);
typedef int (*sfs_role_cb)(void *arg, const char *role, const char *principal);
typedef int (*sfs_audit_history_cb)(void *arg, const char *host,
				    const void *line, size_t len);
typedef int (*sfs_audit_pending_cb)(void *arg, int64_t seq, int64_t hint,
				    const void *line, size_t len);

/*
 * Callbacks return 0 to go on; any other value stops the listing and is
 * returned by the list operation. Records passed to callbacks are only
 * valid during the call. A callback may call other operations on the same
 * store, but not the listing in progress.
 *
 * commit() that fails has already rolled the transaction back (calling
 * rollback() afterwards is harmless); rollback() with no transaction open
 * does nothing. get operations overwrite *out entirely.
 */
struct sfs_store_ops {
	void (*close)(struct sfs_store *s);

	int (*begin)(struct sfs_store *s, int write, struct sfs_error *err);
	int (*commit)(struct sfs_store *s, struct sfs_error *err);
	void (*rollback)(struct sfs_store *s);

	/* meta: small named blobs (store id, canary, kdf params, ...) */
	int (*meta_get)(struct sfs_store *s, const char *name,
			struct sfs_blob *out, struct sfs_error *err);
	int (*meta_set)(struct sfs_store *s, const char *name, const void *v,
			size_t len, struct sfs_error *err);

	/* KMS keys; get accepts an id or a name */
	int (*key_get)(struct sfs_store *s, const char *id_or_name,
		       struct sfs_key_rec *out, struct sfs_error *err);
	int (*key_list)(struct sfs_store *s, sfs_key_cb cb, void *arg,
			struct sfs_error *err);
	int (*key_insert)(struct sfs_store *s, const struct sfs_key_rec *k,
			  struct sfs_error *err);
	/* updates state, description, current_version by id */
	int (*key_update)(struct sfs_store *s, const struct sfs_key_rec *k,
			  struct sfs_error *err);
	int (*key_delete)(struct sfs_store *s, const char *id,
			  struct sfs_error *err);
	/* *in_use = 1 when a version not destroyed was wrapped by the key or a
	 * secret has it as kms_key */
	int (*key_in_use)(struct sfs_store *s, const char *id, int *in_use,
			  struct sfs_error *err);
	int (*keyver_get)(struct sfs_store *s, const char *key_id,
			  uint32_t version, struct sfs_blob *wrapped,
			  struct sfs_error *err);
	int (*keyver_insert)(struct sfs_store *s, const char *key_id,
			     uint32_t version, const struct sfs_blob *wrapped,
			     int64_t created_at, struct sfs_error *err);
	/* replaces the wrapped material (rekey); SFS_ENOENT when absent.
	 * Optional: a backend without it cannot be re-keyed. */
	int (*keyver_set)(struct sfs_store *s, const char *key_id,
			  uint32_t version, const struct sfs_blob *wrapped,
			  struct sfs_error *err);

	/* secrets; get accepts an id or a name; list is in name order */
	int (*secret_get)(struct sfs_store *s, const char *id_or_name,
			  struct sfs_secret_rec *out, struct sfs_error *err);
	int (*secret_list)(struct sfs_store *s, sfs_secret_cb cb, void *arg,
			   struct sfs_error *err);
	int (*secret_insert)(struct sfs_store *s,
			     const struct sfs_secret_rec *r,
			     struct sfs_error *err);
	/* updates every field but id, created_at, created_by, by id */
	int (*secret_update)(struct sfs_store *s,
			     const struct sfs_secret_rec *r,
			     struct sfs_error *err);
	/* deletes the secret and its (destroyed) version rows */
	int (*secret_delete)(struct sfs_store *s, const char *id,
			     struct sfs_error *err);

	/* versions; list is in version order, without blobs */
	int (*version_get)(struct sfs_store *s, const char *secret_id,
			   uint32_t version, int with_blobs,
			   struct sfs_version_rec *out, struct sfs_error *err);
	int (*version_list)(struct sfs_store *s, const char *secret_id,
			    sfs_version_cb cb, void *arg,
			    struct sfs_error *err);
	/* inserts with blobs; SFS_EEXIST if (secret_id, version) exists */
	int (*version_insert)(struct sfs_store *s,
			      const struct sfs_version_rec *v,
			      struct sfs_error *err);
	/* sets the state; SFS_STATE_DESTROYED also erases both blobs for
	 * good (overwritten on disk, not merely unlinked) */
	int (*version_set_state)(struct sfs_store *s, const char *secret_id,
				 uint32_t version, int state,
				 struct sfs_error *err);

	/* roles: (role, principal) pairs, principal normalised */
	int (*role_grant)(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err);
	/* SFS_ENOENT when the pair was not granted */
	int (*role_revoke)(struct sfs_store *s, const char *role,
			   const char *principal, struct sfs_error *err);
	int (*role_list)(struct sfs_store *s, sfs_role_cb cb, void *arg,
			 struct sfs_error *err);

	/* health: 0 when the store's own consistency check passes, else
	 * SFS_EIO with the first problem in err */
	int (*check)(struct sfs_store *s, struct sfs_error *err);
	/* secrets, versions not destroyed, KMS keys */
	int (*counts)(struct sfs_store *s, uint64_t *secrets,
		      uint64_t *versions, uint64_t *keys,
		      struct sfs_error *err);
	/* A number that changes whenever any connection or process commits a
	 * change (this one included); monotonic for the life of the struct
	 * sfs_store. Needs no transaction and takes no lock: one read of a
	 * few bytes, cheap enough to call on every request. */
	uint64_t (*generation)(struct sfs_store *s);

	/* Up to limit secrets whose names sort after after_name ("" for the
	 * first), in name order: a page of a listing, so that a caller can
	 * list any number of secrets holding a bounded number of records.
	 * Optional: a backend may leave it NULL (the core then pages with
	 * secret_list). */
	int (*secret_list_after)(struct sfs_store *s, const char *after_name,
				 unsigned limit, sfs_secret_cb cb, void *arg,
				 struct sfs_error *err);

	/*
	 * Optional (NULL: the core then commits and writes its audit line
	 * afterwards, synced). Commit as commit() does and, once the change
	 * is durable, call after(arg) while the store's write lock is still
	 * held, so that no other writer of any process runs in between.
	 * after is not called when the commit fails.
	 */
	int (*commit_then)(struct sfs_store *s, void (*after)(void *arg),
			   void *arg, struct sfs_error *err);

	/*
	 * Optional, all four or none: audit lines of committed changes that
	 * are not yet known durable in the audit log. A line added in a
	 * write transaction commits with the change it records, so a crash
	 * after the commit cannot lose it; the core appends it to the log,
	 * and deletes it here once the log is synced. hint is the log's size
	 * when the line was added (a search for it there may start at hint);
	 * *seq (may be NULL) gets the line's number, increasing. list gives
	 * the lines in seq order; any sets *any to 1 when there is one.
	 */
	int (*audit_add)(struct sfs_store *s, const char *line, size_t len,
			 int64_t hint, int64_t *seq, struct sfs_error *err);
	int (*audit_list)(struct sfs_store *s, sfs_audit_pending_cb cb,
			  void *arg, struct sfs_error *err);
	int (*audit_del)(struct sfs_store *s, int64_t seq,
			 struct sfs_error *err);
	int (*audit_any)(struct sfs_store *s, int *any, struct sfs_error *err);

	/*
	 * Optional, both or none: a store shared by many hosts. remote_poll
	 * returns 1 when a change may have been committed elsewhere since
	 * the last call (or the backend cannot tell: fail closed), else 0;
	 * it never waits on a live server and uses a connection of its own,
	 * so one thread (the daemon's poller) may call it beside the other
	 * operations. remote_state writes "BACKEND SERVER listener up|down"
	 * to out and returns 1 when the listener is up; with cap 0 it only
	 * reads the listener's flag, without the store's connection, so
	 * that the poller may ask while another thread holds the store.
	 */
	int (*remote_poll)(struct sfs_store *s);
	int (*remote_state)(struct sfs_store *s, char *out, size_t cap);

	/* Optional (a shared store): every change's audit line the store
	 * keeps, of every host, in the order they committed; host names the
	 * host that made it. */
	int (*audit_history)(struct sfs_store *s, sfs_audit_history_cb cb,
			     void *arg, struct sfs_error *err);
};

enum sfs_store_txn { SFS_TXN_NONE = 0, SFS_TXN_READ = 1, SFS_TXN_WRITE = 2 };

struct sfs_store {
	const struct sfs_store_ops *ops;
	void *backend; /* the backend's own state */
	int txn;       /* the facade's: enum sfs_store_txn (zero it) */
};

/*
 * Tests only: how long a writer of a SQLite store waits for
 * DIR/write.lock before begin() fails with SFS_EIO, in ms, for every such
 * store of the process (default and ms <= 0: 10 s). Not thread-safe: call
 * before opening stores.
 */
void sfs_store_lock_wait(int ms);

/* Write the SQLite database path of store directory dir ("DIR/secretfs.db")
 * to out. 0, or SFS_EINVAL when it does not fit in cap bytes. */
int sfs_store_db_path(const char *dir, char *out, size_t cap);

/*
 * Tests only: at the next commit of any PostgreSQL store of the process,
 * cut its connection (when 1: just after COMMIT is sent, so the server
 * commits and the answer is lost; 2: before COMMIT, so nothing commits),
 * then call hook(arg) (may be NULL), then resolve the outcome giving up
 * after deadline_ms (<= 0: 10 s). One-shot; not thread-safe.
 */
void sfs_store_test_cut(int when, void (*hook)(void *arg), void *arg,
			int deadline_ms);

#define SFS_CONNINFO_MAX 1024

enum sfs_backend { SFS_BACKEND_SQLITE = 0, SFS_BACKEND_POSTGRESQL = 1 };

/* DIR/store.conf: which backend holds the store. */
struct sfs_store_conf {
	int backend; /* enum sfs_backend */
	char conninfo[SFS_CONNINFO_MAX + 1];
};

/*
 * Read DIR/store.conf: lines `backend = sqlite|postgresql` and
 * `conninfo = ...` (blank lines and lines starting with '#' skipped;
 * anything else is refused with SFS_EINVAL and the line number). No file:
 * SQLite. The file is opened without following symlinks and must be a
 * regular file owned by the caller and not readable or writable by group
 * or others (SFS_EACCES otherwise).
 */
int sfs_store_conf_read(const char *dir, struct sfs_store_conf *c,
			struct sfs_error *err);

/* Create DIR/store.conf (0600, O_EXCL) for c, synced. SFS_EINVAL when the
 * conninfo is empty or holds a line break. */
int sfs_store_conf_write(const char *dir, const struct sfs_store_conf *c,
			 struct sfs_error *err);

/*
 * The facade: the only callers of a backend's ops table. Each wrapper
 * forwards to the operation of the same name above, with the same
 * arguments, return codes and transaction rules. The optional operations
 * are asked for first: sfs_store_can_list_after() for secret_list_after,
 * sfs_store_can_stage() for commit_then and the four audit_* operations.
 */
int sfs_store_begin(struct sfs_store *s, int write, struct sfs_error *err);
int sfs_store_commit(struct sfs_store *s, struct sfs_error *err);
void sfs_store_rollback(struct sfs_store *s);
int sfs_store_meta_get(struct sfs_store *s, const char *name,
		       struct sfs_blob *out, struct sfs_error *err);
int sfs_store_meta_set(struct sfs_store *s, const char *name, const void *v,
		       size_t len, struct sfs_error *err);
int sfs_store_key_get(struct sfs_store *s, const char *id_or_name,
		      struct sfs_key_rec *out, struct sfs_error *err);
int sfs_store_key_list(struct sfs_store *s, sfs_key_cb cb, void *arg,
		       struct sfs_error *err);
int sfs_store_key_insert(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err);
int sfs_store_key_update(struct sfs_store *s, const struct sfs_key_rec *k,
			 struct sfs_error *err);
int sfs_store_key_delete(struct sfs_store *s, const char *id,
			 struct sfs_error *err);
int sfs_store_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			 struct sfs_error *err);
int sfs_store_keyver_get(struct sfs_store *s, const char *key_id,
			 uint32_t version, struct sfs_blob *wrapped,
			 struct sfs_error *err);
int sfs_store_keyver_insert(struct sfs_store *s, const char *key_id,
			    uint32_t version, const struct sfs_blob *wrapped,
			    int64_t created_at, struct sfs_error *err);
int sfs_store_keyver_set(struct sfs_store *s, const char *key_id,
			 uint32_t version, const struct sfs_blob *wrapped,
			 struct sfs_error *err);
int sfs_store_secret_get(struct sfs_store *s, const char *id_or_name,
			 struct sfs_secret_rec *out, struct sfs_error *err);
int sfs_store_secret_list(struct sfs_store *s, sfs_secret_cb cb, void *arg,
			  struct sfs_error *err);
int sfs_store_secret_insert(struct sfs_store *s,
			    const struct sfs_secret_rec *r,
			    struct sfs_error *err);
int sfs_store_secret_update(struct sfs_store *s,
			    const struct sfs_secret_rec *r,
			    struct sfs_error *err);
int sfs_store_secret_delete(struct sfs_store *s, const char *id,
			    struct sfs_error *err);
int sfs_store_version_get(struct sfs_store *s, const char *secret_id,
			  uint32_t version, int with_blobs,
			  struct sfs_version_rec *out, struct sfs_error *err);
int sfs_store_version_list(struct sfs_store *s, const char *secret_id,
			   sfs_version_cb cb, void *arg, struct sfs_error *err);
int sfs_store_version_insert(struct sfs_store *s,
			     const struct sfs_version_rec *v,
			     struct sfs_error *err);
int sfs_store_version_set_state(struct sfs_store *s, const char *secret_id,
				uint32_t version, int state,
				struct sfs_error *err);
int sfs_store_role_grant(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err);
int sfs_store_role_revoke(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err);
int sfs_store_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
			struct sfs_error *err);
int sfs_store_check(struct sfs_store *s, struct sfs_error *err);
int sfs_store_counts(struct sfs_store *s, uint64_t *secrets,
		     uint64_t *versions, uint64_t *keys, struct sfs_error *err);
uint64_t sfs_store_generation(struct sfs_store *s);
int sfs_store_can_list_after(const struct sfs_store *s);
int sfs_store_secret_list_after(struct sfs_store *s, const char *after_name,
				unsigned limit, sfs_secret_cb cb, void *arg,
				struct sfs_error *err);
int sfs_store_can_stage(const struct sfs_store *s);
int sfs_store_commit_then(struct sfs_store *s, void (*after)(void *arg),
			  void *arg, struct sfs_error *err);
int sfs_store_audit_add(struct sfs_store *s, const char *line, size_t len,
			int64_t hint, int64_t *seq, struct sfs_error *err);
int sfs_store_audit_list(struct sfs_store *s, sfs_audit_pending_cb cb,
			 void *arg, struct sfs_error *err);
int sfs_store_audit_del(struct sfs_store *s, int64_t seq,
			struct sfs_error *err);
int sfs_store_audit_any(struct sfs_store *s, int *any, struct sfs_error *err);
/* SFS_EINVAL when the store keeps no history (not shared). */
int sfs_store_audit_history(struct sfs_store *s, sfs_audit_history_cb cb,
			    void *arg, struct sfs_error *err);
/* For a store of one host (no remote_poll): 0, and -1 with "". */
int sfs_store_remote_poll(struct sfs_store *s);
int sfs_store_remote_state(struct sfs_store *s, char *out, size_t cap);

/*
 * Open the store of directory dir with the backend DIR/store.conf names
 * (SQLite without one): the one place a backend is chosen. create makes
 * (and migrates) the store; readonly opens without write access
 * (begin(write) then fails with SFS_EROFS) and creates no file;
 * SFS_ENOSTORE when there is no store and create is 0.
 */
int sfs_store_open(const char *dir, int create, int readonly,
		   struct sfs_store **out, struct sfs_error *err);

/* Close a store of any backend. NULL is fine. */
void sfs_store_close(struct sfs_store *s);

#endif
