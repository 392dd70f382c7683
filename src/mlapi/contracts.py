"""The JSON shapes mlapi exchanges: requests, Kafka job messages, stored results.

The request schemas are the ones ``/openapi.json`` publishes, so what the API validates and
what it documents cannot drift apart. Nothing here imports scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator

SCHEMA_VERSION = 1
LABELS = ("negative", "neutral", "positive")
# The course exercise answered in Spanish; /predict keeps its words.
COURSE_LABELS = {"negative": "Negativo", "neutral": "Neutral", "positive": "Positivo"}

MAX_TEXT_CHARS = 5000
MAX_BATCH_TEXTS = 64

# "Has a character that is not whitespace", spelled out: the published schema is read with
# ECMA-262 regexes, where \S matches U+001C..U+001F, while Python's re (our validator) treats
# those as whitespace; an explicit class means the same in both.
NOT_BLANK = "[^\\t\\n\\u000b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]"

_NOT_BLANK = re.compile(NOT_BLANK)

_TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TEXT_CHARS,
    "pattern": NOT_BLANK,
    "description": "Text to classify; not empty after trimming, at most 5,000 characters.",
    "examples": ["I love this phone, the battery lasts for days"],
}

PREDICT_REQUEST_SCHEMA = {
    "type": "object",
    "description": 'Either "text" (one prediction) or "texts" (a batch, answered in order).',
    "properties": {
        "text": _TEXT,
        "texts": {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": MAX_BATCH_TEXTS},
    },
    "additionalProperties": False,
    "oneOf": [{"required": ["text"]}, {"required": ["texts"]}],
}

PREDICTION_SCHEMA = {
    "type": "object",
    "required": ["id", "label", "score", "probabilities", "model_version"],
    "properties": {
        "id": {"type": "string"},
        "label": {"enum": list(LABELS)},
        "score": {"type": "number", "minimum": 0, "maximum": 1,
                  "description": "Positivity: P(positive) + P(neutral) / 2."},
        "probabilities": {
            "type": "object",
            "required": list(LABELS),
            "properties": {label: {"type": "number", "minimum": 0, "maximum": 1} for label in LABELS},
        },
        "model_version": {"type": "string"},
    },
}

_predict_validator = Draft202012Validator(PREDICT_REQUEST_SCHEMA)


class ValidationFailed(ValueError):
    """A request body that does not match its schema; ``str()`` is a human detail."""


def _field_name(path) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _describe(error) -> str:
    where = _field_name(error.absolute_path)
    kind = error.validator
    if kind == "type":
        expected = {"object": "a JSON object", "string": "a string", "array": "a list of strings"}
        return f"{where} must be {expected.get(error.validator_value, error.validator_value)}"
    if kind in ("minLength", "pattern"):
        return f"{where} must not be empty or only whitespace"
    if kind == "maxLength":
        return f"{where} is longer than {error.validator_value} characters"
    if kind == "minItems":
        return f"{where} must hold at least one text"
    if kind == "maxItems":
        return f"{where} holds more than {error.validator_value} texts; split the batch"
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s) {', '.join(map(repr, extra))}; send \"text\" or \"texts\""
    if kind == "oneOf":
        return 'send exactly one of "text" (a string) or "texts" (a list of 1 to 64 strings)'
    return f"{where}: {error.message}"


def validate_predict_request(body: object) -> tuple[list[str], bool]:
    """Return ``(texts, is_batch)`` of a valid predict body, or raise ``ValidationFailed``."""
    # The most specific error first: a bad item says more than "oneOf failed".
    errors = sorted(_predict_validator.iter_errors(body),
                    key=lambda e: (e.validator == "oneOf", -len(e.absolute_path)))
    if errors:
        raise ValidationFailed(_describe(errors[0]))
    assert isinstance(body, dict)
    return ([body["text"]], False) if "text" in body else (list(body["texts"]), True)


def validate_course_text(text: str | None, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """The course's /predict rule: a non-empty text within the size limit, else None."""
    if text is None or not _NOT_BLANK.search(text) or len(text) > max_chars:
        return None
    return text


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class PredictJob:
    """One Kafka message on the predict topic: one or several texts from one request."""

    items: list[dict]  # [{"id": ..., "text": ...}]
    deadline: float  # epoch seconds; workers skip the job after it
    job_id: str = field(default_factory=new_id)
    request_id: str = ""
    enqueued: float = field(default_factory=time.time)
    batch: bool = False  # answered as {"predictions": [...]} even when it holds one text
    owner: str = ""  # name of the API key that created it; only that key may read it
    v: int = SCHEMA_VERSION

    @classmethod
    def for_texts(cls, texts: list[str], deadline: float, request_id: str = "",
                  batch: bool = False, owner: str = "") -> PredictJob:
        ids = [new_id() for _ in texts]
        # A single-text job uses its prediction id as job id, so /v1/jobs/<id> is the prediction's.
        job_id = new_id() if batch else ids[0]
        return cls(items=[{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)],
                   deadline=deadline, job_id=job_id, request_id=request_id, batch=batch,
                   owner=owner)

    def to_bytes(self) -> bytes:
        return json.dumps({"v": self.v, "job": self.job_id, "items": self.items,
                           "deadline": self.deadline, "enqueued": self.enqueued,
                           "request_id": self.request_id, "batch": self.batch,
                           "owner": self.owner},
                          separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> PredictJob:
        """Parse a message; raises ``ValueError`` for anything that is not a valid job."""
        try:
            data = json.loads(raw)
            items = data["items"]
            if not isinstance(items, list) or not all(
                    isinstance(i, dict) and isinstance(i.get("id"), str)
                    and isinstance(i.get("text"), str) for i in items):
                raise ValueError("items must be a list of {id, text}")
            return cls(items=items, deadline=float(data["deadline"]), job_id=str(data["job"]),
                       request_id=str(data.get("request_id", "")),
                       enqueued=float(data.get("enqueued", 0.0)), batch=bool(data.get("batch")),
                       owner=str(data.get("owner", "")),
                       v=int(data.get("v", 1)))
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a predict job: {exc}") from None


@dataclass(frozen=True)
class JobResult:
    """A worker's answer to one PredictJob, stored in Redis for the API to read back.

    ``status`` is ``done`` (``predictions`` in the job's order), ``expired`` (the deadline passed
    before a worker picked the job up) or ``error`` (the model failed on it: ``detail`` names the
    exception type). ``to_dict`` is the stored form, one JSON object per job.
    """

    job_id: str
    status: str
    owner: str = ""
    queued_s: float | None = None
    model_version: str = ""
    batch: bool = False
    worker: str = ""
    predictions: list[dict] = field(default_factory=list)
    detail: str = ""
    v: int = SCHEMA_VERSION

    @classmethod
    def done(cls, job: PredictJob, probabilities: list[dict], model_version: str, worker: str,
             picked: float) -> JobResult:
        return cls(job.job_id, "done", job.owner, round(max(0.0, picked - job.enqueued), 4),
                   model_version, job.batch, worker,
                   [prediction(item["id"], p, model_version)
                    for item, p in zip(job.items, probabilities, strict=True)])

    @classmethod
    def expired(cls, job: PredictJob, now: float) -> JobResult:
        return cls(job.job_id, "expired", job.owner, round(now - job.enqueued, 4))

    @classmethod
    def error(cls, job: PredictJob, detail: str) -> JobResult:
        return cls(job.job_id, "error", job.owner, detail=detail)

    def to_dict(self) -> dict:
        base = {"v": self.v, "job": self.job_id, "status": self.status, "owner": self.owner}
        if self.status == "done":
            return {**base, "model_version": self.model_version, "batch": self.batch,
                    "queued_s": self.queued_s, "worker": self.worker,
                    "predictions": self.predictions}
        if self.status == "expired":
            return {**base, "queued_s": self.queued_s}
        return {**base, "detail": self.detail}


def prediction(pred_id: str, probabilities: dict[str, float], model_version: str) -> dict:
    """A prediction in the public contract, from class probabilities."""
    probs = {label: round(float(probabilities.get(label, 0.0)), 6) for label in LABELS}
    label = max(LABELS, key=lambda lab: probs[lab])
    score = round(min(1.0, probs["positive"] + probs["neutral"] / 2), 6)
    return {"id": pred_id, "label": label, "score": score, "probabilities": probs,
            "model_version": model_version}



# --- Open Inference Protocol v2 (REST) ---------------------------------------------------------
# The shapes of KServe's / Triton's "V2" protocol as mlapi speaks it: one model, one BYTES input
# of texts, label / probabilities / prediction_id outputs. api/oip.py validates requests with
# this schema first, so what /openapi.json publishes is what is enforced.
OIP_MODEL_NAME = "sentiment"
OIP_INPUT = "text"
OIP_OUTPUTS = {  # name -> (datatype, shape with -1 for the batch)
    "label": ("BYTES", [-1]),
    "probabilities": ("FP32", [-1, len(LABELS)]),
    "prediction_id": ("BYTES", [-1]),
}
_OIP_PARAMETERS = {"type": "object", "description": "Protocol parameters; mlapi reads "
                   "binary_data_output (Triton's binary tensor extension) and ignores others."}
INFER_REQUEST_SCHEMA = {
    "type": "object",
    "description": f"One BYTES tensor of 1 to {MAX_BATCH_TEXTS} texts, shape [n] or [n, 1]. "
                   "Triton's binary tensor extension (Inference-Header-Content-Length) is "
                   "accepted too, as tritonclient sends it by default.",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string", "description": "Echoed in the response."},
        "parameters": _OIP_PARAMETERS,
        "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"type": "string", "examples": [OIP_INPUT]},
                "datatype": {"const": "BYTES"},
                "shape": {"type": "array", "minItems": 1, "maxItems": 2,
                          "prefixItems": [{"type": "integer", "minimum": 1,
                                           "maximum": MAX_BATCH_TEXTS}],
                          "items": {"const": 1},
                          "description": "[n] or [n, 1]; n must equal the number of texts."},
                "parameters": {"type": "object", "properties": {
                    "content_type": {"enum": ["str"], "description": "As MLServer sends it."},
                    "binary_data_size": {"type": "integer", "minimum": 0}}},
                "data": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH_TEXTS,
                         "items": {"oneOf": [_TEXT, {"type": "array", "items": _TEXT,
                                                     "minItems": 1, "maxItems": 1}]},
                         "description": "The texts, flat or one per row."},
            }}},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"enum": list(OIP_OUTPUTS)},
                           "parameters": {"type": "object"}}},
            "description": "Which outputs to return; all of them when left out."},
    },
}
INFER_RESPONSE_SCHEMA = {
    "type": "object",
    "required": ["model_name", "model_version", "outputs"],
    "properties": {
        "model_name": {"const": OIP_MODEL_NAME},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name", "datatype", "shape"],
            "properties": {"name": {"enum": list(OIP_OUTPUTS)},
                           "datatype": {"enum": ["BYTES", "FP32"]},
                           "shape": {"type": "array", "items": {"type": "integer"}},
                           "parameters": {"type": "object"},
                           "data": {"type": "array"}}}},
    },
}
_infer_validator = Draft202012Validator(INFER_REQUEST_SCHEMA)


