"""OpenTelemetry traces across the pipeline, off unless the standard OTEL_* variables ask.

On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (spans
go there over OTLP/HTTP), unless ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``.
The SDK itself reads the rest (``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER[_ARG]``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``): these are the
ecosystem's variables, not ``MLAPI_*`` settings, so that a collector's usual configuration works.

What is traced: the API's server span (Flask instrumentation), the produce to Kafka
(kafka-python instrumentation, which puts W3C ``traceparent`` in the message headers), the API's
wait for the result; in the worker, one span per job in the request's trace (consume, predict,
Redis write) and one span per batch linked to every job it served. Off, nothing is instrumented
and the worker skips its span code: no cost but an ``is None`` test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from . import __version__

log = logging.getLogger("mlapi.tracing")
JOB_ID = "mlapi.job_id"  # the span attribute that names a job (a prediction id for one text)

_provider = None  # the SDK's TracerProvider once configure() turned tracing on
_kafka = None  # the KafkaInstrumentor, to undo in shutdown()


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """True when the OTEL_* variables ask for traces to be exported."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(service_name: str, environ: Mapping[str, str] | None = None, exporter=None):
    """Turn tracing on for this process if wanted (or if an ``exporter`` is given: tests).

    ``service_name`` is the default for ``OTEL_SERVICE_NAME``. Call once per process, after any
    fork (the batch processor runs a thread). Returns the TracerProvider, or None when off.
    """
    global _provider, _kafka
    env = os.environ if environ is None else environ
    if exporter is None and not wanted(env):
        return None
    # Imported only when on: a process with tracing off never loads the SDK.
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    shutdown()
    attributes = {"service.version": __version__}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service_name
    # The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on). No atexit
    # hook: shutdown() below bounds the final flush, the SDK's would not.
    provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _provider = provider
    _kafka = KafkaInstrumentor()
    _kafka.instrument(tracer_provider=provider, produce_hook=_name_the_job)
    log.info("tracing on: service %s, OTLP to %s", env.get("OTEL_SERVICE_NAME") or service_name,
             env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
             or "a test exporter")
    return provider


def active() -> bool:
    return _provider is not None


def tracer() -> trace.Tracer:
    """mlapi's tracer: the configured provider's, or the API's no-op one when off."""
    return trace.get_tracer("mlapi", __version__, tracer_provider=_provider)


def instrument_app(app) -> None:
    """The Flask server span for every request but the probes and /metrics (noise, not traffic)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, tracer_provider=_provider,
                                       excluded_urls="healthz,readyz,metrics,v2/health")


def span(name: str, attributes: dict | None = None):
    """A child span of the current one, or nothing at all when tracing is off."""
    if _provider is None:
        return contextlib.nullcontext()
    return tracer().start_as_current_span(name, attributes=attributes)


def annotate(attributes: dict) -> None:
    """Attributes on the current span (the server span in a request), when tracing is on."""
    if _provider is not None:
        trace.get_current_span().set_attributes(attributes)


FLUSH_SECONDS = 5.0


def shutdown(timeout: float = FLUSH_SECONDS) -> None:
    """Flush what is buffered and stop exporting (a process's last step; safe when off).

    At most ``timeout`` s: with the collector down an export retries for up to
    OTEL_EXPORTER_OTLP_TIMEOUT (10 s), and a pod's grace period is not the place to wait for it.
    """
    global _provider, _kafka
    if _kafka is not None:
        _kafka.uninstrument()
        _kafka = None
    if _provider is None:
        return
    provider, _provider = _provider, None
    flush = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    flush.start()
    flush.join(timeout)
    if flush.is_alive():
        log.warning("tracing: the last spans were not exported within %g s (is the collector "
                    "at OTEL_EXPORTER_OTLP_ENDPOINT reachable?); dropped", timeout)


def _name_the_job(span, args, kwargs) -> None:
    # Kafka's key is the job id on the predict topic (the prediction id on the feedback one).
    key = kwargs.get("key", args[1] if len(args) > 1 else None)
    if isinstance(key, bytes):
        span.set_attribute(JOB_ID, key.decode(errors="replace"))


class _KafkaHeaders(Getter):
    """Reads W3C trace context from kafka-python's headers: a list of (str, bytes)."""

    def get(self, carrier: Iterable[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [value.decode(errors="replace") for name, value in carrier
                  if name == key and isinstance(value, bytes)]
        return values or None

    def keys(self, carrier: Iterable[tuple[str, bytes]]) -> list[str]:
        return [name for name, _ in carrier]


_HEADERS = _KafkaHeaders()


def context_of(headers) -> Context | None:
    """The trace context a Kafka message carries (None without one: an older API's job)."""
    if not headers:
        return None
    context = propagate.extract(list(headers), getter=_HEADERS)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


class BatchTrace:
    """The worker's spans for one batch, made once it is stored (with the times it recorded).

    Each job gets a CONSUMER span in its request's trace (the parent is the produce span whose
    context the message carries), with the batch's steps (predict, Redis write) as children, so
    one request reads as one trace. The batch itself serves many traces, so it is a root span of
    its own, linked to every job's span, with the same steps under it.
    """

    def __init__(self, topic: str, worker_id: str):
        self.topic = topic
        self.worker_id = worker_id
        self.started = time.time_ns()
        self.jobs: dict[str, trace.Span] = {}
        self.steps: list[tuple[str, int, int, list[str], dict]] = []

    def job(self, job_id: str, headers, attributes: dict | None = None) -> None:
        self.jobs[job_id] = tracer().start_span(
            f"process {self.topic}", context=context_of(headers), kind=SpanKind.CONSUMER,
            start_time=self.started,
            attributes={JOB_ID: job_id, "messaging.system": "kafka",
                        "messaging.destination.name": self.topic,
                        "messaging.operation.type": "process", **(attributes or {})})

    def step(self, name: str, started_ns: int, job_ids: list[str],
             attributes: dict | None = None) -> None:
        self.steps.append((name, started_ns, time.time_ns(), job_ids, attributes or {}))

    def end(self, results: list, stored: bool) -> None:  # JobResult objects
        ended = time.time_ns()
        spans = tracer()
        batch = spans.start_span(
            "mlapi.worker.batch", context=Context(), start_time=self.started,
            links=[Link(job.get_span_context()) for job in self.jobs.values()],
            attributes={"mlapi.batch.jobs": len(self.jobs), "mlapi.worker": self.worker_id})
        back = [Link(batch.get_span_context())]
        for name, started, stopped, job_ids, attributes in self.steps:
            spans.start_span(name, context=trace.set_span_in_context(batch), start_time=started,
                             attributes=attributes).end(end_time=stopped)
            for job_id in job_ids:
                spans.start_span(name, context=trace.set_span_in_context(self.jobs[job_id]),
                                 start_time=started, attributes=attributes,
                                 links=back).end(end_time=stopped)
        status = {result.job_id: result.status for result in results}
        for job_id, job in self.jobs.items():
            job.set_attribute("mlapi.status", status.get(job_id, "unknown"))
            if not stored:
                job.set_status(Status(StatusCode.ERROR, "not stored: left uncommitted"))
            elif status.get(job_id) != "done":
                job.set_status(Status(StatusCode.ERROR, status.get(job_id, "unknown")))
            job.end(end_time=ended)
        if not stored:
            batch.set_status(Status(StatusCode.ERROR, "not stored: left uncommitted"))
        batch.end(end_time=ended)
