/*
 * `secretfs volume-driver`: the Docker/podman volume plugin (SPEC §4). A
 * volume is a named set of view options (only=, layout=, uid=, gid=,
 * mode=, cache=; layout=flat unless told otherwise, so a container gets
 * /run/secrets/NAME); mounting it starts its own read-only view, a
 * `secretfs mount -f -o ro,allow_other,...` child of the driver.
 *
 * Invariants:
 * - The volumes, their options, the containers using each and the view's
 *   pid live in DIR/volumes.json in the store directory (0600, written
 *   whole to a temporary file and renamed, opened without following
 *   links), rewritten after every change: a restarted driver knows them.
 * - A view is mounted on MOUNTDIR/NAME, where MOUNTDIR is a mount of its
 *   own in a peer group of its own (shared). Containers bind that path
 *   (with rslave, a slave of it), so a view mounted on it later reaches
 *   them. A dead view's mount cannot be replaced in place (its root
 *   answers ENOTCONN, which `secretfs mount` would detach, taking it out
 *   of every container too), so every view is mounted first on
 *   STAGE/NAME (a private mount: a mount under a shared one cannot be
 *   moved) and then moved onto MOUNTDIR/NAME, on top of whatever is
 *   there. At startup the driver restores the view of every volume that
 *   containers use and whose view is gone.
 * - Mount is counted per container id (a repeated id counts once); the
 *   last Unmount detaches every mount stacked on MOUNTDIR/NAME, and the
 *   view exits when its connection goes.
 * - Requests come one at a time (volume_http.c): nothing here is locked.
 *
 * The driver leaves the views running when it stops (the systemd unit
 * says KillMode=process): running containers keep reading through a
 * restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "secretfs/audit.h"
#include "secretfs/policy.h"
#include "secretfs/value.h"
#include "volume.h"

#define DEFAULT_SOCKET	 "/run/docker/plugins/secretfs.sock"
#define DEFAULT_MOUNTDIR "/run/secretfs/volumes"
#define OPTS_MAX	 2048
#define VOLS_MAX	 1024
#define IDS_MAX		 1024
#define ID_MAX		 128
#define DIR_MAX		 512 /* the mount directory's path */
#define VPATH_MAX	 (DIR_MAX + 8 + SFS_NAME_MAX + 16)

struct vol {
	char name[SFS_NAME_MAX + 1];
	char opts[OPTS_MAX]; /* "only=..,layout=flat,..." for -o */
	char created[32];
	char **ids; /* containers that mounted it */
	size_t nids;
	long pid; /* the view's, 0: none known */
};

