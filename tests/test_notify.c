/*
 * Change notification (SPEC §3 "Change notification", issue 13): an
 * unmodified `inotifywait -m`, on the host and inside a podman container
 * (which reads with busybox cat, that is sendfile(2), and hands what it
 * read to the test through a FIFO), sees each of 200 rotations made by
 * the CLI, through a mount, or by the CLI of another host sharing a
 * PostgreSQL store (a throwaway cluster per test case, started and removed
 * in the runner by an unchecked fixture, as is each container; the
 * commit-to-event latency is printed, not asserted), and a read right
 * after each event returns exactly the new value (a kv/ file grown at a
 * rotation too, through sendfile); deactivation and activation, new
 * versions and new or deleted secrets give events; ro and only= views;
 * every cache mode; notify=replace and notify=none; poll(2)'s POLLPRI; a
 * stuck watcher slows no one; the daemon's own operations are neither
 * audited nor versions. No timing is asserted: each wait is for an event
 * or a line, and a missing one is caught by Check's timeout (generous
 * for the 200-rotation cases: the machine may be loaded).
 */
#include <poll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/sendfile.h>

#include "lib/pgcluster.h"
#include "lib/proc.h"
#include "mount_harness.h"

#define ROTATIONS	200 /* by each front, on the host and in a container */
#define STUCK_ROTATIONS 50

static void mk(const char *name, const char *value)
{
	ck_assert_int_eq(cli("secret", "create", name, "--value", value, NULL),
			 0);
}

static void rotate(const char *name, const char *value)
{
	ck_assert_int_eq(cli("version", "add", name, "--value", value, NULL),
			 0);
}

/* sh -c cmd (printf-style); its stdout in *out when out is set. */
static int sh(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...)
{
	char cmd[2048];
	char *argv[] = {"sh", "-c", cmd, NULL};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return h_run(argv, out);
}

/* --- an unmodified inotifywait -m --------------------------------------- */

struct watcher {
	pid_t pid;
	FILE *out; /* its stdout and stderr: "PATH EVENTS" lines */
};

/* Start inotifywait -m on paths under the mount (NULL-terminated);
 * returns once its watches are established. */
static void watch_start(struct watcher *w, const char *mp, ...)
{
	char *argv[16], line[1024];
	static char paths[8][1024];
	const char *rel;
	va_list ap;
	int fds[2], n = 0, i = 0;

	argv[n++] = "inotifywait";
	argv[n++] = "-m";
	argv[n++] = "--format";
	argv[n++] = "%w%f %e";
	va_start(ap, mp);
	while ((rel = va_arg(ap, const char *)) && i < 8) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", mp, rel);
		argv[n++] = paths[i++];
	}
	va_end(ap);
	argv[n] = NULL;
	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	w->pid = fork();
	ck_assert_int_ge(w->pid, 0);
	if (w->pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	w->out = fdopen(fds[0], "r");
	ck_assert_ptr_nonnull(w->out);
	/* unbuffered: poll on the descriptor sees every byte not yet read
	 * (watch_line) */
	setvbuf(w->out, NULL, _IONBF, 0);
	do
		ck_assert_ptr_nonnull(fgets(line, sizeof(line), w->out));
	while (!strstr(line, "Watches established"));
}

static void watch_stop(struct watcher *w)
{
	int st;

	kill(w->pid, SIGTERM);
	waitpid(w->pid, &st, 0);
	fclose(w->out);
}

#define EVENT_WAIT_S 60 /* an event comes in ms; past this it was lost */

/* The watcher's next line, waiting at most EVENT_WAIT_S: a lost event
 * fails here with the daemon's log, not at the case's timeout. */
static void watch_line(struct watcher *w, char *line, size_t cap,
		       const char *suffix, const char *ev)
{
	struct pollfd pfd = {.fd = fileno(w->out), .events = POLLIN};
	char *log;
	int rc;

	do
		rc = poll(&pfd, 1, EVENT_WAIT_S * 1000);
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		log = tu_read_file(h_log, NULL);
		fprintf(stderr, "no %s on ...%s within %d s; daemon log:\n%s\n",
			ev, suffix, EVENT_WAIT_S, log ? log : "(none)");
		free(log);
	}
	ck_assert_msg(rc == 1, "no %s event on ...%s within %d s", ev, suffix,
		      EVENT_WAIT_S);
	ck_assert_ptr_nonnull(fgets(line, (int)cap, w->out));
}

/* Read events until one on a path ending in suffix with event ev (a word
 * of inotifywait's list); how many lines with count_ev on suffix came
 * before it (0 when count_ev is NULL). */
static int watch_until(struct watcher *w, const char *suffix, const char *ev,
		       const char *count_ev, const char *refuse)
{
	char line[1024], *sp;
	size_t sl = strlen(suffix);
	int n = 0;

	for (;;) {
		watch_line(w, line, sizeof(line), suffix, ev);
		line[strcspn(line, "\n")] = '\0';
		sp = strchr(line, ' ');
		ck_assert_ptr_nonnull(sp);
		*sp++ = '\0';
		if (refuse)
			ck_assert_msg(!strstr(line, refuse), "event on %s %s",
				      line, sp);
		if ((size_t)(sp - 1 - line) < sl || strcmp(sp - 1 - sl, suffix))
			continue;
		if (strstr(sp, ev))
			return n;
		if (count_ev && strstr(sp, count_ev))
			n++;
	}
}

/* Read rel with sendfile(2), as busybox cat does: the kernel's cached
 * size bounds it, so a stale size after an event would cut the value. */
