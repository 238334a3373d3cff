/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing and provenance on the client side (docs/signing.md,
 * docs/provenance.md): `kiln keygen`, the manifest and signature of
 * `kiln submit --sign/--signature`, `kiln provenance` and the offline
 * `kiln verify`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "trust/dsse.h"
#include "trust/manifest.h"
#include "trust/minisign.h"
#include "trust/provenance.h"

#define KEYFILE_MAX	4096
#define PROVENANCE_MAX	(64u << 20)
#define PASSWORD_MAX	1024
#define SPKI_PREFIX_LEN 12
static const uint8_t spki_prefix[SPKI_PREFIX_LEN] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
						     0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

int cli_read_file(const char *path, size_t max, char **out, size_t *len, struct kiln_error **err)
{
	cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	cleanup_free char *buf = NULL;
	struct stat st;
	ssize_t n;

	*out = NULL;
	if (fd < 0)
		return kiln_error_set(err, errno, "open %s", path);
	if (fstat(fd, &st) < 0)
		return kiln_error_set(err, errno, "stat %s", path);
	if (!S_ISREG(st.st_mode))
		return kiln_error_set(err, 0, "%s is not a regular file", path);
	if ((uint64_t)st.st_size > max)
		return kiln_error_set(err, 0, "%s is larger than %zu bytes", path, max);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return kiln_error_set(err, ENOMEM, "read %s", path);
	n = kiln_read_all(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return kiln_error_set(err, errno, "read %s", path);
	buf[n] = '\0';
	*len = (size_t)n;
	*out = steal_pointer(&buf);
	return 0;
}

/* SHA-256 of size bytes of fd from offset 0 (pread: the offset stays). */
static int fd_sha256(int fd, uint64_t size, char hex[65], struct kiln_error **err)
{
	crypto_hash_sha256_state st;
	uint8_t d[32];
	char buf[65536];
	uint64_t off = 0;

	crypto_hash_sha256_init(&st);
	while (off < size) {
		size_t want = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return kiln_error_set(err, n < 0 ? errno : EIO, "read the packed source");
		crypto_hash_sha256_update(&st, (const uint8_t *)buf, (size_t)n);
		off += (uint64_t)n;
	}
	crypto_hash_sha256_final(&st, d);
	kiln_hex(d, sizeof(d), hex);
	return 0;
}

int cli_make_manifest(const char *project, const char *spec, size_t spec_len, int fd, uint64_t size,
		      char **out, struct kiln_error **err)
{
	struct kiln_manifest m;
	uint8_t nonce[16];
	uint8_t d[32];

	memset(&m, 0, sizeof(m));
	if (strlen(project) >= sizeof(m.project))
		return kiln_error_set(err, 0, "project name too long");
	snprintf(m.project, sizeof(m.project), "%s", project);
	crypto_hash_sha256(d, (const uint8_t *)spec, spec_len);
	kiln_hex(d, sizeof(d), m.spec_sha256);
	if (fd_sha256(fd, size, m.source_sha256, err) < 0)
		return -1;
	randombytes_buf(nonce, sizeof(nonce));
	kiln_hex(nonce, sizeof(nonce), m.nonce);
	m.created = (int64_t)time(NULL);
	*out = kiln_manifest_format(&m);
	return *out != NULL ? 0 : kiln_error_set(err, ENOMEM, "manifest");
}

/* The password of an encrypted key: $KILN_SIGN_PASSWORD, else asked on
 * the terminal without echo. */
static char *get_password(const char *keyfile, struct kiln_error **err)
{
	const char *env = getenv("KILN_SIGN_PASSWORD");
	struct termios old, quiet;
	char *pw;
	FILE *tty;
	size_t n;

	if (env != NULL)
		return strdup(env);
	tty = fopen("/dev/tty", "r+e");
	if (tty == NULL) {
		kiln_error_set(err, 0,
			       "%s is encrypted: set KILN_SIGN_PASSWORD or run on a terminal",
			       keyfile);
		return NULL;
	}
	pw = calloc(1, PASSWORD_MAX);
	fprintf(tty, "password for %s: ", keyfile);
	fflush(tty);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	if (pw != NULL && fgets(pw, PASSWORD_MAX, tty) == NULL)
		pw[0] = '\0';
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	if (pw == NULL) {
		kiln_error_set(err, ENOMEM, "password");
		return NULL;
	}
	n = strlen(pw);
	while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = '\0';
	return pw;
}

int cli_sign(const char *keyfile, const char *text, char **sig, struct kiln_error **err)
{
	struct kiln_minisign_sk sk;
	cleanup_free char *buf = NULL;
	char *pw = NULL, trusted[128];
	size_t len = 0;
	int enc, r;

	*sig = NULL;
	if (cli_read_file(keyfile, KEYFILE_MAX, &buf, &len, err) < 0)
		return -1;
	enc = kiln_minisign_sk_encrypted(buf, len);
	if (enc < 0) {
		sodium_memzero(buf, len);
		return kiln_error_set(err, 0, "%s: not a minisign secret key", keyfile);
	}
	if (enc == 1 && (pw = get_password(keyfile, err)) == NULL) {
		sodium_memzero(buf, len);
		return -1;
	}
	r = kiln_minisign_sk_parse(buf, len, pw, &sk, err);
	sodium_memzero(buf, len);
	if (pw != NULL) {
		sodium_memzero(pw, strlen(pw));
		free(pw);
	}
	if (r < 0)
		return kiln_error_prefix(err, "%s", keyfile);
	snprintf(trusted, sizeof(trusted), "timestamp:%lld\tfile:kiln-manifest\thashed",
		 (long long)time(NULL));
	r = kiln_minisign_sign(&sk, text, strlen(text), trusted, sig, err);
	kiln_minisign_sk_wipe(&sk);
	return r;
}

/* ---- kiln keygen ---- */

#define USAGE_KEYGEN                                                                               \
	"usage: kiln keygen [-p PUBFILE] [-s KEYFILE] [-f]\n"                                      \
	"\n"                                                                                       \
	"Create a minisign key pair for signing submissions (kiln submit --sign).\n"               \
	"The secret key is NOT encrypted (KDF none, like 'minisign -G -W'): keep it\n"             \
	"private (it is written with mode 0600). Use 'minisign -G' for an encrypted key;\n"        \
	"kiln reads both. Put the base64 line of PUBFILE in the project's policy\n"                \
	"(signing.keys).\n"                                                                        \
	"\n"                                                                                       \
	"  -p, --public FILE   default kiln.pub\n"                                                 \
	"  -s, --secret FILE   default kiln.key\n"                                                 \
	"  -f, --force         overwrite existing files\n"

static int write_new(const char *path, const char *text, mode_t mode, bool force,
		     struct kiln_error **err)
{
	int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
	cleanup_fd int fd = open(path, flags, mode);

	if (fd < 0)
		return kiln_error_set(err, errno, "create %s%s", path,
				      errno == EEXIST ? " (use --force to overwrite)" : "");
	if (fchmod(fd, mode) < 0 || kiln_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0)
		return kiln_error_set(err, errno, "write %s", path);
	return 0;
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"public", required_argument, NULL, 'p'},
		{"secret", required_argument, NULL, 's'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *pub = "kiln.pub", *sec = "kiln.key";
	struct kiln_minisign_pk pk;
	struct kiln_minisign_sk sk;
	struct kiln_error *err = NULL;
	char *pt = NULL, *st = NULL, id[KILN_MINISIGN_KEYID_HEX], b64[64];
	bool force = false;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:s:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': pub = optarg; break;
		case 's': sec = optarg; break;
		case 'f': force = true; break;
		case 'h': fputs(USAGE_KEYGEN, stdout); return 0;
		default: cli_err("invalid option (see 'kiln keygen --help')"); return 2;
		}
	}
	if (optind != argc) {
		cli_err("keygen takes no arguments (see 'kiln keygen --help')");
		return 2;
	}
	if (kiln_minisign_keygen(&pk, &sk, &pt, &st, &err) < 0 ||
	    write_new(sec, st, 0600, force, &err) < 0 ||
	    write_new(pub, pt, 0644, force, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	kiln_minisign_keyid(pk.keynum, id);
	kiln_minisign_pk_base64(&pk, b64, sizeof(b64));
	printf("key %s\nsecret key: %s (not encrypted, mode 0600)\npublic key: %s\n"
	       "for the project's policy (signing.keys): %s\n",
	       id, sec, pub, b64);
	rc = 0;
out:
	kiln_minisign_sk_wipe(&sk);
	if (st != NULL) {
		sodium_memzero(st, strlen(st));
		free(st);
	}
	free(pt);
	return rc;
}

/* ---- kiln provenance ---- */

#define USAGE_PROVENANCE                                                                           \
	"usage: kiln provenance [OPTION]... JOB\n"                                                 \
	"\n"                                                                                       \
	"Download the signed SLSA provenance (a DSSE envelope) of a finished job\n"                \
	"with artifacts. Check it offline with 'kiln verify'.\n"                                   \
	"\n"                                                                                       \
	"  -o, --output FILE  write it to FILE (default: standard output)\n" CLIENT_OPTS_HELP

struct membuf {
	char *p;
	size_t n;
};

static int mem_sink(void *ctx, const char *data, size_t len, struct kiln_error **err)
{
	struct membuf *m = ctx;
	char *np;

	if (m->n + len > PROVENANCE_MAX)
		return kiln_error_set(err, EFBIG, "the provenance is larger than 64M");
	np = realloc(m->p, m->n + len + 1);
	if (np == NULL)
		return kiln_error_set(err, ENOMEM, "provenance");
	m->p = np;
	memcpy(m->p + m->n, data, len);
	m->n += len;
	m->p[m->n] = '\0';
	return 0;
}

/* Is the job final, and ended less than 10 s ago? */
static bool job_just_ended(struct kiln_client *c, long long id)
{
	struct kiln_error *err = NULL;
	json_t *job = NULL;
	char path[64];
	const char *fin;
	struct tm tm;
	bool r = false;

	snprintf(path, sizeof(path), "/v1/jobs/%lld", id);
	if (kiln_client_json(c, "GET", path, NULL, &job, &err) < 0) {
		kiln_error_free(&err);
		return false;
	}
	fin = cli_jstr(job, "finished_at", NULL);
	memset(&tm, 0, sizeof(tm));
	if (fin != NULL && strptime(fin, "%Y-%m-%dT%H:%M:%SZ", &tm) != NULL) {
		time_t t = timegm(&tm), now = time(NULL);
		r = now - t < 10;
	}
	json_decref(job);
	return r;
}

int cmd_provenance(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		CLIENT_LONG_OPTS,
		{NULL, 0, NULL, 0},
	};
	struct kiln_client_args args = {0};
	struct kiln_client *c = NULL;
	struct kiln_error *err = NULL;
	struct membuf m = {0};
	const char *out = NULL;
	char path[64];
	long long id;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (kiln_client_args_opt(&args, opt, optarg))
			continue;
		switch (opt) {
		case 'o': out = optarg; break;
		case 'h': fputs(USAGE_PROVENANCE, stdout); return 0;
		default:
			cli_err("invalid option (see 'kiln provenance --help')");
			rc = 2;
			goto done;
		}
	}
	if (argc - optind != 1) {
		cli_err("expected one JOB (see 'kiln provenance --help')");
		rc = 2;
		goto done;
	}
	if (cli_job_id(argv[optind], &id) < 0) {
		rc = 2;
		goto done;
	}
	if (cli_connect(&args, &c) != 0)
		goto done;
	snprintf(path, sizeof(path), "/v1/jobs/%lld/provenance", id);
	/* kilnd writes provenance right after a job's end: a job that has
	 * just ended gets a few moments. */
	for (int attempt = 0;; attempt++) {
		if (kiln_client_get_stream(c, path, false, mem_sink, &m, NULL, &err) == 0)
			break;
		if (attempt < 20 && strstr(err->msg, "has no provenance") != NULL &&
		    job_just_ended(c, id)) {
			kiln_error_free(&err);
			free(m.p);
			m.p = NULL;
			m.n = 0;
			usleep(250 * 1000);
			continue;
		}
		rc = cli_fail(&err);
		goto done;
	}
	if (out == NULL) {
		if (fwrite(m.p ? m.p : "", 1, m.n, stdout) != m.n || fputc('\n', stdout) == EOF ||
		    fflush(stdout) != 0) {
			cli_err("write stdout: %s", strerror(errno));
			goto done;
		}
	} else {
		cleanup_fd int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || kiln_write_all(fd, m.p ? m.p : "", m.n) < 0 ||
		    kiln_write_all(fd, "\n", 1) < 0) {
			cli_err("write %s: %s", out, strerror(errno));
			goto done;
		}
	}
	rc = 0;
