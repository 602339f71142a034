/*
 * crashvfs: simulated power loss under SQLite, for the power-loss suite.
 *
 * The disk model. For each database and journal file the shim keeps, in
 * memory, the file's durable image (what a disk that has lost power is
 * sure to hold) and the list of writes and truncations made since the
 * file's last xSync. Writes and truncations go through to the real file
 * at once, so the running process reads back what it wrote, exactly as
 * through a page cache. xSync makes the pending list part of the durable
 * image; it does not call fsync(2), because this in-memory image, not
 * the real disk, is what the test checks (and real fsyncs would make
 * hundreds of crash points too slow for CI). The unix VFS syncs a new
 * journal's directory with the journal, so a synced file also exists
 * for good; a file created and never synced may vanish.
 *
 * Power loss. At the chosen call (the Nth write, truncate or sync since
 * crashvfs_arm; that call does not run) every tracked file is rewritten
 * to its durable image plus some of its pending changes, replayed in
 * order: none (CRASHVFS_DROP_ALL), all (CRASHVFS_KEEP_ALL), or each
 * 512-byte sector of each write and each truncation on its own seeded
 * coin toss (CRASHVFS_KEEP_SOME). That last mode gives torn writes (part
 * of a page reached the disk) and reordering (a later write landed, an
 * earlier one did not), which unsynced data may suffer. Bytes a write
 * did not cover are never changed: the unix VFS tells SQLite that the
 * device has powersafe overwrite, and this model holds it to exactly
 * that promise, no more. A sector kept past the old end of a file
 * leaves zeros in any gap, as a sparse file would. From then on every
 * call fails (SQLITE_IOERR), as if the machine were gone; the test ends
 * the process and reopens the files with the plain unix VFS, which sees
 * what the disk would show at reboot.
 *
 * Failed syncs (crashvfs_fail_sync). A sync the test makes fail returns
 * SQLITE_IOERR_FSYNC and makes nothing durable: the durable image is
 * left as it was. What became of the changes it was asked to cover is
 * the test's choice. Kept pending, they may still reach the disk at a
 * power cut (as the keep mode says) or through a later sync that
 * succeeds, as on a device that recovered. Lost, they never reach the
 * disk, though the process still reads them back: Linux after a
 * writeback error marks the pages clean and a later fsync succeeds.
 *
 * What is not modelled: a device that lies about fsync, corruption of
 * data that was synced, and damage to bytes outside a write (both are
 * outside what SQLite promises to survive). Temporary files (no name)
 * pass through untracked; the store keeps them in memory anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/crashvfs.h"

#define SECTOR	    512
#define MAX_TRACKED 16
#define CHUNK	    65536 /* the unix VFS moves < 128 KiB a call */
#define TRACKED_FLAGS                                                          \
	(SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL |    \
	 SQLITE_OPEN_SUPER_JOURNAL)

enum op_kind { OP_WRITE, OP_TRUNCATE };

struct op {
	enum op_kind kind;
	sqlite3_int64 off; /* write offset, or the truncated size */
	size_t len;
	unsigned char *data;
};

/* One file the model tracks, by full path; outlives its handles. */
struct track {
	char path[PATH_MAX];
	int known;	    /* the fields below hold since the last arm */
	int durable_exists; /* synced once, or there before arm */
	unsigned char *img; /* durable contents */
	size_t len, cap;
	struct op *ops; /* pending since the last sync, in order */
	size_t nops, capops;
	sqlite3_file *open; /* a real handle open on it, or NULL */
};

struct cv_file {
	sqlite3_file base;
	struct track *t;    /* NULL: untracked pass-through */
	sqlite3_file *real; /* the unix VFS file, just after this struct */
};

static sqlite3_vfs *unix_vfs;
static sqlite3_vfs cv_vfs;
static struct track tracks[MAX_TRACKED];
static int ntracks;
static long points, crash_at;
static int crashed;
static uint64_t rng;
static enum crashvfs_keep keep_mode;
static long syncs, fail_first, fail_n; /* crashvfs_fail_sync's knob */
static int fail_lose;

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

/* splitmix64: a seeded coin that does not depend on libc's rand. */
static int coin(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (int)((z ^ (z >> 31)) & 1);
}

static int keep_one(void)
{
	if (keep_mode == CRASHVFS_KEEP_ALL)
		return 1;
	return keep_mode == CRASHVFS_KEEP_SOME && coin();
}

