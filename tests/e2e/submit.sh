#!/bin/bash
# The happy path, end to end: a project and its token, a C project built
# and followed live, its artifact listed, fetched and verified, the job and
# list objects, late logs, Server-Sent Events, cancel, and .kilnignore.
. "$KILN_TESTS/e2e/lib.sh"

kilnd_start

# --- project and token --------------------------------------------------------
k "$ADMIN_TOKEN" project create web
check "kiln project create web: exit 0 (rc=$RC)" -- test "$RC" -eq 0
k "$ADMIN_TOKEN" project create web
check "creating it again: exit 1 with the server's message (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && grep -q '^kiln: .*exists' '$WORK/err'"
k "$ADMIN_TOKEN" project list
check "kiln project list shows it" -- grep -q '^web ' "$WORK/out"
k "$ADMIN_TOKEN" token create --project web --scope submit,read --description e2e
TOK=$(cat "$WORK/out")
check "kiln token create prints only a token on stdout (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && [ \$(wc -l <'$WORK/out') -eq 1 ] && grep -Eq '^kiln_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\$' '$WORK/out'"
k "$ADMIN_TOKEN" token list
check "kiln token list shows the token's id, not its secret" -- \
  bash -c "grep -q '${TOK:5:12}' '$WORK/out' && ! grep -qF -- '${TOK#kiln_*_}' '$WORK/out'"

# --- a C project, followed ------------------------------------------------------
SRC=$WORK/hello
mkdir -p "$SRC"
cat >"$SRC/hello.c" <<EOF
#include <stdio.h>
int main(void) { puts("hello from kiln $R"); return 0; }
EOF
mksrc "$SRC" "echo BUILD-START-$R
cc -O2 -o hello hello.c
mkdir -p out
cp hello out/
./hello
echo BUILD-END-$R" "artifacts: [out/]" "timeout: 5m"
KILN_TOKEN=$TOK "$KILN" submit --project web --follow "$SRC" >"$WORK/follow.out" 2>"$WORK/follow.err" </dev/null
RC=$?
check "kiln submit --follow: exit 0 (rc=$RC)" -- test "$RC" -eq 0
check "--follow shows the build's output as it runs" -- \
  bash -c "grep -q 'BUILD-START-$R' '$WORK/follow.out' && grep -q 'hello from kiln $R' '$WORK/follow.out' && grep -q 'BUILD-END-$R' '$WORK/follow.out'"
[ "$RC" -eq 0 ] || { diag_file "$WORK/follow.err"; diag_file "$WORK/follow.out" 30; }
JOB=$(sed -n 's/^job \([0-9][0-9]*\)$/\1/p' "$WORK/follow.err" | head -1)
check "--follow names the job on stderr (job '$JOB')" -- test -n "$JOB"
HELLO_JOB=$JOB

# --- artifacts and fetch --------------------------------------------------------------
k "$TOK" artifacts "$JOB"
check "kiln artifacts lists the binary (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && grep -Eq 'hello +[0-9.]+[BKM] +[0-9a-f]{64}' '$WORK/out'"
k "$TOK" artifacts "$JOB" --json
NAME=$(jget artifacts.0.name "$WORK/out")
SHA=$(jget artifacts.0.sha256 "$WORK/out")
check "kiln artifacts --json: name and sha256 ('$NAME')" -- \
  test -n "$NAME" -a "${#SHA}" -eq 64
k "$TOK" fetch "$JOB" -o "$WORK/fetched"
check "kiln fetch: exit 0 (rc=$RC)" -- test "$RC" -eq 0
[ "$RC" -eq 0 ] || diag_file "$WORK/err"
GOT=$(sha256sum "$WORK/fetched/$NAME" 2>/dev/null | cut -d' ' -f1)
check "the fetched file's sha256 matches the listing" -- test -n "$GOT" -a "$GOT" = "$SHA"
chmod +x "$WORK/fetched/$NAME" 2>/dev/null # the API carries no file mode
check "the fetched binary runs" -- \
  bash -c "'$WORK/fetched/$NAME' | grep -q 'hello from kiln $R'"
k "$TOK" fetch "$JOB" "$NAME" -o "$WORK/fetched2"
check "kiln fetch JOB NAME fetches just that" -- \
  bash -c "[ $RC -eq 0 ] && [ \$(find '$WORK/fetched2' -type f | wc -l) -eq 1 ]"
k "$TOK" fetch "$JOB" no-such-artifact -o "$WORK/fetched3"
check "kiln fetch of an unknown NAME: exit 1, nothing written (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && [ -z \"\$(find '$WORK/fetched3' -type f 2>/dev/null)\" ]"

# --- status and jobs, human and --json --------------------------------------------------
JOB_KEYS="id project state created_at started_at finished_at exit_code reason spec_sha256 source_sha256 source_bytes log_bytes log_truncated error spec"
has_keys() {  # has_keys FILE PREFIX KEYS...
  local f=$1 p=$2; shift 2
  python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for p in filter(None, sys.argv[2].split(".")):
    v = v[int(p)] if isinstance(v, list) else v[p]
missing = [k for k in sys.argv[3:] if k not in v]
if missing:
    print("# missing keys:", " ".join(missing))
    sys.exit(1)
' "$f" "$p" "$@"
}
k "$TOK" status "$JOB" --json
# shellcheck disable=SC2086 # JOB_KEYS is a list
check "kiln status --json: every documented key of the job object" -- has_keys "$WORK/out" "" $JOB_KEYS
V="$(jget state "$WORK/out") $(jget exit_code "$WORK/out") $(jget reason "$WORK/out")"
check "kiln status --json: succeeded, exit_code 0, reason exited ($V)" -- \
  test "$V" = "succeeded 0 exited"
k "$TOK" status "$JOB"
check "kiln status: human-readable" -- \
  bash -c "grep -Eq '^state +succeeded' '$WORK/out' && grep -Eq '^project +web' '$WORK/out' && grep -Eq '^created +[0-9]{4}-[0-9]{2}-[0-9]{2} ' '$WORK/out'"
k "$TOK" jobs --json
# shellcheck disable=SC2086 # JOB_KEYS is a list
check "kiln jobs --json: a jobs array of job objects" -- has_keys "$WORK/out" "jobs.0" $JOB_KEYS
k "$TOK" jobs --project web --state succeeded --limit 5
check "kiln jobs: a table with the job" -- \
  bash -c "head -1 '$WORK/out' | grep -q '^ID ' && grep -Eq '^$JOB +web +succeeded' '$WORK/out'"
k "$TOK" jobs --state failed --json
check "kiln jobs --state failed does not list a succeeded job" -- \
  bash -c "! grep -q '\"id\": $JOB,' '$WORK/out'"
k "$TOK" status 999999
check "kiln status of an unknown job: exit 1, one line (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$WORK/err') -eq 1 ] && grep -q '^kiln: ' '$WORK/err'"

# --- logs ---------------------------------------------------------------------------------
k "$TOK" logs "$JOB"
check "a late kiln logs has everything from the start" -- \
  bash -c "[ $RC -eq 0 ] && grep -q 'BUILD-START-$R' '$WORK/out' && grep -q 'BUILD-END-$R' '$WORK/out'"
k "$TOK" logs -f "$JOB"
check "kiln logs -f of a finished job ends (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && grep -q 'BUILD-END-$R' '$WORK/out'"
curl -sN --max-time 30 -H "Authorization: Bearer $TOK" -H 'Accept: text/event-stream' \
  "$KILN_SERVER/v1/jobs/$JOB/log?follow=1" >"$WORK/sse" 2>/dev/null
check "SSE: event: log with data: lines, then event: end" -- \
  bash -c "grep -q '^event: log' '$WORK/sse' && grep -q '^data: .*BUILD-START-$R' '$WORK/sse' && grep -q '^event: end' '$WORK/sse'"
check "SSE: the end event carries the state" -- \
  bash -c "grep -A2 '^event: end' '$WORK/sse' | grep -q '^data: .*\"state\": *\"succeeded\"'"

# --- a failing build: --follow passes its exit code ---------------------------------------
mksrc "$WORK/fail" "echo FAILING-$R; exit 3"
KILN_TOKEN=$TOK "$KILN" submit -p web -f "$WORK/fail" >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "--follow of a build that exits 3: kiln exits 3 (rc=$RC)" -- test "$RC" -eq 3
mksrc "$WORK/slow" "sleep 30" "timeout: 2s"
KILN_TOKEN=$TOK "$KILN" submit -p web -f "$WORK/slow" >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "--follow of a build that times out: kiln exits 124 (rc=$RC)" -- test "$RC" -eq 124

