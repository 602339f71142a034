/*
 * Store suite: the SQLite backend against the contract of store.h, and
 * the failing-store hook other suites use. Each test case checks one
 * behaviour on a fresh temporary store directory; multi-process cases
 * fork and assert outcomes (no lost update, the row is there), never
 * timings.
 */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/fault_store.h"
#include "lib/harness.h"
#include "lib/testutil.h"
#include "secretfs/store.h"

static char *dir;
static struct sfs_error err;

#define OK(x) ck_assert_msg((x) == 0, "%s: %s", #x, err.msg)
#define FAILS(x, code)                                                     \
	do {                                                               \
		int rc_ = (x);                                             \
		ck_assert_msg(rc_ == (code), "%s gave %d (%s), not %s", #x, \
			      rc_, err.msg, #code);                        \
	} while (0)

/* 64 distinctive bytes: no page of an SQLite file holds them by chance */
static const unsigned char PATTERN[64] =
	"\x5e\xc7\x3f\x00\xde\xad\xbe\xef The destroyed value must go"
	" \x01\x02\x03\x04 for good. 8<--8<--!!!!";

static void setup(void)
{
	dir = tu_tmpdir("store");
	sfs_error_clear(&err);
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
	dir = NULL;
}

static char *path_in(const char *name)
{
	static char p[4096];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static struct sfs_store *open_store(int create, int readonly)
{
	struct sfs_store *s = NULL;

	OK(sfs_store_open(dir, create, readonly, &s, &err));
	ck_assert_ptr_nonnull(s);
	return s;
}

/* UUID-shaped id number n */
static const char *uid(int n)
{
	static char ids[8][SFS_ID_MAX + 1];
	static int next;
	char *p = ids[next++ % 8];

	snprintf(p, SFS_ID_MAX + 1, "00000000-0000-4000-8000-%012d", n);
	return p;
}

static void key_rec(struct sfs_key_rec *k, const char *id, const char *name)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", id);
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->type = SFS_KEY_USER;
	k->state = SFS_STATE_ACTIVE;
	snprintf(k->description, sizeof(k->description), "key %s", name);
	k->created_at = 1700000000123456789LL;
	snprintf(k->created_by, sizeof(k->created_by), "uid:0(root)");
	k->current_version = 1;
}

static void secret_rec(struct sfs_secret_rec *r, const char *id,
		       const char *name, const char *key_id)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->description, sizeof(r->description), "d\xc3\xa9sc");
	r->status = SFS_STATE_ACTIVE;
	r->access_control = 1;
	snprintf(r->allowed, sizeof(r->allowed), "uid:1000,gid:100");
	r->owner = 1000;
	r->group = 100;
	r->mode = 0440;
	r->default_version = 2;
	r->latest_version = 3;
	snprintf(r->kms_key_id, sizeof(r->kms_key_id), "%s", key_id);
	r->created_at = 1700000000000000001LL;
	snprintf(r->created_by, sizeof(r->created_by), "uid:1000(alice)");
	r->changed_at = 1700000000000000002LL;
}

/* A version whose blobs point at the caller's bytes (not owned). */
static void version_rec(struct sfs_version_rec *v, const char *sid,
			uint32_t n, const char *key_id, const void *ct,
			size_t ct_len)
{
	static unsigned char dek[72];

	memset(v, 0, sizeof(*v));
	memset(dek, 0xd0 + (n & 0xf), sizeof(dek));
	snprintf(v->secret_id, sizeof(v->secret_id), "%s", sid);
	v->version = n;
	v->state = SFS_STATE_ACTIVE;
	v->created_at = 1700000000000000000LL + n;
	snprintf(v->created_by, sizeof(v->created_by), "uid:7(bob)");
	snprintf(v->kms_key_id, sizeof(v->kms_key_id), "%s", key_id);
	v->kms_key_version = 2;
	v->size = 5;
	v->format = SFS_FMT_JSON;
	v->wrapped_dek.data = dek;
	v->wrapped_dek.len = sizeof(dek);
	v->ciphertext.data = (unsigned char *)ct;
	v->ciphertext.len = ct_len;
}

/* A key K1 "k1" and a secret S1 "alpha" under it, committed. */
static void seed(struct sfs_store *s)
{
	struct sfs_key_rec k;
	struct sfs_secret_rec r;

	key_rec(&k, uid(1), "k1");
	secret_rec(&r, uid(101), "alpha", uid(1));
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_key_insert(s, &k, &err));
	OK(sfs_store_secret_insert(s, &r, &err));
	OK(sfs_store_commit(s, &err));
}

static void add_version(struct sfs_store *s, const char *sid, uint32_t n,
			const char *key_id, const void *ct, size_t len)
{
	struct sfs_version_rec v;

	version_rec(&v, sid, n, key_id, ct, len);
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_version_insert(s, &v, &err));
	OK(sfs_store_commit(s, &err));
}

static int file_has(const char *path, const void *needle, size_t n)
{
	size_t len = 0;
	char *data = tu_read_file(path, &len);
	int found;

	if (!data)
		return 0;
	found = memmem(data, len, needle, n) != NULL;
	free(data);
	return found;
}

/* 1 when any file in the store directory holds the bytes, read raw. */
static int dir_has(const void *needle, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	ck_assert_ptr_nonnull(d);
	while (!found && (e = readdir(d)))
		if (e->d_name[0] != '.')
			found = file_has(path_in(e->d_name), needle, n);
	closedir(d);
	return found;
}

/* Bytes 18 and 19 of the database header: 2 for WAL, 1 for rollback. */
static int header_mode(void)
{
	size_t len = 0;
	unsigned char *db = (unsigned char *)tu_read_file(
		path_in("secretfs.db"), &len);
	int mode;

	ck_assert_ptr_nonnull(db);
	ck_assert_uint_ge(len, 100);
	mode = db[18] == db[19] ? db[18] : -1;
	free(db);
	return mode;
}

static void mode_is_0600(const char *name)
{
	struct stat sb;

	ck_assert_int_eq(stat(path_in(name), &sb), 0);
	ck_assert_int_eq(sb.st_mode & 07777, 0600);
}

/* ---- open ----------------------------------------------------------- */

START_TEST(test_create_open_reopen)
{
	struct sfs_store *s = open_store(1, 0);
	unsigned char *hdr;
	struct stat sb;
	size_t len;
	char path[4096];

	ck_assert_int_eq(sfs_store_db_path(dir, path, sizeof(path)), 0);
	ck_assert_str_eq(path, path_in("secretfs.db"));
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 07777, 0600);
	sfs_store_close(s);

	/* user_version: big-endian at offset 60 of the database header;
	 * the close checkpointed, so the database file holds it */
	hdr = (unsigned char *)tu_read_file(path, &len);
	ck_assert_ptr_nonnull(hdr);
	ck_assert_uint_ge(len, 100);
	ck_assert_int_eq(hdr[60] << 24 | hdr[61] << 16 | hdr[62] << 8 | hdr[63],
			 2);
	free(hdr);
	ck_assert_int_eq(header_mode(), 2); /* WAL */

	seed(s = open_store(0, 0));
	/* WAL, wal-index and write lock are as private as the db */
	mode_is_0600("secretfs.db-wal");
	mode_is_0600("secretfs.db-shm");
	mode_is_0600("write.lock");
	ck_assert_int_eq(stat(path_in("secretfs.db-wal"), &sb), 0);
	ck_assert_int_gt(sb.st_size, 0); /* the commit is in the WAL */
	sfs_store_close(s);
	/* closing checkpointed: the WAL is empty, and kept for read-only
	 * opens */
	ck_assert_int_eq(stat(path_in("secretfs.db-wal"), &sb), 0);
	ck_assert_int_eq(sb.st_size, 0);
	s = open_store(1, 0); /* create on an existing store just opens */
	{
		struct sfs_secret_rec r;

		OK(sfs_store_begin(s, 0, &err));
		OK(sfs_store_secret_get(s, "alpha", &r, &err));
		sfs_store_rollback(s);
	}
	sfs_store_close(s);
	ck_assert_int_eq(sfs_store_db_path(dir, path, 8), SFS_EINVAL);
}
END_TEST

