#!/bin/bash
# The audit log (docs/audit.md), end to end: the events of a real kilnd
# (submissions accepted and rejected, jobs with their digests, limits,
# authentication failures, tokens, start and stop) are in the log, the
# token secret never is; `kiln audit verify` accepts the untouched log and
# an independent verifier (Go's x/mod sumdb note + tlog) accepts its
# checkpoints, tiles and proofs; then the database is changed behind
# kilnd's back with sqlite3 (an entry changed, one deleted, two swapped,
# the log truncated, an old copy restored) and `kiln audit verify
# --checkpoint` fails every time, naming the first index that stopped
# matching.
. "$KILN_TESTS/e2e/lib.sh"

command -v sqlite3 >/dev/null || bail "sqlite3 is needed (scripts/install-deps.sh)"


# entries: the log's size in the (stopped kilnd's) database
entries() { sqlite3 "$DATA/kiln.db" 'SELECT count(*) FROM audit_entries'; }

# verify_fails WHAT INDEX: verify against the saved checkpoint must fail
# and name INDEX.
verify_fails() {
  cp "$WORK/saved.orig" "$WORK/saved"
  k "$ADMIN_TOKEN" audit verify --checkpoint "$WORK/saved"
  check "$1: kiln audit verify fails (rc=$RC)" -- test "$RC" -eq 1
  check "$1: it names index $2" -- grep -q "at index $2:" "$WORK/err"
  grep -q "at index $2:" "$WORK/err" || diag_file "$WORK/err"
  check "$1: the saved checkpoint is kept" -- cmp -s "$WORK/saved" "$WORK/saved.orig"
}

kilnd_start
VKEY_FILE=$DATA/audit-key.vkey
check "the verifier key is published in DATA/audit-key.vkey" -- \
  grep -Eq '^kiln/[^+ ]+\+[0-9a-f]{8}\+A[Q-Za-f][A-Za-z0-9+/]{42}$' "$VKEY_FILE"
api "" GET /v1/audit/key
check "GET /v1/audit/key without a token: the same key" -- \
  bash -c "[ '$HTTP' = 200 ] && cmp -s '$WORK/body' '$VKEY_FILE'"
KEYMODE=$(stat -c %a "$DATA/audit.key")
check "the log key DATA/audit.key is 0600 ($KEYMODE)" -- test "$KEYMODE" = 600
api "" GET /v1/audit/tile/entries/000.p/1
check "tiles without a token: 401 ($HTTP)" -- test "$HTTP" = 401

setup_project web || bail "no project"
api "$PTOK" GET /v1/audit/tile/entries/000.p/1
check "tiles with a project token: 403 ($HTTP)" -- test "$HTTP" = 403

# An old copy of the database, for the rollback below.
kilnd_stop
cp -a "$DATA" "$WORK/data.old"
kilnd_start

# --- events -------------------------------------------------------------------
SRC=$WORK/ok
mksrc "$SRC" "mkdir -p out; echo hi-$R > out/a.txt; echo done" "artifacts: [out/]"
submit "$PTOK" web "$SRC"
OKJOB=$JOB
check "a job succeeds ($(wait_final "$PTOK" "$OKJOB"))" -- \
  test "$(job_get "$PTOK" "$OKJOB" state)" = succeeded
SLOW=$WORK/slow
mksrc "$SLOW" "sleep 30" "timeout: 1s"
submit "$PTOK" web "$SLOW"
SLOWJOB=$JOB
check "a job times out ($(wait_final "$PTOK" "$SLOWJOB"))" -- \
  test "$(job_get "$PTOK" "$SLOWJOB" state)" = timed_out
DENY=$WORK/deny
mksrc "$DENY" "unshare -U true || echo refused"
submit "$PTOK" web "$DENY"
DENYJOB=$JOB
check "a job that tries unshare ends ($(wait_final "$PTOK" "$DENYJOB"))" -- \
  test -n "$(job_get "$PTOK" "$DENYJOB" finished_at)"
