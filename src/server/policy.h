/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy as code: one YAML file per project, PROJECT.yml, in the policy
 * directory (DATA/policies unless configured). docs/policy.md has the
 * schema; every key is optional:
 *
 *   limits:
 *     max: {memory: 2G, pids: 1024, cpus: 2, disk: 4G, timeout: 30m}
 *     default: {memory: 1G, pids: 512, cpus: 1, disk: 2G, timeout: 10m}
 *   backend: namespaces            # or gvisor (jobs are refused: not available)
 *   network: {mode: none, enforcement: block, allow: ["host:443"]}
 *   secrets: {DEPLOY_TOKEN: {env: false, require_signed: false}}
 *   signing: {required: false, keys: [minisign public key, ...]}
 *   images: [host]
 *   concurrency: 2
 *   artifacts: {secret_scan: fail}   # or warn
 *
 * A directory is loaded into an immutable, reference-counted set. The
 * current set is swapped atomically under a lock (kiln_policy_install);
 * readers take a reference (kiln_policy_current) and keep a consistent
 * view for as long as they hold it. A project without a file gets the
 * built-in default policy (kiln_policy_lookup never returns NULL for a
 * valid set).
 */
#ifndef KILN_SERVER_POLICY_H
#define KILN_SERVER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "server/spec.h"

#define KILN_POLICY_DIGEST_MAX 72 /* "sha256:" + 64 hex + NUL */
#define KILN_POLICY_MAX_BYTES  (256 * 1024)
/* entries in a policy's lists (network.allow, signing.keys, images) */
#define KILN_POLICY_MAX_LIST 256

enum kiln_policy_backend { KILN_BACKEND_NAMESPACES, KILN_BACKEND_GVISOR };
enum kiln_policy_netmode { KILN_NET_NONE, KILN_NET_ALLOWLIST };
enum kiln_policy_enforce { KILN_NET_BLOCK, KILN_NET_AUDIT };
enum kiln_policy_scan { KILN_SCAN_FAIL, KILN_SCAN_WARN };

struct kiln_policy_secret {
	char name[65];
	/* also delivered as an environment variable */
	bool env;
	/* only to signed submissions */
	bool require_signed;
};

/* The minimum of values a spec may ask for, and the defaults for what it
 * does not set. cpus_milli 0 = no quota (default) or no maximum (max). */
struct kiln_policy_limits {
	uint64_t timeout, memory, disk, pids, cpus_milli;
};

struct kiln_policy {
	char project[64];
	/* "sha256:<hex>" of the file's bytes (of the canonical text for the
	 * built-in default) */
	char digest[KILN_POLICY_DIGEST_MAX];
	/* the file name, "(built-in)" for the default */
	char file[256];
	bool builtin;
	struct kiln_policy_limits max, def;
	enum kiln_policy_backend backend;
	enum kiln_policy_netmode net_mode;
	enum kiln_policy_enforce net_enforce;
	/* "host:port" patterns ("*.example.org:443") */
	char **net_allow;
	size_t nnet_allow;
	struct kiln_policy_secret *secrets;
	size_t nsecrets;
	bool signing_required;
	/* the base64 lines of minisign public keys */
	char **signing_keys;
	size_t nsigning_keys;
	char **images;
	size_t nimages;
	/* jobs of the project running at once, 0 = no cap */
	unsigned concurrency;
	enum kiln_policy_scan secret_scan;
};

struct kiln_policy_set;

/* What a policy may refer to. images: the root filesystems kilnd knows
 * ("host" is always known). secret_known: may be NULL (names are then only
 * checked for shape); otherwise it says whether project has a secret of
 * that name. max: server-wide maxima (kilnd's spec_limits); a policy may not
 * allow more. */
struct kiln_policy_known {
	const char *const *images;
	size_t nimages;
	bool (*secret_known)(void *ctx, const char *project, const char *name);
	void *ctx;
	const struct kiln_spec_limits *max;
};

/* Called for every problem found: "FILE:LINE:COL: message" (file is the
 * name inside the directory). */
typedef void (*kiln_policy_report_fn)(void *ctx, const char *file, int line, int column,
				      const char *message);

/* Parse one policy text. 0 and *out (kiln_policy_free) or -1 and *e. */
int kiln_policy_parse(const char *project, const char *file, const char *text, size_t len,
		      const struct kiln_policy_known *known, struct kiln_policy **out,
		      struct kiln_spec_error *e);
void kiln_policy_free(struct kiln_policy *p);
/* The built-in policy for projects without a file (within known->max). */
struct kiln_policy *kiln_policy_builtin(const struct kiln_policy_known *known);

/* Load every *.yml of dir (names other than PROJECT.yml are errors; other
 * files and dot-files are ignored). A missing directory is an empty set.
 * Returns the number of problems (each passed to report), 0 with *out set
 * (refcount 1) when the set is valid, -1 with *err when the directory
 * cannot be read. Nothing of a set with problems is returned. */
int kiln_policy_load_dir(const char *dir, const struct kiln_policy_known *known,
			 kiln_policy_report_fn report, void *ctx, struct kiln_policy_set **out,
			 struct kiln_error **err);
struct kiln_policy_set *kiln_policy_set_ref(struct kiln_policy_set *set);
void kiln_policy_set_unref(struct kiln_policy_set *set);
/* Borrowed from set (valid while the reference is held); never NULL. */
const struct kiln_policy *kiln_policy_lookup(const struct kiln_policy_set *set,
					     const char *project);
/* "sha256:" over the sorted (file name, file digest) pairs: the set's own. */
const char *kiln_policy_set_digest(const struct kiln_policy_set *set);
/* When the set was read from its directory (unix seconds). */
int64_t kiln_policy_set_loaded_at(const struct kiln_policy_set *set);
size_t kiln_policy_set_count(const struct kiln_policy_set *set);
const struct kiln_policy *kiln_policy_set_at(const struct kiln_policy_set *set, size_t i);

/* The process-wide current set. install takes over the caller's
 * reference and drops the previous set's; current returns a new reference
 * (NULL before the first install). */
void kiln_policy_install(struct kiln_policy_set *set);
struct kiln_policy_set *kiln_policy_current(void);
/* Counters for metrics: reloads done and refused. */
void kiln_policy_count_reload(bool ok);
void kiln_policy_counters(uint64_t *loaded, uint64_t *refused);

/* Check a parsed spec against a policy and fill in the defaults for what
 * the spec did not set. signed_submission: the submission's signature was
 * verified (today always false). 0 when allowed; -1 with msg ("resources.
 * memory: 4G asked, policy allows at most 2G") when not. */
int kiln_policy_apply(const struct kiln_policy *p, struct kiln_spec *spec, bool signed_submission,
		      char *msg, size_t msglen);
/* The grant of a secret, or NULL when the policy does not grant it. */
const struct kiln_policy_secret *kiln_policy_secret(const struct kiln_policy *p, const char *name);
const char *kiln_policy_backend_name(enum kiln_policy_backend b);

/* The effective policy as JSON (docs/policy.md), a new reference. */
#include <jansson.h>
json_t *kiln_policy_to_json(const struct kiln_policy *p);

#endif
