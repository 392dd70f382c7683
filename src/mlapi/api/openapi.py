"""GET /openapi.json: OpenAPI 3.1 for every endpoint and every error it can answer."""

from __future__ import annotations

import re

from flask import Blueprint, request

from .. import __version__
from ..contracts import (
    FEEDBACK_REQUEST_SCHEMA,
    INFER_REQUEST_SCHEMA,
    INFER_RESPONSE_SCHEMA,
    LABELS,
    MAX_BATCH_TEXTS,
    NOT_BLANK,
    OIP_MODEL_NAME,
    OIP_OUTPUTS,
    PREDICT_REQUEST_SCHEMA,
    PREDICTION_SCHEMA,
)
from .predict import WAIT_VALUES
from .problems import Problem

bp = Blueprint("openapi", __name__)


def _problem(description: str) -> dict:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _json(description: str, ref: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _oip_error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPError"}}}}


_COURSE_TEXT = {"type": "string", "minLength": 1, "maxLength": 5000, "pattern": NOT_BLANK}
_DOWN = _problem("Redis or Kafka is unreachable; retry after `Retry-After` seconds")

SPEC = {
    "openapi": "3.1.0",
    "info": {
        "title": "mlapi",
        "version": __version__,
        "description": "Sentiment analysis (negative / neutral / positive). Every error is "
                       "`application/problem+json` (RFC 9457) with a human `detail`.",
    },
    "paths": {
        "/v1/predict": {"post": {
            "summary": "Predict the sentiment of one text or a batch of up to 64",
            "operationId": "predict",
            "parameters": [{"name": "wait", "in": "query", "required": False,
                            "description": "false: answer 202 at once and poll Location",
                            "schema": {"type": "string", "enum": WAIT_VALUES, "default": "true"}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PredictRequest"},
                "examples": {"one": {"value": {"text": "I love this phone"}},
                             "batch": {"value": {"texts": ["great service", "it broke again"]}}}}}},
            "responses": {
                "200": {"description": "The prediction (or predictions, in input order)",
                        "content": {"application/json": {"schema": {"oneOf": [
                            {"$ref": "#/components/schemas/Prediction"},
                            {"$ref": "#/components/schemas/BatchPrediction"}]}}}},
                "202": _json("Queued (wait=false); poll the Location header", "Pending"),
                "400": _problem("Malformed JSON, a missing or wrong-typed field, an empty or too long text"),
                "413": _problem("Body larger than 1 MiB"),
                "415": _problem("Body not sent as application/json"),
                "503": _problem("Redis or Kafka is unreachable, or (wait=true) no worker is serving; "
                                "retry after `Retry-After` seconds, or queue with wait=false"),
                "504": _problem("No prediction before the deadline (MLAPI_PREDICT_TIMEOUT)"),
            }}},
        "/v1/jobs/{job_id}": {"get": {
            "summary": "The result of a job queued with wait=false",
            "operationId": "getJob",
            "parameters": [{"name": "job_id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}],
            "responses": {
                "200": {"description": "The job's result",
                        "content": {"application/json": {"schema": {"oneOf": [
                            {"$ref": "#/components/schemas/Prediction"},
                            {"$ref": "#/components/schemas/BatchPrediction"}]}}}},
                "202": _json("Still queued", "Pending"),
                "404": _problem("Unknown or expired job"),
                "503": _DOWN,
                "504": _problem("The job passed its deadline before a worker took it"),
            }}},
        "/v1/models": {"get": {
            "summary": "The champion model, every kept version with its scores, and what workers serve",
            "operationId": "getModels",
            "responses": {"200": _json("The model registry", "Models"),
                          "503": _problem("Redis unreachable, or no worker has registered a model yet")}}},
        "/v1/feedback": {"post": {
            "summary": "Correct a prediction (by its id) or give the right label for a text",
            "operationId": "feedback",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/FeedbackRequest"},
                "examples": {"by_id": {"value": {"id": "3f2b8c9d0e1f4a5b6c7d8e9f0a1b2c3d", "label": "negative"}},
                             "by_text": {"value": {"text": "el servicio fue pésimo", "label": "negative"}}}}}},
            "responses": {
                "202": _json("The broker has the correction; the feedback service will judge and store it",
                             "FeedbackReceipt"),
                "400": _problem("Malformed JSON, both or neither of id and text, a label that is not one of "
                                + ", ".join(LABELS)),
                "404": _problem("Unknown prediction id, or older than MLAPI_FEEDBACK_WINDOW"),
                "413": _problem("Body larger than 1 MiB"),
                "415": _problem("Body not sent as application/json"),
                "503": _DOWN,
            }}},
        "/v1/feedback/stats": {"get": {
            "summary": "Counts of corrections: received, accepted, held, flagged, rejected, by label",
            "operationId": "feedbackStats",
            "responses": {"200": _json("The feedback service's counts", "FeedbackStats"),
                          "503": _problem("Redis unreachable, or the feedback service has not published counts")}}},
        "/healthz": {"get": {"summary": "Liveness: the process answers", "operationId": "healthz",
                             "responses": {"200": _json("Alive", "Status")}}},
        "/readyz": {"get": {"summary": "Readiness: Redis and Kafka reachable", "operationId": "readyz",
                            "responses": {"200": _json("Ready, with the live worker count", "Readiness"),
                                          "503": _problem("Redis or Kafka unreachable")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/predict": {"post": {
            "summary": "Course-exercise compatible prediction (text in the query string)",
            "operationId": "coursePredict",
            "parameters": [{"name": "text", "in": "query", "required": True,
                            "schema": _COURSE_TEXT}],
            "responses": {
                "200": _json("Prediction in the course's format", "CoursePrediction"),
                "400": {"description": "No usable text in the query string (course format), or an "
                                       "unknown query parameter (problem+json)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CourseFailure"}},
                                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                "503": _json("Redis or Kafka unreachable, or no worker serving", "CourseFailure"),
                "504": _json("No prediction before the deadline", "CourseFailure"),
            }}},
        "/": {
            "get": {"summary": "A page to try predictions", "operationId": "page",
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}},
            "post": {"summary": "The page's form (course compatible: field text_data)",
                     "operationId": "pagePredict",
                     "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
                         "schema": {"type": "object", "properties": {"text_data": _COURSE_TEXT},
                                    "required": ["text_data"]}}}},
                     "responses": {code: {"description": desc, "content": {"text/html": {"schema": {"type": "string"}}}}
                                   for code, desc in (("200", "The page with the prediction"),
                                                      ("400", "The page asking for a text"),
                                                      ("503", "The page saying the service is down"),
                                                      ("504", "The page saying the deadline passed"))}},
        },
        "/feedback": {
            "get": {"summary": "The page (course compatible)", "operationId": "feedbackPage",
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}},
            "post": {"summary": "Report a wrong answer (course field report) or mark a prediction right/wrong",
                     "operationId": "feedbackForm",
                     "requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {
                         # A form field is one string: typed so, not as a bare enum that would admit
                         # arrays and objects no form can carry. Each field at most once, else 400.
                         "schema": {"type": "object", "properties": {
                             "report": {"type": "string", "description": "The text whose answer was wrong"},
                             "id": {"type": "string", "description": "The prediction's id (the page sends it)"},
                             "verdict": {"type": "string", "enum": ["", "right", "wrong"]},
                             "label": {"type": "string", "enum": ["", *LABELS]},
                             "token": {"type": "string"}},
                             "description": "Each field at most once; a repeated field is answered 400"}}}},
                     "responses": {code: {"description": desc, "content": {"text/html": {"schema": {"type": "string"}}}}
                                   for code, desc in (("200", "The page thanking for the report"),
                                                      ("400", "The page asking for a valid label or verdict, "
                                                              "or for each field once"),
                                                      ("401", "The page asking for an API token"),
                                                      ("403", "The page saying the token lacks the feedback scope"),
                                                      ("503", "The page saying the service is down"))}},
        },
    },
    "components": {"schemas": {
        "PredictRequest": PREDICT_REQUEST_SCHEMA,
        "Prediction": PREDICTION_SCHEMA,
        "BatchPrediction": {"type": "object", "required": ["predictions"],
                            "properties": {"predictions": {"type": "array",
                                                           "items": {"$ref": "#/components/schemas/Prediction"}}}},
        "Pending": {"type": "object", "required": ["id", "status"],
                    "properties": {"id": {"type": "string"}, "status": {"const": "pending"},
                                   "location": {"type": "string"}}},
        "Models": {"type": "object", "required": ["champion", "current", "versions"],
                   "properties": {"champion": {"type": "string"},
                                  "current": {"$ref": "#/components/schemas/ModelVersion"},
                                  "versions": {"type": "array", "items": {"$ref": "#/components/schemas/ModelVersion"}},
                                  "workers": {"type": "object", "additionalProperties": {"type": "integer"},
                                              "description": "Live workers per model version"}}},
        "ModelVersion": {"type": "object", "required": ["version"],
                         "properties": {"version": {"type": "string"}, "created": {"type": "string"},
                                        "metrics": {"type": "object"}, "evaluation": {"type": "object"},
                                        "decision": {"type": "object"}, "feedback": {"type": "object"},
                                        "sha256": {"type": "string"}, "champion": {"type": "boolean"},
                                        "serving_workers": {"type": "integer"}}},
        "FeedbackRequest": FEEDBACK_REQUEST_SCHEMA,
        "FeedbackReceipt": {"type": "object", "required": ["id", "status", "label"],
                            "properties": {"id": {"type": "string"}, "status": {"const": "received"},
                                           "label": {"enum": list(LABELS)},
                                           "prediction_id": {"type": ["string", "null"]}}},
        "FeedbackStats": {"type": "object",
                          "required": ["received", "accepted", "held", "flagged", "rejected", "by_label"],
                          "properties": {**{k: {"type": "integer"} for k in
                                            ("received", "accepted", "held", "flagged", "rejected",
                                             "duplicate", "clients")},
                                         "by_label": {"type": "object", "additionalProperties": {"type": "integer"}},
                                         "last_received": {"type": ["string", "null"]},
                                         "updated": {"type": "string"}}},
        "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "Readiness": {"type": "object", "required": ["status", "checks", "workers", "serving"],
                      "properties": {"status": {"const": "ready"},
                                     "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
                                     "workers": {"type": "integer", "minimum": 0},
                                     "serving": {"type": "boolean"}}},
        "CoursePrediction": {"type": "object", "required": ["success", "text", "prediction", "score"],
                             "properties": {"success": {"const": True}, "text": {"type": "string"},
                                            "prediction": {"enum": ["Positivo", "Neutral", "Negativo"]},
                                            "score": {"type": "number", "minimum": 0, "maximum": 1}}},
        "CourseFailure": {"type": "object", "required": ["success", "prediction", "score"],
                          "properties": {"success": {"const": False}, "prediction": {"type": "null"},
                                         "score": {"type": "null"}, "detail": {"type": "string"}}},
        "Problem": {"type": "object", "required": ["title", "status", "detail"],
                    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                   "status": {"type": "integer"}, "detail": {"type": "string"},
                                   "instance": {"type": "string"}}},
    }},
}


