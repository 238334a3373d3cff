#!/bin/bash
# kill -9 of kilnd while jobs run, then a restart on the same data
# directory: the running job is interrupted (a retry-safe one is requeued
# and rerun), no sandbox process of it survives, every acknowledged job is
# still there, the database is intact and the CAS holds no half-written
# blob.
. "$KILN_TESTS/e2e/lib.sh"

kilnd_start --workers 2
setup_project crash || bail "cannot set up a project"
TOKEN_crash=$PTOK
TOK=$TOKEN_crash
ACKED=()

# Some finished jobs first.
for i in 1 2; do
  mksrc "$WORK/quick$i" "echo quick-$i-$R; mkdir -p out; echo $i > out/f$i" "artifacts: [out/]"
  submit "$TOK" crash "$WORK/quick$i"
  [ "$RC" -eq 0 ] && ACKED+=("$JOB")
done
for j in "${ACKED[@]}"; do wait_final "$TOK" "$j" 120 >/dev/null; done

MARK=kiln-e2e-crash-$R
MARK2=kiln-e2e-retry-$R
mksrc "$WORK/long" "cp /bin/sleep ./$MARK
./$MARK 30" "timeout: 5m"
mksrc "$WORK/retry" "echo attempt-$R
cp /bin/sleep ./$MARK2
./$MARK2 6
echo retried-ok-$R" "retry: true" "timeout: 5m"
submit "$TOK" crash "$WORK/long"
LONG=$JOB
[ "$RC" -eq 0 ] && ACKED+=("$JOB")
submit "$TOK" crash "$WORK/retry"
RETRY=$JOB
[ "$RC" -eq 0 ] && ACKED+=("$JOB")
# A queued one too, acknowledged but not started (2 workers are busy).
mksrc "$WORK/queued" "echo queued-$R"
submit "$TOK" crash "$WORK/queued"
QUEUED=$JOB
[ "$RC" -eq 0 ] && ACKED+=("$JOB")
diag "acknowledged jobs: ${ACKED[*]}"

wait_state "$TOK" "$LONG" running 60
wait_state "$TOK" "$RETRY" running 60
for i in $(seq 1 40); do pgrep -f -- "$MARK" >/dev/null && pgrep -f -- "$MARK2" >/dev/null && break; sleep 0.25; done
check "both jobs run before the crash" -- \
  bash -c "[ '$(job_get "$TOK" "$LONG" state)' = running ] && pgrep -f -- '$MARK' >/dev/null"

kilnd_kill9
check "kilnd is gone after kill -9" -- bash -c "! curl -s --max-time 2 '$KILN_SERVER/v1/health' >/dev/null"

kilnd_start --workers 2
check "kilnd restarts on the same data directory" -- healthy
S=$(wait_final "$TOK" "$LONG" 30)
check "the running job is interrupted ($S)" -- test "$S" = interrupted
check "no sandbox process of it survives" -- no_process "$MARK" 10
S=$(wait_final "$TOK" "$RETRY" 120)
check "the retry: true job was requeued and rerun to the end ($S)" -- test "$S" = succeeded
api "$TOK" GET "/v1/jobs/$RETRY/log"
check "its log shows the rerun" -- grep -q "retried-ok-$R" "$WORK/body"
check "no sandbox process of its first attempt survives" -- no_process "$MARK2" 10
S=$(wait_final "$TOK" "$QUEUED" 120)
check "the queued job ran after the restart ($S)" -- test "$S" = succeeded
MISSING=
for j in "${ACKED[@]}"; do
  api "$TOK" GET "/v1/jobs/$j"
  [ "$HTTP" = 200 ] && [ "$(jget id "$WORK/body")" = "$j" ] || MISSING="$MISSING $j"
done
check "every acknowledged job id is present (${#ACKED[@]} jobs; missing:${MISSING:- none})" -- \
  test -z "$MISSING" -a "${#ACKED[@]}" -eq 5
k "$TOK" fetch "${ACKED[0]}" -o "$WORK/fetched"
F=$(find "$WORK/fetched" -type f -name f1 2>/dev/null | head -1)
check "an artifact from before the crash is still fetched and verified (rc=$RC)" -- \
  test "$RC" -eq 0 -a -n "$F" -a "$(cat "$F" 2>/dev/null)" = 1

kilnd_stop
IC=$(sqlite3 "$DATA/kiln.db" 'PRAGMA integrity_check' 2>&1)
check "sqlite3 PRAGMA integrity_check says ok ($IC)" -- test "$IC" = ok

# Every blob is named after its content; nothing half-written is left.
bad_blobs() {
  local f name
  find "$DATA/cas" -type f 2>/dev/null | while read -r f; do
    case "${f#"$DATA/cas/"}" in
      sha256/*/*) ;;
      *) echo "not a committed blob: $f"; continue ;;
    esac
    name=$(basename "$(dirname "$f")")$(basename "$f")
    [ "$name" = "$(sha256sum "$f" | cut -d' ' -f1)" ] || echo "mismatch: $f"
  done
}
BAD=$(bad_blobs)
NBLOBS=$(find "$DATA/cas" -type f | wc -l)
check "every blob in cas/ is named by its sha256, no half-written blob ($NBLOBS files)" -- test -z "$BAD"
[ -n "$BAD" ] && diag "$BAD"
check "the CAS is not empty (the test looked at something)" -- test "$NBLOBS" -gt 0
done_testing
