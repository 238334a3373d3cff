/* SPDX-License-Identifier: Apache-2.0 */
/* minisign keys and signatures: see minisign.h for the formats. */
#include "trust/minisign.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX	 "trusted comment: "
#define PK_BYTES	 42
#define SK_BYTES	 158
#define SIG_BYTES	 74
/* A hostile key file must not make scrypt take the machine: minisign's
 * own "sensitive" parameters are 1 GiB and 2^25 operations. */
#define SCRYPT_MEM_MAX (UINT64_C(2) << 30)
#define SCRYPT_OPS_MAX (UINT64_C(1) << 32)

struct line {
	const char *p;
	size_t n;
};

/* Up to max lines of text; '\r' before '\n' dropped, a missing final
 * newline is fine. Returns the number of lines, or -1 if there are more. */
static int split_lines(const char *text, size_t len, struct line *out, int max)
{
	int n = 0;
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t l = end - i;

		if (l > 0 && text[i + l - 1] == '\r')
			l--;
		if (n == max)
			return -1;
		out[n].p = text + i;
		out[n].n = l;
		n++;
		i = end + 1;
	}
	/* Trailing empty lines do not count. */
	while (n > 0 && out[n - 1].n == 0)
		n--;
	return n;
}

static bool has_prefix(const struct line *l, const char *prefix)
{
	size_t n = strlen(prefix);

	return l->n >= n && memcmp(l->p, prefix, n) == 0;
}

