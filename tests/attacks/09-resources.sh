#!/bin/bash
# Class 9, resources: fork bomb, memory bomb, disk filling, CPU burn, output
# flood, never-ending jobs. Each must be stopped (or contained) by its
# limit, in bounded time, with the report naming that limit. Measured from
# the host: process counts, CPU time and tmpfs usage of the sandbox's
# processes as the host's /proc sees them, bytes that reached our stdout.
. "$KILN_TESTS/attacks/lib.sh"
require_root

MARK=$(canary)

# ns_cpu_ticks PID: utime+stime (clock ticks) of every process in PID's pid
# namespace, as the host sees them.
ns_cpu_ticks() {
  python3 - "$1" <<'PY'
import os, sys
try:
    ns = os.readlink("/proc/%s/ns/pid" % sys.argv[1])
except OSError:
    print(0); sys.exit()
t = 0
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        if os.readlink("/proc/%s/ns/pid" % p) != ns:
            continue
        f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
        t += int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        pass
print(t)
PY
}
HZ=$(getconf CLK_TCK)

# --- fork bomb, --pids 64 ---------------------------------------------------
# A fork bomb that would stop by itself at 1111 processes (10 children per
# process, 3 levels) if the limit failed: the host must survive a failure.
read -r -d '' BOMB <<'EOF'
import os, time
end = time.time() + 4
depth = children = 0
while time.time() < end:
    if depth < 3 and children < 10:
        try:
            pid = os.fork()
        except OSError:
            time.sleep(0.01)
            continue
        if pid == 0:
            depth += 1
            children = 0
        else:
            children += 1
    else:
        time.sleep(0.05)
EOF
BASE=$(host_nprocs)
kiln_start --pids 64 --timeout 30 -- python3 -c "$BOMB"
INIT=$(sandbox_init "$KPID")
MAXNS=0; MAXHOST=0; n=0
while proc_alive "$KPID" && [ $n -lt 150 ]; do
  c=$(ns_pids "$INIT" | wc -l); [ "$c" -gt "$MAXNS" ] && MAXNS=$c
  h=$(host_nprocs); [ "$h" -gt "$MAXHOST" ] && MAXHOST=$h
  n=$((n + 1))
done
kiln_finish 20
diag "fork bomb: baseline $BASE host processes, max $MAXHOST on the host, max $MAXNS in the sandbox, $ELAPSED_MS ms"
check "fork bomb: kiln finished in bounded time (rc=$RC, ${ELAPSED_MS} ms)" -- test "$RC" -ne 999 -a "$RC" -ne 125 -a "$ELAPSED_MS" -lt 15000
check "fork bomb: sanity, the bomb did multiply (max $MAXNS >= 32)" -- test "$MAXNS" -ge 32
check "fork bomb: at most 64 processes in the sandbox (max $MAXNS)" -- test "$MAXNS" -le 64
# Generous slack: other jobs on the host come and go meanwhile; a failed
# limit would show the 1111 processes of the self-limiting bomb.
check "fork bomb: host process count bounded (max $MAXHOST <= $BASE + 64 + 200)" -- test "$MAXHOST" -le $((BASE + 264))
check "fork bomb: reason is pids ($(report_get reason))" -- test "$(report_get reason)" = pids
check "fork bomb: nothing of the sandbox is left" -- test -z "$(ns_pids "$INIT" 2>/dev/null)"

# --- memory bomb, --memory 128M --------------------------------------------
# Touches 1 GiB, a little slowly so that the host can watch it grow.
read -r -d '' MEMB <<'EOF'
import time
chunks = []
for i in range(1024):
    chunks.append(bytearray(b"\x01") * (1 << 20))
    if i % 8 == 0:
        time.sleep(0.02)
