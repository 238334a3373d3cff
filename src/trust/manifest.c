/* SPDX-License-Identifier: Apache-2.0 */
/* The submission manifest: see manifest.h and docs/signing.md. */
#include "trust/manifest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool project_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static int parse_time(const char *s, size_t n, int64_t *out)
{
	struct tm tm;
	char buf[32];
	const char *end;
	time_t t;

	if (n != 20)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(&tm, 0, sizeof(tm));
	end = strptime(buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	/* Canonical only: the time must format back to the same bytes (no
	 * 2026-02-30, no year written with fewer digits). */
	{
		struct tm back;
		char again[32];

		if (gmtime_r(&t, &back) == NULL ||
		    strftime(again, sizeof(again), "%Y-%m-%dT%H:%M:%SZ", &back) != n ||
		    memcmp(again, s, n) != 0)
			return -1;
	}
	*out = (int64_t)t;
	return 0;
}

int kiln_manifest_parse(const char *text, size_t len, struct kiln_manifest *m,
			struct kiln_error **err)
{
	static const char *const keys[] = {
		NULL, "project: ", "spec-sha256: ", "source-sha256: ", "nonce: ", "created: "};
	size_t pos = 0;

	memset(m, 0, sizeof(*m));
	if (len > KILN_MANIFEST_MAX)
		return kiln_error_set_code(err, EINVAL, "manifest: larger than %d bytes",
					   KILN_MANIFEST_MAX);
	for (int line = 0; line < 6; line++) {
		const char *p = text + pos, *nl = memchr(p, '\n', len - pos);
		size_t n, k;

		if (nl == NULL)
			return kiln_error_set_code(
				err, EINVAL, "manifest: line %d missing or not ended by a newline",
				line + 1);
		n = (size_t)(nl - p);
		pos += n + 1;
		if (line == 0) {
			if (n != strlen(KILN_MANIFEST_HEAD) ||
			    memcmp(p, KILN_MANIFEST_HEAD, n) != 0)
				return kiln_error_set_code(err, EINVAL,
							   "manifest: line 1 must be '%s'",
							   KILN_MANIFEST_HEAD);
			continue;
		}
		k = strlen(keys[line]);
		if (n < k || memcmp(p, keys[line], k) != 0)
			return kiln_error_set_code(err, EINVAL,
						   "manifest: line %d must start with '%s'",
						   line + 1, keys[line]);
		p += k;
		n -= k;
		switch (line) {
		case 1:
			if (!project_ok(p, n))
				return kiln_error_set_code(err, EINVAL,
							   "manifest: line 2: not a project name");
			memcpy(m->project, p, n);
			break;
		case 2:
		case 3:
			if (n != 64 || !lower_hex(p, n))
				return kiln_error_set_code(
					err, EINVAL,
					"manifest: line %d: expected 64 lowercase hex "
					"digits",
					line + 1);
			memcpy(line == 2 ? m->spec_sha256 : m->source_sha256, p, 64);
			break;
		case 4:
			if (n < 32 || n > 128 || !lower_hex(p, n))
				return kiln_error_set_code(
					err, EINVAL,
					"manifest: line 5: the nonce must be 32 to 128 "
					"lowercase hex digits");
			memcpy(m->nonce, p, n);
			break;
		case 5:
			if (parse_time(p, n, &m->created) < 0)
				return kiln_error_set_code(
					err, EINVAL,
					"manifest: line 6: expected a UTC time like "
					"2026-12-07T13:00:00Z");
			break;
		default: break;
		}
	}
	if (pos != len)
		return kiln_error_set_code(err, EINVAL, "manifest: text after line 6");
	return 0;
}

char *kiln_manifest_format(const struct kiln_manifest *m)
{
	struct tm tm;
	time_t t = (time_t)m->created;
	char when[32];
	char *out = NULL;

	if (gmtime_r(&t, &tm) == NULL)
		return NULL;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (asprintf(&out,
		     KILN_MANIFEST_HEAD "\nproject: %s\nspec-sha256: %s\nsource-sha256: %s\n"
					"nonce: %s\ncreated: %s\n",
		     m->project, m->spec_sha256, m->source_sha256, m->nonce, when) < 0)
		return NULL;
	return out;
}
