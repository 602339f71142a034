/*
 * Policy suite: every rule of SPEC §2 and every permission rule, one row
 * of a table each, run by one loop test so that each row reports on its
 * own ("rules" test case, loop index = row). A row names the action, the
 * caller and the state that differ from a plain, permitted case, and the
 * exact code sfs_policy_check() must return. Then the default-version
 * choice, names and descriptions, also as tables.
 *
 * Callers: the administrator (CLI), root (uid 0, not admin) and ordinary
 * users related to the secret (owner 1000, group 100) in different ways.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"
#include "secretfs/policy.h"

#define OWNER 1000
#define GROUP 100

enum who {
	ADMIN,     /* CLI with the master key; roles 0 to prove the bypass */
	ROOT,      /* uid 0 through the filesystem */
	OWNER_U,   /* uid OWNER, gid GROUP */
	GROUP_U,   /* uid 2000, primary gid GROUP */
	SUPP_U,    /* uid 2001, gid 2001, supplementary GROUP */
	OTHER_U,   /* uid 3000, gid 3000, groups 3001, 3002 */
	LISTED_U,  /* uid 4000: on the allow list by uid */
	LISTED_G,  /* uid 4001, supplementary gid 4100: listed by gid */
	LISTED_PG, /* uid 4002, primary gid 4100: listed by gid */
};

#define RO  SFS_ROLE_MANAGER
#define RU  SFS_ROLE_KMS_USER
#define RV  SFS_ROLE_KMS_VIEWER
#define ALL SFS_ROLE_ALL

#define ACTIVE SFS_STATE_ACTIVE
#define DEACT SFS_STATE_DEACTIVATED
#define DESTROYED SFS_STATE_DESTROYED

struct row {
	const char *name;
	enum sfs_action act;
	enum who who;
	unsigned roles;
	/* secret: status 0 is active; mode as given (0 means 0000) */
	int sec_status;
	int acl;
	const char *allowed;
	unsigned mode;
	uint32_t latest;
	/* state; zero means present and active */
	int ro;
	int no_version;
	int version_state;
	int no_key;
	int key_type; /* 0: service key */
	int key_state;
	int key_in_use;
	int from_user_key; /* change key: away from a user key */
	unsigned active_versions;
	unsigned live_versions;
	size_t value_len;
	uint32_t expect;
	/* the view read through (mount options uid=, gid=, mode=) */
	unsigned view_set;
	uint32_t view_uid, view_gid, view_mode;
	int want;
};

#define V_UID  SFS_VIEW_UID
#define V_GID  SFS_VIEW_GID
#define V_MODE SFS_VIEW_MODE

