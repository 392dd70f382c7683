"""RFC 9457 problem details: every error the API gives is one of these, never a traceback.

On the Open Inference Protocol's paths (/v2) the same errors take that protocol's shape,
``{"error": "..."}``, with the same status and headers.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from ..kafka_bus import QueueUnavailable
from ..redis_store import StoreUnavailable

log = logging.getLogger("mlapi.api")
PROBLEM_JSON = "application/problem+json"
DEPENDENCY_NAMES = {StoreUnavailable: "the results store (Redis)",
                    QueueUnavailable: "the job queue (Kafka)"}


SCHEMAS = {  # for /openapi.json: what problem_response writes off the /v2 paths
    "Problem": {"type": "object", "required": ["title", "status", "detail"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                               "status": {"type": "integer"}, "detail": {"type": "string"},
                               "instance": {"type": "string"}}},
}


def is_oip(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


class Problem(Exception):
    """Raise it anywhere in a view; the handler answers with problem+json."""

    def __init__(self, status: int, title: str, detail: str, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(status: int, title: str, detail: str, headers: dict | None = None, **extra):
    if is_oip(request.path):
        # The Open Inference Protocol's own error shape, which its clients read (api/oip.py).
        response = jsonify({"error": detail})
    else:
        response = jsonify({"type": "about:blank", "title": title, "status": status,
                            "detail": detail, "instance": request.path, **extra})
        response.mimetype = PROBLEM_JSON
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return problem_response(exc.status, exc.title, exc.detail, exc.headers, **exc.extra)

    def _dependency_down(exc):
        log.warning("503: %s", exc)
        return problem_response(503, "Service Unavailable",
                                f"{DEPENDENCY_NAMES[type(exc)]} is unreachable; retry shortly",
                                {"Retry-After": "2"})

    for exc_type in DEPENDENCY_NAMES:
        app.register_error_handler(exc_type, _dependency_down)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        detail = {
            404: f"no such endpoint: {request.method} {request.path}; see /openapi.json",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes",
        }.get(exc.code or 500, exc.description or exc.name)
        headers = {"Allow": exc.valid_methods and ", ".join(exc.valid_methods)} \
            if getattr(exc, "valid_methods", None) else None
        return problem_response(exc.code or 500, exc.name, detail, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # A bug of ours: log it with its traceback, tell the client nothing internal.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "Internal Server Error",
                                "mlapi failed to handle this request; it has been logged")
