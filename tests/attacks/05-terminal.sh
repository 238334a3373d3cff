#!/bin/bash
# THREATS.md §5: terminal injection. kiln runs on a pseudo-terminal the
# test creates (the helper's pty-run: a new session whose controlling
# terminal is the pty, raw mode, stdin/stdout/stderr on it), as an
# operator's interactive `kiln run` would. Inside, the build tries TIOCSTI
# and TIOCLINUX (bubblewrap CVE-2017-5226), plain and with the high-bits
# request number (CVE-2019-10063), on every fd, on /dev/tty and friends,
# and on a pty of its own made its controlling terminal (where the kernel
# itself would say yes, so only the filter can say no).
#
# Judged from the host: after kiln exits, nothing is waiting in the
# terminal's input queue (FIONREAD on the slave, raw mode, so one injected
# byte counts); the supervisor counted every attempt as a denied ioctl;
# and while the build runs, no sandbox process has the terminal as its
# controlling tty or holds an fd on it. Positive controls: the same helper
# outside the sandbox does inject, with either request number.
. "$KILN_TESTS/attacks/lib.sh"
require_root
[ -x "${KILN_ATTACK:-}" ] || skip_all "KILN_ATTACK (the helper) is not built"

A=$KILN_ATTACK
diag "dev.tty.legacy_tiocsti = $(cat /proc/sys/dev/tty/legacy_tiocsti 2>/dev/null || echo n/a)"

# ---- 1. positive controls ----------------------------------------------
"$A" pty-run -o "$WORK/ctl.out" -- "$A" tiocsti 0 2>"$WORK/ctl.err"
check "control: TIOCSTI outside the sandbox injects into the terminal (PTY-INQ 1)" -- \
  grep -q '^PTY-INQ 1$' "$WORK/ctl.err"
check "control: ... and the detector reads back the byte" -- grep -q '^PTY-INJECTED "x"$' "$WORK/ctl.err"
"$A" pty-run -o "$WORK/ctl.out" -- "$A" tiocsti-high 0 2>"$WORK/ctl.err"
check "control: the high-bits request 0xffffffff00005412 injects too (the kernel truncates it)" -- \
  grep -q '^PTY-INQ 1$' "$WORK/ctl.err"

# ---- 2. the attack, kiln on the terminal --------------------------------
SRC=$(new_src)
OUT=$WORK/out
REP=$WORK/report.json
"$A" pty-run -o "$WORK/out.txt" -- "$KILN" run --source "$SRC" --out "$OUT" --report "$REP" -- /bin/sh -c '
  mkdir -p out && echo ran > out/ran
  /workspace/attack tty-attack
  /workspace/attack tiocsti /dev/tty 0 1 2
  /workspace/attack tiocsti-high /dev/tty 0 1 2
  python3 -c "