static const struct row rows[] = {
	/* --- (1) read-only: any change is EROFS, first ---------------- */
	{ "ro: create secret", SFS_ACT_SECRET_CREATE, .ro = 1,
	  .want = SFS_EROFS },
	{ "ro: update secret", SFS_ACT_SECRET_UPDATE, .ro = 1,
	  .want = SFS_EROFS },
	{ "ro: add version", SFS_ACT_VERSION_ADD, .ro = 1, .value_len = 5,
	  .want = SFS_EROFS },
	{ "ro: destroy version", SFS_ACT_VERSION_DESTROY, .ro = 1,
	  .want = SFS_EROFS },
	{ "ro: key rotate", SFS_ACT_KEY_ROTATE, .ro = 1, .key_type = 1,
	  .want = SFS_EROFS },
	{ "ro: role change", SFS_ACT_ROLE_CHANGE, .ro = 1,
	  .want = SFS_EROFS },
	{ "ro: read a value is allowed", SFS_ACT_VALUE_READ, .ro = 1,
	  .want = SFS_OK },
	{ "ro: view a secret is allowed", SFS_ACT_SECRET_VIEW, .ro = 1,
	  .want = SFS_OK },
	{ "ro: view a key is allowed", SFS_ACT_KEY_VIEW, .ro = 1,
	  .want = SFS_OK },
	{ "ro before role: no manager", SFS_ACT_SECRET_UPDATE, OTHER_U, 0,
	  .ro = 1, .want = SFS_EROFS },
	{ "ro before lifecycle: delete active secret", SFS_ACT_SECRET_DELETE,
	  .ro = 1, .live_versions = 3, .want = SFS_EROFS },

	/* --- (2) roles and permissions -------------------------------- */
	{ "admin bypass: user key without roles", SFS_ACT_SECRET_CREATE,
	  ADMIN, 0, .key_type = 1, .want = SFS_OK },
	{ "admin bypass: acl secret, not listed", SFS_ACT_VALUE_READ, ADMIN,
	  0, .acl = 1, .allowed = "", .want = SFS_OK },
	{ "admin: lifecycle still applies", SFS_ACT_SECRET_CREATE, ADMIN, 0,
	  .key_state = DEACT, .want = SFS_ENOKEY },
	{ "create: no role", SFS_ACT_SECRET_CREATE, OTHER_U, 0,
	  .want = SFS_EACCES },
	{ "create: kms-user alone", SFS_ACT_SECRET_CREATE, OTHER_U, RU,
	  .want = SFS_EACCES },
	{ "create: manager, service key", SFS_ACT_SECRET_CREATE, OTHER_U, RO,
	  .want = SFS_OK },
	{ "create: manager, user key", SFS_ACT_SECRET_CREATE, OTHER_U, RO,
	  .key_type = 1, .want = SFS_EACCES },
	{ "create: manager+kms-user, user key", SFS_ACT_SECRET_CREATE,
	  OTHER_U, RO | RU, .key_type = 1, .want = SFS_OK },
	{ "create: manager, unknown key needs kms-user",
	  SFS_ACT_SECRET_CREATE, OTHER_U, RO, .no_key = 1,
	  .want = SFS_EACCES },
	{ "create: role before lifecycle", SFS_ACT_SECRET_CREATE, OTHER_U,
	  RU | RV, .key_state = DEACT, .want = SFS_EACCES },
	{ "root holds no role by itself", SFS_ACT_SECRET_CREATE, ROOT, 0,
	  .want = SFS_EACCES },
	{ "update: no manager", SFS_ACT_SECRET_UPDATE, OWNER_U, RU | RV,
	  .want = SFS_EACCES },
	{ "update: manager", SFS_ACT_SECRET_UPDATE, OTHER_U, RO,
	  .want = SFS_OK },
	{ "activate: no manager", SFS_ACT_SECRET_ACTIVATE, OTHER_U, RU | RV,
	  .active_versions = 1, .want = SFS_EACCES },
	{ "deactivate: no manager", SFS_ACT_SECRET_DEACTIVATE, OTHER_U,
	  RU | RV, .want = SFS_EACCES },
	{ "deactivate: manager", SFS_ACT_SECRET_DEACTIVATE, OTHER_U, RO,
	  .want = SFS_OK },
	{ "delete: no manager", SFS_ACT_SECRET_DELETE, OTHER_U, RU | RV,
	  .sec_status = DEACT, .want = SFS_EACCES },
	{ "change key: no manager", SFS_ACT_SECRET_CHANGE_KEY, OTHER_U, RU,
	  .want = SFS_EACCES },
	{ "change key: manager, service key", SFS_ACT_SECRET_CHANGE_KEY,
	  OTHER_U, RO, .want = SFS_OK },
	{ "change key: manager, user key", SFS_ACT_SECRET_CHANGE_KEY,
	  OTHER_U, RO, .key_type = 1, .want = SFS_EACCES },
	{ "change key: manager+kms-user, user key",
	  SFS_ACT_SECRET_CHANGE_KEY, OTHER_U, RO | RU, .key_type = 1,
	  .want = SFS_OK },
	{ "change key: manager, away from a user key",
	  SFS_ACT_SECRET_CHANGE_KEY, OTHER_U, RO, .from_user_key = 1,
	  .want = SFS_EACCES },
	{ "change key: manager+kms-user, away from a user key",
	  SFS_ACT_SECRET_CHANGE_KEY, OTHER_U, RO | RU, .from_user_key = 1,
	  .want = SFS_OK },
	{ "add version: no manager", SFS_ACT_VERSION_ADD, OWNER_U, RU | RV,
	  .value_len = 5, .want = SFS_EACCES },
	{ "add version: manager, service key", SFS_ACT_VERSION_ADD, OTHER_U,
	  RO, .value_len = 5, .want = SFS_OK },
	{ "add version: manager, user key", SFS_ACT_VERSION_ADD, OTHER_U, RO,
	  .key_type = 1, .value_len = 5, .want = SFS_EACCES },
	{ "add version: manager+kms-user, user key", SFS_ACT_VERSION_ADD,
	  OTHER_U, RO | RU, .key_type = 1, .value_len = 5, .want = SFS_OK },
	{ "add version: role before lifecycle", SFS_ACT_VERSION_ADD, OTHER_U,
	  0, .sec_status = DEACT, .value_len = 5, .want = SFS_EACCES },
	{ "set default: no manager", SFS_ACT_VERSION_SET_DEFAULT, OTHER_U,
	  RU | RV, .want = SFS_EACCES },
	{ "version activate: no manager", SFS_ACT_VERSION_ACTIVATE, OTHER_U,
	  RU | RV, .want = SFS_EACCES },
	{ "version deactivate: no manager", SFS_ACT_VERSION_DEACTIVATE,
	  OTHER_U, RU | RV, .want = SFS_EACCES },
	{ "version destroy: no manager", SFS_ACT_VERSION_DESTROY, OTHER_U,
	  RU | RV, .want = SFS_EACCES },
	{ "version destroy: manager", SFS_ACT_VERSION_DESTROY, OTHER_U, RO,
	  .version_state = DEACT, .want = SFS_OK },
	{ "key view: kms-viewer", SFS_ACT_KEY_VIEW, OTHER_U, RV,
	  .key_type = 1, .want = SFS_OK },
	{ "key view: without kms-viewer", SFS_ACT_KEY_VIEW, OTHER_U, RO | RU,
	  .key_type = 1, .want = SFS_EACCES },
	{ "key view: admin", SFS_ACT_KEY_VIEW, ADMIN, 0, .want = SFS_OK },
	{ "key create: all roles, not admin", SFS_ACT_KEY_CREATE, ROOT, ALL,
	  .want = SFS_EACCES },
	{ "key create: admin", SFS_ACT_KEY_CREATE, ADMIN, 0,
	  .want = SFS_OK },
	{ "key activate: not admin", SFS_ACT_KEY_ACTIVATE, OTHER_U, ALL,
	  .key_type = 1, .want = SFS_EACCES },
	{ "key deactivate: not admin", SFS_ACT_KEY_DEACTIVATE, OTHER_U, ALL,
	  .key_type = 1, .want = SFS_EACCES },
	{ "key rotate: not admin", SFS_ACT_KEY_ROTATE, OTHER_U, ALL,
	  .key_type = 1, .want = SFS_EACCES },
	{ "key rotate: admin", SFS_ACT_KEY_ROTATE, ADMIN, 0, .key_type = 1,
	  .want = SFS_OK },
	{ "key delete: not admin", SFS_ACT_KEY_DELETE, OTHER_U, ALL,
	  .key_type = 1, .want = SFS_EACCES },
	{ "role change: not admin", SFS_ACT_ROLE_CHANGE, ROOT, ALL,
	  .want = SFS_EACCES },
	{ "role change: admin", SFS_ACT_ROLE_CHANGE, ADMIN, 0,
	  .want = SFS_OK },

	/* --- reading values: mode bits (access control disabled) ------- */
	{ "mode: root reads mode 0000", SFS_ACT_VALUE_READ, ROOT, 0,
	  .mode = 0, .want = SFS_OK },
	{ "mode: owner 0400", SFS_ACT_VALUE_READ, OWNER_U, 0, .mode = 0400,
	  .want = SFS_OK },
	{ "mode: owner bits decide over group", SFS_ACT_VALUE_READ, OWNER_U,
	  0, .mode = 0044, .want = SFS_EACCES },
	{ "mode: group 0040", SFS_ACT_VALUE_READ, GROUP_U, 0, .mode = 0040,
	  .want = SFS_OK },
	{ "mode: group bits decide over other", SFS_ACT_VALUE_READ, GROUP_U,
	  0, .mode = 0404, .want = SFS_EACCES },
	{ "mode: supplementary group 0040", SFS_ACT_VALUE_READ, SUPP_U, 0,
	  .mode = 0040, .want = SFS_OK },
	{ "mode: supplementary group 0400", SFS_ACT_VALUE_READ, SUPP_U, 0,
	  .mode = 0400, .want = SFS_EACCES },
	{ "mode: other 0004", SFS_ACT_VALUE_READ, OTHER_U, 0, .mode = 0004,
	  .want = SFS_OK },
	{ "mode: other 0440 (default)", SFS_ACT_VALUE_READ, OTHER_U, 0,
	  .mode = 0440, .want = SFS_EACCES },
	{ "mode: write bits do not read", SFS_ACT_VALUE_READ, OWNER_U, 0,
	  .mode = 0333, .want = SFS_EACCES },
	{ "mode: roles do not read", SFS_ACT_VALUE_READ, OTHER_U, ALL,
	  .mode = 0440, .want = SFS_EACCES },
	{ "mode: allow list ignored when disabled", SFS_ACT_VALUE_READ,
	  LISTED_U, 0, .allowed = "uid:4000", .mode = 0440,
	  .want = SFS_EACCES },
	{ "mode: permission before lifecycle", SFS_ACT_VALUE_READ, OTHER_U, 0,
	  .mode = 0440, .sec_status = DEACT, .want = SFS_EACCES },

	/* --- reading values: access control enabled ------------------- */
	{ "acl: owner always, mode 0000", SFS_ACT_VALUE_READ, OWNER_U, 0,
	  .acl = 1, .allowed = "", .mode = 0, .want = SFS_OK },
	{ "acl: listed uid", SFS_ACT_VALUE_READ, LISTED_U, 0, .acl = 1,
	  .allowed = "gid:7,uid:4000", .mode = 0, .want = SFS_OK },
	{ "acl: listed gid, supplementary", SFS_ACT_VALUE_READ, LISTED_G, 0,
	  .acl = 1, .allowed = "uid:1,gid:4100", .mode = 0, .want = SFS_OK },
	{ "acl: listed gid, primary", SFS_ACT_VALUE_READ, LISTED_PG, 0,
	  .acl = 1, .allowed = "gid:4100", .mode = 0, .want = SFS_OK },
	{ "acl: mode bits ignored", SFS_ACT_VALUE_READ, GROUP_U, 0, .acl = 1,
	  .allowed = "uid:4000", .mode = 0444, .want = SFS_EACCES },
	{ "acl: root not exempt", SFS_ACT_VALUE_READ, ROOT, ALL, .acl = 1,
	  .allowed = "uid:4000", .mode = 0444, .want = SFS_EACCES },
	{ "acl: root when listed", SFS_ACT_VALUE_READ, ROOT, 0, .acl = 1,
	  .allowed = "uid:0", .want = SFS_OK },
	{ "acl: empty list, other", SFS_ACT_VALUE_READ, OTHER_U, 0, .acl = 1,
	  .allowed = "", .mode = 0444, .want = SFS_EACCES },
	{ "acl: permission before lifecycle", SFS_ACT_VALUE_READ, OTHER_U, 0,
	  .acl = 1, .allowed = "", .sec_status = DEACT, .no_version = 1,
	  .want = SFS_EACCES },

	/* --- a view's identity override (uid=, gid=, mode=) ----------- */
	{ "view id: mode opens to other", SFS_ACT_VALUE_READ, OTHER_U, 0,
	  .mode = 0400, .view_set = V_MODE, .view_mode = 0444,
	  .want = SFS_OK },
	{ "view id: mode closes to the secret's owner", SFS_ACT_VALUE_READ,
	  OWNER_U, 0, .mode = 0440, .view_set = V_MODE, .view_mode = 0000,
	  .want = SFS_EACCES },
	{ "view id: uid makes the consumer the owner", SFS_ACT_VALUE_READ,
	  OTHER_U, 0, .mode = 0400, .view_set = V_UID, .view_uid = 3000,
	  .want = SFS_OK },
	{ "view id: uid takes the owner class from the secret's owner",
	  SFS_ACT_VALUE_READ, OWNER_U, 0, .mode = 0400, .view_set = V_UID,
	  .view_uid = 3000, .want = SFS_EACCES },
	{ "view id: gid makes the consumer's group the group",
	  SFS_ACT_VALUE_READ, OTHER_U, 0, .mode = 0040, .view_set = V_GID,
	  .view_gid = 3002, .want = SFS_OK },
	{ "view id: uid, gid and mode together", SFS_ACT_VALUE_READ, GROUP_U,
	  0, .mode = 0444, .view_set = V_UID | V_GID | V_MODE,
	  .view_uid = 3000, .view_gid = 3000, .view_mode = 0400,
	  .want = SFS_EACCES },
	{ "view id: root still reads", SFS_ACT_VALUE_READ, ROOT, 0,
	  .mode = 0400, .view_set = V_MODE, .view_mode = 0000,
	  .want = SFS_OK },
	{ "view id: acl, unlisted consumer stays out", SFS_ACT_VALUE_READ,
	  OTHER_U, 0, .acl = 1, .allowed = "", .mode = 0444,
	  .view_set = V_UID | V_MODE, .view_uid = 3000, .view_mode = 0444,
	  .want = SFS_EACCES },
	{ "view id: acl, listed reader still reads", SFS_ACT_VALUE_READ,
	  LISTED_U, 0, .acl = 1, .allowed = "uid:4000",
	  .view_set = V_UID | V_MODE, .view_uid = 3000, .view_mode = 0000,
	  .want = SFS_OK },
	{ "view id: permission before lifecycle", SFS_ACT_VALUE_READ,
	  OTHER_U, 0, .mode = 0444, .view_set = V_MODE, .view_mode = 0400,
	  .sec_status = DEACT, .want = SFS_EACCES },
	{ "view id: details of a secret stay public", SFS_ACT_SECRET_VIEW,
	  OTHER_U, 0, .mode = 0, .view_set = V_MODE, .view_mode = 0,
	  .want = SFS_OK },

	/* --- viewing a secret's details ------------------------------- */
	{ "view: acl off, anyone", SFS_ACT_SECRET_VIEW, OTHER_U, 0,
	  .mode = 0, .want = SFS_OK },
	{ "view: acl on, other", SFS_ACT_SECRET_VIEW, OTHER_U, ALL, .acl = 1,
	  .allowed = "", .want = SFS_EACCES },
	{ "view: acl on, owner", SFS_ACT_SECRET_VIEW, OWNER_U, 0, .acl = 1,
	  .allowed = "", .want = SFS_OK },
	{ "view: acl on, listed gid", SFS_ACT_SECRET_VIEW, LISTED_G, 0,
	  .acl = 1, .allowed = "gid:4100", .want = SFS_OK },
	{ "view: acl on, root not exempt", SFS_ACT_SECRET_VIEW, ROOT, ALL,
	  .acl = 1, .allowed = "", .want = SFS_EACCES },
	{ "view: acl on, admin", SFS_ACT_SECRET_VIEW, ADMIN, 0, .acl = 1,
	  .allowed = "", .want = SFS_OK },

	/* --- (3) lifecycle: create secret ----------------------------- */
	{ "create: key active", SFS_ACT_SECRET_CREATE, .want = SFS_OK },
	{ "create: key deactivated", SFS_ACT_SECRET_CREATE, .key_type = 1,
	  .key_state = DEACT, .want = SFS_ENOKEY },
	{ "create: key gone", SFS_ACT_SECRET_CREATE, .no_key = 1,
	  .want = SFS_ENOKEY },

	/* --- add version ---------------------------------------------- */
	{ "add: ok", SFS_ACT_VERSION_ADD, .value_len = 5, .want = SFS_OK },
	{ "add: secret deactivated", SFS_ACT_VERSION_ADD, .sec_status = DEACT,
	  .value_len = 5, .want = SFS_EKEYREVOKED },
	{ "add: key deactivated", SFS_ACT_VERSION_ADD, .key_type = 1,
	  .key_state = DEACT, .value_len = 5, .want = SFS_ENOKEY },
	{ "add: key gone", SFS_ACT_VERSION_ADD, .no_key = 1, .value_len = 5,
	  .want = SFS_ENOKEY },
	{ "add: empty value", SFS_ACT_VERSION_ADD, .value_len = 0,
	  .want = SFS_EINVAL },
	{ "add: 1 byte", SFS_ACT_VERSION_ADD, .value_len = 1,
	  .want = SFS_OK },
	{ "add: 65536 bytes", SFS_ACT_VERSION_ADD, .value_len = 65536,
	  .want = SFS_OK },
	{ "add: 65537 bytes", SFS_ACT_VERSION_ADD, .value_len = 65537,
	  .want = SFS_EFBIG },
	{ "add: expect latest+1", SFS_ACT_VERSION_ADD, .latest = 4,
	  .expect = 5, .value_len = 5, .want = SFS_OK },
	{ "add: expect latest", SFS_ACT_VERSION_ADD, .latest = 4,
	  .expect = 4, .value_len = 5, .want = SFS_EEXIST },
	{ "add: expect latest+2", SFS_ACT_VERSION_ADD, .latest = 4,
	  .expect = 6, .value_len = 5, .want = SFS_EEXIST },
	{ "add: expect 1 on a new secret", SFS_ACT_VERSION_ADD, .latest = 0,
	  .expect = 1, .value_len = 5, .want = SFS_OK },
	{ "add: no expectation", SFS_ACT_VERSION_ADD, .latest = 9,
	  .expect = 0, .value_len = 5, .want = SFS_OK },
	{ "add order: secret before key", SFS_ACT_VERSION_ADD,
	  .sec_status = DEACT, .key_state = DEACT, .value_len = 0,
	  .want = SFS_EKEYREVOKED },
	{ "add order: key before size", SFS_ACT_VERSION_ADD, .no_key = 1,
	  .value_len = 70000, .want = SFS_ENOKEY },
	{ "add order: size before expect", SFS_ACT_VERSION_ADD, .latest = 2,
	  .expect = 2, .value_len = 70000, .want = SFS_EFBIG },
	{ "add order: empty before expect", SFS_ACT_VERSION_ADD, .latest = 2,
	  .expect = 2, .value_len = 0, .want = SFS_EINVAL },

	/* --- read a value --------------------------------------------- */
	{ "read: ok", SFS_ACT_VALUE_READ, .want = SFS_OK },
	{ "read: secret deactivated", SFS_ACT_VALUE_READ, .sec_status = DEACT,
	  .want = SFS_EKEYREVOKED },
	{ "read: version deactivated", SFS_ACT_VALUE_READ,
	  .version_state = DEACT, .want = SFS_EKEYREVOKED },
	{ "read: version destroyed", SFS_ACT_VALUE_READ,
	  .version_state = DESTROYED, .want = SFS_ENOENT },
	{ "read: no such version", SFS_ACT_VALUE_READ, .no_version = 1,
	  .want = SFS_ENOENT },
	{ "read: key deactivated", SFS_ACT_VALUE_READ, .key_type = 1,
	  .key_state = DEACT, .want = SFS_ENOKEY },
	{ "read: key gone", SFS_ACT_VALUE_READ, .no_key = 1,
	  .want = SFS_ENOKEY },
	{ "read order: secret before version", SFS_ACT_VALUE_READ,
	  .sec_status = DEACT, .no_version = 1, .want = SFS_EKEYREVOKED },
	{ "read order: version before key", SFS_ACT_VALUE_READ,
	  .version_state = DEACT, .key_state = DEACT,
	  .want = SFS_EKEYREVOKED },

	/* --- default version ------------------------------------------ */
	{ "set default: active", SFS_ACT_VERSION_SET_DEFAULT,
	  .want = SFS_OK },
	{ "set default: deactivated", SFS_ACT_VERSION_SET_DEFAULT,
	  .version_state = DEACT, .want = SFS_EINVAL },
	{ "set default: destroyed", SFS_ACT_VERSION_SET_DEFAULT,
	  .version_state = DESTROYED, .want = SFS_ENOENT },
	{ "set default: no such version", SFS_ACT_VERSION_SET_DEFAULT,
	  .no_version = 1, .want = SFS_ENOENT },

	/* --- version states ------------------------------------------- */
	{ "version activate: deactivated", SFS_ACT_VERSION_ACTIVATE,
	  .version_state = DEACT, .want = SFS_OK },
	{ "version activate: destroyed", SFS_ACT_VERSION_ACTIVATE,
	  .version_state = DESTROYED, .want = SFS_ENOENT },
	{ "version activate: missing", SFS_ACT_VERSION_ACTIVATE,
	  .no_version = 1, .want = SFS_ENOENT },
	{ "version deactivate: always", SFS_ACT_VERSION_DEACTIVATE,
	  .sec_status = DEACT, .key_state = DEACT, .want = SFS_OK },
	{ "version deactivate: destroyed", SFS_ACT_VERSION_DEACTIVATE,
	  .version_state = DESTROYED, .want = SFS_ENOENT },
	{ "version deactivate: missing", SFS_ACT_VERSION_DEACTIVATE,
	  .no_version = 1, .want = SFS_ENOENT },
	{ "version destroy: active in an active secret",
	  SFS_ACT_VERSION_DESTROY, .want = SFS_EBUSY },
	{ "version destroy: deactivated in an active secret",
	  SFS_ACT_VERSION_DESTROY, .version_state = DEACT, .want = SFS_OK },
	{ "version destroy: active in a deactivated secret",
	  SFS_ACT_VERSION_DESTROY, .sec_status = DEACT, .want = SFS_OK },
	{ "version destroy: deactivated, key gone", SFS_ACT_VERSION_DESTROY,
	  .sec_status = DEACT, .version_state = DEACT, .no_key = 1,
	  .want = SFS_OK },
	{ "version destroy: already destroyed is a no-op",
	  SFS_ACT_VERSION_DESTROY, .version_state = DESTROYED,
	  .want = SFS_OK },
	{ "version destroy: missing", SFS_ACT_VERSION_DESTROY,
	  .no_version = 1, .want = SFS_ENOENT },

	/* --- secret status, key, delete ------------------------------- */
	{ "activate: one active version", SFS_ACT_SECRET_ACTIVATE,
	  .sec_status = DEACT, .active_versions = 1, .want = SFS_OK },
	{ "activate: no active version", SFS_ACT_SECRET_ACTIVATE,
	  .sec_status = DEACT, .active_versions = 0, .live_versions = 2,
	  .want = SFS_EINVAL },
	{ "deactivate: always", SFS_ACT_SECRET_DEACTIVATE,
	  .sec_status = DEACT, .no_key = 1, .want = SFS_OK },
	{ "change key: active", SFS_ACT_SECRET_CHANGE_KEY, .key_type = 1,
	  .want = SFS_OK },
	{ "change key: deactivated", SFS_ACT_SECRET_CHANGE_KEY,
	  .key_type = 1, .key_state = DEACT, .want = SFS_ENOKEY },
	{ "change key: gone", SFS_ACT_SECRET_CHANGE_KEY, .no_key = 1,
	  .want = SFS_ENOKEY },
	{ "delete: deactivated, all destroyed", SFS_ACT_SECRET_DELETE,
	  .sec_status = DEACT, .live_versions = 0, .want = SFS_OK },
	{ "delete: active", SFS_ACT_SECRET_DELETE, .live_versions = 0,
	  .want = SFS_EBUSY },
	{ "delete: versions left", SFS_ACT_SECRET_DELETE,
	  .sec_status = DEACT, .live_versions = 1, .want = SFS_ENOTEMPTY },
	{ "delete order: active before versions", SFS_ACT_SECRET_DELETE,
	  .live_versions = 2, .want = SFS_EBUSY },

	/* --- KMS keys ------------------------------------------------- */
	{ "key deactivate: user key", SFS_ACT_KEY_DEACTIVATE, .key_type = 1,
	  .key_in_use = 1, .want = SFS_OK },
	{ "key deactivate: service key", SFS_ACT_KEY_DEACTIVATE,
	  .want = SFS_EPERM },
	{ "key activate: always", SFS_ACT_KEY_ACTIVATE, .key_type = 1,
	  .key_state = DEACT, .want = SFS_OK },
	{ "key delete: user key unused", SFS_ACT_KEY_DELETE, .key_type = 1,
	  .key_state = DEACT, .want = SFS_OK },
	{ "key delete: user key in use", SFS_ACT_KEY_DELETE, .key_type = 1,
	  .key_in_use = 1, .want = SFS_EBUSY },
	{ "key delete: service key", SFS_ACT_KEY_DELETE, .want = SFS_EPERM },
	{ "key delete order: service before in use", SFS_ACT_KEY_DELETE,
	  .key_in_use = 1, .want = SFS_EPERM },
};

