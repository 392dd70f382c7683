"""POST /v1/feedback, GET /v1/feedback/stats and the feedback forms, against the real Redis,
broker and worker: what the API answers, and what it puts on the feedback topic."""

from __future__ import annotations

import json
import uuid

import pytest
from kafka import KafkaConsumer

from mlapi import auth
from mlapi.api import create_app
from mlapi.api.resources import close_all
from mlapi.redis_store import Store

pytestmark = pytest.mark.integration


def on_topic(settings, feedback_id: str) -> dict:
    """The message the API sent, read back from the broker."""
    consumer = KafkaConsumer(settings.feedback_topic, bootstrap_servers=settings.kafka_bootstrap,
                             group_id=f"reader-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                             session_timeout_ms=3000, heartbeat_interval_ms=900,
                             consumer_timeout_ms=15000)
    try:
        for record in consumer:
            data = json.loads(record.value)
            if data["feedback_id"] == feedback_id:
                return data
    finally:
        consumer.close()
    raise AssertionError(f"feedback {feedback_id} is not on {settings.feedback_topic}")


def test_correct_a_prediction_by_id(client, settings):
    pred = client.post("/v1/predict", json={"text": "the battery died after one day"}).json
    r = client.post("/v1/feedback", json={"id": pred["id"], "label": "negative"})
    assert r.status_code == 202
    assert r.json["status"] == "received" and r.json["prediction_id"] == pred["id"]
    sent = on_topic(settings, r.json["id"])
    assert sent["text"] == "the battery died after one day" and sent["label"] == "negative"
    assert sent["prediction"]["label"] == pred["label"]
    assert sent["prediction"]["model_version"] == pred["model_version"]
    assert sent["client"] == "addr:127.0.0.1"


def test_correct_a_text(client, settings):
    r = client.post("/v1/feedback", json={"text": "qué día tan bonito", "label": "positive"})
    assert r.status_code == 202 and r.json["prediction_id"] is None
    assert on_topic(settings, r.json["id"])["prediction"] is None


def test_unknown_prediction_is_404(client):
    r = client.post("/v1/feedback", json={"id": "0" * 32, "label": "neutral"})
    assert r.status_code == 404 and "MLAPI_FEEDBACK_WINDOW" in r.json["detail"]


@pytest.mark.parametrize("body, detail", [
    ({"text": "ok", "label": "bad"}, "label must be one of"),
    ({"text": "ok"}, "label must be one of"),
    ({"label": "positive"}, 'exactly one of "id"'),
    ({"id": "0" * 32, "text": "ok", "label": "positive"}, 'exactly one of "id"'),
    ({"id": "xyz", "label": "positive"}, "32 hex characters"),
    ({"text": "   ", "label": "positive"}, "must not be empty"),
    ({"text": "x" * 5001, "label": "positive"}, "longer than 5000"),
    ({"text": "ok", "label": "positive", "extra": 1}, "unknown field(s) 'extra'"),
    ([], "must be a JSON object"),
], ids=["bad-label", "no-label", "neither", "both", "bad-id", "blank", "too-long", "extra", "list"])
def test_bad_feedback_is_400(client, body, detail):
    r = client.post("/v1/feedback", json=body)
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert detail in r.json["detail"]


def test_stats_come_from_the_feedback_service(client, settings):
    store = Store(settings)
    store.redis.delete(store.key("feedback", "stats"))
    r = client.get("/v1/feedback/stats")
    assert r.status_code == 503 and "mlapi feedback serve" in r.json["detail"]
    store.put_feedback_stats({"received": 3, "accepted": 2, "held": 0, "flagged": 1, "rejected": 0,
                              "duplicate": 0, "by_label": {"negative": 2}})
    store.close()
    assert client.get("/v1/feedback/stats").json["accepted"] == 2


def test_course_report_form_is_a_flagged_correction(client, settings):
    assert client.get("/feedback").status_code == 200
    r = client.post("/feedback", data={"report": "this answer was wrong"})
    assert r.status_code == 200 and "reported as wrong" in r.get_data(as_text=True)
    assert client.post("/feedback", data={}).status_code == 200  # the course posts it bare too


@pytest.mark.parametrize("form, label", [
    ({"verdict": "right"}, "predicted"),
    ({"verdict": "wrong", "label": "neutral"}, "neutral"),
    ({"verdict": "wrong", "label": ""}, None),
])
def test_the_page_marks_a_prediction_right_or_wrong(client, form, label):
    page = client.post("/", data={"text_data": "what a lovely morning"}).get_data(as_text=True)
    assert 'action="/feedback"' in page and 'name="verdict" value="wrong"' in page
    pred = client.post("/v1/predict", json={"text": "what a lovely morning"}).json
    r = client.post("/feedback", data={"id": pred["id"], "report": "what a lovely morning", **form})
    assert r.status_code == 200
    expected = pred["label"] if label == "predicted" else label
    text = r.get_data(as_text=True)
    assert (f"recorded as {expected}" in text) if expected else ("reported as wrong" in text)


def test_bad_verdict_or_label_on_the_form_is_400(client):
    assert client.post("/feedback", data={"report": "x", "label": "great"}).status_code == 400
    assert client.post("/feedback", data={"report": "x", "verdict": "maybe"}).status_code == 400


def test_feedback_needs_the_feedback_scope_and_the_own_prediction(settings, session_worker, tmp_path):
    keys = tmp_path / "keys.json"
    both = auth.create(keys, "alice", ["predict", "feedback"])
    only_predict = auth.create(keys, "bob", ["predict"])
    other = auth.create(keys, "carol", ["predict", "feedback"])
    app = create_app(settings.replace(api_keys_file=keys))
    client = app.test_client()
    try:
        bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
        pred = client.post("/v1/predict", json={"text": "nice"}, headers=bearer(both)).json
        body = {"id": pred["id"], "label": "positive"}
        assert client.post("/v1/feedback", json=body).status_code == 401
        assert client.post("/v1/feedback", json=body, headers=bearer(only_predict)).status_code == 403
        assert client.post("/v1/feedback", json=body, headers=bearer(other)).status_code == 404
        assert client.post("/v1/feedback", json=body, headers=bearer(both)).status_code == 202
        assert client.post("/feedback", data={"report": "x"}).status_code == 401
        assert client.post("/feedback", data={"report": "x", "token": both}).status_code == 200
    finally:
        close_all(app)
