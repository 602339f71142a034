/*
 * `secretfs key ...`: KMS keys. Each command is one call to keys.h; the
 * core decides what is allowed (the service key cannot be deactivated or
 * deleted, a key in use cannot be deleted) and this file reports it.
 */
#include <string.h>

#include "cli.h"
#include "secretfs/audit.h"
#include "secretfs/keys.h"
#include "secretfs/value.h"

static int key_create(const struct cli_cmd *cmd, const struct cli_global *g,
		      int argc, char **argv)
{
	const char *desc = NULL, *name;
	const struct cli_opt opts[] = {
	    {.name = "description", .arg = &desc},
	    {.name = NULL},
	};
	struct cli_session s;
	struct sfs_key_rec rec;
	int rc =
	    cli_open_go(cli_parse(cmd, argc, argv, opts, NULL, 1, 1), g, &s);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	rc = sfs_key_create(s.ctx, &s.caller, name, desc, &rec, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_key(name),
				      "cannot create key '%s'", name);
	else if (g->json)
		rc = cli_json_print(fs_render_key_json(&rec));
	else
		printf("created key '%s'\n", rec.name);
	cli_session_close(&s);
	return rc;
}

static int key_list(const struct cli_cmd *cmd, const struct cli_global *g,
		    int argc, char **argv)
{
	static const char *const hdr[] = { "NAME", "TYPE", "STATE", "VERSION",
					   "ID" };
	struct cli_session s;
	struct cli_keys keys;
	struct cli_table t;
	struct sfs_json *arr;
	char ver[16];
	size_t i;
	int rc = cli_start(cmd, g, argc, argv, 0, 0, &s);

	if (rc != CLI_GO)
		return rc;
	rc = cli_keys_load(&s, &keys);
	cli_session_close(&s);
	if (rc != EXIT_OK)
		return rc;
	if (g->json) {
		arr = sfs_json_array();
		for (i = 0; i < keys.n; i++)
			fs_render_push(&arr, fs_render_key_json(&keys.recs[i]));
		rc = cli_json_print(arr);
	} else {
		rc = cli_table_init(&t, 5, hdr);
		for (i = 0; rc == EXIT_OK && i < keys.n; i++) {
			const struct sfs_key_rec *k = &keys.recs[i];
			const char *row[5] = { k->name, sfs_key_type_name(k->type),
					       sfs_state_name(k->state), ver,
					       k->id };

			snprintf(ver, sizeof(ver), "%u", k->current_version);
			rc = cli_table_row(&t, row);
		}
		if (rc == EXIT_OK)
			cli_table_print(&t, stdout);
		cli_table_release(&t);
	}
	cli_keys_release(&keys);
	return rc;
}

static void key_print(const struct sfs_key_rec *k)
{
	char t[32];

	cli_field("id", "%s", k->id);
	cli_field("name", "%s", k->name);
	cli_field("type", "%s", sfs_key_type_name(k->type));
	cli_field("state", "%s", sfs_state_name(k->state));
	cli_field("description", "%s", k->description);
	cli_field("version", "%u", k->current_version);
	sfs_time_format(k->created_at, t);
	cli_field("created_at", "%s", t);
	cli_field("created_by", "%s", k->created_by);
}

/*
 * show, rotate, activate, deactivate, delete: one KEY, one core call
 * (the row's), "cannot <command> key 'KEY'" when it fails, else the
 * row's report.
 */
struct key_one {
	const char *name;
	int (*call)(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    const char *key, struct sfs_key_rec *out,
		    struct sfs_error *err);
	/* after the call: EXIT_OK or EXIT_FAIL (reported) */
	int (*report)(struct cli_session *s, const struct key_one *row,
		      const char *key, const struct sfs_key_rec *k);
	const char *done; /* "activated" ... */
};

static int key_activate(struct sfs_ctx *ctx, const struct sfs_caller *c,
			const char *key, struct sfs_key_rec *out,
			struct sfs_error *err)
{
	(void)out;
	return sfs_key_set_state(ctx, c, key, 1, err);
}

static int key_deactivate(struct sfs_ctx *ctx, const struct sfs_caller *c,
			  const char *key, struct sfs_key_rec *out,
			  struct sfs_error *err)
{
	(void)out;
	return sfs_key_set_state(ctx, c, key, 0, err);
}