#define NROWS ((int)(sizeof(rows) / sizeof(rows[0])))

static void caller_for(enum who w, unsigned roles, struct sfs_caller *c)
{
	memset(c, 0, sizeof(*c));
	c->roles = roles;
	c->via_fs = w != ADMIN;
	switch (w) {
	case ADMIN:
		c->admin = 1;
		c->uid = c->gid = 5555;
		break;
	case ROOT:
		break;
	case OWNER_U:
		c->uid = OWNER;
		c->gid = GROUP;
		break;
	case GROUP_U:
		c->uid = 2000;
		c->gid = GROUP;
		break;
	case SUPP_U:
		c->uid = c->gid = 2001;
		c->groups[0] = 2001;
		c->groups[1] = GROUP;
		c->ngroups = 2;
		break;
	case OTHER_U:
		c->uid = c->gid = 3000;
		c->groups[0] = 3001;
		c->groups[1] = 3002;
		c->ngroups = 2;
		break;
	case LISTED_U:
		c->uid = c->gid = 4000;
		break;
	case LISTED_G:
		c->uid = c->gid = 4001;
		c->groups[0] = 4100;
		c->ngroups = 1;
		break;
	case LISTED_PG:
		c->uid = 4002;
		c->gid = 4100;
		break;
	}
}

