/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy files (policy.h): parsed with the spec's strict YAML loader, so
 * that every problem carries a line and column, then loaded as a whole set
 * that either replaces the current one or is refused.
 */
#define KILN_SPEC_INTERNAL
#include "server/egress.h"
#include "server/policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "store/cas.h"
#include "store/db.h"

#define MAX_LIST     KILN_POLICY_MAX_LIST
#define MAX_FILES    4096
#define HOST_MAX     253
#define MINISIGN_LEN 42

struct kiln_policy_set {
	atomic_uint refs;
	struct kiln_policy **p;
	size_t n;
	struct kiln_policy *builtin;
	char digest[KILN_POLICY_DIGEST_MAX];
	/* when the directory was read (unix seconds) */
	int64_t loaded_at;
};

/* ---- parsing one file ---- */

struct pctx {
	struct kiln_policy *p;
	const struct kiln_policy_known *known;
	const struct kiln_spec_limits *cap;
	/* what limits.default gave, to check against max afterwards */
	const struct kiln_ynode *def_node[5], *max_node[5];
	bool max_cpus_given;
};

static const char *const top_keys[] = {"limits", "backend",	"network",   "secrets", "signing",
				       "images", "concurrency", "artifacts", NULL};
enum { T_LIMITS, T_BACKEND, T_NETWORK, T_SECRETS, T_SIGNING, T_IMAGES, T_CONC, T_ARTIFACTS };
static const char *const limits_keys[] = {"max", "default", NULL};
static const char *const lim_keys[] = {"memory", "pids", "cpus", "disk", "timeout", NULL};
enum { L_MEMORY, L_PIDS, L_CPUS, L_DISK, L_TIMEOUT };
static const char *const net_keys[] = {"mode", "enforcement", "allow", NULL};
static const char *const secret_keys[] = {"env", "require_signed", NULL};
static const char *const signing_keys[] = {"required", "keys", NULL};
static const char *const artifacts_keys[] = {"secret_scan", NULL};

static bool scalar_is(const struct kiln_ynode *n, const char *s)
{
	return n->type == KILN_YSCALAR && n->len == strlen(s) && memcmp(n->text, s, n->len) == 0;
}

static int choice(const struct kiln_ynode *n, const char *name, const char *const *opts, int *out,
		  struct kiln_spec_error *e)
{
	char q[80];

	for (int i = 0; opts[i] != NULL; i++)
		if (scalar_is(n, opts[i])) {
			*out = i;
			return 0;
		}
	if (n->type != KILN_YSCALAR)
		return kiln_yaml_fail(e, n, "%s: expected one of %s%s%s, got %s", name, opts[0],
				      opts[1] ? " or " : "", opts[1] ? opts[1] : "",
				      kiln_yaml_kind(n));
	kiln_yaml_quote(q, sizeof(q), n->text, n->len);
	return kiln_yaml_fail(e, n, "%s: expected %s%s%s, got '%s'", name, opts[0],
			      opts[1] ? " or " : "", opts[1] ? opts[1] : "", q);
}

static int lim_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		     struct kiln_spec_error *e, bool is_max)
{
	struct pctx *c = ctx;
	struct kiln_policy_limits *l = is_max ? &c->p->max : &c->p->def;
	const char *full = name;

	if (idx < 5) {
		if (is_max)
			c->max_node[idx] = v;
		else
			c->def_node[idx] = v;
	}
	switch (idx) {
	case L_MEMORY: return kiln_yaml_size(v, full, c->cap->max_memory, &l->memory, e);
	case L_PIDS: return kiln_yaml_uint(v, full, 1, c->cap->max_pids, &l->pids, e);
	case L_CPUS:
		if (is_max)
			c->max_cpus_given = true;
		return kiln_yaml_cpus(v, full, c->cap->max_cpus_milli, &l->cpus_milli, e);
	case L_DISK: return kiln_yaml_size(v, full, c->cap->max_disk, &l->disk, e);
	case L_TIMEOUT: return kiln_yaml_duration(v, full, c->cap->max_timeout, &l->timeout, e);
	default: return kiln_yaml_fail(e, v, "internal error: limit %zu", idx);
	}
}

static int max_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		     struct kiln_spec_error *e)
{
	return lim_field(ctx, idx, name, v, e, true);
}

static int def_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		     struct kiln_spec_error *e)
{
	return lim_field(ctx, idx, name, v, e, false);
}