BAD=$WORK/bad
mksrc "$BAD" "true" "timeout: forever"
tar -czf "$WORK/bad.tgz" -C "$BAD" .
curl_submit "$PTOK" web "$BAD/kiln.yml" "$WORK/bad.tgz"
check "an invalid spec is refused by kilnd ($HTTP)" -- test "$HTTP" = 400
FAKE="kiln_0123456789ab_SECRET${R}SECRETSECRETSECRETSECRETxx"
api "$FAKE" GET /v1/jobs
check "an unknown token: 401 ($HTTP)" -- test "$HTTP" = 401
api "$ADMIN_TOKEN" POST /v1/policies/reload
check "a policy reload ($HTTP)" -- test "$HTTP" = 200
k "$ADMIN_TOKEN" token create --project web --scope read
RTOK=$(cat "$WORK/out")
k "$ADMIN_TOKEN" token revoke "${RTOK:5:12}"
check "a token created and revoked (rc=$RC)" -- test "$RC" -eq 0
# Enough entries for full tiles and a level-1 tile (over 256).
for i in $(seq 1 260); do
  api "$ADMIN_TOKEN" POST /v1/projects -H 'Content-Type: application/json' -d "{\"name\":\"p$i\"}"
done
check "260 more projects created ($HTTP)" -- test "$HTTP" = 201
api "$ADMIN_TOKEN" GET /v1/jobs/999999
N=$(sqlite3 "file:$DATA/kiln.db?mode=ro" 'SELECT count(*) FROM audit_entries' 2>/dev/null)
check "the log holds $N entries" -- test "${N:-0}" -gt 270
wait_checkpoint "$N" || diag "no checkpoint of $N entries"

k "$ADMIN_TOKEN" audit show --json
cp "$WORK/out" "$WORK/show.json"
has() { grep -c "$1" "$WORK/show.json"; }
check "server.start recorded" -- test "$(has '"kind":"server.start"')" -ge 2
check "server.stop recorded" -- test "$(has '"kind":"server.stop"')" -ge 1
check "server.start carries the policy digest" -- \
  grep -q '"kind":"server.start".*"policy_digest":"sha256:' "$WORK/show.json"
check "policy.loaded for the reload, with its digest" -- \
  grep -q '"kind":"policy.loaded".*"digest":"sha256:.*"why":"reload asked through the API"' "$WORK/show.json"
check "submission.accepted carries the policy digest" -- \
  grep -q "\"kind\":\"submission.accepted\".*\"job\":$OKJOB,.*\"policy_digest\":\"sha256:" "$WORK/show.json"
check "submission.accepted with the source digest" -- \
  grep -q "\"kind\":\"submission.accepted\".*\"job\":$OKJOB,.*\"source_sha256\":\"[0-9a-f]\{64\}\"" "$WORK/show.json"
check "submission.rejected with the reason" -- \
  grep -q '"kind":"submission.rejected".*"code":"spec_invalid".*"reason":"[^"]*timeout' "$WORK/show.json"
check "job.start" -- grep -q "\"kind\":\"job.start\".*\"job\":$OKJOB," "$WORK/show.json"
LOGSHA=$(curl -s -H "Authorization: Bearer $PTOK" "$KILN_SERVER/v1/jobs/$OKJOB/log" | sha256sum | cut -d' ' -f1)
check "job.finish with outcome, log digest and artifact digests" -- \
  grep -q "\"kind\":\"job.finish\".*\"job\":$OKJOB,.*\"outcome\":\"succeeded\".*\"log_sha256\":\"$LOGSHA\".*\"artifacts\":\[{\"name\":\"out/a.txt\",\"size\":[0-9]*,\"sha256\":\"[0-9a-f]\{64\}\"}\]" "$WORK/show.json"
check "sandbox.limit for the timeout" -- \
  grep -q "\"kind\":\"sandbox.limit\".*\"job\":$SLOWJOB,.*\"limit\":\"timeout\"" "$WORK/show.json"
