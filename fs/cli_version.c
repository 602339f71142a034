/*
 * `secretfs version ...`: add, list, get, set-default, activate,
 * deactivate, destroy, copy. `version get` is the one command that prints
 * a value: its exact bytes, nothing added; as KEY=VALUE lines with --kv;
 * or inside a JSON object with --json. Every byte of it goes through a
 * wiped cli_buf and write(2), never through stdio's buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "secretfs/audit.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

/* NAME and N (argv[optind], argv[optind + 1]) of a plain command. */
static int name_and_number(const struct cli_cmd *cmd, int argc, char **argv,
			   uint32_t *n)
{
	int rc = cli_parse_plain(cmd, argc, argv, 2, 2);

	if (rc != CLI_GO)
		return rc;
	if (cli_parse_number(argv[optind + 1], n))
		return cli_bad_usage(cmd, "bad version number '%s'",
				     argv[optind + 1]);
	return CLI_GO;
}

/* Version n of name as JSON: its record, whether it is the default, and
 * its key's name. */
static int version_json(struct cli_session *s, const char *name, uint32_t n)
{
	struct sfs_secret_rec sec;
	struct sfs_version_rec v;
	struct cli_keys keys = { 0 };
	int full = 0, rc;

	memset(&v, 0, sizeof(v));
	rc = sfs_secret_get(s->ctx, &s->caller, name, &sec, &full, &s->err);
	if (rc == SFS_OK)
		rc = sfs_version_info(s->ctx, &s->caller, name, n, &v, &s->err);
	if (rc != SFS_OK)
		return cli_session_fail(s, rc, "cannot show version %u of '%s'",
					n, name);
	rc = cli_keys_load(s, &keys);
	if (rc == EXIT_OK)
		rc = cli_json_print(
			cli_json_version(sec.name, &v, sec.default_version,
					 &keys));
	cli_keys_release(&keys);
	sfs_version_rec_release(&v);
	return rc;
}

/* Parse `version add NAME VALUE [--expect N]`: CLI_GO or an exit code. */
static int add_parse(const struct cli_cmd *cmd, int argc, char **argv,
		     struct cli_value_src *src, uint32_t *expect)
{
	static const struct option opts[] = {
		{ "expect", required_argument, NULL, 'e' },
		{ "value", required_argument, NULL, CLI_OPT_VALUE },
		{ "file", required_argument, NULL, CLI_OPT_FILE },
		{ "kv", required_argument, NULL, CLI_OPT_KV },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, given, rc;

	while ((ch = cli_getopt(argc, argv, ":h", opts)) != -1) {
		if (ch == 'e' && cli_parse_number(optarg, expect))
			return cli_bad_usage(cmd, "bad version number '%s'",
					     optarg);
		if (ch == 'e')
			continue;
		if (ch < CLI_OPT_VALUE || ch > CLI_OPT_KV)
			return cli_opt_other(cmd, ch, argv);
		if ((rc = cli_value_src_add(src, ch, optarg)) != EXIT_OK)
			return rc;
	}
	if ((rc = cli_args(cmd, argc, argv, 1, 1)) != EXIT_OK ||
	    (rc = cli_value_src_check(cmd, src, &given)) != EXIT_OK)
		return rc;
	if (!given)
		return cli_bad_usage(cmd, "missing value: --value, --file or "
					  "--kv");
	return CLI_GO;
}

static int version_add(const struct cli_cmd *cmd, const struct cli_global *g,
		       int argc, char **argv)
{
	struct cli_value_src src;
	struct cli_value v = { NULL, 0, 0 };
	struct cli_session s = { 0 };
	struct sfs_version_rec rec;
	const char *name;
	uint32_t expect = 0;
	int rc;

	cli_value_src_init(&src);
	memset(&rec, 0, sizeof(rec));
	if ((rc = add_parse(cmd, argc, argv, &src, &expect)) != CLI_GO)
		goto out;
	name = argv[optind];
	if ((rc = cli_value_load(cmd, &src, &v)) != EXIT_OK ||
	    (rc = cli_session_open(&s, g)) != EXIT_OK)
		goto out;
	rc = sfs_version_add(s.ctx, &s.caller, name, v.data, v.len, expect,
			     &rec, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, "cannot add version to '%s'", name);
	else if (g->json)
		rc = version_json(&s, name, rec.version);
	else
		printf("added version %u to '%s'\n", rec.version, name);
out:
	sfs_version_rec_release(&rec);
	cli_session_close(&s);
	cli_value_release(&v);
	cli_value_src_release(&src);
	return rc;
}

struct version_list {
	struct sfs_version_rec *recs;
	size_t n, cap;
};

static int version_collect(void *arg, const struct sfs_version_rec *v)
{
	struct version_list *l = arg;
	struct sfs_version_rec *grown;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		grown = realloc(l->recs, l->cap * sizeof(*grown));
		if (!grown)
			return SFS_ENOMEM;
		l->recs = grown;
	}
	/* listed without blobs: nothing to own */
	l->recs[l->n] = *v;
	memset(&l->recs[l->n].wrapped_dek, 0, sizeof(struct sfs_blob));
	memset(&l->recs[l->n].ciphertext, 0, sizeof(struct sfs_blob));
	l->n++;
	return 0;
}

