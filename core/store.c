/*
 * The store facade and the helpers that do not depend on a backend: the
 * sfs_store_* wrappers are the only callers of a backend's ops table (so
 * that transaction checks and fault hooks have one place to live), and
 * sfs_store_open() is the one place a backend is chosen, from DIR/store.conf
 * (two `key = value` settings, parsed here: SQLite when there is no file).
 * Also closing a store of any kind and releasing the blobs records carry. Blobs
 * are ciphertext and wrapped keys only, but they are still wiped before free so
 * that no copy of a destroyed version lingers in freed heap. explicit_bzero
 * keeps this module free of the crypto module (the store links without
 * libsodium).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretfs/backup.h"
#include "secretfs/store.h"
#include "store_backend.h"

void sfs_store_close(struct sfs_store *s)
{
	if (s)
		s->ops->close(s);
}

void sfs_blob_release(struct sfs_blob *b)
{
	if (!b)
		return;
	if (b->data) {
		explicit_bzero(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

void sfs_version_rec_release(struct sfs_version_rec *v)
{
	if (!v)
		return;
	sfs_blob_release(&v->wrapped_dek);
	sfs_blob_release(&v->ciphertext);
}

/* ---- the facade: the only callers of the ops table ---------------------- */

/*
 * The contracts of store.h: an operation on records runs inside a
 * transaction (asserted). A change inside a read transaction is refused
 * with SFS_EROFS before it reaches the backend, whatever the backend
 * would do (SQLite would upgrade the transaction without the write lock).
 */
static void assert_txn(const struct sfs_store *s)
{
	assert(s->txn != SFS_TXN_NONE && "inside a transaction");
	(void)s;
}

static int write_txn(const struct sfs_store *s, struct sfs_error *err)
{
	struct sfs_object store;

	assert_txn(s);
	if (s->txn == SFS_TXN_WRITE)
		return SFS_OK;
	store = sfs_object_whole(SFS_OBJ_STORE);
	return sfs_error_about(err, SFS_EROFS, &store,
			       "a change inside a read transaction");
}

/* The two kinds of forward, one macro each: the backend's op on s with
 * the arguments after s, once the transaction state is right. A read
 * needs a transaction; a change a write transaction (else SFS_EROFS in
 * err, and the backend is not called). */
#define STORE_READ(s, op, ...) (assert_txn(s), (s)->ops->op((s), __VA_ARGS__))
#define STORE_CHANGE(s, err, op, ...)                                          \
	(write_txn((s), (err)) != SFS_OK ? SFS_EROFS                           \
					 : (s)->ops->op((s), __VA_ARGS__))

int sfs_store_begin(struct sfs_store *s, int write, struct sfs_error *err)
{
	int rc;

	assert(s->txn == SFS_TXN_NONE && "no transaction open");
	rc = s->ops->begin(s, write, err);
	if (rc == SFS_OK)
		s->txn = write ? SFS_TXN_WRITE : SFS_TXN_READ;
	return rc;
}

/* A failed commit has rolled back (store.h): no transaction either way. */
int sfs_store_commit(struct sfs_store *s, struct sfs_error *err)
{
	assert_txn(s);
	s->txn = SFS_TXN_NONE;
	return s->ops->commit(s, err);
}

void sfs_store_rollback(struct sfs_store *s)
{
	s->txn = SFS_TXN_NONE;
	s->ops->rollback(s);
}

int sfs_store_meta_get(struct sfs_store *s, const char *name,
		       struct sfs_blob *out, struct sfs_error *err)
{
	return STORE_READ(s, meta_get, name, out, err);
}

int sfs_store_meta_set(struct sfs_store *s, const char *name, const void *v,
		       size_t len, struct sfs_error *err)
{
	return STORE_CHANGE(s, err, meta_set, name, v, len, err);
}

/* What every record kind with an id and a name has: one record by id or
 * name, every record in name order, insert, update, delete by id. */
