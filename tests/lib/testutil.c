/* Helpers shared by the Check suites; see testutil.h. */
#include <check.h>
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
#include "secretfs/keys.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"

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

void tu_tmpdir_in_memory(void)
{
	struct stat sb;

	if (!getenv("TMPDIR") && stat("/dev/shm", &sb) == 0 &&
	    S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
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

void tu_env_isolate(void)
{
	setenv("SECRETFS_KDF_MIN", "1", 1);
	unsetenv("SECRETFS_MASTER_KEY");
	unsetenv("SECRETFS_PASSPHRASE_FILE");
	unsetenv("SECRETFS_STORE");
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

	tu_env_isolate();
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

struct sfs_caller tu_fs_caller(uint32_t uid, uint32_t gid, unsigned roles)
{
	struct sfs_caller c;

	memset(&c, 0, sizeof(c));
	c.uid = uid;
	c.gid = gid;
	c.pid = 4242;
	strcpy(c.comm, "tester");
	c.via_fs = 1;
	c.roles = roles;
	return c;
}

int tu_secret_create(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, const char *key, const char *value,
		     struct sfs_error *err)
{
	struct sfs_secret_new n;

	memset(&n, 0, sizeof(n));
	n.name = name;
	n.key = key;
	n.value = value;
	n.value_len = value ? strlen(value) : 0;
	return sfs_secret_create(ctx, c, &n, NULL, err);
}

struct sfs_secret_rec tu_secret_get(struct sfs_ctx *ctx, const char *name)
{
	struct sfs_secret_rec r;
	struct sfs_caller self;
	struct sfs_error e;
	int full = 0;

	sfs_caller_self(&self);
	sfs_error_clear(&e);
	ck_assert_msg(sfs_secret_get(ctx, &self, name, &r, &full, &e) == 0,
		      "secret %s: %s", name, e.msg);
	ck_assert_int_eq(full, 1);
	return r;
}

struct sfs_key_rec tu_key_get(struct sfs_ctx *ctx, const char *name)
{
	struct sfs_key_rec k;
	struct sfs_caller self;
	struct sfs_error e;

	sfs_caller_self(&self);
	sfs_error_clear(&e);
	ck_assert_msg(sfs_key_get(ctx, &self, name, &k, &e) == 0, "key %s: %s",
		      name, e.msg);
	return k;
}

void tu_assert_audit_field(const char *store, const char *field,
			   const char *const *want, size_t n)
{
	char path[4096], *log, *save = NULL, *line;
	struct sfs_json *j;
	size_t i;

	snprintf(path, sizeof(path), "%s/audit.log", store);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(log);
	line = strtok_r(log, "\n", &save);
	for (i = 0; i < n; i++, line = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(line != NULL, "audit line %zu missing", i + 1);
		j = sfs_json_parse(line, strlen(line));
		ck_assert_ptr_nonnull(j);
		ck_assert_str_eq(sfs_json_get_str(j, field), want[i]);
		sfs_json_free(j);
	}
	ck_assert_ptr_null(line);
	free(log);
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