# --- cancel ---------------------------------------------------------------------------------
MARK=kiln-e2e-marker-$R
mksrc "$WORK/sleep" "cp /bin/sleep ./$MARK
./$MARK 300" "timeout: 10m"
submit "$TOK" web "$WORK/sleep"
SLEEP_JOB=$JOB
check "kiln submit prints the job id (rc=$RC, '$JOB')" -- bash -c "[ $RC -eq 0 ] && [[ '$JOB' =~ ^[0-9]+\$ ]]"
wait_state "$TOK" "$SLEEP_JOB" running 60
check "the sleep job runs" -- test "$(job_get "$TOK" "$SLEEP_JOB" state)" = running
for i in $(seq 1 40); do pgrep -f -- "$MARK" >/dev/null && break; sleep 0.25; done
has_process() { pgrep -f -- "$1" >/dev/null; }
check "its sandbox process is there (pgrep $MARK)" -- has_process "$MARK"
T0=$(date +%s)
k "$TOK" cancel "$SLEEP_JOB"
check "kiln cancel: exit 0 (rc=$RC)" -- test "$RC" -eq 0
wait_state "$TOK" "$SLEEP_JOB" cancelled 10
T1=$(date +%s)
check "the job is cancelled within a few seconds ($((T1 - T0)) s)" -- \
  test "$(job_get "$TOK" "$SLEEP_JOB" state)" = cancelled
check "no sandbox process is left" -- no_process "$MARK" 5
k "$TOK" cancel "$SLEEP_JOB"
check "cancelling it again: exit 1, 409 message (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && grep -q '^kiln: ' '$WORK/err'"
KILN_TOKEN=$TOK "$KILN" submit -p web -f "$WORK/sleep" >"$WORK/f.out" 2>"$WORK/f.err" </dev/null &
FPID=$!
FJOB=
for i in $(seq 1 120); do
  FJOB=$(sed -n 's/^job \([0-9][0-9]*\)$/\1/p' "$WORK/f.err" | head -1)
  [ -n "$FJOB" ] && [ "$(job_get "$TOK" "$FJOB" state)" = running ] && break
  kill -0 "$FPID" 2>/dev/null || break
  sleep 0.25
done
k "$TOK" cancel "${FJOB:-0}"
for i in $(seq 1 60); do kill -0 "$FPID" 2>/dev/null || break; sleep 0.25; done
kill "$FPID" 2>/dev/null
wait "$FPID"
RC=$?
check "--follow of a job cancelled meanwhile: kiln exits 130 (rc=$RC)" -- test "$RC" -eq 130
check "no sandbox process is left after that either" -- no_process "$MARK" 5

# --- .kilnignore ------------------------------------------------------------------------------
IG=$WORK/ignore
mkdir -p "$IG/build/deep" "$IG/src" "$IG/logs"
echo secret >"$IG/secret-$R.txt"
echo obj >"$IG/src/main.o"
echo keep >"$IG/src/keep.o"
echo c >"$IG/src/main.c"
echo b >"$IG/build/deep/file"
echo l >"$IG/logs/a.log"
echo top >"$IG/TODO"
echo nested >"$IG/src/TODO"
ln -s /etc/hostname "$IG/link-$R"
cat >"$IG/.kilnignore" <<'EOF'
# comments and blank lines are ignored

