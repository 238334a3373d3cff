/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Masking granted secrets in a job's output (docs/policy.md). A masker
 * holds, for each secret, the byte strings to find: the raw value, its
 * base64 (standard and URL-safe alphabets, each at the three alignments a
 * value can have inside a longer base64 text: only the characters that
 * depend on the value alone), URL-encoded (upper- and lower-case %XX, and
 * '+' for space), JSON-escaped (as jansson writes it, with and without
 * \u escapes for non-ASCII and \/), and hex (lower and upper case).
 *
 * A stream (one per output stream of a job) replaces every occurrence
 * before it passes the bytes on, including an occurrence split across
 * chunks: bytes that could still be the start of a pattern are held back
 * until the next chunk decides (at most the longest pattern less one
 * byte), and released by kiln_mask_stream_finish. The replacement is three
 * copies of a character that occurs in no pattern, so that it can never
 * complete a new occurrence together with the bytes around it.
 *
 * Pattern memory is sodium_malloc'd and wiped when freed. Not thread-safe:
 * one masker and its streams belong to one job's worker.
 */
#ifndef KILN_SERVER_MASK_H
#define KILN_SERVER_MASK_H

#include <stdbool.h>
#include <stddef.h>

struct kiln_masker;
struct kiln_mask_stream;

struct kiln_masker *kiln_masker_new(void);
void kiln_masker_free(struct kiln_masker *m);
/* Add a secret's value (and its encodings). -1 when out of memory, or
 * when no replacement character is left that occurs in no pattern (the
 * job must then not run: its secrets could not be masked safely). */
int kiln_masker_add(struct kiln_masker *m, const unsigned char *value, size_t len);
size_t kiln_masker_count(const struct kiln_masker *m);
/* The replacement text ("***" unless a secret holds '*'). */
const char *kiln_masker_replacement(const struct kiln_masker *m);

typedef void (*kiln_mask_emit_fn)(void *ctx, const char *buf, size_t len);

/* A stream over m (which must outlive it). */
struct kiln_mask_stream *kiln_mask_stream_new(const struct kiln_masker *m);
/* Mask buf and emit what is decided; returns the number of occurrences
 * replaced. */
size_t kiln_mask_stream_feed(struct kiln_mask_stream *s, const char *buf, size_t len,
			     kiln_mask_emit_fn emit, void *ctx);
/* Emit what is held back (the stream ended). */
size_t kiln_mask_stream_finish(struct kiln_mask_stream *s, kiln_mask_emit_fn emit, void *ctx);
void kiln_mask_stream_free(struct kiln_mask_stream *s);

/* Mask a complete text in place (the replacement is never longer than
 * what it replaces); returns the new length. */
size_t kiln_mask_inplace(const struct kiln_masker *m, char *buf, size_t len);

/* Does the file behind fd (read from its current offset to the end)
 * contain any pattern? 1 yes, 0 no, -1 read error (errno). */
int kiln_mask_scan_fd(const struct kiln_masker *m, int fd);

#endif
