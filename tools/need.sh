#!/usr/bin/env bash
# `tools/need.sh TOOL...`: fail early, in one line, when a tool the target needs is missing,
# naming how to install it. helm is fetched instead (tools/fetch-helm.sh) when it can be.
set -euo pipefail
declare -A how=(
  [kind]="kind v0.29+: https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or: go install sigs.k8s.io/kind@v0.29.0)"
  [skaffold]="skaffold v2.16+: https://skaffold.dev/docs/install/"
  [kubectl]="kubectl 1.31+: https://kubernetes.io/docs/tasks/tools/ (or run tools/fetch-helm.sh, which also fetches kubectl into .tools/bin)"
  [helm]="helm 3.14+ or 4: https://helm.sh/docs/intro/install/ (or run tools/fetch-helm.sh)"
  [docker]="a container engine: Docker (https://docs.docker.com/engine/install/) or podman"
)
for tool in "$@"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "missing $tool: install ${how[$tool]:-$tool}" >&2
    exit 127
  fi
done
