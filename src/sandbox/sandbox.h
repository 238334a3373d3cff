/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox engine: the only code in kiln that creates namespaces,
 * mounts, filters or cgroups. Builder API in the style of minijail:
 *
 *   struct kiln_sandbox *sb = kiln_sandbox_new();
 *   kiln_sandbox_set_command(sb, argv, &err);
 *   kiln_sandbox_set_source(sb, "/path/src", &err);
 *   ...
 *   kiln_sandbox_run(sb, &result, &err);   // apply every layer or run nothing
 *   kiln_result_free(result);
 *   kiln_sandbox_free(sb);
 *
 * Setters copy their arguments; the sandbox owns its copies.
 * kiln_sandbox_run() returns -1 only when the sandbox could not be set up
 * (exit status 125 by convention); everything that happens to the command
 * itself is described by the result.
 */
#ifndef KILN_SANDBOX_H
#define KILN_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

#define KILN_EXPORT __attribute__((visibility("default")))

/* Exit status conventions (CONVENTIONS.md 13). */
enum {
	KILN_EXIT_TIMEOUT = 124,
	KILN_EXIT_SETUP = 125,
	KILN_EXIT_NOEXEC = 126,
	KILN_EXIT_NOTFOUND = 127,
	KILN_EXIT_SIGNAL_BASE = 128,
	KILN_EXIT_DATAERR = 65, /* the source archive was refused (sysexits EX_DATAERR) */
};

enum kiln_limit {
	KILN_LIMIT_MEMORY,  /* bytes, swap included */
	KILN_LIMIT_PIDS,    /* tasks */
	KILN_LIMIT_CPUS,    /* thousandths of a CPU */
	KILN_LIMIT_DISK,    /* bytes: workspace + /tmp + $HOME together */
	KILN_LIMIT_TIMEOUT, /* seconds of wall-clock time */
	KILN_LIMIT_OUTPUT,  /* bytes of stdout+stderr */
	KILN_LIMIT__COUNT,
};

/* Defaults (documented in README and docs/sandbox.md). */
#define KILN_DEFAULT_MEMORY  (2ULL << 30)
#define KILN_DEFAULT_PIDS    1024ULL
#define KILN_DEFAULT_CPUS    0ULL /* 0: no CPU quota */
#define KILN_DEFAULT_DISK    (4ULL << 30)
#define KILN_DEFAULT_TIMEOUT 3600ULL
#define KILN_DEFAULT_OUTPUT  (64ULL << 20)

enum kiln_reason {
	KILN_REASON_EXITED,
	KILN_REASON_SIGNALED,
	KILN_REASON_TIMEOUT,
	KILN_REASON_MEMORY,
	KILN_REASON_PIDS,
	KILN_REASON_DISK,
	KILN_REASON_OUTPUT_LIMIT,
	KILN_REASON_CANCELLED,
	KILN_REASON_ARCHIVE, /* the source archive was refused (see archive_error) */
};

struct kiln_syscall_count {
	char name[32];
	uint64_t count;
};

struct kiln_result {
	int exit_code; /* what `kiln run` exits with */
	int status;    /* command's exit status when it exited, else -1 */
	int signal;    /* signal that killed it, else 0 */
	enum kiln_reason reason;
	uint64_t wall_ns, user_ns, sys_ns;
	uint64_t peak_memory; /* bytes, 0 if unknown */
	uint64_t output_bytes;
	uint64_t seccomp_denials;
	struct kiln_syscall_count denied[64];
	size_t ndenied;
	char **protections; /* NULL-terminated, what was applied */
	char **not_applied; /* NULL-terminated, what could not be (rootless) */
	/* export of /workspace/out */
	bool exported;
	uint64_t export_files, export_bytes;
	char **export_skipped; /* NULL-terminated "path: reason" */
	char *export_error;    /* NULL when the export succeeded */
	char *cgroup_version;  /* "v1", "v2" or NULL */
	char *archive_error;   /* why the source archive was refused, or NULL */
	uint64_t setup_ns;     /* from kiln_sandbox_run() to the start of the build */
};

/* Receives the build's output as it arrives (stream 1 or 2). Called from the
 * thread that called kiln_sandbox_run(). */
typedef void (*kiln_output_fn)(void *ctx, int stream, const char *buf, size_t len);

struct kiln_sandbox;

KILN_EXPORT struct kiln_sandbox *kiln_sandbox_new(void);
KILN_EXPORT void kiln_sandbox_free(struct kiln_sandbox *sb);

/* argv[0] is looked up in the sandbox's PATH. Copies argv. */
KILN_EXPORT int kiln_sandbox_set_command(struct kiln_sandbox *sb, char *const argv[],
					 struct kiln_error **err);
