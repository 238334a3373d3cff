/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's configuration: defaults, a full file, broken files with their
 * exact FILE:LINE:COL, a failed parse leaving the configuration alone, and
 * the listen address table with its loopback verdicts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "server/config.h"
#include "tap.h"

#define GIB (UINT64_C(1) << 30)
#define MIB (UINT64_C(1) << 20)

static int parse(const char *text, struct kiln_config *c, struct kiln_error **err)
{
	return kiln_config_parse("kilnd.yml", text, strlen(text), c, err);
}

static void test_defaults(void)
{
	struct kiln_config c;

	kiln_config_defaults(&c);
	is_str(c.data, "/var/lib/kiln", "default data");
	is_str(c.listen_host, "127.0.0.1", "default listen host");
	is_int(c.listen_port, 8420, "default port");
	is_int(c.workers, 0, "default workers: number of cores");
	ok(c.tls_cert == NULL && c.tls_key == NULL, "no TLS by default");
	ok(!c.allow_insecure_listen, "insecure listen off by default");
	is_int(c.max_body, 256 * MIB, "default body limit");
	is_int(c.max_unpacked, 4 * GIB, "default unpacked limit");
	is_int(c.max_files, 200000, "default files limit");
	is_int(c.max_path, 1024, "default path limit");
	is_int(c.max_log, 16 * MIB, "default log limit");
	is_int(c.conns_per_token, 16, "default connections per token");
	is_int(c.max_attempts, 3, "default attempts");
	is_int(c.spec_limits.max_timeout, 86400, "default spec limits");
	ok(kiln_config_listen_is_loopback(&c), "default listen is loopback");
	kiln_config_free(&c);
	ok(c.data == NULL && c.listen_host == NULL, "free clears the pointers");
	kiln_config_free(&c); /* twice is fine */
	kiln_config_free(NULL);
	ok(1, "free on a defaults-only struct, twice, and on NULL");
}

static void test_full(void)
{
	static const char text[] = "# kilnd\n"
				   "data: /srv/kiln/\n"
				   "listen: \"[::1]:9000\"\n"
				   "workers: 4\n"
				   "tls: {cert: /etc/kiln/cert.pem, key: /etc/kiln/key.pem}\n"
				   "allow_insecure_listen: false\n"
				   "limits:\n"
				   "  body: 1G\n"
				   "  unpacked: 8G\n"
				   "  files: 1000\n"
				   "  path: 512\n"
				   "  log: 1M\n"
				   "  connections_per_token: 4\n"
				   "max_attempts: 5\n"
				   "spec_limits: {timeout: 2h, memory: 8G, disk: 16G, pids: 4096, "
				   "cpus: 2.5}\n";
	struct kiln_config c;
	struct kiln_error *err = NULL;
	int r;

	kiln_config_defaults(&c);
	r = parse(text, &c, &err);
	is_int(r, 0, "full config parses");
	if (err)
		printf("#   %s\n", err->msg);
	kiln_error_free(&err);
	is_str(c.data, "/srv/kiln", "data, trailing / dropped");
	is_str(c.listen_host, "::1", "listen host");
	is_int(c.listen_port, 9000, "listen port");
	is_int(c.workers, 4, "workers");
	is_str(c.tls_cert, "/etc/kiln/cert.pem", "tls cert");
	is_str(c.tls_key, "/etc/kiln/key.pem", "tls key");
	is_int(c.max_body, GIB, "body");
	is_int(c.max_unpacked, 8 * GIB, "unpacked");
	is_int(c.max_files, 1000, "files");
	is_int(c.max_path, 512, "path");
	is_int(c.max_log, MIB, "log");
	is_int(c.conns_per_token, 4, "connections per token");
	is_int(c.max_attempts, 5, "attempts");
	is_int(c.spec_limits.max_timeout, 7200, "spec timeout limit");
	is_int(c.spec_limits.max_memory, 8 * GIB, "spec memory limit");
	is_int(c.spec_limits.max_disk, 16 * GIB, "spec disk limit");
	is_int(c.spec_limits.max_pids, 4096, "spec pids limit");
	is_int(c.spec_limits.max_cpus_milli, 2500, "spec cpus limit");
	ok(kiln_config_listen_is_loopback(&c), "::1 is loopback");

	/* a second file replaces what it names and keeps the rest */
	r = parse("listen: 0.0.0.0:80\nallow_insecure_listen: true\n", &c, &err);
	is_int(r, 0, "second file parses");
	kiln_error_free(&err);
	is_str(c.listen_host, "0.0.0.0", "listen replaced");
	ok(c.allow_insecure_listen, "insecure listen set");
	ok(!kiln_config_listen_is_loopback(&c), "0.0.0.0 is not loopback");
	is_str(c.data, "/srv/kiln", "data kept");
	is_str(c.tls_cert, "/etc/kiln/cert.pem", "tls kept");
	kiln_config_free(&c);

	/* egress: limits and the test-only host map */
	kiln_config_defaults(&c);
	is_int(c.egress_conns, 256, "egress.connections defaults to 256");
	r = parse("egress:\n  connections: 10\n  bytes: 1M\n  idle: 5s\n"
		  "  hosts: {Pkg.Test.: 203.0.113.2, v6.test: \"2001:db8::1\"}\n",
		  &c, &err);
	is_int(r, 0, "an egress section parses (%s)", err ? err->msg : "ok");
	kiln_error_free(&err);
	is_int(c.egress_conns, 10, "egress.connections");
	is_int(c.egress_bytes, 1 << 20, "egress.bytes");
	is_int(c.egress_idle, 5, "egress.idle");
	is_str(c.egress_hosts, "pkg.test 203.0.113.2\nv6.test 2001:db8::1\n",
	       "egress.hosts, names normalised");
	r = parse("egress:\n  hosts: {pkg.test: not-an-address}\n", &c, &err);
	ok(r < 0 && err && strstr(err->msg, "2:21: egress.hosts.pkg.test: expected an IP address"),
	   "egress.hosts with a name for an address: refused (%s)", err ? err->msg : "accepted");
	kiln_error_free(&err);
	is_str(c.egress_hosts, "pkg.test 203.0.113.2\nv6.test 2001:db8::1\n",
	       "... and the previous map is kept");
	kiln_config_free(&c);

	kiln_config_defaults(&c);
	is_int(parse("", &c, &err), 0, "an empty file is fine");
	is_int(parse("# only comments\n", &c, &err), 0, "a file of comments is fine");
	is_str(c.data, "/var/lib/kiln", "and keeps the defaults");
	kiln_config_free(&c);
}

