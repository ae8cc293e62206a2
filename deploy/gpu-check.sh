#!/usr/bin/env bash
# deploy/gpu-check.sh: on a machine with one or more NVIDIA GPUs, runs a short
# job of every kind and prints training throughput and all-reduce bandwidth:
#
#   1. single process on cuda:0 (`dmtl train`), fp32
#   2. the same in bf16 (`--set train.precision="bf16"`; skipped when this dmtl
#      has no `train.precision` key)
#   3. the grpc data plane on 1 GPU: coordinator + seg worker + depth worker
#      on cuda:0 (`dmtl local`)
#   4. with 2+ GPUs: the grpc data plane over the GPUs: one coordinator,
#      workers on cuda:0 … cuda:N-1 (seg and depth alternating)
#   5. all-reduce bus bandwidth over every GPU (`dmtl allreduce-bench`, NCCL;
#      on one GPU a group of one member: NCCL loads, the communicator forms
#      and the sum is checked, but there is no bandwidth to measure)
#   6. the nccl plane's training step on real model tensors, one replica per
#      GPU in one process (`dmtl allreduce-bench --step-check`): the replicas
#      must stay identical and match the same steps merged on one GPU
#   7. the nccl data plane (`distributed.data_plane = "nccl"`), one worker
#      per GPU as in 4 (on one GPU: `full` with one both-task worker, a group
#      of one, since NCCL refuses two ranks on one device); reported as
#      unavailable when this dmtl refuses it (no `nccl` feature, or an older
#      binary whose rounds were not wired yet)
#
# Usage: deploy/gpu-check.sh [--dmtl PATH] [--work DIR] [--steps N] [--keep]
#   --dmtl   the binary (default: $DMTL, else `dmtl` on PATH, else
#            target/release/dmtl of this checkout)
#   --work   scratch folder for data and runs (default: a temporary folder)
#   --steps  training steps per job (default 200)
#   --keep   keep the scratch folder
#
# It needs nothing of the source tree: it writes its own synthetic data and
# config, so it runs where only the binary and its libraries were copied
# (what must travel with the binary: deploy/README.md, "Checking a GPU
# machine"). Exit status: 0 when every job that this machine and binary
# support succeeded, 1 otherwise.
set -euo pipefail

dmtl=${DMTL:-}
work=""
steps=200
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dmtl) dmtl=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ -z "$dmtl" ]; then
    if command -v dmtl > /dev/null; then
        dmtl=$(command -v dmtl)
    else
        dmtl="$(cd "$(dirname "$0")/.." && pwd)/target/release/dmtl"
    fi
fi
[ -x "$dmtl" ] || { echo "gpu-check: no dmtl binary at $dmtl (use --dmtl PATH)" >&2; exit 2; }
command -v nvidia-smi > /dev/null || { echo "gpu-check: nvidia-smi not found: no NVIDIA driver here" >&2; exit 2; }
gpus=$(nvidia-smi -L | grep -c '^GPU ' || true)
[ "$gpus" -ge 1 ] || { echo "gpu-check: nvidia-smi lists no GPU" >&2; exit 2; }