static int version_table(const struct version_list *l, uint32_t def,
			 const struct cli_keys *k)
{
	static const char *const hdr[] = { "VERSION", "STATE", "DEFAULT",
					   "FORMAT",  "SIZE",  "KEY",
					   "CREATED" };
	struct cli_table t;
	char num[16], size[16], created[32];
	size_t i;
	int rc = cli_table_init(&t, 7, hdr);

	for (i = 0; rc == EXIT_OK && i < l->n; i++) {
		const struct sfs_version_rec *v = &l->recs[i];
		const char *row[7] = {
			num,
			cli_version_state_name(v->state),
			v->version == def ? "yes" : "no",
			sfs_value_format_name(v->format),
			size,
			cli_keys_name(k, v->kms_key_id),
			created,
		};

		snprintf(num, sizeof(num), "%u", v->version);
		snprintf(size, sizeof(size), "%u", v->size);
		sfs_time_format(v->created_at, created);
		rc = cli_table_row(&t, row);
	}
	if (rc == EXIT_OK)
		cli_table_print(&t, stdout);
	cli_table_release(&t);
	return rc;
}

static int version_list(const struct cli_cmd *cmd,
			const struct cli_global *g, int argc, char **argv)
{
	struct version_list l = { NULL, 0, 0 };
	struct cli_keys keys = { 0 };
	struct sfs_secret_rec sec;
	struct cli_session s;
	struct sfs_json *arr;
	const char *name;
	size_t i;
	int full, rc = cli_parse_plain(cmd, argc, argv, 1, 1);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	rc = sfs_secret_get(s.ctx, &s.caller, name, &sec, &full, &s.err);
	if (rc == SFS_OK)
		rc = sfs_version_list(s.ctx, &s.caller, name, 1,
				      version_collect, &l, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, "cannot list versions of '%s'",
				      name);
	else
		rc = cli_keys_load(&s, &keys);
	cli_session_close(&s);
	if (rc == EXIT_OK && g->json) {
		arr = sfs_json_array();
		for (i = 0; i < l.n; i++)
			cli_json_push(&arr,
				      cli_json_version(sec.name, &l.recs[i],
						       sec.default_version,
						       &keys));
		rc = cli_json_print(arr);
	} else if (rc == EXIT_OK) {
		rc = version_table(&l, sec.default_version, &keys);
	}
	cli_keys_release(&keys);
	free(l.recs);
	return rc;
}

/* --- version get ------------------------------------------------------- */

struct kv_out {
	struct cli_buf *b;
	int json;  /* "key":"value" members instead of KEY=VALUE lines */
	int first;
};

static int kv_line(void *arg, const char *key, const char *val, size_t len)
{
	struct kv_out *o = arg;

	if (o->json) {
		cli_buf_str(o->b, o->first ? "\"" : ",\"");
		cli_json_escape(o->b, key, strlen(key));
		cli_buf_str(o->b, "\":\"");
		cli_json_escape(o->b, val, len);
		cli_buf_str(o->b, "\"");
	} else {
		cli_buf_str(o->b, key);
		cli_buf_str(o->b, "=");
		cli_buf_add(o->b, val, len);
		cli_buf_str(o->b, "\n");
	}
	o->first = 0;
	return o->b->failed ? SFS_ENOMEM : 0;
}

/* The JSON object's head: {"secret":..,"version":..,"format":.. without
 * the closing brace, so that the value can follow without being copied
 * into the JSON builder. */
