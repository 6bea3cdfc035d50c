#!/usr/bin/env bash
# test.sh: the whole test suite. Sets up (scripts/setup.sh), then runs
#   1. every suite on the normal build,
#   2. the unit suites (crypto, core, control, farad) under ASan+UBSan,
#   3. the libFuzzer targets (suite fuzz), each for a short run, built with clang.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== unit and interop suites"
meson test -C build --print-errorlogs

echo "== unit suites under ASan+UBSan"
if [ ! -d build-asan ]; then
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C build-asan unit-tests
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --no-rebuild --print-errorlogs --suite crypto --suite core --suite control --suite farad

echo "== fuzz targets (clang, libFuzzer)"
if [ ! -d build-fuzz ]; then
  CXX=clang++ meson setup build-fuzz -Dfuzz=true
fi
ninja -C build-fuzz fuzzers
meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz
