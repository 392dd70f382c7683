"""`mlapi run`: the whole service as local processes, in the foreground.

Redis and a Kafka-protocol broker (unless MLAPI_REDIS_URL / MLAPI_KAFKA_BOOTSTRAP point at
running ones), MLAPI_WORKERS worker processes, the feedback service (SQLite in MLAPI_STATE_DIR
unless MLAPI_FEEDBACK_DB says otherwise) and the API under gunicorn. It trains the
default model first when there is none, waits until a prediction goes through end to end,
prints the URL, and on Ctrl-C or SIGTERM stops every process it started (newest first).

While it runs it supervises what it started (``supervisor.py``): a worker or the feedback
service that exits is restarted with back-off, and ``stack.json`` shows each process's pid,
restarts and last exit. Redis, the broker or the API exiting, or a child crashing again and
again, stops everything, with a message saying which process and why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from .. import dispatch
from ..api.wsgi import gunicorn_argv
from ..config import Settings
from ..contracts import PredictJob
from ..kafka_bus import Producer, QueueUnavailable
from . import servers
from .supervisor import Child, RestartPolicy

READY_TIMEOUT = 90.0


class Stack:
    def __init__(self, settings: Settings, console: Console | None = None,
                 log_to_files: bool = False, policy: RestartPolicy | None = None):
        self.settings = settings
        self.console = console or Console(stderr=True)
        self.log_to_files = log_to_files
        self.policy = policy or RestartPolicy()
        self.children: list[Child] = []
        self.state_dir = settings.state_dir
        self._ready = False
        self._stop = False
        self.upgrade_wanted = False  # a first start: train the multilingual model meanwhile
        self.upgrade = None

    @property
    def servers(self) -> list[servers.Server]:
        """Every process started, oldest first."""
        return [child.server for child in self.children]

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    # --- start ----------------------------------------------------------------------------
    def start(self) -> Stack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_model()
        changes = {}
        if not self.settings.redis_url:
            port = servers.free_port()
            self._start(servers.redis_server(port, self.state_dir))
            changes["redis_url"] = f"redis://127.0.0.1:{port}/0"
        if not self.settings.kafka_bootstrap:
            port = servers.free_port()
            self._start(servers.kafka_broker(port, self.state_dir))
            changes["kafka_bootstrap"] = f"127.0.0.1:{port}"
        self.settings = self.settings.replace(**changes)
        if servers.port_open(self.settings.port, self.settings.host):
            raise servers.ServerError(f"port {self.settings.port} is taken; set MLAPI_PORT")

        from .. import kafka_bus

        kafka_bus.ensure_topics(self.settings)
        env = self.child_env()
        for n in range(self.settings.workers):
            self._start(servers.Server(f"worker-{n + 1}", [sys.executable, "-m", "mlapi", "worker"],
                                       0, self._log(f"worker-{n + 1}"), env), restartable=True)
        self._start(servers.Server("feedback", [sys.executable, "-m", "mlapi", "feedback", "serve"],
                                   0, self._log("feedback"), env), restartable=True)
        metrics_dir = self.state_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        api_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir.resolve())}
        self._start(servers.Server("api", gunicorn_argv(), self.settings.port, self._log("api"), api_env))
        self.wait_ready()
        self._ready = True
        self.write_state()
        return self

    def write_state(self) -> None:
        """stack.json: where the servers are (for `mlapi retrain` & co.) and each process's state.

        Written to a temporary file and renamed, so a reader never sees half of it.
        """
        state = {"url": self.url, "redis_url": self.settings.redis_url,
                 "kafka_bootstrap": self.settings.kafka_bootstrap, "pid": os.getpid(),
                 "workers": self.settings.workers,
                 "processes": {child.name: child.state() for child in self.children}}
        path = self.state_dir / "stack.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(path)

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")}
        env.update(self.settings.as_env())
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _log(self, name: str) -> Path | None:
        # The service's own logs go to the terminal; Redis's and the broker's to files.
        return self.state_dir / "logs" / f"{name}.log" if self.log_to_files else None

    def _start(self, server: servers.Server, restartable: bool = False) -> None:
        server.start()
        self.children.append(Child(server, restartable, self.policy))

    def _ensure_model(self) -> None:
        """A model to serve; on a first start the fast kind, with the multilingual one to come."""
        from .upgrade import MULTILINGUAL

        path = self.settings.resolved_model_path
        default_location = self.settings.model_path is None
        better = path.parent / MULTILINGUAL
        if default_location and better.exists():
            # What workers register when the registry is empty (e.g. a new state dir for Redis).
            self.settings = self.settings.replace(model_path=better)
            return
        if not path.exists():
            self.console.print(f"[bold]No model at {path}: training the fast one on English "
                               "rows first (about 15 s)…")
            from ..model.training import train

            meta = train(path, console=self.console, kind="fast", spanish=False)
            self.console.print(f"Trained {meta['version']}: macro-F1 {meta['metrics']['macro_f1']}")
        self.upgrade_wanted = default_location

    def start_upgrade(self) -> None:
        from .upgrade import Upgrade

        if not self.upgrade_wanted or self.upgrade is not None:
            return
        log = self.state_dir / "logs" / "train-multilingual.log"
        self.upgrade = Upgrade(self.settings, self.settings.resolved_model_path.parent, log,
                               self.child_env())
        self.upgrade.start()
        self.console.print("Training the multilingual model in the background (Spanish rows, "
                           f"sentence embedding; a few minutes; log: {log}). It is promoted "
                           "when ready, and the workers swap to it without a restart.")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Ready = /readyz is 200, every worker beats, and one prediction goes through.

        With API keys on, the stack holds no token: it checks that the API refuses an anonymous
        prediction (401) and sends its warm-up job through Kafka and Redis itself.
        """
        deadline = time.monotonic() + timeout
        from ..redis_store import Store, StoreUnavailable

        store = Store(self.settings)
        try:
            while time.monotonic() < deadline:
                self.supervise()
                try:
                    if (http_request("GET", self.url + "/readyz")[0] == 200
                            and store.live_workers() >= self.settings.workers
                            and store.feedback_stats() is not None):
                        status, body = http_request("POST", self.url + "/v1/predict",
                                             {"text": "warm-up"}, timeout=10)
                        if status == 200 and not self.settings.api_keys_file:
                            return
                        if status == 401 and self.settings.api_keys_file and self._warm_up(store):
                            return
                except (OSError, StoreUnavailable):
                    pass
                time.sleep(0.3)
        finally:
            store.close()
        raise servers.ServerError(f"the stack was not ready within {timeout:g} s; "
                                  f"logs are in {self.state_dir / 'logs'}")

    def _warm_up(self, store) -> bool:
        """One job through the bus, as the API sends it: True once a worker answered it."""
        job = PredictJob.for_texts(["warm-up"], deadline=time.time() + 10, request_id="warm-up",
                                   batch=False, owner="")
        producer = Producer(self.settings, client_id="mlapi-run")
        try:
            dispatch.enqueue(store, producer, self.settings.predict_topic, job, 10)
            result = dispatch.await_result(store, job)
        except QueueUnavailable:
            return False
        finally:
            producer.close()
        return bool(result) and result.get("status") == "done"

    def supervise(self) -> None:
        """Restart children that exited (after their back-off); raise CrashLoop to give up."""
        changed = False
        for child in self.children:
            event = child.check()
            if event:
                changed = True
                self.console.print(f"[yellow]{escape(event)}", soft_wrap=True)
        if changed and self._ready:
            self.write_state()

    # --- run and stop ---------------------------------------------------------------------
    def serve_forever(self) -> int:
        """Block until SIGINT/SIGTERM (0), or until a child may not or cannot be restarted (1)."""
        def stop(signum, frame):
            self._stop = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not self._stop:
            try:
                self.supervise()
                done = self.upgrade.poll() if self.upgrade is not None else None
                if done:
                    self.console.print(done, soft_wrap=True)
            except servers.ServerError as exc:
                self.console.print(f"[red]{escape(str(exc))}\nStopping everything.", soft_wrap=True)
                return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        if self.upgrade is not None:
            self.upgrade.stop()
        # Newest first: the API stops taking requests before the workers and servers go.
        for server in reversed(self.servers):
            server.stop()
        self.children.clear()
        try:
            (self.state_dir / "stack.json").unlink()
        except FileNotFoundError:
            pass


def http_request(method: str, url: str, body: dict | None = None, timeout: float = 10.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def run(settings: Settings) -> int:
    console = Console(stderr=True)
    stack = Stack(settings, console)
    try:
        with console.status("Starting Redis, Kafka, workers and the API…"):
            stack.start()
        console.print(f"[bold green]mlapi is ready at {stack.url}[/] "
                      f"({settings.workers} worker(s); Redis {stack.settings.redis_url}, "
                      f"Kafka {stack.settings.kafka_bootstrap}). Ctrl-C stops it.")
        console.print(f"  curl -s {stack.url}/v1/predict -H 'Content-Type: application/json' "
                      "-d '{\"text\": \"I love it\"}'")
        stack.start_upgrade()
        return stack.serve_forever()
    except servers.ServerError as exc:
        console.print(f"[red]mlapi run failed: {escape(str(exc))}", soft_wrap=True)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting (training, waiting for readiness)
        return 130
    finally:
        stack.stop()
        console.print("Stopped every process mlapi run started.")
