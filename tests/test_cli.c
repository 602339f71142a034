/*
 * The secretfs command line, driven as a user drives it: the built binary
 * (SECRETFS_BIN) run with argv, environment and stdin, its exit status,
 * stdout and stderr checked byte for byte. Each test gets a fresh store
 * (checked fixture) made with `secretfs --store DIR init`.
 *
 * What a user relies on: exit 0/1/2, errors as "secretfs: <what>: <why>"
 * on stderr, `version get` printing exact bytes, JSON that parses, the
 * lifecycle refused where the SPEC refuses it, and no value ever printed
 * or stored in plaintext.
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/harness.h"
#include "lib/proc.h"
#include "lib/testutil.h"
#include "secretfs/value.h"

static char *tmp;         /* per test */
static char store[512];   /* tmp/store */
static const char *bin;
static struct tu_proc r;  /* the last run */
static const char *tty_wait;
static long run_as = -1;  /* uid (and gid) to run as, or -1 */

static const char *const clean_env[] = {
	"SECRETFS_STORE", "SECRETFS_MASTER_KEY", "SECRETFS_PASSPHRASE_FILE",
	NULL,
};

#define MAX_ARGS 32

/* Run bin with args (NULL-terminated list in ap), extra env, stdin. */
static int run_v(const char *const *env, const void *in, size_t len, int tty,
		 int with_store, const char *first, va_list ap)
{
	const char *argv[MAX_ARGS + 4];
	const char *envv[16];
	const char *a;
	int n = 0, i = 0;

	tu_proc_release(&r);
	memset(&r, 0, sizeof(r));
	argv[n++] = bin;
	if (with_store) {
		argv[n++] = "--store";
		argv[n++] = store;
	}
	for (a = first; a && n < MAX_ARGS; a = va_arg(ap, const char *))
		argv[n++] = a;
	argv[n] = NULL;
	for (; clean_env[i]; i++)
		envv[i] = clean_env[i];
	for (; env && *env && i < 15; env++)
		envv[i++] = *env;
	envv[i] = NULL;
	r.argv = argv;
	r.env = envv;
	r.in = in;
	r.in_len = len;
	r.in_tty = tty;
	r.tty_wait = tty_wait;
	if (run_as >= 0) {
		r.drop = 1;
		r.uid = (uid_t)run_as;
		r.gid = (gid_t)run_as;
	}
	ck_assert_int_eq(tu_proc_run(&r), 0);
	return r.status;
}

/* secretfs --store STORE ARGS..., stdin /dev/null. */
static int sfs(const char *first, ...)
{
	va_list ap;
	int rc;

	va_start(ap, first);
	rc = run_v(NULL, NULL, 0, 0, 1, first, ap);
	va_end(ap);
	return rc;
}

/* Same, with bytes on stdin (a pipe). */
static int sfs_in(const void *in, size_t len, const char *first, ...)
{
	va_list ap;
	int rc;

	va_start(ap, first);
	rc = run_v(NULL, in, len, 0, 1, first, ap);
	va_end(ap);
	return rc;
}

/* Same, with stdin a terminal that gets the line in (after the prompt
 * wait, when not NULL, shows on the terminal). */
static int sfs_tty(const char *wait, const char *in, const char *first, ...)
{
	va_list ap;
	int rc;

	tty_wait = wait;
	va_start(ap, first);
	rc = run_v(NULL, in, strlen(in), 1, 1, first, ap);
	va_end(ap);
	tty_wait = NULL;
	return rc;
}

/* No --store added; env entries as in tu_proc. */
static int sfs_env(const char *const *env, const char *first, ...)
{
	va_list ap;
	int rc;

	va_start(ap, first);
	rc = run_v(env, NULL, 0, 0, 0, first, ap);
	va_end(ap);
	return rc;
}

/* As uid:gid (the tests run as root), with HOME in tmp. */
static int sfs_as(uid_t uid, const char *first, ...)
{
	char home[600];
	const char *env[2] = { home, NULL };
	va_list ap;
	int rc;

	snprintf(home, sizeof(home), "HOME=%s", tmp);
	run_as = (long)uid;
	va_start(ap, first);
	rc = run_v(env, NULL, 0, 0, 1, first, ap);
	va_end(ap);
	run_as = -1;
	return rc;
}

static void setup(void)
{
	bin = getenv("SECRETFS_BIN");
	ck_assert_msg(bin && *bin, "SECRETFS_BIN is not set");
	tmp = tu_tmpdir("cli");
	snprintf(store, sizeof(store), "%s/store", tmp);
	memset(&r, 0, sizeof(r));
}

static void teardown(void)
{
	tu_proc_release(&r);
	tu_rmrf(tmp);
	free(tmp);
}

/* A store of its own. */
static void setup_store(void)
{
	setup();
	ck_assert_int_eq(sfs("init", NULL), 0);
}

static char *path_in(const char *name)
{
	static char p[640];

	snprintf(p, sizeof(p), "%s/%s", tmp, name);
	return p;
}

/* stderr is exactly one line "secretfs: <what>: <why>\n" (usage errors
 * too: their pointer to --help goes on the same line). */
static void assert_error_format(void)
{
	const char *colon, *nl;

	ck_assert_msg(!strncmp(r.err, "secretfs: ", 10), "stderr: %s", r.err);
	colon = strstr(r.err + 10, ": ");
	ck_assert_msg(colon && colon[2] && colon[2] != '\n', "stderr: %s",
		      r.err);
	nl = strchr(r.err, '\n');
	ck_assert_msg(nl && nl[1] == '\0', "stderr: %s", r.err);
}

static void assert_out(const char *want)
{
	ck_assert_msg(r.out_len == strlen(want) && !memcmp(r.out, want,
							     r.out_len),
		      "stdout: [%s], want [%s]", r.out, want);
}

static void assert_prefix(const char *want)
{
	ck_assert_msg(!strncmp(r.out, want, strlen(want)),
		      "stdout: [%s], want it to start with [%s]", r.out, want);
}

/* stderr is exactly want (one line). */
static void assert_err(const char *want)
{
	ck_assert_msg(!strcmp(r.err, want), "stderr: [%s], want [%s]", r.err,
		      want);
}

static void assert_err_has(const char *part)
{
	ck_assert_msg(strstr(r.err, part), "stderr [%s] lacks [%s]", r.err,
		      part);
}

static void assert_out_has(const char *part)
{
	ck_assert_msg(strstr(r.out, part), "stdout [%s] lacks [%s]", r.out,
		      part);
}

/* --- usage ------------------------------------------------------------- */

START_TEST(test_help_global)
{
	ck_assert_int_eq(sfs_env(NULL, "--help", NULL), 0);
	ck_assert(!strncmp(r.out, "Usage: secretfs", 15));
	assert_out_has("secretfs version get NAME [N|default|latest] [--kv | "
		       "--field KEY]");
	ck_assert_uint_eq(r.err_len, 0);
	ck_assert_int_eq(sfs_env(NULL, "-h", NULL), 0);
	ck_assert(!strncmp(r.out, "Usage: secretfs", 15));
}
END_TEST

static const char *const commands[][2] = {
    {"key", "create"},
    {"key", "list"},
    {"key", "show"},
    {"key", "activate"},
    {"key", "deactivate"},
    {"key", "rotate"},
    {"key", "delete"},
    {"secret", "create"},
    {"secret", "list"},
    {"secret", "show"},
    {"secret", "update"},
    {"secret", "change-key"},
    {"secret", "activate"},
    {"secret", "deactivate"},
    {"secret", "delete"},
    {"version", "add"},
    {"version", "list"},
    {"version", "get"},
    {"version", "set-default"},
    {"version", "activate"},
    {"version", "deactivate"},
    {"version", "destroy"},
    {"version", "copy"},
    {"role", "grant"},
    {"backup", NULL},
    {"restore", NULL},
    {"role", "revoke"},
    {"role", "list"},
    {"audit", NULL},
    {"init", NULL},
    {"key", NULL},
    {"secret", NULL},
    {"version", NULL},
    {"role", NULL},
};

START_TEST(test_help_every_command)
{
	char want[64];
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const char *h = i % 2 ? "-h" : "--help";

		if (commands[i][1])
			sfs(commands[i][0], commands[i][1], h, NULL);
		else
			sfs(commands[i][0], h, NULL);
		ck_assert_msg(r.status == 0, "%s %s %s: exit %d",
			      commands[i][0], commands[i][1], h, r.status);
		ck_assert_msg(r.out_len > 0, "%s %s: no help", commands[i][0],
			      commands[i][1]);
		if (commands[i][1]) {
			snprintf(want, sizeof(want), "Usage: secretfs %s %s",
				 commands[i][0], commands[i][1]);
			ck_assert_msg(!strncmp(r.out, want, strlen(want)),
				      "help: %s", r.out);
		}
	}
	/* help is given before any store is needed: nothing was created */
	ck_assert_int_ne(access(store, F_OK), 0);
}
END_TEST

START_TEST(test_usage_unknown_command)
{
	ck_assert_int_eq(sfs("frobnicate", NULL), 2);
	assert_err_has("secretfs: unknown command 'frobnicate'");
	ck_assert_int_eq(sfs("secret", "frob", NULL), 2);
	assert_err_has("secretfs: secret: unknown command 'frob'");
	ck_assert_int_eq(sfs("secret", NULL), 2);
	ck_assert_uint_eq(r.out_len, 0);
}
END_TEST

