/*
 * Audit lines (SPEC §5): an event as one JSON line, and any text made
 * safe for a terminal. The log file itself (writing, rotation, the
 * limit on refused lines) is audit.c; reading it back is audit_read.c.
 *
 * Field order: time, op, secret, secret_id, version, result, then key (key
 * operations only), then uid (every caller) and, for filesystem callers,
 * gid, pid and comm. Absent secret, secret_id and version are null, so that
 * every line has the same shape.
 *
 * A line is made twice over, with one result: by hand into a caller's
 * buffer with no allocation (one is built for every value read), and
 * through jansson when it does not fit. A line never holds a control
 * character raw, nor invalid UTF-8 (a '?' stands for each bad byte):
 * names and a process's comm may hold anything. Pure: no state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_line.h"
#include "secretfs/policy.h"
#include "secretfs/value.h"

#define NS_PER_SEC 1000000000LL

/*
 * Code points that a line never holds raw (SPEC §5: control characters
 * of any kind; issue 10, finding 11), since a terminal or a log viewer
 * acts on them: C0, DEL, C1 (U+0085 NEL among them), the line and
 * paragraph separators U+2028/U+2029, and the bidirectional controls
 * that reorder what a terminal shows (U+061C, U+200E/F, U+202A-E,
 * U+2066-9). They are written as \uXXXX.
 */
