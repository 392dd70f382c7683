"""The HTTPRoute and the Ingress route every public path of the API, and never /metrics.

The API's paths come from the Flask app's url_map (create_app), so a new endpoint that the
chart does not route fails here. Paths are matched with the Gateway API's PathPrefix/Exact and
the Ingress's Prefix/Exact semantics (element-wise prefixes, a trailing slash ignored).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path

import jsonschema
import pytest

from .conftest import CHART, CI_DIR, NAMESPACE, RELEASE, ROOT, render, render_case, run_helm

pytestmark = pytest.mark.chart

# Served by the API but not public: Prometheus scrapes the pods (networkPolicy.metricsFrom).
INTERNAL = {"/metrics"}
SCHEMA = ROOT / "tests" / "schemas" / "gateway-api-v1.2.1-httproute-v1.json"


def _prefix_matches(prefix: str, path: str) -> bool:
    """Element-wise prefix, trailing slash ignored: /v1 matches /v1, /v1/, /v1/x; not /v1x."""
    want = [e for e in prefix.split("/") if e]
    got = [e for e in path.split("/") if e]
    return got[:len(want)] == want


def gateway_match(match: dict, path: str) -> bool:
    p = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind, value = p.get("type", "PathPrefix"), p.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":
        return _prefix_matches(value, path)
    raise AssertionError(f"the chart routes by {kind}: this matcher knows Exact and PathPrefix")


def ingress_match(rule_path: dict, path: str) -> bool:
    kind, value = rule_path["pathType"], rule_path["path"]
    if kind == "Exact":
        return path == value
    if kind == "Prefix":
        return _prefix_matches(value, path)
    raise AssertionError(f"pathType {kind}: its meaning is up to the controller")


@pytest.mark.parametrize("kind,value,path,expected", [
    ("PathPrefix", "/v1", "/v1", True), ("PathPrefix", "/v1", "/v1/", True),
    ("PathPrefix", "/v1", "/v1/jobs/x", True), ("PathPrefix", "/v1", "/v1x", False),
    ("PathPrefix", "/v1/", "/v1", True), ("PathPrefix", "/", "/metrics", True),
    ("Exact", "/", "/", True), ("Exact", "/", "/metrics", False),
    ("Exact", "/feedback", "/feedback/", False), ("Exact", "/readyz", "/readyz", True),
])
def test_matchers(kind, value, path, expected):
    assert gateway_match({"path": {"type": kind, "value": value}}, path) is expected
    ingress_kind = "Prefix" if kind == "PathPrefix" else kind
    assert ingress_match({"pathType": ingress_kind, "path": value}, path) is expected


@functools.cache
def api_paths() -> tuple[frozenset[str], frozenset[str]]:
    """(public, internal) sample paths, one per url_map rule (converters filled in)."""
    from mlapi.api import create_app
    from mlapi.config import Settings

    app = create_app(Settings.from_env({}))
    public, internal = set(), set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            # Flask's default static route; the API ships no static folder, so it only 404s.
            assert not Path(app.static_folder).exists(), "static files: route /static"
            continue
        sample = re.sub(r"<[^>]+>", "x", rule.rule)
        (internal if rule.rule in INTERNAL else public).add(sample)
    assert internal == INTERNAL, "the API no longer serves /metrics: update INTERNAL"
    assert {"/", "/v1/predict", "/openapi.json"} <= public
    return frozenset(public), frozenset(internal)


def _route(r):
    (route,) = r.of_kind("HTTPRoute")
    return route


def _ingress(r):
    (ing,) = r.of_kind("Ingress")
    return ing


def _check(matches: list, matcher, where: str, *, every_public: bool = True):
    public, internal = api_paths()
    for path in internal | {p + "/" for p in internal}:
        assert not any(matcher(m, path) for m in matches), f"{where} routes {path}"
    if every_public:
        missed = sorted(p for p in public if not any(matcher(m, p) for m in matches))
        assert not missed, f"{where} does not route {missed}"


def test_httproute_routes_the_api_and_not_metrics():
    route = _route(render_case("with-gateway-values.yaml").ok())
    matches = [m for rule in route["spec"]["rules"] for m in rule["matches"]]
    _check(matches, gateway_match, "the HTTPRoute")


INGRESS_RENDERS = {
    "hosts-and-tls": ("with-ingress-values.yaml", ()),
    "single-host": ("defaults", ("ingress.enabled=true", "ingress.host=sentiment.example.com",
                                 "ingress.tlsSecretName=sentiment-tls",
                                 "networkPolicy.apiFrom[0].namespaceSelector.matchLabels"
                                 ".kubernetes\\.io/metadata\\.name=traefik")),
}


@pytest.mark.parametrize("name", INGRESS_RENDERS)
def test_ingress_routes_the_api_and_not_metrics(name):
    case, sets = INGRESS_RENDERS[name]
    ing = _ingress(render_case(case, sets).ok())
    for rule in ing["spec"]["rules"]:
        host = rule.get("host", "*")
        paths = rule["http"]["paths"]
        _check(paths, ingress_match, f"the Ingress's host {host}",
               every_public=not host.startswith("api."))


def test_ingress_hosts_paths_and_tls():
    """Several hosts, one with its own paths, and their TLS; the single host keeps working."""
    ing = _ingress(render_case("with-ingress-values.yaml").ok())
    rules = {r["host"]: [(p["path"], p["pathType"]) for p in r["http"]["paths"]]
             for r in ing["spec"]["rules"]}
    assert set(rules) == {"sentiment.example.com", "api.example.com"}
    assert rules["api.example.com"] == [("/v1", "Prefix")]
    assert ing["spec"]["tls"] == [{"secretName": "sentiment-tls",
                                   "hosts": ["sentiment.example.com", "api.example.com"]}]
    single = _ingress(render_case("defaults", INGRESS_RENDERS["single-host"][1]).ok())
    assert [r["host"] for r in single["spec"]["rules"]] == ["sentiment.example.com"]
    assert single["spec"]["tls"] == [{"secretName": "sentiment-tls",
                                      "hosts": ["sentiment.example.com"]}]
    for rule in ing["spec"]["rules"] + single["spec"]["rules"]:
        for p in rule["http"]["paths"]:
            assert p["backend"]["service"]["port"] == {"name": "http"}


@pytest.mark.parametrize("sets,needles", [
    (("ingress.hosts[0].host=a.example.com", "ingress.hosts[0].paths[0].path=/",
      "ingress.hosts[0].paths[0].pathType=Prefix"), ["ingress.hosts[0].paths[0]", "/metrics"]),
    (("ingress.hosts[0].host=a.example.com", "ingress.hosts[0].paths[0].path=/metrics/",
      "ingress.hosts[0].paths[0].pathType=Exact"), ["ingress.hosts[0].paths[0]", "/metrics"]),
    (("ingress.hosts[0].host=a.example.com", "ingress.host=b.example.com"),
     ["ingress.host", "ingress.hosts"]),
    (("ingress.tls[0].secretName=t", "ingress.tlsSecretName=t", "ingress.host=b.example.com"),
     ["ingress.tlsSecretName", "ingress.tls"]),
], ids=["prefix-root", "exact-metrics", "host-and-hosts", "tls-and-tlsSecretName"])
def test_ingress_values_that_fail(sets, needles):
    api_from = "networkPolicy.apiFrom[0].namespaceSelector.matchLabels.team=edge"
    r = render((), ("ingress.enabled=true", api_from, *sets))
    assert r.rc != 0, "the render should fail"
    for n in needles:
        assert n in r.stderr, f"{n!r} not named in:\n{r.stderr}"


def test_ingress_notes_url_is_https_on_the_first_host():
    proc = render_notes(("-f", str(CI_DIR / "with-ingress-values.yaml")))
    assert "export MLAPI_URL=https://sentiment.example.com\n" in proc


def render_notes(args: tuple[str, ...]) -> str:
    proc = run_helm("install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("\nNOTES:\n", 1)[1]


# ---- The HTTPRoute against the Gateway API's own schema (v1.2.1, standard channel).

@functools.cache
def _schema() -> dict:
    return json.loads(SCHEMA.read_text())


def _unknown_fields(obj, schema, path="") -> list[str]:
    """Fields the API server's strict field validation would reject (not in `properties`)."""
    out = []
    if isinstance(obj, dict) and "properties" in schema and \
            not schema.get("x-kubernetes-preserve-unknown-fields"):
        for k, v in obj.items():
            if k not in schema["properties"]:
                out.append(f"{path}.{k}")
            else:
                out += _unknown_fields(v, schema["properties"][k], f"{path}.{k}")
    elif isinstance(obj, list) and "items" in schema:
        for i, v in enumerate(obj):
            out += _unknown_fields(v, schema["items"], f"{path}[{i}]")
    return out


