/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The v1 API of docs/api.md: routing, authentication and authorisation,
 * request bodies (JSON up to 64K, the multipart job submission streamed
 * into the CAS), and the handlers. Everything that arrives is hostile:
 * paths, query strings, headers and bodies are parsed strictly, with a
 * size cap, before anything is stored; an answer that says something was
 * stored is sent only after the database committed it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "server/audit.h"
#include "server/job.h"
#include "server/egress.h"
#include "server/policy.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/provenance.h"
#include "server/spec.h"
#include "server/trust.h"
#include "store/cas.h"
#include "store/db.h"
#include "store/logs.h"
#include "trust/manifest.h"
#include "trust/minisign.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

#define PROJECT_MAX	   63
#define DESCRIPTION_MAX	   256
#define EXPIRES_MAX	   (10LL * 366 * 24 * 3600)
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX	   500
#define POST_BUFFER	   (32 * 1024)
#define SIGNATURE_MAX	   (KILN_MINISIGN_TRUSTED_MAX + 1024)

enum route {
	R_NONE,
	R_HEALTH,
	R_PROJECTS,
	R_TOKENS,
	R_TOKEN,
	R_JOBS,
	R_JOB,
	R_JOB_LOG,
	R_JOB_CANCEL,
	R_JOB_ARTIFACTS,
	R_ARTIFACT,
	R_POLICIES_RELOAD,
	R_POLICY,
	R_SECRETS,
	R_SECRET,
	R_JOB_EGRESS,
	R_EGRESS_SUGGEST,
	R_JOB_PROVENANCE,
	R_KEYS,
	R_AUDIT_KEY,
	R_AUDIT_CHECKPOINT,
	R_AUDIT_TILE,
};

enum body { B_NONE, B_JSON, B_MULTIPART };

struct endpoint {
	enum route route;
	const char *method;
	unsigned scope;	   /* 0: no authentication */
	bool all_projects; /* the token must not be tied to a project */
	enum body body;
};

static const struct endpoint endpoints[] = {
	{R_HEALTH, "GET", 0, false, B_NONE},
	{R_PROJECTS, "POST", KILN_SCOPE_ADMIN, true, B_JSON},
	{R_PROJECTS, "GET", KILN_SCOPE_ADMIN, true, B_NONE},
	{R_TOKENS, "POST", KILN_SCOPE_ADMIN, true, B_JSON},
	{R_TOKENS, "GET", KILN_SCOPE_ADMIN, true, B_NONE},
	{R_TOKEN, "DELETE", KILN_SCOPE_ADMIN, true, B_NONE},
	{R_JOBS, "POST", KILN_SCOPE_SUBMIT, false, B_MULTIPART},
	{R_JOBS, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_JOB, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_JOB_LOG, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_JOB_CANCEL, "POST", KILN_SCOPE_SUBMIT, false, B_NONE},
	{R_JOB_ARTIFACTS, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_ARTIFACT, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_POLICIES_RELOAD, "POST", KILN_SCOPE_ADMIN, true, B_NONE},
	{R_POLICY, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_SECRETS, "GET", KILN_SCOPE_ADMIN, true, B_NONE},
	{R_SECRET, "POST", KILN_SCOPE_ADMIN, true, B_JSON},
	{R_SECRET, "DELETE", KILN_SCOPE_ADMIN, true, B_NONE},
	{R_JOB_EGRESS, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_EGRESS_SUGGEST, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_JOB_PROVENANCE, "GET", KILN_SCOPE_READ, false, B_NONE},
	{R_KEYS, "GET", 0, false, B_NONE},
	/* The verifier key and the checkpoint are public, so that anyone
	 * can watch the log grow; the tiles hold every project's entries:
	 * read scope and a token for all projects (docs/audit.md). */
	{R_AUDIT_KEY, "GET", 0, false, B_NONE},
	{R_AUDIT_CHECKPOINT, "GET", 0, false, B_NONE},
	{R_AUDIT_TILE, "GET", KILN_SCOPE_READ, true, B_NONE},
};

/* ---- helpers ---- */

