/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seccomp policy, tested for real: a child installs the filter and
 * tries denied and allowed syscalls; this process plays the supervisor
 * (kiln_seccomp_handle) and checks the errno each attempt got, the counts
 * in the result, and the files on disk from outside the filter.
 *
 * Every denied attempt is written so that it is harmless if the filter
 * fails to deny it (bad paths, bad fds, bad magic numbers, private temp
 * directory): the test must be able to fail without damaging the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/sys.h"
#include "sandbox/seccomp.h"
#include "tap.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

#define NR_IO_URING_SETUP 425
#define NR_FSOPEN	  430
#define NR_CLONE3	  435
#define NR_OPENAT2	  437
#define NR_MEMFD_SECRET	  447
#define NR_FCHMODAT2	  452
#define NR_OPEN_TREE_ATTR 467
#define X32_BIT		  0x40000000L

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Paths inside a private temp directory, set before forking. */
static char tmpdir[64];
static char file_path[128];  /* exists, mode 0644 */
static char suid_new[128];   /* openat(O_CREAT, 04700) must not create it */
static char suid_creat[128]; /* creat(04755) likewise */
static char suid_open[128];  /* open(O_CREAT, 02755) likewise */
static char plain_new[128];  /* openat(O_CREAT, 0600) creates it */
static char sgid_dir[128];   /* mkdir(02755) must not create it */
static char plain_dir[128];  /* mkdir(0755) creates it */
static char chr_node[128];   /* mknod(S_IFCHR) must not create it */
static char blk_node[128];   /* mknodat(S_IFBLK) must not create it */
static char fifo_node[128];  /* mknod(S_IFIFO) creates it */

/* ---- the attempts, run inside the filtered child ---- */

static long t_unshare_user(void)
{
	return unshare(CLONE_NEWUSER);
}

static long t_unshare_time(void)
{
	return syscall(SYS_unshare, CLONE_NEWTIME);
}

/* If the filter let it through, we are the new child: leave at once. */
static long raw_clone(unsigned long flags)
{
	long r = syscall(SYS_clone, flags, 0L, 0L, 0L, 0L);

	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return r;
}

static long t_clone_newuser(void)
{
	return raw_clone(CLONE_NEWUSER | SIGCHLD);
}

static long t_clone_newns(void)
{
	return raw_clone(CLONE_NEWNS | SIGCHLD);
}

static long t_clone_newcgroup(void)
{
	return raw_clone(CLONE_NEWCGROUP | SIGCHLD);
}

static long t_clone_newuts(void)
{
	return raw_clone(CLONE_NEWUTS | SIGCHLD);
}

static long t_clone_newipc(void)
{
	return raw_clone(CLONE_NEWIPC | SIGCHLD);
}

static long t_clone_newpid(void)
{
	return raw_clone(CLONE_NEWPID | SIGCHLD);
}

static long t_clone_newnet(void)
{
	return raw_clone(CLONE_NEWNET | SIGCHLD);
}

static long t_clone_newnet_highbits(void)
{
	return raw_clone((1UL << 32) | CLONE_NEWNET | CLONE_NEWNS | SIGCHLD);
}

static long t_clone_plain(void)
{
	return raw_clone(SIGCHLD) > 0 ? 0 : -1;
}

static long t_setns(void)
{
	return setns(-1, 0);
}

static long t_mount(void)
{
	return mount("none", "/nonexistent-kiln-test/mnt", "tmpfs", 0, NULL);
}

static long t_umount2(void)
{
	return umount2("/nonexistent-kiln-test/mnt", MNT_DETACH);
}

static long t_fsopen(void)
{
	return syscall(NR_FSOPEN, "tmpfs", 0);
}

static long t_open_tree_attr(void)
{
	return syscall(NR_OPEN_TREE_ATTR, -1, "/nonexistent-kiln-test", 0, NULL, 0);
}

/* CVE-2019-10063: TIOCSTI with the high 32 bits set. fd -1: harmless if
 * the filter let it through (EBADF). */
static long t_tiocsti_highbits(void)
{
	char c = 'x';

	return syscall(SYS_ioctl, -1, 0xffffffff00000000ULL | TIOCSTI, &c);
}

static long t_tiocsti(void)
{
	char c = 'x';

	return syscall(SYS_ioctl, -1, (unsigned long)TIOCSTI, &c);
}

static long t_tioclinux(void)
{
	char c = 0;

	return syscall(SYS_ioctl, -1, (unsigned long)TIOCLINUX, &c);
}

static long t_tiocsetd(void)
{
	int ld = 0;

	return syscall(SYS_ioctl, -1, (unsigned long)TIOCSETD, &ld);
}

static long t_tcgets(void)
{
	char buf[128];

	return syscall(SYS_ioctl, -1, (unsigned long)TCGETS, buf);
}

