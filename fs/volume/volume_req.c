/*
 * The volume plugin protocol's requests (Plugin.Activate,
 * VolumeDriver.Create, Remove, Get, Path, Mount, Unmount, List,
 * Capabilities): each answered from the volume table, the state file
 * saved after every change. Replies are JSON with an "Err" member.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secretfs/audit.h"
#include "secretfs/secret.h"
#include "volume.h"

/* --- requests ----------------------------------------------------------- */

/* A reply: {"Err": why} for an error, else body (taken) plus "Err": "". */
static int reply(char **out, int status, struct sfs_json *body, const char *why)
{
	struct sfs_json *j = body ? body : sfs_json_object();

	*out = NULL;
	if (j && !sfs_json_set_str(j, "Err", why ? why : ""))
		*out = sfs_json_dump(j, 0);
	sfs_json_free(j);
	if (!*out) {
		*out = strdup("{\"Err\":\"out of memory\"}");
		if (!*out)
			abort();
		return 500;
	}
	return status;
}

static int fail_reply(char **out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_reply(char **out, int status, const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return reply(out, status, NULL, why);
}

/* {"Mountpoint": path or ""} plus, with full, the volume's details. */
static struct sfs_json *mountpoint_json(const struct driver *d,
					const struct vol *v, int full)
{
	struct sfs_json *j = sfs_json_object();
	char p[VPATH_MAX] = "";

	if (v->nids)
		vol_path(d, v, p, sizeof(p));
	if (!j || sfs_json_set_str(j, "Mountpoint", p) ||
	    (full && (sfs_json_set_str(j, "Name", v->name) ||
		      sfs_json_set_str(j, "CreatedAt", v->created) ||
		      sfs_json_set(j, "Status", vol_json(v, 0))))) {
		sfs_json_free(j);
		return NULL;
	}
	return j;
}

static int do_create(struct driver *d, const struct sfs_json *rq,
		     const char *name, char **out)
{
	struct vol *v;
	struct sfs_error e;
	char err[600];

	if (sfs_secret_name_valid(name, &e) != SFS_OK)
		return fail_reply(out, 400, "volume name '%.200s': %s", name,
				  e.msg);
	if (vol_find(d, name))
		return fail_reply(out, 400, "volume '%s' already exists", name);
	if (d->n >= VOLS_MAX)
		return fail_reply(out, 400, "too many volumes (%d)", VOLS_MAX);
	if (!(v = calloc(1, sizeof(*v))))
		return fail_reply(out, 500, "out of memory");
	snprintf(v->name, sizeof(v->name), "%s", name);
	sfs_time_format(sfs_time_now(), v->created);
	if (vol_opts_set(v, sfs_json_get(rq, "Opts"), err, sizeof(err))) {
		vol_free(v);
		return fail_reply(out, 400, "volume '%s': %s", name, err);
	}
	d->v[d->n++] = v;
	if (vol_state_save(d)) {
		vol_drop(d, v);
		return fail_reply(out, 500, "cannot save the volume table");
	}
	return reply(out, 200, NULL, NULL);
}

static int do_remove(struct driver *d, struct vol *v, char **out)
{
	char p[VPATH_MAX];

	if (v->nids)
		return fail_reply(out, 409,
				  "volume '%s' is in use by %zu container%s",
				  v->name, v->nids, v->nids == 1 ? "" : "s");
	vol_view_stop(d, v);
	vol_path(d, v, p, sizeof(p));
	rmdir(p);
	snprintf(p, sizeof(p), "%s/%s", d->stage, v->name);
	rmdir(p);
	vol_drop(d, v);
	if (vol_state_save(d))
		return fail_reply(out, 500, "cannot save the volume table");
	return reply(out, 200, NULL, NULL);
}

static int do_mount(struct driver *d, struct vol *v, const char *id, char **out)
{
	char err[600];
	int added;

	if (!vol_id_ok(id))
		return fail_reply(out, 400, "a container ID is needed");
	if (!vol_view_alive(d, v) && vol_view_start(d, v, err, sizeof(err)))
		return fail_reply(out, 500, "volume '%s': %s", v->name, err);
	if ((added = vol_ids_add(v, id)) < 0)
		return fail_reply(out, 500, "too many containers");
	if (vol_state_save(d)) {
		if (added)
			vol_ids_del(v, id);
		return fail_reply(out, 500, "cannot save the volume table");
	}
	return reply(out, 200, mountpoint_json(d, v, 0), NULL);
}

static int do_unmount(struct driver *d, struct vol *v, const char *id,
		      char **out)
{
	if (!vol_id_ok(id) || !vol_ids_del(v, id))
		return fail_reply(out, 400,
				  "volume '%s' is not mounted for that "
				  "container",
				  v->name);
	if (!v->nids)
		vol_view_stop(d, v);
	if (vol_state_save(d))
		return fail_reply(out, 500, "cannot save the volume table");
	return reply(out, 200, NULL, NULL);
}

static int do_list(struct driver *d, char **out)
{
	struct sfs_json *j = sfs_json_object(), *list = sfs_json_array();
	size_t i;
	int bad = !j || !list;

	for (i = 0; !bad && i < d->n; i++) {
		struct sfs_json *e = mountpoint_json(d, d->v[i], 0);

		bad = !e || sfs_json_set_str(e, "Name", d->v[i]->name) ||
		      sfs_json_append(list, e);
	}
	if (!bad) {
		bad = sfs_json_set(j, "Volumes", list);
		list = NULL;
	}
	sfs_json_free(list);
	if (bad) {
		sfs_json_free(j);
		return fail_reply(out, 500, "out of memory");
	}
	return reply(out, 200, j, NULL);
}

/* Requests about one volume: Remove, Get, Path, Mount, Unmount. */
static int do_volume(struct driver *d, const char *op,
		     const struct sfs_json *rq, char **out)
{
	const char *name = sfs_json_get_str(rq, "Name");
	struct vol *v = vol_find(d, name);
	struct sfs_json *g;

	if (!name)
		return fail_reply(out, 400, "a volume Name is needed");
	if (!strcmp(op, "Create"))
		return do_create(d, rq, name, out);
	if (!v)
		return fail_reply(out, 404, "no such volume '%.200s'", name);
	if (!strcmp(op, "Remove"))
		return do_remove(d, v, out);
	if (!strcmp(op, "Mount"))
		return do_mount(d, v, sfs_json_get_str(rq, "ID"), out);
	if (!strcmp(op, "Unmount"))
		return do_unmount(d, v, sfs_json_get_str(rq, "ID"), out);
	if (!strcmp(op, "Path"))
		return reply(out, 200, mountpoint_json(d, v, 0), NULL);
	g = sfs_json_object();
	if (!g || sfs_json_set(g, "Volume", mountpoint_json(d, v, 1))) {
		sfs_json_free(g);
		return fail_reply(out, 500, "out of memory");
	}
	return reply(out, 200, g, NULL);
}

/* A fixed reply body. */
static struct sfs_json *literal(const char *s)
{
	return sfs_json_parse(s, strlen(s));
}

int vol_handle(void *arg, const char *path, const char *body, size_t len,
	       char **out)
{
	static const char *const ops[] = {"Create", "Remove", "Get",
					  "Path",   "Mount",  "Unmount"};
	struct driver *d = arg;
	struct sfs_json *rq;
	size_t i;
	int status;

	vol_reap();
	if (!strcmp(path, "/Plugin.Activate"))
		return reply(out, 200,
			     literal("{\"Implements\":[\"VolumeDriver\"]}"),
			     NULL);
	if (!strcmp(path, "/VolumeDriver.Capabilities"))
		return reply(
		    out, 200,
		    literal("{\"Capabilities\":{\"Scope\":\"local\"}}"), NULL);
	if (!strcmp(path, "/VolumeDriver.List"))
		return do_list(d, out);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strncmp(path, "/VolumeDriver.", 14) &&
		    !strcmp(path + 14, ops[i]))
			break;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return fail_reply(out, 404, "unknown request '%.200s'", path);
	if (!(rq = sfs_json_parse(body, len)))
		return fail_reply(out, 400,
				  "malformed request: the body must "
				  "be a JSON object");
	status = do_volume(d, ops[i], rq, out);
	sfs_json_free(rq);
	return status;
}
