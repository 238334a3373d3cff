/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The build process's seccomp policy (THREATS.md §4 and §5).
 *
 * Denied system calls are answered through seccomp user notification so
 * that the supervisor (outside the sandbox) can count them by name and
 * reply with the errno from the policy table. clone3 is answered ENOSYS
 * directly by the filter (libc then falls back to clone, whose namespace
 * flags are checked). Foreign ABIs (i386, x32) kill the process.
 */
#ifndef KILN_SANDBOX_SECCOMP_H
#define KILN_SANDBOX_SECCOMP_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "sandbox/sandbox.h"

/* One row of the policy table (exposed for unit tests and docs). Every
 * row is a syscall answered through user notification, so it is counted;
 * some rows apply only to certain arguments (see seccomp.c). clone3 and
 * openat2 are not rows: the filter answers them ENOSYS itself. */
struct kiln_seccomp_rule {
	const char *name; /* syscall name as libseccomp knows it */
	int nr_fallback;  /* x86_64 number if libseccomp lacks the name, else -1 */
	int err;	  /* errno returned when denied */
	const char *why;  /* threat class, e.g. "§4 nested namespaces" */
};
extern const struct kiln_seccomp_rule kiln_seccomp_rules[];
extern const size_t kiln_seccomp_nrules;

/* Build the filter and export its BPF program into a sealed memfd
 * (O_CLOEXEC), returned. The supervisor compiles it while init builds the
 * mounts, which keeps the compile (about a millisecond) off the start-up
 * path; the build process only loads it. */
int kiln_seccomp_compile(struct kiln_error **err);

/* Load the program in bpf_fd into the calling process (no_new_privs must be
 * set already) with a new listener, and return the notification fd
 * (FD_CLOEXEC). Fails closed: on error nothing may be run.
 *
 * The caller owns the fd: it passes it to the supervisor (kiln_send_fd)
 * and closes its own copy before execve. The command must never hold it,
 * or it could answer its own denials with success; FD_CLOEXEC is the last
 * line of that defence. If the supervisor closes its copy, denied syscalls
 * fail with ENOSYS from then on (still denied, no longer counted). A second
 * listener in the same process tree fails with EBUSY (kernel rule). */
int kiln_seccomp_load(int bpf_fd, struct kiln_error **err);

/* compile + load in one process (tests). */
int kiln_seccomp_install(struct kiln_error **err);

/* Supervisor: receive one notification from notify_fd, reply with the
 * policy's errno, and count it in r->denied / r->seccomp_denials (r may
 * be NULL: reply only). Call it when poll() reports notify_fd readable.
 * Returns 0 when handled, when the notification went stale (the process
 * died or was interrupted) and when nothing is pending (it never blocks;
 * stop polling on POLLHUP: every filtered process is gone), -1 on error.
 * Never trusts anything in the notification but the syscall number and
 * architecture. Not thread-safe for one r. */
int kiln_seccomp_handle(int notify_fd, struct kiln_result *r, struct kiln_error **err);

#endif