struct driver {
	char store[PATH_MAX], key[PATH_MAX], self[PATH_MAX];
	char mountdir[DIR_MAX], stage[DIR_MAX + 8], state[PATH_MAX + 16];
	struct vol *v[VOLS_MAX];
	size_t n;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("secretfs: volume-driver: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* --- options ------------------------------------------------------------ */

static int all_of(const char *s, const char *set, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && strspn(s, set) == n;
}

/* Is key=val a volume option we pass on? why gets the reason if not. */
static int opt_ok(const char *key, const char *val, const char **why)
{
	*why = NULL;
	if (!strcmp(key, "only"))
		*why = val[0] && !strchr(val, ',') && strlen(val) < 1024
			   ? NULL
			   : "only= takes GLOB[:GLOB...] without commas";
	else if (!strcmp(key, "layout"))
		*why = !strcmp(val, "flat") || !strcmp(val, "tree")
			   ? NULL
			   : "layout= takes flat or tree";
	else if (!strcmp(key, "uid") || !strcmp(key, "gid"))
		*why = all_of(val, "0123456789", 9) ? NULL
						    : "uid= and gid= take a "
						      "number";
	else if (!strcmp(key, "mode"))
		*why =
		    all_of(val, "01234567", 4) && strtoul(val, NULL, 8) <= 0777
			? NULL
			: "mode= takes an octal mode up to 0777";
	else if (!strcmp(key, "cache"))
		*why = !strcmp(val, "strict") || !strcmp(val, "open") ||
			       !strcmp(val, "kernel")
			   ? NULL
			   : "cache= takes strict, open or kernel";
	else
		*why = "unknown option (known: only, layout, uid, gid, "
		       "mode, cache)";
	return *why == NULL;
}

/* Append key=val to a -o list; -1 when it does not fit. */
static int opts_append(char *out, const char *key, const char *val)
{
	size_t n = strlen(out);
	int w =
	    snprintf(out + n, OPTS_MAX - n, "%s%s=%s", n ? "," : "", key, val);

	return w < 0 || (size_t)w >= OPTS_MAX - n ? -1 : 0;
}

struct opts_build {
	char *out;
	char err[512];
};

static int opts_cb(void *arg, const char *key, const struct sfs_json *v)
{
	struct opts_build *b = arg;
	const char *val = sfs_json_str(v), *why = NULL;

	if (!val)
		why = "the value must be a string";
	else if (opt_ok(key, val, &why) && opts_append(b->out, key, val))
		why = "too long";
	if (why)
		snprintf(b->err, sizeof(b->err), "option '%.64s%s%.128s': %s",
			 key, val ? "=" : "", val ? val : "", why);
	return why ? -1 : 0;
}

/* Options (a JSON object of strings, or NULL) into v->opts, layout=flat
 * unless given; 0, or -1 with why in err. */
static int opts_set(struct vol *v, const struct sfs_json *o, char *err,
		    size_t cap)
{
	struct opts_build b = {v->opts, ""};

	v->opts[0] = '\0';
	if (o && sfs_json_each(o, opts_cb, &b)) {
		snprintf(err, cap, "%s",
			 b.err[0] ? b.err : "Opts must be an object");
		return -1;
	}
	if (!strstr(v->opts, "layout=") &&
	    opts_append(v->opts, "layout", "flat")) {
		snprintf(err, cap, "options too long");
		return -1;
	}
	return 0;
}

/* --- the volume table --------------------------------------------------- */

static void vol_free(struct vol *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->nids; i++)
		free(v->ids[i]);
	free(v->ids);
	free(v);
}

static struct vol *vol_find(struct driver *d, const char *name)
{
	size_t i;

	for (i = 0; name && i < d->n; i++)
		if (!strcmp(d->v[i]->name, name))
			return d->v[i];
	return NULL;
}

static void vol_drop(struct driver *d, struct vol *v)
{
	size_t i;

	for (i = 0; i < d->n && d->v[i] != v; i++)
		;
	if (i == d->n)
		return;
	d->v[i] = d->v[--d->n];
	vol_free(v);
}

static int id_ok(const char *id)
{
	return id && all_of(id,
			    "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
			    ID_MAX);
}

/* Count a container; 1 when it was new, 0 when known, -1: no memory. */
static int ids_add(struct vol *v, const char *id)
{
	char **p, *copy;
	size_t i;

	for (i = 0; i < v->nids; i++)
		if (!strcmp(v->ids[i], id))
			return 0;
	if (v->nids >= IDS_MAX)
		return -1;
	p = realloc(v->ids, (v->nids + 1) * sizeof(*p));
	if (!p)
		return -1;
	v->ids = p;
	if (!(copy = strdup(id)))
		return -1;
	v->ids[v->nids++] = copy;
	return 1;
}

/* Forget a container; 1 when it was known. */
static int ids_del(struct vol *v, const char *id)
{
	size_t i;

	for (i = 0; i < v->nids; i++)
		if (!strcmp(v->ids[i], id)) {
			free(v->ids[i]);
			v->ids[i] = v->ids[--v->nids];
			return 1;
		}
	return 0;
}

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
static struct sfs_json *vol_json(const struct vol *v, int full)
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
static int state_save(const struct driver *d)
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
		say("cannot write '%s': %s", d->state, strerror(errno));
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
	return id_ok(key) && ids_add(l->v, key) >= 0 ? 0 : -1;
}

