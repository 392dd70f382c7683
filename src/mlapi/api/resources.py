"""The API's connections, made lazily on first use (after gunicorn forks), kept in app.extensions."""

from __future__ import annotations

import atexit
import threading
import time

from flask import Flask, current_app

from ..kafka_bus import Producer
from ..redis_store import Registry, Store

_lock = threading.RLock()  # re-entrant: one factory may need another resource


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


class WorkerPresence:
    """How many workers beat in Redis; a positive count is reused for ``every`` seconds.

    A synchronous prediction with no live worker is answered 503 at once instead of waiting
    out MLAPI_PREDICT_TIMEOUT; the cache keeps that check off Redis on the hot path. Only a
    positive count is cached: "none" is read again each time, so a worker that has just joined
    is seen by every API process at once instead of up to a second later (one ZCOUNT per
    refused request, which is cheaper than the request it saves).
    """

    def __init__(self, store: Store, every: float = 1.0, clock=time.monotonic):
        self.store, self.every, self.clock = store, every, clock
        self._lock = threading.Lock()
        self._count = 0  # "none" is never reused, so no read time is needed before the first
        self._read_at = 0.0

    def count(self) -> int:
        """Live workers; raises StoreUnavailable when Redis cannot be read."""
        with self._lock:
            now = self.clock()
            if not self._count or now - self._read_at >= self.every:
                self._count = self.store.live_workers()
                self._read_at = now
            return self._count


def live_workers() -> int:
    return _get("mlapi.presence", lambda settings: WorkerPresence(store())).count()


def init_app(app: Flask) -> None:
    # Flush and close the producer and pools when the (gunicorn worker) process exits.
    atexit.register(close_all, app)


def close_all(app: Flask) -> None:
    app.extensions.pop("mlapi.presence", None)  # holds no connection of its own
    for name in ("mlapi.producer", "mlapi.store", "mlapi.registry"):
        resource = app.extensions.pop(name, None)
        if resource is not None:
            resource.close()
