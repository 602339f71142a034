/*
 * Check suite for core/audit*.c: the exact shape of audit lines, the log's
 * mode, failure to write (SFS_EIO), whole lines under concurrency, reading
 * back with filters and follow, and RFC 3339 times. Each test gets a fresh
 * temporary directory.
 *
 * Then the lines of changes through a context (core/ctx.c): committed
 * with the change in the store, appended after the commit, reconciled
 * at the next open when the process died in between; exactly one line
 * per change, however often the store is reopened.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/harness.h"
#include "lib/testutil.h"
#include "secretfs/audit.h"
#include "secretfs/ctx.h"
#include "secretfs/secret.h"
#include "secretfs/store.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

#define NS 1000000000LL

static char *dir, *logpath;

static void setup(void)
{
	dir = tu_tmpdir("audit");
	ck_assert_int_ge(asprintf(&logpath, "%s/audit.log", dir), 0);
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
	free(logpath);
	dir = logpath = NULL;
}

static struct sfs_audit *open_log(void)
{
	struct sfs_audit *a;
	struct sfs_error err;

	ck_assert_int_eq(sfs_audit_open(&a, logpath, &err), SFS_OK);
	return a;
}

static struct sfs_caller fs_caller(void)
{
	struct sfs_caller c = {
	    .uid = 1000, .gid = 1001, .pid = 4242, .via_fs = 1};

	strcpy(c.comm, "cat");
	return c;
}

/*
 * The log's only line, with its time value replaced by "T" after checking
 * it is an RFC 3339 UTC time between lo and hi (seconds).
 */
static char *only_line(int64_t lo, int64_t hi)
{
	char *text = tu_read_file(logpath, NULL), *t, *end, *out;
	int64_t ns;

	ck_assert_ptr_nonnull(text);
	end = strchr(text, '\n');
	ck_assert_ptr_nonnull(end);
	ck_assert_str_eq(end, "\n");
	ck_assert_int_eq(strncmp(text, "{\"time\":\"", 9), 0);
	t = text + 9;
	end = strchr(t, '"');
	ck_assert_ptr_nonnull(end);
	*end = '\0';
	ck_assert_uint_eq(strlen(t), 20);
	ck_assert_int_eq(sfs_time_parse(t, &ns), SFS_OK);
	ck_assert_int_ge(ns, lo * NS);
	ck_assert_int_le(ns, hi * NS);
	ck_assert_int_ge(asprintf(&out, "{\"time\":\"T\"%s", end + 1), 0);
	free(text);
	return out;
}

/* --- writing ------------------------------------------------------------ */

START_TEST(line_fields_fs_caller)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {
	    .op = "version.read",
	    .secret = "db/password",
	    .secret_id = "6f1d2c3b-4a59-4e68-8f7a-0b1c2d3e4f50",
	    .version = 2,
	    .result = SFS_OK,
	    .caller = &c,
	};
	int64_t lo = sfs_time_now() / NS;
	char *line;

	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	line = only_line(lo, sfs_time_now() / NS + 1);
	ck_assert_str_eq(
	    line, "{\"time\":\"T\",\"op\":\"version.read\","
		  "\"secret\":\"db/password\","
		  "\"secret_id\":\"6f1d2c3b-4a59-4e68-8f7a-0b1c2d3e4f50\","
		  "\"version\":2,\"result\":\"ok\",\"uid\":1000,"
		  "\"gid\":1001,\"pid\":4242,\"comm\":\"cat\"}\n");
	free(line);
}
END_TEST

START_TEST(line_fields_cli_caller)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = {.uid = 0, .gid = 0, .admin = 1};
	struct sfs_audit_event ev = {
	    .op = "key.deactivate",
	    .key = "billing",
	    .result = SFS_EBUSY,
	    .caller = &c,
	    .sync = 1,
	};
	int64_t lo = sfs_time_now() / NS;
	char *line;

	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	line = only_line(lo, sfs_time_now() / NS + 1);
	ck_assert_str_eq(line, "{\"time\":\"T\",\"op\":\"key.deactivate\","
			       "\"secret\":null,\"secret_id\":null,"
			       "\"version\":null,\"result\":\"EBUSY\","
			       "\"key\":\"billing\",\"uid\":0}\n");
	free(line);
}
END_TEST

START_TEST(line_result_is_errno_name)
{
	static const int codes[] = {SFS_EACCES, SFS_EKEYREVOKED, SFS_ENOKEY,
				    SFS_EBADMSG};
	static const char *const names[] = {"EACCES", "EKEYREVOKED", "ENOKEY",
					    "EBADMSG"};
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {
	    .op = "version.read", .secret = "s", .caller = &c};
	char *text, *p, want[64];
	size_t i;

	for (i = 0; i < 4; i++) {
		ev.result = codes[i];
		ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	}
	sfs_audit_close(a);
	text = tu_read_file(logpath, NULL);
	p = text;
	for (i = 0; i < 4; i++) {
		snprintf(want, sizeof(want), "\"result\":\"%s\"", names[i]);
		p = strstr(p, want);
		ck_assert_msg(p != NULL, "no %s", want);
		p = strchr(p, '\n');
		ck_assert_ptr_nonnull(p);
	}
	free(text);
}
END_TEST

/* Invalid UTF-8 in a comm must not make the write (and the read) fail. */
START_TEST(line_invalid_utf8_replaced)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {
	    .op = "version.read", .secret = "caf\xc3\xa9", .caller = &c};
	char *text;

	memcpy(c.comm, "a\xff\xc3z", 5);
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	text = tu_read_file(logpath, NULL);
	ck_assert_ptr_nonnull(strstr(text, "\"comm\":\"a??z\""));
	ck_assert_ptr_nonnull(strstr(text, "\"secret\":\"caf\xc3\xa9\""));
	free(text);
}
END_TEST

