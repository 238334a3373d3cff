#!/bin/bash
# Signed submissions, end to end (docs/signing.md): a project whose policy
# requires signatures, submissions signed by kiln's own keys and by the
# stock minisign (prehashed ED and legacy Ed), a manifest written by hand,
# and every refusal with its own code: unsigned, unknown key, bad
# signature, changed trusted comment, digest and project mismatch, a stale
# manifest, a replay. Each refusal is recorded; a valid one is accepted
# exactly once.
. "$KILN_TESTS/e2e/lib.sh"

command -v minisign >/dev/null || {
  if [ "${CI:-}" = true ]; then bail "minisign is not installed (scripts/install-deps.sh)"; fi
  echo "1..0 # SKIP minisign is not installed"; exit 0
}

kilnd_start
setup_project web || bail "setup"
WEB=$PTOK
setup_project api || bail "setup"
API=$PTOK
DB=$DATA/kiln.db

# --- keys -----------------------------------------------------------------------
k "" keygen -p "$WORK/kiln.pub" -s "$WORK/kiln.key"
check "kiln keygen: exit 0 (rc=$RC)" -- test "$RC" -eq 0
check "the secret key is mode 0600" -- test "$(stat -c %a "$WORK/kiln.key")" = 600
k "" keygen -p "$WORK/kiln.pub" -s "$WORK/kiln.key"
check "kiln keygen does not overwrite a key (rc=$RC)" -- test "$RC" -ne 0
minisign -G -W -p "$WORK/ms.pub" -s "$WORK/ms.key" >/dev/null 2>&1
minisign -G -W -p "$WORK/other.pub" -s "$WORK/other.key" >/dev/null 2>&1
check "minisign made two key pairs" -- test -s "$WORK/ms.key" -a -s "$WORK/other.key"
KPUB=$(sed -n 2p "$WORK/kiln.pub")
MPUB=$(sed -n 2p "$WORK/ms.pub")
# The key id, 16 hex digits: minisign prints it without leading zeros.
key_id() {
  python3 -c 'import sys; print(sys.argv[1].upper().zfill(16))' \
    "$(sed -n 's/^untrusted comment: minisign public key //p' "$1")"
}
KID=$(key_id "$WORK/kiln.pub")
MID=$(key_id "$WORK/ms.pub")

mkdir -p "$DATA/policies"
for p in web api; do
  cat >"$DATA/policies/$p.yml" <<EOP
signing:
  required: true
  keys:
    - $KPUB
    - $MPUB
EOP
done
k "$ADMIN_TOKEN" policy reload
check "the signing policies load (rc=$RC)" -- test "$RC" -eq 0

SRC=$WORK/src
mksrc "$SRC" "echo signed-$R
mkdir -p out && cp file.txt out/" "artifacts: [out/]"
echo data >"$SRC/file.txt"

# The database is read with sqlite3 only after kilnd has stopped.
rejections() {  # rejections CODE: how many refusals with CODE are recorded
  sqlite3 "$DB" "SELECT count(*) FROM submission_rejections WHERE code = '$1'" 2>/dev/null
}

# --- unsigned, where required -------------------------------------------------------
N0=$(jobs_count "$WEB" web)
submit "$WEB" web "$SRC"
check "unsigned submission refused (rc=$RC)" -- test "$RC" -eq 1
check "the message says signatures are required" -- grep -q 'accepts only signed' "$WORK/err"

# --- kiln's own key ---------------------------------------------------------------
k "$WEB" submit --project web --sign "$WORK/kiln.key" "$SRC"
KJOB=$(head -1 "$WORK/out")
check "kiln submit --sign with kiln's key: accepted (rc=$RC, job '$KJOB')" -- test "$RC" -eq 0
[ "$RC" -eq 0 ] || diag_file "$WORK/err"

ST=$(wait_final "$WEB" "$KJOB" 120)
check "the signed job ran ($ST)" -- test "$ST" = succeeded
for i in $(seq 1 20); do
  k "$WEB" provenance "$KJOB" -o "$WORK/kprov.json"
  [ "$RC" -eq 0 ] && break
  sleep 0.25
done
SIGNER=$(python3 -c 'import base64,json,sys; st=json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"])); print(st["predicate"]["buildDefinition"]["externalParameters"]["signerKeyId"])' "$WORK/kprov.json" 2>/dev/null)
check "its provenance names the signer's key id ($SIGNER)" -- test "$SIGNER" = "$KID"