static const char *header(struct kiln_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *query(struct kiln_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static int reply_db_error(struct kiln_req *r, struct kiln_error **err, const char *what)
{
	kiln_logf("%s: %s", what, *err ? (*err)->msg : "unknown error");
	kiln_error_free(err);
	return kiln_reply_error(r, 500, "internal", "%s failed", what);
}

/* The request's database handle, borrowed from the pool until
 * db_release() (at the latest when the handler returns). */
static struct kiln_db *db_or_reply(struct kiln_req *r, int *ret)
{
	return kiln_req_db(r, ret);
}

static void db_release(struct kiln_req *r)
{
	kiln_server_db_release(r->s, r->db);
	r->db = NULL;
}

/* Decimal job id, 1..INT64_MAX, digits only. */
static bool parse_job_id(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;

	if (len == 0 || len > 19 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool all_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Exact paths only: no trailing slash, no "." or "..", no doubled "/". */
static enum route parse_route(struct kiln_req *r)
{
	const char *u = r->url, *p, *slash;

	if (strncmp(u, "/v1/", 4) != 0)
		return R_NONE;
	u += 4;
	if (strcmp(u, "health") == 0)
		return R_HEALTH;
	if (strcmp(u, "keys") == 0)
		return R_KEYS;
	if (strcmp(u, "projects") == 0)
		return R_PROJECTS;
	if (strncmp(u, "projects/", 9) == 0) {
		/* projects/{project}/secrets[/{name}] */
		char proj[80];
		p = u + 9;
		slash = strchr(p, '/');
		if (slash == NULL || (size_t)(slash - p) >= sizeof(proj))
			return R_NONE;
		memcpy(proj, p, (size_t)(slash - p));
		proj[slash - p] = '\0';
		if (!kiln_project_name_valid(proj))
			return R_NONE;
		snprintf(r->arg, sizeof(r->arg), "%s", proj);
		if (strcmp(slash, "/secrets") == 0)
			return R_SECRETS;
		if (strncmp(slash, "/secrets/", 9) != 0 || !kiln_secret_name_valid(slash + 9))
			return R_NONE;
		snprintf(r->arg2, sizeof(r->arg2), "%s", slash + 9);
		return R_SECRET;
	}
	if (strcmp(u, "tokens") == 0)
		return R_TOKENS;
	if (strncmp(u, "tokens/", 7) == 0) {
		p = u + 7;
		if (strlen(p) != 12 || !all_lower_hex(p, 12))
			return R_NONE;
		snprintf(r->arg, sizeof(r->arg), "%s", p);
		return R_TOKEN;
	}
	if (strcmp(u, "jobs") == 0)
		return R_JOBS;
	if (strncmp(u, "jobs/", 5) == 0) {
		p = u + 5;
		slash = strchr(p, '/');
		if (!parse_job_id(p, slash ? (size_t)(slash - p) : strlen(p), &r->job))
			return R_NONE;
		if (slash == NULL)
			return R_JOB;
		if (strcmp(slash, "/log") == 0)
			return R_JOB_LOG;
		if (strcmp(slash, "/cancel") == 0)
			return R_JOB_CANCEL;
		if (strcmp(slash, "/artifacts") == 0)
			return R_JOB_ARTIFACTS;
		if (strcmp(slash, "/egress") == 0)
			return R_JOB_EGRESS;
		if (strcmp(slash, "/provenance") == 0)
			return R_JOB_PROVENANCE;
		return R_NONE;
	}
	if (strncmp(u, "egress/", 7) == 0) {
		size_t n;

		p = u + 7;
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : 0;
		if (slash == NULL || strcmp(slash, "/suggest") != 0 || n == 0 ||
		    n >= sizeof(r->arg))
			return R_NONE;
		memcpy(r->arg, p, n);
		r->arg[n] = '\0';
		if (!kiln_project_name_valid(r->arg))
			return R_NONE;
		return R_EGRESS_SUGGEST;
	}
	if (strcmp(u, "policies/reload") == 0)
		return R_POLICIES_RELOAD;
	if (strncmp(u, "policies/", 9) == 0) {
		p = u + 9;
		if (!kiln_project_name_valid(p))
			return R_NONE;
		snprintf(r->arg, sizeof(r->arg), "%s", p);
		return R_POLICY;
	}
	if (strncmp(u, "artifacts/", 10) == 0) {
		p = u + 10;
		if (strlen(p) != 64 || !all_lower_hex(p, 64))
			return R_NONE;
		snprintf(r->arg, sizeof(r->arg), "%s", p);
		return R_ARTIFACT;
	}
	if (strcmp(u, "audit/key") == 0)
		return R_AUDIT_KEY;
	if (strcmp(u, "audit/checkpoint") == 0)
		return R_AUDIT_CHECKPOINT;
	if (strncmp(u, "audit/tile/", 11) == 0) {
		p = u + 6;
		if (strlen(p) >= sizeof(r->arg))
			return R_NONE;
		snprintf(r->arg, sizeof(r->arg), "%s", p);
		return R_AUDIT_TILE;
	}
	return R_NONE;
}

static void time_or_null(json_t *o, const char *key, int64_t t)
{
	char buf[32];

	if (t == 0) {
		json_object_set_new(o, key, json_null());
		return;
	}
	kiln_format_time(t, buf, sizeof(buf));
	json_object_set_new(o, key, json_string(buf));
}

static json_t *scopes_json(unsigned scopes)
{
	json_t *a = json_array();

	if (scopes & KILN_SCOPE_SUBMIT)
		json_array_append_new(a, json_string("submit"));
	if (scopes & KILN_SCOPE_READ)
		json_array_append_new(a, json_string("read"));
	if (scopes & KILN_SCOPE_ADMIN)
		json_array_append_new(a, json_string("admin"));
	return a;
}

/* The job's project, for the authorisation check. 0: found; otherwise the
 * answer was queued and *ret is its result. */
static int job_access(struct kiln_req *r, struct kiln_db *db, int *ret)
{
	char project[64] = "";

	if (kiln_db_job_project(db, r->job, project, sizeof(project)) < 0 || project[0] == '\0') {
		*ret = kiln_reply_error(r, 404, "not_found", "no job %" PRId64, r->job);
		return -1;
	}
	if (!kiln_auth_project_ok(&r->auth, project)) {
		*ret = kiln_reply_error(r, 403, "forbidden",
					"job %" PRId64 " belongs to another project", r->job);
		return -1;
	}
	return 0;
}

/* ---- the audit log ---- */

static void actor_of(const struct kiln_req *r, char *buf, size_t len)
{
	if (r->auth.token_id[0] != '\0')
		snprintf(buf, len, "token:%s", r->auth.token_id);
	else
		snprintf(buf, len, "anonymous");
}

static void remote_of(struct kiln_req *r, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	buf[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
			  (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  buf, (socklen_t)len);
}

/* Record an action before it is acknowledged. Takes ownership of fields.
 * 0, or -1 with the 500 answer queued in *ret. */
static int audit_or_reply(struct kiln_req *r, struct kiln_db *db, const char *kind, json_t *fields,
			  int *ret)
{
	struct kiln_error *err = NULL;
	char actor[64];
	int rc;

	actor_of(r, actor, sizeof(actor));
	rc = kiln_audit_append(r->s, db, kind, actor, fields, &err);
	json_decref(fields);
	if (rc < 0) {
		*ret = reply_db_error(r, &err, "record in the audit log");
		return -1;
	}
	return 0;
}

/* The row and its entry in one transaction (kiln_db_begin): record, then
 * commit. 0, or -1 with the answer queued (and everything rolled back). */
static int audit_commit_or_reply(struct kiln_req *r, struct kiln_db *db, const char *kind,
				 json_t *fields, int *ret)
{
	struct kiln_error *err = NULL;

	if (audit_or_reply(r, db, kind, fields, ret) < 0) {
		kiln_db_rollback(db);
		return -1;
	}
	if (kiln_db_commit(db, &err) < 0) {
		*ret = reply_db_error(r, &err, "commit");
		return -1;
	}
	return 0;
}

/* After a handler: a refused authentication or authorisation. */
static void audit_refusal(struct kiln_req *r)
{
	char remote[64];

	if (r->status != 401 && r->status != 403)
		return;
	/* A policy's refusal is a rejected submission, not an
	 * authorisation failure. */
	if (strcmp(r->error_code, "policy_denied") == 0)
		return;
	remote_of(r, remote, sizeof(remote));
	kiln_audit_auth_failure(r->s, r->db, r->status, r->method, r->url,
				header(r, MHD_HTTP_HEADER_AUTHORIZATION), r->auth.token_id, remote,
				r->error_msg);
}

static int reply_job(struct kiln_req *r, struct kiln_db *db, unsigned status)
{
	struct kiln_error *err = NULL;
	json_t *j = kiln_db_job_get(db, r->job, &err);

	if (j == NULL) {
		if (err && err->code == ENOENT) {
			kiln_error_free(&err);
			return kiln_reply_error(r, 404, "not_found", "no job %" PRId64, r->job);
		}
		return reply_db_error(r, &err, "read job");
	}
	{
		/* The secrets the job was granted: names and versions only. */
		json_t *g = kiln_db_job_secret_grants(db, r->job, &err);
		kiln_error_free(&err);
		json_object_set_new(j, "secrets_granted",
				    g ? json_incref(json_object_get(g, "secrets")) : json_array());
		json_decref(g);
	}
	return kiln_reply_json(r, status, j);
}

static json_t *parse_json_body(struct kiln_req *r, int *ret)
{
	json_error_t je;
	json_t *j;

	if (r->body == NULL || r->body_len == 0) {
		*ret = kiln_reply_error(r, 400, "bad_request", "expected a JSON object as body");
		return NULL;
	}
	j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		*ret = kiln_reply_error(r, 400, "bad_request", "body: invalid JSON at line %d: %s",
					je.line, je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		*ret = kiln_reply_error(r, 400, "bad_request", "expected a JSON object as body");
		return NULL;
	}
	return j;
}

/* Every key of o must be in allowed (NULL-terminated). */
static bool only_keys(struct kiln_req *r, json_t *o, const char *const *allowed, int *ret)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		size_t i;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			char safe[64];
			kiln_sanitize(safe, sizeof(safe), k);
			*ret = kiln_reply_error(r, 400, "bad_request", "unknown field '%s'", safe);
			return false;
		}
	}
	return true;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* ---- /v1/health ---- */

static int h_health(struct kiln_req *r)
{
	return kiln_reply_json(r, 200,
			       json_pack("{s:s,s:s}", "status", "ok", "version", KILN_VERSION));
}

/* ---- /v1/projects ---- */

static int h_projects_get(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	json_t *l;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	l = kiln_db_projects_list(db, &err);
	if (l == NULL)
		return reply_db_error(r, &err, "list projects");
	return kiln_reply_json(r, 200, l);
}

static int h_projects_post(struct kiln_req *r)
{
	static const char *const keys[] = {"name", NULL};
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	const char *name;
	json_t *body, *l, *arr, *p, *found = NULL;
	size_t i;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	if ((body = parse_json_body(r, &ret)) == NULL)
		return ret;
	if (!only_keys(r, body, keys, &ret)) {
		json_decref(body);
		return ret;
	}
	name = json_string_value(json_object_get(body, "name"));
	if (name == NULL || !kiln_project_name_valid(name)) {
		json_decref(body);
		return kiln_reply_error(r, 400, "bad_request",
					"name: expected a project name matching "
					"[a-z0-9][a-z0-9-]{0,62}");
	}
	if (kiln_db_begin(db, &err) < 0) {
		json_decref(body);
		return reply_db_error(r, &err, "create project");
	}
	if (kiln_db_project_create(db, name, &err) < 0) {
		kiln_db_rollback(db);
		json_decref(body);
		if (err && err->code == EEXIST) {
			kiln_error_free(&err);
			return kiln_reply_error(r, 409, "conflict", "project already exists");
		}
		if (err && err->code == EINVAL) {
			kiln_error_free(&err);
			return kiln_reply_error(r, 400, "bad_request", "invalid project name");
		}
		return reply_db_error(r, &err, "create project");
	}
	if (audit_commit_or_reply(r, db, "project.created", json_pack("{s:s}", "project", name),
				  &ret) < 0) {
		json_decref(body);
		return ret;
	}
	l = kiln_db_projects_list(db, &err);
	arr = l ? json_object_get(l, "projects") : NULL;
	json_array_foreach(arr, i, p)
	{
		const char *n = json_string_value(json_object_get(p, "name"));
		if (n != NULL && strcmp(n, name) == 0) {
			found = json_incref(p);
			break;
		}
	}
	json_decref(l);
	kiln_error_free(&err);
	if (found == NULL) {
		char now[32];
		kiln_format_time((int64_t)time(NULL), now, sizeof(now));
		found = json_pack("{s:s,s:s}", "name", name, "created_at", now);
	}
	json_decref(body);
	return kiln_reply_json(r, 201, found);
}

/* ---- /v1/tokens ---- */

static int h_tokens_get(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	json_t *l;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	l = kiln_db_tokens_list(db, &err);
	if (l == NULL)
		return reply_db_error(r, &err, "list tokens");
	return kiln_reply_json(r, 200, l);
}

static int h_tokens_post(struct kiln_req *r)
{
	static const char *const keys[] = {"project", "scopes", "expires_in", "description", NULL};
	struct kiln_error *err = NULL;
	struct kiln_token_row row;
	char token[KILN_TOKEN_MAX];
	const char *project = NULL, *desc = NULL;
	unsigned scopes = 0;
	int64_t expires_at = 0;
	struct kiln_db *db;
	json_t *body, *v, *out;
	size_t i;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	if ((body = parse_json_body(r, &ret)) == NULL)
		return ret;
	if (!only_keys(r, body, keys, &ret))
		goto out;

	v = json_object_get(body, "project");
	if (v != NULL && !json_is_null(v)) {
		project = json_string_value(v);
		if (project == NULL || !kiln_project_name_valid(project)) {
			ret = kiln_reply_error(r, 400, "bad_request",
					       "project: expected a project name or null");
			goto out;
		}
		if (!kiln_db_project_exists(db, project)) {
			ret = kiln_reply_error(r, 404, "not_found", "project '%s' does not exist",
					       project);
			goto out;
		}
	}
	v = json_object_get(body, "scopes");
	if (!json_is_array(v) || json_array_size(v) == 0) {
		ret = kiln_reply_error(r, 400, "bad_request",
				       "scopes: expected a non-empty list of submit, read, admin");
		goto out;
	}
	for (i = 0; i < json_array_size(v); i++) {
		const char *sc = json_string_value(json_array_get(v, i));
		if (sc != NULL && strcmp(sc, "submit") == 0)
			scopes |= KILN_SCOPE_SUBMIT;
		else if (sc != NULL && strcmp(sc, "read") == 0)
			scopes |= KILN_SCOPE_READ;
		else if (sc != NULL && strcmp(sc, "admin") == 0)
			scopes |= KILN_SCOPE_ADMIN;
		else {
			ret = kiln_reply_error(r, 400, "bad_request",
					       "scopes: each must be submit, read or admin");
			goto out;
		}
	}
	v = json_object_get(body, "expires_in");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > EXPIRES_MAX) {
			ret = kiln_reply_error(r, 400, "bad_request",
					       "expires_in: expected seconds between 1 and %lld, "
					       "or null",
					       (long long)EXPIRES_MAX);
			goto out;
		}
		expires_at = (int64_t)time(NULL) + (int64_t)json_integer_value(v);
	}
	v = json_object_get(body, "description");
	if (v != NULL && !json_is_null(v)) {
		desc = json_string_value(v);
		if (desc == NULL || strlen(desc) > DESCRIPTION_MAX || has_control(desc)) {
			ret = kiln_reply_error(r, 400, "bad_request",
					       "description: expected a string of at most %d "
					       "characters without control characters",
					       DESCRIPTION_MAX);
			goto out;
		}
	}

	if (kiln_db_begin(db, &err) < 0) {
		ret = reply_db_error(r, &err, "create token");
		goto out;
	}
	if (kiln_token_create(db, project, scopes, expires_at, desc, &row, token, &err) < 0) {
		kiln_db_rollback(db);
		ret = reply_db_error(r, &err, "create token");
		goto out;
	}
	{
		json_t *f = json_pack("{s:s,s:o,s:o}", "token", row.id, "project",
				      project ? json_string(project) : json_null(), "scopes",
				      scopes_json(scopes));
		if (f != NULL) {
			json_object_set_new(f, "expires_at", json_integer(row.expires_at));
			json_object_set_new(f, "description", json_string(desc ? desc : ""));
		}
		/* Unrecorded, the token is not stored at all. */
		if (audit_commit_or_reply(r, db, "token.created", f, &ret) < 0) {
			sodium_memzero(token, sizeof(token));
			goto out;
		}
	}
	out = json_object();
	json_object_set_new(out, "id", json_string(row.id));
	json_object_set_new(out, "token", json_string(token));
	json_object_set_new(out, "project", project ? json_string(project) : json_null());
	json_object_set_new(out, "scopes", scopes_json(scopes));
	time_or_null(out, "created_at", row.created_at);
	time_or_null(out, "expires_at", row.expires_at);
	sodium_memzero(token, sizeof(token));
	{
		/* jansson's copy of the token is wiped before it is freed, the
		 * text of the answer when libmicrohttpd frees it. */
		json_t *t = json_object_get(out, "token");
		char *copy = (char *)json_string_value(t);
		char *text = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);

		if (copy != NULL)
			sodium_memzero(copy, strlen(copy));
		json_decref(out);
		if (text == NULL) {
			ret = kiln_reply_error(r, 500, "internal", "out of memory");
			goto out;
		}
		ret = kiln_reply_text(r, 201, text, "application/json");
	}
	kiln_logf("token %s created (project %s, by %s)", row.id, project ? project : "-",
		  r->auth.token_id);
out:
	json_decref(body);
	return ret;
}

