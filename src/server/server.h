/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's shared state, owned by main.c. The HTTP threads (http.c, api.c,
 * auth.c) and the worker threads (worker.c) talk through the database and
 * this struct only. Everything under `mu` is listed as such.
 *
 * Threads: main (start-up, signals, shut-down), cfg.workers worker threads
 * (worker.c), libmicrohttpd's listener thread and one thread per HTTP
 * connection. Database handles come from a pool opened at start-up
 * (kiln_server_db_acquire/release); a worker keeps one for its lifetime,
 * an HTTP thread borrows one while a handler runs.
 */
#ifndef KILN_SERVER_SERVER_H
#define KILN_SERVER_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "server/config.h"
#include "store/cas.h"
#include "store/db.h"

#define KILN_MAX_WORKERS     64
#define KILN_MAX_TOKEN_CONNS 1024

/* Fixed limits of the HTTP front (docs/server.md). */
#define KILN_JSON_MAX_BYTES	(64 * 1024) /* JSON request bodies */
#define KILN_HTTP_CONN_LIMIT	512	    /* connections in total */
#define KILN_HTTP_PER_IP_LIMIT	64	    /* connections per client address */
#define KILN_HTTP_TIMEOUT	60	    /* seconds of inactivity */
#define KILN_HTTP_MEMORY_LIMIT	(32 * 1024) /* per connection: headers, buffers */
#define KILN_HTTP_HEADERS_MAX	(16 * 1024) /* request headers, names and values */
#define KILN_MAX_ARTIFACTS	10000	    /* per job; more are skipped */
#define KILN_SSE_KEEPALIVE_SECS 15
#define KILN_DB_HTTP_HANDLES	16 /* database handles for HTTP requests */
#define KILN_DB_WAIT_MS		10000
#define KILN_DB_POOL_MAX	(KILN_MAX_WORKERS + KILN_DB_HTTP_HANDLES + 1)

struct kiln_provkey;

struct kiln_running {
	int64_t job;
	int cancel_fd; /* a byte written here cancels the job's sandbox (worker.c) */
};

struct kiln_server {
	struct kiln_config cfg;
	char db_path[4096];
	char log_dir[4096];
	char tmp_dir[4096];
	/* the policy directory (docs/policy.md) */
	char policy_dir[4096];
	struct kiln_cas *cas; /* thread-safe: file-system operations only */
	/* the secret store's master key (secrets.h); read-only after start */
	struct kiln_secrets *secrets;

	pthread_mutex_t mu;
	pthread_cond_t changed; /* broadcast on: job queued, log appended, state changed */
	uint64_t seq;		/* under mu: bumped with every broadcast */
	uint64_t qseq;		/* under mu: bumped when a job may be claimable */
	bool stopping;		/* under mu */
	struct kiln_running running[KILN_MAX_WORKERS]; /* under mu */
	size_t nrunning;			       /* under mu */
	unsigned nbusy;	   /* under mu: workers between claim and record */
	unsigned nstreams; /* under mu: log responses still open */
	struct {
		char token_id[32];
		unsigned n;
	} conns[KILN_MAX_TOKEN_CONNS]; /* under mu: open requests per token */

	pthread_cond_t db_free;			   /* signalled when a handle is released */
	struct kiln_db *db_pool[KILN_DB_POOL_MAX]; /* under mu: the free handles */
	unsigned db_nfree;			   /* under mu */
	struct kiln_db *db_all[KILN_DB_POOL_MAX];  /* every handle, for closing */
	unsigned db_nall;

	/* provkey.c: the provenance signing key (server/provenance.h) */
	struct kiln_provkey *provkey;
	/* audit.c's state (the log key, the checkpointer); NULL until
	 * kiln_audit_open */
	struct kiln_audit *audit;

	void *http; /* http.c's daemon */
	pthread_t workers[KILN_MAX_WORKERS];
	unsigned nworkers;
};

/* ---- server.c ---- */

/* Initialise the lock and the condition variables; cfg, paths and cas
 * are filled in by main.c. */
int kiln_server_init(struct kiln_server *s, struct kiln_error **err);
void kiln_server_destroy(struct kiln_server *s);

/* Database handles: a pool opened once at start-up (kiln_server_db_open)
 * and lent out; a handle is used by one thread at a time (db.h). Opening
 * handles while others are in use is avoided on purpose: each open runs
 * the migration check in a write transaction. Acquire waits up to
 * KILN_DB_WAIT_MS for a free handle; NULL with *err when none came. */
int kiln_server_db_open(struct kiln_server *s, unsigned n, struct kiln_error **err);
void kiln_server_db_close(struct kiln_server *s);
struct kiln_db *kiln_server_db_acquire(struct kiln_server *s, struct kiln_error **err);
void kiln_server_db_release(struct kiln_server *s, struct kiln_db *db);

