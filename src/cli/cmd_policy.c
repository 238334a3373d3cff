/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln policy show PROJECT | reload
 * kiln secret set PROJECT NAME [--file PATH] [--raw] | list PROJECT | rm PROJECT NAME
 *
 * A secret's value is read from stdin or a file, never from the command
 * line (where /proc/PID/cmdline and shell history would keep it); the
 * buffer holding it is wiped before exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/sys.h"

#define SECRET_MAX (32 * 1024)

#define USAGE_POLICY                                                                               \
	"usage: kiln policy show PROJECT [--json]\n"                                               \
	"       kiln policy reload\n"                                                              \
	"\n"                                                                                       \
	"show prints the policy in force for PROJECT and its digest; reload makes kilnd\n"         \
	"load its policy directory again (admin; an invalid set is refused and the\n"              \
	"previous one stays in force).\n"                                                          \
	"\n"                                                                                       \
	"      --json             print the server's answer\n" CLIENT_OPTS_HELP

#define USAGE_SECRET                                                                               \
	"usage: kiln secret set PROJECT NAME [--file PATH] [--raw]\n"                              \
	"       kiln secret list PROJECT [--json]\n"                                               \
	"       kiln secret rm PROJECT NAME\n"                                                     \
	"\n"                                                                                       \
	"set reads the value from stdin (or --file), never from the command line; one\n"           \
	"trailing newline is dropped unless --raw. Values are 8 bytes to 32K. Only\n"              \
	"names, versions and dates are ever shown (admin).\n"                                      \
	"\n"                                                                                       \
	"  -f, --file PATH        read the value from PATH\n"                                      \
	"      --raw              keep a trailing newline\n"                                       \
	"      --json             print the server's answer\n" CLIENT_OPTS_HELP

enum { OPT_RAW = 0x2000 };

static const struct option opts[] = {
	{"file", required_argument, NULL, 'f'},
	{"raw", no_argument, NULL, OPT_RAW},
	CLIENT_JSON_OPT,
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

struct args {
	struct kiln_client_args c;
	const char *file;
	bool raw;
};

static int parse(int argc, char **argv, const char *usage, const char *verb, struct args *a)
{
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		if (kiln_client_args_opt(&a->c, opt, optarg))
			continue;
		switch (opt) {
		case 'f': a->file = optarg; break;
		case OPT_RAW: a->raw = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default: cli_err("invalid option (see 'kiln %s --help')", verb); return 2;
		}
	}
	return -1;
}

static bool want(int argc, int n, const char *what, const char *verb)
{
	if (argc - optind == n)
		return true;
	cli_err("expected %s (see 'kiln %s --help')", what, verb);
	return false;
}

/* pre + escaped a + mid + escaped b (b may be NULL). */
static char *path_of(const char *pre, const char *a, const char *mid, const char *b)
{
	char *ea = kiln_client_escape(a), *eb = b ? kiln_client_escape(b) : NULL, *out = NULL;

	if (ea != NULL && (b == NULL || eb != NULL) &&
	    asprintf(&out, "%s%s%s%s", pre, ea, mid, eb ? eb : "") < 0)
		out = NULL;
	free(ea);
	free(eb);
	return out;
}

int cmd_policy(int argc, char **argv)
{
	struct args a = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	json_t *ans = NULL;
	const char *sub;
	char *path = NULL;
	int r;

	if ((r = parse(argc, argv, USAGE_POLICY, "policy", &a)) >= 0)
		goto out;
	r = 2;
	if (optind >= argc) {
		cli_err("expected show or reload (see 'kiln policy --help')");
		goto out;
	}
	sub = argv[optind++];
	if (strcmp(sub, "show") == 0) {
		if (!want(argc, 1, "PROJECT", "policy"))
			goto out;
		path = path_of("/v1/policies/", argv[optind], "", NULL);
		if ((r = cli_connect(&a.c, &c)) != 0)
			goto out;
		if (kiln_client_json(c, "GET", path, NULL, &ans, &err) < 0) {
			r = cli_fail(&err);
			goto out;
		}
		if (a.c.json) {
			cli_print_json(ans);
		} else {
			char *text = json_dumps(ans, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
			printf("# policy of %s (%s)\n# digest %s\n%s\n", argv[optind],
			       cli_jstr(ans, "source", "?"), cli_jstr(ans, "digest", "?"),
			       text ? text : "");
			free(text);
		}
		r = 0;
	} else if (strcmp(sub, "reload") == 0) {
		if (!want(argc, 0, "no argument", "policy"))
			goto out;
		if ((r = cli_connect(&a.c, &c)) != 0)
			goto out;
		if (kiln_client_json(c, "POST", "/v1/policies/reload", NULL, &ans, &err) < 0) {
			r = cli_fail(&err);
			goto out;
		}
		if (a.c.json)
			cli_print_json(ans);
		else
			printf("policies reloaded: %lld file(s), %s\n",
			       (long long)json_integer_value(json_object_get(ans, "files")),
			       cli_jstr(ans, "digest", "?"));
		r = 0;
	} else {
		cli_err("unknown sub-command '%s' (see 'kiln policy --help')", sub);
	}
out:
	json_decref(ans);
	free(path);
	kiln_client_free(c);
	kiln_client_args_free(&a.c);
	return r;
}

/* Read at most SECRET_MAX bytes into a buffer the caller wipes. */
static int read_value(const char *file, bool raw, unsigned char *buf, size_t *len)
{
	int fd = file ? open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY) : 0;
	ssize_t n;

	if (fd < 0) {
		cli_err("%s: %s", file, strerror(errno));
		return 1;
	}
	if (file == NULL && isatty(0))
		fputs("kiln: reading the secret from stdin (end with Ctrl-D)\n", stderr);
	n = kiln_read_all(fd, buf, SECRET_MAX + 1);
	if (file != NULL)
		close(fd);
	if (n < 0) {
		cli_err("read the value: %s", strerror(errno));
		return 1;
	}
	if (n > SECRET_MAX) {
		cli_err("the value is larger than %d bytes", SECRET_MAX);
		return 1;
	}
	*len = (size_t)n;
	if (!raw && *len > 0 && buf[*len - 1] == '\n') {
		(*len)--;
		if (*len > 0 && buf[*len - 1] == '\r')
			(*len)--;
	}
	return 0;
}

