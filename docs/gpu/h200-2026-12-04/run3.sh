#!/usr/bin/env bash
set -uo pipefail
exec > >(tee "$OUT/log3.txt") 2>&1
t0=$(date +%s)
stamp() { echo "--- [$(( $(date +%s) - t0 )) s] $*"; }
site=$(python3 -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
mkdir -p /tmp/nccl && ln -sf "$(find "$site/nvidia" -name 'libnccl.so.2' | head -1)" /tmp/nccl/libnccl.so
export LD_LIBRARY_PATH="$site/torch/lib:/tmp/nccl"
D=$PWD/.gpu/dmtl
stamp gpu-check
timeout 170 deploy/gpu-check.sh --dmtl "$D" --work /tmp/gc --steps 200 --keep; echo "rc=$?"
grep -h "worker done" /tmp/gc/*/workers/*.log /tmp/gc/*worker*.log 2>/dev/null
stamp "train full (one pass of 32 per step) vs masked (two of 16)"
sed 's/kind = "masked"/kind = "full"/; s/^steps = 200/steps = 300/; s/^eval_every = 200/eval_every = 300/; s/^checkpoint_every = 200/checkpoint_every = 300/' /tmp/gc/gpu-check.toml > /tmp/full.toml
timeout 50 "$D" train --config /tmp/full.toml --run-dir /tmp/full > /tmp/full.log 2>&1; echo "rc=$?"
grep "images_per_s" /tmp/full.log | tail -2 | cut -c1-220; tr -d '\n ' < /tmp/full/final.json | grep -o '"wall_s":[0-9.]*\|"loader":{[^}]*}'
stamp done
