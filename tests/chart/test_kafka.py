"""The bundled Kafka's scheduling: brokers kept apart, spread constraints."""

from __future__ import annotations

import json

import pytest
import yaml

from .conftest import RELEASE, render

pytestmark = pytest.mark.chart

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
