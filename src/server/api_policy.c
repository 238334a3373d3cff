/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's side of policies (policy.h): loading the directory at start-up,
 * on SIGHUP and on POST /v1/policies/reload (all or nothing: a set with a
 * problem is refused and the previous one stays in force), and
 * GET /v1/policies/{project}, the effective policy and its digest.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "server/audit.h"
#include "server/policy.h"
#include "server/secrets.h"
#include "server/server.h"

struct collect_report {
	char *text;
	size_t len;
	unsigned n;
};

static void report_line(void *ctx, const char *file, int line, int column, const char *message)
{
	struct collect_report *c = ctx;
	char buf[1024], safe[1024];
	size_t n;
	char *nt;

	if (line > 0)
		snprintf(buf, sizeof(buf), "%s:%d:%d: %s", file, line, column, message);
	else
		snprintf(buf, sizeof(buf), "%s: %s", file, message);
	kiln_sanitize(safe, sizeof(safe), buf);
	kiln_logf("policy: %s", safe);
	c->n++;
	n = strlen(safe);
	nt = realloc(c->text, c->len + n + 2);
	if (nt == NULL)
		return;
	c->text = nt;
	memcpy(c->text + c->len, safe, n);
	c->len += n;
	c->text[c->len++] = '\n';
	c->text[c->len] = '\0';
}

void kiln_policy_known_server(const struct kiln_server *s, struct kiln_policy_known *k)
{
	memset(k, 0, sizeof(*k));
	k->max = &s->cfg.spec_limits;
}

int kiln_policies_reload(struct kiln_server *s, const char *why, char **problems,
			 struct kiln_error **err)
{
	struct collect_report c = {0};
	struct kiln_policy_known k;
	struct kiln_policy_set *set = NULL;
	int r;

	if (problems != NULL)
		*problems = NULL;
	kiln_policy_known_server(s, &k);
	r = kiln_policy_load_dir(s->policy_dir, &k, report_line, &c, &set, err);
	if (r != 0) {
		kiln_policy_count_reload(false);
		if (r > 0)
			kiln_logf("policy: %s: the policy set in %s was refused (%d problem(s)); "
				  "the previous set stays in force",
				  why, s->policy_dir, r);
		else
			kiln_logf("policy: %s: %s; the previous set stays in force", why,
				  *err ? (*err)->msg : "?");
		if (problems != NULL)
			*problems = c.text;
		else
			free(c.text);
		return r;
	}
	free(c.text);
	/* Recorded before it is in force; unrecorded, it is not installed.
	 * (At start-up the log is not open yet: server.start carries the
	 * digest.) */
	if (s->audit != NULL) {
		json_t *f = json_pack("{s:s,s:I,s:s}", "digest", kiln_policy_set_digest(set),
				      "files", (json_int_t)kiln_policy_set_count(set), "why", why);
		int ar = kiln_audit_append(s, NULL, "policy.loaded", "kilnd", f, err);

		json_decref(f);
		if (ar < 0) {
			kiln_policy_set_unref(set);
			kiln_policy_count_reload(false);
			kiln_logf("policy: %s: %s; the previous set stays in force", why,
				  *err ? (*err)->msg : "?");
			return -1;
		}
	}
	kiln_logf("policy: %s: loaded %zu policy file(s) from %s (%s)", why,
		  kiln_policy_set_count(set), s->policy_dir, kiln_policy_set_digest(set));
	kiln_policy_install(set);
	kiln_policy_count_reload(true);
	return 0;
}

int kiln_api_policy_reload(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_policy_set *set;
	char *problems = NULL;
	json_t *j;
	int rc = kiln_policies_reload(r->s, "reload asked through the API", &problems, &err);

	if (rc < 0) {
		int ret = kiln_reply_error(r, 500, "internal", "%s",
					   err ? err->msg : "reading the policies failed");
		kiln_error_free(&err);
		free(problems);
		return ret;
	}
	if (rc > 0) {
		char msg[1200], first[1024] = "";
		json_t *e;

		if (problems != NULL)
			snprintf(first, sizeof(first), "%.*s", (int)strcspn(problems, "\n"),
				 problems);
		snprintf(msg, sizeof(msg),
			 "the policy set was refused (%d problem(s)), the previous one stays in "
			 "force: %s",
			 rc, first);
		e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "policy_invalid", "message",
			      msg, "problems", problems ? problems : "");
		free(problems);
		return kiln_reply_json(r, 422, e);
	}
	set = kiln_policy_current();
	j = json_pack("{s:s,s:I}", "digest", set ? kiln_policy_set_digest(set) : "", "files",
		      (json_int_t)(set ? kiln_policy_set_count(set) : 0));
	kiln_policy_set_unref(set);
	return kiln_reply_json(r, 200, j);
}

int kiln_api_policy_show(struct kiln_req *r, const char *project)
{
	struct kiln_policy_set *set;
	const struct kiln_policy *p;
	json_t *j;

	if (!kiln_project_name_valid(project))
		return kiln_reply_error(r, 404, "not_found", "no such project");
	if (!kiln_auth_project_ok(&r->auth, project))
		return kiln_reply_error(r, 403, "forbidden", "this token may only read project %s",
					r->auth.project);
	set = kiln_policy_current();
	if (set == NULL)
		return kiln_reply_error(r, 503, "unavailable", "no policy set is loaded");
	p = kiln_policy_lookup(set, project);
	j = kiln_policy_to_json(p);
	json_object_set_new(j, "project", json_string(project));
	{
		char t[32];

		kiln_format_time(kiln_policy_set_loaded_at(set), t, sizeof(t));
		json_object_set_new(j, "loaded_at", json_string(t));
	}
	kiln_policy_set_unref(set);
	return kiln_reply_json(r, 200, j);
}

