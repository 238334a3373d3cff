/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signed provenance for finished jobs (docs/provenance.md). Everything in
 * the statement comes from kilnd's own records: the job row (what was
 * submitted and by which key), the artifacts table (digests computed by
 * kilnd while it stored them), the log file as kilnd wrote it, and the
 * configuration. Nothing is taken from the build's own say-so.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "server/provenance.h"
#include "server/server.h"
#include "store/db.h"
#include "store/logs.h"
#include "trust/dsse.h"
#include "trust/provenance.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

/* SHA-256 of a file (hex), or -1. */
static int file_sha256(const char *path, char hex[65])
{
	cleanup_fd int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	crypto_hash_sha256_state st;
	uint8_t d[32];
	char buf[65536];
	ssize_t n;

	if (fd < 0)
		return -1;
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		crypto_hash_sha256_update(&st, (const uint8_t *)buf, (size_t)n);
	}
	crypto_hash_sha256_final(&st, d);
	kiln_hex(d, sizeof(d), hex);
	return 0;
}

/* The sandbox settings the job ran with (worker.c's configure()). */
static json_t *sandbox_json(const struct kiln_server *s, const json_t *spec)
{
	return json_pack("{s:s, s:O, s:O, s:O, s:I, s:I, s:I, s:s, s:s}", "backend", "native",
			 "network", json_object_get(spec, "network") ?: json_null(), "resources",
			 json_object_get(spec, "resources") ?: json_null(), "timeout",
			 json_object_get(spec, "timeout") ?: json_null(), "output_limit",
			 (json_int_t)(s->cfg.max_log * 2), "max_files",
			 (json_int_t)s->cfg.max_files, "max_path", (json_int_t)s->cfg.max_path,
			 "rootfs", "host root, read-only bind mounts", "user",
			 "unprivileged, own user namespace");
}

#define CATCH_UP_MAX 10000

int kiln_provenance_catch_up(struct kiln_server *s, struct kiln_db *db)
{
	struct kiln_error *err = NULL;
	int64_t *ids = calloc(CATCH_UP_MAX, sizeof(*ids));
	size_t n = 0;

	if (ids == NULL)
		return 0;
	if (kiln_db_jobs_missing_provenance(db, ids, CATCH_UP_MAX, &n, &err) < 0) {
		kiln_logf("provenance: %s", err ? err->msg : "?");
		kiln_error_free(&err);
		n = 0;
	}
	for (size_t i = 0; i < n; i++)
		kiln_provenance_record(s, db, ids[i]);
	free(ids);
	return (int)n;
}

void kiln_provenance_record(struct kiln_server *s, struct kiln_db *db, int64_t job)
{
	struct kiln_error *err = NULL;
	struct kiln_job_facts f;
	struct kiln_prov_artifact *arts = NULL;
	char started[32], finished[32], logpath[4200], loghex[65], rootfs[256];
	json_t *list = NULL, *arr, *spec = NULL, *sandbox = NULL, *st = NULL, *env = NULL;
	char *body = NULL, *text = NULL;
	size_t n;
	bool have_log;

	if (s->provkey == NULL)
		return;
	if (kiln_db_job_facts(db, job, &f, &err) < 0)
		goto fail;
	list = kiln_db_artifacts_list(db, job, &err);
	if (list == NULL)
		goto fail;
	arr = json_object_get(list, "artifacts");
	n = json_array_size(arr);
	if (n == 0)
		goto out;
	arts = calloc(n, sizeof(*arts));
	if (arts == NULL) {
		kiln_error_set(&err, ENOMEM, "artifacts");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(arr, i);
		arts[i].name = json_string_value(json_object_get(a, "name"));
		arts[i].sha256 = json_string_value(json_object_get(a, "sha256"));
		if (arts[i].name == NULL || arts[i].sha256 == NULL) {
			kiln_error_set(&err, EINVAL, "artifact %zu has no name or digest", i);
			goto fail;
		}
	}
	spec = json_loads(f.spec_json, JSON_REJECT_DUPLICATES, NULL);
	sandbox = sandbox_json(s, spec);
	kiln_log_path(s->log_dir, job, logpath, sizeof(logpath));
	have_log = file_sha256(logpath, loghex) == 0;
	kiln_format_time(f.started_at, started, sizeof(started));
	kiln_format_time(f.finished_at, finished, sizeof(finished));
	snprintf(rootfs, sizeof(rootfs), "kiln:rootfs/host?builder=%s&kilnd=%s",
		 s->cfg.builder_id ? s->cfg.builder_id : "", KILN_VERSION);
	{
		struct kiln_prov_input in = {
			.builder_id = s->cfg.builder_id ? s->cfg.builder_id : "urn:kiln:builder",
			.job_id = job,
			.project = f.project,
			.spec = spec,
			.spec_text = f.spec_text,
			.spec_sha256 = f.spec_sha256,
			.source_sha256 = f.source_sha256,
			.signer_key_id = f.signer_key,
			/* the job's policy digest, without its "sha256:" */
			.policy_sha256 =
				f.policy_digest && strncmp(f.policy_digest, "sha256:", 7) == 0
					? f.policy_digest + 7
					: NULL,
			.sandbox = sandbox,
			.backend = "native",
			.rootfs_uri = rootfs,
			.kilnd_version = KILN_VERSION,
			.started_on = f.started_at ? started : NULL,
			.finished_on = f.finished_at ? finished : NULL,
			.log_sha256 = have_log ? loghex : NULL,
			.outcome = f.state,
			.artifacts = arts,
			.nartifacts = n,
		};
		st = kiln_provenance_statement(&in, &err);
	}
	if (st == NULL)
		goto fail;
	body = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
	if (body == NULL) {
		kiln_error_set(&err, ENOMEM, "provenance");
		goto fail;
	}
	env = kiln_provkey_sign(s->provkey, KILN_INTOTO_PAYLOAD_TYPE, body, strlen(body), &err);
	if (env == NULL)
		goto fail;
	text = json_dumps(env, JSON_COMPACT);
	if (text == NULL) {
		kiln_error_set(&err, ENOMEM, "provenance");
		goto fail;
	}
	if (kiln_db_provenance_put(db, job, text, &err) < 0)
		goto fail;
	goto out;
fail:
	kiln_logf("job %" PRId64 ": provenance: %s", job, err ? err->msg : "?");
out:
	kiln_error_free(&err);
	free(text);
	free(body);
	json_decref(env);
	json_decref(st);
	json_decref(sandbox);
	json_decref(spec);
	json_decref(list);
	free(arts);
	kiln_db_job_facts_free(&f);
}
