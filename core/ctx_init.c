/*
 * init makes a store in one go (directory, master key or Argon2id
 * parameters, database with store id, canary and service key, audit log,
 * generation file) in a new or empty, trusted directory (storedir.h), and
 * removes whatever it made if any step fails. init --join attaches to a
 * shared store another host made, once the master key is proven.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctx_dir.h"
#include "ctx_master.h"
#include "internal.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/principal.h"
#include "secretfs/store.h"
#include "secretfs/storedir.h"

/* ---- init ------------------------------------------------------------- */

int ctx_keyver_make(struct sfs_store *s, const struct sfs_crypto *crypto,
		    const unsigned char *store_id, const struct sfs_key_rec *k,
		    uint32_t kv, struct sfs_error *err)
{
	struct sfs_binding b = {store_id, NULL, 0, k->id, kv};
	unsigned char material[SFS_KEY_BYTES];
	unsigned char wrapped[SFS_WRAPPED_KEY_BYTES];
	struct sfs_blob blob = {wrapped, sizeof(wrapped)};
	int rc;

	sfs_crypto_random(material, sizeof(material));
	rc = sfs_crypto_kms_wrap(crypto, &b, material, wrapped);
	sfs_crypto_wipe(material, sizeof(material));
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "cannot wrap key material");
	return sfs_store_keyver_insert(s, k->id, kv, &blob, sfs_time_now(),
				       err);
}

struct init_state {
	const struct sfs_ctx_options *o;
	char dir[PATH_MAX];
	char keyfile[PATH_MAX];
	int dir_created, key_created, snapped, existed;
	struct dir_snapshot snap;
	unsigned char master[SFS_KEY_BYTES];
	unsigned char kdf[KDF_BLOB_BYTES];
	int has_kdf;
	struct sfs_crypto *crypto;
	struct sfs_store *store;
};

static int init_master(struct init_state *is, struct sfs_error *err)
{
	struct sfs_kdf_params p;
	char *pass = NULL;
	size_t len = 0;
	int rc;

	if (is->o->passphrase_file) {
		rc = sfs_crypto_passphrase_read(is->o->passphrase_file, &pass,
						&len, err);
		if (rc != SFS_OK)
			return rc;
		sfs_crypto_kdf_params_new(&p);
		ctx_kdf_encode(&p, is->kdf);
		is->has_kdf = 1;
		return ctx_kdf_derive(pass, len, &p, is->master, err);
	}
	rc =
	    ctx_key_path(is->o, is->dir, is->keyfile, sizeof(is->keyfile), err);
	if (rc != SFS_OK)
		return rc;
	/* An existing key file (e.g. a systemd credential) is used as is. */
	if (access(is->keyfile, F_OK) == 0)
		return sfs_crypto_master_load(is->keyfile, is->master, err);
	rc = sfs_crypto_master_generate(is->keyfile, is->master, err);
	if (rc == SFS_OK)
		is->key_created = 1;
	return rc;
}

static int init_service_key(struct init_state *is, const unsigned char *id,
			    struct sfs_error *err)
{
	struct sfs_key_rec k;
	int rc;

	memset(&k, 0, sizeof(k));
	sfs_crypto_uuid(k.id);
	ctx_strlcpy(k.name, "service", sizeof(k.name));
	k.type = SFS_KEY_SERVICE;
	k.state = SFS_STATE_ACTIVE;
	ctx_strlcpy(k.description, "the store's service key",
		    sizeof(k.description));
	k.created_at = sfs_time_now();
	sfs_principal_describe(getuid(), k.created_by, sizeof(k.created_by));
	k.current_version = 1;
	rc = sfs_store_key_insert(is->store, &k, err);
	if (rc != SFS_OK)
		return rc;
	return ctx_keyver_make(is->store, is->crypto, id, &k, 1, err);
}

/* In init's write transaction: a shared server may already hold a store
 * (another host made it), which only `init --join` attaches to. */
