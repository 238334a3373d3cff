/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd: start-up, signals and shut-down.
 *
 *   kilnd --data DIR --listen ADDR:PORT [--config FILE] [--workers N] [--insecure]
 *
 * Start-up order: configuration, the data directory (created 0700 on the
 * first start, with the first admin token in DATA/admin-token), the
 * database (migrations run at open), recovery of jobs a crash left
 * `running`, removal of stale work directories, workers, and last the
 * listener, so that nothing is accepted before the server can serve it.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "server/audit.h"
#include "server/config.h"
#include "server/alerts.h"
#include "server/policy.h"
#include "server/provenance.h"
#include "server/secrets.h"
#include "server/server.h"
#include "store/cas.h"
#include "store/db.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

#define CONFIG_MAX (1 << 20)

static void usage(FILE *f)
{
	fputs("usage: kilnd --data DIR --listen ADDR:PORT [--config FILE] [--workers N] "
	      "[--insecure]\n"
	      "\n"
	      "  --data DIR        data directory (database, blobs, logs); created 0700\n"
	      "  --listen ADDR:PORT  address to listen on (127.0.0.1:8420; port 0: any free)\n"
	      "  --config FILE     configuration file (YAML, see docs/server.md)\n"
	      "  --workers N       jobs run at once (0: one per CPU)\n"
	      "  --insecure        allow plain HTTP on a non-loopback address\n"
	      "  --help, --version\n",
	      f);
}

static int read_config(const char *path, struct kiln_config *c, struct kiln_error **err)
{
	cleanup_fd int fd = -1;
	cleanup_free char *buf = NULL;
	struct stat st;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return kiln_error_set(err, errno, "config %s", path);
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "config %s", path);
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX)
		return kiln_error_set(err, EINVAL, "config %s: expected a file of at most 1M",
				      path);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return kiln_error_set(err, ENOMEM, "config %s", path);
	n = kiln_read_all(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return kiln_error_set(err, errno, "read %s", path);
	buf[n] = '\0';
	return kiln_config_parse(path, buf, (size_t)n, c, err);
}

/* The data directory: created 0700, or checked (a directory, ours, not a
 * link) and made 0700. *created says whether this is the first start. */
static int prepare_data(const char *dir, bool *created, struct kiln_error **err)
{
	struct stat st;

	*created = false;
	if (mkdir(dir, 0700) == 0)
		*created = true;
	else if (errno != EEXIST)
		return kiln_error_set(err, errno, "create data directory %s", dir);
	if (lstat(dir, &st) < 0)
		return kiln_error_set(err, errno, "data directory %s", dir);
	if (!S_ISDIR(st.st_mode))
		return kiln_error_set(err, ENOTDIR,
				      "data directory %s is not a directory (links are refused)",
				      dir);
	if (st.st_uid != geteuid())
		return kiln_error_set(err, EPERM,
				      "data directory %s belongs to uid %u, not to kilnd's uid %u",
				      dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
		return kiln_error_set(err, errno, "chmod 0700 %s", dir);
	return 0;
}

static int make_subdir(const char *data, const char *name, char *out, size_t len,
		       struct kiln_error **err)
{
	struct stat st;

	if ((size_t)snprintf(out, len, "%s/%s", data, name) >= len)
		return kiln_error_set(err, ENAMETOOLONG, "%s/%s", data, name);
	if (mkdir(out, 0700) < 0 && errno != EEXIST)
		return kiln_error_set(err, errno, "create %s", out);
	if (lstat(out, &st) < 0 || !S_ISDIR(st.st_mode))
		return kiln_error_set(err, ENOTDIR, "%s is not a directory", out);
	return 0;
}

static int fsync_dir(const char *dir)
{
	cleanup_fd int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -1 : fsync(fd);
}

/* The first admin token, when the database holds no token at all: written
 * to DATA/admin-token (0600, O_EXCL) and made durable before its hash is
 * stored, so that a crash never leaves a stored admin token that nobody
 * knows. It is never logged. */
static int bootstrap_admin(struct kiln_server *s, struct kiln_db *db, const char *data,
			   struct kiln_error **err)
{
	struct kiln_token_row row;
	char token[KILN_TOKEN_MAX], path[4200];
	json_t *list, *arr;
	size_t ntokens;
	cleanup_fd int fd = -1;
	int r;

	list = kiln_db_tokens_list(db, err);
	if (list == NULL)
		return kiln_error_prefix(err, "list tokens");
	arr = json_object_get(list, "tokens");
	ntokens = json_array_size(arr);
	json_decref(list);
	if (ntokens > 0)
		return 0;

	snprintf(path, sizeof(path), "%s/admin-token", data);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return kiln_error_set(
				err, EEXIST,
				"%s exists but the database holds no token (a crash during the "
				"first start?): remove the file and start kilnd again",
				path);
		return kiln_error_set(err, errno, "create %s", path);
	}
	r = kiln_token_generate(NULL, KILN_SCOPE_ADMIN | KILN_SCOPE_SUBMIT | KILN_SCOPE_READ, 0,
				&row, token, err);
	if (r < 0) {
		unlink(path);
		return kiln_error_prefix(err, "create the admin token");
	}
	strcat(token, "\n");
	r = kiln_write_all(fd, token, strlen(token));
	sodium_memzero(token, sizeof(token));
	if (r < 0 || fsync(fd) < 0) {
		int e = errno;
		unlink(path);
		return kiln_error_set(err, e, "write %s", path);
	}
	if (kiln_db_token_insert(db, &row, "admin (first start)", err) < 0) {
		unlink(path);
		return kiln_error_prefix(err, "store the admin token");
	}
	fsync_dir(data);
	(void)s;
	printf("admin token written to %s\n", path);
	fflush(stdout);
	return 0;
}

