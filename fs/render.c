/*
 * Records as JSON and text for both fronts (see render.h): every field
 * of a record is named and formatted here, once.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "secretfs/audit.h"
#include "secretfs/keys.h"

const char *fs_render_access_control(int enabled)
{
	return enabled ? "enabled" : "disabled";
}

void fs_render_mode(uint32_t mode, char out[8])
{
	snprintf(out, 8, "%04o", (unsigned)(mode & 07777));
}

/* What a record's field holds, and so how it reads as text. */
enum field_kind {
	F_TEXT,	  /* a char array */
	F_NUMBER, /* a uint32_t; 0 has no text (SFS_ENODATA) */
	F_TIME,	  /* an int64_t, ns since the epoch, as RFC 3339 */
	F_STATE,  /* an int: active, deactivated, destroyed */
	F_AC,	  /* an int: enabled, disabled */
	F_FORMAT, /* an int: enum sfs_format */
};

/* A field of a record: its name and where it is (offsetof). */
struct field {
	const char *name;
	enum field_kind kind;
	size_t off;
};

static const struct field secret_fields[] = {
    {"id", F_TEXT, offsetof(struct sfs_secret_rec, id)},
    {"name", F_TEXT, offsetof(struct sfs_secret_rec, name)},
    {"description", F_TEXT, offsetof(struct sfs_secret_rec, description)},
    {"status", F_STATE, offsetof(struct sfs_secret_rec, status)},
    {"access_control", F_AC, offsetof(struct sfs_secret_rec, access_control)},
    {"allowed_principals", F_TEXT, offsetof(struct sfs_secret_rec, allowed)},
    {"default_version", F_NUMBER,
     offsetof(struct sfs_secret_rec, default_version)},
    {"latest_version", F_NUMBER,
     offsetof(struct sfs_secret_rec, latest_version)},
    {"created_at", F_TIME, offsetof(struct sfs_secret_rec, created_at)},
    {"created_by", F_TEXT, offsetof(struct sfs_secret_rec, created_by)},
    {NULL, F_TEXT, 0},
};

static const struct field version_fields[] = {
    {"version", F_NUMBER, offsetof(struct sfs_version_rec, version)},
    {"state", F_STATE, offsetof(struct sfs_version_rec, state)},
    {"format", F_FORMAT, offsetof(struct sfs_version_rec, format)},
    {"created_at", F_TIME, offsetof(struct sfs_version_rec, created_at)},
    {"created_by", F_TEXT, offsetof(struct sfs_version_rec, created_by)},
    {NULL, F_TEXT, 0},
};

/* The text of an F_TEXT, F_STATE, F_AC or F_FORMAT field at p. */
static const char *field_text(enum field_kind kind, const char *p)
{
	switch (kind) {
	case F_STATE:
		return sfs_state_name(*(const int *)p);
	case F_AC:
		return fs_render_access_control(*(const int *)p);
	case F_FORMAT:
		return sfs_value_format_name(*(const int *)p);
	default:
		return p;
	}
}

/* Field name of rec (described by fields) as text into out. SFS_OK,
 * SFS_ENODATA (an unset number) or SFS_ENOENT (no such field, or out
 * too small for a time). */
static int render_field(const void *rec, const struct field *fields,
			const char *name, char *out, size_t cap)
{
	const char *p = rec;
	const char *text;

	while (fields->name && strcmp(fields->name, name))
		fields++;
	if (!fields->name || (fields->kind == F_TIME && cap < 32))
		return SFS_ENOENT;
	p += fields->off;
	if (fields->kind == F_NUMBER && !*(const uint32_t *)p)
		return SFS_ENODATA;
	if (fields->kind == F_NUMBER) {
		snprintf(out, cap, "%u", *(const uint32_t *)p);
		return SFS_OK;
	}
	if (fields->kind == F_TIME) {
		sfs_time_format(*(const int64_t *)p, out);
		return SFS_OK;
	}
	text = field_text(fields->kind, p);
	snprintf(out, cap, "%s", text);
	return SFS_OK;
}

int fs_render_secret_field(const struct sfs_secret_rec *r, const char *field,
			   char *out, size_t cap)
{
	return render_field(r, secret_fields, field, out, cap);
}

int fs_render_version_field(const struct sfs_version_rec *v, const char *field,
			    char *out, size_t cap)
{
	return render_field(v, version_fields, field, out, cap);
}

void fs_render_push(struct sfs_json **arr, struct sfs_json *child)
{
	if (!*arr || !child) {
		sfs_json_free(child);
		sfs_json_free(*arr);
		*arr = NULL;
		return;
	}
	/* append owns child, whether it succeeds or not */
	if (sfs_json_append(*arr, child) != SFS_OK) {
		sfs_json_free(*arr);
		*arr = NULL;
	}
}

char *fs_render_json_file(struct sfs_json *j, size_t *len)
{
	char *s = j ? sfs_json_dump(j, 1) : NULL, *t = NULL;

	sfs_json_free(j);
	if (s) {
		*len = strlen(s);
		t = realloc(s, *len + 2);
	}
	if (!t) {
		free(s);
		return NULL;
	}
	t[(*len)++] = '\n';
	t[*len] = '\0';
	return t;
}

