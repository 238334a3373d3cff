/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The submission manifest that a signed submission signs (docs/signing.md).
 * Canonical bytes, exactly six lines, each ending in "\n", in this order:
 *
 *   kiln-submission-v1
 *   project: web
 *   spec-sha256: <64 lowercase hex digits of SHA-256 of the kiln.yml bytes>
 *   source-sha256: <64 lowercase hex digits of SHA-256 of the .tar.gz bytes>
 *   nonce: <32 to 128 lowercase hex digits, random>
 *   created: 2026-12-07T13:00:00Z
 *
 * Anything else (other order, spaces, CR, a missing final newline, upper
 * case hex, another time format) is refused, so that one submission has
 * exactly one manifest.
 */
#ifndef KILN_TRUST_MANIFEST_H
#define KILN_TRUST_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KILN_MANIFEST_MAX  1024
#define KILN_MANIFEST_HEAD "kiln-submission-v1"

struct kiln_manifest {
	char project[64];
	char spec_sha256[65];
	char source_sha256[65];
	char nonce[129];
	int64_t created; /* unix seconds */
};

/* EINVAL naming the line that is wrong. */
int kiln_manifest_parse(const char *text, size_t len, struct kiln_manifest *m,
			struct kiln_error **err);
/* The canonical text of m (malloc'd). */
char *kiln_manifest_format(const struct kiln_manifest *m);

#endif
