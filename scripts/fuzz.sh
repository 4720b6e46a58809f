#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECS seconds each (first argument, default 1800); see the
# Makefile's `fuzz` target. Stops at the first failure, which prints the shrunk failing input.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
export FUZZ_SECS=${1:-${FUZZ_SECS:-1800}}
export FUZZ_CRASH_DIR=${FUZZ_CRASH_DIR:-$PWD/target/fuzz-crashes}
mkdir -p "$FUZZ_CRASH_DIR"
start=$(date +%s)
echo "fuzzing: FUZZ_SECS=$FUZZ_SECS per target, crash inputs in $FUZZ_CRASH_DIR"
for t in "lp-pipelines fuzz" "lp-wire fuzz" "lp-node fuzz_ws"; do
    set -- $t
    "$CARGO" test -p "$1" --test "$2" -- --nocapture --test-threads 2
done
echo "fuzzing: every target passed in $(( $(date +%s) - start )) s"