static int h_token_delete(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	if (kiln_db_begin(db, &err) < 0)
		return reply_db_error(r, &err, "revoke token");
	if (kiln_db_token_revoke(db, r->arg, &err) < 0) {
		kiln_db_rollback(db);
		if (err && err->code == ENOENT) {
			kiln_error_free(&err);
			return kiln_reply_error(r, 404, "not_found", "no token %s", r->arg);
		}
		return reply_db_error(r, &err, "revoke token");
	}
	if (audit_commit_or_reply(r, db, "token.revoked", json_pack("{s:s}", "token", r->arg),
				  &ret) < 0)
		return ret;
	kiln_logf("token %s revoked (by %s)", r->arg, r->auth.token_id);
	return kiln_reply_empty(r, 204);
}

/* ---- /v1/jobs ---- */

static int h_jobs_get(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	const char *project = query(r, "project"), *state = query(r, "state");
	const char *limit_s = query(r, "limit");
	uint64_t limit = LIST_LIMIT_DEFAULT;
	struct kiln_db *db;
	json_t *l;
	int ret;

	if (project != NULL) {
		if (!kiln_project_name_valid(project))
			return kiln_reply_error(r, 400, "bad_request",
						"project: expected a project name");
		if (!kiln_auth_project_ok(&r->auth, project))
			return kiln_reply_error(r, 403, "forbidden",
						"this token may only see project %s",
						r->auth.project);
	} else if (r->auth.project[0] != '\0') {
		project = r->auth.project;
	}
	if (state != NULL && kiln_job_state_parse(state) < 0)
		return kiln_reply_error(
			r, 400, "bad_request",
			"state: expected one of queued, running, succeeded, failed, "
			"timed_out, cancelled, rejected, interrupted");
	if (limit_s != NULL && kiln_parse_uint(limit_s, 1, LIST_LIMIT_MAX, &limit, &err) < 0) {
		kiln_error_free(&err);
		return kiln_reply_error(r, 400, "bad_request", "limit: expected 1 to %d",
					LIST_LIMIT_MAX);
	}
	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	l = kiln_db_jobs_list(db, project, state, (int)limit, &err);
	if (l == NULL)
		return reply_db_error(r, &err, "list jobs");
	return kiln_reply_json(r, 200, l);
}

static int h_job_get(struct kiln_req *r)
{
	struct kiln_db *db;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL || job_access(r, db, &ret) < 0)
		return ret;
	return reply_job(r, db, 200);
}

static int job_state(struct kiln_db *db, int64_t job, struct kiln_error **err)
{
	struct kiln_job_work w;
	int state;

	memset(&w, 0, sizeof(w));
	if (kiln_db_job_work(db, job, &w, err) < 0)
		return -1;
	state = w.state;
	kiln_db_job_work_free(&w);
	return state;
}

static int h_job_cancel(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	int ret, state;

	if ((db = db_or_reply(r, &ret)) == NULL || job_access(r, db, &ret) < 0)
		return ret;
	/* One transaction: the flag is set, and a queued job is cancelled
	 * at once. A worker that claimed the job checks the flag once its
	 * sandbox is reachable below, so no cancel falls between the two. */
	if (kiln_db_job_request_cancel(db, r->job, &err) < 0) {
		if (err && err->code == EALREADY) {
			kiln_error_free(&err);
			state = job_state(db, r->job, &err);
			kiln_error_free(&err);
			return kiln_reply_error(
				r, 409, "conflict", "job %" PRId64 " is already %s", r->job,
				state < 0 ? "finished"
					  : kiln_job_state_name((enum kiln_job_state)state));
		}
		return reply_db_error(r, &err, "cancel job");
	}
	kiln_server_cancel_running(r->s, r->job);
	kiln_server_notify(r->s);
	if (audit_or_reply(r, db, "job.cancel", json_pack("{s:I}", "job", (json_int_t)r->job),
			   &ret) < 0)
		return ret;
	kiln_logf("job %" PRId64 ": cancel requested (by %s)", r->job, r->auth.token_id);
	return reply_job(r, db, 202);
}

