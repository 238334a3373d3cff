/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI's HTTP client for kilnd (docs/api.md); see client.h. */
#include "cli/client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "cli/cli.h"
#include "core/sys.h"
#include "core/util.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0"
#endif

#define CONFIG_MAX_BYTES (64u * 1024)
#define ERROR_BODY_MAX	 (64u * 1024)
#define TOKEN_MAX_LEN	 512

struct kiln_client {
	CURL *h;
	char *server;  /* base URL, no trailing '/' */
	char *token;   /* wiped on free */
	char *project; /* default project, or NULL */
	char *ca_cert; /* PEM file of the CA to trust for https://, or NULL */
	bool debug;
	long last_status;
	char last_code[64];
	char errbuf[CURL_ERROR_SIZE];
};

/* --- command-line arguments ---------------------------------------------- */

bool kiln_client_args_opt(struct kiln_client_args *a, int c, char *arg)
{
	switch (c) {
	case CLIENT_OPT_SERVER: a->server = arg; return true;
	case CLIENT_OPT_TOKEN:
		if (a->token != NULL) {
			sodium_memzero(a->token, strlen(a->token));
			free(a->token);
		}
		a->token = strdup(arg);
		if (a->token == NULL) {
			fputs("kiln: out of memory\n", stderr);
			exit(1);
		}
		/* Out of /proc/PID/cmdline as early as we can (as mysql does). */
		sodium_memzero(arg, strlen(arg));
		return true;
	case CLIENT_OPT_JSON: a->json = true; return true;
	default: return false;
	}
}

void kiln_client_args_free(struct kiln_client_args *a)
{
	if (a->token != NULL) {
		sodium_memzero(a->token, strlen(a->token));
		free(a->token);
		a->token = NULL;
	}
}

/* --- configuration ------------------------------------------------------- */

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int config_path(char *buf, size_t len, struct kiln_error **err)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	if (xdg != NULL && xdg[0] == '/') {
		n = snprintf(buf, len, "%s/kiln/config", xdg);
	} else {
		if (home == NULL || home[0] != '/') {
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (home == NULL)
			return kiln_error_set(err, 0,
					      "cannot find the config file: HOME is not set");
		n = snprintf(buf, len, "%s/.config/kiln/config", home);
	}
	if (n < 0 || (size_t)n >= len)
		return kiln_error_set(err, ENAMETOOLONG, "config file path");
	return 0;
}

/* "key = value" lines; the command line and environment win. */
static int parse_config(char *text, const char *path, char **server, char **token, char **project,
			char **ca_cert, struct kiln_error **err)
{
	int lineno = 0;
	char *line, *next;

	for (line = text; line != NULL; line = next) {
		char *eq, *key, *val, **dst = NULL;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		line = trim(line);
		if (*line == '\0' || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL)
			return kiln_error_set(err, 0, "%s:%d: expected 'key = value'", path,
					      lineno);
		*eq = '\0';
		key = trim(line);
		val = trim(eq + 1);
		if (strcmp(key, "server") == 0)
			dst = server;
		else if (strcmp(key, "token") == 0)
			dst = token;
		else if (strcmp(key, "project") == 0)
			dst = project;
		else if (strcmp(key, "ca_cert") == 0)
			dst = ca_cert;
		else
			return kiln_error_set(err, 0,
					      "%s:%d: unknown key '%s' (known: server, token, "
					      "project, ca_cert)",
					      path, lineno, key);
		if (*dst != NULL)
			continue; /* the command line or the environment said so first */
		*dst = strdup(val);
		if (*dst == NULL)
			return kiln_error_set(err, ENOMEM, "read %s", path);
	}
	return 0;
}

/* Fill the fields not yet known from the config file, if there is one. */
static int read_config(char **server, char **token, char **project, char **ca_cert,
		       struct kiln_error **err)
{
	char path[4096];
	cleanup_fd int fd = -1;
	cleanup_free char *text = NULL;
	struct stat st;
	ssize_t n;
	int r;