/* Lock, bump seq, broadcast. */
void kiln_server_notify(struct kiln_server *s);
/* As kiln_server_notify, and wake the workers (a job was queued). */
void kiln_server_notify_queue(struct kiln_server *s);
/* Wait until seq differs from `seen` or timeout_ms passes; returns seq. */
uint64_t kiln_server_wait(struct kiln_server *s, uint64_t seen, int timeout_ms);
/* The same on qseq (workers: a job was queued, or shut-down began). */
uint64_t kiln_server_wait_queue(struct kiln_server *s, uint64_t seen, int timeout_ms);
bool kiln_server_stopping(struct kiln_server *s);
/* Is a sandbox running (or a worker still busy with a job)? */
bool kiln_server_jobs_running(struct kiln_server *s);
/* Ask the sandbox of a running job to stop; 0 if it was running here. */
int kiln_server_cancel_running(struct kiln_server *s, int64_t job);
/* Worker side: make a running sandbox reachable for cancel. When shut-down
 * has begun, it is told to stop at once. -1 if the table is full. */
int kiln_server_running_add(struct kiln_server *s, int64_t job, int cancel_fd);
void kiln_server_running_remove(struct kiln_server *s, int64_t job);
/* Shut-down: set stopping, wake everyone, cancel every running sandbox. */
void kiln_server_stop(struct kiln_server *s);
/* Shut-down, after the workers: give log followers up to timeout_ms to
 * send the last lines and the final state. */
void kiln_server_drain_streams(struct kiln_server *s, int timeout_ms);

/* One line on stderr, "kilnd: ...". Never pass a token. */
void kiln_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Copy src into dst (cap bytes) with every control character (C0, DEL)
 * replaced by '?': for names and messages that came from a build or a
 * client and end up in logs or terminals. */
void kiln_sanitize(char *dst, size_t cap, const char *src);
/* "2026-11-23T17:40:01Z" (buf >= 21 bytes). */
void kiln_format_time(int64_t t, char *buf, size_t len);

/* ---- auth.c ---- */

struct kiln_auth {
	char token_id[32];
	char project[64]; /* "" = all projects */
	unsigned scopes;  /* KILN_SCOPE_* */
};

enum kiln_auth_result {
	KILN_AUTH_OK = 0,
	KILN_AUTH_MISSING,  /* 401 */
	KILN_AUTH_INVALID,  /* 401: malformed, unknown, wrong secret, expired, revoked */
	KILN_AUTH_INTERNAL, /* 500: the database failed */
};

/* Verify an Authorization header value ("Bearer kiln_<id>_<secret>"). */
enum kiln_auth_result kiln_auth_check(struct kiln_db *db, const char *header, struct kiln_auth *a);
bool kiln_auth_has_scope(const struct kiln_auth *a, unsigned scopes);
/* May this caller act on `project`? */
bool kiln_auth_project_ok(const struct kiln_auth *a, const char *project);
/* Count one open request of the token; -1 when it already has
 * cfg.conns_per_token (429). Returns the slot to release. */
int kiln_auth_conn_acquire(struct kiln_server *s, const char *token_id);
void kiln_auth_conn_release(struct kiln_server *s, int slot);
/* Create and store a token; token receives "kiln_<id>_<secret>" (the only
 * copy of the secret: the caller wipes it with sodium_memzero). */
#define KILN_TOKEN_MAX 96
/* The same without storing it (the first admin token is written to its
 * file before its row is stored). */
int kiln_token_generate(const char *project, unsigned scopes, int64_t expires_at,
			struct kiln_token_row *row, char token[KILN_TOKEN_MAX],
			struct kiln_error **err);
int kiln_token_create(struct kiln_db *db, const char *project, unsigned scopes, int64_t expires_at,
		      const char *description, struct kiln_token_row *row,
		      char token[KILN_TOKEN_MAX], struct kiln_error **err);

/* ---- http.c / api.c ---- */

struct MHD_Connection;
struct MHD_Response;
struct kiln_upload;

/* One HTTP request, owned by http.c (allocated on the first call of the
 * access handler, freed when libmicrohttpd says the request completed). */
struct kiln_req {
	struct kiln_server *s;
	struct MHD_Connection *conn;
	const char *method, *url; /* borrowed from libmicrohttpd */
	int route;		  /* api.c's enum */
	int64_t job;		  /* /v1/jobs/{id}... */
	char arg[80];		  /* /v1/tokens/{id}, /v1/artifacts/{sha256} */
	/* /v1/projects/{arg}/secrets/{arg2} */
	char arg2[80];
	struct kiln_auth auth;
	int conn_slot; /* kiln_auth_conn_acquire(), -1 when none */
	bool responded;
	/* the status of the answer, and the message of an error answer (for
	 * the audit log) */
	unsigned status;
	char error_msg[256];
	char error_code[32];
	/* the answer is a 401: add WWW-Authenticate */
	bool unauthorized;
	/* the answer is a 405: the methods for an Allow header */
	char allow[48];
	/* borrowed from the pool while a handler needs it */
	struct kiln_db *db;
	/* the error code of the answer (kiln_reply_error), for the metrics */
	char err_code[32];
	/* a dashboard or /metrics request (ui.c), not /v1 */
	bool ui;
	/* authenticated by the dashboard's session cookie, not a bearer token */
	bool via_cookie;

