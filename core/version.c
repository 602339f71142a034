/*
 * Versions: add, read, list, set default, activate, deactivate, destroy,
 * copy.
 *
 * Envelope encryption: each version gets a fresh random data key, wrapped
 * by the current key version of its secret's KMS key; the value is sealed
 * under the data key. Both blobs are bound to (store id, secret id,
 * version, key id, key version), so a blob edited, moved or swapped fails
 * authentication (SFS_EBADMSG) and yields nothing.
 *
 * Reads take the lock only to gather the records, the blobs and the KMS
 * material; decryption runs after the lock is released so that readers
 * proceed in parallel. Every read is audited, allowed or refused, and a
 * read whose audit line cannot be written fails with SFS_EIO. The read
 * handles of one version share one decrypted buffer (sfs_version_open),
 * bounded in all by SFS_SHARED_MAX.
 *
 * The automatic effects of a state change (a new default, a secret
 * deactivated when no active version remains) come from the policy
 * (sfs_policy_effects), applied here with the change.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "secretfs/audit.h"
#include "secretfs/policy.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

void sfs_value_release(struct sfs_value *v)
{
	if (!v)
		return;
	sfs_crypto_free_secret(v->data, v->len);
	v->data = NULL;
	v->len = 0;
}

/* A record without its blobs, for handing out. */
static void rec_copy_bare(struct sfs_version_rec *dst,
			  const struct sfs_version_rec *src)
{
	*dst = *src;
	memset(&dst->wrapped_dek, 0, sizeof(dst->wrapped_dek));
	memset(&dst->ciphertext, 0, sizeof(dst->ciphertext));
}

static void binding_of(struct sfs_ctx *ctx, const struct sfs_version_rec *v,
		       struct sfs_binding *b)
{
	b->store_id = ctx->store_id;
	b->secret_id = v->secret_id;
	b->version = v->version;
	b->key_id = v->kms_key_id;
	b->key_version = v->kms_key_version;
}

/* ---- add ---------------------------------------------------------------- */

/* Seal value under a fresh data key into v's blobs. */
static int seal_into(struct sfs_ctx *ctx, struct sfs_version_rec *v,
		     const void *value, size_t len, struct sfs_error *err)
{
	unsigned char material[SFS_KEY_BYTES], dek[SFS_KEY_BYTES];
	struct sfs_binding b;
	size_t ct_len = sfs_crypto_sealed_len(len);
	int rc;

	binding_of(ctx, v, &b);
	v->wrapped_dek.data = malloc(SFS_WRAPPED_KEY_BYTES);
	v->ciphertext.data = malloc(ct_len);
	if (!v->wrapped_dek.data || !v->ciphertext.data)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	v->wrapped_dek.len = SFS_WRAPPED_KEY_BYTES;
	v->ciphertext.len = ct_len;
	rc = ctx_kms_material(ctx, v->kms_key_id, v->kms_key_version, material,
			      err);
	if (rc != SFS_OK)
		return rc;
	sfs_crypto_random(dek, sizeof(dek));
	rc = sfs_crypto_dek_wrap(material, &b, dek, v->wrapped_dek.data);
	if (rc == SFS_OK)
		rc = sfs_crypto_value_seal(dek, &b, value, len,
					   v->ciphertext.data);
	sfs_crypto_wipe(material, sizeof(material));
	sfs_crypto_wipe(dek, sizeof(dek));
	if (rc != SFS_OK)
		return sfs_error_set(err, rc, "cannot seal the value");
	return SFS_OK;
}

int ctx_version_insert(struct sfs_ctx *ctx, const struct sfs_caller *c,
		       struct sfs_secret_rec *s, const struct sfs_key_rec *k,
		       const void *value, size_t len,
		       struct sfs_version_rec *out, struct sfs_error *err)
{
	struct sfs_version_rec v;
	int rc;