static int json_head(struct cli_buf *b, const char *secret,
		     const struct sfs_version_rec *info)
{
	struct sfs_json *o = sfs_json_object();
	char *text = NULL;

	if (o && !sfs_json_set_str(o, "secret", secret) &&
	    !sfs_json_set_int(o, "version", info->version) &&
	    !sfs_json_set_str(o, "format", sfs_value_format_name(info->format)))
		text = sfs_json_dump(o, 0);
	sfs_json_free(o);
	if (!text || !*text)
		return SFS_ENOMEM;
	cli_buf_add(b, text, strlen(text) - 1);
	free(text);
	return SFS_OK;
}

/* Format the value into b as get's options say. */
static int get_format(struct cli_session *s, const char *secret,
		      const struct sfs_value *val,
		      const struct sfs_version_rec *info, int kv,
		      struct cli_buf *b)
{
	struct kv_out o = { b, s->g->json, 1 };
	int text = cli_utf8_text(val->data, val->len);
	int rc = SFS_OK;

	if (s->g->json && json_head(b, secret, info) != SFS_OK)
		return SFS_ENOMEM;
	if (kv) {
		cli_buf_str(b, s->g->json ? ",\"value\":{" : "");
		rc = sfs_value_kv_each(val->data, val->len, 1, kv_line, &o,
				       &s->err);
		cli_buf_str(b, s->g->json ? "}}\n" : "");
	} else if (s->g->json) {
		cli_buf_str(b, text ? ",\"value\":\"" : ",\"value_base64\":\"");
		if (text)
			cli_json_escape(b, val->data, val->len);
		else
			cli_base64(b, val->data, val->len);
		cli_buf_str(b, "\"}\n");
	} else {
		cli_buf_add(b, val->data, val->len);
	}
	return rc;
}

