"""The course exercise's endpoints, unchanged for its clients."""

import re

import pytest

from mlapi.api.compat import FEEDBACK_FIELDS


def test_predict_from_the_query_string(client):
    r = client.post("/predict", query_string={"text": "I love this, it is wonderful"})
    assert r.status_code == 200
    body = r.json
    assert body["success"] is True and body["text"] == "I love this, it is wonderful"
    assert body["prediction"] == "Positivo" and 0 <= body["score"] <= 1


@pytest.mark.parametrize("text, word", [("I hate this, awful and terrible", "Negativo"),
                                        ("Me encanta, qué maravilla", None)])
def test_prediction_is_consistent_with_the_label(client, text, word):
    body = client.post("/predict", query_string={"text": text}).json
    mapping = {"positive": "Positivo", "neutral": "Neutral", "negative": "Negativo"}
    assert body["prediction"] == mapping[body["label"]]
    if word:
        assert body["prediction"] == word


@pytest.mark.parametrize("kwargs", [
    {},
    {"query_string": {"text": ""}},
    {"query_string": {"text": "   "}},
    {"json": {"text": "a JSON body does not count"}},
])
def test_no_text_in_the_query_is_400_in_the_course_format(client, kwargs):
    r = client.post("/predict", **kwargs)
    assert r.status_code == 400
    assert r.json["success"] is False and r.json["prediction"] is None and r.json["score"] is None


def test_get_predict_is_405(client):
    assert client.get("/predict").status_code == 405


def test_page_has_a_form_and_no_external_assets(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert 'name="text_data"' in html and 'method="post"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_page_form_post_shows_the_prediction(client):
    r = client.post("/", data={"text_data": "This is the best day of my life"})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "positive" in html and "Positivo" in html and "This is the best day" in html


def test_page_form_without_text_asks_for_one(client):
    r = client.post("/", data={"text_data": "  "})
    assert r.status_code == 400 and "Write a text" in r.get_data(as_text=True)


def test_page_escapes_what_it_echoes(client):
    r = client.post("/", data={"text_data": "<script>alert(1)</script> great"})
    assert "<script>alert(1)</script>" not in r.get_data(as_text=True)


def test_page_sends_security_headers(client):
    r = client.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"


# The /feedback form: each field is one string; a repeated field is ambiguous and refused before
# anything is recorded, whatever its values (werkzeug's test client repeats a key given a list).
@pytest.mark.parametrize("form, repeated", [
    ({"verdict": ["right", "wrong"]}, "verdict"),
    ({"verdict": ["right", "right"]}, "verdict"),
    ({"verdict": ["1/0", "\x16", "sd"]}, "verdict"),
    ({"verdict": "wrong", "label": ["positive", "negative"]}, "label"),
    ({"report": ["this answer was wrong", "and this one"]}, "report"),
    ({"report": "x", "id": ["3f2b8c9d0e1f4a5b6c7d8e9f0a1b2c3d"] * 2}, "id"),
    ({"report": "x", "token": ["a", "b"]}, "token"),
    ({"report": ["x", "y"], "verdict": ["right", "wrong"]}, "report, verdict"),
])
def test_feedback_form_refuses_a_repeated_field(client, form, repeated):
    r = client.post("/feedback", data=form)
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert f"the form repeated: {repeated}." in r.get_data(as_text=True)


@pytest.mark.parametrize("form, error", [
    ({"report": "x", "verdict": "maybe"}, "The verdict must be right or wrong."),
    ({"report": "x", "verdict": "1/0"}, "The verdict must be right or wrong."),
    ({"report": "x", "verdict": "RIGHT"}, "The verdict must be right or wrong."),
    ({"report": "x", "verdict": "right "}, "The verdict must be right or wrong."),
    ({"report": "x", "verdict": "null"}, "The verdict must be right or wrong."),
    ({"report": "x", "label": "great"}, "Pick one of negative, neutral, positive."),
    ({"report": "x", "label": "Positivo"}, "Pick one of negative, neutral, positive."),
    ({"report": "x", "verdict": "wrong", "label": "[]"}, "Pick one of negative, neutral, positive."),
])
def test_feedback_form_refuses_a_value_outside_its_enum(client, form, error):
    r = client.post("/feedback", data=form)
    assert r.status_code == 400 and error in r.get_data(as_text=True)


def test_feedback_form_refuses_the_fuzzers_repeated_verdict(client):
    # The shape schemathesis reported: junk keys, some repeated, and verdict many times.
    body = "%11%02=a&%11%02=b&=J&verdict=1%2F0&verdict=B%02%0A&verdict=%16"
    r = client.post("/feedback", data=body, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and "the form repeated: verdict." in r.get_data(as_text=True)


@pytest.mark.parametrize("form", [{"report": "this answer was wrong"}, {"report": "x", "junk": ["1", "2"]},
                                  {}])
def test_feedback_form_course_posts_still_answer_the_page(client, form):
    # Fields the form does not take are ignored, repeated or not, as the course expects.
    r = client.post("/feedback", data=form)
    assert r.status_code == 200 and r.mimetype == "text/html"


def test_feedback_form_is_documented_as_one_string_per_field(client):
    form = client.get("/openapi.json").json["paths"]["/feedback"]["post"]["requestBody"]["content"]
    props = form["application/x-www-form-urlencoded"]["schema"]["properties"]
    # Typed as strings: a bare enum would let a fuzzer send objects, which no form can carry.
    assert set(props) == set(FEEDBACK_FIELDS)
    assert all(schema["type"] == "string" for schema in props.values())
