/*
 * secretfs: the program's entry point. Parses the global options (which
 * come before the command: the '+' in the option string stops getopt at
 * the first non-option) and hands the rest of argv to the command, whose
 * argv[0] is the command's name. mount, umount and status belong to the
 * daemon (fs.h), volume-driver to the volume plugin (volume.h); they
 * parse their own options.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "volume/volume.h"

static const struct cli_group *const groups[] = {
	&cli_key_group, &cli_secret_group, &cli_version_group,
	&cli_role_group,
};

/* The commands that are not in a group. */
static const struct cli_cmd *const singles[] = {
    &cli_backup_cmd, &cli_restore_cmd, &cli_init_cmd,
    &cli_audit_cmd,  &cli_rekey_cmd,   &cli_watch_cmd,
};

static const char global_usage[] =
	"Usage: secretfs [--store DIR] [--master-key FILE] [--json] COMMAND "
	"...\n"
	"       secretfs --version\n"
	"\n"
	"Secrets for one host: a FUSE filesystem and this command line over\n"
	"an encrypted store.\n"
	"\n"
	"Global options (before the command):\n"
	"  --store DIR         the store (default $SECRETFS_STORE, else\n"
	"                      /var/lib/secretfs for root, else\n"
	"                      $XDG_DATA_HOME/secretfs)\n"
	"  --master-key FILE   the master key file (default\n"
	"                      $SECRETFS_MASTER_KEY, else DIR/master.key)\n"
	"  --json              print JSON\n"
	"  --version           print the program's version\n"
	"  -h, --help          print this help\n"
	"\n"
	"Commands:\n"
	"  secretfs init [--passphrase-file FILE]\n"
	"  secretfs backup FILE\n"
	"  secretfs --store NEWDIR restore FILE\n"
	"  secretfs mount MOUNTPOINT [-f] [-o OPTIONS]\n"
	"  secretfs umount MOUNTPOINT [--lazy|--force]\n"
	"  secretfs status MOUNTPOINT\n"
	"  secretfs volume-driver [--socket PATH]\n";

static const char global_tail[] =
	"\n"
	"VALUE is --value TEXT, --file FILE ('-' for stdin), or one or more\n"
	"--kv KEY=VALUE. KEY is a key's name or id; 'service' is the service\n"
	"key. Exit status: 0 success, 1 failure, 2 bad usage.\n"
	"Run 'secretfs COMMAND --help' for a command's options.\n";

static void usage(FILE *f)
{
	const struct cli_cmd *c;
	size_t i;

	fputs(global_usage, f);
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		fputc('\n', f);
		for (c = groups[i]->cmds; c->name; c++)
			cli_synopsis(c, f);
	}
	fputc('\n', f);
	cli_synopsis(&cli_audit_cmd, f);
	cli_synopsis(&cli_rekey_cmd, f);
	cli_synopsis(&cli_watch_cmd, f);
	fputs(global_tail, f);
}

static int bad_global(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int bad_global(const char *fmt, ...)
{
	va_list ap;

	fputs("secretfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(": see 'secretfs --help'\n", stderr);
	return EXIT_USAGE;
}

/* Parse the global options; *done set to 1 when --help was handled, to 2
 * for --version. */
static int parse_global(int argc, char **argv, struct cli_global *g,
			int *done)
{
	int version = 0;
	const struct cli_opt opts[] = {
	    {.name = "store", .arg = &g->store},
	    {.name = "master-key", .arg = &g->master_key},
	    {.name = "json", .flag = &g->json},
	    {.name = "version", .flag = &version},
	    {.name = NULL},
	};
	char why[256];
	int ch = cli_opt_scan(NULL, "+:h", argc, argv, opts, NULL);

	if (ch == 'h') {
		usage(stdout);
		*done = 1;
		return EXIT_OK;
	}
	if (ch != CLI_GO) {
		cli_opt_problem(ch, argv, why, sizeof(why));
		return bad_global("%s", why);
	}
	if (version) /* printed once every option (--json) is known */
		*done = 2;
	return EXIT_OK;
}

static int run_command(const struct cli_global *g, int argc, char **argv)
{
	const char *name = argv[0];
	size_t i;

	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (!strcmp(name, groups[i]->name))
			return cli_group_run(groups[i], g, argc, argv);
	for (i = 0; i < sizeof(singles) / sizeof(singles[0]); i++)
		if (!strcmp(name, singles[i]->name))
			return singles[i]->run(singles[i], g, argc, argv);
	if (!strcmp(name, "mount"))
		return cmd_mount(g, argc, argv);
	if (!strcmp(name, "umount"))
		return cmd_umount(g, argc, argv);
	if (!strcmp(name, "status"))
		return cmd_status(g, argc, argv);
	if (!strcmp(name, "volume-driver"))
		return cmd_volume_driver(g, argc, argv);
	if (!strcmp(name, "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	return bad_global("unknown command '%s'", name);
}

int main(int argc, char **argv)
{
	struct cli_global g = { NULL, NULL, 0 };
	int done = 0;
	int rc;

	if (argc == 3 && !strcmp(argv[1], FS_NH_ARG))
		return fs_notify_helper_main(argv[2]);
	rc = parse_global(argc, argv, &g, &done);
	if (rc == EXIT_OK && done == 2)
		rc = cli_print_version(&g);
	if (rc != EXIT_OK || done)
		return rc;
	if (optind >= argc)
		return bad_global("missing command");
	rc = run_command(&g, argc - optind, argv + optind);
	if (fflush(stdout) != 0 && rc == EXIT_OK) {
		fprintf(stderr, "secretfs: cannot write output: %s\n",
			sfs_strerrno(errno));
		rc = EXIT_FAIL;
	}
	return rc;
}
