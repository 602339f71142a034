/*
 * Role grants (SPEC §1): manager, kms-user, kms-viewer, each granted to a
 * principal stored in its numeric form (`uid:N` / `gid:N`), so matching a
 * caller needs no name service (sfs_ctx_resolve_roles). Who may grant is
 * the policy's to say (SFS_ACT_ROLE_CHANGE: the administrator only); each
 * grant, revoke or refused attempt is one audit line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "secretfs/policy.h"
#include "secretfs/role.h"

/* A grant or revoke as the runner carries it. */
struct role_change {
	const char *role;
	char principal[SFS_PRINCIPAL_MAX + 1]; /* numeric form */
	int grant;
};

static int role_apply(struct sfs_ctx *ctx, struct ctx_change *ch,
		      const struct sfs_policy_state *st, struct sfs_error *err)
{
	const struct role_change *rch = ch->arg;
	struct sfs_object o = sfs_object_role(rch->role);
	int rc;

	(void)st;
	if (rch->grant)
		rc = sfs_store_role_grant(ctx->store, rch->role, rch->principal,
					  err);
	else
		rc = sfs_store_role_revoke(ctx->store, rch->role,
					   rch->principal, err);
	if (rc == SFS_EEXIST && rch->grant) {
		sfs_error_clear(err); /* granting twice changes nothing */
		rc = SFS_OK;
	}
	if (rc == SFS_ENOENT)
		sfs_error_about(err, rc, &o, "not granted to '%s'",
				rch->principal);
	return rc;
}

static void role_line(struct sfs_ctx *ctx, struct ctx_change *ch, int rc,
		      struct ctx_audit_line *l)
{
	const struct role_change *rch = ch->arg;
	struct ctx_audit_line line = {rch->grant ? "role.grant" : "role.revoke",
				      NULL,
				      NULL,
				      NULL,
				      0,
				      rc,
				      1};

	(void)ctx;
	*l = line;
}

/* Check the names, then do the change in one transaction. */
static int role_change(struct sfs_ctx *ctx, const struct sfs_caller *c,
		       const char *role, const char *principal, int grant,
		       struct sfs_error *err)
{
	struct role_change rch = {.role = role, .grant = grant};
	static const struct ctx_change_ops ops = {
	    .apply = role_apply, .line = role_line};
	struct ctx_change ch = {
	    .act = SFS_ACT_ROLE_CHANGE, .c = c, .ops = &ops, .arg = &rch};
	struct sfs_object p;

	sfs_error_clear(err);
	ch.about = sfs_object_role(role);
	p = sfs_object_principal(principal);
	if (!sfs_role_parse(role))
		ch.pre = sfs_error_about(err, SFS_EINVAL, &ch.about,
					 "unknown role (manager, kms-user or "
					 "kms-viewer)");
	else if (sfs_principal_parse(principal, rch.principal,
				     sizeof(rch.principal), err) != SFS_OK)
		ch.pre = ctx_fail_on(err, SFS_EINVAL, &p);
	return ctx_change_run(ctx, &ch, err);
}

int sfs_role_grant(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *role, const char *principal,
		   struct sfs_error *err)
{
	return role_change(ctx, c, role, principal, 1, err);
}

int sfs_role_revoke(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    const char *role, const char *principal,
		    struct sfs_error *err)
{
	return role_change(ctx, c, role, principal, 0, err);
}

/* The callback runs after the lock is released, so it may call back
 * into the context. */
int sfs_role_list(struct sfs_ctx *ctx, const struct sfs_caller *c,
		  sfs_role_cb cb, void *arg, struct sfs_error *err)
{
	struct role_pair *v = NULL;
	struct sfs_object roles = sfs_object_whole(SFS_OBJ_ROLES);
	struct sfs_policy_state st;
	size_t i, n = 0;
	int rc;

	sfs_error_clear(err);
	rc = ctx_begin(ctx, 0, err);
	if (rc != SFS_OK)
		return rc;
	/* Listing grants is the administrator's, like changing them; a
	 * read-only context may still list them. */
	ctx_state_init(ctx, &st);
	st.readonly = 0;
	rc = sfs_policy_check(SFS_ACT_ROLE_CHANGE, c, &st);
	if (rc != SFS_OK)
		ctx_refuse_on(err, SFS_ACT_ROLE_CHANGE, rc, &st, &roles);
	else
		rc = ctx_grants_read(ctx, &v, &n, err);
	if (rc == SFS_ENOMEM)
		sfs_error_set(err, rc, "out of memory");
	rc = ctx_end(ctx, 0, rc, err);
	for (i = 0; rc == SFS_OK && i < n; i++)
		rc = cb(arg, v[i].name, v[i].principal);
	free(v);
	return rc;
}
