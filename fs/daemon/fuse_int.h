/*
 * Internals of the FUSE daemon (fuse*.c, mount.c): the inode table, the
 * per-request caller, file handles, staged files and the mount's options.
 *
 * The daemon is thin: each handler maps one request onto one core call
 * and the core's error onto an errno with sfs_err_errno(). It decides no
 * rule and no permission itself; it only knows the shape of the tree.
 *
 * Threads: handlers run on libfuse's worker threads. The inode table and
 * the staged files each have one mutex; a handler copies what it needs
 * out of a node (struct fs_node_info) so that a concurrent FORGET can
 * never free memory it is using.
 */
#ifndef SECRETFS_FUSE_INT_H
#define SECRETFS_FUSE_INT_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "secretfs/ctx.h"
#include "secretfs/err.h"
#include "secretfs/principal.h"
#include "secretfs/store.h"

struct sfs_value;

/* What a node is; the fixed nodes have fixed inode numbers. */
enum fs_kind {
	FK_ROOT = 1, /* ino 1 */
	FK_SECRETS,  /* ino 2: secrets/ */
	FK_KEYS,     /* ino 3: keys/ */
	FK_STATUS,   /* ino 4: .status */
	FK_SECRET,   /* secrets/NAME */
	FK_DEFAULT,  /* secrets/NAME/default */
	FK_VERSIONS, /* secrets/NAME/versions */
	FK_VERSION,  /* secrets/NAME/versions/N */
	FK_KVDIR,    /* secrets/NAME/kv */
	FK_KV,	     /* secrets/NAME/kv/KEY */
	FK_STAGED,   /* secrets/NAME/X: any name but default, versions and
		      * kv (version = the owner's uid) */
	FK_KEY,	     /* keys/NAME */
};

#define FS_INO_ROOT	     1
#define FS_INO_SECRETS	     2
#define FS_INO_KEYS	     3
#define FS_INO_STATUS	     4
#define FS_INO_FIRST_DYNAMIC 16

/* A copy of a node's identity, safe to use after the table lock. */
struct fs_node_info {
	uint64_t ino;
	uint64_t parent;
	int kind;
	uint32_t version; /* FK_VERSION: N; FK_STAGED: owner uid */
	int writers;	  /* open write handles (pending files) */
	char secret[SFS_NAME_MAX + 1];
	char name[256]; /* the entry's name in its parent */
};

enum fs_cache { FS_CACHE_STRICT, FS_CACHE_OPEN, FS_CACHE_KERNEL };
enum fs_notify { FS_NOTIFY_MODIFY, FS_NOTIFY_REPLACE, FS_NOTIFY_NONE };

/* The mount's options (mount.c fills them, the handlers read them). */
struct fs_opts {
	int readonly;
	int allow_other;
	int audit_off;
	int debug;
	int auto_unmount;
	int foreground;
	int cache;  /* enum fs_cache */
	int notify; /* enum fs_notify */
	char *only; /* "GLOB:GLOB..." or NULL */
	int flat;   /* layout=flat: the root lists the secrets' values */
	struct sfs_view_id view; /* uid=, gid=, mode= (ro only) */
	const char *mountpoint;
	char *optstring; /* as given, for .status */
	int64_t audit_max; /* -o audit_max=SIZE; 0: the default */
};

/* The daemon's state: one per process. */
struct fs_daemon {
	struct sfs_ctx *ctx;
	struct fuse_session *se;
	struct fs_opts opts;
	struct sfs_caller meta; /* the daemon itself: metadata for stat */
	uint32_t owner_uid;
	int64_t started; /* ns since the epoch: times of fixed nodes */
	double entry_timeout, attr_timeout;
	pthread_t poller;
	int poller_started;
	volatile int stopping;
	uint64_t generation; /* caches dropped up to it (atomic) */
};

/* Defined and set in fuse.c only; read everywhere. */
extern struct fs_daemon fs_d;
/* Set the state for a mount of ctx with options o (before the session). */
void fs_daemon_init(struct sfs_ctx *ctx, const struct fs_opts *o);
/* The session the daemon serves (for notifications). */
void fs_daemon_session(struct fuse_session *se);

/* --- fuse_node.c: the inode table ------------------------------------- */
void fs_node_init(void);
void fs_node_fini(void);
/* Find or create the node, add one lookup; returns its ino (0: ENOMEM). */
uint64_t fs_node_ref(uint64_t parent, int kind, const char *secret,
		     uint32_t version, const char *name);
/* Copy out a node; 0 or ENOENT when the ino is unknown. */
int fs_node_get(uint64_t ino, struct fs_node_info *out);
void fs_node_forget(uint64_t ino, uint64_t n);
/* Count a write handle on a node (+1 / -1). */
void fs_node_writers(uint64_t ino, int delta);
/* Re-key a node (a staged file renamed onto default). */
void fs_node_retarget(uint64_t ino, int kind, uint32_t version,
		      const char *name);
