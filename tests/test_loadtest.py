"""`make load` (loadtest/run.py + loadtest/locustfile.py) against a real `mlapi run`: every
scenario sends requests, the reports land in the report folder, and the threshold check fails a
run with one clear line. The stack runs with API keys on, so every scenario must carry the bearer
token. Locust runs as a subprocess, so gevent's monkey-patching never reaches this process.
Latency is not asserted: this machine's load varies."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlapi import auth
from mlapi.local import servers

from .conftest import start_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "loadtest" / "run.py"
# One row per request name in locust_stats.csv: each user class names its own requests.
EXPECTED_ROWS = {
    ("POST", "/v1/predict (single)"),    # SinglePredictUser
    ("POST", "/v1/predict (batch)"),     # BatchPredictUser
    ("GET", "/ (course)"),               # CoursePredictUser: the course's scenario...
    ("POST", "/predict (course)"),       # ...including its POST /predict?text=
    ("POST", "/v1/predict (feedback)"),  # FeedbackUser
    ("POST", "/v1/feedback"),
    ("GET", "/"),                        # PageUser
}
# Enough users that the weighted spread gives every class at least one (locust fills by weight).
USERS = 11


@pytest.fixture(scope="module")
def stack(tmp_path_factory, model_path):
    state = tmp_path_factory.mktemp("loadstack")
    keys = state / "api-keys.json"
    token = auth.create(keys, "load", ["predict", "feedback"])
    # A long predict deadline: this is about every scenario running, not about latency.
    proc, url = start_run(state, model_path, MLAPI_PREDICT_TIMEOUT="60",
                          MLAPI_API_KEYS_FILE=str(keys))
    try:
        yield {"url": url, "token": token}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def run_load(url: str, report_dir: Path, *extra: str, token: str | None = None
             ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLAPI_TOKEN", "LOADTEST_SHAPE")}
    # Short waits so a few seconds give every task of every user class its turn.
    env.update(LOADTEST_WAIT_MIN="0.05", LOADTEST_WAIT_MAX="0.2")
    if token:
        env["MLAPI_TOKEN"] = token
    cmd = [sys.executable, str(RUNNER), "--host", url, "--users", str(USERS),
           "--spawn-rate", str(USERS), "--duration", "5s", "--report-dir", str(report_dir), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


def stats_rows(report_dir: Path) -> dict[tuple[str, str], dict]:
    with (report_dir / "locust_stats.csv").open(newline="") as fh:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}


def test_every_scenario_runs_with_the_token_and_reports(stack, tmp_path):
    """With keys on, every scenario succeeds only if each request carries the bearer token."""
    out = tmp_path / "run"
    done = run_load(stack["url"], out, "--max-error-rate", "0", token=stack["token"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "load test passed" in done.stdout and "measured:" in done.stdout
    for name in ("locust_stats.csv", "locust_failures.csv", "locust_stats_history.csv",
                 "report.html", "locust.log", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    assert "<html" in (out / "report.html").read_text()[:2000].lower()
    rows = stats_rows(out)
    missing = EXPECTED_ROWS - set(rows)
    assert not missing, f"no requests from {missing}: {sorted(rows)}"
    for key in EXPECTED_ROWS:
        assert int(rows[key]["Request Count"]) > 0 and int(rows[key]["Failure Count"]) == 0, key
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"]["requests"] == int(rows[("", "Aggregated")]["Request Count"]) > 0


def test_an_impossible_threshold_fails_with_one_line(stack, tmp_path):
    done = run_load(stack["url"], tmp_path / "run", "--max-p95-ms", "0.001",
                    token=stack["token"])
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "measured:" in done.stdout  # the numbers are printed either way
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("load test FAILED: p95 "), done.stderr
    assert "(MAX_P95_MS)" in lines[0]


def test_without_the_token_every_request_fails_the_error_rate(stack, tmp_path):
    """Auth on and no MLAPI_TOKEN: predictions and feedback get 401, counted as errors."""
    done = run_load(stack["url"], tmp_path / "run", "--max-error-rate", "0.01")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stderr.strip().startswith("load test FAILED: error rate ")
    assert "(MAX_ERROR_RATE)" in done.stderr


def test_nothing_listening_is_a_clear_error(tmp_path):
    done = subprocess.run([sys.executable, str(RUNNER), "--host", f"http://127.0.0.1:{servers.free_port()}",
                           "--report-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "nothing answers at" in done.stderr
    assert not (tmp_path / "run").exists()
