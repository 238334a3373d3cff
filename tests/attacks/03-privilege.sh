#!/bin/bash
# THREATS.md §3: privilege. Capabilities, setuid binaries, no_new_privs,
# setuid/setgid files planted in the outputs (chmod, fchmod, fchmodat,
# fchmodat2, open/openat/creat with a setuid mode, mknod), file
# capabilities, device nodes.
#
# Judged from the host: the credentials of every sandbox process as the
# host's /proc shows them while they run (uids in kiln's 0x70000000+ range,
# never 0 or the caller's; every capability set empty; no_new_privs;
# seccomp filter mode), including setuid programs caught in the act and a
# setuid/file-capability binary the host plants, owned by the sandbox's own
# root, while the build waits for it; and the mode, xattrs and type of
# every exported file.
. "$KILN_TESTS/attacks/lib.sh"
require_root
[ -x "${KILN_ATTACK:-}" ] || skip_all "KILN_ATTACK (the helper) is not built"

TAG=$$-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
SRC=$(new_src)
ZERO=0000000000000000

# ---- 1. what the build sees of itself -----------------------------------
OUT=$WORK/out-ids
kiln_run --source "$SRC" --out "$OUT" -- /bin/sh -c '
  mkdir -p out && echo ran > out/ran; /workspace/attack ids | tee out/ids'
check "ids: sandbox ran (exit 0, got $RC)" -- test "$RC" -eq 0
check "ids: sanity marker exported" -- test "$(cat "$OUT/ran" 2>/dev/null)" = ran
for k in CapInh CapPrm CapEff CapBnd CapAmb; do
  expect_out "ids: $k is empty" "^$k:[[:space:]]+$ZERO$"
done
expect_out "ids: uid 1000 (real, effective, saved)" '^ruid=1000 euid=1000 suid=1000$'
expect_out "ids: no supplementary groups" '^groups=$'
expect_out "ids: bounding set empty (PR_CAPBSET_READ)" '^bounding_caps=0$'
expect_out "ids: no_new_privs" '^no_new_privs=1$'
expect_out "ids: seccomp filter mode" '^Seccomp:[[:space:]]+2$'
sb=$(sed -n 's/^securebits=//p' "$WORK/out.txt")
check "ids: securebits NOROOT, NO_SETUID_FIXUP, KEEP_CAPS, NO_CAP_AMBIENT_RAISE set and locked ($sb)" -- \
  test $(( ${sb:-0} & 0xef )) -eq $((0xef))

OUT=$WORK/out-fake
kiln_run --fake-root --source "$SRC" --out "$OUT" -- /bin/sh -c '
  mkdir -p out && echo ran > out/ran; /workspace/attack ids; /workspace/attack kernel mount-tmpfs unshare-user
  true'
check "fake-root: sandbox ran (exit 0, got $RC)" -- test "$RC" -eq 0
expect_out "fake-root: uid 0 inside" '^ruid=0 euid=0 suid=0$'
for k in CapPrm CapEff CapBnd CapAmb; do
  expect_out "fake-root: $k still empty" "^$k:[[:space:]]+$ZERO$"
done
expect_out "fake-root: mount refused all the same" '^kernel mount-tmpfs: EPERM '
expect_out "fake-root: unshare(CLONE_NEWUSER) refused all the same" '^kernel unshare-user: EPERM '

# ---- 2. live, from the host: credentials of every sandbox process --------
# The build starts setuid-root programs that block on a pipe, then waits
# for a file the host creates. Meanwhile the host reads /proc.
VDIR=/usr/local/lib/kiln-atk-suid-$TAG
at_exit "rm -rf '$VDIR'"
mkdir -p "$VDIR" && chmod 0755 "$VDIR"
OUT=$WORK/out-live
kiln_start --source "$SRC" --out "$OUT" -- /bin/sh -c '
  mkdir -p out && echo ran > out/ran
  # setuid/setgid programs of the host: one that keeps running (ssh-agent,
  # setgid), the others for their outcome.
  [ -x /usr/bin/ssh-agent ] && /usr/bin/ssh-agent -D -a /tmp/agent.sock > out/ssh-agent.txt 2>&1 &
  /usr/bin/su root -c "id -u > /workspace/out/su-id" < /dev/null > out/su.txt 2>&1
  echo "id -u > /workspace/out/newgrp-id" | /usr/bin/newgrp > out/newgrp.txt 2>&1
  /usr/bin/passwd < /dev/null > out/passwd.txt 2>&1
  sleep 0.3
  /workspace/attack wait-file '"$VDIR"'/ready 20 || exit 3
  for b in suid-ns suid-root fcap; do '"$VDIR"'/$b ids > out/$b.txt 2>&1; done
  /usr/bin/mount -t tmpfs none /tmp > out/mount.txt 2>&1; echo "$?" > out/mount-status
  id -u > out/id-after
  echo done > out/done'

