/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics registry (metrics.h): fixed arrays under one mutex, rendered
 * in the Prometheus text exposition format 0.0.4.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/job.h"
#include "server/metrics.h"

#define OTHER "other"

struct counter_def {
	const char *name, *help, *label;
	/* NULL-terminated; "other" is implied as the last value */
	const char *const *values;
};

static const char *const violation_kinds[] = {"denied_syscall", "egress_denied", "limit_hit",
					      "secret_in_artifact", NULL};
static const char *const limit_names[] = {"memory", "pids", "disk", "timeout", "output", NULL};
/* The error codes a refused submission can carry (docs/errors.md),
 * signature and policy refusals included. */
static const char *const reject_reasons[] = {"bad_request",
					     "too_large",
					     "spec_invalid",
					     "archive_invalid",
					     "forbidden",
					     "not_found",
					     "unauthorized",
					     "too_many",
					     "internal",
					     "unavailable",
					     "policy_denied",
					     "signature_required",
					     "unknown_key",
					     "bad_signature",
					     "digest_mismatch",
					     "manifest_invalid",
					     "manifest_expired",
					     "nonce_replayed",
					     NULL};
static const char *const auth_reasons[] = {"missing", "invalid", "scope",  "project",
					   "login",   "session", "origin", NULL};
static const char *const alert_rules[] = {"new_egress_destination",
					  "first_denied_syscall",
					  "denials_above_baseline",
					  "duration_above_baseline",
					  "cpu_above_baseline",
					  "memory_above_baseline",
					  NULL};
static const char *const webhook_results[] = {"delivered", "retried", "failed", "dropped", NULL};

static const struct counter_def counters[KILN_M__NCOUNTERS] = {
	[KILN_M_VIOLATIONS] = {"kiln_violations_total", "Policy violations by builds, by kind.",
			       "kind", violation_kinds},
	[KILN_M_LIMITS_HIT] = {"kiln_limits_hit_total", "Jobs stopped by a resource limit.",
			       "limit", limit_names},
	[KILN_M_REJECTED] = {"kiln_submissions_rejected_total",
			     "Job submissions refused, by error code.", "reason", reject_reasons},
	[KILN_M_AUTH_FAILURES] = {"kiln_auth_failures_total",
				  "Requests refused for authentication or authorisation.", "reason",
				  auth_reasons},
	[KILN_M_ALERTS] = {"kiln_alerts_total", "Anomaly alerts raised, by rule.", "rule",
			   alert_rules},
	[KILN_M_WEBHOOK] = {"kiln_webhook_deliveries_total",
			    "Alert webhook delivery attempts, by result.", "result",
			    webhook_results},
};

#define MAX_VALUES 24

struct histogram {
	const char *name, *help;
	const double *bounds;
	size_t nbounds;
	uint64_t buckets[16];
	uint64_t count;
	double sum;
};

