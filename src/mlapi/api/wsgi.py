"""gunicorn's entry point: ``gunicorn -c python:mlapi.api.gunicorn_conf 'mlapi.api.wsgi:app()'``."""

from __future__ import annotations

import sys

from .. import logs, tracing
from ..config import Settings
from . import create_app


def app():
    """Settings are read here, at the entry point, and passed in."""
    settings = Settings.from_env()
    logs.configure(settings)
    tracing.configure("mlapi-api")  # here, in each gunicorn process: the exporter runs a thread
    return create_app(settings)


def gunicorn_argv() -> list[str]:
    """The command `mlapi api` execs (the image's entrypoint) and `mlapi run` starts."""
    return [sys.executable, "-m", "gunicorn", "-c", "python:mlapi.api.gunicorn_conf",
            "mlapi.api.wsgi:app()"]