# --- Open Inference Protocol v2 (api/oip.py): errors in that protocol's {"error": ...} shape.
_NAME = {"name": "name", "in": "path", "required": True,
         "schema": {"type": "string", "enum": [OIP_MODEL_NAME]}}
_VERSION = {"name": "version", "in": "path", "required": True,
            "schema": {"type": "string"},
            "description": "The champion's version, or one a live worker serves"}
_OIP_DOWN = _oip_error("Redis or Kafka unreachable, or no model registered yet; retry after "
                       "`Retry-After` seconds")
SPEC["paths"]["/v2"] = {"get": {
    "summary": "Open Inference Protocol: server metadata", "operationId": "oipServerMetadata",
    "responses": {"200": _json("Name, version, extensions", "OIPServerMetadata")}}}
SPEC["paths"]["/v2/health/live"] = {"get": {
    "summary": "Open Inference Protocol: liveness", "operationId": "oipLive",
    "responses": {"200": _json("Alive", "OIPLive")}}}
SPEC["paths"]["/v2/health/ready"] = {"get": {
    "summary": "Open Inference Protocol: ready to infer (Redis, Kafka and a live worker)",
    "operationId": "oipReady",
    "responses": {"200": _json("Ready", "OIPReady"),
                  "503": _oip_error("Redis or Kafka unreachable, or no worker serving")}}}
