/*
 * notifylat: commit -> inotify event latency for scripts/bench (issue 13).
 * Adds N versions to a secret through the core's API, as `secretfs
 * version add` does, and after each commit returns waits on an inotify
 * watch of the secret's default on a mount until the mount's notifier
 * delivers IN_CLOSE_WRITE (notify=modify) or IN_MOVED_TO (replace, on
 * the directory). Prints p50 and p99 in milliseconds. An event already
 * queued when the commit returns counts as 0.
 *
 * Usage: notifylat STORE NAME MOUNTPOINT N
 *        notifylat STORE NAME - N    (events stamped by a watcher elsewhere)
 *        notifylat --stamp DIR       (that watcher)
 *
 * With MOUNTPOINT "-" the events come on stdin, one CLOCK_MONOTONIC time
 * in milliseconds per line, from `notifylat --stamp` running where the
 * application would, e.g. inside a podman container (containers share
 * the host's monotonic clock): the latency is the event's own time, so
 * the pipe's delay back to the host does not count. The store may be
 * another host's store directory on a shared PostgreSQL store: then the
 * figure is commit on host A -> event on host B.
 *
 * Not part of the product and not built by the Makefile: scripts/bench
 * compiles it into build/bench/ against build/libsecretfs.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "secretfs/ctx.h"
#include "secretfs/principal.h"
#include "secretfs/version.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Block until an event with one of mask's bits; 0 or -1. */
static int wait_event(int fd, uint32_t mask)
{
	char buf[4096] __attribute__((aligned(8)));
	const struct inotify_event *e;
	ssize_t n, off;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		for (off = 0; off < n; off += sizeof(*e) + e->len) {
			e = (const struct inotify_event *)(buf + off);
			if (e->mask & mask)
				return 0;
		}
	}
}

/* The next event's time: from the watch fd, or a stamp line on stdin. */
static int next_event(int fd, double *at)
{
	char line[64];

	if (fd >= 0) {
		if (wait_event(fd, IN_CLOSE_WRITE | IN_MOVED_TO))
			return -1;
		*at = now_ms();
		return 0;
	}
	if (!fgets(line, sizeof(line), stdin))
		return -1;
	*at = strtod(line, NULL);
	return 0;
}

/* --stamp DIR: a line with the time of each event in DIR, until killed. */
static int stamp(const char *dir)
{
	int fd = inotify_init1(IN_CLOEXEC);

	if (fd < 0 || inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		perror("notifylat: watch");
		return 1;
	}
	printf("watching\n");
	fflush(stdout);
	while (wait_event(fd, IN_CLOSE_WRITE | IN_MOVED_TO) == 0) {
		printf("%.3f\n", now_ms());
		fflush(stdout);
	}
	return 1;
}

static int run(struct sfs_ctx *ctx, const char *name, int fd, double *lat,
	       int n)
{
	struct sfs_caller c;
	struct sfs_error err;
	char value[64];
	double t0, at;
	int i;

	sfs_caller_self(&c);
	for (i = 0; i < n; i++) {
		snprintf(value, sizeof(value), "notifylat-%d-%ld", i,
			 (long)getpid());
		sfs_error_clear(&err);
		if (sfs_version_add(ctx, &c, name, value, strlen(value), 0,
				    NULL, &err) != SFS_OK) {
			fprintf(stderr, "notifylat: version add: %s\n",
				err.msg);
			return -1;
		}
		t0 = now_ms();
		if (next_event(fd, &at))
			return -1;
		lat[i] = at > t0 ? at - t0 : 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sfs_ctx_options o;
	struct sfs_error err;
	struct sfs_ctx *ctx = NULL;
	char dir[4096];
	double *lat;
	int n, fd = -1, rc = 1;

	if (argc == 3 && !strcmp(argv[1], "--stamp"))
		return stamp(argv[2]);
	if (argc != 5 || (n = atoi(argv[4])) <= 0) {
		fprintf(stderr, "usage: notifylat STORE NAME MOUNTPOINT|- N\n"
				"       notifylat --stamp DIR\n");
		return 2;
	}
	lat = calloc((size_t)n, sizeof(*lat));
	snprintf(dir, sizeof(dir), "%s/secrets/%s", argv[3], argv[2]);
	if (strcmp(argv[3], "-"))
		fd = inotify_init1(IN_CLOEXEC);
	if (!lat || (strcmp(argv[3], "-") &&
		     (fd < 0 || inotify_add_watch(fd, dir, IN_CLOSE_WRITE |
							      IN_MOVED_TO) < 0))) {
		perror("notifylat: watch");
		return 1;
	}
	memset(&o, 0, sizeof(o));
	o.store_dir = argv[1];
	sfs_error_clear(&err);
	if (sfs_ctx_open(&ctx, &o, &err) != SFS_OK) {
		fprintf(stderr, "notifylat: %s: %s\n", argv[1], err.msg);
		return 1;
	}
	if (run(ctx, argv[2], fd, lat, n) == 0) {
		qsort(lat, (size_t)n, sizeof(*lat), cmp_d);
		printf("p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d rotations)\n",
		       lat[n / 2],
		       lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
		       lat[n - 1], n);
		rc = 0;
	}
	sfs_ctx_close(ctx);
	if (fd >= 0)
		close(fd);
	free(lat);
	return rc;
}
