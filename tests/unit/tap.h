/* SPDX-License-Identifier: Apache-2.0 */
/* Minimal TAP producer for C unit tests. A test that cannot run prints a
 * "1..0 # SKIP reason" plan and exits 0 (meson's TAP protocol reads the plan;
 * a non-zero exit would be an ERROR), except on CI (CI=true), where nothing
 * security-related may be skipped: there it fails. */
#ifndef KILN_TESTS_TAP_H
#define KILN_TESTS_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                                              \
	do {                                                                                       \
		int ok_ = !!(cond);                                                                \
		printf("%sok %d - ", ok_ ? "" : "not ", ++tap_n);                                  \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		if (!ok_) {                                                                        \
			tap_failed++;                                                              \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
		}                                                                                  \
		fflush(stdout);                                                                    \
	} while (0)

#define is_int(got, want, ...)                                                                     \
	do {                                                                                       \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		ok(g_ == w_, __VA_ARGS__);                                                         \
		if (g_ != w_)                                                                      \
			printf("#   got %lld, want %lld\n", g_, w_);                               \
	} while (0)

#define is_str(got, want, ...)                                                                     \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		int eq_ = g_ && w_ && strcmp(g_, w_) == 0;                                         \
		ok(eq_, __VA_ARGS__);                                                              \
		if (!eq_)                                                                          \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)",                    \
			       w_ ? w_ : "(null)");                                                \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

static inline void tap_skip_all(const char *why)
{
	const char *ci = getenv("CI");

	if (ci != NULL && strcmp(ci, "true") == 0) {
		printf("not ok 1 - cannot run on CI: %s\n1..1\n", why);
		exit(1);
	}
	printf("1..0 # SKIP %s\n", why);
	exit(0);
}

#endif