	memset(&v, 0, sizeof(v));
	ctx_strlcpy(v.secret_id, s->id, sizeof(v.secret_id));
	v.version = s->latest_version + 1;
	v.state = SFS_STATE_ACTIVE;
	v.created_at = sfs_time_now();
	sfs_principal_describe(c->uid, v.created_by, sizeof(v.created_by));
	ctx_strlcpy(v.kms_key_id, k->id, sizeof(v.kms_key_id));
	v.kms_key_version = k->current_version;
	v.size = (uint32_t)len;
	v.format = sfs_value_format(value, len);
	rc = seal_into(ctx, &v, value, len, err);
	if (rc == SFS_OK)
		rc = sfs_store_version_insert(ctx->store, &v, err);
	if (rc == SFS_OK) {
		s->latest_version = v.version;
		s->default_version = v.version;
		s->changed_at = v.created_at;
		rc = sfs_store_secret_update(ctx->store, s, err);
	}
	if (rc == SFS_OK && out)
		rec_copy_bare(out, &v);
	sfs_version_rec_release(&v);
	return rc;
}

/* An added version (add, copy) as the runner carries it. */
struct add_change {
	const char *op;
	const char *name; /* as the caller named the secret */
	uint32_t n;	  /* copy: the version copied */
	uint32_t expect;  /* add: the version expected, 0: any */
	const void *value;
	size_t len;
	int copy;		/* version.copy: the value is owned */
	struct sfs_value owned; /* copy: version n's value, decrypted */
	struct sfs_secret_rec s;
	struct sfs_key_rec k;
	struct sfs_version_rec v; /* the new version */
	char id[SFS_ID_MAX + 1];
};

/* Lock held: load the secret and its key, the state of adding. */
static int add_gather(struct sfs_ctx *ctx, struct ctx_change *ch,
		      struct sfs_policy_state *st, struct sfs_error *err)
{
	struct add_change *ac = ch->arg;
	int rc;

	rc = ctx_secret_load(ctx, ac->name, &ac->s, err);
	if (rc != SFS_OK)
		return rc;
	st->secret = &ac->s;
	rc = ctx_key_state(ctx, ac->s.kms_key_id, st, &ac->k, err);
	st->value_len = ac->len;
	st->expect = ac->expect;
	ch->about = sfs_object_secret(ac->s.name);
	return rc;
}

static int add_apply(struct sfs_ctx *ctx, struct ctx_change *ch,
		     const struct sfs_policy_state *st, struct sfs_error *err)
{
	struct add_change *ac = ch->arg;

	(void)st;
	if (!ac->copy && !ac->value) /* only with len over the limit */
		return sfs_error_set(err, SFS_EFBIG, "value too large");
	return ctx_version_insert(ctx, ch->c, &ac->s, &ac->k, ac->value,
				  ac->len, &ac->v, err);
}

/* The line of a change of secret name (s once read), version n. */
static void version_line(struct sfs_ctx *ctx, const char *op,
			 const struct sfs_secret_rec *s, const char *name,
			 uint32_t n, int rc, char id[SFS_ID_MAX + 1],
			 struct ctx_audit_line *l)
{
	struct ctx_audit_line line = {
	    op, s->name[0] ? s->name : name, s->id, NULL, n, rc, 1};

	if (!s->id[0] && rc != SFS_OK) { /* refused before it was read */
		ctx_secret_id(ctx, name, id);
		line.secret_id = id;
	}
	*l = line;
}

/* The line names the new version, or the one asked about. */
static void add_line(struct sfs_ctx *ctx, struct ctx_change *ch, int rc,
		     struct ctx_audit_line *l)
{
	struct add_change *ac = ch->arg;
	uint32_t n = ac->n;

	if (!ac->copy)
		n = rc == SFS_OK ? ac->v.version : ac->expect;
	version_line(ctx, ac->op, &ac->s, ac->name, n, rc, ac->id, l);
}

int sfs_version_can_add(struct sfs_ctx *ctx, const struct sfs_caller *c,
			const char *name, uint32_t expect,
			struct sfs_error *err)
{
	/* a length of 1 passes the length rule: the value is not known yet */
	static const struct ctx_change_ops ops = {.gather = add_gather};
	struct add_change ac = {.name = name, .expect = expect, .len = 1};
	struct ctx_change ch = {
	    .act = SFS_ACT_VERSION_ADD, .c = c, .ops = &ops, .arg = &ac};

