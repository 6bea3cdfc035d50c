#!/usr/bin/env bash
# test.sh: the whole test suite. Sets up (scripts/setup.sh), then runs
#   0. the layout rules (scripts/check-layout.py: includes, file and function sizes),
#   1. every suite on the normal build,
#   2. the unit suites (crypto, dataplane, control, faradayctl, farad) under ASan+UBSan,
#   3. the threads of faradayd cluster (the data path programmed from another
#      thread, the node links), the AEAD lanes that share a burst
#      (crypto/aead_parallel.h), the data-path workers that share one Device while
#      its control thread churns it (dataplane/worker.h) and the anti-replay window
#      they share (dataplane/replay.h) under ThreadSanitizer,
#   4. the libFuzzer targets (suite fuzz), each for a short run, built with clang.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== layout"
python3 scripts/check-layout.py

echo "== unit and interop suites"
meson test -C build --print-errorlogs

# The sanitizer builds are unoptimized (-O0): they compile about three times
# faster than -O2, which is most of this script's time, and the unit suites
# stay quick without optimization.
echo "== unit suites under ASan+UBSan"
if [ ! -d build-asan ]; then
  meson setup build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C build-asan unit-tests
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --no-rebuild --print-errorlogs --suite crypto --suite dataplane --suite control --suite faradayctl --suite farad

echo "== cluster threads, AEAD lanes and data-path workers under TSan"
if [ ! -d build-tsan ]; then
  # GCC warns that TSan cannot see atomic_thread_fence (Asio's handler fences);
  # harmless with one thread per io_context, fatal with werror.
  meson setup build-tsan -Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false \
    -Dcpp_args=-Wno-tsan
fi
ninja -C build-tsan tests/control/control_test tests/crypto/crypto_test \
  tests/dataplane/dataplane_threads_test
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  build-tsan/tests/control/control_test --gtest_filter='DataPath*:Links*'
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  build-tsan/tests/crypto/crypto_test --gtest_filter='ParallelAead*'
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  build-tsan/tests/dataplane/dataplane_threads_test --gtest_filter='WorkersStress*:ReplayConcurrent*'

echo "== fuzz targets (clang, libFuzzer)"
if [ ! -d build-fuzz ]; then
  CXX=clang++ meson setup build-fuzz -Dfuzz=true
fi
ninja -C build-fuzz fuzzers
meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz
