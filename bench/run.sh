#!/bin/bash
# Run every benchmark once and print one table of ratios; the same table goes
# to bench/results/latest.md (with the raw rows in latest.tsv and hyperfine's
# JSON). The machines these run on are noisy: compare the ratios inside one
# table, not absolute times across runs. See bench/README.md.
#
# Usage: bench/run.sh [BUILD_DIR]    (make bench: BUILD_DIR=build)
# As root, installs bubblewrap and hyperfine with apt-get when missing.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"

results="$BENCH_DIR/results"
mkdir -p "$results"
started=$EPOCHREALTIME
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tools ---------------------------------------------------------------
declare -A tool_pkg=([bwrap]=bubblewrap [hyperfine]=hyperfine)
missing=()
for t in bwrap hyperfine; do
	bench_have "$t" || missing+=("${tool_pkg[$t]}")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ] && bench_have apt-get; then
		echo "bench: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
			  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } ||
			echo "bench: could not install ${missing[*]}; continuing without" >&2
	else
		echo "bench: missing ${missing[*]} (not root: not installing); the bwrap row is" \
		     "skipped without bubblewrap, and timing falls back to a bash loop without hyperfine"
	fi
fi
notes=()
bench_have hyperfine || notes+=("hyperfine not installed: startup timed with a bash loop (\$EPOCHREALTIME), which adds a little per-run overhead to every row.")
bench_have bwrap || notes+=("bubblewrap not installed: no bwrap row.")

# ---- kiln ----------------------------------------------------------------
bench_kiln_check
if [ "$KILN_READY" = yes ]; then
	echo "bench: kiln: $KILN"
else
	echo "bench: kiln rows SKIPPED: $KILN_SKIP"
	notes+=("kiln rows skipped: $KILN_SKIP")
fi

# ---- benches --------------------------------------------------------------
tsv=$(mktemp "${TMPDIR:-/tmp}/kiln-bench.XXXXXX")
trap 'rm -f "$tsv"' EXIT
rm -f "$results"/startup-*.json
export BENCH_TSV=$tsv BENCH_JSON_DIR=$results

"$BENCH_DIR/startup.sh" "$BUILD_DIR"
echo
"$BENCH_DIR/build.sh" "$BUILD_DIR"
echo

# ---- table ----------------------------------------------------------------
# value BENCH VARIANT FIELD: mean sd median min runs note
value()
{
	local col
	case "$3" in
	mean) col=3 ;; sd) col=4 ;; median) col=5 ;; min) col=6 ;; runs) col=7 ;; note) col=8 ;;
	*) return 1 ;;
	esac
	awk -F'\t' -v b="$1" -v v="$2" -v c="$col" '$1 == b && $2 == v { print $c; exit }' "$tsv"
}
# ratio A B: A/B with 2 decimals, "-" when either is missing
ratio()
{
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"
		else printf "%.2f\n", a / b }'
}
# fmt X [DECIMALS]: a number rounded, or "-"
fmt()
{
	awk -v x="$1" -v d="${2:-2}" 'BEGIN { if (x == "-" || x == "") print "-"; else printf "%.*f\n", d, x }'
}

table=$(mktemp "${TMPDIR:-/tmp}/kiln-bench-table.XXXXXX")
trap 'rm -f "$tsv" "$table"' EXIT
{
	echo "### Start-up: \`/bin/true\`, start to exit ($(value startup bare runs) runs each)"
	echo
	echo "| variant | mean ms | stddev | median ms | min ms | mean / bare | median / bare |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for v in bare unshare bwrap kiln; do
		m=$(value startup "$v" mean)
		[ -z "$m" ] && continue
		if [ "$m" = - ]; then
			echo "| $v | skipped | | | | | |"
			continue
		fi
		md=$(value startup "$v" median)
		echo "| $v | $(fmt "$m") | $(fmt "$(value startup "$v" sd)") | $(fmt "$md") |" \
		     "$(fmt "$(value startup "$v" min)") | $(ratio "$m" "$(value startup bare mean)") |" \
		     "$(ratio "$md" "$(value startup bare median)") |"
	done
	echo
	for s in mean median; do
		k=$(value startup kiln "$s")
		echo "- $s: **kiln / bwrap = $(ratio "$k" "$(value startup bwrap "$s")")**," \
		     "kiln / bare = $(ratio "$k" "$(value startup bare "$s")")," \
		     "kiln / unshare = $(ratio "$k" "$(value startup unshare "$s")")"
	done
	echo
	echo "### Workloads: wall time, bare vs \`kiln run\` (the kiln time includes copying the sources in)"
	echo
	echo "| workload | runs | bare ms | kiln ms | kiln / bare | overhead | target |"
	echo "|---|---:|---:|---:|---:|---:|---|"
	for w in build tree; do
		b=$(value "$w" bare mean)
		k=$(value "$w" kiln mean)
		[ -z "$b" ] && continue
		r=$(ratio "$k" "$b")
		over=$(awk -v r="$r" 'BEGIN { if (r == "-") print "-"; else printf "%+.1f%%\n", (r - 1) * 100 }')
		target=
		if [ "$w" = build ]; then
			target=$(awk -v k="$k" -v b="$b" 'BEGIN {
				if (k == "-" || k == "") print "<= +2%: not measured"
				else if (k <= b * 1.02) print "<= +2%: met"
				else print "<= +2%: MISSED" }')
		fi
		kcell=$(fmt "$k" 0)
		[ "$kcell" = - ] && kcell="skipped"
		case "$(value "$w" kiln note)" in "kiln run failed"*) kcell=$(value "$w" kiln note) ;; esac
		echo "| $w: $(value "$w" bare note) | $(value "$w" bare runs) | $(fmt "$b" 0) | $kcell | $r | $over | $target |"
	done
	if [ ${#notes[@]} -gt 0 ]; then
		echo
		for n in "${notes[@]}"; do echo "- $n"; done
	fi
} >"$table"

elapsed=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
{
	echo "# kiln benchmarks: latest run"
	echo
	echo "One run of \`bench/run.sh\` on a shared, noisy machine: read the ratios"
	echo "within this table; absolute times move from run to run. See bench/README.md."
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), took ${elapsed}s"
	echo "- commit: $(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "- host: $(uname -sr), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), load before: $load_before"
	echo "- tools: hyperfine $(hyperfine --version 2>/dev/null | awk '{ print $2 }' || true), $(bwrap --version 2>/dev/null || echo 'bwrap: none'), $(unshare --version 2>/dev/null | head -1)"
	echo
	cat "$table"
} >"$results/latest.md"
cp "$tsv" "$results/latest.tsv"

cat "$table"
echo
echo "bench: took ${elapsed}s; written to ${results#"$REPO_DIR"/}/latest.md"

# kilnd under load: hundreds of small jobs submitted concurrently.
if [ -x "$BUILD_DIR/kilnd" ]; then
	echo
	echo "== kilnd load: 200 jobs, 16 concurrent submitters"
	"$REPO_DIR/bench/load.sh" "$BUILD_DIR" 200 16 || echo "bench: load test FAILED"
fi
