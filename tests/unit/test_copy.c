/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln_copy_tree(): every test builds a real tree under a mkdtemp()
 * directory, copies it, and judges the destination with lstat()/readlink()
 * (and the host side: symlink targets, /etc/passwd), never only the return
 * value. Run as root for the chown, setuid and device-node cases; those are
 * TAP-skipped otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "sandbox/copy.h"
#include "tap.h"

#define TIB (1ULL << 40)
#define GIB (1ULL << 30)
#define MIB (1ULL << 20)

static char base[64];
static char shm_base[64];
/* Set by the small hole tests, which run first: without working hole
 * preservation the 1 TiB copy would write a terabyte of zeros. */
static bool holes_ok;

static void skip(const char *why)
{
	printf("ok %d # SKIP %s\n", ++tap_n, why);
	fflush(stdout);
}

__attribute__((noreturn)) static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

/* base/rel, in a rotating static buffer (several may be live in one call). */
static const char *at(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", base, rel);
	return b;
}

static void mklink(const char *target, int dfd, const char *name)
{
	if (symlinkat(target, dfd, name) < 0)
		die(name);
}

/* mkdir base/rel (mode 0755) and open it. */
static int dir_new(const char *rel)
{
	int fd;

	if (mkdir(at(rel), 0755) < 0)
		die(at(rel));
	fd = open(at(rel), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(at(rel));
	return fd;
}

static int subdir(int dfd, const char *name, mode_t mode)
{
	int fd;

	if (mkdirat(dfd, name, 0700) < 0)
		die(name);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		die(name);
	if (fchmod(fd, mode) < 0)
		die(name);
	return fd;
}

static void put(int dfd, const char *name, const char *data, mode_t mode)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		die(name);
	if (write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		die(name);
	if (fchmod(fd, mode) < 0)
		die(name);
	close(fd);
}

/* Whole content of dfd/name (never through a symlink), NUL-terminated, or
 * NULL. Caller frees. */
static char *slurp(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = calloc(1, 65536);
	n = buf ? read(fd, buf, 65535) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static bool content_is(int dfd, const char *name, const char *want)
{
	char *got = slurp(dfd, name);
	bool eq = got != NULL && strcmp(got, want) == 0;

	if (!eq)
		printf("#   %s: got '%s', want '%s'\n", name, got ? got : "(none)", want);
	free(got);
	return eq;
}

/* lstat mode of dfd/name, 0 when it does not exist. */
static mode_t lmode(int dfd, const char *name)
{
	struct stat sb;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return sb.st_mode;
}

static bool exists(int dfd, const char *name)
{
	return lmode(dfd, name) != 0;
}

static bool link_is(int dfd, const char *name, const char *want)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);

	if (!S_ISLNK(lmode(dfd, name)) || n < 0)
		return false;
	buf[n] = '\0';
	return strcmp(buf, want) == 0;
}

static struct kiln_copy_opts opts_default(void)
{
	return (struct kiln_copy_opts){.uid = (uid_t)-1, .gid = (gid_t)-1};
}

static bool has_skip(const struct kiln_copy_stats *st, const char *needle)
{
	size_t i;

	for (i = 0; st->skipped != NULL && st->skipped[i] != NULL; i++)
		if (strstr(st->skipped[i], needle) != NULL)
			return true;
	return false;
}

/* No recorded skip contains a byte outside printable ASCII. */
static bool skips_printable(const struct kiln_copy_stats *st)
{
	size_t i;
	const unsigned char *p;

	for (i = 0; st->skipped != NULL && st->skipped[i] != NULL; i++)
		for (p = (const unsigned char *)st->skipped[i]; *p; p++)
			if (*p < 0x20 || *p >= 0x7f)
				return false;
	return true;
}

static void show_err(struct kiln_error *err)
{
	if (err != NULL)
		printf("#   error: %s (code %d)\n", err->msg, err->code);
}

/* --- tree walking on the host side ---------------------------------------- */

static int scan_regular;
static bool scan_found;
static const char *scan_needle;

static int scan_cb(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)type;
	(void)f;
	if (S_ISREG(sb->st_mode)) {
		char *data = slurp(AT_FDCWD, path);

		scan_regular++;
		if (data != NULL && scan_needle != NULL && strstr(data, scan_needle) != NULL)
			scan_found = true;
		free(data);
	}
	return 0;
}

