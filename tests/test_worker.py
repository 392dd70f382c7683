"""The worker loop's decisions, with its boundaries (consumer, store, model) faked; the real
ones are exercised in test_api_*.py and test_faults.py."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from mlapi.config import Settings
from mlapi.contracts import PredictJob
from mlapi.redis_store import StoreUnavailable
from mlapi.worker.loop import Worker


class FakePredictor:
    version = "v-test"
    metadata = {"version": "v-test"}

    def __init__(self):
        self.calls: list[list[str]] = []

    def predict_proba(self, texts):
        self.calls.append(list(texts))
        if any("boom" in t for t in texts):
            raise RuntimeError("model failure")
        return [{"negative": 0.1, "neutral": 0.2, "positive": 0.7} for _ in texts]


class FakeStore:
    def __init__(self, failures: int = 0):
        self.failures = failures
        self.stored: list[dict] = []  # the stored form, JobResult.to_dict()

    def put_results(self, results, texts=None):
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("down")
        self.stored += [result.to_dict() for result in results]


def record(job: PredictJob | bytes, offset: int = 0):
    value = job if isinstance(job, bytes) else job.to_bytes()
    return SimpleNamespace(value=value, topic="t", partition=0, offset=offset)


def job(*texts, deadline_in: float = 10.0, batch: bool = False) -> PredictJob:
    return PredictJob.for_texts(list(texts), deadline=time.time() + deadline_in, batch=batch)


@pytest.fixture
def worker():
    return Worker(Settings(), FakePredictor(), FakeStore(), worker_id="w1")


def test_whole_batch_in_one_predict_call(worker):
    jobs = [job("a"), job("b", "c", batch=True), job("d")]
    assert worker.handle([record(j) for j in jobs])
    assert worker.predictor.calls == [["a", "b", "c", "d"]]
    stored = {r["job"]: r for r in worker.store.stored}
    assert [p["id"] for p in stored[jobs[1].job_id]["predictions"]] == \
        [i["id"] for i in jobs[1].items]
    assert stored[jobs[1].job_id]["batch"] is True
    assert all(r["model_version"] == "v-test" for r in stored.values())


def test_expired_jobs_are_skipped_and_marked(worker):
    late, fresh = job("late", deadline_in=-1), job("fresh")
    assert worker.handle([record(late), record(fresh)])
    assert worker.predictor.calls == [["fresh"]]
    status = {r["job"]: r["status"] for r in worker.store.stored}
    assert status == {late.job_id: "expired", fresh.job_id: "done"}


def test_malformed_messages_are_dropped_not_retried(worker):
    good = job("ok")
    assert worker.handle([record(b"garbage"), record(good)])
    assert [r["job"] for r in worker.store.stored] == [good.job_id]


def test_a_failing_batch_falls_back_to_one_by_one(worker):
    bad, good = job("boom"), job("fine")
    assert worker.handle([record(bad), record(good)])
    status = {r["job"]: r["status"] for r in worker.store.stored}
    assert status == {bad.job_id: "error", good.job_id: "done"}


def test_store_outage_is_retried_before_commit(monkeypatch):
    monkeypatch.setattr("mlapi.worker.loop.time.sleep", lambda s: None)
    w = Worker(Settings(), FakePredictor(), FakeStore(failures=3), worker_id="w1")
    assert w.handle([record(job("x"))]) is True
    assert len(w.store.stored) == 1


def test_stopping_with_redis_down_leaves_the_batch_uncommitted(monkeypatch):
    w = Worker(Settings(), FakePredictor(), FakeStore(failures=10**6), worker_id="w1")

    def stop_on_sleep(seconds):
        w.stopping = True

    monkeypatch.setattr("mlapi.worker.loop.time.sleep", stop_on_sleep)
    assert w.handle([record(job("x"))]) is False


def test_sigterm_handler_only_sets_the_flag(worker):
    worker.request_stop()
    assert worker.stopping is True and worker.store.stored == []


class FakeConsumer:
    def __init__(self, batches):
        self.batches = list(batches)
        self.polls: list[tuple[int, int]] = []

    def poll(self, timeout_ms, max_records):
        self.polls.append((timeout_ms, max_records))
        if not self.batches:
            return {}
        return {"tp": self.batches.pop(0)[:max_records]}


def test_batch_closes_at_batch_max():
    w = Worker(Settings(batch_max=3, batch_wait_ms=1000), FakePredictor(), FakeStore(), "w1")
    consumer = FakeConsumer([[1, 2], [3, 4, 5]])
    assert w.poll_batch(consumer) == [1, 2, 3]
    assert [m for _, m in consumer.polls] == [3, 1]


def test_batch_closes_after_batch_wait():
    w = Worker(Settings(batch_max=64, batch_wait_ms=20), FakePredictor(), FakeStore(), "w1")
    consumer = FakeConsumer([[1]])
    started = time.monotonic()
    assert w.poll_batch(consumer) == [1]
    assert time.monotonic() - started < 0.5
    assert all(t <= 20 for t, _ in consumer.polls[1:])


RELEASE = """
import psutil
from mlapi.worker.loop import release_memory
rss = lambda: psutil.Process().memory_info().rss
big, keep = [], []
for i in range(60000):  # freed blocks between survivors: the heap a dropped model leaves
    big.append(bytes(2000) + bytes([i % 256]))
    keep.append(bytes(600) + bytes([i % 256]))
del big
freed = rss()
release_memory()
print(freed, rss())
"""


def test_release_memory_hands_freed_heap_back_to_the_os():
    # What a worker does after a hot swap: glibc keeps a dropped model's pages otherwise.
    done = subprocess.run([sys.executable, "-c", RELEASE], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    freed, released = map(int, done.stdout.split())
    assert freed - released > 20 * 2**20, (freed >> 20, released >> 20)
