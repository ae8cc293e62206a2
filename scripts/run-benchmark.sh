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
# Finished runs are committed (without checkpoints) under docs/results/benchmark/runs:
# a fresh clone starts from them instead of running them again.
committed=docs/results/benchmark/runs
for fin in "$committed"/*/*/seed-*/final.json; do
    [ -f "$fin" ] || continue
    rel=${fin#"$committed"/}; dir=$runs/$(dirname "$rel")
    [ -f "$dir/final.json" ] || { mkdir -p "$dir"; cp "$(dirname "$fin")"/* "$dir/"; }
done
for n in $(seq 1 "$seeds"); do
    for suite in "${suites[@]}"; do
        "$dmtl" experiment --suite "configs/benchmark/$suite" --seeds "$n" --engine train --out "$runs/$suite"
        # Keep what finished (checkpoints stay in $runs).
        for fin in "$runs/$suite"/*/seed-*/final.json; do
            [ -f "$fin" ] || continue
            src=$(dirname "$fin"); dest=$committed/${src#"$runs"/}
            mkdir -p "$dest"; cp "$src"/{config.toml,split.json,metrics.jsonl,final.json} "$dest/"
        done
    done
done
