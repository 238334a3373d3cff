/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln.yml: a corpus of valid specs with their normalised JSON compared
 * exactly (and parsed again from that JSON), and a corpus of broken specs,
 * each with the substring its message must hold and the exact line and
 * column it must point at.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/spec.h"
#include "tap.h"

#define DEFAULTS_TAIL                                                                              \
	"\"resources\":{\"memory\":2147483648,\"pids\":1024,\"cpus\":null,\"disk\":4294967296},"   \
	"\"network\":\"none\",\"retry\":false,\"env\":{}}"

struct valid {
	const char *name, *yaml, *json;
};

static const struct valid valid[] = {
	{"minimal", "script: make\n",
	 "{\"script\":\"make\",\"artifacts\":[\"out/\"],\"timeout\":3600," DEFAULTS_TAIL},
	{"everything",
	 "# a comment\n"
	 "script: |\n"
	 "  make -j2\n"
	 "  make check\n"
	 "artifacts: [out/, dist/app.tar]\n"
	 "timeout: 10m\n"
	 "resources: {memory: 1G, pids: 512, cpus: 2, disk: 2G}\n"
	 "network: none\n"
	 "retry: true\n"
	 "env: {CC: gcc, EMPTY: \"\", N: 1, B: false, U: \"h\\u00e9\"}\n",
	 "{\"script\":\"make -j2\\nmake check\\n\",\"artifacts\":[\"out/\",\"dist/app.tar\"],"
	 "\"timeout\":600,\"resources\":{\"memory\":1073741824,\"pids\":512,\"cpus\":2,"
	 "\"disk\":2147483648},\"network\":\"none\",\"retry\":true,"
	 "\"env\":{\"CC\":\"gcc\",\"EMPTY\":\"\",\"N\":\"1\",\"B\":\"false\",\"U\":\"h\xc3\xa9\"}"
	 "}"},
	{"block style everywhere",
	 "---\n"
	 "script: >-\n"
	 "  echo a\n"
	 "  b\n"
	 "artifacts:\n"
	 "  - build/\n"
	 "  - \"logs/test report.txt\"\n"
	 "timeout: 90\n"
	 "resources:\n"
	 "  memory: 512MiB\n"
	 "  cpus: 0.25\n"
	 "env:\n"
	 "  GOFLAGS: -mod=vendor\n"
	 "retry: FALSE\n"
	 "...\n",
	 "{\"script\":\"echo a b\",\"artifacts\":[\"build/\",\"logs/test report.txt\"],"
	 "\"timeout\":90,\"resources\":{\"memory\":536870912,\"pids\":1024,\"cpus\":0.25,"
	 "\"disk\":4294967296},\"network\":\"none\",\"retry\":false,"
	 "\"env\":{\"GOFLAGS\":\"-mod=vendor\"}}"},
	{"flow mapping at the top, quoted keys",
	 "{\"script\": 'make', 'timeout': \"1d\", resources: {cpus: \"1.5\", pids: '7'}}",
	 "{\"script\":\"make\",\"artifacts\":[\"out/\"],\"timeout\":86400,"
	 "\"resources\":{\"memory\":2147483648,\"pids\":7,\"cpus\":1.5,\"disk\":4294967296},"
	 "\"network\":\"none\",\"retry\":false,\"env\":{}}"},
	{"the maxima themselves",
	 "script: x\ntimeout: 24h\nresources: {memory: 64G, disk: 256G, pids: 65536, cpus: 64}\n",
	 "{\"script\":\"x\",\"artifacts\":[\"out/\"],\"timeout\":86400,"
	 "\"resources\":{\"memory\":68719476736,\"pids\":65536,\"cpus\":64,"
	 "\"disk\":274877906944},\"network\":\"none\",\"retry\":false,\"env\":{}}"},
	{"no artifacts, cpus null", "script: x\nartifacts: []\nresources: {cpus: null}\n",
	 "{\"script\":\"x\",\"artifacts\":[],\"timeout\":3600," DEFAULTS_TAIL},
	{"CRLF and a BOM", "\xef\xbb\xbfscript: x\r\ntimeout: 30s\r\n",
	 "{\"script\":\"x\",\"artifacts\":[\"out/\"],\"timeout\":30," DEFAULTS_TAIL},
	{"a spec in JSON",
	 "{\"script\": \"make\\n\", \"artifacts\": [\"out/\"], \"timeout\": 3600, \"resources\": "
	 "{\"memory\": 2147483648, \"pids\": 1024, \"cpus\": 0.001, \"disk\": 4294967296}, "
	 "\"network\": \"none\", \"retry\": false, \"env\": {\"A\": \"b c\"}}",
	 "{\"script\":\"make\\n\",\"artifacts\":[\"out/\"],\"timeout\":3600,"
	 "\"resources\":{\"memory\":2147483648,\"pids\":1024,\"cpus\":0.001,"
	 "\"disk\":4294967296},\"network\":\"none\",\"retry\":false,\"env\":{\"A\":\"b c\"}}"},
	{"an empty block scalar at the very end is \"\"", "script: x\nenv:\n  A: >+\n",
	 "{\"script\":\"x\",\"artifacts\":[\"out/\"],\"timeout\":3600,"
	 "\"resources\":{\"memory\":2147483648,\"pids\":1024,\"cpus\":null,"
	 "\"disk\":4294967296},\"network\":\"none\",\"retry\":false,\"env\":{\"A\":\"\"}}"},
	{"script is text even when it looks like a number", "script: 42\n",
	 "{\"script\":\"42\",\"artifacts\":[\"out/\"],\"timeout\":3600," DEFAULTS_TAIL},
};

