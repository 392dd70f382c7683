"""NetworkPolicy semantics of each render, evaluated by netpol.py on modelled pods."""

from __future__ import annotations

import functools

import pytest

from .conftest import CASES, NAMESPACE, effective_values, pod_templates, render_case
from .netpol import Cluster, External, Pod, Port, pods_from_templates

pytestmark = pytest.mark.chart

APP = ["api", "worker", "feedback"]
INTERNET = "93.184.216.34"
NODELOCAL_DNS = "169.254.20.10"
# Namespace of whoever fronts the API (networkPolicy.apiFrom) per values file; without it, the
# Gateway's (networkPolicy.gatewayNamespace) with httpRoute.enabled, else nobody.
FRONT_NS = {"with-ingress-values.yaml": "traefik"}
SYNTHETIC = {
    "gateway": Pod("gateway", "envoy-gateway-system", {"app.kubernetes.io/name": "envoy"}),
    "traefik": Pod("traefik", "traefik", {"app.kubernetes.io/name": "traefik"}),
    "prometheus": Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
    "stranger": Pod("stranger", NAMESPACE, {}),
    "dns": Pod("dns", "kube-system", {"k8s-app": "kube-dns"},
               [Port(53, "UDP", "dns"), Port(53, "TCP", "dns-tcp")]),
    # The KEDA Helm chart's pods (kedacore/charts keda/templates: operator, metrics server) in
    # its documented namespace, and a look-alike of the operator elsewhere.
    "keda-operator": Pod("keda-operator", "keda", {
        "app": "keda-operator", "name": "keda-operator",
        "app.kubernetes.io/name": "keda-operator", "app.kubernetes.io/instance": "keda"}),
    "keda-metrics": Pod("keda-metrics", "keda", {
        "app": "keda-operator-metrics-apiserver", "name": "keda-operator-metrics-apiserver",
        "app.kubernetes.io/name": "keda-operator-metrics-apiserver",
        "app.kubernetes.io/instance": "keda"}),
    "fake-keda": Pod("fake-keda", "team-x", {"app": "keda-operator"}),
}


@functools.cache
def world(case: str, sets: tuple[str, ...] = ()) -> tuple[Cluster, dict]:
    r = render_case(case, sets).ok()
    pods = dict(SYNTHETIC)
    templates = pod_templates(r.docs)
    modelled = pods_from_templates(templates, NAMESPACE)
    for pt in templates:
        pod = modelled[pt.id]
        role = "test" if pt.is_helm_test else pt.labels.get("app.kubernetes.io/component")
        assert role and role not in pods, f"{pt.id}: role {role!r}"
        pods[role] = pod
    if "kafka" in pods:  # a second broker, for inter-broker traffic
        k = pods["kafka"]
        pods["kafka-1"] = Pod("kafka-1", k.namespace, dict(k.labels), list(k.ports))
    return Cluster(r.of_kind("NetworkPolicy"), NAMESPACE), pods


def release_roles(case):
    v = effective_values(case)
    roles = [*APP, "test"]
    if v["redis"]["enabled"]:
        roles.append("redis")
    if v["kafka"]["enabled"]:
        roles.append("kafka")
    if v["feedback"]["retrain"]["enabled"] and v["feedback"]["retrain"]["mode"] == "cronjob":
        roles.append("retrain")
    return roles


