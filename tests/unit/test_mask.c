/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The streaming masker: a secret written raw, base64 (standard and
 * URL-safe, inside longer texts at each of the three alignments, encoded
 * independently with libsodium), URL-encoded, JSON-escaped and hex, is gone
 * from the output whatever the chunking: split in two at every offset, and
 * byte by byte. Text without secrets passes unchanged; the artifact scan
 * finds each encoding in a file.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "server/mask.h"
#include "tap.h"

struct out {
	char buf[65536];
	size_t len;
};

static void emit(void *ctx, const char *b, size_t n)
{
	struct out *o = ctx;

	if (o->len + n < sizeof(o->buf)) {
		memcpy(o->buf + o->len, b, n);
		o->len += n;
	}
	o->buf[o->len] = '\0';
}

static bool contains(const struct out *o, const char *needle, size_t n)
{
	return n > 0 && memmem(o->buf, o->len, needle, n) != NULL;
}

/* Feed text in the chunks cut at the given offsets (sorted, may be empty). */
static void run(const struct kiln_masker *m, const char *text, size_t len, const size_t *cuts,
		size_t ncuts, struct out *o)
{
	struct kiln_mask_stream *s = kiln_mask_stream_new(m);
	size_t prev = 0;

	o->len = 0;
	o->buf[0] = '\0';
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		kiln_mask_stream_feed(s, text + prev, end - prev, emit, o);
		prev = end;
	}
	kiln_mask_stream_finish(s, emit, o);
	kiln_mask_stream_free(s);
}

/* text holds secret in some encoding `enc` (the bytes that must vanish). */
static void check_all_splits(const struct kiln_masker *m, const char *what, const char *text,
			     size_t len, const char *enc, size_t enclen)
{
	struct out *o = malloc(sizeof(*o));
	bool all = true;
	size_t cut;

	run(m, text, len, NULL, 0, o);
	ok(!contains(o, enc, enclen) && strstr(o->buf, kiln_masker_replacement(m)) != NULL,
	   "%s: masked in one chunk", what);
	for (cut = 0; cut <= len; cut++) {
		run(m, text, len, &cut, 1, o);
		if (contains(o, enc, enclen)) {
			all = false;
			printf("#   leaked when split at %zu: %s\n", cut, o->buf);
			break;
		}
	}
	ok(all, "%s: masked when split in two at every offset (%zu)", what, len + 1);
	{
		size_t *cuts = calloc(len + 1, sizeof(*cuts));
		for (size_t i = 0; i < len; i++)
			cuts[i] = i + 1;
		run(m, text, len, cuts, len ? len - 1 : 0, o);
		ok(!contains(o, enc, enclen), "%s: masked when fed byte by byte", what);
		free(cuts);
	}
	free(o);
}

static void url_encode(const char *v, char *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*out++ = (char)c;
		} else {
			*out++ = '%';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 15];
		}
	}
	*out = '\0';
}

