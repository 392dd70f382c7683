import json
import os
import re
import zipfile

import pytest
import skops.io as sio
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlapi.contracts import LABELS
from mlapi.model import artifact
from mlapi.model.predictor import Predictor

from .conftest import run_cli

SPANISH = ["Me encanta este producto, es excelente", "Odio esta película, es horrible",
           "El tren sale a las cinco de la tarde", "¿Dónde está la biblioteca?", "ñ"]


def test_saved_model_has_metadata_and_loads(model_path):
    meta = json.loads(model_path.with_suffix(".json").read_text())
    assert meta["sha256"] == artifact.sha256_of(model_path)
    assert {"version", "created", "metrics", "corpus"} <= set(meta)
    assert 0 < meta["metrics"]["macro_f1"] <= 1
    with zipfile.ZipFile(model_path) as z:  # compressed, not the ~190 MB stored archive
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    predictor = Predictor.load(model_path)
    assert predictor.version == meta["version"]


def test_predictions_are_probabilities_for_any_language(model_path):
    predictor = Predictor.load(model_path)
    rows = predictor.predict_proba(["I love this, wonderful!", "This is terrible, I hate it"]
                                   + SPANISH)
    assert len(rows) == 2 + len(SPANISH)
    for row in rows:
        assert set(row) == set(LABELS)
        assert sum(row.values()) == pytest.approx(1.0)
    assert max(rows[0], key=rows[0].get) == "positive"
    assert max(rows[1], key=rows[1].get) == "negative"


