/* SPDX-License-Identifier: Apache-2.0 */
/* Packing a source tree for `kiln submit`; see pack.h for what and why. */
#include "cli/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"

#define IGNORE_MAX_BYTES (1u << 20)
#define PACK_MAX_DEPTH	 256

/* --- .kilnignore ------------------------------------------------------ */

struct rule {
	char **comps; /* pattern components; "**" matches any number of names */
	size_t n;
	bool neg, dir_only;
};

struct kiln_ignore {
	struct rule *rules;
	size_t n;
};

void kiln_ignore_free(struct kiln_ignore *ig)
{
	if (ig == NULL)
		return;
	for (size_t i = 0; i < ig->n; i++) {
		for (size_t j = 0; j < ig->rules[i].n; j++)
			free(ig->rules[i].comps[j]);
		free(ig->rules[i].comps);
	}
	free(ig->rules);
	free(ig);
}

static int add_comp(struct rule *r, const char *s, size_t len)
{
	char **nc = reallocarray(r->comps, r->n + 1, sizeof(char *));

	if (nc == NULL)
		return -1;
	r->comps = nc;
	r->comps[r->n] = strndup(s, len);
	if (r->comps[r->n] == NULL)
		return -1;
	r->n++;
	return 0;
}

/* One line (NUL-terminated, modified in place) into r; r->n == 0 if the
 * line holds no pattern. */
static int parse_line(char *line, struct rule *r)
{
	size_t len = strlen(line);
	bool anchored;
	char *p, *slash;

	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
		line[--len] = '\0';
	if (len == 0 || line[0] == '#')
		return 0;
	if (line[0] == '!') {
		r->neg = true;
		line++;
	} else if (line[0] == '\\' && (line[1] == '#' || line[1] == '!')) {
		line++;
	}
	len = strlen(line);
	while (len > 0 && line[len - 1] == '/') {
		r->dir_only = true;
		line[--len] = '\0';
	}
	anchored = strchr(line, '/') != NULL;
	while (*line == '/')
		line++;
	if (*line == '\0')
		return 0;
	/* A name without '/' matches at any depth: as if written "**" + "/" + name. */
	if (!anchored && add_comp(r, "**", 2) < 0)
		return -1;
	for (p = line; *p; p = slash ? slash + 1 : p + strlen(p)) {
		slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n > 0 && add_comp(r, p, n) < 0)
			return -1;
		if (slash == NULL)
			break;
	}
	return 0;
}

int kiln_ignore_parse(const char *text, size_t len, struct kiln_ignore **out,
		      struct kiln_error **err)
{
	struct kiln_ignore *ig = calloc(1, sizeof(*ig));
	cleanup_free char *copy = strndup(text, len);
	char *line, *next;

	if (ig == NULL || copy == NULL)
		goto oom;
	for (line = copy; line != NULL; line = next) {
		struct rule r = {0};

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (parse_line(line, &r) < 0) {
			for (size_t j = 0; j < r.n; j++)
				free(r.comps[j]);
			free(r.comps);
			goto oom;
		}
		if (r.n == 0) {
			free(r.comps);
			continue;
		}
		struct rule *nr = reallocarray(ig->rules, ig->n + 1, sizeof(*nr));
		if (nr == NULL) {
			for (size_t j = 0; j < r.n; j++)
				free(r.comps[j]);
			free(r.comps);
			goto oom;
		}
		ig->rules = nr;
		ig->rules[ig->n++] = r;
	}
	*out = ig;
	return 0;
oom:
	kiln_ignore_free(ig);
	return kiln_error_set(err, ENOMEM, "parse .kilnignore");
}

static bool match_comps(char *const *pat, size_t np, char *const *path, size_t nq, bool top)
{
	if (np == 0)
		return nq == 0;
	if (strcmp(pat[0], "**") == 0) {
		/* A trailing "**" (after a "/") is everything inside, not the directory itself. */
		size_t min = (np == 1 && !top) ? 1 : 0;

		for (size_t k = min; k <= nq; k++)
			if (match_comps(pat + 1, np - 1, path + k, nq - k, false))
				return true;
		return false;
	}
	if (nq == 0 || fnmatch(pat[0], path[0], 0) != 0)
		return false;
	return match_comps(pat + 1, np - 1, path + 1, nq - 1, false);
}