*.o
!keep.o
build/
/TODO
secret-*.txt
logs/*.log
EOF
mksrc "$IG" "echo LISTING-BEGIN
find . | sort | sed 's/^/FOUND /'
echo LINK \$(readlink link-$R)
echo LISTING-END"
submit "$TOK" web "$IG"
S=$(wait_final "$TOK" "$JOB" 120)
k "$TOK" logs "$JOB"
found() { grep -q "FOUND $1\$" "$WORK/out"; }
check ".kilnignore job ran ($S)" -- bash -c "[ '$S' = succeeded ] && grep -q LISTING-END '$WORK/out'"
check ".kilnignore: '*.o' excluded src/main.o" -- bash -c "! grep -q 'FOUND ./src/main.o\$' '$WORK/out'"
check ".kilnignore: '!keep.o' re-included src/keep.o" -- found ./src/keep.o
check ".kilnignore: 'build/' excluded the directory" -- bash -c "! grep -q 'FOUND ./build' '$WORK/out'"
check ".kilnignore: '/TODO' excluded only the top one" -- \
  bash -c "! grep -q 'FOUND ./TODO\$' '$WORK/out' && grep -q 'FOUND ./src/TODO\$' '$WORK/out'"
check ".kilnignore: 'secret-*.txt' excluded the secret" -- bash -c "! grep -q 'FOUND ./secret' '$WORK/out'"
check ".kilnignore: 'logs/*.log' excluded the log, kept the directory" -- \
  bash -c "! grep -q 'FOUND ./logs/a.log' '$WORK/out' && grep -q 'FOUND ./logs\$' '$WORK/out'"
check "the rest is there (src/main.c, kiln.yml, .kilnignore)" -- \
  bash -c "grep -q 'FOUND ./src/main.c\$' '$WORK/out' && grep -q 'FOUND ./kiln.yml\$' '$WORK/out' && grep -q 'FOUND ./.kilnignore\$' '$WORK/out'"
check "a symbolic link travels as a link, not as the file it points to" -- \
  grep -q "LINK /etc/hostname" "$WORK/out"

# --- what the CLI refuses before sending anything -------------------------------------------------
mkdir -p "$WORK/fifo"
mksrc "$WORK/fifo" "true"
mkfifo "$WORK/fifo/pipe"
N0=$(jobs_count "$TOK" web)
k "$TOK" submit -p web "$WORK/fifo"
check "a fifo in the tree: exit 1 naming it (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && grep -q 'pipe.*fifo' '$WORK/err'"
mkdir -p "$WORK/nospec"
k "$TOK" submit -p web "$WORK/nospec"
check "no kiln.yml: exit 1 saying so (rc=$RC)" -- bash -c "[ $RC -eq 1 ] && grep -q 'kiln.yml' '$WORK/err'"
mkdir -p "$WORK/linkspec"
ln -s /etc/passwd "$WORK/linkspec/kiln.yml"
k "$TOK" submit -p web "$WORK/linkspec"
check "kiln.yml as a symbolic link is not followed: exit 1 (rc=$RC)" -- test "$RC" -eq 1
check "nothing was queued by those" -- test "$(jobs_count "$TOK" web)" = "$N0"

# --- configuration file ---------------------------------------------------------------------------
mkdir -p "$XDG_CONFIG_HOME/kiln"
printf 'server = %s\ntoken = %s\n' "$KILN_SERVER" "$TOK" >"$XDG_CONFIG_HOME/kiln/config"
chmod 0644 "$XDG_CONFIG_HOME/kiln/config"
env -u KILN_SERVER "$KILN" status "$HELLO_JOB" >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "a config file readable by others is refused with a clear message (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && grep -q 'chmod 600' '$WORK/err'"
chmod 0600 "$XDG_CONFIG_HOME/kiln/config"
env -u KILN_SERVER "$KILN" status "$HELLO_JOB" >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "with mode 0600 it is used (server and token) (rc=$RC)" -- \
  bash -c "[ $RC -eq 0 ] && grep -q succeeded '$WORK/out'"
rm -f "$XDG_CONFIG_HOME/kiln/config"
KILN_DEBUG=1 KILN_TOKEN=$TOK "$KILN" status "$HELLO_JOB" >"$WORK/out" 2>"$WORK/err" </dev/null
check "KILN_DEBUG=1 shows the request but never the token's secret" -- \
  bash -c "grep -qi 'authorization' '$WORK/err' && ! grep -qF -- '${TOK#kiln_*_}' '$WORK/err'"
KILN_TOKEN=$TOK "$KILN" status "$HELLO_JOB" --server http://127.0.0.1:1 >"$WORK/out" 2>"$WORK/err" </dev/null
RC=$?
check "an unreachable server: exit 1, the message names it (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && grep -q '127.0.0.1:1' '$WORK/err' && [ \$(wc -l <'$WORK/err') -eq 1 ]"

# --- fetch never writes through a link, and never keeps a bad file --------------------------
mkdir -p "$WORK/fx"
ln -s "$WORK/elsewhere" "$WORK/fx/${NAME%%/*}"
mkdir -p "$WORK/elsewhere"
k "$TOK" fetch "$HELLO_JOB" -o "$WORK/fx"
check "kiln fetch refuses a symbolic link on the way: exit 1, nothing written through it (rc=$RC)" -- \
  bash -c "[ $RC -eq 1 ] && [ -z \"\$(ls -A '$WORK/elsewhere')\" ]"
if [ "${#SHA}" -eq 64 ] && [ -f "$DATA/cas/sha256/${SHA:0:2}/${SHA:2}" ]; then
  printf 'X' | dd of="$DATA/cas/sha256/${SHA:0:2}/${SHA:2}" bs=1 seek=100 conv=notrunc 2>/dev/null
  k "$TOK" fetch "$HELLO_JOB" -o "$WORK/corrupt"
  check "a blob corrupted on the server: kiln fetch exits 1 and keeps no file (rc=$RC)" -- \
    bash -c "[ $RC -eq 1 ] && [ -z \"\$(find '$WORK/corrupt' -type f 2>/dev/null)\" ]"
  diag "kiln said: $(cat "$WORK/err")"
else
  ok 1 "the artifact's blob is at DATA/cas/sha256/xx/... (docs of the CAS layout)"
fi

check "kilnd is still healthy" -- healthy
done_testing
