#!/bin/bash
# Class 12, identity: the host's hostname and clock. The build sees its own
# hostname ("kiln") and identity ("builder"), cannot change the host's
# hostname, domain name or clock, and finds nothing that identifies the host
# (/etc/machine-id). Judged on the host: hostname, domain name and clock
# after the run, and what the build exported.
. "$KILN_TESTS/attacks/lib.sh"
require_root

HOSTNAME0=$(hostname)
DOMAIN0=$(cat /proc/sys/kernel/domainname)
ME=$(id -un)

read -r -d '' INNER <<'EOF'
mkdir -p out && echo ran > out/sanity
{
echo "hostname $(hostname)"
echo "uname-n $(uname -n)"
echo "proc-hostname $(cat /proc/sys/kernel/hostname)"
echo "proc-domain $(cat /proc/sys/kernel/domainname)"
echo "etc-hostname $(cat /etc/hostname)"
echo "id-un $(id -un)"
echo "id-u $(id -u)"
echo "whoami $(whoami)"
echo "user $USER $LOGNAME $HOME"
hostname evil-hostname 2>/dev/null; echo "set-hostname $?"
python3 -c 'import socket; socket.sethostname("evil-py")' 2>/dev/null; echo "py-sethostname $?"
echo evil-proc > /proc/sys/kernel/hostname 2>/dev/null; echo "proc-write-hostname $?"
domainname evil-domain 2>/dev/null; echo "set-domainname $?"
python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("setdomainname", libc.setdomainname(b"evil-dom", 8), ctypes.get_errno())' 2>&1
echo "hostname-after $(hostname)"
date -s "2001-01-01 00:00:00" >/dev/null 2>&1; echo "date-s $?"
python3 -c 'import time; time.clock_settime(time.CLOCK_REALTIME, 1e9)' 2>/dev/null; echo "clock_settime $?"
python3 - <<'PY'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
class TV(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("u", ctypes.c_long)]
print("settimeofday", libc.settimeofday(ctypes.byref(TV(1000000000, 0)), None), ctypes.get_errno())
class Timex(ctypes.Structure):  # struct timex: modes first, then enough room
    _fields_ = [("modes", ctypes.c_uint)] + [("pad%d" % i, ctypes.c_long) for i in range(40)]
t = Timex(); t.modes = 0x0100 | 0x0001   # ADJ_SETOFFSET | ADJ_OFFSET
print("adjtimex", libc.adjtimex(ctypes.byref(t)), ctypes.get_errno())
print("clock_adjtime", libc.clock_adjtime(0, ctypes.byref(t)), ctypes.get_errno())
print("stime-like", libc.clock_settime(0, ctypes.byref(TV(1000000000, 0))), ctypes.get_errno())
PY
echo "date-after $(date +%s)"
for f in /etc/machine-id /var/lib/dbus/machine-id /sys/class/dmi/id/product_uuid /etc/hostid /etc/ssh; do
  if [ -e "$f" ]; then echo "exists $f"; else echo "absent $f"; fi
done
} > out/id.txt 2>&1
EOF
T_BEFORE=$(date +%s)
kiln_run --out "$WORK/o" --timeout 60 -- bash -c "$INNER"
T_AFTER=$(date +%s)
O=$WORK/o
v() { awk -v k="$1" '$1 == k {sub(/^[^ ]+ /, ""); print; exit}' "$O/id.txt" 2>/dev/null; }
sed 's/^/# inside: /' "$O/id.txt" 2>/dev/null
check "sanity: the build ran (rc=$RC)" -- test "$RC" -eq 0 -a -f "$O/sanity" -a -s "$O/id.txt"

# hostname and domain name
check "hostname inside is kiln ($(v hostname))" -- test "$(v hostname)" = kiln
check "uname -n, /proc/sys/kernel/hostname and /etc/hostname agree" -- \
  test "$(v uname-n)" = kiln -a "$(v proc-hostname)" = kiln -a "$(v etc-hostname)" = kiln
