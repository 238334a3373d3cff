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

/* One row of the policy table (exposed for unit tests and docs). */
struct kiln_seccomp_rule {
	const char *name;     /* syscall name as libseccomp knows it */
	int nr_fallback;      /* x86_64 number if libseccomp lacks the name, else -1 */
	int err;              /* errno returned when denied */
	const char *why;      /* threat class, e.g. "§4 nested namespaces" */
};
extern const struct kiln_seccomp_rule kiln_seccomp_rules[];
extern const size_t kiln_seccomp_nrules;

/* Build the filter, load it into the calling thread (no_new_privs must be
 * set already) and return the notification fd (O_CLOEXEC). Fails closed. */
int kiln_seccomp_install(struct kiln_error **err);

/* Supervisor: receive one notification from notify_fd, reply with the
 * policy's errno, and count it in r->denied / r->seccomp_denials.
 * Returns 0 when handled (or when the notification went stale: the
 * process died), -1 on error. Never trusts anything in the notification
 * but the syscall number and architecture. */
int kiln_seccomp_handle(int notify_fd, struct kiln_result *r, struct kiln_error **err);

#endif
