/*
 * `secretfs audit` and `secretfs init`: the two commands about the store
 * itself rather than what is in it.
 *
 * audit prints the audit log's JSON lines (they hold no value or key
 * material, so reading them needs no master key: the log's own mode 0600
 * guards it), with any control character a terminal would act on
 * escaped, whatever the file holds (sfs_audit_printable). init creates the
 * store and says where the store and its master key are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "secretfs/audit.h"
#include "secretfs/ctx.h"
#include "secretfs/storedir.h"
#include "secretfs/value.h"

/* Print one line; arg (an int) gets errno when stdout fails. */
static int audit_line(void *arg, const char *line)
{
	int *write_errno = arg;
	char *safe = sfs_audit_printable(line);
	int bad = !safe || puts(safe) == EOF || fflush(stdout) == EOF;

	if (bad)
		*write_errno = !safe ? ENOMEM : errno ? errno : EIO;
	free(safe);
	return bad; /* stdout gone: stop following */
}

struct audit_args {
	const char *secret;
	int64_t since;
	int follow;
	int all_hosts;
};

/* --since: RFC 3339 or a date, or an age before now: N followed by s, m,
 * h or d ("30m", "2h", "1d"; SPEC §5). SFS_OK or SFS_EINVAL. */
static int since_parse(const char *text, int64_t *ns)
{
	static const char units[] = "smhd";
	static const int64_t secs[] = {1, 60, 3600, 86400};
	const char *u;
	char *end;
	long long n;

	if (sfs_time_parse(text, ns) == SFS_OK)
		return SFS_OK;
	if (*text < '0' || *text > '9')
		return SFS_EINVAL;
	errno = 0;
	n = strtoll(text, &end, 10);
	u = *end ? strchr(units, *end) : NULL;
	if (errno || !u || end[1] || n > 36500LL * 86400)
		return SFS_EINVAL;
	*ns = sfs_time_now() - n * secs[u - units] * 1000000000LL;
	return SFS_OK;
}

/* --since's take: a usage error for a time since_parse refuses. */
static int since_take(const struct cli_cmd *cmd, const char *arg, void *to)
{
	if (since_parse(arg, to) != SFS_OK)
		return cli_bad_usage(cmd,
				     "bad time '%s' (RFC 3339, "
				     "YYYY-MM-DD, or an age: "
				     "30m, 2h, 1d)",
				     arg);
	return EXIT_OK;
}

static int audit_parse(const struct cli_cmd *cmd, int argc, char **argv,
		       struct audit_args *a)
{
	const struct cli_opt opts[] = {
	    {.name = "secret", .arg = &a->secret},
	    {.name = "since", .take = since_take, .to = &a->since},
	    {.name = "follow", .flag = &a->follow},
	    {.name = "all-hosts", .flag = &a->all_hosts},
	    {.name = NULL},
	};
	int rc = cli_parse(cmd, argc, argv, opts, NULL, 0, 0);

	if (rc == CLI_GO && a->all_hosts && a->follow)
		return cli_bad_usage(cmd, "--all-hosts reads the store once: "
					  "no --follow");
	return rc;
}

/* The rotated logs first, oldest (audit.log.4) to newest, then the log
 * itself (following it with --follow): the whole kept history in order.
 * A rotated log that is not there is skipped. */
static int audit_all(const char *dir, const struct audit_args *a,
		     int *write_errno, struct sfs_error *err)
{
	char path[4200];
	int i, rc = SFS_OK;

	for (i = SFS_AUDIT_KEEP; i > 0 && rc == SFS_OK && !*write_errno; i--) {
		snprintf(path, sizeof(path), "%s/audit.log.%d", dir, i);
		rc = sfs_audit_read(path, a->secret, a->since, 0, audit_line,
				    write_errno, err);
		if (rc == SFS_ENOENT) {
			sfs_error_clear(err);
			rc = SFS_OK;
		}
	}
	if (rc != SFS_OK || *write_errno)
		return rc;
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	return sfs_audit_read(path, a->secret, a->since, a->follow, audit_line,
			      write_errno, err);
}

