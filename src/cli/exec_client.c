/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `kiln` itself stays lean: `kiln run` links only the sandbox engine. The
 * verbs that talk to kilnd need libcurl (and with it some forty shared
 * libraries, TLS and Kerberos among them), which every `kiln run` would
 * otherwise load at start-up. They live in `kiln-client`; this file hands
 * them over, git-style, with the same arguments.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static int exec_client(int argc, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	char **av = calloc((size_t)argc + 2, sizeof(char *));
	ssize_t n;
	char *slash;

	if (av == NULL) {
		cli_err("out of memory");
		return 1;
	}
	av[0] = "kiln";
	for (int i = 0; i < argc; i++)
		av[i + 1] = argv[i];
	/* Next to this binary (the build tree, or a bindir holding both)... */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/kiln-client", self);
			execv(path, av);
		}
	}
	/* ...or where it is installed. */
	snprintf(path, sizeof(path), "%s/kiln-client", KILN_LIBEXECDIR);
	execv(path, av);
	cli_err("%s: cannot run the client: %s (is kiln-client installed?)", argv[0],
		strerror(errno));
	free(av);
	return 1;
}

int cmd_submit(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_status(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_jobs(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_cancel(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_logs(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_artifacts(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_fetch(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_project(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_token(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_policy(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_egress(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_secret(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_keygen(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_provenance(int argc, char **argv)
{
	return exec_client(argc, argv);
}
int cmd_verify(int argc, char **argv)
{
	return exec_client(argc, argv);
}