static long t_tiocgwinsz_highbits(void)
{
	char buf[64];

	return syscall(SYS_ioctl, -1, 0xffffffff00000000ULL | TIOCGWINSZ, buf);
}

static long t_chmod_suid(void)
{
	return chmod(file_path, 04755);
}

/* umode_t is 16 bits: high bits must not hide S_ISGID. */
static long t_chmod_sgid_highbits(void)
{
	return syscall(SYS_chmod, file_path, (1UL << 32) | 02755);
}

static long t_chmod_plain(void)
{
	return chmod(file_path, 0644);
}

static long t_chmod_sticky(void)
{
	long r = chmod(file_path, 01644);

	if (r == 0)
		r = chmod(file_path, 0644);
	return r;
}

static long t_fchmod_suid(void)
{
	int fd = open(file_path, O_RDONLY | O_CLOEXEC);
	long r;
	int e;

	if (fd < 0)
		return -1;
	r = fchmod(fd, 06755);
	e = errno;
	close(fd);
	errno = e;
	return r;
}

static long t_fchmodat_sgid(void)
{
	return syscall(SYS_fchmodat, AT_FDCWD, file_path, 02750);
}

static long t_fchmodat2_suid(void)
{
	return syscall(NR_FCHMODAT2, AT_FDCWD, file_path, 04755, 0);
}

static long close_result(long fd)
{
	if (fd >= 0)
		close((int)fd);
	return fd;
}

static long t_openat_suid(void)
{
	return close_result(openat(AT_FDCWD, suid_new, O_CREAT | O_WRONLY | O_CLOEXEC, 04700));
}

static long t_open_sgid(void)
{
	return close_result(syscall(SYS_open, suid_open, O_CREAT | O_WRONLY | O_CLOEXEC, 02755));
}

static long t_creat_suid(void)
{
	return close_result(creat(suid_creat, 04755));
}

static long t_openat_plain(void)
{
	return close_result(openat(AT_FDCWD, plain_new, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
}

static long t_openat2(void)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC};

	return close_result(syscall(NR_OPENAT2, AT_FDCWD, file_path, &how, sizeof(how)));
}

static long t_mkdir_sgid(void)
{
	return mkdir(sgid_dir, 02755);
}

static long t_mkdir_plain(void)
{
	return mkdir(plain_dir, 0755);
}

static long t_mknod_chr(void)
{
	/* glibc's mknod() is mknodat(AT_FDCWD, ...): call mknod itself. */
	return syscall(SYS_mknod, chr_node, S_IFCHR | 0600, makedev(1, 3));
}

static long t_mknodat_blk(void)
{
	return mknodat(AT_FDCWD, blk_node, S_IFBLK | 0600, makedev(7, 0));
}

static long t_mknod_fifo(void)
{
	return syscall(SYS_mknod, fifo_node, S_IFIFO | 0600, 0);
}

static long t_io_uring_setup(void)
{
	char params[120] = {0};

	return close_result(syscall(NR_IO_URING_SETUP, 1, params));
}

static long t_bpf(void)
{
	return syscall(SYS_bpf, 0xffff, NULL, 0);
}

/* KEYCTL_GET_KEYRING_ID of the session keyring, no create. */
static long t_keyctl(void)
{
	return syscall(SYS_keyctl, 0, -3, 0);
}

static long t_perf_event_open(void)
{
	return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
}

static long t_userfaultfd(void)
{
	return close_result(syscall(SYS_userfaultfd, O_CLOEXEC));
}

static long t_memfd_secret(void)
{
	return close_result(syscall(NR_MEMFD_SECRET, 0));
}

static long t_open_by_handle_at(void)
{
	return syscall(SYS_open_by_handle_at, -1, NULL, 0);
}

/* Wrong magic: EINVAL if the filter let it through. */
static long t_reboot(void)
{
	return syscall(SYS_reboot, 0, 0, 0, NULL);
}

/* Length over __NEW_UTS_LEN: EINVAL if the filter let it through. */
static long t_sethostname(void)
{
	return syscall(SYS_sethostname, "x", 100000);
}

static long t_personality(unsigned long p)
{
	return syscall(SYS_personality, p);
}

static long t_pers_linux32(void)
{
	return t_personality(PER_LINUX32);
}

/* personality takes an unsigned int: the kernel would read PER_LINUX32. */
static long t_pers_linux32_highbits(void)
{
	return t_personality(0xffffffff00000000UL | PER_LINUX32);
}

static long t_pers_norandom(void)
{
	return t_personality(ADDR_NO_RANDOMIZE);
}

static long t_pers_fffffffe(void)
{
	return t_personality(0xfffffffeUL);
}

static long t_pers_bit31(void)
{
	return t_personality(0x80000000UL);
}

static long t_pers_one(void)
{
	return t_personality(1);
}

