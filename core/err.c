/*
 * Error codes: names, descriptions and the single core-code-to-errno table.
 * Every errno the filesystem returns comes from sfs_err_errno(); adding a
 * code means adding one row to each table below.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "secretfs/err.h"
#include "secretfs/policy.h"

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
