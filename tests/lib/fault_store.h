/*
 * A failing-store hook for the Check suites: a struct sfs_store whose
 * operations forward to an inner store until told to fail, so that tests
 * can reach the SFS_EIO / SFS_ENOSPC paths of the services without a
 * broken disk (SQLite's own I/O-error tests work the same way).
 *
 * Counted operations are all but close and rollback, which always forward
 * (a test must be able to clean up). A failed commit rolls the inner
 * transaction back, as a real failed commit does (store.h).
 */
#ifndef SECRETFS_FAULT_STORE_H
#define SECRETFS_FAULT_STORE_H

#include "secretfs/store.h"

/* Wrap inner (taken over: closing the wrapper closes inner). Aborts when
 * out of memory. */
struct sfs_store *fault_store_wrap(struct sfs_store *inner);

/* The nth counted operation from now (1 = the next one) and every later
 * one fail with code, without reaching inner. */
void fault_store_fail(struct sfs_store *fs, int nth, int code);

/* As fault_store_fail, but only that one operation fails (sticky = 0). */
void fault_store_fail_once(struct sfs_store *fs, int nth, int code);

/* Every call of the operation named op ("commit", "version_insert", the
 * field names of struct sfs_store_ops) fails with code. */
void fault_store_fail_op(struct sfs_store *fs, const char *op, int code);

/* Stop failing. */
void fault_store_reset(struct sfs_store *fs);

/* Counted operations forwarded or failed since the wrap. */
int fault_store_calls(const struct sfs_store *fs);

#endif
