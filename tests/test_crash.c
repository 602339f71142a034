/*
 * Crash suite (issue 5, items 1 and 2): the daemon SIGKILLed at random
 * moments under 4 writers, and writers SIGKILLed in the middle of a
 * value.
 *
 * Every value written is self-checking (rel_util.h: it names itself, and
 * its bytes follow from that name), so whatever the store holds after a
 * crash can be proven to be a complete written value, never a torn or
 * mixed one. A writer reports a value's name through a pipe only after
 * its close() (or its rename onto default) returned 0: those are the
 * commits the daemon promised, and each must be in the store after the
 * crash. The store is read back through the core, not the daemon.
 *
 * Semantics checked for killed writers: a staged file (`.NAME`) commits
 * nothing unless renamed onto default; a direct write (`default` with
 * O_TRUNC, or `versions/N`) commits, at the dying writer's close, exactly
 * the bytes of the write() calls that reached the daemon, or nothing.
 *
 * $SECRETFS_CRASH_ITERATIONS (default 100) daemon kills; the random
 * moments are seeded (printed on failure) so a failure reproduces.
 */
#include <sys/mman.h>

#include "rel_util.h"

#define WRITERS	  4
#define VALUE_CAP 3000
#define REC	  RU_TAG_MAX

static const char *const sec_names[] = {"alpha", "beta"};

/* ---- writers ----------------------------------------------------------- */

static int write_all(int fd, const unsigned char *b, size_t n)
{
	size_t half = n / 2;

	/* two write() calls: a kill between them leaves half a value in
	 * the daemon, which must never be committed as a version */
	if (write(fd, b, half) != (ssize_t)half)
		return errno;
	if (write(fd, b + half, n - half) != (ssize_t)(n - half))
		return errno;
	return 0;
}

/* One commit by mode: default O_TRUNC, staged + rename, versions/N. */
static int commit_one(int k, int s, const char *sec, const unsigned char *v,
		      size_t n)
{
	char rel[300], rel2[300], lat[300];
	const char *l;
	int fd, e;

	switch (s % 3) {
	case 0:
		snprintf(rel, sizeof(rel), "secrets/%s/default", sec);
		fd = open(P(rel), O_WRONLY | O_TRUNC | O_CLOEXEC);
		break;
	case 1:
		snprintf(rel, sizeof(rel), "secrets/%s/.w%d", sec, k);
		fd = open(P(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0600);
		break;
	default:
		snprintf(lat, sizeof(lat), "secrets/%s", sec);
		l = xget(lat, "user.secret.latest_version");
		if (!l)
			return errno;
		snprintf(rel, sizeof(rel), "secrets/%s/versions/%lu", sec,
			 strtoul(l, NULL, 10) + 1);
		fd = open(P(rel),
			  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		break;
	}
	if (fd < 0)
		return errno;
	e = write_all(fd, v, n);
	if (close(fd) && !e)
		e = errno;
	if (!e && s % 3 == 1) {
		snprintf(rel2, sizeof(rel2), "secrets/%s/default", sec);
		e = ERR(rename(P(rel), P(rel2)));
	}
	return e;
}

/* Write until the daemon is gone; report each promised commit. */
static void writer(int k, int iter, int out)
{
	static unsigned char v[VALUE_CAP];
	char tag[REC];
	const char *sec = sec_names[k % 2];
	size_t n;
	int s, e;

	for (s = 0;; s++) {
		snprintf(tag, sizeof(tag), "%s-w%d-i%d-s%d", sec, k, iter, s);
		n = ru_value(tag, v, VALUE_CAP);
		e = commit_one(k, s, sec, v, n);
		if (e == EEXIST) /* versions/N lost the race: fine */
			continue;
		if (e)
			_exit(0);
		/* a fixed-size record: atomic on a pipe */
		if (write(out, tag, REC) != REC)
			_exit(3);
	}
}

/* ---- the store checked ------------------------------------------------- */

struct acked {
	char (*tags)[REC];
	int n, cap;
};

static void acked_add(struct acked *a, const char *tag)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 256;
		a->tags = realloc(a->tags, (size_t)a->cap * REC);
		ck_assert_ptr_nonnull(a->tags);
	}
	snprintf(a->tags[a->n++], REC, "%s", tag);
}

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * Every version of every secret decrypts to a complete written value (or
 * the seed); every acknowledged tag is stored; integrity ok.
 */
