#!/bin/bash
# Secrets end to end: set through the CLI from stdin (never the command
# line), listed without values; delivered as /run/secrets/NAME (0400 in a
# 0500 directory, the build's uid) and in the environment only where the
# policy says env: true; printed by the build raw, base64 at every
# alignment, URL-encoded, JSON-escaped and hex, on both streams and split
# across writes, and absent from the stored log, the API log and the SSE
# stream; copied into an artifact: the job fails and the artifact is not
# stored; the database alone holds no value; a missing or wrong master key
# stops kilnd.
. "$KILN_TESTS/e2e/lib.sh"

# not COMMAND...: succeeds when COMMAND fails (check cannot take a bare !).
not() { ! "$@"; }

DATA=$WORK/data
mkdir -p "$DATA/policies"
chmod 0700 "$DATA"
cat >"$DATA/policies/sec.yml" <<'YML'
secrets:
  TOKEN: {env: false}
  ENVTOK: {env: true}
artifacts: {secret_scan: fail}
YML
kilnd_start
setup_project sec || bail "cannot set up a project"
TOK=$PTOK

SECRET="S3c/r+t \"q\" &v=<$R>~"
ENVSECRET="env-secret-$R"
printf '%s\n' "$SECRET" >"$WORK/secret.txt"

KILN_TOKEN=$ADMIN_TOKEN "$KILN" secret set sec TOKEN <"$WORK/secret.txt" >"$WORK/out" 2>"$WORK/err"
check "secret set from stdin: exit 0" -- [ $? -eq 0 ]
printf '%s' "$ENVSECRET" | KILN_TOKEN=$ADMIN_TOKEN "$KILN" secret set sec ENVTOK >/dev/null 2>&1
check "second secret set" -- [ $? -eq 0 ]
printf 'short' | KILN_TOKEN=$ADMIN_TOKEN "$KILN" secret set sec SHORT >"$WORK/out" 2>"$WORK/err"
check "a 5-byte secret is refused" -- [ $? -eq 1 ] && grep -q "at least 8 bytes" "$WORK/err"
k "$ADMIN_TOKEN" secret list sec
check "secret list: names and versions" -- grep -q "TOKEN" "$WORK/out" && grep -q "ENVTOK" "$WORK/out"
check "secret list: never the value" -- not grep -qF "$R" "$WORK/out"
k "$TOK" secret list sec
check "a project token cannot list secrets" -- [ "$RC" -ne 0 ]
check "kilnd's log never holds the value" -- not grep -qF "$R" "$KILND_ERR"

# --- delivery and masking -------------------------------------------------------
mkdir -p "$WORK/src"
cat >"$WORK/src/kiln.yml" <<'YML'
script: |
  echo "dir=$(stat -c '%a %u' /run/secrets) file=$(stat -c '%a %u' /run/secrets/TOKEN) me=$(id -u)"
  if env | grep -q "^TOKEN="; then echo "TOKEN-IN-ENV"; else echo "token-not-in-env"; fi
  if [ "$ENVTOK" = "$(cat /run/secrets/ENVTOK)" ]; then echo "envtok-ok"; fi
  if echo x > /run/secrets/new 2>/dev/null; then echo "SECRETS-WRITABLE"; else echo "secrets-read-only"; fi
  python3 /workspace/enc.py
  python3 /workspace/enc.py >&2
  cat /run/secrets/TOKEN; echo
  echo "$ENVTOK"
  python3 -c 'import sys; sys.stdout.write("x" * 65530 + open("/run/secrets/TOKEN").read() + "\n")'
  python3 -c 'import sys; sys.stdout.write("y" * (16 << 10) + open("/run/secrets/TOKEN").read() * 3 + "\n")' 
