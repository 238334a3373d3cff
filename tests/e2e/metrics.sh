#!/bin/bash
# GET /metrics: needs a read token for all projects (unless metrics_public),
# passes `promtool check metrics`, and counts what happened: finished jobs
# by project and state, denied syscalls, limits hit, refused submissions,
# authentication failures. No job id or build text becomes a label.
. "$KILN_TESTS/e2e/lib.sh"

PROMTOOL=$(command -v promtool || true)
if [ -z "$PROMTOOL" ]; then
  if [ "${CI:-}" = true ]; then bail "promtool missing (Debian package prometheus)"; fi
  echo "1..0 # SKIP promtool missing (apt install prometheus)"
  exit 0
fi

# A project whose builds get a secret (docs/policy.md), to leak one.
DATA=$WORK/data
mkdir -p "$DATA/policies"
chmod 0700 "$DATA"
printf 'secrets:\n  TOKEN: {env: false}\nartifacts: {secret_scan: fail}\n' >"$DATA/policies/sproj.yml"
kilnd_start

api "" GET /metrics
check "no token: 401 ($HTTP)" -- test "$HTTP" = 401
setup_project mproj || bail "cannot set up project mproj"
TOK=$PTOK
api "$TOK" GET /metrics
check "a token tied to a project: 403 ($HTTP)" -- test "$HTTP" = 403
api "$ADMIN_TOKEN" GET /metrics
check "the admin token: 200 ($HTTP)" -- test "$HTTP" = 200
check "content type is the Prometheus text format" -- \
  bash -c "curl -s -o /dev/null -w '%{content_type}' -H 'Authorization: Bearer $ADMIN_TOKEN' '$KILN_SERVER/metrics' | grep -q '^text/plain; version=0.0.4'"
cp "$WORK/body" "$WORK/m0"
check "promtool check metrics passes on a fresh server" -- \
  bash -c "'$PROMTOOL' check metrics <'$WORK/m0' >'$WORK/promtool.out' 2>&1"
diag_file "$WORK/promtool.out"
BIG=$(head -c 20000 /dev/zero | tr '\0' a)
api "$ADMIN_TOKEN" GET /metrics -H "X-Big: $BIG"
check "headers over 16K: 431 on /metrics as on the API ($HTTP)" -- test "$HTTP" = 431
api "$ADMIN_TOKEN" GET /metrics
check "build info" -- grep -q '^kiln_build_info{version="[0-9.]*"} 1$' "$WORK/m0"

# metric NAME{LABELS} FILE: the sample's value ("" if absent).
metric() { grep -v '^#' "$2" | grep -F "$1 " | head -1 | awk '{print $NF}'; }

# A job that succeeds, one that fails with a denied syscall, one that hits
# the output limit, and a refused submission.
mksrc "$WORK/ok" 'echo hello'
submit "$TOK" mproj "$WORK/ok"; J1=$JOB
mksrc "$WORK/deny" 'unshare -r true; echo "<script>x</script>"; exit 3'
submit "$TOK" mproj "$WORK/deny"; J2=$JOB
mksrc "$WORK/tmo" 'sleep 30' 'timeout: 1s'
submit "$TOK" mproj "$WORK/tmo"; J3=$JOB
s1=$(wait_final "$TOK" "$J1"); s2=$(wait_final "$TOK" "$J2"); s3=$(wait_final "$TOK" "$J3")
check "jobs finished ($s1 $s2 $s3)" -- test "$s1/$s2/$s3" = succeeded/failed/timed_out
printf 'script: echo hi\nbogus: 1\n' >"$WORK/bad.yml"
mkdir -p "$WORK/badsrc"; echo x >"$WORK/badsrc/f"
tar -czf "$WORK/bad.tar.gz" -C "$WORK/badsrc" f
curl_submit "$TOK" mproj "$WORK/bad.yml" "$WORK/bad.tar.gz"
api "" GET /v1/jobs
api "kiln_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" GET /v1/jobs

# A secret copied into an artifact.
setup_project sproj || bail "cannot set up project sproj"
STOK=$PTOK
printf 'metrics-secret-%s\n' "$R" | KILN_TOKEN=$ADMIN_TOKEN "$KILN" secret set sproj TOKEN >/dev/null 2>&1
mksrc "$WORK/leak" 'mkdir -p out; cat /run/secrets/TOKEN > out/leak.txt' 'secrets: [TOKEN]'
submit "$STOK" sproj "$WORK/leak"
sl=$(wait_final "$STOK" "$JOB")
check "the leaking job failed, reason secret_in_artifact ($sl)" -- test "$sl/$(job_get "$STOK" "$JOB" reason)" = failed/secret_in_artifact
[ "$(job_get "$STOK" "$JOB" reason)" = secret_in_artifact ] || { diag "$(job_get "$STOK" "$JOB" error)"; k "$STOK" logs "$JOB"; diag_file "$WORK/out" 20; }

