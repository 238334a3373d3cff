/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's configuration file, read with the spec's strict YAML loader: the
 * same refusal of unknown keys, duplicates, aliases and wrong types, each
 * reported as FILE:LINE:COL. A failed parse leaves the configuration as it
 * was.
 */
#define KILN_SPEC_INTERNAL
#include "server/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "server/egress.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define MAX_HOST	 253

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

void kiln_config_defaults(struct kiln_config *c)
{
	memset(c, 0, sizeof(*c));
	/* NULL only if memory ran out; parse and set_listen then fail with
	 * ENOMEM rather than run with a half-made configuration. */
	c->data = strdup("/var/lib/kiln");
	c->listen_host = strdup("127.0.0.1");
	c->listen_port = 8420;
	c->workers = 0;
	c->allow_insecure_listen = false;
	c->max_body = 256 * MIB;
	c->max_unpacked = 4 * GIB;
	c->max_files = 200000;
	c->max_path = 1024;
	c->max_log = 16 * MIB;
	c->conns_per_token = 16;
	c->max_queued = 1000;
	c->max_attempts = 3;
	c->egress_conns = 256;
	c->egress_active = 32;
	c->egress_bytes = 2 * GIB;
	c->egress_idle = 60;
	c->egress_lifetime = 30 * 60;
	c->signing_window = 600;
	kiln_spec_limits_default(&c->spec_limits);
}

void kiln_config_free(struct kiln_config *c)
{
	if (c == NULL)
		return;
	free(c->data);
	free(c->listen_host);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->policies);
	free(c->egress_hosts);
	free(c->builder_id);
	free(c->webhook_url);
	free(c->webhook_secret_file);
	c->data = c->listen_host = c->tls_cert = c->tls_key = c->policies = NULL;
	c->egress_hosts = c->builder_id = NULL;
	c->webhook_url = c->webhook_secret_file = NULL;
}

/* ------------------------------------------------------------------ */
/* listen                                                               */

static bool hostname_valid(const char *h, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > MAX_HOST)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];

		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && h[len - 1] != '-';
}

/* "host:port", "[v6]:port" or ":port" (127.0.0.1). On failure msg says why
 * and nothing is allocated. */
static int listen_parse(const char *hp, char **host_out, unsigned *port_out, char *msg,
			size_t msgsize)
{
	char host[MAX_HOST + 1], q[80];
	const char *port_s, *h;
	unsigned char addr[sizeof(struct in6_addr)];
	struct kiln_error *err = NULL;
	uint64_t port = 0;
	size_t hlen;

	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');

		if (close == NULL || close[1] != ':') {
			snprintf(msg, msgsize, "expected [IPv6 address]:port");
			return -1;
		}
		h = hp + 1;
		hlen = (size_t)(close - h);
		port_s = close + 2;
		if (hlen == 0 || hlen > MAX_HOST) {
			snprintf(msg, msgsize, "invalid IPv6 address");
			return -1;
		}
		memcpy(host, h, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, addr) != 1) {
			kiln_yaml_quote(q, sizeof(q), host, hlen);
			snprintf(msg, msgsize, "invalid IPv6 address '%s'", q);
			return -1;
		}
	} else {
		const char *colon = strrchr(hp, ':');

		if (colon == NULL) {
			snprintf(msg, msgsize, "expected host:port, [IPv6]:port or :port");
			return -1;
		}
		h = hp;
		hlen = (size_t)(colon - hp);
		port_s = colon + 1;
		if (memchr(hp, ':', hlen) != NULL) {
			snprintf(msg, msgsize, "put IPv6 addresses in brackets, as in [::1]:8420");
			return -1;
		}
		if (hlen == 0) {
			strcpy(host, "127.0.0.1");
		} else {
			if (hlen > MAX_HOST) {
				snprintf(msg, msgsize, "host name longer than %d characters",
					 MAX_HOST);
				return -1;
			}
			memcpy(host, h, hlen);
			host[hlen] = '\0';
			kiln_yaml_quote(q, sizeof(q), host, hlen);
			if (inet_pton(AF_INET, host, addr) != 1) {
				/* "127.1" or "2130706433" would resolve to an address
				 * the loopback test cannot see: refuse them. */
				if (strspn(host, "0123456789.") == hlen) {
					snprintf(msg, msgsize, "invalid IPv4 address '%s'", q);
					return -1;
				}
				if (!hostname_valid(host, hlen)) {
					snprintf(msg, msgsize, "invalid host name '%s'", q);
					return -1;
				}
			}
		}
	}
	if (kiln_parse_uint(port_s, 0, 65535, &port, &err) < 0) {
		kiln_error_free(&err);
		kiln_yaml_quote(q, sizeof(q), port_s, strlen(port_s));
		snprintf(msg, msgsize, "invalid port '%s' (expected 0 to 65535)", q);
		return -1;
	}
	*host_out = strdup(host);
	if (*host_out == NULL) {
		snprintf(msg, msgsize, "out of memory");
		return -1;
	}
	*port_out = (unsigned)port;
	return 0;
}

