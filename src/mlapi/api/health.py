"""Probes and model info: /healthz, /readyz, /v1/models."""

from __future__ import annotations

from collections import Counter

from flask import Blueprint

from . import resources, spec
from .problems import Problem

bp = Blueprint("health", __name__)

SCHEMAS = {
    "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    "Readiness": {"type": "object", "required": ["status", "checks", "workers", "serving"],
                  "properties": {"status": {"const": "ready"},
                                 "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
                                 "workers": {"type": "integer", "minimum": 0},
                                 "serving": {"type": "boolean"}}},
    "Models": {"type": "object", "required": ["champion", "current", "versions"],
               "properties": {"champion": {"type": "string"},
                              "current": spec.ref("ModelVersion"),
                              "versions": {"type": "array", "items": spec.ref("ModelVersion")},
                              "workers": {"type": "object", "additionalProperties": {"type": "integer"},
                                          "description": "Live workers per model version"}}},
    "ModelVersion": {"type": "object", "required": ["version"],
                     "properties": {"version": {"type": "string"}, "created": {"type": "string"},
                                    "metrics": {"type": "object"}, "evaluation": {"type": "object"},
                                    "decision": {"type": "object"}, "feedback": {"type": "object"},
                                    "sha256": {"type": "string"}, "champion": {"type": "boolean"},
                                    "serving_workers": {"type": "integer"}}},
}


@bp.get("/healthz")
@spec.operation("GET", "healthz", "Liveness: the process answers",
                responses={"200": spec.json_response("Alive", "Status")})
def healthz():
    # Liveness: the process answers. Dependencies are /readyz's business; restarting the API
    # because Redis is down would not bring Redis back.
    return {"status": "ok"}


@bp.get("/readyz")
@spec.operation("GET", "readyz", "Readiness: Redis and Kafka reachable",
                responses={"200": spec.json_response("Ready, with the live worker count", "Readiness"),
                           "503": "Redis or Kafka unreachable"})
def readyz():
    """Ready = this process reaches Redis and Kafka. The live worker count is reported, not
    required: Kubernetes routes only to ready api pods, and an api unready for lack of workers
    could no longer queue async jobs, take feedback, serve results or even say "no worker"
    in problem+json; the worker tier has its own probes and autoscaler."""
    checks = {"redis": resources.store().ping(), "kafka": resources.producer().ping()}
    if not all(checks.values()):
        down = ", ".join(name for name, ok in checks.items() if not ok)
        raise Problem(503, "Service Unavailable", f"not ready: {down} unreachable",
                      {"Retry-After": "2"}, checks=checks)
    workers = resources.live_workers()  # the same cached count predictions use
    return {"status": "ready", "checks": checks, "workers": workers, "serving": workers > 0}


SUMMARY_KEYS = ("version", "kind", "languages", "created", "origin", "metrics", "evaluation",
                "decision", "corpus", "embedding", "translation",
                "feedback", "sha256", "size_bytes", "sklearn_version", "train_rows")


@bp.get("/v1/models")
@spec.operation("GET", "getModels",
                "The champion model, every kept version with its scores, and what workers serve",
                access=spec.KEY,
                responses={"200": spec.json_response("The model registry", "Models"),
                           "503": "Redis unreachable, or no worker has registered a model yet"})
def models():
    """The champion, every kept version, and which versions the live workers serve."""
    registry = resources.registry()
    champion = registry.champion()
    if champion is None:
        raise Problem(503, "Service Unavailable",
                      "no model is registered yet; start a worker (mlapi worker), which "
                      "registers its model when the registry is empty", {"Retry-After": "5"})
    serving = Counter(w.get("model_version") for w in resources.store().workers())
    versions = [{**_summary(meta), "champion": meta["version"] == champion,
                 "serving_workers": serving.get(meta["version"], 0)}
                for meta in registry.versions()]
    current = next((v for v in versions if v["champion"]), {"version": champion})
    return {"champion": champion, "current": current, "versions": versions,
            "workers": dict(serving)}


def _summary(meta: dict) -> dict:
    return {k: meta[k] for k in SUMMARY_KEYS if k in meta}
