"""The HTTP API: validates, queues jobs on Kafka, answers from Redis. It never loads the model."""

from __future__ import annotations

import uuid

from flask import Flask, g, request

from .. import tracing
from ..config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """The only way to build the app; ``settings`` default to ``Settings.from_env()``."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        MLAPI_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False

    from . import auth, compat, feedback, health, metrics, oip, openapi, predict, problems, resources

    tracing.instrument_app(app)  # the server span, when tracing.configure() turned it on
    problems.init_app(app)
    resources.init_app(app)
    metrics.init_app(app)
    auth.init_app(app, settings)
    schemas = dict(problems.SCHEMAS)
    for module in (predict, feedback, health, openapi, compat, oip):
        app.register_blueprint(module.bp)
        schemas.update(getattr(module, "SCHEMAS", {}))
    # After every route is registered (metrics registered its own in init_app above).
    openapi.init_app(app, schemas)

    @app.before_request
    def _request_id():
        # Carried on the Kafka message and echoed back, to follow one request through the logs.
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() \
            else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.mimetype == "text/html":
            # The page has inline CSS only, no scripts, and posts only to itself.
            response.headers["Content-Security-Policy"] = (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'")
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return app
