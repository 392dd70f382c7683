"""The Open Inference Protocol v2 with clients nobody here wrote: tritonclient[http] and the
KServe SDK's REST client, against the API as the image runs it (`mlapi api`: gunicorn) in
front of the real broker, Redis and a worker; auth off and on."""

from __future__ import annotations

import asyncio
import sys
import uuid

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from kserve.inference_client import InferenceRESTClient, RESTConfig
from kserve.protocol.infer_type import InferInput, InferRequest
from tritonclient.utils import InferenceServerException

from mlapi import auth
from mlapi.contracts import LABELS, MAX_BATCH_TEXTS
from mlapi.local import servers

from .conftest import child_env

pytestmark = pytest.mark.integration
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


# ---- the KServe SDK's REST client ------------------------------------------------------------

def kserve_call(method: str, *args, **kwargs):
    async def call():
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            return await getattr(client, method)(*args, **kwargs)
        finally:
            await client.close()
    return asyncio.run(call())


def kserve_request(texts, datatype="BYTES", shape=None):
    return InferRequest(model_name=MODEL, infer_inputs=[
        InferInput(name="text", shape=shape or [len(texts)], datatype=datatype, data=texts)])


def test_kserve_infers_a_batch(api):
    url, headers = api
    response = kserve_call("infer", f"http://{url}", kserve_request(TEXTS), model_name=MODEL,
                           headers=headers)
    outputs = {out.name: out for out in response.outputs}
    labels = [as_text(label) for label in outputs["label"].as_numpy()]
    assert labels[:2] == ["positive", "negative"]
    probabilities = outputs["probabilities"].as_numpy()
    assert probabilities.shape == (len(TEXTS), len(LABELS))
    # The SDK's InferResponse.from_bytes keeps model_name and drops model_version; the
    # tritonclient test above checks the version.
    assert response.model_name == MODEL


def test_kserve_health_and_readiness(api):
    url, headers = api
    assert kserve_call("is_server_live", f"http://{url}") is True
    assert kserve_call("is_server_ready", f"http://{url}") is True
    assert kserve_call("is_model_ready", f"http://{url}", MODEL, headers=headers) is True


@pytest.mark.parametrize("request_, model, status, fragment", [
    (kserve_request([0.5], datatype="FP32"), MODEL, 400, "must be BYTES"),
    (kserve_request(["a", "b"], shape=[2, 2]), MODEL, 400, "must be [n] or [n, 1]"),
    (kserve_request(["a"] * (MAX_BATCH_TEXTS + 1)), MODEL, 400, "split the batch"),
    (kserve_request(["a"]), "nope", 404, "no model 'nope'"),
], ids=["datatype", "shape", "over-the-batch-limit", "missing-model"])
def test_kserve_errors(api, request_, model, status, fragment):
    url, headers = api
    with pytest.raises(httpx.HTTPStatusError) as err:
        kserve_call("infer", f"http://{url}", request_, model_name=model, headers=headers)
    assert err.value.response.status_code == status
    assert fragment in str(err.value)  # the SDK puts our "error" in its message
