/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Landlock for the build process: read and execute everywhere in the
 * (already minimal, read-only) root; write only in the workspace, /tmp,
 * $HOME, /dev/shm, rw binds and a handful of device files. From ABI 6 on,
 * abstract unix sockets and signals are scoped to the sandbox as well.
 *
 * Debian 12's kernel headers stop at ABI 2, so the newer constants and the
 * full ruleset attribute are defined here (they are kernel ABI, stable).
 * The attribute size passed to the kernel follows the ABI we found, so an
 * older kernel never sees fields it does not know.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "sandbox/internal.h"

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

struct kiln_ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;	     /* ABI 6 */
};

struct kiln_ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

#define FS_READ                                                                                    \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_FILE_RW                                                                                 \
	(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
/* Everything a writable directory needs; never device nodes. */
#define FS_DIR_RW                                                                                  \
	(FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                 \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |                            \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                              \
	 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER |   \
	 LANDLOCK_ACCESS_FS_TRUNCATE)
/* Rights that make sense on a non-directory. */
#define FS_FILE_RIGHTS                                                                             \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE |                               \
	 LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |                             \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)

static uint64_t handled_fs(int abi)
{
	uint64_t a = (1ULL << 13) - 1; /* ABI 1: bits 0..12 */

	if (abi >= 2)
		a |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		a |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		a |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return a;
}

int kiln_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : (int)v;
}

static int add_rule(int ruleset, const char *path, uint64_t access, uint64_t handled, bool optional,
		    struct kiln_error **err)
{
	struct kiln_ll_path_beneath pb;
	cleanup_fd int fd = open(path, O_PATH | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		if (optional && errno == ENOENT)
			return 0;
		return kiln_error_set(err, errno, "landlock: open %s", path);
	}
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "landlock: stat %s", path);
	if (!S_ISDIR(st.st_mode))
		access &= FS_FILE_RIGHTS;
	pb.allowed_access = access & handled;
	pb.parent_fd = fd;
	if (pb.allowed_access == 0)
		return 0;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		return kiln_error_set(err, errno, "landlock: add rule for %s", path);
	return 0;
}

int kiln_landlock_ruleset(const struct kiln_sandbox *sb, struct kiln_error **err)
{
	static const char *const rw_dirs[] = {"/workspace", "/tmp", ("/home/" KILN_BUILDER_NAME),
					      "/dev/shm"};
	static const char *const dev_files[] = {"/dev/null", "/dev/zero", "/dev/full",
						"/dev/random", "/dev/urandom"};
	struct kiln_ll_ruleset_attr attr;
	size_t attr_size;
	uint64_t handled;
	cleanup_fd int rs = -1;
	size_t i;
	int abi = sb->landlock_abi;

	if (abi < 1)
		return kiln_error_set(err, EOPNOTSUPP,
				      "Landlock is not available (needs Linux >= 5.13 with "
				      "CONFIG_SECURITY_LANDLOCK and 'landlock' in the lsm= list)");
	handled = handled_fs(abi);
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = handled;
	attr_size = sizeof(uint64_t);
	if (abi >= 4)
		attr_size = 2 * sizeof(uint64_t); /* network: not handled, netns isolates */
	if (abi >= 6) {
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (rs < 0)
		return kiln_error_set(err, errno, "landlock: create ruleset (ABI %d)", abi);

	if (add_rule(rs, "/", FS_READ, handled, false, err) < 0)
		return -1;
	for (i = 0; i < sizeof(rw_dirs) / sizeof(rw_dirs[0]); i++)
		if (add_rule(rs, rw_dirs[i], FS_DIR_RW, handled, false, err) < 0)
			return -1;
	for (i = 0; i < sizeof(dev_files) / sizeof(dev_files[0]); i++)
		if (add_rule(rs, dev_files[i], FS_FILE_RW, handled, false, err) < 0)
			return -1;
	/* Terminals: a build may open a pty of its own (expect-style tests).
	 * The caller's terminal is never reachable (new session, no fd). */
	if (add_rule(rs, "/dev/tty", FS_FILE_RW | LANDLOCK_ACCESS_FS_IOCTL_DEV, handled, false,
		     err) < 0 ||
	    add_rule(rs, "/dev/pts", FS_FILE_RW | LANDLOCK_ACCESS_FS_IOCTL_DEV, handled, false,
		     err) < 0)
		return -1;
	for (i = 0; i < sb->nbinds; i++)
		if (!sb->binds[i].readonly &&
		    add_rule(rs, sb->binds[i].dst, FS_DIR_RW, handled, false, err) < 0)
			return -1;
	return steal_fd(&rs);
}

int kiln_landlock_apply(int ruleset_fd, struct kiln_error **err)
{
	if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
		return kiln_error_set(err, errno, "landlock: restrict self");
	return 0;
}