	sfs_error_clear(err);
	return ctx_change_ask(ctx, &ch, err);
}

/* ---- read --------------------------------------------------------------- */

/* The refusal rc of a read of version n (0: the default, which there
 * is none of when rc is SFS_ENOENT; st is not read then) of the secret
 * name. */
static int read_refused(struct sfs_error *err,
			const struct sfs_policy_state *st, const char *name,
			uint32_t n, int rc)
{
	struct sfs_object o = rc == SFS_ENOENT && !n
				  ? sfs_object_secret(name)
				  : sfs_object_version(name, n);

	if (rc == SFS_ENOENT && !n)
		return sfs_error_about(err, rc, &o, "no default version");
	return ctx_refuse_on(err, SFS_ACT_VALUE_READ, rc, st, &o);
}

/*
 * Lock held: load the secret and version n (0: default) with a reference
 * to its blobs, ask about reading it, and fetch the KMS material that
 * wraps it. From the cache or the store (see internal.h): CTX_MISS asks
 * the caller to run it again with the store.
 */
static int read_gather(struct sfs_ctx *ctx, const struct sfs_caller *c,
		       const char *name, uint32_t n, struct sfs_secret_rec *s,
		       struct sfs_version_rec *v, struct ctx_blobs **b,
		       unsigned char material[SFS_KEY_BYTES],
		       struct sfs_error *err)
{
	struct sfs_policy_state st;
	struct sfs_key_rec k;
	int rc;

	ctx_blobs_put(*b);
	*b = NULL;
	rc = ctx_secret_load(ctx, name, s, err);
	if (rc != SFS_OK)
		return rc;
	ctx_state_init(ctx, &st);
	st.secret = s;
	if (!n)
		n = s->default_version;
	memset(v, 0, sizeof(*v));
	rc = n ? ctx_version_load(ctx, s->id, n, v, b, err) : SFS_ENOENT;
	if (rc == SFS_OK) {
		st.version_exists = 1;
		st.version_state = v->state;
		rc = ctx_key_state(ctx, v->kms_key_id, &st, &k, err);
	} else if (rc == SFS_ENOENT) {
		sfs_error_clear(err);
		v->version = n;
		rc = SFS_OK;
	}
	if (rc != SFS_OK)
		return rc;
	rc = sfs_policy_check(SFS_ACT_VALUE_READ, c, &st);
	if (rc == SFS_OK && !st.version_exists)
		rc = SFS_ENOENT; /* the policy asks about existing versions */
	if (rc != SFS_OK)
		return read_refused(err, &st, s->name, n, rc);
	return ctx_kms_material(ctx, v->kms_key_id, v->kms_key_version,
				material, err);
}

/* No lock: open the data key and the value; both must authenticate and
 * the value must have the recorded size. */
static int read_decrypt(struct sfs_ctx *ctx, const struct sfs_secret_rec *s,
			const struct sfs_version_rec *v,
			const struct ctx_blobs *bl,
			const unsigned char material[SFS_KEY_BYTES],
			struct sfs_value *out, struct sfs_error *err)
{
	unsigned char dek[SFS_KEY_BYTES];
	struct sfs_binding b;
	struct sfs_object o;
	size_t cap, len = 0;
	int rc = SFS_EBADMSG;

	binding_of(ctx, v, &b);
	out->data = NULL;
	out->len = 0;
	if (!bl || bl->ct_len < SFS_ENVELOPE_OVERHEAD)
		goto out;
	cap = bl->ct_len - SFS_ENVELOPE_OVERHEAD;
	out->data = malloc(cap ? cap : 1);
	if (!out->data)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	out->len = cap;
	rc = sfs_crypto_dek_unwrap(material, &b, bl->dek, bl->dek_len, dek);
	if (rc == SFS_OK)
		rc = sfs_crypto_value_open(dek, &b, bl->ct, bl->ct_len,
					   out->data, &len);
	sfs_crypto_wipe(dek, sizeof(dek));
	if (rc == SFS_OK && len != v->size)
		rc = SFS_EBADMSG;
out:
	if (rc != SFS_OK) {
		sfs_value_release(out);
		o = sfs_object_version(s->name, v->version);
		return sfs_error_about(err, SFS_EBADMSG, &o,
				       "stored data failed authentication "
				       "(tampered or corrupt)");
	}
	out->len = len;
	return SFS_OK;
}