/* A listing of the job's (its artifacts, its egress attempts), for a
 * caller allowed to read the job. */
static int reply_job_listing(struct kiln_req *r,
			     json_t *(*list)(struct kiln_db *, int64_t, struct kiln_error **),
			     const char *what)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	json_t *l;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL || job_access(r, db, &ret) < 0)
		return ret;
	l = list(db, r->job, &err);
	if (l == NULL)
		return reply_db_error(r, &err, what);
	return kiln_reply_json(r, 200, l);
}

static int h_job_artifacts(struct kiln_req *r)
{
	return reply_job_listing(r, kiln_db_artifacts_list, "list artifacts");
}

/* ---- /v1/jobs/{id}/egress, /v1/egress/{project}/suggest ---- */

static int h_job_egress(struct kiln_req *r)
{
	return reply_job_listing(r, kiln_db_egress_list, "list egress attempts");
}

/* What the project's builds asked the proxy for, as the allowlist that
 * would have let all of it through (docs/egress.md). */
static int h_egress_suggest(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	json_t *d, *arr, *allow, *v;
	char *yaml = NULL;
	size_t i, ylen = 0;
	FILE *f;
	bool truncated;
	int ret;

	if (!kiln_auth_project_ok(&r->auth, r->arg))
		return kiln_reply_error(r, 403, "forbidden", "this token may only read project %s",
					r->auth.project);
	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	if (!kiln_db_project_exists(db, r->arg))
		return kiln_reply_error(r, 404, "not_found", "project '%s' does not exist", r->arg);
	/* One more than a policy's allowlist may hold tells the answer was
	 * cut there. */
	d = kiln_db_egress_destinations(db, r->arg, KILN_POLICY_MAX_LIST + 1, &err);
	if (d == NULL)
		return reply_db_error(r, &err, "list egress destinations");
	arr = json_object_get(d, "destinations");
	truncated = json_array_size(arr) > KILN_POLICY_MAX_LIST;
	if (truncated)
		json_array_remove(arr, KILN_POLICY_MAX_LIST);
	allow = json_array();
	f = open_memstream(&yaml, &ylen);
	if (allow == NULL || f == NULL) {
		if (f != NULL)
			fclose(f);
		free(yaml);
		json_decref(allow);
		json_decref(d);
		return kiln_reply_error(r, 500, "internal", "out of memory");
	}
	if (truncated)
		fprintf(f,
			"# more destinations were recorded than an allowlist may hold (%d): "
			"only the first are listed\n",
			KILN_POLICY_MAX_LIST);
	fputs("network:\n  mode: allowlist\n  enforcement: block\n  allow:", f);
	if (json_array_size(arr) == 0)
		fputs(" []", f);
	fputs("\n", f);
	json_array_foreach(arr, i, v)
	{
		const char *h = json_string_value(json_object_get(v, "host"));
		char e[300];

		kiln_egress_dest(e, sizeof(e), h ? h : "",
				 (uint16_t)json_integer_value(json_object_get(v, "port")));
		json_array_append_new(allow, json_string(e));
		fprintf(f, "    - \"%s\"\n", e);
	}
	fclose(f);
	json_object_set_new(d, "project", json_string(r->arg));
	json_object_set_new(d, "allow", allow);
	json_object_set_new(d, "truncated", json_boolean(truncated));
	json_object_set_new(d, "policy", json_string(yaml ? yaml : ""));
	free(yaml);
	return kiln_reply_json(r, 200, d);
}

/* ---- /v1/artifacts/{sha256} ---- */

static int h_artifact(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct MHD_Response *resp;
	struct kiln_db *db;
	uint64_t size = 0;
	int fd = -1, ret;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	/* Not found and not yours look the same: a project token must not
	 * learn what other projects built. */
	if (r->auth.project[0] != '\0' && !kiln_db_project_owns_blob(db, r->auth.project, r->arg))
		return kiln_reply_error(r, 404, "not_found", "no artifact %s", r->arg);
	db_release(r); /* verifying a large blob takes a while */
	if (kiln_cas_open_blob(r->s->cas, r->arg, &fd, &size, &err) < 0) {
		if (err && err->code == ENOENT) {
			kiln_error_free(&err);
			return kiln_reply_error(r, 404, "not_found", "no artifact %s", r->arg);
		}
		if (err && err->code == EBADMSG) {
			kiln_logf("artifact %s failed verification: %s", r->arg, err->msg);
			kiln_error_free(&err);
			return kiln_reply_error(
				r, 500, "internal",
				"artifact %s failed verification; it was quarantined", r->arg);
		}
		return reply_db_error(r, &err, "open artifact");
	}
	resp = MHD_create_response_from_fd64(size, fd);
	if (resp == NULL) {
		close(fd);
		return kiln_reply_error(r, 500, "internal", "out of memory");
	}
	kiln_response_headers(resp, "application/octet-stream");
	MHD_add_response_header(resp, "Kiln-Sha256", r->arg);
	/* Built by a hostile script: never rendered on kilnd's origin. */
	MHD_add_response_header(resp, "Content-Disposition", "attachment");
	return kiln_reply(r, 200, resp);
}

/* ---- /v1/jobs/{id}/log ---- */

#define LOG_IN_CAP (128 * 1024)

struct log_stream {
	struct kiln_server *s;
	int64_t job;
	char path[PATH_MAX];
	int fd; /* -1 until the log exists */
	uint64_t off;
	bool follow, sse, done;
	int sock; /* the client's socket: hang-up detection */
	uint64_t seen;
	uint64_t last_send_ns;
	/* SSE: bytes read but not yet formatted (a partial line) and
	 * formatted bytes not yet handed to libmicrohttpd. */
	char *in;
	size_t in_len;
	char *out;
	size_t out_len, out_pos, out_cap;
};

static void log_stream_free(void *cls)
{
	struct log_stream *ls = cls;

	pthread_mutex_lock(&ls->s->mu);
	ls->s->nstreams--;
	pthread_mutex_unlock(&ls->s->mu);
	if (ls->fd >= 0)
		close(ls->fd);
	free(ls->in);
	free(ls->out);
	free(ls);
}