	if (config_path(path, sizeof(path), err) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return kiln_error_set(err, errno, "open config file %s", path);
	}
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "stat %s", path);
	if (!S_ISREG(st.st_mode))
		return kiln_error_set(err, 0, "config file %s is not a regular file", path);
	if (st.st_mode & 0066)
		return kiln_error_set(err, 0,
				      "config file %s is accessible by group or others (mode %04o) "
				      "and holds a token; refusing to use it (run: chmod 600 %s)",
				      path, (unsigned)(st.st_mode & 07777), path);
	if (st.st_size > (off_t)CONFIG_MAX_BYTES)
		return kiln_error_set(err, 0, "config file %s is larger than %u bytes", path,
				      CONFIG_MAX_BYTES);
	text = calloc(1, (size_t)st.st_size + 1);
	if (text == NULL)
		return kiln_error_set(err, ENOMEM, "read %s", path);
	n = kiln_read_all(fd, text, (size_t)st.st_size);
	if (n < 0)
		return kiln_error_set(err, errno, "read %s", path);
	text[n] = '\0';

	r = parse_config(text, path, server, token, project, ca_cert, err);
	/* It held a token. */
	sodium_memzero(text, (size_t)n);
	return r;
}

/* Is the host of an http:// URL a loopback name or address? */
static bool url_host_is_loopback(const char *url)
{
	const char *h = strstr(url, "://") + 3;
	size_t n = strcspn(h, "/:?#");

	if (h[0] == '[')
		return strncmp(h, "[::1]", 5) == 0 && strchr("/:?#", h[5]) != NULL;
	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return true;
	return strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") == n;
}

static int set_server(struct kiln_client *c, const char *url, struct kiln_error **err)
{
	const char *e;

	size_t len;

	if (url == NULL || *url == '\0')
		return kiln_error_set(
			err, 0,
			"no server given: use --server URL, KILN_SERVER or 'server = URL' "
			"in the config file");
	if (strstr(url, "://") == NULL) {
		if (asprintf(&c->server, "http://%s", url) < 0)
			c->server = NULL;
	} else if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
		c->server = strdup(url);
	} else {
		return kiln_error_set(err, 0, "server URL '%s' must start with http:// or https://",
				      url);
	}
	if (c->server == NULL)
		return kiln_error_set(err, ENOMEM, "server URL");
	for (const char *p = c->server; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return kiln_error_set(err, 0,
					      "server URL contains a space or control "
					      "character");
	len = strlen(c->server);
	while (len > 0 && c->server[len - 1] == '/')
		c->server[--len] = '\0';
	/* The token would cross the network in clear text. */
	e = getenv("KILN_INSECURE");
	if (strncmp(c->server, "http://", 7) == 0 && !url_host_is_loopback(c->server) &&
	    !(e != NULL && strcmp(e, "1") == 0))
		return kiln_error_set(err, 0,
				      "refusing to send the token over plain http:// to %s: use "
				      "https:// (or set KILN_INSECURE=1)",
				      c->server);
	return 0;
}

