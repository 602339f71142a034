/*
 * What the poller drops from the kernel's caches when the store changes.
 *
 * The generation says that something changed, not what. Invalidating
 * every node the kernel holds costs one notification each (several
 * microseconds: a write to the device and the kernel's inode lock), which
 * with thousands of cached nodes and a change every few milliseconds
 * (a rotating store, files pinned by inotify watches) takes the daemon's
 * whole CPU, and with tens of thousands outlasts the 0.2 s a
 * cache=kernel writer waits. So, once more than INVAL_ALL_MAX nodes are
 * cached and they are not few against the store's size at the last
 * listing, the poller lists the secrets once at a change and
 * takes per secret name a fingerprint of its record (id, changed_at and
 * the fields that shape its files: the core sets changed_at at every
 * change of the secret or of one of its versions). Each node remembers
 * its secret's fingerprint from the last change (fuse_node.c); only the
 * nodes whose fingerprint moved, is gone or was not known yet are
 * invalidated. With few nodes cached it drops them all (cheaper than a
 * listing of the store) and forgets the fingerprints. The four fixed
 * nodes (listing, .status) are dropped every time. KMS keys are not part
 * of a secret's record: when any key changes (state, rotation,
 * deletion), or a listing fails, or there is no earlier listing to
 * compare with, every node is invalidated.
 *
 * Memory: the store's fingerprints live only while a change is handled
 * (64-bit FNV-1a hashes in an open-addressing table, 16 bytes a slot,
 * freed at once); what stays is 8 bytes in each cached node, so the
 * daemon's memory follows what the kernel caches, not the store's size.
 * Only the poller thread runs this file.
 */
#include <stdlib.h>
#include <string.h>

#include "fuse_int.h"
#include "secretfs/keys.h"
#include "secretfs/secret.h"

#define FNV_SEED 0xcbf29ce484222325ULL

struct fpmap {
	uint64_t *key, *val; /* key 0: empty slot */
	size_t cap, n;
};

static uint64_t cur_keys; /* poller thread: keys at the last listing */
static int have_keys;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h;
}

uint64_t fs_name_hash(const char *name)
{
	uint64_t h = fnv(FNV_SEED, name, strlen(name));

	return h ? h : 1;
}

static void map_free(struct fpmap *m)
{
	free(m->key);
	free(m->val);
	memset(m, 0, sizeof(*m));
}

static size_t map_slot(const struct fpmap *m, uint64_t k)
{
	size_t i = (size_t)(k * 0x9e3779b97f4a7c15ULL) & (m->cap - 1);

	while (m->key[i] && m->key[i] != k)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int map_put(struct fpmap *m, uint64_t k, uint64_t v);

static int map_grow(struct fpmap *m)
{
	struct fpmap g = {NULL, NULL, m->cap ? m->cap * 2 : 1024, 0};
	size_t i;

	g.key = calloc(g.cap, sizeof(*g.key));
	g.val = calloc(g.cap, sizeof(*g.val));
	if (!g.key || !g.val) {
		map_free(&g);
		return -1;
	}
	for (i = 0; i < m->cap; i++)
		if (m->key[i])
			map_put(&g, m->key[i], m->val[i]);
	map_free(m);
	*m = g;
	return 0;
}

static int map_put(struct fpmap *m, uint64_t k, uint64_t v)
{
	size_t i;

	if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m))
		return -1;
	i = map_slot(m, k);
	if (!m->key[i])
		m->n++;
	m->key[i] = k;
	m->val[i] = v;
	return 0;
}

/* fs_fp_now_fn over a map: k's fingerprint, 0 when k is not in it. */
static uint64_t map_get(void *arg, uint64_t k)
{
	const struct fpmap *m = arg;
	size_t i;

	if (!m->cap)
		return 0;
	i = map_slot(m, k);
	return m->key[i] ? m->val[i] : 0;
}

static int secret_cb(void *arg, const struct sfs_secret_rec *r)
{
	uint64_t h = fnv(FNV_SEED, r->id, strlen(r->id));

	h = fnv(h, &r->changed_at, sizeof(r->changed_at));
	h = fnv(h, &r->default_version, sizeof(r->default_version));
	h = fnv(h, &r->status, sizeof(r->status));
	h = fnv(h, &r->mode, sizeof(r->mode));
	h = fnv(h, &r->owner, sizeof(r->owner));
	h = fnv(h, &r->group, sizeof(r->group));
	h = fnv(h, &r->access_control, sizeof(r->access_control));
	h = fnv(h, r->allowed, strlen(r->allowed));
	h = fnv(h, r->kms_key_id, strlen(r->kms_key_id));
	h = h ? h : 1; /* 0: gone or unknown */
	return map_put(arg, fs_name_hash(r->name), h) ? SFS_ENOMEM : 0;
}

static int key_cb(void *arg, const struct sfs_key_rec *k)
{
	uint64_t *h = arg;

	*h = fnv(*h, k->id, strlen(k->id) + 1);
	*h = fnv(*h, &k->state, sizeof(k->state));
	*h = fnv(*h, &k->current_version, sizeof(k->current_version));
	return 0;
}

/* The store as it is now: 0, or -1 when it could not be listed. */
static int scan(struct fpmap *m, uint64_t *keys)
{
	struct sfs_error err = {0};

	*keys = FNV_SEED;
	if (fs_noted(sfs_key_list(fs_d.ctx, &fs_d.meta, key_cb, keys, &err),
		     &err))
		return -1;
	if (map_grow(m) ||
	    fs_noted(sfs_secret_list(fs_d.ctx, &fs_d.meta, secret_cb, m, &err),
		     &err))
		return -1;
	return 0;
}

static void inval(uint64_t ino)
{
	fuse_lowlevel_notify_inval_inode(fs_d.se, ino, 0, 0);
}

/*
 * Listing costs about a microsecond per secret in the store; an
 * invalidation several per node the kernel caches (a write to the
 * device, the kernel's inode lock). So drop every node when few are
 * cached (INVAL_ALL_MAX) or when they are few against the store's size
 * at the last listing (INVAL_LIST_RATIO); otherwise list and drop only
 * the nodes of the secrets that moved.
 */
#define INVAL_ALL_MAX	 64
#define INVAL_LIST_RATIO 4

static size_t last_secrets; /* poller thread: 0 before the first listing */

static int worth_listing(size_t nodes)
{
	return nodes > INVAL_ALL_MAX &&
	       (!last_secrets || nodes * INVAL_LIST_RATIO >= last_secrets);
}

/* Few nodes cached: drop them all and forget the fingerprints (the next
 * diff starts from a fresh listing). Many: list the store and drop the
 * nodes of the secrets that moved. */
void fs_inval_changed(void)
{
	struct fpmap now = {NULL, NULL, 0, 0};
	uint64_t keys = 0, *v;
	size_t i, n;
	fuse_ino_t fixed;
	int ok = 0, all = 1;

	for (fixed = FS_INO_ROOT; fixed <= FS_INO_STATUS; fixed++)
		inval(fixed);
	if (worth_listing(fs_node_count())) {
		ok = scan(&now, &keys) == 0;
		all = !ok || !have_keys || keys != cur_keys;
		if (ok)
			last_secrets = now.n;
	}
	n = fs_node_fp_update(ok ? map_get : NULL, &now, all, &v);
	map_free(&now);
	cur_keys = keys;
	have_keys = ok;
	for (i = 0; i < n && !fs_d.stopping; i++)
		inval(v[i]);
	free(v);
}
