/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP front: libmicrohttpd with one thread per connection (so that
 * log streams may block while they wait for output), a listening socket
 * we bind ourselves (so the real port is known when 0 was asked), TLS from
 * PEM files, and the limits that apply before any handler runs:
 * connections in total and per address, memory per connection (which caps
 * the request headers), inactivity timeout. Routing and handlers are in
 * api.c; this file only moves bytes between libmicrohttpd and them.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "server/server.h"

/* What a client may still send after its body went over the limit before
 * we hang up instead of answering 413 (only chunked uploads get here: a
 * Content-Length over the limit is refused before the body is read). */
#define DISCARD_SLACK (1ULL << 20)
#define PEM_MAX	      (1 << 20)

struct http {
	struct MHD_Daemon *d;
	int listen_fd; /* ours again after MHD_quiesce_daemon, else MHD's */
	bool quiesced;
	char *cert, *key;
	size_t key_len;
};

/* ---- answers ---- */

void kiln_response_headers(struct MHD_Response *resp, const char *content_type)
{
	if (content_type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* API answers and artifacts are data, never a page: a browser that
	 * opens one runs nothing in it (the dashboard's own files carry
	 * their own policy, ui.c). */
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'none'; frame-ancestors 'none'; sandbox");
}

int kiln_reply(struct kiln_req *r, unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	if (r->responded) {
		MHD_destroy_response(resp);
		return MHD_YES;
	}
	r->responded = true;
	r->status = status;
	if (status >= 500) {
		char m[16], u[256];

		kiln_sanitize(m, sizeof(m), r->method);
		kiln_sanitize(u, sizeof(u), r->url);
		kiln_logf("%s %s: %u", m, u, status);
	}
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Bodies may hold a token (POST /v1/tokens): wipe them when freed. */
static void free_wiped(void *p)
{
	if (p != NULL) {
		sodium_memzero(p, strlen(p));
		free(p);
	}
}

struct kiln_db *kiln_req_db(struct kiln_req *r, int *ret)
{
	struct kiln_error *err = NULL;

	if (r->db != NULL)
		return r->db;
	r->db = kiln_server_db_acquire(r->s, &err);
	if (r->db == NULL) {
		kiln_logf("%s", err ? err->msg : "no database handle");
		kiln_error_free(&err);
		*ret = kiln_reply_error(r, 503, "unavailable", "the server is busy; try again");
	}
	return r->db;
}

int kiln_reply_text(struct kiln_req *r, unsigned status, char *text, const char *content_type)
{
	struct MHD_Response *resp;
	size_t len = strlen(text);
	char *t2;

	/* A final newline is nicer for curl users. Copied rather than
	 * realloc'd, so that no unwiped copy is left behind. */
	t2 = malloc(len + 2);
	if (t2 == NULL) {
		free_wiped(text);
		return MHD_NO;
	}
	memcpy(t2, text, len);
	free_wiped(text);
	text = t2;
	text[len++] = '\n';
	text[len] = '\0';
	resp = MHD_create_response_from_buffer_with_free_callback(len, text, free_wiped);
	if (resp == NULL) {
		free_wiped(text);
		return MHD_NO;
	}
	kiln_response_headers(resp, content_type);
	if (r->unauthorized)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (status == 405 && r->allow[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	return kiln_reply(r, status, resp);
}

int kiln_reply_json(struct kiln_req *r, unsigned status, json_t *j)
{
	char *text;

	if (j == NULL)
		return kiln_reply_error(r, 500, "internal", "out of memory");
	text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(j);
	if (text == NULL)
		return kiln_reply_error(r, 500, "internal", "out of memory");
	return kiln_reply_text(r, status, text, "application/json");
}

int kiln_reply_error(struct kiln_req *r, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[1024];
	json_t *j;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages may quote what a client sent: JSON needs UTF-8. */
	if (!kiln_utf8_valid(msg, strlen(msg)))
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	if (!r->responded) {
		snprintf(r->error_msg, sizeof(r->error_msg), "%.*s", (int)sizeof(r->error_msg) - 1,
			 msg);
		snprintf(r->error_code, sizeof(r->error_code), "%.*s",
			 (int)sizeof(r->error_code) - 1, code);
	}
	j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	if (j == NULL)
		return MHD_NO;
	text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(j);
	if (text == NULL)
		return MHD_NO;
	r->unauthorized = status == 401;
	if (!r->responded)
		snprintf(r->err_code, sizeof(r->err_code), "%s", code);
	return kiln_reply_text(r, status, text, "application/json");
}

int kiln_reply_empty(struct kiln_req *r, unsigned status)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);

	if (resp == NULL)
		return MHD_NO;
	kiln_response_headers(resp, NULL);
	return kiln_reply(r, status, resp);
}

/* ---- libmicrohttpd callbacks ---- */

static int body_append(struct kiln_req *r, const char *data, size_t len)
{
	char *nb;

	/* body_seen <= body_max <= KILN_JSON_MAX_BYTES here. A JSON body
	 * may carry a secret (POST /v1/projects/{p}/secrets/{name}): no copy
	 * is left behind unwiped. */
	nb = malloc(r->body_len + len + 1);
	if (nb == NULL)
		return -1;
	if (r->body != NULL) {
		memcpy(nb, r->body, r->body_len);
		explicit_bzero(r->body, r->body_len);
		free(r->body);
	}
	r->body = nb;
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct kiln_req *r = *con_cls;
	size_t n;

	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		r->s = cls;
		r->conn = conn;
		r->method = method;
		r->url = url;
		r->conn_slot = -1;
		r->body_max = KILN_JSON_MAX_BYTES;
		*con_cls = r;
		return (enum MHD_Result)kiln_api_begin(r);
	}
	if (*upload_data_size > 0) {
		n = *upload_data_size;
		*upload_data_size = 0;
		if (r->responded)
			return MHD_YES;
		r->body_seen += n;
		if (r->body_too_large)
			return r->body_seen > r->body_max + DISCARD_SLACK ? MHD_NO : MHD_YES;
		if (r->body_seen > r->body_max) {
			r->body_too_large = true;
			return MHD_YES;
		}
		if (r->upload != NULL)
			return (enum MHD_Result)kiln_api_upload(r, upload_data, n);
		if (r->json_body && body_append(r, upload_data, n) < 0)
			return MHD_NO;
		return MHD_YES; /* a body nobody asked for: ignored */
	}
	if (r->responded)
		return MHD_YES;
	return (enum MHD_Result)kiln_api_finish(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct kiln_req *r = *con_cls;

	if (r == NULL)
		return;
	kiln_api_done(r);
	kiln_auth_conn_release(r->s, r->conn_slot);
	if (r->body != NULL)
		explicit_bzero(r->body, r->body_len);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

/* TCP keep-alive: a log follower whose client vanished without a FIN is
 * noticed within minutes, not when the job ends. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	int on = 1, idle = 60, intvl = 10, cnt = 6;

	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return;
	setsockopt(ci->connect_fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	kiln_logf("http: %s", buf);
}

/* ---- start/stop ---- */

static int read_pem(const char *path, char **out, size_t *len, struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	struct stat st;
	char *buf;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", path);
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "stat %s", path);
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > PEM_MAX)
		return kiln_error_set(err, EINVAL, "%s: expected a PEM file of at most 1M", path);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return kiln_error_set(err, ENOMEM, "read %s", path);
	n = kiln_read_all(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		sodium_memzero(buf, (size_t)st.st_size);
		free(buf);
		return kiln_error_set(err, n < 0 ? errno : EIO, "read %s", path);
	}
	buf[n] = '\0';
	*out = buf;
	*len = (size_t)n;
	return 0;
}

static int open_listener(const struct kiln_config *c, int *family, struct kiln_error **err)
{
	struct addrinfo hints, *ai = NULL, *p;
	char port[16];
	int fd = -1, on = 1, e, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", c->listen_port);
	e = getaddrinfo(c->listen_host && c->listen_host[0] ? c->listen_host : NULL, port, &hints,
			&ai);
	if (e != 0)
		return kiln_error_set(err, 0, "listen address %s: %s",
				      c->listen_host ? c->listen_host : "", gai_strerror(e));
	for (p = ai; p != NULL; p = p->ai_next) {
		if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
			continue;
		fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (p->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		if (bind(fd, p->ai_addr, p->ai_addrlen) == 0 && listen(fd, 128) == 0) {
			*family = p->ai_family;
			break;
		}
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return kiln_error_set(err, saved, "listen on %s:%u",
				      c->listen_host ? c->listen_host : "", c->listen_port);
	return fd;
}

static void print_listening(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		kiln_logf("getsockname: %s", strerror(errno));
		return;
	}
	if (ss.ss_family == AF_INET6)
		printf("listening on [%s]:%s\n", host, serv);
	else
		printf("listening on %s:%s\n", host, serv);
	fflush(stdout);
}

static void http_free(struct http *h)
{
	if (h->key != NULL) {
		sodium_memzero(h->key, h->key_len);
		free(h->key);
	}
	free(h->cert);
	free(h);
}

int kiln_http_start(struct kiln_server *s, struct kiln_error **err)
{
	const struct kiln_config *c = &s->cfg;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG | MHD_USE_ITC;
	struct MHD_OptionItem opts[16];
	struct http *h;
	size_t n = 0, cert_len = 0;
	int family = AF_INET;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return kiln_error_set(err, ENOMEM, "http");
	h->listen_fd = -1;
	if (c->tls_cert != NULL || c->tls_key != NULL) {
		if (c->tls_cert == NULL || c->tls_key == NULL) {
			http_free(h);
			return kiln_error_set(err, EINVAL, "tls: both cert and key are needed");
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			http_free(h);
			return kiln_error_set(err, ENOTSUP,
					      "tls: this libmicrohttpd was built without TLS");
		}
		if (read_pem(c->tls_cert, &h->cert, &cert_len, err) < 0 ||
		    read_pem(c->tls_key, &h->key, &h->key_len, err) < 0) {
			http_free(h);
			return kiln_error_prefix(err, "tls");
		}
		flags |= MHD_USE_TLS;
	}
	h->listen_fd = open_listener(c, &family, err);
	if (h->listen_fd < 0) {
		http_free(h);
		return -1;
	}
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;

#define OPT(o, v, p)                                                                               \
	do {                                                                                       \
		opts[n].option = (o);                                                              \
		opts[n].value = (intptr_t)(v);                                                     \
		opts[n].ptr_value = (p);                                                           \
		n++;                                                                               \
	} while (0)
	OPT(MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL);
	OPT(MHD_OPTION_LISTEN_SOCKET, h->listen_fd, NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, KILN_HTTP_CONN_LIMIT, NULL);
	OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, KILN_HTTP_PER_IP_LIMIT, NULL);
	OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, KILN_HTTP_MEMORY_LIMIT, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, KILN_HTTP_TIMEOUT, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, s);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, on_connection, s);
	if (flags & MHD_USE_TLS) {
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, h->key);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT

	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	if (h->d == NULL) {
		close(h->listen_fd);
		http_free(h);
		return kiln_error_set(err, 0,
				      "start the HTTP server (see the message above; for TLS: are "
				      "cert and key a matching PEM pair?)");
	}
	s->http = h;
	print_listening(h->listen_fd);
	return 0;
}

void kiln_http_quiesce(struct kiln_server *s)
{
	struct http *h = s->http;

	if (h == NULL || h->quiesced)
		return;
	/* The listening socket is ours again; closed after the stop. */
	if (MHD_quiesce_daemon(h->d) != MHD_INVALID_SOCKET)
		h->quiesced = true;
}

void kiln_http_stop(struct kiln_server *s)
{
	struct http *h = s->http;

	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	if (h->quiesced)
		close(h->listen_fd);
	http_free(h);
	s->http = NULL;
}