START_TEST(test_usage_unknown_option)
{
	ck_assert_int_eq(sfs("secret", "list", "--frob", NULL), 2);
	assert_err_has("secretfs: secret list: unknown option '--frob'");
	ck_assert_int_eq(sfs("--frob", "secret", "list", NULL), 2);
	assert_err_has("unknown option '--frob'");
	/* global options go before the command */
	ck_assert_int_eq(sfs("secret", "list", "--json", NULL), 2);
	ck_assert_int_eq(sfs("version", "get", "db", "-x", NULL), 2);
	assert_err_has("unknown option '-x'");
	ck_assert_int_eq(sfs("key", "create", "k", "--description", NULL), 2);
	assert_err_has("secretfs: key create: option '--description' needs a "
		       "value");
	ck_assert_int_eq(sfs("secret", "create", "s", "--access-control=on",
			     NULL),
			 2);
	assert_err_has("option '--access-control=on' takes no value");
	ck_assert_int_eq(sfs_env(NULL, "--store", NULL), 2);
	assert_err_has("secretfs: option '--store' needs a value");
}
END_TEST

/*
 * The option table's contract (cli_parse): getopt_long's unambiguous
 * prefixes, the last value given wins, a checked value is refused as it
 * comes (before the positional arguments are counted), and an ambiguous
 * prefix is an unknown option.
 */
START_TEST(test_options_prefix_last_wins_checked_first)
{
	ck_assert_int_eq(sfs("init", NULL), 0);
	ck_assert_int_eq(sfs("key", "create", "k1", "--desc", "a", "--desc=b",
			     NULL),
			 0);
	ck_assert_int_eq(sfs("key", "show", "k1", NULL), 0);
	assert_out_has("\ndescription: b\n");
	ck_assert_int_eq(sfs("audit", "--since", "5x", "extra", NULL), 2);
	assert_err("secretfs: audit: bad time '5x' (RFC 3339, YYYY-MM-DD, or "
		   "an age: 30m, 2h, 1d) (see 'secretfs audit --help')\n");
	ck_assert_int_eq(sfs("version", "add", "db", "--expect", "0", "--frob",
			     NULL),
			 2);
	assert_err("secretfs: version add: bad version number '0' (see "
		   "'secretfs version add --help')\n");
	ck_assert_int_eq(sfs("secret", "update", "db", "--a", "on", NULL), 2);
	assert_err("secretfs: secret update: unknown option '--a' (see "
		   "'secretfs secret update --help')\n");
	ck_assert_int_eq(sfs("umount", "--lazy=1", "x", NULL), 2);
	assert_err("secretfs: umount: option '--lazy=1' takes no value (see "
		   "'secretfs umount --help')\n");
}
END_TEST

/* Usage errors are one line each, in the error format, with exit 2. */
START_TEST(test_usage_error_one_line)
{
	ck_assert_int_eq(sfs_env(NULL, NULL), 2);
	ck_assert_uint_eq(r.out_len, 0);
	assert_error_format();
	assert_err_has("missing command");
	ck_assert_int_eq(sfs("frobnicate", NULL), 2);
	assert_error_format();
	ck_assert_int_eq(sfs("--frob", "secret", "list", NULL), 2);
	assert_error_format();
	ck_assert_int_eq(sfs("secret", NULL), 2);
	assert_error_format();
	ck_assert_int_eq(sfs("secret", "frob", NULL), 2);
	assert_error_format();
	ck_assert_int_eq(sfs("secret", "show", NULL), 2);
	assert_error_format();
	assert_err_has("'secretfs secret show --help'");
	ck_assert_int_eq(sfs("version", "add", "db", NULL), 2);
	assert_error_format();
}
END_TEST

START_TEST(test_usage_missing_and_extra_argument)
{
	ck_assert_int_eq(sfs("secret", "show", NULL), 2);
	assert_err_has("secretfs: secret show: missing argument");
	ck_assert_int_eq(sfs("version", "get", NULL), 2);
	ck_assert_int_eq(sfs("key", "create", NULL), 2);
	ck_assert_int_eq(sfs("version", "set-default", "db", NULL), 2);
	ck_assert_int_eq(sfs("secret", "show", "a", "b", NULL), 2);
	assert_err_has("secretfs: secret show: unexpected argument 'b'");
	ck_assert_int_eq(sfs("secret", "list", "x", NULL), 2);
	ck_assert_int_eq(sfs("role", "grant", "manager", NULL), 2);
}
END_TEST

START_TEST(test_usage_bad_number)
{
	ck_assert_int_eq(sfs("version", "get", "db", "x", NULL), 2);
	assert_err_has("bad version 'x'");
	ck_assert_int_eq(sfs("version", "set-default", "db", "0", NULL), 2);
	ck_assert_int_eq(sfs("version", "destroy", "db", "-1", NULL), 2);
	ck_assert_int_eq(sfs("version", "copy", "db", "1x", NULL), 2);
	ck_assert_int_eq(sfs("version", "activate", "db", "4294967296", NULL),
			 2);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "v",
			     "--expect", "two", NULL),
			 2);
}
END_TEST

START_TEST(test_usage_conflicting_values)
{
	tu_write_file(path_in("v"), "x", 1, 0600);
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "a",
			     "--file", path_in("v"), NULL),
			 2);
	assert_err_has("secretfs: secret create: ");
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "a", "--kv",
			     "k=v", NULL),
			 2);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "a",
			     "--value", "b", NULL),
			 2);
}
END_TEST

START_TEST(test_value_file_missing)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--file",
			     path_in("nothing"), NULL),
			 1);
	assert_err_has("secretfs: cannot read '");
	assert_err_has("': no such file or directory\n");
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 1);
}
END_TEST

START_TEST(test_usage_version_add_needs_value)
{
	ck_assert_int_eq(sfs("version", "add", "db", NULL), 2);
	assert_err_has("secretfs: version add: missing value");
}
END_TEST

START_TEST(test_usage_update)
{
	ck_assert_int_eq(sfs("secret", "update", "db", NULL), 2);
	assert_err_has("nothing to update");
	ck_assert_int_eq(sfs("secret", "update", "db", "--mode", "0999",
			     NULL),
			 2);
	ck_assert_int_eq(sfs("secret", "update", "db", "--mode", "rw", NULL),
			 2);
	ck_assert_int_eq(sfs("secret", "update", "db", "--access-control",
			     "yes", NULL),
			 2);
	ck_assert_int_eq(sfs("secret", "update", "db", "--owner", "12x", NULL),
			 2);
}
END_TEST

/* --- init and the master key ------------------------------------------- */

