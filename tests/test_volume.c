/*
 * The volume driver (`secretfs volume-driver`, SPEC §4): the Docker
 * plugin protocol spoken with curl on the driver's unix socket (each
 * bad request gets an error reply and the driver keeps serving; only
 * root is served; a socket passed as systemd does is used), the volume
 * table kept in the store directory across a restart, Mount counted
 * per container; then real podman containers
 * with runc using the driver through their own containers.conf: flat
 * /run/secrets/NAME with the volume's uid and mode, only= views,
 * read-only, rotation, disjoint views, unmount at the last container,
 * and running containers reading again after the driver and the views
 * were killed and the driver started again (rslave binds).
 *
 * Every test runs its own driver on a socket and mount directory under
 * its temporary directory. The teardown removes what the test made (by
 * name: containers, volumes) and ends only the driver it started and the
 * views that driver started (pids from the driver's volumes.json), then
 * detaches what is left mounted. Tests that need what the machine lacks
 * (root, curl, podman, runc, busybox-static) print a SKIP line and are
 * left out of the suite, so they are never counted as passed.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/harness.h"
#include "lib/proc.h"
#include "lib/testutil.h"

#define IMAGE	 "secretfs-busybox"
#define PODMAN	 "/usr/bin/podman"
#define CONSUMER 4321

static char *base;
static char store[512], vols[512], dlog[512], conf[512];
static char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char plugin[64], tag[32];
static pid_t driver = -1;
static char *suite_dir;	 /* every test's directory is under it */
static int have_podman;	 /* the container tests run */
static int chunked;	 /* post_as sends the body without a length */
static int activated;	 /* driver_start passes the socket as systemd does */
static char unused[600]; /* --socket when activated: never made */

static const char *bin(void)
{
	const char *b = getenv("SECRETFS_BIN");

	return b && *b ? b : "build/secretfs";
}

/* Run argv (NULL-terminated) with CONTAINERS_CONF set; stdout and
 * stderr into *out when out is set. Exit status. */
static int runv(char **out, const char *const *argv)
{
	const char *env[] = {conf[0] ? conf : NULL, NULL};
	char envbuf[600];
	struct tu_proc p;
	int st;

	memset(&p, 0, sizeof(p));
	snprintf(envbuf, sizeof(envbuf), "CONTAINERS_CONF=%s", conf);
	env[0] = envbuf;
	p.argv = argv;
	p.env = env;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	st = p.status;
	if (out) {
		size_t n = p.out_len + p.err_len;

		*out = malloc(n + 1);
		ck_assert_ptr_nonnull(*out);
		memcpy(*out, p.out, p.out_len);
		memcpy(*out + p.out_len, p.err, p.err_len);
		(*out)[n] = '\0';
	}
	tu_proc_release(&p);
	return st;
}

#define RUN(out, ...) runv(out, (const char *const[]){__VA_ARGS__, NULL})

static int cli(const char *first, ...)
{
	const char *argv[16];
	va_list ap;
	int n = 0;

	argv[n++] = bin();
	argv[n++] = "--store";
	argv[n++] = store;
	va_start(ap, first);
	for (argv[n] = first; argv[n] && n < 15; argv[n] = va_arg(ap, char *))
		n++;
	va_end(ap);
	argv[n] = NULL;
	return runv(NULL, argv);
}

/* --- the protocol, with curl ------------------------------------------ */

struct resp {
	int status; /* HTTP status, or 0 when curl failed (exit in curl) */
	int curl;
	char body[4096];
};

/* POST body to /path as uid (0: root). */
static void post_as(uid_t uid, const char *path, const void *body, size_t len,
		    struct resp *r)
{
	char url[256];
	const char *argv[] = {"/usr/bin/curl",
			      "-H",
			      chunked ? "Transfer-Encoding: chunked" : "X-A: 1",
			      "-H",
			      chunked ? "Expect:" : "X-B: 1",
			      "-s",
			      "-o",
			      "-",
			      "-w",
			      "\n%{http_code}",
			      "--unix-socket",
			      sock,
			      "-X",
			      "POST",
			      "--data-binary",
			      "@-",
			      "-H",
			      "Content-Type: application/json",
			      url,
			      NULL};
	struct tu_proc p;
	char *nl;

