/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v1 and v2 for kiln runs (see cgroup.h for the policy).
 *
 * Layout of this file: pure parsers first (no system calls; unit-tested and
 * fit for fuzzing), then file helpers on directory fds, then killing and
 * removal, then creation for v1 and v2, then the public entry points.
 *
 * Everything below the caller's own cgroup directory is reached through
 * directory fds (openat/mkdirat/unlinkat with O_NOFOLLOW), never by
 * re-resolving a path string; the strings are kept for messages only.
 */
#include "sandbox/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/sys.h"

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define NS_PER_MS	  1000000ULL
#define KILL_TIMEOUT_NS	  (5000ULL * NS_PER_MS)
#define FREEZE_TIMEOUT_NS (1000ULL * NS_PER_MS)
#define RMDIR_TIMEOUT_NS  (1000ULL * NS_PER_MS)
#define POLL_NS		  (10ULL * NS_PER_MS)
#define TEXT_MAX	  (16U << 20) /* cgroup.procs of a huge cgroup, mountinfo */
#define TREE_DEPTH_MAX	  32
#define ENABLE_ATTEMPTS	  10
#define CPU_PERIOD_US	  100000ULL
#define CPU_QUOTA_MIN_US  1000ULL /* kernel minimum for cfs quota / cpu.max */
#define SUPERVISOR	  "kiln-supervisor"

static const char *const ctrl_names[KILN_CG_NCTRL] = {
	[KILN_CG_MEMORY] = "memory",   [KILN_CG_PIDS] = "pids",	      [KILN_CG_CPU] = "cpu",
	[KILN_CG_FREEZER] = "freezer", [KILN_CG_CPUACCT] = "cpuacct",
};

const char *kiln_cgroup_ctrl_name(enum kiln_cgroup_ctrl c)
{
	if ((unsigned)c >= KILN_CG_NCTRL)
		return NULL;
	return ctrl_names[c];
}

/* ======================================================================
 * Pure helpers
 * ====================================================================== */

static bool is_sep(char c)
{
	return c == ' ' || c == ',' || c == '\n' || c == '\t';
}