static int check_token(const char *t, struct kiln_error **err)
{
	size_t n = strlen(t);

	if (n == 0 || n > TOKEN_MAX_LEN)
		return kiln_error_set(err, 0, "the token is empty or too long");
	/* It goes into a header: no spaces, no control characters. The
	 * message never repeats the token. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return kiln_error_set(err, 0,
					      "the token contains a space or a control or "
					      "non-ASCII character (expected kiln_<id>_<secret>)");
	return 0;
}

/* --- curl plumbing ----------------------------------------------------- */

/* Debug output with the bearer token's secret replaced. */
static void debug_lines(char prefix, const char *data, size_t size)
{
	const char *p = data, *end = data + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		static const char auth[] = "authorization:";

		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
			n--;
		if (n >= sizeof(auth) - 1 && strncasecmp(p, auth, sizeof(auth) - 1) == 0) {
			const char *k = memmem(p, n, "kiln_", 5);
			const char *sep = k ? memchr(k + 5, '_', n - (size_t)(k + 5 - p)) : NULL;
			if (sep != NULL)
				fprintf(stderr, "%c %.*s<hidden>\n", prefix, (int)(sep + 1 - p), p);
			else
				fprintf(stderr, "%c Authorization: <hidden>\n", prefix);
		} else if (n > 0) {
			fprintf(stderr, "%c %.*s\n", prefix, (int)n, p);
		}
		p = nl ? nl + 1 : end;
	}
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
	switch (type) {
	case CURLINFO_TEXT: debug_lines('*', data, size); break;
	case CURLINFO_HEADER_OUT: debug_lines('>', data, size); break;
	case CURLINFO_HEADER_IN: debug_lines('<', data, size); break;
	default: break; /* bodies (and the token in a token-create answer) stay out */
	}
	return 0;
}

struct response {
	CURL *h;
	char *buf;
	size_t len, cap, max;
	bool overflow;
	/* streaming */
	kiln_client_sink_fn sink;
	void *ctx;
	struct kiln_error *sink_err;
	char *sha_header;
};

static int buf_append(struct response *r, const char *data, size_t n)
{
	if (r->len + n > r->max) {
		r->overflow = true;
		return -1;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *nb;

		while (cap < r->len + n + 1)
			cap *= 2;
		nb = realloc(r->buf, cap);
		if (nb == NULL)
			return -1;
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct response *r = ud;
	size_t n = size * nmemb;
	long status = 0;

	if (r->sink != NULL) {
		curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			if (r->sink(r->ctx, data, n, &r->sink_err) < 0)
				return 0;
			return n;
		}
	}
	return buf_append(r, data, n) < 0 ? 0 : n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct response *r = ud;
	size_t n = size * nmemb;
	static const char name[] = "kiln-sha256:";

	if (r->sha_header != NULL && n > sizeof(name) - 1 &&
	    strncasecmp(data, name, sizeof(name) - 1) == 0) {
		const char *v = data + sizeof(name) - 1;
		size_t i = 0;

		while (v < data + n && (*v == ' ' || *v == '\t'))
			v++;
		while (v < data + n && i < 64 && isxdigit((unsigned char)*v))
			r->sha_header[i++] = (char)tolower((unsigned char)*v++);
		r->sha_header[i] = '\0';
	}
	return n;
}

/* Replace control characters (a hostile server's terminal escapes) by '?'. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void prepare(struct kiln_client *c, struct response *r, const char *path,
		    struct curl_slist *hdrs, bool long_lived)
{
	cleanup_free char *url = NULL;

	curl_easy_reset(c->h);
	if (asprintf(&url, "%s%s", c->server, path) < 0)
		url = NULL;
	curl_easy_setopt(c->h, CURLOPT_URL, url ? url : "");
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
	curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 0L);
	if (c->ca_cert != NULL)
		curl_easy_setopt(c->h, CURLOPT_CAINFO, c->ca_cert);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (!long_lived) {
		curl_easy_setopt(c->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c->h, CURLOPT_LOW_SPEED_TIME, 60L);
	}
	curl_easy_setopt(c->h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
	curl_easy_setopt(c->h, CURLOPT_XOAUTH2_BEARER, c->token);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->h, CURLOPT_HEADERDATA, r);
	if (c->debug) {
		curl_easy_setopt(c->h, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(c->h, CURLOPT_DEBUGFUNCTION, on_debug);
	}
	c->errbuf[0] = '\0';
	c->last_status = 0;
	c->last_code[0] = '\0';
	r->h = c->h;
}

/* Turn an error answer into *err: the server's error.message if present. */
static int http_error(struct kiln_client *c, struct response *r, struct kiln_error **err)
{
	json_t *root = NULL, *e, *m, *code;
	char snippet[201];
	int ret;

	if (r->len > 0)
		root = json_loadb(r->buf, r->len, 0, NULL);
	e = json_object_get(root, "error");
	m = json_object_get(e, "message");
	code = json_object_get(e, "code");
	if (json_is_string(code))
		snprintf(c->last_code, sizeof(c->last_code), "%s", json_string_value(code));
	if (json_is_string(m)) {
		cleanup_free char *msg = strdup(json_string_value(m));

		if (msg != NULL)
			sanitize(msg);
		ret = kiln_error_set(err, 0, "%s", msg ? msg : "(out of memory)");
	} else {
		size_t n = 0;

		for (size_t i = 0; i < r->len && n < sizeof(snippet) - 1 && r->buf[i] != '\n'; i++)
			snippet[n++] = r->buf[i];
		snippet[n] = '\0';
		sanitize(snippet);
		ret = kiln_error_set(err, 0, "server %s answered HTTP %ld%s%s", c->server,
				     c->last_status, n ? ": " : "", snippet);
	}
	json_decref(root);
	return ret;
}

