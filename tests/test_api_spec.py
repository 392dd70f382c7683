"""api/spec.py: the OpenAPI document is built from the routes' own declarations, and refuses
to build when a route is undeclared or declared inconsistently."""

from __future__ import annotations

import pytest
from flask import Flask

from mlapi.api import spec

INFO = {"title": "t", "version": "0"}


def app_with(*routes) -> Flask:
    app = Flask(__name__)
    for rule, methods, view in routes:
        app.add_url_rule(rule, view.__name__, view, methods=methods)
    return app


def test_a_declared_route_becomes_an_operation_with_its_security():
    @spec.operation("GET", "getThing", "A thing", access=spec.KEY, scope="predict",
                    parameters=({"name": "thing", "in": "path", "required": True,
                                 "schema": {"type": "string"}},
                                {"name": "q", "in": "query", "schema": {"type": "string"}}),
                    responses={"200": spec.json_response("It", "Thing"), "404": "No such thing"})
    def thing(thing):
        return {}

    doc = spec.build(app_with(("/v1/things/<thing>", ["GET"], thing)), INFO, {"Thing": {}})
    op = doc["paths"]["/v1/things/{thing}"]["get"]
    assert op["operationId"] == "getThing"
    assert [p["name"] for p in op["parameters"]] == ["thing", "q"]
    assert op["security"] == [{"bearerAuth": []}]
    assert set(op["responses"]) == {"200", "404", "401", "403"}
    assert op["responses"]["403"]["description"] == "The token lacks the 'predict' scope"
    assert "application/problem+json" in op["responses"]["404"]["content"]


def test_errors_on_v2_paths_take_the_protocols_shape():
    @spec.operation("GET", "oipThing", "A thing", responses={"503": "Down"})
    def oip_thing():
        return {}

    doc = spec.build(app_with(("/v2/thing", ["GET"], oip_thing)), INFO, {})
    content = doc["paths"]["/v2/thing"]["get"]["responses"]["503"]["content"]
    assert content == {"application/json": {"schema": spec.ref("OIPError")}}


def test_open_and_page_operations_publish_no_security():
    @spec.operation("GET", "openThing", "Open", responses={"200": spec.html_response("HTML")})
    @spec.operation("POST", "pageThing", "Form", access=spec.PAGE, scope="predict",
                    responses={"200": spec.html_response("HTML")})
    def page():
        return ""

    doc = spec.build(app_with(("/", ["GET", "POST"], page)), INFO, {})
    assert all("security" not in op for op in doc["paths"]["/"].values())
    assert set(doc["paths"]["/"]) == {"get", "post"}


def undeclared():
    return {}


@spec.operation("GET", "same", "One", responses={"200": spec.html_response("x")})
def first():
    return {}


@spec.operation("GET", "same", "Two", responses={"200": spec.html_response("x")})
def second():
    return {}


@spec.operation("GET", "byName", "No path parameters declared", responses={})
def by_name(name):
    return {}


@pytest.mark.parametrize(("routes", "message"), [
    ([("/v1/undocumented", ["GET"], undeclared)],
     r"GET /v1/undocumented \(undeclared\) has no @spec.operation"),
    ([("/a", ["GET"], first), ("/b", ["GET"], second)], "operationId same used twice"),
    ([("/v1/<name>", ["GET"], by_name)], r"path parameter\(s\) \['name'\] of /v1/<name> undeclared"),
    ([("/x", ["GET", "POST"], first)], r"POST /x \(first\) has no @spec.operation"),
], ids=["undeclared-route", "duplicate-id", "undeclared-path-parameter", "undeclared-method"])
def test_build_refuses_an_inconsistent_app(routes, message):
    with pytest.raises(ValueError, match=message):
        spec.build(app_with(*routes), INFO, {})


@pytest.mark.parametrize(("details", "message"), [
    ({"access": "public"}, "access must be open, key or page"),
    ({"scope": "predict"}, "an open operation needs no scope"),
])
def test_operation_refuses_nonsense(details, message):
    with pytest.raises(ValueError, match=message):
        spec.Operation("x", "X", {}, **details)


def test_one_method_declared_twice_is_refused():
    with pytest.raises(ValueError, match="GET declared twice"):
        @spec.operation("GET", "a", "A", responses={})
        @spec.operation("GET", "b", "B", responses={})
        def twice():
            return {}


def test_the_app_documents_every_route_it_serves(app):
    doc = app.extensions["mlapi.openapi"]
    served = {(spec.openapi_path(rule.rule), method.lower()) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
