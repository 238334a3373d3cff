# shellcheck shell=bash
# Shared helpers for the end-to-end tests: TAP output, a real kilnd on a
# free loopback port (started and killed by PID), the real kiln CLI, curl
# for what the CLI would never send, JSON through python3.
#
# Environment (set by meson): KILN (the kiln binary), KILND (the kilnd
# binary), KILN_TESTS (tests/ source dir).
set -u

: "${KILN:?KILN must point at the kiln binary}"
: "${KILND:?KILND must point at the kilnd binary}"
T_N=0
T_FAILED=0
WORK=$(mktemp -d /tmp/kiln-e2e.XXXXXX)
chmod 0755 "$WORK"
KILND_PID=
KILND_N=0
# Never the user's own configuration or server.
export XDG_CONFIG_HOME="$WORK/xdg"
unset KILN_SERVER KILN_TOKEN KILN_PROJECT KILN_DEBUG
# A random tag for markers and file names of this run.
# shellcheck disable=SC2034 # used by the tests
R=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
trap 't_cleanup' EXIT

t_cleanup() {
  kilnd_stop
  rm -rf "$WORK"
}

ok() {   # ok STATUS DESCRIPTION
  local st=$1; shift
  T_N=$((T_N + 1))
  if [ "$st" -eq 0 ]; then
    echo "ok $T_N - $*"
  else
    echo "not ok $T_N - $*"
    T_FAILED=$((T_FAILED + 1))
  fi
}

check() {  # check DESCRIPTION -- COMMAND...: ok if COMMAND succeeds
  local desc=$1; shift
  [ "$1" = "--" ] && shift
  if "$@"; then ok 0 "$desc"; else ok 1 "$desc"; fi
}

diag() { printf '# %s\n' "$@"; }

# diag_file FILE [N]: the first N lines of FILE as TAP comments.
diag_file() { head -n "${2:-10}" "$1" 2>/dev/null | sed 's/^/#   /'; }

done_testing() {
  echo "1..$T_N"
  [ "$T_FAILED" -eq 0 ]
  exit $?
}

bail() {
  echo "Bail out! $*"
  exit 1
}

# --- kilnd ------------------------------------------------------------------

# kilnd_start [KILND ARGS...]: start kilnd on $DATA (default $WORK/data) and
# a free loopback port (KILND_SCHEME=https and KILND_CACERT=FILE when the
# arguments configure TLS); sets KILND_PID, KILN_SERVER (exported), ADMIN_TOKEN,
# KILND_OUT/KILND_ERR (this start's stdout/stderr). Bails out if it does
# not come up: every test after that would be meaningless.
kilnd_start() {
  local addr='' i
  DATA=${DATA:-$WORK/data}
  KILND_N=$((KILND_N + 1))
  KILND_OUT=$WORK/kilnd.$KILND_N.out
  KILND_ERR=$WORK/kilnd.$KILND_N.err
  "$KILND" --data "$DATA" --listen 127.0.0.1:0 "$@" >"$KILND_OUT" 2>"$KILND_ERR" </dev/null &
  KILND_PID=$!
  for i in $(seq 1 200); do
    addr=$(sed -n 's/^.*listening on \([0-9.]*:[0-9][0-9]*\).*$/\1/p' "$KILND_OUT" | tail -1)
    [ -n "$addr" ] && break
    kill -0 "$KILND_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$addr" ]; then
    diag "kilnd did not say 'listening on HOST:PORT'; stdout/stderr:"
    diag_file "$KILND_OUT"; diag_file "$KILND_ERR"
    bail "kilnd ($KILND) did not start"
  fi
  export KILN_SERVER="${KILND_SCHEME:-http}://$addr"
  for i in $(seq 1 100); do
    curl -sf ${KILND_CACERT:+--cacert "$KILND_CACERT"} --max-time 2 "$KILN_SERVER/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf ${KILND_CACERT:+--cacert "$KILND_CACERT"} --max-time 2 "$KILN_SERVER/v1/health" >/dev/null 2>&1 ||
    bail "kilnd at $KILN_SERVER does not answer /v1/health"
  [ -s "$DATA/admin-token" ] || bail "kilnd did not write $DATA/admin-token"
  ADMIN_TOKEN=$(cat "$DATA/admin-token")
}

# kilnd_stop: SIGTERM, then SIGKILL after 10 s.
kilnd_stop() {
  local i
  [ -n "$KILND_PID" ] || return 0
  kill -TERM "$KILND_PID" 2>/dev/null
  for i in $(seq 1 100); do
    kill -0 "$KILND_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$KILND_PID" 2>/dev/null
  wait "$KILND_PID" 2>/dev/null
  KILND_PID=
}

kilnd_kill9() {
  [ -n "$KILND_PID" ] || return 0
  kill -KILL "$KILND_PID" 2>/dev/null
  wait "$KILND_PID" 2>/dev/null
  KILND_PID=
}

healthy() {
  curl -sf --max-time 5 "$KILN_SERVER/v1/health" 2>/dev/null | grep -q '"ok"'
}

# --- kiln, curl, JSON ---------------------------------------------------------

# k TOKEN ARGS...: run the real kiln with TOKEN; stdout in $WORK/out,
# stderr in $WORK/err, exit status in RC.
k() {
  local tok=$1; shift
  KILN_TOKEN=$tok "$KILN" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null
  RC=$?
  return 0
}

