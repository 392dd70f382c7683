"""The course exercise's endpoints, kept so its clients, tests and locustfile work unchanged.

* ``POST /predict?text=...`` -> ``{"success", "text", "prediction": "Positivo"|..., "score"}``
* ``GET /`` the page; ``POST /`` with the form field ``text_data`` -> the page with the result.
* ``GET /feedback``; ``POST /feedback`` with the form field ``report`` (the text whose answer
  was wrong) -> 200, the page. Kept as a flagged, unlabeled correction. The page's own form
  also sends ``id``, ``verdict`` (right/wrong) and ``label``, which make it a real correction.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template, request

from ..contracts import (
    COURSE_LABELS,
    LABELS,
    MAX_TEXT_CHARS,
    NOT_BLANK,
    FeedbackMessage,
    validate_course_text,
)
from ..kafka_bus import QueueUnavailable
from ..redis_store import StoreUnavailable
from . import auth, feedback, jobs, spec
from .predict import JOB_ID
from .problems import Problem

bp = Blueprint("compat", __name__)
_FAILED = {"success": False, "prediction": None, "score": None}
# The /feedback form's fields (as /openapi.json declares them): each is one string, sent at most once.
FEEDBACK_FIELDS = ("report", "id", "verdict", "label", "token")
_COURSE_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS, "pattern": NOT_BLANK}

SCHEMAS = {
    "CoursePrediction": {"type": "object", "required": ["success", "text", "prediction", "score"],
                         "properties": {"success": {"const": True}, "text": {"type": "string"},
                                        "prediction": {"enum": ["Positivo", "Neutral", "Negativo"]},
                                        "score": {"type": "number", "minimum": 0, "maximum": 1}}},
    "CourseFailure": {"type": "object", "required": ["success", "prediction", "score"],
                      "properties": {"success": {"const": False}, "prediction": {"type": "null"},
                                     "score": {"type": "null"}, "detail": {"type": "string"}}},
}


def _pages(**answers: str) -> dict:
    return {code: spec.html_response(description) for code, description in answers.items()}


@bp.post("/predict")
@spec.operation(
    "POST", "coursePredict", "Course-exercise compatible prediction (text in the query string)",
    access=spec.KEY, scope="predict",
    parameters=({"name": "text", "in": "query", "required": True, "schema": _COURSE_TEXT},),
    responses={
        "200": spec.json_response("Prediction in the course's format", "CoursePrediction"),
        "400": {"description": "No usable text in the query string (course format), or an "
                               "unknown query parameter (problem+json)",
                "content": {"application/json": {"schema": spec.ref("CourseFailure")},
                            "application/problem+json": {"schema": spec.ref("Problem")}}},
        "429": spec.json_response("Rate limit reached", "CourseFailure"),
        "503": spec.json_response("Redis or Kafka unreachable, or no worker serving", "CourseFailure"),
        "504": spec.json_response("No prediction before the deadline", "CourseFailure"),
    })
def predict():
    # The course reads the text from the query string only; a JSON body does not count.
    text = validate_course_text(request.args.get("text"))
    if text is None:
        detail = (f"pass the text in the query string, 1 to {MAX_TEXT_CHARS} "
                  "characters: POST /predict?text=...")
        return jsonify({**_FAILED, "detail": detail}), 400
    try:
        _, result = jobs.submit([text], batch=False, wait=True)
        answer = jobs.answer(result)
    except (StoreUnavailable, QueueUnavailable, Problem) as exc:
        if isinstance(exc, Problem):
            return jsonify({**_FAILED, "detail": exc.detail}), exc.status, exc.headers
        return jsonify({**_FAILED, "detail": "the service is unavailable; retry shortly"}), 503, \
            {"Retry-After": "2"}
    return {"success": True, "text": text, "prediction": COURSE_LABELS[answer["label"]],
            "score": answer["score"], "label": answer["label"], "id": answer["id"],
            "model_version": answer["model_version"]}


def _page(**context) -> str:
    """The page, with a token field when authentication is on."""
    return render_template("index.html", needs_token=auth.enabled(), **context)


def _form_auth(text: str):
    """None when the form may go on; else the page with the error, and its status."""
    if not auth.enabled():
        return None
    token = request.form.get("token") or auth.bearer()
    scope = auth.required().scope  # as this route's @spec.operation declares it
    try:
        g.client = auth.authenticate(token, scope)
    except Problem as exc:
        error = exc.detail if token else f"Enter an API token (with the {scope} scope)."
        return _page(text=text, error=error), exc.status
    return None


@bp.route("/", methods=["GET", "POST"])
@spec.operation("GET", "page", "A page to try predictions", responses=_pages(**{"200": "HTML"}))
@spec.operation(
    "POST", "pagePredict", "The page's form (course compatible: field text_data)",
    access=spec.PAGE, scope="predict",
    body={"required": True, "content": {"application/x-www-form-urlencoded": {
        "schema": {"type": "object", "properties": {"text_data": _COURSE_TEXT},
                   "required": ["text_data"]}}}},
    responses=_pages(**{"200": "The page with the prediction", "400": "The page asking for a text",
                        "401": "The page asking for an API token",
                        "403": "The page saying the token lacks the predict scope",
                        "429": "The page saying the rate limit was reached",
                        "503": "The page saying the service is down",
                        "504": "The page saying the deadline passed"}))
def page():
    if request.method == "GET":
        return _page()
    refused = _form_auth(request.form.get("text_data", ""))
    if refused:
        return refused
    raw = request.form.get("text_data")
    text = validate_course_text(raw)
    if text is None:
        error = f"Write a text of 1 to {MAX_TEXT_CHARS} characters."
        return _page(text=raw or "", error=error), 400
    try:
        _, result = jobs.submit([text], batch=False, wait=True)
        answer = jobs.answer(result)
    except (StoreUnavailable, QueueUnavailable):
        return _page(text=text,
                               error="The service is unavailable right now; try again."), 503
    except Problem as exc:
        return _page(text=text,
                               error=exc.detail), exc.status, exc.headers
    return _page(text=text, result=answer,
                           course_label=COURSE_LABELS[answer["label"]])


@bp.route("/feedback", methods=["GET", "POST"])
@spec.operation("GET", "feedbackPage", "The page (course compatible)",
                responses=_pages(**{"200": "HTML"}))
@spec.operation(
    "POST", "feedbackForm",
    "Report a wrong answer (course field report) or mark a prediction right/wrong",
    access=spec.PAGE, scope="feedback",
    body={"required": False, "content": {"application/x-www-form-urlencoded": {
        # A form field is one string: typed so, not as a bare enum that would admit arrays and
        # objects no form can carry. Each field at most once, else 400.
        "schema": {"type": "object", "properties": {
            "report": {"type": "string", "description": "The text whose answer was wrong"},
            "id": {"type": "string", "description": "The prediction's id (the page sends it)"},
            "verdict": {"type": "string", "enum": ["", "right", "wrong"]},
            "label": {"type": "string", "enum": ["", *LABELS]},
            "token": {"type": "string"}},
            "description": "Each field at most once; a repeated field is answered 400"}}}},
    responses=_pages(**{"200": "The page thanking for the report",
                        "400": "The page asking for a valid label or verdict, or for each field once",
                        "401": "The page asking for an API token",
                        "403": "The page saying the token lacks the feedback scope",
                        "503": "The page saying the service is down"}))
def feedback_page():
    """The course's report form, and the page's "right / wrong, it is ..." form."""
    if request.method == "GET":
        return _page()
    form = request.form
    report = form.get("report", "")
    # A field sent twice (verdict=right&verdict=wrong) is ambiguous: refuse it rather than pick one.
    # Before authentication, since that reads the token field too.
    repeated = [name for name in FEEDBACK_FIELDS if len(form.getlist(name)) > 1]
    if repeated:
        fields = ", ".join(repeated)
        return _page(text=report, error=f"Send each field once; the form repeated: {fields}."), 400
    refused = _form_auth(report)
    if refused:
        return refused
    label = form.get("label") or None
    if label is not None and label not in LABELS:
        return _page(text=report, error=f"Pick one of {', '.join(LABELS)}."), 400
    verdict = form.get("verdict") or None
    if verdict not in (None, "right", "wrong"):
        return _page(text=report, error="The verdict must be right or wrong."), 400
    pred_id = form.get("id", "")
    try:
        pred = feedback.recent_prediction(pred_id) if JOB_ID.match(pred_id) else None
        if pred is not None:
            if verdict == "right":
                label = pred["label"]
            message = feedback.for_prediction(pred_id, pred, label, "page")
        else:
            text = validate_course_text(report)
            if text is None:
                return _page(notice="Nothing was reported: the form had no text.")
            if verdict == "right":
                return _page(text=text, notice="Thanks! (That prediction is too old to record.)")
            message = FeedbackMessage(text=text, label=label, client=feedback.client_name(),
                                      source="page" if verdict else "course-form",
                                      request_id=g.get("request_id", ""))
        feedback.send(message)
    except (StoreUnavailable, QueueUnavailable):
        return _page(text=report, error="The service is unavailable right now; try again."), 503
    if message.label is None:
        notice = "Thanks: reported as wrong. Someone can add the right label later."
    else:
        notice = f"Thanks: recorded as {message.label}. It will count at the next retraining."
    return _page(notice=notice)
