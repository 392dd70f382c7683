"""POST /v1/predict and GET /v1/jobs/<id> against a real Redis, broker and worker."""

import time

import pytest
from jsonschema import validate

from mlapi.api import create_app
from mlapi.api.resources import close_all
from mlapi.contracts import PREDICTION_SCHEMA
from mlapi.redis_store import Store

from .conftest import make_settings, start_worker, wait_for

PROBLEM = "application/problem+json"


def test_single_prediction(client):
    r = client.post("/v1/predict", json={"text": "I love this phone, it is wonderful"})
    assert r.status_code == 200
    validate(r.json, PREDICTION_SCHEMA)
    assert r.json["label"] == "positive" and r.json["score"] > 0.5
    assert r.headers["X-Request-ID"]


def test_batch_keeps_input_order(client):
    texts = ["I love it, wonderful", "I hate it, terrible and awful", "I love it, wonderful"]
    r = client.post("/v1/predict", json={"texts": texts})
    assert r.status_code == 200
    preds = r.json["predictions"]
    assert len(preds) == 3 and len({p["id"] for p in preds}) == 3
    for p in preds:
        validate(p, PREDICTION_SCHEMA)
    assert [p["label"] for p in preds] == ["positive", "negative", "positive"]
    assert preds[0]["probabilities"] == preds[2]["probabilities"]


def test_a_batch_of_one_is_still_a_batch(client):
    r = client.post("/v1/predict", json={"texts": ["just one"]})
    assert r.status_code == 200 and len(r.json["predictions"]) == 1


def test_spanish_gets_a_valid_answer(client):
    r = client.post("/v1/predict", json={"text": "¡Qué maravilla! Me encanta, gracias"})
    assert r.status_code == 200
    validate(r.json, PREDICTION_SCHEMA)


def test_async_job_then_poll(client):
    r = client.post("/v1/predict?wait=false", json={"text": "what a great day"})
    assert r.status_code == 202
    location = r.headers["Location"]
    assert location == f"/v1/jobs/{r.json['id']}"
    for _ in range(100):
        got = client.get(location)
        if got.status_code == 200:
            break
        assert got.status_code == 202 and got.json["status"] == "pending"
        time.sleep(0.05)
    assert got.status_code == 200
    assert got.json["id"] == r.json["id"] and got.json["label"] in {"positive", "neutral", "negative"}


def test_async_batch_job(client):
    r = client.post("/v1/predict?wait=false", json={"texts": ["a good one", "a bad one"]})
    assert r.status_code == 202
    for _ in range(100):
        got = client.get(r.headers["Location"])
        if got.status_code == 200:
            break
        time.sleep(0.05)
    assert len(got.json["predictions"]) == 2


@pytest.mark.parametrize("job_id", ["0" * 32, "f" * 32, "not-a-job", "G" * 32])
def test_unknown_job_is_404(client, job_id):
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 404 and r.mimetype == PROBLEM
    assert "no job" in r.json["detail"]


@pytest.mark.parametrize("body, detail", [
    ({"text": ""}, "text must not be empty"),
    ({"text": 3}, "text must be a string"),
    ({"texts": ["a", None]}, "texts[1] must be a string"),
    ({"texts": ["a"] * 65}, "more than 64"),
    ({"text": "x" * 5001}, "longer than 5000"),
    ({}, 'exactly one of "text"'),
    ([1, 2], "must be a JSON object"),
])
def test_bad_bodies_are_400_problems(client, body, detail):
    r = client.post("/v1/predict", json=body)
    assert r.status_code == 400 and r.mimetype == PROBLEM
    assert detail in r.json["detail"]
    assert r.json["status"] == 400 and r.json["title"] == "Bad Request"


