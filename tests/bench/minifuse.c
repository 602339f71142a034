/*
 * minifuse: the smallest useful FUSE file server, the floor scripts/bench
 * measures secretfs against. Low-level libfuse3 API, everything in memory:
 * three read-only files f100, f4096 and f65536 (their byte sizes) in the
 * root, also reachable as secrets/sN/default (the depth of a secretfs
 * value, so that path walks compare equal numbers of FUSE components), and
 * files the client creates, named wN (N a decimal number, so that a lookup
 * is a parse, not a search), each up to 64 KiB.
 *
 * Options: --direct-io (every read reaches the daemon), --kernel-cache
 * (keep_cache: the page cache survives across opens), --noopen (reply
 * ENOSYS to open, so the kernel stops sending OPEN at all: the floor for a
 * kernel-cached mode), --counter FILE (a file of NR_OPS 64-bit counters, one
 * per request type, that the daemon mmaps and increments, so the bench can
 * count requests per operation without a request of its own), --sqlite DB
 * and --duties FILE (below).
 *
 * Without --sqlite there is no flush handler: libfuse answers ENOSYS and
 * the kernel stops sending FLUSH, as a minimal server would. Entry and
 * attribute timeouts are an hour: the files never change behind the
 * kernel's back.
 *
 * --sqlite DB adds one: the floor of a store like secretfs's. At each
 * FLUSH of a created file the daemon inserts the file's bytes as a row of
 * DB (SQLite, WAL, synchronous=FULL: one fdatasync of the WAL per commit,
 * the WAL grown beforehand so that commits overwrite its blocks) and
 * replies once the commit is durable, so close() returns after it, as
 * secretfs's does. No encryption, audit, policy or notification.
 *
 * --duties FILE: the floor of a read that does what secretfs must do at
 * each open (an audited read, no plaintext left in the page cache),
 * without the rest of secretfs: at OPEN of a fixed file, pread the
 * caller's /proc/PID/comm (the descriptor kept per thread for its last
 * pid, as secretfs keeps it) and append an audit line of the
 * same shape to FILE with one write(2); with --kernel-cache also push the
 * bytes into the page cache (notify_store) before the reply, and with
 * either cache option drop them at RELEASE (zeros pushed over them for
 * --kernel-cache, inval_inode for --direct-io), as secretfs's cache=open
 * and cache=strict do. No decryption, store, or policy.
 *
 * Not part of the product and not built by the Makefile: scripts/bench
 * compiles it into build/bench/.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Request types counted; the order is the counter file's layout. */
enum mf_op {
	OP_LOOKUP,
	OP_FORGET,
	OP_GETATTR,
	OP_SETATTR,
	OP_OPEN,
	OP_READ,
	OP_WRITE,
	OP_RELEASE,
	OP_CREATE,
	OP_OPENDIR,
	OP_READDIR,
	OP_RELEASEDIR,
	OP_FSYNC,
	OP_OTHER,
	NR_OPS
};

#define TIMEOUT	  3600.0
#define MAX_VALUE 65536
#define NR_FIXED  3
#define FIXED_INO 2  /* f100 = 2, f4096 = 3, f65536 = 4 */
#define SEC_INO	  8  /* secrets/ */
#define SDIR_INO  9  /* secrets/s100 = 9, s4096 = 10, s65536 = 11 */
#define DYN_INO	  16 /* wN has inode DYN_INO + N */
#define MAX_DYN	  (1u << 20)

struct mf_file {
	size_t size;
	unsigned char *data;
	int exists;
};

static const size_t fixed_size[NR_FIXED] = {100, 4096, 65536};
static struct mf_file fixed[NR_FIXED];
static struct mf_file *dyn; /* MAX_DYN entries, guarded by lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *counters; /* NR_OPS, shared with the bench */
static int opt_direct_io, opt_keep_cache, opt_noopen;
static sqlite3 *db; /* --sqlite: one connection, db_lock */
static sqlite3_stmt *db_insert;
static pthread_mutex_t db_lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3_int64 db_seq;
static int duty_fd = -1; /* --duties: the audit file */
static struct fuse_session *the_se;

