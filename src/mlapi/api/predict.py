"""POST /v1/predict and GET /v1/jobs/<id>: the JSON prediction API."""

from __future__ import annotations

import json
import re

from flask import Blueprint, g, request, url_for

from ..contracts import PREDICT_REQUEST_SCHEMA, PREDICTION_SCHEMA, ValidationFailed, validate_predict_request
from . import jobs, resources, spec
from .problems import Problem

bp = Blueprint("predict", __name__, url_prefix="/v1")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")  # as /openapi.json lists them


def json_body() -> object:
    """The request's JSON body, or a 400/415 Problem saying what is wrong with it."""
    if request.mimetype and request.mimetype != "application/json" \
            and not request.mimetype.endswith("+json"):
        raise Problem(415, "Unsupported Media Type",
                      f"send the body as JSON with 'Content-Type: application/json' "
                      f"(got {request.mimetype!r})")
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH applies here (413)
    if not raw.strip():
        raise Problem(400, "Bad Request", 'the body is empty; send {"text": "..."}')
    try:
        # Decoded here: json.loads(bytes) would guess UTF-16/32 from a byte-order mark.
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Problem(400, "Bad Request", "the body is not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise Problem(400, "Bad Request", f"the body is not valid JSON{where}") from None


def wait_flag() -> bool:
    raw = request.args.get("wait", "true")
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise Problem(400, "Bad Request", f"query parameter wait must be true or false, got {raw!r}")


WAIT_VALUES = [*_TRUE, *_FALSE]

# Answers several routes give, worded once.
RATE_LIMITED = "MLAPI_RATE_LIMIT reached for this key (or address); wait Retry-After seconds"
DOWN = "Redis or Kafka is unreachable; retry after `Retry-After` seconds"
TOO_LARGE = "Body larger than 1 MiB"
NOT_JSON = "Body not sent as application/json"
_PREDICTIONS = {"description": "", "content": {"application/json": {"schema": {"oneOf": [
    spec.ref("Prediction"), spec.ref("BatchPrediction")]}}}}

SCHEMAS = {
    "PredictRequest": PREDICT_REQUEST_SCHEMA,
    "Prediction": PREDICTION_SCHEMA,
    "BatchPrediction": {"type": "object", "required": ["predictions"],
                        "properties": {"predictions": {"type": "array",
                                                       "items": spec.ref("Prediction")}}},
    "Pending": {"type": "object", "required": ["id", "status"],
                "properties": {"id": {"type": "string"}, "status": {"const": "pending"},
                               "location": {"type": "string"}}},
}


@bp.post("/predict")
@spec.operation(
    "POST", "predict", "Predict the sentiment of one text or a batch of up to 64",
    access=spec.KEY, scope="predict",
    parameters=({"name": "wait", "in": "query", "required": False,
                 "description": "false: answer 202 at once and poll Location",
                 "schema": {"type": "string", "enum": WAIT_VALUES, "default": "true"}},),
    body=spec.json_body("PredictRequest", {"one": {"text": "I love this phone"},
                                           "batch": {"texts": ["great service", "it broke again"]}}),
    responses={
        "200": {**_PREDICTIONS, "description": "The prediction (or predictions, in input order)"},
        "202": spec.json_response("Queued (wait=false); poll the Location header", "Pending"),
        "400": "Malformed JSON, a missing or wrong-typed field, an empty or too long text",
        "413": TOO_LARGE,
        "415": NOT_JSON,
        "429": RATE_LIMITED,
        "503": "Redis or Kafka is unreachable, or (wait=true) no worker is serving; "
               "retry after `Retry-After` seconds, or queue with wait=false",
        "504": "No prediction before the deadline (MLAPI_PREDICT_TIMEOUT)",
    })
def predict():
    wait = wait_flag()
    try:
        texts, batch = validate_predict_request(json_body())
    except ValidationFailed as exc:
        raise Problem(400, "Bad Request", str(exc)) from None
    job, result = jobs.submit(texts, batch=batch, wait=wait)
    if result is None:
        location = url_for("predict.job", job_id=job.job_id)
        return {"id": job.job_id, "status": "pending", "location": location}, 202, \
            {"Location": location}
    return jobs.answer(result)


@bp.get("/jobs/<job_id>")
@spec.operation(
    "GET", "getJob", "The result of a job queued with wait=false", access=spec.KEY, scope="predict",
    parameters=({"name": "job_id", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}},),
    responses={
        "200": {**_PREDICTIONS, "description": "The job's result"},
        "202": spec.json_response("Still queued", "Pending"),
        "404": "Unknown or expired job",
        "429": RATE_LIMITED,
        "503": DOWN,
        "504": "The job passed its deadline before a worker took it",
    })
def job(job_id: str):
    if not JOB_ID.match(job_id):
        raise Problem(404, "Not Found", f"no job {job_id!r}: job ids are 32 hex characters")
    jobs.charge(1)
    state, result, owner = resources.store().job_status(job_id)
    client = g.get("client")
    # Another key's job is answered exactly like a job that does not exist.
    if state == "unknown" or (client is not None and owner != client.name):
        raise Problem(404, "Not Found",
                      f"no job {job_id}: it never existed or its result expired")
    if state == "pending":
        location = url_for("predict.job", job_id=job_id)
        return {"id": job_id, "status": "pending", "location": location}, 202, \
            {"Location": location, "Retry-After": "1"}
    return jobs.answer(result)