/* ---- images ---------------------------------------------------------- */

static void img_write(struct track *t, sqlite3_int64 off, const void *p,
		      size_t n)
{
	size_t end = (size_t)off + n;

	if (end > t->cap) {
		t->cap = end * 2;
		t->img = xrealloc(t->img, t->cap);
	}
	if ((size_t)off > t->len)
		memset(t->img + t->len, 0, (size_t)off - t->len);
	memcpy(t->img + off, p, n);
	if (end > t->len)
		t->len = end;
}

static void img_truncate(struct track *t, sqlite3_int64 size)
{
	if ((size_t)size <= t->len) {
		t->len = (size_t)size;
		return;
	}
	img_write(t, size - 1, "", 1); /* extend with zeros */
}

static void ops_clear(struct track *t)
{
	size_t i;

	for (i = 0; i < t->nops; i++)
		free(t->ops[i].data);
	t->nops = 0;
}

static void op_add(struct track *t, enum op_kind kind, sqlite3_int64 off,
		   const void *p, size_t n)
{
	struct op *o;

	if (t->nops == t->capops) {
		t->capops = t->capops ? 2 * t->capops : 16;
		t->ops = xrealloc(t->ops, t->capops * sizeof(*t->ops));
	}
	o = &t->ops[t->nops++];
	o->kind = kind;
	o->off = off;
	o->len = n;
	o->data = NULL;
	if (n) {
		o->data = xrealloc(NULL, n);
		memcpy(o->data, p, n);
	}
}

/* The durable image becomes what the file holds now, read through the
 * real handle (a second descriptor's close would drop SQLite's locks). */
static void img_from_file(struct track *t, sqlite3_file *real)
{
	sqlite3_int64 size = 0, at, n;

	ops_clear(t);
	t->len = 0;
	t->durable_exists = 1;
	t->known = 1;
	if (real->pMethods->xFileSize(real, &size) != SQLITE_OK)
		abort();
	if ((size_t)size > t->cap) {
		t->cap = (size_t)size;
		t->img = xrealloc(t->img, t->cap);
	}
	for (at = 0; at < size; at += n) {
		n = size - at < CHUNK ? size - at : CHUNK;
		if (real->pMethods->xRead(real, t->img + at, (int)n, at))
			abort();
	}
	t->len = (size_t)size;
}

/* Replay pending op o onto t's image, keeping what the mode keeps. */
static void op_replay(struct track *t, const struct op *o)
{
	sqlite3_int64 at, end, next;

	if (o->kind == OP_TRUNCATE) {
		if (keep_one())
			img_truncate(t, o->off);
		return;
	}
	end = o->off + (sqlite3_int64)o->len;
	for (at = o->off; at < end; at = next) {
		next = (at / SECTOR + 1) * SECTOR;
		if (next > end)
			next = end;
		if (keep_one())
			img_write(t, at, o->data + (at - o->off),
				  (size_t)(next - at));
	}
}

/* Put the post-crash image of t on the real disk. */
static void file_rewrite(struct track *t, int exists)
{
	sqlite3_file *r = t->open;
	size_t at, n;
	int fd;

	if (!exists) {
		if (unlink(t->path) && errno != ENOENT)
			abort();
		return;
	}
	if (r) {
		if (r->pMethods->xTruncate(r, (sqlite3_int64)t->len))
			abort();
		for (at = 0; at < t->len; at += n) {
			n = t->len - at < CHUNK ? t->len - at : CHUNK;
			if (r->pMethods->xWrite(r, t->img + at, (int)n,
						(sqlite3_int64)at))
				abort();
		}
		return;
	}
	/* Closed (a journal between transactions): no lock to lose. */
	fd = open(t->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)t->len) ||
	    pwrite(fd, t->img, t->len, 0) != (ssize_t)t->len)
		abort();
	close(fd);
}

static void power_loss(void)
{
	int i, exists;
	size_t j;

	crashed = 1;
	for (i = 0; i < ntracks; i++) {
		struct track *t = &tracks[i];

		if (!t->known)
			continue; /* untouched since arm: as it was */
		exists = t->durable_exists || (t->nops && keep_one());
		for (j = 0; exists && j < t->nops; j++)
			op_replay(t, &t->ops[j]);
		file_rewrite(t, exists);
		ops_clear(t);
	}
}

/* Count one write, truncate or sync; 1 when it must fail. */
static int crash_point(void)
{
	if (crashed)
		return 1;
	if (++points == crash_at) {
		power_loss();
		return 1;
	}
	return 0;
}