/* Gather under the lock, from the cache when it has everything. */
static int read_locked(struct sfs_ctx *ctx, const struct sfs_caller *c,
		       const char *name, uint32_t n, struct sfs_secret_rec *s,
		       struct sfs_version_rec *v, struct ctx_blobs **b,
		       unsigned char material[SFS_KEY_BYTES],
		       struct sfs_error *err)
{
	int rc = ctx_read_lock(ctx, err);

	if (rc == SFS_OK)
		rc = read_gather(ctx, c, name, n, s, v, b, material, err);
	if (rc == CTX_MISS && (rc = ctx_read_fill(ctx, err)) == SFS_OK)
		rc = read_gather(ctx, c, name, n, s, v, b, material, err);
	return ctx_read_unlock(ctx, rc, err);
}

/* ---- shared plaintext --------------------------------------------------- */

/*
 * The read handles of one version share one decrypted buffer
 * (sfs_version_open): refcounted, wiped when the last handle lets go. An
 * entry serves only the same context, binding and byte-identical blobs
 * (it holds a reference to the blobs it decrypted), so a changed,
 * rewrapped or tampered version is decrypted anew and checked again.
 * Every open still asks the policy and writes its audit line; only the
 * decryption is shared. SFS_SHARED_MAX bytes are held at most in all.
 */
struct sfs_value_ref {
	struct sfs_value_ref *next;
	const struct sfs_ctx *ctx;
	struct ctx_blobs *blobs;
	char secret_id[SFS_ID_MAX + 1], key_id[SFS_ID_MAX + 1];
	uint32_t version, key_version;
	int refs; /* share_lock */
	struct sfs_value val;
};

static pthread_mutex_t share_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sfs_value_ref *share_list; /* share_lock */
static size_t share_total;		 /* share_lock: bytes held */

static int share_same(const struct sfs_value_ref *e, const struct sfs_ctx *ctx,
		      const struct sfs_version_rec *v,
		      const struct ctx_blobs *b)
{
	const struct ctx_blobs *eb = e->blobs;

	if (e->ctx != ctx || e->version != v->version ||
	    e->key_version != v->kms_key_version ||
	    strcmp(e->secret_id, v->secret_id) ||
	    strcmp(e->key_id, v->kms_key_id))
		return 0;
	return eb == b ||
	       (eb->dek_len == b->dek_len && eb->ct_len == b->ct_len &&
		!memcmp(eb->dek, b->dek, b->dek_len) &&
		!memcmp(eb->ct, b->ct, b->ct_len));
}

/* share_lock held: a new reference to a matching entry, or NULL. */
static struct sfs_value_ref *share_find(const struct sfs_ctx *ctx,
					const struct sfs_version_rec *v,
					const struct ctx_blobs *b)
{
	struct sfs_value_ref *e;

	for (e = share_list; e; e = e->next)
		if (share_same(e, ctx, v, b)) {
			e->refs++;
			return e;
		}
	return NULL;
}

static void share_free(struct sfs_value_ref *e)
{
	sfs_value_release(&e->val);
	ctx_blobs_put(e->blobs);
	free(e);
}

/* share_lock held: add fresh (decrypted from b) unless the total cap is
 * reached; takes a reference to b. */
static int share_add(struct sfs_value_ref *fresh, const struct sfs_ctx *ctx,
		     const struct sfs_version_rec *v, struct ctx_blobs *b)
{
	if (fresh->val.len > SFS_SHARED_MAX - share_total)
		return SFS_ENOMEM;
	fresh->ctx = ctx;
	fresh->blobs = b;
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
	snprintf(fresh->secret_id, sizeof(fresh->secret_id), "%s",
		 v->secret_id);
	snprintf(fresh->key_id, sizeof(fresh->key_id), "%s", v->kms_key_id);
	fresh->version = v->version;
	fresh->key_version = v->kms_key_version;
	fresh->refs = 1;
	fresh->next = share_list;
	share_list = fresh;
	share_total += fresh->val.len;
	return SFS_OK;
}

