/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for policy files (src/server/policy.c) and the secret
 * masker (src/server/mask.c).
 *
 * Policy: on failure, line and column >= 0 and the message NUL-terminated,
 * non-empty and free of control characters; on success, defaults never
 * above maxima, at least one image, a digest of the right shape, and a
 * minimal spec either allowed (then within every maximum) or refused with
 * a message.
 *
 * Masker: the first bytes of the input are a secret (>= 8 bytes), the rest
 * output cut into chunks at places the input chooses; the masked output
 * never contains the secret, and masking in chunks equals masking in one
 * piece.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/mask.h"
#include "server/policy.h"
#include "server/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_policy: invariant failed at %s:%d: %s\n", __FILE__,  \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct buf {
	char *p;
	size_t len, cap;
};

static void emit(void *ctx, const char *b, size_t n)
{
	struct buf *o = ctx;

	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2 + 64;
		o->p = realloc(o->p, o->cap);
		CHECK(o->p != NULL);
	}
	memcpy(o->p + o->len, b, n);
	o->len += n;
}

static void fuzz_policy(const uint8_t *data, size_t size)
{
	struct kiln_spec_error e;
	struct kiln_policy *p = NULL;
	int r = kiln_policy_parse("fuzz", "fuzz.yml", (const char *)data, size, NULL, &p, &e);

	if (r < 0) {
		CHECK(p == NULL);
		CHECK(e.line >= 0 && e.column >= 0);
		CHECK(memchr(e.message, '\0', sizeof(e.message)) != NULL);
		CHECK(e.message[0] != '\0');
		for (const char *c = e.message; *c; c++)
			CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
		return;
	}
	CHECK(p != NULL && p->nimages >= 1);
	CHECK(strncmp(p->digest, "sha256:", 7) == 0 && strlen(p->digest) == 71);
	CHECK(p->def.memory <= p->max.memory && p->def.disk <= p->max.disk &&
	      p->def.pids <= p->max.pids && p->def.timeout <= p->max.timeout);
	CHECK(p->max.cpus_milli == 0 || p->def.cpus_milli <= p->max.cpus_milli);
	{
		struct kiln_spec_limits l;
		struct kiln_spec_error se;
		struct kiln_spec *s = NULL;
		char msg[512];

		kiln_spec_limits_default(&l);
		CHECK(kiln_spec_parse("script: x\n", 10, &l, &s, &se) == 0);
		if (kiln_policy_apply(p, s, false, msg, sizeof(msg)) == 0) {
			CHECK(s->memory <= p->max.memory && s->pids <= p->max.pids &&
			      s->disk <= p->max.disk && s->timeout <= p->max.timeout);
			CHECK(s->image != NULL);
		} else {
			CHECK(msg[0] != '\0');
		}
		kiln_spec_free(s);
	}
	{
		json_t *j = kiln_policy_to_json(p);
		CHECK(j != NULL);
		json_decref(j);
	}
	kiln_policy_free(p);
}

static void fuzz_mask(const uint8_t *data, size_t size)
{
	struct kiln_masker *m;
	struct kiln_mask_stream *st;
	struct buf whole = {0}, parts = {0};
	size_t slen, pos;

	if (size < 10)
		return;
	slen = 8 + data[0] % 24;
	if (size < 1 + slen)
		return;
	m = kiln_masker_new();
	CHECK(m != NULL);
	if (kiln_masker_add(m, data + 1, slen) < 0) {
		kiln_masker_free(m);
		return;
	}
	pos = 1 + slen;

	st = kiln_mask_stream_new(m);
	kiln_mask_stream_feed(st, (const char *)data + pos, size - pos, emit, &whole);
	kiln_mask_stream_finish(st, emit, &whole);
	kiln_mask_stream_free(st);

	st = kiln_mask_stream_new(m);
	for (size_t i = pos; i < size;) {
		size_t n = 1 + data[i] % 7;
		if (n > size - i)
			n = size - i;
		kiln_mask_stream_feed(st, (const char *)data + i, n, emit, &parts);
		i += n;
	}
	kiln_mask_stream_finish(st, emit, &parts);
	kiln_mask_stream_free(st);

	CHECK(whole.len == parts.len &&
	      (whole.len == 0 || memcmp(whole.p, parts.p, whole.len) == 0));
	CHECK(whole.len == 0 || memmem(whole.p, whole.len, data + 1, slen) == NULL);
	free(whole.p);
	free(parts.p);
	kiln_masker_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;

	if (!init) {
		CHECK(sodium_init() >= 0);
		init = true;
	}
	fuzz_policy(data, size);
	fuzz_mask(data, size);
	return 0;
}
