"""helm lint, helm template, kubernetes-validate (1.31 and 1.37), CRD structure, helm package."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import pytest

from .conftest import (
    CASES,
    CHART,
    CI_DIR,
    CI_FILES,
    CRD_KINDS,
    NAMESPACE,
    ROOT,
    SUBCHARTS,
    dig,
    effective_values,
    render,
    render_case,
    run_helm,
)

pytestmark = pytest.mark.chart

KUBE_VERSIONS = ["1.31.0", "1.37.0"]
KV = ROOT / ".venv" / "bin" / "kubernetes-validate"


@pytest.mark.parametrize("values", [None, *CI_FILES])
def test_lint_strict_parent(values):
    args = ["lint", "--strict", str(CHART)]
    if values:
        args += ["-f", str(CI_DIR / values)]
    proc = run_helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout
    assert "[ERROR]" not in proc.stdout and "[WARNING]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("subchart", SUBCHARTS, ids=lambda p: p.name)
def test_lint_strict_subchart(subchart):
    proc = run_helm("lint", "--strict", str(subchart))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ERROR]" not in proc.stdout and "[WARNING]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("subchart", SUBCHARTS, ids=lambda p: p.name)
def test_subchart_renders_standalone(subchart):
    r = render(chart=str(subchart)).ok()
    assert {"StatefulSet", "Service", "NetworkPolicy"} <= {d["kind"] for d in r.docs}


def test_template_every_case(case):
    r = render_case(case).ok()
    kinds = {d["kind"] for d in r.docs}
    assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy", "ServiceAccount"} <= kinds
    for d in r.docs:
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), d


def test_every_object_is_in_the_release_namespace(case, rendered):
    """`helm template -n N | kubectl apply -f -` must put every object in N, not the context's;
    the one exception is the dashboard ConfigMap where metrics.dashboard.namespace names another
    (a Grafana sidecar that watches one namespace)."""
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
    dashboard_ns = dig(effective_values(case), "metrics.dashboard.namespace") or NAMESPACE

    def expected(d):
        if d["kind"] == "ConfigMap" and "mlapi.json" in (d.get("data") or {}):
            return dashboard_ns
        return NAMESPACE

    wrong = [f"{d['kind']}/{d['metadata']['name']}: {d['metadata'].get('namespace')!r}"
             for d in rendered.docs
             if d["kind"] not in cluster_scoped and d["metadata"].get("namespace") != expected(d)]
    assert not wrong, wrong


@pytest.fixture(scope="session")
def rendered_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("renders")
    files = {}
    for case in CASES:
        path = d / f"{case.removesuffix('.yaml')}.yaml"
        path.write_text(render_case(case).ok().stdout)
        files[case] = path
    return files


@functools.cache
def _kubernetes_validate(version: str, paths: tuple[str, ...]) -> subprocess.CompletedProcess:
    return subprocess.run([str(KV), "-k", version, "--strict", *paths],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_kubernetes_validate(rendered_files, case, version):
    proc = _kubernetes_validate(version, tuple(str(p) for p in rendered_files.values()))
    path = str(rendered_files[case])
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if f" {path} " in ln]
    errors = [ln for ln in lines if not ln.startswith(("INFO", "WARN"))]
    assert not errors, "\n".join(errors)
    warnings = [ln for ln in lines if ln.startswith("WARN")]
    for ln in warnings:
        m = re.search(r"schema for kind (\w+)", ln)
        assert m and m.group(1) in CRD_KINDS, f"unexpected warning: {ln}"
    docs = render_case(case).docs
    builtin = [d for d in docs if d["kind"] not in CRD_KINDS]
    passed = [ln for ln in lines if ln.startswith("INFO") and " passed for resource " in ln]
    assert len(passed) == len(builtin), "\n".join(lines)
    assert len(warnings) == len(docs) - len(builtin)


# ---- CRD kinds: kubernetes-validate has no schema for them, so check their structure here.

def _service_ports(r, name):
    svc = r.get("Service", name)
    assert svc is not None, f"Service {name} is not rendered"
    return svc["spec"]["ports"]


def test_httproute_structure():
    case = "with-gateway-values.yaml"
    r = render_case(case).ok()
    v = effective_values(case)
    (route,) = r.of_kind("HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    spec = route["spec"]
    assert spec["parentRefs"] == v["httpRoute"]["parentRefs"]
    assert all(p.get("name") for p in spec["parentRefs"])
    assert spec.get("hostnames") == v["httpRoute"]["hostnames"]
    assert spec["rules"]
    api_svc = [s for s in r.of_kind("Service")
               if s["spec"]["selector"].get("app.kubernetes.io/component") == "api"]
    assert len(api_svc) == 1
    for rule in spec["rules"]:
        assert rule["backendRefs"]
        for ref in rule["backendRefs"]:
            assert ref["name"] == api_svc[0]["metadata"]["name"]
            assert ref["port"] in {p["port"] for p in _service_ports(r, ref["name"])}
            assert ref["port"] == v["api"]["service"]["port"]


@pytest.mark.parametrize("case", ["defaults", "with-ingress-values.yaml"])
def test_no_httproute_unless_enabled(case):
    assert not render_case(case).ok().of_kind("HTTPRoute")


def test_scaledobject_structure():
    case = "with-keda-values.yaml"
    r = render_case(case).ok()
    v = effective_values(case)
    (so,) = r.of_kind("ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    target = so["spec"]["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    dep = r.get("Deployment", target["name"])
    assert dep is not None, f"scaleTargetRef {target['name']} is not a rendered Deployment"
    assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    assert "replicas" not in dep["spec"], "KEDA owns the replica count"
    assert so["spec"]["minReplicaCount"] == v["worker"]["autoscaling"]["minReplicas"]
    assert so["spec"]["maxReplicaCount"] == v["worker"]["autoscaling"]["maxReplicas"]
    assert so["spec"]["maxReplicaCount"] <= v["config"]["predictPartitions"]
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    # bootstrapServers: the bundled Kafka's FQDN (test_scaling.py checks it).
    assert meta["bootstrapServers"].endswith(":9092")
    # The group and topic the workers use (mlapi.config.Settings defaults).
    assert meta["consumerGroup"] == "workers"
    assert meta["topic"] == "mlapi.predict"
    assert meta["lagThreshold"] == str(v["worker"]["keda"]["lagThreshold"])
    assert all(isinstance(x, str) for x in meta.values()), "KEDA trigger metadata must be strings"


def test_scaledobject_follows_config_extra():
    r = render_case("with-keda-values.yaml", (
        "config.extra.MLAPI_CONSUMER_GROUP=grp", "config.extra.MLAPI_PREDICT_TOPIC=t.p")).ok()
    (so,) = r.of_kind("ScaledObject")
    assert so["spec"]["triggers"][0]["metadata"]["consumerGroup"] == "grp"
    assert so["spec"]["triggers"][0]["metadata"]["topic"] == "t.p"


KEDA_CRDS = sorted((Path(__file__).parent / "crds").glob("keda-*.json"))


def _strict(schema):
    """The CRD's schema as the API server's strict field validation applies it: unknown
    fields are errors, except where the schema preserves them."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema and \
                not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(x) for x in schema]
    return schema


