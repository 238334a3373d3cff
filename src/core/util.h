/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure helpers: no system calls, no global state (minijail's util.c split).
 * Every parser here is unit-tested and fuzzed.
 */
#ifndef KILN_CORE_UTIL_H
#define KILN_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* "512", "64K", "2M", "4G", "1T" (binary multiples; optional trailing "B" or
 * "iB"). Rejects empty strings, signs, overflow and values above max. */
int kiln_parse_size(const char *s, uint64_t max, uint64_t *out, struct kiln_error **err);

/* "30", "30s", "10m", "2h", "1d" -> seconds. Rejects 0 when !allow_zero. */
int kiln_parse_duration(const char *s, bool allow_zero, uint64_t max, uint64_t *out,
			struct kiln_error **err);

/* Decimal unsigned integer in [min, max]. */
int kiln_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		    struct kiln_error **err);

/* "2", "0.5", "1.25" -> thousandths of a CPU, in [1, max_milli]. */
int kiln_parse_cpus(const char *s, uint64_t max_milli, uint64_t *out_milli,
		    struct kiln_error **err);

/* NAME=VALUE with NAME a portable environment variable name
 * ([A-Za-z_][A-Za-z0-9_]*) and VALUE free of NUL. */
bool kiln_env_valid(const char *s);

/* An absolute path inside the sandbox: starts with '/', no "." or ".."
 * components, no empty components, not "/" itself, <= PATH_MAX. */
bool kiln_sandbox_path_valid(const char *s);

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool kiln_utf8_valid(const char *s, size_t len);
/* n bytes of the base64url alphabet (A-Z a-z 0-9 - _), no padding. */
bool kiln_b64url_valid(const char *s, size_t n);

/* Decode the strict UTF-8 sequence at s (at most len bytes): its length,
 * with the code point in *cp, or 0 if s does not start with one. */
size_t kiln_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Hex-encode len bytes into out (2*len+1 bytes). */
void kiln_hex(const unsigned char *in, size_t len, char *out);

#endif
