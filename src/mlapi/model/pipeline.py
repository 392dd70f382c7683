"""The scikit-learn text pipeline: how it is built, trained and scored.

Two kinds, chosen at training time (README, "Model"):

* ``fast``: TF-IDF word 1-2 grams + char_wb 2-5 grams, a linear SVM calibrated (3-fold) to
  give probabilities; thousands of texts per second.
* ``multilingual`` (the default): the same TF-IDF features beside a multilingual sentence
  embedding (embedding.py), so that meaning carries across English and Spanish.
"""

from __future__ import annotations

from collections import Counter

from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_union
from sklearn.svm import LinearSVC

from ..contracts import LABELS
from .corpus import Corpus

KINDS = ("multilingual", "fast")
DEFAULT_KIND = "multilingual"

SPLIT_SEED = 42
MODEL_SEED = 0
TEST_SIZE = 0.2
# Neutral tweets are a minority next to negative ones, and a plain statement of fact should
# not read as a complaint: neutral rows weigh 1.5x their "balanced" weight.
NEUTRAL_BOOST = 1.5


def split(corpus: Corpus):
    """The fixed stratified held-out split every evaluation uses."""
    return train_test_split(corpus.texts, corpus.labels, test_size=TEST_SIZE,
                            stratify=corpus.labels, random_state=SPLIT_SEED)


def class_weights(labels: list[str]) -> dict[str, float]:
    counts = Counter(labels)
    weights = {label: len(labels) / (len(counts) * n) for label, n in counts.items()}
    if "neutral" in weights:
        weights["neutral"] *= NEUTRAL_BOOST
    return weights


def build(labels: list[str], kind: str = "fast") -> Pipeline:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}: one of {', '.join(KINDS)}")
    # Word n-grams carry meaning; char_wb n-grams survive typos, hashtags and other languages
    # (Spanish texts share many sub-words with English ones: "excelente", "horrible").
    steps = [
        TfidfVectorizer(ngram_range=(1, 2), min_df=3, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True),
    ]
    if kind == "multilingual":
        from .embedding import SentenceEmbedding

        # What a text means, beside which words it uses: "not bad at all" and "no está nada
        # mal" land close together, which no n-gram count can see.
        steps.append(SentenceEmbedding(threads=1))
    features = make_union(*steps)
    # A fixed random_state (the dual solver shuffles): the same corpus gives the same model,
    # byte for byte, so an image build is reproducible.
    classifier = CalibratedClassifierCV(LinearSVC(C=0.2, class_weight=class_weights(labels),
                                                  random_state=MODEL_SEED), cv=3)
    return Pipeline([("features", features), ("classifier", classifier)])


def fit(texts: list[str], labels: list[str], sample_weight: list[float] | None = None,
        kind: str = "fast") -> Pipeline:
    """Fit a new pipeline; ``sample_weight`` lets a few user corrections outweigh corpus rows."""
    if sample_weight is None:
        return build(labels, kind).fit(texts, labels)
    return build(labels, kind).fit(texts, labels, classifier__sample_weight=sample_weight)


def kind_of(metadata: dict) -> str:
    """The kind a saved model was trained as (archives from before kinds existed are fast)."""
    return metadata.get("kind", "fast")


def score(model: Pipeline, texts: list[str], labels: list[str]) -> dict:
    predicted = model.predict(texts)
    report = classification_report(labels, predicted, labels=list(LABELS), output_dict=True,
                                   zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 4),
        "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 4),
        "per_label_f1": {label: round(float(report[label]["f1-score"]), 4) for label in LABELS},
        "rows": len(texts),
    }
