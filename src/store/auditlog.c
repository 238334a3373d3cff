/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log's tables (auditlog.h). Constant SQL, bound parameters.
 */
#include "store/auditlog.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cleanup.h"

static inline void stmt_freep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}
#define cleanup_stmt __attribute__((cleanup(stmt_freep)))

static int fail(struct kiln_db *db, int code, struct kiln_error **err, const char *what)
{
	sqlite3 *h = kiln_db_sqlite(db);
	int rc = sqlite3_errcode(h) & 0xff;

	if (code == 0)
		code = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? EBUSY
		       : rc == SQLITE_FULL			? ENOSPC
		       : rc == SQLITE_CORRUPT			? EBADMSG
								: EIO;
	return kiln_error_set(err, code, "database %s: audit log: %s: %s", kiln_db_path(db), what,
			      sqlite3_errmsg(h));
}

static sqlite3_stmt *prep(struct kiln_db *db, const char *sql, struct kiln_error **err)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(kiln_db_sqlite(db), sql, -1, &st, NULL) != SQLITE_OK) {
		fail(db, 0, err, "prepare");
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static void rollback(struct kiln_db *db)
{
	if (!sqlite3_get_autocommit(kiln_db_sqlite(db)))
		sqlite3_exec(kiln_db_sqlite(db), "ROLLBACK", NULL, NULL, NULL);
}

static int exec(struct kiln_db *db, const char *sql, struct kiln_error **err)
{
	if (sqlite3_exec(kiln_db_sqlite(db), sql, NULL, NULL, NULL) != SQLITE_OK)
		return fail(db, 0, err, sql);
	return 0;
}

static int get_hash(struct kiln_db *db, int level, uint64_t idx, kiln_hash out,
		    struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		prep(db, "SELECT hash FROM audit_hashes WHERE level = ?1 AND idx = ?2", err);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, level);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == KILN_TLOG_HASH) {
		memcpy(out, sqlite3_column_blob(st, 0), KILN_TLOG_HASH);
		return 0;
	}
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return kiln_error_set(err, ENOENT,
				      "audit log: no stored hash at level %d index %" PRIu64, level,
				      idx);
	return fail(db, 0, err, "read a hash");
}

static int put_hash(struct kiln_db *db, int level, uint64_t idx, const kiln_hash h,
		    struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		prep(db, "INSERT INTO audit_hashes (level, idx, hash) VALUES (?1, ?2, ?3)", err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, level);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
	sqlite3_bind_blob(st, 3, h, KILN_TLOG_HASH, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return fail(db, 0, err, "store a hash");
	return 0;
}

static int size_locked(struct kiln_db *db, uint64_t *n, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
		prep(db, "SELECT coalesce(max(idx) + 1, 0) FROM audit_entries", err);

	if (st == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW)
		return fail(db, 0, err, "count entries");
	*n = (uint64_t)sqlite3_column_int64(st, 0);
	return 0;
}

int kiln_auditlog_size(struct kiln_db *db, uint64_t *n, struct kiln_error **err)
{
	return size_locked(db, n, err);
}

int kiln_auditlog_bytes(struct kiln_db *db, uint64_t from, uint64_t to, uint64_t *bytes,
			struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = prep(db,
					     "SELECT coalesce(sum(length(entry)), 0) FROM "
					     "audit_entries WHERE idx >= ? AND idx < ?",
					     err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)to);
	if (sqlite3_step(st) != SQLITE_ROW)
		return fail(db, 0, err, "measure the entries");
	*bytes = (uint64_t)sqlite3_column_int64(st, 0);
	return 0;
}

int kiln_auditlog_append(struct kiln_db *db, const void *entry, size_t len, uint64_t *index,
			 struct kiln_error **err)
{
	kiln_hash h, left;
	uint64_t n, j;
	int level = 0;

	bool own_tx = sqlite3_get_autocommit(kiln_db_sqlite(db)) != 0;

	if (len == 0 || len > KILN_TLOG_ENTRY_MAX)
		return kiln_error_set(err, EINVAL, "audit log: an entry must be 1..65535 bytes");
	/* Our own write transaction, or a savepoint inside the caller's
	 * (which then commits the entry with what it records). */
	if (exec(db, own_tx ? "BEGIN IMMEDIATE" : "SAVEPOINT audit_append", err) < 0)
		return -1;
	if (size_locked(db, &n, err) < 0)
		goto fail;
	{
		cleanup_stmt sqlite3_stmt *st =
			prep(db, "INSERT INTO audit_entries (idx, entry) VALUES (?1, ?2)", err);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
		sqlite3_bind_blob(st, 2, entry, (int)len, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fail(db, 0, err, "store the entry");
			goto fail;
		}
	}
	kiln_tlog_leaf_hash(entry, len, h);
	if (put_hash(db, 0, n, h, err) < 0)
		goto fail;
	/* Each odd index completes its parent: store every subtree this
	 * leaf completes. */
	for (j = n; j & 1; j >>= 1) {
		if (get_hash(db, level, j - 1, left, err) < 0)
			goto fail;
		kiln_tlog_node_hash(left, h, h);
		level++;
		if (put_hash(db, level, j >> 1, h, err) < 0)
			goto fail;
	}
	if (exec(db, own_tx ? "COMMIT" : "RELEASE audit_append", err) < 0)
		goto fail;
	*index = n;
	return 0;
fail:
	if (own_tx) {
		rollback(db);
	} else {
		sqlite3_exec(kiln_db_sqlite(db), "ROLLBACK TO audit_append", NULL, NULL, NULL);
		sqlite3_exec(kiln_db_sqlite(db), "RELEASE audit_append", NULL, NULL, NULL);
	}
	return -1;
}

