"""POST /v1/feedback and GET /v1/feedback/stats: corrections in, counts out.

A correction is answered 202 only once the broker has it (acks=all on the feedback topic,
the log of record); the feedback service stores and counts it from there.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, request

from ..contracts import (
    FEEDBACK_REQUEST_SCHEMA,
    LABELS,
    FeedbackMessage,
    ValidationFailed,
    validate_feedback_request,
)
from . import jobs, resources, spec
from .predict import DOWN, NOT_JSON, RATE_LIMITED, TOO_LARGE, json_body
from .problems import Problem

bp = Blueprint("feedback", __name__, url_prefix="/v1/feedback")

SCHEMAS = {
    "FeedbackRequest": FEEDBACK_REQUEST_SCHEMA,
    "FeedbackReceipt": {"type": "object", "required": ["id", "status", "label"],
                        "properties": {"id": {"type": "string"}, "status": {"const": "received"},
                                       "label": {"enum": list(LABELS)},
                                       "prediction_id": {"type": ["string", "null"]}}},
    # The feedback service's counts as it publishes them (feedback/db.py stats()).
    "FeedbackStats": {
        "type": "object",
        "required": ["received", "accepted", "held", "flagged", "rejected", "by_label"],
        "properties": {**{k: {"type": "integer"} for k in ("received", "accepted", "held", "flagged",
                                                            "rejected", "duplicate", "clients")},
                       "by_label": {"type": "object", "additionalProperties": {"type": "integer"}},
                       "last_received": {"type": ["string", "null"]},
                       "updated": {"type": "string"}}},
}


def client_name() -> str:
    """Whose correction this is: the API key's name, or the address when auth is off."""
    client = g.get("client")
    return client.name if client else f"addr:{request.remote_addr}"


def recent_prediction(pred_id: str) -> dict | None:
    """The prediction with its text, if it is recent and the caller may see it."""
    pred = resources.store().prediction(pred_id)
    client = g.get("client")
    if pred is None or (client is not None and pred.get("owner") != client.name):
        return None  # another key's prediction is answered like one that does not exist
    return pred


def send(message: FeedbackMessage) -> None:
    settings = current_app.config["MLAPI_SETTINGS"]
    resources.producer().send(settings.feedback_topic, message.partition_key,
                              message.to_bytes(), timeout=3.0)


def for_prediction(pred_id: str, pred: dict, label: str | None, source: str) -> FeedbackMessage:
    return FeedbackMessage(text=pred["text"], label=label, client=client_name(), source=source,
                           prediction={"id": pred_id, "label": pred["label"],
                                       "probabilities": pred["probabilities"],
                                       "model_version": pred["model_version"]},
                           request_id=g.get("request_id", ""))


@bp.post("")
@spec.operation(
    "POST", "feedback", "Correct a prediction (by its id) or give the right label for a text",
    access=spec.KEY, scope="feedback",
    body=spec.json_body("FeedbackRequest", {
        "by_id": {"id": "3f2b8c9d0e1f4a5b6c7d8e9f0a1b2c3d", "label": "negative"},
        "by_text": {"text": "el servicio fue pésimo", "label": "negative"}}),
    responses={
        "202": spec.json_response("The broker has the correction; the feedback service will judge "
                                  "and store it", "FeedbackReceipt"),
        "400": "Malformed JSON, both or neither of id and text, a label that is not one of "
               + ", ".join(LABELS),
        "404": "Unknown prediction id, or older than MLAPI_FEEDBACK_WINDOW",
        "413": TOO_LARGE,
        "415": NOT_JSON,
        "429": RATE_LIMITED,
        "503": DOWN,
    })
def submit():
    try:
        body = validate_feedback_request(json_body())
    except ValidationFailed as exc:
        raise Problem(400, "Bad Request", str(exc)) from None
    jobs.charge(1)
    label = body["label"]
    if "id" in body:
        pred = recent_prediction(body["id"])
        if pred is None:
            window = current_app.config["MLAPI_SETTINGS"].feedback_window
            raise Problem(404, "Not Found",
                          f"no prediction {body['id']}: unknown, or older than {window} s "
                          "(MLAPI_FEEDBACK_WINDOW); send {\"text\", \"label\"} instead")
        message = for_prediction(body["id"], pred, label, "api")
    else:
        message = FeedbackMessage(text=body["text"], label=label, client=client_name(),
                                  request_id=g.get("request_id", ""))
    send(message)
    answer = {"id": message.feedback_id, "status": "received", "label": label,
              "prediction_id": body.get("id")}
    return answer, 202


@bp.get("/stats")
@spec.operation(
    "GET", "feedbackStats",
    "Counts of corrections: received, accepted, held, flagged, rejected, by label", access=spec.KEY,
    responses={"200": spec.json_response("The feedback service's counts", "FeedbackStats"),
               "503": "Redis unreachable, or the feedback service has not published counts"})
def stats():
    counts = resources.store().feedback_stats()
    if counts is None:
        raise Problem(503, "Service Unavailable",
                      "the feedback service has not published counts yet; is it running "
                      "(mlapi feedback serve)?", {"Retry-After": "5"})
    return counts