int kiln_config_set_listen(struct kiln_config *c, const char *hostport, struct kiln_error **err)
{
	char msg[256], q[80];
	char *host = NULL;
	unsigned port = 0;

	if (hostport == NULL)
		return kiln_error_set_code(err, EINVAL, "listen: no address");
	if (listen_parse(hostport, &host, &port, msg, sizeof(msg)) < 0) {
		kiln_yaml_quote(q, sizeof(q), hostport, strlen(hostport));
		return kiln_error_set_code(err, EINVAL, "listen '%s': %s", q, msg);
	}
	free(c->listen_host);
	c->listen_host = host;
	c->listen_port = port;
	return 0;
}

bool kiln_config_listen_is_loopback(const struct kiln_config *c)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (c == NULL || c->listen_host == NULL)
		return false;
	if (strcasecmp(c->listen_host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, c->listen_host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, c->listen_host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* The file                                                             */

struct cfg_ctx {
	struct kiln_config *t; /* being filled; its strings may be orig's */
	const struct kiln_config *orig;
	char *cert, *key;
	const struct kiln_ynode *tls;
	char *webhook, *secret_file;
	bool alerts;
};

static const char *const top_keys[] = {
	"data",	      "listen",		"workers",	  "tls",      "allow_insecure_listen",
	"limits",     "max_attempts",	"spec_limits",	  "policies", "egress",
	"builder_id", "signing_window", "metrics_public", "alerts",   NULL};
enum {
	C_DATA,
	C_LISTEN,
	C_WORKERS,
	C_TLS,
	C_INSECURE,
	C_LIMITS,
	C_ATTEMPTS,
	C_SPEC,
	C_POLICIES,
	C_EGRESS,
	C_BUILDER,
	C_WINDOW,
	C_METRICS,
	C_ALERTS,
};

static const char *const egress_keys[] = {"connections", "concurrent", "bytes", "idle",
					  "lifetime",	 "hosts",      NULL};
enum { E_CONNS, E_ACTIVE, E_BYTES, E_IDLE, E_LIFETIME, E_HOSTS };

static const char *const alert_keys[] = {"webhook", "secret_file", NULL};

static const char *const limit_keys[] = {
	"body", "unpacked", "files", "path", "log", "connections_per_token", "queued_per_project",
	NULL};
enum { L_BODY, L_UNPACKED, L_FILES, L_PATH, L_LOG, L_CONNS, L_QUEUED };

static const char *const tls_keys[] = {"cert", "key", NULL};
static const char *const spec_limit_keys[] = {"timeout", "memory", "disk", "pids", "cpus", NULL};
enum { S_TIMEOUT, S_MEMORY, S_DISK, S_PIDS, S_CPUS };

static int set_data(struct cfg_ctx *x, const char *name, const struct kiln_ynode *v,
		    struct kiln_spec_error *e)
{
	char *p = NULL, q[80],
	     **dst = strcmp(name, "policies") == 0 ? &x->t->policies : &x->t->data;
	size_t n;

	if (kiln_yaml_string(v, name, PATH_MAX, &p, e) < 0)
		return -1;
	n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	if (!kiln_sandbox_path_valid(p)) {
		kiln_yaml_quote(q, sizeof(q), v->text, v->len);
		free(p);
		return kiln_yaml_fail(e, v,
				      "%s: expected an absolute directory path like /var/lib/kiln, "
				      "got '%s'",
				      name, q);
	}
	*dst = p;
	return 0;
}

static int set_listen(struct cfg_ctx *x, const char *name, const struct kiln_ynode *v,
		      struct kiln_spec_error *e)
{
	char *s = NULL, *host = NULL, msg[256];
	unsigned port = 0;

	if (kiln_yaml_string(v, name, 512, &s, e) < 0)
		return -1;
	if (listen_parse(s, &host, &port, msg, sizeof(msg)) < 0) {
		free(s);
		return kiln_yaml_fail(e, v, "%s: %s", name, msg);
	}
	free(s);
	x->t->listen_host = host;
	x->t->listen_port = port;
	return 0;
}

/* A URI: a scheme, ':', then printable ASCII without spaces. */
static int set_builder(struct cfg_ctx *x, const char *name, const struct kiln_ynode *v,
		       struct kiln_spec_error *e)
{
	char *p = NULL, *colon;

	if (kiln_yaml_string(v, name, 512, &p, e) < 0)
		return -1;
	colon = strchr(p, ':');
	for (char *c = p; *c != '\0'; c++)
		if (*c <= ' ' || *c >= 0x7f)
			colon = NULL;
	if (colon == NULL || colon == p || colon[1] == '\0') {
		free(p);
		return kiln_yaml_fail(
			e, v, "%s: expected a URI like https://ci.example.org/kilnd/1", name);
	}
	x->t->builder_id = p;
	return 0;
}

static int u64_to_uint(const struct kiln_ynode *v, const char *name, uint64_t min, uint64_t max,
		       unsigned *out, struct kiln_spec_error *e)
{
	uint64_t n = 0;

	if (kiln_yaml_uint(v, name, min, max, &n, e) < 0)
		return -1;
	*out = (unsigned)n;
	return 0;
}

static int tls_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		     struct kiln_spec_error *e)
{
	struct cfg_ctx *x = ctx;
	char **dst = idx == 0 ? &x->cert : &x->key;

	if (kiln_yaml_string(v, name, PATH_MAX, dst, e) < 0)
		return -1;
	if (**dst == '\0')
		return kiln_yaml_fail(e, v, "%s: is empty; give the path of a PEM file", name);
	return 0;
}

/* alerts: {webhook: https://..., secret_file: /etc/kiln/webhook.key} */
static int alert_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		       struct kiln_spec_error *e)
{
	struct cfg_ctx *x = ctx;

	if (idx == 0) {
		if (kiln_yaml_string(v, name, 2048, &x->webhook, e) < 0)
			return -1;
		if (strncmp(x->webhook, "https://", 8) != 0 &&
		    strncmp(x->webhook, "http://", 7) != 0)
			return kiln_yaml_fail(e, v, "%s: expected an http:// or https:// URL",
					      name);
		return 0;
	}
	if (kiln_yaml_string(v, name, PATH_MAX, &x->secret_file, e) < 0)
		return -1;
	if (x->secret_file[0] != '/')
		return kiln_yaml_fail(e, v, "%s: expected an absolute path", name);
	return 0;
}

