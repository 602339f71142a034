/*
 * Secrets: create, look up, list, update, change key, activate,
 * deactivate, delete.
 *
 * Each function gathers the secret's state in one store transaction,
 * asks sfs_policy_check() (the only place a rule is decided), acts on its
 * answer, commits, and writes one audit line for the change or the
 * refused attempt. A secret created with a value gets its first version
 * in the same transaction, so it never exists half-made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "secretfs/audit.h"
#include "secretfs/policy.h"
#include "secretfs/secret.h"

#define DEFAULT_MODE 0440
#define MODE_BITS    0777

static int secret_new_rec(const struct sfs_caller *c,
			  const struct sfs_secret_new *n,
			  struct sfs_secret_rec *s, struct sfs_error *err)
{
	const char *desc = n->description ? n->description : "";
	struct sfs_object o = sfs_object_secret(n->name);
	int rc = ctx_name_desc_check(&o, n->name, desc, err);

	if (rc != SFS_OK)
		return rc;
	if (n->has_mode && n->mode > MODE_BITS)
		return sfs_error_set(err, SFS_EINVAL,
				     "mode %o: not within "
				     "0777",
				     n->mode);
	sfs_crypto_uuid(s->id);
	ctx_strlcpy(s->name, n->name, sizeof(s->name));
	ctx_strlcpy(s->description, desc, sizeof(s->description));
	s->status = SFS_STATE_ACTIVE;
	s->access_control = n->access_control ? 1 : 0;
	s->owner = n->has_owner ? n->owner : c->uid;
	s->group = n->has_group ? n->group : c->gid;
	s->mode = n->has_mode ? n->mode : DEFAULT_MODE;
	s->created_at = sfs_time_now();
	s->changed_at = s->created_at;
	sfs_principal_describe(c->uid, s->created_by, sizeof(s->created_by));
	return SFS_OK;
}

/* A new secret as the runner carries it. */
struct create_change {
	const struct sfs_secret_new *n;
	const struct sfs_caller *c;
	struct sfs_secret_rec s;
	struct sfs_key_rec k;
};

/* Lock held: the key the secret is to use. */
static int create_gather(struct sfs_ctx *ctx, struct ctx_change *ch,
			 struct sfs_policy_state *st, struct sfs_error *err)
{
	struct create_change *cc = ch->arg;

	st->secret = &cc->s;
	return ctx_key_state(ctx, cc->n->key ? cc->n->key : "service", st,
			     &cc->k, err);
}

/* Allowed to create: a first value asks the add rules too; the inserts. */
static int create_apply(struct sfs_ctx *ctx, struct ctx_change *ch,
			const struct sfs_policy_state *st,
			struct sfs_error *err)
{
	struct create_change *cc = ch->arg;
	const struct sfs_secret_new *n = cc->n;
	struct sfs_secret_rec *s = &cc->s;
	struct sfs_policy_state add = *st;
	int rc;

	if (n->value) {
		add.value_len = n->value_len;
		rc = sfs_policy_check(SFS_ACT_VERSION_ADD, cc->c, &add);
		if (rc != SFS_OK)
			return ctx_refuse_on(err, SFS_ACT_VERSION_ADD, rc, &add,
					     &ch->about);
	}
	ctx_strlcpy(s->kms_key_id, cc->k.id, sizeof(s->kms_key_id));
	rc = sfs_store_secret_insert(ctx->store, s, err);
	if (rc == SFS_EEXIST)
		return sfs_error_about(err, rc, &ch->about, "already exists");
	if (rc == SFS_OK && n->value)
		rc = ctx_version_insert(ctx, cc->c, s, &cc->k, n->value,
					n->value_len, NULL, err);
	return rc;
}

/* Committed: the line names the new id and version; else neither. */
static void create_line(struct sfs_ctx *ctx, struct ctx_change *ch, int rc,
			struct ctx_audit_line *l)
{
	const struct create_change *cc = ch->arg;
	struct ctx_audit_line line = {
	    "secret.create", cc->n->name, NULL, NULL, 0, rc, 1};

