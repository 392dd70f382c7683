"""A pod outside the release cannot reach Redis, Kafka or the API pods.

Soundness: a throwaway probe pod (the API image, without the release's labels) connects to two
listeners of its own, one behind a deny-all NetworkPolicy. The open one must answer (the probe's
network works); if the denied one answers too, the CNI does not enforce NetworkPolicies and the
test skips. Only then do Redis, Kafka and the API count: each must resolve and must not connect.
"""

import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from mlapi_k8s import env_seconds, wait_until
from mlapi_k8s.netprobe import (
    LISTENER_SCRIPT,
    deny_ingress_policy,
    parse_probe_output,
    pod_manifest,
    probe_args,
    restricted_container,
)


def api_image(release) -> str:
    deployment = release.apps.read_namespaced_deployment(f"{release.fullname}-api", release.namespace)
    return deployment.spec.template.spec.containers[0].image


def test_outsider_cannot_reach_redis_or_kafka(ready_release):
    ns, core = ready_release.namespace, ready_release.core
    net = client.NetworkingV1Api(ready_release.api)
    if not net.list_namespaced_network_policy(ns, label_selector=ready_release.selector()).items:
        pytest.skip("the release has no NetworkPolicies (global.networkPolicy.enabled=false)")
    image, tag = api_image(ready_release), uuid.uuid4().hex[:6]
    open_pod, denied_pod, probe = f"np-open-{tag}", f"np-denied-{tag}", f"np-probe-{tag}"
    listener = restricted_container("listen", image, [LISTENER_SCRIPT])
    created: list[tuple[str, str]] = []
    try:
        net.create_namespaced_network_policy(ns, deny_ingress_policy(f"np-deny-{tag}", f"denied-{tag}"))
        created.append(("policy", f"np-deny-{tag}"))
        for name, role in ((open_pod, f"open-{tag}"), (denied_pod, f"denied-{tag}")):
            core.create_namespaced_pod(ns, pod_manifest(name, role, listener, restart="Always",
                                                        readiness_port=8080))
            created.append(("pod", name))
        ips = wait_until(lambda: pod_ips(core, ns, [open_pod, denied_pod]), 120,
                         "the two listener pods to be ready")
        api_svc = core.read_namespaced_service(f"{ready_release.fullname}-api", ns)
        checks = [
            {"name": "open listener", "host": ips[0], "port": 8080, "expect": "open"},
            {"name": "denied listener", "host": ips[1], "port": 8080, "expect": "blocked"},
            {"name": "redis", "host": f"{ready_release.name}-redis", "port": 6379, "expect": "blocked"},
            {"name": "kafka", "host": f"{ready_release.name}-kafka", "port": 9092, "expect": "blocked"},
            {"name": "api", "host": api_svc.metadata.name, "port": api_svc.spec.ports[0].port,
             "expect": "blocked"},
        ]
        core.create_namespaced_pod(ns, pod_manifest(
            probe, f"probe-{tag}", restricted_container("probe", image, probe_args(checks, 45))))
        created.append(("pod", probe))
        phase = wait_until(lambda: finished(core, ns, probe), env_seconds("MLAPI_K8S_PROBE_TIMEOUT", 180),
                           "the probe pod to finish")
        log = core.read_namespaced_pod_log(probe, ns)
        assert phase == "Succeeded", f"the probe pod ended {phase}: {log}"
        results = parse_probe_output(log)
    finally:
        for kind, name in reversed(created):
            delete(net if kind == "policy" else core, kind, ns, name)

    assert results["open listener"]["connected"], f"the probe cannot reach an open pod: {results}"
    if results["denied listener"]["connected"]:
        pytest.skip("the CNI does not enforce NetworkPolicies: a pod behind a deny-all policy answered")
    for name in ("redis", "kafka", "api"):
        outcome = results[name]
        assert outcome["resolved"], f"{name}: the name did not resolve, so nothing was tested: {outcome}"
        assert not outcome["connected"], f"a pod outside the release reached {name}: {outcome}"


def pod_ips(core, ns, names) -> list[str] | None:
    ips = []
    for name in names:
        pod = core.read_namespaced_pod(name, ns)
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        if not (ready and pod.status.pod_ip):
            return None
        ips.append(pod.status.pod_ip)
    return ips


def finished(core, ns, name) -> str | None:
    phase = core.read_namespaced_pod(name, ns).status.phase
    return phase if phase in ("Succeeded", "Failed") else None


def delete(api, kind, ns, name) -> None:
    try:
        if kind == "policy":
            api.delete_namespaced_network_policy(name, ns)
        else:
            api.delete_namespaced_pod(name, ns, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            raise
