#!/usr/bin/env bash
# Makes `.venv` a Python environment with the exact torch that tch needs.
#
# The environment is 4.7 GB (torch with its CUDA libraries, which libtorch_cpu
# links against), so one copy per torch version is kept under
# ${DMTL_CACHE:-~/.cache/dmtl}/torch-<version> and `.venv` is a symlink to it;
# every clone on the machine reuses it. Safe to run concurrently (flock).
# It also links `libnccl.so -> libnccl.so.2` in the environment's
# nvidia/nccl/lib: the `nccl` data plane loads NCCL by that name at run time
# and the `dmtl` binary has the folder in its rpath.
set -euo pipefail

TORCH_VERSION=${TORCH_VERSION:-2.13.0}
cache=${DMTL_CACHE:-$HOME/.cache/dmtl}
shared="$cache/torch-$TORCH_VERSION"
here=$(cd "$(dirname "$0")/.." && pwd)

has_torch() {
    "$1/bin/python" - "$TORCH_VERSION" <<'PY' >/dev/null 2>&1
import sys, torch
sys.exit(0 if torch.__version__.split("+")[0] == sys.argv[1] else 1)
PY
}

# The link the nccl data plane's loader needs (pip ships only the soname).
link_nccl() {
    local lib
    for lib in "$1"/lib/python3*/site-packages/nvidia/nccl/lib; do
        if [ -e "$lib/libnccl.so.2" ] && [ ! -e "$lib/libnccl.so" ]; then
            ln -s libnccl.so.2 "$lib/libnccl.so" 2>/dev/null \
                || echo "setup: cannot link $lib/libnccl.so (the nccl data plane needs it)" >&2
        fi
    done
}

if [ -e "$here/.venv/bin/python" ] && has_torch "$here/.venv"; then
    link_nccl "$here/.venv"
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock-torch-$TORCH_VERSION"
flock 9
if ! has_torch "$shared"; then
    echo "setup: installing torch==$TORCH_VERSION into $shared (one time, ~5 GB)" >&2
    rm -rf "$shared"
    python3 -m venv "$shared"
    "$shared/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
        "torch==$TORCH_VERSION" numpy
fi
link_nccl "$shared"
rm -rf "$here/.venv"
ln -s "$shared" "$here/.venv"
echo "setup: .venv -> $shared" >&2