/* Parse `version get NAME [N|default] [--kv]`. */
static int get_parse(const struct cli_cmd *cmd, int argc, char **argv,
		     uint32_t *n, int *kv)
{
	static const struct option opts[] = {
		{ "kv", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *which;
	int ch, rc;

	while ((ch = cli_getopt(argc, argv, ":h", opts)) != -1) {
		if (ch != 'k')
			return cli_opt_other(cmd, ch, argv);
		*kv = 1;
	}
	if ((rc = cli_args(cmd, argc, argv, 1, 2)) != EXIT_OK)
		return rc;
	which = optind + 1 < argc ? argv[optind + 1] : "default";
	*n = 0;
	if (strcmp(which, "default") && cli_parse_number(which, n))
		return cli_bad_usage(cmd, "bad version '%s' (a number or "
					  "'default')",
				     which);
	return CLI_GO;
}

static int version_get(const struct cli_cmd *cmd, const struct cli_global *g,
		       int argc, char **argv)
{
	struct sfs_value val = { NULL, 0 };
	struct sfs_version_rec info;
	struct cli_buf b = { NULL, 0, 0, 0 };
	struct cli_session s;
	const char *name;
	uint32_t n;
	int kv = 0, rc = get_parse(cmd, argc, argv, &n, &kv);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	memset(&info, 0, sizeof(info));
	rc = sfs_version_read(s.ctx, &s.caller, name, n, &val, &info, &s.err);
	if (rc != SFS_OK) {
		rc = n ? cli_session_fail(&s, rc, "cannot read version %u of "
						  "'%s'",
					  n, name)
		       : cli_session_fail(&s, rc, "cannot read '%s'", name);
		goto out;
	}
	rc = get_format(&s, name, &val, &info, kv, &b);
	if (rc == SFS_EINVAL && kv) {
		fprintf(stderr, "secretfs: cannot print version %u of '%s' as "
				"key/value: the value is not key/value (its "
				"format is %s)\n",
			info.version, name, sfs_value_format_name(info.format));
		rc = EXIT_FAIL;
	} else if (rc != SFS_OK) {
		rc = cli_session_fail(&s, rc, "cannot print '%s'", name);
	} else {
		rc = cli_buf_write(&b);
	}
out:
	cli_buf_release(&b);
	sfs_value_release(&val);
	sfs_version_rec_release(&info);
	cli_session_close(&s);
	return rc;
}

/* --- changes ----------------------------------------------------------- */

static int version_set_default(const struct cli_cmd *cmd,
			       const struct cli_global *g, int argc,
			       char **argv)
{
	struct cli_session s;
	uint32_t n = 0;
	int rc = name_and_number(cmd, argc, argv, &n);

	if (rc != CLI_GO)
		return rc;
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	rc = sfs_version_set_default(s.ctx, &s.caller, argv[optind], n,
				     &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, "cannot set default version of "
					      "'%s' to %u",
				      argv[optind], n);
	else if (g->json)
		rc = version_json(&s, argv[optind], n);
	else
		printf("set default version of '%s' to %u\n", argv[optind], n);
	cli_session_close(&s);
	return rc;
}

/* activate, deactivate, destroy. */
static int version_state(const struct cli_cmd *cmd,
			 const struct cli_global *g, int argc, char **argv)
{
	struct cli_session s;
	const char *name;
	uint32_t n = 0;
	int rc = name_and_number(cmd, argc, argv, &n);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	if (!strcmp(cmd->name, "destroy"))
		rc = sfs_version_destroy(s.ctx, &s.caller, name, n, &s.err);
	else
		rc = sfs_version_set_state(s.ctx, &s.caller, name, n,
					   !strcmp(cmd->name, "activate"),
					   &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, "cannot %s version %u of '%s'",
				      cmd->name, n, name);
	else if (g->json)
		rc = version_json(&s, name, n);
	else
		printf("%s version %u of '%s'\n",
		       !strcmp(cmd->name, "destroy")	 ? "destroyed"
		       : !strcmp(cmd->name, "activate") ? "activated"
							: "deactivated",
		       n, name);
	cli_session_close(&s);
	return rc;
}

static int version_copy(const struct cli_cmd *cmd,
			const struct cli_global *g, int argc, char **argv)
{
	struct sfs_version_rec rec;
	struct cli_session s;
	const char *name;
	uint32_t n = 0;
	int rc = name_and_number(cmd, argc, argv, &n);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	memset(&rec, 0, sizeof(rec));
	rc = sfs_version_copy(s.ctx, &s.caller, name, n, &rec, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, "cannot copy version %u of '%s'",
				      n, name);
	else if (g->json)
		rc = version_json(&s, name, rec.version);
	else
		printf("added version %u to '%s' (a copy of version %u)\n",
		       rec.version, name, n);
	sfs_version_rec_release(&rec);
	cli_session_close(&s);
	return rc;
}

static const struct cli_cmd version_cmds[] = {
	{ "add", "version add",
	  "Usage: secretfs version add NAME VALUE [--expect N]\n"
	  "\n"
	  "Add a version; it becomes the default.\n"
	  "\n"
	  "  --value TEXT     the value: TEXT's exact bytes\n"
	  "  --file FILE      the value: FILE's exact bytes ('-': stdin)\n"
	  "  --kv KEY=VALUE   the value: a JSON object of strings (repeat\n"
	  "                   for more keys)\n"
	  "  --expect N       add only if the new version would be number N\n"
	  "                   (compare-and-set)\n"
	  "  -h, --help       print this help\n",
	  version_add },
	{ "list", "version list",
	  "Usage: secretfs version list NAME\n"
	  "\n"
	  "List a secret's versions, destroyed ones included.\n",
	  version_list },
	{ "get", "version get",
	  "Usage: secretfs version get NAME [N|default] [--kv]\n"
	  "\n"
	  "Print a version's value (default: the default version): its\n"
	  "exact bytes, with nothing added.\n"
	  "\n"
	  "  --kv         print a key/value value as KEY=VALUE lines\n"
	  "  -h, --help   print this help\n",
	  version_get },
	{ "set-default", "version set-default",
	  "Usage: secretfs version set-default NAME N\n"
	  "\n"
	  "Make active version N the default.\n",
	  version_set_default },
	{ "activate", "version activate",
	  "Usage: secretfs version activate NAME N\n"
	  "\n"
	  "Activate version N.\n",
	  version_state },
	{ "deactivate", "version deactivate",
	  "Usage: secretfs version deactivate NAME N\n"
	  "\n"
	  "Deactivate version N; if it was the default, the newest active\n"
	  "version becomes the default.\n",
	  version_state },
	{ "destroy", "version destroy",
	  "Usage: secretfs version destroy NAME N\n"
	  "\n"
	  "Erase version N's value for good.\n",
	  version_state },
	{ "copy", "version copy",
	  "Usage: secretfs version copy NAME N\n"
	  "\n"
	  "Add a version holding version N's value (a rollback).\n",
	  version_copy },
	{ NULL, NULL, NULL, NULL },
};

const struct cli_group cli_version_group = { "version", "versions",
					     version_cmds };
