"""The promotion gate (model/gate.py): one rule for `mlapi retrain` and `mlapi run`'s upgrade."""

from __future__ import annotations

import pytest

from mlapi.model.gate import Score, gate


@pytest.mark.parametrize(("scores", "margin", "promote", "worse", "better"), [
    ({"base": (0.70, 0.70)}, 0.01, True, (), ()),
    ({"base": (0.70, 0.71)}, 0.01, True, (), ("base",)),
    ({"base": (0.70, 0.695)}, 0.01, True, (), ()),            # within the margin
    ({"base": (0.70, 0.69)}, 0.01, True, (), ()),             # exactly at the margin
    ({"base": (0.70, 0.6899)}, 0.01, False, ("base",), ()),
    ({"base": (0.70, 0.70), "golden": (0.95, 0.80)}, 0.01, False, ("golden",), ()),
    ({"base": (0.70, 0.75), "golden": (0.95, 0.80)}, 0.01, False, ("golden",), ("base",)),
    ({"base": (0.70, 0.70), "feedback": (0.50, 0.90)}, 0.0, True, (), ("feedback",)),
    ({"base": (0.70, 0.6999)}, 0.0, False, ("base",), ()),
], ids=["tie", "better", "within-margin", "at-margin", "past-margin", "one-set-worse",
        "better-and-worse", "zero-margin-better", "zero-margin-worse"])
def test_gate(scores, margin, promote, worse, better):
    decision = gate({name: Score("accuracy", champion, candidate)
                     for name, (champion, candidate) in scores.items()}, margin)
    assert decision.promote is promote
    assert tuple(w.split()[0] for w in decision.worse) == worse
    assert decision.better == better
    if promote:
        assert decision.reason.startswith("not worse than the champion")
    else:
        assert decision.reason.startswith("worse than the champion: ")
        assert all(name in decision.reason for name in worse)


def test_the_reason_names_the_numbers():
    decision = gate({"golden": Score("accuracy", 0.9556, 0.8, rows=45)}, 0.01)
    assert decision.reason == ("worse than the champion: golden accuracy 0.8000 < champion 0.9556 "
                               "- margin 0.01")


@pytest.mark.parametrize(("scores", "margin", "message"), [
    ({}, 0.01, "at least one"),
    ({"base": Score("macro_f1", 0.7, 0.7)}, -0.1, "margin must be >= 0"),
])
def test_gate_refuses_nonsense(scores, margin, message):
    with pytest.raises(ValueError, match=message):
        gate(scores, margin)


def test_score_as_dict_is_the_stored_form():
    assert Score("macro_f1", 0.7, 0.71, rows=10).as_dict() == {
        "metric": "macro_f1", "rows": 10, "champion": 0.7, "candidate": 0.71}
    assert "rows" not in Score("macro_f1", 0.7, 0.71).as_dict()
