"""The course exercise's endpoints, unchanged for its clients."""

import re

import pytest


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
