/*
 * Policy: every lifecycle rule of SPEC §2 and every permission rule of
 * SPEC §1/§3, as pure functions of (action, caller, state). Nothing here
 * does I/O, allocates, reads the clock or asks the name service (a
 * filesystem caller's supplementary groups are read by the caller's own
 * source, sfs_caller_in_group, and only when a rule depends on them): the
 * services gather the state, ask, and act only on SFS_OK, so the CLI and
 * the filesystem cannot disagree and tests/test_policy.c can check every
 * rule as one row of a table.
 *
 * For each action the checks run in one fixed order: (1) a change on a
 * read-only store or mount is SFS_EROFS; (2) the caller's permission or
 * role, SFS_EACCES (so a caller who may not act learns nothing of the
 * state); (3) the lifecycle rules, in the order of the SPEC's table. The
 * administrator (the CLI holding the master key) passes every permission
 * and role check but never a lifecycle rule. Root and the mount's owner
 * get SFS_ROLE_ALL from the services, not here; root has no exemption
 * from an access-controlled secret's allow list.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "secretfs/policy.h"

static int is_change(enum sfs_action act)
{
	return act != SFS_ACT_SECRET_VIEW && act != SFS_ACT_VALUE_READ &&
	       act != SFS_ACT_KEY_VIEW;
}

static int has_roles(const struct sfs_caller *c, unsigned need)
{
	return c->admin || (c->roles & need) == need;
}

/*
 * Roles needed to use the KMS key named in the state. Only the service
 * key is free: a user key needs kms-user, and so does a key that does not
 * exist, so that a caller without kms-user cannot probe user keys' names
 * through ENOKEY versus EACCES.
 */
static unsigned key_roles(const struct sfs_policy_state *st)
{
	if (st->key_exists && st->key_type == SFS_KEY_SERVICE)
		return 0;
	return SFS_ROLE_KMS_USER;
}

/* Key management and role grants: the administrator's alone. */
static int admin_only(enum sfs_action act)
{
	switch (act) {
	case SFS_ACT_KEY_CREATE:
	case SFS_ACT_KEY_ACTIVATE:
	case SFS_ACT_KEY_DEACTIVATE:
	case SFS_ACT_KEY_ROTATE:
	case SFS_ACT_KEY_DELETE:
	case SFS_ACT_ROLE_CHANGE:
		return 1;
	default:
		return 0;
	}
}

/* Step (2): SFS_OK or SFS_EACCES. */
static int permitted(enum sfs_action act, const struct sfs_caller *c,
		     const struct sfs_policy_state *st)
{
	unsigned need;

	if (admin_only(act))
		return c->admin ? SFS_OK : SFS_EACCES;
	switch (act) {
	case SFS_ACT_SECRET_VIEW:
		return sfs_policy_may_view(c, st->secret) ? SFS_OK : SFS_EACCES;
	case SFS_ACT_VALUE_READ:
		return sfs_policy_may_read(c, st->secret) ? SFS_OK : SFS_EACCES;
	case SFS_ACT_KEY_VIEW:
		need = SFS_ROLE_KMS_VIEWER;
		break;
	case SFS_ACT_SECRET_CREATE:
	case SFS_ACT_VERSION_ADD:
		need = SFS_ROLE_MANAGER | key_roles(st);
		break;
	case SFS_ACT_SECRET_CHANGE_KEY:
		/* away from a user key too: else a manager could move a
		 * secret off a deactivated user key and add versions */
		need = SFS_ROLE_MANAGER | key_roles(st) |
		       (st->from_user_key ? SFS_ROLE_KMS_USER : 0);
		break;
	default:
		need = SFS_ROLE_MANAGER;
		break;
	}
	return has_roles(c, need) ? SFS_OK : SFS_EACCES;
}

static int key_usable(const struct sfs_policy_state *st)
{
	return st->key_exists && st->key_state == SFS_STATE_ACTIVE;
}

/* The version acted on exists and is not destroyed. */
static int version_live(const struct sfs_policy_state *st)
{
	return st->version_exists && st->version_state != SFS_STATE_DESTROYED;
}

static int check_version_add(const struct sfs_policy_state *st)
{
	if (st->secret->status != SFS_STATE_ACTIVE)
		return SFS_EKEYREVOKED;
	if (!key_usable(st))
		return SFS_ENOKEY;
	if (st->value_len == 0)
		return SFS_EINVAL;
	if (st->value_len > SFS_VALUE_MAX)
		return SFS_EFBIG;
	if (st->expect != 0 && st->expect != st->secret->latest_version + 1)
		return SFS_EEXIST;
	return SFS_OK;
}

