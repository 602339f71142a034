/*
 * The store directory as the context sees it: the directory's name
 * (resolved from the options or the environment), its creation and the
 * undo of a failed init (a snapshot of the names that were there), and
 * the generation file DIR/generation. The trust checks are storedir.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx_dir.h"
#include "secretfs/store.h"
#include "secretfs/storedir.h"

int ctx_path_join(char *out, size_t cap, const char *dir, const char *name,
		  struct sfs_error *err)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap)
		return sfs_error_set(err, SFS_EINVAL, "path '%s/%s' too long",
				     dir, name);
	return SFS_OK;
}

/* ---- store directory ------------------------------------------------- */

int sfs_ctx_default_dir(char *out, size_t cap, struct sfs_error *err)
{
	struct sfs_object where = sfs_object_whole(SFS_OBJ_STORE_DIR);
	const char *env = getenv("SECRETFS_STORE");
	const char *base;
	int n;

	if (env && *env)
		n = snprintf(out, cap, "%s", env);
	else if (getuid() == 0)
		n = snprintf(out, cap, "/var/lib/secretfs");
	else if ((base = getenv("XDG_DATA_HOME")) && *base)
		n = snprintf(out, cap, "%s/secretfs", base);
	else if ((base = getenv("HOME")) && *base)
		n = snprintf(out, cap, "%s/.local/share/secretfs", base);
	else
		return sfs_error_about_after(err, SFS_EINVAL,
					     "cannot find the ", &where,
					     "set SECRETFS_STORE or HOME");
	if (n < 0 || (size_t)n >= cap)
		return sfs_error_set(err, SFS_EINVAL,
				     "store directory name too long");
	return SFS_OK;
}

int ctx_dir_resolve(const struct sfs_ctx_options *o, char *out, size_t cap,
		    struct sfs_error *err)
{
	if (!o->store_dir)
		return sfs_ctx_default_dir(out, cap, err);
	if (strlen(o->store_dir) >= cap || !*o->store_dir)
		return sfs_error_set(err, SFS_EINVAL,
				     "bad store directory name");
	ctx_strlcpy(out, o->store_dir, cap);
	return SFS_OK;
}

/* mkdir -p; the leaf gets 0700. *created is set when the leaf was made. */
int ctx_dir_make(const char *dir, int *created, struct sfs_error *err)
{
	char path[PATH_MAX];
	char *p;

	*created = 0;
	ctx_strlcpy(path, dir, sizeof(path));
	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(path, 0700) == 0)
		*created = 1;
	else if (errno != EEXIST)
		goto fail;
	return SFS_OK;
fail:
	return sfs_error_set(err, SFS_EIO, "cannot create directory '%s': %s",
			     path, sfs_strerrno(errno));
}

/* ---- the names present in a directory, to undo a failed init --------- */

void ctx_snapshot_free(struct dir_snapshot *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	s->names = NULL;
	s->n = 0;
}

static int snapshot_has(const struct dir_snapshot *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return 1;
	return 0;
}

/* Take a snapshot of dir's names (s == NULL: none), or with undo remove
 * every regular file not in it, then dir itself if it ends up empty and
 * remove_dir is set. */
int ctx_snapshot_walk(const char *dir, struct dir_snapshot *s, int undo,
		      int remove_dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];
	char **grown;

	if (!d)
		return SFS_EIO;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (undo) {
			if (snapshot_has(s, e->d_name))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
			continue;
		}
		grown = realloc(s->names, (s->n + 1) * sizeof(*grown));
		if (!grown || !(grown[s->n] = strdup(e->d_name))) {
			if (grown)
				s->names = grown;
			closedir(d);
			return SFS_ENOMEM;
		}
		s->names = grown;
		s->n++;
	}
	closedir(d);
	if (undo && remove_dir)
		rmdir(dir);
	return SFS_OK;
}

/* ---- generation -------------------------------------------------------- */

/*
 * The generation is an 8-byte counter in DIR/generation, mapped shared:
 * every committed change (from any process: every writer goes through
 * the core) bumps it with one atomic add, and sfs_ctx_generation() is one
 * atomic load. The daemon validates its caches on every request this
 * way in nanoseconds, with no database access and no syscall.
 */
int ctx_gen_create(const char *dir, struct sfs_error *err)
{
	int fd, rc = SFS_OK;

	fd = sfs_storedir_open(dir, GEN_NAME, O_RDWR | O_CREAT, 0600, err);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, sizeof(uint64_t)) != 0)
		rc = sfs_error_set(err, SFS_EIO, "cannot create '%s/%s': %s",
				   dir, GEN_NAME, sfs_strerrno(errno));
	close(fd);
	return rc;
}

void ctx_gen_map(struct sfs_ctx *ctx, int writable)
{
	struct stat st;
	void *m;
	int fd;

	ctx->gen = &ctx->gen_local;
	fd = sfs_storedir_open(ctx->dir, GEN_NAME,
			       writable ? O_RDWR | O_CREAT : O_RDONLY, 0600,
			       NULL);
	if (fd < 0)
		return; /* a read-only store never changes: local is fine */
	if (fstat(fd, &st) == 0 && st.st_size < (off_t)sizeof(uint64_t) &&
	    writable && ftruncate(fd, sizeof(uint64_t)) == 0)
		st.st_size = sizeof(uint64_t);
	if (st.st_size >= (off_t)sizeof(uint64_t)) {
		m = mmap(NULL, sizeof(uint64_t),
			 PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
			 fd, 0);
		if (m != MAP_FAILED) {
			ctx->gen = m;
			ctx->gen_mapped = 1;
		}
	}
	close(fd);
}

uint64_t sfs_ctx_generation(struct sfs_ctx *ctx)
{
	return __atomic_load_n(ctx->gen, __ATOMIC_ACQUIRE);
}

/*
 * What the caches are keyed on: the store's generation mixed with this
 * host's DIR/generation, compared for equality only. A writer of this
 * host moves the latter before it returns, so a store that learns of
 * changes late (a shared one, through its listener) is still exact for
 * its own host's writers.
 */
uint64_t ctx_store_gen(struct sfs_ctx *ctx)
{
	return sfs_store_generation(ctx->store) ^
	       (sfs_ctx_generation(ctx) * UINT64_C(0x9E3779B97F4A7C15));
}
