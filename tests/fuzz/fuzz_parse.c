/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for every parser in src/core/util.h (CONVENTIONS.md 12).
 *
 * Each input is fed, as a NUL-terminated string, to the size, duration,
 * uint and CPU parsers (under several bounds), to the environment and
 * sandbox-path validators, and, as raw bytes, to the UTF-8 validator and
 * the hex encoder. Every result is compared with a small reference
 * implementation written here in a different style (overflow builtins
 * instead of division checks, Unicode's table 3-7 instead of bit masks,
 * substring searches instead of a component walk), so a disagreement is
 * a bug in one of the two. The error contract is checked on every failure.
 *
 * Inputs of 9 bytes or more are parsed a second time with the first 8 bytes
 * as the bound and the rest as the string, so the bounds are fuzzed too.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longer inputs only slow the fuzzer down: PATH_MAX is the largest limit
 * any parser has. */
#define FUZZ_MAX_INPUT (PATH_MAX + 64)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_parse: invariant failed at %s:%d: %s\n", __FILE__,   \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reference digit run: returns 0, or ERANGE on more than 64 bits, or
 * EINVAL if there is no digit at all. *rest points after the digits. */
static int ref_digits(const char *s, uint64_t *v, const char **rest)
{
	bool wrapped = false;
	uint64_t x = 0;

	if (!is_digit(*s))
		return EINVAL;
	for (; is_digit(*s); s++)
		if (__builtin_mul_overflow(x, 10, &x) ||
		    __builtin_add_overflow(x, (uint64_t)(*s - '0'), &x))
			wrapped = true;
	*rest = s;
	*v = x;
	return wrapped ? ERANGE : 0;
}

static int ref_size(const char *s, uint64_t max, uint64_t *out)
{
	static const char units[] = "kmgt";
	const char *rest, *u;
	uint64_t v, mult = 1;
	int r = ref_digits(s, &v, &rest);

	if (r != 0)
		return r;
	if (strcmp(rest, "b") == 0 || strcmp(rest, "B") == 0) {
		rest += 1;
	} else if (*rest != '\0') {
		char c = *rest;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		u = strchr(units, c);
		if (u == NULL || c == '\0')
			return EINVAL;
		mult = UINT64_C(1) << (10 * (u - units + 1));
		rest++;
		if (strcmp(rest, "") != 0 && strcmp(rest, "B") != 0 && strcmp(rest, "iB") != 0 &&
		    strcmp(rest, "b") != 0)
			return EINVAL;
	}
	if (__builtin_mul_overflow(v, mult, &v) || v > max)
		return ERANGE;
	*out = v;
	return 0;
}

static int ref_duration(const char *s, bool allow_zero, uint64_t max, uint64_t *out)
{
	const char *rest;
	uint64_t v, mult;
	int r = ref_digits(s, &v, &rest);

	if (r != 0)
		return r;
	if (strcmp(rest, "") == 0 || strcmp(rest, "s") == 0)
		mult = 1;
	else if (strcmp(rest, "m") == 0)
		mult = 60;
	else if (strcmp(rest, "h") == 0)
		mult = 60 * 60;
	else if (strcmp(rest, "d") == 0)
		mult = 24 * 60 * 60;
	else
		return EINVAL;
	if (__builtin_mul_overflow(v, mult, &v) || v > max)
		return ERANGE;
	if (v == 0 && !allow_zero)
		return EINVAL;
	*out = v;
	return 0;
}

static int ref_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *rest;
	uint64_t v;
	int r = ref_digits(s, &v, &rest);

	if (r != 0)
		return r;
	if (*rest != '\0')
		return EINVAL;
	if (v < min || v > max)
		return ERANGE;
	*out = v;
	return 0;
}

static int ref_cpus(const char *s, uint64_t max_milli, uint64_t *out)
{
	const char *rest;
	uint64_t whole, frac = 0, total;
	size_t n;
	int r = ref_digits(s, &whole, &rest);

	if (r != 0)
		return r;
	if (*rest == '.') {
		rest++;
		n = strspn(rest, "0123456789");
		if (n == 0 || n > 3)
			return EINVAL;
		for (size_t i = 0; i < 3; i++)
			frac = frac * 10 + (i < n ? (uint64_t)(rest[i] - '0') : 0);
		rest += n;
	}
	if (*rest != '\0')
		return EINVAL;
	if (whole == 0 && frac == 0)
		return EINVAL;
	if (__builtin_mul_overflow(whole, 1000, &total) ||
	    __builtin_add_overflow(total, frac, &total) || total > max_milli)
		return ERANGE;
	*out = total;
	return 0;
}

static bool ref_env(const char *s)
{
	static const char name[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789";
	size_t n = strspn(s, name);

	return n > 0 && !is_digit(s[0]) && s[n] == '=';
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool ref_path(const char *s)
{
	size_t len = strlen(s);

	return len >= 2 && len < PATH_MAX && s[0] == '/' && s[len - 1] != '/' &&
	       strstr(s, "//") == NULL && strstr(s, "/./") == NULL && strstr(s, "/../") == NULL &&
	       !ends_with(s, len, "/.") && !ends_with(s, len, "/..");
}

/* Well-formed UTF-8 byte sequences, Unicode Standard table 3-7. */
static bool ref_utf8(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i], lo = 0x80, hi = 0xBF;
		size_t n;

		if (c <= 0x7F) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 2;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 3;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 4;
		else
			return false;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
		else if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
		if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k < n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += n;
	}
	return true;
}

