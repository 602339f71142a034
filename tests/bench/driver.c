/*
 * driver: the timing half of scripts/bench. One process, one interleaved
 * run: for each measurement, rounds alternate between the targets (the
 * starting target rotates each round), each round times a fixed number of
 * iterations with CLOCK_MONOTONIC, and a row's figure is the median of its
 * per-round means. Ratios come from medians of the same run, so a noisy
 * shared machine slows every target alike and the ratios hold.
 *
 * scripts/bench mounts the targets and passes their paths; the driver
 * checks what it reads (size and bytes) so a broken target is reported,
 * never timed. Every loop is bounded: a fixed count, or a time budget for
 * creating directory entries. No timed assertions live in any test suite:
 * the PASS/FAIL column here is a report, not a test.
 *
 * Not part of the product and not built by the Makefile: scripts/bench
 * compiles it into build/bench/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_T	   16
#define MAX_ROWS   160
#define MAX_GOALS  64
#define MAX_ROUNDS 128
#define NR_OPS	   14 /* minifuse.c's counter layout */
#define OP_FORGET  1
#define BUF_SIZE   (128 * 1024)
#define PATHLEN	   1024 /* paths from the command line */

static const int sizes[] = {100, 4096, 65536};
#define NR_SIZES 3

/* Rounds and iterations; --quick shrinks them. */
struct plan {
	int rounds, iters; /* open + read + close */
	int stat_rounds, stat_iters;
	int write_rounds, write_iters;
	int conc_rounds, conc_iters;
	int list_rounds; /* at most; fewer if over list_s */
	unsigned list_counts[2];
	double budget_s; /* creating list entries, in total */
	double list_s;	 /* timed listings of one count */
};

/* Many short rounds: on a busy machine, finer interleaving keeps the
 * targets' ratios closer than a few long rounds would. */
static const struct plan full_plan = {
    .rounds = 101,
    .iters = 150,
    .stat_rounds = 51,
    .stat_iters = 2000,
    .write_rounds = 15,
    .write_iters = 30,
    .conc_rounds = 31,
    .conc_iters = 300,
    .list_rounds = 9,
    .list_counts = {10000, 100000},
    .budget_s = 120,
    .list_s = 90,
};
static const struct plan quick_plan = {
    .rounds = 15,
    .iters = 60,
    .stat_rounds = 9,
    .stat_iters = 1000,
    .write_rounds = 5,
    .write_iters = 10,
    .conc_rounds = 7,
    .conc_iters = 200,
    .list_rounds = 3,
    .list_counts = {1000, 5000},
    .budget_s = 15,
    .list_s = 8,
};
static struct plan P;

/* A read target: a path with %d for the value's size. */
struct target {
	char name[24];
	char pre[PATHLEN], post[PATHLEN]; /* around the size's digits */
	uint64_t *ctr;			  /* minifuse's counters, or NULL */
	double sreq[4]; /* traced requests: r100 r4096 r64k stat */
	int broken;
	char why[200];
};

enum wkind { W_TRUNC, W_STAGE, W_CREATE, W_FSYNC };
static const char *const wop[] = {"new version O_TRUNC",
				  "new version stage+rename",
				  "create+write+close", "write+fsync"};

struct wtarget {
	char name[24];
	enum wkind kind;
	char path[PATHLEN];
	uint64_t *ctr;
	int fd;	      /* W_FSYNC only */
	unsigned seq; /* W_CREATE file number */
	int broken;
	char why[200];
	double split[4]; /* µs summed per step (wstep) over the timed ops */
	long nsplit;
};

/* The steps of one write of each kind, timed apart (the breakdown). */
static const char *const wstep[][4] = {{"open", "write", "close", NULL},
				       {"create", "write", "close", "rename"},
				       {"create", "write", "close", NULL},
				       {"write", "fsync", NULL, NULL}};

/* A listing target. Plain files grow to each count in turn; a secretfs
 * secrets/ serves one count: its store was filled to have entries before
 * it was mounted (scripts/bench's mkstore), and the rest are made here by
 * mkdir through the mount (the timed "mkdir secret" row). */
struct ltarget {
	char name[24];
	int mkdir; /* 1: secretfs secrets/, 0: plain files */
	char dir[PATHLEN];
	unsigned have, count; /* count: mkdir targets only */
	pid_t pid;	      /* mkdir: the daemon, for its RSS; or 0 */
	int broken;
	char why[200];
};

struct row {
	char op[48], target[24], value[48], reqs[16];
	double v;
};

struct goal {
	char op[48], target[24], ref[40], limit[16], result[24];
	double ratio;
};

static struct target rt[MAX_T];
static struct wtarget wt[MAX_T];
static struct ltarget lt[MAX_T];
static int nrt, nwt, nlt;
static char *conc_names, *kernel_path, *scale_path;
static struct {
	char name[24];
	pid_t pid;
} pids[MAX_T];
static int npids;
/* -G NAME:REF:LIMIT:PREFIX: ratio goals of NAME against REF on the rows
 * whose operation starts with PREFIX (side-by-side targets of one run). */
static struct {
	char name[24], ref[24], prefix[48];
	double limit;
} pairs[MAX_T];
static int npairs;
static struct row rows[MAX_ROWS];
static struct goal goals[MAX_GOALS];
static int nrows, ngoals;
static unsigned char *iobuf;

/* ---- small helpers ---- */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	if (n <= 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fill_pattern(unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)('a' + i % 26);
}

static const char *size_label(int size)
{
	return size == 100 ? "100 B" : size == 4096 ? "4 KiB" : "64 KiB";
}

static uint64_t ctr_total(const uint64_t *c)
{
	uint64_t t = 0;
	int i;

	for (i = 0; c && i < NR_OPS; i++)
		if (i != OP_FORGET)
			t += __atomic_load_n(&c[i], __ATOMIC_RELAXED);
	return t;
}

static void add_row(const char *op, const char *target, double v,
		    const char *value, const char *reqs)
{
	struct row *r;

	if (nrows == MAX_ROWS)
		return;
	r = &rows[nrows++];
	snprintf(r->op, sizeof(r->op), "%s", op);
	snprintf(r->target, sizeof(r->target), "%s", target);
	snprintf(r->value, sizeof(r->value), "%s", value);
	snprintf(r->reqs, sizeof(r->reqs), "%s", reqs ? reqs : "n/a");
	r->v = v;
}

