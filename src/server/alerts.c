/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Anomaly alerts (docs/alerts.md). After every job, its measurements are
 * compared with its project's baseline (running mean and variance per
 * measurement, and the set of things the project has been seen doing);
 * what departs from it raises an alert: a row in the alerts table, a
 * metric, a log line and the audit hook, a flag on the dashboard, and a
 * signed webhook delivered by a background thread with retries.
 *
 * The baseline is then updated with the job, so what is unusual today is
 * normal once it keeps happening. Jobs a project runs are hostile, and a
 * project can drift its own baseline slowly: the rules catch sudden
 * departures, not a patient build (documented).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "core/sys.h"
#include "server/alerts.h"
#include "server/metrics.h"
#include "server/server.h"
#include "store/stats.h"

#define EGRESS_ALERTS 5
#define QUEUE_MAX     256
#define ATTEMPTS      6
#define BACKOFF_MS    500
#define BACKOFF_MAXMS 30000
#define POST_TIMEOUT  10
#define KEY_MAX	      1024

struct measure {
	const char *metric, *rule;
	double floor;
};

static const struct measure measures[] = {
	{"duration", "duration_above_baseline", 5.0},
	{"cpu", "cpu_above_baseline", 5.0},
	{"memory", "memory_above_baseline", 64.0 * 1048576},
	{"denials", "denials_above_baseline", 10.0},
};

static kiln_alerts_egress_fn egress_source;
static kiln_alerts_audit_fn audit_hook;

void kiln_alerts_set_egress_source(kiln_alerts_egress_fn fn)
{
	egress_source = fn;
}

void kiln_alerts_set_audit_hook(kiln_alerts_audit_fn fn)
{
	audit_hook = fn;
}

/* ---- the webhook ---- */

struct hook_item {
	char *body;
	int64_t alert_id;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hook_item q[QUEUE_MAX];
	size_t head, n;
	bool stop, running;
	pthread_t thread;
	char *url;
	unsigned char key[KEY_MAX];
	size_t keylen;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* One POST. true when the receiver answered 2xx. */
static bool post_once(const struct hook_item *it)
{
	char ts[32], hex[65], sig[96], idh[64];
	struct curl_slist *h = NULL;
	long status = 0;
	CURLcode rc;
	CURL *c;

	c = curl_easy_init();
	if (c == NULL)
		return false;
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	kiln_alerts_sign(W.key, W.keylen, ts, it->body, strlen(it->body), hex);
	snprintf(sig, sizeof(sig), "X-Kiln-Signature: sha256=%s", hex);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, sig);
	{
		char tsh[64];
		snprintf(tsh, sizeof(tsh), "X-Kiln-Timestamp: %s", ts);
		h = curl_slist_append(h, tsh);
	}
	snprintf(idh, sizeof(idh), "X-Kiln-Alert-Id: %" PRId64, it->alert_id);
	h = curl_slist_append(h, idh);
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, W.url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, it->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(it->body));
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)POST_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kilnd-alerts");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		kiln_logf("alert %" PRId64 ": webhook: %s", it->alert_id, curl_easy_strerror(rc));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK && (status < 200 || status > 299))
		kiln_logf("alert %" PRId64 ": webhook answered %ld", it->alert_id, status);
	return rc == CURLE_OK && status >= 200 && status <= 299;
}

/* Wait up to ms unless told to stop (under W.mu). */
static void wait_ms_locked(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (!W.stop)
		pthread_cond_timedwait(&W.cv, &W.mu, &ts);
}

static void *hook_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&W.mu);
	for (;;) {
		struct hook_item it;
		long backoff = BACKOFF_MS;
		bool done = false;

		while (W.n == 0 && !W.stop)
			pthread_cond_wait(&W.cv, &W.mu);
		if (W.stop)
			break;
		it = W.q[W.head];
		pthread_mutex_unlock(&W.mu);
		for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
			if (post_once(&it)) {
				kiln_metrics_count(KILN_M_WEBHOOK, "delivered");
				done = true;
				break;
			}
			if (attempt == ATTEMPTS)
				break;
			kiln_metrics_count(KILN_M_WEBHOOK, "retried");
			pthread_mutex_lock(&W.mu);
			wait_ms_locked(backoff);
			if (W.stop) {
				pthread_mutex_unlock(&W.mu);
				break;
			}
			pthread_mutex_unlock(&W.mu);
			backoff = backoff * 2 > BACKOFF_MAXMS ? BACKOFF_MAXMS : backoff * 2;
		}
		if (!done) {
			kiln_metrics_count(KILN_M_WEBHOOK, "failed");
			kiln_logf("alert %" PRId64 ": webhook not delivered (the alert is in the "
				  "database and on the dashboard)",
				  it.alert_id);
		}
		pthread_mutex_lock(&W.mu);
		free(W.q[W.head].body);
		W.q[W.head].body = NULL;
		W.head = (W.head + 1) % QUEUE_MAX;
		W.n--;
	}
	pthread_mutex_unlock(&W.mu);
	return NULL;
}