static void state_for(const struct row *r, struct sfs_secret_rec *s,
		      struct sfs_policy_state *st)
{
	memset(s, 0, sizeof(*s));
	strcpy(s->id, "0b7e4a52-4c1d-4f3e-9a51-8d2c51f0a001");
	strcpy(s->name, "db-password");
	s->status = r->sec_status;
	s->access_control = r->acl;
	sfs_principal_rec_set(s, r->allowed ? r->allowed : "");
	s->owner = OWNER;
	s->group = GROUP;
	s->mode = r->mode;
	s->latest_version = r->latest;
	s->default_version = r->latest;

	memset(st, 0, sizeof(*st));
	st->readonly = r->ro;
	st->secret = r->act == SFS_ACT_SECRET_CREATE ||
			     r->act >= SFS_ACT_KEY_CREATE
		     ? NULL
		     : s;
	st->active_versions = r->active_versions;
	st->live_versions = r->live_versions;
	st->version_exists = !r->no_version;
	st->version_state = r->no_version ? 0 : r->version_state;
	st->key_exists = !r->no_key;
	st->key_type = r->key_type;
	st->key_state = r->key_state;
	st->key_in_use = r->key_in_use;
	st->from_user_key = r->from_user_key;
	st->value_len = r->value_len;
	st->expect = r->expect;
}

