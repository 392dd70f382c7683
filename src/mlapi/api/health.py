"""Probes and model info: /healthz, /readyz, /v1/models."""

from __future__ import annotations

from flask import Blueprint

from . import resources
from .problems import Problem

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    # Liveness: the process answers. Dependencies are /readyz's business; restarting the API
    # because Redis is down would not bring Redis back.
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    checks = {"redis": resources.store().ping(), "kafka": resources.producer().ping()}
    if not all(checks.values()):
        down = ", ".join(name for name, ok in checks.items() if not ok)
        raise Problem(503, "Service Unavailable", f"not ready: {down} unreachable",
                      {"Retry-After": "2"}, checks=checks)
    return {"status": "ready", "checks": checks}


@bp.get("/v1/models")
def models():
    info = resources.store().model_info()
    if info is None:
        raise Problem(503, "Service Unavailable",
                      "no worker has published a model yet; start a worker (mlapi worker)",
                      {"Retry-After": "5"})
    keys = ("version", "created", "metrics", "corpus", "sha256", "sklearn_version", "train_rows")
    current = {k: info[k] for k in keys if k in info}
    return {"current": current}