/* JSON escapes exactly as every line has them: quote, backslash and
 * control characters (DEL too) escaped, '/' and UTF-8 left as they are. */
START_TEST(line_escapes_exact)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {
	    .op = "version.read",
	    .secret = "q\"b\\s\x01\x1f\t\n\r\b\f/\x7f\xe2\x82\xac",
	    .version = 4294967295u,
	    .result = SFS_EACCES,
	    .caller = &c,
	};
	int64_t lo = sfs_time_now() / NS;
	char *line;

	c.uid = 4294967295u;
	strcpy(c.comm, "x\"y\\");
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	line = only_line(lo, sfs_time_now() / NS + 1);
	ck_assert_str_eq(
	    line, "{\"time\":\"T\",\"op\":\"version.read\","
		  "\"secret\":\"q\\\"b\\\\s\\u0001\\u001F\\t\\n\\r\\b\\f/"
		  "\\u007F\xe2\x82\xac\",\"secret_id\":null,"
		  "\"version\":4294967295,\"result\":\"EACCES\","
		  "\"uid\":4294967295,\"gid\":1001,\"pid\":4242,"
		  "\"comm\":\"x\\\"y\\\\\"}\n");
	free(line);
}
END_TEST

/* Issue 10, finding 11: C1 controls (U+0085 among them), the line and
 * paragraph separators and the bidirectional controls never reach the
 * log raw, on the fast path (a short line) or through jansson (a line
 * longer than its buffer). */
#define C1_NAME                                                                \
	"a\xc2\x85"                                                            \
	"b\xc2\x9b"                                                            \
	"c\xe2\x80\xa8"                                                        \
	"d\xe2\x80\xa9"                                                        \
	"e\xe2\x80\xae"                                                        \
	"f\xc2\xa0\xe2\x82\xac"
#define C1_ESCAPED                                                             \
	"a\\u0085b\\u009Bc\\u2028d\\u2029e\\u202Ef\xc2\xa0\xe2\x82\xac"

START_TEST(line_escapes_c1_and_separators)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {.op = "version.read", .caller = &c};
	char *pad = malloc(3000), *text, *want, *name;

	ck_assert_ptr_nonnull(pad);
	memset(pad, 'p', 2999);
	pad[2999] = '\0';
	ev.secret = C1_NAME;
	memcpy(c.comm, "x\xc2\x85y", 5);
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	ck_assert_int_ge(asprintf(&name, "%s" C1_NAME, pad), 0);
	ev.secret = name; /* too long for the fast path */
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	text = tu_read_file(logpath, NULL);
	ck_assert_ptr_nonnull(strstr(text, "\"secret\":\"" C1_ESCAPED "\""));
	ck_assert_ptr_nonnull(strstr(text, "\"comm\":\"x\\u0085y\""));
	ck_assert_int_ge(
	    asprintf(&want, "\"secret\":\"%s" C1_ESCAPED "\"", pad), 0);
	ck_assert_ptr_nonnull(strstr(text, want));
	ck_assert_ptr_null(strstr(text, "\xc2\x85"));
	ck_assert_ptr_null(strstr(text, "\xe2\x80\xa8"));
	free(want);
	free(name);
	free(text);
	free(pad);
}
END_TEST

/* What `secretfs audit` prints of a line, whatever the file holds (a
 * line from an older version, or put there by hand): every control
 * escaped, invalid bytes as '?', the rest as it is. */
START_TEST(printable_escapes_every_control)
{
	char *p = sfs_audit_printable("{\"s\":\"\x1b[2J\x07\x7f\xc2\x9b"
				      "31m"
				      "\xe2\x80\xa8\x9b\xff\xc3\xa9\t\"}");

	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "{\"s\":\"\\u001B[2J\\u0007\\u007F\\u009B31m"
			    "\\u2028??\xc3\xa9\\u0009\"}");
	free(p);
}
END_TEST

/* A name longer than any usual line (the CLI takes any argument) is
 * written whole all the same. */
/* Numbers are written in full, at the ends of their ranges too. */
START_TEST(line_numbers_at_range_ends)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = {
	    .uid = 4294967295u, .gid = 0, .pid = 2147483647, .via_fs = 1};
	struct sfs_audit_event ev = {
	    .op = "version.read",
	    .secret = "s",
	    .version = 4294967295u,
	    .result = SFS_OK,
	    .caller = &c,
	};
	int64_t lo = sfs_time_now() / NS;
	char *line;

	strcpy(c.comm, "x");
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	line = only_line(lo, sfs_time_now() / NS + 1);
	ck_assert_str_eq(line, "{\"time\":\"T\",\"op\":\"version.read\","
			       "\"secret\":\"s\",\"secret_id\":null,"
			       "\"version\":4294967295,\"result\":\"ok\","
			       "\"uid\":4294967295,\"gid\":0,"
			       "\"pid\":2147483647,\"comm\":\"x\"}\n");
	free(line);
}
END_TEST

/* The time of the log's line n (from 0), in whole seconds. */
static int64_t line_second(int n)
{
	char *text = tu_read_file(logpath, NULL), *p = text;
	int64_t ns;

	ck_assert_ptr_nonnull(text);
	while (n-- > 0) {
		p = strchr(p, '\n');
		ck_assert_ptr_nonnull(p);
		p++;
	}
	ck_assert_int_eq(strncmp(p, "{\"time\":\"", 9), 0);
	p[9 + 20] = '\0';
	ck_assert_int_eq(sfs_time_parse(p + 9, &ns), SFS_OK);
	free(text);
	return ns / NS;
}

