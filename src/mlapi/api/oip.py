"""The Open Inference Protocol v2 (REST), as KServe, Triton and MLServer clients speak it.

Same pipeline, auth scopes, rate limit and deadlines as /v1/predict: an infer request is one
batch job on Kafka. Errors on /v2 are the protocol's ``{"error": "..."}`` (problems.py renders
them so); everything else about a request is shared with /v1 through ``jobs``.
"""

from __future__ import annotations

import json
import struct

from flask import Blueprint, Response, request

from .. import __version__
from ..contracts import (
    INFER_REQUEST_SCHEMA,
    INFER_RESPONSE_SCHEMA,
    LABELS,
    MAX_BATCH_TEXTS,
    OIP_INPUT,
    OIP_MODEL_NAME,
    OIP_OUTPUTS,
    ValidationFailed,
    validate_infer_request,
    validate_predict_request,
)
from . import jobs, resources, spec
from .problems import Problem

bp = Blueprint("oip", __name__, url_prefix="/v2")
HEADER_LENGTH = "Inference-Header-Content-Length"  # Triton's binary tensor extension
# What runs each kind (the API never imports it; the metadata only names it).
PLATFORMS = {"fast": "sklearn", "multilingual": "sklearn", "encoder": "onnxruntime"}

_NAME = {"name": "name", "in": "path", "required": True,
         "schema": {"type": "string", "enum": [OIP_MODEL_NAME]}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The champion's version, or one a live worker serves"}
_NO_SUCH_MODEL = "No such model, or a version nobody serves"
_VERSIONED = "/v2/models/<name>/versions/<version>"

SCHEMAS = {
    "OIPError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "OIPServerMetadata": {"type": "object", "required": ["name", "version", "extensions"],
                          "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                         "extensions": {"type": "array", "items": {"type": "string"}}}},
    "OIPLive": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
    "OIPReady": {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}},
    "OIPModelReady": {"type": "object", "required": ["name", "ready"],
                      "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}},
    "OIPModelMetadata": {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"],
                         "properties": {
                             "name": {"const": OIP_MODEL_NAME},
                             "versions": {"type": "array", "items": {"type": "string"}},
                             "platform": {"type": "string"},
                             "inputs": {"type": "array", "items": spec.ref("OIPTensorMetadata")},
                             "outputs": {"type": "array", "items": spec.ref("OIPTensorMetadata"),
                                         "description": ", ".join(OIP_OUTPUTS)},
                             "parameters": {"type": "object", "properties": {
                                 "labels": {"type": "array", "items": {"enum": list(LABELS)},
                                            "description": "The order of the probabilities' columns"},
                                 "kind": {"type": "string"},
                                 "max_batch_size": {"type": "integer"}}}}},
    "OIPTensorMetadata": {"type": "object", "required": ["name", "datatype", "shape"],
                          "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                                         "shape": {"type": "array", "items": {"type": "integer"}}}},
    "OIPInferRequest": INFER_REQUEST_SCHEMA,
    "OIPInferResponse": INFER_RESPONSE_SCHEMA,
}


@bp.get("")
@spec.operation("GET", "oipServerMetadata", "Open Inference Protocol: server metadata",
                responses={"200": spec.json_response("Name, version, extensions", "OIPServerMetadata")})
def server_metadata():
    return {"name": "mlapi", "version": __version__, "extensions": ["binary_tensor_data"]}


@bp.get("/health/live")
@spec.operation("GET", "oipLive", "Open Inference Protocol: liveness",
                responses={"200": spec.json_response("Alive", "OIPLive")})
def live():
    return {"live": True}


@bp.get("/health/ready")
@spec.operation("GET", "oipReady",
                "Open Inference Protocol: ready to infer (Redis, Kafka and a live worker)",
                responses={"200": spec.json_response("Ready", "OIPReady"),
                           "503": "Redis or Kafka unreachable, or no worker serving"})
def ready():
    """Ready to infer: Redis and Kafka reachable and a worker serving (unlike /readyz, the
    Kubernetes probe, which leaves the worker count out; see health.py)."""
    if not (resources.store().ping() and resources.producer().ping()):
        raise Problem(503, "Service Unavailable", "not ready: Redis or Kafka is unreachable",
                      {"Retry-After": "2"})
    if resources.live_workers() == 0:
        raise jobs.no_worker()
    return {"ready": True}


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
@spec.operation(
    "GET", "oipModelMetadata", "Open Inference Protocol: model metadata (inputs, outputs, class order)",
    access=spec.KEY, parameters=(_NAME, _VERSION), ids={_VERSIONED: "oipModelVersionMetadata"},
    responses={"200": spec.json_response("The model's tensors", "OIPModelMetadata"),
               "404": _NO_SUCH_MODEL,
               "503": "Redis or Kafka unreachable, or no model registered yet; retry after "
                      "`Retry-After` seconds"})
def model_metadata(name: str, version: str | None = None):
    meta = _model(name, version)
    versions = [meta["version"]] if version else _served()
    return {"name": OIP_MODEL_NAME, "versions": versions,
            "platform": PLATFORMS.get(meta.get("kind", ""), "mlapi"),
            "inputs": [{"name": OIP_INPUT, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": out, "datatype": datatype, "shape": shape}
                        for out, (datatype, shape) in OIP_OUTPUTS.items()],
            "parameters": {"labels": list(LABELS), "kind": meta.get("kind", ""),
                           "max_batch_size": MAX_BATCH_TEXTS}}


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
@spec.operation(
    "GET", "oipModelReady", "Open Inference Protocol: a live worker serves this model (version)",
    access=spec.KEY, parameters=(_NAME, _VERSION), ids={_VERSIONED + "/ready": "oipModelVersionReady"},
    responses={"200": spec.json_response("Ready", "OIPModelReady"),
               "404": _NO_SUCH_MODEL,
               "503": "No live worker serves it yet, or Redis/Kafka unreachable"})
def model_ready(name: str, version: str | None = None):
    meta = _model(name, version)
    if meta["version"] not in _served():
        raise Problem(503, "Service Unavailable",
                      f"no live worker serves version {meta['version']} yet",
                      {"Retry-After": "5"})
    return {"name": OIP_MODEL_NAME, "ready": True}


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
@spec.operation(
    "POST", "oipInfer", f"Open Inference Protocol: classify a BYTES tensor of 1 to {MAX_BATCH_TEXTS} texts",
    access=spec.KEY, scope="predict", parameters=(_NAME, _VERSION),
    ids={_VERSIONED + "/infer": "oipInferVersion"},
    body=spec.json_body("OIPInferRequest", {"texts": {"inputs": [{
        "name": "text", "datatype": "BYTES", "shape": [2],
        "data": ["I love it", "el servicio fue pésimo"]}]}}),
    responses={
        "200": {"description": "label (BYTES [n]), probabilities (FP32 [n, 3], in the order of "
                               "the metadata's labels) and prediction_id (BYTES [n], for "
                               "/v1/feedback); binary outputs when asked for "
                               "(Inference-Header-Content-Length)",
                "content": {"application/json": {"schema": spec.ref("OIPInferResponse")},
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        "400": "Not an infer request: a datatype other than BYTES, a wrong shape, an empty or too "
               "long text, more than 64 texts, an unknown output",
        "404": _NO_SUCH_MODEL,
        "413": "Body larger than 1 MiB",
        "429": "MLAPI_RATE_LIMIT reached (each text counts one); wait Retry-After seconds",
        "503": "Redis or Kafka unreachable, no worker serving, or the model failed; retry after "
               "`Retry-After` seconds",
        "504": "No prediction before the deadline (MLAPI_PREDICT_TIMEOUT)",
    })
def infer(name: str, version: str | None = None):
    _model(name, version)
    body, texts = _read_request()
    _, result = jobs.submit(texts, batch=True, wait=True)
    predictions = jobs.answer(result)["predictions"]
    return _response(body, predictions)


def _served() -> list[str]:
    """The versions live workers serve (their heartbeats: one Redis read of them all)."""
    return sorted({w.get("model_version") for w in resources.store().workers()} - {None})


def _model(name: str, version: str | None) -> dict:
    """The metadata of the version asked for, or the champion's.

    A version that is neither the champion nor served by a live worker is a 404: workers serve
    what they have loaded, so a job cannot be routed to a version no worker holds.
    """
    if name != OIP_MODEL_NAME:
        raise Problem(404, "Not Found", f"no model {name!r}: this server serves "
                                        f"{OIP_MODEL_NAME!r} (GET /v2/models/{OIP_MODEL_NAME})")
    registry = resources.registry()
    champion = registry.champion()
    if champion is None:
        raise Problem(503, "Service Unavailable", "no model is registered yet; start a worker",
                      {"Retry-After": "5"})
    wanted = version or champion
    # The heartbeats are read only for a version other than the champion: not on every infer.
    meta = registry.meta(wanted) if wanted == champion or wanted in _served() else None
    if meta is None:
        raise Problem(404, "Not Found", f"model {name!r} has no version {wanted!r} being "
                                        f"served; the champion is {champion!r}")
    return meta


def _read_request() -> tuple[dict, list[str]]:
    """The request's JSON part and its texts, from JSON or Triton's binary tensor extension."""
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH applies here (413)
    header_length = request.headers.get(HEADER_LENGTH)
    binary = b""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(raw):
            raise _bad(f"{HEADER_LENGTH} must be the length of the JSON part "
                       f"(0 to {len(raw)}), got {header_length!r}")
        raw, binary = raw[:int(header_length)], raw[int(header_length):]
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad("the request's JSON part is not UTF-8") from None
    except (json.JSONDecodeError, RecursionError):
        raise _bad("the request is not valid JSON (an OIP infer request: "
                   '{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], '
                   '"data": ["..."]}]})') from None
    # Binary only with the header: without it the texts are the JSON "data" (a stray
    # binary_data_size there is ignored, as there are no bytes to read).
    size = _binary_size(body) if header_length is not None else None
    try:
        validate_infer_request(body, binary=size is not None)
        tensor = body["inputs"][0]
        if size is not None:
            texts = _bytes_elements(binary, size)
        else:
            texts = [item[0] if isinstance(item, list) else item for item in tensor["data"]]
        if len(texts) != tensor["shape"][0]:
            raise ValidationFailed(f"inputs[0].shape {tensor['shape']} says "
                                   f"{tensor['shape'][0]} texts, the data holds {len(texts)}")
        validate_predict_request({"texts": texts})
    except ValidationFailed as exc:
        raise _bad(str(exc).replace("texts[", "inputs[0].data[")
                   .replace("texts ", "inputs[0] ")) from None
    return body, texts


def _binary_size(body: object) -> int | None:
    try:
        size = body["inputs"][0]["parameters"]["binary_data_size"]
    except (KeyError, IndexError, TypeError):
        return None
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _bytes_elements(binary: bytes, size: int) -> list[str]:
    """A BYTES tensor in binary form: each element a 4-byte little-endian length, then UTF-8."""
    if size != len(binary):
        raise ValidationFailed(f"inputs[0].parameters.binary_data_size is {size}, but "
                               f"{len(binary)} bytes follow the JSON part")
    texts, at = [], 0
    while at < size:
        if at + 4 > size:
            raise ValidationFailed("inputs[0]'s binary data ends inside an element's length")
        (length,) = struct.unpack_from("<I", binary, at)
        element = binary[at + 4:at + 4 + length]
        if len(element) != length:
            raise ValidationFailed("inputs[0]'s binary data ends inside an element")
        try:
            texts.append(element.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValidationFailed(f"inputs[0] element {len(texts)} is not UTF-8") from None
        at += 4 + length
        if len(texts) > MAX_BATCH_TEXTS:
            raise ValidationFailed(f"inputs[0] holds more than {MAX_BATCH_TEXTS} texts; "
                                   "split the batch")
    return texts


def _response(body: dict, predictions: list[dict]):
    n = len(predictions)
    data_of = {  # datatypes and shapes are the metadata's (OIP_OUTPUTS), -1 being the batch
        "label": [p["label"] for p in predictions],
        "probabilities": [p["probabilities"][label] for p in predictions for label in LABELS],
        "prediction_id": [p["id"] for p in predictions],
    }
    asked = body.get("outputs") or [{"name": name} for name in OIP_OUTPUTS]
    binary_default = bool((body.get("parameters") or {}).get("binary_data_output"))
    outputs, chunks = [], []
    for out in asked:
        datatype, shape = OIP_OUTPUTS[out["name"]]
        data = data_of[out["name"]]
        entry = {"name": out["name"], "datatype": datatype,
                 "shape": [n if size == -1 else size for size in shape]}
        if (out.get("parameters") or {}).get("binary_data", binary_default):
            chunk = _to_binary(datatype, data)
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            entry["data"] = data
        outputs.append(entry)
    head = {"model_name": OIP_MODEL_NAME, "model_version": predictions[0]["model_version"],
            "outputs": outputs}
    if isinstance(body.get("id"), str):
        head["id"] = body["id"]
    if not chunks:
        return head
    header = json.dumps(head, separators=(",", ":")).encode()
    return Response(header + b"".join(chunks), mimetype="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(header))})


def _to_binary(datatype: str, data: list) -> bytes:
    if datatype == "FP32":
        return struct.pack(f"<{len(data)}f", *data)
    encoded = [text.encode() for text in data]
    return b"".join(struct.pack("<I", len(e)) + e for e in encoded)


def _bad(detail: str) -> Problem:
    return Problem(400, "Bad Request", detail)