# api TOKEN METHOD PATH [CURL ARGS...]: HTTP status in HTTP, body in
# $WORK/body. TOKEN "" sends no Authorization header.
api() {
  local tok=$1 method=$2 path=$3; shift 3
  local auth=()
  [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
  HTTP=$(curl -s --max-time 60 -o "$WORK/body" -w '%{http_code}' -X "$method" \
    "${auth[@]}" "$@" "$KILN_SERVER$path")
}

# jget PATH [FILE]: a value from JSON (FILE, default stdin); PATH like
# "state", "error.code", "jobs.0.id", "jobs.#" (length). Prints "" for
# null/absent, JSON for objects and arrays.
jget() {
  python3 -c '
import json, sys
try:
    v = json.load(open(sys.argv[2]) if len(sys.argv) > 2 else sys.stdin)
except Exception:
    sys.exit(1)
for p in sys.argv[1].split("."):
    if p == "#":
        v = len(v)
    elif isinstance(v, list):
        v = v[int(p)] if int(p) < len(v) else None
    elif isinstance(v, dict):
        v = v.get(p)
    else:
        v = None
if v is None:
    print("")
elif isinstance(v, bool):
    print("true" if v else "false")
elif isinstance(v, (dict, list)):
    print(json.dumps(v))
else:
    print(v)
' "$@"
}

# job_get TOKEN ID KEY: one field of a job (via the API).
job_get() {
  api "$1" GET "/v1/jobs/$2"
  jget "$3" "$WORK/body"
}

# wait_final TOKEN ID [SECONDS]: wait until the job is in a final state;
# prints it.
wait_final() {
  local tok=$1 id=$2 secs=${3:-120} s='' i
  [[ "$id" =~ ^[0-9]+$ ]] || { echo "no-job"; return 1; }
  for i in $(seq 1 $((secs * 4))); do
    s=$(job_get "$tok" "$id" state)
    case "$s" in
      succeeded|failed|timed_out|cancelled|rejected|interrupted) echo "$s"; return 0 ;;
    esac
    sleep 0.25
  done
  echo "${s:-unknown}"
  return 1
}

# wait_state TOKEN ID STATE [SECONDS]
wait_state() {
  local tok=$1 id=$2 want=$3 secs=${4:-60} i
  [[ "$id" =~ ^[0-9]+$ ]] || return 1
  for i in $(seq 1 $((secs * 4))); do
    [ "$(job_get "$tok" "$id" state)" = "$want" ] && return 0
    sleep 0.25
  done
  return 1
}

# wait_checkpoint N: until the served audit checkpoint covers at least N
# entries (kilnd signs one within a second of new entries).
wait_checkpoint() {
  local i s
  for i in $(seq 1 50); do
    s=$(curl -s --max-time 5 "$KILN_SERVER/v1/audit/checkpoint" | sed -n 2p)
    [ -n "$s" ] && [ "$s" -ge "$1" ] && return 0
    sleep 0.2
  done
  return 1
}

# wait_audit_caught_up: until a checkpoint covers every entry the database
# holds now (then `kiln audit show` lists them all).
wait_audit_caught_up() {
  wait_checkpoint "$(sqlite3 "file:$DATA/kiln.db?mode=ro" 'SELECT count(*) FROM audit_entries')"
}

# no_process MARKER [SECONDS]: no process whose command line holds MARKER
# (within SECONDS).
no_process() {
  local i
  for i in $(seq 1 $((${2:-5} * 4))); do
    pgrep -f -- "$1" >/dev/null || return 0
    sleep 0.25
  done
  return 1
}

# setup_project NAME: create project NAME and a submit+read token for it
# (in PTOK), using the admin token.
setup_project() {
  PTOK=
  k "$ADMIN_TOKEN" project create "$1"
  [ "$RC" -eq 0 ] || { diag "project create $1: rc=$RC"; diag_file "$WORK/err"; return 1; }
  k "$ADMIN_TOKEN" token create --project "$1" --scope submit,read --description "e2e $1"
  [ "$RC" -eq 0 ] || { diag "token create: rc=$RC"; diag_file "$WORK/err"; return 1; }
  PTOK=$(cat "$WORK/out")
}

# mksrc DIR SCRIPT [EXTRA KILN.YML LINES]: a source tree with a kiln.yml.
mksrc() {
  local dir=$1 script=$2; shift 2
  mkdir -p "$dir"
  {
    echo "script: |"
    printf '%s\n' "$script" | sed 's/^/  /'
    for l in "$@"; do echo "$l"; done
  } >"$dir/kiln.yml"
}

# submit TOKEN PROJECT DIR: kiln submit; sets RC and JOB (the id).
submit() {
  k "$1" submit --project "$2" "$3"
  JOB=$(head -1 "$WORK/out")
}

# curl_submit TOKEN PROJECT SPECFILE ARCHIVE: POST /v1/jobs by hand.
curl_submit() {
  api "$1" POST /v1/jobs -F "project=$2" -F "spec=<$3" -F "source=@$4;type=application/gzip"
  JOB=$(jget id "$WORK/body")
}

# jobs_count TOKEN PROJECT
jobs_count() {
  api "$1" GET "/v1/jobs?project=$2&limit=500"
  jget 'jobs.#' "$WORK/body"
}
