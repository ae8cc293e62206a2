#!/usr/bin/env bash
# Device check (session 4): dmtl built here against torch 2.11.0+cu130 (tch 0.24),
# run against the device's own torch 2.11 libraries.
set -uo pipefail
exec > >(tee "$OUT/log.txt") 2>&1
t0=$(date +%s)
stamp() { echo "--- [$(( $(date +%s) - t0 )) s] $*"; }
stamp env
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
site=$(python3 -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
nccl=$(find "$site/nvidia" -name 'libnccl.so.2' | head -1)
echo "torch lib: $site/torch/lib; nccl: $nccl"
mkdir -p /tmp/nccl && ln -sf "$nccl" /tmp/nccl/libnccl.so
export LD_LIBRARY_PATH="$site/torch/lib:/tmp/nccl${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
D=$PWD/.gpu/dmtl
ldd "$D" | grep -i "not found"
"$D" --version
nproc
stamp "allreduce world 1 + step check"
timeout 60 "$D" allreduce-bench --gpus 1 --mib 64 --iters 20 --step-check 10; echo "rc=$?"
stamp "gpu-check"
timeout 240 deploy/gpu-check.sh --dmtl "$D" --work /tmp/gc --steps 200 --keep; echo "rc=$?"
for f in /tmp/gc/*.log; do echo "=== $f"; tail -n 8 "$f"; done > "$OUT/gc-logs.txt" 2>&1
tar czf "$OUT/gc-runs.tgz" -C /tmp/gc --exclude data . 2>/dev/null
stamp "precision bench"
OMP_WAIT_POLICY=PASSIVE timeout 90 .gpu/precision_bench 20 5 8 128x256,256x512 cuda:0 32; echo "rc=$?"
OMP_WAIT_POLICY=PASSIVE timeout 60 .gpu/precision_bench 10 5 8 256x512 cuda:0 128; echo "rc=$?"
stamp done