static struct track *track_get(const char *path)
{
	struct track *t;
	int i;

	for (i = 0; i < ntracks; i++)
		if (strcmp(tracks[i].path, path) == 0)
			return &tracks[i];
	if (ntracks == MAX_TRACKED || strlen(path) >= PATH_MAX)
		abort();
	t = &tracks[ntracks++];
	memset(t, 0, sizeof(*t));
	strcpy(t->path, path);
	return t;
}

/* ---- io methods ------------------------------------------------------ */

#define REAL(f)	 (((struct cv_file *)(f))->real)
#define TRACK(f) (((struct cv_file *)(f))->t)

static int cv_close(sqlite3_file *f)
{
	struct track *t = TRACK(f);
	sqlite3_file *r = REAL(f);

	if (t && t->open == r)
		t->open = NULL;
	return r->pMethods->xClose(r);
}

static int cv_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	if (crashed)
		return SQLITE_IOERR_READ;
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int cv_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct track *t = TRACK(f);

	if (t ? crash_point() : crashed)
		return SQLITE_IOERR_WRITE;
	if (t)
		op_add(t, OP_WRITE, off, p, (size_t)n);
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int cv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct track *t = TRACK(f);

	if (t ? crash_point() : crashed)
		return SQLITE_IOERR_TRUNCATE;
	if (t)
		op_add(t, OP_TRUNCATE, size, NULL, 0);
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

/* Count a sync of t; 1 when the knob makes it fail (see top). */
static int sync_fails(struct track *t)
{
	if (++syncs < fail_first || syncs >= fail_first + fail_n)
		return 0;
	if (fail_lose)
		ops_clear(t);
	return 1;
}

/* The model's sync: pending changes become durable (no fsync, see top). */
static int cv_sync(sqlite3_file *f, int flags)
{
	struct track *t = TRACK(f);
	size_t i;

	(void)flags;
	if (t ? crash_point() : crashed)
		return SQLITE_IOERR_FSYNC;
	if (!t)
		return SQLITE_OK;
	if (sync_fails(t))
		return SQLITE_IOERR_FSYNC;
	for (i = 0; i < t->nops; i++) {
		if (t->ops[i].kind == OP_TRUNCATE)
			img_truncate(t, t->ops[i].off);
		else
			img_write(t, t->ops[i].off, t->ops[i].data,
				  t->ops[i].len);
	}
	ops_clear(t);
	t->durable_exists = 1;
	return SQLITE_OK;
}

