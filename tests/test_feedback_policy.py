"""The verdict rules, as a table."""

from __future__ import annotations

import pytest

from mlapi.contracts import FeedbackMessage
from mlapi.feedback.policy import decide


def message(label="negative", predicted=None, confidence=0.95):
    prediction = None
    if predicted:
        rest = (1 - confidence) / 2
        probs = {k: rest for k in ("negative", "neutral", "positive")}
        probs[predicted] = confidence
        prediction = {"id": "p", "label": predicted, "probabilities": probs, "model_version": "v"}
    return FeedbackMessage(text="t", label=label, client="c", prediction=prediction)


@pytest.mark.parametrize("msg, facts, status, reason", [
    (message(), {}, "accepted", ""),
    (message(predicted="positive", confidence=0.6), {}, "accepted", ""),
    (message(predicted="positive", confidence=0.95), {}, "held", "0.95-confident"),
    (message(predicted="positive", confidence=0.95), {"others_agree": True}, "accepted", "confirmed"),
    (message(predicted="negative", confidence=0.99), {}, "accepted", ""),  # agrees: "right"
    (message(predicted="positive", confidence=0.95), {"hold": 1.0}, "accepted", ""),  # guard off
    (message(label=None), {}, "flagged", "without the right label"),
    (message(), {"seen": True}, "duplicate", "already sent"),
    (message(), {"used": 100}, "rejected", "MLAPI_FEEDBACK_CLIENT_CAP"),
    (message(label=None), {"used": 100}, "rejected", "client cap"),
], ids=["text-only", "unsure-model", "confident-model", "confirmed", "agrees", "guard-off",
        "report", "duplicate", "over-cap", "report-over-cap"])
def test_verdicts(msg, facts, status, reason):
    verdict = decide(msg, seen=facts.get("seen", False), used_today=facts.get("used", 0), cap=100,
                     others_agree=facts.get("others_agree", False),
                     hold_confidence=facts.get("hold", 0.9))
    assert verdict.status == status
    assert reason in verdict.reason
