# livepeer-rs. `make demo` and `make test` work on a fresh Debian bookworm machine with Rust:
# both run `setup`, which installs what is missing (idempotent).
CARGO ?= cargo
DEMO_OUT ?= demo-out
# More `livepeer demo` flags, e.g. DEMO_ARGS="--seconds 60 --serve".
DEMO_ARGS ?=

.PHONY: setup build demo demo-offchain test lint bench bench-memory bench-latency bench-sweep fuzz mutants update-hls-js clean

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --bin livepeer

# The whole network on a devnet chain (anvil, from `setup`): registration, funding, tickets and
# their redemption; demo-offchain: the same stream without a chain or payments.
demo: build
	./target/release/livepeer demo --out $(DEMO_OUT) $(DEMO_ARGS)

demo-offchain: build
	./target/release/livepeer demo --offchain --out $(DEMO_OUT) $(DEMO_ARGS)

# Every test: unit, integration, end to end (tests/ boots real `livepeer` processes), then
# formatting and clippy with warnings denied.
test: setup
	$(CARGO) test --workspace --no-fail-fast
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Our transcoding pipeline against the FFmpeg CLI on livepeer_bench's ladder, in one run; our
# upscale against onnxruntime's Python API on the same model, image and threads (AI_RUNS,
# AI_THREADS), and llm tokens/s; then ticket signing and validation per core beside raw
# libsecp256k1 sign and recover.
bench: setup
	@bash scripts/setup.sh bench
	$(CARGO) bench -p lp-pipelines --bench ladder
	$(CARGO) bench -p lp-pipelines --bench ai
	$(CARGO) bench -p lp-chain --bench tickets

# The node's memory: fresh, per idle stream session and after 500 one-segment streams have ended
# (tests/memory.rs; MEMORY_STREAMS, MEMORY_ROUNDS, LP_TEST_BIN tune it). A few minutes.
bench-memory: setup
	$(CARGO) test -p lp-node --test memory -- --ignored --nocapture

# The per-segment overhead around the transcode (client time minus the node's own transcode
# time, p50 and p99) on the release build: tests/latency.rs (LATENCY_SEGMENTS tunes it).
bench-latency: build
	LP_TEST_BIN=$(CURDIR)/target/release/livepeer $(CARGO) test --release -p lp-node --test latency -- --ignored --nocapture

# Node sizing the way go-livepeer's livepeer_bench does it: `livepeer bench` (the release build)
# runs K = 1, 2, 3 ... live streams of a 1080p30 segment into livepeer_bench's ladder through
# the orchestrator's transcoder and through the FFmpeg 9.0.2 CLI, interleaved, and writes the
# largest K at a real-time duration ratio of at most 0.8 to <data_dir>/bench.json, which
# max_sessions = "auto" reads. SWEEP_ARGS adds flags (`-c FILE` for a node's preset, capacity
# and data_dir; `--segments N`). A few minutes.
SWEEP_ARGS ?=
bench-sweep: build
	@bash scripts/setup.sh bench
	./target/release/livepeer bench --baseline build/ffmpeg9/ffmpeg $(SWEEP_ARGS)

# Fuzzing, by hand, for hours: every fuzz target (pipelines/tests/fuzz.rs: segment demux,
# probe, transcode, profiles; wire/tests/fuzz.rs: the MessagePack wire messages;
# node/tests/fuzz_ws.rs: the orchestrator's transcoder WebSocket) runs fresh random cases for
# FUZZ_SECS seconds (the wire targets share theirs among the message types), two at a time: about
# 7 x FUZZ_SECS in all. `make test` runs the same targets with a bounded number of cases. A
# failure prints the shrunk input; the input of the FFmpeg case running when the process died
# (a crash in FFmpeg) is left in target/fuzz-crashes/<target>.current.
FUZZ_SECS ?= 1800
fuzz: setup
	bash scripts/fuzz.sh $(FUZZ_SECS)

# Mutation testing of the guard modules (scripts/mutants.sh: cargo-mutants from the crate
# registry, installed into build/tools on first use) on a copy of the committed HEAD, one group
# of modules at a time with the tests that cover them (MUTANTS_GROUPS=pm ... to choose; the
# missed mutants we keep, with why: docs/mutants.md). Hours for every group on two cores; not
# part of `make test`.
mutants: setup
	bash scripts/mutants.sh

# Vendor hls.js again (node/assets/hls.light.min.js and its license, the player page's) from npm
# at the version pinned in scripts/update-hls-js.sh; HLS_JS_VERSION=x.y.z for another.
update-hls-js:
	bash scripts/update-hls-js.sh

clean:
	$(CARGO) clean
	rm -rf build $(DEMO_OUT)
