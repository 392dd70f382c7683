"""The prediction worker process (``mlapi worker``)."""

from __future__ import annotations

import logging

from ..config import Settings


def main(settings: Settings) -> int:
    """Load the model, then consume until SIGTERM. Exit 2 when the model cannot be used."""
    # Imported here so that `mlapi --help` and the API never load scikit-learn.
    from ..model.artifact import ModelError
    from ..model.predictor import Predictor
    from ..redis_store import Store
    from .loop import Worker

    log = logging.getLogger("mlapi.worker")
    try:
        predictor = Predictor.load(settings.resolved_model_path)
    except ModelError as exc:
        log.error("cannot serve: %s", exc)
        return 2
    store = Store(settings)
    worker = Worker(settings, predictor, store)
    worker.install_signal_handlers()
    try:
        worker.run()
    finally:
        store.close()
    return 0