/* The ino of a node, without adding a lookup; 0 when none. */
uint64_t fs_node_find(int kind, const char *secret, uint32_t version,
		      const char *name);
/* The dynamic nodes of one secret (ino, parent, kind, name), but those
 * of kind skip_kind (0: none skipped), for invalidation. *out malloc'd;
 * the caller frees it. */
struct fs_node_ent {
	uint64_t ino, parent;
	int kind;
	char name[256];
};
size_t fs_node_snapshot_secret(const char *secret, int skip_kind,
			       struct fs_node_ent **out);
/* How many dynamic nodes there are. */
size_t fs_node_count(void);
/* The poller's fingerprint of a secret (by fs_name_hash) as the store
 * has it now: never 0; 0 when the secret is gone. */
typedef uint64_t (*fs_fp_now_fn)(void *arg, uint64_t secret_hash);
/* Each node keeps the fingerprint of its secret from the last update.
 * Returns in *out (malloc'd; the caller frees it) the inos whose
 * secret's fingerprint moved, is gone or was unknown, and remembers
 * now's. all (or now NULL): every node, and forget the fingerprints. */
size_t fs_node_fp_update(fs_fp_now_fn now, void *arg, int all, uint64_t **out);

/* --- fuse_inval.c: what the poller invalidates at a change -------------- */
/* A name's 64-bit hash, never 0. */
uint64_t fs_name_hash(const char *name);
/* The store changed: drop the kernel's attributes and pages of the fixed
 * nodes and of every secret whose record changed (or of every node). */
void fs_inval_changed(void);

/* --- fuse.c: the operations table, init, the poller ------------------ */
extern const struct fuse_lowlevel_ops fs_ops;
/* A change through this mount touched secret: drop the kernel's cached
 * attributes and pages of its nodes now (the poller would, later).
 * added: the change only added a version, which changes no versions/N
 * file: those are left to the poller (their ctime). */
void fs_secret_changed(const char *secret, int added);
/* Start/stop the generation poller (invalidates the kernel's caches). */
int fs_poller_start(void);
void fs_poller_stop(void);

/* --- fuse_caller.c: who asks ------------------------------------------- */
enum {
	FS_CALLER_GROUPS = 1,
	FS_CALLER_COMM = 2,
	FS_CALLER_ROLES = 4,
	FS_CALLER_FULL = 7
};
/* Build the request's caller; 0 or an errno. Its groups are read on
 * first need and valid during the request only. */
int fs_caller(fuse_req_t req, int need, struct sfs_caller *c);
/* Copy a request's caller for later (a write handle) with the groups its
 * checks read (others: unreadable, refused where they count). 0 or an
 * errno; fs_caller_drop frees what the copy holds. */
int fs_caller_keep(struct sfs_caller *dst, const struct sfs_caller *src);
void fs_caller_drop(struct sfs_caller *c);
/* The thread group (process) of a thread id; -1 if gone. */
int32_t fs_caller_tgid(int32_t pid);

/* --- fuse_reply.c: errors and the log ---------------------------------- */
/*
 * The errnos the daemon answers on its own, named once: those the core
 * has a code for come from its table (sfs_err_errno), the others are
 * the kernel interface's own.
 */
#define FS_ENOENT	sfs_err_errno(SFS_ENOENT)
#define FS_ENODATA	sfs_err_errno(SFS_ENODATA)
#define FS_EACCES	sfs_err_errno(SFS_EACCES)
#define FS_EKEYREVOKED	sfs_err_errno(SFS_EKEYREVOKED)
#define FS_EEXIST	sfs_err_errno(SFS_EEXIST)
#define FS_EINVAL	sfs_err_errno(SFS_EINVAL)
#define FS_ENAMETOOLONG sfs_err_errno(SFS_ENAMETOOLONG)
#define FS_EFBIG	sfs_err_errno(SFS_EFBIG)
#define FS_ENOTEMPTY	sfs_err_errno(SFS_ENOTEMPTY)
#define FS_EPERM	sfs_err_errno(SFS_EPERM) /* no meaning here */
#define FS_EROFS	sfs_err_errno(SFS_EROFS)
#define FS_EIO		sfs_err_errno(SFS_EIO)
#define FS_ENOMEM	sfs_err_errno(SFS_ENOMEM)
#define FS_ENOSYS	ENOSYS	/* not handled: the kernel stops asking */
#define FS_EMFILE	EMFILE	/* a uid holds too many read handles */
#define FS_ENOTDIR	ENOTDIR /* a name under a file */
#define FS_ERANGE	ERANGE	/* an xattr buffer too small */
#define FS_EBADF	EBADF	/* a handle not open for that */
/* Reply errno e (0: success with no data): the one caller of
 * fuse_reply_err. */
