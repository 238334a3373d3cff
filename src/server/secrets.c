/* SPDX-License-Identifier: Apache-2.0 */
/* The encrypted secret store (secrets.h). */
#include "server/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "server/spec.h"

#define KEY_LEN	  crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN	  crypto_aead_xchacha20poly1305_ietf_ABYTES
#define CHECK_AD  "kiln secret store key check v1"
#define CHECK_PT  "kiln-secrets-key-check"

struct kiln_secrets {
	/* sodium_malloc'd, read-only after loading */
	unsigned char *key;
	char path[4200];
};

const char *kiln_secrets_key_path(const struct kiln_secrets *s)
{
	return s->path;
}

void kiln_secrets_close(struct kiln_secrets *s)
{
	if (s == NULL)
		return;
	sodium_free(s->key);
	free(s);
}

/* Read exactly KEY_LEN bytes from path into key. A file in the data
 * directory must be ours and 0600; a systemd credential is whatever
 * systemd made it (0400, ours). */
static int read_key(const char *path, bool strict_mode, unsigned char *key, struct kiln_error **err)
{
	cleanup_fd int fd = kiln_open_key_file(path, strict_mode, err);
	unsigned char extra;
	ssize_t n;

	if (fd < 0)
		return kiln_error_prefix(err, "master key");
	n = kiln_read_all(fd, key, KEY_LEN);
	if (n != (ssize_t)KEY_LEN || kiln_read_all(fd, &extra, 1) != 0)
		return kiln_error_set(err, EINVAL, "master key %s: expected exactly %d bytes", path,
				      (int)KEY_LEN);
	return 0;
}

static int create_key(const char *path, unsigned char *key, struct kiln_error **err)
{
	cleanup_fd int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return kiln_error_set(err, errno, "create master key %s", path);
	randombytes_buf(key, KEY_LEN);
	if (kiln_write_all(fd, key, KEY_LEN) < 0 || fsync(fd) < 0) {
		int e = errno;
		unlink(path);
		return kiln_error_set(err, e, "write master key %s", path);
	}
	return 0;
}

static int check_key(struct kiln_secrets *s, struct kiln_db *db, struct kiln_error **err)
{
	unsigned char nonce[NONCE_LEN], ct[64], pt[64];
	size_t ctlen = sizeof(ct);
	unsigned long long ptlen = 0;
	int r = kiln_db_secrets_check_get(db, nonce, sizeof(nonce), ct, &ctlen, err);

	if (r < 0)
		return kiln_error_prefix(err, "secret store");
	if (r == 0) {
		unsigned long long clen = 0;

		randombytes_buf(nonce, sizeof(nonce));
		crypto_aead_xchacha20poly1305_ietf_encrypt(
			ct, &clen, (const unsigned char *)CHECK_PT, strlen(CHECK_PT),
			(const unsigned char *)CHECK_AD, strlen(CHECK_AD), NULL, nonce, s->key);
		return kiln_db_secrets_check_set(db, nonce, (int)sizeof(nonce), ct, (int)clen, err);
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &ptlen, NULL, ct, ctlen,
						       (const unsigned char *)CHECK_AD,
						       strlen(CHECK_AD), nonce, s->key) != 0 ||
	    ptlen != strlen(CHECK_PT) || memcmp(pt, CHECK_PT, ptlen) != 0)
		return kiln_error_set(
			err, EKEYREJECTED,
			"master key %s is not the key this secret store was written "
			"with; restore the right key (secrets cannot be read without it)",
			s->path);
	return 0;
}

int kiln_secrets_open(const char *data_dir, struct kiln_db *db, struct kiln_secrets **out,
		      struct kiln_error **err)
{
	const char *cred = getenv("CREDENTIALS_DIRECTORY");
	struct kiln_secrets *s = calloc(1, sizeof(*s));
	unsigned char probe[NONCE_LEN], ct[64];
	size_t ctlen = sizeof(ct);
	bool from_cred = false;
	int64_t count = 0;
	int have_check;

	if (s == NULL)
		return kiln_error_set(err, ENOMEM, "secret store");
	s->key = sodium_malloc(KEY_LEN);
	if (s->key == NULL) {
		free(s);
		return kiln_error_set(err, ENOMEM, "secret store");
	}
	if (cred != NULL && cred[0] == '/') {
		snprintf(s->path, sizeof(s->path), "%s/kiln-secrets-key", cred);
		from_cred = access(s->path, F_OK) == 0;
	}
	if (!from_cred)
		snprintf(s->path, sizeof(s->path), "%s/secrets.key", data_dir);