static int audit_run(const struct cli_cmd *cmd, const struct cli_global *g,
		     int argc, char **argv)
{
	struct audit_args a = {NULL, 0, 0, 0};
	struct sfs_error err;
	char dir[4096];
	int write_errno = 0;
	int rc = audit_parse(cmd, argc, argv, &a);

	if (rc != CLI_GO)
		return rc;
	if (cli_store_dir(g, dir, sizeof(dir)) != EXIT_OK)
		return EXIT_FAIL;
	sfs_error_clear(&err);
	if (sfs_storedir_check(dir, &err) != SFS_OK) /* SPEC §1 */
		return cli_fail("cannot read the audit log", NULL, 0, &err);
	if (a.all_hosts)
		rc = sfs_audit_read_all_hosts(dir, a.secret, a.since,
					      audit_line, &write_errno, &err);
	else
		rc = audit_all(dir, &a, &write_errno, &err);
	if (rc < 0) {
		if (!err.code)
			err.code = rc;
		return cli_fail("cannot read the audit log", NULL, 0, &err);
	}
	if (write_errno) {
		fprintf(stderr, "secretfs: cannot write output: %s\n",
			sfs_strerrno(write_errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

const struct cli_cmd cli_audit_cmd = {
    "audit",
    "Usage: secretfs audit [--secret NAME] [--since TIME] [--follow]\n"
    "       secretfs audit --all-hosts [--secret NAME] [--since TIME]\n"
    "\n"
    "Print the audit log: one JSON line per value read and per change,\n"
    "from the oldest kept log (audit.log.4) to the current one.\n"
    "\n"
    "  --secret NAME   only lines about this secret\n"
    "  --since TIME    only lines at or after TIME (RFC 3339, e.g.\n"
    "                  2026-11-28T18:00:00Z, a date YYYY-MM-DD, or an\n"
    "                  age: 30m, 2h, 1d)\n"
    "  --follow        keep printing new lines as they come\n"
    "  --all-hosts     every host's changes, from the shared store\n"
    "  -h, --help      print this help\n",
    audit_run,
};

/* --- init -------------------------------------------------------------- */

static int init_report(const struct cli_global *g, struct sfs_ctx *ctx)
{
	const char *key = sfs_ctx_master_key_path(ctx);
	struct sfs_json *o;

	if (!g->json) {
		printf("store: %s\n", sfs_ctx_dir(ctx));
		printf("master_key: %s\n",
		       key ? key : "derived from the passphrase (Argon2id)");
		return EXIT_OK;
	}
	o = sfs_json_object();
	return cli_json_print(cli_json_built(
	    o, o && (sfs_json_set_str(o, "store", sfs_ctx_dir(ctx)) ||
		     (key ? sfs_json_set_str(o, "master_key", key)
			  : sfs_json_set_null(o, "master_key")) ||
		     sfs_json_set_bool(o, "passphrase", key == NULL))));
}

static int init_run(const struct cli_cmd *cmd, const struct cli_global *g,
		    int argc, char **argv)
{
	struct sfs_ctx_options o;
	const char *backend = NULL;
	const struct cli_opt opts[] = {
	    {.name = "passphrase-file", .arg = &o.passphrase_file},
	    {.name = "backend", .arg = &backend},
	    {.name = "conninfo", .arg = &o.conninfo},
	    {.name = "join", .flag = &o.join},
	    {.name = NULL},
	};
	struct sfs_object store = sfs_object_whole(SFS_OBJ_STORE);
	struct sfs_ctx *ctx = NULL;
	struct sfs_error err;
	int rc;

	memset(&o, 0, sizeof(o));
	if ((rc = cli_parse(cmd, argc, argv, opts, NULL, 0, 0)) != CLI_GO)
		return rc;
	if (backend && strcmp(backend, "postgresql") != 0 &&
	    strcmp(backend, "sqlite") != 0)
		return cli_bad_usage(cmd, "--backend is sqlite or postgresql");
	if ((backend && strcmp(backend, "postgresql") == 0) != !!o.conninfo &&
	    !(o.join && o.conninfo && !backend))
		return cli_bad_usage(cmd, "--backend postgresql and --join "
					  "need --conninfo, and only they");
	if (o.join && !o.conninfo)
		return cli_bad_usage(cmd, "--join needs --conninfo");
	/* two master keys asked for: which one is meant? */
	if (o.passphrase_file && g->master_key)
		return cli_bad_usage(cmd, "give --master-key or "
					  "--passphrase-file, not both");
	o.store_dir = g->store;
	o.master_key = g->master_key;
	sfs_error_clear(&err);
	if ((rc = sfs_ctx_init(&o, &err)) != SFS_OK) {
		if (!err.code)
			err.code = rc;
		return cli_fail("cannot initialise the store", &store, 1, &err);
	}
	/* open it once: proves the new key and says where everything is */
	if ((rc = sfs_ctx_open(&ctx, &o, &err)) != SFS_OK) {
		if (!err.code)
			err.code = rc;
		return cli_fail("cannot open the new store", &store, 1, &err);
	}
	rc = init_report(g, ctx);
	sfs_ctx_close(ctx);
	return rc;
}

const struct cli_cmd cli_init_cmd = {
    "init",
    "Usage: secretfs init [--passphrase-file FILE]\n"
    "       secretfs init --backend postgresql --conninfo STR\n"
    "       secretfs init --join --conninfo STR\n"
    "\n"
    "Create the store: its directory (0700), its database with the\n"
    "service key, and the master key file DIR/master.key (0400), or,\n"
    "with --passphrase-file, a master key derived from the passphrase\n"
    "in FILE with Argon2id (later commands read $SECRETFS_PASSPHRASE_FILE\n"
    "or ask on the terminal).\n"
    "\n"
    "  --passphrase-file FILE   derive the master key from a passphrase\n"
    "  --backend postgresql     keep the store in PostgreSQL, shared by\n"
    "                           many hosts (DIR/store.conf names it)\n"
    "  --conninfo STR           libpq keywords or service=NAME; no\n"
    "                           password (use ~/.pgpass or PGPASSFILE)\n"
    "  --join                   attach this host to an existing shared\n"
    "                           store; needs its master key file\n"
    "  -h, --help               print this help\n",
    init_run,
};

/* --- rekey ------------------------------------------------------------- */

static int rekey_run(const struct cli_cmd *cmd, const struct cli_global *g,
		     int argc, char **argv)
{
	struct cli_session s;
	const char *key = NULL;
	const struct cli_opt opts[] = {
	    {.name = "new-master-key", .arg = &key},
	    {.name = NULL},
	};
	int rc = cli_parse(cmd, argc, argv, opts, NULL, 0, 0);

	if (rc != CLI_GO)
		return rc;
	if (!key)
		return cli_bad_usage(cmd, "--new-master-key FILE is required");
	if ((rc = cli_session_open(&s, g)) != EXIT_OK)
		return rc;
	rc = sfs_ctx_rekey(s.ctx, key, &s.err);
	if (rc != SFS_OK)
		rc = cli_session_fail(&s, rc, sfs_object_whole(SFS_OBJ_STORE),
				      "cannot re-key the store");
	else
		printf("store re-keyed: its master key is now '%s'; give it "
		       "to every host and restart their daemons\n",
		       key);
	cli_session_close(&s);
	return rc == SFS_OK ? EXIT_OK : rc;
}

const struct cli_cmd cli_rekey_cmd = {
    "rekey",
    "Usage: secretfs rekey --new-master-key FILE\n"
    "\n"
    "Move the store to the master key in FILE (32 bytes, mode 0400):\n"
    "every KMS key's material and the canary are wrapped again, in one\n"
    "transaction. Afterwards every command and daemon needs FILE as its\n"
    "master key (--master-key, $SECRETFS_MASTER_KEY or DIR/master.key);\n"
    "a daemon still holding the old key fails its reads until restarted.\n"
    "\n"
    "  --new-master-key FILE   the new master key\n"
    "  -h, --help              print this help\n",
    rekey_run,
};
