"""The KServe SDK's REST client, run in its own venv (.tools/kserve, `make test` builds it):
kserve pins protobuf < 7 and psutil < 6 and brings a whole server (FastAPI, gRPC, pandas), which
would pull the project's venv away from the versions the images ship. tests/test_oip_clients.py
runs this once per stack and asserts on what it prints.

    python tests/kserve_client.py BASE_URL HEADERS_JSON MAX_BATCH_TEXTS  →  one JSON object
"""

import asyncio
import json
import sys

import httpx
from kserve.inference_client import InferenceRESTClient, RESTConfig
from kserve.protocol.infer_type import InferInput, InferRequest

MODEL = "sentiment"
TEXTS = ["I love this phone, it is wonderful", "terrible service, I hate it",
         "me encanta, es maravilloso", "el peor hotel, una porquería"]


def request(texts, datatype="BYTES", shape=None):
    return InferRequest(model_name=MODEL, infer_inputs=[
        InferInput(name="text", shape=shape or [len(texts)], datatype=datatype, data=texts)])


def text(element):
    return element.decode() if isinstance(element, bytes) else str(element)


async def main(base: str, headers: dict, limit: int) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    report: dict = {}
    try:
        response = await client.infer(base, request(TEXTS), model_name=MODEL, headers=headers)
        outputs = {out.name: out for out in response.outputs}
        probabilities = outputs["probabilities"].as_numpy()
        report["infer"] = {
            "model_name": response.model_name,
            "labels": [text(label) for label in outputs["label"].as_numpy()],
            "probabilities_shape": list(probabilities.shape),
            "row_sums": [float(row) for row in probabilities.sum(axis=1)],
        }
        at_limit = await client.infer(base, request([f"{TEXTS[i % 4]} #{i}" for i in range(limit)]),
                                      model_name=MODEL, headers=headers)
        report["at_limit"] = len({o.name: o for o in at_limit.outputs}["label"].as_numpy())
        report["health"] = {
            "live": await client.is_server_live(base),
            "ready": await client.is_server_ready(base),
            "model_ready": await client.is_model_ready(base, MODEL, headers=headers),
        }
        cases = {
            "datatype": (request([0.5], datatype="FP32"), MODEL),
            "shape": (request(["a", "b"], shape=[2, 2]), MODEL),
            "over-the-batch-limit": (request(["a"] * (limit + 1)), MODEL),
            "missing-model": (request(["a"]), "nope"),
            "no-token": (request(["a"]), MODEL),
        }
        report["errors"] = {}
        for name, (req, model) in cases.items():
            try:
                await client.infer(base, req, model_name=model,
                                   headers={} if name == "no-token" else headers)
                report["errors"][name] = {"status": 200, "message": ""}
            except httpx.HTTPStatusError as exc:  # the SDK puts our "error" in its message
                report["errors"][name] = {"status": exc.response.status_code, "message": str(exc)}
    finally:
        await client.close()
    return report


if __name__ == "__main__":
    base_url, headers_json, max_texts = sys.argv[1:4]
    print(json.dumps(asyncio.run(main(base_url, json.loads(headers_json), int(max_texts)))))