/* No lock: the shared plaintext of v, decrypting it if no handle holds
 * it yet. */
static int share_get(struct sfs_ctx *ctx, const struct sfs_secret_rec *s,
		     const struct sfs_version_rec *v, struct ctx_blobs *b,
		     const unsigned char material[SFS_KEY_BYTES],
		     struct sfs_value_ref **out, struct sfs_error *err)
{
	struct sfs_value_ref *fresh = NULL;
	int rc = SFS_OK;

	if (b) { /* without blobs the decryption below fails */
		pthread_mutex_lock(&share_lock);
		*out = share_find(ctx, v, b);
		pthread_mutex_unlock(&share_lock);
		if (*out)
			return SFS_OK;
	}
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return sfs_error_set(err, SFS_ENOMEM, "out of memory");
	rc = read_decrypt(ctx, s, v, b, material, &fresh->val, err);
	if (rc == SFS_OK) {
		pthread_mutex_lock(&share_lock);
		*out = share_find(ctx, v, b); /* another open got there first */
		if (!*out && (rc = share_add(fresh, ctx, v, b)) == SFS_OK)
			*out = fresh;
		pthread_mutex_unlock(&share_lock);
	}
	if (*out != fresh)
		share_free(fresh); /* not added: holds no blobs */
	if (rc == SFS_ENOMEM)
		return sfs_error_set(err, rc,
				     "decrypted values held by open "
				     "handles reach %zu MiB",
				     (size_t)(SFS_SHARED_MAX >> 20));
	return rc;
}

void sfs_value_unref(struct sfs_value_ref *r)
{
	struct sfs_value_ref **p;
	int last;

	if (!r)
		return;
	pthread_mutex_lock(&share_lock);
	last = --r->refs == 0;
	if (last) {
		for (p = &share_list; *p != r; p = &(*p)->next)
			;
		*p = r->next;
		share_total -= r->val.len;
	}
	pthread_mutex_unlock(&share_lock);
	if (last)
		share_free(r);
}

const struct sfs_value *sfs_value_of(const struct sfs_value_ref *r)
{
	return &r->val;
}

/* ---- read entry points -------------------------------------------------- */

/* Gather, decrypt (into out, or shared into *ref when ref is set),
 * audit. */
static int read_audited(struct sfs_ctx *ctx, const struct sfs_caller *c,
			const char *name, uint32_t n, struct sfs_value *out,
			struct sfs_value_ref **ref,
			struct sfs_version_rec *info, struct sfs_error *err)
{
	unsigned char material[SFS_KEY_BYTES];
	struct sfs_version_rec v;
	struct sfs_secret_rec s;
	struct ctx_blobs *b = NULL;
	struct ctx_audit_line l = {"version.read", name, NULL, NULL, n, 0, 0};
	int rc;

	sfs_error_clear(err);
	memset(&s, 0, sizeof(s));
	memset(&v, 0, sizeof(v));
	rc = read_locked(ctx, c, name, n, &s, &v, &b, material, err);
	if (rc == SFS_OK && ref)
		rc = share_get(ctx, &s, &v, b, material, ref, err);
	else if (rc == SFS_OK)
		rc = read_decrypt(ctx, &s, &v, b, material, out, err);
	sfs_crypto_wipe(material, sizeof(material));
	ctx_blobs_put(b);
	if (s.name[0]) {
		l.secret = s.name;
		l.secret_id = s.id;
	}
	l.version = v.version ? v.version : n;
	l.result = rc;
	if (ctx_audit(ctx, c, &l) != SFS_OK && rc == SFS_OK) {
		sfs_value_release(out);
		if (ref) {
			sfs_value_unref(*ref);
			*ref = NULL;
		}
		rc = sfs_error_set(err, SFS_EIO,
				   "cannot write the audit log: read refused");
	}
	if (rc == SFS_OK && info)
		*info = v;
	return rc;
}

int sfs_version_read(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, uint32_t n, struct sfs_value *out,
		     struct sfs_version_rec *info, struct sfs_error *err)
{
	out->data = NULL;
	out->len = 0;
	return read_audited(ctx, c, name, n, out, NULL, info, err);
}

