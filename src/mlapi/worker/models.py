"""Which model a worker serves: the registry's champion, swapped in without stopping the loop.

A background thread listens for champion changes (Redis pub/sub) and also reads the champion
pointer every ``MLAPI_MODEL_CHECK_SECONDS``, so a missed notification costs at most that long.
It fetches the new archive, checks its sha256 and types, and loads it while the loop goes on
predicting with the old model; the loop picks the new one up between two batches (``take``).
A version that fails its checks is refused once, logged, and the old model keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from ..model.artifact import ModelError
from ..model.predictor import Predictor
from ..redis_store import Registry, StoreUnavailable

log = logging.getLogger("mlapi.worker")


def initial(settings, registry: Registry) -> tuple[Predictor, bytes]:
    """The champion (and its archive) when the registry has a usable one, else the local file.

    Raises ``ModelError`` when neither can be served.
    """
    try:
        version = registry.champion()
        if version is not None:
            try:
                return fetch(registry, version)
            except ModelError as exc:
                log.error("refusing champion %s: %s; falling back to %s", version, exc,
                          settings.resolved_model_path)
    except StoreUnavailable as exc:
        log.warning("registry unreachable (%s); starting from %s", exc, settings.resolved_model_path)
    path = settings.resolved_model_path
    predictor = Predictor.load(path)
    return predictor, path.read_bytes()


def fetch(registry: Registry, version: str) -> tuple[Predictor, bytes]:
    meta, archive = registry.meta(version), registry.archive(version)
    if meta is None or archive is None:
        raise ModelError(f"model {version} is not in the registry (trimmed or never stored)")
    return Predictor.from_registry(archive, meta), archive


class ModelSource:
    def __init__(self, settings, registry: Registry, current: Predictor, archive: bytes):
        self.settings = settings
        self.registry = registry
        self.serving = current.version
        self.refused: dict[str, str] = {}
        # The served model's archive, kept to re-register it if Redis comes back empty.
        self._archive = archive
        self._current = current
        self._pending: Predictor | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ModelSource:
        self._thread = threading.Thread(target=self._run, name="model-source", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def take(self) -> Predictor | None:
        """The newly loaded champion, once; None when there is nothing new."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    # --- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        sub = None
        while not self._stop.is_set():
            try:
                if sub is None:
                    sub = self.registry.pubsub()
                    self.check()  # a change may have come while we were not subscribed
                # Wakes on a notification or after the check interval, whichever comes first.
                sub.get_message(timeout=self.settings.model_check_seconds)
                self.check()
            except (StoreUnavailable, redis.RedisError) as exc:
                log.warning("model registry unreachable, serving %s meanwhile: %s", self.serving, exc)
                sub = _close(sub)
                self._stop.wait(2.0)
            except Exception:  # never let the loader thread die: the worker would go stale
                log.exception("model check failed")
                self._stop.wait(2.0)
        _close(sub)

    def check(self) -> None:
        """Load the champion if it is new to us; register ours if the registry has none."""
        version = self.registry.champion()
        if version is None:
            self._bootstrap()
            return
        if version == self.serving or version in self.refused:
            return
        started = time.monotonic()
        try:
            predictor, archive = fetch(self.registry, version)
        except ModelError as exc:
            self.refused[version] = str(exc)
            log.error("refusing model %s, still serving %s: %s", version, self.serving, exc)
            return
        with self._lock:
            self._pending = predictor
            self._current, self._archive = predictor, archive
        log.info("loaded model %s in %.1f s; swapping from %s", version,
                 time.monotonic() - started, self.serving)
        self.serving = version

    def _bootstrap(self) -> None:
        """A registry with no champion (first start, or Redis came back empty) gets ours."""
        with self._lock:
            current, archive = self._current, self._archive
        if self.registry.bootstrap(current.metadata, archive):
            log.info("registered %s as the champion (the registry had none)", current.version)


def _close(sub):
    if sub is not None:
        try:
            sub.close()
        except redis.RedisError:
            pass
    return None
