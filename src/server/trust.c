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
	char path[4200];
	cleanup_fd int fd = -1;
	cleanup_free char *buf = NULL;
	struct stat st;
	size_t n = 0;
	ssize_t got;

	memset(out, 0, sizeof(*out));
	if (!kiln_project_name_valid(project))
		return kiln_error_set(err, EINVAL, "bad project name");
	snprintf(path, sizeof(path), "%s/policies/%s.yml", s->cfg.data, project);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return kiln_error_set(err, errno, "open %s", path);
	}
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "stat %s", path);
	if (!S_ISREG(st.st_mode))
		return kiln_error_set(err, EINVAL, "%s: not a regular file", path);
	if (st.st_size > KILN_POLICY_MAX)
		return kiln_error_set(err, EFBIG, "%s: larger than 1M", path);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return kiln_error_set(err, ENOMEM, "read %s", path);
	while (n < (size_t)st.st_size) {
		got = read(fd, buf + n, (size_t)st.st_size - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return kiln_error_set(err, errno, "read %s", path);
		if (got == 0)
			break;
		n += (size_t)got;
	}
	return kiln_trust_parse(path, buf, n, out, err);
}