#define STORE_RECORDS(kind, rec_t, cb_t)                                       \
	int sfs_store_##kind##_get(struct sfs_store *s,                        \
				   const char *id_or_name, rec_t *out,         \
				   struct sfs_error *err)                      \
	{                                                                      \
		return STORE_READ(s, kind##_get, id_or_name, out, err);        \
	}                                                                      \
	int sfs_store_##kind##_list(struct sfs_store *s, cb_t cb, void *arg,   \
				    struct sfs_error *err)                     \
	{                                                                      \
		return STORE_READ(s, kind##_list, cb, arg, err);               \
	}                                                                      \
	int sfs_store_##kind##_insert(struct sfs_store *s, const rec_t *r,     \
				      struct sfs_error *err)                   \
	{                                                                      \
		return STORE_CHANGE(s, err, kind##_insert, r, err);            \
	}                                                                      \
	int sfs_store_##kind##_update(struct sfs_store *s, const rec_t *r,     \
				      struct sfs_error *err)                   \
	{                                                                      \
		return STORE_CHANGE(s, err, kind##_update, r, err);            \
	}                                                                      \
	int sfs_store_##kind##_delete(struct sfs_store *s, const char *id,     \
				      struct sfs_error *err)                   \
	{                                                                      \
		return STORE_CHANGE(s, err, kind##_delete, id, err);           \
	}

STORE_RECORDS(key, struct sfs_key_rec, sfs_key_cb)
STORE_RECORDS(secret, struct sfs_secret_rec, sfs_secret_cb)

int sfs_store_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			 struct sfs_error *err)
{
	return STORE_READ(s, key_in_use, id, in_use, err);
}

int sfs_store_keyver_get(struct sfs_store *s, const char *key_id,
			 uint32_t version, struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	return STORE_READ(s, keyver_get, key_id, version, wrapped, err);
}

int sfs_store_keyver_insert(struct sfs_store *s, const char *key_id,
			    uint32_t version, const struct sfs_blob *wrapped,
			    int64_t created_at, struct sfs_error *err)
{
	return STORE_CHANGE(s, err, keyver_insert, key_id, version, wrapped,
			    created_at, err);
}

int sfs_store_keyver_set(struct sfs_store *s, const char *key_id,
			 uint32_t version, const struct sfs_blob *wrapped,
			 struct sfs_error *err)
{
	if (write_txn(s, err) != SFS_OK)
		return SFS_EROFS;
	if (!s->ops->keyver_set)
		return sfs_error_set(err, SFS_EIO,
				     "this store cannot replace key material");
	return s->ops->keyver_set(s, key_id, version, wrapped, err);
}

int sfs_store_version_get(struct sfs_store *s, const char *secret_id,
			  uint32_t version, int with_blobs,
			  struct sfs_version_rec *out, struct sfs_error *err)
{
	return STORE_READ(s, version_get, secret_id, version, with_blobs, out,
			  err);
}

int sfs_store_version_list(struct sfs_store *s, const char *secret_id,
			   sfs_version_cb cb, void *arg, struct sfs_error *err)
{
	return STORE_READ(s, version_list, secret_id, cb, arg, err);
}

int sfs_store_version_insert(struct sfs_store *s,
			     const struct sfs_version_rec *v,
			     struct sfs_error *err)
{
	return STORE_CHANGE(s, err, version_insert, v, err);
}

int sfs_store_version_set_state(struct sfs_store *s, const char *secret_id,
				uint32_t version, int state,
				struct sfs_error *err)
{
	return STORE_CHANGE(s, err, version_set_state, secret_id, version,
			    state, err);
}

int sfs_store_role_grant(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err)
{
	return STORE_CHANGE(s, err, role_grant, role, principal, err);
}

int sfs_store_role_revoke(struct sfs_store *s, const char *role,
			  const char *principal, struct sfs_error *err)
{
	return STORE_CHANGE(s, err, role_revoke, role, principal, err);
}

int sfs_store_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
			struct sfs_error *err)
{
	return STORE_READ(s, role_list, cb, arg, err);
}

/* Outside a transaction too: the check takes its own snapshot. */
int sfs_store_check(struct sfs_store *s, struct sfs_error *err)
{
	return s->ops->check(s, err);
}

int sfs_store_counts(struct sfs_store *s, uint64_t *secrets, uint64_t *versions,
		     uint64_t *keys, struct sfs_error *err)
{
	return STORE_READ(s, counts, secrets, versions, keys, err);
}

uint64_t sfs_store_generation(struct sfs_store *s)
{
	return s->ops->generation(s);
}

int sfs_store_can_list_after(const struct sfs_store *s)
{
	return s->ops->secret_list_after != NULL;
}

int sfs_store_secret_list_after(struct sfs_store *s, const char *after_name,
				unsigned limit, sfs_secret_cb cb, void *arg,
				struct sfs_error *err)
{
	assert_txn(s);
	assert(s->ops->secret_list_after);
	return s->ops->secret_list_after(s, after_name, limit, cb, arg, err);
}

int sfs_store_can_stage(const struct sfs_store *s)
{
	const struct sfs_store_ops *o = s->ops;

	return o->commit_then && o->audit_add && o->audit_del &&
	       o->audit_list && o->audit_any;
}

