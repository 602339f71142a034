/*
 * The inode table: FUSE node ids for the tree's entries.
 *
 * A node is (kind, secret name, version, entry name) plus the kernel's
 * lookup count. Two hash maps index it: by inode number (every request)
 * and by key (lookups). Inode numbers come from a 64-bit counter and are
 * never reused, so a number is stable for a node's life and never names
 * two things. A node is freed when the kernel forgets its last lookup, so
 * memory follows what the kernel caches, not the size of the store. The
 * four fixed nodes (root, secrets/, keys/, .status) are never in the maps.
 *
 * A listing of 100k secrets, each stat'd, leaves 100k nodes: each is one
 * allocation (80 bytes for a short name: its names follow its fields, a
 * secret's own directory keeps its name once) plus about 8 bytes of
 * buckets, and keeps the poller's fingerprint of its secret (fuse_inval.c)
 * so that nothing else grows with the store.
 *
 * One mutex guards everything here; callers get copies (fs_node_get), so
 * a FORGET on another thread never frees memory a handler still reads.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_int.h"

struct fnode {
	uint64_t ino, parent, nlookup;
	uint64_t fp; /* the poller's fingerprint of the secret; 0: unknown */
	struct fnode *next_ino, *next_key;
	uint32_t version;
	int32_t writers;
	uint8_t kind, keyed;
	uint16_t name_at; /* the name: names + name_at */
	char names[];	  /* the secret's name, NUL, the entry's name, NUL */
};

/* The secret's and the entry's names, both in the node's one allocation;
 * a secret's own directory (name == secret) keeps one copy. */
#define N_SECRET(n) ((n)->names)
#define N_NAME(n)   ((n)->names + (n)->name_at)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fnode **by_ino, **by_key; /* lock */
static size_t nbuckets, count;		/* lock */
static uint64_t next_ino = FS_INO_FIRST_DYNAMIC;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		h = (h ^ *b++) * 0x100000001b3ULL;
	return h;
}

static size_t key_hash(int kind, const char *secret, uint32_t version,
		       const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = mix(h, &kind, sizeof(kind));
	h = mix(h, &version, sizeof(version));
	h = mix(h, secret, strlen(secret) + 1);
	h = mix(h, name, strlen(name) + 1);
	return (size_t)(h % nbuckets);
}

static size_t ino_hash(uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) % nbuckets);
}

static int key_eq(const struct fnode *n, int kind, const char *secret,
		  uint32_t version, const char *name)
{
	return n->kind == kind && n->version == version &&
	       !strcmp(N_SECRET(n), secret) && !strcmp(N_NAME(n), name);
}

void fs_node_init(void)
{
	nbuckets = 1024;
	by_ino = calloc(nbuckets, sizeof(*by_ino));
	by_key = calloc(nbuckets, sizeof(*by_key));
	if (!by_ino || !by_key)
		abort();
}

static void node_free(struct fnode *n)
{
	free(n);
}

void fs_node_fini(void)
{
	size_t i;
	struct fnode *n, *next;

	for (i = 0; i < nbuckets; i++)
		for (n = by_ino[i]; n; n = next) {
			next = n->next_ino;
			node_free(n);
		}
	free(by_ino);
	free(by_key);
	by_ino = by_key = NULL;
	count = 0;
}

/* Double the maps at two nodes a bucket (lock held): chains stay short
 * and the buckets cost 8 bytes a node. Failure is harmless. */
static void grow(void)
{
	size_t i, old = nbuckets;
	struct fnode **oi = by_ino, *n, *next;
	struct fnode **ni = calloc(old * 2, sizeof(*ni));
	struct fnode **nk = calloc(old * 2, sizeof(*nk));

	if (!ni || !nk) {
		free(ni);
		free(nk);
		return;
	}
	nbuckets = old * 2;
	by_ino = ni;
	free(by_key);
	by_key = nk;
	for (i = 0; i < old; i++)
		for (n = oi[i]; n; n = next) {
			size_t b = ino_hash(n->ino);

			next = n->next_ino;
			n->next_ino = by_ino[b];
			by_ino[b] = n;
			if (n->keyed) {
				b = key_hash(n->kind, N_SECRET(n), n->version,
					     N_NAME(n));
				n->next_key = by_key[b];
				by_key[b] = n;
			}
		}
	free(oi);
}

static struct fnode *find_key(int kind, const char *secret, uint32_t version,
			      const char *name)
{
	struct fnode *n = by_key[key_hash(kind, secret, version, name)];

	while (n && !key_eq(n, kind, secret, version, name))
		n = n->next_key;
	return n;
}

static struct fnode *find_ino(uint64_t ino)
{
	struct fnode *n = by_ino[ino_hash(ino)];