static long t_pers_query(void)
{
	return t_personality(0xffffffffUL);
}

static long t_pers_query_all_ones(void)
{
	return t_personality(~0UL);
}

static long t_pers_linux(void)
{
	return t_personality(PER_LINUX);
}

static long t_pers_linux_highbits(void)
{
	return t_personality(0xffffffff00000000UL);
}

static long t_socket(long family, long type, long proto)
{
	return close_result(syscall(SYS_socket, family, type, proto));
}

static long t_sock_packet(void)
{
	return t_socket(AF_PACKET, SOCK_RAW, 0);
}

static long t_sock_inet_raw(void)
{
	return t_socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
}

static long t_sock_inet_packet(void)
{
	return t_socket(AF_INET, SOCK_PACKET, 0);
}

static long t_sock_inet6_raw(void)
{
	return t_socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMPV6);
}

static long t_sock_vsock(void)
{
	return t_socket(AF_VSOCK, SOCK_STREAM, 0);
}

static long t_sock_audit(void)
{
	return t_socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
}

static long t_sock_alg(void)
{
	return t_socket(AF_ALG, SOCK_SEQPACKET, 0);
}

/* The kernel would read AF_PACKET from the low 32 bits. */
static long t_sock_packet_highbits(void)
{
	return t_socket((1L << 32) | AF_PACKET, SOCK_RAW, 0);
}

static long t_sock_inet_stream(void)
{
	return t_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static long t_sock_unix(void)
{
	return t_socket(AF_UNIX, SOCK_DGRAM, 0);
}

static long t_sock_netlink_route(void)
{
	return t_socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

static long t_sock_inet6_dgram(void)
{
	return t_socket(AF_INET6, SOCK_DGRAM, 0);
}

static long t_socketpair_inet(void)
{
	int sv[2];
	long r = socketpair(AF_INET, SOCK_STREAM, 0, sv);

	if (r == 0) {
		close(sv[0]);
		close(sv[1]);
	}
	return r;
}

static long t_socketpair_unix(void)
{
	int sv[2];
	long r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);

	if (r == 0) {
		close(sv[0]);
		close(sv[1]);
	}
	return r;
}

static long t_getpid(void)
{
	return getpid();
}

static long t_fork(void)
{
	int st;
	pid_t p = fork();

	if (p == 0)
		_exit(7);
	if (p < 0 || waitpid(p, &st, 0) != p)
		return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) {
		errno = ECHILD;
		return -1;
	}
	return 0;
}

static void *thread_fn(void *arg)
{
	return arg;
}

static long t_thread(void)
{
	pthread_t t;
	void *ret = NULL;
	int e = pthread_create(&t, NULL, thread_fn, &tmpdir);

	if (e == 0)
		e = pthread_join(t, &ret);
	if (e == 0 && ret != &tmpdir)
		e = EIO;
	errno = e;
	return e ? -1 : 0;
}

/* glibc falls back to clone; unfiltered this would fork. */
static long t_clone3(void)
{
	uint64_t args[11] = {0};
	long r;

	args[4] = SIGCHLD; /* exit_signal */
	r = syscall(NR_CLONE3, args, 88);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return r;
}

static long t_install_again(void)
{
	struct kiln_error *err = NULL;
	int fd = kiln_seccomp_install(&err);

	if (fd >= 0) {
		close(fd);
		return fd;
	}
	errno = err ? err->code : 0;
	kiln_error_free(&err);
	return -1;
}

#define ANY (-1) /* any outcome; only "not counted" is checked */

struct tcase {
	const char *what;
	long (*fn)(void);
	int want_errno;	       /* 0: must succeed; ANY: not checked */
	const char *denied_as; /* name it is counted under, NULL if allowed */
};