static void count(enum mf_op op)
{
	if (counters)
		__atomic_fetch_add(&counters[op], 1, __ATOMIC_RELAXED);
}

/* The file behind an inode, or NULL. Caller holds lock for dynamic files. */
static struct mf_file *file_of(fuse_ino_t ino)
{
	if (ino >= FIXED_INO && ino < FIXED_INO + NR_FIXED)
		return &fixed[ino - FIXED_INO];
	if (ino >= DYN_INO && ino - DYN_INO < MAX_DYN &&
	    dyn[ino - DYN_INO].exists)
		return &dyn[ino - DYN_INO];
	return NULL;
}

static int fill_attr(fuse_ino_t ino, struct stat *st)
{
	struct mf_file *f;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FUSE_ROOT_ID || ino == SEC_INO ||
	    (ino >= SDIR_INO && ino < SDIR_INO + NR_FIXED)) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	pthread_mutex_lock(&lock);
	f = file_of(ino);
	if (f) {
		st->st_mode = S_IFREG | (ino < DYN_INO ? 0444 : 0644);
		st->st_nlink = 1;
		st->st_size = (off_t)f->size;
	}
	pthread_mutex_unlock(&lock);
	return f ? 0 : ENOENT;
}

/* Inode for a name in the root, or 0. */
static fuse_ino_t ino_of(const char *name)
{
	char *end;
	unsigned long n;
	size_t i;

	for (i = 0; i < NR_FIXED; i++) {
		char buf[16];

		snprintf(buf, sizeof(buf), "f%zu", fixed_size[i]);
		if (strcmp(name, buf) == 0)
			return FIXED_INO + i;
	}
	if (name[0] != 'w' || name[1] < '0' || name[1] > '9')
		return 0;
	n = strtoul(name + 1, &end, 10);
	if (*end || n >= MAX_DYN)
		return 0;
	return DYN_INO + n;
}

static void reply_entry(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.attr_timeout = TIMEOUT;
	e.entry_timeout = TIMEOUT;
	if (ino && fill_attr(ino, &e.attr) == 0)
		e.ino = ino;
	/* ino 0 with a timeout: a cached negative entry. */
	fuse_reply_entry(req, &e);
}

static void mf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char buf[16];
	size_t i;

	count(OP_LOOKUP);
	if (parent == FUSE_ROOT_ID) {
		reply_entry(req,
			    strcmp(name, "secrets") ? ino_of(name) : SEC_INO);
		return;
	}
	for (i = 0; parent == SEC_INO && i < NR_FIXED; i++) {
		snprintf(buf, sizeof(buf), "s%zu", fixed_size[i]);
		if (strcmp(name, buf) == 0) {
			reply_entry(req, SDIR_INO + i);
			return;
		}
	}
	if (parent >= SDIR_INO && parent < SDIR_INO + NR_FIXED &&
	    strcmp(name, "default") == 0) {
		reply_entry(req, FIXED_INO + (parent - SDIR_INO));
		return;
	}
	reply_entry(req, 0);
}

static void mf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	count(OP_FORGET);
	fuse_reply_none(req);
}

static void mf_forget_multi(fuse_req_t req, size_t n,
			    struct fuse_forget_data *f)
{
	(void)n;
	(void)f;
	count(OP_FORGET);
	fuse_reply_none(req);
}

static void mf_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	count(OP_GETATTR);
	if (fill_attr(ino, &st))
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void mf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct mf_file *f;
	int err = 0;

	(void)fi;
	count(OP_SETATTR);
	pthread_mutex_lock(&lock);
	f = file_of(ino);
	if (!f)
		err = ENOENT;
	else if ((to_set & FUSE_SET_ATTR_SIZE) && ino < DYN_INO)
		err = EACCES;
	else if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size > MAX_VALUE)
		err = EFBIG;
	else if (to_set & FUSE_SET_ATTR_SIZE)
		f->size = (size_t)attr->st_size;
	pthread_mutex_unlock(&lock);
	if (err)
		fuse_reply_err(req, err);
	else
		mf_getattr(req, ino, NULL);
}

