/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workers: take the oldest queued job, run it in a sandbox, keep what it
 * exported, record the outcome. The spec is parsed again from the text
 * that was submitted (the stored parse is for display only), and the
 * source is read back from the CAS, verified against its digest, and
 * unpacked inside the sandbox. After the run, the export directory holds
 * only what the engine copied out of a dead sandbox; it is still walked
 * fd-relative without following links, since its names came from the
 * build.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "sandbox/sandbox.h"
#include "server/audit.h"
#include "server/job.h"
#include "server/job_egress.h"
#include "server/mask.h"
#include "server/metrics.h"
#include "server/policy.h"
#include "server/provenance.h"
#include "server/secrets.h"
#include "server/server.h"
#include "server/spec.h"
#include "store/cas.h"
#include "store/db.h"
#include "store/logs.h"

#define NOTIFY_EVERY_NS (100ULL * 1000000ULL) /* wake log followers at most 10x/s */
#define WALK_MAX_DEPTH	1100		      /* deeper than the engine's export */
#define REL_MAX		4096

struct worker {
	struct kiln_server *s;
	unsigned index;
	char name[64];
};

struct run_ctx {
	struct kiln_server *s;
	struct kiln_log *log;
	/* the log is also written by the egress proxy's threads */
	pthread_mutex_t log_mu;
	uint64_t last_notify_ns;
	/* the job's granted secrets are masked out of its output before
	 * anything is stored or streamed: one stream per output stream */
	struct kiln_mask_stream *mask[2];
};

struct log_emit {
	struct kiln_log *log;
	int stream;
	/* run_ctx's log_mu: the egress proxy's threads write the log too */
	pthread_mutex_t *mu;
};

static void log_emit(void *ctx, const char *buf, size_t len)
{
	struct log_emit *e = ctx;

	pthread_mutex_lock(e->mu);
	kiln_log_append(e->log, e->stream, buf, len);
	pthread_mutex_unlock(e->mu);
}

/* Mask `in` completely, then make it safe to print (control characters
 * replaced, cut to cap): masking first, so that no cut can leave part of
 * a secret. */
static void mask_sanitize(const struct kiln_masker *m, char *out, size_t cap, const char *in)
{
	size_t len = strlen(in);
	char *tmp = malloc(len + 1);

	if (tmp == NULL) {
		snprintf(out, cap, "(out of memory)");
		return;
	}
	memcpy(tmp, in, len + 1);
	if (m != NULL)
		len = kiln_mask_inplace(m, tmp, len);
	tmp[len] = '\0';
	kiln_sanitize(out, cap, tmp);
	explicit_bzero(tmp, len);
	free(tmp);
}

static size_t note_filter(void *ctx, char *buf, size_t len)
{
	return kiln_mask_inplace(ctx, buf, len);
}

/* The egress attempts name what the build asked for (a host name can
 * carry a secret): mask every string before they are stored. */
static void mask_attempts(const struct kiln_masker *m, json_t *attempts)
{
	json_t *a, *v;
	const char *k;
	size_t i;
	void *tmp;

	if (m == NULL || kiln_masker_count(m) == 0)
		return;
	json_array_foreach(attempts, i, a)
	{
		json_object_foreach_safe(a, tmp, k, v)
		{
			size_t len = json_string_length(v);
			char *b;

			if (!json_is_string(v) || (b = malloc(len + 1)) == NULL)
				continue;
			memcpy(b, json_string_value(v), len);
			len = kiln_mask_inplace(m, b, len);
			json_t *nv = json_stringn(b, len);
			json_object_set_new(a, k, nv ? nv : json_string("(masked)"));
			explicit_bzero(b, len);
			free(b);
		}
	}
}

struct collect {
	struct kiln_server *s;
	struct kiln_db *db;
	struct kiln_log *log;
	int64_t job;
	size_t count;
	uint64_t bytes;
	bool over;   /* more than KILN_MAX_ARTIFACTS */
	char *error; /* first storage error, malloc'd */
	/* granted secrets; an artifact holding one is not stored when
	 * scan_fail (policy artifacts.secret_scan: fail) */
	const struct kiln_masker *masker;
	bool scan_fail;
	size_t secret_hits;
};

static void on_output(void *cls, int stream, const char *buf, size_t len)
{
	struct run_ctx *c = cls;
	struct log_emit e = {.log = c->log, .stream = stream, .mu = &c->log_mu};
	uint64_t now;

	if (c->mask[stream == 2] != NULL) {
		kiln_mask_stream_feed(c->mask[stream == 2], buf, len, log_emit, &e);
	} else {
		pthread_mutex_lock(&c->log_mu);
		kiln_log_append(c->log, stream, buf, len);
		pthread_mutex_unlock(&c->log_mu);
	}
	now = kiln_now_ns();
	if (now - c->last_notify_ns >= NOTIFY_EVERY_NS) {
		c->last_notify_ns = now;
		kiln_server_notify(c->s);
	}
}

/* ---- removing a tree the build named ---- */

/* Remove everything below dirfd (and not dirfd itself). Never follows a
 * link: entries are unlinked by name relative to their directory. */
