/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor: everything of a run that happens outside the sandbox.
 * See internal.h for the three processes and how they talk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "sandbox/cgroup.h"
#include "sandbox/copy.h"
#include "sandbox/internal.h"
#include "sandbox/seccomp.h"
#include "sandbox/unpack.h"

/* 1980-01-01: deterministic, and the earliest date zip can store. */
#define KILN_DEFAULT_SOURCE_DATE_EPOCH 315532800ULL

struct kiln_sandbox *kiln_sandbox_new(void)
{
	struct kiln_sandbox *sb = calloc(1, sizeof(*sb));

	if (sb == NULL)
		return NULL;
	sb->limit[KILN_LIMIT_MEMORY] = KILN_DEFAULT_MEMORY;
	sb->limit[KILN_LIMIT_PIDS] = KILN_DEFAULT_PIDS;
	sb->limit[KILN_LIMIT_CPUS] = KILN_DEFAULT_CPUS;
	sb->limit[KILN_LIMIT_DISK] = KILN_DEFAULT_DISK;
	sb->limit[KILN_LIMIT_TIMEOUT] = KILN_DEFAULT_TIMEOUT;
	sb->limit[KILN_LIMIT_OUTPUT] = KILN_DEFAULT_OUTPUT;
	sb->source_date_epoch = KILN_DEFAULT_SOURCE_DATE_EPOCH;
	sb->disk_fd = -1;
	sb->archive_fd = -1;
	sb->netns_fd = -1;
	if (pipe2(sb->cancel_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(sb);
		return NULL;
	}
	return sb;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void kiln_sandbox_free(struct kiln_sandbox *sb)
{
	size_t n = 0;

	if (sb == NULL)
		return;
	if (sb->argv)
		while (sb->argv[n])
			n++;
	strv_free(sb->argv, n);
	strv_free(sb->env, sb->nenv);
	for (size_t i = 0; i < sb->nbinds; i++) {
		free(sb->binds[i].src);
		free(sb->binds[i].dst);
	}
	free(sb->binds);
	strv_free(sb->exports, sb->nexports);
	kiln_sandbox_wipe_secrets(sb);
	free(sb->secrets);
	if (sb->archive_fd >= 0)
		close(sb->archive_fd);
	if (sb->netns_fd >= 0)
		close(sb->netns_fd);
	free(sb->source);
	free(sb->outdir);
	free(sb->root);
	close(sb->cancel_pipe[0]);
	close(sb->cancel_pipe[1]);
	free(sb);
}

int kiln_sandbox_set_command(struct kiln_sandbox *sb, char *const argv[], struct kiln_error **err)
{
	size_t n = 0, i;
	char **v;

	while (argv[n])
		n++;
	if (n == 0)
		return kiln_error_set(err, EINVAL, "no command given");
	v = calloc(n + 1, sizeof(char *));
	if (v == NULL)
		return kiln_error_set(err, ENOMEM, "command");
	for (i = 0; i < n; i++)
		if ((v[i] = strdup(argv[i])) == NULL) {
			strv_free(v, i);
			return kiln_error_set(err, ENOMEM, "command");
		}
	if (sb->argv) {
		size_t old = 0;
		while (sb->argv[old])
			old++;
		strv_free(sb->argv, old);
	}
	sb->argv = v;
	return 0;
}

/* Resolve a host directory now, so that what runs is what was checked. */
static int set_host_dir(char **slot, const char *dir, const char *what, bool must_exist,
			struct kiln_error **err)
{
	char *abs = realpath(dir, NULL);
	struct stat st;

	if (abs == NULL && (must_exist || errno != ENOENT))
		return kiln_error_set(err, errno, "%s %s", what, dir);
	if (abs == NULL) {
		abs = strdup(dir);
		if (abs == NULL)
			return kiln_error_set(err, ENOMEM, "%s", what);
	} else if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode)) {
		free(abs);
		return kiln_error_set(err, ENOTDIR, "%s %s", what, dir);
	}
	free(*slot);
	*slot = abs;
	return 0;
}

int kiln_sandbox_set_source_archive(struct kiln_sandbox *sb, int fd, uint64_t max_files,
				    uint64_t max_path, uint64_t max_bytes, struct kiln_error **err)
{
	int d;

	if (sb->source != NULL)
		return kiln_error_set(err, EINVAL,
				      "a source directory and a source archive exclude each other");
	{
		char msg[256];

		if (kiln_unpack_load(msg, sizeof(msg)) < 0)
			return kiln_error_set(err, ELIBACC, "source archive: %s", msg);
	}
	d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (d < 0)
		return kiln_error_set(err, errno, "source archive");
	if (sb->archive_fd >= 0)
		close(sb->archive_fd);
	sb->archive_fd = d;
	sb->archive_max_files = max_files;
	sb->archive_max_path = max_path;
	sb->archive_max_bytes = max_bytes;
	return 0;
}

int kiln_sandbox_set_netns(struct kiln_sandbox *sb, int fd, struct kiln_error **err)
{
	int d;

	d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (d < 0)
		return kiln_error_set(err, errno, "network namespace");
	if (sb->netns_fd >= 0)
		close(sb->netns_fd);
	sb->netns_fd = d;
	return 0;
}

int kiln_sandbox_add_export(struct kiln_sandbox *sb, const char *relpath, struct kiln_error **err)
{
	char buf[PATH_MAX];
	size_t n = strlen(relpath);
	char **nv;

	/* "out/" and "out" are the same; the path must stay below /workspace. */
	while (n > 1 && relpath[n - 1] == '/')
		n--;
	if (n == 0 || n + 2 > sizeof(buf))
		return kiln_error_set(err, EINVAL, "export path '%s' is empty or too long",
				      relpath);
	snprintf(buf, sizeof(buf), "/%.*s", (int)n, relpath);
	if (!kiln_sandbox_path_valid(buf))
		return kiln_error_set(
			err, EINVAL,
			"export path '%s' must be relative to /workspace, without . or ..",
			relpath);
	nv = realloc(sb->exports, (sb->nexports + 1) * sizeof(char *));
	if (nv == NULL)
		return kiln_error_set(err, ENOMEM, "export");
	sb->exports = nv;
	if ((sb->exports[sb->nexports] = strdup(buf + 1)) == NULL)
		return kiln_error_set(err, ENOMEM, "export");
	sb->nexports++;
	return 0;
}