/* reqs < 0: not counted; traced: counted with strace in the untimed
 * pass (marked '*'), else by minifuse's counters. */
static void add_us_row(const char *op, const char *target, double us,
		       double reqs, int traced)
{
	char value[48], rq[16];

	snprintf(value, sizeof(value), "%.2f µs", us);
	if (reqs >= 0)
		snprintf(rq, sizeof(rq), "%.2f%s", reqs, traced ? "*" : "");
	else
		snprintf(rq, sizeof(rq), "n/a");
	add_row(op, target, us, value, rq);
}

static void add_broken_row(const char *op, const char *target, const char *why)
{
	char value[48];

	printf("error: %s, %s: %s\n", op, target, why);
	snprintf(value, sizeof(value), "ERROR (see above)");
	add_row(op, target, NAN, value, "-");
}

static double row_v(const char *op, const char *target)
{
	int i;

	for (i = 0; i < nrows; i++)
		if (!strcmp(rows[i].op, op) && !strcmp(rows[i].target, target))
			return rows[i].v;
	return NAN;
}

/* Record a goal on row (op, target): ratio against ref must be <= limit,
 * or >= limit when ge. A missing figure gives "n/a". */
static void add_goal(const char *op, const char *target, double ratio,
		     const char *ref, double limit, int ge, const char *why)
{
	struct goal *g;

	if (ngoals == MAX_GOALS)
		return;
	g = &goals[ngoals++];
	snprintf(g->op, sizeof(g->op), "%s", op);
	snprintf(g->target, sizeof(g->target), "%s", target);
	snprintf(g->ref, sizeof(g->ref), "%s", ref);
	if (why && isnan(ratio))
		snprintf(g->limit, sizeof(g->limit), "-");
	else
		snprintf(g->limit, sizeof(g->limit), "%s%g",
			 ge ? ">=" : "<=", limit);
	g->ratio = ratio;
	if (why)
		snprintf(g->result, sizeof(g->result), "%s", why);
	else if (isnan(ratio))
		snprintf(g->result, sizeof(g->result), "n/a");
	else
		snprintf(g->result, sizeof(g->result), "%s",
			 (ge ? ratio >= limit : ratio <= limit) ? "PASS"
								: "FAIL");
}

static void *map_counters(const char *path)
{
	size_t len = NR_OPS * sizeof(uint64_t);
	int fd = open(path, O_RDONLY);
	void *p;

	if (fd < 0)
		return NULL;
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* "NAME=REST[@COUNTER]": split in place. */
static char *split_spec(char *spec, char *name, size_t nlen, uint64_t **ctr)
{
	char *eq = strchr(spec, '='), *at;

	if (!eq) {
		fprintf(stderr, "driver: bad target '%s'\n", spec);
		exit(2);
	}
	*eq = 0;
	snprintf(name, nlen, "%s", spec);
	at = strrchr(eq + 1, '@');
	if (ctr)
		*ctr = NULL;
	if (at && ctr) {
		*at = 0;
		*ctr = map_counters(at + 1);
	}
	return eq + 1;
}

/* ---- open + read to EOF + close ---- */

/* FMT is a path with %d where the value's size goes. */
static void set_fmt(struct target *t, const char *fmt)
{
	const char *d = strstr(fmt, "%d");

	if (!d) {
		fprintf(stderr, "driver: no %%d in '%s'\n", fmt);
		exit(2);
	}
	snprintf(t->pre, sizeof(t->pre), "%.*s", (int)(d - fmt), fmt);
	snprintf(t->post, sizeof(t->post), "%s", d + 2);
}

static void path_of(const struct target *t, int size, char *out)
{
	snprintf(out, PATH_MAX, "%s%d%s", t->pre, size, t->post);
}

/* Read the whole file; returns bytes read or -errno. */
static long read_file(const char *path, unsigned char *buf)
{
	long total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf + (total < BUF_SIZE ? total : 0),
			 BUF_SIZE - (size_t)(total < BUF_SIZE ? total : 0))) >
	       0)
		total += n;
	if (n < 0)
		total = -errno;
	if (close(fd) && total >= 0)
		total = -errno;
	return total;
}

static void mark_broken(int *broken, char *why, size_t len, const char *what,
			const char *path, long err)
{
	size_t n = strlen(path);
	const char *tail = n > 80 ? path + n - 80 : path;

	*broken = 1;
	if (err < 0)
		snprintf(why, len, "%.32s %.80s: %.60s", what, tail,
			 strerror((int)-err));
	else
		snprintf(why, len, "%.32s %.80s: %ld", what, tail, err);
}

/* One untimed read that checks size and bytes. */
static void check_target(struct target *t, int size)
{
	static unsigned char want[65536];
	char path[PATH_MAX];
	long n;

	path_of(t, size, path);
	fill_pattern(want, sizeof(want));
	n = read_file(path, iobuf);
	if (n != size)
		mark_broken(&t->broken, t->why, sizeof(t->why), "size of", path,
			    n);
	else if (memcmp(iobuf, want, (size_t)size))
		mark_broken(&t->broken, t->why, sizeof(t->why),
			    "wrong bytes in", path, 0);
}

/* One round; returns µs per op, or NAN and marks the target broken. */
static double read_round(struct target *t, int size, int iters)
{
	char path[PATH_MAX];
	double t0, t1;
	long n = 0;
	int i;

	path_of(t, size, path);
	t0 = now_us();
	for (i = 0; i < iters; i++) {
		n = read_file(path, iobuf);
		if (n != size)
			break;
	}
	t1 = now_us();
	if (n != size) {
		mark_broken(&t->broken, t->why, sizeof(t->why), "read", path,
			    n);
		return NAN;
	}
	return (t1 - t0) / iters;
}

/* The cost a strict read adds over a FUSE file: unwrap a data key and
 * decrypt the value with XChaCha20-Poly1305 (the store's AEAD). */
static unsigned char dk_key[32], dk_nonce[24], dk_wrapped[48];
static unsigned char *dk_ct, *dk_pt;
static unsigned long long dk_ctlen;

