#!/bin/bash
# Class 7, processes: seeing or signalling host processes or other jobs;
# surviving the job by setsid, double fork or nohup. Judged on the host:
# the canary processes are alive, no process carrying the job's marker
# exists after kiln returned, kiln returned promptly.
. "$KILN_TESTS/attacks/lib.sh"
require_root

MARK=$(canary)

# A host canary process, with a marker in its command line.
bash -c 'exec -a "$0" sleep 1000' "$MARK-host" &
CPID=$!
disown "$CPID"
at_exit "kill -9 $CPID 2>/dev/null"
sleep 0.2
check "host canary is running (pid $CPID)" -- proc_alive "$CPID"

# The indiscriminate attacks (kill -1, brute force over pids) run only when
# the build is really in kiln's pid namespace (pid 1 is kiln-init) and not
# host root: a broken sandbox must fail this test, not kill the machine.
CONTAINED='[ "$(tr -d "\0" < /proc/1/cmdline 2>/dev/null)" = kiln-init ] && [ "$(id -u)" != 0 ]'

# --- 1. see and signal the host canary -------------------------------------
read -r -d '' INNER <<'EOF'
C=$1 CONTAINED=$2
mkdir -p out && echo ran > out/sanity
eval "$CONTAINED" || { echo uncontained > out/uncontained; exit 99; }
ls /proc > out/proc-ls
ps -eo pid=,args= > out/ps 2>&1
test -e /proc/$C; echo $? > out/proc-exists
kill -9 "$C" 2>/dev/null; echo $? > out/kill-rc
kill -STOP "$C" 2>/dev/null; echo $? > out/stop-rc
python3 - "$C" > out/py.txt 2>&1 <<'PY'
import os, signal, sys
c = int(sys.argv[1])
try:
    os.kill(c, signal.SIGKILL); print("py-kill: sent")
except OSError as e:
    print("py-kill:", e.errno)
try:
    fd = os.pidfd_open(c); print("pidfd: opened"); signal.pidfd_send_signal(fd, signal.SIGKILL)
except OSError as e:
    print("pidfd:", e.errno)
# Brute force: every pid around the canary's, and the whole low range.
hits = []
for p in list(range(2, 400)) + list(range(max(400, c - 3000), c + 3000)):
    if p in (os.getpid(), os.getppid()):
        continue
    try:
        os.kill(p, signal.SIGKILL)
        hits.append(p)
    except OSError:
        pass
print("brute-hits:", hits)
PY
# Everything this process may signal.
kill -9 -1 2>/dev/null
echo done > out/done
EOF
kiln_run --out "$WORK/o1" -- bash -c "$INNER" inner "$CPID" "$CONTAINED"
O=$WORK/o1
check "the build is in kiln's pid namespace (else the attacks were not run)" -- test ! -e "$O/uncontained"
check "sanity: the build ran and exported (rc=$RC)" -- test "$RC" -eq 0 -a -f "$O/sanity" -a -f "$O/done"
check "host canary survived kill -9, SIGSTOP, os.kill, pidfd and brute force" -- proc_alive "$CPID"
check "host canary is not stopped" -- bash -c "! grep -q '^State:.*T' /proc/$CPID/status"
check "canary pid $CPID is not in the sandbox's /proc" -- bash -c "! grep -qx '$CPID' '$O/proc-ls' && [ \"\$(cat '$O/proc-exists')\" != 0 ]"
check "the host canary's marker is not in the sandbox's ps" -- bash -c "[ -s '$O/ps' ] && ! grep -qF '$MARK' '$O/ps'"
n=$(grep -c '^[0-9][0-9]*$' "$O/proc-ls" 2>/dev/null || echo 999)
check "sandbox /proc lists only a handful of processes ($n)" -- test "$n" -ge 1 -a "$n" -le 10
check "pid 1 inside is kiln's init, not the host's" -- bash -c "grep -Eq '^ *1 kiln-init' '$O/ps' && ! grep -Eq '^ *1 .*(systemd|/sbin/init)' '$O/ps'"
check "kill -9 of the canary failed inside" -- bash -c "[ \"\$(cat '$O/kill-rc')\" != 0 ] && [ \"\$(cat '$O/stop-rc')\" != 0 ]"
check "os.kill of the canary: ESRCH (3)" -- grep -qx 'py-kill: 3' "$O/py.txt"
check "pidfd_open of the canary: ESRCH (3)" -- grep -qx 'pidfd: 3' "$O/py.txt"
diag "$(grep brute "$O/py.txt" 2>/dev/null)"

