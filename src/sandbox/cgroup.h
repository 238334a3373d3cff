/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resource limits through cgroups: v2 (a delegated subtree) and v1 (the
 * memory, pids, cpu controllers). A run gets its own cgroup below the
 * caller's own cgroup, so limits imposed on kiln itself keep applying.
 *
 * Which hierarchy: when every controller a non-zero limit needs is mounted
 * as cgroup v1 (a hybrid host), v1 is used; otherwise the cgroup2 mount that
 * shows the caller's own cgroup, provided its cgroup.controllers offers the
 * needed controllers. Nothing is ever split between the two, and a limit
 * that is asked for is never silently dropped (CONVENTIONS.md 3).
 *
 * v1: the run's cgroup is created in the memory and pids hierarchies (always,
 * when mounted: stats and process tracking), cpu (when a CPU limit is set)
 * and freezer (when mounted: it makes killing a fork bomb race-free).
 * v2: one cgroup. When the caller's own cgroup still holds processes and the
 * controllers are not yet enabled in its cgroup.subtree_control, those
 * processes are moved into a leaf "kiln-supervisor" first (the "no internal
 * processes" rule; crun and podman do the same in a delegated subtree). That
 * move is not undone once the controllers are enabled: other runs need it.
 *
 * Memory limits include swap (v1 memory.memsw.limit_in_bytes, v2
 * memory.swap.max = 0). When the kernel has no swap accounting, that is
 * accepted only while no swap is active; otherwise creation fails.
 *
 * No global state; a struct kiln_cgroup is used by one thread at a time.
 */
#ifndef KILN_SANDBOX_CGROUP_H
#define KILN_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

struct kiln_cgroup_limits {
	uint64_t memory;    /* bytes incl. swap; 0 = none */
	uint64_t pids;	    /* 0 = none */
	uint64_t cpu_milli; /* thousandths of a CPU; 0 = none; else >= 10 (kernel minimum) */
};

struct kiln_cgroup_stats {
	uint64_t peak_memory;	/* bytes, 0 if unknown */
	uint64_t oom_kills;	/* processes killed by the memory limit */
	uint64_t pids_max_hits; /* forks refused by the pids limit */
	uint64_t cpu_user_ns;	/* CPU time of every process that was in the */
	uint64_t cpu_sys_ns;	/* cgroup (v1 cpuacct, v2 cpu.stat); 0 if unknown */
};

struct kiln_cgroup;

/* Create cgroup `name` (e.g. "kiln-slot-3") under the calling process's own
 * cgroup(s) and apply the limits. A stale cgroup of that name is emptied
 * and removed first (with any child cgroups, depth-first). A limit that is
 * set (non-zero) but cannot be applied is an error naming the missing
 * controller or file; everything created is removed again. err->code is
 * EACCES, EPERM or EROFS when cgroups are simply not writable by the caller
 * (a rootless run), ENOTSUP/ENOENT when a controller is missing.
 * name: [A-Za-z0-9._-]+, not "kiln-supervisor", not "." or "..".
 * root: NULL for the real cgroup filesystems (found in /proc/self/mountinfo),
 * or a directory to use as the cgroup filesystem instead (tests): if it has
 * any of the subdirectories memory/, pids/, cpu/, freezer/, each is a v1
 * hierarchy root; otherwise root is a v2 hierarchy. Either way the caller's
 * own cgroup is taken to be "/" there. root may be a real cgroupfs mount or
 * a plain directory: on a plain directory, control files that kiln writes
 * are created as it writes them, and removing a cgroup also removes the
 * plain files in it (the kernel would do both). Own-cgroup files the kernel
 * would provide (cgroup.controllers, cgroup.subtree_control, cgroup.procs,
 * cgroup.type of a non-root cgroup) are up to the test to create. */
int kiln_cgroup_create(const char *root, const char *name, const struct kiln_cgroup_limits *lim,
		       struct kiln_cgroup **out, struct kiln_error **err);
/* Move pid (a whole thread group) into the cgroup, in every hierarchy. On
 * failure the pid may be in some hierarchies: the caller kills it. */
int kiln_cgroup_attach(struct kiln_cgroup *cg, pid_t pid, struct kiln_error **err);
/* Missing statistics files (older kernels) read as 0. */
int kiln_cgroup_stats(struct kiln_cgroup *cg, struct kiln_cgroup_stats *st,
		      struct kiln_error **err);
/* Kill every process in the cgroup (and in cgroups below it) and wait, at
 * most 5 s, until it is empty. v2: cgroup.kill; v1 or older kernels: freeze
 * (when possible), SIGKILL each member through a pidfd after checking in
 * /proc/<pid>/cgroup that it is still a member (no recycled pid is hit),
 * thaw, repeat. kiln's own pid is never signalled. */
int kiln_cgroup_kill(struct kiln_cgroup *cg, struct kiln_error **err);
/* Kill, remove (child cgroups first, retrying EBUSY briefly), free. Accepts
 * NULL. Failures are not reported: a cgroup left behind is removed as stale
 * by the next kiln_cgroup_create() of the same name. */
void kiln_cgroup_destroy(struct kiln_cgroup *cg);
/* "v1" or "v2" ("none" for NULL) */
const char *kiln_cgroup_version(const struct kiln_cgroup *cg);

/* ---- Pure helpers (no system calls), exposed for unit tests and fuzzing -- */

/* The controllers kiln uses. */
enum kiln_cgroup_ctrl {
	KILN_CG_MEMORY,
	KILN_CG_PIDS,
	KILN_CG_CPU,
	KILN_CG_FREEZER,
	KILN_CG_CPUACCT, /* v1 only: CPU time of the run, even when it is killed */
	KILN_CG_NCTRL,
};
#define KILN_CG_BIT(c) (1U << (c))

/* "memory", "pids", "cpu", "freezer", "cpuacct"; NULL when out of range. */
const char *kiln_cgroup_ctrl_name(enum kiln_cgroup_ctrl c);

/* A process's cgroup paths, parsed from /proc/<pid>/cgroup text: "0::/path"
 * for v2, "N:ctrl,ctrl:/path" for v1 ("name=..." hierarchies are ignored).
 * Owns its strings; release with kiln_cgroup_self_clear(). */
struct kiln_cgroup_self {
	char *v2;		 /* NULL when there is no "0::" line */
	char *v1[KILN_CG_NCTRL]; /* NULL when the controller is not in v1 */
};
/* Fills *out (which must be zeroed or cleared). Lines that are not of the
 * form above are an error (EINVAL). */
int kiln_cgroup_parse_self(const char *text, struct kiln_cgroup_self *out, struct kiln_error **err);
void kiln_cgroup_self_clear(struct kiln_cgroup_self *s);

/* Where the caller's own cgroups are, from /proc/self/mountinfo text and the
 * caller's own paths. A mount serves a hierarchy only when the caller's own
 * path lies under the mount's root (field 4), so bind-mounted subtrees
 * (containers) resolve correctly; of several such mounts the first wins,
 * unless a later one is mounted on the same mount point (it shadows the
 * earlier). Owns its strings; release with kiln_cgroup_layout_clear(). */
struct kiln_cgroup_layout {
	char *v2_mount; /* cgroup2 mount point, or NULL */
	char *v2_dir;	/* own cgroup directory in it */
	char *v2_path;	/* own path in the hierarchy ("/..."), as in /proc/<pid>/cgroup */
	char *v1_mount[KILN_CG_NCTRL];
	char *v1_dir[KILN_CG_NCTRL];
	char *v1_path[KILN_CG_NCTRL];
};
int kiln_cgroup_parse_mountinfo(const char *mountinfo, const struct kiln_cgroup_self *self,
				struct kiln_cgroup_layout *out, struct kiln_error **err);
void kiln_cgroup_layout_clear(struct kiln_cgroup_layout *l);

/* Pick the hierarchy for the controllers in `need` (KILN_CG_BIT mask).
 * v2_controllers: the text of cgroup.controllers in layout->v2_dir, or NULL
 * when unreadable. Returns 1 (v1) or 2 (v2), or -1 with an error naming the
 * missing controller (ENOTSUP). v1 is chosen only when it also has memory
 * or pids mounted, which is what kiln tracks processes with. */
int kiln_cgroup_choose(const struct kiln_cgroup_layout *l, unsigned need,
		       const char *v2_controllers, struct kiln_error **err);

/* True when `word` is one of the space/comma/newline separated words of
 * `list` (cgroup.controllers, cgroup.subtree_control, mount options). */
bool kiln_cgroup_has_word(const char *list, const char *word);

/* Value of the line "key N" in a flat-keyed cgroup file (memory.events,
 * pids.events, memory.oom_control, cgroup.events, cpu.stat). Returns 0 and
 * stores it, or -1 when there is no such line or N is not a number. */
int kiln_cgroup_keyed(const char *text, const char *key, uint64_t *val);

/* True when /proc/swaps text lists at least one active swap area. */
bool kiln_cgroup_swap_active(const char *proc_swaps);

#endif