int sfs_version_open(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, uint32_t n, struct sfs_value_ref **out,
		     struct sfs_error *err)
{
	struct sfs_value none = {NULL, 0}; /* the plaintext goes to *out */

	*out = NULL;
	return read_audited(ctx, c, name, n, &none, out, NULL, err);
}

/* ---- details ------------------------------------------------------------ */

/* Lock held: the secret, if the caller may see all of it. */
static int view_check(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *name, struct sfs_secret_rec *s,
		      struct sfs_error *err)
{
	struct sfs_policy_state st;
	struct sfs_object o;
	int rc;

	rc = ctx_secret_load(ctx, name, s, err);
	if (rc != SFS_OK)
		return rc;
	ctx_state_init(ctx, &st);
	st.secret = s;
	rc = sfs_policy_check(SFS_ACT_SECRET_VIEW, c, &st);
	if (rc == SFS_OK)
		return SFS_OK;
	o = sfs_object_secret(s->name);
	return ctx_refuse_on(err, SFS_ACT_SECRET_VIEW, rc, &st, &o);
}

/* Lock held: the caller may see secret name; version n (0: default). */
static int info_gather(struct sfs_ctx *ctx, const struct sfs_caller *c,
		       const char *name, uint32_t n,
		       struct sfs_version_rec *out, struct sfs_error *err)
{
	struct sfs_secret_rec s;
	struct sfs_object o;
	int rc;

	rc = view_check(ctx, c, name, &s, err);
	if (rc != SFS_OK)
		return rc;
	if (!n && !(n = s.default_version))
		return read_refused(err, NULL, s.name, 0, SFS_ENOENT);
	rc = ctx_version_load(ctx, s.id, n, out, NULL, err);
	if (rc == SFS_ENOENT) {
		o = sfs_object_version(s.name, n);
		sfs_error_about(err, rc, &o, "no such version");
	}
	return rc;
}

int sfs_version_info(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, uint32_t n, struct sfs_version_rec *out,
		     struct sfs_error *err)
{
	int rc;

	sfs_error_clear(err);
	rc = ctx_read_lock(ctx, err);
	if (rc == SFS_OK)
		rc = info_gather(ctx, c, name, n, out, err);
	if (rc == CTX_MISS && (rc = ctx_read_fill(ctx, err)) == SFS_OK)
		rc = info_gather(ctx, c, name, n, out, err);
	return ctx_read_unlock(ctx, rc, err);
}

struct versions_acc {
	struct ctx_array a;
	int all;
	const char *name;
};

static int versions_collect(void *arg, const struct sfs_version_rec *v)
{
	struct versions_acc *acc = arg;
	struct sfs_version_rec *slot;

	if (!acc->all && v->state == SFS_STATE_DESTROYED)
		return 0;
	slot = ctx_array_push(&acc->a, sizeof(*slot));
	if (!slot)
		return SFS_ENOMEM;
	rec_copy_bare(slot, v);
	return 0;
}

/* Lock held: the versions of a secret the caller may see. */
static int versions_gather(struct sfs_ctx *ctx, const struct sfs_caller *c,
			   void *arg, struct sfs_error *err)
{
	struct versions_acc *acc = arg;
	struct sfs_secret_rec s;
	int rc = view_check(ctx, c, acc->name, &s, err);

	if (rc == SFS_OK)
		rc = sfs_store_version_list(ctx->store, s.id, versions_collect,
					    acc, err);
	return rc;
}

/* The callback runs after the lock is released, so it may call back
 * into the context. */
int sfs_version_list(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, int all, sfs_version_cb cb, void *arg,
		     struct sfs_error *err)
{
	struct versions_acc acc = {{NULL, 0}, all, name};
	const struct sfs_version_rec *v;
	size_t i;
	int rc = ctx_read_run(ctx, c, versions_gather, &acc, err);

	for (i = 0, v = acc.a.v; rc == SFS_OK && i < acc.a.n; i++)
		rc = cb(arg, &v[i]);
	free(acc.a.v);
	return rc;
}

/* ---- default and states ------------------------------------------------ */