static void verify_store(struct acked *a, unsigned seed, int iter)
{
	struct sfs_ctx *ctx = ru_ctx();
	struct acked present = {NULL, 0, 0};
	struct ru_nums *nums = malloc(sizeof(*nums));
	struct sfs_caller c;
	struct sfs_value val;
	struct sfs_error e;
	char tag[REC];
	int i, j;

	ck_assert_ptr_nonnull(nums);
	sfs_caller_self(&c);
	ru_assert_integrity(ctx);
	for (i = 0; i < 2; i++) {
		ru_versions(ctx, sec_names[i], nums);
		for (j = 0; j < nums->count; j++) {
			sfs_error_clear(&e);
			ck_assert_msg(sfs_version_read(ctx, &c, sec_names[i],
						       nums->n[j], &val, NULL,
						       &e) == 0,
				      "seed %u iter %d: %s v%u: %s", seed, iter,
				      sec_names[i], nums->n[j], e.msg);
			if (nums->n[j] == 1) {
				ck_assert_uint_eq(val.len, 4);
				ck_assert_int_eq(memcmp(val.data, "seed", 4), 0);
			} else {
				ck_assert_msg(ru_value_ok(val.data, val.len,
							  VALUE_CAP, tag),
					      "seed %u iter %d: %s v%u is not "
					      "a complete written value",
					      seed, iter, sec_names[i],
					      nums->n[j]);
				acked_add(&present, tag);
			}
			sfs_value_release(&val);
		}
	}
	sfs_ctx_close(ctx);
	if (present.n) /* none yet: qsort must not get NULL */
		qsort(present.tags, (size_t)present.n, REC, tag_cmp);
	for (i = 0; i < a->n; i++)
		ck_assert_msg(present.n && bsearch(a->tags[i], present.tags,
						   (size_t)present.n, REC,
						   tag_cmp),
			      "seed %u iter %d: committed value %s is lost",
			      seed, iter, a->tags[i]);
	free(present.tags);
	free(nums);
}

static void seed_secrets(void)
{
	ck_assert_int_eq(cli("secret", "create", "alpha", "--value", "seed",
			     NULL), 0);
	ck_assert_int_eq(cli("secret", "create", "beta", "--value", "seed",
			     NULL), 0);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : def;
}

/* One iteration: mount, 4 writers, SIGKILL after delay_ms, collect.
 * 1 when the daemon died of the signal alone (ru_kill_daemon). */
static int crash_once(int iter, long delay_ms, struct acked *a)
{
	pid_t w[WRITERS];
	char rec[REC];
	int fds[2], k, st, died;

	up(NULL);
	ck_assert_int_eq(pipe(fds), 0);
	for (k = 0; k < WRITERS; k++) {
		fflush(NULL);
		w[k] = fork();
		ck_assert_int_ge(w[k], 0);
		if (w[k] == 0) {
			close(fds[0]);
			writer(k, iter, fds[1]);
		}
	}
	close(fds[1]);
	ru_msleep(delay_ms);
	died = ru_kill_daemon();
	for (k = 0; k < WRITERS; k++) {
		ck_assert_int_eq(waitpid(w[k], &st, 0), w[k]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "writer %d: status %d", k, st);
	}
	while (read(fds[0], rec, REC) == REC)
		acked_add(a, rec);
	close(fds[0]);
	return died;
}

