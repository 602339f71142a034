/* Placeholder for the FUSE daemon's commands until the daemon lands. */
#include <stdio.h>

#include "fs.h"

int cmd_mount(const struct cli_global *g, int argc, char **argv)
{
	(void)g;
	(void)argc;
	(void)argv;
	fprintf(stderr, "secretfs: mount: not built yet\n");
	return EXIT_FAIL;
}

int cmd_umount(const struct cli_global *g, int argc, char **argv)
{
	return cmd_mount(g, argc, argv);
}

int cmd_status(const struct cli_global *g, int argc, char **argv)
{
	return cmd_mount(g, argc, argv);
}