static int limit_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		       struct kiln_spec_error *e)
{
	struct kiln_config *t = ((struct cfg_ctx *)ctx)->t;
	uint64_t n = 0;

	switch (idx) {
	case L_BODY: return kiln_yaml_size(v, name, TIB, &t->max_body, e);
	case L_UNPACKED: return kiln_yaml_size(v, name, TIB, &t->max_unpacked, e);
	case L_FILES: return kiln_yaml_uint(v, name, 1, 100000000, &t->max_files, e);
	case L_PATH: return kiln_yaml_uint(v, name, 64, 4096, &t->max_path, e);
	case L_LOG: return kiln_yaml_size(v, name, TIB, &t->max_log, e);
	case L_CONNS:
		if (kiln_yaml_uint(v, name, 1, 1024, &n, e) < 0)
			return -1;
		t->conns_per_token = (unsigned)n;
		return 0;
	case L_QUEUED: return kiln_yaml_uint(v, name, 1, 10000000, &t->max_queued, e);
	default: return kiln_yaml_fail(e, v, "internal error: limit %zu", idx);
	}
}

static int spec_limit_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			    struct kiln_spec_error *e)
{
	struct kiln_spec_limits *l = &((struct cfg_ctx *)ctx)->t->spec_limits;

	switch (idx) {
	case S_TIMEOUT: return kiln_yaml_duration(v, name, 365 * 86400, &l->max_timeout, e);
	case S_MEMORY: return kiln_yaml_size(v, name, 1024 * TIB, &l->max_memory, e);
	case S_DISK: return kiln_yaml_size(v, name, 1024 * TIB, &l->max_disk, e);
	case S_PIDS: return kiln_yaml_uint(v, name, 1, 4194304, &l->max_pids, e);
	case S_CPUS: return kiln_yaml_cpus(v, name, 4096 * 1000, &l->max_cpus_milli, e);
	default: return kiln_yaml_fail(e, v, "internal error: spec limit %zu", idx);
	}
}

