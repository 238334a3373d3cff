/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The job log, judged by reading the file back as a follower would: every
 * record is a whole line with a timestamp and a stream tag, lines split
 * across writes come out whole, what a terminal would obey is replaced, a
 * build cannot forge a kiln| line, and the cap leaves one truncation note.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "store/logs.h"
#include "tap.h"

#define FFFD "\xEF\xBF\xBD"

static char dir[128];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

struct lines {
	char *buf;
	size_t size;
	char *line[4096];
	size_t n;
	int bad_prefix; /* lines whose first 25 bytes are not a timestamp */
	int unterminated;
};

/* "2026-11-23T17:40:01.123Z " */
static int ts_ok(const char *s, size_t len)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
	size_t i;

	if (len < 25)
		return 0;
	for (i = 0; i < 25; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	}
	return strncmp(s, "2024", 4) >= 0;
}

/* Read the log and split it: line[i] points past the timestamp ("out| ..."). */
static void read_lines(int64_t job, struct lines *L)
{
	char path[PATH_MAX];
	struct stat st;
	char *p, *end;
	int fd;

	memset(L, 0, sizeof(*L));
	kiln_log_path(dir, job, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		L->buf = calloc(1, 1);
		if (fd >= 0)
			close(fd);
		return;
	}
	L->size = (size_t)st.st_size;
	L->buf = malloc(L->size + 1);
	if (read(fd, L->buf, L->size) != (ssize_t)L->size)
		L->size = 0;
	L->buf[L->size] = '\0';
	close(fd);
	p = L->buf;
	end = L->buf + L->size;
	while (p < end && L->n < 4096) {
		char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL) {
			L->unterminated++;
			break;
		}
		*nl = '\0';
		if (!ts_ok(p, (size_t)(nl - p)))
			L->bad_prefix++;
		L->line[L->n++] = (size_t)(nl - p) >= 25 ? p + 25 : p;
		p = nl + 1;
	}
}

static void free_lines(struct lines *L)
{
	free(L->buf);
}

static size_t file_size(int64_t job)
{
	char path[PATH_MAX];
	struct stat st;

	kiln_log_path(dir, job, path, sizeof(path));
	return stat(path, &st) == 0 ? (size_t)st.st_size : (size_t)-1;
}

/* Does the file end with a whole record (or is it empty)? */
static int whole_records(int64_t job)
{
	struct lines L;
	int good;

	read_lines(job, &L);
	good = L.unterminated == 0 && L.bad_prefix == 0;
	free_lines(&L);
	return good;
}

static struct kiln_log *open_log(int64_t job, uint64_t cap)
{
	struct kiln_log *l = NULL;
	struct kiln_error *err = NULL;

	if (kiln_log_open(dir, job, cap, &l, &err) < 0) {
		printf("# open log %lld: %s\n", (long long)job, err->msg);
		kiln_error_free(&err);
	}
	return l;
}

static void test_open_path(void)
{
	char path[PATH_MAX], want[PATH_MAX];
	struct kiln_log *l;
	struct kiln_error *err = NULL;
	struct stat st;
	uint64_t bytes = 1;
	bool trunc = true;

	kiln_log_path(dir, 42, path, sizeof(path));
	snprintf(want, sizeof(want), "%s/42.log", dir);
	is_str(path, want, "log path");
	l = open_log(1, 1 << 20);
	ok(l != NULL, "open log 1");
	kiln_log_path(dir, 1, path, sizeof(path));
	ok(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600,
	   "log file created 0600");
	kiln_log_close(l, &bytes, &trunc);
	ok(bytes == 0 && !trunc, "empty log: 0 bytes, not truncated");
	kiln_log_close(NULL, &bytes, &trunc);
	ok(1, "close(NULL) is fine");
	kiln_log_append(NULL, 1, "x\n", 2);
	kiln_log_note(NULL, "x");
	ok(1, "append/note on NULL are fine");

	/* A symlink in place of the log is not followed. */
	kiln_log_path(dir, 2, path, sizeof(path));
	ok(symlink("/etc/passwd", path) == 0, "plant a symlink at 2.log");
	l = NULL;
	ok(kiln_log_open(dir, 2, 1000, &l, &err) < 0 && err && err->code == ELOOP,
	   "open through a symlink refused (ELOOP)");
	kiln_error_free(&err);
	ok(l == NULL, "no log handed out");
	unlink(path);
}

