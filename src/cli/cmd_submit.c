/* SPDX-License-Identifier: Apache-2.0 */
/* kiln submit: pack a source tree, upload it with its kiln.yml as a job. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/pack.h"
#include "core/cleanup.h"
#include "core/sys.h"

#define SPEC_MAX_BYTES (1u << 20) /* the server's own limit is lower (64K) */

#define USAGE_SUBMIT                                                                               \
	"usage: kiln submit [OPTION]... [DIR]\n"                                                   \
	"\n"                                                                                       \
	"Pack DIR (default: the current directory) and submit it as a job, with\n"                 \
	"DIR/kiln.yml as its spec; print the job id.\n"                                            \
	"\n"                                                                                       \
	"The archive is a deterministic tar.gz: symbolic links are stored as links (never\n"       \
	"followed), devices, fifos and sockets are refused, and paths matching DIR/.kilnignore\n"  \
	"(gitignore-like: '#' comments, '*.o', 'dir/', '/anchored', 'a/**/b', '!negation')\n"      \
	"are left out.\n"                                                                          \
	"\n"                                                                                       \
	"  -p, --project NAME     the job's project (default: $KILN_PROJECT, then 'project ='\n"   \
	"                         in the config file)\n"                                           \
	"  -f, --follow           stream the job's log until it ends, then exit with the\n"        \
	"                         job's status\n"                                                  \
	"      --json             print the job object instead of its id\n"                        \
	"\n"                                                                                       \
	"Signed submissions (docs/signing.md):\n"                                                  \
	"      --sign KEYFILE     sign the submission manifest with a minisign secret key\n"       \
	"                         (kiln keygen, or minisign -G; an encrypted key's password\n"     \
	"                         from $KILN_SIGN_PASSWORD or the terminal)\n"                     \
	"      --write-manifest FILE  write the manifest to FILE and stop (sign it with\n"         \
	"                         'minisign -S -m FILE'; with --sign, kiln writes the\n"           \
	"                         signature to FILE.minisig)\n"                                    \
	"      --signature SIG    submit with a signature made elsewhere, of the manifest\n"       \
	"                         given by --manifest (default: SIG without .minisig)\n"           \
	"      --manifest FILE    the manifest that SIG signs\n" CLIENT_OPTS_HELP "\n"             \
	"Exit status: 0 when submitted. With --follow: the build's exit code; 1 if it did\n"       \
	"not exit normally (signal, memory/pids/disk/output limit); 124 timed out; 130\n"          \
	"cancelled; 125 archive refused, job rejected or interrupted, or an internal error.\n"     \
	"1 for any other error, 2 for a bad command line.\n"

enum { OPT_SIGN = 0x200, OPT_SIGNATURE, OPT_MANIFEST, OPT_WRITE_MANIFEST };

