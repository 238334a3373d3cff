/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DSSE: the PAE test vector of the DSSE protocol spec (protocol.md), then
 * envelopes signed and verified with Ed25519, and the ways a verifier must
 * say no: a changed payload byte, a forged signature, another key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/error.h"
#include "tap.h"
#include "trust/dsse.h"

static int verify(const char *text, const uint8_t pk[32], char **body, int *code)
{
	struct kiln_error *err = NULL;
	char *type = NULL;
	size_t n = 0;
	int r = kiln_dsse_verify(text, strlen(text), pk, body, &n, &type, &err);

	*code = err ? err->code : 0;
	if (err)
		printf("# %s\n", err->msg);
	kiln_error_free(&err);
	free(type);
	return r;
}

int main(void)
{
	uint8_t pk[32], sk[64], pk2[32], sk2[64];
	struct kiln_error *err = NULL;
	const char *payload = "{\"hello\":\"world\"}";
	char *pae, *text, *body = NULL, *p;
	size_t n = 0;
	json_t *env;
	int code;

	if (sodium_init() < 0)
		return 1;
	/* The spec's vector: type http://example.com/HelloWorld, body "hello world". */
	pae = kiln_dsse_pae("http://example.com/HelloWorld", "hello world", 11, &n);
	is_str(pae, "DSSEv1 29 http://example.com/HelloWorld 11 hello world", "PAE test vector");
	is_int((int)n, 54, "PAE length");
	free(pae);
	pae = kiln_dsse_pae("", "", 0, &n);
	is_str(pae, "DSSEv1 0  0 ", "PAE of empty type and body");
	free(pae);

	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	env = kiln_dsse_sign(KILN_INTOTO_PAYLOAD_TYPE, payload, strlen(payload), sk, &err);
	ok(env != NULL, "sign");
	is_str(json_string_value(json_object_get(env, "payloadType")),
	       "application/vnd.in-toto+json", "payloadType");
	text = json_dumps(env, JSON_COMPACT);
	ok(verify(text, pk, &body, &code) == 0 && body && strcmp(body, payload) == 0,
	   "verifies, payload returned");
	free(body);
	ok(verify(text, pk2, &body, &code) < 0 && code == ENOKEY, "another key: ENOKEY");

	/* One changed byte of the payload (base64 of '{"hello"...' starts eyJo). */
	p = strstr(text, "eyJoZWxsbyI6");
	ok(p != NULL, "payload found in the envelope");
	p[3] = 'p';
	ok(verify(text, pk, &body, &code) < 0 && code == EBADMSG, "changed payload: EBADMSG");
	free(text);

	/* A forged envelope: right key id, signature of something else. */
	{
		json_t *forged = json_deep_copy(env);
		json_t *s0 = json_array_get(json_object_get(forged, "signatures"), 0);
		uint8_t sig[64];
		char b64[128];

		crypto_sign_detached(sig, NULL, (const uint8_t *)"x", 1, sk2);
		sodium_bin2base64(b64, sizeof(b64), sig, 64, sodium_base64_VARIANT_ORIGINAL);
		json_object_set_new(s0, "sig", json_string(b64));
		text = json_dumps(forged, JSON_COMPACT);
		ok(verify(text, pk, &body, &code) < 0 && code == EBADMSG,
		   "forged signature: EBADMSG");
		free(text);
		json_object_set_new(forged, "signatures", json_array());
		text = json_dumps(forged, JSON_COMPACT);
		ok(verify(text, pk, &body, &code) < 0 && code == ENOKEY, "no signatures: refused");
		free(text);
		json_decref(forged);
	}
	ok(verify("{\"payload\": 1}", pk, &body, &code) < 0 && code == EINVAL,
	   "not an envelope: EINVAL");
	ok(verify("nope", pk, &body, &code) < 0 && code == EINVAL, "not JSON: EINVAL");
	json_decref(env);
	return tap_done();
}
