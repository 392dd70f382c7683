"""GET /openapi.json: OpenAPI 3.1 for every endpoint and every error it can answer.

The document is assembled once, when the app is built, from what each route declares with
``@spec.operation`` and the schemas each blueprint module publishes (``SCHEMAS``); the request
schemas among them are the contracts' own, so what is published is what is validated.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, request

from .. import __version__
from . import spec
from .problems import Problem

bp = Blueprint("openapi", __name__)
EXTENSION = "mlapi.openapi"
INFO = {
    "title": "mlapi",
    "version": __version__,
    "description": "Sentiment analysis (negative / neutral / positive). Every error is "
                   "`application/problem+json` (RFC 9457) with a human `detail`.",
}


def init_app(app: Flask, schemas: dict[str, dict]) -> None:
    """Build the document from the app's routes (raises if one is undeclared)."""
    app.extensions[EXTENSION] = spec.build(app, INFO, schemas)


@bp.get("/openapi.json")
@spec.operation("GET", "openapi", "This document",
                responses={"200": {"description": "OpenAPI 3.1", "content": {
                    "application/json": {"schema": {"type": "object"}}}}})
def openapi():
    return current_app.extensions[EXTENSION]


@bp.before_app_request
def _reject_unknown_query_parameters():
    # A typo such as ?wiat=false should be told, not silently ignored.
    op = spec.of(current_app, request.endpoint, request.method)
    if op is None:
        return
    known = op.query_parameters()
    unknown = sorted(set(request.args) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise Problem(400, "Bad Request", f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
                                          f"this endpoint takes: {allowed}")