/* A line's time is the second it is written in, also when the same
 * thread wrote the line before in an earlier second. */
START_TEST(line_time_follows_the_clock)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {.op = "version.read",
				     .secret = "s",
				     .result = SFS_OK,
				     .caller = &c};
	int64_t first, next;

	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	first = sfs_time_now() / NS;
	while ((next = sfs_time_now() / NS) == first)
		usleep(10000);
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	ck_assert_int_le(line_second(0), first);
	ck_assert_int_ge(line_second(1), next);
}
END_TEST

START_TEST(line_long_name_whole)
{
	struct sfs_audit *a = open_log();
	struct sfs_audit_event ev = {.op = "secret.create", .sync = 1};
	char *name = malloc(6001), *text, *want;

	ck_assert_ptr_nonnull(name);
	memset(name, 'n', 6000);
	name[5999] = '"';
	name[6000] = '\0';
	ev.secret = name;
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	text = tu_read_file(logpath, NULL);
	ck_assert_int_ge(asprintf(&want, "\"secret\":\"%.5999s\\\"\","
				  "\"secret_id\":null,\"version\":null,"
				  "\"result\":\"ok\"}\n", name), 0);
	ck_assert_ptr_nonnull(strstr(text, want));
	free(want);
	free(text);
	free(name);
}
END_TEST