static int load_vol_cb(void *arg, const char *key, const struct sfs_json *j)
{
	struct load *l = arg;
	struct vol *v = calloc(1, sizeof(*v));
	const struct sfs_json *mounts = sfs_json_get(j, "mounts");
	char err[512];

	if (!v || sfs_policy_name_check(key, strlen(key)) != SFS_OK ||
	    l->d->n >= VOLS_MAX)
		goto bad;
	snprintf(v->name, sizeof(v->name), "%s", key);
	snprintf(v->created, sizeof(v->created), "%s",
		 sfs_json_get_str(j, "created_at")
		     ? sfs_json_get_str(j, "created_at")
		     : "");
	v->pid = (long)sfs_json_get_int(j, "pid", 0);
	l->v = v;
	if (opts_set(v, sfs_json_get(j, "options"), err, sizeof(err)) ||
	    (mounts && sfs_json_each(mounts, load_id_cb, l)))
		goto bad;
	l->d->v[l->d->n++] = v;
	return 0;
bad:
	say("'%s': volume '%.128s' is malformed: left out", l->d->state, key);
	vol_free(v);
	return 0;
}

/* Read the table; a missing file is an empty table. 0 or -1. */
static int state_load(struct driver *d)
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
		say("'%s': %s", d->state, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) || st.st_size > 64 * 1024 * 1024) {
		say("'%s': not a regular 0600 file of ours", d->state);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf)
		n = read(fd, buf, (size_t)st.st_size);
	if (!buf || n != (ssize_t)st.st_size ||
	    !(j = sfs_json_parse(buf, (size_t)n))) {
		say("'%s': not a JSON object", d->state);
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

/* --- views -------------------------------------------------------------- */

/* 1: path is the root of a mount; 0: not; -1: its mount is dead (a
 * view whose daemon is gone: ENOTCONN) or it cannot be asked. */
static int mount_root(const char *path)
{
	struct statx sx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx))
		return errno == ENOTCONN ? -1 : 0;
	if (!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		return -1;
	return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

/* Is the view of v serving? Asked of the daemon (AT_STATX_FORCE_SYNC):
 * the kernel keeps a dead view's attributes until they time out. */
static int view_alive(const struct driver *d, const struct vol *v)
{
	char p[VPATH_MAX];
	struct statx sx;

	snprintf(p, sizeof(p), "%s/%s/.status", d->mountdir, v->name);
	return statx(AT_FDCWD, p, AT_STATX_FORCE_SYNC, STATX_BASIC_STATS,
		     &sx) == 0;
}

static void vol_path(const struct driver *d, const struct vol *v, char *out,
		     size_t cap)
{
	snprintf(out, cap, "%s/%s", d->mountdir, v->name);
}

/* Fork and exec `secretfs mount STAGE/NAME -f -o ro,allow_other,OPTS`:
 * stdin closed, its messages on our stderr, a session of its own. The
 * arguments are built before the fork: the driver has threads, and the
 * child only calls what is safe after fork(). The child's pid, or -1. */
static pid_t view_spawn(const struct driver *d, const struct vol *v,
			const char *at)
{
	char o[OPTS_MAX + 32];
	const char *argv[12];
	int n = 0, fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid;

	snprintf(o, sizeof(o), "ro,allow_other,%s", v->opts);
	argv[n++] = "secretfs";
	argv[n++] = "--store";
	argv[n++] = d->store;
	if (d->key[0]) {
		argv[n++] = "--master-key";
		argv[n++] = d->key;
	}
	argv[n++] = "mount";
	argv[n++] = at;
	argv[n++] = "-f";
	argv[n++] = "-o";
	argv[n++] = o;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (fd >= 0)
			dup2(fd, 0);
		setsid();
		execv(d->self, (char *const *)argv);
		_exit(127);
	}
	if (fd >= 0)
		close(fd);
	return pid;
}

