#!/bin/bash
# Policies: `kilnd policy check` on broken files (FILE:LINE:COL), a spec
# over its policy refused before it runs (naming setting, value and
# maximum), the job recording the digest of its policy, hot reload on
# SIGHUP and through the API (a valid change applies to the next job, an
# invalid one is refused and the old policy keeps working), a secret the
# policy does not grant refused, gvisor failing closed, and the
# concurrency cap.
. "$KILN_TESTS/e2e/lib.sh"

# --- kilnd policy check, no server --------------------------------------------
mkdir -p "$WORK/pcheck"
printf 'limits:\n  max: {memory: 2G}\n  default: {memory: 4G}\n' >"$WORK/pcheck/web.yml"
printf 'concurrency: 1\nfoo: bar\n' >"$WORK/pcheck/api.yml"
"$KILND" policy check "$WORK/pcheck" >"$WORK/out" 2>&1
RC=$?
check "policy check: exit 1 on a broken directory" -- [ "$RC" -eq 1 ]
check "policy check: web.yml:3:21 default above max" -- \
  grep -q "web.yml:3:21: limits.default.memory: 4G is above limits.max.memory (2G)" "$WORK/out"
check "policy check: api.yml:2:1 unknown key" -- grep -q "api.yml:2:1: unknown key 'foo'" "$WORK/out"
rm "$WORK/pcheck/api.yml"
printf 'limits:\n  max: {memory: 2G}\n  default: {memory: 1G}\n' >"$WORK/pcheck/web.yml"
"$KILND" policy check "$WORK/pcheck" >"$WORK/out" 2>&1
check "policy check: exit 0 once fixed" -- [ $? -eq 0 ]
"$KILND" policy check >"$WORK/out" 2>&1
check "policy check: usage error exits 2" -- [ $? -eq 2 ]

# --- a server with a policy -------------------------------------------------------
DATA=$WORK/data
mkdir -p "$DATA/policies"
chmod 0700 "$DATA"
cat >"$DATA/policies/pol.yml" <<'YML'
limits:
  max: {memory: 1G, timeout: 10m}
  default: {memory: 512M, timeout: 5m}
YML
kilnd_start --workers 2
setup_project pol || bail "cannot set up a project"
TOK=$PTOK
DIGEST1="sha256:$(sha256sum "$DATA/policies/pol.yml" | cut -d' ' -f1)"

k "$TOK" policy show pol --json
check "policy show: exit 0" -- [ "$RC" -eq 0 ]
check "policy show: the file's digest" -- [ "$(jget digest "$WORK/out")" = "$DIGEST1" ]
LOADED=$(jget loaded_at "$WORK/out")
check "policy show: when the set was loaded ($LOADED)" -- \
  bash -c "[[ '$LOADED' =~ ^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}Z\$ ]]"
check "policy show: max memory 1G" -- [ "$(jget limits.max.memory "$WORK/out")" = "1073741824" ]
k "$ADMIN_TOKEN" policy show other --json
check "a project without a file: built-in policy" -- \
  [ "$(jget source "$WORK/out")" = "built-in" ]

mksrc "$WORK/big" "echo big" "resources: {memory: 2G}"
n0=$(jobs_count "$TOK" pol)
submit "$TOK" pol "$WORK/big"
check "over the policy: refused (exit 1)" -- [ "$RC" -eq 1 ]
check "message names setting, asked value and maximum" -- \
  grep -q "resources.memory: 2G asked, policy allows at most 1G" "$WORK/err"
check "nothing queued" -- [ "$(jobs_count "$TOK" pol)" = "$n0" ]

mksrc "$WORK/ok" 'echo "mem=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || echo ?)"'
submit "$TOK" pol "$WORK/ok"
check "within the policy: accepted" -- [ "$RC" -eq 0 ]
check "within the policy: succeeded" -- [ "$(wait_final "$TOK" "$JOB")" = succeeded ]
check "the job records the policy digest" -- [ "$(job_get "$TOK" "$JOB" policy_digest)" = "$DIGEST1" ]
check "the default memory is the policy's (512M)" -- \
  [ "$(job_get "$TOK" "$JOB" spec.resources.memory)" = "536870912" ]
check "the log names the policy" -- grep -q "kiln| policy $DIGEST1" "$DATA/logs/$JOB.log"

