#!/bin/bash
# THREATS.md §6: /proc, /sys, /dev. Writes to sysrq-trigger, core_pattern,
# modprobe, drop_caches and binfmt_misc; reads of kcore, kallsyms, keys and
# the other kernel-internals files; /sys; raw block and memory devices
# (open and mknod); cgroupfs mounted and release_agent written
# (CVE-2022-0492).
#
# Judged from the host: core_pattern, modprobe, the binfmt_misc entries and
# every cgroup v1 release_agent are as they were, no cgroup appeared, the
# kernel log got no sysrq line, the build's output carries no kernel
# address, nothing exported is a device, and the supervisor counted the
# mount and mknod denials.
. "$KILN_TESTS/attacks/lib.sh"
require_root
[ -x "${KILN_ATTACK:-}" ] || skip_all "KILN_ATTACK (the helper) is not built"

# ---- host state before --------------------------------------------------
snap() {
  for f in /proc/sys/kernel/core_pattern /proc/sys/kernel/modprobe /proc/sys/kernel/hostname; do
    printf '%s=%s\n' "$f" "$(cat "$f" 2>/dev/null)"
  done
  ls /proc/sys/fs/binfmt_misc 2>/dev/null | sed 's/^/binfmt: /'
  for ra in /sys/fs/cgroup/*/release_agent; do
    [ -e "$ra" ] && printf '%s=%s\n' "$ra" "$(cat "$ra" 2>/dev/null)"
  done
  # Top-level cgroups of every hierarchy; kiln's own (and other engineers'
  # concurrent runs) come and go, so its slot groups are left out.
  find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d 2>/dev/null | grep -v '/kiln-' | sort
}
snap >"$WORK/host.before"
SYSRQ_BEFORE=$(dmesg 2>/dev/null | grep -ci sysrq)

# ---- the attack ---------------------------------------------------------
SRC=$(new_src)
OUT=$WORK/out
kiln_run --source "$SRC" --out "$OUT" -- /bin/sh -c '
  mkdir -p out && echo ran > out/ran
  A=/workspace/attack
  $A open-write /proc/sysrq-trigger h
  $A open-write /proc/sys/kernel/core_pattern "|/workspace/evil %p"
  echo "|/workspace/evil" > /proc/sys/kernel/core_pattern
  $A open-write /proc/sys/kernel/modprobe /workspace/evil
  $A open-write /proc/sys/vm/drop_caches 3
  $A open-write /proc/sys/fs/binfmt_misc/register ":kilnpwn:E::kilnpwn::/workspace/evil:"
  $A open-write /proc/sys/kernel/hostname pwned
  $A read /proc/kcore /proc/kallsyms /proc/keys /proc/key-users /proc/timer_list \
    /proc/sched_debug /proc/vmallocinfo /proc/kmsg /proc/kpageflags /proc/config.gz
  $A stat /sys /sys/fs/cgroup /sys/kernel /proc/acpi /proc/scsi /proc/fs
  mkdir -p /tmp/sys /tmp/proc2
  $A mount sysfs /tmp/sys sysfs
  $A mount proc /tmp/proc2 proc
  ls -A /dev > out/dev-list
  $A read /dev/vda /dev/sda /dev/nvme0n1 /dev/zram0 /dev/loop0 /dev/mem /dev/kmem \
    /dev/port /dev/kmsg /dev/console /dev/tty0 /dev/fuse /dev/kvm
  $A mknod /tmp/vda b 254 0
  $A mknodat /workspace/out/vda b 254 0
  $A mknod /workspace/out/zram b 253 0
  $A mknod /workspace/out/mem c 1 1
  $A cgroup-escape /tmp/cg /workspace/out/release-agent-ran
  mkdir -p /tmp/cgm; mount -t cgroup -o memory cgroup /tmp/cgm 2>&1; echo "mount-tool=$?"
  $A syscall syslog 3 b:4096 4096
  dmesg 2>&1 | head -3
  echo done > out/done'
check "sandbox ran (exit 0, got $RC)" -- test "$RC" -eq 0
check "sanity: marker from inside exported" -- test "$(cat "$OUT/ran" 2>/dev/null)" = ran
check "sanity: the script ran to its end" -- test -f "$OUT/done"
check "sanity: /dev was listed" -- test -s "$OUT/dev-list"

# ---- host state after ---------------------------------------------------
snap >"$WORK/host.after"
check "HOST: core_pattern, modprobe, hostname, binfmt_misc, release_agents, cgroups unchanged" -- \
  diff "$WORK/host.before" "$WORK/host.after"
check "HOST: no binfmt_misc entry registered" -- test ! -e /proc/sys/fs/binfmt_misc/kilnpwn
check "HOST: no cgroup named kilnpwn anywhere" -- \
  test -z "$(find /sys/fs/cgroup -maxdepth 3 -name kilnpwn 2>/dev/null)"
if [ -e /proc/sysrq-trigger ]; then
  check "HOST: the kernel log got no sysrq line" -- test "$(dmesg 2>/dev/null | grep -ci sysrq)" = "$SYSRQ_BEFORE"
else
  diag "no /proc/sysrq-trigger on this kernel (CONFIG_MAGIC_SYSRQ off)"
  expect_out "sysrq-trigger absent in the sandbox too" '^open-write /proc/sysrq-trigger: (ENOENT|EACCES|EROFS) '
fi
check "HOST: the release_agent payload was never run" -- test ! -e "$OUT/release-agent-ran"
sp=$(special_files "$OUT")
check "HOST: nothing exported is a device (or setuid, fifo, socket)" -- test -z "$sp"
[ -n "$sp" ] && diag_lines <<<"$sp"

# No kernel address in anything the build printed. Control: root on the
# host does see real addresses in /proc/kallsyms, so the pattern would match.
addr='^[0-9a-f]{16} [a-zA-Z] '
check "control: the host's /proc/kallsyms has non-zero addresses (pattern is live)" -- \
  bash -c 'grep -E "$1" /proc/kallsyms | grep -qv "^0000000000000000"' _ "$addr"
check "HOST: no kernel symbol address in the build's output" -- \
  bash -c '! grep -E "$1" "$2" | grep -qv "^0000000000000000"' _ "$addr" "$WORK/out.txt"
check "HOST: no kernel text address (ffffffff8...) in the build's output" -- \
  bash -c '! grep -qE "ffffffff[89a-f][0-9a-f]{7}" "$1"' _ "$WORK/out.txt"

# ---- inside: each refusal ----------------------------------------------
for f in core_pattern modprobe; do
  expect_out "/proc/sys/kernel/$f: write refused" "^open-write /proc/sys/kernel/$f: (EROFS|EACCES|ENOENT) "
done
expect_out "/proc/sys/vm/drop_caches: write refused" '^open-write /proc/sys/vm/drop_caches: (EROFS|EACCES) '
expect_out "binfmt_misc register: refused" '^open-write /proc/sys/fs/binfmt_misc/register: (EROFS|EACCES|ENOENT) '
expect_out "/proc/sys/kernel/hostname: write refused" '^open-write /proc/sys/kernel/hostname: (EROFS|EACCES) '
for f in kcore kallsyms keys key-users timer_list sched_debug vmallocinfo kmsg kpageflags config.gz; do
  expect_out "/proc/$f: masked or absent (nothing read)" "^read /proc/$f: (ok 0|ENOENT |EACCES |EPERM )"
done
expect_out "/sys is absent" '^stat /sys: ENOENT$'
expect_out "/proc/acpi is masked (empty) or absent" '^stat /proc/acpi: (dir mode=0555 uid=[0-9]+ gid=[0-9]+ rdev=0:0 size=[0-9]+|ENOENT)$'
expect_out "sysfs cannot be mounted" '^mount sysfs on /tmp/sys \(sysfs\): EPERM '
expect_out "a second procfs cannot be mounted" '^mount proc on /tmp/proc2 \(proc\): EPERM '
for d in vda sda nvme0n1 zram0 loop0 mem kmem port kmsg console tty0 fuse kvm; do
  expect_out "/dev/$d: absent" "^read /dev/$d: ENOENT "
done
check "/dev holds only the minimal set" -- \
  bash -c '! grep -vxE "fd|full|null|ptmx|pts|random|shm|stderr|stdin|stdout|tty|urandom|zero" "$1"' _ "$OUT/dev-list"
[ -e /dev/vda ] && diag "control: the host does have /dev/vda"
expect_out "mknod block device (vda 254:0) refused" '^mknod /tmp/vda b 254:0 0644: EPERM '
expect_out "mknodat block device into the outputs refused" '^mknodat /workspace/out/vda b 254:0 0644: EPERM '
expect_out "mknod block device (zram 253:0) refused" '^mknod /workspace/out/zram b 253:0 0644: EPERM '
expect_out "mknod /dev/mem (c 1:1) refused" '^mknod /workspace/out/mem c 1:1 0644: EPERM '
expect_out "CVE-2022-0492: unshare(user|mnt|cgroup) refused" '^cgroup-escape unshare: EPERM '
expect_out "CVE-2022-0492: cgroup v1 memory cannot be mounted" '^cgroup-escape mount-v1: EPERM '
expect_out "CVE-2022-0492: cgroup2 cannot be mounted" '^cgroup-escape mount-v2: EPERM '
expect_out "CVE-2022-0492: no release_agent to write" '^cgroup-escape release_agent .*: (ENOENT|EROFS|EACCES) '
expect_out "CVE-2022-0492: the host's release_agent is not reachable" '^cgroup-escape host-release_agent .*: (ENOENT|EROFS|EACCES) '
expect_out "mount(8) -t cgroup failed" '^mount-tool=[1-9]'
expect_out "syslog(2) (dmesg) refused" '^syscall syslog: EPERM '
expect_denied mount 6
expect_denied unshare 1
expect_denied mknod 3
expect_denied mknodat 1
expect_denied syslog 1

done_testing
