# shellcheck shell=bash
# Shared helpers for the attack tests: TAP output, running `kiln run`,
# host-side checks. Every attack is judged from the host side.
#
# Environment (set by meson): KILN (the kiln binary), KILN_ATTACK (the
# attack helper binary), KILN_TESTS (tests/ source dir).
set -u

: "${KILN:?KILN must point at the kiln binary}"
T_N=0
T_FAILED=0
WORK=$(mktemp -d /tmp/kiln-attack.XXXXXX)
chmod 0755 "$WORK"
trap 't_cleanup' EXIT

t_cleanup() {
  # Exported trees may hold read-only dirs.
  chmod -R u+rwX "$WORK" 2>/dev/null
  rm -rf "$WORK"
}

ok() {   # ok COND-EXIT-STATUS DESCRIPTION
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

diag() { printf '# %s\n' "$@" | sed 's/^# \(.*\)$/# \1/'; }

done_testing() {
  echo "1..$T_N"
  [ "$T_FAILED" -eq 0 ]
  exit $?
}

# A test that cannot run: skip with a reason, except on CI where nothing
# security-related may be skipped.
skip_all() {
  if [ "${CI:-}" = "true" ]; then
    echo "not ok 1 - cannot run on CI: $*"
    echo "1..1"
    exit 1
  fi
  echo "1..0 # SKIP $*"
  exit 77
}

require_root() {
  [ "$(id -u)" -eq 0 ] || skip_all "needs root"
}

# kiln_run ARGS... : runs `kiln run` with stdout in $WORK/out.txt, stderr in
# $WORK/err.txt, the report in $WORK/report.json; sets RC.
kiln_run() {
  rm -f "$WORK/report.json"
  "$KILN" run --report "$WORK/report.json" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null
  RC=$?
  return 0
}

# report_get KEY: a top-level value of the last report (jq-free: python3).
report_get() {
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list)) else ("" if v is None else v))' \
    "$WORK/report.json" "$1" 2>/dev/null
}

# denied_count NAME: how many times the supervisor saw syscall NAME denied.
denied_count() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["denied_syscalls"].get(sys.argv[2],0))' \
    "$WORK/report.json" "$1" 2>/dev/null || echo 0
}

# A random canary string that must never appear where it should not.
canary() { echo "KILNCANARY$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }

# not_in_outputs STRING [DIR...]: STRING is absent from stdout, stderr, the
# report and every file under the given dirs.
not_in_outputs() {
  local s=$1; shift
  ! grep -rqaF -- "$s" "$WORK/out.txt" "$WORK/err.txt" "$@" 2>/dev/null
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Copy the attack helper into a fresh source dir so the sandbox can run it
# as /workspace/attack.
new_src() {
  local d
  d=$(mktemp -d "$WORK/src.XXXXXX")
  chmod 0755 "$d"
  if [ -n "${KILN_ATTACK:-}" ] && [ -x "$KILN_ATTACK" ]; then
    cp "$KILN_ATTACK" "$d/attack"
  fi
  echo "$d"
}