/* Count regular files under path (never following symlinks); report
 * whether any holds needle. */
static int scan_tree(const char *path, const char *needle, bool *found)
{
	scan_regular = 0;
	scan_found = false;
	scan_needle = needle;
	if (nftw(path, scan_cb, 16, FTW_PHYS) < 0)
		return -1;
	if (found != NULL)
		*found = scan_found;
	return scan_regular;
}

static int chmod_cb(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)f;
	if (type == FTW_D)
		chmod(path, 0700);
	(void)sb;
	return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb;
	(void)type;
	(void)f;
	remove(path);
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, chmod_cb, 16, FTW_PHYS);
	nftw(path, rm_cb, 16, FTW_PHYS | FTW_DEPTH);
}

/* --- tests ---------------------------------------------------------------- */

static void test_basic(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	int src = dir_new("basic"), dst, d, ro;
	struct stat sb;
	int r;

	close(src);
	src = dir_new("basic/src");
	dst = dir_new("basic/dst");
	put(src, "hello", "hello world\n", 0640);
	put(src, "empty", "", 0604);
	put(src, "new\nline", "nl", 0644);
	d = subdir(src, "d", 0750);
	put(d, "f", "inner", 0600);
	ro = subdir(src, "ro", 0700);
	put(ro, "x", "x", 0444);
	fchmod(ro, 0555);
	close(d);
	close(ro);

	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "basic: copy succeeds");
	show_err(err);
	ok(content_is(dst, "hello", "hello world\n"), "basic: file content");
	is_int(lmode(dst, "hello"), S_IFREG | 0640, "basic: file mode 0640");
	ok(content_is(dst, "empty", ""), "basic: empty file");
	is_int(lmode(dst, "empty"), S_IFREG | 0604, "basic: empty file mode");
	ok(content_is(dst, "new\nline", "nl"), "basic: name with a newline copied");
	is_int(lmode(dst, "d"), S_IFDIR | 0750, "basic: dir mode 0750");
	ok(content_is(dst, "d/f", "inner"), "basic: nested file content");
	is_int(lmode(dst, "d/f"), S_IFREG | 0600, "basic: nested file mode");
	is_int(lmode(dst, "ro"), S_IFDIR | 0555, "basic: read-only dir mode kept");
	ok(content_is(dst, "ro/x", "x"), "basic: read-only dir was filled");
	ok(fstatat(dst, "hello", &sb, AT_SYMLINK_NOFOLLOW) == 0 && sb.st_uid == geteuid(),
	   "basic: uid -1 keeps the creator as owner");
	is_int(st.files, 5, "basic: stats files");
	is_int(st.dirs, 2, "basic: stats dirs");
	is_int(st.symlinks, 0, "basic: stats symlinks");
	is_int(st.bytes, 12 + 0 + 2 + 5 + 1, "basic: stats bytes");
	is_int(st.nskipped, 0, "basic: nothing skipped");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

/* A read-only source directory must still be filled: the copy creates it
 * 0700 and applies the mode last. Root ignores the mode bits, so as root the
 * copy runs in a child without any capability. */
static void test_readonly_dir(void)
{
	struct kiln_copy_opts o = opts_default();
	int src, dst, ro, status = -1;
	pid_t pid;

	close(dir_new("rodir"));
	src = dir_new("rodir/src");
	dst = dir_new("rodir/dst");
	ro = subdir(src, "ro", 0700);
	put(ro, "x", "x", 0444);
	close(subdir(ro, "sub", 0500));
	fchmod(ro, 0555);
	close(ro);

	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];
		struct kiln_error *err = NULL;
		int r;

		memset(d, 0, sizeof(d));
		if (geteuid() == 0 && syscall(SYS_capset, &h, d) < 0)
			_exit(3);
		r = kiln_copy_tree(src, dst, &o, NULL, &err);
		if (r < 0)
			printf("#   error: %s\n", err->msg);
		kiln_error_free(&err);
		_exit(r == 0 ? 0 : 1);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "readonly: copy without privileges succeeds (status 0x%x)", (unsigned)status);
	is_int(lmode(dst, "ro"), S_IFDIR | 0555, "readonly: dir mode applied after filling");
	ok(content_is(dst, "ro/x", "x"), "readonly: file inside the read-only dir copied");
	is_int(lmode(dst, "ro/sub"), S_IFDIR | 0500, "readonly: nested read-only dir copied");
	close(src);
	close(dst);
}

