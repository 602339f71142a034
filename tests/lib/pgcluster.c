/* A throwaway PostgreSQL cluster; see pgcluster.h. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/pgcluster.h"
#include "lib/proc.h"
#include "lib/testutil.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

/* argv as the postgres user, inside network namespace netns unless it is
 * NULL or "". */
static int run_as_postgres_in(const char *netns, const char *const *argv,
			      int quiet)
{
	const char *full[28] = {"/usr/sbin/ip", "netns", "exec", netns};
	struct tu_proc p;
	int i, rc, at = netns && netns[0] ? 4 : 0;

	full[at] = "/usr/sbin/runuser";
	full[at + 1] = "-u";
	full[at + 2] = "postgres";
	full[at + 3] = "--";
	for (i = 0; argv[i] && i < 19; i++)
		full[at + 4 + i] = argv[i];
	full[at + 4 + i] = NULL;
	memset(&p, 0, sizeof(p));
	p.argv = full;
	rc = tu_proc_run(&p);
	if (rc == 0 && p.status != 0 && !quiet)
		fprintf(stderr, "pgcluster: %s failed (%d): %s%s\n", argv[0],
			p.status, p.err ? p.err : "", p.out ? p.out : "");
	rc = rc == 0 && p.status == 0 ? 0 : -1;
	tu_proc_release(&p);
	return rc;
}

static int run_as_postgres(const char *const *argv, int quiet)
{
	return run_as_postgres_in(NULL, argv, quiet);
}

static int binaries_present(void)
{
	if (access(PG_BIN "/initdb", X_OK) == 0 &&
	    access(PG_BIN "/pg_ctl", X_OK) == 0 && getpwnam("postgres"))
		return 1;
	fprintf(stderr, "pgcluster: PostgreSQL 15 server binaries (" PG_BIN
			") or the postgres user are missing: run "
			"scripts/deps\n");
	return 0;
}

static int make_dir(struct pgcluster *c)
{
	struct passwd *pw = getpwnam("postgres");
	char *d = tu_tmpdir("pg");

	snprintf(c->dir, sizeof(c->dir), "%s", d);
	free(d);
	snprintf(c->data, sizeof(c->data), "%s/data", c->dir);
	if (!pw || chown(c->dir, pw->pw_uid, pw->pw_gid) != 0 ||
	    chmod(c->dir, 0700) != 0) {
		fprintf(stderr, "pgcluster: cannot hand %s to postgres\n",
			c->dir);
		return -1;
	}
	return 0;
}

int pgc_ctl(struct pgcluster *c, const char *mode)
{
	char opts[PATH_MAX + 192], log[PATH_MAX + 8], cmd[64];
	const char *argv[12];
	char *save = NULL, *w;
	int n = 0, stop = strncmp(mode, "stop", 4) == 0;

	snprintf(opts, sizeof(opts),
		 "-k %s -c listen_addresses='%s' -c fsync=off -c "
		 "max_connections=200",
		 c->dir, c->listen);
	snprintf(log, sizeof(log), "%s/log", c->dir);
	snprintf(cmd, sizeof(cmd), "%s", mode);
	argv[n++] = PG_BIN "/pg_ctl";
	for (w = strtok_r(cmd, " ", &save); w && n < 6;
	     w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n++] = "-w";
	argv[n++] = "-D";
	argv[n++] = c->data;
	if (!stop) {
		argv[n++] = "-o";
		argv[n++] = opts;
		argv[n++] = "-l";
		argv[n++] = log;
	}
	argv[n] = NULL;
	/* stop only signals the postmaster: it works after the namespace
	 * is gone too */
	return run_as_postgres_in(stop ? NULL : c->netns, argv, 0);
}

/* Trust TCP connections from c->client only (none when it is ""). */
static int trust_client(struct pgcluster *c)
{
	char path[PATH_MAX + 32];
	FILE *f;
	int rc;

	if (!c->client[0])
		return 0;
	snprintf(path, sizeof(path), "%s/pg_hba.conf", c->data);
	f = fopen(path, "a");
	if (!f)
		return -1;
	rc = fprintf(f, "host all postgres %s/32 trust\n", c->client) < 0;
	return fclose(f) != 0 || rc ? -1 : 0;
}

