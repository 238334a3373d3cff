/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identities. When kiln runs as root, every concurrent run gets its own
 * range of 65536 host uids/gids (a "slot"), so that two builds never share
 * an identity on the host: a file or process one build leaves behind is
 * not owned by the next. Slots are claimed with flock() on a file under
 * /run/kiln/slots; the kernel releases the lock when the holder dies, so a
 * crashed run never leaks its slot.
 *
 * Rootless, the kernel only lets us map our own uid: the build's uid
 * inside maps to the caller's uid outside.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "sandbox/internal.h"

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[256];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int kiln_slot_acquire(unsigned *slot, int *lock_fd, struct kiln_error **err)
{
	cleanup_fd int dir = -1;
	struct stat st;
	unsigned i;

	if (mkdir_p(KILN_SLOT_DIR, 0700) < 0)
		return kiln_error_set(err, errno, "create %s", KILN_SLOT_DIR);
	dir = open(KILN_SLOT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dir < 0)
		return kiln_error_set(err, errno, "open %s", KILN_SLOT_DIR);
	/* The directory must be ours and private, or another user could hold
	 * every slot (or plant files). */
	if (fstat(dir, &st) < 0)
		return kiln_error_set(err, errno, "stat %s", KILN_SLOT_DIR);
	if (st.st_uid != 0 || (st.st_mode & 0077) != 0)
		return kiln_error_set(err, EPERM, "%s must be owned by root with mode 0700",
				      KILN_SLOT_DIR);
	for (i = 0; i < KILN_SLOTS; i++) {
		char name[16];
		int fd;

		snprintf(name, sizeof(name), "%u", i);
		fd = openat(dir, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return kiln_error_set(err, errno, "open %s/%s", KILN_SLOT_DIR, name);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*slot = i;
			*lock_fd = fd;
			return 0;
		}
		close(fd);
		if (errno != EWOULDBLOCK)
			return kiln_error_set(err, errno, "lock %s/%s", KILN_SLOT_DIR, name);
	}
	return kiln_error_set(err, EAGAIN, "all %u uid slots are in use; wait for a run to end",
			      KILN_SLOTS);
}

static int write_proc(pid_t pid, const char *file, const char *data, struct kiln_error **err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	return kiln_write_file_at(AT_FDCWD, path, data, 0, err);
}

int kiln_userns_write_maps(const struct kiln_sandbox *sb, pid_t pid, struct kiln_error **err)
{
	char uid_map[64], gid_map[64];

	if (sb->rootless) {
		/* Only our own ids can be mapped: one line each, setgroups denied
		 * (required by the kernel for an unprivileged gid_map). */
		snprintf(uid_map, sizeof(uid_map), "%u %u 1\n", (unsigned)sb->build_uid,
			 (unsigned)getuid());
		snprintf(gid_map, sizeof(gid_map), "%u %u 1\n", (unsigned)sb->build_gid,
			 (unsigned)getgid());
		if (write_proc(pid, "setgroups", "deny", err) < 0)
			return kiln_error_prefix(err, "user namespace");
	} else {
		snprintf(uid_map, sizeof(uid_map), "0 %u %u\n", (unsigned)sb->outer_uid,
			 KILN_RANGE);
		snprintf(gid_map, sizeof(gid_map), "0 %u %u\n", (unsigned)sb->outer_gid,
			 KILN_RANGE);
	}
	if (write_proc(pid, "uid_map", uid_map, err) < 0 ||
	    write_proc(pid, "gid_map", gid_map, err) < 0)
		return kiln_error_prefix(err, "user namespace: write id map");
	return 0;
}