done:
	free(m.p);
	kiln_client_free(c);
	kiln_client_args_free(&args);
	return rc;
}

/* ---- kiln verify (offline) ---- */

#define USAGE_VERIFY                                                                               \
	"usage: kiln verify --key PUB --provenance FILE [OPTION]... ARTIFACT...\n"                 \
	"\n"                                                                                       \
	"Check, without any server, that FILE (from 'kiln provenance') is signed by the\n"         \
	"kilnd key PUB (DATA/provenance.pub or GET /v1/keys: PEM, the base64 of the\n"             \
	"raw 32-byte key, or the JSON answer of GET /v1/keys), is SLSA provenance, and\n"          \
	"names each ARTIFACT's SHA-256 as a subject.\n"                                            \
	"Every failure says which check failed.\n"                                                 \
	"\n"                                                                                       \
	"  -k, --key PUB             the server's provenance public key\n"                         \
	"  -P, --provenance FILE     the DSSE envelope\n"                                          \
	"      --project NAME        the provenance must name this project\n"                      \
	"      --builder ID          ... this builder id\n"                                        \
	"      --source-digest sha256:HEX   ... this source archive digest\n"                      \
	"\n"                                                                                       \
	"Exit status: 0 verified, 1 a check failed, 2 bad command line.\n"

