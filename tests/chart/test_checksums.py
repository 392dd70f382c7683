"""Pod checksums: the same inputs give the same annotations; a changed secret rolls its readers."""

from __future__ import annotations

import pytest
import yaml

from .conftest import CHART, NAMESPACE, RELEASE, pod_templates, run_helm

pytestmark = pytest.mark.chart

READERS = {"api", "worker", "feedback", "retrain"}


def _annotations(*sets: str) -> dict[str, dict]:
    """A fresh `helm template` (not the cached render): component -> pod annotations."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(*args)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return {pt.labels.get("app.kubernetes.io/component") or pt.labels["app.kubernetes.io/name"]:
            pt.metadata.get("annotations") or {} for pt in pod_templates(docs)}


CRONJOB = ("feedback.retrain.mode=cronjob", "feedback.database.url=postgresql://db/mlapi")


@pytest.mark.parametrize("sets", [(), CRONJOB], ids=["defaults", "cronjob"])
def test_same_inputs_same_checksums_in_every_render_and_deployment(sets):
    first, second = _annotations(*sets), _annotations(*sets)
    assert first == second, "two renders of the same values differ: GitOps would roll pods"
    readers = {c: a["checksum/secrets"] for c, a in first.items() if c in READERS}
    assert len(readers) == (4 if sets else 3) and len(set(readers.values())) == 1, readers
    assert first["redis"]["checksum/secret"] == second["redis"]["checksum/secret"]


EXTERNAL = ("redis.enabled=false", "externalRedis.url=rediss://r:6380/0",
            "kafka.enabled=false", "externalKafka.bootstrap=k:9093",
            "externalKafka.securityProtocol=SASL_SSL", "externalKafka.saslMechanism=PLAIN",
            "externalKafka.username=u")


@pytest.mark.parametrize("base, change", [
    ((), "redis.auth.password=rotated"),
    ((), "redis.auth.existingSecret=my-redis"),
    ((), "auth.existingSecret=my-keys"),
    (CRONJOB, "feedback.database.url=postgresql://db2/mlapi"),
    ((*EXTERNAL, "externalKafka.password=a"), "externalKafka.password=b"),
    ((*EXTERNAL, "externalKafka.password=a", "externalRedis.password=a"), "externalRedis.password=b"),
    ((*EXTERNAL, "externalKafka.existingSecret=k1"), "externalKafka.existingSecret=k2"),
])
def test_a_changed_secret_rolls_every_pod_that_reads_it(base, change):
    before, after = _annotations(*base), _annotations(*base, change)
    for component in READERS & set(before):
        assert before[component]["checksum/secrets"] != after[component]["checksum/secrets"], \
            (component, change)
    if change.startswith("redis.auth"):
        assert before["redis"]["checksum/secret"] != after["redis"]["checksum/secret"]


def test_an_unrelated_value_rolls_nothing():
    before, after = _annotations(), _annotations("api.replicaCount=5", "worker.podLabels.a=b")
    assert before == after
