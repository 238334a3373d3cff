/* SPDX-License-Identifier: Apache-2.0 */
/* The alert rule "far above the usual" and the webhook signature. */
#include <math.h>
#include <string.h>

#include "server/alerts.h"
#include "tap.h"

int main(void)
{
	char hex[65];
	unsigned char key[32];
	/* Welford over 5 samples of 1.0 s: mean 1, m2 0. */
	double mean = 1.0, m2 = 0.0;

	ok(!kiln_alert_far_above(4, mean, m2, 100, 5), "fewer than 5 samples: never");
	ok(kiln_alert_far_above(5, mean, m2, 100, 5), "100 s against a steady 1 s: alert");
	ok(!kiln_alert_far_above(5, mean, m2, 4, 5), "below the floor: no alert");
	ok(!kiln_alert_far_above(5, 10, 0, 15, 5), "less than twice the mean: no alert");
	/* mean 10, sd 10 (m2 = sd^2 * (n-1) = 400 for n = 5) */
	ok(!kiln_alert_far_above(5, 10, 400, 45, 5), "within 4 sd: no alert");
	ok(kiln_alert_far_above(5, 10, 400, 55, 5), "beyond 4 sd and twice the mean: alert");
	ok(!kiln_alert_far_above(5, mean, m2, NAN, 5), "NaN: no alert");
	ok(!kiln_alert_far_above(5, mean, m2, -1, 0), "unknown (-1): no alert");

	/* Python: hmac.new(b'k'*32, b'1796649662.{"a":1}', hashlib.sha256) */
	memset(key, 'k', sizeof(key));
	kiln_alerts_sign(key, sizeof(key), "1796649662", "{\"a\":1}", 7, hex);
	is_str(hex, "b3b69b34dde54963027efb09678bf78a675dc04876761a85bce4d251d803ee7b",
	       "HMAC-SHA256 over timestamp.body");
	kiln_alerts_sign(key, sizeof(key), "1796649663", "{\"a\":1}", 7, hex);
	ok(strcmp(hex, "b3b69b34dde54963027efb09678bf78a675dc04876761a85bce4d251d803ee7b") != 0,
	   "another timestamp, another signature (replay of a body under a new time fails)");
	return tap_done();
}
