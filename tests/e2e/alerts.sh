#!/bin/bash
# Anomaly alerts: a first denied syscall and resource use far above a
# project's baseline raise an alert (GET /v1/alerts, the metric, the
# dashboard's data) and a webhook, signed with HMAC-SHA256 and retried
# with backoff when the receiver fails. A repeat of a known denial does
# not alert again. A bad secret_file stops kilnd at start-up.
. "$KILN_TESTS/e2e/lib.sh"

PY=/usr/bin/python3
RECV_PID=
stop_receiver() { [ -n "$RECV_PID" ] && kill "$RECV_PID" 2>/dev/null; wait "$RECV_PID" 2>/dev/null; RECV_PID=; }
trap 'stop_receiver; t_cleanup' EXIT

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/hook.key"
chmod 600 "$WORK/hook.key"
: >"$WORK/hooks.jsonl"
# The first request fails: kilnd must retry.
"$PY" "$KILN_TESTS/e2e/webhook_receiver.py" "$WORK/hook.key" "$WORK/hook.port" "$WORK/hooks.jsonl" 1 &
RECV_PID=$!
for _ in $(seq 1 50); do [ -s "$WORK/hook.port" ] && break; sleep 0.1; done
[ -s "$WORK/hook.port" ] || bail "the webhook receiver did not start"
cat >"$WORK/kilnd.yml" <<YML
alerts:
  webhook: http://127.0.0.1:$(cat "$WORK/hook.port")/hook
  secret_file: $WORK/hook.key
YML

# Fail closed: an unreadable or world-readable key stops kilnd.
chmod 644 "$WORK/hook.key"
"$KILND" --data "$WORK/d0" --listen 127.0.0.1:0 --config "$WORK/kilnd.yml" >"$WORK/d0.out" 2>"$WORK/d0.err" </dev/null &
p=$!
for _ in $(seq 1 50); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
if kill -0 $p 2>/dev/null; then kill $p; wait $p; ok 1 "kilnd refuses a world-readable webhook key"; else
  wait $p; rc=$?
  check "kilnd refuses a world-readable webhook key (rc=$rc)" -- \
    bash -c "[ $rc -ne 0 ] && grep -q 'secret_file' '$WORK/d0.err'"
fi
chmod 600 "$WORK/hook.key"

# Project al may use egress, through the proxy, to nothing: every attempt
# is refused and recorded (docs/egress.md), which is all the
# new-destination rule needs; no traffic leaves.
mkdir -p "$WORK/data/policies"
printf 'network: {mode: allowlist, enforcement: block, allow: []}\n' >"$WORK/data/policies/al.yml"
kilnd_start --config "$WORK/kilnd.yml"
setup_project al || bail "cannot set up project al"
TOK=$PTOK

