"""The loaded model, as the worker uses it: many texts in, class probabilities out."""

from __future__ import annotations

from pathlib import Path

from ..contracts import LABELS
from . import artifact


class Predictor:
    def __init__(self, model, metadata: dict):
        self.model = model
        self.metadata = metadata
        self.version: str = metadata["version"]
        classes = [str(c) for c in model.classes_]
        if sorted(classes) != sorted(LABELS):
            raise artifact.ModelError(f"model classes {classes} are not {list(LABELS)}")
        self._classes = classes

    @classmethod
    def load(cls, path: Path) -> Predictor:
        model, meta = artifact.load(path)
        return cls(model, meta).warm_up()

    @classmethod
    def from_registry(cls, archive: bytes, meta: dict) -> Predictor:
        model, meta = artifact.load_bytes(archive, meta)
        return cls(model, meta).warm_up()

    def warm_up(self) -> Predictor:
        """One prediction now, so lazy parts (the embedding's weights) load before a worker
        says it serves, not inside the first request's deadline."""
        self.predict_proba(["warm-up"])
        return self

    def predict_proba(self, texts: list[str]) -> list[dict[str, float]]:
        """One call for the whole batch: that is where micro-batching pays."""
        if not texts:
            return []
        rows = self.model.predict_proba(texts)
        return [dict(zip(self._classes, map(float, row), strict=True)) for row in rows]
