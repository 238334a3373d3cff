/* SPDX-License-Identifier: Apache-2.0 */
/* src/trust/tlog.c: RFC 6962 known answers (the 8-leaf tree of the
 * certificate-transparency and transparency-dev test data), proofs of every
 * shape checked against an independent recomputation, tile paths, bundles,
 * signed checkpoints and verifier keys; src/store/auditlog.c: the stored
 * subtree hashes give the same heads as the leaves. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "store/auditlog.h"
#include "tap.h"
#include "trust/tlog.h"

static const char *const leaves_hex[8] = {
	"",
	"00",
	"10",
	"2021",
	"3031",
	"40414243",
	"5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

static const char *const roots_hex[9] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct vec {
	uint64_t a, b;
	int n;
	const char *h[3];
};

/* (leaf, size, path) */
static const struct vec inclusion[] = {
	{0, 1, 0, {NULL}},
	{0,
	 8,
	 3,
	 {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{5,
	 8,
	 3,
	 {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
	{1,
	 5,
	 3,
	 {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

/* (old size, new size, proof) */
static const struct vec consistency[] = {
	{1, 1, 0, {NULL}},
	{1,
	 8,
	 3,
	 {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{6,
	 8,
	 3,
	 {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2,
	 5,
	 2,
	 {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static void unhex(const char *hex, unsigned char *out, size_t *len)
{
	size_t n = 0;

	sodium_hex2bin(out, 64, hex, strlen(hex), NULL, &n, NULL);
	if (len != NULL)
		*len = n;
}

static kiln_hash leaves[8], roots[9];

static void test_known_answers(void)
{
	unsigned char buf[64];
	kiln_hash got, proof[KILN_TLOG_PROOF_MAX], want;
	size_t n;

	for (int i = 0; i < 8; i++) {
		unhex(leaves_hex[i], buf, &n);
		kiln_tlog_leaf_hash(buf, n, leaves[i]);
	}
	for (int i = 0; i <= 8; i++) {
		unhex(roots_hex[i], roots[i], NULL);
		kiln_tlog_root(leaves, (uint64_t)i, got);
		ok(memcmp(got, roots[i], 32) == 0, "root of the first %d leaves", i);
	}
	for (size_t v = 0; v < sizeof(inclusion) / sizeof(inclusion[0]); v++) {
		const struct vec *t = &inclusion[v];
		int np = kiln_tlog_inclusion_proof(leaves, t->b, t->a, proof);
		bool same = np == t->n;

		for (int i = 0; same && i < np; i++) {
			unhex(t->h[i], want, NULL);
			same = memcmp(want, proof[i], 32) == 0;
		}
		ok(same, "inclusion proof of leaf %d in %d is the known one", (int)t->a, (int)t->b);
		ok(kiln_tlog_verify_inclusion(t->a, t->b, leaves[t->a], proof, (size_t)np,
					      roots[t->b]),
		   "and verifies");
		if (np > 0) {
			proof[np - 1][3] ^= 1;
			ok(!kiln_tlog_verify_inclusion(t->a, t->b, leaves[t->a], proof, (size_t)np,
						       roots[t->b]),
			   "a changed proof does not verify");
		}
	}
	for (size_t v = 0; v < sizeof(consistency) / sizeof(consistency[0]); v++) {
		const struct vec *t = &consistency[v];
		int np = kiln_tlog_consistency_proof(leaves, t->b, t->a, proof);
		bool same = np == t->n;

		for (int i = 0; same && i < np; i++) {
			unhex(t->h[i], want, NULL);
			same = memcmp(want, proof[i], 32) == 0;
		}
		ok(same, "consistency proof %d -> %d is the known one", (int)t->a, (int)t->b);
		ok(kiln_tlog_verify_consistency(t->a, t->b, proof, (size_t)np, roots[t->a],
						roots[t->b]),
		   "and verifies");
		if (t->a != t->b)
			ok(!kiln_tlog_verify_consistency(t->a, t->b, proof, (size_t)np, roots[t->a],
							 roots[t->a]),
			   "not against a wrong new root");
	}
}

/* Every index and size pair up to 70 leaves: generated proofs verify,
 * against the wrong root or index they do not. */
static void test_all_shapes(void)
{
	enum { N = 70 };
	static kiln_hash l[N], r[N + 1];
	kiln_hash proof[KILN_TLOG_PROOF_MAX];
	int bad = 0, rejected = 0, total = 0;

	for (int i = 0; i < N; i++) {
		unsigned char b = (unsigned char)i;
		kiln_tlog_leaf_hash(&b, 1, l[i]);
	}
	for (int n = 0; n <= N; n++)
		kiln_tlog_root(l, (uint64_t)n, r[n]);
	for (int n = 1; n <= N; n++) {
		for (int i = 0; i < n; i++) {
			int np = kiln_tlog_inclusion_proof(l, (uint64_t)n, (uint64_t)i, proof);
			total++;
			if (np < 0 || !kiln_tlog_verify_inclusion((uint64_t)i, (uint64_t)n, l[i],
								  proof, (size_t)np, r[n]))
				bad++;
			if (n > 1 &&
			    !kiln_tlog_verify_inclusion((uint64_t)((i + 1) % n), (uint64_t)n, l[i],
							proof, (size_t)np, r[n]))
				rejected++;
		}
		for (int m = 1; m <= n; m++) {
			int np = kiln_tlog_consistency_proof(l, (uint64_t)n, (uint64_t)m, proof);
			total++;
			if (np < 0 || !kiln_tlog_verify_consistency((uint64_t)m, (uint64_t)n, proof,
								    (size_t)np, r[m], r[n]))
				bad++;
			if (m < n && np > 0) {
				proof[0][0] ^= 0x80;
				if (kiln_tlog_verify_consistency((uint64_t)m, (uint64_t)n, proof,
								 (size_t)np, r[m], r[n]))
					bad++;
			}
		}
	}
	is_int(bad, 0, "all %d inclusion and consistency proofs up to %d leaves verify", total, N);
	ok(rejected > 0, "proofs for the wrong index are refused");
	ok(!kiln_tlog_verify_consistency(5, 4, proof, 0, r[5], r[4]), "a shrinking tree: refused");
}

static void test_tiles(void)
{
	char p[128];
	int level;
	uint64_t n;
	unsigned w;

	kiln_tlog_tile_path(0, 1234067, 0, p, sizeof(p));
	is_str(p, "tile/0/x001/x234/067", "tile path of 1234067");
	kiln_tlog_tile_path(-1, 5, 3, p, sizeof(p));
	is_str(p, "tile/entries/005.p/3", "partial entries tile");
	kiln_tlog_tile_path(1, 1000, 256, p, sizeof(p));
	is_str(p, "tile/1/x001/000", "full tile at level 1");
	ok(kiln_tlog_tile_parse("tile/0/x001/x234/067", &level, &n, &w) == 0 && level == 0 &&
		   n == 1234067 && w == 0,
	   "parse it back");
	ok(kiln_tlog_tile_parse("tile/entries/005.p/3", &level, &n, &w) == 0 && level == -1 &&
		   n == 5 && w == 3,
	   "parse a partial entries tile");
	ok(kiln_tlog_tile_parse("tile/0/x000/005", &level, &n, &w) < 0, "non-canonical: refused");
	ok(kiln_tlog_tile_parse("tile/0/5", &level, &n, &w) < 0, "short index: refused");
	ok(kiln_tlog_tile_parse("tile/0/005.p/256", &level, &n, &w) < 0, "width 256: refused");
	ok(kiln_tlog_tile_parse("tile/0/005.p/0", &level, &n, &w) < 0, "width 0: refused");
	ok(kiln_tlog_tile_parse("tile/00/005", &level, &n, &w) < 0, "level 00: refused");
	ok(kiln_tlog_tile_parse("tile/0/../005", &level, &n, &w) < 0, "dots: refused");
	{
		const unsigned char b[] = {0, 2, 'h', 'i', 0, 0, 0, 1, 'x'};
		size_t off[4], len[4];
		ok(kiln_tlog_bundle_split(b, sizeof(b), off, len, 4) == 3 && len[0] == 2 &&
			   len[1] == 0 && len[2] == 1 && b[off[2]] == 'x',
		   "bundle of three entries");
		ok(kiln_tlog_bundle_split(b, sizeof(b) - 1, off, len, 4) < 0,
		   "truncated bundle: refused");
	}
}

static void test_notes(void)
{
	struct kiln_tlog_key k, v;
	struct kiln_tlog_checkpoint c = {.size = 8}, got;
	struct kiln_error *err = NULL;
	char vkey[400], *note;

	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "kiln/test");
	crypto_sign_keypair(k.pk, k.sk);
	k.has_sk = true;
	k.id = kiln_tlog_key_id(k.name, k.pk);
	snprintf(c.origin, sizeof(c.origin), "%s", k.name);
	memcpy(c.root, roots[8], 32);
	kiln_tlog_vkey_format(&k, vkey, sizeof(vkey));
	ok(kiln_tlog_vkey_parse(vkey, &v, &err) == 0 && v.id == k.id, "verifier key round trip");
	kiln_error_free(&err);
	note = kiln_tlog_checkpoint_sign(&k, &c);
	ok(note != NULL && strncmp(note,
				   "kiln/test\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n"
				   "\xe2\x80\x94 kiln/test ",
				   66) == 0,
	   "checkpoint text");
	ok(kiln_tlog_checkpoint_open(&v, note, strlen(note), &got, &err) == 0 && got.size == 8 &&
		   memcmp(got.root, roots[8], 32) == 0,
	   "checkpoint verifies and parses");
	kiln_error_free(&err);
	note[10] = '9';
	ok(kiln_tlog_checkpoint_open(&v, note, strlen(note), &got, &err) < 0,
	   "a changed size: refused");
	kiln_error_free(&err);
	free(note);
	ok(kiln_tlog_vkey_parse("kiln/test+00000000+AQ==", &v, &err) < 0, "bad key: refused");
	kiln_error_free(&err);
}

struct appender {
	struct kiln_db *db;
	int id, bad;
};

static void *append_many(void *arg)
{
	struct appender *a = arg;
	struct kiln_error *err = NULL;

	for (int i = 0; i < 40; i++) {
		char e[48];
		uint64_t idx;
		int n = snprintf(e, sizeof(e), "{\"thread\":%d,\"i\":%d}", a->id, i);

		if (kiln_auditlog_append(a->db, e, (size_t)n, &idx, &err) < 0)
			a->bad++;
		kiln_error_free(&err);
	}
	return NULL;
}

struct collect {
	kiln_hash *l;
	uint64_t n;
	bool gap;
};

static int collect_leaf(void *ctx, uint64_t idx, const unsigned char *e, size_t len)
{
	struct collect *c = ctx;

	if (idx != c->n || c->n >= 160)
		c->gap = true;
	else
		kiln_tlog_leaf_hash(e, len, c->l[c->n++]);
	return 0;
}

/* Four threads, four handles, appending at once: every entry gets its own
 * index and the stored subtree hashes match the entries. */
static void test_concurrent(void)
{
	char dir[] = "/tmp/kiln-test-tlog-XXXXXX", path[128], cmd[256];
	struct appender a[4];
	pthread_t t[4];
	struct kiln_error *err = NULL;
	static kiln_hash l[160];
	struct collect c = {.l = l};
	kiln_hash r, want;
	uint64_t n = 0;
	int bad = 0;

	if (mkdtemp(dir) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/kiln.db", dir);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct appender){.id = i};
		if (kiln_db_open(path, &a[i].db, &err) < 0)
			bad++;
		kiln_error_free(&err);
	}
	if (bad == 0) {
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, append_many, &a[i]);
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			bad += a[i].bad;
		}
	}
	is_int(bad, 0, "4 threads x 40 appends: none failed");
	ok(kiln_auditlog_size(a[0].db, &n, &err) == 0 && n == 160, "160 entries (%d)", (int)n);
	kiln_error_free(&err);
	ok(kiln_auditlog_each(a[0].db, 0, 0, collect_leaf, &c, &err) == 0 && !c.gap && c.n == 160,
	   "indexes 0..159 without a gap");
	kiln_error_free(&err);
	kiln_tlog_root(l, c.n, want);
	ok(kiln_auditlog_root(a[0].db, 160, r, &err) == 0 && memcmp(r, want, 32) == 0,
	   "the stored tree head is the entries' tree head");
	kiln_error_free(&err);
	for (int i = 0; i < 4; i++)
		kiln_db_close(a[i].db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
}

static void test_store(void)
{
	char dir[] = "/tmp/kiln-test-tlog-XXXXXX", path[128];
	struct kiln_db *db = NULL;
	struct kiln_error *err = NULL;
	static kiln_hash l[300];
	kiln_hash r, want;
	int bad = 0;

	if (mkdtemp(dir) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/kiln.db", dir);
	ok(kiln_db_open(path, &db, &err) == 0, "open a database");
	kiln_error_free(&err);
	if (db == NULL)
		return;
	for (int i = 0; i < 300; i++) {
		char e[32];
		uint64_t idx = 0;
		int n = snprintf(e, sizeof(e), "{\"n\":%d}", i);

		kiln_tlog_leaf_hash(e, (size_t)n, l[i]);
		if (kiln_auditlog_append(db, e, (size_t)n, &idx, &err) < 0 || idx != (uint64_t)i)
			bad++;
		kiln_error_free(&err);
		kiln_tlog_root(l, (uint64_t)i + 1, want);
		if (kiln_auditlog_root(db, (uint64_t)i + 1, r, &err) < 0 || memcmp(r, want, 32))
			bad++;
		kiln_error_free(&err);
	}
	is_int(bad, 0, "300 appends: every stored tree head equals the computed one");
	{
		kiln_hash t[256];
		ok(kiln_auditlog_hashes(db, 8, 0, 1, t, &err) == 0 &&
			   (kiln_tlog_root(l, 256, want), memcmp(t[0], want, 32) == 0),
		   "level-8 hash is the head of the first 256 leaves");
		kiln_error_free(&err);
	}
	{
		/* Inside the caller's transaction: the entry goes with it. */
		sqlite3 *h = kiln_db_sqlite(db);
		uint64_t idx = 0, n = 0;

		sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		ok(kiln_auditlog_append(db, "{}", 2, &idx, &err) == 0 && idx == 300,
		   "append inside a transaction (a savepoint)");
		kiln_error_free(&err);
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
		ok(kiln_auditlog_size(db, &n, &err) == 0 && n == 300,
		   "rolled back with the caller's transaction");
		kiln_error_free(&err);
		sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		kiln_auditlog_append(db, "{}", 2, &idx, &err);
		kiln_error_free(&err);
		sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
		ok(kiln_auditlog_size(db, &n, &err) == 0 && n == 301 &&
			   kiln_auditlog_root(db, 301, r, &err) == 0,
		   "committed with it, subtree hashes and all");
		kiln_error_free(&err);
	}
	ok(kiln_auditlog_checkpoint_add(db, 5, "a", &err) == 0, "store a checkpoint");
	kiln_error_free(&err);
	ok(kiln_auditlog_checkpoint_add(db, 5, "b", &err) < 0, "not one of the same size");
	kiln_error_free(&err);
	kiln_db_close(db);
	{
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", dir);
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_known_answers();
	test_all_shapes();
	test_tiles();
	test_notes();
	test_store();
	test_concurrent();
	return tap_done();
}
