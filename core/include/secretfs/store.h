/*
 * Storage interface: records in, records out; ciphertext only.
 *
 * A backend is a struct sfs_store whose ops table implements every
 * operation below. It stores what the core hands it and decides nothing:
 * the rules live in policy.c and the services (secret.c, version.c,
 * keys.c), the crypto above it. Blobs (wrapped keys, value ciphertext,
 * canary) are opaque bytes to the backend. SQLite (store_sqlite.c) is the
 * first backend; another (PostgreSQL, say) implements the same table.
 *
 * Transactions: every operation except begin/commit/rollback/close/
 * generation runs inside a transaction opened by begin(). A write
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

#define SFS_NAME_MAX 128
#define SFS_DESC_MAX 1024
#define SFS_VALUE_MAX 65536
#define SFS_ALLOWED_MAX 2047   /* bytes of the allowed_principals list */
#define SFS_PRINCIPAL_MAX 96   /* "uid:4294967295(some-long-user-name)" */
#define SFS_ID_MAX 36          /* UUID text */

enum sfs_state { SFS_STATE_ACTIVE = 0, SFS_STATE_DEACTIVATED = 1,
		 SFS_STATE_DESTROYED = 2 };
enum sfs_key_type { SFS_KEY_SERVICE = 0, SFS_KEY_USER = 1 };
enum sfs_format { SFS_FMT_TEXT = 0, SFS_FMT_JSON = 1, SFS_FMT_KV = 2 };

/* Heap bytes owned by whoever holds the struct; see sfs_blob_release. */
struct sfs_blob {
	unsigned char *data;
	size_t len;
};

/* Wipe and free b->data; leaves b empty. */
void sfs_blob_release(struct sfs_blob *b);

/* Times are nanoseconds since the Unix epoch, UTC. */
struct sfs_key_rec {
	char id[SFS_ID_MAX + 1];
	char name[SFS_NAME_MAX + 1];
	int type;  /* enum sfs_key_type */
	int state; /* SFS_STATE_ACTIVE or SFS_STATE_DEACTIVATED */
	char description[SFS_DESC_MAX + 1];
	int64_t created_at;
	char created_by[SFS_PRINCIPAL_MAX + 1];
	uint32_t current_version; /* newest key version, >= 1 */
};

struct sfs_secret_rec {
	char id[SFS_ID_MAX + 1];
	char name[SFS_NAME_MAX + 1];
	char description[SFS_DESC_MAX + 1];
	int status;                    /* SFS_STATE_ACTIVE / _DEACTIVATED */
	int access_control;            /* 1 enabled, 0 disabled */
	char allowed[SFS_ALLOWED_MAX + 1]; /* "uid:1,gid:2", normalised */
	uint32_t owner, group, mode;   /* mode: permission bits only */
	uint32_t default_version;      /* 0: none */
	uint32_t latest_version;       /* highest number ever used, 0: none */
	char kms_key_id[SFS_ID_MAX + 1];
	int64_t created_at;
	char created_by[SFS_PRINCIPAL_MAX + 1];
	int64_t changed_at;            /* last change of any field or version */
};

struct sfs_version_rec {
	char secret_id[SFS_ID_MAX + 1];
	uint32_t version;
	int state; /* enum sfs_state */
	int64_t created_at;
	char created_by[SFS_PRINCIPAL_MAX + 1];
	char kms_key_id[SFS_ID_MAX + 1];
	uint32_t kms_key_version;
	uint32_t size;  /* plaintext bytes */
	int format;     /* enum sfs_format */
	/* Filled only when asked for (version_get with_blobs); empty once
	 * destroyed. */
	struct sfs_blob wrapped_dek;
	struct sfs_blob ciphertext;
};

/* Release the blobs held by a version record. */
void sfs_version_rec_release(struct sfs_version_rec *v);

struct sfs_store;

typedef int (*sfs_key_cb)(void *arg, const struct sfs_key_rec *k);
typedef int (*sfs_secret_cb)(void *arg, const struct sfs_secret_rec *s);
typedef int (*sfs_version_cb)(void *arg, const struct sfs_version_rec *v);
typedef int (*sfs_role_cb)(void *arg, const char *role, const char *principal);
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
};

struct sfs_store {
	const struct sfs_store_ops *ops;
	void *backend; /* the backend's own state */
};

/*
 * Open (creating and migrating if create is set) the SQLite store in
 * directory dir: DIR/secretfs.db, with its WAL (secretfs.db-wal and -shm)
 * and DIR/write.lock, which every write transaction holds (see
 * store_sqlite.c). readonly opens without write access (begin(write) then
 * fails with SFS_EROFS) and creates no file. SFS_ENOSTORE when the
 * database does not exist and create is 0.
 */
int sfs_store_sqlite_open(const char *dir, int create, int readonly,
			  struct sfs_store **out, struct sfs_error *err);

/* Tests only: how long a writer waits for DIR/write.lock before begin()
 * fails with SFS_EIO, in ms, for every SQLite store of the process
 * (default and ms <= 0: 10 s, SQLite's busy timeout). Not thread-safe:
 * call before opening stores. */
void sfs_store_sqlite_lock_wait(int ms);

/* Write the SQLite database path of store directory dir ("DIR/secretfs.db")
 * to out. 0, or SFS_EINVAL when it does not fit in cap bytes. */
int sfs_store_sqlite_path(const char *dir, char *out, size_t cap);

/* Close a store of any backend. NULL is fine. */
void sfs_store_close(struct sfs_store *s);

#endif
