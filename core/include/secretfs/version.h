/*
 * Versions: add (with optional compare-and-set), read (decrypt, audited),
 * list, set default, activate, deactivate, destroy, copy.
 *
 * Versions are numbered from 1 per secret and never reused. A new version
 * becomes the default. Leaving the active state moves the default to the
 * newest remaining active version; with none left the secret has no
 * default and is deactivated (sfs_policy_next_default()).
 */
#ifndef SECRETFS_VERSION_H
#define SECRETFS_VERSION_H

#include "secretfs/ctx.h"
#include "secretfs/store.h"

/* Plaintext handed out by sfs_version_read(); release with
 * sfs_value_release(), which wipes it. */
struct sfs_value {
	unsigned char *data;
	size_t len;
};
void sfs_value_release(struct sfs_value *v);

/* Plaintext shared by the read handles of one version (sfs_version_open):
 * read-only, wiped when the last reference goes. */
struct sfs_value_ref;
#define SFS_SHARED_MAX ((size_t)256 << 20) /* bytes held in all */
const struct sfs_value *sfs_value_of(const struct sfs_value_ref *r);
void sfs_value_unref(struct sfs_value_ref *r);

/*
 * Add a version. expect = 0: no compare-and-set; otherwise the new number
 * must equal expect (SFS_EEXIST when it is not latest + 1). out (may be
 * NULL) gets the new version's record without blobs. value may be NULL
 * when len is over SFS_VALUE_MAX (a write that went past the limit and
 * kept no bytes): the add is refused and audited like any other, with
 * nothing read.
 */
int sfs_version_add(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    const char *name, const void *value, size_t len,
		    uint32_t expect, struct sfs_version_rec *out,
		    struct sfs_error *err);

/*
 * Would sfs_version_add() be allowed, the value's length aside? The same
 * checks (role, access, secret and key state, compare-and-set, read-only)
 * with no change and no audit line: the daemon asks at open() so that a
 * writer without the role fails there, not at close().
 */
int sfs_version_can_add(struct sfs_ctx *ctx, const struct sfs_caller *c,
			const char *name, uint32_t expect,
			struct sfs_error *err);

/* Versions not destroyed unless all is set, in number order. */
int sfs_version_list(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, int all, sfs_version_cb cb, void *arg,
		     struct sfs_error *err);

/* Details of version n (0: the default; SFS_ENOENT when none). Needs the
 * full view of the secret (SFS_EACCES otherwise). */
int sfs_version_info(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, uint32_t n,
		     struct sfs_version_rec *out, struct sfs_error *err);

/*
 * Decrypt version n (0: the default). Audited, allowed or refused; if the
 * audit line cannot be written the read fails with SFS_EIO. info (may be
 * NULL) gets the version's record without blobs.
 */
int sfs_version_read(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, uint32_t n, struct sfs_value *out,
		     struct sfs_version_rec *info, struct sfs_error *err);

/*
 * sfs_version_read for a read handle: the same checks and audit line, but
 * the plaintext is shared with the other handles of the same version
 * (decrypted once). SFS_ENOMEM when SFS_SHARED_MAX would be passed.
 */
int sfs_version_open(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, uint32_t n, struct sfs_value_ref **out,
		     struct sfs_error *err);

int sfs_version_set_default(struct sfs_ctx *ctx, const struct sfs_caller *c,
			    const char *name, uint32_t n,
			    struct sfs_error *err);
/* active = 1 activates, 0 deactivates. */
int sfs_version_set_state(struct sfs_ctx *ctx, const struct sfs_caller *c,
			  const char *name, uint32_t n, int active,
			  struct sfs_error *err);
int sfs_version_destroy(struct sfs_ctx *ctx, const struct sfs_caller *c,
			const char *name, uint32_t n, struct sfs_error *err);
/* A new version with version n's value (rollback). */
int sfs_version_copy(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, uint32_t n,
		     struct sfs_version_rec *out, struct sfs_error *err);

#endif
