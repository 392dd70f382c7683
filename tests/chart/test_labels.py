"""Each key once: labels, annotations and spread selectors merge instead of repeating keys.

yamllint's key-duplicates rule runs over the render of every case: a parser that keeps the last
of two equal keys would silently drop the user's setting (or the chart's selector label).
"""

from __future__ import annotations

import pytest
from yamllint import linter
from yamllint.config import YamlLintConfig

from .conftest import CASES, pod_templates, render, render_case

pytestmark = pytest.mark.chart

LINT = YamlLintConfig("rules: {key-duplicates: enable}")
LABELS = "with-labels-values.yaml"


def duplicate_keys(text: str) -> list[str]:
    return [f"line {p.line}: {p.message}" for p in linter.run(text, LINT)]


@pytest.mark.parametrize("case", CASES)
def test_no_render_repeats_a_key(case):
    r = render_case(case).ok()
    assert not duplicate_keys(r.stdout), duplicate_keys(r.stdout)


@pytest.mark.parametrize("sets", [
    ("commonLabels.team=a", "worker.podLabels.team=b", "feedback.podLabels.team=c"),
    ("commonLabels.app\\.kubernetes\\.io/component=x",),
    ("api.podAnnotations.checksum/config=mine",),
    ("feedback.retrain.mode=cronjob", "feedback.database.url=postgresql://db/mlapi",
     "feedback.podLabels.team=c", "commonLabels.team=a"),
])
def test_no_duplicate_keys_with_overlapping_values(sets):
    r = render(sets=sets).ok()
    assert not duplicate_keys(r.stdout), duplicate_keys(r.stdout)


def test_the_linter_sees_a_repeated_key():
    assert duplicate_keys("a:\n  b: 1\n  b: 2\n")


def _pod(r, component):
    return next(pt for pt in pod_templates(r.docs)
                if pt.labels.get("app.kubernetes.io/component") == component)


def test_precedence_chart_then_podlabels_then_commonlabels():
    r = render_case(LABELS).ok()
    api, worker = _pod(r, "api"), _pod(r, "worker")
    assert api.labels["team"] == "sentiment-api"  # podLabels over commonLabels
    assert worker.labels["team"] == "ml-platform"  # commonLabels where no podLabels
    assert api.labels["cost-center"] == "4711"
    for pt in (api, worker):
        assert pt.labels["app.kubernetes.io/part-of"] == "mlapi"  # the chart's label wins
        assert pt.labels["mlapi.io/kafka-client"] == "true"
    for d in r.docs:
        if d["kind"] == "Deployment":
            assert d["metadata"]["labels"]["team"] == "ml-platform"
    assert api.metadata["annotations"]["example.com/owner"] == "sentiment"
    assert "checksum/config" in api.metadata["annotations"]


def test_a_users_spread_selector_is_kept_and_ours_added_where_none():
    api = _pod(render_case(LABELS).ok(), "api")
    zone, host = api.spec["topologySpreadConstraints"]
    assert zone["labelSelector"] == {"matchLabels": {"app.kubernetes.io/component": "api",
                                                     "team": "sentiment-api"}}
    assert host["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert host["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "mlapi"


def test_the_retrain_cronjob_gets_what_the_sidecar_gets():
    """feedback.extraEnv and the feedback pod's annotations and labels reach the CronJob's pod."""
    sets = ("feedback.retrain.mode=cronjob", "feedback.database.url=postgresql://db/mlapi",
            "feedback.extraEnv[0].name=MLAPI_LOG_FORMAT", "feedback.extraEnv[0].value=json",
            "feedback.podAnnotations.example\\.com/backup=no", "feedback.podLabels.team=ml")
    r = render(sets=sets).ok()
    (job,) = [pt for pt in pod_templates(r.docs) if pt.owner_kind == "CronJob"]
    feedback = _pod(r, "feedback")
    env = {e["name"]: e.get("value") for e in job.containers[0]["env"]}
    assert env["MLAPI_LOG_FORMAT"] == "json"
    assert job.metadata["annotations"] == feedback.metadata["annotations"]
    assert job.labels["team"] == "ml"
    assert job.labels["app.kubernetes.io/component"] == "retrain"