# --- stock minisign: prehashed (default) and legacy ------------------------------------
k "$WEB" submit --project web --write-manifest "$WORK/m1" "$SRC"
check "kiln submit --write-manifest writes the manifest (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && head -1 '$WORK/m1' | grep -qx kiln-submission-v1"
minisign -S -s "$WORK/ms.key" -m "$WORK/m1" >/dev/null 2>&1
check "minisign -S signs it (ED)" -- bash -c "sed -n 2p '$WORK/m1.minisig' | base64 -d 2>/dev/null | head -c2 | grep -q ED"
k "$WEB" submit --project web --signature "$WORK/m1.minisig" "$SRC"
JOB1=$(head -1 "$WORK/out")
check "kiln submit --signature (minisign ED): accepted (rc=$RC)" -- test "$RC" -eq 0
[ "$RC" -eq 0 ] || diag_file "$WORK/err"

# Replay of exactly that submission.
k "$WEB" submit --project web --signature "$WORK/m1.minisig" "$SRC"
check "the same signed submission again: refused as a replay (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && grep -q 'replay' '$WORK/err'"

k "$WEB" submit --project web --write-manifest "$WORK/m2" "$SRC"
minisign -S -l -s "$WORK/ms.key" -m "$WORK/m2" >/dev/null 2>&1
check "minisign -S -l signs it (legacy Ed)" -- bash -c "sed -n 2p '$WORK/m2.minisig' | base64 -d 2>/dev/null | head -c2 | grep -q Ed"
k "$WEB" submit --project web --signature "$WORK/m2.minisig" "$SRC"
check "kiln submit --signature (minisign legacy Ed): accepted (rc=$RC)" -- test "$RC" -eq 0
[ "$RC" -eq 0 ] || diag_file "$WORK/err"

# kiln's own signature, checked by the stock minisign.
k "$WEB" submit --project web --sign "$WORK/kiln.key" --write-manifest "$WORK/m3" "$SRC"
check "kiln submit --sign --write-manifest writes the manifest and its signature (rc=$RC)" -- \
  test "$RC" -eq 0 -a -s "$WORK/m3" -a -s "$WORK/m3.minisig"
minisign -V -p "$WORK/kiln.pub" -m "$WORK/m3" >"$WORK/mv.out" 2>&1
check "minisign -V verifies kiln's signature (rc=$?)" -- grep -q 'Signature and comment signature verified' "$WORK/mv.out"
k "$WEB" submit --project web --signature "$WORK/m3.minisig" "$SRC"
check "... and kilnd accepts it (rc=$RC)" -- test "$RC" -eq 0
KILN_TOKEN=$WEB "$KILN" submit --project web --sign "$WORK/kiln.key" --signature "$WORK/m3.minisig" "$SRC" >/dev/null 2>&1
check "--sign and --signature together: bad command line" -- test $? -eq 2

# --- by hand: a manifest written with printf, signed by minisign, sent by curl ----------
tar -C "$SRC" -czf "$WORK/src.tar.gz" .
SPEC_SHA=$(sha256sum "$SRC/kiln.yml" | cut -d' ' -f1)
SRC_SHA=$(sha256sum "$WORK/src.tar.gz" | cut -d' ' -f1)
mkmanifest() {  # mkmanifest PROJECT CREATED [SRC_SHA] > FILE
  printf 'kiln-submission-v1\nproject: %s\nspec-sha256: %s\nsource-sha256: %s\nnonce: %s\ncreated: %s\n' \
    "$1" "$SPEC_SHA" "${3:-$SRC_SHA}" "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" "$2"
}
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
signed_curl() {  # signed_curl TOKEN PROJECT MANIFEST SIG
  api "$1" POST /v1/jobs -F "project=$2" -F "spec=<$SRC/kiln.yml" \
    -F "source=@$WORK/src.tar.gz;type=application/gzip" -F "manifest=<$3" -F "signature=<$4"
}

mkmanifest web "$(now)" >"$WORK/h1"
minisign -S -s "$WORK/ms.key" -m "$WORK/h1" >/dev/null 2>&1
signed_curl "$WEB" web "$WORK/h1" "$WORK/h1.minisig"
check "a hand-written manifest signed by minisign: 201 (got $HTTP)" -- test "$HTTP" = 201
[ "$HTTP" = 201 ] || diag_file "$WORK/body"
HJOB=$(jget id "$WORK/body")
HNONCE=$(sed -n 's/^nonce: //p' "$WORK/h1")
N1=$(jobs_count "$WEB" web)
signed_curl "$WEB" web "$WORK/h1" "$WORK/h1.minisig"
check "replayed: 409 nonce_replayed (got $HTTP $(jget error.code "$WORK/body"))" -- \
  test "$HTTP" = 409 -a "$(jget error.code "$WORK/body")" = nonce_replayed
