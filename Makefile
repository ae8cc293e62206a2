# dmtl: the two commands a new machine needs are `make demo` and `make test`.
# Both create the Python environment that provides libtorch when it is missing.

TORCH_VERSION ?= 2.13.0
VENV := $(CURDIR)/.venv
export VIRTUAL_ENV := $(VENV)
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(VENV)/bin:$(PATH)
export TORCH_VERSION

DMTL := target/release/dmtl
DEMO_DATA ?= data/synthetic-demo
DEMO_RUN ?= runs/demo

.PHONY: all setup build demo train-demo demo-data test lint fmt bench fixtures clean

all: build

setup:
	@scripts/setup-venv.sh

build: setup
	cargo build --release --bin dmtl

## The main job: synthetic data, then ~3 minutes of distributed `distill` training
## on CPU (`dmtl local`: a coordinator, one seg and one depth worker on loopback).
demo: build demo-data
	$(DMTL) local --config configs/quickstart.toml --data-root $(DEMO_DATA) --run-dir $(DEMO_RUN)

## The same run through single-process `dmtl train`.
train-demo: build demo-data
	$(DMTL) train --config configs/quickstart.toml --data-root $(DEMO_DATA) --run-dir $(DEMO_RUN)-train

demo-data: build
	@test -f $(DEMO_DATA)/.complete || $(DMTL) gen-synthetic --out $(DEMO_DATA) \
		--train 1000 --val 200 --height 128 --width 256 --seed 7

## Every test (CPU only). The `nccl` feature builds in `make lint` (no CUDA needed to build).
test: setup
	cargo test --workspace --all-targets

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --all-targets --features nccl -- -D warnings
	cargo build --features nccl
	deploy/validate.sh

fmt:
	cargo fmt --all

bench: build
	bench/run.sh

## Regenerates the PyTorch reference values the loss, metric and resize tests compare with.
fixtures: setup
	$(VENV)/bin/python core/tests/fixtures/make_loss_fixtures.py core/tests/fixtures
	$(VENV)/bin/python core/tests/fixtures/make_resize_fixture.py core/tests/fixtures

clean:
	cargo clean
