/* SPDX-License-Identifier: Apache-2.0 */
#include "core/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"

int kiln_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t kiln_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int kiln_write_file_at(int dirfd, const char *path, const char *data, int create,
		       struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;

	if (create)
		flags |= O_CREAT | O_TRUNC;
	fd = openat(dirfd, path, flags, 0644);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", path);
	if (kiln_write_all(fd, data, strlen(data)) < 0)
		return kiln_error_set(err, errno, "write '%s' to %s", data, path);
	return 0;
}

ssize_t kiln_read_file_at(int dirfd, const char *path, char *buf, size_t cap,
			  struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	ssize_t n;

	if (cap == 0)
		return kiln_error_set(err, EINVAL, "read %s: empty buffer", path);
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", path);
	n = kiln_read_all(fd, buf, cap - 1);
	if (n < 0)
		return kiln_error_set(err, errno, "read %s", path);
	buf[n] = '\0';
	return n;
}

int kiln_send_fd(int sock, int fd, const void *payload, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	if (fd >= 0) {
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if ((size_t)n != len) {
			errno = EMSGSIZE;
			return -1;
		}
		return 0;
	}
}

ssize_t kiln_recv_fd(int sock, int *fd, void *payload, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = payload, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int))) {
			memcpy(fd, CMSG_DATA(c), sizeof(int));
		}
	}
	if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}

int kiln_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int kiln_close_range(unsigned first, unsigned last)
{
	return (int)syscall(SYS_close_range, first, last, 0);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int kiln_close_fds_except(const int *keep, size_t nkeep)
{
	int sorted[64];
	unsigned from = 3;
	size_t i;

	if (nkeep > 64) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sorted, keep, nkeep * sizeof(int));
	qsort(sorted, nkeep, sizeof(int), cmp_int);
	for (i = 0; i < nkeep; i++) {
		if (sorted[i] < (int)from)
			continue;
		if ((unsigned)sorted[i] > from &&
		    kiln_close_range(from, (unsigned)sorted[i] - 1) < 0)
			return -1;
		from = (unsigned)sorted[i] + 1;
	}
	return kiln_close_range(from, ~0U);
}

int kiln_open_key_file(const char *path, bool private_mode, struct kiln_error **err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", path);
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return kiln_error_set(err, e, "stat %s", path);
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (private_mode && (st.st_mode & 077) != 0)) {
		close(fd);
		return kiln_error_set(err, EPERM,
				      "%s must be a regular file owned by kilnd's uid%s, and is "
				      "not (mode %04o; fix: chown, chmod 0600)",
				      path, private_mode ? " with mode 0600" : "",
				      (unsigned)(st.st_mode & 07777));
	}
	return fd;
}

uint64_t kiln_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