print("survived 1 GiB", flush=True)
EOF
kiln_start --memory 128M --timeout 30 -- python3 -c "$MEMB"
INIT=$(sandbox_init "$KPID")
# The limits as the host's cgroup filesystem has them, for the run's cgroup.
# The supervisor moves init into the run's cgroup while init builds the
# filesystem (and before anything of the build runs): wait for that.
for _ in $(seq 100); do
  MEMCG=$(awk -F: '$2 == "memory" {print $3}' "/proc/$INIT/cgroup" 2>/dev/null)
  case "$MEMCG" in */kiln-*) break ;; esac
  sleep 0.05
done
MEMDIR=/sys/fs/cgroup/memory$MEMCG
LIM=$(cat "$MEMDIR/memory.limit_in_bytes" 2>/dev/null)
MEMSW=$(cat "$MEMDIR/memory.memsw.limit_in_bytes" 2>/dev/null)
MAXRSS=0; SAMPLES=0; n=0
while proc_alive "$KPID" && [ $n -lt 200 ]; do
  r=$(for p in $(ns_pids "$INIT"); do awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null; done | awk '{s+=$1} END {print s+0}')
  [ "$r" -gt 0 ] && SAMPLES=$((SAMPLES + 1))
  [ "$r" -gt "$MAXRSS" ] && MAXRSS=$r
  n=$((n + 1))
done
kiln_finish 30
PEAK=$(report_get peak_memory_bytes)
diag "memory bomb: rc=$RC, ${ELAPSED_MS} ms, peak $PEAK bytes, host-sampled max RSS ${MAXRSS} KiB ($SAMPLES samples), cgroup ${MEMCG:-?} limit ${LIM:-?} memsw ${MEMSW:-?}"
check "memory bomb: never survived 1 GiB" -- bash -c "! grep -q survived '$WORK/out.txt'"
check "memory bomb: killed, exit 137 (rc=$RC)" -- test "$RC" -eq 137
check "memory bomb: reason is memory ($(report_get reason))" -- test "$(report_get reason)" = memory
check "memory bomb: stopped in bounded time (${ELAPSED_MS} ms)" -- test "$ELAPSED_MS" -lt 20000
if [ -d /sys/fs/cgroup/memory ] && [ "$(report_get cgroup)" = v1 ]; then
  check "memory bomb: host cgroup limit is 128M (${LIM:-none})" -- test "${LIM:-0}" -eq $((128 << 20))
  check "memory bomb: host cgroup memory+swap limit is 128M (${MEMSW:-none})" -- test "${MEMSW:-0}" -eq $((128 << 20))
fi
check "memory bomb: peak_memory_bytes <= 128M + 8M ($PEAK)" -- test -n "$PEAK" -a "${PEAK:-0}" -le $(((128 + 8) << 20))
check "memory bomb: sanity, peak_memory_bytes >= 64M ($PEAK)" -- test "${PEAK:-0}" -ge $((64 << 20))
check "memory bomb: host-sampled RSS <= 144 MiB (${MAXRSS} KiB, $SAMPLES samples; shared library pages count in RSS)" -- test "$SAMPLES" -ge 1 -a "$MAXRSS" -le $((144 * 1024))

# --- disk filling: workspace, /tmp, $HOME, /dev/shm, --disk 64M ------------
read -r -d '' FILL <<'EOF'
for f in /workspace/fill /tmp/fill "$HOME/fill" /dev/shm/fill; do
  dd if=/dev/zero of="$f" bs=1M count=1024 status=none 2>/dev/null
  echo "dd $f $?"
done
# Many small files, too (inodes).
mkdir -p /tmp/many && (for i in $(seq 1 3000); do echo x > /tmp/many/$i || break; done) 2>/dev/null
echo "filled $(df -B1 --output=used /workspace | tail -1)"
echo filled > /dev/shm/filled-marker
sleep 2
exit 1
EOF
AVAIL0=$(df -B1 --output=avail / | tail -1)
kiln_start --disk 64M --memory 512M --timeout 30 -- bash -c "$FILL"
INIT=$(sandbox_init "$KPID")
# Wait for the fill to be done, then measure the sandbox's tmpfs from the host.
n=0; B=""
while proc_alive "$KPID" && [ $n -lt 200 ]; do
  B=$(ns_pids "$INIT" | grep -vx "$INIT" | head -1)
  [ -n "$B" ] && grep -q '^filled' "$WORK/out.txt" 2>/dev/null && break
  sleep 0.05; n=$((n + 1))
