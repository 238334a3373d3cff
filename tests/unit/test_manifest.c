/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The submission manifest (docs/signing.md): the canonical form round
 * trips, and every deviation from it is refused with the line named.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tap.h"
#include "trust/manifest.h"

#define H64 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define GOOD                                                                                       \
	"kiln-submission-v1\nproject: web\nspec-sha256: " H64 "\nsource-sha256: " H64              \
	"\nnonce: 00112233445566778899aabbccddeeff\ncreated: 2026-12-07T13:00:00Z\n"

static int parse(const char *text, char *msg, size_t len)
{
	struct kiln_manifest m;
	struct kiln_error *err = NULL;
	int r = kiln_manifest_parse(text, strlen(text), &m, &err);

	snprintf(msg, len, "%s", err ? err->msg : "");
	kiln_error_free(&err);
	return r;
}

static char *replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);

	if (p == NULL || out == NULL)
		abort();
	snprintf(out, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
	return out;
}

int main(void)
{
	static const struct {
		const char *from, *to, *want;
	} bad[] = {
		{"kiln-submission-v1", "kiln-submission-v2", "line 1"},
		{"project: web", "project: Web", "line 2"},
		{"project: web", "project:web", "line 2"},
		{"spec-sha256: 2cf2", "spec-sha256: 2CF2", "line 3"},
		{"source-sha256: ", "source_sha256: ", "line 4"},
		{"nonce: 0011", "nonce: 11", "line 5"},
		{"nonce: 0011", "nonce: zz11", "line 5"},
		{"13:00:00Z", "13:00:00+00:00", "line 6"},
		{"2026-12-07T", "2026-12-07 ", "line 6"},
		{"2026-12-07T", "2026-02-30T", "line 6"},
		{"2026-12-07T", "0555-12-07T", "line 6"},
		{"\ncreated", "\r\ncreated", "line 5"},
		{"13:00:00Z\n", "13:00:00Z", "line 6"},
		{"13:00:00Z\n", "13:00:00Z\nextra\n", "after line 6"},
	};
	struct kiln_manifest m;
	struct kiln_error *err = NULL;
	char msg[1024], *text;

	ok(kiln_manifest_parse(GOOD, strlen(GOOD), &m, &err) == 0, "the canonical form parses");
	is_str(m.project, "web", "project");
	is_str(m.spec_sha256, H64, "spec digest");
	is_str(m.nonce, "00112233445566778899aabbccddeeff", "nonce");
	is_int(m.created, 1796648400, "created, as unix seconds");
	text = kiln_manifest_format(&m);
	is_str(text, GOOD, "formatting gives the same bytes");
	free(text);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		text = replace(GOOD, bad[i].from, bad[i].to);
		ok(parse(text, msg, sizeof(msg)) < 0 && strstr(msg, bad[i].want) != NULL,
		   "deviation %zu refused: %s", i, msg);
		free(text);
	}
	ok(parse("", msg, sizeof(msg)) < 0, "empty refused");
	return tap_done();
}
