/*
 * Helpers shared by both halves of the program: opening the store with
 * its master key or passphrase, and reporting errors in the one format
 * SPEC §4 gives ("secretfs: <what failed>: <why>"). Whether the core's
 * subject goes in that line is decided on data, never on text: the
 * objects the command names beside the object the subject names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "fs.h"
#include "secretfs/crypto.h"

/*
 * The "why" of an error: the core's message, or its code's description.
 * A core message "<subject>: <why>" says where its why starts
 * (err->why) and what its subject names (err->obj); when that is one of
 * the command's objects (about), or a part of one, the why alone follows
 * what, so that the line does not say the subject twice.
 */
static const char *error_why(const struct sfs_object *about, size_t n,
			     const struct sfs_error *err)
{
	size_t i;

	if (!err || !err->msg[0])
		return sfs_strerror(err ? err->code : 0);
	if (err->why < 2 || err->why >= sizeof(err->msg))
		return err->msg;
	for (i = 0; i < n; i++)
		if (sfs_object_covers(&about[i], &err->obj))
			return err->msg + err->why;
	return err->msg;
}

/*
 * Write one error line to stderr. Names in messages come from the user
 * and may hold newlines, control bytes or invalid UTF-8: each such byte
 * is shown as '?', so that every error stays exactly one line.
 */
static void err_line(const char *what, const char *why, const char *tail)
{
	char buf[1024];

	if (snprintf(buf, sizeof(buf), "secretfs: %s: %s%s", what, why, tail) <
	    0)
		return;
	sfs_error_printable(buf);
	fprintf(stderr, "%s\n", buf);
}

int cli_fail(const char *what, const struct sfs_object *about, size_t n,
	     const struct sfs_error *err)
{
	err_line(what, error_why(about, n, err), "");
	return EXIT_FAIL;
}

int cli_usage_error(const char *what, const char *why)
{
	err_line(what, why, " (see 'secretfs --help')");
	return EXIT_USAGE;
}

/*
 * Read a passphrase from the terminal with echo off. Echo goes off (and
 * typed-ahead input is discarded) before the prompt shows, so that
 * whatever is typed after the prompt is what is read.
 */
static int ask_tty(void *arg, char **out, size_t *len)
{
	struct termios old, quiet;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *tty = fopen("/dev/tty", "r+");

	(void)arg;
	if (!tty || !isatty(fileno(tty)) || tcgetattr(fileno(tty), &old)) {
		if (tty)
			fclose(tty);
		return SFS_EMASTER;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	fputs("Passphrase: ", tty);
	fflush(tty);
	n = getline(&line, &cap, tty);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputs("\n", tty);
	fclose(tty);
	if (n <= 0) {
		sfs_crypto_free_secret(line, cap);
		return SFS_EMASTER;
	}
	if (line[n - 1] == '\n')
		line[--n] = '\0';
	*out = line;
	*len = (size_t)n;
	return SFS_OK;
}

int cli_open(const struct cli_global *g, const struct sfs_ctx_options *o,
	     struct sfs_ctx **out)
{
	struct sfs_object store = sfs_object_whole(SFS_OBJ_STORE);
	struct sfs_ctx_options opts;
	struct sfs_error err;

	sfs_error_clear(&err);
	if (o)
		opts = *o;
	else
		memset(&opts, 0, sizeof(opts));
	if (g->store)
		opts.store_dir = g->store;
	if (g->master_key)
		opts.master_key = g->master_key;
	opts.ask_passphrase = ask_tty;
	if (sfs_ctx_open(out, &opts, &err) != SFS_OK)
		return cli_fail("cannot open store", &store, 1, &err);
	return EXIT_OK;
}
