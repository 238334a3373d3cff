/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite store.
 *
 * Durability: WAL with synchronous=FULL syncs the log at every commit, so
 * a job is on disk (and survives power loss) when kiln_db_job_insert()
 * returns. Every read-modify-write runs in a BEGIN IMMEDIATE transaction:
 * it takes the write lock up front, so two connections can never both read
 * "queued" and both start the job, and SQLite's busy timeout (not an
 * immediate SQLITE_BUSY_SNAPSHOT) is what makes a second writer wait.
 *
 * Every value reaches SQL as a bound parameter; the SQL texts are constant
 * strings (the few listing variants are chosen, never built).
 *
 * Times are stored as unix seconds (INTEGER, NULL = none) and given out as
 * RFC 3339 UTC strings.
 */
#include "store/db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "store/cas.h"

#define BUSY_TIMEOUT_MS	    5000
#define DESCRIPTION_MAX	    1024
#define ARTIFACT_NAME_MAX   4096
#define JOBS_LIMIT_DEFAULT  50
#define JOBS_LIMIT_MAX	    500
#define INTERRUPTED_MESSAGE "kilnd stopped while the job was running"

struct kiln_db {
	sqlite3 *h;
	char *path;
};

static inline void stmt_freep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st); /* NULL is a no-op */
}
#define cleanup_stmt __attribute__((cleanup(stmt_freep)))

/* ---- schema ---------------------------------------------------------- */

/*
 * Forward-only migrations: migrations[i] takes the schema from version i to
 * i+1 and ends by setting user_version to i+1. Never edit a released entry;
 * append a new one. All pending entries run in one transaction at open.
 */
static const char *const migrations[] = {
	/* 1: projects, tokens, jobs, artifacts */
	"CREATE TABLE projects ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE TABLE tokens ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  hash BLOB NOT NULL CHECK (length(hash) = 32),"
	"  project TEXT REFERENCES projects(name),"
	"  scopes TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER,"
	"  revoked_at INTEGER,"
	"  description TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  project TEXT NOT NULL REFERENCES projects(name),"
	"  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed',"
	"    'timed_out', 'cancelled', 'rejected', 'interrupted')),"
	"  spec_text TEXT NOT NULL,"
	"  spec_json TEXT NOT NULL,"
	"  spec_sha256 TEXT NOT NULL,"
	"  source_sha256 TEXT NOT NULL,"
	"  source_bytes INTEGER NOT NULL,"
	"  retry_safe INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  worker TEXT,"
	"  cancel_requested INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  started_at INTEGER,"
	"  finished_at INTEGER,"
	"  exit_code INTEGER,"
	"  reason TEXT,"
	"  report_json TEXT,"
	"  log_bytes INTEGER NOT NULL DEFAULT 0,"
	"  log_truncated INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT,"
	"  submitted_by TEXT"
	");"
	"CREATE INDEX jobs_by_state ON jobs(state, id);"
	"CREATE INDEX jobs_by_project ON jobs(project, id);"
	"CREATE INDEX jobs_by_project_state ON jobs(project, state, id);"
	"CREATE TABLE artifacts ("
	"  job_id INTEGER NOT NULL REFERENCES jobs(id),"
	"  name TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  PRIMARY KEY (job_id, name)"
	");"
	"CREATE INDEX artifacts_by_sha256 ON artifacts(sha256);"
	"PRAGMA user_version = 1;",
	/* 2: policies and secrets (docs/policy.md): the digest of the policy a
	 * job ran under, the encrypted secret store (one row per project and
	 * name, the latest version), a key-check value that tells a wrong
	 * master key, and the grants each job received (never a value). */
	"ALTER TABLE jobs ADD COLUMN policy_digest TEXT;"
	"CREATE TABLE secrets ("
	"  project TEXT NOT NULL REFERENCES projects(name),"
	"  name TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  nonce BLOB NOT NULL,"
	"  value BLOB NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (project, name)"
	");"
	"CREATE TABLE secrets_key_check ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  nonce BLOB NOT NULL,"
	"  value BLOB NOT NULL"
	");"
	"CREATE TABLE job_secrets ("
	"  job_id INTEGER NOT NULL REFERENCES jobs(id),"
	"  name TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  PRIMARY KEY (job_id, name)"
	");"
	"PRAGMA user_version = 2;",
	/* 3: egress attempts (docs/egress.md): every connection a job's build
	 * asked kilnd's proxy for, and every packet that bypassed it. */
	"CREATE TABLE egress ("
	"  id INTEGER PRIMARY KEY,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id),"
	"  project TEXT NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  host TEXT NOT NULL,"
	"  addr TEXT NOT NULL,"
	"  port INTEGER NOT NULL,"
	"  allowed INTEGER NOT NULL,"
	"  reason TEXT,"
	"  bytes_up INTEGER NOT NULL,"
	"  bytes_down INTEGER NOT NULL,"
	"  duration_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX egress_by_job ON egress(job_id, id);"
	"CREATE INDEX egress_by_project ON egress(project, kind, host, port);"
	"PRAGMA user_version = 3;",
	/* 4: signed submissions (signer, used nonces, refusals) and provenance */
	"ALTER TABLE jobs ADD COLUMN signer_key TEXT;"
	"CREATE TABLE submission_nonces ("
	"  nonce TEXT PRIMARY KEY NOT NULL,"
	"  project TEXT NOT NULL,"
	"  key_id TEXT NOT NULL,"
	"  job_id INTEGER REFERENCES jobs(id),"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE TABLE submission_rejections ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  project TEXT NOT NULL,"
	"  token_id TEXT,"
	"  code TEXT NOT NULL,"
	"  key_id TEXT,"
	"  message TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE TABLE provenance ("
	"  job_id INTEGER PRIMARY KEY NOT NULL REFERENCES jobs(id),"
	"  envelope TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL"
	");"
	"PRAGMA user_version = 4;",
	/* 5: anomaly baselines and alerts (src/server/alerts.c, docs/alerts.md).
	 * Running mean and M2 (Welford) per project and measurement; what a
	 * project has been seen doing (denied syscalls, egress destinations);
	 * the alerts raised. */
	"CREATE TABLE baselines ("
	"  project TEXT NOT NULL REFERENCES projects(name),"
	"  metric TEXT NOT NULL,"
	"  n INTEGER NOT NULL,"
	"  mean REAL NOT NULL,"
	"  m2 REAL NOT NULL,"
	"  PRIMARY KEY (project, metric)"
	");"
	"CREATE TABLE baseline_seen ("
	"  project TEXT NOT NULL REFERENCES projects(name),"
	"  kind TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  first_job INTEGER,"
	"  first_seen INTEGER NOT NULL,"
	"  PRIMARY KEY (project, kind, value)"
	");"
	"CREATE TABLE alerts ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  job_id INTEGER REFERENCES jobs(id),"
	"  project TEXT NOT NULL,"
	"  rule TEXT NOT NULL,"
	"  detail TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE INDEX alerts_by_project ON alerts(project, id);"
	"CREATE INDEX alerts_by_job ON alerts(job_id);"
	"PRAGMA user_version = 5;",
	/* 6: the audit log (src/store/auditlog.c): entries, the Merkle tree's
	 * complete subtrees, signed checkpoints; append-only, enforced by
	 * triggers as a second line behind the code that only inserts. */
	"CREATE TABLE audit_entries ("
	"  idx INTEGER PRIMARY KEY NOT NULL,"
	"  entry BLOB NOT NULL"
	");"
	"CREATE TABLE audit_hashes ("
	"  level INTEGER NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  hash BLOB NOT NULL,"
	"  PRIMARY KEY (level, idx)"
	") WITHOUT ROWID;"
	"CREATE TABLE audit_checkpoints ("
	"  size INTEGER PRIMARY KEY NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  note TEXT NOT NULL"
	");"
	"CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TRIGGER audit_hashes_no_update BEFORE UPDATE ON audit_hashes"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TRIGGER audit_hashes_no_delete BEFORE DELETE ON audit_hashes"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"PRAGMA user_version = 6;",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- errors ---------------------------------------------------------- */

static int rc_errno(sqlite3 *h, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return EBUSY;
	case SQLITE_NOMEM: return ENOMEM;
	case SQLITE_READONLY: return EROFS;
	case SQLITE_FULL: return ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return EBADMSG;
	case SQLITE_TOOBIG: return E2BIG;
	case SQLITE_CONSTRAINT: return EINVAL;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
	case SQLITE_PERM: {
		int e = h != NULL ? sqlite3_system_errno(h) : 0;
		return e != 0 ? e : EIO;
	}
	default: return EIO;
	}
}

