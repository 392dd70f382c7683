"""The consumer lifecycle the worker and the feedback service share, with a fake consumer (the
real one, with the real broker, is exercised through both in test_faults.py and
test_feedback_service.py)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from kafka.errors import CommitFailedError, KafkaConnectionError

from mlapi import consumer_loop
from mlapi.config import Settings
from mlapi.consumer_loop import ConsumerLoop
from mlapi.redis_store import StoreUnavailable


class FakeConsumer:
    def __init__(self, batches, commit_fails=False):
        self.batches = list(batches)
        self.commits = 0
        self.commit_fails = commit_fails
        self.closed_with = None

    def poll(self, timeout_ms, max_records):
        records = self.batches.pop(0) if self.batches else []
        return {("t", 0): records} if records else {}

    def commit(self):
        if self.commit_fails:
            raise CommitFailedError("rebalanced")
        self.commits += 1

    def close(self, autocommit=True):
        self.closed_with = autocommit


class Loop(ConsumerLoop):
    log = logging.getLogger("test.loop")

    def __init__(self, consumer, outcomes, connect_failures=0):
        super().__init__(Settings())
        self.consumer = consumer
        self.outcomes = list(outcomes)  # what handle returns (or raises), batch by batch
        self.connect_failures = connect_failures
        self.events = []

    def connect(self):
        if self.connect_failures:
            self.connect_failures -= 1
            raise KafkaConnectionError("no broker yet")
        return self.consumer

    def handle(self, records):
        outcome = self.outcomes.pop(0)
        if not self.outcomes:
            self.stopping = True  # as SIGTERM would, after the last batch
        if isinstance(outcome, Exception):
            raise outcome
        self.events.append(("handled", [r.offset for r in records]))
        return outcome

    def started(self, consumer):
        self.events.append("started")

    def committed(self):
        self.events.append("committed")

    def stopped(self):
        self.events.append("stopped")


def records(*offsets):
    return [SimpleNamespace(offset=o) for o in offsets]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(consumer_loop.time, "sleep", slept.append)
    return slept


def test_commits_only_what_was_stored_and_closes_without_autocommit():
    consumer = FakeConsumer([records(1, 2), records(3), records(4)])
    loop = Loop(consumer, [True, False, True])
    loop.run()
    assert loop.events == ["started", ("handled", [1, 2]), "committed", ("handled", [3]),
                           ("handled", [4]), "committed", "stopped"]
    assert consumer.commits == 2 and consumer.closed_with is False


def test_a_failing_batch_still_closes_the_consumer():
    consumer = FakeConsumer([records(1)])
    loop = Loop(consumer, [RuntimeError("boom")])
    with pytest.raises(RuntimeError):
        loop.run()
    assert consumer.closed_with is False and loop.events[-1] == "stopped"


def test_a_failed_commit_is_logged_not_fatal(caplog):
    consumer = FakeConsumer([records(1)], commit_fails=True)
    Loop(consumer, [True]).run()
    assert "commit failed, the batch may be handled again" in caplog.text


def test_connect_backs_off_until_the_broker_answers(no_sleep):
    loop = Loop(FakeConsumer([records(1)]), [True], connect_failures=4)
    loop.run()
    assert no_sleep == [0.5, 1.0, 2.0, 4.0] and loop.events[0] == "started"


def test_a_stop_before_connecting_connects_nothing():
    loop = Loop(FakeConsumer([]), [], connect_failures=0)
    loop.stopping = True
    loop.run()
    assert loop.events == []


def test_retry_backs_off_to_its_cap(no_sleep):
    loop = Loop(FakeConsumer([]), [])
    calls = iter([StoreUnavailable("down")] * 6 + ["stored"])

    def call():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert loop.retry(call, (StoreUnavailable,), "storing", first=0.2, cap=2.0) == (True, "stored")
    assert no_sleep == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_retry_tries_once_even_when_stopping_and_gives_up_on_failure(no_sleep):
    loop = Loop(FakeConsumer([]), [])
    loop.stopping = True
    assert loop.retry(lambda: "stored", (StoreUnavailable,), "storing") == (True, "stored")

    def down():
        raise StoreUnavailable("down")

    assert loop.retry(down, (StoreUnavailable,), "storing") == (False, None)
    assert no_sleep == []


def test_retry_lets_other_errors_through():
    loop = Loop(FakeConsumer([]), [])
    with pytest.raises(KeyError):
        loop.retry(lambda: {}["x"], (StoreUnavailable,), "storing")
