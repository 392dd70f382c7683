"""The PrometheusRule's alerts, run by promtool: `check rules`, then unit tests of each alert.

The rules of two releases in one namespace (`mlapi` and `mlapi-canary`, whose names share a
prefix) are loaded together into every unit test, so an alert that selects the other release's
series fires where it should not. Counters appear with the first event, as prometheus_client
creates a labelled child then: the first scrape already holds a count above 0. Scrape intervals
15 s and 30 s, rule evaluation every 30 s (kube-prometheus-stack's default).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import CHART, CI_DIR, NAMESPACE, RELEASE, render_case, run_helm

pytestmark = pytest.mark.chart

PROMTOOL = shutil.which("promtool")
VALUES = "with-monitoring-values.yaml"
OTHER = "mlapi-canary"  # a second release in the namespace, its name starting with ours
INTERVALS = [15, 30]  # seconds between scrapes
EVALUATION = "30s"


def rendered_rule(release: str) -> tuple[dict, dict[str, str]]:
    """The release's PrometheusRule and the job label of each component (its Service's name)."""
    if release == RELEASE:
        stdout = render_case(VALUES).ok().stdout
    else:
        proc = run_helm("template", release, str(CHART), "--namespace", NAMESPACE,
                        "-f", str(CI_DIR / VALUES))
        assert proc.returncode == 0, proc.stderr
        stdout = proc.stdout
    docs = [d for d in yaml.safe_load_all(stdout) if d]
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    jobs = {}
    for monitor in (d for d in docs if d["kind"] == "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        (service,) = [d for d in docs if d["kind"] == "Service"
                      and selector.items() <= d["metadata"]["labels"].items()]
        jobs[selector["app.kubernetes.io/component"]] = service["metadata"]["name"]
    return rule, jobs


@pytest.fixture(scope="module")
def promtool() -> str:
    if not PROMTOOL:
        pytest.skip("promtool is not on PATH: apt-get install prometheus")
    return PROMTOOL


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> dict:
    """Per release: its rules file (spec as promtool reads it), one without annotations for the
    unit tests (promtool compares annotations exactly; `check rules` parses their templates),
    and its jobs."""
    d = tmp_path_factory.mktemp("rules")
    out = {}
    for release in (RELEASE, OTHER):
        rule, jobs = rendered_rule(release)
        full = d / f"{release}.yaml"
        full.write_text(yaml.safe_dump(rule["spec"]))
        bare = {"groups": [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"}
                                           for r in g["rules"]]} for g in rule["spec"]["groups"]]}
        unit = d / f"{release}-unit.yaml"
        unit.write_text(yaml.safe_dump(bare))
        out[release] = {"file": full, "unit": unit, "jobs": jobs, "spec": rule["spec"]}
    return out


def test_promtool_checks_the_rules(promtool, rules):
    for release in (RELEASE, OTHER):
        proc = subprocess.run([promtool, "check", "rules", str(rules[release]["file"])],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "SUCCESS: 3 rules found" in proc.stdout, proc.stdout


def test_the_rules_select_this_release_by_exact_job_and_namespace(rules):
    for release in (RELEASE, OTHER):
        jobs = rules[release]["jobs"]
        for r in rules[release]["spec"]["groups"][0]["rules"]:
            assert f'namespace="{NAMESPACE}"' in r["expr"], r
            assert "job=~" not in r["expr"], r
            assert any(f'job="{job}"' in r["expr"] for job in jobs.values()), r


# Series ------------------------------------------------------------------------------------

def fmt(v: float) -> str:
    return f"{v:.6g}"


def counter(per_min: float, interval: int, total: int, start: int = 0,
            stop: int | None = None, from_zero: bool = False) -> str:
    """Values of a counter pushed up at per_min from start to stop (seconds), scraped every
    interval seconds for total seconds; absent until the first event unless from_zero (a
    metric without labels, exported at 0 from the start)."""
    stop = total if stop is None else stop
    return " ".join("_" if t <= start and not from_zero
                    else fmt(per_min / 60 * max(0, min(t, stop) - start))
                    for t in range(0, total + 1, interval))


def requests(job: str, status: int, per_min: float, interval: int, total: int, *,
             pod: str = "a", endpoint: str = "/v1/predict", namespace: str = NAMESPACE,
             **kw) -> dict:
    labels = (f'namespace="{namespace}", job="{job}", service="{job}", pod="{job}-{pod}", '
              f'instance="10.0.0.{ord(pod)}:8000", endpoint="{endpoint}", method="POST", '
              f'status="{status}"')
    return {"series": f"mlapi_http_requests_total{{{labels}}}",
            "values": counter(per_min, interval, total, **kw)}


def queue_wait(job: str, wait_s: float, per_min: float, interval: int, total: int,
               pod: str = "a") -> list[dict]:
    """mlapi_worker_queue_wait_seconds buckets of a worker whose jobs all wait wait_s."""
    out = []
    for le in ("0.25", "0.5", "1", "2.5", "5", "+Inf"):
        rate = per_min if float(le) >= wait_s else 0
        out.append({"series": f'mlapi_worker_queue_wait_seconds_bucket{{namespace="{NAMESPACE}", '
                              f'job="{job}", pod="{job}-{pod}", le="{le}"}}',
                    "values": counter(rate, interval, total, from_zero=True)})
    return out


def model_info(job: str, interval: int, total: int, pod: str = "a",
               stop: int | None = None) -> dict:
    """mlapi_worker_model_info of one worker (value 1), gone (stale) after stop seconds."""
    n = (total if stop is None else stop) // interval + 1
    values = f"1x{n - 1}" + (" stale" if stop is not None else "")
    return {"series": f'mlapi_worker_model_info{{namespace="{NAMESPACE}", job="{job}", '
                      f'pod="{job}-{pod}", version="20250101T000000"}}', "values": values}


def alert(job: str, severity: str) -> dict:
    return {"exp_labels": {"severity": severity, "namespace": NAMESPACE, "job": job}}


def at(minutes: float, name: str, *alerts: dict) -> dict:
    return {"eval_time": f"{int(minutes * 60)}s", "alertname": name, "exp_alerts": list(alerts)}


# Scenarios: (series, alert tests) from the scrape interval and both releases' jobs ----------

FAILING, NO_WORKER, QUEUE = "MlapiRequestsFailing", "MlapiNoWorkerServing", "MlapiQueueWaitHigh"


def workers(jobs, i, total):
    """Both releases' workers serving, so that only the alert under test can fire."""
    return [model_info(j["worker"], i, total, pod) for j in jobs.values() for pod in "ab"]