for _suffix, _params, _tag in (("", [_NAME], ""), ("/versions/{version}", [_NAME, _VERSION], "Version")):
    _base = "/v2/models/{name}" + _suffix
    SPEC["paths"][_base] = {"get": {
        "summary": "Open Inference Protocol: model metadata (inputs, outputs, class order)",
        "operationId": f"oipModel{_tag}Metadata", "parameters": _params,
        "responses": {"200": _json("The model's tensors", "OIPModelMetadata"),
                      "404": _oip_error("No such model, or a version nobody serves"),
                      "503": _OIP_DOWN}}}
    SPEC["paths"][_base + "/ready"] = {"get": {
        "summary": "Open Inference Protocol: a live worker serves this model (version)",
        "operationId": f"oipModel{_tag}Ready", "parameters": _params,
        "responses": {"200": _json("Ready", "OIPModelReady"),
                      "404": _oip_error("No such model, or a version nobody serves"),
                      "503": _oip_error("No live worker serves it yet, or Redis/Kafka unreachable")}}}
    SPEC["paths"][_base + "/infer"] = {"post": {
        "summary": f"Open Inference Protocol: classify a BYTES tensor of 1 to {MAX_BATCH_TEXTS} texts",
        "operationId": f"oipInfer{_tag}", "parameters": _params,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/OIPInferRequest"},
            "examples": {"texts": {"value": {"inputs": [{
                "name": "text", "datatype": "BYTES", "shape": [2],
                "data": ["I love it", "el servicio fue pésimo"]}]}}}}}},
        "responses": {
            "200": {"description": "label (BYTES [n]), probabilities (FP32 [n, 3], in the order of "
                                   "the metadata's labels) and prediction_id (BYTES [n], for "
                                   "/v1/feedback); binary outputs when asked for "
                                   "(Inference-Header-Content-Length)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPInferResponse"}},
                                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "400": _oip_error("Not an infer request: a datatype other than BYTES, a wrong shape, "
                              "an empty or too long text, more than 64 texts, an unknown output"),
            "404": _oip_error("No such model, or a version nobody serves"),
            "413": _oip_error("Body larger than 1 MiB"),
            "429": _oip_error("MLAPI_RATE_LIMIT reached (each text counts one); wait Retry-After seconds"),
            "503": _oip_error("Redis or Kafka unreachable, no worker serving, or the model failed; "
                              "retry after `Retry-After` seconds"),
            "504": _oip_error("No prediction before the deadline (MLAPI_PREDICT_TIMEOUT)"),
        }}}
