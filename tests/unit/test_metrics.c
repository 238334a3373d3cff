/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics registry: bounded labels, folding into "other", rendering. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "tap.h"

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

static size_t count_prefix(const char *text, const char *prefix)
{
	size_t n = 0;
	const char *p = text;

	while ((p = strstr(p, prefix)) != NULL) {
		if (p == text || p[-1] == '\n')
			n++;
		p += strlen(prefix);
	}
	return n;
}

int main(void)
{
	struct kiln_metrics_live live = {.queued = 3, .running = 1, .oldest_queued_seconds = 2.5};
	struct kiln_metrics_run run = {.project = "alpha",
				       .wait_seconds = 1,
				       .duration_seconds = 0.2,
				       .setup_seconds = 0.03,
				       .cpu_seconds = 0.1,
				       .peak_memory_bytes = 5e6};
	char name[64], label[64];
	char *t;

	kiln_metrics_init("9.9.9");
	kiln_metrics_reset();
	kiln_metrics_count(KILN_M_VIOLATIONS, "denied_syscall");
	kiln_metrics_add(KILN_M_VIOLATIONS, "egress_denied", 4);
	kiln_metrics_count(KILN_M_VIOLATIONS, "<script>alert(1)</script>");
	kiln_metrics_count(KILN_M_REJECTED, "bad_signature");
	kiln_metrics_count(KILN_M_REJECTED, NULL);
	kiln_metrics_count(KILN_M_AUTH_FAILURES, "invalid");
	kiln_metrics_job_final("alpha", "succeeded", 2);
	kiln_metrics_job_final("alpha", "running", 5);
	kiln_metrics_job_final("Bad\"Name", "failed", 1);
	for (int i = 0; i < KILN_METRICS_MAX_PROJECTS + 10; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		kiln_metrics_job_final(name, "failed", 1);
	}
	kiln_metrics_project_label("p70", label, sizeof(label));
	is_str(label, "other", "a project past the cap is labelled other");
	kiln_metrics_project_label("alpha", label, sizeof(label));
	is_str(label, "alpha", "a known project keeps its name");
	kiln_metrics_run(&run);
	kiln_metrics_gauge_set(KILN_G_AUDIT_LOG_BYTES, 12345);

	t = kiln_metrics_render(&live);
	ok(t != NULL, "render");
	if (t == NULL)
		t = strdup("");
	ok(has_line(t, "kiln_build_info{version=\"9.9.9\"} 1"), "build info");
	ok(has_line(t, "kiln_violations_total{kind=\"denied_syscall\"} 1"), "violation counted");
	ok(has_line(t, "kiln_violations_total{kind=\"egress_denied\"} 4"), "egress denials added");
	ok(has_line(t, "kiln_violations_total{kind=\"other\"} 1"),
	   "an unknown kind is folded into other");
	ok(strstr(t, "script") == NULL, "no label value from outside the lists");
	ok(has_line(t, "kiln_submissions_rejected_total{reason=\"bad_signature\"} 1"),
	   "signature reasons are pre-declared");
	ok(has_line(t, "kiln_submissions_rejected_total{reason=\"other\"} 1"),
	   "NULL reason: other");
	ok(has_line(t, "kiln_jobs_total{project=\"alpha\",state=\"succeeded\"} 2"),
	   "jobs by project and state");
	ok(!has_line(t, "kiln_jobs_total{project=\"alpha\",state=\"running\"} 5"),
	   "non-final states are not counted");
	ok(strstr(t, "Bad") == NULL, "an invalid project name never becomes a label");
	is_int((long long)count_prefix(t, "kiln_jobs_total{project=\"p"),
	       (long long)(KILN_METRICS_MAX_PROJECTS - 1) * 6,
	       "project series are capped (alpha took one slot)");
	ok(has_line(t, "kiln_jobs_total{project=\"other\",state=\"failed\"} 12"),
	   "the rest is folded into project other");
	ok(has_line(t, "kiln_queue_depth 3"), "queue depth");
	ok(has_line(t, "kiln_job_duration_seconds_bucket{le=\"0.5\"} 1"), "duration bucket");
	ok(has_line(t, "kiln_job_duration_seconds_bucket{le=\"0.1\"} 0"), "duration bucket below");
	ok(has_line(t, "kiln_job_duration_seconds_count 1"), "duration count");
	ok(has_line(t, "kiln_audit_log_bytes 12345"), "audit log size gauge");
	ok(strstr(t, "kiln_audit_checkpoint_age_seconds 0") == NULL,
	   "no checkpoint age before a checkpoint was reported");
	free(t);
	return tap_done();
}