static int escaped_cp(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
	       cp == 0x2029 || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Set key to text, null when text is NULL. JSON strings must be UTF-8, and
 * a name or a process's comm may not be: invalid bytes become '?', so that
 * a strange name can never make the audit line (and so the read) fail.
 */
static int set_text(struct sfs_json *j, const char *key, const char *text)
{
	char *copy;
	size_t i, n, len;
	uint32_t cp;
	int rc;

	if (!text)
		return sfs_json_set_null(j, key);
	len = strlen(text);
	if (sfs_policy_utf8_check(text, len) == SFS_OK)
		return sfs_json_set_str(j, key, text);
	copy = strdup(text);
	if (!copy)
		return SFS_ENOMEM;
	for (i = 0; copy[i]; i += n) {
		n = sfs_policy_utf8_next(copy + i, len - i, &cp);
		if (n == 0) {
			copy[i] = '?';
			n = 1;
		}
	}
	rc = sfs_json_set_str(j, key, copy);
	free(copy);
	return rc;
}

static int set_caller(struct sfs_json *j, const struct sfs_caller *c)
{
	char comm[sizeof(c->comm)];
	int bad = 0;

	if (!c)
		return SFS_OK;
	bad |= sfs_json_set_int(j, "uid", c->uid);
	if (!c->via_fs)
		return bad ? SFS_ENOMEM : SFS_OK;
	memcpy(comm, c->comm, sizeof(comm));
	comm[sizeof(comm) - 1] = '\0';
	bad |= sfs_json_set_int(j, "gid", c->gid);
	bad |= sfs_json_set_int(j, "pid", c->pid);
	bad |= set_text(j, "comm", comm);
	return bad ? SFS_ENOMEM : SFS_OK;
}

/* The event as one JSON line with its newline; *line malloc'd. */
static int build_line(const struct sfs_audit_event *ev, char **line,
		      size_t *len)
{
	struct sfs_json *j = sfs_json_object();
	char now[32], *text = NULL;
	int bad = 0;

	*line = NULL;
	if (!j)
		return SFS_ENOMEM;
	sfs_time_format(sfs_time_now(), now);
	bad |= sfs_json_set_str(j, "time", now);
	bad |= set_text(j, "op", ev->op);
	bad |= set_text(j, "secret", ev->secret);
	bad |= set_text(j, "secret_id", ev->secret_id);
	bad |= ev->version ? sfs_json_set_int(j, "version", ev->version)
			   : sfs_json_set_null(j, "version");
	bad |= sfs_json_set_str(j, "result", sfs_err_name(ev->result));
	if (ev->key)
		bad |= set_text(j, "key", ev->key);
	if (ev->host)
		bad |= set_text(j, "host", ev->host);
	bad |= set_caller(j, ev->caller);
	if (ev->suppressed)
		bad |=
		    sfs_json_set_int(j, "suppressed", (int64_t)ev->suppressed);
	if (!bad)
		text = sfs_json_dump(j, 0);
	sfs_json_free(j);
	if (text) { /* jansson leaves DEL, C1, U+2028 ... raw */
		char *safe = sfs_audit_printable(text);

		free(text);
		text = safe;
	}
	if (!text)
		return SFS_ENOMEM;
	*len = strlen(text);
	*line = realloc(text, *len + 2);
	if (!*line) {
		free(text);
		return SFS_ENOMEM;
	}
	(*line)[(*len)++] = '\n';
	(*line)[*len] = '\0';
	return SFS_OK;
}

/*
 * The same line as build_line() gives, byte for byte (jansson's compact
 * form: quote, backslash and control characters escaped, \u00XX in
 * upper case, everything else as is), written into a caller's buffer
 * with no allocation: one is built for every value read. 0, or -1 when
 * it does not fit (then build_line() makes it).
 */
struct lbuf {
	char *p;
	size_t len, cap;
	int over;
};

static void put(struct lbuf *b, const char *s, size_t n)
{
	if (b->over || n > b->cap - b->len) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* \uXXXX of a code point below U+10000, upper-case hex as jansson's. */
static void put_u(struct lbuf *b, uint32_t cp)
{
	char esc[8];

	snprintf(esc, sizeof(esc), "\\u%04X", cp & 0xffff);
	put(b, esc, 6);
}

/* Length of the run of printable ASCII at s that needs no escape. */
static size_t plain_run(const unsigned char *s)
{
	size_t n = 0;

	while (s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"' && s[n] != '\\')
		n++;
	return n;
}

static void put_quoted(struct lbuf *b, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)text;
	const unsigned char *end = s + strlen(text);
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};
	uint32_t cp;
	size_t n;

	put(b, "\"", 1);
	for (; *s && !b->over; s += n) {
		n = plain_run(s);
		if (n) { /* copied as is, a run at a time */
			put(b, (const char *)s, n);
			continue;
		}
		n = sfs_policy_utf8_next(s, (size_t)(end - s), &cp);
		if (n == 0) { /* as set_text(): an invalid byte is '?' */
			put(b, "?", 1);
			n = 1;
		} else if (*s == '"' || *s == '\\') {
			esc[1] = (char)*s;
			put(b, esc, 2);
		} else if (*s < 0x20) {
			esc[1] = *s == '\b' ? 'b' : *s == '\f' ? 'f'
			       : *s == '\n' ? 'n' : *s == '\r' ? 'r'
			       : *s == '\t' ? 't' : 'u';
			esc[4] = hex[*s >> 4];
			esc[5] = hex[*s & 15];
			put(b, esc, esc[1] == 'u' ? 6 : 2);
		} else if (escaped_cp(cp)) {
			put_u(b, cp);
		} else {
			put(b, (const char *)s, n);
		}
	}
	put(b, "\"", 1);
}

static void put_field(struct lbuf *b, const char *key, const char *text)
{
	put(b, ",\"", 2);
	put(b, key, strlen(key));
	put(b, "\":", 2);
	if (text)
		put_quoted(b, text);
	else
		put(b, "null", 4);
}

/* The decimal digits of v, as "%lld" prints them, without stdio. */
static void put_num(struct lbuf *b, const char *key, int64_t v)
{
	char num[24], *p = num + sizeof(num);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	put(b, ",\"", 2);
	put(b, key, strlen(key));
	put(b, "\":", 2);
	put(b, p, (size_t)(num + sizeof(num) - p));
}

/* The line's time, formatted once a second per thread rather than at
 * every line (every open of a value writes one). */
static void line_time(char out[32])
{
	static _Thread_local int64_t second = -1;
	static _Thread_local char text[32];
	int64_t ns = sfs_time_now();

	if (ns < 0 || ns / NS_PER_SEC != second) {
		sfs_time_format(ns, text);
		second = ns < 0 ? -1 : ns / NS_PER_SEC;
	}
	memcpy(out, text, sizeof(text));
}

static int fast_line(const struct sfs_audit_event *ev, struct lbuf *b)
{
	const struct sfs_caller *c = ev->caller;
	char now[32], comm[sizeof(c->comm)];

	line_time(now);
	put(b, "{\"time\":\"", 9);
	put(b, now, strlen(now));
	put(b, "\"", 1);
	put_field(b, "op", ev->op);
	put_field(b, "secret", ev->secret);
	put_field(b, "secret_id", ev->secret_id);
	if (ev->version)
		put_num(b, "version", ev->version);
	else
		put_field(b, "version", NULL);
	put_field(b, "result", sfs_err_name(ev->result));
	if (ev->key)
		put_field(b, "key", ev->key);
	if (ev->host)
		put_field(b, "host", ev->host);
	if (c) {
		put_num(b, "uid", c->uid);
		if (c->via_fs) {
			memcpy(comm, c->comm, sizeof(comm));
			comm[sizeof(comm) - 1] = '\0';
			put_num(b, "gid", c->gid);
			put_num(b, "pid", c->pid);
			put_field(b, "comm", comm);
		}
	}
	if (ev->suppressed)
		put_num(b, "suppressed", (int64_t)ev->suppressed);
	put(b, "}\n", 2);
	return b->over ? -1 : 0;
}

char *sfs_audit_printable(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), n;
	const unsigned char *end = s + len;
	struct lbuf b = {NULL, 0, 6 * len + 1, 0};
	uint32_t cp;

	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	for (; *s; s += n) {
		n = sfs_policy_utf8_next(s, (size_t)(end - s), &cp);
		if (n == 0) { /* an invalid byte (0x9b is CSI to some) */
			put(&b, "?", 1);
			n = 1;
		} else if (escaped_cp(cp)) {
			put_u(&b, cp);
		} else {
			put(&b, (const char *)s, n);
		}
	}
	b.p[b.len] = '\0';
	return b.p;
}

size_t audit_line_fill(const struct sfs_audit_event *ev, char *buf, size_t cap)
{
	struct lbuf b = {buf, 0, cap, 0};

	return fast_line(ev, &b) == 0 ? b.len : 0;
}

int sfs_audit_line(const struct sfs_audit_event *ev, char **line, size_t *len)
{
	char stack[AUDIT_LINE_STACK];
	size_t n = audit_line_fill(ev, stack, sizeof(stack));

	if (n == 0)
		return build_line(ev, line, len);
	*line = malloc(n + 1);
	if (!*line)
		return SFS_ENOMEM;
	memcpy(*line, stack, n);
	(*line)[n] = '\0';
	*len = n;
	return SFS_OK;
}