check "sandbox.violation: the seccomp denial of unshare, counted" -- \
  grep -q "\"kind\":\"sandbox.violation\".*\"job\":$DENYJOB,.*\"violation\":\"seccomp\".*\"denied_syscalls\":{\"unshare\":[1-9]" "$WORK/show.json"
check "job.finish timed_out" -- \
  grep -q "\"kind\":\"job.finish\".*\"job\":$SLOWJOB,.*\"outcome\":\"timed_out\"" "$WORK/show.json"
check "auth.failure with the claimed token id" -- \
  grep -q '"kind":"auth.failure".*"status":401.*"claimed_token":"0123456789ab"' "$WORK/show.json"
check "auth.failure for the project token on the tiles (403)" -- \
  grep -q '"kind":"auth.failure".*"status":403' "$WORK/show.json"
check "token.created and token.revoked" -- \
  bash -c "grep -q '\"kind\":\"token.created\".*\"token\":\"${RTOK:5:12}\"' '$WORK/show.json' && grep -q '\"kind\":\"token.revoked\".*\"token\":\"${RTOK:5:12}\"' '$WORK/show.json'"
check "no token secret in the log" -- \
  bash -c "! grep -q 'SECRET$R' '$WORK/show.json' && ! grep -qF '${RTOK#kiln_*_}' '$WORK/show.json' && ! grep -qF '${ADMIN_TOKEN#kiln_*_}' '$WORK/show.json'"
k "$ADMIN_TOKEN" audit show --job "$OKJOB" --kind job
check "audit show --job --kind: only that job's job.* entries" -- \
  bash -c "[ \$(wc -l <'$WORK/out') -ge 2 ] && ! grep -qv ' job\.' '$WORK/out'"

# --- verify ---------------------------------------------------------------------
k "$ADMIN_TOKEN" audit verify --checkpoint "$WORK/saved"
check "kiln audit verify: the untouched log verifies (rc=$RC)" -- test "$RC" -eq 0
[ "$RC" -eq 0 ] || diag_file "$WORK/err"
check "it saved the checkpoint, the pinned key and the leaf hashes" -- \
  bash -c "[ -s '$WORK/saved' ] && cmp -s '$WORK/saved.vkey' '$VKEY_FILE' && [ -s '$WORK/saved.hashes' ]"
SAVED_N=$(sed -n 2p "$WORK/saved")
cp "$WORK/saved" "$WORK/saved.first"
api "$ADMIN_TOKEN" POST /v1/projects -H 'Content-Type: application/json' -d '{"name":"later"}'
wait_checkpoint $((SAVED_N + 1))
k "$ADMIN_TOKEN" audit verify --checkpoint "$WORK/saved"
check "verify again: consistent with the saved checkpoint (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && grep -q 'consistent with the saved checkpoint of $SAVED_N entries' '$WORK/out'"
cp "$WORK/saved" "$WORK/saved.orig"
k "$ADMIN_TOKEN" audit proof 3 -o "$WORK/proof"
check "kiln audit proof writes a c2sp.org/tlog-proof (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && head -2 '$WORK/proof' | tr '\n' ' ' | grep -q '^c2sp.org/tlog-proof@v1 index 3 '"

# Every checkpoint kilnd stored is one the newest log extends.
python3 -c 'import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
for size, note in db.execute("SELECT size, note FROM audit_checkpoints ORDER BY size"):
    open("%s/stored-cp.%d" % (sys.argv[2], size), "w").write(note)' "$DATA/kiln.db" "$WORK"
NCP=0
BADCP=
for f in "$WORK"/stored-cp.*; do
  NCP=$((NCP + 1))
  cp "$WORK/saved.vkey" "$f.vkey"
  k "$ADMIN_TOKEN" audit verify --checkpoint "$f"
  [ "$RC" -eq 0 ] || BADCP="$BADCP ${f##*.}"