START_TEST(test_init_prints_paths)
{
	struct stat st;
	char key[600];

	ck_assert_int_eq(sfs("init", NULL), 0);
	assert_out_has(store);
	snprintf(key, sizeof(key), "%s/master.key", store);
	assert_out_has("master.key");
	ck_assert_int_eq(stat(key, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0400);
	ck_assert_int_eq(sfs("secret", "list", NULL), 0);
}
END_TEST

START_TEST(test_init_json)
{
	struct sfs_json *j;

	ck_assert_int_eq(sfs("--json", "init", NULL), 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_ptr_nonnull(strstr(sfs_json_get_str(j, "master_key"),
				     "master.key"));
	sfs_json_free(j);
}
END_TEST

START_TEST(test_init_twice_fails)
{
	ck_assert_int_eq(sfs("init", NULL), 1);
	assert_error_format();
}
END_TEST

START_TEST(test_no_store_fails)
{
	snprintf(store, sizeof(store), "%s/none", tmp);
	ck_assert_int_eq(sfs("secret", "list", NULL), 1);
	assert_err_has("secretfs: cannot open store: ");
}
END_TEST

static void write_other_key(const char *path, int mode)
{
	unsigned char k[32];
	size_t i;

	for (i = 0; i < sizeof(k); i++)
		k[i] = (unsigned char)(i * 7 + 1);
	tu_write_file(path, k, sizeof(k), mode);
}

START_TEST(test_wrong_master_key)
{
	write_other_key(path_in("other.key"), 0400);
	ck_assert_int_eq(sfs("--master-key", path_in("other.key"), "secret",
			     "create", "db", "--value", "x", NULL),
			 1);
	assert_error_format();
	assert_err_has("secretfs: cannot open store: wrong master key");
	/* nothing changed */
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 1);
	ck_assert_int_eq(sfs("secret", "list", NULL), 0);
	ck_assert_ptr_null(strstr(r.out, "db"));
}
END_TEST

/* The system's reason is lowercase too, as every message. */
START_TEST(test_missing_key_file_lowercase)
{
	char want[800];

	ck_assert_int_eq(sfs("--master-key", path_in("none.key"), "secret",
			     "list", NULL),
			 1);
	snprintf(want, sizeof(want), "secretfs: cannot open store: cannot "
		 "open key file '%s': no such file or directory\n",
		 path_in("none.key"));
	assert_err(want);
}
END_TEST

START_TEST(test_master_key_env)
{
	char key[600], env[700];
	const char *e[2] = { env, NULL };

	snprintf(key, sizeof(key), "%s/master.key", store);
	ck_assert_int_eq(rename(key, path_in("moved.key")), 0);
	ck_assert_int_eq(sfs("secret", "list", NULL), 1);
	snprintf(env, sizeof(env), "SECRETFS_MASTER_KEY=%s",
		 path_in("moved.key"));
	ck_assert_int_eq(sfs_env(e, "--store", store, "secret", "list", NULL),
			 0);
	ck_assert_int_eq(sfs("--master-key", path_in("moved.key"), "secret",
			     "list", NULL),
			 0);
}
END_TEST

START_TEST(test_master_key_group_readable_refused)
{
	char key[600];

	snprintf(key, sizeof(key), "%s/master.key", store);
	ck_assert_int_eq(chmod(key, 0440), 0);
	ck_assert_int_eq(sfs("secret", "list", NULL), 1);
	assert_error_format();
	ck_assert_int_eq(chmod(key, 0400), 0);
	ck_assert_int_eq(sfs("secret", "list", NULL), 0);
}
END_TEST

START_TEST(test_passphrase_store)
{
	char env[700], bad[700];
	const char *e[2] = { env, NULL }, *b[2] = { bad, NULL };
	char key[600];

	tu_write_file(path_in("pass"), "correct horse\n", 14, 0600);
	tu_write_file(path_in("wrong"), "wrong horse\n", 12, 0600);
	ck_assert_int_eq(sfs("init", "--passphrase-file", path_in("pass"),
			     NULL),
			 0);
	snprintf(key, sizeof(key), "%s/master.key", store);
	ck_assert_int_ne(access(key, F_OK), 0);
	snprintf(env, sizeof(env), "SECRETFS_PASSPHRASE_FILE=%s",
		 path_in("pass"));
	snprintf(bad, sizeof(bad), "SECRETFS_PASSPHRASE_FILE=%s",
		 path_in("wrong"));
	ck_assert_int_eq(sfs_env(e, "--store", store, "secret", "create",
				 "db", "--value", "pp", NULL),
			 0);
	ck_assert_int_eq(sfs_env(e, "--store", store, "version", "get", "db",
				 NULL),
			 0);
	assert_out("pp");
	ck_assert_int_eq(sfs_env(b, "--store", store, "version", "get", "db",
				 NULL),
			 1);
	assert_error_format();
	ck_assert_uint_eq(r.out_len, 0);
	/* no passphrase file and no terminal: refused, saying what to do */
	ck_assert_int_eq(sfs("secret", "list", NULL), 1);
	assert_err("secretfs: cannot open store: the store needs its "
		   "passphrase: set SECRETFS_PASSPHRASE_FILE or run on a "
		   "terminal\n");
	/* no passphrase file: asked on the terminal */
	ck_assert_int_eq(sfs_tty("Passphrase: ", "correct horse\n", "version",
				 "get", "db", NULL),
			 0);
	assert_out("pp");
	ck_assert_int_eq(sfs_tty("Passphrase: ", "wrong horse\n", "version",
				 "get", "db", NULL),
			 1);
	assert_err_has("secretfs: cannot open store: ");
	ck_assert_uint_eq(r.out_len, 0);
}
END_TEST

/* Another user's store (0700) is refused as not ours, not as missing. */
START_TEST(test_other_users_store_denied)
{
	if (geteuid() != 0)
		return; /* needs root to run as another user */
	ck_assert_int_eq(chmod(tmp, 0755), 0);
	ck_assert_int_eq(sfs_as(4321, "secret", "list", NULL), 1);
	assert_error_format();
	assert_err_has("permission denied");
	ck_assert_ptr_null(strstr(r.err, "init"));
}
END_TEST

/* init with both a key file and a passphrase is ambiguous: bad usage,
 * and nothing is made. */
START_TEST(test_init_key_and_passphrase_refused)
{
	write_other_key(path_in("other.key"), 0400);
	tu_write_file(path_in("pass"), "correct horse\n", 14, 0600);
	ck_assert_int_eq(sfs("--master-key", path_in("other.key"), "init",
			     "--passphrase-file", path_in("pass"), NULL),
			 2);
	assert_error_format();
	assert_err_has("not both");
	ck_assert_int_ne(access(store, F_OK), 0);
}
END_TEST

START_TEST(test_store_option_beats_env)
{
	char env[700], other[600];
	const char *e[2] = { env, NULL };

	snprintf(other, sizeof(other), "%s/other", tmp);
	snprintf(env, sizeof(env), "SECRETFS_STORE=%s", other);
	ck_assert_int_eq(sfs("secret", "create", "db", NULL), 0);
	/* $SECRETFS_STORE names an uninitialised store: --store wins */
	ck_assert_int_eq(sfs_env(e, "--store", store, "secret", "show", "db",
				 NULL),
			 0);
	ck_assert_int_eq(sfs_env(e, "secret", "show", "db", NULL), 1);
	/* and $SECRETFS_STORE alone is used */
	snprintf(env, sizeof(env), "SECRETFS_STORE=%s", store);
	ck_assert_int_eq(sfs_env(e, "secret", "show", "db", NULL), 0);
}
END_TEST

/* --- values ------------------------------------------------------------ */

START_TEST(test_get_exact_bytes)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "s3cret",
			     NULL),
			 0);
	assert_out("created secret 'db' with version 1\n");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	assert_out("s3cret");
	ck_assert_uint_eq(r.err_len, 0);
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 0);
	assert_out("s3cret");
	ck_assert_int_eq(sfs("version", "get", "db", "default", NULL), 0);
	assert_out("s3cret");
}
END_TEST

static const unsigned char binary[] = { 0x00, 'a', '\n', 0xff, 0xfe, 0x00,
					'\r', 0x80, '\n' };

START_TEST(test_get_binary_file)
{
	tu_write_file(path_in("bin"), binary, sizeof(binary), 0600);
	ck_assert_int_eq(sfs("secret", "create", "b", "--file", path_in("bin"),
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "b", NULL), 0);
	ck_assert_uint_eq(r.out_len, sizeof(binary));
	ck_assert_mem_eq(r.out, binary, sizeof(binary));
}
END_TEST

START_TEST(test_value_from_stdin)
{
	ck_assert_int_eq(sfs("secret", "create", "db", NULL), 0);
	assert_out("created secret 'db'\n");
	ck_assert_int_eq(sfs_in(binary, sizeof(binary), "version", "add", "db",
				"--file", "-", NULL),
			 0);
	assert_out("added version 1 to 'db'\n");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	ck_assert_uint_eq(r.out_len, sizeof(binary));
	ck_assert_mem_eq(r.out, binary, sizeof(binary));
}
END_TEST

START_TEST(test_value_size_limit)
{
	char *big = malloc(65537);

	memset(big, 'z', 65537);
	ck_assert_int_eq(sfs("secret", "create", "db", NULL), 0);
	tu_write_file(path_in("big"), big, 65537, 0600);
	ck_assert_int_eq(sfs("version", "add", "db", "--file", path_in("big"),
			     NULL),
			 1);
	assert_err_has("secretfs: cannot add version to 'db': ");
	ck_assert_ptr_null(strstr(r.err, "zzzz"));
	tu_write_file(path_in("big"), big, 65536, 0600);
	ck_assert_int_eq(sfs("version", "add", "db", "--file", path_in("big"),
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	ck_assert_uint_eq(r.out_len, 65536);
	free(big);
}
END_TEST

START_TEST(test_kv_round_trip)
{
	ck_assert_int_eq(sfs("secret", "create", "app", "--kv", "user=admin",
			     "--kv", "pass=a=b c", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "app", "--kv", NULL), 0);
	assert_out("user=admin\npass=a=b c\n");
	ck_assert_int_eq(sfs("version", "get", "app", NULL), 0);
	assert_out("{\"user\":\"admin\",\"pass\":\"a=b c\"}");
	ck_assert_int_eq(sfs("version", "list", "app", NULL), 0);
	assert_out_has(" kv ");
}
END_TEST

START_TEST(test_kv_refuses_other_formats)
{
	ck_assert_int_eq(sfs("secret", "create", "t", "--value", "plain",
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "t", "--kv", NULL), 1);
	assert_error_format();
	assert_err_has("not key/value");
	ck_assert_uint_eq(r.out_len, 0);
	ck_assert_int_eq(sfs("version", "add", "t", "--value", "[1,2]", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "t", "--kv", NULL), 1);
	assert_err_has("not key/value");
	ck_assert_int_eq(sfs("version", "add", "t", "--value", "{\"a\":1}",
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "t", "--kv", NULL), 1);
	ck_assert_uint_eq(r.out_len, 0);
}
END_TEST

/* A malformed --kv pair is bad usage (exit 2), like any malformed
 * option, and its text (maybe a value) is not echoed. */
START_TEST(test_kv_bad_pair)
{
	ck_assert_int_eq(sfs("secret", "create", "a", "--kv", "novalue",
			     NULL),
			 2);
	assert_err("secretfs: secret create: --kv: argument 1: expected "
		   "KEY=VALUE with a non-empty KEY (see 'secretfs secret "
		   "create --help')\n");
	ck_assert_int_eq(sfs("secret", "show", "a", NULL), 1);
	ck_assert_int_eq(sfs("secret", "create", "a", "--kv", "k=1", "--kv",
			     "k=2", NULL),
			 2);
	assert_error_format();
	ck_assert_ptr_null(strstr(r.err, "=2"));
}
END_TEST

START_TEST(test_json_get)
{
	struct sfs_json *j;

	ck_assert_int_eq(sfs("secret", "create", "db", "--value",
			     "tab\there \"q\" é", NULL),
			 0);
	ck_assert_int_eq(sfs("--json", "version", "get", "db", NULL), 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(sfs_json_get_str(j, "secret"), "db");
	ck_assert_int_eq(sfs_json_get_int(j, "version", 0), 1);
	ck_assert_str_eq(sfs_json_get_str(j, "format"), "text");
	ck_assert_str_eq(sfs_json_get_str(j, "value"), "tab\there \"q\" é");
	sfs_json_free(j);
}
END_TEST

START_TEST(test_json_get_binary)
{
	struct sfs_json *j;

	tu_write_file(path_in("bin"), binary, sizeof(binary), 0600);
	ck_assert_int_eq(sfs("secret", "create", "b", "--file", path_in("bin"),
			     NULL),
			 0);
	ck_assert_int_eq(sfs("--json", "version", "get", "b", NULL), 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_ptr_null(sfs_json_get_str(j, "value"));
	ck_assert_str_eq(sfs_json_get_str(j, "value_base64"), "AGEK//4ADYAK");
	sfs_json_free(j);
}
END_TEST

/* --- lifecycle --------------------------------------------------------- */

START_TEST(test_expect_compare_and_set)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "1", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "2",
			     "--expect", "2", NULL),
			 0);
	assert_out("added version 2 to 'db'\n");
	ck_assert_int_eq(sfs("version", "add", "--expect", "2", "db",
			     "--value", "x", NULL),
			 1);
	assert_err_has("secretfs: cannot add version to 'db': ");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	assert_out("2");
}
END_TEST

START_TEST(test_set_default)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "one",
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "two", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "set-default", "db", "1", NULL), 0);
	assert_out("set default version of 'db' to 1\n");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	assert_out("one");
	ck_assert_int_eq(sfs("version", "set-default", "db", "9", NULL), 1);
	assert_error_format();
}
END_TEST

