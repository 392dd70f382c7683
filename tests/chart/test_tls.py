"""TLS to an external Redis (rediss://) and Kafka (SSL/SASL_SSL): CA bundles and client
certificates from Secrets reach every pod that talks to them, at the paths the ConfigMap's
MLAPI_*_SSL_* settings name; combinations that cannot work fail the render."""

from __future__ import annotations

import posixpath

import pytest

from .conftest import effective_values, pod_templates, render, render_case

pytestmark = pytest.mark.chart

CASE = "with-mtls-values.yaml"
CRONJOB = ("feedback.retrain.mode=cronjob", "feedback.database.existingSecret=mlapi-feedback-db")
CLIENT_LABELS = ("mlapi.io/redis-client", "mlapi.io/kafka-client")


def _expected(values: dict) -> dict[str, tuple[str, str]]:
    """MLAPI_* setting -> (Secret, key) the values ask for."""
    r, k = values["externalRedis"], values["externalKafka"]
    return {
        "MLAPI_REDIS_SSL_CAFILE": (r["caSecret"], r["caSecretKey"]),
        "MLAPI_REDIS_SSL_CERTFILE": (r["clientCertSecret"], r["clientCertSecretCertKey"]),
        "MLAPI_REDIS_SSL_KEYFILE": (r["clientCertSecret"], r["clientCertSecretKeyKey"]),
        "MLAPI_KAFKA_SSL_CAFILE": (k["caSecret"], k["caSecretKey"]),
        "MLAPI_KAFKA_SSL_CERTFILE": (k["clientCertSecret"], k["clientCertSecretCertKey"]),
        "MLAPI_KAFKA_SSL_KEYFILE": (k["clientCertSecret"], k["clientCertSecretKeyKey"]),
    }


def _file_sources(pt, container) -> dict[str, tuple[str, str, bool]]:
    """File path in the container -> (Secret, key, read-only) for its Secret volume mounts."""
    volumes = {v["name"]: v for v in pt.spec.get("volumes") or []}
    out = {}
    for m in container.get("volumeMounts") or []:
        secret = volumes[m["name"]].get("secret")
        if secret is None:
            continue
        for item in secret.get("items") or []:
            out[posixpath.join(m["mountPath"], item["path"])] = (
                secret["secretName"], item["key"], bool(m.get("readOnly")))
    return out


def _client_containers(r):
    """(pod template, container) of every container of a Redis/Kafka client pod that reads
    the chart's ConfigMap (the app containers, the retrain sidecar included)."""
    out = []
    for pt in pod_templates(r.docs):
        if pt.is_helm_test or not any(pt.labels.get(label) == "true" for label in CLIENT_LABELS):
            continue
        for c in pt.containers:
            if any(ef.get("configMapRef", {}).get("name") == "mlapi" for ef in c.get("envFrom") or []):
                out.append((pt, c))
    return out


@pytest.mark.parametrize("sets, pods", [
    ((), {"Deployment/mlapi-api": {"api"}, "Deployment/mlapi-worker": {"worker"},
          "Deployment/mlapi-feedback": {"feedback", "retrain"}}),
    (CRONJOB, {"Deployment/mlapi-api": {"api"}, "Deployment/mlapi-worker": {"worker"},
               "Deployment/mlapi-feedback": {"feedback"},
               "CronJob/mlapi-retrain": {"retrain"}}),
], ids=["retrain-sidecar", "retrain-cronjob"])
def test_every_client_container_mounts_the_tls_files_at_the_configured_paths(sets, pods):
    r = render_case(CASE, sets).ok()
    config = r.get("ConfigMap", "mlapi")["data"]
    expected = _expected(effective_values(CASE))
    assert {k: v for k, v in config.items() if "_SSL_" in k}.keys() == expected.keys()
    found = {}
    for pt, c in _client_containers(r):
        found.setdefault(pt.id, set()).add(c["name"])
        files = _file_sources(pt, c)
        for setting, (secret, key) in expected.items():
            path = config[setting]
            assert path in files, f"{pt.id}/{c['name']}: nothing mounted at {setting}={path}"
            assert files[path] == (secret, key, True), f"{pt.id}/{c['name']}: {setting}"
    assert found == pods


def test_the_client_certificate_key_names_default_to_kubernetes_tls_secrets():
    r = render_case(CASE, ("externalKafka.clientCertSecretCertKey=tls.crt",
                           "externalKafka.clientCertSecretKeyKey=tls.key")).ok()
    (worker,) = [pt for pt in pod_templates(r.docs) if pt.id == "Deployment/mlapi-worker"]
    files = _file_sources(worker, worker.containers[0])
    assert files["/etc/mlapi/kafka-client/tls.crt"][:2] == ("mlapi-tls-user", "tls.crt")
    assert files["/etc/mlapi/kafka-client/tls.key"][:2] == ("mlapi-tls-user", "tls.key")
    values = render((), ()).ok()  # the chart's defaults: nothing TLS at all
    assert not any("_SSL_" in k for k in values.get("ConfigMap", "mlapi")["data"])


@pytest.mark.parametrize("sets, want", [
    # only the CA: no client certificate files
    (("externalRedis.clientCertSecret=", "externalKafka.clientCertSecret="),
     {"MLAPI_REDIS_SSL_CAFILE", "MLAPI_KAFKA_SSL_CAFILE"}),
    # only client certificates (servers with public CAs)
    (("externalRedis.caSecret=", "externalKafka.caSecret="),
     {"MLAPI_REDIS_SSL_CERTFILE", "MLAPI_REDIS_SSL_KEYFILE", "MLAPI_KAFKA_SSL_CERTFILE",
      "MLAPI_KAFKA_SSL_KEYFILE"}),
    # the bundled Redis and Kafka ignore the external* TLS values
    (("redis.enabled=true", "kafka.enabled=true"), set()),
], ids=["ca-only", "client-cert-only", "bundled"])
def test_only_what_is_given_is_mounted(sets, want):
    r = render_case(CASE, sets).ok()
    config = r.get("ConfigMap", "mlapi")["data"]
    assert {k for k in config if "_SSL_" in k} == want
    paths = {config[k] for k in want}
    for pt, c in _client_containers(r):
        tls_files = {p for p in _file_sources(pt, c)
                     if p.startswith(("/etc/mlapi/redis-", "/etc/mlapi/kafka-"))}
        assert tls_files == paths, f"{pt.id}/{c['name']}"


@pytest.mark.parametrize("sets, message", [
    (("externalKafka.securityProtocol=PLAINTEXT",),
     "externalKafka.clientCertSecret is set but externalKafka.securityProtocol is PLAINTEXT"),
    (("externalKafka.securityProtocol=SASL_PLAINTEXT", "externalKafka.saslMechanism=PLAIN",
      "externalKafka.username=u", "externalKafka.password=p"),
     "externalKafka.clientCertSecret is set but externalKafka.securityProtocol is SASL_PLAINTEXT"),
    (("externalRedis.url=redis://redis.example.internal:6379/0",
      "externalRedis.clientCertSecret="),
     "externalRedis.caSecret is set but externalRedis.url is a redis:// URL"),
    (("externalRedis.url=redis://redis.example.internal:6379/0", "externalRedis.caSecret="),
     "externalRedis.clientCertSecret is set but externalRedis.url is a redis:// URL"),
], ids=["kafka-plaintext", "kafka-sasl-plaintext", "redis-ca-plain-url", "redis-cert-plain-url"])
def test_tls_files_without_tls_fail_the_render(sets, message):
    r = render_case(CASE, sets)
    assert r.rc != 0
    assert message in r.stderr, r.stderr


@pytest.mark.parametrize("sets", [
    ("externalKafka.securityProtocol=SSL",),
    ("externalKafka.securityProtocol=SASL_SSL", "externalKafka.saslMechanism=SCRAM-SHA-512",
     "externalKafka.username=u", "externalKafka.password=p"),
], ids=["ssl", "sasl-ssl"])
def test_keda_reads_the_lag_with_the_workers_client_certificate(sets):
    r = render_case(CASE, sets).ok()
    (ta,) = r.of_kind("TriggerAuthentication")
    refs = {ref["parameter"]: (ref["name"], ref["key"]) for ref in ta["spec"]["secretTargetRef"]}
    expected = _expected(effective_values(CASE))
    # KEDA's kafka scaler: `cert` and `key` go together, with `tls: enable`
    assert refs["cert"] == expected["MLAPI_KAFKA_SSL_CERTFILE"]
    assert refs["key"] == expected["MLAPI_KAFKA_SSL_KEYFILE"]
    assert refs["ca"] == expected["MLAPI_KAFKA_SSL_CAFILE"]
    (so,) = r.of_kind("ScaledObject")
    assert so["spec"]["triggers"][0]["metadata"]["tls"] == "enable"
    # without a CA Secret, the client certificate alone still needs a TriggerAuthentication
    r = render_case(CASE, (*sets, "externalKafka.caSecret=")).ok()
    (ta,) = r.of_kind("TriggerAuthentication")
    assert {ref["parameter"] for ref in ta["spec"]["secretTargetRef"]} >= {"cert", "key"}
    assert "ca" not in {ref["parameter"] for ref in ta["spec"]["secretTargetRef"]}

