"""A small evaluator of Kubernetes NetworkPolicy semantics, for rendered charts.

Model: pods (namespace, labels, declared container ports, optional IP) and external endpoints
(an IP outside the cluster). A connection src -> dst:port/protocol is allowed when
  * src's egress allows it: no policy in src's namespace selects src for Egress, or some
    egress rule of such a policy matches (dst, port); and
  * dst's ingress allows it: likewise for Ingress with src.
Rules: an absent or empty `to`/`from` matches every peer; an absent or empty `ports` every
port. A peer is an ipBlock (CIDR minus except, matched against an IP), or a podSelector
and/or namespaceSelector (podSelector alone: the policy's namespace; namespaceSelector alone:
every pod of the selected namespaces; both: the selected pods of the selected namespaces).
Ports match by number (with endPort ranges) or by name (the destination pod's named port),
and by protocol (default TCP). policyTypes defaults to Ingress, plus Egress when the policy
has an egress section.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Port:
    port: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict = field(default_factory=dict)
    ports: list[Port] = field(default_factory=list)
    ip: str | None = None


@dataclass
class External:
    ip: str

    @property
    def name(self) -> str:
        return self.ip


def namespace_labels(ns: str, extra: dict | None = None) -> dict:
    return {"kubernetes.io/metadata.name": ns, **(extra or {})}


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector; an empty one ({}) matches everything."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            raise ValueError(f"bad operator {op}")
    return True


class Cluster:
    def __init__(self, policies: list[dict], default_namespace: str,
                 namespaces: dict[str, dict] | None = None):
        self.policies = []
        for p in policies:
            assert p["kind"] == "NetworkPolicy", p["kind"]
            ns = p["metadata"].get("namespace") or default_namespace
            self.policies.append((ns, p["spec"]))
        self.namespaces = namespaces or {}

    def ns_labels(self, ns: str) -> dict:
        return self.namespaces.get(ns) or namespace_labels(ns)

    @staticmethod
    def _types(spec: dict) -> set[str]:
        if spec.get("policyTypes"):
            return set(spec["policyTypes"])
        return {"Ingress", "Egress"} if "egress" in spec else {"Ingress"}

    def _selecting(self, pod: Pod, direction: str) -> list[tuple[str, dict]]:
        return [(ns, spec) for ns, spec in self.policies
                if ns == pod.namespace and direction in self._types(spec)
                and selector_matches(spec.get("podSelector"), pod.labels)]

    def _peer_matches(self, peer: dict, policy_ns: str, other) -> bool:
        if "ipBlock" in peer:
            if other.ip is None:
                return False
            ip = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            if ip not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
        if "podSelector" not in peer and "namespaceSelector" not in peer:
            raise ValueError(f"empty peer {peer}")
        if isinstance(other, External):
            return False
        if "namespaceSelector" in peer:
            if not selector_matches(peer["namespaceSelector"], self.ns_labels(other.namespace)):
                return False
        elif other.namespace != policy_ns:
            return False
        return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)

    @staticmethod
    def _port_matches(rule_ports, dst, port: int, protocol: str) -> bool:
        if not rule_ports:
            return True
        for rp in rule_ports:
            if rp.get("protocol", "TCP") != protocol:
                continue
            want = rp.get("port")
            if want is None:
                return True
            if isinstance(want, str):
                if isinstance(dst, Pod) and any(
                        p.name == want and p.port == port and p.protocol == protocol
                        for p in dst.ports):
                    return True
                continue
            if want <= port <= rp.get("endPort", want):
                return True
        return False

    def _direction_allows(self, pod: Pod, direction: str, other, dst, port, protocol) -> bool:
        selecting = self._selecting(pod, direction)
        if not selecting:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for ns, spec in selecting:
            for rule in spec.get(key) or []:
                peers = rule.get(peers_key) or []
                if peers and not any(self._peer_matches(p, ns, other) for p in peers):
                    continue
                if self._port_matches(rule.get("ports"), dst, port, protocol):
                    return True
        return False

    def allowed(self, src, dst, port: int, protocol: str = "TCP") -> bool:
        if isinstance(src, Pod) and not self._direction_allows(src, "Egress", dst, dst, port,
                                                               protocol):
            return False
        if isinstance(dst, Pod) and not self._direction_allows(dst, "Ingress", src, dst, port,
                                                               protocol):
            return False
        return True


def pods_from_templates(templates, namespace: str) -> dict[str, Pod]:
    """One Pod per rendered pod template, named after its owner (kind/name)."""
    out = {}
    for pt in templates:
        ports = [Port(p["containerPort"], p.get("protocol", "TCP"), p.get("name"))
                 for p in pt.ports()]
        out[pt.id] = Pod(pt.id, namespace, dict(pt.labels), ports)
    return out