START_TEST(test_enostore)
{
	struct sfs_store *s = (struct sfs_store *)&s;

	FAILS(sfs_store_open(dir, 0, 0, &s, &err), SFS_ENOSTORE);
	ck_assert_ptr_null(s);
	FAILS(sfs_store_open(dir, 1, 1, &s, &err), SFS_ENOSTORE);
	ck_assert_int_eq(access(path_in("secretfs.db"), F_OK), -1);
	/* an empty database file is no store either */
	tu_write_file(path_in("secretfs.db"), "", 0, 0600);
	FAILS(sfs_store_open(dir, 0, 0, &s, &err), SFS_ENOSTORE);
	FAILS(sfs_store_open(dir, 0, 1, &s, &err), SFS_ENOSTORE);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
	struct sfs_store *s = open_store(1, 0);
	size_t len;
	char *db;

	sfs_store_close(s);
	db = tu_read_file(path_in("secretfs.db"), &len);
	ck_assert_ptr_nonnull(db);
	db[63] = 99; /* user_version 99 */
	tu_write_file(path_in("secretfs.db"), db, len, 0600);
	free(db);
	FAILS(sfs_store_open(dir, 1, 0, &s, &err), SFS_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "newer"));
}
END_TEST

/* ---- round trips ---------------------------------------------------- */

START_TEST(test_meta_roundtrip)
{
	struct sfs_store *s = open_store(1, 0);
	const unsigned char bin[5] = { 0, 1, 0xff, 0, 7 };
	struct sfs_blob b;

	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_meta_set(s, "store_id", bin, sizeof(bin), &err));
	OK(sfs_store_meta_set(s, "empty", NULL, 0, &err));
	OK(sfs_store_commit(s, &err));

	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_meta_get(s, "store_id", &b, &err));
	ck_assert_uint_eq(b.len, sizeof(bin));
	ck_assert_mem_eq(b.data, bin, sizeof(bin));
	sfs_blob_release(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	OK(sfs_store_meta_get(s, "empty", &b, &err));
	ck_assert_uint_eq(b.len, 0);
	FAILS(sfs_store_meta_get(s, "nope", &b, &err), SFS_ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "'nope'"));
	sfs_store_rollback(s);

	/* set overwrites */
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_meta_set(s, "store_id", "xy", 2, &err));
	OK(sfs_store_meta_get(s, "store_id", &b, &err));
	ck_assert_uint_eq(b.len, 2);
	ck_assert_mem_eq(b.data, "xy", 2);
	sfs_blob_release(&b);
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

static void assert_key_eq(const struct sfs_key_rec *a,
			  const struct sfs_key_rec *b)
{
	ck_assert_str_eq(a->id, b->id);
	ck_assert_str_eq(a->name, b->name);
	ck_assert_int_eq(a->type, b->type);
	ck_assert_int_eq(a->state, b->state);
	ck_assert_str_eq(a->description, b->description);
	ck_assert_int_eq(a->created_at, b->created_at);
	ck_assert_str_eq(a->created_by, b->created_by);
	ck_assert_uint_eq(a->current_version, b->current_version);
}

START_TEST(test_key_roundtrip)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_key_rec k, got;

	key_rec(&k, uid(1), "k1");
	k.type = SFS_KEY_SERVICE;
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_key_insert(s, &k, &err));
	OK(sfs_store_commit(s, &err));

	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_key_get(s, uid(1), &got, &err));
	assert_key_eq(&got, &k);
	OK(sfs_store_key_get(s, "k1", &got, &err));
	assert_key_eq(&got, &k);
	sfs_store_rollback(s);

	/* update: state, description, current_version */
	k.state = SFS_STATE_DEACTIVATED;
	snprintf(k.description, sizeof(k.description), "rotated");
	k.current_version = 3;
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_key_update(s, &k, &err));
	OK(sfs_store_commit(s, &err));
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_key_get(s, "k1", &got, &err));
	assert_key_eq(&got, &k);
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

START_TEST(test_keyver_roundtrip)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_blob w1 = { (unsigned char *)"wrapped-one", 11 };
	struct sfs_blob w2 = { (unsigned char *)"wrapped-two!", 12 };
	struct sfs_blob got;

	seed(s);
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_keyver_insert(s, uid(1), 1, &w1, 5, &err));
	OK(sfs_store_keyver_insert(s, uid(1), 2, &w2, 6, &err));
	FAILS(sfs_store_keyver_insert(s, uid(1), 2, &w1, 7, &err), SFS_EEXIST);
	OK(sfs_store_keyver_get(s, uid(1), 2, &got, &err));
	ck_assert_uint_eq(got.len, 12);
	ck_assert_mem_eq(got.data, "wrapped-two!", 12);
	sfs_blob_release(&got);
	OK(sfs_store_keyver_get(s, uid(1), 1, &got, &err));
	ck_assert_mem_eq(got.data, "wrapped-one", 11);
	sfs_blob_release(&got);
	FAILS(sfs_store_keyver_get(s, uid(1), 3, &got, &err), SFS_ENOENT);
	ck_assert_ptr_null(got.data);
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

static void assert_secret_eq(const struct sfs_secret_rec *a,
			     const struct sfs_secret_rec *b)
{
	ck_assert_str_eq(a->id, b->id);
	ck_assert_str_eq(a->name, b->name);
	ck_assert_str_eq(a->description, b->description);
	ck_assert_int_eq(a->status, b->status);
	ck_assert_int_eq(a->access_control, b->access_control);
	ck_assert_str_eq(a->allowed, b->allowed);
	ck_assert_uint_eq(a->owner, b->owner);
	ck_assert_uint_eq(a->group, b->group);
	ck_assert_uint_eq(a->mode, b->mode);
	ck_assert_uint_eq(a->default_version, b->default_version);
	ck_assert_uint_eq(a->latest_version, b->latest_version);
	ck_assert_str_eq(a->kms_key_id, b->kms_key_id);
	ck_assert_int_eq(a->created_at, b->created_at);
	ck_assert_str_eq(a->created_by, b->created_by);
	ck_assert_int_eq(a->changed_at, b->changed_at);
}

START_TEST(test_secret_get_by_id_and_name)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_secret_rec a, b, got;

	seed(s);
	secret_rec(&a, uid(101), "alpha", uid(1));
	/* a name that looks like the other secret's id: the id wins */
	secret_rec(&b, uid(102), uid(101), uid(1));
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_secret_insert(s, &b, &err));
	OK(sfs_store_commit(s, &err));

	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_secret_get(s, "alpha", &got, &err));
	assert_secret_eq(&got, &a);
	OK(sfs_store_secret_get(s, uid(101), &got, &err));
	assert_secret_eq(&got, &a);
	OK(sfs_store_secret_get(s, uid(102), &got, &err));
	assert_secret_eq(&got, &b);
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

