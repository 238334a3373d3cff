#!/bin/bash
# kiln run as an unprivileged user (nobody): no uid range, no cgroups. The
# command still runs as uid 1000 in its namespaces; what cannot be enforced
# is said ("not applied:" on stderr and in the report), and limits that were
# asked for explicitly are refused (exit 125) rather than silently dropped.
# A few attacks are repeated to show that the isolation that does not depend
# on root still holds. Judged on the host.
. "$KILN_TESTS/attacks/lib.sh"
require_root

id nobody >/dev/null 2>&1 || skip_all "no user 'nobody'"
NOGROUP=$(id -gn nobody)
AS_NOBODY=(setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups)
"${AS_NOBODY[@]}" true 2>/dev/null || skip_all "setpriv cannot switch to nobody"
if ! "${AS_NOBODY[@]}" unshare --user --map-root-user --pid --fork --mount-proc true 2>/dev/null; then
  skip_all "unprivileged user namespaces are not available (sysctl user.max_user_namespaces / kernel.unprivileged_userns_clone / apparmor_restrict_unprivileged_userns)"
fi
"${AS_NOBODY[@]}" test -x "$KILN" || skip_all "the kiln binary ($KILN) is not reachable by nobody"

TAG=$(canary)
R=${TAG#KILNCANARY}
# Everything nobody writes: the report and the --out dirs.
RL=$WORK/rootless
mkdir -p "$RL"
chown nobody:"$NOGROUP" "$RL"
chmod 0755 "$RL"

# rl_run ARGS...: `kiln run ARGS` as nobody; stdout/stderr/report as kiln_run.
rl_run() {
  rm -f "$RL/report.json" "$WORK/report.json"
  "${AS_NOBODY[@]}" "$KILN" run --report "$RL/report.json" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
  RC=$?
  [ -f "$RL/report.json" ] && cp "$RL/report.json" "$WORK/report.json"
  return 0
}

# --- the command runs, as builder, with the warnings -------------------------
rl_run --out "$RL/o1" -- sh -c 'mkdir -p out; id -u > out/uid; id -un > out/user; cat /proc/self/uid_map > out/uid_map; echo ran > out/sanity'
O=$RL/o1
check "rootless: the command ran (rc=$RC)" -- test "$RC" -eq 0 -a -f "$O/sanity"
check "rootless: uid inside is 1000 builder ($(cat "$O/uid" 2>/dev/null) $(cat "$O/user" 2>/dev/null))" -- \
  test "$(cat "$O/uid" 2>/dev/null)" = 1000 -a "$(cat "$O/user" 2>/dev/null)" = builder
check "rootless: only one uid mapped, to nobody ($(tr -s ' ' < "$O/uid_map" 2>/dev/null))" -- \
  test "$(awk '{print $1, $2, $3}' "$O/uid_map" 2>/dev/null)" = "1000 $(id -u nobody) 1"
check "rootless: 'not applied' warnings on stderr" -- grep -q 'not applied: ' "$WORK/err.txt"
check "rootless: stderr names the missing cgroup limits" -- \
  bash -c "grep -q 'not applied: cgroup-memory' '$WORK/err.txt' && grep -q 'not applied: cgroup-pids' '$WORK/err.txt'"
check "rootless: report not_applied lists uid-range, cgroup-memory, cgroup-pids" -- test "$(report_py '(
all(any(x.startswith(p) for x in r["not_applied"]) for p in ("uid-range", "cgroup-memory", "cgroup-pids")))')" = true
check "rootless: report says no cgroup (null)" -- test "$(report_py 'r["cgroup"]')" = null
check "rootless: exported files belong to nobody" -- test "$(stat -c %U "$O/sanity" 2>/dev/null)" = nobody

# --- explicit limits that cannot be enforced: refused -------------------------
for opt in "--memory 1G" "--pids 100" "--cpus 1"; do
  # shellcheck disable=SC2086
  rl_run $opt -- sh -c "echo RAN-$R"
  check "rootless $opt: refused with 125 (rc=$RC)" -- test "$RC" -eq 125
  check "rootless $opt: the message names the missing cgroup" -- \
    bash -c "[ \$(grep -c . '$WORK/err.txt') -eq 1 ] && grep -qi 'cgroup' '$WORK/err.txt'"
  check "rootless $opt: the command never ran" -- bash -c "! grep -q 'RAN-$R' '$WORK/out.txt'"
done

# --- a host process of the same uid cannot be signalled -------------------------
"${AS_NOBODY[@]}" bash -c 'exec -a "$0" sleep 1000' "$TAG-canary" &
CPID=$!
disown "$CPID"
at_exit "kill -9 $CPID 2>/dev/null"
"${AS_NOBODY[@]}" bash -c 'exec -a "$0" sleep 1000' "$TAG-control" &
CTL=$!
disown "$CTL"
at_exit "kill -9 $CTL 2>/dev/null"
sleep 0.2
# Control: outside the sandbox, nobody can kill nobody's process.
"${AS_NOBODY[@]}" kill -9 "$CTL" 2>/dev/null
sleep 0.2
check "control: outside the sandbox, nobody kills its own process" -- bash -c "! kill -0 $CTL 2>/dev/null"
# The brute force and kill -1 run only inside kiln's pid namespace (pid 1 is
# kiln-init): a broken sandbox fails the test instead of killing nobody's
# processes on the host.
read -r -d '' INNER <<'EOF'
C=$1
mkdir -p out && echo ran > out/sanity
[ "$(tr -d "\0" < /proc/1/cmdline 2>/dev/null)" = kiln-init ] || { echo uncontained > out/uncontained; exit 99; }
kill -9 "$C" 2>/dev/null; echo "kill $?" >> out/log
python3 -c '
import os, sys
c = int(sys.argv[1])
try:
    os.kill(c, 9); print("py-kill sent")
