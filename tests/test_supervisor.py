"""The restart policy of `mlapi run`: first on a fake clock with fake processes, then on the
real stack, started as `make run` starts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from mlapi.config import Settings
from mlapi.local import servers
from mlapi.local.stack import http_request as http
from mlapi.local.supervisor import Child, CrashLoop, RestartPolicy, describe_exit
from mlapi.redis_store import Store

from .conftest import start_run, wait_for


class FakeProcess:
    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None


class FakeServer:
    name = "worker-1"

    def __init__(self):
        self.starts = 0
        self.process = FakeProcess(100)

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def start(self):
        self.starts += 1
        self.process = FakeProcess(100 + self.starts)
        return self

    def crash(self, code: int = -9) -> None:
        self.process.returncode = code

    def log_tail(self) -> str:
        return "last log line"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POLICY = RestartPolicy(initial_backoff=1, max_backoff=8, max_crashes=4, window=60, stable_after=30)


@pytest.fixture
def clock():
    return Clock()


def test_a_crash_is_restarted_after_its_backoff(clock):
    server = FakeServer()
    child = Child(server, True, POLICY, clock)
    assert child.check() is None
    server.crash(-9)
    assert child.check() == "worker-1 exited (killed by SIGKILL); restarting in 1 s"
    assert child.state()["state"] == "backoff" and child.state()["last_exit"] == -9
    clock.now += 0.5
    assert child.check() is None and server.starts == 0
    clock.now += 0.5
    assert child.check() == "worker-1 restarted (restart 1, pid 101)"
    assert child.state() == {"pid": 101, "restarts": 1, "last_exit": -9, "restartable": True,
                             "state": "running"}


@pytest.mark.parametrize(("up_for", "expected"), [
    (0, ["1", "2", "4", "4", "4"]),   # crashes again at once: doubles up to the cap
    (31, ["1", "1", "1", "1", "1"]),  # up longer than stable_after each time: starts afresh
])
def test_backoff_doubles_up_to_the_cap_and_resets_after_a_stable_run(clock, up_for, expected):
    server = FakeServer()
    child = Child(server, True, RestartPolicy(initial_backoff=1, max_backoff=4, max_crashes=99,
                                              window=1000, stable_after=30), clock)
    delays = []
    for _ in range(5):
        server.crash(1)
        delays.append(child.check().rsplit(" ", 2)[1])
        clock.now = child.restart_at
        child.check()  # restarted
        clock.now += up_for
    assert delays == expected


def test_repeated_crashes_in_the_window_give_up_naming_the_process(clock):
    server = FakeServer()
    child = Child(server, True, POLICY, clock)
    for _ in range(3):
        server.crash(2)
        assert "restarting" in child.check()
        clock.now = child.restart_at
        child.check()
    server.crash(2)
    with pytest.raises(CrashLoop) as exc:
        child.check()
    message = str(exc.value)
    assert message.startswith("worker-1 crashed 4 times in ") and "exit code 2" in message
    assert "last log line" in message


def test_crashes_spread_over_more_than_the_window_are_not_a_loop(clock):
    server = FakeServer()
    child = Child(server, True, POLICY, clock)
    for _ in range(10):
        clock.now += 25  # a crash every 25 s: never 4 within 60 s
        server.crash(1)
        assert "restarting" in child.check()
        clock.now = child.restart_at
        child.check()
    assert child.restarts == 10


def test_a_child_that_may_not_restart_stops_the_stack_at_once(clock):
    server = FakeServer()
    server.name = "kafka"
    child = Child(server, False, POLICY, clock)
    server.crash(-15)
    with pytest.raises(CrashLoop, match=r"kafka exited \(killed by SIGTERM\); it is not restarted"):
        child.check()


@pytest.mark.parametrize(("code", "text"), [(-9, "killed by SIGKILL"), (0, "exit code 0"),
                                            (2, "exit code 2"), (None, "still running"),
                                            (-200, "killed by signal 200")])
def test_describe_exit(code, text):
    assert describe_exit(code) == text


# --- the real stack, as `make run` starts it ------------------------------------------------

def _stack_state(state) -> dict:
    return json.loads((state / "stack.json").read_text())


@pytest.mark.integration
@pytest.mark.slow
def test_make_run_survives_a_sigkilled_worker(tmp_path, model_path):
    # A generous deadline: the test is about no request being lost on a busy machine, not about
    # latency (the killed worker's jobs wait one session timeout and two rebalances).
    proc, url = start_run(tmp_path, model_path, MLAPI_WORKERS="2", MLAPI_PREDICT_TIMEOUT="30")
    try:
        victim = _stack_state(tmp_path)["processes"]["worker-1"]["pid"]
        total, kill_after = 600, 150
        answered = threading.Semaphore(0)

        def ask(i: int):
            status, body = http("POST", url + "/v1/predict",
                                {"text": f"prediction number {i}: I love it"}, timeout=60)
            answered.release()
            return status, json.loads(body)

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(ask, i) for i in range(total)]
            for _ in range(kill_after):
                assert answered.acquire(timeout=60), "the first answers never came"
            os.kill(victim, signal.SIGKILL)
            results = [f.result() for f in futures]
        statuses = Counter(status for status, _ in results)
        assert statuses == {200: total}, statuses
        assert len({body["id"] for _, body in results}) == total

        def restarted():
            worker = _stack_state(tmp_path)["processes"]["worker-1"]
            return worker if worker["restarts"] == 1 and worker["state"] == "running" else None

        worker1 = wait_for(restarted, 60, "worker-1 restarted in stack.json")
        assert worker1["pid"] != victim and worker1["last_exit"] == -signal.SIGKILL
        pids = {worker1["pid"], _stack_state(tmp_path)["processes"]["worker-2"]["pid"]}
        info = _stack_state(tmp_path)
        store = Store(Settings(redis_url=info["redis_url"]))
        try:
            def both_serving():
                # Keep jobs coming until the restarted worker has predicted some of them.
                http("POST", url + "/v1/predict", {"texts": [f"more {i}" for i in range(8)]})
                beats = {w["pid"]: w for w in store.workers() if w["pid"] in pids}
                return len(beats) == 2 and all(w["partitions"] and w["processed"] > 0
                                               for w in beats.values())
            wait_for(both_serving, 60, "both workers beating, assigned and predicting")
        finally:
            store.close()
        log = (tmp_path / "run.log").read_text()
        assert "worker-1 exited (killed by SIGKILL); restarting in 1 s" in log
        assert f"worker-1 restarted (restart 1, pid {worker1['pid']})" in log
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


@pytest.mark.integration
@pytest.mark.slow
def test_make_run_gives_up_on_a_worker_that_always_crashes(tmp_path):
    broken = tmp_path / "broken.skops"
    broken.write_bytes(b"not a model archive")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLAPI_")}
    # One worker, so which one crashes fourth first is not a race (the default is one per core).
    env.update(MLAPI_STATE_DIR=str(tmp_path / "state"), MLAPI_MODEL_PATH=str(broken),
               MLAPI_PORT=str(servers.free_port()), MLAPI_WORKERS="1", PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, "-m", "mlapi", "run"], env=env, capture_output=True,
                          text=True, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "mlapi run failed: worker-1 crashed 4 times in" in output
    assert "(last: exit code 2); giving up" in output
    assert output.count("worker-1 exited (exit code 2); restarting in") == 3
    assert "Stopped every process mlapi run started." in output
    # Nothing it started is left behind (Redis ran with --dir under the state folder).
    leftovers = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
                 if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