static void assert_sendfile(const char *rel, const char *value)
{
	char buf[256];
	int in = open(P(rel), O_RDONLY | O_CLOEXEC);
	int out = memfd_create("notify", MFD_CLOEXEC);
	ssize_t n;

	ck_assert_int_ge(in, 0);
	ck_assert_int_ge(out, 0);
	n = sendfile(out, in, NULL, sizeof(buf) - 1);
	ck_assert_int_eq(n, (ssize_t)strlen(value));
	ck_assert_int_eq(pread(out, buf, (size_t)n, 0), n);
	buf[n] = '\0';
	ck_assert_str_eq(buf, value);
	close(in);
	close(out);
}

/* One rotation's modify events on default, then the new value, through
 * read(2) and sendfile(2). */
static void expect_modify(struct watcher *w, const char *rel, const char *value)
{
	ck_assert_int_ge(
	    watch_until(w, "/default", "CLOSE_WRITE", "MODIFY", NULL), 1);
	assert_sendfile(rel, value);
	assert_reads(rel, value);
}

/* --- tests -------------------------------------------------------------- */

/* notify=modify (default): N CLI rotations, N × IN_MODIFY+IN_CLOSE_WRITE
 * on a watch of default that survives them all; each read right after
 * its event returns exactly the new value. */
START_TEST(cli_rotation_gives_modify_events)
{
	struct watcher w;
	char v[32];
	int i;

	mk("db", "v0");
	up(NULL);
	watch_start(&w, h_mp, "secrets/db/default", NULL);
	for (i = 1; i <= ROTATIONS; i++) {
		snprintf(v, sizeof(v), "value-%d", i);
		rotate("db", v);
		expect_modify(&w, "secrets/db/default", v);
	}
	watch_stop(&w);
}
END_TEST

/* kv/ files the kernel holds get the modify events too, and the
 * daemon's own lookups there decrypt nothing (no audit line). */
START_TEST(kv_files_give_modify_events)
{
	struct watcher w;
	char *log, path[600];

	ck_assert_int_eq(cli("secret", "create", "db", "--kv", "user=a", "--kv",
			     "pass=b", NULL),
			 0);
	up(NULL);
	assert_reads("secrets/db/kv/pass", "b");
	watch_start(&w, h_mp, "secrets/db/kv/pass", NULL);
	ck_assert_int_eq(cli("version", "add", "db", "--kv", "user=a", "--kv",
			     "pass=c", NULL),
			 0);
	ck_assert_int_ge(
	    watch_until(&w, "kv/pass", "CLOSE_WRITE", "MODIFY", NULL), 1);
	assert_reads("secrets/db/kv/pass", "c");
	watch_stop(&w);
	snprintf(path, sizeof(path), "%s/audit.log", h_store);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_ptr_null(strstr(log, "\"comm\":\"secretfs\""));
	free(log);
}
END_TEST

/* A kv/ file whose value grows at a rotation: sendfile(2) right after
 * the event (bounded by the kernel's cached size, which a stat would
 * refresh but sendfile does not) returns the whole new value. */
static void kv_sendfile_rotations(const char *opts)
{
	struct watcher w;
	char v[64], kv[80];
	int i;

	ck_assert_int_eq(cli("secret", "create", "db", "--kv", "pass=b", NULL),
			 0);
	up(opts);
	assert_reads("secrets/db/kv/pass", "b");
	watch_start(&w, h_mp, "secrets/db/kv/pass", NULL);
	for (i = 1; i <= 10; i++) {
		snprintf(v, sizeof(v), "grown-%0*d", i * 4, i);
		snprintf(kv, sizeof(kv), "pass=%s", v);
		ck_assert_int_eq(cli("version", "add", "db", "--kv", kv, NULL),
				 0);
		ck_assert_int_ge(
		    watch_until(&w, "kv/pass", "CLOSE_WRITE", "MODIFY", NULL),
		    1);
		assert_sendfile("secrets/db/kv/pass", v);
		assert_reads("secrets/db/kv/pass", v);
	}
	watch_stop(&w);
}

START_TEST(kv_file_grown_sendfile_after_event_reads_whole_value)
{
	kv_sendfile_rotations(NULL);
}
END_TEST

START_TEST(kv_file_grown_sendfile_after_event_reads_whole_value_cache_kernel)
{
	kv_sendfile_rotations("cache=kernel");
}
END_TEST

