/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln.yml, the job spec, parsed with libfyaml and validated strictly:
 * unknown keys, wrong types and out-of-range values are errors carrying the
 * line and column (1-based) of the offending node.
 *
 *   script: |                  # required, non-empty string, run with /bin/sh -e
 *     make -j2
 *   artifacts: [out/]          # paths under /workspace to keep; default [out/]
 *   timeout: 10m               # duration, default 1h, max 24h
 *   resources: {memory: 1G, pids: 512, cpus: 2, disk: 2G}
 *   network: none              # or egress: kilnd's proxy, to what policy allows
 *   retry: false               # may a job interrupted by a server crash rerun?
 *   env: {NAME: value}         # extra environment (names [A-Za-z_][A-Za-z0-9_]*)
 *   secrets: [DEPLOY_TOKEN]    # secrets asked for (the project's policy must grant them)
 *   image: host                # root filesystem (the project's policy must allow it)
 *
 * Rules (every violation is an error, none is ignored or guessed):
 * - the text is at most KILN_SPEC_MAX_BYTES of UTF-8 without NUL or other
 *   non-printable characters, one YAML document whose top node is a mapping;
 *   anchors, aliases, tags, %YAML/%TAG directives, block scalar indentation
 *   indicators (|2) and duplicate keys are refused, nesting is capped;
 * - script: a non-empty string (a block scalar "|" is the usual form);
 * - artifacts: at most 64 relative paths ("out/", "dist/app.tar"): no "..",
 *   ".", empty components or control characters, not absolute; duplicates
 *   refused; [] is allowed (keep nothing);
 * - timeout: 90, 30s, 10m, 2h or 1d, > 0 and <= limits->max_timeout;
 * - resources: memory and disk sizes (512M, 2G; > 0), pids (>= 1), cpus (2,
 *   0.5; at most 3 decimals; null = no quota), each <= its limit;
 * - network: "none" or "egress"; retry: true or false;
 * - env: at most 256 NAME: value pairs; values are strings (quote "" for an
 *   empty one); PATH, HOME, USER, LOGNAME, SHELL and TMPDIR are kiln's.
 * Defaults: artifacts [out/], timeout 1h, memory 2G, pids 1024, no CPU quota,
 * disk 4G, network none, retry false, no env; a default above a limit is
 * lowered to the limit. Numbers above INT64_MAX are refused whatever the
 * limits say.
 */
#ifndef KILN_SERVER_SPEC_H
#define KILN_SERVER_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KILN_SPEC_MAX_BYTES (64 * 1024)

struct kiln_spec {
	char *script;
	char **artifacts; /* relative paths, validated: no "..", not absolute */
	size_t nartifacts;
	uint64_t timeout;      /* seconds */
	uint64_t memory, disk; /* bytes */
	uint64_t pids;
	uint64_t cpus_milli; /* 0 = no quota */
	char *network;	     /* "none" */
	bool retry;
	char **env; /* "NAME=VALUE" */
	size_t nenv;
	/* secret names asked for ([A-Za-z_][A-Za-z0-9_]{0,63}, no duplicates) */
	char **secrets;
	size_t nsecrets;
	/* root filesystem asked for, NULL = the policy's first image */
	char *image;
	/* KILN_SPEC_GIVEN_*: which values the text set (the others are
	 * defaults that the project's policy replaces) */
	unsigned given;
};

enum {
	KILN_SPEC_GIVEN_TIMEOUT = 1u << 0,
	KILN_SPEC_GIVEN_MEMORY = 1u << 1,
	KILN_SPEC_GIVEN_PIDS = 1u << 2,
	KILN_SPEC_GIVEN_CPUS = 1u << 3,
	KILN_SPEC_GIVEN_DISK = 1u << 4,
};
#define KILN_SPEC_MAX_SECRETS 32
/* A secret's name: [A-Za-z_][A-Za-z0-9_]{0,63}. */
bool kiln_secret_name_valid(const char *name);
/* An image's name: [a-z0-9][a-z0-9._-]{0,63}. */
bool kiln_image_name_valid(const char *name);
/* "2G", "512M", "1234" */
void kiln_spec_fmt_size(char *buf, size_t size, uint64_t v);

/* Maxima a spec may ask for (the policy issue makes these per project). */
struct kiln_spec_limits {
	uint64_t max_timeout, max_memory, max_disk, max_pids, max_cpus_milli;
};
void kiln_spec_limits_default(struct kiln_spec_limits *l);

struct kiln_spec_error {
	int line, column;  /* 0 when not tied to a node */
	char message[512]; /* "timeout: expected a duration like 10m, got 'soon'" */
};