START_TEST(test_rules)
{
	const struct row *r = &rows[_i];
	struct sfs_secret_rec s;
	struct sfs_policy_state st;
	struct sfs_caller c;
	int got;

	caller_for(r->who, r->roles, &c);
	c.view.set = r->view_set;
	c.view.uid = r->view_uid;
	c.view.gid = r->view_gid;
	c.view.mode = r->view_mode;
	state_for(r, &s, &st);
	got = sfs_policy_check(r->act, &c, &st);
	ck_assert_msg(got == r->want, "row %d \"%s\": got %s, want %s", _i,
		      r->name, sfs_err_name(got), sfs_err_name(r->want));
}
END_TEST

/* --- reasons ------------------------------------------------------------ */

/* A refusal and the words sfs_policy_why() gives for it. */
struct why_row {
	struct row r;
	const char *want;
};

static const struct why_row why_rows[] = {
	{ { "delete active", SFS_ACT_SECRET_DELETE, .want = SFS_EBUSY },
	  "the secret is active: deactivate it first" },
	{ { "delete, 1 left", SFS_ACT_SECRET_DELETE, .sec_status = DEACT,
	    .live_versions = 1, .want = SFS_ENOTEMPTY },
	  "1 version is not destroyed" },
	{ { "delete, 3 left", SFS_ACT_SECRET_DELETE, .sec_status = DEACT,
	    .live_versions = 3, .want = SFS_ENOTEMPTY },
	  "3 versions are not destroyed" },
	{ { "expect", SFS_ACT_VERSION_ADD, .latest = 4, .value_len = 1,
	    .expect = 7, .want = SFS_EEXIST },
	  "version 5 is next, not 7" },
	{ { "add, empty", SFS_ACT_VERSION_ADD, .want = SFS_EINVAL },
	  "the value is empty (values are 1-65536 bytes)" },
	{ { "add, too big", SFS_ACT_VERSION_ADD, .value_len = 65537,
	    .want = SFS_EFBIG },
	  "the value is over 65536 bytes" },
	{ { "add, secret off", SFS_ACT_VERSION_ADD, .sec_status = DEACT,
	    .value_len = 1, .want = SFS_EKEYREVOKED },
	  "the secret is deactivated" },
	{ { "add, key off", SFS_ACT_VERSION_ADD, .key_type = 1,
	    .key_state = DEACT, .value_len = 1, .want = SFS_ENOKEY },
	  "the kms key is deactivated" },
	{ { "create, no key", SFS_ACT_SECRET_CREATE, .no_key = 1,
	    .want = SFS_ENOKEY },
	  "no such kms key" },
	{ { "read, secret off", SFS_ACT_VALUE_READ, .sec_status = DEACT,
	    .mode = 0440, .want = SFS_EKEYREVOKED },
	  "the secret is deactivated" },
	{ { "read, version off", SFS_ACT_VALUE_READ, .version_state = DEACT,
	    .mode = 0440, .want = SFS_EKEYREVOKED },
	  "the version is deactivated" },
	{ { "read, destroyed", SFS_ACT_VALUE_READ,
	    .version_state = DESTROYED, .mode = 0440, .want = SFS_ENOENT },
	  "the version is destroyed" },
	{ { "default, deactivated", SFS_ACT_VERSION_SET_DEFAULT,
	    .version_state = DEACT, .want = SFS_EINVAL },
	  "the version is deactivated" },
	{ { "default, none", SFS_ACT_VERSION_SET_DEFAULT, .no_version = 1,
	    .want = SFS_ENOENT },
	  "no such version" },
	{ { "destroy, in use", SFS_ACT_VERSION_DESTROY, .want = SFS_EBUSY },
	  "the version and its secret are active: deactivate it first" },
	{ { "activate, none active", SFS_ACT_SECRET_ACTIVATE,
	    .sec_status = DEACT, .want = SFS_EINVAL },
	  "the secret has no active version" },
	{ { "key in use", SFS_ACT_KEY_DELETE, .key_type = 1,
	    .key_in_use = 1, .want = SFS_EBUSY },
	  "the key is in use by a secret or a version not destroyed" },
	{ { "service key delete", SFS_ACT_KEY_DELETE, .want = SFS_EPERM },
	  "the service key cannot be deleted" },
	{ { "read-only", SFS_ACT_SECRET_UPDATE, .ro = 1, .want = SFS_EROFS },
	  "the store is read-only" },
	{ { "no role", SFS_ACT_SECRET_UPDATE, .who = OTHER_U,
	    .want = SFS_EACCES },
	  "permission denied: needs the manager role" },
};