def validate_infer_request(body: object, binary: bool = False) -> None:
    """Check an OIP infer body against ``INFER_REQUEST_SCHEMA``; raise ``ValidationFailed``.

    With ``binary`` (Triton's binary tensor extension), the input's texts follow the JSON part,
    so its ``data`` is not required here; the caller reads and checks them.
    """
    if binary and isinstance(body, dict) and isinstance(body.get("inputs"), list):
        body = {**body, "inputs": [{**i, "data": ["-"]} if isinstance(i, dict) and "data" not in i
                                   else i for i in body["inputs"]]}
    # The datatype, then the shape, then the deepest error: what a client most likely got wrong.
    errors = sorted(_infer_validator.iter_errors(body),
                    key=lambda e: ("datatype" not in e.absolute_path,
                                   "shape" not in e.absolute_path, -len(e.absolute_path)))
    if not errors:
        return
    error = errors[0]
    where = _field_name(error.absolute_path)
    kind = error.validator
    if kind == "const" and where.endswith("datatype"):
        raise ValidationFailed(f"{where} must be BYTES (UTF-8 texts), got {error.instance!r}")
    if where == "inputs[0].shape[0]" and kind == "maximum":
        raise ValidationFailed(f"inputs[0] holds {error.instance} texts, more than "
                               f"{MAX_BATCH_TEXTS}; split the batch")
    if where.startswith("inputs[0].shape") or (kind == "type" and where.endswith("shape")):
        raise ValidationFailed(f"inputs[0].shape must be [n] or [n, 1] with n from 1 to "
                               f"{MAX_BATCH_TEXTS}, got {_short(body, 'shape')}")
    if kind == "maxItems" and where == "inputs":
        raise ValidationFailed(f"this model takes one input, {OIP_INPUT!r} (BYTES); "
                               f"got {len(error.instance)}")
    if kind == "enum" and where.endswith("content_type"):
        raise ValidationFailed(f"{where} {error.instance!r} is not supported: send \"str\" "
                               "or leave it out")
    if kind == "enum" and where.startswith("outputs"):
        raise ValidationFailed(f"{where}: no output {error.instance!r}; this model has "
                               f"{', '.join(OIP_OUTPUTS)}")
    if kind == "oneOf" and where.startswith("inputs[0].data["):
        raise ValidationFailed(f"{where} must be a text (1 to {MAX_TEXT_CHARS} characters, "
                               "not only whitespace) or a one-text list")
    raise ValidationFailed(_describe(error))


