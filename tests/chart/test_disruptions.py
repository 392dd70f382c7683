"""PodDisruptionBudgets never block a node drain: each allows one eviction at the floor."""

from __future__ import annotations

import pytest

from .conftest import render, render_case

pytestmark = pytest.mark.chart


def allowed_disruptions(pdb: dict, healthy: int) -> int:
    """What the disruption controller computes for `healthy` ready pods (integers only)."""
    spec = pdb["spec"]
    if "minAvailable" in spec:
        return max(0, healthy - int(spec["minAvailable"]))
    return max(0, int(spec["maxUnavailable"]) - 0)  # every pod healthy: none already unavailable


@pytest.mark.parametrize("sets, component, floor", [
    (("api.replicaCount=1",), "api", 1),
    (("api.autoscaling.enabled=true", "api.autoscaling.minReplicas=1"), "api", 1),
    ((), "api", 2),
    (("worker.autoscaling.minReplicas=1",), "worker", 1),
    (("kafka.replicaCount=3",), "kafka", 3),
])
def test_a_drain_can_always_evict_a_pod(sets, component, floor):
    r = render(sets=sets).ok()
    pdbs = [d for d in r.of_kind("PodDisruptionBudget")
            if component in (d["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component"),
                             d["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name"))]
    assert len(pdbs) == 1, [d["metadata"]["name"] for d in r.of_kind("PodDisruptionBudget")]
    assert allowed_disruptions(pdbs[0], floor) >= 1, pdbs[0]["spec"]


def test_every_pdb_in_every_case_allows_an_eviction(case):
    for pdb in render_case(case).ok().of_kind("PodDisruptionBudget"):
        assert allowed_disruptions(pdb, 1) >= 1, (case, pdb["metadata"]["name"], pdb["spec"])
