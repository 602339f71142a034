/*
 * multihost: the PostgreSQL rows of scripts/bench (issue 12), measured
 * through mounts only (no product code linked). scripts/bench starts a
 * throwaway cluster (fsync=on), makes two "hosts" (two store directories
 * joined to one shared store, each mounted with cache=strict) and runs:
 *
 *   multihost commit PATH N
 *	N new versions of one secret through a mount (open O_TRUNC, write
 *	100 bytes, close: durable when close returns); prints the median
 *	and p99 of one version.
 *   multihost writers SECONDS PATH...
 *	one thread per PATH (a secret's default, on either host's mount),
 *	each writing new versions as above for SECONDS; prints versions/s
 *	in total and per writer.
 *   multihost prop PATH_A PATH_B N
 *	N times: a new value written on host A (PATH_A), then open + read +
 *	close of PATH_B on host B until it returns exactly that value; the
 *	time from A's close() returning to B's matching read. Prints the
 *	median and p99; a value not seen within 5 s is an error.
 *
 * Every loop is bounded (a count, a duration, a 5 s wait). Not part of the
 * product and not built by the Makefile: scripts/bench compiles it into
 * build/bench/.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VALUE_LEN    100
#define MAX_WRITERS  16
#define PROP_WAIT_MS 5000.0

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

/* A VALUE_LEN-byte value unique to (tag, i). */
static void make_value(char *v, const char *tag, long i)
{
	memset(v, '.', VALUE_LEN);
	snprintf(v, VALUE_LEN, "%s-%ld-%ld", tag, (long)getpid(), i);
}

/* One new version: open O_TRUNC, write, close. 0 or an errno. */
static int write_version(const char *path, const char *v)
{
	int fd, e = 0;

	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return errno;
	if (write(fd, v, VALUE_LEN) != VALUE_LEN)
		e = errno ? errno : EIO;
	if (close(fd) != 0 && !e)
		e = errno;
	return e;
}

/* Does PATH hold exactly v? 1, 0, or -errno. */
static int holds(const char *path, const char *v)
{
	char buf[VALUE_LEN + 1];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -EIO;
	return n == VALUE_LEN && memcmp(buf, v, VALUE_LEN) == 0;
}

static void print_dist(const char *what, double *lat, int n)
{
	qsort(lat, (size_t)n, sizeof(*lat), cmp_d);
	printf("%s median %.2f ms, p99 %.2f ms, max %.2f ms (%d)\n", what,
	       lat[n / 2], lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
	       lat[n - 1], n);
}

static int run_commit(const char *path, int n)
{
	char v[VALUE_LEN];
	double *lat, t0;
	int i, e = 0;

	lat = calloc((size_t)n, sizeof(*lat));
	if (!lat)
		return 1;
	for (i = 0; i < n && !e; i++) {
		make_value(v, "commit", i);
		t0 = now_ms();
		e = write_version(path, v);
		lat[i] = now_ms() - t0;
	}
	if (e)
		fprintf(stderr, "multihost: write %s: %s\n", path, strerror(e));
	else
		print_dist("new version", lat, n);
	free(lat);
	return e ? 1 : 0;
}

struct writer {
	pthread_t th;
	const char *path;
	double until;
	long done;
	int err;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char v[VALUE_LEN];

	while (!w->err && now_ms() < w->until) {
		make_value(v, w->path, w->done);
		w->err = write_version(w->path, v);
		if (!w->err)
			w->done++;
	}
	return NULL;
}

static int run_writers(double seconds, char **paths, int n)
{
	struct writer w[MAX_WRITERS];
	double t0, t1;
	long total = 0;
	int i, bad = 0;

	if (n > MAX_WRITERS)
		return 2;
	memset(w, 0, sizeof(w));
	t0 = now_ms();
	for (i = 0; i < n; i++) {
		w[i].path = paths[i];
		w[i].until = t0 + seconds * 1e3;
		if (pthread_create(&w[i].th, NULL, writer_main, &w[i]) != 0)
			return 1;
	}
	for (i = 0; i < n; i++) {
		pthread_join(w[i].th, NULL);
		total += w[i].done;
		if (w[i].err) {
			fprintf(stderr, "multihost: writer %s: %s\n", w[i].path,
				strerror(w[i].err));
			bad = 1;
		}
	}
	t1 = now_ms();
	printf("%.0f versions/s (%ld in %.1f s, %d writers:",
	       total * 1e3 / (t1 - t0), total, (t1 - t0) / 1e3, n);
	for (i = 0; i < n; i++)
		printf(" %ld", w[i].done);
	printf(")\n");
	return bad;
}

/* Wait until B holds v: the time since t0, or -1. */
static double wait_seen(const char *path_b, const char *v, double t0)
{
	struct timespec pause = {0, 100000};
	int r;

	for (;;) {
		r = holds(path_b, v);
		if (r == 1)
			return now_ms() - t0;
		if (r < 0 || now_ms() - t0 > PROP_WAIT_MS) {
			fprintf(stderr, "multihost: %s: %s\n", path_b,
				r < 0 ? strerror(-r) : "value not seen in 5 s");
			return -1;
		}
		nanosleep(&pause, NULL);
	}
}

static int run_prop(const char *path_a, const char *path_b, int n)
{
	char v[VALUE_LEN];
	double *lat;
	int i, e = 0;

	lat = calloc((size_t)n, sizeof(*lat));
	if (!lat)
		return 1;
	for (i = 0; i < n && !e; i++) {
		make_value(v, "prop", i);
		e = write_version(path_a, v);
		if (e) {
			fprintf(stderr, "multihost: write %s: %s\n", path_a,
				strerror(e));
			break;
		}
		lat[i] = wait_seen(path_b, v, now_ms());
		e = lat[i] < 0;
	}
	if (!e)
		print_dist("A -> B", lat, n);
	free(lat);
	return e ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "commit") && atoi(argv[3]) > 0)
		return run_commit(argv[2], atoi(argv[3]));
	if (argc >= 4 && !strcmp(argv[1], "writers") && atof(argv[2]) > 0)
		return run_writers(atof(argv[2]), argv + 3, argc - 3);
	if (argc == 5 && !strcmp(argv[1], "prop") && atoi(argv[4]) > 0)
		return run_prop(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: multihost commit PATH N\n"
			"       multihost writers SECONDS PATH...\n"
			"       multihost prop PATH_A PATH_B N\n");
	return 2;
}
