/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provenance key (provenance.h). File format of DATA/provenance.key:
 * "kiln-provenance-key-v1\n" then the base64 of the 32-byte Ed25519 seed
 * and "\n".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/cleanup.h"
#include "core/sys.h"
#include "server/provenance.h"
#include "trust/dsse.h"

#define KEY_HEAD "kiln-provenance-key-v1\n"
/* SubjectPublicKeyInfo DER of an Ed25519 key: this prefix, then 32 bytes. */
static const uint8_t spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
					0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

struct secret_page {
	uint8_t sk[64];
};

struct kiln_provkey {
	struct secret_page *page; /* mmap'd, wiped on fork */
	size_t page_len;
	uint8_t pk[32];
	char keyid[KILN_ED25519_KEYID_HEX];
	char *pem;
};

char *kiln_ed25519_pem(const uint8_t pk[32])
{
	uint8_t der[44];
	char b64[80];
	char *out = NULL;

	memcpy(der, spki_prefix, sizeof(spki_prefix));
	memcpy(der + 12, pk, 32);
	sodium_bin2base64(b64, sizeof(b64), der, sizeof(der), sodium_base64_VARIANT_ORIGINAL);
	if (asprintf(&out, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b64) < 0)
		return NULL;
	return out;
}

static int secret_page_new(struct kiln_provkey *k, struct kiln_error **err)
{
	long ps = sysconf(_SC_PAGESIZE);
	void *p;

	k->page_len = ps > 0 ? (size_t)ps : 4096;
	p = mmap(NULL, k->page_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return kiln_error_set(err, errno, "provenance key: mmap");
	/* Fail closed: without WIPEONFORK every sandbox runner (a fork of
	 * kilnd) would hold a copy of the key. */
	if (madvise(p, k->page_len, MADV_WIPEONFORK) < 0) {
		int e = errno;
		munmap(p, k->page_len);
		return kiln_error_set(err, e,
				      "provenance key: madvise(MADV_WIPEONFORK) (Linux >= 4.14 is "
				      "needed to keep the key out of sandbox processes)");
	}
	madvise(p, k->page_len, MADV_DONTDUMP);
	mlock(p, k->page_len);
	k->page = p;
	return 0;
}

static int write_file(const char *path, const char *text, mode_t mode, bool excl,
		      struct kiln_error **err)
{
	char tmp[4300];
	cleanup_fd int fd = -1;

	if (excl) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd < 0)
			return kiln_error_set(err, errno, "create %s", path);
		if (kiln_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
			int e = errno;
			unlink(path);
			return kiln_error_set(err, e, "write %s", path);
		}
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return kiln_error_set(err, errno, "create %s", tmp);
	if (fchmod(fd, mode) < 0 || kiln_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0 ||
	    rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kiln_error_set(err, e, "write %s", path);
	}
	return 0;
}

static int load_seed(const char *path, uint8_t seed[32], struct kiln_error **err)
{
	cleanup_fd int fd = kiln_open_key_file(path, true, err);
	char buf[256];
	const char *end = NULL;
	size_t got = 0, n;
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof(buf) - 1);
	if (r < 0)
		return kiln_error_set(err, errno, "read %s", path);
	buf[r] = '\0';
	n = strlen(KEY_HEAD);
	if ((size_t)r < n || memcmp(buf, KEY_HEAD, n) != 0)
		return kiln_error_set(err, EINVAL, "%s: not a kiln provenance key", path);
	{
		size_t l = (size_t)r - n;
		while (l > 0 && (buf[n + l - 1] == '\n' || buf[n + l - 1] == '\r'))
			l--;
		if (sodium_base642bin(seed, 32, buf + n, l, NULL, &got, &end,
				      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    got != 32 || end != buf + n + l) {
			sodium_memzero(buf, sizeof(buf));
			return kiln_error_set(err, EINVAL, "%s: bad key line", path);
		}
	}
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

int kiln_provkey_open(const char *data, struct kiln_provkey **out, struct kiln_error **err)
{
	char path[4200], pubpath[4200];
	struct kiln_provkey *k = calloc(1, sizeof(*k));
	uint8_t seed[32];
	struct stat st;

	*out = NULL;
	if (k == NULL)
		return kiln_error_set(err, ENOMEM, "provenance key");
	if (secret_page_new(k, err) < 0) {
		free(k);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/provenance.key", data);
	snprintf(pubpath, sizeof(pubpath), "%s/provenance.pub", data);
	if (lstat(path, &st) < 0 && errno == ENOENT) {
		char b64[64], text[128];

		randombytes_buf(seed, sizeof(seed));
		sodium_bin2base64(b64, sizeof(b64), seed, sizeof(seed),
				  sodium_base64_VARIANT_ORIGINAL);
		snprintf(text, sizeof(text), "%s%s\n", KEY_HEAD, b64);
		sodium_memzero(b64, sizeof(b64));
		if (write_file(path, text, 0600, true, err) < 0) {
			sodium_memzero(text, sizeof(text));
			goto fail;
		}
		sodium_memzero(text, sizeof(text));
	} else if (load_seed(path, seed, err) < 0) {
		goto fail;
	}
	crypto_sign_seed_keypair(k->pk, k->page->sk, seed);
	sodium_memzero(seed, sizeof(seed));
	kiln_ed25519_keyid(k->pk, k->keyid);
	k->pem = kiln_ed25519_pem(k->pk);
	if (k->pem == NULL) {
		kiln_error_set(err, ENOMEM, "provenance key");
		goto fail;
	}
	if (write_file(pubpath, k->pem, 0644, false, err) < 0)
		goto fail;
	*out = k;
	return 0;
fail:
	sodium_memzero(seed, sizeof(seed));
	kiln_provkey_close(k);
	return -1;
}

void kiln_provkey_close(struct kiln_provkey *k)
{
	if (k == NULL)
		return;
	if (k->page != NULL) {
		sodium_memzero(k->page, sizeof(*k->page));
		munmap(k->page, k->page_len);
	}
	free(k->pem);
	free(k);
}

json_t *kiln_provkey_json(const struct kiln_provkey *k)
{
	char b64[64];

	sodium_bin2base64(b64, sizeof(b64), k->pk, 32, sodium_base64_VARIANT_ORIGINAL);
	return json_pack("{s:{s:s, s:s, s:s, s:s}}", "provenance", "algorithm", "ed25519", "keyid",
			 k->keyid, "public_key", b64, "pem", k->pem);
}

json_t *kiln_provkey_sign(const struct kiln_provkey *k, const char *type, const void *body,
			  size_t len, struct kiln_error **err)
{
	return kiln_dsse_sign(type, body, len, k->page->sk, err);
}
