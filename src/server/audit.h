/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's audit log (docs/audit.md): every security-relevant event becomes
 * one compact JSON entry in an append-only RFC 6962 Merkle tree, with
 * checkpoints signed by a log key that only kilnd holds, served as
 * c2sp.org/tlog-tiles under /v1/audit/.
 *
 * Thread safety: every function may be called from any kilnd thread.
 */
#ifndef KILN_SERVER_AUDIT_H
#define KILN_SERVER_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "core/error.h"
#include "server/server.h"
#include "store/db.h"

/* Start-up, before the workers and the listener: load the log key from
 * DATA/audit.key (created 0600 on the first start, with the origin
 * "kiln/<hostname>" or $KILN_AUDIT_ORIGIN; DATA/audit-key.vkey gets the
 * verifier key), check the stored log against its newest checkpoint and
 * start the checkpointer (a new signed checkpoint within a second of new
 * entries). A log that fails the check is reported and left as it is:
 * kilnd serves it for inspection but appends nothing more, so every action
 * that must be recorded fails (500). An error only for what prevents
 * serving at all (the key). */
int kiln_audit_open(struct kiln_server *s, const char *data_dir, struct kiln_db *db,
		    struct kiln_error **err);
/* Shut-down, after the last append: a last checkpoint, stop the thread. */
void kiln_audit_close(struct kiln_server *s);

/*
 * Append one entry {"time", "kind", "actor", ...fields} and return when it
 * is durable (committed with synchronous=FULL). kind: one of the kinds of
 * docs/audit.md ("job.finish"); actor: who caused it ("token:<id>",
 * "kilnd", "worker-3", "anonymous"); fields: a JSON object or NULL,
 * borrowed, without the keys time/kind/actor. db_or_null: the caller's
 * handle, or NULL to borrow one from the pool; when the handle is inside
 * a write transaction (BEGIN IMMEDIATE), the entry joins it and is
 * durable when the caller commits (kiln_job_new.in_tx does that for
 * jobs). Errors: EBADMSG when the log failed its start-up check, E2BIG
 * for an entry over 65535 bytes, else the database's. Never put a token
 * secret into fields.
 */
int kiln_audit_append(struct kiln_server *s, struct kiln_db *db_or_null, const char *kind,
		      const char *actor, json_t *fields, struct kiln_error **err);

/* Authentication or authorisation refused (401/403): recorded at most 20
 * a second on average (bursts of 100); what is dropped is counted in the
 * next entry's "suppressed". Failure to record is logged, not returned. */
void kiln_audit_auth_failure(struct kiln_server *s, struct kiln_db *db, unsigned status,
			     const char *method, const char *path, const char *auth_header,
			     const char *token_id, const char *remote, const char *message);

/* The worker's end of a job: sandbox.violation (seccomp denials) and
 * sandbox.limit (timeout, memory, pids, disk, output, log cap) from the
 * engine's report, then job.finish with the outcome and the digests of
 * the source, the log (read from log_path) and the artifacts (several
 * job.artifacts entries when they do not fit into one). report_json and
 * error may be NULL. */
struct kiln_job_outcome;
int kiln_audit_job_finish(struct kiln_server *s, struct kiln_db *db, const char *actor, int64_t job,
			  const char *project, const char *source_sha256, const char *state,
			  const struct kiln_job_outcome *o, const char *log_path,
			  struct kiln_error **err);

/* The egress proxy refused some of a job's attempts: one
 * sandbox.violation (violation "egress") with the counts and up to 50 of
 * the refused attempts (borrowed: the job_egress.c attempts array). */
int kiln_audit_egress(struct kiln_server *s, struct kiln_db *db, const char *actor, int64_t job,
		      const char *project, json_t *attempts, uint64_t allowed, uint64_t denied,
		      uint64_t dropped, struct kiln_error **err);

/* GET /v1/audit/<what>: "key", "checkpoint", or a tile path
 * ("tile/0/x001/234", "tile/entries/000.p/5"). */
int kiln_audit_http(struct kiln_req *r, struct kiln_db *db, const char *what);

#endif
