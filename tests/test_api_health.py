"""Probes, model info, metrics and the OpenAPI document."""

import re

from mlapi.api import create_app

from .conftest import make_settings


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["checks"] == {"redis": True, "kafka": True}
    assert r.json["workers"] >= 1 and r.json["serving"] is True


def test_models_shows_the_served_model(client, model_path):
    import json

    meta = json.loads(model_path.with_suffix(".json").read_text())
    current = client.get("/v1/models").json["current"]
    assert current["version"] == meta["version"]
    assert current["metrics"]["macro_f1"] == meta["metrics"]["macro_f1"]
    assert current["created"] == meta["created"]


def test_models_without_any_worker_is_503(redis_server, kafka_server, model_path):
    settings = make_settings(redis_server.port, kafka_server.port, model_path)
    r = create_app(settings).test_client().get("/v1/models")
    assert r.status_code == 503 and "no model is registered yet" in r.json["detail"]


def _sample(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_predictions_and_queue_wait(client):
    before = client.get("/metrics").get_data(as_text=True)
    for _ in range(3):
        assert client.post("/v1/predict", json={"text": "I love it"}).status_code == 200
    client.post("/v1/predict", json={"text": ""})
    after = client.get("/metrics").get_data(as_text=True)
    delta = lambda name, **kw: _sample(after, name, **kw) - _sample(before, name, **kw)  # noqa: E731
    assert delta("mlapi_http_requests_total", endpoint="/v1/predict", status="200") == 3
    assert delta("mlapi_http_requests_total", endpoint="/v1/predict", status="400") == 1
    assert delta("mlapi_predictions_total") == 3
    assert delta("mlapi_queue_wait_seconds_count") == 3
    assert delta("mlapi_http_request_duration_seconds_count", endpoint="/v1/predict") == 4


def test_openapi_documents_every_route(client, app):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    documented = set(spec["paths"])
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in documented, f"{path} is missing from /openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {path} undocumented"


def test_openapi_is_a_valid_document(client):
    from jsonschema import Draft202012Validator

    spec = client.get("/openapi.json").json
    # every component schema is itself a valid JSON Schema
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, ops in spec["paths"].items():
        for op in ops.values():
            for status, response in op["responses"].items():
                assert response["description"], f"{path} {status}"
                if int(status) >= 400 and path.startswith("/v1"):
                    assert "application/problem+json" in response["content"]