bool kiln_cgroup_has_word(const char *list, const char *word)
{
	size_t wl;
	const char *p;

	if (list == NULL || word == NULL || *word == '\0')
		return false;
	wl = strlen(word);
	for (p = list; *p != '\0';) {
		size_t n = 0;

		while (is_sep(*p))
			p++;
		while (p[n] != '\0' && !is_sep(p[n]))
			n++;
		if (n == wl && memcmp(p, word, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/* Next line of text: sets *line and *len (without the newline) and returns the
 * position after it, or NULL at the end. */
static const char *next_line(const char *p, const char **line, size_t *len)
{
	const char *nl;

	if (p == NULL || *p == '\0')
		return NULL;
	nl = strchr(p, '\n');
	*line = p;
	if (nl == NULL) {
		*len = strlen(p);
		return p + *len;
	}
	*len = (size_t)(nl - p);
	return nl + 1;
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int kiln_cgroup_keyed(const char *text, const char *key, uint64_t *val)
{
	const char *p = text, *line;
	size_t len, kl;

	if (text == NULL || key == NULL)
		return -1;
	kl = strlen(key);
	while ((p = next_line(p, &line, &len)) != NULL) {
		size_t vlen;

		if (len <= kl || memcmp(line, key, kl) != 0 || line[kl] != ' ')
			continue;
		vlen = len - kl - 1;
		while (vlen > 0 &&
		       (line[kl + 1 + vlen - 1] == ' ' || line[kl + 1 + vlen - 1] == '\r'))
			vlen--;
		return parse_u64(line + kl + 1, vlen, val);
	}
	return -1;
}

bool kiln_cgroup_swap_active(const char *proc_swaps)
{
	const char *p = proc_swaps, *line;
	size_t len;
	bool header = true;

	/* The first line is the "Filename Type Size Used Priority" header;
	 * every further non-blank line is an active swap area. */
	while ((p = next_line(p, &line, &len)) != NULL) {
		size_t i;

		if (header) {
			header = false;
			continue;
		}
		for (i = 0; i < len; i++)
			if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
				return true;
	}
	return false;
}

void kiln_cgroup_self_clear(struct kiln_cgroup_self *s)
{
	size_t i;

	if (s == NULL)
		return;
	free(s->v2);
	s->v2 = NULL;
	for (i = 0; i < KILN_CG_NCTRL; i++) {
		free(s->v1[i]);
		s->v1[i] = NULL;
	}
}

int kiln_cgroup_parse_self(const char *text, struct kiln_cgroup_self *out, struct kiln_error **err)
{
	const char *p = text, *line;
	size_t len;
	unsigned lineno = 0;

	if (text == NULL)
		return kiln_error_set(err, EINVAL, "parse /proc/<pid>/cgroup: no text");
	while ((p = next_line(p, &line, &len)) != NULL) {
		const char *c1, *c2, *path;
		size_t plen;
		uint64_t hid;

		lineno++;
		if (len == 0)
			continue;
		/* "ID:controllers:path"; the path may itself contain ':' */
		c1 = memchr(line, ':', len);
		c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c1 == NULL || c2 == NULL || parse_u64(line, (size_t)(c1 - line), &hid) < 0)
			goto bad;
		path = c2 + 1;
		plen = len - (size_t)(path - line);
		if (plen == 0 || path[0] != '/')
			goto bad;
		if (hid == 0) {
			if (c2 != c1 + 1)
				goto bad;
			if (out->v2 == NULL && (out->v2 = strndup(path, plen)) == NULL)
				goto oom;
			continue;
		}
		for (const char *t = c1 + 1; t < c2;) {
			size_t n = 0;
			size_t c;

			while (t + n < c2 && t[n] != ',')
				n++;
			for (c = 0; c < KILN_CG_NCTRL; c++) {
				if (strlen(ctrl_names[c]) == n &&
				    memcmp(t, ctrl_names[c], n) == 0 && out->v1[c] == NULL) {
					if ((out->v1[c] = strndup(path, plen)) == NULL)
						goto oom;
				}
			}
			t += n + (t + n < c2);
		}
	}
	return 0;
bad:
	kiln_cgroup_self_clear(out);
	return kiln_error_set(err, EINVAL, "parse /proc/<pid>/cgroup: line %u is malformed",
			      lineno);
oom:
	kiln_cgroup_self_clear(out);
	return kiln_error_set(err, ENOMEM, "parse /proc/<pid>/cgroup");
}

void kiln_cgroup_layout_clear(struct kiln_cgroup_layout *l)
{
	size_t i;

	if (l == NULL)
		return;
	free(l->v2_mount);
	free(l->v2_dir);
	free(l->v2_path);
	l->v2_mount = l->v2_dir = l->v2_path = NULL;
	for (i = 0; i < KILN_CG_NCTRL; i++) {
		free(l->v1_mount[i]);
		free(l->v1_dir[i]);
		free(l->v1_path[i]);
		l->v1_mount[i] = l->v1_dir[i] = l->v1_path[i] = NULL;
	}
}

/* mountinfo escapes ' ', '\t', '\n' and '\\' in paths as \ooo. */
static char *unescape(const char *s, size_t len)
{
	char *o = malloc(len + 1);
	size_t i, j = 0;

	if (o == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			o[j++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
					(s[i + 3] - '0'));
			i += 3;
		} else {
			o[j++] = s[i];
		}
	}
	o[j] = '\0';
	return o;
}

/* A cgroup path with a "." or ".." component (how the kernel shows cgroups
 * outside our cgroup namespace) cannot be located below a mount. */
static bool path_clean(const char *p)
{
	const char *s = p;

	while (*s != '\0') {
		size_t n;

		while (*s == '/')
			s++;
		n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
	}
	return true;
}

/* The part of `path` below `root` ("" when equal), or NULL when path does not
 * lie under root. Both are absolute hierarchy paths. */
static const char *path_below(const char *path, const char *root)
{
	size_t rl = strlen(root);

	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	if (strncmp(path, root, rl) != 0)
		return NULL;
	if (path[rl] != '\0' && path[rl] != '/')
		return NULL;
	return path + rl;
}

/* a + "/" + b without doubled or trailing slashes ("/" + "" = "/"). */
static char *path_join(const char *a, const char *b)
{
	size_t al = strlen(a);
	char *o;

	while (al > 0 && a[al - 1] == '/')
		al--;
	while (*b == '/')
		b++;
	if (*b == '\0')
		return al == 0 ? strdup("/") : strndup(a, al);
	if (asprintf(&o, "%.*s/%s", (int)al, a, b) < 0)
		return NULL;
	return o;
}

/* Record a mount candidate (mp, root) for own hierarchy path `own`. */
static int take_mount(char **mount, char **dir, char **hpath, const char *own, const char *mp,
		      const char *root)
{
	const char *rel;
	char *m, *d, *h;

	if (own == NULL || !path_clean(own) || !path_clean(root))
		return 0;
	rel = path_below(own, root);
	if (rel == NULL)
		return 0; /* this mount does not show our cgroup */
	/* First visible mount wins, unless mounted over on the same point. */
	if (*mount != NULL && strcmp(*mount, mp) != 0)
		return 0;
	m = strdup(mp);
	d = path_join(mp, rel);
	h = strdup(own);
	if (m == NULL || d == NULL || h == NULL) {
		free(m);
		free(d);
		free(h);
		return -1;
	}
	free(*mount);
	free(*dir);
	free(*hpath);
	*mount = m;
	*dir = d;
	*hpath = h;
	return 0;
}

#define MI_FIELDS_MAX 64

int kiln_cgroup_parse_mountinfo(const char *mountinfo, const struct kiln_cgroup_self *self,
				struct kiln_cgroup_layout *out, struct kiln_error **err)
{
	const char *p = mountinfo, *line;
	size_t len;
	unsigned lineno = 0;

	if (mountinfo == NULL || self == NULL)
		return kiln_error_set(err, EINVAL, "parse mountinfo: no text");
	while ((p = next_line(p, &line, &len)) != NULL) {
		const char *f[MI_FIELDS_MAX];
		size_t fl[MI_FIELDS_MAX];
		size_t nf = 0, i, sep = 0;
		const char *s = line, *end = line + len;
		cleanup_free char *root = NULL;
		cleanup_free char *mp = NULL;
		cleanup_free char *super = NULL;
		int r = 0;

		lineno++;
		if (len == 0)
			continue;
		/* Fields are separated by single spaces (paths are escaped). */
		while (s <= end && nf < MI_FIELDS_MAX) {
			const char *e = memchr(s, ' ', (size_t)(end - s));

			if (e == NULL)
				e = end;
			f[nf] = s;
			fl[nf++] = (size_t)(e - s);
			s = e + 1;
		}
		/* id parent maj:min root mountpoint options [optional...] - fstype source super */
		for (i = 6; i < nf; i++) {
			if (fl[i] == 1 && f[i][0] == '-') {
				sep = i;
				break;
			}
		}
		if (sep == 0 || sep + 3 >= nf)
			return kiln_error_set(err, EINVAL, "parse mountinfo: line %u is malformed",
					      lineno);
		if (!(fl[sep + 1] == 6 && memcmp(f[sep + 1], "cgroup", 6) == 0) &&
		    !(fl[sep + 1] == 7 && memcmp(f[sep + 1], "cgroup2", 7) == 0))
			continue;
		root = unescape(f[3], fl[3]);
		mp = unescape(f[4], fl[4]);
		super = strndup(f[sep + 3], fl[sep + 3]);
		if (root == NULL || mp == NULL || super == NULL)
			return kiln_error_set(err, ENOMEM, "parse mountinfo");
		if (root[0] != '/' || mp[0] != '/')
			return kiln_error_set(err, EINVAL, "parse mountinfo: line %u is malformed",
					      lineno);
		if (fl[sep + 1] == 7) {
			r = take_mount(&out->v2_mount, &out->v2_dir, &out->v2_path, self->v2, mp,
				       root);
		} else {
			for (i = 0; i < KILN_CG_NCTRL && r == 0; i++) {
				if (kiln_cgroup_has_word(super, ctrl_names[i]))
					r = take_mount(&out->v1_mount[i], &out->v1_dir[i],
						       &out->v1_path[i], self->v1[i], mp, root);
			}
		}
		if (r < 0)
			return kiln_error_set(err, ENOMEM, "parse mountinfo");
	}
	return 0;
}

/* A kernel word list (cgroup.controllers) for messages: without its trailing
 * newline, "(none)" when empty. */
static void printable_list(const char *list, char *buf, size_t cap)
{
	size_t n;

	snprintf(buf, cap, "%s", list ? list : "");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0)
		snprintf(buf, cap, "(none)");
}

int kiln_cgroup_choose(const struct kiln_cgroup_layout *l, unsigned need,
		       const char *v2_controllers, struct kiln_error **err)
{
	unsigned v1set = 0, v2set = 0, m1, m2;
	char avail[256];
	size_t c;

	for (c = 0; c < KILN_CG_NCTRL; c++) {
		if (l->v1_dir[c] != NULL)
			v1set |= KILN_CG_BIT(c);
		if (l->v2_dir != NULL && kiln_cgroup_has_word(v2_controllers, ctrl_names[c]))
			v2set |= KILN_CG_BIT(c);
	}
	m1 = need & ~v1set;
	m2 = need & ~v2set;
	if (m1 == 0 && (v1set & (KILN_CG_BIT(KILN_CG_MEMORY) | KILN_CG_BIT(KILN_CG_PIDS))))
		return 1;
	if (l->v2_dir != NULL && m2 == 0) {
		if (need != 0 && v2_controllers == NULL)
			return kiln_error_set_code(
				err, ENOTSUP, "cgroup v2 at %s: cannot read cgroup.controllers",
				l->v2_dir);
		return 2;
	}
	if (l->v2_dir == NULL && need == 0 && v1set == 0)
		return kiln_error_set_code(
			err, ENOTSUP,
			"no cgroup hierarchy shows this process's cgroup "
			"(neither cgroup v1 memory/pids nor cgroup2 in /proc/self/mountinfo); "
			"mount cgroup2 on /sys/fs/cgroup");
	printable_list(v2_controllers, avail, sizeof(avail));
	for (c = 0; c < KILN_CG_NCTRL; c++) {
		if (!(m1 & m2 & KILN_CG_BIT(c)))
			continue;
		if (l->v2_dir == NULL)
			return kiln_error_set_code(
				err, ENOTSUP,
				"controller '%s' is not available: it is not mounted as "
				"cgroup v1 and no cgroup2 mount shows this process's "
				"cgroup; mount cgroup2 on /sys/fs/cgroup with '%s' enabled",
				ctrl_names[c], ctrl_names[c]);
		return kiln_error_set_code(
			err, ENOTSUP,
			"cgroup v2 at %s: controller '%s' is not available "
			"(cgroup.controllers: %s) and it is not mounted as cgroup v1; "
			"enable it in the parent cgroup's cgroup.subtree_control (or have "
			"it delegated to kiln), or run on a host with cgroup v1 %s",
			l->v2_dir, ctrl_names[c], avail, ctrl_names[c]);
	}
	/* Each controller exists somewhere, but not all in one hierarchy. */
	for (c = 0; c < KILN_CG_NCTRL; c++) {
		size_t c2;

		if (!(m1 & KILN_CG_BIT(c)))
			continue;
		for (c2 = 0; c2 < KILN_CG_NCTRL; c2++)
			if (m2 & KILN_CG_BIT(c2))
				break;
		return kiln_error_set_code(
			err, ENOTSUP,
			"controller '%s' is not mounted as cgroup v1 and "
			"controller '%s' is not available in cgroup v2 at %s "
			"(cgroup.controllers: %s); kiln needs all of its controllers "
			"in one hierarchy",
			ctrl_names[c], c2 < KILN_CG_NCTRL ? ctrl_names[c2] : "?",
			l->v2_dir ? l->v2_dir : "(none)", avail);
	}
	return kiln_error_set_code(
		err, ENOTSUP,
		"cgroup v1 has neither the memory nor the pids controller mounted and "
		"no usable cgroup2 mount shows this process's cgroup");
}

/* ======================================================================
 * Files on directory fds
 * ====================================================================== */

struct cg_dir {
	int parent_fd;	/* the caller's own cgroup directory in this hierarchy */
	int fd;		/* the run's cgroup; -1 while absent */
	unsigned ctrls; /* v1: controllers of this hierarchy kiln uses; v2: enabled ones */
	int key;	/* v1: a controller naming the hierarchy in /proc/<pid>/cgroup; v2: -1 */
	bool plain;	/* not cgroupfs: a test directory (see cgroup.h) */
	bool created;	/* created by this kiln_cgroup_create() call */
	char *own;	/* path of the parent (own) cgroup, for messages */
	char *path;	/* path of the run's cgroup, for messages */
	char *hpath;	/* its path in the hierarchy, as /proc/<pid>/cgroup shows it */
};

struct kiln_cgroup {
	int version; /* 1 or 2 */
	char *name;
	size_t ndirs;
	struct cg_dir dir[KILN_CG_NCTRL];
};

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ULL),
			      .tv_nsec = (long)(ns % 1000000000ULL)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Read a whole file (no fixed cap below TEXT_MAX) into a NUL-terminated
 * malloc'd buffer. */
static int read_text_at(int dirfd, const char *path, char **out, struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	cleanup_free char *buf = NULL;
	size_t cap = 4096, len = 0;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", path);
	if ((buf = malloc(cap)) == NULL)
		return kiln_error_set(err, ENOMEM, "read %s", path);
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb;

			if (cap >= TEXT_MAX)
				return kiln_error_set(err, EFBIG, "read %s: larger than %u bytes",
						      path, TEXT_MAX);
			nb = realloc(buf, cap * 2);
			if (nb == NULL)
				return kiln_error_set(err, ENOMEM, "read %s", path);
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kiln_error_set(err, errno, "read %s", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = steal_pointer(&buf);
	return 0;
}

/* Read a control file of d; a missing file is not an error: *out = NULL. */
static int read_opt(int fd, const char *file, const char *where, char **out,
		    struct kiln_error **err)
{
	*out = NULL;
	if (read_text_at(fd, file, out, err) < 0) {
		if ((*err)->code == ENOENT) {
			kiln_error_free(err);
			return 0;
		}
		return kiln_error_prefix(err, "%s", where);
	}
	return 0;
}

static int ctl_write(int fd, bool plain, const char *where, const char *file, const char *val,
		     struct kiln_error **err)
{
	if (kiln_write_file_at(fd, file, val, plain, err) < 0)
		return kiln_error_prefix(err, "%s", where);
	return 0;
}

static int dir_write(const struct cg_dir *d, const char *file, const char *val,
		     struct kiln_error **err)
{
	return ctl_write(d->fd, d->plain, d->path, file, val, err);
}

/* As dir_write, but a missing file returns 1 (and no error). */
static int dir_write_opt(const struct cg_dir *d, const char *file, const char *val,
			 struct kiln_error **err)
{
	if (dir_write(d, file, val, err) < 0) {
		if ((*err)->code == ENOENT) {
			kiln_error_free(err);
			return 1;
		}
		return -1;
	}
	return 0;
}

struct pidvec {
	pid_t *v;
	size_t n, cap;
};

static int pidvec_add_text(struct pidvec *pv, const char *text)
{
	const char *p = text, *line;
	size_t len;

	while ((p = next_line(p, &line, &len)) != NULL) {
		uint64_t v;

		if (parse_u64(line, len, &v) < 0 || v == 0 || v > INT_MAX)
			continue;
		if (pv->n == pv->cap) {
			size_t nc = pv->cap ? pv->cap * 2 : 64;
			pid_t *nv = realloc(pv->v, nc * sizeof(*nv));

			if (nv == NULL)
				return -1;
			pv->v = nv;
			pv->cap = nc;
		}
		pv->v[pv->n++] = (pid_t)v;
	}
	return 0;
}

/* The members of the cgroup at fd and of every cgroup below it. A missing
 * cgroup.procs (plain test directory) counts as none. */
static int collect_tree(int fd, const char *path, int depth, struct pidvec *pv,
			struct kiln_error **err)
{
	cleanup_free char *text = NULL;
	DIR *d;
	struct dirent *de;
	int dfd;

	if (depth > TREE_DEPTH_MAX)
		return kiln_error_set(err, ELOOP, "%s: cgroups nested deeper than %d", path,
				      TREE_DEPTH_MAX);
	if (read_opt(fd, "cgroup.procs", path, &text, err) < 0)
		return -1;
	if (text != NULL && pidvec_add_text(pv, text) < 0)
		return kiln_error_set(err, ENOMEM, "%s: list processes", path);
	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kiln_error_set(err, errno, "open %s", path);
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return kiln_error_set(err, errno, "open %s", path);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		cleanup_fd int cfd = -1;
		cleanup_free char *cpath = NULL;

		if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0) {
			if (errno == ENOENT)
				continue; /* removed meanwhile */
			kiln_error_set(err, errno, "open %s/%s", path, de->d_name);
			closedir(d);
			return -1;
		}
		if (asprintf(&cpath, "%s/%s", path, de->d_name) < 0) {
			cpath = NULL;
			closedir(d);
			return kiln_error_set(err, ENOMEM, "%s", path);
		}
		if (collect_tree(cfd, cpath, depth + 1, pv, err) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* Is pid (still) in the cgroup d, or below it? Decided from
 * /proc/<pid>/cgroup, which names cgroups the way our own paths do. */
static bool pid_is_member(pid_t pid, const struct cg_dir *d)
{
	char file[64];
	cleanup_free char *text = NULL;
	struct kiln_cgroup_self s = {0};
	struct kiln_error *e = NULL;
	const char *p, *rest;
	bool member = false;

	snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)pid);
	if (read_text_at(AT_FDCWD, file, &text, &e) < 0 ||
	    kiln_cgroup_parse_self(text, &s, &e) < 0) {
		kiln_error_free(&e);
		return false;
	}
	p = d->key < 0 ? s.v2 : s.v1[d->key];
	if (p != NULL) {
		rest = path_below(p, d->hpath);
		member = rest != NULL;
	}
	kiln_cgroup_self_clear(&s);
	return member;
}

/* SIGKILL pid if it is a member of d. Never signals ourselves.
 * The pidfd is taken before the membership check: if the process we checked
 * is not the one the pidfd refers to, the latter has died (its pid was
 * recycled) and pidfd_send_signal() fails with ESRCH, so a recycled pid is
 * never hit. Without pidfds (ENOSYS, or EPERM from a container's seccomp
 * profile) the check narrows the window but cannot close it. */
static void kill_member(pid_t pid, const struct cg_dir *d)
{
	cleanup_fd int pfd = -1;

	if (pid == getpid())
		return;
	pfd = kiln_pidfd_open(pid);
	if (pfd < 0 && errno == ESRCH)
		return; /* gone */
	if (!pid_is_member(pid, d))
		return;
	if (pfd >= 0)
		syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
	else
		kill(pid, SIGKILL);
}

/* Signal every member of every hierarchy; returns how many were seen. */
static ssize_t signal_members(struct kiln_cgroup *cg, struct kiln_error **err)
{
	ssize_t seen = 0;
	size_t i, j;

	for (i = 0; i < cg->ndirs; i++) {
		struct cg_dir *d = &cg->dir[i];
		struct pidvec pv = {0};

		if (d->fd < 0)
			continue;
		if (collect_tree(d->fd, d->path, 0, &pv, err) < 0) {
			free(pv.v);
			return -1;
		}
		for (j = 0; j < pv.n; j++)
			kill_member(pv.v[j], d);
		seen += (ssize_t)pv.n;
		free(pv.v);
	}
	return seen;
}

/* 1 while any process is left in the cgroup (or below), 0 when empty. */
static int populated(struct kiln_cgroup *cg, struct kiln_error **err)
{
	size_t i;

	for (i = 0; i < cg->ndirs; i++) {
		struct cg_dir *d = &cg->dir[i];
		struct pidvec pv = {0};
		cleanup_free char *ev = NULL;
		uint64_t v;

		if (d->fd < 0)
			continue;
		if (cg->version == 2) {
			if (read_opt(d->fd, "cgroup.events", d->path, &ev, err) < 0)
				return -1;
			if (ev != NULL && kiln_cgroup_keyed(ev, "populated", &v) == 0) {
				if (v != 0)
					return 1;
				continue;
			}
		}
		if (collect_tree(d->fd, d->path, 0, &pv, err) < 0) {
			free(pv.v);
			return -1;
		}
		free(pv.v);
		if (pv.n > 0)
			return 1;
	}
	return 0;
}

/* v1 freezer: stop every member so none can fork or exit (and free its pid)
 * while we signal. Returns true when the freeze was requested: the caller
 * must thaw. A freeze that does not settle in time is not an error: killing
 * proceeds anyway. */
static bool freeze(struct cg_dir *fz)
{
	struct kiln_error *e = NULL;
	uint64_t deadline = kiln_now_ns() + FREEZE_TIMEOUT_NS;

	if (dir_write(fz, "freezer.state", "FROZEN", &e) < 0) {
		kiln_error_free(&e);
		return false;
	}
	while (kiln_now_ns() < deadline) {
		char st[64];

		if (kiln_read_file_at(fz->fd, "freezer.state", st, sizeof(st), &e) < 0) {
			kiln_error_free(&e);
			break;
		}
		if (strncmp(st, "FROZEN", 6) == 0)
			break;
		sleep_ns(POLL_NS);
	}
	return true;
}

static void thaw(struct cg_dir *fz)
{
	struct kiln_error *e = NULL;

	dir_write(fz, "freezer.state", "THAWED", &e);
	kiln_error_free(&e);
}

static struct cg_dir *dir_for(struct kiln_cgroup *cg, enum kiln_cgroup_ctrl c)
{
	size_t i;

	for (i = 0; i < cg->ndirs; i++)
		if ((cg->dir[i].ctrls & KILN_CG_BIT(c)) && cg->dir[i].fd >= 0)
			return &cg->dir[i];
	return NULL;
}

static int cg_kill(struct kiln_cgroup *cg, struct kiln_error **err)
{
	uint64_t deadline = kiln_now_ns() + KILL_TIMEOUT_NS;
	bool use_kill_file = cg->version == 2;
	struct cg_dir *fz = cg->version == 1 ? dir_for(cg, KILN_CG_FREEZER) : NULL;
	bool frozen;
	int empty = populated(cg, err);

	/* The usual case: the pid namespace is gone, so is everyone in it. A
	 * freeze/thaw round trip would only add latency to every run. */
	if (empty <= 0)
		return empty;
	frozen = fz != NULL && freeze(fz);

	for (;;) {
		int r;

		if (use_kill_file && cg->dir[0].fd >= 0) {
			/* cgroup.kill (5.14+) kills the whole subtree atomically,
			 * fork bombs included. */
			r = dir_write_opt(&cg->dir[0], "cgroup.kill", "1", err);
			if (r < 0)
				return -1;
			if (r == 1)
				use_kill_file = false;
		}
		if (!use_kill_file && signal_members(cg, err) < 0) {
			if (frozen)
				thaw(fz);
			return -1;
		}
		if (frozen) {
			/* Frozen tasks act on SIGKILL once thawed. */
			thaw(fz);
			frozen = false;
		}
		r = populated(cg, err);
		if (r <= 0)
			return r;
		if (kiln_now_ns() >= deadline)
			return kiln_error_set(
				err, ETIMEDOUT,
				"cgroup %s: processes still present %llu s after SIGKILL",
				cg->dir[0].path,
				(unsigned long long)(KILL_TIMEOUT_NS / 1000000000ULL));
		sleep_ns(POLL_NS);
	}
}

/* Remove the cgroup parent/name and every cgroup below it, depth-first. On a
 * plain (test) directory, plain files are removed too. rmdir is retried on
 * EBUSY for a moment: the kernel releases a cgroup shortly after its last
 * task has exited. */
static int remove_tree(int parent, const char *name, const char *path, bool plain, int depth,
		       struct kiln_error **err)
{
	int fd;
	DIR *d;
	struct dirent *de;
	uint64_t deadline;

	if (depth > TREE_DEPTH_MAX)
		return kiln_error_set(err, ELOOP, "remove %s: nested deeper than %d", path,
				      TREE_DEPTH_MAX);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return kiln_error_set(err, errno, "open %s", path);
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return kiln_error_set(err, errno, "open %s", path);
	}
	while ((de = readdir(d)) != NULL) {
		cleanup_free char *cpath = NULL;
		unsigned char type = de->d_type;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (type == DT_UNKNOWN) {
			struct stat sb;

			if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = S_ISDIR(sb.st_mode) ? DT_DIR : DT_REG;
		}
		if (type == DT_DIR) {
			if (asprintf(&cpath, "%s/%s", path, de->d_name) < 0) {
				cpath = NULL;
				closedir(d);
				return kiln_error_set(err, ENOMEM, "remove %s", path);
			}
			if (remove_tree(dirfd(d), de->d_name, cpath, plain, depth + 1, err) < 0) {
				closedir(d);
				return -1;
			}
		} else if (plain && unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			kiln_error_set(err, errno, "remove %s/%s", path, de->d_name);
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	deadline = kiln_now_ns() + RMDIR_TIMEOUT_NS;
	for (;;) {
		if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || kiln_now_ns() >= deadline)
			return kiln_error_set(err, errno, "rmdir %s", path);
		sleep_ns(POLL_NS);
	}
}

/* Remove what exists of the run's cgroup in every hierarchy. */
static int remove_all(struct kiln_cgroup *cg, bool only_created, struct kiln_error **err)
{
	int ret = 0;
	size_t i;

	for (i = 0; i < cg->ndirs; i++) {
		struct cg_dir *d = &cg->dir[i];
		struct kiln_error *e = NULL;

		if (only_created && !d->created)
			continue;
		if (d->fd >= 0) {
			close(d->fd);
			d->fd = -1;
		}
		if (d->parent_fd < 0)
			continue;
		if (remove_tree(d->parent_fd, cg->name, d->path, d->plain, 0, &e) < 0) {
			if (ret == 0 && err != NULL && *err == NULL)
				*err = e;
			else
				kiln_error_free(&e);
			ret = -1;
		}
		d->created = false;
	}
	return ret;
}

static void cg_free(struct kiln_cgroup *cg)
{
	size_t i;

	if (cg == NULL)
		return;
	for (i = 0; i < cg->ndirs; i++) {
		struct cg_dir *d = &cg->dir[i];

		if (d->fd >= 0)
			close(d->fd);
		if (d->parent_fd >= 0)
			close(d->parent_fd);
		free(d->own);
		free(d->path);
		free(d->hpath);
	}
	free(cg->name);
	free(cg);
}

/* ======================================================================
 * Creation
 * ====================================================================== */

static bool name_valid(const char *name)
{
	size_t i, n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strcmp(name, SUPERVISOR) == 0)
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Open the caller's own cgroup directory of one hierarchy. With root == NULL
 * it must be on cgroupfs; a test root may be a plain directory. */
static int open_own(const char *path, bool test_root, bool *plain, struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	struct statfs sfs;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", path);
	if (fstatfs(fd, &sfs) < 0)
		return kiln_error_set(err, errno, "statfs %s", path);
	if (sfs.f_type == CGROUP_SUPER_MAGIC || sfs.f_type == CGROUP2_SUPER_MAGIC)
		*plain = false;
	else if (test_root)
		*plain = true;
	else
		return kiln_error_set(err, ENOTSUP, "%s is not a cgroup filesystem", path);
	return steal_fd(&fd);
}

static int add_dir(struct kiln_cgroup *cg, const char *own, const char *hown, unsigned ctrls,
		   int key, bool test_root, struct kiln_error **err)
{
	struct cg_dir *d = &cg->dir[cg->ndirs];

	d->fd = -1;
	d->parent_fd = -1;
	d->ctrls = ctrls;
	d->key = key;
	cg->ndirs++;
	d->own = strdup(own);
	d->path = path_join(own, cg->name);
	d->hpath = path_join(hown, cg->name);
	if (d->own == NULL || d->path == NULL || d->hpath == NULL)
		return kiln_error_set(err, ENOMEM, "cgroup %s", cg->name);
	d->parent_fd = open_own(own, test_root, &d->plain, err);
	return d->parent_fd < 0 ? -1 : 0;
}

/* A run's cgroup left behind by a crashed kiln: kill what runs in it and
 * remove it, with its child cgroups. */
static int remove_stale(struct kiln_cgroup *cg, struct kiln_error **err)
{
	bool any = false;
	size_t i;

	for (i = 0; i < cg->ndirs; i++) {
		struct cg_dir *d = &cg->dir[i];

		d->fd = openat(d->parent_fd, cg->name,
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d->fd >= 0)
			any = true;
		else if (errno != ENOENT)
			return kiln_error_set(err, errno, "open stale cgroup %s", d->path);
	}
	if (!any)
		return 0;
	if (cg_kill(cg, err) < 0 || remove_all(cg, false, err) < 0)
		return kiln_error_prefix(err, "remove stale cgroup '%s'", cg->name);
	return 0;
}

static int make_dirs(struct kiln_cgroup *cg, struct kiln_error **err)
{
	size_t i;

	for (i = 0; i < cg->ndirs; i++) {
		struct cg_dir *d = &cg->dir[i];

		if (mkdirat(d->parent_fd, cg->name, 0755) < 0)
			return kiln_error_set(err, errno, "mkdir %s", d->path);
		d->created = true;
		d->fd = openat(d->parent_fd, cg->name,
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d->fd < 0)
			return kiln_error_set(err, errno, "open %s", d->path);
	}
	return 0;
}

/* No swap accounting in this kernel: the memory limit cannot cover swap.
 * That is only acceptable while no swap is active. */
static int check_no_swap(const char *where, const char *file, struct kiln_error **err)
{
	cleanup_free char *swaps = NULL;

	if (read_text_at(AT_FDCWD, "/proc/swaps", &swaps, err) < 0)
		return kiln_error_prefix(err,
					 "%s has no %s (no swap accounting) and swap usage "
					 "cannot be checked",
					 where, file);
	if (kiln_cgroup_swap_active(swaps))
		return kiln_error_set_code(
			err, ENOTSUP,
			"%s has no %s: the kernel does not account swap to cgroups "
			"while swap is active, so the memory limit would not cover "
			"swap; enable swap accounting (swapaccount=1; on cgroup v2 also "
			"no cgroup.memory=noswap) or turn swap off",
			where, file);
	return 0;
}

static int apply_v1(struct kiln_cgroup *cg, const struct kiln_cgroup_limits *lim,
		    struct kiln_error **err)
{
	char val[32];
	struct cg_dir *d;
	int r;

	if (lim->memory != 0) {
		d = dir_for(cg, KILN_CG_MEMORY);
		snprintf(val, sizeof(val), "%" PRIu64, lim->memory);
		/* memsw must stay >= the memory limit: memory first. */
		if (dir_write(d, "memory.limit_in_bytes", val, err) < 0)
			return -1;
		r = dir_write_opt(d, "memory.memsw.limit_in_bytes", val, err);
		if (r < 0)
			return -1;
		if (r == 1 && check_no_swap(d->path, "memory.memsw.limit_in_bytes", err) < 0)
			return -1;
	}
	if (lim->pids != 0) {
		d = dir_for(cg, KILN_CG_PIDS);
		snprintf(val, sizeof(val), "%" PRIu64, lim->pids);
		if (dir_write(d, "pids.max", val, err) < 0)
			return -1;
	}
	if (lim->cpu_milli != 0) {
		d = dir_for(cg, KILN_CG_CPU);
		snprintf(val, sizeof(val), "%llu", CPU_PERIOD_US);
		if (dir_write(d, "cpu.cfs_period_us", val, err) < 0)
			return -1;
		snprintf(val, sizeof(val), "%" PRIu64, lim->cpu_milli * 100);
		if (dir_write(d, "cpu.cfs_quota_us", val, err) < 0)
			return -1;
	}
	return 0;
}

static int apply_v2(struct cg_dir *d, const struct kiln_cgroup_limits *lim, struct kiln_error **err)
{
	char val[64];
	int r;

	if (lim->memory != 0) {
		snprintf(val, sizeof(val), "%" PRIu64, lim->memory);
		if (dir_write(d, "memory.max", val, err) < 0)
			return -1;
		/* No swap at all, so memory.max bounds memory and swap together. */
		r = dir_write_opt(d, "memory.swap.max", "0", err);
		if (r < 0)
			return -1;
		if (r == 1 && check_no_swap(d->path, "memory.swap.max", err) < 0)
			return -1;
		/* One OOM kill takes the whole run down (4.19+; older kernels
		 * kill one process at a time, still within the limit). */
		if (dir_write_opt(d, "memory.oom.group", "1", err) < 0)
			return -1;
	}
	if (lim->pids != 0) {
		snprintf(val, sizeof(val), "%" PRIu64, lim->pids);
		if (dir_write(d, "pids.max", val, err) < 0)
			return -1;
	}
	if (lim->cpu_milli != 0) {
		snprintf(val, sizeof(val), "%" PRIu64 " %llu", lim->cpu_milli * 100, CPU_PERIOD_US);
		if (dir_write(d, "cpu.max", val, err) < 0)
			return -1;
	}
	return 0;
}

/* Move every process of cgroup from_fd into to_fd (whole thread groups).
 * Processes that exit meanwhile (ESRCH) are skipped. */
static int move_procs(int from_fd, const char *from, int to_fd, bool plain, const char *to,
		      struct kiln_error **err)
{
	cleanup_free char *text = NULL;
	struct pidvec pv = {0};
	size_t i;

	if (read_text_at(from_fd, "cgroup.procs", &text, err) < 0)
		return kiln_error_prefix(err, "%s", from);
	if (pidvec_add_text(&pv, text) < 0)
		return kiln_error_set(err, ENOMEM, "%s: list processes", from);
	for (i = 0; i < pv.n; i++) {
		char val[16];

		snprintf(val, sizeof(val), "%d", (int)pv.v[i]);
		if (ctl_write(to_fd, plain, to, "cgroup.procs", val, err) < 0) {
			if ((*err)->code == ESRCH) {
				kiln_error_free(err);
				continue;
			}
			free(pv.v);
			return kiln_error_prefix(err, "move process %s to %s", val, to);
		}
	}
	free(pv.v);
	return 0;
}

/* Enable the controllers kiln needs in the own cgroup's subtree_control,
 * first moving the own cgroup's processes into a leaf when it is not the
 * root cgroup ("no internal processes": a non-root cgroup with processes
 * cannot enable domain controllers for its children; the kernel says EBUSY,
 * and we move again whatever was forked meanwhile). */
static int enable_v2(struct cg_dir *d, unsigned enable, struct kiln_error **err)
{
	cleanup_free char *subtree = NULL;
	cleanup_free char *own_procs = NULL;
	cleanup_fd int sup_fd = -1;
	cleanup_free char *sup_path = NULL;
	char req[128] = "";
	bool is_root, sup_created = false;
	unsigned missing = 0;
	size_t c;
	int attempt;

	if (read_text_at(d->parent_fd, "cgroup.subtree_control", &subtree, err) < 0)
		return kiln_error_prefix(err, "%s", d->own);
	for (c = 0; c < KILN_CG_NCTRL; c++) {
		if ((enable & KILN_CG_BIT(c)) && !kiln_cgroup_has_word(subtree, ctrl_names[c])) {
			missing |= KILN_CG_BIT(c);
			snprintf(req + strlen(req), sizeof(req) - strlen(req), "%s+%s",
				 req[0] ? " " : "", ctrl_names[c]);
		}
	}
	if (missing == 0)
		return 0;
	/* Only non-root cgroups have cgroup.type. */
	is_root = faccessat(d->parent_fd, "cgroup.type", F_OK, 0) < 0 && errno == ENOENT;
	if (!is_root) {
		if (read_text_at(d->parent_fd, "cgroup.procs", &own_procs, err) < 0)
			return kiln_error_prefix(err, "%s", d->own);
		sup_path = path_join(d->own, SUPERVISOR);
		if (sup_path == NULL)
			return kiln_error_set(err, ENOMEM, "%s", d->own);
	}
	for (attempt = 0;; attempt++) {
		if (!is_root && own_procs != NULL && own_procs[0] != '\0') {
			if (sup_fd < 0) {
				if (mkdirat(d->parent_fd, SUPERVISOR, 0755) == 0)
					sup_created = true;
				else if (errno != EEXIST)
					return kiln_error_set(err, errno, "mkdir %s", sup_path);
				sup_fd = openat(d->parent_fd, SUPERVISOR,
						O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sup_fd < 0) {
					kiln_error_set(err, errno, "open %s", sup_path);
					goto undo;
				}
			}
			if (move_procs(d->parent_fd, d->own, sup_fd, d->plain, sup_path, err) < 0)
				goto undo;
		}
		if (ctl_write(d->parent_fd, d->plain, d->own, "cgroup.subtree_control", req, err) ==
		    0)
			return 0;
		if ((*err)->code != EBUSY || is_root || attempt + 1 >= ENABLE_ATTEMPTS)
			goto undo;
		kiln_error_free(err);
		free(own_procs);
		own_procs = NULL;
		if (read_text_at(d->parent_fd, "cgroup.procs", &own_procs, err) < 0)
			return kiln_error_prefix(err, "%s", d->own);
	}
undo:
	/* Controllers could not be enabled: put the processes back where they
	 * were, as if we had never come. */
	if (sup_created && sup_fd >= 0) {
		struct kiln_error *e = NULL;

		if (move_procs(sup_fd, sup_path, d->parent_fd, d->plain, d->own, &e) == 0)
			remove_tree(d->parent_fd, SUPERVISOR, sup_path, d->plain, 0, &e);
		kiln_error_free(&e);
	}
	return kiln_error_prefix(err, "enable '%s' in %s/cgroup.subtree_control", req, d->own);
}

static int build_layout(const char *root, struct kiln_cgroup_layout *l, struct kiln_error **err)
{
	cleanup_free char *mi = NULL;
	cleanup_free char *selftext = NULL;
	struct kiln_cgroup_self self = {0};
	struct stat sb;
	size_t c;
	int r;

	if (root == NULL) {
		if (read_text_at(AT_FDCWD, "/proc/self/cgroup", &selftext, err) < 0 ||
		    read_text_at(AT_FDCWD, "/proc/self/mountinfo", &mi, err) < 0)
			return -1;
		if (kiln_cgroup_parse_self(selftext, &self, err) < 0)
			return -1;
		r = kiln_cgroup_parse_mountinfo(mi, &self, l, err);
		kiln_cgroup_self_clear(&self);
		return r;
	}
	if (stat(root, &sb) < 0)
		return kiln_error_set(err, errno, "cgroup root %s", root);
	if (!S_ISDIR(sb.st_mode))
		return kiln_error_set(err, ENOTDIR, "cgroup root %s", root);
	for (c = 0; c < KILN_CG_NCTRL; c++) {
		cleanup_free char *p = path_join(root, ctrl_names[c]);

		if (p == NULL)
			return kiln_error_set(err, ENOMEM, "cgroup root %s", root);
		if (stat(p, &sb) < 0 || !S_ISDIR(sb.st_mode))
			continue;
		l->v1_mount[c] = strdup(p);
		l->v1_dir[c] = strdup(p);
		l->v1_path[c] = strdup("/");
		if (!l->v1_mount[c] || !l->v1_dir[c] || !l->v1_path[c])
			return kiln_error_set(err, ENOMEM, "cgroup root %s", root);
	}
	if (l->v1_dir[KILN_CG_MEMORY] || l->v1_dir[KILN_CG_PIDS] || l->v1_dir[KILN_CG_CPU] ||
	    l->v1_dir[KILN_CG_FREEZER])
		return 0;
	l->v2_mount = strdup(root);
	l->v2_dir = strdup(root);
	l->v2_path = strdup("/");
	if (!l->v2_mount || !l->v2_dir || !l->v2_path)
		return kiln_error_set(err, ENOMEM, "cgroup root %s", root);
	return 0;
}

static int setup_v1(struct kiln_cgroup *cg, const struct kiln_cgroup_layout *l, unsigned need,
		    bool test_root, struct kiln_error **err)
{
	unsigned join = need;
	size_t c, i;

	/* memory and pids whenever mounted (stats, tracking), freezer for a
	 * race-free kill; cpu only for a CPU limit. */
	for (c = 0; c < KILN_CG_NCTRL; c++)
		if (c != KILN_CG_CPU && l->v1_dir[c] != NULL)
			join |= KILN_CG_BIT(c);
	for (c = 0; c < KILN_CG_NCTRL; c++) {
		if (!(join & KILN_CG_BIT(c)))
			continue;
		/* Co-mounted controllers (cpu,cpuacct; memory,pids...) share
		 * one directory. */
		for (i = 0; i < cg->ndirs; i++) {
			if (strcmp(cg->dir[i].own, l->v1_dir[c]) == 0) {
				cg->dir[i].ctrls |= KILN_CG_BIT(c);
				break;
			}
		}
		if (i < cg->ndirs)
			continue;
		if (add_dir(cg, l->v1_dir[c], l->v1_path[c], KILN_CG_BIT(c), (int)c, test_root,
			    err) < 0)
			return -1;
	}
	return 0;
}

static int setup_v2(struct kiln_cgroup *cg, const struct kiln_cgroup_layout *l, unsigned need,
		    const char *controllers, bool test_root, struct kiln_error **err)
{
	unsigned enable = need;

	/* memory and pids whenever available: peak memory and pids stats. */
	if (kiln_cgroup_has_word(controllers, "memory"))
		enable |= KILN_CG_BIT(KILN_CG_MEMORY);
	if (kiln_cgroup_has_word(controllers, "pids"))
		enable |= KILN_CG_BIT(KILN_CG_PIDS);
	return add_dir(cg, l->v2_dir, l->v2_path, enable, -1, test_root, err);
}

static int create(const char *root, const char *name, const struct kiln_cgroup_limits *lim,
		  struct kiln_cgroup **out, struct kiln_error **err)
{
	struct kiln_cgroup_layout l = {0};
	cleanup_free char *controllers = NULL;
	struct kiln_cgroup *cg = NULL;
	unsigned need = 0;
	int ver;

	if (!name_valid(name))
		return kiln_error_set(err, EINVAL, "invalid cgroup name '%s'", name ? name : "");
	if (lim->cpu_milli != 0 &&
	    (lim->cpu_milli * 100 < CPU_QUOTA_MIN_US || lim->cpu_milli > UINT64_MAX / 100))
		return kiln_error_set(err, EINVAL,
				      "CPU limit of %" PRIu64 " thousandths is outside what the "
				      "kernel accepts (at least 10, i.e. 0.01 CPU)",
				      lim->cpu_milli);
	if (lim->memory != 0)
		need |= KILN_CG_BIT(KILN_CG_MEMORY);
	if (lim->pids != 0)
		need |= KILN_CG_BIT(KILN_CG_PIDS);
	if (lim->cpu_milli != 0)
		need |= KILN_CG_BIT(KILN_CG_CPU);

	if (build_layout(root, &l, err) < 0)
		goto fail;
	if (l.v2_dir != NULL) {
		struct kiln_error *e = NULL;
		cleanup_free char *p = path_join(l.v2_dir, "cgroup.controllers");

		if (p != NULL && read_text_at(AT_FDCWD, p, &controllers, &e) < 0)
			kiln_error_free(&e);
	}
	ver = kiln_cgroup_choose(&l, need, controllers, err);
	if (ver < 0)
		goto fail;

	cg = calloc(1, sizeof(*cg));
	if (cg == NULL || (cg->name = strdup(name)) == NULL) {
		kiln_error_set(err, ENOMEM, "cgroup %s", name);
		goto fail;
	}
	cg->version = ver;
	if (ver == 1 ? setup_v1(cg, &l, need, root != NULL, err) < 0
		     : setup_v2(cg, &l, need, controllers, root != NULL, err) < 0)
		goto fail;
	if (remove_stale(cg, err) < 0)
		goto fail;
	if (ver == 2 && enable_v2(&cg->dir[0], cg->dir[0].ctrls, err) < 0)
		goto fail;
	if (make_dirs(cg, err) < 0)
		goto undo;
	if ((ver == 1 ? apply_v1(cg, lim, err) : apply_v2(&cg->dir[0], lim, err)) < 0)
		goto undo;
	kiln_cgroup_layout_clear(&l);
	*out = cg;
	return 0;
undo:
	remove_all(cg, true, NULL);
fail:
	kiln_cgroup_layout_clear(&l);
	cg_free(cg);
	return -1;
}

/* ======================================================================
 * Public entry points
 * ====================================================================== */

int kiln_cgroup_create(const char *root, const char *name, const struct kiln_cgroup_limits *lim,
		       struct kiln_cgroup **out, struct kiln_error **err)
{
	static const struct kiln_cgroup_limits none = {0};

	*out = NULL;
	if (create(root, name, lim ? lim : &none, out, err) < 0) {
		int code = err != NULL && *err != NULL ? (*err)->code : 0;

		if (code == EACCES || code == EPERM || code == EROFS)
			kiln_error_prefix(err, "cgroups are not writable by this user (run kiln as "
					       "root, or give it a delegated cgroup v2 subtree)");
		return kiln_error_prefix(err, "create cgroup '%s'", name ? name : "");
	}
	return 0;
}

int kiln_cgroup_attach(struct kiln_cgroup *cg, pid_t pid, struct kiln_error **err)
{
	char val[16];
	size_t i;

	if (pid <= 0)
		return kiln_error_set(err, EINVAL, "attach pid %d to cgroup '%s'", (int)pid,
				      cg->name);
	snprintf(val, sizeof(val), "%d", (int)pid);
	for (i = 0; i < cg->ndirs; i++) {
		if (dir_write(&cg->dir[i], "cgroup.procs", val, err) < 0)
			return kiln_error_prefix(err, "attach pid %d to cgroup '%s'", (int)pid,
						 cg->name);
	}
	return 0;
}

/* A number from a control file: the whole file (key == NULL) or the line
 * "key N". A missing file or line leaves *val at 0. */
static int stat_u64(struct cg_dir *d, const char *file, const char *key, uint64_t *val,
		    struct kiln_error **err)
{
	cleanup_free char *text = NULL;
	size_t n;

	*val = 0;
	if (d == NULL)
		return 0;
	if (read_opt(d->fd, file, d->path, &text, err) < 0)
		return -1;
	if (text == NULL)
		return 0;
	if (key != NULL) {
		if (kiln_cgroup_keyed(text, key, val) < 0)
			*val = 0;
		return 0;
	}
	n = strlen(text);
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	if (parse_u64(text, n, val) < 0)
		*val = 0;
	return 0;
}

int kiln_cgroup_stats(struct kiln_cgroup *cg, struct kiln_cgroup_stats *st, struct kiln_error **err)
{
	struct cg_dir *mem = dir_for(cg, KILN_CG_MEMORY);
	struct cg_dir *pids = dir_for(cg, KILN_CG_PIDS);
	int r;

	memset(st, 0, sizeof(*st));
	if (cg->version == 1) {
		/* oom_kill in memory.oom_control exists since 4.13; memory.failcnt
		 * counts reclaim at the limit, not kills, so it is no substitute. */
		r = stat_u64(mem, "memory.max_usage_in_bytes", NULL, &st->peak_memory, err);
		if (r == 0)
			r = stat_u64(mem, "memory.oom_control", "oom_kill", &st->oom_kills, err);
	} else {
		/* memory.peak: 5.19+. memory.events counts the subtree. */
		r = stat_u64(mem, "memory.peak", NULL, &st->peak_memory, err);
		if (r == 0)
			r = stat_u64(mem, "memory.events", "oom_kill", &st->oom_kills, err);
	}
	if (r == 0)
		r = stat_u64(pids, "pids.events", "max", &st->pids_max_hits, err);
	/* CPU time from the kernel's accounting: unlike the rusage of a
	 * killed init, it covers every process the run ever had. */
	if (r == 0 && cg->version == 1) {
		struct cg_dir *acct = dir_for(cg, KILN_CG_CPUACCT);

		r = stat_u64(acct, "cpuacct.usage_user", NULL, &st->cpu_user_ns, err);
		if (r == 0)
			r = stat_u64(acct, "cpuacct.usage_sys", NULL, &st->cpu_sys_ns, err);
	} else if (r == 0 && cg->ndirs > 0) {
		r = stat_u64(&cg->dir[0], "cpu.stat", "user_usec", &st->cpu_user_ns, err);
		if (r == 0)
			r = stat_u64(&cg->dir[0], "cpu.stat", "system_usec", &st->cpu_sys_ns, err);
		st->cpu_user_ns *= 1000;
		st->cpu_sys_ns *= 1000;
	}
	if (r < 0)
		return kiln_error_prefix(err, "statistics of cgroup '%s'", cg->name);
	return 0;
}

int kiln_cgroup_kill(struct kiln_cgroup *cg, struct kiln_error **err)
{
	if (cg_kill(cg, err) < 0)
		return kiln_error_prefix(err, "kill cgroup '%s'", cg->name);
	return 0;
}

void kiln_cgroup_destroy(struct kiln_cgroup *cg)
{
	struct kiln_error *e = NULL;

	if (cg == NULL)
		return;
	cg_kill(cg, &e);
	kiln_error_free(&e);
	remove_all(cg, false, &e);
	kiln_error_free(&e);
	cg_free(cg);
}

const char *kiln_cgroup_version(const struct kiln_cgroup *cg)
{
	if (cg == NULL)
		return "none";
	return cg->version == 1 ? "v1" : "v2";
}
