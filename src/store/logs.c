/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A job's log file. Build output is hostile input: it is cut into lines,
 * every line gets a timestamp and the tag of the stream it came from, and
 * anything a terminal would interpret (C0/C1 controls, DEL, ESC sequences,
 * invalid UTF-8) is replaced by U+FFFD, so that `kiln logs` and the
 * dashboard can print it as it is and a build cannot forge "kiln|" lines.
 *
 * Readers (HTTP followers) read the file while it grows. Records are built
 * in a batch buffer and each batch goes out with one write(2) on an
 * O_APPEND fd, so the file only ever grows by whole records; if a write
 * comes up short (disk full), the partial tail is cut off again.
 *
 * One struct kiln_log belongs to one thread (the job's worker).
 */
#include "store/logs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX (64 * 1024) /* longer lines are split (docs/api.md) */
#define LOG_TS_LEN   25		 /* "2026-11-23T17:40:01.123Z " */
#define LOG_TAG_MAX  6		 /* "kiln| " */
/* A record of a line of n bytes: every input byte may become the three of
 * U+FFFD. */
#define LOG_RECORD_MAX(n) (LOG_TS_LEN + LOG_TAG_MAX + 3 * (size_t)(n) + 1)
#define LOG_TRUNC_NOTE	  96 /* room for the truncation note record */
#define LOG_BATCH_CAP	  (4 * LOG_RECORD_MAX(LOG_LINE_MAX))
#define LOG_NOTE_MAX	  1024

enum { TAG_OUT = 1, TAG_ERR = 2, TAG_KILN = 3 };

struct kiln_log {
	int fd;
	uint64_t cap;
	uint64_t bytes;	  /* size of the file: everything written so far */
	uint64_t dropped; /* bytes of output dropped past the cap or lost */
	bool truncated;	  /* the cap was reached and the note written */
	bool lost;	  /* a write failed: the file misses something */
	char ts[LOG_TS_LEN + 1];
	int held_stream;
	size_t held_len;
	char held[LOG_LINE_MAX]; /* the partial line of held_stream */
	size_t batch_len;
	char *batch; /* LOG_BATCH_CAP bytes of whole records */
	kiln_log_filter_fn filter;
	void *filter_ctx;
};

void kiln_log_set_filter(struct kiln_log *l, kiln_log_filter_fn fn, void *ctx)
{
	if (l != NULL) {
		l->filter = fn;
		l->filter_ctx = ctx;
	}
}

void kiln_log_path(const char *dir, int64_t job, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%lld.log", dir, (long long)job);
}

int kiln_log_open(const char *dir, int64_t job, uint64_t cap, struct kiln_log **out,
		  struct kiln_error **err)
{
	char path[PATH_MAX];
	struct kiln_log *l;
	struct stat st;
	int fd;

	*out = NULL;
	if (job < 0)
		return kiln_error_set(err, EINVAL, "open log: bad job id %lld", (long long)job);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kiln_error_set(err, errno, "open log: mkdir %s", dir);
	kiln_log_path(dir, job, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return kiln_error_set(err, errno, "open log %s", path);
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return kiln_error_set(err, e, "stat log %s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return kiln_error_set(err, EINVAL, "open log %s: not a regular file", path);
	}
	l = calloc(1, sizeof(*l));
	if (l != NULL)
		l->batch = malloc(LOG_BATCH_CAP);
	if (l == NULL || l->batch == NULL) {
		free(l);
		close(fd);
		return kiln_error_set(err, ENOMEM, "open log %s", path);
	}
	l->fd = fd;
	l->cap = cap;
	/* A retried job appends to the log of its earlier attempt: the cap
	 * covers the whole file. */
	l->bytes = (uint64_t)st.st_size;
	*out = l;
	return 0;
}

/* ---- records --------------------------------------------------------- */

static void stamp(struct kiln_log *l)
{
	struct timespec now;
	struct tm tm;
	char buf[64];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 now.tv_nsec / 1000000);
	memcpy(l->ts, buf, LOG_TS_LEN);
	l->ts[LOG_TS_LEN] = '\0';
}

/* Copy src to dst, replacing control characters (except tab), DEL, C1
 * controls (U+0080..U+009F, which some terminals obey like ESC [) and
 * every byte that is not part of valid UTF-8 by U+FFFD. dst must hold
 * 3 * len bytes. Returns the bytes written. */
static size_t sanitize(char *dst, const char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;

	while (i < len) {
		uint32_t cp = 0;
		size_t n = kiln_utf8_decode(s + i, len - i, &cp);

		if (n == 0 || (cp < 0x20 && cp != '\t') || (cp >= 0x7F && cp <= 0x9F)) {
			memcpy(dst + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i += n == 0 ? 1 : n;
			continue;
		}
		memcpy(dst + o, s + i, n);
		o += n;
		i += n;
	}
	return o;
}

/* Write the batch with one write(2). The file must only ever grow by whole
 * records: a short write is cut back off and counted as lost. */
static void flush_batch(struct kiln_log *l)
{
	ssize_t n;

	if (l->batch_len == 0)
		return;
	do {
		n = write(l->fd, l->batch, l->batch_len);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)l->batch_len) {
		l->bytes += (uint64_t)n;
	} else {
		if (n > 0 && ftruncate(l->fd, (off_t)l->bytes) < 0)
			l->bytes += (uint64_t)n; /* could not cut: at least count it */
		l->lost = true;
		l->dropped += l->batch_len;
	}
	l->batch_len = 0;
}

static size_t put_prefix(char *dst, const char *ts, int tag)
{
	static const char *const tags[] = {"", "out| ", "err| ", "kiln| "};
	size_t t = strlen(tags[tag]);

	memcpy(dst, ts, LOG_TS_LEN);
	memcpy(dst + LOG_TS_LEN, tags[tag], t);
	return LOG_TS_LEN + t;
}

/* Add one record to the batch, or, if it would take the file past the cap,
 * the truncation note instead (once) and nothing more after it. */
static void emit(struct kiln_log *l, int tag, const char *text, size_t len)
{
	size_t start, o;

	if (l->truncated) {
		l->dropped += len;
		return;
	}
	if (l->batch_len + LOG_RECORD_MAX(len) + LOG_TRUNC_NOTE > LOG_BATCH_CAP)
		flush_batch(l);
	start = l->batch_len;
	o = start + put_prefix(l->batch + start, l->ts, tag);
	o += sanitize(l->batch + o, text, len);
	l->batch[o++] = '\n';
	if (l->bytes + o <= l->cap) {
		l->batch_len = o;
		return;
	}
	/* Over the cap: this record goes, the note comes, the rest is dropped.
	 * The note itself may go past the cap by its own length. */
	l->dropped += len;
	l->truncated = true;
	o = start + put_prefix(l->batch + start, l->ts, TAG_KILN);
	o += (size_t)snprintf(l->batch + o, LOG_BATCH_CAP - o,
			      "log truncated at %" PRIu64 " bytes\n", l->bytes + start);
	l->batch_len = o;
}

/* The held partial line goes out as a line of its own (stream switch,
 * note, close). */
static void emit_held(struct kiln_log *l)
{
	if (l->held_len == 0)
		return;
	emit(l, l->held_stream, l->held, l->held_len);
	l->held_len = 0;
}

/* The held line reached LOG_LINE_MAX: write it as a line, except for an
 * incomplete UTF-8 sequence at its end, which stays held so that a
 * character is not cut in two. */
static void emit_split(struct kiln_log *l)
{
	const unsigned char *h = (const unsigned char *)l->held;
	size_t cut = l->held_len, j;

	for (j = 1; j <= 3 && j <= l->held_len; j++) {
		unsigned char c = h[l->held_len - j];
		size_t need;

		if ((c & 0xC0) == 0x80)
			continue; /* a continuation byte: look further back */
		need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
		if (need > j)
			cut = l->held_len - j;
		break;
	}
	emit(l, l->held_stream, l->held, cut);
	memmove(l->held, l->held + cut, l->held_len - cut);
	l->held_len -= cut;
}

void kiln_log_append(struct kiln_log *l, int stream, const char *buf, size_t len)
{
	int tag = stream == 1 ? TAG_OUT : TAG_ERR;

	if (l == NULL || len == 0)
		return;
	stamp(l);
	if (l->held_len > 0 && l->held_stream != tag)
		emit_held(l);
	l->held_stream = tag;
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t seg = nl != NULL ? (size_t)(nl - buf) : len;

		while (seg > 0) {
			size_t n;

			if (l->held_len == LOG_LINE_MAX)
				emit_split(l);
			n = LOG_LINE_MAX - l->held_len;
			if (n > seg)
				n = seg;
			memcpy(l->held + l->held_len, buf, n);
			l->held_len += n;
			buf += n;
			len -= n;
			seg -= n;
		}
		if (nl != NULL) {
			size_t n = l->held_len;

			/* CRLF output: the CR is line-ending noise, not content. */
			if (n > 0 && l->held[n - 1] == '\r')
				n--;
			emit(l, tag, l->held, n);
			l->held_len = 0;
			buf++;
			len--;
		}
	}
	flush_batch(l);
}

void kiln_log_note(struct kiln_log *l, const char *fmt, ...)
{
	char msg[LOG_NOTE_MAX];
	va_list ap;
	int n;

	if (l == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	if (l->filter != NULL)
		n = (int)l->filter(l->filter_ctx, msg, (size_t)n);
	stamp(l);
	emit_held(l);
	emit(l, TAG_KILN, msg, (size_t)n);
	flush_batch(l);
}

void kiln_log_close(struct kiln_log *l, uint64_t *bytes, bool *truncated)
{
	if (l == NULL) {
		if (bytes != NULL)
			*bytes = 0;
		if (truncated != NULL)
			*truncated = false;
		return;
	}
	stamp(l);
	emit_held(l);
	flush_batch(l);
	if (fsync(l->fd) < 0)
		l->lost = true;
	close(l->fd);
	if (bytes != NULL)
		*bytes = l->bytes;
	if (truncated != NULL)
		*truncated = l->truncated || l->lost;
	free(l->batch);
	free(l);
}
