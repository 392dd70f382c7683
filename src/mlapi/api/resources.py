"""The API's connections, made lazily on first use (after gunicorn forks), kept in app.extensions."""

from __future__ import annotations

import atexit
import threading

from flask import Flask, current_app

from ..kafka_bus import Producer
from ..redis_store import Registry, Store

_lock = threading.Lock()


def _get(name: str, factory):
    extensions = current_app.extensions
    if name not in extensions:
        with _lock:
            if name not in extensions:
                extensions[name] = factory(current_app.config["MLAPI_SETTINGS"])
    return extensions[name]


def store() -> Store:
    return _get("mlapi.store", Store)


def producer() -> Producer:
    return _get("mlapi.producer", Producer)


def registry() -> Registry:
    return _get("mlapi.registry", Registry)


def init_app(app: Flask) -> None:
    # Flush and close the producer and pools when the (gunicorn worker) process exits.
    atexit.register(close_all, app)


def close_all(app: Flask) -> None:
    for name in ("mlapi.producer", "mlapi.store", "mlapi.registry"):
        resource = app.extensions.pop(name, None)
        if resource is not None:
            resource.close()