	/* body: JSON collected here (json_body), multipart handed to api.c */
	bool json_body;
	char *body;
	size_t body_len;
	uint64_t body_seen;  /* raw bytes received */
	uint64_t body_max;   /* raw bytes allowed */
	bool body_too_large; /* discard the rest, answer 413 */
	struct kiln_upload *upload;
};

/* http.c: answers. Each queues a response once (later calls are ignored)
 * and returns the value for libmicrohttpd (MHD_YES/MHD_NO). */
int kiln_reply(struct kiln_req *r, unsigned status, struct MHD_Response *resp);
/* Takes ownership of text (malloc'd, NUL-terminated); a newline is added
 * and the memory is wiped when freed (answers may hold a token). */
int kiln_reply_text(struct kiln_req *r, unsigned status, char *text, const char *content_type);
/* Takes ownership of j. */
int kiln_reply_json(struct kiln_req *r, unsigned status, json_t *j);
int kiln_reply_error(struct kiln_req *r, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int kiln_reply_empty(struct kiln_req *r, unsigned status);
/* The request's database handle, borrowed from the pool (until the request
 * completes or the handler releases it): r->db, acquired on first use.
 * NULL when none came free in time; *ret is then the 503 answer. */
struct kiln_db *kiln_req_db(struct kiln_req *r, int *ret);
/* Common response headers (no-store, nosniff). */
void kiln_response_headers(struct MHD_Response *resp, const char *content_type);

/* http.c */
int kiln_http_start(struct kiln_server *s, struct kiln_error **err);
/* Stop accepting new connections (shut-down, step one). */
void kiln_http_quiesce(struct kiln_server *s);
void kiln_http_stop(struct kiln_server *s);

/* api.c: called by http.c's access handler.
 * begin: first call, headers only: route, authenticate, maybe answer;
 *        sets r->json_body / r->upload / r->body_max when a body is wanted.
 * upload: a chunk of a multipart body (r->upload).
 * finish: the whole body arrived (or there was none): answer.
 * done: the request completed; release what api.c holds. */
int kiln_api_begin(struct kiln_req *r);
int kiln_api_upload(struct kiln_req *r, const char *data, size_t len);
int kiln_api_finish(struct kiln_req *r);
void kiln_api_done(struct kiln_req *r);

/* ---- api_policy.c ---- */
struct kiln_policy_known;
/* What policies may refer to on this server (images, maxima). */
void kiln_policy_known_server(const struct kiln_server *s, struct kiln_policy_known *k);
/* Load s->policy_dir and install it; why is logged. 0 when installed, the
 * number of problems when refused (*problems: one line each, malloc'd, may
 * be NULL), -1 with *err when the directory could not be read. A refusal
 * keeps the previous set and is logged and counted. */
int kiln_policies_reload(struct kiln_server *s, const char *why, char **problems,
			 struct kiln_error **err);
int kiln_api_policy_reload(struct kiln_req *r);
int kiln_api_policy_show(struct kiln_req *r, const char *project);
/* /v1/projects/{project}/secrets[/{name}]: set (POST), list (GET), remove
 * (DELETE). */
int kiln_api_secret_set(struct kiln_req *r);
int kiln_api_secrets_list(struct kiln_req *r);
int kiln_api_secret_delete(struct kiln_req *r);

/* ---- worker.c ---- */
int kiln_workers_start(struct kiln_server *s, struct kiln_error **err);
/* Join the workers; call after kiln_server_stop(). */
void kiln_workers_stop(struct kiln_server *s);
/* Start-up, before the workers: remove what a crashed kilnd left in
 * DATA/tmp (never following links). */
int kiln_workers_clean_tmp(struct kiln_server *s);

/* ---- observe.c: metrics and alerts fed by finished jobs ---- */
struct kiln_stats_job;
/* Start-up, before the workers: metrics build info, job counters seeded
 * from the database. */
void kiln_observe_start(struct kiln_server *s, struct kiln_db *db);
/* A job's outcome was recorded: metrics, baselines, alerts. */
void kiln_observe_job(struct kiln_server *s, struct kiln_db *db, int64_t id);

/* ---- alerts.c ---- */
/* Compare the job with its project's baseline, raise alerts, update the
 * baseline. */
void kiln_alerts_check(struct kiln_server *s, struct kiln_db *db, int64_t id,
		       const struct kiln_stats_job *j);
/* GET /v1/alerts: {"alerts": [...]}, newest first, the caller's project
 * only for a project token. */
json_t *kiln_alerts_list(struct kiln_db *db, const struct kiln_auth *a, int limit);

/* ---- ui.c: GET /metrics, the dashboard, POST /login ---- */
/* Is this URL served by ui.c (everything outside /v1, and the
 * dashboard's /v1/session, /v1/security, /v1/alerts)? */
bool kiln_ui_owns(const char *url);
int kiln_ui_begin(struct kiln_req *r);
int kiln_ui_finish(struct kiln_req *r);
/* A dashboard session cookie in the request: fills r->auth. */
enum kiln_auth_result kiln_ui_cookie_auth(struct kiln_req *r, struct kiln_db *db);

#endif