/* Wait until the child serves at dir (its .status answers) or exits.
 * Readiness, not a deadline on a quiet machine: up to a minute. */
static int view_wait(pid_t pid, const char *dir)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	char p[VPATH_MAX + 16];
	struct stat st;
	int i, status;

	snprintf(p, sizeof(p), "%s/.status", dir);
	for (i = 0; i < 6000; i++) {
		if (stat(p, &st) == 0)
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		nanosleep(&tick, NULL);
	}
	kill(pid, SIGTERM);
	return -1;
}

/* Start v's view on STAGE/NAME and move it onto MOUNTDIR/NAME, over
 * whatever is mounted there (a dead view). 0, or -1 with why in err. */
static int view_start(struct driver *d, struct vol *v, char *err, size_t cap)
{
	char at[VPATH_MAX], to[VPATH_MAX];
	pid_t pid;

	snprintf(at, sizeof(at), "%s/%s", d->stage, v->name);
	vol_path(d, v, to, sizeof(to));
	if ((mkdir(at, 0755) && errno != EEXIST) ||
	    (mkdir(to, 0755) && errno != EEXIST)) {
		snprintf(err, cap, "cannot make '%.300s': %s", at,
			 strerror(errno));
		return -1;
	}
	if (mount_root(at) != 0)
		umount2(at, MNT_DETACH); /* a half-started view */
	pid = view_spawn(d, v, at);
	if (pid < 0 || view_wait(pid, at)) {
		snprintf(err, cap,
			 "the view of '%s' did not start (see the "
			 "driver's log)",
			 v->name);
		return -1;
	}
	if (mount(at, to, NULL, MS_MOVE, NULL)) {
		snprintf(err, cap, "cannot move the view onto '%.300s': %s", to,
			 strerror(errno));
		umount2(at, MNT_DETACH);
		return -1;
	}
	v->pid = pid;
	return 0;
}

/* Detach every mount stacked on MOUNTDIR/NAME: the view exits when its
 * connection goes (no container holds it any more). */
static void view_stop(struct driver *d, struct vol *v)
{
	char to[VPATH_MAX];
	int i;

	vol_path(d, v, to, sizeof(to));
	for (i = 0; i < 64 && mount_root(to) != 0; i++)
		if (umount2(to, MNT_DETACH))
			break;
	v->pid = 0;
}

/* Reap views that exited (they are our children until we restart). */
static void reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* --- requests ----------------------------------------------------------- */

/* A reply: {"Err": why} for an error, else body (taken) plus "Err": "". */
static int reply(char **out, int status, struct sfs_json *body, const char *why)
{
	struct sfs_json *j = body ? body : sfs_json_object();

	*out = NULL;
	if (j && !sfs_json_set_str(j, "Err", why ? why : ""))
		*out = sfs_json_dump(j, 0);
	sfs_json_free(j);
	if (!*out) {
		*out = strdup("{\"Err\":\"out of memory\"}");
		if (!*out)
			abort();
		return 500;
	}
	return status;
}

