#!/usr/bin/env bash
# Leak check for LDNSKit, the only module that calls libldns.
#
# Builds the small `ldns-leakcheck` executable with AddressSanitizer (LeakSanitizer included)
# in its own scratch path, runs it over good and broken zone files and record values
# ITERATIONS times (default 200), and fails on any leak report or sanitizer error.
#
#   scripts/leak-check.sh [ITERATIONS]
set -euo pipefail

cd "$(dirname "$0")/.."
iterations="${1:-200}"
scratch=.build-asan

# Swift's toolchain ships its own sanitizer runtime; only when it is missing fall back to the
# distribution's clang runtime package (we run as root on the build machines).
swift_bin="$(dirname "$(readlink -f "$(command -v swift)")")"
if ! ls "$swift_bin"/../lib/clang/*/lib/linux/libclang_rt.asan-x86_64.a \
        "$swift_bin"/../lib/swift/clang/lib/linux/libclang_rt.asan-x86_64.a >/dev/null 2>&1; then
    echo "leak-check: AddressSanitizer runtime not found in the Swift toolchain; installing libclang-rt-14-dev"
    apt-get install -y libclang-rt-14-dev
fi

echo "leak-check: building ldns-leakcheck with --sanitize=address in $scratch"
# ld.gold prints one harmless "Cannot export local symbol '__asan_...'" line per ASan helper.
swift build --sanitize=address --scratch-path "$scratch" --product ldns-leakcheck 2>&1 \
    | { grep -v "Cannot export local symbol" || true; }

bin="$(swift build --sanitize=address --scratch-path "$scratch" --show-bin-path)/ldns-leakcheck"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "leak-check: running $iterations iterations under LeakSanitizer"
status=0
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:exitcode=23" "$bin" "$iterations" >"$log" 2>&1 || status=$?
cat "$log"

if grep -q "ERROR: LeakSanitizer\|ERROR: AddressSanitizer" "$log"; then
    echo "leak-check: FAILED (sanitizer report above)"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "leak-check: FAILED (exit status $status)"
    exit 1
fi
echo "leak-check: OK, no leaks reported"