/* The refusal is the one described, and the words are the row's. */
START_TEST(test_why)
{
	const struct why_row *w = &why_rows[_i];
	struct sfs_secret_rec s;
	struct sfs_policy_state st;
	struct sfs_caller c;
	char buf[128];
	int got;

	caller_for(w->r.who, w->r.roles, &c);
	state_for(&w->r, &s, &st);
	got = sfs_policy_check(w->r.act, &c, &st);
	ck_assert_msg(got == w->r.want, "row %d \"%s\": got %s", _i,
		      w->r.name, sfs_err_name(got));
	ck_assert_str_eq(sfs_policy_why(w->r.act, got, &st, buf, sizeof(buf)),
			 w->want);
}
END_TEST

/* --- next default ------------------------------------------------------ */

struct nd_row {
	const char *name;
	uint32_t n;
	int states[6]; /* [0] unused */
	uint32_t want;
};

static const struct nd_row nd_rows[] = {
	{ "no versions", 0, { 0 }, 0 },
	{ "newest active", 3, { 0, ACTIVE, ACTIVE, ACTIVE }, 3 },
	{ "newest deactivated", 3, { 0, ACTIVE, ACTIVE, DEACT }, 2 },
	{ "skips destroyed", 4, { 0, ACTIVE, DESTROYED, DEACT, DESTROYED },
	  1 },
	{ "none active", 3, { 0, DEACT, DESTROYED, DEACT }, 0 },
	{ "only the first", 5, { 0, ACTIVE, DEACT, DEACT, DEACT, DEACT }, 1 },
};

START_TEST(test_next_default)
{
	const struct nd_row *r = &nd_rows[_i];

	ck_assert_msg(sfs_policy_next_default(r->states, r->n) == r->want,
		      "%s", r->name);
}
END_TEST

/* --- automatic effects of a version state change (SPEC §2) ------------- */

struct fx_row {
	const char *name;
	int to;		     /* the state version n moved to */
	uint32_t n, nv;	     /* the version; the latest */
	int states[5];	     /* after the change; [0] unused */
	uint32_t def;	     /* default before */
	int status;	     /* secret status before */
	uint32_t want_def;   /* default after */
	int want_status;     /* status after */
};

static const struct fx_row fx_rows[] = {
	{ "deactivate the default: newest active is default", DEACT, 3, 3,
	  { 0, ACTIVE, ACTIVE, DEACT }, 3, ACTIVE, 2, ACTIVE },
	{ "destroy the default: newest active is default", DESTROYED, 2, 3,
	  { 0, ACTIVE, DESTROYED, DEACT }, 2, ACTIVE, 1, ACTIVE },
	{ "deactivate another version: default kept", DEACT, 1, 3,
	  { 0, DEACT, ACTIVE, ACTIVE }, 3, ACTIVE, 3, ACTIVE },
	{ "deactivate the last active: no default, secret deactivated",
	  DEACT, 2, 2, { 0, DEACT, DEACT }, 2, ACTIVE, 0, DEACT },
	{ "destroy the last active: no default, secret deactivated",
	  DESTROYED, 1, 1, { 0, DESTROYED }, 1, ACTIVE, 0, DEACT },
	{ "destroy a deactivated version, none active: deactivated",
	  DESTROYED, 1, 2, { 0, DESTROYED, DEACT }, 0, DEACT, 0, DEACT },
	{ "activate with no default: it becomes the default", ACTIVE, 2, 3,
	  { 0, DEACT, ACTIVE, DEACT }, 0, DEACT, 2, DEACT },
	{ "activate with a default: default kept", ACTIVE, 1, 3,
	  { 0, ACTIVE, DEACT, ACTIVE }, 3, ACTIVE, 3, ACTIVE },
};

