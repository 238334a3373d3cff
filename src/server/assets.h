/* SPDX-License-Identifier: Apache-2.0 */
/* The dashboard's static files, embedded at build time
 * (scripts/embed-assets.py over src/server/dashboard/). */
#ifndef KILN_SERVER_ASSETS_H
#define KILN_SERVER_ASSETS_H

#include <stddef.h>

struct kiln_asset {
	const char *name;
	const char *content_type;
	const unsigned char *data;
	size_t size;
};

/* Ends with an entry whose name is NULL. */
extern const struct kiln_asset kiln_assets[];

#endif