static int check_value_read(const struct sfs_policy_state *st)
{
	if (st->secret->status != SFS_STATE_ACTIVE)
		return SFS_EKEYREVOKED;
	if (!version_live(st))
		return SFS_ENOENT;
	if (st->version_state != SFS_STATE_ACTIVE)
		return SFS_EKEYREVOKED;
	if (!key_usable(st))
		return SFS_ENOKEY;
	return SFS_OK;
}

/*
 * Destroy: only what is out of use (the version or its whole secret
 * deactivated), so that `rm -r` on a live secret erases nothing anyone
 * reads. A destroyed version stays destroyed: asking again is a no-op.
 */
static int check_version_destroy(const struct sfs_policy_state *st)
{
	if (!st->version_exists)
		return SFS_ENOENT;
	if (st->version_state == SFS_STATE_DESTROYED ||
	    st->version_state == SFS_STATE_DEACTIVATED ||
	    st->secret->status != SFS_STATE_ACTIVE)
		return SFS_OK;
	return SFS_EBUSY;
}

static int check_secret_delete(const struct sfs_policy_state *st)
{
	if (st->secret->status == SFS_STATE_ACTIVE)
		return SFS_EBUSY;
	if (st->live_versions > 0)
		return SFS_ENOTEMPTY;
	return SFS_OK;
}

static int check_key_delete(const struct sfs_policy_state *st)
{
	if (st->key_type == SFS_KEY_SERVICE)
		return SFS_EPERM;
	if (st->key_in_use)
		return SFS_EBUSY;
	return SFS_OK;
}

/* Step (3): the rules of SPEC §2's table. */
static int lifecycle(enum sfs_action act, const struct sfs_policy_state *st)
{
	switch (act) {
	case SFS_ACT_SECRET_CREATE:
	case SFS_ACT_SECRET_CHANGE_KEY:
		return key_usable(st) ? SFS_OK : SFS_ENOKEY;
	case SFS_ACT_VERSION_ADD:
		return check_version_add(st);
	case SFS_ACT_VALUE_READ:
		return check_value_read(st);
	case SFS_ACT_VERSION_SET_DEFAULT:
		if (!version_live(st))
			return SFS_ENOENT;
		return st->version_state == SFS_STATE_ACTIVE ? SFS_OK
							     : SFS_EINVAL;
	case SFS_ACT_VERSION_ACTIVATE:
	case SFS_ACT_VERSION_DEACTIVATE:
		return version_live(st) ? SFS_OK : SFS_ENOENT;
	case SFS_ACT_VERSION_DESTROY:
		return check_version_destroy(st);
	case SFS_ACT_SECRET_ACTIVATE:
		return st->active_versions > 0 ? SFS_OK : SFS_EINVAL;
	case SFS_ACT_SECRET_DELETE:
		return check_secret_delete(st);
	case SFS_ACT_KEY_DEACTIVATE:
		return st->key_type == SFS_KEY_SERVICE ? SFS_EPERM : SFS_OK;
	case SFS_ACT_KEY_DELETE:
		return check_key_delete(st);
	default:
		return SFS_OK;
	}
}

/* Actions that act on an existing secret: st->secret must be set. */
static int needs_secret(enum sfs_action act)
{
	return act != SFS_ACT_SECRET_CREATE && act < SFS_ACT_KEY_CREATE;
}

int sfs_policy_check(enum sfs_action act, const struct sfs_caller *c,
		     const struct sfs_policy_state *st)
{
	int rc;

	assert(c && st);
	assert(!needs_secret(act) || st->secret);
	if (st->readonly && is_change(act))
		return SFS_EROFS;
	rc = permitted(act, c, st);
	if (rc != SFS_OK)
		return rc;
	return lifecycle(act, st);
}

/* --- reasons, for error messages -------------------------------------- */

static const char *why_denied(enum sfs_action act)
{
	if (admin_only(act))
		return "permission denied: only the administrator may";
	switch (act) {
	case SFS_ACT_SECRET_VIEW:
	case SFS_ACT_VALUE_READ:
		return "permission denied: not the owner, the group or on "
		       "the allow list";
	case SFS_ACT_KEY_VIEW:
		return "permission denied: needs the kms-viewer role";
	case SFS_ACT_SECRET_CREATE:
	case SFS_ACT_SECRET_CHANGE_KEY:
	case SFS_ACT_VERSION_ADD:
		return "permission denied: needs the manager role (and "
		       "kms-user for a user key)";
	default:
		return "permission denied: needs the manager role";
	}
}