START_TEST(test_effects)
{
	const struct fx_row *r = &fx_rows[_i];
	uint32_t def = r->def;
	int status = r->status;

	sfs_policy_effects(r->to, r->n, r->states, r->nv, &def, &status);
	ck_assert_msg(def == r->want_def, "%s: default %u, want %u", r->name,
		      (unsigned)def, (unsigned)r->want_def);
	ck_assert_msg(status == r->want_status, "%s: status %d, want %d",
		      r->name, status, r->want_status);
}
END_TEST

/* --- names and descriptions -------------------------------------------- */

struct str_row {
	const char *name;
	const char *s; /* NULL: built by the test (long strings) */
	size_t len;    /* 0: strlen(s) */
	int want;
};

static const struct str_row name_rows[] = {
	{ "letters", "db-password", 0, SFS_OK },
	{ "all classes", "A.b_c-9", 0, SFS_OK },
	{ "digit first", "9lives", 0, SFS_OK },
	{ "one char", "x", 0, SFS_OK },
	{ "128 bytes", NULL, 128, SFS_OK },
	{ "129 bytes", NULL, 129, SFS_ENAMETOOLONG },
	{ "empty", "", 0, SFS_EINVAL },
	{ "dot", ".", 0, SFS_EINVAL },
	{ "dotdot", "..", 0, SFS_EINVAL },
	{ "hidden", ".env", 0, SFS_EINVAL },
	{ "dash first", "-a", 0, SFS_EINVAL },
	{ "underscore first", "_a", 0, SFS_EINVAL },
	{ "space", "a b", 0, SFS_EINVAL },
	{ "slash", "a/b", 0, SFS_EINVAL },
	{ "colon", "a:b", 0, SFS_EINVAL },
	{ "utf-8", "caf\xc3\xa9", 0, SFS_EINVAL },
	{ "tab", "a\tb", 0, SFS_EINVAL },
	{ "newline at end", "ab\n", 0, SFS_EINVAL },
	{ "embedded nul", "ab\0cd", 5, SFS_EINVAL },
};

static char *long_name(size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, 'a', n);
	s[n] = '\0';
	return s;
}

START_TEST(test_name)
{
	const struct str_row *r = &name_rows[_i];
	char *buf = r->s ? NULL : long_name(r->len);
	const char *s = r->s ? r->s : buf;
	size_t len = r->len ? r->len : strlen(s);
	int got = sfs_policy_name_check(s, len);

	ck_assert_msg(got == r->want, "%s: got %s", r->name,
		      sfs_err_name(got));
	free(buf);
}
END_TEST

START_TEST(test_name_length_before_chars)
{
	char *s = long_name(200);

	s[0] = '.';
	s[5] = '/';
	ck_assert_int_eq(sfs_policy_name_check(s, 200), SFS_ENAMETOOLONG);
	free(s);
}
END_TEST

static const struct str_row desc_rows[] = {
	{ "empty", "", 0, SFS_OK },
	{ "ascii", "Primary database password (prod)", 0, SFS_OK },
	{ "utf-8 2,3,4 bytes", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91", 0,
	  SFS_OK },
	{ "U+00A0 after C1", "a\xc2\xa0z", 0, SFS_OK },
	{ "U+10FFFF", "\xf4\x8f\xbf\xbf", 0, SFS_OK },
	{ "1024 bytes", NULL, 1024, SFS_OK },
	{ "1025 bytes", NULL, 1025, SFS_EINVAL },
	{ "newline", "line\nline", 0, SFS_EINVAL },
	{ "tab", "a\tb", 0, SFS_EINVAL },
	{ "escape", "\x1b[31mred", 0, SFS_EINVAL },
	{ "DEL", "a\x7f", 0, SFS_EINVAL },
	{ "C1 U+0085", "a\xc2\x85", 0, SFS_EINVAL },
	{ "C1 U+009F", "\xc2\x9f", 0, SFS_EINVAL },
	{ "embedded nul", "ab\0cd", 5, SFS_EINVAL },
	{ "lone continuation", "a\x80", 0, SFS_EINVAL },
	{ "truncated 3-byte", "\xe2\x82", 0, SFS_EINVAL },
	{ "overlong '/'", "\xc0\xaf", 0, SFS_EINVAL },
	{ "overlong 3-byte", "\xe0\x80\xaf", 0, SFS_EINVAL },
	{ "overlong 4-byte", "\xf0\x80\x80\xaf", 0, SFS_EINVAL },
	{ "surrogate U+D800", "\xed\xa0\x80", 0, SFS_EINVAL },
	{ "surrogate U+DFFF", "\xed\xbf\xbf", 0, SFS_EINVAL },
	{ "over U+10FFFF", "\xf4\x90\x80\x80", 0, SFS_EINVAL },
	{ "byte F5", "\xf5\x80\x80\x80", 0, SFS_EINVAL },
	{ "byte FF", "\xff", 0, SFS_EINVAL },
};

START_TEST(test_desc)
{
	const struct str_row *r = &desc_rows[_i];
	char *buf = r->s ? NULL : long_name(r->len);
	const char *s = r->s ? r->s : buf;
	size_t len = r->len ? r->len : strlen(s);
	int got = sfs_policy_desc_check(s, len);

	ck_assert_msg(got == r->want, "%s: got %s", r->name,
		      sfs_err_name(got));
	free(buf);
}
END_TEST

START_TEST(test_desc_multibyte_at_limit)
{
	/* 341 euro signs (3 bytes each) + 1 byte = 1024 bytes: fits; one
	 * more byte does not, whatever the character count. */
	char s[1026];
	int i;

	for (i = 0; i < 341; i++)
		memcpy(s + 3 * i, "\xe2\x82\xac", 3);
	s[1023] = 'x';
	s[1024] = 'y';
	ck_assert_int_eq(sfs_policy_desc_check(s, 1024), SFS_OK);
	ck_assert_int_eq(sfs_policy_desc_check(s, 1025), SFS_EINVAL);
	/* a sequence cut by the length is invalid */
	ck_assert_int_eq(sfs_policy_desc_check(s, 1022), SFS_EINVAL);
}
END_TEST

