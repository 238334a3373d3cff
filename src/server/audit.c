/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log (audit.h, docs/audit.md): entries, the log key, the
 * start-up check, the checkpointer and the tile endpoints. The Merkle
 * arithmetic is src/trust/tlog.c, the tables src/store/auditlog.c.
 *
 * Why a checkpoint can never contradict an earlier one: entries are only
 * ever inserted at the next index, inside the transaction that also
 * stores the subtree hashes they complete; checkpoints are signed over the
 * stored hashes and stored only when larger than every stored one. A
 * database changed behind kilnd's back fails the start-up check (the
 * entries, their stored hashes and the newest checkpoint are compared) and
 * kilnd then signs nothing more.
 */
#include "server/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "server/metrics.h"
#include "store/auditlog.h"
#include "trust/tlog.h"

#define CHECKPOINT_EVERY_MS 1000
#define AUTH_BURST	    100.0
#define AUTH_RATE	    20.0

struct kiln_audit {
	struct kiln_server *s;
	struct kiln_tlog_key key;
	char vkey[512];

	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* under mu */
	bool stop;
	/* under mu: why the log refuses appends, "" when it is sound */
	char broken[512];
	/* under mu: the auth-failure token bucket */
	double tokens;
	struct timespec last_refill;
	uint64_t suppressed;
	/* under mu: the bytes of entries [0, bytes_upto), for the metrics */
	uint64_t bytes, bytes_upto;

	pthread_t thread;
	bool thread_started;
};

static struct kiln_audit *audit_of(struct kiln_server *s)
{
	return s->audit;
}

/* ---- the key ---- */

/* DATA/audit.key: "PRIVATE+KEY+<name>+<keyid>+base64(0x01 || seed)", the
 * signer key format of golang.org/x/mod/sumdb/note. */