static void test_privbits(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	int src, dst, sg, inner, sticky;
	struct stat sb;
	int r;

	close(dir_new("priv"));
	src = dir_new("priv/src");
	dst = dir_new("priv/dst");
	put(src, "suid", "#!/bin/sh\n", 0755);
	if (fchmodat(src, "suid", 06755, 0) < 0 || fstatat(src, "suid", &sb, 0) < 0 ||
	    (sb.st_mode & 07777) != 06755) {
		skip("privbits: cannot create a setuid+setgid file here");
		close(src);
		close(dst);
		return;
	}
	sticky = subdir(src, "sticky", 01777);
	sg = subdir(src, "sgid", 02775);
	/* On ext4 a directory made inside a setgid directory inherits S_ISGID. */
	inner = subdir(sg, "inner", 0755);
	put(inner, "f", "f", 02755);
	close(inner);
	close(sg);
	close(sticky);

	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "privbits: copy succeeds");
	show_err(err);
	is_int(lmode(dst, "suid"), S_IFREG | 0755, "privbits: setuid+setgid dropped from file");
	is_int(lmode(dst, "sticky"), S_IFDIR | 0777, "privbits: sticky dropped from dir");
	is_int(lmode(dst, "sgid"), S_IFDIR | 0775, "privbits: setgid dropped from dir");
	is_int(lmode(dst, "sgid/inner"), S_IFDIR | 0755,
	       "privbits: no setgid inherited by a subdirectory");
	is_int(lmode(dst, "sgid/inner/f"), S_IFREG | 0755,
	       "privbits: no setgid on a file in a setgid dir");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

static void test_symlinks(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	char *passwd = slurp(AT_FDCWD, "/etc/passwd");
	char line[128] = "";
	int src, dst, real, r, nreg;
	bool found = true;

	if (passwd != NULL)
		sscanf(passwd, "%127[^\n]", line);
	close(dir_new("links"));
	src = dir_new("links/src");
	dst = dir_new("links/dst");
	real = subdir(src, "realdir", 0755);
	put(real, "file", "real", 0644);
	close(real);
	mklink("/etc/passwd", src, "pw");
	mklink("../../etc/shadow", src, "up");
	mklink("realdir", src, "linkdir");
	mklink("/etc", src, "etc");
	mklink(".", src, "self");

	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "symlinks: copy succeeds");
	show_err(err);
	ok(link_is(dst, "pw", "/etc/passwd"), "symlinks: /etc/passwd link recreated as a link");
	ok(link_is(dst, "up", "../../etc/shadow"), "symlinks: ../ link recreated verbatim");
	ok(link_is(dst, "linkdir", "realdir"), "symlinks: link to a dir recreated as a link");
	ok(link_is(dst, "etc", "/etc"), "symlinks: link to /etc recreated as a link");
	ok(link_is(dst, "self", "."), "symlinks: self loop recreated as a link");
	ok(content_is(dst, "realdir/file", "real"), "symlinks: the real dir was copied");
	nreg = scan_tree(at("links/dst"), line[0] ? line : NULL, &found);
	is_int(nreg, 1, "symlinks: exactly one regular file in dst (nothing traversed)");
	ok(line[0] != '\0' && !found, "symlinks: /etc/passwd content not copied anywhere");
	is_int(st.symlinks, 5, "symlinks: stats symlinks");
	is_int(st.files, 1, "symlinks: stats files");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	free(passwd);
	close(src);
	close(dst);
}

static void test_hardlink(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	struct stat a, b;
	int src, dst, r;

	close(dir_new("hard"));
	src = dir_new("hard/src");
	dst = dir_new("hard/dst");
	put(src, "a", "shared", 0644);
	if (linkat(src, "a", src, "b", 0) < 0)
		die("link");
	/* O_PATH directory fds are enough for both sides. */
	close(src);
	close(dst);
	src = open(at("hard/src"), O_PATH | O_DIRECTORY | O_CLOEXEC);
	dst = open(at("hard/dst"), O_PATH | O_DIRECTORY | O_CLOEXEC);
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "hardlink: copy between O_PATH dir fds succeeds");
	show_err(err);
	ok(fstatat(dst, "a", &a, AT_SYMLINK_NOFOLLOW) == 0 &&
		   fstatat(dst, "b", &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino != b.st_ino &&
		   a.st_nlink == 1 && b.st_nlink == 1,
	   "hardlink: copied as two independent inodes");
	ok(content_is(dst, "a", "shared") && content_is(dst, "b", "shared"),
	   "hardlink: both copies have the content");
	is_int(st.files, 2, "hardlink: stats files");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

static int bind_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0 || strlen(path) >= sizeof(sa.sun_path))
		die("socket");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0)
		die("bind");
	return s;
}

