/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content-addressed blob store.
 *
 *   DIR/sha256/ab/cdef...   blobs (0444), named by the SHA-256 of their bytes
 *   DIR/tmp/                blobs being written (O_TMPFILE: nothing visible)
 *   DIR/corrupt/            blobs whose content no longer matched their name
 *
 * Everything below DIR is reached through directory fds opened at
 * kiln_cas_open() and names built from validated lowercase hex only, never
 * from a caller's path. The struct holds nothing but those fds and the
 * directory's path (for messages): it is immutable after open, so one
 * struct kiln_cas can be shared by all threads; a writer belongs to one
 * thread at a time.
 *
 * Durability: the temporary file is fsynced before it gets its name, the
 * name is created atomically and only if absent (linkat/renameat2
 * RENAME_NOREPLACE: a blob that is already there wins, the new copy is
 * dropped), and the fan-out directory is fsynced after. A crash leaves
 * either no blob or a complete one, never a torn file under a digest name.
 */
#include "store/cas.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"

#define CAS_BUF (64 * 1024)
/* Files left in tmp/ by a crash of the mkstemp-style fallback are removed
 * at open once they are this old (a live writer never takes that long). */
#define TMP_STALE_SECONDS (24 * 3600)

struct kiln_cas {
	char *dir;
	int dirfd, blobfd, tmpfd, corruptfd;
};

struct kiln_cas_writer {
	struct kiln_cas *cas;
	int fd;
	char tmpname[32]; /* "" for an O_TMPFILE file (no name until linked) */
	crypto_hash_sha256_state st;
	uint64_t size, max;
	bool failed;
};

int kiln_sha256_hex_valid(const char *hex)
{
	size_t i;

	if (hex == NULL)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return 0; /* also stops at a NUL before 64 */
	return hex[64] == '\0';
}

/* sodium_init() is thread-safe and idempotent (it has its own once-guard);
 * it only fails when the system has no usable entropy source. */
static int sodium_ready(struct kiln_error **err)
{
	if (sodium_init() < 0)
		return kiln_error_set(err, EIO, "libsodium initialisation failed");
	return 0;
}

void kiln_sha256_buf(const void *buf, size_t len, char hex[KILN_SHA256_HEX])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	/* SHA-256 does not depend on what sodium_init() sets up (CPU feature
	 * detection, the RNG); calling it keeps the once-init in one place. */
	if (sodium_init() < 0)
		memset(d, 0, sizeof(d));
	crypto_hash_sha256(d, buf, len);
	kiln_hex(d, sizeof(d), hex);
}

/* ---- open / close ---------------------------------------------------- */

static int open_subdir(int dirfd, const char *dirpath, const char *name, int *out,
		       struct kiln_error **err)
{
	int fd;

	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return kiln_error_set(err, errno, "mkdir %s/%s", dirpath, name);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s/%s", dirpath, name);
	*out = fd;
	return 0;
}

static void remove_stale_tmp(struct kiln_cas *cas)
{
	DIR *d;
	struct dirent *e;
	int fd = fcntl(cas->tmpfd, F_DUPFD_CLOEXEC, 0);
	time_t now = time(NULL);

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (fstatat(cas->tmpfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode) && now - st.st_mtime > TMP_STALE_SECONDS)
			unlinkat(cas->tmpfd, e->d_name, 0);
	}
	closedir(d);
}

void kiln_cas_close(struct kiln_cas *cas)
{
	if (cas == NULL)
		return;
	if (cas->corruptfd >= 0)
		close(cas->corruptfd);
	if (cas->tmpfd >= 0)
		close(cas->tmpfd);
	if (cas->blobfd >= 0)
		close(cas->blobfd);
	if (cas->dirfd >= 0)
		close(cas->dirfd);
	free(cas->dir);
	free(cas);
}