static const double wait_bounds[] = {0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600};
static const double duration_bounds[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
static const double setup_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
static const double cpu_bounds[] = {0.01, 0.1, 0.5, 1, 5, 10, 60, 300, 1800, 7200};
static const double mem_bounds[] = {1 << 20,	      16 << 20,		64 << 20,	  256 << 20,
				    1024.0 * 1048576, 4096.0 * 1048576, 16384.0 * 1048576};

enum { H_WAIT, H_DURATION, H_SETUP, H_CPU, H_MEM, H__N };

#define NB(a) (sizeof(a) / sizeof((a)[0]))

static struct {
	pthread_mutex_t mu;
	bool inited;
	char version[64];
	double start_time;
	uint64_t counts[KILN_M__NCOUNTERS][MAX_VALUES];
	double gauges[KILN_G__NGAUGES];
	bool gauge_set[KILN_G__NGAUGES];
	char projects[KILN_METRICS_MAX_PROJECTS][64];
	size_t nprojects;
	/* [project slot or KILN_METRICS_MAX_PROJECTS for "other"][state] */
	uint64_t jobs[KILN_METRICS_MAX_PROJECTS + 1][KILN_JOB__NSTATES];
	double cpu[KILN_METRICS_MAX_PROJECTS + 1];
	struct histogram h[H__N];
	struct kiln_metrics_event recent[KILN_METRICS_RECENT];
	size_t nrecent, recent_next;
} M = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void hist_set(int i, const char *name, const char *help, const double *bounds, size_t n)
{
	memset(&M.h[i], 0, sizeof(M.h[i]));
	M.h[i].name = name;
	M.h[i].help = help;
	M.h[i].bounds = bounds;
	M.h[i].nbounds = n;
}

static void histograms_init(void)
{
	hist_set(H_WAIT, "kiln_job_wait_seconds",
		 "Time jobs spent queued before a worker started them.", wait_bounds,
		 NB(wait_bounds));
	hist_set(H_DURATION, "kiln_job_duration_seconds",
		 "Wall-clock time of builds in the sandbox.", duration_bounds, NB(duration_bounds));
	hist_set(H_SETUP, "kiln_sandbox_start_seconds",
		 "Sandbox start latency: from the start of the run to the start of the build.",
		 setup_bounds, NB(setup_bounds));
	hist_set(H_CPU, "kiln_job_cpu_seconds", "CPU time (user + system) of builds.", cpu_bounds,
		 NB(cpu_bounds));
	hist_set(H_MEM, "kiln_job_peak_memory_bytes", "Peak memory of builds (cgroup), in bytes.",
		 mem_bounds, NB(mem_bounds));
}

void kiln_metrics_init(const char *version)
{
	struct timespec ts;

	pthread_mutex_lock(&M.mu);
	if (!M.inited) {
		clock_gettime(CLOCK_REALTIME, &ts);
		M.start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
		histograms_init();
		M.inited = true;
	}
	snprintf(M.version, sizeof(M.version), "%s", version ? version : "unknown");
	pthread_mutex_unlock(&M.mu);
}

void kiln_metrics_reset(void)
{
	pthread_mutex_lock(&M.mu);
	memset(M.counts, 0, sizeof(M.counts));
	memset(M.gauges, 0, sizeof(M.gauges));
	memset(M.gauge_set, 0, sizeof(M.gauge_set));
	memset(M.projects, 0, sizeof(M.projects));
	M.nprojects = 0;
	memset(M.jobs, 0, sizeof(M.jobs));
	memset(M.cpu, 0, sizeof(M.cpu));
	M.nrecent = M.recent_next = 0;
	histograms_init();
	M.inited = true;
	pthread_mutex_unlock(&M.mu);
}

static size_t value_index(enum kiln_metric_counter c, const char *v)
{
	const char *const *vals = counters[c].values;
	size_t i;

	for (i = 0; vals[i] != NULL; i++)
		if (v != NULL && strcmp(vals[i], v) == 0)
			return i;
	/* i is the slot of "other" */
	return i;
}

void kiln_metrics_add(enum kiln_metric_counter c, const char *label_value, uint64_t n)
{
	if ((unsigned)c >= KILN_M__NCOUNTERS)
		return;
	size_t i = value_index(c, label_value);

	pthread_mutex_lock(&M.mu);
	M.counts[c][i] += n;
	if (c == KILN_M_REJECTED || c == KILN_M_AUTH_FAILURES || c == KILN_M_ALERTS) {
		struct kiln_metrics_event *e = &M.recent[M.recent_next];

		e->time = (int64_t)time(NULL);
		e->kind = c == KILN_M_REJECTED ? "submission_rejected"
			  : c == KILN_M_ALERTS ? "alert"
					       : "auth_failure";
		snprintf(e->reason, sizeof(e->reason), "%s",
			 counters[c].values[i] ? counters[c].values[i] : OTHER);
		M.recent_next = (M.recent_next + 1) % KILN_METRICS_RECENT;
		if (M.nrecent < KILN_METRICS_RECENT)
			M.nrecent++;
	}
	pthread_mutex_unlock(&M.mu);
}

size_t kiln_metrics_recent(struct kiln_metrics_event *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&M.mu);
	for (size_t k = 0; k < M.nrecent && n < max; k++) {
		size_t idx = (M.recent_next + KILN_METRICS_RECENT - 1 - k) % KILN_METRICS_RECENT;
		out[n++] = M.recent[idx];
	}
	pthread_mutex_unlock(&M.mu);
	return n;
}

void kiln_metrics_count(enum kiln_metric_counter c, const char *label_value)
{
	kiln_metrics_add(c, label_value, 1);
}

void kiln_metrics_gauge_set(enum kiln_metric_gauge g, double v)
{
	if ((unsigned)g >= KILN_G__NGAUGES)
		return;
	pthread_mutex_lock(&M.mu);
	M.gauges[g] = v;
	M.gauge_set[g] = true;
	pthread_mutex_unlock(&M.mu);
}

/* Under M.mu. Project names are checked by the API ([a-z0-9-]); anything
 * else still never becomes a label. */