static void test_special(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	int src, dst, sock, r;

	close(dir_new("special"));
	src = dir_new("special/src");
	dst = dir_new("special/dst");
	if (mkfifoat(src, "fifo", 0644) < 0 || mkfifoat(src, "p\nq", 0644) < 0)
		die("mkfifo");
	sock = bind_socket(at("special/src/sock"));
	put(src, "plain", "plain", 0644);

	o.skip_special = true;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "special: copy with skip_special succeeds (and did not block on the fifo)");
	show_err(err);
	ok(!exists(dst, "fifo") && !exists(dst, "p\nq"), "special: fifos not created in dst");
	ok(!exists(dst, "sock"), "special: socket not created in dst");
	ok(content_is(dst, "plain", "plain"), "special: regular file beside them copied");
	is_int(st.nskipped, 3, "special: three entries recorded as skipped");
	ok(has_skip(&st, "fifo: fifo"), "special: fifo recorded");
	ok(has_skip(&st, "sock: socket"), "special: socket recorded");
	ok(has_skip(&st, "p\\x0aq: fifo"), "special: newline in a recorded name escaped as \\x0a");
	ok(skips_printable(&st), "special: records are printable ASCII only");
	ok(st.skipped != NULL && st.skipped[st.nskipped] == NULL,
	   "special: skipped list is NULL-terminated");
	kiln_copy_stats_free(&st);
	ok(st.skipped == NULL && st.nskipped == 0 && st.files == 0,
	   "special: kiln_copy_stats_free resets the struct");
	kiln_error_free(&err);
	close(dst);
	close(src);

	/* Without skip_special a special file is an error. */
	src = dir_new("special/src2");
	dst = dir_new("special/dst2");
	if (mkfifoat(src, "fifo", 0644) < 0)
		die("mkfifo");
	o.skip_special = false;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == ENOTSUP,
	   "special: fifo without skip_special is an ENOTSUP error");
	ok(err != NULL && strstr(err->msg, "copy fifo:") != NULL, "special: error names the entry");
	ok(!exists(dst, "fifo"), "special: fifo not created on error");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);

	/* st == NULL is allowed; nothing may leak (LSan). */
	o.skip_special = true;
	close(dst);
	dst = dir_new("special/dst3");
	r = kiln_copy_tree(src, dst, &o, NULL, &err);
	is_int(r, 0, "special: NULL stats accepted");
	kiln_error_free(&err);
	close(sock);
	close(src);
	close(dst);
}

/* The skip list is bounded: 1000 records, then one line counting the rest. */
static void test_many_skipped(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	char name[32];
	int src, dst, i, r;

	close(dir_new("many"));
	src = dir_new("many/src");
	dst = dir_new("many/dst");
	for (i = 0; i < 1003; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		if (mkfifoat(src, name, 0644) < 0)
			die("mkfifo");
	}
	o.skip_special = true;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "many skips: copy succeeds");
	is_int(st.nskipped, 1001, "many skips: 1000 records plus a summary");
	ok(st.nskipped == 1001 && st.skipped[1000] != NULL && st.skipped[1001] == NULL &&
		   strcmp(st.skipped[1000], "(3 more entries skipped)") == 0,
	   "many skips: summary counts the other 3");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

static void test_device(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	int src, dst, r;

	close(dir_new("dev"));
	src = dir_new("dev/src");
	dst = dir_new("dev/dst");
	if (mknodat(src, "null", S_IFCHR | 0666, makedev(1, 3)) < 0) {
		if (errno != EPERM)
			die("mknod");
		skip("device: mknod not permitted (not root)");
		close(src);
		close(dst);
		return;
	}
	o.skip_special = true;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "device: copy with skip_special succeeds");
	show_err(err);
	ok(!exists(dst, "null"), "device: char device not created in dst");
	ok(has_skip(&st, "null: character device"), "device: char device recorded as skipped");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);

	close(dst);
	dst = dir_new("dev/dst2");
	o.skip_special = false;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == ENOTSUP,
	   "device: char device without skip_special is an error");
	ok(!exists(dst, "null"), "device: not created on error");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

