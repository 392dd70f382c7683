"""OpenTelemetry: otel.endpoint puts the standard OTEL_* variables on every app container (and
nothing anywhere while it is empty), NetworkPolicies open the collector's port, and the values
that cannot work fail the render or the schema (ci/with-otel-values.yaml, templates/_otel.tpl)."""

from __future__ import annotations

import functools
import json
import re
import subprocess

import pytest

from .conftest import (
    CASES,
    CHART,
    CI_DIR,
    NAMESPACE,
    RELEASE,
    ROOT,
    dig,
    effective_values,
    pod_templates,
    render,
    render_case,
    run_helm,
)
from .netpol import Cluster, External, Pod, Port, pods_from_templates

pytestmark = pytest.mark.chart

CASE = "with-otel-values.yaml"
ENDPOINT = "http://otel-collector.observability.svc:4318"
CRONJOB = ("feedback.retrain.mode=cronjob", "feedback.database.url=postgresql://db/mlapi")
HEADERS = ("otel.headersSecret.name=otel-headers", "otel.headersSecret.key=headers")  # as CASE
NO_HEADERS = ("otel.headersSecret.name=", "otel.headersSecret.key=")
# (pod template id, container) -> the service name it must report.
SIDECAR_CONTAINERS = {
    ("Deployment/mlapi-api", "api"): "mlapi-api",
    ("Deployment/mlapi-worker", "worker"): "mlapi-worker",
    ("Deployment/mlapi-feedback", "feedback"): "mlapi-feedback",
    ("Deployment/mlapi-feedback", "retrain"): "mlapi-retrain",
}
CRONJOB_CONTAINERS = {
    **{k: v for k, v in SIDECAR_CONTAINERS.items() if k[1] != "retrain"},
    ("CronJob/mlapi-retrain", "retrain"): "mlapi-retrain",
}
# Where each container's pods come from, as OTEL_RESOURCE_ATTRIBUTES names it.
OWNERS = {
    "Deployment/mlapi-api": {"k8s.deployment.name": "mlapi-api"},
    "Deployment/mlapi-worker": {"k8s.deployment.name": "mlapi-worker"},
    "Deployment/mlapi-feedback": {"k8s.deployment.name": "mlapi-feedback"},
    "CronJob/mlapi-retrain": {"k8s.cronjob.name": "mlapi-retrain"},
}
DOWNWARD = {"metadata.name": "mlapi-api-7d9f8-x2x4q", "metadata.uid": "0b7c4a5e-uid",
            "spec.nodeName": "node-1"}


def _containers(r):
    """(pod template, container) of every container of every pod template, init ones too."""
    return [(pt, c) for pt in pod_templates(r.docs) for c in pt.all_containers]


def _env(container) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env") or []}


def _otel_containers(r) -> dict[tuple[str, str], dict]:
    """(pod template id, container) -> its OTEL_* env entries, for containers that have any."""
    out = {}
    for pt, c in _containers(r):
        otel = {n: e for n, e in _env(c).items() if n.startswith("OTEL_")}
        if otel:
            out[(pt.id, c["name"])] = otel
    return out


