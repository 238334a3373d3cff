/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Merkle tree, tiles and signed checkpoints of the audit log (tlog.h).
 * The tree algorithms follow RFC 6962 section 2.1 literally (MTH, PATH,
 * SUBPROOF over arrays of leaf hashes, split at the largest power of two
 * smaller than n) and the verifiers RFC 9162 sections 2.1.3.2 and 2.1.4.2,
 * so that the two sides are independent of each other.
 */
#include "trust/tlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* ---- hashing ---- */

void kiln_tlog_leaf_hash(const void *entry, size_t len, kiln_hash out)
{
	crypto_hash_sha256_state st;
	unsigned char z = 0x00;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &z, 1);
	crypto_hash_sha256_update(&st, entry, len);
	crypto_hash_sha256_final(&st, out);
}

void kiln_tlog_node_hash(const kiln_hash left, const kiln_hash right, kiln_hash out)
{
	unsigned char buf[1 + 2 * KILN_TLOG_HASH];

	buf[0] = 0x01;
	memcpy(buf + 1, left, KILN_TLOG_HASH);
	memcpy(buf + 1 + KILN_TLOG_HASH, right, KILN_TLOG_HASH);
	crypto_hash_sha256(out, buf, sizeof(buf));
}

/* The largest power of two smaller than n (n > 1). */
static uint64_t split_point(uint64_t n)
{
	uint64_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

static void mth(const kiln_hash *d, uint64_t n, kiln_hash out)
{
	kiln_hash l, r;
	uint64_t k;

	if (n == 0) {
		crypto_hash_sha256(out, (const unsigned char *)"", 0);
		return;
	}
	if (n == 1) {
		memcpy(out, d[0], KILN_TLOG_HASH);
		return;
	}
	k = split_point(n);
	mth(d, k, l);
	mth(d + k, n - k, r);
	kiln_tlog_node_hash(l, r, out);
}

void kiln_tlog_root(const kiln_hash *leaves, uint64_t n, kiln_hash out)
{
	mth(leaves, n, out);
}

/* PATH(m, D[n]), appending to proof[*np]. */
static void path(const kiln_hash *d, uint64_t n, uint64_t m, kiln_hash *proof, int *np)
{
	uint64_t k;

	if (n <= 1)
		return;
	k = split_point(n);
	if (m < k) {
		path(d, k, m, proof, np);
		mth(d + k, n - k, proof[(*np)++]);
	} else {
		path(d + k, n - k, m - k, proof, np);
		mth(d, k, proof[(*np)++]);
	}
}

int kiln_tlog_inclusion_proof(const kiln_hash *leaves, uint64_t n, uint64_t index, kiln_hash *proof)
{
	int np = 0;

	if (index >= n)
		return -1;
	path(leaves, n, index, proof, &np);
	return np;
}

/* SUBPROOF(m, D[n], b). */
static void subproof(const kiln_hash *d, uint64_t n, uint64_t m, bool b, kiln_hash *proof, int *np)
{
	uint64_t k;

	if (m == n) {
		if (!b)
			mth(d, n, proof[(*np)++]);
		return;
	}
	k = split_point(n);
	if (m <= k) {
		subproof(d, k, m, b, proof, np);
		mth(d + k, n - k, proof[(*np)++]);
	} else {
		subproof(d + k, n - k, m - k, false, proof, np);
		mth(d, k, proof[(*np)++]);
	}
}

int kiln_tlog_consistency_proof(const kiln_hash *leaves, uint64_t n, uint64_t m, kiln_hash *proof)
{
	int np = 0;

	if (m == 0 || m > n)
		return -1;
	subproof(leaves, n, m, true, proof, &np);
	return np;
}

/* ---- verification (RFC 9162) ---- */

bool kiln_tlog_verify_inclusion(uint64_t index, uint64_t size, const kiln_hash leaf,
				const kiln_hash *proof, size_t nproof, const kiln_hash root)
{
	uint64_t fn, sn;
	kiln_hash r;

	if (index >= size)
		return false;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, KILN_TLOG_HASH);
	for (size_t i = 0; i < nproof; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			kiln_tlog_node_hash(proof[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			kiln_tlog_node_hash(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && sodium_memcmp(r, root, KILN_TLOG_HASH) == 0;
}

bool kiln_tlog_verify_consistency(uint64_t size1, uint64_t size2, const kiln_hash *proof,
				  size_t nproof, const kiln_hash root1, const kiln_hash root2)
{
	uint64_t fn, sn;
	kiln_hash fr, sr;
	size_t i = 0;

	if (size1 > size2)
		return false;
	if (size1 == size2)
		return nproof == 0 && sodium_memcmp(root1, root2, KILN_TLOG_HASH) == 0;
	if (size1 == 0)
		return nproof == 0;
	if (nproof == 0)
		return false;
	/* A first tree whose size is a power of two is a complete subtree:
	 * its head is the first element of the path. */
	if ((size1 & (size1 - 1)) == 0) {
		memcpy(fr, root1, KILN_TLOG_HASH);
	} else {
		memcpy(fr, proof[0], KILN_TLOG_HASH);
		i = 1;
	}
	memcpy(sr, fr, KILN_TLOG_HASH);
	fn = size1 - 1;
	sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < nproof; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			kiln_tlog_node_hash(proof[i], fr, fr);
			kiln_tlog_node_hash(proof[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			kiln_tlog_node_hash(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && sodium_memcmp(fr, root1, KILN_TLOG_HASH) == 0 &&
	       sodium_memcmp(sr, root2, KILN_TLOG_HASH) == 0;
}

int kiln_tlog_subtrees(uint64_t n, int levels[64], uint64_t idx[64])
{
	uint64_t pos = 0;
	int k = 0;

	for (int l = 63; l >= 0; l--) {
		if (!(n & ((uint64_t)1 << l)))
			continue;
		levels[k] = l;
		idx[k] = pos >> l;
		pos += (uint64_t)1 << l;
		k++;
	}
	return k;
}

/* ---- tiles ---- */

static int tile_index(uint64_t n, char *buf, size_t len)
{
	char groups[8][4];
	int ng = 0, off = 0;

	do {
		snprintf(groups[ng++], sizeof(groups[0]), "%03u", (unsigned)(n % 1000));
		n /= 1000;
	} while (n > 0);
	for (int i = ng - 1; i >= 0; i--) {
		int w = snprintf(buf + off, len - (size_t)off, "%s%s%s", i == ng - 1 ? "" : "/",
				 i > 0 ? "x" : "", groups[i]);
		if (w < 0 || (size_t)w >= len - (size_t)off)
			return -1;
		off += w;
	}
	return 0;
}

int kiln_tlog_tile_path(int level, uint64_t n, unsigned width, char *buf, size_t len)
{
	char idx[64];
	int w;

	if (tile_index(n, idx, sizeof(idx)) < 0)
		return -1;
	if (level < 0)
		w = snprintf(buf, len, "tile/entries/%s", idx);
	else
		w = snprintf(buf, len, "tile/%d/%s", level, idx);
	if (w < 0 || (size_t)w >= len)
		return -1;
	if (width > 0 && width < KILN_TLOG_TILE_W) {
		int w2 = snprintf(buf + w, len - (size_t)w, ".p/%u", width);
		if (w2 < 0 || (size_t)w2 >= len - (size_t)w)
			return -1;
	}
	return 0;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

int kiln_tlog_tile_parse(const char *p, int *level, uint64_t *n, unsigned *width)
{
	char canon[128];
	const char *rest;
	uint64_t v = 0;

	if (strncmp(p, "tile/", 5) != 0)
		return -1;
	p += 5;
	if (strncmp(p, "entries/", 8) == 0) {
		*level = -1;
		rest = p + 8;
	} else {
		const char *sl = strchr(p, '/');
		if (sl == NULL || !digits(p, (size_t)(sl - p)) || sl - p > 2)
			return -1;
		*level = atoi(p);
		if (*level > 63 || (sl - p == 2 && p[0] == '0'))
			return -1;
		rest = sl + 1;
	}
	*width = 0;
	/* the index: (x\d\d\d/)*\d\d\d */
	for (const char *q = rest;;) {
		if (*q == 'x') {
			if (!digits(q + 1, 3) || q[4] != '/')
				return -1;
			if (v > UINT64_MAX / 1000)
				return -1;
			v = v * 1000 +
			    (uint64_t)((q[1] - '0') * 100 + (q[2] - '0') * 10 + (q[3] - '0'));
			q += 5;
			continue;
		}
		if (!digits(q, 3) || (q[3] != '\0' && q[3] != '.'))
			return -1;
		if (v > UINT64_MAX / 1000)
			return -1;
		v = v * 1000 + (uint64_t)((q[0] - '0') * 100 + (q[1] - '0') * 10 + (q[2] - '0'));
		if (q[3] == '.') {
			unsigned long w;
			char *end;

			if (strncmp(q + 3, ".p/", 3) != 0 || !digits(q + 6, strlen(q + 6)) ||
			    strlen(q + 6) > 3)
				return -1;
			w = strtoul(q + 6, &end, 10);
			if (*end != '\0' || w < 1 || w > 255)
				return -1;
			*width = (unsigned)w;
		}
		break;
	}
	*n = v;
	/* Only the canonical spelling (no "x000/" prefix, no "07" level). */
	if (kiln_tlog_tile_path(*level, v, *width, canon, sizeof(canon)) < 0 ||
	    strcmp(canon + 5, p) != 0)
		return -1;
	return 0;
}

int kiln_tlog_bundle_split(const unsigned char *data, size_t len, size_t *off, size_t *elen,
			   int max)
{
	size_t pos = 0;
	int k = 0;

	while (pos < len) {
		size_t l;

		if (k >= max || len - pos < 2)
			return -1;
		l = ((size_t)data[pos] << 8) | data[pos + 1];
		pos += 2;
		if (len - pos < l)
			return -1;
		off[k] = pos;
		elen[k] = l;
		k++;
		pos += l;
	}
	return k;
}

/* ---- keys and notes ---- */

bool kiln_tlog_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= KILN_TLOG_ORIGIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] <= ' ' || name[i] > '~' || name[i] == '+')
			return false;
	return true;
}

uint32_t kiln_tlog_key_id(const char *name, const unsigned char pk[32])
{
	crypto_hash_sha256_state st;
	unsigned char h[32], sep[2] = {'\n', 0x01};

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)name, strlen(name));
	crypto_hash_sha256_update(&st, sep, 2);
	crypto_hash_sha256_update(&st, pk, 32);
	crypto_hash_sha256_final(&st, h);
	return ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
}

void kiln_tlog_vkey_format(const struct kiln_tlog_key *k, char *buf, size_t len)
{
	unsigned char raw[33];
	char b64[64];

	raw[0] = 0x01;
	memcpy(raw + 1, k->pk, 32);
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	snprintf(buf, len, "%s+%08" PRIx32 "+%s", k->name, k->id, b64);
}

int kiln_tlog_vkey_parse(const char *text, struct kiln_tlog_key *k, struct kiln_error **err)
{
	const char *p1, *p2;
	unsigned char raw[64];
	size_t rawlen = 0, tlen = strlen(text);
	char *end;
	unsigned long id;

	while (tlen > 0 && (text[tlen - 1] == '\n' || text[tlen - 1] == '\r'))
		tlen--;
	memset(k, 0, sizeof(*k));
	p1 = memchr(text, '+', tlen);
	p2 = p1 ? memchr(p1 + 1, '+', tlen - (size_t)(p1 + 1 - text)) : NULL;
	if (p1 == NULL || p2 == NULL || (size_t)(p1 - text) >= sizeof(k->name) || p2 - p1 != 9)
		return kiln_error_set(err, EINVAL,
				      "verifier key: expected name+keyid+base64(0x01||pubkey)");
	memcpy(k->name, text, (size_t)(p1 - text));
	if (!kiln_tlog_name_valid(k->name))
		return kiln_error_set(err, EINVAL, "verifier key: bad key name");
	{
		char hex[9];
		memcpy(hex, p1 + 1, 8);
		hex[8] = '\0';
		id = strtoul(hex, &end, 16);
		if (*end != '\0' || strspn(hex, "0123456789abcdef") != 8)
			return kiln_error_set(err, EINVAL, "verifier key: bad key id");
	}
	if (sodium_base642bin(raw, sizeof(raw), p2 + 1, tlen - (size_t)(p2 + 1 - text), NULL,
			      &rawlen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    rawlen != 33 || raw[0] != 0x01)
		return kiln_error_set(err, EINVAL,
				      "verifier key: not an Ed25519 key (0x01 || 32 bytes)");
	memcpy(k->pk, raw + 1, 32);
	k->id = kiln_tlog_key_id(k->name, k->pk);
	if (k->id != (uint32_t)id)
		return kiln_error_set(err, EINVAL,
				      "verifier key: the key id does not match the key");
	return 0;
}

void kiln_tlog_b64_hash(const kiln_hash h, char *buf, size_t len)
{
	sodium_bin2base64(buf, len, h, KILN_TLOG_HASH, sodium_base64_VARIANT_ORIGINAL);
}

int kiln_tlog_b64_hash_parse(const char *s, size_t len, kiln_hash out)
{
	size_t n = 0;
	const char *end = NULL;

	if (len != 44)
		return -1;
	if (sodium_base642bin(out, KILN_TLOG_HASH, s, len, NULL, &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != KILN_TLOG_HASH || end != s + len)
		return -1;
	return 0;
}

#define EM_DASH "\xe2\x80\x94"

char *kiln_tlog_checkpoint_sign(const struct kiln_tlog_key *k, const struct kiln_tlog_checkpoint *c)
{
	char body[KILN_TLOG_ORIGIN_MAX + 128], b64root[64], b64sig[128];
	unsigned char sig[4 + crypto_sign_BYTES];
	size_t blen, total;
	char *out;

	if (!k->has_sk)
		return NULL;
	kiln_tlog_b64_hash(c->root, b64root, sizeof(b64root));
	blen = (size_t)snprintf(body, sizeof(body), "%s\n%" PRIu64 "\n%s\n", c->origin, c->size,
				b64root);
	if (blen >= sizeof(body))
		return NULL;
	sig[0] = (unsigned char)(k->id >> 24);
	sig[1] = (unsigned char)(k->id >> 16);
	sig[2] = (unsigned char)(k->id >> 8);
	sig[3] = (unsigned char)k->id;
	crypto_sign_detached(sig + 4, NULL, (const unsigned char *)body, blen, k->sk);
	sodium_bin2base64(b64sig, sizeof(b64sig), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	total = blen + 1 + strlen(EM_DASH) + 1 + strlen(k->name) + 1 + strlen(b64sig) + 2;
	out = malloc(total);
	if (out == NULL)
		return NULL;
	snprintf(out, total, "%s\n" EM_DASH " %s %s\n", body, k->name, b64sig);
	return out;
}

static int parse_body(const char *body, size_t blen, struct kiln_tlog_checkpoint *c,
		      struct kiln_error **err)
{
	const char *l1, *l2, *l3;
	size_t n;

	memset(c, 0, sizeof(*c));
	l1 = memchr(body, '\n', blen);
	if (l1 == NULL || l1 == body || (size_t)(l1 - body) >= sizeof(c->origin))
		return kiln_error_set(err, EINVAL, "checkpoint: bad origin line");
	memcpy(c->origin, body, (size_t)(l1 - body));
	l2 = memchr(l1 + 1, '\n', blen - (size_t)(l1 + 1 - body));
	if (l2 == NULL)
		return kiln_error_set(err, EINVAL, "checkpoint: no tree size line");
	n = (size_t)(l2 - (l1 + 1));
	if (!digits(l1 + 1, n) || n > 19 || (n > 1 && l1[1] == '0'))
		return kiln_error_set(err, EINVAL, "checkpoint: bad tree size");
	for (size_t i = 0; i < n; i++)
		c->size = c->size * 10 + (uint64_t)(l1[1 + i] - '0');
	l3 = memchr(l2 + 1, '\n', blen - (size_t)(l2 + 1 - body));
	if (l3 == NULL || kiln_tlog_b64_hash_parse(l2 + 1, (size_t)(l3 - (l2 + 1)), c->root) < 0)
		return kiln_error_set(err, EINVAL, "checkpoint: bad root hash");
	/* Extension lines (l3 + 1 .. end) are allowed and ignored. */
	return 0;
}

int kiln_tlog_checkpoint_open(const struct kiln_tlog_key *k, const char *note, size_t len,
			      struct kiln_tlog_checkpoint *c, struct kiln_error **err)
{
	const char *sigs = NULL, *p, *end = note + len;
	size_t blen;
	bool ok = false;

	if (len == 0 || note[len - 1] != '\n' || memchr(note, '\0', len) != NULL)
		return kiln_error_set(err, EINVAL, "checkpoint: not a signed note");
	/* The signatures follow the last blank line. */
	for (p = note; p + 1 < end; p++)
		if (p[0] == '\n' && p[1] == '\n')
			sigs = p + 2;
	if (sigs == NULL)
		return kiln_error_set(err, EINVAL, "checkpoint: no signature block");
	blen = (size_t)(sigs - 1 - note);
	for (p = sigs; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *sp;
		unsigned char raw[4 + crypto_sign_BYTES];
		size_t namelen, rawlen = 0;
		uint32_t id;

		if (nl == NULL)
			break;
		if ((size_t)(nl - p) < strlen(EM_DASH " ") ||
		    memcmp(p, EM_DASH " ", strlen(EM_DASH " ")) != 0)
			return kiln_error_set(err, EINVAL, "checkpoint: malformed signature line");
		p += strlen(EM_DASH " ");
		sp = memchr(p, ' ', (size_t)(nl - p));
		if (sp == NULL)
			return kiln_error_set(err, EINVAL, "checkpoint: malformed signature line");
		namelen = (size_t)(sp - p);
		if (namelen == strlen(k->name) && memcmp(p, k->name, namelen) == 0 &&
		    sodium_base642bin(raw, sizeof(raw), sp + 1, (size_t)(nl - sp - 1), NULL,
				      &rawlen, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    rawlen == sizeof(raw)) {
			id = ((uint32_t)raw[0] << 24) | ((uint32_t)raw[1] << 16) |
			     ((uint32_t)raw[2] << 8) | raw[3];
			if (id == k->id &&
			    crypto_sign_verify_detached(raw + 4, (const unsigned char *)note, blen,
							k->pk) == 0)
				ok = true;
		}
		p = nl + 1;
	}
	if (!ok)
		return kiln_error_set(err, EPERM,
				      "checkpoint: no valid signature by the log key %s+%08" PRIx32,
				      k->name, k->id);
	if (parse_body(note, blen, c, err) < 0)
		return -1;
	if (strcmp(c->origin, k->name) != 0)
		return kiln_error_set(err, EINVAL,
				      "checkpoint: origin '%s' is not the log key's name '%s'",
				      c->origin, k->name);
	return 0;
}