START_TEST(test_secret_update)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_secret_rec r, got;
	struct sfs_key_rec k2;

	seed(s);
	key_rec(&k2, uid(2), "k2");
	secret_rec(&r, uid(101), "renamed", uid(2));
	snprintf(r.description, sizeof(r.description), "new");
	r.status = SFS_STATE_DEACTIVATED;
	r.access_control = 0;
	snprintf(r.allowed, sizeof(r.allowed), "user:carol");
	r.owner = 1;
	r.group = 2;
	r.mode = 0400;
	r.default_version = 0;
	r.latest_version = 9;
	r.changed_at = 42;
	/* id, created_at, created_by are fixed for life */
	r.created_at = 1;
	snprintf(r.created_by, sizeof(r.created_by), "uid:666(mallory)");
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_key_insert(s, &k2, &err));
	OK(sfs_store_secret_update(s, &r, &err));
	OK(sfs_store_commit(s, &err));

	OK(sfs_store_begin(s, 0, &err));
	FAILS(sfs_store_secret_get(s, "alpha", &got, &err), SFS_ENOENT);
	OK(sfs_store_secret_get(s, "renamed", &got, &err));
	r.created_at = 1700000000000000001LL;
	snprintf(r.created_by, sizeof(r.created_by), "uid:1000(alice)");
	assert_secret_eq(&got, &r);
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

START_TEST(test_secret_delete_takes_versions)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_version_rec v;
	struct sfs_secret_rec r;
	uint64_t ns, nv, nk;

	seed(s);
	add_version(s, uid(101), 1, uid(1), "c1", 2);
	add_version(s, uid(101), 2, uid(1), "c2", 2);
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_version_set_state(s, uid(101), 1, SFS_STATE_DESTROYED,
				     &err));
	OK(sfs_store_version_set_state(s, uid(101), 2, SFS_STATE_DESTROYED,
				     &err));
	OK(sfs_store_secret_delete(s, uid(101), &err));
	OK(sfs_store_commit(s, &err));

	OK(sfs_store_begin(s, 0, &err));
	FAILS(sfs_store_secret_get(s, uid(101), &r, &err), SFS_ENOENT);
	FAILS(sfs_store_version_get(s, uid(101), 1, 0, &v, &err), SFS_ENOENT);
	FAILS(sfs_store_version_get(s, uid(101), 2, 0, &v, &err), SFS_ENOENT);
	OK(sfs_store_counts(s, &ns, &nv, &nk, &err));
	ck_assert_uint_eq(ns, 0);
	OK(sfs_store_check(s, &err));
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

START_TEST(test_key_delete_takes_versions)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_blob w = { (unsigned char *)"w", 1 }, got;
	struct sfs_key_rec k;

	key_rec(&k, uid(5), "gone");
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_key_insert(s, &k, &err));
	OK(sfs_store_keyver_insert(s, uid(5), 1, &w, 1, &err));
	OK(sfs_store_commit(s, &err));
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_key_delete(s, uid(5), &err));
	OK(sfs_store_commit(s, &err));
	OK(sfs_store_begin(s, 0, &err));
	FAILS(sfs_store_key_get(s, "gone", &k, &err), SFS_ENOENT);
	FAILS(sfs_store_keyver_get(s, uid(5), 1, &got, &err), SFS_ENOENT);
	OK(sfs_store_check(s, &err));
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

static void assert_version_eq(const struct sfs_version_rec *a,
			      const struct sfs_version_rec *b)
{
	ck_assert_str_eq(a->secret_id, b->secret_id);
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_int_eq(a->state, b->state);
	ck_assert_int_eq(a->created_at, b->created_at);
	ck_assert_str_eq(a->created_by, b->created_by);
	ck_assert_str_eq(a->kms_key_id, b->kms_key_id);
	ck_assert_uint_eq(a->kms_key_version, b->kms_key_version);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_int_eq(a->format, b->format);
}

START_TEST(test_version_roundtrip)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_version_rec v, got;
	unsigned char big[SFS_VALUE_MAX + 40];
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 3);
	seed(s);
	version_rec(&v, uid(101), 1, uid(1), big, sizeof(big));
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_version_insert(s, &v, &err));
	OK(sfs_store_commit(s, &err));

	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_version_get(s, uid(101), 1, 1, &got, &err));
	assert_version_eq(&got, &v);
	ck_assert_uint_eq(got.ciphertext.len, sizeof(big));
	ck_assert_mem_eq(got.ciphertext.data, big, sizeof(big));
	ck_assert_uint_eq(got.wrapped_dek.len, v.wrapped_dek.len);
	ck_assert_mem_eq(got.wrapped_dek.data, v.wrapped_dek.data,
			 v.wrapped_dek.len);
	sfs_version_rec_release(&got);
	ck_assert_ptr_null(got.ciphertext.data);
	ck_assert_ptr_null(got.wrapped_dek.data);

	/* without blobs */
	OK(sfs_store_version_get(s, uid(101), 1, 0, &got, &err));
	assert_version_eq(&got, &v);
	ck_assert_ptr_null(got.ciphertext.data);
	ck_assert_ptr_null(got.wrapped_dek.data);
	sfs_store_rollback(s);

	/* set_state */
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_version_set_state(s, uid(101), 1, SFS_STATE_DEACTIVATED,
				     &err));
	OK(sfs_store_commit(s, &err));
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_version_get(s, uid(101), 1, 1, &got, &err));
	ck_assert_int_eq(got.state, SFS_STATE_DEACTIVATED);
	ck_assert_mem_eq(got.ciphertext.data, big, sizeof(big));
	sfs_version_rec_release(&got);
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

/* ---- lists ----------------------------------------------------------- */

struct names {
	char buf[8][SFS_NAME_MAX + 1];
	uint32_t nums[8];
	int n;
	int stop_at; /* return 77 when n reaches it */
};

static int collect_key(void *arg, const struct sfs_key_rec *k)
{
	struct names *c = arg;

	snprintf(c->buf[c->n++], sizeof(c->buf[0]), "%s", k->name);
	return c->n == c->stop_at ? 77 : 0;
}

static int collect_secret(void *arg, const struct sfs_secret_rec *r)
{
	struct names *c = arg;

	snprintf(c->buf[c->n++], sizeof(c->buf[0]), "%s", r->name);
	return c->n == c->stop_at ? 77 : 0;
}

static int collect_version(void *arg, const struct sfs_version_rec *v)
{
	struct names *c = arg;

	ck_assert_ptr_null(v->ciphertext.data);
	ck_assert_ptr_null(v->wrapped_dek.data);
	c->nums[c->n++] = v->version;
	return c->n == c->stop_at ? 77 : 0;
}

static int collect_role(void *arg, const char *role, const char *who)
{
	struct names *c = arg;

	snprintf(c->buf[c->n++], sizeof(c->buf[0]), "%s=%s", role, who);
	return c->n == c->stop_at ? 77 : 0;
}

START_TEST(test_list_order)
{
	struct sfs_store *s = open_store(1, 0);
	struct names c = { .n = 0 };
	struct sfs_key_rec k;
	struct sfs_secret_rec r;
	static const char *const names[] = { "m", "B", "a", "z-2", "z-10" };
	static const uint32_t nums[] = { 3, 10, 1, 2 };
	int i;

	OK(sfs_store_begin(s, 1, &err));
	for (i = 0; i < 5; i++) {
		key_rec(&k, uid(10 + i), names[i]);
		OK(sfs_store_key_insert(s, &k, &err));
		secret_rec(&r, uid(20 + i), names[i], uid(10));
		OK(sfs_store_secret_insert(s, &r, &err));
	}
	OK(sfs_store_commit(s, &err));
	for (i = 0; i < 4; i++)
		add_version(s, uid(20), nums[i], uid(10), "x", 1);

	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_key_list(s, collect_key, &c, &err));
	ck_assert_int_eq(c.n, 5);
	ck_assert_str_eq(c.buf[0], "B"); /* byte order */
	ck_assert_str_eq(c.buf[1], "a");
	ck_assert_str_eq(c.buf[2], "m");
	ck_assert_str_eq(c.buf[3], "z-10");
	ck_assert_str_eq(c.buf[4], "z-2");
	memset(&c, 0, sizeof(c));
	OK(sfs_store_secret_list(s, collect_secret, &c, &err));
	ck_assert_int_eq(c.n, 5);
	ck_assert_str_eq(c.buf[0], "B");
	ck_assert_str_eq(c.buf[4], "z-2");
	memset(&c, 0, sizeof(c));
	OK(sfs_store_version_list(s, uid(20), collect_version, &c, &err));
	ck_assert_int_eq(c.n, 4);
	ck_assert_uint_eq(c.nums[0], 1);
	ck_assert_uint_eq(c.nums[1], 2);
	ck_assert_uint_eq(c.nums[2], 3);
	ck_assert_uint_eq(c.nums[3], 10);
	memset(&c, 0, sizeof(c));
	OK(sfs_store_version_list(s, uid(21), collect_version, &c, &err));
	ck_assert_int_eq(c.n, 0);
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

