"""Prometheus metrics of the API, correct across gunicorn's worker processes.

gunicorn's config sets PROMETHEUS_MULTIPROC_DIR before anything imports prometheus_client, so
each process writes its samples to files there and /metrics sums them (MultiProcessCollector).
Without that variable (the Flask test client, `flask run`) the process's own registry is used.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from . import spec

REQUESTS = Counter("mlapi_http_requests_total", "HTTP requests by endpoint, method and status",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("mlapi_http_request_duration_seconds", "HTTP request latency by endpoint",
                    ["endpoint"],
                    buckets=(.0025, .005, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
PREDICTIONS = Counter("mlapi_predictions_total", "Predictions answered, by label", ["label"])
QUEUE_WAIT = Histogram("mlapi_queue_wait_seconds",
                       "Time a job waited in Kafka before a worker picked it up",
                       buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))

bp = Blueprint("metrics", __name__)


def observe_result(result: dict) -> None:
    for item in result.get("predictions", ()):
        PREDICTIONS.labels(item["label"]).inc()
    if "queued_s" in result:
        QUEUE_WAIT.observe(result["queued_s"])


@bp.get("/metrics")
@spec.operation("GET", "metrics", "Prometheus metrics",
                responses={"200": {"description": "Prometheus text format",
                                   "content": {"text/plain": {"schema": {"type": "string"}}}}})
def scrape():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _record(response):
        # The route pattern, not the path: /v1/jobs/<job_id> is one series, not one per job.
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        if "started" in g:
            LATENCY.labels(endpoint).observe(time.perf_counter() - g.started)
        return response
