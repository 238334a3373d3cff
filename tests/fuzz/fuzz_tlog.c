/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the audit log's parsers (src/trust/tlog.c): tile
 * paths, entry bundles, verifier keys and signed checkpoints, all of which
 * kilnd or `kiln audit` read from the network.
 *
 * The first byte picks the parser; the rest is its input. Properties
 * checked beyond "no crash": a tile path that parses formats back to the
 * same text; a bundle that splits covers the input exactly; a checkpoint
 * only opens if it carries a signature by the fixed test key (which the
 * fuzzer cannot forge), and a note signed here opens and round-trips.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "trust/tlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kiln_tlog_key key;

static void init(void)
{
	static int done;
	unsigned char seed[32] = {7};

	if (done)
		return;
	done = 1;
	if (sodium_init() < 0)
		abort();
	snprintf(key.name, sizeof(key.name), "kiln/fuzz");
	crypto_sign_seed_keypair(key.pk, key.sk, seed);
	key.has_sk = true;
	key.id = kiln_tlog_key_id(key.name, key.pk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_error *err = NULL;
	char *s;

	init();
	if (size < 1 || size > 70000)
		return 0;
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 4) {
	case 0: {
		int level;
		uint64_t n;
		unsigned w;
		char back[128];

		if (kiln_tlog_tile_parse(s, &level, &n, &w) == 0) {
			if (kiln_tlog_tile_path(level, n, w, back, sizeof(back)) < 0 ||
			    strcmp(back, s) != 0)
				abort();
		}
		break;
	}
	case 1: {
		static size_t off[256], len[256];
		int k = kiln_tlog_bundle_split(data + 1, size - 1, off, len, 256);
		size_t total = 0;

		for (int i = 0; i < k; i++) {
			if (off[i] + len[i] > size - 1)
				abort();
			total += 2 + len[i];
		}
		if (k >= 0 && total != size - 1)
			abort();
		break;
	}
	case 2: {
		struct kiln_tlog_key k;

		if (kiln_tlog_vkey_parse(s, &k, &err) == 0 &&
		    k.id != kiln_tlog_key_id(k.name, k.pk))
			abort();
		kiln_error_free(&err);
		break;
	}
	default: {
		struct kiln_tlog_checkpoint c, c2;

		if (kiln_tlog_checkpoint_open(&key, (const char *)data + 1, size - 1, &c, &err) ==
		    0) {
			/* It opened: it is ours; signing it again must give a
			 * note that opens to the same values. */
			char *note = kiln_tlog_checkpoint_sign(&key, &c);
			if (note == NULL ||
			    kiln_tlog_checkpoint_open(&key, note, strlen(note), &c2, &err) < 0 ||
			    c2.size != c.size || memcmp(c2.root, c.root, 32) != 0)
				abort();
			free(note);
		}
		kiln_error_free(&err);
		break;
	}
	}
	free(s);
	return 0;
}