/* Run the prepared transfer and classify the outcome. */
static int perform(struct kiln_client *c, struct response *r, struct kiln_error **err)
{
	CURLcode rc = curl_easy_perform(c->h);

	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->last_status);
	if (r->sink_err != NULL) {
		*err = r->sink_err;
		r->sink_err = NULL;
		return -1;
	}
	if (r->overflow)
		return kiln_error_set(err, 0, "the answer from %s is larger than %zu bytes",
				      c->server, r->max);
	/* An early error answer (413 while we were still sending) can end the
	 * upload with a send error: the answer is what matters. */
	if (c->last_status >= 400 && (rc == CURLE_OK || rc == CURLE_SEND_ERROR ||
				      rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING))
		return http_error(c, r, err);
	switch (rc) {
	case CURLE_OK: break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		if (c->last_status == 0)
			return kiln_error_set(err, 0, "cannot reach server %s: %s", c->server,
					      c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
		/* fallthrough */
	default:
		return kiln_error_set(err, 0, "server %s: %s", c->server,
				      c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
	}
	if (c->last_status < 200 || c->last_status >= 300)
		return http_error(c, r, err);
	return 0;
}

/* --- public ---------------------------------------------------------------- */

int kiln_client_open(const struct kiln_client_args *a, struct kiln_client **out,
		     struct kiln_error **err)
{
	struct kiln_client *c = calloc(1, sizeof(*c));
	char *server = NULL, *token = NULL;
	const char *e;
	int r = -1;

	if (c == NULL)
		return kiln_error_set(err, ENOMEM, "client");
	if (sodium_init() < 0) {
		kiln_error_set(err, 0, "libsodium failed to initialise");
		goto out;
	}
	if (a->server != NULL)
		server = strdup(a->server);
	else if ((e = getenv("KILN_SERVER")) != NULL && *e)
		server = strdup(e);
	if (a->token != NULL)
		token = strdup(a->token);
	else if ((e = getenv("KILN_TOKEN")) != NULL && *e)
		token = strdup(e);
	if ((e = getenv("KILN_PROJECT")) != NULL && *e)
		c->project = strdup(e);
	if ((e = getenv("KILN_CA_CERT")) != NULL && *e)
		c->ca_cert = strdup(e);
	if (read_config(&server, &token, &c->project, &c->ca_cert, err) < 0)
		goto out;
	if (set_server(c, server, err) < 0)
		goto out;
	if (token == NULL) {
		kiln_error_set(err, 0,
			       "no token given: use --token, KILN_TOKEN or 'token = ...' in the "
			       "config file");
		goto out;
	}
	if (check_token(token, err) < 0)
		goto out;
	c->token = steal_pointer(&token);
	e = getenv("KILN_DEBUG");
	c->debug = e != NULL && *e && strcmp(e, "0") != 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		kiln_error_set(err, 0, "libcurl failed to initialise");
		goto out;
	}
	c->h = curl_easy_init();
	if (c->h == NULL) {
		kiln_error_set(err, 0, "libcurl failed to initialise");
		goto out;
	}
	*out = steal_pointer(&c);
	r = 0;
out:
	free(server);
	if (token != NULL) {
		sodium_memzero(token, strlen(token));
		free(token);
	}
	kiln_client_free(c);
	return r;
}

