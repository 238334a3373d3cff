/* SPDX-License-Identifier: Apache-2.0 */
/* The egress proxy's pure parts (allowlist rules, address classes, request
 * heads), then, as root, the real thing: a prepared network namespace, the
 * proxy serving it, a client inside it, an upstream server on the host's
 * loopback, and raw packets that bypass the proxy. Outcomes are judged
 * from outside: what the upstream server received, and what the proxy
 * reported. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/egress.h"
#include "tap.h"

/* The first line of s, for a TAP description. */
static const char *first_line(const char *s)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s", s ? s : "");
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

static void test_rules(void)
{
	struct kiln_egress_rule r;
	char msg[256];

	ok(kiln_egress_rule_parse("deb.debian.org:443", &r, msg, sizeof(msg)), "host:port parses");
	is_str(r.host, "deb.debian.org", "host kept");
	is_int(r.port, 443, "port kept");
	ok(kiln_egress_rule_match(&r, "deb.debian.org", 443), "exact host and port match");
	ok(!kiln_egress_rule_match(&r, "deb.debian.org", 80), "another port does not");
	ok(!kiln_egress_rule_match(&r, "evil-deb.debian.org", 443), "another host does not");
	ok(kiln_egress_rule_parse("Registry.NPMJS.org.:443", &r, msg, sizeof(msg)) &&
		   strcmp(r.host, "registry.npmjs.org") == 0,
	   "case and a trailing dot are normalised");
	ok(kiln_egress_rule_parse("*.npmjs.org:443", &r, msg, sizeof(msg)), "a wildcard parses");
	ok(kiln_egress_rule_match(&r, "registry.npmjs.org", 443),
	   "*.npmjs.org matches a subdomain");
	ok(kiln_egress_rule_match(&r, "a.b.npmjs.org", 443), "... and a deeper one");
	ok(!kiln_egress_rule_match(&r, "npmjs.org", 443), "... not the apex");
	ok(!kiln_egress_rule_match(&r, "evilnpmjs.org", 443), "... nor a name ending in it");
	ok(kiln_egress_rule_parse("[2001:db8::1]:8443", &r, msg, sizeof(msg)) &&
		   strcmp(r.host, "2001:db8::1") == 0,
	   "an IPv6 literal in brackets");
	ok(kiln_egress_rule_parse("203.0.113.7:80", &r, msg, sizeof(msg)), "an IPv4 literal");
	{
		static const char *const bad[] = {"deb.debian.org",
						  "deb.debian.org:0",
						  "deb.debian.org:65536",
						  "host:80x",
						  "*.org:443",
						  "*.1.2.3.4:80",
						  "a..b:80",
						  "-a.b:80",
						  "a b:80",
						  "2001:db8::1:80",
						  "*:443",
						  ":443",
						  "a.b:",
						  NULL};

		for (size_t i = 0; bad[i]; i++)
			ok(!kiln_egress_rule_parse(bad[i], &r, msg, sizeof(msg)),
			   "'%s' refused (%s)", bad[i], msg);
	}
}

static const char *cls4(const char *a)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};

	inet_pton(AF_INET, a, &sin.sin_addr);
	return kiln_egress_addr_class((struct sockaddr *)&sin);
}

static const char *cls6(const char *a)
{
	struct sockaddr_in6 sin = {.sin6_family = AF_INET6};

	inet_pton(AF_INET6, a, &sin.sin6_addr);
	return kiln_egress_addr_class((struct sockaddr *)&sin);
}

static void test_classes(void)
{
	static const char *const refused4[] = {"127.0.0.1",	  "10.1.2.3",	 "172.16.0.1",
					       "172.31.255.255",  "192.168.1.1", "169.254.169.254",
					       "100.64.0.1",	  "0.0.0.0",	 "224.0.0.1",
					       "255.255.255.255", NULL};
	static const char *const public4[] = {"203.0.113.7", "8.8.8.8",	    "172.32.0.1",
					      "192.169.0.1", "100.128.0.1", NULL};
	static const char *const refused6[] = {"::1",
					       "::",
					       "fe80::1",
					       "fd00::1",
					       "ff02::1",
					       "::ffff:127.0.0.1",
					       "::ffff:169.254.169.254",
					       "64:ff9b::a00:1",
					       NULL};

	for (size_t i = 0; refused4[i]; i++)
		ok(cls4(refused4[i]) != NULL, "%s refused (%s)", refused4[i],
		   cls4(refused4[i]) ? cls4(refused4[i]) : "allowed");
	for (size_t i = 0; public4[i]; i++)
		ok(cls4(public4[i]) == NULL, "%s is public", public4[i]);
	for (size_t i = 0; refused6[i]; i++)
		ok(cls6(refused6[i]) != NULL, "%s refused (%s)", refused6[i],
		   cls6(refused6[i]) ? cls6(refused6[i]) : "allowed");
	ok(cls6("2001:4860::8888") == NULL, "a global IPv6 address is public");
	is_str(cls4("169.254.169.254"), "link-local (cloud metadata)",
	       "the metadata address is named");
}

