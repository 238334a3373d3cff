/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A job's lifecycle as an explicit [state][event] table (s6-supervise style,
 * CONVENTIONS.md 8). Pure: no I/O. The store persists every transition
 * (compare-and-set on the old state) before it takes effect.
 */
#ifndef KILN_SERVER_JOB_H
#define KILN_SERVER_JOB_H

#include <stdbool.h>

enum kiln_job_state {
	KILN_JOB_QUEUED,
	KILN_JOB_RUNNING,
	KILN_JOB_SUCCEEDED,
	KILN_JOB_FAILED,
	KILN_JOB_TIMED_OUT,
	KILN_JOB_CANCELLED,
	KILN_JOB_REJECTED,
	KILN_JOB_INTERRUPTED,
	KILN_JOB__NSTATES,
};

enum kiln_job_event {
	KILN_EV_START,	 /* a worker took it                 queued -> running */
	KILN_EV_SUCCEED, /* exited 0                          running -> succeeded */
	KILN_EV_FAIL,	 /* non-zero, signal, limit, error    running -> failed */
	KILN_EV_TIMEOUT, /* the timeout limit                 running -> timed_out */
	KILN_EV_CANCEL,	 /* a client asked                    queued|running -> cancelled */
	KILN_EV_REJECT,	 /* refused before running            queued -> rejected */
	KILN_EV_CRASH,	 /* found running after a restart     running -> interrupted */
	KILN_EV_RETRY,	 /* found running, spec allows retry  running -> queued */
	KILN_EV__NEVENTS,
};

/* The state after `ev` in state `s`, or -1 when the event is not allowed
 * there (the caller answers 409 or ignores a late event). */
int kiln_job_next(enum kiln_job_state s, enum kiln_job_event ev);
bool kiln_job_state_final(enum kiln_job_state s);
const char *kiln_job_state_name(enum kiln_job_state s);
/* -1 if unknown */
int kiln_job_state_parse(const char *name);
const char *kiln_job_event_name(enum kiln_job_event ev);

#endif
