/* SPDX-License-Identifier: Apache-2.0 */
/* Statistics over the jobs table (stats.h). */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "store/stats.h"

static int fail(sqlite3 *h, struct kiln_error **err, const char *what)
{
	return kiln_error_set(err, EIO, "%s: %s", what, sqlite3_errmsg(h));
}

int kiln_stats_final_counts(struct kiln_db *db, kiln_stats_count_fn fn, void *ctx,
			    struct kiln_error **err)
{
	sqlite3 *h = kiln_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(h,
			       "SELECT project, state, count(*) FROM jobs "
			       "WHERE state NOT IN ('queued', 'running') GROUP BY project, state",
			       -1, &st, NULL) != SQLITE_OK)
		return fail(h, err, "count jobs");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		const char *s = (const char *)sqlite3_column_text(st, 1);

		if (p != NULL && s != NULL)
			fn(ctx, p, s, (uint64_t)sqlite3_column_int64(st, 2));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail(h, err, "count jobs");
	return 0;
}

int kiln_stats_queue(struct kiln_db *db, struct kiln_stats_queue *q, struct kiln_error **err)
{
	sqlite3 *h = kiln_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	int rc;

	memset(q, 0, sizeof(*q));
	if (sqlite3_prepare_v2(h,
			       "SELECT (SELECT count(*) FROM jobs WHERE state = 'queued'),"
			       " (SELECT count(*) FROM jobs WHERE state = 'running'),"
			       " (SELECT min(created_at) FROM jobs WHERE state = 'queued')",
			       -1, &st, NULL) != SQLITE_OK)
		return fail(h, err, "queue");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		q->queued = sqlite3_column_int64(st, 0);
		q->running = sqlite3_column_int64(st, 1);
		q->oldest_queued_at = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return fail(h, err, "queue");
	return 0;
}

static double num_or(json_t *v, double scale)
{
	if (json_is_integer(v))
		return (double)json_integer_value(v) * scale;
	if (json_is_real(v))
		return json_real_value(v) * scale;
	return -1;
}

static void parse_report(const char *text, struct kiln_stats_job *j)
{
	json_t *r = text ? json_loads(text, 0, NULL) : NULL, *den;
	const char *name;
	json_t *v;
	double u, s;

	if (r == NULL)
		return;
	j->wall_seconds = num_or(json_object_get(r, "wall_time_ms"), 1e-3);
	j->setup_seconds = num_or(json_object_get(r, "setup_ms"), 1e-3);
	u = num_or(json_object_get(r, "user_cpu_ms"), 1e-3);
	s = num_or(json_object_get(r, "system_cpu_ms"), 1e-3);
	j->cpu_seconds = u >= 0 && s >= 0 ? u + s : -1;
	j->peak_memory = num_or(json_object_get(r, "peak_memory_bytes"), 1);
	v = json_object_get(r, "seccomp_denials");
	j->seccomp_denials = json_is_integer(v) && json_integer_value(v) > 0
				     ? (uint64_t)json_integer_value(v)
				     : 0;
	den = json_object_get(r, "denied_syscalls");
	json_object_foreach(den, name, v)
	{
		if (j->ndenied >= sizeof(j->denied) / sizeof(j->denied[0]))
			break;
		snprintf(j->denied[j->ndenied].name, sizeof(j->denied[0].name), "%s", name);
		j->denied[j->ndenied].count = json_is_integer(v) && json_integer_value(v) > 0
						      ? (uint64_t)json_integer_value(v)
						      : 0;
		j->ndenied++;
	}
	json_decref(r);
}

int kiln_stats_job(struct kiln_db *db, int64_t id, struct kiln_stats_job *j,
		   struct kiln_error **err)
{
	sqlite3 *h = kiln_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	int rc;