void kiln_client_free(struct kiln_client *c)
{
	if (c == NULL)
		return;
	if (c->h != NULL) {
		curl_easy_cleanup(c->h);
		curl_global_cleanup();
	}
	if (c->token != NULL) {
		sodium_memzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c->server);
	free(c->project);
	free(c->ca_cert);
	free(c);
}

const char *kiln_client_server(const struct kiln_client *c)
{
	return c->server;
}

const char *kiln_client_default_project(const struct kiln_client *c)
{
	return c->project;
}

long kiln_client_last_status(const struct kiln_client *c)
{
	return c->last_status;
}

const char *kiln_client_last_error_code(const struct kiln_client *c)
{
	return c->last_code;
}

char *kiln_client_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy;

	if (e == NULL)
		return NULL;
	copy = strdup(e);
	curl_free(e);
	return copy;
}

int kiln_client_json(struct kiln_client *c, const char *method, const char *path, json_t *body,
		     json_t **out, struct kiln_error **err)
{
	struct response r = {.max = KILN_CLIENT_MAX_JSON};
	struct curl_slist *hdrs = NULL;
	cleanup_free char *text = NULL;
	json_error_t jerr;
	int ret = -1;

	*out = NULL;
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL)
			return kiln_error_set(err, ENOMEM, "request body");
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	}
	prepare(c, &r, path, hdrs, false);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c->h, CURLOPT_POST, 1L);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, text ? text : "");
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)(text ? strlen(text) : 0));
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	}
	if (perform(c, &r, err) < 0)
		goto out;
	if (r.len == 0) {
		ret = 0;
		goto out;
	}
	*out = json_loadb(r.buf, r.len, 0, &jerr);
	if (*out == NULL) {
		kiln_error_set(err, 0, "server %s sent invalid JSON: %s", c->server, jerr.text);
		goto out;
	}
	ret = 0;
out:
	/* The body may carry a secret (kiln secret set). */
	if (text != NULL)
		explicit_bzero(text, strlen(text));
	curl_slist_free_all(hdrs);
	free(r.buf);
	return ret;
}

int kiln_client_get_stream(struct kiln_client *c, const char *path, bool long_lived,
			   kiln_client_sink_fn sink, void *ctx, char *sha_header,
			   struct kiln_error **err)
{
	struct response r = {.max = ERROR_BODY_MAX, .sink = sink, .ctx = ctx};
	int ret;

	if (sha_header != NULL) {
		sha_header[0] = '\0';
		r.sha_header = sha_header;
	}
	prepare(c, &r, path, NULL, long_lived);
	ret = perform(c, &r, err);
	kiln_error_free(&r.sink_err);
	free(r.buf);
	return ret;
}

/* --- the upload ------------------------------------------------------------ */

struct upload {
	int fd;
	uint64_t size, off;
	bool progress;
	uint64_t last_draw_ns, last_drawn;
	bool drawn;
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct upload *u = ud;
	size_t want = size * nitems;
	ssize_t n;

	if (u->off >= u->size)
		return 0;
	if (want > u->size - u->off)
		want = (size_t)(u->size - u->off);
	do {
		n = pread(u->fd, buf, want, (off_t)u->off);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return CURL_READFUNC_ABORT; /* the archive cannot shrink under us */
	u->off += (uint64_t)n;
	return (size_t)n;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct upload *u = ud;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > u->size)
		return CURL_SEEKFUNC_CANTSEEK;
	u->off = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct upload *u = ud;
	uint64_t now = kiln_now_ns();
	char done[16], total[16], bar[31];
	int pct, fill;

