#!/bin/bash
# Time to detect: from a denied syscall inside the sandbox to the signed
# alert webhook arriving at a local receiver. Each run uses a new project,
# so its first denied syscall is new to the baseline and alerts. The build
# prints the time (CLOCK_REALTIME, shared with the host) right before it
# calls unshare(2), which seccomp denies; the receiver records when the
# webhook arrived and checks its HMAC. Reports p50/p90/max over N runs.
#
# kilnd learns of denied syscalls from the sandbox report, at the end of
# the job: here the job ends right after the violation, so this measures
# report -> record -> baseline check -> webhook; a build that keeps running
# after its violation is detected when it ends (docs/alerts.md).
#
# Usage: bench/detect.sh [BUILD_DIR] [RUNS]
set -euo pipefail
BUILD=${1:-build}
N=${2:-10}
KILN=$(realpath "$BUILD/kiln")
KILND=$(realpath "$BUILD/kilnd")
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/kiln-detect.XXXXXX)
KPID='' RPID=''
cleanup() {
  [ -n "$KPID" ] && kill "$KPID" 2>/dev/null
  [ -n "$RPID" ] && kill "$RPID" 2>/dev/null
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/key"
chmod 600 "$WORK/key"
/usr/bin/python3 "$HERE/tests/e2e/webhook_receiver.py" "$WORK/key" "$WORK/port" "$WORK/hooks.jsonl" &
RPID=$!
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
printf 'alerts:\n  webhook: http://127.0.0.1:%s/hook\n  secret_file: %s\n' \
  "$(cat "$WORK/port")" "$WORK/key" >"$WORK/kilnd.yml"
"$KILND" --data "$WORK/data" --listen 127.0.0.1:0 --workers 2 --config "$WORK/kilnd.yml" \
  >"$WORK/kilnd.out" 2>"$WORK/kilnd.err" &
KPID=$!
for _ in $(seq 100); do grep -q '^listening on ' "$WORK/kilnd.out" 2>/dev/null && break; sleep 0.1; done
KILN_SERVER="http://$(sed -n 's/^listening on //p' "$WORK/kilnd.out")"
KILN_TOKEN=$(cat "$WORK/data/admin-token")
export KILN_SERVER KILN_TOKEN
mkdir -p "$WORK/src"
printf 'script: |\n  echo "T0 $(date +%%s.%%N)"\n  unshare -r true || true\n' >"$WORK/src/kiln.yml"

echo "detect: $N runs, kilnd at $KILN_SERVER, webhook receiver on port $(cat "$WORK/port")"
: >"$WORK/samples"
for i in $(seq "$N"); do
  "$KILN" project create "detect-$i" >/dev/null
  job=$("$KILN" submit --project "detect-$i" "$WORK/src" | head -1)
  for _ in $(seq 300); do
    grep -q "\"job\": $job," "$WORK/hooks.jsonl" 2>/dev/null && break
    sleep 0.02
  done
  t0=$("$KILN" logs "$job" 2>/dev/null | grep -o 'T0 [0-9.]*' | head -1 | cut -d' ' -f2)
  arrived=$(grep "\"job\": $job," "$WORK/hooks.jsonl" | head -1 |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["arrived"] if d["valid"] else "")')
  if [ -z "$t0" ] || [ -z "$arrived" ]; then
    echo "run $i (job $job): no timestamp or no valid webhook" >&2
    exit 1
  fi
  /usr/bin/python3 -c "print(f'{($arrived - $t0) * 1000:.1f}')" >>"$WORK/samples"
done
/usr/bin/python3 - "$WORK/samples" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]))
pct = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print(f"time to detect (denied syscall -> webhook received), {len(v)} runs: "
      f"p50 {pct(0.5):.1f} ms, p90 {pct(0.9):.1f} ms, max {v[-1]:.1f} ms")
PY
