# shellcheck shell=bash
# Shared helpers for the attack tests: TAP output, running `kiln run`,
# host-side checks. Every attack is judged from the host side.
#
# Environment (set by meson): KILN (the kiln binary), KILN_ATTACK (the
# attack helper binary), KILN_TESTS (tests/ source dir).
set -u

: "${KILN:?KILN must point at the kiln binary}"
T_N=0
T_FAILED=0
WORK=$(mktemp -d /tmp/kiln-attack.XXXXXX)
chmod 0755 "$WORK"
trap 't_cleanup' EXIT

t_cleanup() {
  # Exported trees may hold read-only dirs.
  chmod -R u+rwX "$WORK" 2>/dev/null
  rm -rf "$WORK"
}

ok() {   # ok COND-EXIT-STATUS DESCRIPTION
  local st=$1; shift
  T_N=$((T_N + 1))
  if [ "$st" -eq 0 ]; then
    echo "ok $T_N - $*"
  else
    echo "not ok $T_N - $*"
    T_FAILED=$((T_FAILED + 1))
  fi
}

check() {  # check DESCRIPTION -- COMMAND...: ok if COMMAND succeeds
  local desc=$1; shift
  [ "$1" = "--" ] && shift
  if "$@"; then ok 0 "$desc"; else ok 1 "$desc"; fi
}

diag() { printf '# %s\n' "$@" | sed 's/^# \(.*\)$/# \1/'; }

done_testing() {
  echo "1..$T_N"
  [ "$T_FAILED" -eq 0 ]
  exit $?
}

# A test that cannot run: skip with a reason, except on CI where nothing
# security-related may be skipped.
skip_all() {
  if [ "${CI:-}" = "true" ]; then
    echo "not ok 1 - cannot run on CI: $*"
    echo "1..1"
    exit 1
  fi
  echo "1..0 # SKIP $*"
  exit 0   # meson's TAP protocol reads the plan; non-zero would be an ERROR
}

require_root() {
  [ "$(id -u)" -eq 0 ] || skip_all "needs root"
}

# kiln_run ARGS... : runs `kiln run` with stdout in $WORK/out.txt, stderr in
# $WORK/err.txt, the report in $WORK/report.json; sets RC.
kiln_run() {
  rm -f "$WORK/report.json"
  "$KILN" run --report "$WORK/report.json" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
  RC=$?
  return 0
}

# report_get KEY: a top-level value of the last report (jq-free: python3).
report_get() {
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list)) else ("" if v is None else v))' \
    "$WORK/report.json" "$1" 2>/dev/null
}

# denied_count NAME: how many times the supervisor saw syscall NAME denied.
denied_count() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["denied_syscalls"].get(sys.argv[2],0))' \
    "$WORK/report.json" "$1" 2>/dev/null || echo 0
}

