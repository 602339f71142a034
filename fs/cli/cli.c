/*
 * Command line plumbing: group dispatch, option parsing with usage
 * errors in the SPEC's format, the VALUE sources (--value, --file,
 * --kv), and the administrator's session on an open store.
 *
 * Value bytes read here live in buffers that cli_value_release() wipes;
 * they are never copied into a message.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "secretfs/crypto.h"
#include "secretfs/keys.h"
#include "secretfs/value.h"

/* The group of the command that runs (NULL: one outside a group), whose
 * name leads the command's in its usage errors: a table row names its
 * command once, and the program runs one command. */
static const struct cli_group *running;

void cli_synopsis(const struct cli_cmd *c, FILE *f)
{
	const char *u = c->usage;
	const char *nl;

	/* the usage text's first line, "Usage: secretfs ..." */
	if (!strncmp(u, "Usage: ", 7))
		u += 7;
	nl = strchr(u, '\n');
	fprintf(f, "  %.*s\n", nl ? (int)(nl - u) : (int)strlen(u), u);
}

void cli_group_usage(const struct cli_group *grp, FILE *f)
{
	const struct cli_cmd *c;

	fprintf(f, "Usage:\n");
	for (c = grp->cmds; c->name; c++)
		cli_synopsis(c, f);
	fprintf(f, "\nRun 'secretfs %s COMMAND --help' for a command's "
		   "options.\n",
		grp->name);
}

int cli_group_run(const struct cli_group *grp, const struct cli_global *g,
		  int argc, char **argv)
{
	const struct cli_cmd *c;

	if (argc < 2) {
		fprintf(stderr, "secretfs: %s: missing command (see "
				"'secretfs %s --help')\n",
			grp->name, grp->name);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		cli_group_usage(grp, stdout);
		return EXIT_OK;
	}
	for (c = grp->cmds; c->name; c++) {
		if (!strcmp(c->name, argv[1])) {
			running = grp;
			return c->run(c, g, argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "secretfs: %s: unknown command '%s' (see 'secretfs "
			"%s --help')\n",
		grp->name, argv[1], grp->name);
	return EXIT_USAGE;
}

int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	static char **scanning;

	if (argv != scanning) {
		/* 0, not 1: glibc then also resets its permutation state */
		optind = 0;
		scanning = argv;
	}
	opterr = 0;
	return getopt_long(argc, argv, shortopts, longopts, NULL);
}

int cli_bad_usage(const struct cli_cmd *cmd, const char *fmt, ...)
{
	const char *grp = running ? running->name : "";
	const char *sep = running ? " " : "";
	va_list ap;

	fprintf(stderr, "secretfs: %s%s%s: ", grp, sep, cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'secretfs %s%s%s --help')\n", grp, sep,
		cmd->name);
	return EXIT_USAGE;
}

int cli_is_global_opt(const char *opt)
{
	static const char *const names[] = {"store", "master-key", "json",
					    "version"};
	size_t i, n;

	if (strncmp(opt, "--", 2))
		return 0;
	opt += 2;
	n = strcspn(opt, "=");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && !strncmp(opt, names[i], n))
			return 1;
	return 0;
}

void cli_opt_problem(int ch, char **argv, char *buf, size_t cap)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "";
	int is_long = !strncmp(opt, "--", 2);

	if (ch == '?' && cli_is_global_opt(opt))
		snprintf(buf, cap,
			 "option '%.*s': global options go before "
			 "the command",
			 (int)strcspn(opt, "="), opt);
	else if (ch == ':' && is_long)
		snprintf(buf, cap, "option '%s' needs a value", opt);
	else if (ch == ':')
		snprintf(buf, cap, "option '-%c' needs a value", optopt);
	else if (is_long && optopt)
		snprintf(buf, cap, "option '%s' takes no value", opt);
	else if (is_long)
		snprintf(buf, cap, "unknown option '%s'", opt);
	else
		snprintf(buf, cap, "unknown option '-%c'", optopt);
}

int cli_opt_other(const struct cli_cmd *cmd, int ch, char **argv)
{
	char why[256];

	if (ch == 'h') {
		fputs(cmd->usage, stdout);
		return EXIT_OK;
	}
	cli_opt_problem(ch, argv, why, sizeof(why));
	return cli_bad_usage(cmd, "%s", why);
}

int cli_args(const struct cli_cmd *cmd, int argc, char **argv, int min,
	     int max)
{
	int n = argc - optind;

	if (n < min)
		return cli_bad_usage(cmd, "missing argument");
	if (n > max)
		return cli_bad_usage(cmd, "unexpected argument '%s'",
				     argv[optind + max]);
	return EXIT_OK;
}