static void set_open_flags(struct fuse_file_info *fi)
{
	fi->direct_io = opt_direct_io;
	fi->keep_cache = opt_keep_cache;
}

/* --duties at OPEN of a fixed file: the caller's name, the audit line,
 * with --kernel-cache the bytes pushed into the page cache. */
static void duty_open(fuse_req_t req, fuse_ino_t ino)
{
	static __thread int comm_fd = -1;
	static __thread pid_t comm_pid;
	const struct fuse_ctx *c = fuse_req_ctx(req);
	const struct mf_file *f = file_of(ino);
	char comm[32], path[48], when[32], line[400];
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(f->size);
	time_t now = time(NULL);
	struct tm tm;
	ssize_t n = -1;
	int len;

	if (comm_fd >= 0 && comm_pid == c->pid)
		n = pread(comm_fd, comm, sizeof(comm) - 1, 0);
	if (n <= 0) {
		if (comm_fd >= 0)
			close(comm_fd);
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)c->pid);
		comm_fd = open(path, O_RDONLY | O_CLOEXEC);
		comm_pid = c->pid;
		n = comm_fd < 0 ? -1
				: pread(comm_fd, comm, sizeof(comm) - 1, 0);
	}
	comm[n > 0 ? n - 1 : 0] = '\0';
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	len = snprintf(line, sizeof(line),
		       "{\"time\":\"%s\",\"op\":\"secret.read\","
		       "\"secret\":\"s%zu\",\"version\":1,\"result\":\"ok\","
		       "\"uid\":%u,\"gid\":%u,\"pid\":%d,\"comm\":\"%s\"}\n",
		       when, f->size, (unsigned)c->uid, (unsigned)c->gid,
		       (int)c->pid, comm);
	if (write(duty_fd, line, (size_t)len) != len)
		perror("minifuse: audit");
	if (opt_keep_cache) {
		bv.buf[0].mem = f->data;
		fuse_lowlevel_notify_store(the_se, ino, 0, &bv, 0);
	}
}

/* --duties at RELEASE of a fixed file: the bytes leave the page cache. */
static void duty_release(fuse_ino_t ino)
{
	static const unsigned char zeros[MAX_VALUE];
	const struct mf_file *f = file_of(ino);
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(f->size);

	if (opt_keep_cache) {
		bv.buf[0].mem = (void *)zeros;
		fuse_lowlevel_notify_store(the_se, ino, 0, &bv, 0);
	} else if (opt_direct_io) {
		fuse_lowlevel_notify_inval_inode(the_se, ino, 0, 0);
	}
}

static void mf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	count(OP_OPEN);
	if (opt_noopen) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (ino < DYN_INO && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (duty_fd >= 0 && ino < DYN_INO && file_of(ino))
		duty_open(req, ino);
	set_open_flags(fi);
	fuse_reply_open(req, fi);
}

static void mf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct mf_file *f;

	(void)fi;
	count(OP_READ);
	/* Fixed files never change; created ones are read by the bench only
	 * after their writer closed them. */
	pthread_mutex_lock(&lock);
	f = file_of(ino);
	pthread_mutex_unlock(&lock);
	if (!f) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((size_t)off >= f->size)
		size = 0;
	else if (size > f->size - (size_t)off)
		size = f->size - (size_t)off;
	fuse_reply_buf(req, size ? (const char *)f->data + off : NULL, size);
}

static void mf_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct mf_file *f;
	int err = 0;

	(void)fi;
	count(OP_WRITE);
	pthread_mutex_lock(&lock);
	f = file_of(ino);
	if (!f || ino < DYN_INO)
		err = EACCES;
	else if (off < 0 || (size_t)off + size > MAX_VALUE)
		err = EFBIG;
	if (!err) {
		memcpy(f->data + off, buf, size);
		if ((size_t)off + size > f->size)
			f->size = (size_t)off + size;
	}
	pthread_mutex_unlock(&lock);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, size);
}

