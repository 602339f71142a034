/*
 * mkstore: fill a store with many empty secrets for scripts/bench's
 * listing rows, in one process. Creating 100k secrets one CLI call (or one
 * mkdir through a mount) at a time takes minutes; this opens the store
 * once and calls the core's sfs_secret_create() for each name, exactly as
 * the CLI and the daemon's mkdir do: one transaction and one audit line
 * per secret, every rule checked. Nothing bypasses the core's records.
 *
 * Usage: mkstore STORE FROM TO creates secrets l<FROM> .. l<TO - 1> (seven
 * digits, the names the driver's mkdir rows continue with). A name that
 * already exists is skipped, so a rerun completes a partial store.
 * mkstore STORE versions NAME N adds N versions to secret NAME (each the
 * bytes "vN"), through sfs_version_add() as a write through the mount does.
 *
 * Not part of the product and not built by the Makefile: scripts/bench
 * compiles it into build/bench/ against build/libsecretfs.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secretfs/ctx.h"
#include "secretfs/principal.h"
#include "secretfs/secret.h"
#include "secretfs/version.h"

int main(int argc, char **argv)
{
	struct sfs_ctx_options o;
	struct sfs_secret_new nw;
	struct sfs_caller c;
	struct sfs_error err;
	struct sfs_ctx *ctx = NULL;
	char name[32];
	unsigned long i, from, to;
	int rc = SFS_OK, versions = argc == 5 && !strcmp(argv[2], "versions");

	if (argc != 4 && !versions) {
		fprintf(stderr, "usage: mkstore STORE FROM TO\n"
				"       mkstore STORE versions NAME N\n");
		return 2;
	}
	from = versions ? 0 : strtoul(argv[2], NULL, 10);
	to = strtoul(argv[versions ? 4 : 3], NULL, 10);
	memset(&o, 0, sizeof(o));
	o.store_dir = argv[1];
	sfs_error_clear(&err);
	if (sfs_ctx_open(&ctx, &o, &err) != SFS_OK) {
		fprintf(stderr, "mkstore: %s: %s\n", argv[1], err.msg);
		return 1;
	}
	sfs_caller_self(&c);
	for (i = from; versions && i < to && rc == SFS_OK; i++) {
		snprintf(name, sizeof(name), "v%lu", i);
		rc = sfs_version_add(ctx, &c, argv[3], name, strlen(name), 0,
				     NULL, &err);
	}
	for (i = from; !versions && i < to && rc == SFS_OK; i++) {
		snprintf(name, sizeof(name), "l%07lu", i);
		memset(&nw, 0, sizeof(nw));
		nw.name = name;
		rc = sfs_secret_create(ctx, &c, &nw, NULL, &err);
		if (rc == SFS_EEXIST)
			rc = SFS_OK;
	}
	if (rc != SFS_OK)
		fprintf(stderr, "mkstore: %s %s: %s\n",
			versions ? "version add" : "create", name, err.msg);
	sfs_ctx_close(ctx);
	return rc == SFS_OK ? 0 : 1;
}
