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

static void sink_add(char **data, size_t *len, size_t *cap, const char *p,
		     size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*data = realloc(*data, *cap);
		if (!*data)
			abort();
	}
	memcpy(*data + *len, p, n);
	*len += n;
	(*data)[*len] = '\0';
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

/* stdin for the child: /dev/null, a pipe's read end, or a pty (whose
 * master the parent keeps in feed_fd). */
static int open_input(struct tu_proc *p, int *child_in, char *tty,
		      size_t cap)
{
	int fds[2];

	*child_in = -1;
	p->feed_fd = -1;
	if (p->in_tty) {
		p->feed_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (p->feed_fd < 0 || grantpt(p->feed_fd) ||
		    unlockpt(p->feed_fd) || ptsname_r(p->feed_fd, tty, cap))
			return -1;
		return 0;
	}
	if (!p->in || !p->in_len) {
		*child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return *child_in < 0 ? -1 : 0;
	}
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	*child_in = fds[0];
	p->feed_fd = fds[1];
	return 0;
}

int tu_proc_start(struct tu_proc *p)
{
	int out[2], err[2], child_in;
	char tty[128];

	signal(SIGPIPE, SIG_IGN);
	p->out = p->err = p->tty_out = NULL;
	p->out_len = p->err_len = p->out_cap = p->err_cap = p->fed = 0;
	p->tty_len = p->tty_cap = 0;
	p->tty_eof = 0;
	if (open_input(p, &child_in, tty, sizeof(tty)) ||
	    pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		return -1;
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0)
		child(p, child_in, p->in_tty ? tty : NULL, out[1], err[1]);
	if (child_in >= 0)
		close(child_in);
	close(out[1]);
	close(err[1]);
	p->out_fd = out[0];
	p->err_fd = err[0];
	sink_add(&p->out, &p->out_len, &p->out_cap, "", 0);
	sink_add(&p->err, &p->err_len, &p->err_cap, "", 0);
	sink_add(&p->tty_out, &p->tty_len, &p->tty_cap, "", 0);
	return 0;
}

/* The terminal side: read what the program wrote to it, then feed the
 * input once the awaited prompt is there. */
static void pump_tty(struct tu_proc *p, short revents)
{
	char buf[4096];
	ssize_t n;

	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		n = read(p->feed_fd, buf, sizeof(buf));
		if (n > 0)
			sink_add(&p->tty_out, &p->tty_len, &p->tty_cap, buf,
				 (size_t)n);
		else if (n == 0 || errno != EINTR)
			p->tty_eof = 1; /* EIO: the program closed it */
	}
	if ((revents & POLLOUT) && p->fed < p->in_len) {
		n = write(p->feed_fd, (const char *)p->in + p->fed,
			  p->in_len - p->fed);
		p->fed = n > 0 ? p->fed + (size_t)n : p->in_len;
	}
}

static int tty_ready(const struct tu_proc *p)
{
	return !p->tty_wait || strstr(p->tty_out, p->tty_wait);
}

/* One round: feed what stdin takes, read what the outputs have. */
static void pump_once(struct tu_proc *p)
{
	struct pollfd pf[3];
	char buf[65536];
	ssize_t n;
	int i, feeding = p->feed_fd >= 0 && p->fed < p->in_len;

	pf[0].fd = p->feed_fd;
	pf[0].events = feeding ? POLLOUT : 0;
	if (p->in_tty) {
		pf[0].fd = p->tty_eof ? -1 : p->feed_fd;
		pf[0].events = POLLIN | (feeding && tty_ready(p) ? POLLOUT : 0);
	}
	pf[1].fd = p->out_fd;
	pf[1].events = POLLIN;
	pf[2].fd = p->err_fd;
	pf[2].events = POLLIN;
	if (poll(pf, 3, -1) < 0) {
		if (errno == EINTR)
			return;
		abort();
	}
	if (p->in_tty && pf[0].fd >= 0) {
		pump_tty(p, pf[0].revents);
	} else if (pf[0].fd >= 0 && pf[0].revents) {
		n = write(p->feed_fd, (const char *)p->in + p->fed,
			  p->in_len - p->fed);
		p->fed = n > 0 ? p->fed + (size_t)n : p->in_len;
		if (p->fed == p->in_len) {
			close(p->feed_fd); /* EOF on the program's stdin */
			p->feed_fd = -1;
		}
	}
	for (i = 1; i < 3; i++) {
		if (pf[i].fd < 0 || !pf[i].revents)
			continue;
		n = read(pf[i].fd, buf, sizeof(buf));
		if (n > 0 && i == 1)
			sink_add(&p->out, &p->out_len, &p->out_cap, buf,
				 (size_t)n);
		else if (n > 0)
			sink_add(&p->err, &p->err_len, &p->err_cap, buf,
				 (size_t)n);
		else if (n == 0 || errno != EINTR) {
			close(pf[i].fd);
			*(i == 1 ? &p->out_fd : &p->err_fd) = -1;
		}
	}
}

int tu_proc_wait_output(struct tu_proc *p, const char *needle)
{
	while (!strstr(p->out, needle)) {
		if (p->out_fd < 0)
			return -1;
		pump_once(p);
	}
	return 0;
}

/* Drain until both outputs close, then reap. */
static int finish(struct tu_proc *p)
{
	int st;

	while (p->out_fd >= 0 || p->err_fd >= 0)
		pump_once(p);
	while (waitpid(p->pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (p->feed_fd >= 0)
		close(p->feed_fd);
	p->feed_fd = -1;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

int tu_proc_stop(struct tu_proc *p, int sig)
{
	kill(p->pid, sig);
	return finish(p);
}

int tu_proc_run(struct tu_proc *p)
{
	if (tu_proc_start(p))
		return -1;
	return finish(p);
}

void tu_proc_release(struct tu_proc *p)
{
	free(p->out);
	free(p->err);
	free(p->tty_out);
	p->out = p->err = p->tty_out = NULL;
	p->out_len = p->err_len = p->out_cap = p->err_cap = 0;
	p->tty_len = p->tty_cap = 0;
}