	(void)ctx;
	if (rc == SFS_OK) {
		line.secret_id = cc->s.id;
		line.version = cc->s.latest_version;
	}
	*l = line;
}

int sfs_secret_create(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const struct sfs_secret_new *n,
		      struct sfs_secret_rec *out, struct sfs_error *err)
{
	struct create_change cc = {.n = n, .c = c};
	static const struct ctx_change_ops ops = {.gather = create_gather,
						  .apply = create_apply,
						  .line = create_line};
	struct ctx_change ch = {
	    .act = SFS_ACT_SECRET_CREATE, .c = c, .ops = &ops, .arg = &cc};
	int rc;

	sfs_error_clear(err);
	ch.pre = secret_new_rec(c, n, &cc.s, err);
	ch.about = sfs_object_secret(cc.s.name);
	rc = ctx_change_run(ctx, &ch, err);
	if (rc == SFS_OK && out)
		*out = cc.s;
	return rc;
}

/* What a caller without the full view sees (SPEC §3): the fields of
 * partial_fields, the id masked. */
static const char *const partial_fields[] = {
    "id", "name", "description", "access_control", "created_at", "created_by",
};

int sfs_secret_partial_field(const char *field)
{
	size_t i;

	for (i = 0; i < sizeof(partial_fields) / sizeof(partial_fields[0]); i++)
		if (!strcmp(field, partial_fields[i]))
			return 1;
	return 0;
}

int sfs_secret_may_read(const struct sfs_caller *c,
			const struct sfs_secret_rec *s)
{
	return sfs_policy_may_read(c, s) ? SFS_OK : SFS_EACCES;
}

int sfs_secret_may_see(const struct sfs_caller *c,
		       const struct sfs_secret_rec *s)
{
	return sfs_policy_may_view(c, s) || sfs_policy_may_manage(c)
		   ? SFS_OK
		   : SFS_EACCES;
}

int sfs_secret_may_manage(const struct sfs_caller *c)
{
	return sfs_policy_may_manage(c) ? SFS_OK : SFS_EACCES;
}

static void partial_view(struct sfs_secret_rec *s)
{
	struct sfs_secret_rec p;

	memset(&p, 0, sizeof(p));
	memcpy(p.id, s->id, 8);
	memcpy(p.id + 8, "-****", 6);
	memcpy(p.name, s->name, sizeof(p.name));
	memcpy(p.description, s->description, sizeof(p.description));
	p.access_control = s->access_control;
	p.created_at = s->created_at;
	memcpy(p.created_by, s->created_by, sizeof(p.created_by));
	*s = p;
}

int sfs_secret_get(struct sfs_ctx *ctx, const struct sfs_caller *c,
		   const char *name, struct sfs_secret_rec *out, int *full,
		   struct sfs_error *err)
{
	int rc;

	sfs_error_clear(err);
	*full = 0;
	rc = ctx_read_lock(ctx, err);
	if (rc == SFS_OK)
		rc = ctx_secret_load(ctx, name, out, err);
	if (rc == CTX_MISS && (rc = ctx_read_fill(ctx, err)) == SFS_OK)
		rc = ctx_secret_load(ctx, name, out, err);
	rc = ctx_read_unlock(ctx, rc, err);
	if (rc != SFS_OK)
		return rc;
	*full = sfs_policy_may_view(c, out);
	if (!*full)
		partial_view(out);
	return SFS_OK;
}

/*
 * Listing pages through the store in name order: at most LIST_PAGE
 * records (~6 KB each) are held at a time, gathered under the lock in
 * one short read transaction, then handed to the callback unlocked (so
 * that it may call back into the context), then the next page. Memory
 * stays bounded whatever the number of secrets. A secret created or
 * deleted between pages is seen or not, as with any directory listing;
 * none is seen twice and the order holds. The page grows as records
 * come (LIST_FIRST, doubling): a full page is 1.5 MiB, past the daemon's
 * mmap threshold, and the daemon's notifier lists the store at every
 * change, so a store of a few secrets would map and unmap it (a TLB
 * shootdown of every CPU) at each commit.
 */