static const char *why_state(int state)
{
	return state == SFS_STATE_DESTROYED ? "the version is destroyed"
					    : "the version is deactivated";
}

/* SFS_EKEYREVOKED, SFS_ENOENT and SFS_EINVAL about a version. */
static const char *why_version(int rc, const struct sfs_policy_state *st)
{
	if (rc == SFS_EKEYREVOKED && st->secret &&
	    st->secret->status != SFS_STATE_ACTIVE)
		return "the secret is deactivated";
	if (!st->version_exists)
		return "no such version";
	return why_state(st->version_state);
}

static const char *why_add(int rc, const struct sfs_policy_state *st,
			   char *buf, size_t cap)
{
	switch (rc) {
	case SFS_EKEYREVOKED:
		return "the secret is deactivated";
	case SFS_EINVAL:
		return "the value is empty (values are 1-65536 bytes)";
	case SFS_EFBIG:
		return "the value is over 65536 bytes";
	case SFS_EEXIST:
		snprintf(buf, cap, "version %u is next, not %u",
			 st->secret->latest_version + 1, st->expect);
		return buf;
	default:
		return sfs_strerror(rc);
	}
}

const char *sfs_policy_why(enum sfs_action act, int rc,
			   const struct sfs_policy_state *st, char *buf,
			   size_t cap)
{
	assert(st && buf && cap >= 64);
	if (rc == SFS_EROFS)
		return "the store is read-only";
	if (rc == SFS_EACCES)
		return why_denied(act);
	if (rc == SFS_ENOKEY)
		return st->key_exists ? "the kms key is deactivated"
				      : "no such kms key";
	if (act == SFS_ACT_VERSION_ADD)
		return why_add(rc, st, buf, cap);
	if (act == SFS_ACT_SECRET_DELETE && rc == SFS_EBUSY)
		return "the secret is active: deactivate it first";
	if (act == SFS_ACT_SECRET_DELETE && rc == SFS_ENOTEMPTY) {
		snprintf(buf, cap, "%u version%s not destroyed",
			 st->live_versions,
			 st->live_versions == 1 ? " is" : "s are");
		return buf;
	}
	if (act == SFS_ACT_VERSION_DESTROY && rc == SFS_EBUSY)
		return "the version and its secret are active: deactivate it "
		       "first";
	if (act == SFS_ACT_SECRET_ACTIVATE && rc == SFS_EINVAL)
		return "the secret has no active version";
	if (act == SFS_ACT_KEY_DELETE && rc == SFS_EBUSY)
		return "the key is in use by a secret or a version not "
		       "destroyed";
	if (rc == SFS_EPERM && act == SFS_ACT_KEY_DELETE)
		return "the service key cannot be deleted";
	if (rc == SFS_EPERM && act == SFS_ACT_KEY_DEACTIVATE)
		return "the service key is always active";
	if (rc == SFS_EKEYREVOKED || rc == SFS_ENOENT ||
	    (rc == SFS_EINVAL && act == SFS_ACT_VERSION_SET_DEFAULT))
		return why_version(rc, st);
	return sfs_strerror(rc);
}

const char *sfs_policy_name_why(int rc)
{
	if (rc == SFS_ENAMETOOLONG)
		return "name longer than 128 bytes";
	return "invalid name: use 1-128 bytes of A-Z a-z 0-9 . _ -, "
	       "starting with a letter or digit";
}

const char *sfs_policy_desc_why(const char *desc, size_t len)
{
	if (len > SFS_DESC_MAX)
		return "description longer than 1024 bytes";
	if (sfs_policy_utf8_check(desc, len) != SFS_OK)
		return "description is not valid utf-8";
	return "description has control characters";
}

void sfs_policy_view_attrs(const struct sfs_view_id *v,
			   const struct sfs_secret_rec *s, uint32_t *owner,
			   uint32_t *group, uint32_t *mode)
{
	unsigned set;

	assert(v && s && owner && group && mode);
	set = s->access_control ? 0 : v->set;
	*owner = (set & SFS_VIEW_UID) ? v->uid : s->owner;
	*group = (set & SFS_VIEW_GID) ? v->gid : s->group;
	*mode = (set & SFS_VIEW_MODE) ? v->mode : s->mode;
}

