/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln.yml: a strict YAML loader (shared with config.c) and the job spec on
 * top of it. Everything here reads hostile text: sizes are capped before
 * libfyaml sees a byte, aliases/anchors/tags/extra documents are refused as
 * events (nothing is ever resolved), nesting is capped while the tree is
 * built, and every message quotes input only through kiln_yaml_quote().
 */
#define KILN_SPEC_INTERNAL
#include "server/spec.h"

#include <errno.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"

/* The spec needs three levels (top, resources, a scalar); the config
 * three. Anything deeper is junk, refused before it costs anything. */
#define YAML_MAX_DEPTH	   16
#define SPEC_MAX_SCRIPT	   (64 * 1024)
#define SPEC_MAX_ARTIFACTS 64
#define SPEC_MAX_ENV	   256
#define SPEC_MAX_VALUE	   (64 * 1024)
#define QUOTE_MAX	   64 /* bytes of input shown in a message */

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

/* ------------------------------------------------------------------ */
/* Messages                                                             */

int kiln_yaml_fail(struct kiln_spec_error *e, const struct kiln_ynode *n, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	e->line = n ? n->line : 0;
	e->column = n ? n->column : 0;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_at(struct kiln_spec_error *e, int line, int column, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_at(struct kiln_spec_error *e, int line, int column, const char *fmt, ...)
{
	va_list ap;

	e->line = line < 0 ? 0 : line;
	e->column = column < 0 ? 0 : column;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* C0 and C1 controls, DEL, and the line/paragraph separators terminals and
 * log viewers treat specially: never copied into a message. */
static bool cp_unsafe(uint32_t c)
{
	return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029;
}

void kiln_yaml_quote(char *buf, size_t size, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, o = 0;

	if (size == 0)
		return;
	while (i < len) {
		char tmp[16];
		size_t tn, n;
		uint32_t c = 0;

		n = kiln_utf8_decode(s + i, len - i, &c);
		if (n == 0 || cp_unsafe(c)) {
			n = n ? n : 1;
			if (c == '\n' && n == 1)
				tn = (size_t)snprintf(tmp, sizeof(tmp), "\\n");
			else if (c == '\t' && n == 1)
				tn = (size_t)snprintf(tmp, sizeof(tmp), "\\t");
			else if (n == 1)
				tn = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
			else
				tn = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04" PRIx32, c);
		} else if (c == '\\' || c == '\'') {
			tn = (size_t)snprintf(tmp, sizeof(tmp), "\\%c", (char)c);
		} else {
			memcpy(tmp, s + i, n);
			tn = n;
		}
		if (o + tn > QUOTE_MAX || o + tn + 4 > size) {
			if (o + 4 <= size) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(buf + o, tmp, tn);
		o += tn;
		i += n;
	}
	buf[o] = '\0';
}

#define QUOTE(buf, n) kiln_yaml_quote(buf, sizeof(buf), (n)->text, (n)->len)

static void fmt_size(char *buf, size_t size, uint64_t v)
{
	static const struct {
		uint64_t unit;
		char c;
	} units[] = {{TIB, 'T'}, {GIB, 'G'}, {MIB, 'M'}, {KIB, 'K'}};

	for (size_t i = 0; v != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (v % units[i].unit == 0) {
			snprintf(buf, size, "%" PRIu64 "%c", v / units[i].unit, units[i].c);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64, v);
}

static void fmt_duration(char *buf, size_t size, uint64_t v)
{
	if (v != 0 && v % 3600 == 0)
		snprintf(buf, size, "%" PRIu64 "h", v / 3600);
	else if (v != 0 && v % 60 == 0)
		snprintf(buf, size, "%" PRIu64 "m", v / 60);
	else
		snprintf(buf, size, "%" PRIu64 "s", v);
}

static void fmt_cpus(char *buf, size_t size, uint64_t milli)
{
	uint64_t frac = milli % 1000;

	if (frac == 0)
		snprintf(buf, size, "%" PRIu64, milli / 1000);
	else if (frac % 100 == 0)
		snprintf(buf, size, "%" PRIu64 ".%" PRIu64, milli / 1000, frac / 100);
	else if (frac % 10 == 0)
		snprintf(buf, size, "%" PRIu64 ".%02" PRIu64, milli / 1000, frac / 10);
	else
		snprintf(buf, size, "%" PRIu64 ".%03" PRIu64, milli / 1000, frac);
}

/* ------------------------------------------------------------------ */
/* The loader                                                           */

void kiln_yaml_free(struct kiln_ynode *n)
{
	/* Recursion is bounded by YAML_MAX_DEPTH. */
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		kiln_yaml_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static int append_kid(struct kiln_ynode *parent, struct kiln_ynode *kid)
{
	if (parent->nkids == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		struct kiln_ynode **k;

		if (cap > SIZE_MAX / sizeof(*k))
			return -1;
		k = realloc(parent->kids, cap * sizeof(*k));
		if (k == NULL)
			return -1;
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->nkids++] = kid;
	kid->parent = parent;
	return 0;
}

/* Checks the raw text before libfyaml sees it: strict UTF-8, and only the
 * characters YAML allows in a stream (c-printable: TAB, LF, CR, U+0020-7E,
 * NEL, U+00A0 and up without surrogates, U+FFFE and U+FFFF). libfyaml
 * 0.7.12 lets NUL, other controls and broken UTF-8 through, and neither C
 * strings nor JSON can carry them. Columns count characters, as libfyaml's
 * marks do. */
static int check_text(const char *text, size_t len, struct kiln_spec_error *e)
{
	const unsigned char *s = (const unsigned char *)text;
	int line = 1, column = 1;
	size_t i = 0;

	while (i < len) {
		uint32_t c = 0;
		size_t n = kiln_utf8_decode(s + i, len - i, &c);

		if (n == 0)
			return fail_at(e, line, column,
				       "invalid UTF-8 (byte 0x%02x); save the file as UTF-8", s[i]);
		if (c == 0)
			return fail_at(e, line, column, "NUL byte in the text");
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F ||
		    (c >= 0x80 && c <= 0x9F && c != 0x85) || c == 0xFFFE || c == 0xFFFF)
			return fail_at(e, line, column,
				       "control character U+%04" PRIX32 " is not allowed in YAML",
				       c);
		i += n;
		if (c == '\n' || (c == '\r' && (i == len || s[i] != '\n'))) {
			if (line == INT_MAX)
				return fail_at(e, 0, 0, "too many lines");
			line++;
			column = 1;
		} else if (column < INT_MAX) {
			column++;
		}
	}
	return 0;
}

void kiln_yaml_clamp(const char *text, size_t len, struct kiln_spec_error *e)
{
	size_t i = 0, chars = 0;
	int line = 1;

	if (e->line <= 0 || e->column <= 0) {
		e->line = e->column = 0;
		return;
	}
	while (line < e->line) {
		size_t j = i;

		while (j < len && text[j] != '\n' && text[j] != '\r')
			j++;
		if (j == len)
			break; /* past the last line: stay on it */
		if (text[j] == '\r' && j + 1 < len && text[j + 1] == '\n')
			j++;
		i = j + 1;
		line++;
	}
	for (; i < len && text[i] != '\n' && text[i] != '\r'; i++)
		if (((unsigned char)text[i] & 0xC0) != 0x80)
			chars++;
	if (line < e->line)
		e->column = (int)(chars + 1 < INT_MAX ? chars + 1 : INT_MAX);
	e->line = line;
	if ((size_t)e->column > chars + 1)
		e->column = (int)(chars + 1 < INT_MAX ? chars + 1 : INT_MAX);
}

struct yload {
	const char *text;
	size_t len;
	struct kiln_ynode *root, *cur;
	int depth, docs;
	struct fy_mark prev; /* end of the last event that had one */
};

/* libfyaml marks a block scalar ("key: |") at its content, which may be
 * lines below the indicator or, at the end of the text, past the text. Find
 * the '|' or '>' itself: between the previous token and it there can only
 * be blanks, line breaks, comments and the indicators ':', '-', '?'. The
 * walk covers text no other walk does, so all of them stay linear. */
static bool block_indicator(const struct yload *y, size_t limit, int *line, int *column,
			    size_t *pos)
{
	size_t i = y->prev.input_pos;
	int l = y->prev.line + 1, c = y->prev.column + 1;

	if (limit > y->len)
		limit = y->len;
	while (i < limit) {
		unsigned char ch = (unsigned char)y->text[i];

		if (ch == '|' || ch == '>') {
			*line = l;
			*column = c;
			*pos = i;
			return true;
		} else if (ch == '#') {
			for (; i < limit && y->text[i] != '\n' && y->text[i] != '\r'; i++)
				if (((unsigned char)y->text[i] & 0xC0) != 0x80)
					c++;
		} else if (ch == '\n' || ch == '\r') {
			if (ch == '\r' && i + 1 < limit && y->text[i + 1] == '\n')
				i++;
			i++;
			l++;
			c = 1;
		} else if (ch == ' ' || ch == '\t' || ch == ':' || ch == '-' || ch == '?') {
			i++;
			c++;
		} else {
			return false;
		}
	}
	return false;
}

static void mark_pos(const struct fy_mark *m, int *line, int *column)
{
	*line = m ? m->line + 1 : 0;
	*column = m ? m->column + 1 : 0;
}

/* libfyaml marks a quoted scalar after its quote and an alias after its
 * '*': step back so that the position is the node's first character. */
static void mark_adjust(const struct yload *y, const struct fy_mark *m, const char *chars,
			int *column)
{
	if (m != NULL && m->input_pos > 0 && m->input_pos <= y->len && *column > 1 &&
	    strchr(chars, y->text[m->input_pos - 1]) != NULL && y->text[m->input_pos - 1] != '\0')
		(*column)--;
}

static int token_fail(struct yload *y, struct fy_token *t, const char *prefix, const char *what,
		      const char *adjust, struct kiln_spec_error *e)
{
	const struct fy_mark *m = fy_token_start_mark(t);
	char q[QUOTE_MAX + 8];
	const char *txt;
	size_t tl = 0;
	int line, column;

	txt = fy_token_get_text(t, &tl);
	kiln_yaml_quote(q, sizeof(q), txt ? txt : "", txt ? tl : 0);
	mark_pos(m, &line, &column);
	mark_adjust(y, m, adjust, &column);
	return fail_at(e, line, column,
		       "%s (%s%s) are not allowed in kiln YAML; write the value out", what, prefix,
		       q);
}

/* ------------------------------------------------------------------ */
/* Scalar text                                                          */
/*
 * libfyaml 0.7.12 is trusted with the structure of a document, but not
 * with the text of quoted and block scalars: differential tests against
 * PyYAML found that fy_token_get_text() corrupts single-quoted scalars with
 * consecutive '' escapes (x''''y reads as x''' instead of x''y) and leaks
 * about 64 bytes per such escape (a hostile 64K spec leaked 1.9M per
 * parse); mangles double-quoted scalars with escaped line breaks (dropped
 * characters, invalid UTF-8); and drops line breaks of folded block
 * scalars around more-indented lines, appending a NUL instead. So the text
 * of those scalars is decoded here from the source, by the rules of YAML
 * 1.2 (7.3 flow scalars, 8.1 block scalars). Plain scalars, where no
 * difference was found, still come from libfyaml.
 */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_reserve(struct sbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom || (b->p != NULL && b->len + more + 1 <= b->cap))
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < b->len + more + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	if (b->oom)
		return;
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_repeat(struct sbuf *b, char c, size_t n)
{
	sb_reserve(b, n);
	if (b->oom)
		return;
	memset(b->p + b->len, c, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Drops what follows the first len bytes. */
static void sb_cut(struct sbuf *b, size_t len)
{
	if (b->p != NULL && len <= b->len) {
		b->len = len;
		b->p[len] = '\0';
	}
}

static void sb_add_cp(struct sbuf *b, uint32_t c)
{
	char u[4];

	if (c < 0x80) {
		u[0] = (char)c;
		sb_add(b, u, 1);
	} else if (c < 0x800) {
		u[0] = (char)(0xC0 | (c >> 6));
		u[1] = (char)(0x80 | (c & 0x3F));
		sb_add(b, u, 2);
	} else if (c < 0x10000) {
		u[0] = (char)(0xE0 | (c >> 12));
		u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		u[2] = (char)(0x80 | (c & 0x3F));
		sb_add(b, u, 3);
	} else {
		u[0] = (char)(0xF0 | (c >> 18));
		u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
		u[3] = (char)(0x80 | (c & 0x3F));
		sb_add(b, u, 4);
	}
}

/* Length of the line break at t[i] (LF, CRLF or CR), 0 if none. */
static size_t line_break(const char *t, size_t i, size_t len)
{
	if (i >= len)
		return 0;
	if (t[i] == '\n')
		return 1;
	if (t[i] == '\r')
		return i + 1 < len && t[i + 1] == '\n' ? 2 : 1;
	return 0;
}

/* After a line break inside a flow scalar: skips the white space that
 * starts the following lines; each line that holds nothing else is an
 * empty line and becomes "\n". With none, an unescaped break folds to
 * one space, an escaped one to nothing. Returns where the text goes on. */
static size_t fold_breaks(const char *t, size_t len, size_t i, bool fold, struct sbuf *out)
{
	size_t empty = 0, br;

	for (;;) {
		while (i < len && (t[i] == ' ' || t[i] == '\t'))
			i++;
		br = line_break(t, i, len);
		if (br == 0)
			break;
		empty++;
		i += br;
	}
	if (empty > 0)
		sb_repeat(out, '\n', empty);
	else if (fold)
		sb_add(out, " ", 1);
	return i;
}

static int hex_digits(const char *t, size_t len, size_t i, int n, uint32_t *v)
{
	*v = 0;
	if (i > len || len - i < (size_t)n)
		return -1;
	for (int k = 0; k < n; k++) {
		char c = t[i + (size_t)k];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

/* One escape of a double-quoted scalar, t[i] being the character after
 * the backslash. Returns the index after it, or 0 with *why set. */
static size_t dq_escape(const char *t, size_t len, size_t i, struct sbuf *out, const char **why)
{
	/* pairs: the character after '\' and what it stands for */
	static const char simple[] = "0\0a\ab\bt\t\t\tn\nv\vf\fr\re\x1b  \"\"//\\\\";
	uint32_t c = 0, lo = 0;
	int n = 0;

	if (i >= len) {
		*why = "a backslash at the end of the text";
		return 0;
	}
	for (size_t k = 0; k + 1 < sizeof(simple); k += 2) {
		if (t[i] == simple[k]) {
			sb_add(out, &simple[k + 1], 1);
			return i + 1;
		}
	}
	switch (t[i]) {
	case 'N': c = 0x85; break;
	case '_': c = 0xA0; break;
	case 'L': c = 0x2028; break;
	case 'P': c = 0x2029; break;
	case 'x': n = 2; break;
	case 'u': n = 4; break;
	case 'U': n = 8; break;
	default: *why = "invalid escape in a double-quoted string"; return 0;
	}
	if (n > 0) {
		if (hex_digits(t, len, i + 1, n, &c) < 0) {
			*why = "invalid escape in a double-quoted string (expected hex digits)";
			return 0;
		}
		i += (size_t)n;
		/* JSON writes characters above U+FFFF as two \u escapes */
		if (n == 4 && c >= 0xD800 && c <= 0xDBFF && i + 2 < len && t[i + 1] == '\\' &&
		    t[i + 2] == 'u' && hex_digits(t, len, i + 3, 4, &lo) == 0 && lo >= 0xDC00 &&
		    lo <= 0xDFFF) {
			c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
			i += 6;
		}
		if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
			*why = "invalid escape in a double-quoted string (not a Unicode character)";
			return 0;
		}
	}
	sb_add_cp(out, c);
	return i + 1;
}

/* A single- or double-quoted scalar whose text starts at t[i], after the
 * opening quote. */
static int decode_quoted(const char *t, size_t len, size_t i, bool dq, struct sbuf *out,
			 const char **why)
{
	size_t ws = out->len; /* where the white space that ends out starts */

	while (i < len) {
		char c = t[i];
		size_t br = line_break(t, i, len);

		if (!dq && c == '\'') {
			if (i + 1 < len && t[i + 1] == '\'') {
				sb_add(out, "'", 1);
				i += 2;
				ws = out->len;
				continue;
			}
			return 0;
		}
		if (dq && c == '"')
			return 0;
		if (dq && c == '\\' && line_break(t, i + 1, len) > 0) {
			/* an escaped line break joins the lines without a space
			 * and keeps the white space before it */
			i = fold_breaks(t, len, i + 1 + line_break(t, i + 1, len), false, out);
			ws = out->len;
		} else if (dq && c == '\\') {
			i = dq_escape(t, len, i + 1, out, why);
			if (i == 0)
				return -1;
			ws = out->len;
		} else if (br > 0) {
			sb_cut(out, ws); /* white space before a folded break goes */
			i = fold_breaks(t, len, i + br, true, out);
			ws = out->len;
		} else {
			sb_add(out, &c, 1);
			if (c != ' ' && c != '\t')
				ws = out->len;
			i++;
		}
	}
	*why = "a quoted string without its closing quote";
	return -1;
}

/* A literal (|) or folded (>) block scalar whose indicator is t[pos],
 * inside a block collection indented by n columns (-1 at the top). */
static int decode_block(const char *t, size_t len, size_t pos, long n, struct sbuf *out,
			const char **why)
{
	bool folded = t[pos] == '>', known = false, content = false, last_text = false;
	bool last_br = false;
	size_t i = pos + 1, m = 0, lead = 0, empty = 0;
	int chomp = 0; /* -1 strip, 0 clip, 1 keep */

	for (int k = 0; k < 2 && i < len; k++) {
		if ((t[i] == '-' || t[i] == '+') && chomp == 0) {
			chomp = t[i] == '-' ? -1 : 1;
			i++;
		} else if (t[i] >= '0' && t[i] <= '9') {
			*why = "block scalar indentation indicators (|2) are not supported; indent "
			       "the text instead";
			return -1;
		}
	}
	while (i < len && line_break(t, i, len) == 0) /* blanks and a comment */
		i++;
	i += line_break(t, i, len);

	while (i < len) {
		size_t ls = i, sp = 0, ce, br, clen;
		const char *c;

		while (i < len && t[i] == ' ') {
			i++;
			sp++;
		}
		for (ce = i; ce < len && line_break(t, ce, len) == 0; ce++)
			;
		br = line_break(t, ce, len);
		if (i == ce && (!known || sp <= m)) {
			/* an empty line (spaces only, not more than the text's
			 * indentation): a line break, given out before the next
			 * text or by the chomping */
			if (!known && sp > lead)
				lead = sp;
			empty += br > 0;
			i = ce + br;
			continue;
		}
		if (!known) {
			if ((long)sp <= n)
				break; /* the parent's next node: no text at all */
			m = sp;
			known = true;
			if (lead > m) {
				*why = "a blank line at the start of a block scalar is indented "
				       "more "
				       "than its first line";
				return -1;
			}
		} else if (sp < m) {
			size_t w = i; /* t is not NUL-terminated: no strspn */

			while (w < ce && (t[w] == ' ' || t[w] == '\t'))
				w++;
			if (w == ce) {
				*why = "a tab in the indentation of a block scalar";
				return -1;
			}
			break; /* less indented: the parent's next node */
		}
		if (n < 0 && sp == 0 && ce - ls >= 3 &&
		    (memcmp(t + ls, "---", 3) == 0 || memcmp(t + ls, "...", 3) == 0) &&
		    (ce - ls == 3 || t[ls + 3] == ' ' || t[ls + 3] == '\t'))
			break; /* a document marker ends a top-level block scalar */

		c = t + ls + m;
		clen = ce - ls - m;
		if (content) {
			bool text = clen > 0 && c[0] != ' ' && c[0] != '\t';

			/* folding: a break between two lines of text becomes a
			 * space, or disappears before empty lines; breaks next
			 * to more-indented lines stay */
			if (folded && last_text && text && empty == 0)
				sb_add(out, " ", 1);
			else if (folded && last_text && text)
				sb_repeat(out, '\n', empty);
			else
				sb_repeat(out, '\n', empty + 1);
		} else {
			sb_repeat(out, '\n', empty);
		}
		sb_add(out, c, clen);
		last_text = clen == 0 || (c[0] != ' ' && c[0] != '\t');
		content = true;
		empty = 0;
		last_br = br > 0;
		i = ce + br;
	}
	/* chomping: clip keeps the last line break, keep the empty lines too */
	if (content && chomp >= 0 && last_br)
		sb_add(out, "\n", 1);
	if (chomp > 0)
		sb_repeat(out, '\n', empty);
	return 0;
}

static int scalar_text(struct yload *y, struct fy_token *value, const struct fy_mark *m,
		       struct kiln_ynode *n, struct kiln_spec_error *e)
{
	enum fy_scalar_style style = fy_token_scalar_style(value);
	struct sbuf b = {0};
	const char *why = NULL, *txt;
	size_t tl = 0, pos = 0;
	int r = 0;

	n->plain = style == FYSS_PLAIN;
	switch (style) {
	case FYSS_PLAIN:
		txt = fy_token_get_text(value, &tl);
		if (txt == NULL && tl != 0)
			return fail_at(e, 0, 0, "out of memory");
		sb_add(&b, txt ? txt : "", txt ? tl : 0);
		break;
	case FYSS_SINGLE_QUOTED:
	case FYSS_DOUBLE_QUOTED: {
		char q = style == FYSS_SINGLE_QUOTED ? '\'' : '"';

		/* libfyaml marks the first character after the quote */
		if (m == NULL || m->input_pos == 0 || m->input_pos > y->len ||
		    y->text[m->input_pos - 1] != q)
			return fail_at(e, n->line, n->column,
				       "internal error: cannot find a quoted string");
		mark_adjust(y, m, q == '\'' ? "'" : "\"", &n->column);
		r = decode_quoted(y->text, y->len, m->input_pos, q == '"', &b, &why);
		break;
	}
	case FYSS_LITERAL:
	case FYSS_FOLDED:
		if (m == NULL || !block_indicator(y, m->input_pos, &n->line, &n->column, &pos))
			return fail_at(e, n->line, n->column,
				       "internal error: cannot find a block scalar");
		r = decode_block(y->text, y->len, pos, y->cur ? (long)y->cur->column - 1 : -1, &b,
				 &why);
		break;
	case FYSS_ANY:
	default: return fail_at(e, n->line, n->column, "unsupported kind of YAML scalar");
	}
	if (r == 0 && b.p == NULL)
		sb_add(&b, "", 0);
	if (r < 0 || b.oom) {
		free(b.p);
		if (b.oom)
			return fail_at(e, 0, 0, "out of memory");
		return fail_at(e, n->line, n->column, "%s", why ? why : "invalid scalar");
	}
	n->text = b.p;
	n->len = b.len;
	return 0;
}

static int node_event(struct yload *y, struct fy_event *ev, struct kiln_spec_error *e)
{
	struct fy_token *anchor = NULL, *tag = NULL, *value = NULL;
	const struct fy_mark *m = fy_event_start_mark(ev);
	struct kiln_ynode *n;
	enum kiln_ytype type;

	switch (ev->type) {
	case FYET_SCALAR:
		type = KILN_YSCALAR;
		anchor = ev->scalar.anchor;
		tag = ev->scalar.tag;
		value = ev->scalar.value;
		break;
	case FYET_MAPPING_START:
		type = KILN_YMAP;
		anchor = ev->mapping_start.anchor;
		tag = ev->mapping_start.tag;
		break;
	case FYET_SEQUENCE_START:
		type = KILN_YSEQ;
		anchor = ev->sequence_start.anchor;
		tag = ev->sequence_start.tag;
		break;
	default: return fail_at(e, 0, 0, "internal error: unexpected YAML event %d", ev->type);
	}
	if (anchor != NULL)
		return token_fail(y, anchor, "&", "anchors", "&", e);
	if (tag != NULL)
		return token_fail(y, tag, "", "tags", "", e);
	if (y->root != NULL && y->cur == NULL)
		return fail_at(e, 0, 0, "internal error: a second top-level node");

	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return fail_at(e, 0, 0, "out of memory");
	n->type = type;
	mark_pos(m, &n->line, &n->column);
	if (m == NULL && y->cur != NULL) {
		/* An empty scalar ("key:" with nothing after it) has no mark:
		 * point at its key, or at the enclosing collection. */
		const struct kiln_ynode *near =
			y->cur->nkids ? y->cur->kids[y->cur->nkids - 1] : y->cur;

		n->line = near->line;
		n->column = near->column;
	}
	if (type == KILN_YSCALAR) {
		if (scalar_text(y, value, m, n, e) < 0) {
			kiln_yaml_free(n);
			return -1;
		}
	} else if (y->depth >= YAML_MAX_DEPTH) {
		int line = n->line, column = n->column;

		kiln_yaml_free(n);
		return fail_at(e, line, column, "nested deeper than %d levels", YAML_MAX_DEPTH);
	}

	if (y->cur == NULL) {
		y->root = n;
	} else if (append_kid(y->cur, n) < 0) {
		kiln_yaml_free(n);
		return fail_at(e, 0, 0, "out of memory");
	}
	if (type != KILN_YSCALAR) {
		y->cur = n;
		y->depth++;
	}
	return 0;
}

/* The line of the first directive: the first line starting with '%'. */
static int directive_line(const struct yload *y)
{
	size_t i = 0;
	int line = 1;

	while (i < y->len && line < INT_MAX) {
		if (y->text[i] == '%')
			return line;
		while (i < y->len && line_break(y->text, i, y->len) == 0)
			i++;
		i += line_break(y->text, i, y->len);
		line++;
	}
	return 1;
}

static int handle_event(struct yload *y, struct fy_event *ev, struct kiln_spec_error *e)
{
	const struct fy_mark *m = fy_event_start_mark(ev);
	int line, column;

	switch (ev->type) {
	case FYET_NONE:
	case FYET_STREAM_START:
	case FYET_STREAM_END:
	case FYET_DOCUMENT_END: return 0;
	case FYET_DOCUMENT_START: {
		struct fy_document_state *ds = ev->document_start.document_state;

		mark_pos(m, &line, &column);
		if (++y->docs > 1)
			return fail_at(e, line, column,
				       "a second YAML document; the file must hold exactly one "
				       "(remove this '---' and what follows)");
		/* %YAML 1.1 would change what a line break is under the
		 * scalar decoders' feet, and %TAG serves only tags */
		if (ds != NULL && (fy_document_state_version_explicit(ds) ||
				   fy_document_state_tags_explicit(ds))) {
			line = directive_line(y);
			return fail_at(
				e, line, 1,
				"YAML directives (%%YAML, %%TAG) are not allowed in kiln YAML");
		}
		return 0;
	}
	case FYET_ALIAS: return token_fail(y, ev->alias.anchor, "*", "aliases", "*", e);
	case FYET_SCALAR:
	case FYET_MAPPING_START:
	case FYET_SEQUENCE_START: return node_event(y, ev, e);
	case FYET_MAPPING_END:
	case FYET_SEQUENCE_END:
		if (y->cur == NULL)
			return fail_at(e, 0, 0, "internal error: unbalanced YAML events");
		if (y->cur->type == KILN_YMAP && y->cur->nkids % 2 != 0)
			return fail_at(e, 0, 0, "internal error: a key without a value");
		y->cur = y->cur->parent;
		y->depth--;
		return 0;
	default: return fail_at(e, 0, 0, "internal error: unexpected YAML event %d", ev->type);
	}
}

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	(void)diag;
	(void)user;
	(void)buf;
	(void)len;
}

/* The first error libfyaml collected, with its position (already 1-based). */
static int syntax_fail(struct fy_diag *diag, struct kiln_spec_error *e)
{
	void *it = NULL;
	struct fy_diag_error *de = diag ? fy_diag_errors_iterate(diag, &it) : NULL;
	char q[QUOTE_MAX + 8];

	if (de == NULL || de->msg == NULL)
		return fail_at(e, 0, 0, "invalid YAML");
	kiln_yaml_quote(q, sizeof(q), de->msg, strlen(de->msg));
	return fail_at(e, de->line, de->column, "invalid YAML: %s", q);
}

int kiln_yaml_load(const char *text, size_t len, size_t max_bytes, struct kiln_ynode **root,
		   struct kiln_spec_error *e)
{
	struct yload y = {.text = text, .len = len};
	struct fy_parse_cfg cfg;
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag = NULL;
	struct fy_parser *fyp = NULL;
	char a[32];
	int r = -1;

	*root = NULL;
	e->line = e->column = 0;
	e->message[0] = '\0';
	if (len > max_bytes) {
		fmt_size(a, sizeof(a), max_bytes);
		return fail_at(e, 0, 0, "too large: %zu bytes, the maximum is %s (%zu bytes)", len,
			       a, max_bytes);
	}
	if (check_text(text, len, e) < 0)
		return -1;

	/* libfyaml prints diagnostics to stderr unless told otherwise: collect
	 * them instead, and send anything else it might print nowhere. */
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	dcfg.level = FYET_ERROR;
	dcfg.colorize = false;
	diag = fy_diag_create(&dcfg);
	if (diag == NULL)
		return fail_at(e, 0, 0, "out of memory");
	fy_diag_set_collect_errors(diag, true);

	/* No search path (nothing is ever read from disk), no document
	 * resolution (aliases stay events, refused below), never JSON mode. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.search_path = NULL;
	cfg.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE;
	cfg.diag = diag;
	fyp = fy_parser_create(&cfg);
	if (fyp == NULL || fy_parser_set_string(fyp, len ? text : "", len) != 0) {
		fail_at(e, 0, 0, "out of memory");
		goto out;
	}
	for (;;) {
		struct fy_event *ev = fy_parser_parse(fyp);
		bool end;

		if (ev == NULL) {
			if (fy_parser_get_stream_error(fyp)) {
				syntax_fail(diag, e);
				goto out;
			}
			break;
		}
		end = ev->type == FYET_STREAM_END;
		if (handle_event(&y, ev, e) < 0) {
			fy_parser_event_free(fyp, ev);
			goto out;
		}
		if (fy_event_end_mark(ev) != NULL)
			y.prev = *fy_event_end_mark(ev);
		fy_parser_event_free(fyp, ev);
		if (end)
			break;
	}
	if (y.cur != NULL) {
		fail_at(e, 0, 0, "invalid YAML: unexpected end of the text");
		goto out;
	}
	*root = y.root;
	y.root = NULL;
	r = 0;
out:
	kiln_yaml_free(y.root);
	if (fyp != NULL)
		fy_parser_destroy(fyp);
	fy_diag_destroy(diag);
	/* libfyaml's positions near the end of the text can lie past it */
	if (r < 0)
		kiln_yaml_clamp(text, len, e);
	return r;
}

/* ------------------------------------------------------------------ */
/* Typed values                                                         */

bool kiln_yaml_is_null(const struct kiln_ynode *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

	if (n == NULL || n->type != KILN_YSCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strlen(nulls[i]) == n->len && memcmp(nulls[i], n->text, n->len) == 0)
			return true;
	return false;
}

const char *kiln_yaml_kind(const struct kiln_ynode *n)
{
	if (n == NULL)
		return "nothing";
	switch (n->type) {
	case KILN_YMAP: return "a mapping";
	case KILN_YSEQ: return "a list";
	case KILN_YSCALAR: return kiln_yaml_is_null(n) ? "null" : "a string";
	default: return "an unknown node";
	}
}

/* A non-null scalar without NUL, else an error "NAME: expected WHAT, got
 * a list" (or the quoted value). */
static int want_scalar(const struct kiln_ynode *n, const char *name, const char *what,
		       struct kiln_spec_error *e)
{
	char q[QUOTE_MAX + 8];

	if (n->type != KILN_YSCALAR || kiln_yaml_is_null(n))
		return kiln_yaml_fail(e, n, "%s: expected %s, got %s", name, what,
				      kiln_yaml_kind(n));
	if (memchr(n->text, '\0', n->len) != NULL) {
		QUOTE(q, n);
		return kiln_yaml_fail(e, n, "%s: expected %s, got '%s' (with a NUL character)",
				      name, what, q);
	}
	return 0;
}

/* What an escape ("\u0086") can put in a value but the text itself may not
 * hold raw (check_text): DEL, C1 controls but NEL, U+FFFE and U+FFFF. JSON
 * encoders leave them raw, so a value holding one would make
 * kiln_spec_to_json's output an invalid spec. C0 controls ("\e") stay
 * allowed: JSON escapes them. */
static bool value_printable(const char *str, size_t len, uint32_t *bad)
{
	const unsigned char *s = (const unsigned char *)str;

	for (size_t i = 0; i < len;) {
		uint32_t c = 0;
		size_t n = kiln_utf8_decode(s + i, len - i, &c);

		if (n == 0)
			return false;
		if (c == 0x7F || (c >= 0x80 && c <= 0x9F && c != 0x85) || c == 0xFFFE ||
		    c == 0xFFFF) {
			*bad = c;
			return false;
		}
		i += n;
	}
	return true;
}

int kiln_yaml_string(const struct kiln_ynode *n, const char *name, size_t max_len, char **out,
		     struct kiln_spec_error *e)
{
	uint32_t bad = 0;
	char *s;

	if (want_scalar(n, name, "a string", e) < 0)
		return -1;
	if (n->len > max_len)
		return kiln_yaml_fail(e, n, "%s: %zu bytes, more than the maximum of %zu", name,
				      n->len, max_len);
	if (!kiln_utf8_valid(n->text, n->len))
		return kiln_yaml_fail(e, n, "%s: not valid UTF-8", name);
	if (!value_printable(n->text, n->len, &bad))
		return kiln_yaml_fail(e, n, "%s: contains the non-printable character U+%04" PRIX32,
				      name, bad);
	s = malloc(n->len + 1);
	if (s == NULL)
		return kiln_yaml_fail(e, n, "%s: out of memory", name);
	memcpy(s, n->text, n->len + 1);
	free(*out);
	*out = s;
	return 0;
}

int kiln_yaml_bool(const struct kiln_ynode *n, const char *name, bool *out,
		   struct kiln_spec_error *e)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	char q[QUOTE_MAX + 8];

	if (n->type == KILN_YSCALAR && n->plain) {
		for (size_t i = 0; i < 3; i++) {
			if (strlen(yes[i]) == n->len && memcmp(yes[i], n->text, n->len) == 0) {
				*out = true;
				return 0;
			}
			if (strlen(no[i]) == n->len && memcmp(no[i], n->text, n->len) == 0) {
				*out = false;
				return 0;
			}
		}
	}
	if (n->type != KILN_YSCALAR || kiln_yaml_is_null(n))
		return kiln_yaml_fail(e, n, "%s: expected true or false, got %s", name,
				      kiln_yaml_kind(n));
	QUOTE(q, n);
	return kiln_yaml_fail(e, n, "%s: expected true or false, got %s'%s'", name,
			      n->plain ? "" : "the string ", q);
}

/* Runs a util.h parser on a scalar with no upper bound of its own (so that
 * overflow and "above the limit" read the same), mapping its error codes. */
typedef int (*parse_fn)(const char *s, uint64_t *out, struct kiln_error **err);

static int parse_scalar(const struct kiln_ynode *n, const char *name, const char *what, parse_fn fn,
			uint64_t *v, bool *too_big, struct kiln_spec_error *e)
{
	struct kiln_error *err = NULL;
	char q[QUOTE_MAX + 8];
	int r, code;

	*too_big = false;
	if (want_scalar(n, name, what, e) < 0)
		return -1;
	r = fn(n->text, v, &err);
	code = err ? err->code : 0;
	kiln_error_free(&err);
	if (r == 0)
		return 0;
	if (code == ERANGE) {
		*too_big = true;
		return 0;
	}
	QUOTE(q, n);
	return kiln_yaml_fail(e, n, "%s: expected %s, got '%s'", name, what, q);
}

static int p_size(const char *s, uint64_t *out, struct kiln_error **err)
{
	return kiln_parse_size(s, UINT64_MAX, out, err);
}

static int p_uint(const char *s, uint64_t *out, struct kiln_error **err)
{
	return kiln_parse_uint(s, 0, UINT64_MAX, out, err);
}

static int p_duration(const char *s, uint64_t *out, struct kiln_error **err)
{
	return kiln_parse_duration(s, true, UINT64_MAX, out, err);
}

static int p_cpus(const char *s, uint64_t *out, struct kiln_error **err)
{
	return kiln_parse_cpus(s, UINT64_MAX, out, err);
}

static int over_max(const struct kiln_ynode *n, const char *name, const char *max,
		    struct kiln_spec_error *e)
{
	char q[QUOTE_MAX + 8];

	QUOTE(q, n);
	return kiln_yaml_fail(e, n, "%s: %s exceeds the maximum of %s", name, q, max);
}

int kiln_yaml_size(const struct kiln_ynode *n, const char *name, uint64_t max, uint64_t *out,
		   struct kiln_spec_error *e)
{
	uint64_t v = 0;
	bool big;
	char m[32];

	if (parse_scalar(n, name, "a size like 512M or 2G", p_size, &v, &big, e) < 0)
		return -1;
	fmt_size(m, sizeof(m), max);
	if (big || v > max)
		return over_max(n, name, m, e);
	if (v == 0)
		return kiln_yaml_fail(e, n, "%s: must be greater than zero", name);
	*out = v;
	return 0;
}

int kiln_yaml_uint(const struct kiln_ynode *n, const char *name, uint64_t min, uint64_t max,
		   uint64_t *out, struct kiln_spec_error *e)
{
	uint64_t v = 0;
	bool big;
	char m[32];

	if (parse_scalar(n, name, "a whole number", p_uint, &v, &big, e) < 0)
		return -1;
	snprintf(m, sizeof(m), "%" PRIu64, max);
	if (big || v > max)
		return over_max(n, name, m, e);
	if (v < min)
		return kiln_yaml_fail(e, n, "%s: must be at least %" PRIu64, name, min);
	*out = v;
	return 0;
}

int kiln_yaml_duration(const struct kiln_ynode *n, const char *name, uint64_t max, uint64_t *out,
		       struct kiln_spec_error *e)
{
	uint64_t v = 0;
	bool big;
	char m[32];

	if (parse_scalar(n, name, "a duration like 90, 30s, 10m or 2h", p_duration, &v, &big, e) <
	    0)
		return -1;
	fmt_duration(m, sizeof(m), max);
	if (big || v > max)
		return over_max(n, name, m, e);
	if (v == 0)
		return kiln_yaml_fail(e, n, "%s: must be greater than zero", name);
	*out = v;
	return 0;
}

int kiln_yaml_cpus(const struct kiln_ynode *n, const char *name, uint64_t max_milli,
		   uint64_t *out_milli, struct kiln_spec_error *e)
{
	uint64_t v = 0;
	bool big;
	char m[32];

	if (parse_scalar(n, name, "a CPU count like 2 or 0.5 (above 0, at most 3 decimals)", p_cpus,
			 &v, &big, e) < 0)
		return -1;
	fmt_cpus(m, sizeof(m), max_milli);
	if (big || v > max_milli)
		return over_max(n, name, m, e);
	*out_milli = v;
	return 0;
}

int kiln_yaml_walk(const struct kiln_ynode *map, const char *path, const char *const *keys,
		   kiln_yaml_field_fn fn, void *ctx, struct kiln_spec_error *e)
{
	const struct kiln_ynode *first[32] = {NULL};
	char expected[256], q[QUOTE_MAX + 8], name[128];
	const char *sep = *path ? ": " : "";
	size_t nkeys = 0, o = 0;

	while (keys[nkeys] != NULL)
		nkeys++;
	if (nkeys > sizeof(first) / sizeof(first[0]))
		return kiln_yaml_fail(e, NULL, "internal error: too many keys for %s", path);
	if (map->type != KILN_YMAP)
		return kiln_yaml_fail(e, map, "%s%sexpected a mapping (key: value), got %s", path,
				      sep, kiln_yaml_kind(map));

	expected[0] = '\0';
	for (size_t k = 0; k < nkeys && o < sizeof(expected); k++) {
		int w = snprintf(expected + o, sizeof(expected) - o, "%s%s",
				 k == 0 ? "" : (k + 1 == nkeys ? " or " : ", "), keys[k]);
		if (w < 0)
			break;
		o += (size_t)w;
	}

	for (size_t i = 0; i + 1 < map->nkids; i += 2) {
		const struct kiln_ynode *key = map->kids[i], *value = map->kids[i + 1];
		size_t k;

		if (key->type != KILN_YSCALAR)
			return kiln_yaml_fail(e, key, "%s%skeys must be strings, not %s", path, sep,
					      kiln_yaml_kind(key));
		for (k = 0; k < nkeys; k++)
			if (strlen(keys[k]) == key->len &&
			    memcmp(keys[k], key->text, key->len) == 0)
				break;
		QUOTE(q, key);
		if (k == nkeys)
			return kiln_yaml_fail(e, key, "%s%sunknown key '%s' (expected %s)", path,
					      sep, q, expected);
		if (first[k] != NULL)
			return kiln_yaml_fail(e, key, "%s%sduplicate key '%s' (first at %d:%d)",
					      path, sep, q, first[k]->line, first[k]->column);
		first[k] = key;
		snprintf(name, sizeof(name), "%s%s%s", path, *path ? "." : "", keys[k]);
		if (fn(ctx, k, name, value, e) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The spec                                                             */

void kiln_spec_limits_default(struct kiln_spec_limits *l)
{
	l->max_timeout = 24 * 3600;
	l->max_memory = 64 * GIB;
	l->max_disk = 256 * GIB;
	l->max_pids = 65536;
	l->max_cpus_milli = 64 * 1000;
}

void kiln_spec_free(struct kiln_spec *s)
{
	if (s == NULL)
		return;
	free(s->script);
	for (size_t i = 0; i < s->nartifacts; i++)
		free(s->artifacts[i]);
	free(s->artifacts);
	free(s->network);
	for (size_t i = 0; i < s->nenv; i++)
		free(s->env[i]);
	free(s->env);
	for (size_t i = 0; i < s->nsecrets; i++)
		free(s->secrets[i]);
	free(s->secrets);
	free(s->image);
	free(s);
}

bool kiln_secret_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return true;
}

bool kiln_image_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 ||
	    !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

void kiln_spec_fmt_size(char *buf, size_t size, uint64_t v)
{
	fmt_size(buf, size, v);
}

struct spec_ctx {
	struct kiln_spec *s;
	struct kiln_spec_limits l;
};

static const char *const spec_keys[] = {"script", "artifacts", "timeout", "resources", "network",
					"retry",  "env",       "secrets", "image",     NULL};
enum {
	K_SCRIPT,
	K_ARTIFACTS,
	K_TIMEOUT,
	K_RESOURCES,
	K_NETWORK,
	K_RETRY,
	K_ENV,
	K_SECRETS,
	K_IMAGE
};

static const char *const resource_keys[] = {"memory", "pids", "cpus", "disk", NULL};
enum { R_MEMORY, R_PIDS, R_CPUS, R_DISK };

static const char *const env_reserved[] = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR"};

static int set_script(struct spec_ctx *c, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	if (kiln_yaml_is_null(v))
		return kiln_yaml_fail(e, v, "script: is empty; write the commands to run");
	if (kiln_yaml_string(v, "script", SPEC_MAX_SCRIPT, &c->s->script, e) < 0)
		return -1;
	if (strspn(c->s->script, " \t\r\n") == strlen(c->s->script))
		return kiln_yaml_fail(e, v, "script: is empty; write the commands to run");
	return 0;
}

/* "out/" -> length without one trailing '/', or 0 if the path is not a
 * relative path under /workspace (kiln_sandbox_path_valid's rules). */
static size_t artifact_check(const char *p)
{
	size_t len = strlen(p), n = len;
	char *abs;
	bool ok;

	if (n > 0 && p[n - 1] == '/')
		n--;
	if (n == 0 || p[0] == '/' || n >= PATH_MAX - 1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7F)
			return 0;
	abs = malloc(n + 2);
	if (abs == NULL)
		return 0;
	abs[0] = '/';
	memcpy(abs + 1, p, n);
	abs[n + 1] = '\0';
	ok = kiln_sandbox_path_valid(abs);
	free(abs);
	return ok ? n : 0;
}

static int set_artifacts(struct spec_ctx *c, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	struct kiln_spec *s = c->s;
	char name[32], q[QUOTE_MAX + 8];
	size_t *lens;

	if (v->type != KILN_YSEQ)
		return kiln_yaml_fail(e, v,
				      "artifacts: expected a list of paths like [out/], got %s",
				      kiln_yaml_kind(v));
	if (v->nkids > SPEC_MAX_ARTIFACTS)
		return kiln_yaml_fail(e, v->kids[SPEC_MAX_ARTIFACTS],
				      "artifacts: more than %d entries", SPEC_MAX_ARTIFACTS);
	for (size_t i = 0; i < s->nartifacts; i++)
		free(s->artifacts[i]);
	free(s->artifacts);
	s->nartifacts = 0;
	s->artifacts = calloc(v->nkids ? v->nkids : 1, sizeof(*s->artifacts));
	lens = calloc(v->nkids ? v->nkids : 1, sizeof(*lens));
	if (s->artifacts == NULL || lens == NULL) {
		free(lens);
		return kiln_yaml_fail(e, v, "artifacts: out of memory");
	}
	for (size_t i = 0; i < v->nkids; i++) {
		const struct kiln_ynode *it = v->kids[i];
		char *p = NULL;

		snprintf(name, sizeof(name), "artifacts[%zu]", i);
		if (kiln_yaml_string(it, name, PATH_MAX, &p, e) < 0)
			goto fail;
		s->artifacts[s->nartifacts++] = p;
		lens[i] = artifact_check(p);
		if (lens[i] == 0) {
			QUOTE(q, it);
			kiln_yaml_fail(
				e, it,
				"%s: '%s' is not a relative path under /workspace (no leading "
				"/, no . or .. or empty components, no control characters)",
				name, q);
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			if (lens[j] == lens[i] && memcmp(s->artifacts[j], p, lens[i]) == 0) {
				kiln_yaml_fail(e, it, "%s: duplicate of artifacts[%zu]", name, j);
				goto fail;
			}
		}
	}
	free(lens);
	return 0;
fail:
	free(lens);
	return -1;
}

static int resource_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
			  struct kiln_spec_error *e)
{
	struct spec_ctx *c = ctx;

	static const unsigned given[] = {KILN_SPEC_GIVEN_MEMORY, KILN_SPEC_GIVEN_PIDS,
					 KILN_SPEC_GIVEN_CPUS, KILN_SPEC_GIVEN_DISK};

	if (idx < sizeof(given) / sizeof(given[0]))
		c->s->given |= given[idx];
	switch (idx) {
	case R_MEMORY: return kiln_yaml_size(v, name, c->l.max_memory, &c->s->memory, e);
	case R_PIDS: return kiln_yaml_uint(v, name, 1, c->l.max_pids, &c->s->pids, e);
	case R_CPUS:
		/* null: no quota, so that kiln_spec_to_json's output parses */
		if (kiln_yaml_is_null(v)) {
			c->s->cpus_milli = 0;
			return 0;
		}
		return kiln_yaml_cpus(v, name, c->l.max_cpus_milli, &c->s->cpus_milli, e);
	case R_DISK: return kiln_yaml_size(v, name, c->l.max_disk, &c->s->disk, e);
	default: return kiln_yaml_fail(e, v, "internal error: resource %zu", idx);
	}
}

static int set_network(struct spec_ctx *c, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	const char *val;

	if (v->type == KILN_YSCALAR && v->len == 4 && memcmp(v->text, "none", 4) == 0)
		val = "none";
	else if (v->type == KILN_YSCALAR && v->len == 6 && memcmp(v->text, "egress", 6) == 0)
		val = "egress";
	else
		return kiln_yaml_fail(e, v,
				      "network: expected none, or egress (through kilnd's proxy, "
				      "to what the project's policy allows)");
	free(c->s->network);
	c->s->network = strdup(val);
	if (c->s->network == NULL)
		return kiln_yaml_fail(e, v, "network: out of memory");
	return 0;
}

static bool env_name_valid(const char *name, size_t len)
{
	char *t;
	bool ok;

	/* kiln_env_valid checks "NAME=VALUE" up to the first '=': a key
	 * "A=B" would pass as NAME A, so '=' is refused here. */
	if (len == 0 || memchr(name, '\0', len) != NULL || memchr(name, '=', len) != NULL ||
	    len > 1024)
		return false;
	t = malloc(len + 2);
	if (t == NULL)
		return false;
	memcpy(t, name, len);
	t[len] = '=';
	t[len + 1] = '\0';
	ok = kiln_env_valid(t);
	free(t);
	return ok;
}

static int set_env(struct spec_ctx *c, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	struct kiln_spec *s = c->s;
	char name[1100], q[QUOTE_MAX + 8];
	size_t n;

	if (v->type != KILN_YMAP)
		return kiln_yaml_fail(e, v, "env: expected a mapping of NAME: value, got %s",
				      kiln_yaml_kind(v));
	n = v->nkids / 2;
	if (n > SPEC_MAX_ENV)
		return kiln_yaml_fail(e, v->kids[2 * SPEC_MAX_ENV], "env: more than %d variables",
				      SPEC_MAX_ENV);
	s->env = calloc(n ? n : 1, sizeof(*s->env));
	if (s->env == NULL)
		return kiln_yaml_fail(e, v, "env: out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct kiln_ynode *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
		char *value = NULL, *kv;

		if (k->type != KILN_YSCALAR)
			return kiln_yaml_fail(e, k, "env: keys must be variable names, not %s",
					      kiln_yaml_kind(k));
		QUOTE(q, k);
		if (!env_name_valid(k->text, k->len))
			return kiln_yaml_fail(e, k,
					      "env: '%s' is not a valid variable name (letters, "
					      "digits and _, not starting with a digit)",
					      q);
		for (size_t r = 0; r < sizeof(env_reserved) / sizeof(env_reserved[0]); r++)
			if (strcmp(k->text, env_reserved[r]) == 0)
				return kiln_yaml_fail(e, k,
						      "env.%s: %s is set by kiln and cannot be "
						      "overridden",
						      k->text, k->text);
		for (size_t j = 0; j < i; j++) {
			const struct kiln_ynode *p = v->kids[2 * j];

			if (p->len == k->len && memcmp(p->text, k->text, k->len) == 0)
				return kiln_yaml_fail(e, k,
						      "env: duplicate key '%s' (first at %d:%d)", q,
						      p->line, p->column);
		}
		snprintf(name, sizeof(name), "env.%s", k->text);
		if (kiln_yaml_is_null(val))
			return kiln_yaml_fail(e, val,
					      "%s: expected a string, got null (write \"\" for an "
					      "empty value)",
					      name);
		if (kiln_yaml_string(val, name, SPEC_MAX_VALUE, &value, e) < 0)
			return -1;
		kv = malloc(k->len + 1 + strlen(value) + 1);
		if (kv == NULL) {
			free(value);
			return kiln_yaml_fail(e, val, "%s: out of memory", name);
		}
		memcpy(kv, k->text, k->len);
		kv[k->len] = '=';
		memcpy(kv + k->len + 1, value, strlen(value) + 1);
		free(value);
		s->env[s->nenv++] = kv;
	}
	return 0;
}

static int set_secrets(struct spec_ctx *c, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	struct kiln_spec *s = c->s;
	char name[32], q[QUOTE_MAX + 8];

	if (v->type != KILN_YSEQ)
		return kiln_yaml_fail(
			e, v, "secrets: expected a list of names like [DEPLOY_TOKEN], got %s",
			kiln_yaml_kind(v));
	if (v->nkids > KILN_SPEC_MAX_SECRETS)
		return kiln_yaml_fail(e, v->kids[KILN_SPEC_MAX_SECRETS],
				      "secrets: more than %d entries", KILN_SPEC_MAX_SECRETS);
	s->secrets = calloc(v->nkids ? v->nkids : 1, sizeof(*s->secrets));
	if (s->secrets == NULL)
		return kiln_yaml_fail(e, v, "secrets: out of memory");
	for (size_t i = 0; i < v->nkids; i++) {
		const struct kiln_ynode *it = v->kids[i];
		char *p = NULL;

		snprintf(name, sizeof(name), "secrets[%zu]", i);
		if (kiln_yaml_string(it, name, 64, &p, e) < 0)
			return -1;
		s->secrets[s->nsecrets++] = p;
		if (!kiln_secret_name_valid(p)) {
			QUOTE(q, it);
			return kiln_yaml_fail(e, it,
					      "%s: '%s' is not a secret name (letters, digits and "
					      "_, not starting with a digit, at most 64)",
					      name, q);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->secrets[j], p) == 0)
				return kiln_yaml_fail(e, it, "%s: duplicate of secrets[%zu]", name,
						      j);
	}
	return 0;
}

static int set_image(struct spec_ctx *c, const struct kiln_ynode *v, struct kiln_spec_error *e)
{
	char q[QUOTE_MAX + 8];

	free(c->s->image);
	c->s->image = NULL;
	if (kiln_yaml_string(v, "image", 64, &c->s->image, e) < 0)
		return -1;
	if (!kiln_image_name_valid(c->s->image)) {
		QUOTE(q, v);
		return kiln_yaml_fail(e, v,
				      "image: '%s' is not an image name ([a-z0-9][a-z0-9._-]*)", q);
	}
	return 0;
}

static int spec_field(void *ctx, size_t idx, const char *name, const struct kiln_ynode *v,
		      struct kiln_spec_error *e)
{
	struct spec_ctx *c = ctx;

	switch (idx) {
	case K_SCRIPT: return set_script(c, v, e);
	case K_ARTIFACTS: return set_artifacts(c, v, e);
	case K_TIMEOUT:
		c->s->given |= KILN_SPEC_GIVEN_TIMEOUT;
		return kiln_yaml_duration(v, name, c->l.max_timeout, &c->s->timeout, e);
	case K_RESOURCES: return kiln_yaml_walk(v, name, resource_keys, resource_field, c, e);
	case K_NETWORK: return set_network(c, v, e);
	case K_RETRY: return kiln_yaml_bool(v, name, &c->s->retry, e);
	case K_ENV: return set_env(c, v, e);
	case K_SECRETS: return set_secrets(c, v, e);
	case K_IMAGE: return set_image(c, v, e);
	default: return kiln_yaml_fail(e, v, "internal error: key %zu", idx);
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static int spec_defaults(struct kiln_spec *s, const struct kiln_spec_limits *l)
{
	s->timeout = min_u64(3600, l->max_timeout);
	s->memory = min_u64(2 * GIB, l->max_memory);
	s->disk = min_u64(4 * GIB, l->max_disk);
	s->pids = min_u64(1024, l->max_pids);
	s->cpus_milli = 0;
	s->retry = false;
	s->network = strdup("none");
	s->artifacts = calloc(1, sizeof(*s->artifacts));
	if (s->network == NULL || s->artifacts == NULL)
		return -1;
	s->artifacts[0] = strdup("out/");
	if (s->artifacts[0] == NULL)
		return -1;
	s->nartifacts = 1;
	return 0;
}

int kiln_spec_parse(const char *text, size_t len, const struct kiln_spec_limits *limits,
		    struct kiln_spec **out, struct kiln_spec_error *e)
{
	struct spec_ctx c = {0};
	struct kiln_ynode *root = NULL;
	struct kiln_spec *s = NULL;

	e->line = e->column = 0;
	e->message[0] = '\0';
	if (limits == NULL || limits->max_timeout == 0 || limits->max_memory == 0 ||
	    limits->max_disk == 0 || limits->max_pids == 0)
		return kiln_yaml_fail(e, NULL, "internal error: invalid spec limits");
	/* Whatever the limits, nothing above INT64_MAX: JSON integers and the
	 * kernel interfaces the values end up in are signed. */
	c.l.max_timeout = min_u64(limits->max_timeout, INT64_MAX);
	c.l.max_memory = min_u64(limits->max_memory, INT64_MAX);
	c.l.max_disk = min_u64(limits->max_disk, INT64_MAX);
	c.l.max_pids = min_u64(limits->max_pids, INT64_MAX);
	c.l.max_cpus_milli = min_u64(limits->max_cpus_milli, INT64_MAX);

	if (text == NULL && len != 0)
		return kiln_yaml_fail(e, NULL, "internal error: no text");
	if (kiln_yaml_load(text ? text : "", len, KILN_SPEC_MAX_BYTES, &root, e) < 0)
		return -1;
	if (root == NULL || kiln_yaml_is_null(root)) {
		kiln_yaml_fail(e, root, "the spec is empty; it needs at least a script: key");
		goto fail;
	}
	if (root->type != KILN_YMAP) {
		kiln_yaml_fail(
			e, root,
			"the spec must be a mapping of keys (script:, timeout:, ...), not %s",
			kiln_yaml_kind(root));
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || spec_defaults(s, &c.l) < 0) {
		kiln_yaml_fail(e, NULL, "out of memory");
		goto fail;
	}
	c.s = s;
	if (kiln_yaml_walk(root, "", spec_keys, spec_field, &c, e) < 0)
		goto fail;
	if (s->script == NULL) {
		kiln_yaml_fail(
			e, root,
			"script: missing; the spec needs the commands to run (script: make)");
		goto fail;
	}
	kiln_yaml_free(root);
	*out = s;
	return 0;
fail:
	kiln_yaml_clamp(text ? text : "", len, e);
	kiln_yaml_free(root);
	kiln_spec_free(s);
	return -1;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */

static int set_new(json_t *o, const char *key, json_t *v)
{
	return v == NULL ? -1 : json_object_set_new(o, key, v);
}

static json_t *uint_json(uint64_t v)
{
	/* kiln_spec_parse keeps every value <= INT64_MAX. */
	return v > INT64_MAX ? NULL : json_integer((json_int_t)v);
}

json_t *kiln_spec_to_json(const struct kiln_spec *s)
{
	json_t *o = json_object(), *a = json_array(), *r = json_object(), *env = json_object();
	json_t *cpus, *sec = json_array();
	int bad = 0;

	if (o == NULL || a == NULL || r == NULL || env == NULL)
		goto fail;
	for (size_t i = 0; i < s->nartifacts; i++)
		if (json_array_append_new(a, json_string(s->artifacts[i])) < 0)
			goto fail;
	for (size_t i = 0; i < s->nenv; i++) {
		const char *eq = strchr(s->env[i], '=');
		char *name;

		if (eq == NULL)
			goto fail;
		name = strndup(s->env[i], (size_t)(eq - s->env[i]));
		if (name == NULL)
			goto fail;
		bad = set_new(env, name, json_string(eq + 1));
		free(name);
		if (bad < 0)
			goto fail;
	}
	if (s->cpus_milli == 0)
		cpus = json_null();
	else if (s->cpus_milli % 1000 == 0)
		cpus = uint_json(s->cpus_milli / 1000);
	else
		cpus = json_real((double)s->cpus_milli / 1000.0);
	bad |= set_new(r, "memory", uint_json(s->memory));
	bad |= set_new(r, "pids", uint_json(s->pids));
	bad |= set_new(r, "cpus", cpus);
	bad |= set_new(r, "disk", uint_json(s->disk));

	bad |= set_new(o, "script", json_string(s->script ? s->script : ""));
	bad |= json_object_set(o, "artifacts", a);
	bad |= set_new(o, "timeout", uint_json(s->timeout));
	bad |= json_object_set(o, "resources", r);
	bad |= set_new(o, "network", json_string(s->network ? s->network : "none"));
	bad |= set_new(o, "retry", json_boolean(s->retry));
	bad |= json_object_set(o, "env", env);
	if (sec == NULL)
		goto fail;
	for (size_t i = 0; i < s->nsecrets; i++)
		bad |= json_array_append_new(sec, json_string(s->secrets[i]));
	if (s->nsecrets > 0)
		bad |= json_object_set(o, "secrets", sec);
	if (s->image != NULL)
		bad |= set_new(o, "image", json_string(s->image));
	json_decref(sec);
	sec = NULL;
	if (bad)
		goto fail;
	json_decref(a);
	json_decref(r);
	json_decref(env);
	return o;
fail:
	json_decref(o);
	json_decref(a);
	json_decref(r);
	json_decref(env);
	json_decref(sec);
	return NULL;
}
