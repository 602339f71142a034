/*
 * `secretfs secret ...`: create, list, show, update, change-key,
 * activate, deactivate, delete. One call to secret.h each; the core
 * decides every lifecycle rule (a secret with versions left cannot be
 * deleted, ...). Deleting asks for the secret's name first: --confirm
 * NAME, or typed on a terminal, so that a script cannot delete by
 * accident; with --destroy-versions it then deactivates the secret and
 * destroys every version, one core call each, before the delete.
 */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "secretfs/audit.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

/* A uid or gid: a number (-1 when malformed), or a user or group name
 * (-2 when unknown). */
static int parse_id(const char *text, int is_group, uint32_t *out)
{
	struct passwd *pw;
	struct group *gr;
	char *end;
	unsigned long v;

	if (*text >= '0' && *text <= '9') {
		v = strtoul(text, &end, 10);
		if (*end || v > UINT32_MAX - 1)
			return -1;
		*out = (uint32_t)v;
		return 0;
	}
	pw = is_group ? NULL : getpwnam(text);
	gr = is_group ? getgrnam(text) : NULL;
	if (!pw && !gr)
		return -2;
	*out = pw ? (uint32_t)pw->pw_uid : (uint32_t)gr->gr_gid;
	return 0;
}

static int parse_mode(const char *text, uint32_t *out)
{
	unsigned v = 0;
	const char *p;

	if (!*text || strlen(text) > 4)
		return -1;
	for (p = text; *p; p++) {
		if (*p < '0' || *p > '7')
			return -1;
		v = v * 8 + (unsigned)(*p - '0');
	}
	if (v > 0777)
		return -1;
	*out = v;
	return 0;
}

/* --owner / --group of `secret create` or `secret update` (cmd->name)
 * into *out: EXIT_OK, a usage error for a malformed number, a failure
 * for an unknown name. */
