/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Everything kilnd serves outside /v1: GET /metrics (Prometheus text,
 * docs/metrics.md) and the dashboard (docs/dashboard.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "server/metrics.h"
#include "server/server.h"
#include "store/stats.h"

enum ui_route {
	U_NONE,
	U_METRICS,
};

static enum ui_route ui_parse(const char *url)
{
	if (strcmp(url, "/metrics") == 0)
		return U_METRICS;
	return U_NONE;
}

static const char *hdr(struct kiln_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static struct kiln_db *ui_db(struct kiln_req *r, int *ret)
{
	struct kiln_error *err = NULL;

	if (r->db != NULL)
		return r->db;
	r->db = kiln_server_db_acquire(r->s, &err);
	if (r->db == NULL) {
		kiln_logf("%s", err ? err->msg : "no database handle");
		kiln_error_free(&err);
		*ret = kiln_reply_error(r, 503, "unavailable", "the server is busy; try again");
	}
	return r->db;
}

/* A bearer token, else the dashboard's session cookie. 0: r->auth is set;
 * otherwise the answer is queued in *ret. */
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

/* ---- /metrics ---- */

static int metrics_begin(struct kiln_req *r)
{
	struct kiln_db *db;
	int ret;

	if (strcmp(r->method, "GET") != 0)
		return kiln_reply_error(r, 405, "method_not_allowed",
					"this method is not allowed on this endpoint");
	if (r->s->cfg.metrics_public)
		return MHD_YES;
	if ((db = ui_db(r, &ret)) == NULL)
		return ret;
	if (ui_authenticate(r, db, &ret) < 0)
		return ret;
	/* Metrics name every project: a token for all projects only. */
	if (!kiln_auth_has_scope(&r->auth, KILN_SCOPE_READ | KILN_SCOPE_ADMIN)) {
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "scope");
		return kiln_reply_error(r, 403, "forbidden", "this token lacks the 'read' scope");
	}
	if (r->auth.project[0] != '\0') {
		kiln_metrics_count(KILN_M_AUTH_FAILURES, "project");
		return kiln_reply_error(r, 403, "forbidden",
					"this needs a token that is not tied to a project");
	}
	return MHD_YES;
}

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
	 * already, so drop it here. */
	{
		size_t n = strlen(text);
		if (n > 0 && text[n - 1] == '\n')
			text[n - 1] = '\0';
	}
	return kiln_reply_text(r, 200, text, "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- dispatch ---- */

int kiln_ui_begin(struct kiln_req *r)
{
	switch (ui_parse(r->url)) {
	case U_METRICS: return metrics_begin(r);
	case U_NONE:
	default: return kiln_reply_error(r, 404, "not_found", "no such endpoint");
	}
}

int kiln_ui_finish(struct kiln_req *r)
{
	switch (ui_parse(r->url)) {
	case U_METRICS: return metrics_finish(r);
	case U_NONE:
	default: return kiln_reply_error(r, 404, "not_found", "no such endpoint");
	}
}

enum kiln_auth_result kiln_ui_cookie_auth(struct kiln_req *r, struct kiln_db *db)
{
	(void)r;
	(void)db;
	return KILN_AUTH_MISSING;
}
