"""The Open Inference Protocol v2 routes (api/oip.py) against a real Redis, broker and worker.

tests/test_oip_clients.py drives the same routes with tritonclient and the KServe SDK.
"""

import json
import struct

import pytest
from jsonschema import validate

from mlapi import auth
from mlapi.api import create_app
from mlapi.api.resources import close_all
from mlapi.contracts import INFER_RESPONSE_SCHEMA, LABELS, MAX_BATCH_TEXTS
from mlapi.redis_store import Registry

INFER = "/v2/models/sentiment/infer"


def tensor(texts, shape=None, datatype="BYTES", **extra):
    return {"inputs": [{"name": "text", "datatype": datatype,
                        "shape": shape or [len(texts)], "data": texts, **extra}]}


def outputs(body) -> dict:
    return {o["name"]: o for o in body["outputs"]}


def test_infer_answers_labels_probabilities_and_version(client):
    r = client.post(INFER, json={"id": "req-1", **tensor(["I love it, wonderful",
                                                           "I hate it, terrible and awful"])})
    assert r.status_code == 200, r.json
    validate(r.json, INFER_RESPONSE_SCHEMA)
    out = outputs(r.json)
    assert out["label"]["data"] == ["positive", "negative"] and out["label"]["shape"] == [2]
    probs = out["probabilities"]
    assert probs["datatype"] == "FP32" and probs["shape"] == [2, len(LABELS)]
    rows = [probs["data"][i:i + 3] for i in (0, 3)]
    assert all(abs(sum(row) - 1) < 1e-3 for row in rows)
    assert rows[0][LABELS.index("positive")] > 0.5
    assert r.json["id"] == "req-1"
    assert r.json["model_version"] == Registry(client.application.config["MLAPI_SETTINGS"]).champion()
    assert len(out["prediction_id"]["data"]) == 2


def test_the_same_text_gets_the_same_answer_as_v1(client):
    text = "The room was clean and the staff were lovely"
    v1 = client.post("/v1/predict", json={"text": text}).json
    v2 = outputs(client.post(INFER, json=tensor([text])).json)
    assert v2["label"]["data"] == [v1["label"]]
    assert v2["probabilities"]["data"] == pytest.approx([v1["probabilities"][k] for k in LABELS])


@pytest.mark.parametrize("shape, data", [
    ([2, 1], [["good"], ["bad"]]),       # one text per row, as numpy [n, 1] arrays serialize
    ([2, 1], ["good", "bad"]),           # the same shape, data flattened (tritonclient's JSON)
    ([2], ["good", "bad"]),
])
def test_shapes_n_and_n_by_1(client, shape, data):
    r = client.post(INFER, json=tensor(data, shape=shape, parameters={"content_type": "str"}))
    assert r.status_code == 200, r.json
    assert outputs(r.json)["label"]["shape"] == [2]


def test_requested_outputs_only(client):
    r = client.post(INFER, json={**tensor(["fine"]), "outputs": [{"name": "label"}]})
    assert [o["name"] for o in r.json["outputs"]] == ["label"]


def test_a_version_being_served_and_the_champion_by_version(client):
    champion = Registry(client.application.config["MLAPI_SETTINGS"]).champion()
    r = client.post(f"/v2/models/sentiment/versions/{champion}/infer", json=tensor(["ok"]))
    assert r.status_code == 200 and r.json["model_version"] == champion


