/*
 * Error codes: names, descriptions and the single core-code-to-errno table.
 * Every errno the filesystem returns comes from sfs_err_errno(); adding a
 * code means adding one row to each table below.
 * Also the objects a message's subject names: one constructor per kind
 * fills the data, one function writes its words, so that a subject's text
 * and its object cannot drift; and the one comparison the CLI makes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "secretfs/err.h"
#include "secretfs/policy.h"
#include "secretfs/records.h"

struct err_row {
	int code;
	int errnum;
	const char *name;
	const char *text;
};

/* A code, the errno of the same name, the code's name without "SFS_",
 * its text; AS() for a code whose errno has another name. */
#define ROW(c, text)                                                           \
	{                                                                      \
		SFS_##c, c, #c, text                                           \
	}
#define AS(c, errnum, text)                                                    \
	{                                                                      \
		SFS_##c, errnum, #c, text                                      \
	}

static const struct err_row rows[] = {
    {SFS_OK, 0, "ok", "success"},
    ROW(ENOENT, "no such secret, version or key"),
    ROW(ENODATA, "no such attribute"),
    ROW(EACCES, "permission denied"),
    ROW(EKEYREVOKED, "secret or version is deactivated"),
    ROW(ENOKEY, "kms key is deactivated or gone"),
    ROW(EBADMSG, "stored data failed authentication"),
    ROW(EEXIST, "already exists"),
    ROW(EINVAL, "invalid argument"),
    ROW(ENAMETOOLONG, "name longer than 128 bytes"),
    ROW(EFBIG, "value larger than 65536 bytes"),
    ROW(EBUSY, "refused by a lifecycle rule"),
    ROW(ENOTEMPTY, "versions remain that are not destroyed"),
    ROW(EPERM, "operation not permitted"),
    ROW(EROFS, "read-only"),
    ROW(EIO, "store i/o error"),
    ROW(ENOMEM, "out of memory"),
    ROW(ENOSPC, "no space left on the store's disk"),
    AS(EMASTER, EACCES, "wrong master key or passphrase"),
    AS(EKEYFILE, EACCES, "key file is readable by group or others"),
    AS(ENOSTORE, ENOENT, "store is not initialised"),
};

static const struct err_row *find(int code)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].code == code)
			return &rows[i];
	return NULL;
}

const char *sfs_strerror(int code)
{
	const struct err_row *r = find(code);

	return r ? r->text : "unknown error";
}