/* Read what is new in the log into buf. 0 at its current end. */
static ssize_t log_read(struct log_stream *ls, char *buf, size_t max)
{
	ssize_t n;

	if (ls->fd < 0) {
		ls->fd = open(ls->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (ls->fd < 0)
			return errno == ENOENT ? 0 : -1;
	}
	do
		n = pread(ls->fd, buf, max, (off_t)ls->off);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		ls->off += (uint64_t)n;
	return n;
}

static bool out_reserve(struct log_stream *ls, size_t more)
{
	size_t cap;
	char *nb;

	if (ls->out_pos == ls->out_len)
		ls->out_pos = ls->out_len = 0;
	if (ls->out_len + more <= ls->out_cap)
		return true;
	cap = ls->out_len + more + 4096;
	nb = realloc(ls->out, cap);
	if (nb == NULL)
		return false;
	ls->out = nb;
	ls->out_cap = cap;
	return true;
}

static bool out_add(struct log_stream *ls, const char *s, size_t n)
{
	if (!out_reserve(ls, n))
		return false;
	memcpy(ls->out + ls->out_len, s, n);
	ls->out_len += n;
	return true;
}

/* One "event: log" with a data: field per line of in[0..len). A carriage
 * return would end an SSE field early (a forged event): the log store
 * never writes one, and it becomes a space here all the same. */
static bool sse_lines(struct log_stream *ls, const char *in, size_t len)
{
	size_t lines = 1;

	for (size_t i = 0; i < len; i++)
		lines += in[i] == '\n';
	if (!out_reserve(ls, len + lines * 7 + 16))
		return false;
	out_add(ls, "event: log\n", 11);
	while (len > 0) {
		const char *nl = memchr(in, '\n', len);
		size_t n = nl ? (size_t)(nl - in) : len;

		out_add(ls, "data: ", 6);
		for (size_t i = 0; i < n; i++)
			ls->out[ls->out_len++] = in[i] == '\r' ? ' ' : in[i];
		out_add(ls, "\n", 1);
		in += n + (nl ? 1 : 0);
		len -= n + (nl ? 1 : 0);
	}
	return out_add(ls, "\n", 1);
}

/* SSE: read more of the log and format every complete line. Returns the
 * bytes read (0 at the end of the log), -1 on error. */
static ssize_t sse_fill(struct log_stream *ls)
{
	ssize_t n;
	char *nl;
	size_t complete;

	if (ls->in == NULL && (ls->in = malloc(LOG_IN_CAP)) == NULL)
		return -1;
	n = log_read(ls, ls->in + ls->in_len, LOG_IN_CAP - ls->in_len);
	if (n <= 0)
		return n;
	ls->in_len += (size_t)n;
	nl = memrchr(ls->in, '\n', ls->in_len);
	if (nl != NULL)
		complete = (size_t)(nl - ls->in) + 1;
	else if (ls->in_len == LOG_IN_CAP)
		complete = ls->in_len; /* no newline in 128K: send it as it is */
	else
		return n;
	/* Drop the final newline: sse_lines splits on the ones inside. */
	if (!sse_lines(ls, ls->in, complete - (ls->in[complete - 1] == '\n' ? 1 : 0)))
		return -1;
	memmove(ls->in, ls->in + complete, ls->in_len - complete);
	ls->in_len -= complete;
	return n;
}

static void sse_end(struct log_stream *ls, const char *state)
{
	char buf[96];
	int n;

	if (ls->in_len > 0) {
		sse_lines(ls, ls->in, ls->in_len);
		ls->in_len = 0;
	}
	n = snprintf(buf, sizeof(buf), "event: end\ndata: {\"state\": \"%s\"}\n\n", state);
	out_add(ls, buf, (size_t)n);
}

static bool client_gone(int sock)
{
	struct pollfd p = {.fd = sock, .events = POLLRDHUP};

	if (sock < 0)
		return false;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static ssize_t log_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct log_stream *ls = cls;
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	ssize_t n;
	int state;

	for (;;) {
		if (ls->out_pos < ls->out_len) {
			size_t k = ls->out_len - ls->out_pos;
			if (k > max)
				k = max;
			memcpy(buf, ls->out + ls->out_pos, k);
			ls->out_pos += k;
			ls->last_send_ns = kiln_now_ns();
			return (ssize_t)k;
		}
		if (ls->done)
			return MHD_CONTENT_READER_END_OF_STREAM;

		n = ls->sse ? sse_fill(ls) : log_read(ls, buf, max);
		if (n < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (n > 0) {
			if (ls->sse)
				continue;
			ls->last_send_ns = kiln_now_ns();
			return n;
		}
		/* At the end of what was written so far. */
		db = kiln_server_db_acquire(ls->s, &err);
		state = db ? job_state(db, ls->job, &err) : -1;
		kiln_server_db_release(ls->s, db);
		if (state < 0) {
			kiln_logf("log of job %" PRId64 ": %s", ls->job, err ? err->msg : "?");
			kiln_error_free(&err);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (!ls->follow || kiln_job_state_final((enum kiln_job_state)state)) {
			/* The worker closes the log before it records the
			 * final state: one more read drains it. */
			n = ls->sse ? sse_fill(ls) : log_read(ls, buf, max);
			if (n < 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			if (n > 0) {
				if (ls->sse)
					continue;
				return n;
			}
			if (!ls->sse)
				return MHD_CONTENT_READER_END_OF_STREAM;
			sse_end(ls, kiln_job_state_name((enum kiln_job_state)state));
			ls->done = true;
			continue;
		}
		if (kiln_server_stopping(ls->s)) {
			/* Shut-down: running jobs are being cancelled; their
			 * followers get the last lines and the final state
			 * above. Nothing else moves any more. */
			if (!kiln_server_jobs_running(ls->s))
				return MHD_CONTENT_READER_END_OF_STREAM;
			poll(NULL, 0, 20);
			continue;
		}
		if (client_gone(ls->sock))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (ls->sse &&
		    kiln_now_ns() - ls->last_send_ns >= KILN_SSE_KEEPALIVE_SECS * 1000000000ULL) {
			/* A comment line keeps proxies and the client's
			 * timeouts happy and finds a vanished client. */
			out_add(ls, ": keepalive\n\n", 13);
			continue;
		}
		ls->seen = kiln_server_wait(ls->s, ls->seen, 1000);
	}
}

static bool accepts_sse(struct kiln_req *r)
{
	const char *a = header(r, MHD_HTTP_HEADER_ACCEPT);

	return a != NULL && strcasestr(a, "text/event-stream") != NULL;
}

static int h_job_log(struct kiln_req *r)
{
	const char *f = query(r, "follow");
	const union MHD_ConnectionInfo *ci;
	struct MHD_Response *resp;
	struct log_stream *ls;
	struct kiln_db *db;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL || job_access(r, db, &ret) < 0)
		return ret;
	ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return kiln_reply_error(r, 500, "internal", "out of memory");
	ls->s = r->s;
	pthread_mutex_lock(&r->s->mu);
	r->s->nstreams++;
	pthread_mutex_unlock(&r->s->mu);
	ls->job = r->job;
	ls->fd = -1;
	ls->sock = -1;
	ls->follow = f != NULL && (strcmp(f, "1") == 0 || strcmp(f, "true") == 0);
	ls->sse = accepts_sse(r);
	ls->last_send_ns = kiln_now_ns();
	kiln_log_path(r->s->log_dir, r->job, ls->path, sizeof(ls->path));
	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		ls->sock = ci->connect_fd;
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, log_reader, ls,
						 log_stream_free);
	if (resp == NULL) {
		log_stream_free(ls);
		return kiln_reply_error(r, 500, "internal", "out of memory");
	}
	if (ls->sse) {
		kiln_response_headers(resp, "text/event-stream; charset=utf-8");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	} else {
		kiln_response_headers(resp, "text/plain; charset=utf-8");
	}
	/* A follower may wait for output longer than the inactivity
	 * timeout; it ends with the job, the shut-down or the client. */
	if (ls->follow)
		MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	return kiln_reply(r, 200, resp);
}

/* ---- provenance and keys (docs/provenance.md) ---- */

static int h_job_provenance(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_db *db;
	char *env;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	if (job_access(r, db, &ret) < 0)
		return ret;
	env = kiln_db_provenance_get(db, r->job, &err);
	if (env == NULL) {
		if (err != NULL && err->code == ENOENT) {
			kiln_error_free(&err);
			return kiln_reply_error(r, 404, "not_found",
						"job %" PRId64 " has no provenance (not finished, "
						"or no artifacts)",
						r->job);
		}
		return reply_db_error(r, &err, "read provenance");
	}
	return kiln_reply_text(r, 200, env, "application/vnd.dsse.envelope.v1+json");
}

static int h_keys(struct kiln_req *r)
{
	json_t *j = r->s->provkey ? kiln_provkey_json(r->s->provkey) : NULL;

	if (j == NULL)
		return kiln_reply_error(r, 500, "internal", "no provenance key");
	return kiln_reply_json(r, 200, j);
}

/* ---- POST /v1/jobs ---- */

struct kiln_upload {
	struct kiln_server *s;
	struct MHD_PostProcessor *pp;
	struct kiln_cas_writer *w; /* the source, on its way into the CAS */
	uint64_t source_bytes;
	char *spec;
	size_t spec_len;
	char project[PROJECT_MAX + 1];
	size_t project_len;
	/* a signed submission (docs/signing.md): NULL when absent */
	char *manifest, *signature;
	size_t manifest_len, signature_len;
	bool failed; /* the first error is kept and answered at the end */
	unsigned status;
	char code[32];
	char msg[512];
};

static void upload_fail(struct kiln_upload *u, unsigned status, const char *code, const char *fmt,
			...) __attribute__((format(printf, 4, 5)));

static void upload_fail(struct kiln_upload *u, unsigned status, const char *code, const char *fmt,
			...)
{
	va_list ap;

	if (u->failed)
		return;
	u->failed = true;
	u->status = status;
	snprintf(u->code, sizeof(u->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(u->msg, sizeof(u->msg), fmt, ap);
	va_end(ap);
	/* Nothing of a refused upload stays on disk. */
	kiln_cas_abort(u->w);
	u->w = NULL;
}

static void size_text(uint64_t v, char *buf, size_t len)
{
	if (v >= (1ULL << 30) && v % (1ULL << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", v >> 30);
	else if (v >= (1ULL << 20) && v % (1ULL << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", v >> 20);
	else if (v >= 1024 && v % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 "K", v >> 10);
	else
		snprintf(buf, len, "%" PRIu64 " bytes", v);
}

static enum MHD_Result upload_part(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *filename, const char *content_type,
				   const char *transfer_encoding, const char *data, uint64_t off,
				   size_t size)
{
	struct kiln_upload *u = cls;
	struct kiln_error *err = NULL;

	if (u->failed)
		return MHD_NO;
	if (key == NULL) {
		upload_fail(u, 400, "bad_request", "a form part has no name");
		return MHD_NO;
	}
	if (strcmp(key, "source") == 0) {
		if (off == 0 && u->source_bytes > 0) {
			upload_fail(u, 400, "bad_request", "form field 'source' given twice");
			return MHD_NO;
		}
		if (size == 0)
			return MHD_YES;
		if (u->w == NULL &&
		    kiln_cas_writer_new(u->s->cas, u->s->cfg.max_body, &u->w, &err) < 0) {
			kiln_logf("upload: %s", err ? err->msg : "?");
			kiln_error_free(&err);
			upload_fail(u, 500, "internal", "cannot store the source");
			return MHD_NO;
		}
		if (kiln_cas_write(u->w, data, size, &err) < 0) {
			bool big = err && err->code == EFBIG;
			char lim[32];

			if (!big)
				kiln_logf("upload: %s", err ? err->msg : "?");
			kiln_error_free(&err);
			size_text(u->s->cfg.max_body, lim, sizeof(lim));
			if (big)
				upload_fail(u, 413, "too_large", "the source is larger than %s",
					    lim);
			else
				upload_fail(u, 500, "internal", "cannot store the source");
			return MHD_NO;
		}
		u->source_bytes += size;
		return MHD_YES;
	}
	if (strcmp(key, "spec") == 0) {
		char *nb;

		if (off == 0 && u->spec_len > 0) {
			upload_fail(u, 400, "bad_request", "form field 'spec' given twice");
			return MHD_NO;
		}
		if (u->spec_len + size > KILN_SPEC_MAX_BYTES) {
			upload_fail(u, 400, "spec_invalid", "kiln.yml is larger than %dK",
				    KILN_SPEC_MAX_BYTES / 1024);
			return MHD_NO;
		}
		nb = realloc(u->spec, u->spec_len + size + 1);
		if (nb == NULL) {
			upload_fail(u, 500, "internal", "out of memory");
			return MHD_NO;
		}
		u->spec = nb;
		memcpy(u->spec + u->spec_len, data, size);
		u->spec_len += size;
		u->spec[u->spec_len] = '\0';
		return MHD_YES;
	}
	if (strcmp(key, "manifest") == 0 || strcmp(key, "signature") == 0) {
		bool m = key[0] == 'm';
		char **buf = m ? &u->manifest : &u->signature;
		size_t *len = m ? &u->manifest_len : &u->signature_len;
		size_t cap = m ? KILN_MANIFEST_MAX : SIGNATURE_MAX;
		char *nb;

		if (off == 0 && *buf != NULL) {
			upload_fail(u, 400, "bad_request", "form field '%s' given twice", key);
			return MHD_NO;
		}
		if (*len + size > cap) {
			upload_fail(u, 400, "manifest_invalid",
				    "form field '%s' is larger than %zu bytes", key, cap);
			return MHD_NO;
		}
		nb = realloc(*buf, *len + size + 1);
		if (nb == NULL) {
			upload_fail(u, 500, "internal", "out of memory");
			return MHD_NO;
		}
		*buf = nb;
		memcpy(nb + *len, data, size);
		*len += size;
		nb[*len] = '\0';
		return MHD_YES;
	}
	if (strcmp(key, "project") == 0) {
		if (off == 0 && u->project_len > 0) {
			upload_fail(u, 400, "bad_request", "form field 'project' given twice");
			return MHD_NO;
		}
		if (u->project_len + size > PROJECT_MAX) {
			upload_fail(u, 400, "bad_request", "project: name too long");
			return MHD_NO;
		}
		memcpy(u->project + u->project_len, data, size);
		u->project_len += size;
		u->project[u->project_len] = '\0';
		return MHD_YES;
	}
	{
		char safe[64];
		kiln_sanitize(safe, sizeof(safe), key);
		upload_fail(u, 400, "bad_request",
			    "unknown form field '%s' (expected project, spec, source, manifest, "
			    "signature)",
			    safe);
	}
	return MHD_NO;
}

static int upload_begin(struct kiln_req *r)
{
	const char *ct = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	struct kiln_upload *u;

	if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0)
		return kiln_reply_error(r, 400, "bad_request",
					"expected multipart/form-data with the parts project, "
					"spec and source");
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return kiln_reply_error(r, 500, "internal", "out of memory");
	u->s = r->s;
	u->pp = MHD_create_post_processor(r->conn, POST_BUFFER, upload_part, u);
	if (u->pp == NULL) {
		free(u);
		return kiln_reply_error(r, 400, "bad_request",
					"cannot read this multipart/form-data body (boundary?)");
	}
	r->upload = u;
	return MHD_YES;
}

int kiln_api_upload(struct kiln_req *r, const char *data, size_t len)
{
	struct kiln_upload *u = r->upload;

	if (u->failed)
		return MHD_YES; /* read and dropped: the error is answered at the end */
	if (MHD_post_process(u->pp, data, len) != MHD_YES)
		upload_fail(u, 400, "bad_request", "malformed multipart/form-data body");
	return MHD_YES;
}

static int reply_spec_error(struct kiln_req *r, const struct kiln_spec_error *se)
{
	char msg[700];
	json_t *j;

	if (se->line > 0)
		snprintf(msg, sizeof(msg), "kiln.yml:%d:%d: %s", se->line, se->column, se->message);
	else
		snprintf(msg, sizeof(msg), "kiln.yml: %s", se->message);
	j = json_pack("{s:{s:s,s:s}}", "error", "code", "spec_invalid", "message", msg);
	if (j != NULL && se->line > 0) {
		json_t *e = json_object_get(j, "error");
		json_object_set_new(e, "line", json_integer(se->line));
		json_object_set_new(e, "column", json_integer(se->column));
	}
	snprintf(r->err_code, sizeof(r->err_code), "spec_invalid");
	return kiln_reply_json(r, 400, j);
}

struct submission {
	struct kiln_req *r;
	const char *project, *spec_sha256, *source_sha256, *policy_digest, *signer_key;
	uint64_t source_bytes;
};

/* Inside the job insert's transaction (kiln_job_new.in_tx). */
static int record_submission(void *ctx, struct kiln_db *db, int64_t id, struct kiln_error **err)
{
	struct submission *sub = ctx;
	char actor[64];
	json_t *f;
	int rc;

	actor_of(sub->r, actor, sizeof(actor));
	f = json_pack("{s:I,s:s,s:s,s:s,s:I}", "job", (json_int_t)id, "project", sub->project,
		      "spec_sha256", sub->spec_sha256, "source_sha256", sub->source_sha256,
		      "source_bytes", (json_int_t)sub->source_bytes);
	if (f != NULL && sub->policy_digest != NULL && sub->policy_digest[0] != '\0')
		json_object_set_new(f, "policy_digest", json_string(sub->policy_digest));
	if (f != NULL && sub->signer_key != NULL)
		json_object_set_new(f, "signer_key", json_string(sub->signer_key));
	rc = kiln_audit_append(sub->r->s, db, "submission.accepted", actor, f, err);
	json_decref(f);
	return rc;
}

/* A refused signed (or unsigned) submission: recorded, logged, answered. */
static int reply_rejected(struct kiln_req *r, struct kiln_db *db, struct kiln_upload *u,
			  const struct kiln_reject *rej)
{
	struct kiln_error *err = NULL;
	char safe[600];

	upload_fail(u, rej->status, rej->code, "%s", rej->msg);
	kiln_sanitize(safe, sizeof(safe), rej->msg);
	if (rej->status < 500) {
		kiln_logf("submission to %s refused (%s, by %s): %s", u->project, rej->code,
			  r->auth.token_id, safe);
		if (kiln_db_rejection_add(db, u->project, r->auth.token_id, rej->code,
					  rej->key_id[0] ? rej->key_id : NULL, safe, &err) < 0) {
			kiln_logf("record the refusal: %s", err ? err->msg : "?");
			kiln_error_free(&err);
		}
	}
	return kiln_reply_error(r, rej->status, rej->code, "%s", rej->msg);
}

static int h_jobs_post(struct kiln_req *r)
{
	struct submission sub;
	struct kiln_upload *u = r->upload;
	struct kiln_error *err = NULL;
	struct kiln_spec_error se;
	struct kiln_spec *spec = NULL;
	struct kiln_job_new jn;
	char source_hex[KILN_SHA256_HEX], spec_hex[KILN_SHA256_HEX], lim[32];
	char policy_digest[KILN_POLICY_DIGEST_MAX];
	uint64_t source_size = 0;
	json_t *spec_json;
	char *spec_text;
	struct kiln_db *db;
	struct kiln_signed signed_;
	struct kiln_reject rej;
	int64_t id = 0, queued;
	int ret;

	memset(&rej, 0, sizeof(rej));
	memset(&signed_, 0, sizeof(signed_));
	if (r->body_too_large) {
		size_text(r->s->cfg.max_body, lim, sizeof(lim));
		upload_fail(u, 413, "too_large", "the request body is larger than %s", lim);
	}
	if (!u->failed) {
		/* Finishing the parse may still deliver data. */
		enum MHD_Result ok = MHD_destroy_post_processor(u->pp);
		u->pp = NULL;
		if (ok != MHD_YES)
			upload_fail(u, 400, "bad_request", "incomplete multipart/form-data body");
	}
	if (u->failed)
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);

	if (u->project_len == 0) {
		upload_fail(u, 400, "bad_request", "missing form field 'project'");
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}
	if (!kiln_project_name_valid(u->project)) {
		upload_fail(u, 400, "bad_request", "project: expected a project name");
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}
	if (!kiln_auth_project_ok(&r->auth, u->project)) {
		upload_fail(u, 403, "forbidden", "this token may only submit to project %s",
			    r->auth.project);
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}
	if ((db = db_or_reply(r, &ret)) == NULL) {
		upload_fail(u, 500, "internal", "database");
		return ret;
	}
	if (!kiln_db_project_exists(db, u->project)) {
		upload_fail(u, 404, "not_found", "project '%s' does not exist", u->project);
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}
	if (u->spec_len == 0) {
		upload_fail(u, 400, "bad_request", "missing form field 'spec' (the kiln.yml)");
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}
	if (memchr(u->spec, '\0', u->spec_len) != NULL || !kiln_utf8_valid(u->spec, u->spec_len)) {
		upload_fail(u, 400, "spec_invalid", "kiln.yml: not UTF-8 text");
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}
	memset(&se, 0, sizeof(se));
	if (kiln_spec_parse(u->spec, u->spec_len, &r->s->cfg.spec_limits, &spec, &se) < 0) {
		upload_fail(u, 400, "spec_invalid", "%s", se.message);
		return reply_spec_error(r, &se);
	}
	if (u->w == NULL || u->source_bytes == 0) {
		kiln_spec_free(spec);
		upload_fail(u, 400, "archive_invalid",
			    "missing or empty form field 'source' (a .tar.gz of the source tree)");
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}
	/* A signed submission: checked against digests computed here, before
	 * anything is stored. */
	kiln_sha256_buf(u->spec, u->spec_len, spec_hex);
	if (kiln_cas_writer_digest(u->w, source_hex) < 0 ||
	    kiln_submission_check(r->s, db, u->project, spec_hex, source_hex, u->manifest,
				  u->manifest_len, u->signature, u->signature_len, &signed_,
				  &rej) < 0) {
		kiln_spec_free(spec);
		if (rej.status == 0)
			return kiln_reply_error(r, 500, "internal", "cannot hash the source");
		return reply_rejected(r, db, u, &rej);
	}
	{
		struct kiln_policy_set *ps = kiln_policy_current();
		char msg[512];

		if (ps == NULL) {
			kiln_spec_free(spec);
			return kiln_reply_error(r, 503, "unavailable", "no policy set is loaded");
		}
		if (kiln_policy_apply(kiln_policy_lookup(ps, u->project), spec, signed_.present,
				      msg, sizeof(msg)) < 0) {
			kiln_policy_set_unref(ps);
			kiln_spec_free(spec);
			upload_fail(u, 403, "policy_denied", "%s", msg);
			return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
		}
		snprintf(policy_digest, sizeof(policy_digest), "%s",
			 kiln_policy_lookup(ps, u->project)->digest);
		kiln_policy_set_unref(ps);
	}
	spec_json = kiln_spec_to_json(spec);
	spec_text = spec_json ? json_dumps(spec_json, JSON_COMPACT) : NULL;
	json_decref(spec_json);
	if (spec_text == NULL) {
		kiln_spec_free(spec);
		upload_fail(u, 500, "internal", "out of memory");
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}

	/* A full queue is refused before the source is stored; the insert
	 * checks again, atomically, for submits racing this one. */
	queued = kiln_db_jobs_queued(db, u->project, &err);
	if (queued < 0) {
		free(spec_text);
		kiln_spec_free(spec);
		return reply_db_error(r, &err, "count queued jobs");
	}
	if ((uint64_t)queued >= r->s->cfg.max_queued) {
		free(spec_text);
		kiln_spec_free(spec);
		upload_fail(u, 429, "too_many",
			    "project %s already has %" PRId64
			    " queued jobs (limits.queued_per_project); try again later",
			    u->project, queued);
		return kiln_reply_error(r, u->status, u->code, "%s", u->msg);
	}

	/* Everything checked: make the source durable, then the job. */
	if (kiln_cas_commit(u->w, source_hex, &source_size, &err) < 0) {
		u->w = NULL;
		free(spec_text);
		kiln_spec_free(spec);
		return reply_db_error(r, &err, "store source");
	}
	u->w = NULL;
	memset(&jn, 0, sizeof(jn));
	jn.project = u->project;
	jn.spec_text = u->spec;
	jn.spec_json = spec_text;
	jn.spec_sha256 = spec_hex;
	jn.source_sha256 = source_hex;
	jn.source_bytes = source_size;
	jn.retry_safe = spec->retry;
	jn.submitted_by = r->auth.token_id;
	jn.max_queued = r->s->cfg.max_queued;
	jn.policy_digest = policy_digest;
	jn.signer_key = signed_.present ? signed_.key_id : NULL;
	jn.nonce = signed_.present ? signed_.nonce : NULL;
	/* submission.accepted commits with the job, or neither does. */
	sub.r = r;
	sub.project = u->project;
	sub.spec_sha256 = spec_hex;
	sub.source_sha256 = source_hex;
	sub.source_bytes = source_size;
	sub.policy_digest = policy_digest;
	sub.signer_key = jn.signer_key;
	jn.in_tx = record_submission;
	jn.in_tx_ctx = &sub;
	ret = kiln_db_job_insert(db, &jn, &id, &err);
	free(spec_text);
	kiln_spec_free(spec);
	if (ret < 0 && err != NULL && err->code == EAGAIN) {
		/* Lost a race for the last place: the source blob stays in the
		 * CAS (content-addressed, shared with any later submit of it). */
		kiln_error_free(&err);
		return kiln_reply_error(r, 429, "too_many",
					"project %s already has %" PRIu64
					" queued jobs (limits.queued_per_project); try again later",
					u->project, r->s->cfg.max_queued);
	}
	if (ret < 0 && err != NULL && err->code == EEXIST && signed_.present) {
		/* The same nonce won a race with this request. */
		kiln_error_free(&err);
		memset(&rej, 0, sizeof(rej));
		rej.status = 409;
		snprintf(rej.code, sizeof(rej.code), "nonce_replayed");
		snprintf(rej.key_id, sizeof(rej.key_id), "%s", signed_.key_id);
		snprintf(rej.msg, sizeof(rej.msg),
			 "the manifest's nonce was used already: this signed submission is a "
			 "replay");
		return reply_rejected(r, db, u, &rej);
	}
	if (ret < 0)
		return reply_db_error(r, &err, "record job");
	r->job = id;
	kiln_logf("job %" PRId64 " queued (project %s, source %" PRIu64 " bytes, by %s)", id,
		  u->project, source_size, r->auth.token_id);
	ret = reply_job(r, db, 201);
	kiln_server_notify_queue(r->s);
	return ret;
}

static void upload_free(struct kiln_upload *u)
{
	if (u == NULL)
		return;
	if (u->pp != NULL)
		MHD_destroy_post_processor(u->pp);
	kiln_cas_abort(u->w);
	free(u->spec);
	free(u->manifest);
	free(u->signature);
	free(u);
}

/* ---- dispatch ---- */

static bool content_length_over(struct kiln_req *r)
{
	const char *cl = header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	struct kiln_error *err = NULL;
	uint64_t v;

	if (cl == NULL)
		return false;
	if (kiln_parse_uint(cl, 0, UINT64_MAX, &v, &err) < 0) {
		kiln_error_free(&err);
		return false; /* libmicrohttpd refuses a bad Content-Length itself */
	}
	return v > r->body_max;
}

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
				       size_t key_size, const char *value, size_t value_size)
{
	size_t *total = cls;

	*total += key_size + value_size + 4; /* ": " and CRLF */
	return MHD_YES;
}

/* libmicrohttpd's own limit is its memory pool (431 past it); the
 * documented limit is checked here. */
static bool headers_too_large(struct kiln_req *r)
{
	size_t total = strlen(r->url);

	MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, add_header_size, &total);
	return total > KILN_HTTP_HEADERS_MAX;
}

/* "GET, HEAD, POST": the Allow header of a 405. */
static void allow_add(char *buf, size_t cap, const char *method)
{
	size_t len = strlen(buf);

	if (strstr(buf, method) != NULL)
		return;
	snprintf(buf + len, cap - len, "%s%s%s", len ? ", " : "", method,
		 strcmp(method, "GET") == 0 ? ", HEAD" : "");
}

static int api_begin(struct kiln_req *r)
{
	const struct endpoint *ep = NULL;
	const char *method;
	enum route route = parse_route(r);
	enum kiln_auth_result ar;
	struct kiln_db *db;
	char lim[32];
	int ret;

	r->route = -1;
	if (headers_too_large(r))
		return kiln_reply_error(r, 431, "too_large",
					"the request headers are larger than %dK",
					KILN_HTTP_HEADERS_MAX / 1024);
	if (route == R_NONE)
		return kiln_reply_error(r, 404, "not_found", "no such endpoint");
	/* HEAD is GET without the body (libmicrohttpd drops it). */
	method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		if (endpoints[i].route != route)
			continue;
		if (strcmp(endpoints[i].method, method) == 0) {
			ep = &endpoints[i];
			r->route = (int)i;
			break;
		}
		allow_add(r->allow, sizeof(r->allow), endpoints[i].method);
	}
	if (ep == NULL)
		return kiln_reply_error(r, 405, "method_not_allowed",
					"this method is not allowed on this endpoint");
	if (ep->scope == 0)
		return MHD_YES;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	/* The dashboard's session cookie stands in for the token on GET
	 * requests only (ui.c): nothing that changes state rides on a cookie. */
	if (header(r, MHD_HTTP_HEADER_AUTHORIZATION) == NULL && strcmp(r->method, "GET") == 0)
		ar = kiln_ui_cookie_auth(r, db);
	else
		ar = kiln_auth_check(db, header(r, MHD_HTTP_HEADER_AUTHORIZATION), &r->auth);
	switch (ar) {
	case KILN_AUTH_OK: break;
	case KILN_AUTH_MISSING:
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "missing");
		return kiln_reply_error(r, 401, "unauthorized",
					"missing 'Authorization: Bearer <token>'");
	case KILN_AUTH_INVALID:
		kiln_metrics_count(KILN_M_AUTH_FAILURES, r->via_cookie ? "session" : "invalid");
		return kiln_reply_error(r, 401, "unauthorized",
					"invalid, expired or revoked token");
	case KILN_AUTH_INTERNAL:
	default: return kiln_reply_error(r, 500, "internal", "authentication failed");
	}
	r->conn_slot = kiln_auth_conn_acquire(r->s, r->auth.token_id);
	if (r->conn_slot < 0)
		return kiln_reply_error(r, 429, "too_many",
					"this token already has %u open requests",
					r->s->cfg.conns_per_token);
	if (!kiln_auth_has_scope(&r->auth, ep->scope)) {
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "scope");
		return kiln_reply_error(r, 403, "forbidden", "this token lacks the '%s' scope",
					ep->scope == KILN_SCOPE_ADMIN	 ? "admin"
					: ep->scope == KILN_SCOPE_SUBMIT ? "submit"
									 : "read");
	}
	if (ep->all_projects && r->auth.project[0] != '\0') {
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "project");
		return kiln_reply_error(r, 403, "forbidden",
					"this needs a token that is not tied to a project");
	}

	switch (ep->body) {
	case B_JSON: r->json_body = true; break;
	case B_MULTIPART: r->body_max = r->s->cfg.max_body; break;
	case B_NONE:
	default: break;
	}
	if (content_length_over(r)) {
		size_text(r->body_max, lim, sizeof(lim));
		return kiln_reply_error(r, 413, "too_large", "the request body is larger than %s",
					lim);
	}
	if (ep->body == B_MULTIPART)
		return upload_begin(r);
	return MHD_YES;
}