/* "database PATH: WHAT: sqlite's message", with code as the errno. */
static int db_fail(struct kiln_db *db, int rc, int code, struct kiln_error **err, const char *fmt,
		   ...) __attribute__((format(printf, 5, 6)));
static int db_fail(struct kiln_db *db, int rc, int code, struct kiln_error **err, const char *fmt,
		   ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (code == 0)
		code = rc_errno(db->h, rc);
	if (rc != SQLITE_OK && db->h != NULL)
		kiln_error_set(err, 0, "database %s: %s: %s", db->path, what,
			       sqlite3_errmsg(db->h));
	else
		kiln_error_set(err, 0, "database %s: %s", db->path, what);
	if (*err != NULL && (*err)->code == 0)
		(*err)->code = code; /* (the static out-of-memory error keeps ENOMEM) */
	return -1;
}

/* ---- statements ------------------------------------------------------ */

/*
 * Bind arguments by type letter:
 *   s  const char *     text (NULL binds NULL)
 *   S  const char *     text, "" and NULL bind NULL
 *   I  int64_t
 *   i  int
 *   b  const void *, int   blob
 */
static int bind_args(sqlite3_stmt *st, const char *types, va_list ap)
{
	int i, rc = SQLITE_OK;

	/* One letter per parameter: a miscounted call fails, never reads a
	 * missing vararg. */
	if ((int)strlen(types) != sqlite3_bind_parameter_count(st))
		return SQLITE_MISUSE;
	for (i = 0; types[i] != '\0' && rc == SQLITE_OK; i++) {
		int idx = i + 1;

		switch (types[i]) {
		case 's':
		case 'S': {
			const char *s = va_arg(ap, const char *);

			if (s == NULL || (types[i] == 'S' && s[0] == '\0'))
				rc = sqlite3_bind_null(st, idx);
			else
				rc = sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
			break;
		}
		case 'I': rc = sqlite3_bind_int64(st, idx, va_arg(ap, int64_t)); break;
		case 'i': rc = sqlite3_bind_int(st, idx, va_arg(ap, int)); break;
		case 'b': {
			const void *p = va_arg(ap, const void *);
			int n = va_arg(ap, int);

			rc = sqlite3_bind_blob(st, idx, p, n, SQLITE_STATIC);
			break;
		}
		default: rc = SQLITE_MISUSE; break;
		}
	}
	return rc;
}

/* Prepare sql and bind the arguments. NULL on error. */
static sqlite3_stmt *query(struct kiln_db *db, struct kiln_error **err, const char *sql,
			   const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int rc;

	rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		db_fail(db, rc, 0, err, "prepare");
		sqlite3_finalize(st);
		return NULL;
	}
	va_start(ap, types);
	rc = bind_args(st, types, ap);
	va_end(ap);
	if (rc != SQLITE_OK) {
		db_fail(db, rc, 0, err, "bind");
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* 1 for a row, 0 when done, -1 on error. */
static int step(struct kiln_db *db, sqlite3_stmt *st, struct kiln_error **err, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(db, rc, 0, err, "%s", what);
}

/* Run a statement that returns no rows. Returns the number of rows changed,
 * -1 on error; *rcp (if set) receives the SQLite result code so that
 * callers can tell constraint violations apart. */
static int run(struct kiln_db *db, struct kiln_error **err, int *rcp, const char *what,
	       const char *sql, const char *types, ...)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	va_list ap;
	int rc;

	if (rcp != NULL)
		*rcp = SQLITE_OK;
	rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		va_start(ap, types);
		rc = bind_args(st, types, ap);
		va_end(ap);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rcp != NULL)
		*rcp = rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		int ext = sqlite3_extended_errcode(db->h);

		if (rcp != NULL)
			*rcp = ext;
		return db_fail(db, rc, 0, err, "%s", what);
	}
	return sqlite3_changes(db->h);
}

static int exec_sql(struct kiln_db *db, const char *sql, const char *what, struct kiln_error **err)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return db_fail(db, rc, 0, err, "%s", what);
	return 0;
}

/* ---- transactions ---------------------------------------------------- */

static int tx_begin(struct kiln_db *db, struct kiln_error **err)
{
	return exec_sql(db, "BEGIN IMMEDIATE", "begin transaction", err);
}

