/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Anomaly alerts: per-project baselines, the rules of docs/alerts.md, and
 * the signed webhook. kiln_alerts_check() and kiln_alerts_list() are
 * declared in server.h (called by observe.c and ui.c).
 */
#ifndef KILN_SERVER_ALERTS_H
#define KILN_SERVER_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct kiln_server;
struct kiln_db;

/* Start the webhook thread when cfg.webhook_url is set: reads the HMAC key
 * from cfg.webhook_secret_file (a regular file, mode 0600 or stricter, at
 * least 32 bytes; a trailing newline is dropped). Fails closed: an alert
 * webhook that is configured but cannot sign stops kilnd at start-up. */
int kiln_alerts_start(struct kiln_server *s, struct kiln_error **err);
/* Shut-down: stop the thread; undelivered webhooks are dropped (the
 * alerts stay in the database). */
void kiln_alerts_stop(void);

/* The egress destinations ("host:port" or "addr:port") a job reached,
 * written into dest (at most max); returns how many. Until the egress
 * module sets one, the new-destination rule does not run. */
typedef size_t (*kiln_alerts_egress_fn)(struct kiln_db *db, int64_t job, char dest[][256],
					size_t max);
void kiln_alerts_set_egress_source(kiln_alerts_egress_fn fn);

/* Called for every alert raised, for the audit log (issue 7 connects it). */
typedef void (*kiln_alerts_audit_fn)(const char *project, int64_t job, const char *rule,
				     const char *detail);
void kiln_alerts_set_audit_hook(kiln_alerts_audit_fn fn);

/* The rule for "far above the usual" (exposed for the unit test): at
 * least 5 samples, value > floor, > 2 x mean and > mean + 4 sd, where the
 * sample sd comes from Welford's m2. */
bool kiln_alert_far_above(int64_t n, double mean, double m2, double value, double floor);

/* hex = HMAC-SHA256(key, timestamp "." body), lowercase hex. */
void kiln_alerts_sign(const unsigned char *key, size_t keylen, const char *timestamp,
		      const char *body, size_t len, char hex[65]);

#endif
