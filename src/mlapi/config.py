"""One settings object for every mlapi process, read from ``MLAPI_*`` environment variables.

Build it once at the entry point (``Settings.from_env()``) and pass it in; nothing else reads
the environment. The comment above each field is its documentation: tools/settings-table.py
writes docs/settings.md's table from them (and a test keeps the two in step).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    # Where `make run` keeps what it creates: models, server logs, metrics files, Redis data (AOF),
    # the feedback database (git-ignored).
    state_dir: Path = Path(".mlapi")
    # Redis URL, e.g. `redis://redis:6379/0` (`rediss://` for TLS); empty: `mlapi run` starts a
    # local Redis.
    redis_url: str = ""
    # Redis password, kept out of MLAPI_REDIS_URL so it can come from a Kubernetes Secret as is
    # (a password in a URL must be percent-encoded). A password in the URL wins.
    redis_password: str = field(default="", repr=False)
    # CA bundle (PEM) to verify a `rediss://` (TLS) server, e.g. a private CA; unset: the
    # system's CAs. Needs a `rediss://` URL.
    redis_ssl_cafile: Path | None = None
    # Client certificate (PEM) for a `rediss://` server that requires one; with
    # MLAPI_REDIS_SSL_KEYFILE, both or neither.
    redis_ssl_certfile: Path | None = None
    # Private key (PEM, unencrypted) of that client certificate.
    redis_ssl_keyfile: Path | None = None
    # Comma-separated Kafka bootstrap servers, e.g. `kafka-0:9092,kafka-1:9092`; empty: `mlapi run`
    # starts a local broker.
    kafka_bootstrap: str = ""
    # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (managed Kafka services and Strimzi's
    # authenticated listeners want SASL_SSL or SSL).
    kafka_security_protocol: str = "PLAINTEXT"
    # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with the SASL_* protocols.
    kafka_sasl_mechanism: str = ""
    # SASL user name; required with the SASL_* protocols.
    kafka_sasl_username: str = ""
    # SASL password; required with the SASL_* protocols.
    kafka_sasl_password: str = field(default="", repr=False)
    # CA bundle (PEM) to verify the brokers with SSL/SASL_SSL; unset: the system's CAs.
    kafka_ssl_cafile: Path | None = None
    # Client certificate (PEM) for mutual TLS with SSL/SASL_SSL (e.g. a Strimzi `tls` user),
    # with MLAPI_KAFKA_SSL_KEYFILE: both or neither.
    kafka_ssl_certfile: Path | None = None
    # Private key (PEM) of that client certificate.
    kafka_ssl_keyfile: Path | None = None
    # Password of that private key when it is encrypted; empty: not encrypted.
    kafka_ssl_password: str = field(default="", repr=False)
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
    # Seconds the API waits for a prediction before answering 504; jobs carry this deadline.
    predict_timeout: float = 5.0
    # Seconds an async (?wait=false) job may wait in the queue before workers skip it.
    async_timeout: float = 300.0
    # Seconds results (and async job markers) stay readable in Redis.
    result_ttl: int = 600
    # Most jobs a worker predicts in one call.
    batch_max: int = 64
    # Milliseconds a worker waits to fill a batch once its first job arrived.
    batch_wait_ms: int = 5
    # Worker processes `mlapi run` starts (each single-threaded).
    workers: int = field(default_factory=lambda: os.cpu_count() or 1,
                         metadata={"default": "one per core"})
    # BLAS threads of one worker process (set with threadpoolctl at start); 1 so that one worker per
    # core does not oversubscribe.
    worker_threads: int = 1
    # Port of the API.
    port: int = 8000
    # Address the API binds to (`0.0.0.0` in a container).
    host: str = "127.0.0.1"
    # gunicorn worker processes of the API.
    api_processes: int = 2
    # Threads per API process (each waiting request holds one).
    api_threads: int = 32
    # The local model archive (.skops; metadata beside it as .json): what a worker serves when the
    # registry has no usable champion, and registers when it has none.
    model_path: Path | None = field(default=None,
                                    metadata={"default": "`$MLAPI_STATE_DIR/models/default.skops`"})
    # Where Apertium's Spanish translations of a user's own CSV corpus are kept between
    # trainings (the default corpus's translation is shipped in the package and needs none);
    # unset: $XDG_CACHE_HOME/mlapi.
    cache_dir: Path | None = field(default=None, metadata={"default": "`~/.cache/mlapi`"})
    # Port of a worker's /healthz and /metrics; 0 turns them off (several local workers would
    # clash).
    worker_metrics_port: int = field(default=0, metadata={"default": "`0` (image: `9100`)"})
    # Address the worker's and the feedback service's /healthz and /metrics bind to.
    probe_host: str = "0.0.0.0"
    # Seconds a worker's or the feedback service's loop may go without progress (a finished poll,
    # or a deliberate wait on Redis, Kafka or the database) before its /healthz answers 503, so
    # Kubernetes restarts it.
    liveness_seconds: float = 60.0
    # Largest request body in bytes (413 above).
    max_body_bytes: int = 1_048_576
    # JSON file of hashed API keys (`mlapi tokens create`); unset: the API is open to anyone.
    api_keys_file: Path | None = None
    # Rate limit per API key (per client address when auth is off), e.g. 600/minute; texts of a
    # batch count one each. Empty: no limit. Units: second, minute, hour.
    rate_limit: str = ""
    # Log level of every process.
    log_level: str = "INFO"
    # --- feedback loop -------------------------------------------------------------------
    # Topic of user corrections: the log of record, created with unlimited retention.
    feedback_topic: str = "mlapi.feedback"
    # Partitions of the feedback topic (corrections of one text always share a partition).
    feedback_partitions: int = 3
    # Consumer group of the feedback service.
    feedback_group: str = "feedback"
    # Seconds a prediction stays correctable by its id (its text is kept that long in Redis).
    feedback_window: int = 3600
    # SQLAlchemy URL of the corrections database, e.g. `postgresql+psycopg://user:pass@host/db`;
    # empty: SQLite `$MLAPI_STATE_DIR/feedback.db`.
    feedback_db: str = ""
    # Most corrections one client (API key, or address when auth is off) gets counted per UTC day.
    feedback_client_cap: int = 100
    # A correction that contradicts a prediction at least this confident is held until a second
    # client confirms it (or `mlapi feedback confirm`); 1 turns the guard off.
    feedback_hold_confidence: float = 0.9
    # Port of the feedback service's /healthz and /metrics; 0 turns them off.
    feedback_metrics_port: int = field(default=0, metadata={"default": "`0` (image: `9101`)"})
    # Sample weight of one accepted correction against one corpus row when retraining.
    retrain_feedback_weight: float = 10.0
    # Share of corrections kept out of training to evaluate on (chosen by a hash of the text).
    retrain_holdout: float = 0.2
    # A candidate is refused when it scores more than this below the champion on any set.
    retrain_margin: float = 0.01
    # Model versions kept in the registry (the champion and the one before it are always kept).
    model_keep: int = 5
    # Seconds between a worker's checks of the champion pointer (besides the notification).
    model_check_seconds: float = 5.0

    @property
    def feedback_db_url(self) -> str:
        return self.feedback_db or f"sqlite:///{(self.state_dir / 'feedback.db').resolve()}"

    @property
    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlapi"

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
        positive = ["predict_partitions", "batch_max", "workers", "worker_threads",
                    "api_processes", "api_threads",
                    "result_ttl", "max_body_bytes",
                    "kafka_session_timeout_ms", "topic_replication", "feedback_partitions",
                    "feedback_window", "feedback_client_cap", "model_keep"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"MLAPI_{name.upper()} must be at least 1, got {getattr(self, name)}")
        for name in ("feedback_hold_confidence", "retrain_holdout", "retrain_margin"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"MLAPI_{name.upper()} must be between 0 and 1")
        for name in ("predict_timeout", "async_timeout", "retrain_feedback_weight",
                     "model_check_seconds", "liveness_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MLAPI_{name.upper()} must be positive")
        protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if self.kafka_security_protocol not in protocols:
            raise ValueError(f"MLAPI_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(protocols)}, "
                             f"got {self.kafka_security_protocol!r}")
        if self.kafka_security_protocol.startswith("SASL_"):
            mechanisms = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
            if self.kafka_sasl_mechanism not in mechanisms:
                raise ValueError(f"MLAPI_KAFKA_SASL_MECHANISM must be one of {', '.join(mechanisms)} "
                                 f"with {self.kafka_security_protocol}, got "
                                 f"{self.kafka_sasl_mechanism!r}")
            if not (self.kafka_sasl_username and self.kafka_sasl_password):
                raise ValueError("MLAPI_KAFKA_SASL_USERNAME and MLAPI_KAFKA_SASL_PASSWORD are "
                                 f"required with {self.kafka_security_protocol}")
        self._validate_tls()
        if self.batch_wait_ms < 0:
            raise ValueError("MLAPI_BATCH_WAIT_MS must not be negative")
        self.rate_limit_parts  # noqa: B018 - raises ValueError for a malformed limit
        ports = (self.port, self.worker_metrics_port, self.feedback_metrics_port)
        if not all(0 <= port <= 65535 for port in ports):
            raise ValueError("ports must be between 0 and 65535")

    def _validate_tls(self) -> None:
        """Client certificates come with their keys, only where TLS is used, from files that exist."""
        kafka_tls = self.kafka_security_protocol in ("SSL", "SASL_SSL")
        redis_tls = self.redis_url.startswith("rediss://")
        for system, cert, key in (("KAFKA", self.kafka_ssl_certfile, self.kafka_ssl_keyfile),
                                  ("REDIS", self.redis_ssl_certfile, self.redis_ssl_keyfile)):
            if (cert is None) != (key is None):
                given, missing = ("CERTFILE", "KEYFILE") if key is None else ("KEYFILE", "CERTFILE")
                raise ValueError(f"MLAPI_{system}_SSL_{given} is set but MLAPI_{system}_SSL_{missing} "
                                 "is not: a client certificate needs its private key, give both")
        if self.kafka_ssl_certfile is not None and not kafka_tls:
            raise ValueError("MLAPI_KAFKA_SSL_CERTFILE and MLAPI_KAFKA_SSL_KEYFILE need "
                             "MLAPI_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL, got "
                             f"{self.kafka_security_protocol!r}")
        redis_files = {"MLAPI_REDIS_SSL_CAFILE": self.redis_ssl_cafile,
                       "MLAPI_REDIS_SSL_CERTFILE": self.redis_ssl_certfile,
                       "MLAPI_REDIS_SSL_KEYFILE": self.redis_ssl_keyfile}
        given = [name for name, path in redis_files.items() if path is not None]
        if given and not redis_tls:
            scheme = self.redis_url.partition("://")[0] + "://" if self.redis_url else "(empty)"
            raise ValueError(f"{' and '.join(given)} need a rediss:// (TLS) MLAPI_REDIS_URL, "
                             f"got {scheme}")
        # A CA bundle without TLS is ignored (as before); every file TLS will read must exist.
        files = dict(redis_files)
        files.update({"MLAPI_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
                      "MLAPI_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile})
        if kafka_tls:
            files["MLAPI_KAFKA_SSL_CAFILE"] = self.kafka_ssl_cafile
        for name, path in files.items():
            if path is None:
                continue
            if not path.is_file():
                raise ValueError(f"{name}={str(path)!r}: no such file")
            if not os.access(path, os.R_OK):
                raise ValueError(f"{name}={str(path)!r}: not readable by this user")

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
