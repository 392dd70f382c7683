"""Fixtures: a real Redis and a real Kafka-protocol broker on free loopback ports, a small
model trained once per session, worker processes, and the Flask app built with create_app."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from mlapi.api import create_app
from mlapi.api.resources import close_all
from mlapi.config import Settings
from mlapi.local import servers
from mlapi.redis_store import Store

# Small enough to train in ~2 s, big enough to tell "love" from "hate".
TEST_MODEL_ROWS = 6000


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mlapi-state")


@pytest.fixture(scope="session")
def redis_server(state_dir):
    server = servers.redis_server(servers.free_port(), state_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka_server(state_dir):
    server = servers.kafka_broker(servers.free_port(), state_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(state_dir):
    """A real PostgreSQL (Debian's package; .ci/run installs it) on a free port."""
    if servers.postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed: `apt-get install postgresql` (.ci/run does)")
    # Outside pytest's 0700 temp folders: as root, the server runs as the postgres user.
    data = Path(tempfile.mkdtemp(prefix="mlapi-pg-"))
    data.chmod(0o755)
    server = servers.postgres_server(servers.free_port(), data / "data",
                                     state_dir / "logs" / "postgres.log").start(timeout=30)
    yield server
    server.stop()
    subprocess.run(["rm", "-rf", str(data)], check=False)


def new_postgres_db(server) -> str:
    """A fresh database on the server; its SQLAlchemy URL."""
    import psycopg

    name = f"mlapi_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=mlapi dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://mlapi@127.0.0.1:{server.port}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each database test runs against SQLite and a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedback.db'}"
    return new_postgres_db(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="session")
def model_path(state_dir) -> Path:
    from rich.console import Console

    from mlapi.model.training import train

    path = state_dir / "models" / "test.skops"
    train(path, limit=TEST_MODEL_ROWS, console=Console(quiet=True), kind="fast")
    return path


def make_settings(redis_port: int, kafka_port: int, model_path: Path, **overrides) -> Settings:
    """Settings isolated by a unique topic, group and Redis prefix."""
    tag = uuid.uuid4().hex[:8]
    values = dict(redis_url=f"redis://127.0.0.1:{redis_port}/0",
                  kafka_bootstrap=f"127.0.0.1:{kafka_port}", model_path=model_path,
                  predict_topic=f"mlapi.predict.{tag}", consumer_group=f"workers-{tag}",
                  redis_prefix=f"mlapi-{tag}", predict_partitions=4, log_level="INFO",
                  feedback_topic=f"mlapi.feedback.{tag}", feedback_group=f"feedback-{tag}",
                  model_check_seconds=1.0,
                  feedback_db=f"sqlite:///{model_path.parent / f'feedback-{tag}.db'}")
    values.update(overrides)
    return Settings(**values)


def child_env(settings: Settings) -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")},
            **settings.as_env(), "PYTHONUNBUFFERED": "1"}


def start_worker(settings: Settings, log_dir: Path, name: str = "worker") -> servers.Server:
    log = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
    return servers.Server(name, [sys.executable, "-m", "mlapi", "worker"], 0, log,
                          child_env(settings)).start()


def start_feedback_service(settings: Settings, log_dir: Path) -> servers.Server:
    log = log_dir / f"feedback-{uuid.uuid4().hex[:6]}.log"
    return servers.Server("feedback", [sys.executable, "-m", "mlapi", "feedback", "serve"], 0, log,
                          child_env(settings)).start()


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    """Poll ``condition()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.1)


def wait_workers(settings: Settings, count: int, timeout: float = 30.0,
                 assigned: bool = False) -> None:
    """Until ``count`` workers beat (and, with ``assigned``, each owns partitions)."""
    store = Store(settings)
    try:
        deadline = time.monotonic() + timeout
        while True:
            beats = store.workers()
            if assigned:
                beats = [b for b in beats if b.get("partitions")]
            if len(beats) >= count:
                return
            assert time.monotonic() < deadline, f"{count} worker(s) not up in {timeout} s"
            time.sleep(0.1)
    finally:
        store.close()


def warm_up(client, attempts: int = 20) -> None:
    """Until the consumer group has formed, the first jobs wait; get one through first."""
    for _ in range(attempts):
        if client.post("/v1/predict", json={"text": "warm-up"}).status_code == 200:
            return
    raise AssertionError("no prediction went through the pipeline")


@pytest.fixture(scope="session")
def base_settings(redis_server, kafka_server, model_path) -> Settings:
    return make_settings(redis_server.port, kafka_server.port, model_path)


@pytest.fixture(scope="session")
def session_worker(base_settings, state_dir):
    worker = start_worker(base_settings, state_dir / "logs")
    try:
        wait_workers(base_settings, 1)
        app = create_app(base_settings)
        warm_up(app.test_client())
        close_all(app)
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def settings(base_settings) -> Settings:
    return base_settings


@pytest.fixture
def app(settings, session_worker):
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    close_all(app)


@pytest.fixture
def client(app):
    return app.test_client()


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlapi", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def start_run(state: Path, model_path: Path, **env_values: str) -> tuple[subprocess.Popen, str]:
    """`mlapi run` as a user starts it (its output in ``state/run.log``); returns (process, url)
    once it has printed that it is ready, or fails with its log."""
    port = servers.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")}
    # One worker unless a test asks for more (the default is one per core).
    env.update(MLAPI_STATE_DIR=str(state), MLAPI_MODEL_PATH=str(model_path), MLAPI_PORT=str(port),
               PYTHONUNBUFFERED="1", **{"MLAPI_WORKERS": "1", **env_values})
    with (state / "run.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlapi", "run"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready():
        # stack.json is written just before the message: wait for the message itself.
        assert proc.poll() is None, (state / "run.log").read_text()
        return "ready at " + url in (state / "run.log").read_text()

    wait_for(ready, 120, "mlapi run ready")
    return proc, url
