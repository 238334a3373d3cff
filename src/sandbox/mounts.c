/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox's filesystem, built by init inside its new user and mount
 * namespaces (so every host mount it can see is locked: the build cannot
 * unmount anything to reveal what lies beneath).
 *
 *   /                tmpfs, read-only after setup
 *   /usr, /bin, ...  the host's (or --root's) system directories: ro,nosuid,nodev
 *   /etc             an allowlist from the host (or --root), plus generated
 *                    passwd, group, hosts, hostname, resolv.conf, nsswitch.conf
 *   /proc            a fresh procfs for our pid namespace, sensitive paths masked
 *   /dev             null zero full random urandom tty, pts (new instance), shm
 *   /workspace, /tmp, /home/builder
 *                    three directories of ONE tmpfs of --disk bytes: the
 *                    disk limit covers them together; its fd goes to the
 *                    supervisor, which copies the source in and exports
 *                    /workspace/out from it after every process is dead
 *   no /sys, no /root, no /run contents, no /var but /var/tmp -> /tmp
 *
 * The tree is assembled under a private tmpfs mounted on /tmp of our mount
 * namespace (bubblewrap does the same), then pivot_root(".", ".") and a lazy
 * unmount of the old root make the host unreachable, including the caller's
 * working directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "sandbox/internal.h"

#define STAGE "/tmp"
#define R     STAGE "/root"
#define DISK  STAGE "/disk"

/* /etc entries a toolchain needs. Nothing that identifies the host or holds
 * secrets (no machine-id, ssh, shadow, environment, ld.so.preload, kiln). */
static const char *const etc_allow[] = {
	"alternatives",
	"bash.bashrc",
	"ca-certificates",
	"ca-certificates.conf",
	"debian_version",
	"ethertypes",
	"gai.conf",
	"host.conf",
	"inputrc",
	"ld.so.cache",
	"ld.so.conf",
	"ld.so.conf.d",
	"locale.alias",
	"localtime",
	"magic",
	"magic.mime",
	"mime.types",
	"os-release",
	"perl",
	"profile",
	"protocols",
	"python3",
	"python3.11",
	"rpc",
	"services",
	"shells",
	"ssl",
	"timezone",
	"xattr.conf",
};

/* System directories taken from the base (host or --root). */
static const char *const sys_dirs[] = {
	"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32",
};

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

/* procfs: files hidden behind /dev/null, directories behind an empty
 * read-only tmpfs, and directories made read-only (as crun and docker do). */
static const char *const proc_mask_files[] = {
	"kcore",	 "keys",	  "key-users",	"timer_list",  "sched_debug",
	"latency_stats", "kallsyms",	  "kpagecount", "kpageflags",  "kpagecgroup",
	"config.gz",	 "sysrq-trigger", "kmsg",	"vmallocinfo", "pagetypeinfo",
};
static const char *const proc_mask_dirs[] = {"acpi", "scsi", "asound", "driver",
					     "fs",   "irq",  "bus"};
static const char *const proc_ro_dirs[] = {"sys"};

static int set_attr(const char *path, uint64_t set, bool recursive, struct kiln_error **err)
{
	struct mount_attr attr = {.attr_set = set};

	if (mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof(attr)) < 0)
		return kiln_error_set(err, errno, "mount_setattr %s", path);
	return 0;
}

/* attr 0: the caller sets attributes later, recursively, on a parent mount. */
static int bind(const char *src, const char *dst, uint64_t attr, struct kiln_error **err)
{
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return kiln_error_set(err, errno, "bind %s on %s", src, dst);
	return attr ? set_attr(dst, attr, true, err) : 0;
}

static int mount_tmpfs(const char *dst, unsigned long flags, const char *opts,
		       struct kiln_error **err)
{
	if (mount("tmpfs", dst, "tmpfs", flags, opts) < 0)
		return kiln_error_set(err, errno, "mount tmpfs on %s (%s)", dst, opts);
	return 0;
}

static int mkdir_p(const char *path, mode_t mode, struct kiln_error **err)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return kiln_error_set(err, ENAMETOOLONG, "mkdir %s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return kiln_error_set(err, errno, "mkdir %s", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return kiln_error_set(err, errno, "mkdir %s", buf);
	return 0;
}

