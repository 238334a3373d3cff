/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The blob store, judged from the filesystem: digests against known values,
 * one file per content, nothing left in tmp/, a damaged blob refused and
 * moved aside, caller-supplied names that are not digests refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "store/cas.h"
#include "tap.h"

#define HELLO_SHA "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char root[64];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void rm_rf(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Entries of a directory, "." and ".." not counted; -1 if it cannot be read. */
static int count_entries(const char *path, char *first, size_t len)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == 0 && first != NULL)
			snprintf(first, len, "%s", e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void blob_path(const char *dir, const char *hex, char *buf, size_t len)
{
	snprintf(buf, len, "%s/sha256/%.2s/%s", dir, hex, hex + 2);
}

static int put_buf(struct kiln_cas *cas, const void *buf, size_t len, uint64_t max,
		   char hex[KILN_SHA256_HEX], struct kiln_error **err)
{
	struct kiln_cas_writer *w = NULL;
	uint64_t size = 0;

	if (kiln_cas_writer_new(cas, max, &w, err) < 0)
		return -1;
	if (kiln_cas_write(w, buf, len, err) < 0) {
		kiln_cas_abort(w);
		return -1;
	}
	if (kiln_cas_commit(w, hex, &size, err) < 0)
		return -1;
	return size == len
		       ? 0
		       : kiln_error_set(err, 0, "size %llu != %zu", (unsigned long long)size, len);
}

static char *read_fd_all(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);

	for (;;) {
		ssize_t r;

		if (n == cap)
			b = realloc(b, cap *= 2);
		r = read(fd, b + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return b;
}

static void test_open(const char *dir)
{
	struct kiln_cas *cas = NULL;
	struct kiln_error *err = NULL;
	char p[512];
	struct stat st;

	ok(kiln_cas_open(dir, &cas, &err) == 0, "open %s", dir);
	if (err)
		printf("# %s\n", err->msg);
	kiln_error_free(&err);
	ok(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "DIR is 0700");
	snprintf(p, sizeof(p), "%s/tmp", dir);
	ok(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "DIR/tmp exists");
	snprintf(p, sizeof(p), "%s/corrupt", dir);
	ok(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "DIR/corrupt exists");
	kiln_cas_close(cas);
	/* Opening again is fine. */
	ok(kiln_cas_open(dir, &cas, &err) == 0, "open again");
	kiln_error_free(&err);
	kiln_cas_close(cas);
}

static void test_hex_valid(void)
{
	char s65[66], s63[64];

	memset(s65, 'a', 65);
	s65[65] = '\0';
	memset(s63, 'a', 63);
	s63[63] = '\0';
	ok(kiln_sha256_hex_valid(HELLO_SHA), "lowercase 64 hex valid");
	ok(!kiln_sha256_hex_valid(s63), "63 chars invalid");
	ok(!kiln_sha256_hex_valid(s65), "65 chars invalid");
	ok(!kiln_sha256_hex_valid(
		   "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"),
	   "uppercase invalid");
	ok(!kiln_sha256_hex_valid("../../etc/passwd"), "path invalid");
	ok(!kiln_sha256_hex_valid(""), "empty invalid");
	ok(!kiln_sha256_hex_valid(NULL), "NULL invalid");
	ok(!kiln_sha256_hex_valid(
		   "g cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982"),
	   "non-hex invalid");
	ok(!kiln_sha256_hex_valid(
		   "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b98/4"),
	   "slash invalid");
}

static void test_sha_buf(void)
{
	char hex[KILN_SHA256_HEX];

	kiln_sha256_buf("hello", 5, hex);
	is_str(hex, HELLO_SHA, "sha256(hello)");
	kiln_sha256_buf("", 0, hex);
	is_str(hex, EMPTY_SHA, "sha256()");
}

static void test_put_dedup(const char *dir)
{
	struct kiln_cas *cas = NULL;
	struct kiln_error *err = NULL;
	char hex[KILN_SHA256_HEX] = "", hex2[KILN_SHA256_HEX] = "", p[512], fan[512];
	struct stat st;
	uint64_t size = 0;
	size_t len = 0;
	char *data;
	int fd = -1;

	if (kiln_cas_open(dir, &cas, &err) < 0) {
		ok(0, "open: %s", err->msg);
		kiln_error_free(&err);
		return;
	}
	ok(put_buf(cas, "hello", 5, 0, hex, &err) == 0, "put hello");
	kiln_error_free(&err);
	is_str(hex, HELLO_SHA, "digest of hello");
	blob_path(dir, HELLO_SHA, p, sizeof(p));
	ok(stat(p, &st) == 0 && S_ISREG(st.st_mode), "blob at sha256/2c/f24d...");
	is_int(st.st_mode & 0777, 0444, "blob is 0444");
	is_int(st.st_size, 5, "blob has 5 bytes");
	ok(kiln_cas_has(cas, HELLO_SHA), "has(hello)");

	ok(put_buf(cas, "hello", 5, 0, hex2, &err) == 0, "put hello again");
	kiln_error_free(&err);
	is_str(hex2, hex, "same digest");
	snprintf(fan, sizeof(fan), "%s/sha256/2c", dir);
	is_int(count_entries(fan, NULL, 0), 1, "one file for the same content");
	snprintf(fan, sizeof(fan), "%s/tmp", dir);
	is_int(count_entries(fan, NULL, 0), 0, "nothing left in tmp/");

	ok(kiln_cas_open_blob(cas, HELLO_SHA, &fd, &size, &err) == 0, "open_blob hello");
	kiln_error_free(&err);
	is_int(size, 5, "open_blob size");
	is_int(lseek(fd, 0, SEEK_CUR), 0, "fd at offset 0");
	data = read_fd_all(fd, &len);
	ok(len == 5 && memcmp(data, "hello", 5) == 0, "open_blob content");
	free(data);
	ok((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "blob fd is O_CLOEXEC");
	close(fd);

	ok(put_buf(cas, "", 0, 0, hex, &err) == 0, "put empty blob");
	kiln_error_free(&err);
	is_str(hex, EMPTY_SHA, "digest of empty blob");
	ok(kiln_cas_open_blob(cas, EMPTY_SHA, &fd, &size, &err) == 0 && size == 0,
	   "open empty blob");
	kiln_error_free(&err);
	if (fd >= 0)
		close(fd);
	kiln_cas_close(cas);
}

static void test_put_fd_large(const char *dir)
{
	struct kiln_cas *cas = NULL;
	struct kiln_error *err = NULL;
	size_t n = 300000, i, len = 0;
	char *data = malloc(n), *back;
	char want[KILN_SHA256_HEX], hex[KILN_SHA256_HEX] = "", p[512];
	uint64_t size = 0;
	int fd;

	for (i = 0; i < n; i++)
		data[i] = (char)(i * 7 + i / 251);
	kiln_sha256_buf(data, n, want);
	snprintf(p, sizeof(p), "%s.src", dir);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ok(fd >= 0 && write(fd, data, n) == (ssize_t)n && lseek(fd, 0, SEEK_SET) == 0,
	   "source file");
	kiln_cas_open(dir, &cas, &err);
	ok(kiln_cas_put_fd(cas, fd, 0, hex, &size, &err) == 0, "put_fd 300000 bytes");
	kiln_error_free(&err);
	is_str(hex, want, "put_fd digest matches");
	is_int(size, n, "put_fd size");

	/* The same bytes over the cap: EFBIG, nothing stored, nothing left. */
	lseek(fd, 0, SEEK_SET);
	ok(kiln_cas_put_fd(cas, fd, n - 1, hex, &size, &err) < 0 && err && err->code == EFBIG,
	   "put_fd over max_bytes: EFBIG");
	kiln_error_free(&err);
	lseek(fd, 0, SEEK_SET);
	ok(kiln_cas_put_fd(cas, fd, n, hex, &size, &err) == 0, "put_fd exactly max_bytes");
	kiln_error_free(&err);
	close(fd);
	unlink(p);

	fd = -1;
	ok(kiln_cas_open_blob(cas, want, &fd, &size, &err) == 0, "open large blob");
	kiln_error_free(&err);
	back = fd >= 0 ? read_fd_all(fd, &len) : NULL;
	ok(back && len == n && memcmp(back, data, n) == 0, "large blob reads back");
	free(back);
	if (fd >= 0)
		close(fd);
	snprintf(p, sizeof(p), "%s/tmp", dir);
	is_int(count_entries(p, NULL, 0), 0, "nothing left in tmp/");
	kiln_cas_close(cas);
	free(data);
}

static void test_max_abort(const char *dir)
{
	struct kiln_cas *cas = NULL;
	struct kiln_cas_writer *w = NULL;
	struct kiln_error *err = NULL;
	char hex[KILN_SHA256_HEX], p[512], want[KILN_SHA256_HEX];
	uint64_t size;

	kiln_cas_open(dir, &cas, &err);
	snprintf(p, sizeof(p), "%s/tmp", dir);

	ok(kiln_cas_writer_new(cas, 10, &w, &err) == 0, "writer max 10");
	ok(kiln_cas_write(w, "12345", 5, &err) == 0, "write 5");
	ok(kiln_cas_write(w, "123456", 6, &err) < 0 && err && err->code == EFBIG,
	   "write to 11 bytes: EFBIG");
	kiln_error_free(&err);
	ok(kiln_cas_write(w, "1", 1, &err) < 0, "writes after a failure refused");
	kiln_error_free(&err);
	ok(kiln_cas_commit(w, hex, &size, &err) < 0, "commit after a failure refused");
	kiln_error_free(&err);
	is_int(count_entries(p, NULL, 0), 0, "nothing left in tmp/ after failed commit");

	ok(kiln_cas_writer_new(cas, 0, &w, &err) == 0, "writer");
	ok(kiln_cas_write(w, "partial data", 12, &err) == 0, "write");
	kiln_cas_abort(w);
	is_int(count_entries(p, NULL, 0), 0, "abort leaves nothing in tmp/");
	kiln_sha256_buf("partial data", 12, want);
	ok(!kiln_cas_has(cas, want), "aborted blob not stored");
	kiln_cas_abort(NULL);
	ok(1, "abort(NULL) is fine");

	ok(put_buf(cas, "0123456789", 10, 10, hex, &err) == 0, "exactly max_bytes fits");
	kiln_error_free(&err);
	kiln_cas_close(cas);
}

static void test_corrupt(const char *dir)
{
	struct kiln_cas *cas = NULL;
	struct kiln_error *err = NULL;
	const char *text = "some artifact content";
	char hex[KILN_SHA256_HEX], p[512], cdir[512], first[256] = "";
	uint64_t size = 0;
	int fd = -1, wfd;

	kiln_cas_open(dir, &cas, &err);
	put_buf(cas, text, strlen(text), 0, hex, &err);
	kiln_error_free(&err);
	blob_path(dir, hex, p, sizeof(p));

	/* Flip one byte on disk, same size. */
	chmod(p, 0644);
	wfd = open(p, O_WRONLY | O_CLOEXEC);
	ok(wfd >= 0 && pwrite(wfd, "S", 1, 0) == 1, "flip a byte in the blob");
	if (wfd >= 0)
		close(wfd);
	ok(kiln_cas_open_blob(cas, hex, &fd, &size, &err) < 0, "corrupt blob refused");
	is_int(err ? err->code : 0, EBADMSG, "with EBADMSG");
	ok(err && strstr(err->msg, "corrupt") != NULL, "message says corrupt: %s",
	   err ? err->msg : "");
	kiln_error_free(&err);
	is_int(fd, -1, "no fd handed out");
	ok(access(p, F_OK) < 0 && errno == ENOENT, "corrupt blob no longer under its name");
	snprintf(cdir, sizeof(cdir), "%s/corrupt", dir);
	is_int(count_entries(cdir, first, sizeof(first)), 1, "one file in corrupt/");
	ok(strncmp(first, hex, 64) == 0, "named after its digest (%s)", first);
	ok(!kiln_cas_has(cas, hex), "has() false after quarantine");
	ok(kiln_cas_open_blob(cas, hex, &fd, &size, &err) < 0 && err && err->code == ENOENT,
	   "then ENOENT");
	kiln_error_free(&err);

	/* Storing the content again restores a good copy. */
	ok(put_buf(cas, text, strlen(text), 0, hex, &err) == 0, "store again");
	kiln_error_free(&err);
	ok(kiln_cas_open_blob(cas, hex, &fd, &size, &err) == 0, "good copy opens");
	kiln_error_free(&err);
	if (fd >= 0)
		close(fd);
	fd = -1;

	/* A blob of the wrong size is replaced at the next commit. */
	chmod(p, 0644);
	ok(truncate(p, 3) == 0, "truncate the blob");
	ok(put_buf(cas, text, strlen(text), 0, hex, &err) == 0, "store over a truncated copy");
	kiln_error_free(&err);
	ok(kiln_cas_open_blob(cas, hex, &fd, &size, &err) == 0 && size == strlen(text),
	   "the truncated copy was replaced");
	kiln_error_free(&err);
	if (fd >= 0)
		close(fd);
	fd = -1;
	is_int(count_entries(cdir, NULL, 0), 2, "the truncated copy went to corrupt/");

	/* A symlink planted under a digest name is not followed. */
	{
		char want[KILN_SHA256_HEX], lp[512], fanp[512];

		kiln_sha256_buf("root:x:0:0", 10, want);
		snprintf(fanp, sizeof(fanp), "%s/sha256/%.2s", dir, want);
		mkdir(fanp, 0700);
		blob_path(dir, want, lp, sizeof(lp));
		ok(symlink("/etc/passwd", lp) == 0, "plant a symlink");
		ok(kiln_cas_open_blob(cas, want, &fd, &size, &err) < 0, "symlink refused (%s)",
		   err ? err->msg : "");
		kiln_error_free(&err);
		ok(!kiln_cas_has(cas, want), "has() false for a symlink");
		unlink(lp);
	}
	kiln_cas_close(cas);
}

static void test_bad_names(const char *dir)
{
	static const char *bad[] = {
		"../../etc/passwd",
		"2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
		"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982",
		"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b98244",
		"2c/24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		"",
	};
	struct kiln_cas *cas = NULL;
	struct kiln_error *err = NULL;
	uint64_t size;
	size_t i;
	int fd;

	kiln_cas_open(dir, &cas, &err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = -1;
		ok(kiln_cas_open_blob(cas, bad[i], &fd, &size, &err) < 0 && err &&
			   err->code == EINVAL && fd == -1,
		   "open_blob('%.20s...') EINVAL", bad[i]);
		kiln_error_free(&err);
		ok(!kiln_cas_has(cas, bad[i]), "has('%.20s...') false", bad[i]);
	}
	/* Valid but absent. */
	ok(kiln_cas_open_blob(cas,
			      "00000000000000000000000000000000000000000000000000000000000000"
			      "00",
			      &fd, &size, &err) < 0 &&
		   err && err->code == ENOENT,
	   "absent blob: ENOENT");
	kiln_error_free(&err);
	kiln_cas_close(cas);
}

struct par {
	struct kiln_cas *cas;
	int fails;
	char hex[KILN_SHA256_HEX];
};

static void *par_put(void *arg)
{
	struct par *p = arg;
	struct kiln_error *err = NULL;
	char hex[KILN_SHA256_HEX];
	int i;

	for (i = 0; i < 25; i++) {
		if (put_buf(p->cas, "shared content", 14, 0, hex, &err) < 0 ||
		    strcmp(hex, p->hex) != 0) {
			p->fails++;
			kiln_error_free(&err);
		}
	}
	return NULL;
}

static void test_threads(const char *dir)
{
	struct kiln_cas *cas = NULL;
	struct kiln_error *err = NULL;
	struct par ps[4];
	pthread_t th[4];
	char fan[512];
	int i, fails = 0;

	kiln_cas_open(dir, &cas, &err);
	for (i = 0; i < 4; i++) {
		ps[i].cas = cas;
		ps[i].fails = 0;
		kiln_sha256_buf("shared content", 14, ps[i].hex);
		pthread_create(&th[i], NULL, par_put, &ps[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		fails += ps[i].fails;
	}
	is_int(fails, 0, "100 concurrent puts of one content all succeed");
	snprintf(fan, sizeof(fan), "%s/sha256/%.2s", dir, ps[0].hex);
	is_int(count_entries(fan, NULL, 0), 1, "one file for it");
	snprintf(fan, sizeof(fan), "%s/tmp", dir);
	is_int(count_entries(fan, NULL, 0), 0, "nothing left in tmp/");
	kiln_cas_close(cas);
}

int main(void)
{
	char dir[128];

	snprintf(root, sizeof(root), "/tmp/kiln-test-cas.XXXXXX");
	if (mkdtemp(root) == NULL)
		tap_skip_all("mkdtemp failed");
	snprintf(dir, sizeof(dir), "%s/cas", root);

	test_hex_valid();
	test_sha_buf();
	test_open(dir);
	test_put_dedup(dir);
	test_put_fd_large(dir);
	test_max_abort(dir);
	test_corrupt(dir);
	test_bad_names(dir);
	test_threads(dir);
	rm_rf(root);
	return tap_done();
}