signed_curl "$WEB" web "$WORK/h1" "$WORK/h1.minisig"
check "replayed again: 409" -- test "$HTTP" = 409
check "the valid submission was accepted exactly once (jobs $N1 -> $(jobs_count "$WEB" web))" -- \
  test "$(jobs_count "$WEB" web)" = "$N1"

# Unknown key.
mkmanifest web "$(now)" >"$WORK/h2"
minisign -S -s "$WORK/other.key" -m "$WORK/h2" >/dev/null 2>&1
signed_curl "$WEB" web "$WORK/h2" "$WORK/h2.minisig"
check "signed by a key the project does not trust: 403 unknown_key (got $HTTP $(jget error.code "$WORK/body"))" -- \
  test "$HTTP" = 403 -a "$(jget error.code "$WORK/body")" = unknown_key

# Bad signature: h1's signature on another manifest by the same key.
mkmanifest web "$(now)" >"$WORK/h3"
signed_curl "$WEB" web "$WORK/h3" "$WORK/h1.minisig"
check "a signature of another manifest: 403 bad_signature (got $HTTP $(jget error.code "$WORK/body"))" -- \
  test "$HTTP" = 403 -a "$(jget error.code "$WORK/body")" = bad_signature

# A changed trusted comment.
mkmanifest web "$(now)" >"$WORK/h4"
minisign -S -s "$WORK/ms.key" -m "$WORK/h4" -t "approved by alice" >/dev/null 2>&1
sed -i 's/^trusted comment: approved by alice$/trusted comment: approved by mallory/' "$WORK/h4.minisig"
signed_curl "$WEB" web "$WORK/h4" "$WORK/h4.minisig"
check "a changed trusted comment: 403 bad_signature (got $HTTP)" -- \
  bash -c "[ '$HTTP' = 403 ] && grep -q 'trusted comment' '$WORK/body'"

# Digest mismatch: signed for another archive.
mkmanifest web "$(now)" "$(printf '%064d' 0)" >"$WORK/h5"
minisign -S -s "$WORK/ms.key" -m "$WORK/h5" >/dev/null 2>&1
signed_curl "$WEB" web "$WORK/h5" "$WORK/h5.minisig"
CODE=$(jget error.code "$WORK/body")
check "a manifest for another source: 400 digest_mismatch (got $HTTP $CODE)" -- \
  bash -c "[ '$HTTP' = 400 ] && [ '$CODE' = digest_mismatch ] && grep -q 'source digest' '$WORK/body'"

# Project mismatch: a manifest for web sent to api (which trusts the key).
mkmanifest web "$(now)" >"$WORK/h6"
minisign -S -s "$WORK/ms.key" -m "$WORK/h6" >/dev/null 2>&1
signed_curl "$API" api "$WORK/h6" "$WORK/h6.minisig"
check "a manifest for project web sent to api: 400 digest_mismatch naming the project (got $HTTP)" -- \
  bash -c "[ '$HTTP' = 400 ] && grep -q 'names project web' '$WORK/body'"

# Outside the time window (default 10m).
mkmanifest web "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" >"$WORK/h7"
minisign -S -s "$WORK/ms.key" -m "$WORK/h7" >/dev/null 2>&1
signed_curl "$WEB" web "$WORK/h7" "$WORK/h7.minisig"
check "a manifest created an hour ago: 400 manifest_expired (got $HTTP $(jget error.code "$WORK/body"))" -- \
  test "$HTTP" = 400 -a "$(jget error.code "$WORK/body")" = manifest_expired
mkmanifest web "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" >"$WORK/h8"
minisign -S -s "$WORK/ms.key" -m "$WORK/h8" >/dev/null 2>&1
signed_curl "$WEB" web "$WORK/h8" "$WORK/h8.minisig"
check "a manifest from the future: 400 manifest_expired (got $HTTP)" -- test "$HTTP" = 400