done
# statfs through the build's root (df skips mounts the host does not list).
fs_used() { stat -f -c '%b %f %S' "$1" 2>/dev/null | awk '{print ($1 - $2) * $3}'; }
USED=$(fs_used "/proc/$B/root/workspace")
FSTYPE=$(stat -f -c %T "/proc/$B/root/workspace" 2>/dev/null)
FSSIZE=$(stat -f -c '%b %S' "/proc/$B/root/workspace" 2>/dev/null | awk '{print $1 * $2}')
SHM=$(fs_used "/proc/$B/root/dev/shm")
kiln_finish 30
AVAIL1=$(df -B1 --output=avail / | tail -1)
diag "disk: rc=$RC, workspace tmpfs used ${USED:-?} bytes, /dev/shm ${SHM:-?}, host / avail $AVAIL0 -> $AVAIL1"
diag "$(tr '\n' ';' < "$WORK/out.txt")"
check "disk: sanity, the fill ran" -- grep -q '^filled' "$WORK/out.txt"
check "disk: workspace+/tmp+HOME used <= 64M, measured from the host (${USED:-none})" -- \
  test -n "$USED" -a "${USED:-0}" -le $((64 << 20)) -a "${USED:-0}" -ge $((32 << 20))
check "disk: /dev/shm used <= 64M (${SHM:-none})" -- test -n "$SHM" -a "${SHM:-0}" -le $((64 << 20))
check "disk: every dd failed" -- bash -c "[ \$(grep -c '^dd .* [1-9][0-9]*\$' '$WORK/out.txt') -eq 4 ]"
check "disk: reason is disk ($(report_get reason))" -- test "$(report_get reason)" = disk
check "disk: kiln returned the build's failure (rc=$RC)" -- test "$RC" -eq 1
check "disk: the workspace is a tmpfs of 64M, seen from the host (${FSTYPE:-?}, ${FSSIZE:-?} bytes)" -- \
  test "$FSTYPE" = tmpfs -a "${FSSIZE:-0}" -eq $((64 << 20))
# 4 GiB were attempted; other jobs on the host write meanwhile, hence 1 GiB.
check "disk: host free space on / did not drop by more than 1G" -- test $((AVAIL0 - AVAIL1)) -lt $((1 << 30))

# --- CPU burn, --cpus 0.5 --timeout 3 --------------------------------------
kiln_start --cpus 0.5 --timeout 3 -- bash -c 'while :; do :; done & while :; do :; done'
INIT=$(sandbox_init "$KPID")
# Sample well before the 3 s timeout: the CPU time of killed processes is
# gone from /proc afterwards.
sleep 1.8
TICKS=$(ns_cpu_ticks "$INIT")
TE=$(now_ms)
TS=$T0
kiln_finish 15
HOSTCPU=$((TICKS * 1000 / HZ))
SPAN=$((TE - TS))
UCPU=$(report_get user_cpu_ms); SCPU=$(report_get system_cpu_ms); WALL=$(report_get wall_time_ms)
RCPU=$(( ${UCPU:-0} + ${SCPU:-0} ))
diag "cpu: host-measured ${HOSTCPU} ms CPU in the sandbox over ~${SPAN} ms; report: user $UCPU + system $SCPU of wall $WALL ms"
check "cpu: timeout, exit 124 (rc=$RC)" -- test "$RC" -eq 124
check "cpu: reason is timeout ($(report_get reason))" -- test "$(report_get reason)" = timeout
check "cpu: ended in bounded time (${ELAPSED_MS} ms)" -- test "$ELAPSED_MS" -lt 6000
check "cpu: sanity, the burn used CPU (${HOSTCPU} ms)" -- test "$HOSTCPU" -ge $((SPAN / 5))
check "cpu: host-measured CPU <= 0.75 x elapsed (${HOSTCPU} <= $((SPAN * 3 / 4)))" -- test "$HOSTCPU" -le $((SPAN * 3 / 4))
check "cpu: report's user+system <= 0.75 x wall ($RCPU <= $(( ${WALL:-0} * 3 / 4 )))" -- test -n "$WALL" -a "$RCPU" -le $(( ${WALL:-0} * 3 / 4 ))
# The report must not under-state what the build consumed (THREATS 13:
# records that lie): it must account for at least half of what the host saw.
check "cpu: report's user+system accounts for the CPU actually used ($RCPU ms vs host-measured $HOSTCPU ms)" -- \
  test "$RCPU" -ge $((HOSTCPU / 2))

