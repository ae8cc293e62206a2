#!/usr/bin/env bash
# Runs dmtl.sbatch against stand-ins for srun, scontrol and dmtl (no Slurm
# needed) and checks its command lines and how the job ends: when training
# ends, when the workers fail, and on SIGTERM. Run by deploy/validate.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/repo/deploy" "$work/home"
cp -r "$here" "$work/repo/deploy/slurm"

cat > "$work/bin/scontrol" <<'EOF'
#!/usr/bin/env bash
printf 'gpu01\ngpu02\n'
EOF
# srun: one task (--ntasks=1) or --ntasks-per-node tasks on each node, each
# with its rank and one GPU; forwards SIGTERM; exits with the highest status.
cat > "$work/bin/srun" <<'EOF'
#!/usr/bin/env bash
per=1 nodes=$SLURM_JOB_NUM_NODES
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --ntasks-per-node=*) per=${1#*=} ;;
        --ntasks=1) nodes=1 per=1 ;;
    esac
    shift
done
pids=()
for ((n = 0; n < nodes; n++)); do
    for ((l = 0; l < per; l++)); do
        SLURM_PROCID=$((n * per + l)) SLURM_LOCALID=$l CUDA_VISIBLE_DEVICES=$l "$@" &
        pids+=($!)
    done
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM
rc=0
for p in "${pids[@]}"; do
    while :; do
        wait "$p" && r=0 || r=$?
        kill -0 "$p" 2>/dev/null || break
    done
    ((r > rc)) && rc=$r
done
exit "$rc"
EOF
# dmtl: logs its arguments; the coordinator "trains" for COORD_SECONDS;
# workers run until stopped, or finish after WORKER_SECONDS, or fail.
cat > "$work/bin/dmtl" <<'EOF'
#!/usr/bin/env bash
echo "ARGS $*"
case $1 in
    coordinator)
        trap 'kill $!; echo "coordinator checkpoints"; exit 0' TERM
        sleep "${COORD_SECONDS:-1}" & wait ;;
    worker)
        [[ -z ${WORKER_FAIL:-} ]] || exit 3
        trap 'kill $!; exit 0' TERM
        sleep "${WORKER_SECONDS:-60}" & wait ;;
esac
EOF
chmod +x "$work"/bin/*

job_env=(env PATH="$work/bin:$PATH" HOME="$work/home"
    SLURM_SUBMIT_DIR="$work/repo" SLURM_JOB_ID=4242 SLURM_JOB_NODELIST='gpu[01-02]'
    SLURM_JOB_NUM_NODES=2 SLURM_NTASKS=4 SLURM_NTASKS_PER_NODE=2 SLURM_CPUS_PER_TASK=8
    DMTL="$work/bin/dmtl" DMTL_DATA_ROOT=/shared/data)
cd "$work/repo"
job() {
    "${job_env[@]}" "$@" bash deploy/slurm/dmtl.sbatch
}
passed=0 failed=0
check() {
    if grep -qF -- "$2" "$3"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $1: no line with '$2' in:" >&2
        cat "$3" >&2
    fi
}

rc=0
job COORD_SECONDS=2 WORKER_SECONDS=0.5 > "$work/done.log" 2>&1 || rc=$?
echo "exit $rc" >> "$work/done.log"
log=$work/done.log
check "coordinator command" "ARGS coordinator --config $work/repo/deploy/k8s/base/config.toml --run-dir $work/repo/runs/slurm-4242 --resume --listen 0.0.0.0:24242 --metrics-listen 0.0.0.0:24243 --data-root /shared/data --token-file $work/home/.config/dmtl/token" "$log"
check "rank 0 trains seg" "dmtl: worker 0 on $(hostname): --task seg --device cuda:0" "$log"
check "rank 3 trains depth" "dmtl: worker 3 on $(hostname): --task depth --device cuda:0" "$log"
check "worker command" "ARGS worker --task depth --device cuda:0 --coordinator http://gpu01:24242 --data-root /shared/data --threads 8 --token-file $work/home/.config/dmtl/token" "$log"
check "finished workers wait for the coordinator" "dmtl: the workers finished; waiting for the coordinator" "$log"
check "a finished job exits 0" "exit 0" "$log"
check "the token file is private" "-rw-------" <(ls -l "$work/home/.config/dmtl/token")
if grep -q "coordinator checkpoints" "$log"; then
    failed=$((failed + 1))
    echo "FAIL: a finished coordinator was stopped" >&2
else
    passed=$((passed + 1))
fi

job COORD_SECONDS=30 WORKER_SECONDS=0.5 DMTL_FINISH_GRACE_S=1 > "$work/hang.log" 2>&1 || true
check "a coordinator that outlives its workers is stopped" "dmtl: the coordinator did not finish; stopping it" "$work/hang.log"

job COORD_SECONDS=1 > "$work/coord.log" 2>&1 || true
check "the coordinator's end ends the workers" "dmtl: the coordinator exited (status 0); stopping the workers" "$work/coord.log"

rc=0
job WORKER_FAIL=1 COORD_SECONDS=30 > "$work/fail.log" 2>&1 || rc=$?
echo "exit $rc" >> "$work/fail.log"
check "failed workers stop the coordinator" "dmtl: the workers' step failed (status 3); stopping the coordinator" "$work/fail.log"
check "the coordinator checkpoints" "coordinator checkpoints" "$work/fail.log"
check "a failed job exits non-zero" "exit 3" "$work/fail.log"

# exec: $! must be the batch script's shell, as for Slurm's signal.
(exec "${job_env[@]}" COORD_SECONDS=30 bash deploy/slurm/dmtl.sbatch) > "$work/term.log" 2>&1 &
pid=$!
sleep 1
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
echo "exit $rc" >> "$work/term.log"
check "SIGTERM stops both steps" "dmtl: stopping (signal)" "$work/term.log"
check "SIGTERM lets the coordinator checkpoint" "coordinator checkpoints" "$work/term.log"
check "a stopped job exits with the coordinator's status" "exit 0" "$work/term.log"

rc=0
job DMTL_WORKER_TASKS=both DMTL_TLS_CERT=/tls/crt DMTL_TLS_KEY=/tls/key DMTL_TLS_CA=/tls/ca \
    > "$work/tls.log" 2>&1 || rc=$?
check "TLS for the coordinator" "--token-file $work/home/.config/dmtl/token --tls-cert /tls/crt --tls-key /tls/key" "$work/tls.log"
check "TLS for the workers" "ARGS worker --task both --device cuda:0 --coordinator https://gpu01:24242" "$work/tls.log"
check "the workers' CA" "--tls-ca /tls/ca" "$work/tls.log"

echo "slurm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