static void test_split_lines(void)
{
	struct kiln_log *l = open_log(3, 1 << 20);
	struct lines L;
	uint64_t bytes = 0;
	bool trunc = true;

	kiln_log_append(l, 1, "hel", 3);
	is_int(file_size(3), 0, "a partial line is held, nothing written");
	kiln_log_append(l, 1, "lo\nwor", 6);
	ok(whole_records(3), "only whole records in the file");
	kiln_log_append(l, 1, "ld\n\nlast", 8);
	ok(whole_records(3), "only whole records in the file");
	kiln_log_close(l, &bytes, &trunc);
	read_lines(3, &L);
	is_int(L.n, 4, "4 lines");
	is_int(L.bad_prefix, 0, "every line starts with a timestamp");
	is_int(L.unterminated, 0, "every line ends with a newline");
	is_str(L.line[0], "out| hello", "line split over two writes comes out whole");
	is_str(L.line[1], "out| world", "second line");
	is_str(L.line[2], "out| ", "empty line");
	is_str(L.line[3], "out| last", "held partial line flushed at close");
	is_int(bytes, L.size, "bytes = file size");
	ok(!trunc, "not truncated");
	free_lines(&L);
}

static void test_stream_switch(void)
{
	struct kiln_log *l = open_log(4, 1 << 20);
	struct lines L;

	kiln_log_append(l, 1, "partial out", 11);
	kiln_log_append(l, 2, "an error\n", 9);
	kiln_log_append(l, 2, "err partial", 11);
	kiln_log_note(l, "job finished: exit %d", 3);
	kiln_log_append(l, 1, "x\r\n", 3);
	kiln_log_close(l, NULL, NULL);
	read_lines(4, &L);
	is_int(L.n, 5, "5 lines");
	is_str(L.line[0], "out| partial out", "partial line flushed when the stream switches");
	is_str(L.line[1], "err| an error", "err line");
	is_str(L.line[2], "err| err partial", "partial line flushed before a note");
	is_str(L.line[3], "kiln| job finished: exit 3", "note");
	is_str(L.line[4], "out| x", "CR of CRLF dropped");
	is_int(L.bad_prefix, 0, "timestamps");
	free_lines(&L);
}

static void test_sanitize(void)
{
	static const char in[] = "a\x01"
				 "b\tc\x7f\x1b[31mred\x1b[0m\r\n"
				 "x\ry\n"
				 "\xff\xfe ok \xc3\x28 \xe2\x82\xac \xf0\x9f\x98\x80\n"
				 "\xc0\xaf|\xed\xa0\x80|\xc2\x9b|\xf4\x90\x80\x80|\xe2\x82\n"
				 "kiln| job finished: exit 0\n"
				 "nul\0byte\n";
	struct kiln_log *l = open_log(5, 1 << 20);
	struct lines L;

	kiln_log_append(l, 1, in, sizeof(in) - 1);
	kiln_log_append(l, 2, "\x1b]0;title\x07\n", 11);
	kiln_log_note(l, "note with\nnewline and \x1b[2J");
	kiln_log_close(l, NULL, NULL);
	read_lines(5, &L);
	is_int(L.n, 8, "8 lines");
	is_str(L.line[0], "out| a" FFFD "b\tc" FFFD FFFD "[31mred" FFFD "[0m",
	       "C0 controls, DEL and ESC replaced, tab kept");
	is_str(L.line[1], "out| x" FFFD "y", "a lone CR is replaced");
	is_str(L.line[2], "out| " FFFD FFFD " ok " FFFD "( \xe2\x82\xac \xf0\x9f\x98\x80",
	       "invalid bytes replaced, valid UTF-8 kept");
	is_str(L.line[3],
	       "out| " FFFD FFFD "|" FFFD FFFD FFFD "|" FFFD "|" FFFD FFFD FFFD FFFD "|" FFFD FFFD,
	       "overlong, surrogate, C1, >U+10FFFF, truncated sequence replaced");
	is_str(L.line[4], "out| kiln| job finished: exit 0", "a forged kiln| stays prefixed out|");
	is_str(L.line[5], "out| nul" FFFD "byte", "NUL replaced");
	is_str(L.line[6], "err| " FFFD "]0;title" FFFD, "OSC sequence defused");
	is_str(L.line[7], "kiln| note with" FFFD "newline and " FFFD "[2J",
	       "a note cannot break its line either");
	free_lines(&L);
}

