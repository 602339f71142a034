/*
 * Records as text, JSON and attribute values, for both fronts: the
 * command line (fs/cli/) and the daemon (fs/daemon/). One function per
 * record, so that `secretfs key show --json` and keys/NAME name every
 * field the same way (SPEC §1's names; times RFC 3339 UTC; modes as
 * strings such as "0440"). Nothing here reads the store: callers pass
 * the records, and the names of the KMS keys they refer to.
 */
#ifndef SECRETFS_RENDER_H
#define SECRETFS_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "secretfs/store.h"
#include "secretfs/value.h"

/*
 * A KMS key: {"id", "name", "type", "state", "description", "version",
 * "created_at", "created_by"} ("version": the current key version).
 * NULL when out of memory.
 */
struct sfs_json *fs_render_key_json(const struct sfs_key_rec *r);

/* A secret: {"id", "name", "description", "status", "access_control",
 * "allowed_principals", "owner", "group", "mode", "default_version",
 * "latest_version", "kms_key": {"id", "name"}, "created_at",
 * "created_by"}; key_name is the name of r->kms_key_id. */
struct sfs_json *fs_render_secret_json(const struct sfs_secret_rec *r,
				       const char *key_name);

/* A version: {"secret", "version", "state", "default", "format", "size",
 * "kms_key": {"id", "name", "version"}, "created_at", "created_by"}. */
struct sfs_json *fs_render_version_json(const char *secret,
					const struct sfs_version_rec *v,
					uint32_t default_version,
					const char *key_name);

/* Append child to *arr; on failure free both and set *arr to NULL.
 * child NULL counts as a failure. */
void fs_render_push(struct sfs_json **arr, struct sfs_json *child);

/* j (taken) as indented JSON text with a trailing newline, as files of
 * the mount show it; malloc'd, *len its length, or NULL (no memory). */
char *fs_render_json_file(struct sfs_json *j, size_t *len);

/* "enabled" or "disabled". */
const char *fs_render_access_control(int enabled);
/* A mode as four octal digits: "0440" (out holds 8 bytes). */
void fs_render_mode(uint32_t mode, char out[8]);

/*
 * One field of a record as text, as the attributes show it (SPEC §3: no
 * trailing newline) and the command line's `field: value` lines:
 * field is its JSON name. A secret's "id", "name", "description",
 * "status", "access_control", "allowed_principals", "default_version",
 * "latest_version", "created_at", "created_by"; a version's "version",
 * "state", "format", "created_at", "created_by". SFS_OK, SFS_ENODATA (a
 * version number that is unset) or SFS_ENOENT (no such field).
 */
int fs_render_secret_field(const struct sfs_secret_rec *r, const char *field,
			   char *out, size_t cap);
int fs_render_version_field(const struct sfs_version_rec *v, const char *field,
			    char *out, size_t cap);

#endif