/* Exactly `want` bytes of standard base64, trailing blanks allowed. */
static bool b64_exact(const struct line *l, uint8_t *out, size_t want)
{
	const char *end = NULL;
	size_t got = 0, n = l->n;

	while (n > 0 && (l->p[n - 1] == ' ' || l->p[n - 1] == '\t'))
		n--;
	if (n == 0 || n > 4 * ((want + 2) / 3))
		return false;
	if (sodium_base642bin(out, want, l->p, n, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	return got == want && end == l->p + n;
}

static char *b64_new(const uint8_t *bin, size_t len)
{
	size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(n);

	if (s != NULL)
		sodium_bin2base64(s, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

void kiln_minisign_keyid(const uint8_t keynum[8], char out[KILN_MINISIGN_KEYID_HEX])
{
	static const char hex[] = "0123456789ABCDEF";

	/* Little-endian number, printed most significant digit first. */
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[keynum[7 - i] >> 4];
		out[2 * i + 1] = hex[keynum[7 - i] & 15];
	}
	out[16] = '\0';
}

int kiln_minisign_pk_parse(const char *text, size_t len, struct kiln_minisign_pk *pk,
			   struct kiln_error **err)
{
	struct line l[3];
	uint8_t raw[PK_BYTES];
	int n = split_lines(text, len, l, 3);
	int i = 0;

	if (n < 1 || n > 2)
		return kiln_error_set_code(err, EINVAL,
					   "not a minisign public key (expected a .pub file or its "
					   "base64 line)");
	if (has_prefix(&l[0], UNTRUSTED_PREFIX)) {
		if (n != 2)
			return kiln_error_set_code(err, EINVAL, "minisign public key: no key line");
		i = 1;
	} else if (n != 1) {
		return kiln_error_set_code(
			err, EINVAL, "minisign public key: expected 'untrusted comment:' first");
	}
	if (!b64_exact(&l[i], raw, sizeof(raw)))
		return kiln_error_set_code(err, EINVAL,
					   "minisign public key: not 56 characters of base64 for "
					   "42 bytes");
	if (raw[0] != 'E' || raw[1] != 'd')
		return kiln_error_set_code(err, EINVAL,
					   "minisign public key: unknown algorithm (expected Ed)");
	memcpy(pk->keynum, raw + 2, 8);
	memcpy(pk->pk, raw + 10, 32);
	return 0;
}

void kiln_minisign_pk_base64(const struct kiln_minisign_pk *pk, char *out, size_t len)
{
	uint8_t raw[PK_BYTES];

	raw[0] = 'E';
	raw[1] = 'd';
	memcpy(raw + 2, pk->keynum, 8);
	memcpy(raw + 10, pk->pk, 32);
	sodium_bin2base64(out, len, raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void sk_chk(const uint8_t keynum[8], const uint8_t sk[64], uint8_t chk[32])
{
	crypto_generichash_state hs;

	crypto_generichash_init(&hs, NULL, 0, 32);
	crypto_generichash_update(&hs, (const uint8_t *)"Ed", 2);
	crypto_generichash_update(&hs, keynum, 8);
	crypto_generichash_update(&hs, sk, 64);
	crypto_generichash_final(&hs, chk, 32);
}

static int sk_raw(const char *text, size_t len, uint8_t raw[SK_BYTES], struct kiln_error **err)
{
	struct line l[3];
	int n = split_lines(text, len, l, 3);

	if (n != 2 || !has_prefix(&l[0], UNTRUSTED_PREFIX) || !b64_exact(&l[1], raw, SK_BYTES))
		return kiln_error_set_code(
			err, EINVAL,
			"not a minisign secret key (expected 'untrusted comment:' "
			"and a base64 line of 158 bytes)");
	if (memcmp(raw, "Ed", 2) != 0 || memcmp(raw + 4, "B2", 2) != 0)
		return kiln_error_set_code(
			err, EINVAL, "minisign secret key: unknown algorithms (expected Ed, B2)");
	if (memcmp(raw + 2, "Sc", 2) != 0 && memcmp(raw + 2, "\0\0", 2) != 0)
		return kiln_error_set_code(
			err, EINVAL,
			"minisign secret key: unknown key derivation (expected Sc or "
			"none)");
	return 0;
}

int kiln_minisign_sk_encrypted(const char *text, size_t len)
{
	struct kiln_error *err = NULL;
	uint8_t raw[SK_BYTES];
	int r;

	if (sk_raw(text, len, raw, &err) < 0) {
		kiln_error_free(&err);
		return -1;
	}
	r = memcmp(raw + 2, "Sc", 2) == 0;
	sodium_memzero(raw, sizeof(raw));
	return r;
}

int kiln_minisign_sk_parse(const char *text, size_t len, const char *password,
			   struct kiln_minisign_sk *sk, struct kiln_error **err)
{
	uint8_t raw[SK_BYTES], chk[32], pub[32];
	uint8_t *secret = raw + 54; /* keynum[8] sk[64] chk[32] */
	static const uint8_t zero[32];
	bool encrypted;
	int r = -1;

	if (sk_raw(text, len, raw, err) < 0)
		return -1;
	encrypted = memcmp(raw + 2, "Sc", 2) == 0;
	if (encrypted) {
		uint64_t ops = le64(raw + 38), mem = le64(raw + 46);
		uint8_t stream[104];

		if (password == NULL) {
			r = kiln_error_set_code(
				err, EACCES,
				"the minisign secret key is encrypted: a password is "
				"needed");
			goto out;
		}
		if (ops > SCRYPT_OPS_MAX || mem > SCRYPT_MEM_MAX) {
			r = kiln_error_set_code(err, EINVAL,
						"minisign secret key: scrypt parameters too large");
			goto out;
		}
		if (crypto_pwhash_scryptsalsa208sha256(stream, sizeof(stream), password,
						       strlen(password), raw + 6,
						       (unsigned long long)ops, (size_t)mem) != 0) {
			r = kiln_error_set_code(err, ENOMEM, "minisign secret key: scrypt failed");
			goto out;
		}
		for (size_t i = 0; i < sizeof(stream); i++)
			secret[i] ^= stream[i];
		sodium_memzero(stream, sizeof(stream));
	}
	sk_chk(secret, secret + 8, chk);
	if (sodium_memcmp(chk, secret + 72, 32) != 0 &&
	    (encrypted || sodium_memcmp(zero, secret + 72, 32) != 0)) {
		r = kiln_error_set_code(err, EACCES,
					encrypted ? "wrong password for the minisign secret key"
						  : "minisign secret key: bad checksum");
		goto out;
	}
	/* The public half stored in sk must belong to its seed. */
	crypto_sign_ed25519_sk_to_pk(pub, secret + 8);
	{
		uint8_t seedpk[32], seedsk[64];

		crypto_sign_seed_keypair(seedpk, seedsk, secret + 8);
		sodium_memzero(seedsk, sizeof(seedsk));
		if (sodium_memcmp(seedpk, pub, 32) != 0) {
			r = kiln_error_set_code(err, EINVAL,
						"minisign secret key: inconsistent key material");
			goto out;
		}
	}
	memcpy(sk->keynum, secret, 8);
	memcpy(sk->sk, secret + 8, 64);
	r = 0;
out:
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(chk, sizeof(chk));
	return r;
}

void kiln_minisign_sk_wipe(struct kiln_minisign_sk *sk)
{
	sodium_memzero(sk, sizeof(*sk));
}

void kiln_minisign_sk_public(const struct kiln_minisign_sk *sk, struct kiln_minisign_pk *pk)
{
	memcpy(pk->keynum, sk->keynum, 8);
	crypto_sign_ed25519_sk_to_pk(pk->pk, sk->sk);
}

int kiln_minisign_keygen(struct kiln_minisign_pk *pk, struct kiln_minisign_sk *sk, char **pk_text,
			 char **sk_text, struct kiln_error **err)
{
	uint8_t raw[SK_BYTES], pkraw[PK_BYTES];
	char id[KILN_MINISIGN_KEYID_HEX];
	char *b64 = NULL, *pkb64 = NULL;
	size_t n;
	int r = -1;

	*pk_text = *sk_text = NULL;
	if (sodium_init() < 0)
		return kiln_error_set_code(err, 0, "libsodium failed to initialise");
	randombytes_buf(sk->keynum, 8);
	crypto_sign_keypair(pk->pk, sk->sk);
	memcpy(pk->keynum, sk->keynum, 8);
	memset(raw, 0, sizeof(raw));
	memcpy(raw, "Ed\0\0B2", 6);
	memcpy(raw + 54, sk->keynum, 8);
	memcpy(raw + 62, sk->sk, 64);
	sk_chk(sk->keynum, sk->sk, raw + 126);
	memcpy(pkraw, "Ed", 2);
	memcpy(pkraw + 2, pk->keynum, 8);
	memcpy(pkraw + 10, pk->pk, 32);
	b64 = b64_new(raw, sizeof(raw));
	pkb64 = b64_new(pkraw, sizeof(pkraw));
	sodium_memzero(raw, sizeof(raw));
	if (b64 == NULL || pkb64 == NULL) {
		kiln_error_set_code(err, ENOMEM, "keygen");
		goto out;
	}
	kiln_minisign_keyid(pk->keynum, id);
	n = strlen(b64) + 128;
	*sk_text = malloc(n);
	*pk_text = malloc(strlen(pkb64) + 128);
	if (*sk_text == NULL || *pk_text == NULL) {
		kiln_error_set_code(err, ENOMEM, "keygen");
		goto out;
	}
	snprintf(*sk_text, n, "untrusted comment: kiln secret key %s (not encrypted)\n%s\n", id,
		 b64);
	snprintf(*pk_text, strlen(pkb64) + 128, "untrusted comment: minisign public key %s\n%s\n",
		 id, pkb64);
	r = 0;
out:
	if (b64 != NULL) {
		sodium_memzero(b64, strlen(b64));
		free(b64);
	}
	free(pkb64);
	if (r < 0) {
		free(*sk_text);
		free(*pk_text);
		*sk_text = *pk_text = NULL;
	}
	return r;
}

int kiln_minisign_sig_parse(const char *text, size_t len, struct kiln_minisign_sig *sig,
			    struct kiln_error **err)
{
	struct line l[5];
	uint8_t raw[SIG_BYTES];
	size_t tn, plen = strlen(TRUSTED_PREFIX);
	int n = split_lines(text, len, l, 5);

	memset(sig, 0, sizeof(*sig));
	if (n != 4)
		return kiln_error_set_code(
			err, EINVAL,
			"not a minisign signature (expected 4 lines: untrusted "
			"comment, signature, trusted comment, global signature)");
	if (!has_prefix(&l[0], UNTRUSTED_PREFIX) ||
	    l[0].n > strlen(UNTRUSTED_PREFIX) + KILN_MINISIGN_COMMENT_MAX)
		return kiln_error_set_code(
			err, EINVAL, "minisign signature: line 1 must be 'untrusted comment: ...'");
	if (!b64_exact(&l[1], raw, sizeof(raw)))
		return kiln_error_set_code(err, EINVAL,
					   "minisign signature: line 2 is not base64 of 74 bytes");
	if (memcmp(raw, "ED", 2) == 0)
		sig->prehashed = true;
	else if (memcmp(raw, "Ed", 2) != 0)
		return kiln_error_set_code(
			err, EINVAL, "minisign signature: unknown algorithm (expected ED or Ed)");
	memcpy(sig->keynum, raw + 2, 8);
	memcpy(sig->sig, raw + 10, 64);
	if (!has_prefix(&l[2], TRUSTED_PREFIX))
		return kiln_error_set_code(
			err, EINVAL, "minisign signature: line 3 must be 'trusted comment: ...'");
	tn = l[2].n - plen;
	if (tn > KILN_MINISIGN_TRUSTED_MAX || memchr(l[2].p + plen, '\0', tn) != NULL)
		return kiln_error_set_code(err, EINVAL, "minisign signature: bad trusted comment");
	memcpy(sig->trusted, l[2].p + plen, tn);
	sig->trusted[tn] = '\0';
	if (!b64_exact(&l[3], sig->global_sig, 64))
		return kiln_error_set_code(err, EINVAL,
					   "minisign signature: line 4 is not base64 of 64 bytes");
	return 0;
}

static void prehash(const void *msg, size_t len, uint8_t out[64])
{
	crypto_generichash(out, 64, msg, len, NULL, 0);
}

int kiln_minisign_sign(const struct kiln_minisign_sk *sk, const void *msg, size_t len,
		       const char *trusted, char **out, struct kiln_error **err)
{
	uint8_t h[64], raw[SIG_BYTES], global[64];
	size_t tn = strlen(trusted);
	uint8_t *gm;
	char *b1, *b2;
	size_t n;

	*out = NULL;
	if (tn > KILN_MINISIGN_TRUSTED_MAX || strchr(trusted, '\n') != NULL ||
	    strchr(trusted, '\r') != NULL)
		return kiln_error_set_code(err, EINVAL,
					   "trusted comment: one line of at most %d bytes",
					   KILN_MINISIGN_TRUSTED_MAX);
	prehash(msg, len, h);
	memcpy(raw, "ED", 2);
	memcpy(raw + 2, sk->keynum, 8);
	crypto_sign_detached(raw + 10, NULL, h, sizeof(h), sk->sk);
	gm = malloc(64 + tn);
	if (gm == NULL)
		return kiln_error_set_code(err, ENOMEM, "sign");
	memcpy(gm, raw + 10, 64);
	memcpy(gm + 64, trusted, tn);
	crypto_sign_detached(global, NULL, gm, 64 + tn, sk->sk);
	free(gm);
	b1 = b64_new(raw, sizeof(raw));
	b2 = b64_new(global, sizeof(global));
	n = (b1 ? strlen(b1) : 0) + (b2 ? strlen(b2) : 0) + tn + 128;
	if (b1 != NULL && b2 != NULL)
		*out = malloc(n);
	if (*out != NULL)
		snprintf(*out, n,
			 "untrusted comment: signature from minisign secret key\n%s\n"
			 "trusted comment: %s\n%s\n",
			 b1, trusted, b2);
	free(b1);
	free(b2);
	return *out != NULL ? 0 : kiln_error_set_code(err, ENOMEM, "sign");
}

int kiln_minisign_verify(const struct kiln_minisign_pk *pk, const struct kiln_minisign_sig *sig,
			 const void *msg, size_t len, struct kiln_error **err)
{
	uint8_t h[64];
	size_t tn = strlen(sig->trusted);
	uint8_t *gm;
	int ok;

	if (memcmp(pk->keynum, sig->keynum, 8) != 0) {
		char a[KILN_MINISIGN_KEYID_HEX], b[KILN_MINISIGN_KEYID_HEX];

		kiln_minisign_keyid(sig->keynum, a);
		kiln_minisign_keyid(pk->keynum, b);
		return kiln_error_set_code(
			err, ENOKEY, "signature made by key %s, not by the key %s given", a, b);
	}
	if (sig->prehashed) {
		prehash(msg, len, h);
		ok = crypto_sign_verify_detached(sig->sig, h, sizeof(h), pk->pk) == 0;
	} else {
		ok = crypto_sign_verify_detached(sig->sig, msg, len, pk->pk) == 0;
	}
	if (!ok)
		return kiln_error_set_code(err, EBADMSG, "the signature does not verify");
	gm = malloc(64 + tn);
	if (gm == NULL)
		return kiln_error_set_code(err, ENOMEM, "verify");
	memcpy(gm, sig->sig, 64);
	memcpy(gm + 64, sig->trusted, tn);
	ok = crypto_sign_verify_detached(sig->global_sig, gm, 64 + tn, pk->pk) == 0;
	free(gm);
	if (!ok)
		return kiln_error_set_code(err, EKEYREJECTED,
					   "the trusted comment's signature does not verify");
	return 0;
}
