"""Walking a fitted scikit-learn pipeline: every estimator in it, and the steps whose weights
come from an installed package. A module of its own so that the pipeline, the embedding and
the archive checks share it without importing one another in a circle."""

from __future__ import annotations

from sklearn.base import BaseEstimator

from .embedding import SentenceEmbedding
from .encoder import SentenceEncoder


def estimators_in(model) -> list[BaseEstimator]:
    """Every estimator inside a pipeline, fitted copies included (unions, votes, calibrators)."""
    found, seen = [], set()

    def walk(obj, depth=0):
        if id(obj) in seen or depth > 12:
            return
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item, depth + 1)
        elif isinstance(obj, dict):
            for item in obj.values():
                walk(item, depth + 1)
        elif isinstance(obj, BaseEstimator) or hasattr(obj, "estimator"):
            if isinstance(obj, BaseEstimator):
                found.append(obj)
            for value in vars(obj).values():
                walk(value, depth + 1)

    walk(model)
    return found


def embeddings_in(model) -> list:
    """Every step inside a fitted pipeline whose weights come from an installed package (the
    sentence embedding, the encoder), through unions, votes and calibrators."""
    return [step for step in estimators_in(model)
            if isinstance(step, (SentenceEmbedding, SentenceEncoder))]
