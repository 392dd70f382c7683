"""The scikit-learn text pipeline: how it is built, trained and scored.

Three kinds, chosen at training time (docs/model.md):

* ``fast``: TF-IDF word 1-2 grams + char_wb 2-5 grams, a linear SVM calibrated (5-fold) to
  give probabilities; thousands of texts per second.
* ``multilingual`` (the default): the same TF-IDF features beside a multilingual sentence
  embedding (embedding.py), so that meaning carries across English and Spanish. Two judges
  vote on them: the SVM on every feature, and a logistic regression on the embedding alone.
* ``encoder``: a pretrained transformer encoder (multilingual-e5-small, int8; encoder.py) and
  a logistic regression on its sentence vectors: it reads negation, contrast and informal
  writing that n-grams cannot; ~130 texts/s per core.
"""

from __future__ import annotations

from collections import Counter

import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import VotingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_union
from sklearn.svm import LinearSVC

from ..contracts import LABELS
from .corpus import Corpus
from .embedding import EmbeddingColumns, SentenceEmbedding
from .encoder import SentenceEncoder
from .estimators import estimators_in
from .kinds import KINDS

DEFAULT_KIND = KINDS[0]

SPLIT_SEED = 42
MODEL_SEED = 0
TEST_SIZE = 0.2
# Neutral tweets are a minority next to negative ones, and a plain statement of fact should
# not read as a complaint: neutral rows weigh 1.5x their "balanced" weight.
NEUTRAL_BOOST = 1.5
# The multilingual vote, SVM on all features : logistic regression on the embedding alone.
# The SVM reads text like the corpus best (held-out macro-F1), the embedding alone reads text
# unlike it best (the golden set, the course's sentences): 3:2 keeps the SVM's held-out score
# within 0.004 while golden accuracy rises from 0.86 to 0.93 (docs/model.md).
VOTE_WEIGHTS = (3, 2)
# The encoder kind's logistic regression: C 1, 4 and 16 were tried (hard set English 0.89,
# 0.87, 0.85 with plain weights; held-out English 0.707 for all three).
ENCODER_C = 1.0


def split(corpus: Corpus):
    """The fixed stratified held-out split every evaluation uses."""
    return train_test_split(corpus.texts, corpus.labels, test_size=TEST_SIZE,
                            stratify=corpus.labels, random_state=SPLIT_SEED)


def class_weights(labels: list[str], neutral_boost: float = NEUTRAL_BOOST) -> dict[str, float]:
    counts = Counter(labels)
    weights = {label: len(labels) / (len(counts) * n) for label, n in counts.items()}
    if "neutral" in weights:
        weights["neutral"] *= neutral_boost
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
    if kind == "encoder":
        # Plain balanced weights: the encoder does not read facts as complaints the way
        # n-grams of tweets do, and a neutral boost cost the hard golden set 0.04 (both languages).
        head = LogisticRegression(C=ENCODER_C, class_weight=class_weights(labels, 1.0), max_iter=3000)
        return Pipeline([("encoder", SentenceEncoder()), ("classifier", head)])
    weights = class_weights(labels)
    if kind == "fast":
        return Pipeline([("features", make_union(*steps)), ("classifier", _svm(weights))])
    # What a text means, beside which words it uses: "not bad at all" and "no está nada mal"
    # land close together, which no n-gram count can see. Computed once, used by both judges.
    steps.append(SentenceEmbedding(threads=1))
    # VotingClassifier hands its judges the labels encoded in sorted order (0, 1, 2).
    encoded = {i: weights[label] for i, label in enumerate(sorted(weights))}
    meaning = Pipeline([("embedding_only", EmbeddingColumns()),
                        ("logistic", LogisticRegression(class_weight=encoded, max_iter=3000))])
    vote = VotingClassifier([("all_features", _svm(encoded)), ("meaning", meaning)],
                            voting="soft", weights=list(VOTE_WEIGHTS))
    return Pipeline([("features", make_union(*steps)), ("classifier", vote)])


def _svm(class_weight: dict) -> CalibratedClassifierCV:
    # A fixed random_state (the dual solver shuffles): the same corpus gives the same model,
    # byte for byte, so an image build is reproducible. 5 folds (the default): each calibrated
    # SVM learns from 80 % of the rows, not 67 % (+0.002 held-out macro-F1 over 3 folds).
    return CalibratedClassifierCV(LinearSVC(C=0.2, class_weight=class_weight,
                                            random_state=MODEL_SEED), cv=5)


def fit(texts: list[str], labels: list[str], sample_weight: list[float] | None = None,
        kind: str = "fast") -> Pipeline:
    """Fit a new pipeline; ``sample_weight`` lets a few user corrections outweigh corpus rows."""
    model = build(labels, kind)
    if sample_weight is None:
        return model.fit(texts, labels)
    # Metadata routing carries the weights through the vote into each judge's classifier.
    with sklearn.config_context(enable_metadata_routing=True):
        for estimator in estimators_in(model):
            if isinstance(estimator, (LinearSVC, LogisticRegression, CalibratedClassifierCV)):
                estimator.set_fit_request(sample_weight=True)
        model.fit(texts, labels, sample_weight=sample_weight)
    # The requests are needed only while fitting, and skops cannot save them (they refer
    # back to their owners): drop them, so a weighted model saves like any other.
    for estimator in estimators_in(model):
        vars(estimator).pop("_metadata_request", None)
    return model


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