/* Text of quoted and block scalars, decoded by spec.c itself (libfyaml
 * 0.7.12 gets these wrong, see spec.c); the expected values are PyYAML's
 * (with \ud83d\ude00 joined as JSON does). */
struct scalar {
	const char *name, *yaml, *want;
};

static const struct scalar scalars[] = {
	{"consecutive '' escapes", "script: 'x''''y'\n", "x''y"},
	{"'' escapes", "script: 'it''s ''quoted'''\n", "it's 'quoted'"},
	{"single-quoted folding", "script: 'a\n  b\n\n  c  \n  '\n", "a b\nc "},
	{"escaped line breaks", "script: \"a\\\n  b \\\n  c\"\n", "ab c"},
	{"double-quoted escapes",
	 "script: \"tab\\there\\nnew \\\"q\\\" \\\\ \\x41\\u00e9\\U0001F600 \\ud83d\\ude00\\/\"\n",
	 "tab\there\nnew \"q\" \\ A\xc3"
	 "\xa9"
	 "\xf0"
	 "\x9f"
	 "\x98"
	 "\x80"
	 " \xf0"
	 "\x9f"
	 "\x98"
	 "\x80"
	 "/"},
	{"double-quoted folding", "script: \"line one\n\n  line three\"\n", "line one\nline three"},
	{"folded with a more-indented line",
	 "script: >\n  folded\n  text\n\n  para\n    more indented\n  back\n",
	 "folded text\npara\n  more indented\nback\n"},
	{"keep chomping", "script: |+\n  keep\n\n\nretry: true\n", "keep\n\n\n"},
	{"strip chomping", "script: |-\n  strip\n\n", "strip"},
	{"leading empty line and a tab", "script: |\n\n  leading empty\n  \ttab\n",
	 "\nleading empty\n\ttab\n"},
	{"folded, strip, more-indented", "script: >-\n  a\n   b\n  c\n", "a\n b\nc"},
	{"CRLF block", "script: |\r\n  crlf\r\n  lines\r\n", "crlf\nlines\n"},
	{"comments around a block",
	 "script: |  # a comment\n  make\n    -j2\n# trailing comment\nretry: false\n",
	 "make\n  -j2\n"},
	{"folded with leading empty lines", "script: >\n\n\n  x\n\n", "\n\nx\n"},
	{"plain multi-line", "script: plain\n  multi line\n\n  scalar\n",
	 "plain multi line\nscalar"},
	{"block at the very end", "script: |\n  make", "make"},
	{"nested block in a list", /* artifacts[0] */
	 "script: x\nartifacts:\n- >-\n  out/\n  a\n", "out/ a"},
};