START_TEST(log_mode_0600)
{
	struct sfs_audit *a;
	struct stat st;
	mode_t old = umask(0);

	a = open_log();
	umask(old);
	ck_assert_int_eq(stat(logpath, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	sfs_audit_close(a);
}
END_TEST

START_TEST(log_existing_made_private_and_appended)
{
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {.op = "secret.create", .caller = &c};
	struct sfs_audit *a;
	struct stat st;
	char *text;

	tu_write_file(logpath, "{\"old\":1}\n", 10, 0644);
	a = open_log();
	ck_assert_int_eq(stat(logpath, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	text = tu_read_file(logpath, NULL);
	ck_assert_int_eq(strncmp(text, "{\"old\":1}\n{\"time\":", 18), 0);
	free(text);
}
END_TEST

START_TEST(write_failure_is_eio)
{
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {.op = "version.read", .caller = &c};
	struct sfs_audit *a;
	struct sfs_error err;
	struct stat before, after;

	ck_assert_int_eq(stat("/dev/full", &before), 0);
	ck_assert_int_eq(sfs_audit_open(&a, "/dev/full", &err), SFS_OK);
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_EIO);
	ev.sync = 1;
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_EIO);
	sfs_audit_close(a);
	/* The device keeps its mode. */
	ck_assert_int_eq(stat("/dev/full", &after), 0);
	ck_assert_uint_eq(after.st_mode, before.st_mode);
}
END_TEST

START_TEST(open_failure)
{
	struct sfs_audit *a = (struct sfs_audit *)1;
	struct sfs_error err;
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/missing/audit.log", dir), 0);
	ck_assert_int_eq(sfs_audit_open(&a, p, &err), SFS_ENOENT);
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(err.msg, p));
	free(p);
}
END_TEST

START_TEST(audit_off_is_noop)
{
	struct sfs_audit_event ev = {.op = "version.read"};

	ck_assert_int_eq(sfs_audit_write(NULL, &ev), SFS_OK);
	sfs_audit_close(NULL);
}
END_TEST

#define THREADS	   8
#define PER_THREAD 250

struct writer {
	struct sfs_audit *a;
	int id;
	int failures;
};

static void *write_many(void *arg)
{
	struct writer *w = arg;
	struct sfs_caller c = fs_caller();
	char secret[300];
	struct sfs_audit_event ev = {
	    .op = "version.read", .secret = secret, .caller = &c};
	int i;

	/* Long lines make a torn write likelier to show. */
	memset(secret, 'a' + w->id, sizeof(secret) - 1);
	secret[sizeof(secret) - 1] = '\0';
	for (i = 0; i < PER_THREAD; i++) {
		ev.version = (uint32_t)i + 1;
		if (sfs_audit_write(w->a, &ev) != SFS_OK)
			w->failures++;
	}
	return NULL;
}

START_TEST(threads_write_whole_lines)
{
	struct writer w[THREADS];
	pthread_t t[THREADS];
	struct sfs_audit *a = open_log();
	struct sfs_json *j;
	int counts[THREADS] = {0}, i, lines = 0;
	char *text, *line, *save = NULL;
	const char *s;

	for (i = 0; i < THREADS; i++) {
		w[i] = (struct writer){a, i, 0};
		ck_assert_int_eq(pthread_create(&t[i], NULL, write_many, &w[i]),
				 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	sfs_audit_close(a);
	text = tu_read_file(logpath, NULL);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		j = sfs_json_parse(line, strlen(line));
		ck_assert_msg(j != NULL, "torn line: %.60s", line);
		s = sfs_json_get_str(j, "secret");
		ck_assert_ptr_nonnull(s);
		ck_assert_uint_eq(strlen(s), 299);
		ck_assert_int_ge(s[0], 'a');
		ck_assert_int_lt(s[0], 'a' + THREADS);
		ck_assert_uint_eq(strspn(s, (char[]){s[0], 0}), 299);
		counts[s[0] - 'a']++;
		sfs_json_free(j);
		lines++;
	}
	ck_assert_int_eq(lines, THREADS * PER_THREAD);
	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(counts[i], PER_THREAD);
	free(text);
}
END_TEST

/* --- reading back ------------------------------------------------------- */

static const char sample[] =
    "{\"time\":\"2026-11-28T10:00:00Z\",\"op\":\"version.read\","
    "\"secret\":\"db\",\"result\":\"ok\"}\n"
    "{\"time\":\"2026-11-28T11:00:00Z\",\"op\":\"version.read\","
    "\"secret\":\"api\",\"result\":\"EACCES\"}\n"
    "not json at all\n"
    "\n"
    "{\"time\":\"2026-11-28T12:00:00Z\",\"op\":\"version.create\","
    "\"secret\":\"db\",\"result\":\"ok\"}\n"
    "{\"time\":\"2026-11-28T13:00:00Z\",\"op\":\"key.create\","
    "\"secret\":null,\"result\":\"ok\"}";

struct collected {
	char ops[8][64];
	int n;
	int stop_after; /* 0: never */
	int stop_rc;
};

static int collect(void *arg, const char *line)
{
	struct collected *c = arg;
	const char *op = strstr(line, "\"op\":\"");

	ck_assert_int_lt(c->n, 8);
	ck_assert_ptr_null(strchr(line, '\n'));
	if (op)
		sscanf(op + 6, "%63[^\"]", c->ops[c->n]);
	else
		snprintf(c->ops[c->n], 64, "%s", line);
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? c->stop_rc : 0;
}

static int read_sample(const char *secret, const char *since,
		       struct collected *c)
{
	struct sfs_error err;
	int64_t ns = 0;

	tu_write_file(logpath, sample, sizeof(sample) - 1, 0600);
	if (since)
		ck_assert_int_eq(sfs_time_parse(since, &ns), SFS_OK);
	return sfs_audit_read(logpath, secret, ns, 0, collect, c, &err);
}

START_TEST(read_all_lines)
{
	struct collected c = {.n = 0};

	ck_assert_int_eq(read_sample(NULL, NULL, &c), SFS_OK);
	/* Unfiltered, every non-empty line is passed on as it is, the last
	 * one even without its newline. */
	ck_assert_int_eq(c.n, 5);
	ck_assert_str_eq(c.ops[0], "version.read");
	ck_assert_str_eq(c.ops[1], "version.read");
	ck_assert_str_eq(c.ops[2], "not json at all");
	ck_assert_str_eq(c.ops[3], "version.create");
	ck_assert_str_eq(c.ops[4], "key.create");
}
END_TEST

START_TEST(read_filter_secret)
{
	struct collected c = {.n = 0};

	ck_assert_int_eq(read_sample("db", NULL, &c), SFS_OK);
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.ops[0], "version.read");
	ck_assert_str_eq(c.ops[1], "version.create");
	c.n = 0;
	ck_assert_int_eq(read_sample("nope", NULL, &c), SFS_OK);
	ck_assert_int_eq(c.n, 0);
}
END_TEST

START_TEST(read_filter_since)
{
	struct collected c = {.n = 0};

	/* At or after: the 11:00 line is included. */
	ck_assert_int_eq(read_sample(NULL, "2026-11-28T11:00:00Z", &c), SFS_OK);
	ck_assert_int_eq(c.n, 3);
	ck_assert_str_eq(c.ops[0], "version.read");
	ck_assert_str_eq(c.ops[1], "version.create");
	ck_assert_str_eq(c.ops[2], "key.create");
	c.n = 0;
	ck_assert_int_eq(read_sample(NULL, "2026-11-28T13:00:00.5+00:00", &c),
			 SFS_OK);
	ck_assert_int_eq(c.n, 0);
}
END_TEST

START_TEST(read_filter_both)
{
	struct collected c = {.n = 0};

	/* 12:30 at +02:00 is 10:30 UTC. */
	ck_assert_int_eq(read_sample("db", "2026-11-28T12:30:00+02:00", &c),
			 SFS_OK);
	ck_assert_int_eq(c.n, 1);
	ck_assert_str_eq(c.ops[0], "version.create");
}
END_TEST

START_TEST(read_stops_when_callback_says)
{
	struct collected c = {.n = 0, .stop_after = 2, .stop_rc = 1};

	ck_assert_int_eq(read_sample(NULL, NULL, &c), SFS_OK);
	ck_assert_int_eq(c.n, 2);
	c = (struct collected){.stop_after = 1, .stop_rc = SFS_EIO};
	ck_assert_int_eq(read_sample(NULL, NULL, &c), SFS_EIO);
	ck_assert_int_eq(c.n, 1);
}
END_TEST

START_TEST(read_missing_log)
{
	struct collected c = {.n = 0};
	struct sfs_error err;

	ck_assert_int_eq(sfs_audit_read(logpath, NULL, 0, 0, collect, &c, &err),
			 SFS_ENOENT);
	ck_assert_int_eq(c.n, 0);
}
END_TEST

static char *rotated(int n);

struct follow_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int seen; /* guarded by lock */
	int rotate; /* move the log aside before the second line */
};

static int follow_cb(void *arg, const char *line)
{
	struct follow_state *f = arg;
	int seen;

	(void)line;
	pthread_mutex_lock(&f->lock);
	seen = ++f->seen;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return seen == 2;
}

