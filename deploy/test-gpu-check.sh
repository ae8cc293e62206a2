#!/usr/bin/env bash
# Runs gpu-check.sh against stand-ins for nvidia-smi and dmtl (no GPU needed)
# and checks its jobs, its summary and its exit status: with two GPUs, a dmtl
# without `train.precision` and a nccl plane that refuses to start; with one
# GPU and a dmtl that runs the nccl plane; and with a failing job. Run by
# deploy/validate.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"

cat > "$work/bin/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
for ((i = 0; i < ${GPUS:-2}; i++)); do printf 'GPU %d: Stand-in (UUID: GPU-%d)\n' "$i" "$i"; done
EOF
# dmtl: writes final.json into --run-dir; refuses train.precision and (unless
# NCCL_OK=1) the nccl plane as an older binary does; FAIL_LOCAL=1 makes
# `dmtl local` fail.
cat > "$work/bin/dmtl" <<'EOF'
#!/usr/bin/env bash
all="$*"
echo "$all" >> "$CALLS"
cmd=$1; shift
run_dir=""
while [ $# -gt 0 ]; do
    case $1 in
        --run-dir | --out) run_dir=$2; shift ;;
        *precision*) echo 'error: config: unknown field `precision`' >&2; exit 1 ;;
        *data_plane=*nccl*)
            if [ "${NCCL_OK:-0}" != 1 ]; then
                echo 'error: config key `distributed.data_plane` = "nccl": ... not wired yet' >&2
                exit 1
            fi ;;
    esac
    shift
done
case $cmd in
    gen-synthetic) mkdir -p "$run_dir" && touch "$run_dir/.complete" ;;
    train | local | coordinator)
        if [ "$cmd" = local ] && [ "${FAIL_LOCAL:-0}" = 1 ]; then echo "error: boom" >&2; exit 1; fi
        mkdir -p "$run_dir"
        printf '{\n  "images_seen": 6400,\n  "wall_s": 10.0\n}\n' > "$run_dir/final.json" ;;
    worker) ;;
    allreduce-bench)
        echo "all-reduce 100.0 MiB over 2 members: 1.000 ms, algbw 104.86 GB/s, busbw 104.86 GB/s (20 iterations)"
        case $all in *--step-check*)
            echo "nccl-plane step check: 2 replicas x 10 steps, 900.0 images/s; replicas differ by 0.0e0, from the one-device merge by 1.0e-6" ;;
        esac ;;
    *) exit 3 ;;
esac
EOF
chmod +x "$work/bin/nvidia-smi" "$work/bin/dmtl"

export PATH="$work/bin:$PATH" CALLS="$work/calls"
fail=0
check_status() { # check_status WHAT WANT GOT
    if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1 (exit status $3, want $2)"; fail=1; fi
}
check() { # check WHAT PATTERN FILE
    if grep -Eq -- "$2" "$3"; then echo "ok: $1"; else echo "FAIL: $1 (no /$2/ in $3)"; cat "$3"; fail=1; fi
}

status=0
"$here/gpu-check.sh" --dmtl "$work/bin/dmtl" --work "$work/run" --steps 10 > "$work/out" 2>&1 || status=$?
check_status "exit 0 when only unsupported jobs are missing" 0 "$status"
check "fp32 throughput from final.json" '^train-fp32 +640\.0 images/s' "$work/out"
check "bf16 skipped on a dmtl without train.precision" '^train-bf16 +skipped' "$work/out"
check "grpc on one GPU" '^grpc-1gpu +640\.0 images/s' "$work/out"
check "grpc with a worker per GPU" '^grpc-2gpu +640\.0 images/s' "$work/out"
check "bus bandwidth reported" '^allreduce-100MiB +all-reduce .*busbw' "$work/out"
check "nccl step check reported" '^nccl-step-check +2 replicas x 10 steps, .*differ by 0\.0e0' "$work/out"
check "nccl plane reported unavailable" '^nccl-2gpu +unavailable: .*not wired yet' "$work/out"
check "workers on cuda:0 and cuda:1" 'worker .*--task depth --device cuda:1' "$CALLS"

status=0
: > "$CALLS"
GPUS=1 NCCL_OK=1 "$here/gpu-check.sh" --dmtl "$work/bin/dmtl" --work "$work/run1" --steps 10 > "$work/out1" 2>&1 || status=$?
check_status "one GPU: exit 0" 0 "$status"
check "one GPU: NCCL as a group of one" '^allreduce-100MiB +all-reduce' "$work/out1"
check "one GPU: the step check runs" '^nccl-step-check ' "$work/out1"
check "one GPU: the nccl plane runs with one both-task worker" '^nccl-1gpu +640\.0 images/s' "$work/out1"
check "one GPU: the nccl plane trains full" 'local .*--both-workers 1 .*method\.kind="full".*data_plane="nccl"' "$CALLS"
check "one GPU: the summary says what needs 2+" '^one GPU: NCCL ran as a group of one' "$work/out1"
if grep -q '^grpc-[0-9]*gpu.*' "$work/out1" && ! grep -q '^grpc-1gpu' "$work/out1"; then
    echo "FAIL: one GPU: a multi-GPU grpc job ran"; fail=1
else
    echo "ok: one GPU: no multi-GPU grpc job"
fi

status=0
FAIL_LOCAL=1 "$here/gpu-check.sh" --dmtl "$work/bin/dmtl" --work "$work/run2" --steps 10 > "$work/out2" 2>&1 || status=$?
check_status "a failed job fails the check" 1 "$status"
check "the failed job is named" '^grpc-1gpu +FAILED' "$work/out2"

echo "gpu-check: $([ "$fail" = 0 ] && echo all passed || echo FAILED)"
exit "$fail"
