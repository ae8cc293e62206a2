#!/usr/bin/env bash
# The distributed engine's figures in BENCHMARKS.md, side by side in one run:
#   1. `dmtl local` (1 seg + 1 depth worker, 1 thread each) against single-process
#      `dmtl train` (2 threads), method `masked`, the same total batch;
#   2. snapshot and update transfer over loopback against a memory copy;
#   3. round latency with 1, 2, 4, 8 workers.
# Usage: bench/distributed.sh [STEPS]   (from the repository root, after `make build`;
#        PARTS="ratio transfer latency" selects parts)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-400}
PARTS=${PARTS:-ratio transfer latency}
DATA=${DATA:-data/synthetic-demo}
OUT=${OUT:-runs/bench-distributed}
DMTL=target/release/dmtl
rm -rf "$OUT"
mkdir -p "$OUT"
test -f "$DATA/.complete" || $DMTL gen-synthetic --out "$DATA" --train 1000 --val 200 --height 128 --width 256 --seed 7

common=(--config configs/methods/masked.toml --data-root "$DATA" --set "train.steps=$STEPS"
        --set train.eval_every=100 --set "train.checkpoint_every=$STEPS" --set data.val_limit=50)

# images/s between the first and the last evaluation (start-up and the first
# 100 steps excluded; every run pays the same evaluations).
rate() {
  python3 - "$1" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
a, b = lines[0], lines[-1]
print(f"{(b['images_seen'] - a['images_seen']) / (b['wall_s'] - a['wall_s']):.1f}")
PY
}

if [[ $PARTS == *ratio* ]]; then
for i in $(seq 1 "${PAIRS:-2}"); do
  $DMTL train "${common[@]}" --run-dir "$OUT/train-$i" > "$OUT/train-$i.log" 2>&1
  $DMTL local "${common[@]}" --run-dir "$OUT/local-$i" > "$OUT/local-$i.log" 2>&1
done
echo "| run | dmtl train (img/s) | dmtl local (img/s) | local / train |"
echo "|---|---|---|---|"
for i in $(seq 1 "${PAIRS:-2}"); do
  t=$(rate "$OUT/train-$i/metrics.jsonl"); l=$(rate "$OUT/local-$i/metrics.jsonl")
  echo "| $i | $t | $l | $(python3 -c "print(f'{$l / $t:.3f}')") |"
done
fi

if [[ $PARTS == *transfer* ]]; then
  cargo run --release -q -p dmtl-coordinator --example transfer_bench -- 100
fi
if [[ $PARTS == *latency* ]]; then
  cargo run --release -q -p dmtl-coordinator --example round_latency
fi