api "$ADMIN_TOKEN" GET /metrics
cp "$WORK/body" "$WORK/m1"
check "promtool check metrics passes after jobs" -- \
  bash -c "'$PROMTOOL' check metrics <'$WORK/m1' >'$WORK/promtool.out' 2>&1"
diag_file "$WORK/promtool.out"
check "succeeded jobs of mproj counted" -- \
  test "$(metric 'kiln_jobs_total{project="mproj",state="succeeded"}' "$WORK/m1")" = 1
check "failed jobs of mproj counted" -- \
  test "$(metric 'kiln_jobs_total{project="mproj",state="failed"}' "$WORK/m1")" = 1
check "timed out jobs of mproj counted" -- \
  test "$(metric 'kiln_jobs_total{project="mproj",state="timed_out"}' "$WORK/m1")" = 1
check "the secret found in an artifact counted" -- \
  test "$(metric 'kiln_violations_total{kind="secret_in_artifact"}' "$WORK/m1")" = 1
check "denied syscalls counted" -- \
  test "$(metric 'kiln_violations_total{kind="denied_syscall"}' "$WORK/m1")" -ge 1
check "the timeout counted as a limit hit" -- \
  test "$(metric 'kiln_limits_hit_total{limit="timeout"}' "$WORK/m1")" = 1
check "the refused kiln.yml counted by reason" -- \
  test "$(metric 'kiln_submissions_rejected_total{reason="spec_invalid"}' "$WORK/m1")" = 1
check "authentication failures counted (missing, invalid)" -- bash -c "
  test \"\$(grep -F 'kiln_auth_failures_total{reason=\"missing\"} ' '$WORK/m1' | awk '{print \$NF}')\" -ge 2 &&
  test \"\$(grep -F 'kiln_auth_failures_total{reason=\"invalid\"} ' '$WORK/m1' | awk '{print \$NF}')\" -ge 1"
check "duration histogram observed four runs" -- \
  test "$(metric 'kiln_job_duration_seconds_count' "$WORK/m1")" = 4
check "sandbox start histogram observed four runs" -- \
  test "$(metric 'kiln_sandbox_start_seconds_count' "$WORK/m1")" = 4
check "queue depth is a gauge at 0" -- test "$(metric kiln_queue_depth "$WORK/m1")" = 0
# The audit log reports its size and last checkpoint once it signs one
# (at most a second after entries arrive).
for _ in $(seq 1 40); do
  api "$ADMIN_TOKEN" GET /metrics
  [ -n "$(metric kiln_audit_log_bytes "$WORK/body")" ] && break
  sleep 0.25
done
AB=$(metric kiln_audit_log_bytes "$WORK/body")
AAGE=$(metric kiln_audit_checkpoint_age_seconds "$WORK/body")
check "the audit log's size is reported ($AB bytes)" -- test "${AB:-0}" -gt 1000
# ... and it is the entries' bytes up to the newest checkpoint (retried: a
# checkpoint may land between the scrape and the query).
audit_bytes_match() {
  local want
  api "$ADMIN_TOKEN" GET /metrics
  want=$(sqlite3 "file:$DATA/kiln.db?mode=ro" "SELECT coalesce(sum(length(entry)), 0)
    FROM audit_entries WHERE idx < (SELECT max(size) FROM audit_checkpoints)" 2>/dev/null)
  [ -n "$want" ] && [ "$(metric kiln_audit_log_bytes "$WORK/body")" = "$want" ]
}
for _ in $(seq 1 20); do audit_bytes_match && break; sleep 0.25; done
check "... and equals the bytes of the checkpointed entries in the database" -- audit_bytes_match
check "... and the age of its last checkpoint ($AAGE s)" -- \
  bash -c "[ -n '$AAGE' ] && [ '$AAGE' -lt 60 ]"
check "no job id and no build output in any label" -- \
  bash -c "! grep -E 'job=|id=|script' '$WORK/m1'"

# Counters of finished jobs survive a restart (seeded from the database).
kilnd_stop
kilnd_start
api "$ADMIN_TOKEN" GET /metrics
check "after a restart the job counters are seeded from the database" -- \
  test "$(metric 'kiln_jobs_total{project="mproj",state="succeeded"}' "$WORK/body")" = 1

# metrics_public: true serves without a token.
kilnd_stop
printf 'metrics_public: true\n' >"$WORK/kilnd.yml"
kilnd_start --config "$WORK/kilnd.yml"
api "" GET /metrics
check "metrics_public: true serves /metrics without a token ($HTTP)" -- test "$HTTP" = 200

done_testing
