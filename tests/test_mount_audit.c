/*
 * The audit log through the real daemon and the CLI (SPEC §5; issue 10).
 * Finding 3, the flood: one user's flood of reads (refused, or allowed
 * and each audited) neither fills the disk nor stops another user's
 * reads: refused lines are limited per uid and counted in summary lines
 * (none lost), the log rotates itself at audit_max keeping 4 old logs,
 * and SIGHUP reopens the log (for logrotate) without unmounting.
 * Finding 11: `secretfs audit` prints no control character raw. Finding
 * 14: a refused large write and a refused access-control change carry
 * every field their front knows. And --since takes an age (30m).
 * Switching uid needs root; without it those tests say SKIPPED rather
 * than pass.
 */
#include "mount_harness.h"

#define OTHER  4321
#define ROUNDS 6
#define PER    500 /* reads per round */

/* A secret of root's, mode 0440: others may not read it. */
static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

struct flood {
	const char *name;
	int want; /* the errno every read must give, 0: success */
};

/* In a child as OTHER: PER reads of NAME's default; 0 when every one
 * gave the errno wanted, else 1. */
static int flood_reads(void *arg)
{
	const struct flood *f = arg;
	char rel[300], *got;
	int i, bad = 0;

	snprintf(rel, sizeof(rel), "secrets/%s/default", f->name);
	for (i = 0; i < PER; i++) {
		if (slurp(rel, &got, NULL) != f->want)
			bad = 1;
		free(got);
	}
	return bad;
}

static const char *in_store(const char *name)
{
	static char path[4][700];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", h_store, name);
	return path[i];
}

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* ROUNDS * PER refused reads by OTHER, the owner's read after each
 * round: every owner's read succeeds and is audited, and OTHER's
 * refusals are all accounted for (lines written + counted in summaries)
 * with fewer lines than refusals. */
START_TEST(refused_read_flood_limited_and_counted)
{
	struct flood f = {"db", EACCES};
	long lines, suppressed, summaries;
	int r;

	NEED_ROOT();
	mk("db", "v");
	up("allow_other");
	for (r = 0; r < ROUNDS; r++) {
		ck_assert_int_eq(as_user(OTHER, OTHER, flood_reads, &f), 0);
		assert_reads("secrets/db/default", "v");
	}
	down(); /* the daemon writes the summaries still due at exit */
	lines = tu_count_lines(in_store("audit.log"),
			       "\"result\":\"EACCES\",\"uid\":4321,\"gid\"",
			       NULL, NULL);
	summaries = tu_count_lines(
	    in_store("audit.log"),
	    "\"op\":\"audit.suppressed\",\"secret\":null,\"secret_id\":null,"
	    "\"version\":null,\"result\":\"EACCES\",\"uid\":4321,",
	    "\"suppressed\":", &suppressed);
	ck_assert_int_eq(lines + suppressed, ROUNDS * PER);
	ck_assert_int_lt(lines, ROUNDS * PER);
	ck_assert_int_ge(summaries, 1);
	ck_assert_int_eq(tu_count_lines(in_store("audit.log"),
					"\"result\":\"ok\",\"uid\":0,", NULL,
					NULL),
			 ROUNDS);
}
END_TEST

/* With audit_max=16K, OTHER's flood of allowed (audited) reads, about
 * 0.5 MB of lines: the log and its 4 old copies stay within their size,
 * no fifth is kept, and the owner's reads between rounds all succeed,
 * the last one in the current log. */
START_TEST(flood_bounded_by_audit_max_others_still_read)
{
	struct flood f = {"open", 0};
	char name[32];
	off_t total = 0;
	int r, i;

	NEED_ROOT();
	mk("db", "v");
	mk("open", "w");
	up("allow_other,audit_max=16K");
	ck_assert_int_eq(chmod(P("secrets/open"), 0444), 0);
	for (r = 0; r < ROUNDS; r++) {
		ck_assert_int_eq(as_user(OTHER, OTHER, flood_reads, &f), 0);
		assert_reads("secrets/db/default", "v");
	}
	for (i = 0; i <= 4; i++) {
		snprintf(name, sizeof(name), i ? "audit.log.%d" : "audit.log",
			 i);
		ck_assert_int_ge(size_of(in_store(name)), 0);
		ck_assert_int_le(size_of(in_store(name)), 16384 + 512);
		total += size_of(in_store(name));
	}
	ck_assert_int_eq(size_of(in_store("audit.log.5")), -1);
	ck_assert_int_le(total, 5 * (16384 + 512));
	ck_assert_int_ge(tu_count_lines(in_store("audit.log"),
					"\"secret\":\"db\",", NULL, NULL),
			 1);
}
END_TEST