@functools.cache
def _keda_validators(path: Path) -> dict:
    crds = json.loads(path.read_text())
    return {kind: jsonschema.Draft7Validator(_strict(schema))
            for kind, schema in crds.items() if not kind.startswith("$")}


def _crd_errors(path: Path, doc: dict) -> list[str]:
    validator = _keda_validators(path)[doc["kind"]]
    return [f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, e.absolute_path))}: "
            f"{e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("crds", KEDA_CRDS, ids=lambda p: p.stem)
def test_keda_objects_match_the_crd_schemas(case, crds):
    """ScaledObject and TriggerAuthentication against KEDA's own CRD schemas (the oldest KEDA
    the chart supports, 2.13, and a current one)."""
    docs = [d for d in render_case(case).ok().docs if d["kind"] in _keda_validators(crds)]
    if effective_values(case)["worker"]["keda"]["enabled"]:
        assert docs
    errors = [e for d in docs for e in _crd_errors(crds, d)]
    assert not errors, "\n".join(errors)


def test_keda_crd_check_sees_both_kinds_and_rejects_unknown_fields():
    docs = render_case("with-keda-external-kafka-values.yaml").ok().docs
    kinds = {d["kind"]: d for d in docs if d["kind"] in {"ScaledObject", "TriggerAuthentication"}}
    assert set(kinds) == {"ScaledObject", "TriggerAuthentication"}
    so = copy.deepcopy(kinds["ScaledObject"])
    so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behaviour"] = {}
    ta = copy.deepcopy(kinds["TriggerAuthentication"])
    ta["spec"]["secretTargetRef"][0]["secretName"] = "x"
    for path in KEDA_CRDS:
        assert _crd_errors(path, so) and _crd_errors(path, ta)


