"""The hand-written sets that no training run and no correction ever touches.

* ``golden/golden.csv``: plain sentences (45 English, 44 Spanish); the retraining gate's
  third set, where poisoned corrections show up.
* ``golden/hard.csv``: sentences whose meaning is in their structure (72 English, 72 Spanish,
  24 per label), by category: negation, contrast, understatement, informal writing, neutral
  requests and neutral facts. Written before the encoder kind was chosen, to choose it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources

from sklearn.metrics import f1_score

SETS = {"golden": "golden/golden.csv", "hard": "golden/hard.csv"}


@dataclass(frozen=True)
class Golden:
    texts: list[str]
    labels: list[str]
    languages: list[str]
    categories: list[str]

    def rows(self, language: str) -> list[int]:
        return [i for i, lang in enumerate(self.languages) if lang == language]


def load(name: str = "golden") -> Golden:
    raw = resources.files("mlapi.model").joinpath(SETS[name]).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(raw)))
    return Golden(texts=[r["text"] for r in rows], labels=[r["label"] for r in rows],
                  languages=[r.get("language") or "en" for r in rows],
                  categories=[r.get("category") or "plain" for r in rows])


def report(predict, golden: Golden) -> dict:
    """Accuracy and macro-F1 per language, and accuracy per category within each.

    ``predict`` maps a list of texts to a list of labels (a model's ``predict``).
    """
    predicted = list(predict(golden.texts))
    out = {}
    for language in sorted(set(golden.languages)):
        index = golden.rows(language)
        truth = [golden.labels[i] for i in index]
        guess = [predicted[i] for i in index]
        by_category = defaultdict(list)
        for i in index:
            by_category[golden.categories[i]].append(predicted[i] == golden.labels[i])
        out[language] = {
            "rows": len(index),
            "accuracy": round(sum(g == t for g, t in zip(guess, truth, strict=True)) / len(index), 4),
            "macro_f1": round(float(f1_score(truth, guess, average="macro")), 4),
            "by_category": {c: {"rows": len(v), "accuracy": round(sum(v) / len(v), 4)}
                            for c, v in sorted(by_category.items())},
        }
    return out