static void test_scalar(const struct scalar *c)
{
	struct kiln_spec_limits l;
	struct kiln_spec *s = NULL;
	struct kiln_spec_error e;
	bool artifact = strstr(c->yaml, "artifacts:") != NULL;

	kiln_spec_limits_default(&l);
	if (kiln_spec_parse(c->yaml, strlen(c->yaml), &l, &s, &e) != 0) {
		ok(0, "scalar: %s: parses (%d:%d: %s)", c->name, e.line, e.column, e.message);
		return;
	}
	is_str(artifact ? s->artifacts[0] : s->script, c->want, "scalar: %s", c->name);
	kiln_spec_free(s);
}

struct broken {
	const char *name, *yaml;
	size_t len; /* 0: strlen(yaml) */
	const char *want;
	int line, column;
};

static const struct broken broken[] = {
	{"unknown key", "script: x\nresources:\n  memory: 1G\n  gpu: 1\n", 0,
	 "resources: unknown key 'gpu' (expected memory, pids, cpus or disk)", 4, 3},
	{"unknown top key", "script: x\nscirpt: y\n", 0, "unknown key 'scirpt'", 2, 1},
	{"wrong type: list for a string", "script:\n  - make\n", 0,
	 "script: expected a string, got a list", 2, 3},
	{"wrong type: string for a mapping", "script: x\nresources: big\n", 0,
	 "resources: expected a mapping (key: value), got a string", 2, 12},
	{"wrong type: string for a list", "script: x\nartifacts: out/\n", 0,
	 "artifacts: expected a list of paths like [out/], got a string", 2, 12},
	{"wrong type: mapping in a list", "script: x\nartifacts: [out/, {a: b}]\n", 0,
	 "artifacts[1]: expected a string, got a mapping", 2, 19},
	{"bad size", "script: x\nresources: {memory: lots}\n", 0,
	 "resources.memory: expected a size like 512M or 2G, got 'lots'", 2, 21},
	{"over the limit", "script: x\nresources:\n  memory: 128G\n", 0,
	 "resources.memory: 128G exceeds the maximum of 64G", 3, 11},
	{"disk over the limit", "script: x\nresources: {disk: 1T}\n", 0,
	 "resources.disk: 1T exceeds the maximum of 256G", 2, 19},
	{"pids over the limit", "script: x\nresources: {pids: 65537}\n", 0,
	 "resources.pids: 65537 exceeds the maximum of 65536", 2, 19},
	{"cpus over the limit", "script: x\nresources: {cpus: 64.5}\n", 0,
	 "resources.cpus: 64.5 exceeds the maximum of 64", 2, 19},
	{"size overflow", "script: x\nresources: {memory: 99999999999999999999999G}\n", 0,
	 "exceeds the maximum of 64G", 2, 21},
	{"timeout over the limit", "script: x\ntimeout: 25h\n", 0,
	 "timeout: 25h exceeds the maximum of 24h", 2, 10},
	{"bad duration", "script: x\ntimeout: soon\n", 0,
	 "timeout: expected a duration like 90, 30s, 10m or 2h, got 'soon'", 2, 10},
	{"zero timeout", "script: x\ntimeout: 0s\n", 0, "timeout: must be greater than zero", 2,
	 10},
	{"zero memory", "script: x\nresources: {memory: 0}\n", 0,
	 "resources.memory: must be greater than zero", 2, 21},
	{"zero pids", "script: x\nresources: {pids: 0}\n", 0, "resources.pids: must be at least 1",
	 2, 19},
	{"cpus with 4 decimals", "script: x\nresources: {cpus: 0.0001}\n", 0,
	 "resources.cpus: expected a CPU count like 2 or 0.5", 2, 19},
	{"negative pids", "script: x\nresources: {pids: -1}\n", 0,
	 "resources.pids: expected a whole number, got '-1'", 2, 19},
	{"alias", "script: *a\n", 0, "aliases (*a) are not allowed", 1, 9},
	{"anchor", "script: &a make\ntimeout: 1h\n", 0, "anchors (&a) are not allowed", 1, 9},
	{"alias bomb",
	 "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	 "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nscript: *c\n",
	 0, "anchors (&a) are not allowed", 1, 4},
	{"tag", "script: !!binary aGVsbG8=\n", 0, "tags (tag:yaml.org,2002:binary)", 1, 9},
	{"duplicate key", "script: a\ntimeout: 1h\nscript: b\n", 0,
	 "duplicate key 'script' (first at 1:1)", 3, 1},
	{"duplicate key, quoted", "script: a\n\"script\": b\n", 0, "duplicate key 'script'", 2, 1},
	{"duplicate nested key", "script: a\nresources: {pids: 1, pids: 2}\n", 0,
	 "resources: duplicate key 'pids' (first at 2:13)", 2, 22},
	{"two documents", "script: a\n---\nscript: b\n", 0, "a second YAML document", 2, 1},
	{"two documents, second empty", "script: a\n---\n", 0, "a second YAML document", 2, 1},
	{"tab indentation", "script: x\nresources:\n\tmemory: 1G\n", 0,
	 "invalid YAML: tab character may not be used as indentation", 3, 1},
	{"non-UTF-8 bytes", "script: x\nenv:\n  A: caf\xe9\n", 0, "invalid UTF-8 (byte 0xe9)", 3,
	 9},
	{"overlong UTF-8", "script: \xc0\xaf\n", 0, "invalid UTF-8", 1, 9},
	{"UTF-8 surrogate", "script: \xed\xa0\x80\n", 0, "invalid UTF-8", 1, 9},
	{"NUL byte", "script: a\0b\n", 12, "NUL byte", 1, 10},
	{"control character", "script: a\x1b[31mb\n", 0, "control character U+001B is not allowed",
	 1, 10},
	{"C1 control character", "script: \xc2\x9b\n", 0, "control character U+009B", 1, 9},
	{"C1 control through an escape", "script: x\nenv: {A: \"x\\u0086y\"}\n", 0,
	 "env.A: contains the non-printable character U+0086", 2, 10},
	{"DEL through an escape", "script: \"\\x7f\"\n", 0,
	 "script: contains the non-printable character U+007F", 1, 9},
	{"NUL through an escape", "script: \"a\\0b\"\n", 0, "(with a NUL character)", 1, 9},
	{"empty", "", 0, "the spec is empty", 0, 0},
	{"only a comment", "# nothing\n", 0, "the spec is empty", 0, 0},
	{"only a document marker", "---\n", 0, "the spec is empty", 0, 0},
	{"top-level list", "- script: x\n", 0,
	 "the spec must be a mapping of keys (script:, timeout:, ...), not a list", 1, 1},
	{"top-level string", "make all\n", 0, "the spec must be a mapping", 1, 1},
	{"no script", "timeout: 1h\nretry: true\n", 0, "script: missing", 1, 1},
	{"empty script", "script:\ntimeout: 1h\n", 0, "script: is empty", 1, 1},
	{"empty block script at the end", "timeout: 1h\nscript: |\n", 0, "script: is empty", 2, 9},
	{"block scalar points at its indicator", "script: x\nresources: # why not\n  |\n  memory\n",
	 0, "resources: expected a mapping (key: value), got a string", 3, 3},
	{"block scalar in a list", "script: x\nartifacts:\n- b\n- >-\n  a/../b\n", 0,
	 "artifacts[1]: 'a/../b' is not a relative path", 4, 3},
	{"indentation indicator", "script: |2\n   make\n", 0,
	 "block scalar indentation indicators (|2) are not supported", 1, 9},
	{"tab in a block scalar's indentation", "script: |\n    make\n  \t\nretry: true\n", 0,
	 "a tab in the indentation of a block scalar", 1, 9},
	{"blank line indented more than the text", "script: |\n      \n    make\n", 0,
	 "invalid YAML: block scalar with wrongly indented line", 2, 1},
	{"%YAML directive", "%YAML 1.1\n---\nscript: x\n", 0, "YAML directives (%YAML, %TAG)", 1,
	 1},
	{"%TAG directive", "# tags\n%TAG !e! tag:example.com,2000:\n---\nscript: x\n", 0,
	 "YAML directives", 2, 1},
	{"blank script", "script: \"  \\n \"\n", 0, "script: is empty", 1, 9},
	{"network", "script: x\nnetwork: host\n", 0,
	 "network: expected none, or egress (through kilnd's proxy, to what the project's "
	 "policy allows)",
	 2, 10},
	{"network as a list", "script: x\nnetwork: [none]\n", 0,
	 "network: expected none, or egress", 2, 10},
	{"retry yes", "script: x\nretry: yes\n", 0, "retry: expected true or false, got 'yes'", 2,
	 8},
	{"retry quoted", "script: x\nretry: \"true\"\n", 0,
	 "retry: expected true or false, got the string 'true'", 2, 8},
	{"env PATH", "script: x\nenv:\n  PATH: /tmp\n", 0,
	 "env.PATH: PATH is set by kiln and cannot be overridden", 3, 3},
	{"env HOME", "script: x\nenv: {A: b, HOME: /}\n", 0, "env.HOME: HOME is set by kiln", 2,
	 13},
	{"env bad name", "script: x\nenv: {\"A-B\": c}\n", 0,
	 "env: 'A-B' is not a valid variable name", 2, 7},
	{"env name with a digit first", "script: x\nenv: {9A: c}\n", 0,
	 "env: '9A' is not a valid variable name", 2, 7},
	{"env name with =", "script: x\nenv: {\"A=B\": c}\n", 0, "not a valid variable name", 2, 7},
	{"env null value", "script: x\nenv:\n  A:\n", 0,
	 "env.A: expected a string, got null (write \"\" for an empty value)", 3, 3},
	{"env list value", "script: x\nenv: {A: [1]}\n", 0, "env.A: expected a string, got a list",
	 2, 10},
	{"env duplicate", "script: x\nenv: {A: 1, A: 2}\n", 0,
	 "env: duplicate key 'A' (first at 2:7)", 2, 13},
	{"env as a list", "script: x\nenv: [A=1]\n", 0,
	 "env: expected a mapping of NAME: value, got a list", 2, 6},
	{"artifact with ..", "script: x\nartifacts: [out/../../etc]\n", 0,
	 "artifacts[0]: 'out/../../etc' is not a relative path under /workspace", 2, 13},
	{"absolute artifact", "script: x\nartifacts:\n  - out/\n  - /etc/passwd\n", 0,
	 "artifacts[1]: '/etc/passwd' is not a relative path", 4, 5},
	{"artifact .", "script: x\nartifacts: [.]\n", 0, "artifacts[0]: '.' is not a relative path",
	 2, 13},
	{"artifact //", "script: x\nartifacts: [a//b]\n", 0, "is not a relative path", 2, 13},
	{"artifact empty", "script: x\nartifacts: [\"\"]\n", 0, "is not a relative path", 2, 13},
	{"artifact /", "script: x\nartifacts: [/]\n", 0, "is not a relative path", 2, 13},
	{"artifact with a newline", "script: x\nartifacts: [\"a\\nb\"]\n", 0,
	 "artifacts[0]: 'a\\nb' is not a relative path", 2, 13},
	{"artifact duplicate", "script: x\nartifacts: [out, out/]\n", 0,
	 "artifacts[1]: duplicate of artifacts[0]", 2, 18},
	{"complex key", "script: x\n? [a, b]\n: c\n", 0, "keys must be strings, not a list", 2, 3},
	{"unterminated flow", "script: x\nresources: {memory: 1G\n", 0, "invalid YAML", 3, 1},
	{"unterminated quote", "script: \"make\n", 0, "invalid YAML", 1, 10},
	{"bad escape", "script: \"\\ud800\"\n", 0, "invalid YAML", 1, 10},
	{"hostile key is escaped", "script: x\n\"\\e[2J\\x07\": 1\n", 0,
	 "unknown key '\\x1b[2J\\x07'", 2, 1},
};

