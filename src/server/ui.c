/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Everything kilnd serves outside the v1 API of api.c: GET /metrics
 * (Prometheus text, docs/metrics.md), the dashboard's static files, its
 * login (POST /login, /logout) and the few read-only endpoints only the
 * dashboard needs (GET /v1/session, /v1/security, /v1/alerts);
 * docs/dashboard.md.
 *
 * Sessions: POST /login with a token creates a random 256-bit session id;
 * the browser gets it in an HttpOnly, Secure, SameSite=Strict cookie and
 * kilnd keeps only its SHA-256, with the token id and an expiry, in memory
 * (a restart logs everyone out). The token is checked again (revoked?
 * expired?) on every request the cookie authenticates. The cookie stands
 * in for the token on GET requests only (api.c); /login and /logout want
 * the header X-Kiln-Login, which a cross-site form cannot send and a
 * cross-site fetch cannot send without a CORS preflight kilnd never
 * grants, and a matching Origin when the browser sends one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "core/util.h"
#include "server/assets.h"
#include "server/metrics.h"
#include "server/server.h"
#include "store/stats.h"

#define SESSION_MAX	 4096
#define SESSION_TTL	 (12 * 3600)
#define SESSION_B64	 43 /* base64url of 32 bytes, no padding */
#define SESSION_COOKIE	 "kiln_session"
#define ALERTS_LIMIT_MAX 500

/* The dashboard's policy: its own files only, nothing inline, no frames. */
#define DASHBOARD_CSP                                                                              \
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "            \
	"img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

enum ui_route {
	U_NONE,
	U_METRICS,
	U_INDEX,
	U_ASSET,
	U_LOGIN,
	U_LOGOUT,
	U_SESSION,
	U_SECURITY,
	U_ALERTS,
};

struct session {
	unsigned char hash[crypto_hash_sha256_BYTES];
	char token_id[32];
	int64_t expires;
};