int kiln_auditlog_hashes(struct kiln_db *db, int level, uint64_t start, unsigned count,
			 kiln_hash *out, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = prep(db,
					     "SELECT idx, hash FROM audit_hashes WHERE level = ?1 "
					     "AND idx >= ?2 AND idx < ?3 ORDER BY idx",
					     err);
	unsigned k = 0;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, level);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(start + count));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((uint64_t)sqlite3_column_int64(st, 0) != start + k ||
		    sqlite3_column_bytes(st, 1) != KILN_TLOG_HASH)
			break;
		memcpy(out[k], sqlite3_column_blob(st, 1), KILN_TLOG_HASH);
		k++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(db, 0, err, "read hashes");
	if (k != count)
		return kiln_error_set(err, ENOENT,
				      "audit log: no stored hash at level %d index %" PRIu64, level,
				      start + k);
	return 0;
}

int kiln_auditlog_root(struct kiln_db *db, uint64_t n, kiln_hash out, struct kiln_error **err)
{
	int levels[64], k;
	uint64_t idx[64];
	kiln_hash h, sub;

	if (n == 0) {
		kiln_tlog_root(NULL, 0, out);
		return 0;
	}
	k = kiln_tlog_subtrees(n, levels, idx);
	if (get_hash(db, levels[k - 1], idx[k - 1], h, err) < 0)
		return -1;
	for (int i = k - 2; i >= 0; i--) {
		if (get_hash(db, levels[i], idx[i], sub, err) < 0)
			return -1;
		kiln_tlog_node_hash(sub, h, h);
	}
	memcpy(out, h, KILN_TLOG_HASH);
	return 0;
}

int kiln_auditlog_each(struct kiln_db *db, uint64_t start, uint64_t limit, kiln_auditlog_fn fn,
		       void *ctx, struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = prep(db,
					     "SELECT idx, entry FROM audit_entries WHERE idx >= ?1 "
					     "ORDER BY idx LIMIT ?2",
					     err);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)start);
	sqlite3_bind_int64(st, 2, limit == 0 ? -1 : (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *e = sqlite3_column_blob(st, 1);
		int r = fn(ctx, (uint64_t)sqlite3_column_int64(st, 0), e ? e : (const void *)"",
			   (size_t)sqlite3_column_bytes(st, 1));
		if (r < 0)
			return kiln_error_set(err, EIO, "audit log: reading entries failed");
		if (r > 0)
			return 0;
	}
	if (rc != SQLITE_DONE)
		return fail(db, 0, err, "read entries");
	return 0;
}

struct bundle {
	unsigned char *buf;
	size_t len, cap;
	uint64_t end;
};

static int bundle_add(void *ctx, uint64_t idx, const unsigned char *e, size_t len)
{
	struct bundle *b = ctx;

	if (idx >= b->end)
		return 1;
	if (len > KILN_TLOG_ENTRY_MAX)
		len = KILN_TLOG_ENTRY_MAX;
	if (b->len + 2 + len > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 4096) + len + 2;
		unsigned char *nb = realloc(b->buf, cap);
		if (nb == NULL)
			return -1;
		b->buf = nb;
		b->cap = cap;
	}
	b->buf[b->len++] = (unsigned char)(len >> 8);
	b->buf[b->len++] = (unsigned char)len;
	memcpy(b->buf + b->len, e, len);
	b->len += len;
	return 0;
}

int kiln_auditlog_bundle(struct kiln_db *db, uint64_t start, unsigned count, unsigned char **out,
			 size_t *len, struct kiln_error **err)
{
	struct bundle b = {.end = start + count};

	if (kiln_auditlog_each(db, start, count, bundle_add, &b, err) < 0) {
		free(b.buf);
		return -1;
	}
	if (b.buf == NULL && (b.buf = malloc(1)) == NULL)
		return kiln_error_set(err, ENOMEM, "audit log bundle");
	*out = b.buf;
	*len = b.len;
	return 0;
}

int kiln_auditlog_checkpoint_latest(struct kiln_db *db, uint64_t *size, char **note,
				    struct kiln_error **err)
{
	cleanup_stmt sqlite3_stmt *st = prep(
		db, "SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1", err);
	int rc;

	*note = NULL;
	*size = 0;
	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 1;
	if (rc != SQLITE_ROW)
		return fail(db, 0, err, "read the checkpoint");
	*size = (uint64_t)sqlite3_column_int64(st, 0);
	*note = strdup(sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
	if (*note == NULL)
		return kiln_error_set(err, ENOMEM, "audit log checkpoint");
	return 0;
}

int kiln_auditlog_checkpoint_add(struct kiln_db *db, uint64_t size, const char *note,
				 struct kiln_error **err)
{
	uint64_t latest = 0;
	char *old = NULL;
	int r;

	if (exec(db, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	r = kiln_auditlog_checkpoint_latest(db, &latest, &old, err);
	free(old);
	if (r < 0)
		goto fail;
	if (r == 0 && latest >= size) {
		kiln_error_set(err, EALREADY,
			       "audit log: a checkpoint of size %" PRIu64 " exists already",
			       latest);
		goto fail;
	}
	{
		cleanup_stmt sqlite3_stmt *st = prep(db,
						     "INSERT INTO audit_checkpoints (size, "
						     "created_at, note) VALUES (?1, ?2, ?3)",
						     err);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
		sqlite3_bind_text(st, 3, note, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fail(db, 0, err, "store the checkpoint");
			goto fail;
		}
	}
	if (exec(db, "COMMIT", err) < 0)
		goto fail;
	return 0;
fail:
	rollback(db);
	return -1;
}
