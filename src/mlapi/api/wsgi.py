"""gunicorn's entry point: ``gunicorn -c python:mlapi.api.gunicorn_conf 'mlapi.api.wsgi:app()'``."""

from __future__ import annotations

from .. import logs
from ..config import Settings
from . import create_app


def app():
    """Settings are read here, at the entry point, and passed in."""
    settings = Settings.from_env()
    logs.configure(settings)
    return create_app(settings)