static int limits_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			struct kiln_spec_error *e)
{
	return kiln_yaml_walk(v, name, lim_keys, idx == 0 ? max_field : def_field, ctx, e);
}

/* A list of strings, each checked by ok(); duplicates refused. */
static int string_list(const struct kiln_ynode *v, const char *name, size_t maxlen,
		       bool (*ok)(const char *), const char *what, char ***out, size_t *nout,
		       struct kiln_spec_error *e)
{
	char item[64], q[80];

	if (v->type != KILN_YSEQ)
		return kiln_yaml_fail(e, v, "%s: expected a list, got %s", name, kiln_yaml_kind(v));
	if (v->nkids > MAX_LIST)
		return kiln_yaml_fail(e, v->kids[MAX_LIST], "%s: more than %d entries", name,
				      MAX_LIST);
	*out = calloc(v->nkids ? v->nkids : 1, sizeof(**out));
	if (*out == NULL)
		return kiln_yaml_fail(e, v, "%s: out of memory", name);
	for (size_t i = 0; i < v->nkids; i++) {
		char *s = NULL;

		snprintf(item, sizeof(item), "%s[%zu]", name, i);
		if (kiln_yaml_string(v->kids[i], item, maxlen, &s, e) < 0)
			return -1;
		(*out)[(*nout)++] = s;
		if (!ok(s)) {
			kiln_yaml_quote(q, sizeof(q), s, strlen(s));
			return kiln_yaml_fail(e, v->kids[i], "%s: '%s' is not %s", item, q, what);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp((*out)[j], s) == 0)
				return kiln_yaml_fail(e, v->kids[i], "%s: duplicate of %s[%zu]",
						      item, name, j);
	}
	return 0;
}

/* "host:port", "*.domain:port", "203.0.113.7:443" or "[v6]:443": what the
 * egress proxy matches (egress.c). */
static bool allow_ok(const char *s)
{
	struct kiln_egress_rule r;
	char msg[160];

	return kiln_egress_rule_parse(s, &r, msg, sizeof(msg));
}

static int network_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			 struct kiln_spec_error *e)
{
	static const char *const modes[] = {"none", "allowlist", NULL};
	static const char *const enf[] = {"block", "audit", NULL};
	struct pctx *c = ctx;
	int x = 0;

	switch (idx) {
	case 0:
		if (choice(v, "network.mode", modes, &x, e) < 0)
			return -1;
		c->p->net_mode = (enum kiln_policy_netmode)x;
		return 0;
	case 1:
		if (choice(v, "network.enforcement", enf, &x, e) < 0)
			return -1;
		c->p->net_enforce = (enum kiln_policy_enforce)x;
		return 0;
	case 2:
		return string_list(
			v, "network.allow", HOST_MAX + 10, allow_ok,
			"HOST:PORT (a host name, *.domain or an IP address, and a port 1-65535)",
			&c->p->net_allow, &c->p->nnet_allow, e);
	default: (void)name; return kiln_yaml_fail(e, v, "internal error: network %zu", idx);
	}
}

struct secret_ctx {
	struct kiln_policy_secret *s;
};

static int secret_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			struct kiln_spec_error *e)
{
	struct secret_ctx *c = ctx;

	return kiln_yaml_bool(v, name, idx == 0 ? &c->s->env : &c->s->require_signed, e);
}

