# shellcheck shell=bash
# Helpers shared by the bench/*.sh scripts (sourced, not run).
#
# Results travel as TSV lines appended to $BENCH_TSV (when set by run.sh):
#   bench  variant  mean_ms  stddev_ms  median_ms  min_ms  runs  note
# A skipped row has "-" for the numbers and says why in note.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

# Resolve the build directory (first argument of every script, default
# "build") and the kiln binary in it.
bench_init()
{
	local build=${1:-build}

	case "$build" in
	/*) ;;
	*) build="$REPO_DIR/$build" ;;
	esac
	BUILD_DIR=$build
	KILN=${KILN:-$BUILD_DIR/kiln}
	export BUILD_DIR KILN
}

# kiln rows are measured only once `kiln run -- /bin/true` works; until then
# they are skipped with the reason. run.sh checks once and exports the answer.
bench_kiln_check()
{
	local out rc=0

	if [ -n "${KILN_READY:-}" ]; then
		return 0
	fi
	if [ ! -x "$KILN" ]; then
		KILN_READY=no
		KILN_SKIP="no kiln binary at $KILN (build it first: make)"
	else
		out=$(timeout 60 "$KILN" run -- /bin/true 2>&1) || rc=$?
		if [ "$rc" -eq 0 ]; then
			KILN_READY=yes
			KILN_SKIP=
		else
			KILN_READY=no
			KILN_SKIP="'kiln run -- /bin/true' fails (exit $rc: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160))"
		fi
	fi
	export KILN_READY KILN_SKIP
}

bench_have()
{
	command -v "$1" >/dev/null 2>&1
}

# bench_now_ns VAR: store nanoseconds since the epoch in VAR, without
# forking when bash has $EPOCHREALTIME (a fork would be timed too).
bench_now_ns()
{
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		printf -v "$1" '%s000' "$t"
	else
		printf -v "$1" '%s' "$(date +%s%N)"
	fi
}

# bench_record BENCH VARIANT MEAN SD MEDIAN MIN RUNS [NOTE]   (times in ms)
bench_record()
{
	if [ -n "${BENCH_TSV:-}" ]; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" \
			"${8:-}" >>"$BENCH_TSV"
	fi
}

# bench_skip BENCH VARIANT REASON
bench_skip()
{
	echo "  $2: SKIPPED: $3"
	bench_record "$1" "$2" - - - - 0 "$3"
}

# Numbers in ns on stdin -> "mean sd median min n" in ms (sample stddev).
bench_stats_ms()
{
	sort -n | awk '{ x[n++] = $1; s += $1; ss += $1 * $1 }
	     END {
		if (n == 0) { print "- - - - 0"; exit }
		m = s / n; v = (n > 1) ? (ss - n * m * m) / (n - 1) : 0
		if (v < 0) v = 0
		med = (n % 2) ? x[(n - 1) / 2] : (x[n / 2 - 1] + x[n / 2]) / 2
		printf "%.3f %.3f %.3f %.3f %d\n", m / 1e6, sqrt(v) / 1e6, med / 1e6, x[0] / 1e6, n
	     }'
}