	while (n && n->ino != ino)
		n = n->next_ino;
	return n;
}

static void unhash_key(struct fnode *n)
{
	struct fnode **pp;

	if (!n->keyed)
		return;
	pp = &by_key[key_hash(n->kind, N_SECRET(n), n->version, N_NAME(n))];
	while (*pp != n)
		pp = &(*pp)->next_key;
	*pp = n->next_key;
	n->keyed = 0;
}

/* Take n out of the inode map (lock held). */
static void unhash_ino(struct fnode *n)
{
	struct fnode **pp = &by_ino[ino_hash(n->ino)];

	while (*pp != n)
		pp = &(*pp)->next_ino;
	*pp = n->next_ino;
}

static void hash_key(struct fnode *n)
{
	size_t b = key_hash(n->kind, N_SECRET(n), n->version, N_NAME(n));

	n->next_key = by_key[b];
	by_key[b] = n;
	n->keyed = 1;
}

/* A node holding copies of secret and name (lock held). */
static struct fnode *node_alloc(const char *secret, const char *name)
{
	size_t ls = strlen(secret) + 1, ln = strlen(name) + 1;
	int same = !strcmp(secret, name);
	struct fnode *n;

	if (ls > UINT16_MAX || ln > UINT16_MAX)
		return NULL;
	n = calloc(1, offsetof(struct fnode, names) + ls + (same ? 0 : ln));
	if (!n)
		return NULL;
	memcpy(n->names, secret, ls);
	n->name_at = (uint16_t)(same ? 0 : ls);
	if (!same)
		memcpy(n->names + ls, name, ln);
	return n;
}

static struct fnode *node_new(uint64_t parent, int kind, const char *secret,
			      uint32_t version, const char *name)
{
	struct fnode *n = node_alloc(secret, name);
	size_t b;

	if (!n)
		return NULL;
	if (count >= 2 * nbuckets)
		grow();
	n->ino = next_ino++;
	n->parent = parent;
	n->kind = (uint8_t)kind;
	n->version = version;
	b = ino_hash(n->ino);
	n->next_ino = by_ino[b];
	by_ino[b] = n;
	hash_key(n);
	count++;
	return n;
}

uint64_t fs_node_ref(uint64_t parent, int kind, const char *secret,
		     uint32_t version, const char *name)
{
	struct fnode *n;
	uint64_t ino = 0;

	switch (kind) {
	case FK_SECRETS:
		return FS_INO_SECRETS;
	case FK_KEYS:
		return FS_INO_KEYS;
	case FK_STATUS:
		return FS_INO_STATUS;
	}
	pthread_mutex_lock(&lock);
	n = find_key(kind, secret ? secret : "", version, name);
	if (!n)
		n = node_new(parent, kind, secret ? secret : "", version, name);
	if (n) {
		n->nlookup++;
		n->parent = parent;
		ino = n->ino;
	}
	pthread_mutex_unlock(&lock);
	return ino;
}

static int fixed_get(uint64_t ino, struct fs_node_info *out)
{
	static const int kinds[] = {0, FK_ROOT, FK_SECRETS, FK_KEYS, FK_STATUS};
	static const char *const names[] = {"", "", "secrets", "keys",
					    ".status"};

	memset(out, 0, sizeof(*out));
	out->ino = ino;
	out->parent = FS_INO_ROOT;
	out->kind = kinds[ino];
	strcpy(out->name, names[ino]);
	return 0;
}

