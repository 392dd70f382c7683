"""Authentication and scopes of the API, with a real keys file, Redis, broker and worker."""

import os
import time

import pytest

from mlapi import auth
from mlapi.api import create_app
from mlapi.api.resources import close_all
from mlapi.config import Settings

PROBLEM = "application/problem+json"


@pytest.fixture
def keys(tmp_path):
    path = tmp_path / "keys.json"
    return path, {name: auth.create(path, name, scopes) for name, scopes in
                  [("alice", ["predict"]), ("bob", ["predict"]), ("fb", ["feedback"])]}


@pytest.fixture
def secured(settings, session_worker, keys):
    app = create_app(settings.replace(api_keys_file=keys[0]))
    yield app.test_client(), keys[1], keys[0]
    close_all(app)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


CALLS = [
    ("post", "/v1/predict", {"json": {"text": "I love it"}}),
    ("get", "/v1/jobs/" + "0" * 32, {}),
    ("post", "/predict", {"query_string": {"text": "hola"}}),
]


@pytest.mark.parametrize("method, path, kwargs", CALLS + [("get", "/v1/models", {})])
def test_no_token_is_401_with_a_challenge(secured, method, path, kwargs):
    client, _, _ = secured
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == 401 and r.mimetype == PROBLEM
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "mlapi tokens create" in r.json["detail"]


@pytest.mark.parametrize("header", ["Bearer mlapi_wrong", "Basic dXNlcjpwYXNz", "Bearer "])
@pytest.mark.parametrize("method, path, kwargs", CALLS)
def test_bad_token_is_401(secured, method, path, kwargs, header):
    client, _, _ = secured
    r = getattr(client, method)(path, headers={"Authorization": header}, **kwargs)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers


@pytest.mark.parametrize("method, path, kwargs", CALLS)
def test_wrong_scope_is_403(secured, method, path, kwargs):
    client, tokens, _ = secured
    r = getattr(client, method)(path, headers=bearer(tokens["fb"]), **kwargs)
    assert r.status_code == 403 and r.mimetype == PROBLEM
    assert "lacks the 'predict' scope" in r.json["detail"]
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_right_scope_works_everywhere(secured):
    client, tokens, _ = secured
    h = bearer(tokens["alice"])
    assert client.post("/v1/predict", json={"text": "I love it"}, headers=h).status_code == 200
    assert client.post("/predict", query_string={"text": "hola"}, headers=h).status_code == 200
    assert client.get("/v1/jobs/" + "0" * 32, headers=h).status_code == 404
    assert client.get("/v1/models", headers=bearer(tokens["fb"])).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/"])
def test_probes_metrics_and_page_stay_open(secured, path):
    client, _, _ = secured
    assert client.get(path).status_code == 200


def test_page_asks_for_a_token(secured):
    client, tokens, _ = secured
    assert 'name="token"' in client.get("/").get_data(as_text=True)
    r = client.post("/", data={"text_data": "great"})
    assert r.status_code == 401 and "Enter an API token" in r.get_data(as_text=True)
    ok = client.post("/", data={"text_data": "great day", "token": tokens["alice"]})
    assert ok.status_code == 200
    assert any(word in ok.get_data(as_text=True) for word in ("Positivo", "Neutral", "Negativo"))


def test_a_job_is_readable_only_by_its_creator(secured):
    client, tokens, _ = secured
    r = client.post("/v1/predict?wait=false", json={"text": "mine"}, headers=bearer(tokens["alice"]))
    location = r.headers["Location"]
    for _ in range(100):
        mine = client.get(location, headers=bearer(tokens["alice"]))
        if mine.status_code == 200:
            break
        time.sleep(0.05)
    assert mine.status_code == 200
    theirs = client.get(location, headers=bearer(tokens["bob"]))
    assert theirs.status_code == 404 and theirs.json["detail"].startswith("no job")


def test_keys_file_changes_apply_without_restart(secured):
    client, tokens, path = secured
    h = bearer(tokens["bob"])
    assert client.post("/v1/predict", json={"text": "x"}, headers=h).status_code == 200
    auth.revoke(path, "bob")
    assert client.post("/v1/predict", json={"text": "x"}, headers=h).status_code == 401
    carol = auth.create(path, "carol", ["predict"])
    assert client.post("/v1/predict", json={"text": "x"}, headers=bearer(carol)).status_code == 200


def test_an_unreadable_keys_file_is_503_not_500(secured, caplog):
    """An operator's broken keys file (a bad Secret) stops token checks with a clear answer."""
    client, tokens, path = secured
    path.write_text("bWxhcGk=")  # e.g. base64 left undecoded by a tool
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime: re-read at once
    r = client.post("/v1/predict", json={"text": "x"}, headers=bearer(tokens["alice"]))
    assert r.status_code == 503 and r.mimetype == PROBLEM
    assert "keys file cannot be read" in r.json["detail"] and r.headers["Retry-After"]
    assert "not a valid keys file" in caplog.text
    page = client.post("/", data={"text_data": "hola", "token": tokens["alice"]})
    assert page.status_code == 503 and b"keys file cannot be read" in page.data


def test_tokens_never_reach_the_logs(secured, caplog):
    client, tokens, _ = secured
    client.post("/v1/predict", json={"text": "x"}, headers=bearer(tokens["alice"]))
    client.post("/v1/predict", json={"text": "x"}, headers=bearer(tokens["alice"] + "x"))
    assert tokens["alice"] not in caplog.text


def test_an_open_api_says_so_at_start_up(settings, caplog):
    with caplog.at_level("WARNING", logger="mlapi.api"):
        app = create_app(settings)
    assert "AUTHENTICATION IS OFF" in caplog.text
    assert app.test_client().get("/healthz").status_code == 200


def _operations():
    spec = create_app(Settings()) \
        .extensions["mlapi.openapi"]
    values = {"job_id": "0" * 32, "name": "sentiment", "version": "v1"}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            yield pytest.param(method, path.format(**values), op, id=f"{method.upper()} {path}")


@pytest.mark.parametrize("method, path, op", list(_operations()))
def test_what_is_enforced_is_what_is_published(secured, method, path, op):
    # /openapi.json and the auth hook read the same @spec.operation: every operation the document
    # marks secured refuses a missing token and, where it names a scope, a token without it;
    # every other one answers without a token, but for the pages' forms, which answer 401 with
    # the page where they document it.
    client, tokens, _ = secured
    call = getattr(client, method)
    if "security" in op:
        assert call(path).status_code == 401
        if "403" in op["responses"]:
            scope = op["responses"]["403"]["description"].split("'")[1]
            other = "fb" if scope == "predict" else "alice"
            refused = call(path, headers=bearer(tokens[other]))
            assert refused.status_code == 403, refused.get_data(as_text=True)
    else:
        assert (call(path).status_code == 401) == ("401" in op["responses"])


@pytest.mark.parametrize(("path", "status"), [("/healthz", 200), ("/", 200), ("/v2/health/live", 200),
                                              ("/v1/predict", 401), ("/v1/models", 401)])
def test_options_is_as_open_as_its_route(secured, path, status):
    client, _, _ = secured
    assert client.options(path).status_code == status
