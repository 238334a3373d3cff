#!/bin/bash
# `kiln run` as a command: option parsing and its error paths, exit codes
# (CONVENTIONS.md 13), the report, stdin, and what happens to the sandbox
# when kiln itself gets a signal. Every refusal is checked to happen before
# the command runs (its marker never shows up).
. "$KILN_TESTS/attacks/lib.sh"
require_root

TAG=$(canary)
R=${TAG#KILNCANARY}
RAN="RAN-$R"

# refused DESC PATTERN ARGS...: `kiln run ARGS... -- echo RAN` exits 2 with
# one line on stderr matching PATTERN (MAXLINES lines if set), and the
# command never ran.
refused() {
  local desc=$1 pat=$2; shift 2
  "$KILN" run "$@" -- echo "$RAN" >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
  local rc=$?
  local lines; lines=$(grep -c . "$WORK/err.txt")
  if [ "$rc" -eq 2 ] && [ "$lines" -ge 1 ] && [ "$lines" -le "${MAXLINES:-1}" ] && grep -Eq -- "$pat" "$WORK/err.txt" && ! grep -q "$RAN" "$WORK/out.txt"; then
    ok 0 "$desc"
  else
    ok 1 "$desc"
    diag "rc=$rc, stderr: $(head -3 "$WORK/err.txt")"
  fi
}

# --- usage, help, version -------------------------------------------------
"$KILN" run >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
RC=$?
check "no command: exit 2 (rc=$RC)" -- test "$RC" -eq 2
check "no command: one line on stderr naming the problem" -- \
  bash -c "[ \$(grep -c . '$WORK/err.txt') -eq 1 ] && grep -qi 'no command' '$WORK/err.txt'"
"$KILN" run -- >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
RC=$?
check "'kiln run --' without a command: exit 2 (rc=$RC)" -- test "$RC" -eq 2 -a "$(grep -c . "$WORK/err.txt")" -eq 1
"$KILN" >/dev/null 2>&1 </dev/null
check "kiln without a verb: exit 2" -- test $? -eq 2
"$KILN" frobnicate >/dev/null 2>"$WORK/err.txt" </dev/null
RC=$?
check "unknown verb: exit 2 with a message (rc=$RC)" -- bash -c "[ $RC -eq 2 ] && grep -q frobnicate '$WORK/err.txt'"
# getopt_long adds its own line before kiln's.
MAXLINES=2 refused "unknown option: exit 2" 'invalid option|unrecognized' --bogus-option
"$KILN" run --help >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
RC=$?
check "kiln run --help: exit 0, usage on stdout (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && head -1 '$WORK/out.txt' | grep -q '^usage: kiln run' && grep -q -- '--memory' '$WORK/out.txt' && [ ! -s '$WORK/err.txt' ]"
"$KILN" --version >"$WORK/out.txt" 2>&1 </dev/null
RC=$?
check "kiln --version: exit 0, 'kiln X.Y...' ($(head -1 "$WORK/out.txt"))" -- \
  bash -c "[ $RC -eq 0 ] && grep -Eq '^kiln [0-9]+\.[0-9]+' '$WORK/out.txt'"
"$KILN" help >/dev/null 2>&1 </dev/null
check "kiln help: exit 0" -- test $? -eq 0

# --- options with bad values ----------------------------------------------------
refused "--memory 12Q: exit 2 naming --memory" '--memory' --memory 12Q
refused "--memory 1 (below the minimum): exit 2 naming --memory" '--memory' --memory 1
refused "--memory -5: exit 2" '--memory' --memory -5
refused "--memory 99999999T (overflow): exit 2" '--memory' --memory 99999999999T
refused "--disk 0: exit 2 naming --disk" '--disk' --disk 0
refused "--disk 12Q: exit 2 naming --disk" '--disk' --disk 12Q
refused "--output-limit xyz: exit 2 naming --output-limit" '--output-limit' --output-limit xyz
refused "--pids 0: exit 2 naming --pids" '--pids' --pids 0
refused "--pids abc: exit 2 naming --pids" '--pids' --pids abc
refused "--cpus abc: exit 2 naming --cpus" '--cpus' --cpus abc
refused "--cpus 0.0001: exit 2 naming --cpus" '--cpus' --cpus 0.0001
refused "--timeout 0: exit 2 naming --timeout" '--timeout' --timeout 0
refused "--timeout 5x: exit 2 naming --timeout" '--timeout' --timeout 5x
refused "--env without '=': rejected" '--env' --env FOO
refused "--env with an empty name: rejected" '--env' --env =value
refused "--env with a bad name: rejected" '--env' --env 'A B=1'
refused "--bind to /proc: rejected" '/proc' --bind /tmp:/proc
refused "--bind into /proc: rejected" '/proc' --bind /tmp:/proc/sys
refused "--bind to /etc/passwd: rejected" '/etc' --ro-bind /etc/hostname:/etc/passwd
refused "--bind to /dev: rejected" '/dev' --bind /tmp:/dev/x
refused "--bind to a relative destination: rejected" 'absolute' --bind /tmp:relative/dir
refused "--bind destination with ..: rejected" 'absolute|\.\.' --bind /tmp:/opt/../proc
refused "--bind without a colon: rejected" 'SRC:DST' --bind /tmp
refused "--bind from a nonexistent source: rejected" 'bind source|No such file' --bind "$WORK/absent:/opt/x"
refused "--source nonexistent: rejected naming --source" '--source' --source "$WORK/absent-source"
touch "$WORK/plainfile"
refused "--source is a file: rejected naming --source" '--source' --source "$WORK/plainfile"

# --- exit codes ---------------------------------------------------------------------
kiln_run -- sh -c 'exit 3'
check "exit 3 passes through (rc=$RC)" -- test "$RC" -eq 3
check "report: exit_code 3, status 3, signal null, reason exited" -- \
  test "$(report_py '[r["exit_code"], r["status"], r["signal"], r["reason"]]')" = '[3, 3, null, "exited"]'
kiln_run -- sh -c 'exit 255'
check "exit 255 passes through (rc=$RC)" -- test "$RC" -eq 255
kiln_run -- sh -c 'kill -TERM $$'
check "kill -TERM \$\$: exit 143 (rc=$RC)" -- test "$RC" -eq 143
check "report: signal 15, status null, reason signaled" -- \
  test "$(report_py '[r["exit_code"], r["status"], r["signal"], r["reason"]]')" = '[143, null, 15, "signaled"]'
kiln_run -- sh -c 'kill -KILL $$'
check "kill -KILL \$\$: exit 137 (rc=$RC)" -- test "$RC" -eq 137
kiln_run -- "no-such-command-$R"
check "command not found: exit 127 (rc=$RC)" -- test "$RC" -eq 127
check "command not found: says so on stderr" -- grep -q "no-such-command-$R" "$WORK/err.txt"
kiln_run -- /etc/os-release
check "not executable: exit 126 (rc=$RC)" -- test "$RC" -eq 126
kiln_run -- /workspace
check "a directory as command: exit 126 (rc=$RC)" -- test "$RC" -eq 126
kiln_run -- true
check "true: exit 0 (rc=$RC)" -- test "$RC" -eq 0

# --- the report ----------------------------------------------------------------------
kiln_run --out "$WORK/rep-out" -- sh -c "mkdir out; printf 'hello' > out/f; printf '%s' $RAN"
check "report run: sanity (rc=$RC, output)" -- bash -c "[ $RC -eq 0 ] && [ \"\$(cat '$WORK/out.txt')\" = '$RAN' ]"
check "report is valid JSON" -- "$KPY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/report.json"
MISSING=$(report_py '",".join(k for k in ["exit_code","status","signal","reason","wall_time_ms","user_cpu_ms","system_cpu_ms","peak_memory_bytes","output_bytes","seccomp_denials","denied_syscalls","protections","not_applied","cgroup","export"] if k not in r)')
check "report has every documented key${MISSING:+ (missing: $MISSING)}" -- test -z "$MISSING"
MISSING=$(report_py '",".join(k for k in ["files","bytes","skipped","error"] if k not in r.get("export", {}))')
check "report export has files, bytes, skipped, error${MISSING:+ (missing: $MISSING)}" -- test -z "$MISSING"
check "report types: ints, lists, dict, reason string" -- test "$(report_py '(
all(isinstance(r[k], int) for k in ["exit_code","wall_time_ms","user_cpu_ms","system_cpu_ms","output_bytes","seccomp_denials"])
and isinstance(r["protections"], list) and isinstance(r["not_applied"], list)
and isinstance(r["denied_syscalls"], dict) and r["reason"] in ["exited","signaled","timeout","memory","pids","disk","output-limit","cancelled"]
and r["cgroup"] in ["v1","v2",None])')" = true
check "report: output_bytes counts what the build printed ($(report_get output_bytes))" -- test "$(report_get output_bytes)" -eq ${#RAN}
check "report: export counts 1 file of 5 bytes" -- test "$(report_py '[r["export"]["files"], r["export"]["bytes"]]')" = '[1, 5]'
check "report: as root, no protection is listed as not applied" -- test "$(report_py 'r["not_applied"]')" = '[]'
# --report over a symlink: O_NOFOLLOW, the link's target is not overwritten.
echo "victim $R" > "$WORK/victim"
ln -s "$WORK/victim" "$WORK/report-link"
"$KILN" run --report "$WORK/report-link" -- true >/dev/null 2>"$WORK/err.txt" </dev/null
RC=$?
check "--report to a symlink: target untouched (rc=$RC)" -- test "$(cat "$WORK/victim")" = "victim $R"
check "--report to a symlink: kiln says so and fails" -- bash -c "[ $RC -ne 0 ] && grep -q -- '--report' '$WORK/err.txt'"

# --- --env, and nothing else inherited ------------------------------------------------
SECRET_ENV_VAR="$TAG" kiln_run --env "FOO=bar $R" --env "FOO=baz $R" --env PATH=/usr/bin:/bin -- sh -c 'echo "FOO=$FOO"; env'
check "--env: later value wins" -- grep -qx "FOO=baz $R" "$WORK/out.txt"
check "--env: the caller's environment is not inherited" -- bash -c "! grep -q SECRET_ENV_VAR '$WORK/out.txt' && ! grep -qF '$TAG' '$WORK/out.txt'"

# --- stdin ---------------------------------------------------------------------------------
START=$(now_ms)
{ printf 'STDIN-%s\n' "$R"; sleep 4; printf 'LATE-%s\n' "$R"; } | \
  "$KILN" run -- sh -c 'cat; echo "[eof $?]"; readlink /proc/self/fd/0; python3 -c "import sys; print(\"py\", len(sys.stdin.buffer.read()))"' \
  >"$WORK/out.txt" 2>"$WORK/err.txt"
RC=$?
EL=$(($(now_ms) - START))
check "stdin: the build ran (rc=$RC)" -- test "$RC" -eq 0
check "stdin: the build saw EOF, none of the caller's piped data" -- \
  bash -c "grep -qx '\[eof 0\]' '$WORK/out.txt' && ! grep -q 'STDIN-$R\|LATE-$R' '$WORK/out.txt' && grep -qx 'py 0' '$WORK/out.txt'"
check "stdin: fd 0 inside is /dev/null" -- grep -qx /dev/null "$WORK/out.txt"
diag "stdin run took $EL ms (the writer sleeps 4 s; kiln need not wait for it)"

# --- signals to kiln: the sandbox is torn down -----------------------------------------------
INNER='setsid bash -c "exec -a \"\$0-\$1\" sleep 300" "$0" setsid & nohup bash -c "exec -a \"\$0-\$1\" sleep 300" "$0" nohup >/dev/null 2>&1 & exec -a "$0-main" sleep 300'
for sig in INT TERM HUP; do
  M="$TAG-$sig"
  kiln_start --timeout 60 -- bash -c "$INNER" "$M"
  n=0; while [ "$(marker_pids "$M-" | wc -l)" -lt 3 ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
  check "SIG$sig: sanity, the sandbox's processes run" -- test "$(marker_pids "$M-" | wc -l)" -eq 3
  kill -"$sig" "$KPID"
  # shellcheck disable=SC2034 # T0 is read by kiln_finish
  T0=$(now_ms)
  kiln_finish 15
  check "SIG$sig to kiln: exit 130, promptly (rc=$RC, ${ELAPSED_MS} ms)" -- test "$RC" -eq 130 -a "$ELAPSED_MS" -lt 5000
  check "SIG$sig to kiln: report reason cancelled" -- test "$(report_get reason)" = cancelled
  check "SIG$sig to kiln: no process of the sandbox survives" -- wait_no_marker "$M-" 3
done

# SIGKILL cannot be caught: the sandbox must still not outlive kiln.
M="$TAG-KILL"
kiln_start --timeout 60 -- bash -c "$INNER" "$M"
n=0; while [ "$(marker_pids "$M-" | wc -l)" -lt 3 ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
KINIT=$(_kproc init "$KPID")
CGS=$(cut -d: -f2- "/proc/$KINIT/cgroup" 2>/dev/null | grep 'kiln-' | tr '\n' ' ')
check "SIGKILL: sanity, the sandbox's processes run" -- test "$(marker_pids "$M-" | wc -l)" -eq 3 -a -n "$KINIT"
kill -KILL "$KPID"
wait "$KPID" 2>/dev/null
check "SIGKILL to kiln: no process of the sandbox survives it (3 s)" -- wait_no_marker "$M-" 3
diag "left after SIGKILL: $(marker_pids "$M-" | tr '\n' ' ')"
# Clean up what a dead kiln could not: its init (started by our kiln) and
# the run's cgroups below our own cgroup, once empty (cgroups at the top of a
# hierarchy are shared by name with other runs; the next run of that slot
# removes them as stale).
if [ -n "$KINIT" ] && proc_alive "$KINIT"; then
  kill -KILL "$KINIT" 2>/dev/null
  wait_no_marker "$M-" 3
fi
# The run's cgroups, once empty, while holding the run's slot lock (so that
# no other run can have taken that slot and name meanwhile).
cleanup_cgroups() {
  local c p ctrls ctrl d
  for c in $CGS; do
    p=${c#*:}; ctrls=${c%%:*}
    for ctrl in ${ctrls//,/ }; do
      d=/sys/fs/cgroup/$ctrl$p
      [ -d "$d" ] && [ -z "$(cat "$d/cgroup.procs" 2>/dev/null)" ] && rmdir "$d" 2>/dev/null
    done
  done
  return 0
}
SLOT=$(grep -o 'kiln-slot-[0-9]*' <<<"$CGS" | head -1)
SLOT=${SLOT#kiln-slot-}
if [ -n "$SLOT" ] && [ -e "/run/kiln/slots/$SLOT" ]; then
  exec 9<"/run/kiln/slots/$SLOT"
  if flock -w 10 9; then cleanup_cgroups; fi
  exec 9<&-
fi

done_testing