if wait_output '^READY' 10; then
  init=$(sandbox_init "$KPID")
  procs=$(sandbox_procs "$KPID" | tr '\n' ' ')
  sh_pid=${procs%% *}
  BUID=$(proc_status "$sh_pid" Uid | awk '{print $1}')
  R=$((BUID - 1000))
  diag "build uid on the host: $BUID (inner root $R); processes: $procs"
  check "live: the build's host uid is in kiln's range (>= 0x70000000)" -- test "${BUID:-0}" -ge $((0x70000000))
  check "live: the build's host uid is not the caller's ($(id -u))" -- test "$BUID" != "$(id -u)"
  check "live: inner root is slot-aligned (multiple of 65536 above the base)" -- \
    test $(((R - 0x70000000) % 65536)) -eq 0
  check "live: init runs as the inner root $R on the host, not as 0" -- \
    test "$(proc_status "$init" Uid | awk '{print $1}')" = "$R"
  comms=""
  for p in $procs; do
    c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
    comms="$comms $c"
    uids=$(proc_status "$p" Uid | tr -s '\t ' ' ')
    gids=$(proc_status "$p" Gid | tr -s '\t ' ' ')
    check "live $c ($p): all four uids are $BUID (got $uids)" -- test "$uids" = "$BUID $BUID $BUID $BUID"
    check "live $c ($p): all four gids are the build's" -- test "$gids" = "$BUID $BUID $BUID $BUID"
    check "live $c ($p): no supplementary groups" -- test -z "$(proc_status "$p" Groups | tr -d ' \t')"
    for k in CapInh CapPrm CapEff CapBnd CapAmb; do
      check "live $c ($p): $k is empty" -- test "$(proc_status "$p" $k)" = "$ZERO"
    done
    check "live $c ($p): NoNewPrivs 1" -- test "$(proc_status "$p" NoNewPrivs)" = 1
    check "live $c ($p): Seccomp 2 (filter)" -- test "$(proc_status "$p" Seccomp)" = 2
  done
  if [ -g /usr/bin/ssh-agent ]; then
    check "live: the setgid ssh-agent was caught running (checked above)" -- grep -qw ssh-agent <<<"$comms"
  fi

  # Plant, as the host, binaries owned by the sandbox's own root: setuid
  # and setgid, and one with file capabilities (a v3 xattr whose rootid is
  # that root, which the kernel honours inside that user namespace).
  cp "$KILN_ATTACK" "$VDIR/suid-ns" && chown "$R:$R" "$VDIR/suid-ns" && chmod 6755 "$VDIR/suid-ns"
  cp "$KILN_ATTACK" "$VDIR/suid-root" && chown 0:0 "$VDIR/suid-root" && chmod 6755 "$VDIR/suid-root"
  cp "$KILN_ATTACK" "$VDIR/fcap" && chown "$R:$R" "$VDIR/fcap" && chmod 0755 "$VDIR/fcap"
  "$KPY" -c '
import os, struct, sys
# VFS_CAP_REVISION_3 | EFFECTIVE, all capabilities permitted, rootid
v = struct.pack("<IIIIII", 0x03000001, 0xffffffff, 0, 0xffffffff, 0, int(sys.argv[2]))
os.setxattr(sys.argv[1], "security.capability", v)' "$VDIR/fcap" "$R"
  check "plant: the file-capability xattr is set (v3, rootid $R)" -- \
    "$KPY" -c 'import os,sys; os.getxattr(sys.argv[1], "security.capability")' "$VDIR/fcap"
  ctl=$(setpriv --reuid=65534 --regid=65534 --clear-groups -- "$VDIR/suid-ns" ids 2>&1)
  check "control: the planted setuid binary does switch euid on the host (euid=$R)" -- \
    grep -q "^ruid=65534 euid=$R " <<<"$ctl"
  touch "$VDIR/ready"
