/*
 * Policy: every rule of SPEC §2, and who may do what (SPEC §1, §3), as pure
 * functions of (action, caller, state). No I/O, no allocation, no clock:
 * the services gather the state from the store, ask sfs_policy_check(),
 * and act only on SFS_OK. The CLI and the filesystem both go through the
 * services, so they can never disagree. tests/test_policy.c checks it as a
 * table, one row per rule.
 *
 * Order of checks within one action: a change on a read-only store or
 * mount is SFS_EROFS first; then caller permission (a caller who may not
 * see a secret learns nothing of its state), SFS_EACCES; then lifecycle
 * rules in the order of the SPEC's table. The administrator (c->admin)
 * passes every permission and role check, never a lifecycle rule.
 *
 * Roles: changes to secrets and versions need SFS_ROLE_MANAGER; using any
 * key but the service key (create under it, change to it, add a version
 * to a secret under it) also needs SFS_ROLE_KMS_USER, and so does a key
 * that does not exist (no probing of key names); KEY_VIEW needs
 * SFS_ROLE_KMS_VIEWER; key changes and ROLE_CHANGE are admin only.
 */
#ifndef SECRETFS_POLICY_H
#define SECRETFS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "secretfs/err.h"
#include "secretfs/principal.h"
#include "secretfs/store.h"

enum sfs_action {
	SFS_ACT_SECRET_CREATE,    /* key: the new secret's KMS key */
	SFS_ACT_SECRET_VIEW,      /* full details (all attributes) */
	SFS_ACT_SECRET_UPDATE,    /* description, access control, allow
				   * list, owner, group, mode */
	SFS_ACT_SECRET_ACTIVATE,
	SFS_ACT_SECRET_DEACTIVATE,
	SFS_ACT_SECRET_CHANGE_KEY, /* key: the new key */
	SFS_ACT_SECRET_DELETE,
	SFS_ACT_VERSION_ADD,       /* key: the secret's KMS key */
	SFS_ACT_VALUE_READ,        /* key: the key that wrapped the version */
	SFS_ACT_VERSION_SET_DEFAULT,
	SFS_ACT_VERSION_ACTIVATE,
	SFS_ACT_VERSION_DEACTIVATE,
	SFS_ACT_VERSION_DESTROY,
	SFS_ACT_KEY_CREATE,
	SFS_ACT_KEY_VIEW,
	SFS_ACT_KEY_ACTIVATE,
	SFS_ACT_KEY_DEACTIVATE,
	SFS_ACT_KEY_ROTATE,
	SFS_ACT_KEY_DELETE,        /* key_in_use filled */
	SFS_ACT_ROLE_CHANGE,       /* grant / revoke: administrator only */
};

/* What the services know when they ask. Fields an action does not use
 * are ignored. */
struct sfs_policy_state {
	int readonly; /* store or mount is read-only: changes get SFS_EROFS */
	/* the secret (not for key actions) */
	const struct sfs_secret_rec *secret;
	unsigned active_versions; /* versions in state active */
	unsigned live_versions;   /* versions not destroyed */
	/* the version acted on (read, set default, state changes) */
	int version_exists;
	int version_state;
	/* the KMS key involved (see enum sfs_action) */
	int key_exists;
	int key_type;
	int key_state;
	int key_in_use;
	/* change key: the secret's current key is a user key (or gone) */
	int from_user_key;
	/* version add */
	size_t value_len;
	uint32_t expect; /* compare-and-set: expected new number, 0: none */
};

/* SFS_OK, or the code the SPEC gives for the first rule that refuses. */
int sfs_policy_check(enum sfs_action act, const struct sfs_caller *c,
		     const struct sfs_policy_state *st);

/*
 * Why sfs_policy_check(act, c, st) refused with rc, in words for an error
 * message: "the secret is active", "version 4 is next, not 6", "1
 * version is not destroyed". Written into buf (cap bytes, at least 64)
 * and returned. rc must be a code sfs_policy_check() returned for this
 * state; other codes get sfs_strerror(rc). Pure.
 */
const char *sfs_policy_why(enum sfs_action act, int rc,
			   const struct sfs_policy_state *st, char *buf,
			   size_t cap);

