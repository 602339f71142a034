/*
 * Change notification (SPEC §3): real inotify events on the mount when a
 * secret's default moves, through any front.
 *
 * The kernel raises no inotify event for anything a FUSE daemon tells it
 * (inval_inode, inval_entry, store): only a real file operation on the
 * mount does. So one notifier thread per daemon has them made, never
 * from a FUSE worker (a handler waiting on its own mount deadlocks), and
 * not by the daemon itself either: a helper process makes them
 * (notify_helper.c says why), the thread waits on its socket. The
 * poller (fuse.c) kicks it after it has invalidated the kernel's caches,
 * so the new state is readable before any event. The thread lists the
 * store, compares with its last listing (per secret: default version,
 * secret status and the default version's state; latest version; id) and,
 * per changed secret (coalesced: one listing covers every generation since
 * the last one), has the helper make, through the mountpoint opened for
 * each operation only (a held fd would make a plain unmount fail):
 * - new versions: O_CREAT|O_EXCL of versions/N (IN_CREATE in versions/);
 * - notify=modify (default): open default for writing, write one byte,
 *   close (IN_MODIFY + IN_CLOSE_WRITE, the watch survives); also on the
 *   kv/ files the kernel holds;
 * - notify=replace: create a hidden staging name and rename it onto
 *   default (IN_MOVED_TO in the secret's directory);
 * - a new or deleted secret: mkdir / rmdir in secrets/ (IN_CREATE /
 *   IN_DELETE); then wakes poll(2) waiters on the secret's files (POLLPRI).
 * In a flat view (layout=flat) the value file is the root's NAME: the same
 * modify or replace there, and a file created / unlinked at the root when
 * a secret gains or loses its default (the view lists only those).
 *
 * The daemon recognises its own requests by the helper's pid and
 * answers them before any core call (fuse_own.c); the thread tells it
 * what it is making (fs_own_pending).
 *
 * Memory: the last listing stays, 40 bytes a secret plus its name (about
 * 6 MiB for 100,000 secrets; twice that while a change is compared).
 *
 * poll(2) waiters (fuse_poll.c) are woken here at a change. The thread
 * holds no lock a handler needs while it waits on the mount; inotify
 * never blocks (a full queue drops events), so a slow watcher slows no
 * one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuse_int.h"
#include "secretfs/secret.h"
#include "secretfs/version.h"

#define NEW_VERS_MAX 16 /* IN_CREATEs per secret per batch */
#define KV_NODES_MAX 64

/* One secret as the last listing saw it: 40 bytes, its name in the
 * listing's arena (a listing of 100,000 secrets is about 6 MiB). */
struct seen {
	uint64_t key; /* fs_name_hash of the name: the sort order */
	uint64_t id;  /* fs_name_hash of the id */
	int64_t changed_at;
	uint32_t def, latest;
	int16_t status, vstate;
	uint32_t name; /* offset in names */
};

struct listing {
	struct seen *v;
	size_t n, cap;
	char *names;
	size_t used, room;
};

static pthread_mutex_t kick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kick_cond = PTHREAD_COND_INITIALIZER;
static uint64_t kicked; /* kick_lock */
static int stop;	/* kick_lock */
static pthread_t thread;
static int thread_started;

/* --- the thread's side -------------------------------------------------- */

static int seen_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct seen *)a)->key;
	uint64_t y = ((const struct seen *)b)->key;

	return x < y ? -1 : x > y;
}

static const char *name_of(const struct listing *l, const struct seen *s)
{
	return l->names + s->name;
}

/* Room for one more entry and a name of len bytes; 0 or -1. */
static int grow(struct listing *l, size_t len)
{
	size_t cap = l->cap ? l->cap * 2 : 64, room = l->room * 2 + len + 4096;
	void *p;

	if (l->n == l->cap) {
		p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return -1;
		l->v = p;
		l->cap = cap;
	}
	if (l->used + len + 1 > l->room) {
		p = realloc(l->names, room);
		if (!p)
			return -1;
		l->names = p;
		l->room = room;
	}
	return 0;
}

