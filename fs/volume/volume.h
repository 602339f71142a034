/*
 * Internal interface of the volume driver (`secretfs volume-driver`):
 * volume.c keeps the volumes and their views, volume_http.c speaks HTTP
 * on the driver's unix socket (the only file that includes
 * <microhttpd.h>). The HTTP side knows nothing of volumes: it hands each
 * complete request (path and body) to one handler and sends back the
 * status and JSON body it gets.
 */
#ifndef SECRETFS_VOLUME_H
#define SECRETFS_VOLUME_H

#include <signal.h>
#include <stddef.h>

#include "fs.h"

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

/* `secretfs volume-driver` (volume.c). */
int cmd_volume_driver(const struct cli_global *g, int argc, char **argv);

#endif