struct broken {
	const char *name, *text, *want;
};

static const struct broken broken[] = {
	{"unknown key", "data: /x\nlisten: :1\nlimit:\n  body: 1G\n",
	 "kilnd.yml:3:1: unknown key 'limit' (expected data, listen, workers, tls, "
	 "allow_insecure_listen, limits, max_attempts, spec_limits, policies, egress, "
	 "builder_id, signing_window, metrics_public or alerts)"},
	{"builder_id not a URI", "builder_id: my builder\n",
	 "kilnd.yml:1:13: builder_id: expected a URI"},
	{"signing_window too long", "signing_window: 8d\n", "kilnd.yml:1:17: signing_window:"},
	{"unknown nested key", "limits:\n  body: 1G\n  bodies: 2G\n",
	 "kilnd.yml:3:3: limits: unknown key 'bodies'"},
	{"wrong type", "workers: [1, 2]\n",
	 "kilnd.yml:1:10: workers: expected a whole number, got a list"},
	{"limits as a string", "limits: big\n",
	 "kilnd.yml:1:9: limits: expected a mapping (key: value), got a string"},
	{"bad size", "limits: {body: huge}\n",
	 "kilnd.yml:1:16: limits.body: expected a size like 512M or 2G, got 'huge'"},
	{"size over the maximum", "limits:\n  log: 2T\n",
	 "kilnd.yml:2:8: limits.log: 2T exceeds the maximum of 1T"},
	{"zero size", "limits: {unpacked: 0}\n",
	 "kilnd.yml:1:20: limits.unpacked: must be greater than zero"},
	{"path too small", "limits: {path: 10}\n",
	 "kilnd.yml:1:16: limits.path: must be at least 64"},
	{"path too large", "limits: {path: 5000}\n",
	 "kilnd.yml:1:16: limits.path: 5000 exceeds the maximum of 4096"},
	{"files zero", "limits: {files: 0}\n", "kilnd.yml:1:17: limits.files: must be at least 1"},
	{"connections zero", "limits: {connections_per_token: 0}\n",
	 "kilnd.yml:1:33: limits.connections_per_token: must be at least 1"},
	{"workers too many", "workers: 100000\n",
	 "kilnd.yml:1:10: workers: 100000 exceeds the maximum of 1024"},
	{"attempts zero", "max_attempts: 0\n", "kilnd.yml:1:15: max_attempts: must be at least 1"},
	{"bool", "allow_insecure_listen: yes\n",
	 "kilnd.yml:1:24: allow_insecure_listen: expected true or false, got 'yes'"},
	{"tls without key", "tls:\n  cert: /c.pem\n",
	 "kilnd.yml:2:3: tls: needs both cert and key"},
	{"tls without cert", "tls: {key: /k.pem}\n", "kilnd.yml:1:6: tls: needs both cert and key"},
	{"tls empty cert", "tls: {cert: \"\", key: /k}\n",
	 "kilnd.yml:1:13: tls.cert: is empty; give the path of a PEM file"},
	{"tls null", "tls:\n", "kilnd.yml:1:1: tls: expected a mapping (key: value), got null"},
	{"relative data", "data: kiln\n",
	 "kilnd.yml:1:7: data: expected an absolute directory path like /var/lib/kiln, got 'kiln'"},
	{"data with ..", "data: /var/../etc\n", "kilnd.yml:1:7: data: expected an absolute"},
	{"data /", "data: /\n", "kilnd.yml:1:7: data: expected an absolute"},
	{"listen without port", "listen: 127.0.0.1\n",
	 "kilnd.yml:1:9: listen: expected host:port, [IPv6]:port or :port"},
	{"listen bare IPv6", "listen: ::1:8420\n",
	 "kilnd.yml:1:9: listen: put IPv6 addresses in brackets, as in [::1]:8420"},
	{"listen bad port", "listen: \"localhost:99999\"\n",
	 "kilnd.yml:1:9: listen: invalid port '99999' (expected 0 to 65535)"},
	{"duplicate key", "workers: 1\nworkers: 2\n",
	 "kilnd.yml:2:1: duplicate key 'workers' (first at 1:1)"},
	{"alias", "data: &d /x\nlisten: *d\n", "kilnd.yml:1:7: anchors (&d) are not allowed"},
	{"alias alone", "listen: *l\n", "kilnd.yml:1:9: aliases (*l) are not allowed"},
	{"two documents", "workers: 1\n---\nworkers: 2\n", "kilnd.yml:2:1: a second YAML document"},
	{"tab", "limits:\n\tbody: 1G\n",
	 "kilnd.yml:2:1: invalid YAML: tab character may not be used as indentation"},
	{"non-UTF-8", "data: /caf\xe9\n", "kilnd.yml:1:11: invalid UTF-8 (byte 0xe9)"},
	{"top-level list", "- data: /x\n",
	 "kilnd.yml:1:1: the configuration must be a mapping of keys"},
	{"spec limit over", "spec_limits: {cpus: 5000}\n",
	 "kilnd.yml:1:21: spec_limits.cpus: 5000 exceeds the maximum of 4096"},
	{"spec limit timeout", "spec_limits:\n  timeout: 400d\n",
	 "kilnd.yml:2:12: spec_limits.timeout: 400d exceeds the maximum of 8760h"},
};