import fcntl, termios
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b\"y\"); print(\"python TIOCSTI\", fd, \"ok\")
    except OSError as e:
        print(\"python TIOCSTI\", fd, e.errno)"
  echo done > out/done' 2>"$WORK/pty.err"
RC=$?
check "sandbox on a pty ran (exit 0, got $RC)" -- test "$RC" -eq 0
check "sanity: marker from inside exported" -- test "$(cat "$OUT/ran" 2>/dev/null)" = ran
check "sanity: the attack ran to its end" -- test -f "$OUT/done"
check "sanity: the build's output reached the terminal through kiln" -- grep -q '^ATTEMPTS ' "$WORK/out.txt"
check "HOST: nothing waiting in the terminal's input queue (PTY-INQ 0)" -- grep -q '^PTY-INQ 0$' "$WORK/pty.err"
check "HOST: no injected bytes read back" -- grep -q '^PTY-INJECTED ""$' "$WORK/pty.err"
[ -f "$WORK/pty.err" ] && diag "$(grep PTY- "$WORK/pty.err" | tr '\n' ' ')"

n=$(sed -n 's/^ATTEMPTS //p' "$WORK/out.txt" | tr -d '\r')
# tty-attack counts its own; then 3 + 3 on fds 0-2 (/dev/tty does not open), 3 from python.
expect_denied ioctl "$((${n:-1} + 9))"
check "every TIOCSTI/TIOCLINUX attempt was refused (no 'ok')" -- \
  bash -c '! grep -E "^(tiocsti|tioclinux)(-high)? .*: ok" "$1"' _ "$WORK/out.txt"
expect_out "stdin of the build is not a terminal: TIOCSTI on fd 0 refused by the filter" '^tiocsti fd:0: EPERM '
expect_out "high-bits TIOCSTI on fd 0 refused by the filter" '^tiocsti-high fd:0: EPERM '
expect_out "the build has no controlling terminal (/dev/tty: ENXIO)" '^open /dev/tty: ENXIO '
expect_out "sanity: the build's own pty became its controlling terminal" 'own-pty: /dev/pts/[0-9]+ is our controlling terminal'
expect_out "own pty: TIOCSTI refused (the kernel alone would allow it)" '^tiocsti own-pty: EPERM '
expect_out "own pty: high-bits TIOCSTI refused (CVE-2019-10063)" '^tiocsti-high own-pty: EPERM '
expect_out "own pty: TIOCLINUX refused" '^tioclinux own-pty: EPERM '
expect_out "own pty: high-bits TIOCLINUX refused" '^tioclinux-high own-pty: EPERM '
expect_out "own pty: nothing arrived in its queue either" '^own-pty FIONREAD 0$'
expect_out "python's TIOCSTI refused with EPERM" '^python TIOCSTI 0 1$'

# ---- 3. live, from the host: who holds the terminal ----------------------
"$A" pty-run -o "$WORK/out.txt" -- "$KILN" run --source "$SRC" --report "$REP" -- \
  /workspace/attack wait-signal 20 2>"$WORK/pty.err" &
PPID_RUN=$!
KPID=$PPID_RUN
T0=$(now_ms)
if wait_output '^READY' 10; then
  slave=$(sed -n 's/^PTY-SLAVE //p' "$WORK/pty.err")
  kpid=$(pgrep -P "$PPID_RUN" | head -1)
  init=$(sandbox_init "$kpid")
  procs=$(sandbox_procs "$kpid" | tr '\n' ' ')
  diag "terminal $slave, kiln $kpid, init $init, build $procs"
  check "live: the terminal is kiln's controlling tty (the setup is real)" -- \
    test "$(awk '{print $7}' "/proc/$kpid/stat")" != 0
  for p in $procs; do
    check "live build $p: no controlling terminal (tty_nr 0)" -- \
      test "$(sed 's/.*) //' "/proc/$p/stat" | awk '{print $5}')" = 0
    check "live build $p: in a session of its own" -- \
      test "$(sed 's/.*) //' "/proc/$p/stat" | awk '{print $4}')" != "$(sed 's/.*) //' "/proc/$kpid/stat" | awk '{print $4}')"
    check "live build $p: no fd on $slave" -- \
      bash -c '! for f in /proc/$1/fd/*; do readlink "$f"; done 2>/dev/null | grep -qxF "$2"' _ "$p" "$slave"
  done
  # pid 1 of the sandbox is kiln's code, but it lives in the sandbox's
  # namespaces for the whole build: it should not keep the caller's
  # terminal open either (defense in depth behind its non-dumpability).
  check "live init $init: no fd on the caller's terminal $slave" -- \
    bash -c '! for f in /proc/$1/fd/*; do readlink "$f"; done 2>/dev/null | grep -qxF "$2"' _ "$init" "$slave"
  for p in $procs; do kill -USR1 "$p" 2>/dev/null; done
else
  ok 1 "live: the sandbox never got ready"
  diag_lines <"$WORK/pty.err"
fi
wait "$PPID_RUN"
RC=$?
check "live: exit 0 after the host's signal (got $RC)" -- test "$RC" -eq 0
check "live: HOST: nothing waiting in the terminal's input queue" -- grep -q '^PTY-INQ 0$' "$WORK/pty.err"

done_testing
