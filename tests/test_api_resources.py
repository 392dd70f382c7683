"""The API's lazily made resources: the live-worker count is cached per process."""

from __future__ import annotations

import pytest

from mlapi.api.resources import WorkerPresence
from mlapi.redis_store import Store, StoreUnavailable

from .conftest import make_settings


class CountingStore:
    def __init__(self, answers):
        self.answers, self.reads = list(answers), 0

    def live_workers(self) -> int:
        self.reads += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_worker_count_is_read_at_most_once_a_second():
    now = [0.0]
    store = CountingStore([2, 0])
    presence = WorkerPresence(store, every=1.0, clock=lambda: now[0])
    assert [presence.count() for _ in range(50)] == [2] * 50 and store.reads == 1
    now[0] = 0.99
    assert presence.count() == 2 and store.reads == 1
    now[0] = 1.0
    assert presence.count() == 0 and store.reads == 2


def test_no_worker_is_never_cached():
    # Every API process must see a worker that has just joined, not a second-old "none".
    now = [0.0]
    store = CountingStore([0, 0, 1, 1])
    presence = WorkerPresence(store, every=1.0, clock=lambda: now[0])
    assert [presence.count() for _ in range(3)] == [0, 0, 1] and store.reads == 3
    assert presence.count() == 1 and store.reads == 3


def test_redis_down_is_not_cached_as_no_worker():
    now = [0.0]
    store = CountingStore([StoreUnavailable("down"), 1])
    presence = WorkerPresence(store, clock=lambda: now[0])
    with pytest.raises(StoreUnavailable):
        presence.count()
    assert presence.count() == 1  # the next request reads again instead of trusting a failure


def test_heartbeats_in_real_redis_come_and_go(redis_server, kafka_server, model_path):
    settings = make_settings(redis_server.port, kafka_server.port, model_path)
    store = Store(settings)
    try:
        presence = WorkerPresence(store, every=0.0)
        assert presence.count() == 0
        store.heartbeat("a", {"pid": 1})
        store.heartbeat("b", {"pid": 2})
        assert presence.count() == 2
        assert sorted(w["id"] for w in store.workers()) == ["a", "b"]
        store.forget_worker("a")
        assert presence.count() == 1
        # A killed worker never says goodbye: its heartbeat key expires, and it no longer counts.
        store.redis.delete(store.key("worker", "b"))
        assert presence.count() == 0
    finally:
        store.close()
