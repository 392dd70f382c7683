"""The API's description, declared beside each route and assembled once into OpenAPI 3.1.

A view states what it is with ``@operation(...)``: its summary, parameters, body, the answers
it can give, and who may call it (``access``, ``scope``). The same declaration serves three
readers:

* ``build(app)`` walks the app's routes and writes ``/openapi.json`` from them (an undeclared
  route is an error at start-up, so nothing served goes undocumented);
* ``auth.py`` asks ``of(...)`` which token a request needs, so the scopes enforced and the
  scopes published cannot drift apart;
* ``openapi.py`` refuses query parameters the operation does not declare.

An answer given as a string is an error in the route's own shape: problem+json (RFC 9457), or
``{"error": ...}`` on the Open Inference Protocol's ``/v2`` paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask

from .problems import is_oip

# Who may call an operation (when MLAPI_API_KEYS_FILE turns authentication on).
OPEN = "open"  # anyone: probes, metrics, this document, the OIP server and health paths
KEY = "key"    # a valid bearer token, holding ``scope`` when one is named
PAGE = "page"  # an HTML form: its token field, checked by the view so it can answer with the page

ATTRIBUTE = "mlapi_operations"  # on a view function: {HTTP method: Operation}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    responses: dict[str, str | dict]
    access: str = OPEN
    scope: str | None = None  # "predict", "feedback": what the token must hold
    parameters: tuple[dict, ...] = ()  # query parameters, and path parameters by name
    body: dict | None = None           # the requestBody object
    # For a view that serves several rules (a path with and without /versions/<version>):
    # rule -> operationId, each operationId being unique in the document.
    ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.access not in (OPEN, KEY, PAGE):
            raise ValueError(f"{self.operation_id}: access must be open, key or page")
        if self.scope and self.access == OPEN:
            raise ValueError(f"{self.operation_id}: an open operation needs no scope")

    def query_parameters(self) -> set[str]:
        return {p["name"] for p in self.parameters if p["in"] == "query"}


def operation(method: str, operation_id: str, summary: str, responses: dict[str, str | dict],
              **details) -> Callable:
    """Declare what a view does for one HTTP method (stack one per method it serves)."""
    op = Operation(operation_id, summary, responses, **details)

    def declare(view):
        declared = dict(getattr(view, ATTRIBUTE, {}))
        if method.upper() in declared:
            raise ValueError(f"{view.__name__}: {method.upper()} declared twice")
        declared[method.upper()] = op
        setattr(view, ATTRIBUTE, declared)
        return view
    return declare


def of(app: Flask, endpoint: str | None, method: str) -> Operation | None:
    """The operation a route declares for ``method``; HEAD is GET's, and OPTIONS (which Flask
    answers itself) the route's first declared one, so it is as open or as closed as the route."""
    declared = getattr(app.view_functions.get(endpoint or ""), ATTRIBUTE, {})
    method = "GET" if method.upper() == "HEAD" else method.upper()
    if method == "OPTIONS":
        return next(iter(declared.values()), None)
    return declared.get(method)


# --- Building the document ------------------------------------------------------------------

def ref(schema: str) -> dict:
    return {"$ref": f"#/components/schemas/{schema}"}


def json_response(description: str, schema: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": ref(schema)}}}


def html_response(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def json_body(schema: str, examples: dict | None = None) -> dict:
    content = {"schema": ref(schema)}
    if examples:
        content["examples"] = {name: {"value": value} for name, value in examples.items()}
    return {"required": True, "content": {"application/json": content}}


def error_response(description: str, path: str) -> dict:
    schema, media = ("OIPError", "application/json") if is_oip(path) \
        else ("Problem", "application/problem+json")
    return {"description": description,
            "content": {media: {"schema": ref(schema)}}}


def openapi_path(rule: str) -> str:
    """Flask's ``/v1/jobs/<job_id>`` as OpenAPI's ``/v1/jobs/{job_id}``."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def _operation(op: Operation, rule: str, path: str) -> dict:
    names = re.findall(r"\{([^}]+)\}", path)
    by_name = {p["name"]: p for p in op.parameters}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f"{op.operation_id}: path parameter(s) {missing} of {rule} undeclared")
    parameters = [by_name[name] for name in names] + [p for p in op.parameters if p["in"] == "query"]
    out = {"summary": op.summary, "operationId": op.ids.get(rule, op.operation_id)}
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = op.body
    responses = {code: error_response(answer, path) if isinstance(answer, str) else answer
                 for code, answer in op.responses.items()}
    if op.access == KEY:
        out["security"] = [{"bearerAuth": []}]
        responses["401"] = error_response(
            "Missing, unknown or revoked token (WWW-Authenticate: Bearer)", path)
        if op.scope:
            responses["403"] = error_response(f"The token lacks the '{op.scope}' scope", path)
    out["responses"] = responses
    return out


def build(app: Flask, info: dict, schemas: dict[str, dict]) -> dict:
    """The OpenAPI document of every route the app serves (Flask's own static route aside)."""
    paths: dict[str, dict] = {}
    ids: set[str] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        declared = getattr(app.view_functions[rule.endpoint], ATTRIBUTE, {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = declared.get(method)
            if op is None:
                raise ValueError(f"{method} {rule.rule} ({rule.endpoint}) has no @spec.operation: "
                                 "every route served is documented in /openapi.json")
            path = openapi_path(rule.rule)
            described = _operation(op, rule.rule, path)
            if described["operationId"] in ids:
                raise ValueError(f"operationId {described['operationId']} used twice")
            ids.add(described["operationId"])
            paths.setdefault(path, {})[method.lower()] = described
    return {"openapi": "3.1.0", "info": info, "paths": paths, "components": {
        "schemas": schemas,
        "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": "API key from `mlapi tokens create`; required when "
                           "MLAPI_API_KEYS_FILE is set"}}}}