/*
 * Lock held, write transaction open: ask about act on version n, then
 * apply it and keep the default and the secret's status consistent.
 */
static int change_apply(struct sfs_ctx *ctx, enum sfs_action act,
			struct sfs_secret_rec *s, uint32_t n,
			struct ctx_versions *vs, struct sfs_error *err)
{
	int to = act == SFS_ACT_VERSION_ACTIVATE     ? SFS_STATE_ACTIVE
		 : act == SFS_ACT_VERSION_DEACTIVATE ? SFS_STATE_DEACTIVATED
						     : SFS_STATE_DESTROYED;
	int rc;

	if (act == SFS_ACT_VERSION_SET_DEFAULT) {
		s->default_version = n;
		goto update;
	}
	rc = sfs_store_version_set_state(ctx->store, s->id, n, to, err);
	if (rc != SFS_OK)
		return rc;
	vs->states[n] = to;
	sfs_policy_effects(to, n, vs->states, vs->n, &s->default_version,
			   &s->status);
update:
	s->changed_at = sfs_time_now();
	return sfs_store_secret_update(ctx->store, s, err);
}

/* A state or default change of version n as the runner carries it. */
struct version_change {
	const char *op;
	const char *name; /* as the caller named the secret */
	uint32_t n;
	struct sfs_secret_rec s;
	struct ctx_versions vs;
	int state; /* version n's state before, when it exists */
	char id[SFS_ID_MAX + 1];
};

static int change_gather(struct sfs_ctx *ctx, struct ctx_change *ch,
			 struct sfs_policy_state *st, struct sfs_error *err)
{
	struct version_change *vc = ch->arg;
	struct sfs_version_rec v;
	int rc;

	rc = ctx_secret_load(ctx, vc->name, &vc->s, err);
	if (rc == SFS_OK)
		rc = ctx_versions_gather(ctx, &vc->s, &vc->vs, err);
	if (rc != SFS_OK)
		return rc;
	st->secret = &vc->s;
	st->active_versions = vc->vs.active;
	st->live_versions = vc->vs.live;
	memset(&v, 0, sizeof(v));
	rc = vc->n ? sfs_store_version_get(ctx->store, vc->s.id, vc->n, 0, &v,
					   err)
		   : SFS_ENOENT;
	if (rc == SFS_OK) {
		st->version_exists = 1;
		st->version_state = vc->state = v.state;
	} else if (rc == SFS_ENOENT) {
		sfs_error_clear(err);
		rc = SFS_OK;
	}
	return rc;
}

static int change_settle(struct ctx_change *ch,
			 const struct sfs_policy_state *st, int rc,
			 struct sfs_error *err)
{
	const struct version_change *vc = ch->arg;
	struct sfs_object o = sfs_object_version(vc->s.name, vc->n);

	if (rc == SFS_OK && !st->version_exists)
		rc = SFS_ENOENT; /* the policy asks about existing versions */
	if (rc != SFS_OK)
		ctx_refuse_on(err, ch->act, rc, st, &o);
	return rc;
}

static int change_do(struct sfs_ctx *ctx, struct ctx_change *ch,
		     const struct sfs_policy_state *st, struct sfs_error *err)
{
	struct version_change *vc = ch->arg;

	(void)st;
	if (ch->act == SFS_ACT_VERSION_DESTROY &&
	    vc->state == SFS_STATE_DESTROYED)
		return SFS_OK; /* a no-op */
	return change_apply(ctx, ch->act, &vc->s, vc->n, &vc->vs, err);
}

static void change_done(struct ctx_change *ch)
{
	struct version_change *vc = ch->arg;

	ctx_versions_release(&vc->vs);
}

static void change_line(struct sfs_ctx *ctx, struct ctx_change *ch, int rc,
			struct ctx_audit_line *l)
{
	struct version_change *vc = ch->arg;

	version_line(ctx, vc->op, &vc->s, vc->name, vc->n, rc, vc->id, l);
}

static int version_change(struct sfs_ctx *ctx, const struct sfs_caller *c,
			  enum sfs_action act, const char *op, const char *name,
			  uint32_t n, struct sfs_error *err)
{
	static const struct ctx_change_ops ops = {.gather = change_gather,
						  .settle = change_settle,
						  .apply = change_do,
						  .line = change_line,
						  .done = change_done};
	struct version_change vc = {.op = op, .name = name, .n = n};

	return ctx_change_go(ctx, act, c, &ops, &vc, err);
}

int sfs_version_set_default(struct sfs_ctx *ctx, const struct sfs_caller *c,
			    const char *name, uint32_t n, struct sfs_error *err)
{
	return version_change(ctx, c, SFS_ACT_VERSION_SET_DEFAULT,
			      "version.set_default", name, n, err);
}

int sfs_version_set_state(struct sfs_ctx *ctx, const struct sfs_caller *c,
			  const char *name, uint32_t n, int active,
			  struct sfs_error *err)
{
	if (active)
		return version_change(ctx, c, SFS_ACT_VERSION_ACTIVATE,
				      "version.activate", name, n, err);
	return version_change(ctx, c, SFS_ACT_VERSION_DEACTIVATE,
			      "version.deactivate", name, n, err);
}

int sfs_version_destroy(struct sfs_ctx *ctx, const struct sfs_caller *c,
			const char *name, uint32_t n, struct sfs_error *err)
{
	return version_change(ctx, c, SFS_ACT_VERSION_DESTROY,
			      "version.destroy", name, n, err);
}

/* ---- copy, and the runner of add and copy ------------------------------ */

/*
 * Lock held, write transaction open: read version n (every read rule
 * applies), then the state of adding its value as a new version (the
 * runner asks the add rules). Decrypting under the lock is fine here:
 * this is a change, and changes are serialised anyway.
 */
static int copy_gather(struct sfs_ctx *ctx, struct ctx_change *ch,
		       struct sfs_policy_state *st, struct sfs_error *err)
{
	struct add_change *ac = ch->arg;
	unsigned char material[SFS_KEY_BYTES];
	struct sfs_version_rec v;
	struct ctx_blobs *b = NULL;
	int rc;

	rc = read_gather(ctx, ch->c, ac->name, ac->n, &ac->s, &v, &b, material,
			 err);
	if (rc == SFS_OK)
		rc =
		    read_decrypt(ctx, &ac->s, &v, b, material, &ac->owned, err);
	sfs_crypto_wipe(material, sizeof(material));
	ctx_blobs_put(b);
	if (rc != SFS_OK)
		return rc;
	ac->value = ac->owned.data;
	ac->len = ac->owned.len;
	return add_gather(ctx, ch, st, err);
}

static void copy_done(struct ctx_change *ch)
{
	struct add_change *ac = ch->arg;

	sfs_value_release(&ac->owned);
}

/* Run an add, or a copy (ac->copy: the value is version n's): the new
 * version into *out (may be NULL). */
static int add_run(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   struct add_change *ac, struct sfs_version_rec *out,
		   struct sfs_error *err)
{
	static const struct ctx_change_ops add_ops = {.gather = add_gather,
						      .apply = add_apply,
						      .line = add_line};
	static const struct ctx_change_ops copy_ops = {.gather = copy_gather,
						       .apply = add_apply,
						       .line = add_line,
						       .done = copy_done};
	int rc;

	rc = ctx_change_go(ctx, SFS_ACT_VERSION_ADD, c,
			   ac->copy ? &copy_ops : &add_ops, ac, err);
	if (rc == SFS_OK && out)
		*out = ac->v;
	return rc;
}

int sfs_version_add(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    const char *name, const void *value, size_t len,
		    uint32_t expect, struct sfs_version_rec *out,
		    struct sfs_error *err)
{
	struct add_change ac = {.op = "version.add",
				.name = name,
				.expect = expect,
				.value = value,
				.len = len};

	return add_run(ctx, c, &ac, out, err);
}

int sfs_version_copy(struct sfs_ctx *ctx, const struct sfs_caller *c,
		     const char *name, uint32_t n, struct sfs_version_rec *out,
		     struct sfs_error *err)
{
	struct add_change ac = {
	    .op = "version.copy", .name = name, .n = n, .copy = 1};

	return add_run(ctx, c, &ac, out, err);
}