static struct {
	pthread_mutex_t mu;
	struct session s[SESSION_MAX];
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static enum ui_route ui_parse(const char *url, const struct kiln_asset **asset)
{
	if (strcmp(url, "/metrics") == 0)
		return U_METRICS;
	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
		return U_INDEX;
	if (strcmp(url, "/login") == 0)
		return U_LOGIN;
	if (strcmp(url, "/logout") == 0)
		return U_LOGOUT;
	if (strcmp(url, "/v1/session") == 0)
		return U_SESSION;
	if (strcmp(url, "/v1/security") == 0)
		return U_SECURITY;
	if (strcmp(url, "/v1/alerts") == 0)
		return U_ALERTS;
	if (strncmp(url, "/ui/", 4) == 0) {
		for (const struct kiln_asset *a = kiln_assets; a->name != NULL; a++)
			if (strcmp(url + 4, a->name) == 0 && strcmp(a->name, "index.html") != 0) {
				*asset = a;
				return U_ASSET;
			}
	}
	return U_NONE;
}

bool kiln_ui_owns(const char *url)
{
	const struct kiln_asset *a = NULL;
	enum ui_route u;

	if (strncmp(url, "/v1/", 4) != 0)
		return true;
	u = ui_parse(url, &a);
	return u == U_SESSION || u == U_SECURITY || u == U_ALERTS;
}

static const char *hdr(struct kiln_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static struct kiln_db *ui_db(struct kiln_req *r, int *ret)
{
	return kiln_req_db(r, ret);
}

/* ---- sessions ---- */

/* The session id from the Cookie header, or false. */
static bool cookie_session(struct kiln_req *r, char id[SESSION_B64 + 1])
{
	const char *c = hdr(r, MHD_HTTP_HEADER_COOKIE), *p;
	size_t klen = strlen(SESSION_COOKIE);

	if (c == NULL)
		return false;
	for (p = c; (p = strstr(p, SESSION_COOKIE "=")) != NULL; p += klen) {
		const char *v, *end;

		if (p != c && p[-1] != ' ' && p[-1] != ';')
			continue;
		v = p + klen + 1;
		end = strchr(v, ';');
		if ((end ? (size_t)(end - v) : strlen(v)) != SESSION_B64 ||
		    !kiln_b64url_valid(v, SESSION_B64))
			return false;
		memcpy(id, v, SESSION_B64);
		id[SESSION_B64] = '\0';
		return true;
	}
	return false;
}

static void session_hash(const char *id, unsigned char out[crypto_hash_sha256_BYTES])
{
	crypto_hash_sha256(out, (const unsigned char *)id, SESSION_B64);
}

/* Under S.mu: the session's slot, or -1. Expired ones are cleared. */
static int session_find(const unsigned char hash[crypto_hash_sha256_BYTES], int64_t now)
{
	for (int i = 0; i < SESSION_MAX; i++) {
		struct session *e = &S.s[i];

		if (e->expires == 0)
			continue;
		if (e->expires <= now) {
			sodium_memzero(e, sizeof(*e));
			continue;
		}
		if (sodium_memcmp(e->hash, hash, sizeof(e->hash)) == 0)
			return i;
	}
	return -1;
}

static int session_create(const char *token_id, char id[SESSION_B64 + 1])
{
	unsigned char raw[32], hash[crypto_hash_sha256_BYTES];
	int64_t now = (int64_t)time(NULL);
	int slot = -1, oldest = 0;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(id, SESSION_B64 + 1, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	session_hash(id, hash);
	pthread_mutex_lock(&S.mu);
	for (int i = 0; i < SESSION_MAX; i++) {
		if (S.s[i].expires <= now) {
			slot = i;
			break;
		}
		if (S.s[i].expires < S.s[oldest].expires)
			oldest = i;
	}
	/* Full: the session closest to its end goes. */
	if (slot < 0)
		slot = oldest;
	memcpy(S.s[slot].hash, hash, sizeof(hash));
	snprintf(S.s[slot].token_id, sizeof(S.s[slot].token_id), "%s", token_id);
	S.s[slot].expires = now + SESSION_TTL;
	pthread_mutex_unlock(&S.mu);
	return 0;
}

static void session_drop(const char *id)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	int i;

	session_hash(id, hash);
	pthread_mutex_lock(&S.mu);
	i = session_find(hash, (int64_t)time(NULL));
	if (i >= 0)
		sodium_memzero(&S.s[i], sizeof(S.s[i]));
	pthread_mutex_unlock(&S.mu);
}

enum kiln_auth_result kiln_ui_cookie_auth(struct kiln_req *r, struct kiln_db *db)
{
	struct kiln_error *err = NULL;
	struct kiln_token_row row;
	unsigned char hash[crypto_hash_sha256_BYTES];
	char id[SESSION_B64 + 1], token_id[32] = "";
	int64_t now = (int64_t)time(NULL);
	int i;

	memset(&r->auth, 0, sizeof(r->auth));
	if (!cookie_session(r, id))
		return KILN_AUTH_MISSING;
	r->via_cookie = true;
	session_hash(id, hash);
	sodium_memzero(id, sizeof(id));
	pthread_mutex_lock(&S.mu);
	i = session_find(hash, now);
	if (i >= 0)
		snprintf(token_id, sizeof(token_id), "%s", S.s[i].token_id);
	pthread_mutex_unlock(&S.mu);
	if (i < 0)
		return KILN_AUTH_INVALID;
	/* The token behind the session is still good? */
	memset(&row, 0, sizeof(row));
	if (kiln_db_token_get(db, token_id, &row, &err) < 0) {
		bool gone = err != NULL && err->code == ENOENT;
		kiln_error_free(&err);
		return gone ? KILN_AUTH_INVALID : KILN_AUTH_INTERNAL;
	}
	if (row.revoked_at != 0 || (row.expires_at != 0 && row.expires_at <= now))
		return KILN_AUTH_INVALID;
	snprintf(r->auth.token_id, sizeof(r->auth.token_id), "%s", row.id);
	snprintf(r->auth.project, sizeof(r->auth.project), "%s", row.project);
	r->auth.scopes = row.scopes;
	return KILN_AUTH_OK;
}

/* A bearer token, else the session cookie. 0: r->auth is set; otherwise
 * the answer is queued in *ret. */
static int ui_authenticate(struct kiln_req *r, struct kiln_db *db, int *ret)
{
	const char *h = hdr(r, MHD_HTTP_HEADER_AUTHORIZATION);
	enum kiln_auth_result ar;

	ar = h != NULL ? kiln_auth_check(db, h, &r->auth) : kiln_ui_cookie_auth(r, db);
	switch (ar) {
	case KILN_AUTH_OK: return 0;
	case KILN_AUTH_MISSING:
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "missing");
		*ret = kiln_reply_error(r, 401, "unauthorized",
					"missing 'Authorization: Bearer <token>'");
		return -1;
	case KILN_AUTH_INVALID:
		kiln_metrics_count(KILN_M_AUTH_FAILURES, r->via_cookie ? "session" : "invalid");
		*ret = kiln_reply_error(r, 401, "unauthorized",
					"invalid, expired or revoked token");
		return -1;
	case KILN_AUTH_INTERNAL:
	default: *ret = kiln_reply_error(r, 500, "internal", "authentication failed"); return -1;
	}
}

/* Authenticated with one of `scopes`, and for all projects when asked. */
static int ui_require(struct kiln_req *r, unsigned scopes, bool all_projects, int *ret)
{
	struct kiln_db *db;

	if ((db = ui_db(r, ret)) == NULL)
		return -1;
	if (ui_authenticate(r, db, ret) < 0)
		return -1;
	/* any one of them */
	if ((r->auth.scopes & scopes) == 0) {
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "scope");
		*ret = kiln_reply_error(r, 403, "forbidden", "this token lacks the 'read' scope");
		return -1;
	}
	if (all_projects && r->auth.project[0] != '\0') {
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "project");
		*ret = kiln_reply_error(r, 403, "forbidden",
					"this needs a token that is not tied to a project");
		return -1;
	}
	/* The same per-token cap on open requests as the API. */
	r->conn_slot = kiln_auth_conn_acquire(r->s, r->auth.token_id);
	if (r->conn_slot < 0) {
		*ret = kiln_reply_error(r, 429, "too_many",
					"this token already has %u open requests",
					r->s->cfg.conns_per_token);
		return -1;
	}
	return 0;
}

