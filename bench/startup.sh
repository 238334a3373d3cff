#!/bin/bash
# Start-to-exit latency of /bin/true, STARTUP_RUNS times (default 200):
#   bare     /bin/true
#   unshare  unshare -Urmpfniu --mount-proc /bin/true   (namespaces only)
#   bwrap    bubblewrap with comparable isolation
#   kiln     kiln run -- /bin/true                       (every layer on)
# Uses hyperfine when installed (--warmup 5, JSON kept next to the results),
# otherwise a bash loop timed with $EPOCHREALTIME.
#
# Usage: bench/startup.sh [BUILD_DIR]    (default: build)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"
bench_kiln_check

runs=${STARTUP_RUNS:-200}
warmup=${STARTUP_WARMUP:-5}
json_dir=${BENCH_JSON_DIR:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-startup.XXXXXX")
trap 'rm -rf "$work"' EXIT

BWRAP_ARGS="--unshare-all --die-with-parent --new-session --ro-bind /usr /usr
 --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64
 --proc /proc --dev /dev --tmpfs /tmp --cap-drop ALL"
variants=(bare unshare bwrap kiln)
declare -A cmd=(
	[bare]="/bin/true"
	[unshare]="unshare -Urmpfniu --mount-proc /bin/true"
	[bwrap]="bwrap $(echo $BWRAP_ARGS) -- /bin/true"
	[kiln]="$KILN run -- /bin/true"
)

use_hyperfine=no
if bench_have hyperfine; then
	use_hyperfine=yes
	# -N (no intermediate shell, hyperfine >= 1.13): nothing to subtract.
	hf_shell=(-N)
	hyperfine --help 2>/dev/null | grep -q -- '--shell' || hf_shell=()
	echo "startup: hyperfine --warmup $warmup --runs $runs, one /bin/true per run"
else
	echo "startup: hyperfine not installed; bash loop of $runs runs (+$warmup warmup)"
fi

measure_loop()
{
	local c=$1 i t0 t1
	# shellcheck disable=SC2086
	for ((i = 0; i < warmup; i++)); do $c >/dev/null 2>&1; done
	for ((i = 0; i < runs; i++)); do
		bench_now_ns t0
		# shellcheck disable=SC2086
		$c >/dev/null 2>&1
		bench_now_ns t1
		echo $((t1 - t0))
	done | bench_stats_ms
}

for v in "${variants[@]}"; do
	c=${cmd[$v]}
	prog=${c%% *}
	if [ "$v" = kiln ] && [ "$KILN_READY" != yes ]; then
		bench_skip startup kiln "$KILN_SKIP"
		continue
	fi
	if ! bench_have "$prog"; then
		bench_skip startup "$v" "$prog not installed"
		continue
	fi
	# shellcheck disable=SC2086
	if ! err=$($c 2>&1 >/dev/null); then
		bench_skip startup "$v" "'$c' fails here: $(printf '%s' "$err" | head -c 160)"
		continue
	fi
	if [ "$use_hyperfine" = yes ]; then
		# hyperfine's outlier warnings go to its log: on these shared
		# machines there always are some, which is why the median is shown.
		hyperfine "${hf_shell[@]}" --style none --warmup "$warmup" --runs "$runs" \
			--export-json "$work/$v.json" --export-csv "$work/$v.csv" -- "$c" \
			>"$work/$v.log" 2>&1 || { cat "$work/$v.log" >&2; exit 1; }
		# CSV: command,mean,stddev,median,user,system,min,max (seconds)
		read -r mean sd med min < <(awk -F, 'NR == 2 {
			printf "%.3f %.3f %.3f %.3f\n", $2 * 1000, $3 * 1000, $4 * 1000, $7 * 1000 }' \
			"$work/$v.csv")
		n=$runs
		if [ -n "$json_dir" ]; then
			cp "$work/$v.json" "$json_dir/startup-$v.json"
		fi
	else
		read -r mean sd med min n < <(measure_loop "$c")
	fi
	printf '  %-8s mean %8.3f ms +- %7.3f   median %8.3f   min %8.3f   (%s runs)\n' \
		"$v" "$mean" "$sd" "$med" "$min" "$n"
	bench_record startup "$v" "$mean" "$sd" "$med" "$min" "$n" "$c"
done
