"""English -> Spanish machine translation with Apertium, run as a tool (Debian's packages).

Each text goes through the ``eng-spa`` pipeline as its own null-flushed segment. The plain
``apertium -f line`` mode keeps the line count but not line boundaries: its transfer rules
run across newlines, so ``"@user"`` and ``"#tag"`` on two lines come back as ``"@Etiqueta"``
and ``"#de usuario"``. Null-flush ends every rule at the segment's end.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MODE = "eng-spa"
# Texts per pipeline process. apertium-tagger keeps some state across null-flushed segments
# (after "a lot of", "How" tags as a pre-adverb: "Qué" instead of "Cómo"), so a text's
# translation can depend on earlier texts in its process. Fixed chunks, not one per worker,
# keep the output a function of the input alone, whatever `processes` is.
CHUNK = 1000
INSTALL_HINT = "apt-get install apertium apertium-eng-spa"

# What apertium-destxt escapes in the stream format (checked against it for U+0001..U+02FF).
_ESCAPE = re.compile(r"([\\\[\]^$/<>@{}])")
# destxt moves '~' (and the spaces around it) into a format block: in the stream it marks
# words for the post-generator, which would delete it.
_TILDES = re.compile(r"[ ~]*~[ ~]*")
# The end-of-text format block that carries each text's index (texts have no newline).
_MARKER = re.compile(r"\[\n(\d+)\]")
# Unknown-word marks; -n generation leaves none, but a leftover one must not reach training.
_MARKED = re.compile(r"(?<!\S)([*#@])(\w+)")


class TranslationUnavailable(RuntimeError):
    """Apertium or its eng-spa data is not installed."""


class TranslationError(RuntimeError):
    """The Apertium pipeline failed."""


def _mode_file() -> Path | None:
    binary = shutil.which("apertium")
    if binary is None:
        return None
    # The apertium script reads modes from <prefix>/share/apertium; find it the same way.
    return Path(binary).resolve().parent.parent / "share" / "apertium" / "modes" / f"{MODE}.mode"


def available() -> str | None:
    """None when translation works here, else why not."""
    mode = _mode_file()
    if mode is None:
        return f"apertium is not on PATH (install it: {INSTALL_HINT})"
    if not mode.exists():
        return f"the Apertium {MODE} mode is missing ({mode}; install it: {INSTALL_HINT})"
    if shutil.which("apertium-wblank-mode") is None or shutil.which("bash") is None:
        return f"apertium-wblank-mode or bash is missing (install them: {INSTALL_HINT})"
    return None


def version() -> str:
    """The Apertium engine and eng-spa data versions, for model metadata."""
    parts = []
    for package in ("apertium", "apertium-eng-spa"):
        try:
            found = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                                   capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if found.returncode == 0 and found.stdout.strip():
            parts.append(f"{package} {found.stdout.strip()}")
    return ", ".join(parts) or "unknown"


def translate(texts: list[str], cache_dir: Path | None = None, processes: int | None = None,
              progress: Callable[[int, int], object] | None = None) -> list[str]:
    """Spanish for each English text, same length and order; cached in ``cache_dir``."""
    texts = list(texts)
    total = len(texts)
    cache = None
    if cache_dir is not None:
        # JSON of the list, not a plain join: ["a\nb"] and ["a", "b"] must not share a key.
        digest = hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()
        cache = Path(cache_dir) / f"{MODE}-{digest}.txt"
        cached = _read_cache(cache, total)
        if cached is not None:
            if progress:
                progress(total, total)
            return cached
    reason = available()
    if reason is not None:
        raise TranslationUnavailable(f"cannot translate to Spanish: {reason}")

    out = list(texts)  # blank texts, and texts Apertium cannot take, keep the original
    work = [(i, " ".join(t.replace("\0", " ").split())) for i, t in enumerate(texts)]
    work = [(i, t) for i, t in work if t]
    done = total - len(work)
    lock = threading.Lock()

    def advance(n: int) -> None:
        nonlocal done
        if progress and n:
            with lock:
                done += n
                progress(done, total)

    if progress:
        progress(done, total)
    if work:
        pipeline = _pipeline()
        chunks = [work[k:k + CHUNK] for k in range(0, len(work), CHUNK)]
        workers = max(1, min(processes or os.cpu_count() or 1, len(chunks)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(lambda chunk: _chunk(pipeline, [t for _, t in chunk], advance), chunks)
            for chunk, spanish in zip(chunks, results, strict=True):
                for (i, source), text in zip(chunk, spanish, strict=True):
                    out[i] = _clean(source, text or "") or texts[i]
    if cache is not None:
        _write_cache(cache, out)
    return out


def _pipeline() -> str:
    """The eng-spa mode as a shell pipeline with every stage in null-flush mode."""
    made = subprocess.run(["apertium-wblank-mode", "-z", str(_mode_file())],
                          capture_output=True, text=True, timeout=60)
    if made.returncode != 0 or not made.stdout.strip():
        raise TranslationError(f"apertium-wblank-mode failed: {made.stderr.strip()[-500:]}")
    return made.stdout


def _chunk(pipeline: str, texts: list[str], advance: Callable[[int], None]) -> list[str | None]:
    """Translations of ``texts`` in order; None for a text that breaks the pipeline."""
    counted = 0

    def tick(n: int) -> None:  # reruns after a failure must not count twice
        nonlocal counted
        n = min(n, len(texts) - counted)
        counted += n
        advance(n)

    out: list[str | None] = []
    while len(out) < len(texts):
        good, status, stderr = _run(pipeline, texts[len(out):], tick)
        out += good
        if len(out) == len(texts):
            break
        # texts[len(out)] broke the stream (seen: lrx-proc swallows the segment end after a
        # final "^_^"), and everything after it in that process is suspect: try it alone,
        # then go on with a fresh process.
        alone, status, stderr = _run(pipeline, texts[len(out):len(out) + 1], tick)
        if status != 0 and not alone:
            raise TranslationError(f"the Apertium {MODE} pipeline failed (exit {status}) on "
                                   f"{texts[len(out)]!r}: {stderr[-500:]}")
        out.append(alone[0] if alone else None)
    tick(len(texts))
    return out


def _run(pipeline: str, texts: list[str], tick: Callable[[int], None]) -> tuple[list[str], int, str]:
    """One pipeline process over ``texts``: the translations that came back aligned, in order
    (a prefix of all of them), its exit status and its stderr."""
    # Each text ends with a format block holding its index: it passes through untouched, so
    # segment k must carry marker k and only it, whatever a stage did to the NUL separators.
    payload = "".join(_TILDES.sub(lambda m: f"[{m.group()}]", _ESCAPE.sub(r"\\\1", t)) + f"[][\n{k}]\0"
                      for k, t in enumerate(texts)).encode("utf-8", "replace")
    # -n: generation without unknown-word marks (what `apertium -u` passes); $2 is the tagger option.
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    with tempfile.TemporaryFile() as err, subprocess.Popen(
            ["bash", "-c", pipeline, "apertium", "-n", ""], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=err, env=env) as proc:

        def feed() -> None:
            try:
                proc.stdin.write(payload)
                proc.stdin.close()
            except BrokenPipeError:  # the pipeline died; its exit status says why
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        received = []
        while block := proc.stdout.read1(1 << 16):
            received.append(block)
            tick(block.count(b"\0"))
        writer.join()
        status = proc.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace").strip()
    good = []
    # Every stage adds NULs of its own at the end of the stream: skip the empty segments.
    for segment in (s for s in b"".join(received).split(b"\0") if s):
        text = segment.decode("utf-8", "replace")
        markers = _MARKER.findall(text)
        if markers != [str(len(good))]:
            break
        good.append(_unformat(_MARKER.sub("", text)))
        if len(good) == len(texts):
            break
    return good, status, stderr


def _unformat(segment: str) -> str:
    """apertium-retxt: drop the format-block brackets, unescape."""
    out, chars = [], iter(segment)
    for c in chars:
        if c == "\\":
            out.append(next(chars, ""))
        elif c not in "[]":
            out.append(c)
    return "".join(out)


def _clean(source: str, text: str) -> str:
    # The corpus is whitespace-collapsed; Apertium adds leading and doubled spaces.
    text = " ".join(text.split())

    def unmark(m: re.Match) -> str:
        # '@user' and '#tag' are tweet syntax: keep a mark the source had.
        return m.group() if m.group() in source else m.group(2)

    if any(text.count(mark) > source.count(mark) for mark in "*#@"):
        text = _MARKED.sub(unmark, text)
    return text


def _read_cache(path: Path, total: int) -> list[str] | None:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError:
        return None
    # One JSON string per line: a text that fell back to its original may hold a newline.
    if lines[-1:] == [""]:
        lines.pop()
    if len(lines) != total:
        return None
    try:
        return [json.loads(line) for line in lines]
    except ValueError:
        return None


def _write_cache(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