struct check_ctx {
	const char *dir;
	struct kiln_db *db;
	unsigned problems;
};

static void check_report(void *ctx, const char *file, int line, int column, const char *message)
{
	struct check_ctx *c = ctx;

	c->problems++;
	if (line > 0)
		printf("%s/%s:%d:%d: %s\n", c->dir, file, line, column, message);
	else
		printf("%s/%s: %s\n", c->dir, file, message);
}

static bool check_secret_known(void *ctx, const char *project, const char *name)
{
	struct check_ctx *c = ctx;

	return kiln_db_secret_version(c->db, project, name) > 0;
}

/* kilnd policy check DIR [--data DATA] [--config FILE]: validate a policy
 * directory without a server (exit 0 valid, 1 problems, 2 usage). With
 * --data, the secrets a policy grants must exist in that data directory's
 * store; with --config, kilnd's spec_limits are the ceiling (as on the
 * server), else the defaults. */
static int kiln_policy_check_main(int argc, char **argv)
{
	struct kiln_policy_known k;
	struct kiln_spec_limits lim;
	struct kiln_config cfg;
	struct check_ctx c = {0};
	struct kiln_policy_set *set = NULL;
	struct kiln_error *err = NULL;
	const char *dir = NULL, *data = NULL, *config = NULL;
	bool bad = argc < 3 || strcmp(argv[1], "check") != 0;
	int r;

	for (int i = 2; i < argc && !bad; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data = argv[++i];
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (argv[i][0] != '-' && dir == NULL)
			dir = argv[i];
		else
			bad = true;
	}
	if (bad || dir == NULL) {
		fputs("usage: kilnd policy check DIR [--data DATA] [--config FILE]\n", stderr);
		return 2;
	}
	kiln_config_defaults(&cfg);
	if (config != NULL && read_config(config, &cfg, &err) < 0) {
		fprintf(stderr, "kilnd: %s\n", err ? err->msg : "config");
		kiln_error_free(&err);
		kiln_config_free(&cfg);
		return 2;
	}
	lim = cfg.spec_limits;
	kiln_config_free(&cfg);
	if (sodium_init() < 0)
		return 1;
	memset(&k, 0, sizeof(k));
	k.max = &lim;
	c.dir = dir;
	if (data != NULL) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/kiln.db", data);
		if (kiln_db_open(path, &c.db, &err) < 0) {
			fprintf(stderr, "kilnd: %s\n", err ? err->msg : "database");
			kiln_error_free(&err);
			return 1;
		}
		k.secret_known = check_secret_known;
		k.ctx = &c;
	}
	r = kiln_policy_load_dir(dir, &k, check_report, &c, &set, &err);
	if (c.db != NULL)
		kiln_db_close(c.db);
	if (r < 0) {
		fprintf(stderr, "kilnd: %s\n", err ? err->msg : "?");
		kiln_error_free(&err);
		return 1;
	}
	if (r > 0)
		return 1;
	printf("%s: %zu policy file(s), valid (%s)\n", dir, kiln_policy_set_count(set),
	       kiln_policy_set_digest(set));
	kiln_policy_set_unref(set);
	return 0;
}