static int touch(const char *path, struct kiln_error **err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return kiln_error_set(err, errno, "create %s", path);
	close(fd);
	return 0;
}

static int write_file(const char *path, const char *data, struct kiln_error **err)
{
	return kiln_write_file_at(AT_FDCWD, path, data, 1, err);
}

/* Mirror base/name into R/name: a symlink is recreated, a directory or
 * regular file is bind-mounted with attr. Missing entries are skipped. */
static int mirror(const char *base, const char *rel, uint64_t attr, bool need_world_readable,
		  struct kiln_error **err)
{
	char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(src, sizeof(src), "%s/%s", strcmp(base, "/") == 0 ? "" : base, rel);
	snprintf(dst, sizeof(dst), R "/%s", rel);
	if (lstat(src, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return kiln_error_set(err, errno, "stat %s", src);
	}
	if (S_ISLNK(st.st_mode)) {
		n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			return kiln_error_set(err, errno, "readlink %s", src);
		target[n] = '\0';
		if (symlink(target, dst) < 0)
			return kiln_error_set(err, errno, "symlink %s", dst);
		return 0;
	}
	if (need_world_readable && !(st.st_mode & S_IROTH))
		return 0;
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(dst, 0755) < 0 && errno != EEXIST)
			return kiln_error_set(err, errno, "mkdir %s", dst);
	} else if (S_ISREG(st.st_mode)) {
		if (touch(dst, err) < 0)
			return -1;
	} else {
		return 0;
	}
	return bind(src, dst, attr, err);
}

/* Small regular files of /etc are copied rather than bind-mounted: a copy
 * is a handful of cheap system calls, a bind mount takes the namespace
 * lock twice (mount + attributes). Directories are still bound. */
#define ETC_COPY_MAX (256 * 1024)

static int copy_small(const char *src, const char *dst, const struct stat *st,
		      struct kiln_error **err)
{
	cleanup_fd int in = -1, out = -1;
	char buf[16384];
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (in < 0)
		return kiln_error_set(err, errno, "open %s", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, st->st_mode & 0644);
	if (out < 0)
		return kiln_error_set(err, errno, "create %s", dst);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (kiln_write_all(out, buf, (size_t)n) < 0)
			return kiln_error_set(err, errno, "write %s", dst);
	if (n < 0)
		return kiln_error_set(err, errno, "read %s", src);
	return 0;
}

