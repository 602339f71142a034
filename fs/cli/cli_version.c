/*
 * `secretfs version ...`: add (--merge: onto the default's key/value
 * object), list, get, set-default, activate, deactivate, destroy (one or
 * more), copy. `version get` is the one command that prints a value: its
 * exact bytes, nothing added; one key's with --field; as KEY=VALUE lines
 * with --kv (refused when a line would not survive in an environment
 * file); or inside a JSON object with --json. Every byte of it goes through a
 * wiped cli_buf and write(2), never through stdio's buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

/* NAME and N (argv[optind], argv[optind + 1]) of a plain command, then
 * the store: CLI_GO with s open, or the exit code to return. */
static int name_and_number(const struct cli_cmd *cmd,
			   const struct cli_global *g, int argc, char **argv,
			   uint32_t *n, struct cli_session *s)
{
	int rc = cli_parse_plain(cmd, argc, argv, 2, 2);

	if (rc == CLI_GO && cli_parse_number(argv[optind + 1], n))
		return cli_bad_usage(cmd, "bad version number '%s'",
				     argv[optind + 1]);
	return cli_open_go(rc, g, s);
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
		return cli_session_fail(s, rc, sfs_object_version(name, n),
					"cannot show version %u of '%s'", n,
					name);
	rc = cli_keys_load(s, &keys);
	if (rc == EXIT_OK)
		rc = cli_json_print(
		    fs_render_version_json(sec.name, &v, sec.default_version,
					   cli_keys_name(&keys, v.kms_key_id)));
	cli_keys_release(&keys);
	sfs_version_rec_release(&v);
	return rc;
}

/* --- version add --merge ------------------------------------------------ */

/* The pairs of the merged object, "KEY=VALUE\0" one after the other in a
 * wiped buffer. */
struct merge {
	const char **given; /* --kv pairs */
	size_t ngiven;
	unsigned char *used; /* given[i] replaced a key of the default */
	struct cli_buf pairs;
	size_t npairs;
};

/* The --kv pair for key, or -1. */
static long merge_find(const struct merge *m, const char *key)
{
	size_t i, n = strlen(key);

	for (i = 0; i < m->ngiven; i++)
		if (!strncmp(m->given[i], key, n) && m->given[i][n] == '=')
			return (long)i;
	return -1;
}

static void merge_pair(struct merge *m, const char *pair, size_t len)
{
	cli_buf_add(&m->pairs, pair, len);
	cli_buf_add(&m->pairs, "", 1);
	m->npairs++;
}

/* One entry of the default: kept, or replaced by its --kv pair in place. */
static int merge_entry(void *arg, const char *key, const char *val, size_t len)
{
	struct merge *m = arg;
	long i = merge_find(m, key);

	if (strchr(key, '='))
		return SFS_EINVAL;
	if (i >= 0) {
		m->used[i] = 1;
		merge_pair(m, m->given[i], strlen(m->given[i]));
	} else {
		cli_buf_str(&m->pairs, key);
		cli_buf_str(&m->pairs, "=");
		merge_pair(m, val, len);
	}
	return m->pairs.failed ? SFS_ENOMEM : 0;
}

/* Build the merged object from the default's value and m's pairs. */
static int merge_build(struct merge *m, const struct sfs_value *def,
		       struct cli_value *out, struct sfs_error *err)
{
	const char **ptrs = NULL;
	const char *p;
	size_t i;
	int rc = sfs_value_kv_each(def->data, def->len, 1, merge_entry, m, err);

	for (i = 0; rc == SFS_OK && i < m->ngiven; i++)
		if (!m->used[i])
			merge_pair(m, m->given[i], strlen(m->given[i]));
	if (rc == SFS_OK && !m->pairs.failed)
		ptrs = calloc(m->npairs + 1, sizeof(*ptrs));
	if (rc == SFS_OK && !ptrs)
		rc = sfs_error_set(err, SFS_ENOMEM, "out of memory");
	for (i = 0, p = m->pairs.data; ptrs && i < m->npairs; i++) {
		ptrs[i] = p;
		p += strlen(p) + 1;
	}
	if (rc == SFS_OK)
		rc = sfs_value_kv_build(ptrs, m->npairs, &out->data, &out->len,
					err);
	out->cap = out->len;
	free(ptrs);
	return rc;
}