static void hook_enqueue(int64_t alert_id, json_t *payload)
{
	char *body = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);

	if (body == NULL)
		return;
	pthread_mutex_lock(&W.mu);
	if (!W.running || W.stop || W.n == QUEUE_MAX) {
		bool configured = W.running;
		pthread_mutex_unlock(&W.mu);
		free(body);
		if (configured)
			kiln_metrics_count(KILN_M_WEBHOOK, "dropped");
		return;
	}
	W.q[(W.head + W.n) % QUEUE_MAX] = (struct hook_item){.body = body, .alert_id = alert_id};
	W.n++;
	pthread_cond_broadcast(&W.cv);
	pthread_mutex_unlock(&W.mu);
}

static int read_key(const char *path, struct kiln_error **err)
{
	ssize_t n;
	int fd = kiln_open_key_file(path, true, err);

	if (fd < 0)
		return kiln_error_prefix(err, "alerts: secret_file");
	n = read(fd, W.key, sizeof(W.key));
	close(fd);
	while (n > 0 && (W.key[n - 1] == '\n' || W.key[n - 1] == '\r'))
		n--;
	if (n < 32) {
		sodium_memzero(W.key, sizeof(W.key));
		return kiln_error_set(
			err, EINVAL, "alerts: secret_file %s: expected at least 32 bytes of secret",
			path);
	}
	W.keylen = (size_t)n;
	return 0;
}

int kiln_alerts_start(struct kiln_server *s, struct kiln_error **err)
{
	if (s->cfg.webhook_url == NULL)
		return 0;
	if (read_key(s->cfg.webhook_secret_file, err) < 0)
		return -1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return kiln_error_set(err, EIO, "alerts: libcurl initialisation failed");
	W.url = strdup(s->cfg.webhook_url);
	if (W.url == NULL)
		return kiln_error_set(err, ENOMEM, "alerts");
	W.stop = false;
	if (pthread_create(&W.thread, NULL, hook_main, NULL) != 0) {
		free(W.url);
		W.url = NULL;
		return kiln_error_set(err, EAGAIN, "alerts: cannot start the webhook thread");
	}
	W.running = true;
	return 0;
}

void kiln_alerts_stop(void)
{
	size_t left;

	pthread_mutex_lock(&W.mu);
	if (!W.running) {
		pthread_mutex_unlock(&W.mu);
		return;
	}
	W.stop = true;
	pthread_cond_broadcast(&W.cv);
	pthread_mutex_unlock(&W.mu);
	pthread_join(W.thread, NULL);
	left = W.n;
	while (W.n > 0) {
		free(W.q[W.head].body);
		W.q[W.head].body = NULL;
		W.head = (W.head + 1) % QUEUE_MAX;
		W.n--;
	}
	if (left > 0)
		kiln_logf(
			"shut-down: %zu alert webhook(s) not sent (the alerts are in the database)",
			left);
	W.running = false;
	free(W.url);
	W.url = NULL;
	sodium_memzero(W.key, sizeof(W.key));
	curl_global_cleanup();
}

/* ---- baselines ---- */

