"""The bundled Kafka's scheduling and quorum: brokers kept apart, spread constraints, an odd
voter count, and no change of the voter count under a running cluster."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import yaml

from .conftest import CHART, NAMESPACE, RELEASE, render, run_helm

pytestmark = pytest.mark.chart

KAFKA = CHART / "charts" / "kafka"
STS = f"{RELEASE}-kafka"
SELECTOR = {"app.kubernetes.io/name": "kafka", "app.kubernetes.io/instance": RELEASE}
HOSTNAME = "kubernetes.io/hostname"


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping with the same key twice (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def kafka_statefulset_text(stdout: str) -> str:
    """The rendered text of the Kafka StatefulSet, as helm printed it."""
    docs = [d for d in stdout.split("\n---\n")
            if "kafka/templates/statefulset.yaml" in d and "kind: StatefulSet" in d]
    assert len(docs) == 1, "no (or more than one) Kafka StatefulSet in the render"
    return docs[0]


def pod_spec(*sets: str, extra: tuple[str, ...] = ()) -> dict:
    r = render(sets=sets, extra=extra).ok()
    sts = r.get("StatefulSet", STS)
    assert sts, f"no StatefulSet {STS}"
    return sts["spec"]["template"]["spec"]


# --- anti-affinity preset ---------------------------------------------------------------

def test_three_brokers_prefer_separate_nodes_by_default():
    aff = pod_spec("kafka.replicaCount=3").get("affinity")
    assert aff, "3 brokers and no kafka.affinity: the default (soft) anti-affinity is missing"
    assert set(aff) == {"podAntiAffinity"}
    terms = aff["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in aff["podAntiAffinity"]
    assert len(terms) == 1 and terms[0]["weight"] == 100
    term = terms[0]["podAffinityTerm"]
    assert term == {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": SELECTOR}}


def test_hard_anti_affinity_requires_separate_nodes():
    anti = pod_spec("kafka.replicaCount=3", "kafka.antiAffinity=hard")["affinity"]["podAntiAffinity"]
    assert anti == {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": SELECTOR}}]}


@pytest.mark.parametrize("sets", [("kafka.replicaCount=1",),
                                  ("kafka.replicaCount=3", "kafka.antiAffinity=none")],
                         ids=["one-broker", "preset-none"])
def test_no_preset_for_one_broker_or_none(sets):
    assert "affinity" not in pod_spec(*sets)


def test_user_affinity_replaces_the_preset():
    node_aff = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node-role/kafka", "operator": "Exists"}]}]}}
    spec = pod_spec("kafka.replicaCount=3", "kafka.antiAffinity=hard", extra=(
        "--set-json", "kafka.affinity=" + json.dumps({"nodeAffinity": node_aff})))
    assert spec["affinity"] == {"nodeAffinity": node_aff}


def test_anti_affinity_values_are_checked():
    r = render(sets=("kafka.antiAffinity=strict",))
    assert r.rc != 0 and "'soft', 'hard', 'none'" in r.stderr, r.stderr


# --- topologySpreadConstraints ----------------------------------------------------------

ZONE = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule"}
OWN_SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "kafka"}}
WITH_OWN = {"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": OWN_SELECTOR}
TSC = ("--set-json", "kafka.topologySpreadConstraints=" + json.dumps([ZONE, WITH_OWN]))


def test_topology_spread_gets_the_pod_selector_or_keeps_its_own():
    tsc = pod_spec("kafka.replicaCount=3", extra=TSC)["topologySpreadConstraints"]
    assert tsc == [{**ZONE, "labelSelector": {"matchLabels": SELECTOR}}, WITH_OWN]


def test_topology_spread_with_own_selector_renders_no_duplicate_key():
    r = render(sets=("kafka.replicaCount=3",), extra=TSC).ok()
    text = kafka_statefulset_text(r.stdout)
    doc = yaml.load(text, Loader=UniqueKeyLoader)  # raises on a second labelSelector
    assert doc["spec"]["template"]["spec"]["topologySpreadConstraints"][1] == WITH_OWN


def test_unique_key_loader_catches_duplicates():
    with pytest.raises(yaml.constructor.ConstructorError, match="labelSelector"):
        yaml.load("- labelSelector: {a: 1}\n  maxSkew: 1\n  labelSelector: {b: 2}\n",
                  Loader=UniqueKeyLoader)


def test_topology_spread_needs_its_required_fields():
    r = render(extra=("--set-json", 'kafka.topologySpreadConstraints=[{"maxSkew": 1}]'))
    assert r.rc != 0 and "'topologyKey', 'whenUnsatisfiable'" in r.stderr, r.stderr


# --- an odd number of voters ------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 4])
def test_even_broker_count_is_refused(n):
    r = render(sets=(f"kafka.replicaCount={n}",))
    assert r.rc != 0, f"kafka.replicaCount={n} rendered"
    assert "kafka.replicaCount (replicaCount in the kafka subchart)" in r.stderr, r.stderr
    assert "odd" in r.stderr


@pytest.mark.parametrize("n", [1, 3, 5])
def test_odd_broker_count_renders(n):
    r = render(sets=(f"kafka.replicaCount={n}",)).ok()
    assert r.get("StatefulSet", STS)["spec"]["replicas"] == n


def test_even_count_is_refused_in_the_standalone_subchart():
    r = render(sets=("replicaCount=2",), chart=str(KAFKA))
    assert r.rc != 0 and "replicaCount in the kafka subchart" in r.stderr, r.stderr


# --- no change of the voter count under a running Kafka -----------------------------------
# `lookup` returns nothing under `helm template` / client dry-run, so these render a copy of the
# subchart whose one lookup of the StatefulSet is replaced by a literal object from values.

LOOKUP = 'lookup "apps/v1" "StatefulSet" (include "kafka.namespace" .) (include "kafka.fullname" .)'


def existing_sts(replicas: int, voters: int | None) -> dict:
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    if voters is not None:
        env.append({"name": "KAFKA_REPLICAS", "value": str(voters)})
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": STS, "namespace": NAMESPACE},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "kafka", "image": "apache/kafka:4.1.0", "env": env}]}}}}


@pytest.fixture(scope="module")
def chart_with_fake_lookup(tmp_path_factory):
    dst = tmp_path_factory.mktemp("kafka-lookup") / "kafka"
    shutil.copytree(KAFKA, dst)
    (dst / "values.schema.json").unlink()  # the fake value is not a real key
    hits = [p for p in (dst / "templates").iterdir() if LOOKUP in p.read_text()]
    assert len(hits) == 1, f"the subchart no longer looks up its StatefulSet as `{LOOKUP}`"
    p = hits[0]
    assert p.read_text().count(LOOKUP) == 1
    p.write_text(p.read_text().replace(LOOKUP, "(.Values.fakeExisting | default dict)"))
    return dst


def upgrade_render(chart, replicas: int, existing: dict | None):
    values = {"replicaCount": replicas, "fakeExisting": existing or {}}
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]
    f = chart.parent / f"values-{digest}.yaml"
    f.write_text(yaml.safe_dump(values))
    return run_helm("template", RELEASE, str(chart), "--namespace", NAMESPACE, "-f", str(f))


@pytest.mark.parametrize("replicas, existing", [
    (3, None),                       # first install
    (3, existing_sts(3, 3)),         # an upgrade that keeps the count
    (3, existing_sts(0, 3)),         # scaled to 0 for maintenance: the voters are still 3
    (1, existing_sts(1, None)),      # no KAFKA_REPLICAS: spec.replicas is the count
], ids=["install", "same-count", "scaled-to-zero", "no-env-same"])
def test_upgrade_keeping_the_voter_count_renders(chart_with_fake_lookup, replicas, existing):
    proc = upgrade_render(chart_with_fake_lookup, replicas, existing)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("replicas, existing, running", [
    (3, existing_sts(1, 1), 1),
    (1, existing_sts(3, 3), 3),
    (3, existing_sts(1, None), 1),
], ids=["1-to-3", "3-to-1", "no-env-1-to-3"])
def test_upgrade_changing_the_voter_count_is_refused(chart_with_fake_lookup, replicas, existing,
                                                     running):
    proc = upgrade_render(chart_with_fake_lookup, replicas, existing)
    assert proc.returncode != 0, f"{running} -> {replicas} voters rendered"
    err = " ".join(proc.stderr.split())
    assert f"kafka.replicaCount (replicaCount in the kafka subchart) is {replicas}" in err, err
    assert f"StatefulSet {NAMESPACE}/{STS} has {running} KRaft voters" in err
    assert "controller.quorum.voters" in err and f"Keep {running}" in err
    assert "new release" in err and f"data-{STS}-" in err
