/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The egress proxy and sinkhole (egress.h). Everything that arrives here
 * comes from a build and is hostile: request heads are parsed with fixed
 * caps, names are validated before they are resolved, every address that
 * a name resolves to is checked before it is connected to (so a name that
 * rebinds to 127.0.0.1 or 169.254.169.254 gets nowhere), and raw packets
 * are only read, recorded and answered, never forwarded.
 *
 * Threads: one accepting proxy connections, one per proxy connection (at
 * most conf.max_active), one reading the TUN device. kiln_egress_stop()
 * wakes them all through an eventfd and joins them.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/route.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "server/egress.h"

#define TUN_NAME     "kiln0"
#define TUN_ADDR     "10.254.254.1"
#define TUN_ADDR6    "fd00:6b69:6c6e::1"
#define CONNECT_SECS 10
#define HEAD_SECS    10
#define RELAY_BUF    (16 * 1024)
#define MAX_RECORDS  1000 /* raw-packet records per job; beyond, counted only */
#define MAP_MAX	     64

/* ---- names, rules, addresses ---- */

static bool is_ipv4_literal(const char *h)
{
	struct in_addr a;

	return inet_pton(AF_INET, h, &a) == 1;
}

static bool is_ipv6_literal(const char *h)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, h, &a) == 1;
}

bool kiln_egress_host_normalise(char *host)
{
	size_t n = strlen(host), label = 0;

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
		return is_ipv6_literal(host);
	}
	if (n > 0 && host[n - 1] == '.')
		host[--n] = '\0';
	if (n == 0 || n > KILN_EGRESS_HOST_MAX)
		return false;
	if (is_ipv6_literal(host))
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];

		host[i] = (char)tolower(c);
		if (c == '.') {
			if (label == 0 || host[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum(c) || c == '-' || c == '_') || (c == '-' && label == 0) ||
		    ++label > 63)
			return false;
	}
	return host[n - 1] != '-';
}

/* "host:port" or "[v6]:port" -> host (normalised) and port. */
static bool split_authority(const char *text, size_t len, char *host, size_t cap, uint16_t *port,
			    bool port_required, uint16_t default_port)
{
	const char *colon = NULL;
	size_t hl;
	unsigned long p;
	char *end, num[8];

	if (len > 0 && text[0] == '[') {
		const char *rb = memchr(text, ']', len);

		if (rb == NULL)
			return false;
		if ((size_t)(rb + 1 - text) < len) {
			if (rb[1] != ':')
				return false;
			colon = rb + 1;
		}
	} else {
		colon = memchr(text, ':', len);
		if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon + 1 - text)))
			return false; /* a bare IPv6 literal needs brackets */
	}
	hl = colon ? (size_t)(colon - text) : len;
	if (hl == 0 || hl >= cap)
		return false;
	memcpy(host, text, hl);
	host[hl] = '\0';
	if (colon == NULL) {
		if (port_required)
			return false;
		*port = default_port;
	} else {
		size_t pl = len - hl - 1;

		if (pl == 0 || pl >= sizeof(num))
			return false;
		memcpy(num, colon + 1, pl);
		num[pl] = '\0';
		if (strspn(num, "0123456789") != pl)
			return false;
		p = strtoul(num, &end, 10);
		if (p == 0 || p > 65535)
			return false;
		*port = (uint16_t)p;
	}
	return kiln_egress_host_normalise(host);
}

bool kiln_egress_rule_parse(const char *text, struct kiln_egress_rule *out, char *msg, size_t len)
{
	char host[KILN_EGRESS_HOST_MAX + 3];
	bool wild = strncmp(text, "*.", 2) == 0;
	const char *t = wild ? text + 2 : text;

	memset(out, 0, sizeof(*out));
	if (!split_authority(t, strlen(t), host, sizeof(host), &out->port, true, 0)) {
		snprintf(msg, len,
			 "'%.80s': expected host:port, *.domain:port or [v6]:port (port 1-65535)",
			 text);
		return false;
	}
	if (wild && (is_ipv4_literal(host) || is_ipv6_literal(host) || !strchr(host, '.'))) {
		snprintf(msg, len, "'%.80s': a wildcard needs a domain of two labels or more",
			 text);
		return false;
	}
	if (strlen(host) + (wild ? 2 : 0) >= sizeof(out->host)) {
		snprintf(msg, len, "'%.80s': the name is too long", text);
		return false;
	}
	strcpy(out->host, wild ? "*." : "");
	strcat(out->host, host);
	return true;
}

bool kiln_egress_rule_match(const struct kiln_egress_rule *r, const char *host, uint16_t port)
{
	size_t hl, dl;

	if (r->port != port)
		return false;
	if (strncmp(r->host, "*.", 2) != 0)
		return strcmp(r->host, host) == 0;
	hl = strlen(host);
	dl = strlen(r->host + 1); /* ".example.com" */
	return hl > dl && strcmp(host + hl - dl, r->host + 1) == 0;
}

void kiln_egress_dest(char *buf, size_t cap, const char *host, uint16_t port)
{
	bool v6 = strchr(host, ':') != NULL;

	snprintf(buf, cap, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

static const char *v4_class(uint32_t a)
{
	if ((a >> 24) == 127)
		return "loopback";
	if ((a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168))
		return "private";
	if ((a >> 22) == ((100u << 2) | 1)) /* 100.64.0.0/10 */
		return "shared (carrier-grade NAT)";
	if ((a >> 16) == (169u << 8 | 254))
		return "link-local (cloud metadata)";
	if ((a >> 28) == 14)
		return "multicast";
	if ((a >> 24) == 0 || (a >> 28) == 15)
		return "reserved";
	return NULL;
}

const char *kiln_egress_addr_class(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_class(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		const uint8_t *b = a->s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return "loopback";
		if (IN6_IS_ADDR_UNSPECIFIED(a))
			return "reserved";
		if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
			uint32_t v4;

			memcpy(&v4, b + 12, 4);
			return v4_class(ntohl(v4)) ? v4_class(ntohl(v4)) : "IPv4-mapped";
		}
		if (IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_SITELOCAL(a))
			return "link-local";
		if ((b[0] & 0xfe) == 0xfc)
			return "private";
		if (IN6_IS_ADDR_MULTICAST(a))
			return "multicast";
		if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)
			return "NAT64";
		return NULL;
	}
	return "not an IP address";
}

