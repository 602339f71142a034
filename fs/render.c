/*
 * Records as JSON and text for both fronts (see render.h): every field
 * of a record is named and formatted here, once.
 */
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

static int text_u32(char *out, size_t cap, uint32_t n)
{
	if (!n)
		return SFS_ENODATA;
	snprintf(out, cap, "%u", n);
	return SFS_OK;
}

int fs_render_secret_field(const struct sfs_secret_rec *r, const char *field,
			   char *out, size_t cap)
{
	const char *text = NULL;

	if (!strcmp(field, "default_version"))
		return text_u32(out, cap, r->default_version);
	if (!strcmp(field, "latest_version"))
		return text_u32(out, cap, r->latest_version);
	if (!strcmp(field, "created_at") && cap >= 32) {
		sfs_time_format(r->created_at, out);
		return SFS_OK;
	}
	if (!strcmp(field, "id"))
		text = r->id;
	else if (!strcmp(field, "name"))
		text = r->name;
	else if (!strcmp(field, "description"))
		text = r->description;
	else if (!strcmp(field, "status"))
		text = sfs_state_name(r->status);
	else if (!strcmp(field, "access_control"))
		text = fs_render_access_control(r->access_control);
	else if (!strcmp(field, "allowed_principals"))
		text = r->allowed;
	else if (!strcmp(field, "created_by"))
		text = r->created_by;
	if (!text)
		return SFS_ENOENT;
	snprintf(out, cap, "%s", text);
	return SFS_OK;
}

int fs_render_version_field(const struct sfs_version_rec *v, const char *field,
			    char *out, size_t cap)
{
	const char *text = NULL;

	if (!strcmp(field, "version"))
		return text_u32(out, cap, v->version);
	if (!strcmp(field, "created_at") && cap >= 32) {
		sfs_time_format(v->created_at, out);
		return SFS_OK;
	}
	if (!strcmp(field, "state"))
		text = sfs_state_name(v->state);
	else if (!strcmp(field, "format"))
		text = sfs_value_format_name(v->format);
	else if (!strcmp(field, "created_by"))
		text = v->created_by;
	if (!text)
		return SFS_ENOENT;
	snprintf(out, cap, "%s", text);
	return SFS_OK;
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
