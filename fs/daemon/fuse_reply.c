/*
 * The daemon's one way to answer a refusal, and its log (SPEC §3).
 * fs_reply_err is the only caller of fuse_reply_err: every errno the
 * daemon sends is born here, from a core code through the one table
 * (fs_errno: sfs_err_errno) or from the few names of fuse_int.h. A store
 * failure (EIO, ENOSPC) is logged with the core's message and kept as
 * the daemon's last failure, .status's health (fs_last_failure). fs_log
 * writes to stderr in the foreground and to syslog once daemonized;
 * fs_refused logs a refusal and the core's reason under -f or -o debug.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "fuse_int.h"

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

/* The daemon's last store failure, for .status (fs_last_failure). */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_failure[256]; /* last_lock; "" while none */

/* A store failure: log it and keep it for .status. */
static void note_failure(int code, const char *why)
{
	if (code != SFS_EIO && code != SFS_ENOSPC)
		return;
	if (!why || !*why)
		why = sfs_strerror(code);
	/* "EIO: the store failed; details in the daemon's log" */
	fs_log("store error: %s", why);
	pthread_mutex_lock(&last_lock);
	snprintf(last_failure, sizeof(last_failure), "%s", why);
	pthread_mutex_unlock(&last_lock);
}

int fs_last_failure(char *out, size_t cap)
{
	int any;

	pthread_mutex_lock(&last_lock);
	any = last_failure[0] != '\0';
	snprintf(out, cap, "%s", last_failure);
	pthread_mutex_unlock(&last_lock);
	return any;
}

int fs_noted(int rc, const struct sfs_error *err)
{
	note_failure(rc, err->msg);
	return rc;
}

int fs_errno(int code)
{
	return sfs_err_errno(code);
}

void fs_reply_err(fuse_req_t req, int e)
{
	fuse_reply_err(req, e);
}

void fs_reply_core(fuse_req_t req, int code)
{
	fs_reply_err(req, fs_errno(code));
}
