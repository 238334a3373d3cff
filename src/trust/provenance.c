/* SPDX-License-Identifier: Apache-2.0 */
/* SLSA Provenance v1 statements: see provenance.h and docs/provenance.md. */
#include "trust/provenance.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *digest(const char *hex)
{
	return hex != NULL ? json_pack("{s:s}", "sha256", hex) : json_null();
}

json_t *kiln_provenance_statement(const struct kiln_prov_input *in, struct kiln_error **err)
{
	json_t *subjects = json_array(), *deps, *byproducts, *st;
	char invocation[32], source_uri[96];

	if (subjects == NULL)
		goto oom;
	for (size_t i = 0; i < in->nartifacts; i++)
		if (json_array_append_new(
			    subjects, json_pack("{s:s, s:{s:s}}", "name", in->artifacts[i].name,
						"digest", "sha256", in->artifacts[i].sha256)) < 0) {
			json_decref(subjects);
			goto oom;
		}
	snprintf(invocation, sizeof(invocation), "%" PRId64, in->job_id);
	snprintf(source_uri, sizeof(source_uri), "kiln:job/%" PRId64 "/source.tar.gz", in->job_id);
	deps = json_pack("[{s:s, s:s, s:o, s:s}, {s:s, s:s, s:{s:s}}]", "name", "source.tar.gz",
			 "uri", source_uri, "digest", digest(in->source_sha256), "mediaType",
			 "application/gzip", "name", "rootfs", "uri", in->rootfs_uri, "annotations",
			 "description",
			 "the host's root filesystem (/usr, /bin, /lib, /etc and so on), "
			 "bind-mounted read-only into the sandbox; not digested");
	byproducts = json_array();
	if (byproducts != NULL && in->log_sha256 != NULL)
		json_array_append_new(byproducts,
				      json_pack("{s:s, s:o, s:s}", "name", "log", "digest",
						digest(in->log_sha256), "mediaType",
						"text/plain; charset=utf-8"));
	st = json_pack("{s:s, s:o, s:s, s:{"
		       " s:{s:s, s:{s:s, s:O, s:s, s:{s:s}, s:{s:s}, s:o},"
		       "    s:{s:o, s:s, s:O, s:s}, s:o},"
		       " s:{s:{s:s, s:{s:s}}, s:{s:s, s:s, s:s}, s:o}}}",
		       "_type", KILN_INTOTO_STATEMENT_TYPE, "subject", subjects, "predicateType",
		       KILN_SLSA_PREDICATE_TYPE, "predicate",
		       /* buildDefinition */
		       "buildDefinition", "buildType", KILN_BUILD_TYPE, "externalParameters",
		       "project", in->project, "spec", in->spec ? in->spec : json_null(),
		       "specText", in->spec_text ? in->spec_text : "", "specDigest", "sha256",
		       in->spec_sha256 ? in->spec_sha256 : "", "sourceDigest", "sha256",
		       in->source_sha256 ? in->source_sha256 : "", "signerKeyId",
		       str_or_null(in->signer_key_id), "internalParameters", "policyDigest",
		       in->policy_sha256 ? digest(in->policy_sha256) : json_null(), "backend",
		       in->backend ? in->backend : "native", "sandbox",
		       in->sandbox ? in->sandbox : json_null(), "kilndVersion",
		       in->kilnd_version ? in->kilnd_version : "", "resolvedDependencies",
		       deps ? deps : json_array(),
		       /* runDetails */
		       "runDetails", "builder", "id", in->builder_id, "version", "kilnd",
		       in->kilnd_version ? in->kilnd_version : "", "metadata", "invocationId",
		       invocation, "startedOn", in->started_on ? in->started_on : "", "finishedOn",
		       in->finished_on ? in->finished_on : "", "byproducts",
		       byproducts ? byproducts : json_array());
	if (st == NULL)
		goto oom;
	if (in->outcome != NULL)
		json_object_set_new(
			json_object_get(json_object_get(json_object_get(st, "predicate"),
							"buildDefinition"),
					"internalParameters"),
			"outcome", json_string(in->outcome));
	return st;
oom:
	kiln_error_set_code(err, ENOMEM, "provenance statement");
	return NULL;
}

