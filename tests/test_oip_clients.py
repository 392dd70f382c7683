"""The Open Inference Protocol v2 with clients nobody here wrote: tritonclient[http] and the
KServe SDK's REST client, against the API as the image runs it (`mlapi api`: gunicorn) in
front of the real broker, Redis and a worker; auth off and on."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from mlapi import auth
from mlapi.contracts import LABELS, MAX_BATCH_TEXTS
from mlapi.local import servers

from .conftest import child_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
MODEL = "sentiment"
TEXTS = ["I love this phone, it is wonderful", "terrible service, I hate it",
         "me encanta, es maravilloso", "el peor hotel, una porquería"]


def as_text(element) -> str:
    # BYTES elements come back as bytes from binary tensors, as str from JSON ones.
    return element.decode() if isinstance(element, bytes) else element


@pytest.fixture(scope="module", params=["auth-off", "auth-on"])
def api(request, base_settings, session_worker, state_dir):
    """(base URL, headers to send) of a running `mlapi api`."""
    port = servers.free_port()
    settings = base_settings.replace(port=port, api_processes=1)
    headers = {}
    if request.param == "auth-on":
        keys = state_dir / f"oip-keys-{uuid.uuid4().hex[:6]}.json"
        headers = {"Authorization": f"Bearer {auth.create(keys, 'oip', ['predict'])}"}
        settings = settings.replace(api_keys_file=keys)
    server = servers.Server("api", [sys.executable, "-m", "mlapi", "api"], port,
                            state_dir / "logs" / f"oip-api-{port}.log",
                            child_env(settings)).start(timeout=60)
    try:
        yield f"127.0.0.1:{port}", headers
    finally:
        server.stop()


# ---- tritonclient[http] ----------------------------------------------------------------------
# Each call gets a copy of the headers: tritonclient adds Inference-Header-Content-Length to the
# dict it is given, which would then go, stale, with the next request.

def triton_input(texts, binary=True, shape=None):
    tensor = triton.InferInput("text", shape or [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=np.object_), binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_triton_infers_a_batch(api, binary):
    url, headers = api
    client = triton.InferenceServerClient(url=url)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary)
               for name in ("label", "probabilities")]
    result = client.infer(MODEL, [triton_input(TEXTS, binary)], outputs=outputs,
                          headers=dict(headers))
    labels = [as_text(label) for label in result.as_numpy("label")]
    assert labels[:2] == ["positive", "negative"]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(TEXTS), len(LABELS)) and probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)
    assert result.get_response()["model_version"]


def test_triton_batch_at_the_limit_and_over_it(api):
    url, headers = api
    client = triton.InferenceServerClient(url=url)
    texts = [f"{TEXTS[i % 4]} #{i}" for i in range(MAX_BATCH_TEXTS)]
    result = client.infer(MODEL, [triton_input(texts)], headers=dict(headers))  # all outputs, binary
    assert len(result.as_numpy("label")) == MAX_BATCH_TEXTS
    assert len(result.as_numpy("prediction_id")) == MAX_BATCH_TEXTS
    with pytest.raises(InferenceServerException, match=f"more than {MAX_BATCH_TEXTS}") as err:
        client.infer(MODEL, [triton_input([*texts, "one more"])], headers=dict(headers))
    assert err.value.status() == "400"


def test_triton_bad_datatype_and_shape_are_400(api):
    url, headers = api
    client = triton.InferenceServerClient(url=url)
    floats = triton.InferInput("text", [2], "FP32")
    floats.set_data_from_numpy(np.array([0.5, 1.5], dtype=np.float32))
    with pytest.raises(InferenceServerException, match="must be BYTES") as err:
        client.infer(MODEL, [floats], headers=dict(headers))
    assert err.value.status() == "400"
    square = np.array([["a", "b"], ["c", "d"]], dtype=np.object_)
    wide = triton.InferInput("text", [2, 2], "BYTES")
    wide.set_data_from_numpy(square)
    with pytest.raises(InferenceServerException, match=r"must be \[n\] or \[n, 1\]"):
        client.infer(MODEL, [wide], headers=dict(headers))


def test_triton_metadata_health_and_a_missing_model(api):
    url, headers = api
    client = triton.InferenceServerClient(url=url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["name"] == "mlapi"
    assert client.is_model_ready(MODEL, headers=dict(headers))
    meta = client.get_model_metadata(MODEL, headers=dict(headers))
    assert meta["inputs"][0]["datatype"] == "BYTES"
    assert meta["parameters"]["labels"] == list(LABELS)
    with pytest.raises(InferenceServerException, match="no model 'nope'") as err:
        client.get_model_metadata("nope", headers=dict(headers))
    assert err.value.status() == "404"
    assert not client.is_model_ready("nope", headers=dict(headers))


def test_triton_without_a_token(api):
    url, headers = api
    client = triton.InferenceServerClient(url=url)
    if not headers:  # auth off: anyone may infer
        assert client.infer(MODEL, [triton_input(TEXTS)]).as_numpy("label").shape == (4,)
        return
    with pytest.raises(InferenceServerException, match="Authorization: Bearer") as err:
        client.infer(MODEL, [triton_input(TEXTS)])
    assert err.value.status() == "401"


# ---- the KServe SDK's REST client, in a venv of its own (see tests/kserve_client.py) ---------

KSERVE_PYTHON = ROOT / ".tools" / "kserve" / "bin" / "python"


@pytest.fixture(scope="module")
def kserve(api):
    """What tests/kserve_client.py reports against this stack (one run: the SDK is slow to import)."""
    if not KSERVE_PYTHON.exists():
        pytest.skip(f"{KSERVE_PYTHON} is missing: `make test` builds it")
    url, headers = api
    run = subprocess.run([str(KSERVE_PYTHON), str(ROOT / "tests" / "kserve_client.py"),
                          f"http://{url}", json.dumps(headers), str(MAX_BATCH_TEXTS)],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_kserve_infers_a_batch(kserve):
    infer = kserve["infer"]
    assert infer["labels"][:2] == ["positive", "negative"]
    assert infer["probabilities_shape"] == [len(TEXTS), len(LABELS)]
    assert all(abs(total - 1) < 1e-3 for total in infer["row_sums"])
    # The SDK's InferResponse.from_bytes keeps model_name and drops model_version; the
    # tritonclient test above checks the version.
    assert infer["model_name"] == MODEL
    assert kserve["at_limit"] == MAX_BATCH_TEXTS


def test_kserve_health_and_readiness(kserve):
    assert kserve["health"] == {"live": True, "ready": True, "model_ready": True}


@pytest.mark.parametrize("case, status, fragment", [
    ("datatype", 400, "must be BYTES"),
    ("shape", 400, "must be [n] or [n, 1]"),
    ("over-the-batch-limit", 400, "split the batch"),
    ("missing-model", 404, "no model 'nope'"),
])
def test_kserve_errors(kserve, case, status, fragment):
    error = kserve["errors"][case]
    assert (error["status"], fragment in error["message"]) == (status, True), error


def test_kserve_without_a_token(kserve, api):
    _, headers = api
    error = kserve["errors"]["no-token"]
    assert error["status"] == (401 if headers else 200), error
