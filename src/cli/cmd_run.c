/* SPDX-License-Identifier: Apache-2.0 */
/* kiln run: run one command in the sandbox engine. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/sys.h"
#include "core/util.h"
#include "sandbox/sandbox.h"

#define USAGE_RUN                                                                                  \
	"usage: kiln run [OPTION]... [--] COMMAND [ARG]...\n"                                      \
	"\n"                                                                                       \
	"Run COMMAND in a fresh sandbox: its own user, mount, pid, network, ipc, uts and\n"        \
	"cgroup namespaces, a read-only root, seccomp, Landlock, no capabilities, limits.\n"       \
	"\n"                                                                                       \
	"  -s, --source DIR       copy DIR's contents to /workspace (the working directory);\n"    \
	"                         the build's writes never reach DIR\n"                            \
	"      --source-archive FILE  unpack the tar archive FILE (.tar, .tar.gz, .xz, .zst)\n"    \
	"                         into /workspace, inside the sandbox (exit 65 if refused)\n"      \
	"  -o, --out DIR          afterwards, export /workspace/out into DIR (absent or empty):\n" \
	"                         files and directories, symlinks recreated (never followed),\n"   \
	"                         setuid/setgid/sticky bits and devices dropped\n"                 \
	"      --bind SRC:DST     bind host path SRC read-write at DST (outside the disk limit)\n" \
	"      --ro-bind SRC:DST  bind host path SRC read-only at DST\n"                           \
	"      --root DIR         system directories (/usr, /bin, /lib*, /etc allowlist) from\n"   \
	"                         DIR instead of the host\n"                                       \
	"      --env NAME=VALUE   set a variable (repeatable); nothing else is inherited\n"        \
	"      --memory SIZE      memory limit, swap included (default 2G)\n"                      \
	"      --pids N           process/thread limit (default 1024)\n"                           \
	"      --cpus N           CPU quota, e.g. 2 or 0.5 (default: none)\n"                      \
	"      --disk SIZE        /workspace + /tmp + $HOME together (default 4G)\n"               \
	"      --timeout SECONDS  wall-clock limit, also 30s/10m/2h (default 3600)\n"              \
	"      --output-limit SIZE stdout+stderr limit (default 64M)\n"                            \
	"      --fake-root        run as uid 0 inside (still no capabilities)\n"                   \
	"      --report FILE      write a JSON report of the run to FILE\n"                        \
	"  -q, --quiet            no summary line on stderr when the command fails\n"              \
	"  -h, --help             show this help\n"                                                \
	"\n"                                                                                       \
	"Exit status: the command's own; 128+N if killed by signal N; 124 on timeout;\n"           \
	"125 if the sandbox could not be set up; 126/127 if COMMAND cannot run / is missing.\n"

enum {
	OPT_BIND = 256,
	OPT_RO_BIND,
	OPT_ROOT,
	OPT_ENV,
	OPT_MEMORY,
	OPT_PIDS,
	OPT_CPUS,
	OPT_DISK,
	OPT_TIMEOUT,
	OPT_OUTPUT_LIMIT,
	OPT_FAKE_ROOT,
	OPT_REPORT,
	OPT_SOURCE_ARCHIVE,
};

static const struct option run_opts[] = {
	{"source", required_argument, NULL, 's'},
	{"out", required_argument, NULL, 'o'},
	{"bind", required_argument, NULL, OPT_BIND},
	{"ro-bind", required_argument, NULL, OPT_RO_BIND},
	{"root", required_argument, NULL, OPT_ROOT},
	{"env", required_argument, NULL, OPT_ENV},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"pids", required_argument, NULL, OPT_PIDS},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"disk", required_argument, NULL, OPT_DISK},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"output-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},
	{"fake-root", no_argument, NULL, OPT_FAKE_ROOT},
	{"report", required_argument, NULL, OPT_REPORT},
	{"source-archive", required_argument, NULL, OPT_SOURCE_ARCHIVE},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int cancel_fd = -1;

static void on_signal(int sig)
{
	char c = (char)sig;

	if (cancel_fd >= 0 && write(cancel_fd, &c, 1) < 0) {
		/* nothing more a signal handler can do */
	}
}

static int add_bind(struct kiln_sandbox *sb, const char *arg, bool ro, struct kiln_error **err)
{
	char *copy = strdup(arg);
	char *colon = copy ? strchr(copy, ':') : NULL;
	int r;

	if (colon == NULL) {
		free(copy);
		return kiln_error_set(err, EINVAL, "--%s '%s': expected SRC:DST",
				      ro ? "ro-bind" : "bind", arg);
	}
	*colon = '\0';
	r = kiln_sandbox_add_bind(sb, copy, colon + 1, ro, err);
	free(copy);
	return r;
}

static int set_size(struct kiln_sandbox *sb, enum kiln_limit l, const char *opt, const char *v,
		    struct kiln_error **err)
{
	uint64_t x;

	if (kiln_parse_size(v, 1ULL << 50, &x, err) < 0 ||
	    kiln_sandbox_set_limit(sb, l, x, true, err) < 0)
		return kiln_error_prefix(err, "%s", opt);
	return 0;
}

