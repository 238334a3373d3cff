/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provenance key (src/server/provkey.c), judged from outside: the
 * files and their modes, the same key after a reload, a key file others
 * may read refused, envelopes that verify under the published key, and a
 * forked child (what every sandbox runner is) that holds no usable key.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "core/error.h"
#include "core/sys.h"
#include "server/provenance.h"
#include "tap.h"
#include "trust/dsse.h"

static char root[64];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int pub_of(const struct kiln_provkey *k, uint8_t pk[32])
{
	json_t *j = kiln_provkey_json(k);
	const char *b64 =
		json_string_value(json_object_get(json_object_get(j, "provenance"), "public_key"));
	size_t n = 0;
	int r = b64 &&
				sodium_base642bin(pk, 32, b64, strlen(b64), NULL, &n, NULL,
						  sodium_base64_VARIANT_ORIGINAL) == 0 &&
				n == 32
			? 0
			: -1;

	json_decref(j);
	return r;
}

static int verifies(const char *text, const uint8_t pk[32])
{
	struct kiln_error *err = NULL;
	char *body = NULL, *type = NULL;
	size_t n = 0;
	int r = kiln_dsse_verify(text, strlen(text), pk, &body, &n, &type, &err);

	kiln_error_free(&err);
	free(body);
	free(type);
	return r == 0;
}

int main(void)
{
	struct kiln_provkey *k = NULL, *k2 = NULL;
	struct kiln_error *err = NULL;
	char path[128], buf[4096];
	uint8_t pk[32], pk2[32];
	struct stat st;
	json_t *env;
	char *text;
	int p[2];
	pid_t pid;
	ssize_t n;
	int status = 0;

	if (sodium_init() < 0)
		return 1;
	snprintf(root, sizeof(root), "/tmp/kiln-test-provkey.XXXXXX");
	if (mkdtemp(root) == NULL)
		tap_skip_all("mkdtemp failed");

	ok(kiln_provkey_open(root, &k, &err) == 0, "a new key is created: %s", err ? err->msg : "");
	kiln_error_free(&err);
	if (k == NULL)
		return tap_done();
	snprintf(path, sizeof(path), "%s/provenance.key", root);
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "provenance.key is 0600 (%o)",
	   st.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/provenance.pub", root);
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "provenance.pub is 0644");
	ok(pub_of(k, pk) == 0, "the public key is published");

	env = kiln_provkey_sign(k, KILN_INTOTO_PAYLOAD_TYPE, "{}", 2, &err);
	text = env ? json_dumps(env, JSON_COMPACT) : NULL;
	ok(text != NULL && verifies(text, pk), "an envelope verifies under the published key");
	free(text);
	json_decref(env);

	/* A forked child: the key page is wiped (MADV_WIPEONFORK). */
	if (pipe(p) < 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		json_t *e = kiln_provkey_sign(k, KILN_INTOTO_PAYLOAD_TYPE, "{}", 2, &err);
		char *t = e ? json_dumps(e, JSON_COMPACT) : NULL;

		close(p[0]);
		if (t != NULL)
			kiln_write_all(p[1], t, strlen(t));
		_exit(0);
	}
	close(p[1]);
	n = kiln_read_all(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	waitpid(pid, &status, 0);
	buf[n > 0 ? n : 0] = '\0';
	ok(n > 0 && !verifies(buf, pk),
	   "a forked child (a sandbox runner) cannot sign: its copy of the key is wiped");

	kiln_provkey_close(k);
	ok(kiln_provkey_open(root, &k2, &err) == 0 && pub_of(k2, pk2) == 0 &&
		   memcmp(pk, pk2, 32) == 0,
	   "reopened: the same key");
	kiln_error_free(&err);
	kiln_provkey_close(k2);
	k2 = NULL;

	snprintf(path, sizeof(path), "%s/provenance.key", root);
	chmod(path, 0640);
	ok(kiln_provkey_open(root, &k2, &err) < 0 && err && strstr(err->msg, "0600"),
	   "a key file readable by the group is refused: %s", err ? err->msg : "");
	kiln_error_free(&err);
	kiln_provkey_close(k2);

	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
