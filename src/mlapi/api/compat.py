"""The course exercise's endpoints, kept so its clients, tests and locustfile work unchanged.

* ``POST /predict?text=...`` -> ``{"success", "text", "prediction": "Positivo"|..., "score"}``
* ``GET /`` the page; ``POST /`` with the form field ``text_data`` -> the page with the result.
* ``GET /feedback``; ``POST /feedback`` with the form field ``report`` (the text whose answer
  was wrong) -> 200, the page. Kept as a flagged, unlabeled correction. The page's own form
  also sends ``id``, ``verdict`` (right/wrong) and ``label``, which make it a real correction.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template, request

from ..contracts import COURSE_LABELS, LABELS, MAX_TEXT_CHARS, FeedbackMessage, validate_course_text
from ..kafka_bus import QueueUnavailable
from ..redis_store import StoreUnavailable
from . import auth, feedback, jobs
from .predict import JOB_ID
from .problems import Problem

bp = Blueprint("compat", __name__)
_FAILED = {"success": False, "prediction": None, "score": None}
# The /feedback form's fields (as /openapi.json declares them): each is one string, sent at most once.
FEEDBACK_FIELDS = ("report", "id", "verdict", "label", "token")


@bp.post("/predict")
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


def _form_auth(rule: str, scope: str, text: str):
    """None when the form may go on; else the page with the error, and its status."""
    if not auth.enabled():
        return None
    token = request.form.get("token") or auth.bearer()
    try:
        g.client = auth.authenticate(token, rule)
    except Problem as exc:
        error = exc.detail if token else f"Enter an API token (with the {scope} scope)."
        return _page(text=text, error=error), exc.status
    return None


@bp.route("/", methods=["GET", "POST"])
def page():
    if request.method == "GET":
        return _page()
    refused = _form_auth("/", "predict", request.form.get("text_data", ""))
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
    refused = _form_auth("/feedback", "feedback", report)
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