static int set_secrets(struct pctx *c, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	struct kiln_policy *p = c->p;
	char q[80], path[96];

	if (kiln_yaml_is_null(v))
		return 0;
	if (v->type != KILN_YMAP)
		return kiln_yaml_fail(e, v,
				      "secrets: expected a mapping of NAME: {env, "
				      "require_signed}, got %s",
				      kiln_yaml_kind(v));
	if (v->nkids / 2 > MAX_LIST)
		return kiln_yaml_fail(e, v, "secrets: more than %d entries", MAX_LIST);
	p->secrets = calloc(v->nkids / 2 + 1, sizeof(*p->secrets));
	if (p->secrets == NULL)
		return kiln_yaml_fail(e, v, "secrets: out of memory");
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct kiln_ynode *k = v->kids[i], *val = v->kids[i + 1];
		struct kiln_policy_secret *s = &p->secrets[p->nsecrets];
		struct secret_ctx sc = {.s = s};

		if (k->type != KILN_YSCALAR || k->len == 0 || k->len > 64 ||
		    memchr(k->text, '\0', k->len) != NULL || !kiln_secret_name_valid(k->text)) {
			if (k->type == KILN_YSCALAR)
				kiln_yaml_quote(q, sizeof(q), k->text, k->len);
			else
				snprintf(q, sizeof(q), "%s", kiln_yaml_kind(k));
			return kiln_yaml_fail(e, k,
					      "secrets: '%s' is not a secret name (letters, digits "
					      "and _, not starting with a digit, at most 64)",
					      q);
		}
		memcpy(s->name, k->text, k->len);
		s->name[k->len] = '\0';
		for (size_t j = 0; j < p->nsecrets; j++)
			if (strcmp(p->secrets[j].name, s->name) == 0)
				return kiln_yaml_fail(e, k, "secrets: duplicate key '%s'", s->name);
		p->nsecrets++;
		if (c->known != NULL && c->known->secret_known != NULL &&
		    !c->known->secret_known(c->known->ctx, p->project, s->name))
			return kiln_yaml_fail(e, k,
					      "secrets.%s: project %s has no secret of that name "
					      "(kiln secret set %s %s)",
					      s->name, p->project, p->project, s->name);
		if (kiln_yaml_is_null(val))
			continue;
		snprintf(path, sizeof(path), "secrets.%s", s->name);
		if (kiln_yaml_walk(val, path, secret_keys, secret_field, &sc, e) < 0)
			return -1;
		if (s->env) {
			static const char *const reserved[] = {"PATH",	  "HOME",  "USER",
							       "LOGNAME", "SHELL", "TMPDIR"};

			for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++)
				if (strcmp(s->name, reserved[r]) == 0)
					return kiln_yaml_fail(e, k,
							      "secrets.%s: env: true would replace "
							      "%s, which kiln sets",
							      s->name, s->name);
		}
	}
	return 0;
}

static bool minisign_key_ok(const char *s)
{
	unsigned char bin[64];
	size_t n = 0;

	if (sodium_base642bin(bin, sizeof(bin), s, strlen(s), NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	return n == MINISIGN_LEN && bin[0] == 'E' && bin[1] == 'd';
}

static int signing_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			 struct kiln_spec_error *e)
{
	struct pctx *c = ctx;

	if (idx == 0)
		return kiln_yaml_bool(v, "signing.required", &c->p->signing_required, e);
	(void)name;
	return string_list(v, "signing.keys", 128, minisign_key_ok,
			   "a minisign public key (the base64 line of a .pub file: 42 bytes, "
			   "algorithm Ed)",
			   &c->p->signing_keys, &c->p->nsigning_keys, e);
}

static int artifacts_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			   struct kiln_spec_error *e)
{
	static const char *const opts[] = {"fail", "warn", NULL};
	struct pctx *c = ctx;
	int x = 0;

	(void)idx;
	(void)name;
	if (choice(v, "artifacts.secret_scan", opts, &x, e) < 0)
		return -1;
	c->p->secret_scan = (enum kiln_policy_scan)x;
	return 0;
}

static bool image_known(const struct kiln_policy_known *k, const char *name)
{
	if (strcmp(name, "host") == 0)
		return true;
	for (size_t i = 0; k != NULL && i < k->nimages; i++)
		if (strcmp(k->images[i], name) == 0)
			return true;
	return false;
}

static int set_images(struct pctx *c, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	struct kiln_policy *p = c->p;

	for (size_t i = 0; i < p->nimages; i++)
		free(p->images[i]);
	free(p->images);
	p->images = NULL;
	p->nimages = 0;
	if (string_list(v, "images", 64, kiln_image_name_valid,
			"an image name ([a-z0-9][a-z0-9._-]*)", &p->images, &p->nimages, e) < 0)
		return -1;
	if (p->nimages == 0)
		return kiln_yaml_fail(e, v, "images: at least one image (such as host)");
	for (size_t i = 0; i < p->nimages; i++)
		if (!image_known(c->known, p->images[i]))
			return kiln_yaml_fail(
				e, v->kids[i],
				"images[%zu]: unknown image '%s' (kilnd knows: host%s)", i,
				p->images[i],
				c->known && c->known->nimages ? " and its configured ones" : "");
	return 0;
}

