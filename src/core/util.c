/* SPDX-License-Identifier: Apache-2.0 */
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

static int parse_digits(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*end = p;
	*out = v;
	return 0;
}

int kiln_parse_size(const char *s, uint64_t max, uint64_t *out, struct kiln_error **err)
{
	const char *end = NULL;
	uint64_t v, mult = 1;
	int r;

	if (s == NULL || *s == '\0')
		return kiln_error_set(err, EINVAL, "empty size");
	r = parse_digits(s, &end, &v);
	if (r == -1)
		return kiln_error_set(err, EINVAL, "invalid size '%s' (expected e.g. 512M or 2G)",
				      s);
	if (r == -2)
		return kiln_error_set(err, ERANGE, "size '%s' is too large", s);
	switch (*end) {
	case '\0': break;
	case 'k':
	case 'K':
		mult = 1ULL << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1ULL << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1ULL << 30;
		end++;
		break;
	case 't':
	case 'T':
		mult = 1ULL << 40;
		end++;
		break;
	case 'b':
	case 'B': break;
	default:
		return kiln_error_set(err, EINVAL, "invalid size suffix in '%s' (use K, M, G or T)",
				      s);
	}
	if (mult > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
		end += strlen(end);
	else if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0')
		return kiln_error_set(err, EINVAL, "invalid size '%s' (expected e.g. 512M or 2G)",
				      s);
	if (v > UINT64_MAX / mult)
		return kiln_error_set(err, ERANGE, "size '%s' is too large", s);
	v *= mult;
	if (v > max)
		return kiln_error_set(err, ERANGE, "size '%s' exceeds the maximum of %llu bytes", s,
				      (unsigned long long)max);
	*out = v;
	return 0;
}

int kiln_parse_duration(const char *s, bool allow_zero, uint64_t max, uint64_t *out,
			struct kiln_error **err)
{
	const char *end = NULL;
	uint64_t v, mult = 1;
	int r;

	if (s == NULL || *s == '\0')
		return kiln_error_set(err, EINVAL, "empty duration");
	r = parse_digits(s, &end, &v);
	if (r == -1)
		return kiln_error_set(err, EINVAL,
				      "invalid duration '%s' (expected e.g. 90, 30s, 10m, 2h)", s);
	if (r == -2)
		return kiln_error_set(err, ERANGE, "duration '%s' is too large", s);
	switch (*end) {
	case '\0': break;
	case 's':
		mult = 1;
		end++;
		break;
	case 'm':
		mult = 60;
		end++;
		break;
	case 'h':
		mult = 3600;
		end++;
		break;
	case 'd':
		mult = 86400;
		end++;
		break;
	default:
		return kiln_error_set(err, EINVAL,
				      "invalid duration unit in '%s' (use s, m, h or d)", s);
	}
	if (*end != '\0')
		return kiln_error_set(err, EINVAL,
				      "invalid duration '%s' (expected e.g. 90, 30s, 10m, 2h)", s);
	if (v > UINT64_MAX / mult || v * mult > max)
		return kiln_error_set(err, ERANGE,
				      "duration '%s' exceeds the maximum of %llu seconds", s,
				      (unsigned long long)max);
	v *= mult;
	if (v == 0 && !allow_zero)
		return kiln_error_set(err, EINVAL, "duration must be greater than zero");
	*out = v;
	return 0;
}

int kiln_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		    struct kiln_error **err)
{
	const char *end = NULL;
	uint64_t v;
	int r;

	if (s == NULL || *s == '\0')
		return kiln_error_set(err, EINVAL, "empty number");
	r = parse_digits(s, &end, &v);
	if (r == -2) /* all digits, but more than 64 bits: out of range, not malformed */
		return kiln_error_set(err, ERANGE, "%s is out of range [%llu, %llu]", s,
				      (unsigned long long)min, (unsigned long long)max);
	if (r != 0 || *end != '\0')
		return kiln_error_set(err, EINVAL, "invalid number '%s'", s);
	if (v < min || v > max)
		return kiln_error_set(err, ERANGE, "%s is out of range [%llu, %llu]", s,
				      (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

int kiln_parse_cpus(const char *s, uint64_t max_milli, uint64_t *out_milli, struct kiln_error **err)
{
	const char *end = NULL;
	uint64_t whole, frac = 0;
	int digits = 0, r;

	if (s == NULL || *s == '\0')
		return kiln_error_set(err, EINVAL, "empty CPU count");
	r = parse_digits(s, &end, &whole);
	if (r == -1)
		return kiln_error_set(err, EINVAL,
				      "invalid CPU count '%s' (expected e.g. 2 or 0.5)", s);
	if (r == -2)
		return kiln_error_set(err, ERANGE, "CPU count '%s' is too large", s);
	if (*end == '.') {
		end++;
		while (isdigit((unsigned char)*end)) {
			if (digits == 3)
				return kiln_error_set(err, EINVAL,
						      "CPU count '%s' has more than 3 decimals", s);
			frac = frac * 10 + (uint64_t)(*end - '0');
			digits++;
			end++;
		}
		if (digits == 0)
			return kiln_error_set(err, EINVAL, "invalid CPU count '%s'", s);
		while (digits < 3) {
			frac *= 10;
			digits++;
		}
	}
	if (*end != '\0')
		return kiln_error_set(err, EINVAL,
				      "invalid CPU count '%s' (expected e.g. 2 or 0.5)", s);
	if (whole == 0 && frac == 0)
		return kiln_error_set(err, EINVAL, "CPU count must be greater than zero");
	/* whole <= max_milli / 1000 makes whole * 1000 <= max_milli, so neither
	 * the multiplication nor the addition of frac can wrap. */
	if (whole > max_milli / 1000 || frac > max_milli - whole * 1000)
		return kiln_error_set(err, ERANGE,
				      "CPU count '%s' exceeds the maximum of %llu.%03llu", s,
				      (unsigned long long)(max_milli / 1000),
				      (unsigned long long)(max_milli % 1000));
	*out_milli = whole * 1000 + frac;
	return 0;
}

/* ASCII only, on purpose: isalpha()/isalnum() follow the locale and accept
 * bytes such as 0xE9 in single-byte locales (e.g. ISO-8859-1). */
static bool env_name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool env_name_char(char c)
{
	return env_name_start(c) || (c >= '0' && c <= '9');
}

bool kiln_env_valid(const char *s)
{
	const char *p = s;

	if (s == NULL || !env_name_start(*p))
		return false;
	for (p++; *p != '=' && *p != '\0'; p++)
		if (!env_name_char(*p))
			return false;
	return *p == '=';
}

bool kiln_sandbox_path_valid(const char *s)
{
	const char *p;
	size_t len;

	if (s == NULL || s[0] != '/')
		return false;
	len = strlen(s);
	if (len < 2 || len >= PATH_MAX)
		return false;
	for (p = s; *p != '\0';) {
		const char *c = p + 1; /* start of component */
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);

		if (n == 0)
			return false; /* "//" or trailing "/" */
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		p = c + n;
	}
	return true;
}

size_t kiln_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	size_t n, k;
	uint32_t c;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xE0) == 0xC0) {
		n = 2;
		c = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		n = 3;
		c = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		n = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (k = 1; k < n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3F);
	}
	/* overlong, above U+10FFFF, or a surrogate */
	if (c < min_cp[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

bool kiln_b64url_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

bool kiln_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = kiln_utf8_decode(s + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

void kiln_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}