bool kiln_ignore_match(const struct kiln_ignore *ig, const char *relpath, bool is_dir)
{
	cleanup_free char *copy = NULL;
	cleanup_free char **comps = NULL;
	size_t n = 0, cap;
	char *p;

	if (ig == NULL || ig->n == 0)
		return false;
	copy = strdup(relpath);
	cap = strlen(relpath) / 2 + 2;
	comps = calloc(cap, sizeof(char *));
	if (copy == NULL || comps == NULL)
		return false;
	for (p = strtok(copy, "/"); p != NULL && n < cap; p = strtok(NULL, "/"))
		comps[n++] = p;
	/* The last rule that matches decides. */
	for (size_t i = ig->n; i-- > 0;) {
		const struct rule *r = &ig->rules[i];

		if (r->dir_only && !is_dir)
			continue;
		if (match_comps(r->comps, r->n, comps, n, true))
			return !r->neg;
	}
	return false;
}

/* --- the walk ---------------------------------------------------------------- */

struct packer {
	struct archive *a;
	struct archive_entry *e;
	struct kiln_ignore *ig;
	struct kiln_pack_stats *st;
	const char *root;
	char path[PATH_MAX]; /* current path relative to root */
	char buf[64 * 1024];
};

static int archive_err(struct packer *p, const char *what, struct kiln_error **err)
{
	return kiln_error_set(err, 0, "%s %s: %s", what, p->path, archive_error_string(p->a));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dfd, sorted bytewise, "." and ".." left out. */
static int list_dir(int dfd, char ***names, size_t *count, const char *path,
		    struct kiln_error **err)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (d == NULL) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return kiln_error_set(err, e, "read directory %s", path);
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **nv = reallocarray(v, nc, sizeof(char *));
			if (nv == NULL)
				goto oom;
			v = nv;
			cap = nc;
		}
		v[n] = strdup(de->d_name);
		if (v[n] == NULL)
			goto oom;
		n++;
		errno = 0;
	}
	if (errno != 0) {
		int e = errno;
		closedir(d);
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return kiln_error_set(err, e, "read directory %s", path);
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(char *), cmp_names);
	*names = v;
	*count = n;
	return 0;
oom:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return kiln_error_set(err, ENOMEM, "read directory %s", path);
}

/* The common part of every entry: name, owner 0, no names, mtime. */
static void entry_init(struct packer *p, const struct stat *st, mode_t type, mode_t perm)
{
	archive_entry_clear(p->e);
	if (kiln_utf8_valid(p->path, strlen(p->path)))
		archive_entry_set_pathname_utf8(p->e, p->path);
	else
		archive_entry_set_pathname(p->e, p->path);
	archive_entry_set_filetype(p->e, type);
	archive_entry_set_perm(p->e, perm);
	archive_entry_set_uid(p->e, 0);
	archive_entry_set_gid(p->e, 0);
	archive_entry_set_mtime(p->e, st->st_mtime, 0);
}

static int write_header(struct packer *p, struct kiln_error **err)
{
	if (archive_write_header(p->a, p->e) < ARCHIVE_WARN)
		return archive_err(p, "pack", err);
	return 0;
}

