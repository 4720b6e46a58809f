#!/usr/bin/env bash
# Mutation testing of the guard modules with cargo-mutants (`make mutants`; not part of
# `make test`: hours for every group on two cores).
#
# Each group mutates some modules and runs the tests that cover them. It runs on a copy of the
# committed HEAD (a git worktree under target/mutants/tree, which shares build/), so the
# checkout is never mutated; commit first to test a change. Its target dir is kept between runs,
# so only the first run builds from scratch.
#
#   MUTANTS_GROUPS   the groups to run (default: all, in this order):
#                    pm          lp-chain's ticket primitives (signatures, EV, face value, checks)
#                    admission   the orchestrator's auth, sessions, caps and worker pool
#                    gateway     the gateway's stream session and orchestrator selection
#                    tickets     the orchestrator's ticket receiver and the gateway's ticket sender
#                    settlement  sender watcher (funds, max float, chain view) and redeemer
#                    chain       block and round watchers, round initializer, reward caller,
#                                orchestrator registry
#   MUTANTS_ARGS     more cargo-mutants arguments (e.g. "--shard 0/4", "--re ticket_count")
#
# Results: target/mutants/<group>/mutants.out/{caught,missed,timeout,unviable}.txt, and a line
# of counts per group at the end. Missed mutants we keep are listed, with why, in
# docs/mutants.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VERSION=27.1.0
TOOLS=$ROOT/build/tools
BIN=$TOOLS/bin/cargo-mutants
if ! [ -x "$BIN" ] || ! "$BIN" mutants --version | grep -q "$VERSION"; then
    echo "installing cargo-mutants $VERSION into $TOOLS (from the crate registry; a few minutes)"
    cargo install --locked --root "$TOOLS" --version "$VERSION" cargo-mutants
fi

OUT=$ROOT/target/mutants
TREE=$OUT/tree
mkdir -p "$OUT"
git worktree remove --force "$TREE" 2>/dev/null || rm -rf "$TREE"
git worktree prune
git worktree add --quiet --detach "$TREE" HEAD
# What `make setup` put beside the sources: FFmpeg's .pc files, ONNX Runtime, the models, and
# anvil (under chain/contracts/node_modules).
ln -s "$ROOT/build" "$TREE/build"
ln -s "$ROOT/chain/contracts/node_modules" "$TREE/chain/contracts/node_modules"
trap 'git -C "$ROOT" worktree remove --force "$TREE" 2>/dev/null || true' EXIT

# group -> "package|files (space separated)|cargo test arguments"
declare -A GROUP_SPECS=(
    [pm]="lp-chain|chain/src/pm/*.rs|--lib --test pm --test pm_props"
    [admission]="lp-actors|actors/src/orchestrator/auth.rs actors/src/orchestrator/auth_session.rs actors/src/orchestrator/orchestrator.rs actors/src/orchestrator/session_cap.rs actors/src/orchestrator/worker_pool.rs|--lib --test guards --test supervision --test ai_pool --test payments"
    [gateway]="lp-actors|actors/src/gateway/stream_session.rs actors/src/gateway/orchestrator_pool.rs|--lib --test guards --test supervision --test payments --test ai_pool"
    [tickets]="lp-actors|actors/src/orchestrator/ticket_receiver.rs actors/src/gateway/ticket_sender.rs|--lib --test payments"
    [settlement]="lp-actors|actors/src/chain/sender_watcher.rs actors/src/chain/redeemer.rs|--lib --test payments --test redeemer --test sender_watcher"
    [chain]="lp-actors|actors/src/chain/block_watcher.rs actors/src/chain/round_watcher.rs actors/src/chain/round_initializer.rs actors/src/chain/reward_caller.rs actors/src/chain/orchestrator_registry.rs|--lib --test chain --test chain_replaced"
)
ORDER=(pm admission gateway tickets settlement chain)

summary=()
for group in ${MUTANTS_GROUPS:-${ORDER[*]}}; do
    spec=${GROUP_SPECS[$group]:-}
    if [ -z "$spec" ]; then
        echo "unknown group $group; the groups: ${ORDER[*]}" >&2
        exit 64
    fi
    IFS='|' read -r package files test_args <<<"$spec"
    file_args=()
    for f in $files; do file_args+=(-f "$f"); done
    echo "== $group: $package, $files"
    # cargo-mutants exits 2 when mutants were missed, 3 on timeouts: both are results here;
    # anything else (a usage error, tests failing before any mutation) stops the run.
    rc=0
    # shellcheck disable=SC2086
    (cd "$TREE" && CARGO_TARGET_DIR=$OUT/target CARGO_INCREMENTAL=1 CARGO_PROFILE_DEV_DEBUG=0 \
        "$BIN" mutants --in-place --no-shuffle -p "$package" "${file_args[@]}" --timeout-multiplier 3 --minimum-test-timeout 60 \
        -o "$OUT/$group" ${MUTANTS_ARGS:-} -- $test_args) || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ "$rc" -ne 3 ]; then
        echo "cargo-mutants failed on group $group (exit $rc): see $OUT/$group/mutants.out/debug.log" >&2
        exit "$rc"
    fi
    counts=""
    for kind in caught missed timeout unviable; do
        n=$(grep -c . "$OUT/$group/mutants.out/$kind.txt" 2>/dev/null || true)
        counts+="$kind ${n:-0}, "
    done
    summary+=("$group: ${counts%, }")
done
echo
echo "== cargo-mutants $VERSION, per group:"
printf '   %s\n' "${summary[@]}"
echo "   missed: target/mutants/<group>/mutants.out/missed.txt; the ones kept, with why: docs/mutants.md"
