"""The helpers of k8s-tests/ (no cluster): waiting, port-forward line parsing and clean-up with a
fake kubectl, the load generator against a real HTTP server, names, readiness, the TCP probe."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "k8s-tests"))
from mlapi_k8s import PortForward, env_seconds, parse_forwarding_line, run_load, wait_until  # noqa: E402
from mlapi_k8s.cluster import fullname, kubeconfig_files, no_config_reason, workload_not_ready  # noqa: E402
from mlapi_k8s.netprobe import PROBE_SCRIPT, parse_probe_output  # noqa: E402

# wait_until ---------------------------------------------------------------------------------


def test_wait_until_returns_the_first_truthy_value():
    values = iter([None, 0, "", {"ready": 3}])
    assert wait_until(lambda: next(values), timeout=5, what="x", interval=0.01) == {"ready": 3}


def test_wait_until_times_out_naming_what_and_the_last_value():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting for the workers \(last: \[\]\)"):
        wait_until(lambda: [], timeout=0.2, what="the workers", interval=0.05)
    assert time.monotonic() - started < 1


def test_wait_until_describes_the_state_at_timeout_when_what_is_callable():
    with pytest.raises(AssertionError, match="waiting for 2 pods not ready"):
        wait_until(lambda: False, 0.05, lambda: "2 pods not ready", interval=0.01)


def test_env_seconds(monkeypatch):
    monkeypatch.delenv("MLAPI_K8S_T", raising=False)
    assert env_seconds("MLAPI_K8S_T", 30) == 30
    monkeypatch.setenv("MLAPI_K8S_T", "90")
    assert env_seconds("MLAPI_K8S_T", 30) == 90
    monkeypatch.setenv("MLAPI_K8S_T", "soon")
    with pytest.raises(ValueError, match="MLAPI_K8S_T='soon' is not a number"):
        env_seconds("MLAPI_K8S_T", 30)


# port-forward -------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "port"), [
    ("Forwarding from 127.0.0.1:41234 -> 8000\n", 41234),
    ("Forwarding from [::1]:41234 -> 80", 41234),
    ("Handling connection for 41234", None),
    ("error: unable to forward port because pod is not running", None),
])
def test_parse_forwarding_line(line, port):
    assert parse_forwarding_line(line) == port


def fake_kubectl(tmp_path: Path, body: str) -> str:
    """A kubectl stand-in: records its arguments, then runs ``body`` (sh)."""
    script = tmp_path / "kubectl"
    script.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args"\n{body}\n')
    script.chmod(0o755)
    return str(script)


def test_port_forward_returns_the_local_port_and_stops_kubectl(tmp_path):
    kubectl = fake_kubectl(tmp_path, 'echo "Forwarding from 127.0.0.1:45678 -> 8000"\n'
                                     'echo "Forwarding from [::1]:45678 -> 8000"\nexec sleep 60')
    with PortForward("service/mlapi-api", 8000, "mlapi", kubectl=kubectl, timeout=10) as forward:
        assert forward.port == 45678
        assert forward.running
    assert not forward.running and forward.returncode is not None
    args = (tmp_path / "args").read_text().split()
    assert args == ["port-forward", "--namespace", "mlapi", "--address", "127.0.0.1",
                    "service/mlapi-api", ":8000"]


def test_port_forward_times_out_and_kills_a_silent_kubectl(tmp_path):
    forward = PortForward("pod/x", 80, "mlapi", kubectl=fake_kubectl(tmp_path, "exec sleep 60"), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"no 'Forwarding from' line within 0.5 s"):
        forward.start()
    assert time.monotonic() - started < 5
    assert not forward.running and forward.returncode is not None


def test_port_forward_reports_kubectl_exiting_first(tmp_path):
    kubectl = fake_kubectl(tmp_path, 'echo "error: services \\"nope\\" not found" >&2\nexit 1')
    expected = r'exited with 1 before forwarding; output: error: services "nope"'
    with pytest.raises(RuntimeError, match=expected):
        PortForward("service/nope", 80, "mlapi", kubectl=kubectl, timeout=10).start()


# load ---------------------------------------------------------------------------------------


class ScriptedServer(ThreadingHTTPServer):
    """Answers POSTs 503 when the request's number is in ``fail``, else 200; records what came."""

    daemon_threads = True

    def __init__(self, fail: set[int]):
        self.fail, self.seen, self.headers_seen, self.lock = fail, Counter(), [], threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn and Envoy do

    def do_POST(self):  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = body.get("texts") or [body["text"]]
        numbers = [int(t.split(":", 1)[0].lstrip("#")) for t in texts]
        server: ScriptedServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.seen.update(numbers)
            server.headers_seen.append((self.headers["Authorization"], self.headers["Host"], self.path))
        status = 503 if set(numbers) & server.fail else 200
        answer = json.dumps({"label": "positive"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    servers = []

    def start(fail=()):
        server = ScriptedServer(set(fail))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/v1/predict"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_load_sends_each_numbered_request_once_and_counts_statuses(scripted):
    server, url = scripted(fail={3, 10, 42})
    result = run_load(url, total=60, concurrency=6, token="t0k", host="sentiment.example.com")
    assert result.counts == Counter({200: 57, 503: 3})
    assert result.sent == 60 and result.ok == 57 and len(result.latencies) == 60
    assert server.seen == Counter(range(60))
    assert set(server.headers_seen) == {("Bearer t0k", "sentiment.example.com", "/v1/predict")}
    assert 0 < result.percentile(0.5) <= result.percentile(0.99) < 5
    assert "60 requests" in result.summary() and "503: 3" in result.summary()


def test_load_sends_batches(scripted):
    server, url = scripted()
    result = run_load(url, total=5, concurrency=2, batch=4)
    assert result.counts == Counter({200: 5})
    assert server.seen == Counter(range(20))


def test_load_runs_until_stopped(scripted):
    _, url = scripted()
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    result = run_load(url, concurrency=3, stop=stop)
    assert result.sent > 0 and result.ok == result.sent
    assert 0.2 < result.elapsed < 5


def test_load_counts_refused_connections_instead_of_raising():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_load(f"http://127.0.0.1:{port}/v1/predict", total=4, concurrency=2, timeout=2)
    assert result.counts == Counter({"ConnectionRefusedError": 4})


def test_load_needs_an_end():
    with pytest.raises(ValueError, match="give total, stop, or both"):
        run_load("http://127.0.0.1:1/v1/predict")


# cluster: names, kubeconfig, readiness ------------------------------------------------------


@pytest.mark.parametrize(("release", "name"), [("mlapi", "mlapi"), ("sentiment", "sentiment-mlapi"),
                                               ("mlapi-prod", "mlapi-prod")])
def test_fullname_follows_the_chart(release, name):
    assert fullname(release) == name


def test_no_config_reason(tmp_path):
    assert no_config_reason({}, tmp_path) == (
        f"no cluster: KUBECONFIG is unset and {tmp_path}/.kube/config does not exist")
    assert "KUBECONFIG names no existing file" in no_config_reason({"KUBECONFIG": "/nope"}, tmp_path)
    (tmp_path / "kind").write_text("apiVersion: v1\n")
    assert no_config_reason({"KUBECONFIG": f"/nope:{tmp_path}/kind"}, tmp_path) is None
    assert no_config_reason({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, tmp_path) is None
    assert kubeconfig_files({"KUBECONFIG": "/a:/b"}, tmp_path) == [Path("/a"), Path("/b")]


def deployment(replicas=2, ready=2, updated=2, total=2, generation=1, observed=1):
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="mlapi-worker", generation=generation),
        spec=client.V1DeploymentSpec(replicas=replicas, selector=client.V1LabelSelector(),
                                     template=client.V1PodTemplateSpec()),
        status=client.V1DeploymentStatus(replicas=total, ready_replicas=ready, updated_replicas=updated,
                                         observed_generation=observed))


def test_workload_readiness():
    assert workload_not_ready(deployment()) is None
    assert workload_not_ready(deployment(ready=1)) == "Deployment mlapi-worker: 1/2 ready, 2/2 updated"
    assert workload_not_ready(deployment(generation=2)) == (
        "Deployment mlapi-worker: spec change not yet observed")
    assert "old pod(s) still terminating" in workload_not_ready(deployment(total=3))
    sts = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="mlapi-kafka", generation=1),
        spec=client.V1StatefulSetSpec(replicas=1, selector=client.V1LabelSelector(), service_name="k",
                                      template=client.V1PodTemplateSpec()),
        status=client.V1StatefulSetStatus(replicas=1, ready_replicas=1, updated_replicas=1,
                                          observed_generation=1, current_revision="a", update_revision="b"))
    assert workload_not_ready(sts) == "StatefulSet mlapi-kafka: rolling to revision b"


# the TCP probe the throwaway pod runs ------------------------------------------------------


def test_probe_script_tells_open_from_blocked():
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        checks = [
            {"name": "open", "host": "127.0.0.1", "port": listener.getsockname()[1], "expect": "open"},
            {"name": "closed", "host": "127.0.0.1", "port": unused.getsockname()[1], "expect": "blocked"},
            {"name": "nowhere", "host": "no-such-host.invalid", "port": 6379, "expect": "blocked"},
        ]
        done = subprocess.run([sys.executable, "-c", PROBE_SCRIPT, json.dumps(checks), "10"],
                              capture_output=True, text=True, timeout=60)
    results = parse_probe_output("some log line\n" + done.stdout)
    assert results["open"]["connected"] and results["open"]["resolved"] == "127.0.0.1"
    assert not results["closed"]["connected"] and "ConnectionRefusedError" in results["closed"]["error"]
    assert results["nowhere"]["resolved"] is None and results["nowhere"]["error"].startswith("resolve:")
    assert all(r["tries"] == 1 for r in results.values())


def test_parse_probe_output_without_a_result():
    with pytest.raises(ValueError, match="no JSON result"):
        parse_probe_output("Traceback (most recent call last):\n  boom\n")
