#!/bin/bash
# Class 11, persistence: anything left in /tmp, $HOME, the workspace,
# /dev/shm, /var/tmp, /run, SysV IPC or the source tree that the next job
# would see. Run 1 plants, run 2 (a fresh kiln run) looks. Judged on the
# host: run 2's exported listing, the host's mount table, cgroup directories,
# /tmp and IPC after both runs.
. "$KILN_TESTS/attacks/lib.sh"
require_root

TAG=$(canary)
R=${TAG#KILNCANARY}
# A SysV IPC key derived from the tag (31 bits, non-zero).
KEY=$(( (0x${R:0:8} & 0x7fffffff) | 1 ))

touch "$WORK/stamp"
sleep 1   # so that -newer below is unambiguous
MOUNTS0=$(awk '{$1=$2=""; print}' /proc/self/mountinfo | sort)
SLOTS0=$(find /sys/fs/cgroup -maxdepth 5 -type d -name 'kiln-*' 2>/dev/null | sort)

# --- run 1: plant -------------------------------------------------------------
read -r -d '' PLANT <<'EOF'
M=$1 KEY=$2
mkdir -p /workspace/out
for d in /tmp "$HOME" /workspace /dev/shm /var/tmp /run /etc /usr/local /home /; do
  if echo "$M" > "$d/persist-$M" 2>/dev/null; then echo "wrote $d"; else echo "refused $d"; fi
done >> /workspace/out/plant.log
mkdir -p "$HOME/.cache/$M" /workspace/.cache /tmp/.hidden-$M && echo "$M" > "$HOME/.cache/$M/x"
echo "$M" > /workspace/.cache/persist-$M
echo "export EVIL=$M" >> "$HOME/.bashrc"
echo "export EVIL=$M" >> "$HOME/.profile"
python3 - "$KEY" "$M" >> /workspace/out/plant.log 2>&1 <<'PY'
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
key = int(sys.argv[1])
shmid = libc.shmget(key, 4096, 0o1000 | 0o666)     # IPC_CREAT
print("shmget", shmid, ctypes.get_errno())
if shmid >= 0:
    libc.shmat.restype = ctypes.c_void_p
    addr = libc.shmat(shmid, None, 0)
    if addr not in (None, ctypes.c_void_p(-1).value):
        ctypes.memmove(addr, sys.argv[2].encode(), len(sys.argv[2]))
semid = libc.semget(key, 1, 0o1000 | 0o666)
print("semget", semid, ctypes.get_errno())
msqid = libc.msgget(key, 0o1000 | 0o666)
print("msgget", msqid, ctypes.get_errno())
PY
# A background process that would keep the files alive and re-plant.
setsid bash -c 'exec -a "$0" sleep 300' "$M-keeper" &
cp /workspace/out/plant.log /workspace/out/plant.done
sleep 1
EOF
kiln_start --out "$WORK/o1" -- bash -c "$PLANT" plant "$TAG" "$KEY"
INIT=$(sandbox_init "$KPID")
# init joins the run's cgroups while it builds the filesystem: wait for it.
for _ in $(seq 100); do
  CG1=$(cut -d: -f2- "/proc/$INIT/cgroup" 2>/dev/null | grep 'kiln-' | tr '\n' ' ')
  [ -n "$CG1" ] && break
  sleep 0.05
done
kiln_finish 20
diag "run 1: rc=$RC, cgroups: ${CG1:-?}"
diag "$(tr '\n' ';' < "$WORK/o1/plant.log" 2>/dev/null)"
check "run 1: sanity, the plant ran (rc=$RC)" -- test "$RC" -eq 0 -a -f "$WORK/o1/plant.done"
check "run 1: /tmp, \$HOME, /workspace, /dev/shm were writable" -- bash -c \
  "for d in /tmp /home/builder /workspace /dev/shm; do grep -qx \"wrote \$d\" '$WORK/o1/plant.log' || exit 1; done"
check "run 1: /run, /etc, /usr/local, /home, / were not" -- bash -c \
  "for d in /run /etc /usr/local /home /; do grep -qx \"refused \$d\" '$WORK/o1/plant.log' || exit 1; done"
check "run 1: the SysV segment was created inside its own IPC namespace" -- grep -Eq '^shmget [0-9]+ ' "$WORK/o1/plant.log"

# --- run 2: look ----------------------------------------------------------------
# The marker reaches run 2 in two pieces, so its own command line (visible in
# its ps) does not carry it.
read -r -d '' LOOK <<'EOF'
M=$1$2 KEY=$3
mkdir -p out
echo "ran $2" > out/sanity
ls -laR /tmp "$HOME" /workspace /dev/shm /var/tmp/ /run > out/listing 2>&1
find / -xdev -name "*$M*" 2>/dev/null > out/found
for f in /etc /run /usr/local /home /; do ls -la "$f"; done >> out/listing 2>&1
env > out/env
bash -lc 'echo "EVIL=$EVIL"' > out/login-env 2>&1
ps -eo args= > out/ps
python3 - "$KEY" > out/ipc 2>&1 <<'PY'
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
key = int(sys.argv[1])
print("shmget", libc.shmget(key, 0, 0), ctypes.get_errno())
print("semget", libc.semget(key, 0, 0), ctypes.get_errno())
print("msgget", libc.msgget(key, 0), ctypes.get_errno())
PY
ipcs -a >> out/ipc 2>&1
echo done > out/done
EOF
kiln_run --out "$WORK/o2" -- bash -c "$LOOK" look KILNCANARY "$R" "$KEY"
O=$WORK/o2
check "run 2: sanity, it ran and exported (rc=$RC)" -- test "$RC" -eq 0 -a "$(cat "$O/sanity" 2>/dev/null)" = "ran $R" -a -f "$O/done"
check "run 2: sanity, the listing is not empty" -- test -s "$O/listing"
check "run 2: no marker in /tmp, \$HOME, /workspace, /dev/shm, /var/tmp, /run" -- bash -c "! grep -qF '$TAG' '$O/listing'"
check "run 2: find / sees no file named after the marker" -- test ! -s "$O/found"
check "run 2: \$HOME/.bashrc and .profile plants not in effect" -- bash -c "! grep -qF '$TAG' '$O/env' '$O/login-env'"
check "run 2: run 1's background process is not there" -- bash -c "! grep -qF '$TAG' '$O/ps'"
check "run 2: run 1's SysV shm/sem/msg are gone (ENOENT = 2)" -- bash -c \
  "grep -qx 'shmget -1 2' '$O/ipc' && grep -qx 'semget -1 2' '$O/ipc' && grep -qx 'msgget -1 2' '$O/ipc'"
check "run 2: nothing of the marker anywhere in its export or output" -- not_in_outputs "$TAG" "$O"

# --- the source tree is not a channel to the next job ----------------------------
SRC=$(new_src)
echo "pristine $R" > "$SRC/file"
mkdir "$SRC/sub" && echo "sub $R" > "$SRC/sub/f"
SRC_SUM=$( (cd "$SRC" && find . -type f -exec sha256sum {} + | sort) )
kiln_run --source "$SRC" -- bash -c "cat file && echo tampered > file && echo new > new-$R && rm -rf sub && mkdir -p .git/hooks && echo evil > .git/hooks/pre-commit"
check "source: sanity, the build saw the source (rc=$RC)" -- bash -c "[ '$RC' -eq 0 ] && grep -qx 'pristine $R' '$WORK/out.txt'"
check "source: the host's source tree is unchanged" -- \
  test "$( (cd "$SRC" && find . -type f -exec sha256sum {} + | sort) )" = "$SRC_SUM"
kiln_run --source "$SRC" -- bash -c "cat file; ls -A"
check "source: the next job sees the pristine tree (rc=$RC)" -- bash -c \
  "[ '$RC' -eq 0 ] && grep -qx 'pristine $R' '$WORK/out.txt' && ! grep -q 'new-$R\|tampered\|^.git\$' '$WORK/out.txt'"

# --- the host, after all runs ---------------------------------------------------
sleep 0.5
MOUNTS1=$(awk '{$1=$2=""; print}' /proc/self/mountinfo | sort)
check "host: no mount added or removed" -- test "$MOUNTS1" = "$MOUNTS0"
[ "$MOUNTS1" = "$MOUNTS0" ] || diag "$(diff <(echo "$MOUNTS0") <(echo "$MOUNTS1") | head -5)"
# cg_leftover DIR: DIR still exists, stays empty for 3 s (a slot that another
# run took over meanwhile has members, or goes away).
cg_leftover() {
  local n=0
  while [ $n -lt 15 ]; do
    [ -d "$1" ] || return 1
    [ -n "$(cat "$1/cgroup.procs" 2>/dev/null)" ] && return 1
    sleep 0.2
    n=$((n + 1))
  done
  [ -d "$1" ]
}
LEFT=""
for c in $CG1; do
  p=${c#*:}; ctrls=${c%%:*}
  for ctrl in ${ctrls//,/ }; do
    cg_leftover "/sys/fs/cgroup/$ctrl$p" && LEFT="$LEFT /sys/fs/cgroup/$ctrl$p"
  done
done
check "host: run 1's cgroups were removed (${CG1:-none captured})${LEFT:+, left: $LEFT}" -- test -n "$CG1" -a -z "$LEFT"
NEW=""
for d in $(find /sys/fs/cgroup -maxdepth 5 -type d -name 'kiln-*' 2>/dev/null | sort); do
  grep -qxF "$d" <<<"$SLOTS0" && continue
  cg_leftover "$d" && NEW="$NEW $d"
done
check "host: no leftover kiln-* cgroup directory${NEW:+ ($NEW)}" -- test -z "$NEW"
LEFTF=$(find /tmp -xdev -maxdepth 4 -newer "$WORK/stamp" -uid +1879048191 2>/dev/null | head -5)
check "host: no new file in /tmp owned by a sandbox uid (>= 0x70000000)${LEFTF:+: $LEFTF}" -- test -z "$LEFTF"
check "host: no file named after the marker in /tmp, /var/tmp, /dev/shm, /run" -- \
  test -z "$(find /tmp /var/tmp /dev/shm /run -xdev -maxdepth 4 -name "*$TAG*" 2>/dev/null | head -1)"
# SysV objects of the host's IPC namespace created by a sandbox uid, or
# carrying run 1's key.
SYSV=$(for f in shm sem msg; do
  awk -v f=$f -v key="$KEY" 'NR > 1 {
    u = (f == "shm") ? $8 : (f == "sem") ? $5 : $8
    if (u + 0 >= 1879048192 || $1 + 0 == key) print f, $1, u }' "/proc/sysvipc/$f" 2>/dev/null
done)
check "host: no SysV shm/sem/msg of a sandbox uid or with run 1's key${SYSV:+ ($SYSV)}" -- test -z "$SYSV"
check "host: run 1's key $(printf '0x%08x' "$KEY") is not in the host's IPC namespace" -- \
  bash -c "! ipcs -a 2>/dev/null | grep -qi '$(printf '0x%08x' "$KEY")'"
check "host: run 1's background process is gone" -- wait_no_marker "$TAG-keeper" 3

done_testing
