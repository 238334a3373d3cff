#!/bin/bash
# Class 10, outputs: symlinks and hardlinks planted for the export step,
# symlink-then-file, huge and sparse files, names that are not valid UTF-8,
# setuid bits, special files, and the --out directory itself. Judged on the
# host: what the exported tree contains, what host files look like after.
. "$KILN_TESTS/attacks/lib.sh"
require_root

TAG=$(canary)
R=${TAG#KILNCANARY}

# A line of the host's /etc/passwd that the sandbox's generated one lacks.
PWLINE=$(head -1 /etc/passwd)
check "sanity: host /etc/passwd has a distinctive first line" -- test -n "$PWLINE"

# Host paths the planted links point at: they exist on the host.
HT=/tmp/host-target-$R
HTD=/tmp/host-target-dir-$R
echo "host original $TAG" > "$HT"
mkdir -p "$HTD"
chmod 0777 "$HTD"
at_exit "rm -rf '$HT' '$HTD'"
HT_SHA=$(sha "$HT")

# --- the planted tree --------------------------------------------------------
read -r -d '' INNER <<'EOF'
R=$1 HT=$2 HTD=$3
cd /workspace && mkdir -p out && echo "ran $R" > out/sanity
# symlinks to host secrets
ln -s /etc/passwd out/passwd
ln -s /etc/shadow out/shadow
ln -s /root out/rootdir
ln -s ../../../../../../../../etc/passwd out/up-passwd
# a symlinked directory with files "beneath" it
ln -s / out/d
echo beneath > "out/d/tmp/beneath-$R"; echo "beneath-write $?" >> out/log
ln -s /workspace/out out/loop
# hardlinks
echo "secret $R" > secretfile
ln secretfile out/h; echo "hardlink-ws $?" >> out/log
echo "pair $R" > out/h1 && ln out/h1 out/h2
ln /etc/passwd out/hp 2>out/hp.err; echo "hardlink-etc $?" >> out/log
ln /usr/bin/bash out/hb 2>/dev/null; echo "hardlink-usr $?" >> out/log
# symlink to a path that exists on the host; writes go to the sandbox's /tmp
ln -s "$HT" out/a
echo pwned > out/a; echo "write-through-a $?" >> out/log
mkdir -p "$HTD" && echo pwned > "$HTD/evil"
ln -s "$HTD" out/adir
echo pwned > out/adir/evil2
# huge and sparse files
truncate -s 1T out/big 2>/dev/null; echo "truncate-1T $?" >> out/log
(dd if=/dev/zero of=out/big2 bs=1 count=1 seek=100G status=none) 2>/dev/null; echo "seek-100G $?" >> out/log
truncate -s 32M out/sparse; echo "truncate-32M $?" >> out/log
# names that are not valid UTF-8
printf 'x' > "out/bad$(printf '\377')"
mkdir "out/baddir$(printf '\300\257')" && echo inner > "out/baddir$(printf '\300\257')/f"
printf 'ok' > "out/good-é"
# setuid, setgid, sticky
echo '#!/bin/sh' > out/suid && chmod 0755 out/suid
chmod u+s out/suid 2>/dev/null; echo "chmod-u+s $?" >> out/log
python3 -c 'import os; os.chmod("out/suid", 0o6755)' 2>/dev/null; echo "py-chmod $?" >> out/log
python3 -c 'import os; os.close(os.open("out/suid2", os.O_CREAT | os.O_WRONLY, 0o4755))' 2>/dev/null; echo "py-open-4755 $?" >> out/log
install -m 4755 /dev/null out/suid3 2>/dev/null; echo "install-4755 $?" >> out/log
mkdir -m 1777 out/sticky; echo "mkdir-1777 $?" >> out/log
mkdir out/sgid && chmod g+s out/sgid 2>/dev/null; echo "chmod-g+s $?" >> out/log
# special files
mkfifo out/fifo; echo "mkfifo $?" >> out/log
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("out/sock")'; echo "socket $?" >> out/log
mknod out/null c 1 3 2>/dev/null; echo "mknod-c $?" >> out/log
mknod out/sda b 8 0 2>/dev/null; echo "mknod-b $?" >> out/log
echo done > out/done
exit 0
EOF
O=$WORK/o
kiln_run --out "$O" --disk 64M -- bash -c "$INNER" inner "$R" "$HT" "$HTD"
diag "$(tr '\n' ';' < "$O/log" 2>/dev/null)"
check "sanity: the build ran and exported (rc=$RC)" -- test "$RC" -eq 0 -a "$(cat "$O/sanity" 2>/dev/null)" = "ran $R" -a -f "$O/done"

# symlinks: recreated, never followed
for l in passwd:/etc/passwd shadow:/etc/shadow rootdir:/root up-passwd:../../../../../../../../etc/passwd d:/ a:$HT adir:$HTD; do
  n=${l%%:*}; t=${l#*:}
  check "out/$n is a symlink to $t on the host, not a copy" -- bash -c "[ -L '$O/$n' ] && [ \"\$(readlink '$O/$n')\" = '$t' ]"
done
check "no exported file holds host /etc/passwd content" -- bash -c "! grep -rqF -- '$PWLINE' '$O'"
check "no exported file holds the sandbox's /etc/passwd either (nothing was dereferenced)" -- bash -c "! grep -rqF 'kiln build user' '$O'"
check "out/d (-> /) not traversed: no 'beneath' file in the export" -- bash -c "[ -z \"\$(find '$O' -name 'beneath-*')\" ]"
check "the 'beneath' file did not land on the host's /tmp" -- test ! -e "/tmp/beneath-$R"
check "host file $HT is unchanged after export" -- test "$(sha "$HT")" = "$HT_SHA"
check "host dir $HTD is still empty after export" -- test -z "$(ls -A "$HTD")"
check "out/loop recreated as a symlink" -- test -L "$O/loop"

# hardlinks
check "hardlink to a workspace file exported as a regular file with its content" -- \
  bash -c "[ -f '$O/h' ] && [ ! -L '$O/h' ] && [ \"\$(cat '$O/h')\" = 'secret $R' ]"
check "hardlinked pair exported as independent files" -- \
  bash -c "[ -f '$O/h1' ] && [ -f '$O/h2' ] && [ \$(stat -c %i '$O/h1') != \$(stat -c %i '$O/h2') ] && [ \$(stat -c %h '$O/h1') -eq 1 ]"
echo changed > "$O/h1" 2>/dev/null
check "changing one of the pair leaves the other" -- test "$(cat "$O/h2" 2>/dev/null)" = "pair $R"
check "hardlink to /etc/passwd failed inside (EXDEV/EPERM)" -- \
  bash -c "grep -q '^hardlink-etc [1-9]' '$O/log' && grep -Eq 'cross-device|not permitted' '$O/hp.err'"
check "no out/hp, out/hb on the host" -- test ! -e "$O/hp" -a ! -e "$O/hb"

# huge and sparse
check "truncate -s 1T failed inside (RLIMIT_FSIZE)" -- grep -q '^truncate-1T [1-9]' "$O/log"
check "a write at offset 100G failed inside" -- grep -q '^seek-100G [1-9]' "$O/log"
check "out/big is not 1T on the host ($(stat -c %s "$O/big" 2>/dev/null))" -- test "$(stat -c %s "$O/big" 2>/dev/null || echo 0)" -le $((64 << 20))
check "out/sparse (32M) exported with its apparent size" -- test "$(stat -c %s "$O/sparse" 2>/dev/null)" = $((32 << 20))
DU=$(du -sk "$O" | cut -f1)
APP=$(find "$O" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
check "export stays sparse on the host (du ${DU} KiB < 1024)" -- test "$DU" -lt 1024
check "total apparent size of the export <= --disk ($APP)" -- test "$APP" -le $((64 << 20))

# names
check "the non-UTF-8 file is not on the host" -- bash -c "! ls -A '$O' | grep -qa \$'\\xff'"
check "the non-UTF-8 directory is not on the host" -- bash -c "! ls -A '$O' | grep -qa '^baddir'"
check "a valid UTF-8 name is exported" -- test -f "$O/good-é"
diag "export.skipped: $(report_py 'r["export"]["skipped"]')"
check "report export.skipped lists the non-UTF-8 file" -- \
  test "$(report_py 'any(s.startswith("bad") and not s.startswith("baddir") for s in r["export"]["skipped"])')" = true
check "report export.skipped lists the non-UTF-8 directory" -- \
  test "$(report_py 'any(s.startswith("baddir") for s in r["export"]["skipped"])')" = true

# modes
check "no setuid/setgid/sticky bit anywhere in the export" -- test -z "$(find "$O" -perm /7000)"
check "out/sticky exported without its sticky bit ($(stat -c %a "$O/sticky" 2>/dev/null))" -- test "$(stat -c %a "$O/sticky" 2>/dev/null)" = 777
check "out/suid exported, executable, no setuid ($(stat -c %a "$O/suid" 2>/dev/null))" -- test "$(stat -c %a "$O/suid" 2>/dev/null)" = 755

# special files
check "no fifo, socket or device node in the export" -- test -z "$(find "$O" -type p -o -type s -o -type c -o -type b)"
check "report export.skipped lists the fifo and the socket" -- \
  test "$(report_py 'sorted(s.split(":")[0] for s in r["export"]["skipped"] if s.split(":")[0] in ("fifo", "sock"))')" = '["fifo", "sock"]'
check "mknod of devices failed inside" -- bash -c "grep -q '^mknod-c [1-9]' '$O/log' && grep -q '^mknod-b [1-9]' '$O/log'"
check "export.error is null" -- test "$(report_py 'r["export"]["error"]')" = null

# --- more apparent bytes than --disk: the export is capped -----------------
O2=$WORK/o2
kiln_run --out "$O2" --disk 64M -- bash -c 'mkdir out && for i in 1 2 3 4; do truncate -s 60M out/s$i; done && echo RAN'
APP=$(find "$O2" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
ERR=$(report_py 'r["export"]["error"]')
check "cap: sanity, the build ran" -- grep -qx RAN "$WORK/out.txt"
check "cap: total apparent size on the host <= --disk ($APP)" -- test "$APP" -le $((64 << 20))
check "cap: the export error is reported ($ERR)" -- test -n "$ERR" -a "$ERR" != null
check "cap: kiln exits 1 although the command succeeded (rc=$RC)" -- test "$RC" -eq 1
check "cap: host disk usage of the export stays small" -- test "$(du -sk "$O2" | cut -f1)" -lt 1024

# --- directories nested deeper than the export allows ------------------------------
O5=$WORK/o5
kiln_run --out "$O5" -- bash -c 'd=out; for i in $(seq 400); do d=$d/d; done; mkdir -p "$d" && echo deep > "$d/f" && echo RAN'
ERR=$(report_py 'r["export"]["error"]')
check "deep nesting: sanity, the build ran" -- grep -qx RAN "$WORK/out.txt"
check "deep nesting: the export stops with an error ($(cut -c1-40 <<<"$ERR")...), rc 1 (rc=$RC)" -- \
  test -n "$ERR" -a "$ERR" != null -a "$RC" -eq 1
check "deep nesting: nothing deeper than 257 levels on the host" -- test -z "$(find "$O5" -mindepth 258 -print -quit 2>/dev/null)"

# --- /workspace/out itself is a symlink ----------------------------------------
O3=$WORK/o3
kiln_run --out "$O3" -- bash -c 'ln -s /etc out && echo ran'
check "out -> /etc: sanity, the build ran (rc=$RC)" -- grep -qx ran "$WORK/out.txt"
check "out -> /etc: nothing exported" -- test -z "$(ls -A "$O3" 2>/dev/null)"
ERR=$(report_py 'r["export"]["error"]')
check "out -> /etc: the export refused it (error reported: $ERR)" -- test -n "$ERR" -a "$ERR" != null

# --- a non-empty --out dir: refused before the build runs ----------------------
O4=$WORK/o4
mkdir -p "$O4"
echo "keep $TAG" > "$O4/keep"
KEEP_SHA=$(sha "$O4/keep")
kiln_run --out "$O4" -- bash -c "echo RAN-$R; mkdir -p out; echo evil > out/keep; echo new > out/new"
check "non-empty --out: refused with 125 (rc=$RC)" -- test "$RC" -eq 125
check "non-empty --out: one-line message naming --out" -- bash -c "[ \$(grep -c . '$WORK/err.txt') -eq 1 ] && grep -q -- '--out' '$WORK/err.txt'"
check "non-empty --out: the command never ran" -- bash -c "! grep -q 'RAN-$R' '$WORK/out.txt'"
check "non-empty --out: existing file untouched, nothing added" -- \
  bash -c "[ \"\$(sha256sum < '$O4/keep' | cut -d' ' -f1)\" = '$KEEP_SHA' ] && [ \"\$(ls -A '$O4')\" = keep ]"

# --- --out is a symlink -----------------------------------------------------------
TGT=$WORK/out-target
mkdir -p "$TGT"
ln -s "$TGT" "$WORK/out-link"
kiln_run --out "$WORK/out-link" -- bash -c "echo RAN-$R; mkdir -p out; echo planted > out/planted"
diag "--out symlink: rc=$RC, $(head -1 "$WORK/err.txt")"
check "--out symlink to a dir: refused or not followed (target dir untouched)" -- test -z "$(ls -A "$TGT")"
check "--out symlink: the link itself is still a symlink" -- test -L "$WORK/out-link"
ln -s "$WORK/absent-target" "$WORK/out-link2"
kiln_run --out "$WORK/out-link2" -- bash -c "mkdir -p out; echo planted > out/planted"
check "--out dangling symlink: nothing created at its target (rc=$RC)" -- test ! -e "$WORK/absent-target"

# --- Path traversal in archives (--source-archive): unpacked inside the
# sandbox; from the host, nothing may appear outside the workspace.
VICTIM="$WORK/arch-victim-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$VICTIM" && chmod 0777 "$VICTIM"
python3 - "$WORK" "$VICTIM" <<'PYEOF'
import io, os, sys, tarfile
work, victim = sys.argv[1], sys.argv[2]
def mk(name, entries):
    with tarfile.open(os.path.join(work, name), "w:gz") as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
def reg(n, data=b"pwned\n", mode=0o644):
    ti = tarfile.TarInfo(n); ti.size = len(data); ti.mode = mode; return (ti, data)
def sym(n, target):
    ti = tarfile.TarInfo(n); ti.type = tarfile.SYMTYPE; ti.linkname = target; return (ti, None)
rel = os.path.relpath(victim, "/")
mk("a-dotdot.tgz", [reg("../" * 12 + rel + "/dotdot")])
mk("a-abs.tgz", [reg(victim + "/abs")])
mk("a-symwrite.tgz", [sym("l", victim), reg("l/through")])
mk("a-symdir.tgz", [sym("d", "/"), reg("d" + victim + "/viadir")])
ti = tarfile.TarInfo("dev"); ti.type = tarfile.CHRTYPE; ti.devmajor = 1; ti.devminor = 3
mk("a-dev.tgz", [(ti, None)])
mk("a-suid.tgz", [reg("out/suid", b"#!/bin/sh\n", 0o6755)])
PYEOF
for a in dotdot abs symwrite symdir dev; do
  kiln_run --source-archive "$WORK/a-$a.tgz" -- sh -c 'echo ran-the-build'
  check "archive $a: refused with exit 65 (got $RC)" -- test "$RC" -eq 65
  check "archive $a: report reason is archive" -- test "$(report_get reason)" = archive
  check "archive $a: the build never ran" -- sh -c "! grep -q ran-the-build '$WORK/out.txt'"
done
check "archives: nothing was written into the host victim directory" -- test -z "$(ls -A "$VICTIM")"
kiln_run --source-archive "$WORK/a-suid.tgz" --out "$WORK/arch-out" -- sh -c 'ls -l out/suid'
check "archive suid: unpacked and exported (rc=$RC)" -- test "$RC" -eq 0 -a -f "$WORK/arch-out/suid"
check "archive suid: no setuid/setgid bit on the host" -- test ! -u "$WORK/arch-out/suid" -a ! -g "$WORK/arch-out/suid"

done_testing