	snprintf(url, sizeof(url), "http://plugin%s", path);
	memset(&p, 0, sizeof(p));
	memset(r, 0, sizeof(*r));
	p.argv = argv;
	p.in = body;
	p.in_len = len;
	p.drop = uid != 0;
	p.uid = uid;
	p.gid = uid;
	ck_assert_int_eq(tu_proc_run(&p), 0);
	r->curl = p.status;
	nl = strrchr(p.out, '\n');
	if (nl) {
		r->status = atoi(nl + 1);
		*nl = '\0';
	}
	snprintf(r->body, sizeof(r->body), "%s", p.out);
	tu_proc_release(&p);
}

static struct resp *post(const char *path, const char *json)
{
	static struct resp r;

	post_as(0, path, json, strlen(json), &r);
	return &r;
}

#define assert_reply(r, code, text)                                            \
	do {                                                                   \
		const struct resp *r_ = (r);                                   \
		ck_assert_msg(r_->status == (code), "status %d (%s)",          \
			      r_->status, r_->body);                           \
		ck_assert_str_eq(r_->body, text);                              \
	} while (0)

/* The driver answers (the readiness check and "keeps serving"). */
static void assert_serving(void)
{
	assert_reply(post("/Plugin.Activate", ""), 200,
		     "{\"Implements\":[\"VolumeDriver\"],\"Err\":\"\"}");
}

/* --- the driver --------------------------------------------------------- */

/* A connection to the driver's socket, or -1. */
static int sock_connect(void)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sock, sizeof(sock));
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int connectable(void)
{
	int fd = sock_connect();

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* As systemd passes a socket: bound and listening on fd 3, with
 * LISTEN_FDS=1 and LISTEN_PID naming the driver (this child). */
static void activate_child(void)
{
	struct sockaddr_un sa;
	char pid[16];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sock, sizeof(sock));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(sock, 0600) || listen(fd, 16) || dup2(fd, 3) != 3)
		_exit(126);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_PID", pid, 1);
}

static void driver_start(void)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	char pidf[700], num[16];
	int i, st, fd;

	unlink(sock);
	fflush(NULL);
	driver = fork();
	ck_assert_int_ge(driver, 0);
	if (driver == 0) {
		/* its own group: Check kills the test's; it outlives a
		 * failed test so that the runner removes its volumes */
		setpgid(0, 0);
		fd = open(dlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		if (activated)
			activate_child();
		execl(bin(), bin(), "--store", store, "volume-driver",
		      "--socket", activated ? unused : sock, "--mount-dir",
		      vols, (char *)NULL);
		_exit(127);
	}
	snprintf(pidf, sizeof(pidf), "%s/driver.pid", base);
	snprintf(num, sizeof(num), "%d", (int)driver);
	tu_write_file(pidf, num, strlen(num), 0600);
	for (i = 0; i < 6000 && !connectable(); i++) { /* readiness */
		ck_assert_msg(waitpid(driver, &st, WNOHANG) == 0,
			      "the driver exited: %s",
			      tu_read_file(dlog, NULL));
		nanosleep(&tick, NULL);
	}
	ck_assert_msg(connectable(), "the driver does not answer");
}

/* Signal the driver and reap it; its exit status (0 when it was not
 * running). */