def _short(body: object, key: str) -> str:
    try:
        return json.dumps(body["inputs"][0][key])[:80]
    except (KeyError, IndexError, TypeError):
        return "nothing"


# --- feedback ----------------------------------------------------------------------------------
FEEDBACK_REQUEST_SCHEMA = {
    "type": "object",
    "description": 'A correction: the right "label" for a prediction "id" (its text is looked up) '
                   'or for a "text".',
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$",
               "description": "The id of a prediction (from /v1/predict) made within "
                              "MLAPI_FEEDBACK_WINDOW seconds.",
               "examples": ["3f2b8c9d0e1f4a5b6c7d8e9f0a1b2c3d"]},
        "text": _TEXT,
        "label": {"enum": list(LABELS), "description": "The right answer.",
                  "examples": ["negative"]},
    },
    "required": ["label"],
    "additionalProperties": False,
    "oneOf": [{"required": ["id"]}, {"required": ["text"]}],
}
_feedback_validator = Draft202012Validator(FEEDBACK_REQUEST_SCHEMA)


def validate_feedback_request(body: object) -> dict:
    """Return ``{"label", "id"|"text"}`` of a valid feedback body, or raise ``ValidationFailed``."""
    errors = sorted(_feedback_validator.iter_errors(body),
                    key=lambda e: (e.validator == "oneOf", -len(e.absolute_path)))
    if not errors:
        assert isinstance(body, dict)
        return dict(body)
    error = errors[0]
    if error.validator == "oneOf":
        raise ValidationFailed('send exactly one of "id" (a prediction id) or "text", with "label"')
    if error.validator == "enum" or (error.validator == "required" and "label" in error.message):
        raise ValidationFailed(f"label must be one of {', '.join(LABELS)}")
    if error.validator == "pattern" and list(error.absolute_path) == ["id"]:
        raise ValidationFailed("id must be a prediction id: 32 hex characters")
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        raise ValidationFailed(f"unknown field(s) {', '.join(map(repr, extra))}; "
                               'send "id" or "text", and "label"')
    raise ValidationFailed(_describe(error))