/* A page of the listing: names after a given one, at most limit, in
 * byte order; the last page may be short or empty. */
START_TEST(test_secret_list_after_pages)
{
	struct sfs_store *s = open_store(1, 0);
	struct names c = { .n = 0 };
	struct sfs_key_rec k;
	struct sfs_secret_rec r;
	static const char *const names[] = { "m", "B", "a", "z-2", "z-10" };
	int i;

	OK(sfs_store_begin(s, 1, &err));
	key_rec(&k, uid(10), "k");
	OK(sfs_store_key_insert(s, &k, &err));
	for (i = 0; i < 5; i++) {
		secret_rec(&r, uid(20 + i), names[i], uid(10));
		OK(sfs_store_secret_insert(s, &r, &err));
	}
	OK(sfs_store_commit(s, &err));
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_secret_list_after(s, "", 2, collect_secret, &c, &err));
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.buf[0], "B");
	ck_assert_str_eq(c.buf[1], "a");
	memset(&c, 0, sizeof(c));
	OK(sfs_store_secret_list_after(s, "a", 2, collect_secret, &c, &err));
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.buf[0], "m");
	ck_assert_str_eq(c.buf[1], "z-10");
	memset(&c, 0, sizeof(c));
	OK(sfs_store_secret_list_after(s, "z-10", 2, collect_secret, &c, &err));
	ck_assert_int_eq(c.n, 1);
	ck_assert_str_eq(c.buf[0], "z-2");
	memset(&c, 0, sizeof(c));
	OK(sfs_store_secret_list_after(s, "z-2", 2, collect_secret, &c, &err));
	ck_assert_int_eq(c.n, 0);
	c.stop_at = 1;
	ck_assert_int_eq(sfs_store_secret_list_after(s, "", 5, collect_secret,
						   &c, &err), 77);
	ck_assert_int_eq(c.n, 1);
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

START_TEST(test_list_callback_stops)
{
	struct sfs_store *s = open_store(1, 0);
	struct names c = { .stop_at = 2 };
	struct sfs_key_rec k;
	int i;

	OK(sfs_store_begin(s, 1, &err));
	for (i = 0; i < 3; i++) {
		key_rec(&k, uid(i), i == 0 ? "a" : i == 1 ? "b" : "c");
		OK(sfs_store_key_insert(s, &k, &err));
		OK(sfs_store_role_grant(s, "manager", k.name, &err));
	}
	ck_assert_int_eq(sfs_store_key_list(s, collect_key, &c, &err), 77);
	ck_assert_int_eq(c.n, 2);
	c.n = 0;
	ck_assert_int_eq(sfs_store_role_list(s, collect_role, &c, &err), 77);
	ck_assert_int_eq(c.n, 2);
	/* the statement was reset: a new listing starts over */
	c.n = 0;
	c.stop_at = 0;
	OK(sfs_store_key_list(s, collect_key, &c, &err));
	ck_assert_int_eq(c.n, 3);
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

START_TEST(test_roles)
{
	struct sfs_store *s = open_store(1, 0);
	struct names c = { .n = 0 };

	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_role_grant(s, "manager", "uid:1000", &err));
	OK(sfs_store_role_grant(s, "kms-user", "gid:100", &err));
	OK(sfs_store_role_grant(s, "manager", "gid:100", &err));
	FAILS(sfs_store_role_grant(s, "manager", "uid:1000", &err), SFS_EEXIST);
	OK(sfs_store_role_revoke(s, "kms-user", "gid:100", &err));
	FAILS(sfs_store_role_revoke(s, "kms-user", "gid:100", &err),
	      SFS_ENOENT);
	OK(sfs_store_commit(s, &err));
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_role_list(s, collect_role, &c, &err));
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.buf[0], "manager=gid:100");
	ck_assert_str_eq(c.buf[1], "manager=uid:1000");
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

/* ---- conflicts and missing rows -------------------------------------- */

START_TEST(test_eexist)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_key_rec k;
	struct sfs_secret_rec r;
	struct sfs_version_rec v;

	seed(s);
	add_version(s, uid(101), 1, uid(1), "v1", 2);
	OK(sfs_store_begin(s, 1, &err));
	key_rec(&k, uid(2), "k1"); /* same name, new id */
	FAILS(sfs_store_key_insert(s, &k, &err), SFS_EEXIST);
	ck_assert_ptr_nonnull(strstr(err.msg, "'k1'"));
	key_rec(&k, uid(1), "k-other"); /* same id */
	FAILS(sfs_store_key_insert(s, &k, &err), SFS_EEXIST);
	secret_rec(&r, uid(102), "alpha", uid(1));
	FAILS(sfs_store_secret_insert(s, &r, &err), SFS_EEXIST);
	ck_assert_ptr_nonnull(strstr(err.msg, "'alpha'"));
	/* renaming onto a taken name */
	secret_rec(&r, uid(102), "beta", uid(1));
	OK(sfs_store_secret_insert(s, &r, &err));
	snprintf(r.name, sizeof(r.name), "alpha");
	FAILS(sfs_store_secret_update(s, &r, &err), SFS_EEXIST);
	version_rec(&v, uid(101), 1, uid(1), "again", 5);
	FAILS(sfs_store_version_insert(s, &v, &err), SFS_EEXIST);
	ck_assert_ptr_nonnull(strstr(err.msg, "version 1"));
	/* the transaction goes on after a refused statement */
	version_rec(&v, uid(101), 2, uid(1), "v2", 2);
	OK(sfs_store_version_insert(s, &v, &err));
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

START_TEST(test_enoent)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_key_rec k;
	struct sfs_secret_rec r;
	struct sfs_version_rec v;
	struct sfs_blob b;

	seed(s);
	OK(sfs_store_begin(s, 1, &err));
	FAILS(sfs_store_secret_get(s, "nope", &r, &err), SFS_ENOENT);
	ck_assert_str_eq(err.msg, "secret 'nope': not found");
	FAILS(sfs_store_secret_get(s, uid(999), &r, &err), SFS_ENOENT);
	FAILS(sfs_store_key_get(s, "nope", &k, &err), SFS_ENOENT);
	FAILS(sfs_store_version_get(s, uid(101), 1, 1, &v, &err), SFS_ENOENT);
	FAILS(sfs_store_version_get(s, uid(999), 1, 0, &v, &err), SFS_ENOENT);
	FAILS(sfs_store_keyver_get(s, uid(1), 1, &b, &err), SFS_ENOENT);
	FAILS(sfs_store_meta_get(s, "nope", &b, &err), SFS_ENOENT);
	FAILS(sfs_store_version_set_state(s, uid(101), 1, SFS_STATE_DESTROYED,
					&err),
	      SFS_ENOENT);
	secret_rec(&r, uid(999), "ghost", uid(1));
	FAILS(sfs_store_secret_update(s, &r, &err), SFS_ENOENT);
	FAILS(sfs_store_secret_delete(s, uid(999), &err), SFS_ENOENT);
	key_rec(&k, uid(999), "ghost");
	FAILS(sfs_store_key_update(s, &k, &err), SFS_ENOENT);
	FAILS(sfs_store_key_delete(s, uid(999), &err), SFS_ENOENT);
	FAILS(sfs_store_role_revoke(s, "manager", "uid:1", &err), SFS_ENOENT);
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

