/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's configuration file (YAML, libfyaml), strict like the spec: the
 * same loader, so unknown keys, duplicates, wrong types, aliases and values
 * out of range are errors "FILE:LINE:COL: message". Every key is optional;
 * the values below are the defaults (kiln_config_defaults), with the range
 * each key accepts. Command-line flags (--data, --listen, --workers)
 * override the file.
 *
 *   data: /var/lib/kiln            # absolute; a trailing / is dropped
 *   listen: 127.0.0.1:8420         # host:port, "[v6]:port" (quoted: [ starts a
 *                                  # YAML list) or :port (127.0.0.1); port 0-65535
 *   workers: 0                     # 0-1024; 0 = number of cores
 *   tls: {cert: /etc/kiln/cert.pem, key: /etc/kiln/key.pem}   # both or neither;
 *                                  # default: no TLS
 *   allow_insecure_listen: false   # plain HTTP on a non-loopback address
 *   limits:
 *     body: 256M                   # sizes: 1 byte to 1T
 *     unpacked: 4G                 # cap on the unpacked source (also <= the job's disk)
 *     files: 200000                # 1-100000000
 *     path: 1024                   # 64-4096
 *     log: 16M
 *     connections_per_token: 16    # 1-1024
 *     queued_per_project: 1000     # 1-10000000; queued jobs per project
 *   max_attempts: 3                # 1-100; retries of a retry-safe job after crashes
 *   spec_limits:                   # maxima a kiln.yml may ask for
 *     timeout: 24h                 # up to 365d
 *     memory: 64G                  # up to 1024T
 *     disk: 256G                   # up to 1024T
 *     pids: 65536                  # 1-4194304
 *     cpus: 64                     # up to 4096
 *   policies: DATA/policies        # the policy directory (docs/policy.md)
 *   egress:                        # the egress proxy, per job (docs/egress.md)
 *     connections: 256             # 1-100000 over the job's life
 *     concurrent: 32               # 1-1024 at once
 *     bytes: 2G                    # both directions, all connections
 *     idle: 60s                    # a connection with no traffic is closed
 *     lifetime: 30m                # a connection is closed after this
 *     hosts: {name: 203.0.113.7}   # TEST ONLY: names the proxy resolves itself
 *   builder_id: urn:kiln:builder:HOSTNAME   # provenance runDetails.builder.id (a URI)
 *   signing_window: 10m            # a signed manifest's creation time must be
 *                                  # within this of the server's clock (1s-7d)
 *   metrics_public: false          # GET /metrics without a token (docs/metrics.md)
 *   alerts:                        # both or neither; default: no webhook
 *     webhook: https://hooks.example/kiln   # http:// or https://, <= 2048 bytes
 *     secret_file: /etc/kiln/webhook.key    # absolute; the HMAC key (docs/alerts.md)
 *
 * kiln_config_parse does not judge the combination of listen, tls and
 * allow_insecure_listen: flags may still change them. The caller checks,
 * after the flags, that a non-loopback listen has TLS or
 * allow_insecure_listen (kiln_config_listen_is_loopback).
 */
#ifndef KILN_SERVER_CONFIG_H
#define KILN_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "server/spec.h"

/* The strings are owned (malloc'd) by the struct: kiln_config_free. */
struct kiln_config {
	char *data;
	char *listen_host;    /* "127.0.0.1", "::1", "localhost", a name */
	unsigned listen_port; /* 8420; 0 = any free port */
	unsigned workers;     /* 0 = number of cores */
	char *tls_cert, *tls_key;
	bool allow_insecure_listen;
	uint64_t max_body, max_unpacked, max_files, max_path, max_log;
	unsigned conns_per_token;
	/* queued jobs per project; a submit over it gets 429 */
	uint64_t max_queued;
	unsigned max_attempts;
	struct kiln_spec_limits spec_limits;
	/* the policy directory, NULL = DATA/policies */
	char *policies;
	/* egress proxy limits, per job: connections in all, at once, bytes
	 * both ways, seconds idle and in all per connection */
	unsigned egress_conns, egress_active;
	uint64_t egress_bytes;
	unsigned egress_idle, egress_lifetime;
	/* test-only "name address\n" lines the proxy uses before DNS, or NULL */
	char *egress_hosts;
	char *builder_id;	 /* NULL: urn:kiln:builder:<hostname> (main.c) */
	uint64_t signing_window; /* seconds */
	bool metrics_public;
	/* alerts: webhook; both NULL when not configured */
	char *webhook_url, *webhook_secret_file;
};

/* Overwrites *c without freeing anything. data and listen_host are NULL only
 * if memory ran out; kiln_config_parse then fails with ENOMEM. */
void kiln_config_defaults(struct kiln_config *c);
/* Parse text (file name for messages; NULL: "config") over the values
 * already in *c: the keys present replace them. Errors as
 * "FILE:LINE:COL: message" (or "FILE: message" when not tied to a place),
 * code EINVAL; on failure *c is unchanged. At most 1 MiB. */
int kiln_config_parse(const char *file, const char *text, size_t len, struct kiln_config *c,
		      struct kiln_error **err);
/* "host:port", "[v6]:port" or ":port" (127.0.0.1). Hosts: IPv4 dotted quads,
 * IPv6 in brackets, or DNS names; "127.1"-style numbers are refused. On
 * failure (EINVAL, "listen 'X': why") c is unchanged. */
int kiln_config_set_listen(struct kiln_config *c, const char *hostport, struct kiln_error **err);
/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or "localhost" (any case). A name
 * is judged by its text: bind to what it resolves to only after checking
 * that those addresses are loopback too. */
bool kiln_config_listen_is_loopback(const struct kiln_config *c);
/* Frees the strings and sets them to NULL; safe twice, on a defaults-only
 * struct, and on NULL. */
void kiln_config_free(struct kiln_config *c);

#endif