static void tx_rollback(struct kiln_db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

static int tx_commit(struct kiln_db *db, struct kiln_error **err)
{
	if (exec_sql(db, "COMMIT", "commit", err) < 0) {
		tx_rollback(db);
		return -1;
	}
	return 0;
}

/* Roll back and pass the error on; for `return tx_fail(db);` after a
 * failed step inside a transaction. */
static int tx_fail(struct kiln_db *db)
{
	tx_rollback(db);
	return -1;
}

/* ---- values ---------------------------------------------------------- */

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static json_t *json_time(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[64];

	if (gmtime_r(&tt, &tm) == NULL)
		return json_null();
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return json_string(buf);
}

static bool col_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

/* A JSON string from a column (NULL -> null). jansson refuses invalid
 * UTF-8; such bytes become '?' rather than making a field disappear. */
static json_t *col_json_str(sqlite3_stmt *st, int i)
{
	const char *s;
	json_t *j;
	char *copy, *p;

	if (col_null(st, i))
		return json_null();
	s = col_text(st, i);
	j = json_string(s);
	if (j != NULL)
		return j;
	copy = strdup(s);
	if (copy == NULL)
		return json_null();
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j != NULL ? j : json_null();
}

static json_t *col_json_time(sqlite3_stmt *st, int i)
{
	return col_null(st, i) ? json_null() : json_time(sqlite3_column_int64(st, i));
}

static json_t *col_json_int(sqlite3_stmt *st, int i)
{
	return col_null(st, i) ? json_null() : json_integer(sqlite3_column_int64(st, i));
}

/* A JSON text column parsed (NULL or unparsable -> null). */
static json_t *col_json_doc(sqlite3_stmt *st, int i)
{
	json_t *j;

	if (col_null(st, i))
		return json_null();
	j = json_loads(col_text(st, i), JSON_REJECT_DUPLICATES, NULL);
	return j != NULL ? j : json_null();
}

/* Wrap an array as {"key": array}; frees the array on failure. */
static json_t *wrap(const char *key, json_t *arr)
{
	json_t *o = json_object();

	if (o == NULL || json_object_set_new(o, key, arr) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Step st to the end, turning each row into an object with row(), and
 * answer {"key": [...]}. The one loop behind every listing. */
static json_t *list_rows(struct kiln_db *db, sqlite3_stmt *st, const char *key,
			 json_t *(*row)(sqlite3_stmt *st), struct kiln_error **err)
{
	char what[32];
	json_t *arr;
	int r;

	if (st == NULL)
		return NULL;
	snprintf(what, sizeof(what), "list %s", key);
	arr = json_array();
	if (arr == NULL) {
		kiln_error_set(err, ENOMEM, "%s", what);
		return NULL;
	}
	while ((r = step(db, st, err, what)) == 1) {
		json_t *o = row(st);

		if (o == NULL || json_array_append_new(arr, o) < 0)
			r = kiln_error_set(err, ENOMEM, "%s", what);
		if (r < 0)
			break;
	}
	if (r < 0) {
		json_decref(arr);
		return NULL;
	}
	return wrap(key, arr);
}

/* ---- open / close ---------------------------------------------------- */

static int pragma_int(struct kiln_db *db, const char *sql, int *out, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = query(db, err, sql, "");
	int r;

	if (st == NULL)
		return -1;
	r = step(db, st, err, sql);
	if (r < 0)
		return -1;
	*out = r == 1 ? sqlite3_column_int(st, 0) : 0;
	return 0;
}

static int newer_refused(struct kiln_db *db, int version, struct kiln_error **err)
{
	return db_fail(db, SQLITE_OK, EPROTO, err,
		       "schema version %d is newer than this kilnd supports (%d); "
		       "run a kilnd at least as new as the one that last opened it",
		       version, SCHEMA_VERSION);
}

static int migrate(struct kiln_db *db, struct kiln_error **err)
{
	int v, i;

	if (tx_begin(db, err) < 0)
		return -1;
	if (pragma_int(db, "PRAGMA user_version", &v, err) < 0)
		return tx_fail(db);
	if (v > SCHEMA_VERSION) {
		tx_rollback(db);
		return newer_refused(db, v, err);
	}
	for (i = v; i < SCHEMA_VERSION; i++) {
		int now = -1;

		if (exec_sql(db, migrations[i], "migration", err) < 0) {
			kiln_error_prefix(err, "schema version %d to %d", i, i + 1);
			return tx_fail(db);
		}
		if (pragma_int(db, "PRAGMA user_version", &now, err) < 0)
			return tx_fail(db);
		if (now != i + 1) {
			tx_rollback(db);
			return db_fail(db, SQLITE_OK, EPROTO, err,
				       "migration %d left user_version at %d", i + 1, now);
		}
	}
	return tx_commit(db, err);
}

static int configure(struct kiln_db *db, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int v = 0, fk = 0, r;

	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
	/* Refuse what an attacker-supplied or damaged schema could do. */
	sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

	/* Check the version before anything writes to the file. */
	if (pragma_int(db, "PRAGMA user_version", &v, err) < 0)
		return -1;
	if (v > SCHEMA_VERSION)
		return newer_refused(db, v, err);

	st = query(db, err, "PRAGMA journal_mode=WAL", "");
	if (st == NULL)
		return -1;
	r = step(db, st, err, "PRAGMA journal_mode=WAL");
	if (r < 0)
		return -1;
	if (r == 0 || strcmp(col_text(st, 0), "wal") != 0)
		return db_fail(db, SQLITE_OK, ENOTSUP, err,
			       "cannot use write-ahead logging (journal mode is '%s')",
			       r ? col_text(st, 0) : "?");
	if (exec_sql(db, "PRAGMA synchronous=FULL", "PRAGMA synchronous=FULL", err) < 0 ||
	    exec_sql(db, "PRAGMA foreign_keys=ON", "PRAGMA foreign_keys=ON", err) < 0 ||
	    pragma_int(db, "PRAGMA foreign_keys", &fk, err) < 0)
		return -1;
	if (fk != 1)
		return db_fail(db, SQLITE_OK, ENOTSUP, err,
			       "this SQLite does not enforce foreign keys");
	return 0;
}

void kiln_db_close(struct kiln_db *db)
{
	if (db == NULL)
		return;
	sqlite3_close_v2(db->h);
	free(db->path);
	free(db);
}

int kiln_db_open(const char *path, struct kiln_db **out, struct kiln_error **err)
{
	struct kiln_db *db;
	int rc;

	*out = NULL;
	if (!sqlite3_threadsafe())
		return kiln_error_set(err, ENOTSUP, "database %s: SQLite built without threads",
				      path);
	db = calloc(1, sizeof(*db));
	if (db == NULL || (db->path = strdup(path)) == NULL) {
		free(db);
		return kiln_error_set(err, ENOMEM, "database %s", path);
	}
	/* Create the file ourselves so that it (and the -wal/-shm files,
	 * which SQLite gives the same mode) is private from the start. Only
	 * when it does not exist yet: closing a descriptor of a file drops
	 * every POSIX lock this process holds on it, SQLite's included, so an
	 * existing database is never opened here behind SQLite's back. */
	if (strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
			      0600);

		if (fd < 0 && errno != EEXIST) {
			kiln_error_set(err, errno, "database %s: create", path);
			kiln_db_close(db);
			return -1;
		}
		if (fd >= 0)
			close(fd);
	}
	rc = sqlite3_open_v2(path, &db->h,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
				     SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK) {
		db_fail(db, rc, 0, err, "open");
		kiln_db_close(db);
		return -1;
	}
	if (configure(db, err) < 0 || migrate(db, err) < 0) {
		kiln_db_close(db);
		return -1;
	}
	*out = db;
	return 0;
}

int kiln_db_integrity_check(struct kiln_db *db, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = query(db, err, "PRAGMA integrity_check", "");
	cleanup_stmt sqlite3_stmt *fk = NULL;
	int r;

	if (st == NULL)
		return -1;
	r = step(db, st, err, "integrity check");
	if (r < 0)
		return -1;
	if (r == 0 || strcmp(col_text(st, 0), "ok") != 0)
		return db_fail(db, SQLITE_OK, EBADMSG, err, "integrity check failed: %s",
			       r ? col_text(st, 0) : "no answer");
	fk = query(db, err, "PRAGMA foreign_key_check", "");
	if (fk == NULL)
		return -1;
	r = step(db, fk, err, "foreign key check");
	if (r < 0)
		return -1;
	if (r == 1)
		return db_fail(db, SQLITE_OK, EBADMSG, err,
			       "foreign key check failed: table %s row %lld", col_text(fk, 0),
			       (long long)sqlite3_column_int64(fk, 1));
	return 0;
}

int kiln_db_schema_supported(void)
{
	return SCHEMA_VERSION;
}

int kiln_db_schema_version(struct kiln_db *db)
{
	struct kiln_error *err = NULL;
	int v = -1;

	if (pragma_int(db, "PRAGMA user_version", &v, &err) < 0) {
		kiln_error_free(&err);
		return -1;
	}
	return v;
}

/* ---- projects -------------------------------------------------------- */

bool kiln_project_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0' || name[0] == '-')
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];

		if (i >= 63)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

int kiln_db_project_create(struct kiln_db *db, const char *name, struct kiln_error **err)
{
	int rc;

	if (!kiln_project_name_valid(name))
		return kiln_error_set(err, EINVAL,
				      "bad project name (want [a-z0-9][a-z0-9-]{0,62})");
	if (run(db, err, &rc, "create project",
		"INSERT INTO projects (name, created_at) VALUES (?, ?)", "sI", name, now_s()) < 0) {
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
			kiln_error_free(err);
			return kiln_error_set(err, EEXIST, "project %s exists", name);
		}
		return -1;
	}
	return 0;
}

bool kiln_db_project_exists(struct kiln_db *db, const char *name)
{
	struct kiln_error *err = NULL;
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r;

	if (!kiln_project_name_valid(name))
		return false;
	st = query(db, &err, "SELECT 1 FROM projects WHERE name = ?", "s", name);
	r = st != NULL ? step(db, st, &err, "find project") : -1;
	kiln_error_free(&err);
	return r == 1;
}

static json_t *project_row(sqlite3_stmt *st)
{
	return json_pack("{s:o, s:o}", "name", col_json_str(st, 0), "created_at",
			 col_json_time(st, 1));
}

json_t *kiln_db_projects_list(struct kiln_db *db, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		query(db, err, "SELECT name, created_at FROM projects ORDER BY name", "");

	return list_rows(db, st, "projects", project_row, err);
}

/* ---- tokens ---------------------------------------------------------- */

static const char *const scope_names[] = {"submit", "read", "admin"};
#define SCOPES_ALL (KILN_SCOPE_SUBMIT | KILN_SCOPE_READ | KILN_SCOPE_ADMIN)

unsigned kiln_scopes_parse(const char *csv)
{
	unsigned bits = 0;
	const char *p = csv;

	if (csv == NULL || *csv == '\0')
		return 0;
	for (;;) {
		size_t n = strcspn(p, ",");
		unsigned i, found = 0;

		for (i = 0; i < 3; i++)
			if (strlen(scope_names[i]) == n && strncmp(p, scope_names[i], n) == 0)
				found = 1u << i;
		if (found == 0)
			return 0; /* unknown or empty item */
		bits |= found;
		if (p[n] == '\0')
			return bits;
		p += n + 1;
	}
}

void kiln_scopes_format(unsigned scopes, char *buf, size_t len)
{
	size_t o = 0;
	unsigned i;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < 3; i++) {
		int n;

		if (!(scopes & (1u << i)))
			continue;
		n = snprintf(buf + o, len - o, "%s%s", o ? "," : "", scope_names[i]);
		if (n < 0 || (size_t)n >= len - o) {
			buf[o] = '\0'; /* never a cut name */
			return;
		}
		o += (size_t)n;
	}
}

static json_t *scopes_json(unsigned scopes)
{
	json_t *a = json_array();
	unsigned i;

	for (i = 0; a != NULL && i < 3; i++)
		if (scopes & (1u << i))
			json_array_append_new(a, json_string(scope_names[i]));
	return a;
}

