/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

int cmd_run(int argc, char **argv);

/* "kiln: " + message on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
