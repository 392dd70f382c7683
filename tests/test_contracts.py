import json

import pytest

from mlapi.contracts import (
    LABELS,
    JobResult,
    PredictJob,
    ValidationFailed,
    prediction,
    validate_course_text,
    validate_predict_request,
)


@pytest.mark.parametrize("body, expected", [
    ({"text": "hello"}, (["hello"], False)),
    ({"texts": ["a", "b"]}, (["a", "b"], True)),
    ({"texts": ["only one"]}, (["only one"], True)),
    ({"text": "x" * 5000}, (["x" * 5000], False)),
    ({"text": "  ñandú, ¿qué tal?  "}, (["  ñandú, ¿qué tal?  "], False)),
])
def test_valid_bodies(body, expected):
    assert validate_predict_request(body) == expected


@pytest.mark.parametrize("body, detail", [
    ({}, 'send exactly one of "text"'),
    ([], "body must be a JSON object"),
    ("text", "body must be a JSON object"),
    (None, "body must be a JSON object"),
    ({"text": ""}, "text must not be empty"),
    ({"text": "   \n\t"}, "text must not be empty"),
    ({"text": 42}, "text must be a string"),
    ({"text": None}, "text must be a string"),
    ({"text": "x" * 5001}, "text is longer than 5000 characters"),
    ({"texts": []}, "texts must hold at least one text"),
    ({"texts": ["ok"] * 65}, "texts holds more than 64 texts"),
    ({"texts": "not a list"}, "texts must be a list of strings"),
    ({"texts": ["ok", ""]}, "texts[1] must not be empty"),
    ({"texts": ["ok", 7]}, "texts[1] must be a string"),
    ({"text": "a", "texts": ["b"]}, 'send exactly one of "text"'),
    ({"txt": "typo"}, "unknown field(s) 'txt'"),
])
def test_invalid_bodies_name_the_problem(body, detail):
    with pytest.raises(ValidationFailed) as err:
        validate_predict_request(body)
    assert detail in str(err.value)


@pytest.mark.parametrize("text, ok", [
    ("hola", True), ("", False), ("   ", False), (None, False), ("y" * 5001, False)])
def test_course_text_rule(text, ok):
    assert (validate_course_text(text) is not None) == ok


def test_prediction_label_is_the_argmax_and_score_is_positivity():
    p = prediction("id1", {"negative": 0.1, "neutral": 0.3, "positive": 0.6}, "v1")
    assert p["label"] == "positive"
    assert p["score"] == pytest.approx(0.75)
    assert set(p["probabilities"]) == set(LABELS)
    neg = prediction("id2", {"negative": 0.8, "neutral": 0.2, "positive": 0.0}, "v1")
    assert neg["label"] == "negative" and neg["score"] == pytest.approx(0.1)


def test_job_round_trips_through_bytes():
    job = PredictJob.for_texts(["a", "b"], deadline=123.5, request_id="r1", batch=True)
    back = PredictJob.from_bytes(job.to_bytes())
    assert back == job
    assert [i["text"] for i in back.items] == ["a", "b"]
    assert job.job_id not in {i["id"] for i in job.items}


def test_single_job_id_is_the_prediction_id():
    job = PredictJob.for_texts(["a"], deadline=1.0)
    assert job.job_id == job.items[0]["id"] and not job.batch


@pytest.mark.parametrize("raw", [
    b"not json", b"{}", json.dumps({"job": "x", "deadline": 1, "items": [{"id": 1}]}).encode(),
    json.dumps({"job": "x", "deadline": "soon", "items": []}).encode(), b"[]"])
def test_malformed_jobs_are_rejected(raw):
    with pytest.raises(ValueError):
        PredictJob.from_bytes(raw)


def _job() -> PredictJob:
    return PredictJob(items=[{"id": "p1", "text": "a"}, {"id": "p2", "text": "b"}], deadline=20.0,
                      job_id="j1", enqueued=10.0, batch=True, owner="key")


@pytest.mark.parametrize(("make", "stored"), [
    (lambda job: JobResult.done(job, [{"positive": 1.0}, {"negative": 0.7, "neutral": 0.3}], "v9",
                                "w1", picked=10.25),
     {"v": 1, "job": "j1", "status": "done", "owner": "key", "model_version": "v9", "batch": True,
      "queued_s": 0.25, "worker": "w1", "predictions": [
          prediction("p1", {"positive": 1.0}, "v9"),
          prediction("p2", {"negative": 0.7, "neutral": 0.3}, "v9")]}),
    (lambda job: JobResult.expired(job, now=21.5),
     {"v": 1, "job": "j1", "status": "expired", "owner": "key", "queued_s": 11.5}),
    (lambda job: JobResult.error(job, "RuntimeError"),
     {"v": 1, "job": "j1", "status": "error", "owner": "key", "detail": "RuntimeError"}),
], ids=["done", "expired", "error"])
def test_job_result_stored_form(make, stored):
    # What the worker writes to Redis and the API reads back: the same keys as schema v1 had.
    assert make(_job()).to_dict() == stored


def test_job_result_done_never_reports_negative_queueing():
    # A worker's clock a little behind the API's must not make queued_s negative.
    assert JobResult.done(_job(), [{}, {}], "v", "w", picked=9.0).queued_s == 0.0