/* logrotate moves the log and sends SIGHUP: the daemon keeps serving
 * (libfuse's own handler would unmount) and audits into a new log. */
START_TEST(sighup_reopens_log_never_unmounts)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	int st, i, found = 0;

	mk("db", "v");
	up(NULL);
	assert_reads("secrets/db/default", "v");
	ck_assert_int_eq(
	    rename(in_store("audit.log"), in_store("audit.log.moved")), 0);
	ck_assert_int_eq(kill(h_daemon, SIGHUP), 0);
	/* readiness: the signal reaches a daemon thread in its own time */
	for (i = 0; i < 500 && !found; i++) {
		assert_reads("secrets/db/default", "v");
		found =
		    tu_count_lines(in_store("audit.log"),
				   "\"op\":\"version.read\"", NULL, NULL) > 0;
		if (!found)
			nanosleep(&tick, NULL);
	}
	ck_assert_msg(found, "no new audit.log after SIGHUP");
	ck_assert_int_eq(waitpid(h_daemon, &st, WNOHANG), 0);
	ck_assert_int_eq(tu_count_lines(in_store("audit.log.moved"),
					"\"op\":\"version.read\"", NULL,
					NULL) >= 1,
			 1);
	ck_assert_int_eq(size_of(in_store("audit.log")) > 0, 1);
}
END_TEST

START_TEST(audit_max_option_refuses_bad_sizes)
{
	pid_t pid = -1;

	ck_assert_int_eq(h_mount_at(h_mp, "audit_max=1K", &pid), 2);
	ck_assert_int_eq(h_mount_at(h_mp, "audit_max=12Q", &pid), 2);
	ck_assert_int_eq(h_mount_at(h_mp, "audit_max=", &pid), 2);
	ck_assert_int_eq(h_mount_at(h_mp, "audit_max=-8M", &pid), 2);
}
END_TEST

/* Issue 10, finding 11: `secretfs audit` prints no control character
 * raw, even from a line that holds them raw (an older log, or one edited
 * by hand): a terminal never gets ESC, CSI or a line separator. */