START_TEST(daemon_killed_under_writers)
{
	int iters = env_int("SECRETFS_CRASH_ITERATIONS", 100), i;
	unsigned seed = (unsigned)env_int("SECRETFS_CRASH_SEED", 4242);
	struct acked a = {NULL, 0, 0};
	int hung = 0;

	seed_secrets();
	srand(seed);
	for (i = 0; i < iters; i++) {
		if (!crash_once(i, 5 + rand() % 60, &a)) {
			printf("iteration %d: killed daemon hung in the kernel; "
			       "freed through fusectl\n", i);
			hung++;
		}
		verify_store(&a, seed, i);
	}
	printf("daemon_killed_under_writers: %d kills, %d commits "
	       "acknowledged, all present\n", iters, a.n);
	ck_assert_int_gt(a.n, iters); /* the writers did get through */
	free(a.tags);
	/* A killed daemon must be able to die: nothing of it may stay
	 * blocked in the kernel (the poller once waited there for a
	 * directory lock that a writer held while waiting for it). */
	ck_assert_msg(hung == 0, "%d of %d SIGKILLed daemons could not exit",
		      hung, iters);
	/* and the store serves again */
	up(NULL);
	assert_reads("secrets/alpha/versions/1", "seed");
}
END_TEST

/* ---- killed writers ---------------------------------------------------- */

#define CHUNK 512

/* The bytes of chunk i of the killed-writer stream. */
static void chunk_fill(unsigned char *b, int i)
{
	int j;

	for (j = 0; j < CHUNK; j++)
		b[j] = (unsigned char)('A' + (i * 7 + j) % 26);
}

/*
 * Child: open rel (flags), write `chunks` chunks (or forever up to 64
 * when chunks < 0), telling the parent one byte per completed write(),
 * then wait to be killed.
 */
static pid_t killed_writer(const char *rel, int flags, int chunks, int *rd)
{
	unsigned char b[CHUNK];
	int fds[2], fd, i, lim = chunks < 0 ? 64 : chunks;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		fd = open(P(rel), flags | O_CLOEXEC, 0600);
		if (fd < 0)
			_exit(1);
		if (write(fds[1], "o", 1) != 1)
			_exit(2);
		for (i = 0; i < lim; i++) {
			chunk_fill(b, i);
			if (write(fd, b, CHUNK) != CHUNK)
				_exit(3);
			if (write(fds[1], "w", 1) != 1)
				_exit(2);
		}
		for (;;)
			pause();
	}
	close(fds[1]);
	*rd = fds[0];
	return pid;
}

/* Read the child's reports until it has done `want` writes. */
static int wait_writes(int rd, int want)
{
	char c;
	int got = -1; /* the open's report comes first */

	while (got < want && read(rd, &c, 1) == 1)
		got++;
	return got;
}

