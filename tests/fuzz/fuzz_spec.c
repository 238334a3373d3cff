/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for kiln.yml (src/server/spec.c), the first parser a
 * hostile client reaches.
 *
 * Each input is parsed under the default limits and under tight ones.
 * On failure: *out untouched, line and column >= 0 and within the text, the
 * message NUL-terminated, non-empty and free of control characters (it ends
 * up in logs, JSON and terminals). On success: every field within its
 * limit and rule, and the normalised JSON, dumped and parsed again as a
 * spec (JSON is YAML), gives the same spec field for field.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "server/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_spec: invariant failed at %s:%d: %s\n", __FILE__,    \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Characters in line `line` (1-based) of the text, or -1 past the last
 * line; line breaks are LF, CRLF and CR. */
static long line_chars(const char *text, size_t len, int line)
{
	size_t i = 0;
	long n = 0;

	for (int l = 1; l < line; l++) {
		while (i < len && text[i] != '\n' && text[i] != '\r')
			i++;
		if (i == len)
			return -1;
		i += (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n') ? 2 : 1;
	}
	for (; i < len && text[i] != '\n' && text[i] != '\r'; i++)
		if (((unsigned char)text[i] & 0xC0) != 0x80)
			n++;
	return n;
}

static void check_error(const struct kiln_spec_error *e, const char *text, size_t len)
{
	const char *nul = memchr(e->message, '\0', sizeof(e->message));

	CHECK(nul != NULL);
	CHECK(e->message[0] != '\0');
	CHECK(e->line >= 0 && e->column >= 0);
	CHECK((e->line == 0) == (e->column == 0));
	/* a position is a character of the text or the end of one of its lines */
	if (e->line > 0) {
		long n = line_chars(text, len, e->line);

		CHECK(n >= 0);
		CHECK(e->column <= n + 1);
	}
	for (const char *p = e->message; p < nul; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

static void check_spec(const struct kiln_spec *s, const struct kiln_spec_limits *l)
{
	CHECK(s->script != NULL && s->script[0] != '\0');
	CHECK(kiln_utf8_valid(s->script, strlen(s->script)));
	CHECK(s->nartifacts <= 64);
	CHECK(s->nartifacts == 0 || s->artifacts != NULL);
	for (size_t i = 0; i < s->nartifacts; i++) {
		const char *a = s->artifacts[i];
		size_t n = strlen(a);
		char *abs = malloc(n + 2);

		CHECK(abs != NULL);
		abs[0] = '/';
		memcpy(abs + 1, a, n + 1);
		if (n > 1 && abs[n] == '/')
			abs[n] = '\0';
		CHECK(a[0] != '/' && kiln_sandbox_path_valid(abs));
		free(abs);
	}
	CHECK(s->timeout > 0 && s->timeout <= l->max_timeout && s->timeout <= INT64_MAX);
	CHECK(s->memory > 0 && s->memory <= l->max_memory && s->memory <= INT64_MAX);
	CHECK(s->disk > 0 && s->disk <= l->max_disk && s->disk <= INT64_MAX);
	CHECK(s->pids >= 1 && s->pids <= l->max_pids);
	CHECK(s->cpus_milli <= l->max_cpus_milli);
	CHECK(s->network != NULL && strcmp(s->network, "none") == 0);
	CHECK(s->nenv <= 256);
	for (size_t i = 0; i < s->nenv; i++) {
		const char *eq = strchr(s->env[i], '=');
		static const char *const reserved[] = {
			"PATH=", "HOME=", "USER=", "LOGNAME=", "SHELL=", "TMPDIR="};

		CHECK(kiln_env_valid(s->env[i]) && eq != NULL);
		for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++)
			CHECK(strncmp(s->env[i], reserved[r], strlen(reserved[r])) != 0);
		for (size_t j = 0; j < i; j++) {
			size_t n = (size_t)(eq - s->env[i]) + 1;

			CHECK(strncmp(s->env[j], s->env[i], n) != 0);
		}
	}
}

static bool same_spec(const struct kiln_spec *a, const struct kiln_spec *b)
{
	if (strcmp(a->script, b->script) != 0 || a->nartifacts != b->nartifacts ||
	    a->timeout != b->timeout || a->memory != b->memory || a->disk != b->disk ||
	    a->pids != b->pids || a->cpus_milli != b->cpus_milli ||
	    strcmp(a->network, b->network) != 0 || a->retry != b->retry || a->nenv != b->nenv)
		return false;
	for (size_t i = 0; i < a->nartifacts; i++)
		if (strcmp(a->artifacts[i], b->artifacts[i]) != 0)
			return false;
	for (size_t i = 0; i < a->nenv; i++)
		if (strcmp(a->env[i], b->env[i]) != 0)
			return false;
	return true;
}

static void round_trip(const struct kiln_spec *s, const struct kiln_spec_limits *l)
{
	struct kiln_spec *s2 = NULL;
	struct kiln_spec_error e;
	json_t *j = kiln_spec_to_json(s), *j2;
	char *text;
	int r;

	CHECK(j != NULL);
	text = json_dumps(j, JSON_REAL_PRECISION(15));
	CHECK(text != NULL);
	/* escapes can make the JSON longer than the cap the original met */
	if (strlen(text) <= KILN_SPEC_MAX_BYTES) {
		r = kiln_spec_parse(text, strlen(text), l, &s2, &e);
		if (r != 0)
			fprintf(stderr, "fuzz_spec: JSON did not parse again: %d:%d: %s\n%s\n",
				e.line, e.column, e.message, text);
		CHECK(r == 0);
		CHECK(same_spec(s, s2));
		j2 = kiln_spec_to_json(s2);
		CHECK(j2 != NULL && json_equal(j, j2));
		json_decref(j2);
		kiln_spec_free(s2);
	}
	free(text);
	json_decref(j);
}

static void one(const char *text, size_t len, const struct kiln_spec_limits *l)
{
	struct kiln_spec sentinel;
	struct kiln_spec *s = &sentinel;
	struct kiln_spec_error e;
	int r;

	memset(&e, 0x5a, sizeof(e));
	r = kiln_spec_parse(text, len, l, &s, &e);
	CHECK(r == 0 || r == -1);
	if (r < 0) {
		CHECK(s == &sentinel);
		check_error(&e, text, len);
		return;
	}
	CHECK(s != &sentinel && s != NULL);
	check_spec(s, l);
	round_trip(s, l);
	kiln_spec_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_spec_limits def, tight = {
					     .max_timeout = 600,
					     .max_memory = UINT64_C(1) << 30,
					     .max_disk = UINT64_C(512) << 20,
					     .max_pids = 100,
					     .max_cpus_milli = 1500,
				     };
	char *copy;

	if (size > KILN_SPEC_MAX_BYTES + 16)
		return 0;
	/* an exact-size copy, so ASan sees any read past the end */
	copy = malloc(size ? size : 1);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	kiln_spec_limits_default(&def);
	one(copy, size, &def);
	one(copy, size, &tight);
	free(copy);
	return 0;
}