	if (!u->progress || ultotal <= 0)
		return 0;
	/* At most 10 redraws a second, and the final 100% only once. */
	if (u->drawn && (uint64_t)ulnow == u->last_drawn)
		return 0;
	if (u->drawn && ulnow < ultotal && now - u->last_draw_ns < 100000000ULL)
		return 0;
	u->last_draw_ns = now;
	u->last_drawn = (uint64_t)ulnow;
	u->drawn = true;
	pct = (int)(ulnow * 100 / ultotal);
	fill = pct * 30 / 100;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	cli_fmt_size((uint64_t)ulnow, done, sizeof(done));
	cli_fmt_size((uint64_t)ultotal, total, sizeof(total));
	fprintf(stderr, "\r\033[Kuploading [%s] %3d%% %s/%s", bar, pct, done, total);
	return 0;
}

int kiln_client_submit(struct kiln_client *c, const char *project, const char *spec,
		       size_t spec_len, int archive_fd, uint64_t archive_size, const char *manifest,
		       const char *signature, bool progress, json_t **job, struct kiln_error **err)
{
	struct response r = {.max = KILN_CLIENT_MAX_JSON};
	struct upload u = {.fd = archive_fd, .size = archive_size, .progress = progress};
	struct curl_slist *hdrs = NULL;
	curl_mime *mime = NULL;
	curl_mimepart *part;
	json_error_t jerr;
	int ret = -1;

	*job = NULL;
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	prepare(c, &r, "/v1/jobs", hdrs, false);
	mime = curl_mime_init(c->h);
	if (mime == NULL)
		goto oom;
	if (project != NULL) {
		part = curl_mime_addpart(mime);
		if (part == NULL || curl_mime_name(part, "project") != CURLE_OK ||
		    curl_mime_data(part, project, CURL_ZERO_TERMINATED) != CURLE_OK)
			goto oom;
	}
	part = curl_mime_addpart(mime);
	if (part == NULL || curl_mime_name(part, "spec") != CURLE_OK ||
	    curl_mime_data(part, spec, spec_len) != CURLE_OK)
		goto oom;
	if (manifest != NULL && signature != NULL) {
		part = curl_mime_addpart(mime);
		if (part == NULL || curl_mime_name(part, "manifest") != CURLE_OK ||
		    curl_mime_data(part, manifest, CURL_ZERO_TERMINATED) != CURLE_OK)
			goto oom;
		part = curl_mime_addpart(mime);
		if (part == NULL || curl_mime_name(part, "signature") != CURLE_OK ||
		    curl_mime_data(part, signature, CURL_ZERO_TERMINATED) != CURLE_OK)
			goto oom;
	}
	/* Last, so the server has project and spec before the big part. */
	part = curl_mime_addpart(mime);
	if (part == NULL || curl_mime_name(part, "source") != CURLE_OK ||
	    curl_mime_filename(part, "source.tar.gz") != CURLE_OK ||
	    curl_mime_type(part, "application/gzip") != CURLE_OK ||
	    curl_mime_data_cb(part, (curl_off_t)archive_size, on_read, on_seek, NULL, &u) !=
		    CURLE_OK)
		goto oom;
	curl_easy_setopt(c->h, CURLOPT_MIMEPOST, mime);
	if (progress) {
		curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, &u);
	}
	ret = perform(c, &r, err);
	if (u.drawn)
		fputs("\r\033[K", stderr);
	if (ret < 0)
		goto out;
	ret = -1;
	*job = json_loadb(r.buf ? r.buf : "", r.len, 0, &jerr);
	if (*job == NULL) {
		kiln_error_set(err, 0, "server %s sent invalid JSON: %s", c->server, jerr.text);
		goto out;
	}
	ret = 0;
	goto out;
oom:
	kiln_error_set(err, ENOMEM, "build the upload");
out:
	curl_mime_free(mime);
	curl_slist_free_all(hdrs);
	free(r.buf);
	return ret;
}