static int setup_etc(const struct kiln_sandbox *sb, const char *base, struct kiln_error **err)
{
	const uint64_t ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
	char passwd[512];
	size_t i;

	/* Its own tmpfs, so that one recursive mount_setattr at the end makes
	 * it and every directory bound into it read-only. */
	if (mkdir(R "/etc", 0755) < 0)
		return kiln_error_set(err, errno, "mkdir /etc");
	if (mount_tmpfs(R "/etc", MS_NOSUID | MS_NODEV, "mode=0755,size=4m,nr_inodes=256", err) < 0)
		return -1;
	for (i = 0; i < sizeof(etc_allow) / sizeof(etc_allow[0]); i++) {
		char src[PATH_MAX], dst[PATH_MAX];
		struct stat st;

		snprintf(src, sizeof(src), "%s/etc/%s", strcmp(base, "/") == 0 ? "" : base,
			 etc_allow[i]);
		snprintf(dst, sizeof(dst), R "/etc/%s", etc_allow[i]);
		if (lstat(src, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IROTH) &&
		    st.st_size <= ETC_COPY_MAX) {
			if (copy_small(src, dst, &st, err) < 0)
				return kiln_error_prefix(err, "/etc");
			continue;
		}
		snprintf(src, sizeof(src), "etc/%s", etc_allow[i]);
		if (mirror(base, src, 0, true, err) < 0)
			return kiln_error_prefix(err, "/etc");
	}
	snprintf(passwd, sizeof(passwd),
		 "root:x:0:0:root:/nonexistent:/bin/sh\n"
		 "%s:x:%u:%u:kiln build user:/home/%s:/bin/sh\n"
		 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		 KILN_BUILDER_NAME, KILN_BUILDER_UID, KILN_BUILDER_GID, KILN_BUILDER_NAME);
	if (write_file(R "/etc/passwd", passwd, err) < 0)
		return -1;
	snprintf(passwd, sizeof(passwd), "root:x:0:\ntty:x:5:\n%s:x:%u:\nnogroup:x:65534:\n",
		 KILN_BUILDER_NAME, KILN_BUILDER_GID);
	if (write_file(R "/etc/group", passwd, err) < 0 ||
	    write_file(R "/etc/hostname", KILN_HOSTNAME "\n", err) < 0 ||
	    write_file(R "/etc/hosts",
		       "127.0.0.1\tlocalhost " KILN_HOSTNAME
		       "\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		       err) < 0 ||
	    write_file(R "/etc/nsswitch.conf",
		       "passwd: files\ngroup: files\nshadow: files\nhosts: files\n"
		       "networks: files\nprotocols: files\nservices: files\n",
		       err) < 0 ||
	    write_file(R "/etc/resolv.conf", "# kiln: no network\n", err) < 0)
		return kiln_error_prefix(err, "/etc");
	if (symlink("/proc/self/mounts", R "/etc/mtab") < 0)
		return kiln_error_set(err, errno, "symlink /etc/mtab");
	(void)sb;
	return set_attr(R "/etc", ro, true, err);
}

static int setup_dev(const struct kiln_sandbox *sb, struct kiln_error **err)
{
	static const char *const links[][2] = {
		{"/proc/self/fd", R "/dev/fd"},	      {"/proc/self/fd/0", R "/dev/stdin"},
		{"/proc/self/fd/1", R "/dev/stdout"}, {"/proc/self/fd/2", R "/dev/stderr"},
		{"pts/ptmx", R "/dev/ptmx"},
	};
	char path[PATH_MAX], opts[128];
	uint64_t shm;
	size_t i;

	if (mkdir(R "/dev", 0755) < 0)
		return kiln_error_set(err, errno, "mkdir /dev");
	if (mount_tmpfs(R "/dev", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64", err) <
	    0)
		return -1;
	for (i = 0; i < sizeof(dev_nodes) / sizeof(dev_nodes[0]); i++) {
		char src[64];

		snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
		snprintf(path, sizeof(path), R "/dev/%s", dev_nodes[i]);
		if (touch(path, err) < 0 ||
		    bind(src, path, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err) < 0)
			return kiln_error_prefix(err, "/dev");
	}
	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) < 0)
			return kiln_error_set(err, errno, "symlink %s", links[i][1]);
	if (mkdir(R "/dev/pts", 0755) < 0 || mkdir(R "/dev/shm", 01777) < 0)
		return kiln_error_set(err, errno, "mkdir /dev/pts, /dev/shm");
	/* A private devpts instance: the host's terminals are not in it. The tty
	 * group (5) is only mapped when we have a whole id range. */
	snprintf(opts, sizeof(opts), "newinstance,ptmxmode=0666,mode=0620%s",
		 sb->rootless ? "" : ",gid=5");
	if (mount("devpts", R "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, opts) < 0)
		return kiln_error_set(err, errno, "mount devpts on /dev/pts");
	shm = sb->limit[KILN_LIMIT_DISK] < (64ULL << 20) ? sb->limit[KILN_LIMIT_DISK]
							 : (64ULL << 20);
	snprintf(opts, sizeof(opts), "mode=1777,size=%llu", (unsigned long long)shm);
	if (mount_tmpfs(R "/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts, err) < 0)
		return -1;
	if (mount(NULL, R "/dev", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
		  NULL) < 0)
		return kiln_error_set(err, errno, "remount /dev read-only");
	return 0;
}

static int setup_proc(struct kiln_error **err)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	if (mkdir(R "/proc", 0555) < 0)
		return kiln_error_set(err, errno, "mkdir /proc");
	if (mount("proc", R "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return kiln_error_set(err, errno,
				      "mount proc (is /proc of the host fully visible?)");
	for (i = 0; i < sizeof(proc_mask_files) / sizeof(proc_mask_files[0]); i++) {
		snprintf(path, sizeof(path), R "/proc/%s", proc_mask_files[i]);
		if (lstat(path, &st) < 0)
			continue;
		if (mount(R "/dev/null", path, NULL, MS_BIND, NULL) < 0)
			return kiln_error_set(err, errno, "mask %s", path);
	}
	for (i = 0; i < sizeof(proc_mask_dirs) / sizeof(proc_mask_dirs[0]); i++) {
		snprintf(path, sizeof(path), R "/proc/%s", proc_mask_dirs[i]);
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (mount_tmpfs(path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				"size=4k,nr_inodes=1,mode=0555", err) < 0)
			return kiln_error_prefix(err, "mask /proc");
	}
	for (i = 0; i < sizeof(proc_ro_dirs) / sizeof(proc_ro_dirs[0]); i++) {
		snprintf(path, sizeof(path), R "/proc/%s", proc_ro_dirs[i]);
		if (bind(path, path,
			 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
				 MOUNT_ATTR_NOEXEC,
			 err) < 0)
			return kiln_error_prefix(err, "read-only /proc");
	}
	return 0;
}

static void disk_opts(const struct kiln_sandbox *sb, uint64_t *size, uint64_t *inodes)
{
	*size = sb->limit[KILN_LIMIT_DISK];
	*inodes = *size / 4096;
	if (*inodes < 16384)
		*inodes = 16384;
	if (*inodes > 1048576)
		*inodes = 1048576;
}

int kiln_disk_create(const struct kiln_sandbox *sb, uid_t uid, gid_t gid, struct kiln_error **err)
{
	cleanup_fd int fs = -1, mnt = -1;
	uint64_t size, inodes;
	char v[32];

	disk_opts(sb, &size, &inodes);
	fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return kiln_error_set(err, errno, "workspace: fsopen tmpfs");
	snprintf(v, sizeof(v), "%llu", (unsigned long long)size);
	if (fsconfig(fs, FSCONFIG_SET_STRING, "size", v, 0) < 0)
		return kiln_error_set(err, errno, "workspace: tmpfs size=%s", v);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)inodes);
	if (fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", v, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return kiln_error_set(err, errno, "workspace: create tmpfs");
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (mnt < 0)
		return kiln_error_set(err, errno, "workspace: fsmount");
	if (mkdirat(mnt, "ws", 0755) < 0 || mkdirat(mnt, "tmp", 01777) < 0 ||
	    mkdirat(mnt, "home", 0755) < 0)
		return kiln_error_set(err, errno, "workspace: mkdir");
	if (fchmodat(mnt, "tmp", 01777, 0) < 0 ||
	    fchownat(mnt, "ws", uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchownat(mnt, "home", uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_error_set(err, errno, "workspace: chown");
	return steal_fd(&mnt);
}

static int setup_disk(struct kiln_sandbox *sb, int chan, struct kiln_error **err)
{
	uint64_t size, inodes;
	cleanup_fd int fd = -1;
	char opts[128];

	if (mkdir(DISK, 0755) < 0)
		return kiln_error_set(err, errno, "mkdir %s", DISK);
	if (sb->disk_fd >= 0) {
		/* Root mode: the supervisor made it; we only attach it. */
		if (move_mount(sb->disk_fd, "", AT_FDCWD, DISK, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return kiln_error_set(err, errno, "workspace: attach");
		close(sb->disk_fd);
		sb->disk_fd = -1;
		return 0;
	}
	disk_opts(sb, &size, &inodes);
	snprintf(opts, sizeof(opts), "mode=0755,size=%llu,nr_inodes=%llu", (unsigned long long)size,
		 (unsigned long long)inodes);
	if (mount_tmpfs(DISK, MS_NOSUID | MS_NODEV, opts, err) < 0)
		return kiln_error_prefix(err, "workspace");
	if (mkdir(DISK "/ws", 0755) < 0 || mkdir(DISK "/tmp", 01777) < 0 ||
	    mkdir(DISK "/home", 0755) < 0)
		return kiln_error_set(err, errno, "workspace: mkdir");
	/* mkdir applies the umask; /tmp must be exactly 1777. */
	if (chmod(DISK "/tmp", 01777) < 0 || chown(DISK "/ws", sb->build_uid, sb->build_gid) < 0 ||
	    chown(DISK "/home", sb->build_uid, sb->build_gid) < 0)
		return kiln_error_set(err, errno, "workspace: chown");
	fd = open(DISK, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", DISK);
	if (kiln_msg_send(chan, KILN_MSG_DISK, 0, fd, NULL) < 0)
		return kiln_error_set(err, errno, "send workspace to supervisor");
	return 0;
}

static int make_mountpoint(const char *dst, bool dir, struct kiln_error **err)
{
	char parent[PATH_MAX];
	char *slash;

	if (dir)
		return mkdir_p(dst, 0755, err);
	snprintf(parent, sizeof(parent), "%s", dst);
	slash = strrchr(parent, '/');
	*slash = '\0';
	if (mkdir_p(parent, 0755, err) < 0)
		return -1;
	return touch(dst, err);
}

static int setup_binds(const struct kiln_sandbox *sb, struct kiln_error **err)
{
	char dst[PATH_MAX], src[64];
	struct stat st;
	size_t i;

	for (i = 0; i < sb->nbinds; i++) {
		const struct kiln_bind *b = &sb->binds[i];
		uint64_t attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

		if (b->readonly)
			attr |= MOUNT_ATTR_RDONLY;
		snprintf(dst, sizeof(dst), R "%s", b->dst);
		if (b->tree_fd >= 0) {
			/* Root mode: the supervisor cloned the tree with its
			 * attributes already set; attach it. */
			if (fstat(b->tree_fd, &st) < 0)
				return kiln_error_set(err, errno, "bind %s", b->src);
			if (make_mountpoint(dst, S_ISDIR(st.st_mode), err) < 0)
				return -1;
			if (move_mount(b->tree_fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
				return kiln_error_set(err, errno, "bind %s on %s", b->src, b->dst);
			continue;
		}
		if (fstat(b->path_fd, &st) < 0)
			return kiln_error_set(err, errno, "--bind %s", b->src);
		snprintf(src, sizeof(src), "/proc/self/fd/%d", b->path_fd);
		if (make_mountpoint(dst, S_ISDIR(st.st_mode), err) < 0 ||
		    bind(src, dst, attr, err) < 0)
			return kiln_error_prefix(err, "--bind %s", b->src);
	}
	return 0;
}

/* /run/secrets: a tmpfs of its own, written here by init (uid 0 of the
 * user namespace) and handed to the build's uid: directory 0500, files
 * 0400, then the mount is made read-only. init's copy of each value is
 * wiped right after it is written, before the build is forked. */
static int setup_secrets(struct kiln_sandbox *sb, struct kiln_error **err)
{
	char opts[128], path[PATH_MAX];
	size_t total = 0;

	for (size_t i = 0; i < sb->nsecrets; i++)
		total += sb->secrets[i].len + 4096;
	snprintf(opts, sizeof(opts), "mode=0700,size=%zu,nr_inodes=%zu", total + 4096,
		 sb->nsecrets + 8);
	/* init's umask may be 077 (kilnd's): the build must traverse /run. */
	if (chmod(R "/run", 0755) < 0 || mkdir(R "/run/secrets", 0755) < 0)
		return kiln_error_set(err, errno, "mkdir /run/secrets");
	if (mount_tmpfs(R "/run/secrets", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts, err) < 0)
		return -1;
	for (size_t i = 0; i < sb->nsecrets; i++) {
		int fd, r = 0;

		snprintf(path, sizeof(path), R "/run/secrets/%s", sb->secrets[i].name);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
		if (fd < 0)
			return kiln_error_set(err, errno, "create /run/secrets/%s",
					      sb->secrets[i].name);
		if (kiln_write_all(fd, sb->secrets[i].value, sb->secrets[i].len) < 0 ||
		    fchown(fd, sb->build_uid, sb->build_gid) < 0 || fchmod(fd, 0400) < 0)
			r = kiln_error_set(err, errno, "write /run/secrets/%s",
					   sb->secrets[i].name);
		close(fd);
		if (r < 0)
			return -1;
	}
	kiln_sandbox_wipe_secrets(sb);
	if (chown(R "/run/secrets", sb->build_uid, sb->build_gid) < 0 ||
	    chmod(R "/run/secrets", 0500) < 0)
		return kiln_error_set(err, errno, "/run/secrets: hand it to the build's uid");
	return set_attr(R "/run/secrets",
			MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
				MOUNT_ATTR_NOEXEC,
			false, err);
}

/* Everything below the staging tmpfs; base is "/" or a /proc/self/fd path
 * standing for --root. */
static int mounts_build(struct kiln_sandbox *sb, int chan, const char *base,
			struct kiln_error **err)
{
	const uint64_t ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
	size_t i;

	if (mount_tmpfs(STAGE, MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=64", err) < 0)
		return -1;
	if (setup_disk(sb, chan, err) < 0)
		return -1;

	if (mkdir(R, 0755) < 0)
		return kiln_error_set(err, errno, "mkdir %s", R);
	if (mount_tmpfs(R, MS_NOSUID | MS_NODEV, "mode=0755,size=8m,nr_inodes=4096", err) < 0)
		return -1;
	for (i = 0; i < sizeof(sys_dirs) / sizeof(sys_dirs[0]); i++)
		if (mirror(base, sys_dirs[i], ro, false, err) < 0)
			return kiln_error_prefix(err, "system directories");
	if (setup_etc(sb, base, err) < 0 || setup_dev(sb, err) < 0 || setup_proc(err) < 0)
		return -1;

	if (mkdir(R "/workspace", 0755) < 0 || mkdir(R "/tmp", 01777) < 0 ||
	    mkdir(R "/home", 0755) < 0 || mkdir(R "/home/" KILN_BUILDER_NAME, 0755) < 0 ||
	    mkdir(R "/run", 0755) < 0 || mkdir(R "/var", 0755) < 0 ||
	    symlink("/tmp", R "/var/tmp") < 0)
		return kiln_error_set(err, errno, "create mount points");
	if (bind(DISK "/ws", R "/workspace", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err) < 0 ||
	    bind(DISK "/tmp", R "/tmp", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err) < 0 ||
	    bind(DISK "/home", R "/home/" KILN_BUILDER_NAME, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
		 err) < 0)
		return kiln_error_prefix(err, "workspace");
	if (setup_binds(sb, err) < 0)
		return -1;
	if (sb->nsecrets > 0 && setup_secrets(sb, err) < 0)
		return kiln_error_prefix(err, "secrets");

	/* The root itself becomes read-only: nothing can be created at /. */
	if (mount(NULL, R, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return kiln_error_set(err, errno, "remount / read-only");
	return 0;
}

int kiln_mounts_setup(struct kiln_sandbox *sb, int chan, struct kiln_error **err)
{
	const char *base = "/";
	char base_buf[64];
	int base_fd = -1, r = 0;
	size_t i;

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return kiln_error_set(err, errno, "make / private");
	/* The staging tmpfs covers /tmp: take handles on --root and on the
	 * sources of binds made by path before it does, and use them through
	 * /proc/self/fd, so that a source below /tmp stays reachable. */
	if (sb->root) {
		base_fd = open(sb->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (base_fd < 0)
			return kiln_error_set(err, errno,
					      "--root %s: not reachable by the sandbox's uid",
					      sb->root);
		snprintf(base_buf, sizeof(base_buf), "/proc/self/fd/%d", base_fd);
		base = base_buf;
	}
	for (i = 0; i < sb->nbinds && r == 0; i++) {
		if (sb->binds[i].tree_fd >= 0)
			continue;
		sb->binds[i].path_fd = open(sb->binds[i].src, O_PATH | O_CLOEXEC);
		if (sb->binds[i].path_fd < 0)
			r = kiln_error_set(err, errno,
					   "--bind %s: not reachable by the sandbox's uid",
					   sb->binds[i].src);
	}
	if (r == 0)
		r = mounts_build(sb, chan, base, err);
	if (base_fd >= 0)
		close(base_fd);
	for (i = 0; i < sb->nbinds; i++)
		if (sb->binds[i].path_fd >= 0) {
			close(sb->binds[i].path_fd);
			sb->binds[i].path_fd = -1;
		}
	if (r < 0)
		return -1;

	if (chdir(R) < 0)
		return kiln_error_set(err, errno, "chdir %s", R);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return kiln_error_set(err, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return kiln_error_set(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return kiln_error_set(err, errno, "chdir /");
	return 0;
}