# A random canary string that must never appear where it should not.
canary() { echo "KILNCANARY$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }

# not_in_outputs STRING [DIR...]: STRING is absent from stdout, stderr, the
# report and every file under the given dirs.
not_in_outputs() {
  local s=$1; shift
  ! grep -rqaF -- "$s" "$WORK/out.txt" "$WORK/err.txt" "$@" 2>/dev/null
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Copy the attack helper into a fresh source dir so the sandbox can run it
# as /workspace/attack.
new_src() {
  local d
  d=$(mktemp -d "$WORK/src.XXXXXX")
  chmod 0755 "$d"
  if [ -n "${KILN_ATTACK:-}" ] && [ -x "$KILN_ATTACK" ]; then
    cp "$KILN_ATTACK" "$d/attack"
  fi
  echo "$d"
}

# ---- Helpers for the process, network, resource and lifecycle checks
# (07-12, rootless, cli). All host-side, all bounded in time.

# The system python: starts faster than a version-manager shim, and is the
# one the sandbox sees under /usr.
KPY=/usr/bin/python3
[ -x "$KPY" ] || KPY=python3

# now_ms: wall-clock time in milliseconds.
now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

# at_exit COMMAND: run COMMAND (e.g. kill a canary) when the script exits,
# before the work dir is removed.
T_ATEXIT=":"
at_exit() {
  T_ATEXIT="$T_ATEXIT; $*"
  trap 'eval "$T_ATEXIT"; t_cleanup' EXIT
}

# kiln_start ARGS...: like kiln_run but in the background. KPID is the kiln
# process, T0 its start time (ms). Then kiln_finish.
kiln_start() {
  rm -f "$WORK/report.json"
  T0=$(now_ms)
  "$KILN" run --report "$WORK/report.json" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null &
  KPID=$!
}

# proc_alive PID: PID exists and is not a zombie.
proc_alive() {
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "${s%% *}" != Z ]
}

# kiln_finish SECONDS: wait at most SECONDS for KPID; sets RC and ELAPSED_MS
# (since kiln_start). Past SECONDS, kiln is SIGKILLed, RC=999, returns 1.
kiln_finish() {
  local n=0 max=$(($1 * 20))
  while proc_alive "$KPID" && [ "$n" -lt "$max" ]; do
    sleep 0.05
    n=$((n + 1))
  done
  if proc_alive "$KPID"; then
    kill -KILL "$KPID" 2>/dev/null
    wait "$KPID" 2>/dev/null
    RC=999
    ELAPSED_MS=$(($(now_ms) - T0))
    return 1
  fi
  wait "$KPID"
  RC=$?
  ELAPSED_MS=$(($(now_ms) - T0))
  return 0
}

# _kproc SUBCOMMAND ARGS...: /proc scans (no /proc/PID/task/*/children here).
#   init KPID       host pid of KPID's child in another pid namespace
#   nspids PID      host pids in PID's pid namespace
#   marker STRING   host pids (other than this scan) whose cmdline has STRING
#   count           number of processes on the host
_kproc() {
  "$KPY" - "$@" <<'PY'
import os, sys
def pids():
    for p in os.listdir("/proc"):
        if p.isdigit():
            yield int(p)
def rd(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None
def ns(p):
    try:
        return os.readlink("/proc/%d/ns/pid" % p)
    except OSError:
        return None
cmd, args = sys.argv[1], sys.argv[2:]
me = os.getpid()
def ppid(p):
    st = rd("/proc/%d/stat" % p)
    return int(st.rsplit(")", 1)[1].split()[1]) if st else -1
if cmd == "init":
    # The sandbox's pid 1 is kiln's grandchild: kiln forks a relay, which
    # clones init into the new namespaces.
    k = int(args[0]); kns = ns(k)
    for p in pids():
        if ns(p) in (None, kns):
            continue
        pp = ppid(p)
        if pp == k or (pp > 0 and ppid(pp) == k):
            print(p); break
elif cmd == "nspids":
    n = ns(int(args[0]))
    if n:
        for p in pids():
            if ns(p) == n:
                print(p)
elif cmd == "marker":
    m = args[0].encode()
    for p in pids():
        if p in (me, os.getppid()):
            continue
        c = rd("/proc/%d/cmdline" % p, "rb")
        if c and m in c:
            print(p)
elif cmd == "count":
    print(sum(1 for _ in pids()))
PY
}

# sandbox_init KPID [SECONDS]: host pid of the sandbox's pid 1 (waits for it
# up to SECONDS, default 5); empty output if it never appeared.
sandbox_init() {
  local n=0 max=$((${2:-5} * 20)) p
  while [ "$n" -lt "$max" ]; do
    p=$(_kproc init "$1")
    if [ -n "$p" ]; then echo "$p"; return 0; fi
    proc_alive "$1" || return 1
    sleep 0.05
    n=$((n + 1))
  done
  return 1
}

# ns_pids PID: host pids of every process in PID's pid namespace.
ns_pids() { _kproc nspids "$1"; }

# marker_pids STRING: host pids whose command line contains STRING.
marker_pids() { _kproc marker "$1"; }

# host_nprocs: number of processes on the host.
host_nprocs() { _kproc count; }

# wait_no_marker STRING SECONDS: true once no process carries STRING,
# false if some still do after SECONDS.
wait_no_marker() {
  local n=0 max=$(($2 * 10))
  while [ -n "$(marker_pids "$1")" ]; do
    [ "$n" -ge "$max" ] && return 1
    sleep 0.1
    n=$((n + 1))
  done
  return 0
}

# report_py EXPR: a python expression over the last report `r`, printed as
# JSON (strings bare). E.g. report_py 'r["export"]["skipped"]'.
report_py() {
  "$KPY" -c 'import json,sys
r=json.load(open(sys.argv[1])); v=eval(sys.argv[2])
print(v if isinstance(v,str) else json.dumps(v))' "$WORK/report.json" "$1" 2>/dev/null
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  "$KPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# tcp_canary PORT LOG: start a host listener on 127.0.0.1:PORT that appends
# a line to LOG for every connection it accepts (and every UDP datagram to
# the same port); returns once it listens. Sets CANARY_PID; killed at exit.
# Call it directly, not in $(...).
tcp_canary() {
  "$KPY" - "$1" "$2" >/dev/null 2>&1 <<'PY' &
import os, select, socket, sys
port, log = int(sys.argv[1]), sys.argv[2]
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", port)); t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", port))
open(log + ".ready", "w").close()
while True:
    r, _, _ = select.select([t, u], [], [])
    for s in r:
        if s is t:
            c, a = t.accept(); line = "tcp %s\n" % (a,); c.close()
        else:
            d, a = u.recvfrom(65536); line = "udp %s\n" % (a,)
        with open(log, "a") as f:
            f.write(line)
PY
  CANARY_PID=$!
  at_exit "kill $CANARY_PID 2>/dev/null"
  local n=0
  while [ ! -e "$2.ready" ] && [ "$n" -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
  [ -e "$2.ready" ]
}

# ---- Helpers for the secrets, tampering, privilege, terminal and /proc
# checks (01-06). Host-side, bounded in time.

# proc_status PID KEY: the value of KEY in /proc/PID/status, e.g.
# proc_status 1234 CapEff -> 0000000000000000 ("Uid" gives all four ids).
proc_status() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null; }

# wait_output PATTERN SECONDS: wait until the background kiln's stdout
# ($WORK/out.txt, see kiln_start) has a line matching PATTERN (grep -E).
wait_output() {
  local n=0 max=$(($2 * 20))
  while ! grep -qE -- "$1" "$WORK/out.txt" 2>/dev/null; do
    [ "$n" -ge "$max" ] && return 1
    proc_alive "$KPID" || { grep -qE -- "$1" "$WORK/out.txt" 2>/dev/null; return; }
    sleep 0.05
    n=$((n + 1))
  done
  return 0
}

# sandbox_procs KPID: host pids of the sandbox's processes other than its
# init (the build and its children), waiting up to 5 s for init.
sandbox_procs() {
  local init p
  init=$(sandbox_init "$1") || return 1
  for p in $(ns_pids "$init"); do
    [ "$p" != "$init" ] && echo "$p"
  done
  return 0
}

# expect_out DESC PATTERN: ok if the last run's stdout has a line matching
# PATTERN (grep -E); shows the lines of the same attempt otherwise.
expect_out() {
  local desc=$1 pat=$2
  if grep -qE -- "$pat" "$WORK/out.txt" 2>/dev/null; then
    ok 0 "$desc"
  else
    ok 1 "$desc"
    diag "expected a line matching: $pat"
    # The lines of the same attempt: those sharing the pattern's first word.
    local w=${pat#^}
    w=${w%%[ :]*}
    grep -F -- "$w" "$WORK/out.txt" 2>/dev/null | head -3 | diag_lines "got: "
  fi
}

# expect_denied NAME MIN: ok if the supervisor counted at least MIN seccomp
# denials of syscall NAME in the last report.
expect_denied() {
  local c st=1
  c=$(denied_count "$1")
  [ "${c:-0}" -ge "$2" ] && st=0
  ok "$st" "seccomp denials of $1 counted by the supervisor: $c >= $2"
}

# diag_lines [PREFIX]: stdin as TAP comment lines (diag takes one line).
diag_lines() { sed "s/^/# ${1:-}/"; }

# special_files DIR: everything under DIR that is setuid, setgid, sticky,
# a device, fifo or socket (one per line, empty if none).
special_files() {
  find "$1" \( -perm /7000 -o -type b -o -type c -o -type p -o -type s \) -printf '%M %p\n' 2>/dev/null
}