/* egress.hosts: {name: address}, a test-only map the proxy consults before
 * DNS. Kept as "name address\n" lines. */
static int egress_hosts(struct cfg_ctx *x, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	if (v->type != KILN_YMAP)
		return kiln_yaml_fail(e, v, "egress.hosts: expected a mapping of name: address");
	if (v->nkids / 2 > 64)
		return kiln_yaml_fail(e, v, "egress.hosts: more than 64 names");
	f = open_memstream(&out, &len);
	if (f == NULL)
		return kiln_yaml_fail(e, v, "egress.hosts: out of memory");
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct kiln_ynode *k = v->kids[i], *a = v->kids[i + 1];
		char name[KILN_EGRESS_HOST_MAX + 3];
		unsigned char buf[16];

		if (k->type != KILN_YSCALAR || k->len >= sizeof(name) ||
		    memchr(k->text, 0, k->len)) {
			fclose(f);
			free(out);
			return kiln_yaml_fail(e, k, "egress.hosts: a key must be a host name");
		}
		memcpy(name, k->text, k->len + 1);
		if (!kiln_egress_host_normalise(name)) {
			fclose(f);
			free(out);
			return kiln_yaml_fail(e, k, "egress.hosts: '%s' is not a host name", name);
		}
		if (a->type != KILN_YSCALAR || (inet_pton(AF_INET, a->text, buf) != 1 &&
						inet_pton(AF_INET6, a->text, buf) != 1)) {
			fclose(f);
			free(out);
			return kiln_yaml_fail(e, a, "egress.hosts.%s: expected an IP address",
					      name);
		}
		fprintf(f, "%s %s\n", name, a->text);
	}
	if (fclose(f) != 0) {
		free(out);
		return kiln_yaml_fail(e, v, "egress.hosts: out of memory");
	}
	if (x->t->egress_hosts != x->orig->egress_hosts)
		free(x->t->egress_hosts);
	x->t->egress_hosts = out;
	return 0;
}

static int egress_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			struct kiln_spec_error *e)
{
	struct cfg_ctx *x = ctx;
	struct kiln_config *t = x->t;
	uint64_t n = 0;

	switch (idx) {
	case E_CONNS: return u64_to_uint(v, name, 1, 100000, &t->egress_conns, e);
	case E_ACTIVE: return u64_to_uint(v, name, 1, 1024, &t->egress_active, e);
	case E_BYTES: return kiln_yaml_size(v, name, 1024 * GIB, &t->egress_bytes, e);
	case E_IDLE:
		if (kiln_yaml_duration(v, name, 24 * 3600, &n, e) < 0)
			return -1;
		t->egress_idle = (unsigned)n;
		return 0;
	case E_LIFETIME:
		if (kiln_yaml_duration(v, name, 7 * 24 * 3600, &n, e) < 0)
			return -1;
		t->egress_lifetime = (unsigned)n;
		return 0;
	case E_HOSTS: return egress_hosts(x, v, e);
	default: return kiln_yaml_fail(e, v, "internal error: egress %zu", idx);
	}
}

