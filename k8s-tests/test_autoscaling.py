"""Under load the worker HPA scales up, and back down to its minimum after the load."""

import os
import threading

import pytest
from kubernetes import client
from mlapi_k8s import LoadResult, env_seconds, run_load, wait_until

pytestmark = pytest.mark.slow


def worker_hpa(release) -> client.V2HorizontalPodAutoscaler:
    hpas = client.AutoscalingV2Api(release.api).list_namespaced_horizontal_pod_autoscaler(
        release.namespace, label_selector=release.selector("worker")).items
    if not hpas:
        pytest.skip(f"the release has no worker HPA labelled {release.selector('worker')} "
                    "(autoscaling off, or KEDA)")
    return hpas[0]


def describe(hpa: client.V2HorizontalPodAutoscaler) -> str:
    conditions = "; ".join(f"{c.type}={c.status} ({c.reason}: {c.message})"
                           for c in hpa.status.conditions or [])
    return (f"HPA {hpa.metadata.name}: current {hpa.status.current_replicas}, desired "
            f"{hpa.status.desired_replicas}, min {hpa.spec.min_replicas}, max {hpa.spec.max_replicas}; "
            f"{conditions or 'no conditions yet'}")


def replicas(hpa: client.V2HorizontalPodAutoscaler) -> int:
    """The larger of the HPA's current and desired replicas."""
    return max(hpa.status.desired_replicas or 0, hpa.status.current_replicas or 0)


def scale_down_deadline(hpa: client.V2HorizontalPodAutoscaler, peak: int) -> float:
    """MLAPI_K8S_SCALE_DOWN_TIMEOUT, else the stabilization window plus one policy period per
    pod to remove (the chart: one pod a minute) plus 3 minutes of metrics lag."""
    down = hpa.spec.behavior.scale_down if hpa.spec.behavior else None
    window = (down.stabilization_window_seconds if down and down.stabilization_window_seconds is not None
              else 300)
    period, per_step = 60, 1
    if down and down.policies:
        period, per_step = down.policies[0].period_seconds, max(1, down.policies[0].value)
    steps = -(-(peak - (hpa.spec.min_replicas or 1)) // per_step)
    return env_seconds("MLAPI_K8S_SCALE_DOWN_TIMEOUT", window + steps * period + 180)


def test_worker_hpa_scales_up_then_down(ready_release, predict_ready, admin_token):
    hpa = worker_hpa(ready_release)
    name, minimum = hpa.metadata.name, hpa.spec.min_replicas or 1
    api = client.AutoscalingV2Api(ready_release.api)

    def read():
        return api.read_namespaced_horizontal_pod_autoscaler(name, ready_release.namespace)

    stop, result = threading.Event(), LoadResult()
    load = threading.Thread(target=run_load, args=(predict_ready.predict_url,), kwargs=dict(
        concurrency=int(os.environ.get("MLAPI_K8S_LOAD_CONCURRENCY", "32")), token=admin_token,
        host=predict_ready.host, stop=stop, batch=int(os.environ.get("MLAPI_K8S_LOAD_BATCH", "16")),
        result=result), daemon=True)
    def scaled_up():
        hpa = read()
        return hpa if replicas(hpa) > minimum else None

    load.start()
    try:
        scaled = wait_until(
            scaled_up, env_seconds("MLAPI_K8S_SCALE_UP_TIMEOUT", 600),
            lambda: f"the worker HPA to scale above {minimum} under load: {describe(read())}; "
                    f"load: {result.summary()}", interval=5)
    finally:
        stop.set()
        load.join(timeout=60)
    assert result.ok > 0, f"the load got no 200 at all: {result.summary()}"

    wait_until(lambda: replicas(read()) == minimum,
               scale_down_deadline(scaled, replicas(scaled)),
               lambda: f"the worker HPA back down to {minimum} after the load: {describe(read())}",
               interval=10)
