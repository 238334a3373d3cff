/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A job's egress, between the worker and the proxy (egress.h): decided
 * from the spec and the policy in force, served while the sandbox runs,
 * recorded afterwards. Denials (and, in audit mode, what the allowlist
 * would have denied) go to the job's log as they happen; every attempt is
 * stored in the database when the job ends.
 */
#ifndef KILN_SERVER_JOB_EGRESS_H
#define KILN_SERVER_JOB_EGRESS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "server/egress.h"
#include "server/policy.h"
#include "server/server.h"
#include "server/spec.h"
#include "store/logs.h"

#define KILN_JOB_EGRESS_MAX_RECORDS 2000

struct kiln_job_egress {
	bool on;
	bool audit;
	struct kiln_egress_rule *rules;
	size_t nrules;
	/* the prepared namespace, for the runner; -1 when off */
	int netns_fd;
	struct kiln_egress *proxy;
	struct kiln_log *log;
	pthread_mutex_t *log_mu;
	pthread_mutex_t mu;
	json_t *attempts; /* under mu */
	uint64_t allowed, denied, dropped;
	char **map_names, **map_addrs;
	size_t nmap;
};

/* Before anything else (kiln_job_egress_free is then always safe). */
void kiln_job_egress_clear(struct kiln_job_egress *g);
/* Decide from the spec (network: egress) and the policy; copies the
 * allowlist. -1 with msg when the policy's allowlist does not parse. */
int kiln_job_egress_init(struct kiln_job_egress *g, const struct kiln_policy *pol,
			 const struct kiln_spec *spec, char *msg, size_t len);
/* Prepare the namespace and start the proxy (when on). log writes happen
 * under log_mu, which the caller also holds for its own writes. */
int kiln_job_egress_start(struct kiln_job_egress *g, const struct kiln_server *s,
			  struct kiln_log *log, pthread_mutex_t *log_mu, struct kiln_error **err);
/* Stop the proxy (every connection closed) and drop the namespace. */
void kiln_job_egress_stop(struct kiln_job_egress *g);
/* Store what was recorded. */
int kiln_job_egress_save(struct kiln_job_egress *g, struct kiln_db *db, int64_t job,
			 const char *project, struct kiln_error **err);
void kiln_job_egress_free(struct kiln_job_egress *g);

#endif
