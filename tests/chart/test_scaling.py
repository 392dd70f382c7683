"""HPA / KEDA objects and the partitions rule."""

from __future__ import annotations

import pytest

from .conftest import NAMESPACE, effective_values, render, render_case

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
        # KEDA's HPA scales down as the CPU HPA would (the same case without KEDA).
        (cpu_hpa,) = _hpas(render_case(case, ("worker.keda.enabled=false",)).ok(), "worker")
        hpa_config = scaled[0]["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
        assert hpa_config.get("behavior") == cpu_hpa["spec"]["behavior"]
        assert cpu_hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == \
            v["autoscaling"]["scaleDownStabilizationSeconds"]
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


# ---- KEDA: what the operator, in its own namespace, needs to read the lag.

KEDA = ("--api-versions", "keda.sh/v1alpha1")
EXT_KAFKA_CASE = "with-keda-external-kafka-values.yaml"


def _trigger(r):
    (so,) = r.of_kind("ScaledObject")
    (trigger,) = so["spec"]["triggers"]
    return trigger


@pytest.mark.parametrize("sets,domain", [((), "cluster.local"),
                                         (("kafka.clusterDomain=corp.example",), "corp.example")])
def test_keda_bootstrap_is_the_bundled_kafka_fqdn(sets, domain):
    """Short names resolve in the resolver's namespace: KEDA's operator is not in ours."""
    r = render_case("with-keda-values.yaml", sets).ok()
    svc = r.get("Service", "mlapi-kafka")
    assert svc is not None and 9092 in {p["port"] for p in svc["spec"]["ports"]}
    fqdn = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.{domain}:9092"
    assert _trigger(r)["metadata"]["bootstrapServers"] == fqdn
    # The brokers advertise names under the same domain (the subchart's KAFKA_CLUSTER_DOMAIN).
    sts = r.get("StatefulSet", "mlapi-kafka")
    env = {e["name"]: e.get("value") for c in sts["spec"]["template"]["spec"]["containers"]
           for e in c.get("env") or []}
    assert env["KAFKA_CLUSTER_DOMAIN"] == domain
    # The app pods, in the release namespace, keep the short name.
    assert r.get("ConfigMap", "mlapi")["data"]["MLAPI_KAFKA_BOOTSTRAP"] == "mlapi-kafka:9092"


def test_keda_bootstrap_follows_the_release_namespace():
    r = render((), ("worker.keda.enabled=true",), KEDA).ok()
    assert _trigger(r)["metadata"]["bootstrapServers"] == \
        f"mlapi-kafka.{NAMESPACE}.svc.cluster.local:9092"
    other = render((), ("worker.keda.enabled=true",), (*KEDA, "--namespace", "prod")).ok()
    assert _trigger(other)["metadata"]["bootstrapServers"] == \
        "mlapi-kafka.prod.svc.cluster.local:9092"


def test_keda_external_bootstrap_as_given():
    r = render_case(EXT_KAFKA_CASE).ok()
    v = effective_values(EXT_KAFKA_CASE)
    assert _trigger(r)["metadata"]["bootstrapServers"] == v["externalKafka"]["bootstrap"]
    assert r.get("ConfigMap", "mlapi")["data"]["MLAPI_KAFKA_BOOTSTRAP"] == \
        v["externalKafka"]["bootstrap"]


def _worker_sources(r):
    """What the worker pods read: {param: (kind, name, key)} for password, username, ca (the
    Secret mounted at the ConfigMap's MLAPI_KAFKA_SSL_CAFILE, when the protocol uses TLS)."""
    (dep,) = [d for d in r.of_kind("Deployment") if d["metadata"]["name"] == "mlapi-worker"]
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    out = {}
    for e in c.get("env") or []:
        if e["name"] == "MLAPI_KAFKA_SASL_PASSWORD":
            ref = e["valueFrom"]["secretKeyRef"]
            out["password"] = ("Secret", ref["name"], ref["key"])
    cms = [s["configMapRef"]["name"] for s in c.get("envFrom") or [] if "configMapRef" in s]
    for name in cms:
        if "MLAPI_KAFKA_SASL_USERNAME" in r.get("ConfigMap", name)["data"]:
            out["username"] = ("ConfigMap", name, "MLAPI_KAFKA_SASL_USERNAME")
    protocols = {r.get("ConfigMap", n)["data"].get("MLAPI_KAFKA_SECURITY_PROTOCOL") for n in cms}
    if not protocols & {"SSL", "SASL_SSL"}:
        return out  # a CA bundle is only read over TLS
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
    for vol in spec.get("volumes") or []:
        if "secret" in vol and vol["name"] in mounts:
            for item in vol["secret"].get("items") or []:
                cafile = f"{mounts[vol['name']]}/{item['path']}"
                if any(r.get("ConfigMap", n)["data"].get("MLAPI_KAFKA_SSL_CAFILE") == cafile
                       for n in cms):
                    out["ca"] = ("Secret", vol["secret"]["secretName"], item["key"])
    return out


def _auth_sources(r):
    (ta,) = r.of_kind("TriggerAuthentication")
    assert ta["apiVersion"] == "keda.sh/v1alpha1"
    assert _trigger(r).get("authenticationRef") == {"name": ta["metadata"]["name"]}
    out = {}
    for kind, field in (("Secret", "secretTargetRef"), ("ConfigMap", "configMapTargetRef")):
        for ref in ta["spec"].get(field) or []:
            assert ref["parameter"] not in out, ref
            out[ref["parameter"]] = (kind, ref["name"], ref["key"])
    assert set(ta["spec"]) <= {"secretTargetRef", "configMapTargetRef"}, ta["spec"]
    return out


@pytest.mark.parametrize("sets,sasl,tls,params", [
    # the ci file: SCRAM-SHA-256 over TLS, a password Secret and a CA Secret of the user's
    ((), "scram_sha256", True, {"password", "username", "ca"}),
    # the password given inline: the chart-made `-external` Secret
    (("externalKafka.existingSecret=", "externalKafka.password=pw"), "scram_sha256", True,
     {"password", "username", "ca"}),
    (("externalKafka.saslMechanism=SCRAM-SHA-512", "externalKafka.caSecret="), "scram_sha512",
     True, {"password", "username"}),
    (("externalKafka.securityProtocol=SASL_PLAINTEXT", "externalKafka.saslMechanism=PLAIN"),
     "plaintext", False, {"password", "username"}),
    (("externalKafka.securityProtocol=SSL",), None, True, {"ca"}),
], ids=["ci-file", "inline-password", "scram-512-no-ca", "sasl-plaintext", "ssl-ca-only"])
def test_keda_trigger_authentication_uses_the_workers_secrets(sets, sasl, tls, params):
    r = render_case(EXT_KAFKA_CASE, sets).ok()
    worker, auth = _worker_sources(r), _auth_sources(r)
    assert set(worker) == params, worker
    assert auth == worker, "KEDA must read exactly the Secrets/keys the workers read"
    meta = _trigger(r)["metadata"]
    assert meta.get("sasl") == sasl
    assert meta.get("tls") == ("enable" if tls else None)
    v = effective_values(EXT_KAFKA_CASE)["externalKafka"]
    if "username" in params:
        _, cm, key = auth["username"]
        assert r.get("ConfigMap", cm)["data"][key] == v["username"]
    if "password=pw" in " ".join(sets):
        _, name, key = auth["password"]
        secret = r.get("Secret", name)
        assert secret is not None and key in secret["data"], "the chart makes that Secret"


def test_keda_external_sasl_case_has_trigger_authentication():
    r = render_case(EXT_KAFKA_CASE).ok()
    assert r.of_kind("TriggerAuthentication") and _trigger(r)["authenticationRef"]["name"]


@pytest.mark.parametrize("sets", [
    (),
    ("kafka.enabled=false", "externalKafka.bootstrap=k.example:9092"),
    ("kafka.enabled=false", "externalKafka.bootstrap=k.example:9093",
     "externalKafka.securityProtocol=SSL"),
], ids=["bundled", "external-plaintext", "external-ssl-system-ca"])
def test_keda_without_credentials_has_no_trigger_authentication(sets):
    r = render((), ("worker.keda.enabled=true", *sets), KEDA).ok()
    assert not r.of_kind("TriggerAuthentication")
    trigger = _trigger(r)
    assert "authenticationRef" not in trigger and "sasl" not in trigger["metadata"]
    want_tls = "externalKafka.securityProtocol=SSL" in sets
    assert trigger["metadata"].get("tls") == ("enable" if want_tls else None)