static const struct tcase cases[] = {
	/* §4 nested namespaces */
	{"unshare(CLONE_NEWUSER)", t_unshare_user, EPERM, "unshare"},
	{"unshare(CLONE_NEWTIME)", t_unshare_time, EPERM, "unshare"},
	{"clone(CLONE_NEWUSER)", t_clone_newuser, EPERM, "clone"},
	{"clone(CLONE_NEWNS)", t_clone_newns, EPERM, "clone"},
	{"clone(CLONE_NEWCGROUP)", t_clone_newcgroup, EPERM, "clone"},
	{"clone(CLONE_NEWUTS)", t_clone_newuts, EPERM, "clone"},
	{"clone(CLONE_NEWIPC)", t_clone_newipc, EPERM, "clone"},
	{"clone(CLONE_NEWPID)", t_clone_newpid, EPERM, "clone"},
	{"clone(CLONE_NEWNET)", t_clone_newnet, EPERM, "clone"},
	{"clone(1<<32|CLONE_NEWNET|CLONE_NEWNS)", t_clone_newnet_highbits, EPERM, "clone"},
	{"setns(-1, 0)", t_setns, EPERM, "setns"},
	{"clone3 -> ENOSYS, not counted", t_clone3, ENOSYS, NULL},
	{"clone(SIGCHLD) allowed", t_clone_plain, 0, NULL},
	{"fork + wait allowed", t_fork, 0, NULL},
	{"pthread_create allowed", t_thread, 0, NULL},
	/* §4 mount API */
	{"mount", t_mount, EPERM, "mount"},
	{"umount2", t_umount2, EPERM, "umount2"},
	{"fsopen", t_fsopen, ENOSYS, "fsopen"},
	{"open_tree_attr (467)", t_open_tree_attr, ENOSYS, "open_tree_attr"},
	/* §5 terminal */
	{"ioctl(0xffffffff00005412) high-bits TIOCSTI", t_tiocsti_highbits, EPERM, "ioctl"},
	{"ioctl(TIOCSTI)", t_tiocsti, EPERM, "ioctl"},
	{"ioctl(TIOCLINUX)", t_tioclinux, EPERM, "ioctl"},
	{"ioctl(TIOCSETD)", t_tiocsetd, EPERM, "ioctl"},
	{"ioctl(TCGETS) allowed (EBADF)", t_tcgets, EBADF, NULL},
	{"ioctl(high bits | TIOCGWINSZ) allowed (EBADF)", t_tiocgwinsz_highbits, EBADF, NULL},
	/* §3 setuid/setgid, devices */
	{"chmod 04755", t_chmod_suid, EPERM, "chmod"},
	{"chmod (1<<32)|02755", t_chmod_sgid_highbits, EPERM, "chmod"},
	{"fchmod 06755", t_fchmod_suid, EPERM, "fchmod"},
	{"fchmodat 02750", t_fchmodat_sgid, EPERM, "fchmodat"},
	{"fchmodat2 04755", t_fchmodat2_suid, EPERM, "fchmodat2"},
	{"openat O_CREAT 04700", t_openat_suid, EPERM, "openat"},
	{"open O_CREAT 02755", t_open_sgid, EPERM, "open"},
	{"creat 04755", t_creat_suid, EPERM, "creat"},
	{"mkdir 02755", t_mkdir_sgid, EPERM, "mkdir"},
	{"mknod S_IFCHR", t_mknod_chr, EPERM, "mknod"},
	{"mknodat S_IFBLK", t_mknodat_blk, EPERM, "mknodat"},
	{"chmod 0644 allowed", t_chmod_plain, 0, NULL},
	{"chmod 01644 (sticky) allowed", t_chmod_sticky, 0, NULL},
	{"openat O_CREAT 0600 allowed", t_openat_plain, 0, NULL},
	{"openat2 -> ENOSYS, not counted", t_openat2, ENOSYS, NULL},
	{"mkdir 0755 allowed", t_mkdir_plain, 0, NULL},
	{"mknod S_IFIFO allowed", t_mknod_fifo, 0, NULL},
	/* §4 other kernel surface */
	{"io_uring_setup", t_io_uring_setup, ENOSYS, "io_uring_setup"},
	{"bpf", t_bpf, EPERM, "bpf"},
	{"keyctl", t_keyctl, ENOSYS, "keyctl"},
	{"perf_event_open", t_perf_event_open, EPERM, "perf_event_open"},
	{"userfaultfd", t_userfaultfd, EPERM, "userfaultfd"},
	{"memfd_secret", t_memfd_secret, ENOSYS, "memfd_secret"},
	{"open_by_handle_at", t_open_by_handle_at, EPERM, "open_by_handle_at"},
	{"reboot (bad magic)", t_reboot, EPERM, "reboot"},
	{"sethostname (bad length)", t_sethostname, EPERM, "sethostname"},
	/* personality */
	{"personality(PER_LINUX32)", t_pers_linux32, EPERM, "personality"},
	{"personality(0xffffffff00000008)", t_pers_linux32_highbits, EPERM, "personality"},
	{"personality(ADDR_NO_RANDOMIZE)", t_pers_norandom, EPERM, "personality"},
	{"personality(0xfffffffe)", t_pers_fffffffe, EPERM, "personality"},
	{"personality(0x80000000)", t_pers_bit31, EPERM, "personality"},
	{"personality(1)", t_pers_one, EPERM, "personality"},
	{"personality(0xffffffff) query allowed", t_pers_query, 0, NULL},
	{"personality(~0UL) query allowed", t_pers_query_all_ones, 0, NULL},
	{"personality(PER_LINUX) allowed", t_pers_linux, 0, NULL},
	{"personality(0xffffffff00000000) allowed", t_pers_linux_highbits, 0, NULL},
	/* sockets */
	{"socket(AF_PACKET)", t_sock_packet, EAFNOSUPPORT, "socket"},
	{"socket(AF_INET, SOCK_RAW|SOCK_CLOEXEC)", t_sock_inet_raw, EAFNOSUPPORT, "socket"},
	{"socket(AF_INET, SOCK_PACKET)", t_sock_inet_packet, EAFNOSUPPORT, "socket"},
	{"socket(AF_INET6, SOCK_RAW|SOCK_NONBLOCK)", t_sock_inet6_raw, EAFNOSUPPORT, "socket"},
	{"socket(AF_VSOCK)", t_sock_vsock, EAFNOSUPPORT, "socket"},
	{"socket(AF_NETLINK, NETLINK_AUDIT)", t_sock_audit, EAFNOSUPPORT, "socket"},
	{"socket(AF_ALG)", t_sock_alg, EAFNOSUPPORT, "socket"},
	{"socket(1<<32|AF_PACKET)", t_sock_packet_highbits, EAFNOSUPPORT, "socket"},
	{"socketpair(AF_INET)", t_socketpair_inet, EAFNOSUPPORT, "socketpair"},
	{"socket(AF_INET, SOCK_STREAM) allowed", t_sock_inet_stream, 0, NULL},
	{"socket(AF_UNIX) allowed", t_sock_unix, 0, NULL},
	{"socket(AF_NETLINK, NETLINK_ROUTE) allowed", t_sock_netlink_route, 0, NULL},
	{"socket(AF_INET6, SOCK_DGRAM) not counted", t_sock_inet6_dgram, ANY, NULL},
	{"socketpair(AF_UNIX) allowed", t_socketpair_unix, 0, NULL},
	{"getpid allowed", t_getpid, 0, NULL},
	/* The library refuses a second filter in one process. */
	{"second install refused", t_install_again, EBUSY, NULL},
};