/* getopt_long's val for row i of a table: never a character, never 0
 * (cli_opt_problem tells "takes no value" apart by a non-zero optopt). */
#define CLI_OPT_ROW 0x200

/* The getopt_long table for opts' rows, --help and (src) the VALUE
 * options. */
static void opt_table(const struct cli_opt *opts, int src, struct option *lo)
{
	static const struct option tail[] = {
	    {"value", required_argument, NULL, CLI_OPT_VALUE},
	    {"file", required_argument, NULL, CLI_OPT_FILE},
	    {"kv", required_argument, NULL, CLI_OPT_KV},
	};
	struct option *o = lo;
	int i;

	for (i = 0; opts && opts[i].name; i++, o++) {
		assert(i < CLI_OPTS_MAX);
		o->name = opts[i].name;
		o->has_arg = opts[i].flag ? no_argument : required_argument;
		o->flag = NULL;
		o->val = CLI_OPT_ROW + i;
	}
	for (i = 0; src && i < 3; i++)
		*o++ = tail[i];
	*o++ = (struct option){"help", no_argument, NULL, 'h'};
	*o = (struct option){NULL, 0, NULL, 0};
}

int cli_opt_scan(const struct cli_cmd *cmd, const char *shortopts, int argc,
		 char **argv, const struct cli_opt *opts,
		 struct cli_value_src *src)
{
	struct option lo[CLI_OPTS_MAX + 5];
	const struct cli_opt *o;
	int ch, rc = EXIT_OK;

	opt_table(opts, src != NULL, lo);
	while (rc == EXIT_OK &&
	       (ch = cli_getopt(argc, argv, shortopts, lo)) != -1) {
		if (ch >= CLI_OPT_VALUE && ch <= CLI_OPT_KV) {
			rc = cli_value_src_add(src, ch, optarg);
			continue;
		}
		if (ch < CLI_OPT_ROW)
			return ch; /* 'h', ':' or '?' */
		o = &opts[ch - CLI_OPT_ROW];
		if (o->flag)
			*o->flag = 1;
		else if (o->arg)
			*o->arg = optarg;
		else
			rc = o->take(cmd, optarg, o->to);
	}
	return rc == EXIT_OK ? CLI_GO : rc;
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv,
	      const struct cli_opt *opts, struct cli_value_src *src, int min,
	      int max)
{
	int rc = cli_opt_scan(cmd, ":h", argc, argv, opts, src);

	if (rc == 'h' || rc == ':' || rc == '?')
		return cli_opt_other(cmd, rc, argv);
	if (rc == CLI_GO &&
	    (rc = cli_args(cmd, argc, argv, min, max)) == EXIT_OK)
		rc = CLI_GO;
	return rc;
}

int cli_parse_plain(const struct cli_cmd *cmd, int argc, char **argv, int min,
		    int max)
{
	return cli_parse(cmd, argc, argv, NULL, NULL, min, max);
}

