/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol
 * v1.0.0) signed with Ed25519. Pure code over bytes.
 *
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *   (LEN: ASCII decimal, no leading zeros; SP: one space)
 *   envelope: {"payload": b64(body), "payloadType": type,
 *              "signatures": [{"keyid": ..., "sig": b64(ed25519(PAE))}]}
 *
 * base64 is the standard alphabet with padding; the verifier also accepts
 * the URL-safe alphabet, as the spec asks.
 */
#ifndef KILN_TRUST_DSSE_H
#define KILN_TRUST_DSSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KILN_INTOTO_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define KILN_ED25519_KEYID_HEX	 65

/* malloc'd PAE bytes (NUL-terminated for convenience, *out_len without it). */
char *kiln_dsse_pae(const char *type, const void *body, size_t len, size_t *out_len);

/* The key id kiln gives an Ed25519 public key: hex SHA-256 of its 32 bytes. */
void kiln_ed25519_keyid(const uint8_t pk[32], char out[KILN_ED25519_KEYID_HEX]);

/* Sign body with the 64-byte libsodium secret key; a new envelope. */
json_t *kiln_dsse_sign(const char *type, const void *body, size_t len, const uint8_t sk[64],
		       struct kiln_error **err);

/* Parse an envelope (JSON text) strictly and verify that a signature of
 * it verifies under pk. On success *body (malloc'd, NUL-terminated) and
 * *type (malloc'd) are the payload. Errors: EINVAL (not an envelope:
 * says what is wrong), ENOKEY (no signature by this key id and none that
 * verifies), EBADMSG (a signature by this key does not verify: the
 * payload or the signature was changed). */
int kiln_dsse_verify(const char *text, size_t len, const uint8_t pk[32], char **body,
		     size_t *body_len, char **type, struct kiln_error **err);

#endif
