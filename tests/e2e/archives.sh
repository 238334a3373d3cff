#!/bin/bash
# Hostile source archives, crafted with python3's tarfile and posted with
# curl (the CLI never produces them): each job must fail with reason
# archive (or disk), nothing may appear outside the sandbox on the host,
# and kilnd must stay healthy.
. "$KILN_TESTS/e2e/lib.sh"

kilnd_start
setup_project arc || bail "cannot set up a project"
TOKEN_arc=$PTOK
TOK=$TOKEN_arc
ESC=kiln-e2e-escape-$R

# craft KIND OUT: write the hostile archive KIND to OUT (.tar.gz).
craft() {
  python3 - "$1" "$2" "$ESC" <<'EOF'
import gzip, io, sys, tarfile, zlib

kind, out, esc = sys.argv[1:4]

def member(name, data=b"x\n", **kw):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, io.BytesIO(data) if ti.isreg() else None

def write(members, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(out, "w:gz", format=fmt) as t:
        ok, f = member("README", b"an innocent file first\n")
        t.addfile(ok, f)
        for ti, f in members:
            t.addfile(ti, f)

if kind == "dotdot":
    write([member("../../../../../../../../../../tmp/%s-dotdot" % esc),
           member("a/../../%s-dotdot2" % esc)])
elif kind == "absolute":
    write([member("/tmp/%s-abs" % esc), member("/%s-abs-root" % esc)])
elif kind == "symlink":
    l1 = tarfile.TarInfo("esc"); l1.type = tarfile.SYMTYPE; l1.linkname = "/tmp"
    l2 = tarfile.TarInfo("rel"); l2.type = tarfile.SYMTYPE; l2.linkname = "../../../../../../tmp"
    write([(l1, None), member("esc/%s-link" % esc),
           (l2, None), member("rel/%s-rel" % esc)])
elif kind == "hardlink":
    h = tarfile.TarInfo("hl"); h.type = tarfile.LNKTYPE; h.linkname = "/etc/hostname"
    h2 = tarfile.TarInfo("hl2"); h2.type = tarfile.LNKTYPE; h2.linkname = "../../../../etc/hostname"
    write([(h, None), (h2, None)])
elif kind == "device":
    d = tarfile.TarInfo("null-%s" % esc); d.type = tarfile.CHRTYPE; d.devmajor = 1; d.devminor = 3
    b = tarfile.TarInfo("sda-%s" % esc); b.type = tarfile.BLKTYPE; b.devmajor = 8; b.devminor = 0
    f = tarfile.TarInfo("fifo-%s" % esc); f.type = tarfile.FIFOTYPE
    write([(d, None), (b, None), (f, None)])
elif kind == "sparse":
    # A PAX 1.0 sparse file: 1 TiB apparent size, one byte of data at the
    # end (what `tar --sparse` makes of a huge file full of holes).
    real = 1 << 40
    smap = b"1\n%d\n1\n" % (real - 1)
    smap += b"\0" * (-len(smap) % 512)
    ti, _ = member("GNUSparseFile.0/big-%s" % esc, smap + b"Z")
    ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                      "GNU.sparse.name": "big-%s" % esc, "GNU.sparse.realsize": str(real)}
    write([(ti, io.BytesIO(smap + b"Z"))])
elif kind == "longpath":
    write([member("d/" * 1100 + "f")])
elif kind == "bomb":
    # 10 GiB of zeros as ~10 MB of gzip: the tar header, 160 gzip members
    # of 64 MiB of zeros each (the same bytes repeated), the end blocks.
    size = 10 << 30
    ti = tarfile.TarInfo("zeros-%s" % esc); ti.size = size; ti.mode = 0o644
    chunk = 64 << 20
    zeros = gzip.compress(b"\0" * chunk, compresslevel=9, mtime=0)
    with open(out, "wb") as o:
        o.write(gzip.compress(ti.tobuf(tarfile.PAX_FORMAT), mtime=0))
        for _ in range(size // chunk):
            o.write(zeros)
        o.write(gzip.compress(b"\0" * 1024, mtime=0))
else:
    sys.exit("unknown kind " + kind)
EOF
}

# escaped: anything named after this run's tag outside the sandbox?
escaped() {
  find /tmp /var/tmp / "$WORK" "$DATA" -maxdepth 2 -name "$ESC*" 2>/dev/null | grep -q .
}
not_escaped() { ! escaped; }

mksrc "$WORK/spec" "echo RAN-$R; ls -la" "resources: {disk: 256M}" "timeout: 2m"
for kind in dotdot absolute symlink hardlink device sparse longpath bomb; do
  craft "$kind" "$WORK/$kind.tar.gz" || { ok 1 "$kind: crafting the archive"; continue; }
  curl_submit "$TOK" arc "$WORK/spec/kiln.yml" "$WORK/$kind.tar.gz"
  if [ "$HTTP" = 400 ] && [ "$(jget error.code "$WORK/body")" = archive_invalid ]; then
    ok 0 "$kind: refused at submit (400 archive_invalid)"
  elif [ "$HTTP" = 201 ] && [ -n "$JOB" ]; then
    S=$(wait_final "$TOK" "$JOB" 180)
    api "$TOK" GET "/v1/jobs/$JOB"
    REASON=$(jget reason "$WORK/body")
    ERR=$(jget error "$WORK/body")
    check "$kind: the job fails with reason archive or disk (state $S, reason $REASON)" -- \
      bash -c "[[ '$S' =~ ^(failed|rejected)\$ ]] && [[ '$REASON' =~ ^(archive|disk|archive_invalid)\$ ]]"
    [ -n "$ERR" ] && diag "$kind: error: $ERR"
    api "$TOK" GET "/v1/jobs/$JOB/log"
    check "$kind: the script never ran" -- bash -c "! grep -q 'RAN-$R' '$WORK/body'"
  else
    ok 1 "$kind: submit answered $HTTP"
    diag_file "$WORK/body" 3
  fi
  check "$kind: nothing written outside on the host" -- not_escaped
  check "$kind: kilnd is still healthy" -- healthy
done

# A normal archive still works afterwards.
mkdir -p "$WORK/fine"
echo fine >"$WORK/fine/file"
tar -czf "$WORK/fine.tar.gz" -C "$WORK/fine" .
curl_submit "$TOK" arc "$WORK/spec/kiln.yml" "$WORK/fine.tar.gz"
S=$(wait_final "$TOK" "${JOB:-0}" 120)
check "an ordinary archive still builds afterwards ($S)" -- test "$S" = succeeded
check "no file of this run anywhere outside" -- not_escaped
done_testing
