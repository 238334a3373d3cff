/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln artifacts, kiln fetch: list a job's artifacts and download them.
 *
 * A name comes from the server, and a build chose it: it is checked (no
 * "..", not absolute, no empty or "." component) and resolved one
 * component at a time with openat(O_NOFOLLOW), so neither the name nor a
 * symbolic link already in the output directory can steer a write outside
 * it. Each file is written to a temporary name in its directory, its
 * SHA-256 checked against the listing, and only then renamed into place;
 * a mismatch deletes it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"

#define USAGE_ARTIFACTS                                                                            \
	"usage: kiln artifacts [OPTION]... JOB\n"                                                  \
	"\n"                                                                                       \
	"List JOB's artifacts: name, size, SHA-256.\n"                                             \
	"\n"                                                                                       \
	"      --json             print the server's answer\n" CLIENT_OPTS_HELP

#define USAGE_FETCH                                                                                \
	"usage: kiln fetch [OPTION]... JOB [NAME]...\n"                                            \
	"\n"                                                                                       \
	"Download JOB's artifacts (all of them, or those NAMEd) into DIR, creating\n"              \
	"subdirectories as their names say, and check each file's SHA-256. Never\n"                \
	"writes through a symbolic link or outside DIR; a file whose digest does not\n"            \
	"match is deleted and kiln exits 1.\n"                                                     \
	"\n"                                                                                       \
	"  -o, --output DIR       where to put them (default: the current directory;\n"            \
	"                         created if absent)\n" CLIENT_OPTS_HELP