static const struct tcase capacity_cases[] = {
	{"mount", t_mount, EPERM, "mount"},
	{"bpf", t_bpf, EPERM, "bpf"},
	{"mount again", t_mount, EPERM, "mount"},
};

/* ---- child side ---- */

struct hello {
	int ok;		/* 1: filter installed, fd attached */
	int cloexec;	/* FD_CLOEXEC set on the listener */
	int fds_before; /* open fds before and after install */
	int fds_after;
	char msg[KILN_ERROR_MAX];
};

struct rec {
	int idx;
	int err;
	long ret;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void run_cases(int out, const struct tcase *tc, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct rec rec = {.idx = (int)i};

		errno = 0;
		rec.ret = tc[i].fn();
		rec.err = rec.ret < 0 ? errno : 0;
		if (kiln_write_all(out, &rec, sizeof(rec)) < 0)
			_exit(4);
	}
}

static __attribute__((noreturn)) void child_main(int sock, int out, const struct tcase *tc,
						 size_t n)
{
	struct kiln_error *err = NULL;
	struct hello h;
	int fd;

	memset(&h, 0, sizeof(h));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(h.msg, sizeof(h.msg), "no_new_privs: %s", strerror(errno));
		kiln_send_fd(sock, -1, &h, sizeof(h));
		_exit(3);
	}
	h.fds_before = count_fds();
	fd = kiln_seccomp_install(&err);
	if (fd < 0) {
		snprintf(h.msg, sizeof(h.msg), "%s", err ? err->msg : "(no error)");
		kiln_send_fd(sock, -1, &h, sizeof(h));
		_exit(3);
	}
	h.fds_after = count_fds();
	h.ok = 1;
	h.cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
	if (kiln_send_fd(sock, fd, &h, sizeof(h)) < 0)
		_exit(5);
	/* A build holding its own listener could answer its own denials. */
	close(fd);
	close(sock);
	run_cases(out, tc, n);
	_exit(0);
}

/* ---- supervisor side ---- */

struct run {
	struct rec recs[ARRAY_SIZE(cases)];
	bool got[ARRAY_SIZE(cases)];
	struct hello hello;
	int status;
	bool handle_failed;
	bool timed_out;
	char handle_msg[KILN_ERROR_MAX];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void take_records(struct run *run, size_t n, const char *buf, size_t len)
{
	for (size_t off = 0; off + sizeof(struct rec) <= len; off += sizeof(struct rec)) {
		struct rec rec;

		memcpy(&rec, buf + off, sizeof(rec));
		if (rec.idx >= 0 && (size_t)rec.idx < n) {
			run->recs[rec.idx] = rec;
			run->got[rec.idx] = true;
		}
	}
}

/* Fork the child, act as its supervisor until it is gone. Returns -1 if the
 * filter could not be installed (run->hello.msg says why). */
static int supervise(const struct tcase *tc, size_t n, struct kiln_result *r, struct run *run)
{
	int sv[2], pp[2], nfd = -1;
	char buf[sizeof(struct rec) * 64];
	size_t have = 0;
	uint64_t deadline = now_ms() + 60000;
	pid_t pid;

	memset(run, 0, sizeof(*run));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(pp, O_CLOEXEC) < 0) {
		perror("socketpair/pipe");
		exit(1);
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		close(sv[0]);
		close(pp[0]);
		child_main(sv[1], pp[1], tc, n);
	}
	close(sv[1]);
	close(pp[1]);
	if (kiln_recv_fd(sv[0], &nfd, &run->hello, sizeof(run->hello)) !=
		    (ssize_t)sizeof(run->hello) ||
	    !run->hello.ok || nfd < 0) {
		if (run->hello.msg[0] == '\0')
			snprintf(run->hello.msg, sizeof(run->hello.msg), "child sent no listener");
		if (nfd >= 0)
			close(nfd);
		close(sv[0]);
		close(pp[0]);
		waitpid(pid, &run->status, 0);
		return -1;
	}
	close(sv[0]);

