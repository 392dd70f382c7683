"""Restarting `mlapi run`'s children the way a kubelet restarts a pod's containers.

A restartable child (a worker, the feedback service) that exits while the stack runs is started
again after a back-off that doubles on each crash (1 s, 2 s, 4 s ... up to ``max_backoff``) and
starts afresh once the child has stayed up for ``stable_after`` seconds, as Kubernetes'
CrashLoopBackOff does. Unlike a kubelet, `mlapi run` is a foreground command: a child that
crashes ``max_crashes`` times within ``window`` seconds is a crash loop, and the stack stops with
a message saying which child and why, rather than loop forever in a terminal.

A child that is not restartable (Redis, the broker, the API) stops the stack on its first exit:
the broker keeps its topics in memory, and gunicorn already restarts its own processes.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .servers import Server, ServerError


@dataclass(frozen=True)
class RestartPolicy:
    initial_backoff: float = 1.0
    max_backoff: float = 16.0
    # This many exits within `window` seconds is a crash loop: the stack gives up.
    max_crashes: int = 4
    window: float = 60.0
    # A child that stayed up this long starts its back-off afresh on its next exit.
    stable_after: float = 30.0


class CrashLoop(ServerError):
    """A child kept crashing, or one that may not be restarted exited."""


def describe_exit(code: int | None) -> str:
    """``-9`` -> "killed by SIGKILL", ``2`` -> "exit code 2"."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Child:
    """One supervised server: its restarts, recent exits and pending back-off."""

    def __init__(self, server: Server, restartable: bool, policy: RestartPolicy,
                 clock: Callable[[], float] = time.monotonic):
        self.server = server
        self.restartable = restartable
        self.policy = policy
        self.clock = clock
        self.restarts = 0
        self.last_exit: int | None = None
        self.restart_at: float | None = None  # set while waiting out a back-off
        self.started_at = clock()
        self._backoff = policy.initial_backoff
        self._exits: deque[float] = deque()

    @property
    def name(self) -> str:
        return self.server.name

    def check(self) -> str | None:
        """Restart or schedule a restart as needed; a line to log when something happened.

        Raises ``CrashLoop`` when the child may not be restarted or crashes too often.
        """
        now = self.clock()
        if self.restart_at is not None:
            if now < self.restart_at:
                return None
            self.restart_at = None
            self.server.start()
            self.restarts += 1
            self.started_at = now
            return f"{self.name} restarted (restart {self.restarts}, pid {self.server.process.pid})"
        if self.server.running:
            return None
        self.last_exit = self.server.process.returncode
        how = describe_exit(self.last_exit)
        if not self.restartable:
            raise CrashLoop(f"{self.name} exited ({how}); it is not restarted\n"
                            f"{self.server.log_tail()}")
        if now - self.started_at >= self.policy.stable_after:
            self._backoff = self.policy.initial_backoff
        self._exits.append(now)
        while self._exits and now - self._exits[0] > self.policy.window:
            self._exits.popleft()
        if len(self._exits) >= self.policy.max_crashes:
            raise CrashLoop(f"{self.name} crashed {len(self._exits)} times in "
                            f"{now - self._exits[0]:.0f} s (last: {how}); giving up\n"
                            f"{self.server.log_tail()}")
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.policy.max_backoff)
        self.restart_at = now + delay
        return f"{self.name} exited ({how}); restarting in {delay:g} s"

    def state(self) -> dict:
        """What stack.json shows of this child."""
        return {"pid": self.server.process.pid if self.server.running else None,
                "restarts": self.restarts, "last_exit": self.last_exit,
                "restartable": self.restartable,
                "state": "running" if self.server.running else
                         "backoff" if self.restart_at is not None else "exited"}