int sfs_policy_may_read(const struct sfs_caller *c,
			const struct sfs_secret_rec *s)
{
	uint32_t owner, group, mode;
	int g;

	assert(c && s);
	if (c->admin)
		return 1;
	if (s->access_control)
		return c->uid == s->owner ||
		       sfs_principal_list_matches(s->allow, s->nallow, c);
	if (c->uid == 0)
		return 1;
	sfs_policy_view_attrs(&c->view, s, &owner, &group, &mode);
	/* As Unix does: the first class that matches decides, even when a
	 * later one would allow. */
	if (c->uid == owner)
		return (mode & 0400) != 0;
	/* Group and other bits agree: membership cannot change the answer,
	 * so the caller's groups are not read. Groups that cannot be read
	 * refuse rather than fall back to the other bits. */
	if (((mode >> 3) & 04) == (mode & 04))
		return (mode & 0004) != 0;
	g = sfs_caller_in_group(c, group);
	if (g != 0)
		return g > 0 && (mode & 0040) != 0;
	return (mode & 0004) != 0;
}

size_t sfs_policy_readers(const struct sfs_secret_rec *s,
			  struct sfs_reader *out, size_t cap)
{
	size_t n = 0, i;

	assert(s && (out || !cap));
	if (n < cap)
		out[n++] = (struct sfs_reader){0, s->owner};
	for (i = 0; i < s->nallow && n < cap; i++)
		out[n++] = (struct sfs_reader){
		    s->allow[i].kind == SFS_PRINCIPAL_GID, s->allow[i].id};
	return n;
}

int sfs_policy_may_manage(const struct sfs_caller *c)
{
	assert(c);
	return has_roles(c, SFS_ROLE_MANAGER);
}

int sfs_policy_may_view(const struct sfs_caller *c,
			const struct sfs_secret_rec *s)
{
	assert(c && s);
	if (!s->access_control)
		return 1;
	return sfs_policy_may_read(c, s);
}

uint32_t sfs_policy_next_default(const int *states, uint32_t n)
{
	uint32_t i;

	for (i = n; i >= 1; i--)
		if (states[i] == SFS_STATE_ACTIVE)
			return i;
	return 0;
}

void sfs_policy_effects(int to, uint32_t n, const int *states, uint32_t nv,
			uint32_t *def, int *status)
{
	uint32_t next;

	if (to == SFS_STATE_ACTIVE) {
		if (!*def)
			*def = n;
		return;
	}
	next = sfs_policy_next_default(states, nv);
	if (*def == n)
		*def = next;
	if (!next) {
		*def = 0;
		*status = SFS_STATE_DEACTIVATED;
	}
}

static int name_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

int sfs_policy_name_check(const char *name, size_t len)
{
	size_t i;

	assert(name || len == 0);
	if (len == 0)
		return SFS_EINVAL;
	if (len > SFS_NAME_MAX)
		return SFS_ENAMETOOLONG;
	/* First a letter or digit: rules out ".", "..", "-x", "_x". */
	if (!name_char((unsigned char)name[0]) || name[0] == '.' ||
	    name[0] == '_' || name[0] == '-')
		return SFS_EINVAL;
	for (i = 1; i < len; i++)
		if (!name_char((unsigned char)name[i]))
			return SFS_EINVAL; /* includes an embedded NUL */
	return SFS_OK;
}

/*
 * Lead bytes C0, C1 and F5..FF never start a valid sequence; the second
 * byte's range rules out overlong forms, surrogates and code points over
 * U+10FFFF (RFC 3629).
 */
size_t sfs_policy_utf8_next(const void *p, size_t len, uint32_t *cp)
{
	const unsigned char *s = p;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	assert(len >= 1);

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	*cp = s[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return n;
}

int sfs_policy_utf8_check(const void *s, size_t len)
{
	const unsigned char *p = s;
	uint32_t cp;
	size_t i = 0, n;

	while (i < len) {
		n = sfs_policy_utf8_next(p + i, len - i, &cp);
		if (n == 0)
			return SFS_EINVAL;
		i += n;
	}
	return SFS_OK;
}

int sfs_policy_desc_check(const char *desc, size_t len)
{
	const unsigned char *p = (const unsigned char *)desc;
	uint32_t cp;
	size_t i = 0, n;

	assert(desc || len == 0);
	if (len > SFS_DESC_MAX)
		return SFS_EINVAL;
	while (i < len) {
		n = sfs_policy_utf8_next(p + i, len - i, &cp);
		if (n == 0)
			return SFS_EINVAL;
		/* C0 (with NUL, tab, newline), DEL and C1 controls */
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return SFS_EINVAL;
		i += n;
	}
	return SFS_OK;
}
