/*
 * `secretfs backup` and `secretfs restore`: a copy of a live store's
 * database and a new store made from one.
 *
 * backup opens the store first, as every administrator command does, so
 * that a wrong master key or an untrusted store directory is refused
 * before anything is copied; the copy itself is SQLite's online backup
 * API (sfs_store_backup): consistent while mounts and commands use
 * the store, and as encrypted as the store (the master key is not in it).
 * restore makes a new store directory from such a copy
 * (sfs_store_restore) and refuses one that is not empty.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "secretfs/backup.h"
#include "secretfs/value.h"

/* After backup or restore: {"store": dir, "file": file} with --json,
 * else one line. */
static int copy_report(const struct cli_global *g, int restored,
		       const char *dir, const char *file)
{
	struct sfs_json *o;

	if (!g->json && restored)
		printf("restored '%s' into store '%s'\n", file, dir);
	else if (!g->json)
		printf("backed up store '%s' to '%s'\n", dir, file);
	if (!g->json)
		return EXIT_OK;
	o = sfs_json_object();
	return cli_json_print(
	    cli_json_built(o, o && (sfs_json_set_str(o, "store", dir) ||
				    sfs_json_set_str(o, "file", file))));
}

static int backup_run(const struct cli_cmd *cmd, const struct cli_global *g,
		      int argc, char **argv)
{
	struct cli_session s;
	const char *file;
	int rc = cli_start(cmd, g, argc, argv, 1, 1, &s);

	if (rc != CLI_GO)
		return rc;
	file = argv[optind];
	rc = sfs_store_backup(sfs_ctx_dir(s.ctx), file, &s.err);
	if (rc != SFS_OK)
		rc =
		    cli_session_fail2(&s, rc, sfs_object_whole(SFS_OBJ_STORE),
				      sfs_object_file(file),
				      "cannot back up the store to '%s'", file);
	else
		rc = copy_report(g, 0, sfs_ctx_dir(s.ctx), file);
	cli_session_close(&s);
	return rc;
}

const struct cli_cmd cli_backup_cmd = {
    "backup",
    "Usage: secretfs backup FILE\n"
    "\n"
    "Copy the store's database to FILE (a new file, mode 0600) with\n"
    "SQLite's online backup API: a consistent copy even while mounts\n"
    "and commands use the store. Values stay encrypted in it; the\n"
    "master key is not in it: keep the key (or the passphrase) apart.\n"
    "Restore with 'secretfs --store NEWDIR restore FILE'.\n"
    "\n"
    "  -h, --help   print this help\n",
    backup_run,
};

static int restore_run(const struct cli_cmd *cmd, const struct cli_global *g,
		       int argc, char **argv)
{
	struct sfs_object store = sfs_object_whole(SFS_OBJ_STORE);
	struct sfs_error err;
	char dir[4096];
	int rc = cli_parse_plain(cmd, argc, argv, 1, 1);

	if (rc != CLI_GO)
		return rc;
	if (cli_store_dir(g, dir, sizeof(dir)) != EXIT_OK)
		return EXIT_FAIL;
	sfs_error_clear(&err);
	rc = sfs_store_restore(argv[optind], dir, &err);
	if (rc != SFS_OK) {
		if (!err.code)
			err.code = rc;
		return cli_fail("cannot restore", &store, 1, &err);
	}
	return copy_report(g, 1, dir, argv[optind]);
}

const struct cli_cmd cli_restore_cmd = {
    "restore",
    "Usage: secretfs --store NEWDIR restore FILE\n"
    "\n"
    "Make the store NEWDIR (created 0700, or an existing empty\n"
    "directory) from FILE, a copy made by 'secretfs backup'. The master\n"
    "key is not in the copy: put the store's key file at\n"
    "NEWDIR/master.key (mode 0400) or give --master-key FILE to later\n"
    "commands; a passphrase store needs only its passphrase.\n"
    "\n"
    "  -h, --help   print this help\n",
    restore_run,
};
