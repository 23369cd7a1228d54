# The two set-up commands are `make up` and `make test`; both install what they need.
SHELL := /bin/bash
WASM := target/wasm32-wasip1/release/edge_filter.wasm

.PHONY: check js components fastly deps wasm build test lint bench fuzz chaos up down

deps:
	@scripts/install-deps

## The edge filter as Envoy loads it, and the JavaScript package.
wasm: deps js
	cargo build -p edge-filter --target wasm32-wasip1 --release

## The WASI components: the decider world (wit/) and the wasi:http gateway.
components: deps
	cargo build -p wr-edge-wasi -p wr-edge-gateway --target wasm32-wasip2 --release

## The Fastly Compute program (edge-fastly/; its fastly.toml serves it in Viceroy).
fastly: deps
	cargo build -p wr-edge-fastly --target wasm32-wasip1 --release

## The JavaScript package (edge-js/pkg: the core through wasm-bindgen, for Node and workerd).
js: deps
	cargo build -p wr-edge-js --target wasm32-unknown-unknown --release
	wasm-bindgen --target web --out-dir edge-js/pkg target/wasm32-unknown-unknown/release/wr_edge_js.wasm

build: wasm
	cargo build --workspace

## The fast loop: unit and property tests of every crate, and the built filter under
## wasmtime (about 40 s warm on 2 cores). `make test` runs everything.
check: wasm
	cargo test -q --workspace --lib --bins
	cargo test -q -p wr-tests --test integration -- filter_wasm::

## Every test: unit and property tests, the built filter under wasmtime, real Envoy,
## Redis Cluster, workerd, jco, Viceroy, k6, Chromium. The tests run in four lanes (see
## scripts/run-tests); one integration module alone: scripts/run-tests stack_e2e
test: wasm
	scripts/run-tests

## Formatting and clippy, for the native and the wasm builds.
lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p edge-filter --target wasm32-wasip1 --release -- -D warnings
	cargo clippy -p wr-edge-js --target wasm32-unknown-unknown --release -- -D warnings
	cargo clippy -p wr-edge-wasi -p wr-edge-gateway --target wasm32-wasip2 --release -- -D warnings
	cargo clippy -p wr-edge-fastly --target wasm32-wasip1 --all-targets -- -D warnings

## Benchmarks: each prints its figures and the command that produced them.
bench: wasm
	cargo run -q -p wr-tools --bin profile-edge
	cargo run -q -p wr-tools --bin bench-edge
	cargo run -q -p wr-tools --bin bench-edge -- --count
	cargo run -q -p wr-tools --bin bench-queue
	cargo run -q --release -p wr-tools --bin bench-draw
	cargo run -q --release -p wr-tools --bin bench-runtimes
	cargo run -q -p wr-tools --bin sale-sim
	cargo run -q -p wr-tools --bin eta-sim
	cargo run -q --release -p wr-tools --bin sessions-sim
	cargo run -q --release -p wr-tools --bin autopilot-sim

## Long fuzz runs (make test runs each target for 3 s): every target 60 s, or
## FUZZ_SECONDS=600 make fuzz. Failing inputs land in target/fuzz-crashes/.
FUZZ_SECONDS ?= 60
fuzz: deps
	cargo run -q -p wr-tools --bin fuzz -- $(FUZZ_SECONDS)

## The long fault and overload scenarios of RELIABILITY.md (about 4 minutes): Redis
## down 30 s under load, master failover under load, Envoy hot restart with a
## configuration push, overload. One of them: make chaos SCENARIOS=failover
SCENARIOS ?=
chaos: wasm
	cargo run -q -p wr-tools --bin chaos -- $(SCENARIOS)

## The whole local stack in the background (Redis Cluster, origin-queue, demo backend,
## Envoy with the filter); prints the URLs. Ports: see scripts/stack.
up:
	@scripts/stack up

down:
	@scripts/stack down