done
check "all $NCP stored checkpoints are consistent with the newest log (bad:${BADCP:- none})" -- \
  test "$NCP" -ge 3 -a -z "$BADCP"

# --- the independent verifier -----------------------------------------------------
GOSRC=/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog
if command -v go >/dev/null && [ -d "$GOSRC" ]; then
  if GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE=$WORK/gocache GOPROXY=off \
    go build -o "$WORK/auditverify" "$KILN_TESTS/interop/auditverify.go" 2>"$WORK/go.err"; then
    "$WORK/auditverify" "$KILN_SERVER" "$ADMIN_TOKEN" "$WORK/saved.vkey" "$WORK/proof" "$WORK/saved.first" \
      >"$WORK/go.out" 2>&1
    RC=$?
    check "Go's note.Open, TileHashReader, CheckRecord and CheckTree accept kiln's log (rc=$RC)" -- \
      test "$RC" -eq 0
    diag_file "$WORK/go.out"
    # A proof against the current checkpoint, compared with tlog.ProveRecord's.
    k "$ADMIN_TOKEN" audit proof 270 -o "$WORK/proof300"
    "$WORK/auditverify" "$KILN_SERVER" "$ADMIN_TOKEN" "$VKEY_FILE" "$WORK/proof300" >"$WORK/go.out" 2>&1
    RC=$?
    check "entry 270 (past the first full tile): the same proof as tlog.ProveRecord (rc=$RC)" -- \
      test "$RC" -eq 0
    [ "$RC" -eq 0 ] || diag_file "$WORK/go.out"
    # the first hash of the path, its first character changed
    sed -i '3{s/^A/#/;s/^[^#]/A/;s/^#/B/}' "$WORK/proof"
    "$WORK/auditverify" "$KILN_SERVER" "$ADMIN_TOKEN" "$VKEY_FILE" "$WORK/proof" >"$WORK/go.out" 2>&1
    RC=$?
    check "a changed proof is refused by tlog.CheckRecord (rc=$RC)" -- \
      bash -c "[ $RC -ne 0 ] && grep -q 'CheckRecord' '$WORK/go.out'"
  else
    diag_file "$WORK/go.err"
    ok 1 "build the Go verifier"
  fi
elif [ "${CI:-}" = true ]; then
  ok 1 "Go and golang-golang-x-mod-dev are needed on CI (scripts/install-deps.sh)"
else
  echo "ok $((T_N + 1)) # SKIP Go or golang-golang-x-mod-dev missing"
  T_N=$((T_N + 1))
fi

# --- tampering ------------------------------------------------------------------------
kilnd_stop
cp -a "$DATA" "$WORK/data.good"
check "the triggers refuse UPDATE on the log" -- \
  bash -c "! sqlite3 '$DATA/kiln.db' \"UPDATE audit_entries SET entry = 'x' WHERE idx = 5\" 2>/dev/null"
check "the triggers refuse DELETE on the log" -- \
  bash -c "! sqlite3 '$DATA/kiln.db' 'DELETE FROM audit_entries WHERE idx = 5' 2>/dev/null"

# tamper WHAT SQL: a fresh copy of the good database, changed behind
# kilnd's back (the triggers dropped first), then kilnd started on it.
tamper() {
  rm -rf "$DATA"
  cp -a "$WORK/data.good" "$DATA"
  sqlite3 "$DATA/kiln.db" "DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete;
    DROP TRIGGER audit_hashes_no_update; DROP TRIGGER audit_hashes_no_delete;
    DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete; $2" ||
    diag "sqlite3 failed for $1"
  [ -z "${3:-}" ] || "$3"
  kilnd_start
}

