/*
 * See proc.h. The parent feeds stdin and drains stdout and stderr in one
 * poll loop, so that a child writing more than a pipe holds never
 * deadlocks against a parent still writing its input.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/proc.h"

struct sink {
	char *data;
	size_t len, cap;
};

static void sink_add(struct sink *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		s->data = realloc(s->data, s->cap);
		if (!s->data)
			abort();
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
}

static void apply_env(const char *const *env)
{
	const char *eq;
	char name[256];

	for (; env && *env; env++) {
		eq = strchr(*env, '=');
		if (!eq) {
			unsetenv(*env);
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
		setenv(name, eq + 1, 1);
	}
}

/* In the child: wire fds, drop ids, exec. Never returns. */
static void child(const struct tu_proc *p, int in_fd, const char *tty,
		  int out_fd, int err_fd)
{
	signal(SIGPIPE, SIG_DFL);
	/* a new session: the program never reaches the terminal the tests
	 * run on, only the pty when one is asked for (it becomes the
	 * controlling terminal) */
	setsid();
	if (tty)
		in_fd = open(tty, O_RDWR);
	if (in_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
	    dup2(err_fd, 2) < 0)
		_exit(127);
	apply_env(p->env);
	if (p->drop && (setgroups(1, &p->gid) || setgid(p->gid) ||
			setuid(p->uid)))
		_exit(126);
	execv(p->argv[0], (char *const *)p->argv);
	_exit(127);
}

/* stdin for the child: a pipe's read end, or a pty (master in *feed). */
static int open_input(const struct tu_proc *p, int *child_in, int *feed,
		      char *tty, size_t cap)
{
	int fds[2];

	*child_in = -1;
	*feed = -1;
	if (p->in_tty) {
		*feed = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (*feed < 0 || grantpt(*feed) || unlockpt(*feed) ||
		    ptsname_r(*feed, tty, cap))
			return -1;
		return 0;
	}
	if (!p->in) {
		*child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return *child_in < 0 ? -1 : 0;
	}
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	*child_in = fds[0];
	*feed = fds[1];
	return 0;
}

/* Feed input and drain output until both outputs are closed. */
static void pump(const struct tu_proc *p, int feed, int out, int err,
		 struct sink *o, struct sink *e)
{
	struct pollfd pf[3];
	size_t done = 0;
	char buf[65536];
	ssize_t n;
	int i;

	pf[0].fd = p->in ? feed : -1;
	pf[0].events = POLLOUT;
	pf[1].fd = out;
	pf[1].events = POLLIN;
	pf[2].fd = err;
	pf[2].events = POLLIN;
	if (pf[0].fd >= 0 && !p->in_len && !p->in_tty) {
		close(feed);
		pf[0].fd = -1;
	}
	while (pf[1].fd >= 0 || pf[2].fd >= 0) {
		if (poll(pf, 3, -1) < 0 && errno != EINTR)
			abort();
		if (pf[0].fd >= 0 && pf[0].revents) {
			n = write(feed, (const char *)p->in + done,
				  p->in_len - done);
			done += n > 0 ? (size_t)n : 0;
			if (n < 0 || done == p->in_len) {
				if (!p->in_tty) /* a pty stays open */
					close(feed);
				pf[0].fd = -1;
			}
		}
		for (i = 1; i < 3; i++) {
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			n = read(pf[i].fd, buf, sizeof(buf));
			if (n > 0)
				sink_add(i == 1 ? o : e, buf, (size_t)n);
			else if (n == 0 || errno != EINTR) {
				close(pf[i].fd);
				pf[i].fd = -1;
			}
		}
	}
}

int tu_proc_run(struct tu_proc *p)
{
	struct sink o = { NULL, 0, 0 }, e = { NULL, 0, 0 };
	int out[2], err[2], child_in, feed, st;
	char tty[128];
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	if (open_input(p, &child_in, &feed, tty, sizeof(tty)) ||
	    pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		child(p, child_in, p->in_tty ? tty : NULL, out[1], err[1]);
	if (child_in >= 0)
		close(child_in);
	close(out[1]);
	close(err[1]);
	sink_add(&o, "", 0);
	sink_add(&e, "", 0);
	pump(p, feed, out[0], err[0], &o, &e);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (p->in_tty && feed >= 0)
		close(feed);
	p->out = o.data;
	p->out_len = o.len;
	p->err = e.data;
	p->err_len = e.len;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

void tu_proc_release(struct tu_proc *p)
{
	free(p->out);
	free(p->err);
	p->out = p->err = NULL;
	p->out_len = p->err_len = 0;
}
