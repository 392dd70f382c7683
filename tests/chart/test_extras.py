"""Values platforms add: ServiceAccounts with identities, extra volumes, Service annotations,
container securityContext keys, feedback spread (ci/with-extras-values.yaml)."""

from __future__ import annotations

import pytest

from .conftest import pod_templates, render, render_case

pytestmark = pytest.mark.chart

EXTRAS = "with-extras-values.yaml"


@pytest.fixture(scope="module")
def r():
    return render_case(EXTRAS).ok()


def _pods(r):
    return {pt.labels["app.kubernetes.io/component"]: pt for pt in pod_templates(r.docs)
            if pt.labels.get("app.kubernetes.io/part-of") == "mlapi"
            and pt.labels.get("app.kubernetes.io/component") in ("api", "worker", "feedback")}


def test_service_accounts_names_and_identities(r):
    accounts = {d["metadata"]["name"]: d for d in r.of_kind("ServiceAccount")}
    assert accounts["mlapi-api"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/mlapi-api"}
    assert "mlapi-feedback-identity" in accounts and "ml-workers" not in accounts
    assert not any(n.endswith("-worker") for n in accounts), "worker.serviceAccount.create=false"
    pods = _pods(r)
    assert pods["api"].spec["serviceAccountName"] == "mlapi-api"
    assert pods["worker"].spec["serviceAccountName"] == "ml-workers"
    assert pods["feedback"].spec["serviceAccountName"] == "mlapi-feedback-identity"
    assert all(pt.spec["automountServiceAccountToken"] is False for pt in pods.values())


def test_extra_volumes_reach_every_container_of_the_component(r):
    pods = _pods(r)
    for component in ("api", "feedback"):
        pt = pods[component]
        assert {"name": "corp-ca", "secret": {"secretName": "corp-ca"}} in pt.spec["volumes"]
        for c in pt.containers:  # feedback: the service and its retrain sidecar
            assert {"name": "corp-ca", "mountPath": "/etc/ssl/corp", "readOnly": True} \
                in c["volumeMounts"], (component, c["name"])
    assert all(v["name"] != "corp-ca" for v in pods["worker"].spec["volumes"])


def test_extra_volumes_reach_the_retrain_cronjob():
    r = render(("charts/mlapi/ci/" + EXTRAS,),
               ("feedback.retrain.mode=cronjob", "feedback.database.url=postgresql://db/x"))
    (job,) = [pt for pt in pod_templates(r.ok().docs) if pt.owner_kind == "CronJob"]
    assert job.spec["serviceAccountName"] == "mlapi-feedback-identity"
    assert any(v["name"] == "corp-ca" for v in job.spec["volumes"])
    assert any(m["name"] == "corp-ca" for m in job.containers[0]["volumeMounts"])


def test_service_annotations(r):
    services = {d["metadata"]["name"]: d["metadata"].get("annotations") for d in r.of_kind("Service")}
    assert services["mlapi-api"] == {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    assert services["mlapi-worker-metrics"] == {"prometheus.io/scrape": "true"}
    assert services["mlapi-feedback-metrics"] is None


def test_container_security_context_keys_lay_over_the_defaults(r):
    for pt in _pods(r).values():
        for c in pt.containers:
            sc = c["securityContext"]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"] == {"drop": ["ALL"]}


def test_a_security_context_key_given_wins():
    r = render(sets=("containerSecurityContext.readOnlyRootFilesystem=false",)).ok()
    api = _pods(r)["api"]
    assert api.containers[0]["securityContext"]["readOnlyRootFilesystem"] is False
    assert api.containers[0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_feedback_spread_gets_its_own_selector(r):
    (tsc,) = _pods(r)["feedback"].spec["topologySpreadConstraints"]
    assert tsc["topologyKey"] == "topology.kubernetes.io/zone"
    assert tsc["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "feedback"
