"""The promotion gate: a candidate replaces the champion only if it is not worse on any set.

Pure: it takes scores already measured and returns a decision, so the two places that promote
a model (``mlapi retrain`` and ``mlapi run``'s background upgrade) judge by the same rule and a
test can check the rule without a registry, a database or a model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """One evaluation set, scored for both models with the same metric."""

    metric: str  # "macro_f1", "accuracy"
    champion: float
    candidate: float
    rows: int | None = None

    def as_dict(self) -> dict:
        return {"metric": self.metric, **({"rows": self.rows} if self.rows is not None else {}),
                "champion": self.champion, "candidate": self.candidate}


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    worse: tuple[str, ...] = ()
    better: tuple[str, ...] = ()


def gate(scores: dict[str, Score], margin: float) -> Decision:
    """Promote unless the candidate trails the champion by more than ``margin`` on some set.

    A tie within the margin promotes: a newer model trained on more corrections is preferred
    when the sets cannot tell the two apart.
    """
    if not scores:
        raise ValueError("the gate needs at least one scored set")
    if margin < 0:
        raise ValueError(f"the margin must be >= 0, got {margin}")
    worse = tuple(f"{name} {s.metric} {s.candidate:.4f} < champion {s.champion:.4f} - margin "
                  f"{margin:g}" for name, s in scores.items() if s.candidate < s.champion - margin)
    better = tuple(name for name, s in scores.items() if s.candidate > s.champion)
    if worse:
        return Decision(False, "worse than the champion: " + "; ".join(worse), worse, better)
    return Decision(True, "not worse than the champion beyond the margin on any set"
                    + (f"; better on {', '.join(better)}" if better else ""), worse, better)