/* The error contract (src/core/error.h) after a call returned r with err. */
static void check_error(int r, struct kiln_error **err, int want, const char *input)
{
	if (want == 0) {
		CHECK(r == 0);
		CHECK(*err == NULL);
		return;
	}
	CHECK(r == -1);
	CHECK(*err != NULL);
	CHECK((*err)->code == want);
	CHECK(memchr((*err)->msg, '\0', KILN_ERROR_MAX) != NULL);
	CHECK((*err)->msg[0] != '\0');
	/* context made of hostile input must stay inside the buffer too */
	CHECK(kiln_error_prefix(err, "parse '%s'", input) == -1);
	CHECK(*err != NULL && memchr((*err)->msg, '\0', KILN_ERROR_MAX) != NULL);
	CHECK(kiln_error_prefix(err, "%s", (*err)->msg) == -1);
	CHECK(memchr((*err)->msg, '\0', KILN_ERROR_MAX) != NULL);
	kiln_error_free(err);
	CHECK(*err == NULL);
}

#define UNSET UINT64_C(0x5a5a5a5a5a5a5a5a)

static void fuzz_size(const char *s, uint64_t max)
{
	struct kiln_error *err = NULL;
	uint64_t got = UNSET, want = UNSET;
	int r = kiln_parse_size(s, max, &got, &err);
	int code = ref_size(s, max, &want);

	check_error(r, &err, code, s);
	CHECK(got == want);
	if (r == 0)
		CHECK(got <= max);
}

static void fuzz_duration(const char *s, bool allow_zero, uint64_t max)
{
	struct kiln_error *err = NULL;
	uint64_t got = UNSET, want = UNSET;
	int r = kiln_parse_duration(s, allow_zero, max, &got, &err);
	int code = ref_duration(s, allow_zero, max, &want);

	check_error(r, &err, code, s);
	CHECK(got == want);
	if (r == 0)
		CHECK(got <= max && (allow_zero || got > 0));
}

static void fuzz_uint(const char *s, uint64_t min, uint64_t max)
{
	struct kiln_error *err = NULL;
	uint64_t got = UNSET, want = UNSET;
	int r = kiln_parse_uint(s, min, max, &got, &err);
	int code = ref_uint(s, min, max, &want);

	check_error(r, &err, code, s);
	CHECK(got == want);
	if (r == 0)
		CHECK(got >= min && got <= max);
}

static void fuzz_cpus(const char *s, uint64_t max_milli)
{
	struct kiln_error *err = NULL;
	uint64_t got = UNSET, want = UNSET;
	int r = kiln_parse_cpus(s, max_milli, &got, &err);
	int code = ref_cpus(s, max_milli, &want);

	check_error(r, &err, code, s);
	CHECK(got == want);
	if (r == 0)
		CHECK(got >= 1 && got <= max_milli);
}

static void fuzz_bounded(const char *s, uint64_t max)
{
	fuzz_size(s, max);
	fuzz_duration(s, false, max);
	fuzz_duration(s, true, max);
	fuzz_uint(s, max / 2, max);
	fuzz_uint(s, 0, max);
	fuzz_cpus(s, max);
}

static void fuzz_hex(const uint8_t *data, size_t size)
{
	char *out = malloc(2 * size + 1);

	CHECK(out != NULL);
	kiln_hex(data, size, out);
	CHECK(strlen(out) == 2 * size);
	for (size_t i = 0; i < size; i++) {
		static const char digits[] = "0123456789abcdef";
		const char *hi = memchr(digits, out[2 * i], 16);
		const char *lo = memchr(digits, out[2 * i + 1], 16);

		CHECK(hi != NULL && lo != NULL);
		CHECK((unsigned)((hi - digits) * 16 + (lo - digits)) == data[i]);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t maxes[] = {
		0,
		1,
		999,
		1000,
		64000,
		UINT64_C(4) << 30,
		UINT64_MAX / 1000,
		UINT64_MAX - 1,
		UINT64_MAX,
	};
	char *s;

	if (size > FUZZ_MAX_INPUT)
		return 0;

	/* raw bytes: embedded NULs and all */
	CHECK(kiln_utf8_valid((const char *)data, size) == ref_utf8(data, size));
	fuzz_hex(data, size);

	s = malloc(size + 1);
	CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++)
		fuzz_bounded(s, maxes[i]);
	CHECK(kiln_env_valid(s) == ref_env(s));
	CHECK(kiln_sandbox_path_valid(s) == ref_path(s));
	CHECK(kiln_utf8_valid(s, strlen(s)) == ref_utf8((const uint8_t *)s, strlen(s)));

	if (size >= 9) {
		uint64_t max;

		memcpy(&max, data, sizeof(max));
		fuzz_bounded(s + sizeof(max), max);
	}
	free(s);
	return 0;
}
