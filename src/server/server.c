/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilnd's shared state: the change counter that wakes log followers and
 * idle workers, the table of running sandboxes (for cancel), the
 * thread-local database handles, and small helpers every part uses.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/sys.h"
#include "server/server.h"
#include "store/db.h"

static void deadline_after(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int kiln_server_init(struct kiln_server *s, struct kiln_error **err)
{
	pthread_condattr_t ca;
	int e;

	if ((e = pthread_mutex_init(&s->mu, NULL)) != 0)
		return kiln_error_set(err, e, "mutex");
	/* Waits use CLOCK_MONOTONIC: a clock step must not stall followers. */
	if ((e = pthread_condattr_init(&ca)) != 0 ||
	    (e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0 ||
	    (e = pthread_cond_init(&s->changed, &ca)) != 0 ||
	    (e = pthread_cond_init(&s->db_free, &ca)) != 0) {
		pthread_mutex_destroy(&s->mu);
		return kiln_error_set(err, e, "condition variable");
	}
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < KILN_MAX_WORKERS; i++)
		s->running[i].cancel_fd = -1;
	return 0;
}

void kiln_server_destroy(struct kiln_server *s)
{
	kiln_server_db_close(s);
	pthread_cond_destroy(&s->db_free);
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->mu);
}

int kiln_server_db_open(struct kiln_server *s, unsigned n, struct kiln_error **err)
{
	struct kiln_db *db;

	if (n > KILN_DB_POOL_MAX)
		n = KILN_DB_POOL_MAX;
	while (s->db_nall < n) {
		if (kiln_db_open(s->db_path, &db, err) < 0)
			return -1;
		pthread_mutex_lock(&s->mu);
		s->db_all[s->db_nall++] = db;
		s->db_pool[s->db_nfree++] = db;
		pthread_mutex_unlock(&s->mu);
	}
	return 0;
}

/* At the end: every handle is back (the threads that borrow them are
 * gone). */
void kiln_server_db_close(struct kiln_server *s)
{
	for (unsigned i = 0; i < s->db_nall; i++)
		kiln_db_close(s->db_all[i]);
	s->db_nall = s->db_nfree = 0;
}

struct kiln_db *kiln_server_db_acquire(struct kiln_server *s, struct kiln_error **err)
{
	struct kiln_db *db = NULL;
	struct timespec ts;

	deadline_after(&ts, KILN_DB_WAIT_MS);
	pthread_mutex_lock(&s->mu);
	while (s->db_nfree == 0)
		if (pthread_cond_timedwait(&s->db_free, &s->mu, &ts) == ETIMEDOUT)
			break;
	if (s->db_nfree > 0)
		db = s->db_pool[--s->db_nfree];
	pthread_mutex_unlock(&s->mu);
	if (db == NULL)
		kiln_error_set(err, EBUSY, "no free database handle within %d ms", KILN_DB_WAIT_MS);
	return db;
}

void kiln_server_db_release(struct kiln_server *s, struct kiln_db *db)
{
	if (db == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->db_pool[s->db_nfree++] = db;
	pthread_cond_signal(&s->db_free);
	pthread_mutex_unlock(&s->mu);
}

void kiln_server_notify(struct kiln_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->seq++;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
}

void kiln_server_notify_queue(struct kiln_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->seq++;
	s->qseq++;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
}

static uint64_t wait_on(struct kiln_server *s, uint64_t *counter, uint64_t seen, int timeout_ms)
{
	struct timespec ts;
	uint64_t now;

	deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&s->mu);
	while (*counter == seen && !s->stopping)
		if (pthread_cond_timedwait(&s->changed, &s->mu, &ts) == ETIMEDOUT)
			break;
	now = *counter;
	pthread_mutex_unlock(&s->mu);
	return now;
}

uint64_t kiln_server_wait(struct kiln_server *s, uint64_t seen, int timeout_ms)
{
	return wait_on(s, &s->seq, seen, timeout_ms);
}

uint64_t kiln_server_wait_queue(struct kiln_server *s, uint64_t seen, int timeout_ms)
{
	return wait_on(s, &s->qseq, seen, timeout_ms);
}

bool kiln_server_stopping(struct kiln_server *s)
{
	bool v;

	pthread_mutex_lock(&s->mu);
	v = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return v;
}

bool kiln_server_jobs_running(struct kiln_server *s)
{
	bool v;

	pthread_mutex_lock(&s->mu);
	v = s->nbusy > 0;
	pthread_mutex_unlock(&s->mu);
	return v;
}

/* Under mu: the fd is open while it is registered. The pipe is
 * non-blocking: a full pipe already says "cancel". */
static void poke(int fd)
{
	char c = 'c';
	ssize_t n;

	if (fd < 0)
		return;
	do
		n = write(fd, &c, 1);
	while (n < 0 && errno == EINTR);
}

int kiln_server_cancel_running(struct kiln_server *s, int64_t job)
{
	int r = -1;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nrunning; i++)
		if (s->running[i].job == job) {
			poke(s->running[i].cancel_fd);
			r = 0;
		}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int kiln_server_running_add(struct kiln_server *s, int64_t job, int cancel_fd)
{
	int r = 0;

	pthread_mutex_lock(&s->mu);
	if (s->nrunning >= KILN_MAX_WORKERS) {
		r = -1;
	} else {
		s->running[s->nrunning].job = job;
		s->running[s->nrunning].cancel_fd = cancel_fd;
		s->nrunning++;
		if (s->stopping)
			poke(cancel_fd);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

void kiln_server_running_remove(struct kiln_server *s, int64_t job)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nrunning; i++)
		if (s->running[i].job == job) {
			s->running[i] = s->running[s->nrunning - 1];
			s->running[s->nrunning - 1].cancel_fd = -1;
			s->nrunning--;
			break;
		}
	pthread_mutex_unlock(&s->mu);
}

void kiln_server_stop(struct kiln_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	s->seq++;
	s->qseq++;
	for (size_t i = 0; i < s->nrunning; i++)
		poke(s->running[i].cancel_fd);
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
}

void kiln_server_drain_streams(struct kiln_server *s, int timeout_ms)
{
	uint64_t end = kiln_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	unsigned n;

	kiln_server_notify(s);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		n = s->nstreams;
		pthread_mutex_unlock(&s->mu);
		if (n == 0 || kiln_now_ns() >= end)
			break;
		poll(NULL, 0, 20);
	}
}

void kiln_logf(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* One write per line, so lines of concurrent threads do not mix. */
	fprintf(stderr, "kilnd: %s\n", buf);
}

void kiln_sanitize(char *dst, size_t cap, const char *src)
{
	size_t i = 0;

	if (cap == 0)
		return;
	for (; src[i] != '\0' && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[i] = '\0';
}

void kiln_format_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}
