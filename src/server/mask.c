/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming masker (mask.h). */
#include "server/mask.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#define MAX_PATTERNS 4096

struct pattern {
	/* sodium_malloc'd */
	unsigned char *s;
	size_t len;
};

struct kiln_masker {
	struct pattern *p;
	size_t n, cap;
	size_t maxlen;
	/* first[c]: some pattern starts with byte c */
	bool first[256];
	char repl[4];
};

struct kiln_mask_stream {
	const struct kiln_masker *m;
	/* held-back bytes (sodium_malloc'd, maxlen bytes) */
	unsigned char *held;
	size_t nheld;
	/* scratch: held + chunk */
	unsigned char *work;
	size_t workcap;
};

/* Candidates for the replacement, in order of preference. */
static const char repl_chars[] = "*#~^|!`@";

struct kiln_masker *kiln_masker_new(void)
{
	struct kiln_masker *m = calloc(1, sizeof(*m));

	if (m != NULL)
		memcpy(m->repl, "***", 4);
	return m;
}

void kiln_masker_free(struct kiln_masker *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		sodium_free(m->p[i].s);
	free(m->p);
	free(m);
}

size_t kiln_masker_count(const struct kiln_masker *m)
{
	return m->n;
}

const char *kiln_masker_replacement(const struct kiln_masker *m)
{
	return m->repl;
}

static int add_pattern(struct kiln_masker *m, const unsigned char *s, size_t len)
{
	struct pattern *np;

	if (len == 0)
		return 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->p[i].len == len && memcmp(m->p[i].s, s, len) == 0)
			return 0;
	if (m->n >= MAX_PATTERNS)
		return -1;
	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 16;
		np = realloc(m->p, nc * sizeof(*np));
		if (np == NULL)
			return -1;
		m->p = np;
		m->cap = nc;
	}
	m->p[m->n].s = sodium_malloc(len);
	if (m->p[m->n].s == NULL)
		return -1;
	memcpy(m->p[m->n].s, s, len);
	m->p[m->n].len = len;
	m->n++;
	m->first[s[0]] = true;
	if (len > m->maxlen)
		m->maxlen = len;
	return 0;
}

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The base64 characters of (a zero bytes, value) that depend on value
 * alone: character i covers bits [6i, 6i+6) of the stream. */
static int add_base64(struct kiln_masker *m, const unsigned char *v, size_t len, size_t a,
		      const char *alphabet)
{
	size_t bits = 8 * (a + len), nchars = bits / 6, first = (8 * a + 5) / 6, k = 0;
	unsigned char *out = sodium_malloc(nchars + 1);
	int r;

	if (out == NULL)
		return -1;
	for (size_t i = first; i < nchars; i++) {
		uint32_t six = 0;
		for (size_t b = 0; b < 6; b++) {
			size_t bit = 6 * i + b, byte = bit / 8;
			unsigned char c = byte < a ? 0 : v[byte - a];
			six = (six << 1) | ((c >> (7 - bit % 8)) & 1);
		}
		out[k++] = (unsigned char)alphabet[six];
	}
	r = add_pattern(m, out, k);
	sodium_free(out);
	return r;
}

static int add_hex(struct kiln_masker *m, const unsigned char *v, size_t len, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	unsigned char *out = sodium_malloc(2 * len);
	int r;

	if (out == NULL)
		return -1;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = (unsigned char)digits[v[i] >> 4];
		out[2 * i + 1] = (unsigned char)digits[v[i] & 15];
	}
	r = add_pattern(m, out, 2 * len);
	sodium_free(out);
	return r;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int add_url(struct kiln_masker *m, const unsigned char *v, size_t len, bool upper, bool plus)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	unsigned char *out = sodium_malloc(3 * len);
	size_t k = 0;
	int r;

	if (out == NULL)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (unreserved(v[i])) {
			out[k++] = v[i];
		} else if (plus && v[i] == ' ') {
			out[k++] = '+';
		} else {
			out[k++] = '%';
			out[k++] = (unsigned char)digits[v[i] >> 4];
			out[k++] = (unsigned char)digits[v[i] & 15];
		}
	}
	r = add_pattern(m, out, k);
	sodium_free(out);
	return r;
}