static bool token_id_valid(const char *id)
{
	size_t i;

	if (id == NULL || id[0] == '\0')
		return false;
	for (i = 0; id[i] != '\0'; i++) {
		char c = id[i];

		if (i >= sizeof(((struct kiln_token_row *)0)->id) - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

int kiln_db_token_insert(struct kiln_db *db, const struct kiln_token_row *t,
			 const char *description, struct kiln_error **err)
{
	char scopes[32];
	int rc;

	if (!token_id_valid(t->id))
		return kiln_error_set(err, EINVAL, "bad token id");
	if (t->project[0] != '\0' && !kiln_project_name_valid(t->project))
		return kiln_error_set(err, EINVAL, "token: bad project name");
	if (t->scopes == 0 || (t->scopes & ~SCOPES_ALL) != 0)
		return kiln_error_set(err, EINVAL, "token: bad scopes %#x", t->scopes);
	if (description == NULL)
		description = "";
	if (strlen(description) > DESCRIPTION_MAX ||
	    !kiln_utf8_valid(description, strlen(description)))
		return kiln_error_set(err, EINVAL, "token description: at most %d bytes of UTF-8",
				      DESCRIPTION_MAX);
	kiln_scopes_format(t->scopes, scopes, sizeof(scopes));
	if (run(db, err, &rc, "insert token",
		"INSERT INTO tokens (id, hash, project, scopes, created_at, expires_at, revoked_at,"
		" description) VALUES (?, ?, ?, ?, ?, nullif(?, 0), nullif(?, 0), ?)",
		"sbSsIIIs", t->id, (const void *)t->hash, (int)sizeof(t->hash), t->project, scopes,
		t->created_at != 0 ? t->created_at : now_s(), t->expires_at, t->revoked_at,
		description) < 0) {
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
			kiln_error_free(err);
			return kiln_error_set(err, EEXIST, "token %s exists", t->id);
		}
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
			kiln_error_free(err);
			return kiln_error_set(err, ENOENT, "token: no project %s", t->project);
		}
		return -1;
	}
	return 0;
}

int kiln_db_token_get(struct kiln_db *db, const char *id, struct kiln_token_row *t,
		      struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	if (!token_id_valid(id))
		return kiln_error_set(err, ENOENT, "no such token");
	st = query(db, err,
		   "SELECT hash, project, scopes, created_at, expires_at, revoked_at FROM tokens"
		   " WHERE id = ?",
		   "s", id);
	if (st == NULL)
		return -1;
	r = step(db, st, err, "get token");
	if (r < 0)
		return -1;
	if (r == 0)
		return kiln_error_set(err, ENOENT, "no token %s", id);
	if (sqlite3_column_bytes(st, 0) != (int)sizeof(t->hash))
		return db_fail(db, SQLITE_OK, EBADMSG, err, "token %s: stored hash has %d bytes",
			       id, sqlite3_column_bytes(st, 0));
	snprintf(t->id, sizeof(t->id), "%s", id);
	memcpy(t->hash, sqlite3_column_blob(st, 0), sizeof(t->hash));
	snprintf(t->project, sizeof(t->project), "%s", col_text(st, 1));
	t->scopes = kiln_scopes_parse(col_text(st, 2));
	t->created_at = sqlite3_column_int64(st, 3);
	t->expires_at = sqlite3_column_int64(st, 4); /* NULL reads as 0 */
	t->revoked_at = sqlite3_column_int64(st, 5);
	return 0;
}

static json_t *token_row(sqlite3_stmt *st)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", col_json_str(st, 0),
			 "project", col_json_str(st, 1), "scopes",
			 scopes_json(kiln_scopes_parse(col_text(st, 2))), "created_at",
			 col_json_time(st, 3), "expires_at", col_json_time(st, 4), "revoked_at",
			 col_json_time(st, 5), "description", col_json_str(st, 6));
}

json_t *kiln_db_tokens_list(struct kiln_db *db, struct kiln_error **err)
{
	/* The hash is never selected: a listing cannot leak it. */
	cleanup_stmt sqlite3_stmt *st =
		query(db, err,
		      "SELECT id, project, scopes, created_at, expires_at, revoked_at, description"
		      " FROM tokens ORDER BY created_at, id",
		      "");

	return list_rows(db, st, "tokens", token_row, err);
}

int kiln_db_token_revoke(struct kiln_db *db, const char *id, struct kiln_error **err)
{
	int n;

	if (!token_id_valid(id))
		return kiln_error_set(err, ENOENT, "no such token");
	n = run(db, err, NULL, "revoke token",
		"UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", "Is",
		now_s(), id);
	if (n < 0)
		return -1;
	if (n == 0)
		return kiln_error_set(err, ENOENT, "no token %s", id);
	return 0;
}

/* ---- jobs ------------------------------------------------------------ */

/* The columns of the job object, in the order job_json() reads them. */
#define JOB_COLUMNS                                                                                \
	"id, project, state, created_at, started_at, finished_at, exit_code, reason,"              \
	" spec_sha256, source_sha256, source_bytes, log_bytes, log_truncated, error, spec_json,"   \
	" policy_digest, signer_key"

static json_t *job_json(sqlite3_stmt *st, bool with_report)
{
	json_t *j = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:b,"
			      " s:o, s:o}",
			      "id", (json_int_t)sqlite3_column_int64(st, 0), "project",
			      col_json_str(st, 1), "state", col_json_str(st, 2), "created_at",
			      col_json_time(st, 3), "started_at", col_json_time(st, 4),
			      "finished_at", col_json_time(st, 5), "exit_code", col_json_int(st, 6),
			      "reason", col_json_str(st, 7), "spec_sha256", col_json_str(st, 8),
			      "source_sha256", col_json_str(st, 9), "source_bytes",
			      (json_int_t)sqlite3_column_int64(st, 10), "log_bytes",
			      (json_int_t)sqlite3_column_int64(st, 11), "log_truncated",
			      sqlite3_column_int(st, 12) != 0, "error", col_json_str(st, 13),
			      "spec", col_json_doc(st, 14));

	if (j != NULL && (json_object_set_new(j, "policy_digest", col_json_str(st, 15)) < 0 ||
			  json_object_set_new(j, "signer_key", col_json_str(st, 16)) < 0)) {
		json_decref(j);
		return NULL;
	}
	if (j != NULL && with_report &&
	    json_object_set_new(j, "report", col_json_doc(st, 17)) < 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int kiln_db_job_insert(struct kiln_db *db, const struct kiln_job_new *j, int64_t *id,
		       struct kiln_error **err)
{
	json_t *spec;
	int rc, n;

	if (!kiln_project_name_valid(j->project))
		return kiln_error_set(err, EINVAL, "job: bad project name");
	if (j->spec_text == NULL || j->spec_json == NULL)
		return kiln_error_set(err, EINVAL, "job: no spec");
	if (!kiln_sha256_hex_valid(j->spec_sha256) || !kiln_sha256_hex_valid(j->source_sha256))
		return kiln_error_set(err, EINVAL, "job: digests must be 64 lowercase hex digits");
	if (j->source_bytes > INT64_MAX)
		return kiln_error_set(err, EINVAL, "job: source too large");
	/* The job object embeds spec_json: it must be a JSON object. */
	spec = json_loads(j->spec_json, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(spec)) {
		json_decref(spec);
		return kiln_error_set(err, EINVAL, "job: parsed spec is not a JSON object");
	}
	json_decref(spec);
	if (j->max_queued > INT64_MAX)
		return kiln_error_set(err, EINVAL, "job: max_queued out of range");
	/* The nonce of a signed submission is used up in the same
	 * transaction that records its job: a replay finds it, and a
	 * refused insert does not burn it. */
	if (tx_begin(db, err) < 0)
		return -1;
	n = run(db, err, &rc, "insert job",
		"INSERT INTO jobs (project, state, spec_text, spec_json, spec_sha256, "
		"source_sha256,"
		" source_bytes, retry_safe, created_at, submitted_by, policy_digest, signer_key)"
		" SELECT ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
		" WHERE ? = 0 OR (SELECT count(*) FROM jobs WHERE project = ? AND state = "
		"'queued') < ?",
		"sssssIiIsSSIsI", j->project, j->spec_text, j->spec_json, j->spec_sha256,
		j->source_sha256, (int64_t)j->source_bytes, j->retry_safe ? 1 : 0, now_s(),
		j->submitted_by, j->policy_digest, j->signer_key, (int64_t)j->max_queued,
		j->project, (int64_t)j->max_queued);
	if (n < 0) {
		tx_rollback(db);
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
			kiln_error_free(err);
			return kiln_error_set(err, ENOENT, "no project %s", j->project);
		}
		return -1;
	}
	if (n == 0) {
		tx_rollback(db);
		return kiln_error_set(err, EAGAIN, "project %s already has %" PRIu64 " queued jobs",
				      j->project, j->max_queued);
	}
	*id = sqlite3_last_insert_rowid(db->h);
	if (j->nonce != NULL &&
	    run(db, err, &rc, "use the submission nonce",
		"INSERT INTO submission_nonces (nonce, project, key_id, job_id, created_at)"
		" VALUES (?, ?, ?, ?, ?)",
		"sssII", j->nonce, j->project, j->signer_key ? j->signer_key : "", *id,
		now_s()) < 0) {
		tx_rollback(db);
		if ((rc & 0xff) == SQLITE_CONSTRAINT) {
			kiln_error_free(err);
			return kiln_error_set(err, EEXIST, "nonce %s was used already", j->nonce);
		}
		return -1;
	}
	if (j->in_tx != NULL && j->in_tx(j->in_tx_ctx, db, *id, err) < 0)
		return tx_fail(db);
	return tx_commit(db, err);
}

