/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the sandbox engine, shared by its three processes:
 *
 *   supervisor (the caller of kiln_sandbox_run, outside every namespace):
 *       uid/gid maps, cgroup, copy-in, output pump, timeout, seccomp
 *       notifications, export, report.                      sandbox.c
 *   init (pid 1 of the new pid namespace, root of the new user namespace):
 *       builds the root filesystem, pivots, forks the build, reaps.
 *                                                           init.c mounts.c net.c
 *   build (the command): drops everything, then execve.    exec.c caps.c landlock.c
 *
 * Supervisor and init talk over a SOCK_SEQPACKET pair with fixed-size
 * messages (struct kiln_msg); every receiver checks the exact size and the
 * NUL terminator (CONVENTIONS.md 7). The build process only ever sends on
 * its own channel, which closes on execve.
 */
#ifndef KILN_SANDBOX_INTERNAL_H
#define KILN_SANDBOX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

#define KILN_BUILDER_UID  1000
#define KILN_BUILDER_GID  1000
#define KILN_BUILDER_NAME "builder"
#define KILN_HOSTNAME	  "kiln"
#define KILN_RANGE	  65536U      /* uids/gids per run when kiln is root */
#define KILN_UID_BASE	  1879048192U /* 0x70000000: first host uid of slot 0 */
#define KILN_SLOTS	  1024U
#define KILN_SLOT_DIR	  "/run/kiln/slots"
#define KILN_PATH	  "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

#define KILN_MAX_BINDS 32

struct kiln_bind {
	char *src;
	char *dst;
	bool readonly;
	/* Root mode: a detached clone of src made by the supervisor
	 * (open_tree), so that init, an unprivileged uid on the host, need not
	 * be able to walk the path to it. -1 rootless (init binds by path). */
	int tree_fd;
	/* Rootless, in init: an O_PATH handle on src, taken before the staging
	 * tmpfs covers /tmp. */
	int path_fd;
};

#define KILN_MAX_SECRETS      64
#define KILN_MAX_SECRET_BYTES (64 * 1024)

struct kiln_secret_file {
	char name[65];
	unsigned char *value;
	size_t len;
};

struct kiln_sandbox {
	char **argv;
	char *source;
	char *outdir;
	char *root;
	struct kiln_bind *binds;
	size_t nbinds;
	char **env;
	size_t nenv;
	uint64_t limit[KILN_LIMIT__COUNT];
	bool limit_explicit[KILN_LIMIT__COUNT];
	bool fake_root;
	kiln_output_fn out_fn;
	void *out_ctx;
	int cancel_pipe[2];

	/* decided at run time by the supervisor */
	bool rootless;
	uid_t outer_uid; /* host uid that inner 0 (root mode) maps to */
	gid_t outer_gid;
	uid_t build_uid; /* inner uid/gid of the build */
	gid_t build_gid;
	uid_t init_uid; /* inner uid/gid init runs as after the maps */
	gid_t init_gid;
	uint64_t source_date_epoch;
	int landlock_abi;
	/* Root mode: the disk tmpfs, created by the supervisor in the host's
	 * user namespace (so every uid is mapped on it) and attached by init.
	 * -1 rootless: init creates it and sends it to the supervisor. */
	int disk_fd;
	/* The source as an archive, unpacked by the build process. */
	int archive_fd;
	/* A network namespace prepared by the caller (egress proxy), joined by
	 * the relay instead of creating one; -1: a fresh, empty one. */
	int netns_fd;
	uint64_t archive_max_files, archive_max_path, archive_max_bytes;
	/* Paths of /workspace to export (default: the contents of out/). */
	char **exports;
	size_t nexports;
	/* Files of /run/secrets (mounts.c writes them in init). */
	struct kiln_secret_file *secrets;
	size_t nsecrets;
};

/* Wipe and free the secrets' values (sandbox.c). */
void kiln_sandbox_wipe_secrets(struct kiln_sandbox *sb);

enum kiln_msg_type {
	KILN_MSG_GO = 1,    /* supervisor -> init: maps written, cgroup joined */
	KILN_MSG_DISK,	    /* init -> supervisor: fd of the disk tmpfs (rootless) */
	KILN_MSG_CONTINUE,  /* supervisor -> init: source copied */
	KILN_MSG_ERROR,	    /* init/build -> supervisor: setup failed, text */
	KILN_MSG_NOTIFY_FD, /* build -> supervisor: seccomp listener fd */
	KILN_MSG_STARTED,   /* init -> supervisor: build forked, code = landlock abi */
	KILN_MSG_EXIT,	    /* init -> supervisor: code = build's wait status */
	KILN_MSG_ARCHIVE,   /* build -> supervisor: the source archive was refused, text */
};

struct kiln_msg {
	uint32_t type;
	int32_t code;
	char text[496];
};

/* Send/receive one message; recv checks size and NUL, returns 0 on EOF,
 * 1 on a message, -1 on error. fd may be NULL when none is expected (a
 * received fd is then closed and the message rejected). */
int kiln_msg_send(int sock, uint32_t type, int32_t code, int fd, const char *text);
int kiln_msg_recv(int sock, struct kiln_msg *m, int *fd);

/* init.c: the body of pid 1. Never returns. */
__attribute__((noreturn)) void kiln_init_main(struct kiln_sandbox *sb, int chan, int bchan,
					      int out_w, int err_w);

/* mounts.c (in init): build the new root and pivot into it. Rootless, the
 * disk tmpfs is created here and its fd sent to the supervisor, which copies
 * the source in meanwhile; as root, init attaches sb->disk_fd. */
int kiln_mounts_setup(struct kiln_sandbox *sb, int chan, struct kiln_error **err);

/* net.c (in init): bring up lo in the new network namespace. */
int kiln_net_lo_up(struct kiln_error **err);

/* landlock.c */
int kiln_landlock_abi(void);
/* Create the ruleset for the build (in init, after pivot_root). */
int kiln_landlock_ruleset(const struct kiln_sandbox *sb, struct kiln_error **err);
/* Apply it (in the build process, after no_new_privs). */
int kiln_landlock_apply(int ruleset_fd, struct kiln_error **err);

/* caps.c (in the build process): lock securebits, drop every capability
 * from every set and the bounding set, switch to uid/gid, no_new_privs. */
int kiln_caps_drop_all(uid_t uid, gid_t gid, bool drop_groups, struct kiln_error **err);

/* exec.c: the build process. Never returns. */
__attribute__((noreturn)) void kiln_exec_main(struct kiln_sandbox *sb, int bchan, int out_w,
					      int err_w, int ruleset_fd, int bpf_fd);

/* userns.c (supervisor) */
int kiln_slot_acquire(unsigned *slot, int *lock_fd, struct kiln_error **err);
int kiln_userns_write_maps(const struct kiln_sandbox *sb, pid_t pid, struct kiln_error **err);

/* mounts.c (supervisor, root mode): create the disk tmpfs as a detached
 * mount with ws/, tmp/, home/ prepared for the build's host uid/gid. */
int kiln_disk_create(const struct kiln_sandbox *sb, uid_t uid, gid_t gid, struct kiln_error **err);

/* report.c */
void kiln_result_add_protection(struct kiln_result *r, const char *name);
void kiln_result_add_not_applied(struct kiln_result *r, const char *name);

/* Report a setup failure from init/build to the supervisor and exit 125. */
__attribute__((noreturn, format(printf, 2, 3))) void kiln_child_fail(int chan, const char *fmt,
								     ...);
__attribute__((noreturn)) void kiln_child_fail_err(int chan, struct kiln_error *err);

#endif
