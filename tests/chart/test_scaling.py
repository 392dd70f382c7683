"""HPA / KEDA objects and the partitions rule."""

from __future__ import annotations

import pytest

from .conftest import effective_values, render_case

pytestmark = pytest.mark.chart


def _hpas(r, component):
    return [h for h in r.of_kind("HorizontalPodAutoscaler")
            if h["metadata"]["labels"]["app.kubernetes.io/component"] == component]


def test_worker_scaling(case):
    r = render_case(case).ok()
    v = effective_values(case)["worker"]
    hpas, scaled = _hpas(r, "worker"), r.of_kind("ScaledObject")
    dep = r.get("Deployment", "mlapi-worker")
    if v["keda"]["enabled"]:
        assert len(scaled) == 1 and not hpas, "KEDA makes its own HPA: no chart HPA for the worker"
        assert "replicas" not in dep["spec"]
        return
    assert not scaled
    if not v["autoscaling"]["enabled"]:
        assert not hpas and dep["spec"]["replicas"] == v["replicaCount"]
        return
    (hpa,) = hpas
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "mlapi-worker"}
    assert hpa["spec"]["minReplicas"] == v["autoscaling"]["minReplicas"]
    assert hpa["spec"]["maxReplicas"] == v["autoscaling"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": v["autoscaling"]["targetCPUUtilizationPercentage"]}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == \
        v["autoscaling"]["scaleDownStabilizationSeconds"]
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"


def test_api_hpa_only_when_enabled(case):
    r = render_case(case).ok()
    v = effective_values(case)["api"]
    hpas = _hpas(r, "api")
    dep = r.get("Deployment", "mlapi-api")
    if v["autoscaling"]["enabled"]:
        (hpa,) = hpas
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] == "mlapi-api"
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == \
            (v["autoscaling"]["minReplicas"], v["autoscaling"]["maxReplicas"])
        assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == \
            v["autoscaling"]["targetCPUUtilizationPercentage"]
        assert "replicas" not in dep["spec"]
    else:
        assert not hpas
        assert dep["spec"]["replicas"] == v["replicaCount"]


def test_some_case_autoscales_the_api():
    assert _hpas(render_case("with-ingress-values.yaml").ok(), "api")


@pytest.mark.parametrize("sets,min_,max_", [
    (("worker.autoscaling.minReplicas=1", "worker.autoscaling.maxReplicas=3"), 1, 3),
    (("config.predictPartitions=24", "worker.autoscaling.maxReplicas=24"), 2, 24),
])
def test_worker_hpa_follows_values(sets, min_, max_):
    (hpa,) = _hpas(render_case("defaults", sets).ok(), "worker")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (min_, max_)


@pytest.mark.parametrize("sets", [
    ("worker.autoscaling.maxReplicas=20",),
    ("worker.autoscaling.maxReplicas=13",),
    ("config.predictPartitions=4",),
    ("worker.autoscaling.enabled=false", "worker.replicaCount=20"),
])
def test_partitions_rule(sets):
    r = render_case("defaults", sets)
    assert r.rc != 0
    assert "config.predictPartitions" in r.stderr
    assert ("worker.autoscaling.maxReplicas" in r.stderr) or ("worker.replicaCount" in r.stderr)


def test_partitions_rule_names_both_paths():
    r = render_case("defaults", ("worker.autoscaling.maxReplicas=20",))
    assert r.rc != 0
    assert "worker.autoscaling.maxReplicas" in r.stderr and "config.predictPartitions" in r.stderr


def test_partitions_rule_applies_to_keda():
    r = render_case("with-keda-values.yaml", ("worker.autoscaling.maxReplicas=13",))
    assert r.rc != 0 and "config.predictPartitions" in r.stderr


def test_maxreplicas_equal_to_partitions_renders():
    render_case("defaults", ("worker.autoscaling.maxReplicas=12",)).ok()
