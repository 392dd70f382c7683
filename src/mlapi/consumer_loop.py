"""The lifecycle of a Kafka consumer process, shared by the worker and the feedback service.

In the manner of getsentry/arroyo's StreamProcessor: the SIGTERM handler only sets a flag; the
loop polls with a timeout, so it sees the flag within one poll; a batch's offsets are committed
only once ``handle`` says its work is stored (at-least-once: a process killed mid-batch leaves
it uncommitted, and the group hands it to another member); the consumer is closed in
``finally``, without autocommit. Subclasses say only what they do with a batch (``handle``) and
around it (the hooks); ``retry`` is the one back-off loop for a dependency that is away.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import TypeVar

from kafka.errors import CommitFailedError, KafkaError

from . import probes
from .config import Settings
from .redis_store import StoreUnavailable

T = TypeVar("T")


class ConsumerLoop:
    """Subclasses set ``log`` and ``metrics_port`` and define ``connect`` and ``handle``."""

    log: logging.Logger
    poll_timeout_ms = 200
    max_records = 64

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stopping = False
        self.liveness = probes.Liveness(settings.liveness_seconds)

    # --- what a subclass supplies ---------------------------------------------------------
    @property
    def metrics_port(self) -> int:
        """Port of /healthz and /metrics; 0: none."""
        return 0

    def connect(self):
        """A subscribed consumer (kafka_bus.consumer); may raise KafkaError or StoreUnavailable."""
        raise NotImplementedError

    def poll(self, consumer) -> list:
        return flatten(consumer.poll(timeout_ms=self.poll_timeout_ms,
                                      max_records=self.max_records))

    def handle(self, records: list) -> bool:
        """Do the batch's work; True once it is stored, so that its offsets may be committed."""
        raise NotImplementedError

    def started(self, consumer) -> None:
        """Once connected, before the first poll."""

    def before_poll(self, consumer) -> None:
        """Each round, before polling (heartbeats, a model swap, counts)."""

    def committed(self) -> None:
        """After a batch's offsets were committed."""

    def stopped(self) -> None:
        """In ``finally``, after the consumer closed."""

    # --- the lifecycle --------------------------------------------------------------------
    def request_stop(self, signum=None, frame=None) -> None:
        """Signal handler: only sets the flag; the loop finishes its batch and leaves."""
        self.stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> None:
        probe = probes.serve(self.settings.probe_host, self.metrics_port, self.liveness) \
            if self.metrics_port else None
        try:
            self._consume()
        finally:
            if probe is not None:
                probe.shutdown()

    def _consume(self) -> None:
        consumer = self._connect()
        if consumer is None:
            return
        self.started(consumer)
        try:
            while not self.stopping:
                self.before_poll(consumer)
                records = self.poll(consumer)
                self.liveness.tick()
                if records and self.handle(records):
                    self._commit(consumer)
                    self.committed()
        finally:
            # No autocommit on close: it would commit whatever was polled, stored or not.
            consumer.close(autocommit=False)
            self.stopped()

    def _connect(self):
        """Create topics and join the group, retrying while the broker is not up yet."""
        if self.stopping:
            return None
        done, consumer = self.retry(self.connect, (KafkaError, StoreUnavailable),
                                    "waiting for Kafka/Redis", first=0.5, cap=5.0)
        return consumer if done else None

    def _commit(self, consumer) -> None:
        try:
            consumer.commit()
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions: their new owner reads the uncommitted batch again,
            # and both consumers' writes are idempotent, so the cost is a repeated batch.
            self.log.warning("commit failed, the batch may be handled again: %s", exc)

    def retry(self, call: Callable[[], T], errors: tuple[type[BaseException], ...], what: str,
              first: float = 0.2, cap: float = 5.0) -> tuple[bool, T | None]:
        """``(True, call())`` once it succeeds, backing off from ``first`` to ``cap`` s while it
        raises one of ``errors``; ``(False, None)`` when it fails after a stop was asked.

        It always tries once, stop or not: the batch in hand when SIGTERM came is still stored.
        Waiting on a dependency is not being wedged: each try counts as progress for /healthz.
        """
        delay = first
        while True:
            try:
                return True, call()
            except errors as exc:
                if self.stopping:
                    self.log.warning("%s; stopping, so giving up: %s", what, exc)
                    return False, None
                self.log.warning("%s: %s", what, exc)
                self.liveness.tick()
                time.sleep(delay)
                delay = min(delay * 2, cap)


def flatten(polled: dict) -> list:
    return [record for batch in polled.values() for record in batch]