static int list_cb(void *arg, const struct sfs_secret_rec *r)
{
	struct listing *l = arg;
	size_t len = strlen(r->name);
	struct seen *s;

	if (!fs_visible(r->name))
		return 0;
	if (grow(l, len))
		return SFS_ENOMEM;
	s = &l->v[l->n++];
	s->key = fs_name_hash(r->name);
	s->id = fs_name_hash(r->id);
	s->changed_at = r->changed_at;
	s->def = r->default_version;
	s->latest = r->latest_version;
	s->status = (int16_t)r->status;
	s->vstate = -1;
	s->name = (uint32_t)l->used;
	memcpy(l->names + l->used, r->name, len + 1);
	l->used += len + 1;
	return 0;
}

static const struct seen *find(const struct listing *l, uint64_t key)
{
	struct seen k;

	if (!l->n)
		return NULL;
	memset(&k, 0, sizeof(k));
	k.key = key;
	return bsearch(&k, l->v, l->n, sizeof(k), seen_cmp);
}

/* The default version's state: asked only when the secret changed. */
static void fill_vstate(const struct listing *l, struct seen *s,
			const struct seen *old)
{
	struct sfs_version_rec vr;
	struct sfs_error err;

	if (old && old->changed_at == s->changed_at) {
		s->vstate = old->vstate;
		return;
	}
	sfs_error_clear(&err);
	if (s->def &&
	    fs_noted(sfs_version_info(fs_d.ctx, &fs_d.meta, name_of(l, s),
				      s->def, &vr, &err),
		     &err) == SFS_OK)
		s->vstate = (int16_t)vr.state;
}

/* The store now: 0, or -1 (nothing to compare with, try again later). */
static int list_now(struct listing *l, const struct listing *old)
{
	struct sfs_error err;
	size_t i;

	l->n = 0;
	l->used = 0;
	sfs_error_clear(&err);
	if (fs_noted(sfs_secret_list(fs_d.ctx, &fs_d.meta, list_cb, l, &err),
		     &err))
		return -1;
	if (l->n) /* qsort of NULL is undefined, even for no elements */
		qsort(l->v, l->n, sizeof(*l->v), seen_cmp);
	for (i = 0; i < l->n; i++)
		fill_vstate(l, &l->v[i], old ? find(old, l->v[i].key) : NULL);
	return 0;
}

/* Have the helper make one operation (notify_helper.c); its errno. The
 * thread waits on the socket, never on the mount. */
static int op(int ch, int o, const char *a, const char *b)
{
	struct fs_nh_cmd c;
	int e = FS_EIO;

	memset(&c, 0, sizeof(c));
	c.op = o;
	snprintf(c.a, sizeof(c.a), "%s", a);
	snprintf(c.b, sizeof(c.b), "%s", b ? b : "");
	if (write(ch, &c, sizeof(c)) != (ssize_t)sizeof(c) ||
	    read(ch, &e, sizeof(e)) != (ssize_t)sizeof(e))
		return FS_EIO;
	return e;
}

/* IN_MODIFY + IN_CLOSE_WRITE on path. fresh: first fetch the attributes
 * the poller only marked stale, so that a reader woken by the event sees
 * the new size even through sendfile/splice, which trust the cached
 * size (not for kv/ files: their size needs a decryption, an audited
 * read). */
static void touch(int ch, const char *path, int fresh)
{
	op(ch, fresh ? FS_NH_TOUCH_FRESH : FS_NH_TOUCH, path, NULL);
}

