/* SPDX-License-Identifier: Apache-2.0 */
/* kiln project, kiln token: administration (needs an admin token). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/cleanup.h"
#include "core/util.h"

#define USAGE_PROJECT                                                                              \
	"usage: kiln project create [OPTION]... NAME\n"                                            \
	"       kiln project list [OPTION]...\n"                                                   \
	"\n"                                                                                       \
	"Create a project (NAME: [a-z0-9][a-z0-9-]{0,62}) or list them. Needs an admin token.\n"   \
	"\n"                                                                                       \
	"      --json             print the server's answer\n" CLIENT_OPTS_HELP

#define USAGE_TOKEN                                                                                \
	"usage: kiln token create [OPTION]... --scope SCOPE[,SCOPE]...\n"                          \
	"       kiln token list [OPTION]...\n"                                                     \
	"       kiln token revoke [OPTION]... ID\n"                                                \
	"\n"                                                                                       \
	"Manage API tokens. Needs an admin token. 'create' prints the new token on\n"              \
	"stdout; it is shown only this once.\n"                                                    \
	"\n"                                                                                       \
	"  -p, --project NAME     (create) the project the token acts on; without it the\n"        \
	"                         token acts on every project\n"                                   \
	"  -s, --scope LIST       (create) comma-separated: submit, read, admin\n"                 \
	"  -e, --expires DURATION (create) e.g. 3600, 30m, 12h, 90d (default: never)\n"            \
	"  -d, --description TEXT (create) a note for 'kiln token list'\n"                         \
	"      --json             print the server's answer\n" CLIENT_OPTS_HELP

#define MAX_EXPIRY (100ULL * 366 * 86400)

enum { ADMIN_PROJECT, ADMIN_TOKEN };

static const struct option admin_opts[] = {
	{"project", required_argument, NULL, 'p'},
	{"scope", required_argument, NULL, 's'},
	{"expires", required_argument, NULL, 'e'},
	{"description", required_argument, NULL, 'd'},
	CLIENT_JSON_OPT,
	CLIENT_LONG_OPTS,
	{NULL, 0, NULL, 0},
};

struct admin_args {
	struct kiln_client_args c;
	const char *project, *scope, *expires, *description;
};

/* Options after the sub-verb; *first is the index of the first operand.
 * Returns -1 to go on, else the exit status. */
static int parse_admin(int argc, char **argv, int which, struct admin_args *a)
{
	const char *usage = which == ADMIN_PROJECT ? USAGE_PROJECT : USAGE_TOKEN;
	const char *verb = which == ADMIN_PROJECT ? "project" : "token";
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, which == ADMIN_TOKEN ? "p:s:e:d:h" : "h", admin_opts,
				  NULL)) != -1) {
		if (kiln_client_args_opt(&a->c, opt, optarg))
			continue;
		switch (opt) {
		case 'p': a->project = optarg; break;
		case 's': a->scope = optarg; break;
		case 'e': a->expires = optarg; break;
		case 'd': a->description = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: cli_err("invalid option (see 'kiln %s --help')", verb); return 2;
		}
	}
	if (which == ADMIN_PROJECT && (a->project || a->scope || a->expires || a->description)) {
		cli_err("invalid option (see 'kiln project --help')");
		return 2;
	}
	return -1;
}

static int operands(int argc, int want, const char *what, const char *verb)
{
	if (argc - optind == want)
		return 0;
	if (want == 0)
		cli_err("unexpected argument (see 'kiln %s --help')", verb);
	else
		cli_err("expected %s (see 'kiln %s --help')", what, verb);
	return 2;
}

/* --- project --------------------------------------------------------------- */

static int project_create(struct kiln_client *c, const struct admin_args *a, const char *name)
{
	struct kiln_error *err = NULL;
	json_t *body = json_pack("{s:s}", "name", name), *ans = NULL;
	int r = 0;

	if (body == NULL) {
		cli_err("project name '%s' is not valid UTF-8", name);
		return 2;
	}
	if (kiln_client_json(c, "POST", "/v1/projects", body, &ans, &err) < 0)
		r = cli_fail(&err);
	else if (a->c.json)
		cli_print_json(ans);
	else
		printf("project %s created\n", name);
	json_decref(body);
	json_decref(ans);
	return r;
}

static int project_list(struct kiln_client *c, const struct admin_args *a)
{
	static const char *const hdr[] = {"NAME", "CREATED"};
	struct kiln_error *err = NULL;
	struct cli_table *t = NULL;
	json_t *ans = NULL, *list, *p;
	size_t i;
	int r = 0;

	if (kiln_client_json(c, "GET", "/v1/projects", NULL, &ans, &err) < 0)
		return cli_fail(&err);
	list = json_object_get(ans, "projects");
	if (a->c.json) {
		cli_print_json(ans);
	} else if (!json_is_array(list)) {
		cli_err("server %s answered without a project list", kiln_client_server(c));
		r = 1;
	} else if ((t = cli_table_new(2, hdr)) != NULL) {
		json_array_foreach(list, i, p)
		{
			char name[128], created[64];
			const char *row[2] = {name, created};

			cli_str(p, "name", name, sizeof(name));
			cli_fmt_time(json_object_get(p, "created_at"), created, sizeof(created));
			cli_table_add(t, row);
		}
		cli_table_print(t);
		cli_table_free(t);
	}
	json_decref(ans);
	return r;
}