static int owner_id(const struct cli_cmd *cmd, const char *name, int group,
		    const char *text, uint32_t *out)
{
	const char *kind = group ? "group" : "user";
	int rc = parse_id(text, group, out);

	if (rc == -1)
		return cli_bad_usage(cmd, "bad %s id '%s'", kind, text);
	if (rc == -2) {
		fprintf(stderr,
			"secretfs: cannot %s secret '%s': no such "
			"%s '%s'\n",
			cmd->name, name, kind, text);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* --owner, --group, --mode of `secret create` (ids[] resolved once NAME
 * is known). EXIT_OK or an exit code. */
static int create_ids(const struct cli_cmd *cmd, const char *const ids[3],
		      struct sfs_secret_new *n)
{
	int rc = EXIT_OK;

	if (ids[0] &&
	    (rc = owner_id(cmd, n->name, 0, ids[0], &n->owner)) == EXIT_OK)
		n->has_owner = 1;
	if (rc == EXIT_OK && ids[1] &&
	    (rc = owner_id(cmd, n->name, 1, ids[1], &n->group)) == EXIT_OK)
		n->has_group = 1;
	if (rc == EXIT_OK && ids[2] && parse_mode(ids[2], &n->mode))
		return cli_bad_usage(cmd, "bad mode '%s' (octal, at most 0777)",
				     ids[2]);
	n->has_mode = ids[2] != NULL;
	return rc;
}

/* Options of `secret create`. */
struct create_args {
	struct sfs_secret_new n;
	struct cli_value_src src;
	int has_value;
};

static int create_parse(const struct cli_cmd *cmd, int argc, char **argv,
			struct create_args *a)
{
	const char *ids[3] = {NULL, NULL, NULL}; /* owner, group, mode */
	const struct cli_opt opts[] = {
	    {.name = "description", .arg = &a->n.description},
	    {.name = "key", .arg = &a->n.key},
	    {.name = "access-control", .flag = &a->n.access_control},
	    {.name = "owner", .arg = &ids[0]},
	    {.name = "group", .arg = &ids[1]},
	    {.name = "mode", .arg = &ids[2]},
	    {.name = NULL},
	};
	int rc = cli_parse(cmd, argc, argv, opts, &a->src, 1, 1);

	if (rc != CLI_GO)
		return rc;
	a->n.name = argv[optind];
	rc = cli_value_src_check(cmd, &a->src, &a->has_value);
	if (rc == EXIT_OK)
		rc = create_ids(cmd, ids, &a->n);
	return rc == EXIT_OK ? CLI_GO : rc;
}

static int secret_create(const struct cli_cmd *cmd,
			 const struct cli_global *g, int argc, char **argv)
{
	struct create_args a;
	struct cli_value v = { NULL, 0, 0 };
	struct cli_session s = { 0 };
	struct sfs_secret_rec rec;
	struct cli_keys keys = { 0 };
	int rc;

	memset(&a, 0, sizeof(a));
	cli_value_src_init(&a.src);
	rc = create_parse(cmd, argc, argv, &a);
	if (rc != CLI_GO)
		goto out;
	if (a.has_value && (rc = cli_value_load(cmd, &a.src, &v)) != EXIT_OK)
		goto out;
	a.n.value = v.data;
	a.n.value_len = v.len;
	if ((rc = cli_session_open(&s, g)) != EXIT_OK)
		goto out;
	rc = sfs_secret_create(s.ctx, &s.caller, &a.n, &rec, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_secret(a.n.name),
				      "cannot create secret '%s'", a.n.name);
	else if (g->json && (rc = cli_keys_load(&s, &keys)) == EXIT_OK)
		rc = cli_json_print(fs_render_secret_json(
		    &rec, cli_keys_name(&keys, rec.kms_key_id)));
	else if (!g->json && rec.latest_version)
		printf("created secret '%s' with version %u\n", rec.name,
		       rec.latest_version);
	else if (!g->json)
		printf("created secret '%s'\n", rec.name);
out:
	cli_keys_release(&keys);
	cli_session_close(&s);
	cli_value_release(&v);
	cli_value_src_release(&a.src);
	return rc;
}

/* sfs_secret_list collects; keys are named after the listing (no core
 * call from inside a callback). */
static int secret_collect(void *arg, const struct sfs_secret_rec *r)
{
	return cli_list_push(arg, r, sizeof(*r));
}

static void version_cell(uint32_t n, char out[16])
{
	if (n)
		snprintf(out, 16, "%u", n);
	else
		snprintf(out, 16, "-");
}

static struct sfs_json *secret_json_at(const struct cli_listing *x, size_t i)
{
	const struct sfs_secret_rec *r = x->l.items;

	return fs_render_secret_json(&r[i],
				     cli_keys_name(&x->keys, r[i].kms_key_id));
}

static const char *const secret_hdr[] = {"NAME",   "STATUS", "DEFAULT",
					 "LATEST", "KEY",    "ACCESS-CONTROL"};

/* Secret i's row of `secret list`. */
static void secret_row(const struct cli_listing *x, size_t i, const char **row,
		       char (*cell)[32])
{
	const struct sfs_secret_rec *r =
	    (const struct sfs_secret_rec *)x->l.items + i;
	const char *cells[6] = {
	    r->name,
	    sfs_state_name(r->status),
	    cell[0],
	    cell[1],
	    cli_keys_name(&x->keys, r->kms_key_id),
	    r->access_control ? "enabled" : "disabled",
	};

	version_cell(r->default_version, cell[0]);
	version_cell(r->latest_version, cell[1]);
	memcpy(row, cells, sizeof(cells));
}

static int secret_list(const struct cli_cmd *cmd, const struct cli_global *g,
		       int argc, char **argv)
{
	struct cli_listing x = {.json = secret_json_at,
				.hdr = secret_hdr,
				.ncols = 6,
				.row = secret_row};
	struct cli_session s;
	int rc = cli_start(cmd, g, argc, argv, 0, 0, &s);

	if (rc != CLI_GO)
		return rc;
	rc = sfs_secret_list(s.ctx, &s.caller, secret_collect, &x.l, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_whole(SFS_OBJ_NONE),
				      "cannot list secrets");
	return cli_listing_end(&s, rc, &x);
}

static void print_owner(const char *field, uint32_t id, int is_group)
{
	struct passwd *pw = is_group ? NULL : getpwuid(id);
	struct group *gr = is_group ? getgrgid(id) : NULL;
	const char *name = pw ? pw->pw_name : gr ? gr->gr_name : NULL;

	if (name)
		cli_field(field, "%u (%s)", id, name);
	else
		cli_field(field, "%u", id);
}

/* `field: value` for each field named (render.c's text); an unset
 * version number and an empty allow list read "none". */
static void secret_fields(const struct sfs_secret_rec *r,
			  const char *const *fields)
{
	char text[SFS_ALLOWED_MAX + SFS_DESC_MAX + 1];
	int rc;

	for (; *fields; fields++) {
		rc = fs_render_secret_field(r, *fields, text, sizeof(text));
		if (rc != SFS_OK ||
		    (!text[0] && !strcmp(*fields, "allowed_principals")))
			snprintf(text, sizeof(text), "none");
		cli_field(*fields, "%s", text);
	}
}

/* `field: value` lines; the partial view shows only what SPEC §3 lets a
 * caller without access see. */
static void secret_print(const struct sfs_secret_rec *r, int full,
			 const struct cli_keys *k)
{
	static const char *const head[] = {"id", "name", "description", NULL};
	static const char *const state[] = {"status", "access_control",
					    "allowed_principals", NULL};
	static const char *const partial[] = {"access_control", NULL};
	static const char *const versions[] = {"default_version",
					       "latest_version", NULL};
	static const char *const tail[] = {"created_at", "created_by", NULL};
	char mode[8];

	secret_fields(r, head);
	if (full) {
		secret_fields(r, state);
		print_owner("owner", r->owner, 0);
		print_owner("group", r->group, 1);
		fs_render_mode(r->mode, mode);
		cli_field("mode", "%s", mode);
		secret_fields(r, versions);
		cli_field("kms_key", "%s (%s)", cli_keys_name(k, r->kms_key_id),
			  r->kms_key_id);
	} else {
		secret_fields(r, partial);
	}
	secret_fields(r, tail);
}

/* The secret's record as `secret show` prints it (JSON or lines). */
static int secret_report(struct cli_session *s, const char *name)
{
	struct sfs_secret_rec rec;
	struct cli_keys keys = { 0 };
	int full = 0;
	int rc;

	rc = sfs_secret_get(s->ctx, &s->caller, name, &rec, &full, &s->err);
	if (rc != SFS_OK)
		return cli_session_fail(s, rc, sfs_object_secret(name),
					"cannot show secret '%s'", name);
	if (full && (rc = cli_keys_load(s, &keys)) != EXIT_OK)
		return rc;
	if (s->g->json)
		rc = cli_json_print(fs_render_secret_json(
		    &rec, cli_keys_name(&keys, rec.kms_key_id)));
	else
		secret_print(&rec, full, &keys);
	cli_keys_release(&keys);
	return rc;
}

static int secret_show(const struct cli_cmd *cmd, const struct cli_global *g,
		       int argc, char **argv)
{
	struct cli_session s;
	int rc = cli_start(cmd, g, argc, argv, 1, 1, &s);

	if (rc != CLI_GO)
		return rc;
	rc = secret_report(&s, argv[optind]);
	cli_session_close(&s);
	return rc;
}

/* After a change: the secret as JSON, or the confirmation line. */
static int secret_changed(struct cli_session *s, const char *name,
			  const char *line)
{
	if (s->g->json)
		return secret_report(s, name);
	printf("%s\n", line);
	return EXIT_OK;
}

/* --access-control of `secret update`: on or off. */
static int access_take(const struct cli_cmd *cmd, const char *arg, void *to)
{
	struct sfs_secret_update *u = to;

	if (strcmp(arg, "on") && strcmp(arg, "off"))
		return cli_bad_usage(cmd,
				     "--access-control takes on "
				     "or off, not '%s'",
				     arg);
	u->fields |= SFS_SF_ACCESS_CONTROL;
	u->access_control = !strcmp(arg, "on");
	return EXIT_OK;
}

/* --mode of `secret update`: octal, at most 0777. */
static int mode_take(const struct cli_cmd *cmd, const char *arg, void *to)
{
	struct sfs_secret_update *u = to;

	if (parse_mode(arg, &u->mode))
		return cli_bad_usage(cmd,
				     "bad mode '%s' (octal, at "
				     "most 0777)",
				     arg);
	u->fields |= SFS_SF_MODE;
	return EXIT_OK;
}

static int secret_update(const struct cli_cmd *cmd,
			 const struct cli_global *g, int argc, char **argv)
{
	struct sfs_secret_update u;
	const char *ids[2] = { NULL, NULL }; /* --owner, --group */
	const struct cli_opt opts[] = {
	    {.name = "description", .arg = &u.description},
	    {.name = "access-control", .take = access_take, .to = &u},
	    {.name = "allow", .arg = &u.allowed},
	    {.name = "owner", .arg = &ids[0]},
	    {.name = "group", .arg = &ids[1]},
	    {.name = "mode", .take = mode_take, .to = &u},
	    {.name = NULL},
	};
	struct cli_session s;
	char line[256];
	int i, rc;

	memset(&u, 0, sizeof(u));
	if ((rc = cli_parse(cmd, argc, argv, opts, NULL, 1, 1)) != CLI_GO)
		return rc;
	u.fields |= (u.description ? SFS_SF_DESCRIPTION : 0) |
		    (u.allowed ? SFS_SF_ALLOWED : 0);
	if (!u.fields && !ids[0] && !ids[1])
		return cli_bad_usage(cmd, "nothing to update");
	for (i = 0; i < 2; i++)
		if (ids[i] &&
		    (rc = owner_id(cmd, argv[optind], i, ids[i],
				   i ? &u.group : &u.owner)) != EXIT_OK)
			return rc;
	u.fields |= (ids[0] ? SFS_SF_OWNER : 0) | (ids[1] ? SFS_SF_GROUP : 0);
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	rc = sfs_secret_update(s.ctx, &s.caller, argv[optind], &u, &s.err);
	snprintf(line, sizeof(line), "updated secret '%s'", argv[optind]);
	if (rc != SFS_OK)
		rc =
		    cli_session_fail(&s, rc, sfs_object_secret(argv[optind]),
				     "cannot update secret '%s'", argv[optind]);
	else
		rc = secret_changed(&s, argv[optind], line);
	cli_session_close(&s);
	return rc;
}

static int secret_change_key(const struct cli_cmd *cmd,
			     const struct cli_global *g, int argc, char **argv)
{
	struct cli_session s;
	const char *name, *key;
	char line[320];
	int rc = cli_start(cmd, g, argc, argv, 2, 2, &s);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	key = argv[optind + 1];
	rc = sfs_secret_change_key(s.ctx, &s.caller, name, key, &s.err);
	snprintf(line, sizeof(line), "secret '%s' now uses key '%s'", name,
		 key);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_secret(name),
				      "cannot change key of secret '%s'", name);
	else
		rc = secret_changed(&s, name, line);
	cli_session_close(&s);
	return rc;
}

static int secret_status(const struct cli_cmd *cmd,
			 const struct cli_global *g, int argc, char **argv)
{
	int active = !strcmp(cmd->name, "activate");
	struct cli_session s;
	char line[256];
	int rc = cli_start(cmd, g, argc, argv, 1, 1, &s);

	if (rc != CLI_GO)
		return rc;
	rc = sfs_secret_set_status(s.ctx, &s.caller, argv[optind], active,
				   &s.err);
	snprintf(line, sizeof(line), "%s secret '%s'",
		 active ? "activated" : "deactivated", argv[optind]);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_secret(argv[optind]),
				      "cannot %s secret '%s'", cmd->name,
				      argv[optind]);
	else
		rc = secret_changed(&s, argv[optind], line);
	cli_session_close(&s);
	return rc;
}