int sfs_store_commit_then(struct sfs_store *s, void (*after)(void *arg),
			  void *arg, struct sfs_error *err)
{
	assert(sfs_store_can_stage(s));
	assert_txn(s);
	s->txn = SFS_TXN_NONE;
	return s->ops->commit_then(s, after, arg, err);
}

int sfs_store_audit_add(struct sfs_store *s, const char *line, size_t len,
			int64_t hint, int64_t *seq, struct sfs_error *err)
{
	if (write_txn(s, err) != SFS_OK)
		return SFS_EROFS;
	assert(sfs_store_can_stage(s));
	return s->ops->audit_add(s, line, len, hint, seq, err);
}

int sfs_store_audit_list(struct sfs_store *s, sfs_audit_pending_cb cb,
			 void *arg, struct sfs_error *err)
{
	assert_txn(s);
	assert(sfs_store_can_stage(s));
	return s->ops->audit_list(s, cb, arg, err);
}

int sfs_store_audit_del(struct sfs_store *s, int64_t seq,
			struct sfs_error *err)
{
	if (write_txn(s, err) != SFS_OK)
		return SFS_EROFS;
	assert(sfs_store_can_stage(s));
	return s->ops->audit_del(s, seq, err);
}

int sfs_store_audit_any(struct sfs_store *s, int *any, struct sfs_error *err)
{
	assert_txn(s);
	assert(sfs_store_can_stage(s));
	return s->ops->audit_any(s, any, err);
}

int sfs_store_audit_history(struct sfs_store *s, sfs_audit_history_cb cb,
			    void *arg, struct sfs_error *err)
{
	if (!s->ops->audit_history)
		return sfs_error_set(err, SFS_EINVAL,
				     "this store keeps no change history of "
				     "other hosts (it is not shared)");
	return s->ops->audit_history(s, cb, arg, err);
}

int sfs_store_remote_poll(struct sfs_store *s)
{
	return s->ops->remote_poll ? s->ops->remote_poll(s) : 0;
}

int sfs_store_remote_state(struct sfs_store *s, char *out, size_t cap)
{
	if (cap)
		out[0] = '\0';
	return s->ops->remote_state ? s->ops->remote_state(s, out, cap) : -1;
}

/* ---- choosing a backend ------------------------------------------------- */

#define CONF_NAME  "store.conf"
#define CONF_BYTES 4096

static int conf_path(const char *dir, char *out, size_t cap,
		     struct sfs_error *err)
{
	int n = snprintf(out, cap, "%s/%s", dir, CONF_NAME);

	if (n < 0 || (size_t)n >= cap)
		return sfs_error_set(err, SFS_EINVAL, "store path too long");
	return SFS_OK;
}

static char *trim(char *p)
{
	char *e = p + strlen(p);

	while (*p == ' ' || *p == '\t')
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return p;
}

/* One `key = value` line of path into c. */
static int conf_line(char *line, unsigned no, const char *path,
		     struct sfs_store_conf *c, int *seen, struct sfs_error *err)
{
	char *eq = strchr(line, '='), *key, *val;

	if (!eq)
		return sfs_error_set(err, SFS_EINVAL,
				     "'%s' line %u: expected 'key = value'",
				     path, no);
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);
	if (strcmp(key, "backend") == 0 && !(*seen & 1)) {
		*seen |= 1;
		if (strcmp(val, "postgresql") == 0)
			c->backend = SFS_BACKEND_POSTGRESQL;
		else if (strcmp(val, "sqlite") == 0)
			c->backend = SFS_BACKEND_SQLITE;
		else
			return sfs_error_set(err, SFS_EINVAL,
					     "'%s' line %u: unknown backend "
					     "'%s' (sqlite or postgresql)",
					     path, no, val);
		return SFS_OK;
	}
	if (strcmp(key, "conninfo") == 0 && !(*seen & 2) && *val &&
	    strlen(val) <= SFS_CONNINFO_MAX) {
		*seen |= 2;
		memcpy(c->conninfo, val, strlen(val) + 1);
		return SFS_OK;
	}
	return sfs_error_set(err, SFS_EINVAL,
			     "'%s' line %u: '%s' is not a setting (backend or "
			     "conninfo, once each, conninfo not empty)",
			     path, no, key);
}

static int conf_parse(char *text, const char *path, struct sfs_store_conf *c,
		      struct sfs_error *err)
{
	char *line, *save = NULL, *p;
	unsigned no = 0;
	int seen = 0, rc = SFS_OK;

