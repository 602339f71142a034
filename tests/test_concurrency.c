/*
 * Concurrency soak (issue 5, item 8): 16 readers, 4 writers and a
 * deactivate/activate loop against one mount for $SECRETFS_SOAK_SECONDS
 * (default 60).
 *
 * Writers add versions of `hot` with compare-and-set (create
 * versions/N, N = latest + 1; losing the race is EEXIST and retried);
 * version N's value is the self-checking value named "hot-nN", so a
 * reader can tell from the bytes alone which version it got and that
 * the value is complete. 12 readers read hot/default; 4 read `tog`,
 * which a CLI process (another store connection, so the two contend for
 * the database's lock) deactivates and activates in a loop, alternating
 * with the same change through the mount's xattr.
 *
 * Pass: no EBUSY or EAGAIN reaches any caller (nor any errno but
 * EEXIST for writers and EKEYREVOKED for `tog` readers); every value
 * read is a complete version whose close() had returned 0 (checked once
 * all are done: a reader may see a commit before its writer records
 * it); no reader ever sees the default's number go down.
 */
#include <sys/mman.h>

#include "rel_util.h"

#define MAXV	 65536
#define READERS	 16
#define WRITERS	 4
#define VCAP	 2000

struct shared {
	volatile int stop;
	unsigned char committed[MAXV]; /* close() of versions/N gave 0 */
	unsigned char seen[MAXV];      /* some reader read version N */
	int errs[READERS + WRITERS + 1][160]; /* errno counts per process */
	int bad[READERS + WRITERS + 1];       /* incomplete/foreign bytes */
	int backwards[READERS];
	long reads[READERS];
	long commits[WRITERS];
	long toggles;
};

static struct shared *sh;

static void count_err(int who, int e)
{
	sh->errs[who][e > 0 && e < 160 ? e : 0]++;
}

static void writer(int k)
{
	static unsigned char v[VCAP];
	char tag[64], rel[128];
	const char *l;
	unsigned long n;
	size_t len;
	int e;

	while (!sh->stop) {
		l = xget("secrets/hot", "user.secret.latest_version");
		if (!l) {
			count_err(READERS + k, errno);
			continue;
		}
		n = strtoul(l, NULL, 10) + 1;
		if (n >= MAXV)
			break;
		snprintf(tag, sizeof(tag), "hot-n%lu", n);
		len = ru_value(tag, v, VCAP);
		snprintf(rel, sizeof(rel), "secrets/hot/versions/%lu", n);
		e = put(rel, O_WRONLY | O_CREAT | O_EXCL, v, len);
		if (!e) {
			sh->committed[n] = 1;
			sh->commits[k]++;
		} else if (e != EEXIST) {
			count_err(READERS + k, e);
		}
	}
	_exit(0);
}

static void reader_hot(int k)
{
	char tag[RU_TAG_MAX], *got;
	unsigned long n, last = 0;
	size_t len;
	int e;

	while (!sh->stop) {
		e = slurp("secrets/hot/default", &got, &len);
		if (e) {
			count_err(k, e);
			continue;
		}
		sh->reads[k]++;
		if (!ru_value_ok((unsigned char *)got, len, VCAP, tag) ||
		    sscanf(tag, "hot-n%lu", &n) != 1 || n >= MAXV) {
			sh->bad[k]++;
		} else {
			sh->seen[n] = 1;
			if (n < last)
				sh->backwards[k]++;
			last = n;
		}
		free(got);
	}
	_exit(0);
}

static void reader_tog(int k)
{
	char *got;
	size_t len;
	int e;

	while (!sh->stop) {
		e = slurp("secrets/tog/default", &got, &len);
		if (e == EKEYREVOKED) /* deactivated just now: allowed */
			continue;
		if (e) {
			count_err(k, e);
			continue;
		}
		sh->reads[k]++;
		if (len != 6 || memcmp(got, "toggle", 6))
			sh->bad[k]++;
		free(got);
	}
	_exit(0);
}

