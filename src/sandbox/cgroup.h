/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resource limits through cgroups: v2 (a delegated subtree) and v1 (the
 * memory, pids, cpu controllers). A run gets its own cgroup below the
 * caller's own cgroup, so limits imposed on kiln itself keep applying.
 */
#ifndef KILN_SANDBOX_CGROUP_H
#define KILN_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

struct kiln_cgroup_limits {
	uint64_t memory;     /* bytes incl. swap; 0 = none */
	uint64_t pids;       /* 0 = none */
	uint64_t cpu_milli;  /* thousandths of a CPU; 0 = none */
};

struct kiln_cgroup_stats {
	uint64_t peak_memory;   /* bytes, 0 if unknown */
	uint64_t oom_kills;     /* processes killed by the memory limit */
	uint64_t pids_max_hits; /* forks refused by the pids limit */
};

struct kiln_cgroup;

/* Create cgroup `name` (e.g. "kiln-slot-3") under the calling process's own
 * cgroup(s) and apply the limits. A stale cgroup of that name is emptied
 * and removed first. A limit that is set (non-zero) but cannot be applied
 * is an error naming the missing controller or file. err->code is EACCES,
 * EPERM or EROFS when cgroups are simply not writable by the caller (a
 * rootless run), ENOTSUP/ENOENT when a controller is missing.
 * root: NULL for the real /sys/fs/cgroup, or a directory to use as the
 * cgroup filesystem root instead (tests). */
int kiln_cgroup_create(const char *root, const char *name, const struct kiln_cgroup_limits *lim,
		       struct kiln_cgroup **out, struct kiln_error **err);
int kiln_cgroup_attach(struct kiln_cgroup *cg, pid_t pid, struct kiln_error **err);
int kiln_cgroup_stats(struct kiln_cgroup *cg, struct kiln_cgroup_stats *st,
		      struct kiln_error **err);
/* Kill every process in the cgroup and wait (bounded) until it is empty. */
int kiln_cgroup_kill(struct kiln_cgroup *cg, struct kiln_error **err);
/* Kill, remove, free. Accepts NULL. */
void kiln_cgroup_destroy(struct kiln_cgroup *cg);
/* "v1" or "v2" */
const char *kiln_cgroup_version(const struct kiln_cgroup *cg);

#endif
