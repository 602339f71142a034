/*
 * Principals and callers (SPEC §1).
 *
 * Every principal is stored in its numeric form, `uid:N` or `gid:N`:
 * names (`user:NAME`, `group:NAME`) are resolved once, here, when an allow
 * list or a role grant is written, so that matching a caller
 * (sfs_principal_matches) needs no name service and gives the same answer
 * in the daemon as in the CLI. Matching is pure but for a caller's
 * supplementary groups, which the filesystem reads only when a gid entry
 * asks (struct sfs_caller_groups). N is 0..4294967294: (uint32_t)-1
 * is "no id" to the kernel. A normalised list is entries joined by ','
 * without spaces, each entry once, in the order first given.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "secretfs/principal.h"
#include "secretfs/store.h" /* SFS_PRINCIPAL_MAX */

#define ID_MAX	  4294967294u
#define ENTRY_MAX 256	/* longest principal text accepted in a list */
#define NSS_BUF	  16384 /* first buffer size for getpw*_r / getgr*_r */

/*
 * Parse an id of exactly len decimal digits (no sign, no spaces) into
 * *id. 0 on success, -1 otherwise.
 */
static int parse_id(const char *s, size_t len, uint32_t *id)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > ID_MAX)
			return -1;
	}
	*id = (uint32_t)v;
	return 0;
}

/*
 * Resolve a user (is_group 0) or group name to its id with the
 * reentrant name-service calls, growing the buffer on ERANGE.
 * 0 found, SFS_ENOENT not found, SFS_ENOMEM.
 */
static int resolve_name(const char *name, int is_group, uint32_t *id)
{
	size_t cap = NSS_BUF;
	char *buf = NULL, *nbuf;
	int rc;

	for (;;) {
		struct passwd pw, *pwr = NULL;
		struct group gr, *grr = NULL;

		nbuf = realloc(buf, cap);
		if (!nbuf) {
			rc = SFS_ENOMEM;
			goto out;
		}
		buf = nbuf;
		if (is_group)
			rc = getgrnam_r(name, &gr, buf, cap, &grr);
		else
			rc = getpwnam_r(name, &pw, buf, cap, &pwr);
		if (rc == ERANGE && cap < (1u << 24)) {
			cap *= 2;
			continue;
		}
		if (pwr)
			*id = (uint32_t)pwr->pw_uid;
		else if (grr)
			*id = (uint32_t)grr->gr_gid;
		rc = (pwr || grr) ? SFS_OK : SFS_ENOENT;
		goto out;
	}
out:
	free(buf);
	return rc;
}

static int bad_syntax(struct sfs_error *err, const char *text)
{
	struct sfs_object o = sfs_object_principal(text);

	return sfs_error_about_after(err, SFS_EINVAL, "bad ", &o,
				     "expected uid:N, gid:N, NAME, user:NAME "
				     "or group:NAME");
}

int sfs_principal_parse(const char *text, char *out, size_t cap,
			struct sfs_error *err)
{
	const char *kind = NULL, *arg;
	uint32_t id = 0;
	int rc, is_group;

	if (strncmp(text, "uid:", 4) == 0 || strncmp(text, "gid:", 4) == 0) {
		if (parse_id(text + 4, strlen(text + 4), &id) != 0)
			return bad_syntax(err, text);
		kind = text[0] == 'u' ? "uid" : "gid";
	} else if (strncmp(text, "user:", 5) == 0 ||
		   strncmp(text, "group:", 6) == 0 ||
		   (*text && !strchr(text, ':'))) {
		/* a bare NAME is user:NAME (SPEC §4: `alice` or `user:alice`) */
		is_group = strncmp(text, "group:", 6) == 0;
		arg = is_group		       ? text + 6
		      : strchr(text, ':') ? text + 5
					   : text;
		if (*arg == '\0')
			return bad_syntax(err, text);
		rc = resolve_name(arg, is_group, &id);
		if (rc == SFS_ENOMEM)
			return sfs_error_set(err, rc, "out of memory");
		if (rc != SFS_OK || id > ID_MAX)
			return sfs_error_set(err, SFS_EINVAL,
					     "unknown %s '%.64s'",
					     is_group ? "group" : "user", arg);
		kind = is_group ? "gid" : "uid";
	} else {
		return bad_syntax(err, text);
	}
	rc = snprintf(out, cap, "%s:%u", kind, (unsigned)id);
	if (rc < 0 || (size_t)rc >= cap)
		return sfs_error_set(err, SFS_EINVAL,
				     "principal '%.64s' too long", text);
	return SFS_OK;
}