static int key_load(const char *path, struct kiln_tlog_key *k, struct kiln_error **err)
{
	cleanup_fd int fd = kiln_open_key_file(path, true, err);
	char buf[1024];
	char *name, *idp, *b64, *nl;
	unsigned char raw[64];
	size_t rawlen = 0;
	unsigned long id;
	ssize_t n;

	if (fd < 0)
		return kiln_error_prefix(err, "audit key");
	n = kiln_read_all(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return kiln_error_set(err, errno, "read %s", path);
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	if (nl != NULL)
		*nl = '\0';
	if (strncmp(buf, "PRIVATE+KEY+", 12) != 0)
		goto bad;
	name = buf + 12;
	idp = strchr(name, '+');
	if (idp == NULL)
		goto bad;
	*idp++ = '\0';
	b64 = strchr(idp, '+');
	if (b64 == NULL)
		goto bad;
	*b64++ = '\0';
	if (!kiln_tlog_name_valid(name) || strlen(name) >= sizeof(k->name) ||
	    sodium_base642bin(raw, sizeof(raw), b64, strlen(b64), NULL, &rawlen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    rawlen != 33 || raw[0] != 0x01)
		goto bad;
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	crypto_sign_seed_keypair(k->pk, k->sk, raw + 1);
	k->has_sk = true;
	k->id = kiln_tlog_key_id(k->name, k->pk);
	id = strtoul(idp, NULL, 16);
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(buf, sizeof(buf));
	if (id != k->id)
		return kiln_error_set(err, EINVAL, "audit key %s: the key id does not match", path);
	return 0;
bad:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(raw, sizeof(raw));
	return kiln_error_set(err, EINVAL, "audit key %s: not a signer key", path);
}

static int key_create(const char *path, struct kiln_error **err)
{
	unsigned char raw[33];
	char host[256] = "", name[KILN_TLOG_ORIGIN_MAX], b64[64], text[512];
	const char *env = getenv("KILN_AUDIT_ORIGIN");
	cleanup_fd int fd = -1;
	uint32_t id;
	unsigned char pk[32], sk[64];
	int r;

	if (env != NULL && env[0] != '\0') {
		snprintf(name, sizeof(name), "%.*s", (int)sizeof(name) - 1, env);
	} else {
		if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		snprintf(name, sizeof(name), "kiln/%.200s", host);
		for (char *p = name; *p; p++)
			if (*p <= ' ' || *p > '~' || *p == '+')
				*p = '-';
	}
	if (!kiln_tlog_name_valid(name))
		return kiln_error_set(err, EINVAL,
				      "audit log origin '%s': expected printable ASCII without "
				      "spaces or '+'",
				      name);
	raw[0] = 0x01;
	randombytes_buf(raw + 1, 32);
	crypto_sign_seed_keypair(pk, sk, raw + 1);
	id = kiln_tlog_key_id(name, pk);
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	snprintf(text, sizeof(text), "PRIVATE+KEY+%s+%08" PRIx32 "+%s\n", name, id, b64);
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(b64, sizeof(b64));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		sodium_memzero(text, sizeof(text));
		return kiln_error_set(err, errno, "create %s", path);
	}
	r = kiln_write_all(fd, text, strlen(text));
	sodium_memzero(text, sizeof(text));
	if (r < 0 || fsync(fd) < 0) {
		int e = errno;
		unlink(path);
		return kiln_error_set(err, e, "write %s", path);
	}
	return 0;
}

static int write_vkey(const char *data, const char *vkey, struct kiln_error **err)
{
	char path[4200], tmp[4300];
	cleanup_fd int fd = -1;

	snprintf(path, sizeof(path), "%s/audit-key.vkey", data);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_set(err, errno, "create %s", tmp);
	if (kiln_write_all(fd, vkey, strlen(vkey)) < 0 || kiln_write_all(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kiln_error_set(err, e, "write %s", path);
	}
	return 0;
}

/* ---- the start-up check ---- */

struct check {
	kiln_hash *leaves;
	uint64_t n, cap;
	bool gap;
	uint64_t gap_at;
};

static int check_entry(void *ctx, uint64_t idx, const unsigned char *e, size_t len)
{
	struct check *c = ctx;

	if (idx != c->n) {
		c->gap = true;
		c->gap_at = c->n;
		return 1;
	}
	if (c->n == c->cap) {
		uint64_t cap = c->cap ? c->cap * 2 : 1024;
		kiln_hash *nl = realloc(c->leaves, (size_t)cap * sizeof(kiln_hash));
		if (nl == NULL)
			return -1;
		c->leaves = nl;
		c->cap = cap;
	}
	kiln_tlog_leaf_hash(e, len, c->leaves[c->n]);
	c->n++;
	return 0;
}

/* "" when the stored log is sound, else why not (in why). */
static int check_log(struct kiln_audit *a, struct kiln_db *db, char *why, size_t len,
		     struct kiln_error **err)
{
	struct check c = {0};
	struct kiln_tlog_checkpoint cp;
	kiln_hash root, stored[256];
	uint64_t size = 0;
	char *note = NULL;
	int r;

	why[0] = '\0';
	if (kiln_auditlog_each(db, 0, 0, check_entry, &c, err) < 0)
		goto fail;
	if (c.gap) {
		snprintf(why, len, "entry %" PRIu64 " is missing", c.gap_at);
		goto out;
	}
	for (uint64_t i = 0; i < c.n; i += 256) {
		unsigned w = (unsigned)(c.n - i < 256 ? c.n - i : 256);
		struct kiln_error *e2 = NULL;

		if (kiln_auditlog_hashes(db, 0, i, w, stored, &e2) < 0) {
			snprintf(why, len, "%.200s", e2 ? e2->msg : "stored hashes unreadable");
			kiln_error_free(&e2);
			goto out;
		}
		for (unsigned j = 0; j < w; j++)
			if (memcmp(stored[j], c.leaves[i + j], KILN_TLOG_HASH) != 0) {
				snprintf(why, len,
					 "entry %" PRIu64 " does not match its stored leaf hash",
					 i + j);
				goto out;
			}
	}
	{
		struct kiln_error *e2 = NULL;
		kiln_tlog_root(c.leaves, c.n, root);
		if (kiln_auditlog_root(db, c.n, stored[0], &e2) < 0 ||
		    memcmp(stored[0], root, KILN_TLOG_HASH) != 0) {
			snprintf(why, len,
				 "the stored subtree hashes do not match the entries (%.200s)",
				 e2 ? e2->msg : "different tree head");
			kiln_error_free(&e2);
			goto out;
		}
	}
	r = kiln_auditlog_checkpoint_latest(db, &size, &note, err);
	if (r < 0)
		goto fail;
	if (r == 0) {
		struct kiln_error *e2 = NULL;

		if (kiln_tlog_checkpoint_open(&a->key, note, strlen(note), &cp, &e2) < 0) {
			snprintf(why, len, "the newest checkpoint does not verify: %.200s",
				 e2 ? e2->msg : "?");
			kiln_error_free(&e2);
			goto out;
		}
		if (cp.size != size || cp.size > c.n) {
			snprintf(why, len,
				 "the newest checkpoint covers %" PRIu64
				 " entries but the log holds %" PRIu64 " (entry %" PRIu64
				 " is missing)",
				 cp.size, c.n, c.n);
			goto out;
		}
		kiln_tlog_root(c.leaves, cp.size, root);
		if (memcmp(root, cp.root, KILN_TLOG_HASH) != 0) {
			snprintf(why, len,
				 "the first %" PRIu64 " entries do not match the newest checkpoint",
				 cp.size);
			goto out;
		}
	}
out:
	free(note);
	free(c.leaves);
	return 0;
fail:
	free(note);
	free(c.leaves);
	return -1;
}

/* ---- checkpoints ---- */

/* The metrics' view of the log (docs/metrics.md): its size, and when it
 * was last checkpointed. A checkpoint of n entries adds the bytes of the
 * entries since the last one (all of them, the first time). */
static void publish_gauges(struct kiln_audit *a, struct kiln_db *db, uint64_t n)
{
	struct kiln_error *err = NULL;
	uint64_t from, more = 0;

	kiln_metrics_gauge_set(KILN_G_AUDIT_CHECKPOINT_TIME, (double)time(NULL));
	pthread_mutex_lock(&a->mu);
	from = a->bytes_upto;
	pthread_mutex_unlock(&a->mu);
	if (n < from || kiln_auditlog_bytes(db, from, n, &more, &err) < 0) {
		kiln_error_free(&err);
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (a->bytes_upto == from) {
		a->bytes += more;
		a->bytes_upto = n;
	}
	kiln_metrics_gauge_set(KILN_G_AUDIT_LOG_BYTES, (double)a->bytes);
	pthread_mutex_unlock(&a->mu);
}

/* Sign and store a checkpoint if the log grew. */
static int checkpoint(struct kiln_audit *a, struct kiln_db *db, struct kiln_error **err)
{
	struct kiln_tlog_checkpoint cp;
	uint64_t n = 0, latest = 0;
	char *note = NULL;
	int r;

	pthread_mutex_lock(&a->mu);
	r = a->broken[0] != '\0';
	pthread_mutex_unlock(&a->mu);
	if (r)
		return 0;
	if (kiln_auditlog_size(db, &n, err) < 0)
		return -1;
	r = kiln_auditlog_checkpoint_latest(db, &latest, &note, err);
	free(note);
	note = NULL;
	if (r < 0)
		return -1;
	if (r == 0 && latest >= n)
		return 0;
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", a->key.name);
	cp.size = n;
	if (kiln_auditlog_root(db, n, cp.root, err) < 0)
		return -1;
	note = kiln_tlog_checkpoint_sign(&a->key, &cp);
	if (note == NULL)
		return kiln_error_set(err, ENOMEM, "sign a checkpoint");
	r = kiln_auditlog_checkpoint_add(db, n, note, err);
	free(note);
	if (r < 0 && *err != NULL && (*err)->code == EALREADY) {
		kiln_error_free(err);
		return 0;
	}
	if (r == 0)
		publish_gauges(a, db, n);
	return r;
}

static void *checkpointer(void *arg)
{
	struct kiln_audit *a = arg;
	struct kiln_error *err = NULL;

	for (;;) {
		struct timespec ts;
		struct kiln_db *db;
		bool stop;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += CHECKPOINT_EVERY_MS / 1000;
		pthread_mutex_lock(&a->mu);
		if (!a->stop)
			pthread_cond_timedwait(&a->cond, &a->mu, &ts);
		stop = a->stop;
		pthread_mutex_unlock(&a->mu);
		if (stop)
			break;
		db = kiln_server_db_acquire(a->s, &err);
		if (db == NULL) {
			kiln_error_free(&err);
			continue;
		}
		if (checkpoint(a, db, &err) < 0) {
			kiln_logf("audit log: checkpoint: %s", err ? err->msg : "?");
			kiln_error_free(&err);
		}
		kiln_server_db_release(a->s, db);
	}
	return NULL;
}

int kiln_audit_open(struct kiln_server *s, const char *data, struct kiln_db *db,
		    struct kiln_error **err)
{
	struct kiln_audit *a;
	char path[4200], why[512];

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return kiln_error_set(err, ENOMEM, "audit log");
	a->s = s;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->tokens = AUTH_BURST;
	clock_gettime(CLOCK_MONOTONIC, &a->last_refill);
	snprintf(path, sizeof(path), "%s/audit.key", data);
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		if (key_create(path, err) < 0)
			goto fail;
		kiln_logf("audit log key created in %s", path);
	}
	if (key_load(path, &a->key, err) < 0)
		goto fail;
	kiln_tlog_vkey_format(&a->key, a->vkey, sizeof(a->vkey));
	if (write_vkey(data, a->vkey, err) < 0)
		goto fail;
	if (check_log(a, db, why, sizeof(why), err) < 0)
		goto fail;
	if (why[0] != '\0') {
		snprintf(a->broken, sizeof(a->broken), "%s", why);
		kiln_logf("AUDIT LOG DAMAGED: %s; kilnd serves it for inspection but records "
			  "nothing more, so every action that must be recorded fails",
			  why);
	}
	s->audit = a;
	if (pthread_create(&a->thread, NULL, checkpointer, a) != 0) {
		s->audit = NULL;
		kiln_error_set(err, errno, "start the audit checkpointer");
		goto fail;
	}
	a->thread_started = true;
	return 0;
fail:
	sodium_memzero(&a->key, sizeof(a->key));
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
	free(a);
	return -1;
}

void kiln_audit_close(struct kiln_server *s)
{
	struct kiln_audit *a = audit_of(s);
	struct kiln_error *err = NULL;
	struct kiln_db *db;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
	if (a->thread_started)
		pthread_join(a->thread, NULL);
	db = kiln_server_db_acquire(s, &err);
	if (db != NULL) {
		if (checkpoint(a, db, &err) < 0)
			kiln_logf("audit log: last checkpoint: %s", err ? err->msg : "?");
		kiln_server_db_release(s, db);
	}
	kiln_error_free(&err);
	s->audit = NULL;
	sodium_memzero(&a->key, sizeof(a->key));
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
	free(a);
}

/* ---- appending ---- */

int kiln_audit_append(struct kiln_server *s, struct kiln_db *db_or_null, const char *kind,
		      const char *actor, json_t *fields, struct kiln_error **err)
{
	struct kiln_audit *a = audit_of(s);
	struct kiln_db *db = db_or_null;
	char when[32], broken[512];
	json_t *e;
	char *text;
	uint64_t idx;
	int r;

	if (a == NULL)
		return kiln_error_set(err, ENODEV, "audit log: not open");
	pthread_mutex_lock(&a->mu);
	snprintf(broken, sizeof(broken), "%s", a->broken);
	pthread_mutex_unlock(&a->mu);
	if (broken[0] != '\0')
		return kiln_error_set(err, EBADMSG, "audit log damaged (%s): not recording %s",
				      broken, kind);
	kiln_format_time((int64_t)time(NULL), when, sizeof(when));
	e = json_pack("{s:s,s:s,s:s}", "time", when, "kind", kind, "actor",
		      actor ? actor : "kilnd");
	if (e == NULL)
		return kiln_error_set(err, ENOMEM, "audit entry");
	if (fields != NULL) {
		const char *key;
		json_t *v;

		json_object_foreach(fields, key, v)
		{
			if (strcmp(key, "time") == 0 || strcmp(key, "kind") == 0 ||
			    strcmp(key, "actor") == 0)
				continue;
			json_object_set(e, key, v);
		}
	}
	text = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(e);
	if (text == NULL)
		return kiln_error_set(err, ENOMEM, "audit entry");
	if (strlen(text) > KILN_TLOG_ENTRY_MAX) {
		free(text);
		return kiln_error_set(err, E2BIG, "audit entry %s: over 65535 bytes", kind);
	}
	if (db == NULL && (db = kiln_server_db_acquire(s, err)) == NULL) {
		free(text);
		return -1;
	}
	r = kiln_auditlog_append(db, text, strlen(text), &idx, err);
	if (db_or_null == NULL)
		kiln_server_db_release(s, db);
	free(text);
	if (r < 0)
		return kiln_error_prefix(err, "audit log: record %s", kind);
	/* The checkpointer picks it up within CHECKPOINT_EVERY_MS: at most
	 * one checkpoint a second, however fast entries arrive. */
	return 0;
}

void kiln_audit_auth_failure(struct kiln_server *s, struct kiln_db *db, unsigned status,
			     const char *method, const char *path, const char *auth_header,
			     const char *token_id, const char *remote, const char *message)
{
	struct kiln_audit *a = audit_of(s);
	struct kiln_error *err = NULL;
	struct timespec now;
	char claimed[16] = "", m[16], p[256], msg[256], actor[64];
	uint64_t suppressed = 0;
	bool take;
	json_t *f;

	if (a == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&a->mu);
	a->tokens += ((double)(now.tv_sec - a->last_refill.tv_sec) +
		      (double)(now.tv_nsec - a->last_refill.tv_nsec) / 1e9) *
		     AUTH_RATE;
	if (a->tokens > AUTH_BURST)
		a->tokens = AUTH_BURST;
	a->last_refill = now;
	take = a->tokens >= 1.0;
	if (take) {
		a->tokens -= 1.0;
		suppressed = a->suppressed;
		a->suppressed = 0;
	} else {
		a->suppressed++;
	}
	pthread_mutex_unlock(&a->mu);
	if (!take)
		return;

	/* The id a refused token claims (12 hex digits after "Bearer kiln_"),
	 * never anything of its secret. */
	if (auth_header != NULL && strncmp(auth_header, "Bearer kiln_", 12) == 0) {
		size_t n = strspn(auth_header + 12, "0123456789abcdef");
		if (n == 12 && auth_header[24] == '_')
			memcpy(claimed, auth_header + 12, 12);
	}
	kiln_sanitize(m, sizeof(m), method ? method : "");
	kiln_sanitize(p, sizeof(p), path ? path : "");
	kiln_sanitize(msg, sizeof(msg), message ? message : "");
	if (token_id != NULL && token_id[0] != '\0')
		snprintf(actor, sizeof(actor), "token:%s", token_id);
	else
		snprintf(actor, sizeof(actor), "anonymous");
	f = json_pack("{s:i,s:s,s:s,s:s}", "status", (int)status, "method", m, "path", p, "reason",
		      msg);
	if (f == NULL)
		return;
	if (claimed[0] != '\0' && (token_id == NULL || token_id[0] == '\0'))
		json_object_set_new(f, "claimed_token", json_string(claimed));
	if (remote != NULL && remote[0] != '\0')
		json_object_set_new(f, "remote", json_string(remote));
	if (suppressed > 0)
		json_object_set_new(f, "suppressed", json_integer((json_int_t)suppressed));
	if (kiln_audit_append(s, db, "auth.failure", actor, f, &err) < 0) {
		kiln_logf("%s", err ? err->msg : "audit log: record auth.failure failed");
		kiln_error_free(&err);
	}
	json_decref(f);
}

/* ---- jobs ---- */

static int file_sha256(const char *path, char hex[65])
{
	cleanup_fd int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	crypto_hash_sha256_state st;
	unsigned char buf[65536], h[32];
	ssize_t n;

	if (fd < 0)
		return -1;
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crypto_hash_sha256_update(&st, buf, (size_t)n);
	if (n < 0)
		return -1;
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(hex, 65, h, 32);
	return 0;
}

static json_t *job_fields(int64_t job, const char *project)
{
	return json_pack("{s:I,s:s}", "job", (json_int_t)job, "project", project ? project : "");
}

#define ARTIFACTS_CHUNK (40 * 1024)

int kiln_audit_job_finish(struct kiln_server *s, struct kiln_db *db, const char *actor, int64_t job,
			  const char *project, const char *source_sha256, const char *state,
			  const struct kiln_job_outcome *o, const char *log_path,
			  struct kiln_error **err)
{
	json_t *report = o->report_json ? json_loads(o->report_json, 0, NULL) : NULL;
	json_t *arts = NULL, *list, *chunk = NULL, *f;
	const char *reason = o->reason ? o->reason : "";
	char loghex[65] = "";
	size_t chunk_bytes = 0, i, nchunks = 0;
	int rc = -1;

	/* Violations the engine saw. */
	if (report != NULL && json_integer_value(json_object_get(report, "seccomp_denials")) > 0) {
		f = job_fields(job, project);
		json_object_set_new(f, "violation", json_string("seccomp"));
		json_object_set(f, "denials", json_object_get(report, "seccomp_denials"));
		json_object_set(f, "denied_syscalls", json_object_get(report, "denied_syscalls"));
		rc = kiln_audit_append(s, db, "sandbox.violation", actor, f, err);
		json_decref(f);
		if (rc < 0)
			goto out;
	}
	{
		static const char *const limits[] = {"timeout", "memory", "pids", "disk",
						     "output-limit"};
		const char *limit = o->log_truncated ? "log" : NULL;

		for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
			if (strcmp(reason, limits[i]) == 0)
				limit = limits[i];
		if (limit != NULL) {
			f = job_fields(job, project);
			json_object_set_new(f, "limit", json_string(limit));
			json_object_set_new(f, "log_truncated", json_boolean(o->log_truncated));
			rc = kiln_audit_append(s, db, "sandbox.limit", actor, f, err);
			json_decref(f);
			if (rc < 0)
				goto out;
		}
	}

	/* The artifacts, in chunks that fit an entry. */
	arts = kiln_db_artifacts_list(db, job, err);
	if (arts == NULL)
		goto fail;
	list = json_object_get(arts, "artifacts");
	for (i = 0; i <= json_array_size(list); i++) {
		json_t *a = json_array_get(list, i);
		size_t sz = 0;

		if (a != NULL) {
			const char *nm = json_string_value(json_object_get(a, "name"));
			sz = (nm ? strlen(nm) * 6 : 0) + 120;
		}
		if (chunk != NULL && (a == NULL || chunk_bytes + sz > ARTIFACTS_CHUNK)) {
			if (a == NULL && nchunks == 0)
				break; /* all of them fit into job.finish */
			f = job_fields(job, project);
			json_object_set_new(f, "artifacts", chunk);
			chunk = NULL;
			chunk_bytes = 0;
			nchunks++;
			rc = kiln_audit_append(s, db, "job.artifacts", actor, f, err);
			json_decref(f);
			if (rc < 0)
				goto out;
		}
		if (a == NULL)
			break;
		if (chunk == NULL)
			chunk = json_array();
		json_array_append_new(chunk,
				      json_pack("{s:O,s:O,s:O}", "name", json_object_get(a, "name"),
						"size", json_object_get(a, "size"), "sha256",
						json_object_get(a, "sha256")));
		chunk_bytes += sz;
	}

	if (log_path == NULL || file_sha256(log_path, loghex) < 0)
		loghex[0] = '\0';
	f = job_fields(job, project);
	json_object_set_new(f, "outcome", json_string(state ? state : "unknown"));
	json_object_set_new(f, "reason", json_string(reason));
	json_object_set_new(f, "exit_code", json_integer(o->exit_code));
	json_object_set_new(f, "source_sha256",
			    source_sha256 ? json_string(source_sha256) : json_null());
	json_object_set_new(f, "log_sha256", loghex[0] ? json_string(loghex) : json_null());
	json_object_set_new(f, "log_bytes", json_integer((json_int_t)o->log_bytes));
	json_object_set_new(f, "log_truncated", json_boolean(o->log_truncated));
	if (o->error != NULL) {
		char e[512];
		kiln_sanitize(e, sizeof(e), o->error);
		json_object_set_new(f, "error", json_string(e));
	}
	if (nchunks == 0)
		json_object_set_new(f, "artifacts", chunk ? chunk : json_array());
	else
		json_object_set_new(f, "artifacts_entries", json_integer((json_int_t)nchunks));
	chunk = NULL;
	json_object_set_new(f, "artifacts_count", json_integer((json_int_t)json_array_size(list)));
	rc = kiln_audit_append(s, db, "job.finish", actor, f, err);
	json_decref(f);
	goto out;
fail:
	rc = -1;
out:
	json_decref(chunk);
	json_decref(arts);
	json_decref(report);
	return rc;
}

#define EGRESS_LISTED 50

int kiln_audit_egress(struct kiln_server *s, struct kiln_db *db, const char *actor, int64_t job,
		      const char *project, json_t *attempts, uint64_t allowed, uint64_t denied,
		      uint64_t dropped, struct kiln_error **err)
{
	json_t *f = job_fields(job, project), *list = json_array(), *a;
	size_t i;
	int rc;

	if (f == NULL || list == NULL) {
		json_decref(f);
		json_decref(list);
		return kiln_error_set(err, ENOMEM, "audit entry");
	}
	json_array_foreach(attempts, i, a)
	{
		if (json_is_true(json_object_get(a, "allowed")))
			continue;
		if (json_array_size(list) >= EGRESS_LISTED)
			break;
		json_array_append_new(list, json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?}", "kind",
						      json_object_get(a, "kind"), "host",
						      json_object_get(a, "host"), "addr",
						      json_object_get(a, "addr"), "port",
						      json_object_get(a, "port"), "reason",
						      json_object_get(a, "reason")));
	}
	json_object_set_new(f, "violation", json_string("egress"));
	json_object_set_new(f, "denied", json_integer((json_int_t)denied));
	json_object_set_new(f, "allowed", json_integer((json_int_t)allowed));
	if (dropped > 0)
		json_object_set_new(f, "not_recorded", json_integer((json_int_t)dropped));
	json_object_set_new(f, "attempts", list);
	rc = kiln_audit_append(s, db, "sandbox.violation", actor, f, err);
	json_decref(f);
	return rc;
}