/* ---- key_in_use ------------------------------------------------------ */

static int in_use(struct sfs_store *s, const char *id)
{
	int u = -1;

	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_key_in_use(s, id, &u, &err));
	sfs_store_rollback(s);
	return u;
}

START_TEST(test_key_in_use)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_key_rec k;
	struct sfs_secret_rec r;

	seed(s); /* secret alpha uses k1 */
	key_rec(&k, uid(2), "k2");
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_key_insert(s, &k, &err));
	OK(sfs_store_commit(s, &err));
	ck_assert_int_eq(in_use(s, uid(1)), 1); /* a secret's kms key */
	ck_assert_int_eq(in_use(s, uid(2)), 0);
	ck_assert_int_eq(in_use(s, uid(999)), 0);

	/* a version wrapped by k2 under a secret on k1 */
	add_version(s, uid(101), 1, uid(2), "v", 1);
	ck_assert_int_eq(in_use(s, uid(2)), 1);
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_version_set_state(s, uid(101), 1, SFS_STATE_DEACTIVATED,
				     &err));
	OK(sfs_store_commit(s, &err));
	ck_assert_int_eq(in_use(s, uid(2)), 1); /* deactivated still counts */
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_version_set_state(s, uid(101), 1, SFS_STATE_DESTROYED,
				     &err));
	OK(sfs_store_commit(s, &err));
	ck_assert_int_eq(in_use(s, uid(2)), 0);

	/* the secret moves to k2: k1 is free, k2 taken */
	secret_rec(&r, uid(101), "alpha", uid(2));
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_secret_update(s, &r, &err));
	OK(sfs_store_commit(s, &err));
	ck_assert_int_eq(in_use(s, uid(1)), 0);
	ck_assert_int_eq(in_use(s, uid(2)), 1);
	/* a key whose only versions are destroyed can be deleted */
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_key_delete(s, uid(1), &err));
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

/* ---- destroy --------------------------------------------------------- */

START_TEST(test_destroy_erases_blobs)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_version_rec v;
	unsigned char ct[4 * 64], dek1[72];
	int i;

	for (i = 0; i < 4; i++)
		memcpy(ct + 64 * i, PATTERN, 64);
	memset(dek1, 0xd1, sizeof(dek1)); /* version_rec's wrapped key */
	seed(s);
	add_version(s, uid(101), 1, uid(1), ct, sizeof(ct));
	add_version(s, uid(101), 2, uid(1), "keep", 4);
	/* the test can fail: the pattern is on disk before (in the WAL) */
	ck_assert(dir_has(PATTERN, 64));
	ck_assert(dir_has(dek1, sizeof(dek1)));

	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_version_set_state(s, uid(101), 1, SFS_STATE_DESTROYED,
				     &err));
	OK(sfs_store_commit(s, &err));
	/* gone from every file, the WAL included, with the store still
	 * open: no close-time checkpoint helps here */
	ck_assert(!dir_has(PATTERN, 64));
	ck_assert(!dir_has(PATTERN + 32, 32));
	ck_assert(!dir_has(dek1, sizeof(dek1)));

	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_version_get(s, uid(101), 1, 1, &v, &err));
	ck_assert_int_eq(v.state, SFS_STATE_DESTROYED);
	ck_assert_ptr_null(v.ciphertext.data);
	ck_assert_uint_eq(v.ciphertext.len, 0);
	ck_assert_ptr_null(v.wrapped_dek.data);
	ck_assert_uint_eq(v.wrapped_dek.len, 0);
	OK(sfs_store_version_get(s, uid(101), 2, 1, &v, &err));
	ck_assert_mem_eq(v.ciphertext.data, "keep", 4);
	sfs_version_rec_release(&v);
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

/* ---- transactions ----------------------------------------------------- */

START_TEST(test_readonly_erofs)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_secret_rec r;

	seed(s);
	sfs_store_close(s);
	s = open_store(0, 1);
	FAILS(sfs_store_begin(s, 1, &err), SFS_EROFS);
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_secret_get(s, "alpha", &r, &err));
	/* a write slipped into a read transaction is refused too */
	FAILS(sfs_store_meta_set(s, "x", "y", 1, &err), SFS_EROFS);
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

/* The facade refuses a change in a read transaction of a read-write
 * store, where SQLite would upgrade the transaction without the write
 * lock; nothing is written. */
START_TEST(test_write_in_read_transaction_refused)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_blob b = { 0 };

	seed(s);
	OK(sfs_store_begin(s, 0, &err));
	FAILS(sfs_store_meta_set(s, "x", "y", 1, &err), SFS_EROFS);
	ck_assert_str_eq(err.msg, "store: a change inside a read transaction");
	OK(sfs_store_commit(s, &err));
	OK(sfs_store_begin(s, 0, &err));
	FAILS(sfs_store_meta_get(s, "x", &b, &err), SFS_ENOENT);
	OK(sfs_store_commit(s, &err));
	sfs_blob_release(&b);
	sfs_store_close(s);
}
END_TEST

START_TEST(test_rollback_discards)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_secret_rec r;
	struct sfs_key_rec k;

	seed(s);
	OK(sfs_store_begin(s, 1, &err));
	secret_rec(&r, uid(102), "beta", uid(1));
	OK(sfs_store_secret_insert(s, &r, &err));
	key_rec(&k, uid(1), "k1");
	k.state = SFS_STATE_DEACTIVATED;
	OK(sfs_store_key_update(s, &k, &err));
	OK(sfs_store_secret_get(s, "beta", &r, &err));
	sfs_store_rollback(s);
	sfs_store_rollback(s); /* none open: harmless */

	OK(sfs_store_begin(s, 0, &err));
	FAILS(sfs_store_secret_get(s, "beta", &r, &err), SFS_ENOENT);
	OK(sfs_store_key_get(s, "k1", &k, &err));
	ck_assert_int_eq(k.state, SFS_STATE_ACTIVE);
	OK(sfs_store_commit(s, &err));
	sfs_store_close(s);
}
END_TEST

START_TEST(test_two_connections_see_commits)
{
	struct sfs_store *a = open_store(1, 0), *b = open_store(0, 0);
	struct sfs_secret_rec r;
	uint64_t g0 = sfs_store_generation(b), g1;

	OK(sfs_store_begin(b, 0, &err));
	FAILS(sfs_store_secret_get(b, "alpha", &r, &err), SFS_ENOENT);
	OK(sfs_store_commit(b, &err));
	ck_assert_uint_eq(sfs_store_generation(b), g0); /* reads change none */

	seed(a);
	g1 = sfs_store_generation(b);
	ck_assert_uint_ne(g1, g0);
	ck_assert_uint_eq(sfs_store_generation(a), g1);
	OK(sfs_store_begin(b, 0, &err));
	OK(sfs_store_secret_get(b, "alpha", &r, &err));
	OK(sfs_store_commit(b, &err));

	/* and the other way round, and for the writer's own commit */
	OK(sfs_store_begin(b, 1, &err));
	OK(sfs_store_meta_set(b, "m", "1", 1, &err));
	OK(sfs_store_commit(b, &err));
	ck_assert_uint_gt(sfs_store_generation(b), g1);
	ck_assert_uint_gt(sfs_store_generation(a), g1);
	sfs_store_close(a);
	sfs_store_close(b);
}
END_TEST

