/* SPDX-License-Identifier: Apache-2.0 */
/* kiln: one verb per file (cmd_*.c); this file only dispatches. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

void cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("kiln: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fputs("usage: kiln COMMAND [OPTION]...\n"
	      "\n"
	      "commands:\n"
	      "  run        run a command in the sandbox (kiln run --help)\n"
	      "\n"
	      "  submit     pack a source tree and submit it as a job\n"
	      "  status     show a job\n"
	      "  jobs       list jobs\n"
	      "  logs       print (or follow) a job's log\n"
	      "  cancel     cancel a job\n"
	      "  artifacts  list a job's artifacts\n"
	      "  fetch      download a job's artifacts, checking their SHA-256\n"
	      "  project    create or list projects (admin)\n"
	      "  token      create, list or revoke API tokens (admin)\n"
	      "  policy     show a project's policy, reload the policies\n"
	      "  egress     a job's network attempts; suggest a project's allowlist\n"
	      "  secret     set, list or remove a project's secrets (admin)\n"
	      "  keygen     create a minisign key pair for signed submissions\n"
	      "  provenance download a job's signed SLSA provenance\n"
	      "  verify     check artifacts against signed provenance (offline)\n"
	      "\n"
	      "  help       show this help\n"
	      "  version    print the version\n"
	      "\n"
	      "The server and token come from --server/--token, KILN_SERVER/KILN_TOKEN or\n"
	      "$XDG_CONFIG_HOME/kiln/config ('server = URL', 'token = ...', mode 0600).\n"
	      "Each command has --help.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} verbs[] = {
		{"run", cmd_run},
		{"submit", cmd_submit},
		{"status", cmd_status},
		{"jobs", cmd_jobs},
		{"logs", cmd_logs},
		{"cancel", cmd_cancel},
		{"artifacts", cmd_artifacts},
		{"fetch", cmd_fetch},
		{"project", cmd_project},
		{"token", cmd_token},
		{"policy", cmd_policy},
		{"egress", cmd_egress},
		{"secret", cmd_secret},
		{"keygen", cmd_keygen},
		{"provenance", cmd_provenance},
		{"verify", cmd_verify},
	};

	for (size_t i = 0; argc >= 2 && i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[1], verbs[i].name) == 0)
			return verbs[i].fn(argc - 1, argv + 1);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("kiln %s\n", KILN_VERSION);
		return 0;
	}
	cli_err("unknown command '%s' (see 'kiln help')", argv[1]);
	return 2;
}