/* --- presentation ------------------------------------------------------------ */

int cli_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	if (s == NULL)
		return -1;
	puts(s);
	free(s);
	return fflush(stdout) == 0 ? 0 : -1;
}

static bool parse_time(const json_t *v, time_t *out)
{
	struct tm tm;
	const char *s, *end;

	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return false;
	if (*end == '.') /* fractional seconds */
		for (end++; isdigit((unsigned char)*end); end++)
			;
	if (strcmp(end, "Z") != 0 && *end != '\0')
		return false;
	*out = timegm(&tm);
	return true;
}

void cli_fmt_time(const json_t *v, char *buf, size_t len)
{
	struct tm tm;
	time_t t;

	if (json_is_null(v) || v == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	if (!parse_time(v, &t) || localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "%s", json_is_string(v) ? json_string_value(v) : "?");
		sanitize(buf);
	}
}

long long cli_time_diff(const json_t *from, const json_t *to)
{
	time_t a, b;

	if (!parse_time(from, &a) || !parse_time(to, &b) || b < a)
		return -1;
	return (long long)(b - a);
}

void cli_fmt_duration(long long s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm%02llds", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%lldd%02lldh%02lldm", s / 86400, s / 3600 % 24, s / 60 % 60);
}

void cli_fmt_size(uint64_t b, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	double v = (double)b;
	int u = -1;

	if (b < 1024) {
		snprintf(buf, len, "%lluB", (unsigned long long)b);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

const char *cli_jstr(const json_t *o, const char *key, const char *dflt)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

const char *cli_str(const json_t *o, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else if (len > 0)
		buf[0] = '\0';
	sanitize(buf);
	return buf;
}

struct cli_table {
	size_t ncols, nrows, cap;
	char **cells;
};

struct cli_table *cli_table_new(size_t ncols, const char *const *header)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	if (cli_table_add(t, header) < 0) {
		cli_table_free(t);
		return NULL;
	}
	return t;
}

int cli_table_add(struct cli_table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **nc = reallocarray(t->cells, cap * t->ncols, sizeof(char *));

		if (nc == NULL)
			return -1;
		t->cells = nc;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *s = strdup(row[i] ? row[i] : "");

		if (s == NULL) {
			for (size_t j = 0; j < i; j++)
				free(t->cells[t->nrows * t->ncols + j]);
			return -1;
		}
		sanitize(s);
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
	return 0;
}

/* Display width: UTF-8 code points (continuation bytes do not count). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void cli_table_print(struct cli_table *t)
{
	size_t w[16] = {0};
	size_t nc = t->ncols < 16 ? t->ncols : 16;

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < nc; i++) {
			size_t x = width(t->cells[r * t->ncols + i]);
			if (x > w[i])
				w[i] = x;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < nc; i++) {
			const char *s = t->cells[r * t->ncols + i];

			fputs(s, stdout);
			if (i + 1 < nc)
				printf("%*s", (int)(w[i] - width(s) + 2), "");
		}
		putchar('\n');
	}
}

void cli_table_free(struct cli_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* --- helpers for the verbs -------------------------------------------------- */

int cli_connect(const struct kiln_client_args *a, struct kiln_client **c)
{
	struct kiln_error *err = NULL;

	if (kiln_client_open(a, c, &err) < 0)
		return cli_fail(&err);
	return 0;
}

int cli_fail(struct kiln_error **err)
{
	cli_err("%s", (*err)->msg);
	kiln_error_free(err);
	return 1;
}

int cli_job_id(const char *s, long long *id)
{
	struct kiln_error *err = NULL;
	uint64_t v;

	if (kiln_parse_uint(s, 1, (uint64_t)INT64_MAX, &v, &err) < 0) {
		cli_err("invalid job id '%s': expected a number like 42", s);
		kiln_error_free(&err);
		return -1;
	}
	*id = (long long)v;
	return 0;
}