static void test_broken(const struct broken *b)
{
	struct kiln_config c;
	struct kiln_error *err = NULL;
	char *data, *host;
	int r;

	kiln_config_defaults(&c);
	data = c.data;
	host = c.listen_host;
	r = parse(b->text, &c, &err);
	is_int(r, -1, "broken: %s: refused", b->name);
	ok(err != NULL, "broken: %s: an error", b->name);
	if (err != NULL) {
		ok(strncmp(err->msg, b->want, strlen(b->want)) == 0, "broken: %s: \"%s\"", b->name,
		   b->want);
		if (strncmp(err->msg, b->want, strlen(b->want)) != 0)
			printf("#   got '%s'\n", err->msg);
		is_int(err->code, EINVAL, "broken: %s: EINVAL", b->name);
	}
	kiln_error_free(&err);
	/* nothing changed, nothing freed under the caller */
	ok(c.data == data && c.listen_host == host && c.listen_port == 8420 && c.workers == 0 &&
		   c.tls_cert == NULL && c.max_body == 256 * MIB && c.max_attempts == 3,
	   "broken: %s: configuration unchanged", b->name);
	is_str(c.data, "/var/lib/kiln", "broken: %s: data still readable", b->name);
	kiln_config_free(&c);
}

static void test_size_cap(void)
{
	struct kiln_config c;
	struct kiln_error *err = NULL;
	size_t n = 1024 * 1024 + 1;
	char *big = malloc(n);

	if (big == NULL)
		abort();
	memset(big, '#', n);
	kiln_config_defaults(&c);
	is_int(kiln_config_parse("big.yml", big, n, &c, &err), -1, "a file over 1M is refused");
	ok(err && strncmp(err->msg, "big.yml: too large", 18) == 0, "as too large, no position");
	kiln_error_free(&err);
	is_int(kiln_config_parse(NULL, "x: 1", 4, &c, &err), -1, "no file name");
	ok(err && strncmp(err->msg, "config:1:1: unknown key 'x'", 27) == 0, "named 'config'");
	kiln_error_free(&err);
	kiln_config_free(&c);
	free(big);
}

struct listen_case {
	const char *in;
	int ok;
	const char *host;
	unsigned port;
	bool loopback;
};

