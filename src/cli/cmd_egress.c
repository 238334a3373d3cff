/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln egress JOB                 what the job's build tried to reach
 * kiln egress suggest PROJECT     the allowlist that lets the recorded
 *                                 traffic of PROJECT's builds through
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

#define USAGE                                                                                      \
	"usage: kiln egress JOB [--json]\n"                                                        \
	"       kiln egress suggest PROJECT [--json]\n"                                            \
	"\n"                                                                                       \
	"JOB: every connection the job's build asked kilnd's egress proxy for, and every\n"        \
	"packet that bypassed it (raw TCP, DNS, UDP, ping), allowed or denied, with bytes\n"       \
	"each way. suggest: a policy network section whose allowlist lets through what\n"          \
	"PROJECT's builds asked for (run jobs in audit mode first to record it).\n"                \
	"\n"                                                                                       \
	"      --json             print the server's answer\n" CLIENT_OPTS_HELP

static const struct option opts[] = {
	CLIENT_JSON_OPT,
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

static int show_job(struct kiln_client *c, const char *job, bool json)
{
	struct kiln_error *err = NULL;
	static const char *const hdr[] = {"TIME",   "KIND", "DESTINATION", "ADDRESS",
					  "RESULT", "UP",   "DOWN",	   "REASON"};
	struct cli_table *t;
	json_t *ans = NULL, *v;
	char path[64];
	size_t i;
	long long id;

	if (cli_job_id(job, &id) < 0)
		return 2;
	snprintf(path, sizeof(path), "/v1/jobs/%lld/egress", id);
	if (kiln_client_json(c, "GET", path, NULL, &ans, &err) < 0)
		return cli_fail(&err);
	if (json) {
		cli_print_json(ans);
		json_decref(ans);
		return 0;
	}
	t = cli_table_new(8, hdr);
	json_array_foreach(json_object_get(ans, "attempts"), i, v)
	{
		char when[32], dest[300], up[16], down[16], pbuf[16];
		const char *host = cli_jstr(v, "host", "");
		const char *row[8];

		cli_fmt_time(json_object_get(v, "at"), when, sizeof(when));
		snprintf(dest, sizeof(dest), "%s:%s", host[0] ? host : "-",
			 cli_str(v, "port", pbuf, sizeof(pbuf)));
		cli_fmt_size((uint64_t)json_integer_value(json_object_get(v, "bytes_up")), up,
			     sizeof(up));
		cli_fmt_size((uint64_t)json_integer_value(json_object_get(v, "bytes_down")), down,
			     sizeof(down));
		row[0] = when;
		row[1] = cli_jstr(v, "kind", "?");
		row[2] = dest;
		row[3] = cli_jstr(v, "addr", "-")[0] ? cli_jstr(v, "addr", "-") : "-";
		row[4] = json_is_true(json_object_get(v, "allowed")) ? "allowed" : "denied";
		row[5] = up;
		row[6] = down;
		row[7] = cli_jstr(v, "reason", "");
		if (t != NULL)
			cli_table_add(t, row);
	}
	if (t != NULL) {
		if (json_array_size(json_object_get(ans, "attempts")) == 0)
			printf("job %s made no egress attempts\n", job);
		else
			cli_table_print(t);
		cli_table_free(t);
	}
	json_decref(ans);
	return 0;
}

static int suggest(struct kiln_client *c, const char *project, bool json)
{
	struct kiln_error *err = NULL;
	char *esc = kiln_client_escape(project), *path = NULL;
	json_t *ans = NULL;
	int r;

	if (esc == NULL || asprintf(&path, "/v1/egress/%s/suggest", esc) < 0) {
		free(esc);
		cli_err("out of memory");
		return 1;
	}
	free(esc);
	r = kiln_client_json(c, "GET", path, NULL, &ans, &err);
	free(path);
	if (r < 0)
		return cli_fail(&err);
	if (json)
		cli_print_json(ans);
	else
		printf("# recorded egress of %s's builds, as a policy section (%zu "
		       "destinations)\n%s",
		       project, json_array_size(json_object_get(ans, "allow")),
		       cli_jstr(ans, "policy", ""));
	json_decref(ans);
	return 0;
}

int cmd_egress(int argc, char **argv)
{
	struct kiln_client_args a = {0};
	struct kiln_client *c = NULL;
	int opt, r = 2;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (kiln_client_args_opt(&a, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(USAGE, stdout);
			r = 0;
			goto out;
		}
		cli_err("invalid option (see 'kiln egress --help')");
		goto out;
	}
	if (argc - optind == 2 && strcmp(argv[optind], "suggest") == 0) {
		if ((r = cli_connect(&a, &c)) == 0)
			r = suggest(c, argv[optind + 1], a.json);
	} else if (argc - optind == 1) {
		if ((r = cli_connect(&a, &c)) == 0)
			r = show_job(c, argv[optind], a.json);
	} else {
		cli_err("expected JOB or 'suggest PROJECT' (see 'kiln egress --help')");
	}
out:
	kiln_client_free(c);
	kiln_client_args_free(&a);
	return r;
}
