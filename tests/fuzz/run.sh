#!/usr/bin/env bash
# run.sh TARGET SEED_DIR WORK_DIR: runs one libFuzzer target for FUZZ_SECONDS
# (default 20). New inputs go to WORK_DIR, never into the seeds in the tree.
# A crash leaves its reproducer in WORK_DIR and fails the test.
set -euo pipefail
target=$(realpath "$1") seeds=$(realpath "$2") work=$3
mkdir -p "$work"
work=$(realpath "$work")
cd "$work"
exec "$target" -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=2048 -print_final_stats=1 \
  "$work" "$seeds"
