/*
 * The FUSE daemon's operations table and its session-wide parts: the
 * daemon's state (fs_d, set here only), init, statfs, the cache=kernel
 * wrappers of write, flush and create, and the poller that drops the
 * kernel's caches when the store changes. The handlers are in files by
 * concern: fuse_dir.c (lookup, readdir), fuse_read.c (open, read,
 * release), fuse_attr.c (getattr, setattr, access), fuse_tree.c (mkdir,
 * rmdir, unlink), fuse_write.c (writes, staged files, rename),
 * fuse_xattr.c (extended attributes), fuse_status.c (.status),
 * fuse_inval.c (what a change invalidates), fuse_notify.c (inotify
 * events), fuse_own.c (the notifier's own requests), fuse_poll.c
 * (poll(2)), fuse_reply.c (every errno, the log).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fuse_int.h"
#include "secretfs/audit.h"

/* The daemon's state: defined and set here only (fs_daemon_init,
 * fs_daemon_session); the other files read it. */
struct fs_daemon fs_d;

void fs_daemon_init(struct sfs_ctx *ctx, const struct fs_opts *o)
{
	fs_d.ctx = ctx;
	fs_d.opts = *o;
	fs_d.owner_uid = (uint32_t)getuid();
	fs_d.started = sfs_time_now();
	sfs_caller_self(&fs_d.meta);
	/* Names and attributes are kept long: at each change the poller
	 * invalidates the changed nodes' attributes and pages (fuse_inval.c),
	 * and a deleted secret's cached name then answers stat with ENOENT
	 * (its GETATTR finds nothing; an open fails at the daemon, or in
	 * cache=kernel at the first read). Names are never invalidated (see
	 * fuse.c). 10 s bounds what a daemon that cannot see the generation
	 * would serve stale; cache=kernel, whose writers wait for the poller,
	 * keeps them a minute. */
	fs_d.entry_timeout = o->cache == FS_CACHE_KERNEL ? 60.0 : 10.0;
	fs_d.attr_timeout = fs_d.entry_timeout;
}