	for (bool pipe_open = true; pipe_open;) {
		struct pollfd pfd[2] = {{.fd = pp[0], .events = POLLIN},
					{.fd = nfd, .events = POLLIN}};
		int rc;

		if (now_ms() > deadline) {
			run->timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		rc = poll(pfd, 2, 1000);
		if (rc < 0 && errno != EINTR) {
			perror("poll");
			exit(1);
		}
		if (rc <= 0)
			continue;
		if (pfd[1].revents & POLLIN) {
			struct kiln_error *err = NULL;

			if (kiln_seccomp_handle(nfd, r, &err) < 0) {
				run->handle_failed = true;
				snprintf(run->handle_msg, sizeof(run->handle_msg), "%s",
					 err ? err->msg : "?");
				kiln_error_free(&err);
				kill(pid, SIGKILL);
				break;
			}
		}
		if (pfd[0].revents & (POLLIN | POLLHUP)) {
			ssize_t got = read(pp[0], buf + have, sizeof(buf) - have);

			if (got < 0 && errno != EINTR) {
				perror("read");
				exit(1);
			}
			if (got == 0)
				pipe_open = false;
			if (got > 0) {
				size_t whole;

				have += (size_t)got;
				whole = have - have % sizeof(struct rec);
				take_records(run, n, buf, whole);
				memmove(buf, buf + whole, have - whole);
				have -= whole;
			}
		}
	}
	close(pp[0]);
	waitpid(pid, &run->status, 0);

	/* Nothing pending any more: handle must return at once, not block. */
	{
		struct kiln_error *err = NULL;
		uint64_t before = r->seccomp_denials;

		alarm(10);
		ok(kiln_seccomp_handle(nfd, r, &err) == 0 && r->seccomp_denials == before,
		   "handle() with nothing pending returns 0 without blocking");
		alarm(0);
		kiln_error_free(&err);
	}
	close(nfd);
	return 0;
}

static uint64_t denied_count(const struct kiln_result *r, const char *name)
{
	for (size_t i = 0; i < r->ndenied; i++)
		if (strcmp(r->denied[i].name, name) == 0)
			return r->denied[i].count;
	return 0;
}

static bool strict(void)
{
	const char *ci = getenv("CI");

	return ci != NULL && strcmp(ci, "true") == 0;
}

/* Skip or, under CI=true, fail. */
static int cannot_run(const char *why)
{
	if (!strict())
		tap_skip_all(why);
	ok(0, "seccomp tests cannot run under CI=true: %s", why);
	return tap_done();
}

/* ---- the tests ---- */

static void test_table(void)
{
	bool all_resolve = true, fallbacks_agree = true, errnos_ok = true, no_dups = true;
	bool names_fit = true;

	ok(kiln_seccomp_nrules > 40, "policy table has %zu rules", kiln_seccomp_nrules);
	for (size_t i = 0; i < kiln_seccomp_nrules; i++) {
		const struct kiln_seccomp_rule *a = &kiln_seccomp_rules[i];
		int lib = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, a->name);
		int nr = lib >= 0 ? lib : a->nr_fallback;

		if (nr < 0) {
			all_resolve = false;
			printf("#   %s: no x86_64 number\n", a->name);
		}
		if (lib >= 0 && a->nr_fallback >= 0 && lib != a->nr_fallback) {
			fallbacks_agree = false;
			printf("#   %s: fallback %d, libseccomp says %d\n", a->name, a->nr_fallback,
			       lib);
		}
		if (a->err <= 0 || a->err >= 4096 || a->why == NULL || a->why[0] == '\0') {
			errnos_ok = false;
			printf("#   %s: errno %d / why missing\n", a->name, a->err);
		}
		if (strlen(a->name) >= sizeof(((struct kiln_syscall_count *)0)->name))
			names_fit = false;
		for (size_t j = 0; j < i; j++) {
			const struct kiln_seccomp_rule *b = &kiln_seccomp_rules[j];
			int lb = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, b->name);

			if (strcmp(a->name, b->name) == 0 ||
			    (nr >= 0 && nr == (lb >= 0 ? lb : b->nr_fallback))) {
				no_dups = false;
				printf("#   duplicate: %s / %s\n", a->name, b->name);
			}
		}
	}
	ok(all_resolve, "every rule resolves to an x86_64 syscall number");
	ok(fallbacks_agree, "every fallback number agrees with libseccomp");
	ok(errnos_ok, "every rule has an errno in 1..4095 and a threat class");
	ok(no_dups, "no duplicate names or numbers");
	ok(names_fit, "every name fits kiln_syscall_count.name");
}

