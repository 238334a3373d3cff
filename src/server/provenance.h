/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's provenance (docs/provenance.md): the provenance key
 * (provkey.c) and the signed SLSA provenance of finished jobs
 * (provenance.c).
 *
 * The key is an Ed25519 key created on first start as
 * DATA/provenance.key (mode 0600, refused at start-up if anyone else may
 * read it or it is not kilnd's) and published as DATA/provenance.pub
 * (PEM, SubjectPublicKeyInfo) and at GET /v1/keys. In memory it lives on
 * a page of its own that is wiped in every child process
 * (MADV_WIPEONFORK) and left out of core dumps, so no sandbox runner,
 * init or build ever has a copy.
 */
#ifndef KILN_SERVER_PROVENANCE_H
#define KILN_SERVER_PROVENANCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct kiln_server;
struct kiln_db;
struct kiln_provkey;

/* Load DATA/provenance.key, creating it (and provenance.pub) if absent. */
int kiln_provkey_open(const char *data, struct kiln_provkey **out, struct kiln_error **err);
void kiln_provkey_close(struct kiln_provkey *k);
/* {"provenance": {"algorithm": "ed25519", "keyid", "public_key" (base64 of
 * the 32 bytes), "pem"}} */
json_t *kiln_provkey_json(const struct kiln_provkey *k);
/* A DSSE envelope of body, signed with the key. */
json_t *kiln_provkey_sign(const struct kiln_provkey *k, const char *type, const void *body,
			  size_t len, struct kiln_error **err);

/* PEM of a raw Ed25519 public key (malloc'd), and back. */
char *kiln_ed25519_pem(const uint8_t pk[32]);

/* After a job reached its final state: if it has artifacts, build, sign
 * and store its provenance. Failures are logged (the job's outcome
 * stands; GET .../provenance then answers 404). */
void kiln_provenance_record(struct kiln_server *s, struct kiln_db *db, int64_t job);
/* Start-up: write the provenance that a crash left unwritten (finished
 * jobs with artifacts and none); returns how many. */
int kiln_provenance_catch_up(struct kiln_server *s, struct kiln_db *db);

#endif