def flows(case):
    """(src, dst, port, protocol, allowed) the chart must implement for this values file."""
    v = effective_values(case)
    roles = release_roles(case)
    clients = [r for r in roles if r in {*APP, "retrain"}]
    front = FRONT_NS.get(case) or \
        (v["networkPolicy"]["gatewayNamespace"] if v["httpRoute"]["enabled"] else None)
    out = []
    if v["redis"]["enabled"]:
        out += [(c, "redis", 6379, "TCP", True) for c in clients]
        out += [("stranger", "redis", 6379, "TCP", False), ("test", "redis", 6379, "TCP", False),
                ("prometheus", "redis", 6379, "TCP", False)]
    if v["kafka"]["enabled"]:
        out += [(c, "kafka", 9092, "TCP", True) for c in clients]
        out += [("kafka", "kafka-1", 9093, "TCP", True), ("kafka", "kafka-1", 9092, "TCP", True),
                ("stranger", "kafka", 9092, "TCP", False), ("api", "kafka", 9093, "TCP", False),
                ("test", "kafka", 9092, "TCP", False)]
    if v["redis"]["enabled"] and v["kafka"]["enabled"]:
        out += [("redis", "kafka", 9092, "TCP", False), ("kafka", "redis", 6379, "TCP", False)]
    if front:
        out.append(("traefik" if front == "traefik" else "gateway", "api", 8000, "TCP", True))
    if v["kafka"]["enabled"]:
        # KEDA's operator reads the consumer group's lag from the brokers, nothing more.
        keda = v["worker"]["keda"]["enabled"]
        out += [("keda-operator", "kafka", 9092, "TCP", keda),
                ("keda-operator", "kafka-1", 9092, "TCP", keda),
                ("keda-operator", "kafka", 9093, "TCP", False),
                ("keda-metrics", "kafka", 9092, "TCP", False),
                ("fake-keda", "kafka", 9092, "TCP", False)]
    if v["redis"]["enabled"]:
        out += [("keda-operator", "redis", 6379, "TCP", False)]
    out += [("keda-operator", "api", 8000, "TCP", False),
            ("keda-operator", "worker", 9100, "TCP", False)]
    out += [
        ("test", "api", 8000, "TCP", True),
        ("traefik", "api", 8000, "TCP", front == "traefik"),
        (INTERNET, "api", 8000, "TCP", False),
        ("stranger", "api", 8000, "TCP", False),
        ("gateway", "worker", 9100, "TCP", False),
        ("gateway", "feedback", 9101, "TCP", False),
        ("prometheus", "api", 8000, "TCP", True),
        ("prometheus", "worker", 9100, "TCP", True),
        ("prometheus", "feedback", 9101, "TCP", True),
        ("api", "feedback", 9101, "TCP", False),
        ("worker", "api", 8000, "TCP", False),
        ("worker", "feedback", 9101, "TCP", False),
        ("feedback", "api", 8000, "TCP", False),
    ]
    if front != "envoy-gateway-system":
        out.append(("gateway", "api", 8000, "TCP", False))
    nodelocal = any(p.get("ipBlock") for p in v["networkPolicy"]["dnsTo"])
    for r in roles:
        out += [(r, "dns", 53, "UDP", True), (r, "dns", 53, "TCP", True),
                (r, INTERNET, 443, "TCP", False), (r, "dns", 80, "TCP", False),
                (r, INTERNET, 53, "UDP", False),
                (r, NODELOCAL_DNS, 53, "UDP", nodelocal), (r, NODELOCAL_DNS, 80, "TCP", False)]
    ext_redis_port = v["externalRedis"]["port"]
    ext_kafka_ports = v["externalKafka"]["ports"]
    if not v["redis"]["enabled"]:
        out += [(c, "10.1.2.3", ext_redis_port, "TCP", True) for c in clients]
        out += [(c, INTERNET, ext_redis_port, "TCP", False) for c in clients]
        out += [("test", "10.1.2.3", ext_redis_port, "TCP", False)]
    if not v["kafka"]["enabled"]:
        for p in ext_kafka_ports:
            out += [(c, "10.1.2.3", p, "TCP", True) for c in clients]
            out += [(c, INTERNET, p, "TCP", False) for c in clients]
    if not (v["redis"]["enabled"] and v["kafka"]["enabled"]):
        out += [(c, "10.1.2.3", 443, "TCP", False) for c in clients]
        out += [(c, "10.1.2.3", 6379 if ext_redis_port != 6379 else 9999, "TCP", False)
                for c in clients]
    db = v["feedback"]["database"]
    db_port = db["port"]
    if db["url"] or db["existingSecret"]:
        out += [(c, INTERNET, db_port, "TCP", True) for c in ("feedback", "retrain") if c in roles]
        out += [(c, INTERNET, db_port, "TCP", False) for c in ("api", "worker")]
    else:
        out += [(c, INTERNET, db_port, "TCP", False) for c in clients]
    return out