static void test_behaviour(void)
{
	struct kiln_result *r = calloc(1, sizeof(*r));
	static struct run run;
	uint64_t want_total = 0;
	size_t want_names = 0;
	struct stat st;

	if (r == NULL)
		exit(1);
	if (supervise(cases, ARRAY_SIZE(cases), r, &run) < 0) {
		ok(0, "child installed the filter: %s", run.hello.msg);
		free(r);
		return;
	}
	ok(!run.timed_out, "child finished within 60 s");
	ok(!run.handle_failed, "kiln_seccomp_handle never failed %s", run.handle_msg);
	ok(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0, "child exited 0 (status 0x%x)",
	   run.status);
	ok(run.hello.cloexec, "listener fd is FD_CLOEXEC");
	is_int(run.hello.fds_after, run.hello.fds_before + 1,
	       "install leaves exactly one new fd (the listener)");

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct tcase *c = &cases[i];
		const struct rec *rec = &run.recs[i];

		if (!run.got[i]) {
			ok(0, "%s: no result from child", c->what);
			continue;
		}
		if (c->want_errno == ANY)
			continue;
		if (c->want_errno == 0)
			ok(rec->ret >= 0, "%s (ret %ld, %s)", c->what, rec->ret,
			   rec->ret < 0 ? strerror(rec->err) : "ok");
		else
			ok(rec->ret == -1 && rec->err == c->want_errno, "%s -> %s (got %ld, %s)",
			   c->what, strerror(c->want_errno), rec->ret,
			   rec->ret < 0 ? strerror(rec->err) : "success");
	}

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool first = true;

		if (cases[i].denied_as == NULL)
			continue;
		want_total++;
		for (size_t j = 0; j < i; j++)
			if (cases[j].denied_as &&
			    strcmp(cases[j].denied_as, cases[i].denied_as) == 0)
				first = false;
		if (!first)
			continue;
		want_names++;
		{
			uint64_t want = 0;

			for (size_t j = i; j < ARRAY_SIZE(cases); j++)
				if (cases[j].denied_as &&
				    strcmp(cases[j].denied_as, cases[i].denied_as) == 0)
					want++;
			is_int(denied_count(r, cases[i].denied_as), want, "denied[\"%s\"] == %llu",
			       cases[i].denied_as, (unsigned long long)want);
		}
	}
	is_int(r->seccomp_denials, want_total, "seccomp_denials == %llu denied attempts",
	       (unsigned long long)want_total);
	is_int(r->ndenied, want_names, "%zu distinct names counted, nothing else", want_names);
	is_int(denied_count(r, "mount"), 1, "denied[\"mount\"] == 1");

	/* From outside the filter: what is on disk. */
	ok(stat(file_path, &st) == 0 && (st.st_mode & 07777) == 0644,
	   "host: file mode is 0644, no setuid/setgid bit (mode %o)", st.st_mode & 07777);
	ok(access(suid_new, F_OK) < 0 && errno == ENOENT, "host: openat 04700 created nothing");
	ok(access(suid_open, F_OK) < 0 && errno == ENOENT, "host: open 02755 created nothing");
	ok(access(suid_creat, F_OK) < 0 && errno == ENOENT, "host: creat 04755 created nothing");
	ok(access(sgid_dir, F_OK) < 0 && errno == ENOENT, "host: mkdir 02755 created nothing");
	ok(access(chr_node, F_OK) < 0 && errno == ENOENT, "host: no character device created");
	ok(access(blk_node, F_OK) < 0 && errno == ENOENT, "host: no block device created");
	ok(stat(plain_new, &st) == 0 && S_ISREG(st.st_mode), "host: openat 0600 created the file");
	ok(stat(fifo_node, &st) == 0 && S_ISFIFO(st.st_mode), "host: the FIFO exists");
	free(r);
}

