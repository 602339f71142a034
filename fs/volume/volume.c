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
 * Files: volume.c keeps the volume table, the options and the command;
 * volume_state.c the state file; volume_view.c the views and their
 * mounts; volume_req.c answers the protocol's requests; volume_http.c
 * speaks HTTP.
 *
 * The driver leaves the views running when it stops (the systemd unit
 * says KillMode=process): running containers keep reading through a
 * restart.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "volume.h"

#define DEFAULT_SOCKET	 "/run/docker/plugins/secretfs.sock"
#define DEFAULT_MOUNTDIR "/run/secretfs/volumes"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

void vol_say(const char *fmt, ...)
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
int vol_opts_set(struct vol *v, const struct sfs_json *o, char *err, size_t cap)
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

void vol_free(struct vol *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->nids; i++)
		free(v->ids[i]);
	free(v->ids);
	free(v);
}

struct vol *vol_find(struct driver *d, const char *name)
{
	size_t i;

	for (i = 0; name && i < d->n; i++)
		if (!strcmp(d->v[i]->name, name))
			return d->v[i];
	return NULL;
}

void vol_drop(struct driver *d, struct vol *v)
{
	size_t i;

	for (i = 0; i < d->n && d->v[i] != v; i++)
		;
	if (i == d->n)
		return;
	d->v[i] = d->v[--d->n];
	vol_free(v);
}

int vol_id_ok(const char *id)
{
	return id && all_of(id,
			    "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
			    ID_MAX);
}

/* Count a container; 1 when it was new, 0 when known, -1: no memory. */
int vol_ids_add(struct vol *v, const char *id)
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
int vol_ids_del(struct vol *v, const char *id)
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
			vol_view_stop(d, v);
		else if (!vol_view_alive(d, v) &&
			 vol_view_start(d, v, err, sizeof(err)))
			vol_say("volume '%s': %s", v->name, err);
	}
	vol_state_save(d);
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
		vol_say("'%.100s...': the mount directory's path is too long",
			dir);
		return EXIT_FAIL;
	}
	snprintf(d->mountdir, sizeof(d->mountdir), "%s", dir);
	snprintf(d->stage, sizeof(d->stage), "%s.stage", dir);
	if (vol_own_mount(d->mountdir, MS_SHARED) ||
	    vol_own_mount(d->stage, MS_PRIVATE)) {
		vol_say("cannot set up '%s': %s", d->mountdir, strerror(errno));
		return EXIT_FAIL;
	}
	return vol_state_load(d) ? EXIT_FAIL : 0;
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
		vol_say("needs root (it mounts views)");
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
		vol_mkdirs_parent(sock);
		fd = vol_http_listen(sock);
		rc = fd < 0 || vol_http_serve(fd, vol_handle, d, &stop)
			 ? EXIT_FAIL
			 : EXIT_OK;
	}
	if (fd >= 0)
		close(fd);
	driver_free(d);
	free(d);
	return rc;
}
