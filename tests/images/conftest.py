"""The container engine the image tests drive, looked up when they run, never at import.

`make test` collects tests/images (and deselects it by marker) on machines with no engine at
all; only `make image-test` needs one.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

import pytest


@functools.cache
def engine() -> str:
    """$ENGINE, else docker when its engine answers, else podman."""
    chosen = os.environ.get("ENGINE")
    if chosen:
        return chosen
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker"
    if shutil.which("podman"):
        return "podman"
    pytest.fail("no docker engine and no podman: `make image-test` needs one (.ci/run installs "
                "podman: `apt-get install podman buildah runc`)", pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def container_engine() -> str:
    """Before any server starts: without an engine every image test fails at once, saying why."""
    return engine()