#define ROUNDS 40

/*
 * ROUNDS read-modify-write increments of meta "counter"; 0 on success.
 * The pauses (work inside the transaction, then outside) only make the
 * two processes interleave instead of one winning every race; nothing
 * asserts on time.
 */
static int bump(struct sfs_store *s)
{
	struct sfs_error e;
	struct sfs_blob b;
	uint64_t n;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		if (sfs_store_begin(s, 1, &e) || sfs_store_meta_get(s, "counter",
								&b, &e))
			return 1;
		memcpy(&n, b.data, sizeof(n));
		sfs_blob_release(&b);
		n++;
		usleep(500);
		if (sfs_store_meta_set(s, "counter", &n, sizeof(n), &e) ||
		    sfs_store_commit(s, &e))
			return 2;
		usleep(500);
	}
	return 0;
}

START_TEST(test_writers_serialise)
{
	struct sfs_store *s = open_store(1, 0), *c;
	struct sfs_blob b;
	uint64_t n = 0;
	int status = -1, go[2];
	char ready;
	pid_t pid;

	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_meta_set(s, "counter", &n, sizeof(n), &err));
	OK(sfs_store_commit(s, &err));
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* a process of its own, with its own connection; the
		 * parent's is closed first, while the parent waits on the
		 * pipe and holds no lock */
		sfs_store_close(s);
		if (sfs_store_open(dir, 0, 0, &c, &err))
			_exit(9);
		if (write(go[1], "r", 1) != 1)
			_exit(8);
		status = bump(c);
		sfs_store_close(c);
		_exit(status);
	}
	/* start together so that the two really contend */
	ck_assert_int_eq(read(go[0], &ready, 1), 1);
	ck_assert_int_eq(bump(s), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	/* no update lost: each write lock was taken before the read */
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_meta_get(s, "counter", &b, &err));
	memcpy(&n, b.data, sizeof(n));
	sfs_blob_release(&b);
	sfs_store_rollback(s);
	ck_assert_uint_eq(n, 2 * ROUNDS);
	sfs_store_close(s);
}
END_TEST

/*
 * A process that holds DIR/write.lock and never lets go (stopped, hung)
 * does not hang writers: begin(write) fails with SFS_EIO once the wait
 * budget (shortened here to 200 ms) is spent, and succeeds once the
 * holder is gone. Readers are not held up at all.
 */
START_TEST(test_stuck_lock_holder_fails_writer)
{
	struct sfs_store *s = open_store(1, 0);
	int fd, go[2];
	char ready;
	pid_t pid;

	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		fd = open(path_in("write.lock"), O_RDWR);
		if (fd < 0 || flock(fd, LOCK_EX) ||
		    write(go[1], "r", 1) != 1)
			_exit(9);
		for (;;)
			pause();
	}
	ck_assert_int_eq(read(go[0], &ready, 1), 1);
	sfs_store_lock_wait(200);
	FAILS(sfs_store_begin(s, 1, &err), SFS_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "write.lock"));
	OK(sfs_store_begin(s, 0, &err)); /* a reader does not wait */
	sfs_store_rollback(s);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	sfs_error_clear(&err);
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_meta_set(s, "after", "x", 1, &err));
	OK(sfs_store_commit(s, &err));
	sfs_store_lock_wait(0);
	close(go[0]);
	close(go[1]);
	sfs_store_close(s);
}
END_TEST

/*
 * A commit that cannot write (file size limit reached mid-commit) reports
 * the failure, leaves no transaction open and the store as it was.
 */
static int failing_commit(void)
{
	/* more than the database holds: the WAL, empty since the last
	 * close, must grow past the database's size */
	static unsigned char big[150000];
	struct sfs_version_rec v;
	struct sfs_store *s;
	struct rlimit rl;
	struct stat sb;
	int rc;

	if (sfs_store_open(dir, 0, 0, &s, &err) ||
	    stat(path_in("secretfs.db"), &sb))
		return 10;
	signal(SIGXFSZ, SIG_IGN);
	rl.rlim_cur = rl.rlim_max = (rlim_t)sb.st_size + 1001;
	if (setrlimit(RLIMIT_FSIZE, &rl))
		return 11;
	version_rec(&v, uid(101), 1, uid(1), big, sizeof(big));
	if (sfs_store_begin(s, 1, &err))
		return 12;
	rc = sfs_store_version_insert(s, &v, &err);
	if (rc == 0)
		rc = sfs_store_commit(s, &err);
	else
		sfs_store_rollback(s);
	/* a short write of the WAL at the limit is SQLite's "full" */
	if ((rc != SFS_EIO && rc != SFS_ENOSPC) || !err.msg[0])
		return 13;
	if (sfs_store_begin(s, 0, &err)) /* no transaction left open */
		return 14;
	sfs_store_rollback(s);
	sfs_store_close(s);
	return 0;
}

START_TEST(test_failed_commit_changes_nothing)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_version_rec v;
	int status = -1;
	pid_t pid;

	seed(s);
	sfs_store_close(s);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(failing_commit());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	s = open_store(0, 0);
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_check(s, &err));
	FAILS(sfs_store_version_get(s, uid(101), 1, 0, &v, &err), SFS_ENOENT);
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

/* ---- health ---------------------------------------------------------- */

START_TEST(test_check_and_counts)
{
	struct sfs_store *s = open_store(1, 0);
	uint64_t ns = 9, nv = 9, nk = 9;

	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_check(s, &err));
	OK(sfs_store_counts(s, &ns, &nv, &nk, &err));
	ck_assert_uint_eq(ns, 0);
	ck_assert_uint_eq(nv, 0);
	ck_assert_uint_eq(nk, 0);
	sfs_store_rollback(s);
	seed(s);
	add_version(s, uid(101), 1, uid(1), "a", 1);
	add_version(s, uid(101), 2, uid(1), "b", 1);
	add_version(s, uid(101), 3, uid(1), "c", 1);
	OK(sfs_store_begin(s, 1, &err));
	OK(sfs_store_version_set_state(s, uid(101), 2, SFS_STATE_DESTROYED,
				     &err));
	OK(sfs_store_version_set_state(s, uid(101), 3, SFS_STATE_DEACTIVATED,
				     &err));
	OK(sfs_store_commit(s, &err));
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_counts(s, &ns, &nv, &nk, &err));
	ck_assert_uint_eq(ns, 1);
	ck_assert_uint_eq(nv, 2); /* destroyed ones do not count */
	ck_assert_uint_eq(nk, 1);
	OK(sfs_store_check(s, &err));
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

START_TEST(test_check_finds_corruption)
{
	struct sfs_store *s = open_store(1, 0);
	unsigned char ct[3000];
	size_t len, i;
	char *db;
	int rc;

	memset(ct, 0xab, sizeof(ct));
	seed(s);
	for (i = 1; i <= 8; i++)
		add_version(s, uid(101), (uint32_t)i, uid(1), ct, sizeof(ct));
	sfs_store_close(s);
	/* scribble over the header of page 2 (the meta table's root) */
	db = tu_read_file(path_in("secretfs.db"), &len);
	ck_assert_ptr_nonnull(db);
	ck_assert_uint_gt(len, 3 * 4096);
	memset(db + 4096, 0x7f, 12);
	tu_write_file(path_in("secretfs.db"), db, len, 0600);
	free(db);
	s = NULL;
	rc = sfs_store_open(dir, 0, 0, &s, &err);
	if (rc == 0) {
		rc = sfs_store_begin(s, 0, &err);
		if (rc == 0)
			rc = sfs_store_check(s, &err);
		sfs_store_rollback(s);
		sfs_store_close(s);
	}
	ck_assert_int_eq(rc, SFS_EIO);
	ck_assert(err.msg[0] != '\0');
}
END_TEST

