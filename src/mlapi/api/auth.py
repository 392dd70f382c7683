"""Bearer-token authentication and scopes for the API (on when MLAPI_API_KEYS_FILE is set).

Who may call a route is declared on the route itself (``@spec.operation(access=..., scope=...)``),
the same declaration /openapi.json is written from: ``/healthz``, ``/readyz``, ``/metrics``,
``/openapi.json``, ``GET /`` and ``GET /feedback``, and the Open Inference Protocol's ``/v2``
and ``/v2/health/*``, are open for probes, Prometheus and people; every ``/v1/*`` path,
``/v2/models/*`` and the course's ``/predict`` need a token, and the page's forms need one in
their ``token`` field.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, request

from ..auth import KeyRing, KeysFileError
from . import spec
from .problems import Problem

log = logging.getLogger("mlapi.api")


def enabled() -> bool:
    return "mlapi.keys" in current_app.extensions


def _challenge(detail: str, error: str | None = None) -> Problem:
    header = 'Bearer realm="mlapi"' + (f', error="{error}"' if error else "")
    return Problem(401, "Unauthorized", detail, {"WWW-Authenticate": header})


def required() -> spec.Operation | None:
    """The operation the current request is for, None outside our routes."""
    return spec.of(current_app, request.endpoint, request.method)


def authenticate(token: str | None, scope: str | None):
    """The caller's key, holding ``scope`` when one is named, or a 401/403 Problem."""
    if not token:
        raise _challenge("this endpoint needs 'Authorization: Bearer <token>'; "
                         "create one with `mlapi tokens create`")
    try:
        key = current_app.extensions["mlapi.keys"].find(token)
    except KeysFileError as exc:
        # An operator's mistake, not the caller's: say so (and log it), never a bare 500.
        log.error("cannot check tokens: %s", exc)
        raise Problem(503, "Service Unavailable", "the API keys file cannot be read, so no token "
                      "can be checked; the operator has been told in the log",
                      {"Retry-After": "30"}) from None
    if key is None:
        raise _challenge("the token is not valid (unknown or revoked)", "invalid_token")
    if scope and scope not in key.scopes:
        raise Problem(403, "Forbidden", f"the token {key.name!r} lacks the {scope!r} scope",
                      {"WWW-Authenticate": f'Bearer realm="mlapi", error="insufficient_scope", '
                                           f'scope="{scope}"'})
    return key


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def init_app(app: Flask, settings) -> None:
    if not settings.api_keys_file:
        log.warning("AUTHENTICATION IS OFF: anyone who can reach this API can use it. "
                    "Set MLAPI_API_KEYS_FILE (see `mlapi tokens create`).")
        return
    app.extensions["mlapi.keys"] = KeyRing(settings.api_keys_file)

    @app.before_request
    def _authenticate():
        g.client = None
        op = required()
        if op is not None and op.access in (spec.OPEN, spec.PAGE):
            return  # the pages check their form's token themselves, to answer with the page
        if request.url_rule is None and not request.path.startswith("/v1/"):
            return  # an unknown path outside /v1: a plain 404
        # Under /v1, a path or method we do not serve needs a key too: it tells nothing to strangers.
        g.client = authenticate(bearer(), op.scope if op else None)
