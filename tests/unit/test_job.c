/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The job state machine: every cell of the [state][event] table, checked
 * against an independent list of the allowed transitions (job.h), plus the
 * names the API uses (docs/api.md).
 */
#include <stdio.h>
#include <string.h>

#include "server/job.h"
#include "tap.h"

struct edge {
	enum kiln_job_state from;
	enum kiln_job_event ev;
	enum kiln_job_state to;
};

/* The transitions documented in job.h, and nothing else. */
static const struct edge allowed[] = {
	{KILN_JOB_QUEUED, KILN_EV_START, KILN_JOB_RUNNING},
	{KILN_JOB_QUEUED, KILN_EV_CANCEL, KILN_JOB_CANCELLED},
	{KILN_JOB_QUEUED, KILN_EV_REJECT, KILN_JOB_REJECTED},
	{KILN_JOB_RUNNING, KILN_EV_SUCCEED, KILN_JOB_SUCCEEDED},
	{KILN_JOB_RUNNING, KILN_EV_FAIL, KILN_JOB_FAILED},
	{KILN_JOB_RUNNING, KILN_EV_TIMEOUT, KILN_JOB_TIMED_OUT},
	{KILN_JOB_RUNNING, KILN_EV_CANCEL, KILN_JOB_CANCELLED},
	{KILN_JOB_RUNNING, KILN_EV_CRASH, KILN_JOB_INTERRUPTED},
	{KILN_JOB_RUNNING, KILN_EV_RETRY, KILN_JOB_QUEUED},
};

static int expected(int s, int ev)
{
	size_t i;

	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if ((int)allowed[i].from == s && (int)allowed[i].ev == ev)
			return (int)allowed[i].to;
	return -1;
}

static void test_table(void)
{
	int s, ev, cells = 0, refused = 0;

	is_int(KILN_JOB__NSTATES, 8, "8 states");
	is_int(KILN_EV__NEVENTS, 8, "8 events");
	for (s = 0; s < KILN_JOB__NSTATES; s++) {
		for (ev = 0; ev < KILN_EV__NEVENTS; ev++) {
			int want = expected(s, ev);
			int got = kiln_job_next((enum kiln_job_state)s, (enum kiln_job_event)ev);

			cells++;
			if (want < 0)
				refused++;
			is_int(got, want, "%s + %s -> %s",
			       kiln_job_state_name((enum kiln_job_state)s),
			       kiln_job_event_name((enum kiln_job_event)ev),
			       want < 0 ? "refused"
					: kiln_job_state_name((enum kiln_job_state)want));
		}
	}
	is_int(cells, 64, "all 64 cells visited");
	is_int(refused, 64 - 9, "55 refused cells");
}

static void test_out_of_range(void)
{
	is_int(kiln_job_next((enum kiln_job_state) - 1, KILN_EV_START), -1, "state -1 refused");
	is_int(kiln_job_next(KILN_JOB__NSTATES, KILN_EV_START), -1, "state N refused");
	is_int(kiln_job_next(KILN_JOB_QUEUED, (enum kiln_job_event) - 1), -1, "event -1 refused");
	is_int(kiln_job_next(KILN_JOB_RUNNING, KILN_EV__NEVENTS), -1, "event N refused");
	is_str(kiln_job_state_name((enum kiln_job_state)99), "unknown", "bad state name");
	is_str(kiln_job_event_name((enum kiln_job_event)99), "unknown", "bad event name");
	ok(!kiln_job_state_final((enum kiln_job_state)99), "bad state is not final");
}

static void test_names(void)
{
	static const char *const api[] = {"queued",    "running",   "succeeded", "failed",
					  "timed_out", "cancelled", "rejected",	 "interrupted"};
	int i;

	for (i = 0; i < KILN_JOB__NSTATES; i++) {
		is_str(kiln_job_state_name((enum kiln_job_state)i), api[i], "state %d name", i);
		is_int(kiln_job_state_parse(api[i]), i, "parse %s", api[i]);
		ok(kiln_job_state_final((enum kiln_job_state)i) == (i >= KILN_JOB_SUCCEEDED),
		   "%s final=%d", api[i], i >= KILN_JOB_SUCCEEDED);
	}
	is_int(kiln_job_state_parse("QUEUED"), -1, "parse is case-sensitive");
	is_int(kiln_job_state_parse(""), -1, "parse empty");
	is_int(kiln_job_state_parse("queued "), -1, "parse trailing space");
	is_int(kiln_job_state_parse(NULL), -1, "parse NULL");
	for (i = 0; i < KILN_EV__NEVENTS; i++) {
		const char *n = kiln_job_event_name((enum kiln_job_event)i);
		ok(n != NULL && strcmp(n, "unknown") != 0, "event %d has a name (%s)", i, n);
	}
}

/* A final state is reached from every non-final state by some path and,
 * once there, nothing moves the job again. */
static void test_final_absorbing(void)
{
	int s, ev, moved = 0;

	for (s = 0; s < KILN_JOB__NSTATES; s++) {
		if (!kiln_job_state_final((enum kiln_job_state)s))
			continue;
		for (ev = 0; ev < KILN_EV__NEVENTS; ev++)
			if (kiln_job_next((enum kiln_job_state)s, (enum kiln_job_event)ev) >= 0)
				moved++;
	}
	is_int(moved, 0, "final states accept no event");
}

int main(void)
{
	test_table();
	test_out_of_range();
	test_names();
	test_final_absorbing();
	return tap_done();
}
