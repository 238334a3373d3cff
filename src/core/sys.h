/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Thin system-call wrappers and OS-touching helpers (minijail's system.c
 * split). Everything that returns an fd returns it O_CLOEXEC.
 */
#ifndef KILN_CORE_SYS_H
#define KILN_CORE_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

/* write()/read() until done, retrying EINTR. Return 0 / bytes read, -1 on error. */
int kiln_write_all(int fd, const void *buf, size_t len);
ssize_t kiln_read_all(int fd, void *buf, size_t len);

/* Write a string to dirfd/path (O_WRONLY|O_NOFOLLOW, no O_CREAT unless
 * create is set). Used for /proc and cgroupfs control files. */
int kiln_write_file_at(int dirfd, const char *path, const char *data, int create,
		       struct kiln_error **err);
/* Read up to cap-1 bytes of dirfd/path into buf, NUL-terminated. */
ssize_t kiln_read_file_at(int dirfd, const char *path, char *buf, size_t cap,
			  struct kiln_error **err);

/* SCM_RIGHTS: send one fd with a small payload; receive it (fd set to -1
 * when the message carried none). recv returns the payload length, 0 on
 * EOF, -1 on error. */
int kiln_send_fd(int sock, int fd, const void *payload, size_t len);
ssize_t kiln_recv_fd(int sock, int *fd, void *payload, size_t len);

int kiln_pidfd_open(pid_t pid);
int kiln_close_range(unsigned first, unsigned last);
/* Close every fd >= 3 except those listed (sorted or not). */
int kiln_close_fds_except(const int *keep, size_t nkeep);

/* Open a file that holds a key for reading, without following a link: it
 * must be a regular file owned by this process's effective uid and, when
 * private_mode, not accessible by group or others. The fd, or -1 with
 * *err (EPERM naming the path and the fix when the file fails a check). */
int kiln_open_key_file(const char *path, bool private_mode, struct kiln_error **err);

/* Monotonic clock in nanoseconds. */
uint64_t kiln_now_ns(void);

#endif
