/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one error contract of kiln (CONVENTIONS.md 2).
 *
 * A function that can fail takes `struct kiln_error **err` as its last
 * argument and returns a negative value (-1) on failure, 0 (or a
 * non-negative result) on success. On failure it has stored exactly one
 * error in *err. Callers add context while passing it up:
 *
 *   if (mkdir_ws(path, err) < 0)
 *           return kiln_error_prefix(err, "open workspace");
 *
 * which yields messages of the form
 *   "open workspace: mkdir /var/lib/kiln/jobs/42: No space left on device".
 *
 * `code` is an errno value (or 0) so callers can branch on the cause.
 * The caller that finally handles the error prints it and frees it with
 * kiln_error_free(). Messages say what failed, on what, and what to do.
 */
#ifndef KILN_CORE_ERROR_H
#define KILN_CORE_ERROR_H

#include <stddef.h>

#define KILN_ERROR_MAX 1024

struct kiln_error {
	int code;		  /* errno-style cause, or 0 */
	char msg[KILN_ERROR_MAX]; /* NUL-terminated, human readable */
};

/* Store a new error (replacing nothing: *err must be NULL). If errnum is
 * non-zero, ": strerror(errnum)" is appended. Always returns -1. */
int kiln_error_set(struct kiln_error **err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same with an errno-style code for callers to branch on, but a
 * message that stands on its own (no strerror text appended). */
int kiln_error_set_code(struct kiln_error **err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend "context: " to the stored error. Always returns -1. */
int kiln_error_prefix(struct kiln_error **err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Free the error and set *err to NULL. Accepts NULL. */
void kiln_error_free(struct kiln_error **err);

#endif
