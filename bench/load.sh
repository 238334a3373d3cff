#!/bin/bash
# Load test for kilnd: N small jobs submitted concurrently through the real
# client to a real kilnd on a free loopback port; reports throughput,
# submit-to-finish latency (p50/p99), the daemon's peak memory, and checks
# that no job was lost. Usage: bench/load.sh BUILD_DIR [JOBS] [PARALLEL]
set -euo pipefail
BUILD=${1:-build}
N=${2:-200}
P=${3:-16}
KILN=$(realpath "$BUILD/kiln")
KILND=$(realpath "$BUILD/kilnd")
WORK=$(mktemp -d /tmp/kiln-load.XXXXXX)
cleanup() { [ -n "${KPID:-}" ] && kill "$KPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$KILND" --data "$WORK/data" --listen 127.0.0.1:0 --workers 2 >"$WORK/kilnd.out" 2>"$WORK/kilnd.err" &
KPID=$!
for _ in $(seq 100); do grep -q '^listening on ' "$WORK/kilnd.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^listening on //p' "$WORK/kilnd.out")
export KILN_SERVER="http://$ADDR" KILN_TOKEN
KILN_TOKEN=$(cat "$WORK/data/admin-token")
"$KILN" project create load >/dev/null
mkdir -p "$WORK/src"
printf 'script: |\n  echo "job $$"; mkdir -p out; date +%%s%%N > out/stamp\ntimeout: 60\nresources: {memory: 256M, pids: 64, disk: 64M}\n' >"$WORK/src/kiln.yml"

echo "load: $N jobs, $P submitters, kilnd with 2 workers at $ADDR"
t0=$(date +%s%N)
seq "$N" | xargs -P "$P" -I{} sh -c '"$0" submit --project load "$1" >/dev/null 2>>"$2/submit.err" || echo fail >>"$2/failed"' "$KILN" "$WORK/src" "$WORK"
t1=$(date +%s%N)
# Wait until every job is final.
for _ in $(seq 600); do
  left=$("$KILN" jobs --project load --limit 500 --json | python3 -c 'import json,sys; print(sum(1 for j in json.load(sys.stdin)["jobs"] if j["state"] in ("queued","running")))')
  [ "$left" -eq 0 ] && break
  sleep 0.5
done
t2=$(date +%s%N)
"$KILN" jobs --project load --limit 500 --json >"$WORK/jobs.json"
HWM=$(awk '/^VmHWM:/{print $2}' "/proc/$KPID/status")
python3 - "$WORK/jobs.json" "$N" "$t0" "$t1" "$t2" "$HWM" "$WORK/failed" <<'PY'
import json, sys, os
from datetime import datetime
jobs = json.load(open(sys.argv[1]))["jobs"]
n, t0, t1, t2, hwm = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
failed = sum(1 for _ in open(sys.argv[7])) if os.path.exists(sys.argv[7]) else 0
ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
lat = sorted(ts(j["finished_at"]) - ts(j["created_at"]) for j in jobs if j.get("finished_at"))
ok = sum(1 for j in jobs if j["state"] == "succeeded")
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print(f"submitted {n} in {(t1-t0)/1e9:.1f} s ({n/((t1-t0)/1e9):.1f} submits/s); failed submits: {failed}")
print(f"all final after {(t2-t0)/1e9:.1f} s: {len(jobs)} jobs recorded, {ok} succeeded -> {ok/((t2-t0)/1e9):.2f} jobs/s")
print(f"submit-to-finish latency: p50 {pct(0.5):.2f} s, p99 {pct(0.99):.2f} s")
print(f"kilnd peak memory (VmHWM): {hwm/1024:.1f} MiB")
lost = n - failed - len(jobs)
print(f"lost jobs: {lost}")
sys.exit(1 if lost or ok != len(jobs) else 0)
PY