static void decrypt_setup(void)
{
	unsigned char data_key[32];

	dk_ct = malloc(65536 + 16);
	dk_pt = malloc(65536);
	if (!dk_ct || !dk_pt)
		exit(1);
	randombytes_buf(dk_key, sizeof(dk_key));
	randombytes_buf(data_key, sizeof(data_key));
	randombytes_buf(dk_nonce, sizeof(dk_nonce));
	fill_pattern(dk_pt, 65536);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    dk_wrapped, NULL, data_key, 32, NULL, 0, NULL, dk_nonce, dk_key);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    dk_ct, &dk_ctlen, dk_pt, 65536, NULL, 0, NULL, dk_nonce, data_key);
}

static double decrypt_round(int iters)
{
	unsigned char data_key[32];
	double t0;
	int i, bad = 0;

	t0 = now_us();
	for (i = 0; i < iters; i++) {
		bad |= crypto_aead_xchacha20poly1305_ietf_decrypt(
		    data_key, NULL, NULL, dk_wrapped, sizeof(dk_wrapped), NULL,
		    0, dk_nonce, dk_key);
		bad |= crypto_aead_xchacha20poly1305_ietf_decrypt(
		    dk_pt, NULL, NULL, dk_ct, dk_ctlen, NULL, 0, dk_nonce,
		    data_key);
	}
	if (bad)
		return NAN;
	return (now_us() - t0) / iters;
}

/* Rounds alternate between the targets, the first one rotating. */
static void read_size(int si)
{
	int size = sizes[si];
	double per[MAX_T + 1][MAX_ROUNDS], dec[MAX_ROUNDS];
	uint64_t c0[MAX_T];
	int r, k, j, nt = nrt + (size == 65536);
	char op[48];

	for (k = 0; k < nrt; k++) {
		if (!rt[k].broken)
			check_target(&rt[k], size);
		if (!rt[k].broken)
			read_round(&rt[k], size, P.iters / 4 + 1);
		c0[k] = ctr_total(rt[k].ctr);
	}
	for (r = 0; r < P.rounds; r++)
		for (j = 0; j < nt; j++) {
			k = (j + r) % nt;
			if (k == nrt)
				dec[r] = decrypt_round(P.iters);
			else if (!rt[k].broken)
				per[k][r] = read_round(&rt[k], size, P.iters);
		}
	snprintf(op, sizeof(op), "read %s", size_label(size));
	for (k = 0; k < nrt; k++) {
		double reqs = -1;

		if (rt[k].broken) {
			add_broken_row(op, rt[k].name, rt[k].why);
			continue;
		}
		if (rt[k].ctr)
			reqs = (double)(ctr_total(rt[k].ctr) - c0[k]) /
			       ((double)P.rounds * P.iters);
		else
			reqs = rt[k].sreq[si];
		add_us_row(op, rt[k].name, median(per[k], P.rounds), reqs,
			   !rt[k].ctr);
	}
	if (size == 65536)
		add_us_row("decrypt 64 KiB", "libsodium", median(dec, P.rounds),
			   -1, 0);
}

/* ---- stat (warm) ---- */

static double stat_round(struct target *t, int iters)
{
	char path[PATH_MAX];
	struct stat st;
	double t0;
	int i, bad = 0;

	path_of(t, 100, path);
	t0 = now_us();
	for (i = 0; i < iters; i++)
		bad |= stat(path, &st) != 0 || st.st_size != 100;
	if (bad) {
		mark_broken(&t->broken, t->why, sizeof(t->why), "stat", path,
			    -errno);
		return NAN;
	}
	return (now_us() - t0) / iters;
}

static void stat_all(void)
{
	double per[MAX_T][MAX_ROUNDS];
	uint64_t c0[MAX_T];
	int r, j, k;

	for (k = 0; k < nrt; k++) {
		if (!rt[k].broken)
			stat_round(&rt[k], P.stat_iters);
		c0[k] = ctr_total(rt[k].ctr);
	}
	for (r = 0; r < P.stat_rounds; r++)
		for (j = 0; j < nrt; j++) {
			k = (j + r) % nrt;
			if (!rt[k].broken)
				per[k][r] = stat_round(&rt[k], P.stat_iters);
		}
	for (k = 0; k < nrt; k++) {
		double reqs = -1;

		if (rt[k].broken) {
			add_broken_row("stat", rt[k].name, rt[k].why);
			continue;
		}
		if (rt[k].ctr)
			reqs = (double)(ctr_total(rt[k].ctr) - c0[k]) /
			       ((double)P.stat_rounds * P.stat_iters);
		else
			reqs = rt[k].sreq[3];
		add_us_row("stat", rt[k].name, median(per[k], P.stat_rounds),
			   reqs, !rt[k].ctr);
	}
}

/* ---- new versions ---- */

/* Step i of w's write ended now: add its time, start the next. */
static void split_add(struct wtarget *w, int i, double *t)
{
	double n = now_us();

	w->split[i] += n - *t;
	*t = n;
}

static int write_all_close(struct wtarget *w, double *t, int fd,
			   const unsigned char *buf, size_t len)
{
	int err = 0;

	split_add(w, 0, t);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != (ssize_t)len)
		err = -errno ? -errno : -EIO;
	split_add(w, 1, t);
	if (close(fd) && !err)
		err = -errno;
	split_add(w, 2, t);
	return err;
}

static int write_once(struct wtarget *w, const unsigned char *buf)
{
	char p[PATH_MAX], d[PATH_MAX];
	double t = now_us();
	int fd, err = -EINVAL;

	w->nsplit++;
	switch (w->kind) {
	case W_TRUNC:
		fd = open(w->path, O_WRONLY | O_TRUNC);
		return write_all_close(w, &t, fd, buf, 100);
	case W_STAGE:
		snprintf(p, sizeof(p), "%s/.bench-stage", w->path);
		snprintf(d, sizeof(d), "%s/default", w->path);
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (write_all_close(w, &t, fd, buf, 100))
			return -errno;
		err = rename(p, d) ? -errno : 0;
		split_add(w, 3, &t);
		return err;
	case W_CREATE:
		snprintf(p, sizeof(p), "%s/w%u", w->path, w->seq++);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		return write_all_close(w, &t, fd, buf, 100);
	case W_FSYNC:
		if (pwrite(w->fd, buf, 100, 0) != 100)
			return -errno;
		split_add(w, 0, &t);
		err = fsync(w->fd) ? -errno : 0;
		split_add(w, 1, &t);
		return err;
	}
	return err;
}

