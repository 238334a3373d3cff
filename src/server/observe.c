/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What kilnd learns from every finished job: the metrics of metrics.h and
 * the anomaly checks of alerts.c. Called by the worker once the outcome is
 * in the database, and once at start-up to seed the job counters.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

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

void kiln_observe_start(struct kiln_server *s, struct kiln_db *db)
{
	struct kiln_error *err = NULL;

	(void)s;
	kiln_metrics_init(KILN_VERSION);
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
	if ((lim = limit_of(j.reason)) != NULL) {
		kiln_metrics_count(KILN_M_VIOLATIONS, "limit_hit");
		kiln_metrics_count(KILN_M_LIMITS_HIT, lim);
	}
	kiln_alerts_check(s, db, id, &j);
}
