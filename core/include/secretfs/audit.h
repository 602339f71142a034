/*
 * Audit log: one JSON line per value read (allowed or refused) and per
 * change, appended to DIR/audit.log (mode 0600) with O_APPEND and a single
 * write(2) per line, so lines from the CLI and the daemon never interleave.
 * No value or key material is ever passed in, so none can appear.
 *
 * Line fields (SPEC §5): time (RFC 3339 UTC), op, secret, secret_id,
 * version, result ("ok" or the errno name), and for filesystem calls uid,
 * gid, pid, comm. Reads are not fsync'd (the read path takes no database
 * transaction and no disk flush). A change's line is committed with the
 * change, in the store, then appended here; the core syncs the log and
 * drops the stored copies in batches, and appends any a crash left out
 * when the store is next opened for writing (see ctx.c).
 *
 * Refused lines are limited per uid (a summary line, op
 * "audit.suppressed", counts what was left out), and the log rotates
 * itself at a size (SPEC §5; see audit.c).
 *
 * Thread-safety: sfs_audit_write() and the other writers may be called
 * from many threads; sfs_audit_reopen() also from a signal handler.
 */
#ifndef SECRETFS_AUDIT_H
#define SECRETFS_AUDIT_H

#include <stdint.h>

#include "secretfs/err.h"
#include "secretfs/principal.h"

struct sfs_audit;

struct sfs_audit_event {
	const char *op;        /* e.g. "version.read", "secret.create" */
	const char *secret;    /* name, or NULL */
	const char *secret_id; /* or NULL */
	const char *key;       /* KMS key name for key ops, or NULL */
	uint32_t version;      /* 0: none */
	int result;            /* SFS_OK or an enum sfs_err code */
	const struct sfs_caller *caller;
	int sync;              /* fsync after the write (changes) */
	uint64_t suppressed;   /* summary lines: lines left out, else 0 */
	const char *host;      /* a shared store's host name, or NULL */
};

/* The size at which the log rotates by default, and how many old logs
 * (path.1 newest ... path.4 oldest) are kept. */
#define SFS_AUDIT_MAX_DEFAULT ((int64_t)64 << 20)
#define SFS_AUDIT_KEEP	      4

/* Open (creating with mode 0600) the log at path, never through a
 * symlink; a regular file of another owner is refused (SFS_EACCES).
 * It rotates at SFS_AUDIT_MAX_DEFAULT bytes. */
int sfs_audit_open(struct sfs_audit **out, const char *path,
		   struct sfs_error *err);
/* Flushes the summaries of left-out lines, then closes. */
void sfs_audit_close(struct sfs_audit *a);

/* Rotate at max bytes instead (0: never); before any line is written. */
void sfs_audit_set_max(struct sfs_audit *a, int64_t max);

/* Reopen the file at path at the next line (after logrotate moved it):
 * async-signal-safe, for a SIGHUP handler. A rotation by another
 * process is followed within a second without it. */
void sfs_audit_reopen(struct sfs_audit *a);

/* Append one line. SFS_EIO when it cannot be written whole: callers fail
 * the read rather than let it go unaudited. A refused line over its uid's
 * limit is counted for the summary instead, and is SFS_OK. a == NULL
 * (audit off) is a no-op returning SFS_OK. */
int sfs_audit_write(struct sfs_audit *a, const struct sfs_audit_event *ev);

/*
 * The pieces of sfs_audit_write(), for changes whose line is committed
 * with the change (ctx.c): the event's line with its newline, malloc'd
 * (free it); one write(2) of it, no sync; fdatasync of the log; the
 * log's size now; and the log's bytes from offset from to its end,
 * malloc'd and NUL-terminated (all of it when from is past the end: the
 * log was cut or replaced). Each returns SFS_OK or SFS_EIO (SFS_ENOMEM).
 * a == NULL: append and sync do nothing, size is 0.
 */
int sfs_audit_line(const struct sfs_audit_event *ev, char **line,
		   size_t *len);
int sfs_audit_append(struct sfs_audit *a, const char *line, size_t len);
int sfs_audit_sync(struct sfs_audit *a);
int64_t sfs_audit_size(struct sfs_audit *a);
int sfs_audit_tail(struct sfs_audit *a, int64_t from, char **buf,
		   size_t *len);

/*
 * Read the log at path back: cb gets each line (without newline) whose
 * secret equals secret (NULL: any) and whose time is at or after since_ns
 * (0: any). With follow, keeps waiting for new lines until cb returns
 * non-zero or the process is interrupted.
 */
typedef int (*sfs_audit_cb)(void *arg, const char *line);
int sfs_audit_read(const char *path, const char *secret, int64_t since_ns,
		   int follow, sfs_audit_cb cb, void *arg,
		   struct sfs_error *err);

/*
 * text (a line of the log) with every control character that a terminal
 * would act on written as \uXXXX (C0, DEL, C1, U+2028/U+2029, the
 * bidirectional controls) and every invalid UTF-8 byte as '?': what
 * `secretfs audit` prints, whatever the file holds. Lines are written
 * this way in the first place. malloc'd; NULL when out of memory.
 */
char *sfs_audit_printable(const char *text);

/*
 * `secretfs audit --all-hosts`: the change lines a shared store keeps
 * (every host's, in commit order), each with a "host" field naming the
 * host that made it, filtered as sfs_audit_read() filters. Opens the
 * store of directory dir read-only; needs no master key. SFS_EINVAL when
 * the store is not shared.
 */
int sfs_audit_read_all_hosts(const char *dir, const char *secret,
			     int64_t since_ns, sfs_audit_cb cb, void *arg,
			     struct sfs_error *err);

/* Format ns since the epoch as RFC 3339 UTC ("2026-11-28T18:04:40Z"). */
void sfs_time_format(int64_t ns, char out[32]);
/* Parse RFC 3339 ("2026-11-28T18:04:40Z", fractional seconds and
 * offsets allowed) or a date "2026-11-28"; SFS_EINVAL otherwise. */
int sfs_time_parse(const char *text, int64_t *ns);
/* Now, in ns since the epoch (CLOCK_REALTIME). */
int64_t sfs_time_now(void);

#endif
