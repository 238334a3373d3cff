/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct kiln_client;

int cmd_run(int argc, char **argv);
/* Verbs that talk to kilnd (cmd_submit.c, cmd_jobs.c, cmd_logs.c,
 * cmd_artifacts.c, cmd_admin.c). Each returns the process's exit status:
 * 0, 1 for an error (one line "kiln: ..."), 2 for a bad command line. */
int cmd_submit(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_artifacts(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_project(int argc, char **argv);
int cmd_token(int argc, char **argv);
/* cmd_policy.c: kiln policy show|reload, kiln secret set|list|rm */
int cmd_policy(int argc, char **argv);
/* cmd_egress.c: kiln egress JOB | suggest PROJECT */
int cmd_egress(int argc, char **argv);
int cmd_secret(int argc, char **argv);
/* cmd_trust.c: signing and provenance (docs/signing.md, docs/provenance.md) */
int cmd_keygen(int argc, char **argv);
int cmd_provenance(int argc, char **argv);
int cmd_verify(int argc, char **argv);
/* Read a whole regular file of at most max bytes (NUL-terminated). */
int cli_read_file(const char *path, size_t max, char **out, size_t *len, struct kiln_error **err);
/* The canonical submission manifest (malloc'd) for this project, spec and
 * packed source (fd, size bytes from offset 0), with a fresh nonce. */
int cli_make_manifest(const char *project, const char *spec, size_t spec_len, int fd, uint64_t size,
		      char **out, struct kiln_error **err);
/* A minisign signature (prehashed) of text with the secret key in keyfile;
 * an encrypted key's password comes from $KILN_SIGN_PASSWORD or the
 * terminal. */
int cli_sign(const char *keyfile, const char *text, char **sig, struct kiln_error **err);

/* "kiln: " + message on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy job id's log to stdout (cmd_logs.c). With follow, until the job has
 * ended, reconnecting (and skipping what was already printed) if the
 * stream breaks before that; then *job (if not NULL) is the final job
 * object (the caller owns it). */
int cli_copy_log(struct kiln_client *c, long long id, bool follow, json_t **job,
		 struct kiln_error **err);
/* "failed (exited 2)", "timed_out", "cancelled", ...: state and outcome. */
void cli_job_outcome(const json_t *job, char *buf, size_t len);

/* The exit status `kiln submit --follow` reports for a finished job
 * (cmd_submit.c): its exit_code if it exited; 124 timed out; 130
 * cancelled; 125 archive refused, rejected, interrupted or an internal
 * error; 1 when it did not exit normally (signal, limit). */
int cli_job_exit_status(const json_t *job);

#endif
