#!/bin/bash
# Signed provenance, end to end (docs/provenance.md): a job with artifacts
# gets an in-toto/SLSA statement in a DSSE envelope signed by kilnd's
# provenance key; `kiln verify`, offline with nothing but the published
# key, accepts the real artifacts and refuses, each with its own message,
# a forged envelope, a changed payload byte, a swapped artifact, another
# key and wrong expectations. The key is 0600 and never seen by a job.
. "$KILN_TESTS/e2e/lib.sh"

BUILDER="urn:kiln:builder:e2e-$R"
printf 'builder_id: %s\n' "$BUILDER" >"$WORK/kilnd.yml"
kilnd_start --config "$WORK/kilnd.yml"
setup_project web || bail "setup"

# --- the key ------------------------------------------------------------------
check "DATA/provenance.key exists with mode 0600" -- test "$(stat -c %a "$DATA/provenance.key")" = 600
check "DATA/provenance.pub is a PEM public key" -- grep -q '^-----BEGIN PUBLIC KEY-----$' "$DATA/provenance.pub"
api "" GET /v1/keys
check "GET /v1/keys without a token: 200 (got $HTTP)" -- test "$HTTP" = 200
cp "$WORK/body" "$WORK/keys.json"
python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["provenance"]["pem"])' "$WORK/body" >"$WORK/keys.pem"
check "GET /v1/keys publishes the same key as DATA/provenance.pub" -- cmp -s "$WORK/keys.pem" "$DATA/provenance.pub"
check "... as algorithm ed25519" -- test "$(jget provenance.algorithm "$WORK/body")" = ed25519
KEYLINE=$(sed -n 2p "$DATA/provenance.key")

# --- a job with artifacts --------------------------------------------------------------
SRC=$WORK/src
mksrc "$SRC" "mkdir -p out/sub
echo 'artifact one $R' >out/one.txt
head -c 4096 /dev/zero >out/sub/two.bin
cat '$DATA/provenance.key' 2>&1 || true
ls -la '$DATA' 2>&1 || true
echo build-$R" "artifacts: [out/]"
submit "$PTOK" web "$SRC"
check "submitted (rc=$RC, job '$JOB')" -- test "$RC" -eq 0
ST=$(wait_final "$PTOK" "$JOB" 120)
check "the job succeeded ($ST)" -- test "$ST" = succeeded
SRC_SHA=$(job_get "$PTOK" "$JOB" source_sha256)
PJOB=$JOB

got=1
for i in $(seq 1 40); do
  k "$PTOK" provenance "$JOB" -o "$WORK/prov.json"
  [ "$RC" -eq 0 ] && { got=0; break; }
  sleep 0.25
done
check "kiln provenance JOB -o FILE (rc=$RC)" -- test "$got" -eq 0
[ "$got" -eq 0 ] || diag_file "$WORK/err"
api "$PTOK" GET "/v1/jobs/$JOB/provenance"
check "GET /v1/jobs/ID/provenance: 200 (got $HTTP)" -- test "$HTTP" = 200
check "... a DSSE envelope of application/vnd.in-toto+json" -- \
  test "$(jget payloadType "$WORK/body")" = application/vnd.in-toto+json

# The statement, checked field by field against the SLSA v1 schema.
POLICY_DIGEST=$(job_get "$PTOK" "$JOB" policy_digest)
python3 - "$WORK/prov.json" "$JOB" "$BUILDER" "$SRC_SHA" "$POLICY_DIGEST" >"$WORK/fields" 2>&1 <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
job, builder, src, pol = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def req(cond, what):
    print(("ok " if cond else "FAIL ") + what)
req(st.get("_type") == "https://in-toto.io/Statement/v1", "_type")
req(st.get("predicateType") == "https://slsa.dev/provenance/v1", "predicateType")
subs = st.get("subject")
req(isinstance(subs, list) and len(subs) == 2, "two subjects")
req(all(isinstance(s.get("name"), str) and isinstance(s.get("digest", {}).get("sha256"), str)
        and len(s["digest"]["sha256"]) == 64 for s in subs), "subjects have name and sha256")