static int parse(const char *head, struct kiln_egress_request *req, unsigned *status, char *msg)
{
	return kiln_egress_parse_request(head, strlen(head), req, status, msg, 256);
}

static void test_requests(void)
{
	struct kiln_egress_request req;
	unsigned status = 0;
	char msg[256];

	ok(parse("CONNECT deb.debian.org:443 HTTP/1.1\r\nHost: x\r\n\r\nTLS", &req, &status, msg) ==
		   0,
	   "CONNECT parses");
	ok(req.connect && strcmp(req.host, "deb.debian.org") == 0 && req.port == 443,
	   "CONNECT host and port");
	is_int(req.head_len, strlen("CONNECT deb.debian.org:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
	       "the head ends at the blank line");
	kiln_egress_request_clear(&req);

	ok(parse("GET http://Pkg.Example:8080/a/b?c=d HTTP/1.1\r\nHost: evil.example\r\n"
		 "Proxy-Authorization: Basic eA==\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",
		 &req, &status, msg) == 0,
	   "an absolute-URI GET parses");
	ok(!req.connect && strcmp(req.host, "pkg.example") == 0 && req.port == 8080,
	   "its authority, normalised");
	ok(req.upstream_head && strncmp(req.upstream_head, "GET /a/b?c=d HTTP/1.1\r\n", 23) == 0,
	   "origin-form upstream (%s)", first_line(req.upstream_head));
	ok(req.upstream_head && strstr(req.upstream_head, "\r\nHost: pkg.example:8080\r\n"),
	   "Host is the URL's authority, not the client's");
	ok(req.upstream_head && !strstr(req.upstream_head, "evil.example") &&
		   !strstr(req.upstream_head, "Proxy-Authorization") &&
		   !strstr(req.upstream_head, "keep-alive"),
	   "the client's Host, Proxy-* and hop-by-hop headers are dropped");
	ok(req.upstream_head && strstr(req.upstream_head, "\r\nAccept: */*\r\n") &&
		   strstr(req.upstream_head, "Connection: close\r\n\r\n"),
	   "end-to-end headers kept, Connection: close added");
	kiln_egress_request_clear(&req);

	ok(parse("GET http://h.example HTTP/1.0\r\n\r\n", &req, &status, msg) == 0 &&
		   req.port == 80 && strncmp(req.upstream_head, "GET / HTTP/1.1", 14) == 0,
	   "no path: '/', port 80");
	kiln_egress_request_clear(&req);
	{
		static const struct {
			const char *head;
			unsigned status;
		} bad[] = {
			{"GET /local HTTP/1.1\r\n\r\n", 400},
			{"GET https://h.example/ HTTP/1.1\r\n\r\n", 400},
			{"GET http://user@h.example/ HTTP/1.1\r\n\r\n", 400},
			{"CONNECT h.example HTTP/1.1\r\n\r\n", 400},
			{"CONNECT 127.0.0.1:0 HTTP/1.1\r\n\r\n", 400},
			{"CONNECT h.example:443 HTTP/2.0\r\n\r\n", 505},
			{"CONNECT  h.example:443 HTTP/1.1\r\n\r\n", 400},
			{"get http://h.example/ HTTP/1.1\r\n\r\n", 400},
			{"GET http://h.example/ HTTP/1.1\r\nX: a\x01\r\n\r\n", 400},
			{"GET http://h.example/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
			{"GET http://h.example/ HTTP/1.1\r\n", 400},
			{"GET http://a..b/ HTTP/1.1\r\n\r\n", 400},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			int r = parse(bad[i].head, &req, &status, msg);

			ok(r < 0 && status == bad[i].status, "bad head %zu refused with %u (%s)", i,
			   bad[i].status, msg);
			kiln_egress_request_clear(&req);
		}
	}
}

/* ---- the real thing (root) ---- */

#define MAXREC 64
static struct {
	pthread_mutex_t mu;
	struct {
		char kind[16], host[256], addr[64], reason[256];
		unsigned port;
		int allowed;
		unsigned long long up, down;
	} r[MAXREC];
	int n;
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_attempt(void *ctx, const struct kiln_egress_attempt *a)
{
	(void)ctx;
	pthread_mutex_lock(&rec.mu);
	if (rec.n < MAXREC) {
		snprintf(rec.r[rec.n].kind, 16, "%s", a->kind);
		snprintf(rec.r[rec.n].host, 256, "%s", a->host);
		snprintf(rec.r[rec.n].addr, 64, "%s", a->addr);
		snprintf(rec.r[rec.n].reason, 256, "%s", a->reason ? a->reason : "");
		rec.r[rec.n].port = a->port;
		rec.r[rec.n].allowed = a->allowed;
		rec.r[rec.n].up = a->bytes_up;
		rec.r[rec.n].down = a->bytes_down;
		rec.n++;
	}
	pthread_mutex_unlock(&rec.mu);
}

/* Find a record (kind, host or addr, port); -1 if none. Waits a little:
 * records arrive from the proxy's threads. */
static int find_rec(const char *kind, const char *who, unsigned port)
{
	for (int tries = 0; tries < 100; tries++) {
		pthread_mutex_lock(&rec.mu);
		for (int i = 0; i < rec.n; i++)
			if (strcmp(rec.r[i].kind, kind) == 0 && rec.r[i].port == port &&
			    (strcmp(rec.r[i].host, who) == 0 || strcmp(rec.r[i].addr, who) == 0)) {
				pthread_mutex_unlock(&rec.mu);
				return i;
			}
		pthread_mutex_unlock(&rec.mu);
		usleep(20000);
	}
	return -1;
}

/* The upstream: a loopback server that answers every connection with a
 * fixed line and counts them. */
static int up_fd;
static unsigned up_port;
static volatile int up_hits;

static void *upstream_main(void *arg)
{
	(void)arg;
	for (;;) {
		char buf[4096];
		int c = accept(up_fd, NULL, NULL);
		ssize_t n;

		if (c < 0)
			return NULL;
		up_hits++;
		n = read(c, buf, sizeof(buf));
		if (n > 0 && write(c, "HTTP/1.0 200 OK\r\n\r\nUPSTREAM-SAYS-HI\n", 37) < 0)
			n = 0;
		close(c);
	}
}

/* Run fn in a child inside the namespace; its output (<= 4K) in out. */
static int in_netns(int ns, const char *req, char *out, size_t cap,
		    int (*fn)(const char *, char *, size_t))
{
	int p[2];
	pid_t pid;
	int st;
	ssize_t n;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char buf[4096];
		int r;

		close(p[0]);
		if (setns(ns, CLONE_NEWNET) < 0)
			_exit(2);
		r = fn(req, buf, sizeof(buf));
		if (write(p[1], buf, strlen(buf)) < 0)
			_exit(3);
		_exit(r);
	}
	close(p[1]);
	n = read(p[0], out, cap - 1);
	out[n > 0 ? n : 0] = '\0';
	close(p[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Through the proxy: send req, read the answer. */
static int via_proxy(const char *req, char *out, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(KILN_EGRESS_PORT)};
	int s = socket(AF_INET, SOCK_STREAM, 0);
	size_t have = 0;
	ssize_t n;

	out[0] = '\0';
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(out, cap, "connect: %s", strerror(errno));
		return 1;
	}
	if (write(s, req, strlen(req)) < 0)
		return 1;
	while (have + 1 < cap && (n = read(s, out + have, cap - 1 - have)) > 0)
		have += (size_t)n;
	out[have] = '\0';
	return 0;
}

/* A raw TCP connection that ignores the proxy, to an IPv4 or IPv6
 * address: "ECONNREFUSED" expected (the sinkhole's reset), quickly. */
static int raw_tcp(const char *dest, char *out, size_t cap)
{
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(443)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	bool v6 = strchr(dest, ':') != NULL;
	int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	int r;

	if (v6)
		inet_pton(AF_INET6, dest, &a6.sin6_addr);
	else
		inet_pton(AF_INET, dest, &a4.sin_addr);
	alarm(5);
	r = v6 ? connect(s, (struct sockaddr *)&a6, sizeof(a6))
	       : connect(s, (struct sockaddr *)&a4, sizeof(a4));
	snprintf(out, cap, "%s", r < 0 ? strerror(errno) : "connected");
	return 0;
}

/* A DNS query for the name in req, to 8.8.8.8. */
static int raw_dns(const char *name, char *out, size_t cap)
{
	uint8_t q[512] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
	size_t o = 12;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	const char *p = name;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		q[o++] = (uint8_t)l;
		memcpy(q + o, p, l);
		o += l;
		p += l + (dot ? 1 : 0);
	}
	q[o++] = 0;
	q[o++] = 0;
	q[o++] = 1;
	q[o++] = 0;
	q[o++] = 1;
	inet_pton(AF_INET, "8.8.8.8", &a.sin_addr);
	if (sendto(s, q, o, 0, (struct sockaddr *)&a, sizeof(a)) < 0)
		snprintf(out, cap, "sendto: %s", strerror(errno));
	else
		snprintf(out, cap, "sent");
	return 0;
}

static void test_proxy(void)
{
	struct kiln_egress_rule rules[3];
	const char *names[] = {"pkg.test", "rebind.test"};
	const char *addrs[] = {"203.0.113.9", "127.0.0.2"};
	struct kiln_egress_conf conf = {0};
	struct kiln_egress *e = NULL;
	struct kiln_error *err = NULL;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int ns = -1, pfd = -1, tfd = -1, i, hits;
	char msg[256], req[512], out[4096];
	pthread_t up;

	if (geteuid() != 0) {
		ok(getenv("CI") == NULL || strcmp(getenv("CI"), "true") != 0,
		   "the proxy test needs root (network namespaces, TUN): not run");
		return;
	}
	/* The upstream, on the host's loopback. */
	up_fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(up_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(up_fd, 16) < 0 ||
	    getsockname(up_fd, (struct sockaddr *)&a, &al) < 0) {
		ok(0, "upstream server");
		return;
	}
	up_port = ntohs(a.sin_port);
	pthread_create(&up, NULL, upstream_main, NULL);

	ok(kiln_egress_netns(&ns, &pfd, &tfd, &err) == 0, "prepare a network namespace (%s)",
	   err ? err->msg : "ok");
	kiln_error_free(&err);
	if (ns < 0)
		return;
	snprintf(req, sizeof(req), "127.0.0.1:%u", up_port);
	ok(kiln_egress_rule_parse(req, &rules[0], msg, sizeof(msg)), "rule %s", req);
	snprintf(req, sizeof(req), "rebind.test:%u", up_port);
	ok(kiln_egress_rule_parse(req, &rules[1], msg, sizeof(msg)), "rule %s", req);
	ok(kiln_egress_rule_parse("*.allowed.test:443", &rules[2], msg, sizeof(msg)),
	   "rule *.allowed.test:443");
	conf.rules = rules;
	conf.nrules = 3;
	conf.max_conns = 8;
	conf.max_active = 4;
	conf.max_bytes = 1 << 20;
	conf.idle_secs = 5;
	conf.max_secs = 10;
	conf.map_names = names;
	conf.map_addrs = addrs;
	conf.nmap = 2;
	conf.on_attempt = on_attempt;
	ok(kiln_egress_start(&conf, pfd, tfd, &e, &err) == 0, "start the proxy (%s)",
	   err ? err->msg : "ok");
	kiln_error_free(&err);

	/* Allowed: an address named literally, plain HTTP and CONNECT. */
	snprintf(req, sizeof(req), "GET http://127.0.0.1:%u/x HTTP/1.1\r\nHost: y\r\n\r\n",
		 up_port);
	hits = up_hits;
	in_netns(ns, req, out, sizeof(out), via_proxy);
	ok(strstr(out, "UPSTREAM-SAYS-HI") != NULL,
	   "plain HTTP to an allowlisted address: answered");
	ok(up_hits == hits + 1, "... and the upstream saw it");
	i = find_rec("http", "127.0.0.1", up_port);
	ok(i >= 0 && rec.r[i].allowed && rec.r[i].up > 0 && rec.r[i].down > 0,
	   "... recorded as allowed with bytes both ways");
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		 up_port);
	in_netns(ns, req, out, sizeof(out), via_proxy);
	ok(strncmp(out, "HTTP/1.1 200 Connection established", 35) == 0 &&
		   strstr(out, "UPSTREAM-SAYS-HI"),
	   "CONNECT to it: tunnel established, bytes pass untouched");

	/* Denied. */
	hits = up_hits;
	in_netns(ns, "CONNECT evil.example:443 HTTP/1.1\r\n\r\n", out, sizeof(out), via_proxy);
	ok(strncmp(out, "HTTP/1.1 403", 12) == 0 && strstr(out, "network.allow"),
	   "a host not in the allowlist: 403 naming network.allow");
	i = find_rec("connect", "evil.example", 443);
	ok(i >= 0 && !rec.r[i].allowed, "... recorded as denied");
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n",
		 up_port + 1 == 65536 ? 1 : up_port + 1);
	in_netns(ns, req, out, sizeof(out), via_proxy);
	ok(strncmp(out, "HTTP/1.1 403", 12) == 0, "an allowlisted address on another port: 403");
	snprintf(req, sizeof(req), "CONNECT rebind.test:%u HTTP/1.1\r\n\r\n", up_port);
	in_netns(ns, req, out, sizeof(out), via_proxy);
	ok(strncmp(out, "HTTP/1.1 403", 12) == 0 && strstr(out, "loopback"),
	   "an allowlisted name that resolves to loopback: 403 (%s)", first_line(out));
	in_netns(ns, "CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n", out, sizeof(out), via_proxy);
	ok(strncmp(out, "HTTP/1.1 403", 12) == 0, "the metadata address: 403");
	ok(up_hits == hits, "none of them reached the upstream");
	in_netns(ns, "GET /relative HTTP/1.1\r\n\r\n", out, sizeof(out), via_proxy);
	ok(strncmp(out, "HTTP/1.1 400", 12) == 0, "a non-proxy request: 400");

	/* Bypassing the proxy. */
	in_netns(ns, "203.0.113.50", out, sizeof(out), raw_tcp);
	is_str(out, "Connection refused", "a raw TCP connection: refused at once by the sinkhole");
	i = find_rec("tcp", "203.0.113.50", 443);
	ok(i >= 0 && !rec.r[i].allowed, "... and recorded");
	in_netns(ns, "2001:db8::50", out, sizeof(out), raw_tcp);
	is_str(out, "Connection refused", "a raw TCP connection over IPv6: refused at once too");
	i = find_rec("tcp", "2001:db8::50", 443);
	ok(i >= 0 && !rec.r[i].allowed, "... and recorded");
	in_netns(ns, "exfil.attacker.example", out, sizeof(out), raw_dns);
	i = find_rec("dns", "exfil.attacker.example", 53);
	ok(i >= 0 && !rec.r[i].allowed, "a DNS query to 8.8.8.8: recorded with the name asked");

	kiln_egress_stop(e);
	close(ns);

	/* Limits: connections per job, bytes per job, idle time. */
	ok(kiln_egress_netns(&ns, &pfd, &tfd, &err) == 0, "a second namespace");
	kiln_error_free(&err);
	conf.max_conns = 3;
	conf.max_bytes = 40;
	conf.idle_secs = 1;
	rec.n = 0;
	ok(kiln_egress_start(&conf, pfd, tfd, &e, &err) == 0, "a proxy with tight limits");
	kiln_error_free(&err);
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", up_port);
	{
		uint64_t t0 = (uint64_t)time(NULL);

		in_netns(ns, req, out, sizeof(out), via_proxy);
		ok(strncmp(out, "HTTP/1.1 200", 12) == 0 && (uint64_t)time(NULL) - t0 <= 4,
		   "a tunnel that stays silent is closed after the idle time");
		i = find_rec("connect", "127.0.0.1", up_port);
		ok(i >= 0 && strstr(rec.r[i].reason, "idle timeout"), "... recorded as such (%s)",
		   i >= 0 ? rec.r[i].reason : "no record");
	}
	snprintf(req, sizeof(req),
		 "GET http://127.0.0.1:%u/a-path-long-enough-to-pass-forty-bytes HTTP/1.1\r\n\r\n",
		 up_port);
	hits = up_hits;
	in_netns(ns, req, out, sizeof(out), via_proxy);
	ok(strstr(out, "UPSTREAM-SAYS-HI") == NULL,
	   "over the job's byte limit: nothing comes back");
	i = find_rec("http", "127.0.0.1", up_port);
	ok(i >= 0 && strstr(rec.r[i].reason, "byte limit"), "... recorded as such (%s)",
	   i >= 0 ? rec.r[i].reason : "no record");
	in_netns(ns, "CONNECT a.allowed.test:443 HTTP/1.1\r\n\r\n", out, sizeof(out), via_proxy);
	in_netns(ns, "CONNECT b.allowed.test:443 HTTP/1.1\r\n\r\n", out, sizeof(out), via_proxy);
	ok(strncmp(out, "HTTP/1.1 429", 12) == 0 && strstr(out, "limit of 3 connections"),
	   "the fourth connection of the job: 429 (%s)", first_line(out));
	kiln_egress_stop(e);
	close(ns);
	shutdown(up_fd, SHUT_RDWR);
	close(up_fd);
	pthread_join(up, NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_rules();
	test_classes();
	test_requests();
	test_proxy();
	return tap_done();
}
