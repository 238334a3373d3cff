/* SPDX-License-Identifier: Apache-2.0 */
/*
 * minisign keys and signatures against vectors made by the real minisign
 * 0.11 binary (Debian package): `minisign -G -W` (unencrypted) and
 * `minisign -G` with the password "pw" (scrypt), signatures by `-S`
 * (prehashed ED), `-S -l` (legacy Ed). The message is "hello\n".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/error.h"
#include "tap.h"
#include "trust/minisign.h"

static const char msg[] = "hello\n";

static const char pub_w[] = "untrusted comment: minisign public key BB7FEAC0643140FF\n"
			    "RWT/QDFkwOp/u550gMt8fpCt04EFEqfJGEaVqVZ4wHvmTQRPAbFGzZ3Z\n";
static const char key_w[] =
	"untrusted comment: minisign encrypted secret key\n"
	"RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/0AxZMDqf7s7ZHjZZf"
	"URDzDaDFPmkK6mgc5SsfYKezAfeCkywGo3XJ50gMt8fpCt04EFEqfJGEaVqVZ4wHvmTQRPAbFGzZ3ZAAAAAAAAAAAA"
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
static const char sig_ed[] =
	"untrusted comment: signature from minisign secret key\n"
	"RUT/QDFkwOp/uwVBOGt6gSZv8pBgN7/m+x1m43fT81Hwc5Ew22ybELxHh2uM7Ksel91EFRTqNkDaTtmQjmx0BTPBdM"
	"nxch71LAU=\n"
	"trusted comment: trusted hi\n"
	"7ktpMB9ZquZ+JfGMQ5oBpf8SfDl+2cXH4Qym1OC1cjtE558xEr/"
	"JjJCyyV2pS2S45sfYUTmdWTfVHxmt8u5nDg==\n";
static const char sig_legacy[] =
	"untrusted comment: signature from minisign secret key\n"
	"RWT/QDFkwOp/u2crxG3aDKiULMM8hN31Z80lv+lswSL42EyG8ed4kLGvHQ6Cvml+9mgip4UM3oqIPny9Cqo+Io3M+N"
	"RBfeyYPAM=\n"
	"trusted comment: timestamp:1796648981\tfile:m\n"
	"IXcsR8ebor5zkrvIunVKwOoaTh7cYb8mWEIR6JN7K9FUV8050V14YskcEW1p3z9SSb536nSIZrg9xmBT71keBg=="
	"\n";
static const char pub_e[] = "RWSrrZXbOGAqEsqpLpjEAjh+estMErKR5Q7O/T7hJU7w6PR+9CuqBPQY";
static const char key_e[] =
	"untrusted comment: minisign encrypted secret key\n"
	"RWRTY0Iyu89jsdftvO2g/04Ec+aq15P3Jv6sYSvx0Cj40E0hGFcAAAACAAAAAAAAAEAAAAAAdnkCTCxzEfbjSKilxN"
	"jao5ar5MX2XEKx07BtosPPssijDfG4PnBewCRAdkVC2uBoxt21Pb2VYGz/MPius3ZEcr7NF2Xb9cq8OE/eoKqfcQcg"
	"Y6wpWyiYXOTr9+2dnUR415BITcJzcZE=\n";
static const char sig_e[] =
	"untrusted comment: signature from minisign secret key\n"
	"RUSrrZXbOGAqEi0TrKjymvB/6Bx9inijKpbSJ+AMe21zflDJya3c7r17Ycx3sd8K3yt+WQBjOs/MHyLznoundc8lAQ"
	"Zyyy+jJws=\n"
	"trusted comment: enc\n"
	"Zn5cb+EjAuHE4z8RCTGuPDUKA7SM7bb6ca0swiVHynomX7ZBL3wjbtj45dwEDM8BjZFmnoPbOiUyLvVD0GfiCQ=="
	"\n";

static int verify_text(const char *pubtext, const char *sigtext, const char *m, int *code)
{
	struct kiln_minisign_pk pk;
	struct kiln_minisign_sig sig;
	struct kiln_error *err = NULL;
	int r;

	*code = 0;
	if (kiln_minisign_pk_parse(pubtext, strlen(pubtext), &pk, &err) < 0 ||
	    kiln_minisign_sig_parse(sigtext, strlen(sigtext), &sig, &err) < 0 ||
	    kiln_minisign_verify(&pk, &sig, m, strlen(m), &err) < 0) {
		*code = err ? err->code : -1;
		kiln_error_free(&err);
		return -1;
	}
	(void)r;
	return 0;
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
	struct kiln_minisign_pk pk, pk2;
	struct kiln_minisign_sk sk;
	struct kiln_minisign_sig sig;
	struct kiln_error *err = NULL;
	char id[KILN_MINISIGN_KEYID_HEX], b64[64], *text, *pt, *st;
	int code;

	if (sodium_init() < 0)
		return 1;

	/* Public keys: the file and the bare line. */
	ok(kiln_minisign_pk_parse(pub_w, strlen(pub_w), &pk, &err) == 0, "parse a .pub file");
	kiln_minisign_keyid(pk.keynum, id);
	is_str(id, "BB7FEAC0643140FF", "key id as minisign prints it");
	kiln_minisign_pk_base64(&pk, b64, sizeof(b64));
	is_str(b64, "RWT/QDFkwOp/u550gMt8fpCt04EFEqfJGEaVqVZ4wHvmTQRPAbFGzZ3Z",
	       "base64 round trip");
	ok(kiln_minisign_pk_parse(b64, strlen(b64), &pk2, &err) == 0 &&
		   memcmp(&pk, &pk2, sizeof(pk)) == 0,
	   "parse the bare base64 line");
	ok(kiln_minisign_pk_parse("RWT/QDFk", 8, &pk2, &err) < 0 && err->code == EINVAL,
	   "short key refused");
	kiln_error_free(&err);
	ok(kiln_minisign_pk_parse("a\nb\nc\n", 6, &pk2, &err) < 0, "three lines refused");
	kiln_error_free(&err);

	/* Signatures by minisign: ED and legacy Ed verify. */
	ok(verify_text(pub_w, sig_ed, msg, &code) == 0, "minisign -S (ED, prehashed) verifies");
	ok(verify_text(pub_w, sig_legacy, msg, &code) == 0, "minisign -S -l (legacy Ed) verifies");
	ok(kiln_minisign_sig_parse(sig_ed, strlen(sig_ed), &sig, &err) == 0 && sig.prehashed &&
		   strcmp(sig.trusted, "trusted hi") == 0,
	   "trusted comment read");
	ok(verify_text(pub_w, sig_ed, "hello!\n", &code) < 0 && code == EBADMSG,
	   "another message: EBADMSG");
	text = replace(sig_ed, "trusted hi", "trusted HI");
	ok(verify_text(pub_w, text, msg, &code) < 0 && code == EKEYREJECTED,
	   "changed trusted comment: EKEYREJECTED");
	free(text);
	ok(verify_text(pub_e, sig_ed, msg, &code) < 0 && code == ENOKEY, "another key: ENOKEY");
	text = replace(sig_ed, "RUT/", "RXT/");
	ok(verify_text(pub_w, text, msg, &code) < 0 && code == EINVAL, "unknown algorithm refused");
	free(text);
	ok(kiln_minisign_sig_parse("x\n", 2, &sig, &err) < 0, "garbage refused");
	kiln_error_free(&err);

	/* Secret keys: -W (no KDF), then scrypt-encrypted. */
	ok(kiln_minisign_sk_encrypted(key_w, strlen(key_w)) == 0, "-W key is not encrypted");
	ok(kiln_minisign_sk_parse(key_w, strlen(key_w), NULL, &sk, &err) == 0,
	   "parse a minisign -W secret key");
	kiln_minisign_sk_public(&sk, &pk2);
	ok(memcmp(&pk, &pk2, sizeof(pk)) == 0, "its public key matches the .pub");
	ok(kiln_minisign_sign(&sk, msg, strlen(msg), "kiln test", &text, &err) == 0,
	   "kiln signs with it");
	ok(verify_text(pub_w, text, msg, &code) == 0, "kiln's signature verifies");
	free(text);
	kiln_minisign_sk_wipe(&sk);

	ok(kiln_minisign_sk_encrypted(key_e, strlen(key_e)) == 1, "encrypted key detected");
	ok(kiln_minisign_sk_parse(key_e, strlen(key_e), NULL, &sk, &err) < 0 && err->code == EACCES,
	   "encrypted key without password: EACCES");
	kiln_error_free(&err);
	ok(kiln_minisign_sk_parse(key_e, strlen(key_e), "wrong", &sk, &err) < 0 &&
		   err->code == EACCES,
	   "wrong password: EACCES");
	kiln_error_free(&err);
	ok(kiln_minisign_sk_parse(key_e, strlen(key_e), "pw", &sk, &err) == 0,
	   "right password decrypts");
	kiln_error_free(&err);
	ok(verify_text(pub_e, sig_e, msg, &code) == 0, "minisign's signature by that key verifies");
	ok(kiln_minisign_sign(&sk, msg, strlen(msg), "t", &text, &err) == 0 &&
		   verify_text(pub_e, text, msg, &code) == 0,
	   "kiln signs with the decrypted key");
	free(text);
	kiln_minisign_sk_wipe(&sk);

	/* keygen: the files parse back and sign/verify. */
	ok(kiln_minisign_keygen(&pk, &sk, &pt, &st, &err) == 0, "keygen");
	ok(kiln_minisign_pk_parse(pt, strlen(pt), &pk2, &err) == 0 &&
		   memcmp(&pk, &pk2, sizeof(pk)) == 0,
	   "keygen's .pub parses");
	kiln_minisign_sk_wipe(&sk);
	ok(kiln_minisign_sk_parse(st, strlen(st), NULL, &sk, &err) == 0,
	   "keygen's secret key parses");
	ok(kiln_minisign_sign(&sk, msg, strlen(msg), "t", &text, &err) == 0 &&
		   verify_text(pt, text, msg, &code) == 0,
	   "keygen's keys sign and verify");
	free(text);
	free(pt);
	free(st);
	kiln_minisign_sk_wipe(&sk);
	kiln_error_free(&err);
	return tap_done();
}
