/*
 * Error codes and error details shared by every module.
 *
 * Fallible functions return 0 or a negative enum sfs_err code; details go
 * into a caller-owned struct sfs_error (never a global: the daemon runs
 * handlers on many threads). sfs_err_errno() is the one table that maps a
 * core code to the errno the filesystem returns (SPEC §3); fs/ never
 * invents errno values. Messages are lowercase, say what failed then why,
 * and never contain secret bytes.
 */
#ifndef SECRETFS_ERR_H
#define SECRETFS_ERR_H

#include <stddef.h>

enum sfs_err {
	SFS_OK = 0,
	SFS_ENOENT = -1,       /* no such secret, version, key; no default */
	SFS_ENODATA = -2,      /* no such attribute */
	SFS_EACCES = -3,       /* caller lacks the permission or role */
	SFS_EKEYREVOKED = -4,  /* secret or version deactivated */
	SFS_ENOKEY = -5,       /* KMS key deactivated or gone */
	SFS_EBADMSG = -6,      /* stored data failed authentication */
	SFS_EEXIST = -7,       /* name or version number taken */
	SFS_EINVAL = -8,       /* bad name, value, attribute value */
	SFS_ENAMETOOLONG = -9, /* name over 128 bytes */
	SFS_EFBIG = -10,       /* value over 65,536 bytes */
	SFS_EBUSY = -11,       /* lifecycle rule refused */
	SFS_ENOTEMPTY = -12,   /* versions left on a secret to delete */
	SFS_EPERM = -13,       /* operation has no meaning here */
	SFS_EROFS = -14,       /* read-only mount or store */
	SFS_EIO = -15,         /* the store failed */
	SFS_ENOMEM = -16,      /* out of memory */
	SFS_ENOSPC = -17,      /* the store's disk is full */
	SFS_EMASTER = -18,     /* wrong master key or passphrase */
	SFS_EKEYFILE = -19,    /* key file unsafe (group/other readable) */
	SFS_ENOSTORE = -20,    /* store not initialised */
	SFS_ERR_COUNT = 21
};

struct sfs_error {
	int code;
	char msg[256];
	/* Where the reason starts in msg when msg reads "<subject>:
	 * <reason>" (the subject being what the format put before its first
	 * ": "), else 0. Set with msg by sfs_error_set(), so that a front can
	 * print the reason alone without reading the text. */
	size_t why;
};

/* Short description of a code, e.g. "no such secret or version". */
const char *sfs_strerror(int code);

/* strerror(errnum) in lowercase, as every message is ("no such file or
 * directory"). Thread-safe: the text lives in a per-thread buffer, valid
 * until the thread's next call. */
const char *sfs_strerrno(int errnum);

/* Symbolic name for the audit log: "ok", "ENOENT", "EACCES", ... */
const char *sfs_err_name(int code);

/* errno for the filesystem (positive), e.g. SFS_EKEYREVOKED -> EKEYREVOKED.
 * SFS_OK gives 0; unknown codes give EIO. */
int sfs_err_errno(int code);

/*
 * Record code and a printf-style message in err (which may be NULL) and
 * return code, so callers can write `return sfs_error_set(err, ...)`.
 * The message must not contain secret bytes. A format "<subject>:
 * <reason>" (its first ": " ends the subject) sets err->why.
 */
int sfs_error_set(struct sfs_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reset err to SFS_OK with an empty message. err may be NULL. */
void sfs_error_clear(struct sfs_error *err);

/*
 * Make text one printable line, in place, for a message that quotes
 * names from users: each control byte, DEL, and byte of invalid or
 * truncated UTF-8 becomes '?'; valid UTF-8 is kept.
 */
void sfs_error_printable(char *text);

#endif