int kiln_cas_open(const char *dir, struct kiln_cas **out, struct kiln_error **err)
{
	struct kiln_cas *cas;

	*out = NULL;
	if (sodium_ready(err) < 0)
		return -1;
	cas = calloc(1, sizeof(*cas));
	if (cas == NULL)
		return kiln_error_set(err, ENOMEM, "open blob store %s", dir);
	cas->dirfd = cas->blobfd = cas->tmpfd = cas->corruptfd = -1;
	cas->dir = strdup(dir);
	if (cas->dir == NULL) {
		kiln_cas_close(cas);
		return kiln_error_set(err, ENOMEM, "open blob store %s", dir);
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		kiln_error_set(err, errno, "mkdir %s", dir);
		goto fail;
	}
	cas->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (cas->dirfd < 0) {
		kiln_error_set(err, errno, "open %s", dir);
		goto fail;
	}
	if (open_subdir(cas->dirfd, dir, "sha256", &cas->blobfd, err) < 0 ||
	    open_subdir(cas->dirfd, dir, "tmp", &cas->tmpfd, err) < 0 ||
	    open_subdir(cas->dirfd, dir, "corrupt", &cas->corruptfd, err) < 0)
		goto fail;
	remove_stale_tmp(cas);
	*out = cas;
	return 0;
fail:
	kiln_cas_close(cas);
	return kiln_error_prefix(err, "open blob store");
}

/* ---- writing --------------------------------------------------------- */

/* A temporary file in DIR/tmp: anonymous (O_TMPFILE) where the filesystem
 * supports it, else a random name created O_EXCL (mkstemp done relative to
 * the directory fd, so no path is ever re-resolved). */
