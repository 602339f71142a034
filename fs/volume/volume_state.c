/*
 * The volume driver's state file, DIR/volumes.json in the store
 * directory: every volume with its options, the containers using it and
 * its view's pid, written whole (a temporary file, fsync, rename; 0600,
 * no links followed) after every change and read back at startup.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretfs/secret.h"
#include "volume.h"

/* --- the state file ----------------------------------------------------- */

static struct sfs_json *opts_json(const struct vol *v)
{
	struct sfs_json *o = sfs_json_object();
	char copy[OPTS_MAX], *save = NULL, *w, *eq;

	snprintf(copy, sizeof(copy), "%s", v->opts);
	for (w = strtok_r(copy, ",", &save); o && w;
	     w = strtok_r(NULL, ",", &save)) {
		if (!(eq = strchr(w, '=')))
			continue;
		*eq = '\0';
		if (sfs_json_set_str(o, w, eq + 1)) {
			sfs_json_free(o);
			o = NULL;
		}
	}
	return o;
}

/* A volume as JSON: its options, and with full the containers (an
 * object keyed by id) and the view's pid, as the state file keeps it. */
struct sfs_json *vol_json(const struct vol *v, int full)
{
	struct sfs_json *j = sfs_json_object(), *ids = sfs_json_object();
	size_t i;
	int bad = !j || !ids;

	for (i = 0; !bad && i < v->nids; i++)
		bad = sfs_json_set_bool(ids, v->ids[i], 1);
	bad = bad || sfs_json_set(j, "options", opts_json(v)) ||
	      sfs_json_set_str(j, "created_at", v->created);
	if (!bad && full) {
		bad = sfs_json_set(j, "mounts", ids) ||
		      sfs_json_set_int(j, "pid", v->pid);
		ids = NULL;
	} else if (!bad) {
		bad = sfs_json_set_int(j, "mounts", (int64_t)v->nids);
	}
	sfs_json_free(ids);
	if (bad) {
		sfs_json_free(j);
		return NULL;
	}
	return j;
}

static char *state_text(const struct driver *d)
{
	struct sfs_json *j = sfs_json_object(), *vols = sfs_json_object();
	char *s = NULL;
	size_t i;
	int bad = !j || !vols;

	for (i = 0; !bad && i < d->n; i++)
		bad = sfs_json_set(vols, d->v[i]->name, vol_json(d->v[i], 1));
	if (!bad) {
		bad = sfs_json_set(j, "volumes", vols);
		vols = NULL;
	}
	if (!bad)
		s = sfs_json_dump(j, 1);
	sfs_json_free(vols);
	sfs_json_free(j);
	return s;
}

/* Write the whole table: a temporary file, fsync, rename. 0 or -1. */
int vol_state_save(const struct driver *d)
{
	char tmp[PATH_MAX + 32], *s = state_text(d);
	size_t len = s ? strlen(s) : 0;
	int fd = -1, rc = -1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", d->state);
	if (!s)
		goto out;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || write(fd, s, len) != (ssize_t)len || fsync(fd))
		goto out;
	if (close(fd) == 0 && rename(tmp, d->state) == 0)
		rc = 0;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		vol_say("cannot write '%s': %s", d->state, strerror(errno));
	free(s);
	return rc;
}

struct load {
	struct driver *d;
	struct vol *v;
};

static int load_id_cb(void *arg, const char *key, const struct sfs_json *v)
{
	struct load *l = arg;

	(void)v;
	return vol_id_ok(key) && vol_ids_add(l->v, key) >= 0 ? 0 : -1;
}

static int load_vol_cb(void *arg, const char *key, const struct sfs_json *j)
{
	struct load *l = arg;
	struct vol *v = calloc(1, sizeof(*v));
	const struct sfs_json *mounts = sfs_json_get(j, "mounts");
	char err[512];

	if (!v || sfs_secret_name_valid(key, NULL) != SFS_OK ||
	    l->d->n >= VOLS_MAX)
		goto bad;
	snprintf(v->name, sizeof(v->name), "%s", key);
	snprintf(v->created, sizeof(v->created), "%s",
		 sfs_json_get_str(j, "created_at")
		     ? sfs_json_get_str(j, "created_at")
		     : "");
	v->pid = (long)sfs_json_get_int(j, "pid", 0);
	l->v = v;
	if (vol_opts_set(v, sfs_json_get(j, "options"), err, sizeof(err)) ||
	    (mounts && sfs_json_each(mounts, load_id_cb, l)))
		goto bad;
	l->d->v[l->d->n++] = v;
	return 0;
bad:
	vol_say("'%s': volume '%.128s' is malformed: left out", l->d->state,
		key);
	vol_free(v);
	return 0;
}

/* Read the table; a missing file is an empty table. 0 or -1. */
int vol_state_load(struct driver *d)
{
	struct load l = {d, NULL};
	struct sfs_json *j = NULL;
	struct stat st;
	char *buf = NULL;
	ssize_t n = 0;
	int fd = open(d->state, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = -1;

	if (fd < 0 && errno == ENOENT)
		return 0; /* no volumes yet */
	if (fd < 0) {
		vol_say("'%s': %s", d->state, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) || st.st_size > 64 * 1024 * 1024) {
		vol_say("'%s': not a regular 0600 file of ours", d->state);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf)
		n = read(fd, buf, (size_t)st.st_size);
	if (!buf || n != (ssize_t)st.st_size ||
	    !(j = sfs_json_parse(buf, (size_t)n))) {
		vol_say("'%s': not a JSON object", d->state);
		goto out;
	}
	sfs_json_each(sfs_json_get(j, "volumes"), load_vol_cb, &l);
	rc = 0;
out:
	sfs_json_free(j);
	free(buf);
	close(fd);
	return rc;
}