else
  ok 1 "live: the sandbox never got ready"
  diag_lines <"$WORK/err.txt"
fi
kiln_finish 30
check "live: sandbox ran to its end (exit 0, got $RC)" -- test "$RC" -eq 0
check "live: sanity marker exported" -- test "$(cat "$OUT/ran" 2>/dev/null)" = ran
check "live: sanity: the build got past the planted binaries" -- test -f "$OUT/done"
expect_ids() {  # FILE DESC
  local f=$OUT/$1
  check "$2: ruid/euid/suid stay 1000" -- grep -q '^ruid=1000 euid=1000 suid=1000$' "$f"
  check "$2: rgid/egid/sgid stay 1000" -- grep -q '^rgid=1000 egid=1000 sgid=1000$' "$f"
  check "$2: CapEff empty" -- grep -qE "^CapEff:[[:space:]]+$ZERO$" "$f"
  check "$2: CapPrm empty" -- grep -qE "^CapPrm:[[:space:]]+$ZERO$" "$f"
}
expect_ids suid-ns.txt "setuid+setgid binary owned by the sandbox's root"
expect_ids suid-root.txt "setuid+setgid binary owned by host root"
expect_ids fcap.txt "binary with all file capabilities"
check "setuid mount(8) did not mount (status $(cat "$OUT/mount-status" 2>/dev/null))" -- \
  test "$(cat "$OUT/mount-status" 2>/dev/null)" != 0
check "su did not run its command as root" -- bash -c '[ ! -e "$1" ] || [ "$(cat "$1")" != 0 ]' _ "$OUT/su-id"
check "newgrp's shell still runs as 1000" -- bash -c '[ ! -e "$1" ] || [ "$(cat "$1")" = 1000 ]' _ "$OUT/newgrp-id"
check "uid is still 1000 afterwards" -- test "$(cat "$OUT/id-after" 2>/dev/null)" = 1000

