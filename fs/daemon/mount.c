/*
 * The daemon's command: `mount` (`umount` and `status`, which talk to a
 * running mount, are in cli_mount.c).
 *
 * mount parses its options, opens the store, refuses what SPEC §3 says
 * it must (a second read-write mount of a store, a store or master key
 * inside the mountpoint, a mountpoint that is not an empty directory or
 * is already mounted), all with a message on the terminal and exit 1
 * before anything is mounted. Then it mounts (source: the store
 * directory, type fuse.secretfs), daemonizes unless -f, hardens the process
 * (no core dumps, not dumpable, memory locked where the limit allows:
 * after the fork, since locks and threads do not survive it), starts its
 * threads and serves until unmounted or signalled (SIGTERM/SIGINT
 * unmount cleanly; SIGHUP reopens the audit log and never unmounts).
 *
 * A read-write mount holds flock(LOCK_EX) on DIR/lock for its whole life;
 * ro mounts take no lock, so any number may run beside it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"
#include "fuse_int.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/storedir.h"

/* A usage error of mount, pointing at its own help (the option words
 * come from the user: control bytes show as '?'). */
static int usage(const char *text)
{
	char buf[400];
	size_t i;

	snprintf(buf, sizeof(buf), "%s", text);
	for (i = 0; buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	fprintf(stderr, "secretfs: mount: %s (see 'secretfs mount --help')\n",
		buf);
	return EXIT_USAGE;
}

/* A known option with a value it does not take: say which are allowed. */
static int bad_value(const char *w, const char *allowed)
{
	char text[360];
	const char *eq = strchr(w, '=');
	int n = eq ? (int)(eq - w) : (int)strlen(w);

	snprintf(text, sizeof(text), "bad value '%.100s' for option '%.*s': %s",
		 eq ? eq + 1 : "", n > 40 ? 40 : n, w, allowed);
	return usage(text);
}

/* strerror, lowercase as our messages are ("no such file or directory"). */
static const char *errtext(int e)
{
	static __thread char buf[128];

	snprintf(buf, sizeof(buf), "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

static const char mount_help[] =
    "Usage: secretfs [--store DIR] mount MOUNTPOINT [-f] [-o OPT,...]\n"
    "\n"
    "Serve the store as files at MOUNTPOINT (an empty directory):\n"
    "secrets/NAME/{default,versions/N,kv/KEY}, keys/NAME, .status.\n"
    "\n"
    "  -f                 stay in the foreground\n"
    "  -o ro              read-only (any number beside one read-write)\n"
    "  -o allow_other     let other users (and containers) in\n"
    "  -o only=GLOB[:GLOB...]  expose only the matching secrets\n"
    "  -o cache=strict|open|kernel  strict (default): plaintext never\n"
    "                     stays in the page cache\n"
    "  -o audit=on|off    audit each value read (default on)\n"
    "  -o audit_max=SIZE  rotate the audit log at SIZE bytes (K, M, G\n"
    "                     suffixes; default 64M; 4 old logs kept)\n"
    "  -o notify=modify|replace|none  inotify events at a change\n"
    "                     (default modify: IN_MODIFY on default)\n"
    "  -o layout=flat     (with ro) the root lists one file per secret,\n"
    "                     its default value, as /run/secrets/NAME\n"
    "  -o uid=N,gid=N,mode=OCTAL  (with ro) value files show this owner,\n"
    "                     group and mode and reads follow them (secrets\n"
    "                     without access control)\n"
    "  -o debug           log every request (implies -f)\n"
    "  -o auto_unmount    unmount if the daemon dies\n";

/* -h / --help anywhere among a command's arguments: print, then exit 0. */
static int help(int argc, char **argv, const char *text)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(text, stdout);
			return 1;
		}
	return 0;
}

/* Generic options mount(8) passes along (fstab): the kernel's defaults
 * for a FUSE mount already cover them. */
static int generic_opt(const char *w)
{
	static const char *const words[] = {
	    "defaults", "nosuid", "nodev",	"noexec",
	    "exec",	"suid",	  "dev",	"noatime",
	    "relatime", "atime",  "nodiratime", "diratime",
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(w, words[i]))
			return 1;
	return 0;
}

/* audit_max=SIZE: bytes, or with a K, M or G suffix (powers of 1024);
 * at least 4K, so that a log holds more than a few lines. */
static int parse_audit_max(struct fs_opts *o, const char *v)
{
	unsigned long long n;
	char *end;
	int shift = 0;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (errno || end == v || *end || *v < '0' || *v > '9' ||
	    n > (1ULL << 50) || (n << shift) < 4096)
		return usage("audit_max wants a size of at least 4K (e.g. "
			     "audit_max=64M)");
	o->audit_max = (int64_t)(n << shift);
	return 0;
}

/* A decimal id (uid=, gid=) or an octal mode (mode=, at most 0777):
 * 0, or -1 when s is not one. */
static int parse_num(const char *s, int base, unsigned long max, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *end || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* layout=, uid=, gid=, mode=: 1 when w was one (*rc: 0 or EXIT_USAGE). */
static int parse_view_opt(struct fs_opts *o, const char *w, int *rc)
{
	char text[400];
	int bad = 0;

	*rc = 0;
	if (!strcmp(w, "layout=flat") || !strcmp(w, "layout=tree")) {
		o->flat = w[7] == 'f';
	} else if (!strncmp(w, "uid=", 4)) {
		bad = parse_num(w + 4, 10, UINT32_MAX - 1, &o->view.uid);
		o->view.set |= SFS_VIEW_UID;
	} else if (!strncmp(w, "gid=", 4)) {
		bad = parse_num(w + 4, 10, UINT32_MAX - 1, &o->view.gid);
		o->view.set |= SFS_VIEW_GID;
	} else if (!strncmp(w, "mode=", 5)) {
		bad = parse_num(w + 5, 8, 0777, &o->view.mode);
		o->view.set |= SFS_VIEW_MODE;
	} else {
		return 0;
	}
	if (bad) {
		snprintf(text, sizeof(text),
			 "bad value in '%.250s' (uid= and gid= take a "
			 "number, mode= an octal mode up to 0777)",
			 w);
		*rc = usage(text);
	}
	return 1;
}

/* The -o words that set one int field of fs_opts to one value. */
static const struct opt_word {
	const char *word;
	size_t field; /* offsetof(struct fs_opts, ...) */
	int value;
} opt_words[] = {
    {"ro", offsetof(struct fs_opts, readonly), 1},
    {"rw", offsetof(struct fs_opts, readonly), 0},
    {"allow_other", offsetof(struct fs_opts, allow_other), 1},
    {"debug", offsetof(struct fs_opts, debug), 1},
    {"auto_unmount", offsetof(struct fs_opts, auto_unmount), 1},
    {"cache=strict", offsetof(struct fs_opts, cache), FS_CACHE_STRICT},
    {"cache=open", offsetof(struct fs_opts, cache), FS_CACHE_OPEN},
    {"cache=kernel", offsetof(struct fs_opts, cache), FS_CACHE_KERNEL},
    {"notify=modify", offsetof(struct fs_opts, notify), FS_NOTIFY_MODIFY},
    {"notify=replace", offsetof(struct fs_opts, notify), FS_NOTIFY_REPLACE},
    {"notify=none", offsetof(struct fs_opts, notify), FS_NOTIFY_NONE},
    {"audit=on", offsetof(struct fs_opts, audit_off), 0},
    {"audit=off", offsetof(struct fs_opts, audit_off), 1},
};

/* The options that take a value, for one they do not know ("cache",
 * "cache=x"): the values they take. */
static const struct opt_family {
	const char *name;
	const char *hint;
} opt_families[] = {
    {"cache", "use strict, open or kernel"},
    {"audit", "use on or off"},
    {"only", "use one or more GLOBs joined by ':'"},
    {"layout", "use flat or tree"},
};

/* A word of opt_words (1, with the field set) or not (0). */
static int set_word(struct fs_opts *o, const char *w)
{
	size_t i;

	for (i = 0; i < sizeof(opt_words) / sizeof(opt_words[0]); i++)
		if (!strcmp(w, opt_words[i].word)) {
			*(int *)((char *)o + opt_words[i].field) =
			    opt_words[i].value;
			return 1;
		}
	return 0;
}

/* A word no option knows: a family's bad value, or unknown. EXIT_USAGE
 * after printing why. */
static int unknown_word(const char *w)
{
	char text[300];
	size_t i, n;

	for (i = 0; i < sizeof(opt_families) / sizeof(opt_families[0]); i++) {
		n = strlen(opt_families[i].name);
		if (!strncmp(w, opt_families[i].name, n) &&
		    (!w[n] || w[n] == '='))
			return bad_value(w, opt_families[i].hint);
	}
	snprintf(text, sizeof(text), "unknown option '%.250s'", w);
	return usage(text);
}

/* One -o word. 0, or EXIT_USAGE after printing why. */
static int parse_opt(struct fs_opts *o, const char *w)
{
	int rc;

	if (generic_opt(w) || set_word(o, w))
		return 0;
	if (!strncmp(w, "audit_max=", 10))
		return parse_audit_max(o, w + 10);
	if (parse_view_opt(o, w, &rc))
		return rc;
	if (strncmp(w, "only=", 5) || !w[5])
		return unknown_word(w);
	free(o->only);
	o->only = strdup(w + 5);
	return o->only ? 0 : EXIT_FAIL;
}

static int parse_opts(struct fs_opts *o, char *list)
{
	char *save = NULL, *w;
	int rc;

	for (w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save))
		if ((rc = parse_opt(o, w)))
			return rc;
	return 0;
}

static int parse_args(struct fs_opts *o, int argc, char **argv)
{
	char *copy;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f")) {
			o->foreground = 1;
		} else if (!strcmp(argv[i], "-o") ||
			   !strncmp(argv[i], "-o", 2)) {
			const char *list = argv[i][2] ? argv[i] + 2 : argv[++i];

			if (i >= argc || !list)
				return usage("-o needs options");
			copy = strdup(list);
			rc = copy ? parse_opts(o, copy) : EXIT_FAIL;
			free(copy);
			if (rc)
				return rc;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return usage(
			    cli_is_global_opt(argv[i])
				? "global options go before the command"
				: "unknown flag");
		} else if (!o->mountpoint) {
			o->mountpoint = argv[i];
		} else {
			return usage("too many arguments");
		}
	}
	if (!o->mountpoint)
		return usage("missing MOUNTPOINT");
	if ((o->flat || o->view.set) && !o->readonly)
		return usage("layout=flat, uid=, gid= and mode= need a "
			     "read-only mount (-o ro)");
	return 0;
}

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "secretfs: %s: %s\n", what, why);
	return EXIT_FAIL;
}

