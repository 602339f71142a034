/*
 * Tree changes (SPEC §3): mkdir of a secret, rmdir of a secret or of
 * versions/, unlink of a version or a staged file; special files and
 * links are refused. Rename is in fuse_write.c.
 */
#include <stdio.h>
#include <string.h>

#include "fuse_int.h"
#include "secretfs/secret.h"
#include "secretfs/version.h"

/* --- changes ----------------------------------------------------------- */

void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct sfs_secret_new nw;
	struct sfs_error err;
	struct sfs_caller c;
	int e;

	(void)mode; /* the secret's mode is the core's default (0440) */
	if (parent != FS_INO_SECRETS || !fs_visible(name)) {
		fs_reply_err(req, FS_EPERM);
		return;
	}
	if ((e = fs_caller(req, FS_CALLER_FULL, &c))) {
		fs_reply_err(req, e);
		return;
	}
	memset(&nw, 0, sizeof(nw));
	nw.name = name;
	e = fs_noted(sfs_secret_create(fs_d.ctx, &c, &nw, NULL, &err), &err);
	if (e) {
		fs_refused_err(c.uid, "mkdir", name, NULL, &err);
		fs_reply_core(req, e);
		return;
	}
	fs_lookup(req, parent, name);
}

static int count_cb(void *arg, const struct sfs_version_rec *v)
{
	(void)v;
	++*(unsigned *)arg;
	return 0;
}

/*
 * rmdir secrets/NAME/versions, as rm -r does after destroying what is in
 * it: with no version left it succeeds and changes nothing (the directory
 * goes with the secret), else ENOTEMPTY.
 */
static int rmdir_versions(fuse_req_t req, const char *secret)
{
	struct sfs_error err = {0};
	struct sfs_caller c;
	unsigned n = 0;
	int e = fs_caller(req, FS_CALLER_GROUPS, &c);

	if (e)
		return e;
	if (!fs_visible(secret))
		return FS_ENOENT;
	if (fs_d.opts.readonly || sfs_ctx_readonly(fs_d.ctx))
		return FS_EROFS;
	e = fs_errno(fs_noted(
	    sfs_version_list(fs_d.ctx, &c, secret, 0, count_cb, &n, &err),
	    &err));
	return e ? e : n ? FS_ENOTEMPTY : 0;
}

void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node_info p;
	struct sfs_error err;
	struct sfs_caller c;
	int e;

	if (parent != FS_INO_SECRETS && !fs_node_get(parent, &p) &&
	    p.kind == FK_SECRET && !strcmp(name, "versions")) {
		fs_reply_err(req, rmdir_versions(req, p.secret));
		return;
	}
	if (parent != FS_INO_SECRETS) {
		fs_reply_err(req, FS_EPERM);
		return;
	}
	if (!fs_visible(name)) {
		fs_reply_err(req, FS_ENOENT);
		return;
	}
	if ((e = fs_caller(req, FS_CALLER_FULL, &c))) {
		fs_reply_err(req, e);
		return;
	}
	e = fs_noted(sfs_secret_delete(fs_d.ctx, &c, name, &err), &err);
	if (e)
		fs_refused_err(c.uid, "rmdir", name, NULL, &err);
	fs_reply_core(req, e);
}

void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_node_info p, n;
	struct sfs_error err;
	struct sfs_caller c;
	char rel[300];
	int e = fs_node_get(parent, &p);

	if (!e)
		e = fs_resolve(req, &p, name, &n);
	if (e) {
		fs_reply_err(req, e);
		return;
	}
	/* the path in the secret's directory, for the log */
	snprintf(rel, sizeof(rel), "%s%s",
		 p.kind == FK_VERSIONS ? "versions/"
		 : p.kind == FK_KVDIR  ? "kv/"
				       : "",
		 name);
	if (n.kind == FK_STAGED) {
		fs_reply_err(req,
			     fs_staged_unlink(n.secret, n.name, n.version));
		return;
	}
	if (n.kind != FK_VERSION) {
		fs_refused(fuse_req_ctx(req)->uid, "rm", n.secret, rel,
			   SFS_EPERM,
			   "only versions/N can be removed (destroyed)");
		fs_reply_err(req, FS_EPERM);
		return;
	}
	if (!fs_visible(n.secret)) {
		fs_reply_err(req, FS_ENOENT);
		return;
	}
	if ((e = fs_caller(req, FS_CALLER_FULL, &c))) {
		fs_reply_err(req, e);
		return;
	}
	e = fs_noted(
	    sfs_version_destroy(fs_d.ctx, &c, n.secret, n.version, &err), &err);
	if (!e)
		fs_secret_changed(n.secret, 0);
	else
		fs_refused_err(c.uid, "rm", n.secret, rel, &err);
	fs_reply_core(req, e);
}
/* Special files and links have no meaning in the tree. */
void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	      dev_t rdev)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)rdev;
	fs_reply_err(req, FS_EPERM);
}

void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fs_reply_err(req, FS_EPERM);
}

void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	     const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fs_reply_err(req, FS_EPERM);
}