static int open_tmp(struct kiln_cas_writer *w, struct kiln_error **err)
{
	int i;

	w->tmpname[0] = '\0';
	w->fd = openat(w->cas->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (w->fd >= 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT)
		return kiln_error_set(err, errno, "create temporary file in %s/tmp", w->cas->dir);
	for (i = 0; i < 100; i++) {
		unsigned char rnd[8];
		char hex[17];

		randombytes_buf(rnd, sizeof(rnd));
		kiln_hex(rnd, sizeof(rnd), hex);
		snprintf(w->tmpname, sizeof(w->tmpname), "blob.%s", hex);
		w->fd = openat(w->cas->tmpfd, w->tmpname,
			       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
		if (w->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	kiln_error_set(err, errno, "create temporary file in %s/tmp", w->cas->dir);
	w->tmpname[0] = '\0';
	return -1;
}

int kiln_cas_writer_new(struct kiln_cas *cas, uint64_t max_bytes, struct kiln_cas_writer **out,
			struct kiln_error **err)
{
	struct kiln_cas_writer *w;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return kiln_error_set(err, ENOMEM, "new blob");
	w->cas = cas;
	w->max = max_bytes;
	w->fd = -1;
	if (open_tmp(w, err) < 0) {
		free(w);
		return -1;
	}
	crypto_hash_sha256_init(&w->st);
	*out = w;
	return 0;
}

int kiln_cas_write(struct kiln_cas_writer *w, const void *buf, size_t len, struct kiln_error **err)
{
	if (w->failed)
		return kiln_error_set(err, EINVAL, "write blob: an earlier write failed");
	if (w->max != 0 && (len > w->max || w->size > w->max - len)) {
		w->failed = true;
		return kiln_error_set(err, EFBIG, "write blob: more than %llu bytes",
				      (unsigned long long)w->max);
	}
	if (kiln_write_all(w->fd, buf, len) < 0) {
		w->failed = true;
		return kiln_error_set(err, errno, "write blob to %s/tmp", w->cas->dir);
	}
	crypto_hash_sha256_update(&w->st, buf, len);
	w->size += len;
	return 0;
}

void kiln_cas_abort(struct kiln_cas_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmpname[0] != '\0')
		unlinkat(w->cas->tmpfd, w->tmpname, 0);
	free(w);
}

/* Give the sealed temporary file the name fan/rest inside dirfd, only if
 * that name is free. Returns 1 when linked, 0 when a blob was already
 * there (the caller drops its copy), -1 on error (errno set). */
static int link_noreplace(struct kiln_cas_writer *w, int fandir, const char *rest)
{
	char proc[64];

	if (w->tmpname[0] != '\0') {
		if (renameat2(w->cas->tmpfd, w->tmpname, fandir, rest, RENAME_NOREPLACE) == 0) {
			w->tmpname[0] = '\0';
			return 1;
		}
		if (errno == EEXIST)
			return 0;
		if (errno != EINVAL && errno != ENOSYS)
			return -1;
		/* No RENAME_NOREPLACE on this filesystem: link() never replaces. */
		if (linkat(w->cas->tmpfd, w->tmpname, fandir, rest, 0) == 0)
			return 1; /* the tmp name is removed by the caller */
		return errno == EEXIST ? 0 : -1;
	}
	/* O_TMPFILE: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd
	 * works for everyone else. */
	if (linkat(w->fd, "", fandir, rest, AT_EMPTY_PATH) == 0)
		return 1;
	if (errno == EEXIST)
		return 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
	if (linkat(AT_FDCWD, proc, fandir, rest, AT_SYMLINK_FOLLOW) == 0)
		return 1;
	return errno == EEXIST ? 0 : -1;
}

/* Move a blob that is not what its name says to DIR/corrupt/<hex>.<n>, so
 * that the next writer of the same content can put a good copy in place. */
static int quarantine(struct kiln_cas *cas, int fandir, const char *hex, char *moved, size_t len)
{
	unsigned char rnd[4];
	char r[9];

	randombytes_buf(rnd, sizeof(rnd));
	kiln_hex(rnd, sizeof(rnd), r);
	snprintf(moved, len, "%s.%lld.%s", hex, (long long)time(NULL), r);
	if (renameat(fandir, hex + 2, cas->corruptfd, moved) < 0)
		return -1;
	fsync(fandir);
	fsync(cas->corruptfd);
	return 0;
}

/* DIR/sha256/ab, created if needed; a new fan-out directory's own name is
 * made durable at once. */
static int open_fandir(struct kiln_cas *cas, const char *hex, struct kiln_error **err)
{
	char fan[3] = {hex[0], hex[1], '\0'};
	int fd;

	if (mkdirat(cas->blobfd, fan, 0700) == 0) {
		if (fsync(cas->blobfd) < 0)
			return kiln_error_set(err, errno, "fsync %s/sha256", cas->dir);
	} else if (errno != EEXIST) {
		return kiln_error_set(err, errno, "mkdir %s/sha256/%s", cas->dir, fan);
	}
	fd = openat(cas->blobfd, fan, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s/sha256/%s", cas->dir, fan);
	return fd;
}

int kiln_cas_writer_digest(const struct kiln_cas_writer *w, char hex[KILN_SHA256_HEX])
{
	crypto_hash_sha256_state st = w->st;
	unsigned char d[crypto_hash_sha256_BYTES];

	if (w->failed)
		return -1;
	crypto_hash_sha256_final(&st, d);
	kiln_hex(d, sizeof(d), hex);
	return 0;
}

int kiln_cas_commit(struct kiln_cas_writer *w, char hex[KILN_SHA256_HEX], uint64_t *size,
		    struct kiln_error **err)
{
	unsigned char d[crypto_hash_sha256_BYTES];
	cleanup_fd int fandir = -1;
	int r, tries;

	if (w->failed) {
		kiln_cas_abort(w);
		return kiln_error_set(err, EINVAL, "commit blob: an earlier write failed");
	}
	crypto_hash_sha256_final(&w->st, d);
	kiln_hex(d, sizeof(d), hex);
	if (fsync(w->fd) < 0 || fchmod(w->fd, 0444) < 0) {
		kiln_error_set(err, errno, "seal blob %s in %s/tmp", hex, w->cas->dir);
		kiln_cas_abort(w);
		return -1;
	}
	fandir = open_fandir(w->cas, hex, err);
	if (fandir < 0) {
		kiln_cas_abort(w);
		return -1;
	}
	for (tries = 0;; tries++) {
		struct stat st;
		char moved[128];

		r = link_noreplace(w, fandir, hex + 2);
		if (r != 0 || tries > 0)
			break;
		/* Already there. A copy of another size cannot be this content: it
		 * was damaged, so it goes to corrupt/ and ours takes its place.
		 * (Damage that keeps the size is caught on read.) */
		if (fstatat(fandir, hex + 2, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (S_ISREG(st.st_mode) && (uint64_t)st.st_size == w->size) ||
		    quarantine(w->cas, fandir, hex, moved, sizeof(moved)) < 0)
			break;
	}
	if (r < 0) {
		kiln_error_set(err, errno, "store blob %s/sha256/%.2s/%s", w->cas->dir, hex,
			       hex + 2);
		kiln_cas_abort(w);
		return -1;
	}
	/* The new name (or the one that was already there) must survive a
	 * crash before anyone is told the blob exists. */
	if (fsync(fandir) < 0) {
		kiln_error_set(err, errno, "fsync %s/sha256/%.2s", w->cas->dir, hex);
		kiln_cas_abort(w);
		return -1;
	}
	if (size != NULL)
		*size = w->size;
	kiln_cas_abort(w); /* closes the fd and removes a leftover tmp name */
	return 0;
}

int kiln_cas_put_fd(struct kiln_cas *cas, int fd, uint64_t max_bytes, char hex[KILN_SHA256_HEX],
		    uint64_t *size, struct kiln_error **err)
{
	struct kiln_cas_writer *w = NULL;
	cleanup_free char *buf = malloc(CAS_BUF);

	if (buf == NULL)
		return kiln_error_set(err, ENOMEM, "store blob");
	if (kiln_cas_writer_new(cas, max_bytes, &w, err) < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf, CAS_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kiln_cas_abort(w);
			return kiln_error_set(err, errno, "store blob: read");
		}
		if (n == 0)
			break;
		if (kiln_cas_write(w, buf, (size_t)n, err) < 0) {
			kiln_cas_abort(w);
			return -1;
		}
	}
	return kiln_cas_commit(w, hex, size, err);
}

/* ---- reading --------------------------------------------------------- */

int kiln_cas_open_blob(struct kiln_cas *cas, const char *hex, int *fd, uint64_t *size,
		       struct kiln_error **err)
{
	unsigned char d[crypto_hash_sha256_BYTES];
	char got[KILN_SHA256_HEX], moved[128];
	crypto_hash_sha256_state st;
	cleanup_free char *buf = NULL;
	cleanup_fd int fandir = -1;
	cleanup_fd int bfd = -1;
	struct stat sb, again;
	uint64_t total = 0;

	*fd = -1;
	if (!kiln_sha256_hex_valid(hex))
		return kiln_error_set(err, EINVAL, "blob name is not 64 lowercase hex digits");
	fandir = openat(cas->blobfd, (char[3]){hex[0], hex[1], '\0'},
			O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fandir < 0)
		return kiln_error_set(err, errno, "open blob %s", hex);
	bfd = openat(fandir, hex + 2, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (bfd < 0)
		return kiln_error_set(err, errno, "open blob %s", hex);
	if (fstat(bfd, &sb) < 0)
		return kiln_error_set(err, errno, "stat blob %s", hex);
	buf = malloc(CAS_BUF);
	if (buf == NULL)
		return kiln_error_set(err, ENOMEM, "open blob %s", hex);
	crypto_hash_sha256_init(&st);
	if (S_ISREG(sb.st_mode)) {
		for (;;) {
			ssize_t n = pread(bfd, buf, CAS_BUF, (off_t)total);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return kiln_error_set(err, errno, "read blob %s", hex);
			if (n == 0)
				break;
			crypto_hash_sha256_update(&st, (unsigned char *)buf, (size_t)n);
			total += (uint64_t)n;
		}
	}
	crypto_hash_sha256_final(&st, d);
	kiln_hex(d, sizeof(d), got);
	if (!S_ISREG(sb.st_mode) || strcmp(got, hex) != 0) {
		/* Move it aside only if the name still denotes what we read. */
		if (fstatat(fandir, hex + 2, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
		    again.st_dev == sb.st_dev && again.st_ino == sb.st_ino &&
		    quarantine(cas, fandir, hex, moved, sizeof(moved)) == 0)
			return kiln_error_set(err, EBADMSG,
					      "blob %s is corrupt (its content hashes to %s); "
					      "moved to %s/corrupt/%s",
					      hex,
					      S_ISREG(sb.st_mode) ? got : "nothing: not a file",
					      cas->dir, moved);
		return kiln_error_set(err, EBADMSG, "blob %s is corrupt (its content hashes to %s)",
				      hex, S_ISREG(sb.st_mode) ? got : "nothing: not a file");
	}
	if (lseek(bfd, 0, SEEK_SET) < 0)
		return kiln_error_set(err, errno, "seek blob %s", hex);
	/* Readers block normally from here on. */
	if (fcntl(bfd, F_SETFL, 0) < 0)
		return kiln_error_set(err, errno, "open blob %s", hex);
	if (size != NULL)
		*size = total;
	*fd = steal_fd(&bfd);
	return 0;
}

int kiln_cas_has(struct kiln_cas *cas, const char *hex)
{
	char path[3 + 62 + 1];
	struct stat st;

	if (!kiln_sha256_hex_valid(hex))
		return 0;
	snprintf(path, sizeof(path), "%.2s/%s", hex, hex + 2);
	if (fstatat(cas->blobfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return S_ISREG(st.st_mode);
}