int64_t kiln_db_jobs_queued(struct kiln_db *db, const char *project, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		query(db, err, "SELECT count(*) FROM jobs WHERE project = ? AND state = 'queued'",
		      "s", project);

	if (st == NULL || step(db, st, err, "count queued jobs") <= 0)
		return -1;
	return sqlite3_column_int64(st, 0);
}

json_t *kiln_db_job_get(struct kiln_db *db, int64_t id, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = query(
		db, err, "SELECT " JOB_COLUMNS ", report_json FROM jobs WHERE id = ?", "I", id);
	json_t *j;
	int r;

	if (st == NULL)
		return NULL;
	r = step(db, st, err, "get job");
	if (r < 0)
		return NULL;
	if (r == 0) {
		kiln_error_set(err, ENOENT, "no job %lld", (long long)id);
		return NULL;
	}
	j = job_json(st, true);
	if (j == NULL)
		kiln_error_set(err, ENOMEM, "job %lld", (long long)id);
	return j;
}

static json_t *job_row(sqlite3_stmt *st)
{
	return job_json(st, false);
}

json_t *kiln_db_jobs_list(struct kiln_db *db, const char *project, const char *state, int limit,
			  struct kiln_error **err)
{
	/* One constant statement per filter combination, so that each can use
	 * its index. */
	static const char *const sql[4] = {
		"SELECT " JOB_COLUMNS " FROM jobs ORDER BY id DESC LIMIT ?",
		"SELECT " JOB_COLUMNS " FROM jobs WHERE project = ? ORDER BY id DESC LIMIT ?",
		"SELECT " JOB_COLUMNS " FROM jobs WHERE state = ? ORDER BY id DESC LIMIT ?",
		"SELECT " JOB_COLUMNS " FROM jobs WHERE project = ? AND state = ?"
		" ORDER BY id DESC LIMIT ?",
	};
	cleanup_stmt sqlite3_stmt *st = NULL;

	if (state != NULL && kiln_job_state_parse(state) < 0) {
		kiln_error_set(err, EINVAL, "unknown job state '%.32s'", state);
		return NULL;
	}
	if (limit <= 0)
		limit = JOBS_LIMIT_DEFAULT;
	if (limit > JOBS_LIMIT_MAX)
		limit = JOBS_LIMIT_MAX;
	if (project != NULL && state != NULL)
		st = query(db, err, sql[3], "ssi", project, state, limit);
	else if (state != NULL)
		st = query(db, err, sql[2], "si", state, limit);
	else if (project != NULL)
		st = query(db, err, sql[1], "si", project, limit);
	else
		st = query(db, err, sql[0], "i", limit);
	return list_rows(db, st, "jobs", job_row, err);
}

/* The current state of a job; ENOENT if there is none. */
static int job_state(struct kiln_db *db, int64_t id, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		query(db, err, "SELECT state FROM jobs WHERE id = ?", "I", id);
	int r, s;

	if (st == NULL)
		return -1;
	r = step(db, st, err, "read job state");
	if (r < 0)
		return -1;
	if (r == 0)
		return kiln_error_set(err, ENOENT, "no job %lld", (long long)id);
	s = kiln_job_state_parse(col_text(st, 0));
	if (s < 0)
		return db_fail(db, SQLITE_OK, EBADMSG, err, "job %lld has unknown state '%s'",
			       (long long)id, col_text(st, 0));
	return s;
}

/*
 * The one place a job changes state. Inside a transaction: read the state,
 * ask the table, then compare-and-set on the state just read. started_at is
 * set by START (and cleared by RETRY: the next START sets it again),
 * finished_at by reaching a final state. Returns the new state.
 */
static int apply_event(struct kiln_db *db, int64_t id, enum kiln_job_event ev,
		       struct kiln_error **err)
{
	int cur, next, n, started;

	cur = job_state(db, id, err);
	if (cur < 0)
		return -1;
	next = kiln_job_next((enum kiln_job_state)cur, ev);
	if (next < 0)
		return kiln_error_set(err, EALREADY, "job %lld is %s: cannot %s it", (long long)id,
				      kiln_job_state_name((enum kiln_job_state)cur),
				      kiln_job_event_name(ev));
	started = ev == KILN_EV_START ? 1 : ev == KILN_EV_RETRY ? 2 : 0;
	n = run(db, err, NULL, "change job state",
		"UPDATE jobs SET state = ?1,"
		" started_at = CASE ?2 WHEN 1 THEN ?3 WHEN 2 THEN NULL ELSE started_at END,"
		" finished_at = CASE WHEN ?4 THEN ?3 ELSE finished_at END"
		" WHERE id = ?5 AND state = ?6",
		"siIiIs", kiln_job_state_name((enum kiln_job_state)next), started, now_s(),
		kiln_job_state_final((enum kiln_job_state)next) ? 1 : 0, id,
		kiln_job_state_name((enum kiln_job_state)cur));
	if (n < 0)
		return -1;
	if (n != 1)
		return kiln_error_set(err, EALREADY, "job %lld changed state meanwhile",
				      (long long)id);
	return next;
}

int kiln_db_job_event(struct kiln_db *db, int64_t id, enum kiln_job_event ev,
		      enum kiln_job_state *new_state, struct kiln_error **err)
{
	int s;

	if (tx_begin(db, err) < 0)
		return -1;
	s = apply_event(db, id, ev, err);
	if (s < 0)
		return tx_fail(db);
	if (tx_commit(db, err) < 0)
		return -1;
	if (new_state != NULL)
		*new_state = (enum kiln_job_state)s;
	return 0;
}

int kiln_db_job_claim(struct kiln_db *db, const char *worker, int64_t *id, struct kiln_error **err)
{
	return kiln_db_job_claim_capped(db, worker, NULL, NULL, id, err);
}

int kiln_db_job_claim_capped(struct kiln_db *db, const char *worker,
			     unsigned (*cap)(void *ctx, const char *project), void *ctx,
			     int64_t *id, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int64_t jid = 0;
	int r;

	if (tx_begin(db, err) < 0)
		return -1;
	/* The oldest queued job whose project is below its cap of running
	 * jobs (counted in this same write transaction). */
	st = query(db, err,
		   "SELECT q.id, q.project, (SELECT count(*) FROM jobs r WHERE r.state = 'running'"
		   " AND r.project = q.project) FROM jobs q WHERE q.state = 'queued' ORDER BY q.id"
		   " LIMIT 1000",
		   "");
	if (st == NULL)
		return tx_fail(db);
	for (;;) {
		unsigned limit;

		r = step(db, st, err, "find a queued job");
		if (r <= 0) {
			tx_rollback(db);
			return r;
		}
		limit = cap ? cap(ctx, col_text(st, 1)) : 0;
		if (limit == 0 || sqlite3_column_int64(st, 2) < (int64_t)limit) {
			jid = sqlite3_column_int64(st, 0);
			break;
		}
	}
	sqlite3_finalize(steal_pointer(&st));
	if (apply_event(db, jid, KILN_EV_START, err) < 0 ||
	    run(db, err, NULL, "claim job",
		"UPDATE jobs SET attempts = attempts + 1, worker = ? WHERE id = ?", "sI", worker,
		jid) < 0)
		return tx_fail(db);
	if (tx_commit(db, err) < 0)
		return -1;
	*id = jid;
	return 1;
}