int cmd_project(int argc, char **argv)
{
	struct admin_args a = {0};
	struct kiln_client *c = NULL;
	const char *sub = argc > 1 ? argv[1] : "";
	int rc = 2;

	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		fputs(USAGE_PROJECT, stdout);
		return 0;
	}
	if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0) {
		cli_err("expected 'kiln project create NAME' or 'kiln project list'");
		return 2;
	}
	rc = parse_admin(argc - 1, argv + 1, ADMIN_PROJECT, &a);
	if (rc >= 0)
		goto out;
	rc = strcmp(sub, "create") == 0 ? operands(argc - 1, 1, "one NAME", "project")
					: operands(argc - 1, 0, NULL, "project");
	if (rc != 0)
		goto out;
	rc = cli_connect(&a.c, &c);
	if (rc != 0)
		goto out;
	if (strcmp(sub, "create") == 0)
		rc = project_create(c, &a, argv[1 + optind]);
	else
		rc = project_list(c, &a);
out:
	kiln_client_free(c);
	kiln_client_args_free(&a.c);
	return rc;
}

/* --- token ------------------------------------------------------------------- */

/* "submit,read" -> ["submit", "read"]; NULL (after a message) if invalid. */
static json_t *parse_scopes(const char *list)
{
	cleanup_free char *copy = strdup(list);
	json_t *a = json_array();
	char *save = NULL;

	if (copy == NULL || a == NULL) {
		json_decref(a);
		cli_err("out of memory");
		return NULL;
	}
	for (char *s = strtok_r(copy, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
		while (*s == ' ')
			s++;
		if (strcmp(s, "submit") != 0 && strcmp(s, "read") != 0 && strcmp(s, "admin") != 0) {
			cli_err("--scope: unknown scope '%s' (known: submit, read, admin)", s);
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_string(s));
	}
	if (json_array_size(a) == 0) {
		cli_err("--scope: give at least one of submit, read, admin");
		json_decref(a);
		return NULL;
	}
	return a;
}

static void scopes_text(const json_t *scopes, char *buf, size_t len)
{
	const json_t *s;
	size_t i, n = 0;

	buf[0] = '\0';
	json_array_foreach(scopes, i, s)
	{
		if (!json_is_string(s))
			continue;
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "," : "",
				      json_string_value(s));
		if (n >= len)
			break;
	}
}

static int token_create(struct kiln_client *c, const struct admin_args *a)
{
	struct kiln_error *err = NULL;
	json_t *body = NULL, *scopes, *ans = NULL;
	uint64_t secs = 0;
	char sc[128], exp[64];
	const char *tok;
	int r = 2;

	if (a->scope == NULL) {
		cli_err("token create needs --scope (e.g. --scope submit,read)");
		return 2;
	}
	if (a->expires != NULL &&
	    kiln_parse_duration(a->expires, false, MAX_EXPIRY, &secs, &err) < 0) {
		cli_err("--expires: %s", err->msg);
		kiln_error_free(&err);
		return 2;
	}
	scopes = parse_scopes(a->scope);
	if (scopes == NULL)
		return 2;
	body = json_object();
	if (body == NULL ||
	    json_object_set_new(body, "project",
				a->project ? json_string(a->project) : json_null()) < 0 ||
	    json_object_set_new(body, "scopes", scopes) < 0 ||
	    json_object_set_new(body, "expires_in",
				a->expires ? json_integer((json_int_t)secs) : json_null()) < 0 ||
	    (a->description &&
	     json_object_set_new(body, "description", json_string(a->description)) < 0)) {
		cli_err("--project or --description is not valid UTF-8");
		goto out;
	}
	r = 1;
	if (kiln_client_json(c, "POST", "/v1/tokens", body, &ans, &err) < 0) {
		r = cli_fail(&err);
		goto out;
	}
	tok = cli_jstr(ans, "token", NULL);
	if (tok == NULL) {
		cli_err("server %s answered without a token", kiln_client_server(c));
		goto out;
	}
	if (a->c.json) {
		cli_print_json(ans);
	} else {
		/* Only the token on stdout, so "$(kiln token create ...)" is it. */
		puts(tok);
		fflush(stdout);
		scopes_text(json_object_get(ans, "scopes"), sc, sizeof(sc));
		cli_fmt_time(json_object_get(ans, "expires_at"), exp, sizeof(exp));
		fprintf(stderr,
			"token %s: project %s, scopes %s, expires %s (it is shown only this "
			"once)\n",
			cli_jstr(ans, "id", NULL) ? cli_jstr(ans, "id", NULL) : "?",
			cli_jstr(ans, "project", NULL) ? cli_jstr(ans, "project", NULL) : "(all)",
			sc, strcmp(exp, "-") ? exp : "never");
	}
	r = 0;
out:
	json_decref(body);
	json_decref(ans);
	return r;
}