artifacts: []
secrets: [TOKEN, ENVTOK]
YML
cat >"$WORK/src/enc.py" <<'PY'
import base64, binascii, json, re, sys, time, urllib.parse
v = open("/run/secrets/TOKEN", "rb").read()
out = sys.stdout.buffer
def emit(b):
    # split every line across two writes with a pause between
    h = len(b) // 2
    out.write(b[:h]); out.flush(); time.sleep(0.05)
    out.write(b[h:] + b"\n"); out.flush()
emit(b"raw:" + v)
for pre in (b"", b"a", b"ab"):
    emit(b"b64:" + base64.b64encode(pre + v + b"zz"))
    emit(b"b64url:" + base64.urlsafe_b64encode(pre + v + b"zz"))
emit(b"url:" + urllib.parse.quote(v, safe="").encode())
emit(b"urllower:" + re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(v, safe="")).encode())
emit(b"form:" + urllib.parse.quote_plus(v).encode())
emit(b"json:" + json.dumps({"t": v.decode()}).encode())
emit(b"jsonascii:" + json.dumps(v.decode(), ensure_ascii=True).encode())
emit(b"hex:" + binascii.hexlify(v))
emit(b"HEX:" + binascii.hexlify(v).upper())
# byte by byte
for c in v:
    out.write(bytes([c])); out.flush()
out.write(b"\n"); out.flush()
PY
submit "$TOK" sec "$WORK/src"
check "job with granted secrets: accepted" -- [ "$RC" -eq 0 ]
ST=$(wait_final "$TOK" "$JOB")
check "job with granted secrets: succeeded" -- [ "$ST" = succeeded ]
LOG=$DATA/logs/$JOB.log
[ "$ST" = succeeded ] || diag_file "$LOG" 30
check "/run/secrets 0500 and the file 0400, owned by the build's uid" -- \
  grep -q "dir=500 1000 file=400 1000 me=1000" "$LOG"
check "env: false: not in the environment" -- grep -q "token-not-in-env" "$LOG"
check "env: true: in the environment" -- grep -q "envtok-ok" "$LOG"
check "/run/secrets is read-only" -- grep -q "secrets-read-only" "$LOG"
check "the grants are noted (name and version)" -- grep -q "secret TOKEN (version 1) granted" "$LOG"

# Every encoding the script printed, computed on the host.
python3 - "$WORK/secret.txt" >"$WORK/needles" <<'PY'
import base64, binascii, json, re, sys, urllib.parse
v = open(sys.argv[1], "rb").read().rstrip(b"\n")
q = urllib.parse.quote(v, safe="")
needles = {v, binascii.hexlify(v), binascii.hexlify(v).upper(),
           q.encode(), re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), q).encode(),
           urllib.parse.quote_plus(v).encode(), json.dumps(v.decode())[1:-1].encode()}
for pre in (b"", b"a", b"ab"):
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        full = enc(pre + v + b"zz")
        a = len(pre)
        first, last = (8 * a + 5) // 6, (8 * (a + len(v))) // 6
        needles.add(full[first:last])
for n in sorted(needles):
    print(n.hex())
PY
# absent FILE: no needle in FILE
absent() {
  python3 - "$WORK/needles" "$1" <<'PY'
import sys
needles = [bytes.fromhex(l.strip()) for l in open(sys.argv[1]) if l.strip()]
data = open(sys.argv[2], "rb").read()
bad = [n for n in needles if n in data]
for n in bad:
    print("# found:", n)
sys.exit(1 if bad else 0)
PY
}
check "the host computed $(wc -l <"$WORK/needles") encodings" -- [ "$(wc -l <"$WORK/needles")" -ge 10 ]
check "stored log: no encoding of the secret" -- absent "$LOG"
check "stored log: the replacement is there (masking happened)" -- [ "$(grep -c '\*\*\*' "$LOG")" -ge 15 ]
check "stored log: the env secret is masked too" -- not grep -qF "$ENVSECRET" "$LOG"
api "$TOK" GET "/v1/jobs/$JOB/log"
cp "$WORK/body" "$WORK/apilog"
check "API log: no encoding of the secret" -- absent "$WORK/apilog"
check "API log: has the output" -- grep -q "raw:\*\*\*" "$WORK/apilog"
curl -s --max-time 30 -H "Authorization: Bearer $TOK" -H "Accept: text/event-stream" \
  "$KILN_SERVER/v1/jobs/$JOB/log?follow=1" >"$WORK/sse"
