/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln audit: check kilnd's audit log without trusting kilnd
 * (docs/audit.md).
 *
 *   verify [--checkpoint FILE] [--key VKEY]   download the tiles, recompute
 *          the tree, check the signed checkpoint and, given FILE from an
 *          earlier run, that the log only grew since; then save the newest
 *          checkpoint in FILE (FILE.vkey: the pinned log key, FILE.hashes:
 *          the leaf hashes, to name the first index that stopped matching)
 *   proof ENTRY [-o FILE]    an inclusion proof of ENTRY (c2sp.org/tlog-proof)
 *   show [--job N] [--kind K] [--json]   the entries, readably
 *
 * Everything the server sends is checked here: the signature with the
 * pinned verifier key, the entries against the signed tree head.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/cleanup.h"
#include "core/sys.h"
#include "core/util.h"
#include "trust/tlog.h"

#define USAGE_AUDIT                                                                                \
	"usage: kiln audit verify [--checkpoint FILE] [--key VKEY|FILE]\n"                         \
	"       kiln audit proof [-o FILE] ENTRY\n"                                                \
	"       kiln audit show [--job N] [--kind KIND] [--json]\n"                                \
	"\n"                                                                                       \
	"Check kilnd's tamper-evident audit log (docs/audit.md). The tiles need a token\n"         \
	"with the read scope that is not tied to a project.\n"                                     \
	"\n"                                                                                       \
	"  --checkpoint FILE      verify: the checkpoint saved by an earlier run (the log\n"       \
	"                         must have only grown since); the newest is saved there\n"        \
	"  --key VKEY|FILE        the log's verifier key (default: FILE.vkey, else the\n"          \
	"                         server's, trusted on first use)\n"                               \
	"  -o, --output FILE      proof: write the proof here (default: stdout)\n"                 \
	"  --job N, --kind KIND   show: only entries of job N, of kind KIND (or KIND.*)\n"         \
	"      --json             show: one JSON entry per line\n" CLIENT_OPTS_HELP

#define MAX_BUF (64u << 20)