static int init_fresh(struct init_state *is, struct sfs_error *err)
{
	struct sfs_blob id = {NULL, 0};
	int rc = sfs_store_meta_get(is->store, "store_id", &id, err);

	sfs_blob_release(&id);
	if (rc == SFS_ENOENT) {
		sfs_error_clear(err);
		return SFS_OK;
	}
	return rc == SFS_OK ? sfs_error_set(err, SFS_EEXIST,
					    "the server already holds a "
					    "store: attach with init --join")
			    : rc;
}

/* init --join: prove the master key against the shared store's canary
 * before anything is written. */
static int init_join(struct init_state *is, struct sfs_error *err)
{
	struct sfs_blob id = {NULL, 0}, canary = {NULL, 0};
	int rc = sfs_store_begin(is->store, 0, err);

	if (rc == SFS_OK)
		rc = sfs_store_meta_get(is->store, "store_id", &id, err);
	if (rc == SFS_OK)
		rc = sfs_store_meta_get(is->store, "canary", &canary, err);
	sfs_store_rollback(is->store);
	if (rc == SFS_OK &&
	    (id.len != SFS_STORE_ID_BYTES ||
	     sfs_crypto_canary_check(is->crypto, id.data, canary.data,
				     canary.len) != SFS_OK))
		rc = sfs_error_set(err, SFS_EMASTER,
				   "wrong master key for the shared store");
	sfs_blob_release(&id);
	sfs_blob_release(&canary);
	return rc;
}

/* init --conninfo: DIR/store.conf names the PostgreSQL server. A join
 * uses the store's key, never a new one. */
static int init_conf(struct init_state *is, struct sfs_error *err)
{
	struct sfs_store_conf c;

	if (is->o->join &&
	    (is->o->passphrase_file || access(is->keyfile, F_OK) != 0))
		return sfs_error_set(err, SFS_EINVAL,
				     "init --join needs the store's master "
				     "key file (--master-key FILE)");
	memset(&c, 0, sizeof(c));
	c.backend = SFS_BACKEND_POSTGRESQL;
	if (strlen(is->o->conninfo) > SFS_CONNINFO_MAX)
		return sfs_error_set(err, SFS_EINVAL, "conninfo too long");
	memcpy(c.conninfo, is->o->conninfo, strlen(is->o->conninfo) + 1);
	return sfs_store_conf_write(is->dir, &c, err);
}

/* The database's contents, in one transaction. */
static int init_db(struct init_state *is, struct sfs_error *err)
{
	unsigned char id[SFS_STORE_ID_BYTES];
	unsigned char canary[SFS_CANARY_BYTES];
	int rc;

	sfs_crypto_random(id, sizeof(id));
	rc = sfs_crypto_canary_make(is->crypto, id, canary);
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "cannot make the canary");
	rc = sfs_store_begin(is->store, 1, err);
	if (rc != SFS_OK)
		return rc;
	rc = init_fresh(is, err);
	if (rc == SFS_OK)
		rc = sfs_store_meta_set(is->store, "store_id", id, sizeof(id),
					err);
	if (rc == SFS_OK)
		rc = sfs_store_meta_set(is->store, "canary", canary,
					sizeof(canary), err);
	if (rc == SFS_OK && is->has_kdf)
		rc = sfs_store_meta_set(is->store, "kdf", is->kdf,
					sizeof(is->kdf), err);
	if (rc == SFS_OK)
		rc = init_service_key(is, id, err);
	if (rc == SFS_OK)
		return sfs_store_commit(is->store, err);
	sfs_store_rollback(is->store);
	return rc;
}

static int init_files(struct init_state *is, struct sfs_error *err)
{
	char path[PATH_MAX];
	struct sfs_audit *a = NULL;
	int rc;

	rc = ctx_gen_create(is->dir, err);
	if (rc == SFS_OK)
		rc =
		    ctx_path_join(path, sizeof(path), is->dir, AUDIT_NAME, err);
	if (rc == SFS_OK)
		rc = sfs_audit_open(&a, path, err);
	sfs_audit_close(a);
	return rc;
}

