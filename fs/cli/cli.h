/*
 * The command line's own helpers, shared by main.c and the cli_*.c files
 * (one file per command group). Every command is a row of a table: its
 * full name ("key create"), its help text and its handler. A handler
 * parses its options (GNU permutation: options before or after the
 * positional arguments), opens the store, calls one core function and
 * prints the result, as a confirmation line, aligned columns, `field:
 * value` lines or, with --json, one line of JSON.
 *
 * Exit codes and the error format are SPEC §4's: errors go to stderr as
 * "secretfs: <what failed>: <why>"; 0 success, 1 failure, 2 bad usage.
 * No lifecycle rule is decided here: the core's answer is reported as is.
 */
#ifndef SECRETFS_CLI_H
#define SECRETFS_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fs.h"
#include "render.h"
#include "secretfs/ctx.h"
#include "secretfs/store.h"

struct cli_cmd;
typedef int (*cli_run_fn)(const struct cli_cmd *cmd,
			  const struct cli_global *g, int argc, char **argv);

struct cli_cmd {
	const char *name;  /* "create"; the word after the group's name */
	const char *usage; /* synopsis and option list, ends with '\n' */
	cli_run_fn run;    /* argv[0] is name */
};

/* A group of subcommands ("key", "secret", ...): NULL-named last row. */
struct cli_group {
	const char *name;
	const char *summary; /* one line for the full usage */
	const struct cli_cmd *cmds;
};

extern const struct cli_group cli_key_group;
extern const struct cli_group cli_secret_group;
extern const struct cli_group cli_version_group;
extern const struct cli_group cli_role_group;
extern const struct cli_cmd cli_backup_cmd;  /* cli_backup.c */
extern const struct cli_cmd cli_restore_cmd;
extern const struct cli_cmd cli_init_cmd;
extern const struct cli_cmd cli_audit_cmd;
extern const struct cli_cmd cli_rekey_cmd;
extern const struct cli_cmd cli_watch_cmd;

/* Run group's subcommand argv[1] (argv[0] is the group's name); its
 * messages name it with the group's ("key create"). */
int cli_group_run(const struct cli_group *grp, const struct cli_global *g,
		  int argc, char **argv);
/* Print a command's synopsis (its usage's first line) indented. */
void cli_synopsis(const struct cli_cmd *c, FILE *f);
/* Print a group's usage (every subcommand's synopsis) to f. */
void cli_group_usage(const struct cli_group *grp, FILE *f);

/* --- option parsing ---------------------------------------------------- */

/*
 * getopt_long over a command's argv with getopt's own messages off;
 * restarts the scan when argv changes. Returns as getopt_long does, with
 * ':' for a missing argument and '?' for an unknown option.
 */
int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts);
/*
 * Handle an option the command has no case for: 'h' prints the usage to
 * stdout and returns EXIT_OK; ':' and '?' report a usage error and return
 * EXIT_USAGE.
 */
int cli_opt_other(const struct cli_cmd *cmd, int ch, char **argv);
/* "Go on": returned by parsers when the command should proceed. */
#define CLI_GO (-1)

/*
 * One long option of a command, a row of its table (the last row's name
 * is NULL): getopt_long stays the parser, the row says where what it
 * finds goes. Exactly one of arg, flag and take is set.
 */
struct cli_opt {
	const char *name; /* without "--" */
	const char **arg; /* takes a value: the last one given */
	int *flag;	  /* takes none: set to 1 */
	/* takes a value checked as it comes: EXIT_OK, or the exit code
	 * (a usage error) that stops the parse */
	int (*take)(const struct cli_cmd *cmd, const char *arg, void *to);
	void *to; /* take's destination */
};

/* Rows a table may have (besides -h/--help and the VALUE options). */
#define CLI_OPTS_MAX 12

struct cli_value_src;
/*
 * getopt_long over argv (shortopts as getopt takes them) with the rows
 * of opts (NULL: none), -h/--help and, when src is not NULL, --value,
 * --file and --kv (recorded in src): stores each option as it comes.
 * Returns CLI_GO when every option is stored; 'h', ':' or '?' (getopt's,
 * see cli_opt_problem) for the caller to handle; or the exit code of a
 * take or cli_value_src_add that failed.
 */
int cli_opt_scan(const struct cli_cmd *cmd, const char *shortopts, int argc,
		 char **argv, const struct cli_opt *opts,
		 struct cli_value_src *src);
