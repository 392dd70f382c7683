"""/healthz and /metrics of the worker and the feedback service: the real HTTP server, a fake
clock for the liveness limit, and a real worker process answering its probes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from mlapi.local import servers
from mlapi.probes import Liveness, serve

from .conftest import make_settings, start_worker, wait_for


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.fixture
def clock():
    now = [100.0]
    return now


def test_healthz_turns_503_when_the_loop_stalls_and_back_when_it_ticks(clock):
    liveness = Liveness(30, clock=lambda: clock[0])
    server = serve("127.0.0.1", 0, liveness)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, ctype, body = get(url + "/healthz")
        assert status == 200 and ctype == "application/json" and json.loads(body)["status"] == "ok"
        clock[0] += 30.5
        status, _, body = get(url + "/healthz")
        assert status == 503
        assert json.loads(body) == {"status": "stalled", "last_progress_seconds": 30.5,
                                    "limit_seconds": 30}
        liveness.tick()
        assert get(url + "/healthz")[0] == 200
        status, ctype, body = get(url + "/metrics")
        assert status == 200 and ctype.startswith("text/plain") and "python_info" in body
        assert get(url + "/nothing")[0] == 404
    finally:
        server.shutdown()


@pytest.mark.integration
def test_a_real_worker_serves_its_probes(redis_server, kafka_server, model_path, tmp_path):
    port = servers.free_port()
    settings = make_settings(redis_server.port, kafka_server.port, model_path,
                             worker_metrics_port=port, probe_host="127.0.0.1")
    worker = start_worker(settings, tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: servers.port_open(port), 60, "the worker's probe port")
        status, _, body = get(url + "/healthz")
        assert status == 200 and json.loads(body)["last_progress_seconds"] < 5
        assert "mlapi_worker_jobs_total" in get(url + "/metrics")[2]
        # The version it serves, for the chart's dashboard (read from its metadata file).
        version = json.loads(model_path.with_suffix(".json").read_text())["version"]
        wait_for(lambda: f'mlapi_worker_model_info{{version="{version}"}} 1.0'
                 in get(url + "/metrics")[2], 30, "the served version in /metrics")
    finally:
        worker.stop()
    assert worker.process.returncode == 0