/* Appends the second line only after the reader has seen the first. */
static void *append_later(void *arg)
{
	struct follow_state *f = arg;
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {.op = "second", .caller = &c};
	struct timespec pause = {0, 300000000};
	struct sfs_audit *a;
	struct sfs_error err;

	pthread_mutex_lock(&f->lock);
	while (f->seen < 1)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
	/* Let the reader reach the end of the file and poll. */
	nanosleep(&pause, NULL);
	if (f->rotate) {
		char *old = rotated(1);

		rename(logpath, old);
		free(old);
	}
	if (sfs_audit_open(&a, logpath, &err) == SFS_OK) {
		sfs_audit_write(a, &ev);
		sfs_audit_close(a);
	}
	return NULL;
}

START_TEST(read_follow_sees_new_lines)
{
	struct follow_state f = {PTHREAD_MUTEX_INITIALIZER,
				 PTHREAD_COND_INITIALIZER, 0, 0};
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {.op = "first", .caller = &c};
	struct sfs_audit *a = open_log();
	struct sfs_error err;
	pthread_t t;

	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	ck_assert_int_eq(pthread_create(&t, NULL, append_later, &f), 0);
	ck_assert_int_eq(
	    sfs_audit_read(logpath, NULL, 0, 1, follow_cb, &f, &err), SFS_OK);
	pthread_join(t, NULL);
	ck_assert_int_eq(f.seen, 2);
}
END_TEST

/* audit --follow carries on into the new log once the old one rotated. */
START_TEST(read_follow_continues_after_rotation)
{
	struct follow_state f = {PTHREAD_MUTEX_INITIALIZER,
				 PTHREAD_COND_INITIALIZER, 0, 1};
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {.op = "first", .caller = &c};
	struct sfs_audit *a = open_log();
	struct sfs_error err;
	pthread_t t;

	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	ck_assert_int_eq(pthread_create(&t, NULL, append_later, &f), 0);
	ck_assert_int_eq(
	    sfs_audit_read(logpath, NULL, 0, 1, follow_cb, &f, &err), SFS_OK);
	pthread_join(t, NULL);
	ck_assert_int_eq(f.seen, 2);
}
END_TEST

/* --- time --------------------------------------------------------------- */

START_TEST(time_format_known)
{
	char out[32];

	sfs_time_format(1795889080LL * NS, out);
	ck_assert_str_eq(out, "2026-11-28T18:04:40Z");
	sfs_time_format(1795889080LL * NS + 999999999, out);
	ck_assert_str_eq(out, "2026-11-28T18:04:40Z");
	sfs_time_format(0, out);
	ck_assert_str_eq(out, "1970-01-01T00:00:00Z");
	sfs_time_format(-1, out);
	ck_assert_str_eq(out, "1969-12-31T23:59:59Z");
}
END_TEST

START_TEST(time_parse_forms)
{
	static const struct {
		const char *text;
		int64_t ns;
	} cases[] = {
	    {"2026-11-28T18:04:40Z", 1795889080LL * NS},
	    {"2026-11-28t18:04:40z", 1795889080LL * NS},
	    {"2026-11-28T18:04:40.25Z", 1795889080LL * NS + 250000000},
	    {"2026-11-28T18:04:40.123456789123Z",
	     1795889080LL * NS + 123456789},
	    {"2026-11-28T20:04:40+02:00", 1795889080LL * NS},
	    {"2026-11-28T13:34:40-04:30", 1795889080LL * NS},
	    {"2026-11-28", 1795824000LL * NS},
	    {"2024-02-29", 1709164800LL * NS},
	    {"1970-01-01T00:00:00Z", 0},
	    {"1969-12-31T23:59:59Z", -NS},
	};
	int64_t ns;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(sfs_time_parse(cases[i].text, &ns) == SFS_OK,
			      "refused %s", cases[i].text);
		ck_assert_msg(ns == cases[i].ns, "%s gave %lld", cases[i].text,
			      (long long)ns);
	}
}
END_TEST

START_TEST(time_parse_rejects_garbage)
{
	static const char *const bad[] = {
	    "",
	    "2026",
	    "2026-11",
	    "2026-13-01",
	    "2026-00-10",
	    "2026-02-29",
	    "2026-04-31",
	    "2026-11-00",
	    "2026-11-28T24:00:00Z",
	    "2026-11-28T18:60:00Z",
	    "2026-11-28T18:04:61Z",
	    "2026-11-28T18:04:40",
	    "2026-11-28T18:04:40+0200",
	    "2026-11-28T18:04:40+02",
	    "2026-11-28T18:04:40+24:00",
	    "2026-11-28 18:04:40Z",
	    "2026-11-28T18:04:40.Z",
	    "2026-11-28T18:04Z",
	    "2026-11-28T18:4:40Z",
	    "x026-11-28",
	    "2026/11/28",
	    "2026-11-28Z",
	    "2026-11-28T",
	    "2026-11-28T18:04:40Zjunk",
	    "2026-11-28 ",
	    "yesterday",
	    "99999-11-28",
	};
	int64_t ns = 7;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sfs_time_parse(bad[i], &ns) == SFS_EINVAL,
			      "accepted '%s'", bad[i]);
	ck_assert_int_eq(sfs_time_parse(NULL, &ns), SFS_EINVAL);
	ck_assert_int_eq(ns, 7);
}
END_TEST

START_TEST(time_round_trip)
{
	static const char *const texts[] = {
	    "2026-11-28T18:04:40Z",
	    "2000-02-29T23:59:59Z",
	    "1999-12-31T00:00:00Z",
	    "2100-01-01T12:30:15Z",
	};
	char out[32];
	int64_t ns, now = sfs_time_now();
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		ck_assert_int_eq(sfs_time_parse(texts[i], &ns), SFS_OK);
		sfs_time_format(ns, out);
		ck_assert_str_eq(out, texts[i]);
	}
	sfs_time_format(now, out);
	ck_assert_int_eq(sfs_time_parse(out, &ns), SFS_OK);
	ck_assert_int_eq(ns, now - now % NS);
}
END_TEST

/* --- lines of changes, through a context ------------------------------ */

static const struct sfs_caller admin = {.uid = 0, .gid = 0, .admin = 1};

static struct sfs_ctx *ctx_open(const char *store)
{
	struct sfs_ctx_options o;
	struct sfs_error err;
	struct sfs_ctx *ctx = NULL;

	memset(&o, 0, sizeof(o));
	o.store_dir = store;
	ck_assert_int_eq(sfs_ctx_open(&ctx, &o, &err), SFS_OK);
	return ctx;
}

/* How many lines of the store's log contain needle. */
static int lines_with(const char *store, const char *needle)
{
	char path[600], *text, *p, *nl;
	int n = 0;

	snprintf(path, sizeof(path), "%s/audit.log", store);
	text = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(text);
	for (p = text; (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		n += strstr(p, needle) != NULL;
	}
	free(text);
	return n;
}

/* Rows of the store's pending-audit table, read with SQLite itself. */
static int pending_rows(const char *store)
{
	char path[600];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;

	snprintf(path, sizeof(path), "%s/secretfs.db", store);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM "
					    "audit_pending", -1, &st, NULL),
			 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/*
 * A stand-in for the real store, same backend, whose commit_then is
 * replaced: "die" commits and kills the process before the line is
 * appended (a crash between commit and append); "fail" rolls back and
 * reports SFS_EIO (a commit that did not happen). The children die by
 * SIGKILL, so that nothing of theirs (atexit, valgrind's leak check)
 * runs after.
 */
static struct sfs_store_ops hook_ops;
static struct sfs_store hook;
static const struct sfs_store_ops *real_ops;

static int commit_then_die(struct sfs_store *s, void (*after)(void *),
			   void *arg, struct sfs_error *err)
{
	(void)after;
	(void)arg;
	if (real_ops->commit(s, err) == SFS_OK)
		kill(getpid(), SIGKILL); /* as a crash: nothing runs after */
	_exit(3);
}

static int commit_then_fail(struct sfs_store *s, void (*after)(void *),
			    void *arg, struct sfs_error *err)
{
	(void)after;
	(void)arg;
	real_ops->rollback(s);
	return sfs_error_set(err, SFS_EIO, "test: commit failed");
}

static void hook_install(struct sfs_ctx *ctx,
			 int (*fn)(struct sfs_store *, void (*)(void *),
				   void *, struct sfs_error *))
{
	struct sfs_store *real = sfs_ctx_store(ctx);

	real_ops = real->ops;
	hook_ops = *real->ops;
	hook_ops.commit_then = fn;
	hook.ops = &hook_ops;
	hook.backend = real->backend;
	ck_assert_ptr_eq(sfs_ctx_swap_store(ctx, &hook), real);
}

START_TEST(change_line_survives_death_after_commit)
{
	struct sfs_ctx *ctx;
	struct sfs_error err;
	char *tmp, store[512];
	int status = -1, i;
	pid_t pid;

	ctx = tu_store_open("audit-die", &tmp, store, sizeof(store));
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &(struct sfs_secret_new)
					   {.name = "t", .value = "v1",
					    .value_len = 2}, NULL, &err),
			 SFS_OK);
	sfs_ctx_close(ctx);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		ctx = ctx_open(store);
		hook_install(ctx, commit_then_die);
		sfs_version_add(ctx, &admin, "t", "v2", 2, 0, NULL, &err);
		_exit(4); /* the hook did not run */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* committed, and its line not in the log: it is in the store */
	ck_assert_int_eq(lines_with(store, "\"op\":\"version.add\""), 0);
	ck_assert_int_eq(pending_rows(store), 1);
	/* the next open appends it, once, however often it reopens */
	for (i = 0; i < 3; i++) {
		sfs_ctx_close(ctx_open(store));
		ck_assert_int_eq(
		    lines_with(store, "\"op\":\"version.add\",\"secret\":"
				      "\"t\""),
		    1);
		ck_assert_int_eq(lines_with(store, "\"version\":2,"
						   "\"result\":\"ok\""),
				 1);
		ck_assert_int_eq(pending_rows(store), 0);
	}
	ctx = ctx_open(store);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "t", "v3", 2, 0, NULL,
					 &err), SFS_OK);
	sfs_ctx_close(ctx);
	ck_assert_int_eq(lines_with(store, "\"op\":\"version.add\""), 2);
	tu_rmrf(tmp);
	free(tmp);
}
END_TEST

/* Lines appended before a crash are found in the log, not doubled. */
START_TEST(appended_pending_lines_not_doubled)
{
	struct sfs_ctx *ctx;
	struct sfs_error err;
	char *tmp, store[512];
	int status = -1;
	pid_t pid;

	ctx = tu_store_open("audit-dup", &tmp, store, sizeof(store));
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &(struct sfs_secret_new)
					   {.name = "t", .value = "v1",
					    .value_len = 2}, NULL, &err),
			 SFS_OK);
	sfs_ctx_close(ctx);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) { /* dies without closing: its rows stay pending */
		ctx = ctx_open(store);
		if (sfs_version_add(ctx, &admin, "t", "v2", 2, 0, NULL, &err) ||
		    sfs_version_set_default(ctx, &admin, "t", 1, &err))
			_exit(3);
		kill(getpid(), SIGKILL);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ck_assert_int_eq(pending_rows(store), 2);
	ck_assert_int_eq(lines_with(store, "\"op\":\"version.add\""), 1);
	sfs_ctx_close(ctx_open(store));
	ck_assert_int_eq(pending_rows(store), 0);
	ck_assert_int_eq(lines_with(store, "\"op\":\"version.add\""), 1);
	ck_assert_int_eq(
	    lines_with(store, "\"op\":\"version.set_default\""), 1);
	tu_rmrf(tmp);
	free(tmp);
}
END_TEST