FLOW_PARAMS = [pytest.param(case, *f, id=f"{case}:{f[0]}->{f[1]}:{f[2]}/{f[3]}:"
                            f"{'allow' if f[4] else 'deny'}")
               for case in CASES for f in flows(case)]


@pytest.mark.parametrize("case,src,dst,port,protocol,expected", FLOW_PARAMS)
def test_flow(case, src, dst, port, protocol, expected):
    cluster, pods = world(case)
    assert src[0].isdigit() or src in pods, f"no {src} pod rendered"
    s = External(src) if src[0].isdigit() else pods[src]
    d = External(dst) if dst[0].isdigit() else pods.get(dst)
    assert d is not None, f"no {dst} pod rendered"
    assert cluster.allowed(s, d, port, protocol) is expected


def test_external_services_render_no_redis_or_kafka_pods():
    _, pods = world("with-external-services-values.yaml")
    assert "redis" not in pods and "kafka" not in pods
    assert {"api", "worker", "feedback"} <= set(pods)


def test_every_release_pod_is_under_default_deny(case):
    """No pod of the release is left with default-allow in either direction."""
    cluster, pods = world(case)
    for role in release_roles(case):
        for direction in ("Ingress", "Egress"):
            assert cluster._selecting(pods[role], direction), f"{role} {direction}"


def test_policies_can_be_switched_off():
    r = render_case("defaults", ("global.networkPolicy.enabled=false",)).ok()
    assert not r.of_kind("NetworkPolicy")
    assert r.of_kind("StatefulSet"), "subcharts still render"


def _allowed(world_, src, dst, port, protocol="TCP"):
    cluster, pods = world_
    s = External(src) if src[0].isdigit() else pods[src]
    d = External(dst) if dst[0].isdigit() else pods[dst]
    return cluster.allowed(s, d, port, protocol)


@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort"])
def test_an_external_api_service_admits_any_source_to_the_api_port_only(service_type):
    """External clients reach a LoadBalancer/NodePort Service from node IPs or anywhere."""
    w = world("defaults", (f"api.service.type={service_type}",))
    for src in (INTERNET, "10.0.0.7", "stranger", "gateway"):
        assert _allowed(w, src, "api", 8000), src
        assert not _allowed(w, src, "api", 8001), src
        assert not _allowed(w, src, "worker", 9100), src
        assert not _allowed(w, src, "redis", 6379), src
    assert not _allowed(w, "api", INTERNET, 443), "egress stays closed"


def test_no_route_admits_only_the_test_pod_to_the_api():
    w = world("defaults")
    assert _allowed(w, "test", "api", 8000)
    for src in ("gateway", "traefik", "stranger", INTERNET):
        assert not _allowed(w, src, "api", 8000), src


def test_the_gateway_namespace_is_a_value_and_apifrom_overrides_it():
    route = ("httpRoute.enabled=true", "httpRoute.parentRefs[0].name=eg")
    cluster, pods = world("defaults", (*route, "networkPolicy.gatewayNamespace=istio-ingress"))
    istio = Pod("istio", "istio-ingress", {"istio": "ingressgateway"})
    assert cluster.allowed(istio, pods["api"], 8000)
    assert not cluster.allowed(pods["gateway"], pods["api"], 8000)
    w = world("defaults", (*route, "networkPolicy.apiFrom[0].namespaceSelector.matchLabels"
                                   ".kubernetes\\.io/metadata\\.name=traefik"))
    assert _allowed(w, "traefik", "api", 8000)
    assert not _allowed(w, "gateway", "api", 8000)


@pytest.mark.parametrize("sets,ok", [
    ((), False),
    (("api.service.type=LoadBalancer",), True),
    (("global.networkPolicy.enabled=false",), True),
    (("networkPolicy.apiFrom[0].namespaceSelector.matchLabels.team=edge",), True),
], ids=["no-apiFrom", "loadbalancer", "policies-off", "apiFrom"])
def test_an_ingress_needs_apifrom(sets, ok):
    r = render_case("defaults", ("ingress.enabled=true", *sets))
    assert (r.rc == 0) is ok, r.stderr
    if not ok:
        assert "networkPolicy.apiFrom" in r.stderr and "namespaceSelector" in r.stderr


