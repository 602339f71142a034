/*
 * The daemon's one way to refuse a request and its log (SPEC §3): fs_log
 * writes to stderr in the foreground and to syslog once daemonized;
 * fs_refused logs a refusal and the core's reason under -f or -o debug;
 * fs_errno maps a core code onto an errno through the one table,
 * sfs_err_errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "fuse_int.h"
#include "secretfs/audit.h"
#include "secretfs/crypto.h"
#include "secretfs/keys.h"
#include "secretfs/policy.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

void fs_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (fs_d.opts.foreground || fs_d.opts.debug) {
		fputs("secretfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(LOG_ERR, fmt, ap);
	}
	va_end(ap);
}

void fs_refused(uint32_t uid, const char *op, const char *secret,
		const char *name, int code, const char *why)
{
	if (!code || !(fs_d.opts.foreground || fs_d.opts.debug))
		return;
	fs_log("%s secrets/%s%s%s refused (%s) for uid %u: %s", op, secret,
	       name ? "/" : "", name ? name : "", sfs_err_name(code),
	       (unsigned)uid, why && *why ? why : sfs_strerror(code));
}

void fs_refused_err(uint32_t uid, const char *op, const char *secret,
		    const char *name, const struct sfs_error *err)
{
	fs_refused(uid, op, secret, name, err->code, err->msg);
}

int fs_errno(int code)
{
	const char *why;

	/* "EIO: the store failed; details in the daemon's log" */
	if (code == SFS_EIO || code == SFS_ENOSPC) {
		why = sfs_ctx_last_error(fs_d.ctx);
		fs_log("store error: %s", why ? why : sfs_strerror(code));
	}
	return sfs_err_errno(code);
}

void fs_reply_core(fuse_req_t req, int code)
{
	fuse_reply_err(req, fs_errno(code));
}
