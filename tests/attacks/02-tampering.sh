#!/bin/bash
# THREATS.md §2: tampering with what the host or the next build runs: host
# configuration and binaries, the kiln binary itself (runc CVE-2019-5736
# through /proc/PID/exe), the submitted source tree, and the toolchain.
#
# The victims are made as easy as possible to hit: world-writable files
# and directories planted under the host's /usr and /etc/ssl (both visible
# in the sandbox), a world-writable copy of kiln that runs as the
# supervisor, a world-writable source tree. Only the sandbox stands between
# the build and them; a positive control shows that the build's host uid
# could write them outside. Judged from the host: hashes, listings and
# modes unchanged, nothing new created, and a second build sees the
# original toolchain.
. "$KILN_TESTS/attacks/lib.sh"
require_root
[ -x "${KILN_ATTACK:-}" ] || skip_all "KILN_ATTACK (the helper) is not built"

TAG=$$-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
VDIR=/usr/local/lib/kiln-atk-$TAG
SSLV=/etc/ssl/kiln-atk-victim-$TAG
# The attacks that would touch shared host files are written so that even
# a total failure of the sandbox changes no byte (append nothing); what
# they would create is removed here if it was not there before.
CLEAN="'$VDIR' '$SSLV'"
for f in /usr/local/bin/cc /usr/local/bin/gcc /etc/ld.so.preload; do
  [ -e "$f" ] || CLEAN="$CLEAN '$f'"
done
at_exit "rm -rf $CLEAN"
mkdir -p "$VDIR"
cp /usr/bin/true "$VDIR/victim-bin"
echo "original config" >"$VDIR/victim.conf"
echo "original ssl" >"$SSLV"
chmod 0777 "$VDIR" "$VDIR/victim-bin"
chmod 0666 "$VDIR/victim.conf" "$SSLV"

# kiln itself, as a world-writable copy that is the supervisor of the run
# (so /proc/1/exe in the sandbox is this very file).
KCOPY=$WORK/kiln-copy
cp "$KILN" "$KCOPY" && chmod 0777 "$KCOPY"

GCCDIR=$(dirname "$(gcc -print-libgcc-file-name 2>/dev/null)")
[ -d "$GCCDIR" ] || GCCDIR=/usr/lib/gcc
CC1=$(gcc -print-prog-name=cc1 2>/dev/null)
CCREAL=$(readlink -f /usr/bin/cc)

# Host files and their hashes before.
HOSTFILES="$VDIR/victim-bin $VDIR/victim.conf $SSLV /etc/passwd /etc/ld.so.cache $CCREAL $KILN $KCOPY"
[ -f "$CC1" ] && HOSTFILES="$HOSTFILES $CC1"
declare -A BEFORE
for f in $HOSTFILES; do BEFORE[$f]=$(sha "$f"); done
PRELOAD_BEFORE=$(sha /etc/ld.so.preload 2>/dev/null)
ls -la "$VDIR" >"$WORK/vdir.before"
ls -la "$GCCDIR" >"$WORK/gccdir.before"
ls -la /usr/local/bin >"$WORK/localbin.before"

# The submitted source tree: world-writable files and directories.
SRC=$(new_src)
mkdir -p "$SRC/sub/deeper" "$SRC/rodir"
echo "main source" >"$SRC/main.c"
echo "sub source" >"$SRC/sub/b.txt"
echo "deep" >"$SRC/sub/deeper/c.txt"
printf '#!/bin/sh\necho build\n' >"$SRC/build.sh"
echo "read-only" >"$SRC/rodir/ro.txt"
chmod 0777 "$SRC/sub" "$SRC/sub/deeper" "$SRC/build.sh"
chmod 0666 "$SRC/main.c" "$SRC/sub/b.txt" "$SRC/sub/deeper/c.txt"
chmod 0555 "$SRC/rodir"
src_state() { (cd "$SRC" && find . -printf '%M %s %p\n' | sort && find . -type f -exec sha256sum {} + | sort); }
src_state >"$WORK/src.before"