# --- 2. other jobs: job B tries to kill job A ------------------------------
# The marker is assembled inside, so kiln's own command line does not carry it.
kiln_start --timeout 30 -- bash -c 'exec -a "$0-$1" sleep 5' "$MARK" jobA
JOBA=$KPID
JOBA_T0=$T0
sleep 0.5
check "job A runs, its process is visible on the host" -- test -n "$(marker_pids "$MARK-jobA")"
A_PIDS=$(marker_pids "$MARK-jobA" | tr '\n' ' ')
read -r -d '' INNER <<'EOF'
CONTAINED=$1; shift
mkdir -p out && echo ran > out/sanity
eval "$CONTAINED" || { echo uncontained > out/uncontained; exit 99; }
ls /proc > out/proc-ls
for p in $*; do kill -9 "$p" 2>/dev/null && echo "killed $p" >> out/killed; done
python3 -c '
import os
for p in range(2, 65536):
    if p not in (os.getpid(), os.getppid()):
        try: os.kill(p, 9)
        except OSError: pass
'
kill -9 -1 2>/dev/null
echo done > out/done
EOF
"$KILN" run --out "$WORK/o2" -- bash -c "$INNER" inner "$CONTAINED" $A_PIDS >"$WORK/outB.txt" 2>&1 </dev/null
RCB=$?
check "sanity: job B ran (rc=$RCB)" -- test "$RCB" -eq 0 -a -f "$WORK/o2/done"
check "job B could not signal job A's processes ($A_PIDS)" -- test ! -s "$WORK/o2/killed"
check "job A's process is still alive after job B" -- test -n "$(marker_pids "$MARK-jobA")"
KPID=$JOBA
T0=$JOBA_T0
kiln_finish 15
check "job A completed normally (rc=$RC, not killed by job B)" -- test "$RC" -eq 0
check "job A's sandbox pids are not in job B's /proc" -- bash -c "for p in $A_PIDS; do ! grep -qx \"\$p\" '$WORK/o2/proc-ls' || exit 1; done"

# --- 3. survive the job: setsid, nohup, double fork, then exit -------------
read -r -d '' INNER <<'EOF'
M=$1
setsid bash -c 'exec -a "$0" sleep 300' "$M-setsid" &
nohup bash -c 'exec -a "$0" sleep 300' "$M-nohup" >/dev/null 2>&1 &
python3 - "$M" <<'PY'
import os, sys
m = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", [m + "-dfork", "300"])
    os._exit(0)
os.wait()
PY
# A daemon that closed every fd, and one that keeps stdout open.
setsid bash -c 'exec -a "$0" sleep 300' "$M-closed" </dev/null >/dev/null 2>&1 &
sleep 0.5
mkdir -p out && ps -eo args= > out/ps
exit 0
EOF
SURV=$MARK-surv
kiln_start --out "$WORK/o3" -- bash -c "$INNER" inner "$SURV"
kiln_finish 20
check "survival: kiln returned rc 0 promptly (${ELAPSED_MS} ms < 5000)" -- test "$RC" -eq 0 -a "$ELAPSED_MS" -lt 5000
for k in setsid nohup dfork closed; do
  check "survival: the $k process had started inside" -- grep -q "^$SURV-$k" "$WORK/o3/ps"
done
check "survival: no process carrying the marker exists 3 s later" -- wait_no_marker "$SURV" 3
diag "left over: $(marker_pids "$SURV" | tr '\n' ' ')"

# --- 4. the same, when the job is killed by its timeout --------------------
read -r -d '' INNER <<'EOF'
M=$1
setsid bash -c 'trap "" TERM HUP INT; exec -a "$0" sleep 300' "$M-setsid" &
nohup bash -c 'exec -a "$0" sleep 300' "$M-nohup" >/dev/null 2>&1 &
python3 -c '
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", [sys.argv[1] + "-dfork", "300"])
    os._exit(0)
os.wait()' "$M"
exec -a "$M-main" sleep 300
EOF
SURV2=$MARK-tmo
kiln_start --timeout 2 -- bash -c "$INNER" inner "$SURV2"
sleep 1
n=$(marker_pids "$SURV2-" | wc -l)
check "timeout: the job's processes were running ($n)" -- test "$n" -ge 4
kiln_finish 15
check "timeout: kiln returned 124 in bounded time (${ELAPSED_MS} ms)" -- test "$RC" -eq 124 -a "$ELAPSED_MS" -lt 6000
check "timeout: no process carrying the marker exists 3 s later" -- wait_no_marker "$SURV2" 3

check "host canary still alive at the end" -- proc_alive "$CPID"
done_testing
