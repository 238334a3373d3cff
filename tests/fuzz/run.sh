#!/bin/bash
# Run every libFuzzer harness of a build briefly, each on a temporary copy of
# its seed corpus (tests/fuzz/corpus/NAME/), so the checked-in seeds never
# change. Exits non-zero if any harness finds a crash, a leak, a sanitizer
# report or a timeout; the reproducer is kept under BUILD_DIR/fuzz-artifacts/.
#
# Usage: tests/fuzz/run.sh BUILD_DIR     (make fuzz: BUILD_DIR=build-clang)
# Environment: FUZZ_SECONDS (default 20) and FUZZ_RUNS (default 2000000)
# bound each harness; FUZZ_KEEP_CORPUS=1 keeps the grown corpus.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR (a build configured with CC=clang -Dfuzz=true)" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-20}
runs=${FUZZ_RUNS:-2000000}

shopt -s nullglob
harnesses=()
for h in "$build"/tests/fuzz/fuzz_*; do
	if [ -f "$h" ] && [ -x "$h" ]; then
		harnesses+=("$h")
	fi
done
if [ ${#harnesses[@]} -eq 0 ]; then
	echo "fuzz: no harnesses in $build/tests/fuzz; configure with: CC=clang meson setup $1 -Dfuzz=true && ninja -C $1" >&2
	exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts="$build/fuzz-artifacts"
failed=()

for h in "${harnesses[@]}"; do
	name=$(basename "$h")
	name=${name#fuzz_}
	corpus="$work/$name/corpus"
	mkdir -p "$corpus" "$work/$name/artifacts"
	if [ -d "$here/corpus/$name" ]; then
		cp -- "$here/corpus/$name"/* "$corpus"/ 2>/dev/null || true
	fi
	args=(-max_total_time="$seconds" -runs="$runs" -timeout=10 -rss_limit_mb=2048
	      -max_len=4160 -print_final_stats=1 -error_exitcode=1 -timeout_exitcode=1
	      -artifact_prefix="$work/$name/artifacts/")
	[ -f "$here/$name.dict" ] && args+=(-dict="$here/$name.dict")

	echo "fuzz: $name: ${seconds}s or $runs runs, seeds: $(ls "$corpus" | wc -l)"
	rc=0
	(cd "$work/$name" && "$h" "${args[@]}" "$corpus") >"$work/$name/log" 2>&1 || rc=$?
	grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$name/log" |
		sed "s/^/fuzz: $name: /" || true
	if [ "$rc" -ne 0 ]; then
		failed+=("$name")
		echo "fuzz: $name: FAILED (exit $rc); last lines of the log:" >&2
		tail -n 40 "$work/$name/log" >&2
		mkdir -p "$artifacts"
		for a in "$work/$name/artifacts"/*; do
			cp -- "$a" "$artifacts/$name-$(basename "$a")"
			echo "fuzz: $name: reproducer kept: $artifacts/$name-$(basename "$a")" >&2
			echo "fuzz: $name: replay with: $h $artifacts/$name-$(basename "$a")" >&2
		done
	else
		echo "fuzz: $name: ok (corpus grew to $(ls "$corpus" | wc -l) inputs)"
	fi
	if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
		mkdir -p "$build/fuzz-corpus/$name"
		cp -- "$corpus"/* "$build/fuzz-corpus/$name"/
	fi
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: all ${#harnesses[@]} harness(es) ran clean"
