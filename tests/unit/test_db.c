/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The database, judged by what is on disk afterwards: migrations on an
 * empty file and on reopening, refusal of a newer schema, the state machine
 * as compare-and-set (every cell), claims from two threads, recovery after
 * a crash, tokens and JSON shapes, and a writer killed with SIGKILL whose
 * every acknowledged job must still be there.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "server/job.h"
#include "store/cas.h"
#include "store/db.h"
#include "tap.h"

static char root[64];
static char dbpath[128];

#define SHA_A "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define SHA_B "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static struct kiln_db *open_db(const char *path)
{
	struct kiln_db *db = NULL;
	struct kiln_error *err = NULL;

	if (kiln_db_open(path, &db, &err) < 0) {
		printf("# open %s: %s\n", path, err->msg);
		kiln_error_free(&err);
		return NULL;
	}
	return db;
}

static int64_t new_job(struct kiln_db *db, const char *project, bool retry_safe)
{
	struct kiln_job_new j = {
		.project = project,
		.spec_text = "image: debian\nrun: make\n",
		.spec_json = "{\"image\": \"debian\", \"run\": \"make\", \"retry\": false}",
		.spec_sha256 = SHA_A,
		.source_sha256 = SHA_B,
		.source_bytes = 10240,
		.retry_safe = retry_safe,
		.submitted_by = "0123456789ab",
	};
	struct kiln_error *err = NULL;
	int64_t id = -1;

	if (kiln_db_job_insert(db, &j, &id, &err) < 0) {
		printf("# insert job: %s\n", err->msg);
		kiln_error_free(&err);
		return -1;
	}
	return id;
}

/* The job's state as the API shows it ("" if unknown). */
static const char *state_of(struct kiln_db *db, int64_t id)
{
	static char buf[4][32];
	static unsigned next;
	char *b = buf[next++ % 4];
	struct kiln_error *err = NULL;
	json_t *j = kiln_db_job_get(db, id, &err);

	snprintf(b, 32, "%s", j ? json_string_value(json_object_get(j, "state")) : "");
	json_decref(j);
	kiln_error_free(&err);
	return b;
}

static int raw_int(const char *path, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static const char *raw_text(const char *path, const char *sql, char *buf, size_t len)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	buf[0] = '\0';
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return buf;
}

static int raw_exec(const char *path, const char *sql)
{
	sqlite3 *h = NULL;
	int rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
	sqlite3_close(h);
	return rc;
}

static int is_rfc3339(json_t *v)
{
	const char *s = json_string_value(v);
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t i;

	if (s == NULL || strlen(s) != 20)
		return 0;
	for (i = 0; i < 20; i++)
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	return 1;
}

/* ---- schema ---------------------------------------------------------- */

static void test_migrations(void)
{
	struct kiln_db *db;
	struct kiln_error *err = NULL;
	char buf[64], p[192];
	struct stat st;
	int64_t id;

	db = open_db(dbpath);
	ok(db != NULL, "open on an empty directory creates the database");
	if (db == NULL)
		return;
	is_int(kiln_db_schema_version(db), kiln_db_schema_supported(), "schema version %d",
	       kiln_db_schema_supported());
	ok(kiln_db_integrity_check(db, &err) == 0, "integrity check passes");
	kiln_error_free(&err);
	ok(stat(dbpath, &st) == 0 && (st.st_mode & 0077) == 0, "database file is private (%o)",
	   st.st_mode & 0777);
	ok(kiln_db_project_create(db, "web", &err) == 0, "create project web");
	kiln_error_free(&err);
	id = new_job(db, "web", false);
	ok(id > 0, "insert a job");
	kiln_db_close(db);

	is_int(raw_int(dbpath, "PRAGMA user_version"), kiln_db_schema_supported(),
	       "user_version on disk is the latest");
	is_str(raw_text(dbpath, "PRAGMA journal_mode", buf, sizeof(buf)), "wal",
	       "journal mode WAL is persistent");
	is_int(raw_int(dbpath, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
			       " ('projects', 'tokens', 'jobs', 'artifacts')"),
	       4, "four tables");
	is_int(raw_int(dbpath, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
			       " tbl_name = 'jobs' AND sql LIKE '%state%'"),
	       2, "indexes for listing by state");
	is_int(raw_int(dbpath, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
			       " tbl_name = 'jobs' AND sql LIKE '%project%'"),
	       2, "indexes for listing by project");

	db = open_db(dbpath);
	ok(db != NULL, "reopen");
	if (db == NULL)
		return;
	is_int(kiln_db_schema_version(db), kiln_db_schema_supported(), "still the latest version");
	ok(kiln_db_project_exists(db, "web"), "project survived reopening");
	is_str(state_of(db, id), "queued", "job survived reopening");
	is_int(raw_int(dbpath, "PRAGMA foreign_keys"), 0,
	       "(a raw connection has foreign keys off: the check below is ours)");
	{
		/* Our connection enforces foreign keys. */
		struct kiln_job_new j = {.project = "nope",
					 .spec_text = "x",
					 .spec_json = "{}",
					 .spec_sha256 = SHA_A,
					 .source_sha256 = SHA_B};
		int64_t jid;

		ok(kiln_db_job_insert(db, &j, &jid, &err) < 0 && err && err->code == ENOENT,
		   "job for an unknown project refused (ENOENT)");
		kiln_error_free(&err);
	}
	kiln_db_close(db);

	/* A database written by a newer kilnd is refused, and left alone. */
	snprintf(p, sizeof(p), "%s/newer.db", root);
	ok(raw_exec(p, "CREATE TABLE future (x); PRAGMA user_version = 99;") == SQLITE_OK,
	   "make a database claiming version 99");
	db = NULL;
	ok(kiln_db_open(p, &db, &err) < 0 && db == NULL, "newer database refused");
	snprintf(buf, sizeof(buf), "(%d)", kiln_db_schema_supported());
	ok(err && strstr(err->msg, "99") && strstr(err->msg, buf), "error names both: %s",
	   err ? err->msg : "");
	kiln_error_free(&err);
	is_int(raw_int(p, "PRAGMA user_version"), 99, "its version is untouched");
	is_str(raw_text(p, "PRAGMA journal_mode", buf, sizeof(buf)), "delete",
	       "its journal mode is untouched");

	/* A file that is not a database. */
	snprintf(p, sizeof(p), "%s/garbage.db", root);
	{
		FILE *f = fopen(p, "w");
		fputs("this is not an sqlite database, not at all, no. 0123456789abcdef\n", f);
		fclose(f);
	}
	ok(kiln_db_open(p, &db, &err) < 0, "garbage file refused: %s", err ? err->msg : "");
	kiln_error_free(&err);
}

/* ---- projects -------------------------------------------------------- */

