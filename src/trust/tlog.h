/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Merkle tree of the audit log, pure code over bytes (no I/O):
 *
 *   - RFC 6962 / RFC 9162 hashing: leaf SHA-256(0x00 || entry), node
 *     SHA-256(0x01 || left || right); the empty tree hashes to SHA-256("").
 *   - Tree heads, inclusion proofs and consistency proofs computed from an
 *     array of leaf hashes, and their verification (RFC 9162 2.1.3.2,
 *     2.1.4.2), which uses nothing but the proof and the two tree heads.
 *   - c2sp.org/tlog-tiles paths ("tile/0/x001/x234/067.p/3",
 *     "tile/entries/000") and entry bundles (uint16 big-endian length
 *     prefixes).
 *   - c2sp.org/tlog-checkpoint bodies signed as c2sp.org/signed-note with
 *     Ed25519 (libsodium), and the note verifier key
 *     "name+hex(keyid)+base64(0x01 || pubkey)".
 *
 * Hashes are unsigned char[32]. Nothing here allocates except where a
 * function says so (the caller frees with free()).
 */
#ifndef KILN_TRUST_TLOG_H
#define KILN_TRUST_TLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KILN_TLOG_HASH	     32
#define KILN_TLOG_TILE_H     8
#define KILN_TLOG_TILE_W     256
#define KILN_TLOG_PROOF_MAX  64
#define KILN_TLOG_ENTRY_MAX  65535
#define KILN_TLOG_ORIGIN_MAX 256

typedef unsigned char kiln_hash[KILN_TLOG_HASH];

void kiln_tlog_leaf_hash(const void *entry, size_t len, kiln_hash out);
void kiln_tlog_node_hash(const kiln_hash left, const kiln_hash right, kiln_hash out);
/* The tree head over leaves[0..n) (borrowed). */
void kiln_tlog_root(const kiln_hash *leaves, uint64_t n, kiln_hash out);
/* RFC 6962 PATH(index, D[n]) into proof (KILN_TLOG_PROOF_MAX hashes);
 * returns the number of hashes, -1 unless index < n. */
int kiln_tlog_inclusion_proof(const kiln_hash *leaves, uint64_t n, uint64_t index,
			      kiln_hash *proof);
/* RFC 6962 PROOF(m, D[n]); -1 unless 0 < m <= n (m == n: an empty proof). */
int kiln_tlog_consistency_proof(const kiln_hash *leaves, uint64_t n, uint64_t m, kiln_hash *proof);
bool kiln_tlog_verify_inclusion(uint64_t index, uint64_t size, const kiln_hash leaf,
				const kiln_hash *proof, size_t nproof, const kiln_hash root);
bool kiln_tlog_verify_consistency(uint64_t size1, uint64_t size2, const kiln_hash *proof,
				  size_t nproof, const kiln_hash root1, const kiln_hash root2);
/* The subtrees whose hashes make up the tree of n leaves, left to right:
 * (level, index) pairs; returns how many (at most 64). */
int kiln_tlog_subtrees(uint64_t n, int levels[64], uint64_t idx[64]);

/* ---- tiles ---- */

/* "tile/L/N[.p/W]" for level >= 0, "tile/entries/N[.p/W]" for level -1;
 * width 256 (or 0) is a full tile. -1 if buf is too small. */
int kiln_tlog_tile_path(int level, uint64_t n, unsigned width, char *buf, size_t len);
/* Parse what follows "tile/": the inverse of kiln_tlog_tile_path, strict
 * (only the canonical encoding; level 0..63; width 1..255). */
int kiln_tlog_tile_parse(const char *path, int *level, uint64_t *n, unsigned *width);
/* Split an entry bundle into at most max entries: offsets and lengths into
 * data. Returns the count, -1 if malformed (a truncated length or entry). */
int kiln_tlog_bundle_split(const unsigned char *data, size_t len, size_t *off, size_t *elen,
			   int max);

/* ---- keys, checkpoints, notes ---- */

struct kiln_tlog_key {
	char name[KILN_TLOG_ORIGIN_MAX];
	uint32_t id;
	unsigned char pk[32];
	/* zero in a verifier key */
	unsigned char sk[64];
	bool has_sk;
};

/* A signed-note key name: non-empty, printable ASCII, no '+', no space. */
bool kiln_tlog_name_valid(const char *name);
uint32_t kiln_tlog_key_id(const char *name, const unsigned char pk[32]);
/* "name+hex8+base64(0x01||pk)" (buf >= 400 bytes). */
void kiln_tlog_vkey_format(const struct kiln_tlog_key *k, char *buf, size_t len);
int kiln_tlog_vkey_parse(const char *text, struct kiln_tlog_key *k, struct kiln_error **err);

struct kiln_tlog_checkpoint {
	char origin[KILN_TLOG_ORIGIN_MAX];
	uint64_t size;
	kiln_hash root;
};

/* The signed checkpoint note, malloc'd: body, blank line, signature line. */
char *kiln_tlog_checkpoint_sign(const struct kiln_tlog_key *k,
				const struct kiln_tlog_checkpoint *c);
/* Verify note (len bytes) against the verifier key k (a signature line by
 * k's name and id must verify; others are ignored) and parse its body.
 * The origin must equal k's name. */
int kiln_tlog_checkpoint_open(const struct kiln_tlog_key *k, const char *note, size_t len,
			      struct kiln_tlog_checkpoint *c, struct kiln_error **err);

/* base64 (standard, padded) of 32 bytes (buf >= 45). */
void kiln_tlog_b64_hash(const kiln_hash h, char *buf, size_t len);
int kiln_tlog_b64_hash_parse(const char *s, size_t len, kiln_hash out);

#endif