void kiln_db_job_work_free(struct kiln_job_work *w)
{
	if (w == NULL)
		return;
	free(w->project);
	free(w->spec_text);
	free(w->spec_json);
	free(w->source_sha256);
	memset(w, 0, sizeof(*w));
}

/* One job's row of `sql` (... WHERE id = ?), stepped onto it: the
 * statement, or NULL with *err (ENOENT when there is no such job). */
static sqlite3_stmt *job_select(struct kiln_db *db, const char *sql, int64_t id,
				struct kiln_error **err)
{
	sqlite3_stmt *st = query(db, err, sql, "I", id);
	int r;

	if (st == NULL)
		return NULL;
	r = step(db, st, err, "read job");
	if (r <= 0) {
		sqlite3_finalize(st);
		if (r == 0)
			kiln_error_set(err, ENOENT, "no job %lld", (long long)id);
		return NULL;
	}
	return st;
}

int kiln_db_job_work(struct kiln_db *db, int64_t id, struct kiln_job_work *w,
		     struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;

	memset(w, 0, sizeof(*w));
	st = job_select(
		db,
		"SELECT project, spec_text, spec_json, source_sha256, state, cancel_requested,"
		" signer_key IS NOT NULL FROM jobs WHERE id = ?",
		id, err);
	if (st == NULL)
		return -1;
	w->id = id;
	w->project = strdup(col_text(st, 0));
	w->spec_text = strdup(col_text(st, 1));
	w->spec_json = strdup(col_text(st, 2));
	w->source_sha256 = strdup(col_text(st, 3));
	w->state = kiln_job_state_parse(col_text(st, 4));
	w->cancel_requested = sqlite3_column_int(st, 5) != 0;
	w->signed_submission = sqlite3_column_int(st, 6) != 0;
	if (w->project == NULL || w->spec_text == NULL || w->spec_json == NULL ||
	    w->source_sha256 == NULL) {
		kiln_db_job_work_free(w);
		return kiln_error_set(err, ENOMEM, "read job %lld", (long long)id);
	}
	return 0;
}

int kiln_db_job_finish(struct kiln_db *db, int64_t id, const struct kiln_job_outcome *o,
		       enum kiln_job_event ev, enum kiln_job_state *new_state,
		       struct kiln_error **err)
{
	int s;

	if (o->log_bytes > INT64_MAX)
		return kiln_error_set(err, EINVAL, "job %lld: bad log size", (long long)id);
	if (tx_begin(db, err) < 0)
		return -1;
	if ((int)ev >= 0) {
		s = apply_event(db, id, ev, err);
	} else {
		s = job_state(db, id, err);
		if (s >= 0 && kiln_job_state_final((enum kiln_job_state)s))
			s = kiln_error_set(err, EALREADY, "job %lld is %s already", (long long)id,
					   kiln_job_state_name((enum kiln_job_state)s));
	}
	if (s < 0)
		return tx_fail(db);
	if (run(db, err, NULL, "record job outcome",
		"UPDATE jobs SET exit_code = nullif(?, -1), reason = ?, report_json = ?,"
		" log_bytes = ?, log_truncated = ?, error = ? WHERE id = ?",
		"issIisI", o->exit_code, o->reason, o->report_json, (int64_t)o->log_bytes,
		o->log_truncated ? 1 : 0, o->error, id) < 0)
		return tx_fail(db);
	if (tx_commit(db, err) < 0)
		return -1;
	if (new_state != NULL)
		*new_state = (enum kiln_job_state)s;
	return 0;
}

int kiln_db_job_request_cancel(struct kiln_db *db, int64_t id, struct kiln_error **err)
{
	int s;

	if (tx_begin(db, err) < 0)
		return -1;
	s = job_state(db, id, err);
	if (s >= 0 && kiln_job_state_final((enum kiln_job_state)s))
		s = kiln_error_set(err, EALREADY, "job %lld is %s already", (long long)id,
				   kiln_job_state_name((enum kiln_job_state)s));
	if (s < 0 || run(db, err, NULL, "request cancel",
			 "UPDATE jobs SET cancel_requested = 1 WHERE id = ?", "I", id) < 0)
		return tx_fail(db);
	/* A queued job has no sandbox to wait for: it is cancelled now. */
	if (s == KILN_JOB_QUEUED && apply_event(db, id, KILN_EV_CANCEL, err) < 0)
		return tx_fail(db);
	return tx_commit(db, err);
}

bool kiln_db_job_cancel_requested(struct kiln_db *db, int64_t id)
{
	struct kiln_error *err = NULL;
	cleanup_stmt sqlite3_stmt *st =
		query(db, &err, "SELECT cancel_requested FROM jobs WHERE id = ?", "I", id);
	bool yes = false;

	if (st != NULL && step(db, st, &err, "read cancel flag") == 1)
		yes = sqlite3_column_int(st, 0) != 0;
	kiln_error_free(&err);
	return yes;
}

int kiln_db_jobs_recover(struct kiln_db *db, int max_attempts, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	cleanup_free int64_t *ids = NULL;
	cleanup_free unsigned char *retry = NULL;
	size_t n = 0, cap = 0, i;
	int r;

	if (tx_begin(db, err) < 0)
		return -1;
	st = query(db, err,
		   "SELECT id, retry_safe != 0 AND attempts < ? FROM jobs WHERE state = 'running'"
		   " ORDER BY id",
		   "i", max_attempts);
	if (st == NULL)
		return tx_fail(db);
	/* Collect first: the table is not changed under a running SELECT. */
	while ((r = step(db, st, err, "find running jobs")) == 1) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			int64_t *ni = realloc(ids, ncap * sizeof(*ids));
			unsigned char *nr;

			if (ni != NULL)
				ids = ni;
			nr = ni != NULL ? realloc(retry, ncap) : NULL;
			if (nr == NULL) {
				kiln_error_set(err, ENOMEM, "recover jobs");
				return tx_fail(db);
			}
			retry = nr;
			cap = ncap;
		}
		ids[n] = sqlite3_column_int64(st, 0);
		retry[n] = sqlite3_column_int(st, 1) != 0;
		n++;
	}
	if (r < 0)
		return tx_fail(db);
	sqlite3_finalize(steal_pointer(&st));
	for (i = 0; i < n; i++) {
		if (apply_event(db, ids[i], retry[i] ? KILN_EV_RETRY : KILN_EV_CRASH, err) < 0)
			return tx_fail(db);
		if (!retry[i] && run(db, err, NULL, "mark job interrupted",
				     "UPDATE jobs SET error = coalesce(error, ?) WHERE id = ?",
				     "sI", INTERRUPTED_MESSAGE, ids[i]) < 0)
			return tx_fail(db);
	}
	if (tx_commit(db, err) < 0)
		return -1;
	return (int)n;
}

bool kiln_db_project_owns_blob(struct kiln_db *db, const char *project, const char *sha256)
{
	struct kiln_error *err = NULL;
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r;

	if (!kiln_project_name_valid(project) || !kiln_sha256_hex_valid(sha256))
		return false;
	st = query(db, &err,
		   "SELECT 1 FROM artifacts a JOIN jobs j ON j.id = a.job_id"
		   " WHERE a.sha256 = ? AND j.project = ? LIMIT 1",
		   "ss", sha256, project);
	r = st != NULL ? step(db, st, &err, "find artifact") : -1;
	kiln_error_free(&err);
	return r == 1;
}