static void mf_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	fuse_ino_t ino = parent == FUSE_ROOT_ID ? ino_of(name) : 0;
	struct mf_file *f = NULL;
	int err = 0;

	(void)mode;
	count(OP_CREATE);
	if (ino < DYN_INO) {
		fuse_reply_err(req, ino ? EEXIST : EACCES);
		return;
	}
	pthread_mutex_lock(&lock);
	f = &dyn[ino - DYN_INO];
	if (f->exists && (fi->flags & O_EXCL))
		err = EEXIST;
	else if (!f->data && !(f->data = malloc(MAX_VALUE)))
		err = ENOMEM;
	if (!err) {
		f->exists = 1;
		f->size = 0;
	}
	pthread_mutex_unlock(&lock);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	set_open_flags(fi);
	{
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.ino = ino;
		e.attr_timeout = TIMEOUT;
		e.entry_timeout = TIMEOUT;
		fill_attr(ino, &e.attr);
		fuse_reply_create(req, &e, fi);
	}
}

static void mf_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)fi;
	count(OP_RELEASE);
	if (duty_fd >= 0 && ino < DYN_INO && file_of(ino))
		duty_release(ino);
	fuse_reply_err(req, 0);
}

/* --sqlite: the file's bytes become a row, durable before the reply. */
static void mf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	static unsigned char buf[MAX_VALUE];
	struct mf_file *f;
	size_t len = 0;
	int err = 0;

	(void)fi;
	count(OP_OTHER);
	pthread_mutex_lock(&db_lock);
	pthread_mutex_lock(&lock);
	f = file_of(ino);
	if (f && ino >= DYN_INO) {
		len = f->size;
		memcpy(buf, f->data, len);
	}
	pthread_mutex_unlock(&lock);
	if (ino >= DYN_INO &&
	    (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ||
	     sqlite3_bind_int64(db_insert, 1, ++db_seq) ||
	     sqlite3_bind_blob(db_insert, 2, buf, (int)len, SQLITE_STATIC) ||
	     sqlite3_step(db_insert) != SQLITE_DONE ||
	     sqlite3_reset(db_insert) ||
	     sqlite3_exec(db, "COMMIT", NULL, NULL, NULL))) {
		sqlite3_reset(db_insert);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		err = EIO;
	}
	pthread_mutex_unlock(&db_lock);
	fuse_reply_err(req, err);
}

static int db_open(const char *path)
{
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			 "CREATE TABLE IF NOT EXISTS v(id INTEGER PRIMARY KEY,"
			 " data BLOB NOT NULL);"
			 /* grow the WAL past its checkpoint size once, so
			  * that commits overwrite blocks (as secretfs's
			  * store does) instead of growing the file */
			 "CREATE TABLE pad(x BLOB);"
			 "INSERT INTO pad VALUES (zeroblob(4400000));"
			 "DROP TABLE pad;"
			 "PRAGMA wal_checkpoint(PASSIVE);",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO v(id, data) VALUES (?1, ?2)",
			       -1, &db_insert, NULL) != SQLITE_OK) {
		fprintf(stderr, "minifuse: %s: %s\n", path,
			db ? sqlite3_errmsg(db) : "cannot open");
		return -1;
	}
	return 0;
}

static void mf_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	count(OP_FSYNC);
	fuse_reply_err(req, 0);
}

static void mf_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	count(OP_OPENDIR);
	if (ino != FUSE_ROOT_ID)
		fuse_reply_err(req, ENOTDIR);
	else
		fuse_reply_open(req, fi);
}

/* The root lists ".", ".." and the fixed files (created files are left out:
 * the bench never lists them). */