SPEC["components"]["schemas"].update({
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
                             "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/OIPTensorMetadata"}},
                             "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/OIPTensorMetadata"},
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
})

for _path, _method in (("/v1/predict", "post"), ("/v1/jobs/{job_id}", "get"), ("/v1/feedback", "post")):
    SPEC["paths"][_path][_method]["responses"]["429"] = _problem(
        "MLAPI_RATE_LIMIT reached for this key (or address); wait Retry-After seconds")
SPEC["paths"]["/predict"]["post"]["responses"]["429"] = _json("Rate limit reached", "CourseFailure")
SPEC["paths"]["/"]["post"]["responses"]["429"] = {
    "description": "The page saying the rate limit was reached",
    "content": {"text/html": {"schema": {"type": "string"}}}}

# path -> the scope it needs (None: any valid key), as api/auth.py enforces it
_SECURED = {"/v1/predict": "predict", "/v1/jobs/{job_id}": "predict", "/v1/models": None,
            "/predict": "predict", "/v1/feedback": "feedback", "/v1/feedback/stats": None,
            **{f"/v2/models/{{name}}{suffix}{end}": "predict" if end == "/infer" else None
               for suffix in ("", "/versions/{version}") for end in ("", "/ready", "/infer")}}
for _path, _scope in _SECURED.items():
    _error = _oip_error if _path.startswith("/v2/") else _problem
    for _op in SPEC["paths"][_path].values():
        _op["security"] = [{"bearerAuth": []}]
        _op["responses"]["401"] = _error("Missing, unknown or revoked token (WWW-Authenticate: Bearer)")
        if _scope:
            _op["responses"]["403"] = _error(f"The token lacks the '{_scope}' scope")
SPEC["components"]["securitySchemes"] = {"bearerAuth": {
    "type": "http", "scheme": "bearer",
    "description": "API key from `mlapi tokens create`; required when MLAPI_API_KEYS_FILE is set"}}


def query_parameters(rule: str, method: str) -> set[str] | None:
    """The query parameters /openapi.json documents for a route, None if it is undocumented."""
    path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)
    op = SPEC["paths"].get(path, {}).get(method.lower())
    if op is None:
        return None
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}


@bp.get("/openapi.json")
def openapi():
    return SPEC


@bp.before_app_request
def _reject_unknown_query_parameters():
    # A typo such as ?wiat=false should be told, not silently ignored.
    if request.url_rule is None:
        return
    known = query_parameters(request.url_rule.rule, request.method)
    unknown = sorted(set(request.args) - known) if known is not None else []
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise Problem(400, "Bad Request", f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
                                          f"this endpoint takes: {allowed}")