# --- an invalid change: refused, the old policy keeps working ------------------------
printf 'limits:\n  max: {memory: 4G, timout: 1h}\n' >"$DATA/policies/pol.yml"
kill -HUP "$KILND_PID"
for i in $(seq 1 50); do grep -q "SIGHUP: the policy set" "$KILND_ERR" && break; sleep 0.1; done
check "SIGHUP with an invalid set: refusal logged with FILE:LINE:COL" -- \
  grep -q "pol.yml:2:21: limits.max: unknown key 'timout'" "$KILND_ERR"
submit "$TOK" pol "$WORK/big"
check "after the refused reload, 2G is still refused at 1G" -- \
  grep -q "policy allows at most 1G" "$WORK/err"
submit "$TOK" pol "$WORK/ok"
check "the old policy still runs jobs" -- [ "$(wait_final "$TOK" "$JOB")" = succeeded ]
check "... under the old digest" -- [ "$(job_get "$TOK" "$JOB" policy_digest)" = "$DIGEST1" ]
k "$ADMIN_TOKEN" policy reload
check "kiln policy reload with an invalid set: exit 1" -- [ "$RC" -eq 1 ]
check "... naming the problem with FILE:LINE:COL" -- grep -q "pol.yml:2:21: limits.max: unknown key 'timout'" "$WORK/err"

# --- a valid change: applies to the next job -------------------------------------------
printf 'limits:\n  max: {memory: 4G}\nsecrets:\n  GRANTED: {env: false}\n' >"$DATA/policies/pol.yml"
DIGEST2="sha256:$(sha256sum "$DATA/policies/pol.yml" | cut -d' ' -f1)"
k "$ADMIN_TOKEN" policy reload
check "kiln policy reload with a valid set: exit 0" -- [ "$RC" -eq 0 ]
submit "$TOK" pol "$WORK/big"
check "after the reload, 2G is accepted" -- [ "$RC" -eq 0 ]
check "... and runs" -- [ "$(wait_final "$TOK" "$JOB")" = succeeded ]
check "... under the new digest" -- [ "$(job_get "$TOK" "$JOB" policy_digest)" = "$DIGEST2" ]

# --- secrets the policy does not grant -------------------------------------------------
mksrc "$WORK/sec" "echo hi" "secrets: [NOT_GRANTED]"
n0=$(jobs_count "$TOK" pol)
submit "$TOK" pol "$WORK/sec"
check "a secret the policy does not grant: refused" -- [ "$RC" -eq 1 ]
check "... saying so" -- grep -q "NOT_GRANTED is not granted by the policy of project pol" "$WORK/err"
check "... nothing queued" -- [ "$(jobs_count "$TOK" pol)" = "$n0" ]
api "$TOK" POST /v1/jobs -F "project=pol" -F "spec=<$WORK/sec/kiln.yml" \
  -F "source=@$WORK/sec/kiln.yml;type=application/gzip"
check "API: 403 policy_denied" -- [ "$HTTP" = 403 ] && [ "$(jget error.code "$WORK/body")" = policy_denied ]

# --- gvisor fails closed ---------------------------------------------------------------------
printf 'backend: gvisor\n' >"$DATA/policies/pol.yml"
k "$ADMIN_TOKEN" policy reload
submit "$TOK" pol "$WORK/ok"
check "backend gvisor: jobs refused" -- [ "$RC" -eq 1 ] && grep -q "gvisor" "$WORK/err"

# --- the concurrency cap ---------------------------------------------------------------------
printf 'concurrency: 1\n' >"$DATA/policies/pol.yml"
k "$ADMIN_TOKEN" policy reload
mksrc "$WORK/slow" "sleep 3"
submit "$TOK" pol "$WORK/slow"; J1=$JOB
submit "$TOK" pol "$WORK/slow"; J2=$JOB
wait_state "$TOK" "$J1" running 30
both=0
for i in $(seq 1 20); do
  [ "$(job_get "$TOK" "$J2" state)" = running ] && [ "$(job_get "$TOK" "$J1" state)" = running ] && both=1
  sleep 0.1
done
check "concurrency 1: the second job waits while the first runs" -- [ "$both" -eq 0 ]
check "concurrency 1: both finish" -- [ "$(wait_final "$TOK" "$J2")" = succeeded ]

kilnd_stop
# --- an invalid set at start-up stops kilnd ------------------------------------------------
printf 'bogus: 1\n' >"$DATA/policies/pol.yml"
"$KILND" --data "$DATA" --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "kilnd refuses to start with an invalid policy set" -- [ "$RC" -ne 0 ] && grep -q "pol.yml:1:1" "$WORK/err"

done_testing
