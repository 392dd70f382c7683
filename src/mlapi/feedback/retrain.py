"""`mlapi retrain`: base corpus + accepted corrections -> candidate -> the gate -> maybe champion.

This is the orchestration, beside the feedback service whose database it reads: the model
package fits the candidate (``pipeline.fit``) and decides (``gate.gate``, pure) but knows
nothing of corrections, runs or the registry. A run scores the candidate and the champion on
the same three sets, and the gate promotes only if the candidate is not worse than the
champion by more than ``MLAPI_RETRAIN_MARGIN`` on any:

* ``base``: the corpus's fixed held-out split (macro-F1): do not forget the general case;
* ``feedback``: the share of corrections kept out of training (accuracy), chosen by a hash
  of the text so the same correction always lands on the same side;
* ``golden``: a fixed, hand-written set (``model/golden/golden.csv``, accuracy) that feedback never
  touches: corrections with a golden text are left out. Poisoned corrections show up here.

Every run is stored (the ``retrain_runs`` table, and the candidate's metadata in the registry)
and ends with a decision: promoted, refused or skipped. Errors raise ``RetrainError``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import sklearn
from rich.console import Console

from ..model import artifact, encoder, pipeline
from ..model import golden as golden_sets
from ..model.gate import Score, gate
from ..model.predictor import Predictor
from ..model.training import Dataset, dataset, embedding_info, steps
from ..redis_store import Registry
from . import policy
from .db import FeedbackDB


class RetrainError(RuntimeError):
    """Retraining could not run (no champion, unreachable registry or database ...)."""


def load_golden() -> golden_sets.Golden:
    return golden_sets.load("golden")


def in_holdout(text: str, share: float) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 1000 < share * 1000


def accuracy(model, texts: list[str], labels: list[str]) -> float:
    if not texts:
        return 0.0
    predicted = model.predict(texts)
    return round(sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(texts), 4)


def usable_feedback(db: FeedbackDB, champion: Predictor, golden: set[str],
                    hold_confidence: float) -> tuple[list[tuple[str, str]], dict]:
    """The accepted corrections to learn from, one label per text, and what was left out.

    Text-only corrections carried no prediction to judge at intake; here the champion judges
    them with the same rule (``policy.contradicts_confident``), and those it contradicts
    confidently are marked held unless two or more clients agree.
    """
    rows = db.corrections(("accepted",))
    notes = Counter()
    agree = db.agreeing_clients()
    # Confirmed rows (by a second client or an operator) are not judged again.
    unjudged = [r for r in rows if r.predicted_label is None and r.label and r.text not in golden
                and r.confirmed_by is None]
    if unjudged and hold_confidence < 1:
        probabilities = champion.predict_proba([r.text for r in unjudged])
        hold = []
        for row, probs in zip(unjudged, probabilities, strict=True):
            predicted = max(probs, key=probs.get)
            if (policy.contradicts_confident(predicted, probs[predicted], row.label, hold_confidence)
                    and agree[(row.text_sha256, row.label)] < 2):
                hold.append(row.id)
        if hold:
            db.hold(hold, f"contradicts a prediction of the champion {champion.version} at "
                          f">= {hold_confidence} confidence; held until confirmed")
            notes["held_now"] = len(hold)
        rows = [r for r in rows if r.id not in set(hold)]
    labels_of: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        if row.text in golden:
            notes["golden_text"] += 1
            continue
        labels_of[row.text][row.label] += 1
    usable = []
    for text, votes in labels_of.items():
        (label, n), *rest = votes.most_common()
        if rest and rest[0][1] == n:
            notes["tied_labels"] += 1  # clients disagree evenly: no answer to learn
            continue
        usable.append((text, label))
    return sorted(usable), dict(notes)


def retrain(settings, corpus_path: str | Path | None = None, limit: int | None = None,
            console: Console | None = None) -> dict:
    console = console or Console(stderr=True)
    started = datetime.now(UTC)
    clock = time.monotonic()
    registry = Registry(settings)
    db = FeedbackDB(settings.feedback_db_url)
    try:
        db.migrate()
        with steps(console) as step, encoder.parallel(os.cpu_count() or 1):
            with step("Loading the champion from the registry"):
                champion = _champion(registry)
            with step("Reading accepted corrections"):
                golden = load_golden()
                feedback, notes = usable_feedback(db, champion, set(golden.texts),
                                                  settings.feedback_hold_confidence)
                fingerprint = hashlib.sha256(repr(feedback).encode()).hexdigest()
            report = {"started": started.isoformat(timespec="seconds"),
                      "champion": champion.version, "candidate": None,
                      "feedback": {"usable": len(feedback), **notes, "sha256": fingerprint},
                      "margin": settings.retrain_margin}
            skip = _nothing_to_do(feedback, champion, fingerprint, db)
            if skip:
                return _finish(db, report, "skipped", skip)
            train_fb = [(t, y) for t, y in feedback if not in_holdout(t, settings.retrain_holdout)]
            held_fb = [(t, y) for t, y in feedback if in_holdout(t, settings.retrain_holdout)]
            report["feedback"].update(train=len(train_fb), holdout=len(held_fb))
            kind = pipeline.kind_of(champion.metadata)
            data = dataset(corpus_path, limit, cache_dir=settings.resolved_cache_dir, step=step)
            x_test, y_test = data.all_held_out()
            weight = settings.retrain_feedback_weight
            with step(f"Fitting a {kind} candidate (the champion's kind) on "
                      f"{len(data.train_texts):,} corpus texts + {len(train_fb)} corrections "
                      f"(weight {weight:g})"):
                texts = data.train_texts + [t for t, _ in train_fb]
                labels = data.train_labels + [y for _, y in train_fb]
                weights = [1.0] * len(data.train_texts) + [weight] * len(train_fb)
                candidate = pipeline.fit(texts, labels, sample_weight=weights, kind=kind)
            with step("Scoring candidate and champion on base, feedback and golden sets"):
                base_metrics = pipeline.score(candidate, list(x_test), list(y_test))
                scores = {"base": Score("macro_f1", pipeline.score(champion.model, list(x_test),
                                                                   list(y_test))["macro_f1"],
                                        base_metrics["macro_f1"], len(x_test))}
                golden_rows = list(zip(golden.texts, golden.labels, strict=True))
                for name, rows in (("feedback", held_fb), ("golden", golden_rows)):
                    if rows:
                        xs, ys = [t for t, _ in rows], [y for _, y in rows]
                        scores[name] = Score("accuracy", accuracy(champion.model, xs, ys),
                                             accuracy(candidate, xs, ys), len(rows))
            decision = gate(scores, settings.retrain_margin)
            report["scores"] = {name: s.as_dict() for name, s in scores.items()}
            with step("Storing the candidate in the registry"):
                meta = _store(registry, candidate, data, kind, base_metrics, report["scores"],
                              report, len(texts), time.monotonic() - clock)
            report["candidate"] = meta["version"]
            if not decision.promote:
                return _finish(db, report, "refused", decision.reason, registry)
            registry.promote(meta["version"])
            return _finish(db, report, "promoted", decision.reason, registry)
    finally:
        db.close()
        registry.close()


def _champion(registry: Registry) -> Predictor:
    version = registry.champion()
    if version is None:
        raise RetrainError("the registry has no champion: start the workers first (make run), "
                           "they register the model they serve")
    meta, archive = registry.meta(version), registry.archive(version)
    if meta is None or archive is None:
        raise RetrainError(f"the champion {version} is missing from the registry")
    try:
        return Predictor.from_registry(archive, meta)
    except artifact.ModelError as exc:
        raise RetrainError(f"the champion {version} cannot be loaded: {exc}") from None


def _nothing_to_do(feedback, champion: Predictor, fingerprint: str, db: FeedbackDB) -> str:
    if not feedback:
        stats = db.stats()
        return (f"no accepted corrections to learn from ({stats['held']} held, "
                f"{stats['flagged']} flagged without a label, {stats['rejected']} rejected)")
    if champion.metadata.get("feedback", {}).get("sha256") == fingerprint:
        return f"the champion {champion.version} was trained on exactly these corrections"
    return ""


def _store(registry: Registry, model, data: Dataset, kind: str, metrics: dict, scores: dict,
           report: dict, train_rows: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.skops"
        meta = artifact.save(model, path, {
            "origin": "retrain", "kind": kind, "languages": data.languages, "metrics": metrics,
            "translation": data.translation, "embedding": embedding_info(kind),
            "evaluation": scores, "corpus": data.corpus.summary(), "feedback": report["feedback"],
            "train_rows": train_rows,
            "parent": report["champion"], "sklearn_version": sklearn.__version__,
            "train_seconds": round(seconds, 1)})
        registry.add(meta, path.read_bytes())
    return meta


def _finish(db: FeedbackDB, report: dict, decision: str, reason: str,
            registry: Registry | None = None) -> dict:
    report.update(decision=decision, reason=reason)
    if registry is not None and report.get("candidate"):
        registry.update_meta(report["candidate"], decision={"decision": decision, "reason": reason,
                                                            "at": report["started"]})
    report["run_id"] = db.record_run(report)
    return report