START_TEST(test_may_manage)
{
	struct sfs_caller c;

	memset(&c, 0, sizeof(c));
	c.uid = 1000;
	c.via_fs = 1;
	c.roles = SFS_ROLE_KMS_USER | SFS_ROLE_KMS_VIEWER;
	ck_assert_int_eq(sfs_policy_may_manage(&c), 0);
	c.roles = SFS_ROLE_MANAGER;
	ck_assert_int_eq(sfs_policy_may_manage(&c), 1);
	c.roles = 0;
	c.admin = 1;
	ck_assert_int_eq(sfs_policy_may_manage(&c), 1);
}
END_TEST

/* The readers list says what sfs_policy_may_read says for an
 * access-controlled secret: owner first, then the allow list in order;
 * cap respected. */
START_TEST(test_readers)
{
	struct sfs_secret_rec s;
	struct sfs_reader r[4];
	struct sfs_caller c;
	size_t n, i;

	memset(&s, 0, sizeof(s));
	s.access_control = 1;
	s.owner = 1000;
	s.group = 50;
	sfs_principal_rec_set(&s, "uid:2000,gid:777,uid:4294967294");
	n = sfs_policy_readers(&s, r, 4);
	ck_assert_uint_eq(n, 4);
	ck_assert(!r[0].group && r[0].id == 1000);
	ck_assert(!r[1].group && r[1].id == 2000);
	ck_assert(r[2].group && r[2].id == 777);
	ck_assert(!r[3].group && r[3].id == 4294967294u);
	ck_assert_uint_eq(sfs_policy_readers(&s, r, 2), 2);
	memset(&c, 0, sizeof(c));
	c.via_fs = 1;
	for (i = 0; i < n; i++) { /* each one named may read */
		c.uid = r[i].group ? 3000 : r[i].id;
		c.gid = r[i].group ? r[i].id : 3000;
		ck_assert_int_eq(sfs_policy_may_read(&c, &s), 1);
	}
	c.uid = 3000; /* and nobody else: not the group owner either */
	c.gid = 50;
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 0);
	sfs_principal_rec_set(&s, "");
	ck_assert_uint_eq(sfs_policy_readers(&s, r, 4), 1);
}
END_TEST

/* The readers list and the matching share one parser and one range: an
 * entry no caller can match (uid 4294967295, "no id") is no reader
 * either. */
START_TEST(test_readers_one_range)
{
	static struct sfs_secret_rec s;
	struct sfs_reader r[4];
	struct sfs_caller c;

	s.access_control = 1;
	s.owner = 1000;
	sfs_principal_rec_set(&s, "uid:4294967295,gid:7");
	ck_assert_uint_eq(sfs_policy_readers(&s, r, 4), 2);
	ck_assert(!r[0].group && r[0].id == 1000);
	ck_assert(r[1].group && r[1].id == 7);
	memset(&c, 0, sizeof(c));
	c.via_fs = 1;
	c.uid = 4294967295u;
	c.gid = 3000;
	ck_assert_int_eq(sfs_policy_may_read(&c, &s), 0);
}
END_TEST

/* What value files show through a view: the view's fields where set,
 * the secret's elsewhere; an access-controlled secret keeps its own. */
START_TEST(test_view_attrs)
{
	struct sfs_secret_rec s;
	struct sfs_view_id v = {SFS_VIEW_UID | SFS_VIEW_MODE, 1000, 7, 0400};
	uint32_t owner, group, mode;

	memset(&s, 0, sizeof(s));
	s.owner = 0;
	s.group = 50;
	s.mode = 0440;
	sfs_policy_view_attrs(&v, &s, &owner, &group, &mode);
	ck_assert_uint_eq(owner, 1000);
	ck_assert_uint_eq(group, 50);
	ck_assert_uint_eq(mode, 0400);
	s.access_control = 1;
	sfs_policy_view_attrs(&v, &s, &owner, &group, &mode);
	ck_assert_uint_eq(owner, 0);
	ck_assert_uint_eq(group, 50);
	ck_assert_uint_eq(mode, 0440);
}
END_TEST

/* sfs_policy_utf8_next, the one decoder the audit lines and the CLI use
 * too: one row per kind of sequence. */
static const struct {
	const char *s;
	size_t len, n;
	uint32_t cp;
} u8_rows[] = {
    {"A", 1, 1, 0x41},
    {"\xc3\xa9", 2, 2, 0xe9},
    {"\xe2\x80\xa8", 3, 3, 0x2028},
    {"\xf0\x9f\x98\x80", 4, 4, 0x1f600},
    {"\xc0\x80", 2, 0, 0},	     /* overlong NUL */
    {"\xed\xa0\x80", 3, 0, 0},    /* surrogate U+D800 */
    {"\xf4\x90\x80\x80", 4, 0, 0}, /* over U+10FFFF */
    {"\xe2\x80\xa8", 2, 0, 0},    /* cut short by len */
    {"\x80", 1, 0, 0},	     /* a lone continuation byte */
};

START_TEST(test_utf8_next)
{
	uint32_t cp = 0;
	size_t n = sfs_policy_utf8_next(u8_rows[_i].s, u8_rows[_i].len, &cp);

	ck_assert_uint_eq(n, u8_rows[_i].n);
	if (n)
		ck_assert_uint_eq(cp, u8_rows[_i].cp);
}
END_TEST

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc;

	tc = tcase_create("rules");
	tcase_add_loop_test(tc, test_rules, 0, NROWS);
	suite_add_tcase(s, tc);

	tc = tcase_create("why");
	tcase_add_loop_test(tc, test_why, 0, (int)(sizeof(why_rows) /
						   sizeof(why_rows[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("may_manage");
	tcase_add_test(tc, test_may_manage);
	tcase_add_test(tc, test_readers);
	tcase_add_test(tc, test_readers_one_range);
	tcase_add_test(tc, test_view_attrs);
	suite_add_tcase(s, tc);

	tc = tcase_create("next_default");
	tcase_add_loop_test(tc, test_next_default, 0, NELEM(nd_rows));
	tcase_add_loop_test(tc, test_effects, 0, NELEM(fx_rows));
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_loop_test(tc, test_name, 0, NELEM(name_rows));
	tcase_add_test(tc, test_name_length_before_chars);
	suite_add_tcase(s, tc);

	tc = tcase_create("descriptions");
	tcase_add_loop_test(tc, test_desc, 0, NELEM(desc_rows));
	tcase_add_test(tc, test_desc_multibyte_at_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_loop_test(tc, test_utf8_next, 0, NELEM(u8_rows));
	suite_add_tcase(s, tc);
	return s;
}

const struct harness harness = {.suite = policy_suite};
