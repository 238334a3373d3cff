/* SPDX-License-Identifier: Apache-2.0 */
/* The pure parts of the alerts (alerts.h): the "far above the usual" rule
 * and the webhook signature. No I/O, unit-tested in tests/unit. */
#include <math.h>
#include <string.h>

#include <sodium.h>

#include "server/alerts.h"

/* A measurement is judged once the project has this many jobs of it. */
#define MIN_SAMPLES 5
/* Far above: more than mean + SIGMAS standard deviations, more than
 * FACTOR times the mean, and above the measurement's floor. */
#define SIGMAS 4.0
#define FACTOR 2.0

bool kiln_alert_far_above(int64_t n, double mean, double m2, double value, double floor)
{
	double sd;

	if (n < MIN_SAMPLES || !(value >= 0))
		return false;
	sd = n > 1 ? sqrt(m2 / (double)(n - 1)) : 0;
	return value > floor && value > mean * FACTOR && value > mean + SIGMAS * sd;
}

void kiln_alerts_sign(const unsigned char *key, size_t keylen, const char *timestamp,
		      const char *body, size_t len, char hex[65])
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)timestamp, strlen(timestamp));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, 65, mac, sizeof(mac));
}