START_TEST(audit_command_escapes_controls)
{
	static const char raw[] =
	    "{\"op\":\"x\",\"secret\":\"\x1b]0;owned\x07\xc2\x9b"
	    "2J\xc2\x85\xe2\x80\xa8\xe2\x80\xae\"}\n";
	char *out;
	FILE *f = fopen(in_store("audit.log"), "a");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(raw, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	out = cli_out("audit", NULL);
	ck_assert_str_eq(out, "{\"op\":\"x\",\"secret\":\"\\u001B]0;owned"
			      "\\u0007\\u009B2J\\u0085\\u2028\\u202E\"}\n");
	free(out);
}
END_TEST

/* SPEC §5: --since also takes an age before now (30m, 2h, 1d). */
START_TEST(audit_since_takes_an_age)
{
	FILE *f;
	char *out;

	mk("db", "v");
	f = fopen(in_store("audit.log"), "a");
	ck_assert_ptr_nonnull(f);
	fputs("{\"time\":\"2000-01-01T00:00:00Z\",\"op\":\"old\"}\n", f);
	ck_assert_int_eq(fclose(f), 0);
	out = cli_out("audit", "--since", "1h", NULL);
	ck_assert_ptr_nonnull(strstr(out, "\"op\":\"secret.create\""));
	ck_assert_ptr_null(strstr(out, "\"op\":\"old\""));
	free(out);
	out = cli_out("audit", "--since", "30000d", NULL);
	ck_assert_ptr_nonnull(strstr(out, "\"op\":\"old\""));
	free(out);
	ck_assert_int_eq(cli("audit", "--since", "5x", NULL), 2);
	ck_assert_int_eq(cli("audit", "--since", "m", NULL), 2);
}
END_TEST

/* After rotations, `secretfs audit` prints the kept history in order:
 * audit.log.4 (oldest) ... audit.log.1, then audit.log. */
START_TEST(audit_reads_rotated_logs_oldest_first)
{
	char *out, *r2, *r1, *cur;

	tu_write_file(in_store("audit.log.2"), "{\"op\":\"r2\"}\n", 12, 0600);
	tu_write_file(in_store("audit.log.1"), "{\"op\":\"r1\"}\n", 12, 0600);
	mk("db", "v");
	out = cli_out("audit", NULL);
	r2 = strstr(out, "{\"op\":\"r2\"}\n");
	r1 = strstr(out, "{\"op\":\"r1\"}\n");
	cur = strstr(out, "\"op\":\"secret.create\"");
	ck_assert_ptr_nonnull(r2);
	ck_assert_ptr_nonnull(r1);
	ck_assert_ptr_nonnull(cur);
	ck_assert(r2 == out && r1 > r2 && cur > r1);
	free(out);
}
END_TEST

/* ---- finding 14: every line carries every field its front knows ---- */

/* The id of secret db, from the CLI's line of its creation. */
static void db_id(char id[37])
{
	static const char needle[] =
	    "\"op\":\"secret.create\",\"secret\":\"db\",\"secret_id\":\"";
	char *log = tu_read_file(in_store("audit.log"), NULL);
	const char *p = log ? strstr(log, needle) : NULL;

	ck_assert_ptr_nonnull(p);
	memcpy(id, p + strlen(needle), 36);
	id[36] = '\0';
	free(log);
}

static void comm_of_self(char comm[17])
{
	char *c = tu_read_file("/proc/self/comm", NULL);

	ck_assert_ptr_nonnull(c);
	c[strcspn(c, "\n")] = '\0';
	snprintf(comm, 17, "%s", c);
	free(c);
}

/* A write past 65,536 bytes, to default or staged then renamed onto it,
 * is refused with EFBIG and audited like any refused change: secret_id,
 * uid, gid, pid and comm. */
START_TEST(refused_large_write_audited_with_every_field)
{
	static char big[70000];
	char id[37], comm[17], want[512];

	mk("db", "v");
	up(NULL);
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(
	    put("secrets/db/default", O_WRONLY | O_TRUNC, big, sizeof(big)),
	    EFBIG);
	ck_assert_int_eq(
	    put("secrets/db/.big", O_WRONLY | O_CREAT, big, sizeof(big)),
	    EFBIG);
	ck_assert_int_eq(
	    ERR(rename(P("secrets/db/.big"), P("secrets/db/default"))), EFBIG);
	db_id(id);
	comm_of_self(comm);
	snprintf(want, sizeof(want),
		 "\"op\":\"version.add\",\"secret\":\"db\",\"secret_id\":"
		 "\"%s\",\"version\":null,\"result\":\"EFBIG\",\"uid\":%u,"
		 "\"gid\":%u,\"pid\":%d,\"comm\":\"%s\"}",
		 id, (unsigned)getuid(), (unsigned)getgid(), (int)getpid(),
		 comm);
	ck_assert_int_eq(
	    tu_count_lines(in_store("audit.log"), want, NULL, NULL), 2);
	assert_reads("secrets/db/default", "v");
}
END_TEST

/* An access-control change refused before the secret was read (a bad
 * allow list) names the secret's real id, not null. */
START_TEST(refused_access_control_change_names_secret_id)
{
	char id[37], want[300];

	mk("db", "v");
	ck_assert_int_eq(cli("secret", "update", "db", "--access-control", "on",
			     "--allow", "user:no-such-user-x", NULL),
			 1);
	db_id(id);
	snprintf(want, sizeof(want),
		 "\"op\":\"secret.update\",\"secret\":\"db\",\"secret_id\":"
		 "\"%s\",\"version\":null,\"result\":\"EINVAL\",\"uid\":%u}",
		 id, (unsigned)getuid());
	ck_assert_int_eq(
	    tu_count_lines(in_store("audit.log"), want, NULL, NULL), 1);
}
END_TEST

static Suite *mount_audit_suite(void)
{
	const TTest *const tests[] = {
	    refused_read_flood_limited_and_counted,
	    flood_bounded_by_audit_max_others_still_read,
	    sighup_reopens_log_never_unmounts,
	    audit_max_option_refuses_bad_sizes,
	    audit_command_escapes_controls,
	    audit_since_takes_an_age,
	    audit_reads_rotated_logs_oldest_first,
	    refused_large_write_audited_with_every_field,
	    refused_access_control_change_names_secret_id,
	};

	return h_suite("mount_audit", tests, sizeof(tests) / sizeof(tests[0]));
}

const struct harness harness = {.suite = mount_audit_suite, .fork = CK_FORK};