/* PEM (SubjectPublicKeyInfo) or a base64 line of the 32 raw bytes. */
static int load_pub(const char *path, uint8_t pk[32], struct kiln_error **err)
{
	cleanup_free char *buf = NULL;
	uint8_t raw[64];
	char b64[256];
	size_t len = 0, o = 0, got = 0;
	const char *p, *end = NULL;

	if (cli_read_file(path, KEYFILE_MAX, &buf, &len, err) < 0)
		return -1;
	/* The answer of GET /v1/keys, saved as it came. */
	if (buf[0] == '{') {
		json_t *j = json_loadb(buf, len, 0, NULL);
		const char *k = json_string_value(
			json_object_get(json_object_get(j, "provenance"), "public_key"));
		int r = -1;

		if (k != NULL &&
		    sodium_base642bin(pk, 32, k, strlen(k), NULL, &got, &end,
				      sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    got == 32 && *end == '\0')
			r = 0;
		json_decref(j);
		if (r < 0)
			return kiln_error_set(err, 0,
					      "key: %s is JSON without provenance.public_key (32 "
					      "bytes, base64)",
					      path);
		return 0;
	}
	p = strstr(buf, "-----BEGIN PUBLIC KEY-----");
	if (p != NULL)
		p += strlen("-----BEGIN PUBLIC KEY-----");
	else
		p = buf;
	for (; *p != '\0' && *p != '-' && o < sizeof(b64) - 1; p++)
		if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
			b64[o++] = *p;
	b64[o] = '\0';
	if (sodium_base642bin(raw, sizeof(raw), b64, o, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != b64 + o)
		return kiln_error_set(err, 0, "key: %s is not a PEM or base64 Ed25519 public key",
				      path);
	if (got == 44 && memcmp(raw, spki_prefix, SPKI_PREFIX_LEN) == 0) {
		memcpy(pk, raw + 12, 32);
		return 0;
	}
	if (got == 32) {
		memcpy(pk, raw, 32);
		return 0;
	}
	return kiln_error_set(err, 0, "key: %s is not an Ed25519 public key", path);
}

static int file_sha256(const char *path, char hex[65], struct kiln_error **err)
{
	cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return kiln_error_set(err, errno, "artifact %s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return kiln_error_set(err, 0, "artifact %s: not a regular file", path);
	return fd_sha256(fd, (uint64_t)st.st_size, hex, err) < 0
		       ? kiln_error_prefix(err, "artifact %s", path)
		       : 0;
}

int cmd_verify(int argc, char **argv)
{
	enum { O_PROJECT = 0x100, O_BUILDER, O_SOURCE };
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"provenance", required_argument, NULL, 'P'},
		{"project", required_argument, NULL, O_PROJECT},
		{"builder", required_argument, NULL, O_BUILDER},
		{"source-digest", required_argument, NULL, O_SOURCE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct kiln_prov_expect x = {0};
	struct kiln_error *err = NULL;
	struct kiln_prov_artifact *arts = NULL;
	char(*hex)[65] = NULL;
	const char *keyfile = NULL, *provfile = NULL;
	cleanup_free char *env = NULL;
	char *body = NULL, *type = NULL;
	uint8_t pk[32];
	size_t envlen = 0, blen = 0, n;
	json_t *st = NULL;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:P:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': keyfile = optarg; break;
		case 'P': provfile = optarg; break;
		case O_PROJECT: x.project = optarg; break;
		case O_BUILDER: x.builder_id = optarg; break;
		case O_SOURCE: x.source_sha256 = optarg; break;
		case 'h': fputs(USAGE_VERIFY, stdout); return 0;
		default: cli_err("invalid option (see 'kiln verify --help')"); return 2;
		}
	}
	if (keyfile == NULL || provfile == NULL || optind >= argc) {
		cli_err("need --key, --provenance and at least one ARTIFACT (see 'kiln verify "
			"--help')");
		return 2;
	}
	if (sodium_init() < 0) {
		cli_err("libsodium failed to initialise");
		return 1;
	}
	n = (size_t)(argc - optind);
	arts = calloc(n, sizeof(*arts));
	hex = calloc(n, sizeof(*hex));
	if (arts == NULL || hex == NULL) {
		cli_err("out of memory");
		goto out;
	}
	if (load_pub(keyfile, pk, &err) < 0 ||
	    cli_read_file(provfile, PROVENANCE_MAX, &env, &envlen, &err) < 0)
		goto fail;
	if (kiln_dsse_verify(env, envlen, pk, &body, &blen, &type, &err) < 0)
		goto fail;
	if (strcmp(type, KILN_INTOTO_PAYLOAD_TYPE) != 0) {
		kiln_error_set(&err, 0, "payloadType: '%.64s', expected %s", type,
			       KILN_INTOTO_PAYLOAD_TYPE);
		goto fail;
	}
	st = json_loadb(body, blen, JSON_REJECT_DUPLICATES, NULL);
	if (st == NULL) {
		kiln_error_set(&err, 0, "payload: not a JSON statement");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (file_sha256(argv[optind + (int)i], hex[i], &err) < 0)
			goto fail;
		arts[i].name = argv[optind + (int)i];
		arts[i].sha256 = hex[i];
	}
	if (kiln_provenance_check(st, arts, n, &x, &err) < 0)
		goto fail;
	printf("verified: %zu artifact(s) of job %s, project %s, builder %s\n", n,
	       cli_jstr(json_object_get(
				json_object_get(json_object_get(st, "predicate"), "runDetails"),
				"metadata"),
			"invocationId", "?"),
	       cli_jstr(json_object_get(json_object_get(json_object_get(st, "predicate"),
							"buildDefinition"),
					"externalParameters"),
			"project", "?"),
	       cli_jstr(json_object_get(
				json_object_get(json_object_get(st, "predicate"), "runDetails"),
				"builder"),
			"id", "?"));
	rc = 0;
	goto out;
fail:
	if (err != NULL) {
		cli_err("verify failed: %s", err->msg);
		kiln_error_free(&err);
	}
out:
	json_decref(st);
	free(body);
	free(type);
	free(arts);
	free(hex);
	return rc;
}
