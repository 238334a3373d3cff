/* SPDX-License-Identifier: Apache-2.0 */
/* kiln status, kiln jobs, kiln cancel: reading and cancelling jobs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/cleanup.h"
#include "core/util.h"

#define USAGE_STATUS                                                                               \
	"usage: kiln status [OPTION]... JOB\n"                                                     \
	"\n"                                                                                       \
	"Show one job: state, outcome, times, sizes.\n"                                            \
	"\n"                                                                                       \
	"      --json             print the server's job object\n" CLIENT_OPTS_HELP

#define USAGE_JOBS                                                                                 \
	"usage: kiln jobs [OPTION]...\n"                                                           \
	"\n"                                                                                       \
	"List jobs, newest first.\n"                                                               \
	"\n"                                                                                       \
	"  -p, --project NAME     only this project's jobs\n"                                      \
	"  -s, --state STATE      only jobs in STATE (queued, running, succeeded, failed,\n"       \
	"                         timed_out, cancelled, rejected, interrupted)\n"                  \
	"  -n, --limit N          at most N jobs (default 50, at most 500)\n"                      \
	"      --json             print the server's answer\n" CLIENT_OPTS_HELP

#define USAGE_CANCEL                                                                               \
	"usage: kiln cancel [OPTION]... JOB\n"                                                     \
	"\n"                                                                                       \
	"Cancel JOB: a queued job at once, a running one as soon as its sandbox is gone.\n"        \
	"\n"                                                                                       \
	"      --json             print the server's job object\n" CLIENT_OPTS_HELP

static const struct option json_opts[] = {
	CLIENT_JSON_OPT,
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

static const struct option jobs_opts[] = {
	{"project", required_argument, NULL, 'p'},
	{"state", required_argument, NULL, 's'},
	{"limit", required_argument, NULL, 'n'},
	CLIENT_JSON_OPT,
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

void cli_job_outcome(const json_t *job, char *buf, size_t len)
{
	const char *state = cli_jstr(job, "state", ""), *reason = cli_jstr(job, "reason", "");
	const json_t *code = json_object_get(job, "exit_code");

	if (strcmp(state, "failed") != 0 && strcmp(state, "succeeded") != 0) {
		snprintf(buf, len, "%s", state[0] ? state : "?");
	} else if (strcmp(reason, "exited") == 0 && json_is_integer(code)) {
		snprintf(buf, len, "%s (exit %lld)", state, (long long)json_integer_value(code));
	} else if (reason[0] != '\0') {
		snprintf(buf, len, "%s (%s)", state, reason);
	} else {
		snprintf(buf, len, "%s", state);
	}
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
}

/* Common shape of the verbs that take one JOB. */
static int parse_one_job(int argc, char **argv, const char *usage, const char *verb,
			 struct kiln_client_args *args, long long *id)
{
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", json_opts, NULL)) != -1) {
		if (kiln_client_args_opt(args, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		cli_err("invalid option (see 'kiln %s --help')", verb);
		return 2;
	}
	if (argc - optind != 1) {
		cli_err("expected one JOB (see 'kiln %s --help')", verb);
		return 2;
	}
	return cli_job_id(argv[optind], id) < 0 ? 2 : -1;
}

static void print_status(const json_t *job)
{
	char buf[256], t1[64], t2[64], size[16];
	const json_t *err = json_object_get(job, "error");
	long long took;

	printf("%-10s%s\n", "job", cli_str(job, "id", buf, sizeof(buf)));
	printf("%-10s%s\n", "project", cli_str(job, "project", buf, sizeof(buf)));
	cli_job_outcome(job, buf, sizeof(buf));
	printf("%-10s%s\n", "state", buf);
	cli_fmt_time(json_object_get(job, "created_at"), t1, sizeof(t1));
	printf("%-10s%s\n", "created", t1);
	cli_fmt_time(json_object_get(job, "started_at"), t1, sizeof(t1));
	printf("%-10s%s\n", "started", t1);
	cli_fmt_time(json_object_get(job, "finished_at"), t1, sizeof(t1));
	took = cli_time_diff(json_object_get(job, "started_at"),
			     json_object_get(job, "finished_at"));
	cli_fmt_duration(took, t2, sizeof(t2));
	if (took >= 0)
		printf("%-10s%s (took %s)\n", "finished", t1, t2);
	else
		printf("%-10s%s\n", "finished", t1);
	cli_fmt_size((uint64_t)json_integer_value(json_object_get(job, "source_bytes")), size,
		     sizeof(size));
	printf("%-10s%s, sha256 %s\n", "source", size,
	       cli_str(job, "source_sha256", buf, sizeof(buf)));
	cli_fmt_size((uint64_t)json_integer_value(json_object_get(job, "log_bytes")), size,
		     sizeof(size));
	printf("%-10s%s%s\n", "log", size,
	       json_is_true(json_object_get(job, "log_truncated")) ? " (truncated)" : "");
	if (err != NULL && !json_is_null(err)) {
		if (json_is_string(err))
			cli_str(job, "error", buf, sizeof(buf));
		else
			cli_str(err, "message", buf, sizeof(buf));
		printf("%-10s%s\n", "error", buf);
	}
}

int cmd_status(int argc, char **argv)
{
	struct kiln_client_args args = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	json_t *job = NULL;
	char path[64];
	long long id = 0;
	int rc = parse_one_job(argc, argv, USAGE_STATUS, "status", &args, &id);

	if (rc >= 0)
		goto out;
	rc = cli_connect(&args, &c);
	if (rc != 0)
		goto out;
	snprintf(path, sizeof(path), "/v1/jobs/%lld", id);
	if (kiln_client_json(c, "GET", path, NULL, &job, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (args.json)
		cli_print_json(job);
	else
		print_status(job);
out:
	json_decref(job);
	kiln_client_free(c);
	kiln_client_args_free(&args);
	return rc;
}

static int print_jobs(const json_t *jobs)
{
	static const char *const hdr[] = {"ID",	     "PROJECT",	 "STATE",
					  "CREATED", "DURATION", "SOURCE"};
	struct cli_table *t = cli_table_new(6, hdr);
	const json_t *job;
	size_t i;

	if (t == NULL)
		return -1;
	json_array_foreach(jobs, i, job)
	{
		char id[32], project[128], state[128], created[64], took[32], size[16];
		const char *row[6] = {id, project, state, created, took, size};
		const json_t *start = json_object_get(job, "started_at");
		const json_t *end = json_object_get(job, "finished_at");
		long long secs = -1;

		cli_str(job, "id", id, sizeof(id));
		cli_str(job, "project", project, sizeof(project));
		cli_job_outcome(job, state, sizeof(state));
		cli_fmt_time(json_object_get(job, "created_at"), created, sizeof(created));
		if (json_is_string(start) && json_is_string(end)) {
			secs = cli_time_diff(start, end);
		} else if (json_is_string(start)) {
			char now[32];
			time_t t0 = time(NULL);
			struct tm tm;
			json_t *jnow;

			gmtime_r(&t0, &tm);
			strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
			jnow = json_string(now);
			secs = cli_time_diff(start, jnow);
			json_decref(jnow);
		}
		cli_fmt_duration(secs, took, sizeof(took));
		cli_fmt_size((uint64_t)json_integer_value(json_object_get(job, "source_bytes")),
			     size, sizeof(size));
		if (cli_table_add(t, row) < 0) {
			cli_table_free(t);
			return -1;
		}
	}
	cli_table_print(t);
	cli_table_free(t);
	return 0;
}

int cmd_jobs(int argc, char **argv)
{
	struct kiln_client_args args = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	const char *project = NULL, *state = NULL;
	cleanup_free char *path = NULL;
	cleanup_free char *ep = NULL;
	cleanup_free char *es = NULL;
	json_t *ans = NULL;
	uint64_t limit = 0;
	int opt, rc = 2;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:s:n:h", jobs_opts, NULL)) != -1) {
		if (kiln_client_args_opt(&args, opt, optarg))
			continue;
		switch (opt) {
		case 'p': project = optarg; break;
		case 's': state = optarg; break;
		case 'n':
			if (kiln_parse_uint(optarg, 1, 500, &limit, &err) < 0) {
				cli_err("--limit: %s", err->msg);
				kiln_error_free(&err);
				goto out;
			}
			break;
		case 'h':
			fputs(USAGE_JOBS, stdout);
			rc = 0;
			goto out;
		default: cli_err("invalid option (see 'kiln jobs --help')"); goto out;
		}
	}
	if (optind < argc) {
		cli_err("unexpected argument '%s' (see 'kiln jobs --help')", argv[optind]);
		goto out;
	}
	rc = cli_connect(&args, &c);
	if (rc != 0)
		goto out;
	if (project == NULL)
		project = kiln_client_default_project(c);
	ep = project ? kiln_client_escape(project) : NULL;
	es = state ? kiln_client_escape(state) : NULL;
	if ((project && !ep) || (state && !es) ||
	    asprintf(&path, "/v1/jobs?limit=%llu%s%s%s%s", (unsigned long long)(limit ? limit : 50),
		     ep ? "&project=" : "", ep ? ep : "", es ? "&state=" : "", es ? es : "") < 0) {
		path = NULL;
		cli_err("out of memory");
		rc = 1;
		goto out;
	}
	if (kiln_client_json(c, "GET", path, NULL, &ans, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (args.json) {
		cli_print_json(ans);
	} else if (!json_is_array(json_object_get(ans, "jobs"))) {
		cli_err("server %s answered without a job list", kiln_client_server(c));
		rc = 1;
	} else if (print_jobs(json_object_get(ans, "jobs")) < 0) {
		cli_err("out of memory");
		rc = 1;
	}
out:
	json_decref(ans);
	kiln_client_free(c);
	kiln_client_args_free(&args);
	return rc;
}

int cmd_cancel(int argc, char **argv)
{
	struct kiln_client_args args = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	json_t *job = NULL;
	char path[64], state[128];
	long long id = 0;
	int rc = parse_one_job(argc, argv, USAGE_CANCEL, "cancel", &args, &id);

	if (rc >= 0)
		goto out;
	rc = cli_connect(&args, &c);
	if (rc != 0)
		goto out;
	snprintf(path, sizeof(path), "/v1/jobs/%lld/cancel", id);
	if (kiln_client_json(c, "POST", path, NULL, &job, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (args.json) {
		cli_print_json(job);
	} else {
		cli_job_outcome(job, state, sizeof(state));
		if (strcmp(state, "cancelled") == 0)
			printf("job %lld cancelled\n", id);
		else
			printf("job %lld: cancel requested (%s)\n", id, state);
	}
out:
	json_decref(job);
	kiln_client_free(c);
	kiln_client_args_free(&args);
	return rc;
}