/*
 * The name the user confirmed: --confirm's, or one typed on the terminal.
 * Returns EXIT_OK when it matches name.
 */
static int delete_confirmed(const char *name, const char *confirm)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = EXIT_FAIL;

	if (!confirm && !isatty(STDIN_FILENO)) {
		fprintf(stderr, "secretfs: cannot delete secret '%s': not "
				"confirmed; pass --confirm %s\n",
			name, name);
		return EXIT_FAIL;
	}
	if (!confirm) {
		fputs("Type the secret's name to confirm deletion: ", stderr);
		fflush(stderr);
		n = getline(&line, &cap, stdin);
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		confirm = n >= 0 ? line : "";
	}
	if (!strcmp(confirm, name))
		rc = EXIT_OK;
	else
		fprintf(stderr, "secretfs: cannot delete secret '%s': "
				"confirmation '%s' does not match\n",
			name, confirm);
	free(line);
	return rc;
}

/* SFS_OK when the secret exists (details in s->err otherwise). */
static int secret_exists(struct cli_session *s, const char *name)
{
	struct sfs_secret_rec rec;
	int full;

	return sfs_secret_get(s->ctx, &s->caller, name, &rec, &full, &s->err);
}

/* Version numbers not yet destroyed, collected by sfs_version_list. */
static int live_collect(void *arg, const struct sfs_version_rec *v)
{
	return cli_list_push(arg, &v->version, sizeof(v->version));
}