@pytest.mark.parametrize("sets", [(), ("httpRoute.timeouts.request=", "httpRoute.timeouts."
                                       "backendRequest=")], ids=["timeouts", "no-timeouts"])
def test_httproute_matches_the_gateway_api_schema(sets):
    route = copy.deepcopy(_route(render_case("with-gateway-values.yaml", sets).ok()))
    schema = _schema()
    jsonschema.validate(route, schema)
    metadata = route.pop("metadata")
    assert not _unknown_fields(route, schema)
    assert set(metadata) <= {"name", "namespace", "labels", "annotations"}
    rules = route["spec"]["rules"]
    # CEL rules of the CRD that jsonschema does not run:
    assert sum(len(r.get("matches") or []) for r in rules) <= 128
    for rule in rules:
        for m in rule["matches"]:
            value = m["path"]["value"]
            assert value.startswith("/") and "//" not in value and "/./" not in value
    timeouts = [r.get("timeouts") for r in rules]
    if sets:
        assert timeouts == [None]
    else:
        assert timeouts == [{"request": "10s", "backendRequest": "8s"}]


def test_httproute_timeouts_are_durations_in_the_values_schema():
    r = render_case("with-gateway-values.yaml", ("httpRoute.timeouts.request=10 seconds",))
    assert r.rc != 0 and "timeouts" in r.stderr
