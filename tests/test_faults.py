"""What happens when a worker, Redis or the broker dies mid-request. Each test has its own
servers and workers, so stopping them does not disturb the rest of the suite."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlapi.api import create_app
from mlapi.local import servers
from mlapi.redis_store import Store

from .conftest import make_settings, start_worker, wait_workers, warm_up

pytestmark = pytest.mark.integration


def eventually(check, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        time.sleep(every)


@pytest.fixture
def own_redis(tmp_path):
    server = servers.redis_server(servers.free_port(), tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def own_kafka(tmp_path):
    server = servers.kafka_broker(servers.free_port(), tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def workers():
    started: list[servers.Server] = []
    yield started
    for worker in started:
        worker.stop()


def test_sigkill_mid_batch_loses_no_job(redis_server, kafka_server, model_path, tmp_path, workers):
    # Long enough for the dead worker's partitions to move (one session timeout, 3 s) and the
    # uncommitted jobs to be predicted again by the survivor.
    settings = make_settings(redis_server.port, kafka_server.port, model_path,
                             predict_timeout=25.0, predict_partitions=4)
    for name in ("victim", "survivor"):
        workers.append(start_worker(settings, tmp_path, name))
    wait_workers(settings, 2)
    app = create_app(settings)
    client = app.test_client()
    warm_up(client)
    # Both in the group, each with its share of partitions, before the load starts.
    wait_workers(settings, 2, assigned=True)
    victim = workers[0]

    total = 400

    def ask(i: int):
        r = app.test_client().post("/v1/predict", json={"text": f"job number {i}: I love it"})
        return i, r.status_code, r.json

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(ask, i) for i in range(total)]
        # Kill the victim while jobs are flowing: it has polled batches it never committed.
        time.sleep(0.3)
        victim.process.send_signal(signal.SIGKILL)
        results = [f.result() for f in futures]

    failed = [(i, status) for i, status, _ in results if status != 200]
    assert not failed, f"{len(failed)} jobs not answered: {failed[:5]}"
    ids = {body["id"] for _, _, body in results}
    assert len(ids) == total
    # Both workers took part: the victim did work before it died.
    store = Store(settings)
    served_by = {store.job_status(body["id"])[1]["worker"] for _, _, body in results}
    store.close()
    assert len(served_by) == 2, served_by


def test_sigterm_finishes_the_batch_and_exits_quickly(redis_server, kafka_server, model_path,
                                                      tmp_path, workers):
    settings = make_settings(redis_server.port, kafka_server.port, model_path)
    worker = start_worker(settings, tmp_path)
    workers.append(worker)
    wait_workers(settings, 1)
    client = create_app(settings).test_client()
    warm_up(client)
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    code = worker.process.wait(timeout=10)
    assert code == 0
    assert time.monotonic() - started < 10
    assert "stopped after" in worker.log_path.read_text()
    # It left the group and its heartbeat: no live worker remains.
    store = Store(settings)
    assert store.live_workers() == 0
    store.close()


def test_redis_down_is_503_then_recovers(own_redis, kafka_server, model_path, tmp_path, workers):
    settings = make_settings(own_redis.port, kafka_server.port, model_path)
    workers.append(start_worker(settings, tmp_path))
    wait_workers(settings, 1)
    client = create_app(settings).test_client()
    warm_up(client)

    own_redis.kill()
    started = time.monotonic()
    r = client.post("/v1/predict", json={"text": "is anybody there?"})
    assert r.status_code == 503 and r.mimetype == "application/problem+json"
    assert "Redis" in r.json["detail"] and r.headers["Retry-After"]
    print(f"redis down: 503 after {time.monotonic() - started:.3f} s")
    assert time.monotonic() - started < 1.5
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").json["checks"]["redis"] is False
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/v1/jobs/{'0' * 32}").status_code == 503

    own_redis.start()  # same port, empty
    eventually(lambda: client.post("/v1/predict", json={"text": "back?"}).status_code == 200, 20)
    assert client.get("/readyz").status_code == 200
    # The worker republishes its model info on its next heartbeat.
    eventually(lambda: client.get("/v1/models").status_code == 200, 10)


def test_broker_down_is_503_then_recovers_even_empty(redis_server, own_kafka, model_path,
                                                     tmp_path, workers):
    settings = make_settings(redis_server.port, own_kafka.port, model_path)
    workers.append(start_worker(settings, tmp_path))
    wait_workers(settings, 1)
    client = create_app(settings).test_client()
    warm_up(client)

    own_kafka.kill()  # in-memory broker: topics, messages and offsets are gone
    started = time.monotonic()
    r = client.post("/v1/predict", json={"text": "is anybody there?"})
    assert r.status_code == 503 and "Kafka" in r.json["detail"]
    print(f"broker down: 503 after {time.monotonic() - started:.3f} s")
    assert time.monotonic() - started < 4
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"]["kafka"] is False
    assert client.get("/healthz").status_code == 200

    own_kafka.start()  # same port, empty: the topic must be re-created, the producer remade
    eventually(lambda: client.post("/v1/predict", json={"text": "back?"}).status_code == 200, 45,
               every=0.5)
    assert client.get("/readyz").status_code == 200