static const struct listen_case listens[] = {
	{"127.0.0.1:8420", 0, "127.0.0.1", 8420, true},
	{"[::1]:8420", 0, "::1", 8420, true},
	{":8420", 0, "127.0.0.1", 8420, true},
	{"localhost:0", 0, "localhost", 0, true},
	{"LOCALHOST:1", 0, "LOCALHOST", 1, true},
	{"127.1.2.3:65535", 0, "127.1.2.3", 65535, true},
	{"0.0.0.0:8420", 0, "0.0.0.0", 8420, false},
	{"192.168.1.10:443", 0, "192.168.1.10", 443, false},
	{"128.0.0.1:80", 0, "128.0.0.1", 80, false},
	{"[::]:8420", 0, "::", 8420, false},
	{"[::ffff:127.0.0.1]:80", 0, "::ffff:127.0.0.1", 80, true},
	{"[2001:db8::1]:80", 0, "2001:db8::1", 80, false},
	{"build.example.com:8420", 0, "build.example.com", 8420, false},
	{"localhost.evil.com:80", 0, "localhost.evil.com", 80, false},
	{"8420", -1, NULL, 0, false},
	{"", -1, NULL, 0, false},
	{":", -1, NULL, 0, false},
	{"127.0.0.1:", -1, NULL, 0, false},
	{"127.0.0.1:65536", -1, NULL, 0, false},
	{"127.0.0.1:-1", -1, NULL, 0, false},
	{"127.0.0.1:+80", -1, NULL, 0, false},
	{"127.0.0.1:80x", -1, NULL, 0, false},
	{"127.0.0.1: 80", -1, NULL, 0, false},
	{"::1:8420", -1, NULL, 0, false},
	{"[::1]8420", -1, NULL, 0, false},
	{"[::1:8420", -1, NULL, 0, false},
	{"[]:80", -1, NULL, 0, false},
	{"[127.0.0.1]:80", -1, NULL, 0, false},
	{"[fe80::1%eth0]:80", -1, NULL, 0, false},
	{"127.1:80", -1, NULL, 0, false},
	{"2130706433:80", -1, NULL, 0, false},
	{"256.0.0.1:80", -1, NULL, 0, false},
	{"host_name:80", -1, NULL, 0, false},
	{"-bad.example:80", -1, NULL, 0, false},
	{"bad-.example:80", -1, NULL, 0, false},
	{"a..b:80", -1, NULL, 0, false},
	{"trailing.dot.:80", -1, NULL, 0, false},
	{"sp ace:80", -1, NULL, 0, false},
};

static void test_listen(void)
{
	for (size_t i = 0; i < sizeof(listens) / sizeof(listens[0]); i++) {
		const struct listen_case *l = &listens[i];
		struct kiln_config c;
		struct kiln_error *err = NULL;
		int r;

		kiln_config_defaults(&c);
		c.listen_port = 1234;
		r = kiln_config_set_listen(&c, l->in, &err);
		is_int(r, l->ok, "listen '%s': %s", l->in, l->ok == 0 ? "accepted" : "refused");
		if (l->ok == 0) {
			ok(err == NULL, "listen '%s': no error", l->in);
			is_str(c.listen_host, l->host, "listen '%s': host", l->in);
			is_int(c.listen_port, l->port, "listen '%s': port", l->in);
			is_int(kiln_config_listen_is_loopback(&c), l->loopback,
			       "listen '%s': %sloopback", l->in, l->loopback ? "" : "not ");
		} else {
			ok(err != NULL && strncmp(err->msg, "listen '", 8) == 0 &&
				   err->code == EINVAL,
			   "listen '%s': error names it", l->in);
			is_str(c.listen_host, "127.0.0.1", "listen '%s': host unchanged", l->in);
			is_int(c.listen_port, 1234, "listen '%s': port unchanged", l->in);
		}
		kiln_error_free(&err);
		kiln_config_free(&c);
	}

	/* a 300-character host name is refused, hostile bytes are escaped */
	{
		struct kiln_config c;
		struct kiln_error *err = NULL;
		char longhost[320];

		memset(longhost, 'a', 300);
		strcpy(longhost + 300, ":80");
		kiln_config_defaults(&c);
		is_int(kiln_config_set_listen(&c, longhost, &err), -1, "300-char host refused");
		kiln_error_free(&err);
		is_int(kiln_config_set_listen(&c, "\x1b[31m:80", &err), -1, "escape refused");
		ok(err && strchr(err->msg, '\x1b') == NULL, "and not copied into the message");
		kiln_error_free(&err);
		c.listen_host[0] = 'x';
		ok(!kiln_config_listen_is_loopback(&c), "garbage host is not loopback");
		kiln_config_free(&c);
		ok(!kiln_config_listen_is_loopback(&c), "a freed config is not loopback");
	}
}

int main(void)
{
	test_defaults();
	test_full();
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
		test_broken(&broken[i]);
	test_size_cap();
	test_listen();
	return tap_done();
}