check "SSE stream: no encoding of the secret" -- absent "$WORK/sse"
check "SSE stream: has the output" -- grep -q "raw:\*\*\*" "$WORK/sse"
k "$TOK" logs "$JOB"
check "kiln logs: no encoding of the secret" -- absent "$WORK/out"
api "$TOK" GET "/v1/jobs/$JOB"
check "job object: no encoding of the secret" -- absent "$WORK/body"
check "the job object lists the grants (names and versions)" -- \
  [ "$(jget secrets_granted "$WORK/body")" = '[{"name": "ENVTOK", "version": 1}, {"name": "TOKEN", "version": 1}]' ]
check "the grant is recorded in the database (name, version)" -- \
  [ "$(python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute("select name||\":\"||version from job_secrets where job_id=? order by name", (int(sys.argv[2]),)).fetchall())' "$DATA/kiln.db" "$JOB")" = "[('ENVTOK:1',), ('TOKEN:1',)]" ]

# --- where else the value must not be ----------------------------------------------
mkdir -p "$WORK/hostile"
cat >"$WORK/hostile/kiln.yml" <<'YML'
script: |
  v=$(cat /run/secrets/TOKEN)
  for f in /proc/1/environ /proc/1/cmdline /proc/self/environ /proc/self/cmdline; do
    if tr '\0' '\n' <"$f" 2>/dev/null | grep -qF "$v"; then echo "LEAK in $f"; fi
  done
  if python3 -c 'open("/proc/1/mem", "rb").read(1)' 2>/dev/null; then echo "INIT-MEM-READABLE"; else echo "init-mem-unreadable"; fi
  echo "ready-$$"
  sleep 3
secrets: [TOKEN]
artifacts: []
YML
submit "$TOK" sec "$WORK/hostile"
for i in $(seq 1 80); do grep -q "ready-" "$DATA/logs/$JOB.log" 2>/dev/null && break; sleep 0.1; done
# While the build runs: no host process shows the value in its command line
# or environment (the runner, the supervisor, init are all host processes).
leak=0
for p in /proc/[0-9]*; do
  for f in cmdline environ; do
    tr '\0' '\n' <"$p/$f" 2>/dev/null | grep -qF "$SECRET" && { leak=1; diag "value in $p/$f"; }
  done
done
check "while the job runs, no process's argv or environment holds the value" -- [ "$leak" -eq 0 ]
check "hostile job finished" -- [ "$(wait_final "$TOK" "$JOB")" = succeeded ]
check "not in init's or the build's environ/cmdline" -- not grep -q "LEAK in" "$DATA/logs/$JOB.log"
check "init's memory is not readable by the build" -- grep -q "init-mem-unreadable" "$DATA/logs/$JOB.log"
mksrc "$WORK/nosec" 'if [ -e /run/secrets ]; then echo HAS-SECRETS-DIR; else echo no-secrets-dir; fi'
submit "$TOK" sec "$WORK/nosec"
wait_final "$TOK" "$JOB" >/dev/null
check "a job that asks for no secret has no /run/secrets" -- grep -q "no-secrets-dir" "$DATA/logs/$JOB.log"

# --- artifacts ------------------------------------------------------------------------
mkdir -p "$WORK/art"
cat >"$WORK/art/kiln.yml" <<'YML'
script: |
  mkdir -p out
  echo fine >out/fine.txt
  { echo header; base64 /run/secrets/TOKEN; } >out/leak.txt
