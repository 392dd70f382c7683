"""A worker pod deleted during a load run loses no request: every one is answered 200."""

import os
import threading
import time

import pytest
from mlapi_k8s import LoadResult, env_seconds, run_load, wait_until

pytestmark = pytest.mark.slow


def test_deleted_worker_loses_no_request(ready_release, predict_ready, admin_token):
    workers = ready_release.running_pods("worker")
    if len(workers) < 2:
        pytest.skip(f"needs 2 running workers to lose one, the release has {len(workers)}")
    warmup = env_seconds("MLAPI_K8S_LOSS_WARMUP", 10)
    after = env_seconds("MLAPI_K8S_LOSS_AFTER", 45)  # covers the consumer group's rebalance

    stop, result = threading.Event(), LoadResult()
    load = threading.Thread(target=run_load, args=(predict_ready.predict_url,), kwargs=dict(
        concurrency=int(os.environ.get("MLAPI_K8S_LOSS_CONCURRENCY", "8")), token=admin_token,
        host=predict_ready.host, stop=stop, result=result), daemon=True)
    load.start()
    try:
        wait_until(lambda: result.sent >= 20, warmup + 30, lambda: f"the load to start: {result.summary()}",
                   interval=0.5)
        time.sleep(warmup)
        victim = workers[0].metadata.name
        before = result.sent
        ready_release.core.delete_namespaced_pod(victim, ready_release.namespace)  # graceful, as a drain does
        time.sleep(after)
    finally:
        stop.set()
        load.join(timeout=120)
    assert not load.is_alive(), "the load run did not stop within 120 s"

    assert result.sent - before > 0, f"no request was sent after deleting {victim}: {result.summary()}"
    assert result.ok == result.sent, (f"requests lost around the deletion of worker {victim} "
                                      f"(deleted after request {before}): {result.summary()}")
    # Leave the release as found for the next test: the Deployment replaces the pod.
    wait_until(lambda: not ready_release.not_ready(), env_seconds("MLAPI_K8S_READY_TIMEOUT", 300),
               lambda: "the workers to be ready again: " + "; ".join(ready_release.not_ready()), 3)