/* Is the entry e[0..n) already in the normalised list? */
static int list_has(const char *list, const char *e, size_t n)
{
	const char *p = list, *end;

	while (*p) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		if ((size_t)(end - p) == n && memcmp(p, e, n) == 0)
			return 1;
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* Parse one trimmed entry s[0..n) and append it to out if new. */
static int list_add(const char *s, size_t n, char *out, size_t cap,
		    size_t *used, struct sfs_error *err)
{
	char text[ENTRY_MAX + 1], norm[32];
	size_t nlen;
	int rc;

	if (n == 0)
		return sfs_error_set(err, SFS_EINVAL,
				     "bad principal list: empty entry");
	if (n > ENTRY_MAX)
		return sfs_error_set(err, SFS_EINVAL,
				     "bad principal list: entry too long");
	memcpy(text, s, n);
	text[n] = '\0';
	rc = sfs_principal_parse(text, norm, sizeof(norm), err);
	if (rc != SFS_OK)
		return rc;
	nlen = strlen(norm);
	if (list_has(out, norm, nlen))
		return SFS_OK;
	if (*used + (*used ? 1 : 0) + nlen + 1 > cap)
		return sfs_error_set(err, SFS_EINVAL,
				     "principal list longer than %zu bytes",
				     cap - 1);
	if (*used)
		out[(*used)++] = ',';
	memcpy(out + *used, norm, nlen + 1);
	*used += nlen;
	return SFS_OK;
}

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

int sfs_principal_list_normalize(const char *list, char *out, size_t cap,
				 struct sfs_error *err)
{
	const char *p = list, *end, *a, *b;
	size_t used = 0;
	int rc = SFS_OK;

	if (cap == 0)
		return sfs_error_set(err, SFS_EINVAL, "no room for the list");
	out[0] = '\0';
	while (is_space(*p))
		p++;
	if (*p == '\0')
		return SFS_OK; /* a wholly empty list */
	for (p = list;; p = end + 1) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		for (a = p; a < end && is_space(*a); a++)
			;
		for (b = end; b > a && is_space(b[-1]); b--)
			;
		rc = list_add(a, (size_t)(b - a), out, cap, &used, err);
		if (rc != SFS_OK || *end == '\0')
			break;
	}
	if (rc != SFS_OK)
		out[0] = '\0';
	return rc;
}

/* Does the principal p[0..n) name the caller? A gid entry whose
 * membership cannot be read does not. */
static int entry_parse(const char *p, size_t n, struct sfs_principal_id *e);

static int match_one(const char *p, size_t n, const struct sfs_caller *c)
{
	struct sfs_principal_id e;

	if (entry_parse(p, n, &e) != 0)
		return 0;
	return sfs_principal_list_matches(&e, 1, c);
}

int sfs_caller_in_group(const struct sfs_caller *c, uint32_t gid)
{
	int i;

	if (c->gid == gid)
		return 1;
	for (i = 0; i < c->ngroups && i < SFS_CALLER_GROUPS_MAX; i++)
		if (c->groups[i] == gid)
			return 1;
	return c->more ? c->more->has(c->more, c, gid) : 0;
}

int sfs_principal_matches(const char *p, const struct sfs_caller *c)
{
	return match_one(p, strlen(p), c);
}

/* One normalised entry p[0..n) as a typed id; -1 when it is not one. */
static int entry_parse(const char *p, size_t n, struct sfs_principal_id *e)
{
	if (n < 4 || parse_id(p + 4, n - 4, &e->id) != 0)
		return -1;
	if (memcmp(p, "uid:", 4) == 0)
		e->kind = SFS_PRINCIPAL_UID;
	else if (memcmp(p, "gid:", 4) == 0)
		e->kind = SFS_PRINCIPAL_GID;
	else
		return -1;
	return 0;
}

size_t sfs_principal_list_parse(const char *list, struct sfs_principal_id *out,
				size_t cap)
{
	const char *p = list;
	size_t len, n = 0;

	while (*p && n < cap) {
		len = strcspn(p, ",");
		if (entry_parse(p, len, &out[n]) == 0)
			n++;
		p += len;
		p += *p == ',';
	}
	return n;
}

void sfs_principal_rec_load(struct sfs_secret_rec *r)
{
	r->nallow = (unsigned)sfs_principal_list_parse(
	    r->allowed, r->allow, SFS_ALLOW_ENTRIES_MAX);
}

void sfs_principal_rec_set(struct sfs_secret_rec *r, const char *list)
{
	snprintf(r->allowed, sizeof(r->allowed), "%s", list);
	sfs_principal_rec_load(r);
}

/* Entries of one kind of a parsed list. */
static int list_matches_kind(const struct sfs_principal_id *e, size_t n,
			     int kind, const struct sfs_caller *c)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (e[i].kind != kind)
			continue;
		if (kind == SFS_PRINCIPAL_UID && c->uid == e[i].id)
			return 1;
		if (kind == SFS_PRINCIPAL_GID &&
		    sfs_caller_in_group(c, e[i].id) > 0)
			return 1;
	}
	return 0;
}

int sfs_principal_list_matches(const struct sfs_principal_id *e, size_t n,
			       const struct sfs_caller *c)
{
	return list_matches_kind(e, n, SFS_PRINCIPAL_UID, c) ||
	       list_matches_kind(e, n, SFS_PRINCIPAL_GID, c);
}

