"""The hand-written golden sets: their shape, and how a model is scored on them."""

from collections import Counter

import pytest

from mlapi.contracts import LABELS
from mlapi.model import golden


@pytest.mark.parametrize("name, per_language", [("golden", {"en": 45, "es": 44}),
                                                ("hard", {"en": 72, "es": 72})])
def test_each_set_is_balanced_by_language_and_label(name, per_language):
    data = golden.load(name)
    assert Counter(data.languages) == per_language
    assert set(data.labels) == set(LABELS)
    assert len(set(data.texts)) == len(data.texts), "a text twice"
    for language in per_language:
        counts = Counter(data.labels[i] for i in data.rows(language))
        assert max(counts.values()) - min(counts.values()) <= 1, (language, counts)


def test_no_text_is_in_both_sets():
    assert not set(golden.load("golden").texts) & set(golden.load("hard").texts)


def test_spanish_rows_are_tagged_spanish():
    # A Spanish sentence tagged "en" once made the per-language figures wrong.
    data = golden.load("golden")
    for text, language in zip(data.texts, data.languages, strict=True):
        spanish = any(w in f" {text.lower()} " for w in (" el ", " la ", " muy ", " qué ", " es "))
        english = any(w in f" {text.lower()} " for w in (" the ", " is ", " i ", " you "))
        if spanish and not english:
            assert language == "es", text


def test_report_scores_per_language_and_category():
    data = golden.Golden(texts=["a", "b", "c", "d"], labels=["positive", "negative", "neutral", "positive"],
                         languages=["en", "en", "es", "es"], categories=["x", "y", "x", "x"])
    answers = {"a": "positive", "b": "positive", "c": "neutral", "d": "negative"}
    report = golden.report(lambda texts: [answers[t] for t in texts], data)
    assert report["en"]["accuracy"] == 0.5 and report["en"]["by_category"]["x"]["accuracy"] == 1.0
    assert report["en"]["by_category"]["y"]["accuracy"] == 0.0
    assert report["es"]["rows"] == 2 and report["es"]["by_category"] == {"x": {"rows": 2, "accuracy": 0.5}}