/* The one row sql selects, its columns joined with '|', into out. */
static void db_row(const char *sql, char *out, size_t cap)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	size_t n = 0;
	int i;

	ck_assert_int_eq(sqlite3_open(path_in("secretfs.db"), &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	out[0] = '\0';
	for (i = 0; i < sqlite3_column_count(st); i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "|" : "",
				      (const char *)sqlite3_column_text(st, i));
	ck_assert_uint_lt(n, cap);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The record tables' column maps (core/store_cols.c) put every field in
 * the column of its name, as stores written before them hold it: a swap
 * of two like columns would pass a round trip but misread those stores. */
START_TEST(test_record_fields_land_in_their_named_columns)
{
	struct sfs_store *s = open_store(1, 0);
	char got[1024], want[1024];

	seed(s);
	add_version(s, uid(101), 1, uid(1), "value", 5);
	sfs_store_close(s);
	db_row("SELECT name, type, state, description, created_at, "
	       "created_by, current_version FROM kms_keys",
	       got, sizeof(got));
	snprintf(want, sizeof(want),
		 "k1|%d|%d|key k1|1700000000123456789|"
		 "uid:0(root)|1",
		 SFS_KEY_USER, SFS_STATE_ACTIVE);
	ck_assert_str_eq(got, want);
	db_row("SELECT id, name, description, status, access_control, allowed, "
	       "owner_uid, group_gid, mode, default_version, latest_version, "
	       "kms_key_id, created_at, created_by, changed_at FROM secrets",
	       got, sizeof(got));
	snprintf(want, sizeof(want),
		 "%s|alpha|d\xc3\xa9sc|%d|1|"
		 "uid:1000,gid:100|1000|100|288|2|3|%s|1700000000000000001|"
		 "uid:1000(alice)|1700000000000000002",
		 uid(101), SFS_STATE_ACTIVE, uid(1));
	ck_assert_str_eq(got, want);
	db_row("SELECT secret_id, version, state, created_at, created_by, "
	       "kms_key_id, kms_key_version, size, format FROM versions",
	       got, sizeof(got));
	snprintf(want, sizeof(want),
		 "%s|1|%d|1700000000000000001|uid:7(bob)|"
		 "%s|2|5|%d",
		 uid(101), SFS_STATE_ACTIVE, uid(1), SFS_FMT_JSON);
	ck_assert_str_eq(got, want);
}
END_TEST

/* Another program (the sqlite3 tool) commits: the generation moves, and
 * stays put while nobody commits. */
START_TEST(test_generation_moves_with_foreign_commits)
{
	struct sfs_store *a = open_store(1, 0);
	char path[4200];
	sqlite3 *db = NULL;
	uint64_t g;

	seed(a);
	g = sfs_store_generation(a);
	ck_assert_uint_eq(sfs_store_generation(a), g);
	snprintf(path, sizeof(path), "%s/secretfs.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "SELECT count(*) FROM secrets;",
				      NULL, NULL, NULL), SQLITE_OK);
	ck_assert_uint_eq(sfs_store_generation(a), g); /* a read: no move */
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE secrets SET mode = 256;",
				      NULL, NULL, NULL), SQLITE_OK);
	ck_assert_uint_gt(sfs_store_generation(a), g);
	g = sfs_store_generation(a);
	ck_assert_uint_eq(sfs_store_generation(a), g);
	sqlite3_close(db);
	sfs_store_close(a);
}
END_TEST

/* A store made with the rollback journal: a read-only open reads it as
 * it is, the first read-write open switches it to WAL for good. */
START_TEST(test_rollback_store_switches_to_wal)
{
	struct sfs_store *s = open_store(1, 0);
	struct sfs_secret_rec r;
	sqlite3 *db = NULL;

	seed(s);
	sfs_store_close(s);
	ck_assert_int_eq(sqlite3_open(path_in("secretfs.db"), &db),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA journal_mode = TRUNCATE;",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(header_mode(), 1);
	s = open_store(0, 1);
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_secret_get(s, "alpha", &r, &err));
	sfs_store_rollback(s);
	sfs_store_close(s);
	ck_assert_int_eq(header_mode(), 1);
	s = open_store(0, 0);
	ck_assert_int_eq(header_mode(), 2);
	OK(sfs_store_begin(s, 0, &err));
	OK(sfs_store_secret_get(s, "alpha", &r, &err));
	sfs_store_rollback(s);
	sfs_store_close(s);
}
END_TEST

/*
 * As another user (root ignores modes): open the store read-only, read
 * version 1 of "alpha"; the exit status says how far it got.
 */
static int read_as_nobody(void)
{
	struct sfs_version_rec v;
	struct sfs_store *s = NULL;
	int rc;

	if (setgid(65534) || setuid(65534))
		return 10;
	if (sfs_store_open(dir, 0, 1, &s, &err))
		return 11;
	rc = sfs_store_begin(s, 0, &err);
	if (rc == 0)
		rc = sfs_store_version_get(s, uid(101), 1, 1, &v, &err);
	if (rc)
		return 12;
	rc = v.ciphertext.len == 6 &&
	     memcmp(v.ciphertext.data, "in-wal", 6) == 0 ? 0 : 13;
	sfs_version_rec_release(&v);
	sfs_store_rollback(s);
	if (sfs_store_begin(s, 1, &err) != SFS_EROFS)
		rc = 14;
	sfs_store_close(s);
	return rc;
}

/* fn's result in a child. The child reports it through a pipe and dies
 * by SIGKILL: it holds the parent's open store, which no exit-time check
 * (valgrind's leak check) should count. */
static int child_status(int (*fn)(void))
{
	int status = -1, rc = -1, p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		rc = fn();
		if (write(p[1], &rc, sizeof(rc)) != (ssize_t)sizeof(rc))
			_exit(1);
		kill(getpid(), SIGKILL);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &rc, sizeof(rc)), (ssize_t)sizeof(rc));
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	return rc;
}

