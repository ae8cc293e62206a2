#!/usr/bin/env bash
# Training throughput of `dmtl train` against its PyTorch twin
# (bench/pytorch_train.py), side by side in one run: same architecture, batch,
# resolution, threads, optimizer, augmentation and method (`full`).
#
#   make bench                      # or: bench/run.sh [STEPS] [ROUNDS]
#
# Prints one JSON line per measurement and the median ratio. Needs the demo
# dataset (make demo creates it) and a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-150}
ROUNDS=${2:-3}
DATA=${DATA:-data/synthetic-demo}
DMTL=target/release/dmtl
THREADS=${THREADS:-2}

test -f "$DATA/.complete" || $DMTL gen-synthetic --out "$DATA" --train 1000 --val 200 --height 128 --width 256 --seed 7

dmtl_once() {
    local dir
    dir=$(mktemp -d)
    $DMTL train --config configs/methods/full.toml --data-root "$DATA" --run-dir "$dir" \
        --set train.steps="$STEPS" --set train.eval_every=100000 --set train.checkpoint_every=100000 \
        --set data.val_limit=16 --set train.threads="$THREADS" >/dev/null 2>"$dir/log"
    python3 - "$dir" "$STEPS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/final.json"))
print(json.dumps({"impl": "dmtl", "steps": d["steps"], "train_s": round(d["wall_s"], 2),
                  "images_per_s": round(d["images_seen"] / d["wall_s"], 1)}))
PY
    rm -rf "$dir"
}

pytorch_once() {
    .venv/bin/python bench/pytorch_train.py --data-root "$DATA" --steps "$STEPS" --threads "$THREADS" 2>/dev/null
}

results=$(mktemp)
for round in $(seq "$ROUNDS"); do
    dmtl_once | tee -a "$results"
    pytorch_once | tee -a "$results"
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
d = [r["images_per_s"] for r in rows if r["impl"] == "dmtl"]
p = [r["images_per_s"] for r in rows if r["impl"] == "pytorch"]
print(f"dmtl    images/s: {statistics.median(d):.1f} (runs {d})")
print(f"pytorch images/s: {statistics.median(p):.1f} (runs {p})")
print(f"ratio dmtl/pytorch: {statistics.median(d) / statistics.median(p):.2f}x")
PY
rm -f "$results"