static size_t project_slot(const char *project)
{
	size_t i;

	if (project == NULL || project[0] == '\0' || strlen(project) > 63 ||
	    strcmp(project, OTHER) == 0)
		return KILN_METRICS_MAX_PROJECTS;
	for (const char *p = project; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return KILN_METRICS_MAX_PROJECTS;
	for (i = 0; i < M.nprojects; i++)
		if (strcmp(M.projects[i], project) == 0)
			return i;
	if (M.nprojects == KILN_METRICS_MAX_PROJECTS)
		return KILN_METRICS_MAX_PROJECTS;
	snprintf(M.projects[M.nprojects], sizeof(M.projects[0]), "%s", project);
	return M.nprojects++;
}

void kiln_metrics_project_label(const char *project, char *buf, size_t len)
{
	size_t i;

	pthread_mutex_lock(&M.mu);
	i = project_slot(project);
	snprintf(buf, len, "%s", i < KILN_METRICS_MAX_PROJECTS ? M.projects[i] : OTHER);
	pthread_mutex_unlock(&M.mu);
}

void kiln_metrics_job_final(const char *project, const char *state, uint64_t n)
{
	int st = state ? kiln_job_state_parse(state) : -1;

	if (st < 0 || !kiln_job_state_final((enum kiln_job_state)st))
		return;
	pthread_mutex_lock(&M.mu);
	M.jobs[project_slot(project)][st] += n;
	pthread_mutex_unlock(&M.mu);
}

static void observe(struct histogram *h, double v)
{
	if (!(v >= 0) || isinf(v))
		return;
	for (size_t i = 0; i < h->nbounds; i++)
		if (v <= h->bounds[i])
			h->buckets[i]++;
	h->count++;
	h->sum += v;
}

void kiln_metrics_run(const struct kiln_metrics_run *m)
{
	pthread_mutex_lock(&M.mu);
	if (!M.inited) {
		histograms_init();
		M.inited = true;
	}
	observe(&M.h[H_WAIT], m->wait_seconds);
	observe(&M.h[H_DURATION], m->duration_seconds);
	observe(&M.h[H_SETUP], m->setup_seconds);
	observe(&M.h[H_CPU], m->cpu_seconds);
	observe(&M.h[H_MEM], m->peak_memory_bytes);
	if (m->cpu_seconds >= 0)
		M.cpu[project_slot(m->project)] += m->cpu_seconds;
	pthread_mutex_unlock(&M.mu);
}

/* ---- rendering ---- */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t ncap = b->cap * 2 + (size_t)n + 1;
			char *np = realloc(b->p, ncap);
			if (np == NULL) {
				b->oom = true;
				return;
			}
			b->p = np;
			b->cap = ncap;
		}
	}
}

static void head(struct buf *b, const char *name, const char *type, const char *help)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Integers print without an exponent; doubles exactly. */
static void num(struct buf *b, double v)
{
	if (isnan(v))
		bprintf(b, "NaN");
	else if (v == floor(v) && fabs(v) < 1e15)
		bprintf(b, "%.0f", v);
	else {
		/* The shortest of these that reads back as v: 0.1, not
		 * 0.10000000000000001. */
		char t[40];

		snprintf(t, sizeof(t), "%.15g", v);
		if (strtod(t, NULL) != v)
			snprintf(t, sizeof(t), "%.17g", v);
		bprintf(b, "%s", t);
	}
}

static void render_histogram(struct buf *b, const struct histogram *h)
{
	head(b, h->name, "histogram", h->help);
	for (size_t i = 0; i < h->nbounds; i++) {
		bprintf(b, "%s_bucket{le=\"", h->name);
		num(b, h->bounds[i]);
		bprintf(b, "\"} %llu\n", (unsigned long long)h->buckets[i]);
	}
	bprintf(b, "%s_bucket{le=\"+Inf\"} %llu\n", h->name, (unsigned long long)h->count);
	bprintf(b, "%s_sum ", h->name);
	num(b, h->sum);
	bprintf(b, "\n%s_count %llu\n", h->name, (unsigned long long)h->count);
}

static const char *slot_name(size_t i)
{
	return i < KILN_METRICS_MAX_PROJECTS ? M.projects[i] : OTHER;
}