except OSError as e:
    print("py-kill", e.errno)
for p in range(max(2, c - 2000), c + 2000):
    if p not in (os.getpid(), os.getppid()):
        try: os.kill(p, 9)
        except OSError: pass' "$C" >> out/log 2>&1
kill -9 -1 2>/dev/null
test -e /proc/$C; echo "proc-exists $?" >> out/log
echo done > out/done
EOF
rl_run --out "$RL/o2" -- bash -c "$INNER" inner "$CPID"
check "rootless kill: sanity, the build ran (rc=$RC)" -- test "$RC" -eq 0 -a -f "$RL/o2/done"
check "rootless kill: the host canary (same uid as kiln) is alive" -- proc_alive "$CPID"
check "rootless kill: kill and os.kill failed with ESRCH" -- \
  bash -c "grep -qx 'kill 1' '$RL/o2/log' && grep -qx 'py-kill 3' '$RL/o2/log' && grep -qx 'proc-exists 1' '$RL/o2/log'"

# --- loopback listener and host files ----------------------------------------------
PORT=$(free_port)
TLOG=$WORK/tcp-canary.log
tcp_canary "$PORT" "$TLOG"
echo "secret $TAG" > "$RL/secret"
chown nobody "$RL/secret"
chmod 0600 "$RL/secret"
read -r -d '' INNER <<'EOF'
PORT=$1 SECRET=$2
mkdir -p out && echo ran > out/sanity
(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; echo "devtcp $?" >> out/log
python3 -c '
import errno, socket, sys
for a in [("127.0.0.1", int(sys.argv[1])), ("169.254.169.254", 80), ("10.0.0.1", 80)]:
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect(a); print("tcp", a[0], "OK")
    except OSError as e:
        print("tcp", a[0], errno.errorcode.get(e.errno))' "$PORT" >> out/log 2>&1
cat "$SECRET" >> out/log 2>&1; echo "cat-secret $?" >> out/log
echo done > out/done
EOF
rl_run --out "$RL/o3" -- bash -c "$INNER" inner "$PORT" "$RL/secret"
sleep 0.3
check "rootless net: sanity, the build ran (rc=$RC)" -- test "$RC" -eq 0 -a -f "$RL/o3/done"
check "rootless net: the host loopback canary recorded nothing" -- test ! -s "$TLOG"
check "rootless net: 127.0.0.1:$PORT refused inside, metadata/private unreachable" -- bash -c \
  "grep -qx 'tcp 127.0.0.1 ECONNREFUSED' '$RL/o3/log' && grep -qx 'tcp 169.254.169.254 ENETUNREACH' '$RL/o3/log' && grep -qx 'tcp 10.0.0.1 ENETUNREACH' '$RL/o3/log' && grep -q '^devtcp [1-9]' '$RL/o3/log'"
check "rootless: a file of the caller's uid on the host is not reachable" -- \
  bash -c "grep -q '^cat-secret [1-9]' '$RL/o3/log' && ! grep -rqF '$TAG' '$RL/o3' '$WORK/out.txt'"

# --- exported modes ----------------------------------------------------------------------
rl_run --out "$RL/o4" -- sh -c 'mkdir -p out; echo x > out/f; chmod 4755 out/f 2>/dev/null; echo "chmod $?" > out/log; mkdir -m 1777 out/sticky; mkfifo out/fifo; echo ran > out/sanity'
check "rootless export: sanity (rc=$RC)" -- test "$RC" -eq 0 -a -f "$RL/o4/sanity"
check "rootless export: chmod u+s failed inside" -- bash -c "! grep -qx 'chmod 0' '$RL/o4/log'"
check "rootless export: no setuid/setgid/sticky bit on the host" -- test -z "$(find "$RL/o4" -perm /7000)"
check "rootless export: the sticky dir arrived as 0777" -- test "$(stat -c %a "$RL/o4/sticky" 2>/dev/null)" = 777
check "rootless export: the fifo was skipped" -- test ! -e "$RL/o4/fifo"

# --- survival and timeout ------------------------------------------------------------------
rl_run -- bash -c 'setsid bash -c "exec -a \"\$0-\$1\" sleep 300" "$0" setsid & nohup bash -c "exec -a \"\$0-\$1\" sleep 300" "$0" nohup >/dev/null 2>&1 & sleep 0.3; ps -eo args=' "$TAG-surv"
check "rootless survival: sanity, the daemons ran inside (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && grep -q '^$TAG-surv-setsid' '$WORK/out.txt' && grep -q '^$TAG-surv-nohup' '$WORK/out.txt'"
check "rootless survival: none is left on the host" -- wait_no_marker "$TAG-surv-" 3
START=$(now_ms)
rl_run --timeout 2 -- sleep infinity
EL=$(($(now_ms) - START))
check "rootless timeout: exit 124 within ~3 s (rc=$RC, $EL ms)" -- test "$RC" -eq 124 -a "$EL" -lt 3500
check "rootless timeout: reason timeout" -- test "$(report_get reason)" = timeout

done_testing
