"""The prediction worker process (``mlapi worker``)."""

from __future__ import annotations

import logging

from ..config import Settings


def main(settings: Settings) -> int:
    """Load the champion (or the local model), then consume until SIGTERM. Exit 2 without a model."""
    # Imported here so that `mlapi --help` and the API never load scikit-learn.
    from .. import tracing
    from ..model.artifact import ModelError
    from ..redis_store import Registry, Store
    from .loop import Worker
    from .models import ModelSource, initial

    log = logging.getLogger("mlapi.worker")
    # BLAS threads, set explicitly: N workers on N cores must not each start N threads and
    # fight (a second thread adds almost nothing to a batch of 64). Applies to every model the
    # worker loads later, the embedding included.
    from threadpoolctl import threadpool_limits

    threadpool_limits(settings.worker_threads)
    registry = Registry(settings)
    try:
        predictor, archive = initial(settings, registry)
    except ModelError as exc:
        log.error("cannot serve: %s", exc)
        registry.close()
        return 2
    store = Store(settings)
    models = ModelSource(settings, registry, predictor, archive).start()
    worker = Worker(settings, predictor, store, models=models)
    worker.install_signal_handlers()
    tracing.configure("mlapi-worker")
    try:
        worker.run()
    finally:
        tracing.shutdown()  # flushes the last batches' spans
        models.stop()
        store.close()
        registry.close()
    return 0
