/*
 * `secretfs watch NAME... [--exec COMMAND] [--json]` (SPEC §3 "Change
 * notification", §4): follows secrets' defaults without a mount.
 *
 * It prints each NAME's state once at start, then one line per change:
 * `name version state` (version: the default version, 0 when none;
 * state: active, deactivated or deleted), or with --json one object per
 * line. A change is a move of the default version, of the secret's status
 * or of the default version's state, as the mounts' notifier sees it.
 * With --exec it also runs COMMAND (through /bin/sh -c) for each change
 * with SECRETFS_SECRET, SECRETFS_VERSION and SECRETFS_STATE set, serially:
 * the next change is looked at only once the command has exited, so at
 * most one runs at a time and they run in order; changes made meanwhile
 * are coalesced into the state found then. A failing command is reported
 * on stderr and the watch goes on.
 *
 * Changes are learnt from the store's generation (wait_change: the futex
 * on DIR/generation that writers wake, ctx_watch.c; a PostgreSQL store
 * would wait on LISTEN there instead), with a re-check every second.
 * No value is ever read: only records.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "secretfs/secret.h"
#include "secretfs/value.h"
#include "secretfs/version.h"

#define WATCH_RECHECK_MS 1000

struct watched {
	const char *name;
	uint32_t version; /* default version, 0: none */
	int state;	  /* enum w_state */
	int vstate;	  /* the default version's state, -1: unknown */
};

enum w_state { W_ACTIVE, W_DEACTIVATED, W_DELETED };

static const char *const state_names[] = {"active", "deactivated", "deleted"};

struct watch_args {
	const char *exec;
	int json;
	int first; /* argv index of the first NAME */
};

/* The secret as the store has it now. */
static void look(struct cli_session *s, struct watched *w)
{
	struct sfs_secret_rec r;
	struct sfs_version_rec vr;
	int full = 0;

	w->version = 0;
	w->vstate = -1;
	if (sfs_secret_get(s->ctx, &s->caller, w->name, &r, &full, &s->err)) {
		w->state = W_DELETED;
		return;
	}
	w->version = r.default_version;
	w->state = r.status == SFS_STATE_ACTIVE ? W_ACTIVE : W_DEACTIVATED;
	if (r.default_version &&
	    sfs_version_info(s->ctx, &s->caller, w->name, r.default_version,
			     &vr, &s->err) == SFS_OK)
		w->vstate = vr.state;
}

/* One line on stdout; -1 when stdout is gone. */
static int report(const struct watched *w, int json)
{
	struct sfs_json *j;
	char *text;
	int rc = -1;

	if (!json) {
		rc = printf("%s %u %s\n", w->name, w->version,
			    state_names[w->state]) < 0
			 ? -1
			 : 0;
		return fflush(stdout) == EOF ? -1 : rc;
	}
	j = sfs_json_object();
	if (j && !sfs_json_set_str(j, "secret", w->name) &&
	    !sfs_json_set_int(j, "version", w->version) &&
	    !sfs_json_set_str(j, "state", state_names[w->state]) &&
	    (text = sfs_json_dump(j, 0))) {
		rc = puts(text) == EOF || fflush(stdout) == EOF ? -1 : 0;
		free(text);
	}
	sfs_json_free(j);
	return rc;
}

/* Run COMMAND for w and wait for it; a failure is reported. */
static void run_exec(const char *cmd, const struct watched *w)
{
	char ver[16];
	pid_t pid;
	int st;

	snprintf(ver, sizeof(ver), "%u", w->version);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (setenv("SECRETFS_SECRET", w->name, 1) ||
		    setenv("SECRETFS_VERSION", ver, 1) ||
		    setenv("SECRETFS_STATE", state_names[w->state], 1))
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (pid < 0)
		fprintf(stderr, "secretfs: watch: cannot run the command: %s\n",
			strerror(errno));
	else if (WIFSIGNALED(st))
		fprintf(stderr,
			"secretfs: watch: command for '%s' version %s "
			"killed by signal %d\n",
			w->name, ver, WTERMSIG(st));
	else if (WEXITSTATUS(st))
		fprintf(stderr,
			"secretfs: watch: command for '%s' version %s "
			"failed: exit %d\n",
			w->name, ver, WEXITSTATUS(st));
}

/* Block until the store may have changed; the generation then. */
static uint64_t wait_change(struct cli_session *s, uint64_t seen)
{
	return sfs_ctx_watch_wait(s->ctx, seen, WATCH_RECHECK_MS);
}

static int follow(struct cli_session *s, struct watched *w, size_t n,
		  const struct watch_args *a)
{
	struct watched now;
	uint64_t gen = sfs_ctx_generation(s->ctx);
	size_t i;

	for (i = 0; i < n; i++) {
		look(s, &w[i]);
		if (report(&w[i], a->json))
			return EXIT_FAIL;
	}
	for (;;) {
		gen = wait_change(s, gen);
		for (i = 0; i < n; i++) {
			now = w[i];
			look(s, &now);
			if (now.version == w[i].version &&
			    now.state == w[i].state &&
			    now.vstate == w[i].vstate)
				continue;
			w[i] = now;
			if (report(&now, a->json))
				return EXIT_FAIL;
			if (a->exec)
				run_exec(a->exec, &now);
		}
	}
}

static int watch_parse(const struct cli_cmd *cmd, int argc, char **argv,
		       struct watch_args *a)
{
	const struct cli_opt opts[] = {
	    {.name = "exec", .arg = &a->exec},
	    {.name = "json", .flag = &a->json},
	    {.name = NULL},
	};
	int rc = cli_parse(cmd, argc, argv, opts, NULL, 1, 256);

	a->first = optind;
	return rc;
}

static int watch_run(const struct cli_cmd *cmd, const struct cli_global *g,
		     int argc, char **argv)
{
	struct watch_args a = {NULL, g->json, 0};
	struct cli_session s;
	struct watched *w = NULL;
	size_t i, n;
	int rc = watch_parse(cmd, argc, argv, &a);

	if (rc != CLI_GO)
		return rc;
	n = (size_t)(argc - a.first);
	w = calloc(n, sizeof(*w));
	if (!w) {
		fprintf(stderr, "secretfs: out of memory\n");
		return EXIT_FAIL;
	}
	for (i = 0; i < n; i++)
		w[i].name = argv[a.first + (int)i];
	signal(SIGPIPE, SIG_IGN); /* a closed stdout ends the watch */
	rc = cli_session_open(&s, g);
	if (rc == EXIT_OK) {
		rc = follow(&s, w, n, &a);
		if (rc)
			fprintf(stderr, "secretfs: watch: cannot write "
					"output\n");
	}
	cli_session_close(&s);
	free(w);
	return rc;
}

const struct cli_cmd cli_watch_cmd = {
    "watch",
    "Usage: secretfs watch NAME... [--exec COMMAND] [--json]\n"
    "\n"
    "Print each secret's default version and state (active, deactivated,\n"
    "deleted) once, then one line per change: 'name version state'. Needs\n"
    "no mount. With --exec, also run COMMAND (with /bin/sh) after each\n"
    "change, with SECRETFS_SECRET, SECRETFS_VERSION and SECRETFS_STATE\n"
    "set; one at a time, in order; a failing command is reported and the\n"
    "watch goes on.\n"
    "\n"
    "  --exec COMMAND  run COMMAND at each change (e.g. 'nginx -s reload')\n"
    "  --json          one JSON object per line\n"
    "  -h, --help      print this help\n",
    watch_run,
};