/* Many changes: one line each, and no pending row left after close (the
 * rows go in batches, the rest at close). */
START_TEST(batches_leave_nothing_pending)
{
	struct sfs_ctx *ctx;
	struct sfs_error err;
	char *tmp, store[512];
	int i;

	ctx = tu_store_open("audit-batch", &tmp, store, sizeof(store));
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &(struct sfs_secret_new)
					   {.name = "t", .value = "v",
					    .value_len = 1}, NULL, &err),
			 SFS_OK);
	for (i = 0; i < 70; i++)
		ck_assert_int_eq(sfs_version_add(ctx, &admin, "t", "v", 1, 0,
						 NULL, &err), SFS_OK);
	ck_assert_int_le(pending_rows(store), 70 - 32);
	sfs_ctx_close(ctx);
	ck_assert_int_eq(pending_rows(store), 0);
	ck_assert_int_eq(lines_with(store, "\"op\":\"version.add\""), 70);
	ck_assert_int_eq(lines_with(store, "\"op\":\"secret.create\""), 1);
	tu_rmrf(tmp);
	free(tmp);
}
END_TEST

/* A staged line whose commit fails: the failure is logged, once, and
 * nothing stays pending. */
START_TEST(failed_commit_logs_failure_once)
{
	struct sfs_ctx *ctx;
	struct sfs_error err;
	struct sfs_store *real;
	char *tmp, store[512];

	ctx = tu_store_open("audit-fail", &tmp, store, sizeof(store));
	ck_assert_int_eq(sfs_secret_create(ctx, &admin, &(struct sfs_secret_new)
					   {.name = "t", .value = "v",
					    .value_len = 1}, NULL, &err),
			 SFS_OK);
	real = sfs_ctx_store(ctx);
	hook_install(ctx, commit_then_fail);
	ck_assert_int_eq(sfs_version_add(ctx, &admin, "t", "v2", 2, 0, NULL,
					 &err), SFS_EIO);
	ck_assert_ptr_eq(sfs_ctx_swap_store(ctx, real), &hook);
	sfs_ctx_close(ctx);
	ck_assert_int_eq(lines_with(store, "\"op\":\"version.add\""), 1);
	ck_assert_int_eq(lines_with(store, "\"result\":\"EIO\""), 1);
	ck_assert_int_eq(pending_rows(store), 0);
	tu_rmrf(tmp);
	free(tmp);
}
END_TEST

/* --- flood: refused lines limited per uid, rotation, reopen ------------ */

static long count_lines(const char *path, const char *needle, long *suppressed)
{
	return tu_count_lines(path, needle, "\"suppressed\":", suppressed);
}

#define FLOOD 2000

/* One uid's flood of refused lines: at most a few dozen a second reach
 * the log, the rest are counted in summary lines (none lost: lines +
 * suppressed == refusals), another uid's refusals all get through, and
 * allowed lines are never limited. */
START_TEST(refused_flood_limited_per_uid_with_summary)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller(), other = fs_caller();
	struct sfs_audit_event ev = {.op = "version.read",
				     .secret = "db",
				     .result = SFS_EACCES,
				     .caller = &c};
	long lines, summed, sums;
	int i;

	other.uid = 2000;
	for (i = 0; i < FLOOD; i++)
		ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	ev.caller = &other;
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	ev.caller = &c;
	ev.result = SFS_OK;
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a); /* writes the summaries still due */
	lines = count_lines(logpath,
			    "\"result\":\"EACCES\",\"uid\":1000,\"gid\"", NULL);
	sums = count_lines(logpath, "\"op\":\"audit.suppressed\"", &summed);
	ck_assert_int_eq(lines + summed, FLOOD);
	ck_assert_int_lt(lines, FLOOD);
	ck_assert_int_ge(sums, 1);
	ck_assert_int_eq(count_lines(logpath,
				     "\"op\":\"audit.suppressed\",\"secret\":"
				     "null,\"secret_id\":null,\"version\":null,"
				     "\"result\":\"EACCES\",\"uid\":1000,"
				     "\"suppressed\":",
				     NULL),
			 sums);
	ck_assert_int_eq(count_lines(logpath, "\"uid\":2000,", NULL), 5);
	ck_assert_int_eq(count_lines(logpath, "\"result\":\"ok\"", NULL), 100);
}
END_TEST

/* Nine uids that the limiter's hash puts in the same slot, flooding in
 * turn: none gets a fresh budget by taking another's slot over (two
 * alternating users would then never be limited), the ninth shares the
 * last slot, and every refusal is still accounted for. */
START_TEST(refused_flood_limited_for_colliding_uids)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {.op = "version.read",
				     .secret = "db",
				     .result = SFS_EACCES,
				     .caller = &c};
	long lines = 0, summed, n;
	char needle[64];
	int k, i;

	for (i = 0; i < 200; i++)
		for (k = 0; k < 9; k++) {
			c.uid = 1000 + 1024 * (uint32_t)k; /* same hash slot */
			ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
		}
	sfs_audit_close(a);
	for (k = 0; k < 9; k++) {
		snprintf(needle, sizeof(needle),
			 "\"result\":\"EACCES\",\"uid\":%d,\"gid\"",
			 1000 + 1024 * k);
		n = count_lines(logpath, needle, NULL);
		ck_assert_int_lt(n, 200);
		lines += n;
	}
	count_lines(logpath, "\"op\":\"audit.suppressed\"", &summed);
	ck_assert_int_eq(lines + summed, 9 * 200);
	ck_assert_int_ge(
	    count_lines(logpath, "\"result\":\"EACCES\",\"suppressed\":", NULL),
	    1);
}
END_TEST

