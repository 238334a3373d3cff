/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The secret store (docs/policy.md): values encrypted at rest with
 * XChaCha20-Poly1305 (libsodium) under a 32-byte master key kept outside
 * the database: $CREDENTIALS_DIRECTORY/kiln-secrets-key when systemd passes
 * one, else DATA/secrets.key (0600, created on the first start). The
 * associated data binds each ciphertext to its row: project NUL name NUL
 * version, so rows cannot be swapped or rolled back to another version.
 * A key-check value in the database tells a wrong key from a damaged row.
 *
 * Plain values live only in sodium_malloc'd buffers (guarded, never
 * swapped, wiped when freed: kiln_secret_values_free).
 */
#ifndef KILN_SERVER_SECRETS_H
#define KILN_SERVER_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "store/db.h"

#define KILN_SECRET_MIN 8
#define KILN_SECRET_MAX (32 * 1024)

struct kiln_secrets;

/* Load (or, when the store is empty and no key exists, create) the master
 * key and check it against the database. Fails loudly, naming the file,
 * when the key is missing while the database holds secrets, when it has
 * the wrong size or mode, or when it is not the key the store was written
 * with. */
int kiln_secrets_open(const char *data_dir, struct kiln_db *db, struct kiln_secrets **out,
		      struct kiln_error **err);
void kiln_secrets_close(struct kiln_secrets *s);
/* Where the key came from (for messages). */
const char *kiln_secrets_key_path(const struct kiln_secrets *s);

/* Encrypt and store value as the next version of project/name. EINVAL
 * for a bad name or a value shorter than KILN_SECRET_MIN (too short to
 * mask safely) or longer than KILN_SECRET_MAX; ENOENT for an unknown
 * project. *version receives the new version. */
int kiln_secret_set(struct kiln_secrets *s, struct kiln_db *db, const char *project,
		    const char *name, const unsigned char *value, size_t len, int64_t *version,
		    struct kiln_error **err);

struct kiln_secret_value {
	char name[65];
	int64_t version;
	/* sodium_malloc'd, len bytes plus a NUL */
	unsigned char *value;
	size_t len;
};

/* Decrypt project/name. ENOENT if unset; EBADMSG if the row does not
 * decrypt (tampered, swapped, or another key). */
int kiln_secret_get(struct kiln_secrets *s, struct kiln_db *db, const char *project,
		    const char *name, struct kiln_secret_value *out, struct kiln_error **err);
void kiln_secret_value_wipe(struct kiln_secret_value *v);

#endif