const char *sfs_strerrno(int errnum)
{
	static _Thread_local char buf[128];
	const char *text = strerror_r(errnum, buf, sizeof(buf));

	if (text != buf)
		snprintf(buf, sizeof(buf), "%s", text);
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

const char *sfs_err_name(int code)
{
	const struct err_row *r = find(code);

	return r ? r->name : "EIO";
}

int sfs_err_errno(int code)
{
	const struct err_row *r = find(code);

	return r ? r->errnum : EIO;
}

/*
 * Where the reason starts in msg, formatted from fmt and ap: after what
 * fmt's text before its first ": " formats to. fmt is the program's text,
 * so a name in an argument cannot move the split. 0 when fmt has no
 * ": " or msg has nothing after it.
 */
static size_t why_at(const char *msg, const char *fmt, va_list ap)
{
	const char *sep = strstr(fmt, ": ");
	char head[256];
	int n;

	if (!sep || (size_t)(sep - fmt) >= sizeof(head))
		return 0;
	memcpy(head, fmt, (size_t)(sep - fmt));
	head[sep - fmt] = '\0';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = vsnprintf(NULL, 0, head, ap); /* a prefix of the caller's format */
#pragma GCC diagnostic pop
	if (n <= 0 || (size_t)n + 2 >= strlen(msg) ||
	    strncmp(msg + n, ": ", 2) != 0)
		return 0;
	return (size_t)n + 2;
}

/* What a subject shows of a role's name and a principal's text. */
#define ROLE_SHOWN	32
#define PRINCIPAL_SHOWN 64

static struct sfs_object object(enum sfs_obj_kind kind, const char *name,
				size_t shown, uint32_t n)
{
	struct sfs_object o;
	size_t len = strlen(name);

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.number = n;
	if (shown > sizeof(o.name) - 1)
		shown = sizeof(o.name) - 1;
	o.cut = len > shown;
	memcpy(o.name, name, o.cut ? shown : len);
	return o;
}

struct sfs_object sfs_object_secret(const char *name)
{
	return object(SFS_OBJ_SECRET, name, SFS_NAME_MAX, 0);
}

struct sfs_object sfs_object_version(const char *name, uint32_t n)
{
	return object(SFS_OBJ_VERSION, name, SFS_NAME_MAX, n);
}

struct sfs_object sfs_object_key(const char *name)
{
	return object(SFS_OBJ_KEY, name, SFS_NAME_MAX, 0);
}

struct sfs_object sfs_object_role(const char *name)
{
	return object(SFS_OBJ_ROLE, name, ROLE_SHOWN, 0);
}

struct sfs_object sfs_object_principal(const char *text)
{
	return object(SFS_OBJ_PRINCIPAL, text, PRINCIPAL_SHOWN, 0);
}

struct sfs_object sfs_object_file(const char *path)
{
	return object(SFS_OBJ_FILE, path, (size_t)-1, 0);
}

struct sfs_object sfs_object_whole(enum sfs_obj_kind kind)
{
	return object(kind, "", 0, 0);
}

void sfs_object_text(const struct sfs_object *o, char *buf, size_t cap)
{
	/* the words before the quoted name, or the object's words alone */
	static const char *const words[] = {[SFS_OBJ_NONE] = "",
					    [SFS_OBJ_STORE] = "store",
					    [SFS_OBJ_STORE_DIR] = "store",
					    [SFS_OBJ_SECRET] = "secret ",
					    [SFS_OBJ_VERSION] = "",
					    [SFS_OBJ_KEY] = "key ",
					    [SFS_OBJ_KEYS] = "keys",
					    [SFS_OBJ_ROLE] = "role ",
					    [SFS_OBJ_ROLES] = "roles",
					    [SFS_OBJ_PRINCIPAL] = "principal ",
					    [SFS_OBJ_FILE] = ""};
	enum sfs_obj_kind k = o->kind;

	if (k == SFS_OBJ_VERSION)
		snprintf(buf, cap, "version %u of '%s'", (unsigned)o->number,
			 o->name);
	else if (k == SFS_OBJ_SECRET || k == SFS_OBJ_KEY || k == SFS_OBJ_ROLE ||
		 k == SFS_OBJ_PRINCIPAL || k == SFS_OBJ_FILE)
		snprintf(buf, cap, "%s'%s'", words[k], o->name);
	else
		snprintf(buf, cap, "%s", k <= SFS_OBJ_FILE ? words[k] : "");
}

int sfs_object_covers(const struct sfs_object *cmd,
		      const struct sfs_object *obj)
{
	int bare_ok = !strchr(obj->name, '\'');

	if (obj->kind == SFS_OBJ_NONE || obj->cut || cmd->cut ||
	    strcmp(obj->name, cmd->name) != 0)
		return 0;
	if (obj->kind == SFS_OBJ_SECRET && cmd->kind == SFS_OBJ_VERSION)
		return bare_ok; /* the line names the secret bare: 'db' */
	if (obj->kind != cmd->kind || obj->number != cmd->number ||
	    (obj->kind == SFS_OBJ_VERSION && !obj->number))
		return 0; /* a command's version 0 is "the default": none */
	return obj->kind != SFS_OBJ_PRINCIPAL || bare_ok;
}

/* sfs_error_about_after with fmt's arguments in ap. */
static int error_about(struct sfs_error *err, int code, const char *lead,
		       const struct sfs_object *obj, const char *fmt,
		       va_list ap) __attribute__((format(printf, 5, 0)));
static int error_about(struct sfs_error *err, int code, const char *lead,
		       const struct sfs_object *obj, const char *fmt,
		       va_list ap)
{
	char subject[300], reason[256]; /* each as long as a message */
	size_t n;

	if (!err)
		return code;
	sfs_object_text(obj, subject, sizeof(subject));
	vsnprintf(reason, sizeof(reason), fmt, ap);
	sfs_error_set(err, code, "%s%s: %s", lead, subject, reason);
	n = strlen(lead) + strlen(subject) + 2;
	err->why = n > 2 && n < strlen(err->msg) ? n : 0;
	err->obj = *obj;
	return code;
}

int sfs_error_about(struct sfs_error *err, int code,
		    const struct sfs_object *obj, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = error_about(err, code, "", obj, fmt, ap);
	va_end(ap);
	return code;
}

int sfs_error_about_after(struct sfs_error *err, int code, const char *lead,
			  const struct sfs_object *obj, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = error_about(err, code, lead, obj, fmt, ap);
	va_end(ap);
	return code;
}

int sfs_error_set(struct sfs_error *err, int code, const char *fmt, ...)
{
	va_list ap, again;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	va_copy(again, ap);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	err->why = why_at(err->msg, fmt, again);
	memset(&err->obj, 0, sizeof(err->obj));
	va_end(again);
	va_end(ap);
	return code;
}

void sfs_error_clear(struct sfs_error *err)
{
	if (!err)
		return;
	err->code = SFS_OK;
	err->msg[0] = '\0';
	err->why = 0;
	memset(&err->obj, 0, sizeof(err->obj));
}

void sfs_error_printable(char *text)
{
	size_t i, len, total = strlen(text);
	unsigned char ch;

	for (i = 0; text[i]; i++) {
		ch = (unsigned char)text[i];
		len = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
		if (ch < 0x20 || ch == 0x7f)
			text[i] = '?';
		else if (ch >= 0x80 && (len > total - i ||
					sfs_policy_utf8_check(text + i, len)))
			text[i] = '?'; /* its continuation bytes follow suit */
		else
			i += len - 1;
	}
}
