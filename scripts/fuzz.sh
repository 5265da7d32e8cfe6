#!/usr/bin/env bash
# Builds and runs one libFuzzer harness (docs/fuzzing.md).
#   scripts/fuzz.sh packet|config [SECONDS] [extra libFuzzer options...]
# Build: release, -sanitize=fuzzer,address, -D FUZZING (libFuzzer supplies main), in its own
# scratch folder .build-fuzz so the normal .build is untouched. Runs under `nice -n 19`.
# New corpus entries go to .fuzz-corpus/NAME (git-ignored; the seeds in Tests/Fuzz/corpus/NAME
# are read, never written); crashes to fuzz-crashes/NAME-* (git-ignored). Copy a crash into
# Tests/Fuzz/regressions/NAME/ once fixed: `swift test --filter FuzzRegressionTests` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-packet}"
seconds="${2:-60}"
shift $(( $# > 2 ? 2 : $# )) || true
case "$which" in
    packet) max_len=1024 ;;
    config) max_len=12288 ;;
    *) echo "usage: $0 packet|config [SECONDS] [libFuzzer options]" >&2; exit 2 ;;
esac
product="fuzz-$which"
nice -n 19 swift build -c release --product "$product" --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING
bin=".build-fuzz/release/$product"
mkdir -p ".fuzz-corpus/$which" fuzz-crashes
dict=()
[[ -f "Tests/Fuzz/$which.dict" ]] && dict=(-dict="Tests/Fuzz/$which.dict")
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
# The Swift runtime's backtracer would run first and then trip ASan itself; let ASan report.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
exec nice -n 19 "$bin" ".fuzz-corpus/$which" "Tests/Fuzz/corpus/$which" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="fuzz-crashes/$which-" "${dict[@]}" "$@"
