"""``/healthz`` and ``/metrics`` on one port, for the worker and the feedback service.

Kubernetes' liveness probe and Prometheus both need an HTTP port on processes that otherwise
only consume Kafka. ``/healthz`` answers 503 once the process's loop has not made progress
(finished a poll, or a deliberate wait on a dependency) for ``MLAPI_LIVENESS_SECONDS``: a
wedged process gets restarted, one that is only waiting for Redis or Kafka does not.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger("mlapi.probes")


class Liveness:
    """When the loop last made progress; ``tick()`` from the loop, ``state()`` from the probe."""

    def __init__(self, limit_seconds: float, clock=time.monotonic):
        self.limit = limit_seconds
        self.clock = clock
        self._last = clock()

    def tick(self) -> None:
        self._last = self.clock()  # one float store: atomic under the GIL, no lock needed

    def state(self) -> tuple[bool, float]:
        """(alive, seconds since the last tick)."""
        age = self.clock() - self._last
        return age <= self.limit, age


class _Handler(BaseHTTPRequestHandler):
    server: _ProbeServer

    def do_GET(self):  # noqa: N802 - the name http.server calls
        if self.path == "/healthz":
            alive, age = self.server.liveness.state()
            body = json.dumps({"status": "ok" if alive else "stalled",
                               "last_progress_seconds": round(age, 3),
                               "limit_seconds": self.server.liveness.limit}).encode()
            self._send(200 if alive else 503, "application/json", body)
        elif self.path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
        else:
            self._send(404, "application/json",
                       json.dumps({"detail": "only /healthz and /metrics here"}).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass  # probes every few seconds would drown the service's own log


class _ProbeServer(ThreadingHTTPServer):
    daemon_threads = True
    liveness: Liveness


def serve(host: str, port: int, liveness: Liveness) -> _ProbeServer:
    """Start answering on ``host:port`` in a daemon thread; ``shutdown()`` stops it."""
    server = _ProbeServer((host, port), _Handler)
    server.liveness = liveness
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    log.info("/healthz and /metrics on %s:%d", host, server.server_address[1])
    return server