/* The spec as YAML (JSON is YAML) through kiln_spec_to_json: what the
 * fuzzer also checks. */
static char *json_of(const struct kiln_spec *s, size_t flags)
{
	json_t *j = kiln_spec_to_json(s);
	char *out;

	if (j == NULL)
		return NULL;
	out = json_dumps(j, flags | JSON_REAL_PRECISION(15));
	json_decref(j);
	return out;
}

static void test_valid(const struct valid *v)
{
	struct kiln_spec_limits l;
	struct kiln_spec *s = NULL, *s2 = NULL;
	struct kiln_spec_error e;
	char *json = NULL, *yaml = NULL, *json2 = NULL;
	int r;

	kiln_spec_limits_default(&l);
	memset(&e, 0x5a, sizeof(e));
	r = kiln_spec_parse(v->yaml, strlen(v->yaml), &l, &s, &e);
	is_int(r, 0, "valid: %s: parses", v->name);
	if (r != 0) {
		printf("#   %d:%d: %s\n", e.line, e.column, e.message);
		return;
	}
	json = json_of(s, JSON_COMPACT);
	is_str(json, v->json, "valid: %s: normalised JSON", v->name);

	yaml = json_of(s, 0);
	r = yaml ? kiln_spec_parse(yaml, strlen(yaml), &l, &s2, &e) : -1;
	is_int(r, 0, "valid: %s: its JSON parses as a spec", v->name);
	if (r == 0) {
		json2 = json_of(s2, JSON_COMPACT);
		is_str(json2, json, "valid: %s: and gives the same spec", v->name);
	}
	free(json);
	free(json2);
	free(yaml);
	kiln_spec_free(s);
	kiln_spec_free(s2);
}

