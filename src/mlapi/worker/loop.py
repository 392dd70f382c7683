"""The prediction worker: poll a micro-batch, predict it in one call, store, then commit.

The lifecycle (a stop flag set by SIGTERM, commit after the results are stored, close in
``finally``, back-off while Kafka or Redis is away) is ``consumer_loop.ConsumerLoop``'s; this
module says what a batch is: it closes at ``MLAPI_BATCH_MAX`` jobs or ``MLAPI_BATCH_WAIT_MS``
after its first job, its live jobs are predicted in one call, and its results go to Redis in
one pipeline before the offsets are committed (at-least-once: a worker killed mid-batch leaves
its jobs uncommitted, and the group hands them to another worker).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import socket
import time

from prometheus_client import Counter, Gauge, Histogram

from .. import kafka_bus, tracing
from ..config import Settings
from ..consumer_loop import ConsumerLoop, flatten
from ..contracts import JobResult, PredictJob
from ..redis_store import StoreUnavailable

log = logging.getLogger("mlapi.worker")

JOBS = Counter("mlapi_worker_jobs_total", "Jobs handled by this worker, by outcome", ["status"])
TEXTS = Counter("mlapi_worker_texts_total", "Texts predicted by this worker")
BATCH = Histogram("mlapi_worker_batch_texts", "Texts per predict call",
                  buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
PREDICT_SECONDS = Histogram("mlapi_worker_predict_seconds", "Time of one batched predict call")
# Value 1 for the version this worker serves, so dashboards can show versions during a swap.
MODEL = Gauge("mlapi_worker_model_info", "The model version this worker serves (value 1)",
              ["version"])
QUEUE_WAIT = Histogram("mlapi_worker_queue_wait_seconds", "From enqueue to a worker picking it up",
                       buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))

POLL_TIMEOUT_MS = 200
HEARTBEAT_EVERY = 2.0


def release_memory() -> None:
    """Hand a dropped model's memory back to the OS.

    glibc keeps freed heap pages for reuse, so after a hot swap a worker's RSS stayed at the
    two-model peak (692 MB measured under `make run`; 500 MB with one model) until trimmed.
    """
    gc.collect()
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator decides
        return
    trim(0)


class Worker(ConsumerLoop):
    log = log

    def __init__(self, settings: Settings, predictor, store, worker_id: str | None = None,
                 models=None):
        super().__init__(settings)
        self.predictor = predictor
        self.store = store
        # A ModelSource (worker/models.py) that loads new champions in the background; None in
        # unit tests that serve one fixed model.
        self.models = models
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.processed = 0
        self._last_beat = 0.0

    # --- the loop's hooks (consumer_loop.py runs them) -----------------------------------
    @property
    def metrics_port(self) -> int:
        return self.settings.worker_metrics_port

    def connect(self):
        kafka_bus.ensure_topics(self.settings)
        return kafka_bus.consumer(self.settings, client_id=self.worker_id)

    def started(self, consumer) -> None:
        self._show_model(None)
        log.info("worker %s serving model %s (batch_max=%d, batch_wait_ms=%d)", self.worker_id,
                 self.predictor.version, self.settings.batch_max, self.settings.batch_wait_ms)

    def before_poll(self, consumer) -> None:
        self._swap_model()
        self._beat(consumer)

    def poll(self, consumer) -> list:
        return self.poll_batch(consumer)

    def stopped(self) -> None:
        try:
            self.store.forget_worker(self.worker_id)
        except StoreUnavailable:
            pass
        log.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    def _swap_model(self) -> None:
        """Between two batches: serve the champion the background loader has ready, if any."""
        fresh = self.models.take() if self.models is not None else None
        if fresh is not None:
            log.info("now serving model %s (was %s)", fresh.version, self.predictor.version)
            old, self.predictor = self.predictor.version, fresh
            self._show_model(old)
            release_memory()

    def _show_model(self, old: str | None) -> None:
        if old is not None and old != self.predictor.version:
            MODEL.remove(old)
        MODEL.labels(self.predictor.version).set(1)

    def _beat(self, consumer) -> None:
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_EVERY:
            return
        self._last_beat = now
        partitions = sorted(tp.partition for tp in consumer.assignment())
        try:
            refused = sorted(self.models.refused) if self.models is not None else []
            self.store.heartbeat(self.worker_id, {"model_version": self.predictor.version,
                                                  "pid": os.getpid(), "processed": self.processed,
                                                  "partitions": partitions, "refused": refused})
        except StoreUnavailable as exc:
            log.warning("heartbeat failed: %s", exc)

    # --- one batch -----------------------------------------------------------------------
    def poll_batch(self, consumer) -> list:
        """Up to batch_max records: wait up to 200 ms for the first, then batch_wait_ms for more."""
        limit = self.settings.batch_max
        records = flatten(consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=limit))
        if not records:
            return records
        close_at = time.monotonic() + self.settings.batch_wait_ms / 1000
        while len(records) < limit and not self.stopping:
            left_ms = int((close_at - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            records += flatten(consumer.poll(timeout_ms=left_ms, max_records=limit - len(records)))
        return records

    def handle(self, records: list) -> bool:
        """Predict and store a batch; True once every result is stored (safe to commit)."""
        now = time.time()
        live: list[PredictJob] = []
        results: list[JobResult] = []
        spans = tracing.BatchTrace(self.settings.predict_topic, self.worker_id) \
            if tracing.active() else None
        for record in records:
            try:
                job = PredictJob.from_bytes(record.value)
            except ValueError as exc:
                # A message that can never be a job: count it and move on rather than loop on it.
                log.error("dropping malformed message at %s/%s@%s: %s", record.topic,
                          record.partition, record.offset, exc)
                JOBS.labels("malformed").inc()
                continue
            if spans is not None:
                spans.job(job.job_id, getattr(record, "headers", None), {
                    "messaging.consumer.group.name": self.settings.consumer_group,
                    "messaging.kafka.offset": record.offset,
                    "messaging.destination.partition.id": str(record.partition)})
            QUEUE_WAIT.observe(max(0.0, now - job.enqueued))
            if job.deadline < now:
                results.append(JobResult.expired(job, now))
                JOBS.labels("expired").inc()
            else:
                live.append(job)
        started = time.time_ns()
        results += self._predict(live, now)
        if spans is not None and live:
            spans.step("predict", started, [job.job_id for job in live],
                       {"mlapi.model_version": self.predictor.version,
                        "mlapi.batch.texts": sum(len(job.items) for job in live)})
        texts = {item["id"]: item["text"] for job in live for item in job.items}
        started = time.time_ns()
        stored = self._store(results, texts)
        if spans is not None:
            spans.step("redis write", started, list(spans.jobs),
                       {"db.system.name": "redis", "db.operation.name": "PIPELINE"})
            spans.end(results, stored)
        return stored

    def _predict(self, jobs: list[PredictJob], picked: float) -> list[JobResult]:
        texts = [item["text"] for job in jobs for item in job.items]
        if not texts:
            return []
        started = time.perf_counter()
        try:
            probabilities = self.predictor.predict_proba(texts)
        except Exception:
            log.exception("batch predict failed; predicting its %d jobs one by one", len(jobs))
            return [self._predict_alone(job, picked) for job in jobs]
        PREDICT_SECONDS.observe(time.perf_counter() - started)
        BATCH.observe(len(texts))
        TEXTS.inc(len(texts))
        results, at = [], 0
        for job in jobs:
            probs = probabilities[at:at + len(job.items)]
            at += len(job.items)
            results.append(self._result(job, probs, picked))
        return results

    def _predict_alone(self, job: PredictJob, picked: float) -> JobResult:
        try:
            probs = self.predictor.predict_proba([item["text"] for item in job.items])
            return self._result(job, probs, picked)
        except Exception as exc:
            log.exception("job %s failed", job.job_id)
            JOBS.labels("error").inc()
            return JobResult.error(job, type(exc).__name__)

    def _result(self, job: PredictJob, probs: list[dict], picked: float) -> JobResult:
        JOBS.labels("done").inc()
        return JobResult.done(job, probs, self.predictor.version, self.worker_id, picked)

    def _store(self, results: list[JobResult], texts: dict[str, str]) -> bool:
        """Write results, retrying while Redis is down; give up only when asked to stop."""
        if not results:
            return True
        stored, _ = self.retry(lambda: self.store.put_results(results, texts),
                               (StoreUnavailable,), "cannot store results, retrying", cap=2.0)
        if stored:
            self.processed += len(results)
        else:
            log.warning("stopping with an unstored batch; it stays uncommitted")
        return stored
