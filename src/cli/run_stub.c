/* SPDX-License-Identifier: Apache-2.0 */
/* kiln-client has the server verbs only; `kiln run` lives in kiln. */
#include "cli/cli.h"

int cmd_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("run: use 'kiln run' (kiln-client only talks to kilnd)");
	return 2;
}
