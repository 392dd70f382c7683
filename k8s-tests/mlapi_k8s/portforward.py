"""`kubectl port-forward` as a subprocess, with the local port it picked."""

from __future__ import annotations

import collections
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_FORWARDING = re.compile(r"^Forwarding from (?P<addr>\S+):(?P<local>\d+) -> (?P<remote>\d+)\s*$")


def find_tool(name: str) -> str | None:
    """``name`` on PATH, else in the repository's .tools/bin (tools/fetch-helm.sh), else None."""
    found = shutil.which(name)
    if found:
        return found
    local = REPO / ".tools" / "bin" / name
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def parse_forwarding_line(line: str) -> int | None:
    """The local port of a ``Forwarding from 127.0.0.1:PORT -> REMOTE`` line, else None."""
    match = _FORWARDING.match(line.strip())
    return int(match["local"]) if match else None


class PortForward:
    """``kubectl port-forward TARGET :REMOTE`` until closed; ``.port`` is the local port.

    Use as a context manager. Start-up waits at most ``timeout`` s for the 'Forwarding from'
    line; kubectl exiting first, or the timeout, raises RuntimeError with its output.
    """

    def __init__(self, target: str, remote_port: int, namespace: str, *, kubectl: str = "kubectl",
                 timeout: float = 30.0, extra_args: tuple[str, ...] = ()):
        self.command = [kubectl, "port-forward", "--namespace", namespace, "--address", "127.0.0.1",
                        *extra_args, target, f":{remote_port}"]
        self.timeout = timeout
        self.port: int | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=50)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._closed = False

    def __enter__(self) -> PortForward:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> int:
        self._proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
        # Read every line for the process's whole life: kubectl blocks once its pipe is full.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.timeout
        try:
            while self.port is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no 'Forwarding from' line within {self.timeout:g} s from "
                                       f"{' '.join(self.command)}; output: {self._tail()}")
                try:
                    line = self._lines.get(timeout=left)
                except queue.Empty:
                    continue
                if line is None:
                    self._proc.wait()
                    raise RuntimeError(f"{' '.join(self.command)} exited with {self._proc.returncode} "
                                       f"before forwarding; output: {self._tail()}")
                self.port = parse_forwarding_line(line)
        except BaseException:
            self.close()
            raise
        return self.port

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.output.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def _tail(self) -> str:
        return " | ".join(self.output) or "(none)"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """Stop kubectl (SIGTERM, then SIGKILL after 5 s) and reap it; safe to call twice."""
        proc = self._proc
        if proc is None or self._closed:
            return
        self._closed = True
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None