static int secret_set(struct kiln_client *c, const struct args *a, const char *project,
		      const char *name)
{
	struct kiln_error *err = NULL;
	unsigned char *buf = sodium_malloc(SECRET_MAX + 1);
	size_t len = 0,
	       b64len = sodium_base64_ENCODED_LEN(SECRET_MAX, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = sodium_malloc(b64len), *path = NULL;
	json_t *body = NULL, *ans = NULL;
	int r = 1;

	if (buf == NULL || b64 == NULL) {
		cli_err("out of memory");
		goto out;
	}
	if (read_value(a->file, a->raw, buf, &len) != 0)
		goto out;
	sodium_bin2base64(b64, b64len, buf, len, sodium_base64_VARIANT_ORIGINAL);
	path = path_of("/v1/projects/", project, "/secrets/", name);
	body = json_pack("{s:s}", "value_base64", b64);
	if (path == NULL || body == NULL) {
		cli_err("out of memory");
		goto out;
	}
	if (kiln_client_json(c, "POST", path, body, &ans, &err) < 0) {
		r = cli_fail(&err);
		goto out;
	}
	if (a->c.json)
		cli_print_json(ans);
	else
		printf("secret %s of project %s set (version %lld)\n", name, project,
		       (long long)json_integer_value(json_object_get(ans, "version")));
	r = 0;
out:
	if (body != NULL) {
		/* jansson copied the encoded value: wipe its copy too. */
		json_t *v = json_object_get(body, "value_base64");
		const char *s = json_string_value(v);
		if (s != NULL)
			sodium_memzero((void *)s, strlen(s));
	}
	json_decref(body);
	json_decref(ans);
	free(path);
	sodium_free(buf);
	sodium_free(b64);
	return r;
}

static int secret_list(struct kiln_client *c, const struct args *a, const char *project)
{
	static const char *const hdr[] = {"NAME", "VERSION", "SET"};
	struct kiln_error *err = NULL;
	char *path = path_of("/v1/projects/", project, "/secrets", NULL);
	json_t *ans = NULL, *list, *s;
	struct cli_table *t;
	size_t i;
	int r = 0;

	if (path == NULL || kiln_client_json(c, "GET", path, NULL, &ans, &err) < 0) {
		free(path);
		return err ? cli_fail(&err) : 1;
	}
	free(path);
	list = json_object_get(ans, "secrets");
	if (a->c.json) {
		cli_print_json(ans);
	} else if ((t = cli_table_new(3, hdr)) != NULL) {
		json_array_foreach(list, i, s)
		{
			char name[80], ver[32], set[64];
			const char *row[3] = {name, ver, set};

			cli_str(s, "name", name, sizeof(name));
			snprintf(ver, sizeof(ver), "%lld",
				 (long long)json_integer_value(json_object_get(s, "version")));
			cli_fmt_time(json_object_get(s, "created_at"), set, sizeof(set));
			cli_table_add(t, row);
		}
		cli_table_print(t);
		cli_table_free(t);
	}
	json_decref(ans);
	return r;
}

int cmd_secret(int argc, char **argv)
{
	struct args a = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	json_t *ans = NULL;
	const char *sub;
	char *path = NULL;
	int r;

	if ((r = parse(argc, argv, USAGE_SECRET, "secret", &a)) >= 0)
		goto out;
	r = 2;
	if (optind >= argc) {
		cli_err("expected set, list or rm (see 'kiln secret --help')");
		goto out;
	}
	sub = argv[optind++];
	if (strcmp(sub, "set") == 0) {
		if (!want(argc, 2, "PROJECT NAME (the value comes from stdin or --file)", "secret"))
			goto out;
		if ((r = cli_connect(&a.c, &c)) != 0)
			goto out;
		r = secret_set(c, &a, argv[optind], argv[optind + 1]);
	} else if (strcmp(sub, "list") == 0) {
		if (!want(argc, 1, "PROJECT", "secret"))
			goto out;
		if ((r = cli_connect(&a.c, &c)) != 0)
			goto out;
		r = secret_list(c, &a, argv[optind]);
	} else if (strcmp(sub, "rm") == 0) {
		if (!want(argc, 2, "PROJECT NAME", "secret"))
			goto out;
		if ((r = cli_connect(&a.c, &c)) != 0)
			goto out;
		path = path_of("/v1/projects/", argv[optind], "/secrets/", argv[optind + 1]);
		if (path == NULL || kiln_client_json(c, "DELETE", path, NULL, &ans, &err) < 0) {
			r = err ? cli_fail(&err) : 1;
			goto out;
		}
		json_decref(ans);
		printf("secret %s of project %s removed\n", argv[optind + 1], argv[optind]);
		r = 0;
	} else {
		cli_err("unknown sub-command '%s' (see 'kiln secret --help')", sub);
	}
out:
	free(path);
	kiln_client_free(c);
	kiln_client_args_free(&a.c);
	return r;
}
