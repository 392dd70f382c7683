"""The feedback service (``mlapi feedback serve``): corrections from Kafka into the database.

The worker's lifecycle (``consumer_loop.ConsumerLoop``): the SIGTERM handler only sets a flag;
the loop polls with a timeout; each polled batch is judged and stored in one database
transaction, and only then are its offsets committed. A crash between the two makes the
broker deliver the batch again, and the database skips the feedback ids it already has:
nothing lost, nothing counted twice.
Counts go to Redis (for GET /v1/feedback/stats) after every batch and every few seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from prometheus_client import Counter, Gauge
from sqlalchemy.exc import SQLAlchemyError

from .. import kafka_bus
from ..config import Settings
from ..consumer_loop import ConsumerLoop
from ..contracts import FeedbackMessage
from ..redis_store import StoreUnavailable
from .db import FeedbackDB
from .policy import Status

log = logging.getLogger("mlapi.feedback")

RECEIVED = Counter("mlapi_feedback_received_total", "Feedback messages stored by this process")
CORRECTIONS = Counter("mlapi_feedback_corrections_total",
                      "Feedback stored by this process, by verdict and label",
                      ["status", "label"])
STORED = Gauge("mlapi_feedback_stored", "Feedback in the database, by verdict (all processes)",
               ["status"])

POLL_TIMEOUT_MS = 500
MAX_RECORDS = 500
STATS_EVERY = 5.0


class FeedbackService(ConsumerLoop):
    log = log
    poll_timeout_ms = POLL_TIMEOUT_MS
    max_records = MAX_RECORDS

    def __init__(self, settings: Settings, db: FeedbackDB, store):
        super().__init__(settings)
        self.db = db
        self.store = store
        self.client_id = f"feedback-{socket.gethostname()}-{os.getpid()}"
        self.stored = 0
        self._stats_at = 0.0

    # --- the loop's hooks (consumer_loop.py runs them) -----------------------------------
    @property
    def metrics_port(self) -> int:
        return self.settings.feedback_metrics_port

    def connect(self):
        kafka_bus.ensure_topics(self.settings)
        return kafka_bus.consumer(self.settings, client_id=self.client_id,
                                  topic=self.settings.feedback_topic,
                                  group=self.settings.feedback_group, max_records=MAX_RECORDS)

    def started(self, consumer) -> None:
        log.info("feedback service reading %s into %s", self.settings.feedback_topic,
                 self.db.engine.url.render_as_string(hide_password=True))

    def before_poll(self, consumer) -> None:
        self._publish_stats()

    def committed(self) -> None:
        self._publish_stats(force=True)

    def stopped(self) -> None:
        log.info("feedback service stopped after storing %d messages", self.stored)

    def handle(self, records: list) -> bool:
        """Judge and store a batch; True once it is committed to the database."""
        items = []
        for record in records:
            try:
                items.append((FeedbackMessage.from_bytes(record.value), None, record.partition,
                              record.offset))
            except ValueError as exc:
                log.error("rejecting malformed feedback at %s/%s@%s: %s", record.topic,
                          record.partition, record.offset, exc)
                items.append((None, str(exc), record.partition, record.offset))
        stored, new = self.retry(
            lambda: self.db.store(items, cap=self.settings.feedback_client_cap,
                                  hold_confidence=self.settings.feedback_hold_confidence),
            (SQLAlchemyError,), "database unavailable, retrying")
        if not stored:
            log.warning("stopping with an unstored batch; it stays uncommitted")
            return False
        for row in new:
            RECEIVED.inc()
            CORRECTIONS.labels(row.status, row.label or "none").inc()
            log.info("feedback %s from %s: %s %s%s", row.feedback_id, row.client, row.status,
                     row.label or "(no label)", f" ({row.reason})" if row.reason else "")
        self.stored += len(new)
        return True

    def _publish_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._stats_at < STATS_EVERY:
            return
        self._stats_at = now
        try:
            stats = self.db.stats()
            for status in Status:
                STORED.labels(status.value).set(stats[status.value])
            self.store.put_feedback_stats(stats)
        except (SQLAlchemyError, StoreUnavailable) as exc:
            log.warning("cannot publish feedback counts: %s", exc)


def main(settings: Settings) -> int:
    from ..redis_store import Store

    db = FeedbackDB(settings.feedback_db_url)
    try:
        db.migrate()
    except SQLAlchemyError as exc:
        log.error("cannot open the feedback database: %s", exc)
        return 2
    store = Store(settings)
    service = FeedbackService(settings, db, store)
    service.install_signal_handlers()
    try:
        service.run()
    finally:
        store.close()
        db.close()
    return 0