static void kill_child(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static const char *latest_of(const char *rel)
{
	const char *l = xget(rel, "user.secret.latest_version");

	ck_assert_msg(l, "%s: %s", rel, strerror(errno));
	return l;
}

/* Nothing new (latest still 1, default still "seed"), or exactly `n`
 * whole chunks (n in [lo, hi]) as version 2, now the default. */
static void assert_nothing_or_chunks(const char *sec, int lo, int hi)
{
	static unsigned char want[64 * CHUNK];
	char rel[300], *got;
	size_t len;
	int i;

	snprintf(rel, sizeof(rel), "secrets/%s", sec);
	if (!strcmp(latest_of(rel), "1")) {
		snprintf(rel, sizeof(rel), "secrets/%s/default", sec);
		assert_reads(rel, "seed");
		return;
	}
	ck_assert_str_eq(latest_of(rel), "2");
	snprintf(rel, sizeof(rel), "secrets/%s/versions/2", sec);
	ck_assert_int_eq(slurp(rel, &got, &len), 0);
	ck_assert_msg(len % CHUNK == 0 && (int)(len / CHUNK) >= lo &&
			      (int)(len / CHUNK) <= hi,
		      "committed %zu bytes, want %d..%d chunks", len, lo, hi);
	for (i = 0; i < (int)(len / CHUNK); i++)
		chunk_fill(want + i * CHUNK, i);
	ck_assert_msg(memcmp(got, want, len) == 0, "committed bytes differ");
	free(got);
}

START_TEST(staged_writer_killed_commits_nothing)
{
	struct stat st;
	int rd;
	pid_t pid;

	ck_assert_int_eq(cli("secret", "create", "s", "--value", "seed", NULL),
			 0);
	up(NULL);
	pid = killed_writer("secrets/s/.tmp", O_WRONLY | O_CREAT | O_TRUNC, 5,
			    &rd);
	ck_assert_int_eq(wait_writes(rd, 5), 5);
	kill_child(pid);
	close(rd);
	assert_xattr("secrets/s", "user.secret.latest_version", "1");
	assert_reads("secrets/s/default", "seed");
	/* the staged bytes lived only in the daemon: gone with it */
	down();
	up(NULL);
	ck_assert_int_eq(ERR(stat(P("secrets/s/.tmp"), &st)), ENOENT);
	assert_xattr("secrets/s", "user.secret.latest_version", "1");
	assert_reads("secrets/s/default", "seed");
}
END_TEST

START_TEST(direct_writer_killed_after_writes)
{
	int rd;
	pid_t pid;

	ck_assert_int_eq(cli("secret", "create", "s", "--value", "seed", NULL),
			 0);
	up(NULL);
	pid = killed_writer("secrets/s/default", O_WRONLY | O_TRUNC, 3, &rd);
	ck_assert_int_eq(wait_writes(rd, 3), 3);
	kill_child(pid);
	close(rd);
	assert_nothing_or_chunks("s", 3, 3);
	/* and it survives a restart as it is */
	down();
	up(NULL);
	assert_nothing_or_chunks("s", 3, 3);
}
END_TEST

START_TEST(direct_writer_killed_before_writing)
{
	int rd;
	pid_t pid;

	ck_assert_int_eq(cli("secret", "create", "s", "--value", "seed", NULL),
			 0);
	up(NULL);
	pid = killed_writer("secrets/s/default", O_WRONLY | O_TRUNC, 0, &rd);
	ck_assert_int_eq(wait_writes(rd, 0), 0);
	kill_child(pid);
	close(rd);
	assert_xattr("secrets/s", "user.secret.latest_version", "1");
	assert_reads("secrets/s/default", "seed");
}
END_TEST

START_TEST(version_writer_killed_mid_value)
{
	int rd;
	pid_t pid;

	ck_assert_int_eq(cli("secret", "create", "s", "--value", "seed", NULL),
			 0);
	up(NULL);
	pid = killed_writer("secrets/s/versions/2",
			    O_WRONLY | O_CREAT | O_EXCL, 4, &rd);
	ck_assert_int_eq(wait_writes(rd, 4), 4);
	kill_child(pid);
	close(rd);
	assert_nothing_or_chunks("s", 4, 4);
}
END_TEST

/* Killed at random moments while writing: whole chunks that reached the
 * daemon (at least those whose write() returned), or nothing. */
START_TEST(direct_writer_killed_at_random)
{
	char c, rel[64];
	int rd, i, done, flags;
	pid_t pid;

	srand(77);
	up(NULL);
	for (i = 0; i < 20; i++) {
		snprintf(rel, sizeof(rel), "r%d", i);
		ck_assert_int_eq(cli("secret", "create", rel, "--value",
				     "seed", NULL), 0);
		snprintf(rel, sizeof(rel), "secrets/r%d/%s", i,
			 i % 2 ? "default" : "versions/2");
		flags = i % 2 ? O_WRONLY | O_TRUNC
			      : O_WRONLY | O_CREAT | O_EXCL;
		pid = killed_writer(rel, flags, -1, &rd);
		ck_assert_int_eq(wait_writes(rd, 0), 0);
		ru_msleep(rand() % 8);
		kill(pid, SIGKILL);
		for (done = 0; read(rd, &c, 1) == 1;)
			done++;
		close(rd);
		kill_child(pid);
		snprintf(rel, sizeof(rel), "r%d", i);
		assert_nothing_or_chunks(rel, done, done + 1);
	}
}
END_TEST

static Suite *crash_suite(void)
{
	const TTest *const tests[] = {
	    daemon_killed_under_writers,
	    staged_writer_killed_commits_nothing,
	    direct_writer_killed_after_writes,
	    direct_writer_killed_before_writing,
	    version_writer_killed_mid_value,
	    direct_writer_killed_at_random,
	};

	return ru_suite("crash", tests, sizeof(tests) / sizeof(tests[0]), 300);
}

const struct harness harness = {.suite = crash_suite, .fork = CK_FORK};
