/* SPDX-License-Identifier: Apache-2.0 */
/* kiln_unpack on archives built here with libarchive, extracted into a
 * temporary directory; every refusal is checked on the file system too. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sandbox/unpack.h"
#include "tap.h"

struct ent {
	const char *path;
	mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; 0 = end */
	mode_t perm;
	const char *data;     /* regular: contents; symlink: target */
	const char *hardlink; /* regular: make it a hard link to this */
	int64_t size;	      /* -1: strlen(data) */
};

static char tmpl[] = "/tmp/kiln-test-unpack.XXXXXX";
static char *root;

/* Write a gzip'd pax tar of the entries (and `zeros` bytes of zeros as a
 * last file "zeros" when non-zero) to a temporary file; return its fd. */
static int build(const struct ent *e, uint64_t zeros)
{
	const struct ent *first = e;
	char path[] = "/tmp/kiln-test-arch.XXXXXX";
	int fd = mkstemp(path);
	struct archive *a = archive_write_new();
	struct archive_entry *ae;
	static char buf[1 << 16];

	unlink(path);
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	archive_write_open_fd(a, fd);
	for (; e && e->type; e++) {
		ae = archive_entry_new();
		archive_entry_set_pathname(ae, e->path);
		archive_entry_set_filetype(ae, e->type);
		archive_entry_set_perm(ae, e->perm ? e->perm : 0644);
		if (e->hardlink)
			archive_entry_set_hardlink(ae, e->hardlink);
		if (e->type == AE_IFLNK)
			archive_entry_set_symlink(ae, e->data);
		if (e->type == AE_IFCHR)
			archive_entry_set_rdev(ae, makedev(1, 3));
		if (e->type == AE_IFREG && !e->hardlink)
			archive_entry_set_size(ae,
					       e->size >= 0 ? e->size : (int64_t)strlen(e->data));
		archive_write_header(a, ae);
		if (e->type == AE_IFREG && !e->hardlink && e->size < 0)
			archive_write_data(a, e->data, strlen(e->data));
		archive_entry_free(ae);
	}
	if (zeros) {
		ae = archive_entry_new();
		archive_entry_set_pathname(ae, "zeros");
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_size(ae, (int64_t)zeros);
		archive_write_header(a, ae);
		memset(buf, 0, sizeof(buf));
		for (uint64_t left = zeros; left > 0;) {
			size_t n = left < sizeof(buf) ? left : sizeof(buf);
			archive_write_data(a, buf, n);
			left -= n;
		}
		archive_entry_free(ae);
	}
	/* An entry that declared more than it wrote (the 1 TiB header): do not
	 * let libarchive pad it at close, just flush what we have. */
	for (const struct ent *x = first; x && x->type; x++)
		if (x->type == AE_IFREG && x->size > (1 << 20)) {
			archive_write_fail(a);
			break;
		}
	archive_write_close(a);
	archive_write_free(a);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* Extract into a fresh subdirectory of root named `name`. */
static int run(const char *name, const struct ent *e, uint64_t zeros, uint64_t max_bytes, char *msg,
	       size_t len)
{
	struct kiln_unpack_limits lim = {max_bytes ? max_bytes : (64u << 20), 1000, 256};
	char dir[PATH_MAX], cwd[PATH_MAX];
	int fd = build(e, zeros), r;

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	mkdir(dir, 0755);
	if (getcwd(cwd, sizeof(cwd)) == NULL || chdir(dir) < 0)
		return -2;
	msg[0] = '\0';
	r = kiln_unpack(fd, &lim, msg, len);
	if (chdir(cwd) < 0)
		return -2;
	close(fd);
	return r;
}

/* root/rel exists (as anything, links not followed) */
static int exists(const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lstat(p, &st) == 0;
}

int main(void)
{
	char msg[512], p[PATH_MAX];
	struct stat st;

	root = mkdtemp(tmpl);
	if (root == NULL)
		tap_skip_all("mkdtemp failed");

	{
		const struct ent e[] = {{"src", AE_IFDIR, 0755, NULL, NULL, -1},
					{"src/a.c", AE_IFREG, 0644, "int main(void){}\n", NULL, -1},
					{"src/run", AE_IFREG, 0755, "#!/bin/sh\n", NULL, -1},
					{"src/ln", AE_IFLNK, 0, "a.c", NULL, -1},
					{"src/hl", AE_IFREG, 0644, NULL, "src/a.c", -1},
					{0}};
		ok(run("good", e, 0, 0, msg, sizeof(msg)) == 0, "a plain archive unpacks (%s)",
		   msg);
		snprintf(p, sizeof(p), "%s/good/src/run", root);
		ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0755, "modes kept");
		snprintf(p, sizeof(p), "%s/good/src/ln", root);
		ok(lstat(p, &st) == 0 && S_ISLNK(st.st_mode), "symlink recreated");
		ok(exists("good/src/hl"), "hard link within the archive");
	}
	{
		const struct ent e[] = {{"../escape", AE_IFREG, 0644, "x", NULL, -1}, {0}};
		ok(run("dotdot", e, 0, 0, msg, sizeof(msg)) < 0 && strstr(msg, "..") != NULL,
		   "'..' refused: %s", msg);
		ok(!exists("escape"), "nothing written next to the target");
	}
	{
		char abs[PATH_MAX];
		const struct ent e[] = {{abs, AE_IFREG, 0644, "x", NULL, -1}, {0}};

		snprintf(abs, sizeof(abs), "%s/absolute-victim", root);
		ok(run("abs", e, 0, 0, msg, sizeof(msg)) < 0, "absolute path refused: %s", msg);
		ok(!exists("absolute-victim"), "absolute target not written");
	}
	{
		char target[PATH_MAX];
		const struct ent e[] = {{"link", AE_IFLNK, 0, target, NULL, -1},
					{"link/through", AE_IFREG, 0644, "x", NULL, -1},
					{0}};

		snprintf(target, sizeof(target), "%s", root);
		ok(run("symwrite", e, 0, 0, msg, sizeof(msg)) < 0,
		   "writing through a symlink refused: %s", msg);
		ok(!exists("through"), "nothing written where the symlink points");
	}
	{
		const struct ent e[] = {{"x", AE_IFREG, 0644, NULL, "../../etc/passwd", -1}, {0}};
		ok(run("hardout", e, 0, 0, msg, sizeof(msg)) < 0, "hard link out refused: %s", msg);
	}
	{
		const struct ent e[] = {{"null", AE_IFCHR, 0666, NULL, NULL, -1}, {0}};
		ok(run("dev", e, 0, 0, msg, sizeof(msg)) < 0 && strstr(msg, "devices") != NULL,
		   "device node refused: %s", msg);
		ok(!exists("dev/null"), "no device created");
	}
	{
		const struct ent e[] = {{"suid", AE_IFREG, 06755, "x", NULL, -1}, {0}};
		ok(run("suid", e, 0, 0, msg, sizeof(msg)) == 0, "setuid entry unpacks");
		snprintf(p, sizeof(p), "%s/suid/suid", root);
		ok(stat(p, &st) == 0 && !(st.st_mode & (S_ISUID | S_ISGID)),
		   "setuid/setgid bits dropped (mode %o)", st.st_mode & 07777);
	}
	{
		ok(run("bomb", NULL, 0, 0, msg, sizeof(msg)) == 0, "empty archive is fine");
		ok(run("bomb2", NULL, 48u << 20, 8u << 20, msg, sizeof(msg)) < 0 &&
			   strstr(msg, "more than") != NULL,
		   "48 MiB of zeros refused at 8 MiB: %s", msg);
		snprintf(p, sizeof(p), "%s/bomb2/zeros", root);
		ok(stat(p, &st) != 0 || st.st_size <= (8 << 20), "at most the limit was written");
	}
	{
		const struct ent e[] = {{"huge", AE_IFREG, 0644, "", NULL, (int64_t)1 << 40}, {0}};
		ok(run("sparse", e, 0, 0, msg, sizeof(msg)) < 0, "1 TiB entry refused: %s", msg);
	}
	{
		static struct ent many[1102];
		static char names[1101][16];

		for (int i = 0; i < 1101; i++) {
			snprintf(names[i], sizeof(names[i]), "f%d", i);
			many[i] = (struct ent){names[i], AE_IFREG, 0644, "", NULL, -1};
		}
		ok(run("many", many, 0, 0, msg, sizeof(msg)) < 0 && strstr(msg, "entries") != NULL,
		   "more than max_files refused: %s", msg);
	}
	{
		char longp[400];
		const struct ent e[] = {{longp, AE_IFREG, 0644, "x", NULL, -1}, {0}};

		memset(longp, 'a', sizeof(longp) - 1);
		longp[sizeof(longp) - 1] = '\0';
		ok(run("long", e, 0, 0, msg, sizeof(msg)) < 0, "path over max_path refused");
	}
	ok(kiln_unpack_path_ok("./a/b", 100) && kiln_unpack_path_ok("a/b/", 100), "path ok");
	ok(!kiln_unpack_path_ok("a/../b", 100) && !kiln_unpack_path_ok("..", 100) &&
		   !kiln_unpack_path_ok("/a", 100) && !kiln_unpack_path_ok("", 100),
	   "path refused");
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			printf("# cleanup of %s failed\n", root);
	}
	return tap_done();
}
