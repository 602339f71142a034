/*
 * Principals and callers.
 *
 * A principal is written `uid:N`, `gid:N`, `user:NAME` or `group:NAME`.
 * Names are resolved once, when a principal is stored (allow lists, role
 * grants), so that every stored principal is numeric (`uid:N` / `gid:N`)
 * and matching a caller needs no name service on the hot path.
 *
 * A caller is whoever asks the core for something: the CLI's user (who
 * holds the master key and so acts as the store's administrator) or a
 * process reaching the filesystem (its uid, gid and supplementary groups).
 */
#ifndef SECRETFS_PRINCIPAL_H
#define SECRETFS_PRINCIPAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "secretfs/err.h"
#include "secretfs/records.h"

#define SFS_CALLER_GROUPS_MAX 64 /* held in the caller; more via ->more */

struct sfs_caller;

/*
 * Where a caller's supplementary groups come from when groups[] does not
 * hold them all: the filesystem reads them only when a rule asks
 * (fs/daemon/fuse_caller.c), and a process may have up to 65,536.
 */
struct sfs_caller_groups {
	/* 1: gid is one of c's supplementary groups; 0: it is not; -1:
	 * they cannot be read (the caller is refused). */
	int (*has)(struct sfs_caller_groups *g, const struct sfs_caller *c,
		   uint32_t gid);
};

enum sfs_role {
	SFS_ROLE_MANAGER = 1,
	SFS_ROLE_KMS_USER = 2,
	SFS_ROLE_KMS_VIEWER = 4,
	SFS_ROLE_ALL = 7
};

/*
 * A read-only view's identity override (mount options uid=, gid=, mode=):
 * in that view value files of secrets without access control carry this
 * owner, group and mode, and reads are checked against them
 * (sfs_policy_view_attrs). set: which fields apply (enum sfs_view_set).
 */
enum sfs_view_set { SFS_VIEW_UID = 1, SFS_VIEW_GID = 2, SFS_VIEW_MODE = 4 };
struct sfs_view_id {
	unsigned set;
	uint32_t uid, gid, mode;
};

struct sfs_caller {
	uint32_t uid, gid;
	uint32_t groups[SFS_CALLER_GROUPS_MAX];
	int ngroups;
	struct sfs_caller_groups *more; /* NULL: groups[] holds them all */
	int32_t pid;       /* 0 when not a filesystem call */
	char comm[17];     /* process name, "" when unknown */
	int admin;         /* CLI with the master key: every role, no ACL */
	int via_fs;        /* request came through the filesystem */
	unsigned roles;    /* enum sfs_role bits; see sfs_role_resolve() */
	struct sfs_view_id view; /* the view it reads through; set 0: none */
};

/* 1 when gid is the caller's gid or one of its supplementary groups, 0
 * when not, -1 when its groups cannot be read: refuse. */
int sfs_caller_in_group(const struct sfs_caller *c, uint32_t gid);

/* The CLI's caller: this process's ids, admin = 1, roles = SFS_ROLE_ALL. */
void sfs_caller_self(struct sfs_caller *c);

/*
 * Parse one principal and write its normalised form (`uid:N` or `gid:N`)
 * to out. SFS_EINVAL for bad syntax or an unknown user or group name.
 */
int sfs_principal_parse(const char *text, char *out, size_t cap,
			struct sfs_error *err);

/*
 * Normalise a comma-separated list (spaces around entries allowed, empty
 * list allowed): each entry parsed, duplicates dropped, order kept.
 * SFS_EINVAL for a bad entry or a result longer than cap - 1 bytes.
 */
int sfs_principal_list_normalize(const char *list, char *out, size_t cap,
				 struct sfs_error *err);

/* 1 when the normalised principal p names the caller (its uid, its gid or
 * one of its groups), else 0. Pure but for c->more. */
int sfs_principal_matches(const char *p, const struct sfs_caller *c);

/*
 * The one parser of a normalised list: its entries, in order, as typed
 * ids, at most cap of them. An entry that is not "uid:N" or "gid:N" with
 * N in 0..4294967294 (a store edited by hand) is skipped: it names
 * nobody. Returns the number of entries written to out.
 */
size_t sfs_principal_list_parse(const char *list, struct sfs_principal_id *out,
				size_t cap);

/* r->allow and r->nallow from r->allowed: call after loading a record. */
void sfs_principal_rec_load(struct sfs_secret_rec *r);

/* Set r's allow list to the normalised list (truncated to fit, as a copy
 * into r->allowed would be) and parse it. */
void sfs_principal_rec_set(struct sfs_secret_rec *r, const char *list);

/* 1 when an entry of the parsed list e[0..n) names the caller: uid
 * entries first, so that a caller one names needs no groups read. */
int sfs_principal_list_matches(const struct sfs_principal_id *e, size_t n,
			       const struct sfs_caller *c);

/* "uid:1000(alice)", or "uid:1000" when the uid has no passwd entry. */
void sfs_principal_describe(uint32_t uid, char *out, size_t cap);

/* Role names: "manager", "kms-user", "kms-viewer"; NULL for a value that
 * is not exactly one role. */
const char *sfs_role_name(enum sfs_role r);
/* The role for a name, or 0 when unknown. */
enum sfs_role sfs_role_parse(const char *name);

#endif