char *kiln_metrics_render(const struct kiln_metrics_live *live)
{
	struct buf b = {0};
	struct timespec ts;
	double now;

	b.cap = 16384;
	b.p = malloc(b.cap);
	if (b.p == NULL)
		return NULL;
	b.p[0] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;

	pthread_mutex_lock(&M.mu);
	if (!M.inited) {
		histograms_init();
		M.inited = true;
	}
	head(&b, "kiln_build_info", "gauge", "kilnd's version; the value is always 1.");
	bprintf(&b, "kiln_build_info{version=\"%s\"} 1\n", M.version[0] ? M.version : "unknown");
	head(&b, "kiln_start_time_seconds", "gauge", "When kilnd started, in Unix seconds.");
	bprintf(&b, "kiln_start_time_seconds ");
	num(&b, floor(M.start_time));
	bprintf(&b, "\n");

	head(&b, "kiln_jobs_total", "counter",
	     "Jobs that reached a final state, by project and state (seeded from the "
	     "database at start-up).");
	for (size_t p = 0; p <= KILN_METRICS_MAX_PROJECTS; p++) {
		if (p < KILN_METRICS_MAX_PROJECTS && p >= M.nprojects)
			continue;
		for (int st = 0; st < KILN_JOB__NSTATES; st++) {
			if (!kiln_job_state_final((enum kiln_job_state)st))
				continue;
			if (p == KILN_METRICS_MAX_PROJECTS && M.jobs[p][st] == 0)
				continue;
			bprintf(&b, "kiln_jobs_total{project=\"%s\",state=\"%s\"} %llu\n",
				slot_name(p), kiln_job_state_name((enum kiln_job_state)st),
				(unsigned long long)M.jobs[p][st]);
		}
	}
	head(&b, "kiln_job_cpu_seconds_total", "counter",
	     "CPU time (user + system) used by builds, by project.");
	for (size_t p = 0; p <= KILN_METRICS_MAX_PROJECTS; p++) {
		if (p < KILN_METRICS_MAX_PROJECTS && p >= M.nprojects)
			continue;
		if (p == KILN_METRICS_MAX_PROJECTS && M.cpu[p] == 0)
			continue;
		bprintf(&b, "kiln_job_cpu_seconds_total{project=\"%s\"} ", slot_name(p));
		num(&b, M.cpu[p]);
		bprintf(&b, "\n");
	}

	head(&b, "kiln_queue_depth", "gauge", "Jobs waiting in the queue.");
	bprintf(&b, "kiln_queue_depth %lld\n", (long long)(live ? live->queued : 0));
	head(&b, "kiln_jobs_running", "gauge", "Jobs running now.");
	bprintf(&b, "kiln_jobs_running %lld\n", (long long)(live ? live->running : 0));
	head(&b, "kiln_queue_oldest_wait_seconds", "gauge",
	     "How long the oldest queued job has waited (0: the queue is empty).");
	bprintf(&b, "kiln_queue_oldest_wait_seconds ");
	num(&b, live ? live->oldest_queued_seconds : 0);
	bprintf(&b, "\n");

	for (int h = 0; h < H__N; h++)
		render_histogram(&b, &M.h[h]);

	for (int c = 0; c < KILN_M__NCOUNTERS; c++) {
		const struct counter_def *d = &counters[c];
		size_t i;

		head(&b, d->name, "counter", d->help);
		for (i = 0; d->values[i] != NULL; i++)
			bprintf(&b, "%s{%s=\"%s\"} %llu\n", d->name, d->label, d->values[i],
				(unsigned long long)M.counts[c][i]);
		bprintf(&b, "%s{%s=\"%s\"} %llu\n", d->name, d->label, OTHER,
			(unsigned long long)M.counts[c][i]);
	}

	head(&b, "kiln_audit_log_bytes", "gauge", "Size of the audit log, in bytes.");
	if (M.gauge_set[KILN_G_AUDIT_LOG_BYTES]) {
		bprintf(&b, "kiln_audit_log_bytes ");
		num(&b, M.gauges[KILN_G_AUDIT_LOG_BYTES]);
		bprintf(&b, "\n");
	}
	head(&b, "kiln_audit_last_checkpoint_timestamp_seconds", "gauge",
	     "When the audit log was last checkpointed, in Unix seconds.");
	if (M.gauge_set[KILN_G_AUDIT_CHECKPOINT_TIME]) {
		bprintf(&b, "kiln_audit_last_checkpoint_timestamp_seconds ");
		num(&b, M.gauges[KILN_G_AUDIT_CHECKPOINT_TIME]);
		bprintf(&b, "\n");
	}
	head(&b, "kiln_audit_checkpoint_age_seconds", "gauge",
	     "Seconds since the audit log was last checkpointed.");
	if (M.gauge_set[KILN_G_AUDIT_CHECKPOINT_TIME]) {
		double t = M.gauges[KILN_G_AUDIT_CHECKPOINT_TIME];

		bprintf(&b, "kiln_audit_checkpoint_age_seconds ");
		num(&b, now > t ? floor(now - t) : 0);
		bprintf(&b, "\n");
	}
	pthread_mutex_unlock(&M.mu);

	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