# A malformed manifest (CRLF) that is validly signed.
mkmanifest web "$(now)" | sed 's/$/\r/' >"$WORK/h9"
minisign -S -s "$WORK/ms.key" -m "$WORK/h9" >/dev/null 2>&1
signed_curl "$WEB" web "$WORK/h9" "$WORK/h9.minisig"
check "a manifest that is not canonical: 400 manifest_invalid (got $HTTP $(jget error.code "$WORK/body"))" -- \
  test "$HTTP" = 400 -a "$(jget error.code "$WORK/body")" = manifest_invalid
api "$WEB" POST /v1/jobs -F "project=web" -F "spec=<$SRC/kiln.yml" \
  -F "source=@$WORK/src.tar.gz;type=application/gzip" -F "manifest=<$WORK/h9"
check "a manifest without a signature: 400 manifest_invalid (got $HTTP)" -- test "$HTTP" = 400

NWEB=$(jobs_count "$WEB" web)

# --- policy: not required, and broken ------------------------------------------------
rm "$DATA/policies/api.yml"
k "$ADMIN_TOKEN" policy reload
submit "$API" api "$SRC"
check "without a policy file an unsigned submission is accepted (rc=$RC)" -- test "$RC" -eq 0
# A broken policy never comes into force (docs/policy.md): the reload is
# refused, naming the place, and the set in force stays.
printf 'signing:\n  required: true\n  keyz: []\n' >"$DATA/policies/api.yml"
k "$ADMIN_TOKEN" policy reload
check "a broken signing section: the reload is refused (rc=$RC)" -- test "$RC" -eq 1
check "... naming the policy's line and column" -- grep -q 'api.yml:3:3: .*keyz' "$WORK/err"
printf 'signing:\n  required: true\n  keys:\n    - RWQnotakey\n' >"$DATA/policies/api.yml"
k "$ADMIN_TOKEN" policy reload
check "a bad key in the policy: the reload is refused (rc=$RC)" -- test "$RC" -eq 1
check "... naming the bad key's place" -- grep -q 'api.yml:4:7: signing.keys' "$WORK/err"
[ "$RC" -eq 1 ] || diag_file "$WORK/err"
submit "$API" api "$SRC"
check "... and the set in force stays: an unsigned submission is still accepted (rc=$RC)" -- \
  test "$RC" -eq 0

# --- an encrypted minisign key ----------------------------------------------------
printf 'pw\npw\n' | minisign -G -p "$WORK/enc.pub" -s "$WORK/enc.key" >/dev/null 2>&1
printf 'signing:\n  keys:\n    - %s\n' "$(sed -n 2p "$WORK/enc.pub")" >"$DATA/policies/api.yml"
k "$ADMIN_TOKEN" policy reload
KILN_SIGN_PASSWORD=pw KILN_TOKEN=$API "$KILN" submit --project api --sign "$WORK/enc.key" "$SRC" \
  >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "kiln submit --sign with minisign's encrypted key: accepted (rc=$RC)" -- test "$RC" -eq 0
[ "$RC" -eq 0 ] || diag_file "$WORK/err"
KILN_SIGN_PASSWORD=wrong KILN_TOKEN=$API "$KILN" submit --project api --sign "$WORK/enc.key" "$SRC" \
  >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "a wrong password: exit 1, says so (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && grep -q 'wrong password' '$WORK/err'"

check "kilnd is healthy" -- healthy

# --- the records, read after kilnd stopped ---------------------------------------------
kilnd_stop
check "the job records the signer's key id $KID (kiln's key)" -- \
  test "$(sqlite3 "$DB" "SELECT signer_key FROM jobs WHERE id = ${KJOB:-0}")" = "$KID"
check "the job records minisign's key id $MID" -- \
  test "$(sqlite3 "$DB" "SELECT signer_key FROM jobs WHERE id = ${JOB1:-0}")" = "$MID"
check "exactly one job holds the hand-written manifest's nonce, the accepted one" -- \
  test "$(sqlite3 "$DB" "SELECT group_concat(job_id) FROM submission_nonces WHERE nonce = '$HNONCE'")" = "$HJOB"
check "an unsigned job records no signer" -- \
  test "$(sqlite3 "$DB" "SELECT count(*) FROM jobs WHERE project = 'api' AND signer_key IS NULL")" -ge 1
for c in signature_required nonce_replayed unknown_key bad_signature digest_mismatch \
  manifest_expired manifest_invalid; do
  check "refusals with code $c are recorded" -- test "$(rejections "$c")" -ge 1
done
check "refused submissions stored no job" -- \
  test "$(sqlite3 "$DB" "SELECT count(*) FROM jobs WHERE project = 'web'")" = "$NWEB"
done_testing