# --- output flood -------------------------------------------------------------
for how in stdout stderr both; do
  case $how in
    # Each flood stops by itself at 64M, should the limit fail.
    stdout) cmd='yes | head -c 64M' ;;
    stderr) cmd='yes | head -c 64M >&2' ;;
    both) cmd='yes AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA | head -c 32M & yes BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB | head -c 32M >&2 & wait' ;;
  esac
  kiln_start --output-limit 1M --timeout 30 -- bash -c "$cmd"
  kiln_finish 20
  # kiln's own messages on stderr are a few lines: allow 4 KiB for them.
  GOT=$(( $(stat -c %s "$WORK/out.txt") + $(stat -c %s "$WORK/err.txt") ))
  check "output flood ($how): at most 1M + 4K reached the caller ($GOT bytes)" -- test "$GOT" -le $(((1 << 20) + 4096))
  check "output flood ($how): sanity, close to 1M did ($GOT bytes)" -- test "$GOT" -ge $((1 << 19))
  check "output flood ($how): killed, exit 137 (rc=$RC), in bounded time (${ELAPSED_MS} ms)" -- test "$RC" -eq 137 -a "$ELAPSED_MS" -lt 10000
  check "output flood ($how): reason output-limit ($(report_get reason)), output_bytes <= 1M" -- \
    test "$(report_get reason)" = output-limit -a "$(report_get output_bytes)" -le $((1 << 20))
done

# --- never-ending job ----------------------------------------------------------
kiln_start --timeout 2 -- sleep infinity
kiln_finish 15
check "sleep infinity, --timeout 2: exit 124 within ~3 s (rc=$RC, ${ELAPSED_MS} ms)" -- test "$RC" -eq 124 -a "$ELAPSED_MS" -lt 3500
check "sleep infinity: reason timeout" -- test "$(report_get reason)" = timeout

# --- a job that ignores SIGTERM and forks children ------------------------------
read -r -d '' STUBBORN <<'EOF'
M=$1
trap '' TERM INT HUP QUIT USR1 USR2
for i in 1 2 3 4; do
  bash -c 'trap "" TERM INT HUP; exec -a "$0-$1" sleep 1000' "$M" "child$i" &
done
setsid bash -c 'trap "" TERM INT HUP; while :; do sleep 0.2; done' &
while :; do sleep 0.2; done
EOF
kiln_start --timeout 3 -- bash -c "$STUBBORN" inner "$MARK"
n=0; NCH=0
while [ "$NCH" -lt 4 ] && [ $n -lt 25 ] && proc_alive "$KPID"; do
  sleep 0.1; n=$((n + 1))
  NCH=$(marker_pids "$MARK-child" | wc -l)
done
kiln_finish 15
check "stubborn job: its children were running ($NCH)" -- test "$NCH" -eq 4
check "stubborn job: ended by the timeout (rc=$RC, ${ELAPSED_MS} ms)" -- test "$RC" -eq 124 -a "$ELAPSED_MS" -lt 5000
check "stubborn job: reason timeout" -- test "$(report_get reason)" = timeout
check "stubborn job: no child left 3 s later" -- wait_no_marker "$MARK-child" 3

done_testing