static void test_broken(const char *name, const char *yaml, size_t len, const char *want, int line,
			int column)
{
	struct kiln_spec_limits l;
	struct kiln_spec *s = (struct kiln_spec *)&l; /* must stay untouched */
	struct kiln_spec_error e;
	int r;

	kiln_spec_limits_default(&l);
	memset(&e, 0x5a, sizeof(e));
	r = kiln_spec_parse(yaml, len, &l, &s, &e);
	is_int(r, -1, "broken: %s: refused", name);
	ok(s == (struct kiln_spec *)&l, "broken: %s: *out untouched", name);
	if (r == 0 && s != (struct kiln_spec *)&l)
		kiln_spec_free(s);
	ok(memchr(e.message, '\0', sizeof(e.message)) != NULL && e.message[0] != '\0',
	   "broken: %s: a message", name);
	e.message[sizeof(e.message) - 1] = '\0';
	ok(strstr(e.message, want) != NULL, "broken: %s: message has \"%s\"", name, want);
	if (strstr(e.message, want) == NULL)
		printf("#   got '%s'\n", e.message);
	is_int(e.line, line, "broken: %s: line", name);
	is_int(e.column, column, "broken: %s: column", name);
	for (const char *p = e.message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			ok(0, "broken: %s: no control character in the message", name);
			break;
		}
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1), *p = s;

	if (s == NULL)
		abort();
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

