"""English -> Spanish with the real Apertium (Debian's apertium + apertium-eng-spa)."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from mlapi.model import translate as tr

MISSING = tr.available()
needs_apertium = pytest.mark.skipif(
    MISSING is not None, reason=f"{MISSING} (.ci/run installs it; without it training uses English only)")


@needs_apertium
@pytest.mark.parametrize(("english", "words"), [
    ("I love this movie", ["película"]),
    ("I hate this", ["odio", "esto"]),
    ("The flight was delayed again", ["vuelo", "retrasado", "otra vez"]),
    ("Thank you very much", ["gracias"]),
    ("My cat is happy", ["gato", "feliz"]),
    ("I am very angry with the airline", ["enojado", "aerolínea"]),
])
def test_translates_to_spanish(english, words):
    [spanish] = tr.translate([english], processes=1)
    for word in words:
        assert word in spanish.lower(), spanish


@needs_apertium
def test_alignment_on_tricky_inputs():
    tricky = ["", "   ", ".", "!!!", "😀😀", "http://t.co/abc check this out", "@user", "#tag",
              '"quoted" text', "I love it " * 500, "a [b] \\c ^d$ <e> {f} /g/ @h ~ i", "line\nbreak",
              "nul\0here", "a\x85b\u2028c", "Brent ^_^", "a lot of m", "How are you", "x" * 3000]
    texts = []
    for i, t in enumerate(tricky):
        texts += [f"sentence {i} is happy", t]
    out = tr.translate(texts, processes=3)
    assert len(out) == len(texts)
    for i in range(len(tricky)):
        assert f"{i}" in out[2 * i] and "feliz" in out[2 * i], (i, out[2 * i])
    spanish = dict(zip(tricky, out[1::2], strict=True))
    # Blank texts come back as they were: no row is lost.
    assert spanish[""] == "" and spanish["   "] == "   "
    assert spanish["."] == "." and spanish["😀😀"] == "😀😀"
    assert spanish["http://t.co/abc check this out"].startswith("http://t.co/abc ")
    # Neighbouring lines do not leak into each other (`apertium -f line` gives "@Etiqueta" and
    # "#de usuario" for these two).
    assert spanish["@user"] == "@Usuario" and spanish["#tag"] == "#Etiqueta"
    assert spanish['"quoted" text'] == '"Texto" citado'
    assert spanish["I love it " * 500].lower().count("lo quiero") == 500
    assert spanish["a [b] \\c ^d$ <e> {f} /g/ @h ~ i"].endswith("[b] \\c ^d$ <e> {f} /g/ @h ~ i")
    assert spanish["line\nbreak"] == "Pausa de línea"  # joined: one text is one row
    # lrx-proc loses the end of a segment whose last blank holds '^': that text keeps its
    # English, the next one is still its own.
    assert spanish["Brent ^_^"] == "Brent ^_^"
    assert spanish["a lot of m"] == "Mucho m"
    assert all("\n" not in t for t in out if t.strip())


@needs_apertium
def test_same_output_whatever_the_processes(monkeypatch):
    monkeypatch.setattr(tr, "CHUNK", 7)
    texts = [f"sentence {i} is happy" if i % 3 else "a lot of m" for i in range(20)] + ["How are you"] * 10
    progress = []
    one = tr.translate(texts, processes=1)
    many = tr.translate(texts, processes=4, progress=lambda done, total: progress.append((done, total)))
    assert one == many
    assert progress[-1] == (len(texts), len(texts))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


@needs_apertium
def test_cache_hit_and_miss(tmp_path, monkeypatch):
    texts = ["I love this movie", "  ", "I hate this"]
    first = tr.translate(texts, cache_dir=tmp_path)
    [cached] = tmp_path.glob(f"{tr.MODE}-*.txt")
    lines = cached.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == first
    assert not list(tmp_path.glob("*.tmp"))

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert tr.available() is not None
    assert tr.translate(texts, cache_dir=tmp_path) == first  # read back, apertium not needed
    with pytest.raises(tr.TranslationUnavailable):
        tr.translate(texts + ["one more"], cache_dir=tmp_path)


def test_unavailable_without_apertium(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = tr.available()
    assert reason and "apertium is not on PATH" in reason and tr.INSTALL_HINT in reason
    with pytest.raises(tr.TranslationUnavailable, match="apt-get install apertium apertium-eng-spa"):
        tr.translate(["I love this movie"])


def test_unavailable_without_the_mode(tmp_path, monkeypatch):
    # An apertium without the eng-spa data: its prefix has no share/apertium/modes/eng-spa.mode.
    binary = tmp_path / "bin" / "apertium"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{binary.parent}{os.pathsep}{os.environ['PATH']}")
    reason = tr.available()
    assert reason and "eng-spa mode is missing" in reason and tr.INSTALL_HINT in reason
    with pytest.raises(tr.TranslationUnavailable, match="apertium-eng-spa"):
        tr.translate(["I love this movie"])


def test_leftover_marks_are_stripped():
    assert tr._clean("I love x", "*Quiero  #x @y ") == "Quiero x y"
    # Tweet syntax the source had stays, translated or not.
    assert tr._clean("@user #tag", "@Usuario #Etiqueta") == "@Usuario #Etiqueta"
    assert tr._clean("@JetBlue #fail", "@JetBlue #fail") == "@JetBlue #fail"


def test_version():
    version = tr.version()
    assert isinstance(version, str) and version
    if MISSING is None and version != "unknown":
        assert "apertium-eng-spa" in version


@needs_apertium
def test_measure_throughput(capsys):
    templates = [
        "@united flight {i} delayed again, worst airline ever #fail http://t.co/x{i}",
        "I love my new phone, the camera is amazing! {i} stars",
        "just saw a self driving car on the highway lol {i}",
        "@SouthwestAir thanks for the great service on flight {i} :)",
        "can't believe the game last night, {i} points!!! #DeflateGate",
    ]
    texts = [templates[i % len(templates)].format(i=i) for i in range(2000)]
    started = time.perf_counter()
    out = tr.translate(texts, processes=2)
    elapsed = time.perf_counter() - started
    assert len(out) == len(texts) and all(out)
    with capsys.disabled():
        print(f"\napertium {tr.MODE}: {len(texts)} texts in {elapsed:.1f} s with 2 processes "
              f"({len(texts) / elapsed:.0f} texts/s)")