void fs_daemon_session(struct fuse_session *se)
{
	fs_d.se = se;
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* cache=kernel: value files are read-only (kernel_open); a write on an
 * fd opened without OPEN has no handle. */
static void fs_write_any(fuse_req_t req, fuse_ino_t ino, const char *buf,
			 size_t size, off_t off, struct fuse_file_info *fi)
{
	if (!fi->fh)
		fs_reply_err(req, FS_EROFS);
	else
		fs_write(req, ino, buf, size, off, fi);
}

/* cache=kernel: ENOSYS makes the kernel stop sending FLUSH (no_flush). */
static void fs_flush_any(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	if (!fi->fh)
		fs_reply_err(req, FS_ENOSYS);
	else
		fs_flush(req, ino, fi);
}

static void fs_create_any(fuse_req_t req, fuse_ino_t parent, const char *name,
			  mode_t mode, struct fuse_file_info *fi)
{
	if (fs_d.opts.cache == FS_CACHE_KERNEL)
		fs_reply_err(req, FS_EROFS);
	else
		fs_create(req, parent, name, mode, fi);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* cache=kernel: no OPEN carries O_TRUNC, so the kernel must send
	 * the truncation as SETATTR (answered EROFS); with atomic_o_trunc
	 * it would instead empty its cached copy on its own (libfuse wants
	 * the flag by default) */
	if ((conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) &&
	    fs_d.opts.cache != FS_CACHE_KERNEL)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	else
		conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (fs_d.opts.cache == FS_CACHE_STRICT)
		conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	if (fs_d.opts.cache == FS_CACHE_KERNEL) {
		if (conn->capable & FUSE_CAP_POSIX_ACL)
			conn->want |= FUSE_CAP_POSIX_ACL;
		else
			fs_log("cache=kernel: the kernel has no POSIX ACLs");
		if (!(conn->capable & FUSE_CAP_NO_OPEN_SUPPORT))
			fs_log("cache=kernel: the kernel sends every open");
	}
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_init,
    .lookup = fs_lookup,
    .forget = fs_forget,
    .forget_multi = fs_forget_multi,
    .getattr = fs_getattr,
    .access = fs_access,
    .setattr = fs_setattr,
    .mknod = fs_mknod,
    .symlink = fs_symlink,
    .link = fs_link,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .rename = fs_rename,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write_any,
    .flush = fs_flush_any,
    .release = fs_release,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .statfs = fs_statfs,
    .setxattr = fs_setxattr,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
    .removexattr = fs_removexattr,
    .create = fs_create_any,
};

/*
 * At a change the poller drops what the kernel caches: attributes and
 * pages (fuse_inval.c decides which nodes). Names are not invalidated:
 * fuse_lowlevel_notify_inval_entry() takes the parent directory's lock in
 * the kernel, which a writer's create or rename holds while it waits for
 * this daemon; if the daemon is killed then, the poller stays stuck in the
 * kernel and the dead daemon never releases the mount. A name whose
 * secret, version or kv/ key is gone stays in the kernel until its entry
 * timeout (mount.c), but its attributes are invalidated, so stat gets
 * ENOENT from GETATTR at once and an open fails at the daemon.
 */
void fs_secret_changed(const char *secret, int added)
{
	struct fs_node_ent *v;
	size_t i,
	    n = fs_node_snapshot_secret(secret, added ? FK_VERSION : 0, &v);

	/* Attributes and pages only: no directory lock is taken, so this
	 * is safe inside any handler. */
	for (i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_inode(fs_d.se, v[i].ino, 0, 0);
	free(v);
}

/*
 * The poller sleeps on the generation counter (a futex in the shared
 * mapping: writers wake it after their commit) and, at worst, wakes every
 * 50 ms. Every daemon registers as a watcher and acks each generation
 * once invalidated: another program's writer waits for that ack
 * (bounded, ctx_watch.c), so what the kernel caches (names, attributes,
 * cache=kernel's pages) shows the change when the writer returns. With
 * cache=strict and open the daemon's own writes invalidate what they
 * changed themselves and do not wait for its poller; with cache=kernel
 * they wait as any writer does. A generation is acked only after every
 * inode is invalidated.
 */
/* A shared store's listener going down or coming back, in the log: while
 * it is down nothing cached is trusted (every read asks the server). */
static void log_listener(int *was)
{
	int up = sfs_ctx_listener(fs_d.ctx);

	if (up < 0 || up == *was)
		return;
	if (*was >= 0 || !up)
		fs_log(up ? "store listener back"
			  : "store listener lost: nothing cached is served "
			    "until it is back");
	*was = up;
}

static void *poller(void *arg)
{
	uint64_t g, seen;
	int listening = -1;

	(void)arg;
	seen = __atomic_load_n(&fs_d.generation, __ATOMIC_ACQUIRE);
	while (!fs_d.stopping) {
		g = sfs_ctx_watch_wait(fs_d.ctx, seen, 50);
		log_listener(&listening);
		if (g != seen) {
			fs_inval_changed();
			/* Only now: opens compare against it (cached_open). */
			__atomic_store_n(&fs_d.generation, g, __ATOMIC_RELEASE);
			sfs_ctx_watch_ack(fs_d.ctx, g);
			fs_notify_kick(g);
			seen = g;
		}
	}
	return NULL;
}

int fs_poller_start(void)
{
	uint64_t g = sfs_ctx_generation(fs_d.ctx);

	__atomic_store_n(&fs_d.generation, g, __ATOMIC_RELEASE);
	if (sfs_ctx_watch_register(fs_d.ctx))
		fs_log("not registered as a watcher: another program's change "
		       "shows within 50 ms, not before it returns");
	else if (fs_d.opts.cache != FS_CACHE_KERNEL)
		sfs_ctx_watch_exempt_self(fs_d.ctx);
	if (pthread_create(&fs_d.poller, NULL, poller, NULL))
		return -1;
	fs_d.poller_started = 1;
	return 0;
}

void fs_poller_stop(void)
{
	fs_d.stopping = 1;
	if (fs_d.poller_started)
		pthread_join(fs_d.poller, NULL);
	fs_d.poller_started = 0;
}
