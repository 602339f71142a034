/*
 * Failure messages shared by the core's services: the "subject: reason"
 * errors they hand back in a caller's struct sfs_error (ctx_fail for a
 * core code, ctx_refuse for a policy refusal, with the rule's words; the
 * _on forms for a subject that names an object, which err->obj then
 * carries as data, ctx_settle for a change's refusal, and the name and
 * description rules a new secret or key is refused by). Kept
 * out of ctx.c so that the modules ctx.c is built from do not depend on
 * it.
 * Declared in ctx_layout.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctx_layout.h"
#include "internal.h"
#include "secretfs/err.h"
#include "secretfs/policy.h"

void ctx_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int ctx_fail(struct sfs_error *err, int code, const char *fmt, ...)
{
	char subject[200];
	va_list ap;

	if (!err)
		return code;
	if (err->code == code && err->msg[0])
		return code;
	va_start(ap, fmt);
	vsnprintf(subject, sizeof(subject), fmt, ap);
	va_end(ap);
	return sfs_error_set(err, code, "%s: %s", subject, sfs_strerror(code));
}

int ctx_refuse(struct sfs_error *err, enum sfs_action act, int rc,
	       const struct sfs_policy_state *st, const char *fmt, ...)
{
	char subject[200], buf[128];
	va_list ap;

	if (!err)
		return rc;
	va_start(ap, fmt);
	vsnprintf(subject, sizeof(subject), fmt, ap);
	va_end(ap);
	return sfs_error_set(err, rc, "%s: %s", subject,
			     sfs_policy_why(act, rc, st, buf, sizeof(buf)));
}

int ctx_fail_on(struct sfs_error *err, int code, const struct sfs_object *obj)
{
	if (err && err->code == code && err->msg[0])
		return code;
	return sfs_error_about(err, code, obj, "%s", sfs_strerror(code));
}

int ctx_refuse_on(struct sfs_error *err, enum sfs_action act, int rc,
		  const struct sfs_policy_state *st,
		  const struct sfs_object *obj)
{
	char buf[128];

	if (!err)
		return rc;
	return sfs_error_about(err, rc, obj, "%s",
			       sfs_policy_why(act, rc, st, buf, sizeof(buf)));
}

int ctx_settle(struct ctx_change *ch, const struct sfs_policy_state *st, int rc,
	       struct sfs_error *err)
{
	if (rc != SFS_OK)
		rc = ctx_refuse_on(err, ch->act, rc, st, &ch->about);
	return rc;
}

int ctx_name_desc_check(const struct sfs_object *o, const char *name,
			const char *desc, struct sfs_error *err)
{
	int rc = sfs_policy_name_check(name, strlen(name));

	if (rc != SFS_OK)
		return sfs_error_about(err, rc, o, "%s",
				       sfs_policy_name_why(rc));
	rc = sfs_policy_desc_check(desc, strlen(desc));
	if (rc != SFS_OK)
		return sfs_error_about(err, rc, o, "%s",
				       sfs_policy_desc_why(desc, strlen(desc)));
	return SFS_OK;
}