/* Why a name is refused by sfs_policy_name_check (rc its answer). */
const char *sfs_policy_name_why(int rc);

/* Why a description is refused by sfs_policy_desc_check. */
const char *sfs_policy_desc_why(const char *desc, size_t len);

/*
 * May the caller read this secret's values? With access control enabled:
 * the owner and the allow list only (no exemption for root through the
 * filesystem). Disabled: the mode bits, as Unix checks them, and root;
 * through a view with an identity override (c->view), the view's owner,
 * group and mode stand in for the secret's (sfs_policy_view_attrs).
 * The administrator (CLI) always may.
 */
int sfs_policy_may_read(const struct sfs_caller *c,
			const struct sfs_secret_rec *s);

/*
 * Who may read the values of an access-controlled secret (the rule of
 * sfs_policy_may_read for access_control = 1, as a list): its owner
 * first, then each entry of its allow list. For a front that lets the
 * kernel enforce it (cache=kernel's POSIX ACL). Returns the count, at
 * most cap. Pure.
 */
struct sfs_reader {
	int group;   /* 0: a uid, 1: a gid */
	uint32_t id;
};
size_t sfs_policy_readers(const struct sfs_secret_rec *s,
			  struct sfs_reader *out, size_t cap);

/*
 * The owner, group and mode a secret's value files show through view v,
 * and against which reads are checked: each field v sets replaces the
 * secret's, for a secret without access control only (an allow list
 * decides alone, so a view never opens one to anyone it does not list).
 * Pure.
 */
void sfs_policy_view_attrs(const struct sfs_view_id *v,
			   const struct sfs_secret_rec *s, uint32_t *owner,
			   uint32_t *group, uint32_t *mode);

/* May the caller see all of a secret's details (1) or only the partial
 * view (0)? Only access-controlled secrets have a partial view. */
int sfs_policy_may_view(const struct sfs_caller *c,
			const struct sfs_secret_rec *s);

/* May the caller make changes to secrets at all (the manager role, or
 * the administrator)? For access(2)-style questions asked before any
 * particular change; the change itself is still decided by
 * sfs_policy_check(). Needs c->roles resolved. */
int sfs_policy_may_manage(const struct sfs_caller *c);

/*
 * Default after a version left the active state: the newest active
 * version in states[1..n] (states[i] is version i's enum sfs_state;
 * states[0] unused), or 0 when none is active.
 */
uint32_t sfs_policy_next_default(const int *states, uint32_t n);

/*
 * The automatic effects of SPEC §2 once version n of a secret has moved
 * to state to (an enum sfs_state; states[1..nv] already hold the new
 * state): *def and *status are the secret's default and status, updated
 * in place. Activating a version of a secret with no default makes it the
 * default (the status is left alone: turning a secret back on is an
 * explicit act); a default that leaves the active state moves to the
 * newest active version; with no active version left the secret has no
 * default and is deactivated. Pure.
 */
void sfs_policy_effects(int to, uint32_t n, const int *states, uint32_t nv,
			uint32_t *def, int *status);

/* Names of secrets and keys: SFS_OK, SFS_EINVAL or SFS_ENAMETOOLONG. */
int sfs_policy_name_check(const char *name, size_t len);

/* Descriptions: at most 1,024 bytes of UTF-8 without control characters. */
int sfs_policy_desc_check(const char *desc, size_t len);

/*
 * Strict UTF-8: SFS_OK, or SFS_EINVAL for a truncated sequence, an
 * overlong form, a surrogate (U+D800..U+DFFF) or a code point over
 * U+10FFFF. NUL bytes are valid UTF-8 here; callers that refuse them
 * check separately. Pure.
 */
int sfs_policy_utf8_check(const void *s, size_t len);

/*
 * Decode the one UTF-8 sequence at s[0..len) (len >= 1), as strictly as
 * sfs_policy_utf8_check(): its length, or 0 when invalid; its code point
 * in *cp. Pure.
 */
size_t sfs_policy_utf8_next(const void *s, size_t len, uint32_t *cp);

#endif