/* initdb and start c, whose network fields are set; see pgc_start. */
static int start_fresh(struct pgcluster *c)
{
	const char *initdb[] = {PG_BIN "/initdb", "-D", c->data,    "-A",
				"trust",	  "-U", "postgres", "--no-sync",
				"--locale=C",	  "-E", "UTF8",	    NULL};

	if (!binaries_present())
		return -1;
	if (make_dir(c) != 0 || run_as_postgres(initdb, 0) != 0 ||
	    trust_client(c) != 0 || pgc_ctl(c, "start") != 0) {
		pgc_stop(c);
		return -1;
	}
	c->running = 1;
	snprintf(c->conninfo, sizeof(c->conninfo),
		 "host=%s port=5432 user=postgres dbname=postgres", c->dir);
	return 0;
}

int pgc_start(struct pgcluster *c)
{
	memset(c, 0, sizeof(*c));
	return start_fresh(c);
}

int pgc_start_net(struct pgcluster *c, const char *netns, const char *listen,
		  const char *client, char *tcp, size_t cap)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->netns, sizeof(c->netns), "%s", netns ? netns : "");
	snprintf(c->listen, sizeof(c->listen), "%s", listen);
	snprintf(c->client, sizeof(c->client), "%s", client);
	if (start_fresh(c) != 0)
		return -1;
	if ((size_t)snprintf(tcp, cap,
			     "host=%s port=5432 user=postgres dbname=postgres",
			     listen) >= cap) {
		pgc_stop(c);
		return -1;
	}
	return 0;
}

void pgc_stop(struct pgcluster *c)
{
	char sdata[PATH_MAX + 32];
	const char *stop[] = {PG_BIN "/pg_ctl", "stop", "-m",
			      "immediate",	"-w",	"-D",
			      c->data,		NULL};
	const char *sstop[] = {PG_BIN "/pg_ctl",
			       "stop",
			       "-m",
			       "immediate",
			       "-w",
			       "-D",
			       sdata,
			       NULL};

	if (!c->dir[0])
		return;
	snprintf(sdata, sizeof(sdata), "%s/standby/data", c->dir);
	if (access(sdata, F_OK) == 0)
		run_as_postgres(sstop, 1);
	run_as_postgres(stop, 1);
	tu_rmrf(c->dir);
	c->dir[0] = '\0';
	c->running = 0;
}

int pgc_sql(const char *base, const char *sql, char **out)
{
	const char *argv[] = {"/usr/bin/psql",	 "-X", "-q", "-A", "-t", "-v",
			      "ON_ERROR_STOP=1", "-d", base, "-c", sql,	 NULL};
	struct tu_proc p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.argv = argv;
	rc = tu_proc_run(&p);
	rc = rc == 0 && p.status == 0 ? 0 : -1;
	if (rc != 0)
		fprintf(stderr, "pgcluster: psql: %s\n", p.err ? p.err : "");
	if (out) {
		*out = p.out;
		p.out = NULL;
	}
	tu_proc_release(&p);
	return rc;
}

int pgc_new_store(const char *base, char *out, size_t cap)
{
	static unsigned n;
	char schema[64], sql[128];

	snprintf(schema, sizeof(schema), "s_%ld_%u_%ld", (long)getpid(), ++n,
		 random() % 100000);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	if (pgc_sql(base, sql, NULL) != 0)
		return -1;
	if ((size_t)snprintf(out, cap, "%s options=-csearch_path=%s", base,
			     schema) >= cap)
		return -1;
	return 0;
}

int pgc_start_standby(struct pgcluster *primary, struct pgcluster *s)
{
	struct passwd *pw = getpwnam("postgres");
	const char *bb[] = {PG_BIN "/pg_basebackup",
			    "-h",
			    primary->dir,
			    "-p",
			    "5432",
			    "-U",
			    "postgres",
			    "-D",
			    s->data,
			    "-R",
			    "-X",
			    "stream",
			    NULL};

	memset(s, 0, sizeof(*s));
	if ((size_t)snprintf(s->dir, sizeof(s->dir), "%.4000s/standby",
			     primary->dir) >= sizeof(s->dir))
		return -1;
	snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
	if (!pw || mkdir(s->dir, 0700) != 0 ||
	    chown(s->dir, pw->pw_uid, pw->pw_gid) != 0 ||
	    run_as_postgres(bb, 0) != 0 || pgc_ctl(s, "start") != 0)
		return -1;
	s->running = 1;
	snprintf(s->conninfo, sizeof(s->conninfo),
		 "host=%s port=5432 user=postgres dbname=postgres", s->dir);
	if (pgc_sql(primary->conninfo,
		    "ALTER SYSTEM SET synchronous_standby_names = '*'",
		    NULL) != 0 ||
	    pgc_sql(primary->conninfo, "SELECT pg_reload_conf()", NULL) != 0)
		return -1;
	return 0;
}