static int driver_stop(int sig)
{
	int st;

	if (driver <= 0)
		return 0;
	kill(driver, sig);
	waitpid(driver, &st, 0);
	driver = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The views' pids as the driver recorded them (volumes.json). */
static int view_pids(pid_t *out, int cap)
{
	char path[600], *s = NULL, *p;
	int n = 0;

	snprintf(path, sizeof(path), "%s/volumes.json", store);
	s = tu_read_file(path, NULL);
	for (p = s; p && n < cap && (p = strstr(p, "\"pid\": ")); p += 7)
		if (atoi(p + 7) > 0)
			out[n++] = atoi(p + 7);
	free(s);
	return n;
}

/* SIGKILL the views and wait until they are gone. */
static void kill_views(void)
{
	pid_t pids[16];
	char proc[64];
	int n = view_pids(pids, 16), i, t;

	for (i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (i = 0; i < n; i++) {
		snprintf(proc, sizeof(proc), "/proc/%d/stat", (int)pids[i]);
		for (t = 0; t < 3000; t++) {
			char *s = tu_read_file(proc, NULL);
			/* gone, or a zombie (its driver is dead too) */
			int gone = !s || strstr(s, ") Z ") != NULL;

			free(s);
			if (gone)
				break;
			usleep(10 * 1000);
		}
	}
}

/* Is path the root of a mount (a live or a dead view)? */
static int mounted(const char *path)
{
	struct statx sx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx))
		return errno == ENOTCONN;
	return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

static void detach_all(const char *dir)
{
	int i;

	for (i = 0; i < 64 && mounted(dir); i++)
		if (umount2(dir, MNT_DETACH))
			break;
}

/* All of a test's paths are under dir; its podman names start with the
 * tag kept in dir/tag. */
static void set_paths(const char *dir)
{
	char path[600], *t, *copy = strdup(dir);

	ck_assert_ptr_nonnull(copy);
	free(base);
	base = copy;
	snprintf(store, sizeof(store), "%s/store", base);
	ck_assert_int_lt(snprintf(sock, sizeof(sock), "%s/driver.sock", base),
			 (int)sizeof(sock));
	snprintf(vols, sizeof(vols), "%s/vols", base);
	snprintf(dlog, sizeof(dlog), "%s/driver.log", base);
	snprintf(conf, sizeof(conf), "%s/containers.conf", base);
	snprintf(path, sizeof(path), "%s/tag", base);
	t = tu_read_file(path, NULL);
	snprintf(tag, sizeof(tag), "%s", t ? t : "sfsv-none");
	snprintf(plugin, sizeof(plugin), "%s-drv", tag);
	free(t);
}

/* Each test in a directory of its own under the suite's. */
static void setup(void)
{
	char dir[600], path[700];

	snprintf(dir, sizeof(dir), "%s/t-XXXXXX", suite_dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(tag, sizeof(tag), "sfsv%d-%d", (int)getppid(), (int)getpid());
	snprintf(path, sizeof(path), "%s/tag", dir);
	tu_write_file(path, tag, strlen(tag), 0600);
	set_paths(dir);
	ck_assert_int_eq(cli("init", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "create", "app-db", "--value", "s3cret-db", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "create", "app-key", "--value", "k1", NULL), 0);
	ck_assert_int_eq(
	    cli("secret", "create", "other-db", "--value", "o1", NULL), 0);
	driver_start();
}

/* Remove this test's containers and volumes (TAG-c1, TAG-v1, ...), by
 * name: a listing fails as a whole while any other volume's driver is
 * missing. */
static void podman_rm(void)
{
	char c[2][96], v[2][96];
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(c[i], sizeof(c[i]), "%s-c%d", tag, i + 1);
		snprintf(v[i], sizeof(v[i]), "%s-v%d", tag, i + 1);
	}
	RUN(NULL, PODMAN, "rm", "-f", "-t", "0", c[0], c[1]);
	RUN(NULL, PODMAN, "volume", "rm", "-f", v[0], v[1]);
}

/* Detach every view left under dir (live, dead or half-started). */
static void detach_under(const char *dir)
{
	struct dirent *e;
	char path[1100];
	DIR *d = opendir(dir);

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			detach_all(path);
		}
	if (d)
		closedir(d);
	detach_all(dir);
}

/* Stop the driver a test started (its pid in dir/driver.pid; the test
 * process that started it may be gone): SIGTERM, wait until it is. */
static void driver_stop_recorded(void)
{
	char path[700], *s;
	long pid;
	int i;

	snprintf(path, sizeof(path), "%s/driver.pid", base);
	s = tu_read_file(path, NULL);
	pid = s ? atol(s) : 0;
	free(s);
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	s = tu_read_file(path, NULL);
	/* still ours: argv is secretfs --store STORE volume-driver */
	if (s && !strcmp(s + strlen(s) + 1, "--store") &&
	    !strcmp(s + strlen(s) + 9, store))
		kill((pid_t)pid, SIGTERM);
	free(s);
	for (i = 0; i < 3000 && access(path, F_OK) == 0; i++)
		usleep(10 * 1000);
}

