"""OpenTelemetry in process: the switch, and one request's spans from the Flask server span
through the real broker (traceparent in the message headers) to the worker loop and the real
Redis, with an in-memory exporter. tests/test_tracing_stack.py does it with the processes users
run, exporting OTLP to a receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mlapi import tracing
from mlapi.api import create_app
from mlapi.api.resources import close_all
from mlapi.config import Settings
from mlapi.contracts import PredictJob
from mlapi.redis_store import Store
from mlapi.worker.loop import Worker

from .conftest import make_settings, wait_for


@pytest.mark.parametrize("env, on", [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "x"}, False),  # a name alone exports nothing
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "otlp"}, True),
])
def test_on_only_when_the_otel_variables_say_so(env, on):
    assert tracing.wanted(env) is on


def test_off_configures_nothing_and_costs_nothing():
    assert tracing.configure("mlapi-test", environ={}) is None
    assert not tracing.active()
    with tracing.span("x", {"a": 1}) as span:
        assert span is None  # a nullcontext: no span object is even made
    tracing.annotate({"a": 1})  # no current span to touch; must not fail


@pytest.mark.parametrize("otel, loaded", [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, True),
])
def test_the_sdk_is_loaded_only_when_on(otel, loaded, tmp_path):
    # The API's entry point as gunicorn calls it, in a process of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MLAPI_"))}
    env.update(otel, MLAPI_STATE_DIR=str(tmp_path))
    code = ("import sys; from mlapi.api.wsgi import app; app(); "
            "print('opentelemetry.sdk.trace' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == str(loaded)  # after the log lines


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    assert tracing.configure("mlapi-test", environ={}, exporter=exporter) is not None
    try:
        yield exporter
    finally:
        tracing.shutdown()
    assert not tracing.active()


class StuckExporter(InMemorySpanExporter):
    """A shutdown that hangs, as the batch processor's does while an export to a collector
    that never answers retries."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def shutdown(self):
        self.release.wait(30)
        super().shutdown()


def test_the_final_flush_is_bounded_when_the_collector_hangs(caplog):
    exporter = StuckExporter()
    tracing.configure("mlapi-test", environ={}, exporter=exporter)
    started = time.monotonic()
    try:
        tracing.shutdown(timeout=0.5)
        took = time.monotonic() - started
    finally:
        exporter.release.set()
    assert not tracing.active()
    assert took < 5, took  # not the 30 s the export would hang
    assert "were not exported within 0.5 s" in caplog.text


class Predictor:
    version = "v-traced"

    def predict_proba(self, texts):
        return [{"negative": 0.1, "neutral": 0.2, "positive": 0.7} for _ in texts]


def by_name(finished, name):
    found = [span for span in finished if span.name == name]
    assert found, f"no span {name!r} in {[s.name for s in finished]}"
    return found


@pytest.mark.integration
def test_one_request_is_one_connected_trace(spans, redis_server, kafka_server, model_path):
    settings = make_settings(redis_server.port, kafka_server.port, model_path)
    store = Store(settings)
    worker = Worker(settings, Predictor(), store, worker_id="traced-worker")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    app = create_app(settings)
    try:
        wait_for(lambda: store.live_workers() >= 1, what="the in-process worker's heartbeat")
        client = app.test_client()
        # The first jobs wait for the group to form; any that answers will do.
        response = wait_for(lambda: (r := client.post("/v1/predict", json={"text": "lovely"}))
                            .status_code == 200 and r, timeout=60, what="a prediction")
        job_id = response.get_json()["id"]
        finished = wait_for(lambda: [s for s in spans.get_finished_spans()
                                     if s.attributes.get(tracing.JOB_ID) == job_id
                                     and s.kind == SpanKind.CONSUMER] and spans.get_finished_spans(),
                            what="the worker's span for the job")
    finally:
        worker.request_stop()
        thread.join(timeout=10)
        close_all(app)
        store.close()
    server = next(s for s in by_name(finished, "POST /v1/predict")
                  if s.attributes.get(tracing.JOB_ID) == job_id)
    trace_id = server.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    send = next(s for s in in_trace if s.kind == SpanKind.PRODUCER)
    wait = next(s for s in in_trace if s.name == "mlapi.api.wait")
    process = next(s for s in in_trace if s.kind == SpanKind.CONSUMER)
    assert server.kind == SpanKind.SERVER and server.parent is None
    assert send.name == f"{settings.predict_topic} send" and send.attributes[tracing.JOB_ID] == job_id
    assert send.parent.span_id == server.context.span_id
    assert wait.parent.span_id == server.context.span_id
    # Across Kafka: the worker's span is the produce span's child, through the message headers.
    assert process.parent.span_id == send.context.span_id
    assert process.attributes["messaging.consumer.group.name"] == settings.consumer_group
    assert process.attributes["mlapi.status"] == "done"
    steps = {s.name: s for s in in_trace if s.parent and s.parent.span_id == process.context.span_id}
    assert set(steps) == {"predict", "redis write"}
    assert steps["predict"].attributes["mlapi.model_version"] == "v-traced"
    assert steps["predict"].end_time <= steps["redis write"].start_time
    assert process.start_time <= steps["predict"].start_time
    assert steps["redis write"].end_time <= process.end_time
    # The API wakes once the result is written, while the worker may still be closing spans.
    assert wait.end_time >= steps["redis write"].start_time
    # The batch is a trace of its own, linked to the job's span, with the same steps under it.
    batch = next(s for s in by_name(finished, "mlapi.worker.batch")
                 if any(link.context.span_id == process.context.span_id for link in s.links))
    assert batch.parent is None and batch.context.trace_id != trace_id
    assert {s.name for s in finished if s.parent and s.parent.span_id == batch.context.span_id} \
        == {"predict", "redis write"}
    assert all(s.status.status_code != StatusCode.ERROR for s in in_trace)


def record(job: PredictJob, headers):
    return SimpleNamespace(value=job.to_bytes(), topic="t", partition=0, offset=7, headers=headers)


class ResultStore:
    """Accepts results, or refuses them as a Redis that is down would."""

    def __init__(self, up: bool = True):
        self.up = up

    def put_results(self, results, texts=None):
        if not self.up:
            from mlapi.redis_store import StoreUnavailable
            raise StoreUnavailable("down")


def test_a_job_without_trace_context_starts_its_own_trace(spans):
    # An API that does not trace (or an older one) sends no headers: the job is still served.
    worker = Worker(Settings(), Predictor(), ResultStore(), worker_id="w")
    job = PredictJob.for_texts(["fine"], deadline=time.time() + 10)
    assert worker.handle([record(job, [])])
    process = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER)
    assert process.parent is None and process.attributes[tracing.JOB_ID] == job.job_id


def test_expired_and_unstored_jobs_are_marked(spans):
    worker = Worker(Settings(), Predictor(), ResultStore(up=False), worker_id="w")
    worker.stopping = True  # so the store gives up at once instead of retrying
    late = PredictJob.for_texts(["late"], deadline=time.time() - 1)
    assert not worker.handle([record(late, [("traceparent", b"not a traceparent")])])
    finished = spans.get_finished_spans()
    process = next(s for s in finished if s.kind == SpanKind.CONSUMER)
    assert process.parent is None  # a broken header is ignored, not fatal
    assert process.attributes["mlapi.status"] == "expired"
    assert process.status.status_code == StatusCode.ERROR
    assert "predict" not in {s.name for s in finished}  # nothing was predicted
    batch = next(s for s in finished if s.name == "mlapi.worker.batch")
    assert batch.status.description == "not stored: left uncommitted"
