/* SPDX-License-Identifier: Apache-2.0 */
/*
 * minisign keys and signatures (https://jedisct1.github.io/minisign/),
 * byte-compatible with the stock `minisign` tool. Pure code over bytes: no
 * I/O. Ed25519 and BLAKE2b come from libsodium.
 *
 * Formats (all base64 is the standard alphabet with padding):
 *   public key:  "untrusted comment: ...\n" + b64("Ed" keynum[8] pk[32])
 *   secret key:  "untrusted comment: ...\n" + b64("Ed" kdf[2] "B2" salt[32]
 *                opslimit_le[8] memlimit_le[8] keynum[8] sk[64] chk[32])
 *                kdf "Sc": keynum||sk||chk is XORed with an scrypt stream
 *                (crypto_pwhash_scryptsalsa208sha256) of the passphrase;
 *                kdf "\0\0": not encrypted (`minisign -W`, `kiln keygen`);
 *                chk = BLAKE2b-256("Ed" || keynum || sk) (minisign -W
 *                writes zeros there; both are accepted).
 *   signature:   "untrusted comment: ...\n" + b64(alg[2] keynum[8] sig[64])
 *                + "\ntrusted comment: TEXT\n" + b64(global_sig[64]) + "\n"
 *                alg "ED": sig over BLAKE2b-512(message) (the default of
 *                minisign >= 0.11); "Ed": sig over the message (legacy).
 *                global_sig is over sig[64] || TEXT.
 *
 * A key id is the keynum shown as minisign shows it: 16 uppercase hex
 * digits of the little-endian 64-bit number.
 */
#ifndef KILN_TRUST_MINISIGN_H
#define KILN_TRUST_MINISIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KILN_MINISIGN_KEYID_HEX	  17 /* 16 hex digits + NUL */
#define KILN_MINISIGN_COMMENT_MAX 1024
#define KILN_MINISIGN_TRUSTED_MAX 8192

struct kiln_minisign_pk {
	uint8_t keynum[8];
	uint8_t pk[32];
};

/* Wipe with kiln_minisign_sk_wipe when done. */
struct kiln_minisign_sk {
	uint8_t keynum[8];
	uint8_t sk[64];
};

struct kiln_minisign_sig {
	bool prehashed; /* "ED" */
	uint8_t keynum[8];
	uint8_t sig[64];
	char trusted[KILN_MINISIGN_TRUSTED_MAX + 1]; /* the trusted comment's text */
	uint8_t global_sig[64];
};

void kiln_minisign_keyid(const uint8_t keynum[8], char out[KILN_MINISIGN_KEYID_HEX]);

/* A public key: either a whole .pub file or just its base64 line.
 * EINVAL with a message saying what is wrong. */
int kiln_minisign_pk_parse(const char *text, size_t len, struct kiln_minisign_pk *pk,
			   struct kiln_error **err);
/* The base64 line (no newline); out >= 57 bytes. */
void kiln_minisign_pk_base64(const struct kiln_minisign_pk *pk, char *out, size_t len);

/* Is this secret key file encrypted (kdf "Sc")? -1 if it is not a key. */
int kiln_minisign_sk_encrypted(const char *text, size_t len);
/* A secret key file; password may be NULL for an unencrypted key. EACCES:
 * encrypted and no password, or a wrong password (checksum mismatch);
 * EINVAL: not a minisign secret key. */
int kiln_minisign_sk_parse(const char *text, size_t len, const char *password,
			   struct kiln_minisign_sk *sk, struct kiln_error **err);
void kiln_minisign_sk_wipe(struct kiln_minisign_sk *sk);
void kiln_minisign_sk_public(const struct kiln_minisign_sk *sk, struct kiln_minisign_pk *pk);

/* A new key pair; *sk_text (unencrypted, kdf "\0\0") and *pk_text are
 * malloc'd file contents (the caller wipes and frees sk_text). */
int kiln_minisign_keygen(struct kiln_minisign_pk *pk, struct kiln_minisign_sk *sk, char **pk_text,
			 char **sk_text, struct kiln_error **err);

/* Signature file. EINVAL with the reason. */
int kiln_minisign_sig_parse(const char *text, size_t len, struct kiln_minisign_sig *sig,
			    struct kiln_error **err);
/* Sign msg as `minisign -S` does (prehashed "ED"); *out is the malloc'd
 * signature file. trusted: the trusted comment (no newline). */
int kiln_minisign_sign(const struct kiln_minisign_sk *sk, const void *msg, size_t len,
		       const char *trusted, char **out, struct kiln_error **err);
/* Verify sig over msg with pk. ENOKEY: sig was made by another key id;
 * EBADMSG: the signature does not verify; EKEYREJECTED: the trusted
 * comment's signature does not verify. */
int kiln_minisign_verify(const struct kiln_minisign_pk *pk, const struct kiln_minisign_sig *sig,
			 const void *msg, size_t len, struct kiln_error **err);

#endif