static bool expired(const json_t *t)
{
	const json_t *e = json_object_get(t, "expires_at");
	char now[32];
	time_t t0 = time(NULL);
	struct tm tm;
	json_t *jnow;
	bool r;

	if (!json_is_string(e))
		return false;
	gmtime_r(&t0, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	jnow = json_string(now);
	r = cli_time_diff(e, jnow) > 0;
	json_decref(jnow);
	return r;
}

static int token_list(struct kiln_client *c, const struct admin_args *a)
{
	static const char *const hdr[] = {"ID",	     "PROJECT", "SCOPES",     "CREATED",
					  "EXPIRES", "STATUS",	"DESCRIPTION"};
	struct kiln_error *err = NULL;
	struct cli_table *t = NULL;
	json_t *ans = NULL, *list, *tok;
	size_t i;
	int r = 0;

	if (kiln_client_json(c, "GET", "/v1/tokens", NULL, &ans, &err) < 0)
		return cli_fail(&err);
	list = json_object_get(ans, "tokens");
	if (a->c.json) {
		cli_print_json(ans);
	} else if (!json_is_array(list)) {
		cli_err("server %s answered without a token list", kiln_client_server(c));
		r = 1;
	} else if ((t = cli_table_new(7, hdr)) != NULL) {
		json_array_foreach(list, i, tok)
		{
			char id[64], project[128], sc[128], created[64], exp[64], desc[256];
			const char *row[7] = {id, project, sc, created, exp, "active", desc};

			cli_str(tok, "id", id, sizeof(id));
			cli_str(tok, "project", project, sizeof(project));
			if (project[0] == '\0')
				snprintf(project, sizeof(project), "(all)");
			scopes_text(json_object_get(tok, "scopes"), sc, sizeof(sc));
			cli_fmt_time(json_object_get(tok, "created_at"), created, sizeof(created));
			cli_fmt_time(json_object_get(tok, "expires_at"), exp, sizeof(exp));
			if (strcmp(exp, "-") == 0)
				snprintf(exp, sizeof(exp), "never");
			cli_str(tok, "description", desc, sizeof(desc));
			if (json_is_string(json_object_get(tok, "revoked_at")))
				row[5] = "revoked";
			else if (expired(tok))
				row[5] = "expired";
			cli_table_add(t, row);
		}
		cli_table_print(t);
		cli_table_free(t);
	}
	json_decref(ans);
	return r;
}

static int token_revoke(struct kiln_client *c, const char *id)
{
	struct kiln_error *err = NULL;
	cleanup_free char *eid = kiln_client_escape(id);
	cleanup_free char *path = NULL;
	json_t *ans = NULL;

	if (eid == NULL || asprintf(&path, "/v1/tokens/%s", eid) < 0) {
		path = NULL;
		cli_err("out of memory");
		return 1;
	}
	if (kiln_client_json(c, "DELETE", path, NULL, &ans, &err) < 0)
		return cli_fail(&err);
	json_decref(ans);
	printf("token %s revoked\n", id);
	return 0;
}

int cmd_token(int argc, char **argv)
{
	struct admin_args a = {0};
	struct kiln_client *c = NULL;
	const char *sub = argc > 1 ? argv[1] : "";
	int rc;

	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		fputs(USAGE_TOKEN, stdout);
		return 0;
	}
	if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "revoke") != 0) {
		cli_err("expected 'kiln token create', 'kiln token list' or 'kiln token revoke "
			"ID'");
		return 2;
	}
	rc = parse_admin(argc - 1, argv + 1, ADMIN_TOKEN, &a);
	if (rc >= 0)
		goto out;
	if (strcmp(sub, "create") != 0 && (a.project || a.scope || a.expires || a.description)) {
		cli_err("--project, --scope, --expires and --description go with 'token create'");
		rc = 2;
		goto out;
	}
	rc = strcmp(sub, "revoke") == 0 ? operands(argc - 1, 1, "one token ID", "token")
					: operands(argc - 1, 0, NULL, "token");
	if (rc != 0)
		goto out;
	rc = cli_connect(&a.c, &c);
	if (rc != 0)
		goto out;
	if (strcmp(sub, "create") == 0)
		rc = token_create(c, &a);
	else if (strcmp(sub, "list") == 0)
		rc = token_list(c, &a);
	else
		rc = token_revoke(c, argv[1 + optind]);
out:
	kiln_client_free(c);
	kiln_client_args_free(&a.c);
	return rc;
}