# The stored leaf hash of entry 6 made to match its changed entry.
rehash6() {
  local h
  h=$(python3 -c 'import hashlib,sqlite3,sys
e = sqlite3.connect(sys.argv[1]).execute("SELECT entry FROM audit_entries WHERE idx = 6").fetchone()[0]
print(hashlib.sha256(b"\x00" + bytes(e)).hexdigest())' "$DATA/kiln.db")
  sqlite3 "$DATA/kiln.db" "UPDATE audit_hashes SET hash = X'$h' WHERE level = 0 AND idx = 6"
}

tamper "one entry changed" \
  "UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), '\"actor\"', '\"Actor\"') AS BLOB) WHERE idx = 5;"
check "kilnd reports the damaged log" -- grep -q 'AUDIT LOG DAMAGED: entry 5 ' "$KILND_ERR"
k "$ADMIN_TOKEN" project create after-damage
check "with a damaged log, an action that must be recorded fails (rc=$RC)" -- \
  bash -c "[ $RC -ne 0 ] && grep -q 'failed' '$WORK/err'"
k "$ADMIN_TOKEN" project list
check "... and the project was not stored" -- bash -c "! grep -q '^after-damage ' '$WORK/out'"
NTOK=$(sqlite3 "file:$DATA/kiln.db?mode=ro" 'SELECT count(*) FROM tokens')
k "$ADMIN_TOKEN" token create --project web --scope read
check "a token cannot be created either (rc=$RC), none stored" -- \
  bash -c "[ $RC -ne 0 ] && [ \$(sqlite3 'file:$DATA/kiln.db?mode=ro' 'SELECT count(*) FROM tokens') = $NTOK ]"
JOBS_BEFORE=$(jobs_count "$ADMIN_TOKEN" web)
tar -czf "$WORK/src.tgz" -C "$SRC" .
curl_submit "$PTOK" web "$SRC/kiln.yml" "$WORK/src.tgz"
check "with a damaged log, a submission fails with 500 ($HTTP)" -- test "$HTTP" = 500
check "and no job was stored ($(jobs_count "$ADMIN_TOKEN" web) = $JOBS_BEFORE)" -- \
  test "$(jobs_count "$ADMIN_TOKEN" web)" = "$JOBS_BEFORE"
verify_fails "one entry changed" 5
kilnd_stop

tamper "one entry and its leaf hash changed" \
  "UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), '\"actor\"', '\"Actor\"') AS BLOB) WHERE idx = 6;" \
  rehash6
verify_fails "one entry changed (stored hash too)" 6
kilnd_stop

tamper "one entry deleted" "DELETE FROM audit_entries WHERE idx = 7;"
verify_fails "one entry deleted" 7
kilnd_stop

tamper "two entries swapped" \
  "UPDATE audit_entries SET idx = -1 WHERE idx = 8; UPDATE audit_entries SET idx = 8 WHERE idx = 9;
   UPDATE audit_entries SET idx = 9 WHERE idx = -1;"
verify_fails "two entries swapped" 8
kilnd_stop

tamper "the log truncated" \
  "DELETE FROM audit_entries WHERE idx >= 10; DELETE FROM audit_hashes WHERE (idx + 1) << level > 10;
   DELETE FROM audit_checkpoints WHERE size > 10;"
# kilnd continues the shortened log: server.start at 10, signed within a second
wait_checkpoint 11 || diag "no checkpoint of 11 entries"
verify_fails "the log truncated (and its checkpoints)" 10
kilnd_stop

tamper "the log truncated, checkpoints left" "DELETE FROM audit_entries WHERE idx >= 12;"
verify_fails "the log truncated (checkpoints left)" 12
kilnd_stop

OLD_N=$(sqlite3 "$WORK/data.old/kiln.db" 'SELECT count(*) FROM audit_entries')
rm -rf "$DATA"
cp -a "$WORK/data.old" "$DATA"
kilnd_start
verify_fails "an old copy of the database restored" "$OLD_N"
kilnd_stop

rm -rf "$DATA"
cp -a "$WORK/data.good" "$DATA"
kilnd_start
cp "$WORK/saved.orig" "$WORK/saved"
k "$ADMIN_TOKEN" audit verify --checkpoint "$WORK/saved"
check "the untouched database verifies again (rc=$RC)" -- test "$RC" -eq 0
kilnd_stop
done_testing
