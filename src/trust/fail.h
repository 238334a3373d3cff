/* SPDX-License-Identifier: Apache-2.0 */
/* Internal to src/trust: an error with an errno-style code for callers to
 * branch on, and a message without strerror's text (the code names a
 * category here, not what the OS said). */
#ifndef KILN_TRUST_FAIL_H
#define KILN_TRUST_FAIL_H

#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"

__attribute__((format(printf, 3, 4))) static inline int
kiln_trust_fail(struct kiln_error **err, int code, const char *fmt, ...)
{
	char msg[KILN_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kiln_error_set(err, 0, "%s", msg);
	if (err != NULL && *err != NULL)
		(*err)->code = code;
	return -1;
}

#endif
