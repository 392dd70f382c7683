"""The ServiceMonitors' scrape settings and the dashboard's namespace, from values."""

from __future__ import annotations

import pytest

from .conftest import NAMESPACE, effective_values, render, render_case

pytestmark = pytest.mark.chart

CASE = "with-monitoring-values.yaml"


def test_servicemonitors_carry_timeout_and_relabelings():
    r = render_case(CASE).ok()
    sm = effective_values(CASE)["metrics"]["serviceMonitor"]
    assert sm["scrapeTimeout"] and sm["relabelings"] and sm["metricRelabelings"], \
        f"{CASE} should set them"
    monitors = r.of_kind("ServiceMonitor")
    assert len(monitors) == 3
    for m in monitors:
        (endpoint,) = m["spec"]["endpoints"]
        assert endpoint["scrapeTimeout"] == sm["scrapeTimeout"]
        assert endpoint["relabelings"] == sm["relabelings"]
        assert endpoint["metricRelabelings"] == sm["metricRelabelings"]


def test_servicemonitors_leave_them_to_prometheus_by_default():
    r = render((), ("metrics.serviceMonitor.enabled=true",)).ok()
    for m in r.of_kind("ServiceMonitor"):
        (endpoint,) = m["spec"]["endpoints"]
        assert not {"scrapeTimeout", "relabelings", "metricRelabelings"} & endpoint.keys()


def dashboard(r):
    (cm,) = [d for d in r.of_kind("ConfigMap") if "mlapi.json" in d.get("data", {})]
    return cm


def test_dashboard_in_the_namespace_grafana_watches():
    assert effective_values(CASE)["metrics"]["dashboard"]["namespace"] == "monitoring"
    assert dashboard(render_case(CASE).ok())["metadata"]["namespace"] == "monitoring"


def test_dashboard_in_the_release_namespace_by_default():
    r = render((), ("metrics.dashboard.enabled=true",)).ok()
    assert dashboard(r)["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("sets,needle", [
    # Prometheus' own snake_case, which the Prometheus Operator does not read.
    (("metrics.serviceMonitor.relabelings[0].source_labels[0]=__name__",),
     "'source_labels' not allowed"),
    (("metrics.serviceMonitor.metricRelabelings[0].action=delete",),
     "metricRelabelings/0/action': value must be one of"),
    (("metrics.serviceMonitor.scrapeTimeout=5 seconds",),
     "scrapeTimeout': '5 seconds' does not match pattern"),
    (("metrics.dashboard.namespace=Monitoring",),
     "namespace': 'Monitoring' does not match pattern"),
])
def test_schema_rejects_what_the_operator_or_kubernetes_would(sets, needle):
    proc = render((), sets)
    assert proc.rc != 0 and "schema" in proc.stderr, proc.stderr
    assert needle in proc.stderr, proc.stderr


def test_dashboard_selects_this_release_by_exact_job():
    """`job=~"$release-.*"` also counted `<release>-canary-…`: every query names one job, and
    that job is a Service the ServiceMonitors scrape (with $release the api job's prefix)."""
    import json
    import re

    r = render_case(CASE).ok()
    board = json.loads(dashboard(r)["data"]["mlapi.json"])
    jobs = {d["metadata"]["name"] for d in r.of_kind("Service")
            if any(d["metadata"]["labels"]["app.kubernetes.io/component"] ==
                   m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
                   for m in r.of_kind("ServiceMonitor"))}
    (api_job,) = [j for j in jobs if j.endswith("-api")]
    release = api_job.removesuffix("-api")
    exprs = re.findall(r'"expr": "((?:[^"\\]|\\.)*)"', json.dumps(board))
    assert len(exprs) >= 10
    for expr in exprs:
        expr = expr.replace('\\"', '"')
        assert "job=~" not in expr, expr
        (job,) = re.findall(r'job="([^"]+)"', expr)
        assert job.replace("$release", release) in jobs, (expr, jobs)
