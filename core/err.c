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

struct err_row {
	int code;
	int errnum;
	const char *name;
	const char *text;
};

static const struct err_row rows[] = {
	{ SFS_OK, 0, "ok", "success" },
	{ SFS_ENOENT, ENOENT, "ENOENT", "no such secret, version or key" },
	{ SFS_ENODATA, ENODATA, "ENODATA", "no such attribute" },
	{ SFS_EACCES, EACCES, "EACCES", "permission denied" },
	{ SFS_EKEYREVOKED, EKEYREVOKED, "EKEYREVOKED",
	  "secret or version is deactivated" },
	{ SFS_ENOKEY, ENOKEY, "ENOKEY", "kms key is deactivated or gone" },
	{ SFS_EBADMSG, EBADMSG, "EBADMSG",
	  "stored data failed authentication" },
	{ SFS_EEXIST, EEXIST, "EEXIST", "already exists" },
	{ SFS_EINVAL, EINVAL, "EINVAL", "invalid argument" },
	{ SFS_ENAMETOOLONG, ENAMETOOLONG, "ENAMETOOLONG",
	  "name longer than 128 bytes" },
	{ SFS_EFBIG, EFBIG, "EFBIG", "value larger than 65536 bytes" },
	{ SFS_EBUSY, EBUSY, "EBUSY", "refused by a lifecycle rule" },
	{ SFS_ENOTEMPTY, ENOTEMPTY, "ENOTEMPTY",
	  "versions remain that are not destroyed" },
	{ SFS_EPERM, EPERM, "EPERM", "operation not permitted" },
	{ SFS_EROFS, EROFS, "EROFS", "read-only" },
	{ SFS_EIO, EIO, "EIO", "store i/o error" },
	{ SFS_ENOMEM, ENOMEM, "ENOMEM", "out of memory" },
	{ SFS_ENOSPC, ENOSPC, "ENOSPC", "no space left on the store's disk" },
	{ SFS_EMASTER, EACCES, "EMASTER", "wrong master key or passphrase" },
	{ SFS_EKEYFILE, EACCES, "EKEYFILE",
	  "key file is readable by group or others" },
	{ SFS_ENOSTORE, ENOENT, "ENOSTORE", "store is not initialised" },
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

int sfs_error_set(struct sfs_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void sfs_error_clear(struct sfs_error *err)
{
	if (!err)
		return;
	err->code = SFS_OK;
	err->msg[0] = '\0';
}
