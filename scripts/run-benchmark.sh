#!/usr/bin/env bash
# Runs the issue-14 benchmark suites (configs/benchmark/*) breadth first:
# seed 0 of every suite, then seed 1 of every suite, … up to SEEDS. Each
# `dmtl experiment` call skips the runs that finished and resumes the one
# that was interrupted, so the script can be stopped and started again at
# any time (across sessions) and does only what is left.
# Usage: scripts/run-benchmark.sh [SEEDS=5] [DMTL=target/release/dmtl] [RUNS=runs/benchmark]
set -euo pipefail
seeds=${1:-5}
dmtl=${2:-target/release/dmtl}
runs=${3:-runs/benchmark}
suites=(methods switch-every lambda)
[ -x "$dmtl" ] || { echo "run-benchmark: $dmtl is not built (make build)" >&2; exit 1; }
test -f data/synthetic-2000/.complete || "$dmtl" gen-synthetic --out data/synthetic-2000 \
    --train 2000 --val 300 --height 128 --width 256 --seed 11
for n in $(seq 1 "$seeds"); do
    for suite in "${suites[@]}"; do
        "$dmtl" experiment --suite "configs/benchmark/$suite" --seeds "$n" --engine train --out "$runs/$suite"
    done
done