/*
 * A command's options: cli_opt_scan, cli_opt_other for what it leaves
 * (help, an unknown option, a missing value), then cli_args. CLI_GO, or
 * the exit code to return.
 */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv,
	      const struct cli_opt *opts, struct cli_value_src *src, int min,
	      int max);
/*
 * Parse a command that takes only -h/--help and between min and max
 * positional arguments (from argv[optind] on). CLI_GO, or the exit code
 * to return (help printed, or a usage error).
 */
int cli_parse_plain(const struct cli_cmd *cmd, int argc, char **argv,
		    int min, int max);
/* Describe the option problem getopt just reported (':' or '?'). */
void cli_opt_problem(int ch, char **argv, char *buf, size_t cap);
/* Check that between min and max positional arguments remain after the
 * options: EXIT_OK, or a usage error (EXIT_USAGE). */
int cli_args(const struct cli_cmd *cmd, int argc, char **argv, int min,
	     int max);
/* "secretfs: <cmd>: <why>" and a pointer to the command's help. Returns
 * EXIT_USAGE. */
int cli_bad_usage(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A version number (1 ... 2^32 - 1, decimal digits only). 0 or -1. */
int cli_parse_number(const char *text, uint32_t *out);

/* --- the value given by --value, --file or --kv ------------------------ */

struct cli_value_src {
	const char *text;  /* --value */
	const char *file;  /* --file ("-": stdin) */
	const char **kv;   /* --kv pairs */
	size_t nkv;
	unsigned kinds;    /* bit per kind given */
	int dup;           /* --value or --file given twice */
};

/* Options every VALUE-taking command accepts, with these return codes. */
#define CLI_OPT_VALUE 0x100
#define CLI_OPT_FILE 0x101
#define CLI_OPT_KV 0x102

void cli_value_src_init(struct cli_value_src *s);
/* Record one of the three options (ch is CLI_OPT_*). EXIT_OK, or
 * EXIT_FAIL when out of memory. */
int cli_value_src_add(struct cli_value_src *s, int ch, const char *arg);
void cli_value_src_release(struct cli_value_src *s);
/* Was any VALUE given? Usage error when more than one kind was. */
int cli_value_src_check(const struct cli_cmd *cmd,
			const struct cli_value_src *s, int *given);

/* The value's bytes; release with cli_value_release (wipes them). */
struct cli_value {
	char *data;
	size_t len;
	size_t cap;
};
/* Load the bytes: at most SFS_VALUE_MAX + 1 of a file, so that the core
 * can refuse an oversize value with its own error. EXIT_OK, EXIT_FAIL
 * (a file that cannot be read), or EXIT_USAGE (a malformed --kv pair,
 * reported as cmd's usage error). */
int cli_value_load(const struct cli_cmd *cmd, const struct cli_value_src *s,
		   struct cli_value *out);
void cli_value_release(struct cli_value *v);

/* --- an open store ----------------------------------------------------- */

struct cli_session {
	struct sfs_ctx *ctx;
	struct sfs_caller caller;
	struct sfs_error err;
	const struct cli_global *g;
};

/* Open the store as the administrator. EXIT_OK or EXIT_FAIL (reported). */
int cli_session_open(struct cli_session *s, const struct cli_global *g);
void cli_session_close(struct cli_session *s);
/* The store directory's path: --store, or the default one. EXIT_OK, or
 * EXIT_FAIL (reported). */
int cli_store_dir(const struct cli_global *g, char *dir, size_t cap);
/* After a parser's rc: CLI_GO with s open, or the exit code to return
 * (rc itself, or EXIT_FAIL when the store did not open). */
int cli_open_go(int rc, const struct cli_global *g, struct cli_session *s);
/* cli_parse_plain, then cli_session_open: CLI_GO with s open, or the
 * exit code to return (help, usage error, store not opened). */
int cli_start(const struct cli_cmd *cmd, const struct cli_global *g,
	      int argc, char **argv, int min, int max, struct cli_session *s);
/* Report the core's failure rc (details in s->err) as
 * "secretfs: <what>: <why>", what from fmt naming the object about
 * (kind SFS_OBJ_NONE: none; see cli_fail); returns EXIT_FAIL. */
int cli_session_fail(struct cli_session *s, int rc, struct sfs_object about,
		     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same for a command that names two objects, a and b. */
int cli_session_fail2(struct cli_session *s, int rc, struct sfs_object a,
		      struct sfs_object b, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* arr (n of *cap elements of size bytes used) with room for one more:
 * arr itself, or a grown copy (*cap updated), or NULL with arr intact
 * (out of memory). */
void *cli_grow(void *arr, size_t n, size_t *cap, size_t size);

/* Records collected by a core listing's callback (sfs_*_list calls it
 * once per record), copied as they are. */
struct cli_list {
	void *items;
	size_t n, cap;
};
/* Append a copy of item (size bytes): SFS_OK or SFS_ENOMEM. */
int cli_list_push(struct cli_list *l, const void *item, size_t size);

/* Every KMS key, to name the keys of secrets and versions. */
struct cli_keys {
	struct sfs_key_rec *recs;
	size_t n, cap;
};
int cli_keys_load(struct cli_session *s, struct cli_keys *k);
/* The name of the key with this id, or the id itself when unknown. */
const char *cli_keys_name(const struct cli_keys *k, const char *id);
void cli_keys_release(struct cli_keys *k);

/* A listing of secrets or versions: the records, the keys that name
 * their KMS keys, and how to print them. */
struct cli_listing {
	struct cli_list l;
	struct cli_keys keys;
	/* record i as JSON (NULL: out of memory) */
	struct sfs_json *(*json)(const struct cli_listing *x, size_t i);
	/* the table: ncols (at most CLI_LISTING_COLS) columns under hdr;
	 * record i's cells into row, which may point into cell (one
	 * 32-byte buffer a column) */
	const char *const *hdr;
	size_t ncols;
	void (*row)(const struct cli_listing *x, size_t i, const char **row,
		    char (*cell)[32]);
	const void *arg; /* the printers' own */
};
#define CLI_LISTING_COLS 8
/*
 * After the listing's core calls (rc: EXIT_OK, or their failure already
 * reported): load the keys, close s, print the records (a JSON array
 * with --json, else the table) and release the listing. The exit code.
 */
int cli_listing_end(struct cli_session *s, int rc, struct cli_listing *x);

/* --- output ------------------------------------------------------------ */

/* Aligned columns under a header; the last column is not padded. */
struct cli_table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major, header first */
};
int cli_table_init(struct cli_table *t, size_t ncols, const char *const *hdr);
/* Append one row of ncols cells (copied). EXIT_OK or EXIT_FAIL. */
int cli_table_row(struct cli_table *t, const char *const *cells);
void cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_release(struct cli_table *t);

/* Print `field: value` (the value on one line as given). */
void cli_field(const char *field, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct sfs_json;
/* Print j as one compact line on stdout and free it. j NULL (out of
 * memory while building) prints nothing and gives EXIT_FAIL. */
int cli_json_print(struct sfs_json *j);
/* j as built: j, or NULL with j freed when bad (a setter's non-zero
 * result, out of memory), as cli_json_print and fs_render_push take it. */
struct sfs_json *cli_json_built(struct sfs_json *j, int bad);
/* --version: "secretfs X.Y.Z", or {"version": "X.Y.Z"} with --json. */
int cli_print_version(const struct cli_global *g);
/* After a delete: {"<kind>": name, "deleted": true} with --json, else
 * "deleted <kind> '<name>'". */
int cli_print_deleted(const struct cli_global *g, const char *kind,
		      const char *name);

/*
 * Output that may hold value bytes is built in a cli_buf (never in
 * stdio's buffers), written with write(2) and wiped. A failed allocation
 * sets failed and drops later appends.
 */
struct cli_buf {
	char *data;
	size_t len, cap;
	int failed;
};
void cli_buf_add(struct cli_buf *b, const void *p, size_t n);
void cli_buf_str(struct cli_buf *b, const char *s);
/* Write the buffer to fd 1 (after stdout's pending output). EXIT_OK or
 * EXIT_FAIL (reported). */
int cli_buf_write(struct cli_buf *b);
/* Wipe and free. */
void cli_buf_release(struct cli_buf *b);

/* Append len bytes as a JSON string body (no quotes). */
void cli_json_escape(struct cli_buf *b, const void *data, size_t len);
/* 1 when data is valid UTF-8 without NUL bytes. */
int cli_utf8_text(const void *data, size_t len);
/* Append len bytes as standard base64 (with padding). */
void cli_base64(struct cli_buf *b, const void *data, size_t len);

#endif
