/*
 * Error codes and error details shared by every module.
 *
 * Fallible functions return 0 or a negative enum sfs_err code; details go
 * into a caller-owned struct sfs_error (never a global: the daemon runs
 * handlers on many threads). sfs_err_errno() is the one table that maps a
 * core code to the errno the filesystem returns (SPEC §3); fs/ never
 * invents errno values. Messages are lowercase, say what failed then why,
 * and never contain secret bytes.
 *
 * A message "<subject>: <reason>" whose subject names an object (a
 * secret, a version, a key, ...) carries that object as data too (struct
 * sfs_object, written by sfs_error_about() from one constructor per kind,
 * so that the text and the data cannot drift): a front compares it with
 * the object of its own failing command (sfs_object_covers) instead of
 * reading the text.
 */
#ifndef SECRETFS_ERR_H
#define SECRETFS_ERR_H

#include <stddef.h>
#include <stdint.h>

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

/* The kinds of object a subject names, each with its words. */
enum sfs_obj_kind {
	SFS_OBJ_NONE = 0,  /* none: a subject that is not an object */
	SFS_OBJ_STORE,	   /* "store" */
	SFS_OBJ_STORE_DIR, /* where the store is: "store" (in "cannot find
			      the store") */
	SFS_OBJ_SECRET,	   /* "secret 'NAME'" */
	SFS_OBJ_VERSION,   /* "version N of 'NAME'"; N 0: the secret's
			      default or next version, as a command names it */
	SFS_OBJ_KEY,	   /* "key 'NAME'" */
	SFS_OBJ_KEYS,	   /* "keys": every key */
	SFS_OBJ_ROLE,	   /* "role 'NAME'" */
	SFS_OBJ_ROLES,	   /* "roles": every grant */
	SFS_OBJ_PRINCIPAL, /* "principal 'TEXT'" */
	SFS_OBJ_FILE	   /* "'PATH'" */
};

/* An object named as a subject names it: a name longer than the subject
 * shows is cut there (cut set), as the message shows it. */
struct sfs_object {
	enum sfs_obj_kind kind;
	int cut;	 /* name cut: the subject does not say which one */
	uint32_t number; /* a version's */
	char name[256];
};

/* The object of each kind: the name copied (cut at what the subject
 * shows: 128 bytes for secrets and keys, 32 for roles, 64 for
 * principals). */
struct sfs_object sfs_object_secret(const char *name);
struct sfs_object sfs_object_version(const char *name, uint32_t n);
struct sfs_object sfs_object_key(const char *name);
struct sfs_object sfs_object_role(const char *name);
struct sfs_object sfs_object_principal(const char *text);
struct sfs_object sfs_object_file(const char *path);
/* An object without a name: SFS_OBJ_STORE, STORE_DIR, KEYS or ROLES. */
struct sfs_object sfs_object_whole(enum sfs_obj_kind kind);

/* The object's words ("version 2 of 'db'") into buf[cap]. */
void sfs_object_text(const struct sfs_object *o, char *buf, size_t cap);

/*
 * Does a subject naming obj say nothing that a command acting on cmd
 * says already? Yes when obj is cmd (same kind, name and number), or a
 * secret whose version cmd is, or cmd's principal; not when a name is
 * cut, when obj is a version 0 (a command's version 0 is the default
 * version, not a number it gave), or when a name that holds a quote
 * appears where the line names it bare ('a'b' cannot be told from 'a'
 * then b'): the subject is kept then.
 */
int sfs_object_covers(const struct sfs_object *cmd,
		      const struct sfs_object *obj);

struct sfs_error {
	int code;
	char msg[256];
	/* Where the reason starts in msg when msg reads "<subject>:
	 * <reason>" (the subject being what the format put before its first
	 * ": "), else 0. Set with msg by sfs_error_set(), so that a front can
	 * print the reason alone without reading the text. */
	size_t why;
	/* What the subject names (SFS_OBJ_NONE: nothing, or no subject):
	 * set by sfs_error_about(), cleared by sfs_error_set(). */
	struct sfs_object obj;
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

/*
 * Record code and "<obj's words>: <reason>" (the reason printf-style
 * from fmt) in err (which may be NULL), with why at the reason and obj
 * as err->obj; return code.
 */
int sfs_error_about(struct sfs_error *err, int code,
		    const struct sfs_object *obj, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with words before the object's ("bad " principal 'x'). */
int sfs_error_about_after(struct sfs_error *err, int code, const char *lead,
			  const struct sfs_object *obj, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Reset err to SFS_OK with an empty message. err may be NULL. */
void sfs_error_clear(struct sfs_error *err);

/*
 * Make text one printable line, in place, for a message that quotes
 * names from users: each control byte, DEL, and byte of invalid or
 * truncated UTF-8 becomes '?'; valid UTF-8 is kept.
 */
void sfs_error_printable(char *text);

#endif
