/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the pure helpers in src/core/util.h and the error contract
 * in src/core/error.h. Every parser is checked on what it accepts, on what it
 * rejects (with which errno-style code) and on leaving *out alone on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/sys.h"
#include "core/util.h"
#include "tap.h"

#define SENTINEL UINT64_C(0xdeadbeefcafef00d)
#define KIB	 (UINT64_C(1) << 10)
#define MIB	 (UINT64_C(1) << 20)
#define GIB	 (UINT64_C(1) << 30)
#define TIB	 (UINT64_C(1) << 40)

/* ---- helpers: one TAP line per call ---------------------------------- */

/* Printable form of a test input for TAP descriptions (a raw newline would
 * break the TAP stream). Rotates over a few static buffers. */
static const char *esc(const char *s)
{
	static char bufs[4][256];
	static unsigned next;
	char *b = bufs[next++ % 4];
	size_t o = 0;

	if (s == NULL)
		return "NULL";
	for (; *s != '\0' && o + 5 < sizeof(bufs[0]); s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '\\')
			b[o++] = (char)c;
		else
			o += (size_t)snprintf(b + o, sizeof(bufs[0]) - o, "\\x%02x", c);
	}
	b[o] = '\0';
	return b;
}

/* r/err/out after a successful parse: returns 0, no error, value stored. */
static void check_ok(const char *what, const char *s, int r, struct kiln_error *err, uint64_t got,
		     uint64_t want)
{
	int good = r == 0 && err == NULL && got == want;

	ok(good, "%s('%s') = %llu", what, esc(s), (unsigned long long)want);
	if (!good)
		printf("#   r=%d got=%llu err=%s\n", r, (unsigned long long)got,
		       err ? esc(err->msg) : "(none)");
}

/* after a failed parse: returns -1, one error with the expected code and a
 * non-empty message, *out untouched. */
static void check_bad(const char *what, const char *s, int r, struct kiln_error *err, uint64_t got,
		      int code)
{
	int good = r == -1 && err != NULL && err->code == code && err->msg[0] != '\0' &&
		   got == SENTINEL;

	ok(good, "%s('%s') rejected (%s)", what, esc(s), strerror(code));
	if (!good)
		printf("#   r=%d code=%d got=%llu msg=%s\n", r, err ? err->code : 0,
		       (unsigned long long)got, err ? esc(err->msg) : "(none)");
}

static void size_ok(const char *s, uint64_t max, uint64_t want)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;
	int r = kiln_parse_size(s, max, &v, &err);

	check_ok("size", s, r, err, v, want);
	kiln_error_free(&err);
}

static void size_bad(const char *s, uint64_t max, int code)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;
	int r = kiln_parse_size(s, max, &v, &err);

	check_bad("size", s, r, err, v, code);
	kiln_error_free(&err);
}

static void dur_ok(const char *s, bool zero, uint64_t max, uint64_t want)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;
	int r = kiln_parse_duration(s, zero, max, &v, &err);

	check_ok(zero ? "duration(allow_zero)" : "duration", s, r, err, v, want);
	kiln_error_free(&err);
}

static void dur_bad(const char *s, bool zero, uint64_t max, int code)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;
	int r = kiln_parse_duration(s, zero, max, &v, &err);

	check_bad(zero ? "duration(allow_zero)" : "duration", s, r, err, v, code);
	kiln_error_free(&err);
}

static void uint_ok(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;
	int r = kiln_parse_uint(s, min, max, &v, &err);

	check_ok("uint", s, r, err, v, want);
	kiln_error_free(&err);
}

static void uint_bad(const char *s, uint64_t min, uint64_t max, int code)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;
	int r = kiln_parse_uint(s, min, max, &v, &err);

	check_bad("uint", s, r, err, v, code);
	kiln_error_free(&err);
}

static void cpus_ok(const char *s, uint64_t max, uint64_t want)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;
	int r = kiln_parse_cpus(s, max, &v, &err);

	check_ok("cpus", s, r, err, v, want);
	kiln_error_free(&err);
}

static void cpus_bad(const char *s, uint64_t max, int code)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;
	int r = kiln_parse_cpus(s, max, &v, &err);

	check_bad("cpus", s, r, err, v, code);
	kiln_error_free(&err);
}

/* ---- kiln_parse_size -------------------------------------------------- */

