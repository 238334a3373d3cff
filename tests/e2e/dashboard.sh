#!/bin/bash
# The dashboard in headless Chromium (tests/dashboard/dashboard.py): login,
# jobs list, a live log, the injection test (build output, a file name
# and a spec field made of HTML/JS are shown as text and run nothing), and a
# granted secret printed by the build appearing nowhere on the job's page.
# Screenshots: $KILN_SCREENSHOTS (meson: build/tests/dashboard-screenshots).
. "$KILN_TESTS/e2e/lib.sh"

PY=/usr/bin/python3
if ! command -v chromium >/dev/null || ! "$PY" -c 'import websocket' 2>/dev/null; then
  if [ "${CI:-}" = true ]; then bail "chromium or python3-websocket missing"; fi
  echo "1..0 # SKIP chromium or python3-websocket missing (apt install chromium python3-websocket)"
  exit 0
fi

DATA=$WORK/data
mkdir -p "$DATA/policies"
chmod 0700 "$DATA"
printf 'secrets:\n  DASHSEC: {env: false}\n' >"$DATA/policies/web.yml"
kilnd_start
setup_project web || bail "cannot set up project web"
TOK=$PTOK

# A granted secret the build prints raw and in base64: the dashboard must
# show neither (it reads the masked log, like every other reader).
SECRET="dash-secret-$R-value"
printf '%s' "$SECRET" | KILN_TOKEN=$ADMIN_TOKEN "$KILN" secret set web DASHSEC >/dev/null 2>&1
check "a secret for the dashboard test is set" -- test $? -eq 0
mksrc "$WORK/sec" "cat /run/secrets/DASHSEC; echo; base64 /run/secrets/DASHSEC; echo SEC-END-$R" \
  "secrets: [DASHSEC]"
submit "$TOK" web "$WORK/sec"; J_SECRET=$JOB
st=$(wait_final "$TOK" "$J_SECRET")
check "the job printing its secret finished ($st)" -- test "$st" = succeeded

# The hostile job: its log, an artifact name and its script are HTML/JS.
mksrc "$WORK/inj" "echo '<img src=/pwned-img-$R onerror=\"window.__pwned=1;fetch(\\\"/pwned-onerror-$R\\\")\">'
echo '<script>window.__pwned=2;fetch(\"/pwned-script-$R\")</script>'
echo '\"><svg onload=window.__pwned=3>'
mkdir -p out; echo x > 'out/<img src=pwned-file-$R onerror=window.__pwned=4>.txt'
unshare -r true || echo denied-as-expected
echo END-$R"
submit "$TOK" web "$WORK/inj"; J_INJECT=$JOB
st=$(wait_final "$TOK" "$J_INJECT")
check "the hostile job finished ($st)" -- test "$st" = succeeded -o "$st" = failed

# The live job: a line every 0.3 s for about 9 s.
mksrc "$WORK/live" "for i in \$(seq 1 30); do echo tick-$R \$i; sleep 0.3; done; echo done-$R"
submit "$TOK" web "$WORK/live"; J_LIVE=$JOB
wait_state "$TOK" "$J_LIVE" running 30
check "the live job is running" -- test "$(job_get "$TOK" "$J_LIVE" state)" = running

SHOTS=${KILN_SCREENSHOTS:-$WORK/screenshots}
KILN_SCREENSHOTS=$SHOTS DASH_TOKEN=$TOK DASH_ADMIN=$ADMIN_TOKEN JOB_INJECT=$J_INJECT JOB_LIVE=$J_LIVE MARK=$R \
  JOB_SECRET=$J_SECRET SECRET_VALUE=$SECRET \
  "$PY" "$KILN_TESTS/dashboard/dashboard.py" >"$WORK/dash.tap" 2>"$WORK/dash.err"
rc=$?
# Re-number the driver's TAP lines into this test's.
while IFS= read -r line; do
  case "$line" in
    "ok "*) ok 0 "${line#ok [0-9]* - }" ;;
    "not ok "*) ok 1 "${line#not ok [0-9]* - }" ;;
    "#"*) echo "$line" ;;
    "1..0 # SKIP"*) diag "$line" ;;
  esac
done <"$WORK/dash.tap"
check "the browser driver ran to the end (rc=$rc)" -- test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag_file "$WORK/dash.err" 20
diag "screenshots in $SHOTS"
done_testing