/* ---- request heads ---- */

void kiln_egress_request_clear(struct kiln_egress_request *req)
{
	free(req->upstream_head);
	memset(req, 0, sizeof(*req));
}

static int req_fail(unsigned *status, unsigned code, char *msg, size_t len, const char *text)
{
	*status = code;
	snprintf(msg, len, "%s", text);
	return -1;
}

/* Hop-by-hop and proxy headers are not passed upstream (RFC 9110 7.6.1). */
static bool drop_header(const char *line, size_t n)
{
	static const char *const names[] = {"connection", "keep-alive", "proxy-",
					    "te",	  "trailer",	"transfer-encoding",
					    "upgrade",	  "host",	NULL};
	const char *colon = memchr(line, ':', n);
	size_t nl;

	if (colon == NULL)
		return true;
	nl = (size_t)(colon - line);
	for (size_t i = 0; names[i]; i++) {
		size_t l = strlen(names[i]);

		if (names[i][l - 1] == '-' ? (nl > l && strncasecmp(line, names[i], l) == 0)
					   : (nl == l && strncasecmp(line, names[i], l) == 0))
			return true;
	}
	return false;
}

int kiln_egress_parse_request(const char *buf, size_t len, struct kiln_egress_request *req,
			      unsigned *status, char *msg, size_t msglen)
{
	const char *end = NULL, *eol, *sp1, *sp2, *target, *auth, *path;
	size_t mlen, tlen, alen;
	char *out;
	size_t cap, o = 0;

	memset(req, 0, sizeof(*req));
	for (size_t i = 0; i + 3 < len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			end = buf + i;
			break;
		}
	if (end == NULL)
		return req_fail(status, 400, msg, msglen, "incomplete request head");
	req->head_len = (size_t)(end - buf) + 4;
	for (const char *p = buf; p < end; p++)
		if ((unsigned char)*p < 0x20 && *p != '\r' && *p != '\n' && *p != '\t')
			return req_fail(status, 400, msg, msglen, "control character in the head");
	eol = memmem(buf, (size_t)(end - buf) + 2, "\r\n", 2);
	sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (sp1 == NULL || sp2 == NULL || memchr(sp2 + 1, ' ', (size_t)(eol - sp2 - 1)))
		return req_fail(status, 400, msg, msglen, "malformed request line");
	if ((size_t)(eol - sp2 - 1) != 8 ||
	    (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
		return req_fail(status, 505, msg, msglen, "only HTTP/1.0 and HTTP/1.1");
	mlen = (size_t)(sp1 - buf);
	if (mlen == 0 || mlen >= sizeof(req->method))
		return req_fail(status, 400, msg, msglen, "malformed method");
	for (size_t i = 0; i < mlen; i++)
		if (!isupper((unsigned char)buf[i]))
			return req_fail(status, 400, msg, msglen, "malformed method");
	memcpy(req->method, buf, mlen);
	target = sp1 + 1;
	tlen = (size_t)(sp2 - target);

	if (strcmp(req->method, "CONNECT") == 0) {
		req->connect = true;
		if (!split_authority(target, tlen, req->host, sizeof(req->host), &req->port, true,
				     0))
			return req_fail(status, 400, msg, msglen,
					"CONNECT needs host:port with a valid name or address");
		return 0;
	}
	if (tlen < 8 || strncasecmp(target, "http://", 7) != 0)
		return req_fail(status, 400, msg, msglen,
				"the proxy forwards absolute http:// URLs and CONNECT only "
				"(use HTTPS_PROXY for https://)");
	auth = target + 7;
	path = memchr(auth, '/', tlen - 7);
	alen = path ? (size_t)(path - auth) : tlen - 7;
	if (memchr(auth, '@', alen) != NULL)
		return req_fail(status, 400, msg, msglen, "user information in the URL is refused");
	if (memchr(auth, '?', alen) != NULL || memchr(auth, '#', alen) != NULL)
		alen = (size_t)((const char *)memchr(auth, memchr(auth, '?', alen) ? '?' : '#',
						     alen) -
				auth);
	if (!split_authority(auth, alen, req->host, sizeof(req->host), &req->port, false, 80))
		return req_fail(status, 400, msg, msglen, "the URL has no valid host[:port]");

	/* The head for upstream: origin-form, our Host, no hop-by-hop. */
	cap = req->head_len + KILN_EGRESS_HOST_MAX + 64;
	out = malloc(cap);
	if (out == NULL)
		return req_fail(status, 500, msg, msglen, "out of memory");
	{
		const char *p = auth + alen;
		size_t plen = (size_t)(sp2 - p);

		o += (size_t)snprintf(out + o, cap - o, "%s ", req->method);
		if (plen == 0 || *p != '/') {
			out[o++] = '/';
		}
		memcpy(out + o, p, plen);
		o += plen;
		o += (size_t)snprintf(out + o, cap - o, " HTTP/1.1\r\nHost: %s%s%s",
				      strchr(req->host, ':') ? "[" : "", req->host,
				      strchr(req->host, ':') ? "]" : "");
		if (req->port != 80)
			o += (size_t)snprintf(out + o, cap - o, ":%u", req->port);
		o += (size_t)snprintf(out + o, cap - o, "\r\n");
	}
	for (const char *l = eol + 2; l < end + 2;) {
		const char *le = memmem(l, (size_t)(end + 2 - l), "\r\n", 2);
		size_t n = (size_t)(le - l);

		if (n > 0 && (*l == ' ' || *l == '\t')) {
			free(out);
			return req_fail(status, 400, msg, msglen,
					"folded header lines are refused");
		}
		if (n > 0 && !drop_header(l, n)) {
			memcpy(out + o, l, n);
			o += n;
			out[o++] = '\r';
			out[o++] = '\n';
		}
		l = le + 2;
	}
	o += (size_t)snprintf(out + o, cap - o, "Connection: close\r\n\r\n");
	req->upstream_head = out;
	req->upstream_len = o;
	return 0;
}

/* ---- the job's network namespace ---- */

struct prep_status {
	int step;
	int err;
};

static int set_ifaddr(int s, const char *name, const char *addr, const char *mask)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, addr, &sin->sin_addr);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
		return -1;
	inet_pton(AF_INET, mask, &sin->sin_addr);
	return ioctl(s, SIOCSIFNETMASK, &ifr);
}

