/*
 * Watchers of the generation: how a writer knows that every daemon has
 * dropped what its kernel caches of what it just changed before the
 * writer returns (a change is visible on its host when the writer's
 * command or close() returns).
 *
 * A cache=kernel mount serves reads from the page cache with no request
 * to its daemon (no OPEN at all), so nothing is checked per open; and in
 * every mode the kernel keeps names and attributes (mode, owner, size)
 * for seconds: the daemon must invalidate before the writer returns. A
 * daemon's own writes invalidate what they changed themselves, so its
 * commits skip its own slot (sfs_ctx_watch_exempt_self).
 *
 * DIR/generation holds the 8-byte counter at offset 0 (ctx.c) and, from
 * offset WATCH_OFF, a table of WATCH_SLOTS 32-bit words: words 0 to
 * WATCH_EPOCH - 1 are slots (ack words), the last (WATCH_EPOCH) counts
 * registrations. A daemon claims a slot by taking an OFD write lock on
 * the slot's bytes and holds it for its life: the lock, not a pid, says
 * the watcher is alive, so a killed daemon's slot is free at once and a
 * reused pid never counts. Once its slot is claimed and its ack stored,
 * the daemon adds one to the epoch word.
 *
 * The daemon FUTEX_WAITs on the counter's low word; a writer, after its
 * commit bumped the counter, FUTEX_WAKEs it, then for each locked slot
 * waits (FUTEX_WAIT on the ack word) until the ack reaches its
 * generation, WATCH_WAIT_MS in all at most: a hung or stopped daemon
 * slows a writer by that much and never blocks it. Futexes on a shared
 * file mapping work across processes.
 *
 * Asking whether a slot is locked is a system call (F_OFD_GETLK), and a
 * slot never acked (never claimed, or its daemon dead) would be asked at
 * every commit: so a writer keeps, per context, the slots found locked
 * at its last full scan of the table and the epoch read just before that
 * scan. While the epoch has not moved no daemon has registered since
 * (daemons can die, not appear): the writer asks about those slots only;
 * once it moves, it scans the table again.
 *
 * A writer keeps DIR/generation open from its first commit and maps the
 * table once it exists: until then one lseek per commit, after that
 * none. Never fstat: a stat marks the file's times as seen, so with
 * multigrain timestamps (Linux 6.13+) its next change takes a
 * fine-grained time, which moves the clock the store's WAL reads at the
 * next commit: the WAL's mtime then changes and its fdatasync writes the
 * inode as well (see sfs_audit_size).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ctx_watch.h"
#include "secretfs/ctx.h"

#define WATCH_OFF     4096
#define WATCH_SLOTS   64
#define WATCH_SIZE    (WATCH_OFF + WATCH_SLOTS * 4)
#define WATCH_WAIT_MS 200
#define WATCH_EPOCH   (WATCH_SLOTS - 1) /* the registrations word */

static long futex(uint32_t *addr, int op, uint32_t val,
		  const struct timespec *ts)
{
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* The counter's low 32 bits: what futexes wait on. */
static uint32_t *gen_low(struct sfs_ctx *ctx)
{
	uint32_t *w = (uint32_t *)(void *)ctx->gen;

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return w + 1;
#else
	return w;
#endif
}

static int gen_path(const struct sfs_ctx *ctx, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/generation", ctx->dir);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* fcntl(cmd) of a write lock on slot i's 4 bytes; fl holds the result. */
static int slot_fcntl(int fd, int i, int cmd, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;
	fl->l_start = WATCH_OFF + i * 4;
	fl->l_len = 4;
	return fcntl(fd, cmd, fl);
}

/* Is some process holding slot i's lock? */
static int slot_alive(int fd, int i)
{
	struct flock fl;

	return slot_fcntl(fd, i, F_OFD_GETLK, &fl) == 0 &&
	       fl.l_type != F_UNLCK;
}

static int slot_claim(int fd, int i)
{
	struct flock fl;

	return slot_fcntl(fd, i, F_OFD_SETLK, &fl) == 0;
}

int sfs_ctx_watch_register(struct sfs_ctx *ctx)
{
	char path[PATH_MAX];
	struct stat st;
	void *m;
	int fd, i;

	if (ctx->reg_ack)
		return 0;
	if (!ctx->gen_mapped || gen_path(ctx, path, sizeof(path)))
		return -1;
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) ||
	    (st.st_size < WATCH_SIZE && ftruncate(fd, WATCH_SIZE) != 0))
		goto fail;
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, WATCH_OFF);
	if (m == MAP_FAILED)
		goto fail;
	for (i = 0; i < WATCH_EPOCH; i++) {
		if (slot_claim(fd, i)) {
			ctx->reg_tab = m;
			ctx->reg_ack = (uint32_t *)m + i;
			__atomic_store_n(ctx->reg_ack, *gen_low(ctx),
					 __ATOMIC_RELEASE);
			/* after the lock and the ack: a writer that reads
			 * the new epoch and then scans finds both */
			__atomic_add_fetch(ctx->reg_tab + WATCH_EPOCH, 1,
					   __ATOMIC_SEQ_CST);
			ctx->reg_fd = fd;
			return 0;
		}
	}
	munmap(m, 4096);
fail:
	close(fd);
	return -1;
}

void sfs_ctx_watch_exempt_self(struct sfs_ctx *ctx)
{
	ctx->reg_self = 1;
}

