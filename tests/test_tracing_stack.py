"""Traces from the processes users run: `mlapi api` (gunicorn) and `mlapi worker`, configured
only by the standard OTEL_* variables, exporting OTLP/HTTP to a collector of this test's making.
One request must arrive as one connected trace across both services, with the job id on it."""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from mlapi import tracing
from mlapi.local import servers

from .conftest import child_env, make_settings, wait_for, wait_workers

pytestmark = pytest.mark.integration


def value_of(any_value):
    return getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP (protobuf) trace receiver: POST /v1/traces, the spans kept as dicts."""

    daemon_threads = True

    def __init__(self):
        self.spans: list[dict] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Receive)

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.spans)

    def take(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    entry = {"service": resource.get("service.name"), "name": span.name,
                             "kind": Span.SpanKind.Name(span.kind),
                             "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                             "parent": span.parent_span_id.hex() or None,
                             "attributes": {a.key: value_of(a.value) for a in span.attributes},
                             "links": [link.span_id.hex() for link in span.links]}
                    with self.lock:
                        self.spans.append(entry)


class _Receive(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.take(request)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):  # quiet: the test reads what it received instead
        return


@pytest.fixture
def collector():
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def start_traced(settings, state_dir, endpoint: str):
    """`mlapi worker` and `mlapi api` with OTEL_* pointing at ``endpoint``; (api, worker)."""
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100"}  # export within 0.1 s instead of 5
    logs = state_dir / "logs"
    worker = servers.Server("worker", [sys.executable, "-m", "mlapi", "worker"], 0,
                            logs / f"traced-worker-{uuid.uuid4().hex[:6]}.log",
                            {**child_env(settings), **otel}).start()
    api = servers.Server("api", [sys.executable, "-m", "mlapi", "api"], settings.port,
                         logs / f"traced-api-{settings.port}.log",
                         {**child_env(settings), **otel}).start(timeout=60)
    wait_workers(settings, 1)
    return api, worker


def predict(settings):
    """One prediction's body, or None while the consumer group forms (503/504)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.port}/v1/predict", method="POST",
        data=json.dumps({"text": "what a lovely day"}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        assert exc.code in (503, 504), exc.read()
        return None


def stack_settings(redis_server, kafka_server, model_path):
    return make_settings(redis_server.port, kafka_server.port, model_path,
                         port=servers.free_port(), api_processes=1)


def test_one_request_one_trace_across_api_and_worker(collector, redis_server, kafka_server,
                                                     model_path, state_dir):
    settings = stack_settings(redis_server, kafka_server, model_path)
    api, worker = start_traced(settings, state_dir,
                               f"http://127.0.0.1:{collector.server_address[1]}")
    try:
        job_id = wait_for(lambda: predict(settings), timeout=60,
                          what="a prediction through the stack")["id"]

        def whole_trace():
            spans = collector.received()
            process = [s for s in spans if s["service"] == "mlapi-worker"
                       and s["kind"] == "SPAN_KIND_CONSUMER"
                       and s["attributes"].get(tracing.JOB_ID) == job_id]
            if not process:
                return None
            in_trace = [s for s in spans if s["trace_id"] == process[0]["trace_id"]]
            names = {s["name"] for s in in_trace}
            done = {"POST /v1/predict", "mlapi.api.wait", "predict", "redis write"} <= names
            batch = any(process[0]["span_id"] in s["links"] for s in spans)
            return (process[0], in_trace, spans) if done and batch else None

        process, in_trace, spans = wait_for(whole_trace, timeout=30,
                                            what="the request's spans from both services")
    finally:
        api.stop()
        worker.stop()
    ids = {s["span_id"]: s for s in in_trace}
    server = next(s for s in in_trace if s["kind"] == "SPAN_KIND_SERVER")
    send = next(s for s in in_trace if s["kind"] == "SPAN_KIND_PRODUCER")
    assert server["service"] == send["service"] == "mlapi-api" and server["parent"] is None
    assert server["attributes"][tracing.JOB_ID] == send["attributes"][tracing.JOB_ID] == job_id
    assert send["parent"] == server["span_id"]
    assert process["parent"] == send["span_id"]  # the hop across Kafka, by traceparent
    wait = next(s for s in in_trace if s["name"] == "mlapi.api.wait")
    assert wait["parent"] == server["span_id"] and wait["service"] == "mlapi-api"
    steps = [s for s in in_trace if s["parent"] == process["span_id"]]
    assert sorted(s["name"] for s in steps) == ["predict", "redis write"]
    assert all(s["service"] == "mlapi-worker" for s in steps)
    # Connected: every span of the trace but the root hangs from another span of it.
    assert all(s["parent"] in ids for s in in_trace if s is not server)
    batch = next(s for s in spans if process["span_id"] in s["links"])
    assert batch["name"] == "mlapi.worker.batch" and batch["trace_id"] != server["trace_id"]



def test_a_collector_that_is_down_costs_no_request_and_no_shutdown(redis_server, kafka_server,
                                                                   model_path, state_dir):
    # Nothing listens there: every export fails. Requests must not wait on it, and SIGTERM must
    # still stop both processes well inside Kubernetes' 30 s grace period.
    settings = stack_settings(redis_server, kafka_server, model_path)
    api, worker = start_traced(settings, state_dir, f"http://127.0.0.1:{servers.free_port()}")
    try:
        wait_for(lambda: predict(settings), timeout=60, what="a prediction through the stack")
        answers = [predict(settings) for _ in range(5)]
        assert all(answer and answer["label"] for answer in answers)
    finally:
        stopped = []
        for server in (api, worker):
            started = time.monotonic()
            server.stop(timeout=25)
            stopped.append(time.monotonic() - started)
    assert max(stopped) < 20, f"stopping took {stopped} s with the collector down"
