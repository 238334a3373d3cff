#!/bin/bash
# THREATS.md §4: kernel attack surface. Nested user namespaces (unshare,
# clone, clone3), the mount API old and new, io_uring, userfaultfd, bpf,
# perf_event_open, keyrings, open_by_handle_at, kexec and modules, raw and
# rare sockets, and the i386 / x32 syscall ABIs.
#
# Each attack is a realistic call made by the helper inside the sandbox.
# Judged from the host: the supervisor (outside the sandbox) counted each
# denial by name in the report, the errno is the one the policy promises,
# and nothing the attack would have produced was exported. Positive
# controls run the same helper outside the sandbox, unprivileged, to show
# that the calls work on this kernel when no sandbox is in the way.
. "$KILN_TESTS/attacks/lib.sh"
require_root
[ -x "${KILN_ATTACK:-}" ] || skip_all "KILN_ATTACK (the helper) is not built"

SRC=$(new_src)
OUT=$WORK/out

# ---- 1. the whole battery in one run ------------------------------------
kiln_run --source "$SRC" --out "$OUT" -- /bin/sh -c '
  mkdir -p out && echo ran > out/ran
  /workspace/attack -m /workspace/out/pwned-kernel kernel all
  echo "battery-exit=$?"
  /workspace/attack -m /workspace/out/pwned-unshare-cmd unshare user,mnt
  unshare -U -r id -u > out/unshare-tool 2>&1
  /workspace/attack -m /workspace/out/pwned-plain-clone clone 0
  echo done > out/done'
check "sandbox ran the battery (exit 0)" -- test "$RC" -eq 0
check "sanity: marker from inside exported" -- test "$(cat "$OUT/ran" 2>/dev/null)" = ran
check "sanity: the script ran to its end" -- test -f "$OUT/done"
expect_out "every kernel attack was refused (helper exit 1)" '^battery-exit=1$'

# NAME ERRNO SYSCALL: the attack, the errno the policy promises, the syscall
# the supervisor must have counted ("-" where the filter answers directly).
while read -r name errno sys; do
  [ -z "$name" ] && continue
  expect_out "$name refused with $errno" "^kernel $name: $errno "
  if [ "$sys" != "-" ]; then
    expect_denied "$sys" 1
  fi
done <<'EOF'
unshare-user EPERM unshare
unshare-all EPERM unshare
clone-newuser EPERM clone
clone-newuser-highbits EPERM clone
clone-newmnt EPERM clone
clone-newpid EPERM clone
clone-newnet EPERM clone
clone-newipc EPERM clone
clone-newuts EPERM clone
clone-newcgroup EPERM clone
clone3-newuser ENOSYS -
clone3 ENOSYS -
setns EPERM setns
mount-tmpfs EPERM mount
remount-usr-rw EPERM mount
umount-usr EPERM umount2
pivot-root EPERM pivot_root
chroot EPERM chroot
open-tree ENOSYS open_tree
open-tree-attr ENOSYS open_tree_attr
fsopen ENOSYS fsopen
fspick ENOSYS fspick
fsconfig ENOSYS fsconfig
fsmount ENOSYS fsmount
move-mount ENOSYS move_mount
mount-setattr ENOSYS mount_setattr
io-uring-setup ENOSYS io_uring_setup
userfaultfd EPERM userfaultfd
bpf EPERM bpf
perf-event-open EPERM perf_event_open
add-key ENOSYS add_key
keyctl ENOSYS keyctl
request-key ENOSYS request_key
name-to-handle-at ENOSYS name_to_handle_at
open-by-handle-at EPERM open_by_handle_at
kexec-load EPERM kexec_load
kexec-file-load EPERM kexec_file_load
init-module EPERM init_module
finit-module EPERM finit_module
delete-module EPERM delete_module
packet-socket EAFNOSUPPORT socket
packet-socket-highbits EAFNOSUPPORT socket
raw-socket EAFNOSUPPORT socket
raw6-socket EAFNOSUPPORT socket
inet-sock-packet EAFNOSUPPORT socket
netlink-audit EAFNOSUPPORT socket
vsock EAFNOSUPPORT socket
alg-socket EAFNOSUPPORT socket
af-key-socket EAFNOSUPPORT socket
tipc-socket EAFNOSUPPORT socket
socketpair-inet EAFNOSUPPORT socketpair
personality EPERM personality
iopl EPERM iopl
ioperm EPERM ioperm
syslog EPERM syslog
memfd-secret ENOSYS memfd_secret
fanotify-init EPERM fanotify_init
swapon EPERM swapon
reboot EPERM reboot
acct EPERM acct
vhangup EPERM vhangup
quotactl EPERM quotactl
EOF

# Every namespace flag of clone, each attempt counted (7 flags, the plain
# CLONE_NEWUSER and its high-bits twin): 9 and more.
expect_denied clone 9
expect_denied unshare 3
expect_denied mount 2
expect_denied socket 10
total=$(report_get seccomp_denials)
check "report total seccomp_denials ($total) >= 60" -- test "${total:-0}" -ge 60

