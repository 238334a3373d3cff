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

#include "server/policy.h"
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
		json_t *e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "policy_invalid",
				      "message",
				      "the policy set was refused; the previous one stays in force",
				      "problems", problems ? problems : "");
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
	kiln_policy_set_unref(set);
	return kiln_reply_json(r, 200, j);
}
