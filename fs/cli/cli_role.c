/*
 * `secretfs role ...`: grant, revoke and list the roles of SPEC §1
 * (manager, kms-user, kms-viewer). The core checks role names and
 * principals and stores principals in their numeric form.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "secretfs/role.h"
#include "secretfs/value.h"

static int role_print_change(const struct cli_global *g, const char *verb,
			     const char *role, const char *principal)
{
	struct sfs_json *o;

	if (!g->json) {
		printf("%s role '%s' %s '%s'\n", verb, role,
		       !strcmp(verb, "granted") ? "to" : "from", principal);
		return EXIT_OK;
	}
	o = sfs_json_object();
	return cli_json_print(cli_json_built(
	    o, o && (sfs_json_set_str(o, "role", role) ||
		     sfs_json_set_str(o, "principal", principal) ||
		     sfs_json_set_bool(o, verb, 1))));
}

static int role_change(const struct cli_cmd *cmd, const struct cli_global *g,
		       int argc, char **argv)
{
	int grant = !strcmp(cmd->name, "grant");
	const char *role, *principal;
	struct cli_session s;
	int rc = cli_parse_plain(cmd, argc, argv, 2, 2);

	if (rc != CLI_GO)
		return rc;
	role = argv[optind];
	principal = argv[optind + 1];
	if (strchr(principal, ','))
		return cli_bad_usage(cmd, "bad principal '%s'", principal);
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	if (grant)
		rc = sfs_role_grant(s.ctx, &s.caller, role, principal, &s.err);
	else
		rc = sfs_role_revoke(s.ctx, &s.caller, role, principal, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail2(&s, rc, sfs_object_role(role),
				       sfs_object_principal(principal),
				       "cannot %s role '%s' %s '%s'", cmd->name,
				       role, grant ? "to" : "from", principal);
	else
		rc = role_print_change(g, grant ? "granted" : "revoked", role,
				       principal);
	cli_session_close(&s);
	return rc;
}

struct role_out {
	int json;
	struct sfs_json *arr;
	struct cli_table t;
	int rc;
};

static int role_row(void *arg, const char *role, const char *principal)
{
	struct role_out *o = arg;
	const char *row[2] = { role, principal };
	struct sfs_json *j;

	if (!o->json) {
		o->rc = cli_table_row(&o->t, row);
		return o->rc == EXIT_OK ? 0 : SFS_ENOMEM;
	}
	j = sfs_json_object();
	fs_render_push(
	    &o->arr,
	    cli_json_built(j,
			   j && (sfs_json_set_str(j, "role", role) ||
				 sfs_json_set_str(j, "principal", principal))));
	return o->arr ? 0 : SFS_ENOMEM;
}

static int role_list(const struct cli_cmd *cmd, const struct cli_global *g,
		     int argc, char **argv)
{
	static const char *const hdr[] = { "ROLE", "PRINCIPAL" };
	struct role_out o;
	struct cli_session s;
	int rc = cli_parse_plain(cmd, argc, argv, 0, 0);

	if (rc != CLI_GO)
		return rc;
	memset(&o, 0, sizeof(o));
	o.json = g->json;
	if (o.json ? !(o.arr = sfs_json_array())
		   : cli_table_init(&o.t, 2, hdr) != EXIT_OK)
		return cli_json_print(NULL);
	if (cli_session_open(&s, g) != EXIT_OK) {
		rc = EXIT_FAIL;
		goto out;
	}
	rc = sfs_role_list(s.ctx, &s.caller, role_row, &o, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_whole(SFS_OBJ_ROLES),
				      "cannot list roles");
	else if (!o.json)
		cli_table_print(&o.t, stdout);
	else {
		rc = cli_json_print(o.arr); /* frees it */
		o.arr = NULL;
	}
	cli_session_close(&s);
out:
	sfs_json_free(o.arr);
	cli_table_release(&o.t);
	return rc;
}

static const struct cli_cmd role_cmds[] = {
    {"grant",
     "Usage: secretfs role grant ROLE PRINCIPAL\n"
     "\n"
     "Grant ROLE (manager, kms-user, kms-viewer) to PRINCIPAL (uid:N,\n"
     "gid:N, user:NAME, group:NAME) for changes through the filesystem.\n",
     role_change},
    {"revoke",
     "Usage: secretfs role revoke ROLE PRINCIPAL\n"
     "\n"
     "Revoke a role granted before.\n",
     role_change},
    {"list",
     "Usage: secretfs role list\n"
     "\n"
     "List the roles granted.\n",
     role_list},
    {NULL, NULL, NULL},
};

const struct cli_group cli_role_group = { "role", "roles", role_cmds };