/* The kv/ files the kernel holds for secret (their watchers). */
static void touch_kv(int ch, const char *secret)
{
	struct fs_node_ent *v;
	struct fs_node_info n;
	char path[SFS_NAME_MAX + 300];
	size_t i, done = 0,
		  cnt = fs_node_snapshot_secret(secret, FK_VERSION, &v);

	for (i = 0; i < cnt && done < KV_NODES_MAX; i++) {
		if (v[i].kind != FK_KV || fs_node_get(v[i].ino, &n))
			continue;
		snprintf(path, sizeof(path), "secrets/%s/kv/%s", secret,
			 n.name);
		touch(ch, path, 0);
		done++;
	}
	free(v);
}

/* The value file of secret: secrets/NAME/default, or NAME in a flat
 * view. */
static void value_path(const char *secret, char *out, size_t cap)
{
	if (fs_d.opts.flat)
		snprintf(out, cap, "%s", secret);
	else
		snprintf(out, cap, "secrets/%s/default", secret);
}

/* The staging name sits beside the value file; in a flat view the
 * handlers learn its secret from fs_own_pending (FS_PEND_STAGE). */
static void replace(int ch, const char *secret)
{
	char from[SFS_NAME_MAX + 64], to[SFS_NAME_MAX + 64];

	if (fs_d.opts.flat)
		snprintf(from, sizeof(from), FS_NOTIFY_STAGE);
	else
		snprintf(from, sizeof(from), "secrets/%s/" FS_NOTIFY_STAGE,
			 secret);
	value_path(secret, to, sizeof(to));
	fs_own_pending(FS_PEND_STAGE, FS_INO_ROOT, secret);
	/* created read-only: no IN_CLOSE_WRITE for the staging name */
	op(ch, FS_NH_REPLACE, from, to);
	fs_own_pending(FS_PEND_NONE, 0, "");
}

/* IN_CREATE of versions/N for the versions made since old. */
static void new_versions(int ch, const char *name, const struct seen *s,
			 const struct seen *old)
{
	char path[SFS_NAME_MAX + 64], num[16];
	uint64_t dir = fs_node_find(FK_VERSIONS, name, 0, "versions");
	uint32_t v = old->latest + 1;

	if (!dir || s->latest - old->latest > NEW_VERS_MAX ||
	    fs_d.opts.notify == FS_NOTIFY_NONE)
		return; /* nobody can watch a directory never looked up */
	for (; v <= s->latest; v++) {
		snprintf(num, sizeof(num), "%u", v);
		snprintf(path, sizeof(path), "secrets/%s/versions/%s", name,
			 num);
		fs_own_pending(FS_PEND_ABSENT, dir, num);
		op(ch, FS_NH_CREATE, path, NULL);
	}
	fs_own_pending(FS_PEND_NONE, 0, "");
}

/* IN_CREATE / IN_DELETE of secrets/NAME, or of NAME in a flat view. */
static void secret_dir(int ch, const char *name, int created)
{
	char path[SFS_NAME_MAX + 16];
	int flat = fs_d.opts.flat;

	if (fs_d.opts.notify == FS_NOTIFY_NONE)
		return;
	snprintf(path, sizeof(path), flat ? "%s" : "secrets/%s", name);
	fs_own_pending(created ? FS_PEND_ABSENT : FS_PEND_PRESENT,
		       flat ? FS_INO_ROOT : FS_INO_SECRETS, name);
	if (created)
		op(ch, flat ? FS_NH_CREATE : FS_NH_MKDIR, path, NULL);
	else
		op(ch, flat ? FS_NH_UNLINK : FS_NH_RMDIR, path, NULL);
	fs_own_pending(FS_PEND_NONE, 0, "");
}

static int moved(const struct seen *a, const struct seen *b)
{
	return a->def != b->def || a->status != b->status ||
	       a->vstate != b->vstate;
}

/* The default moved: the mode's events on the value file. */
static void value_moved(int ch, const char *name)
{
	char path[SFS_NAME_MAX + 32];

	value_path(name, path, sizeof(path));
	if (fs_d.opts.notify == FS_NOTIFY_MODIFY) {
		touch(ch, path, 1);
		if (!fs_d.opts.flat)
			touch_kv(ch, name);
	} else if (fs_d.opts.notify == FS_NOTIFY_REPLACE) {
		replace(ch, name);
	}
	fs_poll_wake(name);
}