p = st.get("predicate", {})
bd, rd = p.get("buildDefinition", {}), p.get("runDetails", {})
req(isinstance(bd.get("buildType"), str) and ":" in bd["buildType"], "buildType is a URI")
ep = bd.get("externalParameters", {})
req(ep.get("project") == "web", "externalParameters.project")
req(isinstance(ep.get("spec"), dict) and "script" in ep["spec"], "externalParameters.spec")
req(ep.get("sourceDigest", {}).get("sha256") == src, "externalParameters.sourceDigest")
req("signerKeyId" in ep and ep["signerKeyId"] is None, "externalParameters.signerKeyId null (unsigned)")
ip = bd.get("internalParameters", {})
req("policyDigest" in ip and isinstance(ip.get("sandbox"), dict) and ip.get("backend") == "native",
    "internalParameters: policyDigest, sandbox, backend")
req(pol.startswith("sha256:") and (ip.get("policyDigest") or {}).get("sha256") == pol[7:],
    "internalParameters.policyDigest is the job's policy digest (%s)" % pol)
deps = bd.get("resolvedDependencies", [])
req(any(d.get("digest", {}).get("sha256") == src for d in deps), "resolvedDependencies: the source")
req(any(d.get("name") == "rootfs" and d.get("uri") for d in deps), "resolvedDependencies: the root filesystem")
req(rd.get("builder", {}).get("id") == builder, "runDetails.builder.id is the configured one")
md = rd.get("metadata", {})
req(md.get("invocationId") == job, "metadata.invocationId is the job id")
req(all(isinstance(md.get(k), str) and md[k].endswith("Z") for k in ("startedOn", "finishedOn")),
    "metadata.startedOn/finishedOn")
bp = rd.get("byproducts", [])
req(any(b.get("name") == "log" and len(b.get("digest", {}).get("sha256", "")) == 64 for b in bp),
    "byproducts: the log's digest")
PY
while read -r res what; do
  check "provenance field: $what" -- test "$res" = ok
done <"$WORK/fields"
api "$PTOK" GET "/v1/jobs/$JOB/log"
cp "$WORK/body" "$WORK/job.log"
LOGSHA=$(python3 -c 'import base64,json,sys; st=json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"])); print([b for b in st["predicate"]["runDetails"]["byproducts"] if b["name"]=="log"][0]["digest"]["sha256"])' "$WORK/prov.json")
check "the log byproduct's digest is the log's" -- test "$(sha256sum "$WORK/job.log" | cut -d' ' -f1)" = "$LOGSHA"

# --- the key stayed out of the job -----------------------------------------------------
check "the job never saw the provenance key" -- \
  bash -c "! grep -qF -- '$KEYLINE' '$WORK/job.log' && ! grep -qF -- '$KEYLINE' '$WORK/prov.json'"

