/*
 * rotate: the rotator of scripts/bench's watched-secrets rows (issue 13).
 * Adds versions to secrets l<FROM> .. l<TO - 1> (mkstore's names) through
 * the core's API, as `secretfs version add` does, round robin.
 *
 * Usage: rotate STORE FROM TO RATE
 *   RATE 0: one version for each secret, then exit (so that every
 *   secret has a `default` to watch);
 *   RATE > 0: at most RATE versions per second (a pause of 1/RATE s
 *   after each) until SIGTERM, then prints how many it added and in how
 *   long (a loaded machine gives fewer).
 *
 * Not part of the product and not built by the Makefile: scripts/bench
 * compiles it into build/bench/ against build/libsecretfs.a.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "secretfs/ctx.h"
#include "secretfs/principal.h"
#include "secretfs/version.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int add(struct sfs_ctx *ctx, unsigned long i, unsigned long k)
{
	struct sfs_caller c;
	struct sfs_error err;
	char name[32], value[64];

	snprintf(name, sizeof(name), "l%07lu", i);
	snprintf(value, sizeof(value), "rotate-%ld-%lu", (long)getpid(), k);
	sfs_caller_self(&c);
	sfs_error_clear(&err);
	if (sfs_version_add(ctx, &c, name, value, strlen(value), 0, NULL,
			    &err) == SFS_OK)
		return 0;
	fprintf(stderr, "rotate: version add %s: %s\n", name, err.msg);
	return -1;
}

static int run(struct sfs_ctx *ctx, unsigned long from, unsigned long to,
	       double rate)
{
	struct timespec pause = {0, 0}, t0, t1;
	unsigned long i = from, k;

	if (rate > 0)
		pause.tv_nsec = (long)(1e9 / rate);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (k = 0; !stop; k++) {
		if (add(ctx, i, k))
			return -1;
		if (++i == to) {
			i = from;
			if (rate <= 0)
				break;
		}
		if (rate > 0)
			nanosleep(&pause, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rate > 0)
		printf("%lu versions in %.1f s\n", k,
		       (double)(t1.tv_sec - t0.tv_sec) +
			   (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	struct sfs_ctx_options o;
	struct sfs_error err;
	struct sfs_ctx *ctx = NULL;
	unsigned long from, to;
	int rc;

	if (argc != 5) {
		fprintf(stderr, "usage: rotate STORE FROM TO RATE\n");
		return 2;
	}
	from = strtoul(argv[2], NULL, 10);
	to = strtoul(argv[3], NULL, 10);
	if (to <= from)
		return 2;
	signal(SIGTERM, on_term);
	memset(&o, 0, sizeof(o));
	o.store_dir = argv[1];
	sfs_error_clear(&err);
	if (sfs_ctx_open(&ctx, &o, &err) != SFS_OK) {
		fprintf(stderr, "rotate: %s: %s\n", argv[1], err.msg);
		return 1;
	}
	rc = run(ctx, from, to, atof(argv[4]));
	sfs_ctx_close(ctx);
	return rc == 0 ? 0 : 1;
}