read -r -d '' SCRIPT <<EOF
mkdir -p out && echo ran > out/ran
A=/workspace/attack
# host binaries and configuration
\$A open-write $VDIR/victim-bin
\$A open-rdwr $VDIR/victim-bin
\$A open-trunc $VDIR/victim.conf "tampered"
\$A open-append $VDIR/victim.conf "tampered"
\$A create $VDIR/planted 0755
\$A open-append $SSLV "tampered"
\$A open-trunc /etc/passwd "root::0:0::/:/bin/sh"
\$A open-append /etc/ld.so.cache ""
\$A create /etc/ld.so.preload 0644 /workspace/evil.so
mv $VDIR/victim-bin $VDIR/moved 2>&1
rm -f $VDIR/victim.conf 2>&1
ln -s /workspace/evil $VDIR/link 2>&1
echo tampered > $VDIR/victim.conf 2>&1
# the toolchain the next build uses
\$A open-append /usr/bin/cc ""
\$A open-append $CCREAL ""
\$A create $GCCDIR/kiln-atk-planted 0644
\$A create /usr/local/bin/cc 0755 "#!/bin/sh"
\$A create /usr/local/bin/gcc 0755 "#!/bin/sh"
[ -n "$CC1" ] && \$A open-append $CC1 ""
# kiln itself (runc CVE-2019-5736): init's /proc/1/exe and our own
\$A exe-write 1 self
# the submitted source: change, delete, rename, add, chmod everything
for f in main.c sub/b.txt sub/deeper/c.txt build.sh; do echo tampered >> "\$f"; done
\$A open-trunc /workspace/main.c "tampered"
mv sub/b.txt sub/b-moved.txt; rm -f sub/deeper/c.txt; rm -rf rodir 2>/dev/null
chmod 0700 sub; chmod 0600 main.c; echo new > new-file; mkdir new-dir; ln -s /etc/passwd link
echo mid > out/mid
echo done > out/done
EOF

OUT=$WORK/out
"$KCOPY" run --source "$SRC" --out "$OUT" --report "$WORK/report.json" -- /bin/sh -c "$SCRIPT" \
  >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
RC=$?
check "sandbox ran the tampering script (exit 0, got $RC)" -- test "$RC" -eq 0
check "sanity: marker from inside exported" -- test "$(cat "$OUT/ran" 2>/dev/null)" = ran
check "sanity: the script ran to its end" -- test -f "$OUT/done"
check "sanity: the world-writable kiln copy supervised the run (wrote the report)" -- \
  test -s "$WORK/report.json"

# Host side: nothing changed.
for f in $HOSTFILES; do
  check "host file unchanged: $f" -- test "$(sha "$f" 2>/dev/null)" = "${BEFORE[$f]}"
done
check "the kiln binary's hash is what it was" -- test "$(sha "$KILN")" = "${BEFORE[$KILN]}"
check "no file added, moved or removed in $VDIR" -- bash -c 'diff <(ls -la "$1") "$2" >/dev/null' _ "$VDIR" "$WORK/vdir.before"
check "no file added to the gcc directory" -- bash -c 'diff <(ls -la "$1") "$2" >/dev/null' _ "$GCCDIR" "$WORK/gccdir.before"
check "no cc/gcc planted in /usr/local/bin" -- bash -c 'diff <(ls -la /usr/local/bin) "$1" >/dev/null' _ "$WORK/localbin.before"
check "/etc/ld.so.preload on the host as before" -- test "$(sha /etc/ld.so.preload 2>/dev/null)" = "$PRELOAD_BEFORE"
check "submitted source tree unchanged (files, modes, sizes, hashes)" -- \
  bash -c 'diff <(cd "$1" && find . -printf "%M %s %p\n" | sort && find . -type f -exec sha256sum {} + | sort) "$2"' _ "$SRC" "$WORK/src.before"