def _kubelet_expand(value: str, defined: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion of an env value: a variable defined above it is replaced,
    `$$` is a literal `$`, anything else stays as written."""
    def one(m):
        if m.group(0) == "$$":
            return "$"
        return defined.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, value)


def _process_env(container) -> dict[str, str]:
    """The environment the container's process sees: downward-API fields filled in from DOWNWARD,
    `$(VAR)` expanded in order; Secret and ConfigMap references are left out."""
    env: dict[str, str] = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = _kubelet_expand(e["value"], env)
        elif "fieldRef" in (e.get("valueFrom") or {}):
            env[e["name"]] = DOWNWARD[e["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def _sdk_resource(monkeypatch, env: dict[str, str]) -> dict:
    """The resource attributes the OpenTelemetry SDK makes of a process environment."""
    from opentelemetry.sdk.resources import Resource

    for name in ("OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"):
        if name in env:
            monkeypatch.setenv(name, env[name])
        else:
            monkeypatch.delenv(name, raising=False)
    return dict(Resource.create().attributes)


# ---- off by default


@pytest.mark.parametrize("case", [c for c in CASES if not dig(effective_values(c), "otel.endpoint")])
def test_no_otel_variable_anywhere_without_an_endpoint(case):
    r = render_case(case).ok()
    assert r.of_kind("Deployment"), "nothing rendered"
    assert not _otel_containers(r)
    assert "OTEL_" not in r.stdout
    rules = [rule for p in r.of_kind("NetworkPolicy") for rule in p["spec"].get("egress") or []]
    assert rules
    assert not [rule for rule in rules if rule.get("to") == [{"namespaceSelector": {}}]
                or 4318 in [port.get("port") for port in rule.get("ports") or []]]


def test_values_without_an_endpoint_change_nothing():
    """headersSecret, attributes and peers staged while otel.endpoint is empty (tracing turned
    off with `--set otel.endpoint=`) render exactly the defaults."""
    staged = (*HEADERS, "otel.resourceAttributes.team=ml",
              "otel.networkPolicy.to[0].namespaceSelector.matchLabels.team=obs")

    def docs(r):  # Secrets aside: the admin token and the Valkey password are random
        return [d for d in r.ok().docs if d["kind"] != "Secret"]
    off = docs(render_case(CASE, ("otel.endpoint=", *staged)))
    assert off == docs(render_case("defaults"))
    assert off != docs(render_case(CASE)), "the ci file does turn tracing on"


# ---- on: the variables, per container


@pytest.mark.parametrize("sets, expected", [((), SIDECAR_CONTAINERS), (CRONJOB, CRONJOB_CONTAINERS)],
                         ids=["retrain-sidecar", "retrain-cronjob"])
def test_every_app_container_and_only_those_gets_the_variables(sets, expected):
    r = render_case(CASE, sets).ok()
    found = _otel_containers(r)
    assert set(found) == set(expected), "the helm test pod, Valkey and Kafka get none"
    for (pid, name), otel in found.items():
        assert otel["OTEL_SERVICE_NAME"]["value"] == expected[(pid, name)]
        assert otel["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == ENDPOINT
        assert otel["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "http/protobuf"
        assert otel["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
        assert otel["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.1"
        assert otel["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"] == \
            {"name": "otel-headers", "key": "headers"}
    kinds = {pt.owner_kind for pt in pod_templates(r.docs)}
    assert "StatefulSet" in kinds and any(pt.is_helm_test for pt in pod_templates(r.docs)), \
        "Valkey, Kafka and the helm test pod are rendered, without the variables"


@pytest.mark.parametrize("sets", [(), CRONJOB], ids=["retrain-sidecar", "retrain-cronjob"])
def test_resource_attributes_reach_the_sdk_expanded(sets, monkeypatch):
    """Each `$(VAR)` is defined above its use (else the kubelet leaves it as written), and the
    SDK reads the namespace, pod, container, workload and the ci file's attributes."""
    r = render_case(CASE, sets).ok()
    from mlapi import tracing

    seen = 0
    for pt, c in _containers(r):
        names = [e["name"] for e in c.get("env") or []]
        if "OTEL_RESOURCE_ATTRIBUTES" not in names:
            continue
        seen += 1
        raw = _env(c)["OTEL_RESOURCE_ATTRIBUTES"]["value"]
        above = names[:names.index("OTEL_RESOURCE_ATTRIBUTES")]
        for var in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", raw):
            assert var in above, f"{pt.id}/{c['name']}: $({var}) is not defined above"
        env = _process_env(c)
        assert tracing.wanted(env), f"{pt.id}/{c['name']}: the app would not turn tracing on"
        attrs = _sdk_resource(monkeypatch, env)
        pod = DOWNWARD["metadata.name"]
        want = {
            "service.name": f"mlapi-{c['name']}",
            "service.namespace": NAMESPACE, "k8s.namespace.name": NAMESPACE,
            "k8s.pod.name": pod, "k8s.pod.uid": DOWNWARD["metadata.uid"],
            "k8s.node.name": DOWNWARD["spec.nodeName"], "k8s.container.name": c["name"],
            "service.instance.id": f"{NAMESPACE}.{pod}.{c['name']}",
            "deployment.environment.name": "production", "team": "ml platform",
            **OWNERS[pt.id],  # the retrain sidecar's: the feedback Deployment
        }
        assert {k: v for k, v in attrs.items() if k in want} == want, f"{pt.id}/{c['name']}"
        assert not set(attrs) - set(want) - {"telemetry.sdk.language", "telemetry.sdk.name",
                                             "telemetry.sdk.version"}, attrs
    assert seen == 4


def test_resource_attribute_values_are_encoded_for_the_sdk_and_the_kubelet(monkeypatch):
    """A value with the format's separators, a `$(...)` and a `%` comes out as written."""
    tricky = 'a, b=c; "d" \\ $(OTEL_RESOURCE_ATTRIBUTES_POD_NAME) 100% $$ é'
    r = render((str(CI_DIR / CASE),), (),
               ("--set-json", f"otel.resourceAttributes={json.dumps({'tricky': tricky})}")).ok()
    (api,) = [c for pt, c in _containers(r) if pt.id == "Deployment/mlapi-api"]
    attrs = _sdk_resource(monkeypatch, _process_env(api))
    assert attrs["tricky"] == tricky
    assert attrs["k8s.pod.name"] == DOWNWARD["metadata.name"], "the chart's own still expand"


def test_the_attributes_given_win_over_the_charts(monkeypatch):
    r = render_case(CASE, ("otel.resourceAttributes.service\\.namespace=sentiment",)).ok()
    (api,) = [c for pt, c in _containers(r) if pt.id == "Deployment/mlapi-api"]
    env = _process_env(api)
    assert env["OTEL_RESOURCE_ATTRIBUTES"].count("service.namespace=") == 1
    assert _sdk_resource(monkeypatch, env)["service.namespace"] == "sentiment"


@pytest.mark.parametrize("sets, sampler, arg", [
    (("otel.sampler=",), None, None),
    (("otel.sampler=always_on",), "always_on", None),
    (("otel.sampler=traceidratio", "otel.samplerArg=0.25"), "traceidratio", "0.25"),
    (("otel.samplerArg=",), "parentbased_traceidratio", None),
    (("otel.samplerArg=0",), "parentbased_traceidratio", "0"),
], ids=["sdk-default", "no-arg-sampler", "ratio", "ratio-without-arg", "ratio-zero"])
def test_sampler_variables(sets, sampler, arg):
    otel = _otel_containers(render_case(CASE, sets).ok())[("Deployment/mlapi-worker", "worker")]
    assert otel.get("OTEL_TRACES_SAMPLER", {}).get("value") == sampler
    assert otel.get("OTEL_TRACES_SAMPLER_ARG", {}).get("value") == arg


@pytest.mark.parametrize("sets", [(), CRONJOB], ids=["retrain-sidecar", "retrain-cronjob"])
def test_headers_come_from_the_secret_in_every_app_container(sets):
    r = render_case(CASE, (*sets, *HEADERS)).ok()
    found = _otel_containers(r)
    assert set(found) == set(CRONJOB_CONTAINERS if sets else SIDECAR_CONTAINERS)
    for where, otel in found.items():
        assert otel["OTEL_EXPORTER_OTLP_HEADERS"] == {
            "name": "OTEL_EXPORTER_OTLP_HEADERS",
            "valueFrom": {"secretKeyRef": {"name": "otel-headers", "key": "headers"}}}, where


KV = ROOT / ".venv" / "bin" / "kubernetes-validate"


def test_the_headers_render_validates_against_kubernetes(tmp_path):
    """The ci file leaves otel.headersSecret out (every Secret a ci file names must be listed in
    test_wiring.USER_SUPPLIED), so validate that render here."""
    path = tmp_path / "otel-headers.yaml"
    path.write_text(render_case(CASE, (*CRONJOB, *HEADERS)).ok().stdout)
    proc = subprocess.run([str(KV), "-k", "1.31.0", "--strict", str(path)],
                          capture_output=True, text=True, timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode == 0 and lines, "\n".join(lines)
    assert all(ln.startswith("INFO") and " passed for resource " in ln for ln in lines), \
        "\n".join(lines)


# ---- rollouts


def _pod_annotations(r) -> dict[str, dict]:
    return {pt.id: pt.metadata.get("annotations") or {} for pt in pod_templates(r.docs)}


def test_a_new_headers_secret_rolls_every_app_pod_and_only_with_tracing_on():
    on = _pod_annotations(render_case(CASE, HEADERS).ok())
    other = _pod_annotations(render_case(CASE, ("otel.headersSecret.name=other-headers",
                                                "otel.headersSecret.key=headers")).ok())
    without = _pod_annotations(render_case(CASE, NO_HEADERS).ok())
    for pid in ("Deployment/mlapi-api", "Deployment/mlapi-worker", "Deployment/mlapi-feedback"):
        assert on[pid]["checksum/secrets"] != other[pid]["checksum/secrets"], pid
        assert on[pid]["checksum/secrets"] != without[pid]["checksum/secrets"], pid
    defaults = _pod_annotations(render_case("defaults").ok())
    assert without == defaults, "tracing on without headers must not change the checksums"


def test_turning_tracing_on_rolls_the_app_pods_not_valkey_or_kafka():
    off, on = render_case("defaults").ok(), render_case("defaults", (f"otel.endpoint={ENDPOINT}",)).ok()
    for kind, name in (("Deployment", "mlapi-api"), ("Deployment", "mlapi-worker"),
                       ("Deployment", "mlapi-feedback")):
        assert off.get(kind, name)["spec"]["template"] != on.get(kind, name)["spec"]["template"]
    for sts in off.of_kind("StatefulSet"):
        assert on.get("StatefulSet", sts["metadata"]["name"]) == sts


# ---- NetworkPolicies

COLLECTOR = Pod("collector", "observability",
                {"app.kubernetes.io/name": "opentelemetry-collector"}, [Port(4318, "TCP", "otlp-http")])
LOOKALIKE = Pod("lookalike", "observability", {"app.kubernetes.io/name": "grafana"})
ELSEWHERE = Pod("elsewhere", "team-x", {"app.kubernetes.io/name": "opentelemetry-collector"})
INTERNET = External("93.184.216.34")
APP = ["api", "worker", "feedback"]


@functools.cache
def world(case: str, sets: tuple[str, ...] = ()) -> tuple[Cluster, dict[str, Pod]]:
    r = render_case(case, sets).ok()
    templates = pod_templates(r.docs)
    modelled = pods_from_templates(templates, NAMESPACE)
    pods = {"test" if pt.is_helm_test else pt.labels["app.kubernetes.io/component"]: modelled[pt.id]
            for pt in templates}
    return Cluster(r.of_kind("NetworkPolicy"), NAMESPACE), pods


@pytest.mark.parametrize("sets", [(), CRONJOB], ids=["retrain-sidecar", "retrain-cronjob"])
def test_the_peers_given_may_receive_spans_on_the_endpoints_port(sets):
    cluster, pods = world(CASE, sets)
    senders = APP + (["retrain"] if sets else [])
    for role in senders:
        assert cluster.allowed(pods[role], COLLECTOR, 4318), role
        assert not cluster.allowed(pods[role], COLLECTOR, 4317), role
        assert not cluster.allowed(pods[role], LOOKALIKE, 4318), f"{role}: not the peer given"
        assert not cluster.allowed(pods[role], ELSEWHERE, 4318), f"{role}: another namespace"
        assert not cluster.allowed(pods[role], INTERNET, 4318), role
    for role in ("redis", "kafka", "test"):
        assert not cluster.allowed(pods[role], COLLECTOR, 4318), f"{role} sends no spans"


def test_without_peers_any_namespace_on_the_endpoints_port_only():
    cluster, pods = world("defaults", (f"otel.endpoint={ENDPOINT}",))
    for role in APP:
        for dst in (COLLECTOR, LOOKALIKE, ELSEWHERE):
            assert cluster.allowed(pods[role], dst, 4318), (role, dst.name)
            assert not cluster.allowed(pods[role], dst, 4317), (role, dst.name)
        assert not cluster.allowed(pods[role], INTERNET, 4318), "pods, not the internet"
    assert not cluster.allowed(pods["kafka"], COLLECTOR, 4318)


def test_no_collector_egress_without_an_endpoint():
    cluster, pods = world("defaults")
    for role in APP:
        assert not cluster.allowed(pods[role], COLLECTOR, 4318), role


def test_an_external_collector_needs_an_ipblock_peer():
    sets = ("otel.endpoint=https://otlp.example.com", "otel.networkPolicy.to[0].ipBlock.cidr=203.0.113.0/24")
    cluster, pods = world("defaults", sets)
    assert cluster.allowed(pods["api"], External("203.0.113.7"), 443)
    assert not cluster.allowed(pods["api"], External("203.0.113.7"), 4318)
    assert not cluster.allowed(pods["api"], INTERNET, 443)


@pytest.mark.parametrize("endpoint, ports", [
    (ENDPOINT, [4318]),
    ("http://otel-collector.observability.svc", [4318]),
    ("https://otel-collector.observability.svc", [443]),
    ("https://otlp.example.com:4443/otlp", [4443]),
    ("http://[fd00::1]:55681", [55681]),
])
def test_the_policy_port_comes_from_the_endpoint(endpoint, ports):
    r = render_case("defaults", (f"otel.endpoint={endpoint}",)).ok()
    policies = [p for p in r.of_kind("NetworkPolicy")
                if p["metadata"]["name"] in {"mlapi-api", "mlapi-worker", "mlapi-feedback"}]
    assert len(policies) == 3
    for p in policies:
        collector = [rule for rule in p["spec"]["egress"]
                     if rule.get("to") == [{"namespaceSelector": {}}]]
        assert len(collector) == 1, p["metadata"]["name"]
        assert [x["port"] for x in collector[0]["ports"]] == ports


def test_the_policy_ports_can_be_given():
    cluster, pods = world(CASE, ("otel.networkPolicy.ports={4317,4318}",))
    assert cluster.allowed(pods["worker"], COLLECTOR, 4317)
    assert cluster.allowed(pods["worker"], COLLECTOR, 4318)
    assert not cluster.allowed(pods["worker"], COLLECTOR, 4319)


def test_no_policy_when_network_policies_are_off():
    r = render_case(CASE, ("global.networkPolicy.enabled=false",)).ok()
    assert not r.of_kind("NetworkPolicy")
    assert _otel_containers(r), "the variables stay"


# ---- what fails

FAILS = [
    ("headers-name-without-key", ("otel.headersSecret.name=otel-headers",),
     ["otel.headersSecret.name", "otel.headersSecret.key"]),
    ("headers-key-without-name", ("otel.headersSecret.key=headers",),
     ["otel.headersSecret.key", "otel.headersSecret.name"]),
    ("traces-path-in-endpoint", ("otel.endpoint=http://c.observability.svc:4318/v1/traces",),
     ["otel.endpoint", "/v1/traces"]),
    ("port-out-of-range", ("otel.endpoint=http://c.observability.svc:70000",),
     ["otel.endpoint", "70000"]),
]


@pytest.mark.parametrize("sets, needles", [f[1:] for f in FAILS], ids=[f[0] for f in FAILS])
def test_the_render_fails_naming_the_values(sets, needles):
    r = render((), sets)
    assert r.rc != 0, "the render should fail"
    for n in needles:
        assert n in r.stderr, f"{n!r} not named in:\n{r.stderr}"


@pytest.mark.parametrize("sets", [
    (f"otel.endpoint={ENDPOINT}", *HEADERS),
    ("otel.endpoint=https://otlp.example.com/otlp",),
    ("otel.endpoint=http://c.observability.svc:65535",),
], ids=["headers-complete", "https-with-a-base-path", "highest-port"])
def test_valid_neighbours_render(sets):
    render((), sets).ok()


SCHEMA = [
    ("endpoint-without-scheme", ("--set", "otel.endpoint=otel-collector:4318"), ["/otel/endpoint"]),
    ("endpoint-grpc-scheme", ("--set", "otel.endpoint=grpc://otel-collector:4317"), ["/otel/endpoint"]),
    ("endpoint-with-credentials", ("--set", "otel.endpoint=http://user:pw@otel:4318"),
     ["/otel/endpoint"]),
    ("unknown-sampler", ("--set", "otel.sampler=sometimes"), ["/otel/sampler"]),
    ("ratio-above-one", ("--set-string", "otel.samplerArg=1.5"), ["/otel/samplerArg"]),
    ("bad-attribute-key", ("--set-json", 'otel.resourceAttributes={"a,b": "c"}'), ["'a,b'"]),
    ("unknown-in-headers-secret", ("--set", "otel.headersSecret.bogus=1"),
     ["bogus", "/otel/headersSecret"]),
    ("port-zero", ("--set", "otel.networkPolicy.ports[0]=0"), ["/otel/networkPolicy/ports"]),
    ("unknown-in-otel", ("--set", "otel.bogus=1"), ["bogus", "/otel"]),
]


@pytest.mark.parametrize("args, needles", [s[1:] for s in SCHEMA], ids=[s[0] for s in SCHEMA])
def test_the_schema_rejects(args, needles):
    proc = run_helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert proc.returncode != 0, "the schema should reject this"
    assert "schema" in proc.stderr, proc.stderr
    for n in needles:
        assert n in proc.stderr, f"{n!r} not named in:\n{proc.stderr}"