static int fail_reply(char **out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_reply(char **out, int status, const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return reply(out, status, NULL, why);
}

/* {"Mountpoint": path or ""} plus, with full, the volume's details. */
static struct sfs_json *mountpoint_json(const struct driver *d,
					const struct vol *v, int full)
{
	struct sfs_json *j = sfs_json_object();
	char p[VPATH_MAX] = "";

	if (v->nids)
		vol_path(d, v, p, sizeof(p));
	if (!j || sfs_json_set_str(j, "Mountpoint", p) ||
	    (full && (sfs_json_set_str(j, "Name", v->name) ||
		      sfs_json_set_str(j, "CreatedAt", v->created) ||
		      sfs_json_set(j, "Status", vol_json(v, 0))))) {
		sfs_json_free(j);
		return NULL;
	}
	return j;
}

static int do_create(struct driver *d, const struct sfs_json *rq,
		     const char *name, char **out)
{
	struct vol *v;
	char err[600];

	if (sfs_policy_name_check(name, strlen(name)) != SFS_OK)
		return fail_reply(out, 400, "volume name '%.200s': %s", name,
				  sfs_policy_name_why(sfs_policy_name_check(
				      name, strlen(name))));
	if (vol_find(d, name))
		return fail_reply(out, 400, "volume '%s' already exists", name);
	if (d->n >= VOLS_MAX)
		return fail_reply(out, 400, "too many volumes (%d)", VOLS_MAX);
	if (!(v = calloc(1, sizeof(*v))))
		return fail_reply(out, 500, "out of memory");
	snprintf(v->name, sizeof(v->name), "%s", name);
	sfs_time_format(sfs_time_now(), v->created);
	if (opts_set(v, sfs_json_get(rq, "Opts"), err, sizeof(err))) {
		vol_free(v);
		return fail_reply(out, 400, "volume '%s': %s", name, err);
	}
	d->v[d->n++] = v;
	if (state_save(d)) {
		vol_drop(d, v);
		return fail_reply(out, 500, "cannot save the volume table");
	}
	return reply(out, 200, NULL, NULL);
}

static int do_remove(struct driver *d, struct vol *v, char **out)
{
	char p[VPATH_MAX];

	if (v->nids)
		return fail_reply(out, 409,
				  "volume '%s' is in use by %zu container%s",
				  v->name, v->nids, v->nids == 1 ? "" : "s");
	view_stop(d, v);
	vol_path(d, v, p, sizeof(p));
	rmdir(p);
	snprintf(p, sizeof(p), "%s/%s", d->stage, v->name);
	rmdir(p);
	vol_drop(d, v);
	if (state_save(d))
		return fail_reply(out, 500, "cannot save the volume table");
	return reply(out, 200, NULL, NULL);
}

static int do_mount(struct driver *d, struct vol *v, const char *id, char **out)
{
	char err[600];
	int added;

	if (!id_ok(id))
		return fail_reply(out, 400, "a container ID is needed");
	if (!view_alive(d, v) && view_start(d, v, err, sizeof(err)))
		return fail_reply(out, 500, "volume '%s': %s", v->name, err);
	if ((added = ids_add(v, id)) < 0)
		return fail_reply(out, 500, "too many containers");
	if (state_save(d)) {
		if (added)
			ids_del(v, id);
		return fail_reply(out, 500, "cannot save the volume table");
	}
	return reply(out, 200, mountpoint_json(d, v, 0), NULL);
}

static int do_unmount(struct driver *d, struct vol *v, const char *id,
		      char **out)
{
	if (!id_ok(id) || !ids_del(v, id))
		return fail_reply(out, 400,
				  "volume '%s' is not mounted for that "
				  "container",
				  v->name);
	if (!v->nids)
		view_stop(d, v);
	if (state_save(d))
		return fail_reply(out, 500, "cannot save the volume table");
	return reply(out, 200, NULL, NULL);
}

static int do_list(struct driver *d, char **out)
{
	struct sfs_json *j = sfs_json_object(), *list = sfs_json_array();
	size_t i;
	int bad = !j || !list;

	for (i = 0; !bad && i < d->n; i++) {
		struct sfs_json *e = mountpoint_json(d, d->v[i], 0);

		bad = !e || sfs_json_set_str(e, "Name", d->v[i]->name) ||
		      sfs_json_append(list, e);
	}
	if (!bad) {
		bad = sfs_json_set(j, "Volumes", list);
		list = NULL;
	}
	sfs_json_free(list);
	if (bad) {
		sfs_json_free(j);
		return fail_reply(out, 500, "out of memory");
	}
	return reply(out, 200, j, NULL);
}

/* Requests about one volume: Remove, Get, Path, Mount, Unmount. */
static int do_volume(struct driver *d, const char *op,
		     const struct sfs_json *rq, char **out)
{
	const char *name = sfs_json_get_str(rq, "Name");
	struct vol *v = vol_find(d, name);
	struct sfs_json *g;

	if (!name)
		return fail_reply(out, 400, "a volume Name is needed");
	if (!strcmp(op, "Create"))
		return do_create(d, rq, name, out);
	if (!v)
		return fail_reply(out, 404, "no such volume '%.200s'", name);
	if (!strcmp(op, "Remove"))
		return do_remove(d, v, out);
	if (!strcmp(op, "Mount"))
		return do_mount(d, v, sfs_json_get_str(rq, "ID"), out);
	if (!strcmp(op, "Unmount"))
		return do_unmount(d, v, sfs_json_get_str(rq, "ID"), out);
	if (!strcmp(op, "Path"))
		return reply(out, 200, mountpoint_json(d, v, 0), NULL);
	g = sfs_json_object();
	if (!g || sfs_json_set(g, "Volume", mountpoint_json(d, v, 1))) {
		sfs_json_free(g);
		return fail_reply(out, 500, "out of memory");
	}
	return reply(out, 200, g, NULL);
}

/* A fixed reply body. */
static struct sfs_json *literal(const char *s)
{
	return sfs_json_parse(s, strlen(s));
}

static int handle(void *arg, const char *path, const char *body, size_t len,
		  char **out)
{
	static const char *const ops[] = {"Create", "Remove", "Get",
					  "Path",   "Mount",  "Unmount"};
	struct driver *d = arg;
	struct sfs_json *rq;
	size_t i;
	int status;

	reap();
	if (!strcmp(path, "/Plugin.Activate"))
		return reply(out, 200,
			     literal("{\"Implements\":[\"VolumeDriver\"]}"),
			     NULL);
	if (!strcmp(path, "/VolumeDriver.Capabilities"))
		return reply(
		    out, 200,
		    literal("{\"Capabilities\":{\"Scope\":\"local\"}}"), NULL);
	if (!strcmp(path, "/VolumeDriver.List"))
		return do_list(d, out);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strncmp(path, "/VolumeDriver.", 14) &&
		    !strcmp(path + 14, ops[i]))
			break;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return fail_reply(out, 404, "unknown request '%.200s'", path);
	if (!(rq = sfs_json_parse(body, len)))
		return fail_reply(out, 400,
				  "malformed request: the body must "
				  "be a JSON object");
	status = do_volume(d, ops[i], rq, out);
	sfs_json_free(rq);
	return status;
}