# --- kiln verify, offline ---------------------------------------------------------------
k "$PTOK" fetch "$JOB" -o "$WORK/got"
check "kiln fetch (rc=$RC)" -- test "$RC" -eq 0
ONE=$(find "$WORK/got" -name one.txt | head -1)
TWO=$(find "$WORK/got" -name two.bin | head -1)
PUB=$DATA/provenance.pub
vfy() { KILN_SERVER=http://127.0.0.1:9 "$KILN" verify "$@" >"$WORK/out" 2>"$WORK/err" </dev/null; RC=$?; }
vfy --key "$PUB" --provenance "$WORK/prov.json" "$ONE" "$TWO"
check "kiln verify accepts both artifacts, with no server (rc=$RC)" -- test "$RC" -eq 0
[ "$RC" -eq 0 ] || diag_file "$WORK/err"
vfy --key "$WORK/keys.pem" --provenance "$WORK/prov.json" --project web --builder "$BUILDER" \
  --source-digest "sha256:$SRC_SHA" "$ONE"
check "... with the key from /v1/keys and --project, --builder, --source-digest (rc=$RC)" -- test "$RC" -eq 0
[ "$RC" -eq 0 ] || diag_file "$WORK/err"

vfy --key "$WORK/keys.json" --provenance "$WORK/prov.json" "$ONE"
check "... with the JSON answer of /v1/keys as the key (rc=$RC)" -- test "$RC" -eq 0

vfy --key "$PUB" --provenance "$WORK/prov.json" --project api "$ONE"
check "wrong --project: refused, says project (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'verify failed: project:' '$WORK/err'"
vfy --key "$PUB" --provenance "$WORK/prov.json" --builder urn:other "$ONE"
check "wrong --builder: refused, says builder (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'verify failed: builder:' '$WORK/err'"
vfy --key "$PUB" --provenance "$WORK/prov.json" --source-digest "sha256:$(printf '%064d' 0)" "$ONE"
check "wrong --source-digest: refused, says source-digest (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'verify failed: source-digest:' '$WORK/err'"

echo "not what was built $R" >"$WORK/swapped.txt"
vfy --key "$PUB" --provenance "$WORK/prov.json" "$ONE" "$WORK/swapped.txt"
check "a swapped artifact: refused, says subject (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'verify failed: subject: .*swapped.txt' '$WORK/err'"

head -c 32 /dev/urandom | base64 >"$WORK/other.pub"
vfy --key "$WORK/other.pub" --provenance "$WORK/prov.json" "$ONE"
check "another key: refused, says signature (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'verify failed: signature: .*not signed by key' '$WORK/err'"

python3 - "$WORK/prov.json" "$WORK/changed.json" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
b = bytearray(base64.b64decode(env["payload"]))
i = b.index(b'"web"') + 1
b[i] ^= 0x01
env["payload"] = base64.b64encode(bytes(b)).decode()
json.dump(env, open(sys.argv[2], "w"))
PY
vfy --key "$PUB" --provenance "$WORK/changed.json" "$ONE"
check "one changed byte in the payload: refused, says signature (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'verify failed: signature: .*does not verify' '$WORK/err'"

python3 - "$WORK/prov.json" "$WORK/forged.json" "$WORK/swapped.txt" <<'PY'
import base64, hashlib, json, os, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
st["subject"] = [{"name": "swapped.txt", "digest": {"sha256": hashlib.sha256(open(sys.argv[3], "rb").read()).hexdigest()}}]
env["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
env["signatures"][0]["sig"] = base64.b64encode(os.urandom(64)).decode()
json.dump(env, open(sys.argv[2], "w"))
PY
vfy --key "$PUB" --provenance "$WORK/forged.json" "$WORK/swapped.txt"
check "a forged envelope (the real key id, a made-up signature): refused (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'verify failed: signature:' '$WORK/err'"
echo '{"payload": "e30=", "payloadType": "x"}' >"$WORK/bad.json"
vfy --key "$PUB" --provenance "$WORK/bad.json" "$ONE"
check "not an envelope: refused, says envelope (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'verify failed: envelope:' '$WORK/err'"

# --- no artifacts, no provenance -------------------------------------------------------
mksrc "$WORK/none" "echo nothing"
submit "$PTOK" web "$WORK/none"
wait_final "$PTOK" "$JOB" 120 >/dev/null
sleep 0.5
api "$PTOK" GET "/v1/jobs/$JOB/provenance"
check "a job without artifacts has no provenance: 404 (got $HTTP)" -- test "$HTTP" = 404

# --- the key survives a restart ------------------------------------------------------------
cp "$DATA/provenance.pub" "$WORK/pub.before"
kilnd_stop
# As if kilnd had stopped between the job's end and its provenance.
sqlite3 "$DATA/kiln.db" "DELETE FROM provenance WHERE job_id = $PJOB"
kilnd_start --config "$WORK/kilnd.yml"
check "after a restart the same key is published" -- cmp -s "$WORK/pub.before" "$DATA/provenance.pub"
k "$PTOK" provenance "$PJOB" -o "$WORK/prov2.json"
check "provenance lost to a stop is written at the next start (rc=$RC)" -- test "$RC" -eq 0
vfy --key "$PUB" --provenance "$WORK/prov2.json" "$ONE" "$TWO"
check "... and verifies (rc=$RC)" -- test "$RC" -eq 0
check "kilnd said so" -- grep -q 'wrote the provenance of 1 finished job' "$KILND_ERR"
kilnd_stop
chmod 0644 "$DATA/provenance.key"
"$KILND" --data "$DATA" --listen 127.0.0.1:0 >"$WORK/k.out" 2>"$WORK/k.err" </dev/null &
P=$!
for i in $(seq 1 50); do kill -0 $P 2>/dev/null || break; sleep 0.1; done
kill -0 $P 2>/dev/null && { kill $P; wait $P; }
check "a provenance key readable by others: kilnd refuses to start" -- grep -q 'provenance.key must be .*0600' "$WORK/k.err"
chmod 0600 "$DATA/provenance.key"
done_testing