static int top_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		     struct kiln_spec_error *e)
{
	static const char *const backends[] = {"namespaces", "gvisor", NULL};
	struct pctx *c = ctx;
	uint64_t u = 0;
	int x = 0;

	switch (idx) {
	case T_LIMITS: return kiln_yaml_walk(v, name, limits_keys, limits_field, c, e);
	case T_BACKEND:
		if (choice(v, "backend", backends, &x, e) < 0)
			return -1;
		c->p->backend = (enum kiln_policy_backend)x;
		return 0;
	case T_NETWORK: return kiln_yaml_walk(v, name, net_keys, network_field, c, e);
	case T_SECRETS: return set_secrets(c, v, e);
	case T_SIGNING: return kiln_yaml_walk(v, name, signing_keys, signing_field, c, e);
	case T_IMAGES: return set_images(c, v, e);
	case T_CONC:
		if (kiln_yaml_uint(v, "concurrency", 1, 1024, &u, e) < 0)
			return -1;
		c->p->concurrency = (unsigned)u;
		return 0;
	case T_ARTIFACTS: return kiln_yaml_walk(v, name, artifacts_keys, artifacts_field, c, e);
	default: return kiln_yaml_fail(e, v, "internal error: key %zu", idx);
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void policy_defaults(struct kiln_policy *p, const struct kiln_spec_limits *cap)
{
	p->max.timeout = cap->max_timeout;
	p->max.memory = cap->max_memory;
	p->max.disk = cap->max_disk;
	p->max.pids = cap->max_pids;
	p->max.cpus_milli = 0;
	p->def.timeout = 0;
	p->def.memory = 0;
	p->def.disk = 0;
	p->def.pids = 0;
	p->def.cpus_milli = 0;
	p->backend = KILN_BACKEND_NAMESPACES;
	p->net_mode = KILN_NET_NONE;
	p->net_enforce = KILN_NET_BLOCK;
	p->secret_scan = KILN_SCAN_FAIL;
}

static void fmt_limit(char *buf, size_t len, size_t idx, uint64_t v)
{
	switch (idx) {
	case L_MEMORY:
	case L_DISK: kiln_spec_fmt_size(buf, len, v); break;
	case L_TIMEOUT: snprintf(buf, len, "%" PRIu64 "s", v); break;
	case L_CPUS:
		if (v % 1000 == 0)
			snprintf(buf, len, "%" PRIu64, v / 1000);
		else
			snprintf(buf, len, "%" PRIu64 ".%03" PRIu64, v / 1000, v % 1000);
		break;
	case L_PIDS:
	default: snprintf(buf, len, "%" PRIu64, v); break;
	}
}

static uint64_t *lim_slot(struct kiln_policy_limits *l, size_t idx)
{
	switch (idx) {
	case L_MEMORY: return &l->memory;
	case L_PIDS: return &l->pids;
	case L_CPUS: return &l->cpus_milli;
	case L_DISK: return &l->disk;
	case L_TIMEOUT:
	default: return &l->timeout;
	}
}

/* Defaults above the maxima are impossible; missing defaults are the
 * engine's, lowered to the maxima. */
static int finish_limits(struct pctx *c, struct kiln_spec_error *e)
{
	struct kiln_policy *p = c->p;
	static const uint64_t engine[5] = {2ULL << 30, 1024, 0, 4ULL << 30, 3600};

	for (size_t i = 0; i < 5; i++) {
		uint64_t *d = lim_slot(&p->def, i), mx = *lim_slot(&p->max, i);
		char a[32], b[32];

		if (c->def_node[i] == NULL) {
			*d = engine[i];
			if (i == L_CPUS && c->max_cpus_given)
				*d = mx;
			if (mx != 0)
				*d = min_u64(*d, mx);
			continue;
		}
		if (mx != 0 && *d > mx) {
			fmt_limit(a, sizeof(a), i, *d);
			fmt_limit(b, sizeof(b), i, mx);
			return kiln_yaml_fail(e, c->def_node[i],
					      "limits.default.%s: %s is above limits.max.%s (%s)",
					      lim_keys[i], a, lim_keys[i], b);
		}
	}
	return 0;
}

int kiln_policy_parse(const char *project, const char *file, const char *text, size_t len,
		      const struct kiln_policy_known *known, struct kiln_policy **out,
		      struct kiln_spec_error *e)
{
	struct kiln_spec_limits cap;
	struct pctx c = {0};
	struct kiln_ynode *root = NULL;
	struct kiln_policy *p;
	char hex[KILN_SHA256_HEX];

	e->line = e->column = 0;
	e->message[0] = '\0';
	if (known != NULL && known->max != NULL)
		cap = *known->max;
	else
		kiln_spec_limits_default(&cap);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return kiln_yaml_fail(e, NULL, "out of memory");
	snprintf(p->project, sizeof(p->project), "%s", project);
	snprintf(p->file, sizeof(p->file), "%s", file);
	policy_defaults(p, &cap);
	c.p = p;
	c.known = known;
	c.cap = &cap;
	if (kiln_yaml_load(text, len, KILN_POLICY_MAX_BYTES, &root, e) < 0)
		goto fail;
	if (root != NULL && !kiln_yaml_is_null(root)) {
		if (root->type != KILN_YMAP) {
			kiln_yaml_fail(e, root,
				       "a policy is a mapping of keys (limits:, ...), not %s",
				       kiln_yaml_kind(root));
			goto fail;
		}
		if (kiln_yaml_walk(root, "", top_keys, top_field, &c, e) < 0)
			goto fail;
	}
	if (finish_limits(&c, e) < 0)
		goto fail;
	if (p->nimages == 0) {
		p->images = calloc(1, sizeof(*p->images));
		if (p->images == NULL || (p->images[0] = strdup("host")) == NULL) {
			kiln_yaml_fail(e, NULL, "out of memory");
			goto fail;
		}
		p->nimages = 1;
	}
	if (p->signing_required && p->nsigning_keys == 0) {
		kiln_yaml_fail(e, root,
			       "signing.required: true needs at least one key in signing.keys");
		goto fail;
	}
	for (size_t i = 0; i < p->nsecrets; i++)
		if (p->secrets[i].require_signed && p->nsigning_keys == 0) {
			kiln_yaml_fail(e, root,
				       "secrets.%s.require_signed: true needs at least one key in "
				       "signing.keys",
				       p->secrets[i].name);
			goto fail;
		}
	kiln_yaml_free(root);
	kiln_sha256_buf(text, len, hex);
	snprintf(p->digest, sizeof(p->digest), "sha256:%s", hex);
	*out = p;
	return 0;
fail:
	kiln_yaml_clamp(text, len, e);
	kiln_yaml_free(root);
	kiln_policy_free(p);
	return -1;
}

void kiln_policy_free(struct kiln_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nnet_allow; i++)
		free(p->net_allow[i]);
	free(p->net_allow);
	free(p->secrets);
	for (size_t i = 0; i < p->nsigning_keys; i++)
		free(p->signing_keys[i]);
	free(p->signing_keys);
	for (size_t i = 0; i < p->nimages; i++)
		free(p->images[i]);
	free(p->images);
	free(p);
}

struct kiln_policy *kiln_policy_builtin(const struct kiln_policy_known *known)
{
	struct kiln_spec_error e;
	struct kiln_policy *p = NULL;
	json_t *j;
	char *text;

	if (kiln_policy_parse("", "(built-in)", "", 0, known, &p, &e) < 0)
		return NULL;
	p->builtin = true;
	/* The digest of the built-in policy: of its canonical JSON, so that
	 * it changes when kilnd's maxima do. */
	j = kiln_policy_to_json(p);
	text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (text == NULL) {
		kiln_policy_free(p);
		return NULL;
	}
	{
		char hex[KILN_SHA256_HEX];
		kiln_sha256_buf(text, strlen(text), hex);
		snprintf(p->digest, sizeof(p->digest), "sha256:%s", hex);
	}
	free(text);
	return p;
}

/* ---- JSON ---- */

static json_t *limits_json(const struct kiln_policy_limits *l, bool is_max)
{
	json_t *o = json_object();
	char cpus[32];

	json_object_set_new(o, "memory", json_integer((json_int_t)l->memory));
	json_object_set_new(o, "pids", json_integer((json_int_t)l->pids));
	if (l->cpus_milli == 0) {
		json_object_set_new(o, "cpus", json_null());
	} else {
		fmt_limit(cpus, sizeof(cpus), L_CPUS, l->cpus_milli);
		json_object_set_new(o, "cpus", json_real((double)l->cpus_milli / 1000.0));
	}
	json_object_set_new(o, "disk", json_integer((json_int_t)l->disk));
	json_object_set_new(o, "timeout", json_integer((json_int_t)l->timeout));
	(void)is_max;
	return o;
}

static json_t *strings_json(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

const char *kiln_policy_backend_name(enum kiln_policy_backend b)
{
	return b == KILN_BACKEND_GVISOR ? "gvisor" : "namespaces";
}

json_t *kiln_policy_to_json(const struct kiln_policy *p)
{
	json_t *o = json_object(), *sec = json_object();

	for (size_t i = 0; i < p->nsecrets; i++)
		json_object_set_new(sec, p->secrets[i].name,
				    json_pack("{s:b,s:b}", "env", p->secrets[i].env,
					      "require_signed", p->secrets[i].require_signed));
	json_object_set_new(o, "project", json_string(p->project));
	json_object_set_new(o, "digest", json_string(p->digest));
	json_object_set_new(o, "source", json_string(p->builtin ? "built-in" : p->file));
	json_object_set_new(o, "limits",
			    json_pack("{s:o,s:o}", "max", limits_json(&p->max, true), "default",
				      limits_json(&p->def, false)));
	json_object_set_new(o, "backend", json_string(kiln_policy_backend_name(p->backend)));
	json_object_set_new(o, "network",
			    json_pack("{s:s,s:s,s:o}", "mode",
				      p->net_mode == KILN_NET_NONE ? "none" : "allowlist",
				      "enforcement",
				      p->net_enforce == KILN_NET_BLOCK ? "block" : "audit", "allow",
				      strings_json(p->net_allow, p->nnet_allow)));
	json_object_set_new(o, "secrets", sec);
	json_object_set_new(o, "signing",
			    json_pack("{s:b,s:o}", "required", p->signing_required, "keys",
				      strings_json(p->signing_keys, p->nsigning_keys)));
	json_object_set_new(o, "images", strings_json(p->images, p->nimages));
	json_object_set_new(o, "concurrency",
			    p->concurrency ? json_integer(p->concurrency) : json_null());
	json_object_set_new(o, "artifacts",
			    json_pack("{s:s}", "secret_scan",
				      p->secret_scan == KILN_SCAN_FAIL ? "fail" : "warn"));
	return o;
}

/* ---- sets ---- */

static int cmp_policy(const void *a, const void *b)
{
	return strcmp((*(struct kiln_policy *const *)a)->project,
		      (*(struct kiln_policy *const *)b)->project);
}

static void set_free(struct kiln_policy_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		kiln_policy_free(set->p[i]);
	free(set->p);
	kiln_policy_free(set->builtin);
	free(set);
}

static int read_policy_file(int dfd, const char *name, char **buf, size_t *len, char *why,
			    size_t whylen)
{
	cleanup_fd int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		return -1;
	}
	if (st.st_size > KILN_POLICY_MAX_BYTES) {
		snprintf(why, whylen, "larger than %dK", KILN_POLICY_MAX_BYTES / 1024);
		return -1;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (*buf == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	n = kiln_read_all(fd, *buf, (size_t)st.st_size + 1);
	if (n < 0 || n > st.st_size) {
		snprintf(why, whylen, "read failed or the file changed");
		free(*buf);
		*buf = NULL;
		return -1;
	}
	(*buf)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

int kiln_policy_load_dir(const char *dir, const struct kiln_policy_known *known,
			 kiln_policy_report_fn report, void *ctx, struct kiln_policy_set **out,
			 struct kiln_error **err)
{
	struct kiln_policy_set *set;
	cleanup_fd int dfd = -1;
	DIR *d;
	struct dirent *de;
	int problems = 0;
	crypto_hash_sha256_state hs;
	unsigned char h[32];
	char hex[65];

	set = calloc(1, sizeof(*set));
	if (set == NULL)
		return kiln_error_set(err, ENOMEM, "policies");
	atomic_init(&set->refs, 1);
	set->builtin = kiln_policy_builtin(known);
	if (set->builtin == NULL) {
		set_free(set);
		return kiln_error_set(err, ENOMEM, "policies: the built-in policy");
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno != ENOENT) {
		int e = errno;
		set_free(set);
		return kiln_error_set(err, e, "policy directory %s", dir);
	}
	if (dfd >= 0) {
		int dup_fd = dup(dfd);
		d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
		if (d == NULL) {
			int e = errno;
			if (dup_fd >= 0)
				close(dup_fd);
			set_free(set);
			return kiln_error_set(err, e, "policy directory %s", dir);
		}
		while ((de = readdir(d)) != NULL) {
			size_t nl = strlen(de->d_name);
			char project[64], why[128];
			struct kiln_spec_error e;
			struct kiln_policy *p = NULL;
			char *buf = NULL;
			size_t len = 0;

			if (de->d_name[0] == '.' || nl < 5 ||
			    strcmp(de->d_name + nl - 4, ".yml") != 0)
				continue;
			if (nl - 4 >= sizeof(project)) {
				report(ctx, de->d_name, 0, 0,
				       "the file name is not PROJECT.yml with a project name");
				problems++;
				continue;
			}
			memcpy(project, de->d_name, nl - 4);
			project[nl - 4] = '\0';
			if (!kiln_project_name_valid(project)) {
				report(ctx, de->d_name, 0, 0,
				       "the file name is not PROJECT.yml with a project name "
				       "([a-z0-9][a-z0-9-]*)");
				problems++;
				continue;
			}
			if (set->n >= MAX_FILES) {
				report(ctx, de->d_name, 0, 0, "more than 4096 policy files");
				problems++;
				break;
			}
			if (read_policy_file(dfd, de->d_name, &buf, &len, why, sizeof(why)) < 0) {
				report(ctx, de->d_name, 0, 0, why);
				problems++;
				continue;
			}
			if (kiln_policy_parse(project, de->d_name, buf, len, known, &p, &e) < 0) {
				report(ctx, de->d_name, e.line, e.column, e.message);
				problems++;
				free(buf);
				continue;
			}
			free(buf);
			if (set->n % 16 == 0) {
				struct kiln_policy **np =
					realloc(set->p, (set->n + 16) * sizeof(*np));
				if (np == NULL) {
					kiln_policy_free(p);
					report(ctx, de->d_name, 0, 0, "out of memory");
					problems++;
					break;
				}
				set->p = np;
			}
			set->p[set->n++] = p;
		}
		closedir(d);
	}
	if (problems > 0) {
		set_free(set);
		return problems;
	}
	if (set->n > 1)
		qsort(set->p, set->n, sizeof(*set->p), cmp_policy);
	crypto_hash_sha256_init(&hs);
	for (size_t i = 0; i < set->n; i++) {
		crypto_hash_sha256_update(&hs, (const unsigned char *)set->p[i]->file,
					  strlen(set->p[i]->file) + 1);
		crypto_hash_sha256_update(&hs, (const unsigned char *)set->p[i]->digest,
					  strlen(set->p[i]->digest) + 1);
	}
	crypto_hash_sha256_final(&hs, h);
	kiln_hex(h, sizeof(h), hex);
	snprintf(set->digest, sizeof(set->digest), "sha256:%s", hex);
	set->loaded_at = (int64_t)time(NULL);
	*out = set;
	return 0;
}

struct kiln_policy_set *kiln_policy_set_ref(struct kiln_policy_set *set)
{
	if (set != NULL)
		atomic_fetch_add(&set->refs, 1);
	return set;
}

void kiln_policy_set_unref(struct kiln_policy_set *set)
{
	if (set != NULL && atomic_fetch_sub(&set->refs, 1) == 1)
		set_free(set);
}

const struct kiln_policy *kiln_policy_lookup(const struct kiln_policy_set *set, const char *project)
{
	size_t lo = 0, hi = set->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(set->p[mid]->project, project);
		if (c == 0)
			return set->p[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return set->builtin;
}

const char *kiln_policy_set_digest(const struct kiln_policy_set *set)
{
	return set->digest;
}

int64_t kiln_policy_set_loaded_at(const struct kiln_policy_set *set)
{
	return set->loaded_at;
}

size_t kiln_policy_set_count(const struct kiln_policy_set *set)
{
	return set->n;
}

const struct kiln_policy *kiln_policy_set_at(const struct kiln_policy_set *set, size_t i)
{
	return i < set->n ? set->p[i] : NULL;
}

/* ---- the current set ---- */

static pthread_mutex_t current_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kiln_policy_set *current;
static atomic_uint_fast64_t n_loaded, n_refused;

void kiln_policy_install(struct kiln_policy_set *set)
{
	struct kiln_policy_set *old;

	pthread_mutex_lock(&current_mu);
	old = current;
	current = set;
	pthread_mutex_unlock(&current_mu);
	kiln_policy_set_unref(old);
}

struct kiln_policy_set *kiln_policy_current(void)
{
	struct kiln_policy_set *s;

	pthread_mutex_lock(&current_mu);
	s = kiln_policy_set_ref(current);
	pthread_mutex_unlock(&current_mu);
	return s;
}

void kiln_policy_count_reload(bool ok)
{
	atomic_fetch_add(ok ? &n_loaded : &n_refused, 1);
}

void kiln_policy_counters(uint64_t *loaded, uint64_t *refused)
{
	*loaded = atomic_load(&n_loaded);
	*refused = atomic_load(&n_refused);
}

/* ---- applying a policy to a spec ---- */

const struct kiln_policy_secret *kiln_policy_secret(const struct kiln_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nsecrets; i++)
		if (strcmp(p->secrets[i].name, name) == 0)
			return &p->secrets[i];
	return NULL;
}

static int check_limit(const struct kiln_policy *p, struct kiln_spec *s, size_t idx, bool given,
		       uint64_t *val, const char *name, char *msg, size_t msglen)
{
	uint64_t mx = *lim_slot((struct kiln_policy_limits *)&p->max, idx);
	char a[32], b[32];

	if (!given) {
		*val = *lim_slot((struct kiln_policy_limits *)&p->def, idx);
		return 0;
	}
	(void)s;
	if (mx == 0)
		return 0;
	if (idx == L_CPUS && *val == 0) {
		fmt_limit(b, sizeof(b), idx, mx);
		snprintf(msg, msglen,
			 "%s: no CPU quota asked, policy of project %s allows at most %s", name,
			 p->project[0] ? p->project : "(built-in)", b);
		return -1;
	}
	if (*val > mx) {
		fmt_limit(a, sizeof(a), idx, *val);
		fmt_limit(b, sizeof(b), idx, mx);
		snprintf(msg, msglen, "%s: %s asked, policy allows at most %s", name, a, b);
		return -1;
	}
	return 0;
}

int kiln_policy_apply(const struct kiln_policy *p, struct kiln_spec *spec, bool signed_submission,
		      char *msg, size_t msglen)
{
	bool image_ok = false;

	if (check_limit(p, spec, L_TIMEOUT, spec->given & KILN_SPEC_GIVEN_TIMEOUT, &spec->timeout,
			"timeout", msg, msglen) < 0 ||
	    check_limit(p, spec, L_MEMORY, spec->given & KILN_SPEC_GIVEN_MEMORY, &spec->memory,
			"resources.memory", msg, msglen) < 0 ||
	    check_limit(p, spec, L_PIDS, spec->given & KILN_SPEC_GIVEN_PIDS, &spec->pids,
			"resources.pids", msg, msglen) < 0 ||
	    check_limit(p, spec, L_CPUS, spec->given & KILN_SPEC_GIVEN_CPUS, &spec->cpus_milli,
			"resources.cpus", msg, msglen) < 0 ||
	    check_limit(p, spec, L_DISK, spec->given & KILN_SPEC_GIVEN_DISK, &spec->disk,
			"resources.disk", msg, msglen) < 0)
		return -1;
	if (p->backend == KILN_BACKEND_GVISOR) {
		snprintf(msg, msglen,
			 "backend: the policy asks for gvisor, which is not available on this "
			 "server; the job is refused rather than run with weaker isolation");
		return -1;
	}
	if (spec->network != NULL && strcmp(spec->network, "egress") == 0 &&
	    p->net_mode != KILN_NET_ALLOWLIST) {
		snprintf(msg, msglen,
			 "network: egress asked, but the policy of project %s has network.mode "
			 "none (an allowlist in the policy grants egress)",
			 p->project[0] ? p->project : "(built-in)");
		return -1;
	}
	if (p->signing_required && !signed_submission) {
		snprintf(msg, msglen,
			 "signing.required: the policy accepts only signed submissions, and this "
			 "one is not signed");
		return -1;
	}
	for (size_t i = 0; i < spec->nsecrets; i++) {
		const struct kiln_policy_secret *g = kiln_policy_secret(p, spec->secrets[i]);

		if (g == NULL) {
			snprintf(msg, msglen,
				 "secrets: %s is not granted by the policy of project %s",
				 spec->secrets[i], p->project[0] ? p->project : "(built-in)");
			return -1;
		}
		if (g->require_signed && !signed_submission) {
			snprintf(msg, msglen,
				 "secrets: %s is granted only to signed submissions, and this one "
				 "is not signed",
				 spec->secrets[i]);
			return -1;
		}
	}
	if (spec->image == NULL) {
		spec->image = strdup(p->images[0]);
		if (spec->image == NULL) {
			snprintf(msg, msglen, "out of memory");
			return -1;
		}
	}
	for (size_t i = 0; i < p->nimages; i++)
		if (strcmp(p->images[i], spec->image) == 0)
			image_ok = true;
	if (!image_ok) {
		snprintf(msg, msglen, "image: %s is not among the images the policy allows",
			 spec->image);
		return -1;
	}
	if (strcmp(spec->image, "host") != 0) {
		snprintf(msg, msglen, "image: %s is not available on this server (only host)",
			 spec->image);
		return -1;
	}
	return 0;
}
