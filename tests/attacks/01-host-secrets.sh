#!/bin/bash
# THREATS.md §1: secrets on the host. Canaries (random strings) are planted
# where a build must never see them: /root, /home/*, a world-readable file
# under /etc, the caller's environment, file descriptors the caller left
# open (a file, a directory, the host's /), the caller's working directory
# (runc CVE-2024-21626), and kiln's own arguments (the --report and --out
# paths), which pid 1 of the sandbox carried in its memory.
#
# The build hunts for them every way the helper knows (direct paths, fd
# brute force, /proc/self/fd, /dev/fd, openat on inherited fds, "..", the
# cwd of itself and of init, /proc/1/{environ,cmdline}, a walk of the whole
# filesystem) and copies whatever it finds to stdout and into the export.
# Judged from the host: no canary in stdout, stderr, the report or the
# exported files; and, while the sandbox runs, none in the environment,
# command line or open files of any sandbox process as the host sees them.
# Positive controls: the same helper outside the sandbox does find them.
. "$KILN_TESTS/attacks/lib.sh"
require_root
[ -x "${KILN_ATTACK:-}" ] || skip_all "KILN_ATTACK (the helper) is not built"

TAG=$$-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
C_ROOT=$(canary); C_HOME=$(canary); C_ETC=$(canary); C_ENV=$(canary)
C_FD=$(canary); C_DIRFD=$(canary); C_CWD=$(canary); C_ARG=$(canary)

ROOTF=/root/kiln-canary-$TAG
HOMED=/home/kiln-atk-$TAG
ETCF=/etc/kiln-canary-$TAG
# World-readable files where hosts keep shared state: the host's /tmp,
# /var/tmp, /run and /dev/shm (the sandbox has its own of each).
C_SHARED=$(canary)
SHARED="/tmp/kiln-canary-$TAG /var/tmp/kiln-canary-$TAG /run/kiln-canary-$TAG /dev/shm/kiln-canary-$TAG"
at_exit "rm -rf '$ROOTF' '$HOMED' '$ETCF' $SHARED"
umask 022
echo "$C_ROOT" >"$ROOTF" && chmod 0644 "$ROOTF"
for f in $SHARED; do echo "$C_SHARED" >"$f" && chmod 0644 "$f"; done
mkdir -p "$HOMED" && chmod 0755 "$HOMED"
echo "$C_HOME" >"$HOMED/secret" && chmod 0644 "$HOMED/secret"
echo "$C_ETC" >"$ETCF" && chmod 0644 "$ETCF"

FDF=$WORK/fd-secret
echo "$C_FD" >"$FDF"
DIRFD=$WORK/dirfd
mkdir -p "$DIRFD" && echo "$C_DIRFD" >"$DIRFD/secret"
CWD=$WORK/cwd-$C_ARG
mkdir -p "$CWD" && echo "$C_CWD" >"$CWD/kiln-cwd-canary"
chmod -R go+rX "$WORK"
ALL_CANARIES="$C_ROOT $C_HOME $C_ETC $C_ENV $C_FD $C_DIRFD $C_CWD $C_ARG $C_SHARED"

SRC=$(new_src)
OUT=$WORK/out-$C_ARG
REP=$WORK/report-$C_ARG.json

# Everything the build finds goes to stdout and into out/.
read -r -d '' SCRIPT <<EOF
mkdir -p out && echo ran > out/ran
A=/workspace/attack
\$A fd-scan 1023 > out/fd-scan.txt 2>&1
\$A read /proc/self/fd/7 /dev/fd/7 /proc/self/fd/8/secret /dev/fd/8/secret \
  /proc/self/fd/9/home/kiln-atk-$TAG/secret /dev/fd/9/etc/kiln-canary-$TAG \
  /proc/self/fd/3 /dev/fd/4 > out/fd-paths.txt 2>&1
