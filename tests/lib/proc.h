/*
 * Run a program the way a user would, for the suites that drive the built
 * binary (SECRETFS_BIN): argv, environment changes, bytes on stdin (a pipe,
 * or a pseudo-terminal when the test needs isatty(0)), an optional uid/gid
 * to drop to (root only), and stdout, stderr and the exit status captured
 * whole. The program runs in a session of its own, so it never reaches the
 * terminal the tests run from (a prompt there would hang the run). No
 * timeouts: a test that hangs is a bug Check's own timeout
 * reports.
 */
#ifndef SECRETFS_TEST_PROC_H
#define SECRETFS_TEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct tu_proc {
	/* in */
	const char *const *argv; /* argv[0] is the program's path */
	/* Applied to the inherited environment in order: "NAME=VALUE" sets,
	 * "NAME" unsets. NULL-terminated; may be NULL. */
	const char *const *env;
	const void *in;  /* stdin bytes; NULL: stdin is /dev/null */
	size_t in_len;
	int in_tty;      /* stdin is a pseudo-terminal fed with in */
	const char *tty_wait; /* with in_tty: feed in only once the program
			       * wrote this to the terminal (a prompt) */
	int drop;        /* setgroups/setgid/setuid to gid, uid first */
	uid_t uid;
	gid_t gid;
	/* out: malloc'd, NUL-terminated (lengths exclude the NUL) */
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
	int status; /* exit code, or 128 + signal number */
	char *tty_out;   /* what the program wrote to the terminal */
	size_t tty_len;
	/* private: the running program */
	pid_t pid;
	int feed_fd, out_fd, err_fd, tty_eof;
	size_t fed, out_cap, err_cap, tty_cap;
};

/* Run p to completion. 0, or -1 when the program could not be started. */
int tu_proc_run(struct tu_proc *p);

/*
 * For programs that run until stopped (audit --follow, a foreground
 * mount): start p, wait until its stdout holds needle (0) or it closed
 * stdout first (-1), then stop it with a signal. tu_proc_stop() reaps it
 * and fills out, err and status as tu_proc_run() does. Both wait for
 * stdout and stderr to close: a program that leaves a daemon holding them
 * open makes them wait for the daemon too.
 */
int tu_proc_start(struct tu_proc *p);
int tu_proc_wait_output(struct tu_proc *p, const char *needle);
int tu_proc_stop(struct tu_proc *p, int sig);
/* Free the captured output. */
void tu_proc_release(struct tu_proc *p);

#endif
