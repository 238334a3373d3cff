/* SPDX-License-Identifier: Apache-2.0 */
/* A job's egress: policy to proxy configuration, records to the log and
 * the database (job_egress.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/job_egress.h"

void kiln_job_egress_clear(struct kiln_job_egress *g)
{
	memset(g, 0, sizeof(*g));
	g->netns_fd = -1;
	pthread_mutex_init(&g->mu, NULL);
}

int kiln_job_egress_init(struct kiln_job_egress *g, const struct kiln_policy *pol,
			 const struct kiln_spec *spec, char *msg, size_t len)
{
	if (spec->network == NULL || strcmp(spec->network, "egress") != 0)
		return 0;
	if (pol->net_mode != KILN_NET_ALLOWLIST) {
		snprintf(msg, len, "network: egress asked, but the policy's network.mode is none");
		return -1;
	}
	g->on = true;
	g->audit = pol->net_enforce == KILN_NET_AUDIT;
	g->rules = calloc(pol->nnet_allow ? pol->nnet_allow : 1, sizeof(*g->rules));
	if (g->rules == NULL) {
		snprintf(msg, len, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < pol->nnet_allow; i++) {
		char why[256];

		if (!kiln_egress_rule_parse(pol->net_allow[i], &g->rules[i], why, sizeof(why))) {
			snprintf(msg, len, "network.allow[%zu]: %s", i, why);
			return -1;
		}
		g->nrules++;
	}
	return 0;
}

static void on_attempt(void *ctx, const struct kiln_egress_attempt *a)
{
	struct kiln_job_egress *g = ctx;
	bool keep;
	char dest[300];

	kiln_egress_dest(dest, sizeof(dest),
			 a->host[0] ? a->host
			 : a->addr  ? a->addr
				    : "",
			 a->port);
	pthread_mutex_lock(&g->mu);
	if (a->allowed)
		g->allowed++;
	else
		g->denied++;
	keep = json_array_size(g->attempts) < KILN_JOB_EGRESS_MAX_RECORDS;
	if (keep) {
		json_t *o = json_pack(
			"{s:I, s:s, s:s, s:s, s:i, s:b, s:s?, s:I, s:I, s:I}", "at",
			(json_int_t)time(NULL), "kind", a->kind, "host", a->host, "addr",
			a->addr ? a->addr : "", "port", (int)a->port, "allowed", a->allowed,
			"reason", a->reason, "bytes_up", (json_int_t)a->bytes_up, "bytes_down",
			(json_int_t)a->bytes_down, "duration_ms", (json_int_t)a->duration_ms);

		if (o == NULL || json_array_append_new(g->attempts, o) < 0)
			g->dropped++;
	} else {
		g->dropped++;
	}
	pthread_mutex_unlock(&g->mu);
	/* The build's own log says what was refused, as it happens. */
	if (!a->allowed || (a->reason != NULL && strncmp(a->reason, "audit", 5) == 0)) {
		pthread_mutex_lock(g->log_mu);
		kiln_log_note(g->log, "egress: %s %s %s: %s", a->kind, dest,
			      a->allowed ? "allowed (audit mode)" : "denied",
			      a->reason ? a->reason : "");
		pthread_mutex_unlock(g->log_mu);
	}
}

/* "name address\n" lines of the configuration. */
static int load_map(struct kiln_job_egress *g, const char *text)
{
	size_t n = 0;

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n++;
	g->map_names = calloc(n + 1, sizeof(char *));
	g->map_addrs = calloc(n + 1, sizeof(char *));
	if (g->map_names == NULL || g->map_addrs == NULL)
		return -1;
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n'), *sp = strchr(p, ' ');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);

		if (sp != NULL && sp < p + l) {
			g->map_names[g->nmap] = strndup(p, (size_t)(sp - p));
			g->map_addrs[g->nmap] = strndup(sp + 1, (size_t)(p + l - sp - 1));
			if (g->map_names[g->nmap] == NULL || g->map_addrs[g->nmap] == NULL)
				return -1;
			g->nmap++;
		}
		p = nl ? nl + 1 : NULL;
	}
	return 0;
}

int kiln_job_egress_start(struct kiln_job_egress *g, const struct kiln_server *s,
			  struct kiln_log *log, pthread_mutex_t *log_mu, struct kiln_error **err)
{
	struct kiln_egress_conf conf = {0};
	int pfd = -1, tfd = -1;

	if (!g->on)
		return 0;
	g->log = log;
	g->log_mu = log_mu;
	g->attempts = json_array();
	if (g->attempts == NULL ||
	    (s->cfg.egress_hosts != NULL && load_map(g, s->cfg.egress_hosts) < 0))
		return kiln_error_set(err, ENOMEM, "egress");
	if (kiln_egress_netns(&g->netns_fd, &pfd, &tfd, err) < 0)
		return -1;
	conf.rules = g->rules;
	conf.nrules = g->nrules;
	conf.audit = g->audit;
	conf.max_conns = s->cfg.egress_conns;
	conf.max_active = s->cfg.egress_active;
	conf.max_bytes = s->cfg.egress_bytes;
	conf.idle_secs = s->cfg.egress_idle;
	conf.max_secs = s->cfg.egress_lifetime;
	conf.map_names = (const char *const *)g->map_names;
	conf.map_addrs = (const char *const *)g->map_addrs;
	conf.nmap = g->nmap;
	conf.on_attempt = on_attempt;
	conf.ctx = g;
	if (kiln_egress_start(&conf, pfd, tfd, &g->proxy, err) < 0) {
		close(g->netns_fd);
		g->netns_fd = -1;
		return -1;
	}
	pthread_mutex_lock(log_mu);
	kiln_log_note(log,
		      "egress: through kilnd's proxy (HTTP_PROXY=http://127.0.0.1:%d), %s, %zu "
		      "allowlist entr%s",
		      KILN_EGRESS_PORT, g->audit ? "audit mode" : "block mode", g->nrules,
		      g->nrules == 1 ? "y" : "ies");
	pthread_mutex_unlock(log_mu);
	return 0;
}

void kiln_job_egress_stop(struct kiln_job_egress *g)
{
	kiln_egress_stop(g->proxy);
	g->proxy = NULL;
	if (g->netns_fd >= 0)
		close(g->netns_fd);
	g->netns_fd = -1;
}

int kiln_job_egress_save(struct kiln_job_egress *g, struct kiln_db *db, int64_t job,
			 const char *project, struct kiln_error **err)
{
	if (!g->on)
		return 0;
	if (g->dropped > 0 && g->log != NULL)
		kiln_log_note(g->log, "egress: %" PRIu64 " more attempts were not recorded",
			      g->dropped);
	if (g->log != NULL)
		kiln_log_note(g->log, "egress: %" PRIu64 " allowed, %" PRIu64 " denied", g->allowed,
			      g->denied);
	return kiln_db_egress_add(db, job, project, g->attempts, err);
}

void kiln_job_egress_free(struct kiln_job_egress *g)
{
	kiln_job_egress_stop(g);
	for (size_t i = 0; i < g->nmap; i++) {
		free(g->map_names[i]);
		free(g->map_addrs[i]);
	}
	free(g->map_names);
	free(g->map_addrs);
	free(g->rules);
	json_decref(g->attempts);
	pthread_mutex_destroy(&g->mu);
	memset(g, 0, sizeof(*g));
	g->netns_fd = -1;
}
