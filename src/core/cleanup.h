/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cleanup macros in the style of bubblewrap/crun (CONVENTIONS.md 4).
 * Always initialise a cleanup variable at its declaration. Use
 * steal_pointer()/steal_fd() to hand ownership to the caller.
 */
#ifndef KILN_CORE_CLEANUP_H
#define KILN_CORE_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void kiln_freep(void *p)
{
	free(*(void **)p);
}

static inline void kiln_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void kiln_fclosep(FILE **f)
{
	if (*f != NULL)
		fclose(*f);
}

#define cleanup_free __attribute__((cleanup(kiln_freep)))
#define cleanup_fd   __attribute__((cleanup(kiln_closep)))
#define cleanup_file __attribute__((cleanup(kiln_fclosep)))

static inline void *kiln_steal_pointer(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_pointer(pp) kiln_steal_pointer(pp)

static inline int steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

#endif