static void test_utf8(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	int src, dst, sub, r;

	close(dir_new("utf8"));
	src = dir_new("utf8/src");
	dst = dir_new("utf8/dst");
	put(src, "bad\xff", "bad", 0644);
	put(src, "good-\xc3\xa9", "good", 0644);
	sub = subdir(src, "sub", 0755);
	put(sub, "\xc0\xafoverlong", "x", 0644);
	close(sub);

	o.skip_invalid_utf8 = true;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "utf8: copy succeeds");
	show_err(err);
	ok(!exists(dst, "bad\xff"), "utf8: invalid name not created");
	ok(!exists(dst, "sub/\xc0\xafoverlong"), "utf8: overlong encoding not created");
	ok(content_is(dst, "good-\xc3\xa9", "good"), "utf8: valid non-ASCII name copied");
	ok(has_skip(&st, "bad\\xff: "), "utf8: skipped name recorded with \\xff escaped");
	ok(has_skip(&st, "sub/\\xc0\\xafoverlong: "), "utf8: nested skipped name has its path");
	ok(skips_printable(&st), "utf8: no raw invalid byte in the records");
	is_int(st.nskipped, 2, "utf8: two names skipped");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);

	/* Without the option the names are copied as they are. */
	close(dst);
	dst = dir_new("utf8/dst2");
	o.skip_invalid_utf8 = false;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "utf8: copy without skipping succeeds");
	ok(content_is(dst, "bad\xff", "bad"), "utf8: invalid name copied verbatim when allowed");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

/* A file of apparent size `size` holding one byte 'Z' at `at_off`. */
static bool make_sparse(int dfd, const char *name, off_t size, off_t at_off)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	bool okay;

	if (fd < 0)
		die(name);
	okay = ftruncate(fd, size) == 0 && pwrite(fd, "Z", 1, at_off) == 1;
	close(fd);
	return okay;
}

static void test_sparse(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	struct stat sb;
	char c[2] = {1, 1};
	int src, dst, fd, r;

	close(dir_new("sparse"));
	src = dir_new("sparse/src");
	dst = dir_new("sparse/dst");
	if (!make_sparse(src, "huge", (off_t)TIB, (off_t)(TIB / 2))) {
		skip("sparse: this filesystem cannot hold a 1 TiB sparse file");
		close(src);
		close(dst);
		return;
	}
	o.max_bytes = GIB;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EFBIG,
	   "sparse: 1 TiB apparent size over a 1 GiB limit is EFBIG");
	show_err(err);
	ok(err != NULL && strstr(err->msg, "copy huge:") != NULL, "sparse: error names the file");
	ok(!exists(dst, "huge"), "sparse: nothing written before the limit check");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);

	if (!holes_ok) {
		skip("sparse: holes are not preserved (see above); not writing 1 TiB");
		close(src);
		close(dst);
		return;
	}
	o.max_bytes = 2 * TIB;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "sparse: copy under a 2 TiB limit succeeds");
	show_err(err);
	ok(fstatat(dst, "huge", &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode),
	   "sparse: copied");
	is_int(sb.st_size, (long long)TIB, "sparse: apparent size 1 TiB");
	ok((unsigned long long)sb.st_blocks * 512 < MIB, "sparse: hole kept (%llu bytes allocated)",
	   (unsigned long long)sb.st_blocks * 512);
	fd = openat(dst, "huge", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ok(fd >= 0 && pread(fd, &c[0], 1, (off_t)(TIB / 2)) == 1 &&
		   pread(fd, &c[1], 1, 4096) == 1 && c[0] == 'Z' && c[1] == 0,
	   "sparse: data byte and hole contents right");
	if (fd >= 0)
		close(fd);
	is_int(st.bytes, (long long)TIB, "sparse: stats bytes is the apparent size");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);

	/* The limit is cumulative over files. */
	src = dir_new("sparse/src2");
	dst = dir_new("sparse/dst2");
	put(src, "a", "0123456789", 0644);
	put(src, "b", "0123456789", 0644);
	o.max_bytes = 19;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EFBIG, "limits: 20 bytes over max_bytes 19");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(dst);
	dst = dir_new("sparse/dst3");
	o.max_bytes = 20;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "limits: 20 bytes within max_bytes 20");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

