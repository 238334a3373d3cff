/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's metrics registry, rendered as the Prometheus text format by
 * GET /metrics (docs/metrics.md). Thread-safe behind one mutex; every call
 * is a few array operations, cheap enough for any hot path.
 *
 * Label sets are bounded by construction: every label value is taken from
 * a fixed list (kinds, reasons, limits, states); a value not on the list
 * is counted as "other". Project names are the only open set: the first
 * KILN_METRICS_MAX_PROJECTS distinct projects get their own series, later
 * ones are folded into project="other". No job id, token id, path or text
 * from a build ever becomes a label.
 *
 * Counters live in memory and restart at zero with kilnd, as Prometheus
 * expects (rate() handles resets), with one exception: kiln_jobs_total is
 * seeded at start-up from the database, so it counts every finished job.
 */
#ifndef KILN_SERVER_METRICS_H
#define KILN_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KILN_METRICS_MAX_PROJECTS 64

/* Counters with one enumerated label (the list of values is in metrics.c
 * and in docs/metrics.md). */
enum kiln_metric_counter {
	/* kiln_violations_total{kind}: denied_syscall, egress_denied, limit_hit,
	 * secret_in_artifact */
	KILN_M_VIOLATIONS,
	/* kiln_limits_hit_total{limit}: memory, pids, disk, timeout, output */
	KILN_M_LIMITS_HIT,
	/* kiln_submissions_rejected_total{reason}: the API error codes of a
	 * refused POST /v1/jobs, signature and policy reasons included */
	KILN_M_REJECTED,
	/* kiln_auth_failures_total{reason}: missing, invalid, scope, project,
	 * login, session */
	KILN_M_AUTH_FAILURES,
	/* kiln_alerts_total{rule}: the anomaly rules of docs/alerts.md */
	KILN_M_ALERTS,
	/* kiln_webhook_deliveries_total{result}: delivered, retried, failed,
	 * dropped */
	KILN_M_WEBHOOK,
	KILN_M__NCOUNTERS,
};

/* Gauges set from outside (the audit log, later merges). */
enum kiln_metric_gauge {
	/* kiln_audit_log_bytes */
	KILN_G_AUDIT_LOG_BYTES,
	/* kiln_audit_last_checkpoint_timestamp_seconds: rendered together with
	 * kiln_audit_checkpoint_age_seconds (age at scrape time) */
	KILN_G_AUDIT_CHECKPOINT_TIME,
	KILN_G__NGAUGES,
};

/* Start-up: the build info and the time kilnd started. Idempotent. */
void kiln_metrics_init(const char *version);
/* Clear everything (unit tests). */
void kiln_metrics_reset(void);

/* +1 (or +n) on a counter; label_value NULL or not on the list: "other". */
void kiln_metrics_count(enum kiln_metric_counter c, const char *label_value);
void kiln_metrics_add(enum kiln_metric_counter c, const char *label_value, uint64_t n);
void kiln_metrics_gauge_set(enum kiln_metric_gauge g, double v);

/* A job reached a final state. state: kiln_job_state_name(). */
void kiln_metrics_job_final(const char *project, const char *state, uint64_t n);

/* What a finished run measured; a field < 0 is unknown and not observed. */
struct kiln_metrics_run {
	const char *project;
	double wait_seconds;	 /* queued -> started */
	double duration_seconds; /* wall time of the build */
	double setup_seconds;	 /* sandbox start latency */
	double cpu_seconds;	 /* user + system */
	double peak_memory_bytes;
};
void kiln_metrics_run(const struct kiln_metrics_run *m);

/* Values read from the database at scrape time (api handler). */
struct kiln_metrics_live {
	int64_t queued, running;
	double oldest_queued_seconds; /* 0 when the queue is empty */
};

/* The whole exposition, malloc'd, NUL-terminated (NULL: out of memory). */
char *kiln_metrics_render(const struct kiln_metrics_live *live);

/* The project's label: itself if it has (or now gets) a slot, else
 * "other". buf >= 64 bytes. */
void kiln_metrics_project_label(const char *project, char *buf, size_t len);

/* The latest refusals (KILN_M_REJECTED, KILN_M_AUTH_FAILURES) and
 * alerts, newest first, for the dashboard's security page. Kept in memory
 * (the last KILN_METRICS_RECENT); the label values are from the lists. */
#define KILN_METRICS_RECENT 200
struct kiln_metrics_event {
	int64_t time; /* unix seconds */
	const char *kind;
	char reason[40];
};
size_t kiln_metrics_recent(struct kiln_metrics_event *out, size_t max);

#endif
