"""The JSON shapes mlapi exchanges: requests, Kafka job messages, stored results.

The request schemas are the ones ``/openapi.json`` publishes, so what the API validates and
what it documents cannot drift apart. Nothing here imports scikit-learn.
"""

from __future__ import annotations

import json
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

_TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TEXT_CHARS,
    "pattern": r"\S",
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
    if text is None or not text.strip() or len(text) > max_chars:
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


def prediction(pred_id: str, probabilities: dict[str, float], model_version: str) -> dict:
    """A prediction in the public contract, from class probabilities."""
    probs = {label: round(float(probabilities.get(label, 0.0)), 6) for label in LABELS}
    label = max(LABELS, key=lambda lab: probs[lab])
    score = round(min(1.0, probs["positive"] + probs["neutral"] / 2), 6)
    return {"id": pred_id, "label": label, "score": score, "probabilities": probs,
            "model_version": model_version}