/* --- the command -------------------------------------------------------- */

static const char driver_help[] =
    "Usage: secretfs [--store DIR] volume-driver [--socket PATH]\n"
    "                [--mount-dir DIR]\n"
    "\n"
    "Serve the Docker/podman volume plugin protocol on PATH "
    "(default\n" DEFAULT_SOCKET "; podman: name it in containers.conf\n"
    "[engine.volume_plugins]). Each volume is a read-only view of the\n"
    "store; volume options: only=GLOB[:GLOB...], layout=flat|tree\n"
    "(default flat), uid=N, gid=N, mode=OCTAL, cache=strict|open|kernel.\n"
    "Views are mounted under DIR (default " DEFAULT_MOUNTDIR "); the\n"
    "volumes are kept in the store directory (volumes.json). Root only.\n";

/* mkdir -p (0755). */
static int mkdirs(const char *path)
{
	char p[PATH_MAX], *s;

	snprintf(p, sizeof(p), "%s", path);
	for (s = p + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

/* The directory a socket path lives in (/run/docker/plugins). */
static void mkdirs_parent(const char *path)
{
	char p[PATH_MAX], *s;

	snprintf(p, sizeof(p), "%s", path);
	if ((s = strrchr(p, '/')) && s != p) {
		*s = '\0';
		mkdirs(p);
	}
}

/* dir as a mount of its own: shared in a peer group of its own (flag
 * MS_SHARED), or private (MS_PRIVATE). An existing mount there is kept
 * as it is (a restarted driver: views may be mounted under it). */
static int own_mount(const char *dir, unsigned long flag)
{
	if (mkdirs(dir))
		return -1;
	if (mount_root(dir) == 1)
		return mount(NULL, dir, NULL, flag, NULL);
	if (mount(dir, dir, NULL, MS_BIND, NULL) ||
	    mount(NULL, dir, NULL, MS_PRIVATE, NULL))
		return -1;
	return flag == MS_PRIVATE ? 0 : mount(NULL, dir, NULL, flag, NULL);
}

/* After a restart: views that containers use and that are gone are
 * started again (their containers see them: rslave); views no container
 * uses are detached. */
static void restore(struct driver *d)
{
	char err[600];
	size_t i;

	for (i = 0; i < d->n; i++) {
		struct vol *v = d->v[i];

		if (!v->nids)
			view_stop(d, v);
		else if (!view_alive(d, v) &&
			 view_start(d, v, err, sizeof(err)))
			say("volume '%s': %s", v->name, err);
	}
	state_save(d);
}

static int parse_args(int argc, char **argv, const char **sock,
		      const char **dir)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"mount-dir", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (ch == 's')
			*sock = optarg;
		else if (ch == 'm')
			*dir = optarg;
		else
			return cli_usage_error("volume-driver",
					       "unknown or incomplete option");
	}
	if (optind != argc)
		return cli_usage_error("volume-driver", "too many arguments");
	return 0;
}

