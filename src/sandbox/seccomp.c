/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The build's seccomp filter (THREATS.md §3, §4, §5, §12) and the
 * supervisor's side of seccomp user notification.
 *
 * Shape of the filter. Default action ALLOW: this is a denylist in depth on
 * top of user/mount/pid/net namespaces, an empty capability set and Landlock,
 * so its job is to take kernel attack surface away (THREATS.md §4: kernel
 * bugs reachable through *allowed* syscalls are out of scope for the native
 * sandbox), not to be the only wall. Every denied syscall is listed in
 * kiln_seccomp_rules[] with the errno it gets and the threat class it
 * belongs to; some are denied only for certain arguments (see the
 * cond_rules[] table and the add_* functions below).
 *
 * Denied calls use SCMP_ACT_NOTIFY rather than SCMP_ACT_ERRNO: the process
 * blocks, the supervisor (outside the sandbox, kiln_seccomp_handle) counts
 * the attempt by name for the report and answers with the table's errno.
 * If the supervisor goes away, the kernel answers every pending and future
 * notification with ENOSYS, so the policy fails closed.
 *
 * Architectures: only x86_64 is in the filter. libseccomp makes every other
 * AUDIT_ARCH (i386 through `int $0x80` or sysenter) hit the bad-arch action,
 * which we set to KILL_PROCESS, and for an x86_64 filter it also sends every
 * x32 syscall number (nr >= 0x40000000, except -1) to the bad-arch action
 * (its BPF has `jge 0x40000000` right after the arch check; the unit test
 * checks the effect). So the numbers below are the only numbers that exist
 * for a process under this filter.
 *
 * Arguments. seccomp compares 64-bit register values, but most syscalls
 * truncate their arguments (ioctl's cmd and socket's family to 32 bits,
 * chmod's mode to 16, personality to 32). A comparison that looks at bits
 * the kernel ignores can be bypassed by setting them (CVE-2019-10063 for
 * TIOCSTI), so every comparison below either masks down to the bits the
 * kernel uses or errs on the side of denying. Pointer arguments are never
 * inspected: the memory they point to can change after the check.
 */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Mask for an argument the kernel takes as int / unsigned int. */
#define LOW32 0xffffffffULL

/*
 * The policy table. nr_fallback is the x86_64 number, given for every
 * syscall added since Linux 5.1 (number >= 425), so that the filter cannot
 * lose a rule on a libseccomp that predates the syscall; the
 * unit test checks that each fallback agrees with libseccomp where both
 * exist. errno: EPERM (what an unprivileged process would get anyway) unless
 * software is known to probe the call and fall back on "not there", where
 * it gets ENOSYS (EAFNOSUPPORT for socket families).
 */
const struct kiln_seccomp_rule kiln_seccomp_rules[] = {
	/* §4 nested namespaces (CVE-2022-0185 class: a new user namespace
	 * hands out capabilities over fresh namespaces and exposes the
	 * kernel code behind them). unshare and setns are denied for any
	 * flags, as Docker does; clone only with a CLONE_NEW* flag, so
	 * fork, vfork and threads keep working. clone3 passes its flags in
	 * memory, so it is answered ENOSYS by the filter itself (not counted)
	 * and libc falls back to clone. */
	{"unshare", -1, EPERM, "§4 nested namespaces"},
	{"setns", -1, EPERM, "§4 nested namespaces"},
	{"clone", -1, EPERM, "§4 nested namespaces (CLONE_NEW* flags)"},

	/* §4 the mount API, old and new: the sandbox's mount tree is
	 * final once the command runs. The new API gets ENOSYS so that
	 * libmount falls back to mount(2), which then says EPERM. */
	{"mount", -1, EPERM, "§4 mount API"},
	{"umount2", -1, EPERM, "§4 mount API"},
	{"pivot_root", -1, EPERM, "§4 mount API"},
	{"chroot", -1, EPERM, "§4 mount API"},
	{"open_tree", 428, ENOSYS, "§4 mount API (new)"},
	{"move_mount", 429, ENOSYS, "§4 mount API (new)"},
	{"fsopen", 430, ENOSYS, "§4 mount API (new)"},
	{"fsconfig", 431, ENOSYS, "§4 mount API (new)"},
	{"fsmount", 432, ENOSYS, "§4 mount API (new)"},
	{"fspick", 433, ENOSYS, "§4 mount API (new)"},
	{"mount_setattr", 442, ENOSYS, "§4 mount API (new)"},
	{"open_tree_attr", 467, ENOSYS, "§4 mount API (new, Linux 6.15)"},
	{"quotactl", -1, EPERM, "§4 filesystem administration"},
	{"quotactl_fd", 443, EPERM, "§4 filesystem administration"},

	/* §4 kernel attack surface with a long CVE record and no use in a
	 * build that cannot be met another way. io_uring gets ENOSYS:
	 * liburing users and libuv fall back to epoll/threads. */
	{"io_uring_setup", 425, ENOSYS, "§4 io_uring"},
	{"io_uring_enter", 426, ENOSYS, "§4 io_uring"},
	{"io_uring_register", 427, ENOSYS, "§4 io_uring"},
	{"userfaultfd", -1, EPERM, "§4 userfaultfd (race widening for exploits)"},
	{"bpf", -1, EPERM, "§4 bpf"},
	{"perf_event_open", -1, EPERM, "§4 perf events"},
	{"fanotify_init", -1, EPERM, "§4 fanotify"},
	{"memfd_secret", 447, ENOSYS, "§4 secretmem"},
	/* Keyrings are not namespaced: a key is visible to the same uid
	 * outside. ENOSYS reads as "kernel without keys" to libkeyutils. */
	{"add_key", -1, ENOSYS, "§4 keyrings"},
	{"keyctl", -1, ENOSYS, "§4 keyrings"},
	{"request_key", -1, ENOSYS, "§4 keyrings"},
	/* Shocker: open_by_handle_at opens any inode of a filesystem by
	 * handle, around every mount and Landlock rule. name_to_handle_at
	 * only produces handles; ENOSYS makes systemd/libmount fall back
	 * to /proc/self/mountinfo. */
	{"open_by_handle_at", -1, EPERM, "§4 open_by_handle_at (Shocker)"},
	{"name_to_handle_at", -1, ENOSYS, "§4 open_by_handle_at (Shocker)"},

	/* §4 kexec, modules and machine administration. Fail without
	 * capabilities anyway; denied so that the check does not depend on
	 * the capability layer alone. */
	{"kexec_load", -1, EPERM, "§4 kexec"},
	{"kexec_file_load", -1, EPERM, "§4 kexec"},
	{"init_module", -1, EPERM, "§4 kernel modules"},
	{"finit_module", -1, EPERM, "§4 kernel modules"},
	{"delete_module", -1, EPERM, "§4 kernel modules"},
	{"reboot", -1, EPERM, "§4 machine administration"},
	{"swapon", -1, EPERM, "§4 machine administration"},
	{"swapoff", -1, EPERM, "§4 machine administration"},
	{"acct", -1, EPERM, "§4 machine administration"},
	{"syslog", -1, EPERM, "§1 kernel log (addresses, other jobs)"},
	{"iopl", -1, EPERM, "§4 raw I/O ports"},
	{"ioperm", -1, EPERM, "§4 raw I/O ports"},
	{"vhangup", -1, EPERM, "§5 terminal hangup"},
	/* Obsolete interfaces: most kernels no longer have them, so ENOSYS
	 * is the answer software expects. */
	{"lookup_dcookie", -1, ENOSYS, "§4 obsolete interface"},
	{"nfsservctl", -1, ENOSYS, "§4 obsolete interface"},
	{"uselib", -1, ENOSYS, "§4 obsolete interface"},
	{"_sysctl", -1, ENOSYS, "§4 obsolete interface"},

	/* §12 identity: the host's clock and names. The time and UTS
	 * namespaces and missing CAP_SYS_TIME already stop these; adjtimex
	 * and clock_adjtime are denied whole because their read-only mode
	 * is only visible in memory (a struct), which we cannot inspect. */
	{"settimeofday", -1, EPERM, "§12 host clock"},
	{"clock_settime", -1, EPERM, "§12 host clock"},
	{"clock_adjtime", -1, EPERM, "§12 host clock"},
	{"adjtimex", -1, EPERM, "§12 host clock"},
	{"sethostname", -1, EPERM, "§12 host name"},
	{"setdomainname", -1, EPERM, "§12 host name"},

	/* §4 personality flags have been exploit helpers (MMAP_PAGE_ZERO,
	 * READ_IMPLIES_EXEC); only the query 0xffffffff and PER_LINUX (0)
	 * are allowed. */
	{"personality", -1, EPERM, "§4 personality"},

	/* §4/§8 socket families: only AF_UNIX, AF_INET, AF_INET6 and
	 * AF_NETLINK, and among those no raw or packet sockets and no audit
	 * netlink. Every other family (AF_PACKET, AF_VSOCK, AF_ALG, AF_KEY,
	 * AF_TIPC, ...) is rarely used code and a steady source of local
	 * privilege escalations. EAFNOSUPPORT reads as "not built into this
	 * kernel", which every caller handles (libaudit included). */
	{"socket", -1, EAFNOSUPPORT, "§4 raw sockets and rare socket families"},
	{"socketpair", -1, EAFNOSUPPORT, "§4 raw sockets and rare socket families"},

	/* §5 terminal injection, and line disciplines (kernel surface: n_hdlc
	 * CVE-2017-2636, n_gsm CVE-2023-6546). */
	{"ioctl", -1, EPERM, "§5 terminal injection (TIOCSTI, TIOCLINUX, TIOCSETD)"},

	/* §3 setuid/setgid files and device nodes planted in outputs. Only
	 * the mode argument is looked at: an open without O_CREAT gets mode
	 * 0 from every libc. openat2 carries its mode in memory and is
	 * answered ENOSYS by the filter itself: glibc does not use it and
	 * callers fall back to openat. */
	{"chmod", -1, EPERM, "§3 setuid/setgid files"},
	{"fchmod", -1, EPERM, "§3 setuid/setgid files"},
	{"fchmodat", -1, EPERM, "§3 setuid/setgid files"},
	{"fchmodat2", 452, EPERM, "§3 setuid/setgid files"},
	{"open", -1, EPERM, "§3 setuid/setgid files"},
	{"openat", -1, EPERM, "§3 setuid/setgid files"},
	{"creat", -1, EPERM, "§3 setuid/setgid files"},
	{"mkdir", -1, EPERM, "§3 setuid/setgid files"},
	{"mkdirat", -1, EPERM, "§3 setuid/setgid files"},
	{"mknod", -1, EPERM, "§3 setuid/setgid files and device nodes"},
	{"mknodat", -1, EPERM, "§3 setuid/setgid files and device nodes"},
};
const size_t kiln_seccomp_nrules = ARRAY_SIZE(kiln_seccomp_rules);

/*
 * Allowed on purpose (reviewers ask):
 * - ptrace, process_vm_readv/writev, pidfd_getfd, kcmp: builds run strace,
 *   gdb and sanitizers. They reach only processes of the same uid inside the
 *   sandbox's pid namespace, and ptrace already gives everything the others
 *   do, so denying those alone would buy nothing.
 * - seccomp: a filter the build installs can only restrict it further.
 * - landlock_*: same.
 * - statmount/listmount: read-only, and the mount namespace is the sandbox's.
 */

/* Answered by the filter itself, without notification (not counted). */
struct direct_rule {
	const char *name;
	int nr_fallback;
	int err;
};
static const struct direct_rule direct_rules[] = {
	/* §4: clone3's flags are in memory; libc falls back to clone on ENOSYS. */
	{"clone3", 435, ENOSYS},
	/* §3: openat2's mode is in memory; libc does not use it, and the
	 * programs that do fall back to openat on ENOSYS. */
	{"openat2", 437, ENOSYS},
};

typedef int (*cond_fn)(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg);

static int add(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int n,
	       const struct scmp_arg_cmp *cmp)
{
	/* _exact: we want what we wrote, not libseccomp's rewrite (there is
	 * none on x86_64; on error we want to hear about it). */
	return seccomp_rule_add_exact_array(ctx, act, nr, n, cmp);
}

/* Deny when (arg & bits) == bits, looking only at those bits. */
static int add_bits(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg, uint64_t bits)
{
	struct scmp_arg_cmp c = {arg, SCMP_CMP_MASKED_EQ, bits, bits};

	return add(ctx, act, nr, 1, &c);
}

/* §4: clone with any namespace flag. clone truncates its flags to 32 bits
 * (lower_32_bits in kernel/fork.c) and each compare looks at one bit only,
 * so high bits change nothing. CLONE_NEWTIME (0x80) lies in clone's
 * exit-signal byte, where the kernel never reads it as a flag; listing it
 * only refuses exit signals >= 128, which no program uses, and keeps the
 * list the same as the kernel's CLONE_NEW* set. */
static int add_clone(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg)
{
	static const uint64_t flags[] = {
		CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
		CLONE_NEWUSER, CLONE_NEWPID,	CLONE_NEWNET, CLONE_NEWTIME,
	};
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		rc = add_bits(ctx, act, nr, arg, flags[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* §3: a mode argument with S_ISUID or S_ISGID. umode_t is 16 bits; the
 * single-bit masks ignore everything else. */
static int add_mode(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg)
{
	int rc = add_bits(ctx, act, nr, arg, S_ISUID);

	return rc < 0 ? rc : add_bits(ctx, act, nr, arg, S_ISGID);
}

/* §3: mknod/mknodat: setuid/setgid bits, and character or block devices
 * (a device node in the outputs is a handle on host hardware). */
static int add_mknod(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg)
{
	struct scmp_arg_cmp chr = {arg, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR};
	struct scmp_arg_cmp blk = {arg, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK};
	int rc = add_mode(ctx, act, nr, arg);

	if (rc >= 0)
		rc = add(ctx, act, nr, 1, &chr);
	if (rc >= 0)
		rc = add(ctx, act, nr, 1, &blk);
	return rc;
}

/* §5: TIOCSTI (CVE-2017-5226), TIOCLINUX (also injects input, and more),
 * TIOCSETD. ioctl's cmd is an unsigned int: compare the low 32 bits only,
 * so that 0xffffffff00005412 is TIOCSTI too (CVE-2019-10063). */
static int add_ioctl(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg)
{
	static const uint64_t cmds[] = {TIOCSTI, TIOCLINUX, TIOCSETD};
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		struct scmp_arg_cmp c = {arg, SCMP_CMP_MASKED_EQ, LOW32, cmds[i]};

		rc = add(ctx, act, nr, 1, &c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* §4: personality(2) takes an unsigned int: allow low 32 bits 0 (PER_LINUX)
 * or 0xffffffff (query), deny everything else. A libseccomp rule may
 * compare an argument only once and rules are OR-ed, so "x != 0 && x !=
 * ~0" is written as "some bit i is 1 and bit i+1 (cyclically) is 0": a
 * 32-bit word has such a pair exactly when it is neither all zeros nor all
 * ones. 32 one-compare rules, all masked to the low 32 bits. */
static int add_personality(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg)
{
	int rc;

	for (unsigned int i = 0; i < 32; i++) {
		uint64_t bit = 1ULL << i, next = 1ULL << ((i + 1) % 32);
		struct scmp_arg_cmp c = {arg, SCMP_CMP_MASKED_EQ, bit | next, bit};

		rc = add(ctx, act, nr, 1, &c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * §4 socket families, for socket and (arg 0 only) socketpair.
 * The family compares are on all 64 bits, which errs on the side of
 * denying: the only values that pass are exactly 1, 2, 10 and 16, and
 * the kernel sees those same families.
 */
static int add_family_allowlist(scmp_filter_ctx ctx, uint32_t act, int nr)
{
	/* Complement of {AF_UNIX 1, AF_INET 2, AF_INET6 10, AF_NETLINK 16}. */
	static const struct scmp_arg_cmp deny[] = {
		{0, SCMP_CMP_EQ, 0, 0},		     /* AF_UNSPEC */
		{0, SCMP_CMP_EQ, 3, 0},		     /* AF_AX25 */
		{0, SCMP_CMP_MASKED_EQ, ~3ULL, 4},   /* 4..7: IPX, APPLETALK, NETROM, BRIDGE */
		{0, SCMP_CMP_MASKED_EQ, ~1ULL, 8},   /* 8..9: ATMPVC, X25 */
		{0, SCMP_CMP_EQ, 11, 0},	     /* AF_ROSE */
		{0, SCMP_CMP_MASKED_EQ, ~3ULL, 12},  /* 12..15: DECnet, NETBEUI, SECURITY, KEY */
		{0, SCMP_CMP_GE, AF_NETLINK + 1, 0}, /* 17..: PACKET, ALG, VSOCK, ... and any
						       value with high bits set */
	};
	int rc;

	_Static_assert(AF_UNIX == 1 && AF_INET == 2 && AF_INET6 == 10 && AF_NETLINK == 16,
		       "socket family allowlist assumes Linux family numbers");
	for (size_t i = 0; i < ARRAY_SIZE(deny); i++) {
		rc = add(ctx, act, nr, 1, &deny[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int add_socket(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg)
{
	/* The type's low 4 bits (SOCK_TYPE_MASK) are the type; the mask
	 * leaves out SOCK_NONBLOCK and SOCK_CLOEXEC. (AF_INET, SOCK_PACKET)
	 * is turned into AF_PACKET by __sock_create. */
	static const struct scmp_arg_cmp deny[][2] = {
		{{0, SCMP_CMP_EQ, AF_INET, 0}, {1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW}},
		{{0, SCMP_CMP_EQ, AF_INET, 0}, {1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET}},
		{{0, SCMP_CMP_EQ, AF_INET6, 0}, {1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW}},
		{{0, SCMP_CMP_EQ, AF_INET6, 0}, {1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET}},
		/* Audit: the host's audit log is a record (§13). */
		{{0, SCMP_CMP_EQ, AF_NETLINK, 0}, {2, SCMP_CMP_MASKED_EQ, LOW32, NETLINK_AUDIT}},
	};
	int rc = add_family_allowlist(ctx, act, nr);

	for (size_t i = 0; rc >= 0 && i < ARRAY_SIZE(deny); i++)
		rc = add(ctx, act, nr, 2, deny[i]);
	return rc;
}

/* socketpair creates its sockets through the same family code as socket
 * (and fails afterwards for everything but AF_UNIX), so only AF_UNIX is
 * let through. */
static int add_socketpair(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned int arg)
{
	struct scmp_arg_cmp c = {0, SCMP_CMP_NE, AF_UNIX, 0};

	return add(ctx, act, nr, 1, &c);
}

/* Rules with conditions; every name must be in kiln_seccomp_rules[]. The
 * others are denied for all arguments. */
static const struct {
	const char *name;
	cond_fn fn;
	unsigned int arg;
} cond_rules[] = {
	{"clone", add_clone, 0},
	{"ioctl", add_ioctl, 1},
	{"personality", add_personality, 0},
	{"socket", add_socket, 0},
	{"socketpair", add_socketpair, 0},
	{"chmod", add_mode, 1},
	{"fchmod", add_mode, 1},
	{"fchmodat", add_mode, 2},
	{"fchmodat2", add_mode, 2},
	{"open", add_mode, 2},
	{"openat", add_mode, 3},
	{"creat", add_mode, 1},
	{"mkdir", add_mode, 1},
	{"mkdirat", add_mode, 2},
	{"mknod", add_mknod, 1},
	{"mknodat", add_mknod, 2},
};

/* The x86_64 number of a syscall: libseccomp's, else the fallback. -1 if
 * neither exists. Any negative answer from libseccomp (error, or a pseudo
 * syscall number for a call x86_64 does not have) counts as unknown. */
static int resolve(const char *name, int fallback)
{
	int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);

	return nr >= 0 ? nr : fallback;
}

static void ctx_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx != NULL)
		seccomp_release(*ctx);
}

/* libseccomp's API level sums up what the kernel offers; an outer seccomp
 * filter (a container runtime's) that blocks seccomp(2) lowers it too. */
static int check_support(struct kiln_error **err)
{
	static const char hint[] = "; if kiln runs in a container, its seccomp profile may "
				   "block seccomp(2)";
	unsigned int api;

	if (seccomp_arch_native() != SCMP_ARCH_X86_64)
		return kiln_error_set(err, 0,
				      "seccomp: kiln's policy is defined for x86_64 only; "
				      "refusing to run without it");
	api = seccomp_api_get();
	if (api < 1)
		return kiln_error_set(err, 0,
				      "seccomp filters not supported by this kernel "
				      "(needs CONFIG_SECCOMP_FILTER)%s",
				      hint);
	if (api < 3)
		return kiln_error_set(err, 0,
				      "seccomp SECCOMP_RET_KILL_PROCESS not supported by this "
				      "kernel (needs Linux >= 4.14)%s",
				      hint);
	if (api < 5)
		return kiln_error_set(err, 0,
				      "seccomp user notification not supported by this kernel "
				      "(needs Linux >= 5.0)%s",
				      hint);
	return 0;
}

static int build(scmp_filter_ctx ctx, struct kiln_error **err)
{
	size_t used = 0;
	int rc;

	/* i386 and (through libseccomp's x32 check) x32 syscalls: kill. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc < 0)
		return kiln_error_set(err, -rc, "seccomp: set bad-architecture action");
	/* Errors from the kernel as they are, for the messages below. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	if (rc < 0)
		return kiln_error_set(err, -rc, "seccomp: set raw return codes");

	for (size_t i = 0; i < kiln_seccomp_nrules; i++) {
		const struct kiln_seccomp_rule *r = &kiln_seccomp_rules[i];
		int nr = resolve(r->name, r->nr_fallback);
		cond_fn fn = NULL;
		unsigned int arg = 0;

		if (nr < 0)
			return kiln_error_set(err, 0,
					      "seccomp: libseccomp does not know syscall %s "
					      "and kiln has no number for it",
					      r->name);
		for (size_t j = 0; j < ARRAY_SIZE(cond_rules); j++) {
			if (strcmp(cond_rules[j].name, r->name) == 0) {
				fn = cond_rules[j].fn;
				arg = cond_rules[j].arg;
				used++;
			}
		}
		rc = fn ? fn(ctx, SCMP_ACT_NOTIFY, nr, arg)
			: add(ctx, SCMP_ACT_NOTIFY, nr, 0, NULL);
		if (rc < 0)
			return kiln_error_set(err, -rc, "seccomp: add rule for %s", r->name);
	}
	/* A conditional rule whose name is not in the table would silently
	 * not exist. */
	if (used != ARRAY_SIZE(cond_rules))
		return kiln_error_set(err, 0, "seccomp: conditional rule without a table entry");

	for (size_t i = 0; i < ARRAY_SIZE(direct_rules); i++) {
		const struct direct_rule *d = &direct_rules[i];
		int nr = resolve(d->name, d->nr_fallback);

		if (nr < 0)
			return kiln_error_set(err, 0, "seccomp: no syscall number for %s", d->name);
		rc = add(ctx, SCMP_ACT_ERRNO((uint32_t)d->err), nr, 0, NULL);
		if (rc < 0)
			return kiln_error_set(err, -rc, "seccomp: add rule for %s", d->name);
	}
	return 0;
}

int kiln_seccomp_compile(struct kiln_error **err)
{
	__attribute__((cleanup(ctx_releasep))) scmp_filter_ctx ctx = NULL;
	int fd, rc;

	if (check_support(err) < 0)
		return -1;
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return kiln_error_set(err, ENOMEM, "seccomp: create filter");
	if (build(ctx, err) < 0)
		return -1;
	fd = memfd_create("kiln-seccomp-bpf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return kiln_error_set(err, errno, "seccomp: memfd_create");
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0) {
		close(fd);
		return kiln_error_set(err, -rc, "seccomp: export filter");
	}
	/* Sealed: nobody who holds the fd can change the program afterwards. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		int e = errno;

		close(fd);
		return kiln_error_set(err, e, "seccomp: seal filter");
	}
	return fd;
}

int kiln_seccomp_load(int bpf_fd, struct kiln_error **err)
{
	struct sock_filter *insns;
	struct sock_fprog prog;
	struct stat st;
	ssize_t n;
	int fd, e;

	if (fstat(bpf_fd, &st) < 0)
		return kiln_error_set(err, errno, "seccomp: filter fd");
	if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
	    st.st_size > (off_t)(BPF_MAXINSNS * sizeof(struct sock_filter)))
		return kiln_error_set(err, EINVAL,
				      "seccomp: filter of %lld bytes is not a BPF program",
				      (long long)st.st_size);
	insns = malloc((size_t)st.st_size);
	if (insns == NULL)
		return kiln_error_set(err, ENOMEM, "seccomp: filter");
	n = pread(bpf_fd, insns, (size_t)st.st_size, 0);
	if (n != (ssize_t)st.st_size) {
		free(insns);
		return kiln_error_set(err, n < 0 ? errno : EIO, "seccomp: read filter");
	}
	prog.len = (unsigned short)((size_t)st.st_size / sizeof(struct sock_filter));
	prog.filter = insns;
	fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
			  &prog);
	e = errno;
	free(insns);
	if (fd < 0 && e == EBUSY)
		return kiln_error_set(err, e,
				      "seccomp: load filter: another seccomp listener is "
				      "installed (is kiln running inside a sandbox?)");
	if (fd < 0)
		return kiln_error_set(err, e, "seccomp: load filter");
	/* The filter is in force from here on. The kernel creates the
	 * listener O_CLOEXEC: a build holding its own listener could answer
	 * its denials with success. */
	return fd;
}

int kiln_seccomp_install(struct kiln_error **err)
{
	int bpf = kiln_seccomp_compile(err), fd;

	if (bpf < 0)
		return -1;
	fd = kiln_seccomp_load(bpf, err);
	close(bpf);
	return fd;
}

/* Syscall number -> table row, or NULL. */
static const struct kiln_seccomp_rule *lookup(int nr)
{
	for (size_t i = 0; i < kiln_seccomp_nrules; i++) {
		const struct kiln_seccomp_rule *r = &kiln_seccomp_rules[i];

		if (resolve(r->name, r->nr_fallback) == nr)
			return r;
	}
	return NULL;
}

static void count(struct kiln_result *r, const char *name)
{
	size_t i;

	r->seccomp_denials++;
	for (i = 0; i < r->ndenied; i++) {
		if (strcmp(r->denied[i].name, name) == 0) {
			r->denied[i].count++;
			return;
		}
	}
	if (r->ndenied >= ARRAY_SIZE(r->denied))
		return; /* only in the total */
	snprintf(r->denied[r->ndenied].name, sizeof(r->denied[0].name), "%s", name);
	r->denied[r->ndenied].count = 1;
	r->ndenied++;
}

int kiln_seccomp_handle(int notify_fd, struct kiln_result *r, struct kiln_error **err)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	const struct kiln_seccomp_rule *rule = NULL;
	struct pollfd pfd = {.fd = notify_fd, .events = POLLIN};
	char name[32];
	int rc;

	/* RECV blocks when nothing is pending; the caller's poll may have
	 * woken for POLLHUP only (every filtered task is gone). */
	do
		rc = poll(&pfd, 1, 0);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return kiln_error_set(err, errno, "seccomp: poll listener");
	if (rc == 0 || !(pfd.revents & POLLIN)) {
		if (pfd.revents & POLLNVAL)
			return kiln_error_set(err, EBADF, "seccomp: poll listener");
		return 0;
	}

	/* The kernel refuses a request buffer that is not zeroed. */
	memset(&req, 0, sizeof(req));
	do
		rc = ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, &req);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		/* ENOENT: the task was killed between poll and receive. */
		if (errno == ENOENT)
			return 0;
		return kiln_error_set(err, errno, "seccomp: receive notification");
	}

	/* Only nr and arch are used: args and instruction_pointer are the
	 * hostile process's registers. Any other arch cannot get here (it is
	 * killed); if it did, it is denied with EPERM all the same. */
	if (req.data.arch == AUDIT_ARCH_X86_64)
		rule = lookup(req.data.nr);
	if (rule != NULL) {
		snprintf(name, sizeof(name), "%s", rule->name);
	} else {
		char *s = req.data.arch == AUDIT_ARCH_X86_64
				  ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, req.data.nr)
				  : NULL;

		if (s != NULL)
			snprintf(name, sizeof(name), "%s", s);
		else
			snprintf(name, sizeof(name), "syscall-%d", req.data.nr);
		free(s);
	}
	if (r != NULL)
		count(r, name);

	memset(&resp, 0, sizeof(resp));
	resp.id = req.id;
	resp.error = -(rule != NULL ? rule->err : EPERM);
	resp.val = 0;
	resp.flags = 0;
	do
		rc = ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		/* ENOENT: the task died, or a signal interrupted the syscall
		 * (it will be notified again if restarted). */
		if (errno == ENOENT)
			return 0;
		return kiln_error_set(err, errno, "seccomp: reply to notification for %s", name);
	}
	return 0;
}
