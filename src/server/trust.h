/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whom a project trusts to sign its submissions (docs/signing.md), and the
 * check of a signed submission.
 *
 * The trust comes from the `signing:` section of DATA/policies/PROJECT.yml
 * (the schema agreed with policy-as-code):
 *
 *   signing:
 *     required: true      # default false
 *     keys:               # minisign public keys: the base64 line of a .pub
 *       - RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3
 *
 * kiln_project_trust reads it from the policy set in force (policy.h): a
 * project without a policy file requires nothing and trusts nobody.
 * kiln_trust_parse reads the section from a file's text (tests, tools).
 */
#ifndef KILN_SERVER_TRUST_H
#define KILN_SERVER_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "trust/minisign.h"

#define KILN_TRUST_MAX_KEYS 64
#define KILN_POLICY_MAX	    (1024 * 1024)

struct kiln_server;
struct kiln_db;

struct kiln_trust {
	bool required;
	size_t nkeys;
	struct kiln_minisign_pk keys[KILN_TRUST_MAX_KEYS];
};

/* The signing section of a policy file's text; errors "FILE:LINE:COL: ..."
 * (EINVAL). An empty text or one without `signing:` trusts nobody and
 * requires nothing. */
int kiln_trust_parse(const char *file, const char *text, size_t len, struct kiln_trust *out,
		     struct kiln_error **err);
/* The trust of `project` (a valid project name). */
int kiln_project_trust(struct kiln_server *s, const char *project, struct kiln_trust *out,
		       struct kiln_error **err);

/* A refused submission: the HTTP status, the error code of docs/errors.md
 * and a message saying which check failed. */
struct kiln_reject {
	unsigned status;
	char code[32];
	char msg[512];
	char key_id[KILN_MINISIGN_KEYID_HEX]; /* "" when unknown */
};

/* What an accepted signed submission records with its job. */
struct kiln_signed {
	bool present;
	char key_id[KILN_MINISIGN_KEYID_HEX];
	char nonce[129];
};

/* signing.c: check a submission against its project's trust. manifest and
 * signature are the form parts (NULL when absent); spec_hex and source_hex
 * the digests the server computed itself. 0: accepted (out->present when
 * it was signed); -1: refused, *rej says why (status 500 for an internal
 * failure). The nonce is checked here but used up only with the job's
 * insert (kiln_db_job_insert). */
int kiln_submission_check(struct kiln_server *s, struct kiln_db *db, const char *project,
			  const char *spec_hex, const char *source_hex, const char *manifest,
			  size_t manifest_len, const char *signature, size_t signature_len,
			  struct kiln_signed *out, struct kiln_reject *rej);

#endif