static void test_projects(struct kiln_db *db)
{
	static const char *good[] = {
		"a",   "0",
		"web", "my-app-2",
		"a-",  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	static const char *bad[] = {
		"",	  "-a",
		"Web",	  "a_b",
		"a.b",	  "a b",
		"web\n",  "x'; DROP TABLE jobs;--",
		"../etc", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	struct kiln_error *err = NULL;
	json_t *l, *arr, *first;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(kiln_project_name_valid(good[i]), "name '%s' valid", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ok(!kiln_project_name_valid(bad[i]), "name %zu invalid", i);
		ok(kiln_db_project_create(db, bad[i], &err) < 0 && err && err->code == EINVAL,
		   "create name %zu: EINVAL", i);
		kiln_error_free(&err);
	}
	ok(!kiln_project_name_valid(NULL), "NULL invalid");
	ok(kiln_db_project_create(db, "api", &err) == 0, "create api");
	kiln_error_free(&err);
	ok(kiln_db_project_create(db, "api", &err) < 0 && err && err->code == EEXIST,
	   "create api twice: EEXIST");
	kiln_error_free(&err);
	ok(kiln_db_project_exists(db, "api") && !kiln_db_project_exists(db, "nope"), "exists");

	l = kiln_db_projects_list(db, &err);
	arr = json_object_get(l, "projects");
	ok(json_is_array(arr) && json_array_size(arr) == 2, "projects list: 2 entries");
	first = json_array_get(arr, 0);
	is_str(json_string_value(json_object_get(first, "name")), "api", "sorted by name");
	ok(is_rfc3339(json_object_get(first, "created_at")), "created_at is RFC 3339: %s",
	   json_string_value(json_object_get(first, "created_at")));
	is_int(json_object_size(first), 2, "exactly name and created_at");
	json_decref(l);
	is_int(raw_int(dbpath, "SELECT count(*) FROM jobs") >= 0, 1, "jobs table still there");
}

/* ---- tokens ---------------------------------------------------------- */

static void test_scopes(void)
{
	char buf[64];

	is_int(kiln_scopes_parse("submit"), KILN_SCOPE_SUBMIT, "parse submit");
	is_int(kiln_scopes_parse("submit,read,admin"),
	       KILN_SCOPE_SUBMIT | KILN_SCOPE_READ | KILN_SCOPE_ADMIN, "parse all");
	is_int(kiln_scopes_parse("admin,read"), KILN_SCOPE_READ | KILN_SCOPE_ADMIN,
	       "parse any order");
	is_int(kiln_scopes_parse("read,read"), KILN_SCOPE_READ, "duplicates are harmless");
	is_int(kiln_scopes_parse(""), 0, "empty -> 0");
	is_int(kiln_scopes_parse(NULL), 0, "NULL -> 0");
	is_int(kiln_scopes_parse("read,"), 0, "trailing comma -> 0");
	is_int(kiln_scopes_parse(",read"), 0, "leading comma -> 0");
	is_int(kiln_scopes_parse("read,root"), 0, "unknown scope -> 0");
	is_int(kiln_scopes_parse("Read"), 0, "case-sensitive");
	is_int(kiln_scopes_parse("read "), 0, "no spaces");
	is_int(kiln_scopes_parse("readx"), 0, "no prefixes");
	kiln_scopes_format(KILN_SCOPE_SUBMIT | KILN_SCOPE_READ | KILN_SCOPE_ADMIN, buf,
			   sizeof(buf));
	is_str(buf, "submit,read,admin", "format all");
	kiln_scopes_format(KILN_SCOPE_ADMIN | KILN_SCOPE_READ, buf, sizeof(buf));
	is_str(buf, "read,admin", "format two");
	kiln_scopes_format(0, buf, sizeof(buf));
	is_str(buf, "", "format none");
	kiln_scopes_format(KILN_SCOPE_SUBMIT | KILN_SCOPE_READ, buf, 9);
	is_str(buf, "submit", "format into a short buffer never cuts a name");
}

static void test_tokens(struct kiln_db *db)
{
	struct kiln_token_row t = {0}, back;
	struct kiln_error *err = NULL;
	json_t *l, *arr, *e;
	size_t i;
	char *dump;
	int64_t now = (int64_t)time(NULL);

	snprintf(t.id, sizeof(t.id), "0123456789ab");
	for (i = 0; i < sizeof(t.hash); i++)
		t.hash[i] = (unsigned char)(i * 37); /* includes a 0 byte */
	snprintf(t.project, sizeof(t.project), "web");
	t.scopes = KILN_SCOPE_SUBMIT | KILN_SCOPE_READ;
	t.expires_at = now + 86400;
	ok(kiln_db_token_insert(db, &t, "ci", &err) == 0, "insert token");
	kiln_error_free(&err);
	ok(kiln_db_token_insert(db, &t, "ci", &err) < 0 && err && err->code == EEXIST,
	   "same id twice: EEXIST");
	kiln_error_free(&err);

	ok(kiln_db_token_get(db, "0123456789ab", &back, &err) == 0, "get token");
	kiln_error_free(&err);
	ok(memcmp(back.hash, t.hash, 32) == 0, "hash bytes round trip");
	is_str(back.id, "0123456789ab", "id");
	is_str(back.project, "web", "project");
	is_int(back.scopes, KILN_SCOPE_SUBMIT | KILN_SCOPE_READ, "scopes");
	is_int(back.expires_at, now + 86400, "expires_at");
	is_int(back.revoked_at, 0, "not revoked");
	ok(back.created_at >= now - 5 && back.created_at <= now + 5, "created_at is now");

	/* An admin token without project or expiry. */
	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "ffffffffffff");
	memset(t.hash, 0xAB, sizeof(t.hash));
	t.scopes = KILN_SCOPE_ADMIN;
	ok(kiln_db_token_insert(db, &t, NULL, &err) == 0, "insert admin token");
	kiln_error_free(&err);
	ok(kiln_db_token_get(db, "ffffffffffff", &back, &err) == 0 && back.project[0] == '\0' &&
		   back.expires_at == 0 && back.scopes == KILN_SCOPE_ADMIN,
	   "admin token: no project, no expiry");
	kiln_error_free(&err);

	/* Refusals. */
	snprintf(t.id, sizeof(t.id), "badproject01");
	snprintf(t.project, sizeof(t.project), "nope");
	ok(kiln_db_token_insert(db, &t, "", &err) < 0 && err && err->code == ENOENT,
	   "token for unknown project: ENOENT");
	kiln_error_free(&err);
	t.project[0] = '\0';
	t.scopes = 0;
	ok(kiln_db_token_insert(db, &t, "", &err) < 0 && err && err->code == EINVAL,
	   "token without scopes: EINVAL");
	kiln_error_free(&err);
	t.scopes = 8;
	ok(kiln_db_token_insert(db, &t, "", &err) < 0 && err && err->code == EINVAL,
	   "token with unknown scope bit: EINVAL");
	kiln_error_free(&err);
	t.scopes = KILN_SCOPE_READ;
	snprintf(t.id, sizeof(t.id), "a'b");
	ok(kiln_db_token_insert(db, &t, "", &err) < 0 && err && err->code == EINVAL,
	   "bad token id: EINVAL");
	kiln_error_free(&err);
	ok(kiln_db_token_get(db, "000000000000", &back, &err) < 0 && err && err->code == ENOENT,
	   "get unknown token: ENOENT");
	kiln_error_free(&err);

	/* Listing: shapes, and never the hash. */
	l = kiln_db_tokens_list(db, &err);
	arr = json_object_get(l, "tokens");
	ok(json_is_array(arr) && json_array_size(arr) == 2, "tokens list: 2 entries");
	json_array_foreach(arr, i, e)
	{
		const char *keys[] = {"id",	    "project",	  "scopes",	"created_at",
				      "expires_at", "revoked_at", "description"};
		size_t k;
		int all = 1;

		for (k = 0; k < 7; k++)
			all &= json_object_get(e, keys[k]) != NULL;
		ok(all && json_object_size(e) == 7, "token %zu: exactly the API's keys", i);
		ok(json_object_get(e, "hash") == NULL, "token %zu: no hash", i);
		ok(json_is_array(json_object_get(e, "scopes")), "token %zu: scopes is an array", i);
		ok(is_rfc3339(json_object_get(e, "created_at")), "token %zu: created_at", i);
		ok(json_is_null(json_object_get(e, "revoked_at")), "token %zu: revoked_at null", i);
	}
	e = json_array_get(arr, 0);
	is_str(json_string_value(json_object_get(e, "project")), "web", "first token's project");
	ok(is_rfc3339(json_object_get(e, "expires_at")), "expires_at string");
	is_str(json_string_value(json_array_get(json_object_get(e, "scopes"), 0)), "submit",
	       "scopes[0] = submit");
	is_str(json_string_value(json_array_get(json_object_get(e, "scopes"), 1)), "read",
	       "scopes[1] = read");
	is_str(json_string_value(json_object_get(e, "description")), "ci", "description");
	e = json_array_get(arr, 1);
	ok(json_is_null(json_object_get(e, "project")), "admin token: project null");
	ok(json_is_null(json_object_get(e, "expires_at")), "admin token: expires_at null");
	dump = json_dumps(l, 0);
	ok(dump && strstr(dump, "abababab") == NULL && strstr(dump, "ABABABAB") == NULL,
	   "listing text does not contain the hash");
	free(dump);
	json_decref(l);

	/* Revocation. */
	ok(kiln_db_token_revoke(db, "0123456789ab", &err) == 0, "revoke");
	kiln_error_free(&err);
	kiln_db_token_get(db, "0123456789ab", &back, &err);
	ok(back.revoked_at >= now - 5 && back.revoked_at <= now + 5, "revoked_at set");
	ok(kiln_db_token_revoke(db, "0123456789ab", &err) == 0, "revoke twice is fine");
	kiln_error_free(&err);
	ok(kiln_db_token_revoke(db, "000000000000", &err) < 0 && err && err->code == ENOENT,
	   "revoke unknown: ENOENT");
	kiln_error_free(&err);
}

/* ---- jobs ------------------------------------------------------------ */

static void check_job_shape(json_t *j, bool with_report, const char *what)
{
	static const char *keys[] = {
		"id",
		"project",
		"state",
		"created_at",
		"started_at",
		"finished_at",
		"exit_code",
		"reason",
		"spec_sha256",
		"source_sha256",
		"source_bytes",
		"log_bytes",
		"log_truncated",
		"error",
		"spec",
		"policy_digest",
		"signer_key",
	};
	size_t k;
	int all = 1;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (json_object_get(j, keys[k]) == NULL) {
			printf("#   missing %s\n", keys[k]);
			all = 0;
		}
	ok(all, "%s: every key of the job object", what);
	is_int(json_object_size(j), sizeof(keys) / sizeof(keys[0]) + (with_report ? 1 : 0),
	       "%s: %s report", what, with_report ? "with" : "without");
	ok(json_is_integer(json_object_get(j, "id")), "%s: id integer", what);
	ok(json_is_string(json_object_get(j, "project")), "%s: project string", what);
	ok(json_is_string(json_object_get(j, "state")), "%s: state string", what);
	ok(is_rfc3339(json_object_get(j, "created_at")), "%s: created_at RFC 3339", what);
	ok(json_is_integer(json_object_get(j, "source_bytes")), "%s: source_bytes integer", what);
	ok(json_is_integer(json_object_get(j, "log_bytes")), "%s: log_bytes integer", what);
	ok(json_is_boolean(json_object_get(j, "log_truncated")), "%s: log_truncated boolean", what);
	ok(json_is_object(json_object_get(j, "spec")), "%s: spec is the parsed object", what);
}

static void test_job_json(struct kiln_db *db)
{
	struct kiln_error *err = NULL;
	struct kiln_job_outcome o = {.exit_code = 2,
				     .reason = "exited",
				     .report_json = "{\"exit\": 2, \"oom\": false}",
				     .log_bytes = 812,
				     .log_truncated = true,
				     .error = "make: *** [all] Error 2"};
	enum kiln_job_state ns;
	int64_t id = new_job(db, "web", false), claimed = 0;
	json_t *j, *l;

	j = kiln_db_job_get(db, id, &err);
	ok(j != NULL, "get job");
	check_job_shape(j, true, "queued job");
	is_int(json_integer_value(json_object_get(j, "id")), id, "id");
	is_str(json_string_value(json_object_get(j, "state")), "queued", "state queued");
	is_str(json_string_value(json_object_get(j, "spec_sha256")), SHA_A, "spec_sha256");
	is_str(json_string_value(json_object_get(j, "source_sha256")), SHA_B, "source_sha256");
	is_int(json_integer_value(json_object_get(j, "source_bytes")), 10240, "source_bytes");
	is_str(json_string_value(json_object_get(json_object_get(j, "spec"), "image")), "debian",
	       "spec.image");
	ok(json_is_null(json_object_get(j, "started_at")), "started_at null");
	ok(json_is_null(json_object_get(j, "finished_at")), "finished_at null");
	ok(json_is_null(json_object_get(j, "exit_code")), "exit_code null");
	ok(json_is_null(json_object_get(j, "reason")), "reason null");
	ok(json_is_null(json_object_get(j, "error")), "error null");
	ok(json_is_null(json_object_get(j, "report")), "report null");
	ok(json_is_false(json_object_get(j, "log_truncated")), "log_truncated false");
	json_decref(j);

	/* Drain older queued jobs so that the claim takes this one. */
	while (kiln_db_job_claim(db, "w0", &claimed, &err) == 1 && claimed != id)
		;
	kiln_error_free(&err);
	is_int(claimed, id, "claimed the job");
	ok(kiln_db_job_finish(db, id, &o, KILN_EV_FAIL, &ns, &err) == 0 && ns == KILN_JOB_FAILED,
	   "finish -> failed");
	kiln_error_free(&err);
	j = kiln_db_job_get(db, id, &err);
	check_job_shape(j, true, "finished job");
	is_str(json_string_value(json_object_get(j, "state")), "failed", "state failed");
	ok(is_rfc3339(json_object_get(j, "started_at")), "started_at set");
	ok(is_rfc3339(json_object_get(j, "finished_at")), "finished_at set");
	is_int(json_integer_value(json_object_get(j, "exit_code")), 2, "exit_code 2");
	is_str(json_string_value(json_object_get(j, "reason")), "exited", "reason");
	is_int(json_integer_value(json_object_get(j, "log_bytes")), 812, "log_bytes");
	ok(json_is_true(json_object_get(j, "log_truncated")), "log_truncated true");
	is_str(json_string_value(json_object_get(j, "error")), "make: *** [all] Error 2", "error");
	ok(json_is_object(json_object_get(j, "report")), "report is an object");
	is_int(json_integer_value(json_object_get(json_object_get(j, "report"), "exit")), 2,
	       "report.exit");
	json_decref(j);

	/* A second finish is a late event: refused, nothing overwritten. */
	o.exit_code = 0;
	o.reason = "late";
	ok(kiln_db_job_finish(db, id, &o, KILN_EV_SUCCEED, &ns, &err) < 0 && err &&
		   err->code == EALREADY,
	   "finish a finished job: EALREADY");
	kiln_error_free(&err);
	ok(kiln_db_job_finish(db, id, &o, (enum kiln_job_event) - 1, &ns, &err) < 0 && err &&
		   err->code == EALREADY,
	   "record outcome on a finished job: EALREADY");
	kiln_error_free(&err);
	j = kiln_db_job_get(db, id, &err);
	is_int(json_integer_value(json_object_get(j, "exit_code")), 2, "exit_code unchanged");
	is_str(json_string_value(json_object_get(j, "reason")), "exited", "reason unchanged");
	json_decref(j);

	/* Outcome without an event on a running job: recorded, state kept. */
	id = new_job(db, "web", false);
	kiln_db_job_claim(db, "w0", &claimed, &err);
	o.exit_code = -1;
	o.reason = NULL;
	o.report_json = NULL;
	o.error = NULL;
	o.log_bytes = 5;
	o.log_truncated = false;
	ok(kiln_db_job_finish(db, claimed, &o, (enum kiln_job_event) - 1, &ns, &err) == 0 &&
		   ns == KILN_JOB_RUNNING,
	   "record outcome without an event: still running");
	kiln_error_free(&err);
	j = kiln_db_job_get(db, claimed, &err);
	ok(json_is_null(json_object_get(j, "exit_code")), "exit_code -1 -> null");
	is_int(json_integer_value(json_object_get(j, "log_bytes")), 5, "log_bytes recorded");
	json_decref(j);

	ok(kiln_db_job_get(db, 999999, &err) == NULL && err && err->code == ENOENT,
	   "get unknown job: NULL, ENOENT");
	kiln_error_free(&err);

	/* Listings: newest first, filters, no report. */
	l = kiln_db_jobs_list(db, NULL, NULL, 0, &err);
	{
		json_t *arr = json_object_get(l, "jobs");
		json_int_t a = json_integer_value(json_object_get(json_array_get(arr, 0), "id"));
		json_int_t b = json_integer_value(json_object_get(json_array_get(arr, 1), "id"));

		ok(json_is_array(arr) && json_array_size(arr) >= 2, "jobs list");
		ok(a > b, "newest first (%lld > %lld)", (long long)a, (long long)b);
		check_job_shape(json_array_get(arr, 0), false, "listed job");
	}
	json_decref(l);
	l = kiln_db_jobs_list(db, "web", "failed", 10, &err);
	ok(json_array_size(json_object_get(l, "jobs")) == 1, "filter project+state");
	json_decref(l);
	l = kiln_db_jobs_list(db, NULL, "running", 10, &err);
	{
		json_t *arr = json_object_get(l, "jobs"), *e;
		size_t i;
		int all = 1, found = 0;

		json_array_foreach(arr, i, e)
		{
			all &= strcmp(json_string_value(json_object_get(e, "state")), "running") ==
			       0;
			found |= json_integer_value(json_object_get(e, "id")) == claimed;
		}
		ok(json_array_size(arr) >= 1 && all && found, "filter state: only running jobs");
	}
	json_decref(l);
	l = kiln_db_jobs_list(db, "web", NULL, 1, &err);
	ok(json_array_size(json_object_get(l, "jobs")) == 1, "limit 1");
	json_decref(l);
	l = kiln_db_jobs_list(db, "x' OR '1'='1", NULL, 10, &err);
	ok(l != NULL && json_array_size(json_object_get(l, "jobs")) == 0,
	   "quote in a filter is just a value");
	json_decref(l);
	l = kiln_db_jobs_list(db, NULL, "bogus", 10, &err);
	ok(l == NULL && err && err->code == EINVAL, "unknown state filter: EINVAL");
	kiln_error_free(&err);

	/* Insert refusals. */
	{
		struct kiln_job_new bad = {.project = "web",
					   .spec_text = "x",
					   .spec_json = "[1]",
					   .spec_sha256 = SHA_A,
					   .source_sha256 = SHA_B};
		int64_t jid;

		ok(kiln_db_job_insert(db, &bad, &jid, &err) < 0 && err && err->code == EINVAL,
		   "spec_json not an object: EINVAL");
		kiln_error_free(&err);
		bad.spec_json = "{}";
		bad.source_sha256 = "../../etc/passwd";
		ok(kiln_db_job_insert(db, &bad, &jid, &err) < 0 && err && err->code == EINVAL,
		   "bad digest: EINVAL");
		kiln_error_free(&err);
	}
	/* The per-project queue cap: counted and inserted in one statement. */
	{
		struct kiln_job_new cj = {.project = "capped",
					  .spec_text = "x",
					  .spec_json = "{}",
					  .spec_sha256 = SHA_A,
					  .source_sha256 = SHA_B,
					  .max_queued = 2};
		int64_t jid = 0;
		int refused;

		ok(kiln_db_project_create(db, "capped", &err) == 0, "project capped");
		kiln_error_free(&err);
		ok(kiln_db_job_insert(db, &cj, &jid, &err) == 0 &&
			   kiln_db_job_insert(db, &cj, &jid, &err) == 0,
		   "two jobs queue under max_queued 2");
		kiln_error_free(&err);
		refused = kiln_db_job_insert(db, &cj, &jid, &err) < 0 && err && err->code == EAGAIN;
		ok(refused, "the third: EAGAIN (%s)", err ? err->msg : "accepted");
		kiln_error_free(&err);
		ok(kiln_db_jobs_queued(db, "capped", &err) == 2, "two queued, nothing inserted");
		cj.max_queued = 0;
		ok(kiln_db_job_insert(db, &cj, &jid, &err) == 0, "max_queued 0: no cap");
		kiln_error_free(&err);
	}
}

/* Every cell of the table, through the database: put a job in each state,
 * send each event, compare with kiln_job_next() and with what is stored. */
static int64_t job_in_state(struct kiln_db *db, enum kiln_job_state s)
{
	static const enum kiln_job_event from_running[KILN_JOB__NSTATES] = {
		[KILN_JOB_QUEUED] = KILN_EV_RETRY,     [KILN_JOB_SUCCEEDED] = KILN_EV_SUCCEED,
		[KILN_JOB_FAILED] = KILN_EV_FAIL,      [KILN_JOB_TIMED_OUT] = KILN_EV_TIMEOUT,
		[KILN_JOB_CANCELLED] = KILN_EV_CANCEL, [KILN_JOB_INTERRUPTED] = KILN_EV_CRASH,
	};
	struct kiln_error *err = NULL;
	int64_t id = new_job(db, "web", false);
	int r = 0;

	if (s == KILN_JOB_QUEUED)
		return id;
	if (s == KILN_JOB_REJECTED)
		r = kiln_db_job_event(db, id, KILN_EV_REJECT, NULL, &err);
	else
		r = kiln_db_job_event(db, id, KILN_EV_START, NULL, &err);
	if (r == 0 && s != KILN_JOB_RUNNING && s != KILN_JOB_REJECTED)
		r = kiln_db_job_event(db, id, from_running[s], NULL, &err);
	kiln_error_free(&err);
	return r == 0 ? id : -1;
}

static void test_event_table(struct kiln_db *db)
{
	int s, ev, mismatches = 0, cells = 0;

	for (s = 0; s < KILN_JOB__NSTATES; s++) {
		for (ev = 0; ev < KILN_EV__NEVENTS; ev++) {
			struct kiln_error *err = NULL;
			enum kiln_job_state ns = (enum kiln_job_state) - 1;
			int64_t id = job_in_state(db, (enum kiln_job_state)s);
			int want = kiln_job_next((enum kiln_job_state)s, (enum kiln_job_event)ev);
			const char *before = state_of(db, id);
			int r = kiln_db_job_event(db, id, (enum kiln_job_event)ev, &ns, &err);
			const char *after = state_of(db, id);
			int good;

			if (want < 0)
				good = r < 0 && err && err->code == EALREADY &&
				       strcmp(before, after) == 0 &&
				       strcmp(before,
					      kiln_job_state_name((enum kiln_job_state)s)) == 0;
			else
				good = r == 0 && (int)ns == want &&
				       strcmp(after,
					      kiln_job_state_name((enum kiln_job_state)want)) == 0;
			if (!good) {
				mismatches++;
				printf("#   %s + %s: r=%d before=%s after=%s err=%s\n",
				       kiln_job_state_name((enum kiln_job_state)s),
				       kiln_job_event_name((enum kiln_job_event)ev), r, before,
				       after, err ? err->msg : "");
			}
			cells++;
			kiln_error_free(&err);
		}
	}
	is_int(cells, 64, "64 cells through the database");
	is_int(mismatches, 0, "every cell: allowed ones applied, refused ones EALREADY, no change");

	{
		struct kiln_error *err = NULL;

		ok(kiln_db_job_event(db, 424242, KILN_EV_START, NULL, &err) < 0 && err &&
			   err->code == ENOENT,
		   "event on an unknown job: ENOENT");
		kiln_error_free(&err);
	}
}

static void test_timestamps(struct kiln_db *db)
{
	struct kiln_error *err = NULL;
	int64_t id = new_job(db, "web", true);
	json_t *j;

	kiln_db_job_event(db, id, KILN_EV_START, NULL, &err);
	j = kiln_db_job_get(db, id, &err);
	ok(is_rfc3339(json_object_get(j, "started_at")), "START sets started_at");
	ok(json_is_null(json_object_get(j, "finished_at")), "not finished");
	json_decref(j);
	kiln_db_job_event(db, id, KILN_EV_RETRY, NULL, &err);
	j = kiln_db_job_get(db, id, &err);
	ok(json_is_null(json_object_get(j, "started_at")), "RETRY clears started_at");
	json_decref(j);
	kiln_db_job_event(db, id, KILN_EV_CANCEL, NULL, &err);
	j = kiln_db_job_get(db, id, &err);
	ok(is_rfc3339(json_object_get(j, "finished_at")), "a final state sets finished_at");
	json_decref(j);
	kiln_error_free(&err);
}

static void test_cancel_work(struct kiln_db *db)
{
	struct kiln_error *err = NULL;
	struct kiln_job_work w;
	int64_t q = new_job(db, "web", false), r = new_job(db, "web", false);

	kiln_db_job_event(db, r, KILN_EV_START, NULL, &err);
	ok(!kiln_db_job_cancel_requested(db, r), "no cancel requested yet");
	ok(kiln_db_job_request_cancel(db, q, &err) == 0, "cancel a queued job");
	kiln_error_free(&err);
	is_str(state_of(db, q), "cancelled", "a queued job is cancelled at once");
	ok(kiln_db_job_request_cancel(db, r, &err) == 0, "cancel a running job");
	kiln_error_free(&err);
	is_str(state_of(db, r), "running", "a running job keeps running");
	ok(kiln_db_job_cancel_requested(db, r), "until the worker sees the flag");
	ok(kiln_db_job_request_cancel(db, q, &err) < 0 && err && err->code == EALREADY,
	   "cancel a finished job: EALREADY");
	kiln_error_free(&err);
	ok(kiln_db_job_request_cancel(db, 777777, &err) < 0 && err && err->code == ENOENT,
	   "cancel unknown: ENOENT");
	kiln_error_free(&err);
	ok(!kiln_db_job_cancel_requested(db, 777777), "unknown job: no flag");

	ok(kiln_db_job_work(db, r, &w, &err) == 0, "job_work");
	kiln_error_free(&err);
	is_int(w.id, r, "work id");
	is_str(w.project, "web", "work project");
	is_str(w.spec_text, "image: debian\nrun: make\n", "work spec_text");
	is_str(w.source_sha256, SHA_B, "work source_sha256");
	is_int(w.state, KILN_JOB_RUNNING, "work state");
	ok(w.cancel_requested, "work cancel_requested");
	kiln_db_job_work_free(&w);
	ok(w.project == NULL, "work_free clears");
	ok(kiln_db_job_work(db, 777777, &w, &err) < 0 && err && err->code == ENOENT,
	   "work of unknown job: ENOENT");
	kiln_error_free(&err);
	kiln_db_job_event(db, r, KILN_EV_CANCEL, NULL, &err);
	kiln_error_free(&err);
}

/* Egress records: stored in one go, listed per job, and the project's
 * destinations grouped and bounded for egress suggest. */
static void test_egress_records(struct kiln_db *db)
{
	struct kiln_error *err = NULL;
	int64_t id = new_job(db, "web", false);
	json_t *a = json_pack(
		"[{s:I,s:s,s:s,s:s,s:i,s:b,s:n,s:I,s:I,s:I},"
		"{s:I,s:s,s:s,s:s,s:i,s:b,s:s,s:I,s:I,s:I},"
		"{s:I,s:s,s:s,s:s,s:i,s:b,s:s,s:I,s:I,s:I}]",
		"at", (json_int_t)1, "kind", "connect", "host", "b.example", "addr", "203.0.113.2",
		"port", 443, "allowed", 1, "reason", "bytes_up", (json_int_t)10, "bytes_down",
		(json_int_t)20, "duration_ms", (json_int_t)5, "at", (json_int_t)2, "kind", "http",
		"host", "a.example", "addr", "", "port", 80, "allowed", 0, "reason", "no",
		"bytes_up", (json_int_t)0, "bytes_down", (json_int_t)0, "duration_ms",
		(json_int_t)1, "at", (json_int_t)3, "kind", "dns", "host", "c.example", "addr",
		"8.8.8.8", "port", 53, "allowed", 0, "reason", "dns", "bytes_up", (json_int_t)0,
		"bytes_down", (json_int_t)0, "duration_ms", (json_int_t)0);
	json_t *l, *d;

	ok(a != NULL && kiln_db_egress_add(db, id, "web", a, &err) == 0, "egress records stored");
	kiln_error_free(&err);
	l = kiln_db_egress_list(db, id, &err);
	ok(json_array_size(json_object_get(l, "attempts")) == 3, "all three listed for the job");
	json_decref(l);
	d = kiln_db_egress_destinations(db, "web", 10, &err);
	ok(json_array_size(json_object_get(d, "destinations")) == 2,
	   "destinations: proxy requests only, not the DNS query");
	json_decref(d);
	d = kiln_db_egress_destinations(db, "web", 1, &err);
	ok(json_array_size(json_object_get(d, "destinations")) == 1 &&
		   strcmp(json_string_value(json_object_get(
				  json_array_get(json_object_get(d, "destinations"), 0), "host")),
			  "a.example") == 0,
	   "destinations: at most the limit, in host order");
	json_decref(d);
	json_decref(a);
	kiln_error_free(&err);
}

static void test_artifacts(struct kiln_db *db)
{
	struct kiln_error *err = NULL;
	int64_t id = new_job(db, "web", false);
	char proj[64];
	json_t *l, *a;

	kiln_db_project_create(db, "other", &err);
	kiln_error_free(&err);
	ok(kiln_db_artifact_add(db, id, "out/app.tar", 1234, SHA_A, &err) == 0, "add artifact");
	kiln_error_free(&err);
	ok(kiln_db_artifact_add(db, id, "out/app.tar", 1, SHA_B, &err) < 0 && err &&
		   err->code == EEXIST,
	   "same name twice: EEXIST");
	kiln_error_free(&err);
	ok(kiln_db_artifact_add(db, 888888, "x", 1, SHA_A, &err) < 0 && err && err->code == ENOENT,
	   "unknown job: ENOENT");
	kiln_error_free(&err);
	ok(kiln_db_artifact_add(db, id, "y", 1, "ABC", &err) < 0 && err && err->code == EINVAL,
	   "bad digest: EINVAL");
	kiln_error_free(&err);
	l = kiln_db_artifacts_list(db, id, &err);
	a = json_array_get(json_object_get(l, "artifacts"), 0);
	ok(json_array_size(json_object_get(l, "artifacts")) == 1, "one artifact");
	is_str(json_string_value(json_object_get(a, "name")), "out/app.tar", "name");
	ok(json_is_integer(json_object_get(a, "size")) &&
		   json_integer_value(json_object_get(a, "size")) == 1234,
	   "size integer");
	is_str(json_string_value(json_object_get(a, "sha256")), SHA_A, "sha256");
	is_int(json_object_size(a), 3, "name, size, sha256");
	json_decref(l);
	ok(kiln_db_project_owns_blob(db, "web", SHA_A), "web owns the blob");
	ok(!kiln_db_project_owns_blob(db, "other", SHA_A), "other does not");
	ok(!kiln_db_project_owns_blob(db, "web", SHA_B), "not a blob of web's artifacts");
	ok(!kiln_db_project_owns_blob(db, "", SHA_A), "empty project owns nothing");
	ok(!kiln_db_project_owns_blob(db, "web", "../x"), "bad digest owns nothing");
	ok(kiln_db_job_project(db, id, proj, sizeof(proj)) == 0, "job_project");
	is_str(proj, "web", "job_project = web");
	ok(kiln_db_job_project(db, 888888, proj, sizeof(proj)) < 0 && proj[0] == '\0',
	   "job_project unknown: \"\"");
}

/* ---- recovery -------------------------------------------------------- */

/* The claim skips a project at its cap of running jobs (policy
 * concurrency), and takes the next project's job instead. */
static unsigned cap_web_1(void *ctx, const char *project)
{
	(void)ctx;
	return strcmp(project, "web") == 0 ? 1 : 0;
}

static void test_claim_capped(void)
{
	char p[192];
	struct kiln_db *db;
	struct kiln_error *err = NULL;
	int64_t w1, w2, a1, got = 0;

	snprintf(p, sizeof(p), "%s/capped.db", root);
	db = open_db(p);
	if (db == NULL)
		return;
	kiln_db_project_create(db, "web", &err);
	kiln_db_project_create(db, "api", &err);
	w1 = new_job(db, "web", false);
	w2 = new_job(db, "web", false);
	a1 = new_job(db, "api", false);
	is_int(kiln_db_job_claim_capped(db, "w", cap_web_1, NULL, &got, &err), 1, "claim 1");
	is_int(got, w1, "the oldest job (web) first");
	is_int(kiln_db_job_claim_capped(db, "w", cap_web_1, NULL, &got, &err), 1, "claim 2");
	is_int(got, a1, "web is at its cap of 1: api's job comes next");
	is_int(kiln_db_job_claim_capped(db, "w", cap_web_1, NULL, &got, &err), 0,
	       "nothing claimable while web's first job runs");
	kiln_db_job_event(db, w1, KILN_EV_SUCCEED, NULL, &err);
	is_int(kiln_db_job_claim_capped(db, "w", cap_web_1, NULL, &got, &err), 1,
	       "web's job finished: claim 3");
	is_int(got, w2, "web's second job");
	kiln_error_free(&err);
	kiln_db_close(db);
}

static void test_recover(void)
{
	char p[192];
	struct kiln_db *db;
	struct kiln_error *err = NULL;
	int64_t a, b, c, d, e, got;
	json_t *j;
	int n;

	snprintf(p, sizeof(p), "%s/recover.db", root);
	db = open_db(p);
	kiln_db_project_create(db, "web", &err);
	/* C: retry-safe, already ran twice. */
	c = new_job(db, "web", true);
	kiln_db_job_claim(db, "w", &got, &err);
	kiln_db_job_event(db, c, KILN_EV_RETRY, NULL, &err);
	kiln_db_job_claim(db, "w", &got, &err);
	is_int(got, c, "C claimed again");
	/* A: retry-safe, ran once. B: not retry-safe. */
	a = new_job(db, "web", true);
	kiln_db_job_claim(db, "w", &got, &err);
	b = new_job(db, "web", false);
	kiln_db_job_claim(db, "w", &got, &err);
	/* D: still queued. E: finished. */
	d = new_job(db, "web", true);
	e = new_job(db, "web", true);
	kiln_db_job_event(db, e, KILN_EV_START, NULL, &err);
	kiln_db_job_event(db, e, KILN_EV_SUCCEED, NULL, &err);
	kiln_error_free(&err);
	kiln_db_close(db);

	/* "Restart". */
	db = open_db(p);
	n = kiln_db_jobs_recover(db, 2, &err);
	kiln_error_free(&err);
	is_int(n, 3, "three running jobs recovered");
	is_str(state_of(db, a), "queued", "retry-safe, 1 attempt of 2: queued again");
	is_str(state_of(db, b), "interrupted", "not retry-safe: interrupted");
	is_str(state_of(db, c), "interrupted", "retry-safe but 2 attempts of 2: interrupted");
	is_str(state_of(db, d), "queued", "queued job untouched");
	is_str(state_of(db, e), "succeeded", "finished job untouched");
	j = kiln_db_job_get(db, b, &err);
	ok(is_rfc3339(json_object_get(j, "finished_at")), "interrupted job has finished_at");
	ok(json_is_string(json_object_get(j, "error")), "and says why: %s",
	   json_string_value(json_object_get(j, "error")));
	json_decref(j);
	j = kiln_db_job_get(db, a, &err);
	ok(json_is_null(json_object_get(j, "error")), "requeued job has no error");
	json_decref(j);
	is_int(kiln_db_jobs_recover(db, 2, &err), 0, "recovering again changes nothing");
	/* The requeued job runs again, once more. */
	ok(kiln_db_job_claim(db, "w", &got, &err) == 1 && got == a, "requeued job claimed first");
	is_int(kiln_db_jobs_recover(db, 2, &err), 1, "crash during its second attempt");
	is_str(state_of(db, a), "interrupted", "then it is interrupted, never a third run");
	kiln_error_free(&err);
	kiln_db_close(db);
}

/* ---- concurrency ----------------------------------------------------- */

#define CLAIM_JOBS 300

struct claimer {
	pthread_barrier_t *go;
	const char *path;
	const char *name;
	int64_t ids[CLAIM_JOBS];
	int n, errors;
};

static void *claim_loop(void *arg)
{
	struct claimer *c = arg;
	struct kiln_db *db = open_db(c->path);
	struct kiln_error *err = NULL;
	int64_t id;
	int r;

	pthread_barrier_wait(c->go);
	if (db == NULL) {
		c->errors++;
		return NULL;
	}
	while ((r = kiln_db_job_claim(db, c->name, &id, &err)) != 0) {
		if (r < 0) {
			printf("# claim: %s\n", err->msg);
			kiln_error_free(&err);
			c->errors++;
			if (c->errors > 5)
				break;
			continue;
		}
		if (c->n < CLAIM_JOBS)
			c->ids[c->n++] = id;
		/* A worker does something with its job before the next claim;
		 * without a pause SQLite's busy handler lets one thread take all. */
		usleep(200);
	}
	kiln_db_close(db);
	return NULL;
}

static void test_concurrent_claims(void)
{
	static struct claimer cl[2];
	char p[192];
	struct kiln_db *db;
	struct kiln_error *err = NULL;
	int64_t first = 0, id;
	pthread_barrier_t go;
	pthread_t th[2];
	int i, k, dup = 0, missing = 0, seen[CLAIM_JOBS] = {0};

	snprintf(p, sizeof(p), "%s/claims.db", root);
	db = open_db(p);
	kiln_db_project_create(db, "web", &err);
	kiln_error_free(&err);
	kiln_db_close(db);
	for (i = 0; i < 2; i++) {
		memset(&cl[i], 0, sizeof(cl[i]));
		cl[i].path = p;
		cl[i].go = &go;
		cl[i].name = i ? "worker-b" : "worker-a";
	}
	db = open_db(p);
	for (i = 0; i < CLAIM_JOBS; i++) {
		id = new_job(db, "web", false);
		if (i == 0)
			first = id;
	}
	/* Both open their connection, then start claiming at the same time. */
	pthread_barrier_init(&go, NULL, 2);
	for (i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, claim_loop, &cl[i]);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (i = 0; i < 2; i++)
		for (k = 0; k < cl[i].n; k++) {
			int64_t off = cl[i].ids[k] - first;

			if (off < 0 || off >= CLAIM_JOBS || seen[off]++)
				dup++;
		}
	for (i = 0; i < CLAIM_JOBS; i++)
		missing += seen[i] != 1;
	is_int(cl[0].errors + cl[1].errors, 0, "no claim failed");
	is_int(dup, 0, "no job was claimed twice");
	is_int(missing, 0, "every job was claimed");
	ok(cl[0].n > 0 && cl[1].n > 0, "both threads claimed jobs (the claims overlapped)");
	is_int(cl[0].n + cl[1].n, CLAIM_JOBS, "%d claims in all (%d + %d)", CLAIM_JOBS, cl[0].n,
	       cl[1].n);
	is_int(raw_int(p, "SELECT count(*) FROM jobs WHERE state = 'running' AND attempts = 1 AND"
			  " worker IN ('worker-a', 'worker-b') AND started_at IS NOT NULL"),
	       CLAIM_JOBS, "all running, one attempt each, worker recorded");
	is_int(kiln_db_job_claim(db, "w", &id, &err), 0, "empty queue: claim returns 0");
	kiln_db_close(db);
}

/* ---- crash ----------------------------------------------------------- */

static void child_insert_loop(const char *path, int wfd)
{
	struct kiln_db *db = open_db(path);

	if (db == NULL)
		_exit(1);
	for (;;) {
		int64_t id = new_job(db, "web", false);

		if (id <= 0)
			_exit(2);
		/* Reported only after kiln_db_job_insert() returned: committed. */
		if (write(wfd, &id, sizeof(id)) != (ssize_t)sizeof(id))
			_exit(3);
	}
}

static void test_kill9(void)
{
	char p[192];
	struct kiln_db *db;
	struct kiln_error *err = NULL;
	int fds[2], status = 0, i, absent = 0;
	int64_t *ids = NULL, id;
	size_t n = 0, cap = 0;
	pid_t pid;

	snprintf(p, sizeof(p), "%s/kill9.db", root);
	db = open_db(p);
	kiln_db_project_create(db, "web", &err);
	kiln_error_free(&err);
	kiln_db_close(db);

	for (i = 0; i < 3; i++) {
		if (pipe2(fds, O_CLOEXEC) < 0) {
			ok(0, "pipe");
			return;
		}
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			child_insert_loop(p, fds[1]);
		}
		close(fds[1]);
		/* Let it commit 20 more jobs, then kill it wherever it is (it
		 * keeps inserting while we read). */
		for (;;) {
			if (n == cap)
				ids = realloc(ids, (cap = cap ? 2 * cap : 256) * sizeof(*ids));
			if (read(fds[0], &ids[n], sizeof(id)) != (ssize_t)sizeof(id))
				break;
			if (++n >= (size_t)(20 * (i + 1)))
				break;
		}
		/* A little more, a different time each round. */
		usleep((useconds_t)(1000 * (1 + 7 * i)));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		   "writer %d killed by SIGKILL", i);
		/* Everything still in the pipe was acknowledged before the kill. */
		for (;;) {
			if (n == cap)
				ids = realloc(ids, (cap *= 2) * sizeof(*ids));
			if (read(fds[0], &ids[n], sizeof(id)) != (ssize_t)sizeof(id))
				break;
			n++;
		}
		close(fds[0]);
	}
	ok(n >= 60, "%zu jobs acknowledged", n);

	db = open_db(p);
	ok(db != NULL, "reopen after SIGKILL");
	if (db == NULL) {
		free(ids);
		return;
	}
	ok(kiln_db_integrity_check(db, &err) == 0, "integrity check passes: %s",
	   err ? err->msg : "ok");
	kiln_error_free(&err);
	for (size_t k = 0; k < n; k++) {
		json_t *j = kiln_db_job_get(db, ids[k], &err);

		if (j == NULL ||
		    strcmp(json_string_value(json_object_get(j, "state")), "queued") != 0)
			absent++;
		json_decref(j);
		kiln_error_free(&err);
	}
	is_int(absent, 0, "every acknowledged job is there, queued");
	kiln_db_close(db);
	free(ids);
}