def test_a_changed_archive_is_refused(model_path, tmp_path):
    copy = tmp_path / "m.skops"
    data = bytearray(model_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    copy.with_suffix(".json").write_text(model_path.with_suffix(".json").read_text())
    with pytest.raises(artifact.ModelError, match="does not match"):
        Predictor.load(copy)


def test_an_archive_with_untrusted_types_is_refused(tmp_path):
    evil = make_pipeline(FunctionTransformer(os.system))
    path = tmp_path / "evil.skops"
    sio.dump(evil, path)
    path.with_suffix(".json").write_text(json.dumps({"version": "x",
                                                     "sha256": artifact.sha256_of(path)}))
    with pytest.raises(artifact.ModelError, match="outside scikit-learn"):
        artifact.load(path)


def test_missing_metadata_is_refused(model_path, tmp_path):
    copy = tmp_path / "lonely.skops"
    copy.write_bytes(model_path.read_bytes())
    with pytest.raises(artifact.ModelError, match="metadata"):
        artifact.load(copy)


def test_evaluate_cli_reports_metrics_per_language(model_path):
    done = run_cli("evaluate", "--model", str(model_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kind"] == "fast"
    english = report["held_out"]["en"]
    assert english["rows"] > 7000 and 0.5 < english["macro_f1"] <= 1
    if report["translation"].get("spanish_rows"):
        # The same rows, translated: as many, with the same labels.
        assert report["held_out"]["es"]["rows"] == english["rows"]
    assert report["golden"]["en"]["rows"] == 45 and report["golden"]["es"]["rows"] == 44
    # The hard set, by language and by category within each.
    for language in ("en", "es"):
        hard = report["hard"][language]
        assert hard["rows"] == 72 and 0 <= hard["macro_f1"] <= 1
        assert set(hard["by_category"]) == {"negation", "contrast", "understatement", "informal",
                                            "neutral_request", "neutral_fact"}
        assert sum(c["rows"] for c in hard["by_category"].values()) == 72


def test_train_cli_on_a_user_csv(tmp_path):
    rows = ["text,label"]
    for i in range(40):
        rows += [f"I love it {i},positive", f"I hate it {i},negative", f"It is item {i},neutral"]
    csv = tmp_path / "mine.csv"
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "mine.skops"
    done = run_cli("train", "--corpus", str(csv), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["corpus"]["rows"] == 120
    assert Predictor.load(out).predict_proba(["I love it 999"])[0]["positive"] > 0.5


def test_train_cli_bad_csv_is_a_clear_error(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("text,label\nx,maybe\n")
    done = run_cli("train", "--corpus", str(csv), "--output", str(tmp_path / "x.skops"))
    assert done.returncode == 2
    assert "label 'maybe'" in done.stderr and "Traceback" not in done.stderr


FACTS = ["The meeting is at 3 pm on Tuesday.", "The train leaves from platform 4.",
         "Water boils at 100 degrees Celsius.", "The store opens at nine in the morning.",
         "Paris is the capital of France.", "The report has twelve pages.",
         "The package was delivered on Monday.", "The museum is closed on Sundays.",
         "The new model has a 6 inch screen.", "The library is on the second floor."]


@pytest.fixture(scope="module")
def full_models(tmp_path_factory):
    """The fast kind trained on the whole corpus (English + Apertium Spanish rows).

    The multilingual kind takes minutes to train on 2 cores; the worker image trains it at
    build time, and tests/images/test_images.py holds that very model to its bars (held-out
    scores from its metadata, golden set and the course's sentences run inside the image).
    """
    from rich.console import Console

    from mlapi.model.training import train

    out = tmp_path_factory.mktemp("full")
    return {kind: (out / f"{kind}.skops",
                   train(out / f"{kind}.skops", console=Console(quiet=True), kind=kind))
            for kind in ("fast",)}


@pytest.mark.slow
# The bar: 0.76 English for both kinds (the multilingual one is held to it in
# tests/images). Facts read neutral: at least 6 of 10 for fast (measured: 7).
@pytest.mark.parametrize("kind, english, facts", [("fast", 0.76, 6)])
def test_each_kind_reaches_the_quality_bar(full_models, kind, english, facts):
    """English and Spanish held-out macro-F1 (the same rows, translated: Spanish >= 0.74)."""
    from mlapi.model.training import evaluate

    path, meta = full_models[kind]
    by_language = meta["metrics"]["by_language"]
    assert meta["kind"] == kind and meta["languages"] == ["en", "es"], meta["translation"]
    assert by_language["en"]["macro_f1"] >= english, by_language
    assert by_language["es"]["macro_f1"] >= 0.74, by_language
    report = evaluate(path)
    assert report["held_out"]["en"]["macro_f1"] == by_language["en"]["macro_f1"]
    predictor = Predictor.load(path)
    labels = [max(p, key=p.get) for p in predictor.predict_proba(FACTS)]
    # Plain statements of fact should mostly read as neutral, not as complaints.
    assert labels.count("neutral") >= facts, list(zip(FACTS, labels, strict=True))
    for row in predictor.predict_proba(SPANISH):
        assert sum(row.values()) == pytest.approx(1.0)


def test_the_same_corpus_gives_the_same_archive_byte_for_byte(tmp_path, monkeypatch):
    # What makes an image build reproducible: fixed seeds, skops' object ids renumbered,
    # fixed zip entry times, and SOURCE_DATE_EPOCH for the version's date.
    from rich.console import Console

    from mlapi.model.training import train

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")
    first = train(tmp_path / "a.skops", limit=2000, console=Console(quiet=True))
    second = train(tmp_path / "b.skops", limit=2000, console=Console(quiet=True))
    assert first["kind"] == "multilingual"  # the default, embedding included
    assert first["sha256"] == second["sha256"] == artifact.sha256_of(tmp_path / "b.skops")
    assert first["version"] == second["version"] == f"20251201T000000Z-{first['sha256'][:8]}"
    texts = ["I love it", "terrible service", "Paris is in France", "me encanta"]
    a, b = Predictor.load(tmp_path / "a.skops"), Predictor.load(tmp_path / "b.skops")
    assert a.predict_proba(texts) == b.predict_proba(texts)
    # Renumbering kept every array reachable: the archive lists exactly the files it uses.
    with zipfile.ZipFile(tmp_path / "a.skops") as archive:
        names = set(archive.namelist())
        schema = archive.read("schema.json").decode()
    assert {n for n in names if n.endswith(".npy")} == \
        {f'{m}.npy' for m in re.findall(r'"file": "(\d+)\.npy"', schema)}


@pytest.mark.slow
def test_the_encoder_kind_reads_structure_that_n_grams_miss(tmp_path):
    """On a 6,000-row sample (a minute to train on 2 cores; the full corpus takes ~6 min), the
    encoder kind beats the fast kind on the hard golden set by a wide margin, in both languages,
    and still gets the plain golden set and the course's sentences right."""
    from rich.console import Console

    from mlapi.model import golden
    from mlapi.model.training import train

    scores = {}
    for kind in ("encoder", "fast"):
        path = tmp_path / f"{kind}.skops"
        train(path, console=Console(quiet=True), kind=kind, limit=6000)
        model = Predictor.load(path).model
        scores[kind] = {name: golden.report(model.predict, golden.load(name))
                        for name in ("hard", "golden")}
        if kind == "encoder":
            course = [("Me gusto la pelicula", "positive"), ("No me gusto la pelicula", "negative"),
                      ("Tenemos problemas de inseguridad", "negative"),
                      ("Te invito al cine", "neutral")]
            assert list(model.predict([t for t, _ in course])) == [y for _, y in course]
    # Measured on this sample: encoder hard set 0.83 / 0.75, fast 0.40 / 0.40; golden 0.98 both.
    for language, hard_bar in (("en", 0.78), ("es", 0.68)):
        encoder_hard = scores["encoder"]["hard"][language]["macro_f1"]
        assert encoder_hard >= hard_bar, scores
        assert encoder_hard >= scores["fast"]["hard"][language]["macro_f1"] + 0.1, scores
        assert scores["encoder"]["golden"][language]["accuracy"] >= 0.9, scores
