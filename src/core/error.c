/* SPDX-License-Identifier: Apache-2.0 */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocation failure while reporting an error must still report something:
 * fall back to a static error (never freed). */
static struct kiln_error oom_error = {ENOMEM, "out of memory while reporting an error"};

int kiln_error_set(struct kiln_error **err, int errnum, const char *fmt, ...)
{
	struct kiln_error *e;
	va_list ap;
	size_t n;

	if (err == NULL)
		return -1;
	if (*err != NULL)
		kiln_error_free(err);
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		*err = &oom_error;
		return -1;
	}
	e->code = errnum;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	if (errnum != 0) {
		n = strlen(e->msg);
		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(errnum));
	}
	*err = e;
	return -1;
}

int kiln_error_set_code(struct kiln_error **err, int code, const char *fmt, ...)
{
	char msg[KILN_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kiln_error_set(err, 0, "%s", msg);
	/* Not the static out-of-memory error, which keeps its ENOMEM. */
	if (err != NULL && *err != NULL && *err != &oom_error)
		(*err)->code = code;
	return -1;
}

int kiln_error_prefix(struct kiln_error **err, const char *fmt, ...)
{
	char ctx[KILN_ERROR_MAX];
	struct kiln_error *e;
	size_t n, old;
	va_list ap;

	if (err == NULL || *err == NULL || *err == &oom_error)
		return -1;
	e = *err;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	n = strlen(ctx);
	if (n + 2 >= sizeof(e->msg))
		n = sizeof(e->msg) - 3;
	old = strlen(e->msg);
	if (old > sizeof(e->msg) - 1 - (n + 2))
		old = sizeof(e->msg) - 1 - (n + 2);
	memmove(e->msg + n + 2, e->msg, old);
	e->msg[n + 2 + old] = '\0';
	memcpy(e->msg, ctx, n);
	e->msg[n] = ':';
	e->msg[n + 1] = ' ';
	return -1;
}

void kiln_error_free(struct kiln_error **err)
{
	if (err == NULL || *err == NULL)
		return;
	if (*err != &oom_error)
		free(*err);
	*err = NULL;
}
