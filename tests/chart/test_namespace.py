"""namespaceOverride: every object, addresses and alerts follow it; split namespaces refused."""

from __future__ import annotations

import pytest

from .conftest import NAMESPACE, render

pytestmark = pytest.mark.chart

OTHER = "ml-serving"
EXTERNAL = ("redis.enabled=false", "externalRedis.url=redis://r.example:6379/0",
            "kafka.enabled=false", "externalKafka.bootstrap=k.example:9092")


@pytest.mark.parametrize("sets", [
    (f"global.namespaceOverride={OTHER}",),
    (f"namespaceOverride={OTHER}", f"redis.namespaceOverride={OTHER}",
     f"kafka.namespaceOverride={OTHER}"),
    (f"namespaceOverride={OTHER}", *EXTERNAL),
], ids=["global", "each-chart", "app-only-with-external-services"])
def test_every_object_goes_to_the_override(sets):
    r = render(sets=(*sets, "metrics.prometheusRule.enabled=true", "worker.keda.enabled=true"),
               extra=("--api-versions", "keda.sh/v1alpha1")).ok()
    assert {d["metadata"].get("namespace") for d in r.docs} == {OTHER}
    (so,) = r.of_kind("ScaledObject")
    bootstrap = so["spec"]["triggers"][0]["metadata"]["bootstrapServers"]
    assert "k.example" in bootstrap or f".{OTHER}.svc." in bootstrap, bootstrap
    (rule,) = r.of_kind("PrometheusRule")
    assert f'namespace="{OTHER}"' in str(rule["spec"]) and f'namespace="{NAMESPACE}"' not in str(rule["spec"])


def test_kafka_voters_are_named_in_the_override():
    r = render(sets=(f"global.namespaceOverride={OTHER}",)).ok()
    (cm,) = [d for d in r.of_kind("ConfigMap") if "server.properties" in d.get("data", {})]
    voters = next(line for line in cm["data"]["server.properties"].splitlines()
                  if line.startswith("controller.quorum.voters="))
    assert f".{OTHER}.svc." in voters and f".{NAMESPACE}.svc." not in voters


@pytest.mark.parametrize("sets, sub", [
    ((f"namespaceOverride={OTHER}",), "redis"),
    ((f"namespaceOverride={OTHER}", f"redis.namespaceOverride={OTHER}"), "kafka"),
    ((f"global.namespaceOverride={OTHER}", "kafka.namespaceOverride=elsewhere"), "kafka"),
])
def test_a_bundled_service_in_another_namespace_is_refused(sets, sub):
    r = render(sets=sets)
    assert r.rc != 0
    assert f"the bundled {sub}" in r.stderr and "global.namespaceOverride" in r.stderr, r.stderr


def test_a_namespace_name_kubernetes_refuses_is_refused():
    r = render(sets=("namespaceOverride=Not_A_Namespace",))
    assert r.rc != 0 and "namespaceOverride" in r.stderr