static void test_generated(void)
{
	char *s;

	/* 70 KiB: refused before libfyaml sees it */
	s = repeat("script: |\n", "  echo 0123456789012345678901234567890123456789\n", 1500, "");
	ok(strlen(s) > 70 * 1024, "a spec of %zu bytes", strlen(s));
	test_broken("70 KiB spec", s, strlen(s), "too large: ", 0, 0);
	free(s);

	/* just under the cap is fine */
	{
		struct kiln_spec_limits l;
		struct kiln_spec *sp = NULL;
		struct kiln_spec_error e;

		kiln_spec_limits_default(&l);
		s = repeat("script: |\n", "  echo 0123456789012345678901234567890123456789\n", 1300,
			   "");
		is_int(kiln_spec_parse(s, strlen(s), &l, &sp, &e), 0, "a 62 KiB spec parses");
		ok(sp != NULL && strlen(sp->script) == 1300 * 46, "with all of its script");
		kiln_spec_free(sp);
		free(s);
	}

	/* deeply nested junk, flow and block */
	s = repeat("script: x\njunk: ", "[", 30000, "");
	test_broken("deeply nested flow junk", s, strlen(s), "nested deeper than 16 levels", 2, 22);
	free(s);
	s = repeat("script: x\njunk: ", "{a: ", 10000, "1");
	test_broken("deeply nested flow mappings", s, strlen(s), "nested deeper than 16 levels", 2,
		    67);
	free(s);
	s = repeat("script: x\njunk:\n", "- ", 20000, "x\n");
	test_broken("deeply nested block lists", s, strlen(s), "nested deeper than 16 levels", 3,
		    31);
	free(s);
	{
		char buf[4096];
		size_t o = 0;

		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "script: x\n");
		for (int i = 0; i < 30; i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%*sk:\n", i, "");
		snprintf(buf + o, sizeof(buf) - o, "%*sv\n", 30, "");
		test_broken("deeply nested block mappings", buf, strlen(buf),
			    "nested deeper than 16 levels", 18, 17);
	}

	/* libfyaml 0.7.12 leaks ~64 bytes per consecutive '' escape and gets
	 * the text wrong: spec.c decodes it itself (LSan watches the leak) */
	s = repeat("script: 'x", "''", 20000, "'\n");
	{
		struct kiln_spec_limits l;
		struct kiln_spec *sp = NULL;
		struct kiln_spec_error e;
		char *want = repeat("x", "'", 20000, "");

		kiln_spec_limits_default(&l);
		is_int(kiln_spec_parse(s, strlen(s), &l, &sp, &e), 0, "20000 '' escapes parse");
		is_str(sp ? sp->script : NULL, want, "into 20000 quotes");
		kiln_spec_free(sp);
		free(want);
	}
	free(s);

	/* 65 artifacts, 257 env variables */
	s = repeat("script: x\nartifacts: [", "a, ", 64, "b]\n");
	test_broken("65 artifacts", s, strlen(s), "artifacts: more than 64 entries", 2, 205);
	free(s);
	{
		char *big = malloc(257 * 16 + 64), *p = big;

		p += sprintf(p, "script: x\nenv:\n");
		for (int i = 0; i < 257; i++)
			p += sprintf(p, "  V%d: x\n", i);
		test_broken("257 env variables", big, strlen(big), "env: more than 256 variables",
			    259, 3);
		free(big);
	}
}