/* CLI (its own connection) and xattr, alternately. */
static void toggler(void)
{
	const int who = READERS + WRITERS;
	const char *word;
	long i;

	for (i = 0; !sh->stop; i++) {
		word = i % 2 ? "activate" : "deactivate";
		if (i % 4 < 2) {
			if (cli("secret", word, "tog", NULL) != 0)
				sh->bad[who]++;
		} else {
			const char *v = i % 2 ? "active" : "deactivated";

			if (setxattr(P("secrets/tog"), "user.secret.status", v,
				     strlen(v), 0))
				count_err(who, errno);
		}
		sh->toggles++;
	}
	_exit(0);
}

static pid_t spawn(void (*fn)(int), int k)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn(k);
	}
	return pid;
}

static void toggler_k(int k)
{
	(void)k;
	toggler();
}

static void assert_errs(int who, const char *what)
{
	int e;

	for (e = 0; e < 160; e++)
		ck_assert_msg(sh->errs[who][e] == 0, "%s %d: %d x errno %d (%s)",
			      what, who, sh->errs[who][e], e, strerror(e));
	ck_assert_msg(sh->bad[who] == 0, "%s %d: %d bad results", what, who,
		      sh->bad[who]);
}

START_TEST(soak_readers_writers_toggles)
{
	const char *env = getenv("SECRETFS_SOAK_SECONDS");
	int secs = env && *env ? atoi(env) : 60, i, st;
	pid_t pids[READERS + WRITERS + 1];
	long reads = 0, commits = 0;
	static unsigned char v[VCAP];
	size_t len;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	len = ru_value("hot-n1", v, VCAP);
	ck_assert_int_eq(cli("secret", "create", "tog", "--value", "toggle",
			     NULL), 0);
	ck_assert_int_eq(cli("secret", "create", "hot", NULL), 0);
	up(NULL);
	ck_assert_int_eq(put("secrets/hot/versions/1",
			     O_WRONLY | O_CREAT | O_EXCL, v, len), 0);
	sh->committed[1] = 1;
	for (i = 0; i < READERS; i++)
		pids[i] = spawn(i < 12 ? reader_hot : reader_tog, i);
	for (i = 0; i < WRITERS; i++)
		pids[READERS + i] = spawn(writer, i);
	pids[READERS + WRITERS] = spawn(toggler_k, 0);
	sleep((unsigned)secs);
	sh->stop = 1;
	for (i = 0; i < READERS + WRITERS + 1; i++) {
		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (i = 0; i < READERS; i++) {
		assert_errs(i, "reader");
		ck_assert_msg(sh->backwards[i] == 0,
			      "reader %d saw the default go back %d times", i,
			      sh->backwards[i]);
		reads += sh->reads[i];
	}
	for (i = 0; i < WRITERS; i++) {
		assert_errs(READERS + i, "writer");
		commits += sh->commits[i];
	}
	assert_errs(READERS + WRITERS, "toggler");
	for (i = 0; i < MAXV; i++)
		ck_assert_msg(!sh->seen[i] || sh->committed[i],
			      "a reader got version %d, never committed", i);
	printf("soak: %d s, %ld reads, %ld commits, %ld toggles\n", secs,
	       reads, commits, sh->toggles);
	ck_assert_int_gt(reads, 0);
	ck_assert_int_gt(commits, 0);
	ck_assert_int_gt(sh->toggles, 0);
	munmap(sh, sizeof(*sh));
}
END_TEST

static Suite *concurrency_suite(void)
{
	const TTest *const tests[] = {soak_readers_writers_toggles};
	const char *env = getenv("SECRETFS_SOAK_SECONDS");
	int secs = env && *env ? atoi(env) : 60;

	return ru_suite("concurrency", tests, 1, secs + 120);
}

const struct harness harness = {.suite = concurrency_suite, .fork = CK_FORK};
