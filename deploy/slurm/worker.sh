#!/usr/bin/env bash
# One dmtl worker of the Slurm step in dmtl.sbatch:
#   worker.sh DMTL_COMMAND... -- WORKER_ARGS...
# The task comes from the global rank (SLURM_PROCID) cycled over
# DMTL_WORKER_TASKS ("seg depth" by default); the device is the one GPU that
# --gpus-per-task=1 leaves visible, or the local rank's GPU when the cluster
# does not bind GPUs to tasks (DMTL_WORKER_DEVICE overrides both).
set -euo pipefail

cmd=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    cmd+=("$1")
    shift
done
[ $# -gt 0 ] && shift

read -r -a tasks <<< "${DMTL_WORKER_TASKS:-seg depth}"
task=${tasks[$((SLURM_PROCID % ${#tasks[@]}))]}

IFS=, read -r -a visible <<< "${CUDA_VISIBLE_DEVICES:-}"
if [ -n "${DMTL_WORKER_DEVICE:-}" ]; then
    device=$DMTL_WORKER_DEVICE
elif [ "${#visible[@]}" -eq 1 ]; then
    device=cuda:0
else
    device=cuda:$SLURM_LOCALID
fi

echo "dmtl: worker $SLURM_PROCID on $(hostname): --task $task --device $device"
exec "${cmd[@]}" worker --task "$task" --device "$device" "$@"