/* ---- checks ---- */

static const json_t *field(const json_t *o, const char *path)
{
	char buf[128], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL && o != NULL;
	     tok = strtok_r(NULL, ".", &save))
		o = json_object_get(o, tok);
	return o;
}

static int need(const json_t *root, const char *path, json_type type, bool required,
		struct kiln_error **err)
{
	static const char *const names[] = {"an object", "an array",  "a string",  "an integer",
					    "a number",	 "a boolean", "a boolean", "null"};
	const json_t *v = field(root, path);

	if (v == NULL)
		return required
			       ? kiln_error_set_code(err, EINVAL, "provenance: %s is missing", path)
			       : 0;
	if (json_typeof(v) != type)
		return kiln_error_set_code(err, EINVAL, "provenance: %s must be %s", path,
					   names[type]);
	return 0;
}

static int digest_set_ok(const json_t *d, const char *what, struct kiln_error **err)
{
	const char *k;
	json_t *v;

	if (!json_is_object(d) || json_object_size(d) == 0)
		return kiln_error_set_code(
			err, EINVAL, "provenance: %s.digest must be a non-empty object", what);
	json_object_foreach((json_t *)d, k, v)
	{
		if (!json_is_string(v))
			return kiln_error_set_code(
				err, EINVAL, "provenance: %s.digest.%s must be a string", what, k);
	}
	return 0;
}

static int descriptors_ok(const json_t *a, const char *what, struct kiln_error **err)
{
	size_t i;
	json_t *d;

	if (a == NULL)
		return 0;
	json_array_foreach((json_t *)a, i, d)
	{
		const json_t *uri = json_object_get(d, "uri"), *dg = json_object_get(d, "digest"),
			     *ct = json_object_get(d, "content"), *nm = json_object_get(d, "name");

		if (!json_is_object(d))
			return kiln_error_set_code(
				err, EINVAL, "provenance: %s[%zu] must be an object", what, i);
		if (uri == NULL && dg == NULL && ct == NULL)
			return kiln_error_set_code(
				err, EINVAL, "provenance: %s[%zu] needs uri, digest or content",
				what, i);
		if ((uri != NULL && !json_is_string(uri)) || (nm != NULL && !json_is_string(nm)))
			return kiln_error_set_code(
				err, EINVAL, "provenance: %s[%zu]: uri and name must be strings",
				what, i);
		if (dg != NULL && digest_set_ok(dg, what, err) < 0)
			return -1;
	}
	return 0;
}

