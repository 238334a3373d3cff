/* SPDX-License-Identifier: Apache-2.0 */
/* kiln logs: a job's log, from the start, optionally following it live. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"

#define USAGE_LOGS                                                                                 \
	"usage: kiln logs [OPTION]... JOB\n"                                                       \
	"\n"                                                                                       \
	"Print JOB's log (its script's stdout and stderr) from the start.\n"                       \
	"\n"                                                                                       \
	"  -f, --follow           keep printing new lines until the job ends\n" CLIENT_OPTS_HELP

/* A broken stream is retried this many times in a row without progress. */
#define FOLLOW_RETRIES 30

static const struct option logs_opts[] = {
	{"follow", no_argument, NULL, 'f'},
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

struct log_sink {
	uint64_t seen; /* bytes of this stream so far */
	uint64_t skip; /* bytes an earlier stream already printed */
	bool write_failed;
};

static int log_write(void *ctx, const char *data, size_t len, struct kiln_error **err)
{
	struct log_sink *s = ctx;

	if (s->seen < s->skip) {
		size_t drop = s->skip - s->seen < len ? (size_t)(s->skip - s->seen) : len;

		data += drop;
		len -= drop;
		s->seen += drop;
	}
	if (len == 0)
		return 0;
	if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
		s->write_failed = true;
		return kiln_error_set(err, errno, "write the log to stdout");
	}
	s->seen += len;
	return 0;
}

static bool state_final(const json_t *job)
{
	static const char *const final[] = {"succeeded", "failed",   "timed_out",
					    "cancelled", "rejected", "interrupted"};
	const char *s = json_string_value(json_object_get(job, "state"));

	for (size_t i = 0; s != NULL && i < sizeof(final) / sizeof(final[0]); i++)
		if (strcmp(s, final[i]) == 0)
			return true;
	return false;
}

int cli_copy_log(struct kiln_client *c, long long id, bool follow, json_t **job,
		 struct kiln_error **err)
{
	char path[96], jpath[64];
	uint64_t printed = 0;
	int tries = 0;

	snprintf(path, sizeof(path), "/v1/jobs/%lld/log%s", id, follow ? "?follow=1" : "");
	snprintf(jpath, sizeof(jpath), "/v1/jobs/%lld", id);
	if (job != NULL)
		*job = NULL;
	for (;;) {
		struct log_sink s = {.skip = printed};
		json_t *j = NULL;
		int r = kiln_client_get_stream(c, path, follow, log_write, &s, NULL, err);

		if (s.seen > printed) {
			printed = s.seen;
			tries = 0;
		}
		/* An answer from the server (404, 403, ...) or a failed write to
		 * stdout is final; a broken connection is retried below. */
		if (r < 0 && (!follow || kiln_client_last_status(c) >= 400 || s.write_failed))
			return -1;
		if (!follow && job == NULL)
			return 0;
		kiln_error_free(err);
		if (kiln_client_json(c, "GET", jpath, NULL, &j, err) < 0) {
			if (kiln_client_last_status(c) >= 400 || ++tries > FOLLOW_RETRIES)
				return -1;
			kiln_error_free(err);
		} else if (!follow || state_final(j)) {
			if (job != NULL)
				*job = j;
			else
				json_decref(j);
			return 0;
		} else if (++tries > FOLLOW_RETRIES) {
			json_decref(j);
			return kiln_error_set(
				err, 0,
				"the log stream of job %lld keeps ending while the job "
				"is still %s",
				id, json_string_value(json_object_get(j, "state")));
		}
		json_decref(j);
		if (tries == 1 && r < 0)
			cli_err("lost the log stream of job %lld; reconnecting", id);
		sleep(1);
	}
}

int cmd_logs(int argc, char **argv)
{
	struct kiln_client_args args = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	bool follow = false;
	long long id;
	int opt, rc = 2;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "fh", logs_opts, NULL)) != -1) {
		if (kiln_client_args_opt(&args, opt, optarg))
			continue;
		switch (opt) {
		case 'f': follow = true; break;
		case 'h':
			fputs(USAGE_LOGS, stdout);
			rc = 0;
			goto out;
		default: cli_err("invalid option (see 'kiln logs --help')"); goto out;
		}
	}
	if (argc - optind != 1) {
		cli_err("expected one JOB (see 'kiln logs --help')");
		goto out;
	}
	if (cli_job_id(argv[optind], &id) < 0)
		goto out;
	rc = cli_connect(&args, &c);
	if (rc != 0)
		goto out;
	rc = cli_copy_log(c, id, follow, NULL, &err) < 0 ? cli_fail(&err) : 0;
out:
	kiln_client_free(c);
	kiln_client_args_free(&args);
	return rc;
}
