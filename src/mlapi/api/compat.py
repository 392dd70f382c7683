"""The course exercise's endpoints, kept so its clients, tests and locustfile work unchanged.

* ``POST /predict?text=...`` -> ``{"success", "text", "prediction": "Positivo"|..., "score"}``
* ``GET /`` the page; ``POST /`` with the form field ``text_data`` -> the page with the result.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template, request

from ..contracts import COURSE_LABELS, MAX_TEXT_CHARS, validate_course_text
from ..kafka_bus import QueueUnavailable
from ..redis_store import StoreUnavailable
from . import auth, jobs
from .problems import Problem

bp = Blueprint("compat", __name__)
_FAILED = {"success": False, "prediction": None, "score": None}


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


@bp.route("/", methods=["GET", "POST"])
def page():
    if request.method == "GET":
        return _page()
    if auth.enabled():
        token = request.form.get("token") or auth.bearer()
        try:
            g.client = auth.authenticate(token, "/")
        except Problem as exc:
            error = exc.detail if token else "Enter an API token (with the predict scope)."
            return _page(text=request.form.get("text_data", ""), error=error), exc.status
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