static void test_size(void)
{
	struct kiln_error *err = NULL;
	uint64_t v = SENTINEL;

	/* plain bytes, with and without B */
	size_ok("0", UINT64_MAX, 0);
	size_ok("1", UINT64_MAX, 1);
	size_ok("512", UINT64_MAX, 512);
	size_ok("512B", UINT64_MAX, 512);
	size_ok("512b", UINT64_MAX, 512);
	size_ok("007", UINT64_MAX, 7);
	size_ok("18446744073709551615", UINT64_MAX, UINT64_MAX);

	/* binary multiples, both cases */
	size_ok("64K", UINT64_MAX, 64 * KIB);
	size_ok("64k", UINT64_MAX, 64 * KIB);
	size_ok("2M", UINT64_MAX, 2 * MIB);
	size_ok("2m", UINT64_MAX, 2 * MIB);
	size_ok("4G", UINT64_MAX, 4 * GIB);
	size_ok("4g", UINT64_MAX, 4 * GIB);
	size_ok("1T", UINT64_MAX, TIB);
	size_ok("1t", UINT64_MAX, TIB);
	size_ok("0G", UINT64_MAX, 0);

	/* optional B / iB after a multiple */
	size_ok("64KB", UINT64_MAX, 64 * KIB);
	size_ok("64KiB", UINT64_MAX, 64 * KIB);
	size_ok("2MB", UINT64_MAX, 2 * MIB);
	size_ok("2MiB", UINT64_MAX, 2 * MIB);
	size_ok("512mb", UINT64_MAX, 512 * MIB);
	size_ok("4GiB", UINT64_MAX, 4 * GIB);
	size_ok("1TiB", UINT64_MAX, TIB);
	size_ok("1tB", UINT64_MAX, TIB);

	/* malformed suffixes */
	size_bad("2X", UINT64_MAX, EINVAL);
	size_bad("2P", UINT64_MAX, EINVAL);
	size_bad("2E", UINT64_MAX, EINVAL);
	size_bad("2iB", UINT64_MAX, EINVAL);
	size_bad("2Ki", UINT64_MAX, EINVAL);
	size_bad("2Kib", UINT64_MAX, EINVAL);
	size_bad("2kib", UINT64_MAX, EINVAL);
	size_bad("2KBB", UINT64_MAX, EINVAL);
	size_bad("2KiBB", UINT64_MAX, EINVAL);
	size_bad("2BB", UINT64_MAX, EINVAL);
	size_bad("2bB", UINT64_MAX, EINVAL);
	size_bad("2KK", UINT64_MAX, EINVAL);
	size_bad("2GM", UINT64_MAX, EINVAL);
	size_bad("1.5G", UINT64_MAX, EINVAL);
	size_bad("1,5G", UINT64_MAX, EINVAL);
	size_bad("1e3", UINT64_MAX, EINVAL);
	size_bad("0x10", UINT64_MAX, EINVAL);

	/* empty, signs, spaces, no digits */
	size_bad("", UINT64_MAX, EINVAL);
	size_bad(NULL, UINT64_MAX, EINVAL);
	size_bad("-1", UINT64_MAX, EINVAL);
	size_bad("+1", UINT64_MAX, EINVAL);
	size_bad("-1G", UINT64_MAX, EINVAL);
	size_bad(" 1", UINT64_MAX, EINVAL);
	size_bad("1 ", UINT64_MAX, EINVAL);
	size_bad("1 G", UINT64_MAX, EINVAL);
	size_bad("\t1", UINT64_MAX, EINVAL);
	size_bad("1\n", UINT64_MAX, EINVAL);
	size_bad("G", UINT64_MAX, EINVAL);
	size_bad("KiB", UINT64_MAX, EINVAL);
	size_bad("B", UINT64_MAX, EINVAL);

	/* overflow: in the digits, and in digits * multiple */
	size_bad("18446744073709551616", UINT64_MAX, ERANGE);
	size_bad("99999999999999999999999999", UINT64_MAX, ERANGE);
	size_bad("18446744073709551616G", UINT64_MAX, ERANGE);
	size_ok("16777215T", UINT64_MAX, UINT64_C(16777215) * TIB);
	size_bad("16777216T", UINT64_MAX, ERANGE);    /* exactly 2^64 */
	size_bad("17179869184G", UINT64_MAX, ERANGE); /* exactly 2^64 */
	size_ok("17179869183G", UINT64_MAX, UINT64_C(17179869183) * GIB);
	size_bad("18014398509481984K", UINT64_MAX, ERANGE); /* 2^54 K = 2^64 */

	/* the max bound is inclusive */
	size_ok("4G", 4 * GIB, 4 * GIB);
	size_ok("4294967296", 4 * GIB, 4 * GIB);
	size_bad("4294967297", 4 * GIB, ERANGE);
	size_bad("5G", 4 * GIB, ERANGE);
	size_bad("1T", 4 * GIB, ERANGE);
	size_bad("1", 0, ERANGE);
	size_ok("0", 0, 0);

	/* a NULL err is allowed: the failure is still reported by the result */
	ok(kiln_parse_size("nope", UINT64_MAX, &v, NULL) == -1 && v == SENTINEL,
	   "size with err == NULL still fails cleanly");

	/* the message names the input and says what to do */
	kiln_parse_size("1.5G", UINT64_MAX, &v, &err);
	ok(err && strstr(err->msg, "1.5G"), "size error names the input: %s", err ? err->msg : "");
	kiln_error_free(&err);
	kiln_parse_size("lots", UINT64_MAX, &v, &err);
	ok(err && strstr(err->msg, "lots") && strstr(err->msg, "2G"),
	   "size error gives an example: %s", err ? err->msg : "");
	kiln_error_free(&err);
	kiln_parse_size("5G", 4 * GIB, &v, &err);
	ok(err && strstr(err->msg, "4294967296"), "size error names the maximum: %s",
	   err ? err->msg : "");
	kiln_error_free(&err);
}