static int if_up(int s, const char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(s, SIOCSIFFLAGS, &ifr);
}

/* struct in6_ifreq of <linux/ipv6.h>, which clashes with glibc's headers. */
struct kiln_in6_ifreq {
	struct in6_addr addr;
	uint32_t prefixlen;
	int ifindex;
};

/* IPv6 on the TUN device too, so that IPv6 packets reach the sinkhole
 * rather than failing unseen: an address (without duplicate address
 * detection, which would hold it back for a second) and a default route.
 * Returns 0 when IPv6 is disabled on this host: nothing to catch. */
static int tun_ipv6(int ifindex)
{
	struct kiln_in6_ifreq ifr6;
	struct in6_rtmsg rt6;
	int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), fd;

	if (s6 < 0)
		return errno == EAFNOSUPPORT ? 0 : -1;
	fd = open("/proc/sys/net/ipv6/conf/" TUN_NAME "/accept_dad", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		if (fd >= 0)
			close(fd);
		close(s6);
		return -1;
	}
	close(fd);
	memset(&ifr6, 0, sizeof(ifr6));
	inet_pton(AF_INET6, TUN_ADDR6, &ifr6.addr);
	ifr6.prefixlen = 128;
	ifr6.ifindex = ifindex;
	if (ioctl(s6, SIOCSIFADDR, &ifr6) < 0) {
		close(s6);
		return -1;
	}
	memset(&rt6, 0, sizeof(rt6));
	rt6.rtmsg_flags = RTF_UP;
	rt6.rtmsg_metric = 1;
	rt6.rtmsg_ifindex = ifindex;
	if (ioctl(s6, SIOCADDRT, &rt6) < 0) {
		close(s6);
		return -1;
	}
	close(s6);
	return 0;
}