/* Undo a test: its containers and volumes (through its driver), its
 * driver, the views it started, what is mounted, its directory. Runs as
 * the test's teardown and again, for any test whose teardown did not
 * run (Check's fork mode ends a failing test without it), in the
 * runner after each test case. */
static void cleanup_dir(const char *dir)
{
	char stage[600];

	set_paths(dir);
	if (have_podman)
		podman_rm();
	if (driver > 0)
		driver_stop(SIGTERM);
	driver_stop_recorded();
	kill_views();
	snprintf(stage, sizeof(stage), "%s.stage", vols);
	detach_under(vols);
	detach_under(stage);
	tu_rmrf(base);
	free(base);
	base = NULL;
}

/* The driver stops cleanly at SIGTERM, and neither it nor a view it
 * started reported anything a sanitizer finds (they share its log). */
static void teardown(void)
{
	int st;
	char *log;

	if (!base)
		return;
	st = driver_stop(SIGTERM);
	log = tu_read_file(dlog, NULL);
	cleanup_dir(base);
	ck_assert_msg(st == 0 && (!log || !strstr(log, "Sanitizer")),
		      "driver exit %d: %s", st, log ? log : "");
	free(log);
}

/* The runner's side: whatever a test left. */
static void leftovers(void)
{
	struct dirent *e;
	char dir[700];
	DIR *d = opendir(suite_dir);

	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "t-", 2)) {
			snprintf(dir, sizeof(dir), "%s/%s", suite_dir,
				 e->d_name);
			cleanup_dir(dir);
		}
	if (d)
		closedir(d);
}

/* --- protocol ----------------------------------------------------------- */

START_TEST(activate_and_capabilities)
{
	assert_serving();
	assert_reply(post("/VolumeDriver.Capabilities", ""), 200,
		     "{\"Capabilities\":{\"Scope\":\"local\"},\"Err\":\"\"}");
	assert_reply(post("/VolumeDriver.List", ""), 200,
		     "{\"Volumes\":[],\"Err\":\"\"}");
}
END_TEST

START_TEST(create_get_list_remove)
{
	assert_reply(post("/VolumeDriver.Create",
			  "{\"Name\":\"v1\",\"Opts\":{\"only\":\"app-*\","
			  "\"uid\":\"1000\",\"mode\":\"0400\"}}"),
		     200, "{\"Err\":\"\"}");
	assert_reply(post("/VolumeDriver.List", ""), 200,
		     "{\"Volumes\":[{\"Mountpoint\":\"\",\"Name\":\"v1\"}],"
		     "\"Err\":\"\"}");
	assert_reply(post("/VolumeDriver.Path", "{\"Name\":\"v1\"}"), 200,
		     "{\"Mountpoint\":\"\",\"Err\":\"\"}");
	struct resp *r = post("/VolumeDriver.Get", "{\"Name\":\"v1\"}");

	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(
	    strstr(r->body, "\"options\":{\"only\":\"app-*\",\"uid\":\"1000\","
			    "\"mode\":\"0400\",\"layout\":\"flat\"}"));
	assert_reply(post("/VolumeDriver.Create", "{\"Name\":\"v1\"}"), 400,
		     "{\"Err\":\"volume 'v1' already exists\"}");
	assert_reply(post("/VolumeDriver.Remove", "{\"Name\":\"v1\"}"), 200,
		     "{\"Err\":\"\"}");
	assert_reply(post("/VolumeDriver.Get", "{\"Name\":\"v1\"}"), 404,
		     "{\"Err\":\"no such volume 'v1'\"}");
}
END_TEST