/* ---- serving ---- */

static int reply_bytes(struct kiln_req *r, void *buf, size_t len, const char *type)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);

	if (resp == NULL) {
		free(buf);
		return kiln_reply_error(r, 500, "internal", "out of memory");
	}
	kiln_response_headers(resp, type);
	return kiln_reply(r, 200, resp);
}

static int reply_fail(struct kiln_req *r, struct kiln_error **err, const char *what)
{
	kiln_logf("audit log: %s: %s", what, *err ? (*err)->msg : "?");
	kiln_error_free(err);
	return kiln_reply_error(r, 500, "internal", "%s failed", what);
}

int kiln_audit_http(struct kiln_req *r, struct kiln_db *db, const char *what)
{
	struct kiln_audit *a = audit_of(r->s);
	struct kiln_error *err = NULL;
	uint64_t n = 0, tile;
	unsigned width;
	int level, rr;

	if (a == NULL)
		return kiln_reply_error(r, 503, "unavailable", "the audit log is not open");
	if (strcmp(what, "key") == 0) {
		char *t = malloc(strlen(a->vkey) + 2);
		if (t == NULL)
			return kiln_reply_error(r, 500, "internal", "out of memory");
		sprintf(t, "%s\n", a->vkey);
		return reply_bytes(r, t, strlen(t), "text/plain; charset=utf-8");
	}
	if (strcmp(what, "checkpoint") == 0) {
		char *note = NULL;
		uint64_t size;

		rr = kiln_auditlog_checkpoint_latest(db, &size, &note, &err);
		if (rr < 0)
			return reply_fail(r, &err, "read the checkpoint");
		if (rr == 1)
			return kiln_reply_error(r, 404, "not_found", "no checkpoint yet");
		return reply_bytes(r, note, strlen(note), "text/plain; charset=utf-8");
	}
	if (kiln_tlog_tile_parse(what, &level, &tile, &width) < 0)
		return kiln_reply_error(r, 404, "not_found", "no such tile");
	if (kiln_auditlog_size(db, &n, &err) < 0)
		return reply_fail(r, &err, "read the log size");
	if (width == 0)
		width = KILN_TLOG_TILE_W;
	if (tile > UINT64_MAX / KILN_TLOG_TILE_W)
		return kiln_reply_error(r, 404, "not_found", "no such tile");
	if (level < 0) {
		unsigned char *buf = NULL;
		size_t len = 0;

		/* What is stored is served, even a tile with entries missing
		 * from a damaged log: the verifier names the first gap. */
		if (tile * KILN_TLOG_TILE_W >= n)
			return kiln_reply_error(r, 404, "not_found", "no such tile (yet)");
		if (kiln_auditlog_bundle(db, tile * KILN_TLOG_TILE_W, width, &buf, &len, &err) < 0)
			return reply_fail(r, &err, "read entries");
		return reply_bytes(r, buf, len, "application/octet-stream");
	}
	{
		int tl = level * KILN_TLOG_TILE_H;
		uint64_t have = tl >= 64 ? 0 : n >> tl;
		kiln_hash *h;

		if (tile * KILN_TLOG_TILE_W + width > have)
			return kiln_reply_error(r, 404, "not_found", "no such tile (yet)");
		h = malloc((size_t)width * sizeof(kiln_hash));
		if (h == NULL)
			return kiln_reply_error(r, 500, "internal", "out of memory");
		if (kiln_auditlog_hashes(db, tl, tile * KILN_TLOG_TILE_W, width, h, &err) < 0) {
			free(h);
			if (err && err->code == ENOENT) {
				kiln_error_free(&err);
				return kiln_reply_error(r, 404, "not_found", "no such tile");
			}
			return reply_fail(r, &err, "read hashes");
		}
		return reply_bytes(r, h, (size_t)width * sizeof(kiln_hash),
				   "application/octet-stream");
	}
}