/*
 * A secret this thread sees for the first time may have been read
 * already: the handlers serve what the store holds now, and a creation
 * followed by another change within one look at the store (another
 * host's CLI within the poller's 50 ms) reaches this thread as one
 * listing. So the handlers note the first state of each secret they
 * answer about (its changed_at, fs_notify_served); when that differs
 * from the state the listing shows, or is not known while the kernel
 * holds a node of the secret, the value file gets the change's events.
 * A state the reader saw gets none: an event for it, made while a newer
 * change is not yet invalidated, would send the reader to a value whose
 * size the kernel still holds from before.
 */
#define SERVED_SLOTS 1024

/* A slot belongs to the first name that takes it until the notifier has
 * seen that name (seen_older, served_known): a collision leaves the
 * other name unnoted (the node test then decides), never a lock per
 * request. */
static struct {
	uint64_t key; /* fs_name_hash of the name; 0: free (atomic) */
	int64_t changed_at;
} served[SERVED_SLOTS];
static pthread_mutex_t served_lock = PTHREAD_MUTEX_INITIALIZER;

void fs_notify_served(const char *secret, int64_t changed_at)
{
	uint64_t key = fs_name_hash(secret);
	size_t i = key % SERVED_SLOTS;

	if (__atomic_load_n(&served[i].key, __ATOMIC_ACQUIRE))
		return; /* noted, or another name's: the hot path */
	pthread_mutex_lock(&served_lock);
	if (!served[i].key) {
		served[i].changed_at = changed_at;
		__atomic_store_n(&served[i].key, key, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&served_lock);
}

/* First sight of s: did a reader see another state of it? Its note is
 * used up (from now on the listings compare). */
static int seen_older(const char *name, const struct seen *s)
{
	uint64_t key = fs_name_hash(name);
	size_t i = key % SERVED_SLOTS;
	struct fs_node_ent *v;
	int noted, older;
	size_t n;

	pthread_mutex_lock(&served_lock);
	noted = served[i].key == key;
	older = noted && served[i].changed_at != s->changed_at;
	if (noted)
		__atomic_store_n(&served[i].key, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&served_lock);
	if (noted)
		return older;
	n = fs_node_snapshot_secret(name, 0, &v);
	free(v);
	return n > 0;
}

/* After a listing: free the slots of names it holds (no longer new). */
static void served_known(const struct listing *l)
{
	size_t i;

	pthread_mutex_lock(&served_lock);
	for (i = 0; i < SERVED_SLOTS; i++)
		if (served[i].key && find(l, served[i].key))
			__atomic_store_n(&served[i].key, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&served_lock);
}

/* A flat view: a secret's file exists while it has a default. */
static void changed_flat(int ch, const char *name, const struct seen *s,
			 const struct seen *old)
{
	int same = old && old->id == s->id, had = same && old->def;

	if (old && !same && old->def)
		secret_dir(ch, name, 0);
	if (s->def && !old && seen_older(name, s))
		value_moved(ch, name);
	else if (s->def && !had)
		secret_dir(ch, name, 1);
	else if (had && !s->def)
		secret_dir(ch, name, 0);
	else if (had && moved(s, old))
		value_moved(ch, name);
}

/* One secret that is in the new listing: what changed since old. */
static void changed(int ch, const char *name, const struct seen *s,
		    const struct seen *old)
{
	if (fs_d.opts.flat) {
		changed_flat(ch, name, s, old);
		return;
	}
	if (!old && seen_older(name, s)) {
		secret_dir(ch, name, 1);
		if (s->def)
			value_moved(ch, name);
		return;
	}
	if (!old || old->id != s->id) {
		if (old)
			secret_dir(ch, name, 0);
		secret_dir(ch, name, 1);
		return;
	}
	if (s->latest > old->latest)
		new_versions(ch, name, s, old);
	if (moved(s, old))
		value_moved(ch, name);
}

/* Read without the locks: the thread's loops stop early. */
static int stopping(void)
{
	return __atomic_load_n(&stop, __ATOMIC_ACQUIRE);
}

static void diff(int ch, const struct listing *old, const struct listing *now)
{
	const struct seen *s;
	size_t i;

	for (i = 0; i < now->n && !stopping(); i++) {
		s = &now->v[i];
		changed(ch, name_of(now, s), s, find(old, s->key));
	}
	for (i = 0; i < old->n && !stopping(); i++)
		if (!find(now, old->v[i].key) &&
		    (!fs_d.opts.flat || old->v[i].def))
			secret_dir(ch, name_of(old, &old->v[i]), 0);
}

/* list_now until it succeeds: a listing that failed (the store busy or
 * away a moment) would otherwise drop this change's events, as no other
 * kick may follow. Every 50 ms, for at most 10 s; -1 when stopping or
 * still failing. */
static int list_again(struct listing *l, const struct listing *old)
{
	const struct timespec pause = {0, 50 * 1000 * 1000};
	int i;

	for (i = 0; i < 200 && !stopping(); i++) {
		if (list_now(l, old) == 0)
			return 0;
		nanosleep(&pause, NULL);
	}
	return -1;
}

/* Wait for a kick; 0 with the generation, -1 when stopping. */
static int wait_kick(uint64_t *seen)
{
	int rc;

	pthread_mutex_lock(&kick_lock);
	while (!stop && kicked == *seen)
		pthread_cond_wait(&kick_cond, &kick_lock);
	*seen = kicked;
	rc = stop ? -1 : 0;
	pthread_mutex_unlock(&kick_lock);
	return rc;
}

/* The helper, started by this thread: its PR_SET_PDEATHSIG follows the
 * thread, which ends only at unmount. */
static pid_t helper_start(int *ch)
{
	pid_t pid = fs_notify_helper_spawn(fs_d.opts.mountpoint, ch);

	if (pid < 0)
		fs_log("notify: cannot start the helper: %s: no inotify events",
		       strerror(errno));
	else
		fs_own_helper(pid);
	return pid;
}

static void *notifier(void *arg)
{
	struct listing a, b, t;
	uint64_t seen = 0;
	pid_t helper;
	int ch = -1, have, st;

	(void)arg;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	helper = helper_start(&ch);
	have = list_now(&a, NULL) == 0;
	if (have)
		served_known(&a);
	while (wait_kick(&seen) == 0) {
		if (list_again(&b, have ? &a : NULL))
			continue;
		if (have)
			diff(ch, &a, &b);
		served_known(&b);
		t = a;
		a = b;
		b = t;
		have = 1;
	}
	if (ch >= 0)
		close(ch); /* the helper reads the end and exits */
	if (helper > 0)
		waitpid(helper, &st, 0);
	free(a.v);
	free(a.names);
	free(b.v);
	free(b.names);
	return NULL;
}

void fs_notify_kick(uint64_t gen)
{
	pthread_mutex_lock(&kick_lock);
	kicked = gen;
	pthread_cond_signal(&kick_cond);
	pthread_mutex_unlock(&kick_lock);
}

int fs_notify_start(void)
{
	if (pthread_create(&thread, NULL, notifier, NULL))
		return -1;
	thread_started = 1;
	return 0;
}

/* Before the session goes: no poll notification after this. */
void fs_notify_stop(void)
{
	pthread_mutex_lock(&kick_lock);
	fs_poll_stop();
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&kick_cond);
	pthread_mutex_unlock(&kick_lock);
}

/* After the connection is gone (an operation in flight has failed). */
void fs_notify_join(void)
{
	if (thread_started)
		pthread_join(thread, NULL);
	thread_started = 0;
	fs_poll_fini();
}
