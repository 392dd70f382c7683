"""One settings object for every mlapi process, read from ``MLAPI_*`` environment variables.

Build it once at the entry point (``Settings.from_env()``) and pass it in; nothing else reads
the environment. Each field's docstring-like comment is the source of the README's table.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    # Where `make run` keeps everything it creates (models, metrics files, server data).
    state_dir: Path = Path(".mlapi")
    # Redis URL; empty means "start a local Redis" for `mlapi run`.
    redis_url: str = ""
    # Comma-separated Kafka bootstrap servers; empty means "start a local broker" for `mlapi run`.
    kafka_bootstrap: str = ""
    # Prefix of every Redis key, so several deployments can share one Redis.
    redis_prefix: str = "mlapi"
    # Topic that carries prediction jobs.
    predict_topic: str = "mlapi.predict"
    # Partitions of the predict topic, created at start-up: the most worker replicas that can help.
    predict_partitions: int = 12
    # Replication factor for topics mlapi creates (1 locally, 3 on a real cluster).
    topic_replication: int = 1
    # Consumer group of the workers.
    consumer_group: str = "workers"
    # Group session timeout: how soon a dead worker's partitions move to a live one.
    kafka_session_timeout_ms: int = 3000
    # Seconds the API waits for a prediction before answering 504.
    predict_timeout: float = 5.0
    # Seconds an async (?wait=false) job may wait in the queue before workers skip it.
    async_timeout: float = 300.0
    # Seconds results (and async job markers) stay readable in Redis.
    result_ttl: int = 600
    # Most jobs a worker predicts in one call.
    batch_max: int = 64
    # Milliseconds a worker waits to fill a batch once its first job arrived.
    batch_wait_ms: int = 5
    # Worker processes `mlapi run` starts.
    workers: int = 1
    # Port of the API.
    port: int = 8000
    # Address the API binds to.
    host: str = "127.0.0.1"
    # gunicorn worker processes of the API.
    api_processes: int = 2
    # Threads per API process (each waiting request holds one).
    api_threads: int = 32
    # Path of the model archive (.skops) the workers serve; metadata sits beside it as .json.
    model_path: Path | None = None
    # Port of a worker's Prometheus endpoint; 0 turns it off (the local stack runs several).
    worker_metrics_port: int = 0
    # Largest request body in bytes (413 above).
    max_body_bytes: int = 1_048_576
    # JSON file of hashed API keys (`mlapi tokens create`); unset: the API is open to anyone.
    api_keys_file: Path | None = None
    # Rate limit per API key (per client address when auth is off), e.g. 600/minute; texts of a
    # batch count one each. Empty: no limit. Units: second, minute, hour.
    rate_limit: str = ""
    # Log level of every process.
    log_level: str = "INFO"

    @property
    def resolved_model_path(self) -> Path:
        return self.model_path or self.state_dir / "models" / "default.skops"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Read ``MLAPI_<FIELD>`` for every field; bad values raise ``ValueError`` naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = "MLAPI_" + f.name.upper()
            if name not in env or env[name] == "":
                continue
            raw = env[name]
            try:
                values[f.name] = _convert(f.type, raw)
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r}: {exc}") from None
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        positive = ["predict_partitions", "batch_max", "workers", "api_processes", "api_threads",
                    "result_ttl", "max_body_bytes",
                    "kafka_session_timeout_ms", "topic_replication"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"MLAPI_{name.upper()} must be at least 1, got {getattr(self, name)}")
        for name in ("predict_timeout", "async_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MLAPI_{name.upper()} must be positive")
        if self.batch_wait_ms < 0:
            raise ValueError("MLAPI_BATCH_WAIT_MS must not be negative")
        self.rate_limit_parts  # noqa: B018 - raises ValueError for a malformed limit
        if not 0 <= self.port <= 65535 or not 0 <= self.worker_metrics_port <= 65535:
            raise ValueError("ports must be between 0 and 65535")

    @cached_property  # read on every request: parsed once
    def rate_limit_parts(self) -> tuple[int, int] | None:
        """``(amount, window seconds)`` of MLAPI_RATE_LIMIT, None when unset."""
        if not self.rate_limit:
            return None
        amount, _, unit = self.rate_limit.partition("/")
        seconds = {"second": 1, "minute": 60, "hour": 3600}.get(unit.strip().lower())
        if not amount.strip().isdigit() or int(amount) < 1 or seconds is None:
            raise ValueError(f"MLAPI_RATE_LIMIT={self.rate_limit!r}: write it as N/second, "
                             "N/minute or N/hour, e.g. 600/minute")
        return int(amount), seconds

    def as_env(self) -> dict[str, str]:
        """The ``MLAPI_*`` variables that rebuild these settings in a child process."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            env["MLAPI_" + f.name.upper()] = str(value)
        return env


def _convert(type_name: str, raw: str):
    type_name = str(type_name)
    if type_name.startswith("int"):
        return int(raw)
    if type_name.startswith("float"):
        return float(raw)
    if "Path" in type_name:
        return Path(raw)
    return raw
