"""`helm test <release>` passes."""

import os
import subprocess

import pytest
from mlapi_k8s import find_tool


def test_helm_test_passes(ready_release):
    helm = find_tool("helm")
    if helm is None:
        pytest.skip("helm is not on PATH (nor in .tools/bin)")
    command = [helm, "test", ready_release.name, "--namespace", ready_release.namespace,
               "--timeout", "5m", "--logs"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, env=os.environ.copy())
    assert done.returncode == 0, (f"{' '.join(command)} exited {done.returncode}\n"
                                  f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
