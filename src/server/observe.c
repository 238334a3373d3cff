/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What kilnd learns from every finished job: the metrics of metrics.h and
 * the anomaly checks of alerts.c. Called by the worker once the outcome is
 * in the database, and once at start-up to seed the job counters.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/alerts.h"
#include "server/metrics.h"
#include "server/server.h"
#include "store/stats.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

static void seed(void *ctx, const char *project, const char *state, uint64_t n)
{
	(void)ctx;
	kiln_metrics_job_final(project, state, n);
}

/* The destinations a job's build tried to reach, from the egress records
 * (docs/egress.md): "host:port", or "addr:port" when no name was asked
 * for. For the new-destination alert rule. */
static size_t egress_destinations(struct kiln_db *db, int64_t job, char dest[][256], size_t max)
{
	struct kiln_error *err = NULL;
	json_t *l = kiln_db_egress_list(db, job, &err), *a;
	size_t i, n = 0;

	if (l == NULL) {
		kiln_error_free(&err);
		return 0;
	}
	json_array_foreach(json_object_get(l, "attempts"), i, a)
	{
		const char *host = json_string_value(json_object_get(a, "host"));
		const char *addr = json_string_value(json_object_get(a, "addr"));
		json_int_t port = json_integer_value(json_object_get(a, "port"));
		const char *who = host && host[0] ? host : addr;
		char d[256];
		bool dup = false;

		if (who == NULL || who[0] == '\0' || n == max)
			continue;
		snprintf(d, sizeof(d), "%s:%lld", who, (long long)port);
		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(dest[k], d) == 0;
		if (!dup)
			memcpy(dest[n++], d, sizeof(d));
	}
	json_decref(l);
	return n;
}

/* Attempts the egress proxy or the sinkhole refused. */
static uint64_t egress_denied(struct kiln_db *db, int64_t job)
{
	struct kiln_error *err = NULL;
	json_t *l = kiln_db_egress_list(db, job, &err), *a;
	uint64_t n = 0;
	size_t i;

	if (l == NULL) {
		kiln_error_free(&err);
		return 0;
	}
	json_array_foreach(json_object_get(l, "attempts"), i, a) n +=
		!json_is_true(json_object_get(a, "allowed"));
	json_decref(l);
	return n;
}

void kiln_observe_start(struct kiln_server *s, struct kiln_db *db)
{
	struct kiln_error *err = NULL;

	(void)s;
	kiln_metrics_init(KILN_VERSION);
	kiln_alerts_set_egress_source(egress_destinations);
	if (kiln_stats_final_counts(db, seed, NULL, &err) < 0) {
		kiln_logf("metrics: %s (job counters start at zero)", err ? err->msg : "?");
		kiln_error_free(&err);
	}
}

/* The engine's reasons that mean a limit stopped the build. */
static const char *limit_of(const char *reason)
{
	if (strcmp(reason, "memory") == 0)
		return "memory";
	if (strcmp(reason, "pids") == 0)
		return "pids";
	if (strcmp(reason, "disk") == 0)
		return "disk";
	if (strcmp(reason, "timeout") == 0)
		return "timeout";
	if (strcmp(reason, "output-limit") == 0)
		return "output";
	return NULL;
}

void kiln_observe_job(struct kiln_server *s, struct kiln_db *db, int64_t id)
{
	struct kiln_error *err = NULL;
	struct kiln_stats_job j;
	struct kiln_metrics_run m;
	const char *lim;

	if (kiln_stats_job(db, id, &j, &err) < 0) {
		kiln_logf("job %" PRId64 ": metrics: %s", id, err ? err->msg : "?");
		kiln_error_free(&err);
		return;
	}
	kiln_metrics_job_final(j.project, j.state, 1);
	m = (struct kiln_metrics_run){
		.project = j.project,
		.wait_seconds = j.started_at > 0 && j.started_at >= j.created_at
					? (double)(j.started_at - j.created_at)
					: -1,
		.duration_seconds = j.wall_seconds,
		.setup_seconds = j.setup_seconds,
		.cpu_seconds = j.cpu_seconds,
		.peak_memory_bytes = j.peak_memory > 0 ? j.peak_memory : -1,
	};
	kiln_metrics_run(&m);
	if (j.seccomp_denials > 0)
		kiln_metrics_add(KILN_M_VIOLATIONS, "denied_syscall", j.seccomp_denials);
	{
		uint64_t d = egress_denied(db, id);
		if (d > 0)
			kiln_metrics_add(KILN_M_VIOLATIONS, "egress_denied", d);
	}
	if ((lim = limit_of(j.reason)) != NULL) {
		kiln_metrics_count(KILN_M_VIOLATIONS, "limit_hit");
		kiln_metrics_count(KILN_M_LIMITS_HIT, lim);
	}
	kiln_alerts_check(s, db, id, &j);
}
