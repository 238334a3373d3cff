/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The job lifecycle as one [state][event] table (s6-supervise style). Every
 * cell is spelled out: a refused transition is an explicit -1, so adding a
 * state or an event makes the compiler and the table test point at every
 * decision that has to be made for it.
 */
#include "server/job.h"

#include <stddef.h>
#include <string.h>

#define NO (-1)

static const int next_state[KILN_JOB__NSTATES][KILN_EV__NEVENTS] = {
	[KILN_JOB_QUEUED] =
		{
			[KILN_EV_START] = KILN_JOB_RUNNING,
			[KILN_EV_SUCCEED] = NO,
			[KILN_EV_FAIL] = NO,
			[KILN_EV_TIMEOUT] = NO,
			[KILN_EV_CANCEL] = KILN_JOB_CANCELLED,
			[KILN_EV_REJECT] = KILN_JOB_REJECTED,
			[KILN_EV_CRASH] = NO,
			[KILN_EV_RETRY] = NO,
		},
	[KILN_JOB_RUNNING] =
		{
			[KILN_EV_START] = NO,
			[KILN_EV_SUCCEED] = KILN_JOB_SUCCEEDED,
			[KILN_EV_FAIL] = KILN_JOB_FAILED,
			[KILN_EV_TIMEOUT] = KILN_JOB_TIMED_OUT,
			[KILN_EV_CANCEL] = KILN_JOB_CANCELLED,
			[KILN_EV_REJECT] = NO,
			[KILN_EV_CRASH] = KILN_JOB_INTERRUPTED,
			[KILN_EV_RETRY] = KILN_JOB_QUEUED,
		},
	/* Final states accept nothing: a late event (a worker finishing a job
	 * that was cancelled meanwhile) is refused, never applied. */
	[KILN_JOB_SUCCEEDED] = {NO, NO, NO, NO, NO, NO, NO, NO},
	[KILN_JOB_FAILED] = {NO, NO, NO, NO, NO, NO, NO, NO},
	[KILN_JOB_TIMED_OUT] = {NO, NO, NO, NO, NO, NO, NO, NO},
	[KILN_JOB_CANCELLED] = {NO, NO, NO, NO, NO, NO, NO, NO},
	[KILN_JOB_REJECTED] = {NO, NO, NO, NO, NO, NO, NO, NO},
	[KILN_JOB_INTERRUPTED] = {NO, NO, NO, NO, NO, NO, NO, NO},
};

/* A cell left out would read as 0, which is KILN_JOB_QUEUED, not "refused":
 * a new state or event must get its row/column written out above. */
_Static_assert(KILN_JOB__NSTATES == 8, "give the new state its row in next_state");
_Static_assert(KILN_EV__NEVENTS == 8, "give the new event its cell in every row of next_state");

static const char *const state_names[KILN_JOB__NSTATES] = {
	[KILN_JOB_QUEUED] = "queued",	    [KILN_JOB_RUNNING] = "running",
	[KILN_JOB_SUCCEEDED] = "succeeded", [KILN_JOB_FAILED] = "failed",
	[KILN_JOB_TIMED_OUT] = "timed_out", [KILN_JOB_CANCELLED] = "cancelled",
	[KILN_JOB_REJECTED] = "rejected",   [KILN_JOB_INTERRUPTED] = "interrupted",
};

static const char *const event_names[KILN_EV__NEVENTS] = {
	[KILN_EV_START] = "start",     [KILN_EV_SUCCEED] = "succeed", [KILN_EV_FAIL] = "fail",
	[KILN_EV_TIMEOUT] = "timeout", [KILN_EV_CANCEL] = "cancel",   [KILN_EV_REJECT] = "reject",
	[KILN_EV_CRASH] = "crash",     [KILN_EV_RETRY] = "retry",
};

/* Enums may be unsigned; compare as int so that a (enum)-1 is rejected too. */
static int state_ok(enum kiln_job_state s)
{
	return (int)s >= 0 && (int)s < KILN_JOB__NSTATES;
}

static int event_ok(enum kiln_job_event ev)
{
	return (int)ev >= 0 && (int)ev < KILN_EV__NEVENTS;
}

int kiln_job_next(enum kiln_job_state s, enum kiln_job_event ev)
{
	if (!state_ok(s) || !event_ok(ev))
		return -1;
	return next_state[s][ev];
}

bool kiln_job_state_final(enum kiln_job_state s)
{
	return state_ok(s) && s != KILN_JOB_QUEUED && s != KILN_JOB_RUNNING;
}

const char *kiln_job_state_name(enum kiln_job_state s)
{
	return state_ok(s) ? state_names[s] : "unknown";
}

int kiln_job_state_parse(const char *name)
{
	int i;

	if (name == NULL)
		return -1;
	for (i = 0; i < KILN_JOB__NSTATES; i++)
		if (strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

const char *kiln_job_event_name(enum kiln_job_event ev)
{
	return event_ok(ev) ? event_names[ev] : "unknown";
}