@dataclass
class FeedbackMessage:
    """One message on the feedback topic: a correction (label) or a flagged report (no label)."""

    text: str
    label: str | None  # None: "this answer is wrong" without the right one (flagged)
    client: str  # the API key's name, or "addr:<ip>" when auth is off: the unit of per-client caps
    source: str = "api"  # api | page | course-form
    prediction: dict | None = None  # {"id", "label", "probabilities", "model_version"}
    feedback_id: str = field(default_factory=new_id)
    received: float = field(default_factory=time.time)
    request_id: str = ""
    v: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps({"v": self.v, "feedback_id": self.feedback_id, "text": self.text,
                           "label": self.label, "client": self.client, "source": self.source,
                           "prediction": self.prediction, "received": self.received,
                           "request_id": self.request_id}, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> FeedbackMessage:
        """Parse and validate; raises ``ValueError`` saying what is wrong."""
        try:
            data = json.loads(raw)
            text, label = data["text"], data.get("label")
            if not isinstance(text, str) or validate_course_text(text) is None:
                raise ValueError(f"text must be 1 to {MAX_TEXT_CHARS} characters")
            if label is not None and label not in LABELS:
                raise ValueError(f"label {label!r} is not one of {', '.join(LABELS)}")
            prediction = data.get("prediction")
            if prediction is not None and not (isinstance(prediction, dict)
                                               and prediction.get("label") in LABELS):
                raise ValueError("prediction must be an object with a label")
            return cls(text=text, label=label, client=str(data["client"]),
                       source=str(data.get("source", "api")), prediction=prediction,
                       feedback_id=str(data["feedback_id"]),
                       received=float(data.get("received", 0.0)),
                       request_id=str(data.get("request_id", "")), v=int(data.get("v", 1)))
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError,
                UnicodeDecodeError) as exc:
            raise ValueError(f"not a feedback message: {exc}") from None

    @property
    def partition_key(self) -> str:
        # Corrections of one text share a partition, so the service sees them in order.
        return hashlib.sha256(self.text.encode()).hexdigest()[:32]
