/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A job's log: DATA/logs/<job>.log, append-only, size-capped. Each line is
 *
 *   2026-11-23T17:40:01.123Z out| what the build printed
 *   2026-11-23T17:40:01.125Z err| ...
 *   2026-11-23T17:40:02.000Z kiln| job finished: exit 0
 *
 * The stream tag comes first on every line the build wrote, so a build
 * cannot forge a "kiln|" line (THREATS.md §13). Output is split into lines
 * (a partial line is held until its newline, the stream switches, a note,
 * or 64 KiB, where a longer line is split); the CR of a CRLF is dropped;
 * control characters other than tab (C0, DEL, C1), and bytes that are not
 * valid UTF-8, are replaced by U+FFFD (so the log is safe to print to a
 * terminal); past the cap one final "kiln| log truncated at N bytes" line
 * is written (N = the log's size before it; the note itself may go past the
 * cap) and the rest, notes included, is counted but dropped.
 * Each append is written with one write(2) of whole records (a follower
 * reading the file never sees half a record) and the file is fsynced at
 * close. Opening an existing log appends to it; the cap counts the whole
 * file. One struct kiln_log is used by one thread.
 */
#ifndef KILN_STORE_LOGS_H
#define KILN_STORE_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct kiln_log;

int kiln_log_open(const char *dir, int64_t job, uint64_t cap, struct kiln_log **out,
		  struct kiln_error **err);
/* stream 1 = out, 2 = err */
void kiln_log_append(struct kiln_log *l, int stream, const char *buf, size_t len);
void kiln_log_note(struct kiln_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A filter every note passes through before it is written (worker.c
 * masks secrets with it): it rewrites buf[0..len) in place, never longer,
 * and returns the new length. NULL removes it. */
typedef size_t (*kiln_log_filter_fn)(void *ctx, char *buf, size_t len);
void kiln_log_set_filter(struct kiln_log *l, kiln_log_filter_fn fn, void *ctx);
/* Flush held partial lines, fsync, close. Accepts NULL. *bytes = the size
 * of the file (log_bytes); *truncated is also true when a write failed
 * (disk full: the log misses output). */
void kiln_log_close(struct kiln_log *l, uint64_t *bytes, bool *truncated);
/* Path of a job's log (buf >= PATH_MAX). */
void kiln_log_path(const char *dir, int64_t job, char *buf, size_t len);

#endif