/* ---- kiln_parse_duration --------------------------------------------- */

static void test_duration(void)
{
	const uint64_t big = UINT64_MAX;

	dur_ok("30", false, big, 30);
	dur_ok("30s", false, big, 30);
	dur_ok("10m", false, big, 600);
	dur_ok("2h", false, big, 7200);
	dur_ok("1d", false, big, 86400);
	dur_ok("90", false, big, 90);
	dur_ok("0090s", false, big, 90);
	dur_ok("18446744073709551615", false, big, UINT64_MAX);
	dur_ok("18446744073709551615s", false, big, UINT64_MAX);

	/* zero, with and without allow_zero */
	dur_bad("0", false, big, EINVAL);
	dur_bad("0s", false, big, EINVAL);
	dur_bad("0m", false, big, EINVAL);
	dur_bad("0d", false, big, EINVAL);
	dur_ok("0", true, big, 0);
	dur_ok("0h", true, big, 0);
	dur_ok("5", true, big, 5);

	/* units are lowercase only, one of s m h d */
	dur_bad("10S", false, big, EINVAL);
	dur_bad("10M", false, big, EINVAL);
	dur_bad("10H", false, big, EINVAL);
	dur_bad("10D", false, big, EINVAL);
	dur_bad("10w", false, big, EINVAL);
	dur_bad("10ms", false, big, EINVAL);
	dur_bad("10min", false, big, EINVAL);
	dur_bad("10sec", false, big, EINVAL);
	dur_bad("1h30m", false, big, EINVAL);
	dur_bad("1.5h", false, big, EINVAL);
	dur_bad("s", false, big, EINVAL);
	dur_bad("", false, big, EINVAL);
	dur_bad("", true, big, EINVAL);
	dur_bad(NULL, false, big, EINVAL);
	dur_bad("-1", true, big, EINVAL);
	dur_bad("+1", true, big, EINVAL);
	dur_bad(" 1", true, big, EINVAL);
	dur_bad("1 ", true, big, EINVAL);
	dur_bad("1 s", true, big, EINVAL);

	/* overflow in the digits and in the multiplication */
	dur_bad("18446744073709551616", false, big, ERANGE);
	dur_bad("18446744073709551616s", false, big, ERANGE);
	dur_bad("307445734561825861m", false, big, ERANGE); /* 60x > 2^64 */
	dur_ok("307445734561825860m", false, big, UINT64_C(307445734561825860) * 60);
	dur_bad("5124095576030432h", false, big, ERANGE);
	dur_bad("213503982334602d", false, big, ERANGE);
	dur_ok("213503982334601d", false, big, UINT64_C(213503982334601) * 86400);

	/* the max bound is inclusive and applies after the unit */
	dur_ok("3600", false, 3600, 3600);
	dur_ok("60m", false, 3600, 3600);
	dur_ok("1h", false, 3600, 3600);
	dur_bad("3601", false, 3600, ERANGE);
	dur_bad("61m", false, 3600, ERANGE);
	dur_bad("2h", false, 3600, ERANGE);
	dur_bad("1d", false, 3600, ERANGE);
	dur_ok("0", true, 0, 0);
	dur_bad("1", true, 0, ERANGE);
}

/* ---- kiln_parse_uint --------------------------------------------------- */

