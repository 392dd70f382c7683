"""What happens to one correction: accepted, held, flagged, duplicate or rejected, and why.

A pure function, so the rules read in one place and are tested as a table; ``db.py`` gathers
the facts it needs (has this client sent it before, how many today, does another client agree).

The poisoning guard: a correction that contradicts a prediction the model was at least
``MLAPI_FEEDBACK_HOLD_CONFIDENCE`` sure of is *held* (kept, counted, not trained on) until a
second client sends the same label for the same text, or an operator runs
``mlapi feedback confirm``. A confident model is right more often than a single stranger, and
a lone attacker cannot confirm their own corrections (one client, one vote; per-client caps).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..contracts import FeedbackMessage


class Status(StrEnum):
    """A correction's state, stored as its value (a string equal to the member)."""

    ACCEPTED = "accepted"  # trained on
    HELD = "held"          # kept and counted, not trained on until confirmed
    FLAGGED = "flagged"    # "this was wrong" without the right label: for an operator
    DUPLICATE = "duplicate"
    REJECTED = "rejected"  # malformed, or over the client's cap


COUNTED = (Status.ACCEPTED, Status.HELD, Status.FLAGGED)  # statuses that use a client's daily cap


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str = ""
    confirmed: bool = False  # accepted because other clients had sent the same label


def confidence(message: FeedbackMessage) -> float | None:
    """How sure the model was of the prediction being corrected (None for text-only feedback)."""
    pred = message.prediction
    if not pred or not isinstance(pred.get("probabilities"), dict):
        return None
    try:
        return float(pred["probabilities"][pred["label"]])
    except (KeyError, TypeError, ValueError):
        return None


def contradicts_confident(predicted: str | None, conf: float | None, label: str | None,
                          hold_confidence: float) -> bool:
    return (label is not None and predicted is not None and conf is not None
            and predicted != label and hold_confidence < 1 and conf >= hold_confidence)


def decide(message: FeedbackMessage, *, seen: bool, used_today: int, cap: int,
           others_agree: bool, hold_confidence: float) -> Verdict:
    if seen:
        return Verdict(Status.DUPLICATE, "this client already sent this correction")
    if used_today >= cap:
        return Verdict(Status.REJECTED,
                       f"client cap: {cap} corrections per day (MLAPI_FEEDBACK_CLIENT_CAP)")
    if message.label is None:
        return Verdict(Status.FLAGGED, "reported wrong without the right label")
    pred = message.prediction or {}
    conf = confidence(message)
    if contradicts_confident(pred.get("label"), conf, message.label, hold_confidence):
        if others_agree:
            return Verdict(Status.ACCEPTED, "confirmed by another client", confirmed=True)
        return Verdict(Status.HELD, f"contradicts a {conf:.2f}-confident prediction; held until "
                                    "another client or an operator confirms it")
    return Verdict(Status.ACCEPTED)