/* /login and /logout: X-Kiln-Login present, and Origin (when sent) naming
 * this server. */
static bool same_origin(struct kiln_req *r)
{
	const char *o = hdr(r, "Origin"), *host = hdr(r, MHD_HTTP_HEADER_HOST), *p;

	if (hdr(r, "X-Kiln-Login") == NULL)
		return false;
	if (o == NULL)
		return true;
	if (host == NULL)
		return false;
	if (strncmp(o, "http://", 7) == 0)
		p = o + 7;
	else if (strncmp(o, "https://", 8) == 0)
		p = o + 8;
	else
		return false;
	return strcmp(p, host) == 0;
}

/* ---- static files ---- */

static int reply_asset(struct kiln_req *r, const struct kiln_asset *a)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(a->size, (void *)a->data, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy", DASHBOARD_CSP);
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	return kiln_reply(r, 200, resp);
}

static const struct kiln_asset *asset_named(const char *name)
{
	for (const struct kiln_asset *a = kiln_assets; a->name != NULL; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

/* ---- /login, /logout, /v1/session ---- */

static json_t *whoami(const struct kiln_auth *a)
{
	json_t *o = json_object(), *sc = json_array();

	if (a->scopes & KILN_SCOPE_SUBMIT)
		json_array_append_new(sc, json_string("submit"));
	if (a->scopes & KILN_SCOPE_READ)
		json_array_append_new(sc, json_string("read"));
	if (a->scopes & KILN_SCOPE_ADMIN)
		json_array_append_new(sc, json_string("admin"));
	json_object_set_new(o, "token_id", json_string(a->token_id));
	json_object_set_new(o, "project", a->project[0] ? json_string(a->project) : json_null());
	json_object_set_new(o, "scopes", sc);
	return o;
}

static int login_finish(struct kiln_req *r)
{
	char bearer[KILN_TOKEN_MAX + 16], id[SESSION_B64 + 1], cookie[160];
	struct MHD_Response *resp;
	struct kiln_db *db;
	json_t *body, *tok;
	const char *t;
	char *text;
	int ret;

	if (r->body_too_large)
		return kiln_reply_error(r, 413, "too_large", "the request body is larger than %dK",
					KILN_JSON_MAX_BYTES / 1024);
	body = r->body ? json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	tok = json_object_get(body, "token");
	t = json_string_value(tok);
	if (t == NULL || strlen(t) >= KILN_TOKEN_MAX) {
		json_decref(body);
		return kiln_reply_error(r, 400, "bad_request",
					"expected {\"token\": \"kiln_...\"}");
	}
	snprintf(bearer, sizeof(bearer), "Bearer %s", t);
	json_decref(body);
	if (r->body != NULL)
		sodium_memzero(r->body, r->body_len);
	if ((db = ui_db(r, &ret)) == NULL) {
		sodium_memzero(bearer, sizeof(bearer));
		return ret;
	}
	ret = kiln_auth_check(db, bearer, &r->auth);
	sodium_memzero(bearer, sizeof(bearer));
	if (ret == KILN_AUTH_INTERNAL)
		return kiln_reply_error(r, 500, "internal", "authentication failed");
	if (ret != KILN_AUTH_OK) {
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "login");
		return kiln_reply_error(r, 401, "unauthorized",
					"invalid, expired or revoked token");
	}
	session_create(r->auth.token_id, id);
	/* Secure: browsers treat http://127.0.0.1 and http://localhost as
	 * secure contexts and keep the cookie there (tests/dashboard). */
	snprintf(cookie, sizeof(cookie),
		 SESSION_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; Secure; SameSite=Strict", id,
		 SESSION_TTL);
	sodium_memzero(id, sizeof(id));
	{
		json_t *w = whoami(&r->auth);
		text = json_dumps(w, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(w);
	}
	if (text == NULL)
		return kiln_reply_error(r, 500, "internal", "out of memory");
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	kiln_response_headers(resp, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	sodium_memzero(cookie, sizeof(cookie));
	kiln_logf("dashboard login (token %s)", r->auth.token_id);
	return kiln_reply(r, 200, resp);
}

static int logout_finish(struct kiln_req *r)
{
	struct MHD_Response *resp;
	char id[SESSION_B64 + 1];

	if (cookie_session(r, id))
		session_drop(id);
	sodium_memzero(id, sizeof(id));
	resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	kiln_response_headers(resp, NULL);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE,
				SESSION_COOKIE
				"=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
	return kiln_reply(r, 204, resp);
}

/* ---- /v1/security ---- */

static void violation_row(void *ctx, int64_t job, const char *project, int64_t finished_at,
			  const char *kind, int64_t count)
{
	json_t *o = json_object();
	char t[32];

	json_object_set_new(o, "job", json_integer(job));
	json_object_set_new(o, "project", json_string(project));
	if (finished_at > 0) {
		kiln_format_time(finished_at, t, sizeof(t));
		json_object_set_new(o, "finished_at", json_string(t));
	} else {
		json_object_set_new(o, "finished_at", json_null());
	}
	json_object_set_new(o, "kind", json_string(kind));
	json_object_set_new(o, "count", json_integer(count));
	json_array_append_new(ctx, o);
}

static void rejection_row(void *ctx, int64_t at, const char *project, const char *code,
			  const char *key_id, const char *message)
{
	json_t *o = json_object(), *m;
	char t[32];

	kiln_format_time(at, t, sizeof(t));
	json_object_set_new(o, "time", json_string(t));
	json_object_set_new(o, "project", json_string(project));
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "key_id", key_id ? json_string(key_id) : json_null());
	/* The message may quote what the client sent: JSON needs UTF-8. */
	m = json_string(message);
	json_object_set_new(o, "message", m ? m : json_string("(not UTF-8)"));
	json_array_append_new(ctx, o);
}

static int security_finish(struct kiln_req *r)
{
	static struct kiln_metrics_event ev[KILN_METRICS_RECENT];
	static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
	struct kiln_error *err = NULL;
	json_t *o = json_object(), *viol = json_array(), *events = json_array(),
	       *rej = json_array();
	struct kiln_db *db;
	size_t n;
	int ret;

	if ((db = ui_db(r, &ret)) == NULL) {
		json_decref(o);
		json_decref(viol);
		json_decref(events);
		json_decref(rej);
		return ret;
	}
	if (kiln_stats_violations(db, 100, violation_row, viol, &err) < 0) {
		kiln_logf("security: %s", err ? err->msg : "?");
		kiln_error_free(&err);
	}
	if (kiln_stats_rejections(db, 100, rejection_row, rej, &err) < 0) {
		kiln_logf("security: %s", err ? err->msg : "?");
		kiln_error_free(&err);
	}
	pthread_mutex_lock(&ev_mu);
	n = kiln_metrics_recent(ev, KILN_METRICS_RECENT);
	for (size_t i = 0; i < n; i++) {
		char t[32];

		kiln_format_time(ev[i].time, t, sizeof(t));
		json_array_append_new(events, json_pack("{s:s,s:s,s:s}", "time", t, "kind",
							ev[i].kind, "reason", ev[i].reason));
	}
	pthread_mutex_unlock(&ev_mu);
	json_object_set_new(o, "violations", viol);
	json_object_set_new(o, "events", events);
	json_object_set_new(o, "rejections", rej);
	return kiln_reply_json(r, 200, o);
}

/* ---- /metrics ---- */

static int metrics_finish(struct kiln_req *r)
{
	struct kiln_error *err = NULL;
	struct kiln_stats_queue q;
	struct kiln_metrics_live live = {0};
	struct kiln_db *db;
	char *text;
	int ret;

	if ((db = ui_db(r, &ret)) == NULL)
		return ret;
	if (kiln_stats_queue(db, &q, &err) < 0) {
		kiln_logf("metrics: %s", err ? err->msg : "?");
		kiln_error_free(&err);
		return kiln_reply_error(r, 500, "internal", "reading the queue failed");
	}
	live.queued = q.queued;
	live.running = q.running;
	if (q.oldest_queued_at > 0) {
		int64_t now = (int64_t)time(NULL);
		live.oldest_queued_seconds =
			now > q.oldest_queued_at ? (double)(now - q.oldest_queued_at) : 0;
	}
	text = kiln_metrics_render(&live);
	if (text == NULL)
		return kiln_reply_error(r, 500, "internal", "out of memory");
	/* kiln_reply_text adds a final newline: the exposition ends with one
	 * already. */
	{
		size_t n = strlen(text);
		if (n > 0 && text[n - 1] == '\n')
			text[n - 1] = '\0';
	}
	return kiln_reply_text(r, 200, text, "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- dispatch ---- */

static int wrong_method(struct kiln_req *r)
{
	return kiln_reply_error(r, 405, "method_not_allowed",
				"this method is not allowed on this endpoint");
}

int kiln_ui_begin(struct kiln_req *r)
{
	const struct kiln_asset *a = NULL;
	enum ui_route u = ui_parse(r->url, &a);
	bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	int ret = MHD_YES;

	switch (u) {
	case U_METRICS:
		if (!get)
			return wrong_method(r);
		if (r->s->cfg.metrics_public)
			return MHD_YES;
		ui_require(r, KILN_SCOPE_READ | KILN_SCOPE_ADMIN, true, &ret);
		return ret;
	case U_INDEX:
	case U_ASSET: return get ? MHD_YES : wrong_method(r);
	case U_LOGIN:
	case U_LOGOUT:
		if (strcmp(r->method, "POST") != 0)
			return wrong_method(r);
		if (!same_origin(r)) {
			kiln_metrics_count(KILN_M_AUTH_FAILURES, "origin");
			return kiln_reply_error(r, 403, "forbidden",
						"cross-origin request refused (send X-Kiln-Login "
						"from the dashboard's origin)");
		}
		r->json_body = u == U_LOGIN;
		return MHD_YES;
	case U_SESSION:
		if (!get)
			return wrong_method(r);
		ui_require(r, KILN_SCOPE_READ | KILN_SCOPE_ADMIN | KILN_SCOPE_SUBMIT, false, &ret);
		return ret;
	case U_SECURITY:
		if (!get)
			return wrong_method(r);
		ui_require(r, KILN_SCOPE_READ | KILN_SCOPE_ADMIN, true, &ret);
		return ret;
	case U_ALERTS:
		if (!get)
			return wrong_method(r);
		ui_require(r, KILN_SCOPE_READ | KILN_SCOPE_ADMIN, false, &ret);
		return ret;
	case U_NONE:
	default: return kiln_reply_error(r, 404, "not_found", "no such endpoint");
	}
}

int kiln_ui_finish(struct kiln_req *r)
{
	const struct kiln_asset *a = NULL;
	int ret;

	switch (ui_parse(r->url, &a)) {
	case U_METRICS: return metrics_finish(r);
	case U_INDEX:
		a = asset_named("index.html");
		return a ? reply_asset(r, a)
			 : kiln_reply_error(r, 404, "not_found", "no dashboard");
	case U_ASSET: return reply_asset(r, a);
	case U_LOGIN: return login_finish(r);
	case U_LOGOUT: return logout_finish(r);
	case U_SESSION: return kiln_reply_json(r, 200, whoami(&r->auth));
	case U_SECURITY: return security_finish(r);
	case U_ALERTS: {
		const char *l =
			MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
		long limit = l ? strtol(l, NULL, 10) : 100;
		struct kiln_db *db;

		if (limit < 1 || limit > ALERTS_LIMIT_MAX)
			return kiln_reply_error(r, 400, "bad_request", "limit: expected 1 to %d",
						ALERTS_LIMIT_MAX);
		if ((db = ui_db(r, &ret)) == NULL)
			return ret;
		return kiln_reply_json(r, 200, kiln_alerts_list(db, &r->auth, (int)limit));
	}
	case U_NONE:
	default: return kiln_reply_error(r, 404, "not_found", "no such endpoint");
	}
}
