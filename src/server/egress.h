/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Egress: what a build may reach outside its sandbox, and the proxy that
 * is the only way there (docs/egress.md).
 *
 * A job whose policy allows egress runs in a network namespace that kilnd
 * prepares (kiln_egress_netns) in a user namespace of its own, a sibling
 * of the build's, so the build has no capability over it (and kilnd needs
 * no CAP_NET_ADMIN on the host to set it up). It holds:
 *   - lo, up, with kilnd's proxy listening on 127.0.0.1:KILN_EGRESS_PORT
 *     (the listening socket lives in that namespace; kilnd accepts on it
 *     from outside the sandbox);
 *   - kiln0, a TUN device carrying the default route: every packet that
 *     does not go through the proxy (a raw TCP connection, a DNS query to
 *     any server, UDP, ping) arrives at kilnd, is recorded and answered
 *     with a TCP reset or an ICMP "administratively prohibited", so the
 *     build fails fast and the attempt is seen.
 * There is no resolver inside: names are resolved by the proxy, which then
 * refuses loopback, private, link-local (cloud metadata), multicast and
 * kilnd's own addresses unless the allowlist names that address itself.
 *
 * The proxy speaks HTTP CONNECT (TLS passes through untouched) and plain
 * HTTP forwarding of absolute-URI requests. Every attempt, allowed or not,
 * is reported through on_attempt with its destination, bytes each way and
 * duration.
 */
#ifndef KILN_SERVER_EGRESS_H
#define KILN_SERVER_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/error.h"

#define KILN_EGRESS_PORT     3128
#define KILN_EGRESS_HOST_MAX 253
#define KILN_EGRESS_HEAD_MAX (16 * 1024)

/* One allowlist entry: "host:port", "*.domain:port", "203.0.113.7:443",
 * "[2001:db8::1]:443". */
struct kiln_egress_rule {
	char host[KILN_EGRESS_HOST_MAX + 1]; /* lowercase; "*.x" for a wildcard */
	uint16_t port;
};

/* Parse and normalise one entry; false with a reason in msg. */
bool kiln_egress_rule_parse(const char *text, struct kiln_egress_rule *out, char *msg, size_t len);
/* Does the rule allow host:port? host must be normalised (lowercase, no
 * trailing dot). "*.example.com" matches "a.example.com" and
 * "a.b.example.com", never "example.com" itself. */
bool kiln_egress_rule_match(const struct kiln_egress_rule *r, const char *host, uint16_t port);
/* Normalise a destination host in place (lowercase, no trailing dot, IPv6
 * without brackets); false when it is not a valid DNS name, IPv4 or IPv6
 * literal. */
bool kiln_egress_host_normalise(char *host);

/* "host:port", or "[v6]:port" for an IPv6 literal: how destinations are
 * written in allowlists, answers and records. */
void kiln_egress_dest(char *buf, size_t cap, const char *host, uint16_t port);

/* Why an address may not be reached without being named: NULL when it
 * may be ("public"), else "loopback", "private", "link-local", ... */
const char *kiln_egress_addr_class(const struct sockaddr *sa);

/* A request head as the proxy sees it. */
struct kiln_egress_request {
	bool connect; /* CONNECT host:port, else an absolute-URI request */
	char method[16];
	char host[KILN_EGRESS_HOST_MAX + 3];
	uint16_t port;
	/* plain HTTP: the head to send upstream (origin-form request line,
	 * the client's headers minus hop-by-hop and Proxy-*, Host set to the
	 * authority, "Connection: close"); malloc'd */
	char *upstream_head;
	size_t upstream_len;
	size_t head_len; /* bytes of the client's head, "\r\n\r\n" included */
};

/* Parse a complete head (buf holds at least head_len bytes ending in
 * "\r\n\r\n"). 0, or -1 with a message and the HTTP status to answer. */
int kiln_egress_parse_request(const char *buf, size_t len, struct kiln_egress_request *req,
			      unsigned *status, char *msg, size_t msglen);
void kiln_egress_request_clear(struct kiln_egress_request *req);

/* ---- the running proxy ---- */

struct kiln_egress_attempt {
	const char *kind; /* "connect", "http", "tcp", "udp", "dns", "icmp", "other" */
	const char *host; /* as asked, "" for raw packets */
	const char *addr; /* the address connected to (or the packet's), "" if none */
	uint16_t port;
	bool allowed;
	const char *reason; /* why not (or "audit: not in the allowlist") */
	uint64_t bytes_up, bytes_down, duration_ms;
};

struct kiln_egress_conf {
	const struct kiln_egress_rule *rules;
	size_t nrules;
	bool audit;	     /* allow what the rules do not, but record it */
	unsigned max_conns;  /* connections over the job's life */
	unsigned max_active; /* at once */
	uint64_t max_bytes;  /* both directions, all connections */
	unsigned idle_secs;  /* per connection */
	unsigned max_secs;   /* per connection */
	/* test-only name -> address mapping (kilnd config egress.hosts) */
	const char *const *map_names;
	const char *const *map_addrs;
	size_t nmap;
	/* called from the proxy's threads, one call at a time */
	void (*on_attempt)(void *ctx, const struct kiln_egress_attempt *a);
	void *ctx;
};

/* Prepare a job's network namespace (see above). *netns_fd and *proxy_fd
 * and *tun_fd receive descriptors the caller owns. */
int kiln_egress_netns(int *netns_fd, int *proxy_fd, int *tun_fd, struct kiln_error **err);

struct kiln_egress;

/* Serve the proxy on proxy_fd and the sinkhole on tun_fd (both taken over)
 * until kiln_egress_stop(). conf is copied, rules and map included. */
int kiln_egress_start(const struct kiln_egress_conf *conf, int proxy_fd, int tun_fd,
		      struct kiln_egress **out, struct kiln_error **err);
/* Close every connection, join every thread, free. Accepts NULL. */
void kiln_egress_stop(struct kiln_egress *e);

#endif