/* ---- /v1/projects/{project}/secrets ---- */

/* Inside the caller's kiln_db_begin: record, commit; roll back on any
 * failure. 0, or -1 with the 500 answer queued in *ret. */
static int record_commit(struct kiln_req *r, struct kiln_db *db, const char *kind, json_t *f,
			 int *ret)
{
	struct kiln_error *err = NULL;
	char actor[64];
	int rc;

	snprintf(actor, sizeof(actor), "token:%s", r->auth.token_id);
	rc = kiln_audit_append(r->s, db, kind, actor, f, &err);
	json_decref(f);
	if (rc < 0)
		kiln_db_rollback(db);
	else
		rc = kiln_db_commit(db, &err); /* rolls back itself on failure */
	if (rc < 0) {
		kiln_logf("%s: %s", kind, err ? err->msg : "?");
		kiln_error_free(&err);
		*ret = kiln_reply_error(r, 500, "internal", "recording in the audit log failed");
		return -1;
	}
	return 0;
}

int kiln_api_secret_set(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	json_error_t je;
	json_t *body, *v;
	const char *b64;
	unsigned char *val = NULL;
	size_t len = 0;
	int64_t version = 0;
	int ret;

	if (r->s->secrets == NULL)
		return kiln_reply_error(r, 503, "unavailable", "the secret store is not open");
	body = r->body ? json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (!json_is_object(body) || json_object_size(body) != 1 ||
	    (v = json_object_get(body, "value_base64")) == NULL || !json_is_string(v)) {
		json_decref(body);
		return kiln_reply_error(r, 400, "bad_request",
					"expected {\"value_base64\": \"...\"} as body");
	}
	b64 = json_string_value(v);
	val = sodium_malloc(KILN_SECRET_MAX + 1);
	if (val == NULL) {
		json_decref(body);
		return kiln_reply_error(r, 500, "internal", "out of memory");
	}
	if (sodium_base642bin(val, KILN_SECRET_MAX + 1, b64, strlen(b64), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		ret = kiln_reply_error(r, 400, "bad_request",
				       "value_base64: not base64, or more than %d bytes",
				       KILN_SECRET_MAX);
		goto out;
	}
	if ((db = kiln_req_db(r, &ret)) == NULL)
		goto out;
	/* The new version and its audit entry commit together. */
	if (kiln_db_begin(db, &err) < 0) {
		kiln_logf("secret set: %s", err ? err->msg : "?");
		kiln_error_free(&err);
		ret = kiln_reply_error(r, 500, "internal", "storing the secret failed");
		goto out;
	}
	if (kiln_secret_set(r->s->secrets, db, r->arg, r->arg2, val, len, &version, &err) < 0) {
		int code = err ? err->code : EIO;

		kiln_db_rollback(db);
		char msg[KILN_ERROR_MAX];

		snprintf(msg, sizeof(msg), "%s", err ? err->msg : "?");
		kiln_error_free(&err);
		if (code == ENOENT)
			ret = kiln_reply_error(r, 404, "not_found", "project '%s' does not exist",
					       r->arg);
		else if (code == EINVAL)
			ret = kiln_reply_error(r, 400, "bad_request", "%s", msg);
		else {
			kiln_logf("secret set: %s", msg);
			ret = kiln_reply_error(r, 500, "internal", "storing the secret failed");
		}
		goto out;
	}
	if (record_commit(r, db, "secret.set",
			  json_pack("{s:s,s:s,s:I}", "project", r->arg, "secret", r->arg2,
				    "version", (json_int_t)version),
			  &ret) < 0)
		goto out;
	kiln_logf("secret %s of project %s set (version %" PRId64 ") by %s", r->arg2, r->arg,
		  version, r->auth.token_id);
	ret = kiln_reply_json(r, 201,
			      json_pack("{s:s,s:s,s:I}", "project", r->arg, "name", r->arg2,
					"version", (json_int_t)version));
out:
	/* jansson's copy of the encoded value, then ours */
	sodium_memzero((void *)b64, strlen(b64));
	json_decref(body);
	sodium_free(val);
	return ret;
}

int kiln_api_secrets_list(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	json_t *l;
	int ret;

	if ((db = kiln_req_db(r, &ret)) == NULL)
		return ret;
	if (!kiln_db_project_exists(db, r->arg))
		return kiln_reply_error(r, 404, "not_found", "project '%s' does not exist", r->arg);
	l = kiln_db_secrets_list(db, r->arg, &err);
	if (l == NULL) {
		kiln_logf("list secrets: %s", err ? err->msg : "?");
		kiln_error_free(&err);
		return kiln_reply_error(r, 500, "internal", "listing the secrets failed");
	}
	return kiln_reply_json(r, 200, l);
}

int kiln_api_secret_delete(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	int ret;

	if ((db = kiln_req_db(r, &ret)) == NULL)
		return ret;
	if (kiln_db_begin(db, &err) < 0) {
		kiln_error_free(&err);
		return kiln_reply_error(r, 500, "internal", "removing the secret failed");
	}
	if (kiln_db_secret_delete(db, r->arg, r->arg2, &err) < 0) {
		bool missing = err && err->code == ENOENT;
		kiln_db_rollback(db);
		kiln_error_free(&err);
		if (missing)
			return kiln_reply_error(r, 404, "not_found", "project %s has no secret %s",
						r->arg, r->arg2);
		return kiln_reply_error(r, 500, "internal", "removing the secret failed");
	}
	if (record_commit(r, db, "secret.removed",
			  json_pack("{s:s,s:s}", "project", r->arg, "secret", r->arg2), &ret) < 0)
		return ret;
	kiln_logf("secret %s of project %s removed by %s", r->arg2, r->arg, r->auth.token_id);
	return kiln_reply_empty(r, 204);
}