expect_out "unshare(user|mnt) refused" '^unshare user,mnt: EPERM '
check "util-linux unshare -U -r did not become root in a new namespace" -- \
  test "$(tr -d '\n' <"$OUT/unshare-tool" 2>/dev/null)" != 0
expect_out "a plain clone (fork) still works: the denial is about namespaces" '^clone 0: ok '
for m in pwned-kernel pwned-unshare-cmd; do
  check "no marker $m exported (no attack succeeded)" -- test ! -e "$OUT/$m"
done

# ---- 2. positive controls: the same calls outside the sandbox ------------
# Unprivileged (nobody), so the sandbox's refusals are not just "not root".
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups --"
if command -v setpriv >/dev/null; then
  ctl=$($NOBODY "$KILN_ATTACK" kernel clone3 userfaultfd perf-event-open unshare-user 2>&1)
  diag "host control (uid 65534): $(echo "$ctl" | tr '\n' ';')"
  check "control: clone3 works outside, so ENOSYS inside is the filter" -- \
    grep -q '^kernel clone3: ok' <<<"$ctl"
  check "control: userfaultfd(UFFD_USER_MODE_ONLY) works outside for anyone" -- \
    grep -q '^kernel userfaultfd: ok' <<<"$ctl"
  if [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -le 2 ]; then
    check "control: perf_event_open on oneself works outside" -- \
      grep -q '^kernel perf-event-open: ok' <<<"$ctl"
  fi
  if grep -q '^kernel unshare-user: ok' <<<"$ctl"; then
    ok 0 "control: unprivileged user namespaces are enabled on this host (the sandbox's EPERM is its own)"
  else
    diag "unprivileged user namespaces are disabled on this host"
  fi
fi

# ---- 3. the i386 ABI: int $0x80 kills the process -----------------------
mkdir -p "$WORK/hostctl"
"$KILN_ATTACK" int80-mkdir "$WORK/hostctl/int80" >/dev/null 2>&1
if [ -d "$WORK/hostctl/int80" ]; then
  ok 0 "control: i386 mkdir through int \$0x80 works on this host (IA32 emulation on)"
else
  diag "IA32 emulation is off on this host; int \$0x80 fails everywhere"
fi

OUT2=$WORK/out-int80
kiln_run --source "$SRC" --out "$OUT2" -- /bin/sh -c '
  mkdir -p out && echo ran > out/ran
  exec /workspace/attack int80-mkdir /workspace/out/int80-pwned'
check "int80: kiln exit code is 159 (128 + SIGSYS), got $RC" -- test "$RC" -eq 159
check "int80: report signal is 31 (SIGSYS)" -- test "$(report_get signal)" = 31
check "int80: report reason is signaled" -- test "$(report_get reason)" = signaled
check "int80: sanity marker exported" -- test "$(cat "$OUT2/ran" 2>/dev/null)" = ran
check "int80: the i386 mkdir had no effect (not exported)" -- test ! -e "$OUT2/int80-pwned"
expect_out "int80: the helper got as far as the call" '^int80 39: calling$'

# A harmless i386 call (getpid) inside a shell that survives: the helper
# alone is killed, at its first i386 syscall.
OUT3=$WORK/out-int80b
kiln_run --source "$SRC" --out "$OUT3" -- /bin/sh -c '
  mkdir -p out
  /workspace/attack int80 20; echo "$?" > out/int80-status
  /workspace/attack -m /workspace/out/pwned-x32 x32 39; echo "$?" > out/x32-status'
check "int80 getpid: the shell went on (exit 0)" -- test "$RC" -eq 0
check "int80 getpid: helper died of SIGSYS (status 159 seen inside)" -- \
  test "$(cat "$OUT3/int80-status" 2>/dev/null)" = 159
check "x32 getpid: helper died of SIGSYS (status 159 seen inside)" -- \
  test "$(cat "$OUT3/x32-status" 2>/dev/null)" = 159
check "x32 getpid: no result marker" -- test ! -e "$OUT3/pwned-x32"

# ---- 4. the x32 ABI: nr | 0x40000000 kills the process ------------------
ctl=$("$KILN_ATTACK" x32-mkdir "$WORK/hostctl/x32" 2>&1)
diag "host control x32: $(echo "$ctl" | tail -1)"
OUT4=$WORK/out-x32
kiln_run --source "$SRC" --out "$OUT4" -- /bin/sh -c '
  mkdir -p out && echo ran > out/ran
  exec /workspace/attack x32-mkdir /workspace/out/x32-pwned'
check "x32: kiln exit code is 159, got $RC" -- test "$RC" -eq 159
check "x32: report signal is 31 (SIGSYS)" -- test "$(report_get signal)" = 31
check "x32: sanity marker exported" -- test "$(cat "$OUT4/ran" 2>/dev/null)" = ran
check "x32: the x32 mkdir had no effect (not exported)" -- test ! -e "$OUT4/x32-pwned"

done_testing
