/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packing a source tree for `kiln submit`: a deterministic tar.gz (pax
 * format) written with libarchive to an anonymous temporary file, so the
 * upload can stream it instead of holding it in memory.
 *
 * Deterministic: entries in byte order of their names, depth first; mtime
 * kept (whole seconds); permissions kept without setuid/setgid/sticky; uid
 * and gid 0 and no user or group names; no atime/ctime; no timestamp in the
 * gzip header. Packing the same tree twice gives the same bytes.
 *
 * Never follows a symbolic link: a link is stored as a link (its target as
 * written), and the tree is walked with openat(O_NOFOLLOW). Devices, fifos
 * and sockets are refused (unless .kilnignore excludes them). Hard links are
 * stored as separate copies.
 *
 * .kilnignore, at the top of the tree only, is a subset of gitignore:
 *   - blank lines and lines starting with '#' are ignored; "\#" and "\!"
 *     start a pattern with a literal '#' or '!'; trailing blanks are dropped
 *   - "!pattern" re-includes what an earlier pattern excluded; the last
 *     matching line wins; nothing inside an excluded directory can be
 *     re-included (the directory is not read at all)
 *   - a trailing '/' matches directories only ("build/")
 *   - a pattern with a '/' at its start or middle is anchored at the top of
 *     the tree ("/TODO", "doc/x.txt"); without one it matches a name at any
 *     depth ("*.o")
 *   - each component is matched with fnmatch(3): '*', '?', "[a-z]", "\x"
 *     ('*' does not cross '/' and does match a leading '.'); a component
 *     that is exactly "**" matches zero or more directories (at the start
 *     or in the middle of a pattern) and, at its end, everything inside
 * Not supported: .kilnignore files in subdirectories, and trailing spaces
 * escaped with '\'.
 */
#ifndef KILN_CLI_PACK_H
#define KILN_CLI_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct kiln_ignore;

/* Parse .kilnignore text (copied). */
int kiln_ignore_parse(const char *text, size_t len, struct kiln_ignore **out,
		      struct kiln_error **err);
/* Is relpath ("src/a.o", no leading '/') excluded? */
bool kiln_ignore_match(const struct kiln_ignore *ig, const char *relpath, bool is_dir);
void kiln_ignore_free(struct kiln_ignore *ig);

struct kiln_pack_stats {
	uint64_t files, dirs, symlinks, ignored;
	uint64_t bytes; /* file contents before compression */
};

/* Pack the tree under dir into a new anonymous temporary file (in
 * $TMPDIR or /tmp). *fd is the file (O_RDWR|O_CLOEXEC, offset
 * unspecified), *size its length. */
int kiln_pack_dir(const char *dir, int *fd, uint64_t *size, struct kiln_pack_stats *stats,
		  struct kiln_error **err);

#endif