START_TEST(test_set_default_deactivated_refused)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "one",
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "two", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "deactivate", "db", "1", NULL), 0);
	assert_out("deactivated version 1 of 'db'\n");
	ck_assert_int_eq(sfs("version", "set-default", "db", "1", NULL), 1);
	assert_err_has("secretfs: cannot set default version of 'db' to 1: ");
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 1);
	assert_error_format();
	ck_assert_uint_eq(r.out_len, 0);
	ck_assert_int_eq(sfs("version", "activate", "db", "1", NULL), 0);
	ck_assert_int_eq(sfs("version", "set-default", "db", "1", NULL), 0);
}
END_TEST

START_TEST(test_destroy_and_copy)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "one",
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "two", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "copy", "db", "1", NULL), 0);
	assert_out_has("added version 3 to 'db'");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	assert_out("one");
	ck_assert_int_eq(sfs("version", "destroy", "db", "1", NULL), 1);
	assert_err("secretfs: cannot destroy version 1 of 'db': the version "
		   "and its secret are active: deactivate it first\n");
	ck_assert_int_eq(sfs("version", "deactivate", "db", "1", NULL), 0);
	ck_assert_int_eq(sfs("version", "destroy", "db", "1", NULL), 0);
	assert_out("destroyed version 1 of 'db'\n");
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 1);
	assert_error_format();
	ck_assert_int_eq(sfs("version", "copy", "db", "1", NULL), 1);
	ck_assert_int_eq(sfs("version", "list", "db", NULL), 0);
	assert_out_has("destroyed");
}
END_TEST

START_TEST(test_create_without_value)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--description",
			     "orders", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
	assert_out_has("default_version: none\n");
	assert_out_has("description: orders\n");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 1);
	assert_error_format();
	ck_assert_int_eq(sfs("secret", "create", "db", NULL), 1);
	assert_err_has("secretfs: cannot create secret 'db': ");
	ck_assert_int_eq(sfs("secret", "create", "bad/name", NULL), 1);
	assert_error_format();
}
END_TEST

/* A secret with its only version destroyed: deactivated, deletable. */
static void make_deletable(const char *name)
{
	ck_assert_int_eq(sfs("secret", "create", name, "--value", "v", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "deactivate", name, NULL), 0);
	ck_assert_int_eq(sfs("version", "destroy", name, "1", NULL), 0);
}

START_TEST(test_delete_lifecycle)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "delete", "db", "--confirm", "db",
			     NULL),
			 1);
	assert_err_has("secretfs: cannot delete secret 'db': ");
	ck_assert_int_eq(sfs("secret", "deactivate", "db", NULL), 0);
	assert_out("deactivated secret 'db'\n");
	ck_assert_int_eq(sfs("secret", "delete", "db", "--confirm", "db",
			     NULL),
			 1);
	ck_assert_int_eq(sfs("version", "destroy", "db", "1", NULL), 0);
	ck_assert_int_eq(sfs("secret", "delete", "--confirm", "db", "db",
			     NULL),
			 0);
	assert_out("deleted secret 'db'\n");
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 1);
	assert_error_format();
}
END_TEST

/* A refusal says why, once, in words: not just the errno's text, and
 * without repeating the subject. */
START_TEST(test_refusals_say_why)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "1", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "create", "db", NULL), 1);
	assert_err("secretfs: cannot create secret 'db': already exists\n");
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "2",
			     "--expect", "5", NULL),
			 1);
	assert_err("secretfs: cannot add version to 'db': version 2 is "
		   "next, not 5\n");
	ck_assert_int_eq(sfs("secret", "delete", "db", "--confirm", "db",
			     NULL),
			 1);
	assert_err("secretfs: cannot delete secret 'db': the secret is "
		   "active: deactivate it first\n");
	ck_assert_int_eq(sfs("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_eq(sfs("secret", "delete", "db", "--confirm", "db",
			     NULL),
			 1);
	assert_err("secretfs: cannot delete secret 'db': 1 version is not "
		   "destroyed\n");
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 1);
	assert_err("secretfs: cannot read version 1 of 'db': the secret is "
		   "deactivated\n");
	ck_assert_int_eq(sfs("version", "get", "nosuch", NULL), 1);
	assert_err("secretfs: cannot read 'nosuch': no such secret\n");
	ck_assert_int_eq(sfs("key", "show", "nosuch", NULL), 1);
	assert_err("secretfs: cannot show key 'nosuch': no such key\n");
	ck_assert_int_eq(sfs("secret", "create", "x/y", NULL), 1);
	assert_err("secretfs: cannot create secret 'x/y': invalid name: use "
		   "1-128 bytes of A-Z a-z 0-9 . _ -, starting with a letter "
		   "or digit\n");
	ck_assert_int_eq(sfs("role", "grant", "boss", "uid:1", NULL), 1);
	assert_err("secretfs: cannot grant role 'boss' to 'uid:1': unknown "
		   "role (manager, kms-user or kms-viewer)\n");
}
END_TEST

/* The core's subject is left out when the command's own words name its
 * object (or the secret of its version), and kept when it says more: a
 * version the command did not number, a name the line cut, a name with a
 * quote where the line names it bare. */
START_TEST(test_subject_dropped_only_when_the_command_names_it)
{
	char name[130], want[512];

	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "1", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 1);
	assert_err("secretfs: cannot read version 1 of 'db': the secret is "
		   "deactivated\n");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 1);
	assert_err("secretfs: cannot read 'db': version 1 of 'db': the "
		   "secret is deactivated\n");
	ck_assert_int_eq(sfs("version", "get", "nosuch", "3", NULL), 1);
	assert_err("secretfs: cannot read version 3 of 'nosuch': no such "
		   "secret\n");
	ck_assert_int_eq(sfs("version", "get", "it's", "3", NULL), 1);
	assert_err("secretfs: cannot read version 3 of 'it's': secret 'it's': "
		   "no such secret\n");
	memset(name, 'b', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_int_eq(sfs("secret", "show", name, NULL), 1);
	snprintf(want, sizeof(want),
		 "secretfs: cannot show secret '%s': secret '%.128s': no such "
		 "secret\n",
		 name, name);
	assert_err(want);
	ck_assert_int_eq(sfs("role", "grant", "manager", "foo:bar", NULL), 1);
	assert_err("secretfs: cannot grant role 'manager' to 'foo:bar': "
		   "expected uid:N, gid:N, NAME, user:NAME or group:NAME\n");
	ck_assert_int_eq(sfs("role", "grant", "manager", "uid:1'", NULL), 1);
	assert_err("secretfs: cannot grant role 'manager' to 'uid:1'': bad "
		   "principal 'uid:1'': expected uid:N, gid:N, NAME, user:NAME "
		   "or group:NAME\n");
}
END_TEST

START_TEST(test_delete_confirm_mismatch)
{
	make_deletable("db");
	ck_assert_int_eq(sfs("secret", "delete", "db", "--confirm", "dbx",
			     NULL),
			 1);
	assert_err_has("confirmation 'dbx' does not match");
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
}
END_TEST

START_TEST(test_delete_without_confirm_not_a_tty)
{
	make_deletable("db");
	ck_assert_int_eq(sfs_in("db\n", 3, "secret", "delete", "db", NULL), 1);
	assert_err_has("--confirm");
	assert_error_format();
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
}
END_TEST

START_TEST(test_delete_prompt_on_terminal)
{
	make_deletable("db");
	make_deletable("keep");
	ck_assert_int_eq(sfs_tty(NULL, "nope\n", "secret", "delete", "keep",
				 NULL),
			 1);
	assert_err_has("Type the secret's name to confirm deletion: ");
	assert_err_has("confirmation 'nope' does not match");
	ck_assert_int_eq(sfs_tty(NULL, "db\n", "secret", "delete", "db", NULL),
			 0);
	assert_out("deleted secret 'db'\n");
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 1);
	ck_assert_int_eq(sfs("secret", "show", "keep", NULL), 0);
	/* no prompt for a secret that is not there */
	ck_assert_int_eq(sfs_tty(NULL, "ghost\n", "secret", "delete",
				 "ghost", NULL),
			 1);
	assert_err("secretfs: cannot delete secret 'ghost': no such "
		   "secret\n");
}
END_TEST

START_TEST(test_secret_activate)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 1);
	assert_error_format();
	ck_assert_int_eq(sfs("secret", "activate", "db", NULL), 0);
	assert_out("activated secret 'db'\n");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	assert_out("v");
}
END_TEST

/* --- show, list, update, json ------------------------------------------ */

START_TEST(test_secret_show_fields)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
	assert_out_has("\nname: db\n");
	ck_assert(!strncmp(r.out, "id: ", 4));
	assert_out_has("\nstatus: active\n");
	assert_out_has("\naccess_control: disabled\n");
	assert_out_has("\nmode: 0440\n");
	assert_out_has("\ndefault_version: 1\n");
	assert_out_has("\nlatest_version: 1\n");
	assert_out_has("\nkms_key: service (");
	assert_out_has("\ncreated_at: 20");
	assert_out_has("\ncreated_by: uid:");
}
END_TEST