START_TEST(bad_option_refused_at_create)
{
	assert_reply(post("/VolumeDriver.Create",
			  "{\"Name\":\"v1\",\"Opts\":{\"size\":\"1G\"}}"),
		     400,
		     "{\"Err\":\"volume 'v1': option 'size=1G': unknown option "
		     "(known: only, layout, uid, gid, mode, cache)\"}");
	assert_reply(post("/VolumeDriver.Create",
			  "{\"Name\":\"v1\",\"Opts\":{\"mode\":\"0999\"}}"),
		     400,
		     "{\"Err\":\"volume 'v1': option 'mode=0999': mode= takes "
		     "an octal mode up to 0777\"}");
	assert_reply(post("/VolumeDriver.Create",
			  "{\"Name\":\"v1\",\"Opts\":{\"only\":\"a,rw\"}}"),
		     400,
		     "{\"Err\":\"volume 'v1': option 'only=a,rw': only= takes "
		     "GLOB[:GLOB...] without commas\"}");
	assert_reply(post("/VolumeDriver.Create",
			  "{\"Name\":\"v1\",\"Opts\":{\"uid\":1000}}"),
		     400,
		     "{\"Err\":\"volume 'v1': option 'uid': the value must be "
		     "a string\"}");
	assert_reply(post("/VolumeDriver.Create", "{\"Name\":\"../x\"}"), 400,
		     "{\"Err\":\"volume name '../x': invalid name: use 1-128 "
		     "bytes of A-Z a-z 0-9 . _ -, starting with a letter or "
		     "digit\"}");
	assert_reply(post("/VolumeDriver.List", ""), 200,
		     "{\"Volumes\":[],\"Err\":\"\"}");
}
END_TEST

START_TEST(malformed_json_gets_error)
{
	assert_reply(post("/VolumeDriver.Create", "{\"Name\":"), 400,
		     "{\"Err\":\"malformed request: the body must be a JSON "
		     "object\"}");
	assert_reply(post("/VolumeDriver.Mount", "[\"v1\"]"), 400,
		     "{\"Err\":\"malformed request: the body must be a JSON "
		     "object\"}");
	assert_reply(post("/VolumeDriver.Mount", "{}"), 400,
		     "{\"Err\":\"a volume Name is needed\"}");
	assert_reply(
	    post("/VolumeDriver.Frobnicate", "{}"), 404,
	    "{\"Err\":\"unknown request '/VolumeDriver.Frobnicate'\"}");
	assert_serving();
}
END_TEST

START_TEST(unknown_volume_gets_error)
{
	assert_reply(
	    post("/VolumeDriver.Mount", "{\"Name\":\"ghost\",\"ID\":\"c1\"}"),
	    404, "{\"Err\":\"no such volume 'ghost'\"}");
	assert_reply(post("/VolumeDriver.Remove", "{\"Name\":\"ghost\"}"), 404,
		     "{\"Err\":\"no such volume 'ghost'\"}");
	assert_serving();
}
END_TEST

START_TEST(request_over_1mib_refused)
{
	size_t n = 1536 * 1024;
	char *big = malloc(n);
	struct resp r;

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	post_as(0, "/VolumeDriver.Create", big, n, &r);
	free(big);
	ck_assert_int_eq(r.status, 413);
	ck_assert_str_eq(r.body,
			 "{\"Err\":\"request too large (over 1 MiB)\"}");
	assert_serving();
}
END_TEST

START_TEST(silent_client_does_not_block)
{
	int fd = sock_connect();

	ck_assert_int_ge(fd, 0);
	/* connected, sending nothing: others are served meanwhile */
	assert_serving();
	ck_assert_int_eq(write(fd, "POST /Plugin.Act", 16), 16);
	assert_serving();
	close(fd);
	assert_serving();
}
END_TEST