wait_hook() {  # wait_hook RULE N [SECONDS]: at least N accepted (204) deliveries
  local _
  for _ in $(seq 1 $((${3:-30} * 10))); do
    [ "$(grep "\"rule\": \"$1\"" "$WORK/hooks.jsonl" 2>/dev/null | grep -c '"status": 204')" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# 1. A first denied syscall.
mksrc "$WORK/deny" 'unshare -r true || true; echo done'
submit "$TOK" al "$WORK/deny"; J1=$JOB
wait_final "$TOK" "$J1" >/dev/null
check "first denied syscall: the webhook arrives (after a retry)" -- wait_hook first_denied_syscall 1
check "the receiver saw the failed first attempt, then a retry" -- \
  bash -c "[ \$(grep -c '\"status\": 500' '$WORK/hooks.jsonl') -ge 1 ]"
check "every delivery carried a valid, fresh signature" -- \
  bash -c "! grep -q '\"valid\": false' '$WORK/hooks.jsonl' && ! grep -q '\"fresh\": false' '$WORK/hooks.jsonl'"
line=$(grep '"status": 204' "$WORK/hooks.jsonl" | grep first_denied_syscall | head -1)
check "the webhook body names the job, project and syscall" -- bash -c "
  echo '$line' | $PY -c 'import json,sys; a=json.load(sys.stdin)[\"alert\"]; sys.exit(0 if a[\"job\"]==$J1 and a[\"project\"]==\"al\" and \"unshare\" in a[\"detail\"] and a[\"type\"]==\"kiln.alert\" else 1)'"
api "$TOK" GET "/v1/alerts?limit=10"
check "GET /v1/alerts lists it" -- \
  test "$(jget alerts.0.rule "$WORK/body")/$(jget alerts.0.job "$WORK/body")" = "first_denied_syscall/$J1"
# The audit log ({"index", "entry"} per line), once a checkpoint covers
# the entry (within seconds).
has_alert_entry() {
  k "$ADMIN_TOKEN" audit show --kind alert --json
  [ "$RC" -eq 0 ] && $PY -c 'import json,sys
e=[json.loads(l)["entry"] for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if any(x.get("kind")=="alert" and x.get("job")==int(sys.argv[2]) and x.get("rule")=="first_denied_syscall" for x in e) else 1)' "$WORK/out" "$J1" 2>/dev/null
}
wait_audit_caught_up
check "the audit log holds an alert entry for it" -- has_alert_entry
api "$ADMIN_TOKEN" GET /metrics
check "kiln_alerts_total counts it" -- \
  grep -q '^kiln_alerts_total{rule="first_denied_syscall"} 1$' "$WORK/body"
check "kiln_webhook_deliveries_total counts the retry and the delivery" -- bash -c "
  grep -q '^kiln_webhook_deliveries_total{result=\"delivered\"} [1-9]' '$WORK/body' &&
  grep -q '^kiln_webhook_deliveries_total{result=\"retried\"} [1-9]' '$WORK/body'"

# 2. The same denial again: known now, no new alert.
submit "$TOK" al "$WORK/deny"; J2=$JOB
wait_final "$TOK" "$J2" >/dev/null
sleep 1
api "$TOK" GET "/v1/alerts?limit=10"
check "a repeated denial raises no second alert" -- test "$(jget 'alerts.#' "$WORK/body")" = 1

# 3. Duration far above the project's usual (5 quick jobs, then 6 s).
mksrc "$WORK/quick" 'true'
for _ in 1 2 3 4; do submit "$TOK" al "$WORK/quick"; wait_final "$TOK" "$JOB" >/dev/null; done
mksrc "$WORK/slow" 'sleep 6'
submit "$TOK" al "$WORK/slow"; J3=$JOB
wait_final "$TOK" "$J3" >/dev/null
check "a job far slower than the project's usual raises duration_above_baseline" -- \
  wait_hook duration_above_baseline 1
api "$TOK" GET "/v1/alerts?limit=10"
check "the duration alert names job $J3" -- test "$(jget alerts.0.job "$WORK/body")" = "$J3"

# 4. Egress to a destination the project never used (refused by its
# policy, recorded by the proxy).
mksrc "$WORK/net" "curl -s --max-time 5 -o /dev/null http://new-dest-$R.test/ || true; echo net-done" "network: egress"
submit "$TOK" al "$WORK/net"; J4=$JOB
s4=$(wait_final "$TOK" "$J4")
check "the egress job ran ($s4)" -- test "$s4" = succeeded
check "a new egress destination raises new_egress_destination" -- wait_hook new_egress_destination 1
check "the alert names the destination" -- \
  grep -q "new-dest-$R.test:80, a destination this project never used" "$WORK/hooks.jsonl"
api "$ADMIN_TOKEN" GET /metrics
check "the refused connection counts as an egress_denied violation" -- \
  grep -q '^kiln_violations_total{kind="egress_denied"} [1-9]' "$WORK/body"
submit "$TOK" al "$WORK/net"; J5=$JOB
wait_final "$TOK" "$J5" >/dev/null
sleep 1
check "the same destination again raises no second alert" -- \
  test "$(grep -c "new-dest-$R.test:80" "$WORK/hooks.jsonl")" = 1

# 5. Another project's token does not see these alerts.
setup_project other || bail "cannot set up project other"
api "$PTOK" GET "/v1/alerts?limit=10"
check "another project's token sees none of them" -- test "$(jget 'alerts.#' "$WORK/body")" = 0

stop_receiver
done_testing