def test_servicemonitors_select_services_and_ports():
    r = render_case("with-monitoring-values.yaml").ok()
    monitors = r.of_kind("ServiceMonitor")
    assert len(monitors) == 3
    components = set()
    for sm in monitors:
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        sel = sm["spec"]["selector"]["matchLabels"]
        assert sel
        services = [s for s in r.of_kind("Service")
                    if all(s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
        assert len(services) == 1, f"{sm['metadata']['name']} selects {len(services)} Services"
        names = {p.get("name") for p in services[0]["spec"]["ports"]}
        assert sm["spec"]["endpoints"]
        for ep in sm["spec"]["endpoints"]:
            assert ep["port"] in names, f"{sm['metadata']['name']}: no port {ep['port']!r}"
            assert ep["path"] == "/metrics"
        components.add(sel.get("app.kubernetes.io/component"))
    assert components == {"api", "worker", "feedback"}


def test_prometheusrule_alerts():
    r = render_case("with-monitoring-values.yaml").ok()
    (rule,) = r.of_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules = [x for g in rule["spec"]["groups"] for x in g["rules"]]
    alerts = {x["alert"]: x for x in rules if "alert" in x}
    assert set(alerts) == {"MlapiRequestsFailing", "MlapiNoWorkerServing", "MlapiQueueWaitHigh"}
    for a in alerts.values():
        assert a["expr"].strip() and a["labels"]["severity"] in {"warning", "critical"}
        assert f'namespace="{NAMESPACE}"' in a["expr"]
        assert "{{" not in a["expr"]


@pytest.mark.parametrize("case", ["defaults", "with-gateway-values.yaml"])
def test_no_monitoring_objects_unless_enabled(case):
    r = render_case(case).ok()
    assert not r.of_kind("ServiceMonitor") and not r.of_kind("PrometheusRule")


def test_dashboard_configmap_is_json():
    import json
    r = render_case("with-monitoring-values.yaml").ok()
    (cm,) = [c for c in r.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["mlapi.json"])


def test_helm_package(tmp_path):
    proc = run_helm("package", str(CHART), "-d", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (tgz,) = tmp_path.glob("*.tgz")
    assert tgz.name == "mlapi-0.2.0.tgz"
    with tarfile.open(tgz) as tar:
        names = set(tar.getnames())
    for must in ["mlapi/Chart.yaml", "mlapi/values.yaml", "mlapi/values.schema.json",
                 "mlapi/charts/redis/Chart.yaml", "mlapi/charts/kafka/Chart.yaml",
                 "mlapi/charts/redis/values.schema.json", "mlapi/charts/kafka/values.schema.json",
                 "mlapi/templates/tests/test-predict.yaml"]:
        assert must in names, must
    packaged = render(chart=str(tgz)).ok()
    direct = render_case("defaults").ok()
    assert sorted((d["kind"], d["metadata"]["name"]) for d in packaged.docs) == \
        sorted((d["kind"], d["metadata"]["name"]) for d in direct.docs)


def test_cases_cover_the_feature_switches():
    """Each optional feature is switched on by at least one ci file (so the tests above see it)."""
    switches = ["httpRoute.enabled", "ingress.enabled", "worker.keda.enabled",
                "metrics.serviceMonitor.enabled", "metrics.prometheusRule.enabled",
                "api.autoscaling.enabled", "auth.existingSecret"]
    for s in switches:
        assert any(dig(effective_values(c), s) for c in CASES), s
    assert any(dig(effective_values(c), "redis.enabled") is False for c in CASES)
