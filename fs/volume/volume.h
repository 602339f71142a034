/*
 * Internal interface of the volume driver (`secretfs volume-driver`):
 * volume.c keeps the volume table and runs the command, volume_state.c
 * keeps it in the state file, volume_view.c runs the views,
 * volume_req.c answers requests, volume_http.c speaks HTTP on the
 * driver's unix socket (the only file that includes
 * <microhttpd.h>). The HTTP side knows nothing of volumes: it hands each
 * complete request (path and body) to one handler and sends back the
 * status and JSON body it gets.
 */
#ifndef SECRETFS_VOLUME_H
#define SECRETFS_VOLUME_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "fs.h"
#include "secretfs/value.h"

/* Requests larger than this get 413 and an error body. */
#define VOL_BODY_MAX (1024 * 1024)

/*
 * Answer one request: path ("/VolumeDriver.Mount"), body (body_len bytes,
 * not NUL-terminated, may be empty). *reply gets a malloc'd JSON text
 * (never NULL on return; the caller frees it). Returns the HTTP status.
 * Called on one thread only, one request at a time.
 */
typedef int (*vol_handler_fn)(void *arg, const char *path, const char *body,
			      size_t body_len, char **reply);

/*
 * The listening socket: systemd's (LISTEN_FDS) when the driver was
 * socket-activated, else path bound afresh (a stale socket there is
 * replaced; anything else is refused), mode 0600. The fd, or -1 after
 * printing why.
 */
int vol_http_listen(const char *path);

/* Serve requests on fd with handler until *stop is set (a signal); 0, or
 * -1 after printing why the server could not start. Clients other than
 * root (SO_PEERCRED) get 403; silent clients are dropped after a
 * timeout. */
int vol_http_serve(int fd, vol_handler_fn handler, void *arg,
		   volatile sig_atomic_t *stop);

#define OPTS_MAX  2048
#define VOLS_MAX  1024
#define IDS_MAX	  1024
#define ID_MAX	  128
#define DIR_MAX	  512 /* the mount directory's path */
#define VPATH_MAX (DIR_MAX + 8 + SFS_NAME_MAX + 16)

struct vol {
	char name[SFS_NAME_MAX + 1];
	char opts[OPTS_MAX]; /* "only=..,layout=flat,..." for -o */
	char created[32];
	char **ids; /* containers that mounted it */
	size_t nids;
	long pid; /* the view's, 0: none known */
};

/* The driver: its paths and the volume table. */
struct driver {
	char store[PATH_MAX], key[PATH_MAX], self[PATH_MAX];
	char mountdir[DIR_MAX], stage[DIR_MAX + 8], state[PATH_MAX + 16];
	struct vol *v[VOLS_MAX];
	size_t n;
};

/* "secretfs: volume-driver: <fmt>" on stderr (volume.c). */
void vol_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The volume table (volume.c). Options (a JSON object of strings, or
 * NULL) into v->opts, layout=flat unless given; 0, or -1 with why in
 * err. */
int vol_opts_set(struct vol *v, const struct sfs_json *o, char *err,
		 size_t cap);
void vol_free(struct vol *v);
struct vol *vol_find(struct driver *d, const char *name);
/* Take v out of the table and free it. */
void vol_drop(struct driver *d, struct vol *v);
/* Is id a container ID ([A-Za-z0-9_.-], up to ID_MAX bytes)? */
int vol_id_ok(const char *id);
/* Count a container; 1 when it was new, 0 when known, -1: no memory. */
int vol_ids_add(struct vol *v, const char *id);
/* Forget a container; 1 when it was known. */
int vol_ids_del(struct vol *v, const char *id);

/* The state file (volume_state.c). A volume as JSON: its options, and
 * with full the containers and the view's pid, as the file keeps it. */
struct sfs_json *vol_json(const struct vol *v, int full);
/* Write the whole table; 0, or -1 after saying why. */
int vol_state_save(const struct driver *d);
/* Read the table (a missing file is an empty one); 0 or -1. */
int vol_state_load(struct driver *d);

/* The views (volume_view.c). */
void vol_path(const struct driver *d, const struct vol *v, char *out,
	      size_t cap);
/* Is the view of v serving? */
int vol_view_alive(const struct driver *d, const struct vol *v);
/* Start v's view and move it onto MOUNTDIR/NAME; 0, or -1 with why in
 * err. */
int vol_view_start(struct driver *d, struct vol *v, char *err, size_t cap);
/* Detach every mount stacked on MOUNTDIR/NAME. */
void vol_view_stop(struct driver *d, struct vol *v);
/* Reap views that exited. */
void vol_reap(void);
/* mkdir -p of the directory path lives in. */
void vol_mkdirs_parent(const char *path);
/* dir as a mount of its own, MS_SHARED or MS_PRIVATE; 0 or -1. */
int vol_own_mount(const char *dir, unsigned long flag);

/* A vol_handler_fn over a struct driver (volume_req.c). */
int vol_handle(void *arg, const char *path, const char *body, size_t len,
	       char **out);

/* `secretfs volume-driver` (volume.c). */
int cmd_volume_driver(const struct cli_global *g, int argc, char **argv);

#endif