if [ -z "$work" ]; then
    work=$(mktemp -d)
    [ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
echo "gpu-check: $dmtl, $gpus GPU(s), scratch $work"
nvidia-smi -L

batch=32
failures=0
results=()

# The throughput of a finished run directory: images_seen / wall_s of final.json
# (wall time includes start-up and evaluation, so short runs understate it).
throughput() {
    local json images wall
    json=$(tr -d ' \n' < "$1/final.json")
    images=$(sed -n 's/.*"images_seen":\([0-9.]*\).*/\1/p' <<< "$json")
    wall=$(sed -n 's/.*"wall_s":\([0-9.eE+-]*\).*/\1/p' <<< "$json")
    awk -v i="$images" -v w="$wall" 'BEGIN { if (w > 0) printf "%.1f images/s (%d images in %.1f s)", i / w, i, w; else print "?" }'
}

# job NAME RUN_DIR COMMAND...: runs a job, records its throughput or failure.
job() {
    local name=$1 dir=$2
    shift 2
    echo
    echo "== $name"
    if "$@" > "$work/$name.log" 2>&1; then
        results+=("$(printf '%-28s %s' "$name" "$(throughput "$dir")")")
    else
        echo "gpu-check: $name failed, last lines of $work/$name.log:" >&2
        tail -n 15 "$work/$name.log" >&2
        results+=("$(printf '%-28s FAILED (%s)' "$name" "$work/$name.log")")
        failures=$((failures + 1))
    fi
}

data="$work/data"
if [ ! -e "$data/.complete" ]; then
    echo "gpu-check: writing synthetic data"
    "$dmtl" gen-synthetic --out "$data" --train 512 --val 64 --height 128 --width 256 --seed 3 > /dev/null
fi

config="$work/gpu-check.toml"
cat > "$config" <<EOF
version = 1
seed = 0

[data]
root = "$data"
classes = 7
height = 128
width = 256

[model]
width = 32
blocks = [2, 2, 2, 2]

[method]
kind = "masked"

[train]
steps = $steps
batch_size = $batch
device = "cuda:0"
threads = 4
eval_every = $steps
checkpoint_every = $steps
log_every = 50

[distributed]
data_plane = "grpc"
heartbeat_timeout_ms = 30000
EOF

# 1 and 2: single process.
job train-fp32 "$work/train-fp32" "$dmtl" train --config "$config" --run-dir "$work/train-fp32"
# bf16 needs the `train.precision` key (branch `precision`); an older dmtl refuses it by name.
if "$dmtl" train --config "$config" --run-dir "$work/train-bf16" --set 'train.precision="bf16"' \
    > "$work/train-bf16.log" 2>&1; then
    results+=("$(printf '%-28s %s' train-bf16 "$(throughput "$work/train-bf16")")")
elif grep -Eqi 'unknown (field|key).{0,3}precision' "$work/train-bf16.log"; then
    results+=("$(printf '%-28s skipped: this dmtl has no train.precision key' train-bf16)")
else
    tail -n 15 "$work/train-bf16.log" >&2
    results+=("$(printf '%-28s FAILED (%s)' train-bf16 "$work/train-bf16.log")")
    failures=$((failures + 1))
fi

# 3: the grpc plane on one GPU.
job grpc-1gpu "$work/grpc-1gpu" "$dmtl" local --config "$config" --run-dir "$work/grpc-1gpu"

port=$((20000 + RANDOM % 20000))
token="$work/token"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token"
# shellcheck disable=SC2329 # called through `job`
# grpc_n RUN_DIR [COORDINATOR ARGS...]: a coordinator and one worker per GPU.
grpc_n() {
    local run=$1 pids=() i task status=0
    shift
    "$dmtl" coordinator --config "$config" --run-dir "$run" --listen "127.0.0.1:$port" \
        --token-file "$token" "$@" &
    local coordinator=$!
    for ((i = 0; i < gpus; i++)); do
        if ((i % 2 == 0)); then task=seg; else task=depth; fi
        "$dmtl" worker --coordinator "http://127.0.0.1:$port" --task "$task" --device "cuda:$i" \
            --token-file "$token" --data-root "$data" > "$run-worker-$i.log" 2>&1 &
        pids+=($!)
    done
    wait "$coordinator" || status=$?
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
    return "$status"
}
# 4: the grpc plane, one worker per GPU.
if [ "$gpus" -ge 2 ]; then
    job "grpc-${gpus}gpu" "$work/grpc-${gpus}gpu" grpc_n "$work/grpc-${gpus}gpu"
fi

# 5: NCCL all-reduce bandwidth (a buffer of the size of a ResNet-50, and a large one).
echo
echo "== allreduce-bench"
for mib in 100 1024; do
    if out=$("$dmtl" allreduce-bench --gpus "$gpus" --mib "$mib" --iters 20 2>&1); then
        results+=("$(printf '%-28s %s' "allreduce-${mib}MiB" "$(tail -n 1 <<< "$out")")")
    else
        echo "$out" >&2
        results+=("$(printf '%-28s FAILED: %s' "allreduce-${mib}MiB" "$(tail -n 1 <<< "$out")")")
        failures=$((failures + 1))
    fi
done

# 6: the nccl plane's step, one model replica per GPU.
if out=$("$dmtl" allreduce-bench --gpus "$gpus" --mib 1 --iters 1 --step-check 10 2>&1); then
    results+=("$(printf '%-28s %s' nccl-step-check "$(grep -m1 'step check' <<< "$out" | sed 's/^[^:]*: //')")")
else
    echo "$out" >&2
    results+=("$(printf '%-28s FAILED: %s' nccl-step-check "$(tail -n 1 <<< "$out")")")
    failures=$((failures + 1))
fi

# 7: the nccl data plane, one worker per GPU (NCCL refuses two ranks on one device).
nccl_run="$work/nccl-${gpus}gpu"
nccl_plane() {
    if [ "$gpus" -ge 2 ]; then
        grpc_n "$nccl_run" --set 'distributed.data_plane="nccl"'
    else
        "$dmtl" local --config "$config" --run-dir "$nccl_run" --both-workers 1 \
            --set 'method.kind="full"' --set 'distributed.data_plane="nccl"'
    fi
}
if nccl_plane > "$work/nccl.log" 2>&1; then
    results+=("$(printf '%-28s %s' "nccl-${gpus}gpu" "$(throughput "$nccl_run")")")
elif grep -Eq 'nccl. cargo feature|not wired yet' "$work/nccl.log"; then
    results+=("$(printf '%-28s unavailable: %s' "nccl-${gpus}gpu" "$(grep -m1 -o 'error: .*' "$work/nccl.log")")")
else
    tail -n 15 "$work/nccl.log" >&2
    results+=("$(printf '%-28s FAILED (%s)' "nccl-${gpus}gpu" "$work/nccl.log")")
    failures=$((failures + 1))
fi
if [ "$gpus" -lt 2 ]; then
    results+=("one GPU: NCCL ran as a group of one (no bandwidth, no peer); the multi-GPU jobs need 2+")
fi

echo
echo "== gpu-check summary ($gpus GPU(s), $steps steps of batch $batch, model width 32 [2,2,2,2], 128x256)"
printf '%s\n' "${results[@]}"
exit $((failures > 0))
