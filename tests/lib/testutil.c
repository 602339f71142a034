/* Helpers shared by the Check suites; see testutil.h. */
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/pgcluster.h"
#include "lib/testutil.h"
#include "secretfs/ctx.h"

char *tu_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/sfs-%s-XXXXXX", base, tag) < 0)
		abort();
	if (!mkdtemp(p))
		abort();
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag != FTW_SL) /* chmod follows a link: never touch its target */
		chmod(path, 0700);
	return remove(path);
}

void tu_rmrf(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_write_file(const char *path, const void *data, size_t len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	fchmod(fd, mode);
	close(fd);
}

char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (cap + 4096) * 2;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		r = fread(buf + n, 1, 4096, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char last_conninfo[PATH_MAX + 128];

const char *tu_store_conninfo(void)
{
	return last_conninfo[0] ? last_conninfo : NULL;
}

const char *tu_backend_conninfo(char *out, size_t cap)
{
	const char *b = getenv("SECRETFS_TEST_BACKEND");
	const char *base = getenv("SECRETFS_TEST_PG_CONNINFO");

	if (!b || strcmp(b, "postgresql") != 0)
		return NULL;
	if (!base || pgc_new_store(base, out, cap) != 0) {
		fprintf(stderr,
			"SECRETFS_TEST_BACKEND=postgresql needs "
			"SECRETFS_TEST_PG_CONNINFO naming a running "
			"server (build/tests/test_pg_core starts one)\n");
		abort();
	}
	return out;
}

struct sfs_ctx *tu_store_open(const char *tag, char **tmp, char *store,
			      size_t cap)
{
	char conninfo[PATH_MAX + 128];
	struct sfs_ctx_options o;
	struct sfs_error err;
	struct sfs_ctx *ctx = NULL;

	setenv("SECRETFS_KDF_MIN", "1", 1);
	unsetenv("SECRETFS_MASTER_KEY");
	unsetenv("SECRETFS_PASSPHRASE_FILE");
	*tmp = tu_tmpdir(tag);
	snprintf(store, cap, "%s/store", *tmp);
	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	sfs_error_clear(&err);
	o.conninfo = tu_backend_conninfo(conninfo, sizeof(conninfo));
	snprintf(last_conninfo, sizeof(last_conninfo), "%s",
		 o.conninfo ? o.conninfo : "");
	if (sfs_ctx_init(&o, &err) != SFS_OK ||
	    sfs_ctx_open(&ctx, &o, &err) != SFS_OK) {
		fprintf(stderr, "tu_store_open: %s\n", err.msg);
		abort();
	}
	return ctx;
}

long tu_count_lines(const char *path, const char *needle, const char *sum_key,
		    long *sum)
{
	char *text = tu_read_file(path, NULL), *line, *save = NULL, *p;
	long n = 0;

	if (sum)
		*sum = 0;
	for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strstr(line, needle))
			continue;
		n++;
		p = sum_key ? strstr(line, sum_key) : NULL;
		if (p && sum)
			*sum += strtol(p + strlen(sum_key), NULL, 10);
	}
	free(text);
	return n;
}