/* At most 64 names; the rest only in the total. */
static void test_capacity(void)
{
	struct kiln_result *r = calloc(1, sizeof(*r));
	static struct run run;

	if (r == NULL)
		exit(1);
	for (size_t i = 0; i < ARRAY_SIZE(r->denied) - 1; i++) {
		snprintf(r->denied[i].name, sizeof(r->denied[i].name), "fake-%zu", i);
		r->denied[i].count = 1;
	}
	r->ndenied = ARRAY_SIZE(r->denied) - 1;
	if (supervise(capacity_cases, ARRAY_SIZE(capacity_cases), r, &run) < 0) {
		ok(0, "child installed the filter: %s", run.hello.msg);
		free(r);
		return;
	}
	is_int(r->seccomp_denials, 3, "capacity: all 3 denials in the total");
	is_int(r->ndenied, 64, "capacity: at most 64 names");
	is_str(r->denied[63].name, "mount", "capacity: the 64th name is the first new one");
	is_int(r->denied[63].count, 2, "capacity: and it is still counted");
	is_int(denied_count(r, "bpf"), 0, "capacity: the 65th name is not stored");
	free(r);
}

/* i386 getpid through int $0x80. */
static long int80_getpid(void)
{
	long ret = 20;

	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory", "cc", "r8", "r9", "r10", "r11");
	return ret;
}

static long x32_getpid(void)
{
	return syscall(X32_BIT | SYS_getpid);
}

static long x32_mount(void)
{
	return syscall(X32_BIT | SYS_mount, "none", "/nonexistent-kiln-test", "tmpfs", 0, NULL);
}

/* Run fn in a child, with or without the filter; return its wait status. */
static int run_in_child(long (*fn)(void), bool filtered)
{
	int st = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		if (filtered) {
			struct kiln_error *err = NULL;
			int fd;

			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
				_exit(3);
			fd = kiln_seccomp_install(&err);
			if (fd < 0)
				_exit(3);
			close(fd);
		}
		fn();
		_exit(0);
	}
	waitpid(pid, &st, 0);
	return st;
}

/* No supervisor at all (listener closed): denied calls still fail. */
static long no_supervisor_mount(void)
{
	long r = t_mount();

	_exit(r == -1 && errno == ENOSYS ? 0 : 1);
}

static void test_no_supervisor(void)
{
	int st = run_in_child(no_supervisor_mount, true);

	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "listener closed: mount fails with ENOSYS, the policy fails closed (0x%x)", st);
}

static void test_foreign_abis(void)
{
	int st;

	st = run_in_child(t_getpid, true);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "control: filtered getpid exits normally (0x%x)",
	   st);

	st = run_in_child(int80_getpid, false);
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		ok(1, "int $0x80 is killed # SKIP no IA32 emulation here (status 0x%x)", st);
	} else {
		st = run_in_child(int80_getpid, true);
		ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		   "i386 syscall (int $0x80) kills the process with SIGSYS (status 0x%x)", st);
	}

	st = run_in_child(x32_getpid, true);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
	   "x32 getpid (nr | 0x40000000) kills the process with SIGSYS (status 0x%x)", st);
	st = run_in_child(x32_mount, true);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
	   "x32 mount kills the process with SIGSYS (status 0x%x)", st);
}

static void set_path(char *dst, size_t cap, const char *leaf)
{
	snprintf(dst, cap, "%s/%s", tmpdir, leaf);
}

static void cleanup_tmp(void)
{
	const char *files[] = {file_path, suid_new, suid_creat, suid_open,
			       plain_new, chr_node, blk_node,	fifo_node};

	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		unlink(files[i]);
	rmdir(sgid_dir);
	rmdir(plain_dir);
	rmdir(tmpdir);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	int fd;

	alarm(110); /* meson's timeout is 120 s: fail visibly before it */

	if (seccomp_api_get() < 5)
		return cannot_run("seccomp user notification not available (libseccomp API < 5)");

	test_table();

	snprintf(tmpdir, sizeof(tmpdir), "%s/kiln-seccomp-XXXXXX",
		 base && strlen(base) < 32 ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	set_path(file_path, sizeof(file_path), "file");
	set_path(suid_new, sizeof(suid_new), "suid-openat");
	set_path(suid_open, sizeof(suid_open), "sgid-open");
	set_path(suid_creat, sizeof(suid_creat), "suid-creat");
	set_path(plain_new, sizeof(plain_new), "plain");
	set_path(sgid_dir, sizeof(sgid_dir), "sgid-dir");
	set_path(plain_dir, sizeof(plain_dir), "plain-dir");
	set_path(chr_node, sizeof(chr_node), "chr");
	set_path(blk_node, sizeof(blk_node), "blk");
	set_path(fifo_node, sizeof(fifo_node), "fifo");
	fd = open(file_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0 || fchmod(fd, 0644) < 0) {
		perror(file_path);
		return 1;
	}
	close(fd);

	test_behaviour();
	test_capacity();
	test_no_supervisor();
	test_foreign_abis();

	cleanup_tmp();
	return tap_done();
}