static void test_encodings(void)
{
	const char *secret = "s3cr3t/val+ue \"q\"\\x";
	size_t sl = strlen(secret);
	struct kiln_masker *m = kiln_masker_new();
	char text[4096], enc[2048];

	ok(m != NULL && kiln_masker_add(m, (const unsigned char *)secret, sl) == 0,
	   "masker with one secret");

	snprintf(text, sizeof(text), "before %s after\n", secret);
	check_all_splits(m, "raw", text, strlen(text), secret, sl);

	/* base64 of prefix+secret+suffix for prefixes of 0..2 bytes: the
	 * secret's own characters sit at each alignment. */
	for (int variant = 0; variant < 2; variant++)
		for (size_t a = 0; a < 3; a++) {
			unsigned char buf[256];
			char b64[512], what[64], core[512];
			int v = variant ? sodium_base64_VARIANT_URLSAFE
					: sodium_base64_VARIANT_ORIGINAL;
			size_t n = 0, first, last;

			memcpy(buf, "PFX", a);
			memcpy(buf + a, secret, sl);
			memcpy(buf + a + sl, "tail!", 5);
			n = a + sl + 5;
			sodium_bin2base64(b64, sizeof(b64), buf, n, v);
			snprintf(text, sizeof(text), "token=%s;\n", b64);
			/* The characters fully inside the secret's bits. */
			first = (8 * a + 5) / 6;
			last = (8 * (a + sl)) / 6;
			snprintf(core, sizeof(core), "%.*s", (int)(last - first), b64 + first);
			snprintf(what, sizeof(what), "base64 %s alignment %zu",
				 variant ? "url-safe" : "standard", a);
			check_all_splits(m, what, text, strlen(text), core, strlen(core));
		}

	url_encode(secret, enc);
	snprintf(text, sizeof(text), "GET /?t=%s HTTP/1.1\n", enc);
	check_all_splits(m, "URL-encoded", text, strlen(text), enc, strlen(enc));
	for (char *p = enc; *p; p++)
		if (p[0] == '%')
			p[1] = (char)tolower((unsigned char)p[1]),
			p[2] = (char)tolower((unsigned char)p[2]);
	snprintf(text, sizeof(text), "GET /?t=%s HTTP/1.1\n", enc);
	check_all_splits(m, "URL-encoded, lower case", text, strlen(text), enc, strlen(enc));

	{
		json_t *o = json_pack("{s:s}", "token", secret);
		char *j = json_dumps(o, JSON_COMPACT);
		json_t *s = json_string(secret);
		char *js = json_dumps(s, JSON_ENCODE_ANY);

		snprintf(text, sizeof(text), "%s\n", j);
		snprintf(enc, sizeof(enc), "%.*s", (int)strlen(js) - 2, js + 1);
		check_all_splits(m, "JSON-escaped", text, strlen(text), enc, strlen(enc));
		free(j);
		free(js);
		json_decref(o);
		json_decref(s);
	}

	sodium_bin2hex(enc, sizeof(enc), (const unsigned char *)secret, sl);
	snprintf(text, sizeof(text), "hex: %s\n", enc);
	check_all_splits(m, "hex", text, strlen(text), enc, strlen(enc));
	for (char *p = enc; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	snprintf(text, sizeof(text), "HEX: %s\n", enc);
	check_all_splits(m, "hex, upper case", text, strlen(text), enc, strlen(enc));

	{
		struct out *o = malloc(sizeof(*o));
		const char *plain = "nothing secret here: s3cr3t/val no\n";
		run(m, plain, strlen(plain), NULL, 0, o);
		is_str(o->buf, plain, "text without a secret passes unchanged");
		snprintf(text, sizeof(text), "%s%s", secret, secret);
		run(m, text, strlen(text), NULL, 0, o);
		ok(!contains(o, secret, sl), "two in a row: both masked (%s)", o->buf);
		free(o);
	}
	kiln_masker_free(m);
}

static void test_replacement(void)
{
	/* A secret holding '*' gets another replacement character, so that
	 * the replacement cannot complete an occurrence. */
	const char *secret = "***abcdef**";
	struct kiln_masker *m = kiln_masker_new();
	struct out *o = malloc(sizeof(*o));

	ok(kiln_masker_add(m, (const unsigned char *)secret, strlen(secret)) == 0, "add");
	ok(strchr(kiln_masker_replacement(m), '*') == NULL, "replacement avoids '*': %s",
	   kiln_masker_replacement(m));
	run(m, "x***abcdef***abcdef**y", 22, NULL, 0, o);
	ok(!contains(o, secret, strlen(secret)), "overlapping occurrences masked: %s", o->buf);
	free(o);
	kiln_masker_free(m);

	m = kiln_masker_new();
	o = malloc(sizeof(*o));
	run(m, "no secrets at all", 17, NULL, 0, o);
	is_str(o->buf, "no secrets at all", "an empty masker passes everything");
	free(o);
	kiln_masker_free(m);
}

static void test_scan(void)
{
	const char *secret = "artifact-secret-42";
	struct kiln_masker *m = kiln_masker_new();
	char path[] = "/tmp/kiln-test-mask.XXXXXX", b64[128], big[200000];
	int fd = mkstemp(path);

	kiln_masker_add(m, (const unsigned char *)secret, strlen(secret));
	ok(fd >= 0, "temporary file");
	if (fd < 0)
		return;
	unlink(path);
	memset(big, 'A' - 1, sizeof(big));
	/* the secret across the scanner's 64K read boundary */
	memcpy(big + 65536 - 5, secret, strlen(secret));
	ok(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big), "write");
	lseek(fd, 0, SEEK_SET);
	is_int(kiln_mask_scan_fd(m, fd), 1, "scan finds the raw value across a read boundary");
	ok(ftruncate(fd, 0) == 0, "truncate");
	lseek(fd, 0, SEEK_SET);
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)secret, strlen(secret),
			  sodium_base64_VARIANT_ORIGINAL);
	ok(write(fd, b64, strlen(b64)) > 0, "write base64");
	lseek(fd, 0, SEEK_SET);
	is_int(kiln_mask_scan_fd(m, fd), 1, "scan finds the base64 form");
	ok(ftruncate(fd, 0) == 0 && write(fd, "harmless", 8) == 8, "harmless file");
	lseek(fd, 0, SEEK_SET);
	is_int(kiln_mask_scan_fd(m, fd), 0, "a harmless file passes");
	close(fd);
	kiln_masker_free(m);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_encodings();
	test_replacement();
	test_scan();
	return tap_done();
}