	have_check = kiln_db_secrets_check_get(db, probe, sizeof(probe), ct, &ctlen, err);
	if (have_check < 0 || kiln_db_secrets_count(db, &count, err) < 0)
		goto fail;
	if (access(s->path, F_OK) != 0) {
		if (errno != ENOENT) {
			kiln_error_set(err, errno, "master key %s", s->path);
			goto fail;
		}
		if (have_check > 0 || count > 0) {
			kiln_error_set(err, ENOENT,
				       "master key %s is missing, but the database holds %" PRId64
				       " secret(s) written with one: restore the key file (kilnd "
				       "will not start without it)",
				       s->path, count);
			goto fail;
		}
		if (from_cred || create_key(s->path, s->key, err) < 0)
			goto fail;
	} else if (read_key(s->path, !from_cred, s->key, err) < 0) {
		goto fail;
	}
	sodium_mprotect_readonly(s->key);
	if (check_key(s, db, err) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	kiln_secrets_close(s);
	return -1;
}

/* project NUL name NUL version */
static size_t make_ad(char *ad, size_t cap, const char *project, const char *name, int64_t ver)
{
	int n = snprintf(ad, cap, "%s%c%s%c%" PRId64, project, '\0', name, '\0', ver);

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int kiln_secret_set(struct kiln_secrets *s, struct kiln_db *db, const char *project,
		    const char *name, const unsigned char *value, size_t len, int64_t *version,
		    struct kiln_error **err)
{
	unsigned char nonce[NONCE_LEN], *ct;
	unsigned long long clen = 0;
	char ad[256];
	size_t adlen;
	int64_t ver;
	int r;

	if (!kiln_project_name_valid(project))
		return kiln_error_set(err, EINVAL, "bad project name");
	if (!kiln_secret_name_valid(name))
		return kiln_error_set(err, EINVAL,
				      "'%s' is not a secret name (letters, digits and _, not "
				      "starting with a digit, at most 64)",
				      name);
	if (len < KILN_SECRET_MIN)
		return kiln_error_set(err, EINVAL,
				      "a secret must be at least %d bytes: shorter values cannot "
				      "be masked in logs safely",
				      KILN_SECRET_MIN);
	if (len > KILN_SECRET_MAX)
		return kiln_error_set(err, EINVAL, "a secret may be at most %d bytes",
				      KILN_SECRET_MAX);
	ver = kiln_db_secret_version(db, project, name) + 1;
	adlen = make_ad(ad, sizeof(ad), project, name, ver);
	ct = malloc(len + TAG_LEN);
	if (ct == NULL || adlen == 0) {
		free(ct);
		return kiln_error_set(err, ENOMEM, "encrypt secret");
	}
	randombytes_buf(nonce, sizeof(nonce));
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, value, len, (unsigned char *)ad,
						   adlen, NULL, nonce, s->key);
	r = kiln_db_secret_put(db, project, name, ver, nonce, (int)sizeof(nonce), ct, (int)clen,
			       err);
	free(ct);
	if (r == 0)
		*version = ver;
	return r;
}

int kiln_secret_get(struct kiln_secrets *s, struct kiln_db *db, const char *project,
		    const char *name, struct kiln_secret_value *out, struct kiln_error **err)
{
	unsigned char nonce[NONCE_LEN], *ct = NULL;
	unsigned long long plen = 0;
	size_t ctlen = 0, adlen;
	int64_t ver = 0;
	char ad[256];

	memset(out, 0, sizeof(*out));
	if (kiln_db_secret_get(db, project, name, &ver, nonce, sizeof(nonce), &ct, &ctlen, err) < 0)
		return -1;
	adlen = make_ad(ad, sizeof(ad), project, name, ver);
	if (ctlen < TAG_LEN || ctlen - TAG_LEN > KILN_SECRET_MAX || adlen == 0) {
		free(ct);
		return kiln_error_set(err, EBADMSG, "secret %s of %s: damaged", name, project);
	}
	out->value = sodium_malloc(ctlen - TAG_LEN + 1);
	if (out->value == NULL) {
		free(ct);
		return kiln_error_set(err, ENOMEM, "decrypt secret");
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out->value, &plen, NULL, ct, ctlen,
						       (unsigned char *)ad, adlen, nonce,
						       s->key) != 0) {
		free(ct);
		kiln_secret_value_wipe(out);
		return kiln_error_set(err, EBADMSG,
				      "secret %s of %s does not decrypt (tampered with, moved to "
				      "another row, or written with another key)",
				      name, project);
	}
	free(ct);
	out->value[plen] = '\0';
	out->len = (size_t)plen;
	out->version = ver;
	snprintf(out->name, sizeof(out->name), "%s", name);
	return 0;
}

void kiln_secret_value_wipe(struct kiln_secret_value *v)
{
	if (v == NULL)
		return;
	/* sodium_free wipes the buffer before releasing it. */
	sodium_free(v->value);
	memset(v, 0, sizeof(*v));
}