check "host's hostname ($HOSTNAME0) differs from the sandbox's" -- test "$HOSTNAME0" != kiln
check "host's domain name is not visible inside" -- bash -c "[ '$DOMAIN0' = '(none)' ] || [ \"\$(awk '\$1==\"proc-domain\"{print \$2}' '$O/id.txt')\" != '$DOMAIN0' ]"
check "hostname evil, sethostname, /proc write all failed inside" -- \
  test "$(v set-hostname)" != 0 -a "$(v py-sethostname)" != 0 -a "$(v proc-write-hostname)" != 0
check "setdomainname failed inside" -- bash -c "grep -Eq '^setdomainname -1 ' '$O/id.txt'"
check "the sandbox's hostname is still kiln after the attempts" -- test "$(v hostname-after)" = kiln
check "host's hostname unchanged ($(hostname))" -- test "$(hostname)" = "$HOSTNAME0"
check "host's domain name unchanged ($(cat /proc/sys/kernel/domainname))" -- test "$(cat /proc/sys/kernel/domainname)" = "$DOMAIN0"

# clock
check "date -s failed inside" -- test "$(v date-s)" != 0
check "clock_settime failed inside" -- test "$(v clock_settime)" != 0
check "settimeofday failed (EPERM)" -- grep -Eq '^settimeofday -1 1$' "$O/id.txt"
check "adjtimex / clock_adjtime with modes failed (EPERM)" -- \
  bash -c "grep -Eq '^adjtimex -1 1\$' '$O/id.txt' && grep -Eq '^clock_adjtime -1 1\$' '$O/id.txt'"
IN_T=$(v date-after)
check "clock inside is still the real time ($IN_T)" -- test "${IN_T:-0}" -ge "$T_BEFORE" -a "${IN_T:-0}" -le $((T_AFTER + 1))
T_NOW=$(date +%s)
check "host clock unchanged: $T_BEFORE <= $T_NOW <= $T_AFTER + 5" -- test "$T_NOW" -ge "$T_BEFORE" -a "$T_NOW" -le $((T_AFTER + 5))
check "report's wall time agrees with the host's clock" -- \
  test "$(report_get wall_time_ms)" -le $(((T_AFTER - T_BEFORE + 2) * 1000))

# identity
check "id -un inside is builder, uid 1000 ($(v id-un), $(v id-u))" -- test "$(v id-un)" = builder -a "$(v id-u)" = 1000
check "whoami / USER / LOGNAME / HOME are the builder's" -- \
  test "$(v whoami)" = builder -a "$(v user)" = "builder builder /home/builder"
check "the host user ($ME) is not the build's identity" -- test "$(v id-un)" != "$ME" -a "$(v whoami)" != "$ME"
for f in /etc/machine-id /var/lib/dbus/machine-id /sys/class/dmi/id/product_uuid /etc/hostid /etc/ssh; do
  check "$f absent inside" -- grep -qx "absent $f" "$O/id.txt"
done
if [ -s /etc/machine-id ]; then
  check "the host's machine-id appears nowhere in the output" -- not_in_outputs "$(cat /etc/machine-id)" "$O"
fi
if [ "${#HOSTNAME0}" -ge 4 ]; then
  check "the host's hostname appears nowhere in the output" -- not_in_outputs "$HOSTNAME0" "$O"
fi

# --fake-root: uid 0 inside, still no way to change hostname or clock.
T_B2=$(date +%s)
kiln_run --fake-root -- bash -c 'id -u; hostname evil-root; echo "hn $?"; date -s "2001-01-01" >/dev/null 2>&1; echo "date $?"; hostname'
check "--fake-root: sanity, uid 0 inside (rc=$RC)" -- bash -c "[ '$RC' -eq 0 ] && [ \"\$(head -1 '$WORK/out.txt')\" = 0 ]"
check "--fake-root: hostname and date -s fail" -- bash -c "grep -Eq '^hn [1-9]' '$WORK/out.txt' && grep -Eq '^date [1-9]' '$WORK/out.txt' && [ \"\$(tail -1 '$WORK/out.txt')\" = kiln ]"
check "--fake-root: host's hostname unchanged" -- test "$(hostname)" = "$HOSTNAME0"
T_A2=$(date +%s)
check "--fake-root: host clock unchanged ($T_B2 -> $T_A2)" -- test "$T_A2" -ge "$T_B2" -a "$T_A2" -le $((T_B2 + 10))

done_testing
