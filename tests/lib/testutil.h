/*
 * Helpers shared by the Check suites: temporary directories and stores.
 * Every test gets a fresh temporary store (checked fixtures) and removes
 * it afterwards.
 */
#ifndef SECRETFS_TESTUTIL_H
#define SECRETFS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "secretfs/store.h"

/* mkdtemp under $TMPDIR (default /tmp); aborts on failure. malloc'd. */
char *tu_tmpdir(const char *tag);
/* Suites whose disk is a model (or whose fsync waits only slow them): put
 * temporary directories on /dev/shm when the machine has a writable one
 * and TMPDIR names nothing else. A struct harness setup hook. */
void tu_tmpdir_in_memory(void);
/* rm -rf path (no symlink following). */
void tu_rmrf(const char *path);
/* Write len bytes to path with the given mode; aborts on failure. */
void tu_write_file(const char *path, const void *data, size_t len, int mode);
/* Read a whole file; malloc'd, NUL-terminated; *len may be NULL. NULL when
 * it cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/* The environment a test store expects: Argon2id at its minimum cost
 * (SECRETFS_KDF_MIN=1), and no key, passphrase or store from it. */
void tu_env_isolate(void);

/* The lines of the file at path that contain needle (0 when it cannot be
 * read). With sum_key (e.g. "\"suppressed\":"), *sum gets the total of
 * the numbers that follow it in those lines. */
long tu_count_lines(const char *path, const char *needle, const char *sum_key,
		    long *sum);

struct sfs_ctx;

/*
 * A fresh store for one test: a temporary directory *tmp (malloc'd)
 * holding DIR = *tmp/store (written to store) on the backend
 * tu_backend_conninfo() names, initialised and opened
 * with Argon2id at its minimum cost and no key or passphrase from the
 * environment. Aborts with the core's message on failure.
 */
struct sfs_ctx *tu_store_open(const char *tag, char **tmp, char *store,
			      size_t cap);

struct sfs_caller;
struct sfs_error;

/* A caller through the filesystem: uid, gid, the roles already resolved,
 * pid 4242, comm "tester". */
struct sfs_caller tu_fs_caller(uint32_t uid, uint32_t gid, unsigned roles);

/* sfs_secret_create() as c of name with key (NULL: the service key) and
 * value (NULL: no first version; otherwise its strlen bytes). */
int tu_secret_create(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, const char *key, const char *value,
		     struct sfs_error *err);

/* The record of secret name (full view) or key name, as the process
 * itself; a lookup that fails fails the test. */
struct sfs_secret_rec tu_secret_get(struct sfs_ctx *ctx, const char *name);
struct sfs_key_rec tu_key_get(struct sfs_ctx *ctx, const char *name);

/* store/audit.log holds exactly n lines, and field of line i is want[i]
 * (a Check assertion otherwise). */
void tu_assert_audit_field(const char *store, const char *field,
			   const char *const *want, size_t n);

/*
 * The backend the suites run against: NULL for SQLite (the default), or,
 * when SECRETFS_TEST_BACKEND=postgresql, a conninfo (written to out) for
 * a new empty store on the server SECRETFS_TEST_PG_CONNINFO names
 * (tests/test_pg_core.c starts one and runs the core suites so). With
 * tu_store_open, every core suite runs on either backend unchanged.
 */
const char *tu_backend_conninfo(char *out, size_t cap);

/* The conninfo of the store tu_store_open() made last, or NULL when it is
 * an SQLite store. */
const char *tu_store_conninfo(void);

#endif