START_TEST(test_secret_show_json)
{
	struct sfs_json *j;

	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v",
			     "--description", "orders", NULL),
			 0);
	ck_assert_int_eq(sfs("--json", "secret", "show", "db", NULL), 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(sfs_json_get_str(j, "name"), "db");
	ck_assert_str_eq(sfs_json_get_str(j, "description"), "orders");
	ck_assert_str_eq(sfs_json_get_str(j, "status"), "active");
	ck_assert_str_eq(sfs_json_get_str(j, "mode"), "0440");
	ck_assert_str_eq(sfs_json_get_str(j, "access_control"), "disabled");
	ck_assert_int_eq(sfs_json_get_int(j, "default_version", 0), 1);
	ck_assert_int_eq(strlen(sfs_json_get_str(j, "id")), 36);
	ck_assert(!strncmp(sfs_json_get_str(j, "created_at"), "20", 2));
	sfs_json_free(j);
}
END_TEST

START_TEST(test_secret_list)
{
	ck_assert_int_eq(sfs("secret", "list", NULL), 0);
	ck_assert(!strncmp(r.out, "NAME", 4));
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "create", "app", NULL), 0);
	ck_assert_int_eq(sfs("secret", "list", NULL), 0);
	assert_prefix("NAME  STATUS  DEFAULT  LATEST  KEY      "
		      "ACCESS-CONTROL\n");
	assert_out_has("\ndb    active  1        1       service  disabled\n");
	ck_assert_int_eq(sfs("--json", "secret", "list", NULL), 0);
	ck_assert(r.out[0] == '[');
	assert_out_has("\"name\":\"db\"");
	assert_out_has("\"name\":\"app\"");
}
END_TEST

START_TEST(test_secret_update)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "update", "db", "--description", "new",
			     "--mode", "0400", "--access-control", "on",
			     "--allow", "uid:4242", "--owner", "0", "--group",
			     "0", NULL),
			 0);
	assert_out("updated secret 'db'\n");
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
	assert_out_has("\ndescription: new\n");
	assert_out_has("\nmode: 0400\n");
	assert_out_has("\naccess_control: enabled\n");
	assert_out_has("\nallowed_principals: uid:4242");
	assert_out_has("\nowner: 0");
	ck_assert_int_eq(sfs("secret", "update", "db", "--allow", "bogus",
			     NULL),
			 1);
	assert_error_format();
	ck_assert_int_eq(sfs("secret", "update", "nope", "--mode", "0400",
			     NULL),
			 1);
	ck_assert_int_eq(sfs("secret", "update", "db", "--group",
			     "no-such-group-xyz", NULL),
			 1);
	assert_err_has("secretfs: cannot update secret 'db': no such group "
		       "'no-such-group-xyz'");
	ck_assert_int_eq(sfs("secret", "update", "db", "--owner", "root",
			     "--group", "root", NULL),
			 0);
}
END_TEST

START_TEST(test_version_list)
{
	struct sfs_json *j;

	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "one",
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--kv", "a=b", NULL), 0);
	ck_assert_int_eq(sfs("version", "list", "db", NULL), 0);
	assert_prefix("VERSION  STATE   DEFAULT  FORMAT  SIZE  KEY      "
		      "CREATED\n");
	assert_out_has("\n1        active  no       text    3     service  ");
	assert_out_has("\n2        active  yes      kv      9     service  ");
	ck_assert_int_eq(sfs("--json", "version", "add", "db", "--value", "x",
			     NULL),
			 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(sfs_json_get_int(j, "version", 0), 3);
	ck_assert_str_eq(sfs_json_get_str(j, "state"), "active");
	ck_assert_str_eq(sfs_json_get_str(j, "format"), "text");
	sfs_json_free(j);
}
END_TEST

/* --- keys and roles ---------------------------------------------------- */

START_TEST(test_key_lifecycle)
{
	ck_assert_int_eq(sfs("key", "create", "k1", "--description", "billing",
			     NULL),
			 0);
	assert_out("created key 'k1'\n");
	ck_assert_int_eq(sfs("key", "create", "k1", NULL), 1);
	assert_err_has("secretfs: cannot create key 'k1': ");
	ck_assert_int_eq(sfs("secret", "create", "db", "--key", "k1",
			     "--value", "v", NULL),
			 0);
	ck_assert_int_eq(sfs("key", "deactivate", "k1", NULL), 0);
	assert_out("deactivated key 'k1'\n");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 1);
	assert_err_has("secretfs: cannot read 'db': ");
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "w", NULL), 1);
	ck_assert_int_eq(sfs("key", "activate", "k1", NULL), 0);
	assert_out("activated key 'k1'\n");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	assert_out("v");
	ck_assert_int_eq(sfs("key", "rotate", "k1", NULL), 0);
	assert_out("rotated key 'k1' to version 2\n");
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "w", NULL), 0);
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 0);
	assert_out("v");
	ck_assert_int_eq(sfs("key", "delete", "k1", NULL), 1);
	assert_err_has("secretfs: cannot delete key 'k1': ");
	ck_assert_int_eq(sfs("key", "delete", "service", NULL), 1);
	ck_assert_int_eq(sfs("key", "show", "k1", NULL), 0);
	assert_out_has("\nname: k1\n");
	assert_out_has("\ntype: user\n");
	assert_out_has("\nstate: active\n");
	assert_out_has("\nversion: 2\n");
}
END_TEST

START_TEST(test_key_list_and_delete)
{
	struct sfs_json *j;

	ck_assert_int_eq(sfs("key", "create", "k1", NULL), 0);
	ck_assert_int_eq(sfs("key", "list", NULL), 0);
	ck_assert(!strncmp(r.out, "NAME", 4));
	assert_out_has("TYPE");
	assert_out_has("\nservice  service  active  1        ");
	assert_out_has("\nk1       user     active  1        ");
	ck_assert_int_eq(sfs("--json", "key", "show", "k1", NULL), 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(sfs_json_get_str(j, "type"), "user");
	ck_assert_str_eq(sfs_json_get_str(j, "state"), "active");
	sfs_json_free(j);
	ck_assert_int_eq(sfs("key", "delete", "k1", NULL), 0);
	assert_out("deleted key 'k1'\n");
	ck_assert_int_eq(sfs("key", "show", "k1", NULL), 1);
	assert_error_format();
}
END_TEST

START_TEST(test_change_key)
{
	ck_assert_int_eq(sfs("key", "create", "k2", NULL), 0);
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "change-key", "db", "k2", NULL), 0);
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
	assert_out_has("\nkms_key: k2 (");
	ck_assert_int_eq(sfs("secret", "change-key", "db", "nokey", NULL), 1);
	assert_err_has("secretfs: cannot change key of secret 'db': ");
}
END_TEST

START_TEST(test_roles)
{
	ck_assert_int_eq(sfs("role", "grant", "manager", "uid:4242", NULL), 0);
	assert_out_has("granted role 'manager'");
	ck_assert_int_eq(sfs("role", "grant", "kms-viewer", "gid:77", NULL),
			 0);
	ck_assert_int_eq(sfs("role", "list", NULL), 0);
	ck_assert(!strncmp(r.out, "ROLE", 4));
	assert_out_has("manager");
	assert_out_has("uid:4242");
	assert_out_has("gid:77");
	ck_assert_int_eq(sfs("role", "revoke", "manager", "uid:4242", NULL),
			 0);
	ck_assert_int_eq(sfs("role", "list", NULL), 0);
	ck_assert_ptr_null(strstr(r.out, "uid:4242"));
	ck_assert_int_eq(sfs("role", "revoke", "manager", "uid:4242", NULL),
			 1);
	assert_error_format();
	ck_assert_int_eq(sfs("role", "grant", "overlord", "uid:1", NULL), 1);
	assert_error_format();
	ck_assert_int_eq(sfs("--json", "role", "list", NULL), 0);
	ck_assert(r.out[0] == '[');
	assert_out_has("\"principal\":\"gid:77\"");
}
END_TEST

/* --- audit and plaintext ----------------------------------------------- */

START_TEST(test_audit_lines)
{
	struct sfs_json *j;
	char *line, *save = NULL;
	int n = 0;

	ck_assert_int_eq(sfs("secret", "create", "db", "--value",
			     "PLAINTEXT-9f3a", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "create", "other", NULL), 0);
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	ck_assert_int_eq(sfs("version", "get", "db", "7", NULL), 1);
	ck_assert_int_eq(sfs("audit", NULL), 0);
	ck_assert_ptr_null(strstr(r.out, "PLAINTEXT-9f3a"));
	for (line = strtok_r(r.out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++) {
		j = sfs_json_parse(line, strlen(line));
		ck_assert_msg(j != NULL, "not json: %s", line);
		ck_assert_ptr_nonnull(sfs_json_get_str(j, "op"));
		ck_assert_ptr_nonnull(sfs_json_get_str(j, "result"));
		sfs_json_free(j);
	}
	ck_assert_int_ge(n, 3);
	ck_assert_int_eq(sfs("audit", "--secret", "other", NULL), 0);
	ck_assert_ptr_null(strstr(r.out, "\"db\""));
	assert_out_has("\"other\"");
	ck_assert_int_eq(sfs("audit", "--since", "2200-01-01", NULL), 0);
	ck_assert_uint_eq(r.out_len, 0);
	ck_assert_int_eq(sfs("audit", "--since", "2000-01-01T00:00:00Z",
			     NULL),
			 0);
	ck_assert_uint_gt(r.out_len, 0);
	ck_assert_int_eq(sfs("audit", "--since", "yesterday", NULL), 2);
}
END_TEST

/* Output that cannot be written is a failure (exit 1), audit included. */
START_TEST(test_output_error_fails)
{
	static const char *const cmds[] = { "secret list", "audit" };
	const char *argv[8];
	char script[200];
	size_t i;

	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		snprintf(script, sizeof(script),
			 "exec \"$0\" --store \"$1\" %s >/dev/full", cmds[i]);
		argv[0] = "/bin/sh";
		argv[1] = "-c";
		argv[2] = script;
		argv[3] = bin;
		argv[4] = store;
		argv[5] = NULL;
		tu_proc_release(&r);
		memset(&r, 0, sizeof(r));
		r.argv = argv;
		ck_assert_int_eq(tu_proc_run(&r), 0);
		ck_assert_msg(r.status == 1, "%s: exit %d", cmds[i], r.status);
		assert_err("secretfs: cannot write output: no space left on "
			   "device\n");
	}
}
END_TEST