/* A new database is created private (0600); an existing one is opened by
 * SQLite alone (kiln_db_open never opens and closes a descriptor of it,
 * which would drop the POSIX locks of the process's other handles); a
 * symlink in place of the database is refused. */
static void test_open_locks(void)
{
	char lpath[160], link[160];
	struct kiln_db *a = NULL, *b = NULL;
	struct kiln_error *err = NULL;
	struct stat st;

	snprintf(lpath, sizeof(lpath), "%s/locks.db", root);
	snprintf(link, sizeof(link), "%s/link.db", root);
	ok(kiln_db_open(lpath, &a, &err) == 0, "open a new database");
	kiln_error_free(&err);
	ok(stat(lpath, &st) == 0 && (st.st_mode & 0777) == 0600, "created with mode 0600");
	ok(kiln_db_open(lpath, &b, &err) == 0, "open it again in the same process");
	kiln_error_free(&err);
	kiln_db_close(b);
	kiln_db_close(a);
	ok(symlink(lpath, link) == 0, "symlink to it");
	b = NULL;
	ok(kiln_db_open(link, &b, &err) < 0, "a database path that is a symlink is refused (%s)",
	   err ? err->msg : "opened");
	kiln_error_free(&err);
	kiln_db_close(b);
}

/* Signed submissions: a nonce makes one job, a replay none; the signer
 * and the provenance are recorded. */