static int baseline_get(sqlite3 *h, const char *project, const char *metric, int64_t *n,
			double *mean, double *m2)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	*mean = *m2 = 0;
	if (sqlite3_prepare_v2(h,
			       "SELECT n, mean, m2 FROM baselines WHERE project = ? AND metric = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		*mean = sqlite3_column_double(st, 1);
		*m2 = sqlite3_column_double(st, 2);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int baseline_put(sqlite3 *h, const char *project, const char *metric, int64_t n, double mean,
			double m2)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(h,
			       "INSERT INTO baselines (project, metric, n, mean, m2) "
			       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (project, metric) DO UPDATE SET "
			       "n = excluded.n, mean = excluded.mean, m2 = excluded.m2",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, n);
	sqlite3_bind_double(st, 4, mean);
	sqlite3_bind_double(st, 5, m2);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* 1 if (project, kind, value) was new and is now recorded, 0 if known. */
static int seen_add(sqlite3 *h, const char *project, const char *kind, const char *value,
		    int64_t job)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(
		    h,
		    "INSERT OR IGNORE INTO baseline_seen (project, kind, value, first_job,"
		    " first_seen) VALUES (?, ?, ?, ?, ?)",
		    -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, job);
	sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return sqlite3_changes(h) > 0 ? 1 : 0;
}

/* Has the project had any job of this kind recorded in baseline_seen or
 * the baselines at all (its first job teaches, it does not alert)? */
static int64_t jobs_seen(sqlite3 *h, const char *project)
{
	int64_t n = 0;
	double mean, m2;

	if (baseline_get(h, project, "duration", &n, &mean, &m2) < 0)
		return 0;
	return n;
}

/* ---- raising ---- */

#define PENDING_MAX 48

/* Alerts of one job: recorded inside the check's transaction, announced
 * (metric, log, audit hook, webhook) once it committed. */
struct pending {
	struct {
		const char *rule;
		char detail[512];
		int64_t id, created_at;
	} a[PENDING_MAX];
	size_t n;
};

static void raise_alert(struct pending *p, sqlite3 *h, int64_t job, const char *project,
			const char *rule, const char *detail)
{
	sqlite3_stmt *st = NULL;
	int64_t now = (int64_t)time(NULL), id = 0;

	if (p->n == PENDING_MAX)
		return;
	if (sqlite3_prepare_v2(h,
			       "INSERT INTO alerts (job_id, project, rule, detail, created_at) "
			       "VALUES (?, ?, ?, ?, ?)",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, job);
		sqlite3_bind_text(st, 2, project, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, rule, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, now);
		if (sqlite3_step(st) == SQLITE_DONE)
			id = sqlite3_last_insert_rowid(h);
	}
	sqlite3_finalize(st);
	if (id == 0)
		kiln_logf("job %" PRId64 ": record alert %s: %s", job, rule, sqlite3_errmsg(h));
	p->a[p->n].rule = rule;
	snprintf(p->a[p->n].detail, sizeof(p->a[0].detail), "%s", detail);
	p->a[p->n].id = id;
	p->a[p->n].created_at = now;
	p->n++;
}

static void announce(const struct pending *p, int64_t job, const char *project)
{
	for (size_t i = 0; i < p->n; i++) {
		char t[32];
		json_t *payload;

		kiln_metrics_count(KILN_M_ALERTS, p->a[i].rule);
		kiln_logf("ALERT %s: job %" PRId64 " (project %s): %s", p->a[i].rule, job, project,
			  p->a[i].detail);
		if (audit_hook != NULL)
			audit_hook(project, job, p->a[i].rule, p->a[i].detail);
		kiln_format_time(p->a[i].created_at, t, sizeof(t));
		payload = json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "type", "kiln.alert", "id",
				    (json_int_t)p->a[i].id, "job", (json_int_t)job, "project",
				    project, "rule", p->a[i].rule, "detail", p->a[i].detail,
				    "created_at", t);
		if (payload != NULL) {
			hook_enqueue(p->a[i].id, payload);
			json_decref(payload);
		}
	}
}

/* Judge the job and update the baseline; alerts go into *p. Inside the
 * caller's transaction. */