int kiln_db_job_project(struct kiln_db *db, int64_t id, char *buf, size_t len)
{
	struct kiln_error *err = NULL;
	cleanup_stmt sqlite3_stmt *st =
		query(db, &err, "SELECT project FROM jobs WHERE id = ?", "I", id);
	int r = st != NULL ? step(db, st, &err, "job project") : -1;

	kiln_error_free(&err);
	if (len > 0)
		buf[0] = '\0';
	if (r != 1 || len == 0)
		return -1;
	if ((size_t)snprintf(buf, len, "%s", col_text(st, 0)) >= len) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

/* ---- artifacts ------------------------------------------------------- */

int kiln_db_artifact_add(struct kiln_db *db, int64_t job, const char *name, uint64_t size,
			 const char *sha256, struct kiln_error **err)
{
	int rc;

	if (name == NULL || name[0] == '\0' || strlen(name) > ARTIFACT_NAME_MAX ||
	    !kiln_utf8_valid(name, strlen(name)))
		return kiln_error_set(err, EINVAL, "artifact: bad name");
	if (!kiln_sha256_hex_valid(sha256))
		return kiln_error_set(err, EINVAL, "artifact: bad digest");
	if (size > INT64_MAX)
		return kiln_error_set(err, EINVAL, "artifact: bad size");
	if (run(db, err, &rc, "add artifact",
		"INSERT INTO artifacts (job_id, name, size, sha256) VALUES (?, ?, ?, ?)", "IsIs",
		job, name, (int64_t)size, sha256) < 0) {
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
			kiln_error_free(err);
			return kiln_error_set(err, EEXIST, "job %lld already has an artifact %s",
					      (long long)job, name);
		}
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
			kiln_error_free(err);
			return kiln_error_set(err, ENOENT, "no job %lld", (long long)job);
		}
		return -1;
	}
	return 0;
}

static json_t *artifact_row(sqlite3_stmt *st)
{
	return json_pack("{s:o, s:I, s:o}", "name", col_json_str(st, 0), "size",
			 (json_int_t)sqlite3_column_int64(st, 1), "sha256", col_json_str(st, 2));
}

json_t *kiln_db_artifacts_list(struct kiln_db *db, int64_t job, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = query(
		db, err, "SELECT name, size, sha256 FROM artifacts WHERE job_id = ? ORDER BY name",
		"I", job);

	return list_rows(db, st, "artifacts", artifact_row, err);
}

/* ---- egress ------------------------------------------------------------ */

int kiln_db_egress_add(struct kiln_db *db, int64_t job, const char *project, json_t *attempts,
		       struct kiln_error **err)
{
	size_t i;
	json_t *a;

	if (json_array_size(attempts) == 0)
		return 0;
	if (tx_begin(db, err) < 0)
		return -1;
	json_array_foreach(attempts, i, a)
	{
		const char *reason = json_string_value(json_object_get(a, "reason"));

		if (run(db, err, NULL, "record egress",
			"INSERT INTO egress (job_id, project, at, kind, host, addr, port, allowed, "
			"reason, bytes_up, bytes_down, duration_ms)"
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			"IsIsssIiSIII", job, project,
			(int64_t)json_integer_value(json_object_get(a, "at")),
			json_string_value(json_object_get(a, "kind")),
			json_string_value(json_object_get(a, "host")),
			json_string_value(json_object_get(a, "addr")),
			(int64_t)json_integer_value(json_object_get(a, "port")),
			json_is_true(json_object_get(a, "allowed")) ? 1 : 0, reason ? reason : "",
			(int64_t)json_integer_value(json_object_get(a, "bytes_up")),
			(int64_t)json_integer_value(json_object_get(a, "bytes_down")),
			(int64_t)json_integer_value(json_object_get(a, "duration_ms"))) < 0) {
			tx_rollback(db);
			return -1;
		}
	}
	return tx_commit(db, err);
}

static json_t *egress_row(sqlite3_stmt *st)
{
	json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:I, s:b, s:o, s:I, s:I, s:I}", "at",
			      col_json_time(st, 0), "kind", col_json_str(st, 1), "host",
			      col_json_str(st, 2), "addr", col_json_str(st, 3), "port",
			      (json_int_t)sqlite3_column_int64(st, 4), "allowed",
			      sqlite3_column_int(st, 5), "reason", col_json_str(st, 6), "bytes_up",
			      (json_int_t)sqlite3_column_int64(st, 7), "bytes_down",
			      (json_int_t)sqlite3_column_int64(st, 8), "duration_ms",
			      (json_int_t)sqlite3_column_int64(st, 9));
	return o;
}

json_t *kiln_db_egress_list(struct kiln_db *db, int64_t job, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		query(db, err,
		      "SELECT at, kind, host, addr, port, allowed, reason, bytes_up, bytes_down,"
		      " duration_ms FROM egress WHERE job_id = ? ORDER BY id",
		      "I", job);

	return list_rows(db, st, "attempts", egress_row, err);
}

static json_t *suggest_row(sqlite3_stmt *st)
{
	return json_pack("{s:o, s:I, s:I, s:I}", "host", col_json_str(st, 0), "port",
			 (json_int_t)sqlite3_column_int64(st, 1), "attempts",
			 (json_int_t)sqlite3_column_int64(st, 2), "jobs",
			 (json_int_t)sqlite3_column_int64(st, 3));
}

json_t *kiln_db_egress_destinations(struct kiln_db *db, const char *project, int limit,
				    struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		query(db, err,
		      "SELECT host, port, count(*), count(DISTINCT job_id) FROM egress"
		      " WHERE project = ? AND kind IN ('connect', 'http') AND host != ''"
		      " GROUP BY host, port ORDER BY host, port LIMIT ?",
		      "sI", project, (int64_t)limit);

	return list_rows(db, st, "destinations", suggest_row, err);
}

/* ---- policies and secrets ---------------------------------------------- */

int kiln_db_job_set_policy(struct kiln_db *db, int64_t id, const char *digest,
			   struct kiln_error **err)
{
	return run(db, err, NULL, "record the job's policy",
		   "UPDATE jobs SET policy_digest = ? WHERE id = ?", "sI", digest, id) < 0
		       ? -1
		       : 0;
}

int kiln_db_secret_put(struct kiln_db *db, const char *project, const char *name, int64_t version,
		       const void *nonce, int nonce_len, const void *value, int value_len,
		       struct kiln_error **err)
{
	int rc = 0;

	if (run(db, err, &rc, "store secret",
		"INSERT INTO secrets (project, name, version, nonce, value, created_at)"
		" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project, name) DO UPDATE SET"
		" version = excluded.version, nonce = excluded.nonce, value = excluded.value,"
		" created_at = excluded.created_at",
		"ssIbbI", project, name, version, nonce, nonce_len, value, value_len,
		now_s()) < 0) {
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
			kiln_error_free(err);
			return kiln_error_set(err, ENOENT, "no project %s", project);
		}
		return -1;
	}
	return 0;
}

int64_t kiln_db_secret_version(struct kiln_db *db, const char *project, const char *name)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	struct kiln_error *err = NULL;
	int64_t v = 0;

	st = query(db, &err, "SELECT version FROM secrets WHERE project = ? AND name = ?", "ss",
		   project, name);
	if (st != NULL && step(db, st, &err, "secret version") == 1)
		v = sqlite3_column_int64(st, 0);
	kiln_error_free(&err);
	return v;
}

int kiln_db_secret_get(struct kiln_db *db, const char *project, const char *name, int64_t *version,
		       unsigned char *nonce, size_t nonce_len, unsigned char **value,
		       size_t *value_len, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r;

	st = query(db, err,
		   "SELECT version, nonce, value FROM secrets WHERE project = ? AND name = ?", "ss",
		   project, name);
	if (st == NULL)
		return -1;
	r = step(db, st, err, "read secret");
	if (r < 0)
		return -1;
	if (r == 0)
		return kiln_error_set(err, ENOENT, "project %s has no secret %s", project, name);
	if ((size_t)sqlite3_column_bytes(st, 1) != nonce_len)
		return kiln_error_set(err, EBADMSG, "secret %s/%s: bad nonce", project, name);
	*version = sqlite3_column_int64(st, 0);
	memcpy(nonce, sqlite3_column_blob(st, 1), nonce_len);
	*value_len = (size_t)sqlite3_column_bytes(st, 2);
	*value = malloc(*value_len + 1);
	if (*value == NULL)
		return kiln_error_set(err, ENOMEM, "read secret");
	if (*value_len > 0)
		memcpy(*value, sqlite3_column_blob(st, 2), *value_len);
	return 0;
}

static json_t *secret_row(sqlite3_stmt *st)
{
	return json_pack("{s:o,s:I,s:o}", "name", col_json_str(st, 0), "version",
			 (json_int_t)sqlite3_column_int64(st, 1), "created_at",
			 col_json_time(st, 2));
}

json_t *kiln_db_secrets_list(struct kiln_db *db, const char *project, struct kiln_error **err)
{
	/* The value and its nonce are never selected. */
	cleanup_stmt sqlite3_stmt *st = query(
		db, err,
		"SELECT name, version, created_at FROM secrets WHERE project = ? ORDER BY name",
		"s", project);

	return list_rows(db, st, "secrets", secret_row, err);
}