START_TEST(test_audit_follow)
{
	const char *argv[] = { bin, "--store", store, "audit", "--follow",
			       "--secret", "late", NULL };
	struct tu_proc f;

	memset(&f, 0, sizeof(f));
	f.argv = argv;
	f.env = clean_env;
	ck_assert_int_eq(tu_proc_start(&f), 0);
	ck_assert_int_eq(sfs("secret", "create", "early", NULL), 0);
	ck_assert_int_eq(sfs("secret", "create", "late", NULL), 0);
	ck_assert_int_eq(tu_proc_wait_output(&f, "\"secret.create\""), 0);
	ck_assert_int_eq(tu_proc_stop(&f, SIGTERM), 0);
	ck_assert_int_eq(f.status, 128 + SIGTERM);
	ck_assert_ptr_nonnull(strstr(f.out, "\"late\""));
	ck_assert_ptr_null(strstr(f.out, "\"early\""));
	tu_proc_release(&f);
}
END_TEST

START_TEST(test_json_changes)
{
	struct sfs_json *j;

	ck_assert_int_eq(sfs("--json", "secret", "create", "s",
			     "--access-control", "--value", "q", NULL),
			 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(sfs_json_get_str(j, "access_control"), "enabled");
	ck_assert_int_eq(sfs_json_get_int(j, "latest_version", 0), 1);
	sfs_json_free(j);
	ck_assert_int_eq(sfs("secret", "deactivate", "s", NULL), 0);
	ck_assert_int_eq(sfs("--json", "version", "destroy", "s", "1", NULL),
			 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(sfs_json_get_str(j, "state"), "destroyed");
	sfs_json_free(j);
	ck_assert_int_eq(sfs("--json", "secret", "delete", "s", "--confirm",
			     "s", NULL),
			 0);
	assert_out("{\"secret\":\"s\",\"deleted\":true}\n");
	ck_assert_int_eq(sfs("--json", "key", "create", "k", NULL), 0);
	j = sfs_json_parse(r.out, r.out_len);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(sfs_json_get_str(j, "name"), "k");
	ck_assert_str_eq(sfs_json_get_str(j, "type"), "user");
	sfs_json_free(j);
}
END_TEST

static const char *needle;
static int needle_found;

static int grep_one(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	size_t len;
	char *data;

	(void)st;
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	data = tu_read_file(path, &len);
	if (data && memmem(data, len, needle, strlen(needle)))
		needle_found = 1;
	free(data);
	return 0;
}

/* Change the last byte of every stored ciphertext (test-only: straight into the
 * database, as an attacker with the disk would). */
static void tamper_values(void)
{
	char db[600];
	sqlite3 *h;

	snprintf(db, sizeof(db), "%s/secretfs.db", store);
	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	/* the last byte (the tag's) made different */
	ck_assert_int_eq(sqlite3_exec(h, "UPDATE versions SET ciphertext = "
				      "substr(ciphertext, 1, "
				      "length(ciphertext) - 1) || CASE WHEN "
				      "substr(ciphertext, -1) = X'00' THEN "
				      "X'01' ELSE X'00' END",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	ck_assert_int_gt(sqlite3_changes(h), 0);
	sqlite3_close(h);
}

/* Tampered data is refused, nothing is printed, and the message names the
 * version even when the command named none. */
START_TEST(test_tampered_value_refused)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "s3cret",
			     NULL),
			 0);
	tamper_values();
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 1);
	ck_assert_uint_eq(r.out_len, 0);
	assert_err("secretfs: cannot read 'db': version 1 of 'db': stored "
		   "data failed authentication (tampered or corrupt)\n");
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 1);
	assert_err("secretfs: cannot read version 1 of 'db': stored data "
		   "failed authentication (tampered or corrupt)\n");
}
END_TEST

/* n runs of `version add db --value v` one after another; how many
 * failed. Output goes to /dev/null. */
static int add_versions(int n)
{
	int i, status, failed = 0;
	pid_t pid;

	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid == 0) {
			int fd = open("/dev/null", O_RDWR);

			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			unsetenv("SECRETFS_MASTER_KEY");
			execl(bin, bin, "--store", store, "version", "add", "db",
			      "--value", "v", (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	return failed;
}

/* Two writers at once, 25 versions each: every add succeeds and every
 * version is there (no lost update, no busy error). */
START_TEST(test_parallel_adds)
{
	pid_t w[2];
	int i, status;

	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	for (i = 0; i < 2; i++) {
		w[i] = fork();
		ck_assert_int_ge(w[i], 0);
		if (w[i] == 0)
			_exit(add_versions(25));
	}
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(waitpid(w[i], &status, 0), w[i]);
		ck_assert(WIFEXITED(status));
		ck_assert_int_eq(WEXITSTATUS(status), 0);
	}
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
	assert_out_has("latest_version: 51\n");
	assert_out_has("default_version: 51\n");
	ck_assert_int_eq(sfs("version", "list", "db", NULL), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\n51 "));
	ck_assert_ptr_null(strstr(r.out, "\n52 "));
}
END_TEST

/* "ok" from SQLite's integrity check of the database file path. */
static int db_intact(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ok = 0;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
		SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
		SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ok = !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok;
}

/* Backups taken while another process adds versions are each a whole
 * store: intact, and every version they list can be read. */
START_TEST(test_backup_while_writing_is_consistent)
{
	char file[700], dir[700], key[700], want[64], *latest;
	pid_t writer;
	int i, status;
	unsigned n;

	snprintf(key, sizeof(key), "%s/master.key", store);
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "v", NULL),
			 0);
	writer = fork();
	ck_assert_int_ge(writer, 0);
	if (writer == 0)
		_exit(add_versions(20));
	for (i = 0; i < 3; i++) {
		snprintf(file, sizeof(file), "%s/b%d.db", tmp, i);
		ck_assert_int_eq(sfs("backup", file, NULL), 0);
	}
	ck_assert_int_eq(waitpid(writer, &status, 0), writer);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (i = 0; i < 3; i++) {
		snprintf(file, sizeof(file), "%s/b%d.db", tmp, i);
		snprintf(dir, sizeof(dir), "%s/r%d", tmp, i);
		ck_assert(db_intact(file));
		ck_assert_int_eq(
		    sfs_env(NULL, "--store", dir, "restore", file, NULL), 0);
		ck_assert_int_eq(sfs_env(NULL, "--store", dir, "--master-key",
					 key, "secret", "show", "db", NULL),
				 0);
		latest = strstr(r.out, "latest_version: ");
		ck_assert_ptr_nonnull(latest);
		ck_assert_int_eq(sscanf(latest, "latest_version: %u", &n), 1);
		ck_assert_uint_ge(n, 1);
		snprintf(want, sizeof(want), "%u", n);
		ck_assert_int_eq(sfs_env(NULL, "--store", dir, "--master-key",
					 key, "version", "get", "db", want,
					 NULL),
				 0);
		assert_out("v");
	}
}
END_TEST

START_TEST(test_store_never_holds_plaintext)
{
	needle = "PLAINTEXT-77c1e0";
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", needle,
			     NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--kv",
			     "k=PLAINTEXT-77c1e0", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 0);
	assert_out(needle);
	needle_found = 0;
	ck_assert_int_eq(nftw(store, grep_one, 16, FTW_PHYS), 0);
	ck_assert_int_eq(needle_found, 0);
	/* nor is it printed by anything but version get */
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
	ck_assert_ptr_null(strstr(r.out, needle));
	ck_assert_int_eq(sfs("--json", "version", "list", "db", NULL), 0);
	ck_assert_ptr_null(strstr(r.out, needle));
}
END_TEST

/* --- everyday commands (issue 14 items 9 to 11 and 13, issue 10.8) ----- */

START_TEST(test_version_flag)
{
	ck_assert_int_eq(sfs_env(NULL, "--version", NULL), 0);
	assert_out("secretfs 0.1.0\n");
	ck_assert_uint_eq(r.err_len, 0);
	ck_assert_int_eq(sfs_env(NULL, "--json", "--version", NULL), 0);
	assert_out("{\"version\":\"0.1.0\"}\n");
}
END_TEST

START_TEST(test_global_option_after_command_says_so)
{
	ck_assert_int_eq(sfs("secret", "list", "--json", NULL), 2);
	assert_err("secretfs: secret list: option '--json': global options "
		   "go before the command (see 'secretfs secret list "
		   "--help')\n");
	ck_assert_int_eq(sfs("version", "get", "db", "--store=x", NULL), 2);
	assert_err("secretfs: version get: option '--store': global options "
		   "go before the command (see 'secretfs version get "
		   "--help')\n");
	ck_assert_int_eq(sfs("audit", "--master-key", "k", NULL), 2);
	assert_err_has("option '--master-key': global options go before the "
		       "command");
	ck_assert_uint_eq(r.out_len, 0);
	/* the daemon's commands too, before anything is mounted */
	ck_assert_int_eq(sfs("mount", path_in("mnt"), "--json", NULL), 2);
	assert_err_has("secretfs: mount: global options go before the "
		       "command");
	ck_assert_int_eq(sfs("umount", path_in("mnt"), "--store", "x", NULL),
			 2);
	assert_err_has("secretfs: umount: option '--store': global options "
		       "go before the command");
	ck_assert_int_eq(sfs("status", path_in("mnt"), "--json", NULL), 2);
	assert_err_has("secretfs: status: option '--json': global options "
		       "go before the command");
}
END_TEST

