/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the trust parsers a hostile client or a hostile
 * provenance file reaches (src/trust): minisign public keys, secret keys
 * (unencrypted only: scrypt would make each run take seconds) and
 * signatures, the submission manifest, DSSE envelopes and SLSA statements.
 *
 * Invariants: no crash or sanitizer report; a refusal leaves a non-empty
 * message; an accepted manifest formats back to the same bytes; an
 * accepted minisign signature keeps its trusted comment within bounds.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "trust/dsse.h"
#include "trust/manifest.h"
#include "trust/minisign.h"
#include "trust/provenance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_trust: invariant failed at %s:%d: %s\n", __FILE__,   \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void refused(struct kiln_error **err)
{
	CHECK(*err != NULL && (*err)->msg[0] != '\0');
	kiln_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pk[32], sk[64];
	static int init;
	const char *text = (const char *)data;
	struct kiln_error *err = NULL;
	struct kiln_minisign_pk mpk;
	struct kiln_minisign_sk msk;
	struct kiln_minisign_sig sig;
	struct kiln_manifest m;
	char *body = NULL, *type = NULL;
	size_t blen = 0;

	if (!init) {
		if (sodium_init() < 0)
			abort();
		crypto_sign_keypair(pk, sk);
		init = 1;
	}
	if (kiln_minisign_pk_parse(text, size, &mpk, &err) < 0)
		refused(&err);
	if (kiln_minisign_sk_encrypted(text, size) == 0) {
		if (kiln_minisign_sk_parse(text, size, NULL, &msk, &err) < 0)
			refused(&err);
		kiln_minisign_sk_wipe(&msk);
	}
	if (kiln_minisign_sig_parse(text, size, &sig, &err) < 0) {
		refused(&err);
	} else {
		CHECK(strlen(sig.trusted) <= KILN_MINISIGN_TRUSTED_MAX);
		memset(&mpk, 0, sizeof(mpk));
		memcpy(mpk.keynum, sig.keynum, 8);
		CHECK(kiln_minisign_verify(&mpk, &sig, data, size, &err) < 0);
		refused(&err);
	}
	if (kiln_manifest_parse(text, size, &m, &err) < 0) {
		refused(&err);
	} else {
		char *again = kiln_manifest_format(&m);
		CHECK(again != NULL && strlen(again) == size && memcmp(again, data, size) == 0);
		free(again);
	}
	if (kiln_dsse_verify(text, size, pk, &body, &blen, &type, &err) < 0)
		refused(&err);
	free(body);
	free(type);
	{
		json_t *j = json_loadb(text, size, 0, NULL);
		if (j != NULL && kiln_provenance_schema_check(j, &err) < 0)
			refused(&err);
		json_decref(j);
	}
	return 0;
}
