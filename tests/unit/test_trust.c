/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A project's signing trust (src/server/trust.c): the `signing:` section of
 * a policy file, read strictly with line and column in every error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "server/trust.h"
#include "tap.h"

#define K1 "RWT/QDFkwOp/u550gMt8fpCt04EFEqfJGEaVqVZ4wHvmTQRPAbFGzZ3Z"
#define K2 "RWSrrZXbOGAqEsqpLpjEAjh+estMErKR5Q7O/T7hJU7w6PR+9CuqBPQY"

static int parse(const char *text, struct kiln_trust *t, char *msg, size_t len)
{
	struct kiln_error *err = NULL;
	int r = kiln_trust_parse("p.yml", text, strlen(text), t, &err);

	snprintf(msg, len, "%s", err ? err->msg : "");
	kiln_error_free(&err);
	return r;
}

int main(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"signing:\n  required: true\n  keyz: []\n",
		 "p.yml:3:3: signing: unknown key 'keyz'"},
		{"signing:\n  keys:\n    - RWQnotakey\n", "p.yml:3:7: signing.keys:"},
		{"signing:\n  keys: " K1 "\n", "p.yml:2:9: signing.keys: expected a list"},
		{"signing:\n  required: yes please\n", "p.yml:2:13: signing.required"},
		{"signing:\n  required: true\n", "signing: required is true but no keys"},
		{"signing:\n  required: true\n  required: false\n", "p.yml:3:3"},
		{"- a\n- b\n", "a policy must be a mapping"},
	};
	struct kiln_trust *t = calloc(1, sizeof(*t));
	char msg[1024];

	if (t == NULL)
		return 1;
	ok(parse("", t, msg, sizeof(msg)) == 0 && !t->required && t->nkeys == 0,
	   "an empty policy: not required, no keys");
	ok(parse("egress: [x]\nother: 1\n", t, msg, sizeof(msg)) == 0 && !t->required &&
		   t->nkeys == 0,
	   "no signing section: not required (other sections are the policy module's)");
	ok(parse("signing:\n  required: true\n  keys:\n    - " K1 "\n    - " K2 "\n", t, msg,
		 sizeof(msg)) == 0 &&
		   t->required && t->nkeys == 2,
	   "required with two keys: %s", msg);
	{
		char id[KILN_MINISIGN_KEYID_HEX];
		kiln_minisign_keyid(t->keys[0].keynum, id);
		is_str(id, "BB7FEAC0643140FF", "the first key's id");
	}
	ok(parse("signing:\n  keys: [" K1 "]\n", t, msg, sizeof(msg)) == 0 && !t->required &&
		   t->nkeys == 1,
	   "keys without required: optional signing");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(parse(bad[i].text, t, msg, sizeof(msg)) < 0 && strstr(msg, bad[i].want) != NULL,
		   "refused with '%s': %s", bad[i].want, msg);
	free(t);
	return tap_done();
}