static void test_uint(void)
{
	uint_ok("0", 0, 10, 0);
	uint_ok("10", 0, 10, 10);
	uint_ok("1", 1, 1, 1);
	uint_ok("00042", 0, 100, 42);
	uint_ok("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);

	uint_bad("0", 1, 10, ERANGE);
	uint_bad("11", 1, 10, ERANGE);
	uint_bad("18446744073709551615", 0, UINT64_MAX - 1, ERANGE);
	/* more than 64 bits of digits is out of range too, not malformed */
	uint_bad("18446744073709551616", 0, UINT64_MAX, ERANGE);
	uint_bad("999999999999999999999999999999", 0, UINT64_MAX, ERANGE);

	uint_bad("", 0, 10, EINVAL);
	uint_bad(NULL, 0, 10, EINVAL);
	uint_bad("-1", 0, 10, EINVAL);
	uint_bad("+1", 0, 10, EINVAL);
	uint_bad(" 1", 0, 10, EINVAL);
	uint_bad("1 ", 0, 10, EINVAL);
	uint_bad("1k", 0, 10000, EINVAL);
	uint_bad("1.0", 0, 10, EINVAL);
	uint_bad("0x1", 0, 10, EINVAL);
	uint_bad("abc", 0, 10, EINVAL);
	uint_bad("1e1", 0, 100, EINVAL);
}

/* ---- kiln_parse_cpus --------------------------------------------------- */

static void test_cpus(void)
{
	const uint64_t max = 64000; /* 64 CPUs */

	cpus_ok("2", max, 2000);
	cpus_ok("1", max, 1000);
	cpus_ok("0.5", max, 500);
	cpus_ok("1.25", max, 1250);
	cpus_ok("1.250", max, 1250);
	cpus_ok("0.001", max, 1);
	cpus_ok("0.01", max, 10);
	cpus_ok("0.1", max, 100);
	cpus_ok("3.141", max, 3141);
	cpus_ok("002.5", max, 2500);
	cpus_ok("64", max, 64000);
	cpus_ok("64.000", max, 64000);

	/* precision is one thousandth of a CPU */
	cpus_bad("0.0001", max, EINVAL);
	cpus_bad("1.2500", max, EINVAL);
	cpus_bad("0.0005", max, EINVAL);

	/* zero in every spelling */
	cpus_bad("0", max, EINVAL);
	cpus_bad("0.0", max, EINVAL);
	cpus_bad("0.000", max, EINVAL);
	cpus_bad("000", max, EINVAL);

	/* malformed */
	cpus_bad(".5", max, EINVAL);
	cpus_bad("1.", max, EINVAL);
	cpus_bad(".", max, EINVAL);
	cpus_bad("1..5", max, EINVAL);
	cpus_bad("1.5.", max, EINVAL);
	cpus_bad("1,5", max, EINVAL);
	cpus_bad("-1", max, EINVAL);
	cpus_bad("+1", max, EINVAL);
	cpus_bad("-0.5", max, EINVAL);
	cpus_bad(" 1", max, EINVAL);
	cpus_bad("1 ", max, EINVAL);
	cpus_bad("1e3", max, EINVAL);
	cpus_bad("2x", max, EINVAL);
	cpus_bad("", max, EINVAL);
	cpus_bad(NULL, max, EINVAL);

	/* above the maximum: in the whole part, in the fraction, and far above */
	cpus_bad("65", max, ERANGE);
	cpus_bad("64.001", max, ERANGE);
	cpus_bad("100001", max, ERANGE);
	cpus_bad("18446744073709551615", max, ERANGE);
	cpus_bad("18446744073709551616", max, ERANGE);
	cpus_bad("99999999999999999999999.5", max, ERANGE);
	cpus_ok("1.5", 1500, 1500);
	cpus_bad("1.501", 1500, ERANGE);
	cpus_bad("0.001", 0, ERANGE);

	/* a maximum near UINT64_MAX must not wrap whole * 1000 + frac */
	cpus_ok("18446744073709551.615", UINT64_MAX, UINT64_MAX);
	cpus_bad("18446744073709551.616", UINT64_MAX, ERANGE);
	cpus_bad("18446744073709552", UINT64_MAX, ERANGE);
	cpus_bad("18446744073709551.999", UINT64_MAX - 500, ERANGE);
}

/* ---- kiln_env_valid ------------------------------------------------------ */

static void test_env(void)
{
	static const char *const good[] = {
		"A=b",
		"PATH=/usr/bin:/bin",
		"_=x",
		"_A1=",
		"a=b=c",
		"HOME=",
		"x_Y_9=  spaces ",
		"LANG=\xc3\xa9t\xc3\xa9",
		"Z=\x01\x7f\xff",
	};
	static const char *const bad[] = {
		"",	 "=",	       "=x",	  "A",	    "ABC",     "1A=x",
		"9=x",	 "A-B=x",      "A B=x",	  " A=x",   "A =x",    "A.B=x",
		"A:B=x", "\xc3\xa9=x", "A\xe9=x", "\xe9=x", "A\x01=x", "$A=x",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(kiln_env_valid(good[i]), "env valid: '%s'", esc(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!kiln_env_valid(bad[i]), "env invalid: '%s'", esc(bad[i]));
	ok(!kiln_env_valid(NULL), "env invalid: NULL");
}

/* ---- kiln_sandbox_path_valid ------------------------------------------- */

static void test_path(void)
{
	static const char *const good[] = {
		"/a",	  "/a/b",  "/usr/lib/x86_64-linux-gnu",
		"/...",	  "/..a",  "/a..",
		"/.a",	  "/a./b", "/a/.b/c",
		"/a/...", "/ a",   "/a b/c",
	};
	static const char *const bad[] = {
		"",    "/",    "//",	"//x",	"/a//b", "/a/",	    "/a/b/",  "/.",
		"/..", "/./a", "/../a", "/a/.", "/a/..", "/a/../b", "/a/./b", "relative",
		"a/b", "./a",  "../a",	".",	"..",	 " /a",
	};
	char *buf;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(kiln_sandbox_path_valid(good[i]), "path valid: '%s'", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!kiln_sandbox_path_valid(bad[i]), "path invalid: '%s'", bad[i]);
	ok(!kiln_sandbox_path_valid(NULL), "path invalid: NULL");

	/* length: PATH_MAX counts the NUL, so PATH_MAX - 1 characters is the
	 * longest path the kernel takes. */
	buf = malloc(PATH_MAX + 2);
	if (buf == NULL)
		abort();
	buf[0] = '/';
	memset(buf + 1, 'a', PATH_MAX);
	buf[PATH_MAX - 1] = '\0';
	ok(kiln_sandbox_path_valid(buf), "path of PATH_MAX-1 characters is valid");
	buf[PATH_MAX - 1] = 'a';
	buf[PATH_MAX] = '\0';
	ok(!kiln_sandbox_path_valid(buf), "path of PATH_MAX characters is invalid");
	buf[PATH_MAX] = 'a';
	buf[PATH_MAX + 1] = '\0';
	ok(!kiln_sandbox_path_valid(buf), "path of PATH_MAX+1 characters is invalid");

	/* many one-character components: "/a/a/.../a" */
	for (i = 0; i + 2 <= PATH_MAX - 1; i += 2) {
		buf[i] = '/';
		buf[i + 1] = 'a';
	}
	buf[i] = '\0';
	ok(kiln_sandbox_path_valid(buf), "path of %zu one-letter components is valid", i / 2);
	buf[i - 1] = '.';
	ok(!kiln_sandbox_path_valid(buf), "long path ending in '/.' is invalid");
	buf[i - 1] = 'a';
	/* ".../a/a/a/..." -> ".../../aa/..." */
	buf[2000 + 1] = '.';
	buf[2000 + 2] = '.';
	buf[2000 + 3] = '/';
	buf[2000 + 4] = 'a';
	ok(!kiln_sandbox_path_valid(buf), "long path with '..' in the middle is invalid");
	buf[2000 + 1] = 'a';
	ok(kiln_sandbox_path_valid(buf), "same path with 'a.' instead of '..' is valid");
	free(buf);
}

/* ---- kiln_utf8_valid ----------------------------------------------------- */

/* Reference encoder used to walk every code point. */
static size_t encode(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Forced-length (possibly overlong) encoding. */
static void encode_n(uint32_t cp, size_t n, unsigned char *out)
{
	static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
	size_t k;

	for (k = n - 1; k > 0; k--) {
		out[k] = (unsigned char)(0x80 | (cp & 0x3F));
		cp >>= 6;
	}
	out[0] = (unsigned char)(lead[n] | cp);
}

#define U8_OK(lit)  ok(kiln_utf8_valid(lit, sizeof(lit) - 1), "utf8 valid: %s", #lit)
#define U8_BAD(lit) ok(!kiln_utf8_valid(lit, sizeof(lit) - 1), "utf8 invalid: %s", #lit)

static void test_utf8(void)
{
	unsigned char b[8];
	uint32_t cp, bad_scalar = 0, bad_surrogate = 0, bad_overlong = 0, bad_big = 0;
	unsigned lead, bad_lead = 0;
	size_t n, cut, bad_trunc = 0;

	U8_OK("");
	U8_OK("hello, world");
	U8_OK("a\0b"); /* NUL is a valid code point */
	U8_OK("\x7f");
	U8_OK("\xc2\x80");	   /* U+0080, smallest 2-byte */
	U8_OK("\xc3\xa9");	   /* é */
	U8_OK("\xdf\xbf");	   /* U+07FF */
	U8_OK("\xe0\xa0\x80");	   /* U+0800, smallest 3-byte */
	U8_OK("\xe2\x82\xac");	   /* € */
	U8_OK("\xed\x9f\xbf");	   /* U+D7FF, just below the surrogates */
	U8_OK("\xee\x80\x80");	   /* U+E000, just above */
	U8_OK("\xef\xbf\xbf");	   /* U+FFFF */
	U8_OK("\xef\xbb\xbf");	   /* BOM */
	U8_OK("\xf0\x90\x80\x80"); /* U+10000, smallest 4-byte */
	U8_OK("\xf0\x9f\x98\x80"); /* 😀 */
	U8_OK("\xf4\x8f\xbf\xbf"); /* U+10FFFF */
	U8_OK("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z");

	/* overlongs */
	U8_BAD("\xc0\x80");
	U8_BAD("\xc0\xaf");
	U8_BAD("\xc1\xbf");
	U8_BAD("\xe0\x80\x80");
	U8_BAD("\xe0\x80\xaf");
	U8_BAD("\xe0\x9f\xbf");
	U8_BAD("\xf0\x80\x80\x80");
	U8_BAD("\xf0\x8f\xbf\xbf");
	/* surrogates */
	U8_BAD("\xed\xa0\x80");
	U8_BAD("\xed\xaf\xbf");
	U8_BAD("\xed\xb0\x80");
	U8_BAD("\xed\xbf\xbf");
	U8_BAD("\xed\xa0\xbd\xed\xb8\x80"); /* CESU-8 pair */
	/* above U+10FFFF and impossible leads */
	U8_BAD("\xf4\x90\x80\x80");
	U8_BAD("\xf5\x80\x80\x80");
	U8_BAD("\xf7\xbf\xbf\xbf");
	U8_BAD("\xf8\x88\x80\x80\x80");
	U8_BAD("\xfc\x84\x80\x80\x80\x80");
	U8_BAD("\xfe");
	U8_BAD("\xff");
	/* stray continuation bytes */
	U8_BAD("\x80");
	U8_BAD("\xbf");
	U8_BAD("a\x80z");
	U8_BAD("\xc3\xa9\xa9");
	/* truncated sequences, at the end and in the middle */
	U8_BAD("\xc3");
	U8_BAD("\xe2\x82");
	U8_BAD("\xe2");
	U8_BAD("\xf0\x9f\x98");
	U8_BAD("\xf0\x9f");
	U8_BAD("\xf0");
	U8_BAD("\xc3z");
	U8_BAD("\xe2\x82z");
	U8_BAD("\xf0\x9f\x98z");
	U8_BAD("\xe2\x28\xa1");
	U8_BAD("\xf0\x28\x8c\xbc");
	U8_BAD("\xf0\x90\x28\xbc");
	U8_BAD("abc\xc3\xa9"
	       "def\xed\xa0\x80");

	/* len is honoured: bytes beyond it are never looked at */
	ok(kiln_utf8_valid("a\xff", 1), "utf8: invalid byte past len is ignored");
	ok(!kiln_utf8_valid("\xc3\xa9", 1), "utf8: sequence cut by len is invalid");
	ok(kiln_utf8_valid("\xff", 0), "utf8: len 0 is valid");

	/* Exhaustive: every scalar value, encoded shortest, is valid; every
	 * surrogate is invalid; every overlong form of every code point is
	 * invalid; every proper prefix of a multi-byte sequence is invalid. */
	for (cp = 0; cp <= 0x10FFFF; cp++) {
		n = encode(cp, b);
		if (cp >= 0xD800 && cp <= 0xDFFF) {
			if (kiln_utf8_valid((char *)b, n))
				bad_surrogate++;
			continue;
		}
		if (!kiln_utf8_valid((char *)b, n))
			bad_scalar++;
		for (cut = 1; cut < n; cut++)
			if (kiln_utf8_valid((char *)b, cut))
				bad_trunc++;
		for (size_t m = n + 1; m <= 4; m++) {
			encode_n(cp, m, b);
			if (kiln_utf8_valid((char *)b, m))
				bad_overlong++;
		}
	}
	is_int(bad_scalar, 0, "utf8: every scalar value U+0000..U+10FFFF is valid");
	is_int(bad_surrogate, 0, "utf8: every surrogate U+D800..U+DFFF is invalid");
	is_int(bad_overlong, 0, "utf8: every overlong encoding is invalid");
	is_int(bad_trunc, 0, "utf8: every truncated sequence is invalid");

	/* 4-byte forms of U+110000..U+1FFFFF (leads F4 90.. to F7) */
	for (cp = 0x110000; cp <= 0x1FFFFF; cp += 0x3F)
		if (encode(cp, b) == 4 && kiln_utf8_valid((char *)b, 4))
			bad_big++;
	is_int(bad_big, 0, "utf8: code points above U+10FFFF are invalid");

	/* leads that can never start a sequence, followed by continuations */
	for (lead = 0x80; lead <= 0xFF; lead++) {
		if (lead >= 0xC2 && lead <= 0xF4)
			continue;
		memset(b, 0x80 | 0x10, sizeof(b));
		b[0] = (unsigned char)lead;
		for (n = 1; n <= 4; n++)
			if (kiln_utf8_valid((char *)b, n))
				bad_lead++;
	}
	is_int(bad_lead, 0, "utf8: bytes 80-C1 and F5-FF never start a valid sequence");
}

/* ---- kiln_hex ------------------------------------------------------------ */

static void test_hex(void)
{
	static const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
	char out[2 * sizeof(in) + 2];
	unsigned char all[256];
	char big[2 * 256 + 1];
	int i, good = 1;

	memset(out, 'X', sizeof(out));
	kiln_hex(in, 0, out);
	ok(out[0] == '\0' && out[1] == 'X', "hex of 0 bytes is \"\" and writes one byte");

	memset(out, 'X', sizeof(out));
	kiln_hex(in, sizeof(in), out);
	is_str(out, "00017f80abcdefff", "hex of 8 bytes, lowercase");
	ok(out[2 * sizeof(in) + 1] == 'X', "hex writes exactly 2*len+1 bytes");

	kiln_hex((const unsigned char *)"\x5a", 1, out);
	is_str(out, "5a", "hex of one byte");

	for (i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	kiln_hex(all, sizeof(all), big);
	for (i = 0; i < 256; i++) {
		char want[3];

		snprintf(want, sizeof(want), "%02x", i);
		if (big[2 * i] != want[0] || big[2 * i + 1] != want[1])
			good = 0;
	}
	ok(good && big[512] == '\0', "hex of every byte value matches %%02x");
}

/* ---- error contract (src/core/error.h) --------------------------------- */

static int fail_with(struct kiln_error **err, int errnum, const char *what)
{
	return kiln_error_set(err, errnum, "mkdir %s", what);
}

static void test_error(void)
{
	struct kiln_error *err = NULL;
	char want[128], *huge;
	size_t i, len;
	int r, good;

	/* set, with and without errnum */
	r = kiln_error_set(&err, 0, "plain %d", 42);
	ok(r == -1 && err != NULL, "kiln_error_set returns -1 and stores an error");
	is_str(err ? err->msg : NULL, "plain 42", "errnum 0 appends nothing");
	is_int(err ? err->code : -1, 0, "code is 0");
	kiln_error_free(&err);
	r = kiln_error_set_code(&err, EINVAL, "bad %s", "key");
	ok(r == -1 && err != NULL, "kiln_error_set_code returns -1 and stores an error");
	is_str(err ? err->msg : NULL, "bad key", "set_code: no strerror text appended");
	is_int(err ? err->code : -1, EINVAL, "set_code: the code is kept");
	kiln_error_free(&err);
	ok(err == NULL, "kiln_error_free sets the pointer to NULL");

	r = fail_with(&err, ENOSPC, "/var/lib/kiln/jobs/42");
	snprintf(want, sizeof(want), "mkdir /var/lib/kiln/jobs/42: %s", strerror(ENOSPC));
	ok(r == -1, "kiln_error_set with errnum returns -1");
	is_str(err ? err->msg : NULL, want, "errnum appends ': strerror(errnum)'");
	is_int(err ? err->code : 0, ENOSPC, "code is the errnum");

	/* prefix chains, outermost first */
	r = kiln_error_prefix(&err, "open workspace");
	ok(r == -1, "kiln_error_prefix returns -1");
	snprintf(want, sizeof(want), "open workspace: mkdir /var/lib/kiln/jobs/42: %s",
		 strerror(ENOSPC));
	is_str(err ? err->msg : NULL, want, "prefix adds 'context: '");
	is_int(err ? err->code : 0, ENOSPC, "prefix keeps the code");
	kiln_error_free(&err);

	kiln_error_set(&err, 0, "msg");
	kiln_error_prefix(&err, "b");
	kiln_error_prefix(&err, "%s", "a");
	is_str(err ? err->msg : NULL, "a: b: msg", "prefixes chain: 'a: b: msg'");
	kiln_error_prefix(&err, "job %d", 7);
	is_str(err ? err->msg : NULL, "job 7: a: b: msg", "prefix takes a format");
	/* the prefix may quote the message itself: it is formatted before the move */
	kiln_error_prefix(&err, "%s", err->msg);
	is_str(err ? err->msg : NULL, "job 7: a: b: msg: job 7: a: b: msg",
	       "prefix may format the current message");
	kiln_error_prefix(&err, "%s", "");
	is_str(err ? err->msg : NULL, ": job 7: a: b: msg: job 7: a: b: msg", "empty prefix");
	kiln_error_free(&err);

	/* set replaces an error left in place (the contract says *err is NULL;
	 * if it is not, the old one is freed, not leaked: ASan checks that) */
	kiln_error_set(&err, EPERM, "first");
	kiln_error_set(&err, 0, "second");
	is_str(err ? err->msg : NULL, "second", "set over an existing error replaces it");
	kiln_error_free(&err);

	/* NULL handling */
	ok(kiln_error_set(NULL, EIO, "ignored") == -1, "set with err == NULL returns -1");
	ok(kiln_error_prefix(NULL, "x") == -1, "prefix with err == NULL returns -1");
	ok(kiln_error_prefix(&err, "x") == -1 && err == NULL,
	   "prefix with *err == NULL returns -1 and stores nothing");
	kiln_error_free(&err);
	kiln_error_free(NULL);
	ok(err == NULL, "kiln_error_free accepts NULL and a NULL error");

	/* Long messages and prefixes: always NUL-terminated inside msg[]. */
	huge = malloc(3 * KILN_ERROR_MAX);
	if (huge == NULL)
		abort();
	memset(huge, 'm', 3 * KILN_ERROR_MAX - 1);
	huge[3 * KILN_ERROR_MAX - 1] = '\0';

	kiln_error_set(&err, 0, "%s", huge);
	ok(err && memchr(err->msg, '\0', KILN_ERROR_MAX) != NULL &&
		   strlen(err->msg) == KILN_ERROR_MAX - 1,
	   "set: an over-long message is truncated to KILN_ERROR_MAX-1");
	kiln_error_free(&err);

	kiln_error_set(&err, ENOENT, "%s", huge);
	ok(err && strlen(err->msg) == KILN_ERROR_MAX - 1 && err->code == ENOENT,
	   "set: over-long message with errnum stays within bounds");
	kiln_error_free(&err);

	/* message just short of full: strerror is cut, not overflowed */
	huge[KILN_ERROR_MAX - 5] = '\0';
	kiln_error_set(&err, ENOENT, "%s", huge);
	ok(err && strlen(err->msg) == KILN_ERROR_MAX - 1 &&
		   strncmp(err->msg + KILN_ERROR_MAX - 5, ": ", 2) == 0,
	   "set: strerror is truncated at the end of the buffer");
	kiln_error_free(&err);
	huge[KILN_ERROR_MAX - 5] = 'm';

	/* a huge prefix on a short message */
	kiln_error_set(&err, 0, "root cause");
	kiln_error_prefix(&err, "%s", huge);
	len = err ? strlen(err->msg) : 0;
	ok(err && memchr(err->msg, '\0', KILN_ERROR_MAX) != NULL && len < KILN_ERROR_MAX,
	   "prefix: a prefix of %d bytes keeps msg NUL-terminated (len %zu)",
	   3 * KILN_ERROR_MAX - 1, len);
	ok(err && len >= 2 && err->msg[len - 2] == ':' && err->msg[len - 1] == ' ',
	   "prefix: a truncated prefix still ends in ': '");
	kiln_error_free(&err);

	/* a long message, then prefixes until full; and every prefix length
	 * around the boundary */
	good = 1;
	for (i = KILN_ERROR_MAX - 40; i < KILN_ERROR_MAX + 8; i++) {
		char saved = huge[i];

		huge[i] = '\0';
		kiln_error_set(&err, 0, "%s", huge + KILN_ERROR_MAX / 2);
		kiln_error_prefix(&err, "%s", huge);
		huge[i] = saved;
		if (err == NULL || memchr(err->msg, '\0', KILN_ERROR_MAX) == NULL) {
			good = 0;
			break;
		}
		len = strlen(err->msg);
		if (len != KILN_ERROR_MAX - 1)
			good = 0;
		/* the prefix comes first and is followed by ": " */
		if (i + 2 < KILN_ERROR_MAX && strncmp(err->msg + i, ": ", 2) != 0)
			good = 0;
		kiln_error_free(&err);
	}
	ok(good, "prefix: every prefix length around KILN_ERROR_MAX stays in bounds");

	kiln_error_set(&err, EACCES, "open /etc/shadow");
	for (i = 0; i < 200; i++)
		kiln_error_prefix(&err, "layer %zu", i);
	ok(err && memchr(err->msg, '\0', KILN_ERROR_MAX) != NULL &&
		   strncmp(err->msg, "layer 199: layer 198: ", 22) == 0,
	   "prefix: 200 layers of context stay in bounds, newest first");
	kiln_error_free(&err);
	free(huge);
}

static void test_b64url(void)
{
	ok(kiln_b64url_valid("AZaz09-_", 8), "base64url: the whole alphabet");
	ok(kiln_b64url_valid("", 0), "base64url: empty");
	ok(!kiln_b64url_valid("ab+c", 4), "base64url: '+' is standard base64, refused");
	ok(!kiln_b64url_valid("ab/c", 4), "base64url: '/' refused");
	ok(!kiln_b64url_valid("abc=", 4), "base64url: padding refused");
	ok(!kiln_b64url_valid("ab\0c", 4), "base64url: NUL refused");
	ok(kiln_b64url_valid("ab=c", 2), "base64url: only n bytes are looked at");
}

/* Key files: ours, regular, and (private) 0600, or refused saying why. */
static void test_key_file(void)
{
	char dir[] = "/tmp/kiln-test-key.XXXXXX", key[64], link[64];
	struct kiln_error *err = NULL;
	int fd;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(key, sizeof(key), "%s/key", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok(fd >= 0 && write(fd, "k", 1) == 1, "a key file");
	if (fd >= 0)
		close(fd);
	fd = kiln_open_key_file(key, true, &err);
	ok(fd >= 0, "0600 and ours: opened (%s)", err ? err->msg : "ok");
	if (fd >= 0)
		close(fd);
	kiln_error_free(&err);
	chmod(key, 0640);
	fd = kiln_open_key_file(key, true, &err);
	ok(fd < 0 && err && err->code == EPERM && strstr(err->msg, "chmod 0600"),
	   "0640: refused, saying how to fix it (%s)", err ? err->msg : "opened");
	kiln_error_free(&err);
	fd = kiln_open_key_file(key, false, &err);
	ok(fd >= 0, "0640 is fine when the mode is not checked (a systemd credential)");
	if (fd >= 0)
		close(fd);
	kiln_error_free(&err);
	ok(symlink(key, link) == 0, "a symlink to it");
	fd = kiln_open_key_file(link, false, &err);
	ok(fd < 0 && err && err->code == ELOOP, "a symlink is not followed (%s)",
	   err ? err->msg : "opened");
	kiln_error_free(&err);
	fd = kiln_open_key_file(dir, false, &err);
	ok(fd < 0 && err && err->code == EPERM, "a directory is refused");
	kiln_error_free(&err);
	unlink(link);
	unlink(key);
	rmdir(dir);
}

int main(void)
{
	test_size();
	test_key_file();
	test_b64url();
	test_duration();
	test_uint();
	test_cpus();
	test_env();
	test_path();
	test_utf8();
	test_hex();
	test_error();
	return tap_done();
}
