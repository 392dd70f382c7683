"""A thread-pool load generator: numbered predictions, per-status counts and latencies."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

TEXTS = ("I love this, it works great", "This is terrible, it broke after a day",
         "It arrived on Tuesday", "Absolutely wonderful service", "Worst purchase I ever made")


def numbered_text(i: int) -> str:
    """The text of request ``i``: a sentence with its number, so every request is distinct."""
    return f"#{i}: {TEXTS[i % len(TEXTS)]}"


@dataclass
class LoadResult:
    """What a load run got: answers by status (an int, or the exception's name) and latencies."""

    counts: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, status: int | str, latency: float) -> None:
        with self._lock:
            self.counts[status] += 1
            self.latencies.append(latency)

    @property
    def sent(self) -> int:
        """Requests answered or failed so far (safe to read while the run goes on)."""
        with self._lock:
            return sum(self.counts.values())

    @property
    def ok(self) -> int:
        with self._lock:
            return self.counts[200]

    def percentile(self, q: float) -> float:
        """Latency at quantile ``q`` (0..1) in seconds; 0.0 without requests."""
        with self._lock:
            ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> str:
        with self._lock:
            counts = dict(sorted(self.counts.items(), key=lambda kv: str(kv[0])))
            n = sum(counts.values())
        return (f"{n} requests in {self.elapsed:.1f} s, by status {counts}, "
                f"p50 {self.percentile(0.5) * 1000:.0f} ms, p99 {self.percentile(0.99) * 1000:.0f} ms")


def run_load(url: str, *, total: int | None = None, concurrency: int = 8, token: str | None = None,
             host: str | None = None, stop: threading.Event | None = None, batch: int = 1,
             timeout: float = 15.0, result: LoadResult | None = None) -> LoadResult:
    """POST numbered predictions to ``url`` (…/v1/predict) from ``concurrency`` clients.

    Runs until ``total`` requests are done or ``stop`` is set (one of them is needed). ``batch``
    above 1 sends ``{"texts": [...]}`` with that many texts per request. Pass ``result`` to watch
    progress from another thread. Never raises for a failed request: it is counted.
    """
    if total is None and stop is None:
        raise ValueError("give total, stop, or both")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if host:
        headers["Host"] = host
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    result = result if result is not None else LoadResult()
    numbers = itertools.count()
    lock = threading.Lock()

    def next_number() -> int | None:
        if stop is not None and stop.is_set():
            return None
        with lock:
            i = next(numbers)
        return i if total is None or i < total else None

    def client() -> None:
        conn = None
        try:
            while (i := next_number()) is not None:
                if batch > 1:
                    body = {"texts": [numbered_text(i * batch + k) for k in range(batch)]}
                else:
                    body = {"text": numbered_text(i)}
                if conn is None:
                    conn = connection_class(parts.hostname, parts.port, timeout=timeout)
                started = time.monotonic()
                try:
                    conn.request("POST", path, json.dumps(body).encode(), headers)
                    response = conn.getresponse()
                    response.read()
                    status: int | str = response.status
                    if response.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as exc:
                    status = type(exc).__name__
                    conn.close()
                    conn = None
                result.record(status, time.monotonic() - started)
        finally:
            if conn is not None:
                conn.close()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    result.elapsed = time.monotonic() - started
    return result
