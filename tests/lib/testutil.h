/*
 * Helpers shared by the Check suites: temporary directories and stores.
 * Every test gets a fresh temporary store (checked fixtures) and removes
 * it afterwards.
 */
#ifndef SECRETFS_TESTUTIL_H
#define SECRETFS_TESTUTIL_H

#include <stddef.h>

/* mkdtemp under $TMPDIR (default /tmp); aborts on failure. malloc'd. */
char *tu_tmpdir(const char *tag);
/* rm -rf path (no symlink following). */
void tu_rmrf(const char *path);
/* Write len bytes to path with the given mode; aborts on failure. */
void tu_write_file(const char *path, const void *data, size_t len, int mode);
/* Read a whole file; malloc'd, NUL-terminated; *len may be NULL. NULL when
 * it cannot be read. */
char *tu_read_file(const char *path, size_t *len);

#endif
