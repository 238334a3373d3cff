/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kiln CLI's side of the kilnd HTTP API (docs/api.md): where the server
 * is and which token to use, one libcurl handle, JSON requests, streamed
 * downloads and the multipart job upload. Also the small presentation
 * helpers (tables, dates, sizes) every read command shares.
 *
 * Where the server and token come from, first match wins:
 *   --server URL / --token TOKEN      (before or after the verb)
 *   KILN_SERVER / KILN_TOKEN          (environment)
 *   $XDG_CONFIG_HOME/kiln/config      (default ~/.config/kiln/config), lines
 *                                     "server = URL", "token = ...",
 *                                     "project = NAME", "ca_cert = FILE";
 *                                     '#' starts a comment.
 *                                     Refused when group or others may read
 *                                     or write it: it holds a token.
 *
 * KILN_CA_CERT (or ca_cert) names a PEM file of CAs to trust for https://.
 * Plain http:// is refused for anything but a loopback host unless
 * KILN_INSECURE=1: the token would cross the network in clear text.
 *
 * The token is never printed: with KILN_DEBUG=1 the request headers are
 * shown with the token's secret masked. Responses that are buffered (JSON,
 * error bodies) are capped at 16 MiB; redirects are never followed, so the
 * token only ever goes to the server that was named.
 */
#ifndef KILN_CLI_CLIENT_H
#define KILN_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KILN_CLIENT_MAX_JSON (16u << 20)

/* Long options every verb that talks to the server accepts. */
enum {
	CLIENT_OPT_SERVER = 0x1000,
	CLIENT_OPT_TOKEN,
	CLIENT_OPT_JSON,
};
/* clang-format off */
#define CLIENT_LONG_OPTS \
	{"server", required_argument, NULL, CLIENT_OPT_SERVER}, \
	{"token", required_argument, NULL, CLIENT_OPT_TOKEN}, \
	{"help", no_argument, NULL, 'h'}
#define CLIENT_JSON_OPT {"json", no_argument, NULL, CLIENT_OPT_JSON}
#define CLIENT_OPTS_HELP \
	"      --server URL       the kilnd server (default: $KILN_SERVER, then the config file)\n" \
	"      --token TOKEN      API token (default: $KILN_TOKEN, then the config file)\n" \
	"  -h, --help             show this help\n"
/* clang-format on */

/* What the command line said about the server. Owns token (wiped on free). */
struct kiln_client_args {
	const char *server; /* borrowed from argv */
	char *token;	    /* owned copy; the argv string is overwritten */
	bool json;
};

/* Handle CLIENT_OPT_* (c), copying and wiping a --token argument in place so
 * it does not linger in /proc/PID/cmdline. Returns true if c was one. */
bool kiln_client_args_opt(struct kiln_client_args *a, int c, char *arg);
void kiln_client_args_free(struct kiln_client_args *a);

struct kiln_client;

/* Resolve server and token (see above) and set up the handle. */
int kiln_client_open(const struct kiln_client_args *a, struct kiln_client **out,
		     struct kiln_error **err);
void kiln_client_free(struct kiln_client *c);
/* The server's base URL (for messages). */
const char *kiln_client_server(const struct kiln_client *c);
/* "project = " from the config file or $KILN_PROJECT, else NULL. Borrowed. */
const char *kiln_client_default_project(const struct kiln_client *c);
/* HTTP status of the last answer (0 if none arrived) and the server's error
 * code ("not_found", ...) of the last error answer, or "". */
long kiln_client_last_status(const struct kiln_client *c);
const char *kiln_client_last_error_code(const struct kiln_client *c);

/* A request with an optional JSON body (borrowed). On a 2xx answer *out gets
 * the parsed body (NULL when the answer is empty, e.g. 204). On any error,
 * the message is the server's error.message when it sent one. path starts
 * with "/v1/" and is already escaped. */
int kiln_client_json(struct kiln_client *c, const char *method, const char *path, json_t *body,
		     json_t **out, struct kiln_error **err);

/* Receives a streamed body; returns 0, or -1 with *err set to stop. */
typedef int (*kiln_client_sink_fn)(void *ctx, const char *data, size_t len,
				   struct kiln_error **err);

/* GET path and hand the body to sink as it arrives (a 4xx/5xx body is not
 * handed over: it becomes the error). Without a time limit when
 * long_lived (log following); otherwise a stalled transfer (no byte for
 * 60 s) fails. If sha_header is not NULL it receives the Kiln-Sha256
 * answer header (65 bytes, "" when absent). */
int kiln_client_get_stream(struct kiln_client *c, const char *path, bool long_lived,
			   kiln_client_sink_fn sink, void *ctx, char *sha_header,
			   struct kiln_error **err);

/* POST /v1/jobs as multipart/form-data: project (omitted when NULL), spec
 * and source, the archive streamed from fd (borrowed; read with pread from
 * offset 0, size bytes). A signed submission adds manifest and signature
 * (both or neither; docs/signing.md). With progress, a bar is drawn on
 * stderr. */
int kiln_client_submit(struct kiln_client *c, const char *project, const char *spec,
		       size_t spec_len, int archive_fd, uint64_t archive_size, const char *manifest,
		       const char *signature, bool progress, json_t **job, struct kiln_error **err);

/* URL-escape one path segment or query value. Caller frees. NULL on OOM. */
char *kiln_client_escape(const char *s);

/* --- helpers for the verbs ------------------------------------------------ */

/* Open the client for a verb; on failure print "kiln: ..." and return 1
 * (the exit status), else 0. */
int cli_connect(const struct kiln_client_args *a, struct kiln_client **c);
/* Print *err as "kiln: ...", free it and return 1 (the exit status). */
int cli_fail(struct kiln_error **err);
/* A JOB argument: a positive decimal id. On error prints a usage message
 * and returns -1 (the verb then exits 2). */
int cli_job_id(const char *s, long long *id);

/* --- presentation ------------------------------------------------------- */

/* Pretty-print a JSON value on stdout (the --json output). */
int cli_print_json(const json_t *v);
/* "2026-11-23T17:40:01Z" -> local "2026-11-23 18:40:01"; "-" for null. */
void cli_fmt_time(const json_t *v, char *buf, size_t len);
/* Seconds between two API timestamps, or -1. */
long long cli_time_diff(const json_t *from, const json_t *to);
/* 90061 -> "1d1h1m1s", 83 -> "1m23s". */
void cli_fmt_duration(long long secs, char *buf, size_t len);
/* 1536 -> "1.5K"; exact below 1024 ("812B"). */
void cli_fmt_size(uint64_t bytes, char *buf, size_t len);
/* Object member when it is a string (borrowed from o), else dflt. */
const char *cli_jstr(const json_t *o, const char *key, const char *dflt);
/* Object member as a string ("" when absent or null; integers printed). */
const char *cli_str(const json_t *o, const char *key, char *buf, size_t len);

/* An aligned text table: add rows of ncols strings (copied), then print. */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols, const char *const *header);
int cli_table_add(struct cli_table *t, const char *const *row);
void cli_table_print(struct cli_table *t);
void cli_table_free(struct cli_table *t);

#endif
