/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/unpack.h"

#include <archive.h>
#include <dlfcn.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"

static int fail(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* libarchive is loaded only when an archive is given (kiln_unpack_load(),
 * called by the supervisor before the sandbox exists): it pulls in
 * libxml2, ICU and more, which every `kiln run` would otherwise pay for at
 * start-up. The names are the library's own; `A.` calls through the table. */
#define KILN_ARCHIVE_FUNCS(X)                                                                      \
	X(struct archive *, archive_read_new, (void))                                              \
	X(struct archive *, archive_write_disk_new, (void))                                        \
	X(int, archive_read_support_filter_gzip, (struct archive *))                               \
	X(int, archive_read_support_filter_xz, (struct archive *))                                 \
	X(int, archive_read_support_filter_zstd, (struct archive *))                               \
	X(int, archive_read_support_filter_bzip2, (struct archive *))                              \
	X(int, archive_read_support_format_tar, (struct archive *))                                \
	X(int, archive_write_disk_set_options, (struct archive *, int))                            \
	X(int, archive_read_open_fd, (struct archive *, int, size_t))                              \
	X(const char *, archive_error_string, (struct archive *))                                  \
	X(int, archive_read_next_header, (struct archive *, struct archive_entry **))              \
	X(const char *, archive_entry_pathname, (struct archive_entry *))                          \
	X(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *))                           \
	X(const char *, archive_entry_hardlink, (struct archive_entry *))                          \
	X(const char *, archive_entry_symlink, (struct archive_entry *))                           \
	X(void, archive_entry_set_perm, (struct archive_entry *, __LA_MODE_T))                     \
	X(__LA_MODE_T, archive_entry_perm, (struct archive_entry *))                               \
	X(int, archive_entry_size_is_set, (struct archive_entry *))                                \
	X(la_int64_t, archive_entry_size, (struct archive_entry *))                                \
	X(int, archive_write_header, (struct archive *, struct archive_entry *))                   \
	X(int, archive_read_data_block, (struct archive *, const void **, size_t *, la_int64_t *)) \
	X(la_ssize_t, archive_write_data_block,                                                    \
	  (struct archive *, const void *, size_t, la_int64_t))                                    \
	X(int, archive_write_finish_entry, (struct archive *))                                     \
	X(int, archive_write_close, (struct archive *))                                            \
	X(int, archive_write_free, (struct archive *))                                             \
	X(int, archive_read_close, (struct archive *))                                             \
	X(int, archive_read_free, (struct archive *))

static struct {
#define KILN_FIELD(ret, name, args) ret(*name) args;
	KILN_ARCHIVE_FUNCS(KILN_FIELD)
#undef KILN_FIELD
	void *handle;
} A;