def sustained_11_per_minute(jobs, i):
    ours = jobs[RELEASE]["api"]
    series = [requests(ours, 500, 11, i, 600), requests(ours, 200, 600, i, 600)]
    return series, [at(1, FAILING), at(3, FAILING, alert(ours, "warning")),
                    at(10, FAILING, alert(ours, "warning"))]


def sixty_errors_in_one_minute(jobs, i):
    ours = jobs[RELEASE]["api"]
    series = [requests(ours, 500, 60, i, 600, start=60, stop=120)]
    return series, [at(3, FAILING, alert(ours, "warning")), at(4.5, FAILING)]


def a_burst_resolves_soon_after(jobs, i):
    ours = jobs[RELEASE]["api"]
    series = [requests(ours, 503, 60, i, 900, stop=360)]
    return series, [at(2, FAILING, alert(ours, "warning")),
                    at(6, FAILING, alert(ours, "warning")), at(8.5, FAILING)]


def two_pods_add_up(jobs, i):
    ours = jobs[RELEASE]["api"]
    series = [requests(ours, 500, 6, i, 600, pod="a"), requests(ours, 502, 6, i, 600, pod="b")]
    return series, [at(3, FAILING, alert(ours, "warning"))]


def client_errors_never_fire(jobs, i):
    ours = jobs[RELEASE]["api"]
    series = [requests(ours, 401, 120, i, 900), requests(ours, 429, 300, i, 900),
              requests(ours, 404, 60, i, 900, endpoint="unmatched"),
              requests(ours, 400, 60, i, 900, pod="b")]
    return series, [at(m, FAILING) for m in (3, 6, 15)]