static int h_audit(struct kiln_req *r, const char *what)
{
	struct kiln_db *db;
	int ret;

	if ((db = db_or_reply(r, &ret)) == NULL)
		return ret;
	return kiln_audit_http(r, db, what);
}

/* A refused POST /v1/jobs, with its reason. */
static void audit_rejection(struct kiln_req *r)
{
	struct kiln_upload *u = r->upload;
	struct kiln_error *err = NULL;
	char actor[64], project[PROJECT_MAX + 1];
	json_t *f;

	if (r->route < 0 || endpoints[r->route].route != R_JOBS ||
	    endpoints[r->route].body != B_MULTIPART || r->status < 400)
		return;
	actor_of(r, actor, sizeof(actor));
	kiln_sanitize(project, sizeof(project), u && u->project_len ? u->project : "");
	f = json_pack("{s:i,s:s,s:s}", "status", (int)r->status, "code",
		      u && u->failed ? u->code : "internal", "reason",
		      u && u->failed ? u->msg : r->error_msg);
	if (f != NULL && project[0] != '\0')
		json_object_set_new(f, "project", json_string(project));
	if (kiln_audit_append(r->s, r->db, "submission.rejected", actor, f, &err) < 0) {
		kiln_logf("%s", err ? err->msg : "audit log: record submission.rejected failed");
		kiln_error_free(&err);
	}
	json_decref(f);
}

