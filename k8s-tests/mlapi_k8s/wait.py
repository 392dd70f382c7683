"""Waiting with a deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str | Callable[[], str],
               interval: float = 2.0) -> T:
    """Call ``condition`` until it returns a truthy value (returned) or ``timeout`` s pass.

    On timeout: AssertionError naming ``what`` (a string, or a callable giving the current state)
    and the last value seen. Exceptions of ``condition`` propagate.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {detail} (last: {last!r})")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment variable ``name``, else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value