static int parse_str(const char *yaml, const struct kiln_spec_limits *l, struct kiln_spec **s,
		     struct kiln_spec_error *e)
{
	return kiln_spec_parse(yaml, strlen(yaml), l, s, e);
}

static void test_limits(void)
{
	struct kiln_spec_limits l;
	struct kiln_spec *s = NULL;
	struct kiln_spec_error e;
	char *json;

	kiln_spec_limits_default(&l);
	is_int(l.max_timeout, 24 * 3600, "default max timeout 24h");
	is_int(l.max_memory, 64ULL << 30, "default max memory 64G");
	is_int(l.max_disk, 256ULL << 30, "default max disk 256G");
	is_int(l.max_pids, 65536, "default max pids 65536");
	is_int(l.max_cpus_milli, 64000, "default max cpus 64");

	/* the message names the key, the value and the maximum */
	parse_str("script: x\nresources:\n  memory: 128G\n", &l, &s, &e);
	is_str(e.message, "resources.memory: 128G exceeds the maximum of 64G", "exact message");

	/* tighter limits lower the defaults instead of refusing every spec */
	l.max_timeout = 600;
	l.max_memory = 1ULL << 30;
	l.max_disk = 512ULL << 20;
	l.max_pids = 100;
	l.max_cpus_milli = 500;
	is_int(parse_str("script: x\n", &l, &s, &e), 0, "tight limits: parses");
	json = json_of(s, JSON_COMPACT);
	is_str(json,
	       "{\"script\":\"x\",\"artifacts\":[\"out/"
	       "\"],\"timeout\":600,\"resources\":{\"memory\":"
	       "1073741824,\"pids\":100,\"cpus\":null,\"disk\":536870912},\"network\":\"none\","
	       "\"retry\":false,\"env\":{}}",
	       "tight limits: defaults lowered to the limits");
	free(json);
	kiln_spec_free(s);
	s = NULL;
	parse_str("script: x\nresources: {cpus: 1}\n", &l, &s, &e);
	is_str(e.message, "resources.cpus: 1 exceeds the maximum of 0.5", "cpus maximum printed");
	parse_str("script: x\ntimeout: 11m\n", &l, &s, &e);
	is_str(e.message, "timeout: 11m exceeds the maximum of 10m", "timeout maximum printed");
	parse_str("script: x\nresources: {disk: 1G}\n", &l, &s, &e);
	is_str(e.message, "resources.disk: 1G exceeds the maximum of 512M", "size maximum printed");

	/* limits beyond INT64_MAX do not let values past it through */
	l.max_memory = UINT64_MAX;
	is_int(parse_str("script: x\nresources: {memory: 9223372036854775808}\n", &l, &s, &e), -1,
	       "memory above INT64_MAX refused even with unbounded limits");
	ok(strstr(e.message, "exceeds the maximum") != NULL, "as over the maximum");

	l.max_pids = 0;
	is_int(parse_str("script: x\n", &l, &s, &e), -1, "zero limits refused");
	is_int(parse_str("script: x\n", NULL, &s, &e), -1, "no limits refused");
	ok(s == NULL, "nothing returned");
}

