/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policies: the corpus of broken files under tests/policy/bad (each names
 * its expected "LINE:COL: message" in a first-line "# expect:" comment), a
 * good file and its digest, whole-directory loading (all or nothing), the
 * current set swapped while a reader holds the old one, and a spec checked
 * against a policy (messages naming setting, value asked and maximum).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "server/policy.h"
#include "server/spec.h"
#include "store/cas.h"
#include "tap.h"

#ifndef KILN_POLICY_CORPUS
#error "KILN_POLICY_CORPUS must name tests/policy"
#endif

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void test_corpus(void)
{
	char dir[4096], path[4600];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/bad", KILN_POLICY_CORPUS);
	d = opendir(dir);
	ok(d != NULL, "open the corpus %s", dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct kiln_spec_error e;
		struct kiln_policy *p = NULL;
		char want[512], got[700], *text, *nl;
		size_t len = 0;

		if (strstr(de->d_name, ".yml") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		text = slurp(path, &len);
		if (text == NULL || strncmp(text, "# expect: ", 10) != 0) {
			ok(0, "%s: has an '# expect:' first line", de->d_name);
			free(text);
			continue;
		}
		nl = strchr(text, '\n');
		snprintf(want, sizeof(want), "%.*s", (int)(nl ? nl - text - 10 : 0), text + 10);
		is_int(kiln_policy_parse("demo", de->d_name, text, len, NULL, &p, &e), -1,
		       "%s: refused", de->d_name);
		snprintf(got, sizeof(got), "%d:%d: %s", e.line, e.column, e.message);
		ok(strncmp(got, want, strlen(want)) == 0, "%s: '%s' starts with '%s'", de->d_name,
		   got, want);
		kiln_policy_free(p);
		free(text);
		n++;
	}
	closedir(d);
	ok(n >= 15, "the corpus has %d broken policies", n);
}

static void test_good(void)
{
	char path[4200], hex[KILN_SHA256_HEX], want[80];
	struct kiln_spec_error e;
	struct kiln_policy *p = NULL;
	size_t len = 0;
	char *text;

	snprintf(path, sizeof(path), "%s/good/demo.yml", KILN_POLICY_CORPUS);
	text = slurp(path, &len);
	ok(text != NULL, "read good/demo.yml");
	if (text == NULL)
		return;
	is_int(kiln_policy_parse("demo", "demo.yml", text, len, NULL, &p, &e), 0,
	       "good/demo.yml parses (%s)", e.message);
	if (p == NULL) {
		free(text);
		return;
	}
	kiln_sha256_buf(text, len, hex);
	snprintf(want, sizeof(want), "sha256:%s", hex);
	is_str(p->digest, want, "digest = sha256 of the file's bytes");
	is_int(p->max.memory, 2ULL << 30, "max memory 2G");
	is_int(p->def.memory, 1ULL << 30, "default memory 1G");
	is_int(p->max.timeout, 1800, "max timeout 30m");
	is_int(p->def.cpus_milli, 1000, "default cpus 1");
	is_int(p->concurrency, 2, "concurrency 2");
	is_int(p->net_mode, KILN_NET_ALLOWLIST, "network allowlist");
	is_int(p->net_enforce, KILN_NET_AUDIT, "enforcement audit");
	is_int(p->nnet_allow, 2, "two allowed destinations");
	ok(kiln_policy_secret(p, "DEPLOY_TOKEN") != NULL, "DEPLOY_TOKEN granted");
	ok(kiln_policy_secret(p, "OTHER") == NULL, "OTHER not granted");
	is_int(p->nsigning_keys, 1, "one signing key");
	kiln_policy_free(p);
	free(text);
}

static struct kiln_spec *spec(const char *text)
{
	struct kiln_spec_limits l;
	struct kiln_spec_error e;
	struct kiln_spec *s = NULL;

	kiln_spec_limits_default(&l);
	if (kiln_spec_parse(text, strlen(text), &l, &s, &e) < 0) {
		printf("# spec: %s\n", e.message);
		return NULL;
	}
	return s;
}

static void test_apply(void)
{
	static const char pol[] =
		"limits:\n"
		"  max: {memory: 2G, pids: 1024, cpus: 2, disk: 4G, timeout: 30m}\n"
		"  default: {memory: 1G, pids: 512, cpus: 1, disk: 2G, timeout: 10m}\n"
		"secrets:\n"
		"  DEPLOY_TOKEN: {env: false}\n"
		"  SIGNED_ONLY: {require_signed: true}\n"
		"signing:\n"
		"  keys: [RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3]\n";
	struct kiln_spec_error e;
	struct kiln_policy *p = NULL, *g = NULL;
	struct kiln_spec *s;
	char msg[512];

	is_int(kiln_policy_parse("demo", "demo.yml", pol, strlen(pol), NULL, &p, &e), 0,
	       "policy parses (%s)", e.message);
	if (p == NULL)
		return;
	s = spec("script: x\nresources: {memory: 4G}\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), -1, "4G refused");
	is_str(msg, "resources.memory: 4G asked, policy allows at most 2G", "message");
	kiln_spec_free(s);

	s = spec("script: x\ntimeout: 1h\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), -1, "timeout 1h refused");
	is_str(msg, "timeout: 3600s asked, policy allows at most 1800s", "message");
	kiln_spec_free(s);

	s = spec("script: x\nresources: {cpus: 3}\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), -1, "cpus 3 refused");
	is_str(msg, "resources.cpus: 3 asked, policy allows at most 2", "message");
	kiln_spec_free(s);

	s = spec("script: x\nresources: {pids: 2000}\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), -1, "pids refused");
	is_str(msg, "resources.pids: 2000 asked, policy allows at most 1024", "message");
	kiln_spec_free(s);

	s = spec("script: x\nresources: {memory: 1536M}\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), 0, "1536M allowed");
	is_int(s->memory, 1536ULL << 20, "memory as asked");
	is_int(s->pids, 512, "pids: the policy's default");
	is_int(s->timeout, 600, "timeout: the policy's default");
	is_int(s->cpus_milli, 1000, "cpus: the policy's default");
	is_int(s->disk, 2ULL << 30, "disk: the policy's default");
	is_str(s->image, "host", "image: the policy's first");
	kiln_spec_free(s);

	s = spec("script: x\nsecrets: [DEPLOY_TOKEN]\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), 0, "granted secret allowed");
	kiln_spec_free(s);
	s = spec("script: x\nsecrets: [NOPE]\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), -1, "ungranted secret refused");
	ok(strstr(msg, "NOPE is not granted") != NULL, "message: %s", msg);
	kiln_spec_free(s);
	s = spec("script: x\nsecrets: [SIGNED_ONLY]\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), -1,
	       "require_signed secret refused to an unsigned submission");
	kiln_spec_free(s);
	s = spec("script: x\nsecrets: [SIGNED_ONLY]\n");
	is_int(kiln_policy_apply(p, s, true, msg, sizeof(msg)), 0, "... and given to a signed one");
	kiln_spec_free(s);
	s = spec("script: x\nimage: debian\n");
	is_int(kiln_policy_apply(p, s, false, msg, sizeof(msg)), -1, "unknown image refused");
	kiln_spec_free(s);
	kiln_policy_free(p);

	is_int(kiln_policy_parse("g", "g.yml", "backend: gvisor\n", 16, NULL, &g, &e), 0,
	       "gvisor is a valid policy");
	s = spec("script: x\n");
	is_int(kiln_policy_apply(g, s, false, msg, sizeof(msg)), -1, "but its jobs are refused");
	ok(strstr(msg, "gvisor") != NULL, "naming gvisor: %s", msg);
	kiln_spec_free(s);
	kiln_policy_free(g);

	g = kiln_policy_builtin(NULL);
	ok(g != NULL && g->builtin, "built-in policy");
	s = spec("script: x\n");
	is_int(kiln_policy_apply(g, s, false, msg, sizeof(msg)), 0, "built-in allows a plain job");
	is_int(s->memory, 2ULL << 30, "built-in default memory 2G (as before policies)");
	is_int(s->timeout, 3600, "built-in default timeout 1h");
	kiln_spec_free(s);
	s = spec("script: x\nsecrets: [A_SECRET]\n");
	is_int(kiln_policy_apply(g, s, false, msg, sizeof(msg)), -1, "built-in grants no secret");
	kiln_spec_free(s);
	kiln_policy_free(g);
}

static void report(void *ctx, const char *file, int line, int col, const char *msg)
{
	(*(int *)ctx)++;
	printf("# %s:%d:%d: %s\n", file, line, col, msg);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_sets(void)
{
	char tmpl[] = "/tmp/kiln-test-policy.XXXXXX", *dir = mkdtemp(tmpl);
	struct kiln_policy_set *a = NULL, *b = NULL, *cur;
	struct kiln_error *err = NULL;
	int problems = 0;

	ok(dir != NULL, "temporary directory");
	if (dir == NULL)
		return;
	put(dir, "web.yml", "concurrency: 1\n");
	put(dir, "README.md", "not a policy\n");
	put(dir, ".hidden.yml", "garbage: [\n");
	is_int(kiln_policy_load_dir(dir, NULL, report, &problems, &a, &err), 0, "valid set loads");
	ok(a != NULL && kiln_policy_set_count(a) == 1, "one policy");
	if (a == NULL)
		return;
	is_int(kiln_policy_lookup(a, "web")->concurrency, 1, "web's policy");
	ok(kiln_policy_lookup(a, "other")->builtin, "other project: built-in");
	kiln_policy_install(a);

	put(dir, "api.yml", "limits: {max: {memory: lots}}\n");
	put(dir, "web.yml", "concurrency: 3\n");
	problems = 0;
	ok(kiln_policy_load_dir(dir, NULL, report, &problems, &b, &err) > 0 && b == NULL,
	   "a set with one bad file is refused as a whole");
	is_int(problems, 1, "one problem reported");
	cur = kiln_policy_current();
	is_int(kiln_policy_lookup(cur, "web")->concurrency, 1, "the old set stays in force");

	{
		char api[4200];
		snprintf(api, sizeof(api), "%s/api.yml", dir);
		unlink(api);
	}
	is_int(kiln_policy_load_dir(dir, NULL, report, &problems, &b, &err), 0, "fixed set loads");
	kiln_policy_install(b);
	{
		struct kiln_policy_set *now = kiln_policy_current();
		is_int(kiln_policy_lookup(now, "web")->concurrency, 3, "the new set is current");
		kiln_policy_set_unref(now);
	}
	is_int(kiln_policy_lookup(cur, "web")->concurrency, 1,
	       "a reader's reference still sees the set it took");
	kiln_policy_set_unref(cur);
	kiln_policy_install(NULL);

	put(dir, "Bad_Name.yml", "concurrency: 1\n");
	problems = 0;
	ok(kiln_policy_load_dir(dir, NULL, report, &problems, &b, &err) > 0,
	   "a file name that is not a project is refused");
	{
		char cmd[4300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		ok(system(cmd) == 0, "clean up");
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_corpus();
	test_good();
	test_apply();
	test_sets();
	return tap_done();
}
