/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SLSA Provenance v1 statements: the fields kilnd emits against the
 * required fields and types of the in-toto Statement v1 and SLSA
 * Provenance v1 schemas, and the checks `kiln verify` makes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tap.h"
#include "trust/provenance.h"

#define A1  "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define A2  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SRC "1111111111111111111111111111111111111111111111111111111111111111"

static const json_t *at(const json_t *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save))
		o = json_object_get(o, t);
	return o;
}

static int check(const json_t *st, const struct kiln_prov_artifact *a, size_t n,
		 const struct kiln_prov_expect *x, char *msg, size_t len)
{
	struct kiln_error *err = NULL;
	int r = kiln_provenance_check(st, a, n, x, &err);

	snprintf(msg, len, "%s", err ? err->msg : "");
	kiln_error_free(&err);
	return r;
}

int main(void)
{
	struct kiln_prov_artifact arts[] = {{"out/a.bin", A1}, {"out/b.txt", A2}};
	json_t *spec = json_pack("{s:s}", "script", "make");
	json_t *sandbox = json_pack("{s:s}", "network", "none");
	struct kiln_prov_input in = {
		.builder_id = "urn:kiln:builder:test",
		.job_id = 42,
		.project = "web",
		.spec = spec,
		.spec_text = "script: make\n",
		.spec_sha256 = A2,
		.source_sha256 = SRC,
		.signer_key_id = "BB7FEAC0643140FF",
		.sandbox = sandbox,
		.backend = "native",
		.rootfs_uri = "kiln:rootfs/host",
		.kilnd_version = "0.1.0",
		.started_on = "2026-12-07T13:00:00Z",
		.finished_on = "2026-12-07T13:01:00Z",
		.log_sha256 = A1,
		.outcome = "succeeded",
		.artifacts = arts,
		.nartifacts = 2,
	};
	struct kiln_error *err = NULL;
	struct kiln_prov_expect x = {0};
	char msg[1024];
	json_t *st = kiln_provenance_statement(&in, &err), *bad;

	ok(st != NULL, "statement built");
	ok(kiln_provenance_schema_check(st, &err) == 0, "schema check passes");
	kiln_error_free(&err);
	is_str(json_string_value(at(st, "_type")), "https://in-toto.io/Statement/v1", "_type");
	is_str(json_string_value(at(st, "predicateType")), "https://slsa.dev/provenance/v1",
	       "predicateType");
	is_int(json_array_size(at(st, "subject")), 2, "two subjects");
	is_str(json_string_value(json_object_get(json_array_get(at(st, "subject"), 0), "name")),
	       "out/a.bin", "subject name");
	is_str(json_string_value(at(json_array_get(at(st, "subject"), 0), "digest.sha256")), A1,
	       "subject digest");
	is_str(json_string_value(at(st, "predicate.buildDefinition.buildType")), KILN_BUILD_TYPE,
	       "buildType");
	is_str(json_string_value(at(st, "predicate.buildDefinition.externalParameters.project")),
	       "web", "externalParameters.project");
	ok(json_is_object(at(st, "predicate.buildDefinition.externalParameters.spec")),
	   "externalParameters.spec is the spec");
	is_str(json_string_value(at(st, "predicate.buildDefinition.externalParameters.sourceDigest."
					"sha256")),
	       SRC, "externalParameters.sourceDigest");
	is_str(json_string_value(
		       at(st, "predicate.buildDefinition.externalParameters.signerKeyId")),
	       "BB7FEAC0643140FF", "externalParameters.signerKeyId");
	ok(json_is_null(at(st, "predicate.buildDefinition.internalParameters.policyDigest")),
	   "policyDigest null (no policy yet)");
	is_str(json_string_value(at(st, "predicate.buildDefinition.internalParameters.backend")),
	       "native", "internalParameters.backend");
	ok(json_is_object(at(st, "predicate.buildDefinition.internalParameters.sandbox")),
	   "internalParameters.sandbox");
	is_int(json_array_size(at(st, "predicate.buildDefinition.resolvedDependencies")), 2,
	       "resolvedDependencies: source and rootfs");
	is_str(json_string_value(at(st, "predicate.runDetails.builder.id")),
	       "urn:kiln:builder:test", "builder.id");
	is_str(json_string_value(at(st, "predicate.runDetails.metadata.invocationId")), "42",
	       "invocationId is the job id");
	is_str(json_string_value(at(st, "predicate.runDetails.metadata.startedOn")),
	       "2026-12-07T13:00:00Z", "startedOn");
	is_str(json_string_value(at(json_array_get(at(st, "predicate.runDetails.byproducts"), 0),
				    "digest.sha256")),
	       A1, "the log's digest is a byproduct");

	/* Schema: required fields and types. */
	bad = json_deep_copy(st);
	json_object_del(json_object_get(at(bad, "predicate"), "runDetails"), "builder");
	ok(kiln_provenance_schema_check(bad, &err) < 0 && strstr(err->msg, "builder"),
	   "missing builder refused: %s", err ? err->msg : "");
	kiln_error_free(&err);
	json_decref(bad);
	bad = json_deep_copy(st);
	json_object_set_new(bad, "subject", json_string("x"));
	ok(kiln_provenance_schema_check(bad, &err) < 0 && strstr(err->msg, "subject"),
	   "subject of the wrong type refused");
	kiln_error_free(&err);
	json_decref(bad);
	bad = json_deep_copy(st);
	json_object_set_new((json_t *)at(bad, "predicate.buildDefinition"), "buildType",
			    json_integer(1));
	ok(kiln_provenance_schema_check(bad, &err) < 0 && strstr(err->msg, "buildType"),
	   "buildType not a string refused");
	kiln_error_free(&err);
	json_decref(bad);

	/* kiln verify's checks. */
	ok(check(st, arts, 2, NULL, msg, sizeof(msg)) == 0, "both artifacts are subjects");
	{
		struct kiln_prov_artifact other = {"swapped", SRC};
		ok(check(st, &other, 1, NULL, msg, sizeof(msg)) < 0 &&
			   strncmp(msg, "subject:", 8) == 0,
		   "a swapped artifact: %s", msg);
	}
	x.project = "web";
	x.builder_id = "urn:kiln:builder:test";
	x.source_sha256 = "sha256:" SRC;
	ok(check(st, arts, 2, &x, msg, sizeof(msg)) == 0, "expectations met");
	x.project = "api";
	ok(check(st, arts, 2, &x, msg, sizeof(msg)) < 0 && strncmp(msg, "project:", 8) == 0,
	   "wrong project: %s", msg);
	x.project = NULL;
	x.builder_id = "urn:other";
	ok(check(st, arts, 2, &x, msg, sizeof(msg)) < 0 && strncmp(msg, "builder:", 8) == 0,
	   "wrong builder: %s", msg);
	x.builder_id = NULL;
	x.source_sha256 = A1;
	ok(check(st, arts, 2, &x, msg, sizeof(msg)) < 0 && strncmp(msg, "source-digest:", 14) == 0,
	   "wrong source digest: %s", msg);

	json_decref(st);
	json_decref(spec);
	json_decref(sandbox);
	return tap_done();
}