static void mf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char buf[512];
	size_t used = 0;
	off_t i;

	(void)ino;
	(void)fi;
	count(OP_READDIR);
	for (i = off; i < NR_FIXED + 2; i++) {
		struct stat st;
		char name[16];
		size_t n;

		memset(&st, 0, sizeof(st));
		if (i < 2) {
			st.st_ino = FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
			snprintf(name, sizeof(name), "%s", i ? ".." : ".");
		} else {
			st.st_ino = FIXED_INO + (fuse_ino_t)(i - 2);
			st.st_mode = S_IFREG;
			snprintf(name, sizeof(name), "f%zu", fixed_size[i - 2]);
		}
		n = fuse_add_direntry(req, buf + used, sizeof(buf) - used, name,
				      &st, i + 1);
		if (used + n > sizeof(buf) || used + n > size)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void mf_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	count(OP_RELEASEDIR);
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops mf_ops = {
    .lookup = mf_lookup,
    .forget = mf_forget,
    .forget_multi = mf_forget_multi,
    .getattr = mf_getattr,
    .setattr = mf_setattr,
    .open = mf_open,
    .read = mf_read,
    .write = mf_write,
    .create = mf_create,
    .release = mf_release,
    .fsync = mf_fsync,
    .opendir = mf_opendir,
    .readdir = mf_readdir,
    .releasedir = mf_releasedir,
};

static int map_counters(const char *path)
{
	size_t len = NR_OPS * sizeof(uint64_t);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	void *p;

	if (fd < 0 || ftruncate(fd, (off_t)len)) {
		perror(path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		perror("mmap");
		return -1;
	}
	counters = p;
	return 0;
}

static int init_files(void)
{
	size_t i, j;

	for (i = 0; i < NR_FIXED; i++) {
		fixed[i].size = fixed_size[i];
		fixed[i].exists = 1;
		fixed[i].data = malloc(fixed_size[i]);
		if (!fixed[i].data)
			return -1;
		/* The same bytes the bench writes into every other target. */
		for (j = 0; j < fixed_size[i]; j++)
			fixed[i].data[j] = (unsigned char)('a' + j % 26);
	}
	dyn = calloc(MAX_DYN, sizeof(*dyn));
	return dyn ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: minifuse [--direct-io] [--kernel-cache] "
			"[--noopen] [--counter FILE] [--sqlite DB]\n"
			"                [--duties FILE] MOUNTPOINT\n");
}

static int serve(const char *mountpoint)
{
	char *fargv[] = {"minifuse", "-o", "fsname=minifuse,subtype=minifuse",
			 NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_loop_config *cfg = NULL;
	struct fuse_lowlevel_ops ops = mf_ops;
	struct fuse_session *se;
	int ret = 1;

	if (db)
		ops.flush = mf_flush;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		return 1;
	the_se = se;
	if (fuse_set_signal_handlers(se))
		goto out_destroy;
	if (fuse_session_mount(se, mountpoint))
		goto out_signals;
	cfg = fuse_loop_cfg_create();
	if (cfg)
		ret = fuse_session_loop_mt(se, cfg) ? 1 : 0;
	fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret;
}

int main(int argc, char **argv)
{
	const char *counter = NULL, *mountpoint = NULL, *dbpath = NULL;
	const char *duties = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--direct-io") == 0)
			opt_direct_io = 1;
		else if (strcmp(argv[i], "--kernel-cache") == 0)
			opt_keep_cache = 1;
		else if (strcmp(argv[i], "--noopen") == 0)
			opt_noopen = 1;
		else if (strcmp(argv[i], "--counter") == 0 && i + 1 < argc)
			counter = argv[++i];
		else if (strcmp(argv[i], "--sqlite") == 0 && i + 1 < argc)
			dbpath = argv[++i];
		else if (strcmp(argv[i], "--duties") == 0 && i + 1 < argc)
			duties = argv[++i];
		else if (argv[i][0] != '-' && !mountpoint)
			mountpoint = argv[i];
		else {
			usage();
			return 2;
		}
	}
	if (!mountpoint) {
		usage();
		return 2;
	}
	if (counter && map_counters(counter))
		return 1;
	if (dbpath && db_open(dbpath))
		return 1;
	if (duties &&
	    (duty_fd = open(duties, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			    0600)) < 0) {
		perror(duties);
		return 1;
	}
	if (init_files()) {
		perror("minifuse");
		return 1;
	}
	return serve(mountpoint);
}
