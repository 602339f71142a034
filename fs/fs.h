/*
 * Internal interface between the parts of the secretfs program: the
 * command line (fs/cli/, main.c), the FUSE daemon (fs/daemon/) and the
 * volume driver (fs/volume/).
 * Each is thin: parse, call one core function, report the core's error.
 */
#ifndef SECRETFS_FS_H
#define SECRETFS_FS_H

#include "secretfs/ctx.h"
#include "secretfs/err.h"

/* The program's version: `secretfs --version` and the daemon's .status. */
#ifndef SFS_PROGRAM_VERSION
#define SFS_PROGRAM_VERSION "0.1.0"
#endif

/* Global options, given before the command. */
struct cli_global {
	const char *store;      /* --store DIR, or NULL */
	const char *master_key; /* --master-key FILE, or NULL */
	int json;               /* --json */
};

/* Exit codes (SPEC §4). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/*
 * Open the store named by g (and the environment) with its master key,
 * prompting for a passphrase on the terminal when the store needs one and
 * $SECRETFS_PASSPHRASE_FILE is unset. o (may be NULL) supplies the other
 * options (readonly, audit, owner). On failure prints
 * "secretfs: <what>: <why>" and returns EXIT_FAIL.
 */
int cli_open(const struct cli_global *g, const struct sfs_ctx_options *o,
	     struct sfs_ctx **out);

/*
 * Print "secretfs: <what>: <err->msg or sfs_strerror>" to stderr and
 * return EXIT_FAIL. about holds the n objects the command acted on (what
 * names them): a core message's subject that names one of them says
 * nothing new, and only its reason follows what (sfs_object_covers).
 */
int cli_fail(const char *what, const struct sfs_object *about, size_t n,
	     const struct sfs_error *err);

/* Print "secretfs: <what>: <why>" and a usage hint; return EXIT_USAGE. */
int cli_usage_error(const char *what, const char *why);

/* Is arg ("--json", "--store=DIR") one of the global options, which go
 * before the command? */
int cli_is_global_opt(const char *arg);

/* The daemon's commands (mount.c). argv[0] is the command name. */
int cmd_mount(const struct cli_global *g, int argc, char **argv);
/* The mount's change-notification helper (notify_helper.c): main runs it
 * when argv[1] is FS_NH_ARG; its exit status. */
#define FS_NH_ARG "__notify-helper"
int fs_notify_helper_main(const char *mountpoint);
int cmd_umount(const struct cli_global *g, int argc, char **argv);
int cmd_status(const struct cli_global *g, int argc, char **argv);

#endif
