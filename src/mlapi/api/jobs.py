"""Submitting prediction jobs and turning stored results into responses (shared by blueprints)."""

from __future__ import annotations

import time

from flask import current_app, g, request

from .. import dispatch, tracing
from ..contracts import PredictJob
from . import metrics, resources
from .problems import Problem


def submit(texts: list[str], batch: bool, wait: bool) -> tuple[PredictJob, dict | None]:
    """Queue a job; when ``wait``, block for its result until the deadline.

    Returns ``(job, result)``; result is None for ``wait=False``. Raises ``Problem`` 503 at once
    when ``wait`` and no worker is alive, 504 when the deadline passes, and lets
    StoreUnavailable/QueueUnavailable become 503s.
    """
    settings = current_app.config["MLAPI_SETTINGS"]
    # Checked before charging: a refused request does not count against the rate limit.
    # Without wait the job is still queued: a worker takes it when one comes.
    if wait and resources.live_workers() == 0:
        raise no_worker()
    charge(len(texts))
    timeout = settings.predict_timeout if wait else settings.async_timeout
    started = time.time()
    client = g.get("client")
    job = PredictJob.for_texts(texts, deadline=started + timeout,
                               request_id=g.get("request_id", ""), batch=batch,
                               owner=client.name if client else "")
    tracing.annotate({tracing.JOB_ID: job.job_id, "mlapi.batch.texts": len(texts)})
    store = resources.store()
    dispatch.enqueue(store, resources.producer(), settings.predict_topic, job, timeout)
    if not wait:
        return job, None
    result = dispatch.await_result(store, job)
    if result is None:
        raise deadline_passed(job.job_id, settings.predict_timeout)
    return job, result


def charge(cost: int) -> None:
    """Count a request against MLAPI_RATE_LIMIT (per key, or per address when auth is off)."""
    settings = current_app.config["MLAPI_SETTINGS"]
    parts = settings.rate_limit_parts
    if parts is None:
        return
    limit, window = parts
    client = g.get("client")
    who = f"key:{client.name}" if client else f"addr:{request.remote_addr}"
    wait = resources.store().charge(who, cost, limit, window)
    if wait:
        raise Problem(429, "Too Many Requests",
                      f"rate limit {settings.rate_limit} reached (batch texts count one each); "
                      f"retry in {wait} s", {"Retry-After": str(wait)})


NO_WORKER_RETRY_AFTER = 5


def no_worker() -> Problem:
    return Problem(503, "Service Unavailable",
                   "no prediction worker is serving right now (none has sent a heartbeat in "
                   "the last seconds); retry shortly, or send ?wait=false to queue the job for "
                   "when a worker starts", {"Retry-After": str(NO_WORKER_RETRY_AFTER)})


def deadline_passed(job_id: str, timeout: float) -> Problem:
    return Problem(504, "Gateway Timeout",
                   f"no prediction within {timeout:g} s (MLAPI_PREDICT_TIMEOUT): the workers are "
                   "down or overloaded; the job was dropped", job=job_id)


def answer(result: dict) -> dict:
    """The public body for a stored result, or a Problem for an expired or failed job."""
    status = result.get("status")
    if status == "expired":
        raise Problem(504, "Gateway Timeout",
                      "the job waited in the queue past its deadline and was skipped by the "
                      "workers; send it again", job=result.get("job"))
    if status != "done":
        raise Problem(503, "Service Unavailable",
                      "the model failed on this job; it has been logged, retry later",
                      job=result.get("job"))
    predictions = result["predictions"]
    metrics.observe_result(result)
    if result.get("batch"):
        return {"predictions": predictions}
    return predictions[0]