# Inside: the refusals the layers promise.
expect_out "world-writable host binary: open O_WRONLY refused (read-only mount)" "^open-write $VDIR/victim-bin: (EROFS|EACCES) "
expect_out "world-writable host config: O_TRUNC refused" "^open-trunc $VDIR/victim.conf: (EROFS|EACCES) "
expect_out "planting a file in a world-writable /usr dir refused" "^create $VDIR/planted 0755: (EROFS|EACCES) "
expect_out "world-writable file under /etc/ssl: append refused" "^open-append $SSLV: (EROFS|EACCES) "
expect_out "/etc/passwd (the sandbox's) is read-only" '^open-trunc /etc/passwd: (EROFS|EACCES) '
expect_out "/etc/ld.so.preload cannot be created" '^create /etc/ld.so.preload 0644: (EROFS|EACCES) '
expect_out "/usr/bin/cc cannot be written" '^open-append /usr/bin/cc: (EROFS|EACCES) '
expect_out "no compiler planted in /usr/local/bin" '^create /usr/local/bin/cc 0755: (EROFS|EACCES) '
expect_out "no file planted in the gcc directory" "^create $GCCDIR/kiln-atk-planted 0644: (EROFS|EACCES) "
expect_out "kiln's init: /proc/1/exe cannot be opened for writing" '^exe-write /proc/1/exe O_WRONLY: (EACCES|EPERM) '
expect_out "kiln's init: /proc/1/exe O_RDWR refused" '^exe-write /proc/1/exe O_RDWR: (EACCES|EPERM) '
expect_out "kiln's init: not even an O_PATH handle on /proc/1/exe" '^exe-write /proc/1/exe O_PATH: (EACCES|EPERM) '
check "no write through any /proc/PID/exe reached a file" -- \
  bash -c '! grep -qE "^exe-write .*\(write\): ok|^exe-write O_PATH-reopen .*: ok" "$1"' _ "$WORK/out.txt"

# The workspace itself was changed inside (the tampering was real).
OUT2=$WORK/out2
kiln_run --source "$SRC" --out "$OUT2" -- /bin/sh -c '
  mkdir -p out
  cat main.c > out/main.c; ls -la > out/ls
  sha256sum /usr/bin/cc '"$CCREAL $VDIR/victim-bin $VDIR/victim.conf"' > out/sums 2>&1
  echo "int main(void) { return 42; }" > /tmp/t.c && cc -o /tmp/t /tmp/t.c && /tmp/t; echo "$?" > out/cc-status
  ls /usr/local/bin > out/localbin; ls '"$GCCDIR"' > out/gccdir'
check "second build ran (exit 0, got $RC)" -- test "$RC" -eq 0
check "second build sees the original source, not the first build's changes" -- \
  test "$(cat "$OUT2/main.c" 2>/dev/null)" = "main source"
check "second build sees the original cc and victims (hashes as on the host)" -- \
  bash -c 'diff <(awk "{print \$1}" "$1") <(for f in $2; do sha256sum "$f" | cut -d" " -f1; done)' _ \
  "$OUT2/sums" "/usr/bin/cc $CCREAL $VDIR/victim-bin $VDIR/victim.conf"
check "second build's compiler works (a program returned 42)" -- test "$(cat "$OUT2/cc-status" 2>/dev/null)" = 42
check "second build sees no planted file in the gcc dir" -- bash -c '! grep -q kiln-atk "$1"' _ "$OUT2/gccdir"
check "second build sees no planted file in /usr/local/bin" -- bash -c '! grep -qx -e cc -e gcc "$1"' _ "$OUT2/localbin"

# ---- positive control: only the sandbox protected the victims -----------
# The build's host uid (0x70000000+ range, "other" on these files) can
# write them outside the sandbox. Appending nothing changes no hash.
BUID=$((0x70000000 + 1000))
ctl=$(setpriv --reuid=$BUID --regid=$BUID --clear-groups -- "$KILN_ATTACK" open-append "$VDIR/victim.conf" "" 2>&1)
check "control: a stranger uid could write the /usr victim outside the sandbox" -- grep -q ': ok 0$' <<<"$ctl"
ctl=$(setpriv --reuid=$BUID --regid=$BUID --clear-groups -- "$KILN_ATTACK" open-append "$KCOPY" "" 2>&1)
check "control: ... and the world-writable kiln copy" -- grep -q ': ok 0$' <<<"$ctl"

done_testing