def test_binary_tensors_in_and_out(client):
    # Triton's binary tensor extension: JSON header, then each element as <u32 length><bytes>.
    texts = ["me encantó", "una porquería"]
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    head = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    r = client.post(INFER, data=head + raw, headers={
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.data[:300]
    n = int(r.headers["Inference-Header-Content-Length"])
    meta = json.loads(r.data[:n])
    at, values = n, {}
    for out in meta["outputs"]:
        size = out["parameters"]["binary_data_size"]
        values[out["name"]] = r.data[at:at + size]
        at += size
    assert at == len(r.data)
    probs = struct.unpack("<6f", values["probabilities"])
    assert abs(sum(probs[:3]) - 1) < 1e-3
    assert values["label"].count(b"\x00") >= 2  # two length-prefixed labels


@pytest.mark.parametrize("body, status, fragment", [
    (tensor([1.5], datatype="FP32"), 400, "must be BYTES"),
    (tensor(["a", "b"], shape=[3]), 400, "says 3 texts, the data holds 2"),
    (tensor(["a", "b"], shape=[1, 2]), 400, "must be [n] or [n, 1]"),
    (tensor(["a"], shape=[1, 1, 1]), 400, "must be [n] or [n, 1]"),
    (tensor(["   "]), 400, "inputs[0].data[0]"),
    (tensor(["x" * 5001]), 400, "inputs[0].data[0]"),
    (tensor(["a"] * (MAX_BATCH_TEXTS + 1), shape=[1]), 400, f"more than {MAX_BATCH_TEXTS}"),
    (tensor(["a"], parameters={"content_type": "pd"}), 400, "not supported"),
    ({"inputs": []}, 400, "at least one"),
    ({"inputs": tensor(["a"])["inputs"] * 2}, 400, "takes one input"),
    ({**tensor(["a"]), "outputs": [{"name": "score"}]}, 400, "no output 'score'"),
    ({"text": "hello"}, 400, "'inputs' is a required property"),
    ([1, 2], 400, "body must be a JSON object"),
])
def test_bad_requests_get_the_protocols_error(client, body, status, fragment):
    r = client.post(INFER, json=body)
    assert r.status_code == status
    assert r.mimetype == "application/json" and set(r.json) == {"error"}
    assert fragment in r.json["error"], r.json


@pytest.mark.parametrize("data, headers, fragment", [
    (b"{not json", {}, "not valid JSON"),
    (b"\xff\xfe", {}, "not UTF-8"),
    (b'{"inputs": []}', {"Inference-Header-Content-Length": "99"}, "length of the JSON part"),
])
def test_unreadable_bodies(client, data, headers, fragment):
    r = client.post(INFER, data=data, headers=headers)
    assert r.status_code == 400 and fragment in r.json["error"]


def test_binary_sizes_that_do_not_add_up(client):
    head = json.dumps(tensor([], shape=[1]) | {"inputs": [{
        "name": "text", "datatype": "BYTES", "shape": [1],
        "parameters": {"binary_data_size": 9}}]}).encode()
    r = client.post(INFER, data=head + b"\x05\x00\x00\x00ab",
                    headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and "binary_data_size is 9" in r.json["error"]


@pytest.mark.parametrize("path", ["/v2/models/nope", "/v2/models/nope/ready",
                                  "/v2/models/sentiment/versions/19990101T000000Z-0/ready"])
def test_missing_models_and_versions_are_404(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "error" in r.json


def test_infer_on_a_missing_model_is_404(client):
    r = client.post("/v2/models/nope/infer", json=tensor(["a"]))
    assert r.status_code == 404 and "serves 'sentiment'" in r.json["error"]


def test_unknown_v2_paths_and_methods_answer_in_the_protocols_shape(client):
    assert set(client.get("/v2/nothing").json) == {"error"}
    r = client.get(INFER)
    assert r.status_code == 405 and set(r.json) == {"error"} and "POST" in r.headers["Allow"]


def test_metadata_health_and_readiness(client):
    server = client.get("/v2").json
    assert server["name"] == "mlapi" and "binary_tensor_data" in server["extensions"]
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    meta = client.get("/v2/models/sentiment").json
    champion = Registry(client.application.config["MLAPI_SETTINGS"]).champion()
    assert champion in meta["versions"] and meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"]: o["shape"] for o in meta["outputs"]}["probabilities"] == [-1, 3]
    assert meta["parameters"]["labels"] == list(LABELS)
    by_version = client.get(f"/v2/models/sentiment/versions/{champion}").json
    assert by_version["versions"] == [champion]
    assert client.get("/v2/models/sentiment/ready").json == {"name": "sentiment", "ready": True}


def test_without_a_worker_readiness_and_infer_say_so(settings, model_path):
    # A fresh prefix: no worker beats there, no champion registered.
    from .conftest import make_settings
    lonely = make_settings(int(settings.redis_url.rsplit(":", 1)[1].split("/")[0]),
                           int(settings.kafka_bootstrap.rsplit(":", 1)[1]), model_path)
    app = create_app(lonely)
    try:
        client = app.test_client()
        r = client.get("/v2/health/ready")
        assert r.status_code == 503 and "no prediction worker" in r.json["error"]
        assert r.headers["Retry-After"]
        r = client.post(INFER, json=tensor(["a"]))
        assert r.status_code == 503 and "no model is registered" in r.json["error"]
    finally:
        close_all(app)


@pytest.fixture
def secured(settings, session_worker, tmp_path):
    path = tmp_path / "keys.json"
    tokens = {scope: auth.create(path, f"k-{scope}", [scope]) for scope in ("predict", "feedback")}
    app = create_app(settings.replace(api_keys_file=path))
    yield app.test_client(), tokens
    close_all(app)


def test_auth_scopes_on_v2(secured):
    client, tokens = secured
    r = client.post(INFER, json=tensor(["a"]))
    assert r.status_code == 401 and set(r.json) == {"error"}
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = client.post(INFER, json=tensor(["a"]), headers={"Authorization": f"Bearer {tokens['feedback']}"})
    assert r.status_code == 403 and "'predict' scope" in r.json["error"]
    r = client.post(INFER, json=tensor(["a"]), headers={"Authorization": f"Bearer {tokens['predict']}"})
    assert r.status_code == 200
    # Metadata needs any valid token; the health endpoints and /v2 stay open for probes.
    assert client.get("/v2/models/sentiment").status_code == 401
    assert client.get("/v2/models/sentiment",
                      headers={"Authorization": f"Bearer {tokens['feedback']}"}).status_code == 200
    for path in ("/v2", "/v2/health/live", "/v2/health/ready"):
        assert client.get(path).status_code == 200, path


def test_each_text_counts_against_the_rate_limit(settings, session_worker):
    app = create_app(settings.replace(rate_limit="3/minute"))
    try:
        client = app.test_client()
        assert client.post(INFER, json=tensor(["a", "b"])).status_code == 200
        r = client.post(INFER, json=tensor(["c", "d"]))
        assert r.status_code == 429 and r.headers["Retry-After"] and "rate limit" in r.json["error"]
    finally:
        close_all(app)
