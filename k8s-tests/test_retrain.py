"""One retraining run in the feedback pod's `retrain` container ends with a decision."""

import re

import pytest
from mlapi_k8s import env_seconds
from mlapi_k8s.cluster import exec_in_pod

pytestmark = pytest.mark.slow

DECISION = re.compile(r"\b(PROMOTED|REFUSED|SKIPPED)\b")


def test_retrain_once_reaches_a_decision(ready_release):
    pods = ready_release.running_pods("feedback")
    assert pods, f"no running feedback pod labelled {ready_release.selector('feedback')}"
    pod = pods[0]
    if "retrain" not in [c.name for c in pod.spec.containers]:
        pytest.skip("the feedback pod has no retrain container (feedback.retrain.mode is not sidecar)")
    timeout = env_seconds("MLAPI_K8S_RETRAIN_TIMEOUT", 900)
    code, out, err = exec_in_pod(ready_release.core, ready_release.namespace, pod.metadata.name,
                                 "retrain", ["mlapi", "retrain"], timeout)
    shown = f"exit {code}\nstdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
    assert code is not None, f"`mlapi retrain` still running after {timeout:g} s\n{shown}"
    assert code == 0, f"`mlapi retrain` failed\n{shown}"
    assert DECISION.search(out + err), f"no PROMOTED, REFUSED or SKIPPED in the output\n{shown}"