static int add_json(struct kiln_masker *m, const unsigned char *v, size_t len, size_t flags)
{
	json_t *s = json_stringn((const char *)v, len);
	char *text;
	size_t n;
	int r;

	/* Not UTF-8: no JSON encoder writes it as a string. */
	if (s == NULL)
		return 0;
	text = json_dumps(s, JSON_ENCODE_ANY | flags);
	json_decref(s);
	if (text == NULL)
		return -1;
	n = strlen(text);
	/* without the quotes */
	r = n >= 2 ? add_pattern(m, (unsigned char *)text + 1, n - 2) : 0;
	sodium_memzero(text, n);
	free(text);
	return r;
}

static bool char_in_patterns(const struct kiln_masker *m, char c)
{
	for (size_t i = 0; i < m->n; i++)
		if (memchr(m->p[i].s, c, m->p[i].len) != NULL)
			return true;
	return false;
}

int kiln_masker_add(struct kiln_masker *m, const unsigned char *value, size_t len)
{
	if (len == 0)
		return 0;
	if (add_pattern(m, value, len) < 0)
		return -1;
	for (size_t a = 0; a < 3; a++)
		if (add_base64(m, value, len, a, b64std) < 0 ||
		    add_base64(m, value, len, a, b64url) < 0)
			return -1;
	if (add_url(m, value, len, true, false) < 0 || add_url(m, value, len, false, false) < 0 ||
	    add_url(m, value, len, true, true) < 0 || add_json(m, value, len, 0) < 0 ||
	    add_json(m, value, len, JSON_ENSURE_ASCII) < 0 ||
	    add_json(m, value, len, JSON_ESCAPE_SLASH) < 0 ||
	    add_json(m, value, len, JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH) < 0 ||
	    add_hex(m, value, len, false) < 0 || add_hex(m, value, len, true) < 0)
		return -1;
	/* A replacement character that no pattern holds. */
	for (const char *c = repl_chars; *c; c++)
		if (!char_in_patterns(m, *c)) {
			m->repl[0] = m->repl[1] = m->repl[2] = *c;
			m->repl[3] = '\0';
			return 0;
		}
	return -1;
}

struct kiln_mask_stream *kiln_mask_stream_new(const struct kiln_masker *m)
{
	struct kiln_mask_stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->m = m;
	if (m->maxlen > 0) {
		s->held = sodium_malloc(m->maxlen);
		if (s->held == NULL) {
			free(s);
			return NULL;
		}
	}
	return s;
}

void kiln_mask_stream_free(struct kiln_mask_stream *s)
{
	if (s == NULL)
		return;
	sodium_free(s->held);
	sodium_free(s->work);
	free(s);
}

/* At position i of buf[0..n): 1 and *mlen for the longest full match, 0
 * for none, -1 when a pattern could still start here (more input needed). */
static int match_at(const struct kiln_masker *m, const unsigned char *buf, size_t i, size_t n,
		    bool final, size_t *mlen)
{
	size_t best = 0;

	for (size_t k = 0; k < m->n; k++) {
		const struct pattern *p = &m->p[k];

		if (p->s[0] != buf[i])
			continue;
		if (i + p->len <= n) {
			if (p->len > best && memcmp(buf + i, p->s, p->len) == 0)
				best = p->len;
		} else if (!final && memcmp(buf + i, p->s, n - i) == 0) {
			return -1;
		}
	}
	*mlen = best;
	return best > 0;
}

