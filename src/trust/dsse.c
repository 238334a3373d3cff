/* SPDX-License-Identifier: Apache-2.0 */
/* DSSE envelopes with Ed25519: see dsse.h. */
#include "trust/dsse.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/util.h"

#define ENVELOPE_MAX (64u << 20)

char *kiln_dsse_pae(const char *type, const void *body, size_t len, size_t *out_len)
{
	size_t tn = strlen(type);
	size_t cap = tn + len + 64;
	char *p = malloc(cap);
	int h;

	if (p == NULL)
		return NULL;
	h = snprintf(p, cap, "DSSEv1 %zu %s %zu ", tn, type, len);
	if (h < 0 || (size_t)h >= cap) {
		free(p);
		return NULL;
	}
	if (len > 0)
		memcpy(p + h, body, len);
	p[(size_t)h + len] = '\0';
	*out_len = (size_t)h + len;
	return p;
}

void kiln_ed25519_keyid(const uint8_t pk[32], char out[KILN_ED25519_KEYID_HEX])
{
	uint8_t h[32];

	crypto_hash_sha256(h, pk, 32);
	kiln_hex(h, sizeof(h), out);
}

static char *b64_new(const void *bin, size_t len)
{
	size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(n);

	if (s != NULL)
		sodium_bin2base64(s, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

/* Standard or URL-safe alphabet, with or without padding. */
static uint8_t *b64_decode(const char *s, size_t *len)
{
	static const int variants[] = {
		sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
		sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
	size_t n = strlen(s), cap = n / 4 * 3 + 3;
	uint8_t *out = malloc(cap + 1);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		const char *end = NULL;

		if (sodium_base642bin(out, cap, s, n, NULL, len, &end, variants[i]) == 0 &&
		    end == s + n) {
			out[*len] = '\0';
			return out;
		}
	}
	free(out);
	return NULL;
}

json_t *kiln_dsse_sign(const char *type, const void *body, size_t len, const uint8_t sk[64],
		       struct kiln_error **err)
{
	uint8_t sig[64], pk[32];
	char keyid[KILN_ED25519_KEYID_HEX];
	size_t plen = 0;
	char *pae = kiln_dsse_pae(type, body, len, &plen);
	char *b_body, *b_sig;
	json_t *env;

	if (pae == NULL) {
		kiln_error_set_code(err, ENOMEM, "DSSE");
		return NULL;
	}
	crypto_sign_detached(sig, NULL, (const uint8_t *)pae, plen, sk);
	free(pae);
	crypto_sign_ed25519_sk_to_pk(pk, sk);
	kiln_ed25519_keyid(pk, keyid);
	b_body = b64_new(body, len);
	b_sig = b64_new(sig, sizeof(sig));
	env = b_body && b_sig
		      ? json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payload", b_body, "payloadType",
				  type, "signatures", "keyid", keyid, "sig", b_sig)
		      : NULL;
	free(b_body);
	free(b_sig);
	if (env == NULL)
		kiln_error_set_code(err, ENOMEM, "DSSE envelope");
	return env;
}

int kiln_dsse_verify(const char *text, size_t len, const uint8_t pk[32], char **body,
		     size_t *body_len, char **type, struct kiln_error **err)
{
	char keyid[KILN_ED25519_KEYID_HEX];
	json_error_t je;
	json_t *env, *sigs, *s;
	const char *payload, *ptype;
	uint8_t *bin = NULL;
	size_t blen = 0, i;
	bool ours = false, ok = false;
	int r = -1;

	*body = NULL;
	*type = NULL;
	if (len > ENVELOPE_MAX)
		return kiln_error_set_code(err, EINVAL, "envelope: larger than 64M");
	env = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (env == NULL)
		return kiln_error_set_code(err, EINVAL, "envelope: not JSON (line %d: %s)", je.line,
					   je.text);
	payload = json_string_value(json_object_get(env, "payload"));
	ptype = json_string_value(json_object_get(env, "payloadType"));
	sigs = json_object_get(env, "signatures");
	if (!json_is_object(env) || payload == NULL || ptype == NULL || !json_is_array(sigs)) {
		kiln_error_set_code(err, EINVAL,
				    "envelope: not a DSSE envelope (needs payload, payloadType and "
				    "signatures)");
		goto out;
	}
	if (json_array_size(sigs) == 0) {
		kiln_error_set_code(err, ENOKEY, "envelope: has no signatures");
		goto out;
	}
	bin = b64_decode(payload, &blen);
	if (bin == NULL) {
		kiln_error_set_code(err, EINVAL, "envelope: payload is not base64");
		goto out;
	}
	kiln_ed25519_keyid(pk, keyid);
	json_array_foreach(sigs, i, s)
	{
		const char *kid = json_string_value(json_object_get(s, "keyid"));
		const char *sb = json_string_value(json_object_get(s, "sig"));
		size_t slen = 0, plen = 0;
		uint8_t *sig;
		char *pae;

		if (kid != NULL && strcmp(kid, keyid) == 0)
			ours = true;
		if (sb == NULL || (sig = b64_decode(sb, &slen)) == NULL)
			continue;
		pae = slen == 64 ? kiln_dsse_pae(ptype, bin, blen, &plen) : NULL;
		if (pae != NULL &&
		    crypto_sign_verify_detached(sig, (const uint8_t *)pae, plen, pk) == 0)
			ok = true;
		free(pae);
		free(sig);
		if (ok)
			break;
	}
	if (!ok) {
		if (ours)
			kiln_error_set_code(
				err, EBADMSG,
				"signature: the signature by key %.16s... does not verify "
				"(the payload or the signature was changed)",
				keyid);
		else
			kiln_error_set_code(err, ENOKEY,
					    "signature: the envelope is not signed by key %.16s... "
					    "(another key, or forged)",
					    keyid);
		goto out;
	}
	*type = strdup(ptype);
	if (*type == NULL) {
		kiln_error_set_code(err, ENOMEM, "envelope");
		goto out;
	}
	*body = (char *)bin;
	*body_len = blen;
	bin = NULL;
	r = 0;
out:
	free(bin);
	json_decref(env);
	return r;
}