/* Contents copied into /workspace before the command starts. */
KILN_EXPORT int kiln_sandbox_set_source(struct kiln_sandbox *sb, const char *dir,
					struct kiln_error **err);
/* The source as a tar archive (plain, gzip, xz, zstd, bzip2) read from fd
 * (duplicated; the caller keeps its own). It is unpacked into /workspace
 * INSIDE the sandbox, by the build process after every protection is in
 * place and before the command runs, with libarchive's secure-extraction
 * flags as a second line: no absolute paths, no "..", no writing through
 * symlinks, no devices/fifos, no owners or special bits, at most max_files
 * entries, paths of at most max_path bytes, at most max_bytes (0: no cap
 * of its own) and the disk limit of data. A refused archive ends the run
 * with reason "archive" (exit 65) and result->archive_error. Mutually
 * exclusive with set_source. */
KILN_EXPORT int kiln_sandbox_set_source_archive(struct kiln_sandbox *sb, int fd, uint64_t max_files,
						uint64_t max_path, uint64_t max_bytes,
						struct kiln_error **err);
/* Run the build in this network namespace (an fd of /proc/PID/ns/net,
 * duplicated) instead of a fresh one. The caller prepares it, in a user
 * namespace the build is not in, with lo up and whatever it wants the build to
 * reach there (kilnd: the egress proxy's listening socket on 127.0.0.1);
 * the build gets no capability over it. Root mode only. */
KILN_EXPORT int kiln_sandbox_set_netns(struct kiln_sandbox *sb, int fd, struct kiln_error **err);
/* Export these paths of /workspace (files or directories, relative, no
 * "..") into the output dir, each at its own relative path, instead of the
 * default (the contents of /workspace/out). Missing paths are skipped. */
KILN_EXPORT int kiln_sandbox_add_export(struct kiln_sandbox *sb, const char *relpath,
					struct kiln_error **err);
/* /workspace/out is exported here afterwards; DIR must be absent or empty. */
KILN_EXPORT int kiln_sandbox_set_output_dir(struct kiln_sandbox *sb, const char *dir,
					    struct kiln_error **err);
KILN_EXPORT int kiln_sandbox_add_bind(struct kiln_sandbox *sb, const char *src, const char *dst,
				      bool readonly, struct kiln_error **err);
KILN_EXPORT int kiln_sandbox_set_root(struct kiln_sandbox *sb, const char *dir,
				      struct kiln_error **err);
/* "NAME=VALUE"; later values for the same NAME win. */
KILN_EXPORT int kiln_sandbox_add_env(struct kiln_sandbox *sb, const char *kv,
				     struct kiln_error **err);
/* A secret delivered as the file /run/secrets/NAME: a tmpfs of its own
 * (nosuid, nodev, noexec, read-only once written), the directory 0500 and
 * each file 0400, owned by the build's uid. init writes the files from its
 * copy of the value while it builds the filesystem and wipes that copy
 * before the build is forked; the value reaches the build through nothing
 * else (not argv, not the environment, not a file on the host's disk).
 * NAME: [A-Za-z_][A-Za-z0-9_]{0,63}; at most 64 secrets of at most 64K.
 * Copies value; the copy is wiped by kiln_sandbox_free. */
KILN_EXPORT int kiln_sandbox_add_secret(struct kiln_sandbox *sb, const char *name,
					const void *value, size_t len, struct kiln_error **err);
/* explicit: the caller asked for it (a rootless run refuses to run when an
 * explicitly asked limit cannot be enforced). */
KILN_EXPORT int kiln_sandbox_set_limit(struct kiln_sandbox *sb, enum kiln_limit which,
				       uint64_t value, bool explicit_, struct kiln_error **err);
KILN_EXPORT void kiln_sandbox_set_fake_root(struct kiln_sandbox *sb, bool on);
/* Default: output goes to fds 1 and 2 of the caller. */
KILN_EXPORT void kiln_sandbox_set_output_fn(struct kiln_sandbox *sb, kiln_output_fn fn, void *ctx);
/* Cancel a running sandbox from a signal handler or another thread:
 * write one byte to this fd (valid after kiln_sandbox_new). */
KILN_EXPORT int kiln_sandbox_cancel_fd(struct kiln_sandbox *sb);

KILN_EXPORT int kiln_sandbox_run(struct kiln_sandbox *sb, struct kiln_result **result,
				 struct kiln_error **err);

KILN_EXPORT void kiln_result_free(struct kiln_result *r);
KILN_EXPORT const char *kiln_reason_name(enum kiln_reason r);
/* Serialise as the JSON report documented in docs/sandbox.md; caller frees. */
KILN_EXPORT char *kiln_result_to_json(const struct kiln_result *r);

#endif
