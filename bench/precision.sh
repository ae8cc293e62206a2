#!/usr/bin/env bash
# Training-step images/s of the default model in fp32, bf16, channels-last and
# both, side by side (core/examples/precision_bench.rs), with the OpenMP and
# malloc settings that `dmtl train` gives itself (cli/src/runtime.rs).
#
#   bench/precision.sh [STEPS] [REPS] [THREADS] [HxW,...] [DEVICE] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-ACTIVE}
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-268435456}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-1073741824}
cargo run --quiet --release -p dmtl-core --example precision_bench -- "$@"
