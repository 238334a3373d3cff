#!/bin/bash
# contrib/kilnd.service: systemd's own parser accepts every line (no
# "ignoring" warnings), the hardening it documents is really there, and its
# ExecStart command line is one kilnd accepts and comes up with.
. "$KILN_TESTS/e2e/lib.sh"

UNIT=$KILN_TESTS/../contrib/kilnd.service
[ -f "$UNIT" ] || bail "no $UNIT"
command -v systemd-analyze >/dev/null || bail "systemd-analyze (package systemd) is needed"

# The unit as installed, with ExecStart pointing at this build.
mkdir -p "$WORK/unit"
sed "s|/usr/local/bin/kilnd|$KILND|" "$UNIT" >"$WORK/unit/kilnd.service"
systemd-analyze verify "$WORK/unit/kilnd.service" >"$WORK/out" 2>&1
RC=$?
check "systemd-analyze verify accepts the unit, without warnings (rc=$RC)" -- \
  test "$RC" -eq 0 -a ! -s "$WORK/out"
diag_file "$WORK/out"
# The check above can fail: a broken option is reported.
sed 's/^ProtectSystem=strict/ProtectSystem=stricter/' "$WORK/unit/kilnd.service" >"$WORK/unit/bad.service"
systemd-analyze verify "$WORK/unit/bad.service" >"$WORK/out" 2>&1
check "... and would report a broken option" -- grep -q 'ProtectSystem\|protect system' "$WORK/out"

for opt in 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'UMask=0077' \
  'StateDirectoryMode=0700' 'LockPersonality=yes' 'RestrictSUIDSGID=yes' \
  'Delegate=yes' 'SystemCallArchitectures=native' 'LimitCORE=0'; do
  check "the unit sets $opt" -- grep -qx "$opt" "$UNIT"
done
CAPS=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT")
check "the bounding set drops CAP_SYS_MODULE, CAP_NET_ADMIN, CAP_SYS_PTRACE, CAP_SYS_RAWIO" -- \
  bash -c "! printf '%s' '$CAPS' | grep -q 'SYS_MODULE\|NET_ADMIN\|SYS_PTRACE\|SYS_RAWIO'"

# Its ExecStart, with the data directory and port swapped for the test's.
ARGS=$(sed -n 's/^ExecStart=[^ ]* //p' "$UNIT")
ARGS=${ARGS//\/var\/lib\/kiln/$WORK/data}
ARGS=${ARGS//127.0.0.1:8420/127.0.0.1:0}
# shellcheck disable=SC2086 # word splitting of the unit's arguments is the point
"$KILND" $ARGS >"$WORK/kilnd.out" 2>"$WORK/kilnd.err" </dev/null &
PID=$!
for i in $(seq 1 100); do
  grep -q 'listening on' "$WORK/kilnd.out" && break
  sleep 0.05
done
check "kilnd comes up with the unit's ExecStart arguments" -- grep -q 'listening on' "$WORK/kilnd.out"
kill -TERM "$PID" 2>/dev/null
wait "$PID"
RC=$?
check "... and stops cleanly on SIGTERM, as KillMode=mixed sends it (rc=$RC)" -- test "$RC" -eq 0

done_testing
