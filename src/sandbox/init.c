/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pid 1 of the sandbox. It is our code, running as root of the new user
 * namespace; the build must never get a handle on it:
 *  - non-dumpable, so /proc/1/{environ,mem,exe,fd} are closed to the build
 *    (and the build has no capabilities, so ptrace of init is refused too);
 *  - its copy of the caller's environment and arguments is wiped from
 *    memory, so /proc/1/environ and /proc/1/cmdline show nothing even if
 *    the first layer failed;
 *  - it installs no signal handlers: the kernel drops signals sent to a
 *    pid-namespace init from inside the namespace unless init handles them,
 *    and Landlock (ABI >= 6) scopes the build's signals as well.
 * When the build exits, init reports its status and exits; the kernel then
 * kills every process left in the namespace (setsid, double fork, nohup).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sys.h"
#include "sandbox/internal.h"

int kiln_msg_send(int sock, uint32_t type, int32_t code, int fd, const char *text)
{
	struct kiln_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.code = code;
	if (text != NULL)
		snprintf(m.text, sizeof(m.text), "%s", text);
	return kiln_send_fd(sock, fd, &m, sizeof(m));
}

int kiln_msg_recv(int sock, struct kiln_msg *m, int *fd)
{
	int got = -1;
	ssize_t n = kiln_recv_fd(sock, &got, m, sizeof(*m));

	if (n <= 0) {
		if (got >= 0)
			close(got);
		return (int)n;
	}
	/* Exact size, NUL-terminated text, fds only where expected. */
	if ((size_t)n != sizeof(*m) || memchr(m->text, '\0', sizeof(m->text)) == NULL ||
	    (got >= 0 && fd == NULL)) {
		if (got >= 0)
			close(got);
		errno = EBADMSG;
		return -1;
	}
	if (fd != NULL)
		*fd = got;
	return 1;
}