static size_t process(struct kiln_mask_stream *s, const unsigned char *buf, size_t n, bool final,
		      kiln_mask_emit_fn emit, void *ctx)
{
	const struct kiln_masker *m = s->m;
	size_t i = 0, start = 0, hits = 0, mlen = 0;

	while (i < n) {
		int r;

		if (!m->first[buf[i]]) {
			i++;
			continue;
		}
		r = match_at(m, buf, i, n, final, &mlen);
		if (r < 0) {
			/* Undecided: hold the rest (shorter than the longest
			 * pattern, since a pattern starting here did not fit). */
			if (i > start && emit)
				emit(ctx, (const char *)buf + start, i - start);
			memmove(s->held, buf + i, n - i);
			s->nheld = n - i;
			return hits;
		}
		if (r > 0) {
			if (i > start && emit)
				emit(ctx, (const char *)buf + start, i - start);
			if (emit)
				emit(ctx, m->repl, strlen(m->repl));
			hits++;
			i += mlen;
			start = i;
			continue;
		}
		i++;
	}
	if (n > start && emit)
		emit(ctx, (const char *)buf + start, n - start);
	s->nheld = 0;
	return hits;
}

size_t kiln_mask_stream_feed(struct kiln_mask_stream *s, const char *buf, size_t len,
			     kiln_mask_emit_fn emit, void *ctx)
{
	size_t need;

	if (s->m->n == 0) {
		if (len > 0 && emit)
			emit(ctx, buf, len);
		return 0;
	}
	need = s->nheld + len;
	if (len == 0)
		return 0;
	if (need > s->workcap) {
		unsigned char *nw = sodium_malloc(need);
		if (nw == NULL) {
			/* Fail closed: drop the chunk rather than pass it
			 * unmasked. */
			if (emit)
				emit(ctx, "[kiln: output dropped: out of memory while masking]\n",
				     53);
			return 0;
		}
		sodium_free(s->work);
		s->work = nw;
		s->workcap = need;
	}
	memcpy(s->work, s->held, s->nheld);
	memcpy(s->work + s->nheld, buf, len);
	s->nheld = 0;
	{
		size_t hits = process(s, s->work, need, false, emit, ctx);
		sodium_memzero(s->work, need);
		return hits;
	}
}

size_t kiln_mask_stream_finish(struct kiln_mask_stream *s, kiln_mask_emit_fn emit, void *ctx)
{
	size_t n = s->nheld, hits;
	unsigned char *tmp;

	if (n == 0)
		return 0;
	tmp = sodium_malloc(n);
	if (tmp == NULL) {
		sodium_memzero(s->held, s->nheld);
		s->nheld = 0;
		return 0;
	}
	memcpy(tmp, s->held, n);
	hits = process(s, tmp, n, true, emit, ctx);
	sodium_free(tmp);
	s->nheld = 0;
	return hits;
}

int kiln_mask_scan_fd(const struct kiln_masker *m, int fd)
{
	struct kiln_mask_stream *s;
	char buf[65536];
	size_t hits = 0;
	ssize_t n;

	if (m->n == 0)
		return 0;
	s = kiln_mask_stream_new(m);
	if (s == NULL) {
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			kiln_mask_stream_free(s);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		hits += kiln_mask_stream_feed(s, buf, (size_t)n, NULL, NULL);
		if (hits > 0)
			break;
	}
	hits += kiln_mask_stream_finish(s, NULL, NULL);
	kiln_mask_stream_free(s);
	sodium_memzero(buf, sizeof(buf));
	return hits > 0;
}

struct inplace {
	char *out;
	size_t len, cap;
};

static void inplace_emit(void *ctx, const char *b, size_t n)
{
	struct inplace *o = ctx;

	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->out + o->len, b, n);
	o->len += n;
}

size_t kiln_mask_inplace(const struct kiln_masker *m, char *buf, size_t len)
{
	struct kiln_mask_stream *s;
	struct inplace o;
	unsigned char *copy;

	if (m == NULL || m->n == 0 || len == 0)
		return len;
	s = kiln_mask_stream_new(m);
	copy = sodium_malloc(len);
	if (s == NULL || copy == NULL) {
		/* Fail closed: nothing of the text survives. */
		kiln_mask_stream_free(s);
		sodium_free(copy);
		sodium_memzero(buf, len);
		return 0;
	}
	memcpy(copy, buf, len);
	o.out = buf;
	o.len = 0;
	o.cap = len;
	process(s, copy, len, true, inplace_emit, &o);
	sodium_free(copy);
	kiln_mask_stream_free(s);
	return o.len;
}