/*
 * --destroy-versions: deactivate the secret (so that no version is in
 * use), then destroy every version left. SFS_OK or the first failure
 * (details in s->err; what was destroyed stays destroyed).
 */
static int destroy_all(struct cli_session *s, const char *name)
{
	struct cli_list l = {NULL, 0, 0};
	const uint32_t *n;
	struct sfs_secret_rec rec;
	size_t i;
	int full = 0;
	int rc = sfs_secret_get(s->ctx, &s->caller, name, &rec, &full, &s->err);

	if (rc == SFS_OK && rec.status == SFS_STATE_ACTIVE)
		rc =
		    sfs_secret_set_status(s->ctx, &s->caller, name, 0, &s->err);
	if (rc == SFS_OK)
		rc = sfs_version_list(s->ctx, &s->caller, name, 0, live_collect,
				      &l, &s->err);
	for (i = 0, n = l.items; rc == SFS_OK && i < l.n; i++)
		rc = sfs_version_destroy(s->ctx, &s->caller, name, n[i],
					 &s->err);
	free(l.items);
	return rc;
}

static int secret_delete(const struct cli_cmd *cmd,
			 const struct cli_global *g, int argc, char **argv)
{
	const char *confirm = NULL, *name;
	struct cli_session s;
	int rc, all = 0;
	const struct cli_opt opts[] = {
	    {.name = "confirm", .arg = &confirm},
	    {.name = "destroy-versions", .flag = &all},
	    {.name = NULL},
	};

	if ((rc = cli_parse(cmd, argc, argv, opts, NULL, 1, 1)) != CLI_GO)
		return rc;
	name = argv[optind];
	if (!confirm && !isatty(STDIN_FILENO))
		return delete_confirmed(name, NULL);
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	/* no one is asked to type the name of a secret that is not there */
	rc = confirm ? SFS_OK : secret_exists(&s, name);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_secret(name),
				      "cannot delete secret '%s'", name);
	else if (delete_confirmed(name, confirm) != EXIT_OK)
		rc = EXIT_FAIL;
	else if (all && (rc = destroy_all(&s, name)))
		rc = cli_session_fail(&s, rc, sfs_object_secret(name),
				      "cannot delete secret '%s'", name);
	else if ((rc = sfs_secret_delete(s.ctx, &s.caller, name, &s.err)))
		rc = cli_session_fail(&s, rc, sfs_object_secret(name),
				      "cannot delete secret '%s'", name);
	else
		rc = cli_print_deleted(g, "secret", name);
	cli_session_close(&s);
	return rc;
}