void fs_reply_err(fuse_req_t req, int e);
/* Reply with the errno of a core code (fs_errno). */
void fs_reply_core(fuse_req_t req, int code);
/* The errno of a core code: sfs_err_errno. */
int fs_errno(int code);
/* Every core call's answer passes here with its error: a store failure
 * (rc EIO or ENOSPC) is logged with the core's message and kept as the
 * daemon's last failure. Returns rc. */
int fs_noted(int rc, const struct sfs_error *err);
/* The daemon's last store failure into out: 1, or 0 (out "") if none. */
int fs_last_failure(char *out, size_t cap);
/* Log a line: stderr in the foreground, syslog once daemonized. No
 * secret bytes: core messages never carry any. */
void fs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A refusal and the rule behind it (why: the core's message, or NULL for
 * the code's text), logged with -f or -o debug only: "rmdir secrets/db
 * refused (EBUSY) for uid 1000: secret 'db': the secret is active:
 * deactivate it first". Names and numbers only, never a value. */
void fs_refused(uint32_t uid, const char *op, const char *secret,
		const char *name, int code, const char *why);
/* The same with the core's struct sfs_error. */
void fs_refused_err(uint32_t uid, const char *op, const char *secret,
		    const char *name, const struct sfs_error *err);

/* --- fuse_attr.c: attributes, getattr, setattr, access ----------------- */
/* Is a secret name inside the only= view? */
int fs_visible(const char *name);
/* A secret's record read with the daemon's caller; a core code. */
int fs_secret_rec(const char *name, struct sfs_secret_rec *r);
/* May the request's caller see r's values' attributes? A core code. */
int fs_view_check(fuse_req_t req, const struct sfs_secret_rec *r);
/* The request's caller's read of secret's default (for kv/); a core code. */
int fs_kv_value(fuse_req_t req, const char *secret, struct sfs_value *v);
/* Is k a name kv/ can show? */
int fs_kv_name_ok(const char *k);
/* kv/KEY's bytes for the request's caller (*out malloc'd); an errno. */
int fs_kv_entry(fuse_req_t req, const char *secret, const char *key, char **out,
		size_t *len);
/* keys/NAME's JSON for the request's caller (*out malloc'd); an errno. */
int fs_key_json(fuse_req_t req, const char *name, char **out, size_t *len);
/* Does kv/ exist in secret r for the request's caller? */
int fs_kv_present(fuse_req_t req, const char *secret,
		  const struct sfs_secret_rec *r);
/* What of an answer is the caller's own (fs_node_attr_mine). */
enum { FS_MINE_ENTRY = 1, FS_MINE_ATTR = 2 };
/* Fill attributes of a node; 0 or an errno; *mine gets FS_MINE_*. */
int fs_node_attr_mine(fuse_req_t req, const struct fs_node_info *n,
		      struct stat *st, int *mine);
/* The same without *mine. */
int fs_node_attr(fuse_req_t req, const struct fs_node_info *n, struct stat *st);
void fs_fill_entry(struct fuse_entry_param *e, uint64_t ino,
		   const struct stat *st, int pending);
void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void fs_access(fuse_req_t req, fuse_ino_t ino, int mask);

/* --- fuse_dir.c: lookup and directories -------------------------------- */
/* Decide what parent/name names; fills n (without ino). errno or 0. */
int fs_resolve(fuse_req_t req, const struct fs_node_info *p, const char *name,
	       struct fs_node_info *n);
void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_forget_multi(fuse_req_t req, size_t count,
		     struct fuse_forget_data *forgets);
void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* --- fuse_read.c: read handles ------------------------------------------ */
/* Is fi a write handle (fuse_write.c's)? */
int fs_fh_is_write(const struct fuse_file_info *fi);
/* A read handle's snapshot size into *size: 1, or 0 if fi is none. */
int fs_rd_size(const struct fuse_file_info *fi, off_t *size);
/* Handles open on ino: 0 none; 1 some; 2 one of them the requesting
 * process's, whose size goes to *size. */
int fs_rd_snapshot(fuse_req_t req, uint64_t ino, off_t *size);
void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* --- fuse_tree.c: mkdir, rmdir, unlink ---------------------------------- */
void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	      dev_t rdev);
void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		const char *name);
void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	     const char *newname);

/* --- fuse_status.c ------------------------------------------------------ */
/* Build .status's JSON for the request's caller (malloc'd, with a
 * trailing newline): counts within the only= view; the store's path and
 * last error only for root and the mount's owner. */
