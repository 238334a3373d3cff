/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The database: SQLite in WAL mode with foreign keys, a schema version and
 * forward-only migrations applied in one transaction at open. Every write
 * that an API answer depends on is committed (durable) before the answer.
 * Listings and single rows come back as jansson objects shaped like the
 * API (docs/api.md), so handlers only add or remove fields: a listing is
 * the whole answer object ({"projects": [...]}, {"tokens": [...]},
 * {"jobs": [...]}, {"artifacts": [...]}), owned by the caller (json_decref).
 * Times are RFC 3339 UTC strings ("2026-11-23T17:40:01Z"), null when unset.
 *
 * Errors carry an errno-style code: ENOENT (no such row), EEXIST (exists),
 * EINVAL (bad argument), EALREADY (state transition refused), EBUSY (the
 * database stayed locked beyond the 5 s busy timeout), EPROTO (schema newer
 * than this code), EBADMSG (corrupt), else what the OS or SQLite reported.
 *
 * Thread safety: one struct kiln_db per thread (open it again in each
 * worker/HTTP thread; SQLite's busy timeout serialises writers).
 */
#ifndef KILN_STORE_DB_H
#define KILN_STORE_DB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "server/job.h"

#define KILN_SCOPE_SUBMIT 1u
#define KILN_SCOPE_READ	  2u
#define KILN_SCOPE_ADMIN  4u

struct kiln_db;

/* Creates the file (0600) if needed and applies pending migrations; refuses
 * (EPROTO, naming both versions) a schema newer than this code. */
int kiln_db_open(const char *path, struct kiln_db **out, struct kiln_error **err);
void kiln_db_close(struct kiln_db *db);
/* PRAGMA integrity_check == "ok" and no foreign key violations (EBADMSG). */
int kiln_db_integrity_check(struct kiln_db *db, struct kiln_error **err);
int kiln_db_schema_version(struct kiln_db *db);
/* The newest schema this build knows (the number of migrations). */
int kiln_db_schema_supported(void);

/* ---- projects ---- */
/* EEXIST if it exists, EINVAL for a bad name ([a-z0-9][a-z0-9-]{0,62}). */
int kiln_db_project_create(struct kiln_db *db, const char *name, struct kiln_error **err);
bool kiln_db_project_exists(struct kiln_db *db, const char *name);
/* {"projects": [{"name", "created_at"}]}, sorted by name. */
json_t *kiln_db_projects_list(struct kiln_db *db, struct kiln_error **err);
bool kiln_project_name_valid(const char *name);

/* ---- tokens ---- */
struct kiln_token_row {
	char id[32];
	unsigned char hash[32];			    /* SHA-256 of the secret part */
	char project[64];			    /* "" for no project (all projects) */
	unsigned scopes;			    /* KILN_SCOPE_* */
	int64_t created_at, expires_at, revoked_at; /* unix seconds; 0 = none */
};
/* id: [A-Za-z0-9_-]{1,31}; scopes non-zero; created_at 0 = now;
 * description NULL = "" (UTF-8, <= 1024 bytes). EEXIST for a known id,
 * ENOENT for an unknown project, EINVAL for the rest. */
int kiln_db_token_insert(struct kiln_db *db, const struct kiln_token_row *t,
			 const char *description, struct kiln_error **err);
/* ENOENT if unknown. */
int kiln_db_token_get(struct kiln_db *db, const char *id, struct kiln_token_row *t,
		      struct kiln_error **err);
/* {"tokens": [{"id", "project" (or null), "scopes": ["submit", ...],
 * "created_at", "expires_at", "revoked_at", "description"}]}; never the
 * hash. */
json_t *kiln_db_tokens_list(struct kiln_db *db, struct kiln_error **err);
/* ENOENT if unknown; revoking twice is fine. */
int kiln_db_token_revoke(struct kiln_db *db, const char *id, struct kiln_error **err);
unsigned kiln_scopes_parse(const char *csv); /* "submit,read" -> bits; 0 on error */
void kiln_scopes_format(unsigned scopes, char *buf, size_t len);

/* ---- jobs ---- */
struct kiln_job_new {
	const char *project;
	const char *spec_text; /* the kiln.yml as submitted */
	const char *spec_json; /* the parsed spec, serialised */
	const char *spec_sha256;
	const char *source_sha256; /* the archive, stored in the CAS */
	uint64_t source_bytes;
	bool retry_safe;
	const char *submitted_by; /* token id */
	/* refuse when the project already has this many queued jobs; 0: no cap */
	uint64_t max_queued;
	/* "sha256:..." of the policy it was accepted under, or NULL */
	const char *policy_digest;
	/* A signed submission: the signer's minisign key id and the
	 * manifest's nonce, used up with the insert (NULL: unsigned). */
	const char *signer_key;
	const char *nonce;
	/* Called inside the insert's transaction with the new id, so that
	 * what it writes (the audit log's submission.accepted) commits with
	 * the job or not at all; -1 (with *err) rolls both back. NULL: none. */
	int (*in_tx)(void *ctx, struct kiln_db *db, int64_t id, struct kiln_error **err);
	void *in_tx_ctx;
};
/* Inserts in state queued; *id receives the job id. Durable (fsynced) on
 * return. EINVAL unless both digests are 64 lowercase hex digits and
 * spec_json is a JSON object; ENOENT for an unknown project; EEXIST
 * (nothing stored) if the nonce was used before; EAGAIN (and nothing
 * inserted) when the project has max_queued queued jobs: the count and the
 * insert are one statement, so concurrent submits cannot pass it. */
int kiln_db_job_insert(struct kiln_db *db, const struct kiln_job_new *j, int64_t *id,
		       struct kiln_error **err);
/* The job object of docs/api.md ("spec" is the parsed spec_json) plus
 * "report" (the parsed report_json, or null); NULL with ENOENT if unknown. */
json_t *kiln_db_job_get(struct kiln_db *db, int64_t id, struct kiln_error **err);
/* How many jobs of the project are queued; -1 with *err on failure. */
int64_t kiln_db_jobs_queued(struct kiln_db *db, const char *project, struct kiln_error **err);
/* {"jobs": [job, ...]} without "report"; project/state may be NULL; newest
 * first; limit <= 0 means 50, at most 500. EINVAL for an unknown state. */
json_t *kiln_db_jobs_list(struct kiln_db *db, const char *project, const char *state, int limit,
			  struct kiln_error **err);
/* Compare-and-set through the state machine: applies ev only if the job
 * is in a state where kiln_job_next() allows it; *new_state receives the
 * result. EALREADY (and no change) if not allowed, ENOENT if no such job.
 * Timestamps (started_at/finished_at) are set by the transition. */
int kiln_db_job_event(struct kiln_db *db, int64_t id, enum kiln_job_event ev,
		      enum kiln_job_state *new_state, struct kiln_error **err);
/* Atomically take the oldest queued job: queued -> running (START),
 * attempts+1, worker recorded. Returns 1 with *id set, 0 if none. */
int kiln_db_job_claim(struct kiln_db *db, const char *worker, int64_t *id, struct kiln_error **err);
/* The same, skipping the jobs of a project that already has cap(project)
 * jobs running (0 = no cap); cap is called inside the transaction. */
int kiln_db_job_claim_capped(struct kiln_db *db, const char *worker,
			     unsigned (*cap)(void *ctx, const char *project), void *ctx,
			     int64_t *id, struct kiln_error **err);
/* What a worker needs to run a job. Strings are malloc'd; free with
 * kiln_db_job_work_free. */
struct kiln_job_work {
	int64_t id;
	char *project, *spec_text, *spec_json, *source_sha256;
	int state;
	bool cancel_requested;
	/* the submission's signature was verified (jobs.signer_key is set) */
	bool signed_submission;
};
int kiln_db_job_work(struct kiln_db *db, int64_t id, struct kiln_job_work *w,
		     struct kiln_error **err);
void kiln_db_job_work_free(struct kiln_job_work *w);
/* Record the outcome fields (exit code, reason, report JSON, log size,
 * truncation, error text) and apply ev, in ONE transaction. If ev is
 * refused in the job's state (a late event), EALREADY and nothing is
 * recorded. Pass (enum kiln_job_event)-1 to record fields without a state
 * change (EALREADY if the job is already final). */
struct kiln_job_outcome {
	int exit_code;		 /* -1 when none */
	const char *reason;	 /* kiln_reason_name() or "archive_invalid", "internal" */
	const char *report_json; /* the sandbox report, or NULL */
	uint64_t log_bytes;
	bool log_truncated;
	const char *error; /* human-readable, or NULL */
};
int kiln_db_job_finish(struct kiln_db *db, int64_t id, const struct kiln_job_outcome *o,
		       enum kiln_job_event ev, enum kiln_job_state *new_state,
		       struct kiln_error **err);
/* A client asked to cancel. queued: cancelled at once (CANCEL applied);
 * running: cancel_requested is set and the worker, which polls it, applies
 * CANCEL through kiln_db_job_finish once the sandbox is gone; final:
 * EALREADY (409); unknown: ENOENT. One transaction, so a job claimed at the
 * same moment is handled right. */
int kiln_db_job_request_cancel(struct kiln_db *db, int64_t id, struct kiln_error **err);
bool kiln_db_job_cancel_requested(struct kiln_db *db, int64_t id);
/* At start-up: every job still `running` belonged to a dead process.
 * RETRY (back to queued) when retry_safe and attempts < max_attempts, else
 * CRASH (interrupted, with an error text saying kilnd stopped). attempts
 * counts STARTs, so max_attempts is the number of runs a job may get.
 * Returns how many were recovered. */
int kiln_db_jobs_recover(struct kiln_db *db, int max_attempts, struct kiln_error **err);
/* Does some job of `project` have an artifact with this digest? False for
 * "" (a token without project must be decided by the caller) and for
 * invalid names or digests. */
bool kiln_db_project_owns_blob(struct kiln_db *db, const char *project, const char *sha256);
/* Project of a job, "" if unknown (buf >= 64 bytes). 0 if found, else -1. */
int kiln_db_job_project(struct kiln_db *db, int64_t id, char *buf, size_t len);

/* ---- artifacts ---- */
/* EEXIST if the job has an artifact of that name, ENOENT for an unknown
 * job, EINVAL for a bad name (empty, > 4096 bytes, not UTF-8) or digest. */
int kiln_db_artifact_add(struct kiln_db *db, int64_t job, const char *name, uint64_t size,
			 const char *sha256, struct kiln_error **err);
/* {"artifacts": [{"name", "size", "sha256"}]}, sorted by name. */
json_t *kiln_db_artifacts_list(struct kiln_db *db, int64_t job, struct kiln_error **err);

/* Egress attempts (docs/egress.md). add: an array of objects {at (unix
 * seconds), kind, host, addr, port, allowed, reason, bytes_up, bytes_down,
 * duration_ms}, in one transaction. list: {"attempts": [...]} of a job,
 * in order. destinations: {"destinations": [{host, port, attempts, jobs}]},
 * what a project's builds asked the proxy for, for `kiln egress suggest`,
 * at most limit of them (by host, then port). */
int kiln_db_egress_add(struct kiln_db *db, int64_t job, const char *project, json_t *attempts,
		       struct kiln_error **err);
json_t *kiln_db_egress_list(struct kiln_db *db, int64_t job, struct kiln_error **err);
json_t *kiln_db_egress_destinations(struct kiln_db *db, const char *project, int limit,
				    struct kiln_error **err);

/* ---- policies and secrets (docs/policy.md) ---- */
int kiln_db_job_set_policy(struct kiln_db *db, int64_t id, const char *digest,
			   struct kiln_error **err);
/* Rows hold only ciphertext (secrets.c); insert or replace the project's
 * secret of that name. ENOENT for an unknown project. */
int kiln_db_secret_put(struct kiln_db *db, const char *project, const char *name, int64_t version,
		       const void *nonce, int nonce_len, const void *value, int value_len,
		       struct kiln_error **err);
/* The current version, 0 if none. */
int64_t kiln_db_secret_version(struct kiln_db *db, const char *project, const char *name);
/* *value malloc'd (ciphertext). ENOENT if none. */
int kiln_db_secret_get(struct kiln_db *db, const char *project, const char *name, int64_t *version,
		       unsigned char *nonce, size_t nonce_len, unsigned char **value,
		       size_t *value_len, struct kiln_error **err);
/* {"secrets": [{"name", "version", "created_at"}]}: never a value. */
json_t *kiln_db_secrets_list(struct kiln_db *db, const char *project, struct kiln_error **err);
int kiln_db_secret_delete(struct kiln_db *db, const char *project, const char *name,
			  struct kiln_error **err);
int kiln_db_secrets_count(struct kiln_db *db, int64_t *n, struct kiln_error **err);
/* 1 and the key check's nonce and ciphertext, 0 if none stored yet. */
int kiln_db_secrets_check_get(struct kiln_db *db, unsigned char *nonce, size_t nonce_len,
			      unsigned char *value, size_t *value_len, struct kiln_error **err);
int kiln_db_secrets_check_set(struct kiln_db *db, const void *nonce, int nonce_len,
			      const void *value, int value_len, struct kiln_error **err);
int kiln_db_job_secret_grant(struct kiln_db *db, int64_t job, const char *name, int64_t version,
			     struct kiln_error **err);
/* {"secrets": [{"name", "version"}]}: what a job was granted. */
json_t *kiln_db_job_secret_grants(struct kiln_db *db, int64_t job, struct kiln_error **err);

/* ---- signed submissions and provenance ---- */
/* 1 if the nonce of a signed submission was used, 0 if not, -1 on error. */
int kiln_db_nonce_used(struct kiln_db *db, const char *nonce, struct kiln_error **err);
/* Record a refused submission (docs/signing.md); token_id, key_id may be
 * NULL. */
int kiln_db_rejection_add(struct kiln_db *db, const char *project, const char *token_id,
			  const char *code, const char *key_id, const char *message,
			  struct kiln_error **err);
/* The DSSE envelope of a job's provenance (JSON text); get: malloc'd,
 * NULL with ENOENT if there is none. */
int kiln_db_provenance_put(struct kiln_db *db, int64_t job, const char *envelope,
			   struct kiln_error **err);
char *kiln_db_provenance_get(struct kiln_db *db, int64_t job, struct kiln_error **err);
/* What provenance is made of. Strings malloc'd (signer_key may be NULL);
 * times are unix seconds, 0 when unset. */
struct kiln_job_facts {
	int64_t id;
	char *project, *state, *spec_text, *spec_json, *spec_sha256, *source_sha256;
	char *signer_key;
	/* "sha256:<hex>" of the policy it ran under, or NULL */
	char *policy_digest;
	int64_t started_at, finished_at;
};
int kiln_db_job_facts(struct kiln_db *db, int64_t id, struct kiln_job_facts *f,
		      struct kiln_error **err);
void kiln_db_job_facts_free(struct kiln_job_facts *f);
/* Up to max finished jobs with artifacts but no provenance (a kilnd that
 * stopped between a job's end and its provenance), oldest first. */
int kiln_db_jobs_missing_provenance(struct kiln_db *db, int64_t *ids, size_t max, size_t *n,
				    struct kiln_error **err);
/* ---- transactions ---- */
/* For a caller that writes a row and its audit log entry together
 * (src/server/api.c): BEGIN IMMEDIATE, then single-statement calls
 * (project create, token insert, token revoke: not the ones that open a
 * transaction of their own), then commit (which rolls back on failure). */
int kiln_db_begin(struct kiln_db *db, struct kiln_error **err);
int kiln_db_commit(struct kiln_db *db, struct kiln_error **err);
void kiln_db_rollback(struct kiln_db *db);

/* The database file's path (for messages: src/store/auditlog.c). */
const char *kiln_db_path(const struct kiln_db *db);

/* ---- raw handle ---- */
/* The SQLite handle, for the read-only statistics of store/stats.c and
 * the tables other modules own (their own migrations). Borrowed: same
 * thread rules as the struct kiln_db. */
struct sqlite3;
struct sqlite3 *kiln_db_sqlite(struct kiln_db *db);

#endif