static int rm_children(int dirfd, unsigned depth)
{
	DIR *d;
	struct dirent *de;
	int dup_fd, rc = 0;

	if (depth > WALK_MAX_DEPTH)
		return -1;
	dup_fd = dup(dirfd);
	if (dup_fd < 0)
		return -1;
	d = fdopendir(dup_fd);
	if (d == NULL) {
		close(dup_fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno == EISDIR || errno == EPERM) {
			int sub = openat(dirfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				rc = -1;
				continue;
			}
			if (rm_children(sub, depth + 1) < 0)
				rc = -1;
			close(sub);
			if (unlinkat(dirfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
				rc = -1;
		} else {
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

/* Remove parent/name entirely (absent is fine). */
static int rm_tree_at(const char *parent, const char *name)
{
	cleanup_fd int pfd = -1, fd = -1;

	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	if (unlinkat(pfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (rm_children(fd, 0) < 0)
		return -1;
	return unlinkat(pfd, name, AT_REMOVEDIR);
}

int kiln_workers_clean_tmp(struct kiln_server *s)
{
	cleanup_fd int fd = open(s->tmp_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -1;
	return rm_children(fd, 0);
}

/* ---- artifacts ---- */

static void collect_error(struct collect *c, const char *msg)
{
	if (c->error == NULL)
		c->error = strdup(msg);
}

static void note_skipped(struct collect *c, const char *rel, const char *why)
{
	char safe[512];

	mask_sanitize(c->masker, safe, sizeof(safe), rel);
	kiln_log_note(c->log, "artifact skipped: %s: %s", safe, why);
}

static void collect_file(struct collect *c, int dirfd, const char *name, const char *rel)
{
	struct kiln_error *err = NULL;
	char hex[KILN_SHA256_HEX], safe[512];
	cleanup_fd int fd = -1;
	uint64_t size = 0;
	struct stat st;

	if (c->count >= KILN_MAX_ARTIFACTS) {
		if (!c->over)
			kiln_log_note(c->log, "more than %d artifacts: the rest are not kept",
				      KILN_MAX_ARTIFACTS);
		c->over = true;
		return;
	}
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		note_skipped(c, rel, "not a regular file");
		return;
	}
	/* Before it is accepted: does it hold a granted secret (raw or
	 * encoded)? */
	if (c->masker != NULL && kiln_masker_count(c->masker) > 0) {
		int hit = kiln_mask_scan_fd(c->masker, fd);

		if (hit != 0) {
			c->secret_hits++;
			if (hit > 0)
				kiln_metrics_count(KILN_M_VIOLATIONS, "secret_in_artifact");
			if (hit < 0 || c->scan_fail) {
				note_skipped(c, rel,
					     hit < 0 ? "could not be scanned for secrets"
						     : "holds a granted secret: not stored");
				return;
			}
			mask_sanitize(c->masker, safe, sizeof(safe), rel);
			kiln_log_note(c->log,
				      "warning: artifact %s holds a granted secret (policy: "
				      "secret_scan warn)",
				      safe);
		}
		if (lseek(fd, 0, SEEK_SET) != 0) {
			note_skipped(c, rel, "cannot be read again after the scan");
			return;
		}
	}
	if (kiln_cas_put_fd(c->s->cas, fd, 0, hex, &size, &err) < 0 ||
	    kiln_db_artifact_add(c->db, c->job, rel, size, hex, &err) < 0) {
		kiln_logf("job %" PRId64 ": artifact: %s", c->job, err ? err->msg : "?");
		collect_error(c, err ? err->msg : "storing an artifact failed");
		kiln_error_free(&err);
		note_skipped(c, rel, "could not be stored");
		return;
	}
	c->count++;
	c->bytes += size;
	mask_sanitize(c->masker, safe, sizeof(safe), rel);
	kiln_log_note(c->log, "artifact %s (%" PRIu64 " bytes, sha256 %s)", safe, size, hex);
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool name_ok(const char *name)
{
	if (!kiln_utf8_valid(name, strlen(name)))
		return false;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static void collect_dir(struct collect *c, int dirfd, const char *rel, unsigned depth)
{
	DIR *d;
	struct dirent *de;
	int dup_fd;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (depth > WALK_MAX_DEPTH) {
		note_skipped(c, rel, "nested too deep");
		return;
	}
	dup_fd = dup(dirfd);
	if (dup_fd < 0 || (d = fdopendir(dup_fd)) == NULL) {
		if (dup_fd >= 0)
			close(dup_fd);
		collect_error(c, "cannot read the export directory");
		return;
	}
	/* Names first, sorted: artifacts are recorded in a stable order. */
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **nn = realloc(names, nc * sizeof(*nn));
			if (nn == NULL)
				break;
			names = nn;
			cap = nc;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), strcmp_ptr);

	for (size_t i = 0; i < n; i++) {
		char sub[REL_MAX];
		struct stat st;
		int w = rel[0] ? snprintf(sub, sizeof(sub), "%s/%s", rel, names[i])
			       : snprintf(sub, sizeof(sub), "%s", names[i]);

		if (w < 0 || (size_t)w >= sizeof(sub)) {
			note_skipped(c, names[i], "path too long");
			continue;
		}
		if (!name_ok(names[i])) {
			note_skipped(c, sub, "name is not printable UTF-8");
			continue;
		}
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			note_skipped(c, sub, "vanished");
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			note_skipped(c, sub, "symbolic link (links are never followed)");
		} else if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, names[i],
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				note_skipped(c, sub, "cannot open directory");
				continue;
			}
			collect_dir(c, fd, sub, depth + 1);
			close(fd);
		} else if (S_ISREG(st.st_mode)) {
			collect_file(c, dirfd, names[i], sub);
		} else {
			note_skipped(c, sub, "not a regular file");
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* ---- one job ---- */

struct job_run {
	struct worker *wk;
	struct kiln_db *db;
	int64_t id;
	struct kiln_log *log;
	struct kiln_job_outcome o;
	enum kiln_job_event ev;
	char error[1024];
	char *report;
	/* the job's granted secrets (values wiped at the end) */
	struct kiln_secret_value secrets[KILN_SPEC_MAX_SECRETS];
	bool secret_env[KILN_SPEC_MAX_SECRETS];
	size_t nsecrets;
	struct kiln_masker *masker;
	/* borrowed from the job's row (kiln_job_work), for the audit log */
	const char *project, *source_sha256;
};

static void set_error(struct job_run *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_error(struct job_run *j, const char *fmt, ...)
{
	char raw[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Error texts may quote the build (archive member names): no
	 * control characters, and no granted secret, reach the log, the
	 * database or a terminal. */
	mask_sanitize(j->masker, j->error, sizeof(j->error), raw);
	j->o.error = j->error;
}

static void fail_internal(struct job_run *j, const char *reason)
{
	j->ev = KILN_EV_FAIL;
	j->o.reason = reason;
	j->o.exit_code = -1;
	if (j->log != NULL)
		kiln_log_note(j->log, "job failed before it ran: %s", j->error);
}

static void record(struct job_run *j)
{
	struct kiln_server *s = j->wk->s;
	struct kiln_error *err = NULL;
	enum kiln_job_state ns = KILN_JOB_RUNNING;
	uint64_t bytes = 0;
	bool truncated = false;

	/* The log is complete and on disk before the state is final, so a
	 * follower that sees the final state drains it completely. */
	kiln_log_close(j->log, &bytes, &truncated);
	j->log = NULL;
	j->o.log_bytes = bytes;
	j->o.log_truncated = truncated;
	j->o.report_json = j->report;
	/* The outcome is in the audit log before it is in the job's row. */
	{
		char logpath[4200];
		int next = kiln_job_next(KILN_JOB_RUNNING, j->ev);
		const char *state =
			next < 0 ? "unknown" : kiln_job_state_name((enum kiln_job_state)next);

		kiln_log_path(s->log_dir, j->id, logpath, sizeof(logpath));
		for (int attempt = 0; attempt < 5; attempt++) {
			if (kiln_audit_job_finish(s, j->db, j->wk->name, j->id, j->project,
						  j->source_sha256, state, &j->o, logpath,
						  &err) == 0)
				break;
			kiln_logf("job %" PRId64 ": %s", j->id, err ? err->msg : "audit log");
			kiln_error_free(&err);
			if (attempt < 4)
				sleep(1);
		}
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		if (kiln_db_job_finish(j->db, j->id, &j->o, j->ev, &ns, &err) == 0)
			break;
		if (err && err->code == EALREADY) {
			/* Cancelled while queued, as the worker claimed it:
			 * the state is final already; keep the outcome. */
			kiln_error_free(&err);
			if (kiln_db_job_finish(j->db, j->id, &j->o, (enum kiln_job_event) - 1, &ns,
					       &err) < 0)
				kiln_error_free(&err);
			break;
		}
		kiln_logf("job %" PRId64 ": record the outcome: %s", j->id, err ? err->msg : "?");
		kiln_error_free(&err);
		sleep(1);
	}
	kiln_logf("job %" PRId64 " %s (%s)", j->id, kiln_job_event_name(j->ev),
		  j->o.reason ? j->o.reason : "-");
	/* Before the wake-up, so that a follower who saw the job end finds
	 * its provenance (a poller may still be a moment early). */
	kiln_provenance_record(s, j->db, j->id);
	kiln_observe_job(s, j->db, j->id);
	kiln_server_notify(s);
}

static void strip_slashes(char *p)
{
	size_t n = strlen(p);

	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

static int configure(struct kiln_sandbox *sb, const struct kiln_server *s,
		     const struct kiln_spec *spec, const struct job_run *j, int source_fd,
		     const char *outdir, int netns_fd, struct kiln_error **err)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-ec", spec->script, NULL};
	uint64_t output = s->cfg.max_log * 2;

	if (kiln_sandbox_set_command(sb, argv, err) < 0 ||
	    kiln_sandbox_set_source_archive(sb, source_fd, s->cfg.max_files, s->cfg.max_path,
					    s->cfg.max_unpacked, err) < 0 ||
	    kiln_sandbox_set_output_dir(sb, outdir, err) < 0)
		return -1;
	if ((spec->memory &&
	     kiln_sandbox_set_limit(sb, KILN_LIMIT_MEMORY, spec->memory, true, err) < 0) ||
	    (spec->pids &&
	     kiln_sandbox_set_limit(sb, KILN_LIMIT_PIDS, spec->pids, true, err) < 0) ||
	    (spec->cpus_milli &&
	     kiln_sandbox_set_limit(sb, KILN_LIMIT_CPUS, spec->cpus_milli, true, err) < 0) ||
	    (spec->disk &&
	     kiln_sandbox_set_limit(sb, KILN_LIMIT_DISK, spec->disk, true, err) < 0) ||
	    (spec->timeout &&
	     kiln_sandbox_set_limit(sb, KILN_LIMIT_TIMEOUT, spec->timeout, true, err) < 0) ||
	    (output && kiln_sandbox_set_limit(sb, KILN_LIMIT_OUTPUT, output, true, err) < 0))
		return -1;
	/* Egress: the prepared namespace, whose only way out is the proxy. */
	if (netns_fd >= 0) {
		static const char *const proxy_env[] = {
			"HTTP_PROXY=http://127.0.0.1:3128", "HTTPS_PROXY=http://127.0.0.1:3128",
			"http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
			"NO_PROXY=localhost,127.0.0.1,::1", "no_proxy=localhost,127.0.0.1,::1",
		};

		if (kiln_sandbox_set_netns(sb, netns_fd, err) < 0)
			return -1;
		for (size_t i = 0; i < sizeof(proxy_env) / sizeof(proxy_env[0]); i++)
			if (kiln_sandbox_add_env(sb, proxy_env[i], err) < 0)
				return -1;
	}
	for (size_t i = 0; i < spec->nenv; i++)
		if (kiln_sandbox_add_env(sb, spec->env[i], err) < 0)
			return -1;
	for (size_t i = 0; i < j->nsecrets; i++) {
		const struct kiln_secret_value *v = &j->secrets[i];

		if (kiln_sandbox_add_secret(sb, v->name, v->value, v->len, err) < 0)
			return -1;
		if (j->secret_env[i]) {
			/* Only where the policy says env: true. */
			size_t nl = strlen(v->name);
			char *kv = malloc(nl + 1 + v->len + 1);
			int r;

			if (kv == NULL)
				return kiln_error_set(err, ENOMEM, "secret %s", v->name);
			memcpy(kv, v->name, nl);
			kv[nl] = '=';
			memcpy(kv + nl + 1, v->value, v->len);
			kv[nl + 1 + v->len] = '\0';
			r = strlen(kv) == nl + 1 + v->len ? kiln_sandbox_add_env(sb, kv, err)
							  : kiln_error_set(err, EINVAL,
									   "secret %s: holds a NUL "
									   "byte, cannot be an "
									   "environment variable",
									   v->name);
			explicit_bzero(kv, nl + 1 + v->len);
			free(kv);
			if (r < 0)
				return kiln_error_set(err, EINVAL,
						      "secret %s cannot be an environment "
						      "variable",
						      v->name);
		}
	}
	for (size_t i = 0; i < spec->nartifacts; i++) {
		char path[REL_MAX];

		snprintf(path, sizeof(path), "%s", spec->artifacts[i]);
		strip_slashes(path);
		if (kiln_sandbox_add_export(sb, path, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- the runner process ----
 *
 * The sandbox is not started from this multi-threaded process. The engine
 * creates its init with a raw clone(), and such a child of a process with
 * other threads inherits their locks as they were: a malloc arena lock held
 * by an HTTP thread at that moment stays held forever, and init's fork() of
 * the build deadlocks (seen in testing: init stuck in
 * __malloc_fork_lock_parent); glibc's setgroups()/setuid() in init wait for
 * a thread that was being created (seen too: __nptl_setxid). So each job
 * gets a runner: fork() (glibc's, which leaves the child's malloc and stdio
 * consistent and the child single-threaded), close every descriptor but
 * three, and run the sandbox from there. The runner stays single-threaded
 * and installs no signal handler (init would inherit it).
 *
 * The runner sends the build's output and the engine's report back over a
 * pipe, and, first of all, a duplicate of the sandbox's cancel fd over a
 * socket (SCM_RIGHTS): writing a byte to it cancels the run, exactly as the
 * engine documents. The runner dies with its worker thread
 * (PR_SET_PDEATHSIG) and init with the runner, so kill -9 of kilnd leaves
 * no build behind.
 */

enum { MSG_STDOUT = 1, MSG_STDERR = 2, MSG_REPORT = 3, MSG_SETUP_ERROR = 4 };

struct msg_hdr {
	uint32_t type;
	uint32_t len;
};

#define MSG_MAX (16u << 20)

static void send_msg(int fd, uint32_t type, const void *data, size_t len)
{
	struct msg_hdr h = {.type = type, .len = (uint32_t)len};

	if (len > MSG_MAX)
		h.len = (uint32_t)(len = MSG_MAX);
	if (kiln_write_all(fd, &h, sizeof(h)) == 0 && len > 0)
		kiln_write_all(fd, data, len);
}

static void runner_output(void *cls, int stream, const char *buf, size_t len)
{
	send_msg(*(int *)cls, stream == 1 ? MSG_STDOUT : MSG_STDERR, buf, len);
}

__attribute__((noreturn)) static void
runner_main(struct kiln_server *s, const struct kiln_spec *spec, const struct job_run *j, int src,
	    const char *outdir, int netns_fd, int wfd, int fdsock, pid_t parent)
{
	struct kiln_error *err = NULL;
	struct kiln_result *res = NULL;
	struct kiln_sandbox *sb;
	int keep[4] = {wfd, src, fdsock, netns_fd};
	char *report;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	/* Nothing of kilnd's (client sockets, the database, the listener)
	 * stays open in here. */
	if (kiln_close_fds_except(keep, netns_fd >= 0 ? 4 : 3) < 0)
		_exit(1);
	sb = kiln_sandbox_new();
	if (sb == NULL) {
		send_msg(wfd, MSG_SETUP_ERROR, "sandbox: out of memory", 22);
		_exit(0);
	}
	if (configure(sb, s, spec, j, src, outdir, netns_fd, &err) < 0) {
		char msg[KILN_ERROR_MAX + 16];
		int n = snprintf(msg, sizeof(msg), "sandbox: %s", err ? err->msg : "?");
		send_msg(wfd, MSG_SETUP_ERROR, msg, (size_t)n < sizeof(msg) ? (size_t)n : 0);
		_exit(0);
	}
	close(src);
	if (netns_fd >= 0)
		close(netns_fd);
	kiln_sandbox_set_output_fn(sb, runner_output, &wfd);
	if (kiln_send_fd(fdsock, kiln_sandbox_cancel_fd(sb), "c", 1) < 0) {
		send_msg(wfd, MSG_SETUP_ERROR, "sandbox: cannot pass the cancel fd", 34);
		_exit(0);
	}
	close(fdsock);
	if (kiln_sandbox_run(sb, &res, &err) < 0) {
		const char *m = err ? err->msg : "sandbox setup failed";
		send_msg(wfd, MSG_SETUP_ERROR, m, strlen(m));
		_exit(0);
	}
	report = kiln_result_to_json(res);
	if (report != NULL)
		send_msg(wfd, MSG_REPORT, report, strlen(report));
	_exit(0);
}

/* What the worker learns from its runner. */
struct run_summary {
	bool have_report;
	char *report;	   /* the engine's JSON report, as text */
	char *setup_error; /* kiln_sandbox_run() failed */
	int exit_code;
	char reason[32];
	uint64_t wall_ms;
	char *archive_error, *export_error;
	json_t *skipped; /* export.skipped, an array of strings, or NULL */
	int runner_status;
};

static void summary_free(struct run_summary *r)
{
	free(r->report);
	free(r->setup_error);
	free(r->archive_error);
	free(r->export_error);
	json_decref(r->skipped);
}

static char *json_strdup(json_t *v)
{
	const char *s = json_string_value(v);

	return s ? strdup(s) : NULL;
}

static void summary_parse(struct run_summary *r)
{
	json_t *j = json_loads(r->report, 0, NULL), *exp;
	const char *reason;

	if (j == NULL)
		return;
	r->have_report = true;
	r->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
	reason = json_string_value(json_object_get(j, "reason"));
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "unknown");
	r->wall_ms = (uint64_t)json_integer_value(json_object_get(j, "wall_time_ms"));
	r->archive_error = json_strdup(json_object_get(j, "archive_error"));
	exp = json_object_get(j, "export");
	r->export_error = json_strdup(json_object_get(exp, "error"));
	r->skipped = json_incref(json_object_get(exp, "skipped"));
	json_decref(j);
}

/* Read the runner's messages until it closes the pipe. */
static void runner_read(int rfd, struct run_ctx *rc, struct run_summary *r)
{
	struct msg_hdr h;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;

	for (;;) {
		n = kiln_read_all(rfd, &h, sizeof(h));
		if (n != (ssize_t)sizeof(h) || h.len > MSG_MAX)
			break;
		if (h.len + 1 > cap) {
			char *nb = realloc(buf, h.len + 1);
			if (nb == NULL)
				break;
			buf = nb;
			cap = h.len + 1;
		}
		if (h.len > 0 && kiln_read_all(rfd, buf, h.len) != (ssize_t)h.len)
			break;
		buf[h.len] = '\0';
		switch (h.type) {
		case MSG_STDOUT:
		case MSG_STDERR: on_output(rc, (int)h.type, buf, h.len); break;
		case MSG_REPORT:
			free(r->report);
			r->report = strdup(buf);
			break;
		case MSG_SETUP_ERROR:
			free(r->setup_error);
			r->setup_error = strdup(buf);
			break;
		default: break;
		}
	}
	free(buf);
}

/* Run the sandbox in a runner process. -1 only if the runner could not be
 * started (j->error set); everything else is in *r. */
static int run_sandbox(struct job_run *j, const struct kiln_spec *spec, int src, const char *outdir,
		       struct kiln_job_egress *eg, struct run_ctx *rc, struct run_summary *r)
{
	struct kiln_server *s = j->wk->s;
	int p[2] = {-1, -1}, sk[2] = {-1, -1}, cancel_fd = -1;
	pid_t pid, me = getpid();
	struct kiln_error *err = NULL;
	char c;

	/* Fail closed: a job that was granted egress and cannot get its
	 * proxy does not run (with no network, it would fail obscurely). */
	if (kiln_job_egress_start(eg, s, rc->log, &rc->log_mu, &err) < 0) {
		set_error(j, "%s", err ? err->msg : "egress: could not start the proxy");
		kiln_error_free(&err);
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0) {
		set_error(j, "pipe: %s", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		set_error(j, "fork the sandbox runner: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		runner_main(s, spec, j, src, outdir, eg->netns_fd, p[1], sk[1], me);
	close(p[1]);
	close(sk[1]);
	/* The sandbox's cancel fd, or end of file if the runner failed
	 * before it had a sandbox. From here on a cancel reaches it; a
	 * cancel that came earlier is in the database. */
	if (kiln_recv_fd(sk[0], &cancel_fd, &c, 1) == 1 && cancel_fd >= 0) {
		kiln_server_running_add(s, j->id, cancel_fd);
		if (kiln_db_job_cancel_requested(j->db, j->id))
			kiln_server_cancel_running(s, j->id);
	}
	close(sk[0]);
	runner_read(p[0], rc, r);
	close(p[0]);
	if (cancel_fd >= 0) {
		kiln_server_running_remove(s, j->id);
		close(cancel_fd);
	}
	while (waitpid(pid, &r->runner_status, 0) < 0 && errno == EINTR)
		;
	/* The sandbox is gone: so is every connection it had. */
	kiln_job_egress_stop(eg);
	if (r->report != NULL)
		summary_parse(r);
	return 0;
fail:
	kiln_job_egress_stop(eg);
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		if (sk[i] >= 0)
			close(sk[i]);
	}
	return -1;
}

static void map_outcome(struct job_run *j, const struct run_summary *r, bool cancel_requested,
			const struct collect *c)
{
	j->o.exit_code = r->exit_code;
	j->o.reason = r->reason;
	if (strcmp(r->reason, "cancelled") == 0) {
		j->ev = KILN_EV_CANCEL;
		if (kiln_server_stopping(j->wk->s))
			set_error(j, "kilnd shut down while the job ran");
	} else if (strcmp(r->reason, "exited") == 0 && r->exit_code == 0) {
		j->ev = KILN_EV_SUCCEED;
		if (r->export_error != NULL) {
			j->ev = KILN_EV_FAIL;
			j->o.reason = "export";
			set_error(j, "export of the artifacts failed: %s", r->export_error);
		} else if (c->error != NULL) {
			j->ev = KILN_EV_FAIL;
			j->o.reason = "internal";
			set_error(j, "storing the artifacts failed: %s", c->error);
		}
	} else if (strcmp(r->reason, "timeout") == 0) {
		j->ev = KILN_EV_TIMEOUT;
	} else if (cancel_requested) {
		j->ev = KILN_EV_CANCEL;
		j->o.reason = "cancelled";
	} else {
		j->ev = KILN_EV_FAIL;
		if (strcmp(r->reason, "archive") == 0 || r->archive_error != NULL) {
			j->o.reason = "archive_invalid";
			set_error(j, "the source archive was refused: %s",
				  r->archive_error ? r->archive_error : "unknown reason");
		}
	}
}

static void final_note(struct job_run *j, const struct run_summary *r)
{
	const char *what = j->ev == KILN_EV_SUCCEED   ? "succeeded"
			   : j->ev == KILN_EV_TIMEOUT ? "timed out"
			   : j->ev == KILN_EV_CANCEL  ? "was cancelled"
						      : "failed";

	kiln_log_note(j->log, "job %s: exit %d, reason %s, %" PRIu64 ".%03" PRIu64 "s", what,
		      r->exit_code, j->o.reason, r->wall_ms / 1000, r->wall_ms % 1000);
	if (j->o.error != NULL)
		kiln_log_note(j->log, "%s", j->error);
}

/* Decrypt the secrets the spec asks for (the policy granted them:
 * kiln_policy_apply checked), record each grant (name and version, never
 * the value), and set up the masker with every one of them. From here on
 * every note passes through the masker too. */
/* secret.granted: the name and version, never the value. */
static int audit_grant(struct job_run *j, const char *name, int64_t version, bool env,
		       struct kiln_error **err)
{
	json_t *f = json_pack("{s:I,s:s,s:s,s:I,s:b}", "job", (json_int_t)j->id, "project",
			      j->project ? j->project : "", "secret", name, "version",
			      (json_int_t)version, "env", env);
	int rc = kiln_audit_append(j->wk->s, j->db, "secret.granted", j->wk->name, f, err);

	json_decref(f);
	return rc;
}

static int grant_secrets(struct job_run *j, const struct kiln_policy *pol,
			 const struct kiln_spec *spec, const char *project)
{
	struct kiln_server *s = j->wk->s;
	struct kiln_error *err = NULL;

	j->masker = kiln_masker_new();
	if (j->masker == NULL) {
		set_error(j, "out of memory for the secret masker");
		fail_internal(j, "internal");
		return -1;
	}
	kiln_log_set_filter(j->log, note_filter, j->masker);
	for (size_t i = 0; i < spec->nsecrets && i < KILN_SPEC_MAX_SECRETS; i++) {
		const struct kiln_policy_secret *g = kiln_policy_secret(pol, spec->secrets[i]);
		struct kiln_secret_value *v = &j->secrets[j->nsecrets];

		if (g == NULL || s->secrets == NULL) {
			set_error(j, "secret %s: not granted", spec->secrets[i]);
			fail_internal(j, "policy_denied");
			return -1;
		}
		if (kiln_secret_get(s->secrets, j->db, project, spec->secrets[i], v, &err) < 0) {
			bool missing = err && err->code == ENOENT;
			set_error(j, "secret %s: %s", spec->secrets[i],
				  missing ? "not set for this project (kiln secret set)"
					  : (err ? err->msg : "?"));
			kiln_error_free(&err);
			fail_internal(j, "secret_unavailable");
			return -1;
		}
		j->secret_env[j->nsecrets] = g->env;
		j->nsecrets++;
		if (kiln_masker_add(j->masker, v->value, v->len) < 0) {
			set_error(j,
				  "secret %s cannot be masked safely (out of memory, or it "
				  "holds every replacement character)",
				  v->name);
			fail_internal(j, "secret_unavailable");
			return -1;
		}
		/* The grant and its audit entry commit together; unrecorded,
		 * the job does not run. */
		if (kiln_db_begin(j->db, &err) < 0 ||
		    kiln_db_job_secret_grant(j->db, j->id, v->name, v->version, &err) < 0 ||
		    audit_grant(j, v->name, v->version, g->env, &err) < 0 ||
		    kiln_db_commit(j->db, &err) < 0) {
			kiln_db_rollback(j->db);
			set_error(j, "record the grant of %s: %s", v->name, err ? err->msg : "?");
			kiln_error_free(&err);
			fail_internal(j, "internal");
			return -1;
		}
		kiln_log_note(
			j->log, "secret %s (version %" PRId64 ") granted as /run/secrets/%s%s",
			v->name, v->version, v->name, g->env ? " and in the environment" : "");
	}
	return 0;
}

static void run_job(struct worker *wk, struct kiln_db *db, int64_t id)
{
	struct kiln_server *s = wk->s;
	struct job_run j = {.wk = wk, .db = db, .id = id, .ev = KILN_EV_FAIL};
	struct kiln_job_work w;
	struct kiln_error *err = NULL;
	struct kiln_spec_error se;
	struct kiln_spec *spec = NULL;
	struct run_summary sum;
	struct run_ctx rc = {.s = s};
	struct kiln_job_egress eg;
	struct collect col = {.s = s, .db = db, .job = id};
	struct kiln_policy_set *ps = NULL;
	const struct kiln_policy *pol = NULL;
	char jobname[64], jobdir[4200], outdir[4300];
	cleanup_fd int src = -1;
	uint64_t src_size = 0;
	bool cancel_requested;

	memset(&w, 0, sizeof(w));
	memset(&sum, 0, sizeof(sum));
	kiln_job_egress_clear(&eg);
	pthread_mutex_init(&rc.log_mu, NULL);
	j.o.exit_code = -1;
	snprintf(jobname, sizeof(jobname), "job-%" PRId64, id);
	snprintf(jobdir, sizeof(jobdir), "%s/%s", s->tmp_dir, jobname);
	snprintf(outdir, sizeof(outdir), "%s/out", jobdir);

	if (kiln_log_open(s->log_dir, id, s->cfg.max_log, &j.log, &err) < 0) {
		set_error(&j, "open the log: %s", err ? err->msg : "?");
		kiln_error_free(&err);
		j.log = NULL;
		fail_internal(&j, "internal");
		goto out;
	}
	kiln_log_note(j.log, "job %" PRId64 " started on %s", id, wk->name);
	if (kiln_db_job_work(db, id, &w, &err) < 0) {
		set_error(&j, "read the job: %s", err ? err->msg : "?");
		kiln_error_free(&err);
		fail_internal(&j, "internal");
		goto out;
	}
	j.project = w.project;
	j.source_sha256 = w.source_sha256;
	{
		json_t *f = json_pack("{s:I,s:s,s:s?,s:s}", "job", (json_int_t)id, "project",
				      w.project ? w.project : "", "source_sha256", w.source_sha256,
				      "worker", wk->name);
		int ar = kiln_audit_append(s, db, "job.start", wk->name, f, &err);

		json_decref(f);
		if (ar < 0) {
			/* Unrecorded, the job does not run. */
			set_error(&j, "%s", err ? err->msg : "audit log");
			kiln_error_free(&err);
			fail_internal(&j, "internal");
			goto out;
		}
	}
	/* The text as submitted is what runs, parsed again under today's
	 * limits. */
	memset(&se, 0, sizeof(se));
	if (w.spec_text == NULL || kiln_spec_parse(w.spec_text, strlen(w.spec_text),
						   &s->cfg.spec_limits, &spec, &se) < 0) {
		set_error(&j, "kiln.yml:%d:%d: %s", se.line, se.column, se.message);
		fail_internal(&j, "spec_invalid");
		goto out;
	}
	/* ... and checked against the project's policy as it is now: a
	 * reload since the submission applies to this run. */
	ps = kiln_policy_current();
	pol = ps ? kiln_policy_lookup(ps, w.project) : NULL;
	{
		char msg[512];

		if (pol == NULL ||
		    kiln_policy_apply(pol, spec, w.signed_submission, msg, sizeof(msg)) < 0) {
			set_error(&j, "policy: %s", pol ? msg : "no policy set is loaded");
			fail_internal(&j, "policy_denied");
			goto out;
		}
		if (kiln_db_job_set_policy(db, id, pol->digest, &err) < 0) {
			set_error(&j, "record the policy: %s", err ? err->msg : "?");
			kiln_error_free(&err);
			fail_internal(&j, "internal");
			goto out;
		}
		kiln_log_note(j.log, "policy %s (%s)", pol->digest,
			      pol->builtin ? "built-in" : pol->file);
		if (kiln_job_egress_init(&eg, pol, spec, msg, sizeof(msg)) < 0) {
			set_error(&j, "policy: %s", msg);
			fail_internal(&j, "policy_denied");
			goto out;
		}
	}
	if (grant_secrets(&j, pol, spec, w.project) < 0)
		goto out;
	col.masker = j.masker;
	col.scan_fail = pol->secret_scan == KILN_SCAN_FAIL;
	if (w.source_sha256 == NULL ||
	    kiln_cas_open_blob(s->cas, w.source_sha256, &src, &src_size, &err) < 0) {
		set_error(&j, "source archive: %s", err ? err->msg : "missing");
		kiln_error_free(&err);
		fail_internal(&j, "internal");
		goto out;
	}
	if (rm_tree_at(s->tmp_dir, jobname) < 0 || mkdir(jobdir, 0700) < 0) {
		set_error(&j, "create %s: %s", jobdir, strerror(errno));
		fail_internal(&j, "internal");
		goto out;
	}
	if (w.cancel_requested || kiln_server_stopping(s)) {
		j.ev = KILN_EV_CANCEL;
		j.o.reason = "cancelled";
		kiln_log_note(j.log, "job cancelled before it started");
		goto out;
	}

	rc.log = j.log;
	if (j.masker != NULL && kiln_masker_count(j.masker) > 0) {
		rc.mask[0] = kiln_mask_stream_new(j.masker);
		rc.mask[1] = kiln_mask_stream_new(j.masker);
		if (rc.mask[0] == NULL || rc.mask[1] == NULL) {
			set_error(&j, "out of memory for the secret masker");
			fail_internal(&j, "internal");
			goto out;
		}
	}
	if (run_sandbox(&j, spec, src, outdir, &eg, &rc, &sum) < 0) {
		fail_internal(&j, "internal");
		goto out;
	}
	for (int k = 0; k < 2; k++)
		if (rc.mask[k] != NULL) {
			struct log_emit e = {.log = j.log, .stream = k + 1, .mu = &rc.log_mu};
			kiln_mask_stream_finish(rc.mask[k], log_emit, &e);
		}
	if (sum.setup_error != NULL || !sum.have_report) {
		if (sum.setup_error != NULL)
			set_error(&j, "%s", sum.setup_error);
		else if (WIFSIGNALED(sum.runner_status))
			set_error(&j, "the sandbox runner was killed by signal %d",
				  WTERMSIG(sum.runner_status));
		else
			set_error(&j, "the sandbox runner ended without a report");
		j.ev = KILN_EV_FAIL;
		j.o.reason = "internal";
		kiln_log_note(j.log, "sandbox setup failed: %s", j.error);
		if (kiln_db_job_cancel_requested(db, id)) {
			j.ev = KILN_EV_CANCEL;
			j.o.reason = "cancelled";
		}
		goto out;
	}
	cancel_requested = kiln_db_job_cancel_requested(db, id);

	col.log = j.log;
	{
		cleanup_fd int ofd = open(outdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (ofd >= 0)
			collect_dir(&col, ofd, "", 0);
	}
	for (size_t i = 0; i < json_array_size(sum.skipped); i++) {
		const char *sk = json_string_value(json_array_get(sum.skipped, i));
		char safe[600];

		if (sk == NULL)
			continue;
		mask_sanitize(j.masker, safe, sizeof(safe), sk);
		kiln_log_note(j.log, "export skipped: %s", safe);
	}
	map_outcome(&j, &sum, cancel_requested, &col);
	if (col.secret_hits > 0 && col.scan_fail && j.ev == KILN_EV_SUCCEED) {
		j.ev = KILN_EV_FAIL;
		j.o.reason = "secret_in_artifact";
		set_error(&j, "%zu artifact(s) held a granted secret and were not stored",
			  col.secret_hits);
	}
	j.report = sum.report;
	sum.report = NULL;
	final_note(&j, &sum);

out:
	pthread_mutex_lock(&eg.mu);
	mask_attempts(j.masker, eg.attempts);
	pthread_mutex_unlock(&eg.mu);
	if (kiln_job_egress_save(&eg, db, id, w.project, &err) < 0) {
		kiln_logf("job %" PRId64 ": record egress: %s", id, err ? err->msg : "?");
		kiln_error_free(&err);
	}
	/* The proxy is stopped: its counts and attempts are final. */
	if (eg.on && eg.denied > 0 &&
	    kiln_audit_egress(s, db, wk->name, id, w.project, eg.attempts, eg.allowed, eg.denied,
			      eg.dropped, &err) < 0) {
		kiln_logf("job %" PRId64 ": %s", id, err ? err->msg : "audit log: egress");
		kiln_error_free(&err);
	}
	kiln_job_egress_free(&eg);
	record(&j);
	for (int k = 0; k < 2; k++)
		kiln_mask_stream_free(rc.mask[k]);
	for (size_t i = 0; i < j.nsecrets; i++)
		kiln_secret_value_wipe(&j.secrets[i]);
	kiln_masker_free(j.masker);
	kiln_policy_set_unref(ps);
	summary_free(&sum);
	free(j.report);
	free(col.error);
	kiln_spec_free(spec);
	kiln_db_job_work_free(&w);
	if (rm_tree_at(s->tmp_dir, jobname) < 0)
		kiln_logf("job %" PRId64 ": remove %s: %s", id, jobdir, strerror(errno));
}

/* ---- the pool ---- */

/* The project's cap of running jobs, from the policy in force (called
 * inside the claim transaction). */
static unsigned claim_cap(void *ctx, const char *project)
{
	struct kiln_policy_set *ps = ctx;

	return ps ? kiln_policy_lookup(ps, project)->concurrency : 0;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct kiln_server *s = wk->s;
	struct kiln_error *err = NULL;
	struct kiln_db *db = NULL;
	uint64_t seen;
	int64_t id;
	int r;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		seen = s->qseq;
		pthread_mutex_unlock(&s->mu);

		if (db == NULL && (db = kiln_server_db_acquire(s, &err)) == NULL) {
			kiln_logf("%s: %s", wk->name, err ? err->msg : "database");
			kiln_error_free(&err);
			kiln_server_wait_queue(s, seen, 5000);
			continue;
		}
		{
			struct kiln_policy_set *ps = kiln_policy_current();
			r = kiln_db_job_claim_capped(db, wk->name, claim_cap, ps, &id, &err);
			kiln_policy_set_unref(ps);
		}
		if (r < 0) {
			kiln_logf("%s: claim a job: %s", wk->name, err ? err->msg : "?");
			kiln_error_free(&err);
			kiln_server_wait_queue(s, seen, 1000);
			continue;
		}
		if (r == 0) {
			kiln_server_wait_queue(s, seen, 1000);
			continue;
		}
		pthread_mutex_lock(&s->mu);
		s->nbusy++;
		pthread_mutex_unlock(&s->mu);
		kiln_server_notify(s); /* queued -> running */
		run_job(wk, db, id);
		pthread_mutex_lock(&s->mu);
		s->nbusy--;
		pthread_mutex_unlock(&s->mu);
	}
	kiln_server_db_release(s, db);
	return NULL;
}

static struct worker *pool;

int kiln_workers_start(struct kiln_server *s, struct kiln_error **err)
{
	long n = s->cfg.workers;
	int e;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	if (n > KILN_MAX_WORKERS)
		n = KILN_MAX_WORKERS;
	pool = calloc((size_t)n, sizeof(*pool));
	if (pool == NULL)
		return kiln_error_set(err, ENOMEM, "workers");
	for (long i = 0; i < n; i++) {
		pool[i].s = s;
		pool[i].index = (unsigned)i;
		snprintf(pool[i].name, sizeof(pool[i].name), "kilnd-%d-w%ld", (int)getpid(), i);
		e = pthread_create(&s->workers[i], NULL, worker_main, &pool[i]);
		if (e != 0) {
			kiln_error_set(err, e, "start worker %ld", i);
			kiln_server_stop(s);
			kiln_workers_stop(s);
			return -1;
		}
		s->nworkers++;
	}
	return 0;
}

void kiln_workers_stop(struct kiln_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	s->nworkers = 0;
	free(pool);
	pool = NULL;
}