@pytest.mark.parametrize("data, content_type, status, detail", [
    (b'{"text": "unterminated', "application/json", 400, "not valid JSON at line 1"),
    (b"", "application/json", 400, "body is empty"),
    (b"\xff\xfe\x00garbage", "application/json", 400, "not UTF-8"),
    (b"[" * 100000 + b"]" * 100000, "application/json", 400, "not valid JSON"),
    (b"text=hello", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
    (b'{"text": "hi"}', "text/plain", 415, "application/json"),
])
def test_unreadable_bodies(client, data, content_type, status, detail):
    r = client.post("/v1/predict", data=data, content_type=content_type)
    assert r.status_code == status and r.mimetype == PROBLEM
    assert detail in r.json["detail"]


def test_body_over_one_mebibyte_is_413(client):
    r = client.post("/v1/predict", data=b'{"text": "' + b"a" * (1 << 20) + b'"}',
                    content_type="application/json")
    assert r.status_code == 413 and r.mimetype == PROBLEM
    assert "larger than 1048576 bytes" in r.json["detail"]


def test_bad_wait_flag(client):
    r = client.post("/v1/predict?wait=maybe", json={"text": "x"})
    assert r.status_code == 400 and "wait must be true or false" in r.json["detail"]


def test_wrong_method_is_a_problem(client):
    r = client.get("/v1/predict")
    assert r.status_code == 405 and r.mimetype == PROBLEM and "POST" in r.headers["Allow"]


def test_a_wedged_worker_means_504_in_time(redis_server, kafka_server, model_path):
    # A worker that beats but never consumes (a topic nobody reads): the API must give up at
    # its deadline, not hang.
    settings = make_settings(redis_server.port, kafka_server.port, model_path, predict_timeout=0.5)
    store = Store(settings)
    store.heartbeat("wedged", {"pid": 0, "partitions": []})
    client = create_app(settings).test_client()
    started = time.monotonic()
    r = client.post("/v1/predict", json={"text": "anyone there?"})
    elapsed = time.monotonic() - started
    store.forget_worker("wedged")
    store.close()
    assert r.status_code == 504 and r.mimetype == PROBLEM
    assert "MLAPI_PREDICT_TIMEOUT" in r.json["detail"]
    assert 0.4 < elapsed < 2.0


def test_no_live_worker_is_503_at_once_and_async_jobs_wait_for_one(redis_server, kafka_server,
                                                                   model_path, tmp_path):
    settings = make_settings(redis_server.port, kafka_server.port, model_path, predict_timeout=5.0)
    app = create_app(settings)
    client = app.test_client()
    assert client.get("/readyz").json["workers"] == 0  # also connects Redis and Kafka
    started = time.monotonic()
    r = client.post("/v1/predict", json={"text": "anyone there?"})
    elapsed = time.monotonic() - started
    assert r.status_code == 503 and r.mimetype == PROBLEM
    assert r.headers["Retry-After"] == "5" and "no prediction worker" in r.json["detail"]
    assert elapsed < 0.1, elapsed
    course = client.post("/predict?text=hola")
    assert course.status_code == 503 and course.json["success"] is False
    assert "no prediction worker" in course.json["detail"] and course.headers["Retry-After"]

    queued = client.post("/v1/predict?wait=false", json={"text": "I love it, wonderful"})
    assert queued.status_code == 202
    worker = start_worker(settings, tmp_path)
    try:
        def answered():
            got = client.get(queued.headers["Location"])
            return got if got.status_code == 200 else None
        assert wait_for(answered, 60, "the queued job answered").json["label"] == "positive"
        r = client.get("/readyz")
        assert r.json["workers"] == 1 and r.json["serving"] is True
    finally:
        worker.stop()
        close_all(app)


def test_a_job_past_its_deadline_is_skipped_and_reported(client, settings):
    # Put a job on the queue the way the API does, but already late.
    from mlapi.contracts import PredictJob
    from mlapi.kafka_bus import Producer
    from mlapi.redis_store import Store

    store, producer = Store(settings), Producer(settings)
    try:
        expired_before = store.expired_count()
        job = PredictJob.for_texts(["too late"], deadline=time.time() - 1)
        store.mark_pending(job.job_id, 60)
        producer.send(settings.predict_topic, job.job_id, job.to_bytes(), timeout=3)
        for _ in range(100):
            r = client.get(f"/v1/jobs/{job.job_id}")
            if r.status_code != 202:
                break
            time.sleep(0.05)
        assert r.status_code == 504 and r.mimetype == PROBLEM
        assert "past its deadline" in r.json["detail"]
        assert store.expired_count() == expired_before + 1
    finally:
        producer.close()
        store.close()


@pytest.mark.parametrize("url", ["/v1/predict?wiat=false", "/v1/predict?wait=true&x=1"])
def test_unknown_query_parameters_are_named(client, url):
    r = client.post(url, json={"text": "x"})
    assert r.status_code == 400 and r.mimetype == PROBLEM
    assert "unknown query parameter" in r.json["detail"] and "wait" in r.json["detail"]