int fs_node_get(uint64_t ino, struct fs_node_info *out)
{
	struct fnode *n;
	int rc = FS_ENOENT;

	if (ino >= FS_INO_ROOT && ino <= FS_INO_STATUS)
		return fixed_get(ino, out);
	pthread_mutex_lock(&lock);
	n = find_ino(ino);
	if (n) {
		out->ino = n->ino;
		out->parent = n->parent;
		out->kind = n->kind;
		out->version = n->version;
		out->writers = n->writers;
		strncpy(out->secret, N_SECRET(n), sizeof(out->secret) - 1);
		out->secret[sizeof(out->secret) - 1] = '\0';
		strncpy(out->name, N_NAME(n), sizeof(out->name) - 1);
		out->name[sizeof(out->name) - 1] = '\0';
		rc = 0;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

/* Free n once neither the kernel nor a write handle needs it (lock
 * held). */
static void maybe_free(struct fnode *n)
{
	if (n->nlookup || n->writers)
		return;
	unhash_key(n);
	unhash_ino(n);
	count--;
	node_free(n);
}

void fs_node_forget(uint64_t ino, uint64_t nl)
{
	struct fnode *n;

	if (ino < FS_INO_FIRST_DYNAMIC)
		return;
	pthread_mutex_lock(&lock);
	n = find_ino(ino);
	if (n) {
		n->nlookup = n->nlookup > nl ? n->nlookup - nl : 0;
		maybe_free(n);
	}
	pthread_mutex_unlock(&lock);
}

void fs_node_writers(uint64_t ino, int delta)
{
	struct fnode *n;

	pthread_mutex_lock(&lock);
	n = find_ino(ino);
	if (n) {
		n->writers += delta;
		maybe_free(n);
	}
	pthread_mutex_unlock(&lock);
}

uint64_t fs_node_find(int kind, const char *secret, uint32_t version,
		      const char *name)
{
	struct fnode *n;
	uint64_t ino;

	pthread_mutex_lock(&lock);
	n = find_key(kind, secret, version, name);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&lock);
	return ino;
}

/* The names live in the node's allocation: a new name is a new node with
 * the same inode number, lookups and writers (nobody holds a pointer to a
 * node outside the lock). */
void fs_node_retarget(uint64_t ino, int kind, uint32_t version,
		      const char *name)
{
	struct fnode *n, *old, *m = NULL;

	pthread_mutex_lock(&lock);
	n = find_ino(ino);
	if (n)
		m = node_alloc(N_SECRET(n), name);
	if (m) {
		unhash_key(n);
		/* The node the kernel just replaced stays reachable by its
		 * inode number until forgotten, but lookups find this one. */
		old = find_key(kind, N_SECRET(n), version, name);
		if (old)
			unhash_key(old);
		unhash_ino(n);
		m->ino = n->ino;
		m->parent = n->parent;
		m->nlookup = n->nlookup;
		m->writers = n->writers;
		m->kind = (uint8_t)kind;
		m->version = version;
		m->next_ino = by_ino[ino_hash(m->ino)];
		by_ino[ino_hash(m->ino)] = m;
		hash_key(m);
		node_free(n);
	}
	pthread_mutex_unlock(&lock);
}

static int snap_match(const struct fnode *n, const char *secret, int skip)
{
	return !strcmp(N_SECRET(n), secret) && n->kind != skip;
}

/* Append node n to the array *v of *k entries (room for *cap): 0, or -1
 * when memory runs out. */
static int snap_push(struct fs_node_ent **v, size_t *k, size_t *cap,
		     const struct fnode *n)
{
	struct fs_node_ent *e;

	if (*k == *cap) {
		size_t c = *cap ? *cap * 2 : 16;

		if (!(e = realloc(*v, c * sizeof(*e))))
			return -1;
		*v = e;
		*cap = c;
	}
	e = &(*v)[(*k)++];
	e->ino = n->ino;
	e->parent = n->parent;
	e->kind = n->kind;
	strncpy(e->name, N_NAME(n), 255);
	e->name[255] = '\0';
	return 0;
}

/* The array grows with the matches, not to one entry per cached node.
 * NULL with 0 when memory runs out. */
size_t fs_node_snapshot_secret(const char *secret, int skip,
			       struct fs_node_ent **out)
{
	struct fs_node_ent *v = NULL;
	size_t i, k = 0, cap = 0;
	struct fnode *n;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nbuckets; i++)
		for (n = by_ino[i]; n; n = n->next_ino)
			if (snap_match(n, secret, skip) &&
			    snap_push(&v, &k, &cap, n))
				goto oom;
	pthread_mutex_unlock(&lock);
	*out = v;
	return k;
oom:
	pthread_mutex_unlock(&lock);
	free(v);
	*out = NULL;
	return 0;
}

size_t fs_node_count(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = count;
	pthread_mutex_unlock(&lock);
	return n;
}

/* Does node n need invalidating, given the store's fingerprints (lock
 * held)? Remembers the new fingerprint. */
static int fp_moved(struct fnode *n, fs_fp_now_fn now, void *arg, int all)
{
	uint64_t fp;

	if (!n->names[0]) /* keys/NAME: only when keys change */
		return all;
	fp = now && !all ? now(arg, fs_name_hash(N_SECRET(n))) : 0;
	if (!all && fp && fp == n->fp)
		return 0;
	n->fp = fp;
	return 1;
}

size_t fs_node_fp_update(fs_fp_now_fn now, void *arg, int all, uint64_t **out)
{
	size_t i, k = 0;
	struct fnode *n;

	pthread_mutex_lock(&lock);
	*out = malloc((count ? count : 1) * sizeof(**out));
	for (i = 0; *out && i < nbuckets; i++)
		for (n = by_ino[i]; n; n = n->next_ino)
			if (fp_moved(n, now, arg, all))
				(*out)[k++] = n->ino;
	pthread_mutex_unlock(&lock);
	return k;
}