static void test_struct(void)
{
	static const char yaml[] = "script: make\n"
				   "artifacts: [out/, b]\n"
				   "timeout: 2h\n"
				   "resources: {memory: 3G, pids: 9, cpus: 1.25, disk: 5G}\n"
				   "retry: true\n"
				   "env: {A: '1', B_2: two words}\n";
	struct kiln_spec_limits l;
	struct kiln_spec *s = NULL;
	struct kiln_spec_error e;

	kiln_spec_limits_default(&l);
	if (kiln_spec_parse(yaml, sizeof(yaml) - 1, &l, &s, &e) != 0) {
		ok(0, "struct: parses (%d:%d: %s)", e.line, e.column, e.message);
		return;
	}
	is_str(s->script, "make", "struct: script");
	is_int(s->nartifacts, 2, "struct: two artifacts");
	is_str(s->artifacts[0], "out/", "struct: artifact as written");
	is_str(s->artifacts[1], "b", "struct: second artifact");
	is_int(s->timeout, 7200, "struct: timeout in seconds");
	is_int(s->memory, 3ULL << 30, "struct: memory in bytes");
	is_int(s->disk, 5ULL << 30, "struct: disk in bytes");
	is_int(s->pids, 9, "struct: pids");
	is_int(s->cpus_milli, 1250, "struct: cpus in thousandths");
	is_str(s->network, "none", "struct: network");
	ok(s->retry, "struct: retry");
	is_int(s->nenv, 2, "struct: two env entries");
	is_str(s->env[0], "A=1", "struct: env as NAME=VALUE");
	is_str(s->env[1], "B_2=two words", "struct: second env entry");
	kiln_spec_free(s);
	kiln_spec_free(NULL);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		test_valid(&valid[i]);
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
		test_scalar(&scalars[i]);
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		const struct broken *b = &broken[i];

		test_broken(b->name, b->yaml, b->len ? b->len : strlen(b->yaml), b->want, b->line,
			    b->column);
	}
	test_generated();
	test_limits();
	test_struct();
	return tap_done();
}
