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
	uid_t uid;		/* chown everything created to uid/gid; (uid_t)-1 keeps creator */
	gid_t gid;		/*   (each of them: -1 leaves that one as created) */
	uint64_t max_bytes;	/* total apparent size of regular files; 0 = unlimited */
	uint64_t max_files;	/* entries of any kind, skipped ones included; 0 = unlimited */
	unsigned max_depth;	/* directory nesting; 0 = 256, at most 1024 (else EINVAL).
				 * Subdirectories of src_dir are level 1: max_depth 2
				 * allows a/b but refuses a/b/c. */
	bool skip_invalid_utf8; /* skip (and record) names that are not valid UTF-8;
				 * when false they are copied verbatim */
	bool skip_special;	/* skip (and record) devices, fifos, sockets; else error
				 * ENOTSUP. They are never opened either way. */
};

struct kiln_copy_stats {
	/* Entries created; bytes is the apparent size of the files copied. */
	uint64_t files, dirs, symlinks, bytes;
	/* Owned, NULL-terminated "relative/path: reason" lines, NULL when
	 * nothing was skipped. The path is escaped (\xNN for control bytes,
	 * invalid UTF-8, '\\' and invisible/bidi characters), so it is safe
	 * to print. At most 1000 lines, then one "(N more entries skipped)". */
	char **skipped;
	size_t nskipped; /* lines in skipped[] */
};

/* Copy the contents of src_dir into dst_dir (both directory fds, borrowed;
 * src_dir may be O_PATH, its file offset is not used or moved). The
 * attributes of src_dir/dst_dir themselves are not copied.
 * - regular files: copied (holes preserved), hardlinks become independent
 *   copies; a file that grows during the copy is cut at its stat'ed size
 * - directories: created; symlinks: recreated with the same target (any
 *   target, absolute or "../"), never followed
 * - permission bits kept except setuid, setgid and sticky, which are dropped;
 *   atime/mtime kept (files, directories, symlinks)
 * - existing entries in dst are never followed or overwritten: any existing
 *   name, dangling symlink included, is an EEXIST error
 * Exceeding max_bytes/max_files/max_depth is an error (code EFBIG, EMLINK,
 * ELOOP); max_bytes is checked against a file's st_size before it is written.
 * Other codes: ENOTSUP (special file, !skip_special), EINVAL (bad options, or
 * dst_dir inside the copied tree), ESTALE (an entry was replaced while being
 * copied), ENOSYS (no openat2(): Linux >= 5.6 required), or the errno of the
 * failed system call. Messages read "copy <relative/path>: what: strerror"
 * with the path escaped as in skipped[] ("." for src_dir itself).
 *
 * *st is reset first (it must not hold an unfreed list) and filled as far as
 * the copy got, also on error; free it with kiln_copy_stats_free(). st may be
 * NULL. On error dst_dir holds a partial copy (never a partial regular file)
 * that the caller must discard. */
int kiln_copy_tree(int src_dir, int dst_dir, const struct kiln_copy_opts *opts,
		   struct kiln_copy_stats *st, struct kiln_error **err);
/* Free the skipped list and reset *st to all zeroes. Accepts NULL. */
void kiln_copy_stats_free(struct kiln_copy_stats *st);

#endif