static void check(struct kiln_db *db, int64_t id, const struct kiln_stats_job *j, struct pending *p)
{
	sqlite3 *h = kiln_db_sqlite(db);
	double values[4];
	bool first_job;
	char detail[512];

	values[0] = j->wall_seconds;
	values[1] = j->cpu_seconds;
	values[2] = j->peak_memory > 0 ? j->peak_memory : -1;
	values[3] = (double)j->seccomp_denials;
	first_job = jobs_seen(h, j->project) == 0;

	/* Denied syscalls never seen in this project. Names come from the
	 * engine's report (the kernel's syscall table), not from the build's
	 * text; they are still quoted as data only. */
	for (unsigned i = 0; i < j->ndenied; i++) {
		int r = seen_add(h, j->project, "syscall", j->denied[i].name, id);

		if (r == 1) {
			snprintf(detail, sizeof(detail),
				 "denied syscall %s (%" PRIu64
				 "x), never denied in this project before",
				 j->denied[i].name, j->denied[i].count);
			raise_alert(p, h, id, j->project, "first_denied_syscall", detail);
		}
	}
	/* Egress destinations never seen in this project (fed by the egress
	 * module once it lands: kiln_alerts_set_egress_source). */
	if (egress_source != NULL) {
		char dest[32][256];
		size_t n = egress_source(db, id, dest, 32), fresh = 0;

		/* One alert per new destination, at most EGRESS_ALERTS per job
		 * (the names come from the build: it must not flood the
		 * receiver); the rest are summed up in one more. */
		for (size_t i = 0; i < n && i < 32; i++) {
			char safe[256];

			kiln_sanitize(safe, sizeof(safe), dest[i]);
			if (seen_add(h, j->project, "egress", safe, id) != 1 || first_job)
				continue;
			if (++fresh <= EGRESS_ALERTS) {
				snprintf(detail, sizeof(detail),
					 "egress to %s, a destination this project never used",
					 safe);
				raise_alert(p, h, id, j->project, "new_egress_destination", detail);
			}
		}
		if (fresh > EGRESS_ALERTS) {
			snprintf(detail, sizeof(detail),
				 "and %zu more destinations this project never used",
				 fresh - EGRESS_ALERTS);
			raise_alert(p, h, id, j->project, "new_egress_destination", detail);
		}
	}
	/* Resource use far above the project's usual. */
	for (size_t m = 0; m < sizeof(measures) / sizeof(measures[0]); m++) {
		int64_t n;
		double mean, m2, d;

		if (values[m] < 0)
			continue;
		if (baseline_get(h, j->project, measures[m].metric, &n, &mean, &m2) < 0)
			continue;
		if (kiln_alert_far_above(n, mean, m2, values[m], measures[m].floor)) {
			snprintf(detail, sizeof(detail),
				 "%s %.6g, usual %.6g (mean of %" PRId64 " jobs, sd %.3g)",
				 measures[m].metric, values[m], mean, n,
				 n > 1 ? sqrt(m2 / (double)(n - 1)) : 0.0);
			raise_alert(p, h, id, j->project, measures[m].rule, detail);
		}
		/* Welford's update. */
		n++;
		d = values[m] - mean;
		mean += d / (double)n;
		m2 += d * (values[m] - mean);
		if (baseline_put(h, j->project, measures[m].metric, n, mean, m2) < 0)
			kiln_logf("job %" PRId64 ": baseline: %s", id, sqlite3_errmsg(h));
	}
}

/* One check at a time: two workers finishing jobs of one project must not
 * lose each other's baseline update. */
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;

void kiln_alerts_check(struct kiln_server *s, struct kiln_db *db, int64_t id,
		       const struct kiln_stats_job *j)
{
	sqlite3 *h = kiln_db_sqlite(db);
	struct pending *p;

	(void)s;
	if (j->project[0] == '\0')
		return;
	/* Only jobs that ran teach or alert. */
	if (j->wall_seconds < 0 && j->ndenied == 0)
		return;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return;
	pthread_mutex_lock(&check_mu);
	if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		kiln_logf("job %" PRId64 ": alerts: %s", id, sqlite3_errmsg(h));
		pthread_mutex_unlock(&check_mu);
		free(p);
		return;
	}
	check(db, id, j, p);
	if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		kiln_logf("job %" PRId64 ": alerts: %s", id, sqlite3_errmsg(h));
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
		p->n = 0;
	}
	pthread_mutex_unlock(&check_mu);
	announce(p, id, j->project);
	free(p);
}

json_t *kiln_alerts_list(struct kiln_db *db, const struct kiln_auth *a, int limit)
{
	sqlite3 *h = kiln_db_sqlite(db);
	sqlite3_stmt *st = NULL;
	json_t *arr = json_array();

	if (sqlite3_prepare_v2(h,
			       "SELECT id, job_id, project, rule, detail, created_at FROM alerts "
			       "WHERE (?1 IS NULL OR project = ?1) ORDER BY id DESC LIMIT ?2",
			       -1, &st, NULL) == SQLITE_OK) {
		if (a->project[0] != '\0')
			sqlite3_bind_text(st, 1, a->project, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 1);
		sqlite3_bind_int(st, 2, limit);
		while (sqlite3_step(st) == SQLITE_ROW) {
			char t[32];

			kiln_format_time(sqlite3_column_int64(st, 5), t, sizeof(t));
			json_array_append_new(
				arr, json_pack("{s:I,s:I,s:s,s:s,s:s,s:s}", "id",
					       (json_int_t)sqlite3_column_int64(st, 0), "job",
					       (json_int_t)sqlite3_column_int64(st, 1), "project",
					       (const char *)sqlite3_column_text(st, 2), "rule",
					       (const char *)sqlite3_column_text(st, 3), "detail",
					       (const char *)sqlite3_column_text(st, 4),
					       "created_at", t));
		}
	}
	sqlite3_finalize(st);
	return json_pack("{s:o}", "alerts", arr);
}