START_TEST(socket_activation_serves)
{
	struct stat st;

	driver_stop(SIGTERM);
	snprintf(unused, sizeof(unused), "%s/unused.sock", base);
	activated = 1;
	driver_start();
	activated = 0;
	assert_serving();
	assert_reply(post("/VolumeDriver.List", ""), 200,
		     "{\"Volumes\":[],\"Err\":\"\"}");
	ck_assert_int_eq(stat(unused, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(socket_root_only)
{
	struct stat st;
	struct resp r;

	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_uid, 0);
	post_as(CONSUMER, "/Plugin.Activate", "", 0, &r);
	ck_assert_int_eq(r.curl, 7); /* curl: could not connect */
	/* opened to all (a socket handed over with another mode): the
	 * driver still serves root only (SO_PEERCRED) */
	ck_assert_int_eq(chmod(sock, 0666), 0);
	post_as(CONSUMER, "/VolumeDriver.List", "", 0, &r);
	ck_assert_int_eq(r.status, 403);
	ck_assert_str_eq(r.body, "{\"Err\":\"permission denied: the volume "
				 "driver serves root only\"}");
	assert_serving();
}
END_TEST

static void read_at(const char *dir, const char *name, const char *want)
{
	char path[700], *got;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	got = tu_read_file(path, NULL);
	ck_assert_msg(got != NULL, "%s: %s", path, strerror(errno));
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(mount_counted_per_container)
{
	char mp[600], want[700], path[700];
	struct stat st;

	snprintf(mp, sizeof(mp), "%s/v1", vols);
	snprintf(want, sizeof(want), "{\"Mountpoint\":\"%s\",\"Err\":\"\"}",
		 mp);
	assert_reply(post("/VolumeDriver.Create",
			  "{\"Name\":\"v1\",\"Opts\":{\"only\":\"app-*\"}}"),
		     200, "{\"Err\":\"\"}");
	assert_reply(
	    post("/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"c1\"}"), 200,
	    want);
	read_at(mp, "app-db", "s3cret-db");
	assert_reply(
	    post("/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"c2\"}"), 200,
	    want);
	assert_reply(
	    post("/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"c1\"}"), 200,
	    want); /* c1 again: still one count */
	assert_reply(post("/VolumeDriver.Path", "{\"Name\":\"v1\"}"), 200,
		     want);
	assert_reply(post("/VolumeDriver.Remove", "{\"Name\":\"v1\"}"), 409,
		     "{\"Err\":\"volume 'v1' is in use by 2 containers\"}");
	assert_reply(
	    post("/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"c1\"}"),
	    200, "{\"Err\":\"\"}");
	read_at(mp, "app-db", "s3cret-db");
	assert_reply(
	    post("/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"c1\"}"),
	    400,
	    "{\"Err\":\"volume 'v1' is not mounted for that "
	    "container\"}");
	assert_reply(
	    post("/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"c2\"}"),
	    200, "{\"Err\":\"\"}");
	ck_assert_int_eq(mounted(mp), 0);
	snprintf(path, sizeof(path), "%s/app-db", mp);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	assert_reply(post("/VolumeDriver.Remove", "{\"Name\":\"v1\"}"), 200,
		     "{\"Err\":\"\"}");
}
END_TEST

START_TEST(volumes_survive_driver_restart)
{
	char path[600];
	struct stat st;
	struct resp *r;

	assert_reply(post("/VolumeDriver.Create",
			  "{\"Name\":\"v1\",\"Opts\":{\"layout\":\"tree\","
			  "\"cache\":\"open\"}}"),
		     200, "{\"Err\":\"\"}");
	snprintf(path, sizeof(path), "%s/volumes.json", store);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	driver_stop(SIGKILL);
	driver_start();
	r = post("/VolumeDriver.Get", "{\"Name\":\"v1\"}");
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(
	    r->body, "\"options\":{\"layout\":\"tree\",\"cache\":\"open\"}"));
}
END_TEST

START_TEST(state_file_symlink_refused)
{
	char path[600], target[600], *log;

	driver_stop(SIGTERM);
	snprintf(path, sizeof(path), "%s/volumes.json", store);
	unlink(path);
	/* a link to a file of ours: a chmod through it must never reach a
	 * system file, whatever the code under test does */
	snprintf(target, sizeof(target), "%s/elsewhere.json", store);
	tu_write_file(target, "{}", 2, 0600);
	ck_assert_int_eq(symlink(target, path), 0);
	log = NULL;
	ck_assert_int_eq(RUN(&log, bin(), "--store", store, "volume-driver",
			     "--socket", sock, "--mount-dir", vols),
			 1);
	ck_assert_msg(strstr(log, "volumes.json"), "%s", log);
	free(log);
}
END_TEST

/* --- real containers ---------------------------------------------------- */

static const char *srcdir(void)
{
	const char *s = getenv("SECRETFS_SRCDIR");

	return s && *s ? s : ".";
}

/* This test's containers.conf names the driver; the image exists. */
static void containers_setup(void)
{
	char text[800], script[600], *out = NULL;
	int rc;

	snprintf(text, sizeof(text), "[engine.volume_plugins]\n%s = \"%s\"\n",
		 plugin, sock);
	tu_write_file(conf, text, strlen(text), 0644);
	snprintf(script, sizeof(script), "%s/scripts/container-image",
		 srcdir());
	rc = RUN(&out, script, IMAGE);
	ck_assert_msg(rc == 0, "scripts/container-image: %s", out);
	free(out);
}

/* podman volume create --driver PLUGIN -o ... TAG-name */
static void volume_create(const char *name, const char *o1, const char *o2,
			  const char *o3)
{
	char full[128], *out = NULL;
	int rc;

	snprintf(full, sizeof(full), "%s-%s", tag, name);
	rc = RUN(&out, PODMAN, "volume", "create", "--driver", plugin, "-o", o1,
		 "-o", o2, "-o", o3, full);
	ck_assert_msg(rc == 0, "podman volume create: %s", out);
	free(out);
}

/* podman run -d TAG-ctr with TAG-vol on /run/secrets (ro, rslave). */
static void container_run(const char *ctr, const char *vol, const char *user)
{
	char name[128], v[256], *out = NULL;
	int rc;

	snprintf(name, sizeof(name), "%s-%s", tag, ctr);
	snprintf(v, sizeof(v), "%s-%s:/run/secrets:ro,rslave", tag, vol);
	rc = RUN(&out, PODMAN, "run", "-d", "--name", name, "--runtime", "runc",
		 "--network", "none", "--ulimit", "nofile=1024:1024",
		 "--ulimit", "nproc=1024:1024", "--user", user, "-v", v, IMAGE,
		 "sleep", "3600");
	ck_assert_msg(rc == 0, "podman run: %s", out);
	free(out);
}

/* podman exec TAG-ctr sh -c SH; output (stdout and stderr) in *out. */
static int in_ctr(const char *ctr, const char *sh, char **out)
{
	char name[128];

	snprintf(name, sizeof(name), "%s-%s", tag, ctr);
	return RUN(out, PODMAN, "exec", name, "sh", "-c", sh);
}

#define assert_in_ctr(ctr, sh, want)                                           \
	do {                                                                   \
		char *o_ = NULL;                                               \
		int rc_ = in_ctr(ctr, sh, &o_);                                \
		ck_assert_msg(rc_ == 0, "%s: %s: exit %d: %s", ctr, sh, rc_,   \
			      o_);                                             \
		ck_assert_str_eq(o_, want);                                    \
		free(o_);                                                      \
	} while (0)

static void container_rm(const char *ctr)
{
	char name[128];

	snprintf(name, sizeof(name), "%s-%s", tag, ctr);
	ck_assert_int_eq(RUN(NULL, PODMAN, "rm", "-f", "-t", "0", name), 0);
}

static int vol_mounted(const char *vol)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/%s-%s", vols, tag, vol);
	return mounted(path);
}

START_TEST(container_reads_its_secrets)
{
	char *out = NULL;

	containers_setup();
	volume_create("v1", "only=app-*", "uid=1000", "mode=0400");
	volume_create("v2", "only=other-*", "uid=2000", "mode=0440");
	container_run("c1", "v1", "1000:1000");
	container_run("c2", "v2", "2000:2000");
	/* flat, with the volume's uid and mode; only= decides the names */
	assert_in_ctr("c1", "cat /run/secrets/app-db", "s3cret-db");
	assert_in_ctr("c1", "stat -c '%u %a' /run/secrets/app-db",
		      "1000 400\n");
	assert_in_ctr("c1", "ls /run/secrets", "app-db\napp-key\n");
	assert_in_ctr("c2", "ls /run/secrets", "other-db\n");
	assert_in_ctr("c2", "stat -c '%u %a' /run/secrets/other-db",
		      "2000 440\n");
	/* read-only; uid 1000 may not read v2's file it never sees */
	ck_assert_int_ne(in_ctr("c1", "echo x > /run/secrets/app-db", &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "Read-only file system"));
	free(out);
	/* a rotation on the host: the next open reads it */
	ck_assert_int_eq(
	    cli("version", "add", "app-db", "--value", "rotated", NULL), 0);
	assert_in_ctr("c1", "cat /run/secrets/app-db", "rotated");
	/* one container gone: the other's view stays; the last unmounts */
	container_rm("c1");
	ck_assert_int_eq(vol_mounted("v1"), 0);
	ck_assert_int_eq(vol_mounted("v2"), 1);
	assert_in_ctr("c2", "cat /run/secrets/other-db", "o1");
	container_rm("c2");
	ck_assert_int_eq(vol_mounted("v2"), 0);
}
END_TEST

START_TEST(containers_read_again_after_driver_restart)
{
	char *out = NULL, name[128], want[256];

	containers_setup();
	volume_create("v1", "only=app-*", "uid=1000", "mode=0400");
	container_run("c1", "v1", "1000:1000");
	container_run("c2", "v1", "1000:1000");
	assert_in_ctr("c1", "cat /run/secrets/app-db", "s3cret-db");
	driver_stop(SIGKILL);
	kill_views();
	/* the view is dead: the container cannot read */
	ck_assert_int_ne(in_ctr("c1", "cat /run/secrets/app-db", &out), 0);
	free(out);
	driver_start();
	assert_in_ctr("c1", "cat /run/secrets/app-db", "s3cret-db");
	assert_in_ctr("c2", "ls /run/secrets", "app-db\napp-key\n");
	/* podman still knows the volume, its driver and options (asked
	 * by name: a listing fails while any other volume's driver is
	 * missing) */
	snprintf(name, sizeof(name), "%s-v1", tag);
	ck_assert_int_eq(RUN(&out, PODMAN, "volume", "inspect", "--format",
			     "{{.Name}} {{.Driver}} {{.Options}}", name),
			 0);
	snprintf(want, sizeof(want),
		 "%s %s map[mode:0400 only:app-* uid:1000]\n", name, plugin);
	ck_assert_str_eq(out, want);
	free(out);
	container_rm("c1");
	container_rm("c2");
	ck_assert_int_eq(vol_mounted("v1"), 0);
}
END_TEST

/* --- suite -------------------------------------------------------------- */

static int have(const char *prog)
{
	char path[256];
	const char *dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin"};
	size_t i;

	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], prog);
		if (access(path, X_OK) == 0)
			return 1;
	}
	return 0;
}