static const struct option submit_opts[] = {
	{"project", required_argument, NULL, 'p'},
	{"sign", required_argument, NULL, OPT_SIGN},
	{"signature", required_argument, NULL, OPT_SIGNATURE},
	{"manifest", required_argument, NULL, OPT_MANIFEST},
	{"write-manifest", required_argument, NULL, OPT_WRITE_MANIFEST},
	{"follow", no_argument, NULL, 'f'},
	CLIENT_JSON_OPT,
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

int cli_job_exit_status(const json_t *job)
{
	const char *state = cli_jstr(job, "state", ""), *reason = cli_jstr(job, "reason", "");
	const json_t *code = json_object_get(job, "exit_code");

	if (strcmp(state, "succeeded") == 0)
		return 0;
	if (strcmp(state, "timed_out") == 0 || strcmp(reason, "timeout") == 0)
		return 124;
	if (strcmp(state, "cancelled") == 0 || strcmp(reason, "cancelled") == 0)
		return 130;
	if (strcmp(state, "rejected") == 0 || strcmp(state, "interrupted") == 0)
		return 125;
	if (strcmp(reason, "exited") == 0 && json_is_integer(code)) {
		json_int_t c = json_integer_value(code);
		return c > 0 && c < 256 ? (int)c : 1;
	}
	/* The build never ran, or kilnd failed it: as `kiln run` reports a
	 * sandbox that could not be set up. */
	if (strcmp(reason, "archive") == 0 || strcmp(reason, "archive_invalid") == 0 ||
	    strcmp(reason, "spec_invalid") == 0 || strcmp(reason, "setup") == 0 ||
	    strcmp(reason, "internal") == 0)
		return 125;
	return 1;
}

/* DIR/kiln.yml, read without following a link: a hostile tree could point
 * it at ~/.ssh/id_ed25519 and have it uploaded. */
static int read_spec(const char *dir, char **text, size_t *len, struct kiln_error **err)
{
	cleanup_fd int dfd = -1;
	cleanup_fd int fd = -1;
	cleanup_free char *buf = NULL;
	struct stat st;
	ssize_t n;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kiln_error_set(err, errno, "open %s", dir);
	fd = openat(dfd, "kiln.yml", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return kiln_error_set(
			err, 0,
			"%s/kiln.yml not found: a job needs a kiln.yml at the top of its "
			"source tree (at least 'script: ...')",
			dir);
	if (fd < 0 && errno == ELOOP)
		return kiln_error_set(err, 0,
				      "%s/kiln.yml is a symbolic link; refusing to follow it (make "
				      "it a regular file)",
				      dir);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s/kiln.yml", dir);
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "stat %s/kiln.yml", dir);
	if (!S_ISREG(st.st_mode))
		return kiln_error_set(err, 0, "%s/kiln.yml is not a regular file", dir);
	if (st.st_size > (off_t)SPEC_MAX_BYTES)
		return kiln_error_set(err, 0, "%s/kiln.yml is larger than 1 MiB", dir);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return kiln_error_set(err, ENOMEM, "read %s/kiln.yml", dir);
	n = kiln_read_all(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return kiln_error_set(err, errno, "read %s/kiln.yml", dir);
	buf[n] = '\0';
	*len = (size_t)n;
	*text = steal_pointer(&buf);
	return 0;
}

int cmd_submit(int argc, char **argv)
{
	struct kiln_client_args args = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	struct kiln_pack_stats stats;
	cleanup_free char *spec = NULL;
	cleanup_fd int fd = -1;
	const char *project = NULL, *dir = ".";
	const char *sign_key = NULL, *sig_file = NULL, *manifest_file = NULL,
		   *write_manifest = NULL;
	cleanup_free char *manifest = NULL;
	cleanup_free char *signature = NULL;
	json_t *job = NULL, *final = NULL;
	bool follow = false, tty = isatty(STDERR_FILENO) == 1;
	uint64_t size = 0;
	size_t spec_len = 0;
	long long id;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:fh", submit_opts, NULL)) != -1) {
		if (kiln_client_args_opt(&args, opt, optarg))
			continue;
		switch (opt) {
		case 'p': project = optarg; break;
		case 'f': follow = true; break;
		case OPT_SIGN: sign_key = optarg; break;
		case OPT_SIGNATURE: sig_file = optarg; break;
		case OPT_MANIFEST: manifest_file = optarg; break;
		case OPT_WRITE_MANIFEST: write_manifest = optarg; break;
		case 'h': fputs(USAGE_SUBMIT, stdout); return 0;
		default:
			cli_err("invalid option (see 'kiln submit --help')");
			rc = 2;
			goto out;
		}
	}
	if (argc - optind > 1) {
		cli_err("at most one DIR (see 'kiln submit --help')");
		rc = 2;
		goto out;
	}
	if (optind < argc)
		dir = argv[optind];
	if ((sig_file != NULL && (sign_key != NULL || write_manifest != NULL)) ||
	    (manifest_file != NULL && sig_file == NULL)) {
		cli_err("--signature (with --manifest) goes with neither --sign nor "
			"--write-manifest");
		rc = 2;
		goto out;
	}
	if (cli_connect(&args, &c) != 0)
		goto out;
	if (project == NULL)
		project = kiln_client_default_project(c);
	if (project == NULL) {
		cli_err("no project: use --project NAME, KILN_PROJECT or 'project = NAME' in the "
			"config file");
		rc = 2;
		goto out;
	}
	if (read_spec(dir, &spec, &spec_len, &err) < 0 ||
	    kiln_pack_dir(dir, &fd, &size, &stats, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (tty) {
		char in[16], out[16];

		cli_fmt_size(stats.bytes, in, sizeof(in));
		cli_fmt_size(size, out, sizeof(out));
		fprintf(stderr,
			"packed %llu files, %llu directories, %llu links (%s, %s compressed)",
			(unsigned long long)stats.files, (unsigned long long)stats.dirs,
			(unsigned long long)stats.symlinks, in, out);
		if (stats.ignored)
			fprintf(stderr, "; %llu ignored", (unsigned long long)stats.ignored);
		fputc('\n', stderr);
	}
	if (sign_key != NULL || write_manifest != NULL) {
		if (cli_make_manifest(project, spec, spec_len, fd, size, &manifest, &err) < 0) {
			rc = cli_fail(&err);
			goto out;
		}
	}
	if (sign_key != NULL && cli_sign(sign_key, manifest, &signature, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (write_manifest != NULL) {
		char sigpath[4200];
		cleanup_fd int mfd =
			open(write_manifest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (mfd < 0 || kiln_write_all(mfd, manifest, strlen(manifest)) < 0) {
			cli_err("write %s: %s", write_manifest, strerror(errno));
			goto out;
		}
		snprintf(sigpath, sizeof(sigpath), "%s.minisig", write_manifest);
		if (signature != NULL) {
			cleanup_fd int sfd =
				open(sigpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

			if (sfd < 0 || kiln_write_all(sfd, signature, strlen(signature)) < 0) {
				cli_err("write %s: %s", sigpath, strerror(errno));
				goto out;
			}
			fprintf(stderr,
				"manifest written to %s, its signature to %s; submit with "
				"--signature %s within the server's signing window\n",
				write_manifest, sigpath, sigpath);
		} else {
			fprintf(stderr,
				"manifest written to %s; sign it (minisign -S -m %s) and submit "
				"with --signature %s within the server's signing window\n",
				write_manifest, write_manifest, sigpath);
		}
		rc = 0;
		goto out;
	}
	if (sig_file != NULL) {
		char mpath[4096];
		size_t n = strlen(sig_file), mlen = 0, slen = 0;

		if (manifest_file == NULL) {
			if (n <= 8 || strcmp(sig_file + n - 8, ".minisig") != 0) {
				cli_err("--signature %s: give the manifest it signs with "
					"--manifest",
					sig_file);
				rc = 2;
				goto out;
			}
			snprintf(mpath, sizeof(mpath), "%.*s", (int)(n - 8), sig_file);
			manifest_file = mpath;
		}
		if (cli_read_file(manifest_file, 4096, &manifest, &mlen, &err) < 0 ||
		    cli_read_file(sig_file, 16384, &signature, &slen, &err) < 0) {
			rc = cli_fail(&err);
			goto out;
		}
	}
	if (kiln_client_submit(c, project, spec, spec_len, fd, size, manifest, signature, tty, &job,
			       &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (!json_is_integer(json_object_get(job, "id"))) {
		cli_err("server %s answered without a job id", kiln_client_server(c));
		goto out;
	}
	id = (long long)json_integer_value(json_object_get(job, "id"));
	if (args.json)
		cli_print_json(job);
	else if (follow)
		fprintf(stderr, "job %lld\n", id);
	else
		printf("%lld\n", id);
	if (fflush(stdout) != 0) {
		cli_err("write stdout: %s", strerror(errno));
		goto out;
	}
	if (!follow) {
		rc = 0;
		goto out;
	}
	if (cli_copy_log(c, id, true, &final, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	rc = cli_job_exit_status(final);
	if (rc != 0) {
		char outcome[128];

		cli_job_outcome(final, outcome, sizeof(outcome));
		cli_err("job %lld %s", id, outcome);
	}
out:
	json_decref(job);
	json_decref(final);
	kiln_client_free(c);
	kiln_client_args_free(&args);
	return rc;
}
