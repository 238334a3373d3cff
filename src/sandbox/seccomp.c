/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: replaced by the real implementation. */
#include "sandbox/seccomp.h"
#include <errno.h>
const struct kiln_seccomp_rule kiln_seccomp_rules[] = { { "mount", -1, EPERM, "stub" } };
const size_t kiln_seccomp_nrules = 1;
int kiln_seccomp_install(struct kiln_error **err) { return kiln_error_set(err, ENOSYS, "seccomp: not implemented"); }
int kiln_seccomp_handle(int notify_fd, struct kiln_result *r, struct kiln_error **err) { return kiln_error_set(err, ENOSYS, "seccomp: not implemented"); }
