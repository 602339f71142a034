/*
 * The record tables' columns for both store backends (see store_cols.h):
 * the column tables, the field access they need, the hand-over of a
 * record read from a row to the caller's callback of its kind, and
 * store_error_v.
 */
#include <stdio.h>
#include <string.h>

#include "secretfs/principal.h"
#include "store_cols.h"

#define TEXT(T, F)                                                             \
	{                                                                      \
		COL_TEXT, 0, offsetof(T, F), sizeof(((T *)0)->F)               \
	}
#define NUM(K, T, F)                                                           \
	{                                                                      \
		K, 0, offsetof(T, F), 0                                        \
	}
#define FIXED(K, T, F)                                                         \
	{                                                                      \
		K, 1, offsetof(T, F), sizeof(((T *)0)->F)                      \
	}

static const struct store_col key_cols[] = {
    TEXT(struct sfs_key_rec, id),
    TEXT(struct sfs_key_rec, name),
    NUM(COL_INT, struct sfs_key_rec, type),
    NUM(COL_INT, struct sfs_key_rec, state),
    TEXT(struct sfs_key_rec, description),
    NUM(COL_I64, struct sfs_key_rec, created_at),
    TEXT(struct sfs_key_rec, created_by),
    NUM(COL_U32, struct sfs_key_rec, current_version),
};

static const struct store_col secret_cols[] = {
    TEXT(struct sfs_secret_rec, id),
    TEXT(struct sfs_secret_rec, name),
    TEXT(struct sfs_secret_rec, description),
    NUM(COL_INT, struct sfs_secret_rec, status),
    NUM(COL_INT, struct sfs_secret_rec, access_control),
    TEXT(struct sfs_secret_rec, allowed),
    NUM(COL_U32, struct sfs_secret_rec, owner),
    NUM(COL_U32, struct sfs_secret_rec, group),
    NUM(COL_U32, struct sfs_secret_rec, mode),
    NUM(COL_U32, struct sfs_secret_rec, default_version),
    NUM(COL_U32, struct sfs_secret_rec, latest_version),
    TEXT(struct sfs_secret_rec, kms_key_id),
    FIXED(COL_I64, struct sfs_secret_rec, created_at),
    FIXED(COL_TEXT, struct sfs_secret_rec, created_by),
    NUM(COL_I64, struct sfs_secret_rec, changed_at),
};

static const struct store_col version_cols[] = {
    TEXT(struct sfs_version_rec, secret_id),
    NUM(COL_U32, struct sfs_version_rec, version),
    NUM(COL_INT, struct sfs_version_rec, state),
    NUM(COL_I64, struct sfs_version_rec, created_at),
    TEXT(struct sfs_version_rec, created_by),
    TEXT(struct sfs_version_rec, kms_key_id),
    NUM(COL_U32, struct sfs_version_rec, kms_key_version),
    NUM(COL_U32, struct sfs_version_rec, size),
    NUM(COL_INT, struct sfs_version_rec, format),
};

#define NCOLS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int call_key(union store_cb cb, void *arg, const void *rec)
{
	return cb.key(arg, rec);
}

static int call_secret(union store_cb cb, void *arg, const void *rec)
{
	return cb.secret(arg, rec);
}

static int call_version(union store_cb cb, void *arg, const void *rec)
{
	return cb.version(arg, rec);
}

/* The allow list is parsed once, as the record is loaded. */
static void loaded_secret(void *rec)
{
	sfs_principal_rec_load(rec);
}

const struct store_table store_keys = {
    "kms_keys", key_cols, NCOLS(key_cols), sizeof(struct sfs_key_rec),
    NULL,	call_key};
const struct store_table store_secrets = {
    "secrets",		secret_cols,
    NCOLS(secret_cols), sizeof(struct sfs_secret_rec),
    loaded_secret,	call_secret};
const struct store_table store_versions = {"versions",
					   version_cols,
					   NCOLS(version_cols),
					   sizeof(struct sfs_version_rec),
					   NULL,
					   call_version};

char *store_col_text(const struct store_col *c, void *rec)
{
	return (char *)rec + c->off;
}

int64_t store_col_get(const struct store_col *c, const void *rec)
{
	const char *f = (const char *)rec + c->off;

	switch (c->type) {
	case COL_INT:
		return *(const int *)f;
	case COL_U32:
		return *(const uint32_t *)f;
	default:
		return *(const int64_t *)f;
	}
}

void store_col_set(const struct store_col *c, void *rec, int64_t v)
{
	char *f = (char *)rec + c->off;

	switch (c->type) {
	case COL_INT:
		*(int *)f = (int)v;
		break;
	case COL_U32:
		*(uint32_t *)f = (uint32_t)v;
		break;
	default:
		*(int64_t *)f = v;
	}
}

void store_rec_loaded(const struct store_table *t, void *rec)
{
	if (t->loaded)
		t->loaded(rec);
}

int store_error_v(struct sfs_error *err, int code, const char *fmt,
		  va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return code;
}