/* Supplementary groups, at most SFS_CALLER_GROUPS_MAX of them. */
static void self_groups(struct sfs_caller *c)
{
	gid_t *g;
	int n, i;

	n = getgroups(0, NULL);
	if (n <= 0)
		return;
	g = calloc((size_t)n, sizeof(*g));
	if (!g)
		return;
	n = getgroups(n, g);
	for (i = 0; i < n && i < SFS_CALLER_GROUPS_MAX; i++)
		c->groups[i] = (uint32_t)g[i];
	c->ngroups = i;
	free(g);
}

static void self_comm(struct sfs_caller *c)
{
	FILE *f = fopen("/proc/self/comm", "re");
	size_t n;

	if (!f)
		return;
	n = fread(c->comm, 1, sizeof(c->comm) - 1, f);
	fclose(f);
	c->comm[n] = '\0';
	if (n > 0 && c->comm[n - 1] == '\n')
		c->comm[n - 1] = '\0';
}

void sfs_caller_self(struct sfs_caller *c)
{
	memset(c, 0, sizeof(*c));
	c->uid = (uint32_t)getuid();
	c->gid = (uint32_t)getgid();
	self_groups(c);
	c->pid = (int32_t)getpid();
	self_comm(c);
	c->admin = 1;
	c->via_fs = 0;
	c->roles = SFS_ROLE_ALL;
}

/*
 * "uid:N(name)" for created_by. Every commit through the daemon asks for
 * one, and getpwuid_r() reads and parses /etc/passwd each time (or asks
 * a remote name service): the answers are kept for DESCRIBE_TTL seconds
 * in a few slots. A renamed user shows under the old name for at most
 * that long; the numeric id, what the rules use, is always exact.
 */
#define DESCRIBE_SLOTS 8
#define DESCRIBE_TTL   10

static struct {
	uint32_t uid;
	time_t at; /* 0: empty */
	char text[SFS_PRINCIPAL_MAX + 1];
} describe_cache[DESCRIBE_SLOTS];
static unsigned describe_next;
static pthread_mutex_t describe_lock = PTHREAD_MUTEX_INITIALIZER;

static int describe_cached(uint32_t uid, time_t now, char *out, size_t cap)
{
	unsigned i;
	int hit = 0;

	pthread_mutex_lock(&describe_lock);
	for (i = 0; i < DESCRIBE_SLOTS && !hit; i++)
		if (describe_cache[i].at && describe_cache[i].uid == uid &&
		    now - describe_cache[i].at < DESCRIBE_TTL &&
		    now >= describe_cache[i].at) {
			snprintf(out, cap, "%s", describe_cache[i].text);
			hit = 1;
		}
	pthread_mutex_unlock(&describe_lock);
	return hit;
}

static void describe_keep(uint32_t uid, time_t now, const char *text)
{
	unsigned i;

	pthread_mutex_lock(&describe_lock);
	i = describe_next++ % DESCRIBE_SLOTS;
	describe_cache[i].uid = uid;
	describe_cache[i].at = now;
	snprintf(describe_cache[i].text, sizeof(describe_cache[i].text), "%s",
		 text);
	pthread_mutex_unlock(&describe_lock);
}

void sfs_principal_describe(uint32_t uid, char *out, size_t cap)
{
	struct passwd pw, *pwr = NULL;
	time_t now = time(NULL);
	char text[SFS_PRINCIPAL_MAX + 1];
	char *buf;

	if (describe_cached(uid, now, out, cap))
		return;
	buf = malloc(NSS_BUF);
	if (buf && getpwuid_r((uid_t)uid, &pw, buf, NSS_BUF, &pwr) == 0 && pwr)
		snprintf(text, sizeof(text), "uid:%u(%s)", (unsigned)uid,
			 pwr->pw_name);
	else
		snprintf(text, sizeof(text), "uid:%u", (unsigned)uid);
	free(buf);
	snprintf(out, cap, "%s", text);
	describe_keep(uid, now, text);
}

/* The single roles and their names, for both directions. */
static const struct {
	enum sfs_role role;
	const char *name;
} role_names[] = {
    {SFS_ROLE_MANAGER, "manager"},
    {SFS_ROLE_KMS_USER, "kms-user"},
    {SFS_ROLE_KMS_VIEWER, "kms-viewer"},
};

#define NROLES (sizeof(role_names) / sizeof(role_names[0]))

const char *sfs_role_name(enum sfs_role r)
{
	size_t i;

	for (i = 0; i < NROLES; i++)
		if (role_names[i].role == r)
			return role_names[i].name;
	return NULL; /* not a single role */
}

enum sfs_role sfs_role_parse(const char *name)
{
	size_t i;

	for (i = 0; i < NROLES; i++)
		if (strcmp(role_names[i].name, name) == 0)
			return role_names[i].role;
	return (enum sfs_role)0;
}
