/* Dumps of a store (as the services show it; its records) and copies of a
 * store directory; see svcdump.h. */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/svcdump.h"
#include "lib/testutil.h"
#include "secretfs/ctx.h"
#include "secretfs/keys.h"
#include "secretfs/role.h"
#include "secretfs/secret.h"
#include "secretfs/store.h"
#include "secretfs/version.h"

#define SD_KEYS	   16
#define SD_HEX_MAX 4096 /* longer values are written as a hash */

struct dump {
	struct sfs_ctx *ctx;
	struct sfs_caller self;
	FILE *f;
	struct sfs_error *e;
	const char *secret;
	char ids[SD_KEYS][SFS_ID_MAX + 1], names[SD_KEYS][SFS_NAME_MAX + 1];
	int nkeys;
};

static const char *key_name_of(const struct dump *d, const char *id)
{
	int i;

	for (i = 0; i < d->nkeys; i++)
		if (strcmp(d->ids[i], id) == 0)
			return d->names[i];
	return "?";
}

static int dump_key(void *arg, const struct sfs_key_rec *k)
{
	struct dump *d = arg;

	if (d->nkeys == SD_KEYS)
		return SFS_ENOMEM;
	snprintf(d->ids[d->nkeys], SFS_ID_MAX + 1, "%s", k->id);
	snprintf(d->names[d->nkeys++], SFS_NAME_MAX + 1, "%s", k->name);
	fprintf(d->f, "key %s [%s] %d %d %u\n", k->name, k->description,
		k->type, k->state, k->current_version);
	return 0;
}

