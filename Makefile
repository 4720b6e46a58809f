# livepeer-rs. `make demo` and `make test` work on a fresh Debian bookworm machine with Rust:
# both run `setup`, which installs what is missing (idempotent).
CARGO ?= cargo
DEMO_OUT ?= demo-out

.PHONY: setup build demo test lint bench clean

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --bin livepeer

demo: build
	./target/release/livepeer demo --out $(DEMO_OUT)

# Every test: unit, integration, end to end (tests/ boots real `livepeer` processes), then
# formatting and clippy with warnings denied.
test: setup
	$(CARGO) build --bin livepeer
	$(CARGO) test --workspace --no-fail-fast
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Our transcoding pipeline against the FFmpeg CLI on livepeer_bench's ladder, in one run.
bench: setup
	$(CARGO) bench -p lp-pipelines --bench ladder

clean:
	$(CARGO) clean
	rm -rf build $(DEMO_OUT)