def test_dns_peers_and_ports_are_values():
    """OpenShift: the DNS pods are in openshift-dns and listen on 5353 (the Service's 53)."""
    sets = ("networkPolicy.dnsTo[0].namespaceSelector.matchLabels"
            ".kubernetes\\.io/metadata\\.name=openshift-dns",
            "networkPolicy.dnsPorts[0].port=5353", "networkPolicy.dnsPorts[0].protocol=UDP",
            "networkPolicy.dnsPorts[1].port=5353", "networkPolicy.dnsPorts[1].protocol=TCP")
    cluster, pods = world("defaults", sets)
    dns = Pod("openshift-dns", "openshift-dns", {"dns.operator.openshift.io/daemonset-dns": "default"})
    for role in ("api", "worker", "feedback", "redis", "kafka", "test"):
        assert cluster.allowed(pods[role], dns, 5353, "UDP"), role
        assert cluster.allowed(pods[role], dns, 5353, "TCP"), role
        assert not cluster.allowed(pods[role], dns, 53, "UDP"), role
        assert not cluster.allowed(pods[role], pods["dns"], 5353, "UDP"), role


def test_an_empty_dnsto_allows_any_destination_on_the_dns_ports_only():
    w = world("defaults", ("networkPolicy.dnsTo=null",))
    assert _allowed(w, "api", INTERNET, 53, "UDP")
    assert _allowed(w, "worker", NODELOCAL_DNS, 53, "TCP")
    assert not _allowed(w, "api", INTERNET, 443)


# ---- KEDA's operator and the bundled Kafka.

KEDA_CASE = "with-keda-values.yaml"


def _allowed_flows(cluster, pods):
    """Every (src, dst, port, protocol) the policies allow between the modelled pods, on any
    port a pod declares or the chart uses."""
    ports = {(p.port, p.protocol) for pod in pods.values() for p in pod.ports}
    ports |= {(p, "TCP") for p in (53, 80, 443, 6379, 8000, 9092, 9093, 9100, 9101)}
    return {(s, d, port, proto) for s, src in pods.items() for d, dst in pods.items()
            if s != d for port, proto in ports if cluster.allowed(src, dst, port, proto)}


def test_keda_opens_only_the_operator_to_kafka_9092():
    """The same values without KEDA allow exactly the same flows, but the operator's two."""
    with_keda = _allowed_flows(*world(KEDA_CASE))
    without = _allowed_flows(*world(KEDA_CASE, ("worker.keda.enabled=false",)))
    assert without <= with_keda
    assert with_keda - without == {("keda-operator", "kafka", 9092, "TCP"),
                                   ("keda-operator", "kafka-1", 9092, "TCP")}


def test_keda_operator_namespace_and_labels_are_values():
    sets = ("worker.keda.operator.namespace=autoscaling", "worker.keda.operator.podLabels.app=null",
            "worker.keda.operator.podLabels.app\\.kubernetes\\.io/name=keda-operator")
    cluster, pods = world(KEDA_CASE, sets)
    moved = Pod("moved", "autoscaling", {"app.kubernetes.io/name": "keda-operator"})
    assert cluster.allowed(moved, pods["kafka"], 9092)
    assert not cluster.allowed(moved, pods["kafka"], 9093)
    assert not cluster.allowed(pods["keda-operator"], pods["kafka"], 9092), "no longer `keda`"
    assert not cluster.allowed(Pod("other", "autoscaling", {"app": "keda-operator"}),
                               pods["kafka"], 9092)


def test_keda_kafka_policy_only_with_bundled_kafka_and_policies():
    def keda_policies(case, sets=()):
        return [p for p in render_case(case, sets).ok().of_kind("NetworkPolicy")
                if "keda-operator" in str(p["spec"])]
    assert len(keda_policies(KEDA_CASE)) == 1
    assert not keda_policies("with-keda-external-kafka-values.yaml"), "no Kafka pods to admit to"
    assert not keda_policies(KEDA_CASE, ("global.networkPolicy.enabled=false",))
    assert not keda_policies("defaults")