void kiln_child_fail(int chan, const char *fmt, ...)
{
	char text[sizeof(((struct kiln_msg *)0)->text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	kiln_msg_send(chan, KILN_MSG_ERROR, 0, -1, text);
	_exit(KILN_EXIT_SETUP);
}

void kiln_child_fail_err(int chan, struct kiln_error *err)
{
	kiln_child_fail(chan, "%s", err ? err->msg : "unknown error");
}

/* Zero the memory that /proc/self/{cmdline,environ} read from: the range
 * the kernel recorded at execve (fields 48-51 of /proc/self/stat). */
static void wipe_exec_strings(void)
{
	char buf[4096];
	unsigned long v[4];
	char *p;
	int field = 2, i;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = kiln_read_all(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* comm may contain spaces: parse from the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return;
	p++;
	while (*p && field < 48) {
		if (*p == ' ')
			field++;
		p++;
	}
	for (i = 0; i < 4; i++) {
		char *end;

		v[i] = strtoul(p, &end, 10);
		if (end == p)
			return;
		p = end + (*end == ' ');
	}
	/* v = arg_start, arg_end, env_start, env_end */
	/* The kernel places the environment right after the arguments:
	 * env_start == arg_end is the normal case. */
	if (v[2] >= v[1] && v[3] > v[2] && v[3] - v[2] < (64UL << 20))
		memset((void *)v[2], 0, v[3] - v[2]);
	if (v[1] > v[0] && v[1] - v[0] < (64UL << 20)) {
		memset((void *)v[0], 0, v[1] - v[0]);
		memcpy((void *)v[0], "kiln-init", v[1] - v[0] >= 10 ? 10 : v[1] - v[0]);
	}
	clearenv();
}

void kiln_init_main(struct kiln_sandbox *sb, int chan, int bchan, int out_w, int err_w)
{
	int keep[6 + KILN_MAX_BINDS] = {chan, bchan, out_w, err_w};
	size_t nkeep = 4;
	struct kiln_error *err = NULL;
	struct kiln_msg m;
	sigset_t all;
	int ruleset, bpf = -1, status = 0, r;
	pid_t build, w;

	/* Dumpable until the supervisor has written our id maps (it needs
	 * /proc/PID/uid_map to be ours); nothing else runs in here before. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Leave the caller's session and terminal: init never holds the
	 * caller's stdin/stdout/stderr (which may be the operator's tty). */
	{
		int dn = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (dn < 0 || dup2(dn, 0) < 0 || dup2(dn, 1) < 0 || dup2(dn, 2) < 0)
			kiln_child_fail(chan, "stdio to /dev/null: %s", strerror(errno));
		if (dn > 2)
			close(dn);
		if (setsid() < 0)
			kiln_child_fail(chan, "setsid: %s", strerror(errno));
	}
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (size_t i = 0; i < sb->nbinds; i++)
		if (sb->binds[i].tree_fd >= 0)
			keep[nkeep++] = sb->binds[i].tree_fd;
	if (sb->disk_fd >= 0)
		keep[nkeep++] = sb->disk_fd;
	if (sb->archive_fd >= 0)
		keep[nkeep++] = sb->archive_fd;
	if (kiln_close_fds_except(keep, nkeep) < 0)
		kiln_child_fail(chan, "close inherited file descriptors: %s", strerror(errno));
	wipe_exec_strings();

	/* The supervisor writes our id maps and puts us in the cgroup. */
	r = kiln_msg_recv(chan, &m, NULL);
	if (r <= 0 || m.type != KILN_MSG_GO)
		_exit(KILN_EXIT_SETUP);

	if (!sb->rootless && setgroups(0, NULL) < 0)
		kiln_child_fail(chan, "setgroups: %s", strerror(errno));
	if (setresgid(sb->init_gid, sb->init_gid, sb->init_gid) < 0 ||
	    setresuid(sb->init_uid, sb->init_uid, sb->init_uid) < 0)
		kiln_child_fail(chan, "become root of the user namespace: %s", strerror(errno));
	/* A credential change clears the parent-death signal: set it again.
	 * Had the supervisor already died, the CONTINUE below reads EOF. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		kiln_child_fail(chan, "parent-death signal: %s", strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0) < 0)
		kiln_child_fail(chan, "make init non-dumpable: %s", strerror(errno));
	if (sethostname(KILN_HOSTNAME, strlen(KILN_HOSTNAME)) < 0 ||
	    setdomainname(KILN_HOSTNAME, strlen(KILN_HOSTNAME)) < 0)
		kiln_child_fail(chan, "uts namespace: set hostname: %s", strerror(errno));
	if (kiln_mounts_setup(sb, chan, &err) < 0 || kiln_net_lo_up(&err) < 0)
		kiln_child_fail_err(chan, err);
	for (size_t i = 0; i < sb->nbinds; i++)
		if (sb->binds[i].tree_fd >= 0) {
			close(sb->binds[i].tree_fd);
			sb->binds[i].tree_fd = -1;
		}
	ruleset = kiln_landlock_ruleset(sb, &err);
	if (ruleset < 0)
		kiln_child_fail_err(chan, err);

	/* The supervisor has copied the source in, put us in the run's cgroup
	 * and compiled the seccomp program meanwhile. */
	r = kiln_msg_recv(chan, &m, &bpf);
	if (r <= 0 || m.type != KILN_MSG_CONTINUE || bpf < 0)
		_exit(KILN_EXIT_SETUP);
	/* Now that we are in it, the run's cgroup becomes our cgroup root. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		kiln_child_fail(chan, "cgroup namespace: %s", strerror(errno));

	build = fork();
	if (build < 0)
		kiln_child_fail(chan, "fork the build: %s", strerror(errno));
	if (build == 0) {
		close(chan);
		kiln_exec_main(sb, bchan, out_w, err_w, ruleset, bpf);
	}
	close(bchan);
	close(out_w);
	close(err_w);
	close(ruleset);
	close(bpf);
	kiln_msg_send(chan, KILN_MSG_STARTED, sb->landlock_abi, -1, NULL);

	/* Reap everything (orphans are re-parented to us) until the build
	 * itself is gone. */
	for (;;) {
		int st;

		w = waitpid(-1, &st, __WALL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (w == build) {
			status = st;
			break;
		}
	}
	kiln_msg_send(chan, KILN_MSG_EXIT, status, -1, NULL);
	_exit(0);
}
