/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The build process, between fork and execve. Every layer is applied here
 * or the process exits 125 through kiln_child_fail (CONVENTIONS.md 3):
 *   new session (no controlling terminal; the caller's terminal is never
 *   among our fds), stdin from /dev/null, only stdout/stderr pipes open,
 *   default signal state, resource rlimits, drop capabilities and lock
 *   securebits, no_new_privs, Landlock, seccomp (last: it also guards the
 *   steps before execve), then execve with a clean environment.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/sys.h"
#include "sandbox/internal.h"
#include "sandbox/seccomp.h"
#include "sandbox/unpack.h"
#include <sys/stat.h>

static void set_rlimit(int bchan, int which, const char *name, rlim_t v)
{
	struct rlimit rl = {v, v};

	if (setrlimit(which, &rl) < 0)
		kiln_child_fail(bchan, "setrlimit %s: %s", name, strerror(errno));
}

static char **build_env(const struct kiln_sandbox *sb)
{
	char **env = calloc(sb->nenv + 16, sizeof(char *));
	size_t n = 0, i, j;
	char buf[64];

	if (env == NULL)
		return NULL;
	env[n++] = strdup("PATH=" KILN_PATH);
	env[n++] = strdup("HOME=/home/" KILN_BUILDER_NAME);
	env[n++] = strdup(sb->fake_root ? "USER=root" : "USER=" KILN_BUILDER_NAME);
	env[n++] = strdup(sb->fake_root ? "LOGNAME=root" : "LOGNAME=" KILN_BUILDER_NAME);
	env[n++] = strdup("SHELL=/bin/sh");
	env[n++] = strdup("TMPDIR=/tmp");
	env[n++] = strdup("LANG=C.UTF-8");
	env[n++] = strdup("TERM=dumb");
	snprintf(buf, sizeof(buf), "SOURCE_DATE_EPOCH=%llu",
		 (unsigned long long)sb->source_date_epoch);
	env[n++] = strdup(buf);
	/* --env values replace defaults of the same name; later ones win. */
	for (i = 0; i < sb->nenv; i++) {
		size_t klen = (size_t)(strchr(sb->env[i], '=') - sb->env[i]) + 1;

		for (j = 0; j < n; j++)
			if (strncmp(env[j], sb->env[i], klen) == 0)
				break;
		if (j < n)
			free(env[j]);
		env[j] = strdup(sb->env[i]);
		if (j == n)
			n++;
	}
	env[n] = NULL;
	for (i = 0; i < n; i++)
		if (env[i] == NULL)
			return NULL;
	return env;
}

void kiln_exec_main(struct kiln_sandbox *sb, int bchan, int out_w, int err_w, int ruleset_fd,
		    int bpf_fd)
{
	const int keep[] = {bchan, ruleset_fd, bpf_fd, sb->archive_fd};
	extern char **environ;
	struct kiln_error *err = NULL;
	sigset_t none;
	char **env;
	int devnull, nfd, sig, e;

	if (setsid() < 0)
		kiln_child_fail(bchan, "setsid: %s", strerror(errno));
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		kiln_child_fail(bchan, "set up stdio: %s", strerror(errno));
	if (kiln_close_fds_except(keep, sb->archive_fd >= 0 ? 4 : 3) < 0)
		kiln_child_fail(bchan, "close inherited file descriptors: %s", strerror(errno));

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);

	set_rlimit(bchan, RLIMIT_CORE, "RLIMIT_CORE", 0);
	/* No single file larger than the disk: a huge sparse file is refused
	 * when written, not discovered at export. */
	set_rlimit(bchan, RLIMIT_FSIZE, "RLIMIT_FSIZE", (rlim_t)sb->limit[KILN_LIMIT_DISK]);
	nfd = 4096;
	set_rlimit(bchan, RLIMIT_NOFILE, "RLIMIT_NOFILE", (rlim_t)nfd);
	/* Counted per user namespace: a second fence behind the pids cgroup,
	 * and the only one when a rootless run cannot use cgroups. */
	set_rlimit(bchan, RLIMIT_NPROC, "RLIMIT_NPROC", (rlim_t)sb->limit[KILN_LIMIT_PIDS]);
	set_rlimit(bchan, RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE", 0);

	if (chdir("/workspace") < 0)
		kiln_child_fail(bchan, "chdir /workspace: %s", strerror(errno));
	env = build_env(sb);
	if (env == NULL)
		kiln_child_fail(bchan, "environment: out of memory");

	if (kiln_caps_drop_all(sb->build_uid, sb->build_gid, !sb->rootless, &err) < 0)
		kiln_child_fail(bchan, "capabilities: %s", err->msg);
	if (kiln_landlock_apply(ruleset_fd, &err) < 0)
		kiln_child_fail_err(bchan, err);
	close(ruleset_fd);

	nfd = kiln_seccomp_load(bpf_fd, &err);
	if (nfd < 0)
		kiln_child_fail_err(bchan, err);
	if (kiln_msg_send(bchan, KILN_MSG_NOTIFY_FD, 0, nfd, NULL) < 0)
		kiln_child_fail(bchan, "send seccomp listener: %s", strerror(errno));
	close(nfd);
	close(bpf_fd);

	/* The submitted archive is unpacked here: every protection above is in
	 * force, so a crafted archive gets no more than the script would. */
	if (sb->archive_fd >= 0) {
		struct kiln_unpack_limits lim = {
			.max_bytes = sb->limit[KILN_LIMIT_DISK],
			.max_files = sb->archive_max_files,
			.max_path = sb->archive_max_path,
		};
		char msg[sizeof(((struct kiln_msg *)0)->text)];

		if (sb->archive_max_bytes != 0 &&
		    (lim.max_bytes == 0 || sb->archive_max_bytes < lim.max_bytes))
			lim.max_bytes = sb->archive_max_bytes;
		umask(022);
		if (kiln_unpack(sb->archive_fd, &lim, msg, sizeof(msg)) < 0) {
			kiln_msg_send(bchan, KILN_MSG_ARCHIVE, 0, -1, msg);
			_exit(KILN_EXIT_DATAERR);
		}
		close(sb->archive_fd);
	}

	environ = env;
	execvp(sb->argv[0], sb->argv);
	e = errno;
	dprintf(2, "kiln: %s: %s\n", sb->argv[0], strerror(e));
	_exit(e == ENOENT ? KILN_EXIT_NOTFOUND : KILN_EXIT_NOEXEC);
}
