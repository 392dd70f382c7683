"""The NetworkPolicy evaluator (netpol.py) itself, on hand-written cases with known answers."""

from __future__ import annotations

import pytest

from .netpol import Cluster, External, Pod, Port, selector_matches

pytestmark = pytest.mark.chart


def np(spec, ns="app"):
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": ns}, "spec": spec}


WEB = Pod("web", "app", {"role": "web"}, [Port(8000, "TCP", "http"), Port(53, "UDP", "dns")])
DB = Pod("db", "app", {"role": "db"}, [Port(5432, "TCP", "pg")])
OTHER_NS_WEB = Pod("web2", "other", {"role": "web"})
MON = Pod("prom", "monitoring", {"app": "prometheus"})
NET = External("93.184.216.34")
INTERNAL = External("10.1.2.3")

DENY_ALL = np({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
DB_FROM_WEB = np({"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "web"}}}],
                               "ports": [{"port": 5432}]}]})
WEB_TO_DB_NAMED = np({"podSelector": {"matchLabels": {"role": "web"}}, "policyTypes": ["Egress"],
                      "egress": [{"to": [{"podSelector": {}}], "ports": [{"port": "pg"}]}]})
WEB_FROM_MON_AND = np({"podSelector": {"matchLabels": {"role": "web"}},
                       "ingress": [{"from": [{
                           "namespaceSelector": {"matchLabels": {
                               "kubernetes.io/metadata.name": "monitoring"}},
                           "podSelector": {"matchLabels": {"app": "prometheus"}}}],
                           "ports": [{"port": "http"}]}]})
WEB_FROM_NS_ONLY = np({"podSelector": {"matchLabels": {"role": "web"}},
                       "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                           "kubernetes.io/metadata.name": "monitoring"}}},
                           {"podSelector": {"matchLabels": {"app": "prometheus"}}}]}]})
WEB_TO_CIDR = np({"podSelector": {"matchLabels": {"role": "web"}}, "policyTypes": ["Egress"],
                  "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                                  "except": ["10.1.0.0/16"]}}],
                              "ports": [{"port": 6000, "endPort": 6010}]}]})
EGRESS_ONLY_SECTION = np({"podSelector": {"matchLabels": {"role": "web"}},
                          "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})
ALLOW_ALL_FROM = np({"podSelector": {"matchLabels": {"role": "db"}},
                     "ingress": [{"from": []}]})


CASES = [
    # id, policies, src, dst, port, protocol, expected
    ("no-policy-allows", [], WEB, DB, 5432, "TCP", True),
    ("default-deny-egress", [DENY_ALL], WEB, NET, 443, "TCP", False),
    ("default-deny-ingress", [DENY_ALL], MON, WEB, 8000, "TCP", False),
    ("other-namespace-unaffected", [DENY_ALL], OTHER_NS_WEB, MON, 80, "TCP", True),
    ("podSelector-same-ns", [DB_FROM_WEB], WEB, DB, 5432, "TCP", True),
    ("podSelector-wrong-port", [DB_FROM_WEB], WEB, DB, 5433, "TCP", False),
    ("podSelector-wrong-protocol", [DB_FROM_WEB], WEB, DB, 5432, "UDP", False),
    ("podSelector-not-other-ns", [DB_FROM_WEB], OTHER_NS_WEB, DB, 5432, "TCP", False),
    ("podSelector-wrong-labels", [DB_FROM_WEB], MON, DB, 5432, "TCP", False),
    ("union-of-policies", [DENY_ALL, DB_FROM_WEB, WEB_TO_DB_NAMED], WEB, DB, 5432, "TCP", True),
    ("egress-blocks-despite-ingress", [DENY_ALL, DB_FROM_WEB], WEB, DB, 5432, "TCP", False),
    ("named-port-matches-dst", [WEB_TO_DB_NAMED], WEB, DB, 5432, "TCP", True),
    ("named-port-other-number", [WEB_TO_DB_NAMED], WEB, DB, 5433, "TCP", False),
    ("named-port-not-external", [WEB_TO_DB_NAMED], WEB, INTERNAL, 5432, "TCP", False),
    ("ns-and-pod-selector", [WEB_FROM_MON_AND], MON, WEB, 8000, "TCP", True),
    ("ns-and-pod-selector-needs-both", [WEB_FROM_MON_AND], Pod("x", "monitoring"), WEB, 8000,
     "TCP", False),
    ("named-port-ingress", [WEB_FROM_MON_AND], MON, WEB, 9000, "TCP", False),
    ("ns-or-pod-peers-ns", [WEB_FROM_NS_ONLY], Pod("x", "monitoring"), WEB, 1, "TCP", True),
    ("ns-or-pod-peers-pod-same-ns", [WEB_FROM_NS_ONLY],
     Pod("p", "app", {"app": "prometheus"}), WEB, 1, "TCP", True),
    ("ns-or-pod-peers-pod-other-ns", [WEB_FROM_NS_ONLY],
     Pod("p", "elsewhere", {"app": "prometheus"}), WEB, 1, "TCP", False),
    ("ipblock-in-range", [WEB_TO_CIDR], WEB, External("10.2.3.4"), 6005, "TCP", True),
    ("ipblock-except", [WEB_TO_CIDR], WEB, INTERNAL, 6005, "TCP", False),
    ("ipblock-outside", [WEB_TO_CIDR], WEB, NET, 6005, "TCP", False),
    ("endport-outside", [WEB_TO_CIDR], WEB, External("10.2.3.4"), 6011, "TCP", False),
    ("ipblock-not-pods-without-ip", [WEB_TO_CIDR], WEB, DB, 6005, "TCP", False),
    ("egress-section-implies-egress-type", [EGRESS_ONLY_SECTION], WEB, NET, 443, "TCP", False),
    ("egress-rule-without-to", [EGRESS_ONLY_SECTION], WEB, NET, 53, "UDP", True),
    ("implied-ingress-type-denies", [EGRESS_ONLY_SECTION], MON, WEB, 8000, "TCP", False),
    ("empty-from-allows-all", [DENY_ALL, ALLOW_ALL_FROM], OTHER_NS_WEB, DB, 1, "TCP", True),
]


@pytest.mark.parametrize("policies,src,dst,port,protocol,expected",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_evaluator(policies, src, dst, port, protocol, expected):
    assert Cluster(policies, "app").allowed(src, dst, port, protocol) is expected


@pytest.mark.parametrize("selector,labels,expected", [
    ({}, {"a": "1"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"},
     True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"},
     False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False),
    ({"matchLabels": {"a": "1"},
      "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"}, False),
])
def test_selector(selector, labels, expected):
    assert selector_matches(selector, labels) is expected


def test_namespace_labels_can_be_given():
    cluster = Cluster([WEB_FROM_NS_ONLY], "app", {"monitoring": {"team": "obs"}})
    assert not cluster.allowed(Pod("x", "monitoring"), WEB, 1)
