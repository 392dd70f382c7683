"""MLAPI_RATE_LIMIT, counted in the real Redis, shared by every API process."""

import uuid

import pytest

from mlapi import auth
from mlapi.api import create_app
from mlapi.api.resources import close_all
from mlapi.config import Settings


@pytest.mark.parametrize("value, parts", [("600/minute", (600, 60)), ("5/second", (5, 1)),
                                          ("1000/hour", (1000, 3600)), ("", None)])
def test_parses_the_limit(value, parts):
    assert Settings(rate_limit=value).rate_limit_parts == parts


@pytest.mark.parametrize("value", ["600", "x/minute", "0/minute", "10/day"])
def test_bad_limits_name_the_variable(value):
    with pytest.raises(ValueError, match="MLAPI_RATE_LIMIT"):
        Settings.from_env({"MLAPI_RATE_LIMIT": value})


@pytest.fixture
def two_apis(settings, session_worker, tmp_path):
    path = tmp_path / "keys.json"
    # Key names unique to this run: counters left in the shared Redis by earlier runs don't count.
    tag = uuid.uuid4().hex[:8]
    tokens = {n: auth.create(path, f"{n}-{tag}", ["predict"]) for n in ("alice", "bob")}
    limited = settings.replace(rate_limit="5/hour", api_keys_file=path)
    apps = [create_app(limited), create_app(limited)]
    yield [a.test_client() for a in apps], tokens
    for a in apps:
        close_all(a)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_limit_holds_across_two_api_processes_and_counts_batch_texts(two_apis):
    (one, two), tokens = two_apis
    h = bearer(tokens["alice"])
    assert one.post("/v1/predict", json={"texts": ["a", "b", "c"]}, headers=h).status_code == 200
    assert two.post("/v1/predict", json={"text": "d"}, headers=h).status_code == 200
    # 4 used of 5: a batch of 2 does not fit, and is not counted
    r = one.post("/v1/predict", json={"texts": ["e", "f"]}, headers=h)
    assert r.status_code == 429 and r.mimetype == "application/problem+json"
    assert int(r.headers["Retry-After"]) >= 1 and "5/hour" in r.json["detail"]
    assert two.post("/v1/predict", json={"text": "g"}, headers=h).status_code == 200
    course = one.post("/predict", query_string={"text": "h"}, headers=h)
    assert course.status_code == 429 and course.json["success"] is False
    assert course.headers["Retry-After"]
    # another key has its own budget
    assert one.post("/v1/predict", json={"text": "i"}, headers=bearer(tokens["bob"])).status_code == 200


def test_without_auth_the_limit_is_per_client_address(settings, session_worker):
    app = create_app(settings.replace(rate_limit="2/hour"))
    client = app.test_client()
    here = {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}
    there = {"REMOTE_ADDR": "10.255.255.1" if here["REMOTE_ADDR"] != "10.255.255.1" else "10.0.0.1"}
    for _ in range(2):
        assert client.post("/v1/predict", json={"text": "x"}, environ_base=here).status_code == 200
    assert client.post("/v1/predict", json={"text": "x"}, environ_base=here).status_code == 429
    assert client.post("/v1/predict", json={"text": "x"}, environ_base=there).status_code == 200
    close_all(app)
