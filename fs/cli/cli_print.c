/*
 * Output of the command line: aligned columns, `field: value` lines, and
 * JSON built with the core's sfs_json_* builder, one compact document per
 * line. Records become JSON objects in ../render.c, shared with the
 * daemon.
 *
 * Value bytes pass only through cli_json_escape() and cli_base64(), which
 * stream them to stdout without copying them anywhere.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/keys.h"
#include "secretfs/policy.h"
#include "secretfs/value.h"

int cli_table_init(struct cli_table *t, size_t ncols, const char *const *hdr)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	return cli_table_row(t, hdr);
}

int cli_table_row(struct cli_table *t, const char *const *cells)
{
	char **grown;
	size_t i;

	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		grown = realloc(t->cells, t->cap * t->ncols * sizeof(*grown));
		if (!grown)
			goto nomem;
		t->cells = grown;
	}
	for (i = 0; i < t->ncols; i++) {
		t->cells[t->nrows * t->ncols + i] = strdup(cells[i]);
		if (!t->cells[t->nrows * t->ncols + i]) {
			while (i--)
				free(t->cells[t->nrows * t->ncols + i]);
			goto nomem;
		}
	}
	t->nrows++;
	return EXIT_OK;
nomem:
	fprintf(stderr, "secretfs: out of memory\n");
	return EXIT_FAIL;
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t width[16] = { 0 };
	size_t r, c, w;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols && c < 16; c++) {
			w = strlen(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];

			if (c + 1 == t->ncols)
				fprintf(f, "%s\n", cell);
			else
				fprintf(f, "%-*s  ", (int)width[c], cell);
		}
}

void cli_table_release(struct cli_table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

void cli_field(const char *field, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", field);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

int cli_json_print(struct sfs_json *j)
{
	char *text = j ? sfs_json_dump(j, 0) : NULL;

	sfs_json_free(j);
	if (!text) {
		fprintf(stderr, "secretfs: cannot print json: out of memory\n");
		return EXIT_FAIL;
	}
	puts(text);
	free(text);
	return EXIT_OK;
}

struct sfs_json *cli_json_built(struct sfs_json *j, int bad)
{
	if (!bad)
		return j;
	sfs_json_free(j);
	return NULL;
}

int cli_print_version(const struct cli_global *g)
{
	struct sfs_json *o;

	if (!g->json) {
		printf("secretfs %s\n", SFS_PROGRAM_VERSION);
		return EXIT_OK;
	}
	o = sfs_json_object();
	return cli_json_print(cli_json_built(
	    o, o && sfs_json_set_str(o, "version", SFS_PROGRAM_VERSION)));
}

int cli_print_deleted(const struct cli_global *g, const char *kind,
		      const char *name)
{
	struct sfs_json *o;

	if (!g->json) {
		printf("deleted %s '%s'\n", kind, name);
		return EXIT_OK;
	}
	o = sfs_json_object();
	return cli_json_print(
	    cli_json_built(o, o && (sfs_json_set_str(o, kind, name) ||
				    sfs_json_set_bool(o, "deleted", 1))));
}

void cli_json_escape(struct cli_buf *b, const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = data;
	char esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '"' || p[i] == '\\') {
			esc[1] = (char)p[i];
			cli_buf_add(b, esc, 2);
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			esc[1] = 'u';
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 15];
			cli_buf_add(b, esc, 6);
		} else {
			cli_buf_add(b, p + i, 1);
		}
	}
	sfs_crypto_wipe(esc, sizeof(esc));
}

/* The core's strict check (RFC 3629), and no NUL byte. */
int cli_utf8_text(const void *data, size_t len)
{
	return (len == 0 || !memchr(data, '\0', len)) &&
	       sfs_policy_utf8_check(data, len) == SFS_OK;
}

void cli_base64(struct cli_buf *b, const void *data, size_t len)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	unsigned long w;
	char q[4];
	size_t i;

	for (i = 0; i < len; i += 3) {
		w = (unsigned long)p[i] << 16;
		if (i + 1 < len)
			w |= (unsigned long)p[i + 1] << 8;
		if (i + 2 < len)
			w |= p[i + 2];
		q[0] = abc[w >> 18 & 63];
		q[1] = abc[w >> 12 & 63];
		q[2] = i + 1 < len ? abc[w >> 6 & 63] : '=';
		q[3] = i + 2 < len ? abc[w & 63] : '=';
		cli_buf_add(b, q, 4);
	}
	sfs_crypto_wipe(q, sizeof(q));
}
