"""Sending a prediction job and waiting for its result, outside any web framework.

The one path the API (``api/jobs.py``) and ``mlapi run``'s warm-up share: mark the job pending
in Redis, produce it to Kafka and wait for the broker's ack, then block on its reply key until
the job's deadline.
"""

from __future__ import annotations

import time

from . import tracing
from .contracts import PredictJob
from .kafka_bus import Producer
from .redis_store import Store

ACK_TIMEOUT = 3.0  # the most a send waits for the broker (acks=all), whatever the deadline


def enqueue(store: Store, producer: Producer, topic: str, job: PredictJob, timeout: float) -> None:
    """Queue ``job``; raises StoreUnavailable or QueueUnavailable (the API's 503s)."""
    # Marked first: a Redis that is down fails the request before Kafka gets a job nobody reads.
    store.mark_pending(job.job_id, timeout, job.owner)
    producer.send(topic, job.job_id, job.to_bytes(), timeout=min(ACK_TIMEOUT, timeout))


def await_result(store: Store, job: PredictJob) -> dict | None:
    """The job's result, or None once its deadline passed."""
    with tracing.span("mlapi.api.wait", {tracing.JOB_ID: job.job_id}):
        return store.wait_result(job.job_id, job.deadline - time.time())
