/*
 * .status (SPEC §3): the mount's options, counts within the only= view
 * and its health, as JSON for the requesting caller; the store's path
 * and last error only for root and the mount's owner.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "fuse_int.h"
#include "render.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

/* --- .status ----------------------------------------------------------- */

/* uid, gid and mode of the view's override: a number, or null. */
static int status_view(struct sfs_json *o)
{
	const struct sfs_view_id *v = &fs_d.opts.view;
	char mode[8];

	snprintf(mode, sizeof(mode), "%04o", (unsigned)v->mode);
	return ((v->set & SFS_VIEW_UID) ? sfs_json_set_int(o, "uid", v->uid)
					: sfs_json_set_null(o, "uid")) ||
	       ((v->set & SFS_VIEW_GID) ? sfs_json_set_int(o, "gid", v->gid)
					: sfs_json_set_null(o, "gid")) ||
	       ((v->set & SFS_VIEW_MODE) ? sfs_json_set_str(o, "mode", mode)
					 : sfs_json_set_null(o, "mode"));
}

static struct sfs_json *status_options(void)
{
	static const char *const caches[] = {"strict", "open", "kernel"};
	static const char *const notifies[] = {"modify", "replace", "none"};
	struct sfs_json *o = sfs_json_object();

	if (!o || sfs_json_set_bool(o, "ro", fs_d.opts.readonly) ||
	    sfs_json_set_bool(o, "allow_other", fs_d.opts.allow_other) ||
	    sfs_json_set_str(o, "cache", caches[fs_d.opts.cache]) ||
	    sfs_json_set_str(o, "notify", notifies[fs_d.opts.notify]) ||
	    sfs_json_set_str(o, "audit", fs_d.opts.audit_off ? "off" : "on") ||
	    sfs_json_set_bool(o, "debug", fs_d.opts.debug) ||
	    sfs_json_set_bool(o, "auto_unmount", fs_d.opts.auto_unmount) ||
	    sfs_json_set_str(o, "layout", fs_d.opts.flat ? "flat" : "tree") ||
	    status_view(o) ||
	    (fs_d.opts.only ? sfs_json_set_str(o, "only", fs_d.opts.only)
			    : sfs_json_set_null(o, "only"))) {
		sfs_json_free(o);
		return NULL;
	}
	return o;
}

/* The names an only= view shows, collected before their versions are
 * counted (no store call inside a listing's callback). */
struct view_names {
	char (*v)[SFS_NAME_MAX + 1];
	size_t n, cap;
};

static int view_name_cb(void *arg, const struct sfs_secret_rec *s)
{
	struct view_names *vn = arg;
	size_t cap;
	void *p;

	if (!fs_visible(s->name))
		return 0;
	if (vn->n == vn->cap) {
		cap = vn->cap ? vn->cap * 2 : 16;
		p = realloc(vn->v, cap * sizeof(*vn->v));
		if (!p)
			return SFS_ENOMEM;
		vn->v = p;
		vn->cap = cap;
	}
	snprintf(vn->v[vn->n++], sizeof(*vn->v), "%s", s->name);
	return 0;
}

static int view_version_cb(void *arg, const struct sfs_version_rec *v)
{
	(void)v;
	++*(uint64_t *)arg;
	return 0;
}

/* only=: count the secrets the view shows and their versions, not the
 * store's (keys/ is the same in every view). */
static int view_counts(struct sfs_counts *k)
{
	struct sfs_error err = {0};
	struct view_names vn;
	size_t i;
	int rc;

	memset(&vn, 0, sizeof(vn));
	rc = fs_noted(
	    sfs_secret_list(fs_d.ctx, &fs_d.meta, view_name_cb, &vn, &err),
	    &err);
	k->secrets = vn.n;
	k->versions = 0;
	for (i = 0; rc == SFS_OK && i < vn.n; i++) {
		rc = fs_noted(sfs_version_list(fs_d.ctx, &fs_d.meta, vn.v[i], 0,
					       view_version_cb, &k->versions,
					       &err),
			      &err);
		if (rc == SFS_ENOENT)
			rc = SFS_OK; /* deleted since the listing */
	}
	free(vn.v);
	return rc;
}

static struct sfs_json *status_counts(const char **health)
{
	struct sfs_counts k;
	struct sfs_error err;
	struct sfs_json *o = sfs_json_object();
	int rc;

	sfs_error_clear(&err);
	memset(&k, 0, sizeof(k));
	rc = fs_noted(sfs_ctx_counts(fs_d.ctx, &k, &err), &err);
	if (rc == SFS_OK && fs_d.opts.only)
		rc = view_counts(&k);
	if (rc != SFS_OK)
		*health = "store error";
	if (!o || sfs_json_set_int(o, "secrets", (int64_t)k.secrets) ||
	    sfs_json_set_int(o, "versions", (int64_t)k.versions) ||
	    sfs_json_set_int(o, "keys", (int64_t)k.keys)) {
		sfs_json_free(o);
		return NULL;
	}
	return o;
}

/* May the request's caller see the store's path and its last error?
 * Root and the mount's owner; anyone else gets null and "error". */
static int status_private(fuse_req_t req)
{
	uid_t uid = fuse_req_ctx(req)->uid;

	return uid == 0 || uid == fs_d.owner_uid;
}

char *fs_status_json(fuse_req_t req, size_t *len)
{
	struct sfs_json *j = sfs_json_object();
	const char *health = NULL;
	char last[256];
	int mine = status_private(req),
	    failed = fs_last_failure(last, sizeof(last));
	char backend[256];

	/* the server's address, like the store's path, for its owner only */
	sfs_ctx_backend(fs_d.ctx, backend, sizeof(backend));
	if (!mine)
		backend[strcspn(backend, " ")] = '\0';
	if (!j || sfs_json_set_str(j, "program", "secretfs") ||
	    sfs_json_set_str(j, "backend", backend) ||
	    sfs_json_set_str(j, "version", SFS_PROGRAM_VERSION) ||
	    (mine ? sfs_json_set_str(j, "store", sfs_ctx_dir(fs_d.ctx))
		  : sfs_json_set_null(j, "store")) ||
	    sfs_json_set_str(j, "mountpoint", fs_d.opts.mountpoint) ||
	    sfs_json_set(j, "options", status_options()) ||
	    sfs_json_set(j, "counts", status_counts(&health)))
		goto out;
	if (!health && failed)
		health = mine ? last : "error";
	if (!health)
		health = "ok";
	if (sfs_json_set_str(j, "health", health))
		goto out;
	return fs_render_json_file(j, len);
out:
	sfs_json_free(j);
	return NULL;
}

/* --- cache invalidation ------------------------------------------------ */