static int cv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	if (crashed)
		return SQLITE_IOERR_FSTAT;
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int cv_lock(sqlite3_file *f, int level)
{
	if (crashed)
		return SQLITE_IOERR_LOCK;
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int cv_unlock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int cv_check_reserved(sqlite3_file *f, int *out)
{
	if (crashed)
		return SQLITE_IOERR_CHECKRESERVEDLOCK;
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

/* A size hint could grow the file behind the model's back: ignore it
 * (it is only a hint). Everything else is forwarded until the crash. */
static int cv_file_control(sqlite3_file *f, int op, void *arg)
{
	if (op == SQLITE_FCNTL_SIZE_HINT)
		return SQLITE_OK;
	if (crashed)
		return SQLITE_NOTFOUND;
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int cv_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int cv_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

/*
 * Shared memory (the WAL's wal-index, DIR/secretfs.db-shm) passes through
 * to the unix VFS untracked: it holds no data, only an index SQLite
 * rebuilds from the WAL when the first connection after a crash opens
 * it. The WAL file itself is tracked like the database (TRACKED_FLAGS).
 * After power loss the calls fail like every other.
 */
static int cv_shm_map(sqlite3_file *f, int region, int size, int extend,
		      void volatile **pp)
{
	if (crashed)
		return SQLITE_IOERR_SHMMAP;
	return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, pp);
}

static int cv_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	if (crashed && !(flags & SQLITE_SHM_UNLOCK))
		return SQLITE_IOERR_SHMLOCK;
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void cv_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int cv_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

/* Version 2: shared memory for WAL, but no mmap of the database, so every
 * byte SQLite reads or writes passes through the methods above. */
static const sqlite3_io_methods cv_methods = {
    .iVersion = 2,
    .xClose = cv_close,
    .xRead = cv_read,
    .xWrite = cv_write,
    .xTruncate = cv_truncate,
    .xSync = cv_sync,
    .xFileSize = cv_file_size,
    .xLock = cv_lock,
    .xUnlock = cv_unlock,
    .xCheckReservedLock = cv_check_reserved,
    .xFileControl = cv_file_control,
    .xSectorSize = cv_sector_size,
    .xDeviceCharacteristics = cv_device_characteristics,
    .xShmMap = cv_shm_map,
    .xShmLock = cv_shm_lock,
    .xShmBarrier = cv_shm_barrier,
    .xShmUnmap = cv_shm_unmap,
};

/* ---- vfs ------------------------------------------------------------- */

static int cv_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f,
		   int flags, int *out_flags)
{
	struct cv_file *c = (struct cv_file *)f;
	int existed, rc;

	(void)vfs;
	c->base.pMethods = NULL;
	c->real = (sqlite3_file *)(c + 1);
	c->t = NULL;
	if (crashed)
		return SQLITE_IOERR;
	existed = name && access(name, F_OK) == 0;
	rc = unix_vfs->xOpen(unix_vfs, name, c->real, flags, out_flags);
	if (rc != SQLITE_OK)
		return rc;
	if (name && (flags & TRACKED_FLAGS)) {
		c->t = track_get(name);
		c->t->open = c->real;
		if (!c->t->known && existed)
			img_from_file(c->t, c->real);
		c->t->known = 1;
	}
	c->base.pMethods = &cv_methods;
	return SQLITE_OK;
}

/* Deleting is durable at once: the unix VFS syncs the directory when
 * SQLite asks it to (a journal's delete is its commit in DELETE mode). */
static int cv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	int i;

	(void)vfs;
	if (crashed)
		return SQLITE_IOERR_DELETE;
	for (i = 0; i < ntracks; i++) {
		if (strcmp(tracks[i].path, name) == 0) {
			ops_clear(&tracks[i]);
			tracks[i].len = 0;
			tracks[i].durable_exists = 0;
		}
	}
	return unix_vfs->xDelete(unix_vfs, name, sync_dir);
}

int crashvfs_install(void)
{
	if (unix_vfs)
		return SQLITE_OK;
	unix_vfs = sqlite3_vfs_find("unix");
	if (!unix_vfs)
		return SQLITE_ERROR;
	/* Every other method is the unix VFS's own: they only use the
	 * pAppData copied along with them. */
	cv_vfs = *unix_vfs;
	cv_vfs.pNext = NULL;
	cv_vfs.zName = "crashvfs";
	cv_vfs.szOsFile = (int)sizeof(struct cv_file) + unix_vfs->szOsFile;
	cv_vfs.xOpen = cv_open;
	cv_vfs.xDelete = cv_delete;
	return sqlite3_vfs_register(&cv_vfs, 1);
}

void crashvfs_uninstall(void)
{
	int i;

	if (!unix_vfs)
		return;
	sqlite3_vfs_unregister(&cv_vfs);
	sqlite3_vfs_register(unix_vfs, 1);
	for (i = 0; i < ntracks; i++) {
		ops_clear(&tracks[i]);
		free(tracks[i].ops);
		free(tracks[i].img);
	}
	ntracks = 0;
	unix_vfs = NULL;
	crashed = 0;
	points = crash_at = 0;
	crashvfs_fail_sync(0, 0, 0);
}

void crashvfs_arm(long at, uint64_t seed, enum crashvfs_keep keep)
{
	int i;

	for (i = 0; i < ntracks; i++) {
		struct track *t = &tracks[i];

		if (t->open) {
			img_from_file(t, t->open);
		} else {
			/* closed: forget it; its next open reads it anew */
			ops_clear(t);
			t->len = 0;
			t->durable_exists = 0;
			t->known = 0;
		}
	}
	points = 0;
	crash_at = at;
	crashed = 0;
	rng = seed;
	keep_mode = keep;
	crashvfs_fail_sync(0, 0, 0);
}

void crashvfs_fail_sync(long first, long n, int lose)
{
	syncs = 0;
	fail_first = first;
	fail_n = first > 0 && n > 0 ? n : 0;
	fail_lose = lose;
}

long crashvfs_syncs(void)
{
	return syncs;
}

void crashvfs_crash_now(void)
{
	if (!crashed)
		power_loss();
}

long crashvfs_points(void)
{
	return points;
}

int crashvfs_crashed(void)
{
	return crashed;
}
