/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/sandbox/cgroup.c.
 *
 *  1. Pure parsers on sample /proc/self/mountinfo and /proc/self/cgroup
 *     texts (hybrid, pure v2, containers, co-mounted controllers).
 *  2. Fake v2 and v1 hierarchies in a temporary directory of plain files:
 *     what is written where, the supervisor-leaf move, fail-closed errors,
 *     undo after a partial failure, stale removal, the pid-recycling guard.
 *  3. Real cgroup v1 (root, v1 memory controller mounted): limits read back,
 *     fork bomb stopped, memory bomb OOM-killed, CPU throttled, kill, stale
 *     removal, destroy -- all judged from the host side.
 *  4. Real cgroup v2: a fresh cgroup2 mount in a private mount namespace.
 *
 * Sections that need root or a kernel feature are TAP-skipped line by line
 * (the others still run); with CI=true in the environment a skip is a
 * failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "sandbox/cgroup.h"
#include "tap.h"

#define MIB (UINT64_C(1) << 20)

static bool in_ci(void)
{
	const char *ci = getenv("CI");

	return ci != NULL && strcmp(ci, "true") == 0;
}

/* A skipped check: "ok # SKIP" normally, "not ok" under CI=true. */
static void skip(const char *what, const char *why)
{
	if (in_ci())
		ok(0, "%s (cannot run in CI: %s)", what, why);
	else
		ok(1, "%s # SKIP %s", what, why);
}

/* ---- small file helpers ------------------------------------------------ */

static int write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	int r;

	if (f == NULL)
		return -1;
	r = fputs(s, f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

/* Contents without trailing newlines, in a rotating static buffer; "(absent)"
 * when the file cannot be read. */
static const char *file_text(const char *path)
{
	static char bufs[4][4096];
	static unsigned next;
	char *b = bufs[next++ % 4];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return "(absent)";
	n = fread(b, 1, sizeof(bufs[0]) - 1, f);
	fclose(f);
	b[n] = '\0';
	while (n > 0 && b[n - 1] == '\n')
		b[--n] = '\0';
	return b;
}

static const char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *pathf(const char *fmt, ...)
{
	static char bufs[8][4096];
	static unsigned next;
	char *b = bufs[next++ % 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return b;
}

static bool exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(p) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(p) < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/kiln-test-cgroup-XXXXXX";
	char *d = mkdtemp(tmpl);

	return d ? strdup(d) : NULL;
}

static bool msg_has(const struct kiln_error *e, const char *needle)
{
	return e != NULL && strstr(e->msg, needle) != NULL;
}

static void show_err(const struct kiln_error *e)
{
	if (e != NULL)
		printf("#   error: %s (code %d)\n", e->msg, e->code);
}

/* ---- processes ---------------------------------------------------------- */

/* Fork a child that waits for a byte on a pipe and then runs fn (which does
 * not return). *go receives the pipe's write end. */
static pid_t spawn_held(void (*fn)(void), int *go)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		char c;

		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(99);
		fn();
		_exit(98);
	}
	close(p[0]);
	*go = p[1];
	return pid;
}

static void release(int go)
{
	ssize_t r = write(go, "g", 1);

	(void)r;
	close(go);
}

static void child_sleep(void)
{
	for (;;)
		pause();
}

/* Fork 100 processes that just wait; exit with how many forks succeeded. */
static void child_forkbomb(void)
{
	int n = 0, i;

	for (i = 0; i < 100; i++) {
		pid_t p = fork();

		if (p == 0) {
			for (;;)
				pause();
		}
		if (p > 0)
			n++;
	}
	_exit(n);
}

