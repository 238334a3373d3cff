/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: replaced by the real implementation. */
#include "sandbox/cgroup.h"
#include <errno.h>
int kiln_cgroup_create(const char *root, const char *name, const struct kiln_cgroup_limits *lim, struct kiln_cgroup **out, struct kiln_error **err) { return kiln_error_set(err, ENOSYS, "cgroup: not implemented"); }
int kiln_cgroup_attach(struct kiln_cgroup *cg, pid_t pid, struct kiln_error **err) { return kiln_error_set(err, ENOSYS, "stub"); }
int kiln_cgroup_stats(struct kiln_cgroup *cg, struct kiln_cgroup_stats *st, struct kiln_error **err) { return kiln_error_set(err, ENOSYS, "stub"); }
int kiln_cgroup_kill(struct kiln_cgroup *cg, struct kiln_error **err) { return kiln_error_set(err, ENOSYS, "stub"); }
void kiln_cgroup_destroy(struct kiln_cgroup *cg) { }
const char *kiln_cgroup_version(const struct kiln_cgroup *cg) { return "none"; }
