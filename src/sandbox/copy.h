/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Copying a directory tree between two directory fds without ever
 * following a link (CONVENTIONS.md 6). Used both to copy a source tree into
 * a fresh workspace and to export /workspace/out to the host afterwards,
 * where the source side is hostile (THREATS.md §10).
 */
#ifndef KILN_SANDBOX_COPY_H
#define KILN_SANDBOX_COPY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

struct kiln_copy_opts {
	uid_t uid;              /* chown everything created to uid/gid; (uid_t)-1 keeps creator */
	gid_t gid;
	uint64_t max_bytes;     /* total apparent size of regular files; 0 = unlimited */
	uint64_t max_files;     /* entries of any kind; 0 = unlimited */
	unsigned max_depth;     /* directory nesting; 0 = 256 */
	bool skip_invalid_utf8; /* skip (and record) names that are not valid UTF-8 */
	bool skip_special;      /* skip (and record) devices, fifos, sockets; else error */
};

struct kiln_copy_stats {
	uint64_t files, dirs, symlinks, bytes;
	char **skipped;         /* NULL-terminated "relative/path: reason"; owned */
	size_t nskipped;
};

/* Copy the contents of src_dir into dst_dir (both O_DIRECTORY fds).
 * - regular files: copied (holes preserved), hardlinks become independent copies
 * - directories: created; symlinks: recreated with the same target, never followed
 * - permission bits kept except setuid, setgid and sticky, which are dropped
 * - existing entries in dst are never followed or overwritten (O_EXCL/O_NOFOLLOW)
 * Exceeding max_bytes/max_files/max_depth is an error (code EFBIG, EMLINK,
 * ELOOP). Stats are filled as far as the copy got. */
int kiln_copy_tree(int src_dir, int dst_dir, const struct kiln_copy_opts *opts,
		   struct kiln_copy_stats *st, struct kiln_error **err);
void kiln_copy_stats_free(struct kiln_copy_stats *st);

#endif