/* The store and key, checked once (children open them again). */
static int driver_init(struct driver *d, const struct cli_global *g,
		       const char *dir)
{
	struct sfs_ctx_options co;
	struct sfs_ctx *ctx = NULL;
	int rc;

	memset(&co, 0, sizeof(co));
	co.readonly = 1;
	if ((rc = cli_open(g, &co, &ctx)))
		return rc;
	snprintf(d->store, sizeof(d->store), "%s", sfs_ctx_dir(ctx));
	if (g->master_key && !realpath(g->master_key, d->key))
		d->key[0] = '\0';
	sfs_ctx_close(ctx);
	snprintf(d->state, sizeof(d->state), "%s/volumes.json", d->store);
	if (!realpath("/proc/self/exe", d->self) ||
	    strlen(dir) >= sizeof(d->mountdir)) {
		say("'%.100s...': the mount directory's path is too long", dir);
		return EXIT_FAIL;
	}
	snprintf(d->mountdir, sizeof(d->mountdir), "%s", dir);
	snprintf(d->stage, sizeof(d->stage), "%s.stage", dir);
	if (own_mount(d->mountdir, MS_SHARED) ||
	    own_mount(d->stage, MS_PRIVATE)) {
		say("cannot set up '%s': %s", d->mountdir, strerror(errno));
		return EXIT_FAIL;
	}
	return state_load(d) ? EXIT_FAIL : 0;
}

static void driver_free(struct driver *d)
{
	while (d->n)
		vol_drop(d, d->v[d->n - 1]);
}

int cmd_volume_driver(const struct cli_global *g, int argc, char **argv)
{
	const char *sock = DEFAULT_SOCKET, *dir = DEFAULT_MOUNTDIR;
	struct driver *d;
	struct sigaction sa;
	int rc, i, fd = -1;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(driver_help, stdout);
			return EXIT_OK;
		}
	if ((rc = parse_args(argc, argv, &sock, &dir)))
		return rc;
	if (geteuid() != 0) {
		say("needs root (it mounts views)");
		return EXIT_FAIL;
	}
	if (!(d = calloc(1, sizeof(*d))))
		return EXIT_FAIL;
	if (!(rc = driver_init(d, g, dir))) {
		restore(d);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		mkdirs_parent(sock);
		fd = vol_http_listen(sock);
		rc = fd < 0 || vol_http_serve(fd, handle, d, &stop) ? EXIT_FAIL
								    : EXIT_OK;
	}
	if (fd >= 0)
		close(fd);
	driver_free(d);
	free(d);
	return rc;
}