/* The backup is a usable store once restored, holds no plaintext, and
 * neither command overwrites anything. */
START_TEST(test_backup_restore_round_trip)
{
	char want[2048], file[700], dir[700], key[700];
	struct stat st;
	size_t len;
	char *copy;

	snprintf(file, sizeof(file), "%s", path_in("backup.db"));
	snprintf(dir, sizeof(dir), "%s", path_in("restored"));
	snprintf(key, sizeof(key), "%s/master.key", store);
	ck_assert_int_eq(
	    sfs("secret", "create", "db", "--value", "hunter2-backup", NULL),
	    0);
	ck_assert_int_eq(sfs("backup", file, NULL), 0);
	snprintf(want, sizeof(want), "backed up store '%s' to '%s'\n", store,
		 file);
	assert_out(want);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	copy = tu_read_file(file, &len);
	ck_assert_ptr_nonnull(copy);
	ck_assert_ptr_null(memmem(copy, len, "hunter2-backup", 14));
	free(copy);
	ck_assert_int_eq(sfs_env(NULL, "--store", dir, "restore", file, NULL),
			 0);
	snprintf(want, sizeof(want), "restored '%s' into store '%s'\n", file,
		 dir);
	assert_out(want);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(sfs_env(NULL, "--store", dir, "--master-key", key,
				 "version", "get", "db", NULL),
			 0);
	assert_out("hunter2-backup");
	snprintf(file, sizeof(file), "%s", path_in("second.db"));
	ck_assert_int_eq(sfs("--json", "backup", file, NULL), 0);
	snprintf(want, sizeof(want), "{\"store\":\"%s\",\"file\":\"%s\"}\n",
		 store, file);
	assert_out(want);
}
END_TEST

START_TEST(test_backup_refuses_existing_file)
{
	char want[2048], file[700];
	size_t len;
	char *kept;

	snprintf(file, sizeof(file), "%s", path_in("taken"));
	tu_write_file(file, "keep", 4, 0600);
	ck_assert_int_eq(sfs("backup", file, NULL), 1);
	snprintf(want, sizeof(want),
		 "secretfs: cannot back up the store to '%s': file exists\n",
		 file);
	assert_err(want);
	kept = tu_read_file(file, &len);
	ck_assert_uint_eq(len, 4);
	ck_assert(!memcmp(kept, "keep", 4));
	free(kept);
}
END_TEST

START_TEST(test_restore_refuses_non_empty_dir)
{
	char want[2048], file[700], dir[700], inside[800];
	struct stat st;

	snprintf(file, sizeof(file), "%s", path_in("b.db"));
	snprintf(dir, sizeof(dir), "%s", path_in("used"));
	snprintf(inside, sizeof(inside), "%s/note", dir);
	ck_assert_int_eq(sfs("backup", file, NULL), 0);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	tu_write_file(inside, "x", 1, 0600);
	ck_assert_int_eq(sfs_env(NULL, "--store", dir, "restore", file, NULL),
			 1);
	snprintf(want, sizeof(want),
		 "secretfs: cannot restore: '%s': not an empty directory\n",
		 dir);
	assert_err(want);
	snprintf(inside, sizeof(inside), "%s/secretfs.db", dir);
	ck_assert_int_eq(stat(inside, &st), -1);
	/* an empty directory is fine */
	snprintf(dir, sizeof(dir), "%s", path_in("empty"));
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(sfs_env(NULL, "--store", dir, "restore", file, NULL),
			 0);
	ck_assert_int_eq(stat(inside, &st), -1);
}
END_TEST

/* Ages count back from now: a line from 2020 is left out, today's kept. */
START_TEST(test_audit_since_relative)
{
	static const char old[] =
	    "{\"time\":\"2020-01-01T00:00:00Z\",\"op\":\"secret.create\","
	    "\"secret\":\"old\",\"result\":\"ok\"}\n";
	const char *const ages[] = {"30m", "2h", "1d"};
	char log[700], *both;
	size_t len, i;
	char *now;

	ck_assert_int_eq(sfs("secret", "create", "new", NULL), 0);
	snprintf(log, sizeof(log), "%s/audit.log", store);
	now = tu_read_file(log, &len);
	ck_assert_ptr_nonnull(now);
	both = malloc(strlen(old) + len);
	ck_assert_ptr_nonnull(both);
	memcpy(both, old, strlen(old));
	memcpy(both + strlen(old), now, len);
	tu_write_file(log, both, strlen(old) + len, 0600);
	free(both);
	free(now);
	ck_assert_int_eq(sfs("audit", NULL), 0);
	assert_out_has("\"secret\":\"old\"");
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(sfs("audit", "--since", ages[i], NULL), 0);
		assert_out_has("\"secret\":\"new\"");
		ck_assert_ptr_null(strstr(r.out, "\"secret\":\"old\""));
	}
	ck_assert_int_eq(sfs("audit", "--since", "3000d", NULL), 0);
	assert_out_has("\"secret\":\"old\"");
	ck_assert_int_eq(sfs("audit", "--since", "5x", NULL), 2);
	assert_err("secretfs: audit: bad time '5x' (RFC 3339, YYYY-MM-DD, or "
		   "an age: 30m, 2h, 1d) (see 'secretfs audit --help')\n");
}
END_TEST

START_TEST(test_version_get_latest_and_default)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "one", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "two", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "set-default", "db", "1", NULL), 0);
	ck_assert_int_eq(sfs("version", "get", "db", "latest", NULL), 0);
	assert_out("two");
	ck_assert_int_eq(sfs("version", "get", "db", "default", NULL), 0);
	assert_out("one");
	ck_assert_int_eq(sfs("version", "get", "db", "newest", NULL), 2);
	assert_err("secretfs: version get: bad version 'newest' (a number, "
		   "'default' or 'latest') (see 'secretfs version get "
		   "--help')\n");
	ck_assert_int_eq(sfs("secret", "create", "empty", NULL), 0);
	ck_assert_int_eq(sfs("version", "get", "empty", "latest", NULL), 1);
	assert_err("secretfs: cannot read 'empty': 'empty' has no versions\n");
}
END_TEST

START_TEST(test_version_get_field_raw)
{
	ck_assert_int_eq(sfs("secret", "create", "app", "--kv", "user=admin",
			     "--kv", "pass=a\nb", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "app", "--field", "pass", NULL),
			 0);
	assert_out("a\nb");
	ck_assert_int_eq(
	    sfs("version", "get", "app", "1", "--field", "user", NULL), 0);
	assert_out("admin");
	ck_assert_int_eq(sfs("version", "get", "app", "--field", "nope", NULL),
			 1);
	assert_err("secretfs: cannot print key 'nope' of version 1 of 'app': "
		   "no such key\n");
	ck_assert_uint_eq(r.out_len, 0);
	ck_assert_int_eq(
	    sfs("version", "get", "app", "--field", "user", "--kv", NULL), 2);
	assert_err("secretfs: version get: give --kv or --field, not both "
		   "(see 'secretfs version get --help')\n");
	ck_assert_int_eq(sfs("version", "add", "app", "--value", "plain", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "app", "--field", "user", NULL),
			 1);
	assert_err("secretfs: cannot print key 'user' of version 2 of 'app': "
		   "the value is not a JSON object (its format is text)\n");
}
END_TEST

/* Issue 10 finding 8: a value with a newline injected lines into an env
 * file built from `version get --kv`. */
START_TEST(test_kv_output_refuses_env_injection)
{
	ck_assert_int_eq(sfs("secret", "create", "nl", "--kv",
			     "A=x\nLD_PRELOAD=/tmp/evil.so", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "nl", "--kv", NULL), 1);
	assert_err("secretfs: cannot print version 1 of 'nl' as KEY=VALUE "
		   "lines: the value of key 'A' holds a newline\n");
	ck_assert_uint_eq(r.out_len, 0);
	ck_assert_int_eq(sfs("secret", "create", "cr", "--kv", "A=x\ry", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "cr", "--kv", NULL), 1);
	assert_err("secretfs: cannot print version 1 of 'cr' as KEY=VALUE "
		   "lines: the value of key 'A' holds a carriage return\n");
	ck_assert_int_eq(sfs("secret", "create", "nul", "--value",
			     "{\"A\":\"x\\u0000y\"}", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "nul", "--kv", NULL), 1);
	ck_assert_uint_eq(r.out_len, 0);
	ck_assert_int_eq(sfs("secret", "create", "key", "--kv", "OK=1", "--kv",
			     "BAD-KEY=2", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "get", "key", "--kv", NULL), 1);
	assert_err("secretfs: cannot print version 1 of 'key' as KEY=VALUE "
		   "lines: key 'BAD-KEY' is not an environment variable name "
		   "([A-Za-z_][A-Za-z0-9_]*)\n");
	ck_assert_uint_eq(r.out_len, 0);
	/* JSON keeps every byte safely */
	ck_assert_int_eq(sfs("--json", "version", "get", "nl", "--kv", NULL),
			 0);
	assert_out("{\"secret\":\"nl\",\"version\":1,\"format\":\"kv\","
		   "\"value\":{\"A\":\"x\\u000aLD_PRELOAD=/tmp/evil.so\"}}\n");
}
END_TEST