secrets: [TOKEN]
YML
submit "$TOK" sec "$WORK/art"
ST=$(wait_final "$TOK" "$JOB")
check "a secret copied into an artifact: the job fails" -- [ "$ST" = failed ]
check "... reason secret_in_artifact" -- [ "$(job_get "$TOK" "$JOB" reason)" = secret_in_artifact ]
api "$TOK" GET "/v1/jobs/$JOB/artifacts"
check "... the artifact is not stored" -- not grep -q "leak.txt" "$WORK/body"
check "... the clean one is" -- grep -q "fine.txt" "$WORK/body"
check "... the log says why" -- grep -q "leak.txt: holds a granted secret: not stored" "$DATA/logs/$JOB.log"
check "... no blob in the store holds the secret" -- \
  not grep -rqF "$(base64 -w0 <<<"${SECRET}" | head -c 20)" "$DATA/cas"

# --- policy check against the store ---------------------------------------------
mkdir -p "$WORK/pc"
cp "$DATA/policies/sec.yml" "$WORK/pc/"
"$KILND" policy check "$WORK/pc" --data "$DATA" >"$WORK/out" 2>&1
check "policy check --data: granted secrets that exist pass" -- [ $? -eq 0 ]
printf 'secrets:\n  NOPE_MISSING: {env: false}\n' >"$WORK/pc/sec.yml"
"$KILND" policy check "$WORK/pc" --data "$DATA" >"$WORK/out" 2>&1
check "policy check --data: a grant of an unset secret is reported with its line" -- \
  grep -q "sec.yml:2:3: secrets.NOPE_MISSING: project sec has no secret of that name" "$WORK/out"

# --- removal ---------------------------------------------------------------------------
printf 'to-be-removed-%s' "$R" | KILN_TOKEN=$ADMIN_TOKEN "$KILN" secret set sec GONE >/dev/null 2>&1
k "$ADMIN_TOKEN" secret rm sec GONE
check "secret rm: exit 0" -- [ "$RC" -eq 0 ]
k "$ADMIN_TOKEN" secret list sec
check "secret rm: gone from the list" -- not grep -q GONE "$WORK/out"
k "$ADMIN_TOKEN" secret rm sec GONE
check "secret rm of an unknown secret: exit 1" -- [ "$RC" -eq 1 ]

# --- the audit log (docs/audit.md): names and versions, never values ----------------------
wait_audit_caught_up
k "$ADMIN_TOKEN" audit show --json
check "audit: secret.set, secret.granted and secret.removed are recorded" -- \
  sh -c "grep -q '\"kind\":\"secret.set\".*\"secret\":\"TOKEN\"' '$WORK/out' &&
         grep -q '\"kind\":\"secret.granted\".*\"secret\":\"TOKEN\",\"version\":[0-9]' '$WORK/out' &&
         grep -q '\"kind\":\"secret.removed\".*\"secret\":\"GONE\"' '$WORK/out'"
check "audit: no secret value in the log" -- \
  sh -c "! grep -qF '$R' '$WORK/out'"

# --- at rest -----------------------------------------------------------------------------
kilnd_stop
check "the database files hold no value" -- \
  sh -c "! grep -qF '$R' '$DATA'/kiln.db*"
check "the master key is 0600, 32 bytes" -- \
  [ "$(stat -c '%a %s' "$DATA/secrets.key")" = "600 32" ]
mv "$DATA/secrets.key" "$WORK/secrets.key.saved"
"$KILND" --data "$DATA" --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" </dev/null
check "master key missing: kilnd refuses to start" -- [ $? -ne 0 ] && grep -q "missing" "$WORK/err"
check "... and made no new key" -- [ ! -e "$DATA/secrets.key" ]
head -c 32 /dev/urandom >"$DATA/secrets.key"; chmod 0600 "$DATA/secrets.key"
"$KILND" --data "$DATA" --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" </dev/null
check "wrong master key: kilnd refuses to start" -- [ $? -ne 0 ] && grep -q "not the key" "$WORK/err"
mv "$WORK/secrets.key.saved" "$DATA/secrets.key"
kilnd_start
check "the right key: kilnd starts again" -- healthy

done_testing
