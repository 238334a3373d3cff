/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A project's signing trust, from the `signing:` section of
 * DATA/policies/PROJECT.yml (trust.h). Read with the spec's strict YAML
 * loader: unknown keys under `signing`, duplicates, wrong types and keys
 * that are not minisign public keys are errors with line and column.
 */
#define KILN_SPEC_INTERNAL
#include "server/trust.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "server/policy.h"
#include "server/server.h"
#include "server/spec.h"

static const char *const signing_keys[] = {"required", "keys", NULL};
enum { SG_REQUIRED, SG_KEYS };

static int keys_field(struct kiln_trust *t, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	if (v->type != KILN_YSEQ)
		return kiln_yaml_fail(
			e, v, "signing.keys: expected a list of minisign public keys, got %s",
			kiln_yaml_kind(v));
	for (size_t i = 0; i < v->nkids; i++) {
		const struct kiln_ynode *k = v->kids[i];
		struct kiln_error *err = NULL;
		char *text = NULL;

		if (t->nkeys == KILN_TRUST_MAX_KEYS)
			return kiln_yaml_fail(e, k, "signing.keys: more than %d keys",
					      KILN_TRUST_MAX_KEYS);
		if (kiln_yaml_string(k, "signing.keys", 256, &text, e) < 0)
			return -1;
		if (kiln_minisign_pk_parse(text, strlen(text), &t->keys[t->nkeys], &err) < 0) {
			kiln_yaml_fail(e, k, "signing.keys: %s", err ? err->msg : "bad key");
			kiln_error_free(&err);
			free(text);
			return -1;
		}
		free(text);
		t->nkeys++;
	}
	return 0;
}

static int signing_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			 struct kiln_spec_error *e)
{
	struct kiln_trust *t = ctx;

	switch (idx) {
	case SG_REQUIRED: return kiln_yaml_bool(v, "signing.required", &t->required, e);
	case SG_KEYS: return keys_field(t, v, e);
	default: return kiln_yaml_fail(e, v, "internal error: key %zu", idx);
	}
}

int kiln_trust_parse(const char *file, const char *text, size_t len, struct kiln_trust *out,
		     struct kiln_error **err)
{
	struct kiln_spec_error e = {0};
	struct kiln_ynode *root = NULL;
	struct kiln_trust t;
	const struct kiln_ynode *signing = NULL;
	int r = -1;

	memset(&t, 0, sizeof(t));
	if (kiln_yaml_load(text, len, KILN_POLICY_MAX, &root, &e) < 0)
		goto out;
	if (root != NULL && !kiln_yaml_is_null(root)) {
		if (root->type != KILN_YMAP) {
			kiln_yaml_fail(&e, root, "a policy must be a mapping, not %s",
				       kiln_yaml_kind(root));
			goto out;
		}
		for (size_t i = 0; i + 1 < root->nkids; i += 2) {
			const struct kiln_ynode *k = root->kids[i];

			if (k->type == KILN_YSCALAR && k->len == 7 &&
			    memcmp(k->text, "signing", 7) == 0) {
				if (signing != NULL) {
					kiln_yaml_fail(&e, k, "signing: given twice");
					goto out;
				}
				signing = root->kids[i + 1];
			}
		}
	}
	if (signing != NULL && !kiln_yaml_is_null(signing) &&
	    kiln_yaml_walk(signing, "signing", signing_keys, signing_field, &t, &e) < 0)
		goto out;
	if (t.required && t.nkeys == 0) {
		kiln_yaml_fail(&e, signing, "signing: required is true but no keys are listed");
		goto out;
	}
	*out = t;
	r = 0;
out:
	kiln_yaml_free(root);
	if (r < 0) {
		kiln_yaml_clamp(text, len, &e);
		if (e.line > 0)
			kiln_error_set(err, 0, "%s:%d:%d: %s", file, e.line, e.column, e.message);
		else
			kiln_error_set(err, 0, "%s: %s", file, e.message);
		if (*err)
			(*err)->code = EINVAL;
	}
	return r;
}

int kiln_project_trust(struct kiln_server *s, const char *project, struct kiln_trust *out,
		       struct kiln_error **err)
{
	struct kiln_policy_set *ps;
	const struct kiln_policy *p;
	int r = 0;

	(void)s;
	memset(out, 0, sizeof(*out));
	if (!kiln_project_name_valid(project))
		return kiln_error_set(err, EINVAL, "bad project name");
	/* The policy in force (policy.h): validated as a whole set when it
	 * was loaded, so its keys parse; checked again here all the same. */
	ps = kiln_policy_current();
	if (ps == NULL)
		return kiln_error_set(err, EAGAIN, "no policy set is loaded");
	p = kiln_policy_lookup(ps, project);
	out->required = p->signing_required;
	if (p->nsigning_keys > KILN_TRUST_MAX_KEYS)
		r = kiln_error_set(err, E2BIG, "%s: more than %d signing keys", p->file,
				   KILN_TRUST_MAX_KEYS);
	for (size_t i = 0; r == 0 && i < p->nsigning_keys; i++) {
		if (kiln_minisign_pk_parse(p->signing_keys[i], strlen(p->signing_keys[i]),
					   &out->keys[out->nkeys], err) < 0)
			r = kiln_error_prefix(err, "%s: signing.keys[%zu]", p->file, i);
		else
			out->nkeys++;
	}
	kiln_policy_set_unref(ps);
	return r;
}