char *fs_status_json(fuse_req_t req, size_t *len);

/* --- fuse_write.c: write handles, staged files, create, rename --------- */
struct fs_fh;
void fs_write_open(fuse_req_t req, const struct fs_node_info *n,
		   struct fuse_file_info *fi);
void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi);
void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Release a write handle (commits when no flush did); 1 if it was one. */
int fs_write_release(struct fuse_file_info *fi);
int fs_write_read(fuse_req_t req, size_t size, off_t off,
		  struct fuse_file_info *fi);
void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags);
/* Is name in a secret's directory a staged file's (anything but
 * default, versions, kv, . and ..)? */
int fs_staged_name(const char *name);
/* Staged files: lookup/attr/unlink/readdir for the owner's uid. */
int fs_staged_stat(const char *secret, const char *name, uint32_t uid,
		   struct stat *st);
int fs_staged_unlink(const char *secret, const char *name, uint32_t uid);
typedef int (*fs_staged_cb)(void *arg, const char *name);
void fs_staged_each(const char *secret, uint32_t uid, fs_staged_cb cb,
		    void *arg);
int fs_staged_truncate(const char *secret, const char *name, uint32_t uid,
		       off_t size);
void fs_staged_fini(void);
/* May the request's caller write default (expect 0) or create
 * versions/N (expect N)? sfs_version_can_add's answer as an errno; c gets
 * the caller. Asked before any byte is taken. */
int fs_writer_check(fuse_req_t req, const char *secret, uint32_t expect,
		    struct sfs_caller *c);
/* Truncate a write handle's buffer (ftruncate on an open writer). */
int fs_write_truncate(struct fuse_file_info *fi, off_t size);

/* --- fuse_xattr.c ------------------------------------------------------ */
void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags);
void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* --- fuse_notify.c: inotify events and poll(2) at a change -------------- */
int fs_notify_start(void);
/* A handler answered about secret in the state of changed_at. */
void fs_notify_served(const char *secret, int64_t changed_at);
/* The poller has invalidated up to gen: make the events. */
void fs_notify_kick(uint64_t gen);
/* Stop before the session ends; join once the connection is gone. */
void fs_notify_stop(void);
void fs_notify_join(void);

/* --- fuse_own.c: the notifier's own requests -------------------------- */
/* The staging name of notify=replace. */
#define FS_NOTIFY_STAGE ".secretfs-notify"
/* What the notifier is making: nothing, a name that must look absent or
 * present to its helper's lookups, or a staging file. */
enum fs_pend { FS_PEND_NONE, FS_PEND_ABSENT, FS_PEND_PRESENT, FS_PEND_STAGE };
void fs_own_pending(int kind, uint64_t parent, const char *name);
/* The helper runs as pid: its requests are the notifier's own. */
void fs_own_helper(pid_t pid);
/* Is the request the notifier's own (its helper's)? */
int fs_notify_own(fuse_req_t req);
/* fs_ops wrapped: the notifier's own requests, poll, ro refusals. */
const struct fuse_lowlevel_ops *fs_notify_ops(void);

/* --- fuse_poll.c: poll(2) and POLLPRI at a change ----------------------- */
/* Register the handle's poll; reply readable, POLLPRI once changed. */
void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph);
/* Wake the poll(2) waiters on the open files of secret's value nodes. */
void fs_poll_wake(const char *secret);
/* A handle is released: drop its registrations. */
void fs_poll_drop(uint64_t fh);
/* No poll notification after this (before the session goes). */
void fs_poll_stop(void);
/* Free every registration (the connection is gone). */
void fs_poll_fini(void);

/* --- notify_helper.c: the process that makes the file operations -------- */
enum fs_nh_op {
	FS_NH_TOUCH,	   /* open a for writing, write a byte, close */
	FS_NH_TOUCH_FRESH, /* the same after a stat (fresh attributes) */
	FS_NH_CREATE,	   /* create a read-only, close */
	FS_NH_MKDIR,
	FS_NH_UNLINK,
	FS_NH_RMDIR,
	FS_NH_REPLACE, /* create a, rename it onto b */
};
/* One command, paths relative to the mountpoint; the answer is an int
 * (0 or an errno). */
struct fs_nh_cmd {
	int op;
	char a[2 * SFS_NAME_MAX + 64];
	char b[2 * SFS_NAME_MAX + 64];
};
/* Start the helper for mountpoint: its pid (-1 on failure); *fd gets the
 * daemon's end of the command socket. */
pid_t fs_notify_helper_spawn(const char *mountpoint, int *fd);

/* --- fuse.c: running the session (mount.c calls it) -------------------- */
int fs_run(struct sfs_ctx *ctx, struct fs_opts *o, int lock_fd);

#endif
