/*
 * Private to the store backends (store_sqlite*.c, store_pg*.c): the
 * columns of the three record tables, named once for both backends' SQL
 * (KEY_COLS, SECRET_COLS, VERSION_COLS) and described once as a table
 * (struct store_table): each column's kind and where its value lives in
 * the record. A backend binds a record's columns and reads a row back
 * with one loop over the table instead of one line a column, and hands a
 * row to a caller's callback (the table's call). Also store_error_v, for
 * the backends' one-row change helpers. No third-party header here.
 */
#ifndef SECRETFS_STORE_COLS_H
#define SECRETFS_STORE_COLS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "secretfs/store.h"

#define KEY_COLS                                                               \
	"id, name, type, state, description, created_at, created_by, "         \
	"current_version"
#define SECRET_COLS                                                            \
	"id, name, description, status, access_control, allowed, "             \
	"owner_uid, group_gid, mode, default_version, latest_version, "        \
	"kms_key_id, created_at, created_by, changed_at"
#define VERSION_COLS                                                           \
	"secret_id, version, state, created_at, created_by, kms_key_id, "      \
	"kms_key_version, size, format"

/* How a column's value is held in the record (all but text are integers
 * in the database). */
enum store_col_type { COL_TEXT, COL_INT, COL_I64, COL_U32 };

struct store_col {
	int type;   /* enum store_col_type */
	int fixed;  /* written at insert only: no update parameter */
	size_t off; /* the field's offset in the record */
	size_t cap; /* COL_TEXT: the field's size, NUL included */
};

/* Room for a record of any of the three tables. */
union store_rec {
	struct sfs_key_rec key;
	struct sfs_secret_rec secret;
	struct sfs_version_rec version;
};

union store_cb {
	sfs_key_cb key;
	sfs_secret_cb secret;
	sfs_version_cb version;
};

struct store_table {
	const char *name; /* the SQL table, for a corrupt row's message */
	const struct store_col *cols; /* in the order of its *_COLS */
	int n;
	size_t size; /* sizeof the record */
	/* finish a record read from a row (may be NULL) */
	void (*loaded)(void *rec);
	/* hand a finished record to the callback of its kind */
	int (*call)(union store_cb cb, void *arg, const void *rec);
};

extern const struct store_table store_keys, store_secrets, store_versions;

/* A text column's field in rec. */
char *store_col_text(const struct store_col *c, void *rec);
/* A number column's value in rec, widened. */
int64_t store_col_get(const struct store_col *c, const void *rec);
/* Store v in a number column's field of rec, narrowed to its type. */
void store_col_set(const struct store_col *c, void *rec, int64_t v);
/* Finish rec, just read as a row of t (see loaded). */
void store_rec_loaded(const struct store_table *t, void *rec);

/* sfs_error_set with a va_list: the message of a change that found no row
 * or met its row, worded by the backend's caller. Returns code. */
int store_error_v(struct sfs_error *err, int code, const char *fmt,
		  va_list ap) __attribute__((format(printf, 3, 0)));

#endif