static const struct option artifacts_opts[] = {
	CLIENT_JSON_OPT,
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

static const struct option fetch_opts[] = {
	{"output", required_argument, NULL, 'o'},
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

static int get_artifacts(struct kiln_client *c, long long id, json_t **ans, json_t **list,
			 struct kiln_error **err)
{
	char path[64];

	snprintf(path, sizeof(path), "/v1/jobs/%lld/artifacts", id);
	if (kiln_client_json(c, "GET", path, NULL, ans, err) < 0)
		return -1;
	*list = json_object_get(*ans, "artifacts");
	if (!json_is_array(*list))
		return kiln_error_set(err, 0, "server %s answered without an artifact list",
				      kiln_client_server(c));
	return 0;
}

int cmd_artifacts(int argc, char **argv)
{
	static const char *const hdr[] = {"NAME", "SIZE", "SHA256"};
	struct kiln_client_args args = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	struct cli_table *t = NULL;
	json_t *ans = NULL, *list = NULL, *a;
	long long id;
	size_t i;
	int opt, rc = 2;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", artifacts_opts, NULL)) != -1) {
		if (kiln_client_args_opt(&args, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(USAGE_ARTIFACTS, stdout);
			rc = 0;
		} else {
			cli_err("invalid option (see 'kiln artifacts --help')");
		}
		goto out;
	}
	if (argc - optind != 1) {
		cli_err("expected one JOB (see 'kiln artifacts --help')");
		goto out;
	}
	if (cli_job_id(argv[optind], &id) < 0)
		goto out;
	rc = cli_connect(&args, &c);
	if (rc != 0)
		goto out;
	if (get_artifacts(c, id, &ans, &list, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (args.json) {
		cli_print_json(ans);
		goto out;
	}
	t = cli_table_new(3, hdr);
	if (t == NULL)
		goto oom;
	json_array_foreach(list, i, a)
	{
		char name[PATH_MAX], size[16], sha[80];
		const char *row[3] = {name, size, sha};

		cli_str(a, "name", name, sizeof(name));
		cli_fmt_size((uint64_t)json_integer_value(json_object_get(a, "size")), size,
			     sizeof(size));
		cli_str(a, "sha256", sha, sizeof(sha));
		if (cli_table_add(t, row) < 0)
			goto oom;
	}
	cli_table_print(t);
	goto out;
oom:
	cli_err("out of memory");
	rc = 1;
out:
	cli_table_free(t);
	json_decref(ans);
	kiln_client_free(c);
	kiln_client_args_free(&args);
	return rc;
}

/* --- fetch --------------------------------------------------------------- */

/* A relative name whose every component is a plain name. */
static bool name_ok(const char *s, size_t len)
{
	const char *p = s, *end = s + len;

	if (len == 0 || len >= PATH_MAX || memchr(s, '\0', len) != NULL || s[0] == '/')
		return false;
	while (p <= end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return true;
}

static bool sha_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return i == 64;
}

/* The directory that will hold name, opened component by component without
 * following links (mkdir'ing what is missing); *base points at the last
 * component of name. */
static int open_parent(int top, const char *name, const char **base, struct kiln_error **err)
{
	cleanup_free char *copy = strdup(name);
	char *p, *slash;
	int dfd = dup(top);

	if (copy == NULL || dfd < 0) {
		if (dfd >= 0)
			close(dfd);
		return kiln_error_set(err, ENOMEM, "%s", name);
	}
	for (p = copy; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
		int next;

		*slash = '\0';
		if (mkdirat(dfd, p, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			close(dfd);
			return kiln_error_set(err, e, "create directory %s", copy);
		}
		next = openat(dfd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int e = errno;
			close(dfd);
			if (e == ELOOP || e == ENOTDIR)
				return kiln_error_set(err, 0,
						      "refusing to write %s: %s is a symbolic link "
						      "or not a directory",
						      name, copy);
			return kiln_error_set(err, e, "open directory %s", copy);
		}
		close(dfd);
		dfd = next;
		*slash = '/';
	}
	*base = name + (p - copy);
	return dfd;
}

struct download {
	int fd;
	uint64_t got, size;
	crypto_hash_sha256_state sha;
	const char *name;
};

static int download_write(void *ctx, const char *data, size_t len, struct kiln_error **err)
{
	struct download *d = ctx;

	if (len > d->size - d->got)
		return kiln_error_set(err, 0, "%s: the server sent more than the %llu bytes listed",
				      d->name, (unsigned long long)d->size);
	crypto_hash_sha256_update(&d->sha, (const unsigned char *)data, len);
	if (kiln_write_all(d->fd, data, len) < 0)
		return kiln_error_set(err, errno, "write %s", d->name);
	d->got += len;
	return 0;
}

static int fetch_one(struct kiln_client *c, int top, const json_t *a, struct kiln_error **err)
{
	const json_t *jname = json_object_get(a, "name"), *jsha = json_object_get(a, "sha256");
	const json_t *jsize = json_object_get(a, "size"), *jmode = json_object_get(a, "mode");
	const char *name, *expect, *base = NULL;
	struct download d = {.fd = -1};
	cleanup_fd int dfd = -1;
	unsigned char bin[crypto_hash_sha256_BYTES];
	char tmp[96], hex[65], header[65], path[128], size[16];
	unsigned char rnd[8];
	mode_t mode = 0644;
	int r = -1;

	if (!json_is_string(jname) || !json_is_string(jsha) || !json_is_integer(jsize) ||
	    json_integer_value(jsize) < 0)
		return kiln_error_set(err, 0, "server %s sent a malformed artifact entry",
				      kiln_client_server(c));
	name = json_string_value(jname);
	expect = json_string_value(jsha);
	if (!name_ok(name, json_string_length(jname)))
		return kiln_error_set(err, 0,
				      "refusing artifact name '%.200s': not a plain relative path "
				      "(absolute, '..', '.' or empty component)",
				      name);
	if (!sha_ok(expect))
		return kiln_error_set(err, 0, "%s: malformed sha256 from the server", name);
	/* Keep the executable bits if the server says; never special bits. */
	if (json_is_integer(jmode) && (json_integer_value(jmode) & 0111))
		mode = 0755;
	dfd = open_parent(top, name, &base, err);
	if (dfd < 0)
		return -1;
	randombytes_buf(rnd, sizeof(rnd));
	kiln_hex(rnd, sizeof(rnd), hex);
	snprintf(tmp, sizeof(tmp), ".kiln-fetch-%s", hex);
	d.fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (d.fd < 0)
		return kiln_error_set(err, errno, "create a temporary file for %s", name);
	d.size = (uint64_t)json_integer_value(jsize);
	d.name = name;
	crypto_hash_sha256_init(&d.sha);
	snprintf(path, sizeof(path), "/v1/artifacts/%s", expect);
	if (kiln_client_get_stream(c, path, false, download_write, &d, header, err) < 0)
		goto out;
	crypto_hash_sha256_final(&d.sha, bin);
	kiln_hex(bin, sizeof(bin), hex);
	if (strcmp(hex, expect) != 0 || (header[0] && strcmp(header, expect) != 0)) {
		kiln_error_set(err, 0, "%s: SHA-256 mismatch (expected %s, got %s); file deleted",
			       name, expect, hex);
		goto out;
	}
	if (d.got != d.size) {
		kiln_error_set(err, 0, "%s: %llu bytes received, %llu listed; file deleted", name,
			       (unsigned long long)d.got, (unsigned long long)d.size);
		goto out;
	}
	if (fchmod(d.fd, mode) < 0 || close(d.fd) < 0) {
		d.fd = -1;
		kiln_error_set(err, errno, "write %s", name);
		goto out;
	}
	d.fd = -1;
	if (renameat(dfd, tmp, dfd, base) < 0) {
		kiln_error_set(err, errno, "rename into place %s", name);
		goto out;
	}
	cli_fmt_size(d.size, size, sizeof(size));
	printf("%s  %s  sha256 ok\n", name, size);
	fflush(stdout);
	r = 0;
out:
	if (d.fd >= 0)
		close(d.fd);
	if (r < 0)
		unlinkat(dfd, tmp, 0);
	return r;
}

static int open_output(const char *dir, struct kiln_error **err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return kiln_error_set(err, errno, "create %s", dir);
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", dir);
	return fd;
}

int cmd_fetch(int argc, char **argv)
{
	struct kiln_client_args args = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	json_t *ans = NULL, *list = NULL, *a;
	const char *out = ".";
	cleanup_fd int top = -1;
	long long id;
	size_t i;
	int opt, rc = 2;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", fetch_opts, NULL)) != -1) {
		if (kiln_client_args_opt(&args, opt, optarg))
			continue;
		switch (opt) {
		case 'o': out = optarg; break;
		case 'h':
			fputs(USAGE_FETCH, stdout);
			rc = 0;
			goto done;
		default: cli_err("invalid option (see 'kiln fetch --help')"); goto done;
		}
	}
	if (optind >= argc) {
		cli_err("expected a JOB (see 'kiln fetch --help')");
		goto done;
	}
	if (cli_job_id(argv[optind], &id) < 0)
		goto done;
	rc = cli_connect(&args, &c);
	if (rc != 0)
		goto done;
	if (get_artifacts(c, id, &ans, &list, &err) < 0)
		goto fail;
	/* Every NAME asked for must exist before anything is written. */
	for (int k = optind + 1; k < argc; k++) {
		bool found = false;

		json_array_foreach(list, i, a)
		{
			const char *n = json_string_value(json_object_get(a, "name"));
			found = found || (n != NULL && strcmp(n, argv[k]) == 0);
		}
		if (!found) {
			kiln_error_set(&err, 0,
				       "job %lld has no artifact '%s' (see 'kiln artifacts %lld')",
				       id, argv[k], id);
			goto fail;
		}
	}
	top = open_output(out, &err);
	if (top < 0)
		goto fail;
	json_array_foreach(list, i, a)
	{
		const char *n = json_string_value(json_object_get(a, "name"));
		bool wanted = optind + 1 >= argc;

		for (int k = optind + 1; k < argc && !wanted; k++)
			wanted = n != NULL && strcmp(n, argv[k]) == 0;
		if (wanted && fetch_one(c, top, a, &err) < 0)
			goto fail;
	}
	rc = 0;
	goto done;
fail:
	rc = cli_fail(&err);
done:
	json_decref(ans);
	kiln_client_free(c);
	kiln_client_args_free(&args);
	return rc;
}
