/*
 * Failing-store hook; see fault_store.h. Every forwarder first asks hit()
 * whether this call should fail; the failure carries the chosen code and
 * a message naming the injected operation.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/fault_store.h"

struct fault {
	struct sfs_store pub;
	struct sfs_store *in;
	int calls;    /* counted operations so far */
	int left;     /* counted operations until the failure; 0: none */
	int sticky;   /* keep failing after the nth */
	int failing;  /* sticky failure in force */
	int code;
	char op[32];  /* fail every call of this op; "" for none */
	int op_code;
};

static struct fault *F(struct sfs_store *s)
{
	return s->backend;
}

static struct sfs_store *IN(struct sfs_store *s)
{
	return F(s)->in;
}

/* 0 to forward, or the injected error code (recorded in err). */
static int hit(struct sfs_store *s, const char *op, struct sfs_error *err)
{
	struct fault *f = F(s);
	int code = 0;

	f->calls++;
	if (f->op[0] && strcmp(f->op, op) == 0) {
		code = f->op_code;
	} else if (f->failing) {
		code = f->code;
	} else if (f->left > 0 && --f->left == 0) {
		code = f->code;
		f->failing = f->sticky;
	}
	if (code)
		sfs_error_set(err, code, "fault store: injected failure in %s",
			      op);
	return code;
}

