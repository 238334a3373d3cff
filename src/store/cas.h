/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Content-addressed blob store: DIR/sha256/ab/cdef... (the full hex digest
 * split after two characters). Blobs are immutable: written to a temporary
 * file in DIR/tmp, fsynced, then linked into place only if absent
 * (deduplicated across jobs), and the directory fsynced. A reader gets a
 * blob only after its content has been verified against its name.
 *
 * One struct kiln_cas may be shared by all threads (it holds only directory
 * fds); a writer is used by one thread at a time.
 */
#ifndef KILN_STORE_CAS_H
#define KILN_STORE_CAS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KILN_SHA256_HEX 65 /* 64 hex digits + NUL */

struct kiln_cas;
struct kiln_cas_writer;

/* Creates DIR (0700) and its subdirectories if needed. */
int kiln_cas_open(const char *dir, struct kiln_cas **out, struct kiln_error **err);
void kiln_cas_close(struct kiln_cas *cas);

/* Streaming writer: the digest is computed on the way in. max_bytes 0 =
 * unlimited; exceeding it fails the write with EFBIG. */
int kiln_cas_writer_new(struct kiln_cas *cas, uint64_t max_bytes, struct kiln_cas_writer **out,
			struct kiln_error **err);
int kiln_cas_write(struct kiln_cas_writer *w, const void *buf, size_t len, struct kiln_error **err);
/* Seal the blob; hex receives its digest, size its length. Frees w. */
int kiln_cas_commit(struct kiln_cas_writer *w, char hex[KILN_SHA256_HEX], uint64_t *size,
		    struct kiln_error **err);
/* The digest of what was written so far, without sealing (the API checks
 * a signed manifest before it commits the source). -1 after a failure. */
int kiln_cas_writer_digest(const struct kiln_cas_writer *w, char hex[KILN_SHA256_HEX]);
/* Discard (also after a failed write). Frees w. Accepts NULL. */
void kiln_cas_abort(struct kiln_cas_writer *w);

/* Copy everything readable from fd into the store. */
int kiln_cas_put_fd(struct kiln_cas *cas, int fd, uint64_t max_bytes, char hex[KILN_SHA256_HEX],
		    uint64_t *size, struct kiln_error **err);

/* Open a blob for reading after verifying its content hashes to hex (the
 * fd is positioned at 0). ENOENT if absent, EBADMSG if the content does not
 * match (the blob is then moved to DIR/corrupt/ and reported). hex must be
 * 64 lowercase hex digits (EINVAL otherwise: it becomes a path). */
int kiln_cas_open_blob(struct kiln_cas *cas, const char *hex, int *fd, uint64_t *size,
		       struct kiln_error **err);
int kiln_cas_has(struct kiln_cas *cas, const char *hex);

/* Pure helpers (tests, API input checks). */
int kiln_sha256_hex_valid(const char *hex);
void kiln_sha256_buf(const void *buf, size_t len, char hex[KILN_SHA256_HEX]);

#endif
