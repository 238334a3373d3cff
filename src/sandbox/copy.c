/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tree copy between two directory fds (copy.h). The export direction runs
 * as host root over a tree the hostile build wrote (THREATS.md §10), so the
 * source side is never trusted:
 *
 * - Every entry is first opened with O_PATH|O_NOFOLLOW through openat2()
 *   (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) and
 *   classified by fstat() of that fd. An O_PATH open never calls a driver's
 *   open(), so fifos, sockets and device nodes are classified and skipped
 *   without ever being opened for I/O, and a symlink is read through the
 *   very fd that was classified (readlinkat(fd, "")).
 * - Directories are reopened from that O_PATH fd (openat(fd, ".")), so the
 *   directory we read is the one we classified. Regular files have to be
 *   opened by name once more (Linux cannot reopen an O_PATH fd without
 *   /proc magic links); the second open is O_NOFOLLOW|O_NONBLOCK|O_NOCTTY and
 *   its fstat() must show the same regular file (st_dev/st_ino), otherwise
 *   the copy fails.
 * - Nothing in the destination is followed or replaced: files are created
 *   O_CREAT|O_EXCL|O_NOFOLLOW, directories and symlinks with mkdirat() and
 *   symlinkat(), which fail with EEXIST on any existing name, dangling
 *   symlinks included.
 * - Names from the source are only ever printed escaped (escape_bytes()),
 *   so a name cannot inject terminal sequences or fake log lines.
 */
#include "sandbox/copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"

#define COPY_DEFAULT_DEPTH 256u
/* Each level holds two fds (source DIR stream, destination dir) and a few
 * hundred bytes of stack; refuse limits that would only end in EMFILE or a
 * stack overflow. */
#define COPY_MAX_DEPTH 1024u
#define COPY_BUF_SIZE  (128u * 1024u)
#define COPY_CFR_CHUNK ((size_t)1 << 30)
/* Detailed skip records kept; past this, one summary line counts the rest. */
#define COPY_MAX_SKIPPED 1000u
/* Longest path shown in an error message (escaped, its tail is kept). */
#define COPY_DISPLAY_MAX 480u

struct copy_ctx {
	const struct kiln_copy_opts *opts;
	struct kiln_copy_stats *st;
	struct kiln_error **err;
	unsigned max_depth;
	uint64_t entries;    /* every entry seen, skipped ones included */
	uint64_t bytes_used; /* apparent size reserved against max_bytes */
	dev_t dst_dev;	     /* the destination root, to refuse copying it */
	ino_t dst_ino;	     /*   into itself when it lies inside the source */
	char *path;	     /* raw relative path of the current entry */
	size_t path_len, path_cap;
	char *buf; /* read/write fallback buffer, allocated lazily */
	size_t skipped_cap;
	uint64_t skipped_more; /* skips beyond COPY_MAX_SKIPPED */
	char display[COPY_DISPLAY_MAX + 8];
};

static void closedirp(DIR **d)
{
	if (*d != NULL)
		closedir(*d);
}
#define cleanup_dir __attribute__((cleanup(closedirp)))

/* --- printing names safely ----------------------------------------------- */