def failing_readiness_probes_are_not_requests(jobs, i):
    # Two api pods whose /readyz answers 503 (Redis down) to the kubelet every 5 s.
    ours = jobs[RELEASE]["api"]
    series = [requests(ours, 503, 12, i, 900, pod=p, endpoint="/readyz") for p in "ab"]
    return series, [at(m, FAILING) for m in (3, 10)]


def another_release_or_namespace_is_not_ours(jobs, i):
    other = jobs[OTHER]["api"]
    series = [requests(other, 500, 60, i, 600),
              requests(jobs[RELEASE]["api"], 500, 60, i, 600, namespace="staging")]
    return series, [at(3, FAILING, alert(other, "warning"))]


def workers_serving(jobs, i):
    return [], [at(m, NO_WORKER) for m in (3, 10)]


def no_worker_reports_a_model(jobs, i):
    # Ours report nothing (no series at all); the other release's workers serve.
    ours, other = jobs[RELEASE]["worker"], jobs[OTHER]["worker"]
    series = [model_info(other, i, 600, pod) for pod in "ab"]
    return series, [at(3, NO_WORKER, alert(ours, "critical")),
                    at(10, NO_WORKER, alert(ours, "critical"))]


def the_last_worker_goes_away(jobs, i):
    ours, other = jobs[RELEASE]["worker"], jobs[OTHER]["worker"]
    series = [model_info(ours, i, 600, "a", stop=300), model_info(ours, i, 600, "b", stop=240),
              *(model_info(other, i, 600, pod) for pod in "ab")]
    return series, [at(4.5, NO_WORKER), at(8, NO_WORKER, alert(ours, "critical"))]


def jobs_wait_long(jobs, i):
    ours, other = jobs[RELEASE]["worker"], jobs[OTHER]["worker"]
    series = [*queue_wait(ours, 2, 600, i, 1200), *queue_wait(other, 0.1, 600, i, 1200)]
    return series, [at(8, QUEUE), at(13, QUEUE, alert(ours, "warning"))]


def another_releases_jobs_wait_long(jobs, i):
    ours, other = jobs[RELEASE]["worker"], jobs[OTHER]["worker"]
    series = [*queue_wait(ours, 0.1, 600, i, 1200), *queue_wait(other, 2, 60, i, 1200)]
    return series, [at(13, QUEUE, alert(other, "warning"))]


def idle_workers(jobs, i):
    ours = jobs[RELEASE]["worker"]
    return queue_wait(ours, 2, 0, i, 1200), [at(13, QUEUE)]


SCENARIOS = [sustained_11_per_minute, sixty_errors_in_one_minute, a_burst_resolves_soon_after,
             two_pods_add_up, client_errors_never_fire, failing_readiness_probes_are_not_requests,
             another_release_or_namespace_is_not_ours, workers_serving, no_worker_reports_a_model,
             the_last_worker_goes_away, jobs_wait_long, another_releases_jobs_wait_long,
             idle_workers]


@pytest.mark.parametrize("interval", INTERVALS, ids=lambda i: f"scrape{i}s")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_alert(promtool, rules, tmp_path: Path, scenario, interval):
    jobs = {release: rules[release]["jobs"] for release in rules}
    series, checks = scenario(jobs, interval)
    if scenario not in (no_worker_reports_a_model, the_last_worker_goes_away):
        series = [*series, *workers(jobs, interval, 1200)]
    test = {"rule_files": [str(rules[r]["unit"]) for r in rules],
            "evaluation_interval": EVALUATION,
            "tests": [{"interval": f"{interval}s", "input_series": series,
                       "alert_rule_test": checks}]}
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