int kiln_db_secret_delete(struct kiln_db *db, const char *project, const char *name,
			  struct kiln_error **err)
{
	int n = run(db, err, NULL, "delete secret",
		    "DELETE FROM secrets WHERE project = ? AND name = ?", "ss", project, name);

	if (n < 0)
		return -1;
	if (n == 0)
		return kiln_error_set(err, ENOENT, "project %s has no secret %s", project, name);
	return 0;
}

int kiln_db_secrets_count(struct kiln_db *db, int64_t *n, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = query(db, err, "SELECT count(*) FROM secrets", "");

	if (st == NULL || step(db, st, err, "count secrets") < 0)
		return -1;
	*n = sqlite3_column_int64(st, 0);
	return 0;
}

int kiln_db_secrets_check_get(struct kiln_db *db, unsigned char *nonce, size_t nonce_len,
			      unsigned char *value, size_t *value_len, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		query(db, err, "SELECT nonce, value FROM secrets_key_check WHERE id = 1", "");
	int r;

	if (st == NULL)
		return -1;
	r = step(db, st, err, "read the key check");
	if (r <= 0)
		return r;
	if ((size_t)sqlite3_column_bytes(st, 0) != nonce_len ||
	    (size_t)sqlite3_column_bytes(st, 1) > *value_len)
		return kiln_error_set(err, EBADMSG, "the secret store's key check is damaged");
	memcpy(nonce, sqlite3_column_blob(st, 0), nonce_len);
	*value_len = (size_t)sqlite3_column_bytes(st, 1);
	memcpy(value, sqlite3_column_blob(st, 1), *value_len);
	return 1;
}

int kiln_db_secrets_check_set(struct kiln_db *db, const void *nonce, int nonce_len,
			      const void *value, int value_len, struct kiln_error **err)
{
	return run(db, err, NULL, "store the key check",
		   "INSERT INTO secrets_key_check (id, nonce, value) VALUES (1, ?, ?)", "bb", nonce,
		   nonce_len, value, value_len) < 0
		       ? -1
		       : 0;
}

int kiln_db_job_secret_grant(struct kiln_db *db, int64_t job, const char *name, int64_t version,
			     struct kiln_error **err)
{
	return run(db, err, NULL, "record a secret grant",
		   "INSERT OR REPLACE INTO job_secrets (job_id, name, version) VALUES (?, ?, ?)",
		   "IsI", job, name, version) < 0
		       ? -1
		       : 0;
}

/* ---- raw handle ---------------------------------------------------- */

sqlite3 *kiln_db_sqlite(struct kiln_db *db)
{
	return db->h;
}

/* ---- signed submissions and provenance ---- */

int kiln_db_nonce_used(struct kiln_db *db, const char *nonce, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		query(db, err, "SELECT 1 FROM submission_nonces WHERE nonce = ?", "s", nonce);

	if (st == NULL)
		return -1;
	return step(db, st, err, "look up a nonce");
}

int kiln_db_rejection_add(struct kiln_db *db, const char *project, const char *token_id,
			  const char *code, const char *key_id, const char *message,
			  struct kiln_error **err)
{
	return run(db, err, NULL, "record a refused submission",
		   "INSERT INTO submission_rejections (project, token_id, code, key_id, message,"
		   " created_at) VALUES (?, ?, ?, ?, ?, ?)",
		   "sSsSsI", project, token_id, code, key_id, message, now_s()) < 0
		       ? -1
		       : 0;
}

int kiln_db_provenance_put(struct kiln_db *db, int64_t job, const char *envelope,
			   struct kiln_error **err)
{
	return run(db, err, NULL, "store provenance",
		   "INSERT OR REPLACE INTO provenance (job_id, envelope, created_at)"
		   " VALUES (?, ?, ?)",
		   "IsI", job, envelope, now_s()) < 0
		       ? -1
		       : 0;
}

char *kiln_db_provenance_get(struct kiln_db *db, int64_t job, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		query(db, err, "SELECT envelope FROM provenance WHERE job_id = ?", "I", job);
	char *s;
	int r;

	if (st == NULL)
		return NULL;
	r = step(db, st, err, "read provenance");
	if (r < 0)
		return NULL;
	if (r == 0) {
		kiln_error_set(err, ENOENT, "no provenance for job %lld", (long long)job);
		return NULL;
	}
	s = strdup(col_text(st, 0));
	if (s == NULL)
		kiln_error_set(err, ENOMEM, "read provenance");
	return s;
}

int kiln_db_job_facts(struct kiln_db *db, int64_t id, struct kiln_job_facts *f,
		      struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;

	memset(f, 0, sizeof(*f));
	st = job_select(
		db,
		"SELECT project, state, spec_text, spec_json, spec_sha256, source_sha256,"
		" signer_key, started_at, finished_at, policy_digest FROM jobs WHERE id = ?",
		id, err);
	if (st == NULL)
		return -1;
	f->id = id;
	f->project = strdup(col_text(st, 0));
	f->state = strdup(col_text(st, 1));
	f->spec_text = strdup(col_text(st, 2));
	f->spec_json = strdup(col_text(st, 3));
	f->spec_sha256 = strdup(col_text(st, 4));
	f->source_sha256 = strdup(col_text(st, 5));
	f->signer_key = col_null(st, 6) ? NULL : strdup(col_text(st, 6));
	f->started_at = col_null(st, 7) ? 0 : sqlite3_column_int64(st, 7);
	f->finished_at = col_null(st, 8) ? 0 : sqlite3_column_int64(st, 8);
	f->policy_digest = col_null(st, 9) ? NULL : strdup(col_text(st, 9));
	if (!f->project || !f->state || !f->spec_text || !f->spec_json || !f->spec_sha256 ||
	    !f->source_sha256 || (!col_null(st, 6) && !f->signer_key) ||
	    (!col_null(st, 9) && !f->policy_digest)) {
		kiln_db_job_facts_free(f);
		return kiln_error_set(err, ENOMEM, "read job %lld", (long long)id);
	}
	return 0;
}

int kiln_db_jobs_missing_provenance(struct kiln_db *db, int64_t *ids, size_t max, size_t *n,
				    struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = query(
		db, err,
		"SELECT j.id FROM jobs j WHERE j.state IN ('succeeded', 'failed', 'timed_out',"
		" 'cancelled', 'rejected', 'interrupted')"
		" AND EXISTS (SELECT 1 FROM artifacts a WHERE a.job_id = j.id)"
		" AND NOT EXISTS (SELECT 1 FROM provenance p WHERE p.job_id = j.id)"
		" ORDER BY j.id LIMIT ?",
		"I", (int64_t)max);
	int r;

	*n = 0;
	if (st == NULL)
		return -1;
	while ((r = step(db, st, err, "find jobs without provenance")) == 1)
		ids[(*n)++] = sqlite3_column_int64(st, 0);
	return r < 0 ? -1 : 0;
}

void kiln_db_job_facts_free(struct kiln_job_facts *f)
{
	if (f == NULL)
		return;
	free(f->project);
	free(f->state);
	free(f->spec_text);
	free(f->spec_json);
	free(f->spec_sha256);
	free(f->source_sha256);
	free(f->signer_key);
	free(f->policy_digest);
	memset(f, 0, sizeof(*f));
}

static json_t *grant_row(sqlite3_stmt *st)
{
	return json_pack("{s:o,s:I}", "name", col_json_str(st, 0), "version",
			 (json_int_t)sqlite3_column_int64(st, 1));
}

json_t *kiln_db_job_secret_grants(struct kiln_db *db, int64_t job, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = query(
		db, err, "SELECT name, version FROM job_secrets WHERE job_id = ? ORDER BY name",
		"I", job);

	return list_rows(db, st, "secrets", grant_row, err);
}

/* ---- transactions for callers ---- */

int kiln_db_begin(struct kiln_db *db, struct kiln_error **err)
{
	return tx_begin(db, err);
}

int kiln_db_commit(struct kiln_db *db, struct kiln_error **err)
{
	return tx_commit(db, err);
}

void kiln_db_rollback(struct kiln_db *db)
{
	tx_rollback(db);
}

/* ---- the file's path, for messages (src/store/auditlog.c) ---- */

const char *kiln_db_path(const struct kiln_db *db)
{
	return db->path;
}