static int top_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		     struct kiln_spec_error *e)
{
	struct cfg_ctx *x = ctx;

	switch (idx) {
	case C_DATA: return set_data(x, name, v, e);
	case C_LISTEN: return set_listen(x, name, v, e);
	case C_WORKERS: return u64_to_uint(v, name, 0, 1024, &x->t->workers, e);
	case C_TLS:
		x->tls = v;
		if (kiln_yaml_walk(v, name, tls_keys, tls_field, x, e) < 0)
			return -1;
		if (x->cert == NULL || x->key == NULL)
			return kiln_yaml_fail(e, v, "tls: needs both cert and key");
		return 0;
	case C_INSECURE: return kiln_yaml_bool(v, name, &x->t->allow_insecure_listen, e);
	case C_LIMITS: return kiln_yaml_walk(v, name, limit_keys, limit_field, x, e);
	case C_ATTEMPTS: return u64_to_uint(v, name, 1, 100, &x->t->max_attempts, e);
	case C_SPEC: return kiln_yaml_walk(v, name, spec_limit_keys, spec_limit_field, x, e);
	case C_POLICIES: return set_data(x, name, v, e);
	case C_EGRESS: return kiln_yaml_walk(v, name, egress_keys, egress_field, x, e);
	case C_BUILDER: return set_builder(x, name, v, e);
	case C_WINDOW: return kiln_yaml_duration(v, name, 7 * 86400, &x->t->signing_window, e);
	case C_METRICS: return kiln_yaml_bool(v, name, &x->t->metrics_public, e);
	case C_ALERTS:
		if (kiln_yaml_walk(v, name, alert_keys, alert_field, x, e) < 0)
			return -1;
		if ((x->webhook == NULL) != (x->secret_file == NULL))
			return kiln_yaml_fail(e, v, "alerts: needs both webhook and secret_file");
		x->alerts = true;
		return 0;
	default: return kiln_yaml_fail(e, v, "internal error: key %zu", idx);
	}
}

/* Frees the strings of a that b does not share. */
static void free_unshared(struct kiln_config *a, const struct kiln_config *b)
{
	if (a->data != b->data)
		free(a->data);
	if (a->listen_host != b->listen_host)
		free(a->listen_host);
	if (a->tls_cert != b->tls_cert)
		free(a->tls_cert);
	if (a->tls_key != b->tls_key)
		free(a->tls_key);
	if (a->policies != b->policies)
		free(a->policies);
	if (a->egress_hosts != b->egress_hosts)
		free(a->egress_hosts);
	if (a->builder_id != b->builder_id)
		free(a->builder_id);
	if (a->webhook_url != b->webhook_url)
		free(a->webhook_url);
	if (a->webhook_secret_file != b->webhook_secret_file)
		free(a->webhook_secret_file);
}

int kiln_config_parse(const char *file, const char *text, size_t len, struct kiln_config *c,
		      struct kiln_error **err)
{
	struct kiln_config t = *c;
	struct cfg_ctx x = {.t = &t, .orig = c};
	struct kiln_spec_error e = {0};
	struct kiln_ynode *root = NULL;
	const char *f = file ? file : "config";
	int r = -1;

	if (c->data == NULL || c->listen_host == NULL)
		return kiln_error_set(err, ENOMEM, "%s: configuration defaults", f);
	if (text == NULL && len != 0)
		return kiln_error_set_code(err, EINVAL, "%s: no text", f);
	if (kiln_yaml_load(text ? text : "", len, CONFIG_MAX_BYTES, &root, &e) < 0)
		goto out;
	/* An empty file (or only comments) keeps every default. */
	if (root != NULL && !kiln_yaml_is_null(root)) {
		if (root->type != KILN_YMAP) {
			kiln_yaml_fail(&e, root,
				       "the configuration must be a mapping of keys (data:, "
				       "listen:, ...), not %s",
				       kiln_yaml_kind(root));
			goto out;
		}
		if (kiln_yaml_walk(root, "", top_keys, top_field, &x, &e) < 0)
			goto out;
	}
	if (x.tls != NULL) {
		t.tls_cert = x.cert;
		t.tls_key = x.key;
		x.cert = x.key = NULL;
	}
	if (x.alerts) {
		t.webhook_url = x.webhook;
		t.webhook_secret_file = x.secret_file;
		x.webhook = x.secret_file = NULL;
	}
	free_unshared(c, &t);
	*c = t;
	r = 0;
out:
	free(x.cert);
	free(x.key);
	free(x.webhook);
	free(x.secret_file);
	kiln_yaml_free(root);
	if (r < 0) {
		free_unshared(&t, c);
		kiln_yaml_clamp(text ? text : "", len, &e);
		if (e.line > 0)
			return kiln_error_set_code(err, EINVAL, "%s:%d:%d: %s", f, e.line, e.column,
						   e.message);
		return kiln_error_set_code(err, EINVAL, "%s: %s", f, e.message);
	}
	return 0;
}