static size_t utf8_seq_len(unsigned char c)
{
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

static uint32_t utf8_decode(const unsigned char *u, size_t n)
{
	uint32_t cp = u[0] & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
	size_t k;

	for (k = 1; k < n; k++)
		cp = (cp << 6) | (u[k] & 0x3F);
	return cp;
}

/* Valid UTF-8 that still must not reach a terminal or log verbatim: C1
 * controls (some terminals honour U+009B as CSI) and invisible or
 * bidirectional formatting characters that make a name display as another. */
static bool codepoint_unsafe(uint32_t cp)
{
	return cp <= 0x9F || cp == 0x061C || (cp >= 0x200B && cp <= 0x200F) ||
	       (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF ||
	       (cp >= 0xFFF9 && cp <= 0xFFFB);
}

/* malloc'd copy of s[0..len) in which printable ASCII (except '\') and
 * harmless valid UTF-8 pass through and every other byte is written \xNN.
 * '\' itself is escaped so that the output is unambiguous. */
static char *escape_bytes(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char *out, *p;
	size_t i = 0;

	if (len > (SIZE_MAX - 1) / 4)
		return NULL;
	out = malloc(len * 4 + 1);
	if (out == NULL)
		return NULL;
	p = out;
	while (i < len) {
		unsigned char c = u[i];
		size_t n;

		if (c >= 0x20 && c < 0x7F && c != '\\') {
			*p++ = (char)c;
			i++;
			continue;
		}
		n = utf8_seq_len(c);
		if (n > 0 && i + n <= len && kiln_utf8_valid(s + i, n) &&
		    !codepoint_unsafe(utf8_decode(u + i, n))) {
			memcpy(p, u + i, n);
			p += n;
			i += n;
			continue;
		}
		*p++ = '\\';
		*p++ = 'x';
		*p++ = hex[c >> 4];
		*p++ = hex[c & 0xF];
		i++;
	}
	*p = '\0';
	return out;
}

/* The current relative path, escaped, for an error message: "." for the
 * root; very deep paths keep their tail behind "...". Points into ctx. */
static const char *display_path(struct copy_ctx *c)
{
	cleanup_free char *esc = NULL;
	const char *start;
	size_t n;

	if (c->path_len == 0)
		return ".";
	esc = escape_bytes(c->path, c->path_len);
	if (esc == NULL)
		return "(path not shown: out of memory)";
	n = strlen(esc);
	if (n <= COPY_DISPLAY_MAX) {
		memcpy(c->display, esc, n + 1);
		return c->display;
	}
	start = esc + n - COPY_DISPLAY_MAX;
	while ((*start & 0xC0) == 0x80) /* do not start inside a UTF-8 sequence */
		start++;
	snprintf(c->display, sizeof(c->display), "...%s", start);
	return c->display;
}

/* "copy <path>: <what>[: strerror]". Always returns -1. */
static int failf(struct copy_ctx *c, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int failf(struct copy_ctx *c, int errnum, const char *fmt, ...)
{
	char what[KILN_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return kiln_error_set(c->err, errnum, "copy %s: %s", display_path(c), what);
}

/* Error for a failed openat2(): name the missing kernel feature rather than
 * fall back to a weaker open (CONVENTIONS.md 3). */
static int fail_open(struct copy_ctx *c, int errnum, const char *what)
{
	if (errnum == ENOSYS)
		return failf(c, errnum, "%s: openat2() is required (Linux 5.6 or later)", what);
	return failf(c, errnum, "%s", what);
}

/* --- bookkeeping ---------------------------------------------------------- */

static int path_push(struct copy_ctx *c, const char *name, size_t *saved)
{
	size_t n = strlen(name);
	size_t need = c->path_len + 1 + n + 1;

	if (need > c->path_cap) {
		size_t cap = c->path_cap ? c->path_cap : 256;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->path, cap);
		if (p == NULL)
			return kiln_error_set(c->err, ENOMEM, "copy: path buffer");
		c->path = p;
		c->path_cap = cap;
	}
	*saved = c->path_len;
	if (c->path_len > 0)
		c->path[c->path_len++] = '/';
	memcpy(c->path + c->path_len, name, n);
	c->path_len += n;
	c->path[c->path_len] = '\0';
	return 0;
}

static void path_pop(struct copy_ctx *c, size_t saved)
{
	c->path_len = saved;
	if (c->path != NULL)
		c->path[saved] = '\0';
}

/* Append "<escaped path>: <reason>" to st->skipped. */
static int record_skip(struct copy_ctx *c, const char *reason)
{
	struct kiln_copy_stats *st = c->st;
	cleanup_free char *esc = NULL;
	char *line = NULL;
	int n;

	if (st->nskipped >= COPY_MAX_SKIPPED) {
		/* Slot COPY_MAX_SKIPPED holds a running count of the rest. */
		c->skipped_more++;
		if (asprintf(&line, "(%llu more entries skipped)",
			     (unsigned long long)c->skipped_more) < 0)
			return kiln_error_set(c->err, ENOMEM, "copy: record skipped entry");
		if (st->nskipped > COPY_MAX_SKIPPED) {
			free(st->skipped[COPY_MAX_SKIPPED]);
			st->skipped[COPY_MAX_SKIPPED] = line;
			return 0;
		}
	} else {
		esc = escape_bytes(c->path, c->path_len);
		if (esc == NULL)
			return kiln_error_set(c->err, ENOMEM, "copy: record skipped entry");
		n = asprintf(&line, "%s: %s", esc, reason);
		if (n < 0)
			return kiln_error_set(c->err, ENOMEM, "copy: record skipped entry");
	}
	if (st->nskipped + 2 > c->skipped_cap) {
		size_t cap = c->skipped_cap ? c->skipped_cap * 2 : 16;
		char **p = realloc(st->skipped, cap * sizeof(*p));

		if (p == NULL) {
			free(line);
			return kiln_error_set(c->err, ENOMEM, "copy: record skipped entry");
		}
		st->skipped = p;
		c->skipped_cap = cap;
	}
	st->skipped[st->nskipped++] = line;
	st->skipped[st->nskipped] = NULL;
	return 0;
}

/* --- system call helpers -------------------------------------------------- */

/* openat2() of one name directly beneath dirfd, never through a symlink or
 * magic link. Returns the fd or -1 with errno set. */
static int open_beneath(int dirfd, const char *name, uint64_t flags, mode_t mode)
{
	struct open_how how = {
		.flags = flags,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int tries = 0;
	long fd;

	/* EAGAIN: RESOLVE_BENEATH saw a concurrent rename; the kernel asks us
	 * to retry. Bounded, so a hostile renamer cannot spin us forever. */
	do
		fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	while (fd < 0 && (errno == EAGAIN || errno == EINTR) && ++tries < 16);
	return (int)fd;
}

static int pwrite_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* copy_file_range() is an optimisation only: across filesystems (tmpfs to
 * ext4) or on filesystems without support the kernel refuses with one of
 * these, and read/write does the job. */
static bool cfr_unsupported(int e)
{
	return e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == ENOSYS || e == ETXTBSY;
}

/* Copy bytes [start, end) of in to the same offsets of out. Returns 1 when
 * the source ended early (it shrank while we copied), 0 when done. */
static int copy_range(struct copy_ctx *c, int in, int out, off_t start, off_t end, bool *use_cfr)
{
	off_t pos = start;

	while (pos < end) {
		size_t left = (size_t)(end - pos);
		ssize_t n;

		if (*use_cfr) {
			off_t ipos = pos, opos = pos;

			n = copy_file_range(in, &ipos, out, &opos,
					    left < COPY_CFR_CHUNK ? left : COPY_CFR_CHUNK, 0);
			if (n > 0) {
				pos += n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && !cfr_unsupported(errno))
				return failf(c, errno, "copy data");
			/* Unsupported, or 0 (EOF, or a filesystem that
			 * silently copies nothing): let pread() decide. */
			*use_cfr = false;
			continue;
		}
		if (c->buf == NULL) {
			c->buf = malloc(COPY_BUF_SIZE);
			if (c->buf == NULL)
				return failf(c, ENOMEM, "copy buffer");
		}
		n = pread(in, c->buf, left < COPY_BUF_SIZE ? left : COPY_BUF_SIZE, pos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return failf(c, errno, "read");
		}
		if (n == 0)
			return 1;
		if (pwrite_all(out, c->buf, (size_t)n, pos) < 0)
			return failf(c, errno, "write");
		pos += n;
	}
	return 0;
}

/* Copy the first `size` bytes of in to out, data segments only, so holes
 * stay holes; then set the apparent size. Never more than `size` bytes are
 * read: a file that grows meanwhile is cut at the size we accounted for. */
static int copy_data(struct copy_ctx *c, int in, int out, off_t size)
{
	bool use_cfr = true;
	off_t off = 0;

	while (off < size) {
		off_t data, hole;
		int r;

		data = lseek(in, off, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO) /* nothing but a hole up to EOF */
				break;
			return failf(c, errno, "seek to data");
		}
		if (data >= size)
			break;
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0) {
			if (errno == ENXIO)
				break;
			return failf(c, errno, "seek to hole");
		}
		if (hole > size || hole <= data)
			hole = size;
		r = copy_range(c, in, out, data, hole, &use_cfr);
		if (r < 0)
			return -1;
		if (r > 0)
			break;
		off = hole;
	}
	if (ftruncate(out, size) < 0)
		return failf(c, errno, "set size to %lld bytes", (long long)size);
	return 0;
}

static bool want_chown(const struct kiln_copy_opts *o)
{
	return o->uid != (uid_t)-1 || o->gid != (gid_t)-1;
}

/* --- one entry of each kind ----------------------------------------------- */

static int copy_entries(struct copy_ctx *c, int src_fd, int dst_fd, unsigned depth);

static int copy_file(struct copy_ctx *c, int src_parent, const char *name,
		     const struct stat *classified, int dst_parent)
{
	cleanup_fd int in = -1;
	cleanup_fd int out = -1;
	struct stat sb;

	in = open_beneath(src_parent, name,
			  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
	if (in < 0)
		return fail_open(c, errno, "open");
	if (fstat(in, &sb) < 0)
		return failf(c, errno, "stat");
	if (!S_ISREG(sb.st_mode) || sb.st_dev != classified->st_dev ||
	    sb.st_ino != classified->st_ino)
		return failf(c, ESTALE, "replaced while being copied");
	if (sb.st_size < 0)
		return failf(c, EINVAL, "negative file size");
	/* The apparent size counts, holes included: a sparse 1 TiB file is a
	 * 1 TiB file to whoever reads it later. Checked before writing. */
	if (c->opts->max_bytes != 0 && (uint64_t)sb.st_size > c->opts->max_bytes - c->bytes_used)
		return failf(c, EFBIG,
			     "%lld bytes would exceed the copy limit of %llu bytes "
			     "(%llu already used)",
			     (long long)sb.st_size, (unsigned long long)c->opts->max_bytes,
			     (unsigned long long)c->bytes_used);
	c->bytes_used += (uint64_t)sb.st_size;

	out = open_beneath(dst_parent, name,
			   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (out < 0)
		return fail_open(c, errno, "create");
	if (copy_data(c, in, out, sb.st_size) < 0)
		goto fail;
	/* chown before chmod; the mode never carries setuid/setgid/sticky. */
	if (want_chown(c->opts) && fchown(out, c->opts->uid, c->opts->gid) < 0) {
		failf(c, errno, "chown to %d:%d", (int)c->opts->uid, (int)c->opts->gid);
		goto fail;
	}
	if (fchmod(out, sb.st_mode & 0777) < 0) {
		failf(c, errno, "chmod");
		goto fail;
	}
	if (futimens(out, (const struct timespec[2]){sb.st_atim, sb.st_mtim}) < 0) {
		failf(c, errno, "set times");
		goto fail;
	}
	c->st->files++;
	c->st->bytes += (uint64_t)sb.st_size;
	return 0;
fail:
	/* Do not leave a truncated file that looks like a finished one. We
	 * created this name with O_EXCL in a destination we own. */
	unlinkat(dst_parent, name, 0);
	return -1;
}

static int copy_symlink(struct copy_ctx *c, int path_fd, const struct stat *sb, const char *name,
			int dst_parent)
{
	char target[PATH_MAX];
	ssize_t n;

	/* Read through the O_PATH fd we classified: same inode, no lookup. */
	n = readlinkat(path_fd, "", target, sizeof(target));
	if (n < 0)
		return failf(c, errno, "read symlink");
	if ((size_t)n >= sizeof(target))
		return failf(c, ENAMETOOLONG, "symlink target");
	target[n] = '\0';
	if (symlinkat(target, dst_parent, name) < 0)
		return failf(c, errno, "create symlink");
	if (want_chown(c->opts) &&
	    fchownat(dst_parent, name, c->opts->uid, c->opts->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return failf(c, errno, "chown symlink to %d:%d", (int)c->opts->uid,
			     (int)c->opts->gid);
	if (utimensat(dst_parent, name, (const struct timespec[2]){sb->st_atim, sb->st_mtim},
		      AT_SYMLINK_NOFOLLOW) < 0)
		return failf(c, errno, "set symlink times");
	c->st->symlinks++;
	return 0;
}

/* src_fd: an O_RDONLY fd of the source directory; ownership is taken. */
static int copy_dir(struct copy_ctx *c, int src_fd, const struct stat *sb, const char *name,
		    int dst_parent, unsigned depth)
{
	cleanup_fd int in = src_fd;
	cleanup_fd int out = -1;

	if (depth > c->max_depth)
		return failf(c, ELOOP, "directories nested deeper than %u levels", c->max_depth);
	if (sb->st_dev == c->dst_dev && sb->st_ino == c->dst_ino)
		return failf(c, EINVAL, "is the destination directory (destination inside source)");
	/* 0700 while we fill it, so a read-only directory can be filled too. */
	if (mkdirat(dst_parent, name, 0700) < 0)
		return failf(c, errno, "create directory");
	c->st->dirs++;
	out = open_beneath(dst_parent, name,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0);
	if (out < 0)
		return fail_open(c, errno, "open new directory");
	if (fchmod(out, 0700) < 0) /* independent of the umask */
		return failf(c, errno, "chmod");
	if (want_chown(c->opts) && fchown(out, c->opts->uid, c->opts->gid) < 0)
		return failf(c, errno, "chown to %d:%d", (int)c->opts->uid, (int)c->opts->gid);
	if (copy_entries(c, steal_fd(&in), out, depth) < 0)
		return -1;
	/* Mode and times last: filling the directory changed its mtime. */
	if (fchmod(out, sb->st_mode & 0777) < 0)
		return failf(c, errno, "chmod");
	if (futimens(out, (const struct timespec[2]){sb->st_atim, sb->st_mtim}) < 0)
		return failf(c, errno, "set times");
	return 0;
}

static const char *special_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return NULL;
	}
}

static int copy_entry(struct copy_ctx *c, int src_parent, const char *name, int dst_parent,
		      unsigned depth)
{
	const struct kiln_copy_opts *o = c->opts;
	cleanup_fd int pfd = -1;
	const char *kind;
	struct stat sb;
	char reason[64];

	c->entries++;
	if (o->max_files != 0 && c->entries > o->max_files)
		return failf(c, EMLINK, "more than %llu entries", (unsigned long long)o->max_files);
	/* readdir() never returns these for a sane filesystem; be sure. */
	if (name[0] == '\0' || strchr(name, '/') != NULL)
		return failf(c, EINVAL, "invalid name from readdir");
	if (o->skip_invalid_utf8 && !kiln_utf8_valid(name, strlen(name)))
		return record_skip(c, "name is not valid UTF-8, skipped");

	pfd = open_beneath(src_parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	if (pfd < 0)
		return fail_open(c, errno, "open");
	if (fstat(pfd, &sb) < 0)
		return failf(c, errno, "stat");

	switch (sb.st_mode & S_IFMT) {
	case S_IFREG: return copy_file(c, src_parent, name, &sb, dst_parent);
	case S_IFLNK: return copy_symlink(c, pfd, &sb, name, dst_parent);
	case S_IFDIR: {
		struct stat dsb;
		int dfd = open_beneath(
			pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);

		if (dfd < 0)
			return fail_open(c, errno, "open directory");
		if (fstat(dfd, &dsb) < 0) {
			int e = errno;

			close(dfd);
			return failf(c, e, "stat directory");
		}
		if (dsb.st_ino != sb.st_ino || dsb.st_dev != sb.st_dev) {
			close(dfd);
			return failf(c, ESTALE, "replaced while being copied");
		}
		/* One fd per level is enough; drop the O_PATH one now. */
		close(steal_fd(&pfd));
		return copy_dir(c, dfd, &dsb, name, dst_parent, depth + 1);
	}
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		kind = special_kind(sb.st_mode);
		if (!o->skip_special)
			return failf(c, ENOTSUP, "%s not copied (special files are refused)", kind);
		snprintf(reason, sizeof(reason), "%s, skipped", kind);
		return record_skip(c, reason);
	default: return failf(c, ENOTSUP, "unknown file type 0%o", (unsigned)(sb.st_mode & S_IFMT));
	}
}

/* Copy every entry of src_fd (ownership taken) into dst_fd. depth is the
 * nesting level of src_fd itself: 0 for the root. */
static int copy_entries(struct copy_ctx *c, int src_fd, int dst_fd, unsigned depth)
{
	cleanup_fd int fd = src_fd;
	cleanup_dir DIR *d = NULL;

	d = fdopendir(fd);
	if (d == NULL)
		return failf(c, errno, "read directory");
	steal_fd(&fd); /* the DIR stream owns it now; dirfd(d) serves *at() */
	for (;;) {
		struct dirent *de;
		size_t saved = 0;
		int r;

		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				return failf(c, errno, "read directory");
			return 0;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (path_push(c, de->d_name, &saved) < 0)
			return -1;
		r = copy_entry(c, dirfd(d), de->d_name, dst_fd, depth);
		if (r < 0)
			return -1; /* keep the path: the error already names it */
		path_pop(c, saved);
	}
}

/* --- public --------------------------------------------------------------- */

int kiln_copy_tree(int src_dir, int dst_dir, const struct kiln_copy_opts *opts,
		   struct kiln_copy_stats *st, struct kiln_error **err)
{
	struct kiln_copy_stats local = {0};
	struct copy_ctx c = {0};
	struct stat sb;
	int src, r;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (opts == NULL)
		return kiln_error_set(err, EINVAL, "copy: no options");
	c.opts = opts;
	c.st = st;
	c.err = err;
	c.max_depth = opts->max_depth ? opts->max_depth : COPY_DEFAULT_DEPTH;
	if (c.max_depth > COPY_MAX_DEPTH)
		return kiln_error_set(err, EINVAL, "copy: max_depth %u is above the maximum of %u",
				      c.max_depth, COPY_MAX_DEPTH);

	if (fstat(dst_dir, &sb) < 0)
		return kiln_error_set(err, errno, "copy: destination directory");
	if (!S_ISDIR(sb.st_mode))
		return kiln_error_set(err, ENOTDIR, "copy: destination directory");
	c.dst_dev = sb.st_dev;
	c.dst_ino = sb.st_ino;

	/* A new open file description rather than dup(): readdir() must start
	 * at the beginning and must not move the caller's offset. */
	src = open_beneath(src_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY, 0);
	if (src < 0)
		return fail_open(&c, errno, "open source directory");
	if (fstat(src, &sb) < 0) {
		int e = errno;

		close(src);
		return failf(&c, e, "stat source directory");
	}
	if (sb.st_dev == c.dst_dev && sb.st_ino == c.dst_ino) {
		close(src);
		return failf(&c, EINVAL, "source and destination are the same directory");
	}
	r = copy_entries(&c, src, dst_dir, 0);

	free(c.path);
	free(c.buf);
	if (st == &local)
		kiln_copy_stats_free(&local);
	return r;
}

void kiln_copy_stats_free(struct kiln_copy_stats *st)
{
	size_t i;

	if (st == NULL)
		return;
	if (st->skipped != NULL) {
		for (i = 0; st->skipped[i] != NULL; i++)
			free(st->skipped[i]);
		free(st->skipped);
	}
	memset(st, 0, sizeof(*st));
}
