"""gunicorn settings for the API, from the same MLAPI_* settings as everything else.

Threaded workers (gthread): a request spends its life waiting on Redis (BLPOP), so threads,
not processes, are what lets one API process hold many requests in flight.
"""

import os
import tempfile

from mlapi.config import Settings

_settings = Settings.from_env()

# prometheus_client reads this when it is first imported, so it must be set here, before the
# app (and prometheus_client) load. Every process writes its own files into the folder.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mlapi-prometheus-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.api_processes
worker_class = "gthread"
threads = _settings.api_threads
# A request waits at most predict_timeout; anything far past that is a stuck worker.
timeout = max(30, int(_settings.predict_timeout * 3))
graceful_timeout = 10
keepalive = 5
accesslog = None  # request metrics are in /metrics; set --access-logfile - to see each request
errorlog = "-"
loglevel = _settings.log_level.lower()
control_socket_disable = True  # gunicorn 27 would create a socket in the (read-only) cwd
proc_name = "mlapi-api"


def child_exit(server, worker):
    # Without this, a dead process's gauges would stay in the sums forever.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    # A process's last spans are still in the exporter's buffer: send them before it goes.
    from mlapi import tracing

    tracing.shutdown()