static int api_finish(struct kiln_req *r)
{
	const struct endpoint *ep;
	char lim[32];

	if (r->route < 0)
		return kiln_reply_error(r, 404, "not_found", "no such endpoint");
	ep = &endpoints[r->route];
	if (r->body_too_large && ep->body != B_MULTIPART) {
		size_text(r->body_max, lim, sizeof(lim));
		return kiln_reply_error(r, 413, "too_large", "the request body is larger than %s",
					lim);
	}
	switch (ep->route) {
	case R_HEALTH: return h_health(r);
	case R_PROJECTS: return ep->body == B_JSON ? h_projects_post(r) : h_projects_get(r);
	case R_TOKENS: return ep->body == B_JSON ? h_tokens_post(r) : h_tokens_get(r);
	case R_TOKEN: return h_token_delete(r);
	case R_JOBS: return ep->body == B_MULTIPART ? h_jobs_post(r) : h_jobs_get(r);
	case R_JOB: return h_job_get(r);
	case R_JOB_LOG: return h_job_log(r);
	case R_JOB_CANCEL: return h_job_cancel(r);
	case R_JOB_ARTIFACTS: return h_job_artifacts(r);
	case R_ARTIFACT: return h_artifact(r);
	case R_POLICIES_RELOAD: return kiln_api_policy_reload(r);
	case R_POLICY: return kiln_api_policy_show(r, r->arg);
	case R_SECRETS: return kiln_api_secrets_list(r);
	case R_SECRET:
		return ep->body == B_JSON ? kiln_api_secret_set(r) : kiln_api_secret_delete(r);
	case R_JOB_EGRESS: return h_job_egress(r);
	case R_EGRESS_SUGGEST: return h_egress_suggest(r);
	case R_JOB_PROVENANCE: return h_job_provenance(r);
	case R_KEYS: return h_keys(r);
	case R_AUDIT_KEY: return h_audit(r, "key");
	case R_AUDIT_CHECKPOINT: return h_audit(r, "checkpoint");
	case R_AUDIT_TILE: return h_audit(r, r->arg);
	case R_NONE:
	default: return kiln_reply_error(r, 404, "not_found", "no such endpoint");
	}
}

