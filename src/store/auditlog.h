/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log's storage in the SQLite database (its own migration in db.c):
 *
 *   audit_entries(idx, entry)          the entries, idx 0, 1, 2, ...
 *   audit_hashes(level, idx, hash)     every complete subtree's hash: level
 *                                      0 holds the leaf hashes, (l, i)
 *                                      covers leaves [i << l, (i+1) << l)
 *   audit_checkpoints(size, note)      the signed checkpoints, growing
 *
 * Appending writes the entry, its leaf hash and the subtree hashes it
 * completes in one BEGIN IMMEDIATE transaction, committed with
 * synchronous=FULL: durable on return. Triggers refuse UPDATE and DELETE
 * on all three tables. Same thread rules as db.h.
 */
#ifndef KILN_STORE_AUDITLOG_H
#define KILN_STORE_AUDITLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "store/db.h"
#include "trust/tlog.h"

/* Append one entry (1..65535 bytes); *index receives its position. In
 * its own transaction, or, when the handle is inside one, in a savepoint
 * of it (the entry then commits or rolls back with the caller's). */
int kiln_auditlog_append(struct kiln_db *db, const void *entry, size_t len, uint64_t *index,
			 struct kiln_error **err);
/* Number of entries (the highest idx + 1). */
int kiln_auditlog_size(struct kiln_db *db, uint64_t *n, struct kiln_error **err);
/* The bytes of entries [from, to) together (the metrics' audit log size,
 * counted a checkpoint's new entries at a time). */
int kiln_auditlog_bytes(struct kiln_db *db, uint64_t from, uint64_t to, uint64_t *bytes,
			struct kiln_error **err);
/* count stored hashes at tree level `level` from index start; ENOENT if
 * one is missing. */
int kiln_auditlog_hashes(struct kiln_db *db, int level, uint64_t start, unsigned count,
			 kiln_hash *out, struct kiln_error **err);
/* The tree head of the first n entries, from the stored subtree hashes. */
int kiln_auditlog_root(struct kiln_db *db, uint64_t n, kiln_hash out, struct kiln_error **err);
/* Entries [start, start + count) as a C2SP entry bundle (malloc'd), in
 * idx order, as they are stored: a missing row is simply not there. */
int kiln_auditlog_bundle(struct kiln_db *db, uint64_t start, unsigned count, unsigned char **out,
			 size_t *len, struct kiln_error **err);
/* Call fn for each entry in idx order from start (limit 0: all). fn
 * returns 0 to go on, 1 to stop, -1 on error. */
typedef int (*kiln_auditlog_fn)(void *ctx, uint64_t idx, const unsigned char *entry, size_t len);
int kiln_auditlog_each(struct kiln_db *db, uint64_t start, uint64_t limit, kiln_auditlog_fn fn,
		       void *ctx, struct kiln_error **err);
/* The newest checkpoint: *size and *note (malloc'd); 0 found, 1 none. */
int kiln_auditlog_checkpoint_latest(struct kiln_db *db, uint64_t *size, char **note,
				    struct kiln_error **err);
/* Store a checkpoint; EALREADY unless size is larger than every stored
 * one (the tree only grows). */
int kiln_auditlog_checkpoint_add(struct kiln_db *db, uint64_t size, const char *note,
				 struct kiln_error **err);

#endif