/* FNV-1a, 64 bits. */
static uint64_t fnv64(const unsigned char *p, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void dump_bytes(FILE *f, const unsigned char *p, size_t len)
{
	size_t i;

	fprintf(f, " %zu ", len);
	if (len > SD_HEX_MAX) {
		fprintf(f, "fnv:%016" PRIx64, fnv64(p, len));
		return;
	}
	for (i = 0; i < len; i++)
		fprintf(f, "%02x", p[i]);
}

/* A version's record and what reading it gives. */
static int dump_version(void *arg, const struct sfs_version_rec *v)
{
	struct dump *d = arg;
	struct sfs_value val = {NULL, 0};
	struct sfs_error e;
	int rc = sfs_version_read(d->ctx, &d->self, d->secret, v->version, &val,
				  NULL, &e);

	fprintf(d->f, " version %u %d %u %d %s %u read %s", v->version,
		v->state, v->size, v->format, key_name_of(d, v->kms_key_id),
		v->kms_key_version, sfs_err_name(rc));
	dump_bytes(d->f, val.data, rc ? 0 : val.len);
	fputc('\n', d->f);
	sfs_value_release(&val);
	return 0;
}

static int dump_secret(void *arg, const struct sfs_secret_rec *r)
{
	struct dump *d = arg;

	fprintf(d->f, "secret %s [%s] %d %d [%s] %u %u %o %u %u %s\n", r->name,
		r->description, r->status, r->access_control, r->allowed,
		r->owner, r->group, r->mode, r->default_version,
		r->latest_version, key_name_of(d, r->kms_key_id));
	d->secret = r->name;
	return sfs_version_list(d->ctx, &d->self, r->name, 1, dump_version, d,
				d->e);
}

static int dump_role(void *arg, const char *role, const char *principal)
{
	struct dump *d = arg;

	fprintf(d->f, "role %s %s\n", role, principal);
	return 0;
}

char *sd_dump(struct sfs_ctx *ctx, struct sfs_error *err)
{
	struct dump *d = calloc(1, sizeof(*d));
	struct sfs_counts n = {0, 0, 0};
	char *text = NULL;
	size_t len = 0;
	int rc;

	ck_assert_ptr_nonnull(d);
	d->ctx = ctx;
	d->e = err;
	sfs_caller_self(&d->self);
	d->f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(d->f);
	rc = sfs_key_list(ctx, &d->self, dump_key, d, err);
	if (rc == 0)
		rc = sfs_secret_list(ctx, &d->self, dump_secret, d, err);
	if (rc == 0)
		rc = sfs_role_list(ctx, &d->self, dump_role, d, err);
	if (rc == 0)
		rc = sfs_ctx_counts(ctx, &n, err);
	fprintf(d->f, "counts %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", n.secrets,
		n.versions, n.keys);
	fclose(d->f);
	free(d);
	if (rc) {
		if (!err->msg[0])
			sfs_error_set(err, rc, "dump: %s", sfs_err_name(rc));
		free(text);
		return NULL;
	}
	return text;
}

/* ---- the store's records ------------------------------------------------ */

static uint64_t blob_fnv(const struct sfs_blob *b)
{
	return fnv64(b->data, b->len);
}

struct raw {
	struct sfs_store *s;
	FILE *f;
	struct sfs_error *e;
};

static int raw_key(void *arg, const struct sfs_key_rec *k)
{
	struct raw *d = arg;
	struct sfs_blob b = {NULL, 0};
	uint32_t v;
	int rc;

	fprintf(d->f, "key %s %s %d %d %s %" PRId64 " %s %u\n", k->id, k->name,
		k->type, k->state, k->description, k->created_at, k->created_by,
		k->current_version);
	for (v = 1; v <= k->current_version; v++) {
		rc = sfs_store_keyver_get(d->s, k->id, v, &b, d->e);
		if (rc)
			return rc;
		fprintf(d->f, " keyver %u %zu %016" PRIx64 "\n", v, b.len,
			blob_fnv(&b));
		sfs_blob_release(&b);
	}
	return 0;
}

static int raw_version(void *arg, const struct sfs_version_rec *v)
{
	struct raw *d = arg;
	struct sfs_version_rec full;
	int rc = sfs_store_version_get(d->s, v->secret_id, v->version, 1,
					&full, d->e);

	if (rc)
		return rc;
	fprintf(d->f,
		" version %u %d %" PRId64 " %s %s %u %u %d %zu %016" PRIx64
		" %zu %016" PRIx64 "\n",
		full.version, full.state, full.created_at, full.created_by,
		full.kms_key_id, full.kms_key_version, full.size, full.format,
		full.wrapped_dek.len, blob_fnv(&full.wrapped_dek),
		full.ciphertext.len, blob_fnv(&full.ciphertext));
	sfs_version_rec_release(&full);
	return 0;
}

static int raw_secret(void *arg, const struct sfs_secret_rec *r)
{
	struct raw *d = arg;

	fprintf(d->f,
		"secret %s %s %s %d %d %s %u %u %o %u %u %s %" PRId64
		" %s %" PRId64 "\n",
		r->id, r->name, r->description, r->status, r->access_control,
		r->allowed, r->owner, r->group, r->mode, r->default_version,
		r->latest_version, r->kms_key_id, r->created_at, r->created_by,
		r->changed_at);
	return sfs_store_version_list(d->s, r->id, raw_version, d, d->e);
}

static int raw_role(void *arg, const char *role, const char *principal)
{
	struct raw *d = arg;

	fprintf(d->f, "role %s %s\n", role, principal);
	return 0;
}

static int raw_meta(struct raw *d, const char *name)
{
	struct sfs_blob b = {NULL, 0};
	int rc = sfs_store_meta_get(d->s, name, &b, d->e);

	if (rc == SFS_ENOENT) {
		fprintf(d->f, "meta %s none\n", name);
		return 0;
	}
	if (rc == 0)
		fprintf(d->f, "meta %s %zu %016" PRIx64 "\n", name, b.len,
			blob_fnv(&b));
	sfs_blob_release(&b);
	return rc;
}

char *sd_store_dump(struct sfs_store *s, struct sfs_error *e)
{
	struct raw d = {s, NULL, e};
	uint64_t ns = 0, nv = 0, nk = 0;
	char *text = NULL;
	size_t len = 0;
	int rc;

	d.f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(d.f);
	rc = sfs_store_begin(s, 0, e);
	if (rc == 0)
		rc = raw_meta(&d, "store_id");
	if (rc == 0)
		rc = raw_meta(&d, "counter");
	if (rc == 0)
		rc = raw_meta(&d, "noop");
	if (rc == 0)
		rc = sfs_store_key_list(s, raw_key, &d, e);
	if (rc == 0)
		rc = sfs_store_secret_list(s, raw_secret, &d, e);
	if (rc == 0)
		rc = sfs_store_role_list(s, raw_role, &d, e);
	if (rc == 0)
		rc = sfs_store_counts(s, &ns, &nv, &nk, e);
	fprintf(d.f, "counts %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", ns, nv,
		nk);
	sfs_store_rollback(s);
	fclose(d.f);
	if (rc) {
		free(text);
		return NULL;
	}
	return text;
}

char *sd_dump_checked(struct sfs_ctx *ctx, int raw)
{
	struct sfs_error e;
	char *text;

	sfs_error_clear(&e);
	text = raw ? sd_store_dump(sfs_ctx_store(ctx), &e) : sd_dump(ctx, &e);
	ck_assert_msg(text != NULL, "dump: %s", e.msg);
	return text;
}

char *sd_copy_dir(const char *dir, const char *tag)
{
	char *d = tu_tmpdir(tag), from[4096], to[4096];
	DIR *dh = opendir(dir);
	struct dirent *ent;
	struct stat sb;
	size_t len;
	char *data;

	ck_assert_ptr_nonnull(dh);
	while ((ent = readdir(dh))) {
		snprintf(from, sizeof(from), "%s/%s", dir, ent->d_name);
		snprintf(to, sizeof(to), "%s/%s", d, ent->d_name);
		if (stat(from, &sb) || !S_ISREG(sb.st_mode))
			continue;
		data = tu_read_file(from, &len);
		ck_assert_ptr_nonnull(data);
		tu_write_file(to, data, len, (int)(sb.st_mode & 0777));
		free(data);
	}
	closedir(dh);
	return d;
}

struct sfs_ctx *sd_open(const char *dir, int audit_off)
{
	struct sfs_ctx_options o;
	struct sfs_ctx *ctx = NULL;
	struct sfs_error e;

	memset(&o, 0, sizeof(o));
	o.store_dir = dir;
	o.audit_off = audit_off;
	sfs_error_clear(&e);
	ck_assert_msg(sfs_ctx_open(&ctx, &o, &e) == 0, "open %s: %s", dir,
		      e.msg);
	return ctx;
}