/*
 * --merge: the default version's key/value object with the --kv pairs
 * replacing keys or added; *expect (when 0) becomes the number the new
 * version must get, so that a version added meanwhile is not overwritten.
 */
static int merge_value(struct cli_session *s, const char *name,
		       const struct cli_value_src *src, struct cli_value *out,
		       uint32_t *expect)
{
	struct sfs_value def = {NULL, 0};
	struct sfs_version_rec info;
	struct merge m = {src->kv, src->nkv, NULL, {NULL, 0, 0, 0}, 0};
	int rc;

	memset(&info, 0, sizeof(info));
	rc =
	    sfs_version_read(s->ctx, &s->caller, name, 0, &def, &info, &s->err);
	if (rc == SFS_OK && !*expect) {
		struct sfs_secret_rec sec;
		int full = 0;

		rc = sfs_secret_get(s->ctx, &s->caller, name, &sec, &full,
				    &s->err);
		if (rc == SFS_OK)
			*expect = sec.latest_version + 1;
	}
	m.used = rc == SFS_OK ? calloc(m.ngiven + 1, 1) : NULL;
	if (rc == SFS_OK && !m.used)
		rc = sfs_error_set(&s->err, SFS_ENOMEM, "out of memory");
	if (rc == SFS_OK)
		rc = merge_build(&m, &def, out, &s->err);
	if (rc == SFS_EINVAL)
		rc = sfs_error_set(&s->err, SFS_EINVAL,
				   "the default version (%u) is not key/value "
				   "(its format is %s)",
				   info.version,
				   sfs_value_format_name(info.format));
	if (rc != SFS_OK)
		rc = cli_session_fail(s, rc, sfs_object_version(name, 0),
				      "cannot merge into '%s'", name);
	free(m.used);
	cli_buf_release(&m.pairs);
	sfs_value_release(&def);
	sfs_version_rec_release(&info);
	return rc;
}

/* --expect N of `version add`. */
static int expect_take(const struct cli_cmd *cmd, const char *arg, void *to)
{
	if (cli_parse_number(arg, to))
		return cli_bad_usage(cmd, "bad version number '%s'", arg);
	return EXIT_OK;
}

/* Parse `version add NAME VALUE [--expect N] [--merge]`: CLI_GO or an
 * exit code. */
static int add_parse(const struct cli_cmd *cmd, int argc, char **argv,
		     struct cli_value_src *src, uint32_t *expect, int *merge)
{
	const struct cli_opt opts[] = {
	    {.name = "expect", .take = expect_take, .to = expect},
	    {.name = "merge", .flag = merge},
	    {.name = NULL},
	};
	int given, rc = cli_parse(cmd, argc, argv, opts, src, 1, 1);

	if (rc != CLI_GO ||
	    (rc = cli_value_src_check(cmd, src, &given)) != EXIT_OK)
		return rc;
	if (!given)
		return cli_bad_usage(cmd, "missing value: --value, --file or "
					  "--kv");
	if (*merge && !src->nkv)
		return cli_bad_usage(cmd, "--merge takes --kv pairs");
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
	int merge = 0, rc;

	cli_value_src_init(&src);
	memset(&rec, 0, sizeof(rec));
	if ((rc = add_parse(cmd, argc, argv, &src, &expect, &merge)) != CLI_GO)
		goto out;
	name = argv[optind];
	/* loaded even with --merge: a malformed pair is a usage error */
	if ((rc = cli_value_load(cmd, &src, &v)) != EXIT_OK ||
	    (rc = cli_session_open(&s, g)) != EXIT_OK)
		goto out;
	if (merge) {
		cli_value_release(&v);
		if ((rc = merge_value(&s, name, &src, &v, &expect)) != EXIT_OK)
			goto out;
	}
	rc = sfs_version_add(s.ctx, &s.caller, name, v.data, v.len, expect,
			     &rec, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_version(name, 0),
				      "cannot add version to '%s'", name);
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

static int version_collect(void *arg, const struct sfs_version_rec *v)
{
	struct cli_list *l = arg;
	struct sfs_version_rec *last;

	if (cli_list_push(l, v, sizeof(*v)) != SFS_OK)
		return SFS_ENOMEM;
	/* listed without blobs: nothing to own */
	last = (struct sfs_version_rec *)l->items + l->n - 1;
	memset(&last->wrapped_dek, 0, sizeof(struct sfs_blob));
	memset(&last->ciphertext, 0, sizeof(struct sfs_blob));
	return 0;
}

/* Version i as JSON; x->arg is its secret's record (name, default). */
static struct sfs_json *version_json_at(const struct cli_listing *x, size_t i)
{
	const struct sfs_secret_rec *sec = x->arg;
	const struct sfs_version_rec *v = x->l.items;