#define FORWARD(s, op, err, ...)                                 \
	do {                                                     \
		int c_ = hit(s, #op, err);                       \
		if (c_)                                          \
			return c_;                               \
		return IN(s)->ops->op(IN(s), __VA_ARGS__, err); \
	} while (0)

static void f_close(struct sfs_store *s)
{
	sfs_store_close(IN(s));
	free(F(s));
}

static int f_begin(struct sfs_store *s, int write, struct sfs_error *err)
{
	FORWARD(s, begin, err, write);
}

static int f_commit(struct sfs_store *s, struct sfs_error *err)
{
	int c = hit(s, "commit", err);

	if (c) {
		IN(s)->ops->rollback(IN(s));
		return c;
	}
	return IN(s)->ops->commit(IN(s), err);
}

static void f_rollback(struct sfs_store *s)
{
	IN(s)->ops->rollback(IN(s));
}

static int f_meta_get(struct sfs_store *s, const char *name,
		      struct sfs_blob *out, struct sfs_error *err)
{
	FORWARD(s, meta_get, err, name, out);
}

static int f_meta_set(struct sfs_store *s, const char *name, const void *v,
		      size_t len, struct sfs_error *err)
{
	FORWARD(s, meta_set, err, name, v, len);
}

static int f_key_get(struct sfs_store *s, const char *id_or_name,
		     struct sfs_key_rec *out, struct sfs_error *err)
{
	FORWARD(s, key_get, err, id_or_name, out);
}

static int f_key_list(struct sfs_store *s, sfs_key_cb cb, void *arg,
		      struct sfs_error *err)
{
	FORWARD(s, key_list, err, cb, arg);
}

static int f_key_insert(struct sfs_store *s, const struct sfs_key_rec *k,
			struct sfs_error *err)
{
	FORWARD(s, key_insert, err, k);
}

static int f_key_update(struct sfs_store *s, const struct sfs_key_rec *k,
			struct sfs_error *err)
{
	FORWARD(s, key_update, err, k);
}

static int f_key_delete(struct sfs_store *s, const char *id,
			struct sfs_error *err)
{
	FORWARD(s, key_delete, err, id);
}

static int f_key_in_use(struct sfs_store *s, const char *id, int *in_use,
			struct sfs_error *err)
{
	FORWARD(s, key_in_use, err, id, in_use);
}

static int f_keyver_get(struct sfs_store *s, const char *key_id,
			uint32_t version, struct sfs_blob *wrapped,
			struct sfs_error *err)
{
	FORWARD(s, keyver_get, err, key_id, version, wrapped);
}

static int f_keyver_insert(struct sfs_store *s, const char *key_id,
			   uint32_t version, const struct sfs_blob *wrapped,
			   int64_t created_at, struct sfs_error *err)
{
	FORWARD(s, keyver_insert, err, key_id, version, wrapped, created_at);
}

static int f_keyver_set(struct sfs_store *s, const char *key_id,
			uint32_t version, const struct sfs_blob *wrapped,
			struct sfs_error *err)
{
	FORWARD(s, keyver_set, err, key_id, version, wrapped);
}

static int f_secret_get(struct sfs_store *s, const char *id_or_name,
			struct sfs_secret_rec *out, struct sfs_error *err)
{
	FORWARD(s, secret_get, err, id_or_name, out);
}

static int f_secret_list(struct sfs_store *s, sfs_secret_cb cb, void *arg,
			 struct sfs_error *err)
{
	FORWARD(s, secret_list, err, cb, arg);
}

static int f_secret_insert(struct sfs_store *s,
			   const struct sfs_secret_rec *r,
			   struct sfs_error *err)
{
	FORWARD(s, secret_insert, err, r);
}

static int f_secret_update(struct sfs_store *s,
			   const struct sfs_secret_rec *r,
			   struct sfs_error *err)
{
	FORWARD(s, secret_update, err, r);
}

static int f_secret_delete(struct sfs_store *s, const char *id,
			   struct sfs_error *err)
{
	FORWARD(s, secret_delete, err, id);
}

static int f_version_get(struct sfs_store *s, const char *secret_id,
			 uint32_t version, int with_blobs,
			 struct sfs_version_rec *out, struct sfs_error *err)
{
	FORWARD(s, version_get, err, secret_id, version, with_blobs, out);
}

static int f_version_list(struct sfs_store *s, const char *secret_id,
			  sfs_version_cb cb, void *arg, struct sfs_error *err)
{
	FORWARD(s, version_list, err, secret_id, cb, arg);
}

static int f_version_insert(struct sfs_store *s,
			    const struct sfs_version_rec *v,
			    struct sfs_error *err)
{
	FORWARD(s, version_insert, err, v);
}

static int f_version_set_state(struct sfs_store *s, const char *secret_id,
			       uint32_t version, int state,
			       struct sfs_error *err)
{
	FORWARD(s, version_set_state, err, secret_id, version, state);
}

static int f_role_grant(struct sfs_store *s, const char *role,
			const char *principal, struct sfs_error *err)
{
	FORWARD(s, role_grant, err, role, principal);
}

static int f_role_revoke(struct sfs_store *s, const char *role,
			 const char *principal, struct sfs_error *err)
{
	FORWARD(s, role_revoke, err, role, principal);
}

static int f_role_list(struct sfs_store *s, sfs_role_cb cb, void *arg,
		       struct sfs_error *err)
{
	FORWARD(s, role_list, err, cb, arg);
}

static int f_check(struct sfs_store *s, struct sfs_error *err)
{
	int c = hit(s, "check", err);

	return c ? c : IN(s)->ops->check(IN(s), err);
}

static int f_counts(struct sfs_store *s, uint64_t *secrets,
		    uint64_t *versions, uint64_t *keys, struct sfs_error *err)
{
	FORWARD(s, counts, err, secrets, versions, keys);
}

/* Cannot fail: forwarded, not counted. */
static uint64_t f_generation(struct sfs_store *s)
{
	return IN(s)->ops->generation(IN(s));
}

static const struct sfs_store_ops fault_ops = {
	.close = f_close,
	.begin = f_begin,
	.commit = f_commit,
	.rollback = f_rollback,
	.meta_get = f_meta_get,
	.meta_set = f_meta_set,
	.key_get = f_key_get,
	.key_list = f_key_list,
	.key_insert = f_key_insert,
	.key_update = f_key_update,
	.key_delete = f_key_delete,
	.key_in_use = f_key_in_use,
	.keyver_get = f_keyver_get,
	.keyver_insert = f_keyver_insert,
	.keyver_set = f_keyver_set,
	.secret_get = f_secret_get,
	.secret_list = f_secret_list,
	.secret_insert = f_secret_insert,
	.secret_update = f_secret_update,
	.secret_delete = f_secret_delete,
	.version_get = f_version_get,
	.version_list = f_version_list,
	.version_insert = f_version_insert,
	.version_set_state = f_version_set_state,
	.role_grant = f_role_grant,
	.role_revoke = f_role_revoke,
	.role_list = f_role_list,
	.check = f_check,
	.counts = f_counts,
	.generation = f_generation,
};

struct sfs_store *fault_store_wrap(struct sfs_store *inner)
{
	struct fault *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	f->pub.ops = &fault_ops;
	f->pub.backend = f;
	f->in = inner;
	return &f->pub;
}

static void arm(struct sfs_store *fs, int nth, int code, int sticky)
{
	struct fault *f = F(fs);

	f->left = nth;
	f->code = code;
	f->sticky = sticky;
	f->failing = 0;
}

void fault_store_fail(struct sfs_store *fs, int nth, int code)
{
	arm(fs, nth, code, 1);
}

void fault_store_fail_once(struct sfs_store *fs, int nth, int code)
{
	arm(fs, nth, code, 0);
}

void fault_store_fail_op(struct sfs_store *fs, const char *op, int code)
{
	struct fault *f = F(fs);

	strncpy(f->op, op, sizeof(f->op) - 1);
	f->op[sizeof(f->op) - 1] = '\0';
	f->op_code = code;
}

void fault_store_reset(struct sfs_store *fs)
{
	struct fault *f = F(fs);

	arm(fs, 0, 0, 0);
	f->op[0] = '\0';
	f->op_code = 0;
}

int fault_store_calls(const struct sfs_store *fs)
{
	return ((const struct fault *)fs->backend)->calls;
}