uint64_t sfs_ctx_watch_wait(struct sfs_ctx *ctx, uint64_t seen, int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	uint64_t g;

	/* a store shared by many hosts: a change made elsewhere moves this
	 * host's generation too (its listener, at each wait) */
	if (ctx->store && sfs_store_remote_poll(ctx->store))
		__atomic_add_fetch(ctx->gen, 1, __ATOMIC_RELEASE);
	g = sfs_ctx_generation(ctx);

	if (g != seen)
		return g;
	if (ctx->gen_mapped)
		futex(gen_low(ctx), FUTEX_WAIT, (uint32_t)seen, &ts);
	else
		nanosleep(&ts, NULL);
	return sfs_ctx_generation(ctx);
}

void sfs_ctx_watch_ack(struct sfs_ctx *ctx, uint64_t gen)
{
	(void)ctx;
	if (!ctx->reg_ack)
		return;
	__atomic_store_n(ctx->reg_ack, (uint32_t)gen, __ATOMIC_RELEASE);
	futex(ctx->reg_ack, FUTEX_WAKE, INT_MAX, NULL);
}

/* Nanoseconds left until deadline (CLOCK_MONOTONIC), or 0. */
static long left_ns(const struct timespec *deadline)
{
	struct timespec now;
	long long d;

	clock_gettime(CLOCK_MONOTONIC, &now);
	d = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
	    (deadline->tv_nsec - now.tv_nsec);
	return d > 0 ? (long)d : 0;
}

/* Wait until *ack has reached gen (32-bit serial compare) or deadline. */
static void wait_ack(uint32_t *ack, uint32_t gen,
		     const struct timespec *deadline)
{
	struct timespec ts;
	uint32_t a;
	long ns;

	for (;;) {
		a = __atomic_load_n(ack, __ATOMIC_ACQUIRE);
		if ((int32_t)(a - gen) >= 0 || !(ns = left_ns(deadline)))
			return;
		ts.tv_sec = ns / 1000000000L;
		ts.tv_nsec = ns % 1000000000L;
		futex(ack, FUTEX_WAIT, a, &ts);
	}
}

static void watch_map(struct sfs_ctx *ctx)
{
	char path[PATH_MAX];
	void *m;

	if (ctx->watch_fd < 0) {
		if (gen_path(ctx, path, sizeof(path)))
			return;
		ctx->watch_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (ctx->watch_fd < 0)
			return;
	}
	if (lseek(ctx->watch_fd, 0, SEEK_END) < WATCH_SIZE)
		return;
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ctx->watch_fd, WATCH_OFF);
	if (m != MAP_FAILED)
		ctx->watch_tab = m;
}

/* The slots locked now, the epoch read first (see the header). */
static void watch_scan(struct sfs_ctx *ctx, uint32_t epoch)
{
	uint64_t alive = 0;
	int i;

	for (i = 0; i < WATCH_EPOCH; i++)
		if (slot_alive(ctx->watch_fd, i))
			alive |= 1ULL << i;
	ctx->watch_alive = alive;
	ctx->watch_epoch = epoch;
	ctx->watch_scanned = 1;
}

uint64_t ctx_watch_prepare(struct sfs_ctx *ctx)
{
	uint32_t epoch;

	if (!ctx->gen_mapped)
		return 0;
	if (!ctx->watch_tab)
		watch_map(ctx);
	if (!ctx->watch_tab)
		return 0;
	/* after the generation's bump, before the scan: a daemon that
	 * registered before this commit is in the scan or moved the epoch */
	epoch = __atomic_load_n(ctx->watch_tab + WATCH_EPOCH, __ATOMIC_SEQ_CST);
	if (!ctx->watch_scanned || epoch != ctx->watch_epoch)
		watch_scan(ctx, epoch);
	return ctx->watch_alive;
}

void ctx_watch_close(struct sfs_ctx *ctx)
{
	if (ctx->watch_tab)
		munmap(ctx->watch_tab, 4096);
	if (ctx->watch_fd >= 0)
		close(ctx->watch_fd);
	ctx->watch_tab = NULL;
	ctx->watch_fd = -1;
	/* our slot is free once its lock goes with the descriptor */
	if (ctx->reg_tab)
		munmap(ctx->reg_tab, 4096);
	if (ctx->reg_fd >= 0)
		close(ctx->reg_fd);
	ctx->reg_tab = NULL;
	ctx->reg_ack = NULL;
	ctx->reg_fd = -1;
}

/* After ctx_end() let go of the mutex: watch_fd and watch_tab were set
 * before it did and only change at close; slots is what
 * ctx_watch_prepare() returned under it. */
void ctx_watch_sync(struct sfs_ctx *ctx, uint64_t slots)
{
	struct timespec deadline;
	uint32_t gen;
	int i;

	if (!ctx->gen_mapped)
		return;
	gen = (uint32_t)sfs_ctx_generation(ctx);
	futex(gen_low(ctx), FUTEX_WAKE, INT_MAX, NULL);
	if (!ctx->watch_tab || !slots)
		return;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += (WATCH_WAIT_MS % 1000) * 1000000L;
	deadline.tv_sec +=
	    WATCH_WAIT_MS / 1000 + deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	for (i = 0; i < WATCH_EPOCH; i++) {
		/* not locked at the scan, or acked already: no need to ask
		 * whether it lives */
		if (!(slots & (1ULL << i)) ||
		    (int32_t)(__atomic_load_n(ctx->watch_tab + i,
					      __ATOMIC_ACQUIRE) -
			      gen) >= 0 ||
		    (ctx->reg_self && ctx->reg_ack &&
		     ctx->reg_ack - ctx->reg_tab == i))
			continue;
		if (slot_alive(ctx->watch_fd, i))
			wait_ack(ctx->watch_tab + i, gen, &deadline);
	}
}
