/*
 * The audit log's private view of audit_line.c: a line built with no
 * allocation, for the writer (audit.c), which writes one per value read.
 * sfs_audit_line() (secretfs/audit.h) is the same line in a heap buffer,
 * whatever its length.
 */
#ifndef SECRETFS_AUDIT_LINE_H
#define SECRETFS_AUDIT_LINE_H

#include <stddef.h>

#include "secretfs/audit.h"

/* A buffer of this size holds nearly every line. */
#define AUDIT_LINE_STACK 1024

/* The event's line, newline included and no NUL, into buf[0..cap): its
 * length, or 0 when it does not fit (then sfs_audit_line() makes it). */
size_t audit_line_fill(const struct sfs_audit_event *ev, char *buf,
		       size_t cap);

#endif
