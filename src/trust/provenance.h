/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SLSA Provenance v1 in an in-toto Statement v1 (docs/provenance.md).
 * Pure code: the caller gathers the facts, this file shapes and checks
 * the JSON. kilnd builds statements; `kiln verify` checks them.
 */
#ifndef KILN_TRUST_PROVENANCE_H
#define KILN_TRUST_PROVENANCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KILN_INTOTO_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define KILN_SLSA_PREDICATE_TYPE   "https://slsa.dev/provenance/v1"
/* Documented in docs/provenance.md. */
#define KILN_BUILD_TYPE "urn:kiln:build-type:job:v1"

struct kiln_prov_artifact {
	const char *name;
	const char *sha256; /* 64 lowercase hex digits */
};

/* Everything borrowed. Optional strings may be NULL (emitted as null). */
struct kiln_prov_input {
	const char *builder_id;
	int64_t job_id;
	const char *project;
	json_t *spec; /* the parsed kiln.yml */
	const char *spec_text;
	const char *spec_sha256;
	const char *source_sha256;
	const char *signer_key_id; /* optional */
	const char *policy_sha256; /* optional: none before policy-as-code */
	json_t *sandbox;	   /* the sandbox settings the job ran with */
	const char *backend;	   /* "native" */
	const char *rootfs_uri;
	const char *kilnd_version;
	const char *started_on, *finished_on; /* RFC 3339 */
	const char *log_sha256;		      /* optional */
	const char *outcome;		      /* the job's final state */
	const struct kiln_prov_artifact *artifacts;
	size_t nartifacts;
};

json_t *kiln_provenance_statement(const struct kiln_prov_input *in, struct kiln_error **err);

/* Required fields of in-toto Statement v1 and SLSA Provenance v1 present
 * with the right types (EINVAL naming the field otherwise). */
int kiln_provenance_schema_check(const json_t *statement, struct kiln_error **err);

/* What `kiln verify` checks after the signature: the schema, that every
 * digest is a subject's sha256, and the optional expectations (NULL: not
 * checked). Each failure is EINVAL with a message naming the check. */
struct kiln_prov_expect {
	const char *project;
	const char *builder_id;
	const char *source_sha256; /* "sha256:HEX" or "HEX" */
};
int kiln_provenance_check(const json_t *statement, const struct kiln_prov_artifact *artifacts,
			  size_t n, const struct kiln_prov_expect *x, struct kiln_error **err);

#endif