int kiln_unpack_load(char *msg, size_t msglen)
{
	void *h;

	if (A.handle != NULL)
		return 0;
	h = dlopen(KILN_LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		return fail(msg, msglen, "cannot load %s (install libarchive13): %s",
			    KILN_LIBARCHIVE_SONAME, dlerror());
#define KILN_RESOLVE(ret, name, args)                                                              \
	*(void **)&A.name = dlsym(h, #name);                                                       \
	if (A.name == NULL) {                                                                      \
		dlclose(h);                                                                        \
		return fail(msg, msglen, "%s lacks %s", KILN_LIBARCHIVE_SONAME, #name);            \
	}
	KILN_ARCHIVE_FUNCS(KILN_RESOLVE)
#undef KILN_RESOLVE
	A.handle = h;
	return 0;
}

int kiln_unpack_path_ok(const char *path, uint64_t max_path)
{
	const char *p = path;
	size_t n;

	if (path == NULL || *path == '\0' || *path == '/')
		return 0;
	n = strlen(path);
	if (max_path && n > max_path)
		return 0;
	/* Every component: not "..". "." and empty components are harmless
	 * (tar writes "./x" and "dir/"), ".." never is. */
	while (*p) {
		const char *e = strchr(p, '/');
		size_t c = e ? (size_t)(e - p) : strlen(p);

		if (c == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += c;
		if (*p == '/')
			p++;
	}
	return 1;
}

/* A printable rendering of a hostile path for the one-line message. */
static const char *shown(const char *path, char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = 0; path[i] && o + 5 < len; i++) {
		unsigned char c = (unsigned char)path[i];

		if (c < 0x20 || c == 0x7f || c == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

static int copy_data(struct archive *in, struct archive *out, uint64_t *total,
		     const struct kiln_unpack_limits *lim, const char *name, char *msg,
		     size_t msglen)
{
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = A.archive_read_data_block(in, &buf, &size, &off);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return fail(msg, msglen, "%s: %s", name, A.archive_error_string(in));
		/* Bytes actually produced by decompression: a bomb stops here
		 * even if its headers lied about sizes. */
		*total += size;
		if (lim->max_bytes && *total > lim->max_bytes)
			return fail(msg, msglen, "%s: archive unpacks to more than %llu bytes",
				    name, (unsigned long long)lim->max_bytes);
		if (A.archive_write_data_block(out, buf, size, off) < ARCHIVE_WARN)
			return fail(msg, msglen, "%s: %s", name, A.archive_error_string(out));
	}
}

int kiln_unpack(int fd, const struct kiln_unpack_limits *lim, char *msg, size_t msglen)
{
	struct archive *in, *out;
	struct archive_entry *e;
	uint64_t files = 0, apparent = 0, produced = 0;
	char show[256];
	int r, rc = -1;

	if (kiln_unpack_load(msg, msglen) < 0)
		return -1;
	in = A.archive_read_new();
	out = A.archive_write_disk_new();
	if (in == NULL || out == NULL) {
		fail(msg, msglen, "out of memory");
		goto done;
	}
	/* Only built-in decompressors: never the external-program filters. */
	A.archive_read_support_filter_gzip(in);
	A.archive_read_support_filter_xz(in);
	A.archive_read_support_filter_zstd(in);
	A.archive_read_support_filter_bzip2(in);
	A.archive_read_support_format_tar(in);
	A.archive_write_disk_set_options(
		out, ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
			     ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_TIME |
			     ARCHIVE_EXTRACT_NO_OVERWRITE);
	if (A.archive_read_open_fd(in, fd, 65536) != ARCHIVE_OK) {
		fail(msg, msglen, "not a tar archive: %s", A.archive_error_string(in));
		goto done;
	}
	for (;;) {
		const char *path, *link;
		mode_t type;

		r = A.archive_read_next_header(in, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			fail(msg, msglen, "archive: %s", A.archive_error_string(in));
			goto done;
		}
		path = A.archive_entry_pathname(e);
		if (path == NULL) {
			fail(msg, msglen, "entry %llu has no name", (unsigned long long)files + 1);
			goto done;
		}
		if (++files > lim->max_files && lim->max_files) {
			fail(msg, msglen, "archive has more than %llu entries",
			     (unsigned long long)lim->max_files);
			goto done;
		}
		if (!kiln_unpack_path_ok(path, lim->max_path)) {
			fail(msg, msglen, "%s: absolute path, '..' or longer than %llu bytes",
			     shown(path, show, sizeof(show)), (unsigned long long)lim->max_path);
			goto done;
		}
		type = A.archive_entry_filetype(e);
		link = A.archive_entry_hardlink(e);
		if (link != NULL && !kiln_unpack_path_ok(link, lim->max_path)) {
			fail(msg, msglen, "%s: hard link to '%s' outside the archive",
			     shown(path, show, sizeof(show)), link);
			goto done;
		}
		if (link == NULL && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
			fail(msg, msglen, "%s: devices, fifos and sockets are not allowed",
			     shown(path, show, sizeof(show)));
			goto done;
		}
		if (type == AE_IFLNK) {
			const char *t = A.archive_entry_symlink(e);

			if (t == NULL || (lim->max_path && strlen(t) > lim->max_path)) {
				fail(msg, msglen, "%s: bad symlink target",
				     shown(path, show, sizeof(show)));
				goto done;
			}
		}
		/* Owners are never restored; neither are setuid/setgid/sticky. */
		A.archive_entry_set_perm(e, A.archive_entry_perm(e) & 0777);
		if (A.archive_entry_size_is_set(e) && A.archive_entry_size(e) > 0) {
			apparent += (uint64_t)A.archive_entry_size(e);
			if (lim->max_bytes && apparent > lim->max_bytes) {
				fail(msg, msglen, "%s: archive unpacks to more than %llu bytes",
				     shown(path, show, sizeof(show)),
				     (unsigned long long)lim->max_bytes);
				goto done;
			}
		}
		r = A.archive_write_header(out, e);
		if (r < ARCHIVE_WARN) {
			fail(msg, msglen, "%s: %s", shown(path, show, sizeof(show)),
			     A.archive_error_string(out));
			goto done;
		}
		if (A.archive_entry_size(e) > 0 &&
		    copy_data(in, out, &produced, lim, shown(path, show, sizeof(show)), msg,
			      msglen) < 0)
			goto done;
		if (A.archive_write_finish_entry(out) < ARCHIVE_WARN) {
			fail(msg, msglen, "%s: %s", shown(path, show, sizeof(show)),
			     A.archive_error_string(out));
			goto done;
		}
	}
	rc = 0;
done:
	if (out) {
		A.archive_write_close(out);
		A.archive_write_free(out);
	}
	if (in) {
		A.archive_read_close(in);
		A.archive_read_free(in);
	}
	return rc;
}