/* Fill dfd/name with `size` bytes of a position-dependent pattern. */
static void put_pattern(int dfd, const char *name, size_t size)
{
	unsigned char *buf = malloc(size);
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	size_t i;

	if (buf == NULL || fd < 0)
		die(name);
	for (i = 0; i < size; i++)
		buf[i] = (unsigned char)((i * 2654435761u) >> 13);
	if (write(fd, buf, size) != (ssize_t)size)
		die(name);
	close(fd);
	free(buf);
}

static bool same_content(int d1, int d2, const char *name)
{
	int a = openat(d1, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int b = openat(d2, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	static char ba[65536], bb[65536];
	bool same = a >= 0 && b >= 0;

	while (same) {
		ssize_t na = read(a, ba, sizeof(ba)), nb = read(b, bb, sizeof(bb));

		if (na != nb || na < 0 || memcmp(ba, bb, (size_t)na) != 0)
			same = false;
		if (na <= 0)
			break;
	}
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return same;
}

/* Between filesystems (tmpfs /dev/shm -> the test dir and back), where
 * copy_file_range() may refuse and read/write must take over. */
static void test_cross_fs(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	struct statfs a, b;
	struct stat sb;
	int shm, src, dst, back, fd, r;

	if (statfs("/dev/shm", &a) < 0 || statfs(base, &b) < 0 ||
	    mkdtemp(strcpy(shm_base, "/dev/shm/kiln-copy-test.XXXXXX")) == NULL) {
		shm_base[0] = '\0';
		skip("cross-fs: no /dev/shm");
		return;
	}
	shm = open(shm_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	src = subdir(shm, "src", 0755);
	put_pattern(src, "big", 3 * MIB + 123);
	fd = openat(src, "holey", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || pwrite(fd, "head", 4, 0) != 4 || pwrite(fd, "tail", 4, 64 * MIB) != 4 ||
	    ftruncate(fd, 128 * MIB) < 0)
		die("holey");
	close(fd);

	close(dir_new("xfs"));
	dst = dir_new("xfs/dst");
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "cross-fs: tmpfs -> test dir copy succeeds (%s)",
	       a.f_type == b.f_type ? "same fs type" : "different fs types");
	show_err(err);
	ok(same_content(src, dst, "big"), "cross-fs: 3 MiB file identical");
	ok(same_content(src, dst, "holey"), "cross-fs: sparse file identical");
	ok(fstatat(dst, "holey", &sb, AT_SYMLINK_NOFOLLOW) == 0 && sb.st_size == 128 * (off_t)MIB &&
		   (unsigned long long)sb.st_blocks * 512 < MIB,
	   "cross-fs: holes kept");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);

	back = subdir(shm, "back", 0755);
	r = kiln_copy_tree(dst, back, &o, &st, &err);
	is_int(r, 0, "cross-fs: test dir -> tmpfs copy succeeds");
	show_err(err);
	ok(same_content(dst, back, "big") && same_content(dst, back, "holey"),
	   "cross-fs: contents identical after the round trip");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(back);
	close(src);
	close(dst);
	close(shm);
}

static void test_same_fs_big(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	struct stat sb;
	int src, dst, fd, r;

	close(dir_new("big"));
	src = dir_new("big/src");
	dst = dir_new("big/dst");
	put_pattern(src, "big", 5 * MIB + 7);
	fd = openat(src, "holey", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || pwrite(fd, "head", 4, 0) != 4 || pwrite(fd, "mid", 3, 8 * MIB) != 3 ||
	    ftruncate(fd, 16 * MIB) < 0)
		die("holey");
	close(fd);
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "same-fs: copy succeeds");
	show_err(err);
	ok(same_content(src, dst, "big"), "same-fs: 5 MiB file identical");
	ok(same_content(src, dst, "holey"), "same-fs: file with a hole in the middle identical");
	holes_ok = fstatat(dst, "holey", &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		   sb.st_size == 16 * (off_t)MIB && (unsigned long long)sb.st_blocks * 512 < MIB;
	ok(holes_ok, "same-fs: holes kept");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

static void test_max_files(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	int src, dst, d, r;

	close(dir_new("files"));
	src = dir_new("files/src");
	dst = dir_new("files/dst");
	put(src, "1", "", 0644);
	put(src, "2", "", 0644);
	d = subdir(src, "d", 0755);
	put(d, "3", "", 0644);
	close(d);
	if (mkfifoat(src, "p", 0644) < 0)
		die("mkfifo");
	/* 5 entries: 1, 2, d, d/3, p (skipped entries count too). */
	o.skip_special = true;
	o.max_files = 5;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "max_files: 5 entries within a limit of 5");
	show_err(err);
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(dst);

	dst = dir_new("files/dst2");
	o.max_files = 4;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EMLINK,
	   "max_files: 5 entries over a limit of 4 is EMLINK");
	show_err(err);
	ok(st.files + st.dirs + st.nskipped <= 4, "max_files: no more than 4 entries handled");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

/* Nest `levels` directories named "a", "b", "c", ... under dfd; put a file
 * in the deepest. */
static void make_chain(int dfd, int levels)
{
	int fd = dup(dfd), i;

	for (i = 0; i < levels; i++) {
		char name[2] = {(char)('a' + i % 26), 0};
		int next = subdir(fd, name, 0755);

		close(fd);
		fd = next;
	}
	put(fd, "leaf", "leaf", 0644);
	close(fd);
}

static void test_max_depth(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	int src, dst, r;

	close(dir_new("depth"));
	src = dir_new("depth/src");
	dst = dir_new("depth/dst");
	make_chain(src, 3);
	o.max_depth = 3;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "max_depth: 3 levels within a limit of 3");
	ok(content_is(dst, "a/b/c/leaf", "leaf"), "max_depth: deepest file copied");
	show_err(err);
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(dst);

	dst = dir_new("depth/dst2");
	o.max_depth = 2;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == ELOOP, "max_depth: 3 levels over 2 is ELOOP");
	ok(err != NULL && strstr(err->msg, "copy a/b/c:") != NULL,
	   "max_depth: error names the relative path");
	show_err(err);
	ok(exists(dst, "a/b") && !exists(dst, "a/b/c"), "max_depth: too-deep dir not created");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);

	/* Default limit 256: 256 levels pass, 257 do not. */
	src = dir_new("depth/src256");
	dst = dir_new("depth/dst256");
	make_chain(src, 256);
	o.max_depth = 0;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "max_depth: 256 levels within the default");
	show_err(err);
	is_int(st.dirs, 256, "max_depth: 256 dirs created");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);

	src = dir_new("depth/src257");
	dst = dir_new("depth/dst257");
	make_chain(src, 257);
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == ELOOP, "max_depth: 257 levels over the default");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);

	o.max_depth = 100000;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EINVAL, "max_depth: absurd limit refused");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