/* The handle is held only while a handler runs, never while a body
 * arrives or an answer streams. */
/* A refused job submission is counted by its error code, whichever step
 * refused it (metrics.h). */
static void count_rejection(struct kiln_req *r)
{
	if (r->route >= 0 && endpoints[r->route].body == B_MULTIPART && r->err_code[0] != '\0' &&
	    r->responded) {
		kiln_metrics_count(KILN_M_REJECTED, r->err_code);
		r->route = -1;
	}
}

int kiln_api_begin(struct kiln_req *r)
{
	int ret;

	/* /metrics and the dashboard (ui.c) */
	if (kiln_ui_owns(r->url)) {
		r->ui = true;
		r->route = -1;
		if (headers_too_large(r))
			return kiln_reply_error(r, 431, "too_large",
						"the request headers are larger than %dK",
						KILN_HTTP_HEADERS_MAX / 1024);
		ret = kiln_ui_begin(r);
		if (r->responded)
			audit_refusal(r);
		db_release(r);
		return ret;
	}
	ret = api_begin(r);
	/* (before count_rejection, which marks the request as counted) */
	if (r->responded) {
		audit_refusal(r);
		audit_rejection(r);
	}
	count_rejection(r);
	db_release(r);
	return ret;
}

int kiln_api_finish(struct kiln_req *r)
{
	int ret;

	if (r->ui) {
		ret = kiln_ui_finish(r);
		audit_refusal(r);
		db_release(r);
		return ret;
	}
	ret = api_finish(r);
	audit_refusal(r);
	audit_rejection(r);
	count_rejection(r);
	db_release(r);
	return ret;
}

void kiln_api_done(struct kiln_req *r)
{
	db_release(r);
	upload_free(r->upload);
	r->upload = NULL;
}
