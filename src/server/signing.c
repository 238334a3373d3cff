/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signed submissions (docs/signing.md): the manifest and its minisign
 * signature arrive as form parts; everything in them is hostile. The
 * signature is checked first, against the keys the project trusts; only
 * then are the manifest's claims compared with what the server computed
 * from the bytes it received, its clock, and the nonces already used.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"
#include "server/trust.h"
#include "store/db.h"
#include "trust/manifest.h"
#include "trust/minisign.h"

static int reject(struct kiln_reject *rej, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int reject(struct kiln_reject *rej, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;

	rej->status = status;
	snprintf(rej->code, sizeof(rej->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(rej->msg, sizeof(rej->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int kiln_submission_check(struct kiln_server *s, struct kiln_db *db, const char *project,
			  const char *spec_hex, const char *source_hex, const char *manifest,
			  size_t manifest_len, const char *signature, size_t signature_len,
			  struct kiln_signed *out, struct kiln_reject *rej)
{
	struct kiln_error *err = NULL;
	struct kiln_trust *trust = NULL;
	struct kiln_minisign_sig sig;
	struct kiln_manifest m;
	const struct kiln_minisign_pk *key = NULL;
	char when[32], now_s[32];
	int64_t now = (int64_t)time(NULL), skew;
	int r = -1, used;

	memset(out, 0, sizeof(*out));
	memset(rej, 0, sizeof(*rej));
	trust = calloc(1, sizeof(*trust));
	if (trust == NULL)
		return reject(rej, 500, "internal", "out of memory");
	if (kiln_project_trust(s, project, trust, &err) < 0) {
		kiln_logf("policy of project %s: %s", project, err ? err->msg : "?");
		kiln_error_free(&err);
		reject(rej, 500, "internal",
		       "the signing policy of project %s cannot be read; the operator must fix it "
		       "(see kilnd's log)",
		       project);
		goto out;
	}
	if (manifest == NULL && signature == NULL) {
		if (trust->required)
			reject(rej, 403, "signature_required",
			       "project %s accepts only signed submissions (kiln submit --sign KEY "
			       "or --signature FILE)",
			       project);
		else
			r = 0;
		goto out;
	}
	if (manifest == NULL || signature == NULL) {
		reject(rej, 400, "manifest_invalid",
		       "a signed submission needs both form parts 'manifest' and 'signature'");
		goto out;
	}
	if (kiln_minisign_sig_parse(signature, signature_len, &sig, &err) < 0) {
		reject(rej, 400, "manifest_invalid", "signature: %s", err ? err->msg : "?");
		goto out;
	}
	kiln_minisign_keyid(sig.keynum, rej->key_id);
	for (size_t i = 0; i < trust->nkeys; i++)
		if (memcmp(trust->keys[i].keynum, sig.keynum, 8) == 0)
			key = &trust->keys[i];
	if (key == NULL) {
		reject(rej, 403, "unknown_key",
		       "signed by key %s, which project %s does not trust (signing.keys of its "
		       "policy)",
		       rej->key_id, project);
		goto out;
	}
	if (kiln_minisign_verify(key, &sig, manifest, manifest_len, &err) < 0) {
		reject(rej, 403, "bad_signature", "key %s: %s", rej->key_id, err ? err->msg : "?");
		goto out;
	}
	if (kiln_manifest_parse(manifest, manifest_len, &m, &err) < 0) {
		reject(rej, 400, "manifest_invalid", "%s", err ? err->msg : "?");
		goto out;
	}
	if (strcmp(m.project, project) != 0) {
		reject(rej, 400, "digest_mismatch",
		       "the manifest names project %s, but this submission is for project %s",
		       m.project, project);
		goto out;
	}
	if (strcmp(m.spec_sha256, spec_hex) != 0) {
		reject(rej, 400, "digest_mismatch",
		       "spec digest mismatch: the manifest says sha256:%s, the kiln.yml received "
		       "hashes to sha256:%s",
		       m.spec_sha256, spec_hex);
		goto out;
	}
	if (strcmp(m.source_sha256, source_hex) != 0) {
		reject(rej, 400, "digest_mismatch",
		       "source digest mismatch: the manifest says sha256:%s, the source received "
		       "hashes to sha256:%s",
		       m.source_sha256, source_hex);
		goto out;
	}
	skew = now - m.created;
	if (skew < 0)
		skew = -skew;
	if ((uint64_t)skew > s->cfg.signing_window) {
		kiln_format_time(m.created, when, sizeof(when));
		kiln_format_time(now, now_s, sizeof(now_s));
		reject(rej, 400, "manifest_expired",
		       "the manifest was created at %s, outside the server's window of %" PRIu64
		       "s around its time %s",
		       when, s->cfg.signing_window, now_s);
		goto out;
	}
	used = kiln_db_nonce_used(db, m.nonce, &err);
	if (used < 0) {
		kiln_logf("nonce lookup: %s", err ? err->msg : "?");
		reject(rej, 500, "internal", "database");
		goto out;
	}
	if (used > 0) {
		reject(rej, 409, "nonce_replayed",
		       "the manifest's nonce %.16s... was used already: this signed submission is "
		       "a replay",
		       m.nonce);
		goto out;
	}
	out->present = true;
	snprintf(out->key_id, sizeof(out->key_id), "%s", rej->key_id);
	snprintf(out->nonce, sizeof(out->nonce), "%s", m.nonce);
	r = 0;
out:
	kiln_error_free(&err);
	free(trust);
	return r;
}