static int key_remove(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *key, struct sfs_key_rec *out,
		      struct sfs_error *err)
{
	(void)out;
	return sfs_key_delete(ctx, c, key, err);
}

/* show and rotate: the record the call gave, as JSON or as text. */
static int key_shown(struct cli_session *s, const struct key_one *row,
		     const char *key, const struct sfs_key_rec *k)
{
	(void)key;
	if (s->g->json)
		return cli_json_print(fs_render_key_json(k));
	if (row->done)
		printf("%s key '%s' to version %u\n", row->done, k->name,
		       k->current_version);
	else
		key_print(k);
	return EXIT_OK;
}

/* After a change of state: the key's record as JSON, or the line. */
static int key_changed(struct cli_session *s, const struct key_one *row,
		       const char *key, const struct sfs_key_rec *k)
{
	struct sfs_key_rec rec;
	int rc;

	(void)k;
	if (!s->g->json) {
		printf("%s key '%s'\n", row->done, key);
		return EXIT_OK;
	}
	rc = sfs_key_get(s->ctx, &s->caller, key, &rec, &s->err);
	if (rc != SFS_OK)
		return cli_session_fail(s, rc, sfs_object_key(key),
					"cannot show key '%s'", key);
	return cli_json_print(fs_render_key_json(&rec));
}

static int key_deleted(struct cli_session *s, const struct key_one *row,
		       const char *key, const struct sfs_key_rec *k)
{
	(void)row;
	(void)k;
	return cli_print_deleted(s->g, "key", key);
}

static const struct key_one key_ones[] = {
    {"show", sfs_key_get, key_shown, NULL},
    {"rotate", sfs_key_rotate, key_shown, "rotated"},
    {"activate", key_activate, key_changed, "activated"},
    {"deactivate", key_deactivate, key_changed, "deactivated"},
    {"delete", key_remove, key_deleted, NULL},
};

static int key_one_run(const struct cli_cmd *cmd, const struct cli_global *g,
		       int argc, char **argv)
{
	const struct key_one *row = key_ones;
	struct cli_session s;
	struct sfs_key_rec rec;
	int rc = cli_start(cmd, g, argc, argv, 1, 1, &s);

	if (rc != CLI_GO)
		return rc;
	while (strcmp(row->name, cmd->name))
		row++;
	memset(&rec, 0, sizeof(rec));
	rc = row->call(s.ctx, &s.caller, argv[optind], &rec, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_key(argv[optind]),
				      "cannot %s key '%s'", cmd->name,
				      argv[optind]);
	else
		rc = row->report(&s, row, argv[optind], &rec);
	cli_session_close(&s);
	return rc;
}

static const struct cli_cmd key_cmds[] = {
    {"create",
     "Usage: secretfs key create NAME [--description TEXT]\n"
     "\n"
     "Create a user KMS key. NAME: 1-128 bytes of A-Z a-z 0-9 . _ -,\n"
     "starting with a letter or digit.\n"
     "\n"
     "  --description TEXT   what the key is for\n"
     "  -h, --help           print this help\n",
     key_create},
    {"list",
     "Usage: secretfs key list\n"
     "\n"
     "List the KMS keys: the service key and the user keys.\n",
     key_list},
    {"show",
     "Usage: secretfs key show KEY\n"
     "\n"
     "Show a KMS key's details. KEY is its name or id.\n",
     key_one_run},
    {"activate",
     "Usage: secretfs key activate KEY\n"
     "\n"
     "Activate a user key: it wraps new versions again and the versions\n"
     "it protects can be read again.\n",
     key_one_run},
    {"deactivate",
     "Usage: secretfs key deactivate KEY\n"
     "\n"
     "Deactivate a user key: it wraps nothing new, and the versions it\n"
     "protects cannot be read until it is active again.\n",
     key_one_run},
    {"rotate",
     "Usage: secretfs key rotate KEY\n"
     "\n"
     "Add a key version: new data keys are wrapped with it; versions\n"
     "wrapped before stay readable.\n",
     key_one_run},
    {"delete",
     "Usage: secretfs key delete KEY\n"
     "\n"
     "Delete a user key that no secret uses and that wraps no version\n"
     "left undestroyed.\n",
     key_one_run},
    {NULL, NULL, NULL},
};

const struct cli_group cli_key_group = { "key", "KMS keys", key_cmds };
