#!/usr/bin/env bash
# Assembles the ablation reports' inputs: each ablation suite's own runs plus
# the suite runs it shares a config with (λ = 1, T = 2, switch_every = 50 and
# the phase teacher are `distill` itself; the EMA teacher is `distill-ema`),
# and `full`/`half` for the Δm columns, seeds 0 and 1.
# Usage: scripts/assemble-ablations.sh [RUNS=runs] [OUT=runs/ablation-reports]
set -euo pipefail
runs=${1:-runs}
out=${2:-runs/ablation-reports}
rm -rf "$out"
copy() { # copy SRC_LABEL_DIR DEST_DIR: finished seeds 0 and 1, without checkpoints
  local src=$1 dest=$2 s
  for s in 0 1; do
    [ -f "$src/seed-$s/final.json" ] || continue
    mkdir -p "$dest/seed-$s"
    cp "$src/seed-$s"/{config.toml,split.json,metrics.jsonl,final.json} "$dest/seed-$s/"
  done
}
for group in lambda temperature switch-every teacher; do
  for base in full half; do copy "$runs/experiments/$base" "$out/$group/$base"; done
  for dir in "$runs/ablations/$group"/*/; do
    [ -d "$dir" ] && copy "${dir%/}" "$out/$group/$(basename "$dir")"
  done
done
# The round teacher may have run inside the switch-every suite (same base config).
if [ -d "$out/switch-every/round" ]; then mv "$out/switch-every/round" "$out/teacher/round"; fi
copy "$runs/experiments/distill" "$out/lambda/weight-1"
copy "$runs/experiments/distill" "$out/temperature/t-2"
copy "$runs/experiments/distill" "$out/switch-every/switch-50"
copy "$runs/experiments/distill" "$out/teacher/phase"
copy "$runs/experiments/distill-ema" "$out/teacher/ema"
# Only finished label folders (a report refuses unfinished runs).
find "$out" -mindepth 2 -maxdepth 2 -type d -empty -delete