static void test_long_lines(void)
{
	size_t n = 64 * 1024 + 10, i;
	char *big = malloc(n + 8);
	struct kiln_log *l = open_log(6, 1 << 22);
	struct lines L;

	memset(big, 'x', n);
	big[n] = '\n';
	kiln_log_append(l, 1, big, n + 1);
	/* Exactly 64 KiB, delivered in small pieces. */
	for (i = 0; i < 64 * 1024; i += 1000)
		kiln_log_append(l, 1, big, 64 * 1024 - i < 1000 ? 64 * 1024 - i : 1000);
	kiln_log_append(l, 1, "\n", 1);
	/* A 2-byte character across the 64 KiB boundary stays whole. */
	memcpy(big + 65535, "\xc3\xa9\n", 3);
	kiln_log_append(l, 2, big, 65538);
	kiln_log_close(l, NULL, NULL);
	read_lines(6, &L);
	is_int(L.n, 5, "5 lines");
	ok(L.n > 0 && strlen(L.line[0]) == 5 + 65536, "a long line is split at 64 KiB");
	ok(L.n > 1 && strcmp(L.line[1], "out| xxxxxxxxxx") == 0, "its rest is the next line");
	ok(L.n > 2 && strlen(L.line[2]) == 5 + 65536, "a line of exactly 64 KiB stays one line");
	ok(L.n > 3 && strlen(L.line[3]) == 5 + 65535, "split before a cut character");
	ok(L.n > 4 && strcmp(L.line[4], "err| \xc3\xa9") == 0, "the character stays whole");
	is_int(L.bad_prefix, 0, "timestamps");
	free_lines(&L);
	free(big);
}

static void test_cap(void)
{
	struct kiln_log *l = open_log(7, 1000);
	struct lines L;
	uint64_t bytes = 0;
	bool trunc = false;
	int i, notes = 0, out = 0;
	size_t kept = 0, k, note_at = 0;
	char want[128];

	for (i = 0; i < 100; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "line %03d of the build output\n", i);

		kiln_log_append(l, 1, line, (size_t)n);
	}
	kiln_log_note(l, "job finished: exit 0");
	kiln_log_close(l, &bytes, &trunc);
	read_lines(7, &L);
	for (k = 0; k < L.n; k++) {
		if (strncmp(L.line[k], "kiln| log truncated at ", 23) == 0) {
			notes++;
			note_at = k;
		} else if (strncmp(L.line[k], "out| ", 5) == 0) {
			out++;
		}
	}
	is_int(notes, 1, "exactly one truncation note");
	is_int(note_at, L.n - 1, "it is the last line");
	ok(out > 0 && out < 100, "some lines kept, the rest dropped (%d kept)", out);
	for (k = 0; k < note_at; k++)
		kept += 25 + strlen(L.line[k]) + 1;
	ok(kept <= 1000, "the lines before the note fit in the cap (%zu)", kept);
	snprintf(want, sizeof(want), "kiln| log truncated at %zu bytes", kept);
	ok(L.n > 0 && strcmp(L.line[L.n - 1], want) == 0, "note names the size: %s",
	   L.n ? L.line[L.n - 1] : "");
	ok(trunc, "close reports truncated");
	is_int(bytes, L.size, "bytes = file size");
	is_int(L.unterminated, 0, "no partial record");
	free_lines(&L);

	/* A line that alone exceeds the cap. */
	l = open_log(8, 10);
	kiln_log_append(l, 2, "0123456789abcdef\n", 17);
	kiln_log_append(l, 2, "more\n", 5);
	kiln_log_close(l, &bytes, &trunc);
	read_lines(8, &L);
	is_int(L.n, 1, "tiny cap: only the note");
	ok(L.n == 1 && strcmp(L.line[0], "kiln| log truncated at 0 bytes") == 0, "note: %s",
	   L.n ? L.line[0] : "");
	ok(trunc, "truncated");
	free_lines(&L);
}

static void test_reopen_appends(void)
{
	struct kiln_log *l = open_log(9, 1 << 20);
	struct lines L;
	uint64_t bytes = 0;

	kiln_log_append(l, 1, "first attempt\n", 14);
	kiln_log_close(l, NULL, NULL);
	l = open_log(9, 1 << 20);
	kiln_log_note(l, "retry");
	kiln_log_close(l, &bytes, NULL);
	read_lines(9, &L);
	is_int(L.n, 2, "reopening appends");
	is_int(bytes, L.size, "bytes counts the whole file");
	free_lines(&L);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kiln-test-logs.XXXXXX");
	if (mkdtemp(dir) == NULL)
		tap_skip_all("mkdtemp failed");
	test_open_path();
	test_split_lines();
	test_stream_switch();
	test_sanitize();
	test_long_lines();
	test_cap();
	test_reopen_appends();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