static void test_existing_dst(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	int top, src, dst, sd, victims, r;

	top = dir_new("exist");
	victims = dir_new("exist/victims");
	put(victims, "victim", "original\n", 0644);
	close(subdir(victims, "vdir", 0755));

	src = dir_new("exist/src1");
	dst = dir_new("exist/dst1");
	put(src, "f", "evil\n", 0644);
	mklink(at("exist/victims/victim"), dst, "f");
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EEXIST,
	   "existing: file over a dst symlink is EEXIST");
	show_err(err);
	ok(content_is(victims, "victim", "original\n"), "existing: symlink target unchanged");
	ok(link_is(dst, "f", at("exist/victims/victim")), "existing: dst symlink left alone");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);

	src = dir_new("exist/src2");
	dst = dir_new("exist/dst2");
	sd = subdir(src, "d", 0755);
	put(sd, "g", "evil\n", 0644);
	close(sd);
	mklink(at("exist/victims/vdir"), dst, "d");
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EEXIST,
	   "existing: dir over a dst symlink to a dir is EEXIST");
	ok(!exists(victims, "vdir/g"), "existing: nothing written through the dir symlink");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);

	src = dir_new("exist/src3");
	dst = dir_new("exist/dst3");
	put(src, "n", "evil\n", 0644);
	mklink(at("exist/victims/created"), dst, "n");
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EEXIST,
	   "existing: file over a dangling dst symlink is EEXIST");
	ok(!exists(victims, "created"), "existing: dangling symlink target not created");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);

	src = dir_new("exist/src4");
	dst = dir_new("exist/dst4");
	mklink("/etc/passwd", src, "s\xfe");
	put(dst, "s\xfe", "mine\n", 0644);
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EEXIST,
	   "existing: symlink over an existing dst file is EEXIST");
	ok(content_is(dst, "s\xfe", "mine\n"), "existing: dst file unchanged");
	ok(err != NULL && strstr(err->msg, "copy s\\xfe:") != NULL &&
		   strchr(err->msg, '\xfe') == NULL,
	   "existing: invalid byte escaped in the error message");
	show_err(err);
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);

	/* The destination inside the source must not recurse into itself. */
	src = dir_new("exist/src5");
	put(src, "x", "x", 0644);
	dst = dir_new("exist/src5/out");
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EINVAL,
	   "existing: destination inside the source refused");
	show_err(err);
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	r = kiln_copy_tree(src, src, &o, &st, &err);
	ok(r == -1 && err != NULL && err->code == EINVAL,
	   "existing: source == destination refused");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
	close(victims);
	close(top);
}