#define LIST_PAGE  256
#define LIST_FIRST 16
#define PAGE_FULL  1 /* private stop value of page_collect */

struct secrets_page {
	struct sfs_secret_rec *v;
	unsigned n, cap;
	const char *after; /* fallback paging only */
};

static int page_collect(void *arg, const struct sfs_secret_rec *s)
{
	struct secrets_page *p = arg;
	struct sfs_secret_rec *v;
	unsigned cap;

	if (p->after && strcmp(s->name, p->after) <= 0)
		return 0;
	if (p->n == LIST_PAGE)
		return PAGE_FULL;
	if (p->n == p->cap) {
		cap = p->cap ? p->cap * 2 : LIST_FIRST;
		cap = cap < LIST_PAGE ? cap : LIST_PAGE;
		v = realloc(p->v, cap * sizeof(*v));
		if (!v)
			return SFS_ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = *s;
	return 0;
}

/* Lock held, transaction open: the page of names after `after`. A
 * backend without secret_list_after pages through its whole listing. */
static int page_fetch(struct sfs_ctx *ctx, struct secrets_page *p,
		      const char *after, struct sfs_error *err)
{
	int rc;

	p->n = 0;
	p->after = NULL;
	if (sfs_store_can_list_after(ctx->store))
		return sfs_store_secret_list_after(ctx->store, after, LIST_PAGE,
						   page_collect, p, err);
	p->after = after;
	rc = sfs_store_secret_list(ctx->store, page_collect, p, err);
	return rc == PAGE_FULL ? SFS_OK : rc;
}

int sfs_secret_list(struct sfs_ctx *ctx, const struct sfs_caller *c,
		    sfs_secret_cb cb, void *arg, struct sfs_error *err)
{
	struct secrets_page p = {NULL, 0, 0, NULL};
	char after[SFS_NAME_MAX + 1] = "";
	unsigned i;
	int rc;

	(void)c; /* names are visible to anyone who reaches the store */
	sfs_error_clear(err);
	do {
		rc = ctx_begin(ctx, 0, err);
		if (rc != SFS_OK)
			break;
		rc = ctx_end(ctx, 0, page_fetch(ctx, &p, after, err), err);
		for (i = 0; rc == SFS_OK && i < p.n; i++)
			rc = cb(arg, &p.v[i]);
		if (p.n)
			ctx_strlcpy(after, p.v[p.n - 1].name, sizeof(after));
	} while (rc == SFS_OK && p.n == LIST_PAGE);
	free(p.v);
	if (rc == SFS_ENOMEM && err && !err->code)
		sfs_error_set(err, rc, "out of memory");
	return rc;
}

/* Check the new field values before anything is locked; the normalised
 * allow list goes to allowed. */
static int update_validate(const struct sfs_secret_update *u, char *allowed,
			   size_t cap, struct sfs_error *err)
{
	int rc;

	if ((u->fields & SFS_SF_DESCRIPTION) &&
	    (!u->description ||
	     sfs_policy_desc_check(u->description, strlen(u->description))))
		return sfs_error_set(
		    err, SFS_EINVAL, "%s",
		    u->description ? sfs_policy_desc_why(u->description,
							 strlen(u->description))
				   : "no description");
	if ((u->fields & SFS_SF_MODE) && u->mode > MODE_BITS)
		return sfs_error_set(err, SFS_EINVAL,
				     "mode %o: not within "
				     "0777",
				     u->mode);
	if (!(u->fields & SFS_SF_ALLOWED))
		return SFS_OK;
	rc = sfs_principal_list_normalize(u->allowed ? u->allowed : "", allowed,
					  cap, err);
	if (rc != SFS_OK)
		return ctx_fail(err, SFS_EINVAL, "allowed principals");
	return SFS_OK;
}

static void update_apply(struct sfs_secret_rec *s,
			 const struct sfs_secret_update *u, const char *allowed)
{
	if (u->fields & SFS_SF_DESCRIPTION)
		ctx_strlcpy(s->description, u->description,
			    sizeof(s->description));
	if (u->fields & SFS_SF_ACCESS_CONTROL)
		s->access_control = u->access_control ? 1 : 0;
	if (u->fields & SFS_SF_ALLOWED)
		sfs_principal_rec_set(s, allowed);
	if (u->fields & SFS_SF_OWNER)
		s->owner = u->owner;
	if (u->fields & SFS_SF_GROUP)
		s->group = u->group;
	if (u->fields & SFS_SF_MODE)
		s->mode = u->mode;
	s->changed_at = sfs_time_now();
}

/*
 * Lock held, write transaction open: ask about the secret as it is, then
 * write the change (key_id: the new KMS key for CHANGE_KEY).
 */
/* A change of one secret as the runner carries it. */
struct secret_change {
	const char *op;
	const char *name; /* as the caller named it */
	const char *key;  /* change_key: the key asked for */
	const struct sfs_secret_update *u;
	char allowed[SFS_ALLOWED_MAX + 1];
	struct sfs_secret_rec s;
	struct sfs_key_rec k;
	char id[SFS_ID_MAX + 1];
};

static void secret_line(struct sfs_ctx *ctx, struct ctx_change *ch, int rc,
			struct ctx_audit_line *l)
{
	struct secret_change *sc = ch->arg;
	const char *key = NULL;
	struct ctx_audit_line line;

	if (ch->act == SFS_ACT_SECRET_CHANGE_KEY)
		key = sc->k.name[0] ? sc->k.name : sc->key;
	memset(&line, 0, sizeof(line));
	line.op = sc->op;
	line.secret = sc->s.name[0] ? sc->s.name : sc->name;
	line.secret_id = sc->s.id;
	line.key = key;
	line.result = rc;
	line.change = 1;
	if (!sc->s.id[0] && rc != SFS_OK) { /* refused before it was read */
		ctx_secret_id(ctx, sc->name, sc->id);
		line.secret_id = sc->id;
	}
	*l = line;
}

/* Lock held: the secret, named in a refusal by its own name. */
static int secret_gather(struct sfs_ctx *ctx, struct ctx_change *ch,
			 struct sfs_policy_state *st, struct sfs_error *err)
{
	struct secret_change *sc = ch->arg;
	int rc = ctx_secret_load(ctx, sc->name, &sc->s, err);

	st->secret = &sc->s;
	ch->about = sfs_object_secret(sc->s.name);
	return rc;
}

/* Lock held, allowed: apply act to the secret. */
static int secret_apply(struct sfs_ctx *ctx, struct ctx_change *ch,
			const struct sfs_policy_state *st,
			struct sfs_error *err)
{
	struct secret_change *sc = ch->arg;
	struct sfs_secret_rec *s = &sc->s;

	(void)st;
	switch (ch->act) {
	case SFS_ACT_SECRET_DELETE:
		return sfs_store_secret_delete(ctx->store, s->id, err);
	case SFS_ACT_SECRET_ACTIVATE:
		s->status = SFS_STATE_ACTIVE;
		break;
	case SFS_ACT_SECRET_DEACTIVATE:
		s->status = SFS_STATE_DEACTIVATED;
		break;
	case SFS_ACT_SECRET_CHANGE_KEY:
		ctx_strlcpy(s->kms_key_id, sc->k.id, sizeof(s->kms_key_id));
		break;
	case SFS_ACT_SECRET_UPDATE:
		update_apply(s, sc->u, sc->allowed);
		return sfs_store_secret_update(ctx->store, s, err);
	default:
		break;
	}
	s->changed_at = sfs_time_now();
	return sfs_store_secret_update(ctx->store, s, err);
}

/* A secret's own changes: what they gather differs, not how they
 * apply or what they log. */
#define SECRET_OPS(g)                                                          \
	{                                                                      \
		.gather = (g), .apply = secret_apply, .line = secret_line      \
	}

int sfs_secret_update(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *name, const struct sfs_secret_update *u,
		      struct sfs_error *err)
{
	static const struct ctx_change_ops ops = SECRET_OPS(secret_gather);
	struct secret_change sc = {.op = "secret.update", .name = name, .u = u};
	struct ctx_change ch = {
	    .act = SFS_ACT_SECRET_UPDATE, .c = c, .ops = &ops, .arg = &sc};

	sfs_error_clear(err);
	ch.pre = update_validate(u, sc.allowed, sizeof(sc.allowed), err);
	return ctx_change_run(ctx, &ch, err);
}

/* Is the secret's current key a user key (or gone)? Moving away from one
 * needs kms-user as moving onto one does. */
static int from_key_state(struct sfs_ctx *ctx, const struct sfs_secret_rec *s,
			  struct sfs_policy_state *st, struct sfs_error *err)
{
	struct sfs_policy_state cur;
	struct sfs_key_rec k;
	int rc;

	ctx_state_init(ctx, &cur);
	rc = ctx_key_state(ctx, s->kms_key_id, &cur, &k, err);
	st->from_user_key = !cur.key_exists || cur.key_type != SFS_KEY_SERVICE;
	return rc;
}

static int change_key_gather(struct sfs_ctx *ctx, struct ctx_change *ch,
			     struct sfs_policy_state *st, struct sfs_error *err)
{
	struct secret_change *sc = ch->arg;
	int rc = secret_gather(ctx, ch, st, err);

	if (rc == SFS_OK)
		rc = from_key_state(ctx, &sc->s, st, err);
	if (rc == SFS_OK)
		rc = ctx_key_state(ctx, sc->key, st, &sc->k, err);
	return rc;
}

int sfs_secret_change_key(struct sfs_ctx *ctx, const struct sfs_caller *c,
			  const char *name, const char *key,
			  struct sfs_error *err)
{
	static const struct ctx_change_ops ops = SECRET_OPS(change_key_gather);
	struct secret_change sc = {
	    .op = "secret.change_key", .name = name, .key = key};

	return ctx_change_go(ctx, SFS_ACT_SECRET_CHANGE_KEY, c, &ops, &sc, err);
}

/* Status changes and delete: they need the version counts. */
static int counted_gather(struct sfs_ctx *ctx, struct ctx_change *ch,
			  struct sfs_policy_state *st, struct sfs_error *err)
{
	struct secret_change *sc = ch->arg;
	struct ctx_versions vs;
	int rc = secret_gather(ctx, ch, st, err);

	if (rc == SFS_OK)
		rc = ctx_versions_gather(ctx, &sc->s, &vs, err);
	if (rc == SFS_OK) {
		st->active_versions = vs.active;
		st->live_versions = vs.live;
		ctx_versions_release(&vs);
	}
	return rc;
}

static const struct ctx_change_ops counted_ops = SECRET_OPS(counted_gather);

int sfs_secret_set_status(struct sfs_ctx *ctx, const struct sfs_caller *c,
			  const char *name, int active, struct sfs_error *err)
{
	struct secret_change sc = {.op = active ? "secret.activate"
						: "secret.deactivate",
				   .name = name};

	return ctx_change_go(
	    ctx, active ? SFS_ACT_SECRET_ACTIVATE : SFS_ACT_SECRET_DEACTIVATE,
	    c, &counted_ops, &sc, err);
}

int sfs_secret_delete(struct sfs_ctx *ctx, const struct sfs_caller *c,
		      const char *name, struct sfs_error *err)
{
	struct secret_change sc = {.op = "secret.delete", .name = name};

	return ctx_change_go(ctx, SFS_ACT_SECRET_DELETE, c, &counted_ops, &sc,
			     err);
}

int sfs_secret_name_valid(const char *name, struct sfs_error *err)
{
	int rc = sfs_policy_name_check(name, strlen(name));

	sfs_error_clear(err);
	if (rc != SFS_OK)
		sfs_error_set(err, rc, "%s", sfs_policy_name_why(rc));
	return rc;
}
