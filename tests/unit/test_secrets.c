/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The encrypted secret store: values round-trip; the database file alone
 * holds no value (nor its base64 or hex); a missing key with secrets
 * stored, a wrong key, a key file others can read, and a row moved to
 * another name all fail loudly; secrets too short to mask are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "server/secrets.h"
#include "store/db.h"
#include "tap.h"

static const char value[] = "tr0ub4dor&3-correct-horse";

static bool file_contains(const char *path, const void *needle, size_t n)
{
	FILE *f = fopen(path, "rb");
	static char buf[1 << 22];
	size_t len;

	if (f == NULL)
		return false;
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return memmem(buf, len, needle, n) != NULL;
}

static bool db_files_contain(const char *dir, const void *needle, size_t n)
{
	char p[4200];
	const char *sfx[] = {"kiln.db", "kiln.db-wal", "kiln.db-shm"};

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, sfx[i]);
		if (file_contains(p, needle, n))
			return true;
	}
	return false;
}

int main(void)
{
	char tmpl[] = "/tmp/kiln-test-secrets.XXXXXX", *dir = mkdtemp(tmpl);
	char dbpath[4200], keypath[4200], b64[128], hex[128];
	struct kiln_error *err = NULL;
	struct kiln_secrets *s = NULL;
	struct kiln_secret_value v;
	struct kiln_db *db = NULL;
	int64_t ver = 0;

	if (sodium_init() < 0 || dir == NULL)
		return 1;
	unsetenv("CREDENTIALS_DIRECTORY");
	snprintf(dbpath, sizeof(dbpath), "%s/kiln.db", dir);
	snprintf(keypath, sizeof(keypath), "%s/secrets.key", dir);
	ok(kiln_db_open(dbpath, &db, &err) == 0, "open database");
	kiln_db_project_create(db, "web", &err);
	kiln_error_free(&err);

	ok(kiln_secrets_open(dir, db, &s, &err) == 0, "first open creates the key (%s)",
	   err ? err->msg : "");
	kiln_error_free(&err);
	{
		struct stat st;
		ok(stat(keypath, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32,
		   "key file: 0600, 32 bytes");
	}
	ok(kiln_secret_set(s, db, "web", "TOKEN", (const unsigned char *)value, strlen(value), &ver,
			   &err) == 0 &&
		   ver == 1,
	   "set TOKEN (version 1)");
	ok(kiln_secret_set(s, db, "web", "TOKEN", (const unsigned char *)value, strlen(value), &ver,
			   &err) == 0 &&
		   ver == 2,
	   "set again: version 2");
	ok(kiln_secret_set(s, db, "web", "SHORT", (const unsigned char *)"1234567", 7, &ver, &err) <
			   0 &&
		   err && err->code == EINVAL,
	   "a 7-byte secret is refused (too short to mask): %s", err ? err->msg : "");
	kiln_error_free(&err);
	ok(kiln_secret_set(s, db, "nope", "TOKEN", (const unsigned char *)value, strlen(value),
			   &ver, &err) < 0 &&
		   err && err->code == ENOENT,
	   "unknown project refused");
	kiln_error_free(&err);
	ok(kiln_secret_set(s, db, "web", "bad-name", (const unsigned char *)value, strlen(value),
			   &ver, &err) < 0,
	   "bad name refused");
	kiln_error_free(&err);
	ok(kiln_secret_get(s, db, "web", "TOKEN", &v, &err) == 0 && v.len == strlen(value) &&
		   memcmp(v.value, value, v.len) == 0 && v.version == 2,
	   "get returns the value");
	kiln_secret_value_wipe(&v);
	ok(kiln_secret_get(s, db, "web", "MISSING", &v, &err) < 0 && err && err->code == ENOENT,
	   "get of an unset secret: ENOENT");
	kiln_error_free(&err);
	{
		json_t *l = kiln_db_secrets_list(db, "web", &err);
		char *t = json_dumps(l, 0);
		ok(t && strstr(t, "TOKEN") && !strstr(t, value), "list: names, never values");
		free(t);
		json_decref(l);
	}
	kiln_secrets_close(s);
	s = NULL;
	kiln_db_close(db);
	db = NULL;

	/* The database alone reveals nothing. */
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)value, strlen(value),
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2hex(hex, sizeof(hex), (const unsigned char *)value, strlen(value));
	ok(!db_files_contain(dir, value, strlen(value)) &&
		   !db_files_contain(dir, b64, strlen(b64) - 4) &&
		   !db_files_contain(dir, hex, strlen(hex)),
	   "the database files hold no value (raw, base64 or hex)");

	/* A row moved to another name does not decrypt. */
	{
		sqlite3 *h;
		ok(sqlite3_open(dbpath, &h) == SQLITE_OK &&
			   sqlite3_exec(
				   h,
				   "INSERT INTO secrets (project, name, version, nonce, value, "
				   "created_at) SELECT project, 'OTHER', version, nonce, value, "
				   "created_at FROM secrets WHERE name = 'TOKEN'",
				   NULL, NULL, NULL) == SQLITE_OK,
		   "copy TOKEN's row to OTHER");
		sqlite3_close(h);
		ok(kiln_db_open(dbpath, &db, &err) == 0 &&
			   kiln_secrets_open(dir, db, &s, &err) == 0,
		   "reopen with the right key");
		ok(kiln_secret_get(s, db, "web", "OTHER", &v, &err) < 0 && err &&
			   err->code == EBADMSG,
		   "the moved row does not decrypt: %s", err ? err->msg : "");
		kiln_error_free(&err);
		kiln_secrets_close(s);
		s = NULL;
		kiln_db_close(db);
		db = NULL;
	}

	/* A key others can read is refused. */
	chmod(keypath, 0644);
	ok(kiln_db_open(dbpath, &db, &err) == 0 && kiln_secrets_open(dir, db, &s, &err) < 0,
	   "a 0644 key file is refused: %s", err ? err->msg : "");
	kiln_error_free(&err);
	chmod(keypath, 0600);

	/* A wrong key fails loudly. */
	{
		char saved[4300];
		unsigned char other[32];
		int fd;

		snprintf(saved, sizeof(saved), "%s.saved", keypath);
		ok(rename(keypath, saved) == 0, "move the key away");
		ok(kiln_secrets_open(dir, db, &s, &err) < 0 && err && strstr(err->msg, "missing"),
		   "a missing key with secrets stored: refused: %s", err ? err->msg : "");
		kiln_error_free(&err);
		ok(access(keypath, F_OK) != 0, "... and no new key was made");
		randombytes_buf(other, sizeof(other));
		fd = open(keypath, O_WRONLY | O_CREAT | O_EXCL, 0600);
		ok(fd >= 0 && write(fd, other, 32) == 32, "write another key");
		close(fd);
		ok(kiln_secrets_open(dir, db, &s, &err) < 0 && err &&
			   strstr(err->msg, "not the key"),
		   "a wrong key: refused: %s", err ? err->msg : "");
		kiln_error_free(&err);
		fd = open(keypath, O_WRONLY | O_TRUNC);
		ok(fd >= 0 && write(fd, other, 16) == 16, "a short key file");
		close(fd);
		ok(kiln_secrets_open(dir, db, &s, &err) < 0 && err && strstr(err->msg, "32 bytes"),
		   "a short key: refused: %s", err ? err->msg : "");
		kiln_error_free(&err);
		ok(rename(saved, keypath) == 0 && kiln_secrets_open(dir, db, &s, &err) == 0,
		   "the right key again: opens");
		kiln_secrets_close(s);
	}
	kiln_db_close(db);

	/* A systemd credential is used instead of DATA/secrets.key. */
	{
		char cred[4300], data2[4300], dbp[4400], kp[4400], kp2[4400];
		unsigned char key[32];
		int fd;

		snprintf(cred, sizeof(cred), "%s/cred", dir);
		snprintf(data2, sizeof(data2), "%s/data2", dir);
		mkdir(cred, 0700);
		mkdir(data2, 0700);
		snprintf(kp, sizeof(kp), "%s/kiln-secrets-key", cred);
		snprintf(kp2, sizeof(kp2), "%s/secrets.key", data2);
		snprintf(dbp, sizeof(dbp), "%s/kiln.db", data2);
		randombytes_buf(key, sizeof(key));
		fd = open(kp, O_WRONLY | O_CREAT | O_EXCL, 0400);
		ok(fd >= 0 && write(fd, key, 32) == 32, "write a credential");
		close(fd);
		setenv("CREDENTIALS_DIRECTORY", cred, 1);
		db = NULL;
		ok(kiln_db_open(dbp, &db, &err) == 0 && kiln_secrets_open(data2, db, &s, &err) == 0,
		   "open with $CREDENTIALS_DIRECTORY/kiln-secrets-key (%s)", err ? err->msg : "");
		kiln_error_free(&err);
		ok(s != NULL && strcmp(kiln_secrets_key_path(s), kp) == 0,
		   "the credential is the key");
		ok(access(kp2, F_OK) != 0, "no DATA/secrets.key was made");
		kiln_secrets_close(s);
		s = NULL;
		unsetenv("CREDENTIALS_DIRECTORY");
		ok(kiln_secrets_open(data2, db, &s, &err) < 0 && err && strstr(err->msg, "missing"),
		   "without the credential: the store's key is missing, refused");
		kiln_error_free(&err);
		kiln_db_close(db);
	}
	{
		char cmd[4300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		ok(system(cmd) == 0, "clean up");
	}
	return tap_done();
}