START_TEST(test_version_add_merge)
{
	ck_assert_int_eq(
	    sfs("secret", "create", "app", "--kv", "a=1", "--kv", "b=2", NULL),
	    0);
	ck_assert_int_eq(sfs("version", "add", "app", "--merge", "--kv", "b=3",
			     "--kv", "c=4", NULL),
			 0);
	assert_out("added version 2 to 'app'\n");
	ck_assert_int_eq(sfs("version", "get", "app", NULL), 0);
	assert_out("{\"a\":\"1\",\"b\":\"3\",\"c\":\"4\"}");
	ck_assert_int_eq(
	    sfs("version", "add", "app", "--merge", "--value", "x", NULL), 2);
	assert_err("secretfs: version add: --merge takes --kv pairs (see "
		   "'secretfs version add --help')\n");
	ck_assert_int_eq(sfs("version", "add", "app", "--value", "plain", NULL),
			 0);
	ck_assert_int_eq(
	    sfs("version", "add", "app", "--merge", "--kv", "a=9", NULL), 1);
	assert_err("secretfs: cannot merge into 'app': the default version "
		   "(3) is not key/value (its format is text)\n");
	ck_assert_int_eq(sfs("version", "get", "app", "latest", NULL), 0);
	assert_out("plain");
}
END_TEST

START_TEST(test_version_destroy_several)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "1", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "2", NULL), 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "3", NULL), 0);
	ck_assert_int_eq(sfs("version", "deactivate", "db", "1", NULL), 0);
	ck_assert_int_eq(sfs("version", "deactivate", "db", "2", NULL), 0);
	/* a bad number anywhere: nothing is destroyed */
	ck_assert_int_eq(sfs("version", "destroy", "db", "1", "x", NULL), 2);
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 1);
	assert_err_has("deactivated");
	ck_assert_int_eq(sfs("version", "destroy", "db", "1", "2", NULL), 0);
	assert_out("destroyed version 1 of 'db'\n"
		   "destroyed version 2 of 'db'\n");
	ck_assert_int_eq(sfs("version", "get", "db", "2", NULL), 1);
	assert_err_has("destroyed");
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	assert_out("3");
}
END_TEST

START_TEST(test_delete_destroy_versions)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--value", "1", NULL),
			 0);
	ck_assert_int_eq(sfs("version", "add", "db", "--value", "2", NULL), 0);
	/* the same confirmation first: nothing changes without it */
	ck_assert_int_eq(sfs("secret", "delete", "db", "--destroy-versions",
			     "--confirm", "dbx", NULL),
			 1);
	ck_assert_int_eq(sfs("version", "get", "db", NULL), 0);
	assert_out("2");
	ck_assert_int_eq(
	    sfs("secret", "delete", "db", "--destroy-versions", NULL), 1);
	ck_assert_int_eq(sfs("version", "get", "db", "1", NULL), 0);
	ck_assert_int_eq(sfs("secret", "delete", "db", "--destroy-versions",
			     "--confirm", "db", NULL),
			 0);
	assert_out("deleted secret 'db'\n");
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 1);
	ck_assert_int_eq(sfs("audit", "--secret", "db", NULL), 0);
	assert_out_has("\"op\":\"secret.deactivate\"");
	assert_out_has("\"op\":\"version.destroy\",\"secret\":\"db\"");
	assert_out_has("\"op\":\"secret.delete\"");
}
END_TEST

START_TEST(test_create_owner_group_mode)
{
	ck_assert_int_eq(sfs("secret", "create", "db", "--owner", "nobody",
			     "--group", "4343", "--mode", "0400", "--value",
			     "v", NULL),
			 0);
	ck_assert_int_eq(sfs("secret", "show", "db", NULL), 0);
	assert_out_has("\nowner: 65534 (nobody)\n");
	assert_out_has("\ngroup: 4343\n");
	assert_out_has("\nmode: 0400\n");
	ck_assert_int_eq(sfs("secret", "create", "x", "--mode", "0999", NULL),
			 2);
	assert_err("secretfs: secret create: bad mode '0999' (octal, at most "
		   "0777) (see 'secretfs secret create --help')\n");
	ck_assert_int_eq(
	    sfs("secret", "create", "x", "--owner", "no-such-user-here", NULL),
	    1);
	assert_err("secretfs: cannot create secret 'x': no such user "
		   "'no-such-user-here'\n");
	ck_assert_int_eq(sfs("secret", "show", "x", NULL), 1);
}
END_TEST

/* `alice` and `user:alice` name the same principal, in --allow and in
 * role grants; --json shows the allow list as an array. */
START_TEST(test_principals_bare_name_and_json_array)
{
	ck_assert_int_eq(sfs("secret", "create", "db", NULL), 0);
	ck_assert_int_eq(sfs("--json", "secret", "show", "db", NULL), 0);
	assert_out_has("\"allowed_principals\":[],");
	ck_assert_int_eq(sfs("secret", "update", "db", "--allow",
			     "nobody, user:nobody,group:nogroup,uid:7", NULL),
			 0);
	ck_assert_int_eq(sfs("--json", "secret", "show", "db", NULL), 0);
	assert_out_has("\"allowed_principals\":[\"uid:65534\",\"gid:65534\","
		       "\"uid:7\"],");
	ck_assert_int_eq(sfs("role", "grant", "manager", "nobody", NULL), 0);
	assert_out("granted role 'manager' to 'nobody'\n");
	ck_assert_int_eq(sfs("role", "revoke", "manager", "user:nobody", NULL),
			 0);
	ck_assert_int_eq(sfs("role", "list", NULL), 0);
	ck_assert_ptr_null(strstr(r.out, "uid:65534"));
	ck_assert_int_eq(sfs("role", "grant", "manager", "a,b", NULL), 2);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc;

	/* generous timeouts: under ASan every run of the program is slow */
	tc = tcase_create("usage");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_help_global);
	tcase_add_test(tc, test_help_every_command);
	tcase_add_test(tc, test_usage_unknown_command);
	tcase_add_test(tc, test_usage_unknown_option);
	tcase_add_test(tc, test_options_prefix_last_wins_checked_first);
	tcase_add_test(tc, test_usage_error_one_line);
	tcase_add_test(tc, test_usage_missing_and_extra_argument);
	tcase_add_test(tc, test_usage_bad_number);
	tcase_add_test(tc, test_usage_conflicting_values);
	tcase_add_test(tc, test_usage_version_add_needs_value);
	tcase_add_test(tc, test_usage_update);
	tcase_add_test(tc, test_init_prints_paths);
	tcase_add_test(tc, test_init_json);
	tcase_add_test(tc, test_no_store_fails);
	tcase_add_test(tc, test_version_flag);
	tcase_add_test(tc, test_global_option_after_command_says_so);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup_store, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_init_twice_fails);
	tcase_add_test(tc, test_wrong_master_key);
	tcase_add_test(tc, test_missing_key_file_lowercase);
	tcase_add_test(tc, test_other_users_store_denied);
	tcase_add_test(tc, test_master_key_env);
	tcase_add_test(tc, test_master_key_group_readable_refused);
	tcase_add_test(tc, test_store_option_beats_env);
	tcase_add_test(tc, test_get_exact_bytes);
	tcase_add_test(tc, test_get_binary_file);
	tcase_add_test(tc, test_value_file_missing);
	tcase_add_test(tc, test_value_from_stdin);
	tcase_add_test(tc, test_value_size_limit);
	tcase_add_test(tc, test_kv_round_trip);
	tcase_add_test(tc, test_kv_refuses_other_formats);
	tcase_add_test(tc, test_kv_bad_pair);
	tcase_add_test(tc, test_json_get);
	tcase_add_test(tc, test_json_get_binary);
	tcase_add_test(tc, test_expect_compare_and_set);
	tcase_add_test(tc, test_set_default);
	tcase_add_test(tc, test_set_default_deactivated_refused);
	tcase_add_test(tc, test_destroy_and_copy);
	tcase_add_test(tc, test_create_without_value);
	tcase_add_test(tc, test_delete_lifecycle);
	tcase_add_test(tc, test_refusals_say_why);
	tcase_add_test(tc, test_subject_dropped_only_when_the_command_names_it);
	tcase_add_test(tc, test_delete_confirm_mismatch);
	tcase_add_test(tc, test_delete_without_confirm_not_a_tty);
	tcase_add_test(tc, test_delete_prompt_on_terminal);
	tcase_add_test(tc, test_secret_activate);
	tcase_add_test(tc, test_secret_show_fields);
	tcase_add_test(tc, test_secret_show_json);
	tcase_add_test(tc, test_secret_list);
	tcase_add_test(tc, test_secret_update);
	tcase_add_test(tc, test_version_list);
	tcase_add_test(tc, test_key_lifecycle);
	tcase_add_test(tc, test_key_list_and_delete);
	tcase_add_test(tc, test_change_key);
	tcase_add_test(tc, test_roles);
	tcase_add_test(tc, test_audit_lines);
	tcase_add_test(tc, test_output_error_fails);
	tcase_add_test(tc, test_store_never_holds_plaintext);
	tcase_add_test(tc, test_tampered_value_refused);
	tcase_add_test(tc, test_parallel_adds);
	tcase_add_test(tc, test_audit_follow);
	tcase_add_test(tc, test_json_changes);
	tcase_add_test(tc, test_backup_restore_round_trip);
	tcase_add_test(tc, test_backup_refuses_existing_file);
	tcase_add_test(tc, test_backup_while_writing_is_consistent);
	tcase_add_test(tc, test_restore_refuses_non_empty_dir);
	tcase_add_test(tc, test_audit_since_relative);
	tcase_add_test(tc, test_version_get_latest_and_default);
	tcase_add_test(tc, test_version_get_field_raw);
	tcase_add_test(tc, test_kv_output_refuses_env_injection);
	tcase_add_test(tc, test_version_add_merge);
	tcase_add_test(tc, test_version_destroy_several);
	tcase_add_test(tc, test_delete_destroy_versions);
	tcase_add_test(tc, test_create_owner_group_mode);
	tcase_add_test(tc, test_principals_bare_name_and_json_array);
	suite_add_tcase(s, tc);

	tc = tcase_create("passphrase");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_passphrase_store);
	tcase_add_test(tc, test_init_key_and_passphrase_refused);
	suite_add_tcase(s, tc);
	return s;
}

const struct harness harness = {.suite = cli_suite};
