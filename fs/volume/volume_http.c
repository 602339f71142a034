/*
 * The volume driver's HTTP side: the Docker plugin protocol is HTTP/1.1
 * POSTs of JSON on a unix socket, served here with libmicrohttpd (the
 * only file that includes <microhttpd.h>); no HTTP is parsed by hand.
 *
 * One thread (MHD's internal polling thread) serves every connection, so
 * requests reach the handler one at a time and the volume table needs no
 * lock. What a client can do to it is bounded: a body over VOL_BODY_MAX
 * is answered 413 (before it is sent when its length is announced, else
 * once it ends: the excess is dropped as it comes), a client that connects
 * and sends nothing (or stops half-way) is dropped after IDLE_SECONDS, at
 * most MAX_CLIENTS connections are open at once, and any uid but root is
 * answered 403 (SO_PEERCRED: the socket's mode 0600 is the first fence,
 * this the second, for a socket handed over by systemd or re-moded).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "volume.h"

#define IDLE_SECONDS 10
#define MAX_CLIENTS  32
#define CONTENT_TYPE "application/vnd.docker.plugins.v1+json"
#define TOO_LARGE    "{\"Err\":\"request too large (over 1 MiB)\"}"

/* One request's body as it arrives. */
struct req {
	char *body;
	size_t len, cap;
	int refused;  /* the HTTP status it is refused with, or 0 */
	int answered; /* refused before its body was read */
};

struct server {
	vol_handler_fn handler;
	void *arg;
};

static int send_json(struct MHD_Connection *c, unsigned status,
		     const char *json)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* Is the client root? Asked of the kernel, not of the request. */
static int peer_is_root(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (!ci ||
	    getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return 0;
	return cr.uid == 0;
}

/* Does the request announce a body over VOL_BODY_MAX? Answered before
 * the body is read (before "100 Continue"); a body that comes without a
 * length is counted as it arrives (body_add). */
static int too_long(struct MHD_Connection *c)
{
	const char *n = MHD_lookup_connection_value(
	    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return n && strtoull(n, NULL, 10) > VOL_BODY_MAX;
}

/* Append a chunk of the body; 0, or -1 past VOL_BODY_MAX (or ENOMEM). */
static int body_add(struct req *r, const char *data, size_t n)
{
	char *p;
	size_t cap;

	if (n > VOL_BODY_MAX - r->len)
		return -1;
	if (r->len + n > r->cap) {
		cap = r->cap ? r->cap : 1024;
		while (cap < r->len + n)
			cap *= 2;
		p = realloc(r->body, cap);
		if (!p)
			return -1;
		r->body = p;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	return 0;
}

static enum MHD_Result answer(struct server *s, struct MHD_Connection *c,
			      const char *url, struct req *r)
{
	char *reply = NULL;
	int status =
	    s->handler(s->arg, url, r->body ? r->body : "", r->len, &reply);
	enum MHD_Result rc = send_json(c, (unsigned)status, reply);

	free(reply);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;

	(void)version;
	if (!r) { /* headers only: refuse early what needs no body */
		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		*con_cls = r;
		if (!peer_is_root(c))
			r->refused = 403;
		else if (strcmp(method, MHD_HTTP_METHOD_POST))
			r->refused = 405;
		else if (too_long(c))
			r->refused = 413;
		if (r->refused == 403)
			return send_json(c, 403,
					 "{\"Err\":\"permission denied: the "
					 "volume driver serves root only\"}");
		if (r->refused == 413) {
			r->answered = 1;
			return send_json(c, 413, TOO_LARGE);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		/* past the limit the rest is read and dropped, so that the
		 * client, still sending, gets the 413 at the end */
		if (!r->refused && body_add(r, upload, *upload_size))
			r->refused = 413;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->refused == 405)
		return send_json(c, 405,
				 "{\"Err\":\"only POST requests are served\"}");
	if (r->refused == 413 && !r->answered)
		return send_json(c, 413, TOO_LARGE);
	if (r->refused)
		return MHD_YES; /* already answered */
	return answer(cls, c, url, r);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode why)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)c;
	(void)why;
	if (r) {
		free(r->body);
		free(r);
	}
	*con_cls = NULL;
}

/* systemd socket activation: fd 3 when LISTEN_PID is us, else -1. */
static int activated_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) != 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	/* the views the driver starts must not hold the socket */
	if (fcntl(3, F_SETFD, FD_CLOEXEC))
		return -1;
	return 3;
}

int vol_http_listen(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd = activated_fd(), rc;

	if (fd >= 0)
		return fd;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr,
			"secretfs: volume-driver: socket path '%s' "
			"is too long\n",
			path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a stale socket of an earlier driver */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	old = umask(0177); /* 0600 from the start, no window */
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || chmod(path, 0600) || listen(fd, 64))
		goto fail;
	return fd;
fail:
	fprintf(stderr, "secretfs: volume-driver: socket '%s': %s\n", path,
		strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int vol_http_serve(int fd, vol_handler_fn handler, void *arg,
		   volatile sig_atomic_t *stop)
{
	struct server s = {handler, arg};
	struct MHD_Daemon *d;

	d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
	    on_request, &s, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_SECONDS,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CLIENTS,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr,
			"secretfs: volume-driver: cannot start the http "
			"server\n");
		return -1;
	}
	while (!*stop)
		poll(NULL, 0, 200);
	MHD_stop_daemon(d);
	return 0;
}