int kiln_sandbox_set_source(struct kiln_sandbox *sb, const char *dir, struct kiln_error **err)
{
	if (sb->archive_fd >= 0)
		return kiln_error_set(err, EINVAL,
				      "a source directory and a source archive exclude each other");
	return set_host_dir(&sb->source, dir, "--source", true, err);
}

int kiln_sandbox_set_output_dir(struct kiln_sandbox *sb, const char *dir, struct kiln_error **err)
{
	struct stat st;
	char *copy;

	/* Kept as given, never resolved: the export opens it O_NOFOLLOW, so a
	 * symlink planted at this path (say, by an earlier export) is refused
	 * rather than followed. */
	if (dir[0] == '\0')
		return kiln_error_set(err, EINVAL, "--out: empty path");
	if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
		return kiln_error_set(err, ELOOP,
				      "--out %s is a symbolic link; give the real directory", dir);
	copy = strdup(dir);
	if (copy == NULL)
		return kiln_error_set(err, ENOMEM, "--out");
	free(sb->outdir);
	sb->outdir = copy;
	return 0;
}

int kiln_sandbox_set_root(struct kiln_sandbox *sb, const char *dir, struct kiln_error **err)
{
	if (set_host_dir(&sb->root, dir, "--root", true, err) < 0)
		return -1;
	if (strcmp(sb->root, "/") == 0) {
		free(sb->root);
		sb->root = NULL;
	}
	return 0;
}

int kiln_sandbox_add_bind(struct kiln_sandbox *sb, const char *src, const char *dst, bool readonly,
			  struct kiln_error **err)
{
	static const char *const reserved[] = {"/proc",	     "/dev",  "/etc", "/usr",
					       "/bin",	     "/sbin", "/lib", "/lib64",
					       "/workspace", "/tmp",  "/home"};
	struct kiln_bind *nb;
	char *abs;
	size_t i;

	if (!kiln_sandbox_path_valid(dst))
		return kiln_error_set(
			err, EINVAL,
			"bind destination '%s' must be an absolute path without . or ..", dst);
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		size_t n = strlen(reserved[i]);
		if (strncmp(dst, reserved[i], n) == 0 && (dst[n] == '\0' || dst[n] == '/'))
			return kiln_error_set(
				err, EINVAL,
				"bind destination '%s' is inside %s, which kiln manages", dst,
				reserved[i]);
	}
	if (sb->nbinds >= KILN_MAX_BINDS)
		return kiln_error_set(err, E2BIG, "at most %d binds", KILN_MAX_BINDS);
	abs = realpath(src, NULL);
	if (abs == NULL)
		return kiln_error_set(err, errno, "bind source %s", src);
	nb = realloc(sb->binds, (sb->nbinds + 1) * sizeof(*nb));
	if (nb == NULL) {
		free(abs);
		return kiln_error_set(err, ENOMEM, "bind");
	}
	sb->binds = nb;
	nb[sb->nbinds].src = abs;
	nb[sb->nbinds].dst = strdup(dst);
	nb[sb->nbinds].readonly = readonly;
	nb[sb->nbinds].tree_fd = -1;
	nb[sb->nbinds].path_fd = -1;
	if (nb[sb->nbinds].dst == NULL) {
		free(abs);
		return kiln_error_set(err, ENOMEM, "bind");
	}
	sb->nbinds++;
	return 0;
}

int kiln_sandbox_add_env(struct kiln_sandbox *sb, const char *kv, struct kiln_error **err)
{
	char **nv;

	if (!kiln_env_valid(kv))
		return kiln_error_set(err, EINVAL, "--env '%s': expected NAME=VALUE", kv);
	if (strncmp(kv, "SOURCE_DATE_EPOCH=", 18) == 0) {
		uint64_t v;
		if (kiln_parse_uint(kv + 18, 0, 253402300799ULL, &v, err) < 0)
			return kiln_error_prefix(err, "SOURCE_DATE_EPOCH");
	}
	nv = realloc(sb->env, (sb->nenv + 1) * sizeof(char *));
	if (nv == NULL)
		return kiln_error_set(err, ENOMEM, "env");
	sb->env = nv;
	if ((sb->env[sb->nenv] = strdup(kv)) == NULL)
		return kiln_error_set(err, ENOMEM, "env");
	sb->nenv++;
	return 0;
}