static void test_chown(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	const char *names[] = {"f", "d", "d/g", "l"};
	int src, dst, d, r;
	size_t i;

	if (geteuid() != 0) {
		skip("chown: not root");
		return;
	}
	close(dir_new("chown"));
	src = dir_new("chown/src");
	dst = dir_new("chown/dst");
	put(src, "f", "f", 0644);
	d = subdir(src, "d", 0755);
	put(d, "g", "g", 0600);
	close(d);
	mklink("f", src, "l");
	o.uid = 12345;
	o.gid = 23456;
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "chown: copy succeeds");
	show_err(err);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct stat sb;

		ok(fstatat(dst, names[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && sb.st_uid == 12345 &&
			   sb.st_gid == 23456,
		   "chown: %s owned by 12345:23456", names[i]);
	}
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

static void test_mtime(void)
{
	struct kiln_copy_opts o = opts_default();
	struct kiln_copy_stats st = {0};
	struct kiln_error *err = NULL;
	struct timespec tf[2] = {{1000000000, 500}, {1000000000, 123456789}};
	struct timespec tl[2] = {{1200000000, 0}, {1200000000, 0}};
	struct timespec td[2] = {{1100000000, 0}, {1100000000, 0}};
	struct stat f, l, d;
	int src, dst, sd, r;

	close(dir_new("mtime"));
	src = dir_new("mtime/src");
	dst = dir_new("mtime/dst");
	put(src, "f", "f", 0644);
	mklink("f", src, "l");
	sd = subdir(src, "d", 0755);
	put(sd, "inner", "i", 0644);
	if (utimensat(src, "f", tf, 0) < 0 || utimensat(src, "l", tl, AT_SYMLINK_NOFOLLOW) < 0 ||
	    futimens(sd, td) < 0)
		die("utimensat");
	close(sd);
	r = kiln_copy_tree(src, dst, &o, &st, &err);
	is_int(r, 0, "mtime: copy succeeds");
	show_err(err);
	ok(fstatat(dst, "f", &f, AT_SYMLINK_NOFOLLOW) == 0 && f.st_mtim.tv_sec == 1000000000 &&
		   f.st_mtim.tv_nsec == 123456789,
	   "mtime: file mtime preserved to the nanosecond");
	ok(fstatat(dst, "l", &l, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(l.st_mode) &&
		   l.st_mtim.tv_sec == 1200000000,
	   "mtime: symlink mtime preserved");
	ok(fstatat(dst, "d", &d, AT_SYMLINK_NOFOLLOW) == 0 && d.st_mtim.tv_sec == 1100000000,
	   "mtime: dir mtime preserved after it was filled");
	kiln_copy_stats_free(&st);
	kiln_error_free(&err);
	close(src);
	close(dst);
}

int main(void)
{
	alarm(100); /* a fifo opened by mistake would block forever */
	umask(022);
	if (mkdtemp(strcpy(base, "/tmp/kiln-copy-test.XXXXXX")) == NULL)
		die("mkdtemp");

	test_basic();
	test_readonly_dir();
	test_privbits();
	test_symlinks();
	test_hardlink();
	test_special();
	test_many_skipped();
	test_device();
	test_utf8();
	test_same_fs_big();
	test_cross_fs();
	test_sparse();
	test_max_files();
	test_max_depth();
	test_existing_dst();
	test_chown();
	test_mtime();

	rm_rf(base);
	if (shm_base[0] != '\0')
		rm_rf(shm_base);
	return tap_done();
}