static char *rotated(int n)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s.%d", logpath, n), 0);
	return p;
}

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The log rotates itself at its size: 4 old logs kept, none bigger
 * than the limit and a line, the newest lines in the log itself. */
START_TEST(log_rotates_at_max_keeping_four)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {
	    .op = "version.read", .secret = "db", .caller = &c};
	char want[64], *p;
	off_t total = 0;
	int i;

	sfs_audit_set_max(a, 4096);
	for (i = 1; i <= 400; i++) { /* ~140 bytes a line: 13 logs' worth */
		ev.version = (uint32_t)i;
		ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	}
	sfs_audit_close(a);
	for (i = 0; i <= SFS_AUDIT_KEEP; i++) {
		p = i ? rotated(i) : strdup(logpath);
		ck_assert_int_gt(size_of(p), 0);
		ck_assert_int_le(size_of(p), 4096 + 200);
		total += size_of(p);
		free(p);
	}
	p = rotated(SFS_AUDIT_KEEP + 1);
	ck_assert_int_eq(size_of(p), -1);
	free(p);
	ck_assert_int_le(total, 5 * (4096 + 200));
	snprintf(want, sizeof(want), "\"version\":400,");
	ck_assert_int_eq(count_lines(logpath, want, NULL), 1);
	p = rotated(1);
	ck_assert_int_eq(count_lines(p, "\"version\":1,", NULL), 0);
	free(p);
}
END_TEST

/* After logrotate moved the log: sfs_audit_reopen() (SIGHUP) makes the
 * next line go to a new file at the path, not to the moved one. */
START_TEST(reopen_after_move_writes_new_file)
{
	struct sfs_audit *a = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {
	    .op = "version.read", .secret = "before", .caller = &c};
	struct stat st;
	char *moved;

	ck_assert_int_ge(asprintf(&moved, "%s.old", logpath), 0);
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	ck_assert_int_eq(rename(logpath, moved), 0);
	sfs_audit_reopen(a);
	ev.secret = "after";
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	sfs_audit_close(a);
	ck_assert_int_eq(count_lines(moved, "\"secret\":\"before\"", NULL), 1);
	ck_assert_int_eq(count_lines(moved, "\"secret\":\"after\"", NULL), 0);
	ck_assert_int_eq(count_lines(logpath, "\"secret\":\"after\"", NULL), 1);
	ck_assert_int_eq(stat(logpath, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	free(moved);
}
END_TEST

/* Another writer of the same log (the CLI beside the daemon) that did
 * not rotate it follows the rotation within a second: no line of it
 * goes on into an old log. */
START_TEST(rotation_by_another_writer_followed)
{
	struct sfs_audit *a = open_log(), *b = open_log();
	struct sfs_caller c = fs_caller();
	struct sfs_audit_event ev = {
	    .op = "version.read", .secret = "a", .caller = &c};
	struct timespec pause = {1, 100 * 1000 * 1000};
	int i;

	sfs_audit_set_max(a, 4096);
	sfs_audit_set_max(b, 0);
	for (i = 0; i < 40; i++) /* past 4096 bytes: a rotates */
		ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	ck_assert_int_eq(sfs_audit_write(a, &ev), SFS_OK);
	nanosleep(&pause, NULL); /* b looks at the path once a second */
	ev.secret = "b";
	ck_assert_int_eq(sfs_audit_write(b, &ev), SFS_OK);
	sfs_audit_close(a);
	sfs_audit_close(b);
	ck_assert_int_eq(count_lines(logpath, "\"secret\":\"b\"", NULL), 1);
}
END_TEST

static Suite *audit_suite(void)
{
	const TTest *tests[] = {
	    line_fields_fs_caller,
	    line_fields_cli_caller,
	    line_result_is_errno_name,
	    line_invalid_utf8_replaced,
	    line_escapes_exact,
	    line_escapes_c1_and_separators,
	    printable_escapes_every_control,
	    line_long_name_whole,
	    line_numbers_at_range_ends,
	    line_time_follows_the_clock,
	    log_mode_0600,
	    log_existing_made_private_and_appended,
	    write_failure_is_eio,
	    open_failure,
	    audit_off_is_noop,
	    threads_write_whole_lines,
	    read_all_lines,
	    read_filter_secret,
	    read_filter_since,
	    read_filter_both,
	    read_stops_when_callback_says,
	    read_missing_log,
	    read_follow_sees_new_lines,
	    time_format_known,
	    time_parse_forms,
	    time_parse_rejects_garbage,
	    time_round_trip,
	    change_line_survives_death_after_commit,
	    appended_pending_lines_not_doubled,
	    batches_leave_nothing_pending,
	    failed_commit_logs_failure_once,
	    refused_flood_limited_per_uid_with_summary,
	    refused_flood_limited_for_colliding_uids,
	    log_rotates_at_max_keeping_four,
	    reopen_after_move_writes_new_file,
	    rotation_by_another_writer_followed,
	    read_follow_continues_after_rotation,
	};

	return harness_suite("audit", tests, sizeof(tests) / sizeof(tests[0]),
			     setup, teardown, 0);
}

const struct harness harness = {.suite = audit_suite};