/* Alerts (alerts.c) go to the audit log as they are raised. */
static struct kiln_server *alert_server;

static void alert_to_audit(const char *project, int64_t job, const char *rule, const char *detail)
{
	struct kiln_error *err = NULL;
	json_t *f = json_pack("{s:s,s:I,s:s,s:s}", "project", project, "job", (json_int_t)job,
			      "rule", rule, "detail", detail);

	if (f == NULL || kiln_audit_append(alert_server, NULL, "alert", "kilnd", f, &err) < 0)
		kiln_logf("job %" PRId64 ": alert %s not recorded in the audit log: %s", job, rule,
			  err ? err->msg : "out of memory");
	json_decref(f);
	kiln_error_free(&err);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},	  {"listen", required_argument, NULL, 'l'},
		{"config", required_argument, NULL, 'c'}, {"workers", required_argument, NULL, 'w'},
		{"insecure", no_argument, NULL, 'k'},	  {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},	  {NULL, 0, NULL, 0},
	};
	static struct kiln_server srv;
	struct kiln_server *s = &srv;
	struct kiln_error *err = NULL;
	const char *data_arg = NULL, *listen_arg = NULL, *config_arg = NULL, *workers_arg = NULL;
	bool insecure = false, created = false;
	char data[4096], cas_dir[4200];
	struct kiln_db *db;
	sigset_t sigs;
	uint64_t v;
	int c, sig, rc = 1, nrec;

	if (argc > 1 && strcmp(argv[1], "policy") == 0)
		return kiln_policy_check_main(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data_arg = optarg; break;
		case 'l': listen_arg = optarg; break;
		case 'c': config_arg = optarg; break;
		case 'w': workers_arg = optarg; break;
		case 'k': insecure = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kilnd %s\n", KILN_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	/* Everything kilnd creates is private (the build gets its own
	 * umask from the engine). */
	umask(077);
	if (sodium_init() < 0) {
		fprintf(stderr, "kilnd: libsodium failed to initialise\n");
		return 1;
	}

	kiln_config_defaults(&s->cfg);
	if (config_arg != NULL && read_config(config_arg, &s->cfg, &err) < 0)
		goto fail_usage;
	if (data_arg != NULL) {
		char *d = strdup(data_arg);
		if (d == NULL) {
			kiln_error_set(&err, ENOMEM, "--data");
			goto fail;
		}
		free(s->cfg.data);
		s->cfg.data = d;
	}
	if (listen_arg != NULL && kiln_config_set_listen(&s->cfg, listen_arg, &err) < 0) {
		kiln_error_prefix(&err, "--listen");
		goto fail_usage;
	}
	if (workers_arg != NULL) {
		if (kiln_parse_uint(workers_arg, 0, KILN_MAX_WORKERS, &v, &err) < 0) {
			kiln_error_prefix(&err, "--workers");
			goto fail_usage;
		}
		s->cfg.workers = (unsigned)v;
	}
	if (insecure)
		s->cfg.allow_insecure_listen = true;
	if (s->cfg.data == NULL || s->cfg.data[0] == '\0') {
		kiln_error_set(&err, EINVAL, "no data directory: give --data DIR");
		goto fail_usage;
	}
	if (s->cfg.tls_cert == NULL && !kiln_config_listen_is_loopback(&s->cfg) &&
	    !s->cfg.allow_insecure_listen) {
		kiln_error_set(&err, 0,
			       "refusing plain HTTP on the non-loopback address %s: configure "
			       "tls: {cert, key}, or allow it with --insecure "
			       "(allow_insecure_listen: true)",
			       s->cfg.listen_host ? s->cfg.listen_host : "*");
		goto fail;
	}

	if (prepare_data(s->cfg.data, &created, &err) < 0)
		goto fail;
	if (realpath(s->cfg.data, data) == NULL) {
		kiln_error_set(&err, errno, "data directory %s", s->cfg.data);
		goto fail;
	}
	if (kiln_server_init(s, &err) < 0)
		goto fail;
	if ((size_t)snprintf(s->db_path, sizeof(s->db_path), "%s/kiln.db", data) >=
		    sizeof(s->db_path) ||
	    make_subdir(data, "logs", s->log_dir, sizeof(s->log_dir), &err) < 0 ||
	    make_subdir(data, "tmp", s->tmp_dir, sizeof(s->tmp_dir), &err) < 0) {
		if (err == NULL)
			kiln_error_set(&err, ENAMETOOLONG, "data directory path");
		goto fail_srv;
	}
	if ((size_t)snprintf(s->policy_dir, sizeof(s->policy_dir), "%s",
			     s->cfg.policies ? s->cfg.policies : data) >= sizeof(s->policy_dir) ||
	    (s->cfg.policies == NULL &&
	     make_subdir(data, "policies", s->policy_dir, sizeof(s->policy_dir), &err) < 0)) {
		if (err == NULL)
			kiln_error_set(&err, ENAMETOOLONG, "policy directory path");
		goto fail_srv;
	}
	/* An invalid policy set at start-up stops kilnd: there is no
	 * previous set to keep. */
	{
		int pr = kiln_policies_reload(s, "start-up", NULL, &err);
		if (pr != 0) {
			if (pr > 0)
				kiln_error_set(&err, EINVAL,
					       "the policies in %s are invalid (see above); "
					       "check them with: kilnd policy check %s",
					       s->policy_dir, s->policy_dir);
			goto fail_srv;
		}
	}
	if (kiln_provkey_open(data, &s->provkey, &err) < 0)
		goto fail_srv;
	if (s->cfg.builder_id == NULL) {
		char host[256] = "localhost";

		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		if (asprintf(&s->cfg.builder_id, "urn:kiln:builder:%s", host) < 0) {
			s->cfg.builder_id = NULL;
			kiln_error_set(&err, ENOMEM, "builder id");
			goto fail_srv;
		}
	}
	snprintf(cas_dir, sizeof(cas_dir), "%s/cas", data);
	if (kiln_cas_open(cas_dir, &s->cas, &err) < 0)
		goto fail_srv;
	/* Every handle kilnd will use, opened now, before anything else
	 * touches the database: one per worker, KILN_DB_HTTP_HANDLES for the
	 * HTTP threads, one for start-up. */
	if (s->cfg.workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		s->cfg.workers = n > 0 ? (unsigned)n : 1;
	}
	if (s->cfg.workers > KILN_MAX_WORKERS)
		s->cfg.workers = KILN_MAX_WORKERS;
	if (kiln_server_db_open(s, s->cfg.workers + KILN_DB_HTTP_HANDLES + 1, &err) < 0) {
		kiln_error_prefix(&err, "database %s", s->db_path);
		goto fail_srv;
	}
	db = kiln_server_db_acquire(s, &err);
	if (db == NULL)
		goto fail_srv;
	if (bootstrap_admin(s, db, data, &err) < 0)
		goto fail_srv;
	/* The secret store's master key: a missing or wrong key with stored
	 * secrets stops kilnd here, loudly. */
	if (kiln_secrets_open(data, db, &s->secrets, &err) < 0) {
		kiln_error_prefix(&err, "secret store");
		goto fail_srv;
	}
	if (created)
		kiln_logf("created data directory %s", data);

	nrec = kiln_db_jobs_recover(db, (int)s->cfg.max_attempts, &err);
	if (nrec < 0) {
		kiln_error_prefix(&err, "recover jobs");
		goto fail_srv;
	}
	if (nrec > 0)
		kiln_logf("recovered %d job(s) left running by a previous kilnd (interrupted, or "
			  "queued again when retry-safe)",
			  nrec);
	nrec = kiln_provenance_catch_up(s, db);
	if (nrec > 0)
		kiln_logf("wrote the provenance of %d finished job(s) that had none", nrec);
	kiln_observe_start(s, db);
	if (kiln_alerts_start(s, &err) < 0)
		goto fail_srv;
	if (kiln_workers_clean_tmp(s) < 0)
		kiln_logf("could not clean %s completely: %s", s->tmp_dir, strerror(errno));
	/* The audit log: its key, its start-up check, then the first entry;
	 * kilnd does not serve when it cannot record that it started. */
	if (kiln_audit_open(s, data, db, &err) < 0) {
		kiln_server_db_release(s, db);
		goto fail_srv;
	}
	alert_server = s;
	kiln_alerts_set_audit_hook(alert_to_audit);
	{
		json_t *f = json_pack("{s:s,s:i,s:I,s:i}", "version", KILN_VERSION, "pid",
				      (int)getpid(), "workers", (json_int_t)s->cfg.workers, "port",
				      (int)s->cfg.listen_port);
		struct kiln_policy_set *ps = kiln_policy_current();
		int ar;

		/* What happened before the log was open: jobs a crash left
		 * running (now interrupted or queued again), the policy set. */
		if (f != NULL && nrec > 0)
			json_object_set_new(f, "recovered_jobs", json_integer(nrec));
		if (f != NULL && ps != NULL)
			json_object_set_new(f, "policy_digest",
					    json_string(kiln_policy_set_digest(ps)));
		kiln_policy_set_unref(ps);
		ar = kiln_audit_append(s, db, "server.start", "kilnd", f, &err);

		json_decref(f);
		/* A damaged log (EBADMSG) was reported by kiln_audit_open; kilnd
		 * still serves it, for inspection, and refuses what it cannot
		 * record. Any other failure to record stops the start. */
		if (ar < 0 && err != NULL && err->code == EBADMSG) {
			kiln_error_free(&err);
		} else if (ar < 0) {
			kiln_server_db_release(s, db);
			goto fail_srv;
		}
	}
	kiln_server_db_release(s, db);

	/* Signals: TERM and INT are taken by sigwait below; every thread
	 * inherits the mask (the engine resets it for the build). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (kiln_workers_start(s, &err) < 0) {
		kiln_alerts_stop();
		goto fail_srv;
	}
	if (kiln_http_start(s, &err) < 0) {
		kiln_server_stop(s);
		kiln_workers_stop(s);
		kiln_alerts_stop();
		goto fail_srv;
	}

	do {
		if (sigwait(&sigs, &sig) != 0)
			sig = 0;
		if (sig == SIGHUP) {
			/* Reload the policies: all or nothing. */
			if (kiln_policies_reload(s, "SIGHUP", NULL, &err) < 0)
				kiln_error_free(&err);
		}
	} while (sig != SIGTERM && sig != SIGINT);
	kiln_logf("%s: shutting down (running jobs are cancelled)",
		  sig == SIGTERM ? "SIGTERM" : "SIGINT");

	kiln_http_quiesce(s);
	kiln_server_stop(s);
	kiln_workers_stop(s);
	kiln_alerts_stop();
	kiln_server_drain_streams(s, 3000);
	kiln_http_stop(s);
	{
		json_t *f = json_pack("{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");

		if (kiln_audit_append(s, NULL, "server.stop", "kilnd", f, &err) < 0) {
			kiln_logf("%s", err ? err->msg : "audit log: record server.stop failed");
			kiln_error_free(&err);
		}
		json_decref(f);
	}
	rc = 0;
	kiln_logf("stopped");
fail_srv:
	kiln_audit_close(s);
	kiln_policy_install(NULL);
	kiln_secrets_close(s->secrets);
	s->secrets = NULL;
	if (s->cas != NULL)
		kiln_cas_close(s->cas);
	kiln_provkey_close(s->provkey);
	s->provkey = NULL;
	kiln_server_destroy(s);
fail:
	if (err != NULL) {
		fprintf(stderr, "kilnd: %s\n", err->msg);
		kiln_error_free(&err);
	}
	kiln_config_free(&s->cfg);
	return rc;
fail_usage:
	fprintf(stderr, "kilnd: %s\n", err ? err->msg : "bad command line");
	kiln_error_free(&err);
	kiln_config_free(&s->cfg);
	return 2;
}