static void child_memory_bomb(void)
{
	size_t len = 256 * MIB, off;
	volatile char *m =
		mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		_exit(3);
	for (off = 0; off < len; off += 4096)
		m[off] = 1;
	_exit(0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void child_burn(void)
{
	uint64_t end = now_ms() + 600;
	volatile uint64_t x = 0;

	while (now_ms() < end)
		x++;
	_exit(0);
}

/* waitpid with a deadline, so that a broken kill fails the test instead of
 * hanging it: a child still running after timeout_ms is killed by us and
 * reported as not having ended. */
static bool wait_child(pid_t pid, int *st, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return false;
		if (now_ms() >= end) {
			printf("#   pid %d still running after %u ms\n", (int)pid, timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, st, 0);
			return false;
		}
		usleep(10000);
	}
}

static bool killed_by_sigkill(pid_t pid)
{
	int st;

	if (!wait_child(pid, &st, 10000))
		return false;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* We are a child subreaper: collect orphans (fork bomb leftovers). */
static int reap_all(void)
{
	int n = 0;

	while (waitpid(-1, NULL, WNOHANG) > 0)
		n++;
	return n;
}

/* ======================================================================
 * 1. Pure parsers
 * ====================================================================== */

/* This machine (hybrid: v1 controllers + an empty cgroup2 at unified). */
static const char hybrid_mountinfo[] =
	"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
	"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
	"37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
	"38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
	"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
static const char hybrid_self[] = "9:name=systemd:/\n"
				  "8:pids:/\n"
				  "7:blkio:/\n"
				  "6:freezer:/\n"
				  "5:devices:/\n"
				  "4:memory:/process_api/a4f59634cffe7ec65fe01f74e886e764\n"
				  "3:cpuset:/\n"
				  "2:cpuacct:/\n"
				  "1:cpu:/\n"
				  "0::/\n";

/* A systemd host with unified cgroup2 only, kilnd as a delegated service. */
static const char v2_mountinfo[] =
	"24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	"26 24 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n"
	"30 26 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot\n";
static const char v2_self[] = "0::/system.slice/kilnd.service\n";

/* systemd hybrid with co-mounted cpu,cpuacct; an escaped mount point. */
static const char comount_mountinfo[] =
	"35 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
	"36 25 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:16 - cgroup cgroup rw,memory\n"
	"37 25 0:33 / /sys/fs/cgroup/pids rw,nosuid shared:17 - cgroup cgroup rw,pids\n"
	"38 25 0:34 / /srv/my\\040cg rw,nosuid shared:18 - cgroup2 cgroup2 rw\n";
static const char comount_self[] = "12:pids:/system.slice/kilnd.service\n"
				   "4:cpu,cpuacct:/system.slice/kilnd.service\n"
				   "3:memory:/system.slice/kilnd.service\n"
				   "1:name=systemd:/system.slice/kilnd.service\n"
				   "0::/a:b\n";

/* A container: the host's /docker/abc subtree bind-mounted on /sys/fs/cgroup. */
static const char container_mountinfo[] =
	"900 800 0:26 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n";

static void layout_of(const char *mi, const char *self_text, struct kiln_cgroup_layout *l,
		      int *r_out)
{
	struct kiln_cgroup_self s = {0};
	struct kiln_error *e = NULL;
	int r = kiln_cgroup_parse_self(self_text, &s, &e);

	memset(l, 0, sizeof(*l));
	if (r == 0)
		r = kiln_cgroup_parse_mountinfo(mi, &s, l, &e);
	show_err(e);
	kiln_error_free(&e);
	kiln_cgroup_self_clear(&s);
	*r_out = r;
}

static void test_pure(void)
{
	struct kiln_cgroup_self s = {0};
	struct kiln_cgroup_layout l;
	struct kiln_error *e = NULL;
	uint64_t v = 0;
	int r;

	/* words and keyed files */
	ok(kiln_cgroup_has_word("cpu io memory pids\n", "memory"), "has_word finds memory");
	ok(!kiln_cgroup_has_word("cpuset io hugetlb\n", "cpu"), "has_word: cpuset is not cpu");
	ok(kiln_cgroup_has_word("rw,nosuid,cpu,cpuacct", "cpuacct"), "has_word in mount options");
	ok(!kiln_cgroup_has_word("", "pids") && !kiln_cgroup_has_word(NULL, "pids"),
	   "has_word on empty/NULL list");
	r = kiln_cgroup_keyed("oom 1\noom_kill 3\noom_group_kill 0\n", "oom_kill", &v);
	ok(r == 0 && v == 3, "keyed: oom_kill 3 (not oom or oom_group_kill)");
	r = kiln_cgroup_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 12", "oom_kill", &v);
	ok(r == 0 && v == 12, "keyed: v1 memory.oom_control, last line without newline");
	ok(kiln_cgroup_keyed("max 0\n", "oom_kill", &v) < 0, "keyed: missing key is -1");
	ok(kiln_cgroup_keyed("max x\n", "max", &v) < 0, "keyed: non-number is -1");
	ok(kiln_cgroup_keyed("populated 0\nfrozen 0\n", "populated", &v) == 0 && v == 0,
	   "keyed: populated 0");
	ok(!kiln_cgroup_swap_active("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"),
	   "swaps: header only means no swap");
	ok(kiln_cgroup_swap_active("Filename\tType\tSize\tUsed\tPriority\n"
				   "/swapfile  file  1048572  0  -2\n"),
	   "swaps: one swap file is active");
	ok(!kiln_cgroup_swap_active(""), "swaps: empty text");

	/* /proc/self/cgroup */
	r = kiln_cgroup_parse_self(hybrid_self, &s, &e);
	ok(r == 0, "parse hybrid /proc/self/cgroup");
	is_str(s.v2, "/", "hybrid: v2 path");
	is_str(s.v1[KILN_CG_MEMORY], "/process_api/a4f59634cffe7ec65fe01f74e886e764",
	       "hybrid: memory path");
	is_str(s.v1[KILN_CG_PIDS], "/", "hybrid: pids path");
	is_str(s.v1[KILN_CG_CPU], "/", "hybrid: cpu path");
	is_str(s.v1[KILN_CG_FREEZER], "/", "hybrid: freezer path");
	kiln_cgroup_self_clear(&s);
	r = kiln_cgroup_parse_self(v2_self, &s, &e);
	ok(r == 0 && s.v1[KILN_CG_MEMORY] == NULL && s.v1[KILN_CG_PIDS] == NULL,
	   "pure v2: no v1 controllers");
	is_str(s.v2, "/system.slice/kilnd.service", "pure v2: own path");
	kiln_cgroup_self_clear(&s);
	r = kiln_cgroup_parse_self(comount_self, &s, &e);
	ok(r == 0, "parse co-mounted /proc/self/cgroup");
	is_str(s.v1[KILN_CG_CPU], "/system.slice/kilnd.service", "cpu from 'cpu,cpuacct'");
	is_str(s.v2, "/a:b", "path containing ':' kept whole");
	ok(s.v1[KILN_CG_FREEZER] == NULL, "freezer absent, name=systemd ignored");
	kiln_cgroup_self_clear(&s);
	r = kiln_cgroup_parse_self("0::/\ngarbage\n", &s, &e);
	ok(r < 0 && e != NULL && e->code == EINVAL && s.v2 == NULL,
	   "malformed /proc/self/cgroup is EINVAL and leaves nothing");
	kiln_error_free(&e);
	r = kiln_cgroup_parse_self("x::/\n", &s, &e);
	ok(r < 0, "non-numeric hierarchy id rejected");
	kiln_error_free(&e);

	/* mountinfo: hybrid */
	layout_of(hybrid_mountinfo, hybrid_self, &l, &r);
	ok(r == 0, "parse hybrid mountinfo");
	is_str(l.v1_mount[KILN_CG_MEMORY], "/sys/fs/cgroup/memory", "hybrid: memory mount");
	is_str(l.v1_dir[KILN_CG_MEMORY],
	       "/sys/fs/cgroup/memory/process_api/a4f59634cffe7ec65fe01f74e886e764",
	       "hybrid: own memory cgroup dir");
	is_str(l.v1_dir[KILN_CG_PIDS], "/sys/fs/cgroup/pids", "hybrid: own pids dir");
	is_str(l.v1_dir[KILN_CG_CPU], "/sys/fs/cgroup/cpu", "hybrid: cpu is not cpuacct/cpuset");
	is_str(l.v1_dir[KILN_CG_FREEZER], "/sys/fs/cgroup/freezer", "hybrid: freezer dir");
	is_str(l.v2_mount, "/sys/fs/cgroup/unified", "hybrid: cgroup2 mount");
	is_str(l.v2_dir, "/sys/fs/cgroup/unified", "hybrid: own v2 dir");
	is_str(l.v2_path, "/", "hybrid: own v2 path");
	is_int(kiln_cgroup_choose(&l,
				  KILN_CG_BIT(KILN_CG_MEMORY) | KILN_CG_BIT(KILN_CG_PIDS) |
					  KILN_CG_BIT(KILN_CG_CPU),
				  "hugetlb\n", &e),
	       1, "hybrid: memory+pids+cpu -> v1");
	show_err(e);
	kiln_error_free(&e);
	is_int(kiln_cgroup_choose(&l, 0, "hugetlb\n", &e), 1, "hybrid: no limits -> v1 too");
	kiln_error_free(&e);
	kiln_cgroup_layout_clear(&l);

	/* mountinfo: pure v2 */
	layout_of(v2_mountinfo, v2_self, &l, &r);
	ok(r == 0, "parse pure-v2 mountinfo");
	is_str(l.v2_mount, "/sys/fs/cgroup", "pure v2: mount");
	is_str(l.v2_dir, "/sys/fs/cgroup/system.slice/kilnd.service", "pure v2: own dir");
	is_str(l.v2_path, "/system.slice/kilnd.service", "pure v2: own path");
	ok(l.v1_dir[KILN_CG_MEMORY] == NULL && l.v1_dir[KILN_CG_PIDS] == NULL,
	   "pure v2: no v1 dirs");
	is_int(kiln_cgroup_choose(&l, KILN_CG_BIT(KILN_CG_MEMORY) | KILN_CG_BIT(KILN_CG_PIDS),
				  "cpuset cpu io memory hugetlb pids rdma misc\n", &e),
	       2, "pure v2 with memory+pids offered -> v2");
	kiln_error_free(&e);
	r = kiln_cgroup_choose(&l, KILN_CG_BIT(KILN_CG_MEMORY) | KILN_CG_BIT(KILN_CG_PIDS),
			       "cpu io pids\n", &e);
	ok(r < 0 && e && e->code == ENOTSUP && msg_has(e, "'memory'") &&
		   msg_has(e, "cgroup.controllers: cpu io pids") &&
		   msg_has(e, "/sys/fs/cgroup/system.slice/kilnd.service"),
	   "pure v2 without memory: error names the controller, the dir and what is there");
	show_err(e);
	kiln_error_free(&e);
	kiln_cgroup_layout_clear(&l);

	/* hybrid where v1 lost memory: the empty cgroup2 cannot take over */
	layout_of("41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
		  "39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
		  hybrid_self, &l, &r);
	r = kiln_cgroup_choose(&l, KILN_CG_BIT(KILN_CG_MEMORY), "hugetlb\n", &e);
	ok(r < 0 && msg_has(e, "cgroup v2 at /sys/fs/cgroup/unified: controller 'memory' is not "
			       "available (cgroup.controllers: hugetlb)"),
	   "hybrid without v1 memory: v2 error as documented");
	show_err(e);
	kiln_error_free(&e);
	/* split: memory only in v1, cpu only in v2 */
	r = kiln_cgroup_choose(&l, KILN_CG_BIT(KILN_CG_PIDS) | KILN_CG_BIT(KILN_CG_CPU), "cpu\n",
			       &e);
	ok(r < 0 && msg_has(e, "'cpu' is not mounted as cgroup v1") && msg_has(e, "'pids'"),
	   "controllers split across v1 and v2: refused, both named");
	show_err(e);
	kiln_error_free(&e);
	kiln_cgroup_layout_clear(&l);

	/* co-mounted cpu,cpuacct and an escaped path */
	layout_of(comount_mountinfo, comount_self, &l, &r);
	ok(r == 0, "parse co-mounted mountinfo");
	is_str(l.v1_dir[KILN_CG_CPU], "/sys/fs/cgroup/cpu,cpuacct/system.slice/kilnd.service",
	       "cpu in cpu,cpuacct");
	is_str(l.v2_dir, "/srv/my cg/a:b", "\\040 in a mount point is unescaped");
	kiln_cgroup_layout_clear(&l);

	/* a container's bind-mounted subtree */
	layout_of(container_mountinfo, "0::/docker/abc\n", &l, &r);
	is_str(l.v2_dir, "/sys/fs/cgroup", "container: own cgroup is the mount root");
	kiln_cgroup_layout_clear(&l);
	layout_of(container_mountinfo, "0::/docker/abc/kilnd\n", &l, &r);
	is_str(l.v2_dir, "/sys/fs/cgroup/kilnd", "container: own cgroup below the mount root");
	is_str(l.v2_path, "/docker/abc/kilnd", "container: hierarchy path kept");
	kiln_cgroup_layout_clear(&l);
	layout_of(container_mountinfo, "0::/docker/abcd\n", &l, &r);
	ok(r == 0 && l.v2_dir == NULL, "container: /docker/abcd is not under /docker/abc");
	kiln_cgroup_layout_clear(&l);
	layout_of(container_mountinfo, "0::/../other\n", &l, &r);
	ok(r == 0 && l.v2_dir == NULL, "path outside the cgroup namespace: not located");
	r = kiln_cgroup_choose(&l, KILN_CG_BIT(KILN_CG_MEMORY), NULL, &e);
	ok(r < 0 && msg_has(e, "'memory'") && msg_has(e, "no cgroup2 mount"),
	   "nothing usable: error names the controller");
	kiln_error_free(&e);
	kiln_cgroup_layout_clear(&l);

	/* first visible mount wins; a later mount on the same point shadows */
	layout_of("41 31 0:38 / /a rw - cgroup2 cgroup2 rw\n"
		  "42 31 0:38 / /b rw - cgroup2 cgroup2 rw\n"
		  "43 31 0:38 / /a rw - cgroup2 cgroup2 rw,nsdelegate\n",
		  "0::/x\n", &l, &r);
	is_str(l.v2_dir, "/a/x", "first visible cgroup2 mount wins");
	kiln_cgroup_layout_clear(&l);

	/* malformed mountinfo */
	layout_of("41 31 0:38 / /a rw cgroup2 cgroup2 rw\n", "0::/\n", &l, &r);
	ok(r < 0, "mountinfo line without ' - ' is rejected");
	kiln_cgroup_layout_clear(&l);
	layout_of("41 31 0:38 / /a rw - cgroup2\n", "0::/\n", &l, &r);
	ok(r < 0, "mountinfo line without super options is rejected");
	kiln_cgroup_layout_clear(&l);
}

/* ======================================================================
 * 2. Fake hierarchies of plain files
 * ====================================================================== */

static void test_fake_v2(void)
{
	struct kiln_cgroup_limits lim = {.memory = 64 * MIB, .pids = 16, .cpu_milli = 500};
	struct kiln_cgroup_stats st;
	struct kiln_cgroup *cg = NULL;
	struct kiln_error *e = NULL;
	char *t = make_tmpdir();
	int r;

	if (t == NULL) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	/* A delegated, non-root cgroup (it has cgroup.type) holding kilnd. */
	write_file(pathf("%s/cgroup.controllers", t), "cpu io memory pids\n");
	write_file(pathf("%s/cgroup.subtree_control", t), "");
	write_file(pathf("%s/cgroup.procs", t), "4242\n");
	write_file(pathf("%s/cgroup.type", t), "domain\n");

	r = kiln_cgroup_create(t, "job1", &lim, &cg, &e);
	ok(r == 0 && cg != NULL, "fake v2: create with memory, pids, cpu limits");
	show_err(e);
	kiln_error_free(&e);
	is_str(kiln_cgroup_version(cg), "v2", "fake v2: version");
	is_str(file_text(pathf("%s/job1/memory.max", t)), "67108864", "memory.max");
	is_str(file_text(pathf("%s/job1/memory.swap.max", t)), "0", "memory.swap.max = 0");
	is_str(file_text(pathf("%s/job1/memory.oom.group", t)), "1", "memory.oom.group = 1");
	is_str(file_text(pathf("%s/job1/pids.max", t)), "16", "pids.max");
	is_str(file_text(pathf("%s/job1/cpu.max", t)), "50000 100000", "cpu.max for 0.5 CPU");
	is_str(file_text(pathf("%s/kiln-supervisor/cgroup.procs", t)), "4242",
	       "own processes moved into the kiln-supervisor leaf");
	is_str(file_text(pathf("%s/cgroup.subtree_control", t)), "+memory +pids +cpu",
	       "controllers enabled in subtree_control");

	if (cg != NULL) {
		r = kiln_cgroup_attach(cg, 4243, &e);
		ok(r == 0, "fake v2: attach");
		kiln_error_free(&e);
		is_str(file_text(pathf("%s/job1/cgroup.procs", t)), "4243",
		       "pid written to cgroup.procs");

		write_file(pathf("%s/job1/memory.peak", t), "123456789\n");
		write_file(pathf("%s/job1/memory.events", t),
			   "low 0\nhigh 0\nmax 40\noom 2\noom_kill 2\noom_group_kill 1\n");
		write_file(pathf("%s/job1/pids.events", t), "max 7\n");
		memset(&st, 0xff, sizeof(st));
		r = kiln_cgroup_stats(cg, &st, &e);
		ok(r == 0 && st.peak_memory == 123456789 && st.oom_kills == 2 &&
			   st.pids_max_hits == 7,
		   "fake v2: stats from memory.peak, memory.events, pids.events");
		kiln_error_free(&e);

		/* An empty cgroup (the usual case after the pid namespace died)
		 * is left alone: no cgroup.kill, no freeze. The populated path is
		 * exercised against the real cgroup2 mount in section 4. */
		write_file(pathf("%s/job1/cgroup.events", t), "populated 0\nfrozen 0\n");
		r = kiln_cgroup_kill(cg, &e);
		ok(r == 0, "fake v2: kill of an empty cgroup succeeds");
		show_err(e);
		kiln_error_free(&e);
		ok(!exists(pathf("%s/job1/cgroup.kill", t)),
		   "empty cgroup: cgroup.kill not written");
		kiln_cgroup_destroy(cg);
		cg = NULL;
		ok(!exists(pathf("%s/job1", t)), "fake v2: destroy removes the cgroup");
		ok(exists(pathf("%s/kiln-supervisor", t)), "the supervisor leaf stays");
	}

	/* Controllers already enabled: no move, subtree_control untouched. */
	rm_rf(pathf("%s/kiln-supervisor", t));
	write_file(pathf("%s/cgroup.subtree_control", t), "cpu memory pids\n");
	r = kiln_cgroup_create(t, "job1", &lim, &cg, &e);
	ok(r == 0, "fake v2: create with controllers already enabled");
	kiln_error_free(&e);
	ok(!exists(pathf("%s/kiln-supervisor", t)), "no supervisor leaf when nothing to enable");
	is_str(file_text(pathf("%s/cgroup.subtree_control", t)), "cpu memory pids",
	       "subtree_control untouched");
	kiln_cgroup_destroy(cg);
	cg = NULL;

	/* Root cgroup (no cgroup.type): processes are never moved out of it. */
	unlink(pathf("%s/cgroup.type", t));
	write_file(pathf("%s/cgroup.subtree_control", t), "");
	r = kiln_cgroup_create(t, "job1", &lim, &cg, &e);
	ok(r == 0 && !exists(pathf("%s/kiln-supervisor", t)),
	   "fake v2 root cgroup: controllers enabled without moving processes");
	is_str(file_text(pathf("%s/cgroup.subtree_control", t)), "+memory +pids +cpu",
	       "root: subtree_control written");
	kiln_error_free(&e);
	kiln_cgroup_destroy(cg);
	cg = NULL;
	write_file(pathf("%s/cgroup.type", t), "domain\n");

	/* A stale cgroup with child cgroups (a crashed run) is removed first. */
	mkdir(pathf("%s/job2", t), 0755);
	mkdir(pathf("%s/job2/sub", t), 0755);
	mkdir(pathf("%s/job2/sub/deeper", t), 0755);
	write_file(pathf("%s/job2/sub/cgroup.procs", t), "");
	write_file(pathf("%s/job2/pids.max", t), "5");
	r = kiln_cgroup_create(t, "job2", &(struct kiln_cgroup_limits){.pids = 8}, &cg, &e);
	ok(r == 0, "fake v2: create over a stale cgroup");
	show_err(e);
	kiln_error_free(&e);
	ok(!exists(pathf("%s/job2/sub", t)), "stale child cgroups removed depth-first");
	is_str(file_text(pathf("%s/job2/pids.max", t)), "8", "fresh limits on the new cgroup");
	kiln_cgroup_destroy(cg);
	cg = NULL;

	/* Invalid input. */
	r = kiln_cgroup_create(t, "../escape", &lim, &cg, &e);
	ok(r < 0 && e && e->code == EINVAL && cg == NULL, "name with '/' rejected");
	kiln_error_free(&e);
	r = kiln_cgroup_create(t, "kiln-supervisor", &lim, &cg, &e);
	ok(r < 0 && e && e->code == EINVAL, "the supervisor's name is reserved");
	kiln_error_free(&e);
	r = kiln_cgroup_create(t, "job3", &(struct kiln_cgroup_limits){.cpu_milli = 5}, &cg, &e);
	ok(r < 0 && e && e->code == EINVAL && !exists(pathf("%s/job3", t)),
	   "CPU limit below the kernel minimum rejected");
	kiln_error_free(&e);
	rm_rf(t);
	free(t);

	/* Missing controller: fail closed, name it, leave nothing. */
	t = make_tmpdir();
	if (t == NULL)
		return;
	write_file(pathf("%s/cgroup.controllers", t), "cpu pids\n");
	write_file(pathf("%s/cgroup.subtree_control", t), "");
	write_file(pathf("%s/cgroup.procs", t), "4242\n");
	write_file(pathf("%s/cgroup.type", t), "domain\n");
	r = kiln_cgroup_create(t, "job1", &lim, &cg, &e);
	ok(r < 0 && cg == NULL && e && e->code == ENOTSUP,
	   "fake v2 without memory: create fails (ENOTSUP)");
	ok(msg_has(e, "'memory'") && msg_has(e, "cgroup.controllers: cpu pids"),
	   "error names the missing controller and what is available");
	show_err(e);
	kiln_error_free(&e);
	ok(!exists(pathf("%s/job1", t)) && !exists(pathf("%s/kiln-supervisor", t)),
	   "nothing left behind");
	is_str(file_text(pathf("%s/cgroup.subtree_control", t)), "", "subtree_control untouched");
	is_str(file_text(pathf("%s/cgroup.procs", t)), "4242", "processes not moved");
	rm_rf(t);
	free(t);
}

static void fake_v1_tree(const char *t)
{
	mkdir(pathf("%s/memory", t), 0755);
	mkdir(pathf("%s/pids", t), 0755);
	mkdir(pathf("%s/cpu", t), 0755);
}

static void test_fake_v1(void)
{
	struct kiln_cgroup_limits lim = {.memory = 64 * MIB, .pids = 16, .cpu_milli = 500};
	struct kiln_cgroup_stats st;
	struct kiln_cgroup *cg = NULL;
	struct kiln_error *e = NULL;
	char *t = make_tmpdir();
	int r, fd, flags, go;
	pid_t bystander;

	if (t == NULL) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	fake_v1_tree(t);
	r = kiln_cgroup_create(t, "job", &lim, &cg, &e);
	ok(r == 0 && cg != NULL, "fake v1: create");
	show_err(e);
	kiln_error_free(&e);
	if (cg == NULL) {
		rm_rf(t);
		free(t);
		return;
	}
	is_str(kiln_cgroup_version(cg), "v1", "fake v1: version");
	is_str(file_text(pathf("%s/memory/job/memory.limit_in_bytes", t)), "67108864",
	       "memory.limit_in_bytes");
	is_str(file_text(pathf("%s/memory/job/memory.memsw.limit_in_bytes", t)), "67108864",
	       "memory.memsw.limit_in_bytes: swap included");
	is_str(file_text(pathf("%s/pids/job/pids.max", t)), "16", "pids.max");
	is_str(file_text(pathf("%s/cpu/job/cpu.cfs_period_us", t)), "100000", "cpu.cfs_period_us");
	is_str(file_text(pathf("%s/cpu/job/cpu.cfs_quota_us", t)), "50000", "cpu.cfs_quota_us");

	r = kiln_cgroup_attach(cg, 4242, &e);
	ok(r == 0 && strcmp(file_text(pathf("%s/memory/job/cgroup.procs", t)), "4242") == 0 &&
		   strcmp(file_text(pathf("%s/pids/job/cgroup.procs", t)), "4242") == 0 &&
		   strcmp(file_text(pathf("%s/cpu/job/cgroup.procs", t)), "4242") == 0,
	   "fake v1: attach writes every hierarchy");
	kiln_error_free(&e);

	write_file(pathf("%s/memory/job/memory.max_usage_in_bytes", t), "5000\n");
	write_file(pathf("%s/memory/job/memory.oom_control", t),
		   "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
	write_file(pathf("%s/memory/job/memory.failcnt", t), "99\n");
	write_file(pathf("%s/pids/job/pids.events", t), "max 9\n");
	r = kiln_cgroup_stats(cg, &st, &e);
	ok(r == 0 && st.peak_memory == 5000 && st.oom_kills == 3 && st.pids_max_hits == 9,
	   "fake v1: stats (oom_kill, not failcnt)");
	kiln_error_free(&e);

	/* The pid-recycling guard: a live process of ours that is listed in
	 * cgroup.procs but is not really in the cgroup must not be signalled;
	 * kill reports the cgroup as not emptied instead. */
	bystander = spawn_held(child_sleep, &go);
	release(go);
	write_file(pathf("%s/memory/job/cgroup.procs", t), pathf("%d\n", (int)bystander));
	write_file(pathf("%s/pids/job/cgroup.procs", t), "");
	write_file(pathf("%s/cpu/job/cgroup.procs", t), "");
	r = kiln_cgroup_kill(cg, &e);
	ok(r < 0 && e && e->code == ETIMEDOUT, "kill of a cgroup that does not empty times out");
	ok(kill(bystander, 0) == 0 && waitpid(bystander, NULL, WNOHANG) == 0,
	   "a listed pid that is not a member was not signalled");
	kiln_error_free(&e);
	kill(bystander, SIGKILL);
	waitpid(bystander, NULL, 0);

	write_file(pathf("%s/memory/job/cgroup.procs", t), "");
	r = kiln_cgroup_kill(cg, &e);
	ok(r == 0, "fake v1: kill of an empty cgroup");
	kiln_error_free(&e);
	kiln_cgroup_destroy(cg);
	cg = NULL;
	ok(!exists(pathf("%s/memory/job", t)) && !exists(pathf("%s/pids/job", t)) &&
		   !exists(pathf("%s/cpu/job", t)),
	   "fake v1: destroy removes every hierarchy's cgroup");

	/* A hierarchy refusing the new cgroup (EPERM): the others are undone. */
	fd = open(pathf("%s/cpu", t), O_RDONLY | O_DIRECTORY);
	flags = 0;
	if (geteuid() != 0) {
		skip("undo after a refused mkdir", "needs root (immutable directory)");
	} else if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 ||
		   (flags |= FS_IMMUTABLE_FL, ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)) {
		skip("undo after a refused mkdir", "no immutable flag on this filesystem");
	} else {
		r = kiln_cgroup_create(t, "job", &lim, &cg, &e);
		ok(r < 0 && cg == NULL && e && e->code == EPERM,
		   "refused mkdir fails with EPERM (a rootless-style error)");
		ok(msg_has(e, "not writable") && msg_has(e, "/cpu/job"),
		   "error says cgroups are not writable and names the path");
		show_err(e);
		kiln_error_free(&e);
		ok(!exists(pathf("%s/memory/job", t)) && !exists(pathf("%s/pids/job", t)),
		   "memory and pids cgroups created before were removed");
		flags &= ~FS_IMMUTABLE_FL;
		ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	if (fd >= 0)
		close(fd);

	/* pids limit asked but no pids hierarchy, no v2: refused. */
	rm_rf(pathf("%s/pids", t));
	r = kiln_cgroup_create(t, "job", &lim, &cg, &e);
	ok(r < 0 && msg_has(e, "'pids'") && !exists(pathf("%s/memory/job", t)),
	   "fake v1 without pids: refused, named, nothing created");
	show_err(e);
	kiln_error_free(&e);
	rm_rf(t);
	free(t);
}

/* ======================================================================
 * 3. Real cgroup v1
 * ====================================================================== */

static char *read_proc(const char *path)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static bool real_layout(struct kiln_cgroup_layout *l)
{
	struct kiln_cgroup_self s = {0};
	struct kiln_error *e = NULL;
	char *self = read_proc("/proc/self/cgroup");
	char *dup = self ? strdup(self) : NULL;
	char *mi;
	bool good;

	memset(l, 0, sizeof(*l));
	good = dup != NULL && kiln_cgroup_parse_self(dup, &s, &e) == 0 &&
	       (mi = read_proc("/proc/self/mountinfo")) != NULL &&
	       kiln_cgroup_parse_mountinfo(mi, &s, l, &e) == 0;
	free(dup);
	kiln_error_free(&e);
	kiln_cgroup_self_clear(&s);
	return good;
}

/* The path of pid's cgroup for controller ctrl ("" for v2), from the kernel. */
static bool proc_cgroup_is(pid_t pid, const char *ctrl, const char *want)
{
	char *text = read_proc(pathf("/proc/%d/cgroup", (int)pid));
	char *line;

	for (line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (c2 == NULL)
			continue;
		*c2 = '\0';
		if ((ctrl[0] == '\0' && c2 == c1 + 1) ||
		    (ctrl[0] != '\0' && kiln_cgroup_has_word(c1 + 1, ctrl)))
			return strcmp(c2 + 1, want) == 0;
	}
	return false;
}

static int count_lines(const char *path)
{
	const char *s = file_text(path);
	int n = 0;

	if (strcmp(s, "(absent)") == 0)
		return -1;
	for (; *s; s++)
		n += *s == '\n';
	return n + (file_text(path)[0] != '\0');
}

/* Safety net, whatever the code under test did: SIGKILL the members of
 * dir's cgroup tree and remove it, so no kiln-test-* cgroup outlives us.
 * Returns true when there was something to clean. */
static int scrub_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	char *text = read_proc(pathf("%s/cgroup.procs", p));
	char *line;
	int i;

	(void)sb;
	(void)ftw;
	if (flag != FTW_DP)
		return 0;
	for (line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
		if (atoi(line) > 0 && atoi(line) != getpid())
			kill(atoi(line), SIGKILL);
	for (i = 0; i < 100 && rmdir(p) < 0 && errno == EBUSY; i++)
		usleep(10000);
	return 0;
}

static bool scrub(const char *dir)
{
	if (!exists(dir))
		return false;
	nftw(dir, scrub_one, 16, FTW_DEPTH | FTW_PHYS);
	reap_all();
	return true;
}

static void test_real_v1(void)
{
	struct kiln_cgroup_limits lim = {.memory = 64 * MIB, .pids = 16, .cpu_milli = 500};
	struct kiln_cgroup_layout l;
	struct kiln_cgroup_stats st;
	struct kiln_cgroup *cg = NULL;
	struct kiln_error *e = NULL;
	char name[64], mem[4096], pids[4096], cpu[4096], hmem[4096], hpids[4096];
	pid_t pid, stale_pid;
	int r, go, status, n;
	struct rusage ru;
	uint64_t v;

	if (geteuid() != 0) {
		skip("real cgroup v1", "not root");
		return;
	}
	if (!real_layout(&l) || l.v1_dir[KILN_CG_MEMORY] == NULL ||
	    l.v1_dir[KILN_CG_PIDS] == NULL || l.v1_dir[KILN_CG_CPU] == NULL) {
		/* A pure v2 host is fine even in CI: section 4 then applies real
		 * limits on the cgroup2 root. Anything else is a broken runner. */
		bool v2_memory =
			l.v2_mount != NULL &&
			kiln_cgroup_has_word(file_text(pathf("%s/cgroup.controllers", l.v2_mount)),
					     "memory");

		kiln_cgroup_layout_clear(&l);
		if (v2_memory)
			ok(1,
			   "real cgroup v1 # SKIP pure cgroup v2 host (covered by the v2 tests)");
		else
			skip("real cgroup v1", "no v1 memory, pids and cpu controllers mounted");
		return;
	}
	snprintf(name, sizeof(name), "kiln-test-%d", (int)getpid());
	snprintf(mem, sizeof(mem), "%s/%s", l.v1_dir[KILN_CG_MEMORY], name);
	snprintf(pids, sizeof(pids), "%s/%s", l.v1_dir[KILN_CG_PIDS], name);
	snprintf(cpu, sizeof(cpu), "%s/%s", l.v1_dir[KILN_CG_CPU], name);
	snprintf(hmem, sizeof(hmem), "%s%s%s", l.v1_path[KILN_CG_MEMORY],
		 strcmp(l.v1_path[KILN_CG_MEMORY], "/") ? "/" : "", name);
	snprintf(hpids, sizeof(hpids), "%s%s%s", l.v1_path[KILN_CG_PIDS],
		 strcmp(l.v1_path[KILN_CG_PIDS], "/") ? "/" : "", name);

	/* A stale cgroup, as a crashed run leaves it: a process inside, and a
	 * child cgroup. */
	mkdir(mem, 0755);
	mkdir(pids, 0755);
	mkdir(pathf("%s/sub", mem), 0755);
	stale_pid = spawn_held(child_sleep, &go);
	release(go);
	write_file(pathf("%s/sub/cgroup.procs", mem), pathf("%d", (int)stale_pid));
	write_file(pathf("%s/cgroup.procs", pids), pathf("%d", (int)stale_pid));

	r = kiln_cgroup_create(NULL, name, &lim, &cg, &e);
	ok(r == 0 && cg != NULL, "real v1: create %s (64M, 16 pids, 0.5 CPU)", name);
	show_err(e);
	kiln_error_free(&e);
	ok(killed_by_sigkill(stale_pid), "stale cgroup's process was SIGKILLed");
	ok(!exists(pathf("%s/sub", mem)), "stale child cgroup removed");
	if (cg == NULL)
		goto out;
	is_str(kiln_cgroup_version(cg), "v1", "real v1: version");

	is_str(file_text(pathf("%s/memory.limit_in_bytes", mem)), "67108864",
	       "host reads memory.limit_in_bytes back");
	if (exists(pathf("%s/memory.memsw.limit_in_bytes", mem)))
		is_str(file_text(pathf("%s/memory.memsw.limit_in_bytes", mem)), "67108864",
		       "host reads memory.memsw.limit_in_bytes back");
	else
		skip("memory.memsw.limit_in_bytes", "no swap accounting on this kernel");
	is_str(file_text(pathf("%s/pids.max", pids)), "16", "host reads pids.max back");
	is_str(file_text(pathf("%s/cpu.cfs_quota_us", cpu)), "50000", "cpu.cfs_quota_us");
	is_str(file_text(pathf("%s/cpu.cfs_period_us", cpu)), "100000", "cpu.cfs_period_us");

	/* Fork bomb. */
	pid = spawn_held(child_forkbomb, &go);
	r = kiln_cgroup_attach(cg, pid, &e);
	ok(r == 0, "attach the fork bomb");
	show_err(e);
	kiln_error_free(&e);
	ok(proc_cgroup_is(pid, "memory", hmem) && proc_cgroup_is(pid, "pids", hpids),
	   "kernel shows the child in the run's memory and pids cgroups");
	release(go);
	n = -1;
	if (wait_child(pid, &status, 30000) && WIFEXITED(status))
		n = WEXITSTATUS(status);
	ok(n >= 1 && n <= 15, "fork bomb: %d of 100 forks succeeded (limit 16 with itself)", n);
	r = kiln_cgroup_stats(cg, &st, &e);
	ok(r == 0 && st.pids_max_hits > 0, "stats: pids_max_hits = %llu",
	   (unsigned long long)st.pids_max_hits);
	kiln_error_free(&e);
	ok(count_lines(pathf("%s/cgroup.procs", pids)) == n, "its %d children are in the cgroup",
	   n);
	r = kiln_cgroup_kill(cg, &e);
	ok(r == 0, "kill the fork bomb's leftovers");
	show_err(e);
	kiln_error_free(&e);
	is_int(count_lines(pathf("%s/cgroup.procs", pids)), 0, "pids cgroup empty after kill");
	is_int(count_lines(pathf("%s/cgroup.procs", mem)), 0, "memory cgroup empty after kill");
	is_int(reap_all(), n, "all leftovers reaped");

	/* CPU quota. */
	pid = spawn_held(child_burn, &go);
	r = kiln_cgroup_attach(cg, pid, &e);
	kiln_error_free(&e);
	release(go);
	memset(&ru, 0, sizeof(ru));
	wait4(pid, &status, 0, &ru);
	{
		uint64_t cpu_ms = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
				  (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
		const char *cs = file_text(pathf("%s/cpu.stat", cpu));

		ok(r == 0 && cpu_ms < 450, "0.5 CPU: busy loop of 600 ms got %llu ms of CPU",
		   (unsigned long long)cpu_ms);
		ok(kiln_cgroup_keyed(cs, "nr_throttled", &v) == 0 && v > 0,
		   "cpu.stat nr_throttled = %llu", (unsigned long long)v);
	}

	/* Memory bomb. */
	pid = spawn_held(child_memory_bomb, &go);
	r = kiln_cgroup_attach(cg, pid, &e);
	kiln_error_free(&e);
	release(go);
	ok(r == 0 && killed_by_sigkill(pid), "memory bomb (256 MiB) killed by SIGKILL");
	r = kiln_cgroup_stats(cg, &st, &e);
	ok(r == 0 && st.oom_kills >= 1, "stats: oom_kills = %llu",
	   (unsigned long long)st.oom_kills);
	ok(st.peak_memory > 32 * MIB && st.peak_memory <= 64 * MIB,
	   "stats: peak memory %llu bytes, between 32 MiB and the limit",
	   (unsigned long long)st.peak_memory);
	kiln_error_free(&e);

	/* Kill a sleeping process; then destroy. */
	pid = spawn_held(child_sleep, &go);
	r = kiln_cgroup_attach(cg, pid, &e);
	kiln_error_free(&e);
	release(go);
	r = r == 0 ? kiln_cgroup_kill(cg, &e) : -1;
	ok(r == 0 && killed_by_sigkill(pid), "kill: the sleeping member died of SIGKILL");
	kiln_error_free(&e);
	kiln_cgroup_destroy(cg);
	errno = 0;
	ok(!exists(mem) && errno == ENOENT, "destroy: %s gone", mem);
	ok(!exists(pids) && !exists(cpu), "destroy: pids and cpu cgroups gone");
	if (l.v1_dir[KILN_CG_FREEZER])
		ok(!exists(pathf("%s/%s", l.v1_dir[KILN_CG_FREEZER], name)),
		   "destroy: freezer cgroup gone");
out:
	/* Every one is scrubbed: no short-circuit. */
	n = scrub(mem);
	n += scrub(pids);
	n += scrub(cpu);
	if (l.v1_dir[KILN_CG_FREEZER])
		n += scrub(pathf("%s/%s", l.v1_dir[KILN_CG_FREEZER], name));
	if (n > 0)
		printf("# removed leftover test cgroups\n");
	kiln_cgroup_layout_clear(&l);
}

/* ======================================================================
 * 4. Real cgroup v2: a fresh cgroup2 mount in a private mount namespace
 * ====================================================================== */

static void v2_in_child(void)
{
	struct kiln_cgroup *cg = NULL;
	struct kiln_error *e = NULL;
	char tmpl[] = "/tmp/kiln-test-cgroup2-XXXXXX";
	char name[64], *t;
	const char *controllers;
	pid_t pid;
	int r, go;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		skip("real cgroup v2", "cannot make a private mount namespace");
		return;
	}
	t = mkdtemp(tmpl);
	if (t == NULL || mount("cgroup2", t, "cgroup2", 0, NULL) < 0) {
		skip("real cgroup v2", "cannot mount cgroup2");
		if (t)
			rmdir(t);
		return;
	}
	snprintf(name, sizeof(name), "kiln-test-%d", (int)getppid());
	controllers = file_text(pathf("%s/cgroup.controllers", t));

	if (!kiln_cgroup_has_word(controllers, "memory")) {
		r = kiln_cgroup_create(t, name, &(struct kiln_cgroup_limits){.memory = 64 * MIB},
				       &cg, &e);
		ok(r < 0 && cg == NULL && e && e->code == ENOTSUP && msg_has(e, "'memory'"),
		   "real v2 (controllers: %s): memory limit fails closed naming 'memory'",
		   controllers);
		show_err(e);
		kiln_error_free(&e);
		ok(!exists(pathf("%s/%s", t, name)), "no cgroup directory left behind");
	} else {
		r = kiln_cgroup_create(t, name, &(struct kiln_cgroup_limits){.memory = 64 * MIB},
				       &cg, &e);
		ok(r == 0 && strcmp(file_text(pathf("%s/%s/memory.max", t, name)), "67108864") == 0,
		   "real v2 with memory: memory.max applied");
		show_err(e);
		kiln_error_free(&e);
		kiln_cgroup_destroy(cg);
		cg = NULL;
	}

	r = kiln_cgroup_create(t, name, &(struct kiln_cgroup_limits){0}, &cg, &e);
	ok(r == 0 && cg != NULL, "real v2: create without limits");
	show_err(e);
	kiln_error_free(&e);
	/* A fresh cgroup2 mount is the hierarchy's root cgroup (no cgroup.type),
	 * unless we are in a cgroup namespace (a container): then it is a
	 * delegated subtree, where the supervisor move is legitimate. */
	if (!exists(pathf("%s/cgroup.type", t)))
		ok(!exists(pathf("%s/kiln-supervisor", t)),
		   "the root cgroup's processes were not moved anywhere");
	if (cg == NULL)
		goto out;
	is_str(kiln_cgroup_version(cg), "v2", "real v2: version");
	ok(exists(pathf("%s/%s/cgroup.kill", t, name)), "kernel offers cgroup.kill");
	pid = spawn_held(child_sleep, &go);
	r = kiln_cgroup_attach(cg, pid, &e);
	ok(r == 0 && proc_cgroup_is(pid, "", pathf("/%s", name)),
	   "attach: the kernel shows the child in 0::/%s", name);
	show_err(e);
	kiln_error_free(&e);
	release(go);
	r = kiln_cgroup_kill(cg, &e);
	ok(r == 0 && killed_by_sigkill(pid), "kill via cgroup.kill: the child died of SIGKILL");
	show_err(e);
	kiln_error_free(&e);
	is_str(file_text(pathf("%s/%s/cgroup.events", t, name)), "populated 0\nfrozen 0",
	       "cgroup.events: populated 0");
	kiln_cgroup_destroy(cg);
	errno = 0;
	ok(!exists(pathf("%s/%s", t, name)) && errno == ENOENT, "destroy removes the cgroup");
out:
	if (scrub(pathf("%s/%s", t, name)))
		printf("# removed a leftover test cgroup\n");
	umount2(t, MNT_DETACH);
	rmdir(t);
}

static void test_real_v2(void)
{
	int p[2];
	pid_t pid;
	int counts[2] = {0, 0};

	if (geteuid() != 0) {
		skip("real cgroup v2", "not root");
		return;
	}
	if (pipe(p) < 0) {
		ok(0, "pipe");
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		v2_in_child();
		counts[0] = tap_n;
		counts[1] = tap_failed;
		if (write(p[1], counts, sizeof(counts)) != sizeof(counts))
			_exit(1);
		fflush(stdout);
		exit(0); /* not _exit: LeakSanitizer checks this process too */
	}
	close(p[1]);
	if (pid < 0 || read(p[0], counts, sizeof(counts)) != sizeof(counts)) {
		ok(0, "real v2 test child reported back");
	} else {
		tap_n = counts[0];
		tap_failed = counts[1];
	}
	close(p[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

int main(void)
{
	/* Orphans of the fork bomb come back to us to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	test_pure();
	test_fake_v2();
	test_fake_v1();
	test_real_v1();
	test_real_v2();
	return tap_done();
}
