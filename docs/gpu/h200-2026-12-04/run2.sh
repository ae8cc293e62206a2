#!/usr/bin/env bash
set -uo pipefail
exec > >(tee "$OUT/log2.txt") 2>&1
t0=$(date +%s)
stamp() { echo "--- [$(( $(date +%s) - t0 )) s] $*"; }
site=$(python3 -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
mkdir -p /tmp/nccl && ln -sf "$(find "$site/nvidia" -name 'libnccl.so.2' | head -1)" /tmp/nccl/libnccl.so
export LD_LIBRARY_PATH="$site/torch/lib:/tmp/nccl"
D=$PWD/.gpu/dmtl
stamp "step check (noise floor)"
timeout 60 "$D" allreduce-bench --gpus 1 --mib 1 --iters 1 --step-check 10; echo "rc=$?"
W=/tmp/w; mkdir -p $W
"$D" gen-synthetic --out $W/data --train 512 --val 64 --height 128 --width 256 --seed 3 > /dev/null 2>&1
cat > $W/c.toml <<EOC
version = 1
seed = 0
[data]
root = "$W/data"
classes = 7
height = 128
width = 256
[model]
width = 32
blocks = [2, 2, 2, 2]
[method]
kind = "masked"
[train]
steps = 300
batch_size = 32
device = "cuda:0"
threads = 4
eval_every = 300
checkpoint_every = 300
log_every = 50
[distributed]
data_plane = "grpc"
heartbeat_timeout_ms = 30000
EOC
stamp "train fp32"; timeout 60 "$D" train --config $W/c.toml --run-dir $W/fp32 > $W/fp32.log 2>&1; echo "rc=$?"
stamp "train bf16+cl"; timeout 60 "$D" train --config $W/c.toml --run-dir $W/fast --set 'train.precision="bf16"' --set train.channels_last=true > $W/fast.log 2>&1; echo "rc=$?"
stamp "nccl 1gpu"; timeout 90 "$D" local --config $W/c.toml --run-dir $W/nccl --both-workers 1 --set 'method.kind="full"' --set 'distributed.data_plane="nccl"' > $W/nccl.log 2>&1; echo "rc=$?"
stamp "grpc 1gpu full"; timeout 90 "$D" local --config $W/c.toml --run-dir $W/grpc --both-workers 1 --set 'method.kind="full"' > $W/grpc.log 2>&1; echo "rc=$?"
stamp done
for r in fp32 fast nccl grpc; do echo "=== $r"; cat $W/$r/final.json 2>/dev/null | tr -d '\n '; echo; grep -h "images_per_s\|img/s" $W/$r/metrics.jsonl 2>/dev/null | tail -3 | cut -c1-400; grep -ih "waiting\|phase\|pulling" $W/$r.log $W/$r/workers/*.log 2>/dev/null | tail -4 | cut -c1-400; tail -3 $W/$r.log | cut -c1-300; done
tar czf "$OUT/runs2.tgz" -C $W --exclude data --exclude '*.safetensors' --exclude '*.ckpt' --exclude checkpoints . 2>/dev/null; ls -la "$OUT"