	memset(j, 0, sizeof(*j));
	j->wall_seconds = j->setup_seconds = j->cpu_seconds = j->peak_memory = -1;
	if (sqlite3_prepare_v2(h,
			       "SELECT project, state, coalesce(reason, ''), created_at,"
			       " coalesce(started_at, 0), coalesce(finished_at, 0), report_json "
			       "FROM jobs WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		sqlite3_finalize(st);
		return fail(h, err, "read job");
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(j->project, sizeof(j->project), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		snprintf(j->state, sizeof(j->state), "%s",
			 (const char *)sqlite3_column_text(st, 1));
		snprintf(j->reason, sizeof(j->reason), "%s",
			 (const char *)sqlite3_column_text(st, 2));
		j->created_at = sqlite3_column_int64(st, 3);
		j->started_at = sqlite3_column_int64(st, 4);
		j->finished_at = sqlite3_column_int64(st, 5);
		parse_report((const char *)sqlite3_column_text(st, 6), j);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return kiln_error_set(err, ENOENT, "no job %lld", (long long)id);
	if (rc != SQLITE_ROW)
		return fail(h, err, "read job");
	return 0;
}

int kiln_stats_violations(struct kiln_db *db, int limit, kiln_stats_violation_fn fn, void *ctx,
			  struct kiln_error **err)
{
	sqlite3 *h = kiln_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(
		    h,
		    "SELECT id, project, coalesce(finished_at, 0), coalesce(reason, ''),"
		    " coalesce(json_extract(report_json, '$.seccomp_denials'), 0) FROM jobs "
		    "WHERE report_json IS NOT NULL AND json_valid(report_json) AND"
		    " (json_extract(report_json, '$.seccomp_denials') > 0 OR reason IN"
		    " ('memory', 'pids', 'disk', 'timeout', 'output-limit', 'secret_in_artifact'))"
		    " ORDER BY id DESC LIMIT ?",
		    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int(st, 1, limit) != SQLITE_OK) {
		sqlite3_finalize(st);
		return fail(h, err, "violations");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0), fin = sqlite3_column_int64(st, 2);
		const char *project = (const char *)sqlite3_column_text(st, 1);
		const char *reason = (const char *)sqlite3_column_text(st, 3);
		int64_t den = sqlite3_column_int64(st, 4);
		char kind[48];

		if (project == NULL || reason == NULL)
			continue;
		if (den > 0)
			fn(ctx, id, project, fin, "denied_syscall", den);
		if (strcmp(reason, "memory") == 0 || strcmp(reason, "pids") == 0 ||
		    strcmp(reason, "disk") == 0 || strcmp(reason, "timeout") == 0 ||
		    strcmp(reason, "output-limit") == 0) {
			snprintf(kind, sizeof(kind), "limit_hit:%s", reason);
			fn(ctx, id, project, fin, kind, 1);
		}
		if (strcmp(reason, "secret_in_artifact") == 0)
			fn(ctx, id, project, fin, "secret_in_artifact", 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail(h, err, "violations");
	/* Refused egress (docs/egress.md), per job. */
	st = NULL;
	if (sqlite3_prepare_v2(
		    h,
		    "SELECT job_id, project, max(at), count(*) FROM egress WHERE allowed = 0"
		    " GROUP BY job_id ORDER BY job_id DESC LIMIT ?",
		    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int(st, 1, limit) != SQLITE_OK) {
		sqlite3_finalize(st);
		return fail(h, err, "violations");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *project = (const char *)sqlite3_column_text(st, 1);

		if (project != NULL)
			fn(ctx, sqlite3_column_int64(st, 0), project, sqlite3_column_int64(st, 2),
			   "egress_denied", sqlite3_column_int64(st, 3));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail(h, err, "violations");
	return 0;
}

int kiln_stats_rejections(struct kiln_db *db, int limit, kiln_stats_rejection_fn fn, void *ctx,
			  struct kiln_error **err)
{
	sqlite3 *h = kiln_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(h,
			       "SELECT created_at, project, code, key_id, message FROM "
			       "submission_rejections ORDER BY id DESC LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int(st, 1, limit) != SQLITE_OK) {
		sqlite3_finalize(st);
		return fail(h, err, "rejections");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *project = (const char *)sqlite3_column_text(st, 1);
		const char *code = (const char *)sqlite3_column_text(st, 2);
		const char *msg = (const char *)sqlite3_column_text(st, 4);

		if (project != NULL && code != NULL)
			fn(ctx, sqlite3_column_int64(st, 0), project, code,
			   (const char *)sqlite3_column_text(st, 3), msg ? msg : "");
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail(h, err, "rejections");
	return 0;
}