\$A cwd-escape kiln-cwd-canary > out/cwd.txt 2>&1
\$A read $ROOTF $HOMED/secret $ETCF $SHARED > out/paths.txt 2>&1
\$A stat /root /home /home/kiln-atk-$TAG $ETCF /sys > out/stat.txt 2>&1
ls -la / /home /etc > out/ls.txt 2>&1
env > out/env.txt 2>&1
\$A read /proc/self/environ /proc/1/environ /proc/1/cmdline /proc/self/cmdline \
  /proc/self/mountinfo > out/proc.txt 2>&1
\$A proc-dump all > out/proc-dump.txt 2>&1
\$A dump-tree / > /dev/shm/tree.txt 2>&1; cp /dev/shm/tree.txt out/tree.txt
cat out/*.txt
echo done > out/done
EOF

# ---- 1. the hunt -------------------------------------------------------
(
  cd "$CWD" || exit 99
  export KILN_SECRET=$C_ENV AWS_SECRET_ACCESS_KEY=$C_ENV SSH_AUTH_SOCK=/tmp/$C_ENV/agent
  exec 7<"$FDF" 8<"$DIRFD" 9</
  exec "$KILN" run --source "$SRC" --out "$OUT" --report "$REP" -- /bin/sh -c "$SCRIPT"
) >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
RC=$?
cp "$REP" "$WORK/report.json" 2>/dev/null

check "sandbox ran the hunt (exit 0, got $RC)" -- test "$RC" -eq 0
check "sanity: marker from inside exported" -- test "$(cat "$OUT/ran" 2>/dev/null)" = ran
check "sanity: the hunt ran to its end" -- test -f "$OUT/done"
check "sanity: the filesystem walk produced output" -- \
  test "$(wc -l <"$OUT/tree.txt" 2>/dev/null || echo 0)" -gt 10
check "sanity: the report was written" -- test -s "$REP"

names=(root home etc env fd dirfd cwd args shared-tmp)
i=0
for c in $ALL_CANARIES; do
  check "canary ${names[$i]}: in no stdout, stderr, report or exported file" -- \
    not_in_outputs "$c" "$OUT" "$REP"
  i=$((i + 1))
done

# What the build saw, as evidence of why it found nothing.
expect_out "/root does not exist in the sandbox" "^read $ROOTF: ENOENT "
expect_out "/home of the host is not in the sandbox" "^read $HOMED/secret: ENOENT "
expect_out "/etc of the host is not in the sandbox" "^read $ETCF: ENOENT "
expect_out "/sys does not exist in the sandbox" '^stat /sys: ENOENT$'
for f in $SHARED; do
  expect_out "the host's ${f%/*} is not the sandbox's" "^read $f: ENOENT "
done
check "no host path of the run (source dir, work dir) appears in the build's view" -- \
  not_in_outputs "$WORK" "$OUT"
check "fd-scan: only fds 0-2 are open in the build" -- \
  bash -c '! grep -qE "^fd ([3-9]|[1-9][0-9]+): " "$1"' _ "$OUT/fd-scan.txt"
check "fd-scan: stdin is /dev/null" -- grep -q '^fd 0: chardev -> /dev/null$' "$OUT/fd-scan.txt"
expect_out "the caller's fd 7 is not reachable through /proc/self/fd" '^read /proc/self/fd/7: ENOENT '
expect_out "the caller's fd 9 (host /) is not reachable through /dev/fd" "^read /dev/fd/9/etc/kiln-canary-$TAG: ENOENT "
check "cwd-escape: no road to the caller's working directory" -- \
  bash -c '! grep -qE "^cwd-escape .*: ok" "$1"' _ "$OUT/cwd.txt"
expect_out "the build starts in /workspace" '^cwd: /workspace$'
expect_out "init's environment is not readable" '^read /proc/1/environ: (EACCES|EPERM|ENOENT) |^read /proc/1/environ: ok 0$'
init_cmdline=$(awk '/^--- begin \/proc\/1\/cmdline$/ {f=1; next} /^--- end \/proc\/1\/cmdline/ {f=0} f' \
  "$OUT/proc.txt" "$OUT/proc-dump.txt" 2>/dev/null | grep -v '^$' | sort -u)
check "init's command line shows only kiln-init (got: $(echo $init_cmdline))" -- \
  test "$init_cmdline" = kiln-init

# ---- 2. live, from the host: what the sandbox's processes carry ----------
REP2=$WORK/report2-$C_ARG.json
(
  cd "$CWD" || exit 99
  export KILN_SECRET=$C_ENV
  exec 7<"$FDF" 8<"$DIRFD" 9</
  exec "$KILN" run --source "$SRC" --report "$REP2" --out "$WORK/out2-$C_ARG" -- /workspace/attack wait-signal 20
) >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null &
KPID=$!
T0=$(now_ms)
if wait_output '^READY' 10; then
  init=$(sandbox_init "$KPID")
  procs="$init $(sandbox_procs "$KPID" | tr '\n' ' ')"
  check "live: found the sandbox's processes ($procs)" -- test "$(echo $procs | wc -w)" -ge 2
  for p in $procs; do
    envs=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null)
    cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)
    fds=$(for f in /proc/$p/fd/*; do readlink "$f"; done 2>/dev/null)
    cwd=$(readlink "/proc/$p/cwd" 2>/dev/null)
    leak=""
    for c in $ALL_CANARIES; do
      case "$envs" in *"$c"*) leak="$leak environ" ;; esac
      case "$cmd" in *"$c"*) leak="$leak cmdline" ;; esac
      case "$fds$cwd" in *"$c"*) leak="$leak fds/cwd" ;; esac
    done
    check "live pid $p ($(cat /proc/$p/comm 2>/dev/null)): no canary in its environ, cmdline, fds or cwd${leak:+ (found in:$leak)}" -- test -z "$leak"
    check "live pid $p: none of the caller's fds (file, dir, /) is open" -- \
      bash -c '! grep -qxF -e "$1" -e "$2" -e / <<<"$3"' _ "$FDF" "$DIRFD" "$fds"
    check "live pid $p: cwd is not the caller's ($cwd)" -- test "$cwd" != "$CWD"
  done
  check "live: init's environment is empty (wiped), as the host sees it" -- \
    test -z "$(tr -d '\0' <"/proc/$init/environ" 2>/dev/null)"
  build=$(sandbox_procs "$KPID" | head -1)
  kill -USR1 "$build" 2>/dev/null
else
  ok 1 "live: the sandbox never got ready"
  diag_lines <"$WORK/err.txt"
fi
kiln_finish 15
check "live: the build exited 0 after the host's signal (got $RC)" -- test "$RC" -eq 0
for c in $ALL_CANARIES; do
  check "live run: canary not in stdout, stderr or report" -- not_in_outputs "$c" "$REP2"
done

# ---- 3. positive controls: the same hunt outside the sandbox ------------
# Proves each probe would have printed its canary had it reached it.
ctl=$(cd "$CWD" && "$KILN_ATTACK" cwd-escape kiln-cwd-canary 2>&1)
check "control: cwd-escape finds the cwd canary outside" -- grep -qF "$C_CWD" <<<"$ctl"
ctl=$(exec 7<"$FDF" 8<"$DIRFD" 9</; "$KILN_ATTACK" fd-scan 20 2>&1)
check "control: fd-scan finds the fd-file canary outside" -- grep -qF "$C_FD" <<<"$ctl"
check "control: fd-scan finds the dir-fd canary outside" -- grep -qF "$C_DIRFD" <<<"$ctl"
ctl=$(setpriv --reuid=65534 --regid=65534 --clear-groups -- "$KILN_ATTACK" read "$HOMED/secret" "$ETCF" 2>&1)
check "control: an unprivileged host user can read the /home and /etc canaries" -- \
  bash -c 'grep -qF "$1" <<<"$3" && grep -qF "$2" <<<"$3"' _ "$C_HOME" "$C_ETC" "$ctl"
ctl=$(KILN_SECRET=$C_ENV "$KILN_ATTACK" read /proc/self/environ 2>&1)
check "control: the environment probe finds the env canary outside" -- grep -qF "$C_ENV" <<<"$ctl"

done_testing