static double write_round(struct wtarget *w, int iters)
{
	unsigned char buf[100];
	double t0;
	int i, err = 0;

	fill_pattern(buf, sizeof(buf));
	t0 = now_us();
	for (i = 0; i < iters && !err; i++) {
		buf[0] = (unsigned char)('A' + i % 26);
		err = write_once(w, buf);
	}
	if (err) {
		mark_broken(&w->broken, w->why, sizeof(w->why), wop[w->kind],
			    w->path, err);
		return NAN;
	}
	return (now_us() - t0) / iters;
}

static void write_row(struct wtarget *w, double us, uint64_t c0)
{
	char value[48], rq[16] = "n/a";

	if (w->broken) {
		add_broken_row(wop[w->kind], w->name, w->why);
		return;
	}
	snprintf(value, sizeof(value), "%.1f µs (%.0f/s)", us, 1e6 / us);
	if (w->ctr)
		snprintf(rq, sizeof(rq), "%.2f",
			 (double)(ctr_total(w->ctr) - c0) /
			     ((double)P.write_rounds * P.write_iters));
	add_row(wop[w->kind], w->name, us, value, rq);
}

static void write_all(void)
{
	double per[MAX_T][MAX_ROUNDS];
	uint64_t c0[MAX_T];
	int r, j, k;

	for (k = 0; k < nwt; k++) {
		if (wt[k].kind == W_FSYNC) {
			wt[k].fd = open(wt[k].path,
					O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (wt[k].fd < 0)
				mark_broken(&wt[k].broken, wt[k].why,
					    sizeof(wt[k].why), "open",
					    wt[k].path, -errno);
		}
		if (!wt[k].broken)
			write_round(&wt[k], 2);
		memset(wt[k].split, 0, sizeof(wt[k].split));
		wt[k].nsplit = 0;
		c0[k] = ctr_total(wt[k].ctr);
	}
	for (r = 0; r < P.write_rounds; r++)
		for (j = 0; j < nwt; j++) {
			k = (j + r) % nwt;
			if (!wt[k].broken)
				per[k][r] = write_round(&wt[k], P.write_iters);
		}
	for (k = 0; k < nwt; k++) {
		write_row(&wt[k], median(per[k], P.write_rounds), c0[k]);
		if (wt[k].kind == W_FSYNC && wt[k].fd >= 0)
			close(wt[k].fd);
	}
}

/* The write rows' breakdown: where a write's time goes, step by step,
 * timed in the same rounds as the rows (no tracer), against the steps of
 * the references (a bare FUSE create + write + close, a disk write +
 * fsync). Means over every timed op, not medians: a step's mean can be
 * compared with the others' and they add up to the row's mean. */
static void write_split_note(void)
{
	int k, i;

	printf("write rows by step (mean µs per op over the timed rounds):");
	for (k = 0; k < nwt; k++) {
		if (wt[k].broken || !wt[k].nsplit)
			continue;
		printf("\n  %-26s %-10s", wop[wt[k].kind], wt[k].name);
		for (i = 0; i < 4 && wstep[wt[k].kind][i]; i++)
			printf(" %s %.1f", wstep[wt[k].kind][i],
			       wt[k].split[i] / (double)wt[k].nsplit);
	}
	putchar('\n');
}

/* ---- concurrent readers ---- */

struct reader {
	const char *path;
	int iters, size;
	long bad;
	unsigned char *buf;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	int i;

	for (i = 0; i < rd->iters; i++)
		if (read_file(rd->path, rd->buf) != rd->size)
			rd->bad++;
	return NULL;
}

/* Wall time of nthreads readers, each doing iters reads, in µs per
 * iteration (so 2 perfectly parallel readers give the same figure as 1). */
static double conc_round(struct target *t, int nthreads)
{
	static unsigned char bufs[2][BUF_SIZE];
	struct reader rd[2];
	pthread_t th[2];
	char path[PATH_MAX];
	double t0, t1;
	int i;

	path_of(t, 100, path);
	t0 = now_us();
	for (i = 0; i < nthreads; i++) {
		rd[i] = (struct reader){path, P.conc_iters, 100, 0, bufs[i]};
		if (pthread_create(&th[i], NULL, reader_main, &rd[i]))
			exit(1);
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	t1 = now_us();
	for (i = 0; i < nthreads; i++)
		if (rd[i].bad)
			return NAN;
	return (t1 - t0) / P.conc_iters;
}

static struct target *find_target(const char *name)
{
	int k;

	for (k = 0; k < nrt; k++)
		if (!strcmp(rt[k].name, name) && !rt[k].broken)
			return &rt[k];
	return NULL;
}

static void conc_all(void)
{
	double one[MAX_T][MAX_ROUNDS], two[MAX_T][MAX_ROUNDS];
	struct target *ct[MAX_T];
	char *names, *tok, *save = NULL;
	int n = 0, r, j, k;

	names = strdup(conc_names ? conc_names : "");
	for (tok = strtok_r(names, ",", &save); tok && n < MAX_T;
	     tok = strtok_r(NULL, ",", &save))
		if ((ct[n] = find_target(tok)))
			n++;
	free(names);
	for (r = 0; r < P.conc_rounds; r++)
		for (j = 0; j < n; j++) {
			k = (j + r) % n;
			one[k][r] = conc_round(ct[k], 1);
			two[k][r] = conc_round(ct[k], 2);
		}
	for (k = 0; k < n; k++) {
		double m1 = median(one[k], P.conc_rounds);
		double m2 = median(two[k], P.conc_rounds);
		char value[48];

		add_us_row("1 reader, 100 B", ct[k]->name, m1, -1, 0);
		snprintf(value, sizeof(value), "%.2fx (%.1f µs/op)",
			 2 * m1 / m2, m2);
		add_row("2 readers, 100 B", ct[k]->name, 2 * m1 / m2, value,
			"-");
	}
}

/* ---- readdir + stat ---- */

/* Bring t up to n entries, within the deadline; returns entries present. */
static unsigned list_fill(struct ltarget *t, unsigned n, double deadline)
{
	char p[PATH_MAX];
	int fd;

	while (t->have < n && !t->broken) {
		if ((t->have & 63) == 0 && now_us() > deadline)
			break;
		snprintf(p, sizeof(p), "%s/l%07u", t->dir, t->have);
		if (t->mkdir) {
			if (mkdir(p, 0755) && errno != EEXIST)
				mark_broken(&t->broken, t->why, sizeof(t->why),
					    "mkdir", p, -errno);
		} else if ((fd = open(p, O_WRONLY | O_CREAT, 0444)) < 0 ||
			   close(fd)) {
			mark_broken(&t->broken, t->why, sizeof(t->why),
				    "create", p, -errno);
		}
		if (!t->broken)
			t->have++;
	}
	return t->have;
}

/* One readdir + stat of every entry; returns ms, entries in *count. A
 * failed stat or a listing short of the entries created marks t broken. */
static double list_once(struct ltarget *t, unsigned *count)
{
	struct dirent *de;
	struct stat st;
	double t0 = now_us(), ms;
	DIR *d = opendir(t->dir);
	int err = 0;

	*count = 0;
	if (!d) {
		mark_broken(&t->broken, t->why, sizeof(t->why), "opendir",
			    t->dir, -errno);
		return NAN;
	}
	errno = 0;
	while (!err && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			err = -errno;
		else
			(*count)++;
	}
	if (!err && errno)
		err = -errno;
	closedir(d);
	ms = (now_us() - t0) / 1e3;
	if (err)
		mark_broken(&t->broken, t->why, sizeof(t->why), "list", t->dir,
			    err);
	else if (*count < t->have)
		mark_broken(&t->broken, t->why, sizeof(t->why),
			    "short listing of", t->dir, (long)*count);
	return err ? NAN : ms;
}

static double rss_mib(pid_t pid)
{
	char path[64], line[256];
	double kib = NAN;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return NAN;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lf", &kib) == 1)
			break;
	fclose(f);
	return kib / 1024;
}

static void rss_row(const char *op, const char *name, pid_t pid)
{
	char value[48];
	double m = rss_mib(pid);

	snprintf(value, sizeof(value), "%.1f MiB", m);
	add_row(op, name, m, value, "-");
}

/* Does target k take part in the listing of want entries? */
static int list_in(int k, unsigned want)
{
	return !lt[k].mkdir || lt[k].count == want;
}

/* Make the secretfs entries still missing (mkdir through the mount, within
 * the budget); returns how many entries every target can list. */
static unsigned list_make(unsigned want, double deadline)
{
	unsigned n = want, h0, h;
	char op[48];
	double t0;
	int k;

	for (k = 0; k < nlt; k++) {
		if (!lt[k].mkdir || lt[k].count != want)
			continue;
		t0 = now_us();
		h0 = lt[k].have;
		h = list_fill(&lt[k], want, deadline);
		n = h < n ? h : n;
		if (h > h0 && !lt[k].broken) {
			snprintf(op, sizeof(op), "mkdir secret, %u-%u", h0, h);
			add_us_row(op, lt[k].name, (now_us() - t0) / (h - h0),
				   -1, 0);
		}
	}
	for (k = 0; k < nlt; k++)
		if (!lt[k].mkdir)
			list_fill(&lt[k], n, 1e300);
	if (n < want)
		printf("note: created %u of %u secrets within the %.0f s "
		       "budget; listing %u\n",
		       n, want, P.budget_s, n);
	return n;
}

/* Warm listings of want entries, alternating between the targets; one
 * row per target named op. */
static void list_time(unsigned want, const char *op)
{
	double per[MAX_T][MAX_ROUNDS], warm = 0;
	unsigned got[MAX_T];
	int k, r, j, rounds = P.list_rounds;

	for (k = 0; k < nlt; k++) {
		double ms;

		if (!list_in(k, want) || lt[k].broken)
			continue;
		ms = list_once(&lt[k], &got[k]);
		warm += ms / 1e3;
		if (lt[k].mkdir && !lt[k].broken) {
			/* the first: a LOOKUP per name, as after 10 s idle */
			char cold[48], value[48];

			snprintf(cold, sizeof(cold), "%s, cold", op);
			snprintf(value, sizeof(value), "%.1f ms (%u)", ms,
				 got[k]);
			add_row(cold, lt[k].name, ms, value, "n/a");
		}
	}
	/* A slow listing gets fewer rounds (at least 3) to keep the run
	 * bounded. */
	if (warm > 0 && warm * rounds > P.list_s)
		rounds = P.list_s / warm < 3 ? 3 : (int)(P.list_s / warm);
	/* Warm means every name and attribute is in the kernel's cache; a
	 * FUSE mount's entries expire (secretfs: 10 s after their lookup),
	 * and a cold listing of 100k names outlasts that on a busy machine.
	 * So an untimed listing just before each timed one revalidates
	 * what expired since the last. */
	for (r = 0; r < rounds; r++)
		for (j = 0; j < nlt; j++) {
			k = (j + r) % nlt;
			if (!list_in(k, want) || lt[k].broken)
				continue;
			if (lt[k].mkdir)
				list_once(&lt[k], &got[k]);
			if (!lt[k].broken)
				per[k][r] = list_once(&lt[k], &got[k]);
		}
	for (k = 0; k < nlt; k++) {
		char value[48];

		if (!list_in(k, want))
			continue;
		if (lt[k].broken) {
			add_broken_row(op, lt[k].name, lt[k].why);
			continue;
		}
		snprintf(value, sizeof(value), "%.1f ms (%u)",
			 median(per[k], rounds), got[k]);
		add_row(op, lt[k].name, median(per[k], rounds), value, "n/a");
	}
}

/* After the listing: the daemon's RSS; then one change to the store (a
 * secret made through the mount: the poller compares every cached
 * secret, and the next listing is built afresh), a listing again, and
 * the RSS once more, at rest. */
static void list_rss(unsigned n)
{
	struct timespec settle = {0, 300000000};
	char op[48], p[PATH_MAX];
	unsigned got;
	int k;

	for (k = 0; k < nlt; k++) {
		if (!lt[k].mkdir || lt[k].count != n || !lt[k].pid ||
		    lt[k].broken)
			continue;
		snprintf(op, sizeof(op), "daemon RSS, %u secrets", n);
		rss_row(op, lt[k].name, lt[k].pid);
		snprintf(p, sizeof(p), "%s/x%07u", lt[k].dir, n);
		if (mkdir(p, 0755))
			continue;
		nanosleep(&settle, NULL);
		lt[k].have++; /* x...: listed, not named l... */
		list_once(&lt[k], &got);
		/* RELEASEDIR (freeing the listing's buffer) follows closedir
		 * asynchronously: the RSS at rest, not during the listing */
		nanosleep(&settle, NULL);
		snprintf(op, sizeof(op), "RSS after a change, %u", n);
		rss_row(op, lt[k].name, lt[k].pid);
	}
}

static void list_count(unsigned want, double deadline)
{
	char op[48];
	unsigned n = list_make(want, deadline);

	snprintf(op, sizeof(op), "readdir+stat %u", n);
	list_time(want, op);
	list_rss(want);
}

static void list_all(void)
{
	double deadline = now_us() + P.budget_s * 1e6;
	int i;

	if (nlt == 0)
		return;
	for (i = 0; i < 2; i++)
		list_count(P.list_counts[i], deadline);
}

/* ---- scaling and freshness ---- */

/* open+read+close of 100 B in the store with many secrets against the
 * strict store with few: the work per open must not grow. */
static void scale_check(void)
{
	struct target *s = find_target("strict"), many;
	double a[MAX_ROUNDS], b[MAX_ROUNDS];
	int r;

	if (!s || !scale_path)
		return;
	memset(&many, 0, sizeof(many));
	snprintf(many.name, sizeof(many.name), "strict-many");
	set_fmt(&many, scale_path);
	check_target(&many, 100);
	for (r = 0; r < P.rounds && !many.broken; r++) {
		a[r] = read_round(r % 2 ? s : &many, 100, P.iters);
		b[r] = read_round(r % 2 ? &many : s, 100, P.iters);
	}
	if (many.broken) {
		add_broken_row("read 100 B, many secrets", "strict", many.why);
		return;
	}
	for (r = 0; r < P.rounds; r++)
		if (r % 2) {
			double x = a[r];

			a[r] = b[r];
			b[r] = x;
		}
	add_us_row("read 100 B, few secrets", "strict", median(b, P.rounds), -1,
		   0);
	add_us_row("read 100 B, many secrets", "strict", median(a, P.rounds),
		   -1, 0);
	add_goal("read 100 B, many secrets", "strict",
		 median(a, P.rounds) / median(b, P.rounds), "few secrets", 1, 0,
		 "info");
}

/* cache=kernel: value files are read-only (no OPEN reaches the daemon, so
 * a write could not commit at close): a write through the mount is
 * refused. That a version added with the CLI is read at the next open is
 * checked by scripts/bench after the table. */
static void kernel_readonly(void)
{
	int fd, e;

	if (!kernel_path)
		return;
	fd = open(kernel_path, O_WRONLY | O_TRUNC);
	e = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	add_row("write through the mount", "kernel", e == EROFS,
		e == EROFS ? "EROFS" : e ? strerror(e) : "allowed", "-");
	add_goal("write through the mount", "kernel", NAN, "-", 0, 0,
		 e == EROFS ? "PASS" : "FAIL");
}

/* Path components each target's files lie under: equal depths make the
 * stat and open rows compare per-component costs fairly. */
static void depth_note(void)
{
	char path[PATH_MAX];
	const char *c;
	int k, n;

	printf("path depth (components walked by each open and stat):");
	for (k = 0; k < nrt; k++) {
		path_of(&rt[k], 100, path);
		for (n = 0, c = path; *c; c++)
			n += *c == '/' && c[1] && c[1] != '/';
		printf(" %s %d%s", rt[k].name, n, k + 1 < nrt ? "," : "\n");
	}
}

/* ---- goals (issue 4) ---- */

static void ratio_goal(const char *op, const char *t, const char *ref,
		       double limit)
{
	if (isnan(row_v(op, t)))
		return;
	add_goal(op, t, row_v(op, t) / row_v(op, ref), ref, limit, 0, NULL);
}

/* A floor (minifuse doing a duty of secretfs's): reported beside the
 * goal it bounds, never PASS or FAIL. */
static void floor_goal(const char *op, const char *t, const char *ref,
		       double limit)
{
	if (isnan(row_v(op, t)))
		return;
	add_goal(op, t, row_v(op, t) / row_v(op, ref), ref, limit, 0,
		 "floor");
}

static void read_goals(void)
{
	static const char *const modes[] = {"strict", "open", "kernel"};
	char op[48];
	double base;
	int i;

	for (i = 0; i < NR_SIZES; i++) {
		snprintf(op, sizeof(op), "read %s", size_label(sizes[i]));
		if (sizes[i] != 65536) {
			ratio_goal(op, "strict", "fuse-dio", 1.15);
			floor_goal(op, "dio-duties", "fuse-dio", 1.15);
			ratio_goal(op, "strict", "gocryptfs", 0.9);
			ratio_goal(op, "kernel", "tmpfs", 1.5);
		}
		ratio_goal(op, "open", "fuse-kc", 1.2);
		floor_goal(op, "kc-duties", "fuse-kc", 1.2);
	}
	base = row_v("read 64 KiB", "fuse-dio") +
	       1.2 * row_v("decrypt 64 KiB", "libsodium");
	if (!isnan(row_v("read 64 KiB", "strict")))
		add_goal("read 64 KiB", "strict",
			 row_v("read 64 KiB", "strict") / base,
			 "fuse-dio+1.2*decrypt", 1.0, 0, NULL);
	ratio_goal("stat", "strict", "tmpfs", 1.1);
	ratio_goal("stat", "open", "tmpfs", 1.1);
	ratio_goal("stat", "kernel", "tmpfs", 1.1);
	/* FUSE's own floor at the same depth: the minimal file */
	for (i = 0; i < 3; i++)
		if (!isnan(row_v("stat", modes[i])))
			add_goal("stat", modes[i],
				 row_v("stat", modes[i]) / row_v("stat", "fuse"),
				 "fuse (same depth)", 1.1, 0, "info");
}

/* Is NAME the first of a -G pair (its goals are the pair's)? */
static int paired(const char *name)
{
	int i;

	for (i = 0; i < npairs; i++)
		if (!strcmp(pairs[i].name, name))
			return 1;
	return 0;
}

static void pair_goals(void)
{
	int i, k;

	for (k = 0; k < npairs; k++)
		for (i = 0; i < nrows && ngoals < MAX_GOALS; i++)
			if (!strcmp(rows[i].target, pairs[k].name) &&
			    !strncmp(rows[i].op, pairs[k].prefix,
				     strlen(pairs[k].prefix)) &&
			    !isnan(rows[i].v))
				ratio_goal(rows[i].op, pairs[k].name,
					   pairs[k].ref, pairs[k].limit);
}

static void other_goals(void)
{
	double base = NAN;
	int i;

	for (i = 0; i < nwt; i++)
		if (wt[i].kind == W_CREATE && !strcmp(wt[i].name, "fuse"))
			base = row_v(wop[W_CREATE], wt[i].name);
	for (i = 0; i < nwt; i++)
		if (wt[i].kind == W_FSYNC)
			base += row_v(wop[W_FSYNC], wt[i].name);
	for (i = 0; i < nwt; i++)
		if ((wt[i].kind == W_TRUNC || wt[i].kind == W_STAGE) &&
		    !paired(wt[i].name) && !isnan(base))
			add_goal(wop[wt[i].kind], wt[i].name,
				 row_v(wop[wt[i].kind], wt[i].name) / base,
				 "fuse create+fsync", 1.5, 0, NULL);
	/* Another create target (fuse-sqlite: minifuse committing each
	 * close to SQLite) is a floor, reported against the same base. */
	for (i = 0; i < nwt; i++)
		if (wt[i].kind == W_CREATE && strcmp(wt[i].name, "fuse") &&
		    !isnan(base))
			add_goal(wop[W_CREATE], wt[i].name,
				 row_v(wop[W_CREATE], wt[i].name) / base,
				 "fuse create+fsync", 1.5, 0, "floor");
	if (!isnan(row_v("2 readers, 100 B", "strict")))
		add_goal("2 readers, 100 B", "strict",
			 row_v("2 readers, 100 B", "strict"), "1 reader", 1.5,
			 1, NULL);
}

/* Listing and RSS: stated for 100k secrets; fewer gives no verdict. */
static void list_goals(void)
{
	unsigned n = 0;
	char op[48];
	const char *ref = NULL, *why;
	int i;

	for (i = 0; i < nrows; i++) {
		unsigned m;

		if (sscanf(rows[i].op, "readdir+stat %u", &m) == 1)
			n = m;
	}
	why = n < 100000 ? "n/a (<100k)" : NULL;
	for (i = 0; i < nlt; i++)
		if (!lt[i].mkdir && !ref)
			ref = lt[i].name;
	snprintf(op, sizeof(op), "readdir+stat %u", n);
	for (i = 0; i < nlt && ref; i++)
		if (lt[i].mkdir && lt[i].count == n &&
		    !isnan(row_v(op, lt[i].name)))
			add_goal(op, lt[i].name,
				 row_v(op, lt[i].name) / row_v(op, ref), ref,
				 1.5, 0, why);
	snprintf(op, sizeof(op), "daemon RSS, %u secrets", n);
	if (!isnan(row_v(op, "strict")))
		add_goal(op, "strict", row_v(op, "strict") / 32, "32 MiB", 1.0,
			 0, why);
	snprintf(op, sizeof(op), "RSS after a change, %u", n);
	if (!isnan(row_v(op, "strict")))
		add_goal(op, "strict", row_v(op, "strict") / 32, "32 MiB", 1.0,
			 0, why);
}

/* ---- output ---- */

/* Print s left-aligned in w columns, counting UTF-8 characters. */
static void col(const char *s, int w)
{
	int n = 0;
	const char *p;

	for (p = s; *p; p++)
		n += ((unsigned char)*p & 0xc0) != 0x80;
	fputs(s, stdout);
	for (; n < w; n++)
		putchar(' ');
}

static void goal_cols(const struct goal *g)
{
	char ratio[24];

	if (isnan(g->ratio))
		snprintf(ratio, sizeof(ratio), "-");
	else
		snprintf(ratio, sizeof(ratio), "%.2fx", g->ratio);
	col(ratio, 8);
	col(g->ref, 22);
	col(g->limit, 8);
	printf("%s", g->result);
}

static void print_table(void)
{
	int i, j, first;

	col("operation", 31), col("target", 12), col("median", 24);
	col("req/op", 8), col("ratio", 8), col("vs", 22), col("goal", 8);
	printf("result\n");
	for (i = 0; i < nrows; i++) {
		col(rows[i].op, 31), col(rows[i].target, 12);
		col(rows[i].value, 24), col(rows[i].reqs, 8);
		for (first = 1, j = 0; j < ngoals; j++) {
			if (strcmp(goals[j].op, rows[i].op) ||
			    strcmp(goals[j].target, rows[i].target))
				continue;
			if (!first)
				printf("\n%75s", "");
			goal_cols(&goals[j]);
			first = 0;
		}
		putchar('\n');
	}
	printf("req/op: FUSE requests per operation (minifuse: its own "
	       "counters; '*': the daemon's reads of /dev/fuse, traced with "
	       "strace in a separate untimed pass; releases included)\n");
	depth_note();
	write_split_note();
}

/* ---- command line ---- */

static void usage(void)
{
	fprintf(stderr, "usage: driver pattern SIZE\n"
			"       driver count FMT N\n"
			"       driver [-q] [-r NAME=FMT[@COUNTER]]... "
			"[-w NAME=KIND:PATH[@COUNTER]]...\n"
			"              [-L NAME=files:DIR]... "
			"[-L NAME=mkdir:COUNT,HAVE,PID:DIR]...\n"
			"              [-p NAME=PID]... [-C NAMES]\n"
			"              [-s FMT] [-k PATH] "
			"[-G NAME:REF:LIMIT:PREFIX]...\n");
	exit(2);
}

static void add_write_target(char *spec)
{
	static const char *const kinds[] = {"trunc", "stage", "create",
					    "fsync"};
	struct wtarget *w = &wt[nwt];
	char *rest = split_spec(spec, w->name, sizeof(w->name), &w->ctr);
	char *colon = strchr(rest, ':');
	int k;

	if (!colon || nwt == MAX_T)
		usage();
	*colon = 0;
	for (k = 0; k < 4 && strcmp(rest, kinds[k]); k++)
		;
	if (k == 4)
		usage();
	w->kind = (enum wkind)k;
	w->fd = -1;
	snprintf(w->path, sizeof(w->path), "%s", colon + 1);
	nwt++;
}

static void add_list_target(char *spec)
{
	struct ltarget *l = &lt[nlt];
	char *rest = split_spec(spec, l->name, sizeof(l->name), NULL);

	int pid, off = 0;

	if (nlt == MAX_T)
		usage();
	if (sscanf(rest, "mkdir:%u,%u,%d:%n", &l->count, &l->have, &pid,
		   &off) == 3 &&
	    off > 0) {
		l->mkdir = 1;
		l->pid = (pid_t)pid;
	} else if (!strncmp(rest, "files:", 6)) {
		off = 6;
	} else {
		usage();
	}
	snprintf(l->dir, sizeof(l->dir), "%s", rest + off);
	nlt++;
}

/* "NAME=r100:X,r4096:Y,r65536:Z,stat:W" from the traced pass. */
static void set_traced(char *spec)
{
	char name[24], *rest = split_spec(spec, name, sizeof(name), NULL);
	double v[4];
	int k;

	if (sscanf(rest, "r100:%lf,r4096:%lf,r65536:%lf,stat:%lf", &v[0], &v[1],
		   &v[2], &v[3]) != 4)
		return;
	for (k = 0; k < nrt; k++)
		if (!strcmp(rt[k].name, name))
			memcpy(rt[k].sreq, v, sizeof(v));
}

static void add_pair(const char *spec)
{
	if (npairs == MAX_T ||
	    sscanf(spec, "%23[^:]:%23[^:]:%lf:%47[^\n]", pairs[npairs].name,
		   pairs[npairs].ref, &pairs[npairs].limit,
		   pairs[npairs].prefix) != 4)
		usage();
	npairs++;
}

static void parse_args(int argc, char **argv)
{
	int c;

	P = full_plan;
	while ((c = getopt(argc, argv, "qr:w:L:p:C:s:k:R:G:")) != -1) {
		switch (c) {
		case 'q':
			P = quick_plan;
			break;
		case 'r':
			if (nrt == MAX_T)
				usage();
			set_fmt(&rt[nrt],
				split_spec(optarg, rt[nrt].name,
					   sizeof(rt[nrt].name), &rt[nrt].ctr));
			for (c = 0; c < 4; c++)
				rt[nrt].sreq[c] = -1;
			nrt++;
			break;
		case 'w':
			add_write_target(optarg);
			break;
		case 'L':
			add_list_target(optarg);
			break;
		case 'p':
			if (npids == MAX_T)
				usage();
			pids[npids].pid = (pid_t)atoi(
			    split_spec(optarg, pids[npids].name,
				       sizeof(pids[npids].name), NULL));
			npids++;
			break;
		case 'C':
			conc_names = optarg;
			break;
		case 's':
			scale_path = optarg;
			break;
		case 'k':
			kernel_path = optarg;
			break;
		case 'R':
			set_traced(optarg);
			break;
		case 'G':
			add_pair(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

/* "count FMT N": untimed, for counting a daemon's requests from outside
 * (scripts/bench traces its reads of /dev/fuse). For each kind, prints
 * "KIND START END" in CLOCK_REALTIME seconds around N operations, with
 * quiet gaps between kinds so that late releases fall in their window. */
static int count_pass(const char *fmt, int n)
{
	static const char *const kinds[] = {"r100", "r4096", "r65536", "stat"};
	struct timespec gap = {0, 150000000}, a, b;
	struct target t;
	struct stat st;
	int k, i, bad = 0;

	memset(&t, 0, sizeof(t));
	set_fmt(&t, fmt);
	for (k = 0; k < 4; k++) {
		char path[PATH_MAX];

		path_of(&t, k < 3 ? sizes[k] : 100, path);
		nanosleep(&gap, NULL);
		clock_gettime(CLOCK_REALTIME, &a);
		for (i = 0; i < n; i++)
			bad |= k < 3 ? read_file(path, iobuf) != sizes[k]
				     : stat(path, &st) != 0;
		clock_gettime(CLOCK_REALTIME, &b);
		printf("%s %ld.%06ld %ld.%06ld\n", kinds[k], (long)a.tv_sec,
		       a.tv_nsec / 1000, (long)b.tv_sec, b.tv_nsec / 1000);
	}
	nanosleep(&gap, NULL);
	return bad;
}

static int print_pattern(const char *arg)
{
	static unsigned char buf[65536];
	long n = atol(arg);

	if (n <= 0 || n > (long)sizeof(buf))
		return 2;
	fill_pattern(buf, (size_t)n);
	return fwrite(buf, 1, (size_t)n, stdout) == (size_t)n ? 0 : 1;
}

/* `wcount trunc|stage PATH N`: N untimed new versions, as the timed rows
 * write them (scripts/bench traces the daemon meanwhile). */
static int wcount_pass(const char *kind, const char *path, int n)
{
	struct wtarget w;
	unsigned char buf[100];
	int i;

	memset(&w, 0, sizeof(w));
	w.kind = !strcmp(kind, "trunc") ? W_TRUNC : W_STAGE;
	snprintf(w.path, sizeof(w.path), "%s", path);
	fill_pattern(buf, sizeof(buf));
	for (i = 0; i < n; i++) {
		buf[0] = (unsigned char)('a' + i % 26);
		if (write_once(&w, buf))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int i;

	if (argc == 3 && !strcmp(argv[1], "pattern"))
		return print_pattern(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "count")) {
		iobuf = malloc(BUF_SIZE);
		return iobuf ? count_pass(argv[2], atoi(argv[3])) : 1;
	}
	if (argc == 5 && !strcmp(argv[1], "wcount"))
		return wcount_pass(argv[2], argv[3], atoi(argv[4]));
	parse_args(argc, argv);
	if (sodium_init() < 0 || !(iobuf = malloc(BUF_SIZE)))
		return 1;
	decrypt_setup();
	for (i = 0; i < NR_SIZES; i++)
		read_size(i);
	stat_all();
	write_all();
	conc_all();
	list_all();
	scale_check();
	kernel_readonly();
	for (i = 0; i < npids; i++)
		rss_row("daemon RSS, few secrets", pids[i].name, pids[i].pid);
	read_goals();
	other_goals();
	pair_goals();
	list_goals();
	print_table();
	return 0;
}