/* text need not be NUL-terminated and may hold any bytes (it is hostile).
 * 0 and *out (owned by the caller, kiln_spec_free) on success; -1 and *e
 * filled on failure (*out untouched). limits must have non-zero maxima for
 * timeout, memory, disk and pids. No global state: safe from any thread. */
int kiln_spec_parse(const char *text, size_t len, const struct kiln_spec_limits *limits,
		    struct kiln_spec **out, struct kiln_spec_error *e);
void kiln_spec_free(struct kiln_spec *s);
/* The normalised spec (sizes in bytes, timeout in seconds), a new reference
 * or NULL when out of memory:
 *   {"script", "artifacts": [...], "timeout", "resources": {"memory", "pids",
 *    "cpus": 2 or 0.5 or null, "disk"}, "network", "retry", "env": {...}}
 * It is itself a valid spec (JSON is YAML). Dump it with
 * JSON_REAL_PRECISION(15) so that cpus 0.1 prints as 0.1, not
 * 0.10000000000000001 (which would no longer parse as a spec). */
json_t *kiln_spec_to_json(const struct kiln_spec *s);

#ifdef KILN_SPEC_INTERNAL
/*
 * Internal to spec.c and config.c (define KILN_SPEC_INTERNAL before the
 * include): the strict YAML loader both files use. libfyaml's event API
 * builds this small tree because 0.7.12's document API has no start marks
 * for nodes (fy_node_get_start_mark came later), and because seeing events
 * lets aliases, anchors, tags, extra documents and deep nesting be refused
 * before anything is built from them.
 */
enum kiln_ytype { KILN_YSCALAR, KILN_YMAP, KILN_YSEQ };

struct kiln_ynode {
	enum kiln_ytype type;
	int line, column;	  /* 1-based */
	bool plain;		  /* a plain (unquoted, not block) scalar */
	char *text;		  /* scalar: NUL-terminated copy, may hold NULs */
	size_t len;		  /* scalar: bytes in text */
	struct kiln_ynode **kids; /* map: key0, value0, key1, ...; seq: items */
	size_t nkids, cap;
	struct kiln_ynode *parent;
};

/* Loads one document of at most max_bytes. *root is NULL for an empty
 * stream. The caller frees it with kiln_yaml_free. */
int kiln_yaml_load(const char *text, size_t len, size_t max_bytes, struct kiln_ynode **root,
		   struct kiln_spec_error *e);
void kiln_yaml_free(struct kiln_ynode *n);
/* Fills *e with n's position (0 if n is NULL) and the message; returns -1. */
int kiln_yaml_fail(struct kiln_spec_error *e, const struct kiln_ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Moves e's position into the text (libfyaml's can lie past its end); a
 * position with line or column 0 becomes 0:0. */
void kiln_yaml_clamp(const char *text, size_t len, struct kiln_spec_error *e);
bool kiln_yaml_is_null(const struct kiln_ynode *n);
/* "a mapping", "a list", "null" or "a string": for "expected X, got Y". */
const char *kiln_yaml_kind(const struct kiln_ynode *n);
/* A scalar's text fit for a message: control characters escaped, cut at
 * about 60 characters. */
void kiln_yaml_quote(char *buf, size_t size, const char *s, size_t len);

/* Walks a mapping whose keys must be among keys[] (NULL-terminated), each
 * at most once, calling fn with the key's index; "path" is the mapping's
 * name for messages ("" at the top). */
typedef int (*kiln_yaml_field_fn)(void *ctx, size_t idx, const char *name,
				  const struct kiln_ynode *value, struct kiln_spec_error *e);
int kiln_yaml_walk(const struct kiln_ynode *map, const char *path, const char *const *keys,
		   kiln_yaml_field_fn fn, void *ctx, struct kiln_spec_error *e);

/* Typed scalars; name ("resources.memory") starts every message. */
int kiln_yaml_string(const struct kiln_ynode *n, const char *name, size_t max_len, char **out,
		     struct kiln_spec_error *e);
int kiln_yaml_bool(const struct kiln_ynode *n, const char *name, bool *out,
		   struct kiln_spec_error *e);
int kiln_yaml_size(const struct kiln_ynode *n, const char *name, uint64_t max, uint64_t *out,
		   struct kiln_spec_error *e);
int kiln_yaml_uint(const struct kiln_ynode *n, const char *name, uint64_t min, uint64_t max,
		   uint64_t *out, struct kiln_spec_error *e);
int kiln_yaml_duration(const struct kiln_ynode *n, const char *name, uint64_t max, uint64_t *out,
		       struct kiln_spec_error *e);
int kiln_yaml_cpus(const struct kiln_ynode *n, const char *name, uint64_t max_milli,
		   uint64_t *out_milli, struct kiln_spec_error *e);
#endif

#endif