	for (line = strtok_r(text, "\n", &save); line && rc == SFS_OK;
	     line = strtok_r(NULL, "\n", &save)) {
		no++;
		p = trim(line);
		if (*p && *p != '#')
			rc = conf_line(p, no, path, c, &seen, err);
	}
	if (rc == SFS_OK && c->backend == SFS_BACKEND_POSTGRESQL && !(seen & 2))
		rc = sfs_error_set(err, SFS_EINVAL, "'%s': no conninfo", path);
	return rc;
}

/* Open path without following a symlink; the caller's own regular file,
 * private to it. -1 with err set, else the descriptor. */
static int conf_open(const char *path, struct sfs_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0 && errno == ENOENT)
		return -2;
	if (fd < 0) {
		sfs_error_set(err, SFS_EACCES, "cannot open '%s': %s", path,
			      errno == ELOOP ? "a symbolic link"
					     : sfs_strerrno(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077)) {
		sfs_error_set(err, SFS_EACCES,
			      "'%s' must be a regular file owned by you with "
			      "mode 0600",
			      path);
		close(fd);
		return -1;
	}
	return fd;
}

int sfs_store_conf_read(const char *dir, struct sfs_store_conf *c,
			struct sfs_error *err)
{
	char path[4096], text[CONF_BYTES + 1];
	ssize_t n;
	int fd, rc;

	memset(c, 0, sizeof(*c));
	rc = conf_path(dir, path, sizeof(path), err);
	if (rc != SFS_OK)
		return rc;
	fd = conf_open(path, err);
	if (fd == -2)
		return SFS_OK;
	if (fd < 0)
		return err ? err->code : SFS_EACCES;
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0 || n > CONF_BYTES)
		return sfs_error_set(
		    err, SFS_EINVAL, "cannot read '%s': %s", path,
		    n < 0 ? sfs_strerrno(errno) : "over 4096 bytes");
	text[n] = '\0';
	if (memchr(text, '\0', (size_t)n))
		return sfs_error_set(err, SFS_EINVAL, "'%s': not text", path);
	return conf_parse(text, path, c, err);
}

int sfs_store_conf_write(const char *dir, const struct sfs_store_conf *c,
			 struct sfs_error *err)
{
	char path[4096], text[CONF_BYTES];
	int fd, n, rc;

	if (c->backend == SFS_BACKEND_POSTGRESQL &&
	    (!c->conninfo[0] || strpbrk(c->conninfo, "\r\n")))
		return sfs_error_set(err, SFS_EINVAL,
				     "conninfo must be one non-empty line");
	rc = conf_path(dir, path, sizeof(path), err);
	if (rc != SFS_OK)
		return rc;
	n = snprintf(text, sizeof(text), "backend = %s\n%s%s%s",
		     c->backend == SFS_BACKEND_POSTGRESQL ? "postgresql"
							  : "sqlite",
		     c->conninfo[0] ? "conninfo = " : "", c->conninfo,
		     c->conninfo[0] ? "\n" : "");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return sfs_error_set(
		    err, errno == EEXIST ? SFS_EEXIST : SFS_EIO,
		    "cannot create '%s': %s", path, sfs_strerrno(errno));
	rc = write(fd, text, (size_t)n) == n && fsync(fd) == 0
		 ? SFS_OK
		 : sfs_error_set(err, SFS_EIO, "cannot write '%s': %s", path,
				 sfs_strerrno(errno));
	close(fd);
	if (rc != SFS_OK)
		unlink(path);
	return rc;
}

int sfs_store_open(const char *dir, int create, int readonly,
		   struct sfs_store **out, struct sfs_error *err)
{
	struct sfs_store_conf c;
	int rc;

	*out = NULL;
	rc = sfs_store_conf_read(dir, &c, err);
	if (rc != SFS_OK)
		return rc;
	if (c.backend == SFS_BACKEND_POSTGRESQL)
		return sfs_store_pg_open(c.conninfo, dir, create, readonly, out,
					 err);
	return sfs_store_sqlite_open(dir, create, readonly, out, err);
}

/* ---- the SQLite backend's extras, and the tests' knobs ------------------ */

int sfs_store_db_path(const char *dir, char *out, size_t cap)
{
	return sfs_store_sqlite_path(dir, out, cap);
}

int sfs_store_backup(const char *dir, const char *file, struct sfs_error *err)
{
	return sfs_store_sqlite_backup(dir, file, err);
}

int sfs_store_restore(const char *file, const char *dir, struct sfs_error *err)
{
	return sfs_store_sqlite_restore(file, dir, err);
}

void sfs_store_lock_wait(int ms)
{
	sfs_store_sqlite_lock_wait(ms);
}

void sfs_store_test_cut(int when, void (*hook)(void *arg), void *arg,
			int deadline_ms)
{
	sfs_store_pg_test_cut(when, hook, arg, deadline_ms);
}