/* The child: only system calls from here (the parent has threads). */
__attribute__((noreturn)) static void prep_child(int sock)
{
	struct prep_status st = {0, 0};
	struct ifreq ifr;
	struct rtentry rt;
	struct sockaddr_in *sin;
	int s, tun, lfd, ns, one = 1;

#define STEP(n, cond)                                                                              \
	do {                                                                                       \
		st.step = (n);                                                                     \
		if (!(cond)) {                                                                     \
			st.err = errno;                                                            \
			goto fail;                                                                 \
		}                                                                                  \
	} while (0)
	STEP(1, unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0);
	STEP(2, (s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0);
	STEP(3, if_up(s, "lo") == 0);
	STEP(4, (tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) >= 0);
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, TUN_NAME, IFNAMSIZ - 1);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	STEP(5, ioctl(tun, TUNSETIFF, &ifr) == 0);
	STEP(6, set_ifaddr(s, TUN_NAME, TUN_ADDR, "255.255.255.255") == 0);
	STEP(7, if_up(s, TUN_NAME) == 0);
	memset(&rt, 0, sizeof(rt));
	sin = (struct sockaddr_in *)&rt.rt_dst;
	sin->sin_family = AF_INET;
	sin = (struct sockaddr_in *)&rt.rt_genmask;
	sin->sin_family = AF_INET;
	rt.rt_flags = RTF_UP;
	rt.rt_dev = (char *)TUN_NAME;
	STEP(8, ioctl(s, SIOCADDRT, &rt) == 0);
	STEP(14, ioctl(s, SIOCGIFINDEX, &ifr) == 0 && tun_ipv6(ifr.ifr_ifindex) == 0);
	STEP(9, (lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	STEP(10, setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
	{
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(KILN_EGRESS_PORT)};

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		STEP(11, bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	}
	STEP(12, listen(lfd, 64) == 0);
	STEP(13, (ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) >= 0);
	st.step = 0;
	if (kiln_send_fd(sock, ns, &st, sizeof(st)) < 0 || kiln_send_fd(sock, lfd, "l", 1) < 0 ||
	    kiln_send_fd(sock, tun, "t", 1) < 0)
		_exit(1);
	_exit(0);
fail:
	(void)!write(sock, &st, sizeof(st));
	_exit(1);
#undef STEP
}

int kiln_egress_netns(int *netns_fd, int *proxy_fd, int *tun_fd, struct kiln_error **err)
{
	static const char *const steps[] = {
		"",
		"unshare(CLONE_NEWNET)",
		"socket",
		"bring up lo",
		"open /dev/net/tun (is the tun module loaded?)",
		"create the TUN device",
		"set the TUN device's address",
		"bring up the TUN device",
		"add the default route to the TUN device",
		"socket for the proxy",
		"SO_REUSEADDR",
		"bind 127.0.0.1:3128",
		"listen",
		"open /proc/self/ns/net",
		"IPv6 address and route of the TUN device",
	};
	struct prep_status st = {-1, 0};
	int sk[2], fd = -1, st2, r = -1;
	pid_t pid;
	char c;

	*netns_fd = *proxy_fd = *tun_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0)
		return kiln_error_set(err, errno, "egress: socketpair");
	pid = fork();
	if (pid < 0) {
		close(sk[0]);
		close(sk[1]);
		return kiln_error_set(err, errno, "egress: fork");
	}
	if (pid == 0) {
		close(sk[0]);
		prep_child(sk[1]);
	}
	close(sk[1]);
	if (kiln_recv_fd(sk[0], &fd, &st, sizeof(st)) < (ssize_t)sizeof(st) || st.step != 0 ||
	    fd < 0) {
		if (fd >= 0)
			close(fd);
		if (st.step > 0 && (size_t)st.step < sizeof(steps) / sizeof(steps[0]))
			kiln_error_set(err, st.err, "egress network namespace: %s", steps[st.step]);
		else
			kiln_error_set(err, EPROTO, "egress network namespace: the helper died");
		goto out;
	}
	*netns_fd = fd;
	if (kiln_recv_fd(sk[0], proxy_fd, &c, 1) != 1 || *proxy_fd < 0 ||
	    kiln_recv_fd(sk[0], tun_fd, &c, 1) != 1 || *tun_fd < 0) {
		kiln_error_set(err, EPROTO, "egress network namespace: descriptors missing");
		goto out;
	}
	r = 0;
out:
	close(sk[0]);
	while (waitpid(pid, &st2, 0) < 0 && errno == EINTR)
		;
	if (r < 0) {
		if (*netns_fd >= 0)
			close(*netns_fd);
		if (*proxy_fd >= 0)
			close(*proxy_fd);
		if (*tun_fd >= 0)
			close(*tun_fd);
		*netns_fd = *proxy_fd = *tun_fd = -1;
	}
	return r;
}

/* ---- the running proxy ---- */

struct kiln_egress {
	struct kiln_egress_conf conf;
	struct kiln_egress_rule *rules;
	char **map_names, **map_addrs;
	int lfd, tun, stopfd;
	pthread_t acceptor, sinkhole;
	bool have_acceptor, have_sinkhole;

	pthread_mutex_t mu;
	pthread_cond_t idle; /* signalled when a connection thread ends */
	unsigned active;     /* under mu */
	unsigned total;	     /* under mu: connections accepted */
	uint64_t bytes;	     /* under mu: both directions, all connections */
	unsigned records;    /* under mu: raw-packet records */
	uint64_t dropped;    /* under mu: raw packets not recorded (over MAX_RECORDS) */
	pthread_mutex_t cb;  /* one on_attempt call at a time */
};

struct conn {
	struct kiln_egress *e;
	int fd;
};

static uint64_t now_ms(void)
{
	return kiln_now_ns() / 1000000;
}

static void report(struct kiln_egress *e, const struct kiln_egress_attempt *a)
{
	if (e->conf.on_attempt == NULL)
		return;
	pthread_mutex_lock(&e->cb);
	e->conf.on_attempt(e->conf.ctx, a);
	pthread_mutex_unlock(&e->cb);
}

static bool stopping(struct kiln_egress *e)
{
	struct pollfd p = {.fd = e->stopfd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* Wait for fd to be readable (or writable) until deadline (monotonic ms,
 * 0 = no deadline); false on stop, timeout or a failed poll. */
static bool wait_fd(struct kiln_egress *e, int fd, short ev, uint64_t deadline)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = ev},
				      {.fd = e->stopfd, .events = POLLIN}};
		uint64_t now = now_ms();
		int r;

		if (deadline != 0 && now >= deadline)
			return false;
		r = poll(p, 2, deadline == 0 ? -1 : (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || p[1].revents)
			return false;
		return true;
	}
}

static void answer(int fd, unsigned status, const char *reason, const char *msg)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %u %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
			 status, reason, strlen(msg) + 1, msg);

	if (n > 0)
		(void)kiln_write_all(fd, buf,
				     (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static bool rule_allows(const struct kiln_egress *e, const char *host, uint16_t port)
{
	for (size_t i = 0; i < e->conf.nrules; i++)
		if (kiln_egress_rule_match(&e->rules[i], host, port))
			return true;
	return false;
}

/* Resolve host (the test mapping first), keep the first address that may
 * be reached: public, or named literally by a rule. 0, or -1 with why. */
static int resolve(struct kiln_egress *e, const char *host, uint16_t port,
		   struct sockaddr_storage *out, socklen_t *outlen, char *addr, size_t alen,
		   char *why, size_t wlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	const char *target = host, *cls = NULL;
	char portstr[8], first[INET6_ADDRSTRLEN + 64] = "";
	int r;

	for (size_t i = 0; i < e->conf.nmap; i++)
		if (strcmp(e->map_names[i], host) == 0) {
			target = e->map_addrs[i];
			hints.ai_flags |= AI_NUMERICHOST;
			break;
		}
	snprintf(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(target, portstr, &hints, &res);
	if (r != 0) {
		snprintf(why, wlen, "%s does not resolve (%s)", host, gai_strerror(r));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		char a[INET6_ADDRSTRLEN];
		const void *p =
			ai->ai_family == AF_INET
				? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
				: (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

		if (inet_ntop(ai->ai_family, p, a, sizeof(a)) == NULL)
			continue;
		cls = kiln_egress_addr_class(ai->ai_addr);
		/* Named literally by a rule ("10.0.0.5:8080"): allowed. */
		if (cls != NULL && rule_allows(e, a, port))
			cls = NULL;
		if (cls == NULL) {
			memcpy(out, ai->ai_addr, ai->ai_addrlen);
			*outlen = ai->ai_addrlen;
			snprintf(addr, alen, "%s", a);
			freeaddrinfo(res);
			return 0;
		}
		if (first[0] == '\0')
			snprintf(first, sizeof(first), "%s (%s)", a, cls);
	}
	freeaddrinfo(res);
	snprintf(why, wlen,
		 "%s resolves to %s, which is refused unless network.allow names that address "
		 "itself",
		 host, first[0] ? first : "nothing usable");
	return -1;
}

static int connect_to(struct kiln_egress *e, const struct sockaddr_storage *sa, socklen_t len,
		      char *why, size_t wlen)
{
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fd < 0) {
		snprintf(why, wlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)sa, len) < 0 && errno != EINPROGRESS) {
		snprintf(why, wlen, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (!wait_fd(e, fd, POLLOUT, now_ms() + CONNECT_SECS * 1000) ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
		snprintf(why, wlen, "connect: %s", soerr ? strerror(soerr) : "timed out");
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* Take n bytes from the job's budget; false when it is spent. */
static bool spend(struct kiln_egress *e, size_t n)
{
	bool ok;

	pthread_mutex_lock(&e->mu);
	ok = e->conf.max_bytes == 0 || e->bytes + n <= e->conf.max_bytes;
	if (ok)
		e->bytes += n;
	pthread_mutex_unlock(&e->mu);
	return ok;
}

/* Copy both ways until either side closes, the connection idles or lives
 * too long, the byte budget is spent or the proxy stops. */
static const char *relay(struct kiln_egress *e, int c, int u, uint64_t *up, uint64_t *down)
{
	char *buf = malloc(RELAY_BUF);
	uint64_t start = now_ms(), last = start;
	const char *end = NULL;

	if (buf == NULL)
		return "out of memory";
	while (end == NULL) {
		struct pollfd p[3] = {{.fd = c, .events = POLLIN},
				      {.fd = u, .events = POLLIN},
				      {.fd = e->stopfd, .events = POLLIN}};
		uint64_t now = now_ms(), dl_idle = last + (uint64_t)e->conf.idle_secs * 1000,
			 dl_life = start + (uint64_t)e->conf.max_secs * 1000;
		uint64_t dl = dl_idle < dl_life ? dl_idle : dl_life;
		int r;

		if (now >= dl) {
			end = dl == dl_idle ? "idle timeout" : "connection time limit";
			break;
		}
		r = poll(p, 3, (int)(dl - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || p[2].revents) {
			end = "proxy stopped";
			break;
		}
		for (int i = 0; i < 2 && end == NULL; i++) {
			ssize_t n;

			if (!p[i].revents)
				continue;
			n = read(p[i].fd, buf, RELAY_BUF);
			if (n <= 0) {
				end = "";
				break;
			}
			if (!spend(e, (size_t)n)) {
				end = "the job's egress byte limit";
				break;
			}
			if (kiln_write_all(p[1 - i].fd, buf, (size_t)n) < 0) {
				end = "";
				break;
			}
			*(i == 0 ? up : down) += (uint64_t)n;
			last = now_ms();
		}
	}
	free(buf);
	return end[0] ? end : NULL;
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct kiln_egress *e = cn->e;
	struct kiln_egress_request req;
	struct kiln_egress_attempt a = {.kind = "connect", .host = "", .addr = ""};
	struct sockaddr_storage sa;
	socklen_t salen = 0;
	char *head = malloc(KILN_EGRESS_HEAD_MAX);
	char msg[1024], why[384], addr[INET6_ADDRSTRLEN] = "", dest[300];
	size_t have = 0;
	uint64_t start = now_ms(), deadline = start + HEAD_SECS * 1000;
	unsigned status = 400;
	int u = -1;
	struct timeval tv = {.tv_sec = e->conf.idle_secs};

	memset(&req, 0, sizeof(req));
	setsockopt(cn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (head == NULL)
		goto out;
	/* The head, up to its blank line; what follows stays for upstream. */
	while (have < KILN_EGRESS_HEAD_MAX) {
		ssize_t n;

		if (!wait_fd(e, cn->fd, POLLIN, deadline))
			goto out;
		n = read(cn->fd, head + have, KILN_EGRESS_HEAD_MAX - have);
		if (n <= 0)
			goto out;
		have += (size_t)n;
		if (memmem(head, have, "\r\n\r\n", 4) != NULL)
			break;
	}
	if (kiln_egress_parse_request(head, have, &req, &status, why, sizeof(why)) < 0) {
		a.kind = "http";
		a.reason = why;
		snprintf(msg, sizeof(msg), "kiln egress: bad request: %s", why);
		answer(cn->fd, status, status == 505 ? "HTTP Version Not Supported" : "Bad Request",
		       msg);
		goto record;
	}
	a.kind = req.connect ? "connect" : "http";
	a.host = req.host;
	a.port = req.port;
	kiln_egress_dest(dest, sizeof(dest), req.host, req.port);
	pthread_mutex_lock(&e->mu);
	status = e->conf.max_conns && e->total > e->conf.max_conns ? 429 : 0;
	pthread_mutex_unlock(&e->mu);
	if (status == 429) {
		snprintf(why, sizeof(why), "over the job's limit of %u connections",
			 e->conf.max_conns);
		goto deny;
	}
	if (!rule_allows(e, req.host, req.port)) {
		if (!e->conf.audit) {
			snprintf(why, sizeof(why),
				 "%s is not in the project's allowlist (policy: network.allow)",
				 dest);
			status = 403;
			goto deny;
		}
		a.reason = "audit: not in the allowlist";
	}
	if (resolve(e, req.host, req.port, &sa, &salen, addr, sizeof(addr), why, sizeof(why)) < 0) {
		status = 403;
		goto deny;
	}
	a.addr = addr;
	u = connect_to(e, &sa, salen, why, sizeof(why));
	if (u < 0) {
		status = 502;
		goto deny;
	}
	setsockopt(u, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	a.allowed = true;
	if (req.connect) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

		if (kiln_write_all(cn->fd, ok, sizeof(ok) - 1) < 0)
			goto record;
	} else if (!spend(e, req.upstream_len)) {
		a.reason = "closed by kiln: the job's egress byte limit";
		goto record;
	} else if (kiln_write_all(u, req.upstream_head, req.upstream_len) < 0) {
		goto record;
	} else {
		a.bytes_up += req.upstream_len;
	}
	/* Bytes the client sent after its head (a TLS ClientHello, a body). */
	if (have > req.head_len) {
		size_t extra = have - req.head_len;

		if (!spend(e, extra) || kiln_write_all(u, head + req.head_len, extra) < 0)
			goto record;
		a.bytes_up += extra;
	}
	{
		const char *why_end = relay(e, cn->fd, u, &a.bytes_up, &a.bytes_down);

		if (why_end != NULL && a.reason == NULL) {
			snprintf(why, sizeof(why), "closed by kiln: %s", why_end);
			a.reason = why;
		}
	}
	goto record;
deny:
	a.allowed = false;
	a.reason = why;
	snprintf(msg, sizeof(msg), "kiln egress: %s %s denied: %s", req.method, dest, why);
	answer(cn->fd, status,
	       status == 429   ? "Too Many Requests"
	       : status == 502 ? "Bad Gateway"
			       : "Forbidden",
	       msg);
record:
	a.duration_ms = now_ms() - start;
	report(e, &a);
out:
	if (u >= 0)
		close(u);
	kiln_egress_request_clear(&req);
	free(head);
	close(cn->fd);
	free(cn);
	pthread_mutex_lock(&e->mu);
	e->active--;
	pthread_cond_broadcast(&e->idle);
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct kiln_egress *e = arg;

	while (wait_fd(e, e->lfd, POLLIN, 0)) {
		struct conn *cn;
		pthread_t t;
		pthread_attr_t at;
		int fd;

		fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&e->mu);
		while (e->active >= e->conf.max_active && !stopping(e))
			pthread_cond_wait(&e->idle, &e->mu);
		e->total++;
		e->active++;
		pthread_mutex_unlock(&e->mu);
		cn = malloc(sizeof(*cn));
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (cn == NULL ||
		    (cn->e = e, cn->fd = fd, pthread_create(&t, &at, conn_main, cn) != 0)) {
			free(cn);
			close(fd);
			pthread_mutex_lock(&e->mu);
			e->active--;
			pthread_cond_broadcast(&e->idle);
			pthread_mutex_unlock(&e->mu);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

/* ---- the sinkhole: packets that did not use the proxy ---- */

static uint16_t csum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *b = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A TCP reset answering a SYN: the build's connect() fails at once. */
static void send_rst(struct kiln_egress *e, const struct iphdr *ip, const struct tcphdr *th)
{
	uint8_t pkt[40];
	struct iphdr *rip = (struct iphdr *)pkt;
	struct tcphdr *rth = (struct tcphdr *)(pkt + 20);
	uint8_t pseudo[12 + 20];

	memset(pkt, 0, sizeof(pkt));
	rip->version = 4;
	rip->ihl = 5;
	rip->tot_len = htons(sizeof(pkt));
	rip->ttl = 64;
	rip->protocol = IPPROTO_TCP;
	rip->saddr = ip->daddr;
	rip->daddr = ip->saddr;
	rth->source = th->dest;
	rth->dest = th->source;
	rth->ack_seq = htonl(ntohl(th->seq) + 1);
	rth->doff = 5;
	rth->rst = 1;
	rth->ack = 1;
	memcpy(pseudo, &rip->saddr, 4);
	memcpy(pseudo + 4, &rip->daddr, 4);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = 20;
	memcpy(pseudo + 12, rth, 20);
	rth->check = htons(csum(pseudo, sizeof(pseudo), 0));
	rip->check = htons(csum(rip, 20, 0));
	(void)!write(e->tun, pkt, sizeof(pkt));
}

/* ICMP destination unreachable, "communication administratively
 * prohibited", quoting the packet's header and first 8 bytes. */
static void send_unreach(struct kiln_egress *e, const uint8_t *orig, size_t len)
{
	const struct iphdr *ip = (const struct iphdr *)orig;
	size_t quote = (size_t)ip->ihl * 4 + 8;
	uint8_t pkt[20 + 8 + 60 + 8];
	struct iphdr *rip = (struct iphdr *)pkt;
	struct icmphdr *ic = (struct icmphdr *)(pkt + 20);

	if (quote > len)
		quote = len;
	memset(pkt, 0, sizeof(pkt));
	rip->version = 4;
	rip->ihl = 5;
	rip->tot_len = htons((uint16_t)(28 + quote));
	rip->ttl = 64;
	rip->protocol = IPPROTO_ICMP;
	rip->saddr = ip->daddr;
	rip->daddr = ip->saddr;
	ic->type = ICMP_DEST_UNREACH;
	ic->code = ICMP_PKT_FILTERED;
	memcpy(pkt + 28, orig, quote);
	ic->checksum = htons(csum(ic, 8 + quote, 0));
	rip->check = htons(csum(rip, 20, 0));
	(void)!write(e->tun, pkt, 28 + quote);
}

/* The first question of a DNS query, as a dotted name (max 253). */
static bool dns_qname(const uint8_t *p, size_t len, char *out, size_t cap)
{
	size_t i = 12, o = 0;

	if (len < 13)
		return false;
	while (i < len && p[i] != 0) {
		size_t l = p[i++];

		if (l > 63 || i + l > len || o + l + 2 > cap)
			return false;
		if (o > 0)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			unsigned char c = p[i + k];

			out[o++] = (char)(isalnum(c) || c == '-' || c == '_' ? tolower(c) : '?');
		}
		i += l;
	}
	out[o] = '\0';
	return i < len;
}

/* A raw-packet record, unless the job already has MAX_RECORDS of them. */
static void sink_record(struct kiln_egress *e, const struct kiln_egress_attempt *a)
{
	bool record;

	pthread_mutex_lock(&e->mu);
	record = e->records < MAX_RECORDS;
	if (record)
		e->records++;
	else
		e->dropped++;
	pthread_mutex_unlock(&e->mu);
	if (record)
		report(e, a);
}

/* IPv6 checksum over the pseudo header and len bytes of data. */
static uint16_t csum6(const struct ip6_hdr *ip, uint8_t nh, const void *data, size_t len)
{
	uint8_t ph[40];
	uint32_t sum = 0;
	const uint8_t *b = ph;

	memcpy(ph, &ip->ip6_src, 16);
	memcpy(ph + 16, &ip->ip6_dst, 16);
	ph[32] = (uint8_t)(len >> 24);
	ph[33] = (uint8_t)(len >> 16);
	ph[34] = (uint8_t)(len >> 8);
	ph[35] = (uint8_t)len;
	ph[36] = ph[37] = ph[38] = 0;
	ph[39] = nh;
	for (size_t i = 0; i < sizeof(ph); i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	return csum(data, len, sum);
}

static void send_rst6(struct kiln_egress *e, const struct ip6_hdr *ip, const struct tcphdr *th)
{
	uint8_t pkt[60];
	struct ip6_hdr *rip = (struct ip6_hdr *)pkt;
	struct tcphdr *rth = (struct tcphdr *)(pkt + 40);

	memset(pkt, 0, sizeof(pkt));
	rip->ip6_flow = htonl(6u << 28);
	rip->ip6_plen = htons(20);
	rip->ip6_nxt = IPPROTO_TCP;
	rip->ip6_hlim = 64;
	rip->ip6_src = ip->ip6_dst;
	rip->ip6_dst = ip->ip6_src;
	rth->source = th->dest;
	rth->dest = th->source;
	rth->ack_seq = htonl(ntohl(th->seq) + 1);
	rth->doff = 5;
	rth->rst = 1;
	rth->ack = 1;
	rth->check = htons(csum6(rip, IPPROTO_TCP, rth, 20));
	(void)!write(e->tun, pkt, sizeof(pkt));
}

/* ICMPv6 destination unreachable, "administratively prohibited". */
static void send_unreach6(struct kiln_egress *e, const uint8_t *orig, size_t len)
{
	const struct ip6_hdr *ip = (const struct ip6_hdr *)orig;
	uint8_t pkt[40 + 8 + 512];
	struct ip6_hdr *rip = (struct ip6_hdr *)pkt;
	struct icmp6_hdr *ic = (struct icmp6_hdr *)(pkt + 40);
	size_t quote = len < 512 ? len : 512;

	memset(pkt, 0, sizeof(pkt));
	rip->ip6_flow = htonl(6u << 28);
	rip->ip6_plen = htons((uint16_t)(8 + quote));
	rip->ip6_nxt = IPPROTO_ICMPV6;
	rip->ip6_hlim = 64;
	rip->ip6_src = ip->ip6_dst;
	rip->ip6_dst = ip->ip6_src;
	ic->icmp6_type = ICMP6_DST_UNREACH;
	ic->icmp6_code = ICMP6_DST_UNREACH_ADMIN;
	memcpy(pkt + 48, orig, quote);
	ic->icmp6_cksum = htons(csum6(rip, IPPROTO_ICMPV6, ic, 8 + quote));
	(void)!write(e->tun, pkt, 48 + quote);
}

/* Only what a build sends on purpose is recorded: the kernel's own
 * neighbour discovery and multicast listener reports are ignored. */
static void sink_packet6(struct kiln_egress *e, const uint8_t *pkt, size_t len)
{
	const struct ip6_hdr *ip = (const struct ip6_hdr *)pkt;
	struct kiln_egress_attempt a = {.kind = "other", .host = "", .allowed = false};
	char addr[INET6_ADDRSTRLEN], name[256];

	if (len < 40)
		return;
	inet_ntop(AF_INET6, &ip->ip6_dst, addr, sizeof(addr));
	a.addr = addr;
	switch (ip->ip6_nxt) {
	case IPPROTO_TCP: {
		const struct tcphdr *th = (const struct tcphdr *)(pkt + 40);

		if (len < 60 || !th->syn || th->ack)
			return;
		a.kind = "tcp";
		a.port = ntohs(th->dest);
		a.reason = "a TCP connection that bypasses the proxy: the sandbox has no route out";
		send_rst6(e, ip, th);
		break;
	}
	case IPPROTO_UDP: {
		const struct udphdr *uh = (const struct udphdr *)(pkt + 40);

		if (len < 48)
			return;
		a.kind = "udp";
		a.port = ntohs(uh->dest);
		a.reason = "UDP: the sandbox has no route out";
		if (a.port == 53 && dns_qname(pkt + 48, len - 48, name, sizeof(name))) {
			a.kind = "dns";
			a.host = name;
			a.reason = "a DNS query: the sandbox has no resolver; the proxy resolves "
				   "names";
		}
		send_unreach6(e, pkt, len);
		break;
	}
	case IPPROTO_ICMPV6:
		if (len < 48 || pkt[40] != ICMP6_ECHO_REQUEST)
			return;
		a.kind = "icmp";
		a.reason = "ICMPv6 echo: the sandbox has no route out";
		send_unreach6(e, pkt, len);
		break;
	default: return;
	}
	sink_record(e, &a);
}

static void sink_packet(struct kiln_egress *e, const uint8_t *pkt, size_t len)
{
	const struct iphdr *ip = (const struct iphdr *)pkt;
	struct kiln_egress_attempt a = {.kind = "other", .host = "", .allowed = false};
	char addr[INET_ADDRSTRLEN], name[256];
	size_t hl;
	bool record = false, unreach = false;

	if (len >= 1 && (pkt[0] >> 4) == 6) {
		sink_packet6(e, pkt, len);
		return;
	}
	if (len < 20 || ip->version != 4 || ip->ihl < 5 || (size_t)ip->ihl * 4 > len)
		return;
	if (ntohs(ip->frag_off) & 0x1fff)
		return; /* a later fragment: the first one was seen */
	hl = (size_t)ip->ihl * 4;
	inet_ntop(AF_INET, &ip->daddr, addr, sizeof(addr));
	a.addr = addr;
	switch (ip->protocol) {
	case IPPROTO_TCP: {
		const struct tcphdr *th = (const struct tcphdr *)(pkt + hl);

		if (len < hl + 20 || !th->syn || th->ack)
			return;
		a.kind = "tcp";
		a.port = ntohs(th->dest);
		a.reason = "a TCP connection that bypasses the proxy: the sandbox has no route out";
		record = true;
		send_rst(e, ip, th);
		break;
	}
	case IPPROTO_UDP: {
		const struct udphdr *uh = (const struct udphdr *)(pkt + hl);

		if (len < hl + 8)
			return;
		a.kind = "udp";
		a.port = ntohs(uh->dest);
		a.reason = "UDP: the sandbox has no route out";
		if (a.port == 53 && dns_qname(pkt + hl + 8, len - hl - 8, name, sizeof(name))) {
			a.kind = "dns";
			a.host = name;
			a.reason = "a DNS query: the sandbox has no resolver; the proxy resolves "
				   "names";
		}
		record = unreach = true;
		break;
	}
	case IPPROTO_ICMP:
		if (len < hl + 8 || pkt[hl] != ICMP_ECHO)
			return;
		a.kind = "icmp";
		a.reason = "ICMP echo: the sandbox has no route out";
		record = unreach = true;
		break;
	case IPPROTO_IGMP: return; /* the kernel's own multicast reports */
	default:
		a.reason = "an IP packet that bypasses the proxy";
		record = true;
		break;
	}
	if (unreach)
		send_unreach(e, pkt, len);
	if (record)
		sink_record(e, &a);
}

static void *sinkhole_main(void *arg)
{
	struct kiln_egress *e = arg;
	uint8_t *buf = malloc(65536);

	if (buf == NULL)
		return NULL;
	while (wait_fd(e, e->tun, POLLIN, 0)) {
		ssize_t n;

		n = read(e->tun, buf, 65536);
		if (n > 0)
			sink_packet(e, buf, (size_t)n);
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
	}
	free(buf);
	return NULL;
}

/* ---- start and stop ---- */

static void egress_free(struct kiln_egress *e)
{
	for (size_t i = 0; i < e->conf.nmap; i++) {
		if (e->map_names)
			free(e->map_names[i]);
		if (e->map_addrs)
			free(e->map_addrs[i]);
	}
	free(e->map_names);
	free(e->map_addrs);
	free(e->rules);
	if (e->lfd >= 0)
		close(e->lfd);
	if (e->tun >= 0)
		close(e->tun);
	if (e->stopfd >= 0)
		close(e->stopfd);
	pthread_mutex_destroy(&e->mu);
	pthread_mutex_destroy(&e->cb);
	pthread_cond_destroy(&e->idle);
	free(e);
}

int kiln_egress_start(const struct kiln_egress_conf *conf, int proxy_fd, int tun_fd,
		      struct kiln_egress **out, struct kiln_error **err)
{
	struct kiln_egress *e = calloc(1, sizeof(*e));

	*out = NULL;
	if (e == NULL) {
		close(proxy_fd);
		close(tun_fd);
		return kiln_error_set(err, ENOMEM, "egress");
	}
	e->conf = *conf;
	e->lfd = proxy_fd;
	e->tun = tun_fd;
	e->stopfd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&e->mu, NULL);
	pthread_mutex_init(&e->cb, NULL);
	pthread_cond_init(&e->idle, NULL);
	if (e->conf.max_active == 0)
		e->conf.max_active = 1;
	if (e->conf.idle_secs == 0)
		e->conf.idle_secs = 60;
	if (e->conf.max_secs == 0)
		e->conf.max_secs = 600;
	e->rules = calloc(conf->nrules ? conf->nrules : 1, sizeof(*e->rules));
	e->map_names = calloc(conf->nmap ? conf->nmap : 1, sizeof(char *));
	e->map_addrs = calloc(conf->nmap ? conf->nmap : 1, sizeof(char *));
	if (e->stopfd < 0 || e->rules == NULL || e->map_names == NULL || e->map_addrs == NULL) {
		egress_free(e);
		return kiln_error_set(err, ENOMEM, "egress");
	}
	if (conf->nrules)
		memcpy(e->rules, conf->rules, conf->nrules * sizeof(*e->rules));
	for (size_t i = 0; i < conf->nmap; i++) {
		e->map_names[i] = strdup(conf->map_names[i]);
		e->map_addrs[i] = strdup(conf->map_addrs[i]);
		if (e->map_names[i] == NULL || e->map_addrs[i] == NULL) {
			egress_free(e);
			return kiln_error_set(err, ENOMEM, "egress");
		}
	}
	e->conf.rules = NULL;
	e->conf.map_names = e->conf.map_addrs = NULL;
	fcntl(e->tun, F_SETFL, fcntl(e->tun, F_GETFL) | O_NONBLOCK);
	if (pthread_create(&e->acceptor, NULL, acceptor_main, e) != 0) {
		egress_free(e);
		return kiln_error_set(err, EAGAIN, "egress: start the proxy thread");
	}
	e->have_acceptor = true;
	if (pthread_create(&e->sinkhole, NULL, sinkhole_main, e) != 0) {
		kiln_egress_stop(e);
		return kiln_error_set(err, EAGAIN, "egress: start the sinkhole thread");
	}
	e->have_sinkhole = true;
	*out = e;
	return 0;
}

void kiln_egress_stop(struct kiln_egress *e)
{
	uint64_t one = 1;

	if (e == NULL)
		return;
	(void)!write(e->stopfd, &one, sizeof(one));
	pthread_mutex_lock(&e->mu);
	pthread_cond_broadcast(&e->idle);
	pthread_mutex_unlock(&e->mu);
	if (e->have_acceptor)
		pthread_join(e->acceptor, NULL);
	if (e->have_sinkhole)
		pthread_join(e->sinkhole, NULL);
	/* Connection threads see the eventfd in every poll. */
	pthread_mutex_lock(&e->mu);
	while (e->active > 0)
		pthread_cond_wait(&e->idle, &e->mu);
	pthread_mutex_unlock(&e->mu);
	if (e->dropped > 0) {
		char why[96];
		struct kiln_egress_attempt a = {
			.kind = "other", .host = "", .addr = "", .reason = why};

		snprintf(why, sizeof(why), "%" PRIu64 " more packets that bypassed the proxy",
			 e->dropped);
		report(e, &a);
	}
	egress_free(e);
}
