"""The retraining design (sidecar vs CronJob) and the API keys wiring."""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath

import pytest

from .conftest import effective_values, render_case

pytestmark = pytest.mark.chart


def _container(dep, name):
    return next((c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == name),
                None)


def _mount(c, volume):
    return next((m for m in c.get("volumeMounts") or [] if m["name"] == volume), None)


def test_default_retrain_sidecar_shares_the_data_volume():
    r = render_case("defaults").ok()
    dep = r.get("Deployment", "mlapi-feedback")
    feedback, retrain = _container(dep, "feedback"), _container(dep, "retrain")
    assert feedback and retrain
    assert retrain["args"][:2] == ["retrain", "--every"]
    fm, rm = _mount(feedback, "data"), _mount(retrain, "data")
    assert fm and rm and fm["mountPath"] == rm["mountPath"]
    env = {e["name"]: e.get("value") for e in retrain["env"]}
    assert env["MLAPI_STATE_DIR"] == fm["mountPath"]
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    assert dep["spec"]["replicas"] == 1
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"]
    pvc = r.get("PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"])
    assert pvc is not None and pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not r.of_kind("CronJob")


def test_existing_secrets_uses_a_cronjob():
    case = "with-existing-secrets-values.yaml"
    r = render_case(case).ok()
    v = effective_values(case)
    dep = r.get("Deployment", "mlapi-feedback")
    assert _container(dep, "retrain") is None
    assert dep["spec"]["strategy"].get("type", "RollingUpdate") == "RollingUpdate"
    assert dep["spec"]["strategy"]["rollingUpdate"]
    assert dep["spec"]["replicas"] == 2
    assert not r.of_kind("PersistentVolumeClaim")
    (cj,) = r.of_kind("CronJob")
    assert cj["spec"]["schedule"] == v["feedback"]["retrain"]["schedule"]
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    db = next(e for e in c["env"] if e["name"] == "MLAPI_FEEDBACK_DB")
    assert db["valueFrom"]["secretKeyRef"] == {"name": "mlapi-feedback-db", "key": "url"}


def test_retrain_disabled_renders_neither():
    r = render_case("defaults", ("feedback.retrain.enabled=false",)).ok()
    assert _container(r.get("Deployment", "mlapi-feedback"), "retrain") is None
    assert not r.of_kind("CronJob")


def _keys_json(r):
    s = r.get("Secret", "mlapi-api-keys")
    if "stringData" in s:
        return json.loads(s["stringData"]["keys.json"])
    return json.loads(base64.b64decode(s["data"]["keys.json"]))


def test_default_auth_secrets():
    r = render_case("defaults").ok()
    tok = r.get("Secret", "mlapi-admin-token")
    assert tok is not None and r.get("Secret", "mlapi-api-keys") is not None
    token = base64.b64decode(tok["data"]["token"]).decode()
    assert token.startswith("mlapi_") and len(token) > 40
    keys = _keys_json(r)["keys"]
    assert len(keys) == 1
    assert keys[0]["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(keys)
    assert set(keys[0]["scopes"]) >= {"predict", "admin"}


def _api(r):
    return _container(r.get("Deployment", "mlapi-api"), "api"), \
        r.get("Deployment", "mlapi-api")["spec"]["template"]["spec"]["volumes"]


@pytest.mark.parametrize("case,secret,key", [
    ("defaults", "mlapi-api-keys", "keys.json"),
    ("with-existing-secrets-values.yaml", "mlapi-api-keys", "keys.json"),
])
def test_api_mounts_keys_secret_as_directory(case, secret, key):
    r = render_case(case).ok()
    api, volumes = _api(r)
    env = {e["name"]: e.get("value") for e in api["env"]}
    path = env["MLAPI_API_KEYS_FILE"]
    mounts = [m for m in api["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/")]
    (m,) = mounts
    assert "subPath" not in m and "subPathExpr" not in m, "a subPath never sees Secret updates"
    assert m["mountPath"].rstrip("/") == posixpath.dirname(path)
    assert m.get("readOnly") is True
    (vol,) = [v for v in volumes if v["name"] == m["name"]]
    assert vol["secret"]["secretName"] == secret
    items = vol["secret"].get("items")
    if items:
        assert {"key": key, "path": posixpath.basename(path)} in items


def test_existing_secret_renders_no_auth_secrets():
    case = "with-existing-secrets-values.yaml"
    r = render_case(case).ok()
    assert r.get("Secret", "mlapi-admin-token") is None
    assert r.get("Secret", effective_values(case)["auth"]["existingSecret"]) is None
    assert not [s for s in r.of_kind("Secret") if "keys.json" in (s.get("stringData") or {})]


def test_existing_secret_uses_the_given_name():
    r = render_case("defaults", ("auth.existingSecret=team-keys",
                                 "auth.existingSecretKey=k.json")).ok()
    _, volumes = _api(r)
    (vol,) = [v for v in volumes if v["name"] == "api-keys"]
    assert vol["secret"]["secretName"] == "team-keys"
    assert vol["secret"]["items"] == [{"key": "k.json", "path": "keys.json"}]


def test_auth_off_mounts_nothing():
    r = render_case("defaults", ("auth.enabled=false",)).ok()
    api, volumes = _api(r)
    assert "MLAPI_API_KEYS_FILE" not in {e["name"] for e in api["env"]}
    assert "api-keys" not in {v["name"] for v in volumes}
    assert r.get("Secret", "mlapi-admin-token") is None


def _test_pod_token(r):
    (pod,) = [p for p in r.of_kind("Pod")
              if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    (c,) = pod["spec"]["containers"]
    env = [e for e in c.get("env") or [] if e["name"] == "TOKEN"]
    return env[0]["valueFrom"]["secretKeyRef"] if env else None, c


@pytest.mark.parametrize("case,sets,ref", [
    ("defaults", (), {"name": "mlapi-admin-token", "key": "token"}),
    ("with-existing-secrets-values.yaml", (), {"name": "mlapi-test-token", "key": "token"}),
    ("defaults", ("auth.existingSecret=k", "tests.tokenSecret=t", "tests.tokenSecretKey=tk"),
     {"name": "t", "key": "tk"}),
    ("defaults", ("auth.existingSecret=k",), None),
])
def test_helm_test_pod_token(case, sets, ref):
    got, c = _test_pod_token(render_case(case, sets).ok())
    assert got == ref
    script = c["args"][0]
    if ref is None:
        assert "status == 401" in script
    else:
        assert "status == 200" in script
    assert "http://mlapi-api:80/v1/predict" in script
