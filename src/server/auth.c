/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bearer tokens: "kiln_<id>_<secret>", id 12 lowercase hex digits (6 random
 * bytes, not secret: it names the row), secret 43 base64url characters (32
 * random bytes). The database keeps SHA-256 of the secret's text only; a
 * presented secret is hashed and compared in constant time. Tokens are
 * never logged, and the plaintext exists only in the answer that creates
 * it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "core/util.h"
#include "server/server.h"
#include "store/db.h"

#define TOKEN_ID_HEX	 12
#define TOKEN_SECRET_LEN 43 /* base64url of 32 bytes, no padding */

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

enum kiln_auth_result kiln_auth_check(struct kiln_db *db, const char *header, struct kiln_auth *a)
{
	struct kiln_token_row row;
	struct kiln_error *err = NULL;
	unsigned char hash[crypto_hash_sha256_BYTES];
	const char *tok, *secret;
	char id[TOKEN_ID_HEX + 1];
	int64_t now = (int64_t)time(NULL);
	bool match;

	memset(a, 0, sizeof(*a));
	if (header == NULL || header[0] == '\0')
		return KILN_AUTH_MISSING;
	if (strncasecmp(header, "Bearer ", 7) != 0)
		return KILN_AUTH_INVALID;
	tok = header + 7;
	while (*tok == ' ')
		tok++;
	/* kiln_ + 12 hex + _ + 43 base64url, nothing else (no trailing
	 * whitespace either: a client that sends it is broken). */
	if (strlen(tok) != 5 + TOKEN_ID_HEX + 1 + TOKEN_SECRET_LEN ||
	    strncmp(tok, "kiln_", 5) != 0 || tok[5 + TOKEN_ID_HEX] != '_' ||
	    !is_lower_hex(tok + 5, TOKEN_ID_HEX))
		return KILN_AUTH_INVALID;
	secret = tok + 5 + TOKEN_ID_HEX + 1;
	if (!kiln_b64url_valid(secret, TOKEN_SECRET_LEN))
		return KILN_AUTH_INVALID;
	memcpy(id, tok + 5, TOKEN_ID_HEX);
	id[TOKEN_ID_HEX] = '\0';

	crypto_hash_sha256(hash, (const unsigned char *)secret, TOKEN_SECRET_LEN);
	memset(&row, 0, sizeof(row));
	if (kiln_db_token_get(db, id, &row, &err) < 0) {
		bool unknown = err != NULL && err->code == ENOENT;
		if (!unknown)
			kiln_logf("authentication: %s", err ? err->msg : "database error");
		kiln_error_free(&err);
		sodium_memzero(hash, sizeof(hash));
		return unknown ? KILN_AUTH_INVALID : KILN_AUTH_INTERNAL;
	}
	match = sodium_memcmp(hash, row.hash, sizeof(hash)) == 0;
	sodium_memzero(hash, sizeof(hash));
	if (!match)
		return KILN_AUTH_INVALID;
	if (row.revoked_at != 0 || (row.expires_at != 0 && now >= row.expires_at))
		return KILN_AUTH_INVALID;
	snprintf(a->token_id, sizeof(a->token_id), "%s", row.id);
	snprintf(a->project, sizeof(a->project), "%s", row.project);
	a->scopes = row.scopes;
	return KILN_AUTH_OK;
}

bool kiln_auth_has_scope(const struct kiln_auth *a, unsigned scopes)
{
	return (a->scopes & scopes) == scopes;
}

bool kiln_auth_project_ok(const struct kiln_auth *a, const char *project)
{
	if (a->project[0] == '\0')
		return true;
	return project != NULL && strcmp(a->project, project) == 0;
}

int kiln_auth_conn_acquire(struct kiln_server *s, const char *token_id)
{
	int slot = -1, free_slot = -1;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < KILN_MAX_TOKEN_CONNS; i++) {
		if (s->conns[i].n == 0) {
			if (free_slot < 0)
				free_slot = i;
		} else if (strcmp(s->conns[i].token_id, token_id) == 0) {
			slot = i;
			break;
		}
	}
	if (slot >= 0) {
		if (s->conns[slot].n >= s->cfg.conns_per_token)
			slot = -1;
		else
			s->conns[slot].n++;
	} else if (free_slot >= 0 && s->cfg.conns_per_token > 0) {
		slot = free_slot;
		snprintf(s->conns[slot].token_id, sizeof(s->conns[slot].token_id), "%s", token_id);
		s->conns[slot].n = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return slot;
}

void kiln_auth_conn_release(struct kiln_server *s, int slot)
{
	if (slot < 0 || slot >= KILN_MAX_TOKEN_CONNS)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->conns[slot].n > 0)
		s->conns[slot].n--;
	pthread_mutex_unlock(&s->mu);
}

int kiln_token_generate(const char *project, unsigned scopes, int64_t expires_at,
			struct kiln_token_row *row, char token[KILN_TOKEN_MAX],
			struct kiln_error **err)
{
	unsigned char idb[6], secret[32];
	char secret_b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	int r;

	memset(row, 0, sizeof(*row));
	randombytes_buf(idb, sizeof(idb));
	randombytes_buf(secret, sizeof(secret));
	kiln_hex(idb, sizeof(idb), row->id);
	sodium_bin2base64(secret_b64, sizeof(secret_b64), secret, sizeof(secret),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(secret, sizeof(secret));
	crypto_hash_sha256(row->hash, (const unsigned char *)secret_b64, strlen(secret_b64));
	snprintf(row->project, sizeof(row->project), "%s", project ? project : "");
	row->scopes = scopes;
	row->created_at = (int64_t)time(NULL);
	row->expires_at = expires_at;
	r = snprintf(token, KILN_TOKEN_MAX, "kiln_%s_%s", row->id, secret_b64);
	sodium_memzero(secret_b64, sizeof(secret_b64));
	if (r < 0 || r >= KILN_TOKEN_MAX) {
		sodium_memzero(token, KILN_TOKEN_MAX);
		return kiln_error_set(err, EOVERFLOW, "token buffer");
	}
	return 0;
}

int kiln_token_create(struct kiln_db *db, const char *project, unsigned scopes, int64_t expires_at,
		      const char *description, struct kiln_token_row *row,
		      char token[KILN_TOKEN_MAX], struct kiln_error **err)
{
	if (kiln_token_generate(project, scopes, expires_at, row, token, err) < 0)
		return -1;
	if (kiln_db_token_insert(db, row, description, err) < 0) {
		sodium_memzero(token, KILN_TOKEN_MAX);
		return kiln_error_prefix(err, "store token");
	}
	return 0;
}
