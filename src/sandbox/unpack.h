/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unpacking a submitted source archive. This runs in the build process,
 * inside the sandbox, after every protection is in place (ARCHITECTURE.md:
 * untrusted archives are never unpacked by a privileged process in the
 * host's view of the filesystem). A crafted archive that subverted
 * libarchive would gain nothing the build script does not already have.
 * libarchive's secure-extraction flags are the second line; the entry
 * checks below are the first.
 */
#ifndef KILN_SANDBOX_UNPACK_H
#define KILN_SANDBOX_UNPACK_H

#include <stddef.h>
#include <stdint.h>

struct kiln_unpack_limits {
	uint64_t max_bytes; /* sum of entry sizes (apparent), and bytes decompressed */
	uint64_t max_files; /* entries of any kind */
	uint64_t max_path;  /* bytes in a path (and a link target) */
};

/* Extract the tar archive (plain, gzip, xz, zstd, bzip2) read from fd into
 * the current working directory. Regular files, directories, symlinks and
 * hard links within the archive only; no owners, no special bits, no
 * devices, fifos or sockets; no absolute paths, no "..", nothing written
 * through a symlink. On failure, msg gets one line saying which entry and
 * why, and -1 is returned (what was extracted so far stays). */
int kiln_unpack(int fd, const struct kiln_unpack_limits *lim, char *msg, size_t msglen);

/* Load libarchive (dlopen) if not yet done. Called by the supervisor when
 * an archive is set, so the build process never needs to. -1 with msg. */
int kiln_unpack_load(char *msg, size_t msglen);

/* Pure check of one archive path (also of a hard-link target). */
int kiln_unpack_path_ok(const char *path, uint64_t max_path);

#endif
