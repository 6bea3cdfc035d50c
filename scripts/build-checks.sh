#!/usr/bin/env bash
# build-checks.sh: configures and builds the trees the checks of scripts/test.sh
# run besides the normal build: the unit suites under ASan+UBSan, the threaded
# tests under TSan, the libFuzzer targets with clang. test.sh starts it in the
# background while the normal suites run; it can also be run on its own.
#
# The sanitizer builds are unoptimized (-O0): they compile about three times
# faster than -O2, and the unit suites stay quick without optimization. They
# keep line tables only (-g1): a sanitizer's report still names file and line,
# and the heaviest files compile a quarter faster than with full -g.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${CHECKS_JOBS:-$(nproc)}

if [ ! -d build-asan ]; then
  meson setup build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-g1
fi
ninja -C build-asan -j "$jobs" unit-tests

if [ ! -d build-tsan ]; then
  # GCC warns that TSan cannot see atomic_thread_fence (Asio's handler fences);
  # harmless with one thread per io_context, fatal with werror.
  meson setup build-tsan -Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false \
    "-Dcpp_args=['-Wno-tsan','-g1']"
fi
ninja -C build-tsan -j "$jobs" tests/control/control_threads_test \
  tests/crypto/crypto_threads_test tests/dataplane/dataplane_threads_test control/faradayd

if [ ! -d build-fuzz ]; then
  # Unoptimized too: the suite's fuzz run is a smoke run of a few seconds,
  # where build time counts more than executions per second.
  CXX=clang++ meson setup build-fuzz -Dbuildtype=debug -Dfuzz=true -Dfuzz_seconds=5 \
    -Dcpp_args=-g1
fi
ninja -C build-fuzz -j "$jobs" fuzzers