static int pack_file(struct packer *p, int dfd, const char *name, const struct stat *lst,
		     struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	struct stat st;
	uint64_t left;

	/* O_NONBLOCK: should a fifo be swapped in after the lstat, the open
	 * does not hang; the fstat below then refuses it. */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s/%s", p->root, p->path);
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "stat %s/%s", p->root, p->path);
	if (!S_ISREG(st.st_mode) || st.st_ino != lst->st_ino || st.st_dev != lst->st_dev)
		return kiln_error_set(err, 0, "%s/%s changed while it was being packed", p->root,
				      p->path);
	entry_init(p, &st, AE_IFREG, st.st_mode & 0777);
	archive_entry_set_size(p->e, st.st_size);
	if (write_header(p, err) < 0)
		return -1;
	for (left = (uint64_t)st.st_size; left > 0;) {
		size_t want = left < sizeof(p->buf) ? (size_t)left : sizeof(p->buf);
		ssize_t n = read(fd, p->buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_error_set(err, errno, "read %s/%s", p->root, p->path);
		if (n == 0)
			return kiln_error_set(err, 0, "%s/%s shrank while it was being packed",
					      p->root, p->path);
		if (archive_write_data(p->a, p->buf, (size_t)n) != n)
			return archive_err(p, "pack", err);
		left -= (uint64_t)n;
	}
	p->st->files++;
	p->st->bytes += (uint64_t)st.st_size;
	return 0;
}

static int pack_symlink(struct packer *p, int dfd, const char *name, const struct stat *st,
			struct kiln_error **err)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(dfd, name, target, sizeof(target));

	if (n < 0)
		return kiln_error_set(err, errno, "readlink %s/%s", p->root, p->path);
	if ((size_t)n >= sizeof(target))
		return kiln_error_set(err, ENAMETOOLONG, "readlink %s/%s", p->root, p->path);
	target[n] = '\0';
	entry_init(p, st, AE_IFLNK, 0777);
	if (kiln_utf8_valid(target, (size_t)n))
		archive_entry_set_symlink_utf8(p->e, target);
	else
		archive_entry_set_symlink(p->e, target);
	if (write_header(p, err) < 0)
		return -1;
	p->st->symlinks++;
	return 0;
}

static const char *type_name(mode_t m)
{
	if (S_ISFIFO(m))
		return "a fifo";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "of an unknown file type";
}

static int pack_tree(struct packer *p, int dfd, int depth, struct kiln_error **err);

static int pack_entry(struct packer *p, int dfd, const char *name, int depth,
		      struct kiln_error **err)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_error_set(err, errno, "stat %s/%s", p->root, p->path);
	if (kiln_ignore_match(p->ig, p->path, S_ISDIR(st.st_mode))) {
		p->st->ignored++;
		return 0;
	}
	if (S_ISREG(st.st_mode))
		return pack_file(p, dfd, name, &st, err);
	if (S_ISLNK(st.st_mode))
		return pack_symlink(p, dfd, name, &st, err);
	if (S_ISDIR(st.st_mode)) {
		cleanup_fd int sub = -1;

		if (depth >= PACK_MAX_DEPTH)
			return kiln_error_set(err, 0, "%s/%s: directories nested deeper than %d",
					      p->root, p->path, PACK_MAX_DEPTH);
		sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return kiln_error_set(err, errno, "open %s/%s", p->root, p->path);
		entry_init(p, &st, AE_IFDIR, st.st_mode & 0777);
		if (write_header(p, err) < 0)
			return -1;
		p->st->dirs++;
		return pack_tree(p, sub, depth + 1, err);
	}
	return kiln_error_set(err, 0,
			      "%s/%s is %s: kiln submit packs only files, directories and "
			      "symbolic links (exclude it in .kilnignore)",
			      p->root, p->path, type_name(st.st_mode));
}

static int pack_tree(struct packer *p, int dfd, int depth, struct kiln_error **err)
{
	char **names = NULL;
	size_t n = 0, base = strlen(p->path);
	int r = 0;

	if (list_dir(dfd, &names, &n, base ? p->path : p->root, err) < 0)
		return -1;
	for (size_t i = 0; i < n && r == 0; i++) {
		int len = snprintf(p->path + base, sizeof(p->path) - base, "%s%s", base ? "/" : "",
				   names[i]);

		if (len < 0 || (size_t)len >= sizeof(p->path) - base) {
			p->path[base] = '\0';
			r = kiln_error_set(err, ENAMETOOLONG, "%s/%s/%s", p->root, p->path,
					   names[i]);
			break;
		}
		r = pack_entry(p, dfd, names[i], depth, err);
		p->path[base] = '\0';
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

/* --- entry point ------------------------------------------------------------ */

static int read_ignore(int root, const char *dir, struct kiln_ignore **ig, struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	cleanup_free char *text = NULL;
	struct stat st;
	ssize_t n;

	*ig = NULL;
	fd = openat(root, ".kilnignore", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			return kiln_error_set(err, 0,
					      "%s/.kilnignore is a symbolic link; refusing "
					      "to follow it",
					      dir);
		return kiln_error_set(err, errno, "open %s/.kilnignore", dir);
	}
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "stat %s/.kilnignore", dir);
	if (!S_ISREG(st.st_mode))
		return kiln_error_set(err, 0, "%s/.kilnignore is not a regular file", dir);
	if (st.st_size > (off_t)IGNORE_MAX_BYTES)
		return kiln_error_set(err, 0, "%s/.kilnignore is larger than 1 MiB", dir);
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL)
		return kiln_error_set(err, ENOMEM, "read %s/.kilnignore", dir);
	n = kiln_read_all(fd, text, (size_t)st.st_size);
	if (n < 0)
		return kiln_error_set(err, errno, "read %s/.kilnignore", dir);
	return kiln_ignore_parse(text, (size_t)n, ig, err);
}

static int temp_file(struct kiln_error **err)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	if (dir == NULL || dir[0] != '/')
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* File systems without O_TMPFILE: a named file, unlinked at once. */
	if ((size_t)snprintf(path, sizeof(path), "%s/kiln-submit.XXXXXX", dir) >= sizeof(path))
		return kiln_error_set(err, ENAMETOOLONG, "temporary file in %s", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return kiln_error_set(err, errno, "create a temporary file in %s", dir);
	unlink(path);
	return fd;
}

int kiln_pack_dir(const char *dir, int *out_fd, uint64_t *out_size, struct kiln_pack_stats *stats,
		  struct kiln_error **err)
{
	cleanup_fd int root = -1;
	cleanup_fd int fd = -1;
	cleanup_free struct packer *p = NULL;
	struct stat st;
	int r = -1;

	memset(stats, 0, sizeof(*stats));
	root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return kiln_error_set(err, errno, "open %s", dir);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return kiln_error_set(err, ENOMEM, "pack %s", dir);
	p->root = dir;
	p->st = stats;
	if (read_ignore(root, dir, &p->ig, err) < 0)
		return -1;
	fd = temp_file(err);
	if (fd < 0)
		goto out;
	p->a = archive_write_new();
	p->e = archive_entry_new();
	if (p->a == NULL || p->e == NULL) {
		kiln_error_set(err, ENOMEM, "pack %s", dir);
		goto out;
	}
	if (archive_write_set_format_pax(p->a) != ARCHIVE_OK ||
	    archive_write_add_filter_gzip(p->a) != ARCHIVE_OK ||
	    /* no time in the gzip header: the same tree gives the same bytes */
	    archive_write_set_filter_option(p->a, "gzip", "timestamp", NULL) < ARCHIVE_WARN ||
	    archive_write_set_bytes_in_last_block(p->a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(p->a, fd) != ARCHIVE_OK) {
		kiln_error_set(err, 0, "pack %s: %s", dir, archive_error_string(p->a));
		goto out;
	}
	if (pack_tree(p, root, 0, err) < 0)
		goto out;
	if (archive_write_close(p->a) != ARCHIVE_OK) {
		kiln_error_set(err, 0, "pack %s: %s", dir, archive_error_string(p->a));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		kiln_error_set(err, errno, "stat the packed archive");
		goto out;
	}
	*out_size = (uint64_t)st.st_size;
	*out_fd = steal_fd(&fd);
	r = 0;
out:
	if (p->a != NULL)
		archive_write_free(p->a);
	if (p->e != NULL)
		archive_entry_free(p->e);
	kiln_ignore_free(p->ig);
	return r;
}