/* Is path (resolved) mp itself or below it? */
static int inside(const char *mp, const char *path)
{
	char real[PATH_MAX];
	size_t n = strlen(mp);

	if (!path || !realpath(path, real))
		return 0;
	return !strncmp(real, mp, n) &&
	       (real[n] == '/' || real[n] == '\0' || !strcmp(mp, "/"));
}

static int mounted(const char *path);

static int empty_dir(const char *mp)
{
	DIR *d = opendir(mp);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

/* Check the mountpoint against the store; EXIT_OK or EXIT_FAIL. */
static int check_mountpoint(struct sfs_ctx *ctx, const char *mp,
			    const char *real)
{
	struct stat st;
	char what[PATH_MAX + 16];

	snprintf(what, sizeof(what), "mount: %s", mp);
	if (stat(mp, &st))
		return fail(what, errtext(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(what, "not a directory");
	if (inside(real, sfs_ctx_dir(ctx)))
		return fail(what, "the store is inside the mountpoint");
	if (inside(real, sfs_ctx_master_key_path(ctx)))
		return fail(what, "the master key is inside the mountpoint");
	if (!empty_dir(mp))
		return fail(what, mounted(mp) ? "already mounted"
					      : "not an empty directory");
	return EXIT_OK;
}

/*
 * flock fd, waiting up to a second while another holder has it: a daemon
 * just unmounted (fusermount3 -u, `secretfs umount`) still holds the lock
 * for the moment it takes to exit. 0, or the errno of the last try.
 */
static int lock_wait(int fd)
{
	struct timespec tick = {0, 20 * 1000 * 1000};
	int i;

	for (i = 0; flock(fd, LOCK_EX | LOCK_NB); i++) {
		if (errno != EWOULDBLOCK || i == 50)
			return errno;
		nanosleep(&tick, NULL);
	}
	return 0;
}

/* flock DIR/lock for a read-write mount: the fd, or -1 (printed). The
 * lock file, as every file of the store, is never opened through a
 * symlink (storedir.h). */
static int lock_store(struct sfs_ctx *ctx)
{
	char what[PATH_MAX + 16];
	struct sfs_error err;
	int fd, e;

	snprintf(what, sizeof(what), "mount: store %s", sfs_ctx_dir(ctx));
	fd = sfs_storedir_open(sfs_ctx_dir(ctx), "lock", O_RDWR | O_CREAT, 0600,
			       &err);
	if (fd < 0) {
		fprintf(stderr, "secretfs: mount: %s\n", err.msg);
		return -1;
	}
	if ((e = lock_wait(fd))) {
		fail(what, e == EWOULDBLOCK
				   ? "already mounted read-write elsewhere"
				   : errtext(e));
		close(fd);
		return -1;
	}
	return fd;
}

/* After daemonizing: no core dumps, no ptrace, memory locked. */
static void harden(void)
{
	struct rlimit rl = {0, 0};
	int flags = MCL_CURRENT | MCL_FUTURE;

	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#ifdef MCL_ONFAULT
	flags |= MCL_ONFAULT; /* lock pages as used, not whole stacks */
#endif
	/* Under a finite RLIMIT_MEMLOCK, MCL_FUTURE would make later
	 * allocations fail once the limit is reached: lock only when the
	 * limit allows it (root, CAP_IPC_LOCK or an unlimited limit). The
	 * key material is in libsodium's locked memory either way. */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && geteuid() != 0) {
		fprintf(stderr, "secretfs: mount: memory not locked: "
				"RLIMIT_MEMLOCK is limited\n");
		return;
	}
	if (mlockall(flags))
		fprintf(stderr, "secretfs: mount: memory not locked: %s\n",
			errtext(errno));
}

/*
 * A database connection does not survive fork() (ctx.h): the process
 * that checked the store and the key closes its connection before
 * fuse_daemonize() forks, releasing its locks and leaving the child no
 * SQLite state, and the daemon opens its own. A child that inherited the
 * connection would hold none of the POSIX locks SQLite believes it
 * holds, and any other reader could delete the WAL under it. The
 * context keeps its key material: nothing is asked again.
 */
static int reopen_store(struct sfs_ctx *ctx)
{
	struct sfs_error err;

	if (sfs_ctx_reopen_store(ctx, &err) != SFS_OK) {
		fprintf(stderr,
			"secretfs: mount: cannot reopen the store: %s\n",
			err.msg);
		return -1;
	}
	return 0;
}

/*
 * The mount's source (fsname): the store directory, resolved, so that
 * mount(8) matches an fstab line to the live mount (`mount -a` twice
 * mounts once). Commas and backslashes are escaped for libfuse's option
 * parser.
 */
static void fsname_of(struct sfs_ctx *ctx, char *out, size_t cap)
{
	char real[PATH_MAX];
	const char *dir = sfs_ctx_dir(ctx), *p;
	size_t n = 0;

	if (realpath(dir, real))
		dir = real;
	for (p = dir; *p && n + 3 < cap; p++) {
		if (*p == ',' || *p == '\\')
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n] = '\0';
}

/* SIGHUP reopens the audit log (after logrotate moved it) and never
 * unmounts (libfuse's own handler, replaced here, would). */
static void on_hup(int sig)
{
	(void)sig;
	if (fs_d.ctx)
		sfs_ctx_audit_reopen(fs_d.ctx);
}

static int hup_reopens_log(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	return sigaction(SIGHUP, &sa, NULL);
}

static struct fuse_session *session_new(struct fs_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	char opts[64 + 3 * PATH_MAX], fsname[2 * PATH_MAX];

	fsname_of(fs_d.ctx, fsname, sizeof(fsname));
	/* cache=kernel: no open reaches the daemon, so the kernel checks
	 * permissions (modes and the ACLs fuse_xattr.c builds). ro is the
	 * daemon's (fuse_own.c): the notifier's events need a writable mount. */
	snprintf(opts, sizeof(opts), "fsname=%s,subtype=secretfs%s%s%s", fsname,
		 o->allow_other ? ",allow_other" : "",
		 o->auto_unmount ? ",auto_unmount" : "",
		 o->cache == FS_CACHE_KERNEL ? ",default_permissions" : "");
	if (fuse_opt_add_arg(&args, "secretfs") ||
	    fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, opts) ||
	    (o->debug && fuse_opt_add_arg(&args, "-d")))
		goto out;
	se = fuse_session_new(&args, fs_notify_ops(), sizeof(fs_ops), NULL);
out:
	fuse_opt_free_args(&args);
	return se;
}

static int serve(struct fuse_session *se)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int rc;

	if (!cfg)
		return -1;
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_idle_threads(cfg, 10);
	fuse_loop_cfg_set_max_threads(cfg, 16);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

/*
 * The daemon's memory follows what the kernel caches (one small node per
 * cached name) plus transient buffers as large as a listing. Memory is
 * locked, so freed pages cannot be handed back with madvise: few arenas
 * (each keeps its own freed memory; two measured no larger than one with
 * 100k names cached, and spare concurrent readers a shared lock), and a
 * fixed mmap threshold so that a big buffer (a listing of 100k names, the
 * poller's fingerprints) is its own mapping, unmapped when freed, instead
 * of glibc raising the threshold after the first such free and keeping
 * later ones in an arena (23-32 MiB after a listing of 100k, 39-41 MiB
 * after a change, before). The heap's top is trimmed past 1 MiB free.
 */
static void malloc_setup(void)
{
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

int fs_run(struct sfs_ctx *ctx, struct fs_opts *o, int lock_fd)
{
	struct fuse_session *se;
	int rc = EXIT_FAIL;

	(void)lock_fd; /* held open (and locked) until the process exits */
	fs_daemon_init(ctx, o);
	fs_node_init();
	se = session_new(o);
	if (!se)
		return fail("mount", "cannot start the fuse session");
	fs_daemon_session(se);
	if (fuse_session_mount(se, o->mountpoint)) {
		fuse_session_destroy(se);
		return fail("mount", "cannot mount (see above)");
	}
	if (fuse_set_signal_handlers(se) || hup_reopens_log())
		goto out;
	if (!o->foreground && !o->debug)
		sfs_ctx_close_store(ctx);
	if (fuse_daemonize(o->foreground || o->debug))
		goto out;
	if (!o->foreground && !o->debug && reopen_store(ctx))
		goto out;
	harden();
	malloc_setup();
	/* libfuse's worker threads: small stacks (memory is locked). */
	setenv("FUSE_THREAD_STACK", "262144", 0);
	if (fs_poller_start() || fs_notify_start())
		goto out;
	rc = serve(se) < 0 ? EXIT_FAIL : EXIT_OK;
out:
	fs_notify_stop();
	fs_poller_stop();
	fuse_remove_signal_handlers(se);
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	fs_notify_join();
	fs_staged_fini();
	fs_node_fini();
	return rc;
}

static int fusermount_u(const char *mp, const char *flag, char *msg,
			size_t cap);

/*
 * A daemon that died left its mount behind: every access gives ENOTCONN.
 * Detach it lazily so that a restart can mount on the same path (and
 * containers with the parent bind-mounted rslave see the new mount).
 * A live mount is left alone: it is refused as already mounted.
 */
static void clean_stale(const char *mp)
{
	struct stat st;
	char msg[256];

	if (stat(mp, &st) == 0 || errno != ENOTCONN)
		return;
	if (fusermount_u(mp, "-uz", msg, sizeof(msg)) != 0)
		fprintf(stderr, "secretfs: mount: cannot detach stale mount "
				"'%s': %s\n", mp, msg);
}

int cmd_mount(const struct cli_global *g, int argc, char **argv)
{
	struct fs_opts o;
	struct sfs_ctx_options co;
	struct cli_global gg = *g;
	struct sfs_ctx *ctx = NULL;
	char store[PATH_MAX], key[PATH_MAX], mp[PATH_MAX];
	int rc, lock_fd = -1;

	if (help(argc, argv, mount_help))
		return EXIT_OK;
	memset(&o, 0, sizeof(o));
	if ((rc = parse_args(&o, argc, argv)))
		goto out;
	/* The daemon runs in /: resolve relative paths now. */
	if (gg.store && realpath(gg.store, store))
		gg.store = store;
	if (gg.master_key && realpath(gg.master_key, key))
		gg.master_key = key;
	clean_stale(o.mountpoint);
	if (!realpath(o.mountpoint, mp)) {
		char what[PATH_MAX + 16];

		snprintf(what, sizeof(what), "mount: %s", o.mountpoint);
		rc = fail(what, errtext(errno));
		goto out;
	}
	memset(&co, 0, sizeof(co));
	co.readonly = o.readonly;
	co.audit_off = o.audit_off;
	co.audit_max = o.audit_max;
	co.has_owner = 1;
	co.owner_uid = (uint32_t)getuid();
	if ((rc = cli_open(&gg, &co, &ctx)))
		goto out;
	if ((rc = check_mountpoint(ctx, o.mountpoint, mp)))
		goto out;
	if (!o.readonly && (lock_fd = lock_store(ctx)) < 0) {
		rc = EXIT_FAIL;
		goto out;
	}
	o.mountpoint = mp;
	rc = fs_run(ctx, &o, lock_fd);
out:
	if (lock_fd >= 0)
		close(lock_fd);
	if (ctx)
		sfs_ctx_close(ctx);
	free(o.only);
	return rc;
}

/* Run fusermount3 -u; its complaint, if any, into msg. Exit status. */
static int fusermount_u(const char *mp, const char *flag, char *msg,
			size_t cap)
{
	int fds[2], status;
	ssize_t n;
	size_t len = 0;
	pid_t pid;

	if (pipe(fds))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execlp("fusermount3", "fusermount3", flag, "--", mp,
		       (char *)NULL);
		fprintf(stderr, "fusermount3: %s\n", errtext(errno));
		_exit(EXIT_FAIL);
	}
	close(fds[1]);
	while (len + 1 < cap &&
	       (n = read(fds[0], msg + len, cap - len - 1)) > 0)
		len += (size_t)n;
	close(fds[0]);
	msg[len] = '\0';
	while (len && msg[len - 1] == '\n')
		msg[--len] = '\0';
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Is path a mountpoint? A directory on the same device as its parent
 * is not; one that cannot be stat'ed (a dead daemon's mount: ENOTCONN)
 * may well be. (It stats path: a hung daemon hangs it, so `umount` and
 * `status` use /proc/self/mountinfo instead, see cli_mount.c.) */
__attribute__((unused)) static int mounted(const char *path)
{
	char parent[PATH_MAX];
	struct stat a, b;

	if (stat(path, &a))
		return errno != ENOENT && errno != ENOTDIR;
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(parent, &b))
		return 1;
	return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}
