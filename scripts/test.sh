#!/usr/bin/env bash
# test.sh: the whole test suite. Sets up (scripts/setup.sh), then runs
#   0. the layout rules (scripts/check-layout.py: includes, file and function sizes),
#   1. every suite on the normal build,
#   2. the unit suites (crypto, dataplane, dpdk, control, faradayctl, farad, rkt) under ASan+UBSan,
#   3. the threads of faradayd cluster (the data path programmed from another
#      thread, the node links), the AEAD lanes that share a burst
#      (crypto/aead_parallel.h), the data-path workers that share one Device while
#      its control thread churns it (dataplane/worker.h), the anti-replay window
#      they share (dataplane/replay.h), the lcores' neighbour news
#      (underlay_link.h) and the turns on one queue (dataplane/turns.h) under
#      ThreadSanitizer,
#   4. the libFuzzer targets (suite fuzz), each for a short run, built with clang.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== layout"
python3 scripts/check-layout.py

# The checks' own builds (ASan, TSan, fuzz) take as long as the interop and
# cluster suites, which mostly wait on namespaces and timers: they are built
# meanwhile, at the lowest priority so the suites keep the CPU they ask for.
echo "== sanitizer and fuzz builds: in the background, log in build-checks.log"
setsid nice -n 19 scripts/build-checks.sh >build-checks.log 2>&1 &
checks=$!
trap 'kill -- -$checks 2>/dev/null || true' EXIT

echo "== unit and interop suites"
# CI leaves out the wireguard-go <-> wireguard-go pair: it checks the interop
# scripts against Debian's wireguard-go on both sides, not faradayd, and the
# scripts change rarely; CI's run stays under its 30 minutes.
if [ "${CI:-}" = true ]; then
  meson test -C build --print-errorlogs --no-suite interop-wggo-wggo
else
  meson test -C build --print-errorlogs
fi

echo "== waiting for the sanitizer and fuzz builds"
if ! wait $checks; then
  tail -n 60 build-checks.log
  echo "test.sh: the sanitizer or fuzz build failed (whole log: build-checks.log)" >&2
  exit 1
fi
trap - EXIT

echo "== unit suites under ASan+UBSan"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --no-rebuild --print-errorlogs --suite crypto --suite dataplane --suite dpdk --suite control --suite faradayctl --suite farad --suite rkt

echo "== cluster threads, AEAD lanes, data-path workers, lcores' neighbour news and faradayd's queue workers under TSan"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  build-tsan/tests/control/control_threads_test --gtest_filter='DataPath*:Links*'
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  build-tsan/tests/crypto/crypto_threads_test --gtest_filter='ParallelAead*:AeadHelpers*'
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  build-tsan/tests/dataplane/dataplane_threads_test --gtest_filter='WorkersStress*:*ReplayConcurrent*:NewsBoardConcurrent*:TurnsConcurrent*'
# tsan_case WHAT CMD...: runs CMD (a suite that starts the TSan build of
# faradayd); a report ends the daemon and is kept in its own file, printed
# here; either a report or CMD's failure fails test.sh, naming WHAT.
tsan_case() {
  local what=$1 logs rc=0
  shift
  logs=$(mktemp -d)
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:log_path=$logs/tsan "$@" || rc=$?
  if compgen -G "$logs/tsan*" >/dev/null; then
    cat "$logs"/tsan* >&2
    echo "test.sh: ThreadSanitizer reported on faradayd in $what (above)" >&2
    exit 1
  fi
  rm -rf "$logs"
  if [ "$rc" -ne 0 ]; then
    echo "test.sh: $what with faradayd under TSan failed (exit $rc)" >&2
    exit 1
  fi
}
# Two faradayd with 2 workers each, TCP both ways through real namespaces: the
# kernel path's queue workers and their turns on each other's queues (bulk.sh
# logs how many each side took). TCP order is checked in the suite's own run:
# here the daemons run 5-15 times slower and may lose.
tsan_case "the bulk case" env IMPL_A=faradayd IMPL_B=faradayd FARADAYD_ARGS='--workers 2' \
  IPERF_FLOOR_MBIT=10 ORDER_CHECK=0 tests/interop/bulk.sh "$PWD/build-tsan/control/faradayd"
# Containers on two nodes (two workers each): the containers' table read by
# the queue workers while faraday-cni's ADDs replace it, ping and TCP from
# container to container (containers.sh items 1-2).
tsan_case "the containers case" env E2E_LAST=2 tests/e2e/containers.sh \
  "$PWD/build-tsan/control/faradayd" build/faradayctl/faradayctl build/farad/farad \
  build/rkt/faraday-cni

echo "== fuzz targets (clang, libFuzzer)"
meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz
