"""Combinations that cannot work, and values the schemas reject, fail the render by name."""

from __future__ import annotations

import pytest

from .conftest import CHART, NAMESPACE, RELEASE, render, run_helm

pytestmark = pytest.mark.chart

KEDA = ("--api-versions", "keda.sh/v1alpha1")
EXT_KAFKA = ("kafka.enabled=false", "externalKafka.bootstrap=k:9093")

# id, --set values, extra args, substrings the error must contain (values paths)
TEMPLATE_RULES = [
    ("maxReplicas-over-partitions", ("worker.autoscaling.maxReplicas=20",), (),
     ["worker.autoscaling.maxReplicas", "config.predictPartitions"]),
    ("keda-without-keda-api", ("worker.keda.enabled=true",), (), ["worker.keda.enabled"]),
    ("redis-off-without-url", ("redis.enabled=false",), (), ["redis.enabled", "externalRedis.url"]),
    ("kafka-off-without-bootstrap", ("kafka.enabled=false",), (),
     ["kafka.enabled", "externalKafka.bootstrap"]),
    ("sasl-without-mechanism", (*EXT_KAFKA, "externalKafka.securityProtocol=SASL_SSL",
                                "externalKafka.username=u", "externalKafka.password=p"), (),
     ["externalKafka.saslMechanism"]),
    ("sasl-without-credentials", (*EXT_KAFKA, "externalKafka.securityProtocol=SASL_PLAINTEXT",
                                  "externalKafka.saslMechanism=PLAIN"), (),
     ["externalKafka.username", "externalKafka.existingSecret"]),
    ("sasl-without-password", (*EXT_KAFKA, "externalKafka.securityProtocol=SASL_SSL",
                               "externalKafka.saslMechanism=PLAIN", "externalKafka.username=u"),
     (), ["externalKafka.existingSecret"]),
    ("two-feedback-pods-on-sqlite", ("feedback.replicaCount=2",), (),
     ["feedback.replicaCount", "feedback.database.existingSecret"]),
    ("cronjob-retrain-on-sqlite", ("feedback.retrain.mode=cronjob",), (),
     ["feedback.retrain.mode", "feedback.database.existingSecret"]),
    ("httproute-and-ingress", ("httpRoute.enabled=true", "httpRoute.parentRefs[0].name=eg",
                               "ingress.enabled=true"), (),
     ["httpRoute.enabled", "ingress.enabled"]),
    ("httproute-without-parentrefs", ("httpRoute.enabled=true",), (), ["httpRoute.parentRefs"]),
    ("replication-over-brokers", ("config.topicReplication=3",), (),
     ["config.topicReplication", "kafka.replicaCount"]),
    ("worker-min-over-max", ("worker.autoscaling.minReplicas=5",
                             "worker.autoscaling.maxReplicas=4"), (),
     ["worker.autoscaling.minReplicas", "worker.autoscaling.maxReplicas"]),
    ("api-min-over-max", ("api.autoscaling.enabled=true", "api.autoscaling.minReplicas=5",
                          "api.autoscaling.maxReplicas=4"), (),
     ["api.autoscaling.minReplicas", "api.autoscaling.maxReplicas"]),
]

# id, --set / --set-string values, substrings (the offending key and where it is)
SCHEMA_RULES = [
    ("unknown-top-level", ("--set", "bogusKey=1"), ["bogusKey"]),
    ("unknown-in-api", ("--set", "api.bogusKey=1"), ["bogusKey", "/api"]),
    ("unknown-in-api-autoscaling", ("--set", "api.autoscaling.bogusKey=1"),
     ["bogusKey", "/api/autoscaling"]),
    ("unknown-in-redis", ("--set", "redis.bogusKey=1"), ["bogusKey", "redis"]),
    ("unknown-in-redis-auth", ("--set", "redis.auth.bogusKey=1"), ["bogusKey", "/auth"]),
    ("unknown-in-kafka", ("--set", "kafka.bogusKey=1"), ["bogusKey", "kafka"]),
    ("unknown-in-kafka-persistence", ("--set", "kafka.persistence.bogusKey=1"),
     ["bogusKey", "/persistence"]),
    ("string-replicas", ("--set-string", "api.replicaCount=two"), ["/api/replicaCount"]),
    ("zero-brokers", ("--set", "kafka.replicaCount=0"), ["replicaCount"]),
    ("bad-pull-policy", ("--set", "image.pullPolicy=Sometimes"), ["/image/pullPolicy"]),
    ("bad-retrain-mode", ("--set", "feedback.retrain.mode=daemon"), ["/feedback/retrain/mode"]),
]


@pytest.mark.parametrize("sets,extra,needles", [r[1:] for r in TEMPLATE_RULES],
                         ids=[r[0] for r in TEMPLATE_RULES])
def test_template_rule(sets, extra, needles):
    r = render((), sets, extra)
    assert r.rc != 0, "the render should fail"
    for n in needles:
        assert n in r.stderr, f"{n!r} not named in:\n{r.stderr}"


def test_keda_renders_with_keda_api():
    render((), ("worker.keda.enabled=true",), KEDA).ok()


@pytest.mark.parametrize("sets", [
    (*EXT_KAFKA, "externalKafka.securityProtocol=SASL_SSL", "externalKafka.saslMechanism=PLAIN",
     "externalKafka.username=u", "externalKafka.existingSecret=s"),
    ("feedback.replicaCount=2", "feedback.database.existingSecret=db"),
    ("feedback.retrain.mode=cronjob", "feedback.database.url=postgresql://x"),
    ("kafka.replicaCount=3", "config.topicReplication=3"),
    ("redis.enabled=false", "externalRedis.url=redis://r:6379/0"),
], ids=["sasl-complete", "two-feedback-pods-postgres", "cronjob-postgres", "three-of-three",
        "external-redis"])
def test_valid_neighbours_render(sets):
    """The rules above reject exactly the broken combination, not its fixed neighbour."""
    render((), sets).ok()


def run(flag, value):
    return run_helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, flag, value)


@pytest.mark.parametrize("args,needles", [r[1:] for r in SCHEMA_RULES],
                         ids=[r[0] for r in SCHEMA_RULES])
def test_schema_rejects(args, needles):
    proc = run(*args)
    assert proc.returncode != 0, "the schema should reject this"
    assert "schema" in proc.stderr, proc.stderr
    for n in needles:
        assert n in proc.stderr, f"{n!r} not named in:\n{proc.stderr}"
