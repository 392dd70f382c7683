"""What a cluster would reveal at once: Services, probes, references, addresses, serviceName."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from .conftest import CASES, NAMESPACE, case_file_values, dig, effective_values, pod_templates, render_case

pytestmark = pytest.mark.chart

# Objects a pod references that the chart does not render, by values file: the user makes
# them, and names them under these values keys.
USER_SUPPLIED = {
    "with-existing-secrets-values.yaml": {
        ("Secret", "mlapi-api-keys"): "auth.existingSecret",
        ("Secret", "mlapi-test-token"): "tests.tokenSecret",
        ("Secret", "mlapi-redis"): "redis.auth.existingSecret",
        ("Secret", "mlapi-feedback-db"): "feedback.database.existingSecret",
    },
    "with-external-services-values.yaml": {
        ("Secret", "my-redis"): "externalRedis.existingSecret",
        ("Secret", "mlapi-kafka-user"): "externalKafka.existingSecret",
        ("Secret", "my-cluster-cluster-ca-cert"): "externalKafka.caSecret",
    },
    "with-private-registry-values.yaml": {
        ("Secret", "regcred"): "global.imagePullSecrets",
        ("Secret", "mlapi-pull"): "imagePullSecrets",
    },
    "with-extras-values.yaml": {
        ("Secret", "corp-ca"): "api.extraVolumes",
    },
    "with-otel-values.yaml": {
        ("Secret", "otel-headers"): "otel.headersSecret.name",
    },
    "with-keda-external-kafka-values.yaml": {
        ("Secret", "mlapi-kafka-user"): "externalKafka.existingSecret",
        ("Secret", "kafka-ca"): "externalKafka.caSecret",
    },
    "with-mtls-values.yaml": {
        ("Secret", "redis-ca"): "externalRedis.caSecret",
        ("Secret", "mlapi-redis-client"): "externalRedis.clientCertSecret",
        ("Secret", "my-cluster-cluster-ca-cert"): "externalKafka.caSecret",
        ("Secret", "mlapi-tls-user"): "externalKafka.clientCertSecret",
    },
}


def _workload_templates(r):
    return [pt for pt in pod_templates(r.docs) if not pt.is_helm_test]


def _declares(pt_or_container_ports, target) -> bool:
    for p in pt_or_container_ports:
        if (isinstance(target, str) and p.get("name") == target) or \
                (isinstance(target, int) and p["containerPort"] == target):
            return True
    return False


def test_services_select_pods_with_their_target_ports(rendered):
    for svc in rendered.of_kind("Service"):
        name, sel = svc["metadata"]["name"], svc["spec"].get("selector")
        assert sel, f"Service {name} has no selector"
        pods = [pt for pt in _workload_templates(rendered)
                if all(pt.labels.get(k) == v for k, v in sel.items())]
        assert pods, f"Service {name} selects no rendered pods"
        owners = {pt.owner_name for pt in pods}
        assert len(owners) == 1, f"Service {name} selects pods of {owners}"
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for pt in pods:
                assert _declares(pt.ports(), target), \
                    f"Service {name} port {port['port']} -> {target!r}: not a port of {pt.id}"


def test_probe_ports_are_declared(rendered):
    seen = 0
    for pt in pod_templates(rendered.docs):
        for c in pt.all_containers:
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = c.get(kind) or {}
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler in probe:
                        seen += 1
                        assert _declares(c.get("ports") or [], probe[handler]["port"]), \
                            f"{pt.id}/{c['name']} {kind} port {probe[handler]['port']!r}"
    assert seen


def _references(pt):
    """(kind, name, key or None, where) of every ConfigMap, Secret and PVC a pod uses."""
    out = []
    for v in pt.spec.get("volumes") or []:
        if "configMap" in v:
            out += [("ConfigMap", v["configMap"]["name"], i["key"], f"volume {v['name']}")
                    for i in v["configMap"].get("items") or [{"key": None}]]
        if "secret" in v:
            out += [("Secret", v["secret"]["secretName"], i["key"], f"volume {v['name']}")
                    for i in v["secret"].get("items") or [{"key": None}]]
        if "persistentVolumeClaim" in v:
            out.append(("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"], None,
                        f"volume {v['name']}"))
        for src in (v.get("projected") or {}).get("sources") or []:
            for kind, key in (("configMap", "ConfigMap"), ("secret", "Secret")):
                if kind in src:
                    out += [(key, src[kind]["name"], i["key"], f"projected {v['name']}")
                            for i in src[kind].get("items") or [{"key": None}]]
    for ps in pt.spec.get("imagePullSecrets") or []:
        out.append(("Secret", ps["name"], None, "imagePullSecrets"))
    for c in pt.all_containers:
        for ef in c.get("envFrom") or []:
            if "configMapRef" in ef:
                out.append(("ConfigMap", ef["configMapRef"]["name"], None, f"{c['name']} envFrom"))
            if "secretRef" in ef:
                out.append(("Secret", ef["secretRef"]["name"], None, f"{c['name']} envFrom"))
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            if "configMapKeyRef" in vf:
                out.append(("ConfigMap", vf["configMapKeyRef"]["name"], vf["configMapKeyRef"]["key"],
                            f"{c['name']} env {e['name']}"))
            if "secretKeyRef" in vf:
                out.append(("Secret", vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"],
                            f"{c['name']} env {e['name']}"))
    return out


def test_referenced_objects_exist(case):
    r = render_case(case).ok()
    supplied = USER_SUPPLIED.get(case, {})
    used = set()
    for pt in pod_templates(r.docs):
        for kind, name, key, where in _references(pt):
            obj = r.get(kind, name)
            if obj is None:
                assert (kind, name) in supplied, f"{pt.id} {where}: {kind} {name} is not rendered"
                used.add((kind, name))
                continue
            if key is not None:
                keys = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
                assert key in keys, f"{pt.id} {where}: {kind} {name} has no key {key!r}"
    assert used == set(supplied), f"USER_SUPPLIED entries not referenced: {set(supplied) - used}"
    file_values = case_file_values(case)
    for (_kind, name), path in supplied.items():
        given = dig(file_values, path)
        if isinstance(given, list):  # pull secrets: names or {name: ...}
            given = [g["name"] if isinstance(g, dict) else g for g in given]
            assert name in given, f"{name} is not in {path} in {case}"
        else:
            assert given == name, f"{name} is not what {path} says in {case}"


def test_volume_mounts_have_volumes(rendered):
    for pt in pod_templates(rendered.docs):
        names = {v["name"] for v in pt.spec.get("volumes") or []}
        names |= {t["metadata"]["name"] for t in pt.owner.get("spec", {}).get(
            "volumeClaimTemplates") or []}
        for c in pt.all_containers:
            for m in c.get("volumeMounts") or []:
                assert m["name"] in names, f"{pt.id}/{c['name']}: no volume {m['name']}"


def _service_for(r, host: str, port: int, component: str):
    name = host.split(".")[0]
    if "." in host:
        assert host in {name, f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc",
                        f"{name}.{NAMESPACE}.svc.cluster.local"}, host
    svc = r.get("Service", name)
    assert svc is not None, f"{host} is not a rendered Service"
    assert port in {p["port"] for p in svc["spec"]["ports"]}, f"{name} has no port {port}"
    assert svc["spec"]["selector"].get("app.kubernetes.io/name") == component
    return svc


def test_configmap_addresses(case):
    r = render_case(case).ok()
    v = effective_values(case)
    cms = [c for c in r.of_kind("ConfigMap") if "MLAPI_REDIS_URL" in (c.get("data") or {})]
    assert len(cms) == 1
    data = cms[0]["data"]
    if v["redis"]["enabled"]:
        url = urlparse(data["MLAPI_REDIS_URL"])
        assert url.scheme == "redis"
        _service_for(r, url.hostname, url.port or 6379, "redis")
    else:
        assert data["MLAPI_REDIS_URL"] == v["externalRedis"]["url"]
    if v["kafka"]["enabled"]:
        for server in data["MLAPI_KAFKA_BOOTSTRAP"].split(","):
            host, port = server.rsplit(":", 1)
            _service_for(r, host, int(port), "kafka")
    else:
        assert data["MLAPI_KAFKA_BOOTSTRAP"] == v["externalKafka"]["bootstrap"]
        assert data["MLAPI_KAFKA_SECURITY_PROTOCOL"] == v["externalKafka"]["securityProtocol"]


def test_external_services_values_really_are_external():
    data = render_case("with-external-services-values.yaml").ok().get("ConfigMap", "mlapi")["data"]
    assert data["MLAPI_REDIS_URL"] == "rediss://my-redis.example.internal:6380/0"
    assert data["MLAPI_KAFKA_BOOTSTRAP"] == "my-cluster-kafka-bootstrap.kafka:9093"
    assert data["MLAPI_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["MLAPI_KAFKA_SSL_CAFILE"] == "/etc/mlapi/kafka-ca/ca.crt"


@pytest.mark.parametrize("component", ["kafka", "redis"])
def test_statefulset_service_name_is_headless(case, component):
    r = render_case(case).ok()
    sts = [s for s in r.of_kind("StatefulSet")
           if s["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name") == component]
    if not effective_values(case)[component]["enabled"]:
        assert not sts
        return
    (s,) = sts
    svc = r.get("Service", s["spec"]["serviceName"])
    assert svc is not None, f"serviceName {s['spec']['serviceName']} is not rendered"
    assert svc["spec"].get("clusterIP") == "None"
    assert svc["spec"]["selector"] == s["spec"]["selector"]["matchLabels"]
    if component == "kafka":
        assert svc["spec"].get("publishNotReadyAddresses") is True
        assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == \
            {"kafka": 9092, "controller": 9093}
        assert s["spec"]["replicas"] == effective_values(case)["kafka"]["replicaCount"]


def test_topic_replication_follows_brokers(case):
    v = effective_values(case)
    data = render_case(case).ok().get("ConfigMap", "mlapi")["data"]
    want = min(3, v["kafka"]["replicaCount"]) if v["kafka"]["enabled"] else 3
    assert data["MLAPI_TOPIC_REPLICATION"] == str(v["config"]["topicReplication"] or want)


@pytest.mark.parametrize("case", [c for c in CASES if c != "defaults"][:1] + ["defaults"])
def test_pods_roll_on_config_change(case):
    base = render_case(case).ok()
    changed = render_case(case, ("config.logLevel=DEBUG",)).ok()
    for name in ("mlapi-api", "mlapi-worker", "mlapi-feedback"):
        a = base.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        b = changed.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert a["checksum/config"] != b["checksum/config"], name


def _bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (Mi, Gi) or a Valkey size (mb, gb) in bytes."""
    units = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "kb": 2**10, "mb": 2**20, "gb": 2**30}
    q = quantity.strip().lower()
    for suffix, factor in units.items():
        if q.endswith(suffix):
            return int(float(q[:-len(suffix)]) * factor)
    return int(q)


def test_valkey_fits_the_model_registry_below_its_memory_limit():
    # With noeviction a full Valkey refuses writes, so every prediction fails: maxmemory
    # must hold the registry (MLAPI_MODEL_KEEP + 2 archives of ~28 MB) with room to spare,
    # and stay under the container's limit (AOF rewrite and allocator overhead).
    r = render_case("default-values.yaml").ok()
    conf = next(d for d in r.of_kind("ConfigMap") if "valkey.conf" in d.get("data", {}))
    maxmemory = _bytes(next(ln.split()[1] for ln in conf["data"]["valkey.conf"].splitlines()
                            if ln.strip().startswith("maxmemory ")))
    (sts,) = [d for d in r.of_kind("StatefulSet") if d["metadata"]["name"].endswith("redis")]
    limit = _bytes(sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])
    from mlapi.config import Settings

    keep = Settings().model_keep  # the chart leaves MLAPI_MODEL_KEEP at the app's default
    assert not any("MLAPI_MODEL_KEEP" in d.get("data", {}) for d in r.of_kind("ConfigMap"))
    assert (keep + 2) * 28 * 2**20 * 2 <= maxmemory < limit, (keep, maxmemory, limit)
