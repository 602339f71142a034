/*
 * A throwaway PostgreSQL cluster for the suites: initdb and pg_ctl run as
 * the `postgres` user (runuser -u postgres --) in a temporary directory,
 * the server listening only on a unix socket in that directory (no TCP
 * port, nothing another test or host can reach). Start costs about a
 * second; stop kills the server (-m immediate) and removes the directory,
 * and is safe to call on a cluster that never started. The server
 * binaries missing is a loud failure (a message naming scripts/deps), not
 * a skip: CI installs them.
 *
 * The suites' stores each live in a schema of their own in the cluster's
 * `postgres` database (pgc_new_store), reached as the `postgres` role
 * through trust authentication on the private socket.
 *
 * pgc_start_net is the one exception to "no TCP port": for the partition
 * suite, the server also listens on one given address (a veth address the
 * suite made), optionally inside a network namespace (`ip netns exec`),
 * and trusts exactly one client address over TCP.
 */
#ifndef SECRETFS_TEST_PGCLUSTER_H
#define SECRETFS_TEST_PGCLUSTER_H

#include <limits.h>
#include <stddef.h>

struct pgcluster {
	char dir[PATH_MAX];	 /* the temporary directory ("" when none) */
	char data[PATH_MAX + 8]; /* DIR/data */
	char conninfo[PATH_MAX + 64]; /* base conninfo of the cluster */
	int running;
	char netns[64];	 /* pgc_start_net: the server's namespace, or "" */
	char listen[64]; /* pgc_start_net: its TCP address, or "" */
	char client[64]; /* pgc_start_net: the one TCP client trusted */
};

/* Start a fresh cluster. 0, or -1 with the reason on stderr (and nothing
 * left behind). */
int pgc_start(struct pgcluster *c);

/*
 * Start a fresh cluster that also listens on TCP address listen, port
 * 5432, run inside network namespace netns (NULL: the host's), trusting
 * TCP connections from client only. c->conninfo stays the unix socket;
 * the TCP conninfo goes to tcp (cap bytes). 0 or -1, as pgc_start.
 */
int pgc_start_net(struct pgcluster *c, const char *netns, const char *listen,
		  const char *client, char *tcp, size_t cap);

/*
 * A streaming standby of primary (pg_basebackup -R) in DIR/standby of the
 * primary's directory, so that pgc_stop(primary) stops and removes it
 * too, and make it synchronous (synchronous_standby_names = '*'). Its
 * conninfo is in s->conninfo. 0, or -1 with the reason on stderr.
 */
int pgc_start_standby(struct pgcluster *primary, struct pgcluster *s);

/* Stop the server (-m immediate), a standby made by pgc_start_standby
 * too, and remove the directory. */
void pgc_stop(struct pgcluster *c);

/* pg_ctl MODE (e.g. "restart -m immediate", "stop -m fast", "start") on
 * the running cluster: 0 or -1. */
int pgc_ctl(struct pgcluster *c, const char *mode);

/*
 * A conninfo for a new, empty store: base (a cluster's conninfo) with
 * search_path set to a schema made for it, unique in the cluster. Written
 * to out (cap bytes). 0, or -1 with the reason on stderr.
 */
int pgc_new_store(const char *base, char *out, size_t cap);

/* Run one SQL command on base through psql; the output (malloc'd, may be
 * NULL) goes to *out when out is not NULL. 0 when psql succeeded. */
int pgc_sql(const char *base, const char *sql, char **out);

#endif