int cli_parse_number(const char *text, uint32_t *out)
{
	unsigned long long v = 0;
	const char *p;

	if (!*text || *text == '0')
		return -1;
	for (p = text; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* --- VALUE ------------------------------------------------------------- */

void cli_value_src_init(struct cli_value_src *s)
{
	memset(s, 0, sizeof(*s));
}

int cli_value_src_add(struct cli_value_src *s, int ch, const char *arg)
{
	const char **kv;

	if (ch == CLI_OPT_VALUE) {
		s->dup |= s->text != NULL;
		s->text = arg;
		s->kinds |= 1;
	} else if (ch == CLI_OPT_FILE) {
		s->dup |= s->file != NULL;
		s->file = arg;
		s->kinds |= 2;
	} else {
		kv = realloc(s->kv, (s->nkv + 1) * sizeof(*kv));
		if (!kv) {
			fprintf(stderr, "secretfs: out of memory\n");
			return EXIT_FAIL;
		}
		kv[s->nkv++] = arg;
		s->kv = kv;
		s->kinds |= 4;
	}
	return EXIT_OK;
}

void cli_value_src_release(struct cli_value_src *s)
{
	free(s->kv);
	memset(s, 0, sizeof(*s));
}

int cli_value_src_check(const struct cli_cmd *cmd,
			const struct cli_value_src *s, int *given)
{
	/* two kinds, or --value / --file twice: which one is meant? */
	if (s->dup || (s->kinds & (s->kinds - 1)))
		return cli_bad_usage(cmd, "give one value: --value, --file or "
					  "--kv");
	*given = s->kinds != 0;
	return EXIT_OK;
}

/* Read at most SFS_VALUE_MAX + 1 bytes of fd into v. */
static int read_capped(int fd, struct cli_value *v)
{
	size_t want = SFS_VALUE_MAX + 1;
	ssize_t n;

	v->cap = want;
	v->data = malloc(want);
	if (!v->data)
		return -ENOMEM;
	while (v->len < want) {
		n = read(fd, v->data + v->len, want - v->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		v->len += (size_t)n;
	}
	return 0;
}

static int load_file(const char *path, struct cli_value *out)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	char why[128];
	int rc;

	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = read_capped(fd, out);
	if (fd > 0)
		close(fd);
out:
	if (rc < 0) {
		snprintf(why, sizeof(why), "%s", sfs_strerrno(-rc));
		fprintf(stderr, "secretfs: cannot read '%s': %s\n",
			strcmp(path, "-") ? path : "standard input", why);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cli_value_load(const struct cli_cmd *cmd, const struct cli_value_src *s,
		   struct cli_value *out)
{
	struct sfs_error err;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s->file)
		return load_file(s->file, out);
	if (s->nkv) {
		sfs_error_clear(&err);
		rc = sfs_value_kv_build(s->kv, s->nkv, &out->data, &out->len,
					&err);
		if (rc == SFS_EINVAL) /* a malformed pair: bad usage */
			return cli_bad_usage(cmd, "--kv: %s", err.msg);
		if (rc != SFS_OK)
			return cli_fail("cannot build the --kv value", NULL, 0,
					&err);
		out->cap = out->len;
		return EXIT_OK;
	}
	/* --value: the argument's bytes, as given */
	out->len = strlen(s->text);
	out->cap = out->len + 1;
	out->data = malloc(out->cap);
	if (!out->data) {
		fprintf(stderr, "secretfs: out of memory\n");
		return EXIT_FAIL;
	}
	memcpy(out->data, s->text, out->cap);
	return EXIT_OK;
}

void cli_value_release(struct cli_value *v)
{
	sfs_crypto_free_secret(v->data, v->cap);
	memset(v, 0, sizeof(*v));
}

/* --- session ----------------------------------------------------------- */

int cli_store_dir(const struct cli_global *g, char *dir, size_t cap)
{
	struct sfs_object where = sfs_object_whole(SFS_OBJ_STORE_DIR);
	struct sfs_error err;

	sfs_error_clear(&err);
	if (g->store)
		snprintf(dir, cap, "%s", g->store);
	else if (sfs_ctx_default_dir(dir, cap, &err) != SFS_OK)
		return cli_fail("cannot find the store", &where, 1, &err);
	return EXIT_OK;
}

int cli_start(const struct cli_cmd *cmd, const struct cli_global *g,
	      int argc, char **argv, int min, int max, struct cli_session *s)
{
	return cli_open_go(cli_parse_plain(cmd, argc, argv, min, max), g, s);
}

int cli_open_go(int rc, const struct cli_global *g, struct cli_session *s)
{
	if (rc == CLI_GO && cli_session_open(s, g) != EXIT_OK)
		rc = EXIT_FAIL;
	return rc;
}

int cli_session_open(struct cli_session *s, const struct cli_global *g)
{
	memset(s, 0, sizeof(*s));
	s->g = g;
	sfs_caller_self(&s->caller);
	sfs_error_clear(&s->err);
	return cli_open(g, NULL, &s->ctx);
}

void cli_session_close(struct cli_session *s)
{
	if (s->ctx)
		sfs_ctx_close(s->ctx);
	s->ctx = NULL;
}

/* cli_session_fail with fmt's arguments in ap and the n objects of
 * about. */
static int session_fail(struct cli_session *s, int rc,
			const struct sfs_object *about, size_t n,
			const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
static int session_fail(struct cli_session *s, int rc,
			const struct sfs_object *about, size_t n,
			const char *fmt, va_list ap)
{
	char what[512];

	if (!s->err.code)
		s->err.code = rc;
	vsnprintf(what, sizeof(what), fmt, ap);
	return cli_fail(what, about, n, &s->err);
}

int cli_session_fail(struct cli_session *s, int rc, struct sfs_object about,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = session_fail(s, rc, &about, 1, fmt, ap);
	va_end(ap);
	return rc;
}

int cli_session_fail2(struct cli_session *s, int rc, struct sfs_object a,
		      struct sfs_object b, const char *fmt, ...)
{
	struct sfs_object about[2];
	va_list ap;

	about[0] = a;
	about[1] = b;
	va_start(ap, fmt);
	rc = session_fail(s, rc, about, 2, fmt, ap);
	va_end(ap);
	return rc;
}

void *cli_grow(void *arr, size_t n, size_t *cap, size_t size)
{
	size_t want = *cap ? *cap * 2 : 16;
	void *grown;

	if (n < *cap)
		return arr;
	if (want > SIZE_MAX / size)
		return NULL;
	grown = realloc(arr, want * size);
	if (grown)
		*cap = want;
	return grown;
}

int cli_list_push(struct cli_list *l, const void *item, size_t size)
{
	char *grown = cli_grow(l->items, l->n, &l->cap, size);

	if (!grown)
		return SFS_ENOMEM;
	l->items = grown;
	memcpy(grown + l->n++ * size, item, size);
	return SFS_OK;
}

static int keys_add(void *arg, const struct sfs_key_rec *r)
{
	struct cli_keys *k = arg;
	struct sfs_key_rec *recs = cli_grow(k->recs, k->n, &k->cap,
					    sizeof(*recs));

	if (!recs)
		return SFS_ENOMEM;
	k->recs = recs;
	k->recs[k->n++] = *r;
	return 0;
}

int cli_keys_load(struct cli_session *s, struct cli_keys *k)
{
	int rc;

	memset(k, 0, sizeof(*k));
	rc = sfs_key_list(s->ctx, &s->caller, keys_add, k, &s->err);
	if (rc != SFS_OK)
		return cli_session_fail(s, rc, sfs_object_whole(SFS_OBJ_KEYS),
					"cannot list keys");
	return EXIT_OK;
}

const char *cli_keys_name(const struct cli_keys *k, const char *id)
{
	size_t i;

	for (i = 0; k && i < k->n; i++)
		if (!strcmp(k->recs[i].id, id))
			return k->recs[i].name;
	return id;
}

void cli_keys_release(struct cli_keys *k)
{
	free(k->recs);
	memset(k, 0, sizeof(*k));
}

/* Every record of x as a table on stdout: EXIT_OK or EXIT_FAIL. */
static int listing_table(const struct cli_listing *x)
{
	const char *row[CLI_LISTING_COLS];
	char cell[CLI_LISTING_COLS][32];
	struct cli_table t;
	size_t i;
	int rc = cli_table_init(&t, x->ncols, x->hdr);

	assert(x->ncols <= CLI_LISTING_COLS);
	for (i = 0; rc == EXIT_OK && i < x->l.n; i++) {
		x->row(x, i, row, cell);
		rc = cli_table_row(&t, row);
	}
	if (rc == EXIT_OK)
		cli_table_print(&t, stdout);
	cli_table_release(&t);
	return rc;
}

int cli_listing_end(struct cli_session *s, int rc, struct cli_listing *x)
{
	struct sfs_json *arr;
	size_t i;

	if (rc == EXIT_OK)
		rc = cli_keys_load(s, &x->keys);
	cli_session_close(s);
	if (rc == EXIT_OK && s->g->json) {
		arr = sfs_json_array();
		for (i = 0; i < x->l.n; i++)
			fs_render_push(&arr, x->json(x, i));
		rc = cli_json_print(arr);
	} else if (rc == EXIT_OK) {
		rc = listing_table(x);
	}
	cli_keys_release(&x->keys);
	free(x->l.items);
	x->l.items = NULL;
	return rc;
}

/* --- output buffer for value bytes ------------------------------------- */

void cli_buf_add(struct cli_buf *b, const void *p, size_t n)
{
	size_t cap;
	char *grown;

	if (b->failed || n == 0)
		return;
	if (b->len + n > b->cap) {
		/* no realloc: the old block would be freed unwiped */
		cap = (b->len + n) * 2 + 256;
		grown = malloc(cap);
		if (!grown) {
			b->failed = 1;
			return;
		}
		if (b->len)
			memcpy(grown, b->data, b->len);
		sfs_crypto_free_secret(b->data, b->cap);
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void cli_buf_str(struct cli_buf *b, const char *s)
{
	cli_buf_add(b, s, strlen(s));
}

int cli_buf_write(struct cli_buf *b)
{
	size_t done = 0;
	ssize_t n;

	if (b->failed) {
		fprintf(stderr, "secretfs: cannot print value: out of memory\n");
		return EXIT_FAIL;
	}
	fflush(stdout);
	while (done < b->len) {
		n = write(STDOUT_FILENO, b->data + done, b->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "secretfs: cannot write value: %s\n",
				sfs_strerrno(errno));
			return EXIT_FAIL;
		}
		done += (size_t)n;
	}
	return EXIT_OK;
}

void cli_buf_release(struct cli_buf *b)
{
	sfs_crypto_free_secret(b->data, b->cap);
	memset(b, 0, sizeof(*b));
}