static int parse_run(struct kiln_sandbox *sb, int argc, char **argv, const char **report,
		     bool *quiet, struct kiln_error **err)
{
	uint64_t v;
	int c;

	optind = 1;
	/* "+": stop at the first non-option, so COMMAND's own options are its own. */
	while ((c = getopt_long(argc, argv, "+s:o:qh", run_opts, NULL)) != -1) {
		int r = 0;

		switch (c) {
		case 's': r = kiln_sandbox_set_source(sb, optarg, err); break;
		case 'o': r = kiln_sandbox_set_output_dir(sb, optarg, err); break;
		case OPT_BIND: r = add_bind(sb, optarg, false, err); break;
		case OPT_RO_BIND: r = add_bind(sb, optarg, true, err); break;
		case OPT_ROOT: r = kiln_sandbox_set_root(sb, optarg, err); break;
		case OPT_ENV: r = kiln_sandbox_add_env(sb, optarg, err); break;
		case OPT_MEMORY:
			r = set_size(sb, KILN_LIMIT_MEMORY, "--memory", optarg, err);
			break;
		case OPT_DISK: r = set_size(sb, KILN_LIMIT_DISK, "--disk", optarg, err); break;
		case OPT_OUTPUT_LIMIT:
			r = set_size(sb, KILN_LIMIT_OUTPUT, "--output-limit", optarg, err);
			break;
		case OPT_PIDS:
			r = kiln_parse_uint(optarg, 2, 1u << 22, &v, err);
			if (r == 0)
				r = kiln_sandbox_set_limit(sb, KILN_LIMIT_PIDS, v, true, err);
			if (r < 0)
				kiln_error_prefix(err, "--pids");
			break;
		case OPT_CPUS:
			r = kiln_parse_cpus(optarg, 1024 * 1000, &v, err);
			if (r == 0)
				r = kiln_sandbox_set_limit(sb, KILN_LIMIT_CPUS, v, true, err);
			if (r < 0)
				kiln_error_prefix(err, "--cpus");
			break;
		case OPT_TIMEOUT:
			r = kiln_parse_duration(optarg, false, 366ULL * 86400, &v, err);
			if (r == 0)
				r = kiln_sandbox_set_limit(sb, KILN_LIMIT_TIMEOUT, v, true, err);
			if (r < 0)
				kiln_error_prefix(err, "--timeout");
			break;
		case OPT_FAKE_ROOT: kiln_sandbox_set_fake_root(sb, true); break;
		case OPT_REPORT: *report = optarg; break;
		case OPT_SOURCE_ARCHIVE: {
			int fd = open(optarg, O_RDONLY | O_CLOEXEC | O_NOCTTY);

			if (fd < 0) {
				r = kiln_error_set(err, errno, "--source-archive %s", optarg);
				break;
			}
			r = kiln_sandbox_set_source_archive(sb, fd, 200000, 1024, 0, err);
			close(fd);
			break;
		}
		case 'q': *quiet = true; break;
		case 'h': fputs(USAGE_RUN, stdout); exit(0);
		default:
			return kiln_error_set(err, EINVAL,
					      "invalid option (see 'kiln run --help')");
		}
		if (r < 0)
			return -1;
	}
	if (optind >= argc)
		return kiln_error_set(err, EINVAL, "no command given (see 'kiln run --help')");
	return kiln_sandbox_set_command(sb, argv + optind, err);
}

static const char *reason_text(enum kiln_reason r)
{
	switch (r) {
	case KILN_REASON_TIMEOUT: return "timeout reached";
	case KILN_REASON_MEMORY: return "memory limit reached";
	case KILN_REASON_PIDS: return "process limit reached";
	case KILN_REASON_DISK: return "disk limit reached";
	case KILN_REASON_OUTPUT_LIMIT: return "output limit reached";
	case KILN_REASON_CANCELLED: return "cancelled";
	case KILN_REASON_ARCHIVE: return "source archive refused";
	default: return kiln_reason_name(r);
	}
}

static int write_report(const char *path, const struct kiln_result *r)
{
	char *json = kiln_result_to_json(r);
	int fd, rc = 0;

	if (json == NULL)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || kiln_write_all(fd, json, strlen(json)) < 0 ||
	    kiln_write_all(fd, "\n", 1) < 0) {
		cli_err("--report %s: %s", path, strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	free(json);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	struct kiln_sandbox *sb = kiln_sandbox_new();
	struct kiln_result *res = NULL;
	struct kiln_error *err = NULL;
	const char *report = NULL;
	bool quiet = false;
	struct sigaction sa;
	int code;

	if (sb == NULL) {
		cli_err("out of memory");
		return KILN_EXIT_SETUP;
	}
	if (parse_run(sb, argc, argv, &report, &quiet, &err) < 0) {
		cli_err("%s", err->msg);
		kiln_error_free(&err);
		kiln_sandbox_free(sb);
		return 2;
	}
	cancel_fd = kiln_sandbox_cancel_fd(sb);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (kiln_sandbox_run(sb, &res, &err) < 0) {
		cli_err("%s", err->msg);
		kiln_error_free(&err);
		kiln_sandbox_free(sb);
		return KILN_EXIT_SETUP;
	}
	code = res->exit_code;
	if (res->not_applied && res->not_applied[0] && !quiet) {
		for (size_t i = 0; res->not_applied[i]; i++)
			cli_err("warning: not applied: %s", res->not_applied[i]);
	}
	if (!quiet && res->reason != KILN_REASON_EXITED && res->reason != KILN_REASON_SIGNALED)
		cli_err("stopped: %s (exit %d)", reason_text(res->reason), code);
	if (res->archive_error && !quiet)
		cli_err("source archive refused: %s", res->archive_error);
	if (res->export_error) {
		cli_err("export of /workspace/out failed: %s", res->export_error);
		if (code == 0)
			code = 1;
	}
	for (size_t i = 0; res->export_skipped && res->export_skipped[i]; i++)
		cli_err("export: skipped %s", res->export_skipped[i]);
	if (report && write_report(report, res) < 0 && code == 0)
		code = 1;
	kiln_result_free(res);
	kiln_sandbox_free(sb);
	return code;
}
