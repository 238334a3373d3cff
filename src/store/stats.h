/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read-only statistics over the jobs table, for /metrics, the dashboard
 * and the anomaly baselines: counts by project and state, the queue, and
 * what one finished job measured (from its sandbox report).
 */
#ifndef KILN_STORE_STATS_H
#define KILN_STORE_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "store/db.h"

/* Calls fn once per (project, state) of the jobs in a final state. */
typedef void (*kiln_stats_count_fn)(void *ctx, const char *project, const char *state, uint64_t n);
int kiln_stats_final_counts(struct kiln_db *db, kiln_stats_count_fn fn, void *ctx,
			    struct kiln_error **err);

struct kiln_stats_queue {
	int64_t queued, running;
	int64_t oldest_queued_at; /* unix seconds, 0 when none */
};
int kiln_stats_queue(struct kiln_db *db, struct kiln_stats_queue *q, struct kiln_error **err);

/* One finished job. Times in unix seconds (0 unset); measurements < 0
 * when the report did not have them. */
struct kiln_stats_job {
	char project[64];
	char state[16];
	char reason[32];
	int64_t created_at, started_at, finished_at;
	double wall_seconds, setup_seconds, cpu_seconds, peak_memory;
	uint64_t seccomp_denials;
	/* denied syscalls by name (from the report) */
	struct {
		char name[32];
		uint64_t count;
	} denied[64];
	unsigned ndenied;
};
/* ENOENT if no such job. */
int kiln_stats_job(struct kiln_db *db, int64_t id, struct kiln_stats_job *j,
		   struct kiln_error **err);

/* The latest jobs with a violation (denied syscalls, a limit hit; then
 * refused egress), newest first within each: fn(ctx, job, project, time,
 * kind, count). kind is "denied_syscall", "limit_hit:<reason>",
 * "secret_in_artifact" or "egress_denied". */
typedef void (*kiln_stats_violation_fn)(void *ctx, int64_t job, const char *project,
					int64_t finished_at, const char *kind, int64_t count);
int kiln_stats_violations(struct kiln_db *db, int limit, kiln_stats_violation_fn fn, void *ctx,
			  struct kiln_error **err);

/* The latest refused submissions recorded by the signing checks
 * (docs/signing.md), newest first. key_id may be NULL. */
typedef void (*kiln_stats_rejection_fn)(void *ctx, int64_t at, const char *project,
					const char *code, const char *key_id, const char *message);
int kiln_stats_rejections(struct kiln_db *db, int limit, kiln_stats_rejection_fn fn, void *ctx,
			  struct kiln_error **err);

#endif