# ---- 3. setuid/setgid files, file capabilities and devices in outputs ----
# The source brings a setgid output directory and a sticky one: copy-in
# must not keep them (and the export must not either).
mkdir -p "$SRC/out/sticky"
chmod 2775 "$SRC/out"
chmod 1777 "$SRC/out/sticky"
cp "$KILN_ATTACK" "$SRC/suid-src" && chmod 6755 "$SRC/suid-src"
OUT=$WORK/out-plant
kiln_run --source "$SRC" --out "$OUT" -- /bin/sh -c '
  echo ran > out/ran
  A=/workspace/attack
  /workspace/attack stat /workspace/out /workspace/out/sticky /workspace/suid-src
  ln /workspace/suid-src out/suid-src-link; mv /workspace/suid-src out/suid-src
  for n in chmod fchmod fchmodat fchmodat2 fchmodat2b coreutils-u coreutils-g py; do
    cp /workspace/attack out/$n; done
  $A chmod out/chmod 04755
  $A fchmod out/fchmod 02755
  $A fchmodat out/fchmodat 06755
  $A fchmodat2 out/fchmodat2 04755
  $A fchmodat2 out/fchmodat2b 02755 0x100
  $A create out/create 04755
  $A creat out/creat 02755
  $A open-creat out/open-creat 06755
  $A mknod out/mknod-reg f 04755
  $A mkdir out/sgid-dir 02755
  $A mkdirat out/sgid-dir2 02755
  chmod u+s out/coreutils-u; chmod g+s out/coreutils-g; chmod g+s out/sgid-dir
  install -m 4755 /workspace/attack out/installed
  mkdir -p out/sub/inherit; touch out/sub/inherit/f
  python3 -c "import os; os.chmod(\"out/py\", 0o4755)"
  cp /workspace/attack out/fcap
  python3 -c "import os; os.setxattr(\"out/fcap\", \"security.capability\", bytes.fromhex(\"01000002ffffffff00000000ffffffff00000000\"))" 2>&1
  # device nodes, and special files the export must skip
  $A mknod out/null c 1 3
  $A mknodat out/vda b 254 0
  $A mknod out/mem c 1 1 0666
  mknod out/mknod-tool c 1 3 2>&1
  $A mknod out/fifo p
  $A mknodat out/sock s
  $A stat out/*
  echo done > out/done'
check "plant: sandbox ran (exit 0, got $RC)" -- test "$RC" -eq 0
check "plant: sanity marker exported" -- test "$(cat "$OUT/ran" 2>/dev/null)" = ran
check "plant: the script ran to its end" -- test -f "$OUT/done"
check "plant: the export happened (no error)" -- test "$(report_py 'r["export"]["error"]')" = null
check "plant: exported files are there (the check below is not vacuous)" -- \
  test -f "$OUT/chmod" -a -f "$OUT/fcap" -a -d "$OUT/sub/inherit"

sp=$(special_files "$OUT")
check "plant: nothing exported is setuid, setgid, sticky, a device, fifo or socket" -- test -z "$sp"
[ -n "$sp" ] && diag_lines <<<"$sp"
check "plant: the exported setgid-source out/ dir is not setgid on the host" -- \
  test $(( $(stat -c '%#a' "$OUT") & 07000 )) -eq 0
check "plant: no security.capability xattr on the exported file" -- \
  "$KPY" -c 'import os,sys
try: os.getxattr(sys.argv[1], "security.capability")
except OSError: sys.exit(0)
sys.exit(1)' "$OUT/fcap"
expect_out "plant: copy-in dropped setgid from the source's out/" '^stat /workspace/out: dir mode=0775 '
expect_out "plant: copy-in dropped sticky from the source's out/sticky" '^stat /workspace/out/sticky: dir mode=0777 '
expect_out "plant: copy-in dropped setuid/setgid from a source file" '^stat /workspace/suid-src: file mode=0755 '

# Each road to a setuid bit refused by seccomp, and counted.
expect_out "chmod(2) 04755 refused" '^chmod out/chmod 4755: EPERM '
expect_out "fchmod(2) 02755 refused" '^fchmod out/fchmod 2755: EPERM '
expect_out "fchmodat(2) 06755 refused" '^fchmodat out/fchmodat 6755: EPERM '
expect_out "fchmodat2(2) 04755 refused" '^fchmodat2 out/fchmodat2 4755: EPERM '
expect_out "fchmodat2(2) 02755 AT_SYMLINK_NOFOLLOW refused" '^fchmodat2 out/fchmodat2b 2755: EPERM '
expect_out "openat(O_CREAT, 04755) refused" '^create out/create 4755: EPERM '
expect_out "creat(2) 02755 refused" '^creat out/creat 02755: EPERM '
expect_out "open(O_CREAT, 06755) refused" '^open-creat out/open-creat 06755: EPERM '
expect_out "mknod(S_IFREG|04755) refused" '^mknod out/mknod-reg f 0:0 4755: EPERM '
expect_out "mkdir(02755) refused" '^mkdir out/sgid-dir 2755: EPERM '
expect_out "mkdirat(02755) refused" '^mkdirat out/sgid-dir2 2755: EPERM '
expect_out "mknod /dev/null twin (c 1:3) refused" '^mknod out/null c 1:3 0644: EPERM '
expect_out "mknodat block device (b 254:0) refused" '^mknodat out/vda b 254:0 0644: EPERM '
expect_out "mknod /dev/mem twin (c 1:1) refused" '^mknod out/mem c 1:1 0666: EPERM '
expect_out "chmod inside shows no setuid bit after the attempt" '^stat out/chmod: file mode=0755 '
expect_out "coreutils chmod u+s had no effect" '^stat out/coreutils-u: file mode=0755 '
for s in chmod fchmod fchmodat fchmodat2 openat creat open mknod mknodat mkdir mkdirat; do
  expect_denied "$s" 1
done
expect_denied mknod 3
expect_denied fchmodat 3

done_testing