int kiln_provenance_schema_check(const json_t *st, struct kiln_error **err)
{
	const char *t;
	const json_t *subj;
	json_t *s;
	size_t i;

	if (!json_is_object(st))
		return kiln_error_set_code(err, EINVAL,
					   "provenance: the statement is not an object");
	if (need(st, "_type", JSON_STRING, true, err) < 0 ||
	    need(st, "subject", JSON_ARRAY, true, err) < 0 ||
	    need(st, "predicateType", JSON_STRING, true, err) < 0 ||
	    need(st, "predicate", JSON_OBJECT, true, err) < 0)
		return -1;
	t = json_string_value(json_object_get(st, "_type"));
	if (strcmp(t, KILN_INTOTO_STATEMENT_TYPE) != 0)
		return kiln_error_set_code(err, EINVAL, "provenance: _type is not %s",
					   KILN_INTOTO_STATEMENT_TYPE);
	t = json_string_value(json_object_get(st, "predicateType"));
	if (strcmp(t, KILN_SLSA_PREDICATE_TYPE) != 0)
		return kiln_error_set_code(err, EINVAL, "provenance: predicateType is not %s",
					   KILN_SLSA_PREDICATE_TYPE);
	subj = json_object_get(st, "subject");
	if (json_array_size(subj) == 0)
		return kiln_error_set_code(err, EINVAL, "provenance: subject is empty");
	json_array_foreach((json_t *)subj, i, s)
	{
		if (!json_is_object(s) || !json_is_string(json_object_get(s, "name")))
			return kiln_error_set_code(
				err, EINVAL, "provenance: subject[%zu].name must be a string", i);
		if (digest_set_ok(json_object_get(s, "digest"), "subject", err) < 0)
			return -1;
	}
	if (need(st, "predicate.buildDefinition", JSON_OBJECT, true, err) < 0 ||
	    need(st, "predicate.buildDefinition.buildType", JSON_STRING, true, err) < 0 ||
	    need(st, "predicate.buildDefinition.externalParameters", JSON_OBJECT, true, err) < 0 ||
	    need(st, "predicate.buildDefinition.internalParameters", JSON_OBJECT, false, err) < 0 ||
	    need(st, "predicate.buildDefinition.resolvedDependencies", JSON_ARRAY, false, err) <
		    0 ||
	    need(st, "predicate.runDetails", JSON_OBJECT, true, err) < 0 ||
	    need(st, "predicate.runDetails.builder", JSON_OBJECT, true, err) < 0 ||
	    need(st, "predicate.runDetails.builder.id", JSON_STRING, true, err) < 0 ||
	    need(st, "predicate.runDetails.metadata", JSON_OBJECT, false, err) < 0 ||
	    need(st, "predicate.runDetails.metadata.invocationId", JSON_STRING, false, err) < 0 ||
	    need(st, "predicate.runDetails.metadata.startedOn", JSON_STRING, false, err) < 0 ||
	    need(st, "predicate.runDetails.metadata.finishedOn", JSON_STRING, false, err) < 0 ||
	    need(st, "predicate.runDetails.byproducts", JSON_ARRAY, false, err) < 0)
		return -1;
	if (descriptors_ok(field(st, "predicate.buildDefinition.resolvedDependencies"),
			   "resolvedDependencies", err) < 0 ||
	    descriptors_ok(field(st, "predicate.runDetails.byproducts"), "byproducts", err) < 0)
		return -1;
	return 0;
}

int kiln_provenance_check(const json_t *st, const struct kiln_prov_artifact *artifacts, size_t n,
			  const struct kiln_prov_expect *x, struct kiln_error **err)
{
	const json_t *subj;
	const char *v;

	if (kiln_provenance_schema_check(st, err) < 0)
		return -1;
	subj = json_object_get(st, "subject");
	for (size_t a = 0; a < n; a++) {
		bool found = false;
		size_t i;
		json_t *s;

		json_array_foreach((json_t *)subj, i, s)
		{
			const char *d = json_string_value(
				json_object_get(json_object_get(s, "digest"), "sha256"));
			if (d != NULL && strcmp(d, artifacts[a].sha256) == 0)
				found = true;
		}
		if (!found)
			return kiln_error_set_code(
				err, EINVAL,
				"subject: %s (sha256 %s) is not a subject of this "
				"provenance",
				artifacts[a].name, artifacts[a].sha256);
	}
	if (x == NULL)
		return 0;
	if (x->project != NULL) {
		v = json_string_value(
			field(st, "predicate.buildDefinition.externalParameters.project"));
		if (v == NULL || strcmp(v, x->project) != 0)
			return kiln_error_set_code(
				err, EINVAL, "project: the provenance names project '%s', not '%s'",
				v ? v : "(none)", x->project);
	}
	if (x->builder_id != NULL) {
		v = json_string_value(field(st, "predicate.runDetails.builder.id"));
		if (v == NULL || strcmp(v, x->builder_id) != 0)
			return kiln_error_set_code(
				err, EINVAL, "builder: the provenance names builder '%s', not '%s'",
				v ? v : "(none)", x->builder_id);
	}
	if (x->source_sha256 != NULL) {
		const char *want = x->source_sha256;

		if (strncmp(want, "sha256:", 7) == 0)
			want += 7;
		v = json_string_value(field(
			st, "predicate.buildDefinition.externalParameters.sourceDigest.sha256"));
		if (v == NULL || strcmp(v, want) != 0)
			return kiln_error_set_code(
				err, EINVAL,
				"source-digest: the provenance names source sha256:%s, "
				"not sha256:%s",
				v ? v : "(none)", want);
	}
	return 0;
}