/* The daemon's own operations: no version, no audit line. */
START_TEST(own_operations_neither_versions_nor_audited)
{
	struct watcher w;
	char *list, *log, path[600];
	int i, lines = 0;

	mk("db", "v0");
	up(NULL);
	watch_start(&w, h_mp, "secrets/db/default", NULL);
	for (i = 1; i <= 3; i++) {
		rotate("db", "x");
		expect_modify(&w, "secrets/db/default", "x");
	}
	watch_stop(&w);
	list = cli_out("version", "list", "db", NULL);
	for (i = 0; list[i]; i++)
		lines += list[i] == '\n';
	free(list);
	ck_assert_int_eq(lines, 1 + 4); /* header + v1..v4 */
	snprintf(path, sizeof(path), "%s/audit.log", h_store);
	log = tu_read_file(path, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_ptr_null(strstr(log, "\"comm\":\"secretfs\""));
	free(log);
}
END_TEST

/* Rotations written through the read-write mount reach a watcher on a
 * ro mount of the same store (the only writer there is the daemon). */
START_TEST(mount_rotation_reaches_ro_view)
{
	struct watcher w;
	char v[32], mp2[600], rel[700];
	pid_t d2 = -1;
	int i;

	mk("db", "v0");
	up(NULL);
	snprintf(mp2, sizeof(mp2), "%s/ro", h_base);
	ck_assert_int_eq(mkdir(mp2, 0755), 0);
	ck_assert_int_eq(h_mount_at(mp2, "ro", &d2), 0);
	watch_start(&w, mp2, "secrets/db/default", NULL);
	snprintf(rel, sizeof(rel), "../ro/secrets/db/default");
	for (i = 1; i <= ROTATIONS; i++) {
		snprintf(v, sizeof(v), "mount-%d", i);
		ck_assert_int_eq(
		    put_s("secrets/db/default", O_WRONLY | O_TRUNC, v), 0);
		expect_modify(&w, rel, v);
	}
	watch_stop(&w);
	ck_assert_int_eq(h_umount_at(mp2, &d2), 0);
}
END_TEST

/* A ro view stays read-only for users (EROFS, as when the kernel mount
 * was ro) although the kernel mount is writable for the daemon. */
START_TEST(ro_view_refuses_user_writes_with_erofs)
{
	mk("db", "v0");
	up("ro");
	ck_assert_int_eq(put_s("secrets/db/default", O_WRONLY | O_TRUNC, "x"),
			 EROFS);
	ck_assert_int_eq(put_s("secrets/db/.tmp", O_WRONLY | O_CREAT, "x"),
			 EROFS);
	ck_assert_int_eq(
	    put_s("secrets/db/versions/2", O_WRONLY | O_CREAT, "x"), EROFS);
	ck_assert_int_eq(ERR(mkdir(P("secrets/new"), 0700)), EROFS);
	ck_assert_int_eq(ERR(rmdir(P("secrets/db"))), EROFS);
	ck_assert_int_eq(ERR(unlink(P("secrets/db/versions/1"))), EROFS);
	ck_assert_int_eq(ERR(chmod(P("secrets/db"), 0600)), EROFS);
	ck_assert_int_eq(ERR(setxattr(P("secrets/db"),
				      "user.secret.description", "d", 1, 0)),
			 EROFS);
	ck_assert_int_eq(ERR(access(P("secrets/db/default"), W_OK)), EROFS);
	assert_reads("secrets/db/default", "v0");
	ck_assert_int_eq(cli("secret", "show", "db", NULL), 0);
}
END_TEST

/* Every cache mode delivers the events and the new value after them. */
static void cache_mode_rotations(const char *opts)
{
	struct watcher w;
	char v[32];
	int i;

	mk("db", "v0");
	up(opts);
	assert_reads("secrets/db/default", "v0");
	watch_start(&w, h_mp, "secrets/db/default", NULL);
	for (i = 1; i <= 10; i++) {
		snprintf(v, sizeof(v), "%s-%d", opts, i);
		rotate("db", v);
		expect_modify(&w, "secrets/db/default", v);
	}
	watch_stop(&w);
}

START_TEST(cache_open_delivers_events)
{
	cache_mode_rotations("cache=open");
}
END_TEST

START_TEST(cache_kernel_delivers_events)
{
	cache_mode_rotations("cache=kernel");
}
END_TEST

START_TEST(cache_kernel_ro_delivers_events)
{
	cache_mode_rotations("cache=kernel,ro");
}
END_TEST

/* Deactivation, activation and a rollback move what default serves:
 * each gives the events. */
START_TEST(deactivate_activate_give_events)
{
	struct watcher w;

	mk("db", "v0");
	up(NULL);
	watch_start(&w, h_mp, "secrets/db/default", NULL);
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_ge(
	    watch_until(&w, "/default", "CLOSE_WRITE", "MODIFY", NULL), 1);
	ck_assert_int_eq(put_s("secrets/db/default", O_RDONLY, ""),
			 EKEYREVOKED);
	ck_assert_int_eq(cli("secret", "activate", "db", NULL), 0);
	expect_modify(&w, "secrets/db/default", "v0");
	rotate("db", "v1");
	expect_modify(&w, "secrets/db/default", "v1");
	ck_assert_int_eq(cli("version", "set-default", "db", "1", NULL), 0);
	expect_modify(&w, "secrets/db/default", "v0");
	watch_stop(&w);
}
END_TEST

/* A new version: IN_CREATE of versions/N; a new and a deleted secret:
 * IN_CREATE / IN_DELETE in secrets/. */
START_TEST(versions_and_secrets_give_create_delete)
{
	struct watcher w;
	struct stat st;

	mk("db", "v0");
	up(NULL);
	ck_assert_int_eq(stat(P("secrets/db/versions"), &st), 0);
	watch_start(&w, h_mp, "secrets", "secrets/db/versions", NULL);
	rotate("db", "v1");
	watch_until(&w, "/versions/2", "CREATE", NULL, NULL);
	assert_reads("secrets/db/versions/2", "v1");
	mk("other", "o");
	watch_until(&w, "secrets/other", "CREATE,ISDIR", NULL, NULL);
	assert_reads("secrets/other/default", "o");
	ck_assert_int_eq(cli("secret", "deactivate", "other", NULL), 0);
	ck_assert_int_eq(cli("version", "destroy", "other", "1", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "delete", "other", "--confirm", "other", NULL), 0);
	watch_until(&w, "secrets/other", "DELETE,ISDIR", NULL, NULL);
	ck_assert_int_eq(ERR(stat(P("secrets/other/default"), &st)), ENOENT);
	watch_stop(&w);
}
END_TEST

/* only=: a view gives events for its own secrets only. */
START_TEST(only_view_events_only_for_its_secrets)
{
	struct watcher w;

	mk("app-a", "a0");
	up("only=app-*");
	watch_start(&w, h_mp, "secrets", "secrets/app-a/default", NULL);
	mk("hidden", "h");
	rotate("hidden", "h2");
	mk("app-b", "b");
	watch_until(&w, "secrets/app-b", "CREATE,ISDIR", NULL, "hidden");
	rotate("app-a", "a1");
	ck_assert_int_ge(
	    watch_until(&w, "app-a/default", "CLOSE_WRITE", "MODIFY", "hidden"),
	    1);
	assert_reads("secrets/app-a/default", "a1");
	watch_stop(&w);
}
END_TEST

/* layout=flat: IN_MODIFY + IN_CLOSE_WRITE on the secret's file at the
 * root, IN_CREATE / IN_DELETE there for secrets that come and go. */
START_TEST(flat_view_delivers_events)
{
	struct watcher w;
	char v[32];
	int i;

	mk("db", "v0");
	up("ro,layout=flat");
	watch_start(&w, h_mp, ".", NULL);
	for (i = 1; i <= 10; i++) {
		snprintf(v, sizeof(v), "flat-%d", i);
		rotate("db", v);
		ck_assert_int_ge(
		    watch_until(&w, "/db", "CLOSE_WRITE", "MODIFY", NULL), 1);
		assert_sendfile("db", v);
		assert_reads("db", v);
	}
	mk("new", "n");
	watch_until(&w, "/new", "CREATE", NULL, NULL);
	assert_reads("new", "n");
	ck_assert_int_eq(cli("secret", "deactivate", "new", NULL), 0);
	ck_assert_int_eq(cli("version", "destroy", "new", "1", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "delete", "new", "--confirm", "new", NULL), 0);
	watch_until(&w, "/new", "DELETE", NULL, NULL);
	watch_stop(&w);
}
END_TEST

/* .status names the mount's notify= mode. */
static void assert_status_notify(const char *mode)
{
	char *got, want[64];

	ck_assert_int_eq(slurp(".status", &got, NULL), 0);
	snprintf(want, sizeof(want), "\"notify\": \"%s\"", mode);
	ck_assert_msg(strstr(got, want), "%s not in %s", want, got);
	free(got);
}

/* notify=replace: IN_MOVED_TO of default in the secret's directory, the
 * new value readable after it (stat's size too). */
START_TEST(replace_mode_gives_moved_to)
{
	struct watcher w;
	struct stat st;
	char v[32];
	int i;

	mk("db", "v0");
	up("notify=replace");
	assert_status_notify("replace");
	watch_start(&w, h_mp, "secrets/db", NULL);
	for (i = 1; i <= 10; i++) {
		snprintf(v, sizeof(v), "replaced-%d", i);
		rotate("db", v);
		watch_until(&w, "db/default", "MOVED_TO", NULL, NULL);
		assert_sendfile("secrets/db/default", v);
		assert_reads("secrets/db/default", v);
		ck_assert_int_eq(stat(P("secrets/db/default"), &st), 0);
		ck_assert_int_eq(st.st_size, (off_t)strlen(v));
	}
	watch_stop(&w);
	ck_assert_int_eq(cli("version", "list", "db", NULL), 0);
}
END_TEST

/* notify=none: no event at all, the new value still served. A sentinel
 * (a file the test itself writes on another mount... here: a staged
 * file) orders the check without a timing assumption. */
START_TEST(none_mode_sends_nothing)
{
	struct watcher w;

	mk("db", "v0");
	up("notify=none");
	assert_status_notify("none");
	watch_start(&w, h_mp, "secrets/db", NULL);
	rotate("db", "v1");
	assert_reads("secrets/db/default", "v1");
	ck_assert_int_eq(put_s("secrets/db/.sentinel", O_WRONLY | O_CREAT, ""),
			 0);
	/* everything before the sentinel's CREATE came from the rotation
	 * or the read: no MODIFY and no write close of default */
	ck_assert_int_eq(
	    watch_until(&w, "/.sentinel", "CREATE", "MODIFY", NULL), 0);
	watch_stop(&w);
}
END_TEST

/* poll(2) on an open default: readable, POLLPRI once it changed. */
START_TEST(poll_reports_pollpri_after_change)
{
	struct pollfd p;
	int fd;

	mk("db", "v0");
	up(NULL);
	fd = open(P("secrets/db/default"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	p.fd = fd;
	p.events = POLLIN | POLLPRI;
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	ck_assert_int_eq(p.revents, POLLIN);
	rotate("db", "v1");
	p.events = POLLPRI;
	do
		ck_assert_int_ge(poll(&p, 1, -1), 0);
	while (!(p.revents & POLLPRI));
	close(fd);
	assert_reads("secrets/db/default", "v1");
}
END_TEST

/* A watcher that never reads its queue, and a process holding default
 * open, slow no one: the rotations and the reading watcher complete. */
START_TEST(stuck_watcher_does_not_block_others)
{
	struct watcher w;
	char v[32];
	int stuck, held, i;

	mk("db", "v0");
	up(NULL);
	stuck = inotify_init1(IN_CLOEXEC);
	ck_assert_int_ge(stuck, 0);
	ck_assert_int_ge(
	    inotify_add_watch(stuck, P("secrets/db/default"), IN_ALL_EVENTS),
	    0);
	held = open(P("secrets/db/default"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(held, 0);
	watch_start(&w, h_mp, "secrets/db/default", NULL);
	for (i = 1; i <= STUCK_ROTATIONS; i++) {
		snprintf(v, sizeof(v), "busy-%d", i);
		rotate("db", v);
		expect_modify(&w, "secrets/db/default", v);
	}
	watch_stop(&w);
	close(held);
	close(stuck);
}
END_TEST

/* The watched app holds default open across rotations (as a service
 * holds its certificate): each rotation still gives its events, the
 * app's fresh open right after each reads exactly the new value (read(2)
 * and sendfile(2)), and with snapshot set the held handle goes on reading
 * the value it opened (SPEC §3: a handle sees the value as it was at
 * open), fstat giving that value's size. */
static void held_rotations(const char *opts, int snapshot)
{
	struct watcher w;
	struct stat st;
	char v[32], buf[64];
	int held, i, k;

	mk("db", "v0");
	up(opts);
	held = open(P("secrets/db/default"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(held, 0);
	watch_start(&w, h_mp, "secrets/db/default", NULL);
	for (i = 1; i <= 20; i++) {
		snprintf(v, sizeof(v), "held-%d-%s", i, i % 2 ? "long" : "x");
		rotate("db", v);
		expect_modify(&w, "secrets/db/default", v);
		if (!snapshot)
			continue;
		ck_assert_int_eq(pread(held, buf, sizeof(buf), 0), 2);
		ck_assert_int_eq(memcmp(buf, "v0", 2), 0);
		/* the fresh handles of expect_modify reach RELEASE after their
		 * close(2) returned: until then this process holds both */
		for (k = 0; k < 200; k++) {
			ck_assert_int_eq(fstat(held, &st), 0);
			if (st.st_size == 2)
				break;
			usleep(10000);
		}
		ck_assert_int_eq(st.st_size, 2);
	}
	watch_stop(&w);
	close(held);
	assert_sendfile("secrets/db/default", v);
}

START_TEST(rotation_while_app_holds_default_open)
{
	held_rotations(NULL, 1);
}
END_TEST

START_TEST(rotation_while_app_holds_default_open_cache_open)
{
	held_rotations("cache=open", 0);
}
END_TEST

/* Is a notify helper of this test's mountpoint still running? */
static int helper_alive(void)
{
	char *out = NULL;
	int rc = sh(&out, "pgrep -f -x '.*secretfs __notify-helper %s'", h_mp);

	free(out);
	return rc == 0;
}

/* SIGKILL while the notifier has operations in flight: the daemon exits
 * (its own requests never hold it in the kernel), its helper goes with
 * it, and the next mount serves. */
START_TEST(killed_daemon_exits_with_events_in_flight)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	char v[16];
	int i, st;

	mk("db", "v0");
	for (i = 1; i <= 10; i++) {
		up("cache=kernel");
		snprintf(v, sizeof(v), "k%d", i);
		/* stopped: the change waits; continued and killed at once:
		 * the notifier is then at work */
		ck_assert_int_eq(kill(h_daemon, SIGSTOP), 0);
		rotate("db", v);
		ck_assert_int_eq(kill(h_daemon, SIGCONT), 0);
		ck_assert_int_eq(kill(h_daemon, SIGKILL), 0);
		ck_assert_int_eq(waitpid(h_daemon, &st, 0), h_daemon);
		h_daemon = -1;
		/* auto_unmount may have done it already */
		sh(NULL, "fusermount3 -uz '%s' 2>/dev/null", h_mp);
		while (helper_alive())
			nanosleep(&ts, NULL);
	}
	up(NULL);
	assert_reads("secrets/db/default", "k10");
}
END_TEST

/* --- secretfs watch (no mount) ------------------------------------------ */

static void watch_cli(struct tu_proc *p, const char *const *argv)
{
	memset(p, 0, sizeof(*p));
	p->argv = argv;
	ck_assert_int_eq(tu_proc_start(p), 0);
}

/* The state at start, then one `name version state` line per change. */
START_TEST(watch_prints_one_line_per_change)
{
	const char *argv[] = {h_bin(), "--store", h_store, "watch",
			      "db",    "gone",	  NULL};
	struct tu_proc p;

	mk("db", "v0");
	watch_cli(&p, argv);
	ck_assert_int_eq(tu_proc_wait_output(&p, "gone 0 deleted\n"), 0);
	rotate("db", "v1");
	ck_assert_int_eq(tu_proc_wait_output(&p, "db 2 active\n"), 0);
	ck_assert_int_eq(
	    cli("secret", "update", "db", "--description", "d", NULL),
	    0); /* not a change of the default */
	rotate("db", "v2");
	ck_assert_int_eq(tu_proc_wait_output(&p, "db 3 active\n"), 0);
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_eq(tu_proc_wait_output(&p, "db 3 deactivated\n"), 0);
	mk("gone", "g");
	ck_assert_int_eq(tu_proc_wait_output(&p, "gone 1 active\n"), 0);
	ck_assert_int_eq(tu_proc_stop(&p, SIGTERM), 0);
	ck_assert_str_eq(p.out, "db 1 active\ngone 0 deleted\ndb 2 active\n"
				"db 3 active\ndb 3 deactivated\n"
				"gone 1 active\n");
	tu_proc_release(&p);
}
END_TEST

START_TEST(watch_json_lines)
{
	const char *argv[] = {h_bin(),	"--store", h_store, "watch",
			      "--json", "db",	   NULL};
	struct tu_proc p;

	mk("db", "v0");
	watch_cli(&p, argv);
	ck_assert_int_eq(tu_proc_wait_output(&p, "}\n"), 0);
	rotate("db", "v1");
	ck_assert_int_eq(tu_proc_wait_output(&p, "\"version\":2"), 0);
	ck_assert_int_eq(tu_proc_stop(&p, SIGTERM), 0);
	ck_assert_str_eq(
	    p.out, "{\"secret\":\"db\",\"version\":1,\"state\":\"active\"}\n"
		   "{\"secret\":\"db\",\"version\":2,\"state\":\"active\"}\n");
	tu_proc_release(&p);
}
END_TEST

/* --exec: once per change, in order, never two at a time (a lock
 * directory would collide); a failing run is reported and the watch
 * goes on. */
START_TEST(watch_exec_runs_once_per_change_in_order)
{
	char cmd[4096], log[600], *got;
	const char *argv[] = {h_bin(), "--store", h_store, "watch",
			      "db",    "--exec",  cmd,	   NULL};
	struct tu_proc p;
	char v[16], done[32];
	int i;

	snprintf(log, sizeof(log), "%s/exec.log", h_base);
	snprintf(cmd, sizeof(cmd),
		 "mkdir %s/lock || echo overlap >> %s; "
		 "echo \"$SECRETFS_SECRET $SECRETFS_VERSION\" >> %s; "
		 "rmdir %s/lock; echo ran $SECRETFS_VERSION; "
		 "[ \"$SECRETFS_VERSION\" != 3 ]",
		 h_base, log, log, h_base);
	mk("db", "v0");
	watch_cli(&p, argv);
	ck_assert_int_eq(tu_proc_wait_output(&p, "db 1 active\n"), 0);
	for (i = 2; i <= 5; i++) {
		snprintf(v, sizeof(v), "v%d", i);
		rotate("db", v);
		snprintf(done, sizeof(done), "ran %d\n", i);
		ck_assert_int_eq(tu_proc_wait_output(&p, done), 0);
	}
	ck_assert_int_eq(tu_proc_stop(&p, SIGTERM), 0);
	got = tu_read_file(log, NULL);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, "db 2\ndb 3\ndb 4\ndb 5\n");
	free(got);
	ck_assert_str_eq(p.err, "secretfs: watch: command for 'db' version 3 "
				"failed: exit 1\n");
	tu_proc_release(&p);
}
END_TEST

/* --- a container: the host's unmodified inotifywait ---------------------- */

#define IMAGE "secretfs-busybox"
/* The project's busybox image has no inotify tool: the host's inotifywait
 * and the libraries it needs are bind-mounted in, read-only (Debian
 * amd64 paths). */
#define LIBDIR "/usr/lib/x86_64-linux-gnu"
#define LDDIR  "/usr/lib64"
/* What the container runs (busybox sh): for each IN_CLOSE_WRITE, its
 * busybox cat (sendfile(2), bounded by the kernel's cached size) reads
 * the file, and what it read goes on one line into the test's FIFO;
 * inotifywait's own messages and any error go there too. */
#define CTR_FILE "/run/secretfs/secrets/app-db/default"
#define CTR_SH                                                                 \
	"exec >/out/fifo 2>&1; /usr/local/bin/inotifywait -m -e close_write "  \
	"" CTR_FILE " | while read -r ev; do cat " CTR_FILE "; echo; done"

static int container_ready(void)
{
	return geteuid() == 0 && sh(NULL, "command -v podman") == 0 &&
	       sh(NULL, "command -v runc") == 0 &&
	       access("/bin/busybox", X_OK) == 0 &&
	       access(LIBDIR "/libinotifytools.so.0", R_OK) == 0 &&
	       access(LDDIR "/ld-linux-x86-64.so.2", R_OK) == 0;
}

/* The container's name, set in the runner (an unchecked fixture) so that
 * the runner removes it even when a failed assertion ended the test. */
static char ctr_name[64];

static void ctr_name_set(void)
{
	static int n;

	snprintf(ctr_name, sizeof(ctr_name), "secretfs-notify-%d-%d",
		 (int)getpid(), ++n);
}

static void ctr_remove(void)
{
	sh(NULL, "podman rm -f -t 0 %s >/dev/null 2>&1", ctr_name);
}

struct ctr {
	FILE *in; /* the FIFO: the container's lines */
	char view[600];
	pid_t daemon; /* the view's */
};

/* One line from the container, without its newline. */
static void ctr_line(struct ctr *c, char *line, size_t cap)
{
	ck_assert_ptr_nonnull(fgets(line, (int)cap, c->in));
	line[strcspn(line, "\n")] = '\0';
}

/* Mount store's ro,allow_other,only=app-* view (the container's uid 1000
 * reads app-db) and start the container on it; returns once the
 * container's inotifywait has its watch. */
static void ctr_start(struct ctr *c, const char *store)
{
	char dir[600], fifo[700], saved[sizeof(h_store)], line[1024];
	char *out = NULL;
	int fd, rc;

	snprintf(saved, sizeof(saved), "%s", h_store);
	if (store != h_store)
		snprintf(h_store, sizeof(h_store), "%s", store);
	ck_assert_int_eq(cli("secret", "update", "app-db", "--owner", "1000",
			     "--group", "1000", NULL),
			 0);
	snprintf(c->view, sizeof(c->view), "%s/view", h_base);
	ck_assert_int_eq(mkdir(c->view, 0755), 0);
	ck_assert_int_eq(
	    h_mount_at(c->view, "ro,allow_other,only=app-*", &c->daemon), 0);
	snprintf(h_store, sizeof(h_store), "%s", saved);
	snprintf(dir, sizeof(dir), "%s/ctr", h_base);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	ck_assert_int_eq(mkdir(dir, 0777), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	ck_assert_int_eq(mkfifo(fifo, 0666), 0);
	ck_assert_int_eq(chmod(fifo, 0666), 0);
	/* O_RDWR: never blocks, and the container's writes never fail */
	fd = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	c->in = fdopen(fd, "r");
	ck_assert_ptr_nonnull(c->in);
	ck_assert_int_eq(sh(NULL, "scripts/container-image " IMAGE), 0);
	rc = sh(&out,
		"podman run -d --name %s --runtime runc --network none "
		"--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "
		"--user 1000:1000 -v '%s:/run/secretfs:ro' -v '%s:/out' "
		"-v " LIBDIR ":/lib/x86_64-linux-gnu:ro -v " LDDIR ":/lib64:ro "
		"-v /usr/bin/inotifywait:/usr/local/bin/inotifywait:ro " IMAGE
		" sh -c '" CTR_SH "'",
		ctr_name, c->view, dir);
	ck_assert_msg(rc == 0, "podman run: %s", out ? out : "");
	free(out);
	do
		ctr_line(c, line, sizeof(line));
	while (!strstr(line, "Watches established"));
}

/* The container's read right after its next event is exactly value. */
static void ctr_expect(struct ctr *c, int i, const char *value)
{
	char line[1024];

	ctr_line(c, line, sizeof(line));
	ck_assert_msg(!strcmp(line, value),
		      "rotation %d: the container read '%s', not '%s'", i, line,
		      value);
}

/* The container first (it holds the view's mount), then the view. */
static void ctr_stop(struct ctr *c)
{
	ctr_remove();
	fclose(c->in);
	ck_assert_int_eq(h_umount_at(c->view, &c->daemon), 0);
}

/* CLI rotations of app-db on store (h_store: this host's, or host A's
 * beside a view of host B's store), seen in the container. */
static void ctr_cli_rotations(const char *store, const char *tag)
{
	struct ctr c;
	char v[64];
	int i;

	ctr_start(&c, store);
	for (i = 1; i <= ROTATIONS; i++) {
		snprintf(v, sizeof(v), "%s-%d", tag, i);
		rotate("app-db", v);
		ctr_expect(&c, i, v);
	}
	ctr_stop(&c);
}

/* An unmodified inotifywait -m in a podman container (uid 1000, a ro
 * only= view bind-mounted read-only) gets IN_CLOSE_WRITE for each of
 * ROTATIONS CLI rotations, and the container's read right after each
 * returns exactly the new value. */
START_TEST(container_watcher_gets_cli_rotations)
{
	mk("app-db", "v0");
	ctr_cli_rotations(h_store, "cli");
}
END_TEST

/* The same for rotations written through a read-write mount of the
 * store (the view in the container is another mount). */
START_TEST(container_watcher_gets_mount_rotations)
{
	struct ctr c;
	char v[64];
	int i;

	mk("app-db", "v0");
	up(NULL);
	ctr_start(&c, h_store);
	for (i = 1; i <= ROTATIONS; i++) {
		snprintf(v, sizeof(v), "mount-%d", i);
		ck_assert_int_eq(
		    put_s("secrets/app-db/default", O_WRONLY | O_TRUNC, v), 0);
		ctr_expect(&c, i, v);
	}
	ctr_stop(&c);
}
END_TEST

/* --- another host: two store directories on one PostgreSQL store ---------- */

static struct pgcluster pgc;
static char pg_host[2][512]; /* host A's and host B's store directories */

/* In the runner (unchecked): removed even when a test fails. */
static void pg_cluster_up(void)
{
	if (pgc_start(&pgc) != 0)
		ck_abort_msg("cannot start a PostgreSQL cluster");
}

static void pg_cluster_down(void)
{
	pgc_stop(&pgc);
}

/* Host A makes the store, host B joins it (one master key file, as in
 * test_pg); h_store is A's directory, h_mp and h_log are B's. */
static void pg_hosts_setup(void)
{
	char ci[PATH_MAX + 128], key[600];

	ck_assert_msg(pgc.running, "no cluster");
	ck_assert_int_ge(asprintf(&h_base, "%s/hosts-XXXXXX", pgc.dir), 0);
	ck_assert_ptr_nonnull(mkdtemp(h_base));
	ck_assert_int_eq(chmod(h_base, 0755), 0);
	ck_assert_int_eq(pgc_new_store(pgc.conninfo, ci, sizeof(ci)), 0);
	snprintf(pg_host[0], sizeof(pg_host[0]), "%s/a", h_base);
	snprintf(pg_host[1], sizeof(pg_host[1]), "%s/b", h_base);
	snprintf(h_mp, sizeof(h_mp), "%s/mb", h_base);
	snprintf(h_log, sizeof(h_log), "%s/b.log", h_base);
	ck_assert_int_eq(mkdir(h_mp, 0755), 0);
	snprintf(key, sizeof(key), "%s/master.key", h_base);
	setenv("SECRETFS_MASTER_KEY", key, 1);
	snprintf(h_store, sizeof(h_store), "%s", pg_host[0]);
	ck_assert_int_eq(
	    cli("init", "--backend", "postgresql", "--conninfo", ci, NULL), 0);
	snprintf(h_store, sizeof(h_store), "%s", pg_host[1]);
	ck_assert_int_eq(cli("init", "--join", "--conninfo", ci, NULL), 0);
	ck_assert_int_eq(h_mount_at(h_mp, NULL, &h_daemon), 0);
	snprintf(h_store, sizeof(h_store), "%s", pg_host[0]);
}

static void pg_hosts_teardown(void)
{
	h_umount_at(h_mp, &h_daemon);
	tu_rmrf(h_base);
	free(h_base);
	h_base = NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `secretfs version add NAME --value V` on host A, not waited for. */
static pid_t rotate_start(const char *name, const char *value)
{
	char *argv[] = {(char *)h_bin(), "--store",	h_store,
			"version",	 "add",		(char *)name,
			"--value",	 (char *)value, NULL};
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Informational only (no assertion on time): p50 and p99 in ms. */
static void print_latency(const char *what, double *ms, int n)
{
	qsort(ms, (size_t)n, sizeof(ms[0]), cmp_double);
	printf("test_notify: %s over %d rotations: p50 %.1f ms, p99 %.1f ms "
	       "(informational)\n",
	       what, n, ms[n / 2], ms[(n * 99 + 99) / 100 - 1]);
}

/* Host A rotates by the CLI; B's unmodified inotifywait -m on its mount's
 * default sees IN_MODIFY + IN_CLOSE_WRITE for each rotation, and a read
 * right after each event returns exactly the new value. Prints the
 * A-CLI-start -> B-event latency (an upper bound of commit -> event: it
 * includes the CLI's own start) and the CLI's run time. */
START_TEST(rotation_on_another_host_gives_modify_events)
{
	double ev[ROTATIONS], run[ROTATIONS], t0;
	struct watcher w;
	char v[32];
	pid_t pid;
	int i, st;

	mk("db", "v0");
	assert_reads("secrets/db/default", "v0");
	watch_start(&w, h_mp, "secrets/db/default", NULL);
	for (i = 1; i <= ROTATIONS; i++) {
		snprintf(v, sizeof(v), "host-a-%d", i);
		t0 = now_s();
		pid = rotate_start("db", v);
		ck_assert_int_ge(
		    watch_until(&w, "/default", "CLOSE_WRITE", "MODIFY", NULL),
		    1);
		ev[i - 1] = (now_s() - t0) * 1000;
		assert_sendfile("secrets/db/default", v);
		assert_reads("secrets/db/default", v);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		run[i - 1] = (now_s() - t0) * 1000;
		ck_assert_int_eq(st, 0);
	}
	watch_stop(&w);
	print_latency("CLI start on host A -> event on host B", ev, ROTATIONS);
	print_latency("CLI run on host A", run, ROTATIONS);
}
END_TEST

/* Deactivate and activate on host A: an event on B each, the mount
 * refusing then serving again. */
START_TEST(deactivate_activate_on_another_host_give_events)
{
	struct watcher w;

	mk("db", "v0");
	assert_reads("secrets/db/default", "v0");
	watch_start(&w, h_mp, "secrets/db/default", NULL);
	ck_assert_int_eq(cli("secret", "deactivate", "db", NULL), 0);
	ck_assert_int_ge(
	    watch_until(&w, "/default", "CLOSE_WRITE", "MODIFY", NULL), 1);
	ck_assert_int_eq(put_s("secrets/db/default", O_RDONLY, ""),
			 EKEYREVOKED);
	ck_assert_int_eq(cli("secret", "activate", "db", NULL), 0);
	expect_modify(&w, "secrets/db/default", "v0");
	watch_stop(&w);
}
END_TEST

/* Host A rotates through its own mount (a daemon with its connection
 * open: a few ms a rotation, where a CLI run costs ~100 ms; the CLI of
 * another host is rotation_on_another_host_gives_modify_events'); an
 * unmodified inotifywait in a container watching a view of host B's
 * store gets each rotation, and its read right after each event returns
 * exactly the new value. */
START_TEST(container_watcher_gets_rotations_from_another_host)
{
	struct ctr c;
	char ma[600], v[64];
	pid_t da = -1;
	int i;

	mk("app-db", "v0");
	snprintf(ma, sizeof(ma), "%s/ma", h_base);
	ck_assert_int_eq(mkdir(ma, 0755), 0);
	ck_assert_int_eq(h_mount_at(ma, NULL, &da), 0); /* h_store: A's */
	ctr_start(&c, pg_host[1]);
	for (i = 1; i <= ROTATIONS; i++) {
		snprintf(v, sizeof(v), "host-a-%d", i);
		ck_assert_int_eq(put_s("../ma/secrets/app-db/default",
				       O_WRONLY | O_TRUNC, v),
				 0);
		ctr_expect(&c, i, v);
	}
	ctr_stop(&c);
	ck_assert_int_eq(h_umount_at(ma, &da), 0);
}
END_TEST

#define LONG_TIMEOUT 300 /* s: ROTATIONS rotations on a loaded machine */

/* A test case with a generous timeout; on two hosts of a throwaway
 * cluster (pg), with a container removed by the runner (container). */
static void add_case(Suite *s, const TTest *t, int pg, int container)
{
	TCase *tc = tcase_create(t->name);

	if (pg)
		tcase_add_unchecked_fixture(tc, pg_cluster_up, pg_cluster_down);
	if (container)
		tcase_add_unchecked_fixture(tc, ctr_name_set, ctr_remove);
	tcase_add_checked_fixture(tc, pg ? pg_hosts_setup : h_setup,
				  pg ? pg_hosts_teardown : h_teardown);
	tcase_set_timeout(tc, LONG_TIMEOUT);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

static Suite *notify_suite(void)
{
	const TTest *tests[] = {
	    own_operations_neither_versions_nor_audited,
	    kv_files_give_modify_events,
	    kv_file_grown_sendfile_after_event_reads_whole_value,
	    kv_file_grown_sendfile_after_event_reads_whole_value_cache_kernel,
	    ro_view_refuses_user_writes_with_erofs,
	    cache_open_delivers_events,
	    cache_kernel_delivers_events,
	    cache_kernel_ro_delivers_events,
	    deactivate_activate_give_events,
	    versions_and_secrets_give_create_delete,
	    only_view_events_only_for_its_secrets,
	    replace_mode_gives_moved_to,
	    flat_view_delivers_events,
	    none_mode_sends_nothing,
	    poll_reports_pollpri_after_change,
	    stuck_watcher_does_not_block_others,
	    rotation_while_app_holds_default_open,
	    rotation_while_app_holds_default_open_cache_open,
	    killed_daemon_exits_with_events_in_flight,
	    watch_prints_one_line_per_change,
	    watch_json_lines,
	    watch_exec_runs_once_per_change_in_order,
	};
	Suite *s = h_suite("notify", tests, sizeof(tests) / sizeof(tests[0]));
	int ctr = container_ready();

	add_case(s, cli_rotation_gives_modify_events, 0, 0);
	add_case(s, mount_rotation_reaches_ro_view, 0, 0);
	add_case(s, rotation_on_another_host_gives_modify_events, 1, 0);
	add_case(s, deactivate_activate_on_another_host_give_events, 1, 0);
	if (ctr) {
		add_case(s, container_watcher_gets_cli_rotations, 0, 1);
		add_case(s, container_watcher_gets_mount_rotations, 0, 1);
		add_case(s, container_watcher_gets_rotations_from_another_host,
			 1, 1);
	} else {
		printf("SKIP: test_notify container: needs root, podman, runc, "
		       "busybox-static and inotify-tools (amd64)\n");
	}
	return s;
}

const struct harness harness = {.suite = notify_suite, .fork = CK_FORK};