static void chown_all(uid_t u, gid_t g)
{
	static const char *names[] = {"secretfs.db", "secretfs.db-wal",
				      "secretfs.db-shm", "write.lock"};
	size_t i;

	ck_assert_int_eq(chown(dir, u, g), 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_int_eq(chown(path_in(names[i]), u, g), 0);
}

/* A store directory its reader may not write (a read-only bind mount, a
 * backup, another user's store): SQLite opens a WAL database read-only
 * as long as the -wal and -shm files exist, which the store keeps. With
 * the -shm writable to the reader, and with every file read-only (SQLite
 * then reads the WAL into heap memory). As root the mode bits do not
 * bind, so the reader is a child that became nobody. */
START_TEST(test_readonly_dir_as_other_user)
{
	struct sfs_store *w = open_store(1, 0);

	seed(w);
	sfs_store_close(w);
	w = open_store(0, 0);
	add_version(w, uid(101), 1, uid(1), "in-wal", 6); /* not closed */
	if (getuid() != 0) {
		sfs_store_close(w);
		return; /* cannot become another user */
	}
	chown_all(65534, 65534);
	ck_assert_int_eq(chmod(dir, 0500), 0);
	ck_assert_int_eq(child_status(read_as_nobody), 0);
	sfs_store_close(w);
	ck_assert_int_eq(chmod(path_in("secretfs.db-shm"), 0400), 0);
	ck_assert_int_eq(chmod(path_in("secretfs.db-wal"), 0400), 0);
	ck_assert_int_eq(chmod(path_in("secretfs.db"), 0400), 0);
	ck_assert_int_eq(child_status(read_as_nobody), 0);
	ck_assert_int_eq(chmod(dir, 0700), 0);
	chown_all(0, 0);
}
END_TEST

/* A read-only directory (a read-only bind mount, a backup): the store
 * opens read-only and sees what was committed, in the WAL or not. */
START_TEST(test_readonly_dir_opens)
{
	struct sfs_store *w = open_store(1, 0), *r;
	struct sfs_secret_rec rec;
	struct sfs_version_rec v;

	seed(w);
	sfs_store_close(w);
	w = open_store(0, 0);
	add_version(w, uid(101), 1, uid(1), "in-wal", 6);
	ck_assert_int_eq(chmod(dir, 0500), 0);
	r = open_store(0, 1);
	OK(sfs_store_begin(r, 0, &err));
	OK(sfs_store_secret_get(r, "alpha", &rec, &err));
	OK(sfs_store_version_get(r, uid(101), 1, 1, &v, &err));
	ck_assert_mem_eq(v.ciphertext.data, "in-wal", 6);
	sfs_version_rec_release(&v);
	sfs_store_rollback(r);
	FAILS(sfs_store_begin(r, 1, &err), SFS_EROFS);
	sfs_store_close(r);
	sfs_store_close(w);
	/* and with no writer open */
	r = open_store(0, 1);
	OK(sfs_store_begin(r, 0, &err));
	OK(sfs_store_secret_get(r, "alpha", &rec, &err));
	sfs_store_rollback(r);
	sfs_store_close(r);
	ck_assert_int_eq(chmod(dir, 0700), 0);
}
END_TEST

/* ---- fault store ------------------------------------------------------ */

START_TEST(test_fault_store_forwards)
{
	struct sfs_store *f = fault_store_wrap(open_store(1, 0));
	struct sfs_secret_rec r;
	uint64_t ns, nv, nk, g;

	g = sfs_store_generation(f);
	seed(f);
	ck_assert_uint_ne(sfs_store_generation(f), g);
	add_version(f, uid(101), 1, uid(1), "x", 1);
	OK(sfs_store_begin(f, 0, &err));
	OK(sfs_store_secret_get(f, "alpha", &r, &err));
	ck_assert_str_eq(r.id, uid(101));
	OK(sfs_store_counts(f, &ns, &nv, &nk, &err));
	ck_assert_uint_eq(nv, 1);
	OK(sfs_store_check(f, &err));
	sfs_store_rollback(f);
	/* begin, 2 inserts, commit; begin, insert, commit; begin, get,
	 * counts, check */
	ck_assert_int_eq(fault_store_calls(f), 11);
	sfs_store_close(f); /* closes the inner store too */
}
END_TEST

START_TEST(test_fault_store_fails_nth)
{
	struct sfs_store *f = fault_store_wrap(open_store(1, 0));
	struct sfs_secret_rec r;
	struct sfs_key_rec k;

	seed(f);
	fault_store_fail(f, 2, SFS_EIO);
	OK(sfs_store_begin(f, 0, &err));
	FAILS(sfs_store_secret_get(f, "alpha", &r, &err), SFS_EIO);
	ck_assert_str_eq(err.msg, "fault store: injected failure in "
				  "secret_get");
	FAILS(sfs_store_key_get(f, "k1", &k, &err), SFS_EIO); /* sticky */
	sfs_store_rollback(f); /* always forwarded */
	FAILS(sfs_store_begin(f, 0, &err), SFS_EIO);
	fault_store_reset(f);

	fault_store_fail_once(f, 1, SFS_ENOSPC);
	FAILS(sfs_store_begin(f, 1, &err), SFS_ENOSPC);
	OK(sfs_store_begin(f, 0, &err)); /* only that one */
	OK(sfs_store_secret_get(f, "alpha", &r, &err));
	sfs_store_rollback(f);
	sfs_store_close(f);
}
END_TEST

START_TEST(test_fault_store_fails_op)
{
	struct sfs_store *f = fault_store_wrap(open_store(1, 0));
	struct sfs_secret_rec r;
	struct sfs_key_rec k;

	seed(f);
	fault_store_fail_op(f, "commit", SFS_ENOSPC);
	OK(sfs_store_begin(f, 1, &err));
	secret_rec(&r, uid(102), "beta", uid(1));
	OK(sfs_store_secret_insert(f, &r, &err));
	FAILS(sfs_store_commit(f, &err), SFS_ENOSPC);
	/* the failed commit rolled back: a new transaction can start and
	 * the insert is gone */
	OK(sfs_store_begin(f, 0, &err));
	FAILS(sfs_store_secret_get(f, "beta", &r, &err), SFS_ENOENT);
	OK(sfs_store_key_get(f, "k1", &k, &err));
	FAILS(sfs_store_commit(f, &err), SFS_ENOSPC); /* every call */
	fault_store_reset(f);
	OK(sfs_store_begin(f, 0, &err));
	OK(sfs_store_commit(f, &err));
	sfs_store_close(f);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
		{ "create_open_reopen", test_create_open_reopen },
		{ "enostore", test_enostore },
		{ "newer_schema_refused", test_newer_schema_refused },
		{ "meta_roundtrip", test_meta_roundtrip },
		{ "key_roundtrip", test_key_roundtrip },
		{ "keyver_roundtrip", test_keyver_roundtrip },
		{ "secret_get_by_id_and_name", test_secret_get_by_id_and_name },
		{ "secret_update", test_secret_update },
		{ "secret_delete_takes_versions",
		  test_secret_delete_takes_versions },
		{ "key_delete_takes_versions", test_key_delete_takes_versions },
		{ "version_roundtrip", test_version_roundtrip },
		{ "list_order", test_list_order },
		{ "list_callback_stops", test_list_callback_stops },
		{ "secret_list_after_pages", test_secret_list_after_pages },
		{ "generation_moves_with_foreign_commits",
		  test_generation_moves_with_foreign_commits },
		{ "rollback_store_switches_to_wal",
		  test_rollback_store_switches_to_wal },
		{ "readonly_dir_opens", test_readonly_dir_opens },
		{ "readonly_dir_as_other_user",
		  test_readonly_dir_as_other_user },
		{ "roles", test_roles },
		{ "eexist", test_eexist },
		{ "enoent", test_enoent },
		{ "key_in_use", test_key_in_use },
		{ "destroy_erases_blobs", test_destroy_erases_blobs },
		{ "readonly_erofs", test_readonly_erofs },
		{ "write_in_read_transaction_refused",
		  test_write_in_read_transaction_refused },
		{ "rollback_discards", test_rollback_discards },
		{ "two_connections_see_commits",
		  test_two_connections_see_commits },
		{ "writers_serialise", test_writers_serialise },
		{ "stuck_lock_holder_fails_writer",
		  test_stuck_lock_holder_fails_writer },
		{ "failed_commit_changes_nothing",
		  test_failed_commit_changes_nothing },
		{ "check_and_counts", test_check_and_counts },
		{ "check_finds_corruption", test_check_finds_corruption },
		{ "record_fields_land_in_their_named_columns",
		  test_record_fields_land_in_their_named_columns },
		{ "fault_store_forwards", test_fault_store_forwards },
		{ "fault_store_fails_nth", test_fault_store_fails_nth },
		{ "fault_store_fails_op", test_fault_store_fails_op },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		harness_add(s, cases[i].name, cases[i].fn, setup, teardown, 60);
	return s;
}

const struct harness harness = {.suite = store_suite};