static int init_check_new(const char *dir, struct sfs_error *err)
{
	struct sfs_store *s = NULL;
	struct sfs_error e2;
	int rc;

	sfs_error_clear(&e2);
	rc = sfs_store_open(dir, 0, 1, &s, &e2);
	sfs_store_close(s);
	if (rc == SFS_ENOSTORE)
		return SFS_OK;
	if (rc == SFS_OK)
		return sfs_error_set(err, SFS_EEXIST,
				     "store '%s' is already initialised", dir);
	return sfs_error_set(err, rc, "%s", e2.msg);
}

/* Make the new files' names durable: a file's fsync does not persist its
 * directory entry on every filesystem. */
static int dir_sync(const char *dir, struct sfs_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ok = fd >= 0 && fsync(fd) == 0;

	if (fd >= 0)
		close(fd);
	return ok ? SFS_OK
		  : sfs_error_set(err, SFS_EIO, "cannot sync directory '%s'",
				  dir);
}

static int init_run(struct init_state *is, struct sfs_error *err)
{
	int rc;

	rc = ctx_dir_make(is->dir, &is->dir_created, err);
	if (rc != SFS_OK)
		return rc;
	rc = ctx_snapshot_walk(is->dir, &is->snap, 0, 0);
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "cannot read directory '%s'",
				     is->dir);
	is->snapped = 1;
	/* an untrusted directory is refused before anything in it is read */
	rc = sfs_storedir_check(is->dir, err);
	if (rc == SFS_OK)
		rc = init_check_new(is->dir, err);
	if (rc == SFS_OK)
		rc = sfs_storedir_empty(is->dir, err);
	/* refused as it was found (an existing store, a non-empty or an
	 * untrusted directory): nothing in it is ours to undo */
	is->existed = rc == SFS_EEXIST || rc == SFS_EACCES;
	if (rc == SFS_OK && is->o->conninfo)
		rc = ctx_key_path(is->o, is->dir, is->keyfile,
				  sizeof(is->keyfile), err);
	if (rc == SFS_OK && is->o->conninfo)
		rc = init_conf(is, err);
	if (rc == SFS_OK)
		rc = init_master(is, err);
	if (rc == SFS_OK)
		rc = sfs_crypto_new(&is->crypto, is->master, err);
	sfs_crypto_wipe(is->master, sizeof(is->master));
	if (rc == SFS_OK)
		rc = sfs_store_open(is->dir, !is->o->join, 0, &is->store, err);
	if (rc == SFS_OK)
		rc = is->o->join ? init_join(is, err) : init_db(is, err);
	if (rc == SFS_OK)
		rc = init_files(is, err);
	if (rc == SFS_OK)
		rc = dir_sync(is->dir, err);
	return rc;
}

int sfs_ctx_init(const struct sfs_ctx_options *o, struct sfs_error *err)
{
	struct init_state is;
	int rc;

	sfs_error_clear(err);
	memset(&is, 0, sizeof(is));
	is.o = o;
	rc = sfs_crypto_global_init();
	if (rc == SFS_OK)
		rc = ctx_dir_resolve(o, is.dir, sizeof(is.dir), err);
	if (rc != SFS_OK)
		return rc;
	rc = init_run(&is, err);
	sfs_store_close(is.store);
	sfs_crypto_free(is.crypto);
	sfs_crypto_wipe(is.master, sizeof(is.master));
	if (rc != SFS_OK && !is.existed) {
		/* leave nothing half-made: remove only what this call made */
		if (is.key_created)
			unlink(is.keyfile);
		if (is.snapped)
			ctx_snapshot_walk(is.dir, &is.snap, 1, is.dir_created);
		else if (is.dir_created)
			rmdir(is.dir);
	}
	ctx_snapshot_free(&is.snap);
	return rc;
}