static const struct cli_cmd secret_cmds[] = {
    {"create",
     "Usage: secretfs secret create NAME [--description TEXT] [--key KEY] "
     "[--access-control] [--owner USER] [--group GROUP] [--mode OCTAL] "
     "[VALUE]\n"
     "\n"
     "Create a secret, with a first version when VALUE is given.\n"
     "\n"
     "  --description TEXT   what the secret is for\n"
     "  --key KEY            the KMS key new versions use (default:\n"
     "                       the service key)\n"
     "  --access-control     only the owner and the allow list may\n"
     "                       read values through the filesystem\n"
     "  --owner USER         owner of the value files (user name or\n"
     "                       number; default: you)\n"
     "  --group GROUP        group of the value files (group name or\n"
     "                       number; default: your group)\n"
     "  --mode OCTAL         mode of the value files (default 0440;\n"
     "                       ssh and libpq want 0400)\n"
     "  --value TEXT         the value: TEXT's exact bytes\n"
     "  --file FILE          the value: FILE's exact bytes ('-': stdin)\n"
     "  --kv KEY=VALUE       the value: a JSON object of strings\n"
     "                       (repeat for more keys)\n"
     "  -h, --help           print this help\n",
     secret_create},
    {"list",
     "Usage: secretfs secret list\n"
     "\n"
     "List every secret.\n",
     secret_list},
    {"show",
     "Usage: secretfs secret show NAME\n"
     "\n"
     "Show a secret's details.\n",
     secret_show},
    {"update",
     "Usage: secretfs secret update NAME [--description TEXT] "
     "[--access-control on|off] [--allow PRINCIPAL,...] [--owner UID] "
     "[--group GID] [--mode OCTAL]\n"
     "\n"
     "Change a secret's details (at least one option).\n"
     "\n"
     "  --description TEXT       what the secret is for\n"
     "  --access-control on|off  restrict reads to the owner and the\n"
     "                           allow list\n"
     "  --allow PRINCIPAL,...    the allow list: NAME or user:NAME,\n"
     "                           uid:N, group:NAME, gid:N ('' empties\n"
     "                           it)\n"
     "  --owner UID              owner of the value files (number or\n"
     "                           user name)\n"
     "  --group GID              group of the value files (number or\n"
     "                           group name)\n"
     "  --mode OCTAL             mode of the value files, e.g. 0440\n"
     "  -h, --help               print this help\n",
     secret_update},
    {"change-key",
     "Usage: secretfs secret change-key NAME KEY\n"
     "\n"
     "Use KMS key KEY for the secret's new versions; older versions\n"
     "stay under their key.\n",
     secret_change_key},
    {"activate",
     "Usage: secretfs secret activate NAME\n"
     "\n"
     "Activate a secret that has an active version.\n",
     secret_status},
    {"deactivate",
     "Usage: secretfs secret deactivate NAME\n"
     "\n"
     "Deactivate a secret: no value of it can be read.\n",
     secret_status},
    {"delete",
     "Usage: secretfs secret delete NAME [--confirm NAME] "
     "[--destroy-versions]\n"
     "\n"
     "Delete a deactivated secret whose versions are all destroyed.\n"
     "Without --confirm, asks for the name on a terminal.\n"
     "\n"
     "  --confirm NAME       the secret's name again\n"
     "  --destroy-versions   first deactivate the secret and destroy\n"
     "                       every version (after the same\n"
     "                       confirmation)\n"
     "  -h, --help           print this help\n",
     secret_delete},
    {NULL, NULL, NULL},
};

const struct cli_group cli_secret_group = { "secret", "secrets",
					    secret_cmds };