	return fs_render_version_json(sec->name, &v[i], sec->default_version,
				      cli_keys_name(&x->keys, v[i].kms_key_id));
}

static const char *const version_hdr[] = {
    "VERSION", "STATE", "DEFAULT", "FORMAT", "SIZE", "KEY", "CREATED"};

/* Version i's row of `version list`; x->arg is its secret's record. */
static void version_row(const struct cli_listing *x, size_t i, const char **row,
			char (*cell)[32])
{
	const struct sfs_secret_rec *sec = x->arg;
	const struct sfs_version_rec *v =
	    (const struct sfs_version_rec *)x->l.items + i;
	const char *cells[7] = {
	    cell[0],
	    sfs_state_name(v->state),
	    v->version == sec->default_version ? "yes" : "no",
	    sfs_value_format_name(v->format),
	    cell[1],
	    cli_keys_name(&x->keys, v->kms_key_id),
	    cell[2],
	};

	snprintf(cell[0], 32, "%u", v->version);
	snprintf(cell[1], 32, "%u", v->size);
	sfs_time_format(v->created_at, cell[2]);
	memcpy(row, cells, sizeof(cells));
}

static int version_list(const struct cli_cmd *cmd,
			const struct cli_global *g, int argc, char **argv)
{
	struct sfs_secret_rec sec;
	struct cli_listing x = {.json = version_json_at,
				.hdr = version_hdr,
				.ncols = 7,
				.row = version_row,
				.arg = &sec};
	struct cli_session s;
	const char *name;
	int full, rc = cli_start(cmd, g, argc, argv, 1, 1, &s);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	rc = sfs_secret_get(s.ctx, &s.caller, name, &sec, &full, &s.err);
	if (rc == SFS_OK)
		rc = sfs_version_list(s.ctx, &s.caller, name, 1,
				      version_collect, &x.l, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_version(name, 0),
				      "cannot list versions of '%s'", name);
	return cli_listing_end(&s, rc, &x);
}

/* --- version get ------------------------------------------------------- */

struct kv_out {
	struct cli_buf *b;
	int json;  /* "key":"value" members instead of KEY=VALUE lines */
	int first;
	struct sfs_error *err;
};

/* An environment variable's name: [A-Za-z_][A-Za-z0-9_]*. */
static int env_name(const char *key)
{
	const char *p = key;

	if (!*p || (*p >= '0' && *p <= '9'))
		return 0;
	for (; *p; p++)
		if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

/*
 * Would KEY=VALUE survive as one line of an environment file (systemd's
 * EnvironmentFile, a POSIX shell's `set -a; . FILE`, docker's
 * --env-file)? Not with a key that is not a variable name, nor with a
 * newline, carriage return or NUL in the value. SFS_OK or SFS_EINVAL
 * (the reason in err; the value itself is never quoted).
 */
static int kv_env_safe(const char *key, const char *val, size_t len,
		       struct sfs_error *err)
{
	size_t i;

	if (!env_name(key))
		return sfs_error_set(err, SFS_EINVAL,
				     "key '%.64s' is not an environment "
				     "variable name ([A-Za-z_][A-Za-z0-9_]*)",
				     key);
	for (i = 0; i < len; i++)
		if (val[i] == '\n' || val[i] == '\r' || val[i] == '\0')
			return sfs_error_set(err, SFS_EINVAL,
					     "the value of key '%s' holds a "
					     "%s",
					     key,
					     val[i] == '\n' ? "newline"
					     : val[i] == '\r'
						 ? "carriage return"
						 : "NUL byte");
	return SFS_OK;
}

static int kv_line(void *arg, const char *key, const char *val, size_t len)
{
	struct kv_out *o = arg;

	if (!o->json && kv_env_safe(key, val, len, o->err) != SFS_OK)
		return SFS_EPERM; /* stops the walk: nothing is printed */
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

/* --field KEY: one entry's bytes, raw (or as the JSON "value"). */
static int get_field(struct cli_session *s, const struct sfs_value *val,
		     const char *field, struct cli_buf *b)
{
	char *one = NULL;
	size_t len = 0;
	int rc = sfs_value_kv_get(val->data, val->len, field, &one, &len);

	if (rc == SFS_OK && s->g->json) {
		cli_buf_str(b, ",\"field\":\"");
		cli_json_escape(b, field, strlen(field));
		cli_buf_str(b, "\",\"value\":\"");
		cli_json_escape(b, one, len);
		cli_buf_str(b, "\"}\n");
	} else if (rc == SFS_OK) {
		cli_buf_add(b, one, len);
	}
	if (one)
		sfs_crypto_free_secret(one, len);
	return rc;
}

/* Format the value into b as get's options say. */
static int get_format(struct cli_session *s, const char *secret,
		      const struct sfs_value *val,
		      const struct sfs_version_rec *info, int kv,
		      const char *field, struct cli_buf *b)
{
	struct kv_out o = {b, s->g->json, 1, &s->err};
	int text = cli_utf8_text(val->data, val->len);
	int rc = SFS_OK;

	if (s->g->json && json_head(b, secret, info) != SFS_OK)
		return SFS_ENOMEM;
	if (field) {
		rc = get_field(s, val, field, b);
	} else if (kv) {
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

/* What `version get` prints. */
struct get_args {
	uint32_t n;	   /* 0: the default */
	int latest;	   /* the newest version */
	int kv;		   /* --kv */
	const char *field; /* --field KEY */
};

/* Parse `version get NAME [N|default|latest] [--kv | --field KEY]`. */
static int get_parse(const struct cli_cmd *cmd, int argc, char **argv,
		     struct get_args *a)
{
	const struct cli_opt opts[] = {
	    {.name = "kv", .flag = &a->kv},
	    {.name = "field", .arg = &a->field},
	    {.name = NULL},
	};
	const char *which;
	int rc = cli_parse(cmd, argc, argv, opts, NULL, 1, 2);

	if (rc != CLI_GO)
		return rc;
	if (a->kv && a->field)
		return cli_bad_usage(cmd, "give --kv or --field, not both");
	which = optind + 1 < argc ? argv[optind + 1] : "default";
	a->latest = !strcmp(which, "latest");
	if (strcmp(which, "default") && !a->latest &&
	    cli_parse_number(which, &a->n))
		return cli_bad_usage(cmd,
				     "bad version '%s' (a number, "
				     "'default' or 'latest')",
				     which);
	return CLI_GO;
}

/* The number `latest` names: the secret's newest version. */
static int get_latest(struct cli_session *s, const char *name, uint32_t *n)
{
	struct sfs_secret_rec sec;
	int full = 0;
	int rc = sfs_secret_get(s->ctx, &s->caller, name, &sec, &full, &s->err);

	if (rc == SFS_OK && !sec.latest_version)
		rc = sfs_error_set(&s->err, SFS_ENOENT,
				   "'%s' has no "
				   "versions",
				   name);
	if (rc == SFS_OK)
		*n = sec.latest_version;
	return rc;
}

/* Report get_format's failure. */
static int get_fail(struct cli_session *s, const char *name,
		    const struct sfs_version_rec *info, const char *field,
		    int rc)
{
	if (field && (rc == SFS_EINVAL || rc == SFS_ENOENT)) {
		sfs_error_set(&s->err, rc,
			      rc == SFS_ENOENT ? "no such key"
					       : "the value is not a JSON "
						 "object (its format is %s)",
			      sfs_value_format_name(info->format));
		return cli_session_fail(s, rc,
					sfs_object_version(name, info->version),
					"cannot print key '%s' of "
					"version %u of '%s'",
					field, info->version, name);
	}
	if (rc == SFS_EPERM) /* kv_env_safe's reason is in s->err */
		return cli_session_fail(s, SFS_EINVAL,
					sfs_object_version(name, info->version),
					"cannot print version "
					"%u of '%s' as "
					"KEY=VALUE lines",
					info->version, name);
	if (rc == SFS_EINVAL) {
		fprintf(stderr,
			"secretfs: cannot print version %u of '%s' as "
			"key/value: the value is not key/value (its "
			"format is %s)\n",
			info->version, name,
			sfs_value_format_name(info->format));
		return EXIT_FAIL;
	}
	return cli_session_fail(s, rc, sfs_object_version(name, 0),
				"cannot print '%s'", name);
}

static int version_get(const struct cli_cmd *cmd, const struct cli_global *g,
		       int argc, char **argv)
{
	struct sfs_value val = { NULL, 0 };
	struct sfs_version_rec info;
	struct cli_buf b = { NULL, 0, 0, 0 };
	struct cli_session s;
	const char *name;
	struct get_args a = {0, 0, 0, NULL};
	int rc = cli_open_go(get_parse(cmd, argc, argv, &a), g, &s);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	memset(&info, 0, sizeof(info));
	rc = a.latest ? get_latest(&s, name, &a.n) : SFS_OK;
	if (rc == SFS_OK)
		rc = sfs_version_read(s.ctx, &s.caller, name, a.n, &val, &info,
				      &s.err);
	if (rc != SFS_OK) {
		rc = a.n ? cli_session_fail(
			       &s, rc, sfs_object_version(name, a.n),
			       "cannot read version %u of '%s'", a.n, name)
			 : cli_session_fail(&s, rc, sfs_object_version(name, 0),
					    "cannot read '%s'", name);
		goto out;
	}
	rc = get_format(&s, name, &val, &info, a.kv, a.field, &b);
	if (rc != SFS_OK)
		rc = get_fail(&s, name, &info, a.field, rc);
	else
		rc = cli_buf_write(&b);
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
	int rc = name_and_number(cmd, g, argc, argv, &n, &s);

	if (rc != CLI_GO)
		return rc;
	rc = sfs_version_set_default(s.ctx, &s.caller, argv[optind], n,
				     &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(
		    &s, rc, sfs_object_version(argv[optind], n),
		    "cannot set default version of '%s' to %u", argv[optind],
		    n);
	else if (g->json)
		rc = version_json(&s, argv[optind], n);
	else
		printf("set default version of '%s' to %u\n", argv[optind], n);
	cli_session_close(&s);
	return rc;
}

/* Report one version's change: JSON (one object per version), or a
 * line. */
static int state_changed(struct cli_session *s, const char *verb,
			 const char *name, uint32_t n)
{
	if (s->g->json)
		return version_json(s, name, n);
	printf("%s version %u of '%s'\n", verb, n, name);
	return EXIT_OK;
}

static int version_activate(struct sfs_ctx *ctx, const struct sfs_caller *c,
			    const char *name, uint32_t n, struct sfs_error *err)
{
	return sfs_version_set_state(ctx, c, name, n, 1, err);
}

static int version_deactivate(struct sfs_ctx *ctx, const struct sfs_caller *c,
			      const char *name, uint32_t n,
			      struct sfs_error *err)
{
	return sfs_version_set_state(ctx, c, name, n, 0, err);
}

/* activate, deactivate, destroy: one core call per version number,
 * reported as "<done> version N of 'NAME'". destroy takes N [N...]: each
 * in the order given; the first failure stops (those before it stay
 * destroyed). */
static const struct version_change {
	const char *name;
	const char *done;
	int many; /* N [N...] */
	int (*call)(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    const char *name, uint32_t n, struct sfs_error *err);
} version_changes[] = {
    {"activate", "activated", 0, version_activate},
    {"deactivate", "deactivated", 0, version_deactivate},
    {"destroy", "destroyed", 1, sfs_version_destroy},
};

static int version_change(const struct cli_cmd *cmd, const struct cli_global *g,
			  int argc, char **argv)
{
	const struct version_change *c = version_changes;
	struct cli_session s;
	const char *name;
	uint32_t n = 0;
	int i, rc;

	while (strcmp(c->name, cmd->name))
		c++;
	rc = cli_parse_plain(cmd, argc, argv, 2, c->many ? argc : 2);
	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	for (i = optind + 1; i < argc; i++)
		if (cli_parse_number(argv[i], &n))
			return cli_bad_usage(cmd, "bad version number '%s'",
					     argv[i]);
	if (cli_session_open(&s, g) != EXIT_OK)
		return EXIT_FAIL;
	for (i = optind + 1, rc = EXIT_OK; rc == EXIT_OK && i < argc; i++) {
		cli_parse_number(argv[i], &n);
		rc = c->call(s.ctx, &s.caller, name, n, &s.err);
		if (rc != SFS_OK)
			rc = cli_session_fail(
			    &s, rc, sfs_object_version(name, n),
			    "cannot %s version %u of '%s'", cmd->name, n, name);
		else
			rc = state_changed(&s, c->done, name, n);
	}
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
	int rc = name_and_number(cmd, g, argc, argv, &n, &s);

	if (rc != CLI_GO)
		return rc;
	name = argv[optind];
	memset(&rec, 0, sizeof(rec));
	rc = sfs_version_copy(s.ctx, &s.caller, name, n, &rec, &s.err);
	if (rc != SFS_OK)
		rc =
		    cli_session_fail(&s, rc, sfs_object_version(name, n),
				     "cannot copy version %u of '%s'", n, name);
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
    {"add",
     "Usage: secretfs version add NAME VALUE [--expect N] [--merge]\n"
     "\n"
     "Add a version; it becomes the default.\n"
     "\n"
     "  --value TEXT     the value: TEXT's exact bytes\n"
     "  --file FILE      the value: FILE's exact bytes ('-': stdin)\n"
     "  --kv KEY=VALUE   the value: a JSON object of strings (repeat\n"
     "                   for more keys)\n"
     "  --expect N       add only if the new version would be number N\n"
     "                   (compare-and-set)\n"
     "  --merge          the new version is the default's key/value\n"
     "                   object with the --kv keys replaced or added\n"
     "  -h, --help       print this help\n",
     version_add},
    {"list",
     "Usage: secretfs version list NAME\n"
     "\n"
     "List a secret's versions, destroyed ones included.\n",
     version_list},
    {"get",
     "Usage: secretfs version get NAME [N|default|latest] [--kv | --field "
     "KEY]\n"
     "\n"
     "Print a version's value (default: the default version; latest:\n"
     "the newest): its exact bytes, with nothing added.\n"
     "\n"
     "  --kv          print a key/value value as KEY=VALUE lines;\n"
     "                refused (exit 1) when a key is not an environment\n"
     "                variable name or a value holds a newline, carriage\n"
     "                return or NUL\n"
     "  --field KEY   print one key of a JSON object, raw\n"
     "  -h, --help    print this help\n",
     version_get},
    {"set-default",
     "Usage: secretfs version set-default NAME N\n"
     "\n"
     "Make active version N the default.\n",
     version_set_default},
    {"activate",
     "Usage: secretfs version activate NAME N\n"
     "\n"
     "Activate version N.\n",
     version_change},
    {"deactivate",
     "Usage: secretfs version deactivate NAME N\n"
     "\n"
     "Deactivate version N; if it was the default, the newest active\n"
     "version becomes the default.\n",
     version_change},
    {"destroy",
     "Usage: secretfs version destroy NAME N [N...]\n"
     "\n"
     "Erase the values of versions N... for good, in the order given\n"
     "(the first failure stops). A version in use must be deactivated\n"
     "first (or its secret).\n",
     version_change},
    {"copy",
     "Usage: secretfs version copy NAME N\n"
     "\n"
     "Add a version holding version N's value (a rollback).\n",
     version_copy},
    {NULL, NULL, NULL},
};

const struct cli_group cli_version_group = { "version", "versions",
					     version_cmds };