enum { OPT_CHECKPOINT = 0x2000, OPT_KEY, OPT_JOB, OPT_KIND };

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static int buf_sink(void *ctx, const char *data, size_t len, struct kiln_error **err)
{
	struct buf *b = ctx;

	if (b->len + len > MAX_BUF)
		return kiln_error_set(err, EFBIG, "answer too large");
	if (b->len + len + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 4096) + len;
		unsigned char *np = realloc(b->p, cap + 1);
		if (np == NULL)
			return kiln_error_set(err, ENOMEM, "download");
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

static int fetch(struct kiln_client *c, const char *path, struct buf *b, struct kiln_error **err)
{
	b->len = 0;
	if (kiln_client_get_stream(c, path, false, buf_sink, b, NULL, err) < 0)
		return -1;
	if (b->p == NULL && buf_sink(b, "", 0, err) < 0)
		return -1;
	return 0;
}

/* The whole log as the server serves it, checked against a checkpoint. */
struct log {
	struct kiln_tlog_key key;
	char *note;
	struct kiln_tlog_checkpoint cp;
	uint64_t n; /* entries received */
	unsigned char **entries;
	size_t *lens;
	kiln_hash *leaves;
};

static void log_free(struct log *l)
{
	for (uint64_t i = 0; i < l->n; i++)
		free(l->entries[i]);
	free(l->entries);
	free(l->lens);
	free(l->leaves);
	free(l->note);
	memset(l, 0, sizeof(*l));
}

static int read_file_text(const char *path, char **out, size_t *len, struct kiln_error **err)
{
	cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;

	*out = NULL;
	if (fd < 0)
		return kiln_error_set(err, errno, "%s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_BUF)
		return kiln_error_set(err, EINVAL, "%s: not a regular file of at most 64M", path);
	*out = malloc((size_t)st.st_size + 1);
	if (*out == NULL)
		return kiln_error_set(err, ENOMEM, "%s", path);
	n = kiln_read_all(fd, *out, (size_t)st.st_size);
	if (n < 0) {
		free(*out);
		*out = NULL;
		return kiln_error_set(err, errno, "read %s", path);
	}
	(*out)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

static int write_file(const char *path, const void *data, size_t len, struct kiln_error **err)
{
	char tmp[4200];
	cleanup_fd int fd = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return kiln_error_set(err, ENAMETOOLONG, "%s", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_set(err, errno, "create %s", tmp);
	if (kiln_write_all(fd, data, len) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kiln_error_set(err, e, "write %s", path);
	}
	return 0;
}

/* The verifier key: --key (a key or a file holding one), else `pinned`
 * (a file) if it exists, else the server's. *from_server says which. */
static int load_key(struct kiln_client *c, const char *arg, const char *pinned,
		    struct kiln_tlog_key *k, bool *from_server, struct kiln_error **err)
{
	struct buf b = {0};
	char *text = NULL;
	size_t len;
	int r;

	*from_server = false;
	if (arg != NULL && strchr(arg, '+') != NULL && access(arg, F_OK) < 0)
		return kiln_tlog_vkey_parse(arg, k, err);
	if (arg != NULL || (pinned != NULL && access(pinned, F_OK) == 0)) {
		const char *path = arg ? arg : pinned;
		if (read_file_text(path, &text, &len, err) < 0)
			return -1;
		r = kiln_tlog_vkey_parse(text, k, err);
		free(text);
		if (r < 0)
			return kiln_error_prefix(err, "%s", path);
		return 0;
	}
	if (fetch(c, "/v1/audit/key", &b, err) < 0)
		return kiln_error_prefix(err, "fetch the log's verifier key");
	r = kiln_tlog_vkey_parse((const char *)b.p, k, err);
	free(b.p);
	*from_server = true;
	return r;
}

/* Download the checkpoint and every entry it covers. On a mismatch,
 * *bad is the first index that does not match and why says how; the
 * return value is still 0. -1 only when nothing could be checked. */
static int load_log(struct kiln_client *c, struct log *l, uint64_t *bad, char *why, size_t wlen,
		    struct kiln_error **err)
{
	struct buf b = {0};
	uint64_t ntiles;

	*bad = UINT64_MAX;
	why[0] = '\0';
	if (fetch(c, "/v1/audit/checkpoint", &b, err) < 0)
		return kiln_error_prefix(err, "fetch the checkpoint");
	l->note = (char *)b.p;
	b.p = NULL;
	b.cap = 0;
	if (kiln_tlog_checkpoint_open(&l->key, l->note, b.len, &l->cp, err) < 0)
		return kiln_error_prefix(err, "the server's checkpoint");
	if (l->cp.size > (MAX_BUF / sizeof(kiln_hash)))
		return kiln_error_set(err, EFBIG, "the log is too large for this client");
	l->entries = calloc(l->cp.size + 1, sizeof(*l->entries));
	l->lens = calloc(l->cp.size + 1, sizeof(*l->lens));
	l->leaves = calloc(l->cp.size + 1, sizeof(*l->leaves));
	if (l->entries == NULL || l->lens == NULL || l->leaves == NULL)
		return kiln_error_set(err, ENOMEM, "the log");
	ntiles = (l->cp.size + KILN_TLOG_TILE_W - 1) / KILN_TLOG_TILE_W;
	for (uint64_t t = 0; t < ntiles; t++) {
		uint64_t start = t * KILN_TLOG_TILE_W;
		unsigned w = (unsigned)(l->cp.size - start < KILN_TLOG_TILE_W ? l->cp.size - start
									      : KILN_TLOG_TILE_W);
		char path[160], tp[100];
		size_t off[KILN_TLOG_TILE_W], len[KILN_TLOG_TILE_W];
		struct kiln_error *e2 = NULL;
		int k;

		kiln_tlog_tile_path(-1, t, w, tp, sizeof(tp));
		snprintf(path, sizeof(path), "/v1/audit/%s", tp);
		if (fetch(c, path, &b, &e2) < 0) {
			if (kiln_client_last_status(c) == 401 ||
			    kiln_client_last_status(c) == 403) {
				free(b.p);
				*err = e2;
				return -1;
			}
			*bad = start;
			snprintf(why, wlen, "entries from here on cannot be read (%.200s)",
				 e2 ? e2->msg : "?");
			kiln_error_free(&e2);
			break;
		}
		k = kiln_tlog_bundle_split(b.p, b.len, off, len, KILN_TLOG_TILE_W);
		if (k < 0) {
			*bad = start;
			snprintf(why, wlen, "tile %s is not a valid entry bundle", tp);
			break;
		}
		for (int i = 0; i < k && i < (int)w; i++) {
			l->entries[start + (uint64_t)i] = malloc(len[i] + 1);
			if (l->entries[start + (uint64_t)i] == NULL) {
				free(b.p);
				return kiln_error_set(err, ENOMEM, "the log");
			}
			memcpy(l->entries[start + (uint64_t)i], b.p + off[i], len[i]);
			l->entries[start + (uint64_t)i][len[i]] = '\0';
			l->lens[start + (uint64_t)i] = len[i];
			kiln_tlog_leaf_hash(b.p + off[i], len[i], l->leaves[start + (uint64_t)i]);
			l->n = start + (uint64_t)i + 1;
		}
		if ((unsigned)k != w) {
			*bad = start + (uint64_t)(k < (int)w ? k : (int)w);
			snprintf(why, wlen,
				 "the log holds fewer entries than its checkpoint covers (%" PRIu64
				 "): entries are missing from index %" PRIu64,
				 l->cp.size, *bad);
			break;
		}
		/* The server's stored leaf hashes must be those of its entries. */
		kiln_tlog_tile_path(0, t, w, tp, sizeof(tp));
		snprintf(path, sizeof(path), "/v1/audit/%s", tp);
		if (fetch(c, path, &b, &e2) == 0 && b.len == (size_t)w * KILN_TLOG_HASH) {
			for (unsigned i = 0; i < w; i++)
				if (memcmp(b.p + (size_t)i * KILN_TLOG_HASH, l->leaves[start + i],
					   KILN_TLOG_HASH) != 0) {
					*bad = start + i;
					snprintf(why, wlen,
						 "entry %" PRIu64
						 " does not match the leaf hash the server stored",
						 start + i);
					break;
				}
			if (*bad != UINT64_MAX)
				break;
		}
		kiln_error_free(&e2);
	}
	free(b.p);
	return 0;
}

/* The first index where two lists of leaf hashes differ, or UINT64_MAX. */
static uint64_t first_diff(const kiln_hash *a, uint64_t na, const kiln_hash *b, uint64_t nb)
{
	uint64_t n = na < nb ? na : nb;

	for (uint64_t i = 0; i < n; i++)
		if (memcmp(a[i], b[i], KILN_TLOG_HASH) != 0)
			return i;
	return na == nb ? UINT64_MAX : n;
}

static int mismatch(uint64_t idx, const char *why)
{
	cli_err("audit log does not match at index %" PRIu64 ": %s", idx, why);
	return 1;
}

static int audit_verify(struct kiln_client *c, const char *cpfile, const char *keyarg)
{
	struct kiln_error *err = NULL;
	struct log l;
	struct kiln_tlog_checkpoint old;
	char why[600], vkpath[4200], hpath[4200], root[64];
	kiln_hash *saved = NULL, r;
	uint64_t bad, nsaved = 0;
	bool have_old = false, from_server = false;
	char *oldnote = NULL;
	size_t oldlen = 0;
	int rc = 1;

	memset(&l, 0, sizeof(l));
	if (cpfile != NULL) {
		snprintf(vkpath, sizeof(vkpath), "%s.vkey", cpfile);
		snprintf(hpath, sizeof(hpath), "%s.hashes", cpfile);
	}
	if (load_key(c, keyarg, cpfile ? vkpath : NULL, &l.key, &from_server, &err) < 0)
		return cli_fail(&err);
	if (cpfile != NULL && access(cpfile, F_OK) == 0) {
		char *hb = NULL;
		size_t hlen = 0;

		if (read_file_text(cpfile, &oldnote, &oldlen, &err) < 0 ||
		    kiln_tlog_checkpoint_open(&l.key, oldnote, oldlen, &old, &err) < 0) {
			free(oldnote);
			kiln_error_prefix(&err, "saved checkpoint %s", cpfile);
			return cli_fail(&err);
		}
		have_old = true;
		/* The saved leaf hashes count only if they are those of the
		 * saved, signed tree head. */
		if (access(hpath, F_OK) == 0 && read_file_text(hpath, &hb, &hlen, &err) == 0 &&
		    hlen == old.size * KILN_TLOG_HASH) {
			kiln_tlog_root((const kiln_hash *)(void *)hb, old.size, r);
			if (memcmp(r, old.root, KILN_TLOG_HASH) == 0) {
				saved = (kiln_hash *)(void *)hb;
				nsaved = old.size;
				hb = NULL;
			}
		}
		kiln_error_free(&err);
		free(hb);
	}

	if (load_log(c, &l, &bad, why, sizeof(why), &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (bad != UINT64_MAX) {
		uint64_t d = saved ? first_diff(saved, nsaved, l.leaves, l.n) : UINT64_MAX;
		if (d < bad)
			rc = mismatch(d,
				      "the entry differs from the one saved with the checkpoint");
		else
			rc = mismatch(bad, why);
		goto out;
	}
	kiln_tlog_root(l.leaves, l.n, r);
	if (memcmp(r, l.cp.root, KILN_TLOG_HASH) != 0) {
		uint64_t d = saved ? first_diff(saved, nsaved, l.leaves, l.n) : UINT64_MAX;
		if (d != UINT64_MAX && d < l.n)
			rc = mismatch(d,
				      "the entries do not hash to the signed checkpoint; this is "
				      "the first that differs from the saved log");
		else
			rc = mismatch(0, "the entries do not hash to the signed checkpoint (keep a "
					 "--checkpoint file to locate the change)");
		goto out;
	}
	if (have_old) {
		kiln_hash proof[KILN_TLOG_PROOF_MAX];
		int np;

		if (l.cp.size < old.size) {
			uint64_t d = saved ? first_diff(saved, nsaved, l.leaves, l.n) : l.cp.size;
			snprintf(why, sizeof(why),
				 "the log shrank from %" PRIu64 " to %" PRIu64
				 " entries since the saved checkpoint (rolled back or truncated)",
				 old.size, l.cp.size);
			rc = mismatch(d < l.cp.size ? d : l.cp.size, why);
			goto out;
		}
		np = old.size == 0
			     ? 0
			     : kiln_tlog_consistency_proof(l.leaves, l.cp.size, old.size, proof);
		if (np < 0 || !kiln_tlog_verify_consistency(old.size, l.cp.size, proof, (size_t)np,
							    old.root, l.cp.root)) {
			uint64_t d = saved ? first_diff(saved, nsaved, l.leaves, l.n) : UINT64_MAX;
			snprintf(why, sizeof(why),
				 "the log of %" PRIu64
				 " entries is not an extension of the saved checkpoint of %" PRIu64
				 " entries",
				 l.cp.size, old.size);
			rc = mismatch(d != UINT64_MAX ? d : 0, why);
			goto out;
		}
	}
	kiln_tlog_b64_hash(l.cp.root, root, sizeof(root));
	printf("audit log verified: %" PRIu64 " entries, root %s", l.cp.size, root);
	if (have_old)
		printf(", consistent with the saved checkpoint of %" PRIu64 " entries", old.size);
	printf("\n");
	if (cpfile != NULL) {
		char vkey[512];

		kiln_tlog_vkey_format(&l.key, vkey, sizeof(vkey));
		strcat(vkey, "\n");
		if ((from_server && keyarg == NULL &&
		     write_file(vkpath, vkey, strlen(vkey), &err) < 0) ||
		    write_file(hpath, l.leaves, (size_t)l.cp.size * KILN_TLOG_HASH, &err) < 0 ||
		    write_file(cpfile, l.note, strlen(l.note), &err) < 0) {
			rc = cli_fail(&err);
			goto out;
		}
		if (from_server && keyarg == NULL)
			printf("log key %.*s trusted on first use, saved in %s\n",
			       (int)strlen(vkey) - 1, vkey, vkpath);
	}
	rc = 0;
out:
	free(saved);
	free(oldnote);
	log_free(&l);
	return rc;
}

static int audit_proof(struct kiln_client *c, const char *keyarg, const char *entry_s,
		       const char *outfile)
{
	struct kiln_error *err = NULL;
	struct log l;
	kiln_hash proof[KILN_TLOG_PROOF_MAX], r;
	char why[600], b64[64], *text = NULL;
	size_t tlen = 0, cap;
	uint64_t idx, bad;
	bool fs;
	int np, rc = 1;

	if (kiln_parse_uint(entry_s, 0, UINT64_MAX - 1, &idx, &err) < 0) {
		cli_err("proof: ENTRY must be an index (0, 1, ...)");
		kiln_error_free(&err);
		return 2;
	}
	memset(&l, 0, sizeof(l));
	if (load_key(c, keyarg, NULL, &l.key, &fs, &err) < 0 ||
	    load_log(c, &l, &bad, why, sizeof(why), &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (bad != UINT64_MAX) {
		rc = mismatch(bad, why);
		goto out;
	}
	kiln_tlog_root(l.leaves, l.n, r);
	if (memcmp(r, l.cp.root, KILN_TLOG_HASH) != 0) {
		rc = mismatch(0, "the entries do not hash to the signed checkpoint");
		goto out;
	}
	if (idx >= l.cp.size) {
		cli_err("proof: entry %" PRIu64 " is not in the newest checkpoint (%" PRIu64
			" entries)",
			idx, l.cp.size);
		goto out;
	}
	np = kiln_tlog_inclusion_proof(l.leaves, l.cp.size, idx, proof);
	if (np < 0 || !kiln_tlog_verify_inclusion(idx, l.cp.size, l.leaves[idx], proof, (size_t)np,
						  l.cp.root)) {
		cli_err("proof: the inclusion proof does not verify");
		goto out;
	}
	cap = 64 + (size_t)np * 46 + strlen(l.note) + 2;
	text = malloc(cap);
	if (text == NULL)
		goto out;
	tlen = (size_t)snprintf(text, cap, "c2sp.org/tlog-proof@v1\nindex %" PRIu64 "\n", idx);
	for (int i = 0; i < np; i++) {
		kiln_tlog_b64_hash(proof[i], b64, sizeof(b64));
		tlen += (size_t)snprintf(text + tlen, cap - tlen, "%s\n", b64);
	}
	tlen += (size_t)snprintf(text + tlen, cap - tlen, "\n%s", l.note);
	if (outfile != NULL) {
		if (write_file(outfile, text, tlen, &err) < 0) {
			rc = cli_fail(&err);
			goto out;
		}
	} else if (fwrite(text, 1, tlen, stdout) != tlen || fflush(stdout) != 0) {
		cli_err("write the proof: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(text);
	log_free(&l);
	return rc;
}

static int audit_show(struct kiln_client *c, const char *keyarg, long long job, const char *kind,
		      bool json)
{
	struct kiln_error *err = NULL;
	struct log l;
	char why[600];
	uint64_t bad;
	bool fs;
	int rc = 1;

	memset(&l, 0, sizeof(l));
	if (load_key(c, keyarg, NULL, &l.key, &fs, &err) < 0 ||
	    load_log(c, &l, &bad, why, sizeof(why), &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	for (uint64_t i = 0; i < l.n; i++) {
		json_t *e = json_loadb((const char *)l.entries[i], l.lens[i], 0, NULL);
		const char *k = cli_jstr(e, "kind", "?");
		json_t *jv = json_object_get(e, "job");
		size_t kl = kind ? strlen(kind) : 0;

		if (kind != NULL &&
		    !(strcmp(k, kind) == 0 || (strncmp(k, kind, kl) == 0 && k[kl] == '.'))) {
			json_decref(e);
			continue;
		}
		if (job > 0 && (!json_is_integer(jv) || json_integer_value(jv) != job)) {
			json_decref(e);
			continue;
		}
		if (json) {
			printf("{\"index\":%" PRIu64 ",\"entry\":", i);
			fwrite(l.entries[i], 1, l.lens[i], stdout);
			printf("}\n");
		} else {
			char rest[2048] = "", safe[2048];
			const char *key;
			json_t *v;
			size_t off = 0;

			json_object_foreach(e, key, v)
			{
				char *t;
				if (strcmp(key, "time") == 0 || strcmp(key, "kind") == 0 ||
				    strcmp(key, "actor") == 0)
					continue;
				t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
				if (t != NULL && off < sizeof(rest))
					off += (size_t)snprintf(
						rest + off, sizeof(rest) - off, "%s%s=%s",
						off ? " " : "", key,
						json_is_string(v) ? json_string_value(v) : t);
				free(t);
			}
			for (size_t q = 0; rest[q] != '\0'; q++)
				safe[q] = ((unsigned char)rest[q] < 0x20 || rest[q] == 0x7f)
						  ? '?'
						  : rest[q];
			safe[strlen(rest)] = '\0';
			printf("%6" PRIu64 "  %s  %-20s %-18s %s\n", i, cli_jstr(e, "time", "-"), k,
			       cli_jstr(e, "actor", "-"), safe);
		}
		json_decref(e);
	}
	fflush(stdout);
	if (bad != UINT64_MAX) {
		rc = mismatch(bad, why);
		goto out;
	}
	rc = 0;
out:
	log_free(&l);
	return rc;
}

int cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {
		{"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
		{"key", required_argument, NULL, OPT_KEY},
		{"output", required_argument, NULL, 'o'},
		{"job", required_argument, NULL, OPT_JOB},
		{"kind", required_argument, NULL, OPT_KIND},
		CLIENT_JSON_OPT,
		CLIENT_LONG_OPTS,
		{NULL, 0, NULL, 0},
	};
	struct kiln_client_args a = {0};
	struct kiln_client *c = NULL;
	const char *cpfile = NULL, *keyarg = NULL, *outfile = NULL, *kind = NULL, *verb;
	long long job = 0;
	int opt, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(USAGE_AUDIT, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		if (kiln_client_args_opt(&a, opt, optarg))
			continue;
		switch (opt) {
		case OPT_CHECKPOINT: cpfile = optarg; break;
		case OPT_KEY: keyarg = optarg; break;
		case 'o': outfile = optarg; break;
		case OPT_JOB:
			if (cli_job_id(optarg, &job) < 0) {
				kiln_client_args_free(&a);
				return 2;
			}
			break;
		case OPT_KIND: kind = optarg; break;
		case 'h':
			fputs(USAGE_AUDIT, stdout);
			kiln_client_args_free(&a);
			return 0;
		default:
			fputs(USAGE_AUDIT, stderr);
			kiln_client_args_free(&a);
			return 2;
		}
	}
	if (strcmp(verb, "verify") != 0 && strcmp(verb, "proof") != 0 &&
	    strcmp(verb, "show") != 0) {
		cli_err("audit: unknown subcommand '%s' (verify, proof, show)", verb);
		kiln_client_args_free(&a);
		return 2;
	}
	if ((strcmp(verb, "proof") == 0) != (optind + 1 == argc) ||
	    (strcmp(verb, "proof") != 0 && optind != argc)) {
		fputs(USAGE_AUDIT, stderr);
		kiln_client_args_free(&a);
		return 2;
	}
	if (sodium_init() < 0) {
		cli_err("libsodium failed to initialise");
		kiln_client_args_free(&a);
		return 1;
	}
	if (cli_connect(&a, &c) != 0) {
		kiln_client_args_free(&a);
		return 1;
	}
	if (strcmp(verb, "verify") == 0)
		rc = audit_verify(c, cpfile, keyarg);
	else if (strcmp(verb, "proof") == 0)
		rc = audit_proof(c, keyarg, argv[optind], outfile);
	else
		rc = audit_show(c, keyarg, job, kind, a.json);
	kiln_client_free(c);
	kiln_client_args_free(&a);
	return rc;
}