static const char *missing_for_containers(void)
{
	if (!have("podman"))
		return "podman";
	if (!have("runc"))
		return "runc";
	if (access("/bin/busybox", X_OK))
		return "busybox-static";
	return NULL;
}

static void no_op(void)
{
}

static TCase *tcase(Suite *s, const char *name, int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_unchecked_fixture(tc, no_op, leftovers);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

/* Needs root, /dev/fuse and curl; suite_dir holds every test's files. */
static void volume_setup(void)
{
	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) ||
	    !have("curl")) {
		printf("SKIP: test_volume: needs root, /dev/fuse and curl\n");
		exit(0);
	}
	suite_dir = tu_tmpdir("volume");
	if (chmod(suite_dir, 0755))
		exit(1);
}

static Suite *volume_suite(void)
{
	Suite *s = suite_create("volume");
	const char *missing;
	TCase *tc;

	tc = tcase(s, "protocol", 60);
	tcase_add_test(tc, activate_and_capabilities);
	tcase_add_test(tc, create_get_list_remove);
	tcase_add_test(tc, bad_option_refused_at_create);
	tcase_add_test(tc, malformed_json_gets_error);
	tcase_add_test(tc, unknown_volume_gets_error);
	tcase_add_test(tc, request_over_1mib_refused);
	tcase_add_test(tc, silent_client_does_not_block);
	tcase_add_test(tc, socket_root_only);
	tcase_add_test(tc, socket_activation_serves);
	tcase_add_test(tc, mount_counted_per_container);
	tcase_add_test(tc, volumes_survive_driver_restart);
	tcase_add_test(tc, state_file_symlink_refused);
	missing = missing_for_containers();
	if (missing) {
		printf("SKIP: test_volume containers: %s is missing "
		       "(apt-get install podman runc busybox-static)\n",
		       missing);
	} else {
		have_podman = 1;
		tc = tcase(s, "containers", 120);
		tcase_add_test(tc, container_reads_its_secrets);
		tcase_add_test(tc, containers_read_again_after_driver_restart);
	}
	return s;
}

static void volume_cleanup(void)
{
	leftovers();
	tu_rmrf(suite_dir);
	free(suite_dir);
}

const struct harness harness = {.suite = volume_suite,
				.setup = volume_setup,
				.cleanup = volume_cleanup};