static bool secret_name_ok(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len == 0 || len > 64 || (n[0] >= '0' && n[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= 'a' && n[i] <= 'z') ||
		      (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return true;
}

int kiln_sandbox_add_secret(struct kiln_sandbox *sb, const char *name, const void *value,
			    size_t len, struct kiln_error **err)
{
	struct kiln_secret_file *ns;

	if (!secret_name_ok(name))
		return kiln_error_set(err, EINVAL, "secret: '%s' is not a valid name",
				      name ? name : "");
	if (len > KILN_MAX_SECRET_BYTES)
		return kiln_error_set(err, EINVAL, "secret %s: larger than %d bytes", name,
				      KILN_MAX_SECRET_BYTES);
	if (sb->nsecrets >= KILN_MAX_SECRETS)
		return kiln_error_set(err, EINVAL, "more than %d secrets", KILN_MAX_SECRETS);
	for (size_t i = 0; i < sb->nsecrets; i++)
		if (strcmp(sb->secrets[i].name, name) == 0)
			return kiln_error_set(err, EEXIST, "secret %s given twice", name);
	ns = realloc(sb->secrets, (sb->nsecrets + 1) * sizeof(*ns));
	if (ns == NULL)
		return kiln_error_set(err, ENOMEM, "secret");
	sb->secrets = ns;
	memset(&ns[sb->nsecrets], 0, sizeof(ns[0]));
	ns[sb->nsecrets].value = malloc(len ? len : 1);
	if (ns[sb->nsecrets].value == NULL)
		return kiln_error_set(err, ENOMEM, "secret");
	memcpy(ns[sb->nsecrets].value, value, len);
	ns[sb->nsecrets].len = len;
	snprintf(ns[sb->nsecrets].name, sizeof(ns[0].name), "%s", name);
	sb->nsecrets++;
	return 0;
}

void kiln_sandbox_wipe_secrets(struct kiln_sandbox *sb)
{
	for (size_t i = 0; i < sb->nsecrets; i++) {
		if (sb->secrets[i].value != NULL) {
			explicit_bzero(sb->secrets[i].value, sb->secrets[i].len);
			free(sb->secrets[i].value);
		}
		sb->secrets[i].value = NULL;
		sb->secrets[i].len = 0;
	}
}

int kiln_sandbox_set_limit(struct kiln_sandbox *sb, enum kiln_limit which, uint64_t value,
			   bool explicit_, struct kiln_error **err)
{
	if ((unsigned)which >= KILN_LIMIT__COUNT)
		return kiln_error_set(err, EINVAL, "unknown limit %d", (int)which);
	if (value == 0 && which != KILN_LIMIT_CPUS)
		return kiln_error_set(err, EINVAL, "limits must be greater than zero");
	if (which == KILN_LIMIT_DISK && value < (1ULL << 20))
		return kiln_error_set(err, EINVAL, "--disk must be at least 1M");
	if (which == KILN_LIMIT_MEMORY && value < (8ULL << 20))
		return kiln_error_set(err, EINVAL, "--memory must be at least 8M");
	sb->limit[which] = value;
	sb->limit_explicit[which] = explicit_;
	return 0;
}

void kiln_sandbox_set_fake_root(struct kiln_sandbox *sb, bool on)
{
	sb->fake_root = on;
}

void kiln_sandbox_set_output_fn(struct kiln_sandbox *sb, kiln_output_fn fn, void *ctx)
{
	sb->out_fn = fn;
	sb->out_ctx = ctx;
}

int kiln_sandbox_cancel_fd(struct kiln_sandbox *sb)
{
	return sb->cancel_pipe[1];
}

/* ---- the run ---------------------------------------------------------- */

struct run {
	struct kiln_sandbox *sb;
	struct kiln_result *res;
	struct kiln_cgroup *cg;
	pid_t init;
	int pidfd, chan, bchan, out_r, err_r, notify, timer, disk;
	int slot_fd;
	pid_t relay;  /* the process that created init and reaps it */
	int relay_fd; /* its reports */
	bool init_reaped, got_exit, killed, setup_failed;
	int build_status;
	enum kiln_reason kill_reason;
	char setup_msg[512];
	uint64_t start_ns;
};

static void default_output(void *ctx, int stream, const char *buf, size_t len)
{
	bool *broken = ctx;

	if (!broken[stream - 1] && kiln_write_all(stream, buf, len) < 0)
		broken[stream - 1] = true;
}

static void kill_init(struct run *run, enum kiln_reason why)
{
	if (!run->killed) {
		run->killed = true;
		run->kill_reason = why;
	}
	if (run->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL, 0);
}

static void setup_failed(struct run *run, const char *msg)
{
	if (!run->setup_failed) {
		run->setup_failed = true;
		snprintf(run->setup_msg, sizeof(run->setup_msg), "%s", msg);
	}
	kill_init(run, KILN_REASON_EXITED);
}

static int open_outdir(const char *dir, struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	DIR *d;
	struct dirent *de;
	int dupfd;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return kiln_error_set(err, errno, "--out: mkdir %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_set(err, errno, "--out: open %s", dir);
	dupfd = dup(fd);
	if (dupfd < 0 || (d = fdopendir(dupfd)) == NULL) {
		if (dupfd >= 0)
			close(dupfd);
		return kiln_error_set(err, errno, "--out: read %s", dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			closedir(d);
			return kiln_error_set(err, ENOTEMPTY,
					      "--out %s must be empty or not exist yet (kiln never "
					      "writes over existing files)",
					      dir);
		}
	}
	closedir(d);
	return steal_fd(&fd);
}

static int prepare_identity(struct run *run, struct kiln_error **err)
{
	struct kiln_sandbox *sb = run->sb;
	unsigned slot;

	sb->rootless = geteuid() != 0;
	if (sb->rootless && sb->netns_fd >= 0)
		return kiln_error_set(err, EPERM,
				      "a prepared network namespace needs root (kilnd's launcher)");
	sb->build_uid = sb->fake_root ? 0 : KILN_BUILDER_UID;
	sb->build_gid = sb->fake_root ? 0 : KILN_BUILDER_GID;
	if (sb->rootless) {
		sb->init_uid = sb->build_uid;
		sb->init_gid = sb->build_gid;
		kiln_result_add_not_applied(
			run->res, "uid-range (rootless: the build runs as the caller's uid)");
		return 0;
	}
	if (kiln_slot_acquire(&slot, &run->slot_fd, err) < 0)
		return -1;
	sb->outer_uid = KILN_UID_BASE + slot * KILN_RANGE;
	sb->outer_gid = KILN_UID_BASE + slot * KILN_RANGE;
	sb->init_uid = 0;
	sb->init_gid = 0;
	kiln_result_add_protection(run->res, "uid-range");
	return (int)slot;
}

static int prepare_cgroup(struct run *run, int slot, struct kiln_error **err)
{
	struct kiln_sandbox *sb = run->sb;
	struct kiln_cgroup_limits lim = {
		.memory = sb->limit[KILN_LIMIT_MEMORY],
		.pids = sb->limit[KILN_LIMIT_PIDS],
		.cpu_milli = sb->limit[KILN_LIMIT_CPUS],
	};
	char name[64];

	if (sb->rootless)
		snprintf(name, sizeof(name), "kiln-u%u-%d", (unsigned)getuid(), (int)getpid());
	else
		snprintf(name, sizeof(name), "kiln-slot-%d", slot);
	if (kiln_cgroup_create(NULL, name, &lim, &run->cg, err) == 0) {
		kiln_result_add_protection(run->res, "cgroup-memory");
		kiln_result_add_protection(run->res, "cgroup-pids");
		if (lim.cpu_milli)
			kiln_result_add_protection(run->res, "cgroup-cpu");
		run->res->cgroup_version = strdup(kiln_cgroup_version(run->cg));
		return 0;
	}
	if (!sb->rootless || !(*err) ||
	    ((*err)->code != EACCES && (*err)->code != EPERM && (*err)->code != EROFS))
		return kiln_error_prefix(err, "cgroup limits");
	/* Rootless without a delegated cgroup: refuse limits that were asked
	 * for, say which defaults could not be applied. */
	if (sb->limit_explicit[KILN_LIMIT_MEMORY] || sb->limit_explicit[KILN_LIMIT_PIDS] ||
	    sb->limit_explicit[KILN_LIMIT_CPUS])
		return kiln_error_prefix(
			err,
			"cannot enforce --memory/--pids/--cpus as uid %u (no writable "
			"cgroup; run as root or from a delegated cgroup v2 subtree)",
			(unsigned)getuid());
	kiln_error_free(err);
	kiln_result_add_not_applied(run->res, "cgroup-memory (rootless: no writable cgroup)");
	kiln_result_add_not_applied(run->res, "cgroup-pids (rootless: RLIMIT_NPROC only)");
	if (lim.cpu_milli)
		kiln_result_add_not_applied(run->res, "cgroup-cpu");
	return 0;
}

static int copy_source(struct run *run, struct kiln_error **err)
{
	struct kiln_sandbox *sb = run->sb;
	struct kiln_copy_opts o = {
		.uid = sb->rootless ? (uid_t)-1 : sb->outer_uid + sb->build_uid,
		.gid = sb->rootless ? (gid_t)-1 : sb->outer_gid + sb->build_gid,
		.max_bytes = sb->limit[KILN_LIMIT_DISK],
		.skip_special = true,
	};
	struct kiln_copy_stats st = {0};
	cleanup_fd int src = -1, dst = -1;
	int r;

	if (sb->source == NULL)
		return 0;
	src = open(sb->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0)
		return kiln_error_set(err, errno, "--source %s", sb->source);
	dst = openat(run->disk, "ws", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dst < 0)
		return kiln_error_set(err, errno, "open workspace");
	r = kiln_copy_tree(src, dst, &o, &st, err);
	kiln_copy_stats_free(&st);
	if (r < 0)
		return kiln_error_prefix(
			err, "copy --source %s into /workspace (is --disk large enough?)",
			sb->source);
	return 0;
}

/* Root mode: clone each bind source as a detached mount tree now, with its
 * final attributes, so init only has to attach it. */
static int open_bind_trees(struct kiln_sandbox *sb, struct kiln_error **err)
{
	for (size_t i = 0; i < sb->nbinds; i++) {
		struct kiln_bind *b = &sb->binds[i];
		struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};

		if (b->readonly)
			attr.attr_set |= MOUNT_ATTR_RDONLY;
		b->tree_fd = open_tree(AT_FDCWD, b->src,
				       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (b->tree_fd < 0)
			return kiln_error_set(err, errno, "bind %s: open_tree", b->src);
		if (mount_setattr(b->tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
				  sizeof(attr)) < 0)
			return kiln_error_set(err, errno, "bind %s: set mount attributes", b->src);
	}
	return 0;
}

static void close_bind_trees(struct kiln_sandbox *sb)
{
	for (size_t i = 0; i < sb->nbinds; i++)
		if (sb->binds[i].tree_fd >= 0) {
			close(sb->binds[i].tree_fd);
			sb->binds[i].tree_fd = -1;
		}
}

static void handle_chan(struct run *run)
{
	struct kiln_msg m;
	int fd = -1, r;

	r = kiln_msg_recv(run->chan, &m, &fd);
	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		close(run->chan);
		run->chan = -1;
		return;
	}
	switch (m.type) {
	case KILN_MSG_ERROR: setup_failed(run, m.text); break;
	case KILN_MSG_STARTED: break;
	case KILN_MSG_EXIT:
		run->got_exit = true;
		run->build_status = m.code;
		break;
	default: setup_failed(run, "unexpected message from init"); break;
	}
	if (fd >= 0)
		close(fd);
}

static void handle_bchan(struct run *run)
{
	struct kiln_msg m;
	int fd = -1, r;

	r = kiln_msg_recv(run->bchan, &m, &fd);
	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		/* EOF: the build exec'd (its end was close-on-exec) or died. */
		close(run->bchan);
		run->bchan = -1;
		return;
	}
	if (m.type == KILN_MSG_NOTIFY_FD && fd >= 0 && run->notify < 0) {
		run->notify = fd;
		return;
	}
	if (fd >= 0)
		close(fd);
	if (m.type == KILN_MSG_ARCHIVE && run->res->archive_error == NULL)
		run->res->archive_error = strdup(m.text);
	else if (m.type == KILN_MSG_ERROR)
		setup_failed(run, m.text);
	else
		setup_failed(run, "unexpected message from the build process");
}

static void pump(struct run *run, int *fdp, int stream, bool *broken)
{
	char buf[65536];
	uint64_t limit = run->sb->limit[KILN_LIMIT_OUTPUT];
	ssize_t n = read(*fdp, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(*fdp);
		*fdp = -1;
		return;
	}
	if (run->res->output_bytes + (uint64_t)n > limit) {
		size_t allowed = (size_t)(limit - run->res->output_bytes);
		if (allowed > 0) {
			if (run->sb->out_fn)
				run->sb->out_fn(run->sb->out_ctx, stream, buf, allowed);
			else
				default_output(broken, stream, buf, allowed);
		}
		run->res->output_bytes = limit;
		kill_init(run, KILN_REASON_OUTPUT_LIMIT);
		close(*fdp);
		*fdp = -1;
		return;
	}
	run->res->output_bytes += (uint64_t)n;
	if (run->sb->out_fn)
		run->sb->out_fn(run->sb->out_ctx, stream, buf, (size_t)n);
	else
		default_output(broken, stream, buf, (size_t)n);
}

static void reap_init(struct run *run);

static int event_loop(struct run *run, struct kiln_error **err)
{
	bool broken[2] = {false, false};
	struct kiln_error *e2 = NULL;

	for (;;) {
		struct pollfd p[8];
		int idx[8];
		int n = 0, i, r;

		if (run->init_reaped && run->out_r < 0 && run->err_r < 0)
			break;
#define ADD(f_, id)                                                                                \
	do {                                                                                       \
		if ((f_) >= 0) {                                                                   \
			p[n].fd = (f_);                                                            \
			p[n].events = POLLIN;                                                      \
			p[n].revents = 0;                                                          \
			idx[n++] = (id);                                                           \
		}                                                                                  \
	} while (0)
		ADD(run->out_r, 0);
		ADD(run->err_r, 1);
		ADD(run->chan, 2);
		ADD(run->bchan, 3);
		ADD(run->notify, 4);
		if (!run->init_reaped)
			ADD(run->pidfd, 5);
		ADD(run->timer, 6);
		ADD(run->sb->cancel_pipe[0], 7);
#undef ADD
		r = poll(p, (nfds_t)n, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return kiln_error_set(err, errno, "poll");
		}
		for (i = 0; i < n; i++) {
			if (p[i].revents == 0)
				continue;
			switch (idx[i]) {
			case 0: pump(run, &run->out_r, 1, broken); break;
			case 1: pump(run, &run->err_r, 2, broken); break;
			case 2: handle_chan(run); break;
			case 3: handle_bchan(run); break;
			case 4:
				if (p[i].revents & POLLIN) {
					if (kiln_seccomp_handle(run->notify, run->res, &e2) < 0)
						kiln_error_free(&e2);
				} else {
					close(run->notify);
					run->notify = -1;
				}
				break;
			case 5:
				/* init exited (the pidfd is readable): the relay reaps it
				 * and reports its rusage. */
				run->init_reaped = true;
				run->res->wall_ns = kiln_now_ns() - run->start_ns;
				reap_init(run);
				/* Messages init and the build sent before dying are
				 * still queued: read them all (an archive refusal
				 * among them) before the result is computed. */
				while (run->chan >= 0)
					handle_chan(run);
				while (run->bchan >= 0)
					handle_bchan(run);
				break;
			case 6: {
				uint64_t ticks;
				if (read(run->timer, &ticks, sizeof(ticks)) ==
				    (ssize_t)sizeof(ticks))
					kill_init(run, KILN_REASON_TIMEOUT);
				close(run->timer);
				run->timer = -1;
				break;
			}
			case 7: {
				char c;
				while (read(run->sb->cancel_pipe[0], &c, 1) == 1)
					;
				kill_init(run, KILN_REASON_CANCELLED);
				break;
			}
			default: break;
			}
		}
	}
	return 0;
}

static void finish_result(struct run *run)
{
	struct kiln_result *r = run->res;
	struct kiln_cgroup_stats cs = {0};
	struct kiln_error *e = NULL;
	struct statfs sf;
	bool disk_full = false;
	int st = run->build_status;

	if (run->cg && kiln_cgroup_stats(run->cg, &cs, &e) < 0)
		kiln_error_free(&e);
	r->peak_memory = cs.peak_memory;
	if (cs.cpu_user_ns + cs.cpu_sys_ns > r->user_ns + r->sys_ns) {
		r->user_ns = cs.cpu_user_ns;
		r->sys_ns = cs.cpu_sys_ns;
	}
	if (run->disk >= 0 && fstatfs(run->disk, &sf) == 0)
		disk_full = sf.f_bavail == 0 || sf.f_ffree == 0;

	if (run->got_exit) {
		if (WIFEXITED(st)) {
			r->status = WEXITSTATUS(st);
			r->exit_code = r->status;
			r->reason = KILN_REASON_EXITED;
		} else {
			r->signal = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
			r->exit_code = KILN_EXIT_SIGNAL_BASE + r->signal;
			r->reason = KILN_REASON_SIGNALED;
		}
	} else {
		/* We killed init (limits) or it died: the build was killed. */
		r->signal = SIGKILL;
		r->exit_code = KILN_EXIT_SIGNAL_BASE + SIGKILL;
		r->reason = KILN_REASON_SIGNALED;
	}
	/* The limit that stopped the run is the reason, most specific first. */
	if (run->killed && run->kill_reason == KILN_REASON_TIMEOUT) {
		r->reason = KILN_REASON_TIMEOUT;
		r->exit_code = KILN_EXIT_TIMEOUT;
	} else if (run->killed && run->kill_reason == KILN_REASON_OUTPUT_LIMIT) {
		r->reason = KILN_REASON_OUTPUT_LIMIT;
	} else if (run->killed && run->kill_reason == KILN_REASON_CANCELLED) {
		r->reason = KILN_REASON_CANCELLED;
		r->exit_code = KILN_EXIT_SIGNAL_BASE + SIGINT;
	} else if (r->archive_error != NULL) {
		r->reason = KILN_REASON_ARCHIVE;
		r->exit_code = KILN_EXIT_DATAERR;
	} else if (cs.oom_kills > 0) {
		r->reason = KILN_REASON_MEMORY;
	} else if (cs.pids_max_hits > 0) {
		r->reason = KILN_REASON_PIDS;
	} else if (disk_full && r->exit_code != 0) {
		r->reason = KILN_REASON_DISK;
	}
}

/* Record "path: why" in the export's skip list; why NULL: path is already
 * a complete line (the copy module's own "path: reason"). */
static void add_skipped(struct kiln_result *r, const char *path, const char *why)
{
	char line[PATH_MAX + 64];
	size_t n = 0;

	if (r->export_skipped)
		while (r->export_skipped[n])
			n++;
	if (n >= 1000)
		return;
	if (why != NULL)
		snprintf(line, sizeof(line), "%s: %s", path, why);
	else
		snprintf(line, sizeof(line), "%s", path);
	{
		char **nv = realloc(r->export_skipped, (n + 2) * sizeof(char *));
		if (nv == NULL)
			return;
		nv[n] = strdup(line);
		nv[n + 1] = NULL;
		r->export_skipped = nv;
	}
}

/* One regular file, never following a link, special bits dropped. */
static int export_file(int sdir, int ddir, const char *name, uint64_t budget, uint64_t *bytes,
		       struct kiln_error **err)
{
	cleanup_fd int in = -1, out = -1;
	struct stat st;
	char buf[65536];
	uint64_t left;
	ssize_t n;

	in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
		return kiln_error_set(err, in < 0 ? errno : EINVAL, "%s: not a regular file", name);
	if ((uint64_t)st.st_size > budget)
		return kiln_error_set(err, EFBIG, "%s: larger than what is left of the disk limit",
				      name);
	out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return kiln_error_set(err, errno, "%s: create", name);
	for (left = (uint64_t)st.st_size; left > 0; left -= (uint64_t)n) {
		n = read(in, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (n <= 0)
			break;
		if (kiln_write_all(out, buf, (size_t)n) < 0)
			return kiln_error_set(err, errno, "%s: write", name);
	}
	if (fchmod(out, st.st_mode & 0777) < 0)
		return kiln_error_set(err, errno, "%s: chmod", name);
	*bytes += (uint64_t)st.st_size - left;
	return 0;
}

/* Export /workspace/<rel> to <out>/<rel>. Every component is opened
 * O_NOFOLLOW on both sides: a symlink on the way is skipped, not followed. */
static int export_path(struct run *run, int ws, int out, const char *rel, struct kiln_copy_opts *o,
		       struct kiln_error **err)
{
	struct kiln_result *r = run->res;
	char buf[PATH_MAX], *save = NULL, *comp, *next;
	int sdir = dup(ws), ddir = dup(out), rc = -1;
	struct stat st;

	snprintf(buf, sizeof(buf), "%s", rel);
	comp = strtok_r(buf, "/", &save);
	while (comp != NULL && sdir >= 0 && ddir >= 0) {
		next = strtok_r(NULL, "/", &save);
		if (fstatat(sdir, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = 0; /* a missing artifact path is not an error */
			goto done;
		}
		if (next != NULL || S_ISDIR(st.st_mode)) {
			int ns, nd;

			if (!S_ISDIR(st.st_mode)) {
				add_skipped(r, rel, "a component is not a directory");
				rc = 0;
				goto done;
			}
			if (mkdirat(ddir, comp, 0755) < 0 && errno != EEXIST) {
				kiln_error_set(err, errno, "export %s: mkdir", rel);
				goto done;
			}
			ns = openat(sdir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			nd = openat(ddir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			close(sdir);
			close(ddir);
			sdir = ns;
			ddir = nd;
			if (sdir < 0 || ddir < 0) {
				kiln_error_set(err, errno, "export %s: open", rel);
				goto done;
			}
			if (next == NULL) {
				struct kiln_copy_stats cs = {0};
				int cr = kiln_copy_tree(sdir, ddir, o, &cs, err);

				r->export_files += cs.files + cs.symlinks;
				r->export_bytes += cs.bytes;
				o->max_bytes =
					o->max_bytes > cs.bytes ? o->max_bytes - cs.bytes : 1;
				for (size_t i = 0; cs.skipped && cs.skipped[i]; i++)
					add_skipped(r, cs.skipped[i], NULL);
				kiln_copy_stats_free(&cs);
				if (cr < 0) {
					kiln_error_prefix(err, "export %s", rel);
					goto done;
				}
			}
		} else if (S_ISREG(st.st_mode)) {
			uint64_t b = 0;

			if (export_file(sdir, ddir, comp, o->max_bytes, &b, err) < 0) {
				kiln_error_prefix(err, "export %s", rel);
				goto done;
			}
			r->export_files++;
			r->export_bytes += b;
			o->max_bytes = o->max_bytes > b ? o->max_bytes - b : 1;
		} else {
			add_skipped(r, rel, "not a regular file or directory");
		}
		comp = next;
	}
	rc = 0;
done:
	if (sdir >= 0)
		close(sdir);
	if (ddir >= 0)
		close(ddir);
	return rc;
}

static void export_out(struct run *run)
{
	struct kiln_sandbox *sb = run->sb;
	struct kiln_result *r = run->res;
	struct kiln_copy_opts o = {
		.uid = (uid_t)-1,
		.gid = (gid_t)-1,
		.max_bytes = sb->limit[KILN_LIMIT_DISK],
		.max_files = 1000000,
		.skip_invalid_utf8 = true,
		.skip_special = true,
	};
	struct kiln_copy_stats st = {0};
	struct kiln_error *e = NULL;
	cleanup_fd int src = -1, dst = -1, ws = -1;

	if (sb->outdir == NULL || run->disk < 0)
		return;
	dst = open_outdir(sb->outdir, &e);
	if (dst < 0)
		goto fail;
	if (sb->nexports > 0) {
		ws = openat(run->disk, "ws", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (ws < 0) {
			kiln_error_set(&e, errno, "open the workspace");
			goto fail;
		}
		for (size_t i = 0; i < sb->nexports; i++)
			if (export_path(run, ws, dst, sb->exports[i], &o, &e) < 0)
				goto fail;
		r->exported = true;
		return;
	}
	src = openat(run->disk, "ws/out", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (src < 0) {
		if (errno == ENOENT) {
			r->exported = true; /* nothing to export */
			return;
		}
		kiln_error_set(&e, errno, "/workspace/out is not a directory");
		goto fail;
	}
	if (kiln_copy_tree(src, dst, &o, &st, &e) < 0)
		goto fail;
	r->exported = true;
	r->export_files = st.files + st.symlinks;
	r->export_bytes = st.bytes;
	r->export_skipped = st.skipped;
	st.skipped = NULL;
	st.nskipped = 0;
	kiln_copy_stats_free(&st);
	return;
fail:
	r->export_files += st.files + st.symlinks;
	r->export_bytes += st.bytes;
	kiln_copy_stats_free(&st);
	r->export_error = strdup(e ? e->msg : "unknown error");
	kiln_error_free(&e);
}

static void add_protections(struct kiln_result *r, int landlock_abi)
{
	static const char *const always[] = {
		"user-namespace",
		"mount-namespace",
		"pid-namespace",
		"network-namespace",
		"ipc-namespace",
		"uts-namespace",
		"cgroup-namespace",
		"pivot-root",
		"read-only-root",
		"minimal-etc",
		"masked-proc",
		"minimal-dev",
		"no-sys",
		"disk-limit",
		"new-session",
		"closed-fds",
		"capabilities-dropped",
		"securebits-locked",
		"no-new-privs",
		"seccomp",
		"timeout",
		"output-limit",
		"rlimits",
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		kiln_result_add_protection(r, always[i]);
	snprintf(buf, sizeof(buf), "landlock-abi-%d", landlock_abi);
	kiln_result_add_protection(r, buf);
	if (landlock_abi >= 6) {
		kiln_result_add_protection(r, "landlock-scope-signal");
		kiln_result_add_protection(r, "landlock-scope-abstract-unix");
	} else {
		kiln_result_add_not_applied(r, "landlock-scope (needs Landlock ABI 6, Linux 6.12)");
	}
}

static void run_cleanup(struct run *run)
{
	if (run->pidfd >= 0 && !run->init_reaped)
		syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL, 0);
	if (run->relay > 0) {
		/* The relay exits once init is gone; it never outlives a kill. */
		if (run->pidfd < 0)
			kill(run->relay, SIGKILL);
		while (waitpid(run->relay, NULL, 0) < 0 && errno == EINTR)
			;
		run->relay = -1;
	}
	if (run->cg) {
		kiln_cgroup_destroy(run->cg);
		run->cg = NULL;
	}
	int *fds[] = {&run->relay_fd, &run->pidfd,  &run->chan,	 &run->bchan, &run->out_r,
		      &run->err_r,    &run->notify, &run->timer, &run->disk};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	if (run->slot_fd >= 0) {
		close(run->slot_fd);
		run->slot_fd = -1;
	}
}

/*
 * init is created by a relay process, not by the caller directly. The
 * caller may be multi-threaded (kilnd): a raw clone() from such a process
 * copies glibc's internal state (malloc arenas, the thread list used by
 * setresuid/setgroups) mid-flight, and the child can deadlock on a lock
 * another thread held at that instant. fork() runs glibc's atfork handlers
 * and leaves a consistent, single-threaded child; that relay then makes
 * the namespaced clone() safely, reaps init and reports its CPU usage.
 * The relay dies with its parent thread (parent-death signal) and init
 * dies with the relay.
 */
struct relay_report {
	int32_t init_pid; /* or -errno */
	uint64_t user_ns, sys_ns;
};

static pid_t spawn_init(struct run *run, struct kiln_sandbox *sb, int chan[2], int bchan[2],
			int outp[2], int errp[2], struct kiln_error **err)
{
	struct relay_report rep = {0};
	int rp[2];
	pid_t parent = getpid(), relay, pid;
	ssize_t n;

	if (pipe2(rp, O_CLOEXEC) < 0)
		return kiln_error_set(err, errno, "create the relay pipe");
	fflush(NULL);
	relay = fork();
	if (relay < 0) {
		close(rp[0]);
		close(rp[1]);
		return kiln_error_set(err, errno, "fork the relay");
	}
	if (relay == 0) {
		struct rusage ru;
		int st;

		close(chan[0]);
		close(bchan[0]);
		close(outp[0]);
		close(errp[0]);
		close(rp[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(KILN_EXIT_SETUP);
		/* A prepared network namespace is joined here, before the
		 * build's user namespace exists: it stays owned by the user
		 * namespace that created it, which is not the build's, so the
		 * build has no capability over it at all (it cannot add
		 * routes, interfaces or addresses, nor change its sysctls). */
		if (sb->netns_fd >= 0 && setns(sb->netns_fd, CLONE_NEWNET) < 0) {
			rep.init_pid = -errno;
			kiln_write_all(rp[1], &rep, sizeof(rep));
			_exit(KILN_EXIT_SETUP);
		}
		pid = (pid_t)syscall(SYS_clone,
				     CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID |
					     (sb->netns_fd >= 0 ? 0 : CLONE_NEWNET) | CLONE_NEWIPC |
					     CLONE_NEWUTS | SIGCHLD,
				     NULL, NULL, NULL, 0);
		if (pid == 0) {
			close(rp[1]);
			kiln_init_main(sb, chan[1], bchan[1], outp[1], errp[1]);
		}
		rep.init_pid = pid < 0 ? -errno : pid;
		close(chan[1]);
		close(bchan[1]);
		close(outp[1]);
		close(errp[1]);
		if (kiln_write_all(rp[1], &rep, sizeof(rep)) < 0 || pid < 0)
			_exit(KILN_EXIT_SETUP);
		while (wait4(pid, &st, __WALL, &ru) < 0)
			if (errno != EINTR)
				_exit(KILN_EXIT_SETUP);
		rep.user_ns = (uint64_t)ru.ru_utime.tv_sec * 1000000000ULL +
			      (uint64_t)ru.ru_utime.tv_usec * 1000ULL;
		rep.sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000ULL +
			     (uint64_t)ru.ru_stime.tv_usec * 1000ULL;
		kiln_write_all(rp[1], &rep, sizeof(rep));
		_exit(0);
	}
	close(rp[1]);
	run->relay = relay;
	run->relay_fd = rp[0];
	n = kiln_read_all(rp[0], &rep, sizeof(rep));
	if (n != (ssize_t)sizeof(rep))
		return kiln_error_set(err, EPIPE, "the relay died before creating the sandbox");
	if (rep.init_pid <= 0)
		return kiln_error_set(
			err, -rep.init_pid,
			"create namespaces (user, mount, pid, network, ipc, uts): are "
			"user namespaces enabled? (sysctl user.max_user_namespaces, "
			"kernel.apparmor_restrict_unprivileged_userns)");
	return rep.init_pid;
}

/* init has exited: collect what the relay reports and reap the relay. */
static void reap_init(struct run *run)
{
	struct relay_report rep = {0};

	if (run->relay_fd >= 0 &&
	    kiln_read_all(run->relay_fd, &rep, sizeof(rep)) == (ssize_t)sizeof(rep)) {
		run->res->user_ns = rep.user_ns;
		run->res->sys_ns = rep.sys_ns;
	}
	if (run->relay > 0) {
		while (waitpid(run->relay, NULL, 0) < 0 && errno == EINTR)
			;
		run->relay = -1;
	}
}

int kiln_sandbox_run(struct kiln_sandbox *sb, struct kiln_result **result, struct kiln_error **err)
{
	struct run run = {.sb = sb,
			  .init = -1,
			  .pidfd = -1,
			  .chan = -1,
			  .bchan = -1,
			  .out_r = -1,
			  .err_r = -1,
			  .notify = -1,
			  .timer = -1,
			  .disk = -1,
			  .slot_fd = -1,
			  .relay = -1,
			  .relay_fd = -1};
	int chan[2] = {-1, -1}, bchan[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
	struct itimerspec its;
	struct kiln_msg m;
	int slot, fd, r, bpf = -1;
	pid_t pid;

	uint64_t run_t0 = kiln_now_ns();

	*result = NULL;
	if (sb->argv == NULL)
		return kiln_error_set(err, EINVAL, "no command given");
	run.res = calloc(1, sizeof(*run.res));
	if (run.res == NULL)
		return kiln_error_set(err, ENOMEM, "result");
	run.res->status = -1;

	sb->landlock_abi = kiln_landlock_abi();
	if (sb->landlock_abi < 1) {
		kiln_error_set(err, EOPNOTSUPP,
			       "Landlock is not available: kiln needs Linux >= 5.13 with Landlock "
			       "enabled (CONFIG_SECURITY_LANDLOCK=y and 'landlock' in lsm=)");
		goto fail;
	}
	if (sb->outdir) {
		fd = open_outdir(sb->outdir, err);
		if (fd < 0)
			goto fail;
		close(fd);
	}
	slot = prepare_identity(&run, err);
	if (slot < 0)
		goto fail;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bchan) < 0 ||
	    pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		kiln_error_set(err, errno, "create sandbox channels");
		goto fail_fds;
	}
	if (!sb->rootless) {
		/* The disk belongs to the host's user namespace, so we can
		 * fill it as root and chown to the build's host uid. */
		run.disk = kiln_disk_create(sb, sb->outer_uid + sb->build_uid,
					    sb->outer_gid + sb->build_gid, err);
		if (run.disk < 0 || copy_source(&run, err) < 0 || open_bind_trees(sb, err) < 0)
			goto fail_fds;
		sb->disk_fd = run.disk;
	}
	run.timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (run.timer < 0) {
		kiln_error_set(err, errno, "timerfd");
		goto fail_fds;
	}

	pid = spawn_init(&run, sb, chan, bchan, outp, errp, err);
	if (pid < 0)
		goto fail_fds;
	close_bind_trees(sb);
	sb->disk_fd = -1; /* init has its copy; run.disk stays ours */
	run.init = pid;
	run.chan = chan[0];
	run.bchan = bchan[0];
	run.out_r = outp[0];
	run.err_r = errp[0];
	close(chan[1]);
	close(bchan[1]);
	close(outp[1]);
	close(errp[1]);
	/* init is not our child (the relay's): the pidfd is how we watch and
	 * signal it. It cannot have been reaped yet: it waits for our GO. */
	run.pidfd = kiln_pidfd_open(pid);
	if (run.pidfd < 0) {
		kiln_error_set(err, errno, "pidfd_open");
		goto fail_run;
	}

	if (kiln_userns_write_maps(sb, pid, err) < 0)
		goto fail_run;
	if (kiln_msg_send(run.chan, KILN_MSG_GO, 0, -1, NULL) < 0) {
		kiln_error_set(err, errno, "start init");
		goto fail_run;
	}
	/* While init builds the filesystem: compile the seccomp program,
	 * create the cgroup and move init into it (a v1 migration waits for an
	 * RCU grace period). init enters its cgroup namespace only after
	 * CONTINUE, and nothing of the build runs before that. */
	bpf = kiln_seccomp_compile(err);
	if (bpf < 0)
		goto fail_run;
	if (prepare_cgroup(&run, slot, err) < 0 ||
	    (run.cg && kiln_cgroup_attach(run.cg, pid, err) < 0))
		goto fail_run;
	if (sb->rootless) {
		/* init made the disk in its own user namespace (the only one
		 * where we may mount); the caller's uid is mapped there. */
		r = kiln_msg_recv(run.chan, &m, &run.disk);
		if (r <= 0 || m.type != KILN_MSG_DISK || run.disk < 0) {
			if (r > 0 && m.type == KILN_MSG_ERROR)
				kiln_error_set(err, 0, "%s", m.text);
			else
				kiln_error_set(err, r < 0 ? errno : EPIPE,
					       "sandbox init failed before creating the workspace");
			goto fail_run;
		}
		if (copy_source(&run, err) < 0)
			goto fail_run;
	}
	r = kiln_msg_send(run.chan, KILN_MSG_CONTINUE, 0, bpf, NULL);
	close(bpf);
	bpf = -1;
	if (r < 0) {
		/* init died during setup: its error message is queued. */
		r = kiln_msg_recv(run.chan, &m, NULL);
		kiln_error_set(err, 0, "%s",
			       r > 0 && m.type == KILN_MSG_ERROR
				       ? m.text
				       : "sandbox init died during setup");
		goto fail_run;
	}
	run.start_ns = kiln_now_ns();
	run.res->setup_ns = run.start_ns - run_t0;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)sb->limit[KILN_LIMIT_TIMEOUT];
	if (timerfd_settime(run.timer, 0, &its, NULL) < 0) {
		kiln_error_set(err, errno, "arm the timeout");
		goto fail_run;
	}
	add_protections(run.res, sb->landlock_abi);

	if (event_loop(&run, err) < 0)
		goto fail_run;
	if (run.setup_failed) {
		kiln_error_set(err, 0, "%s", run.setup_msg);
		goto fail_run;
	}
	finish_result(&run);
	if (run.cg) {
		struct kiln_error *e = NULL;
		if (kiln_cgroup_kill(run.cg, &e) < 0)
			kiln_error_free(&e);
	}
	export_out(&run);
	run_cleanup(&run);
	*result = run.res;
	return 0;

fail_fds:
	for (int i = 0; i < 2; i++) {
		if (chan[i] >= 0)
			close(chan[i]);
		if (bchan[i] >= 0)
			close(bchan[i]);
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	goto fail;
fail_run:
	if (bpf >= 0)
		close(bpf);
	kiln_error_prefix(err, "sandbox setup");
fail:
	close_bind_trees(sb);
	sb->disk_fd = -1;
	run_cleanup(&run);
	kiln_result_free(run.res);
	return -1;
}