static void test_signed(struct kiln_db *db)
{
	struct kiln_job_new j = {
		.project = "web",
		.spec_text = "script: x\n",
		.spec_json = "{}",
		.spec_sha256 = SHA_A,
		.source_sha256 = SHA_B,
		.source_bytes = 1,
		.submitted_by = "0123456789ab",
		.signer_key = "BB7FEAC0643140FF",
		.nonce = "00112233445566778899aabbccddeeff",
	};
	struct kiln_error *err = NULL;
	struct kiln_job_facts f;
	int64_t id = 0, id2 = 0, before;
	char *env;

	ok(kiln_db_nonce_used(db, j.nonce, &err) == 0, "a fresh nonce is unused");
	ok(kiln_db_job_insert(db, &j, &id, &err) == 0 && id > 0, "a signed job is recorded");
	kiln_error_free(&err);
	ok(kiln_db_nonce_used(db, j.nonce, &err) == 1, "its nonce is used");
	before = raw_int(dbpath, "SELECT count(*) FROM jobs");
	ok(kiln_db_job_insert(db, &j, &id2, &err) < 0 && err && err->code == EEXIST,
	   "the same nonce again: EEXIST");
	kiln_error_free(&err);
	is_int(raw_int(dbpath, "SELECT count(*) FROM jobs"), before, "... and no job was stored");
	ok(kiln_db_job_facts(db, id, &f, &err) == 0 && f.signer_key &&
		   strcmp(f.signer_key, "BB7FEAC0643140FF") == 0,
	   "the signer's key id is recorded with the job");
	kiln_db_job_facts_free(&f);
	kiln_error_free(&err);
	ok(kiln_db_rejection_add(db, "web", "0123456789ab", "bad_signature", NULL, "no", &err) == 0,
	   "a refusal is recorded");
	is_int(raw_int(dbpath, "SELECT count(*) FROM submission_rejections"), 1, "one refusal");
	ok(kiln_db_provenance_get(db, id, &err) == NULL && err && err->code == ENOENT,
	   "no provenance yet: ENOENT");
	kiln_error_free(&err);
	ok(kiln_db_provenance_put(db, id, "{\"payload\":\"\"}", &err) == 0, "provenance stored");
	env = kiln_db_provenance_get(db, id, &err);
	is_str(env, "{\"payload\":\"\"}", "provenance read back");
	free(env);
	kiln_error_free(&err);
}

int main(void)
{
	struct kiln_db *db;

	signal(SIGPIPE, SIG_IGN);
	snprintf(root, sizeof(root), "/tmp/kiln-test-db.XXXXXX");
	if (mkdtemp(root) == NULL)
		tap_skip_all("mkdtemp failed");
	snprintf(dbpath, sizeof(dbpath), "%s/kiln.db", root);

	test_migrations();
	test_scopes();
	db = open_db(dbpath);
	if (db != NULL) {
		test_projects(db);
		test_tokens(db);
		test_job_json(db);
		test_event_table(db);
		test_timestamps(db);
		test_cancel_work(db);
		test_artifacts(db);
		test_egress_records(db);
		test_signed(db);
		kiln_db_close(db);
	} else {
		ok(0, "open %s", dbpath);
	}
	test_claim_capped();
	test_open_locks();
	test_recover();
	test_concurrent_claims();
	test_kill9();
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