/* Set every field; any failure (out of memory) frees obj. */
static struct sfs_json *json_done(struct sfs_json *obj, int failed)
{
	if (failed) {
		sfs_json_free(obj);
		return NULL;
	}
	return obj;
}

static int json_time(struct sfs_json *obj, const char *key, int64_t ns)
{
	char t[32];

	sfs_time_format(ns, t);
	return sfs_json_set_str(obj, key, t);
}

/* obj[key] = {"id": .., "name": .., "version": ..} (no version when 0). */
static int json_key_ref(struct sfs_json *obj, const char *key, const char *id,
			const char *name, uint32_t version)
{
	struct sfs_json *o = sfs_json_object();
	int bad = !o;

	if (!o)
		return SFS_ENOMEM;
	bad |= sfs_json_set_str(o, "id", id);
	bad |= sfs_json_set_str(o, "name", name);
	if (version)
		bad |= sfs_json_set_int(o, "version", version);
	if (bad) {
		sfs_json_free(o);
		return SFS_ENOMEM;
	}
	return sfs_json_set(obj, key, o);
}

struct sfs_json *fs_render_key_json(const struct sfs_key_rec *r)
{
	struct sfs_json *o = sfs_json_object();
	int bad = !o;

	if (!o)
		return NULL;
	bad |= sfs_json_set_str(o, "id", r->id);
	bad |= sfs_json_set_str(o, "name", r->name);
	bad |= sfs_json_set_str(o, "type", sfs_key_type_name(r->type));
	bad |= sfs_json_set_str(o, "state", sfs_state_name(r->state));
	bad |= sfs_json_set_str(o, "description", r->description);
	bad |= sfs_json_set_int(o, "version", r->current_version);
	bad |= json_time(o, "created_at", r->created_at);
	bad |= sfs_json_set_str(o, "created_by", r->created_by);
	return json_done(o, bad);
}

/* The number, or null for none. */
static int json_version_no(struct sfs_json *o, const char *key, uint32_t n)
{
	return n ? sfs_json_set_int(o, key, n) : sfs_json_set_null(o, key);
}

/* "uid:1,gid:2" as ["uid:1","gid:2"]. */
static struct sfs_json *json_principals(const char *list)
{
	struct sfs_json *arr = sfs_json_array();
	const char *p = list;
	size_t n;

	while (arr && *p) {
		n = strcspn(p, ",");
		fs_render_push(&arr, sfs_json_string_n(p, n));
		p += n + (p[n] == ',');
	}
	return arr;
}

struct sfs_json *fs_render_secret_json(const struct sfs_secret_rec *r,
				       const char *key_name)
{
	struct sfs_json *o = sfs_json_object();
	char mode[8];
	int bad = !o;

	if (!o)
		return NULL;
	fs_render_mode(r->mode, mode);
	bad |= sfs_json_set_str(o, "id", r->id);
	bad |= sfs_json_set_str(o, "name", r->name);
	bad |= sfs_json_set_str(o, "description", r->description);
	bad |= sfs_json_set_str(o, "status", sfs_state_name(r->status));
	bad |= sfs_json_set_str(o, "access_control",
				fs_render_access_control(r->access_control));
	bad |=
	    sfs_json_set(o, "allowed_principals", json_principals(r->allowed));
	bad |= sfs_json_set_int(o, "owner", r->owner);
	bad |= sfs_json_set_int(o, "group", r->group);
	bad |= sfs_json_set_str(o, "mode", mode);
	bad |= json_version_no(o, "default_version", r->default_version);
	bad |= json_version_no(o, "latest_version", r->latest_version);
	bad |= json_key_ref(o, "kms_key", r->kms_key_id, key_name, 0);
	bad |= json_time(o, "created_at", r->created_at);
	bad |= sfs_json_set_str(o, "created_by", r->created_by);
	return json_done(o, bad);
}

struct sfs_json *fs_render_version_json(const char *secret,
					const struct sfs_version_rec *v,
					uint32_t default_version,
					const char *key_name)
{
	struct sfs_json *o = sfs_json_object();
	int bad = !o;

	if (!o)
		return NULL;
	bad |= sfs_json_set_str(o, "secret", secret);
	bad |= sfs_json_set_int(o, "version", v->version);
	bad |= sfs_json_set_str(o, "state", sfs_state_name(v->state));
	bad |= sfs_json_set_bool(o, "default", v->version == default_version);
	bad |= sfs_json_set_str(o, "format", sfs_value_format_name(v->format));
	bad |= sfs_json_set_int(o, "size", v->size);
	bad |= json_key_ref(o, "kms_key", v->kms_key_id, key_name,
			    v->kms_key_version);
	bad |= json_time(o, "created_at", v->created_at);
	bad |= sfs_json_set_str(o, "created_by", v->created_by);
	return json_done(o, bad);
}
